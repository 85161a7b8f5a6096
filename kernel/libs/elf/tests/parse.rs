//! The ELF reader on images assembled by hand: every rejection, and no panic on damaged input.

use elf::{ElfError, Limits, Program, Segment, parse};
use proptest::prelude::*;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const R: u32 = 4;
const RW: u32 = 6;
const RX: u32 = 5;

/// A program header.
#[derive(Clone, Copy, Debug)]
struct Ph {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

const fn ph(p_type: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    let align = if p_type == PT_LOAD { 0x1000 } else { 8 };
    Ph {
        p_type,
        flags,
        offset,
        vaddr,
        filesz,
        memsz,
        align,
    }
}

/// An ELF image described by its header fields; `bytes` assembles it.
#[derive(Clone, Debug)]
struct Image {
    e_type: u16,
    entry: u64,
    phdrs: Vec<Ph>,
    file_size: usize,
}

impl Image {
    /// A valid non-PIE program: headers, text, data + bss, TLS and a non-executable stack.
    fn sample() -> Self {
        Self {
            e_type: 2,
            entry: 0x40_1010,
            phdrs: vec![
                ph(PT_PHDR, R, 64, 0x40_0040, 6 * 56, 6 * 56),
                ph(PT_LOAD, R, 0, 0x40_0000, 0x200, 0x200),
                ph(PT_LOAD, RX, 0x1000, 0x40_1000, 0x100, 0x100),
                ph(PT_LOAD, RW, 0x1100, 0x40_2100, 0x10, 0x300),
                ph(PT_TLS, R, 0x1100, 0x40_2100, 8, 16),
                ph(PT_GNU_STACK, RW, 0, 0, 0, 0),
            ],
            file_size: 0x1110,
        }
    }

    /// The sample as a static-PIE program linked at 0.
    fn pie() -> Self {
        let mut image = Self::sample();
        image.e_type = 3;
        image.entry -= 0x40_0000;
        for ph in &mut image.phdrs {
            if ph.p_type != PT_GNU_STACK {
                ph.vaddr -= 0x40_0000;
            }
        }
        image
    }

    fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.file_size.max(64 + 56 * self.phdrs.len())];
        b[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        b[16..18].copy_from_slice(&self.e_type.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&self.entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(self.phdrs.len() as u16).to_le_bytes());
        for (i, p) in self.phdrs.iter().enumerate() {
            let fields = [p.offset, p.vaddr, p.vaddr, p.filesz, p.memsz, p.align];
            let at = 64 + 56 * i;
            b[at..at + 4].copy_from_slice(&p.p_type.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&p.flags.to_le_bytes());
            for (j, v) in fields.iter().enumerate() {
                b[at + 8 + 8 * j..at + 16 + 8 * j].copy_from_slice(&v.to_le_bytes());
            }
        }
        b
    }

    fn parse(&self) -> Result<Program, ElfError> {
        parse(&self.bytes(), &Limits::DEFAULT)
    }
}

/// The bytes of the sample with `patch` applied.
fn patched(patch: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = Image::sample().bytes();
    patch(&mut bytes);
    bytes
}

fn seg(index: usize, vaddr: u64, memsz: u64, file_offset: u64, filesz: u64, flags: u32) -> Segment {
    let (readable, writable, executable) = (flags & R != 0, flags & 2 != 0, flags & 1 != 0);
    Segment {
        index,
        vaddr,
        memsz,
        file_offset,
        filesz,
        readable,
        writable,
        executable,
    }
}

#[test]
fn sample_parses() {
    let program = Image::sample().parse().unwrap();
    assert_eq!(program.entry, 0x40_1010);
    assert_eq!(
        program.segments,
        [
            seg(1, 0x40_0000, 0x200, 0, 0x200, R),
            seg(2, 0x40_1000, 0x100, 0x1000, 0x100, RX),
            seg(3, 0x40_2100, 0x300, 0x1100, 0x10, RW),
        ]
    );
    assert_eq!(program.phdr_vaddr, Some(0x40_0040));
    assert_eq!((program.phent, program.phnum), (56, 6));
    assert!(!program.stack_executable && !program.is_pie);
    let tls = program.tls.unwrap();
    assert_eq!(
        (tls.vaddr, tls.filesz, tls.memsz, tls.align),
        (0x40_2100, 8, 16, 8)
    );
    assert_eq!(program.span(), (0x40_0000, 0x40_3000));
    assert_eq!(
        program.relocated(0x1000, &Limits::DEFAULT),
        Err(ElfError::NotRelocatable)
    );
    let aux = elf::AuxInfo::for_program(&program);
    assert_eq!(
        (aux.phdr, aux.phent, aux.phnum, aux.entry),
        (0x40_0040, 56, 6, 0x40_1010)
    );
}

#[test]
fn phdr_address_without_pt_phdr() {
    let image = Image::sample().with(|i| i.phdrs[0].p_type = 0);
    assert_eq!(image.parse().unwrap().phdr_vaddr, Some(0x40_0040));
    // The first segment no longer holds the whole table in its file range.
    let image = image.with(|i| i.phdrs[1].filesz = 0x100);
    assert_eq!(image.parse().unwrap().phdr_vaddr, None);
}

#[test]
fn stack_executable_follows_pt_gnu_stack() {
    let image = Image::sample().with(|i| i.phdrs[5].flags = 7);
    assert!(image.parse().unwrap().stack_executable);
    let image = Image::sample().with(|i| i.phdrs[5].p_type = 0);
    assert!(
        !image.parse().unwrap().stack_executable,
        "Linux x86_64 default"
    );
}

#[test]
fn segments_may_share_a_page() {
    // Data starts in the last page of text, as without `-z separate-code`; empty PT_LOADs vanish.
    let image = Image::sample().with(|i| {
        i.phdrs[3].vaddr = 0x40_1100;
        i.phdrs[4] = ph(PT_LOAD, R, 0x1000, 0x40_5000, 0, 0);
    });
    let program = image.parse().unwrap();
    assert_eq!(program.segments.len(), 3);
    assert_eq!(program.segments[2].vaddr, 0x40_1100);
}

#[test]
fn static_pie_is_relocated() {
    let program = Image::pie().parse().unwrap();
    assert!(program.is_pie);
    assert_eq!((program.entry, program.segments[0].vaddr), (0x1010, 0));
    let limits = Limits::DEFAULT;
    let moved = program.relocated(0x5555_5555_4000, &limits).unwrap();
    assert_eq!(moved.entry, 0x5555_5555_5010);
    assert_eq!(moved.segments[2].vaddr, 0x5555_5555_6100);
    assert_eq!(moved.phdr_vaddr, Some(0x5555_5555_4040));
    assert_eq!(moved.tls.unwrap().vaddr, 0x5555_5555_6100);
    assert_eq!(moved.load_bias, 0x5555_5555_4000);
    assert_eq!(
        program.relocated(0x1234, &limits),
        Err(ElfError::BadBase(0x1234))
    );
    let below = ElfError::BelowMinAddr {
        index: 1,
        vaddr: 0,
        min: 0x1_0000,
    };
    assert_eq!(program.relocated(0, &limits), Err(below));
    let above = ElfError::AboveUserEnd {
        index: 3,
        end: 0x8000_0000_1000,
        limit: 0x8000_0000_0000,
    };
    assert_eq!(program.relocated(0x7fff_ffff_e000, &limits), Err(above));
    let base = 0xffff_ffff_ffff_f000;
    assert!(matches!(
        program.relocated(base, &limits),
        Err(ElfError::AboveUserEnd { .. })
    ));
}

/// Every way to reject an image. A message names its variant and quotes every value the variant
/// carries, so comparing messages compares the errors.
#[test]
fn rejections() {
    let sample = Image::sample;
    let load = |f: fn(&mut Ph)| sample().with(|i| f(&mut i.phdrs[3])).bytes();
    let no_loads = |i: &mut Image| {
        i.phdrs
            .iter_mut()
            .for_each(|p| (p.filesz, p.memsz) = (0, 0))
    };
    let cases = [
        (b"\x7fELG".repeat(20), "not an ELF file (bad magic)"),
        (b"\x7fEL".to_vec(), "not an ELF file (bad magic)"),
        (
            patched(|b| b.truncate(63)),
            "file too short for an ELF header (63 bytes)",
        ),
        (patched(|b| b[4] = 1), "not a 64-bit ELF file (class 1)"),
        (
            patched(|b| b[5] = 2),
            "not a little-endian ELF file (data 2)",
        ),
        (patched(|b| b[6] = 0), "unknown ELF version 0"),
        (patched(|b| b[20] = 2), "unknown ELF version 2"),
        (patched(|b| b[18] = 3), "not an x86_64 program (machine 3)"),
        (patched(|b| b[16] = 1), "not an executable (ELF type 1)"),
        (patched(|b| b[16] = 4), "not an executable (ELF type 4)"),
        (patched(|b| b[54] = 64), "program header size is 64, not 56"),
        (patched(|b| b[56] = 65), "too many program headers (65)"),
        (
            patched(|b| b[32..40].copy_from_slice(&0x1100u64.to_le_bytes())),
            "program header table extends past the end of the file \
             (offset 0x1100 + size 0x150 > file size 0x1110)",
        ),
        (
            patched(|b| b[32..40].fill(0xff)),
            "program header table extends past the end of the file \
             (offset 0xffffffffffffffff + size 0x150 > file size 0x1110)",
        ),
        (patched(|b| b[56] = 0), "no loadable segment"),
        (
            sample().with(|i| i.phdrs.truncate(1)).bytes(),
            "no loadable segment",
        ),
        (sample().with(no_loads).bytes(), "no loadable segment"),
        (
            load(|p| p.filesz = 0x20),
            "segment 3 extends past the end of the file \
             (offset 0x1100 + size 0x20 > file size 0x1110)",
        ),
        (
            load(|p| p.offset = u64::MAX),
            "segment 3 extends past the end of the file \
             (offset 0xffffffffffffffff + size 0x10 > file size 0x1110)",
        ),
        (
            sample().with(|i| i.phdrs[4].filesz = 0x11).bytes(),
            "segment 4 extends past the end of the file \
             (offset 0x1100 + size 0x11 > file size 0x1110)",
        ),
        (
            load(|p| p.memsz = 8),
            "segment 3 has more bytes in the file than in memory (0x10 > 0x8)",
        ),
        (
            load(|p| p.align = 0x3000),
            "segment 3 alignment 0x3000 is not a power of two",
        ),
        (
            load(|p| p.vaddr = 0x40_2200),
            "segment 3 address 0x402200 and offset 0x1100 differ modulo its alignment 0x1000",
        ),
        (
            load(|p| p.vaddr = 0xffff_ffff_ffff_f100),
            "segment 3 wraps around the address space (0xfffffffffffff100 + 0x300)",
        ),
        (
            load(|p| p.vaddr = 0x3f_f100),
            "segment 3 at 0x3ff100 is below the previous one at 0x401000",
        ),
        (
            load(|p| (p.vaddr, p.align) = (0x40_10f0, 0x10)),
            "segment 3 at 0x4010f0 overlaps the previous one, ending at 0x401100",
        ),
        (
            load(|p| p.vaddr = 0x8000_0000_0100),
            "segment 3 ends at 0x800000001000, past the end of user space 0x800000000000",
        ),
        (
            Image::pie()
                .with(|i| i.phdrs[3].vaddr = 0x8000_0000_0100)
                .bytes(),
            "segment 3 ends at 0x800000001000, past the end of user space 0x800000000000",
        ),
        (
            sample().with(|i| i.phdrs[1].vaddr = 0xf000).bytes(),
            "segment 1 at 0xf000 is below the lowest user address 0x10000",
        ),
        (
            load(|p| p.memsz = 0x4000_0000),
            "segments too large (0x40000300 bytes > limit 0x40000000)",
        ),
        (
            sample().with(|i| i.entry = 0x40_2100).bytes(),
            "entry point 0x402100 is not in an executable segment",
        ),
        (
            sample().with(|i| i.entry = 0x40_1100).bytes(),
            "entry point 0x401100 is not in an executable segment",
        ),
        (
            sample().with(|i| i.phdrs[0].vaddr = 0x40_01f0).bytes(),
            "PT_PHDR at 0x4001f0 lies outside the loaded segments",
        ),
    ];
    for (bytes, expected) in cases {
        let err = parse(&bytes, &Limits::DEFAULT).unwrap_err();
        assert_eq!(err.to_string(), expected, "{err:?}");
    }
    // The variants themselves, for a few.
    let err = parse(&load(|p| p.filesz = 0x20), &Limits::DEFAULT);
    let (index, offset, filesz, file_size) = (3, 0x1100, 0x20, 0x1110);
    assert_eq!(
        err,
        Err(ElfError::SegmentTruncated {
            index,
            offset,
            filesz,
            file_size
        })
    );
    assert_eq!(
        parse(&patched(|b| b[16] = 1), &Limits::DEFAULT),
        Err(ElfError::NotExecutable(1))
    );
}

#[test]
fn interpreter_is_named() {
    let image = Image::pie().with(|i| i.phdrs[0] = ph(PT_INTERP, R, 0x1100, 0, 0x10, 0x10));
    let mut bytes = image.bytes();
    bytes[0x1100..0x110c].copy_from_slice(b"/lib/ld.so\0\xff");
    let program = parse(&bytes, &Limits::DEFAULT).expect("a dynamically linked program");
    assert_eq!(program.interpreter.as_deref(), Some("/lib/ld.so"));
    // Without its NUL, the path is refused.
    bytes[0x1100..0x1110].copy_from_slice(b"/lib/ld.so/abcde");
    let err = parse(&bytes, &Limits::DEFAULT).unwrap_err();
    assert_eq!(err, ElfError::BadInterpreter(0));
    // Past the end of the file, the header itself is at fault.
    bytes.truncate(0x1108);
    let err = parse(&bytes, &Limits::DEFAULT).unwrap_err();
    assert!(
        matches!(err, ElfError::SegmentTruncated { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn messages_name_the_header_and_values() {
    let err = ElfError::SegmentTruncated {
        index: 2,
        offset: 0x1000,
        filesz: 0x5000,
        file_size: 0x3000,
    };
    assert_eq!(
        err.to_string(),
        "segment 2 extends past the end of the file \
         (offset 0x1000 + size 0x5000 > file size 0x3000)"
    );
    let err = Image::sample()
        .with(|i| i.entry = 0x40_2100)
        .parse()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry point 0x402100 is not in an executable segment"
    );
}

/// What every accepted program promises the loader.
fn check_invariants(bytes: &[u8], program: &Program, limits: &Limits) {
    assert!(!program.segments.is_empty());
    let mut prev_end = 0;
    for s in &program.segments {
        assert!(s.vaddr >= prev_end && s.memsz > 0 && s.filesz <= s.memsz);
        assert!(s.file_offset + s.filesz <= bytes.len() as u64);
        prev_end = s.vaddr + s.memsz;
        assert!(prev_end <= limits.user_end);
        assert!(program.is_pie || s.vaddr >= limits.min_addr & !0xfff);
    }
    let entry_seg = program
        .segments
        .iter()
        .find(|s| s.vaddr <= program.entry && program.entry < s.end());
    assert!(entry_seg.is_some_and(|s| s.executable));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_bytes_never_panic(
        edits in prop::collection::vec((0usize..0x1110, any::<u8>()), 1..8),
        len in 0usize..=0x1110,
    ) {
        let mut bytes = Image::sample().bytes();
        for (at, value) in edits {
            bytes[at] = value;
        }
        bytes.truncate(len);
        if let Ok(program) = parse(&bytes, &Limits::DEFAULT) {
            check_invariants(&bytes, &program, &Limits::DEFAULT);
        }
    }

    #[test]
    fn random_header_fields_never_panic(
        pie in any::<bool>(),
        index in 0usize..6,
        field in 0usize..6,
        value in prop_oneof![any::<u64>(), 0u64..0x2000, 0u64..0x50_0000],
        base in prop_oneof![any::<u64>(), (0u64..0x8000_0000).prop_map(|b| b << 12)],
    ) {
        let image = if pie { Image::pie() } else { Image::sample() };
        let image = image.with(|i| {
            let p = &mut i.phdrs[index];
            let fields = [
                &mut p.offset, &mut p.vaddr, &mut p.filesz,
                &mut p.memsz, &mut p.align, &mut i.entry,
            ];
            *fields[field] = value;
        });
        let bytes = image.bytes();
        if let Ok(program) = parse(&bytes, &Limits::DEFAULT) {
            check_invariants(&bytes, &program, &Limits::DEFAULT);
            if let Ok(moved) = program.relocated(base, &Limits::DEFAULT) {
                check_invariants(&bytes, &moved, &Limits::DEFAULT);
            }
        }
    }
}

// Well-formed images with one field made hostile: each is refused with the error documented
// for it, and any bytes at all are refused or accepted without a panic.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        elf_magic in any::<bool>(),
        mut bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        if elf_magic && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(b"\x7fELF");
        }
        if let Ok(program) = parse(&bytes, &Limits::DEFAULT) {
            check_invariants(&bytes, &program, &Limits::DEFAULT);
        }
    }

    #[test]
    fn a_truncated_header_is_refused(len in 0usize..64) {
        let bytes = &Image::sample().bytes()[..len];
        let expected = if len < 4 {
            ElfError::BadMagic
        } else {
            ElfError::TruncatedHeader(len as u64)
        };
        prop_assert_eq!(parse(bytes, &Limits::DEFAULT).unwrap_err(), expected);
    }

    #[test]
    fn a_huge_memsz_is_refused(memsz in prop_oneof![(1u64 << 30)..=u64::MAX, (1u64 << 62)..=u64::MAX]) {
        // The last PT_LOAD (header 3, at 0x40_2100): nothing after it to overlap.
        let image = Image::sample().with(|i| i.phdrs[3].memsz = memsz);
        let vaddr = image.phdrs[3].vaddr;
        let expected = if vaddr.checked_add(memsz).is_none_or(|end| end > u64::MAX - 0xfff) {
            ElfError::AddressOverflow { index: 3, vaddr, memsz }
        } else {
            let total = (0x200u64 + 0x100).saturating_add(memsz);
            ElfError::TooLarge { total, max: Limits::DEFAULT.max_total }
        };
        prop_assert_eq!(image.parse().unwrap_err(), expected);
    }

    #[test]
    fn an_entry_outside_the_text_is_refused(entry in any::<u64>()) {
        // The one executable segment is [0x40_1000, 0x40_1100).
        prop_assume!(!(0x40_1000..0x40_1100).contains(&entry));
        let image = Image::sample().with(|i| i.entry = entry);
        prop_assert_eq!(image.parse().unwrap_err(), ElfError::EntryNotExecutable(entry));
    }

    #[test]
    fn overlapping_or_descending_segments_are_refused(vaddr in 0x1_0000u64..0x40_1100) {
        // The data segment moved into or below the text ([0x40_1000, 0x40_1100)); alignment 1
        // so that any address agrees with its file offset.
        let image = Image::sample().with(|i| {
            i.phdrs[3].vaddr = vaddr;
            i.phdrs[3].align = 1;
        });
        let expected = if vaddr < 0x40_1000 {
            ElfError::NotAscending { index: 3, vaddr, prev_vaddr: 0x40_1000 }
        } else {
            ElfError::Overlap { index: 3, vaddr, prev_end: 0x40_1100 }
        };
        prop_assert_eq!(image.parse().unwrap_err(), expected);
    }
}
