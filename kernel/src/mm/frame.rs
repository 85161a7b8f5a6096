//! Physical frames: the buddy allocator (kernel/libs/buddy) behind one spinlock, fed from the
//! bootloader's memory map at boot, and in front of it one cache of free single frames per CPU
//! for user pages and user page tables.
//!
//! Frames below 1 MiB are withheld (firmware leftovers; one becomes the AP trampoline), and so
//! is everything the bootloader reports as in use (kernel image, page tables, ramdisk).
//!
//! The per-CPU caches keep the page-fault path off the allocator lock: a fault takes a frame
//! from its CPU's cache, and unmapping returns frames to the unmapping CPU's cache. A cache
//! that runs dry takes [`CACHE_BATCH`] frames under one acquisition of the allocator lock; one
//! that overflows gives [`CACHE_BATCH`] back the same way. Cached frames count as free.
//!
//! Each cache has a lock of its own, which only its CPU takes on the fast path (uncontended);
//! another CPU takes it only to drain the cache when memory runs short. Lock order: a cache,
//! then the allocator; the kernel heap's lock comes before both (heap growth allocates frames).
//! Nothing allocates from the heap while holding a cache's lock.
//!
//! How many frames a cache keeps is set once the CPUs are up ([`size_cpu_caches`]): all caches
//! together up to 1/8 of memory, each up to [`MAX_CACHE_FRAMES`]. That is enough for a thread
//! that unmaps a region and maps it again to get its frames back without the allocator lock,
//! up to will-it-scale's page_fault1 (128 MiB regions: bench scenario `a`). The caches never
//! cost anyone memory: when the allocator runs short, [`allocate`] and [`allocate_for_user`]
//! drain every CPU's cache into it and try again, so `ENOMEM` means memory is really gone.
//!
//! Frames are handed out as owned values: [`Frames`] (a block from the buddy allocator) and
//! [`UserFrame`] (one frame for user memory or a user page table) give themselves back when
//! dropped. A frame that becomes part of something else (a page-table entry, the heap's
//! mapping, an AP's stack) is handed on with `into_raw`; whoever then holds its address owns
//! it and frees it with the `unsafe` [`free`] or [`free_user_frames`].

use core::sync::atomic::{AtomicUsize, Ordering};

use alloc::vec::Vec;

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use buddy::{BuddyAllocator, FRAME_SIZE};

use super::PhysAddr;
use crate::arch::percpu::{self, PerCpu, per_cpu};
use crate::sync::IrqSpinLock;

/// `2^order` contiguous frames from the buddy allocator, owned: dropping the value frees
/// them, [`Frames::into_raw`] hands them on.
#[must_use = "dropping the block frees it at once"]
pub struct Frames {
    start: PhysAddr,
    order: u8,
}

impl Frames {
    /// The physical address of the first frame.
    pub fn start(&self) -> PhysAddr {
        self.start
    }

    /// Hands the block on: its new owner frees it with [`free`] (same order).
    pub fn into_raw(self) -> PhysAddr {
        let start = self.start;
        core::mem::forget(self);
        start
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        // SAFETY: the block is this value's alone (allocated here, never handed on).
        unsafe { free(self.start, usize::from(self.order)) };
    }
}

/// One frame for user memory or a user page table, owned: dropping it gives it back to this
/// CPU's cache, [`UserFrame::into_raw`] hands it on (to a page-table entry).
#[must_use = "dropping the frame frees it at once"]
pub struct UserFrame(PhysAddr);

impl UserFrame {
    pub fn phys(&self) -> PhysAddr {
        self.0
    }

    /// Hands the frame on: its new owner frees it with [`free_user_frames`].
    pub fn into_raw(self) -> PhysAddr {
        let phys = self.0;
        core::mem::forget(self);
        phys
    }
}

impl Drop for UserFrame {
    fn drop(&mut self) {
        // SAFETY: the frame is this value's alone (allocated here, never handed on).
        unsafe { free_user_frames(&[self.0]) };
    }
}

/// Physical memory below this is never handed out.
const LOW_MEMORY_END: u64 = 0x10_0000;

static FRAMES: IrqSpinLock<BuddyAllocator> = IrqSpinLock::new(BuddyAllocator::new());

fn usable_ranges(regions: &MemoryRegions) -> impl Iterator<Item = core::ops::Range<u64>> + Clone {
    regions
        .iter()
        .filter(|region| region.kind == MemoryRegionKind::Usable)
        .map(|region| region.start.max(LOW_MEMORY_END)..region.end)
        .filter(|range| range.start < range.end)
}

/// # Safety
/// `regions` must be the bootloader's memory map and `phys_offset` its direct map; once only.
pub unsafe fn init(phys_offset: u64, regions: &MemoryRegions) {
    let usable: u64 = usable_ranges(regions).map(|r| r.end - r.start).sum();
    let mut frames = FRAMES.lock();
    // SAFETY: the bootloader reports these ranges as free RAM that it mapped at `phys_offset`,
    // and nothing else in the kernel uses them.
    if let Err(error) = unsafe { frames.init(phys_offset, usable_ranges(regions)) } {
        panic!("frame allocator: {error}");
    }
    let stats = frames.stats();
    log::info!(
        "memory: {} MiB usable in {} regions above 1 MiB; {} frames free ({} MiB), {} frames of allocator metadata",
        usable >> 20,
        usable_ranges(regions).count(),
        stats.free_frames,
        (stats.free_frames as u64 * FRAME_SIZE) >> 20,
        stats.metadata_frames
    );
}

/// `2^order` contiguous frames; `None` when memory is exhausted (after draining the per-CPU
/// caches into the allocator).
pub fn allocate(order: usize) -> Option<Frames> {
    // Not a `match` on the first attempt: its lock guard would live through the arms.
    let first = FRAMES.lock().allocate(order);
    let start = match first {
        Some(phys) => phys,
        None => {
            drain_cpu_caches();
            FRAMES.lock().allocate(order)?
        }
    };
    Some(Frames {
        start: PhysAddr::new(start),
        order: order as u8,
    })
}

/// Free frames kept for the kernel: user pages are not allocated below this, so a process that
/// eats all memory is killed while the kernel can still allocate (its heap, slabs, kernel
/// stacks and tables take from the reserve; nothing else does).
pub const USER_RESERVE_FRAMES: usize = 2048;

/// What a frame from [`allocate_for_user`] is for, which decides how much of the reserve it may
/// take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserUse {
    /// A page of user memory (anonymous, a copy, the page cache's): never below
    /// [`USER_RESERVE_FRAMES`].
    Page,
    /// A user page table: may take the upper half of the reserve, so that the fault which finds
    /// no page for its data still finds the tables on its way there, and the process is killed
    /// for want of the page rather than of a table.
    PageTable,
}

impl UserUse {
    /// Free frames this use leaves to the kernel.
    fn reserve(self) -> usize {
        match self {
            Self::Page => USER_RESERVE_FRAMES,
            Self::PageTable => USER_RESERVE_FRAMES / 2,
        }
    }
}

/// The most frames one CPU's cache keeps (256 MiB of memory; its array takes 512 KiB).
const MAX_CACHE_FRAMES: usize = 65_536;
/// Frames moved between a cache and the buddy allocator per lock acquisition: one block of
/// order [`CACHE_BATCH_ORDER`].
const CACHE_BATCH: usize = 1 << CACHE_BATCH_ORDER;
const CACHE_BATCH_ORDER: usize = 6;
/// Frames [`free_user_frames`] returns per acquisition of the cache's lock (interrupts stay
/// disabled that long: a few microseconds).
const FREE_CHUNK: usize = 256;

/// Sizes the per-CPU caches of the `cpus` CPUs online: together at most 1/8 of all frames,
/// each at least a few batches and at most [`MAX_CACHE_FRAMES`]. Until then the caches hold
/// nothing and user frames come straight from the allocator.
pub fn size_cpu_caches(cpus: usize) {
    let total = FRAMES.lock().stats().total_frames;
    let limit = (total / (8 * cpus.max(1))).clamp(4 * CACHE_BATCH, MAX_CACHE_FRAMES);
    for cpu in percpu::online_cpus() {
        // Nothing allocates or frees heap memory under a cache's lock: the new vector is
        // allocated before it is taken, and the old one (empty) is dropped after.
        let mut frames = Vec::with_capacity(limit);
        let mut cache = CACHES[cpu.index].frames.lock();
        frames.append(&mut cache);
        let old = core::mem::replace(&mut *cache, frames);
        drop(cache);
        drop(old);
    }
    log::info!(
        "frames: each CPU caches up to {limit} frames ({} KiB)",
        limit * FRAME_SIZE as usize / 1024
    );
}

/// One CPU's free single frames.
struct FrameCache {
    /// The free frames; never grows beyond its capacity, which [`size_cpu_caches`] sets (so
    /// nothing allocates under the lock). Taken by the owning CPU, and by [`drain_cpu_caches`].
    frames: IrqSpinLock<Vec<u64>>,
    /// `frames.len()`, mirrored under the lock, for [`stats`] to read without it.
    count: AtomicUsize,
}

static CACHES: PerCpu<FrameCache> = per_cpu![FrameCache {
    frames: IrqSpinLock::new(Vec::new()),
    count: AtomicUsize::new(0),
}];

/// Runs `f` on this CPU's cache under its lock (interrupts disabled).
fn with_local_cache<R>(f: impl FnOnce(&mut Vec<u64>) -> R) -> R {
    let cache = CACHES.local();
    let mut frames = cache.frames.lock();
    let result = f(&mut frames);
    cache.count.store(frames.len(), Ordering::Relaxed);
    result
}

/// One frame for user memory or a user page table, unless only the part of the kernel's reserve
/// that `used_for` may not take is left (after draining every CPU's cache into the allocator);
/// frames already in this CPU's cache are handed out regardless (the cache is refilled only
/// above [`USER_RESERVE_FRAMES`]).
pub fn allocate_for_user(used_for: UserUse) -> Option<UserFrame> {
    let phys = match take_for_user(used_for) {
        Some(phys) => phys,
        None => {
            drain_cpu_caches();
            take_for_user(used_for)?
        }
    };
    Some(UserFrame(PhysAddr::new(phys)))
}

/// [`allocate_for_user`] without the drain: from this CPU's cache, refilled from the allocator
/// (with a batch if the cache has room, else one frame).
fn take_for_user(used_for: UserUse) -> Option<u64> {
    with_local_cache(|frames| {
        if let Some(phys) = frames.pop() {
            return Some(phys);
        }
        let mut buddy = FRAMES.lock();
        let free = buddy.stats().free_frames;
        // The cache refills only above the whole reserve, so what it holds is never the
        // reserve's, whoever takes it later.
        let spare = free.saturating_sub(USER_RESERVE_FRAMES);
        // A batch (as much as the cache holds), one frame of which is handed out; with no
        // cache yet (early boot), the one frame straight from the allocator. A whole batch is
        // one block split into single frames where the allocator has one: a cache that
        // refills often (its CPU faults in what another CPU unmapped) then costs little more
        // than one that does not.
        let batch = spare.min(CACHE_BATCH).min(frames.capacity());
        let block = if batch == CACHE_BATCH {
            buddy.allocate_singles(CACHE_BATCH_ORDER)
        } else {
            None
        };
        match block {
            Some(first) => frames.extend(
                (0..CACHE_BATCH as u64)
                    .rev()
                    .map(|i| first + i * FRAME_SIZE),
            ),
            None => {
                for _ in 0..batch {
                    match buddy.allocate(0) {
                        Some(phys) => frames.push(phys),
                        None => break,
                    }
                }
            }
        }
        match frames.pop() {
            Some(phys) => Some(phys),
            None if free > used_for.reserve() => buddy.allocate(0),
            None => None,
        }
    })
}

/// Free frames now, the per-CPU caches counted (for the out-of-memory report).
pub fn free_frames() -> usize {
    stats().free_frames
}

/// Returns frames that held user memory or user page tables (an unmapped range) to this CPU's
/// cache, taking the cache's lock once per [`FREE_CHUNK`] frames rather than once per frame; a
/// full cache gives a batch back to the allocator.
///
/// # Safety
/// Each is a single frame handed on with [`UserFrame::into_raw`] (or [`Frames::into_raw`], a
/// block of order 0); nothing refers to it any more (its page-table entry is cleared and shot
/// down), and it is freed once.
pub unsafe fn free_user_frames(all: &[PhysAddr]) {
    for chunk in all.chunks(FREE_CHUNK) {
        with_local_cache(|frames| {
            for phys in chunk.iter().map(|phys| phys.as_u64()) {
                if frames.len() < frames.capacity() {
                    frames.push(phys);
                    continue;
                }
                // Full (or no cache yet, in early boot): a batch goes back to the allocator,
                // this frame and the most recently cached ones.
                let keep = frames.len().saturating_sub(CACHE_BATCH - 1);
                give_back_all(core::iter::once(phys).chain(frames.drain(keep..)));
            }
        });
    }
}

/// Frees single frames to the buddy allocator under one acquisition of its lock.
fn give_back_all(frames: impl Iterator<Item = u64>) {
    let mut buddy = FRAMES.lock();
    for phys in frames {
        if let Err(error) = buddy.free(phys, 0) {
            panic!("frame allocator: {error}");
        }
    }
}

/// Moves every CPU's cached frames back into the allocator (memory is short). One cache at a
/// time, and never while holding another: the caller must hold no cache's lock.
fn drain_cpu_caches() {
    if cached_frames() == 0 {
        return;
    }
    for cache in CACHES.iter() {
        if cache.count.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let mut frames = cache.frames.lock();
        give_back_all(frames.drain(..));
        cache.count.store(0, Ordering::Relaxed);
    }
}

/// Frames sitting in the per-CPU caches.
fn cached_frames() -> usize {
    CACHES.sum(|cache| cache.count.load(Ordering::Relaxed))
}

/// Returns a block from [`allocate`] that was handed on with [`Frames::into_raw`]. A bad free
/// the allocator notices (double, foreign, misaligned) is a kernel bug and panics.
///
/// # Safety
/// Nothing uses the block any more (no mapping or reference to it remains), and `start` and
/// `order` are those of one block from [`allocate`].
pub unsafe fn free(start: PhysAddr, order: usize) {
    if let Err(error) = FRAMES.lock().free(start.as_u64(), order) {
        panic!("frame allocator: {error}");
    }
}

/// The buddy allocator's statistics, with the frames in the per-CPU caches counted as free
/// (`free_blocks` describes the buddy allocator alone).
pub fn stats() -> buddy::Stats {
    let mut stats = FRAMES.lock().stats();
    stats.free_frames += cached_frames();
    stats
}

/// True while someone holds the allocator lock (the test runner checks this after a panic).
#[cfg(feature = "ktest")]
pub fn is_locked() -> bool {
    FRAMES.is_locked()
}

pub fn log_statistics() {
    let stats = stats();
    log::info!(
        "frames: {} of {} free; free blocks by order {:?}; {} allocations, {} frees",
        stats.free_frames,
        stats.total_frames,
        stats.free_blocks,
        stats.allocations,
        stats.frees
    );
}

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, Ordering};

    use super::{LOW_MEMORY_END, allocate, stats};
    use crate::ktest;

    ktest! {
        /// The runner's check for a lock a failed test left held waits out a brief holder on
        /// another CPU. (It used to look once. On 8 CPUs a run was once aborted between two
        /// passing tests with no panic or fault report, which only this check could do: most
        /// likely a thread of the test before was freeing memory at that moment.)
        fn a_lock_held_briefly_elsewhere_is_not_left_held() {
            use crate::arch::percpu::{self, CpuSet};
            let Some(other) = ktest::other_cpu() else {
                return ktest::skip("needs 2 or more CPUs");
            };
            let me = percpu::cpu_index();
            let held = AtomicBool::new(false);
            let left_held = spin::Mutex::new(None);
            crate::arch::smp::run_in_idle(CpuSet::default().with(me).with(other), &|| {
                if percpu::cpu_index() == other {
                    let _frames = super::FRAMES.lock();
                    held.store(true, Ordering::Release);
                    crate::time::delay_ns(20_000_000);
                } else {
                    while !held.load(Ordering::Acquire) {
                        core::hint::spin_loop();
                    }
                    *left_held.lock() = Some(crate::ktest::lock_left_held());
                }
            });
            assert_eq!(*left_held.lock(), Some(None), "a lock held for 20 ms taken as left held");
        }
    }

    ktest! {
        /// Blocks of every order: aligned, above 1 MiB, writable, disjoint; all come back.
        fn blocks_are_aligned_disjoint_and_returned() {
            let mut blocks = Vec::with_capacity(32);
            let before = stats();
            for order in 0..=6 {
                for _ in 0..4 {
                    let block = allocate(order).expect("frames exhausted");
                    let phys = block.start().as_u64();
                    let bytes = 4096u64 << order;
                    assert_eq!(phys % bytes, 0, "order-{order} block at {phys:#x} misaligned");
                    assert!(phys >= LOW_MEMORY_END, "frame below 1 MiB handed out: {phys:#x}");
                    // SAFETY: the block was just allocated to us; the direct map covers it.
                    unsafe { core::ptr::write_bytes(block.start().to_virt() as *mut u8, order as u8 + 1, bytes as usize) };
                    blocks.push((block, order));
                }
            }
            for (block, order) in &blocks {
                let len = (4096usize) << order;
                // SAFETY: still allocated; written above.
                let data = unsafe { core::slice::from_raw_parts(block.start().to_virt() as *const u8, len) };
                assert!(data.iter().all(|&b| b == *order as u8 + 1), "block {:#x} overlaps another", block.start());
            }
            drop(blocks);
            let after = stats();
            assert_eq!(before.free_frames, after.free_frames, "frames leaked");
            assert_eq!(before.free_blocks, after.free_blocks, "buddies did not coalesce back");
        }
    }

    ktest! {
        /// User frames come from this CPU's cache, distinct and aligned, through several
        /// refills; freeing them (in chunks, then singly) overflows the cache into the buddy
        /// allocator in batches, and every frame is accounted for throughout.
        fn user_frames_pass_through_the_cpu_cache() {
            let me = crate::arch::percpu::cpu_index();
            let limit = super::CACHES[me].frames.lock().capacity();
            let count = limit + 3 * super::CACHE_BATCH + 7;
            // Both vectors first: the heap must not grow (and take frames) while we count.
            let mut taken = Vec::with_capacity(count);
            let mut sorted = Vec::with_capacity(count);
            let before = stats().free_frames;
            for _ in 0..count {
                let phys = super::allocate_for_user(super::UserUse::Page).expect("frames for the test").into_raw();
                assert_eq!(phys.as_u64() % 4096, 0, "frame {phys:#x} misaligned");
                taken.push(phys);
            }
            assert_eq!(stats().free_frames, before - count, "cached frames miscounted");
            sorted.extend_from_slice(&taken);
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), count, "a frame was handed out twice");
            // Most in one call (several chunks, overflowing the cache), the rest one by one.
            let (many, few) = taken.split_at(count - 5);
            // SAFETY: the frames were taken above and are used by nothing.
            unsafe { super::free_user_frames(many) };
            for &phys in few {
                // SAFETY: as above.
                unsafe { super::free_user_frames(&[phys]) };
            }
            assert_eq!(stats().free_frames, before, "frames lost on the way back");
            let cached = super::CACHES[me].count.load(Ordering::Relaxed);
            assert!(cached <= limit, "the cache outgrew its limit {limit}: {cached}");
        }
    }

    ktest! {
        /// User pages stop at the kernel's reserve and user page tables at half of it, while
        /// the kernel itself still allocates below both: its heap grows, slabs take objects,
        /// RCU callbacks run, blocks come from the allocator.
        fn the_reserve_is_left_to_page_tables_and_the_kernel() {
            use super::{USER_RESERVE_FRAMES, UserUse, allocate_for_user};
            // Room for every frame, reserved first (the heap must not grow while counting).
            let mut pages = Vec::with_capacity(stats().free_frames);
            let mut tables = Vec::with_capacity(USER_RESERVE_FRAMES);
            while let Some(frame) = allocate_for_user(UserUse::Page) {
                pages.push(frame);
            }
            let at_reserve = stats().free_frames;
            while let Some(frame) = allocate_for_user(UserUse::PageTable) {
                tables.push(frame);
            }
            let at_half = stats().free_frames;
            let grown_heap = alloc::vec![1u8; 512 * 1024];
            let objects: Vec<alloc::boxed::Box<[u64; 16]>> =
                (0..1024).map(|i| alloc::boxed::Box::new([i; 16])).collect();
            crate::sync::rcu::synchronize_rcu();
            crate::sync::rcu::rcu_barrier();
            let block = allocate(2).expect("a kernel block from the reserve");
            drop((block, objects, grown_heap, tables, pages));
            // Other CPUs may free frames meanwhile (work the tests before left): a batch.
            let near = |free: usize, mark: usize| free.abs_diff(mark) <= super::CACHE_BATCH;
            assert!(near(at_reserve, USER_RESERVE_FRAMES), "user pages stopped at {at_reserve} free frames");
            assert!(near(at_half, USER_RESERVE_FRAMES / 2), "page tables stopped at {at_half} free frames");
        }
    }

    ktest! {
        /// Taking every frame ends in `None`, not a panic, and everything comes back. Frames
        /// sitting in this CPU's cache and in another CPU's are drained into the allocator and
        /// handed out too: memory is exhausted only when the caches are empty.
        fn exhaustion_is_clean() {
            // Room for every frame, reserved first: the heap must not grow (and take frames)
            // while the test counts them.
            let mut taken = Vec::with_capacity(stats().free_frames);
            let before = stats();
            let fill_cache = || {
                // On the stack, not the heap (see above); dropping them frees them.
                let frames: [super::UserFrame; 3 * super::CACHE_BATCH] =
                    core::array::from_fn(|_| super::allocate_for_user(super::UserUse::Page).expect("frames for the test"));
                drop(frames);
            };
            fill_cache();
            if let Some(other) = ktest::other_cpu() {
                let cpus = crate::arch::percpu::CpuSet::default().with(other);
                crate::arch::smp::run_in_idle(cpus, &fill_cache);
                assert!(
                    super::CACHES[other].count.load(Ordering::Relaxed) > 0,
                    "CPU {other} cached none of the frames it freed"
                );
            }
            assert!(super::cached_frames() > 0, "no frames cached before exhaustion");
            for order in (0..=buddy::MAX_ORDER).rev() {
                while let Some(block) = allocate(order) {
                    taken.push((block, order));
                }
            }
            assert_eq!(super::cached_frames(), 0, "frames left in a CPU cache after exhaustion");
            assert_eq!(stats().free_frames, 0, "frames left in the allocator after exhaustion");
            assert!(super::allocate_for_user(super::UserUse::Page).is_none());
            let taken_frames: usize = taken.iter().map(|&(_, order)| 1 << order).sum();
            assert_eq!(taken_frames, before.free_frames, "frames went missing");
            drop(taken);
            assert_eq!(before.free_frames, stats().free_frames);
        }
    }
}
