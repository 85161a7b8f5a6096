//! A sleeping reader-writer semaphore: the address space's `mmap_lock`.
//!
//! Many readers or one writer. Neither side starves:
//! - once a writer waits, new readers wait behind it;
//! - a leaving writer hands the lock to every waiting reader at once: it counts them in as
//!   holders before waking them (a hand-off, as Linux's rwsem does). Without it, a writer that
//!   takes the lock again at once (an mmap/munmap loop) would win every time against readers
//!   that still have to be scheduled, and the page faults behind them would never run;
//! - with no reader waiting, it wakes the next waiting writer; the last reader to leave does
//!   the same.
//!
//! A task that has to wait first spins for up to [`SPIN_NS`], polling, and sleeps only after
//! that: most holds are short (one mmap, one page fault), and a sleep with its wake-up costs
//! more than the wait itself (Linux's rwsem spins on a running owner for the same reason).
//!
//! The counts are protected by an `IrqSpinLock`; waiting is on two wait queues. Process context
//! only; never inside an RCU read-side section.

use core::sync::atomic::{AtomicU64, Ordering};

use super::IrqSpinLock;
use super::waitqueue::WaitQueue;

/// How long a waiter polls before it sleeps: about one short address-space change.
const SPIN_NS: u64 = 20_000;

/// Polls `ready` (with a `pause` between polls) for up to [`SPIN_NS`]; whether it held.
fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    let deadline = crate::time::now_ns() + SPIN_NS;
    loop {
        if ready() {
            return true;
        }
        if crate::time::now_ns() >= deadline {
            return false;
        }
        core::hint::spin_loop();
    }
}

struct Counts {
    readers: u32,
    writer: bool,
    writers_waiting: u32,
    readers_waiting: u32,
}

pub struct RwSem {
    counts: IrqSpinLock<Counts>,
    /// Bumped (under `counts`) by each hand-off to the waiting readers; a waiting reader holds
    /// the lock once it differs from the value it saw when it started waiting. Outside the
    /// spinlock so that waiting readers poll it without taking that lock.
    reader_grants: AtomicU64,
    readers_queue: WaitQueue,
    writers_queue: WaitQueue,
}

impl Default for RwSem {
    fn default() -> Self {
        Self::new()
    }
}

impl RwSem {
    pub const fn new() -> Self {
        Self {
            counts: IrqSpinLock::new(Counts {
                readers: 0,
                writer: false,
                writers_waiting: 0,
                readers_waiting: 0,
            }),
            reader_grants: AtomicU64::new(0),
            readers_queue: WaitQueue::new(),
            writers_queue: WaitQueue::new(),
        }
    }

    #[track_caller]
    pub fn down_read(&self) {
        let grant = {
            let mut counts = self.counts.lock();
            if !counts.writer && counts.writers_waiting == 0 {
                counts.readers += 1;
                return;
            }
            counts.readers_waiting += 1;
            self.reader_grants.load(Ordering::Relaxed)
        };
        crate::sync::rcu::might_sleep();
        // The writer that hands over counts this reader in before it bumps the grants.
        let granted = || self.reader_grants.load(Ordering::Acquire) != grant;
        if !spin_until(granted) {
            self.readers_queue.wait_until(granted);
        }
    }

    pub fn up_read(&self) {
        let wake_writer = {
            let mut counts = self.counts.lock();
            debug_assert!(counts.readers > 0, "up_read without down_read");
            counts.readers -= 1;
            counts.readers == 0 && counts.writers_waiting > 0
        };
        if wake_writer {
            self.writers_queue.wake_one();
        }
    }

    #[track_caller]
    pub fn down_write(&self) {
        {
            let mut counts = self.counts.lock();
            if !counts.writer && counts.readers == 0 {
                counts.writer = true;
                return;
            }
            counts.writers_waiting += 1;
        }
        crate::sync::rcu::might_sleep();
        let mut take = || {
            let mut counts = self.counts.lock();
            if counts.writer || counts.readers > 0 {
                return false;
            }
            counts.writer = true;
            counts.writers_waiting -= 1;
            true
        };
        if !spin_until(&mut take) {
            self.writers_queue.wait_until(take);
        }
    }

    pub fn up_write(&self) {
        let readers_granted = {
            let mut counts = self.counts.lock();
            debug_assert!(counts.writer, "up_write without down_write");
            counts.writer = false;
            if counts.readers_waiting > 0 {
                counts.readers += counts.readers_waiting;
                counts.readers_waiting = 0;
                // Release: pairs with the waiting readers' Acquire load.
                self.reader_grants.fetch_add(1, Ordering::Release);
                true
            } else {
                false
            }
        };
        if readers_granted {
            self.readers_queue.wake_all();
        } else {
            self.writers_queue.wake_one();
        }
    }

    /// Whether a writer holds the lock (for assertions).
    pub fn is_write_locked(&self) -> bool {
        self.counts.lock().writer
    }
}
