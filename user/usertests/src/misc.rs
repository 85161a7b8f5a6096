//! Time, randomness, process attributes, odd system calls.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use urt::sys::{self, Errno, PAGE_SIZE, Timespec};
use urt::{check, check_eq, check_err, check_ok, diag};

use crate::util::{KERNEL_ADDR, Mapping, bad_addrs, ms_since};
use urt::ktap::TestResult;

pub fn nanosleep_sleeps() -> TestResult {
    let req = Timespec::from_nanos(15_000_000);
    let started = sys::monotonic_ns();
    check_eq!(check_ok!(sys::nanosleep(&raw const req as usize, 0)), 0);
    let ms = ms_since(started);
    check!(ms >= 15, "nanosleep(15 ms) returned after {ms} ms");
    let zero = Timespec::default();
    check_ok!(sys::nanosleep(&raw const zero as usize, 0));
    Ok(())
}

pub fn nanosleep_errors() -> TestResult {
    for (sec, nsec) in [(0, 1_000_000_000), (0, -1), (-1, 0)] {
        let req = Timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        };
        check_err!(sys::nanosleep(&raw const req as usize, 0), Errno::EINVAL);
    }
    for (what, addr) in bad_addrs() {
        let r = sys::nanosleep(addr, 0);
        check!(r == Err(Errno::EFAULT), "nanosleep({what}): {r:?}");
    }
    Ok(())
}

pub fn clock_monotonic_across_threads() -> TestResult {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static BAD: AtomicBool = AtomicBool::new(false);
    LAST.store(0, Ordering::Relaxed);
    let handles: Vec<_> = (0..sys::cpu_count().clamp(2, 4))
        .map(|_| {
            urt::thread::spawn(|| {
                for _ in 0..2000 {
                    let seen = LAST.load(Ordering::Acquire);
                    let now = sys::monotonic_ns();
                    if now < seen {
                        BAD.store(true, Ordering::Relaxed);
                    }
                    LAST.fetch_max(now, Ordering::AcqRel);
                }
            })
        })
        .collect();
    for h in handles {
        h.join();
    }
    check!(
        !BAD.load(Ordering::Relaxed),
        "CLOCK_MONOTONIC went backwards between threads"
    );
    Ok(())
}

pub fn clock_realtime_plausible() -> TestResult {
    let mut ts = Timespec::default();
    check_ok!(sys::clock_gettime(
        sys::CLOCK_REALTIME,
        &raw mut ts as usize
    ));
    // 2024-01-01T00:00:00Z
    check!(
        ts.tv_sec >= 1_704_067_200,
        "CLOCK_REALTIME says {} s",
        ts.tv_sec
    );
    check!((0..1_000_000_000).contains(&ts.tv_nsec));
    Ok(())
}

pub fn clock_errors() -> TestResult {
    let mut ts = Timespec::default();
    check_err!(sys::clock_gettime(100, &raw mut ts as usize), Errno::EINVAL);
    for (what, addr) in bad_addrs() {
        let r = sys::clock_gettime(sys::CLOCK_MONOTONIC, addr);
        check!(r == Err(Errno::EFAULT), "clock_gettime({what}): {r:?}");
    }
    Ok(())
}

pub fn getrandom_fills() -> TestResult {
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    check_eq!(
        check_ok!(sys::getrandom(a.as_mut_ptr() as usize, 64, 0)),
        64
    );
    check_eq!(
        check_ok!(sys::getrandom(b.as_mut_ptr() as usize, 64, 0)),
        64
    );
    check!(
        a != [0; 64] && a != b,
        "getrandom returned zeros or the same bytes twice"
    );
    check_eq!(check_ok!(sys::getrandom(a.as_mut_ptr() as usize, 0, 0)), 0);
    Ok(())
}

pub fn getrandom_flags() -> TestResult {
    const GRND_NONBLOCK: usize = 1;
    const GRND_RANDOM: usize = 2;
    let mut buf = [0u8; 16];
    let p = buf.as_mut_ptr() as usize;
    match sys::getrandom(p, 16, GRND_NONBLOCK) {
        Ok(16) | Err(Errno::EAGAIN) => {}
        other => check!(false, "getrandom(GRND_NONBLOCK): {other:?}"),
    }
    check!(sys::getrandom(p, 16, GRND_RANDOM).is_ok_and(|n| n > 0));
    check_err!(sys::getrandom(p, 16, 0x100), Errno::EINVAL);
    Ok(())
}

pub fn getrandom_bad_buffer() -> TestResult {
    for (what, addr) in bad_addrs() {
        let r = sys::getrandom(addr, 16, 0);
        check!(r == Err(Errno::EFAULT), "getrandom({what}): {r:?}");
    }
    let ro = check_ok!(Mapping::new(1, sys::PROT_READ));
    check_err!(sys::getrandom(ro.addr, 16, 0), Errno::EFAULT);
    check_err!(sys::getrandom(KERNEL_ADDR, 0, 0), Errno::EFAULT);
    Ok(())
}

/// An address below every program's image and mappings.
const LOW_ADDR: usize = 0x3000_0000;

/// getrandom fills up to a fault and returns how much it filled; the length is cut to what
/// one call moves before the buffer is checked, so a huge length is no error.
pub fn getrandom_stops_at_a_fault() -> TestResult {
    // Low enough that 2 GiB more is still user space, wherever mmap puts mappings.
    let m = Mapping {
        addr: check_ok!(sys::mmap(
            LOW_ADDR,
            3 * PAGE_SIZE,
            sys::PROT_READ | sys::PROT_WRITE,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE,
            usize::MAX,
            0
        )),
        len: 3 * PAGE_SIZE,
    };
    check_ok!(sys::munmap(m.page(2), PAGE_SIZE));
    let start = m.addr + 100;
    let room = 2 * PAGE_SIZE - 100;
    check_eq!(check_ok!(sys::getrandom(start, 3 * PAGE_SIZE, 0)), room);
    check_eq!(check_ok!(sys::getrandom(start, 1 << 63, 0)), room);
    check!(!m.all(1, 0), "the second page was not filled");
    Ok(())
}

pub fn prctl_name() -> TestResult {
    let name = b"usertests-x\0";
    check_eq!(
        check_ok!(sys::prctl(
            sys::PR_SET_NAME,
            name.as_ptr() as usize,
            0,
            0,
            0
        )),
        0
    );
    let mut got = [0xffu8; 16];
    check_ok!(sys::prctl(
        sys::PR_GET_NAME,
        got.as_mut_ptr() as usize,
        0,
        0,
        0
    ));
    check_eq!(&got[..12], &name[..], "PR_GET_NAME");
    // Longer names are cut to 15 bytes.
    let long = b"abcdefghijklmnopqrstuvwxyz\0";
    check_ok!(sys::prctl(
        sys::PR_SET_NAME,
        long.as_ptr() as usize,
        0,
        0,
        0
    ));
    check_ok!(sys::prctl(
        sys::PR_GET_NAME,
        got.as_mut_ptr() as usize,
        0,
        0,
        0
    ));
    check_eq!(&got[..], b"abcdefghijklmno\0");
    let _ = sys::prctl(sys::PR_SET_NAME, c"usertests".as_ptr() as usize, 0, 0, 0);
    Ok(())
}

pub fn prctl_errors() -> TestResult {
    check_err!(sys::prctl(0x7fff_0000, 0, 0, 0, 0), Errno::EINVAL);
    for (what, addr) in bad_addrs() {
        let r = sys::prctl(sys::PR_SET_NAME, addr, 0, 0, 0);
        check!(r == Err(Errno::EFAULT), "PR_SET_NAME({what}): {r:?}");
        let r = sys::prctl(sys::PR_GET_NAME, addr, 0, 0, 0);
        check!(r == Err(Errno::EFAULT), "PR_GET_NAME({what}): {r:?}");
    }
    Ok(())
}

fn field(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("?")
}

pub fn uname_fields() -> TestResult {
    let mut u = sys::Utsname::default();
    check_eq!(check_ok!(sys::uname(&raw mut u as usize)), 0);
    check!(!field(&u.sysname).is_empty(), "empty sysname");
    check_eq!(field(&u.machine), "x86_64");
    diag!(
        "uname: {} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    );
    for (what, addr) in bad_addrs() {
        let r = sys::uname(addr);
        check!(r == Err(Errno::EFAULT), "uname({what}): {r:?}");
    }
    Ok(())
}

pub fn getrusage_minflt_grows() -> TestResult {
    let pages = 64;
    let m = check_ok!(Mapping::rw(pages));
    let before = sys::minor_faults();
    for i in 0..pages {
        // SAFETY: inside the mapping.
        unsafe { (m.page(i) as *mut u8).write_volatile(1) };
    }
    let delta = sys::minor_faults() - before;
    check!(
        delta >= pages as u64 / 16,
        "ru_minflt grew by {delta} after touching {pages} new pages"
    );
    let mut ru = sys::Rusage::default();
    check_ok!(sys::getrusage(sys::RUSAGE_THREAD, &raw mut ru as usize));
    check_ok!(sys::getrusage(-1isize as usize, &raw mut ru as usize));
    // `who` is an int: RUSAGE_CHILDREN as a C caller passes it, the register's upper half
    // zero (as glibc leaves it), is still RUSAGE_CHILDREN.
    check_ok!(sys::getrusage(0xffff_ffff, &raw mut ru as usize));
    Ok(())
}

pub fn getrusage_errors() -> TestResult {
    let mut ru = sys::Rusage::default();
    check_err!(sys::getrusage(5, &raw mut ru as usize), Errno::EINVAL);
    for (what, addr) in bad_addrs() {
        let r = sys::getrusage(sys::RUSAGE_SELF, addr);
        check!(r == Err(Errno::EFAULT), "getrusage({what}): {r:?}");
    }
    Ok(())
}

pub fn sched_getaffinity_mask() -> TestResult {
    let mut mask = [0u64; 16];
    let len = check_ok!(sys::sched_getaffinity(0, 128, mask.as_mut_ptr() as usize));
    check!(len > 0 && len <= 128 && len % 8 == 0, "returned {len}");
    let cpus: u32 = mask.iter().map(|w| w.count_ones()).sum();
    check!(cpus >= 1);
    diag!("sched_getaffinity: {cpus} CPUs, {len} bytes");
    // The thread's own id works as well as 0.
    let mut mask2 = [0u64; 16];
    let len2 = check_ok!(sys::sched_getaffinity(
        sys::gettid(),
        128,
        mask2.as_mut_ptr() as usize
    ));
    check_eq!(len, len2);
    check_eq!(mask, mask2);
    Ok(())
}

pub fn sched_getaffinity_errors() -> TestResult {
    let mut mask = [0u64; 16];
    let p = mask.as_mut_ptr() as usize;
    // Too small, or not a multiple of the word size.
    for len in [0, 4, 7] {
        let r = sys::sched_getaffinity(0, len, p);
        check!(
            r == Err(Errno::EINVAL),
            "sched_getaffinity(len {len}): {r:?}"
        );
    }
    for (what, addr) in bad_addrs() {
        let r = sys::sched_getaffinity(0, 128, addr);
        check!(r == Err(Errno::EFAULT), "sched_getaffinity({what}): {r:?}");
    }
    check_err!(sys::sched_getaffinity(0x3fff_fff0, 128, p), Errno::ESRCH);
    Ok(())
}

/// The first word of thread `pid`'s CPU mask: CPUs 0 to 63, all of them here and in any
/// QEMU machine Linux runs on (Linux's mask may be longer; its other words are then 0).
fn affinity(pid: usize) -> Result<u64, Errno> {
    let mut mask = [0u64; 16];
    sys::sched_getaffinity(pid, 128, mask.as_mut_ptr() as usize)?;
    Ok(mask[0])
}

/// Sets thread `pid`'s CPU mask to `mask` (one word).
fn set_affinity(pid: usize, mask: u64) -> Result<usize, Errno> {
    sys::sched_setaffinity(pid, 8, &raw const mask as usize)
}

/// Pinned to each CPU in turn (up to four), the thread runs there across yields and a sleep,
/// reads its mask back, and a thread it starts inherits the mask. A 4-byte mask is padded with
/// zeroes; of a longer one only the words naming existing CPUs count. Runs in a thread of its
/// own, whose mask ends with it.
pub fn sched_setaffinity_pins() -> TestResult {
    urt::thread::spawn(pin_to_each_cpu).join()
}

fn pin_to_each_cpu() -> TestResult {
    let all = check_ok!(affinity(0));
    for cpu in (0..64u32).filter(|&c| all & 1 << c != 0).take(4) {
        let one = 1u64 << cpu;
        check_eq!(check_ok!(set_affinity(0, one)), 0);
        check_eq!(affinity(0), Ok(one));
        for round in 0..3 {
            check_ok!(sys::sched_yield());
            if round == 1 {
                sys::sleep_ns(1_000_000);
            }
            let at = sys::current_cpu();
            check!(
                at == Some(cpu),
                "pinned to CPU {cpu}, running on {at:?} (round {round})"
            );
        }
        let (mask, at) = urt::thread::spawn(|| (affinity(0), sys::current_cpu())).join();
        check_eq!(mask, Ok(one));
        check_eq!(at, Some(cpu));
    }
    let first = all.trailing_zeros();
    if first < 32 {
        let short = 1u32 << first;
        check_eq!(
            check_ok!(sys::sched_setaffinity(0, 4, &raw const short as usize)),
            0
        );
        check_eq!(affinity(0), Ok(1 << first));
    }
    check_ok!(set_affinity(0, all));
    let long = [1u64 << first, u64::MAX, u64::MAX, u64::MAX];
    check_eq!(
        check_ok!(sys::sched_setaffinity(
            0,
            size_of_val(&long),
            long.as_ptr() as usize
        )),
        0
    );
    check_eq!(affinity(0), Ok(1 << first));
    diag!("pinned to each of the CPUs in {all:#x} (up to 4)");
    Ok(())
}

/// A thread's mask set by another thread of the process (through its tid): the other thread
/// reads it back and runs on the CPU after a yield, and the caller's own mask is unchanged.
pub fn sched_setaffinity_other_thread() -> TestResult {
    static TID: AtomicU64 = AtomicU64::new(0);
    static GO: AtomicBool = AtomicBool::new(false);
    TID.store(0, Ordering::Relaxed);
    GO.store(false, Ordering::Relaxed);
    let all = check_ok!(affinity(0));
    let cpu = 63 - all.leading_zeros();
    let one = 1u64 << cpu;
    let handle = urt::thread::spawn(|| {
        TID.store(sys::gettid() as u64, Ordering::Release);
        // Running in user mode (on any CPU) while its mask changes.
        while !GO.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let _ = sys::sched_yield();
        (affinity(0), sys::current_cpu())
    });
    let mut tid = 0;
    while tid == 0 {
        let _ = sys::sched_yield();
        tid = TID.load(Ordering::Acquire) as usize;
    }
    let set = set_affinity(tid, one);
    let read = affinity(tid);
    let mine = affinity(0);
    // Let the thread go before any check can end the test.
    GO.store(true, Ordering::Release);
    let (theirs, at) = handle.join();
    check_eq!(set, Ok(0));
    check_eq!(read, Ok(one));
    check_eq!(mine, Ok(all));
    check_eq!(theirs, Ok(one));
    check_eq!(at, Some(cpu));
    Ok(())
}

/// Linux's errors, in Linux's order (the buffer, then the thread, then the mask); none of them
/// changes the mask. Runs in a thread of its own, in case one did.
pub fn sched_setaffinity_errors() -> TestResult {
    urt::thread::spawn(setaffinity_errors).join()
}

fn setaffinity_errors() -> TestResult {
    let all = check_ok!(affinity(0));
    for (what, addr) in bad_addrs() {
        let r = sys::sched_setaffinity(0, 8, addr);
        check!(r == Err(Errno::EFAULT), "sched_setaffinity({what}): {r:?}");
    }
    // No CPU: an empty mask, a mask of 0 bytes (nothing read), a mask of CPUs that do not
    // exist.
    check_err!(set_affinity(0, 0), Errno::EINVAL);
    check_err!(
        sys::sched_setaffinity(0, 0, &raw const all as usize),
        Errno::EINVAL
    );
    if all & 1 << 63 == 0 {
        check_err!(set_affinity(0, 1 << 63), Errno::EINVAL);
    }
    const NO_SUCH_THREAD: usize = 0x3fff_fff0;
    check_err!(set_affinity(NO_SUCH_THREAD, all), Errno::ESRCH);
    check_err!(set_affinity(NO_SUCH_THREAD, 0), Errno::ESRCH);
    check_err!(sys::sched_setaffinity(NO_SUCH_THREAD, 8, 0), Errno::EFAULT);
    check_eq!(affinity(0), Ok(all));
    Ok(())
}

pub fn ids_consistent() -> TestResult {
    let ids = (sys::getuid(), sys::geteuid(), sys::getgid(), sys::getegid());
    check_eq!(
        ids,
        (sys::getuid(), sys::geteuid(), sys::getgid(), sys::getegid())
    );
    let in_thread =
        urt::thread::spawn(|| (sys::getuid(), sys::geteuid(), sys::getgid(), sys::getegid()))
            .join();
    check_eq!(ids, in_thread);
    diag!("uid {} euid {} gid {} egid {}", ids.0, ids.1, ids.2, ids.3);
    Ok(())
}

pub fn set_robust_list_len() -> TestResult {
    static HEAD: [usize; 3] = [0, 0, 0];
    let head = HEAD.as_ptr() as usize;
    check_eq!(check_ok!(sys::set_robust_list(head, 24)), 0);
    check_err!(sys::set_robust_list(head, 23), Errno::EINVAL);
    check_err!(sys::set_robust_list(head, 48), Errno::EINVAL);
    Ok(())
}

pub fn prlimit_stack() -> TestResult {
    let mut old = sys::Rlimit::default();
    check_ok!(sys::prlimit64(
        0,
        sys::RLIMIT_STACK,
        0,
        &raw mut old as usize
    ));
    check!(old.cur > 0 && old.cur <= old.max, "RLIMIT_STACK {old:?}");
    check_err!(
        sys::prlimit64(0, 1000, 0, &raw mut old as usize),
        Errno::EINVAL
    );
    // (NULL means "do not return the old limit".)
    for (what, addr) in &bad_addrs()[1..] {
        let r = sys::prlimit64(0, sys::RLIMIT_STACK, 0, *addr);
        check!(r == Err(Errno::EFAULT), "prlimit64(old = {what}): {r:?}");
    }
    Ok(())
}

pub fn readlinkat_missing() -> TestResult {
    let mut buf = [0u8; 64];
    check_err!(
        sys::readlinkat(
            sys::AT_FDCWD,
            c"/nonexistent-usertests".as_ptr() as usize,
            buf.as_mut_ptr() as usize,
            64
        ),
        Errno::ENOENT
    );
    check_err!(
        sys::readlinkat(sys::AT_FDCWD, KERNEL_ADDR, buf.as_mut_ptr() as usize, 64),
        Errno::EFAULT
    );
    check_err!(
        sys::readlinkat(sys::AT_FDCWD, 0, buf.as_mut_ptr() as usize, 64),
        Errno::EFAULT
    );
    Ok(())
}

pub fn unknown_syscall_enosys() -> TestResult {
    // (Not 335: Linux 6.11 made it uretprobe, which raises SIGILL.)
    for n in [1000usize, 4096, 0x7fff_ffff] {
        // SAFETY: an unknown system call does nothing.
        let r = unsafe { sys::raw(n, &[1, 2, 3]) };
        check!(r == Err(Errno::ENOSYS), "syscall {n}: {r:?}");
    }
    // SAFETY: as above; rax = -1 is no system call.
    let r = sys::decode(unsafe { sys::syscall0(usize::MAX) });
    check!(r == Err(Errno::ENOSYS), "syscall -1: {r:?}");
    Ok(())
}
