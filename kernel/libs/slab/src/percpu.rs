//! Per-CPU object caches ("magazines").
//!
//! Each CPU has a small stack of free objects of the cache. `alloc` pops from the stack of the
//! calling CPU and `free` pushes onto it, so the common case takes no shared lock and hands out
//! the most recently freed (cache-hot) object first. An empty magazine is refilled with
//! [`BATCH`] objects from the cache's slabs; a full one flushes its [`BATCH`] oldest objects back
//! to their slabs. Both take the cache's shared lock once per batch.
//!
//! # Protection: a per-CPU try-lock
//!
//! A magazine is protected by its `busy` flag, taken with one uncontended atomic swap on a line
//! that only its CPU normally touches. `alloc`/`free` *try* the flag and, when it is already
//! held, fall back to the shared path (one object straight from or to the slabs under the
//! shared lock). So the magazine stays consistent if its CPU re-enters the cache, for example
//! from an interrupt handler, and when two threads of a host test claim the same CPU id — the
//! flag, not a rule about calling context, is what makes `alloc` and `free` sound.
//! `drain_cpu_caches` waits for each flag, so it can empty the magazines of other CPUs.
//!
//! The kernel still allocates and frees only in process context (nothing allocates or frees in
//! interrupt context): the shared lock is a plain spinlock, not interrupt-safe, and
//! an interrupt handler that fell back to the shared path while its CPU held that lock would
//! spin for ever.

use crate::sync::{AtomicBool, AtomicUsize, Ordering, UnsafeCell, spin_loop};
use core::ptr;

/// Objects a magazine holds.
#[cfg(not(loom))]
pub(crate) const MAGAZINE_SIZE: usize = 16;
/// Objects moved per refill or flush.
#[cfg(not(loom))]
pub(crate) const BATCH: usize = 8;

// Under loom the magazines are tiny so that the models reach refills and flushes in a few steps.
#[cfg(loom)]
pub(crate) const MAGAZINE_SIZE: usize = 2;
#[cfg(loom)]
pub(crate) const BATCH: usize = 1;

/// A stack of free objects, the top at `objects[len - 1]`.
pub(crate) struct Magazine {
    len: usize,
    objects: [*mut u8; MAGAZINE_SIZE],
}

impl Magazine {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == MAGAZINE_SIZE
    }

    pub(crate) fn pop(&mut self) -> Option<*mut u8> {
        self.len = self.len.checked_sub(1)?;
        Some(self.objects[self.len])
    }

    /// Pushes `object`; the magazine must not be full.
    pub(crate) fn push(&mut self, object: *mut u8) {
        self.objects[self.len] = object;
        self.len += 1;
    }

    /// Removes the `count` oldest objects (from the bottom of the stack), passing each to `f`.
    pub(crate) fn drain_oldest(&mut self, count: usize, mut f: impl FnMut(*mut u8)) {
        let count = count.min(self.len);
        self.objects[..count].iter().for_each(|&object| f(object));
        self.objects.copy_within(count..self.len, 0);
        self.len -= count;
    }
}

/// One CPU's magazine with its try-lock and its statistics, on a cache line of its own.
#[repr(align(64))]
pub(crate) struct CpuCache {
    busy: AtomicBool,
    /// Allocations and frees served by this magazine; written only by the holder of `busy`,
    /// read by `info` at any time.
    allocs: AtomicUsize,
    frees: AtomicUsize,
    magazine: UnsafeCell<Magazine>,
}

// SAFETY: the magazine (raw object pointers) is only reached through a `CpuGuard`, which holds
// `busy` and so gives exclusive access; everything else is atomic.
unsafe impl Sync for CpuCache {}

impl CpuCache {
    crate::sync::const_unless_loom! {
        pub(crate) fn new() -> Self {
            Self {
                busy: AtomicBool::new(false),
                allocs: AtomicUsize::new(0),
                frees: AtomicUsize::new(0),
                magazine: UnsafeCell::new(Magazine {
                    len: 0,
                    objects: [ptr::null_mut(); MAGAZINE_SIZE],
                }),
            }
        }
    }

    /// Takes the magazine if nobody holds it.
    pub(crate) fn try_lock(&self) -> Option<CpuGuard<'_>> {
        // A compare-and-swap, so that a failed try writes nothing (and under loom adds no
        // store to the flag's history); the guard is built only on success, as dropping one
        // releases the flag.
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| CpuGuard { cpu: self })
    }

    /// Takes the magazine, waiting while another holder finishes.
    pub(crate) fn lock(&self) -> CpuGuard<'_> {
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            while self.busy.load(Ordering::Relaxed) {
                spin_loop();
            }
        }
    }

    /// `(allocs, frees)` served by this magazine so far.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.allocs.load(Ordering::Relaxed),
            self.frees.load(Ordering::Relaxed),
        )
    }
}

/// Exclusive access to one CPU's magazine; releases it when dropped.
pub(crate) struct CpuGuard<'a> {
    cpu: &'a CpuCache,
}

impl CpuGuard<'_> {
    /// Runs `f` on the magazine.
    pub(crate) fn with_magazine<R>(&self, f: impl FnOnce(&mut Magazine) -> R) -> R {
        self.cpu.magazine.with_mut(|magazine| {
            // SAFETY: this guard holds `busy`, so no other thread or re-entered context reaches
            // the magazine until it is dropped, and no `f` in this crate calls `with_magazine`
            // again, so this is the only reference.
            f(unsafe { &mut *magazine })
        })
    }

    pub(crate) fn count_alloc(&self) {
        bump(&self.cpu.allocs);
    }

    pub(crate) fn count_free(&self) {
        bump(&self.cpu.frees);
    }
}

/// Adds one to a counter that only the holder of `busy` writes: a load and a store, not a
/// locked read-modify-write.
fn bump(counter: &AtomicUsize) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl Drop for CpuGuard<'_> {
    fn drop(&mut self) {
        self.cpu.busy.store(false, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn object(n: usize) -> *mut u8 {
        ptr::without_provenance_mut(n * 8)
    }

    #[test]
    fn magazine_is_a_stack_and_drains_its_bottom() {
        let cpu = CpuCache::new();
        let guard = cpu.try_lock().unwrap();
        assert!(
            cpu.try_lock().is_none(),
            "the try-lock excludes a second holder"
        );
        assert!(
            cpu.try_lock().is_none(),
            "a failed try leaves the holder's flag alone"
        );
        guard.with_magazine(|m| {
            (1..=MAGAZINE_SIZE).for_each(|n| m.push(object(n)));
            assert!(m.is_full());
            let mut drained = Vec::new();
            m.drain_oldest(3, |o| drained.push(o));
            assert_eq!(drained, [object(1), object(2), object(3)]);
            assert_eq!(m.len(), MAGAZINE_SIZE - 3);
            assert_eq!(m.pop(), Some(object(MAGAZINE_SIZE)));
            m.drain_oldest(usize::MAX, |_| {});
            assert_eq!(m.pop(), None);
        });
        guard.count_alloc();
        guard.count_free();
        guard.count_free();
        drop(guard);
        assert_eq!(cpu.counts(), (1, 2));
        drop(cpu.lock());
    }
}
