//! A process's interval timers: the three of `setitimer` (`ITIMER_REAL`, also `alarm`'s, and
//! the CPU-time ones `ITIMER_VIRTUAL` and `ITIMER_PROF`) and the POSIX timers of
//! `timer_create`. Each counts down on the monotonic clock or on a CPU-time clock (of a process
//! or of one thread), sends its signal when it expires (SIGALRM, SIGVTALRM or SIGPROF to the
//! process; a POSIX timer's choice, to the process or to one of its threads, or none), and
//! starts again from its interval if it has one. CPU time is counted in whole scheduler ticks,
//! user and kernel time alike: `ITIMER_VIRTUAL` counts the same time as `ITIMER_PROF`. As on Linux,
//! a POSIX timer's signal is queued once at most: an expiry while it still waits, or one found
//! late by whole intervals, counts as an overrun, reported with the next signal sent
//! (`si_overrun`) and then by `timer_getoverrun`.
//!
//! The monotonic timers are armed in the scheduler's timer list ([`sched::timer::add_call`]);
//! an expiry runs in process context. The CPU-time timers armed are counted (all processes
//! together): while there are any, each tick asks the interrupted CPU to call
//! [`run_cpu_timers`] on its way back to user mode, which expires the current process's timers
//! whose CPU time has come (a timer on another process's CPU time is thus looked at only while
//! its owner runs). A fork's child has none of its parent's timers; `execve` deletes the POSIX
//! timers and keeps the `setitimer` ones (as Linux); the process's end disarms them all.
//!
//! # Locks
//! The process's [`Timers`] table is under its lock, each timer's countdown under the timer's
//! own lock, which is held while the timer is put into (or taken out of) the scheduler's list
//! and while the count of armed CPU-time timers is changed. Order: table → timer → the
//! scheduler's timer list; a CPU-time clock is read (the process's thread list) with no timer
//! lock held. A signal is sent with no lock held.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Process;
use super::signal::{self, SigInfo};
use crate::sched::{self, Task};
use crate::sync::IrqSpinLock;

pub const SIGALRM: u32 = 14;
const SIGVTALRM: u32 = 26;
const SIGPROF: u32 = 27;
/// `si_code` of a signal the kernel sends (the real-time interval timer's SIGALRM).
const SI_KERNEL: i32 = 0x80;
/// `si_code` of a POSIX timer's signal.
const SI_TIMER: i32 = -2;
/// The monotonic clock's id: the real-time interval timer counts on it.
const CLOCK_MONOTONIC: u64 = 1;
/// The process CPU-time clock's id: `ITIMER_VIRTUAL` and `ITIMER_PROF` count on it.
pub const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
/// CPU-time timers armed, in all processes: the tick looks at nothing more while it is 0.
static CPU_TIMERS_ARMED: AtomicUsize = AtomicUsize::new(0);

/// Whether any CPU-time timer is armed (the tick's test, from interrupt context).
pub fn cpu_timers_armed() -> bool {
    CPU_TIMERS_ARMED.load(Relaxed) != 0
}

/// A CPU-time clock: of a process (all its threads, those that have exited too) or of one
/// thread.
#[derive(Clone)]
pub enum CpuClock {
    Process(Weak<Process>),
    Thread(Weak<Task>),
}

impl CpuClock {
    /// The CPU time in ns; `None` once the process or thread is gone.
    pub fn now_ns(&self) -> Option<u64> {
        let ticks = match self {
            Self::Process(process) => super::wait::usage_of(&*process.upgrade()?).0,
            Self::Thread(thread) => thread.upgrade()?.ticks.load(Relaxed),
        };
        Some(super::ticks_ns(ticks))
    }
}

/// `setitimer`'s timers, by `which`.
#[derive(Clone, Copy)]
pub enum Itimer {
    /// `ITIMER_REAL`: monotonic time, SIGALRM.
    Real = 0,
    /// `ITIMER_VIRTUAL`: the process's CPU time (user time on Linux), SIGVTALRM.
    Virtual = 1,
    /// `ITIMER_PROF`: the process's CPU time, SIGPROF.
    Prof = 2,
}
/// Largest overrun count reported, as Linux caps it.
const MAX_OVERRUN: u64 = i32::MAX as u64;

/// Who learns of an expiry.
pub enum Notify {
    /// Nobody (`SIGEV_NONE`): the timer is only read with `timer_gettime`.
    Nobody,
    /// `signo` to the process (any thread that does not block it).
    Process { signo: u32 },
    /// `signo` to one thread of the process (`SIGEV_THREAD_ID`).
    Thread { signo: u32, thread: Weak<Task> },
}

/// How an armed timer is expired.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Armed {
    /// By its entry, of this id, in the scheduler's timer list (a monotonic timer).
    Listed(u64),
    /// By [`run_cpu_timers`], counted in [`CPU_TIMERS_ARMED`] (a CPU-time timer).
    OnCpuTime,
}

/// The countdown of one timer.
#[derive(Default)]
struct Countdown {
    armed: Option<Armed>,
    /// When it expires next (ns since boot, or of CPU time), while armed.
    deadline: u64,
    /// The period after an expiry (0: none, the timer stops).
    interval: u64,
    /// Expiries missed since the last signal was sent.
    missed: u64,
    /// Expiries missed before the last signal was sent (`timer_getoverrun`).
    overrun: u64,
}

impl Countdown {
    /// Takes the timer out of what would expire it.
    fn unarm(&mut self) {
        match self.armed.take() {
            Some(Armed::Listed(id)) => sched::timer::cancel(id),
            Some(Armed::OnCpuTime) => {
                CPU_TIMERS_ARMED.fetch_sub(1, Relaxed);
            }
            None => {}
        }
    }
}

/// One interval timer.
pub struct IntervalTimer {
    process: Weak<Process>,
    notify: Notify,
    /// The POSIX timer's id (`si_timerid`), or `None` for the real-time interval timer.
    id: Option<i32>,
    /// `sigev_value` (`si_value`) of a POSIX timer.
    value: u64,
    /// The clock an absolute time given for it is read on (`CLOCK_REALTIME`, ...).
    clock: u64,
    /// The CPU time it counts down on; `None`: monotonic time.
    cpu: Option<CpuClock>,
    countdown: IrqSpinLock<Countdown>,
}

/// What a timer was set to: the time until it expires next (0: disarmed) and its interval, in
/// ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    pub remaining: u64,
    pub interval: u64,
}

impl IntervalTimer {
    fn new(
        process: &Arc<Process>,
        notify: Notify,
        id: Option<i32>,
        value: u64,
        clock: u64,
        cpu: Option<CpuClock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            process: Arc::downgrade(process),
            notify,
            id,
            value,
            clock,
            cpu,
            countdown: IrqSpinLock::new(Countdown::default()),
        })
    }

    /// The clock an absolute expiry time is given on.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The time now on the clock it counts down on, in ns (CPU time: 0 once its process or
    /// thread is gone).
    pub fn now(&self) -> u64 {
        match &self.cpu {
            Some(cpu) => cpu.now_ns().unwrap_or(0),
            None => crate::time::now_ns(),
        }
    }

    /// The time until the next expiry and the interval; `remaining` is at least 1 ns while
    /// the timer is armed (an expiry due but not yet handled).
    pub fn get(&self) -> Setting {
        let now = self.now();
        let countdown = self.countdown.lock();
        Self::setting_of(&countdown, now)
    }

    fn setting_of(countdown: &Countdown, now: u64) -> Setting {
        match countdown.armed {
            Some(_) => Setting {
                remaining: countdown.deadline.saturating_sub(now).max(1),
                interval: countdown.interval,
            },
            None => Setting {
                remaining: 0,
                interval: countdown.interval,
            },
        }
    }

    /// Arms the timer to expire at `deadline` (on its clock, [`Self::now`]; `None` disarms
    /// it) and then every `interval` ns (0: once). Returns the previous setting.
    pub fn set(self: &Arc<Self>, deadline: Option<u64>, interval: u64) -> Setting {
        let now = self.now();
        let mut countdown = self.countdown.lock();
        let old = Self::setting_of(&countdown, now);
        countdown.unarm();
        countdown.interval = interval;
        countdown.missed = 0;
        countdown.overrun = 0;
        if let Some(deadline) = deadline {
            countdown.deadline = deadline;
            countdown.armed = Some(match self.cpu {
                Some(_) => {
                    CPU_TIMERS_ARMED.fetch_add(1, Relaxed);
                    Armed::OnCpuTime
                }
                None => Armed::Listed(sched::timer::add_call(deadline, self.clone())),
            });
        }
        old
    }

    /// Disarms the timer for good (deleted, or its process ended).
    fn disarm(&self) {
        let mut countdown = self.countdown.lock();
        countdown.unarm();
        countdown.interval = 0;
    }

    /// Whether it is a CPU-time timer armed to expire at or before `now` (its CPU time).
    fn is_due_on_cpu_time(&self, now: u64) -> bool {
        let countdown = self.countdown.lock();
        countdown.armed == Some(Armed::OnCpuTime) && countdown.deadline <= now
    }

    /// Expiries missed before the last signal was sent (`timer_getoverrun`).
    pub fn overrun(&self) -> u32 {
        self.countdown.lock().overrun.min(MAX_OVERRUN) as u32
    }

    /// Sends the expiry's signal, with `overrun` missed expiries; `false` when the timer's
    /// previous signal still waits (nothing is sent).
    fn send(&self, overrun: u64) -> bool {
        let Some(process) = self.process.upgrade() else {
            return true;
        };
        if let Some(id) = self.id {
            let thread = match &self.notify {
                Notify::Thread { thread, .. } => thread.upgrade(),
                _ => None,
            };
            let ours =
                |info: &SigInfo| info.code() == SI_TIMER && info.field(0) as u32 == id as u32;
            if signal::is_queued(&process, thread.as_deref(), ours) {
                return false;
            }
        }
        let info = |signo| match self.id {
            None => SigInfo::new(signo, SI_KERNEL, [0; 4]),
            Some(id) => SigInfo::new(
                signo,
                SI_TIMER,
                [
                    u64::from(id as u32) | overrun.min(MAX_OVERRUN) << 32,
                    self.value,
                    0,
                    0,
                ],
            ),
        };
        // A full queue or a thread that has exited loses the signal, as on Linux.
        let _ = match &self.notify {
            Notify::Nobody => Ok(()),
            Notify::Process { signo } => {
                signal::send_signal_to_process(&process, *signo, info(*signo))
            }
            Notify::Thread { signo, thread } => match thread.upgrade() {
                Some(thread) => signal::send_signal_to_thread(&thread, *signo, info(*signo)),
                None => Ok(()),
            },
        };
        true
    }
}

impl sched::timer::Expire for IntervalTimer {
    fn expire(self: Arc<Self>, id: u64, now: u64) {
        self.expired(Armed::Listed(id), now);
    }
}

impl IntervalTimer {
    /// The expiry, found at `now` on its clock, of the timer armed as `armed`: the signal, and
    /// the next expiry if it has an interval.
    fn expired(self: &Arc<Self>, armed: Armed, now: u64) {
        let missed = {
            let mut countdown = self.countdown.lock();
            let early = armed == Armed::OnCpuTime && now < countdown.deadline;
            if countdown.armed != Some(armed) || early {
                // Set again or disarmed after this expiry was found.
                return;
            }
            let missed = if countdown.interval == 0 {
                if armed == Armed::OnCpuTime {
                    countdown.unarm();
                } else {
                    // Its entry has left the scheduler's list already.
                    countdown.armed = None;
                }
                0
            } else {
                let interval = countdown.interval;
                let missed = now.saturating_sub(countdown.deadline) / interval;
                countdown.deadline = countdown
                    .deadline
                    .saturating_add(missed.saturating_add(1).saturating_mul(interval));
                if let Armed::Listed(_) = armed {
                    countdown.armed = Some(Armed::Listed(sched::timer::add_call(
                        countdown.deadline,
                        self.clone(),
                    )));
                }
                missed
            };
            countdown.missed = countdown.missed.saturating_add(missed);
            countdown.missed
        };
        let sent = self.send(missed);
        let mut countdown = self.countdown.lock();
        if sent {
            countdown.overrun = missed;
            countdown.missed = countdown.missed.saturating_sub(missed);
        } else {
            countdown.missed = countdown.missed.saturating_add(1);
        }
    }
}

/// Expires the current process's CPU-time timers whose time has come: called on the way back
/// to user mode after a tick found CPU-time timers armed.
pub fn run_cpu_timers() {
    let Some(process) = sched::current().process() else {
        return;
    };
    let due: Vec<(Arc<IntervalTimer>, u64)> = {
        let timers = process.timers.lock();
        timers
            .itimers
            .iter()
            .flatten()
            .chain(timers.posix.iter())
            .filter_map(|timer| {
                let Some(now) = timer.cpu.as_ref()?.now_ns() else {
                    // Its process or thread is gone: the time will not come (as Linux, which
                    // disarms a thread's timers when it exits).
                    timer.countdown.lock().unarm();
                    return None;
                };
                timer.is_due_on_cpu_time(now).then(|| (timer.clone(), now))
            })
            .collect()
    };
    for (timer, now) in due {
        timer.expired(Armed::OnCpuTime, now);
    }
}

/// A process's timers.
#[derive(Default)]
pub struct Timers {
    /// The `setitimer` timers, by [`Itimer`], each made at its first use.
    itimers: [Option<Arc<IntervalTimer>>; 3],
    /// The POSIX timers, each with its id.
    posix: Vec<Arc<IntervalTimer>>,
    /// The id the next POSIX timer is offered, as Linux counts: up by one at each creation
    /// that got past the clock's checks (failed ones too), never reusing a deleted timer's
    /// id until the count wraps.
    next_id: i32,
}

/// POSIX timers a process may have at once (Linux's bound is `RLIMIT_SIGPENDING`).
const MAX_POSIX_TIMERS: usize = 4096;

impl Timers {
    /// The `setitimer` timer `which` of `process` (this table's).
    pub fn itimer(&mut self, process: &Arc<Process>, which: Itimer) -> Arc<IntervalTimer> {
        self.itimers[which as usize]
            .get_or_insert_with(|| {
                let process_cpu = || Some(CpuClock::Process(Arc::downgrade(process)));
                let (signo, clock, cpu) = match which {
                    Itimer::Real => (SIGALRM, CLOCK_MONOTONIC, None),
                    Itimer::Virtual => (SIGVTALRM, CLOCK_PROCESS_CPUTIME_ID, process_cpu()),
                    Itimer::Prof => (SIGPROF, CLOCK_PROCESS_CPUTIME_ID, process_cpu()),
                };
                IntervalTimer::new(process, Notify::Process { signo }, None, 0, clock, cpu)
            })
            .clone()
    }

    /// Takes the next POSIX timer id (skipping ids in use); `None` when the process has as
    /// many timers as it may.
    pub fn take_id(&mut self) -> Option<i32> {
        if self.posix.len() >= MAX_POSIX_TIMERS {
            return None;
        }
        loop {
            let id = self.next_id;
            self.next_id = id.wrapping_add(1) & i32::MAX;
            if self.posix.iter().all(|t| t.id != Some(id)) {
                return Some(id);
            }
        }
    }

    /// A new POSIX timer of `process` with id `id` (from [`Self::take_id`]) on `clock` (the
    /// CPU time `cpu` counts, if any) that notifies `notify`, with `sigev_value` `value` (its
    /// id when `None`, as Linux).
    pub fn create(
        &mut self,
        process: &Arc<Process>,
        id: i32,
        (clock, cpu): (u64, Option<CpuClock>),
        notify: Notify,
        value: Option<u64>,
    ) {
        let value = value.unwrap_or(id as u32 as u64);
        self.posix.push(IntervalTimer::new(
            process,
            notify,
            Some(id),
            value,
            clock,
            cpu,
        ));
    }

    /// The POSIX timer `id`.
    pub fn posix(&self, id: i32) -> Option<Arc<IntervalTimer>> {
        self.posix.iter().find(|t| t.id == Some(id)).cloned()
    }

    /// Deletes the POSIX timer `id`; `false` if there is none.
    pub fn delete(&mut self, id: i32) -> bool {
        let Some(index) = self.posix.iter().position(|t| t.id == Some(id)) else {
            return false;
        };
        self.posix.swap_remove(index).disarm();
        true
    }

    /// `execve`: the POSIX timers go, the `setitimer` ones stay.
    pub fn on_exec(&mut self) {
        for timer in self.posix.drain(..) {
            timer.disarm();
        }
    }

    /// The process ended: every timer stops.
    pub fn on_exit(&mut self) {
        self.on_exec();
        for timer in self.itimers.iter_mut().filter_map(Option::take) {
            timer.disarm();
        }
    }
}
