//! Where everything sits inside a slab: the header, the slots, and inside each slot the object,
//! its red zones and its trailer word. Computed once, at compile time for static caches, by
//! [`ObjectLayout::new`].
//!
//! ```text
//! slab (PAGE_SIZE << order bytes, aligned to its size)
//! +-------------+---------+--------+-----+--------+--------+
//! | SlabHeader  | padding | slot 0 | ... | slot n | unused |
//! +-------------+---------+--------+-----+--------+--------+
//!               ^ `first`  <stride>
//!
//! slot
//! +---------+-----------+------------------+-----------+------------+---------+---------+
//! | padding | left zone | object (`size`)  | right pad | right zone | trailer | padding |
//! +---------+-----------+------------------+-----------+------------+---------+---------+
//!            RED_ZONE    ^ `obj_offset`      RED_ZONE    RED_ZONE     default
//!                                                                     link place
//! ```
//!
//! The trailer is an `AtomicPtr<u8>` after the object: the free-list link while the object sits
//! on its slab's free list, a tag while it is handed out or parked in a per-CPU magazine. A
//! cache that names a link offset inside the object has no trailer.

use crate::slab::SlabHeader;
use crate::sync::{AtomicPtr, AtomicUsize};
use crate::{CacheFlags, PAGE_SIZE};
use core::mem::{align_of, size_of};

/// Largest slab: `PAGE_SIZE << MAX_SLAB_ORDER` bytes (64 KiB).
pub(crate) const MAX_SLAB_ORDER: u32 = 4;

/// A slab is made large enough for this many objects when [`MAX_SLAB_ORDER`] allows.
const MIN_OBJECTS: usize = 8;

const WORD: usize = size_of::<usize>();

/// Byte offsets of the red zones of a slot (present with [`CacheFlags::RED_ZONE`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RedZones {
    /// A `usize` holding [`crate::debug::RED_LEFT`], right before the object.
    pub(crate) left: usize,
    /// Start of the bytes between the object's end and `right`, each [`crate::debug::RED_PAD`].
    pub(crate) pad: usize,
    /// An `AtomicUsize`: [`crate::debug::RED_ACTIVE`] while the object is handed out,
    /// [`crate::debug::RED_INACTIVE`] while it is free.
    pub(crate) right: usize,
}

/// The geometry of one cache's slabs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ObjectLayout {
    /// Object size as the cache was created with.
    pub(crate) size: usize,
    /// Offset of the object inside its slot; a multiple of the object's alignment.
    pub(crate) obj_offset: usize,
    /// Distance between slots; a multiple of every alignment in the slot.
    pub(crate) stride: usize,
    /// Offset of the trailer `AtomicPtr<u8>` inside the slot, if the link lives there.
    pub(crate) trailer: Option<usize>,
    /// Offset of the free-list link inside the slot: the trailer, or inside the object.
    pub(crate) link: usize,
    pub(crate) red_zones: Option<RedZones>,
    /// log2 of the pages per slab.
    pub(crate) order: u32,
    /// Offset of slot 0 from the start of the slab.
    pub(crate) first: usize,
    /// Slots per slab.
    pub(crate) objects: usize,
}

const fn round_up(value: usize, align: usize) -> usize {
    (value + align - 1) & !(align - 1)
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

impl ObjectLayout {
    /// Lays out objects of `size` bytes aligned to `align`, with the link in a trailer after the
    /// object or, with `link_offset`, at that offset inside the object.
    ///
    /// Panics (at compile time for a `const` cache) on a zero size, an alignment that is not a
    /// power of two or exceeds a page, a link offset that is not a word-aligned word inside the
    /// object, or an object too big for the largest slab.
    pub(crate) const fn new(
        size: usize,
        align: usize,
        flags: CacheFlags,
        link_offset: Option<usize>,
    ) -> Self {
        assert!(size > 0, "slab: object size must not be zero");
        assert!(
            align.is_power_of_two(),
            "slab: alignment must be a power of two"
        );
        assert!(
            align <= PAGE_SIZE,
            "slab: alignment above a page is not supported"
        );
        let atomic_align = max(align_of::<AtomicPtr<u8>>(), align_of::<AtomicUsize>());
        let slot_align = max(max(align, WORD), atomic_align);

        let red = flags.contains(CacheFlags::RED_ZONE);
        let obj_offset = if red { round_up(WORD, align) } else { 0 };
        let mut end = obj_offset + size;
        let red_zones = if red {
            let right = round_up(end, align_of::<AtomicUsize>());
            let zones = RedZones {
                left: obj_offset - WORD,
                pad: end,
                right,
            };
            end = right + size_of::<AtomicUsize>();
            Some(zones)
        } else {
            None
        };
        let (trailer, link) = match link_offset {
            None => {
                let trailer = round_up(end, align_of::<AtomicPtr<u8>>());
                end = trailer + size_of::<AtomicPtr<u8>>();
                (Some(trailer), trailer)
            }
            Some(offset) => {
                assert!(
                    offset.is_multiple_of(WORD) && offset + WORD <= size,
                    "slab: the free-link offset must be a word-aligned word inside the object"
                );
                (None, obj_offset + offset)
            }
        };
        let stride = round_up(end, slot_align);
        let first = round_up(size_of::<SlabHeader>(), slot_align);

        // The smallest slab that holds MIN_OBJECTS, else the largest one.
        let mut order = 0;
        loop {
            let objects = Self::fit(order, first, stride);
            if objects >= MIN_OBJECTS || (order == MAX_SLAB_ORDER && objects > 0) {
                return Self {
                    size,
                    obj_offset,
                    stride,
                    trailer,
                    link,
                    red_zones,
                    order,
                    first,
                    objects,
                };
            }
            assert!(
                order < MAX_SLAB_ORDER,
                "slab: object too large for the largest slab"
            );
            order += 1;
        }
    }

    /// Slots that fit in a slab of `order`.
    const fn fit(order: u32, first: usize, stride: usize) -> usize {
        let bytes = PAGE_SIZE << order;
        if bytes > first {
            (bytes - first) / stride
        } else {
            0
        }
    }

    /// Bytes per slab.
    pub(crate) const fn slab_bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// Pages per slab.
    pub(crate) const fn pages(&self) -> usize {
        1 << self.order
    }

    /// Offset of the object in slot `index` from the start of the slab.
    pub(crate) const fn object_offset(&self, index: usize) -> usize {
        self.first + index * self.stride + self.obj_offset
    }

    /// Index of the slot whose object starts `offset` bytes into the slab, if one does.
    pub(crate) const fn index_of(&self, offset: usize) -> Option<usize> {
        let start = self.first + self.obj_offset;
        if offset < start {
            return None;
        }
        let rel = offset - start;
        if !rel.is_multiple_of(self.stride) || rel / self.stride >= self.objects {
            return None;
        }
        Some(rel / self.stride)
    }

    /// The byte range `[start, end)` of the object, relative to the object, that the free link
    /// occupies when the link lives inside the object.
    pub(crate) const fn link_in_object(&self) -> Option<(usize, usize)> {
        match self.trailer {
            Some(_) => None,
            None => Some((
                self.link - self.obj_offset,
                self.link - self.obj_offset + WORD,
            )),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn every_slot_fits(l: &ObjectLayout, align: usize) {
        assert!(l.first >= size_of::<SlabHeader>());
        assert!(l.objects >= 1);
        assert!(l.first + l.objects * l.stride <= l.slab_bytes());
        for i in 0..l.objects {
            let obj = l.object_offset(i);
            assert_eq!(obj % align, 0);
            assert_eq!(l.index_of(obj), Some(i));
            assert_eq!(l.index_of(obj + 1), None);
            if let Some(t) = l.trailer {
                assert!(t >= l.obj_offset + l.size, "trailer overlaps the object");
                assert_eq!(
                    (l.first + i * l.stride + t) % align_of::<AtomicPtr<u8>>(),
                    0
                );
            }
        }
        assert_eq!(l.index_of(l.object_offset(l.objects)), None);
    }

    #[test]
    fn small_objects_get_a_page_with_a_trailer() {
        let l = ObjectLayout::new(24, 8, CacheFlags::NONE, None);
        assert_eq!(l.order, 0);
        assert_eq!(l.stride, 32);
        assert_eq!(l.trailer, Some(24));
        assert_eq!(l.link, 24);
        every_slot_fits(&l, 8);
    }

    #[test]
    fn link_offset_drops_the_trailer() {
        let l = ObjectLayout::new(24, 8, CacheFlags::NONE, Some(8));
        assert_eq!(l.stride, 24);
        assert_eq!(l.trailer, None);
        assert_eq!(l.link_in_object(), Some((8, 16)));
        every_slot_fits(&l, 8);
    }

    #[test]
    fn red_zones_surround_the_object() {
        let l = ObjectLayout::new(13, 4, CacheFlags::RED_ZONE, None);
        let z = l.red_zones.unwrap();
        assert_eq!(z.left + WORD, l.obj_offset);
        assert_eq!(z.pad, l.obj_offset + 13);
        assert_eq!(z.right, 24);
        assert_eq!(l.trailer, Some(32));
        every_slot_fits(&l, 4);
    }

    #[test]
    fn large_objects_get_larger_slabs() {
        let l = ObjectLayout::new(1000, 64, CacheFlags::NONE, None);
        assert!(l.objects >= MIN_OBJECTS);
        assert_eq!(l.order, 2);
        every_slot_fits(&l, 64);
        let huge = ObjectLayout::new(40_000, 8, CacheFlags::NONE, None);
        assert_eq!((huge.order, huge.objects), (MAX_SLAB_ORDER, 1));
        let aligned = ObjectLayout::new(100, 4096, CacheFlags::RED_ZONE, None);
        every_slot_fits(&aligned, 4096);
    }

    #[test]
    #[should_panic(expected = "too large")]
    fn too_large_is_rejected() {
        ObjectLayout::new(70_000, 8, CacheFlags::NONE, None);
    }

    #[test]
    #[should_panic(expected = "free-link offset")]
    fn link_offset_outside_the_object_is_rejected() {
        ObjectLayout::new(16, 8, CacheFlags::NONE, Some(16));
    }
}
