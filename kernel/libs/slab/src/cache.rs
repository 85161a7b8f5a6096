//! [`KmemCache`]: the alloc and free paths, refill and flush of the per-CPU magazines, slab
//! creation and retirement, statistics.
//!
//! # Paths
//!
//! * `alloc`: pop from the calling CPU's magazine; if it is empty, refill [`BATCH`] objects
//!   under the shared lock (from the slab of the last shared free, else the partial list, else
//!   the empty list, else a new slab allocated and constructed outside the lock).
//! * `free`: validate the pointer (O(1) through the slab header), run the debug checks, push onto
//!   the calling CPU's magazine; a full magazine first flushes its [`BATCH`] oldest objects.
//! * Shared path (magazine busy, or [`CacheFlags::LIFO_REUSE`]): one object straight from or to
//!   its slab under the shared lock. Frees make the slab the "hot" one, which the next take uses
//!   first, and slab free lists are LIFO, so the last object freed is the next handed out.
//!
//! # Slab life cycle
//!
//! Detached (being constructed, outside the lock) → on the empty list (visible) → partial / full
//! as objects leave it → back to the empty list when every object is free. More than
//! [`EMPTY_RESERVE`] empty slabs, or [`KmemCache::shrink`], retire the oldest empty slabs: off the
//! lists under the lock, then, after the lock is dropped, straight back to the platform or, for
//! `TYPESAFE_BY_RCU` caches, through [`Platform::defer_after_grace_period`]. A retired slab is
//! never used again: its objects are all free, nothing writes to them, and its header (with the
//! deferred-free node) stays intact until its pages go back.
//!
//! [`BATCH`]: crate::percpu::BATCH

use crate::layout::ObjectLayout;
use crate::percpu::{BATCH, CpuCache, Magazine};
use crate::slab::{ListKind, RetireList, SLAB_MAGIC, SlabHeader, SlabList};
use crate::sync::{AtomicUsize, Mutex, Ordering, const_unless_loom};
use crate::{CacheFlags, DeferredFree, MAX_CPUS, Platform};
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

/// Fully free slabs a cache keeps for reuse; more go back to the platform.
pub const EMPTY_RESERVE: usize = 2;

/// A cache of equally sized objects. See the crate documentation.
///
/// `alloc` takes `&'static self`: slabs point back to their cache (for `free`'s ownership check
/// and the deferred page free), so a cache that has handed out objects must never move or be
/// dropped. Caches are statics, fields of statics, or leaked.
pub struct KmemCache<P: Platform + 'static> {
    name: &'static str,
    flags: CacheFlags,
    align: usize,
    pub(crate) layout: ObjectLayout,
    pub(crate) ctor: Option<unsafe fn(*mut u8)>,
    pub(crate) check: Option<unsafe fn(*const u8) -> bool>,
    platform: &'static P,
    shared: Mutex<Shared>,
    cpus: [CpuCache; MAX_CPUS],
    /// Slabs off the lists whose pages have not gone back to the platform yet.
    pending: AtomicUsize,
    slabs_freed: AtomicUsize,
}

/// What the shared lock protects (besides the free lists and links inside the slab headers).
struct Shared {
    partial: SlabList,
    empty: SlabList,
    full: usize,
    /// The slab of the last object freed through the shared path or a flush; taken from first.
    hot: *mut SlabHeader,
    /// Generation the next slab to become visible gets.
    next_generation: usize,
    /// Allocations and frees through the shared path (the magazines count their own).
    allocs: usize,
    frees: usize,
    slabs_created: usize,
}

// SAFETY: the raw pointers are slab headers owned by the cache; the shared lock serialises
// every access to them through `Shared`.
unsafe impl Send for Shared {}

impl Shared {
    const fn new() -> Self {
        Self {
            partial: SlabList::new(),
            empty: SlabList::new(),
            full: 0,
            hot: ptr::null_mut(),
            next_generation: 2,
            allocs: 0,
            frees: 0,
            slabs_created: 0,
        }
    }

    fn list(&mut self, kind: ListKind) -> Option<&mut SlabList> {
        match kind {
            ListKind::Partial => Some(&mut self.partial),
            ListKind::Empty => Some(&mut self.empty),
            ListKind::Detached | ListKind::Full | ListKind::Retired => None,
        }
    }

    /// Moves `slab` from the list it is on to `to`.
    ///
    /// # Safety
    ///
    /// `slab` is a live slab of this cache, visible (not detached or retired); the caller holds
    /// the shared lock (it has `&mut self`).
    unsafe fn move_slab(&mut self, slab: *mut SlabHeader, to: ListKind) {
        // SAFETY: per the contract the header is live and its links are ours under the lock.
        unsafe {
            let from = (*slab).list;
            match self.list(from) {
                Some(list) => list.remove(slab),
                None => self.full -= 1,
            }
            match self.list(to) {
                Some(list) => list.push_front(slab),
                None => self.full += 1,
            }
            (*slab).list = to;
        }
    }

    fn slabs(&self) -> usize {
        self.partial.len() + self.empty.len() + self.full
    }
}

/// The shared lock's guard, which turns the platform's interrupts back on after releasing it.
struct SharedGuard<G: DerefMut<Target = Shared>, P: Platform + 'static> {
    guard: ManuallyDrop<G>,
    platform: &'static P,
    were_on: bool,
}

impl<G: DerefMut<Target = Shared>, P: Platform + 'static> Deref for SharedGuard<G, P> {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.guard
    }
}

impl<G: DerefMut<Target = Shared>, P: Platform + 'static> DerefMut for SharedGuard<G, P> {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.guard
    }
}

impl<G: DerefMut<Target = Shared>, P: Platform + 'static> Drop for SharedGuard<G, P> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        self.platform.interrupts_restore(self.were_on);
    }
}

/// A snapshot of a cache's state and statistics, printed like a line of `/proc/slabinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabInfo {
    /// The cache's name.
    pub name: &'static str,
    /// Objects handed out and not freed.
    pub active_objects: usize,
    /// Slots in the cache's live slabs (handed out, in magazines, or on free lists).
    pub total_objects: usize,
    /// Bytes per object, as the cache was created with.
    pub object_size: usize,
    /// Bytes per slot: the object, its trailer, red zones and padding.
    pub slot_size: usize,
    /// Slots per slab.
    pub objects_per_slab: usize,
    /// Pages per slab (a power of two).
    pub pages_per_slab: usize,
    /// Live slabs (not retired).
    pub slabs: usize,
    /// Pages held from the platform, including retired slabs whose free is still pending.
    pub pages: usize,
    /// Successful `alloc` calls.
    pub allocs: usize,
    /// `free` calls.
    pub frees: usize,
    /// Slabs allocated from the platform.
    pub slabs_created: usize,
    /// Slabs whose pages went back to the platform.
    pub slabs_freed: usize,
    /// Retired slabs whose pages have not gone back yet (waiting for a grace period).
    pub pending_frees: usize,
}

impl SlabInfo {
    /// Column names for lines printed by `Display`.
    pub const HEADER: &'static str = "# name                 <active_objs> <num_objs> <objsize> \
        <objperslab> <pagesperslab> : slabdata <active_slabs> <pages> \
        : stats <allocs> <frees> <slabs_created> <slabs_freed> <pending_frees>";
}

impl fmt::Display for SlabInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<22} {:>8} {:>8} {:>6} {:>4} {:>4} : slabdata {:>6} {:>6} : stats {} {} {} {} {}",
            self.name,
            self.active_objects,
            self.total_objects,
            self.object_size,
            self.objects_per_slab,
            self.pages_per_slab,
            self.slabs,
            self.pages,
            self.allocs,
            self.frees,
            self.slabs_created,
            self.slabs_freed,
            self.pending_frees,
        )
    }
}

const_unless_loom! {
    fn cpu_caches() -> [CpuCache; MAX_CPUS] {
        #[cfg(not(loom))]
        {
            [const { CpuCache::new() }; MAX_CPUS]
        }
        #[cfg(loom)]
        {
            core::array::from_fn(|_| CpuCache::new())
        }
    }
}

impl<P: Platform + 'static> KmemCache<P> {
    const_unless_loom! {
        /// A cache of objects of `size` bytes aligned to `align` (a power of two, at most a
        /// page). `ctor` runs once per object when its slab is created; `check` tells whether
        /// an object is in the state `ctor` leaves and is called on free in debug builds and
        /// with [`CacheFlags::CONSTRUCTED_CHECK`].
        ///
        /// Panics (at compile time in a `const`) on a bad size or alignment, or
        /// [`CacheFlags::POISON`] together with `TYPESAFE_BY_RCU` or a constructor.
        pub fn new(
            name: &'static str,
            size: usize,
            align: usize,
            flags: CacheFlags,
            ctor: Option<unsafe fn(*mut u8)>,
            check: Option<unsafe fn(*const u8) -> bool>,
            platform: &'static P,
        ) -> Self {
            if flags.contains(CacheFlags::POISON) {
                assert!(
                    !flags.contains(CacheFlags::TYPESAFE_BY_RCU),
                    "slab: POISON would overwrite objects that stale TYPESAFE_BY_RCU readers read"
                );
                assert!(ctor.is_none(), "slab: POISON would destroy the constructed state");
            }
            Self {
                name,
                flags,
                align,
                layout: ObjectLayout::new(size, align, flags, None),
                ctor,
                check,
                platform,
                shared: Mutex::new(Shared::new()),
                cpus: cpu_caches(),
                pending: AtomicUsize::new(0),
                slabs_freed: AtomicUsize::new(0),
            }
        }
    }

    const_unless_loom! {
        /// Keeps the free-list link at byte `offset` inside the object instead of in a trailer
        /// after it, saving a word per object. That word must be neither set up by the
        /// constructor nor loaded by stale readers, and must be word-aligned. Without a
        /// trailer, double frees are detected only with [`CacheFlags::RED_ZONE`].
        pub fn with_free_link_offset(self, offset: usize) -> Self {
            let mut cache = self;
            cache.layout = ObjectLayout::new(cache.layout.size, cache.align, cache.flags, Some(offset));
            cache
        }
    }

    /// The cache's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether someone holds the cache's shared lock now (a snapshot, for diagnostics such as a
    /// test runner's check for a lock left held; magazines are try-locked, so only this lock
    /// can make every later caller of the cache wait).
    pub fn is_locked(&self) -> bool {
        self.shared.is_locked()
    }

    /// Takes the shared lock with the platform's interrupts off, until the guard drops.
    fn lock_shared(&self) -> impl DerefMut<Target = Shared> + '_ {
        let were_on = self.platform.interrupts_off();
        SharedGuard {
            guard: ManuallyDrop::new(self.shared.lock()),
            platform: self.platform,
            were_on,
        }
    }

    pub(crate) fn flags(&self) -> CacheFlags {
        self.flags
    }

    /// An object in constructed state (or, without a constructor, with unspecified contents),
    /// or `None` when the platform has no pages left.
    pub fn alloc(&'static self) -> Option<NonNull<u8>> {
        let object = if self.flags.contains(CacheFlags::LIFO_REUSE) {
            self.alloc_shared()?
        } else {
            match self.cpu().try_lock() {
                Some(guard) => {
                    let object = guard.with_magazine(|magazine| match magazine.pop() {
                        Some(object) => Some(object),
                        None => {
                            self.refill(magazine)?;
                            magazine.pop()
                        }
                    })?;
                    guard.count_alloc();
                    object
                }
                None => self.alloc_shared()?,
            }
        };
        // SAFETY: `object` is a free slot of this cache that this call has taken.
        unsafe { self.on_alloc(object) };
        NonNull::new(object)
    }

    /// Gives an object back.
    ///
    /// Panics with a report naming the cache and the address on a pointer that is not an object
    /// of this cache, on a double free (see the crate documentation for when it is detected), on
    /// a red-zone overwrite, and when the check hook says the object is not in constructed state.
    ///
    /// # Safety
    ///
    /// `object` came from `alloc` of this cache, has not been freed since, and is back in the
    /// state the constructor leaves (the ctor contract). Nothing may use it afterwards except
    /// stale RCU readers of a `TYPESAFE_BY_RCU` cache. The ownership checks read the slab
    /// header that `object` would have, so a foreign pointer is reported only if that memory
    /// is readable.
    pub unsafe fn free(&self, object: NonNull<u8>) {
        let object = object.as_ptr();
        self.check_owner(object);
        // SAFETY: `object` is an object of this cache (just checked) that the caller gives up.
        unsafe { self.on_free(object) };
        if self.flags.contains(CacheFlags::LIFO_REUSE) {
            self.free_shared(object);
            return;
        }
        match self.cpu().try_lock() {
            Some(guard) => {
                guard.with_magazine(|magazine| {
                    if magazine.is_full() {
                        self.flush(magazine, BATCH);
                    }
                    magazine.push(object);
                });
                guard.count_free();
            }
            None => self.free_shared(object),
        }
    }

    /// Flushes every CPU's magazine back to the slabs (waiting for a CPU that is inside the
    /// cache), for leak checks and before [`KmemCache::shrink`]. Process context only, and
    /// never from a constructor: it waits for every magazine, including one its own CPU holds.
    pub fn drain_cpu_caches(&self) {
        for cpu in &self.cpus {
            let guard = cpu.lock();
            guard.with_magazine(|magazine| self.flush(magazine, magazine.len()));
        }
    }

    /// Gives every empty slab back to the platform — after a grace period for
    /// `TYPESAFE_BY_RCU` caches. Objects parked in magazines keep their slabs; drain first.
    pub fn shrink(&self) {
        let mut retire = RetireList::new();
        {
            let mut shared = self.lock_shared();
            while !shared.empty.tail().is_null() {
                let slab = shared.empty.tail();
                // SAFETY: `slab` is on the empty list and we hold the lock.
                unsafe { self.retire_slab(&mut shared, slab, &mut retire) };
            }
        }
        self.release(retire);
    }

    /// A snapshot of the cache's state and statistics.
    pub fn info(&self) -> SlabInfo {
        let (mut allocs, mut frees) = (0, 0);
        for cpu in &self.cpus {
            let (a, f) = cpu.counts();
            allocs += a;
            frees += f;
        }
        let shared = self.lock_shared();
        allocs += shared.allocs;
        frees += shared.frees;
        let slabs = shared.slabs();
        let pending = self.pending.load(Ordering::Relaxed);
        SlabInfo {
            name: self.name,
            active_objects: allocs.saturating_sub(frees),
            total_objects: slabs * self.layout.objects,
            object_size: self.layout.size,
            slot_size: self.layout.stride,
            objects_per_slab: self.layout.objects,
            pages_per_slab: self.layout.pages(),
            slabs,
            pages: (slabs + pending) * self.layout.pages(),
            allocs,
            frees,
            slabs_created: shared.slabs_created,
            slabs_freed: self.slabs_freed.load(Ordering::Relaxed),
            pending_frees: pending,
        }
    }

    /// The generation of the slab holding `object`: even and unique within the cache while the
    /// slab is live, odd once its pages have gone back to the platform. A stale reader that
    /// sees the same value before and after its reads knows the page was not handed back in
    /// between.
    ///
    /// # Safety
    ///
    /// The slab memory must still be readable: `object` is handed out, or the caller found it
    /// inside an RCU read section that is still open and the cache is `TYPESAFE_BY_RCU`.
    pub unsafe fn slab_generation(&self, object: *const u8) -> usize {
        let slab = self.slab_of(object.cast_mut());
        // SAFETY: per the contract the header is readable; `generation` is atomic.
        unsafe { (*slab).generation.load(Ordering::Acquire) }
    }

    fn cpu(&self) -> &CpuCache {
        let id = self.platform.cpu_id();
        self.cpus.get(id).unwrap_or_else(|| {
            panic!(
                "slab {}: cpu_id {id} is not below MAX_CPUS ({MAX_CPUS})",
                self.name
            )
        })
    }

    /// The header of the slab `object` would be in.
    pub(crate) fn slab_of(&self, object: *mut u8) -> *mut SlabHeader {
        let mask = self.layout.slab_bytes() - 1;
        object.map_addr(|addr| addr & !mask).cast()
    }

    /// Panics unless `object` is the start of an object in a slab of this cache.
    fn check_owner(&self, object: *mut u8) {
        let slab = self.slab_of(object);
        // SAFETY: `free`'s contract makes the header readable; `magic` and `cache` are written
        // once, before any object of the slab is handed out, so these reads race with nothing.
        let (magic, cache) = unsafe { ((*slab).magic, (*slab).cache) };
        if magic != SLAB_MAGIC || cache != ptr::from_ref(self).cast() {
            panic!(
                "slab {}: free of foreign pointer {object:p}: not from this cache",
                self.name
            );
        }
        if self.layout.index_of(object.addr() - slab.addr()).is_none() {
            panic!(
                "slab {}: free of {object:p}: not the start of an object",
                self.name
            );
        }
    }

    /// Runs `take` under the shared lock until it returns `Some`, adding a new slab (created
    /// outside the lock) each time it returns `None`. `None` when the platform has no pages.
    fn with_slabs<R>(&'static self, mut take: impl FnMut(&mut Shared) -> Option<R>) -> Option<R> {
        let mut fresh = None;
        loop {
            let mut shared = self.lock_shared();
            if let Some(slab) = fresh.take() {
                // SAFETY: `slab` was just created by `new_slab` and is visible to nobody yet.
                unsafe { self.insert(&mut shared, slab) };
            }
            if let Some(result) = take(&mut shared) {
                return Some(result);
            }
            drop(shared);
            fresh = Some(self.new_slab()?);
        }
    }

    fn refill(&'static self, magazine: &mut Magazine) -> Option<()> {
        self.with_slabs(|shared| {
            while magazine.len() < BATCH {
                // SAFETY: `with_slabs` holds the lock.
                match unsafe { self.take(shared) } {
                    Some(object) => magazine.push(object),
                    None => break,
                }
            }
            (magazine.len() > 0).then_some(())
        })
    }

    fn alloc_shared(&'static self) -> Option<*mut u8> {
        self.with_slabs(|shared| {
            // SAFETY: `with_slabs` holds the lock.
            let object = unsafe { self.take(shared) }?;
            shared.allocs += 1;
            Some(object)
        })
    }

    fn free_shared(&self, object: *mut u8) {
        let mut retire = RetireList::new();
        {
            let mut shared = self.lock_shared();
            // SAFETY: `object` is a free object of this cache owned by this call; we hold the
            // lock.
            unsafe { self.put_back(&mut shared, object, &mut retire) };
            shared.frees += 1;
        }
        self.release(retire);
    }

    /// Moves the `count` oldest objects of `magazine` back to their slabs.
    fn flush(&self, magazine: &mut Magazine, count: usize) {
        let mut retire = RetireList::new();
        {
            let mut shared = self.lock_shared();
            magazine.drain_oldest(count, |object| {
                // SAFETY: objects in a magazine are free objects of this cache that the
                // magazine owns; we hold the lock.
                unsafe { self.put_back(&mut shared, object, &mut retire) }
            });
        }
        self.release(retire);
    }

    /// Takes one free object off a slab.
    ///
    /// # Safety
    ///
    /// `shared` is this cache's locked shared state.
    unsafe fn take(&self, shared: &mut Shared) -> Option<*mut u8> {
        // SAFETY: every slab reached from `shared` is a live, visible slab of this cache, and
        // the lock gives us its free list and links.
        unsafe {
            let hot = shared.hot;
            let slab = if !hot.is_null() && (*hot).free_count > 0 {
                hot
            } else if !shared.partial.head().is_null() {
                shared.partial.head()
            } else if !shared.empty.head().is_null() {
                shared.empty.head()
            } else {
                return None;
            };
            let object = (*slab).free_head;
            (*slab).free_head = self.read_link(object);
            (*slab).free_count -= 1;
            let to = if (*slab).free_count == 0 {
                ListKind::Full
            } else {
                ListKind::Partial
            };
            if (*slab).list != to {
                shared.move_slab(slab, to);
            }
            Some(object)
        }
    }

    /// Puts a free object back on its slab's free list; a slab that becomes empty goes to the
    /// empty list, and the oldest empty slab beyond the reserve onto `retire`.
    ///
    /// # Safety
    ///
    /// `object` is a free object of this cache owned by the caller; `shared` is this cache's
    /// locked shared state.
    unsafe fn put_back(&self, shared: &mut Shared, object: *mut u8, retire: &mut RetireList) {
        let slab = self.slab_of(object);
        // SAFETY: `object`'s slab is live and visible while one of its objects is not on its
        // free list; the lock gives us its free list and links.
        unsafe {
            self.write_link(object, (*slab).free_head);
            (*slab).free_head = object;
            (*slab).free_count += 1;
            let to = if (*slab).free_count == self.layout.objects {
                ListKind::Empty
            } else {
                ListKind::Partial
            };
            if (*slab).list != to {
                shared.move_slab(slab, to);
            }
            shared.hot = slab;
            if shared.empty.len() > EMPTY_RESERVE {
                let oldest = shared.empty.tail();
                self.retire_slab(shared, oldest, retire);
            }
        }
    }

    /// Makes a new slab visible on the empty list.
    ///
    /// # Safety
    ///
    /// `slab` comes from `new_slab` and is not visible yet; `shared` is this cache's locked
    /// shared state.
    unsafe fn insert(&self, shared: &mut Shared, slab: *mut SlabHeader) {
        // SAFETY: the slab is ours until it is on a list.
        unsafe {
            (*slab)
                .generation
                .store(shared.next_generation, Ordering::Relaxed);
            (*slab).list = ListKind::Empty;
            shared.empty.push_front(slab);
        }
        shared.next_generation += 2;
        shared.slabs_created += 1;
    }

    /// Takes an empty slab off the lists and onto `retire`.
    ///
    /// # Safety
    ///
    /// `slab` is on the empty list; `shared` is this cache's locked shared state.
    unsafe fn retire_slab(
        &self,
        shared: &mut Shared,
        slab: *mut SlabHeader,
        retire: &mut RetireList,
    ) {
        // SAFETY: per the contract.
        unsafe {
            shared.empty.remove(slab);
            (*slab).list = ListKind::Retired;
            retire.push(slab);
        }
        if shared.hot == slab {
            shared.hot = ptr::null_mut();
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives retired slabs back to the platform, after a grace period for typesafe caches.
    /// Called without the shared lock.
    fn release(&self, mut retire: RetireList) {
        // SAFETY: retired slabs stay live until `release_pages` runs for them, which happens
        // only below, after each has been popped.
        while let Some(slab) = unsafe { retire.pop() } {
            if self.flags.contains(CacheFlags::TYPESAFE_BY_RCU) {
                // SAFETY: the node is inside the retired slab's header, which nothing touches
                // until the callback frees the slab; the callback matches this cache's `P`.
                unsafe {
                    self.platform.defer_after_grace_period(
                        &raw mut (*slab).deferred,
                        release_after_grace_period::<P>,
                    );
                }
            } else {
                // SAFETY: a retired slab of a cache that is not typesafe is unreachable: all
                // its objects are free and nobody may read free objects.
                unsafe { self.release_pages(slab) };
            }
        }
    }

    /// Hands a retired slab's pages back to the platform.
    ///
    /// # Safety
    ///
    /// `slab` is a retired slab of this cache that nothing will read any more.
    unsafe fn release_pages(&self, slab: *mut SlabHeader) {
        // SAFETY: per the contract the header is still ours to update, then the pages go.
        unsafe {
            (*slab).generation.fetch_add(1, Ordering::Release);
            self.slabs_freed.fetch_add(1, Ordering::Relaxed);
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.platform
                .free_pages(NonNull::new_unchecked(slab.cast()), self.layout.order);
        }
    }

    /// A new slab with every object constructed and on its free list, not yet visible.
    fn new_slab(&'static self) -> Option<*mut SlabHeader> {
        let base = self.platform.alloc_pages(self.layout.order)?.as_ptr();
        assert!(
            base.addr().is_multiple_of(self.layout.slab_bytes()),
            "slab {}: the platform gave pages at {base:p}, not aligned to {} bytes",
            self.name,
            self.layout.slab_bytes()
        );
        let slab = base.cast::<SlabHeader>();
        let object = |index: usize| {
            // SAFETY: `object_offset` stays inside the slab for every index up to `objects`.
            unsafe { base.add(self.layout.object_offset(index)) }
        };
        // SAFETY: the pages are fresh and ours; the layout puts the header at the start and
        // every slot after it, all inside the slab and suitably aligned.
        unsafe {
            slab.write(SlabHeader {
                magic: SLAB_MAGIC,
                cache: ptr::from_ref(self).cast(),
                generation: AtomicUsize::new(0),
                free_head: object(0),
                free_count: self.layout.objects,
                list: ListKind::Detached,
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
                deferred: DeferredFree::new(),
            });
            for index in 0..self.layout.objects {
                let next = if index + 1 < self.layout.objects {
                    object(index + 1)
                } else {
                    ptr::null_mut()
                };
                self.init_slot(object(index), next);
            }
        }
        Some(slab)
    }
}

/// The callback [`KmemCache::release`] hands to the platform for a typesafe cache's slab.
///
/// # Safety
///
/// `node` is the `deferred` field of a retired slab of a `KmemCache<P>`, and a grace period has
/// passed since the slab was retired.
unsafe fn release_after_grace_period<P: Platform + 'static>(node: *mut DeferredFree) {
    // SAFETY: per the contract `node` sits at this offset inside a live slab header, and the
    // cache it names is borrowed for `'static` (slabs exist only after `alloc(&'static self)`).
    unsafe {
        let slab = node
            .byte_sub(core::mem::offset_of!(SlabHeader, deferred))
            .cast::<SlabHeader>();
        let cache = &*(*slab).cache.cast::<KmemCache<P>>();
        cache.release_pages(slab);
    }
}
