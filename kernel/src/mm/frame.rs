//! Physical frames: the buddy allocator (kernel/libs/buddy) behind one spinlock, fed from the
//! bootloader's memory map at boot.
//!
//! Frames below 1 MiB are withheld (firmware leftovers; one becomes the AP trampoline), and so
//! is everything the bootloader reports as in use (kernel image, page tables, ramdisk).

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use buddy::{BuddyAllocator, FRAME_SIZE};

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

/// One frame for user memory, unless only the kernel's reserve is left.
pub fn allocate_for_user() -> Option<u64> {
    let mut frames = FRAMES.lock();
    if frames.stats().free_frames <= USER_RESERVE_FRAMES {
        return None;
    }
    frames.allocate(0)
}

/// Returns a block from [`allocate`]. A bad free (double, foreign, misaligned) is a kernel bug.
pub fn free(phys: u64, order: usize) {
    if let Err(error) = FRAMES.lock().free(phys, order) {
        panic!("frame allocator: {error}");
    }
}

pub fn stats() -> buddy::Stats {
    FRAMES.lock().stats()
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

    use super::{LOW_MEMORY_END, allocate, free, stats};
    use crate::ktest;
    use crate::mm::phys_to_virt;

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
            assert_eq!(stats().free_frames, 0, "frames left after exhaustion");
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
