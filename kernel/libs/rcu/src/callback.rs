//! Intrusive callback nodes and the per-CPU list that holds them until their grace period ends.
//!
//! A node ([`RcuHead`]) lives inside the object it frees, so queueing a callback never
//! allocates. From [`Rcu::call_rcu`] until its callback is invoked the node belongs to the
//! [`CallbackList`] of the CPU that queued it; only that CPU pushes to and pops from the list,
//! under the list's mutex (uncontended, but it keeps the list sound if a caller breaks the
//! one-CPU rule, and it gives loom the happens-before edges it checks).
//!
//! [`Rcu::call_rcu`]: crate::Rcu::call_rcu

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;

/// A function run once a grace period has passed, with the node it was queued with.
///
/// It typically recovers the enclosing object from the node (the node's address minus its
/// offset in the object) and frees it.
pub type Callback = unsafe fn(*mut RcuHead);

/// Intrusive callback node, embedded in an object that is to be freed after a grace period
/// (the counterpart of Linux's `rcu_head`).
///
/// Its contents are private to this crate and meaningful only while the node is queued. The
/// fields sit in an `UnsafeCell` because readers may still hold shared references to the
/// enclosing object while the node is written (that is the point of deferring the free).
pub struct RcuHead {
    link: UnsafeCell<MaybeUninit<Link>>,
}

/// What a queued node records; written in full by [`RcuHead::prepare`] before the node is
/// linked into a list.
#[derive(Clone, Copy)]
struct Link {
    /// The next node of the same list, or null at the tail.
    next: *mut RcuHead,
    /// What to run once the grace period has passed.
    callback: Callback,
    /// The number of the grace period that must complete first.
    target: u64,
}

// SAFETY: an `RcuHead` has no public accessors; its cell is read and written only by this crate
// while the node is queued, and then only by the CPU that owns the list, under the list's mutex
// (see `CallbackList`). Moving or sharing an unqueued node between threads touches nothing.
unsafe impl Send for RcuHead {}
// SAFETY: as for `Send`: a shared reference gives no access to the cell's contents.
unsafe impl Sync for RcuHead {}

impl RcuHead {
    /// An unqueued node.
    pub const fn new() -> Self {
        Self {
            link: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Records `callback` and `target` in `node`, unlinked.
    ///
    /// # Safety
    ///
    /// `node` is valid for writes and no one else accesses its cell until the node has been
    /// handed back by [`CallbackList::pop_ready`].
    pub(crate) unsafe fn prepare(node: *mut RcuHead, callback: Callback, target: u64) {
        let link = Link {
            next: ptr::null_mut(),
            callback,
            target,
        };
        // SAFETY: `node` is valid for writes and ours alone (the caller's contract); the cell
        // makes writing through it sound even while others hold `&RcuHead`.
        unsafe { UnsafeCell::raw_get(&raw const (*node).link).write(MaybeUninit::new(link)) };
    }

    /// The link of a node that has been prepared.
    ///
    /// # Safety
    ///
    /// `node` is valid, was passed to [`RcuHead::prepare`], and the caller has exclusive
    /// access to its cell.
    unsafe fn link<'a>(node: *mut RcuHead) -> &'a mut Link {
        // SAFETY: valid, prepared and exclusive (the caller's contract), so the `MaybeUninit`
        // is initialised and no other reference to the contents exists.
        unsafe { (*UnsafeCell::raw_get(&raw const (*node).link)).assume_init_mut() }
    }
}

impl Default for RcuHead {
    fn default() -> Self {
        Self::new()
    }
}

/// A FIFO of prepared nodes of one CPU.
///
/// Invariant: targets never decrease from head to tail, because a CPU queues in program order
/// and reads a never-decreasing grace-period counter for each node. So the nodes whose grace
/// period has completed always form a prefix, and popping that prefix runs callbacks in the
/// order they were queued.
pub(crate) struct CallbackList {
    head: *mut RcuHead,
    tail: *mut RcuHead,
}

// SAFETY: the list owns its nodes (the `call_rcu` contract gives them to it until they are
// popped) and the nodes themselves are `Send`; the raw pointers are just the links.
unsafe impl Send for CallbackList {}

impl CallbackList {
    pub(crate) const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    /// Appends `node`.
    ///
    /// # Safety
    ///
    /// `node` was just prepared with a target no smaller than any node already queued, and the
    /// list owns it until it is popped.
    pub(crate) unsafe fn push(&mut self, node: *mut RcuHead) {
        if self.tail.is_null() {
            self.head = node;
        } else {
            // SAFETY: the tail is a prepared node owned by this list, which we hold `&mut`.
            unsafe { RcuHead::link(self.tail).next = node };
        }
        self.tail = node;
    }

    /// Unlinks the first node if its grace period (`target`) is at most `completed`, and
    /// returns it with its callback. The list no longer touches the node afterwards.
    pub(crate) fn pop_ready(&mut self, completed: u64) -> Option<(*mut RcuHead, Callback)> {
        if self.head.is_null() {
            return None;
        }
        let node = self.head;
        // SAFETY: the head is a prepared node owned by this list, which we hold `&mut`.
        let link = unsafe { RcuHead::link(node) };
        if link.target > completed {
            return None;
        }
        self.head = link.next;
        if self.head.is_null() {
            self.tail = ptr::null_mut();
        }
        Some((node, link.callback))
    }
}
