//! The slab header and the intrusive lists of slabs.
//!
//! A slab is `PAGE_SIZE << order` bytes from the platform, aligned to its size, so the header of
//! the slab an object lives in is at `object & !(slab_bytes - 1)`: O(1), with no lookup table.
//! The header sits at the start of the slab (see [`crate::layout`]).
//!
//! Fields written after the slab is created (`free_head`, `free_count`, `list`, `prev`, `next`)
//! are protected by the owning cache's shared lock. `magic` and `cache` are written once, before
//! the first object of the slab is handed out, and are read without a lock by `free` to reject
//! foreign pointers. `generation` is atomic: tests read it from stale-reader threads.

use crate::DeferredFree;
use crate::sync::AtomicUsize;
use core::ptr;

/// `magic` of a live slab header.
pub(crate) const SLAB_MAGIC: usize = 0x51ab_c0de_51ab_c0de_u64 as usize;

/// Which list of its cache a slab is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ListKind {
    /// Being set up, not yet visible to the cache.
    Detached,
    /// Some objects free, some not: on the partial list.
    Partial,
    /// Every object free: on the empty list (the reserve).
    Empty,
    /// No object free: on no list, only counted.
    Full,
    /// Taken off the lists to go back to the platform (maybe after a grace period).
    Retired,
}

#[repr(C)]
pub(crate) struct SlabHeader {
    /// [`SLAB_MAGIC`] once initialised.
    pub(crate) magic: usize,
    /// The owning `KmemCache<P>`, type-erased.
    pub(crate) cache: *const (),
    /// Even and unique within the cache while the slab is live (assigned when it becomes
    /// visible), made odd when its pages go back to the platform.
    pub(crate) generation: AtomicUsize,
    /// First object of the slab's free list, or null.
    pub(crate) free_head: *mut u8,
    /// Objects on the free list; the others are handed out or parked in per-CPU magazines.
    pub(crate) free_count: usize,
    pub(crate) list: ListKind,
    pub(crate) prev: *mut SlabHeader,
    /// Next slab on the same list, or on a private retire list.
    pub(crate) next: *mut SlabHeader,
    /// Handed to the platform to free the slab after a grace period.
    pub(crate) deferred: DeferredFree,
}

/// A doubly linked list of slab headers, linked through `prev`/`next`.
pub(crate) struct SlabList {
    head: *mut SlabHeader,
    tail: *mut SlabHeader,
    len: usize,
}

impl SlabList {
    pub(crate) const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    pub(crate) fn head(&self) -> *mut SlabHeader {
        self.head
    }

    pub(crate) fn tail(&self) -> *mut SlabHeader {
        self.tail
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// # Safety
    ///
    /// `slab` points to a live header on no list; the caller has exclusive access to the links
    /// of every header on this list (the cache's shared lock).
    pub(crate) unsafe fn push_front(&mut self, slab: *mut SlabHeader) {
        // SAFETY: per the contract, `slab` and `self.head` (if any) are live headers we may
        // modify.
        unsafe {
            (*slab).prev = ptr::null_mut();
            (*slab).next = self.head;
            if self.head.is_null() {
                self.tail = slab;
            } else {
                (*self.head).prev = slab;
            }
        }
        self.head = slab;
        self.len += 1;
    }

    /// # Safety
    ///
    /// `slab` is on this list; the caller has exclusive access to the list's links.
    pub(crate) unsafe fn remove(&mut self, slab: *mut SlabHeader) {
        // SAFETY: `slab` and its neighbours are live headers on this list.
        unsafe {
            let (prev, next) = ((*slab).prev, (*slab).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).prev = prev;
            }
            (*slab).prev = ptr::null_mut();
            (*slab).next = ptr::null_mut();
        }
        self.len -= 1;
    }
}

/// Slabs taken off the cache's lists under its lock, to be given back after it is dropped;
/// singly linked through `next`.
pub(crate) struct RetireList {
    head: *mut SlabHeader,
}

impl RetireList {
    pub(crate) const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
        }
    }

    /// # Safety
    ///
    /// `slab` is a live header on no other list, owned by the caller.
    pub(crate) unsafe fn push(&mut self, slab: *mut SlabHeader) {
        // SAFETY: per the contract the header is ours to link.
        unsafe { (*slab).next = self.head };
        self.head = slab;
    }

    /// # Safety
    ///
    /// The headers on this list are still live.
    pub(crate) unsafe fn pop(&mut self) -> Option<*mut SlabHeader> {
        let slab = self.head;
        if slab.is_null() {
            return None;
        }
        // SAFETY: `slab` is a live header on this list.
        self.head = unsafe { (*slab).next };
        Some(slab)
    }
}
