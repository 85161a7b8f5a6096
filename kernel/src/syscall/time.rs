//! Clocks and sleeping. CLOCK_MONOTONIC counts from boot (TSC); CLOCK_REALTIME adds the wall
//! time read from the CMOS real-time clock at boot.

use super::errno::{EFAULT, EINVAL, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, Errno, SysResult};
use crate::arch::uaccess::{read_user, write_user};
use crate::time::now_ns;

pub const CLOCK_REALTIME: u64 = 0;
pub const CLOCK_MONOTONIC: u64 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
pub const CLOCK_MONOTONIC_RAW: u64 = 4;
pub const CLOCK_REALTIME_COARSE: u64 = 5;
pub const CLOCK_MONOTONIC_COARSE: u64 = 6;
pub const CLOCK_BOOTTIME: u64 = 7;
pub const TIMER_ABSTIME: u64 = 1;

/// Reads a `struct timespec` and returns it in nanoseconds; `EINVAL` if out of range.
pub fn read_timespec(addr: u64) -> Result<u64, Errno> {
    let [seconds, nanoseconds] = read_user::<[i64; 2]>(addr)?;
    if seconds < 0 || !(0..1_000_000_000).contains(&nanoseconds) {
        return Err(EINVAL);
    }
    Ok((seconds as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nanoseconds as u64))
}

/// ns as a `struct timespec`.
pub fn timespec(ns: u64) -> [i64; 2] {
    [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64]
}

/// ns as a `struct timeval` (truncated to microseconds).
pub fn timeval(ns: u64) -> [i64; 2] {
    [
        (ns / 1_000_000_000) as i64,
        ((ns / 1000) % 1_000_000) as i64,
    ]
}

fn write_timespec(addr: u64, ns: u64) -> Result<(), Errno> {
    write_user(addr, &timespec(ns))
}

/// A CLOCK_REALTIME instant as a CLOCK_MONOTONIC one.
pub fn realtime_to_monotonic(ns: u64) -> u64 {
    ns.saturating_sub(crate::time::realtime_offset_ns())
}

fn clock_now(clock: u64) -> Result<u64, Errno> {
    let now = now_ns();
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => Ok(now + crate::time::realtime_offset_ns()),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => Ok(now),
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(cpu_time_ns(clock)),
        _ => Err(EINVAL),
    }
}

/// CPU time of the thread or process, from the ticks it ran.
fn cpu_time_ns(clock: u64) -> u64 {
    let tick_ns = 1_000_000_000 / u64::from(crate::arch::apic::timer_hz());
    let task = crate::sched::current();
    let ticks = if clock == CLOCK_THREAD_CPUTIME_ID {
        task.ticks.load(core::sync::atomic::Ordering::Relaxed)
    } else {
        task.process().map_or(0, |p| {
            p.threads()
                .iter()
                .map(|t| t.ticks.load(core::sync::atomic::Ordering::Relaxed))
                .sum()
        })
    };
    ticks * tick_ns
}

pub fn clock_gettime(clock: u64, timespec: u64) -> SysResult {
    let now = clock_now(clock)?;
    write_timespec(timespec, now)?;
    Ok(0)
}

pub fn clock_getres(clock: u64, timespec: u64) -> SysResult {
    clock_now(clock)?;
    if timespec != 0 {
        write_timespec(timespec, 1)?;
    }
    Ok(0)
}

pub fn gettimeofday(timeval: u64) -> SysResult {
    if timeval != 0 {
        let now = clock_now(CLOCK_REALTIME)?;
        write_user(timeval, &self::timeval(now))?;
    }
    Ok(0)
}

pub fn time(out: u64) -> SysResult {
    let seconds = clock_now(CLOCK_REALTIME)? / 1_000_000_000;
    if out != 0 {
        write_user(out, &seconds)?;
    }
    Ok(seconds)
}

/// A relative sleep, until `deadline` (monotonic ns). Interrupted by a signal, it writes the
/// time left to `remaining` (unless 0) and returns `EINTR` if a handler runs; if none does, the
/// sleep goes on to the same deadline through `restart_syscall` (as on Linux).
pub(super) fn sleep_relative(deadline: u64, remaining: u64) -> SysResult {
    match crate::sched::timer::sleep_until(deadline) {
        Ok(()) => Ok(0),
        Err(_) => {
            if remaining != 0 {
                write_timespec(remaining, deadline.saturating_sub(now_ns()))?;
            }
            crate::proc::signal::set_restart(crate::proc::signal::Restart::Sleep {
                deadline,
                remaining,
            });
            Err(ERESTART_RESTARTBLOCK)
        }
    }
}

pub fn nanosleep(request: u64, remaining: u64) -> SysResult {
    if request == 0 {
        return Err(EFAULT);
    }
    let ns = read_timespec(request)?;
    sleep_relative(now_ns().saturating_add(ns), remaining)
}

pub fn clock_nanosleep(clock: u64, flags: u64, request: u64, remaining: u64) -> SysResult {
    let ns = read_timespec(request)?;
    clock_now(clock)?;
    let deadline = if flags & TIMER_ABSTIME != 0 {
        if clock == CLOCK_REALTIME {
            realtime_to_monotonic(ns)
        } else {
            ns
        }
    } else {
        now_ns().saturating_add(ns)
    };
    // clock_nanosleep returns the error number itself, not -1/errno: the libc handles that;
    // the raw system call returns -errno like the others. An absolute sleep that a signal
    // without a handler interrupted simply starts again (same deadline).
    if flags & TIMER_ABSTIME == 0 {
        return sleep_relative(deadline, remaining);
    }
    match crate::sched::timer::sleep_until(deadline) {
        Ok(()) => Ok(0),
        Err(_) => Err(ERESTARTNOHAND),
    }
}

/// `times`: the process's CPU time and its collected children's, in clock ticks (all of it as
/// user time), and the clock ticks since boot.
pub fn times(out: u64) -> SysResult {
    let process = super::thread::process();
    if out != 0 {
        let (ticks, _) = crate::proc::wait::usage_of(process);
        let (children_ticks, _) = crate::proc::wait::children_usage(process);
        let tms = [
            crate::proc::clock_ticks(ticks),
            0,
            crate::proc::clock_ticks(children_ticks),
            0,
        ];
        write_user(out, &tms)?;
    }
    Ok(now_ns() / (1_000_000_000 / crate::proc::USER_HZ))
}
