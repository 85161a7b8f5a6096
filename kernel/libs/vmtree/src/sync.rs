//! The crate's synchronisation primitives: the atomics from the shared shim (kernel/libs/ksync),
//! so that `--cfg loom` replaces them with loom's models, and the node cell below.
//!
//! Besides the atomics, [`Published`] holds the contents of every node. Outside loom it is a
//! plain wrapper (nodes are immutable once published, so readers need no atomics inside them);
//! under loom it is loom's `UnsafeCell`, whose causality tracking reports a reader that reads a
//! node's contents without a happens-before edge to the writer that filled them in: that is what
//! checks the Release publication of the root against the readers' Acquire load. Freeing a node
//! counts as a write to its contents there, so loom also reports a node freed while a reader
//! may still read it (a grace period too short).

pub(crate) use ksync::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, const_unless_loom};

/// The contents of a node: written only while the node is private to the writer that created
/// it, read by anyone once it has been published.
#[cfg(not(loom))]
pub(crate) struct Published<T>(T);

#[cfg(not(loom))]
impl<T> Published<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    pub(crate) fn get(&self) -> &T {
        &self.0
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The contents of a node: written only while the node is private to the writer that created
/// it, read by anyone once it has been published.
#[cfg(loom)]
pub(crate) struct Published<T>(loom::cell::UnsafeCell<T>);

#[cfg(loom)]
impl<T> Published<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    pub(crate) fn get(&self) -> &T {
        // SAFETY: nobody writes a published node, and a node is written (`get_mut`) only through
        // `&mut self`; loom checks here that this read happens after those writes.
        self.0.with(|p| unsafe { &*p })
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` is exclusive.
        self.0.with_mut(|p| unsafe { &mut *p })
    }
}

/// Under loom, freeing a node is a write: a reader whose read is not ordered before the free (by
/// the reclaimer's grace period) is a causality violation.
#[cfg(loom)]
impl<T> Drop for Published<T> {
    fn drop(&mut self) {
        self.0.with_mut(|_| ());
    }
}
