//! A sleeping reader-writer semaphore: the address space's `mmap_lock`.
//!
//! Many readers or one writer. Writers do not starve: once a writer waits, new readers wait
//! behind it. When a writer leaves it hands over to the next waiting writer, else to every
//! waiting reader. The counts are protected by an `IrqSpinLock`; waiting is on two wait queues.
//! Process context only; never inside an RCU read-side section.

use super::IrqSpinLock;
use super::waitqueue::WaitQueue;

struct Counts {
    readers: u32,
    writer: bool,
    writers_waiting: u32,
}

pub struct RwSem {
    counts: IrqSpinLock<Counts>,
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
            }),
            readers_queue: WaitQueue::new(),
            writers_queue: WaitQueue::new(),
        }
    }

    fn try_read_locked(&self) -> bool {
        let mut counts = self.counts.lock();
        if counts.writer || counts.writers_waiting > 0 {
            return false;
        }
        counts.readers += 1;
        true
    }

    #[track_caller]
    pub fn down_read(&self) {
        if self.try_read_locked() {
            return;
        }
        crate::sync::rcu::might_sleep();
        self.readers_queue.wait_until(|| self.try_read_locked());
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
        self.writers_queue.wait_until(|| {
            let mut counts = self.counts.lock();
            if counts.writer || counts.readers > 0 {
                return false;
            }
            counts.writer = true;
            counts.writers_waiting -= 1;
            true
        });
    }

    pub fn up_write(&self) {
        let writers_waiting = {
            let mut counts = self.counts.lock();
            debug_assert!(counts.writer, "up_write without down_write");
            counts.writer = false;
            counts.writers_waiting > 0
        };
        if writers_waiting {
            self.writers_queue.wake_one();
        } else {
            self.readers_queue.wake_all();
        }
    }

    /// Whether a writer holds the lock (for assertions).
    pub fn is_write_locked(&self) -> bool {
        self.counts.lock().writer
    }
}
