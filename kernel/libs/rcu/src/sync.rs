//! The one place where the crate takes its atomics and its mutex from.
//!
//! Normal builds use `core`'s atomics and a `spin` mutex; `--cfg loom` builds swap in loom's
//! instrumented types so that the loom models in `tests/loom.rs` explore every interleaving of
//! the real algorithm. Loom's types have no `const` constructors, which is why [`Rcu::new`]
//! is a `const fn` only without loom.
//!
//! [`Rcu::new`]: crate::Rcu::new

use core::ops::DerefMut;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Keeps the compiler from moving memory accesses across a read-side boundary. It emits no
/// instruction; loom has no counterpart, and the models do not need one (loom never reorders
/// accesses within a thread), so it is `core`'s in both builds.
pub(crate) use core::sync::atomic::compiler_fence;

/// Defines a function that is `const` except under loom, whose types have no `const`
/// constructors.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use const_unless_loom;

/// A mutual-exclusion lock: a spinning lock in normal builds, loom's mutex under loom.
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: spin::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

impl<T> Mutex<T> {
    const_unless_loom! {
        pub(crate) fn new(value: T) -> Self {
            Self {
                #[cfg(not(loom))]
                inner: spin::Mutex::new(value),
                #[cfg(loom)]
                inner: loom::sync::Mutex::new(value),
            }
        }
    }

    /// Locks, spinning (or, under loom, blocking the modelled thread) until the lock is free.
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
