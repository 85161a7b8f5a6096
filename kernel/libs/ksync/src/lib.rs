//! The one place the lock-free crates (rcu, slab, vmtree) take their atomics, fences, mutex,
//! interior-mutability cell and spin hint from, so that one switch instruments them all.
//!
//! Normal builds use `core`'s atomics, a `spin` mutex and `core::cell::UnsafeCell`; builds with
//! `--cfg loom` (set for every crate at once through `RUSTFLAGS`) swap in loom's instrumented
//! types, so that each crate's models in `tests/loom.rs` explore the interleavings of the real
//! code. Loom's types have no `const` constructors: [`const_unless_loom!`] declares the
//! functions that are `const` only without loom.
//!
//! It also holds the one bound on CPU indices, [`MAX_CPUS`], which the kernel and the crates
//! with per-CPU state (rcu, slab) all size their tables by: every one of them already depends
//! on this crate, so none carries a number of its own that could disagree.
#![no_std]

use core::ops::DerefMut;

/// The most CPUs the kernel runs on: CPU indices are `0..MAX_CPUS` (0 is the bootstrap CPU).
/// At most 64, so that a `u64` bitmask names any set of CPUs (the kernel's `CpuSet`, RCU's
/// online and holding masks). A crate's loom models may use a smaller bound of their own under
/// `cfg(loom)`, to keep the models small; normal builds all use this one.
pub const MAX_CPUS: usize = 64;
const _: () = assert!(MAX_CPUS <= u64::BITS as usize, "CPU sets are u64 bitmasks");

#[cfg(loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(not(loom))]
pub use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Keeps the compiler from moving memory accesses across a boundary. It emits no instruction;
/// loom has no counterpart and needs none (it never reorders accesses within a thread), so it
/// is `core`'s in both builds.
pub use core::sync::atomic::compiler_fence;

/// Defines a function that is `const` except under loom, whose types have no `const`
/// constructors.
#[macro_export]
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

/// A mutual-exclusion lock: a spinning lock in normal builds, loom's mutex under loom.
pub struct Mutex<T> {
    #[cfg(not(loom))]
    inner: spin::mutex::SpinMutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

impl<T> Mutex<T> {
    const_unless_loom! {
        pub fn new(value: T) -> Self {
            Self {
                #[cfg(not(loom))]
                inner: spin::mutex::SpinMutex::new(value),
                #[cfg(loom)]
                inner: loom::sync::Mutex::new(value),
            }
        }
    }

    /// Locks, spinning (under loom: blocking the modelled thread) until the lock is free.
    pub fn lock(&self) -> impl DerefMut<Target = T> + '_ {
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

    /// Whether someone holds the lock now: a snapshot, for diagnostics (a test runner looking
    /// for a lock that a failed test left held), never for deciding who may take it.
    pub fn is_locked(&self) -> bool {
        #[cfg(not(loom))]
        {
            self.inner.is_locked()
        }
        #[cfg(loom)]
        {
            // Poisoning cannot happen here: a panic under the lock already failed the model.
            self.inner.try_lock().is_err()
        }
    }
}

/// An `UnsafeCell` whose accesses go through [`UnsafeCell::with_mut`], loom's interface, so that
/// loom can check them for overlapping accesses.
#[cfg(not(loom))]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the contents; the caller decides who may dereference it.
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// Called in every busy-wait loop: a pause hint, or under loom a yield so that the model lets
/// the thread holding what we wait for run.
pub fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
