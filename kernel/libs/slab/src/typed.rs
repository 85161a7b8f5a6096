//! [`TypedCache`]: a [`KmemCache`] for values of one type, handing out `NonNull<T>`, with the
//! constructor and the constructed-state check taken from [`SlabObject`].

use crate::sync::const_unless_loom;
use crate::{CacheFlags, KmemCache, Platform};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;

/// A type whose objects are built once per slab slot, by [`SlabObject::construct`], and always
/// freed back in that constructed state.
pub trait SlabObject: Sized {
    /// Writes the constructed state into `slot`.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writes of `Self` and aligned; its contents are uninitialised.
    unsafe fn construct(slot: *mut Self);

    /// Whether the object is in the state `construct` leaves; checked on free in debug builds
    /// and with [`CacheFlags::CONSTRUCTED_CHECK`].
    fn is_constructed(&self) -> bool {
        true
    }
}

/// # Safety
///
/// As for [`SlabObject::construct`], with `slot` pointing to a `T`.
unsafe fn construct_erased<T: SlabObject>(slot: *mut u8) {
    // SAFETY: forwarded contract.
    unsafe { T::construct(slot.cast()) }
}

/// # Safety
///
/// `object` points to a constructed `T`.
unsafe fn check_erased<T: SlabObject>(object: *const u8) -> bool {
    // SAFETY: forwarded contract.
    unsafe { (*object.cast::<T>()).is_constructed() }
}

/// A cache of `T`s.
pub struct TypedCache<T, P: Platform + 'static> {
    raw: KmemCache<P>,
    _type: PhantomData<fn() -> T>,
}

impl<T: SlabObject, P: Platform + 'static> TypedCache<T, P> {
    const_unless_loom! {
        /// A cache whose objects are built by `T::construct` and checked by `T::is_constructed`.
        pub fn new(name: &'static str, flags: CacheFlags, platform: &'static P) -> Self {
            Self {
                raw: KmemCache::new(
                    name,
                    size_of::<T>(),
                    align_of::<T>(),
                    flags,
                    Some(construct_erased::<T>),
                    Some(check_erased::<T>),
                    platform,
                ),
                _type: PhantomData,
            }
        }
    }
}

impl<T, P: Platform + 'static> TypedCache<T, P> {
    const_unless_loom! {
        /// A cache without constructor: objects are handed out uninitialised (use
        /// [`TypedCache::alloc_init`]).
        pub fn without_ctor(name: &'static str, flags: CacheFlags, platform: &'static P) -> Self {
            let size = if size_of::<T>() == 0 { 1 } else { size_of::<T>() };
            Self {
                raw: KmemCache::new(name, size, align_of::<T>(), flags, None, None, platform),
                _type: PhantomData,
            }
        }
    }

    const_unless_loom! {
        /// See [`KmemCache::with_free_link_offset`]; `offset` is a byte offset into `T`.
        pub fn with_free_link_offset(self, offset: usize) -> Self {
            Self { raw: self.raw.with_free_link_offset(offset), _type: PhantomData }
        }
    }

    /// A constructed object (or, for a cache without constructor, uninitialised memory for one).
    pub fn alloc(&'static self) -> Option<NonNull<T>> {
        self.raw.alloc().map(NonNull::cast)
    }

    /// An object holding `value`, or `value` back when the platform has no pages.
    ///
    /// Panics on a cache with a constructor: overwriting the constructed state is exactly what
    /// such a cache exists to avoid.
    pub fn alloc_init(&'static self, value: T) -> Result<NonNull<T>, T> {
        assert!(
            self.raw.ctor.is_none(),
            "slab {}: alloc_init on a constructed cache",
            self.raw.name()
        );
        match self.alloc() {
            Some(object) => {
                // SAFETY: a fresh object of this cache is valid and aligned for a `T`.
                unsafe { object.write(value) };
                Ok(object)
            }
            None => Err(value),
        }
    }

    /// Gives an object back without dropping it (see [`KmemCache::free`]).
    ///
    /// # Safety
    ///
    /// As for [`KmemCache::free`]: `object` came from this cache, is not freed yet, and is
    /// back in constructed state; a value written by `alloc_init` must have been dropped or
    /// need no drop.
    pub unsafe fn free(&self, object: NonNull<T>) {
        // SAFETY: forwarded contract.
        unsafe { self.raw.free(object.cast()) }
    }

    /// The untyped cache, for `info`, `drain_cpu_caches`, `shrink` and `slab_generation`.
    pub fn raw(&self) -> &KmemCache<P> {
        &self.raw
    }
}
