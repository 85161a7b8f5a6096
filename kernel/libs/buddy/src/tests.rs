//! Host tests. The allocator's "physical memory" is a heap buffer (an [`Arena`]) aligned to the
//! largest block size: physical address `p` is byte `p` of the buffer, so `phys_offset` is the
//! buffer's address.
#![expect(
    clippy::single_range_in_vec_init,
    reason = "`init` takes byte ranges; one-element arrays of them are meant"
)]

use super::*;
use proptest::prelude::*;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::BTreeMap;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Size of a block of `MAX_ORDER`, the arenas' alignment.
const MAX_BLOCK: u64 = FRAME_SIZE << MAX_ORDER;

/// Zeroed heap memory standing in for physical memory `0..size`.
struct Arena {
    base: *mut u8,
    layout: Layout,
}

impl Arena {
    fn new(size: u64) -> Self {
        let layout = Layout::from_size_align(size as usize, MAX_BLOCK as usize).unwrap();
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        assert!(!base.is_null(), "cannot allocate a {size:#x}-byte arena");
        Self { base, layout }
    }

    fn size(&self) -> u64 {
        self.layout.size() as u64
    }

    /// `phys_offset` for `init`: the arena's address, exposed so that the allocator can turn
    /// addresses back into pointers.
    fn phys_offset(&self) -> u64 {
        self.base.expose_provenance() as u64
    }

    /// Gives `ranges` of this arena to a new allocator.
    fn allocator(&self, ranges: &[Range<u64>]) -> Result<BuddyAllocator, InitError> {
        let mut allocator = BuddyAllocator::new();
        // SAFETY: see `give`.
        unsafe { self.give(&mut allocator, ranges) }?;
        Ok(allocator)
    }

    /// Calls `init` on `allocator` with `ranges` of this arena.
    ///
    /// # Safety
    ///
    /// The non-empty ranges must not be in use: no allocator given them may still hand out or
    /// take back blocks (the arena is not read or written behind an allocator's back).
    unsafe fn give(
        &self,
        allocator: &mut BuddyAllocator,
        ranges: &[Range<u64>],
    ) -> Result<(), InitError> {
        for range in ranges {
            assert!(range.is_empty() || range.end <= self.size(), "{range:x?}");
        }
        // SAFETY: the ranges lie in the arena, which outlives every allocator of a test, and
        // the caller guarantees that nothing else uses them.
        unsafe { allocator.init(self.phys_offset(), ranges.iter().cloned()) }
    }

    fn block(&self, phys: u64, order: usize) -> *mut u8 {
        assert!(phys + (FRAME_SIZE << order) <= self.size());
        self.base.wrapping_add(phys as usize)
    }

    /// Fills the allocated block at `phys` with `tag`.
    fn fill(&self, phys: u64, order: usize, tag: u8) {
        // SAFETY: the block is in the arena and allocated to the test.
        unsafe {
            self.block(phys, order)
                .write_bytes(tag, (FRAME_SIZE << order) as usize)
        };
    }

    /// Checks that the allocated block at `phys` still holds only `tag`.
    fn check(&self, phys: u64, order: usize, tag: u8) {
        let expected = [tag; FRAME_SIZE as usize];
        for frame in 0..block_frames(order) {
            let start = self
                .block(phys, order)
                .wrapping_add((frame * FRAME_SIZE) as usize);
            // SAFETY: the frame is in the arena and allocated to the test.
            let bytes = unsafe { core::slice::from_raw_parts(start, FRAME_SIZE as usize) };
            assert!(
                bytes == expected,
                "frame {:#x} of block {phys:#x} was overwritten",
                phys + frame * FRAME_SIZE
            );
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: `base` was allocated with `layout`.
        unsafe { dealloc(self.base, self.layout) };
    }
}

/// Checks every invariant of the crate documentation against the metadata and the free lists.
fn check_invariants(allocator: &BuddyAllocator) {
    let stats = allocator.stats();
    let mut free_blocks = [0; ORDERS];
    let (mut free, mut allocated) = (0, 0);
    let mut index = 0;
    while index < allocator.meta.len() {
        let pfn = allocator.base_pfn + index as u64;
        let order = match allocator.state(pfn) {
            FrameState::Unmanaged => {
                index += 1;
                continue;
            }
            FrameState::Tail => panic!("frame {pfn:#x} is a tail outside any block"),
            FrameState::Free(order) => {
                free_blocks[order] += 1;
                free += 1 << order;
                if order < MAX_ORDER {
                    let buddy = pfn ^ block_frames(order);
                    assert_ne!(allocator.state(buddy), FrameState::Free(order), "{pfn:#x}");
                }
                order
            }
            FrameState::Allocated(order) => {
                allocated += 1 << order;
                order
            }
        };
        assert!(order <= MAX_ORDER);
        assert_eq!(pfn % block_frames(order), 0, "block {pfn:#x} is misaligned");
        for tail in pfn + 1..pfn + block_frames(order) {
            assert_eq!(allocator.state(tail), FrameState::Tail, "frame {tail:#x}");
        }
        index += 1 << order;
    }
    assert_eq!(free_blocks, stats.free_blocks);
    assert_eq!(free, stats.free_frames);
    assert_eq!(free + allocated, stats.total_frames);
    let metadata = allocator.metadata();
    for pfn in metadata.start / FRAME_SIZE..metadata.end / FRAME_SIZE {
        assert_eq!(allocator.state(pfn), FrameState::Unmanaged);
    }
    for (order, &count) in stats.free_blocks.iter().enumerate() {
        let (mut prev, mut node, mut seen) = (None, allocator.heads[order], 0);
        while let Some(pfn) = node {
            assert!(seen < count, "free list {order} is longer than counted");
            assert_eq!(allocator.state(pfn), FrameState::Free(order));
            // SAFETY: `pfn` is on free list `order`.
            let link = unsafe { allocator.read_link(pfn) };
            assert_eq!(
                link.prev, prev,
                "free list {order}: bad back link at {pfn:#x}"
            );
            (prev, node, seen) = (Some(pfn), link.next, seen + 1);
        }
        assert_eq!(seen, count, "free list {order}");
    }
}

#[test]
fn new_allocator_is_empty() {
    let mut allocator = BuddyAllocator::default();
    assert!(!allocator.is_initialized());
    assert_eq!(allocator.stats(), Stats::default());
    assert!(allocator.metadata().is_empty());
    for order in 0..=MAX_ORDER + 1 {
        assert_eq!(allocator.allocate(order), None);
    }
    assert_eq!(allocator.free(0, 0), Err(FreeError::Foreign { phys: 0 }));
    assert_eq!(allocator.stats(), Stats::default());
}

#[test]
fn allocator_fits_in_a_static() {
    static ALLOCATOR: std::sync::Mutex<BuddyAllocator> =
        std::sync::Mutex::new(BuddyAllocator::new());
    assert_eq!(ALLOCATOR.lock().unwrap().allocate(0), None);
}

#[test]
fn order_for_frames_rounds_up() {
    assert_eq!(order_for_frames(0), Some(0));
    assert_eq!(order_for_frames(1), Some(0));
    assert_eq!(order_for_frames(2), Some(1));
    assert_eq!(order_for_frames(3), Some(2));
    assert_eq!(order_for_frames(512), Some(9));
    assert_eq!(order_for_frames(513), Some(10));
    assert_eq!(order_for_frames(1 << MAX_ORDER), Some(MAX_ORDER));
    assert_eq!(order_for_frames((1 << MAX_ORDER) + 1), None);
    assert_eq!(order_for_frames(usize::MAX), None);
}

#[test]
fn ranges_without_a_whole_frame_are_rejected() {
    let arena = Arena::new(64 * KIB);
    #[expect(
        clippy::reversed_empty_ranges,
        reason = "reversed ranges must be ignored"
    )]
    let ranges = [
        0..FRAME_SIZE - 1,
        FRAME_SIZE + 1..2 * FRAME_SIZE + 5,
        3 * FRAME_SIZE + 7..5 * FRAME_SIZE - 7,
        6 * FRAME_SIZE..6 * FRAME_SIZE,
        9 * FRAME_SIZE..7 * FRAME_SIZE,
    ];
    assert_eq!(arena.allocator(&ranges).err(), Some(InitError::NoFrames));
    assert_eq!(arena.allocator(&[]).err(), Some(InitError::NoFrames));
}

#[test]
fn range_that_is_all_metadata_is_rejected() {
    let arena = Arena::new(64 * KIB);
    let expected = Some(InitError::NothingLeftAfterMetadata { metadata_frames: 1 });
    assert_eq!(
        arena.allocator(&[FRAME_SIZE..2 * FRAME_SIZE]).err(),
        expected
    );
    // Rounded inward, this is the same single frame.
    assert_eq!(
        arena
            .allocator(&[FRAME_SIZE - 100..2 * FRAME_SIZE + 100])
            .err(),
        expected
    );
}

#[test]
fn metadata_goes_to_the_smallest_range_that_holds_it() {
    let arena = Arena::new(4 * MIB);
    let ranges = [
        0..MIB,
        2 * MIB..2 * MIB + FRAME_SIZE,
        3 * MIB..3 * MIB + 2 * FRAME_SIZE,
    ];
    let mut allocator = arena.allocator(&ranges).unwrap();
    assert_eq!(allocator.metadata(), 2 * MIB..2 * MIB + FRAME_SIZE);
    let stats = allocator.stats();
    assert_eq!(stats.metadata_frames, 1);
    assert_eq!(stats.total_frames, 256 + 2);
    assert_eq!(stats.free_blocks[8], 1);
    assert_eq!(stats.free_blocks[1], 1);
    assert_eq!(allocator.allocate(8), Some(0));
    check_invariants(&allocator);
}

#[test]
#[cfg_attr(miri, ignore = "32 MiB arena")]
fn metadata_too_large_for_any_range_is_rejected() {
    // The span is 8192 frames, whose metadata needs 2 frames; each range has only one.
    let arena = Arena::new(32 * MIB);
    let ranges = [0..FRAME_SIZE, 32 * MIB - FRAME_SIZE..32 * MIB];
    assert_eq!(
        arena.allocator(&ranges).err(),
        Some(InitError::MetadataTooLarge { needed_frames: 2 })
    );
}

#[test]
fn overlapping_ranges_are_rejected() {
    let arena = Arena::new(64 * KIB);
    let cases = [
        [0..2 * FRAME_SIZE, FRAME_SIZE..3 * FRAME_SIZE],
        [FRAME_SIZE..5 * FRAME_SIZE, FRAME_SIZE..5 * FRAME_SIZE],
        // They share a single byte, which is not even in a whole frame of either.
        [0..5000, 4999..9 * FRAME_SIZE],
        [2 * FRAME_SIZE..3 * FRAME_SIZE, 0..10 * FRAME_SIZE],
    ];
    for [first, second] in cases {
        let ranges = [
            10 * FRAME_SIZE..12 * FRAME_SIZE,
            first.clone(),
            second.clone(),
        ];
        assert_eq!(
            arena.allocator(&ranges).err(),
            Some(InitError::Overlap { first, second })
        );
    }
}

#[test]
fn adjacent_ranges_coalesce() {
    let arena = Arena::new(8 * MIB);
    let ranges = [
        6 * MIB..8 * MIB,
        0..FRAME_SIZE,
        4 * MIB..5 * MIB,
        5 * MIB..6 * MIB,
    ];
    let mut allocator = arena.allocator(&ranges).unwrap();
    let stats = allocator.stats();
    assert_eq!(allocator.metadata(), 0..FRAME_SIZE);
    assert_eq!(stats.total_frames, 1 << MAX_ORDER);
    assert_eq!(stats.free_blocks, {
        let mut blocks = [0; ORDERS];
        blocks[MAX_ORDER] = 1;
        blocks
    });
    assert_eq!(allocator.allocate(MAX_ORDER), Some(4 * MIB));
}

#[test]
fn allocation_splits_and_free_coalesces() {
    let arena = Arena::new(8 * MIB);
    let mut allocator = arena
        .allocator(&[FRAME_SIZE..2 * FRAME_SIZE, 4 * MIB..8 * MIB])
        .unwrap();
    let initial = allocator.stats();
    assert_eq!(allocator.allocate(0), Some(4 * MIB));
    let mut split = [1; ORDERS];
    split[MAX_ORDER] = 0;
    assert_eq!(allocator.stats().free_blocks, split);
    assert_eq!(allocator.allocate(0), Some(4 * MIB + FRAME_SIZE));
    assert_eq!(allocator.allocate(1), Some(4 * MIB + 2 * FRAME_SIZE));
    check_invariants(&allocator);
    assert_eq!(allocator.free(4 * MIB + FRAME_SIZE, 0), Ok(()));
    assert_eq!(allocator.free(4 * MIB + 2 * FRAME_SIZE, 1), Ok(()));
    assert_eq!(allocator.free(4 * MIB, 0), Ok(()));
    check_invariants(&allocator);
    let stats = allocator.stats();
    assert_eq!(stats.free_blocks, initial.free_blocks);
    assert_eq!(stats.free_frames, initial.free_frames);
    assert_eq!((stats.allocations, stats.frees), (3, 3));
}

#[test]
fn singles_are_freed_one_by_one_and_coalesce() {
    let arena = Arena::new(8 * MIB);
    let mut allocator = arena.allocator(&[4 * MIB..8 * MIB]).unwrap();
    let initial = allocator.stats();
    let first = allocator.allocate_singles(3).unwrap();
    assert_eq!(
        first % (8 * FRAME_SIZE),
        0,
        "the block is aligned to its size"
    );
    check_invariants(&allocator);
    assert_eq!(allocator.stats().free_frames, initial.free_frames - 8);
    assert_eq!(allocator.stats().allocations, 8);
    // The block is gone: freeing it whole is an order mismatch; each frame is its own.
    assert_eq!(
        allocator.free(first, 3),
        Err(FreeError::OrderMismatch {
            phys: first,
            order: 3,
            allocated_order: 0
        })
    );
    for index in [5, 0, 7, 2, 1, 6, 3, 4] {
        assert_eq!(allocator.free(first + index * FRAME_SIZE, 0), Ok(()));
        check_invariants(&allocator);
    }
    assert_eq!(
        allocator.free(first, 0),
        Err(FreeError::DoubleFree { phys: first })
    );
    let stats = allocator.stats();
    assert_eq!(stats.free_blocks, initial.free_blocks);
    assert_eq!(stats.free_frames, initial.free_frames);
    assert_eq!((stats.allocations, stats.frees), (8, 8));
    assert_eq!(allocator.allocate_singles(MAX_ORDER + 1), None);
}

#[test]
fn second_init_is_rejected() {
    let arena = Arena::new(MIB);
    let mut allocator = arena.allocator(&[0..MIB / 2]).unwrap();
    let block = allocator.allocate(2).unwrap();
    let stats = allocator.stats();
    // SAFETY: `init` refuses an initialised allocator before touching the ranges.
    let result = unsafe { arena.give(&mut allocator, &[MIB / 2..MIB]) };
    assert_eq!(result, Err(InitError::AlreadyInitialized));
    assert_eq!(allocator.stats(), stats);
    assert_eq!(allocator.free(block, 2), Ok(()));
}

#[test]
fn failed_init_leaves_the_allocator_usable() {
    let arena = Arena::new(MIB);
    let mut allocator = BuddyAllocator::new();
    // SAFETY: `init` rejects overlapping ranges before touching them.
    let result = unsafe { arena.give(&mut allocator, &[0..MIB, 0..FRAME_SIZE]) };
    assert!(matches!(result, Err(InitError::Overlap { .. })));
    assert!(!allocator.is_initialized());
    assert_eq!(allocator.stats(), Stats::default());
    // SAFETY: nothing uses the arena.
    unsafe { arena.give(&mut allocator, &[0..MIB]) }.unwrap();
    assert_eq!(allocator.stats().total_frames, 255);
}

#[test]
fn address_overflow_is_rejected() {
    let mut allocator = BuddyAllocator::new();
    let phys_offset = u64::MAX - MIB;
    // SAFETY: nothing is mapped there, but `init` rejects the ranges before touching them.
    let result = unsafe { allocator.init(phys_offset, [0..2 * MIB].into_iter()) };
    assert_eq!(result, Err(InitError::AddressOverflow { phys_offset }));
    assert!(!allocator.is_initialized());
}

#[test]
fn orders_above_the_maximum_are_rejected() {
    let arena = Arena::new(8 * MIB);
    let mut allocator = arena.allocator(&[0..8 * MIB]).unwrap();
    let stats = allocator.stats();
    assert_eq!(allocator.allocate(MAX_ORDER + 1), None);
    assert_eq!(allocator.allocate(usize::MAX), None);
    for order in [MAX_ORDER + 1, usize::MAX] {
        let expected = Err(FreeError::InvalidOrder { phys: 0, order });
        assert_eq!(allocator.free(0, order), expected);
    }
    assert_eq!(allocator.stats(), stats);
}

#[test]
#[cfg_attr(miri, ignore = "writes and checks 8 MiB")]
fn exhaustion_returns_none_and_the_allocator_recovers() {
    let arena = Arena::new(8 * MIB);
    let mut allocator = arena.allocator(&[12_345..8 * MIB - 999]).unwrap();
    let initial = allocator.stats();
    let mut blocks = Vec::new();
    while let Some(phys) = allocator.allocate(0) {
        let tag = blocks.len() as u8;
        arena.fill(phys, 0, tag);
        blocks.push((phys, tag));
    }
    assert_eq!(blocks.len(), initial.total_frames);
    assert_eq!(allocator.stats().free_frames, 0);
    assert_eq!(allocator.stats().free_blocks, [0; ORDERS]);
    assert_eq!(allocator.allocate(0), None);
    check_invariants(&allocator);

    let (phys, tag) = blocks.swap_remove(100);
    arena.check(phys, 0, tag);
    assert_eq!(allocator.free(phys, 0), Ok(()));
    assert_eq!(allocator.allocate(1), None);
    assert_eq!(allocator.allocate(0), Some(phys));
    arena.fill(phys, 0, 0xaa);
    blocks.push((phys, 0xaa));
    for (phys, tag) in blocks {
        arena.check(phys, 0, tag);
        assert_eq!(allocator.free(phys, 0), Ok(()));
    }
    let stats = allocator.stats();
    assert_eq!(stats.free_frames, initial.free_frames);
    assert_eq!(stats.free_blocks, initial.free_blocks);
    check_invariants(&allocator);
}

#[test]
fn errors_display_their_details() {
    let free = FreeError::DoubleFree { phys: 0x1234_5000 };
    assert_eq!(
        free.to_string(),
        "cannot free 0x12345000: it is already free (double free)"
    );
    let inside = FreeError::InsideBlock {
        phys: 0x5000,
        block: 0x4000,
    };
    assert!(inside.to_string().contains("0x5000"));
    assert!(inside.to_string().contains("0x4000"));
    let misaligned = FreeError::Misaligned {
        phys: 0x1001,
        order: 1,
    };
    assert!(misaligned.to_string().contains("0x1001"));
    let overlap = InitError::Overlap {
        first: 0..0x2000,
        second: 0x1000..0x3000,
    };
    assert_eq!(
        overlap.to_string(),
        "usable ranges 0x0..0x2000 and 0x1000..0x3000 overlap"
    );
}

/// Short fixed sequence over a small arena, cheap enough for Miri.
#[test]
fn deterministic_sequence() {
    let arena = Arena::new(256 * KIB);
    // Frames 2..24, 30..32 (the smallest, so 30 holds the metadata) and 33..64.
    let ranges = [
        130 * KIB + 3..256 * KIB,
        FRAME_SIZE + 17..100 * KIB - 1,
        120 * KIB..128 * KIB + 5,
    ];
    let mut allocator = arena.allocator(&ranges).unwrap();
    let initial = allocator.stats();
    let initial_meta = allocator.meta.to_vec();
    assert_eq!(initial.metadata_frames, 1);
    assert_eq!(initial.total_frames, 22 + 2 + 31 - 1);
    check_invariants(&allocator);

    let mut blocks = Vec::new();
    for (tag, order) in [0, 3, 1, 0, 2, 4, 0, 1].into_iter().enumerate() {
        let phys = allocator.allocate(order).unwrap();
        assert_eq!(phys % (FRAME_SIZE << order), 0);
        assert!(!allocator.metadata().contains(&phys));
        arena.fill(phys, order, tag as u8 + 1);
        blocks.push((phys, order, tag as u8 + 1));
    }
    assert_eq!(allocator.allocate(5), None);
    check_invariants(&allocator);

    let (phys, order, tag) = blocks.remove(1);
    arena.check(phys, order, tag);
    let stats = allocator.stats();
    let expected = Err(FreeError::OrderMismatch {
        phys,
        order: 2,
        allocated_order: 3,
    });
    assert_eq!(allocator.free(phys, 2), expected);
    let inside = Err(FreeError::InsideBlock {
        phys: phys + FRAME_SIZE,
        block: phys,
    });
    assert_eq!(allocator.free(phys + FRAME_SIZE, 0), inside);
    assert_eq!(
        allocator.free(phys + 1, 3),
        Err(FreeError::Misaligned {
            phys: phys + 1,
            order: 3
        })
    );
    let meta = allocator.metadata().start;
    assert_eq!(
        allocator.free(meta, 0),
        Err(FreeError::Foreign { phys: meta })
    );
    assert_eq!(allocator.free(0, 0), Err(FreeError::Foreign { phys: 0 }));
    assert_eq!(allocator.stats(), stats);
    assert_eq!(allocator.free(phys, order), Ok(()));
    assert_eq!(
        allocator.free(phys, order),
        Err(FreeError::DoubleFree { phys })
    );
    let tail = phys + 5 * FRAME_SIZE;
    assert_eq!(
        allocator.free(tail, 0),
        Err(FreeError::DoubleFree { phys: tail })
    );
    check_invariants(&allocator);

    for (phys, order, tag) in blocks.into_iter().rev() {
        arena.check(phys, order, tag);
        assert_eq!(allocator.free(phys, order), Ok(()));
        check_invariants(&allocator);
    }
    let stats = allocator.stats();
    assert_eq!(stats.free_frames, initial.free_frames);
    assert_eq!(stats.free_blocks, initial.free_blocks);
    assert_eq!((stats.allocations, stats.frees), (8, 8));
    assert_eq!(allocator.meta, initial_meta);
}

/// Size of the arena of the randomised tests.
const ARENA: u64 = 8 * MIB;

/// Ranges of `0..ARENA`: disjoint, at odd addresses, in any order, with holes between them
/// (sometimes none), plus empty ones.
fn ranges_strategy() -> impl Strategy<Value = Vec<Range<u64>>> {
    let gap = prop_oneof![Just(0), 1..64 * KIB, 64 * KIB..MIB];
    let pieces = prop::collection::vec((gap, 1..3 * MIB), 1..7);
    let scattered = pieces.prop_map(|pieces| {
        let mut ranges = Vec::new();
        let mut cursor = 0;
        for (gap, len) in pieces {
            let start = cursor + gap;
            if start >= ARENA {
                break;
            }
            cursor = (start + len).min(ARENA);
            ranges.push(start..cursor);
        }
        ranges
    });
    let holes = prop::collection::btree_set(0..ARENA, 0..4).prop_map(|cuts| {
        let mut ranges = Vec::new();
        let mut cursor = 0;
        for cut in cuts {
            if cut > cursor {
                ranges.push(cursor..cut);
            }
            cursor = cursor.max(cut + 3 * KIB + cut % (64 * KIB));
        }
        if cursor < ARENA {
            ranges.push(cursor..ARENA);
        }
        ranges
    });
    let empty = prop::collection::vec((0..ARENA, 0..2 * FRAME_SIZE), 0..2).prop_map(|ranges| {
        ranges
            .into_iter()
            .map(|(end, len)| end + len..end)
            .collect::<Vec<_>>()
    });
    (prop_oneof![2 => scattered, 1 => holes], empty).prop_flat_map(|(mut ranges, empty)| {
        ranges.extend(empty);
        Just(ranges).prop_shuffle()
    })
}

/// An invalid `free` the randomised test tries.
#[derive(Clone, Copy, Debug)]
enum BadFree {
    /// A free frame, or a block freed earlier that is still entirely free.
    Double,
    /// An allocated block's address plus a few bytes.
    Unaligned,
    /// An allocated block with a larger order.
    LargerOrder,
    /// An allocated block with a smaller order.
    SmallerOrder,
    /// A frame inside an allocated block, not the first.
    Interior,
    /// A frame of the arena the allocator does not manage (holes, metadata).
    Unmanaged,
    /// A frame beyond the arena.
    Beyond,
    /// An order above `MAX_ORDER`.
    HugeOrder,
}

#[derive(Clone, Debug)]
enum Op {
    Allocate(usize),
    /// Allocates a block of the order as single frames (each then a live order-0 allocation).
    AllocateSingles(usize),
    /// Frees the live allocation chosen by the index.
    Free(usize),
    /// Frees every other live allocation, fragmenting memory.
    FreeEveryOther,
    /// Allocates blocks of the order until the allocator runs out.
    Exhaust(usize),
    BadFree(BadFree, usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let order = prop_oneof![3 => 0..3usize, 1 => 0..=MAX_ORDER + 1];
    let bad = prop_oneof![
        Just(BadFree::Double),
        Just(BadFree::Unaligned),
        Just(BadFree::LargerOrder),
        Just(BadFree::SmallerOrder),
        Just(BadFree::Interior),
        Just(BadFree::Unmanaged),
        Just(BadFree::Beyond),
        Just(BadFree::HugeOrder),
    ];
    prop_oneof![
        12 => order.clone().prop_map(Op::Allocate),
        3 => order.prop_map(Op::AllocateSingles),
        8 => any::<usize>().prop_map(Op::Free),
        1 => Just(Op::FreeEveryOther),
        1 => (0..4usize).prop_map(Op::Exhaust),
        6 => (bad, any::<usize>()).prop_map(|(bad, index)| Op::BadFree(bad, index)),
    ]
}

/// The allocator under test next to a simple model of what it should be doing.
struct Model<'a> {
    arena: &'a Arena,
    allocator: BuddyAllocator,
    /// Per frame of the arena: whether the allocator may hand it out.
    managed: Vec<bool>,
    /// Per frame of the arena: whether it is in a live allocation.
    in_use: Vec<bool>,
    /// Live allocations: address to order and fill byte.
    live: BTreeMap<u64, (usize, u8)>,
    /// Blocks freed so far, as address and order.
    freed: Vec<(u64, usize)>,
    next_tag: u8,
}

impl Model<'_> {
    fn frames_of(phys: u64, order: usize) -> Range<usize> {
        let first = (phys / FRAME_SIZE) as usize;
        first..first + (1 << order)
    }

    fn check_stats(&self) {
        let stats = self.allocator.stats();
        let in_use = self.in_use.iter().filter(|&&used| used).count();
        assert_eq!(stats.free_frames, stats.total_frames - in_use);
        check_invariants(&self.allocator);
    }

    fn allocate(&mut self, order: usize) -> Option<u64> {
        let before = self.allocator.stats();
        let Some(phys) = self.allocator.allocate(order) else {
            if order <= MAX_ORDER {
                assert_eq!(before.free_blocks[order..], [0; ORDERS][order..]);
            }
            assert_eq!(self.allocator.stats(), before);
            return None;
        };
        assert!(order <= MAX_ORDER);
        assert_eq!(phys % (FRAME_SIZE << order), 0, "{phys:#x} is misaligned");
        assert!(phys + (FRAME_SIZE << order) <= self.arena.size());
        for frame in Self::frames_of(phys, order) {
            assert!(self.managed[frame], "frame {frame:#x} is not managed");
            assert!(!self.in_use[frame], "frame {frame:#x} is allocated twice");
            self.in_use[frame] = true;
        }
        self.next_tag = self.next_tag.wrapping_add(1);
        self.arena.fill(phys, order, self.next_tag);
        self.live.insert(phys, (order, self.next_tag));
        Some(phys)
    }

    fn allocate_singles(&mut self, order: usize) {
        let before = self.allocator.stats();
        let Some(phys) = self.allocator.allocate_singles(order) else {
            if order <= MAX_ORDER {
                assert_eq!(before.free_blocks[order..], [0; ORDERS][order..]);
            }
            assert_eq!(self.allocator.stats(), before);
            return;
        };
        assert!(order <= MAX_ORDER);
        assert_eq!(phys % (FRAME_SIZE << order), 0, "{phys:#x} is misaligned");
        assert_eq!(
            self.allocator.stats().allocations,
            before.allocations + (1 << order)
        );
        for frame in Self::frames_of(phys, order) {
            assert!(self.managed[frame], "frame {frame:#x} is not managed");
            assert!(!self.in_use[frame], "frame {frame:#x} is allocated twice");
            self.in_use[frame] = true;
            let single = frame as u64 * FRAME_SIZE;
            self.next_tag = self.next_tag.wrapping_add(1);
            self.arena.fill(single, 0, self.next_tag);
            self.live.insert(single, (0, self.next_tag));
        }
    }

    fn free(&mut self, phys: u64) {
        let (order, tag) = self.live.remove(&phys).unwrap();
        self.arena.check(phys, order, tag);
        assert_eq!(self.allocator.free(phys, order), Ok(()));
        for frame in Self::frames_of(phys, order) {
            self.in_use[frame] = false;
        }
        self.freed.push((phys, order));
    }

    /// The `index`th live allocation, if any.
    fn live(&self, index: usize) -> Option<(u64, usize)> {
        let count = self.live.len();
        let (&phys, &(order, _)) = self.live.iter().nth(index.checked_rem(count)?)?;
        Some((phys, order))
    }

    /// The `index`th frame of the arena (as an address) for which `pick` holds, if any.
    fn frame_where(&self, index: usize, pick: impl Fn(usize) -> bool) -> Option<u64> {
        let count = (0..self.managed.len()).filter(|&frame| pick(frame)).count();
        let nth = index.checked_rem(count)?;
        let frame = (0..self.managed.len())
            .filter(|&frame| pick(frame))
            .nth(nth)?;
        Some(frame as u64 * FRAME_SIZE)
    }

    /// An invalid free of kind `bad` and the error it must give, if one can be built now.
    fn bad_free(&self, bad: BadFree, index: usize) -> Option<(u64, usize, FreeError)> {
        Some(match bad {
            BadFree::Double => {
                let freed = self.freed.iter().rev().nth(index % 4).copied();
                let still_free = freed.filter(|&(phys, order)| {
                    Self::frames_of(phys, order).all(|frame| !self.in_use[frame])
                });
                let (phys, order) = match still_free {
                    Some(block) => block,
                    None => (
                        self.frame_where(index, |frame| {
                            self.managed[frame] && !self.in_use[frame]
                        })?,
                        0,
                    ),
                };
                (phys, order, FreeError::DoubleFree { phys })
            }
            BadFree::Unaligned => {
                let (phys, order) = self.live(index).unwrap_or((0, 0));
                let bad = phys + 1 + (index as u64) % ((FRAME_SIZE << order) - 1);
                (bad, order, FreeError::Misaligned { phys: bad, order })
            }
            BadFree::LargerOrder => {
                let (phys, allocated_order) = self.live(index)?;
                let order = allocated_order + 1 + index % 2;
                let error = if order > MAX_ORDER {
                    FreeError::InvalidOrder { phys, order }
                } else if !phys.is_multiple_of(FRAME_SIZE << order) {
                    FreeError::Misaligned { phys, order }
                } else {
                    FreeError::OrderMismatch {
                        phys,
                        order,
                        allocated_order,
                    }
                };
                (phys, order, error)
            }
            BadFree::SmallerOrder => {
                let (phys, allocated_order) = self.live(index).filter(|&(_, order)| order > 0)?;
                let order = index % allocated_order;
                let error = FreeError::OrderMismatch {
                    phys,
                    order,
                    allocated_order,
                };
                (phys, order, error)
            }
            BadFree::Interior => {
                let (block, order) = self.live(index).filter(|&(_, order)| order > 0)?;
                let phys = block + FRAME_SIZE * (1 + (index as u64) % (block_frames(order) - 1));
                (phys, 0, FreeError::InsideBlock { phys, block })
            }
            BadFree::Unmanaged => {
                let phys = self.frame_where(index, |frame| !self.managed[frame])?;
                (phys, 0, FreeError::Foreign { phys })
            }
            BadFree::Beyond => {
                let phys = match index % 3 {
                    0 => u64::MAX - (FRAME_SIZE - 1),
                    _ => ARENA + FRAME_SIZE * (index as u64 % 4096),
                };
                (phys, 0, FreeError::Foreign { phys })
            }
            BadFree::HugeOrder => {
                let (phys, _) = self.live(index).unwrap_or((0, 0));
                let order = MAX_ORDER + 1 + index % 60;
                (phys, order, FreeError::InvalidOrder { phys, order })
            }
        })
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Allocate(order) => {
                self.allocate(order);
            }
            Op::AllocateSingles(order) => self.allocate_singles(order),
            Op::Free(index) => {
                if let Some((phys, _)) = self.live(index) {
                    self.free(phys);
                }
            }
            Op::FreeEveryOther => {
                let victims: Vec<u64> = self.live.keys().copied().step_by(2).collect();
                for phys in victims {
                    self.free(phys);
                }
            }
            Op::Exhaust(order) => {
                while self.allocate(order).is_some() {}
                assert_eq!(
                    self.allocator.stats().free_blocks[order..],
                    [0; ORDERS][order..]
                );
            }
            Op::BadFree(bad, index) => {
                let Some((phys, order, error)) = self.bad_free(bad, index) else {
                    return;
                };
                let (stats, meta) = (self.allocator.stats(), self.allocator.meta.to_vec());
                assert_eq!(self.allocator.free(phys, order), Err(error));
                assert_eq!(self.allocator.stats(), stats);
                assert_eq!(self.allocator.meta, meta);
            }
        }
        self.check_stats();
    }
}

/// Runs `ops` against an allocator given `ranges` of an [`ARENA`]-byte arena.
fn run_against_model(ranges: &[Range<u64>], ops: Vec<Op>) {
    let arena = Arena::new(ARENA);
    let frame_ranges = || ranges.iter().filter_map(frames_within);
    let given: u64 = frame_ranges().map(|frames| frames.end - frames.start).sum();
    let allocator = arena.allocator(ranges);
    let allocator = match given {
        0 => return assert_eq!(allocator.err(), Some(InitError::NoFrames)),
        1 => {
            let expected = InitError::NothingLeftAfterMetadata { metadata_frames: 1 };
            return assert_eq!(allocator.err(), Some(expected));
        }
        _ => allocator.unwrap(),
    };

    // The span is at most 2048 frames: one metadata frame, from the smallest range.
    let smallest = frame_ranges()
        .min_by_key(|frames| frames.end - frames.start)
        .unwrap();
    let metadata = allocator.metadata();
    assert_eq!(
        metadata,
        smallest.start * FRAME_SIZE..(smallest.start + 1) * FRAME_SIZE
    );
    let initial = allocator.stats();
    assert_eq!(initial.metadata_frames, 1);
    assert_eq!(initial.total_frames as u64, given - 1);
    assert_eq!(initial.free_frames, initial.total_frames);
    assert_eq!((initial.allocations, initial.frees), (0, 0));
    let initial_meta = allocator.meta.to_vec();

    let frame_count = (ARENA / FRAME_SIZE) as usize;
    let mut managed = vec![false; frame_count];
    for frames in frame_ranges() {
        for frame in frames {
            managed[frame as usize] = true;
        }
    }
    managed[smallest.start as usize] = false;
    let mut model = Model {
        arena: &arena,
        allocator,
        managed,
        in_use: vec![false; frame_count],
        live: BTreeMap::new(),
        freed: Vec::new(),
        next_tag: 0,
    };
    model.check_stats();
    for op in ops {
        model.apply(op);
    }

    let live: Vec<u64> = model.live.keys().copied().collect();
    for phys in live {
        model.free(phys);
    }
    model.check_stats();
    let stats = model.allocator.stats();
    assert_eq!(stats.free_frames, initial.free_frames);
    assert_eq!(stats.free_blocks, initial.free_blocks);
    assert_eq!(stats.allocations, stats.frees);
    assert_eq!(model.allocator.meta, initial_meta);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri; see deterministic_sequence")]
    fn random_sequences_match_the_model(
        ranges in ranges_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..160),
    ) {
        run_against_model(&ranges, ops);
    }
}
