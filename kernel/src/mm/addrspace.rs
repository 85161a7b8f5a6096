//! Address spaces: a user half made of VMAs (kept in an RCU-safe range tree) and the page
//! tables that map them, plus the kernel half shared by all.
//!
//! # Locks
//! - `mmap_lock` (a sleeping reader-writer semaphore) serialises changes: every edit of the
//!   VMA set, every clearing of page-table entries and every freeing of page-table pages holds
//!   it for writing. It is private: [`Mm::write`] takes it and returns an [`MmWriteGuard`],
//!   which also opens a per-VMA-lock write session, and the functions that change the address
//!   space are methods of that guard; [`Mm::read`] returns an [`MmReadGuard`], under which the
//!   VMA set can be read and faults served. Both dereference to [`MmapLocked`], the queries
//!   either guard allows; the VMAs they return borrow from the guard.
//!   Page faults that cannot use a VMA lock hold it for reading.
//! - Each VMA's lock (kernel/libs/vmalock): an edit write-locks every VMA it changes or
//!   removes before it changes them or their page-table entries; new VMAs are write-locked
//!   and attached before they are published, removed ones detached after they are unpublished
//!   and before they are freed. All write locks end together when the [`MmWriteGuard`] is
//!   dropped (Linux's `mmap_write_unlock`). Faults that read-lock a VMA
//!   (`lock_vma_under_rcu`) need no `mmap_lock`.
//! - The tree is read without a lock inside RCU read sections; writers hold `mmap_lock` for
//!   writing and publish each edit atomically (see kernel/libs/vmtree).
//! - Page-table entries are atomics (see user_tables.rs): faults under `mmap_lock` for reading
//!   fill them with compare-and-swap.
//! - `cpu_mask` is updated by the scheduler with full fences (see `switch_address_space`).
//!
//! # Edits and shootdowns
//! An edit (`map`, `unmap`, `protect`, `zap`) replaces the affected VMAs by fresh ones for the
//! new pieces, publishes the new set in one tree update, changes or clears the page-table
//! entries, shoots down the TLBs of every CPU that may hold translations (the mm's CPU mask,
//! read after the entries changed), and only then frees data pages, page-table pages and the
//! old VMAs.
//!
//! The frames of cleared entries wait for the shootdown in a buffer the address space lends to
//! the edit (Linux's `mmu_gather`). It grows while the heap lets it, up to [`GATHER_MAX`]
//! frames; when it cannot grow, the edit shoots down and frees what it holds and goes on with
//! the same room. Every address space keeps [`GATHER_MIN`] frames' worth allocated, so an edit
//! never needs memory in proportion to its range: killing a process that ate all memory must
//! not need memory.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::ops::{Deref, Range};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use vmalock::{MmIdentity, MmLockSeq};
use vmtree::RangeTree;

use super::frame::{self, Frames};
use super::page_refs;
use super::pte::{
    ACCESSED, DIRTY, GUARD_ENTRY, MAPS_PAGE, NO_EXECUTE, PRESENT, PROT_NONE_ENTRY, USER, WRITABLE,
    address, entry,
};
use super::user_tables;
use super::vma::{
    VM_ACCESS, VM_ACCOUNT, VM_EXEC, VM_LOCKED, VM_NORESERVE, VM_SHARED, VM_WRITE, Vma, VmaPtr,
};
use super::vma_tree::RcuReclaim;
use super::{PhysAddr, zero_page};
use crate::arch::percpu::CpuSet;
use crate::arch::smp::{self, Flush};
use crate::arch::syscall::USER_END;
use crate::fs::file::File;
use crate::fs::pagecache::PageCache;
use crate::sync::rcu::{RcuReadGuard, read_lock};
use crate::sync::rwsem::{RwSemReadGuard, RwSemWriteGuard};
use crate::sync::{PerCpuCounter, RwSem};
use crate::syscall::errno::{ENOMEM, Errno};

mod fork;
mod relocate;

#[cfg(feature = "ktest")]
pub use relocate::set_break_no_source_lock;

/// The lowest address user mappings may use (Linux's default `mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// The top of the initial stack, and its reserved size (the stack VMA).
pub const STACK_TOP: u64 = 0x7fff_ffff_e000 - 0x1000;
pub const STACK_SIZE: u64 = 8 << 20;
/// Placement without a hint searches below this, leaving a gap under the stack.
pub const MMAP_BASE: u64 = STACK_TOP - STACK_SIZE - (256 << 20);

/// The end of the lower half: page tables cover user space up to here.
const LOWER_HALF_END: u64 = 1 << 47;

/// The most frames an edit gathers for one shootdown (256 MiB of user memory).
const GATHER_MAX: usize = 65_536;
/// Room for gathered frames that every address space keeps allocated.
const GATHER_MIN: usize = 512;

/// Edits that shot down and freed part of what they cleared before the end, to make room.
static EARLY_FLUSHES: AtomicU64 = AtomicU64::new(0);
/// Test knob: gathering buffers do not grow, as when the heap cannot (see `ktests`).
#[cfg(feature = "ktest")]
static GATHER_CANNOT_GROW: AtomicBool = AtomicBool::new(false);

pub struct Mm {
    /// This address space's own handle, for the files it maps to find it by.
    this: Weak<Mm>,
    /// Taken through [`Mm::read`] and [`Mm::write`] only.
    mmap_lock: RwSem,
    /// The per-VMA-lock sequence (`mm_lock_seq`): odd during a write session.
    lock_seq: MmLockSeq,
    /// VMAs the current write session removed and detached, freed when it ends.
    detached_vmas: spin::Mutex<Vec<VmaPtr>>,
    /// Room for the frames an edit clears, lent to the edit in progress (edits hold
    /// `mmap_lock` for writing, so one at a time); at least [`GATHER_MIN`] frames.
    gather: spin::Mutex<Vec<PhysAddr>>,
    tree: RangeTree<VmaPtr>,
    /// The top-level table (PML4), freed with the address space.
    root: Frames,
    /// CPUs that have this address space loaded (may hold its translations).
    pub cpu_mask: AtomicU64,
    /// Data pages mapped (resident set), for statistics and leak checks; per CPU, because
    /// every page fault that maps a page adds to it.
    pub resident_pages: PerCpuCounter,
    /// `brk`: the start of the heap and its current end (changed under `mmap_lock` write).
    brk_start: AtomicU64,
    brk_end: AtomicU64,
    /// Flags every new mapping gets (Linux's `def_flags`): `VM_LOCKED` (and `VM_LOCKONFAULT`)
    /// after `mlockall(MCL_FUTURE)`. Changed under `mmap_lock` held for writing.
    default_flags: AtomicU32,
    /// Processes using the address space: one, or two while a `vfork` child borrows its
    /// parent's. The last to stop using it tears it down ([`Mm::drop_user`]).
    users: AtomicUsize,
    torn_down: AtomicBool,
    /// The concurrency ids (rseq's `mm_cid`) the threads running in this address space hold:
    /// bit `n` for id `n` (see [`Mm::take_concurrency_id`]).
    concurrency_ids: AtomicU64,
}

// A CPU holds at most one concurrency id of an address space, so one bit per CPU suffices.
const _: () = assert!(crate::arch::percpu::MAX_CPUS <= u64::BITS as usize);

/// Makes room for more gathered frames: doubles `pages` if the heap allows it, up to
/// [`GATHER_MAX`]; `false` when it may not grow.
fn grow_gather(pages: &mut Vec<PhysAddr>) -> bool {
    #[cfg(feature = "ktest")]
    if GATHER_CANNOT_GROW.load(Ordering::Relaxed) {
        return false;
    }
    let additional = pages
        .capacity()
        .max(GATHER_MIN)
        .min(GATHER_MAX.saturating_sub(pages.len()));
    additional > 0 && pages.try_reserve_exact(additional).is_ok()
}

/// Logs how often edits shot down and freed early for want of room.
pub fn log_statistics() {
    log::info!(
        "address spaces: {} early shootdowns in edits (gathering buffer full), {} page tables \
         moved whole by mremap",
        EARLY_FLUSHES.load(Ordering::Relaxed),
        relocate::tables_moved()
    );
}

/// A change to a range of the address space.
#[derive(Clone, Copy)]
pub enum Edit<'f> {
    /// New anonymous memory with these flags (what was mapped there is dropped).
    Map(u32),
    /// A new mapping of `file` (a file with a page cache), from its page `pgoff` on, with
    /// `flags` (what was mapped there is dropped).
    MapFile {
        flags: u32,
        file: &'f Arc<File>,
        pgoff: u64,
    },
    /// The same pages, new protection.
    Protect(u32),
    /// Nothing mapped any more.
    Unmap,
    /// The same pages and protection; these kind bits set and cleared (`madvise` advice that
    /// lasts, such as `MADV_DONTFORK`). Covers mapped VMAs only.
    Advise { set: u32, clear: u32 },
}

/// Which translations an edit leaves stale, for the shootdown, and what it frees after it.
struct Retired {
    /// The range the edit may have changed: what a shootdown covers.
    span: Range<u64>,
    /// Frames of cleared entries (the address space's gathering buffer, lent).
    pages: Vec<PhysAddr>,
    tables: Vec<PhysAddr>,
    vmas: Vec<VmaPtr>,
    changed_entries: bool,
}

impl Mm {
    /// An empty address space sharing the kernel half; `None` when out of memory.
    pub fn new() -> Option<Arc<Self>> {
        let mut gather = Vec::new();
        gather.try_reserve_exact(GATHER_MIN).ok()?;
        let root = user_tables::new_root()?;
        Some(Arc::new_cyclic(|this| Self {
            this: this.clone(),
            mmap_lock: RwSem::new(),
            lock_seq: MmLockSeq::new(),
            detached_vmas: spin::Mutex::new(Vec::new()),
            gather: spin::Mutex::new(gather),
            tree: RangeTree::new(),
            root,
            cpu_mask: AtomicU64::new(0),
            resident_pages: PerCpuCounter::new(),
            brk_start: AtomicU64::new(0),
            brk_end: AtomicU64::new(0),
            default_flags: AtomicU32::new(0),
            users: AtomicUsize::new(1),
            torn_down: AtomicBool::new(false),
            concurrency_ids: AtomicU64::new(0),
        }))
    }

    /// Takes the lowest concurrency id no running thread of this address space holds, for a
    /// thread the scheduler switches in. A CPU holds at most one id of an address space (the
    /// switch gives the previous thread's back first), so the id is below the number of CPUs
    /// and of the address space's threads.
    pub fn take_concurrency_id(&self) -> u32 {
        let mut ids = self.concurrency_ids.load(Ordering::Relaxed);
        loop {
            let id = (!ids).trailing_zeros();
            match self.concurrency_ids.compare_exchange_weak(
                ids,
                ids | 1 << id,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return id,
                Err(now) => ids = now,
            }
        }
    }

    /// Gives back a concurrency id [`Mm::take_concurrency_id`] returned.
    pub fn put_concurrency_id(&self, id: u32) {
        self.concurrency_ids
            .fetch_and(!(1 << id), Ordering::Relaxed);
    }

    /// This address space's identity, as VMAs record it.
    pub fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// A handle that does not keep the address space alive (the files it maps keep one).
    pub fn weak(&self) -> Weak<Mm> {
        self.this.clone()
    }

    /// Unmaps the file pages `pages` of `cache` wherever this address space maps them
    /// (truncation cut them off the file): the entries of every VMA of the file are cleared,
    /// under `mmap_lock` held for writing and the VMA's write lock, so a fault that found one
    /// of the pages before the cut has installed it by then and it goes too.
    pub fn unmap_file_pages(&self, cache: &PageCache, pages: Range<u64>) {
        let locked = self.write();
        let parts: Vec<(&Vma, Range<u64>)> = locked
            .vmas_in(0..USER_END)
            .into_iter()
            .filter_map(|vma| file_range(vma, cache, &pages).map(|part| (vma, part)))
            .collect();
        let (Some((_, first)), Some((_, last))) = (parts.first(), parts.last()) else {
            return;
        };
        let mut retired = self.start_retiring(first.start..last.end);
        for (vma, part) in parts {
            locked.write_lock_vma(vma);
            locked.clear_pages(part, &mut retired, false);
        }
        self.retire(retired);
    }

    /// What `lock_vma_under_rcu` compares VMAs against.
    pub fn identity(&self) -> MmIdentity<'_> {
        MmIdentity {
            id: self.id(),
            lock_seq: &self.lock_seq,
        }
    }

    /// Takes `mmap_lock` for reading: the VMA set cannot change while the guard lives.
    pub fn read(&self) -> MmReadGuard<'_> {
        MmReadGuard {
            locked: MmapLocked { mm: self },
            _held: self.mmap_lock.read(),
        }
    }

    /// Takes `mmap_lock` for writing and opens a VMA write session (Linux's
    /// `mmap_write_lock`); both end when the guard is dropped.
    pub fn write(&self) -> MmWriteGuard<'_> {
        let held = self.mmap_lock.write();
        self.lock_seq.mmap_write_lock();
        MmWriteGuard {
            locked: MmapLocked { mm: self },
            _held: held,
        }
    }

    /// The tree lookup of the fault fast path, inside the caller's RCU read section. The VMA
    /// found stays a `Vma` while the section lasts (type-stable memory), but it is only known
    /// to be this address space's VMA for `addr` once `lock_vma_under_rcu` has locked and
    /// revalidated it.
    pub fn lookup_vma<'g>(&self, addr: u64, guard: &'g RcuReadGuard) -> Option<&'g Vma> {
        self.tree.lookup(addr, guard).map(|(_, vma)| vma.get(guard))
    }

    /// The first VMA that ends above `addr` (Linux's `find_vma`), looked up as
    /// [`lookup_vma`](Self::lookup_vma) does and trusted as little: for the lockless
    /// `/proc/PID/maps` walk (mm/maps.rs).
    pub fn next_vma<'g>(&self, addr: u64, guard: &'g RcuReadGuard) -> Option<&'g Vma> {
        self.tree
            .next_at_or_after(addr, guard)
            .map(|(_, vma)| vma.get(guard))
    }

    pub fn root(&self) -> PhysAddr {
        self.root.start()
    }

    /// The number of VMAs.
    pub fn vma_count(&self) -> usize {
        self.tree.len()
    }

    /// The flags every new mapping gets (`mlockall(MCL_FUTURE)`'s lock bits).
    pub fn default_flags(&self) -> u32 {
        self.default_flags.load(Ordering::Relaxed)
    }

    pub fn brk_range(&self) -> Range<u64> {
        self.brk_start.load(Ordering::Relaxed)..self.brk_end.load(Ordering::Relaxed)
    }

    /// The free interval around `range` once it is unmapped: from the end of the VMA below to
    /// the start of the VMA above.
    fn gap_around(&self, range: Range<u64>) -> (u64, u64) {
        let guard = read_lock();
        let floor = self
            .tree
            .iter_range(0..range.start, &guard)
            .last()
            .map_or(0, |(r, _)| r.end);
        let ceiling = self
            .tree
            .next_at_or_after(range.end, &guard)
            .map_or(LOWER_HALF_END, |(r, _)| r.start);
        (floor, ceiling)
    }

    /// What an edit of `span` collects for its shootdown, with the gathering buffer lent.
    fn start_retiring(&self, span: Range<u64>) -> Retired {
        Retired {
            span,
            pages: core::mem::take(&mut *self.gather.lock()),
            tables: Vec::new(),
            vmas: Vec::new(),
            changed_entries: false,
        }
    }

    /// Shoots down `span` for the CPUs that may hold this address space's translations.
    fn shoot_down(&self, span: &Range<u64>) {
        // The entry changes must be visible before we read which CPUs to flush (a CPU that
        // joins later loads the new entries).
        fence(Ordering::SeqCst);
        let cpus = CpuSet(self.cpu_mask.load(Ordering::SeqCst));
        if !cpus.is_empty() {
            smp::shootdown(
                cpus,
                Flush::Range {
                    start: span.start,
                    end: span.end,
                },
            );
        }
    }

    /// Makes room in the middle of an edit: shoots down what it changed so far and frees the
    /// frames it gathered.
    fn free_gathered(&self, retired: &mut Retired) {
        if retired.changed_entries {
            self.shoot_down(&retired.span);
            retired.changed_entries = false;
        }
        self.free_pages(&mut retired.pages);
        EARLY_FLUSHES.fetch_add(1, Ordering::Relaxed);
    }

    /// Frees gathered data pages (after their shootdown) and empties the buffer.
    fn free_pages(&self, pages: &mut Vec<PhysAddr>) {
        self.resident_pages.add(-(pages.len() as i64));
        // A frame another address space still maps (shared across fork) stays.
        pages.retain(|&page| page_refs::unshare(page));
        // SAFETY: the frames were taken out of their entries (`take_range`), the translations
        // to them shot down, and no other entry maps them: nothing refers to them.
        unsafe { frame::free_user_frames(pages) };
        pages.clear();
    }

    /// Shoots down stale translations, then frees what the edit retired and takes the
    /// gathering buffer back.
    fn retire(&self, retired: Retired) {
        let Retired {
            span,
            mut pages,
            tables,
            vmas,
            changed_entries,
        } = retired;
        if changed_entries || !tables.is_empty() {
            self.shoot_down(&span);
        }
        self.free_pages(&mut pages);
        // SAFETY: the tables were unhooked (`take_tables`) and shot down above.
        unsafe { frame::free_user_frames(&tables) };
        self.detached_vmas.lock().extend(vmas);
        if pages.capacity() > GATHER_MIN {
            // Keep only the guaranteed room between edits, if the heap gives it.
            let mut small = Vec::new();
            if small.try_reserve_exact(GATHER_MIN).is_ok() {
                pages = small;
            }
        }
        *self.gather.lock() = pages;
    }

    /// Drops the translation of the page at `page` on every CPU that has this address space
    /// loaded (after its entry changed to another frame). Interrupts must be enabled.
    pub fn flush_page_everywhere(&self, page: u64) {
        // The entry change must be visible before we read which CPUs to flush: a CPU that
        // joins later loads the new entry.
        fence(Ordering::SeqCst);
        let cpus =
            CpuSet(self.cpu_mask.load(Ordering::SeqCst)).with(crate::arch::percpu::cpu_index());
        smp::shootdown(
            cpus,
            Flush::Range {
                start: page,
                end: page + 4096,
            },
        );
    }

    /// One more process uses this address space (a `vfork` child).
    pub fn add_user(&self) {
        self.users.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether another process uses this address space too.
    pub fn has_other_users(&self) -> bool {
        self.users.load(Ordering::Acquire) > 1
    }

    /// A process stops using this address space; `true` when it was the last one, which then
    /// tears it down ([`Mm::teardown`]).
    pub fn drop_user(&self) -> bool {
        self.users.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Unmaps everything and frees the page tables: the address space is empty afterwards. No
    /// CPU may have it loaded (the caller, its last thread, switched to the kernel's tables).
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let locked = self.write();
        if self.vma_count() > 0 {
            locked
                .edit(0..USER_END, Edit::Unmap)
                .expect("unmapping allocates nothing");
        }
        // SAFETY: the root of this live address space.
        debug_assert!(unsafe { user_tables::is_lower_half_empty(self.root()) });
        debug_assert_eq!(self.resident_pages.sum(), 0);
        drop(locked);
    }
}

/// Proof that `mmap_lock` is held, for reading or writing: the queries of the VMA set that
/// either guard allows. Only [`MmReadGuard`] and [`MmWriteGuard`] hold one, so a reference to
/// it lives no longer than the lock; the VMAs it returns borrow from it.
pub struct MmapLocked<'a> {
    mm: &'a Mm,
}

/// `mmap_lock` held for reading ([`Mm::read`]); dropping the guard releases it.
#[must_use = "dropping the guard releases mmap_lock at once"]
pub struct MmReadGuard<'a> {
    locked: MmapLocked<'a>,
    _held: RwSemReadGuard<'a>,
}

/// `mmap_lock` held for writing with a VMA write session open ([`Mm::write`]). Dropping it
/// ends the session (every VMA write lock ends with it), frees the VMAs the session detached,
/// and releases `mmap_lock`.
#[must_use = "dropping the guard releases mmap_lock at once"]
pub struct MmWriteGuard<'a> {
    locked: MmapLocked<'a>,
    _held: RwSemWriteGuard<'a>,
}

impl<'a> Deref for MmReadGuard<'a> {
    type Target = MmapLocked<'a>;

    fn deref(&self) -> &MmapLocked<'a> {
        &self.locked
    }
}

impl<'a> Deref for MmWriteGuard<'a> {
    type Target = MmapLocked<'a>;

    fn deref(&self) -> &MmapLocked<'a> {
        &self.locked
    }
}

impl Drop for MmWriteGuard<'_> {
    /// Like Linux, VMAs are freed only once the session is over: until they are reused, a
    /// reader that found one in an old version of the tree sees it detached and retries its
    /// lookup (`VMA_LOCK_MISS`) rather than seeing it write-locked. `mmap_lock` itself is
    /// released afterwards, when the `_held` field is dropped.
    fn drop(&mut self) {
        let mm = self.mm;
        mm.lock_seq.mmap_write_unlock();
        let detached = core::mem::take(&mut *mm.detached_vmas.lock());
        if !detached.is_empty() {
            super::vma_lock::delay_before_free();
        }
        for vma in detached {
            Vma::free(vma);
        }
    }
}

impl<'a> MmapLocked<'a> {
    /// The address space whose lock is held.
    pub fn mm(&self) -> &'a Mm {
        self.mm
    }

    /// The VMA `vma` of this address space: it cannot be freed while the lock is held (VMAs
    /// are freed only when a write session ends). Only for VMAs found in this address space's
    /// tree, or created by the write session that holds the lock.
    fn vma(&self, vma: VmaPtr) -> &Vma {
        // SAFETY: as above: a VMA of this address space is freed only by the write session's
        // end, which needs `mmap_lock` that this guard holds.
        unsafe { vma.get_unchecked() }
    }

    /// The VMA containing `addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        let guard = read_lock();
        let found = self.mm.tree.lookup(addr, &guard).map(|(_, vma)| vma);
        found.map(|vma| self.vma(vma))
    }

    /// The first VMA that ends above `addr` (Linux's `find_vma`).
    pub fn vma_at_or_after(&self, addr: u64) -> Option<&Vma> {
        let guard = read_lock();
        let found = self
            .mm
            .tree
            .next_at_or_after(addr, &guard)
            .map(|(_, vma)| vma);
        found.map(|vma| self.vma(vma))
    }

    /// The pages in memory in VMAs locked with `mlock` (`Mlocked` in /proc/meminfo).
    pub fn locked_resident_pages(&self) -> u64 {
        let mut pages = 0;
        for vma in self.vmas_in(0..USER_END) {
            if vma.flags() & VM_LOCKED == 0 {
                continue;
            }
            for page in (vma.start()..vma.end()).step_by(4096) {
                // SAFETY: `mmap_lock` is held, so the tables stay.
                let current = unsafe { user_tables::leaf_entry(self.mm.root(), page) };
                if current & MAPS_PAGE != 0 {
                    pages += 1;
                }
            }
        }
        pages
    }

    /// The VMAs overlapping `range`, in order.
    pub fn vmas_in(&self, range: Range<u64>) -> Vec<&Vma> {
        let guard = read_lock();
        self.mm
            .tree
            .iter_range(range, &guard)
            .map(|(_, vma)| self.vma(vma))
            .collect()
    }

    /// Whether `range` overlaps no VMA.
    pub fn is_free(&self, range: Range<u64>) -> bool {
        let guard = read_lock();
        self.mm.tree.iter_range(range, &guard).next().is_none()
    }

    /// The highest free range of `len` bytes inside `[MMAP_MIN_ADDR, below)`.
    pub fn find_free_top_down(&self, len: u64, below: u64) -> Option<u64> {
        let guard = read_lock();
        self.mm
            .tree
            .find_gap_top_down(MMAP_MIN_ADDR..below, len, 4096, &guard)
    }
}

impl MmWriteGuard<'_> {
    /// Write-locks `vma` (a VMA of this address space): waits until its readers have left.
    fn write_lock_vma(&self, vma: &Vma) {
        vma.lock
            .vma_start_write(&self.mm.lock_seq, &super::vma_lock::PLATFORM);
    }

    /// Clears the entries of `range` (guard markers too, unless `keep_guards`), keeping their
    /// pages for `retire`. When the gathering buffer is full and may not grow (at
    /// [`GATHER_MAX`] frames, or the heap refuses), first shoots down and frees what it holds.
    fn clear_pages(&self, range: Range<u64>, retired: &mut Retired, keep_guards: bool) {
        let mut from = range.start;
        loop {
            let first = retired.pages.len();
            // SAFETY: this guard holds `mmap_lock` for writing, and the callers write-locked
            // the VMAs of `range` (or removed them): no fault runs there.
            let stopped = unsafe {
                user_tables::take_range(
                    self.mm.root(),
                    from,
                    range.end,
                    &mut retired.pages,
                    keep_guards,
                )
            };
            retired.changed_entries |= retired.pages.len() > first;
            // The shared zero page is not freed. (Only the frames just taken are filtered;
            // the earlier ones are filtered already.)
            let zero = zero_page();
            let pages = &mut retired.pages;
            let mut kept = first;
            for index in first..pages.len() {
                if pages[index] != zero {
                    pages[kept] = pages[index];
                    kept += 1;
                }
            }
            pages.truncate(kept);
            let Some(next) = stopped else {
                return;
            };
            if !grow_gather(&mut retired.pages) {
                self.mm.free_gathered(retired);
            }
            from = next;
        }
    }

    /// Sets the flags every new mapping gets (`mlockall`).
    pub fn set_default_flags(&self, flags: u32) {
        self.mm.default_flags.store(flags, Ordering::Relaxed);
    }

    /// Sets the heap's start (at load) or end (`brk`).
    pub fn set_brk(&self, range: Range<u64>) {
        self.mm.brk_start.store(range.start, Ordering::Relaxed);
        self.mm.brk_end.store(range.end, Ordering::Relaxed);
    }

    /// Applies `edit` to `range` (page aligned, inside user space). For `Protect` the caller
    /// has checked that VMAs cover all of `range`.
    ///
    /// Every VMA the edit replaces (split, merged, reprotected, removed) is write-locked first,
    /// so no fault runs in it while its entries change; the new pieces are write-locked and
    /// attached before they are published, and the old VMAs are detached (transient readers
    /// waited out) before they are freed.
    pub fn edit(&self, range: Range<u64>, edit: Edit) -> Result<(), Errno> {
        debug_assert!(range.start % 4096 == 0 && range.end % 4096 == 0 && range.start < range.end);
        debug_assert!(range.end <= USER_END);
        let mm = self.mm;
        let olds: Vec<(Range<u64>, &Vma)> = {
            let guard = read_lock();
            mm.tree
                .iter_range(range.clone(), &guard)
                .map(|(r, vma)| (r, self.vma(vma)))
                .collect()
        };
        let new_file = match edit {
            Edit::MapFile { file, pgoff, .. } => Some((file, pgoff)),
            _ => None,
        };
        let mut span = range.clone();
        let mut pieces: Vec<Piece> = Vec::new();
        if let Some((first, vma)) = olds.first()
            && first.start < range.start
        {
            pieces.push(Piece::part_of(vma, first.start..range.start, vma.flags()));
            span.start = first.start;
        }
        match edit {
            Edit::Map(flags) | Edit::MapFile { flags, .. } => {
                let anonymous = new_file.is_none();
                pieces.push(Piece {
                    range: range.clone(),
                    flags: accounted(flags, anonymous),
                    origin: None,
                })
            }
            Edit::Protect(flags) => {
                for (old, vma) in &olds {
                    let part = old.start.max(range.start)..old.end.min(range.end);
                    let kept = vma.flags() & !VM_ACCESS;
                    let flags = accounted(kept | (flags & VM_ACCESS), false);
                    pieces.push(Piece::part_of(vma, part, flags));
                }
            }
            Edit::Advise { set, clear } => {
                for (old, vma) in &olds {
                    let part = old.start.max(range.start)..old.end.min(range.end);
                    pieces.push(Piece::part_of(vma, part, (vma.flags() & !clear) | set));
                }
            }
            Edit::Unmap => {}
        }
        if let Some((last, vma)) = olds.last()
            && last.end > range.end
        {
            pieces.push(Piece::part_of(vma, range.end..last.end, vma.flags()));
            span.end = last.end;
        }
        let unmapping = matches!(edit, Edit::Unmap);
        if !unmapping {
            self.merge_with_neighbours(&mut span, &mut pieces, new_file);
        }
        let replaced = self.vmas_in(span.clone());
        // Commit accounting: the pieces are charged, the VMAs they replace uncharged.
        let charged_before: u64 = replaced
            .iter()
            .map(|v| charged_pages(v.flags(), v.pages()))
            .sum();
        let charged_after: u64 = pieces
            .iter()
            .map(|p| charged_pages(p.flags, (p.range.end - p.range.start) / 4096))
            .sum();
        if charged_after > charged_before {
            super::commit::charge(charged_after - charged_before)?;
        }
        let mut entries = Vec::with_capacity(pieces.len());
        for piece in &pieces {
            // A piece of an old VMA inherits its fields; a new mapping starts afresh.
            let vma = match piece.origin {
                Some(original) => Vma::create_from(mm, original, piece.range.clone(), piece.flags),
                None => Vma::create(mm, piece.range.clone(), piece.flags, new_file),
            };
            match vma {
                Some(vma) => entries.push((piece.range.clone(), vma)),
                None => {
                    for (_, vma) in entries {
                        Vma::free(vma);
                    }
                    super::commit::uncharge(charged_after.saturating_sub(charged_before));
                    return Err(ENOMEM);
                }
            }
        }
        for vma in &replaced {
            self.write_lock_vma(vma);
        }
        for (_, vma) in &entries {
            let vma = self.vma(*vma);
            self.write_lock_vma(vma);
            vma.lock.vma_mark_attached(&mm.lock_seq);
        }
        let mut retired = mm.start_retiring(range.clone());
        mm.tree
            .replace(span.clone(), &entries, &RcuReclaim, |_, vma| {
                retired.vmas.push(vma)
            })
            .expect("the new pieces lie where the old VMAs were");
        for vma in &retired.vmas {
            self.vma(*vma)
                .lock
                .vma_mark_detached(&mm.lock_seq, &super::vma_lock::PLATFORM);
        }

        super::commit::uncharge(charged_before.saturating_sub(charged_after));
        match edit {
            Edit::Map(_) | Edit::MapFile { .. } | Edit::Unmap => {
                self.clear_pages(range.clone(), &mut retired, false)
            }
            Edit::Advise { .. } => {}
            Edit::Protect(flags) => {
                // Only entries that changed can be stale in a TLB: a range nobody touched
                // needs no shootdown.
                // SAFETY: this guard holds `mmap_lock` for writing, and the VMAs of `range`
                // are write-locked: no fault runs there.
                retired.changed_entries = unsafe {
                    user_tables::update_range(mm.root(), range.start, range.end, |old| {
                        reprotect(old, flags)
                    })
                };
            }
        }
        if unmapping {
            let (floor, ceiling) = mm.gap_around(range.clone());
            // SAFETY: this guard holds `mmap_lock` for writing, and `floor..ceiling` is the
            // gap the unmapping left, where no VMA (so no fault) remains.
            unsafe {
                user_tables::take_tables(
                    mm.root(),
                    range.start,
                    range.end,
                    floor,
                    ceiling,
                    &mut retired.tables,
                )
            };
        }
        mm.retire(retired);
        Ok(())
    }

    /// Maps `range` (page aligned, inside user space) to `file` (a file with a page cache)
    /// from its page `pgoff` on, with the VMA `flags` (`VM_SHARED` for a shared mapping),
    /// replacing what was mapped there: the way mmap, and the ELF loader, map a file. Nothing
    /// is faulted in: each page comes from the page cache at its first access (a private
    /// mapping's page is copied at its first write); a page wholly past the end of the file
    /// raises `SIGBUS`.
    pub fn map_file(
        &self,
        range: Range<u64>,
        flags: u32,
        file: &Arc<File>,
        pgoff: u64,
    ) -> Result<(), Errno> {
        debug_assert!(file.inode().page_cache().is_some(), "no page cache to map");
        self.edit(range, Edit::MapFile { flags, file, pgoff })
    }

    /// Extends `span` and `pieces` over the VMAs just before and after `span` when the outer
    /// pieces continue them (same flags, and the same memory: anonymous, or the next pages of
    /// the same file), then joins adjacent pieces that continue each other. `new_file` is what
    /// the edit's new mapping maps.
    fn merge_with_neighbours<'v>(
        &'v self,
        span: &mut Range<u64>,
        pieces: &mut Vec<Piece<'v>>,
        new_file: Option<(&'v Arc<File>, u64)>,
    ) {
        if let Some(before) = span.start.checked_sub(1).and_then(|a| self.find_vma(a))
            && let Some(first) = pieces.first()
            && first.range.start == before.end()
            && Piece::whole(before).is_continued_by(first, new_file)
        {
            pieces[0] = Piece::part_of(before, before.start()..first.range.end, first.flags);
            span.start = before.start();
        }
        if let Some(after) = self.find_vma(span.end)
            && let Some(last) = pieces.last_mut()
            && last.range.end == after.start()
            && last.is_continued_by(&Piece::whole(after), new_file)
        {
            last.range.end = after.end();
            span.end = after.end();
        }
        let mut joined: Vec<Piece> = Vec::with_capacity(pieces.len());
        for piece in pieces.drain(..) {
            match joined.last_mut() {
                Some(last)
                    if last.range.end == piece.range.start
                        && last.is_continued_by(&piece, new_file) =>
                {
                    last.range.end = piece.range.end;
                }
                _ => joined.push(piece),
            }
        }
        *pieces = joined;
    }

    /// Drops the pages `range` maps (`MADV_DONTNEED`): later accesses fault them in again.
    /// Each VMA is judged on its own: a private VMA's part of `range` is cleared (write-locked
    /// first) — anonymous memory reads as zeroes afterwards, a file's pages as the file —, a
    /// file's shared VMA is cleared too (its pages stay in the file's page cache), a shared
    /// anonymous one keeps its pages, since they are its only copy of the data (Linux keeps
    /// them in shmem and refaults them), and holes are skipped.
    pub fn zap(&self, range: Range<u64>) {
        let mm = self.mm;
        let mut retired = mm.start_retiring(range.clone());
        for vma in self.vmas_in(range.clone()) {
            if vma.flags() & VM_SHARED != 0 && vma.file().is_none() {
                continue;
            }
            self.write_lock_vma(vma);
            let part = vma.start().max(range.start)..vma.end().min(range.end);
            self.clear_pages(part, &mut retired, true);
        }
        mm.retire(retired);
    }

    /// `MADV_GUARD_INSTALL` on `range`, inside VMAs of private anonymous memory: each page is
    /// dropped and its entry becomes a guard marker, which faults with `SIGSEGV` until
    /// `MADV_GUARD_REMOVE` or munmap clears it. `ENOMEM` when a page table cannot be made (the
    /// markers installed so far stay, as on Linux).
    pub fn install_guards(&self, range: Range<u64>) -> Result<(), Errno> {
        let mm = self.mm;
        let mut retired = mm.start_retiring(range.clone());
        for vma in self.vmas_in(range.clone()) {
            self.write_lock_vma(vma);
            let part = vma.start().max(range.start)..vma.end().min(range.end);
            self.clear_pages(part, &mut retired, true);
        }
        let mut result = Ok(());
        for page in range.step_by(4096) {
            // SAFETY: this guard holds `mmap_lock` for writing, so the tables stay.
            match unsafe { user_tables::lookup_or_create(mm.root(), page) } {
                // The VMA is write-locked and the page was cleared: no fault fills the entry.
                Some(slot) => slot.store(GUARD_ENTRY, Ordering::Release),
                None => {
                    result = Err(ENOMEM);
                    break;
                }
            }
        }
        mm.retire(retired);
        result
    }

    /// `MADV_GUARD_REMOVE` on `range`: its guard markers are cleared (the pages fault in afresh).
    pub fn remove_guards(&self, range: Range<u64>) {
        for vma in self.vmas_in(range.clone()) {
            self.write_lock_vma(vma);
        }
        // SAFETY: this guard holds `mmap_lock` for writing and the VMAs of `range` are
        // write-locked: no fault runs there. A marker is never in a TLB: nothing to shoot down.
        unsafe { user_tables::clear_guards(self.mm.root(), range.start, range.end) };
    }

    /// `MADV_REMOVE` on shared anonymous memory (`range` inside such VMAs): the pages read as
    /// zeroes afterwards in every address space that shares them, as a hole punched in Linux's
    /// shmem object does. Their frames are the only copy, so they are cleared in place.
    pub fn zero_shared_pages(&self, range: Range<u64>) {
        let zero = zero_page();
        for page in range.step_by(4096) {
            // SAFETY: this guard holds `mmap_lock`, so the tables stay.
            let current = unsafe { user_tables::leaf_entry(self.mm.root(), page) };
            if current & MAPS_PAGE != 0 && address(current) != zero {
                // SAFETY: a frame of shared anonymous memory that this entry maps, and keeps
                // mapped while `mmap_lock` is held.
                unsafe { user_tables::clear_shared_frame(address(current)) };
            }
        }
    }

    /// Maps a fresh page at `addr` (inside a VMA) regardless of the VMA's write permission,
    /// and returns the page's kernel address: for filling an executable's pages and the
    /// initial stack at load time. An existing page is reused.
    pub fn page_for_loading(&self, addr: u64) -> Result<u64, Errno> {
        let flags = self.find_vma(addr).ok_or(ENOMEM)?.flags();
        let mm = self.mm;
        // SAFETY: this guard holds `mmap_lock`, so the tables stay.
        let slot = unsafe { user_tables::lookup_or_create(mm.root(), addr) }.ok_or(ENOMEM)?;
        let current = slot.load(Ordering::Acquire);
        if current & PRESENT != 0 && address(current) != zero_page() {
            return Ok(address(current).to_virt());
        }
        let page = user_tables::zeroed_frame().ok_or(ENOMEM)?;
        let virt = page.start().to_virt();
        // The entry owns the page from now on; unmapping frees it.
        slot.store(
            entry(page.into_raw(), entry_flags(flags, true)),
            Ordering::Release,
        );
        mm.resident_pages.add(1);
        Ok(virt)
    }
}

/// One VMA an edit makes: its range and flags, and where its other fields come from.
struct Piece<'v> {
    range: Range<u64>,
    flags: u32,
    /// The old VMA whose range holds `range.start` (the piece is a part of it, or extends
    /// it), or `None` for the edit's new mapping, which starts at `range.start`.
    origin: Option<&'v Vma>,
}

impl<'v> Piece<'v> {
    fn part_of(vma: &'v Vma, range: Range<u64>, flags: u32) -> Self {
        Self {
            range,
            flags,
            origin: Some(vma),
        }
    }

    fn whole(vma: &'v Vma) -> Self {
        Self::part_of(vma, vma.start()..vma.end(), vma.flags())
    }

    /// What the piece maps: the file and the file page its first page shows, or `None` for
    /// anonymous memory. `new_file` is what the edit's new mapping maps.
    fn backing(&self, new_file: Option<(&'v Arc<File>, u64)>) -> Option<(&'v Arc<File>, u64)> {
        match self.origin {
            Some(vma) => vma.file().map(|file| {
                let pages = (self.range.start - vma.start()) / 4096;
                (file.file(), file.pgoff() + pages)
            }),
            None => new_file,
        }
    }

    /// Whether `next`, which starts where this piece ends, can be one VMA with it: the same
    /// flags, and the same kind of memory (anonymous, or the following pages of the same
    /// open file).
    fn is_continued_by(&self, next: &Piece<'v>, new_file: Option<(&'v Arc<File>, u64)>) -> bool {
        self.flags == next.flags
            && match (self.backing(new_file), next.backing(new_file)) {
                (None, None) => true,
                (Some((file, pgoff)), Some((next_file, next_pgoff))) => {
                    let pages = (self.range.end - self.range.start) / 4096;
                    Arc::ptr_eq(file, next_file) && pgoff + pages == next_pgoff
                }
                _ => false,
            }
    }
}

/// The addresses at which `vma` shows the file pages `pages` of `cache`, if it shows any.
fn file_range(vma: &Vma, cache: &PageCache, pages: &Range<u64>) -> Option<Range<u64>> {
    let file = vma.file().filter(|f| core::ptr::eq(f.cache(), cache))?;
    let first = file.pgoff();
    let shown = first..first + (vma.end() - vma.start()) / 4096;
    let start = pages.start.max(shown.start);
    let end = pages.end.min(shown.end);
    (start < end).then(|| vma.start() + (start - first) * 4096..vma.start() + (end - first) * 4096)
}

impl Drop for Mm {
    fn drop(&mut self) {
        // The root table is freed afterwards, with the `root` field.
        self.teardown();
    }
}

/// `flags` with `VM_ACCOUNT` added when a VMA with them is charged to the commit count: private
/// writable memory, or shared memory that is `anonymous`, unless `VM_NORESERVE`.
fn accounted(flags: u32, anonymous: bool) -> u32 {
    let private_writable = flags & (VM_SHARED | VM_WRITE) == VM_WRITE;
    let shared_anonymous = flags & VM_SHARED != 0 && anonymous;
    if flags & VM_NORESERVE == 0 && (private_writable || shared_anonymous) {
        flags | VM_ACCOUNT
    } else {
        flags
    }
}

/// The pages a VMA of `pages` pages with `flags` is charged.
pub(super) fn charged_pages(flags: u32, pages: u64) -> u64 {
    if flags & VM_ACCOUNT != 0 { pages } else { 0 }
}

/// The leaf entry bits for a page of a VMA with `flags`; `writable` says whether this page may
/// be written now (a private page it owns) rather than on the next write fault.
pub fn entry_flags(flags: u32, writable: bool) -> u64 {
    if flags & VM_ACCESS == 0 {
        return PROT_NONE_ENTRY;
    }
    let mut bits = PRESENT | USER | ACCESSED;
    if writable && flags & VM_WRITE != 0 {
        bits |= WRITABLE | DIRTY;
    }
    if flags & VM_EXEC == 0 {
        bits |= NO_EXECUTE;
    }
    bits
}

/// A leaf entry under new protection `flags`: the page stays, write permission only if it had
/// it (a read-only or zero page gains it at its next write fault), and so do the accessed and
/// dirty bits, so that an mprotect that changes no permission changes no entry (and shoots
/// nothing down).
fn reprotect(old: u64, flags: u32) -> u64 {
    let was_writable = old & WRITABLE != 0;
    let new = entry(address(old), entry_flags(flags, was_writable));
    if new & PRESENT != 0 {
        new | (old & (ACCESSED | DIRTY))
    } else {
        new
    }
}

/// Makes `next`'s address space the loaded one on this CPU (called by the scheduler, with
/// interrupts disabled, when it switches from `prev` to `next`).
///
/// The CPU joins the new mask with a locked RMW *before* loading CR3, and leaves the old mask
/// only *after* it loaded the new CR3: an editor that reads the mask after clearing entries
/// either sees this CPU, or this CPU loads the tables after the clearing.
pub fn switch_address_space(prev: &crate::sched::Task, next: &crate::sched::Task, cpu: usize) {
    let prev_mm = prev.active_mm();
    let next_mm = next.active_mm();
    if core::ptr::eq(
        prev_mm.map_or(core::ptr::null(), |m| m as *const Mm),
        next_mm.map_or(core::ptr::null(), |m| m as *const Mm),
    ) {
        return;
    }
    let bit = 1u64 << cpu;
    let root = match next_mm {
        Some(mm) => {
            mm.cpu_mask.fetch_or(bit, Ordering::SeqCst);
            mm.root()
        }
        None => super::kernel_tables::kernel_root(),
    };
    // SAFETY: every root shares the kernel half of the kernel's own tables (`new_root`).
    unsafe { crate::arch::mmu::load_root(root) };
    if let Some(mm) = prev_mm {
        mm.cpu_mask.fetch_and(!bit, Ordering::SeqCst);
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use core::sync::atomic::Ordering;

    use super::{EARLY_FLUSHES, GATHER_CANNOT_GROW, GATHER_MIN};
    use crate::arch::uaccess::write_user;
    use crate::ktest;
    use crate::mm::mmap::{self, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    use crate::mm::torture::{address_space, start_in};

    const PAGE: u64 = 4096;
    const BASE: u64 = 0x4000_0000;
    /// Four full batches of the room every address space keeps, and a few pages more.
    const PAGES: u64 = 4 * GATHER_MIN as u64 + 3;

    /// Maps `PAGES` pages at `BASE` in a new address space and writes every one of them.
    fn touched_region(name: &str) -> alloc::sync::Arc<crate::mm::torture::Space> {
        let space = address_space(name);
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
        mmap::mmap(
            &space.mm,
            BASE,
            PAGES * PAGE,
            PROT_READ | PROT_WRITE,
            flags,
            u64::MAX,
            0,
        )
        .expect("map the region");
        let writer = start_in(&space, || {
            for page in 0..PAGES {
                write_user(BASE + page * PAGE, &page).expect("write a page");
            }
        });
        assert!(
            writer.wait_timeout(60_000_000_000),
            "the writer never finished"
        );
        assert_eq!(space.mm.resident_pages.sum(), PAGES as i64);
        space
    }

    ktest! {
        timeout_ms = 120_000;
        /// Unmapping needs no memory in proportion to what it unmaps. With the gathering buffer
        /// unable to grow, as when the heap cannot (killing a process that ate all memory), a
        /// munmap shoots down and frees in batches of the room every address space keeps, and
        /// frees every page; with the heap willing, the buffer grows and there is one shootdown.
        fn unmapping_frees_in_batches_when_the_gather_cannot_grow() {
            let space = touched_region("gather-refused");
            let before = EARLY_FLUSHES.load(Ordering::Relaxed);
            GATHER_CANNOT_GROW.store(true, Ordering::Relaxed);
            let unmapped = mmap::munmap(&space.mm, BASE, PAGES * PAGE);
            GATHER_CANNOT_GROW.store(false, Ordering::Relaxed);
            unmapped.expect("munmap");
            assert_eq!(space.mm.resident_pages.sum(), 0, "pages left mapped");
            assert_eq!(
                EARLY_FLUSHES.load(Ordering::Relaxed) - before,
                PAGES / GATHER_MIN as u64,
                "one early shootdown per full batch"
            );
            assert_eq!(space.mm.gather.lock().capacity(), GATHER_MIN, "the buffer grew");
            space.mm.teardown();

            let space = touched_region("gather-grows");
            let before = EARLY_FLUSHES.load(Ordering::Relaxed);
            mmap::munmap(&space.mm, BASE, PAGES * PAGE).expect("munmap");
            assert_eq!(space.mm.resident_pages.sum(), 0, "pages left mapped");
            assert_eq!(EARLY_FLUSHES.load(Ordering::Relaxed), before, "an early shootdown");
            space.mm.teardown();
        }
    }
}
