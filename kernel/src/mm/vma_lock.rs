//! The kernel's side of the per-VMA lock (kernel/libs/vmalock): where writers and detachers
//! sleep, the fault path's counters, the `vma_lock=off` switch and, in test images only, the
//! delays and forced retries that the torture tests inject.
//!
//! Waiting writers sleep on one of a static table of wait queues, chosen by hashing the VMA's
//! address; a reader that drops the last reference a writer waits for wakes that queue by the
//! same key — it never goes through the VMA's address space, which may not be the reader's any
//! more (Linux's July 2025 use-after-free).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(feature = "ktest")]
use vmalock::DelayPoint;
use vmalock::Platform;

use crate::arch::percpu::{PerCpu, per_cpu};
use crate::sync::WaitQueue;

#[cfg(feature = "ktest")]
pub use injection::{delay_before_free, delay_next_lookup_here, force_retry, set_injection};

const WAIT_QUEUES: usize = 64;

static WAIT_TABLE: [WaitQueue; WAIT_QUEUES] = [const { WaitQueue::new() }; WAIT_QUEUES];

fn queue(key: usize) -> &'static WaitQueue {
    let hash = (key as u64 >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    &WAIT_TABLE[(hash >> 58) as usize % WAIT_QUEUES]
}

/// The lock's platform: sleeping wait queues, and in test images delays at the race windows
/// (production kernels keep the trait's default `delay`, which compiles away).
pub struct KernelPlatform;

pub static PLATFORM: KernelPlatform = KernelPlatform;

impl Platform for KernelPlatform {
    fn wait_until(&self, key: usize, cond: impl FnMut() -> bool) {
        queue(key).wait_until(cond);
    }

    fn wake_all(&self, key: usize) {
        queue(key).wake_all();
    }

    #[cfg(feature = "ktest")]
    fn delay(&self, at: DelayPoint) {
        injection::delay(at);
    }
}

/// The writer's delay point, between detaching VMAs and freeing them: nothing outside test
/// images.
#[cfg(not(feature = "ktest"))]
#[inline(always)]
pub fn delay_before_free() {}

/// Whether this fault, served under a VMA lock, should be retried under `mmap_lock` anyway:
/// never outside test images.
#[cfg(not(feature = "ktest"))]
#[inline(always)]
pub fn force_retry() -> bool {
    false
}

/// Whether faults try the per-VMA lock first (`vma_lock=off` clears it).
static ENABLED: AtomicBool = AtomicBool::new(true);

pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Page-fault counters of one CPU, named as Linux's vmstat names them (bumped only by their
/// CPU, with `percpu::add_local`).
pub struct PerVmaLockCounters {
    /// Faults served entirely under a VMA lock.
    pub success: AtomicU64,
    /// `lock_vma_under_rcu` failed (no VMA, locked, detached, foreign, out of range).
    pub abort: AtomicU64,
    /// Faults handed to `mmap_lock` after the VMA was locked.
    pub retry: AtomicU64,
    /// Lookups that found a detached VMA and started over.
    pub miss: AtomicU64,
    /// Faults served under `mmap_lock` (after an abort or retry, or with `vma_lock=off`).
    pub fallback: AtomicU64,
}

pub static COUNTERS: PerCpu<PerVmaLockCounters> = per_cpu![PerVmaLockCounters {
    success: AtomicU64::new(0),
    abort: AtomicU64::new(0),
    retry: AtomicU64::new(0),
    miss: AtomicU64::new(0),
    fallback: AtomicU64::new(0),
}];

pub fn counters() -> &'static PerVmaLockCounters {
    COUNTERS.local()
}

/// Totals over all CPUs: (success, abort, retry, miss, fallback).
pub fn totals() -> [u64; 5] {
    [
        COUNTERS.sum(|c| c.success.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.abort.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.retry.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.miss.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.fallback.load(Ordering::Relaxed)),
    ]
}

/// Logs the counters (debug key `v`, and the `stats` option at exit).
pub fn log_statistics() {
    let [success, abort, retry, miss, fallback] = totals();
    log::info!(
        "vma_lock ({}): VMA_LOCK_SUCCESS {success} VMA_LOCK_ABORT {abort} VMA_LOCK_RETRY {retry} VMA_LOCK_MISS {miss} fallback {fallback}",
        if is_enabled() { "on" } else { "off" }
    );
}

/// What the torture tests inject (test images only): delays at the protocol's race windows, a
/// delay for one lookup on one CPU, and faults handed to `mmap_lock` although their VMA lock
/// was taken.
#[cfg(feature = "ktest")]
mod injection {
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    use vmalock::DelayPoint;

    use crate::arch::percpu::{PerCpu, per_cpu};

    /// Nanoseconds of delay injected at the protocol's race windows (0 = none).
    static DELAY_NS: AtomicU64 = AtomicU64::new(0);
    /// Every Nth fault served under a VMA lock is handed to `mmap_lock` instead (0 = never):
    /// the RETRY path.
    static FORCE_RETRY_EVERY: AtomicU32 = AtomicU32::new(0);
    /// Per CPU: a delay for the next lookup of `lock_vma_under_rcu` on this CPU only (tests
    /// that need a reader to sit in the window between lookup and lock while a writer acts).
    static DELAY_NEXT_LOOKUP_NS: PerCpu<AtomicU64> = per_cpu![AtomicU64::new(0)];

    /// Sets the injected delay (ns) and the forced-retry period; 0 turns each off.
    pub fn set_injection(delay_ns: u64, force_retry_every: u32) {
        DELAY_NS.store(delay_ns, Ordering::Relaxed);
        FORCE_RETRY_EVERY.store(force_retry_every, Ordering::Relaxed);
    }

    /// Makes the next fault's lookup on this CPU wait `ns` between finding the VMA and locking
    /// it. The caller runs kernel code up to its fault (no preemption), so the fault is on this
    /// CPU.
    pub fn delay_next_lookup_here(ns: u64) {
        DELAY_NEXT_LOOKUP_NS.local().store(ns, Ordering::Relaxed);
    }

    /// Whether this fault, served under a VMA lock, should be retried under `mmap_lock` anyway.
    pub fn force_retry() -> bool {
        let every = FORCE_RETRY_EVERY.load(Ordering::Relaxed);
        every != 0 && crate::random::tick().is_multiple_of(u64::from(every))
    }

    /// The writer's delay point, between detaching VMAs and freeing them.
    pub fn delay_before_free() {
        let ns = DELAY_NS.load(Ordering::Relaxed);
        if ns != 0 {
            crate::time::delay_ns(ns * 32);
        }
    }

    /// The delay at race window `at` (`Platform::delay`).
    pub fn delay(at: DelayPoint) {
        if at == DelayPoint::AfterLookup {
            // A plain load first: the swap is a locked instruction, and this runs on every
            // fault that takes the per-VMA path.
            let slot = DELAY_NEXT_LOOKUP_NS.local();
            let once = if slot.load(Ordering::Relaxed) != 0 {
                slot.swap(0, Ordering::Relaxed)
            } else {
                0
            };
            if once != 0 {
                crate::time::delay_ns(once);
                return;
            }
        }
        let ns = DELAY_NS.load(Ordering::Relaxed);
        if ns == 0 {
            return;
        }
        // Spin, never sleep: readers are inside an RCU read section. Between the lookup and
        // the lock, now and then wait long enough for a whole write session (lock, unpublish,
        // detach, free, reuse) to pass: that is what makes a reader find a detached VMA.
        let roll = crate::random::tick() % 16;
        let wait = match at {
            DelayPoint::AfterLookup if roll < 2 => ns * 32,
            DelayPoint::AfterLookup
            | DelayPoint::AfterGetRef
            | DelayPoint::BeforeRangeCheck
            | DelayPoint::WhileExcluding
                if roll < 4 =>
            {
                ns
            }
            _ => return,
        };
        crate::time::delay_ns(wait);
    }
}
