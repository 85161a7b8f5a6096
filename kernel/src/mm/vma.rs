//! Virtual memory areas: one contiguous range of an address space with one protection.
//!
//! VMAs come from a type-stable cache (`TYPESAFE_BY_RCU`): a freed VMA may be handed out again
//! at once, for this or another address space, but its memory stays a `Vma` until a grace
//! period has passed. So a reader that found a VMA in the tree under RCU always reads a `Vma` —
//! perhaps a recycled one, which is why every field it may load is an atomic and why it must
//! revalidate after locking.
//!
//! A [`VmaPtr`] is what the tree stores; a `&Vma` is had only for as long as something keeps
//! the VMA from being freed, and borrows from it: an RCU read section ([`VmaPtr::get`]), the
//! address space's `mmap_lock` (`MmapLocked::find_vma` and friends), or the VMA's own read
//! lock (the fault path's guard from `lock_vma_under_rcu`).
//!
//! Each VMA embeds its per-VMA lock ([`vmalock::VmaLock`]: `vm_refcnt` and `vm_lock_seq`). The
//! slab constructor initialises the lock words once; afterwards they change only through the
//! lock protocol — allocation and duplication never touch them.
//!
//! Fields change only under the owning address space's `mmap_lock` held for writing, and a VMA
//! is changed only before it is attached and published in the tree, or after it was removed
//! from it and detached: a range edit builds new VMAs for the new pieces ([`Vma::create`],
//! [`Vma::create_from`] copying fields one by one) and frees the old ones after the tree no
//! longer holds them. Who may read which field under what is in docs/LOCKING.md.
//!
//! A VMA that maps a file points to a [`VmaFile`] of its own: its reference to the open file
//! and the file page its first page shows. It is made with the VMA (a split, merge or fork
//! makes a new one) and given up when the VMA is freed, a grace period later (see
//! [`Vma::file`] for why that lets every holder of a `&Vma` read it).

use alloc::sync::Arc;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use rcu::RcuHead;
use slab::{CacheFlags, SlabObject, TypedCache};
use vmalock::{VmaCopy, VmaFields, VmaLock};

use super::addrspace::Mm;
use super::slab::{DEBUG_FLAGS, KERNEL_PAGES, KernelPages};
use crate::fs::file::File;
use crate::fs::pagecache::PageCache;
use crate::sync::rcu::{RcuReadGuard, call_rcu};

/// Protection and kind bits of a VMA.
pub const VM_READ: u32 = 1 << 0;
pub const VM_WRITE: u32 = 1 << 1;
pub const VM_EXEC: u32 = 1 << 2;
/// `MAP_SHARED`: the pages stay shared with the address spaces forked from this one.
pub const VM_SHARED: u32 = 1 << 3;
/// The initial stack (for reports).
pub const VM_STACK: u32 = 1 << 4;
/// The heap grown by `brk`.
pub const VM_BRK: u32 = 1 << 5;
/// Mapped from an executable (for reports; its pages were filled at load).
pub const VM_IMAGE: u32 = 1 << 6;
/// `MADV_DONTFORK`: a fork leaves the range out of the child.
pub const VM_DONTCOPY: u32 = 1 << 7;
/// `MADV_WIPEONFORK`: a fork's child gets the range as fresh zero-filled memory.
pub const VM_WIPEONFORK: u32 = 1 << 8;
/// A shared mapping of a file opened without write access: `mprotect` may not make it
/// writable (Linux's VMA without `VM_MAYWRITE`).
pub const VM_WRITE_DENIED: u32 = 1 << 9;
/// `mlock`: the pages are faulted in when locked and stay; `MADV_DONTNEED` is refused.
pub const VM_LOCKED: u32 = 1 << 10;
/// With `VM_LOCKED` (`MLOCK_ONFAULT`, `MCL_ONFAULT`): pages are kept once faulted in, but
/// locking faults nothing in.
pub const VM_LOCKONFAULT: u32 = 1 << 11;
/// The VMA's size is charged to the commit count (see mm/commit.rs): a private writable
/// mapping, or shared anonymous memory, without `MAP_NORESERVE`. Once set it stays, as
/// Linux's `VM_ACCOUNT` does, when the VMA loses its write permission.
pub const VM_ACCOUNT: u32 = 1 << 12;
/// `MAP_NORESERVE` (outside the strict overcommit mode): never charged.
pub const VM_NORESERVE: u32 = 1 << 13;
/// `MAP_GROWSDOWN`: recorded for `mprotect`'s `PROT_GROWSDOWN`, which applies from the start
/// of such a VMA; the VMA does not grow by itself (no fault below it extends it).
pub const VM_GROWSDOWN: u32 = 1 << 14;

/// Both lock bits: what `munlock` clears and fork leaves out of the child.
pub const VM_LOCKED_MASK: u32 = VM_LOCKED | VM_LOCKONFAULT;

pub const VM_ACCESS: u32 = VM_READ | VM_WRITE | VM_EXEC;

/// One cache line per VMA: every fault in a VMA takes and drops a reference in `lock`, and two
/// threads faulting in their own VMAs must not bounce one line between their CPUs (Linux keeps
/// `vm_refcnt` on a cache line of its own for the same reason).
#[repr(C, align(64))]
pub struct Vma {
    start: AtomicU64,
    end: AtomicU64,
    /// The owning address space's identity (its address), 0 while free.
    mm: AtomicUsize,
    flags: AtomicU32,
    /// The per-VMA lock; see kernel/libs/vmalock.
    pub lock: VmaLock,
    /// The slab's free-list link while the VMA is free (in the line's spare bytes, so a VMA
    /// takes one line and no trailer); never read or written by anything else.
    free_link: AtomicUsize,
    /// The file mapped, or null for anonymous memory: owned by the VMA (see [`VmaFile`]).
    file: AtomicPtr<VmaFile>,
}

/// The constructed state: all fields zero (no range, no owner).
impl SlabObject for Vma {
    unsafe fn construct(slot: *mut Self) {
        // SAFETY: `slot` is valid for writes (the trait's contract). Field by field, leaving
        // `free_link` to the slab.
        unsafe {
            (&raw mut (*slot).start).write(AtomicU64::new(0));
            (&raw mut (*slot).end).write(AtomicU64::new(0));
            (&raw mut (*slot).mm).write(AtomicUsize::new(0));
            (&raw mut (*slot).flags).write(AtomicU32::new(0));
            (&raw mut (*slot).lock).write(VmaLock::new());
            (&raw mut (*slot).file).write(AtomicPtr::new(core::ptr::null_mut()));
        }
    }

    /// Freed VMAs are detached with no reference (`vm_lock_seq` keeps its last value: it only
    /// matters once the VMA is write-locked again, before any attach) and carry no fields.
    fn is_constructed(&self) -> bool {
        self.lock.is_constructed_state()
            && self.mm.load(Ordering::Relaxed) == 0
            && self.start.load(Ordering::Relaxed) == 0
            && self.end.load(Ordering::Relaxed) == 0
            && self.flags.load(Ordering::Relaxed) == 0
            && self.file.load(Ordering::Relaxed).is_null()
    }
}

/// Every VMA of every address space. Debug (test) builds reuse freed VMAs immediately and in
/// LIFO order across CPUs, which is what exposes reuse races to the torture tests.
pub static VMA_CACHE: TypedCache<Vma, KernelPages> = TypedCache::new(
    "vm_area_struct",
    CacheFlags::TYPESAFE_BY_RCU
        .union(DEBUG_FLAGS)
        .union(CacheFlags::CONSTRUCTED_CHECK)
        .union(if cfg!(debug_assertions) {
            CacheFlags::LIFO_REUSE
        } else {
            CacheFlags::NONE
        }),
    &KERNEL_PAGES,
)
.with_free_link_offset(core::mem::offset_of!(Vma, free_link));

const _: () = assert!(
    size_of::<Vma>() == 64,
    "a VMA is meant to fill one cache line"
);

/// What a VMA of a file maps (Linux's `vm_file` and `vm_pgoff`): its own reference to the
/// open file, and the page of the file that the VMA's first page shows. Never changed once
/// made. While it lives, its VMA's address space is counted among the file's mappers
/// ([`PageCache::add_mapper`]), which is how truncation finds the mappings to clear.
#[repr(C)]
pub struct VmaFile {
    /// First: the RCU callback that frees the object finds it from here.
    rcu: RcuHead,
    file: Arc<File>,
    pgoff: u64,
}

/// Every VMA's file reference.
static VMA_FILE_CACHE: TypedCache<VmaFile, KernelPages> =
    TypedCache::without_ctor("vm_file", DEBUG_FLAGS, &KERNEL_PAGES);

impl VmaFile {
    /// A reference to `file` (a file with a page cache) from page `pgoff` on, for a VMA of
    /// `mm`, which is counted among the file's mappers; `None` when out of memory.
    fn new(file: &Arc<File>, pgoff: u64, mm: &Mm) -> Option<NonNull<VmaFile>> {
        let made = VMA_FILE_CACHE
            .alloc_init(VmaFile {
                rcu: RcuHead::new(),
                file: file.clone(),
                pgoff,
            })
            .ok()?;
        // SAFETY: just made, and ours.
        let cache = unsafe { made.as_ref() }.cache();
        if cache.add_mapper(mm).is_err() {
            // SAFETY: never published: nothing else refers to it.
            unsafe { Self::destroy(made) };
            return None;
        }
        Some(made)
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// The page of the file the VMA's first page shows.
    pub fn pgoff(&self) -> u64 {
        self.pgoff
    }

    /// The file's page cache, which the VMA maps.
    pub fn cache(&self) -> &PageCache {
        self.file
            .inode()
            .page_cache()
            .expect("only files with a page cache are mapped")
    }

    /// Gives up the reference of a VMA of the address space `mm_id` that let go of it: the
    /// address space is counted out of the file's mappers now, and the object is freed after
    /// a grace period (a lockless reader may have loaded the pointer).
    fn release(file: NonNull<VmaFile>, mm_id: usize) {
        // SAFETY: the object lives until the callback queued below runs.
        unsafe { file.as_ref() }.cache().remove_mapper(mm_id);
        unsafe fn free_after_grace_period(head: *mut RcuHead) {
            // SAFETY: `head` is the first field of a `VmaFile` (repr(C)) queued once by
            // `release`; the grace period has passed, so no reader holds it.
            unsafe { VmaFile::destroy(NonNull::new_unchecked(head.cast::<VmaFile>())) };
        }
        // SAFETY: the VMA no longer points to the object, so its head is ours until the
        // callback frees it.
        unsafe { call_rcu(&raw mut (*file.as_ptr()).rcu, free_after_grace_period) };
    }

    /// Drops the object (its file reference) and gives its memory back.
    ///
    /// # Safety
    /// `file` came from the cache and nothing refers to it any more.
    unsafe fn destroy(file: NonNull<VmaFile>) {
        // SAFETY: the caller's contract: the value is ours to drop, and its memory to free.
        unsafe {
            core::ptr::drop_in_place(file.as_ptr());
            VMA_FILE_CACHE.free(file);
        }
    }
}

/// A VMA as the tree holds it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VmaPtr(NonNull<Vma>);

// SAFETY: a `VmaPtr` is an address of type-stable memory; all its fields are atomics.
unsafe impl Send for VmaPtr {}
// SAFETY: as above.
unsafe impl Sync for VmaPtr {}

impl VmaPtr {
    /// The VMA, for as long as the RCU read section `_rcu` lasts. Its memory stays a `Vma`
    /// that long whatever happens to it (type-stable cache); whether it still is the VMA the
    /// caller meant is for the caller to check (`lock_vma_under_rcu` revalidates).
    pub fn get(self, _rcu: &RcuReadGuard) -> &Vma {
        // SAFETY: VMAs come from `VMA_CACHE`, whose memory stays a constructed `Vma` until a
        // grace period after its slab was emptied; the read section `_rcu` has not ended.
        unsafe { self.0.as_ref() }
    }

    /// The VMA, for a lifetime the caller vouches for.
    ///
    /// # Safety
    /// The VMA must not be freed while the reference lives: the caller holds the owning
    /// address space's `mmap_lock` (VMAs are freed only when a write session ends) and the VMA
    /// is in its tree or was created or detached by the session the caller holds.
    pub unsafe fn get_unchecked<'a>(self) -> &'a Vma {
        // SAFETY: the caller keeps the VMA from being freed (see above), and the cache's
        // memory is a constructed `Vma` until then.
        unsafe { self.0.as_ref() }
    }
}

impl Vma {
    /// A new VMA for `range` of the address space `mm` with `flags`, mapping `file` from page
    /// `pgoff` on (or anonymous memory), not yet in any tree; `None` when out of memory (or
    /// when a failure is injected: `fail=slab:`).
    pub fn create(
        mm: &Mm,
        range: Range<u64>,
        flags: u32,
        file: Option<(&Arc<File>, u64)>,
    ) -> Option<VmaPtr> {
        let file = match file {
            Some((file, pgoff)) => VmaFile::new(file, pgoff, mm)?.as_ptr(),
            None => core::ptr::null_mut(),
        };
        let vma = if super::inject::should_fail(super::inject::Kind::Slab) {
            None
        } else {
            VMA_CACHE.alloc()
        };
        let Some(vma) = vma else {
            if let Some(file) = NonNull::new(file) {
                VmaFile::release(file, mm.id());
            }
            return None;
        };
        // SAFETY: a fresh object from the cache, constructed, ours until published.
        let v = unsafe { vma.as_ref() };
        v.start.store(range.start, Ordering::Relaxed);
        v.end.store(range.end, Ordering::Relaxed);
        v.flags.store(flags, Ordering::Relaxed);
        v.mm.store(mm.id(), Ordering::Relaxed);
        v.file.store(file, Ordering::Release);
        Some(VmaPtr(vma))
    }

    /// A new VMA of `mm` for `range` with `flags` whose other fields are copied from
    /// `original` (a VMA of `mm` whose range contains `range.start`: a split, merge or change
    /// of protection), never its lock words; it maps the same file, from the page that
    /// `range.start` shows.
    pub fn create_from(mm: &Mm, original: &Vma, range: Range<u64>, flags: u32) -> Option<VmaPtr> {
        debug_assert_eq!(
            original.mm(),
            mm.id(),
            "a piece of another address space's VMA"
        );
        let file = original.file().map(|file| {
            let pages = (range.start - original.start()) / 4096;
            (file.file(), file.pgoff() + pages)
        });
        let vma = Self::create(mm, range.clone(), flags, file)?;
        // SAFETY: ours until published.
        let v = unsafe { vma.get_unchecked() };
        vmalock::vm_area_init_from(v, original);
        v.start.store(range.start, Ordering::Relaxed);
        v.end.store(range.end, Ordering::Relaxed);
        v.flags.store(flags, Ordering::Relaxed);
        Some(vma)
    }

    /// Linux's `vm_area_dup`: a copy of `original` for the address space `mm` (fork), its
    /// fields copied one by one and never its lock words, which keep the constructed state;
    /// it takes a reference of its own to the file `original` maps. Like Linux, the copy is
    /// not locked in memory (`VM_LOCKED_MASK` cleared).
    pub fn dup(original: &Vma, mm: &Mm) -> Option<VmaPtr> {
        let file = original.file().map(|file| (file.file(), file.pgoff()));
        let flags = original.flags() & !VM_LOCKED_MASK;
        let vma = Self::create(mm, original.start()..original.end(), flags, file)?;
        // SAFETY: ours until published.
        let v = unsafe { vma.get_unchecked() };
        vmalock::vm_area_init_from(v, original);
        v.mm.store(mm.id(), Ordering::Relaxed);
        v.flags.store(flags, Ordering::Relaxed);
        Some(vma)
    }

    /// Its size in pages.
    pub fn pages(&self) -> u64 {
        (self.end() - self.start()) / 4096
    }

    /// Gives a VMA that no tree holds any more, and that is detached, back to the cache; its
    /// file reference goes a grace period later.
    pub fn free(vma: VmaPtr) {
        // SAFETY: the VMA is the caller's to free, so nothing frees it meanwhile.
        let v = unsafe { vma.get_unchecked() };
        debug_assert!(
            v.lock.is_constructed_state(),
            "freeing an attached VMA: {:?}",
            v.lock
        );
        if let Some(file) = NonNull::new(v.file.swap(core::ptr::null_mut(), Ordering::Relaxed)) {
            VmaFile::release(file, v.mm());
        }
        v.start.store(0, Ordering::Relaxed);
        v.end.store(0, Ordering::Relaxed);
        v.flags.store(0, Ordering::Relaxed);
        v.mm.store(0, Ordering::Relaxed);
        // SAFETY: the VMA came from the cache and was removed from its tree; it is back in
        // constructed state.
        unsafe { VMA_CACHE.free(vma.0) };
    }

    /// The file the VMA maps, or `None` for anonymous memory; borrowed for as long as the VMA
    /// is.
    ///
    /// Whoever holds a `&Vma` keeps the VMA from being freed (its `mmap_lock`, the VMA's read
    /// lock) or is inside an RCU read section (a lockless reader, which may be looking at a
    /// VMA freed and reused since). Either way the object read here stays alive as long as
    /// the borrow: a VMA gives its [`VmaFile`] up only when freed, and the object itself is
    /// freed a grace period after that. A lockless reader must still check that the VMA is
    /// the one it meant before trusting what it read.
    pub fn file(&self) -> Option<&VmaFile> {
        // Acquire: pairs with the Release store of a new VMA, for lockless readers (a locked
        // reader is ordered by its lock already).
        let file = self.file.load(Ordering::Acquire);
        // SAFETY: the object is alive for the borrow (see above), and never changed.
        unsafe { file.as_ref() }
    }

    pub fn start(&self) -> u64 {
        self.start.load(Ordering::Relaxed)
    }

    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn mm(&self) -> usize {
        self.mm.load(Ordering::Relaxed)
    }
}

/// Lists the VMA caches in slabinfo (once, at boot).
pub fn register_cache() {
    super::slab::register(VMA_CACHE.raw());
    super::slab::register(VMA_FILE_CACHE.raw());
}

impl VmaFields for Vma {
    fn lock(&self) -> &VmaLock {
        &self.lock
    }

    fn mm_id(&self) -> usize {
        self.mm()
    }

    fn start(&self) -> u64 {
        Vma::start(self)
    }

    fn end(&self) -> u64 {
        Vma::end(self)
    }
}

/// The file is not among the fields copied: each VMA holds a [`VmaFile`] of its own, given by
/// its maker ([`Vma::create`]).
impl VmaCopy for Vma {
    fn copy_fields_from(&self, original: &Self) {
        self.start.store(original.start(), Ordering::Relaxed);
        self.end.store(original.end(), Ordering::Relaxed);
        self.mm.store(original.mm(), Ordering::Relaxed);
        self.flags.store(original.flags(), Ordering::Relaxed);
    }
}
