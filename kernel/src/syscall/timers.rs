//! Interval timers: `alarm`, `getitimer`/`setitimer` and the POSIX timers (`timer_create`,
//! `timer_settime`, `timer_gettime`, `timer_getoverrun`, `timer_delete`), over `proc::timers`.

use alloc::sync::Arc;

use super::errno::{EAGAIN, EINVAL, EOPNOTSUPP, Errno, SysResult};
use super::time::{
    CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC_RAW, CLOCK_PROCESS_CPUTIME_ID, CLOCK_REALTIME_COARSE,
    CLOCK_THREAD_CPUTIME_ID, Clock, TIMER_ABSTIME, timespec, timespec_ns, timeval,
};
use crate::arch::uaccess::{read_user, write_user};
use crate::proc::timers::{IntervalTimer, Itimer, Notify, SIGALRM, Setting};

const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

const NS_PER_US: u64 = 1000;
const NS_PER_S: u64 = 1_000_000_000;

/// A `struct timeval` in ns; `EINVAL` when out of range.
fn timeval_ns([seconds, microseconds]: [i64; 2]) -> Result<u64, Errno> {
    if seconds < 0 || !(0..1_000_000).contains(&microseconds) {
        return Err(EINVAL);
    }
    Ok((seconds as u64)
        .saturating_mul(NS_PER_S)
        .saturating_add(microseconds as u64 * NS_PER_US))
}

/// The calling process's `setitimer` timer `which`.
fn itimer(which: Itimer) -> Arc<IntervalTimer> {
    let process = super::thread::process();
    process.timers.lock().itimer(process, which)
}

/// Sets `timer` to expire `value` ns from now on its clock (0: disarm), then every `interval`.
fn set_relative(timer: &Arc<IntervalTimer>, value: u64, interval: u64) -> Setting {
    let deadline = (value != 0).then(|| timer.now().saturating_add(value));
    timer.set(deadline, interval)
}

/// `which` of `getitimer`/`setitimer`. `ITIMER_VIRTUAL` counts all the CPU time, as
/// `ITIMER_PROF`: this kernel does not tell user time from system time.
fn check_which(which: u64) -> Result<Itimer, Errno> {
    match which {
        ITIMER_REAL => Ok(Itimer::Real),
        ITIMER_VIRTUAL => Ok(Itimer::Virtual),
        ITIMER_PROF => Ok(Itimer::Prof),
        _ => Err(EINVAL),
    }
}

/// `struct itimerval` (interval, then value) of `setting`.
fn itimerval(setting: Setting) -> [[i64; 2]; 2] {
    [timeval(setting.interval), timeval(setting.remaining)]
}

pub fn alarm(seconds: u64) -> SysResult {
    let seconds = seconds as u32;
    let old = set_relative(&itimer(Itimer::Real), u64::from(seconds) * NS_PER_S, 0);
    // As Linux: the seconds left, rounded to the nearest, and 1 rather than 0 while armed.
    let [old_seconds, old_microseconds] = timeval(old.remaining);
    let rounded = if (old_seconds == 0 && old_microseconds != 0) || old_microseconds >= 500_000 {
        old_seconds + 1
    } else {
        old_seconds
    };
    Ok(rounded as u64)
}

pub fn getitimer(which: u64, out: u64) -> SysResult {
    let setting = itimer(check_which(which)?).get();
    write_user(out, &itimerval(setting))?;
    Ok(0)
}

/// `setitimer(which, new, old)`, checked in Linux's order: the new value is read (EFAULT)
/// and checked (EINVAL) before `which`.
pub fn setitimer(which: u64, new: u64, old: u64) -> SysResult {
    // A null new value disarms the timer (a misfeature Linux keeps).
    let [interval, value] = if new == 0 {
        [0, 0]
    } else {
        let [interval, value] = read_user::<[[i64; 2]; 2]>(new)?;
        let value = timeval_ns(value)?;
        [timeval_ns(interval)?, value]
    };
    let which = check_which(which)?;
    let value = match which {
        // As Linux, a CPU-time timer expires a tick later than asked (CPU time is counted in
        // whole ticks).
        Itimer::Virtual | Itimer::Prof if value != 0 => {
            value.saturating_add(crate::proc::ticks_ns(1))
        }
        _ => value,
    };
    let previous = set_relative(&itimer(which), value, interval);
    if old != 0 {
        write_user(old, &itimerval(previous))?;
    }
    Ok(0)
}

const SIGEV_SIGNAL: u32 = 0;
const SIGEV_NONE: u32 = 1;
const SIGEV_THREAD: u32 = 2;
const SIGEV_THREAD_ID: u32 = 4;

/// `struct sigevent`'s size: Linux copies all of it.
const SIGEVENT_BYTES: usize = 64;

/// `timer_create(clock, sigevent, timer_id)`, checked in Linux's order: the sigevent is read
/// (EFAULT) before the clock is looked at (EINVAL, EOPNOTSUPP for the clocks Linux arms no
/// timer on); then an id is taken (consumed even if the call fails from here on, as Linux's),
/// the sigevent is checked (EINVAL) and the id written (EFAULT) before a CPU-time clock's
/// process or thread is looked for (EINVAL).
pub fn timer_create(clock: u64, event: u64, id_out: u64) -> SysResult {
    let event = if event == 0 {
        None
    } else {
        Some(read_user::<[u64; SIGEVENT_BYTES / 8]>(event)?)
    };
    let clock = Clock::decode(clock)?;
    if let Clock::Device
    | Clock::Fixed(CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE) = clock
    {
        return Err(EOPNOTSUPP);
    }
    let process = super::thread::process();
    let id = process.timers.lock().take_id().ok_or(EAGAIN)?;
    // struct sigevent: sigev_value (8 bytes), sigev_signo, sigev_notify, then the thread id.
    let (notify, value) = if let Some([value, signo_notify, thread, ..]) = event {
        let (signo, how) = (signo_notify as u32, (signo_notify >> 32) as u32);
        let tid = thread as u32;
        let valid_signal = (1..=crate::proc::signal::NSIG).contains(&signo);
        let notify = match how {
            SIGEV_NONE => Notify::Nobody,
            SIGEV_SIGNAL | SIGEV_THREAD if valid_signal => Notify::Process { signo },
            SIGEV_THREAD_ID if valid_signal => {
                let thread = process
                    .threads()
                    .into_iter()
                    .find(|t| t.tid == tid)
                    .ok_or(EINVAL)?;
                Notify::Thread {
                    signo,
                    thread: Arc::downgrade(&thread),
                }
            }
            _ => return Err(EINVAL),
        };
        (notify, Some(value))
    } else {
        (Notify::Process { signo: SIGALRM }, None)
    };
    write_user(id_out, &id)?;
    let cpu = clock.cpu_clock()?;
    let clock = match clock {
        Clock::Fixed(clock) => clock,
        Clock::CpuTime { thread: true, .. } => CLOCK_THREAD_CPUTIME_ID,
        _ => CLOCK_PROCESS_CPUTIME_ID,
    };
    process
        .timers
        .lock()
        .create(process, id, (clock, cpu), notify, value);
    Ok(0)
}

/// The calling process's POSIX timer `id`.
fn posix_timer(id: u64) -> Result<Arc<IntervalTimer>, Errno> {
    let process = super::thread::process();
    let timer = process.timers.lock().posix(id as i32);
    timer.ok_or(EINVAL)
}

/// `struct itimerspec` (interval, then value) of `setting`.
fn itimerspec(setting: Setting) -> [[i64; 2]; 2] {
    [timespec(setting.interval), timespec(setting.remaining)]
}

/// `timer_settime(id, flags, new, old)`, checked in Linux's order: a null `new` (EINVAL),
/// reading it (EFAULT), its two times (EINVAL), then the timer.
pub fn timer_settime(id: u64, flags: u64, new: u64, old: u64) -> SysResult {
    if new == 0 {
        return Err(EINVAL);
    }
    let [interval, value] = read_user::<[[i64; 2]; 2]>(new)?;
    let interval = timespec_ns(interval)?;
    let value = timespec_ns(value)?;
    let timer = posix_timer(id)?;
    let deadline = match value {
        0 => None,
        absolute if flags & TIMER_ABSTIME != 0 => {
            Some(super::time::instant_to_monotonic(timer.clock(), absolute))
        }
        relative => Some(timer.now().saturating_add(relative)),
    };
    let previous = timer.set(deadline, interval);
    if old != 0 {
        write_user(old, &itimerspec(previous))?;
    }
    Ok(0)
}

pub fn timer_gettime(id: u64, out: u64) -> SysResult {
    let setting = posix_timer(id)?.get();
    write_user(out, &itimerspec(setting))?;
    Ok(0)
}

pub fn timer_getoverrun(id: u64) -> SysResult {
    Ok(u64::from(posix_timer(id)?.overrun()))
}

pub fn timer_delete(id: u64) -> SysResult {
    let process = super::thread::process();
    if process.timers.lock().delete(id as i32) {
        Ok(0)
    } else {
        Err(EINVAL)
    }
}
