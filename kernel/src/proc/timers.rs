//! A process's interval timers: the real-time one of `alarm` and `setitimer(ITIMER_REAL)`, and
//! the POSIX timers of `timer_create`. Each counts down on the monotonic clock, sends its
//! signal when it expires (SIGALRM to the process; a POSIX timer's choice, to the process or to
//! one of its threads, or none), and starts again from its interval if it has one. As on Linux,
//! a POSIX timer's signal is queued once at most: an expiry while it still waits, or one found
//! late by whole intervals, counts as an overrun, reported with the next signal sent
//! (`si_overrun`) and then by `timer_getoverrun`.
//!
//! The timers are armed in the scheduler's timer list ([`sched::timer::add_call`]); an expiry
//! runs in process context. A fork's child has none of its parent's timers; `execve` deletes
//! the POSIX timers and keeps the real-time one (as Linux); the process's end disarms them all.
//!
//! # Locks
//! The process's [`Timers`] table is under its lock, each timer's countdown under the timer's
//! own lock, which is held while the timer is put into (or taken out of) the scheduler's list.
//! Order: table → timer → the scheduler's timer list. A signal is sent with no lock held.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::Process;
use super::signal::{self, SigInfo};
use crate::sched::{self, Task};
use crate::sync::IrqSpinLock;

pub const SIGALRM: u32 = 14;
/// `si_code` of a signal the kernel sends (the real-time interval timer's SIGALRM).
const SI_KERNEL: i32 = 0x80;
/// `si_code` of a POSIX timer's signal.
const SI_TIMER: i32 = -2;
/// The monotonic clock's id: the real-time interval timer counts on it.
const CLOCK_MONOTONIC: u64 = 1;
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

/// The countdown of one timer.
#[derive(Default)]
struct Countdown {
    /// The id of its entry in the scheduler's timer list while armed.
    armed: Option<u64>,
    /// When it expires next (ns since boot), while armed.
    deadline: u64,
    /// The period after an expiry (0: none, the timer stops).
    interval: u64,
    /// Expiries missed since the last signal was sent.
    missed: u64,
    /// Expiries missed before the last signal was sent (`timer_getoverrun`).
    overrun: u64,
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
    ) -> Arc<Self> {
        Arc::new(Self {
            process: Arc::downgrade(process),
            notify,
            id,
            value,
            clock,
            countdown: IrqSpinLock::new(Countdown::default()),
        })
    }

    /// The clock an absolute expiry time is given on.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The time until the next expiry and the interval; `remaining` is at least 1 ns while
    /// the timer is armed (an expiry due but not yet handled).
    pub fn get(&self) -> Setting {
        let countdown = self.countdown.lock();
        Self::setting_of(&countdown)
    }

    fn setting_of(countdown: &Countdown) -> Setting {
        match countdown.armed {
            Some(_) => Setting {
                remaining: countdown
                    .deadline
                    .saturating_sub(crate::time::now_ns())
                    .max(1),
                interval: countdown.interval,
            },
            None => Setting {
                remaining: 0,
                interval: countdown.interval,
            },
        }
    }

    /// Arms the timer to expire at `deadline` (ns since boot; `None` disarms it) and then every
    /// `interval` ns (0: once). Returns the previous setting.
    pub fn set(self: &Arc<Self>, deadline: Option<u64>, interval: u64) -> Setting {
        let mut countdown = self.countdown.lock();
        let old = Self::setting_of(&countdown);
        if let Some(id) = countdown.armed.take() {
            sched::timer::cancel(id);
        }
        countdown.interval = interval;
        countdown.missed = 0;
        countdown.overrun = 0;
        if let Some(deadline) = deadline {
            countdown.deadline = deadline;
            countdown.armed = Some(sched::timer::add_call(deadline, self.clone()));
        }
        old
    }

    /// Disarms the timer for good (deleted, or its process ended).
    fn disarm(&self) {
        let mut countdown = self.countdown.lock();
        if let Some(id) = countdown.armed.take() {
            sched::timer::cancel(id);
        }
        countdown.interval = 0;
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
        let missed = {
            let mut countdown = self.countdown.lock();
            if countdown.armed != Some(id) {
                // Set again or disarmed after this expiry was taken from the list.
                return;
            }
            let missed = if countdown.interval == 0 {
                countdown.armed = None;
                0
            } else {
                let interval = countdown.interval;
                let missed = now.saturating_sub(countdown.deadline) / interval;
                countdown.deadline = countdown
                    .deadline
                    .saturating_add(missed.saturating_add(1).saturating_mul(interval));
                countdown.armed = Some(sched::timer::add_call(countdown.deadline, self.clone()));
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

/// A process's timers.
#[derive(Default)]
pub struct Timers {
    /// `ITIMER_REAL`, made at its first use.
    real: Option<Arc<IntervalTimer>>,
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
    /// The real-time interval timer of `process` (this table's).
    pub fn real(&mut self, process: &Arc<Process>) -> Arc<IntervalTimer> {
        self.real
            .get_or_insert_with(|| {
                IntervalTimer::new(
                    process,
                    Notify::Process { signo: SIGALRM },
                    None,
                    0,
                    CLOCK_MONOTONIC,
                )
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

    /// A new POSIX timer of `process` with id `id` (from [`Self::take_id`]) on `clock` that
    /// notifies `notify`, with `sigev_value` `value` (its id when `None`, as Linux).
    pub fn create(
        &mut self,
        process: &Arc<Process>,
        id: i32,
        clock: u64,
        notify: Notify,
        value: Option<u64>,
    ) {
        let value = value.unwrap_or(id as u32 as u64);
        self.posix
            .push(IntervalTimer::new(process, notify, Some(id), value, clock));
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

    /// `execve`: the POSIX timers go, the real-time one stays.
    pub fn on_exec(&mut self) {
        for timer in self.posix.drain(..) {
            timer.disarm();
        }
    }

    /// The process ended: every timer stops.
    pub fn on_exit(&mut self) {
        self.on_exec();
        if let Some(real) = self.real.take() {
            real.disarm();
        }
    }
}
