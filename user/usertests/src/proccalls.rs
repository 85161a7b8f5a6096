//! The argument checks of the clock, timer, signal, wait, limit, `prctl`, scheduling and
//! futex calls, in the order Linux makes them (issue 24's fuzzer divergences): which error
//! wins when several arguments are wrong, the clocks and options Linux has, and the `int`
//! arguments whose high bits it ignores. Each test is a few calls, milliseconds in all.

use core::sync::atomic::{AtomicU32, Ordering};

use urt::ktap::TestResult;
use urt::sys::{self, Errno};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{KERNEL_ADDR, unmapped_addr};

const NANOSLEEP_CLOCK: usize = 230;
const CLOCK_GETTIME: usize = 228;
const CLOCK_GETRES: usize = 229;
const GETTIMEOFDAY: usize = 96;
const TIMER_CREATE: usize = 222;
const TIMER_SETTIME: usize = 223;
const TIMER_DELETE: usize = 226;
const SETITIMER: usize = 38;
const KILL: usize = 62;
const RT_SIGPENDING: usize = 127;
const WAIT4: usize = 61;
const WAITID: usize = 247;
const PRLIMIT64: usize = 302;
const PRCTL: usize = 157;
const ARCH_PRCTL: usize = 158;
const GETRANDOM: usize = 318;
const PIDFD_OPEN: usize = 434;
const CLOSE: usize = 3;
const SCHED_GET_PRIORITY_MAX: usize = 146;
const SCHED_GET_PRIORITY_MIN: usize = 147;
const SCHED_GETAFFINITY: usize = 204;
const FUTEX: usize = 202;

const CLOCK_REALTIME_ALARM: usize = 8;
const CLOCK_BOOTTIME_ALARM: usize = 9;
const CLOCK_TAI: usize = 11;
/// The CPU-time clock of the calling thread (pid 0, thread bit, scheduled time).
const CPU_CLOCK_OWN_THREAD: usize = -2i32 as u32 as usize;
/// The clock of open descriptor 0 as a clock device (low bits 3): it is no such device.
const CLOCK_OF_FD_0: usize = (!0i32 << 3 | 3) as u32 as usize;
const PR_SET_CHILD_SUBREAPER: usize = 36;
const PR_GET_CHILD_SUBREAPER: usize = 37;
const ARCH_GET_CPUID: usize = 0x1011;
const ARCH_GET_XCOMP_SUPP: usize = 0x1021;
const SCHED_EXT: usize = 7;
/// `getrandom` from a pool that may not be ready yet (never blocks).
const GRND_INSECURE: usize = 4;

fn call(n: usize, args: &[usize]) -> sys::SysResult {
    // SAFETY: the calls here take plain values and addresses of this test's own buffers (or
    // deliberately bad ones, which the kernel refuses).
    unsafe { sys::raw(n, args) }
}

/// The clocks Linux has beyond the usual eight: the alarm clocks, TAI and a thread's CPU-time
/// clock by id; a bad buffer is EFAULT only for a clock that exists.
pub fn clocks_linux_has() -> TestResult {
    let mut time = [0i64; 2];
    let out = &raw mut time as usize;
    for clock in [
        CLOCK_REALTIME_ALARM,
        CLOCK_BOOTTIME_ALARM,
        CLOCK_TAI,
        CPU_CLOCK_OWN_THREAD,
    ] {
        check_ok!(call(CLOCK_GETTIME, &[clock, out]));
        check_ok!(call(CLOCK_GETRES, &[clock, out]));
        check_err!(
            call(CLOCK_GETTIME, &[clock, unmapped_addr()]),
            Errno::EFAULT
        );
        check_err!(call(CLOCK_GETRES, &[clock, KERNEL_ADDR]), Errno::EFAULT);
    }
    check_err!(call(CLOCK_GETTIME, &[10, out]), Errno::EINVAL);
    check_err!(call(CLOCK_GETTIME, &[usize::MAX, out]), Errno::EINVAL);
    check_err!(call(CLOCK_GETTIME, &[CLOCK_OF_FD_0, out]), Errno::EINVAL);
    check_err!(call(CLOCK_GETRES, &[CLOCK_OF_FD_0, out]), Errno::EINVAL);
    Ok(())
}

/// `clock_nanosleep` checks the clock (EINVAL), whether it can sleep (EOPNOTSUPP) and only
/// then reads the request (EFAULT); a zero sleep on the process CPU-time clock returns; only
/// the alarm clocks refuse unknown flags.
pub fn clock_nanosleep_checks_clock_first() -> TestResult {
    let zero = [0i64; 2];
    let request = &raw const zero as usize;
    let bad = unmapped_addr();
    check_err!(call(NANOSLEEP_CLOCK, &[99, 0, bad, 0]), Errno::EINVAL);
    check_err!(
        call(NANOSLEEP_CLOCK, &[0xffff_ffff, 0, bad, 0]),
        Errno::EFAULT
    );
    check_err!(
        call(NANOSLEEP_CLOCK, &[0xffff_ffff, 0, request, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(NANOSLEEP_CLOCK, &[sys::CLOCK_THREAD_CPUTIME_ID, 0, bad, 0]),
        Errno::EOPNOTSUPP
    );
    check_err!(
        call(NANOSLEEP_CLOCK, &[CLOCK_OF_FD_0, 0, request, 0]),
        Errno::EOPNOTSUPP
    );
    check_err!(
        call(NANOSLEEP_CLOCK, &[CPU_CLOCK_OWN_THREAD, 0, request, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(NANOSLEEP_CLOCK, &[sys::CLOCK_PROCESS_CPUTIME_ID, 0, bad, 0]),
        Errno::EFAULT
    );
    check_ok!(call(
        NANOSLEEP_CLOCK,
        &[sys::CLOCK_PROCESS_CPUTIME_ID, 0, request, 0]
    ));
    check_ok!(call(NANOSLEEP_CLOCK, &[CLOCK_TAI, 1, request, 0]));
    check_ok!(call(NANOSLEEP_CLOCK, &[CLOCK_TAI, 2, request, 0]));
    check_err!(
        call(NANOSLEEP_CLOCK, &[CLOCK_REALTIME_ALARM, 2, request, 0]),
        Errno::EINVAL
    );
    Ok(())
}

/// `gettimeofday` writes the time zone (UTC: zeroes) and faults on a bad one.
pub fn gettimeofday_writes_timezone() -> TestResult {
    let mut zone = [-1i32; 2];
    check_ok!(call(GETTIMEOFDAY, &[0, &raw mut zone as usize]));
    check_eq!(zone, [0, 0]);
    check_err!(call(GETTIMEOFDAY, &[0, unmapped_addr()]), Errno::EFAULT);
    Ok(())
}

/// `timer_create` reads the sigevent before it looks at the clock, takes TAI; `timer_settime`
/// wants a new value (EINVAL for none); `setitimer` reads its value before `which`.
pub fn timer_checks_in_linux_order() -> TestResult {
    let mut id = -1i32;
    let id_out = &raw mut id as usize;
    check_err!(
        call(TIMER_CREATE, &[99, unmapped_addr(), id_out]),
        Errno::EFAULT
    );
    check_err!(
        call(TIMER_CREATE, &[CLOCK_TAI, 0, KERNEL_ADDR]),
        Errno::EFAULT
    );
    check_ok!(call(TIMER_CREATE, &[CLOCK_TAI, 0, id_out]));
    let timer = id as usize;
    let result = call(TIMER_SETTIME, &[timer, 0, 0, 0]);
    check_ok!(call(TIMER_DELETE, &[timer]));
    check_err!(result, Errno::EINVAL);
    // Ids count up, a deleted one is not given again.
    check_ok!(call(TIMER_CREATE, &[CLOCK_TAI, 0, id_out]));
    let first = id;
    check_ok!(call(TIMER_DELETE, &[first as usize]));
    check_ok!(call(TIMER_CREATE, &[CLOCK_TAI, 0, id_out]));
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    check_eq!(id, first + 1);
    // Clock -1 (a thread CPU-time clock of no kind of time) is refused only after the id is
    // written.
    let none = [0u64, 1 << 32, 0, 0, 0, 0, 0, 0];
    let no_signal = &raw const none as usize;
    check_err!(
        call(TIMER_CREATE, &[0xffff_ffff, no_signal, KERNEL_ADDR]),
        Errno::EFAULT
    );
    check_err!(
        call(TIMER_CREATE, &[0xffff_ffff, no_signal, id_out]),
        Errno::EINVAL
    );
    check_err!(call(SETITIMER, &[3, unmapped_addr(), 0]), Errno::EFAULT);
    let zero = [0i64; 4];
    check_err!(
        call(SETITIMER, &[3, &raw const zero as usize, 0]),
        Errno::EINVAL
    );
    Ok(())
}

/// `kill(-1, sig)` checks only the signal number (there is always someone else to signal:
/// Linux's kernel threads); `rt_sigpending` of 0 bytes writes nothing, anywhere.
pub fn kill_all_and_sigpending_sizes() -> TestResult {
    check_err!(call(KILL, &[usize::MAX, usize::MAX]), Errno::EINVAL);
    check_err!(call(KILL, &[0xffff_ffff, 65]), Errno::EINVAL);
    check_ok!(call(KILL, &[0xffff_ffff, 0]));
    check_ok!(call(RT_SIGPENDING, &[KERNEL_ADDR, 0]));
    check_err!(call(RT_SIGPENDING, &[KERNEL_ADDR, 8]), Errno::EFAULT);
    Ok(())
}

/// `wait4` ignores the high half of its `int` options; `waitid` writes its siginfo whatever
/// the wait answered, so a bad one is EFAULT even for options it refuses.
pub fn wait_options_and_siginfo_order() -> TestResult {
    let none = 0x3fff_0000;
    check_err!(call(WAIT4, &[none, 0, 1 << 36, 0]), Errno::ECHILD);
    check_err!(
        call(WAITID, &[sys::P_PID, none, 0, 1 << 20 | 0xe, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(WAITID, &[sys::P_PID, none, KERNEL_ADDR, 1 << 20 | 0xe, 0]),
        Errno::EFAULT
    );
    check_err!(
        call(
            WAITID,
            &[sys::P_PID, none, unmapped_addr(), sys::WEXITED, 0]
        ),
        Errno::EFAULT
    );
    let mut info = [0xffu8; 128];
    check_err!(
        call(
            WAITID,
            &[
                sys::P_PID,
                none,
                info.as_mut_ptr() as usize,
                sys::WEXITED,
                0
            ]
        ),
        Errno::ECHILD
    );
    check_eq!(info[..12], [0u8; 12], "the siginfo head is not zeroed");
    Ok(())
}

/// `waitid(P_PIDFD)` of a descriptor that is no process descriptor, or of none, is EBADF;
/// bad options and a negative descriptor are EINVAL first.
pub fn waitid_pidfd_of_other_descriptors() -> TestResult {
    let mut info = [0u8; 128];
    let info = info.as_mut_ptr() as usize;
    check_err!(
        call(
            WAITID,
            &[sys::P_PIDFD, 1, info, sys::WEXITED | sys::WNOHANG, 0]
        ),
        Errno::EBADF
    );
    check_err!(
        call(WAITID, &[sys::P_PIDFD, 9999, info, sys::WEXITED, 0]),
        Errno::EBADF
    );
    check_err!(
        call(WAITID, &[sys::P_PIDFD, 9999, info, 0, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(WAITID, &[sys::P_PIDFD, 1, info, sys::WEXITED | 1 << 20, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(
            WAITID,
            &[sys::P_PIDFD, -1i32 as u32 as usize, info, sys::WEXITED, 0]
        ),
        Errno::EINVAL
    );
    Ok(())
}

/// `prlimit64` reads the new limit (EFAULT) before it looks for the process (ESRCH), then the
/// resource, an `unsigned int` (EINVAL).
pub fn prlimit64_checks_in_linux_order() -> TestResult {
    let mut old = [0u64; 2];
    let old_out = &raw mut old as usize;
    check_err!(
        call(PRLIMIT64, &[usize::MAX, 7, unmapped_addr(), 0]),
        Errno::EFAULT
    );
    check_err!(call(PRLIMIT64, &[0x3fff_0000, 1000, 0, 0]), Errno::ESRCH);
    check_err!(call(PRLIMIT64, &[0, 1000, 0, 0]), Errno::EINVAL);
    check_ok!(call(PRLIMIT64, &[0, 7 | 1 << 32, 0, old_out]));
    check_ok!(call(PRLIMIT64, &[sys::getpid(), 7, 0, old_out]));
    Ok(())
}

/// `PR_SET_CHILD_SUBREAPER`: a grandchild whose parent ends comes to the subreaper, which
/// collects it.
pub fn child_subreaper_adopts_orphans() -> TestResult {
    check_err!(
        call(PRCTL, &[PR_GET_CHILD_SUBREAPER, unmapped_addr(), 0, 0, 0]),
        Errno::EFAULT
    );
    check_ok!(call(PRCTL, &[PR_SET_CHILD_SUBREAPER, 5, 0, 0, 0]));
    let mut flag = -1i32;
    check_ok!(call(
        PRCTL,
        &[PR_GET_CHILD_SUBREAPER, &raw mut flag as usize, 0, 0, 0]
    ));
    check_eq!(flag, 1);
    let me = sys::getpid();
    let child = check_ok!(sys::fork());
    if child == 0 {
        // The child: a grandchild that waits to be orphaned, then says who adopted it.
        let parent = sys::getpid();
        let grandchild = sys::fork().unwrap_or(usize::MAX);
        if grandchild == 0 {
            while sys::getppid() == parent {
                sys::sleep_ns(1_000_000);
            }
            sys::exit_group(i32::from(sys::getppid() == me));
        }
        sys::exit_group(0);
    }
    let mut status = 0i32;
    let status_out = &raw mut status as usize;
    check_eq!(check_ok!(call(WAIT4, &[child, status_out, 0, 0])), child);
    let adopted = check_ok!(call(WAIT4, &[usize::MAX, status_out, 0, 0]));
    check_ok!(call(PRCTL, &[PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0]));
    check!(adopted != child, "no grandchild to collect");
    check_eq!(
        (status >> 8) & 0xff,
        1,
        "the orphan did not come to the subreaper"
    );
    Ok(())
}

const PR_GET_DUMPABLE: usize = 3;
const PR_SET_DUMPABLE: usize = 4;

/// `PR_SET_DUMPABLE` takes 0 or 1 (EINVAL for the kernel's own 2), `PR_GET_DUMPABLE` answers
/// it, and a fork's child starts with its parent's.
pub fn dumpable_set_and_inherited() -> TestResult {
    check_eq!(check_ok!(call(PRCTL, &[PR_GET_DUMPABLE, 0, 0, 0, 0])), 1);
    check_err!(call(PRCTL, &[PR_SET_DUMPABLE, 2, 0, 0, 0]), Errno::EINVAL);
    check_ok!(call(PRCTL, &[PR_SET_DUMPABLE, 0, 0, 0, 0]));
    // Arguments past the option's are ignored.
    let dumpable = call(PRCTL, &[PR_GET_DUMPABLE, 1 << 31, 1 << 32, 1, 7]);
    let child = check_ok!(sys::fork());
    if child == 0 {
        let inherited = call(PRCTL, &[PR_GET_DUMPABLE, 0, 0, 0, 0]);
        sys::exit_group(i32::from(inherited == Ok(0)));
    }
    let mut status = 0i32;
    check_eq!(
        check_ok!(call(WAIT4, &[child, &raw mut status as usize, 0, 0])),
        child
    );
    check_ok!(call(PRCTL, &[PR_SET_DUMPABLE, 1, 0, 0, 0]));
    check_eq!(check_ok!(dumpable), 0);
    check_eq!((status >> 8) & 0xff, 1, "the child was dumpable");
    check_eq!(check_ok!(call(PRCTL, &[PR_GET_DUMPABLE, 0, 0, 0, 0])), 1);
    Ok(())
}

/// `arch_prctl`'s CPUID and XSAVE-feature queries; `getrandom` and `pidfd_open` ignore the
/// high half of their `unsigned int` flags.
pub fn arch_prctl_queries_and_int_flags() -> TestResult {
    check_eq!(check_ok!(call(ARCH_PRCTL, &[ARCH_GET_CPUID, 0])), 1);
    let mut features = 0u64;
    check_ok!(call(
        ARCH_PRCTL,
        &[ARCH_GET_XCOMP_SUPP, &raw mut features as usize]
    ));
    check_eq!(features & 3, 3, "x87 and SSE are not among the features");
    check_err!(
        call(ARCH_PRCTL, &[ARCH_GET_XCOMP_SUPP, unmapped_addr()]),
        Errno::EFAULT
    );
    let mut bytes = [0u8; 8];
    check_eq!(
        check_ok!(call(
            GETRANDOM,
            &[bytes.as_mut_ptr() as usize, 8, GRND_INSECURE | 1 << 40]
        )),
        8
    );
    let fd = check_ok!(call(PIDFD_OPEN, &[sys::getpid(), 1 << 60]));
    check_ok!(call(CLOSE, &[fd]));
    Ok(())
}

/// `SCHED_EXT` has the priority range 0 to 0; a child's affinity can be read by its pid.
pub fn sched_ext_range_and_other_affinity() -> TestResult {
    check_eq!(check_ok!(call(SCHED_GET_PRIORITY_MAX, &[SCHED_EXT])), 0);
    check_eq!(check_ok!(call(SCHED_GET_PRIORITY_MIN, &[SCHED_EXT])), 0);
    let child = check_ok!(sys::fork());
    if child == 0 {
        sys::sleep_ns(5_000_000_000);
        sys::exit_group(0);
    }
    let mut mask = 0u64;
    let read = call(SCHED_GETAFFINITY, &[child, 8, &raw mut mask as usize]);
    let _ = call(KILL, &[child, 9]);
    check_ok!(call(WAIT4, &[child, 0, 0, 0]));
    check_eq!(check_ok!(read), 8);
    check!(mask != 0, "the child may run on no CPU");
    Ok(())
}

const FUTEX_REQUEUE: usize = 3;
const FUTEX_CMP_REQUEUE: usize = 4;
const FUTEX_WAKE_OP: usize = 5;
const FUTEX_WAIT_BITSET: usize = 9;
const FUTEX_WAKE_BITSET: usize = 10;
const FUTEX_CLOCK_REALTIME: usize = 256;

fn futex(
    addr: &AtomicU32,
    op: usize,
    value: usize,
    count2: usize,
    addr2: usize,
    value3: usize,
) -> sys::SysResult {
    call(
        FUTEX,
        &[
            addr.as_ptr() as usize,
            op | sys::FUTEX_PRIVATE_FLAG,
            value,
            count2,
            addr2,
            value3,
        ],
    )
}

/// The futex operations beyond WAIT and WAKE: their argument checks, WAKE_OP's operation on
/// the second word, and a requeue that moves a waiting thread to another word.
pub fn futex_requeue_wake_op_bitset() -> TestResult {
    let word = AtomicU32::new(0);
    let other = AtomicU32::new(0);
    let other_addr = other.as_ptr() as usize;
    check_err!(
        futex(&word, sys::FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, 0, 0, 0),
        Errno::ENOSYS
    );
    check_err!(futex(&word, FUTEX_WAIT_BITSET, 0, 0, 0, 0), Errno::EINVAL);
    check_err!(futex(&word, FUTEX_WAKE_BITSET, 1, 0, 0, 0), Errno::EINVAL);
    check_eq!(
        check_ok!(futex(&word, FUTEX_REQUEUE, 1, 1, other_addr, 0)),
        0
    );
    check_err!(
        futex(&word, FUTEX_REQUEUE, usize::MAX, 1, other_addr, 0),
        Errno::EINVAL
    );
    check_err!(
        futex(&word, FUTEX_CMP_REQUEUE, 1, 1, other_addr, 7),
        Errno::EAGAIN
    );
    check_err!(
        futex(&word, FUTEX_REQUEUE, 1, 1, KERNEL_ADDR, 0),
        Errno::EFAULT
    );
    // WAKE_OP: other += 5 if... (ADD 5, compare EQ 0): its old value 0 passes.
    let add_5_if_0 = 1 << 28 | 5 << 12;
    check_eq!(
        check_ok!(futex(&word, FUTEX_WAKE_OP, 1, 1, other_addr, add_5_if_0)),
        0
    );
    check_eq!(other.load(Ordering::Relaxed), 5);
    // An unknown operation (7) is ENOSYS; an unknown comparison (15) too, after the operation.
    check_err!(
        futex(&word, FUTEX_WAKE_OP, 1, 1, other_addr, 7 << 28),
        Errno::ENOSYS
    );
    check_err!(
        futex(&word, FUTEX_WAKE_OP, 1, 1, other_addr, 15 << 24 | 9 << 12),
        Errno::ENOSYS
    );
    check_eq!(other.load(Ordering::Relaxed), 9);
    check_err!(
        futex(&word, FUTEX_WAKE_OP, 1, 1, unmapped_addr() & !3, 0),
        Errno::EFAULT
    );
    // A shared WAKE faults on an unmapped word; a private one finds no waiter there.
    let unmapped = unmapped_addr() & !3;
    check_err!(
        call(FUTEX, &[unmapped, sys::FUTEX_WAKE, 1, 0, 0, 0]),
        Errno::EFAULT
    );
    check_eq!(
        check_ok!(call(
            FUTEX,
            &[
                unmapped,
                sys::FUTEX_WAKE | sys::FUTEX_PRIVATE_FLAG,
                1,
                0,
                0,
                0
            ]
        )),
        0
    );
    // The last word below the top of user space: Linux checks only where a word starts, so a
    // private requeue or wake there (which reads no word) finds no waiter; a shared one, whose
    // key is its page, faults, and so does a word past the top.
    const TOP_PAGE: usize = 0x7fff_ffff_f000;
    let private_requeue = FUTEX_REQUEUE | sys::FUTEX_PRIVATE_FLAG;
    check_eq!(
        check_ok!(call(
            FUTEX,
            &[TOP_PAGE, private_requeue, 0, 0x800, other_addr, 0]
        )),
        0
    );
    check_eq!(
        check_ok!(call(
            FUTEX,
            &[
                TOP_PAGE,
                sys::FUTEX_WAKE | sys::FUTEX_PRIVATE_FLAG,
                1,
                0,
                0,
                0
            ]
        )),
        0
    );
    check_err!(
        call(FUTEX, &[TOP_PAGE, FUTEX_REQUEUE, 0, 0x800, other_addr, 0]),
        Errno::EFAULT
    );
    check_err!(
        call(
            FUTEX,
            &[TOP_PAGE + 4, private_requeue, 0, 0x800, other_addr, 0]
        ),
        Errno::EFAULT
    );
    // A waiter with bitset 1 on `word` is moved to `other`, then woken there.
    static FROM: AtomicU32 = AtomicU32::new(0);
    static TO: AtomicU32 = AtomicU32::new(0);
    let waiter = urt::thread::spawn(|| futex(&FROM, FUTEX_WAIT_BITSET, 0, 0, 0, 1));
    let mut moved = 0;
    for _ in 0..2000 {
        moved = check_ok!(futex(
            &FROM,
            FUTEX_CMP_REQUEUE,
            0,
            1,
            TO.as_ptr() as usize,
            0
        ));
        if moved == 1 {
            break;
        }
        sys::sleep_ns(1_000_000);
    }
    check_eq!(moved, 1, "the waiter was never moved");
    check_eq!(check_ok!(futex(&TO, FUTEX_WAKE_BITSET, 1, 0, 0, 2)), 0);
    check_eq!(check_ok!(futex(&TO, FUTEX_WAKE_BITSET, 1, 0, 0, 1)), 1);
    check_ok!(waiter.join());
    Ok(())
}

const FUTEX_LOCK_PI: usize = 6;
const FUTEX_UNLOCK_PI: usize = 7;
const FUTEX_TRYLOCK_PI: usize = 8;
const FUTEX_CMP_REQUEUE_PI: usize = 12;
const FUTEX_LOCK_PI2: usize = 13;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const EDEADLK: Errno = Errno(35);

/// The priority-inheritance futex locks: the owner's id in the word, EDEADLK for the owner,
/// EPERM for an unlock by another, ESRCH for an owner that does not exist, a timed lock that
/// times out and one that sleeps until the owner unlocks.
pub fn futex_priority_inheritance_locks() -> TestResult {
    let word = AtomicU32::new(0);
    let other = AtomicU32::new(0);
    let zero = [0i64; 2];
    let past = &raw const zero as usize;
    check_err!(
        futex(&word, FUTEX_LOCK_PI | FUTEX_CLOCK_REALTIME, 0, past, 0, 0),
        Errno::ENOSYS
    );
    check_ok!(futex(&word, FUTEX_TRYLOCK_PI, 0, 0, 0, 0));
    check_eq!(word.load(Ordering::Relaxed) as usize, sys::gettid());
    check_err!(futex(&word, FUTEX_LOCK_PI, 0, past, 0, 0), EDEADLK);
    check_ok!(futex(&word, FUTEX_UNLOCK_PI, 0, 0, 0, 0));
    check_eq!(word.load(Ordering::Relaxed), 0);
    check_err!(futex(&word, FUTEX_UNLOCK_PI, 0, 0, 0, 0), Errno::EPERM);
    word.store(0x3fff_0000, Ordering::Relaxed);
    check_err!(futex(&word, FUTEX_TRYLOCK_PI, 0, 0, 0, 0), Errno::ESRCH);
    check_eq!(word.load(Ordering::Relaxed), 0x3fff_0000 | FUTEX_WAITERS);
    let other_addr = other.as_ptr() as usize;
    check_eq!(
        check_ok!(futex(
            &word,
            FUTEX_CMP_REQUEUE_PI,
            1,
            0,
            other_addr,
            0xbfff_0000
        )),
        0
    );
    check_err!(
        futex(&word, FUTEX_CMP_REQUEUE_PI, 2, 0, other_addr, 0xbfff_0000),
        Errno::EINVAL
    );
    check_err!(
        futex(&word, FUTEX_CMP_REQUEUE_PI, 1, 0, word.as_ptr() as usize, 0),
        Errno::EINVAL
    );
    check_err!(
        futex(&word, FUTEX_CMP_REQUEUE_PI, 1, 0, other_addr, 0),
        Errno::EAGAIN
    );
    // Held here: another thread cannot try it, times out, then sleeps until it is given back.
    static LOCK: AtomicU32 = AtomicU32::new(0);
    static TRIED: AtomicU32 = AtomicU32::new(0);
    check_ok!(futex(&LOCK, FUTEX_TRYLOCK_PI, 0, 0, 0, 0));
    let contender = urt::thread::spawn(|| {
        let zero = [0i64; 2];
        let tried = futex(&LOCK, FUTEX_TRYLOCK_PI, 0, 0, 0, 0);
        let timed = futex(&LOCK, FUTEX_LOCK_PI2, 0, &raw const zero as usize, 0, 0);
        TRIED.store(1, Ordering::Release);
        let locked = futex(&LOCK, FUTEX_LOCK_PI2, 0, 0, 0, 0);
        let unlocked = futex(&LOCK, FUTEX_UNLOCK_PI, 0, 0, 0, 0);
        (tried, timed, locked, unlocked)
    });
    while TRIED.load(Ordering::Acquire) == 0 {
        sys::sleep_ns(1_000_000);
    }
    sys::sleep_ns(10_000_000);
    let unlocked = futex(&LOCK, FUTEX_UNLOCK_PI, 0, 0, 0, 0);
    let (tried, timed, locked, given_back) = contender.join();
    check_ok!(unlocked);
    check_err!(tried, Errno::EAGAIN);
    check_err!(timed, Errno::ETIMEDOUT);
    check_ok!(locked);
    check_ok!(given_back);
    check_eq!(LOCK.load(Ordering::Relaxed), 0);
    Ok(())
}
