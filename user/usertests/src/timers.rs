//! Interval timers (`alarm`, `getitimer`/`setitimer`, the POSIX timers), `times`, scheduling
//! policy and nice values, capabilities, and the small calls stress-ng makes at start-up
//! (`get_robust_list`, `get_thread_area`, `socket`).

use urt::ktap::TestResult;
use urt::signal::{self, SIG_BLOCK, SIG_SETMASK, SIGALRM, SIGSET_SIZE, SigInfo, sigmask};
use urt::sys::{self, Errno, Timespec};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{bad_addrs, ms_since};

const GETITIMER: usize = 36;
const ALARM: usize = 37;
const SETITIMER: usize = 38;
const TIMES: usize = 100;
const CAPGET: usize = 125;
const CAPSET: usize = 126;
const GETPRIORITY: usize = 140;
const SETPRIORITY: usize = 141;
const SCHED_SETPARAM: usize = 142;
const SCHED_GETPARAM: usize = 143;
const SCHED_SETSCHEDULER: usize = 144;
const SCHED_GETSCHEDULER: usize = 145;
const SCHED_GET_PRIORITY_MAX: usize = 146;
const SCHED_GET_PRIORITY_MIN: usize = 147;
const SCHED_RR_GET_INTERVAL: usize = 148;
const GET_THREAD_AREA: usize = 211;
const TIMER_CREATE: usize = 222;
const TIMER_SETTIME: usize = 223;
const TIMER_GETTIME: usize = 224;
const TIMER_GETOVERRUN: usize = 225;
const TIMER_DELETE: usize = 226;
const GET_ROBUST_LIST: usize = 274;
const SOCKET: usize = 41;

const ITIMER_REAL: usize = 0;
const ITIMER_VIRTUAL: usize = 1;
const ITIMER_PROF: usize = 2;
const SIGPROF: usize = 27;
/// The CPU-time clock id of the calling thread (`tid` 0), scheduled time: glibc's encoding.
const CLOCK_SELF_THREAD_SCHED: usize = -2isize as usize;
const SI_KERNEL: i32 = 0x80;
const SI_TIMER: i32 = -2;
const SIGEV_SIGNAL: u32 = 0;
const SIGEV_NONE: u32 = 1;
const SIGEV_THREAD_ID: u32 = 4;
const TIMER_ABSTIME: usize = 1;
const CLOCK_MONOTONIC_RAW: usize = 4;
const EAFNOSUPPORT: Errno = Errno(97);

fn call(n: usize, args: &[usize]) -> sys::SysResult {
    // SAFETY: the calls here take plain values and addresses of this test's own buffers (or
    // deliberately bad ones, which the kernel refuses).
    unsafe { sys::raw(n, args) }
}

/// Blocks `signo` and returns the old mask.
fn block(signo: usize) -> u64 {
    signal::sigprocmask(SIG_BLOCK, sigmask(signo)).unwrap_or(0)
}

/// Waits up to `ms` for `signo` (blocked) and returns its siginfo.
fn wait_signal(signo: usize, ms: u64) -> Result<SigInfo, Errno> {
    let mut info = SigInfo::default();
    let timeout = Timespec::from_nanos(ms * 1_000_000);
    let set = sigmask(signo);
    sys::rt_sigtimedwait(
        &raw const set as usize,
        &raw mut info as usize,
        &raw const timeout as usize,
        SIGSET_SIZE,
    )?;
    Ok(info)
}

/// `struct itimerval` / `itimerspec`: interval, then value (timeval or timespec).
type Pair = [[i64; 2]; 2];

fn getitimer(which: usize) -> Result<Pair, Errno> {
    let mut value: Pair = [[0; 2]; 2];
    call(GETITIMER, &[which, &raw mut value as usize])?;
    Ok(value)
}

pub fn alarm_returns_seconds_left() -> TestResult {
    check_eq!(check_ok!(call(ALARM, &[100])), 0);
    check_eq!(check_ok!(call(ALARM, &[50])), 100);
    let [interval, value] = check_ok!(getitimer(ITIMER_REAL));
    check_eq!(interval, [0, 0]);
    check!(
        value[0] >= 49 && value[0] <= 50,
        "getitimer after alarm(50): {value:?}"
    );
    check_eq!(check_ok!(call(ALARM, &[0])), 50);
    check_eq!(check_ok!(getitimer(ITIMER_REAL)), [[0, 0], [0, 0]]);
    Ok(())
}

pub fn alarm_sends_sigalrm() -> TestResult {
    let old = block(SIGALRM);
    let started = sys::monotonic_ns();
    check_ok!(call(ALARM, &[1]));
    let info = wait_signal(SIGALRM, 5000);
    let ms = ms_since(started);
    signal::sigprocmask(SIG_SETMASK, old).ok();
    let info = check_ok!(info);
    check_eq!(info.signo, SIGALRM as i32);
    check_eq!(info.code, SI_KERNEL);
    check!(ms >= 900, "SIGALRM after {ms} ms");
    Ok(())
}

pub fn setitimer_real_repeats() -> TestResult {
    let old = block(SIGALRM);
    // Every 20 ms, from 20 ms on.
    let new: Pair = [[0, 20_000], [0, 20_000]];
    let mut previous: Pair = [[1; 2]; 2];
    check_ok!(call(
        SETITIMER,
        &[
            ITIMER_REAL,
            &raw const new as usize,
            &raw mut previous as usize
        ]
    ));
    check_eq!(previous, [[0, 0], [0, 0]]);
    let mut received = 0;
    for _ in 0..3 {
        if wait_signal(SIGALRM, 2000).is_ok() {
            received += 1;
        }
    }
    let [interval, value] = check_ok!(getitimer(ITIMER_REAL));
    let off: Pair = [[0; 2]; 2];
    check_ok!(call(
        SETITIMER,
        &[
            ITIMER_REAL,
            &raw const off as usize,
            &raw mut previous as usize
        ]
    ));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    check_eq!(received, 3);
    check_eq!(interval, [0, 20_000]);
    check!(value[0] == 0 && value[1] <= 20_000, "value {value:?}");
    check_eq!(previous[0], [0, 20_000]);
    check_eq!(check_ok!(getitimer(ITIMER_REAL)), [[0, 0], [0, 0]]);
    // The CPU-time timers read as disarmed.
    check_eq!(check_ok!(getitimer(ITIMER_VIRTUAL)), [[0, 0], [0, 0]]);
    Ok(())
}

pub fn setitimer_errors() -> TestResult {
    let off: Pair = [[0; 2]; 2];
    check_err!(
        call(SETITIMER, &[3, &raw const off as usize, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(GETITIMER, &[3, &raw const off as usize]),
        Errno::EINVAL
    );
    for bad in [
        [[0, 1_000_000], [0, 0]],
        [[0, 0], [-1, 0]],
        [[0, 0], [0, -1]],
    ] {
        check_err!(
            call(SETITIMER, &[ITIMER_REAL, &raw const bad as usize, 0]),
            Errno::EINVAL
        );
    }
    for (what, addr) in bad_addrs().into_iter().skip(1) {
        let r = call(SETITIMER, &[ITIMER_REAL, addr, 0]);
        check!(r == Err(Errno::EFAULT), "setitimer({what}): {r:?}");
        let r = call(GETITIMER, &[ITIMER_REAL, addr]);
        check!(r == Err(Errno::EFAULT), "getitimer({what}): {r:?}");
    }
    Ok(())
}

/// `struct sigevent`: value, signo, notify, thread id (the rest of its 64 bytes zero).
fn sigevent(value: u64, signo: u32, notify: u32, tid: u32) -> [u64; 8] {
    [
        value,
        u64::from(signo) | u64::from(notify) << 32,
        u64::from(tid),
        0,
        0,
        0,
        0,
        0,
    ]
}

fn timer_create(clock: usize, event: Option<&[u64; 8]>) -> Result<i32, Errno> {
    let mut id: i32 = -1;
    call(
        TIMER_CREATE,
        &[
            clock,
            event.map_or(0, |e| e as *const _ as usize),
            &raw mut id as usize,
        ],
    )?;
    Ok(id)
}

fn timer_settime(id: i32, flags: usize, interval_ns: u64, value_ns: u64) -> Result<Pair, Errno> {
    let new = [
        Timespec::from_nanos(interval_ns),
        Timespec::from_nanos(value_ns),
    ];
    let mut old = [Timespec::default(); 2];
    call(
        TIMER_SETTIME,
        &[
            id as usize,
            flags,
            &raw const new as usize,
            &raw mut old as usize,
        ],
    )?;
    Ok([
        [old[0].tv_sec, old[0].tv_nsec],
        [old[1].tv_sec, old[1].tv_nsec],
    ])
}

fn timer_gettime(id: i32) -> Result<Pair, Errno> {
    let mut value: Pair = [[0; 2]; 2];
    call(TIMER_GETTIME, &[id as usize, &raw mut value as usize])?;
    Ok(value)
}

const TIMER_SIGNAL: usize = signal::SIGRTMIN + 8;

pub fn posix_timer_sends_its_signal() -> TestResult {
    let old = block(TIMER_SIGNAL);
    let event = sigevent(0x1234, TIMER_SIGNAL as u32, SIGEV_SIGNAL, 0);
    let id = check_ok!(timer_create(sys::CLOCK_MONOTONIC, Some(&event)));
    check_eq!(
        check_ok!(timer_settime(id, 0, 0, 10_000_000)),
        [[0, 0], [0, 0]]
    );
    let info = wait_signal(TIMER_SIGNAL, 2000);
    let after = timer_gettime(id);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    let info = check_ok!(info);
    check_eq!(info.code, SI_TIMER);
    check_eq!(info.fields[0] as u32, id as u32);
    check_eq!(info.fields[1], 0x1234);
    check_eq!(check_ok!(after), [[0, 0], [0, 0]]);
    check_err!(call(TIMER_DELETE, &[id as usize]), Errno::EINVAL);
    check_err!(timer_gettime(id), Errno::EINVAL);
    Ok(())
}

pub fn posix_timer_default_event_and_thread_id() -> TestResult {
    // No sigevent: SIGALRM, with the timer's id as its value.
    let old = block(SIGALRM);
    let id = check_ok!(timer_create(sys::CLOCK_REALTIME, None));
    check_ok!(timer_settime(id, 0, 0, 5_000_000));
    let info = wait_signal(SIGALRM, 2000);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    let info = check_ok!(info);
    check_eq!(info.code, SI_TIMER);
    check_eq!(info.fields[1] as u32, id as u32);
    // SIGEV_THREAD_ID: this thread.
    let old = block(TIMER_SIGNAL);
    let event = sigevent(
        7,
        TIMER_SIGNAL as u32,
        SIGEV_THREAD_ID,
        sys::gettid() as u32,
    );
    let id = check_ok!(timer_create(sys::CLOCK_MONOTONIC, Some(&event)));
    check_ok!(timer_settime(id, 0, 0, 5_000_000));
    let info = wait_signal(TIMER_SIGNAL, 2000);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    check_eq!(check_ok!(info).fields[1], 7);
    Ok(())
}

pub fn posix_timer_settime_and_gettime() -> TestResult {
    // A signal timer that is never let expire (a disarmed SIGEV_NONE timer still reads its
    // old expiry under Linux 6.1).
    let event = sigevent(0, TIMER_SIGNAL as u32, SIGEV_SIGNAL, 0);
    let id = check_ok!(timer_create(sys::CLOCK_MONOTONIC, Some(&event)));
    check_ok!(timer_settime(id, 0, 1_000_000_000, 10_000_000_000));
    let [interval, value] = check_ok!(timer_gettime(id));
    check_eq!(interval, [1, 0]);
    check!(value[0] == 9 || value == [10, 0], "value {value:?}");
    // Absolute, 5 s from now on the monotonic clock; the old setting comes back.
    let deadline = sys::monotonic_ns() + 5_000_000_000;
    let [old_interval, _] = check_ok!(timer_settime(id, TIMER_ABSTIME, 0, deadline));
    check_eq!(old_interval, [1, 0]);
    let [interval, value] = check_ok!(timer_gettime(id));
    check_eq!(interval, [0, 0]);
    check!(value[0] == 4 || value == [5, 0], "value {value:?}");
    // A zero value disarms.
    check_ok!(timer_settime(id, 0, 0, 0));
    check_eq!(check_ok!(timer_gettime(id)), [[0, 0], [0, 0]]);
    check_eq!(check_ok!(call(TIMER_GETOVERRUN, &[id as usize])), 0);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    Ok(())
}

pub fn posix_timer_overrun() -> TestResult {
    let old = block(TIMER_SIGNAL);
    let event = sigevent(0, TIMER_SIGNAL as u32, SIGEV_SIGNAL, 0);
    let id = check_ok!(timer_create(sys::CLOCK_MONOTONIC, Some(&event)));
    // Every 2 ms while the signal stays blocked for 100 ms: one signal waits, the rest are
    // overruns.
    check_ok!(timer_settime(id, 0, 2_000_000, 2_000_000));
    let pause = Timespec::from_nanos(100_000_000);
    check_ok!(sys::nanosleep(&raw const pause as usize, 0));
    let first = wait_signal(TIMER_SIGNAL, 1000);
    check_ok!(timer_settime(id, 0, 0, 0));
    let second = wait_signal(TIMER_SIGNAL, 0);
    let overrun = call(TIMER_GETOVERRUN, &[id as usize]);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    check_ok!(first);
    // Disarmed after the first was taken: at most one more (sent in between).
    check!(
        matches!(second, Ok(_) | Err(Errno::EAGAIN)),
        "second wait: {second:?}"
    );
    let overrun = check_ok!(overrun);
    check!(overrun < 100, "overrun {overrun}");
    Ok(())
}

pub fn posix_timer_errors() -> TestResult {
    check_err!(timer_create(99, None), Errno::EINVAL);
    check_err!(timer_create(CLOCK_MONOTONIC_RAW, None), Errno::EOPNOTSUPP);
    for event in [
        sigevent(0, 0, SIGEV_SIGNAL, 0),
        sigevent(0, 65, SIGEV_SIGNAL, 0),
        sigevent(0, SIGALRM as u32, 7, 0),
        sigevent(0, SIGALRM as u32, SIGEV_THREAD_ID, 0x7fff_fff0),
    ] {
        check_err!(
            timer_create(sys::CLOCK_MONOTONIC, Some(&event)),
            Errno::EINVAL
        );
    }
    let (_, bad) = bad_addrs()[2];
    check_err!(
        call(TIMER_CREATE, &[sys::CLOCK_MONOTONIC, 0, bad]),
        Errno::EFAULT
    );
    let id = check_ok!(timer_create(
        sys::CLOCK_MONOTONIC,
        Some(&sigevent(0, 0, SIGEV_NONE, 0))
    ));
    let bad_value = [
        Timespec::default(),
        Timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000_000,
        },
    ];
    check_err!(
        call(
            TIMER_SETTIME,
            &[id as usize, 0, &raw const bad_value as usize, 0]
        ),
        Errno::EINVAL
    );
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    check_err!(timer_settime(id, 0, 0, 1), Errno::EINVAL);
    check_err!(call(TIMER_GETOVERRUN, &[id as usize]), Errno::EINVAL);
    check_err!(call(TIMER_DELETE, &[0x7fff_0000]), Errno::EINVAL);
    Ok(())
}

/// The time on `clock`, in ns.
fn clock_ns(clock: usize) -> Result<u64, Errno> {
    let mut now = Timespec::default();
    call(sys::nr::CLOCK_GETTIME, &[clock, &raw mut now as usize])?;
    Ok(now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

/// Spins until `signo` (blocked) is pending, or the process has run `ms` more of CPU time;
/// the signal's siginfo, if it came.
fn spin_for_signal(signo: usize, ms: u64) -> Option<SigInfo> {
    let end = clock_ns(sys::CLOCK_PROCESS_CPUTIME_ID).ok()? + ms * 1_000_000;
    loop {
        if let Ok(info) = wait_signal(signo, 0) {
            return Some(info);
        }
        if clock_ns(sys::CLOCK_PROCESS_CPUTIME_ID).ok()? >= end {
            return None;
        }
    }
}

pub fn cpu_time_timer_fires_after_spinning() -> TestResult {
    let old = block(TIMER_SIGNAL);
    let event = sigevent(0x55, TIMER_SIGNAL as u32, SIGEV_SIGNAL, 0);
    let id = check_ok!(timer_create(sys::CLOCK_PROCESS_CPUTIME_ID, Some(&event)));
    check_ok!(timer_settime(id, 0, 0, 20_000_000));
    let armed = timer_gettime(id);
    let info = spin_for_signal(TIMER_SIGNAL, 100);
    let after = timer_gettime(id);
    let overrun = call(TIMER_GETOVERRUN, &[id as usize]);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    let [_, value] = check_ok!(armed);
    check!(
        value[0] == 0 && value[1] > 0 && value[1] <= 20_000_000,
        "armed {value:?}"
    );
    check!(info.is_some(), "no signal after 100 ms of CPU time");
    let info = info.unwrap_or_default();
    check_eq!(info.code, SI_TIMER);
    check_eq!(info.fields[0] as u32, id as u32);
    check_eq!(info.fields[1], 0x55);
    check_eq!(check_ok!(after), [[0, 0], [0, 0]]);
    check_eq!(check_ok!(overrun), 0);
    check_err!(call(TIMER_DELETE, &[id as usize]), Errno::EINVAL);
    Ok(())
}

pub fn thread_cpu_time_timer_waits_while_asleep() -> TestResult {
    let old = block(TIMER_SIGNAL);
    let event = sigevent(0, TIMER_SIGNAL as u32, SIGEV_SIGNAL, 0);
    let id = check_ok!(timer_create(sys::CLOCK_THREAD_CPUTIME_ID, Some(&event)));
    check_ok!(timer_settime(id, 0, 0, 10_000_000));
    // 50 ms asleep use no CPU time: no signal, and still armed.
    let slept = wait_signal(TIMER_SIGNAL, 50);
    let after = timer_gettime(id);
    check_ok!(call(TIMER_DELETE, &[id as usize]));
    // The thread clock's encoded id (`tid` 0: the caller) takes timers too.
    let encoded = timer_create(CLOCK_SELF_THREAD_SCHED, Some(&event));
    signal::sigprocmask(SIG_SETMASK, old).ok();
    check_err!(slept, Errno::EAGAIN);
    let [_, value] = check_ok!(after);
    check!(value[0] == 0 && value[1] > 0, "after sleeping {value:?}");
    check_ok!(call(TIMER_DELETE, &[check_ok!(encoded) as usize]));
    Ok(())
}

pub fn itimer_prof_counts_down_and_sends_sigprof() -> TestResult {
    let old = block(SIGPROF);
    let new: Pair = [[0, 0], [0, 30_000]];
    check_ok!(call(SETITIMER, &[ITIMER_PROF, &raw const new as usize, 0]));
    let [_, first] = check_ok!(getitimer(ITIMER_PROF));
    // Spin until the remaining time has gone down.
    let end = check_ok!(clock_ns(sys::CLOCK_PROCESS_CPUTIME_ID)) + 100_000_000;
    let mut later = first;
    while later == first && check_ok!(clock_ns(sys::CLOCK_PROCESS_CPUTIME_ID)) < end {
        later = check_ok!(getitimer(ITIMER_PROF))[1];
    }
    let info = spin_for_signal(SIGPROF, 100);
    let after = getitimer(ITIMER_PROF);
    signal::sigprocmask(SIG_SETMASK, old).ok();
    // A tick (4 ms at 250 Hz) is added, as Linux does.
    check!(
        first[0] == 0 && first[1] > 20_000 && first[1] <= 40_000,
        "armed {first:?}"
    );
    check!(later < first, "remaining {first:?}, then {later:?}");
    check!(info.is_some(), "no SIGPROF after 100 ms of CPU time");
    let info = info.unwrap_or_default();
    check_eq!(info.code, SI_KERNEL);
    check_eq!(check_ok!(after), [[0, 0], [0, 0]]);
    // ITIMER_VIRTUAL arms too; disarming it returns its setting.
    let virtual_timer: Pair = [[1, 0], [1, 0]];
    check_ok!(call(
        SETITIMER,
        &[ITIMER_VIRTUAL, &raw const virtual_timer as usize, 0]
    ));
    let off: Pair = [[0; 2]; 2];
    let mut previous: Pair = [[0; 2]; 2];
    check_ok!(call(
        SETITIMER,
        &[
            ITIMER_VIRTUAL,
            &raw const off as usize,
            &raw mut previous as usize
        ]
    ));
    check_eq!(previous[0], [1, 0]);
    check!(
        previous[1][0] == 1 || previous[1][0] == 0,
        "previous {previous:?}"
    );
    Ok(())
}

pub fn times_counts_ticks() -> TestResult {
    let mut tms = [u64::MAX; 4];
    let first = check_ok!(call(TIMES, &[&raw mut tms as usize]));
    check!(tms.iter().all(|&t| t < 1 << 40), "tms {tms:?}");
    // Clock ticks (100 a second) go on.
    let pause = Timespec::from_nanos(50_000_000);
    check_ok!(sys::nanosleep(&raw const pause as usize, 0));
    let second = check_ok!(call(TIMES, &[0]));
    check!(
        (3..=100).contains(&second.wrapping_sub(first)),
        "times: {first} then {second} after 50 ms"
    );
    Ok(())
}

pub fn priority_get_set() -> TestResult {
    const PRIO_PROCESS: usize = 0;
    // The raw call gives 20 - nice.
    let before = check_ok!(call(GETPRIORITY, &[PRIO_PROCESS, 0]));
    check_eq!(before, 20);
    check_ok!(call(SETPRIORITY, &[PRIO_PROCESS, 0, 5]));
    check_eq!(check_ok!(call(GETPRIORITY, &[PRIO_PROCESS, 0])), 15);
    let tid = sys::gettid();
    check_eq!(check_ok!(call(GETPRIORITY, &[PRIO_PROCESS, tid])), 15);
    // A new thread inherits its creator's nice value.
    let child = urt::thread::spawn(|| call(GETPRIORITY, &[0, 0]));
    check_eq!(check_ok!(child.join()), 15);
    // Out of range clamps to 19.
    check_ok!(call(SETPRIORITY, &[PRIO_PROCESS, 0, 100]));
    check_eq!(check_ok!(call(GETPRIORITY, &[PRIO_PROCESS, 0])), 1);
    check_ok!(call(SETPRIORITY, &[PRIO_PROCESS, 0, 0]));
    check_err!(call(GETPRIORITY, &[3, 0]), Errno::EINVAL);
    check_err!(
        call(GETPRIORITY, &[PRIO_PROCESS, 0x7fff_fff0]),
        Errno::ESRCH
    );
    check_err!(
        call(SETPRIORITY, &[PRIO_PROCESS, 0x7fff_fff0, 0]),
        Errno::ESRCH
    );
    Ok(())
}

pub fn sched_policy_calls() -> TestResult {
    const SCHED_OTHER: usize = 0;
    const SCHED_FIFO: usize = 1;
    const SCHED_RR: usize = 2;
    const SCHED_BATCH: usize = 3;
    check_eq!(check_ok!(call(SCHED_GET_PRIORITY_MAX, &[SCHED_FIFO])), 99);
    check_eq!(check_ok!(call(SCHED_GET_PRIORITY_MIN, &[SCHED_RR])), 1);
    check_eq!(check_ok!(call(SCHED_GET_PRIORITY_MAX, &[SCHED_OTHER])), 0);
    check_err!(call(SCHED_GET_PRIORITY_MAX, &[42]), Errno::EINVAL);
    check_eq!(check_ok!(call(SCHED_GETSCHEDULER, &[0])), SCHED_OTHER);
    let mut priority: i32 = -1;
    check_ok!(call(SCHED_GETPARAM, &[0, &raw mut priority as usize]));
    check_eq!(priority, 0);
    // SCHED_BATCH takes priority 0 only.
    let one: i32 = 1;
    let zero: i32 = 0;
    check_err!(
        call(
            SCHED_SETSCHEDULER,
            &[0, SCHED_BATCH, &raw const one as usize]
        ),
        Errno::EINVAL
    );
    check_ok!(call(
        SCHED_SETSCHEDULER,
        &[0, SCHED_BATCH, &raw const zero as usize]
    ));
    check_eq!(check_ok!(call(SCHED_GETSCHEDULER, &[0])), SCHED_BATCH);
    check_ok!(call(SCHED_SETPARAM, &[0, &raw const zero as usize]));
    check_err!(
        call(SCHED_SETPARAM, &[0, &raw const one as usize]),
        Errno::EINVAL
    );
    check_ok!(call(
        SCHED_SETSCHEDULER,
        &[0, SCHED_OTHER, &raw const zero as usize]
    ));
    check_eq!(check_ok!(call(SCHED_GETSCHEDULER, &[0])), SCHED_OTHER);
    check_err!(
        call(SCHED_SETSCHEDULER, &[0, 42, &raw const zero as usize]),
        Errno::EINVAL
    );
    check_err!(
        call(SCHED_SETSCHEDULER, &[0, SCHED_OTHER, 0]),
        Errno::EINVAL
    );
    check_err!(call(SCHED_GETSCHEDULER, &[-1i64 as usize]), Errno::EINVAL);
    check_err!(call(SCHED_GETSCHEDULER, &[0x7fff_fff0]), Errno::ESRCH);
    check_err!(call(SCHED_GETPARAM, &[0, 0]), Errno::EINVAL);
    // SCHED_RR's slice is Linux's 100 ms; SCHED_OTHER's depends on the scheduler.
    let mut interval = Timespec {
        tv_sec: -1,
        tv_nsec: -1,
    };
    check_ok!(call(
        SCHED_RR_GET_INTERVAL,
        &[0, &raw mut interval as usize]
    ));
    check!(
        interval.tv_sec == 0 && interval.tv_nsec >= 0,
        "sched_rr_get_interval: {interval:?}"
    );
    check_ok!(call(
        SCHED_SETSCHEDULER,
        &[0, SCHED_RR, &raw const one as usize]
    ));
    let rr = call(SCHED_RR_GET_INTERVAL, &[0, &raw mut interval as usize]);
    let policy = call(SCHED_GETSCHEDULER, &[0]);
    check_ok!(call(
        SCHED_SETSCHEDULER,
        &[0, SCHED_OTHER, &raw const zero as usize]
    ));
    check_ok!(rr);
    check_eq!((interval.tv_sec, interval.tv_nsec), (0, 100_000_000));
    check_eq!(check_ok!(policy), SCHED_RR);
    Ok(())
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_SYS_ADMIN: u32 = 21;

fn capget(pid: i32) -> Result<[u32; 6], Errno> {
    let header = [CAPABILITY_VERSION_3, pid as u32];
    let mut data = [0u32; 6];
    call(
        CAPGET,
        &[&raw const header as usize, &raw mut data as usize],
    )?;
    Ok(data)
}

pub fn capabilities_get_and_drop() -> TestResult {
    // Root: every capability permitted and effective (in both words), none inheritable.
    let [
        effective,
        permitted,
        inheritable,
        effective_high,
        permitted_high,
        _,
    ] = check_ok!(capget(0));
    check_eq!(effective, u32::MAX);
    check_eq!(permitted, u32::MAX);
    check_eq!(inheritable, 0);
    check!(effective_high != 0 && effective_high == permitted_high);
    // An unknown version: EINVAL, and the kernel's version written back; with no data
    // pointer, success.
    let mut header = [0x1234u32, 0];
    check_err!(
        call(
            CAPGET,
            &[&raw mut header as usize, &raw mut header as usize + 8]
        ),
        Errno::EINVAL
    );
    check_eq!(header[0], CAPABILITY_VERSION_3);
    header[0] = 0x1234;
    check_eq!(check_ok!(call(CAPGET, &[&raw mut header as usize, 0])), 0);
    check_err!(capget(-1), Errno::EINVAL);
    check_err!(capget(0x7fff_fff0), Errno::ESRCH);
    // A child drops CAP_SYS_ADMIN, then cannot take it back.
    let pid = check_ok!(sys::fork());
    if pid == 0 {
        let header = [CAPABILITY_VERSION_3, 0];
        let mut data = capget(0).unwrap_or_default();
        data[0] &= !(1 << CAP_SYS_ADMIN);
        data[1] &= !(1 << CAP_SYS_ADMIN);
        let dropped = call(
            CAPSET,
            &[&raw const header as usize, &raw const data as usize],
        );
        let now = capget(0).unwrap_or_default();
        data[1] |= 1 << CAP_SYS_ADMIN;
        let regained = call(
            CAPSET,
            &[&raw const header as usize, &raw const data as usize],
        );
        let ok =
            dropped.is_ok() && now[1] & 1 << CAP_SYS_ADMIN == 0 && regained == Err(Errno::EPERM);
        sys::exit_group(if ok { 0 } else { 1 });
    }
    let mut status = 0i32;
    check_ok!(sys::wait4(pid, &raw mut status as usize, 0, 0));
    check_eq!(status, 0);
    Ok(())
}

const PR_CAPBSET_READ: usize = 23;
const PR_CAPBSET_DROP: usize = 24;
const CAP_SETPCAP: u32 = 8;

pub fn capabilities_bounding_set() -> TestResult {
    check_eq!(
        check_ok!(sys::prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN as usize, 0, 0, 0)),
        1
    );
    check_err!(sys::prctl(PR_CAPBSET_READ, 64, 0, 0, 0), Errno::EINVAL);
    // A child drops CAP_SYS_ADMIN from its bounding set for good; without CAP_SETPCAP it may
    // drop no more (EPERM before the capability number is looked at).
    let pid = check_ok!(sys::fork());
    if pid == 0 {
        let dropped = sys::prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN as usize, 0, 0, 0);
        let read = sys::prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN as usize, 0, 0, 0);
        let unknown = sys::prctl(PR_CAPBSET_DROP, 64, 0, 0, 0);
        let header = [CAPABILITY_VERSION_3, 0];
        let mut data = capget(0).unwrap_or_default();
        data[0] &= !(1 << CAP_SETPCAP);
        let lowered = call(
            CAPSET,
            &[&raw const header as usize, &raw const data as usize],
        );
        let refused = sys::prctl(PR_CAPBSET_DROP, 64, 0, 0, 0);
        let ok = dropped == Ok(0)
            && read == Ok(0)
            && unknown == Err(Errno::EINVAL)
            && lowered.is_ok()
            && refused == Err(Errno::EPERM);
        sys::exit_group(if ok { 0 } else { 1 });
    }
    let mut status = 0i32;
    check_ok!(sys::wait4(pid, &raw mut status as usize, 0, 0));
    check_eq!(status, 0);
    Ok(())
}

pub fn robust_list_thread_area_socket() -> TestResult {
    static HEAD: [usize; 3] = [0, 0, 0];
    let head = HEAD.as_ptr() as usize;
    check_ok!(sys::set_robust_list(head, 24));
    let (mut got, mut len) = (0usize, 0usize);
    check_ok!(call(
        GET_ROBUST_LIST,
        &[0, &raw mut got as usize, &raw mut len as usize]
    ));
    check_eq!((got, len), (head, 24));
    check_err!(
        call(
            GET_ROBUST_LIST,
            &[0x7fff_fff0, &raw mut got as usize, &raw mut len as usize]
        ),
        Errno::ESRCH
    );
    // Linux (6.12's stable updates on) passes the head back from a helper that answers errors
    // as pointers: a head among the last 4095 addresses is taken for one and answered, before
    // anything is written.
    for (odd_head, error) in [
        (usize::MAX, Errno::EPERM),
        (-22isize as usize, Errno::EINVAL),
    ] {
        check_ok!(sys::set_robust_list(odd_head, 24));
        len = 0;
        let answer = call(
            GET_ROBUST_LIST,
            &[0, &raw mut got as usize, &raw mut len as usize],
        );
        check_ok!(sys::set_robust_list(head, 24));
        check_err!(answer, error);
        check_eq!(len, 0);
    }
    check_ok!(sys::set_robust_list(-4096isize as usize, 24));
    let answer = call(
        GET_ROBUST_LIST,
        &[0, &raw mut got as usize, &raw mut len as usize],
    );
    check_ok!(sys::set_robust_list(head, 24));
    check_ok!(answer);
    check_eq!((got, len), (-4096isize as usize, 24));
    // get_thread_area is for 32-bit code: 64-bit callers get ENOSYS, as from Linux.
    let mut desc = [12u32, 1, 1, 0];
    check_err!(
        call(GET_THREAD_AREA, &[&raw mut desc as usize]),
        Errno::ENOSYS
    );
    // socket: no family here; a bad type or flag is EINVAL first.
    check_err!(call(SOCKET, &[1, 1 | 0x10_0000 << 4, 0]), Errno::EINVAL);
    check_err!(call(SOCKET, &[1000, 1, 0]), EAFNOSUPPORT);
    check_err!(call(SOCKET, &[1, 15, 0]), Errno::EINVAL);
    Ok(())
}
