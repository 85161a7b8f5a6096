//! Sleeping until a time, and calls at a time: one global list of timers, each of which wakes
//! a task or calls an [`Expire`] (a process's interval timers, `proc::timers`).
//!
//! The timer interrupt only notices that the earliest deadline has passed ([`has_expired`],
//! one atomic load) and asks for a reschedule; the tasks are woken and the calls made in
//! process context ([`run_expired`]: the idle loop, the return to user mode), because waking
//! may allocate.
//! The list is protected by its lock; `NEXT_DEADLINE` is a hint kept at or below the earliest
//! deadline in the list.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::Task;
use crate::sync::IrqSpinLock;
use crate::time::now_ns;

/// What an expiring timer calls (in process context, no lock held): `id` is the timer's id
/// (as [`add_call`] returned it), `now` the time it was found expired.
pub trait Expire: Send + Sync {
    fn expire(self: Arc<Self>, id: u64, now: u64);
}

/// What a timer does when its deadline passes.
enum Action {
    Wake(Arc<Task>),
    Call(Arc<dyn Expire>),
}

struct Timer {
    deadline: u64,
    id: u64,
    action: Action,
}

static TIMERS: IrqSpinLock<Vec<Timer>> = IrqSpinLock::new(Vec::new());
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Whether some timer is due (interrupt context allowed). With no timer armed the clock is not
/// read: [`run_expired`] asks this on every return to user mode.
pub fn has_expired() -> bool {
    let next = NEXT_DEADLINE.load(Ordering::Relaxed);
    next != u64::MAX && now_ns() >= next
}

/// Arms a timer that wakes `task` at `deadline` (ns since boot); returns its id for [`cancel`].
pub fn add(deadline: u64, task: Arc<Task>) -> u64 {
    insert(deadline, Action::Wake(task))
}

/// Arms a timer that calls `target` at `deadline` (ns since boot); returns its id for
/// [`cancel`] (the call gets it too).
pub fn add_call(deadline: u64, target: Arc<dyn Expire>) -> u64 {
    insert(deadline, Action::Call(target))
}

fn insert(deadline: u64, action: Action) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut timers = TIMERS.lock();
    timers.push(Timer {
        deadline,
        id,
        action,
    });
    NEXT_DEADLINE.fetch_min(deadline, Ordering::Relaxed);
    id
}

/// Removes the timer `id` if it has not fired.
pub fn cancel(id: u64) {
    let removed = {
        let mut timers = TIMERS.lock();
        let index = timers.iter().position(|t| t.id == id);
        index.map(|i| timers.swap_remove(i))
    };
    // The task or target reference is dropped outside the lock.
    drop(removed);
}

/// Wakes the tasks and makes the calls whose deadline has passed (process context). One timer
/// at a time, so that nothing is allocated for it (tests count heap bytes while this runs on
/// other CPUs).
pub fn run_expired() {
    if !has_expired() {
        return;
    }
    let now = now_ns();
    loop {
        let expired = {
            let mut timers = TIMERS.lock();
            match timers.iter().position(|t| t.deadline <= now) {
                Some(index) => Some(timers.swap_remove(index)),
                None => {
                    let next = timers.iter().map(|t| t.deadline).min().unwrap_or(u64::MAX);
                    NEXT_DEADLINE.store(next, Ordering::Relaxed);
                    None
                }
            }
        };
        match expired {
            Some(timer) => match timer.action {
                Action::Wake(task) => {
                    super::wake(&task);
                }
                Action::Call(target) => target.expire(timer.id, now),
            },
            None => return,
        }
    }
}

/// Why a sleep ended early.
#[derive(Debug, PartialEq, Eq)]
pub struct Interrupted;

/// Sleeps until `deadline` (ns since boot; `u64::MAX`: no deadline). Ends early, with
/// [`Interrupted`], if a signal is pending for the task or it is killed
/// ([`Task::signal_pending`]).
pub fn sleep_until(deadline: u64) -> Result<(), Interrupted> {
    let task = super::current_arc();
    let id = (deadline != u64::MAX).then(|| add(deadline, task.clone()));
    let result = loop {
        super::set_current_sleeping();
        if task.signal_pending() {
            super::set_current_runnable();
            break Err(Interrupted);
        }
        if now_ns() >= deadline {
            super::set_current_runnable();
            break Ok(());
        }
        super::schedule();
    };
    if let Some(id) = id {
        cancel(id);
    }
    result
}

/// Sleeps for `ns` nanoseconds (see [`sleep_until`]).
pub fn sleep_ns(ns: u64) -> Result<(), Interrupted> {
    sleep_until(now_ns().saturating_add(ns))
}
