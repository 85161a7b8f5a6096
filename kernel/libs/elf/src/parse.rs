//! The ELF reader: validation of a static x86_64 executable, total on malformed input.
//!
//! Every multi-byte field is read little-endian from a bounds-checked slice and every sum of
//! image values is checked, so any input yields a [`Program`] or an [`ElfError`], never a panic.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::{PAGE_SIZE, page_down, page_up};

/// Size of the ELF64 file header.
const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header, the only `e_phentsize` accepted.
const PHDR_SIZE: u16 = 56;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u32 = 1;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
/// Longest interpreter path (with its NUL) a `PT_INTERP` header may hold (Linux's
/// `PATH_MAX`).
const MAX_INTERP_LEN: usize = 4096;

/// The user address space a program must fit in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Lowest address a segment's first page may start at (Linux's `mmap_min_addr`).
    pub min_addr: u64,
    /// End of user space, page aligned: every segment's last page must end at or below it.
    pub user_end: u64,
    /// Largest sum of the `PT_LOAD` segments' memory sizes.
    pub max_total: u64,
    /// Largest number of program headers.
    pub max_phnum: u16,
}

impl Limits {
    /// 64 KiB to the end of the lower canonical half, 1 GiB of segments, 64 program headers.
    pub const DEFAULT: Self = Self {
        min_addr: 0x1_0000,
        user_end: 0x0000_8000_0000_0000,
        max_total: 1 << 30,
        max_phnum: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A `PT_LOAD` segment: `filesz` bytes of the file at `file_offset` copied to `vaddr`, followed
/// by zeroes up to `memsz` bytes. Its file range lies in the image and `filesz <= memsz`.
/// `file_offset` and `vaddr` are congruent modulo the segment's `p_align`, which need not be
/// the page size: copy the bytes rather than assume file pages map to memory pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index of its program header, for messages.
    pub index: usize,
    /// Address of the first byte (relative to the load base for a static-PIE program).
    pub vaddr: u64,
    /// Size in memory, never 0 (empty `PT_LOAD` segments are dropped).
    pub memsz: u64,
    /// Offset of the initialised bytes in the image.
    pub file_offset: u64,
    /// Number of initialised bytes.
    pub filesz: u64,
    /// `PF_R`.
    pub readable: bool,
    /// `PF_W`.
    pub writable: bool,
    /// `PF_X`.
    pub executable: bool,
}

impl Segment {
    /// The address just past the segment's last byte.
    #[must_use]
    pub const fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// The `PT_TLS` template: not needed to load a program (its start code reads it via `AT_PHDR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tls {
    /// Address of the initialisation image.
    pub vaddr: u64,
    /// Size of the initialisation image.
    pub filesz: u64,
    /// Size of the TLS block.
    pub memsz: u64,
    /// Alignment of the TLS block.
    pub align: u64,
}

/// A validated executable, as [`parse`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Entry point, inside an executable segment.
    pub entry: u64,
    /// The non-empty `PT_LOAD` segments in ascending, non-overlapping address order; at least one.
    pub segments: Vec<Segment>,
    /// Address of the program headers in memory, for `AT_PHDR`: from `PT_PHDR` if present, else
    /// from the segment whose file range holds the program header table, else `None`.
    pub phdr_vaddr: Option<u64>,
    /// Size of a program header (`AT_PHENT`), always 56.
    pub phent: u16,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u16,
    /// Whether `PT_GNU_STACK` asks for an executable stack; `false` without one, as on Linux.
    pub stack_executable: bool,
    /// The TLS template, if there is one.
    pub tls: Option<Tls>,
    /// Position-independent (`ET_DYN`): the addresses are relative until
    /// [`Program::relocated`].
    pub is_pie: bool,
    /// What [`Program::relocated`] added to the link-time addresses (0 before).
    pub load_bias: u64,
    /// The path a `PT_INTERP` header names: the dynamic linker that must be loaded with a
    /// dynamically linked program and run first.
    pub interpreter: Option<String>,
}

impl Program {
    /// The page-rounded address range `[start, end)` spanned by the segments.
    #[must_use]
    pub fn span(&self) -> (u64, u64) {
        let start = self.segments.first().map_or(0, |s| page_down(s.vaddr));
        let end = self
            .segments
            .last()
            .map_or(0, |s| page_up(s.end()).unwrap_or(u64::MAX));
        (start, end)
    }

    /// Moves a static-PIE program to the load base `base`: adds it to every address, after
    /// checking that `base` is page aligned and that the moved segments fit `limits`.
    ///
    /// # Errors
    ///
    /// [`ElfError::NotRelocatable`] for a non-PIE program, [`ElfError::BadBase`], and
    /// [`ElfError::BelowMinAddr`] or [`ElfError::AboveUserEnd`] for a segment out of bounds.
    pub fn relocated(&self, base: u64, limits: &Limits) -> Result<Self, ElfError> {
        if !self.is_pie {
            return Err(ElfError::NotRelocatable);
        }
        if !base.is_multiple_of(PAGE_SIZE) {
            return Err(ElfError::BadBase(base));
        }
        check_placement(&self.segments, base, limits, true)?;
        let mut moved = self.clone();
        for segment in &mut moved.segments {
            segment.vaddr = segment.vaddr.wrapping_add(base);
        }
        moved.entry = self.entry.wrapping_add(base);
        moved.phdr_vaddr = self.phdr_vaddr.map(|a| a.wrapping_add(base));
        if let Some(tls) = &mut moved.tls {
            tls.vaddr = tls.vaddr.wrapping_add(base);
        }
        moved.load_bias = self.load_bias.wrapping_add(base);
        Ok(moved)
    }
}

/// Why an image cannot be run. `index` is a program header's index in the table; the fields
/// of a variant are the values at fault, named after the ELF fields they come from (`offset`
/// is `p_offset`, `file_size` the image's length), and its message quotes them all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ElfError {
    /// The image does not start with `\x7fELF`.
    BadMagic,
    /// The image, of this length, is shorter than the 64-byte ELF64 header.
    TruncatedHeader(u64),
    /// `EI_CLASS` is not `ELFCLASS64`.
    NotElf64(u8),
    /// `EI_DATA` is not `ELFDATA2LSB`.
    NotLittleEndian(u8),
    /// `EI_VERSION`, or else `e_version`, is not 1.
    BadVersion(u32),
    /// `e_machine` is not `EM_X86_64`.
    BadMachine(u16),
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`: an object file (`ET_REL`), a core dump...
    NotExecutable(u16),
    /// `e_phentsize` is not 56.
    BadPhentsize(u16),
    /// `e_phnum` exceeds [`Limits::max_phnum`].
    TooManyPhdrs(u16),
    /// The program header table extends past the end of the image.
    PhdrTableOutOfFile {
        phoff: u64,
        size: u64,
        file_size: u64,
    },
    /// The `PT_INTERP` header at this index holds no NUL-terminated UTF-8 path of at most
    /// 4095 bytes.
    BadInterpreter(usize),
    /// No `PT_LOAD` segment with a non-zero memory size.
    NoLoadSegments,
    /// A segment's (or the `PT_INTERP` or `PT_TLS` header's) file range leaves the image.
    SegmentTruncated {
        index: usize,
        offset: u64,
        filesz: u64,
        file_size: u64,
    },
    /// A segment's `p_filesz` exceeds its `p_memsz`.
    FileSizeExceedsMemSize {
        index: usize,
        filesz: u64,
        memsz: u64,
    },
    /// A segment's `p_align` is neither 0, 1 nor a power of two.
    BadAlignment { index: usize, align: u64 },
    /// A segment's `p_offset` and `p_vaddr` differ modulo `p_align`.
    Misaligned {
        index: usize,
        vaddr: u64,
        offset: u64,
        align: u64,
    },
    /// A segment's `p_vaddr + p_memsz`, rounded up to a page, overflows.
    AddressOverflow {
        index: usize,
        vaddr: u64,
        memsz: u64,
    },
    /// A segment starts below the previous one, at `prev_vaddr`.
    NotAscending {
        index: usize,
        vaddr: u64,
        prev_vaddr: u64,
    },
    /// A segment starts before the previous one ends, at `prev_end`.
    Overlap {
        index: usize,
        vaddr: u64,
        prev_end: u64,
    },
    /// A segment's first page, at its (relocated) `vaddr`, lies below [`Limits::min_addr`].
    BelowMinAddr { index: usize, vaddr: u64, min: u64 },
    /// A segment's last page ends at `end` (relocated), above [`Limits::user_end`].
    AboveUserEnd { index: usize, end: u64, limit: u64 },
    /// The segments' memory sizes add up to more than [`Limits::max_total`] (saturating).
    TooLarge { total: u64, max: u64 },
    /// The entry point lies in no executable segment.
    EntryNotExecutable(u64),
    /// The address in `PT_PHDR` lies outside the segments.
    PhdrNotLoaded(u64),
    /// [`Program::relocated`] on a program that is not static-PIE.
    NotRelocatable,
    /// [`Program::relocated`] with a base that is not page aligned.
    BadBase(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not an ELF file (bad magic)"),
            Self::TruncatedHeader(len) => {
                write!(f, "file too short for an ELF header ({len} bytes)")
            }
            Self::NotElf64(class) => write!(f, "not a 64-bit ELF file (class {class})"),
            Self::NotLittleEndian(data) => write!(f, "not a little-endian ELF file (data {data})"),
            Self::BadVersion(version) => write!(f, "unknown ELF version {version}"),
            Self::BadMachine(machine) => write!(f, "not an x86_64 program (machine {machine})"),
            Self::NotExecutable(e_type) => write!(f, "not an executable (ELF type {e_type})"),
            Self::BadPhentsize(size) => write!(f, "program header size is {size}, not 56"),
            Self::TooManyPhdrs(phnum) => write!(f, "too many program headers ({phnum})"),
            Self::PhdrTableOutOfFile {
                phoff,
                size,
                file_size,
            } => write!(
                f,
                "program header table extends past the end of the file \
                 (offset {phoff:#x} + size {size:#x} > file size {file_size:#x})"
            ),
            Self::BadInterpreter(index) => write!(
                f,
                "program header {index} (PT_INTERP) holds no NUL-terminated path"
            ),
            Self::NoLoadSegments => write!(f, "no loadable segment"),
            Self::SegmentTruncated {
                index,
                offset,
                filesz,
                file_size,
            } => write!(
                f,
                "segment {index} extends past the end of the file \
                 (offset {offset:#x} + size {filesz:#x} > file size {file_size:#x})"
            ),
            Self::FileSizeExceedsMemSize {
                index,
                filesz,
                memsz,
            } => write!(
                f,
                "segment {index} has more bytes in the file than in memory \
                 ({filesz:#x} > {memsz:#x})"
            ),
            Self::BadAlignment { index, align } => {
                write!(
                    f,
                    "segment {index} alignment {align:#x} is not a power of two"
                )
            }
            Self::Misaligned {
                index,
                vaddr,
                offset,
                align,
            } => write!(
                f,
                "segment {index} address {vaddr:#x} and offset {offset:#x} \
                 differ modulo its alignment {align:#x}"
            ),
            Self::AddressOverflow {
                index,
                vaddr,
                memsz,
            } => write!(
                f,
                "segment {index} wraps around the address space ({vaddr:#x} + {memsz:#x})"
            ),
            Self::NotAscending {
                index,
                vaddr,
                prev_vaddr,
            } => write!(
                f,
                "segment {index} at {vaddr:#x} is below the previous one at {prev_vaddr:#x}"
            ),
            Self::Overlap {
                index,
                vaddr,
                prev_end,
            } => write!(
                f,
                "segment {index} at {vaddr:#x} overlaps the previous one, ending at {prev_end:#x}"
            ),
            Self::BelowMinAddr { index, vaddr, min } => write!(
                f,
                "segment {index} at {vaddr:#x} is below the lowest user address {min:#x}"
            ),
            Self::AboveUserEnd { index, end, limit } => write!(
                f,
                "segment {index} ends at {end:#x}, past the end of user space {limit:#x}"
            ),
            Self::TooLarge { total, max } => {
                write!(f, "segments too large ({total:#x} bytes > limit {max:#x})")
            }
            Self::EntryNotExecutable(entry) => {
                write!(f, "entry point {entry:#x} is not in an executable segment")
            }
            Self::PhdrNotLoaded(vaddr) => {
                write!(f, "PT_PHDR at {vaddr:#x} lies outside the loaded segments")
            }
            Self::NotRelocatable => write!(f, "only a static-PIE program can be relocated"),
            Self::BadBase(base) => write!(f, "load base {base:#x} is not page aligned"),
        }
    }
}

impl core::error::Error for ElfError {}

/// Validates the static x86_64 executable `image` and describes it for the loader.
///
/// Accepts ELF64 little-endian x86_64 images of type `ET_EXEC`, and `ET_DYN` (static-PIE),
/// whose addresses stay relative: move them with [`Program::relocated`]. For `ET_EXEC`, every
/// segment's page range must lie in `[limits.min_addr, limits.user_end)`; for `ET_DYN`, only
/// the upper bound is checked here.
///
/// # Errors
///
/// Any defect of the image, as an [`ElfError`]; the checks run in header order, so the error
/// names the first defect found.
pub fn parse(image: &[u8], limits: &Limits) -> Result<Program, ElfError> {
    let file_size = image.len() as u64;
    if image.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::BadMagic);
    }
    let Some(h) = image.first_chunk::<EHDR_SIZE>() else {
        return Err(ElfError::TruncatedHeader(file_size));
    };
    let u16_at = |at| u16::from_le_bytes(field(h, at));
    let u64_at = |at| u64::from_le_bytes(field(h, at));
    let e_version = u32::from_le_bytes(field(h, 20));
    let (e_type, machine, phentsize, phnum) = (u16_at(16), u16_at(18), u16_at(54), u16_at(56));
    let (entry, phoff) = (u64_at(24), u64_at(32));
    if h[4] != ELFCLASS64 {
        return Err(ElfError::NotElf64(h[4]));
    }
    if h[5] != ELFDATA2LSB {
        return Err(ElfError::NotLittleEndian(h[5]));
    }
    if u32::from(h[6]) != EV_CURRENT {
        return Err(ElfError::BadVersion(h[6].into()));
    }
    if e_version != EV_CURRENT {
        return Err(ElfError::BadVersion(e_version));
    }
    if machine != EM_X86_64 {
        return Err(ElfError::BadMachine(machine));
    }
    let is_pie = match e_type {
        ET_EXEC => false,
        ET_DYN => true,
        _ => return Err(ElfError::NotExecutable(e_type)),
    };
    if phentsize != PHDR_SIZE {
        return Err(ElfError::BadPhentsize(phentsize));
    }
    if phnum > limits.max_phnum {
        return Err(ElfError::TooManyPhdrs(phnum));
    }
    let size = u64::from(phnum) * u64::from(PHDR_SIZE);
    let table = phoff
        .checked_add(size)
        .filter(|&end| end <= file_size)
        .and_then(|end| image.get(phoff as usize..end as usize))
        .ok_or(ElfError::PhdrTableOutOfFile {
            phoff,
            size,
            file_size,
        })?;

    let mut segments: Vec<Segment> = Vec::new();
    let (mut phdr_header, mut tls, mut stack_executable) = (None, None, false);
    let mut interpreter = None;
    for (index, raw) in table.chunks_exact(PHDR_SIZE.into()).enumerate() {
        let ph = Phdr::read(raw);
        match ph.p_type {
            PT_LOAD => {
                let segment = ph.load_segment(index, file_size)?;
                if let Some(prev) = segments.last() {
                    let (vaddr, prev_vaddr, prev_end) = (ph.vaddr, prev.vaddr, prev.end());
                    if segment.memsz > 0 && vaddr < prev_vaddr {
                        return Err(ElfError::NotAscending {
                            index,
                            vaddr,
                            prev_vaddr,
                        });
                    }
                    if segment.memsz > 0 && vaddr < prev_end {
                        return Err(ElfError::Overlap {
                            index,
                            vaddr,
                            prev_end,
                        });
                    }
                }
                if segment.memsz > 0 {
                    segments.push(segment);
                }
            }
            PT_INTERP => {
                let bytes = ph.file_bytes(index, image)?;
                let path = bytes
                    .iter()
                    .position(|&b| b == 0)
                    .filter(|&nul| nul > 0 && nul < MAX_INTERP_LEN)
                    .and_then(|nul| core::str::from_utf8(&bytes[..nul]).ok())
                    .ok_or(ElfError::BadInterpreter(index))?;
                interpreter.get_or_insert_with(|| String::from(path));
            }
            PT_PHDR => _ = phdr_header.get_or_insert(ph.vaddr),
            PT_TLS => {
                ph.file_bytes(index, image)?;
                let (vaddr, filesz, memsz, align) = (ph.vaddr, ph.filesz, ph.memsz, ph.align);
                tls.get_or_insert(Tls {
                    vaddr,
                    filesz,
                    memsz,
                    align,
                });
            }
            PT_GNU_STACK => stack_executable = ph.flags & PF_X != 0,
            _ => {}
        }
    }

    if segments.is_empty() {
        return Err(ElfError::NoLoadSegments);
    }
    let total = segments
        .iter()
        .fold(0, |sum: u64, s| sum.saturating_add(s.memsz));
    if total > limits.max_total {
        return Err(ElfError::TooLarge {
            total,
            max: limits.max_total,
        });
    }
    check_placement(&segments, 0, limits, !is_pie)?;
    let contains = |s: &&Segment, start: u64, len: u64| {
        s.vaddr <= start && start.checked_add(len).is_some_and(|end| end <= s.end())
    };
    if !segments
        .iter()
        .any(|s| s.executable && contains(&s, entry, 1))
    {
        return Err(ElfError::EntryNotExecutable(entry));
    }
    let phdr_vaddr = match phdr_header {
        Some(vaddr) => match segments.iter().find(|s| contains(s, vaddr, size)) {
            Some(_) => Some(vaddr),
            None => return Err(ElfError::PhdrNotLoaded(vaddr)),
        },
        // The table's end lies in the image, and a segment's file range too: no overflow.
        None => segments
            .iter()
            .find(|s| s.file_offset <= phoff && phoff + size <= s.file_offset + s.filesz)
            .map(|s| s.vaddr + (phoff - s.file_offset)),
    };
    let phent = PHDR_SIZE;
    let load_bias = 0;
    Ok(Program {
        entry,
        segments,
        phdr_vaddr,
        phent,
        phnum,
        stack_executable,
        tls,
        is_pie,
        load_bias,
        interpreter,
    })
}

/// Checks that every segment, moved by `bias`, lies below `limits.user_end` and, if `check_min`,
/// at or above `limits.min_addr`, with page granularity.
fn check_placement(
    segments: &[Segment],
    bias: u64,
    limits: &Limits,
    check_min: bool,
) -> Result<(), ElfError> {
    for &Segment {
        index,
        vaddr,
        memsz,
        ..
    } in segments
    {
        let (vaddr, limit, min) = (vaddr.saturating_add(bias), limits.user_end, limits.min_addr);
        let end = page_up(vaddr.saturating_add(memsz)).unwrap_or(u64::MAX);
        if end > limit {
            return Err(ElfError::AboveUserEnd { index, end, limit });
        }
        if check_min && page_down(vaddr) < min {
            return Err(ElfError::BelowMinAddr { index, vaddr, min });
        }
    }
    Ok(())
}

/// An ELF64 program header, the fields used.
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl Phdr {
    /// Decodes the 56 bytes of `raw` (`p_paddr`, at 24, is ignored).
    fn read(raw: &[u8]) -> Self {
        let u64_at = |at| u64::from_le_bytes(field(raw, at));
        Self {
            p_type: u32::from_le_bytes(field(raw, 0)),
            flags: u32::from_le_bytes(field(raw, 4)),
            offset: u64_at(8),
            vaddr: u64_at(16),
            filesz: u64_at(32),
            memsz: u64_at(40),
            align: u64_at(48),
        }
    }

    /// The bytes of the file range `[offset, offset + filesz)`, which must lie in `image`.
    fn file_bytes<'a>(&self, index: usize, image: &'a [u8]) -> Result<&'a [u8], ElfError> {
        let (offset, filesz, file_size) = (self.offset, self.filesz, image.len() as u64);
        offset
            .checked_add(filesz)
            .filter(|&end| end <= file_size)
            .and_then(|end| image.get(offset as usize..end as usize))
            .ok_or(ElfError::SegmentTruncated {
                index,
                offset,
                filesz,
                file_size,
            })
    }

    /// Validates a `PT_LOAD` header on its own: file range, sizes, alignment, overflow.
    fn load_segment(&self, index: usize, file_size: u64) -> Result<Segment, ElfError> {
        let Self {
            offset,
            filesz,
            memsz,
            vaddr,
            align,
            ..
        } = *self;
        if offset.checked_add(filesz).is_none_or(|end| end > file_size) {
            return Err(ElfError::SegmentTruncated {
                index,
                offset,
                filesz,
                file_size,
            });
        }
        if filesz > memsz {
            return Err(ElfError::FileSizeExceedsMemSize {
                index,
                filesz,
                memsz,
            });
        }
        if align > 1 && !align.is_power_of_two() {
            return Err(ElfError::BadAlignment { index, align });
        }
        if align > 1 && vaddr % align != offset % align {
            return Err(ElfError::Misaligned {
                index,
                vaddr,
                offset,
                align,
            });
        }
        if vaddr.checked_add(memsz).and_then(page_up).is_none() {
            return Err(ElfError::AddressOverflow {
                index,
                vaddr,
                memsz,
            });
        }
        Ok(Segment {
            index,
            vaddr,
            memsz,
            file_offset: offset,
            filesz,
            readable: self.flags & PF_R != 0,
            writable: self.flags & PF_W != 0,
            executable: self.flags & PF_X != 0,
        })
    }
}

/// The `N` bytes of `bytes` at `at`; callers pass in-bounds offsets (zeroes otherwise).
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk)
        .copied()
        .unwrap_or([0; N])
}
