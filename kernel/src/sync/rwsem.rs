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
//! A task that has to wait spins, polling, and sleeps only when spinning looks futile: most
//! holds are short (one mmap, one page fault), and a sleep with its wake-up costs more than the
//! wait itself. Like Linux's rwsem, it spins on as long as the writer holding the lock is
//! running: such a writer is busy with its edit (an munmap waiting for a TLB shootdown, say)
//! and lets go soon; the writer is known to be running while the CPU it took the lock on has
//! made no context switch since. So a waiter sleeps
//! - at once when the holding writer has been switched out (it may sleep for long);
//! - after [`SPIN_NS`] without a running writer in sight (readers hold the lock; they are not
//!   tracked);
//! - when this CPU has another task to run, and after [`MAX_SPIN_NS`] in any case.
//!
//! The counts are protected by an `IrqSpinLock`; waiting is on two wait queues. Process context
//! only; never inside an RCU read-side section.
//!
//! The lock is held through guards: [`RwSem::read`] and [`RwSem::write`] return one, and
//! dropping it releases the lock, so a holder cannot forget to let go or let go twice.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::arch::percpu;

use super::IrqSpinLock;
use super::waitqueue::WaitQueue;

/// How long a waiter polls with no running writer holding the lock: about one short
/// address-space change, or a page fault under the lock.
const SPIN_NS: u64 = 20_000;
/// How long a waiter polls at most (a quarter of a tick at the default 250 Hz).
const MAX_SPIN_NS: u64 = 1_000_000;
/// `writer_cpu` when no writer holds the lock.
const NO_WRITER: usize = usize::MAX;

/// What a waiter knows of the writer holding the lock (see [`RwSem::writer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    /// No writer holds it (readers do, or nobody).
    None,
    Running,
    SwitchedOut,
}

/// Everything but the writer, which `RwSem::writer_cpu` records.
struct Counts {
    readers: u32,
    writers_waiting: u32,
    readers_waiting: u32,
}

pub struct RwSem {
    counts: IrqSpinLock<Counts>,
    /// Bumped (under `counts`) by each hand-off to the waiting readers; a waiting reader holds
    /// the lock once it differs from the value it saw when it started waiting. Outside the
    /// spinlock so that waiting readers poll it without taking that lock.
    reader_grants: AtomicU64,
    /// The CPU the holding writer took the lock on ([`NO_WRITER`] if none: this is the lock's
    /// one record of whether a writer holds it) and that CPU's context-switch count then. Set
    /// and cleared under `counts`, so exact there; read without it by waiters, for whom a stale
    /// value only means spinning a little longer or shorter.
    writer_cpu: AtomicUsize,
    writer_switches: AtomicU64,
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
                writers_waiting: 0,
                readers_waiting: 0,
            }),
            reader_grants: AtomicU64::new(0),
            writer_cpu: AtomicUsize::new(NO_WRITER),
            writer_switches: AtomicU64::new(0),
            readers_queue: WaitQueue::new(),
            writers_queue: WaitQueue::new(),
        }
    }

    /// Takes the lock for reading (sleeping while a writer holds it or waits for it).
    #[track_caller]
    pub fn read(&self) -> RwSemReadGuard<'_> {
        self.down_read();
        RwSemReadGuard(self)
    }

    /// Takes the lock for writing (sleeping while anyone else holds it).
    #[track_caller]
    pub fn write(&self) -> RwSemWriteGuard<'_> {
        self.down_write();
        RwSemWriteGuard(self)
    }

    #[track_caller]
    fn down_read(&self) {
        let grant = {
            let mut counts = self.counts.lock();
            if !self.write_held() && counts.writers_waiting == 0 {
                counts.readers += 1;
                return;
            }
            counts.readers_waiting += 1;
            self.reader_grants.load(Ordering::Relaxed)
        };
        crate::sync::rcu::might_sleep();
        // The writer that hands over counts this reader in before it bumps the grants.
        let granted = || self.reader_grants.load(Ordering::Acquire) != grant;
        if !self.spin_until(granted) {
            self.readers_queue.wait_until(granted);
        }
    }

    fn up_read(&self) {
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
    fn down_write(&self) {
        {
            let mut counts = self.counts.lock();
            if !self.write_held() && counts.readers == 0 {
                self.note_writer();
                return;
            }
            counts.writers_waiting += 1;
        }
        crate::sync::rcu::might_sleep();
        let mut take = || {
            let mut counts = self.counts.lock();
            if self.write_held() || counts.readers > 0 {
                return false;
            }
            counts.writers_waiting -= 1;
            self.note_writer();
            true
        };
        if !self.spin_until(&mut take) {
            self.writers_queue.wait_until(take);
        }
    }

    fn up_write(&self) {
        let readers_granted = {
            let mut counts = self.counts.lock();
            debug_assert!(self.write_held(), "up_write without down_write");
            self.writer_cpu.store(NO_WRITER, Ordering::Relaxed);
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

    /// Whether a writer holds the lock: exact under `counts`, a hint without it.
    fn write_held(&self) -> bool {
        self.writer_cpu.load(Ordering::Relaxed) != NO_WRITER
    }

    /// Takes the lock for the writer that runs this (under `counts`), recording where it runs.
    fn note_writer(&self) {
        let cpu = percpu::this_cpu();
        self.writer_switches.store(
            cpu.sched.context_switches.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.writer_cpu.store(cpu.index, Ordering::Relaxed);
    }

    /// Whether a writer holds the lock, and if so whether its CPU has switched tasks since it
    /// took it.
    fn writer(&self) -> Writer {
        let cpu = self.writer_cpu.load(Ordering::Relaxed);
        let switches = self.writer_switches.load(Ordering::Relaxed);
        match percpu::cpu(cpu) {
            None => Writer::None,
            Some(c) if c.sched.context_switches.load(Ordering::Relaxed) == switches => {
                Writer::Running
            }
            Some(_) => Writer::SwitchedOut,
        }
    }

    /// Polls `ready` (with a `pause` between polls) until it holds (true), or until spinning
    /// looks futile (false: see the module documentation).
    fn spin_until(&self, mut ready: impl FnMut() -> bool) -> bool {
        let start = crate::time::now_ns();
        let mut running_writer_seen = start;
        loop {
            if ready() {
                return true;
            }
            let now = crate::time::now_ns();
            match self.writer() {
                Writer::Running => running_writer_seen = now,
                Writer::SwitchedOut => return false,
                Writer::None => {}
            }
            let futile = now.saturating_sub(running_writer_seen) >= SPIN_NS
                || now.saturating_sub(start) >= MAX_SPIN_NS
                || percpu::this_cpu()
                    .sched
                    .need_resched
                    .load(Ordering::Relaxed);
            if futile {
                return false;
            }
            core::hint::spin_loop();
        }
    }
}

/// The lock held for reading; dropping the guard releases it.
#[must_use = "dropping the guard releases the lock at once"]
pub struct RwSemReadGuard<'a>(&'a RwSem);

impl Drop for RwSemReadGuard<'_> {
    fn drop(&mut self) {
        self.0.up_read();
    }
}

/// The lock held for writing; dropping the guard releases it.
#[must_use = "dropping the guard releases the lock at once"]
pub struct RwSemWriteGuard<'a>(&'a RwSem);

impl Drop for RwSemWriteGuard<'_> {
    fn drop(&mut self) {
        self.0.up_write();
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicBool, Ordering};

    use super::{RwSem, SPIN_NS, Writer};
    use crate::arch::percpu::{self, CpuSet};
    use crate::ktest;
    use crate::sync::Completion;

    ktest! {
        /// What a waiter sees of the writer: none while nobody or readers hold the lock, a
        /// running writer while its CPU has not switched, a switched-out one once it sleeps.
        fn waiters_see_whether_the_writer_runs() {
            let lock = Arc::new(RwSem::new());
            assert_eq!(lock.writer(), Writer::None);
            let reading = lock.read();
            assert_eq!(lock.writer(), Writer::None, "a reader taken for a writer");
            drop(reading);
            let writing = lock.write();
            assert_eq!(lock.writer(), Writer::Running, "the running writer (this task)");
            drop(writing);
            assert_eq!(lock.writer(), Writer::None, "a writer left behind by up_write");

            let release = Arc::new(AtomicBool::new(false));
            let holding = Arc::new(Completion::new());
            let finished = Arc::new(Completion::new());
            let (l, r, h, f) = (lock.clone(), release.clone(), holding.clone(), finished.clone());
            crate::sched::spawn_kernel("rwsem-sleeper", move || {
                let writing = l.write();
                h.complete();
                while !r.load(Ordering::Acquire) {
                    crate::sched::timer::sleep_ns(1_000_000).expect("not killed");
                }
                drop(writing);
                f.complete();
            })
            .expect("memory for a test thread");
            assert!(holding.wait_timeout(10_000_000_000), "the sleeper never took the lock");
            let deadline = crate::time::now_ns() + 10_000_000_000;
            while lock.writer() != Writer::SwitchedOut {
                assert!(crate::time::now_ns() < deadline, "a sleeping writer seen as running");
                crate::sched::timer::sleep_ns(100_000).expect("not killed");
            }
            release.store(true, Ordering::Release);
            // The writer sleeps: this waiter sleeps too, and its wake-up must come.
            let writing = lock.write();
            assert_eq!(lock.writer(), Writer::Running);
            drop(writing);
            assert!(finished.wait_timeout(10_000_000_000), "the sleeper never finished");
        }
    }

    ktest! {
        /// A waiter does not sleep while the writer holding the lock runs, even for ten times
        /// [`SPIN_NS`]. (A host that stalls a CPU for a millisecond can make one attempt sleep,
        /// so the test passes when one of five does not; with a spin of `SPIN_NS` alone every
        /// attempt sleeps.)
        fn waiter_spins_while_the_writer_runs() {
            let Some(other) = ktest::other_cpu() else {
                return ktest::skip("needs 2 or more CPUs");
            };
            let me = percpu::cpu_index();
            for _ in 0..5 {
                let lock = RwSem::new();
                let held = AtomicBool::new(false);
                let waiter_slept = AtomicBool::new(false);
                crate::arch::smp::run_in_idle(CpuSet::default().with(me).with(other), &|| {
                    if percpu::cpu_index() == other {
                        let writing = lock.write();
                        held.store(true, Ordering::Release);
                        crate::time::delay_ns(10 * SPIN_NS);
                        drop(writing);
                    } else {
                        while !held.load(Ordering::Acquire) {
                            core::hint::spin_loop();
                        }
                        let switches = &percpu::this_cpu().sched.context_switches;
                        let before = switches.load(Ordering::Relaxed);
                        drop(lock.write());
                        waiter_slept
                            .store(switches.load(Ordering::Relaxed) != before, Ordering::Relaxed);
                    }
                });
                if !waiter_slept.load(Ordering::Relaxed) {
                    return;
                }
            }
            panic!("the waiter slept in all five attempts while the writer was running");
        }
    }
}
