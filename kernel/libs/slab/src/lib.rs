//! A type-stable slab allocator with constructors, per-CPU object caches and RCU-deferred page
//! freeing (`SLAB_TYPESAFE_BY_RCU`), written against a small [`Platform`] trait so that the host
//! can test it.
//!
//! # What a cache owns
//!
//! A [`KmemCache`] hands out objects of one size and alignment. It owns:
//!
//! * **Slabs**: runs of `2^order` pages from [`Platform::alloc_pages`], aligned to their size.
//!   Each starts with a header (owning cache, free list, free count, list links, magic,
//!   generation, the node for a deferred free) followed by fixed-size slots. Because slabs are
//!   naturally aligned, the header of an object's slab is `object & !(slab_bytes - 1)`: finding
//!   it is O(1). All metadata lives in the slabs and in the cache itself; the crate never uses
//!   `alloc`, so the kernel heap may sit on top of it.
//! * **Per-CPU magazines** (module `percpu`): a small stack of free objects per CPU, so `alloc` and
//!   `free` take no shared lock in the common case.
//! * **Shared state** behind one spinlock: the partial list (slabs with some free objects), the
//!   empty list (a reserve of [`EMPTY_RESERVE`] fully free slabs; more go back to the platform),
//!   the count of full slabs and the shared statistics.
//!
//! # Locks, and what they protect
//!
//! | lock | protects |
//! | --- | --- |
//! | a CPU's magazine try-lock (`busy`) | that CPU's magazine and its alloc/free counters |
//! | the cache's shared spinlock | the slab lists, every slab header's free list, free count and links, the shared counters |
//!
//! Order: magazine → shared lock → the platform (page allocator, RCU callback queue). The
//! platform is never called with the shared lock held (except to turn interrupts back on as it
//! is released): new slabs are allocated and constructed outside it, and slabs leave the lists
//! under it but go back to the platform after it is dropped. Statistics read by
//! [`KmemCache::info`] without a lock are atomics.
//!
//! # Calling context
//!
//! A magazine is protected by a try-lock: a call that finds its CPU's magazine taken (a CPU
//! re-entered by an interrupt, or two host threads claiming one CPU id) uses the shared path
//! instead, so `alloc` and `free` are sound whatever [`Platform::cpu_id`] returns. The shared
//! lock is held with interrupts off ([`Platform::interrupts_off`]), so an interrupt never finds
//! its own CPU holding it. Together these make `alloc` and `free` safe to call from an
//! interrupt handler, while the common case, a magazine hit, leaves interrupts alone. Handing
//! slabs of a `TYPESAFE_BY_RCU` cache to the platform's grace-period machinery may have rules of
//! its own (the kernel's `call_rcu` wants process context).
//!
//! # The constructor contract
//!
//! The constructor runs once per object, when its slab is created — never on `alloc`. The
//! caller frees an object back in its constructed state (Linux's rule: "after the ctor has run,
//! the object should be in the same state as it is after it's freed"). So an object handed out
//! is always in constructed state, whether it is new or reused. Caches that register a check
//! hook have it called on every free in debug builds, and in every build with
//! [`CacheFlags::CONSTRUCTED_CHECK`]; a false result panics.
//!
//! # Where the free-list link lives, and why
//!
//! While an object sits on its slab's free list, a link to the next free object must be stored
//! somewhere. By default it lives in a trailer word *after* the object, so it never overlaps a
//! field that the constructor set up or that a stale reader of a `TYPESAFE_BY_RCU` cache may
//! load — freeing never writes inside the object at all. A cache may name an offset inside the
//! object instead ([`KmemCache::with_free_link_offset`]): that word must be neither set up by the
//! constructor nor read by stale readers. While an object is handed out, the trailer holds a
//! tag that makes double frees detectable with one compare-and-swap.
//!
//! # `TYPESAFE_BY_RCU`
//!
//! A freed object may be reused at once for a new object of the same cache, but a slab's pages
//! go back to the platform only through [`Platform::defer_after_grace_period`], so a reader
//! that found an object inside an RCU read section always reads memory holding a constructed
//! object of this cache (it must still revalidate identity after taking a reference). The
//! generation in the slab header ([`KmemCache::slab_generation`]) changes when its pages go back,
//! so tests can prove that no page is returned inside a grace period.
//!
//! # Debugging aids
//!
//! Always on: foreign pointers (not an object of this cache) and, with the default link
//! placement, double frees are detected on `free`, which panics with a report naming the cache
//! and the address. Flags add red zones (also detecting double frees when the link is inside
//! the object), poisoning (not for typesafe or constructed caches, whose free objects must keep
//! their contents), the constructed-state check, and immediate-LIFO reuse.
#![cfg_attr(not(test), no_std)]

mod cache;
mod debug;
mod layout;
mod percpu;
mod slab;
mod sync;
mod typed;

pub use cache::{EMPTY_RESERVE, KmemCache, SlabInfo};
pub use typed::{SlabObject, TypedCache};

use core::ptr::{self, NonNull};

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// CPUs a cache serves; [`Platform::cpu_id`] must be below this. The kernel's bound,
/// [`ksync::MAX_CPUS`].
#[cfg(not(loom))]
pub const MAX_CPUS: usize = ksync::MAX_CPUS;
/// CPUs a cache serves; [`Platform::cpu_id`] must be below this (small under loom).
#[cfg(loom)]
pub const MAX_CPUS: usize = 2;

/// What the allocator needs from the kernel (or from a host test).
pub trait Platform: Sync {
    /// The calling CPU's index, below [`MAX_CPUS`].
    fn cpu_id(&self) -> usize;

    /// `2^order` contiguous pages aligned to their size (`PAGE_SIZE << order` bytes, as a buddy
    /// allocator gives them), or `None`.
    fn alloc_pages(&self, order: u32) -> Option<NonNull<u8>>;

    /// Takes back pages from [`Platform::alloc_pages`].
    ///
    /// # Safety
    ///
    /// `pages` came from `alloc_pages(order)` with this `order` and is not used any more.
    unsafe fn free_pages(&self, pages: NonNull<u8>, order: u32);

    /// Runs `callback(node)` after an RCU grace period (every read section that may have begun
    /// before this call has ended), in process context. Used for `TYPESAFE_BY_RCU` caches.
    ///
    /// # Safety
    ///
    /// `node` stays valid, and is not touched by anyone but the platform, until the callback
    /// runs; `callback(node)` is sound to call once after a grace period.
    unsafe fn defer_after_grace_period(
        &self,
        node: *mut DeferredFree,
        callback: unsafe fn(*mut DeferredFree),
    );

    /// Turns off the calling CPU's interrupts and says whether they were on; called before the
    /// cache's shared lock is taken. The default does nothing (no interrupts: host threads).
    fn interrupts_off(&self) -> bool {
        false
    }

    /// Turns the calling CPU's interrupts back on if `were_on` (what the matching
    /// [`Platform::interrupts_off`] returned); called after the shared lock is released.
    fn interrupts_restore(&self, were_on: bool) {
        let _ = were_on;
    }
}

/// A node handed to [`Platform::defer_after_grace_period`], embedded in the slab header. From
/// that call until the callback runs, the platform may use its link and words as it likes (for
/// example as an RCU head on a per-CPU callback list).
#[repr(C)]
pub struct DeferredFree {
    link: *mut DeferredFree,
    words: [usize; 4],
}

impl DeferredFree {
    pub(crate) const fn new() -> Self {
        Self {
            link: ptr::null_mut(),
            words: [0; 4],
        }
    }

    /// An intrusive link for the platform's queue of pending nodes.
    pub fn link(&mut self) -> &mut *mut DeferredFree {
        &mut self.link
    }

    /// Scratch space for the platform.
    pub fn platform_words(&mut self) -> &mut [usize; 4] {
        &mut self.words
    }
}

/// Behaviour and debugging flags of a cache; combine with [`CacheFlags::union`] or `|`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CacheFlags(u32);

impl CacheFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// Slab pages go back to the platform only after an RCU grace period; objects are reused
    /// at once.
    pub const TYPESAFE_BY_RCU: Self = Self(1 << 0);
    /// A pattern before and after each object, checked on alloc and free.
    pub const RED_ZONE: Self = Self(1 << 1);
    /// Fill freed objects with a pattern, checked when they are handed out again. Not allowed
    /// with `TYPESAFE_BY_RCU` (stale readers would see it) or with a constructor (free objects
    /// must stay constructed).
    pub const POISON: Self = Self(1 << 2);
    /// Immediate LIFO reuse across CPUs: no magazines; every alloc and free goes through the
    /// shared lock, and the object freed last (on any CPU) is the next one handed out. Exposes
    /// reuse races in tests.
    pub const LIFO_REUSE: Self = Self(1 << 3);
    /// Call the cache's check hook on every free, in release builds too.
    pub const CONSTRUCTED_CHECK: Self = Self(1 << 4);

    /// Both sets of flags.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for CacheFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}
