//! Clocks and sleeping. CLOCK_MONOTONIC counts from boot (TSC), as do its raw and coarse forms
//! and CLOCK_BOOTTIME (nothing suspends); CLOCK_REALTIME adds the wall time read from the CMOS
//! real-time clock at boot, as do its coarse and alarm forms and CLOCK_TAI (no leap seconds are
//! known: TAI reads as Linux's does before anyone sets its offset). The CPU-time clocks count
//! scheduler ticks, of the caller or, by the ids that encode one, of any process or of a thread
//! of the caller's (a process's include those of its threads that have exited). There are no
//! clock devices (the ids of descriptors).

use alloc::sync::Arc;

use super::errno::{
    EFAULT, EINVAL, EOPNOTSUPP, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, Errno, SysResult,
};
use crate::arch::uaccess::{read_user, write_user};
pub use crate::proc::timers::CLOCK_PROCESS_CPUTIME_ID;
use crate::proc::timers::CpuClock;
use crate::time::now_ns;

pub const CLOCK_REALTIME: u64 = 0;
pub const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
pub const CLOCK_MONOTONIC_RAW: u64 = 4;
pub const CLOCK_REALTIME_COARSE: u64 = 5;
pub const CLOCK_MONOTONIC_COARSE: u64 = 6;
pub const CLOCK_REALTIME_ALARM: u64 = 8;
pub const CLOCK_BOOTTIME_ALARM: u64 = 9;
pub const CLOCK_TAI: u64 = 11;
pub const TIMER_ABSTIME: u64 = 1;

/// Reads a `struct timespec` and returns it in nanoseconds; `EINVAL` if out of range.
pub fn read_timespec(addr: u64) -> Result<u64, Errno> {
    timespec_ns(read_user::<[i64; 2]>(addr)?)
}

/// A `struct timespec` in nanoseconds; `EINVAL` if out of range.
pub fn timespec_ns([seconds, nanoseconds]: [i64; 2]) -> Result<u64, Errno> {
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

/// An instant of fixed clock `clock` as a CLOCK_MONOTONIC one: the clocks that count from
/// the epoch (realtime, its alarm form, TAI) are shifted, the others count from boot.
pub fn instant_to_monotonic(clock: u64, ns: u64) -> u64 {
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM | CLOCK_TAI => realtime_to_monotonic(ns),
        _ => ns,
    }
}

/// Linux's tick (`HZ` 250): the resolution it gives for the coarse clocks.
const COARSE_RESOLUTION_NS: u64 = 4_000_000;

/// What a `clockid_t` names, decoded as Linux does: the fixed clocks 0 to 11 (10 is none), and
/// among negative ids the CPU-time clocks of a process or thread (`~pid << 3`, a thread bit
/// and which time: profiling, virtual or scheduled) and the clocks of an open clock device
/// (low bits 3).
#[derive(Clone, Copy)]
pub enum Clock {
    Fixed(u64),
    /// `time_known` is false for the fourth kind of time, which names none: Linux takes the
    /// id and refuses it only where it looks for the process or thread (EINVAL).
    CpuTime {
        pid: u32,
        thread: bool,
        time_known: bool,
    },
    Device,
}

/// The low three bits of a negative clock id: the thread bit and the two bits of which time
/// (3, no time, marks a clock device instead, or nothing with the thread bit).
const CPU_CLOCK_LOW_BITS: i32 = 7;
const CPU_CLOCK_THREAD: i32 = 4;
const CPU_CLOCK_WHICH_MASK: i32 = 3;
const CPU_CLOCK_DEVICE: i32 = 3;

impl Clock {
    /// The clock `id` names; `EINVAL` for none of the fixed ones.
    pub fn decode(id: u64) -> Result<Self, Errno> {
        let id = id as i32;
        if id >= 0 {
            return match id as u64 {
                CLOCK_REALTIME..=CLOCK_BOOTTIME_ALARM | CLOCK_TAI => Ok(Self::Fixed(id as u64)),
                _ => Err(EINVAL),
            };
        }
        if id & CPU_CLOCK_LOW_BITS == CPU_CLOCK_DEVICE {
            return Ok(Self::Device);
        }
        Ok(Self::CpuTime {
            pid: !(id >> 3) as u32,
            thread: id & CPU_CLOCK_THREAD != 0,
            time_known: id & CPU_CLOCK_WHICH_MASK != CPU_CLOCK_WHICH_MASK,
        })
    }

    /// The process or thread whose CPU time the clock counts (`None`: not a CPU-time clock).
    /// It must exist (a process clock may name any thread: its process is meant); there are
    /// no clock devices (EINVAL).
    pub fn cpu_clock(self) -> Result<Option<CpuClock>, Errno> {
        let process =
            |process: &Arc<crate::proc::Process>| CpuClock::Process(Arc::downgrade(process));
        let thread = |thread: Arc<crate::sched::Task>| CpuClock::Thread(Arc::downgrade(&thread));
        Ok(Some(match self {
            Self::CpuTime {
                time_known: false, ..
            }
            | Self::Device => return Err(EINVAL),
            Self::Fixed(CLOCK_PROCESS_CPUTIME_ID)
            | Self::CpuTime {
                pid: 0,
                thread: false,
                ..
            } => process(super::thread::process()),
            Self::Fixed(CLOCK_THREAD_CPUTIME_ID) => thread(crate::sched::current_arc()),
            Self::Fixed(_) => return Ok(None),
            Self::CpuTime {
                pid, thread: true, ..
            } => thread(own_thread(pid)?),
            Self::CpuTime {
                pid, thread: false, ..
            } => process(&crate::proc::find(pid).ok_or(EINVAL)?),
        }))
    }

    /// The clock's time now, in ns; EINVAL as [`Self::cpu_clock`].
    pub fn now(self) -> Result<u64, Errno> {
        if let Some(cpu) = self.cpu_clock()? {
            return cpu.now_ns().ok_or(EINVAL);
        }
        Ok(match self {
            Self::Fixed(
                CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI,
            ) => now_ns() + crate::time::realtime_offset_ns(),
            _ => now_ns(),
        })
    }

    /// The clock's resolution in ns. A process CPU-time clock here must name a process (not
    /// one of its other threads), as Linux checks.
    fn resolution(self) -> Result<u64, Errno> {
        match self {
            Self::CpuTime {
                time_known: false, ..
            }
            | Self::Device => Err(EINVAL),
            Self::Fixed(CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE) => Ok(COARSE_RESOLUTION_NS),
            Self::Fixed(_) => Ok(1),
            Self::CpuTime {
                pid, thread: true, ..
            } => own_thread(pid).map(|_| 1),
            Self::CpuTime {
                pid, thread: false, ..
            } => {
                if pid != 0 && crate::proc::find(pid).is_none_or(|p| p.pid != pid) {
                    return Err(EINVAL);
                }
                Ok(1)
            }
        }
    }
}

/// A thread of the caller's process (`tid` 0: the caller), as a thread CPU-time clock names.
fn own_thread(tid: u32) -> Result<Arc<crate::sched::Task>, Errno> {
    if tid == 0 {
        return Ok(crate::sched::current_arc());
    }
    super::thread::process()
        .threads()
        .into_iter()
        .find(|t| t.tid == tid)
        .ok_or(EINVAL)
}

fn clock_now(clock: u64) -> Result<u64, Errno> {
    Clock::decode(clock)?.now()
}

pub fn clock_gettime(clock: u64, timespec: u64) -> SysResult {
    let now = clock_now(clock)?;
    write_timespec(timespec, now)?;
    Ok(0)
}

pub fn clock_getres(clock: u64, timespec: u64) -> SysResult {
    let resolution = Clock::decode(clock)?.resolution()?;
    if timespec != 0 {
        write_timespec(timespec, resolution)?;
    }
    Ok(0)
}

/// `gettimeofday(tv, tz)`: the time, and the time zone, which is always UTC (minutes west
/// and daylight-saving type both 0).
pub fn gettimeofday(timeval: u64, timezone: u64) -> SysResult {
    if timeval != 0 {
        let now = clock_now(CLOCK_REALTIME)?;
        write_user(timeval, &self::timeval(now))?;
    }
    if timezone != 0 {
        write_user(timezone, &[0i32; 2])?;
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

/// `clock_nanosleep(clock, flags, request, remaining)`, checked in Linux's order: the clock
/// (EINVAL), whether it can sleep (EOPNOTSUPP: the thread CPU-time clock, the raw and coarse
/// clocks and clock devices cannot), the request (EFAULT, EINVAL), the flags of the alarm clocks (EINVAL). Only
/// `TIMER_ABSTIME` of `flags` counts.
pub fn clock_nanosleep(clock: u64, flags: u64, request: u64, remaining: u64) -> SysResult {
    let decoded = Clock::decode(clock)?;
    if matches!(
        decoded,
        Clock::Device
            | Clock::Fixed(
                CLOCK_THREAD_CPUTIME_ID
                    | CLOCK_MONOTONIC_RAW
                    | CLOCK_REALTIME_COARSE
                    | CLOCK_MONOTONIC_COARSE
            )
    ) {
        return Err(EOPNOTSUPP);
    }
    let ns = read_timespec(request)?;
    // The alarm clocks alone refuse unknown flags.
    if matches!(
        decoded,
        Clock::Fixed(CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM)
    ) && flags as u32 as u64 & !TIMER_ABSTIME != 0
    {
        return Err(EINVAL);
    }
    let absolute = flags as u32 as u64 & TIMER_ABSTIME != 0;
    if let Clock::CpuTime { pid, thread, .. } = decoded {
        // A thread cannot wait for its own CPU time to pass.
        if thread && (pid == 0 || pid == crate::sched::current().tid) {
            return Err(EINVAL);
        }
    }
    if let Clock::Fixed(CLOCK_PROCESS_CPUTIME_ID) | Clock::CpuTime { .. } = decoded {
        return cpu_time_sleep(decoded, ns, absolute, remaining);
    }
    let deadline = if absolute {
        match decoded {
            Clock::Fixed(clock) => instant_to_monotonic(clock, ns),
            _ => ns,
        }
    } else {
        now_ns().saturating_add(ns)
    };
    // clock_nanosleep returns the error number itself, not -1/errno: the libc handles that;
    // the raw system call returns -errno like the others. An absolute sleep that a signal
    // without a handler interrupted simply starts again (same deadline).
    if !absolute {
        return sleep_relative(deadline, remaining);
    }
    match crate::sched::timer::sleep_until(deadline) {
        Ok(()) => Ok(0),
        Err(_) => Err(ERESTARTNOHAND),
    }
}

/// A sleep until CPU-time clock `clock` reaches `ns` (`absolute`) or has run `ns` more: the
/// clock is looked at every scheduler tick. Interrupted by a signal, a relative sleep writes
/// the CPU time left to `remaining` (unless 0); both start again if no handler runs (a relative
/// one from its full length: Linux would go on with what is left).
fn cpu_time_sleep(clock: Clock, ns: u64, absolute: bool, remaining: u64) -> SysResult {
    let start = clock.now()?;
    let target = if absolute {
        ns
    } else {
        start.saturating_add(ns)
    };
    let tick_ns = crate::proc::ticks_ns(1);
    loop {
        let now = clock.now()?;
        if now >= target {
            return Ok(0);
        }
        if crate::sched::timer::sleep_until(now_ns().saturating_add(tick_ns)).is_err() {
            if !absolute && remaining != 0 {
                write_timespec(remaining, target - now)?;
            }
            return Err(ERESTARTNOHAND);
        }
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
