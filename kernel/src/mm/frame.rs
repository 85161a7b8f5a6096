//! Physical frames: the buddy allocator (kernel/libs/buddy) behind one spinlock, fed from the
//! bootloader's memory map at boot, and in front of it one cache of free single frames per CPU
//! for user pages and user page tables.
//!
//! Frames below 1 MiB are withheld (firmware leftovers; one becomes the AP trampoline), and so
//! is everything the bootloader reports as in use (kernel image, page tables, ramdisk).
//!
//! The per-CPU caches keep the page-fault path off the allocator lock: a fault takes a frame
//! from its CPU's cache, and unmapping returns frames to the unmapping CPU's cache. A cache
//! that runs dry takes [`CACHE_BATCH`] frames under one lock acquisition; one that overflows
//! gives [`CACHE_BATCH`] back the same way. Only the owning CPU touches its cache, with
//! interrupts disabled (so an interrupt handler on the same CPU cannot interleave); other CPUs
//! only read the count, for [`stats`]. Cached frames count as free.
//!
//! How many frames a cache keeps is set once the CPUs are up ([`size_cpu_caches`]): up to
//! [`CACHE_CAPACITY`], but all caches together hold at most 1/32 of memory, since a process
//! that runs out sees `ENOMEM` while other CPUs' caches still hold frames. A big cache lets a
//! thread that unmaps a region and maps it again (will-it-scale's page_fault1, bench scenario
//! `a`: 1024 pages a round) get its frames back without the lock.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use buddy::{BuddyAllocator, FRAME_SIZE};
use x86_64::instructions::interrupts::without_interrupts;

use crate::arch::percpu::{self, MAX_CPUS};
use crate::sync::IrqSpinLock;

/// Physical memory below this is never handed out.
pub const LOW_MEMORY_END: u64 = 0x10_0000;

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

/// `2^order` contiguous frames; `None` when memory is exhausted.
pub fn allocate(order: usize) -> Option<u64> {
    FRAMES.lock().allocate(order)
}

/// Free frames kept for the kernel: user pages (and user page tables) are not allocated below
/// this, so a process that eats all memory is killed while the kernel can still allocate.
pub const USER_RESERVE_FRAMES: usize = 2048;

/// Frames one CPU's cache can hold (its array's size).
const CACHE_CAPACITY: usize = 2048;
/// Frames moved between a cache and the buddy allocator per lock acquisition.
const CACHE_BATCH: usize = 64;
/// Frames one CPU's cache keeps before it gives a batch back: [`CACHE_CAPACITY`] or less, set
/// by [`size_cpu_caches`]; until then (one CPU, early boot) a modest default.
static CACHE_LIMIT: AtomicUsize = AtomicUsize::new(8 * CACHE_BATCH);

/// Sizes the per-CPU caches for `cpus` CPUs: together at most 1/32 of all frames, each at least
/// a few batches and at most [`CACHE_CAPACITY`].
pub fn size_cpu_caches(cpus: usize) {
    let total = FRAMES.lock().stats().total_frames;
    let limit = (total / (32 * cpus.max(1))).clamp(4 * CACHE_BATCH, CACHE_CAPACITY);
    CACHE_LIMIT.store(limit, Ordering::Relaxed);
    log::info!(
        "frames: each CPU caches up to {limit} frames ({} KiB)",
        limit * FRAME_SIZE as usize / 1024
    );
}

/// One CPU's free single frames.
#[repr(align(64))]
struct FrameCache {
    /// `frames[..count]` are free. Only the owning CPU touches it, with interrupts disabled.
    frames: UnsafeCell<[u64; CACHE_CAPACITY]>,
    /// Written only by the owning CPU (interrupts disabled); read by anyone for [`stats`].
    count: AtomicUsize,
}

// SAFETY: `frames` is only accessed by the CPU that owns the cache, with interrupts disabled
// (see `with_local_cache`), so no two accesses ever overlap.
unsafe impl Sync for FrameCache {}

static CACHES: [FrameCache; MAX_CPUS] = [const {
    FrameCache {
        frames: UnsafeCell::new([0; CACHE_CAPACITY]),
        count: AtomicUsize::new(0),
    }
}; MAX_CPUS];

/// Runs `f` on this CPU's cache (its frames and their count), with interrupts disabled.
fn with_local_cache<R>(f: impl FnOnce(&mut [u64; CACHE_CAPACITY], &mut usize) -> R) -> R {
    without_interrupts(|| {
        let cache = &CACHES[percpu::cpu_index()];
        let mut count = cache.count.load(Ordering::Relaxed);
        // SAFETY: this is the current CPU's cache and interrupts are off: nothing else can
        // touch `frames` until this returns (kernel code is not preempted, and the task cannot
        // move to another CPU without sleeping).
        let frames = unsafe { &mut *cache.frames.get() };
        let result = f(frames, &mut count);
        cache.count.store(count, Ordering::Relaxed);
        result
    })
}

/// One frame for user memory or a user page table, unless only the kernel's reserve is left
/// in the buddy allocator (frames already in this CPU's cache are handed out regardless).
pub fn allocate_for_user() -> Option<u64> {
    with_local_cache(|frames, count| {
        if *count == 0 {
            let mut buddy = FRAMES.lock();
            let spare = buddy
                .stats()
                .free_frames
                .saturating_sub(USER_RESERVE_FRAMES);
            for _ in 0..spare.min(CACHE_BATCH) {
                match buddy.allocate(0) {
                    Some(phys) => {
                        frames[*count] = phys;
                        *count += 1;
                    }
                    None => break,
                }
            }
        }
        if *count == 0 {
            return None;
        }
        *count -= 1;
        Some(frames[*count])
    })
}

/// Returns a single frame that held user memory or a user page table (to this CPU's cache).
pub fn free_user(phys: u64) {
    with_local_cache(|frames, count| {
        if *count >= CACHE_LIMIT.load(Ordering::Relaxed) {
            let mut buddy = FRAMES.lock();
            for &frame in &frames[*count - CACHE_BATCH..*count] {
                if let Err(error) = buddy.free(frame, 0) {
                    panic!("frame allocator: {error}");
                }
            }
            *count -= CACHE_BATCH;
        }
        frames[*count] = phys;
        *count += 1;
    });
}

/// Frames sitting in the per-CPU caches.
fn cached_frames() -> usize {
    CACHES
        .iter()
        .map(|cache| cache.count.load(Ordering::Relaxed))
        .sum()
}

/// Returns a block from [`allocate`]. A bad free (double, foreign, misaligned) is a kernel bug.
pub fn free(phys: u64, order: usize) {
    if let Err(error) = FRAMES.lock().free(phys, order) {
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

mod ktests {
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, Ordering};

    use super::{LOW_MEMORY_END, allocate, free, stats};
    use crate::ktest;
    use crate::mm::phys_to_virt;

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
                    let phys = allocate(order).expect("frames exhausted");
                    let bytes = 4096u64 << order;
                    assert_eq!(phys % bytes, 0, "order-{order} block at {phys:#x} misaligned");
                    assert!(phys >= LOW_MEMORY_END, "frame below 1 MiB handed out: {phys:#x}");
                    // SAFETY: the block was just allocated to us; the direct map covers it.
                    unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, order as u8 + 1, bytes as usize) };
                    blocks.push((phys, order));
                }
            }
            for &(phys, order) in &blocks {
                let len = (4096usize) << order;
                // SAFETY: still allocated; written above.
                let data = unsafe { core::slice::from_raw_parts(phys_to_virt(phys) as *const u8, len) };
                assert!(data.iter().all(|&b| b == order as u8 + 1), "block {phys:#x} overlaps another");
            }
            for (phys, order) in blocks {
                free(phys, order);
            }
            let after = stats();
            assert_eq!(before.free_frames, after.free_frames, "frames leaked");
            assert_eq!(before.free_blocks, after.free_blocks, "buddies did not coalesce back");
        }
    }

    ktest! {
        /// User frames come from this CPU's cache, distinct and aligned, through several
        /// refills; freeing them overflows the cache into the buddy allocator in batches, and
        /// every frame is accounted for throughout.
        fn user_frames_pass_through_the_cpu_cache() {
            let limit = super::CACHE_LIMIT.load(core::sync::atomic::Ordering::Relaxed);
            let count = limit + 3 * super::CACHE_BATCH + 7;
            // Both vectors first: the heap must not grow (and take frames) while we count.
            let mut taken = Vec::with_capacity(count);
            let mut sorted = Vec::with_capacity(count);
            let before = stats().free_frames;
            for _ in 0..count {
                let phys = super::allocate_for_user().expect("frames for the test");
                assert_eq!(phys % 4096, 0, "frame {phys:#x} misaligned");
                taken.push(phys);
            }
            assert_eq!(stats().free_frames, before - count, "cached frames miscounted");
            sorted.extend_from_slice(&taken);
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), count, "a frame was handed out twice");
            for phys in taken {
                super::free_user(phys);
            }
            assert_eq!(stats().free_frames, before, "frames lost on the way back");
            let cached = super::CACHES[crate::arch::percpu::cpu_index()]
                .count
                .load(core::sync::atomic::Ordering::Relaxed);
            assert!(cached <= limit, "the cache outgrew its limit {limit}: {cached}");
        }
    }

    ktest! {
        /// Taking every frame ends in `None`, not a panic, and everything comes back.
        fn exhaustion_is_clean() {
            // Room for every frame, reserved first: the heap must not grow (and take frames)
            // while the test counts them.
            let mut taken = Vec::with_capacity(stats().free_frames);
            let before = stats();
            for order in (0..=buddy::MAX_ORDER).rev() {
                while let Some(phys) = allocate(order) {
                    taken.push((phys, order));
                }
            }
            assert_eq!(
                stats().free_frames - super::cached_frames(),
                0,
                "frames left in the buddy allocator after exhaustion"
            );
            assert!(allocate(0).is_none());
            for (phys, order) in taken {
                free(phys, order);
            }
            let after = stats();
            assert_eq!(before.free_frames, after.free_frames);
            assert_eq!(before.free_blocks, after.free_blocks);
        }
    }
}
