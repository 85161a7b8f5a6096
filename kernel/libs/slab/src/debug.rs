//! Per-object state outside the allocator's lists: the free link and the trailer tags, red
//! zones, poisoning and the constructed-state check, applied when a slot is created, handed out
//! and freed.
//!
//! An object's slot is touched here only by whoever owns the object at that moment (the slab
//! being built, the allocating call, the freeing call, or the shared lock for the link while
//! the object is on a free list), so plain accesses suffice except for the trailer and the
//! right red-zone word: those are atomics so that two racing frees of the same object see each
//! other (one compare-and-swap wins, the other reports a double free).
//!
//! Nothing here writes inside the object of a `TYPESAFE_BY_RCU` cache after its constructor ran,
//! except the link when the cache put it there with `with_free_link_offset`.

use crate::cache::KmemCache;
use crate::sync::{AtomicPtr, AtomicUsize, Ordering};
use crate::{CacheFlags, Platform};
use core::ptr;

/// Trailer of an object that is handed out. Odd, so never a link (slots are word-aligned).
const TAG_ALLOCATED: usize = 0xa110_ca7e_da11_0ca1_u64 as usize;
/// Trailer of a freed object parked in a magazine. Odd as well.
const TAG_FREE: usize = 0xf4ee_f4ee_f4ee_f4e1_u64 as usize;
/// The word before each object in a red-zoned cache.
pub(crate) const RED_LEFT: usize = 0xbbbb_bbbb_bbbb_bbbb_u64 as usize;
/// Each byte between the object's end and the right red-zone word.
pub(crate) const RED_PAD: u8 = 0xbb;
/// The right red-zone word while the object is handed out.
pub(crate) const RED_ACTIVE: usize = 0xcccc_cccc_cccc_cccc_u64 as usize;
/// The right red-zone word while the object is free.
pub(crate) const RED_INACTIVE: usize = 0xbbbb_bbbb_bbbb_bbbb_u64 as usize;
/// Each byte of a free object in a poisoned cache.
const POISON: u8 = 0x6b;

impl<P: Platform + 'static> KmemCache<P> {
    /// The start of the slot holding `object`.
    fn slot(&self, object: *mut u8) -> *mut u8 {
        object.wrapping_sub(self.layout.obj_offset)
    }

    /// The trailer of `object`, if the cache has trailers.
    ///
    /// # Safety
    ///
    /// `object` is an object of a live slab of this cache (so its trailer was initialised).
    unsafe fn trailer(&self, object: *mut u8) -> Option<&AtomicPtr<u8>> {
        let offset = self.layout.trailer?;
        // SAFETY: the trailer was written as an `AtomicPtr` when the slab was built and lives
        // as long as the slab.
        Some(unsafe { &*self.slot(object).add(offset).cast::<AtomicPtr<u8>>() })
    }

    /// The right red-zone word of `object`, if the cache has red zones.
    ///
    /// # Safety
    ///
    /// As for [`Self::trailer`].
    unsafe fn red_right(&self, object: *mut u8) -> Option<&AtomicUsize> {
        let zones = self.layout.red_zones?;
        // SAFETY: written as an `AtomicUsize` when the slab was built.
        Some(unsafe { &*self.slot(object).add(zones.right).cast::<AtomicUsize>() })
    }

    /// The free-list link of `object`.
    ///
    /// # Safety
    ///
    /// `object` is on its slab's free list and the caller holds the shared lock.
    pub(crate) unsafe fn read_link(&self, object: *mut u8) -> *mut u8 {
        // SAFETY: per the contract; the link was written by `write_link` or `init_slot`.
        unsafe {
            match self.trailer(object) {
                Some(trailer) => trailer.load(Ordering::Relaxed),
                None => self
                    .slot(object)
                    .add(self.layout.link)
                    .cast::<*mut u8>()
                    .read(),
            }
        }
    }

    /// Sets the free-list link of `object`.
    ///
    /// # Safety
    ///
    /// `object` is free, owned by the caller, who holds the shared lock.
    pub(crate) unsafe fn write_link(&self, object: *mut u8, next: *mut u8) {
        // SAFETY: per the contract; a link inside the object is a word no reader loads.
        unsafe {
            match self.trailer(object) {
                Some(trailer) => trailer.store(next, Ordering::Relaxed),
                None => self
                    .slot(object)
                    .add(self.layout.link)
                    .cast::<*mut u8>()
                    .write(next),
            }
        }
    }

    /// Builds the slot of `object` in a new slab: red zones, poison, constructor, and last the
    /// free link (so that a constructor that writes the whole object cannot clobber it).
    ///
    /// # Safety
    ///
    /// `object` is the object of a slot of a slab under construction, owned by the caller.
    pub(crate) unsafe fn init_slot(&self, object: *mut u8, next: *mut u8) {
        let slot = self.slot(object);
        // SAFETY: the slot, with the offsets from the layout, is inside the slab and ours.
        unsafe {
            if let Some(zones) = self.layout.red_zones {
                slot.add(zones.left).cast::<usize>().write(RED_LEFT);
                slot.add(zones.pad)
                    .write_bytes(RED_PAD, zones.right - zones.pad);
                slot.add(zones.right)
                    .cast::<AtomicUsize>()
                    .write(AtomicUsize::new(RED_INACTIVE));
            }
            if self.flags().contains(CacheFlags::POISON) {
                self.poison(object);
            }
            if let Some(ctor) = self.ctor {
                ctor(object);
            }
            match self.layout.trailer {
                Some(offset) => slot
                    .add(offset)
                    .cast::<AtomicPtr<u8>>()
                    .write(AtomicPtr::new(next)),
                None => slot.add(self.layout.link).cast::<*mut u8>().write(next),
            }
        }
    }

    /// Checks and marks an object that is being handed out.
    ///
    /// # Safety
    ///
    /// `object` is a free object of this cache that the caller has just taken.
    pub(crate) unsafe fn on_alloc(&self, object: *mut u8) {
        // SAFETY: the object and its slot are ours.
        unsafe {
            if let Some(right) = self.red_right(object) {
                self.check_red_zones(object, "a free object");
                if right.load(Ordering::Relaxed) != RED_INACTIVE {
                    self.report_zone(object, "after", "a free object");
                }
                right.store(RED_ACTIVE, Ordering::Relaxed);
            }
            if let Some(trailer) = self.trailer(object) {
                if trailer.load(Ordering::Relaxed).addr() == TAG_ALLOCATED {
                    self.report(object, "handed out twice: free list corrupted");
                }
                trailer.store(
                    ptr::without_provenance_mut(TAG_ALLOCATED),
                    Ordering::Relaxed,
                );
            }
            if self.flags().contains(CacheFlags::POISON) && !self.poison_intact(object) {
                self.report(object, "written to while free (use after free)");
            }
        }
    }

    /// Checks and marks an object that is being freed; panics on a double free, a red-zone
    /// overwrite, or an object not in constructed state.
    ///
    /// # Safety
    ///
    /// `object` is an object of a live slab of this cache, and the caller claims to own it.
    pub(crate) unsafe fn on_free(&self, object: *mut u8) {
        // SAFETY: the slot is initialised (live slab); a racing second free of the same object
        // only touches the atomics, where exactly one compare-and-swap succeeds.
        unsafe {
            let right = self.red_right(object);
            if let Some(right) = right {
                self.check_red_zones(object, "freed object");
                match right.load(Ordering::Relaxed) {
                    RED_ACTIVE => {}
                    RED_INACTIVE => self.report(object, "double free"),
                    _ => self.report_zone(object, "after", "freed object"),
                }
            }
            let allocated = ptr::without_provenance_mut(TAG_ALLOCATED);
            let free = ptr::without_provenance_mut(TAG_FREE);
            let claimed = match (self.trailer(object), right) {
                (Some(trailer), _) => trailer
                    .compare_exchange(allocated, free, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok(),
                (None, Some(right)) => right
                    .compare_exchange(
                        RED_ACTIVE,
                        RED_INACTIVE,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok(),
                (None, None) => true,
            };
            if !claimed {
                self.report(object, "double free");
            }
            if let (Some(_), Some(right)) = (self.layout.trailer, right) {
                right.store(RED_INACTIVE, Ordering::Relaxed);
            }
            if let Some(check) = self.check {
                let enabled =
                    cfg!(debug_assertions) || self.flags().contains(CacheFlags::CONSTRUCTED_CHECK);
                if enabled && !check(object) {
                    self.report(object, "freed in a state its constructor does not leave");
                }
            }
            if self.flags().contains(CacheFlags::POISON) {
                self.poison(object);
            }
        }
    }

    /// Panics if the left red zone or the padding before the right red-zone word changed.
    ///
    /// # Safety
    ///
    /// The cache has red zones and `object`'s slot is initialised.
    unsafe fn check_red_zones(&self, object: *mut u8, what: &str) {
        let Some(zones) = self.layout.red_zones else {
            return;
        };
        let slot = self.slot(object);
        // SAFETY: these bytes belong to the slot and are written only at slab creation.
        unsafe {
            if slot.add(zones.left).cast::<usize>().read() != RED_LEFT {
                self.report_zone(object, "before", what);
            }
            if (zones.pad..zones.right).any(|offset| slot.add(offset).read() != RED_PAD) {
                self.report_zone(object, "after", what);
            }
        }
    }

    /// The bytes of the object that poisoning covers: all but a free link inside it.
    fn poisoned_bytes(&self) -> impl Iterator<Item = usize> {
        let link = self.layout.link_in_object();
        (0..self.layout.size)
            .filter(move |&i| link.is_none_or(|(start, end)| i < start || i >= end))
    }

    /// # Safety
    ///
    /// `object` is free and owned by the caller.
    unsafe fn poison(&self, object: *mut u8) {
        // SAFETY: the object's bytes are ours.
        self.poisoned_bytes()
            .for_each(|i| unsafe { object.add(i).write(POISON) });
    }

    /// # Safety
    ///
    /// `object` is owned by the caller.
    unsafe fn poison_intact(&self, object: *mut u8) -> bool {
        // SAFETY: the object's bytes are ours.
        self.poisoned_bytes()
            .all(|i| unsafe { object.add(i).read() } == POISON)
    }

    fn report_zone(&self, object: *mut u8, side: &str, what: &str) -> ! {
        panic!(
            "slab {}: red zone {side} {what} {object:p} overwritten",
            self.name()
        )
    }

    fn report(&self, object: *mut u8, what: &str) -> ! {
        panic!("slab {}: {object:p}: {what}", self.name())
    }
}
