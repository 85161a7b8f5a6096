//! [`IrqSpinLock`]: a spinlock that disables interrupts while held, for data that interrupt
//! handlers also touch (and for anything the panic path may need).
//!
//! Interrupts are disabled before the lock is taken and restored to their previous state after
//! it is released, so a handler on the same CPU can never spin on a lock its own CPU holds. Debug
//! builds record the holder (CPU and call site) and turn a wait longer than [`DEADLOCK_AFTER_NS`]
//! into a panic naming both sides: a spinlock held that long is a deadlock, not contention.
//! Short sections that no interrupt handler touches may use `spin::Mutex` directly.

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::panic::Location;
#[cfg(debug_assertions)]
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use x86_64::instructions::interrupts;

/// Waiting this long for a spinlock is reported as a deadlock (debug builds).
const DEADLOCK_AFTER_NS: u64 = 5_000_000_000;

pub struct IrqSpinLock<T> {
    inner: spin::Mutex<T>,
    /// Holder's CPU index + 1, or 0 when free.
    #[cfg(debug_assertions)]
    holder_cpu: AtomicUsize,
    #[cfg(debug_assertions)]
    holder_site: AtomicPtr<Location<'static>>,
    #[cfg(debug_assertions)]
    deadlock_after_ns: u64,
}

pub struct IrqSpinLockGuard<'a, T> {
    guard: ManuallyDrop<spin::MutexGuard<'a, T>>,
    #[cfg(debug_assertions)]
    lock: &'a IrqSpinLock<T>,
    interrupts_were_enabled: bool,
}

impl<T> IrqSpinLock<T> {
    pub const fn new(value: T) -> Self {
        Self::with_deadlock_timeout(value, DEADLOCK_AFTER_NS)
    }

    /// A lock whose waiters report a deadlock after `ns` instead of the default (debug builds).
    const fn with_deadlock_timeout(value: T, ns: u64) -> Self {
        #[cfg(not(debug_assertions))]
        let _ = ns;
        Self {
            inner: spin::Mutex::new(value),
            #[cfg(debug_assertions)]
            holder_cpu: AtomicUsize::new(0),
            #[cfg(debug_assertions)]
            holder_site: AtomicPtr::new(core::ptr::null_mut()),
            #[cfg(debug_assertions)]
            deadlock_after_ns: ns,
        }
    }

    #[track_caller]
    pub fn lock(&self) -> IrqSpinLockGuard<'_, T> {
        let site = Location::caller();
        let interrupts_were_enabled = interrupts::are_enabled();
        interrupts::disable();
        let guard = match self.inner.try_lock() {
            Some(guard) => guard,
            None => self.lock_contended(site),
        };
        #[cfg(debug_assertions)]
        {
            self.holder_cpu
                .store(crate::arch::percpu::cpu_index() + 1, Ordering::Relaxed);
            self.holder_site
                .store((site as *const Location).cast_mut(), Ordering::Relaxed);
        }
        #[cfg(not(debug_assertions))]
        let _ = site;
        IrqSpinLockGuard {
            guard: ManuallyDrop::new(guard),
            #[cfg(debug_assertions)]
            lock: self,
            interrupts_were_enabled,
        }
    }

    fn lock_contended(&self, site: &'static Location<'static>) -> spin::MutexGuard<'_, T> {
        #[cfg(debug_assertions)]
        let started = crate::time::now_ns();
        let mut spins: u32 = 0;
        loop {
            if let Some(guard) = self.inner.try_lock() {
                return guard;
            }
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            #[cfg(debug_assertions)]
            if spins % 4096 == 0 && crate::time::now_ns() - started > self.deadlock_after_ns {
                self.report_deadlock(site, started);
            }
            #[cfg(not(debug_assertions))]
            let _ = site;
        }
    }

    /// Panics naming both sides. Allocates nothing: the stuck lock may be the heap's.
    #[cfg(debug_assertions)]
    fn report_deadlock(&self, site: &'static Location<'static>, started: u64) -> ! {
        let holder = self.holder_cpu.load(Ordering::Relaxed);
        let holder_site = self.holder_site.load(Ordering::Relaxed);
        // SAFETY: `holder_site` is null or a `&'static Location` stored by `lock`.
        let holder_site = unsafe { holder_site.as_ref() };
        panic!(
            "spinlock deadlock: CPU {} waited {} ms at {} for a lock held by CPU {} (taken at {})",
            crate::arch::percpu::cpu_index(),
            (crate::time::now_ns() - started) / 1_000_000,
            site,
            Holder(holder.checked_sub(1)),
            Holder(holder_site),
        )
    }

    /// Whether someone holds the lock now (a hint: it may change at once).
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Releases a lock whose holder will never run again.
    ///
    /// # Safety
    /// The holder must be stopped for good (a failed context on the panic path), so that no
    /// guard of it is ever used or dropped.
    pub unsafe fn force_unlock(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.force_unlock() };
    }
}

impl<T> Deref for IrqSpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqSpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for IrqSpinLockGuard<'_, T> {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        self.lock.holder_cpu.store(0, Ordering::Relaxed);
        // SAFETY: dropped exactly once, here; the lock is released before interrupts return.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if self.interrupts_were_enabled {
            interrupts::enable();
        }
    }
}

/// Prints a lock holder's CPU or site, or `?` when none was recorded.
#[cfg(debug_assertions)]
struct Holder<T>(Option<T>);

#[cfg(debug_assertions)]
impl<T: core::fmt::Display> core::fmt::Display for Holder<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("?"),
        }
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::IrqSpinLock;
    use crate::ktest;

    ktest! {
        /// Guards restore the interrupt state they found, and the lock works across CPUs.
        fn guards_restore_interrupts_and_exclude_each_other() {
            use core::sync::atomic::{AtomicU64, Ordering};
            use x86_64::instructions::interrupts;
            let lock = IrqSpinLock::new(0u64);
            assert!(interrupts::are_enabled());
            {
                let _guard = lock.lock();
                assert!(!interrupts::are_enabled(), "interrupts on while an IrqSpinLock is held");
            }
            assert!(interrupts::are_enabled(), "interrupts not restored");
            let rounds = 2_000 * ktest::stress_factor();
            let shadow = AtomicU64::new(0);
            let everyone = crate::arch::percpu::CpuSet::all_online();
            crate::arch::smp::run_in_idle(everyone, &|| {
                for _ in 0..rounds {
                    let mut value = lock.lock();
                    // A non-atomic read-modify-write: lost updates if two CPUs overlap.
                    let seen = *value;
                    shadow.fetch_add(1, Ordering::Relaxed);
                    *value = seen + 1;
                }
            });
            assert_eq!(*lock.lock(), rounds * everyone.len() as u64);
            assert_eq!(shadow.load(Ordering::Relaxed), rounds * everyone.len() as u64);
        }
    }

    ktest! {
        /// A lock taken twice on one CPU is reported as a deadlock naming both sites.
        fn deadlock_is_reported_with_cpu_and_site() {
            if !cfg!(debug_assertions) {
                return ktest::skip("needs a debug build");
            }
            let lock = IrqSpinLock::with_deadlock_timeout((), 50_000_000);
            let report = ktest::catch_panic(|| {
                let _first = lock.lock();
                let _second = lock.lock();
            })
            .expect_err("taking a held lock did not report a deadlock");
            let text = report.as_str();
            assert!(text.contains("spinlock deadlock: CPU 0 waited"), "{text}");
            assert!(text.contains("held by CPU 0"), "{text}");
            assert!(text.contains("kernel/src/sync/spinlock.rs"), "no site in: {text}");
        }
    }
}
