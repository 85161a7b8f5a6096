//! The kernel heap: the global allocator. Small requests go to size-class slab caches; the
//! rest to linked_list_allocator over a virtual region of its own that grows by mapping fresh
//! frames at its top when an allocation does not fit.
//!
//! * **Size classes** (`kmalloc-16` .. `kmalloc-2048`): every request of at most the largest
//!   class's size aligned to at most [`SMALL_ALIGN`] is served by the smallest class that
//!   holds it, a [`KmemCache`] of the slab allocator. Its per-CPU magazines let the common
//!   `alloc` and `free` take no lock that another CPU takes, so that system calls changing
//!   address spaces on several CPUs (tree nodes, lists of VMAs) do not queue for one lock. The
//!   classes are listed in slabinfo.
//! * **The large-object region**: everything else, first fit, under one [`IrqSpinLock`].
//!   Growth takes the frame allocator's lock inside it (heap → frames).
//!
//! Neither path can deadlock against an interrupt on its own CPU: the region's lock disables
//! interrupts, and a size class either hits its CPU's magazine, a try-lock that an interrupt
//! finding it taken passes by, or takes the slab's shared lock with interrupts off. A magazine
//! hit, the common case, leaves interrupts alone and takes no lock another CPU takes. Interrupt
//! handlers still do not allocate (docs/LOCKING.md). A pointer goes back to the path that handed
//! it out: the large-object region is one virtual range, and class objects live in the direct
//! map. When memory runs out the failing request and the heap's state are logged before the
//! allocation fails.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicU64, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;
use linked_list_allocator::Heap;
use slab::KmemCache;

use super::slab::{DEBUG_FLAGS, KERNEL_PAGES, KernelPages};
use super::{frame, kernel_tables};
use crate::sync::IrqSpinLock;

const PAGE_SIZE: usize = 4096;
/// The heap starts this big and grows by at least this much.
const GROWTH_STEP: usize = 1 << 20;
/// The heap's virtual region (one PML4 entry could hold 512 GiB; this is the cap we allow).
const MAX_HEAP_SIZE: usize = 64 << 30;

/// The largest alignment that a size class serves.
const SMALL_ALIGN: usize = 16;

/// A size class: objects of `size` bytes aligned to [`SMALL_ALIGN`], no constructor. The
/// free-list link sits in the object's first word (a free object's contents are nobody's), so a
/// slot is the object itself, plus red zones in debug builds.
const fn size_class(name: &'static str, size: usize) -> KmemCache<KernelPages> {
    KmemCache::new(
        name,
        size,
        SMALL_ALIGN,
        DEBUG_FLAGS,
        None,
        None,
        &KERNEL_PAGES,
    )
    .with_free_link_offset(0)
}

/// Declares [`CLASS_SIZES`] and [`SIZE_CLASSES`] from one list of sizes, each cache named
/// `kmalloc-SIZE`.
macro_rules! size_classes {
    ($($size:literal),+ $(,)?) => {
        /// The size classes' object sizes, smallest first.
        const CLASS_SIZES: [usize; [$($size),+].len()] = [$($size),+];

        /// One cache per entry of [`CLASS_SIZES`], in the same order.
        static SIZE_CLASSES: [KmemCache<KernelPages>; CLASS_SIZES.len()] =
            [$(size_class(concat!("kmalloc-", $size), $size)),+];
    };
}

// Powers of two, and (as in Linux) 96, 192 and 384 between them, so that from 64 to 512 bytes a
// request rounds up by at most a third (the VMA tree's nodes, 320 and 448 bytes, fill 384 and
// 512).
size_classes!(16, 32, 64, 96, 128, 192, 256, 384, 512, 1024, 2048);

/// The class that serves `layout`, if one does.
fn class_for(layout: Layout) -> Option<&'static KmemCache<KernelPages>> {
    if layout.align() > SMALL_ALIGN {
        return None;
    }
    let index = CLASS_SIZES.iter().position(|&size| size >= layout.size())?;
    Some(&SIZE_CLASSES[index])
}

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
    drop(heap);
    for class in &SIZE_CLASSES {
        super::slab::register(class);
    }
}

/// Maps fresh frames at `start..start + len` (page-rounded); returns how many bytes it mapped
/// before failing, or an error if it mapped nothing.
fn map_pages(start: usize, len: usize) -> Result<usize, &'static str> {
    let mut mapped = 0;
    while mapped < len {
        let Some(page) = frame::allocate(0) else {
            break;
        };
        // SAFETY: the heap region belongs to the heap alone and grows only here, under the heap
        // lock, so this page is unmapped; the frame was just allocated.
        let result =
            unsafe { kernel_tables::map_kernel_page((start + mapped) as u64, page.start()) };
        if let Err(error) = result {
            // The frame goes back (dropped).
            return if mapped == 0 { Err(error) } else { Ok(mapped) };
        }
        // The heap keeps its pages for good.
        let _ = page.into_raw();
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

impl KernelHeap {
    /// Whether `ptr` lies in the large-object region (else a size class handed it out).
    fn in_region(&self, ptr: *mut u8) -> bool {
        let base = self.base.load(Ordering::Relaxed) as usize;
        base != 0 && (base..base + MAX_HEAP_SIZE).contains(&(ptr as usize))
    }

    fn alloc_large(&self, layout: Layout) -> *mut u8 {
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
}

// SAFETY: a request goes to exactly one of two allocators, each handing out memory that is
// mapped, aligned to at least the request's alignment and at least its size, and not handed out
// again before it is freed: a size class when `class_for` names one (its objects are
// `SMALL_ALIGN`-aligned and at least `layout.size()` bytes), else linked_list_allocator. A
// pointer goes back to the allocator it came from: `in_region` tells them apart, and
// `class_for` of the same layout names the same class again.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_for(layout) else {
            return self.alloc_large(layout);
        };
        match class.alloc() {
            Some(object) => object.as_ptr(),
            None => {
                log::error!(
                    "heap: cannot allocate {} bytes from {}: no frames for a new slab ({} free)",
                    layout.size(),
                    class.name(),
                    frame::stats().free_frames
                );
                null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(ptr) = NonNull::new(ptr) else {
            return;
        };
        if self.in_region(ptr.as_ptr()) {
            // SAFETY: the caller returns a pointer this heap handed out with `layout`, and it
            // lies in the large-object region, so linked_list_allocator handed it out.
            unsafe { self.heap.lock().deallocate(ptr, layout) };
            return;
        }
        let class = class_for(layout).expect("heap: freeing a block that no allocator handed out");
        // SAFETY: outside the large-object region, the block came from the class that
        // `class_for(layout)` names (see the impl's comment); the caller gives it up. Objects
        // of these caches have no constructed state to restore.
        unsafe { class.free(ptr) };
    }
}

/// (size, used, free) in bytes: the large-object region's size and free bytes, and the bytes
/// handed out by both paths (a class object counts its class's size). The classes' own pages
/// are the slab caches' (slabinfo).
pub fn usage() -> (usize, usize, usize) {
    let (size, region_used, free) = region_usage();
    (size, region_used + small_bytes_in_use(), free)
}

/// The large-object region's (size, used, free) in bytes.
fn region_usage() -> (usize, usize, usize) {
    let heap = HEAP.heap.lock();
    (heap.size(), heap.used(), heap.free())
}

/// Bytes handed out by the size classes and not freed.
fn small_bytes_in_use() -> usize {
    SIZE_CLASSES
        .iter()
        .zip(CLASS_SIZES)
        .map(|(class, size)| class.info().active_objects * size)
        .sum()
}

/// True while someone holds the heap lock (the test runner checks this after a panic).
#[cfg(feature = "ktest")]
pub fn is_locked() -> bool {
    HEAP.heap.is_locked()
}

/// Takes the heap lock and never releases it (interrupts stay off, as under the lock): for the
/// test harness's self-check of a lock a failed test left held, and nothing else.
#[cfg(feature = "ktest")]
pub fn hold_lock_forever() {
    core::mem::forget(HEAP.heap.lock());
}

pub fn log_statistics() {
    let (size, region_used, free) = region_usage();
    let small_used = small_bytes_in_use();
    log::info!(
        "heap: {} KiB used ({} KiB in size classes); large-object region {} KiB mapped, {} KiB free",
        (region_used + small_used) / 1024,
        small_used / 1024,
        size / 1024,
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

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::alloc::{alloc, dealloc};
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::alloc::{GlobalAlloc, Layout};
    use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

    use super::{CLASS_SIZES, HEAP, SMALL_ALIGN};
    use crate::arch::percpu::{self, CpuSet};
    use crate::arch::smp::run_in_idle;
    use crate::ktest;

    /// The largest request that a size class serves.
    const SMALL_MAX: usize = CLASS_SIZES[CLASS_SIZES.len() - 1];

    ktest! {
        /// Each size class serves the sizes up to its own, 16-byte aligned and outside the
        /// large-object region, and `usage` counts each block at its class's size. Larger and
        /// more aligned requests go to the region.
        fn size_classes_serve_their_sizes() {
            crate::sync::rcu::rcu_barrier();
            let mut blocks = Vec::with_capacity(2 * CLASS_SIZES.len());
            let used_before = super::usage().1;
            let mut expected = 0;
            let mut smaller = 0;
            for (index, &size) in CLASS_SIZES.iter().enumerate() {
                for request in [smaller + 1, size] {
                    let layout = Layout::from_size_align(request, 8).unwrap();
                    // SAFETY: `layout` has a non-zero size.
                    let ptr = unsafe { alloc(layout) };
                    assert!(!ptr.is_null(), "{request} bytes: allocation failed");
                    assert_eq!(ptr as usize % SMALL_ALIGN, 0, "{request} bytes: misaligned");
                    assert!(!HEAP.in_region(ptr), "{request} bytes: not from a size class");
                    // SAFETY: the block is ours and `request` bytes long.
                    unsafe { ptr.write_bytes(index as u8, request) };
                    blocks.push((ptr, layout, index as u8));
                    expected += size;
                }
                smaller = size;
            }
            assert_eq!(super::usage().1 - used_before, expected, "bytes in use by the classes");
            for (ptr, layout, fill) in blocks.drain(..) {
                // SAFETY: each block is still allocated and was filled above.
                let bytes = unsafe { core::slice::from_raw_parts(ptr, layout.size()) };
                assert!(bytes.iter().all(|&b| b == fill), "a block was overwritten by another");
                // SAFETY: allocated above with this layout, freed once.
                unsafe { dealloc(ptr, layout) };
            }
            assert_eq!(super::usage().1, used_before, "class blocks not given back");
            for (size, align) in [(SMALL_MAX + 1, 8), (64, 2 * SMALL_ALIGN)] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: `layout` has a non-zero size.
                let ptr = unsafe { alloc(layout) };
                assert!(HEAP.in_region(ptr), "{size} bytes aligned to {align}: not from the region");
                // SAFETY: allocated just above with this layout.
                unsafe { dealloc(ptr, layout) };
            }
        }
    }

    ktest! {
        /// A small request does not take the large-object region's lock: it succeeds while
        /// this CPU holds that lock (had it needed the lock, it would wait forever, which debug
        /// builds report as a deadlock).
        fn small_requests_take_no_heap_lock() {
            let held = HEAP.heap.lock();
            let blocks: [Box<[u8; 300]>; 4] = core::array::from_fn(|i| Box::new([i as u8; 300]));
            drop(held);
            for (i, block) in blocks.iter().enumerate() {
                assert!(!HEAP.in_region(block.as_ptr().cast_mut()), "a 300-byte block came from the region");
                assert!(block.iter().all(|&b| b == i as u8), "block {i} overwritten");
            }
        }
    }

    const SLOTS: usize = 64;

    ktest! {
        timeout_ms = 120_000;
        /// Every CPU allocates blocks of random small sizes, fills each with a mark naming it,
        /// swaps it into a shared slot and frees the block it took out after checking its mark.
        /// So blocks go back on other CPUs than the one that allocated them, through the
        /// per-CPU magazines and the classes' shared lists. No block may be handed out twice
        /// (a mark would be overwritten), and afterwards the bytes in use are what they were.
        fn blocks_freed_on_other_cpus() {
            crate::sync::rcu::rcu_barrier();
            let used_before = super::usage().1;
            let slots: [AtomicPtr<u64>; SLOTS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; SLOTS];
            let bad_marks = AtomicU64::new(0);
            let rounds = 2_000 * ktest::stress_factor();
            // The mark: CPU, round and length in words, in every word of the block.
            let take_back = |block: *mut u64| -> bool {
                // SAFETY: a block in a slot is a live `Box<[u64]>` whose words all hold its
                // mark, the low 16 bits of which are its length; whoever takes it out owns it.
                let words = unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(block, (*block & 0xffff) as usize)) };
                words.iter().all(|&w| w == words[0])
            };
            run_in_idle(CpuSet::all_online(), &|| {
                let cpu = percpu::cpu_index() as u64;
                let mut seed = (cpu + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for round in 0..rounds {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let len = 1 + (seed >> 40) as usize % (SMALL_MAX / 8);
                    let mark = cpu << 48 | (round & 0xffff_ffff) << 16 | len as u64;
                    let block = Box::into_raw(alloc::vec![mark; len].into_boxed_slice()).cast::<u64>();
                    let slot = &slots[(seed >> 20) as usize % SLOTS];
                    let old = slot.swap(block, Ordering::AcqRel);
                    if !old.is_null() && !take_back(old) {
                        bad_marks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            for slot in &slots {
                let block = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
                if !block.is_null() && !take_back(block) {
                    bad_marks.fetch_add(1, Ordering::Relaxed);
                }
            }
            assert_eq!(bad_marks.load(Ordering::Relaxed), 0, "a block was overwritten while in use");
            assert_eq!(super::usage().1, used_before, "blocks leaked");
        }
    }

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
