//! mmap, munmap, mprotect, madvise, brk; demand faults inside system calls (mremap has a
//! module of its own).

use alloc::string::String;

use urt::sys::{self, Errno, PAGE_SIZE};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{KERNEL_ADDR, Mapping, mapped, pipe, readable, unmapped_addr, writable};
use urt::ktap::TestResult;

const RW: usize = sys::PROT_READ | sys::PROT_WRITE;
const ANON: usize = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS;
const NOFD: usize = usize::MAX;
/// The end of user space (Linux's `TASK_SIZE` on x86-64).
const USER_END: usize = 0x7fff_ffff_f000;
/// Linux's `PROT_SEM`, which `mprotect` accepts on every architecture.
const PROT_SEM: usize = 0x8;

pub fn mmap_anon_rw_zeroed() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    check_eq!(m.addr % PAGE_SIZE, 0);
    for i in 0..4 {
        check!(m.all(i, 0), "page {i} of a fresh mapping is not zero");
        m.fill(i, i as u8 + 1);
    }
    for i in 0..4 {
        check!(
            m.all(i, i as u8 + 1),
            "page {i} did not keep what was written"
        );
    }
    Ok(())
}

pub fn mmap_fixed_replaces() -> TestResult {
    let m = check_ok!(Mapping::rw(3));
    for i in 0..3 {
        m.fill(i, 0xaa);
    }
    let got = check_ok!(sys::mmap(
        m.page(1),
        PAGE_SIZE,
        RW,
        ANON | sys::MAP_FIXED,
        NOFD,
        0
    ));
    check_eq!(got, m.page(1));
    check!(
        m.all(0, 0xaa) && m.all(2, 0xaa),
        "MAP_FIXED disturbed the neighbours"
    );
    check!(m.all(1, 0), "the page MAP_FIXED replaced is not zero");
    Ok(())
}

pub fn mmap_fixed_noreplace() -> TestResult {
    let m = check_ok!(Mapping::rw(3));
    m.fill(1, 7);
    // With MAP_FIXED as well, MAP_FIXED_NOREPLACE still refuses a busy range.
    let both = ANON | sys::MAP_FIXED | sys::MAP_FIXED_NOREPLACE;
    check_err!(
        sys::mmap(m.page(1), PAGE_SIZE, RW, both, NOFD, 0),
        Errno::EEXIST
    );
    check_err!(
        sys::mmap(
            m.page(1),
            PAGE_SIZE,
            RW,
            ANON | sys::MAP_FIXED_NOREPLACE,
            NOFD,
            0
        ),
        Errno::EEXIST
    );
    // Overlapping only partly is refused too.
    check_err!(
        sys::mmap(
            m.page(2),
            2 * PAGE_SIZE,
            RW,
            ANON | sys::MAP_FIXED_NOREPLACE,
            NOFD,
            0
        ),
        Errno::EEXIST
    );
    check!(
        m.all(1, 7),
        "a refused MAP_FIXED_NOREPLACE changed the page"
    );
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    let got = check_ok!(sys::mmap(
        m.page(1),
        PAGE_SIZE,
        RW,
        ANON | sys::MAP_FIXED_NOREPLACE,
        NOFD,
        0
    ));
    check_eq!(
        got,
        m.page(1),
        "MAP_FIXED_NOREPLACE on a free range maps exactly there"
    );
    check!(m.all(1, 0));
    Ok(())
}

pub fn mmap_hint_free_is_used() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    let hint = m.page(1);
    check_ok!(sys::munmap(m.addr, m.len));
    let got = check_ok!(sys::mmap(hint, PAGE_SIZE, RW, ANON, NOFD, 0));
    let _ = sys::munmap(got, PAGE_SIZE);
    check_eq!(got, hint, "a free, aligned hint is where the mapping goes");
    core::mem::forget(m);
    Ok(())
}

pub fn mmap_hint_busy_moves() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    m.fill(0, 3);
    m.fill(1, 3);
    let got = check_ok!(sys::mmap(m.addr, 2 * PAGE_SIZE, RW, ANON, NOFD, 0));
    let _ = sys::munmap(got, 2 * PAGE_SIZE);
    check!(
        got + 2 * PAGE_SIZE <= m.addr || got >= m.addr + m.len,
        "a hint on a busy range overlapped it: {got:#x} vs {:#x}",
        m.addr
    );
    check!(m.all(0, 3) && m.all(1, 3), "the busy range changed");
    // A hint in the kernel half is ignored, not an error.
    let got = check_ok!(sys::mmap(KERNEL_ADDR, PAGE_SIZE, RW, ANON, NOFD, 0));
    let _ = sys::munmap(got, PAGE_SIZE);
    check!(got < KERNEL_ADDR && got % PAGE_SIZE == 0, "got {got:#x}");
    // An unaligned hint without MAP_FIXED is only a hint.
    let got = check_ok!(sys::mmap(m.addr + 123, PAGE_SIZE, RW, ANON, NOFD, 0));
    let _ = sys::munmap(got, PAGE_SIZE);
    check_eq!(got % PAGE_SIZE, 0);
    Ok(())
}

pub fn mmap_noreserve() -> TestResult {
    let pages = 16384; // 64 MiB
    let m = check_ok!(Mapping::with_flags(pages, RW, sys::MAP_NORESERVE));
    m.fill(0, 1);
    m.fill(pages - 1, 2);
    check!(m.all(0, 1) && m.all(pages - 1, 2) && m.all(pages / 2, 0));
    Ok(())
}

pub fn mmap_populate() -> TestResult {
    let pages = 32;
    let m = check_ok!(Mapping::with_flags(pages, RW, sys::MAP_POPULATE));
    let before = sys::minor_faults();
    for i in 0..pages {
        // SAFETY: inside the mapping.
        unsafe { ((m.page(i)) as *mut u8).write_volatile(1) };
    }
    let faults = sys::minor_faults() - before;
    check!(
        faults < pages as u64 / 2,
        "touching {pages} MAP_POPULATE pages took {faults} page faults"
    );
    Ok(())
}

pub fn mmap_prot_none() -> TestResult {
    let m = check_ok!(Mapping::new(2, sys::PROT_NONE));
    check!(
        !readable(m.addr),
        "a PROT_NONE page is readable by the kernel"
    );
    check!(
        !writable(m.addr),
        "a PROT_NONE page is writable by the kernel"
    );
    check_ok!(sys::mprotect(m.addr, m.len, RW));
    m.fill(1, 9);
    check!(m.all(0, 0) && m.all(1, 9));
    Ok(())
}

pub fn mmap_prot_read() -> TestResult {
    let m = check_ok!(Mapping::new(1, sys::PROT_READ));
    check!(m.all(0, 0));
    check!(readable(m.addr));
    check!(
        !writable(m.addr),
        "a PROT_READ page is writable by the kernel"
    );
    Ok(())
}

pub fn mmap_prot_exec() -> TestResult {
    let m = check_ok!(Mapping::rw(1));
    // mov eax, 42; ret
    let code = [0xb8u8, 42, 0, 0, 0, 0xc3];
    // SAFETY: the page is ours and writable.
    unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), m.addr as *mut u8, code.len()) };
    check_ok!(sys::mprotect(
        m.addr,
        m.len,
        sys::PROT_READ | sys::PROT_EXEC
    ));
    // SAFETY: the page holds the function above and is executable.
    let f: extern "C" fn() -> u32 = unsafe { core::mem::transmute(m.addr) };
    check_eq!(f(), 42);
    Ok(())
}

pub fn mmap_einval() -> TestResult {
    let m = check_ok!(Mapping::rw(1));
    check_err!(
        sys::mmap(m.addr + 1, PAGE_SIZE, RW, ANON | sys::MAP_FIXED, NOFD, 0),
        Errno::EINVAL
    );
    check_err!(sys::mmap(0, 0, RW, ANON, NOFD, 0), Errno::EINVAL);
    // Neither MAP_PRIVATE nor MAP_SHARED.
    check_err!(
        sys::mmap(0, PAGE_SIZE, RW, sys::MAP_ANONYMOUS, NOFD, 0),
        Errno::EINVAL
    );
    // Both.
    check_err!(
        sys::mmap(0, PAGE_SIZE, RW, ANON | sys::MAP_SHARED, NOFD, 0),
        Errno::EINVAL
    );
    // An offset that is not page-aligned.
    check_err!(sys::mmap(0, PAGE_SIZE, RW, ANON, NOFD, 123), Errno::EINVAL);
    Ok(())
}

pub fn mmap_enomem() -> TestResult {
    // A length that wraps when rounded up to pages: Linux says ENOMEM (not EINVAL).
    check_err!(
        sys::mmap(0, usize::MAX - 100, RW, ANON, NOFD, 0),
        Errno::ENOMEM
    );
    // More than the whole user address space (128 TiB), no hint.
    check_err!(sys::mmap(0, 1 << 47, RW, ANON, NOFD, 0), Errno::ENOMEM);
    // MAP_FIXED in the kernel half.
    check_err!(
        sys::mmap(KERNEL_ADDR, PAGE_SIZE, RW, ANON | sys::MAP_FIXED, NOFD, 0),
        Errno::ENOMEM
    );
    Ok(())
}

/// mmap's checks in Linux's order: the place (a fixed range past the end of user space is
/// ENOMEM, even unaligned or of no type) before the type and the file; `prot`'s bits beyond the
/// access bits are ignored, so a file's own errors show through them.
pub fn mmap_checks_the_place_before_the_kind() -> TestResult {
    const UNKNOWN_PROT: usize = (1 << 52) | sys::PROT_GROWSUP;
    let past_end = USER_END - PAGE_SIZE + 1;
    let typeless = sys::MAP_ANONYMOUS | sys::MAP_FIXED;
    check_err!(
        sys::mmap(past_end, PAGE_SIZE, RW, typeless, NOFD, 0),
        Errno::ENOMEM
    );
    check_err!(
        sys::mmap(USER_END, PAGE_SIZE, RW, ANON | sys::MAP_FIXED, NOFD, 0),
        Errno::ENOMEM
    );
    let addr = check_ok!(sys::mmap(0, PAGE_SIZE, RW | UNKNOWN_PROT, ANON, NOFD, 0));
    let usable = writable(addr);
    check_ok!(sys::munmap(addr, PAGE_SIZE));
    check!(usable, "a mapping with unknown prot bits is not writable");
    let (read_end, write_end) = check_ok!(pipe(sys::O_CLOEXEC));
    let read_only = sys::PROT_READ | UNKNOWN_PROT;
    check_err!(
        sys::mmap(0, PAGE_SIZE, read_only, sys::MAP_SHARED, write_end.0, 0),
        Errno::EACCES
    );
    check_err!(
        sys::mmap(0, PAGE_SIZE, read_only, sys::MAP_PRIVATE, read_end.0, 0),
        Errno::ENODEV
    );
    Ok(())
}

/// MAP_GROWSDOWN is for private anonymous memory; mprotect's PROT_GROWSDOWN applies from the
/// start of such a VMA and is EINVAL for any other, PROT_GROWSUP is EINVAL for every VMA
/// (none grows up on x86-64), both together EINVAL before anything else.
pub fn mprotect_grows_flags() -> TestResult {
    let shared_anon = sys::MAP_SHARED | sys::MAP_ANONYMOUS | sys::MAP_GROWSDOWN;
    check_err!(
        sys::mmap(0, PAGE_SIZE, RW, shared_anon, NOFD, 0),
        Errno::EINVAL
    );
    let stack = check_ok!(Mapping::with_flags(3, RW, sys::MAP_GROWSDOWN));
    let down = sys::PROT_READ | sys::PROT_GROWSDOWN;
    check_ok!(sys::mprotect(stack.page(2), PAGE_SIZE, down));
    check!(
        readable(stack.page(0)) && !writable(stack.page(0)),
        "PROT_GROWSDOWN did not apply from the start of the VMA"
    );
    let plain = check_ok!(Mapping::rw(2));
    check_err!(sys::mprotect(plain.page(1), PAGE_SIZE, down), Errno::EINVAL);
    let up = sys::PROT_READ | sys::PROT_GROWSUP;
    check_err!(sys::mprotect(plain.addr, PAGE_SIZE, up), Errno::EINVAL);
    check!(writable(plain.addr), "a refused mprotect changed the page");
    let both = down | up;
    check_err!(
        sys::mprotect(unmapped_addr(), PAGE_SIZE, both),
        Errno::EINVAL
    );
    Ok(())
}

pub fn mmap_shared_anon_threads() -> TestResult {
    let len = 2 * PAGE_SIZE;
    let addr = check_ok!(sys::mmap(
        0,
        len,
        RW,
        sys::MAP_SHARED | sys::MAP_ANONYMOUS,
        NOFD,
        0
    ));
    let t = urt::thread::spawn(move || {
        // SAFETY: the shared mapping lives until after join.
        unsafe {
            core::ptr::write_bytes((addr + PAGE_SIZE) as *mut u8, 0x5c, PAGE_SIZE);
            (*(addr as *const core::sync::atomic::AtomicU32))
                .store(1, core::sync::atomic::Ordering::Release);
        }
        let _ = sys::futex(addr, sys::FUTEX_WAKE, 1, 0, 0, 0);
        sys::gettid()
    });
    // SAFETY: the first word of the mapping is only used atomically.
    let word = unsafe { &*(addr as *const core::sync::atomic::AtomicU32) };
    while word.load(core::sync::atomic::Ordering::Acquire) == 0 {
        let ts = sys::Timespec::from_nanos(100_000_000);
        let _ = sys::futex(addr, sys::FUTEX_WAIT, 0, &raw const ts as usize, 0, 0);
    }
    let tid = t.join();
    check!(tid != sys::gettid());
    // SAFETY: inside the mapping.
    let s = unsafe { core::slice::from_raw_parts((addr + PAGE_SIZE) as *const u8, PAGE_SIZE) };
    let ok = s.iter().all(|&b| b == 0x5c);
    check_ok!(sys::munmap(addr, len));
    check!(
        ok,
        "the main thread does not see the thread's writes to the shared mapping"
    );
    Ok(())
}

pub fn munmap_middle_splits() -> TestResult {
    let m = check_ok!(Mapping::rw(5));
    for i in 0..5 {
        m.fill(i, i as u8 + 10);
    }
    check_ok!(sys::munmap(m.page(2), PAGE_SIZE));
    check!(!mapped(m.page(2)), "the unmapped page is still mapped");
    for i in [0, 1, 3, 4] {
        check!(mapped(m.page(i)), "page {i} went away with its neighbour");
        check!(m.all(i, i as u8 + 10), "page {i} lost its data");
    }
    check!(!readable(m.page(2)));
    Ok(())
}

pub fn munmap_spanning_mappings() -> TestResult {
    let a = check_ok!(Mapping::rw(4));
    // Replace the upper half with a second mapping of other permissions: two VMAs.
    check_ok!(sys::mmap(
        a.page(2),
        2 * PAGE_SIZE,
        sys::PROT_READ,
        ANON | sys::MAP_FIXED,
        NOFD,
        0
    ));
    check_ok!(sys::munmap(a.page(1), 2 * PAGE_SIZE));
    check!(mapped(a.page(0)) && mapped(a.page(3)));
    check!(!mapped(a.page(1)) && !mapped(a.page(2)));
    Ok(())
}

pub fn munmap_errors() -> TestResult {
    let m = check_ok!(Mapping::rw(1));
    check_err!(sys::munmap(m.addr + 1, PAGE_SIZE), Errno::EINVAL);
    check_err!(sys::munmap(m.addr, 0), Errno::EINVAL);
    check_err!(sys::munmap(KERNEL_ADDR, PAGE_SIZE), Errno::EINVAL);
    check_err!(
        sys::munmap(m.addr, usize::MAX - PAGE_SIZE + 1),
        Errno::EINVAL
    );
    check!(mapped(m.addr), "a refused munmap removed the page");
    Ok(())
}

pub fn munmap_nothing_is_ok() -> TestResult {
    let addr = unmapped_addr();
    check_eq!(check_ok!(sys::munmap(addr, PAGE_SIZE)), 0);
    // An unaligned length is rounded up.
    let m = check_ok!(Mapping::rw(2));
    check_ok!(sys::munmap(m.addr, 1));
    check!(!mapped(m.page(0)) && mapped(m.page(1)));
    Ok(())
}

pub fn mprotect_splits() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    for i in 0..4 {
        m.fill(i, 0x11);
    }
    check_ok!(sys::mprotect(m.page(1), PAGE_SIZE, sys::PROT_READ));
    check!(
        !writable(m.page(1)),
        "page 1 is still writable after PROT_READ"
    );
    check!(
        readable(m.page(1)) && m.all(1, 0x11),
        "page 1 lost its data"
    );
    for i in [0, 2, 3] {
        check!(
            writable(m.page(i)),
            "page {i} lost PROT_WRITE with its neighbour"
        );
    }
    check_ok!(sys::mprotect(m.page(1), PAGE_SIZE, RW));
    m.fill(1, 0x22);
    check!(m.all(1, 0x22));
    check_ok!(sys::mprotect(m.addr, m.len, sys::PROT_NONE));
    check!(!readable(m.page(0)) && !readable(m.page(3)));
    Ok(())
}

pub fn mprotect_errors() -> TestResult {
    let m = check_ok!(Mapping::rw(3));
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    check_err!(sys::mprotect(m.addr, m.len, sys::PROT_READ), Errno::ENOMEM);
    check_err!(
        sys::mprotect(m.page(1), PAGE_SIZE, sys::PROT_READ),
        Errno::ENOMEM
    );
    check_err!(
        sys::mprotect(m.addr + 1, PAGE_SIZE, sys::PROT_READ),
        Errno::EINVAL
    );
    check_err!(sys::mprotect(m.addr, PAGE_SIZE, 0x10), Errno::EINVAL);
    check_err!(
        sys::mprotect(KERNEL_ADDR, PAGE_SIZE, sys::PROT_READ),
        Errno::ENOMEM
    );
    check_eq!(check_ok!(sys::mprotect(m.addr, 0, sys::PROT_READ)), 0);
    // A length that rounds up past the end of the address space is ENOMEM before an unknown
    // bit of prot is EINVAL; PROT_SEM is known (and ignored).
    check_err!(sys::mprotect(m.addr, usize::MAX, 1 << 45), Errno::ENOMEM);
    check_ok!(sys::mprotect(m.addr, PAGE_SIZE, sys::PROT_READ | PROT_SEM));
    Ok(())
}

pub fn madvise_dontneed_zeroes() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    for i in 0..4 {
        m.fill(i, 0x77);
    }
    check_ok!(sys::madvise(m.page(1), 2 * PAGE_SIZE, sys::MADV_DONTNEED));
    check!(
        m.all(0, 0x77) && m.all(3, 0x77),
        "MADV_DONTNEED hit pages outside its range"
    );
    check!(
        m.all(1, 0) && m.all(2, 0),
        "pages read back non-zero after MADV_DONTNEED"
    );
    m.fill(1, 5);
    check!(m.all(1, 5));
    Ok(())
}

pub fn madvise_errors() -> TestResult {
    let m = check_ok!(Mapping::rw(1));
    check_ok!(sys::madvise(m.addr, m.len, sys::MADV_NORMAL));
    check_err!(
        sys::madvise(m.addr + 1, PAGE_SIZE, sys::MADV_DONTNEED),
        Errno::EINVAL
    );
    check_err!(sys::madvise(m.addr, PAGE_SIZE, 9999), Errno::EINVAL);
    check_err!(
        sys::madvise(unmapped_addr(), PAGE_SIZE, sys::MADV_DONTNEED),
        Errno::ENOMEM
    );
    Ok(())
}

/// A layout of consecutive pieces for the range-operation tests: each piece is 2 pages of one
/// kind, mapped with MAP_FIXED over one reserved region, so they are adjacent VMAs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Piece {
    Private,
    Shared,
    /// Private, then made PROT_NONE after it was filled.
    NoAccess,
    /// Unmapped.
    Hole,
}

const PIECE_PAGES: usize = 2;

/// Maps `pieces` side by side, fills every mapped page with `0x5a`, and returns the region.
fn lay_out(pieces: &[Piece]) -> Result<Mapping, urt::ktap::Failure> {
    let region = check_ok!(Mapping::rw(pieces.len() * PIECE_PAGES));
    for (i, piece) in pieces.iter().enumerate() {
        let at = region.page(i * PIECE_PAGES);
        let len = PIECE_PAGES * PAGE_SIZE;
        let fixed = sys::MAP_ANONYMOUS | sys::MAP_FIXED;
        match piece {
            Piece::Shared => {
                check_ok!(sys::mmap(at, len, RW, sys::MAP_SHARED | fixed, NOFD, 0));
            }
            Piece::Private | Piece::NoAccess => {
                check_ok!(sys::mmap(at, len, RW, sys::MAP_PRIVATE | fixed, NOFD, 0));
            }
            Piece::Hole => {
                check_ok!(sys::munmap(at, len));
            }
        }
        if *piece != Piece::Hole {
            for page in 0..PIECE_PAGES {
                region.fill(i * PIECE_PAGES + page, 0x5a);
            }
        }
        if *piece == Piece::NoAccess {
            check_ok!(sys::mprotect(at, len, sys::PROT_NONE));
        }
    }
    Ok(region)
}

/// What every mapped piece of `region` holds now, as one letter a page: `z` zeroes, `d` the
/// data, `?` anything else, `-` nothing mapped. PROT_NONE pieces are made readable to look.
fn contents(region: &Mapping, pieces: &[Piece]) -> String {
    let mut seen = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        if *piece == Piece::NoAccess {
            let _ = sys::mprotect(region.page(i * PIECE_PAGES), PIECE_PAGES * PAGE_SIZE, RW);
        }
        for page in i * PIECE_PAGES..(i + 1) * PIECE_PAGES {
            seen.push(if !mapped(region.page(page)) {
                '-'
            } else if region.all(page, 0) {
                'z'
            } else if region.all(page, 0x5a) {
                'd'
            } else {
                '?'
            });
        }
        seen.push(' ');
    }
    seen.pop();
    seen
}

/// MADV_DONTNEED over VMAs of several kinds: each private piece reads back zeroes (PROT_NONE
/// ones too, once readable again), each shared piece keeps its data, a hole makes the call
/// fail with ENOMEM after the pieces on both sides of it were dropped (Linux's answers).
pub fn madvise_dontneed_mixed_kinds() -> TestResult {
    use Piece::*;
    let cases: [(&[Piece], Result<usize, Errno>, &str); 6] = [
        (&[Private, Shared], Ok(0), "zz dd"),
        (&[Shared, Private], Ok(0), "dd zz"),
        (&[Private, Shared, Private], Ok(0), "zz dd zz"),
        (&[Shared, NoAccess, Shared], Ok(0), "dd zz dd"),
        (
            &[Private, NoAccess, Hole, Shared, Private],
            Err(Errno::ENOMEM),
            "zz zz -- dd zz",
        ),
        (&[Hole, Private, Shared], Err(Errno::ENOMEM), "-- zz dd"),
    ];
    for (pieces, expected, after) in cases {
        let region = lay_out(pieces)?;
        let result = sys::madvise(region.addr, region.len, sys::MADV_DONTNEED);
        let seen = contents(&region, pieces);
        check!(
            result == expected && seen == after,
            "{pieces:?}: madvise {result:?} leaving {seen}, expected {expected:?} leaving {after}"
        );
    }
    Ok(())
}

/// MADV_FREE applies to private anonymous memory only: a shared piece stops the walk with
/// EINVAL, and what lies after it is untouched. (Pieces before it may be freed lazily, so
/// their contents are not checked.)
pub fn madvise_free_stops_at_shared() -> TestResult {
    use Piece::*;
    let pieces = [Shared, Private];
    let region = lay_out(&pieces)?;
    check_err!(
        sys::madvise(region.addr, region.len, sys::MADV_FREE),
        Errno::EINVAL
    );
    check_eq!(contents(&region, &pieces), "dd dd");
    let pieces = [Private, Shared];
    let region = lay_out(&pieces)?;
    check_err!(
        sys::madvise(region.addr, region.len, sys::MADV_FREE),
        Errno::EINVAL
    );
    check!(contents(&region, &pieces).ends_with("dd"));
    // A private range alone is accepted.
    let region = lay_out(&[Private])?;
    check_ok!(sys::madvise(region.addr, region.len, sys::MADV_FREE));
    Ok(())
}

/// mprotect over VMAs of several kinds changes each; over a hole it fails with ENOMEM after
/// changing the pieces before the hole, and a range that starts in a hole changes nothing.
pub fn mprotect_mixed_kinds_and_holes() -> TestResult {
    use Piece::*;
    let cases: [(&[Piece], Result<usize, Errno>, &str); 4] = [
        (&[Private, Shared, NoAccess], Ok(0), "rr rr rr"),
        (
            &[Shared, Private, Hole, Private],
            Err(Errno::ENOMEM),
            "rr rr -- ww",
        ),
        (&[Hole, Private, Shared], Err(Errno::ENOMEM), "-- ww ww"),
        (&[Private, NoAccess, Hole], Err(Errno::ENOMEM), "rr rr --"),
    ];
    for (pieces, expected, after) in cases {
        let region = lay_out(pieces)?;
        let result = sys::mprotect(region.addr, region.len, sys::PROT_READ);
        let mut seen = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            for page in i * PIECE_PAGES..(i + 1) * PIECE_PAGES {
                let at = region.page(page);
                seen.push(if *piece == Hole {
                    '-'
                } else if !readable(at) {
                    'n'
                } else if writable_keeping_data(at) {
                    'w'
                } else {
                    'r'
                });
            }
            seen.push(' ');
        }
        seen.pop();
        check!(
            result == expected && seen == after,
            "{pieces:?}: mprotect {result:?} leaving {seen}, expected {expected:?} leaving {after}"
        );
        // The data survived the protection change. (This reopens the pieces up to the first
        // hole, which are all that changed; it fails with ENOMEM where there is a hole.)
        let _ = sys::mprotect(region.addr, region.len, RW);
        let data = contents(&region, pieces);
        check!(
            !data.contains('z') && !data.contains('?'),
            "{pieces:?}: data lost by mprotect: {data}"
        );
    }
    Ok(())
}

/// Whether the kernel can write at the readable `addr` ([`writable`]), leaving the bytes there
/// as they were.
fn writable_keeping_data(addr: usize) -> bool {
    // SAFETY: the caller checked that `addr` is readable; [`writable`] probes 16 bytes.
    let saved = unsafe { core::ptr::read_volatile(addr as *const [u8; 16]) };
    let writable = writable(addr);
    if writable {
        // SAFETY: the kernel could write there, so we can.
        unsafe { core::ptr::write_volatile(addr as *mut [u8; 16], saved) };
    }
    writable
}

/// munmap over private, shared, PROT_NONE and unmapped pieces removes every one of them.
pub fn munmap_mixed_kinds() -> TestResult {
    use Piece::*;
    let pieces = [Private, Shared, NoAccess, Hole, Shared];
    let region = lay_out(&pieces)?;
    check_ok!(sys::munmap(region.addr, region.len));
    for page in 0..pieces.len() * PIECE_PAGES {
        check!(!mapped(region.page(page)), "page {page} still mapped");
    }
    Ok(())
}

pub fn brk_grow_shrink() -> TestResult {
    let start = check_ok!(sys::brk(0));
    check!(start != 0, "brk(0) returned 0");
    let grown = check_ok!(sys::brk(start + 16 * PAGE_SIZE));
    check_eq!(grown, start + 16 * PAGE_SIZE, "brk did not grow");
    // SAFETY: the heap now covers [start, grown).
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0x42, grown - start);
        check_eq!(*((grown - 1) as *const u8), 0x42);
    }
    check_eq!(check_ok!(sys::brk(0)), grown);
    check_eq!(check_ok!(sys::brk(start)), start, "brk did not shrink");
    check_eq!(check_ok!(sys::brk(0)), start);
    check!(!mapped(start.next_multiple_of(PAGE_SIZE) + PAGE_SIZE));
    // Growing again gives zeroed memory, not the old contents.
    check_eq!(
        check_ok!(sys::brk(start + 4 * PAGE_SIZE)),
        start + 4 * PAGE_SIZE
    );
    let page = start.next_multiple_of(PAGE_SIZE);
    // SAFETY: [start, start + 4 pages) is heap again.
    let zero = unsafe { *((page + PAGE_SIZE) as *const u8) } == 0;
    check_ok!(sys::brk(start));
    check!(zero, "regrown heap kept old contents");
    Ok(())
}

pub fn brk_refuses_nonsense() -> TestResult {
    let start = check_ok!(sys::brk(0));
    // Below the heap start, or in the kernel half: the break stays where it is.
    check_eq!(check_ok!(sys::brk(0x1000)), start);
    check_eq!(check_ok!(sys::brk(KERNEL_ADDR)), start);
    check_eq!(check_ok!(sys::brk(0)), start);
    Ok(())
}

/// Untouched BSS: the kernel's copy-out into it must fault the page in.
static mut BSS: [u8; 3 * PAGE_SIZE] = [0; 3 * PAGE_SIZE];

pub fn syscall_writes_demand_fault() -> TestResult {
    let m = check_ok!(Mapping::rw(8));
    check_eq!(check_ok!(sys::getrandom(m.page(0) + 100, 64, 0)), 64);
    check_ok!(sys::clock_gettime(sys::CLOCK_MONOTONIC, m.page(1)));
    check_ok!(sys::uname(m.page(2)));
    // A buffer that straddles two untouched pages.
    check_eq!(check_ok!(sys::getrandom(m.page(4) - 32, 64, 0)), 64);
    let bss = (&raw mut BSS) as usize;
    let target = (bss + PAGE_SIZE).next_multiple_of(PAGE_SIZE);
    check_eq!(check_ok!(sys::getrandom(target, 256, 0)), 256);
    // SAFETY: `target..target + 256` lies inside BSS.
    let s = unsafe { core::slice::from_raw_parts(target as *const u8, 256) };
    check!(
        s.iter().any(|&b| b != 0),
        "getrandom into BSS wrote nothing"
    );
    Ok(())
}

pub fn syscall_reads_demand_fault() -> TestResult {
    // The kernel reads untouched (zero) pages: a futex word and a timespec.
    let m = check_ok!(Mapping::rw(4));
    let ts = m.page(1);
    check_err!(
        sys::futex(
            m.page(0),
            sys::FUTEX_WAIT | sys::FUTEX_PRIVATE_FLAG,
            1,
            ts,
            0,
            0
        ),
        Errno::EAGAIN
    );
    // A zero timeout read from an untouched page: returns at once.
    check_err!(
        sys::futex(
            m.page(2),
            sys::FUTEX_WAIT | sys::FUTEX_PRIVATE_FLAG,
            0,
            ts,
            0,
            0
        ),
        Errno::ETIMEDOUT
    );
    check_eq!(check_ok!(sys::nanosleep(m.page(3), 0)), 0);
    Ok(())
}
