//! The one place the crate takes its atomics, its lock and its interior-mutability cell from.
//!
//! Normal builds use `core`'s atomics, a `spin` mutex and `core::cell::UnsafeCell`; builds with
//! `--cfg loom` swap in loom's instrumented types, so that the models in `tests/loom.rs` explore
//! the interleavings of the real allocator (loom's cell also checks that the per-CPU try-lock
//! really gives exclusive access to a magazine). Loom's types have no `const` constructors,
//! which is why [`KmemCache::new`](crate::KmemCache::new) is a `const fn` only without loom.

use core::ops::DerefMut;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Defines a function that is `const` except under loom.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($args:tt)*) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $name($($args)*) -> $ret $body

        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $name($($args)*) -> $ret $body
    };
}
pub(crate) use const_unless_loom;

/// A mutual-exclusion lock: a spinning lock in normal builds, loom's mutex under loom.
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: spin::mutex::SpinMutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

impl<T> Mutex<T> {
    const_unless_loom! {
        pub(crate) fn new(value: T) -> Self {
            Self {
                #[cfg(not(loom))]
                inner: spin::mutex::SpinMutex::new(value),
                #[cfg(loom)]
                inner: loom::sync::Mutex::new(value),
            }
        }
    }

    /// Locks, spinning (under loom: blocking the modelled thread) until the lock is free.
    pub(crate) fn lock(&self) -> impl DerefMut<Target = T> + '_ {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            // A panic while holding the lock already fails the model; poisoning adds nothing.
            self.inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

/// An `UnsafeCell` whose accesses go through [`UnsafeCell::with_mut`], loom's interface, so
/// that loom can check them for overlapping accesses.
#[cfg(not(loom))]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the contents; the caller decides who may dereference it.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Called in every busy-wait loop: a pause hint, or under loom a yield so that the model lets
/// the thread holding what we wait for run.
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
