//! A buddy-system allocator for physical memory frames.
//!
//! The kernel builds its frame allocator from the bootloader's memory map before any heap
//! exists, so this crate never allocates: everything it needs lives inside the memory it is
//! given.
//!
//! # What the allocator owns
//!
//! [`BuddyAllocator::init`] takes ownership of a set of usable physical ranges for good. It
//! reaches that memory through the kernel's direct map (physical address `p` is mapped at virtual
//! address `phys_offset + p`) and uses it in two ways:
//!
//! * **Metadata**: one byte per frame for every frame from the lowest to the highest frame given
//!   (holes included), stored in whole frames carved from the start of the smallest range that
//!   can hold it. These frames are never handed out.
//! * **Free lists**: for each order `0..=MAX_ORDER` a doubly linked list of free blocks of
//!   `2^order` frames. The list node (previous and next frame numbers) is written into the first
//!   bytes of the free block itself, so pushing, popping and unlinking a block from the middle of
//!   its list are all O(1).
//!
//! # Invariants
//!
//! Once initialised, every frame of the span is in exactly one of these states, recorded in its
//! metadata byte:
//!
//! * *unmanaged*: not in any given range, or holding metadata; never handed out, never freed;
//! * *head of a free block* of order `k`: the block is `2^k` managed frames, naturally aligned
//!   (its frame number is a multiple of `2^k`), and it is on free list `k`;
//! * *head of an allocated block* of order `k`: same shape, handed out by
//!   [`BuddyAllocator::allocate`] and not yet freed;
//! * *tail*: one of the other `2^k - 1` frames of a free or allocated block.
//!
//! Free list `k` holds exactly the heads of free blocks of order `k`. Free blocks are fully
//! coalesced: no two buddies of the same order (`pfn` and `pfn ^ 2^k`) are both free heads of
//! order `k`, as they are always merged into one block of order `k + 1` (up to `MAX_ORDER`).
//! Because of that the free lists after freeing every allocation are exactly those right after
//! `init`.
//!
//! [`BuddyAllocator::free`] checks an address against these metadata bytes before touching any
//! memory, so double frees, foreign addresses and order mismatches are reported as errors and
//! leave the allocator unchanged. No operation panics on bad input or exhaustion.
#![cfg_attr(not(test), no_std)]

use core::fmt;
use core::ops::Range;
use core::ptr;

/// Size of one physical frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// Largest block order: a block of order `MAX_ORDER` is `2^10` frames (4 MiB).
pub const MAX_ORDER: usize = 10;

/// Number of block orders (`0..=MAX_ORDER`).
const ORDERS: usize = MAX_ORDER + 1;

/// Metadata byte of a frame inside a block, other than its first.
const TAIL: u8 = 0x00;
/// Metadata byte of a frame the allocator does not hand out (holes and metadata).
const UNMANAGED: u8 = 0x01;
/// Flag of the metadata byte of a block's first frame; the low bits hold the block's order.
const HEAD: u8 = 0x80;
/// Flag, next to [`HEAD`], of the first frame of a free block.
const FREE: u8 = 0x40;
/// Bits of a head's metadata byte that hold the block's order.
const ORDER_MASK: u8 = 0x0f;

/// Smallest order whose blocks hold `count` frames (`Some(0)` for zero frames), or `None` when
/// even a block of [`MAX_ORDER`] is too small.
pub fn order_for_frames(count: usize) -> Option<usize> {
    let order = count.checked_next_power_of_two()?.trailing_zeros() as usize;
    (order <= MAX_ORDER).then_some(order)
}

/// Number of frames in a block of `order`.
const fn block_frames(order: usize) -> u64 {
    1 << order
}

/// The whole frames inside the byte range `range` as frame numbers, or `None` if there are none.
fn frames_within(range: &Range<u64>) -> Option<Range<u64>> {
    let start = range.start.div_ceil(FRAME_SIZE);
    let end = range.end / FRAME_SIZE;
    (start < end).then_some(start..end)
}

/// Largest order of a naturally aligned block starting at frame `pfn` that fits in `count`
/// frames (`count >= 1`).
fn largest_order_at(pfn: u64, count: u64) -> usize {
    let order = pfn.trailing_zeros().min(count.ilog2()) as usize;
    order.min(MAX_ORDER)
}

/// Counters describing the allocator, as returned by [`BuddyAllocator::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames the allocator hands out, metadata excluded.
    pub total_frames: usize,
    /// Frames currently free.
    pub free_frames: usize,
    /// Number of free blocks of each order.
    pub free_blocks: [usize; ORDERS],
    /// Blocks handed out: successful calls to [`BuddyAllocator::allocate`], plus every frame
    /// of [`BuddyAllocator::allocate_singles`].
    pub allocations: u64,
    /// Successful calls to [`BuddyAllocator::free`].
    pub frees: u64,
    /// Frames holding the allocator's own metadata.
    pub metadata_frames: usize,
}

/// Why [`BuddyAllocator::init`] refused the memory it was given. The allocator is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `init` already succeeded on this allocator.
    AlreadyInitialized,
    /// Two of the given byte ranges share at least one byte.
    Overlap {
        /// One of the overlapping ranges.
        first: Range<u64>,
        /// The other one.
        second: Range<u64>,
    },
    /// No range contains a whole frame.
    NoFrames,
    /// No single range, rounded inward to frames, can hold the metadata.
    MetadataTooLarge {
        /// Contiguous frames the metadata needs.
        needed_frames: u64,
    },
    /// The metadata fits, but it takes every frame given.
    NothingLeftAfterMetadata {
        /// Frames the metadata takes.
        metadata_frames: u64,
    },
    /// `phys_offset` plus the highest address given does not fit in a virtual address.
    AddressOverflow {
        /// The offset passed to `init`.
        phys_offset: u64,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyInitialized => write!(f, "the frame allocator is already initialised"),
            Self::Overlap { first, second } => write!(
                f,
                "usable ranges {:#x}..{:#x} and {:#x}..{:#x} overlap",
                first.start, first.end, second.start, second.end
            ),
            Self::NoFrames => write!(
                f,
                "the usable ranges contain no whole {FRAME_SIZE}-byte frame"
            ),
            Self::MetadataTooLarge { needed_frames } => write!(
                f,
                "no usable range can hold the frame allocator's metadata \
                 ({needed_frames} contiguous frames)"
            ),
            Self::NothingLeftAfterMetadata { metadata_frames } => write!(
                f,
                "the usable ranges hold only the frame allocator's metadata \
                 ({metadata_frames} frames), no frame is left to hand out"
            ),
            Self::AddressOverflow { phys_offset } => write!(
                f,
                "the usable ranges mapped at offset {phys_offset:#x} do not fit the address space"
            ),
        }
    }
}

impl core::error::Error for InitError {}

/// Why [`BuddyAllocator::free`] refused a block. The allocator is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// `order` is larger than [`MAX_ORDER`].
    InvalidOrder {
        /// Address passed to `free`.
        phys: u64,
        /// Order passed to `free`.
        order: usize,
    },
    /// `phys` is not aligned to the size of a block of `order`.
    Misaligned {
        /// Address passed to `free`.
        phys: u64,
        /// Order passed to `free`.
        order: usize,
    },
    /// `phys` is not a frame this allocator hands out (outside the ranges, or metadata).
    Foreign {
        /// Address passed to `free`.
        phys: u64,
    },
    /// The block at `phys` was allocated with another order.
    OrderMismatch {
        /// Address passed to `free`.
        phys: u64,
        /// Order passed to `free`.
        order: usize,
        /// Order the block was allocated with.
        allocated_order: usize,
    },
    /// The frame at `phys` is already free.
    DoubleFree {
        /// Address passed to `free`.
        phys: u64,
    },
    /// `phys` lies inside an allocated block but is not its first frame.
    InsideBlock {
        /// Address passed to `free`.
        phys: u64,
        /// Address of the allocated block containing `phys`.
        block: u64,
    },
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidOrder { phys, order } => write!(
                f,
                "cannot free {phys:#x}: order {order} exceeds the maximum order {MAX_ORDER}"
            ),
            Self::Misaligned { phys, order } => write!(
                f,
                "cannot free {phys:#x}: not aligned to the size of an order-{order} block"
            ),
            Self::Foreign { phys } => write!(
                f,
                "cannot free {phys:#x}: not a frame managed by this allocator"
            ),
            Self::OrderMismatch {
                phys,
                order,
                allocated_order,
            } => write!(
                f,
                "cannot free {phys:#x} as order {order}: it was allocated as order {allocated_order}"
            ),
            Self::DoubleFree { phys } => {
                write!(f, "cannot free {phys:#x}: it is already free (double free)")
            }
            Self::InsideBlock { phys, block } => write!(
                f,
                "cannot free {phys:#x}: it lies inside the block allocated at {block:#x}, \
                 not at its start"
            ),
        }
    }
}

impl core::error::Error for FreeError {}

/// State of one frame, decoded from its metadata byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameState {
    Unmanaged,
    Tail,
    Free(usize),
    Allocated(usize),
}

impl FrameState {
    fn decode(byte: u8) -> Self {
        let order = usize::from(byte & ORDER_MASK);
        if byte & (HEAD | FREE) == HEAD | FREE {
            Self::Free(order)
        } else if byte & HEAD != 0 {
            Self::Allocated(order)
        } else if byte == TAIL {
            Self::Tail
        } else {
            Self::Unmanaged
        }
    }

    fn encode(self) -> u8 {
        // Orders never exceed MAX_ORDER, which fits in ORDER_MASK.
        match self {
            Self::Unmanaged => UNMANAGED,
            Self::Tail => TAIL,
            Self::Free(order) => HEAD | FREE | order as u8,
            Self::Allocated(order) => HEAD | order as u8,
        }
    }
}

/// Free list node, stored in the first bytes of every free block. Links are frame numbers.
#[derive(Clone, Copy)]
struct Link {
    prev: Option<u64>,
    next: Option<u64>,
}

/// Buddy allocator of physical frames; see the [crate documentation](crate).
pub struct BuddyAllocator {
    /// Virtual address at which physical address 0 is mapped.
    phys_offset: u64,
    /// Frame number of the frame described by `meta[0]`.
    base_pfn: u64,
    /// One metadata byte per frame from `base_pfn`; empty until `init` succeeds. It lives in the
    /// memory given to `init`, which belongs to the allocator for good.
    meta: &'static mut [u8],
    /// Physical address of the first metadata frame.
    meta_phys: u64,
    /// First block of each order's free list.
    heads: [Option<u64>; ORDERS],
    stats: Stats,
}

impl Default for BuddyAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl BuddyAllocator {
    /// An allocator without memory: `allocate` returns `None` until [`init`](Self::init).
    pub const fn new() -> Self {
        Self {
            phys_offset: 0,
            base_pfn: 0,
            meta: &mut [],
            meta_phys: 0,
            heads: [None; ORDERS],
            stats: Stats {
                total_frames: 0,
                free_frames: 0,
                free_blocks: [0; ORDERS],
                allocations: 0,
                frees: 0,
                metadata_frames: 0,
            },
        }
    }

    /// Whether [`init`](Self::init) has succeeded.
    pub fn is_initialized(&self) -> bool {
        !self.meta.is_empty()
    }

    /// Takes ownership of the usable physical byte ranges `ranges` (any alignment; each is
    /// rounded inward to whole frames, and empty ones are ignored). `phys_offset` is the virtual
    /// address at which physical address 0 is mapped.
    ///
    /// The metadata (one byte per frame from the lowest to the highest frame given) is carved
    /// from the start of the smallest range that can hold it; see [`metadata`](Self::metadata).
    /// Everything is checked before any memory is written: on error the allocator is unchanged
    /// and the memory untouched.
    ///
    /// # Errors
    ///
    /// [`InitError`] if the allocator is already initialised, the ranges overlap, hold no whole
    /// frame, have no room for the metadata or nothing beyond it, or do not fit the address
    /// space at `phys_offset`.
    ///
    /// # Safety
    ///
    /// Every byte in `ranges` must be unused RAM, mapped readable and writable at
    /// `phys_offset + address`, and given to the allocator for good: nothing else may access it
    /// except through blocks returned by [`allocate`](Self::allocate), until they are freed.
    pub unsafe fn init(
        &mut self,
        phys_offset: u64,
        ranges: impl Iterator<Item = Range<u64>> + Clone,
    ) -> Result<(), InitError> {
        if self.is_initialized() {
            return Err(InitError::AlreadyInitialized);
        }
        check_overlaps(ranges.clone())?;
        let frame_ranges = || ranges.clone().filter_map(|range| frames_within(&range));

        let lowest = frame_ranges()
            .map(|frames| frames.start)
            .min()
            .ok_or(InitError::NoFrames)?;
        let highest = frame_ranges()
            .map(|frames| frames.end)
            .max()
            .unwrap_or(lowest);
        let span = highest - lowest;
        let metadata_frames = span.div_ceil(FRAME_SIZE);
        let meta_range = frame_ranges()
            .filter(|frames| frames.end - frames.start >= metadata_frames)
            .min_by_key(|frames| frames.end - frames.start)
            .ok_or(InitError::MetadataTooLarge {
                needed_frames: metadata_frames,
            })?;
        let given: u64 = frame_ranges().map(|frames| frames.end - frames.start).sum();
        let total_frames = given - metadata_frames;
        if total_frames == 0 {
            return Err(InitError::NothingLeftAfterMetadata { metadata_frames });
        }
        let end_fits = phys_offset
            .checked_add(highest * FRAME_SIZE)
            .is_some_and(|end| usize::try_from(end).is_ok());
        if !end_fits {
            return Err(InitError::AddressOverflow { phys_offset });
        }
        // The span is below the end address, which fits in a `usize`.
        let span_len = span as usize;

        let meta_phys = meta_range.start * FRAME_SIZE;
        let meta_ptr = ptr::with_exposed_provenance_mut::<u8>((phys_offset + meta_phys) as usize);
        // The `span_len` bytes at `meta_phys` lie in the first `metadata_frames` frames of one
        // given range, mapped writable at `phys_offset + meta_phys` (the sum fits, see above).
        // SAFETY: the caller gives us those frames for good; they are initialised before the
        // slice is made, and marked unmanaged, so only the slice ever reaches them.
        self.meta = unsafe {
            ptr::write_bytes(meta_ptr, UNMANAGED, span_len);
            core::slice::from_raw_parts_mut(meta_ptr, span_len)
        };
        self.phys_offset = phys_offset;
        self.base_pfn = lowest;
        self.meta_phys = meta_phys;

        for frames in frame_ranges() {
            let start = if frames == meta_range {
                frames.start + metadata_frames
            } else {
                frames.start
            };
            let (first, last) = (self.index_of(start), self.index_of(frames.end));
            self.meta[first..last].fill(TAIL);
            let mut pfn = start;
            while pfn < frames.end {
                let order = largest_order_at(pfn, frames.end - pfn);
                // SAFETY: the block lies in a given range past the metadata, so the caller gave
                // it to us, and nothing has been handed out yet. Its frames are marked as tails
                // of a block, as `insert_free` requires.
                unsafe { self.insert_free(pfn, order) };
                pfn += block_frames(order);
            }
        }
        // Both counts are at most `span`, which fits in a `usize`.
        self.stats.total_frames = total_frames as usize;
        self.stats.free_frames = total_frames as usize;
        self.stats.metadata_frames = metadata_frames as usize;
        Ok(())
    }

    /// Physical byte range holding the allocator's metadata (empty before `init`).
    pub fn metadata(&self) -> Range<u64> {
        let len = self.stats.metadata_frames as u64 * FRAME_SIZE;
        self.meta_phys..self.meta_phys + len
    }

    /// Allocates `2^order` contiguous frames, aligned to their size, and returns the physical
    /// address of the first. `None` if no such block is free or `order > MAX_ORDER`.
    pub fn allocate(&mut self, order: usize) -> Option<u64> {
        let (mut level, pfn) = (order..=MAX_ORDER).find_map(|level| {
            let pfn = self.heads[level]?;
            // SAFETY: `pfn` is the head of free list `level`.
            unsafe { self.unlink(pfn, level) };
            Some((level, pfn))
        })?;
        while level > order {
            level -= 1;
            // SAFETY: this is the upper half of the block just taken off a free list, so it is
            // managed and unused; its head was a tail of that block.
            unsafe { self.push_free(pfn + block_frames(level), level) };
        }
        self.set_state(pfn, FrameState::Allocated(order));
        self.stats.free_frames -= 1 << order;
        self.stats.allocations += 1;
        Some(pfn * FRAME_SIZE)
    }

    /// Allocates `2^order` contiguous frames, as [`allocate`](Self::allocate) does, as that many
    /// single frames: each then counts as an order-0 allocation of its own and is freed with
    /// `free(phys, 0)`, in any order. Returns the first frame's address. One block taken off a
    /// free list instead of `2^order` (a cache refilling with single frames wants this).
    pub fn allocate_singles(&mut self, order: usize) -> Option<u64> {
        let phys = self.allocate(order)?;
        let first = phys / FRAME_SIZE;
        for pfn in first..first + block_frames(order) {
            self.set_state(pfn, FrameState::Allocated(0));
        }
        self.stats.allocations += block_frames(order) - 1;
        Some(phys)
    }

    /// Returns the block of `2^order` frames at `phys`, obtained from
    /// [`allocate`](Self::allocate) with the same order, and merges it with its free buddies.
    ///
    /// # Errors
    ///
    /// [`FreeError`] if `order` is too large, `phys` is not aligned to the block size, is not a
    /// managed frame, is not the start of a block allocated with `order`, or is already free.
    /// The allocator is then unchanged.
    pub fn free(&mut self, phys: u64, order: usize) -> Result<(), FreeError> {
        if order > MAX_ORDER {
            return Err(FreeError::InvalidOrder { phys, order });
        }
        if !phys.is_multiple_of(FRAME_SIZE << order) {
            return Err(FreeError::Misaligned { phys, order });
        }
        let pfn = phys / FRAME_SIZE;
        match self.state(pfn) {
            FrameState::Allocated(allocated) if allocated == order => {}
            FrameState::Allocated(allocated_order) => {
                return Err(FreeError::OrderMismatch {
                    phys,
                    order,
                    allocated_order,
                });
            }
            FrameState::Free(_) => return Err(FreeError::DoubleFree { phys }),
            FrameState::Unmanaged => return Err(FreeError::Foreign { phys }),
            FrameState::Tail => return Err(self.tail_error(pfn)),
        }
        // SAFETY: the metadata says `pfn` heads an allocated block of `order`: managed frames,
        // which the caller hands back (the head's byte is overwritten by `insert_free`).
        unsafe { self.insert_free(pfn, order) };
        self.stats.free_frames += 1 << order;
        self.stats.frees += 1;
        Ok(())
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The error for freeing the tail frame `pfn`: it is inside a free block (double free) or
    /// inside an allocated one.
    fn tail_error(&self, pfn: u64) -> FreeError {
        let phys = pfn * FRAME_SIZE;
        // The block containing `pfn` has some order `k` and starts at `pfn` rounded down to
        // `2^k` frames; heads found at smaller orders are smaller blocks that do not reach `pfn`.
        (1..=MAX_ORDER)
            .find_map(|order| {
                let head = pfn & !(block_frames(order) - 1);
                match self.state(head) {
                    FrameState::Free(k) if k >= order => Some(FreeError::DoubleFree { phys }),
                    FrameState::Allocated(k) if k >= order => Some(FreeError::InsideBlock {
                        phys,
                        block: head * FRAME_SIZE,
                    }),
                    _ => None,
                }
            })
            .unwrap_or(FreeError::Foreign { phys })
    }

    /// Index into `meta` of frame `pfn`, which must be in the span (or just past its end).
    fn index_of(&self, pfn: u64) -> usize {
        // The span's length fits in a `usize` (checked by `init`).
        (pfn - self.base_pfn) as usize
    }

    /// State of frame `pfn`; frames outside the span are unmanaged.
    fn state(&self, pfn: u64) -> FrameState {
        pfn.checked_sub(self.base_pfn)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| self.meta.get(index))
            .map_or(FrameState::Unmanaged, |&byte| FrameState::decode(byte))
    }

    /// Records the state of frame `pfn`, which must be in the span.
    fn set_state(&mut self, pfn: u64, state: FrameState) {
        let index = self.index_of(pfn);
        self.meta[index] = state.encode();
    }

    /// Pointer to the free list node of the block starting at frame `pfn`.
    fn link_ptr(&self, pfn: u64) -> *mut Link {
        // `init` checked that every given frame's virtual address fits in a `usize`.
        ptr::with_exposed_provenance_mut((self.phys_offset + pfn * FRAME_SIZE) as usize)
    }

    /// Reads the free list node of the block at `pfn`.
    ///
    /// # Safety
    ///
    /// `pfn` must be the head of a block on a free list.
    unsafe fn read_link(&self, pfn: u64) -> Link {
        // SAFETY: a block on a free list is memory given to `init` and handed out to nobody,
        // mapped at `phys_offset`; `push_free` wrote its node, kept current by list updates.
        unsafe { self.link_ptr(pfn).read_unaligned() }
    }

    /// Writes the free list node of the block at `pfn`.
    ///
    /// # Safety
    ///
    /// `pfn` must be the head of a block of managed frames that is not handed out.
    unsafe fn write_link(&mut self, pfn: u64, link: Link) {
        // SAFETY: per the contract, the block is memory given to `init`, mapped writable at
        // `phys_offset`, and nobody else uses it.
        unsafe { self.link_ptr(pfn).write_unaligned(link) }
    }

    /// Marks the block at `pfn` as a free head of `order` and pushes it on that free list.
    ///
    /// # Safety
    ///
    /// The block must be `2^order` managed, naturally aligned frames that nobody uses, whose
    /// frames other than the head are marked as tails.
    unsafe fn push_free(&mut self, pfn: u64, order: usize) {
        let next = self.heads[order];
        if let Some(next) = next {
            // SAFETY: `next` heads free list `order`.
            unsafe {
                let link = self.read_link(next);
                self.write_link(
                    next,
                    Link {
                        prev: Some(pfn),
                        ..link
                    },
                );
            }
        }
        // SAFETY: the caller guarantees that nobody uses the block.
        unsafe { self.write_link(pfn, Link { prev: None, next }) };
        self.heads[order] = Some(pfn);
        self.set_state(pfn, FrameState::Free(order));
        self.stats.free_blocks[order] += 1;
    }

    /// Takes the block at `pfn` off free list `order`. Its metadata byte is left for the caller
    /// to overwrite.
    ///
    /// # Safety
    ///
    /// `pfn` must be on free list `order`.
    unsafe fn unlink(&mut self, pfn: u64, order: usize) {
        // SAFETY: `pfn` is on a free list, and so are its neighbours.
        unsafe {
            let Link { prev, next } = self.read_link(pfn);
            match prev {
                Some(prev) => {
                    let link = self.read_link(prev);
                    self.write_link(prev, Link { next, ..link });
                }
                None => self.heads[order] = next,
            }
            if let Some(next) = next {
                let link = self.read_link(next);
                self.write_link(next, Link { prev, ..link });
            }
        }
        self.stats.free_blocks[order] -= 1;
    }

    /// Puts the block at `pfn` on the free lists, merging it with its free buddies. Does not
    /// count its frames as free.
    ///
    /// # Safety
    ///
    /// As for [`push_free`](Self::push_free), except that the head may be in any state.
    unsafe fn insert_free(&mut self, pfn: u64, order: usize) {
        let (mut pfn, mut order) = (pfn, order);
        while order < MAX_ORDER {
            let buddy = pfn ^ block_frames(order);
            if self.state(buddy) != FrameState::Free(order) {
                break;
            }
            // SAFETY: a free head of `order` is on free list `order`.
            unsafe { self.unlink(buddy, order) };
            self.set_state(pfn.max(buddy), FrameState::Tail);
            pfn = pfn.min(buddy);
            order += 1;
        }
        // SAFETY: the merged block is the caller's block and free buddies, all unused, with
        // every frame but the head marked as a tail.
        unsafe { self.push_free(pfn, order) };
    }
}

/// Checks that no two non-empty byte ranges share a byte.
fn check_overlaps(ranges: impl Iterator<Item = Range<u64>> + Clone) -> Result<(), InitError> {
    for (position, first) in ranges.clone().enumerate() {
        if first.is_empty() {
            continue;
        }
        let overlapping = ranges.clone().skip(position + 1).find(|second| {
            !second.is_empty() && first.start < second.end && second.start < first.end
        });
        if let Some(second) = overlapping {
            return Err(InitError::Overlap { first, second });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
