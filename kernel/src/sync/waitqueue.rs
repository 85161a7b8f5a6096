//! Wait queues: tasks sleeping until a condition holds, woken by whoever makes it hold.
//!
//! The protocol that makes sleeping race-free (no lost wake-ups) is the scheduler's: the sleeper
//! marks itself asleep and then joins the queue *before* it checks the condition; the waker
//! changes the condition *before* it wakes the queue. Either the sleeper sees the new condition, or the
//! waker finds the sleeper in the queue, marked asleep. The queue's lock protects its list,
//! which holds memory only while tasks wait. Process context only, but for
//! [`WaitQueue::wake_all_from_interrupt`], which an interrupt handler uses to have a queue woken
//! soon from process context ([`run_interrupt_wakes`]).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::sched::{self, Task, timer};
use crate::sync::IrqSpinLock;
use crate::time::now_ns;

pub struct WaitQueue {
    waiters: IrqSpinLock<VecDeque<Arc<Task>>>,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// The condition holds.
    Ready,
    /// The deadline passed first.
    TimedOut,
    /// A signal is pending for the task (interruptible waits), or it was killed (killable and
    /// interruptible waits).
    Interrupted,
}

/// What may end a wait before its condition holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Nothing: only the condition.
    Never,
    /// A kill.
    Kill,
    /// A kill or a pending signal ([`Task::signal_pending`]).
    Signal,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    pub const fn new() -> Self {
        Self {
            waiters: IrqSpinLock::new(VecDeque::new()),
        }
    }

    /// Sleeps until `condition()` returns true; it is called again after every wake-up. Not
    /// interruptible: a kill waits for the condition.
    #[track_caller]
    pub fn wait_until(&self, mut condition: impl FnMut() -> bool) {
        let result = self.wait(&mut condition, None, Wake::Never);
        debug_assert_eq!(result, WaitResult::Ready);
    }

    /// Sleeps until `condition()` holds, a signal is pending for the task (or it is killed),
    /// or `deadline` (ns since boot) passes.
    #[track_caller]
    pub fn wait_interruptible(
        &self,
        mut condition: impl FnMut() -> bool,
        deadline: Option<u64>,
    ) -> WaitResult {
        self.wait(&mut condition, deadline, Wake::Signal)
    }

    /// Sleeps until `condition()` holds or the task is killed; other signals do not end it.
    #[track_caller]
    pub fn wait_killable(&self, mut condition: impl FnMut() -> bool) -> WaitResult {
        self.wait(&mut condition, None, Wake::Kill)
    }

    #[track_caller]
    fn wait(
        &self,
        condition: &mut dyn FnMut() -> bool,
        deadline: Option<u64>,
        wake: Wake,
    ) -> WaitResult {
        if condition() {
            return WaitResult::Ready;
        }
        let me = sched::current_arc();
        let timer = deadline.map(|at| timer::add(at, me.clone()));
        let result = loop {
            // Asleep before joining the queue: a waker that takes us off the queue then
            // always finds us asleep and wakes us.
            sched::set_current_sleeping();
            self.waiters.lock().push_back(me.clone());
            let outcome = if condition() {
                Some(WaitResult::Ready)
            } else if wake == Wake::Kill && me.is_killed()
                || wake == Wake::Signal && me.signal_pending()
            {
                Some(WaitResult::Interrupted)
            } else if deadline.is_some_and(|at| now_ns() >= at) {
                Some(WaitResult::TimedOut)
            } else {
                None
            };
            if let Some(outcome) = outcome {
                sched::set_current_runnable();
                self.remove(&me);
                break outcome;
            }
            sched::schedule();
            self.remove(&me);
        };
        if let Some(id) = timer {
            timer::cancel(id);
        }
        result
    }

    fn remove(&self, task: &Arc<Task>) {
        let (removed, emptied) = {
            let mut waiters = self.waiters.lock();
            let index = waiters.iter().position(|t| Arc::ptr_eq(t, task));
            let removed = index.and_then(|i| waiters.remove(i));
            (removed, take_if_empty(&mut waiters))
        };
        drop((removed, emptied));
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for task in &waiters {
            sched::wake(task);
        }
    }

    /// Wakes the longest waiting task that is still asleep.
    pub fn wake_one(&self) {
        loop {
            let (task, emptied) = {
                let mut waiters = self.waiters.lock();
                let task = waiters.pop_front();
                (task, take_if_empty(&mut waiters))
            };
            drop(emptied);
            let Some(task) = task else {
                return;
            };
            if sched::wake(&task) {
                return;
            }
        }
    }
}

/// The queues interrupt handlers asked to wake, each once, until [`run_interrupt_wakes`] takes
/// them. Slots hold `&'static WaitQueue`s; four are more than the kernel's users need (the
/// serial line's receive queue is the only one).
static INTERRUPT_WAKES: [AtomicPtr<WaitQueue>; 4] = [const { AtomicPtr::new(null_mut()) }; 4];

impl WaitQueue {
    /// [`WaitQueue::wake_all`] on behalf of an interrupt handler, which may not wake tasks
    /// itself (waking may allocate: run queues grow). Takes no lock and allocates nothing: it
    /// marks the queue, and process context wakes it at the next return to user mode or idle
    /// pass of any CPU ([`run_interrupt_wakes`]). The handler changes the sleepers' condition
    /// first, as for any wake-up.
    pub fn wake_all_from_interrupt(&'static self) {
        let me = core::ptr::from_ref(self).cast_mut();
        for slot in &INTERRUPT_WAKES {
            match slot.compare_exchange(null_mut(), me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(current) if current == me => return,
                Err(_) => {}
            }
        }
        debug_assert!(
            false,
            "more queues woken from interrupts than INTERRUPT_WAKES holds"
        );
    }
}

/// Whether an interrupt handler asked for a wake-up that has not happened yet (the idle loop
/// does not halt then).
pub fn interrupt_wakes_pending() -> bool {
    INTERRUPT_WAKES
        .iter()
        .any(|slot| !slot.load(Ordering::Relaxed).is_null())
}

/// Wakes the queues interrupt handlers marked ([`WaitQueue::wake_all_from_interrupt`]).
/// Process context: the return to user mode and the idle loop call it.
pub fn run_interrupt_wakes() {
    for slot in &INTERRUPT_WAKES {
        let queue = slot.swap(null_mut(), Ordering::AcqRel);
        if !queue.is_null() {
            // SAFETY: only `wake_all_from_interrupt` fills the slots, with `&'static` queues,
            // which are never written through the pointer.
            unsafe { &*queue }.wake_all();
        }
    }
}

/// The list of an empty queue, taken out (to be dropped outside the lock) so that a queue holds
/// memory only while tasks wait in it: queues that live for good (static locks, the tables of
/// hashed queues) would otherwise each keep the most they ever held.
fn take_if_empty(waiters: &mut VecDeque<Arc<Task>>) -> Option<VecDeque<Arc<Task>>> {
    waiters.is_empty().then(|| core::mem::take(waiters))
}
