//! mincore, msync, the mlock family, madvise's every advice (guard regions, populate, remove),
//! process_madvise with pidfd_open, MAP_HUGETLB and the overcommit heuristic; each call's
//! answers at the edges of the address space. Where Linux versions answer differently (guard
//! regions and process_madvise of the caller's own memory came with 6.13), the test expects
//! the answer of the version `uname` reports.

use alloc::vec;
use alloc::vec::Vec;

use urt::ktap::TestResult;
use urt::sys::{self, Errno, PAGE_SIZE};
use urt::{check, check_eq, check_err, check_ok};

use crate::process::{Child, End};
use crate::util::{Fd, KERNEL_ADDR, Mapping, cstring, read_text, readable};

const RW: usize = sys::PROT_READ | sys::PROT_WRITE;
const ANON: usize = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS;
const NOFD: usize = usize::MAX;
/// The end of user space (Linux's `TASK_SIZE` on x86-64).
const USER_END: usize = 0x7fff_ffff_f000;
/// Above the lower half, below the kernel half.
const NON_CANONICAL: usize = 0x8000_0000_0000;
const SIGSEGV: i32 = 11;

/// The running kernel's version from `uname`: (major, minor).
fn kernel_version() -> (u32, u32) {
    let mut u = sys::Utsname::default();
    if sys::uname(&raw mut u as usize).is_err() {
        return (0, 0);
    }
    let end = u.release.iter().position(|&b| b == 0).unwrap_or(0);
    let release = core::str::from_utf8(&u.release[..end]).unwrap_or("");
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// Whether the kernel has guard regions and unrestricted process_madvise of one's own memory.
fn since_6_13() -> bool {
    kernel_version() >= (6, 13)
}

/// mincore's bytes for `pages` pages at `addr`.
fn residency(addr: usize, pages: usize) -> Result<Vec<u8>, Errno> {
    let mut vec = vec![0xffu8; pages];
    sys::mincore(addr, pages * PAGE_SIZE, vec.as_mut_ptr() as usize)?;
    Ok(vec)
}

/// `VmLck` of /proc/self/status, in kB.
fn locked_kib() -> usize {
    let status = read_text(&cstring("/proc/self/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmLck:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(usize::MAX)
}

fn read_byte(addr: usize) -> u8 {
    // SAFETY: the caller passes an address of a readable mapping of its own.
    unsafe { (addr as *const u8).read_volatile() }
}

/// A memfd of `pages` pages, the first `written` of them written with their index + 1.
fn memfd(pages: usize, written: usize) -> Result<Fd, Errno> {
    let name = cstring("memctl");
    let fd = Fd(sys::memfd_create(name.as_ptr() as usize, 0)?);
    for page in 0..written {
        fd.write_all(&vec![page as u8 + 1; PAGE_SIZE])?;
    }
    sys::ftruncate(fd.0, pages * PAGE_SIZE)?;
    Ok(fd)
}

pub fn mincore_anonymous_residency() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    check_eq!(check_ok!(residency(m.addr, 4)), vec![0, 0, 0, 0]);
    m.fill(1, 7);
    let _ = read_byte(m.page(2));
    check_eq!(
        check_ok!(residency(m.addr, 4)),
        vec![0, 1, 1, 0],
        "a written page and a read one (the zero page) are resident"
    );
    check_ok!(sys::madvise(m.page(1), PAGE_SIZE, sys::MADV_DONTNEED));
    check_eq!(check_ok!(residency(m.addr, 4))[1], 0, "after MADV_DONTNEED");
    // A length that is not a page multiple counts its last page.
    let mut one = [0xffu8; 2];
    check_ok!(sys::mincore(m.page(2), 1, one.as_mut_ptr() as usize));
    check_eq!(one, [1, 0xff]);
    Ok(())
}

pub fn mincore_file_page_cache() -> TestResult {
    // Three pages written, a fourth inside the size but never written (a hole).
    let fd = check_ok!(memfd(4, 3));
    let m = check_ok!(Mapping::file(
        fd.0,
        4 * PAGE_SIZE,
        sys::PROT_READ,
        sys::MAP_SHARED,
        0
    ));
    check_eq!(
        check_ok!(residency(m.addr, 4)),
        vec![1, 1, 1, 0],
        "a file's cached pages are resident before the mapping touches them"
    );
    let p = check_ok!(Mapping::file(
        fd.0,
        2 * PAGE_SIZE,
        sys::PROT_READ,
        sys::MAP_PRIVATE,
        2 * PAGE_SIZE
    ));
    check_eq!(check_ok!(residency(p.addr, 2)), vec![1, 0]);
    Ok(())
}

pub fn mincore_errors() -> TestResult {
    let m = check_ok!(Mapping::rw(3));
    let mut vec = [0xffu8; 4];
    let out = vec.as_mut_ptr() as usize;
    check_err!(sys::mincore(m.addr + 1, PAGE_SIZE, out), Errno::EINVAL);
    check_eq!(check_ok!(sys::mincore(m.addr, 0, 0)), 0);
    check_err!(sys::mincore(KERNEL_ADDR, PAGE_SIZE, out), Errno::ENOMEM);
    check_err!(sys::mincore(NON_CANONICAL, PAGE_SIZE, out), Errno::ENOMEM);
    check_err!(sys::mincore(USER_END, PAGE_SIZE, out), Errno::ENOMEM);
    check_err!(
        sys::mincore(USER_END - PAGE_SIZE, 2 * PAGE_SIZE, out),
        Errno::ENOMEM
    );
    check_err!(sys::mincore(m.addr, usize::MAX, out), Errno::ENOMEM);
    check_err!(sys::mincore(m.addr, PAGE_SIZE, KERNEL_ADDR), Errno::EFAULT);
    check_err!(sys::mincore(m.addr, PAGE_SIZE, 0), Errno::EFAULT);
    // A hole: the bytes before it are written, then ENOMEM.
    m.fill(0, 1);
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    check_err!(sys::mincore(m.addr, 3 * PAGE_SIZE, out), Errno::ENOMEM);
    check_eq!(vec[0], 1, "the byte before the hole");
    check_err!(sys::mincore(m.page(1), PAGE_SIZE, out), Errno::ENOMEM);
    Ok(())
}

pub fn msync_anonymous_and_edges() -> TestResult {
    let m = check_ok!(Mapping::rw(3));
    for flags in [sys::MS_SYNC, sys::MS_ASYNC, sys::MS_INVALIDATE, 0] {
        check_ok!(sys::msync(m.addr, m.len, flags));
    }
    check_err!(
        sys::msync(m.addr, m.len, sys::MS_SYNC | sys::MS_ASYNC),
        Errno::EINVAL
    );
    check_err!(
        sys::msync(m.addr + 1, PAGE_SIZE, sys::MS_SYNC),
        Errno::EINVAL
    );
    check_err!(
        sys::msync(KERNEL_ADDR, PAGE_SIZE, sys::MS_SYNC),
        Errno::ENOMEM
    );
    check_err!(
        sys::msync(NON_CANONICAL, PAGE_SIZE, sys::MS_ASYNC),
        Errno::ENOMEM
    );
    // A length that rounds up past the end of the address space wraps to nothing...
    check_eq!(check_ok!(sys::msync(m.addr, usize::MAX, sys::MS_SYNC)), 0);
    // ...one that does not, but wraps the range, is ENOMEM.
    check_err!(
        sys::msync(m.addr, usize::MAX - 2 * PAGE_SIZE + 1, sys::MS_SYNC),
        Errno::ENOMEM
    );
    // Holes: ENOMEM however the walk meets them.
    check_ok!(sys::munmap(m.page(0), PAGE_SIZE));
    for flags in [sys::MS_ASYNC, sys::MS_SYNC, sys::MS_INVALIDATE] {
        check_err!(sys::msync(m.addr, m.len, flags), Errno::ENOMEM);
    }
    // Locked memory cannot be invalidated: EBUSY, even after a leading hole (except for
    // MS_ASYNC alone, which stops at the hole).
    check_ok!(sys::mlock(m.page(1), 2 * PAGE_SIZE));
    check_err!(
        sys::msync(m.page(1), 2 * PAGE_SIZE, sys::MS_INVALIDATE),
        Errno::EBUSY
    );
    check_err!(
        sys::msync(m.addr, m.len, sys::MS_INVALIDATE | sys::MS_SYNC),
        Errno::EBUSY
    );
    check_err!(sys::msync(m.addr, m.len, sys::MS_ASYNC), Errno::ENOMEM);
    check_ok!(sys::msync(m.page(1), 2 * PAGE_SIZE, sys::MS_SYNC));
    check_ok!(sys::munlock(m.page(1), 2 * PAGE_SIZE));
    check_ok!(sys::msync(m.page(1), 2 * PAGE_SIZE, sys::MS_INVALIDATE));
    Ok(())
}

pub fn mlock_faults_in_and_counts() -> TestResult {
    let before = locked_kib();
    let m = check_ok!(Mapping::rw(8));
    // An unaligned start and a length inside the page lock the whole page.
    check_ok!(sys::mlock(m.addr + 100, 10));
    check_eq!(check_ok!(residency(m.addr, 2)), vec![1, 0]);
    check_eq!(locked_kib(), before + 4, "VmLck after locking one page");
    check_ok!(sys::mlock(m.addr, m.len));
    check_eq!(check_ok!(residency(m.addr, 8)), vec![1; 8]);
    check_eq!(locked_kib(), before + 32);
    // Linux counts mlocked pages per CPU and folds the counts in later: the line is there,
    // its value may lag.
    let meminfo = check_ok!(read_text(&cstring("/proc/meminfo")));
    check!(
        meminfo.contains("\nMlocked:"),
        "no Mlocked in /proc/meminfo"
    );
    check_ok!(sys::munlock(m.addr, m.len));
    check_eq!(locked_kib(), before, "VmLck after munlock");
    check_eq!(
        check_ok!(residency(m.addr, 8)),
        vec![1; 8],
        "unlocked pages stay"
    );
    // MLOCK_ONFAULT locks without faulting in.
    let f = check_ok!(Mapping::rw(4));
    check_ok!(sys::mlock2(f.addr, f.len, sys::MLOCK_ONFAULT));
    check_eq!(check_ok!(residency(f.addr, 4)), vec![0; 4]);
    check_eq!(locked_kib(), before + 16);
    f.fill(2, 9);
    check_eq!(check_ok!(residency(f.addr, 4)), vec![0, 0, 1, 0]);
    check_ok!(sys::mlock2(f.addr, f.len, 0));
    check_eq!(check_ok!(residency(f.addr, 4)), vec![1; 4]);
    drop(f);
    check_eq!(locked_kib(), before, "VmLck after munmap of locked memory");
    // MAP_LOCKED maps locked and faulted in.
    let l = check_ok!(Mapping::with_flags(2, RW, sys::MAP_LOCKED));
    check_eq!(check_ok!(residency(l.addr, 2)), vec![1, 1]);
    check_eq!(locked_kib(), before + 8);
    Ok(())
}

pub fn mlock_errors() -> TestResult {
    let m = check_ok!(Mapping::rw(3));
    let before = locked_kib();
    check_err!(sys::mlock2(m.addr, m.len, 2), Errno::EINVAL);
    check_err!(sys::mlock(KERNEL_ADDR, PAGE_SIZE), Errno::ENOMEM);
    check_err!(sys::mlock(NON_CANONICAL, PAGE_SIZE), Errno::ENOMEM);
    check_err!(sys::mlock(USER_END, PAGE_SIZE), Errno::ENOMEM);
    check_err!(sys::munlock(KERNEL_ADDR, PAGE_SIZE), Errno::ENOMEM);
    // A range that wraps past the end of the address space.
    let wrapping = 0usize.wrapping_sub(m.addr) + PAGE_SIZE;
    check_err!(sys::mlock(m.addr, wrapping), Errno::EINVAL);
    check_err!(sys::munlock(m.addr, wrapping), Errno::EINVAL);
    // A length that rounds up to nothing locks nothing.
    check_eq!(check_ok!(sys::mlock(m.addr, usize::MAX)), 0);
    check_eq!(check_ok!(sys::mlock(m.addr, 0)), 0);
    check_eq!(locked_kib(), before);
    // A hole: what lies before it is locked, then ENOMEM.
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    check_err!(sys::mlock(m.addr, m.len), Errno::ENOMEM);
    check_eq!(
        locked_kib(),
        before + 4,
        "the page before the hole is locked"
    );
    check_err!(sys::munlock(m.addr, m.len), Errno::ENOMEM);
    check_eq!(locked_kib(), before);
    check_err!(sys::mlock(m.page(1), PAGE_SIZE), Errno::ENOMEM);
    Ok(())
}

/// mlock faults the range in VMA by VMA and a `PROT_NONE` VMA ends it with ENOMEM (what lies
/// before it is faulted in); `MLOCK_ONFAULT` faults nothing in, so it meets no such failure.
/// The flags of mlock2 are an `int`: bits above 31 are ignored.
pub fn mlock_stops_at_prot_none() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    check_ok!(sys::mprotect(m.page(1), PAGE_SIZE, sys::PROT_NONE));
    check_err!(sys::mlock(m.addr, m.len), Errno::ENOMEM);
    check_eq!(check_ok!(residency(m.addr, 1)), [1]);
    check_ok!(sys::munlock(m.addr, m.len));
    check_ok!(sys::mlock2(m.addr, m.len, sys::MLOCK_ONFAULT));
    check_ok!(sys::munlock(m.addr, m.len));
    let high = 1 << 52;
    check_ok!(sys::mlock2(m.addr, m.len, high | sys::MLOCK_ONFAULT));
    check_err!(sys::mlock2(m.addr, m.len, high), Errno::ENOMEM);
    check_ok!(sys::munlock(m.addr, m.len));
    Ok(())
}

/// The flags of msync and madvise's advice are `int`s: bits above 31 are ignored.
pub fn msync_and_madvise_ignore_high_bits() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    let high = 1 << 61;
    check_ok!(sys::msync(m.addr, m.len, high | sys::MS_SYNC));
    check_ok!(sys::msync(m.addr, m.len, high));
    check_ok!(sys::madvise(m.addr, m.len, high | sys::MADV_NORMAL));
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    check_err!(sys::msync(m.addr, m.len, high), Errno::ENOMEM);
    Ok(())
}

/// Runs `body` in a forked child (mlockall changes the whole process) and checks it exits 0;
/// its exit code otherwise names the step that failed.
fn in_child(what: &str, body: impl FnOnce() -> i32) -> TestResult {
    let mut child = check_ok!(Child::fork(body));
    let end = check_ok!(child.end());
    check_eq!(end, End::Exited(0), "{what}: the step that failed");
    Ok(())
}

pub fn mlockall_current_and_future() -> TestResult {
    check_err!(sys::mlockall(0), Errno::EINVAL);
    check_err!(sys::mlockall(sys::MCL_ONFAULT), Errno::EINVAL);
    check_err!(sys::mlockall(8), Errno::EINVAL);
    in_child("MCL_CURRENT | MCL_FUTURE", || {
        let Ok(old) = Mapping::rw(2) else { return 1 };
        if sys::mlockall(sys::MCL_CURRENT | sys::MCL_FUTURE).is_err() {
            return 2;
        }
        if residency(old.addr, 2) != Ok(vec![1, 1]) {
            return 3;
        }
        let Ok(new) = Mapping::rw(3) else { return 4 };
        if residency(new.addr, 3) != Ok(vec![1, 1, 1]) {
            return 5;
        }
        if locked_kib() == 0 {
            return 6;
        }
        if sys::madvise(new.addr, new.len, sys::MADV_DONTNEED) != Err(Errno::EINVAL) {
            return 7;
        }
        if sys::munlockall().is_err() || locked_kib() != 0 {
            return 8;
        }
        let Ok(after) = Mapping::rw(2) else { return 9 };
        if residency(after.addr, 2) != Ok(vec![0, 0]) {
            return 10;
        }
        0
    })?;
    in_child("MCL_FUTURE | MCL_ONFAULT", || {
        if sys::mlockall(sys::MCL_FUTURE | sys::MCL_ONFAULT).is_err() {
            return 1;
        }
        // Twice: the first read may map memory for its buffers (locked, as anything new).
        let _ = locked_kib();
        let before = locked_kib();
        let Ok(new) = Mapping::rw(4) else { return 3 };
        if residency(new.addr, 4) != Ok(vec![0; 4]) {
            return 4;
        }
        if locked_kib() != before + 16 {
            return 5;
        }
        0
    })
}

pub fn madvise_every_advice() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    for advice in [
        sys::MADV_NORMAL,
        sys::MADV_RANDOM,
        sys::MADV_SEQUENTIAL,
        sys::MADV_WILLNEED,
        sys::MADV_DONTNEED,
        sys::MADV_FREE,
        sys::MADV_DONTFORK,
        sys::MADV_DOFORK,
        sys::MADV_MERGEABLE,
        sys::MADV_UNMERGEABLE,
        sys::MADV_HUGEPAGE,
        sys::MADV_NOHUGEPAGE,
        sys::MADV_DONTDUMP,
        sys::MADV_DODUMP,
        sys::MADV_WIPEONFORK,
        sys::MADV_KEEPONFORK,
        sys::MADV_COLD,
        sys::MADV_PAGEOUT,
        sys::MADV_POPULATE_READ,
        sys::MADV_POPULATE_WRITE,
        sys::MADV_DONTNEED_LOCKED,
    ] {
        let result = sys::madvise(m.addr, m.len, advice);
        check!(result == Ok(0), "advice {advice}: {result:?}");
    }
    for advice in [5, 6, 7, 26, 50, 99, 104, 1000, usize::MAX] {
        check_err!(sys::madvise(m.addr, m.len, advice), Errno::EINVAL);
    }
    // MADV_REMOVE needs shared memory.
    check_err!(sys::madvise(m.addr, m.len, sys::MADV_REMOVE), Errno::EINVAL);
    Ok(())
}

pub fn madvise_locked_memory() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    m.fill(0, 3);
    check_ok!(sys::mlock(m.addr, m.len));
    for advice in [
        sys::MADV_DONTNEED,
        sys::MADV_FREE,
        sys::MADV_COLD,
        sys::MADV_PAGEOUT,
        sys::MADV_REMOVE,
    ] {
        check_err!(sys::madvise(m.addr, m.len, advice), Errno::EINVAL);
    }
    check!(m.all(0, 3), "refused advice dropped a locked page");
    check_ok!(sys::madvise(m.addr, m.len, sys::MADV_WILLNEED));
    check_ok!(sys::madvise(m.addr, m.len, sys::MADV_DONTNEED_LOCKED));
    check!(m.all(0, 0), "MADV_DONTNEED_LOCKED left the page");
    Ok(())
}

pub fn madvise_populate() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    check_ok!(sys::madvise(m.addr, 2 * PAGE_SIZE, sys::MADV_POPULATE_READ));
    check_ok!(sys::madvise(
        m.page(2),
        2 * PAGE_SIZE,
        sys::MADV_POPULATE_WRITE
    ));
    check_eq!(check_ok!(residency(m.addr, 4)), vec![1; 4]);
    let ro = check_ok!(Mapping::new(1, sys::PROT_READ));
    check_err!(
        sys::madvise(ro.addr, ro.len, sys::MADV_POPULATE_WRITE),
        Errno::EINVAL
    );
    check_ok!(sys::madvise(ro.addr, ro.len, sys::MADV_POPULATE_READ));
    let none = check_ok!(Mapping::new(1, sys::PROT_NONE));
    check_err!(
        sys::madvise(none.addr, none.len, sys::MADV_POPULATE_READ),
        Errno::EINVAL
    );
    // A hole.
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    check_err!(
        sys::madvise(m.addr, m.len, sys::MADV_POPULATE_READ),
        Errno::ENOMEM
    );
    // A page past the end of the file cannot be had: EFAULT.
    let fd = check_ok!(memfd(1, 1));
    let f = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, RW, sys::MAP_PRIVATE, 0));
    check_err!(
        sys::madvise(f.addr, f.len, sys::MADV_POPULATE_WRITE),
        Errno::EFAULT
    );
    Ok(())
}

pub fn madvise_remove_punches_holes() -> TestResult {
    // Shared anonymous memory: the pages read as zeroes, in a child that shares them too.
    let shared = check_ok!(Mapping::file(
        NOFD,
        2 * PAGE_SIZE,
        RW,
        sys::MAP_SHARED | sys::MAP_ANONYMOUS,
        0
    ));
    shared.fill(0, 4);
    shared.fill(1, 5);
    check_ok!(sys::madvise(shared.page(1), PAGE_SIZE, sys::MADV_REMOVE));
    check!(shared.all(0, 4) && shared.all(1, 0));
    // A shared mapping of a file: a hole in the file, its size kept.
    let fd = check_ok!(memfd(3, 3));
    let map = check_ok!(Mapping::file(fd.0, 3 * PAGE_SIZE, RW, sys::MAP_SHARED, 0));
    check_ok!(sys::madvise(map.page(1), PAGE_SIZE, sys::MADV_REMOVE));
    check!(map.all(0, 1) && map.all(1, 0) && map.all(2, 3));
    check_eq!(check_ok!(fd.read_at(PAGE_SIZE, 4)), vec![0u8; 4]);
    check_eq!(check_ok!(fd.stat()).st_size as usize, 3 * PAGE_SIZE);
    // Private mappings of a file may not: EACCES.
    let private = check_ok!(Mapping::file(fd.0, PAGE_SIZE, RW, sys::MAP_PRIVATE, 0));
    check_err!(
        sys::madvise(private.addr, private.len, sys::MADV_REMOVE),
        Errno::EACCES
    );
    let read_only = check_ok!(Mapping::file(
        fd.0,
        PAGE_SIZE,
        sys::PROT_READ,
        sys::MAP_SHARED,
        0
    ));
    // What counts is whether the file is open for writing, not the mapping's protection.
    check_ok!(sys::madvise(
        read_only.addr,
        read_only.len,
        sys::MADV_REMOVE
    ));
    Ok(())
}

pub fn madvise_edges() -> TestResult {
    let m = check_ok!(Mapping::rw(1));
    for advice in [sys::MADV_DONTNEED, sys::MADV_NORMAL, sys::MADV_WILLNEED] {
        check_err!(sys::madvise(KERNEL_ADDR, PAGE_SIZE, advice), Errno::ENOMEM);
        check_err!(
            sys::madvise(NON_CANONICAL, PAGE_SIZE, advice),
            Errno::ENOMEM
        );
        check_err!(sys::madvise(USER_END, PAGE_SIZE, advice), Errno::ENOMEM);
        check_err!(
            sys::madvise(USER_END - PAGE_SIZE, 2 * PAGE_SIZE, advice),
            Errno::ENOMEM
        );
        // A length that rounds up past the end of the address space, a range that wraps.
        check_err!(sys::madvise(m.addr, usize::MAX, advice), Errno::EINVAL);
        check_err!(
            sys::madvise(m.addr, 0usize.wrapping_sub(m.addr) + PAGE_SIZE, advice),
            Errno::EINVAL
        );
    }
    check_eq!(
        check_ok!(sys::madvise(KERNEL_ADDR, 0, sys::MADV_DONTNEED)),
        0
    );
    // The mapping's part is advised before the hole above it is reported.
    m.fill(0, 8);
    let top = m.addr + m.len;
    if crate::util::mapped(top) {
        return Ok(());
    }
    check_err!(
        sys::madvise(m.addr, 2 * PAGE_SIZE, sys::MADV_DONTNEED),
        Errno::ENOMEM
    );
    check!(m.all(0, 0), "the mapped part was not advised");
    Ok(())
}

pub fn madvise_guard_regions() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    for i in 0..4 {
        m.fill(i, 0x10 + i as u8);
    }
    let installed = sys::madvise(m.page(1), PAGE_SIZE, sys::MADV_GUARD_INSTALL);
    if !since_6_13() {
        check_err!(installed, Errno::EINVAL);
        check_err!(
            sys::madvise(m.page(1), PAGE_SIZE, sys::MADV_GUARD_REMOVE),
            Errno::EINVAL
        );
        return Ok(());
    }
    check_ok!(installed);
    check!(!readable(m.page(1)), "a guard page reads");
    check!(readable(m.page(0)) && m.all(0, 0x10) && m.all(2, 0x12));
    check_eq!(check_ok!(residency(m.addr, 4)), vec![1, 0, 1, 1]);
    // An access is SIGSEGV, in a child that inherited the marker.
    let page = m.page(1);
    let mut child = check_ok!(Child::fork(|| i32::from(read_byte(page))));
    check_eq!(check_ok!(child.end()), End::Killed(SIGSEGV));
    // MADV_DONTNEED keeps the marker; MADV_GUARD_REMOVE takes it away.
    check_ok!(sys::madvise(m.addr, m.len, sys::MADV_DONTNEED));
    check!(!readable(m.page(1)), "MADV_DONTNEED removed the guard");
    check_ok!(sys::madvise(m.addr, m.len, sys::MADV_GUARD_REMOVE));
    check!(
        readable(m.page(1)) && m.all(1, 0),
        "after MADV_GUARD_REMOVE"
    );
    // munmap takes markers away too.
    check_ok!(sys::madvise(m.page(3), PAGE_SIZE, sys::MADV_GUARD_INSTALL));
    check_ok!(sys::munmap(m.page(3), PAGE_SIZE));
    check_ok!(sys::mmap(
        m.page(3),
        PAGE_SIZE,
        RW,
        ANON | sys::MAP_FIXED,
        NOFD,
        0
    ));
    check!(m.all(3, 0), "a fresh mapping where a guard was");
    // Only private anonymous memory, not locked.
    let shared = check_ok!(Mapping::file(
        NOFD,
        PAGE_SIZE,
        RW,
        sys::MAP_SHARED | sys::MAP_ANONYMOUS,
        0
    ));
    check_err!(
        sys::madvise(shared.addr, shared.len, sys::MADV_GUARD_INSTALL),
        Errno::EINVAL
    );
    check_ok!(sys::mlock(m.addr, PAGE_SIZE));
    check_err!(
        sys::madvise(m.addr, PAGE_SIZE, sys::MADV_GUARD_INSTALL),
        Errno::EINVAL
    );
    Ok(())
}

pub fn process_madvise_own_memory() -> TestResult {
    check_err!(sys::pidfd_open(0, 0), Errno::EINVAL);
    check_err!(sys::pidfd_open(usize::MAX, 0), Errno::EINVAL);
    check_err!(sys::pidfd_open(sys::getpid(), 1), Errno::EINVAL);
    check_err!(sys::pidfd_open(4_000_000, 0), Errno::ESRCH);
    let pidfd = Fd(check_ok!(sys::pidfd_open(sys::getpid(), 0)));
    let m = check_ok!(Mapping::rw(4));
    m.fill(0, 1);
    m.fill(2, 2);
    let iov: [[usize; 2]; 2] = [[m.page(0), PAGE_SIZE], [m.page(2), 2 * PAGE_SIZE]];
    let iov_addr = iov.as_ptr() as usize;
    check_eq!(
        check_ok!(sys::process_madvise(
            pidfd.0,
            iov_addr,
            2,
            sys::MADV_WILLNEED,
            0
        )),
        3 * PAGE_SIZE
    );
    check_err!(
        sys::process_madvise(pidfd.0, iov_addr, 2, sys::MADV_WILLNEED, 1),
        Errno::EINVAL
    );
    // The advice and the flags are `int`s: bits above 31 do not count.
    let high = 1 << 40;
    check_eq!(
        check_ok!(sys::process_madvise(
            pidfd.0,
            iov_addr,
            2,
            high | sys::MADV_WILLNEED,
            high
        )),
        3 * PAGE_SIZE
    );
    check_err!(
        sys::process_madvise(pidfd.0, iov_addr, 1025, sys::MADV_WILLNEED, 0),
        Errno::EINVAL
    );
    check_err!(
        sys::process_madvise(pidfd.0, KERNEL_ADDR, 1, sys::MADV_WILLNEED, 0),
        Errno::EFAULT
    );
    check_err!(
        sys::process_madvise(1000, iov_addr, 2, sys::MADV_WILLNEED, 0),
        Errno::EBADF
    );
    let (read_end, _write_end) = check_ok!(crate::util::pipe(0));
    check_err!(
        sys::process_madvise(read_end.0, iov_addr, 2, sys::MADV_WILLNEED, 0),
        Errno::EBADF
    );
    // The second range fails: the bytes of the first are the answer.
    let holey: [[usize; 2]; 2] = [[m.page(0), PAGE_SIZE], [KERNEL_ADDR, PAGE_SIZE]];
    check_err!(
        sys::process_madvise(pidfd.0, holey.as_ptr() as usize, 2, sys::MADV_WILLNEED, 0),
        Errno::EFAULT
    );
    let unmapped: [[usize; 2]; 2] = [[m.page(0), PAGE_SIZE], [m.page(1), PAGE_SIZE]];
    check_ok!(sys::munmap(m.page(1), PAGE_SIZE));
    check_eq!(
        check_ok!(sys::process_madvise(
            pidfd.0,
            unmapped.as_ptr() as usize,
            2,
            sys::MADV_COLD,
            0
        )),
        PAGE_SIZE
    );
    // Destructive advice on one's own memory: since 6.13 only.
    let dropped = sys::process_madvise(pidfd.0, iov_addr, 1, sys::MADV_DONTNEED, 0);
    if since_6_13() {
        check_eq!(check_ok!(dropped), PAGE_SIZE);
        check!(m.all(0, 0), "MADV_DONTNEED through process_madvise");
    } else {
        check_err!(dropped, Errno::EINVAL);
        check!(m.all(0, 1));
    }
    Ok(())
}

pub fn mmap_hugetlb_without_reserved_pages() -> TestResult {
    let huge = |shift: usize| {
        sys::mmap(
            0,
            2 << 20,
            RW,
            ANON | sys::MAP_HUGETLB | (shift << sys::MAP_HUGE_SHIFT),
            NOFD,
            0,
        )
    };
    check_err!(huge(0), Errno::ENOMEM);
    check_err!(huge(21), Errno::ENOMEM);
    check_err!(huge(13), Errno::EINVAL);
    // A length that rounds up to nothing in huge pages: mmap's length of 0.
    check_err!(
        sys::mmap(0, usize::MAX, RW, ANON | sys::MAP_HUGETLB, NOFD, 0),
        Errno::EINVAL
    );
    // Linux maps a file of its hugetlbfs, whose checks come before the reservation that
    // fails: a fixed address not a multiple of the huge page (before the end of user space
    // is checked, and MAP_NORESERVE, which reserves nothing, does not get that far), ...
    let huge_flags = |flags: usize| sys::MAP_ANONYMOUS | sys::MAP_HUGETLB | flags;
    for (addr, flags) in [
        (
            0x1000_0000_7001,
            sys::MAP_FIXED_NOREPLACE | sys::MAP_NORESERVE,
        ),
        (
            0x1000_0001_0000,
            sys::MAP_FIXED_NOREPLACE | sys::MAP_NORESERVE,
        ),
        (USER_END - PAGE_SIZE, sys::MAP_FIXED),
    ] {
        let flags = huge_flags(sys::MAP_PRIVATE | flags);
        check_err!(sys::mmap(addr, 2 << 20, RW, flags, NOFD, 0), Errno::EINVAL);
    }
    let top_huge_page = USER_END & !((2 << 20) - 1);
    check_err!(
        sys::mmap(
            top_huge_page,
            4 << 20,
            RW,
            huge_flags(sys::MAP_PRIVATE | sys::MAP_FIXED),
            NOFD,
            0
        ),
        Errno::ENOMEM
    );
    // ... the type as for a file (MAP_SHARED_VALIDATE knows only the legacy flags, and
    // MAP_GROWSDOWN is no file's), then an offset that is not a multiple of the huge page.
    let typed =
        |flags: usize, offset: usize| sys::mmap(0, 2 << 20, RW, huge_flags(flags), NOFD, offset);
    check_err!(
        typed(sys::MAP_SHARED_VALIDATE | sys::MAP_SYNC, 0),
        Errno::EOPNOTSUPP
    );
    check_err!(typed(sys::MAP_SHARED_VALIDATE, 0), Errno::ENOMEM);
    check_err!(
        typed(sys::MAP_PRIVATE | sys::MAP_GROWSDOWN, 0),
        Errno::EINVAL
    );
    check_err!(typed(sys::MAP_SHARED, PAGE_SIZE), Errno::EINVAL);
    check_err!(typed(sys::MAP_SHARED, 2 << 20), Errno::ENOMEM);
    let fd = check_ok!(memfd(1, 1));
    check_err!(
        sys::mmap(
            0,
            PAGE_SIZE,
            RW,
            sys::MAP_SHARED | sys::MAP_HUGETLB,
            fd.0,
            0
        ),
        Errno::EINVAL
    );
    Ok(())
}

pub fn overcommit_heuristic() -> TestResult {
    check_eq!(
        check_ok!(read_text(&cstring("/proc/sys/vm/overcommit_memory"))),
        "0\n"
    );
    let meminfo = check_ok!(read_text(&cstring("/proc/meminfo")));
    check!(
        meminfo.contains("Committed_AS:"),
        "no Committed_AS in /proc/meminfo"
    );
    // More than all of memory at once: refused when it would be charged.
    let huge = 1usize << 40;
    check_err!(sys::mmap(0, huge, RW, ANON, NOFD, 0), Errno::ENOMEM);
    check_err!(
        sys::mmap(0, huge, RW, sys::MAP_SHARED | sys::MAP_ANONYMOUS, NOFD, 0),
        Errno::ENOMEM
    );
    let unreserved = check_ok!(sys::mmap(0, huge, RW, ANON | sys::MAP_NORESERVE, NOFD, 0));
    check_ok!(sys::munmap(unreserved, huge));
    // Read-only memory is not charged, until it becomes writable.
    let read_only = check_ok!(sys::mmap(0, huge, sys::PROT_READ, ANON, NOFD, 0));
    check_err!(sys::mprotect(read_only, huge, RW), Errno::ENOMEM);
    check_ok!(sys::mprotect(read_only, 4 * PAGE_SIZE, RW));
    check_ok!(sys::munmap(read_only, huge));
    Ok(())
}

/// mmap, munmap and mprotect on ranges in the kernel half, at non-canonical addresses, above
/// the end of user space and with lengths that wrap (mincore, msync, madvise and mlock have
/// theirs above).
pub fn mmap_munmap_mprotect_edges() -> TestResult {
    let m = check_ok!(Mapping::rw(1));
    let wrapping = 0usize.wrapping_sub(m.addr) + PAGE_SIZE;
    for addr in [KERNEL_ADDR, NON_CANONICAL, USER_END] {
        check_err!(sys::munmap(addr, PAGE_SIZE), Errno::EINVAL);
        check_err!(
            sys::mprotect(addr, PAGE_SIZE, sys::PROT_READ),
            Errno::ENOMEM
        );
        check_eq!(check_ok!(sys::mprotect(addr, 0, sys::PROT_READ)), 0);
        check_err!(
            sys::mmap(addr, PAGE_SIZE, RW, ANON | sys::MAP_FIXED, NOFD, 0),
            Errno::ENOMEM
        );
        check_err!(
            sys::mmap(
                addr,
                PAGE_SIZE,
                RW,
                ANON | sys::MAP_FIXED_NOREPLACE,
                NOFD,
                0
            ),
            Errno::ENOMEM
        );
        // Without MAP_FIXED the address is only a hint: the mapping goes elsewhere.
        let placed = check_ok!(sys::mmap(addr, PAGE_SIZE, RW, ANON, NOFD, 0));
        check!(placed < USER_END, "placed at {placed:#x}");
        check_ok!(sys::munmap(placed, PAGE_SIZE));
    }
    check_err!(
        sys::mmap(
            USER_END - PAGE_SIZE,
            2 * PAGE_SIZE,
            RW,
            ANON | sys::MAP_FIXED,
            NOFD,
            0
        ),
        Errno::ENOMEM
    );
    check_err!(
        sys::mmap(0, USER_END + PAGE_SIZE, RW, ANON, NOFD, 0),
        Errno::ENOMEM
    );
    check_err!(sys::munmap(m.addr, usize::MAX), Errno::EINVAL);
    check_err!(sys::munmap(m.addr, wrapping), Errno::EINVAL);
    check_err!(
        sys::munmap(USER_END - PAGE_SIZE, 2 * PAGE_SIZE),
        Errno::EINVAL
    );
    check_err!(
        sys::mprotect(m.addr, usize::MAX, sys::PROT_READ),
        Errno::ENOMEM
    );
    check_err!(
        sys::mprotect(m.addr, wrapping, sys::PROT_READ),
        Errno::ENOMEM
    );
    check_err!(
        sys::mprotect(USER_END - PAGE_SIZE, 2 * PAGE_SIZE, sys::PROT_READ),
        Errno::ENOMEM
    );
    Ok(())
}
