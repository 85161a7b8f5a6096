//! The kernel heap: linked_list_allocator over a virtual region of its own that grows by
//! mapping fresh frames at its top when an allocation does not fit.
//!
//! One [`IrqSpinLock`] protects the heap; growth takes the frame allocator's lock inside it
//! (heap → frames). Interrupt handlers never allocate. When memory
//! runs out the failing request and the heap's state are logged before the allocation fails.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicU64, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;
use linked_list_allocator::Heap;

use super::{frame, paging};
use crate::sync::IrqSpinLock;

const PAGE_SIZE: usize = 4096;
/// The heap starts this big and grows by at least this much.
const GROWTH_STEP: usize = 1 << 20;
/// The heap's virtual region (one PML4 entry could hold 512 GiB; this is the cap we allow).
const MAX_HEAP_SIZE: usize = 64 << 30;

struct KernelHeap {
    heap: IrqSpinLock<Heap>,
    /// Where the heap's region starts; 0 before `init`.
    base: AtomicU64,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap {
    heap: IrqSpinLock::new(Heap::empty()),
    base: AtomicU64::new(0),
};

/// Maps the first pages of the heap at `base` (a reserved, empty kernel region).
pub fn init(base: u64) {
    HEAP.base.store(base, Ordering::Relaxed);
    let mut heap = HEAP.heap.lock();
    let mapped = map_pages(base as usize, GROWTH_STEP).expect("no memory for the initial heap");
    // SAFETY: `map_pages` just mapped `mapped` bytes at `base` for the heap alone.
    unsafe { heap.init(base as *mut u8, mapped) };
}

/// Maps fresh frames at `start..start + len` (page-rounded); returns how many bytes it mapped
/// before failing, or an error if it mapped nothing.
fn map_pages(start: usize, len: usize) -> Result<usize, &'static str> {
    let mut mapped = 0;
    while mapped < len {
        let Some(phys) = frame::allocate(0) else {
            break;
        };
        // SAFETY: the heap region belongs to the heap alone and grows only here, under the heap
        // lock, so this page is unmapped; the frame was just allocated.
        if let Err(error) = unsafe { paging::map_kernel_page((start + mapped) as u64, phys) } {
            frame::free(phys, 0);
            return if mapped == 0 { Err(error) } else { Ok(mapped) };
        }
        mapped += PAGE_SIZE;
    }
    if mapped == 0 {
        Err("out of physical frames")
    } else {
        Ok(mapped)
    }
}

/// Extends `heap` by enough to hold `layout` (at least one growth step).
fn grow(heap: &mut Heap, layout: Layout) -> Result<(), &'static str> {
    let need = (layout.size() + layout.align())
        .next_multiple_of(PAGE_SIZE)
        .max(GROWTH_STEP);
    if heap.size() + need > MAX_HEAP_SIZE {
        return Err("the heap reached its maximum size");
    }
    // Growth never gives memory back, so a request that cannot fit must not drain the frames.
    if need / PAGE_SIZE > frame::stats().free_frames {
        return Err("not enough free frames");
    }
    let mapped = map_pages(heap.top() as usize, need)?;
    // SAFETY: `mapped` bytes right after the heap's top were just mapped for it.
    unsafe { heap.extend(mapped) };
    Ok(())
}

// SAFETY: allocation and deallocation go through linked_list_allocator under one lock; every
// pointer handed out lies in mapped heap memory and is returned to the same heap.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.heap.lock();
        if let Ok(ptr) = heap.allocate_first_fit(layout) {
            return ptr.as_ptr();
        }
        let growth = grow(&mut heap, layout);
        if let Ok(ptr) = heap.allocate_first_fit(layout) {
            return ptr.as_ptr();
        }
        log::error!(
            "heap: cannot allocate {} bytes aligned to {} ({}); heap {} KiB, {} KiB used, {} KiB free; {} frames free",
            layout.size(),
            layout.align(),
            growth.err().unwrap_or("fragmented"),
            heap.size() / 1024,
            heap.used() / 1024,
            heap.free() / 1024,
            frame::stats().free_frames
        );
        null_mut()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: the caller returns a pointer this heap handed out with `layout`.
            unsafe { self.heap.lock().deallocate(ptr, layout) };
        }
    }
}

/// (size, used, free) in bytes.
pub fn usage() -> (usize, usize, usize) {
    let heap = HEAP.heap.lock();
    (heap.size(), heap.used(), heap.free())
}

/// True while someone holds the heap lock (the test runner checks this after a panic).
pub fn is_locked() -> bool {
    HEAP.heap.is_locked()
}

pub fn log_statistics() {
    let (size, used, free) = usage();
    log::info!(
        "heap: {} KiB mapped, {} KiB used, {} KiB free",
        size / 1024,
        used / 1024,
        free / 1024
    );
}

/// A quick check at boot that allocations work, hold their contents and come back.
pub fn self_check() {
    let before = usage().1;
    let mut blocks: Vec<Box<[u8]>> = Vec::new();
    for (i, size) in [1usize, 7, 64, 500, 4096, 70_000].into_iter().enumerate() {
        blocks.push(alloc::vec![i as u8 + 1; size].into_boxed_slice());
    }
    let intact = blocks
        .iter()
        .enumerate()
        .all(|(i, b)| b.iter().all(|&x| x == i as u8 + 1));
    drop(blocks);
    let after = usage().1;
    assert!(intact, "heap self-check: a block's contents changed");
    assert_eq!(before, after, "heap self-check: memory not returned");
    let (size, _, _) = usage();
    log::info!(
        "heap: self-check passed ({} KiB mapped at {:#x})",
        size / 1024,
        HEAP.base.load(Ordering::Relaxed)
    );
}

mod ktests {
    use alloc::alloc::{alloc, dealloc};
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::alloc::{GlobalAlloc, Layout};

    use crate::ktest;

    ktest! {
        /// Many sizes and alignments: each block aligned, disjoint, holding its own pattern.
        fn many_sizes_and_alignments() {
            let mut blocks = Vec::new();
            for (i, size) in [1usize, 2, 3, 8, 24, 100, 511, 4096, 5000, 65_536].into_iter().enumerate() {
                for align in [1usize, 8, 16, 64, 4096] {
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: `layout` has a non-zero size.
                    let ptr = unsafe { alloc(layout) };
                    assert!(!ptr.is_null(), "allocation of {size} bytes aligned {align} failed");
                    assert_eq!(ptr as usize % align, 0, "{size} bytes not aligned to {align}");
                    let fill = (i * 7 + align) as u8;
                    // SAFETY: the block is ours and `size` bytes long.
                    unsafe { ptr.write_bytes(fill, size) };
                    blocks.push((ptr, layout, fill));
                }
            }
            for &(ptr, layout, fill) in &blocks {
                // SAFETY: each block is still allocated and was filled above.
                let bytes = unsafe { core::slice::from_raw_parts(ptr, layout.size()) };
                assert!(bytes.iter().all(|&b| b == fill), "a block was overwritten by another");
            }
            for (ptr, layout, _) in blocks {
                // SAFETY: allocated above with this layout, freed once.
                unsafe { dealloc(ptr, layout) };
            }
        }
    }

    ktest! {
        /// Freed memory is reused: the heap does not grow over repeated rounds.
        fn free_and_reuse() {
            let round = || {
                let v: Vec<Box<[u64]>> = (0..64).map(|i| alloc::vec![i; 128].into_boxed_slice()).collect();
                assert!(v.iter().enumerate().all(|(i, b)| b.iter().all(|&x| x == i as u64)));
            };
            round();
            let (size_before, used_before, _) = super::usage();
            for _ in 0..50 {
                round();
            }
            let (size_after, used_after, _) = super::usage();
            assert_eq!(used_before, used_after, "memory leaked across rounds");
            assert_eq!(size_before, size_after, "the heap grew although freed memory was reusable");
        }
    }

    ktest! {
        /// A request beyond physical memory fails cleanly: null, the heap unchanged, the
        /// kernel going on (and the request logged).
        fn allocation_failure_returns_null() {
            let (size_before, used_before, _) = super::usage();
            let frames_before = crate::mm::frame::stats().free_frames;
            let too_big = Layout::from_size_align(frames_before * 4096 + (64 << 20), 4096).unwrap();
            // Called on the allocator itself: through `alloc::alloc`, the compiler may assume an
            // allocation whose result is only compared with null succeeds, and remove it.
            // SAFETY: `too_big` has a non-zero size.
            let ptr = unsafe { GlobalAlloc::alloc(&super::HEAP, too_big) };
            assert!(ptr.is_null(), "an allocation larger than memory succeeded");
            assert_eq!(super::usage().0, size_before, "a failed allocation grew the heap");
            assert_eq!(super::usage().1, used_before);
            assert_eq!(crate::mm::frame::stats().free_frames, frames_before, "frames drained");
        }
    }

    ktest! {
        /// An allocation bigger than the heap makes it grow by mapping new frames.
        fn grows_on_demand() {
            let (size_before, _, _) = super::usage();
            let big = alloc::vec![0xa5u8; size_before + (3 << 20)];
            assert!(big.iter().all(|&b| b == 0xa5));
            let (size_after, _, _) = super::usage();
            assert!(size_after > size_before, "heap did not grow: {size_before} -> {size_after}");
        }
    }
}
