//! A completion: one side waits until the other says "done" (once; it stays done).

use core::sync::atomic::{AtomicBool, Ordering};

use super::waitqueue::WaitQueue;

pub struct Completion {
    done: AtomicBool,
    queue: WaitQueue,
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

impl Completion {
    pub const fn new() -> Self {
        Self {
            done: AtomicBool::new(false),
            queue: WaitQueue::new(),
        }
    }

    /// Marks the completion done and wakes every waiter.
    pub fn complete(&self) {
        self.done.store(true, Ordering::Release);
        self.queue.wake_all();
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Sleeps until [`complete`](Self::complete) was called or the caller is killed; returns
    /// whether it was completed.
    pub fn wait_killable(&self) -> bool {
        self.queue.wait_killable(|| self.is_done());
        self.is_done()
    }

    /// Sleeps until [`complete`](Self::complete) was called, `timeout_ns` passed or a signal
    /// came; returns whether it was completed.
    #[track_caller]
    pub fn wait_timeout(&self, timeout_ns: u64) -> bool {
        let deadline = crate::time::now_ns().saturating_add(timeout_ns);
        self.queue
            .wait_interruptible(|| self.is_done(), Some(deadline));
        self.is_done()
    }
}
