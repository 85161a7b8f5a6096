//! Unit tests of the public API on the host: the constructor contract, reuse order, page
//! accounting, the RCU-deferred page free, and every misuse the cache detects.
#![cfg(not(loom))] // std-thread and `const` caches; the loom models are in loom.rs

mod common;

use common::{
    Fixture, OBJ_MAGIC, Obj, Static, TestPlatform, ctor_record, ctor_runs, interrupts_off_calls,
    interrupts_on, obj_check, obj_ctor, set_cpu, set_interrupts,
};
use slab::{
    CacheFlags, DeferredFree, EMPTY_RESERVE, KmemCache, PAGE_SIZE, Platform, SlabInfo, SlabObject,
    TypedCache,
};
use std::cell::Cell;
use std::ptr::NonNull;

fn plain() -> Fixture {
    Fixture::new(CacheFlags::NONE, None, TestPlatform::new(false, None))
}

fn obj<'a>(p: NonNull<u8>) -> &'a mut Obj {
    // SAFETY: the tests only pass objects of an `Obj` cache that they own.
    unsafe { &mut *p.as_ptr().cast::<Obj>() }
}

/// Frees `p` after putting it back in constructed state.
fn release(cache: &KmemCache<TestPlatform>, p: NonNull<u8>) {
    obj(p).payload = [0; 2];
    // SAFETY: `p` is a live object of `cache`, now in constructed state.
    unsafe { cache.free(p) };
}

#[test]
fn constructor_runs_once_per_slot_when_the_slab_is_created() {
    let f = plain();
    let cache = f.cache();
    let per_slab = cache.info().objects_per_slab;
    assert_eq!(ctor_runs(), 0, "creating a cache constructs nothing");
    let a = cache.alloc().unwrap();
    assert_eq!(
        ctor_runs(),
        per_slab,
        "the whole slab is constructed at once"
    );
    let serial = obj(a).serial;
    assert_eq!(obj(a).magic, OBJ_MAGIC);
    assert_eq!(ctor_record(a.addr().get()), Some((1, serial)));

    obj(a).payload = [7, 8];
    release(cache, a);
    let again: Vec<_> = (0..per_slab).map(|_| cache.alloc().unwrap()).collect();
    assert_eq!(ctor_runs(), per_slab, "reuse runs no constructor");
    assert!(again.contains(&a));
    for &p in &again {
        assert_eq!(ctor_record(p.addr().get()).unwrap().0, 1);
        assert_eq!(obj(p).serial, ctor_record(p.addr().get()).unwrap().1);
        assert!(obj_check_ok(p), "handed out in constructed state");
    }
    again.into_iter().for_each(|p| release(cache, p));
}

fn obj_check_ok(p: NonNull<u8>) -> bool {
    // SAFETY: `p` is an `Obj`.
    unsafe { obj_check(p.as_ptr()) }
}

#[test]
fn magazines_hand_back_the_last_freed_object_on_the_same_cpu() {
    let f = plain();
    let cache = f.cache();
    set_cpu(0);
    let a = cache.alloc().unwrap();
    let b = cache.alloc().unwrap();
    release(cache, a);
    release(cache, b);
    assert_eq!(cache.alloc(), Some(b));
    assert_eq!(cache.alloc(), Some(a));
    release(cache, a);
    set_cpu(1);
    let c = cache.alloc().unwrap();
    assert_ne!(c, a, "a sits in CPU 0's magazine");
    release(cache, c);
    release(cache, b);
}

#[test]
fn lifo_reuse_hands_the_freed_object_to_any_cpu() {
    let f = Fixture::new(CacheFlags::LIFO_REUSE, None, TestPlatform::new(false, None));
    let cache = f.cache();
    set_cpu(0);
    let objects: Vec<_> = (0..5).map(|_| cache.alloc().unwrap()).collect();
    for (i, &p) in objects.iter().enumerate() {
        set_cpu(i % 3);
        release(cache, p);
        set_cpu((i + 1) % 3);
        assert_eq!(
            cache.alloc(),
            Some(p),
            "the object freed last comes back at once"
        );
    }
    objects.into_iter().for_each(|p| release(cache, p));
}

#[test]
fn drain_and_shrink_return_every_page() {
    let f = plain();
    let (cache, platform) = (f.cache(), f.platform());
    let objects: Vec<_> = (0..100)
        .map(|i| {
            set_cpu(i % 4);
            cache.alloc().unwrap()
        })
        .collect();
    let info = cache.info();
    assert_eq!(info.active_objects, 100);
    assert_eq!(info.pages, platform.pages.outstanding_pages());
    assert_eq!(info.total_objects, info.slabs * info.objects_per_slab);
    assert_eq!(ctor_runs(), info.total_objects);
    for (i, p) in objects.into_iter().enumerate() {
        set_cpu(i % 3);
        release(cache, p);
    }
    assert_eq!(cache.info().active_objects, 0);
    assert!(
        platform.pages.outstanding_pages() > 0,
        "magazines still hold objects"
    );
    cache.drain_cpu_caches();
    let info = cache.info();
    assert!(
        info.slabs <= EMPTY_RESERVE,
        "empty slabs beyond the reserve went back: {info:?}"
    );
    assert_eq!(info.pages, platform.pages.outstanding_pages());
    cache.shrink();
    let info = cache.info();
    assert_eq!(platform.pages.outstanding_pages(), 0);
    assert_eq!((info.slabs, info.pages, info.pending_frees), (0, 0, 0));
    assert_eq!(info.slabs_freed, info.slabs_created);
    assert_eq!((info.allocs, info.frees), (100, 100));
}

#[test]
fn typesafe_slabs_go_back_only_after_a_grace_period() {
    let flags = CacheFlags::TYPESAFE_BY_RCU;
    let f = Fixture::new(flags, None, TestPlatform::new(false, None));
    let (cache, platform) = (f.cache(), f.platform());
    let objects: Vec<_> = (0..300).map(|_| cache.alloc().unwrap()).collect();
    let stale = objects[0];
    // SAFETY: `stale` is live.
    let generation = unsafe { cache.slab_generation(stale.as_ptr()) };
    assert_eq!(generation % 2, 0, "a live slab has an even generation");
    let pages = platform.pages.outstanding_pages();
    objects.into_iter().for_each(|p| release(cache, p));
    cache.drain_cpu_caches();
    cache.shrink();

    // A stale reader still finds a constructed object and the same slab.
    assert_eq!(obj(stale).magic, OBJ_MAGIC);
    // SAFETY: the grace period has not ended, so the slab is still mapped.
    assert_eq!(unsafe { cache.slab_generation(stale.as_ptr()) }, generation);
    assert_eq!(
        platform.pages.outstanding_pages(),
        pages,
        "no page goes back inside the grace period"
    );
    assert_eq!(platform.pages.released_pages(), 0);
    let info = cache.info();
    assert_eq!(info.slabs, 0);
    assert_eq!(info.pending_frees, platform.pending_callbacks());
    assert_eq!(info.pages, pages);

    platform.complete_grace_period();
    assert_eq!(platform.pages.outstanding_pages(), 0);
    let info = cache.info();
    assert_eq!((info.pages, info.pending_frees), (0, 0));
    assert_eq!(info.slabs_freed, info.slabs_created);
    // The platform keeps freed pages readable, overwritten: the generation changed.
    // SAFETY: `Pages` never returns freed blocks to the host allocator before it is dropped.
    assert_ne!(unsafe { cache.slab_generation(stale.as_ptr()) }, generation);
}

#[test]
fn empty_slabs_beyond_the_reserve_go_back_without_shrink() {
    let f = Fixture::new(CacheFlags::LIFO_REUSE, None, TestPlatform::new(false, None));
    let (cache, platform) = (f.cache(), f.platform());
    let per_slab = cache.info().objects_per_slab;
    let objects: Vec<_> = (0..per_slab * (EMPTY_RESERVE + 3))
        .map(|_| cache.alloc().unwrap())
        .collect();
    objects.into_iter().for_each(|p| release(cache, p));
    let info = cache.info();
    assert_eq!(info.slabs, EMPTY_RESERVE);
    assert_eq!(info.slabs_freed, 3);
    assert_eq!(
        platform.pages.outstanding_pages(),
        EMPTY_RESERVE * info.pages_per_slab
    );
}

#[test]
fn alloc_fails_cleanly_when_the_platform_has_no_pages() {
    let f = Fixture::new(CacheFlags::NONE, None, TestPlatform::new(false, Some(1)));
    let cache = f.cache();
    let per_slab = cache.info().objects_per_slab;
    let objects: Vec<_> = (0..per_slab).map(|_| cache.alloc().unwrap()).collect();
    assert_eq!(cache.alloc(), None);
    assert_eq!(cache.info().active_objects, per_slab);
    release(cache, objects[3]);
    assert_eq!(cache.alloc(), Some(objects[3]));
    objects.into_iter().for_each(|p| release(cache, p));
}

#[test]
fn link_inside_the_object_leaves_constructed_fields_alone() {
    let f = Fixture::new(
        CacheFlags::NONE,
        Some(Obj::SPARE_OFFSET),
        TestPlatform::new(false, None),
    );
    let cache = f.cache();
    let info = cache.info();
    assert_eq!(info.slot_size, size_of::<Obj>(), "no trailer");
    let objects: Vec<_> = (0..info.objects_per_slab)
        .map(|_| cache.alloc().unwrap())
        .collect();
    // Free all but one, so that the slab stays, and put the others on its free list.
    objects[1..].iter().for_each(|&p| release(cache, p));
    cache.drain_cpu_caches();
    for &p in &objects[1..] {
        assert_eq!(
            obj(p).magic,
            OBJ_MAGIC,
            "free objects keep their constructed fields"
        );
        assert!(obj_check_ok(p));
    }
    let again: Vec<_> = objects[1..]
        .iter()
        .map(|_| cache.alloc().unwrap())
        .collect();
    assert!(
        again
            .iter()
            .all(|&p| obj_check_ok(p) && obj(p).magic == OBJ_MAGIC)
    );
    assert_eq!(cache.info().slabs, 1);
    again
        .into_iter()
        .chain([objects[0]])
        .for_each(|p| release(cache, p));
}

/// A re-entrant call on the same CPU (as from an interrupt handler) finds the magazine busy and
/// takes the shared path. The constructor plays the interrupt: it runs during a refill, with
/// the magazine taken.
#[test]
fn reentrant_calls_on_the_same_cpu_take_the_shared_path() {
    thread_local! {
        static CACHE: Cell<Option<&'static KmemCache<TestPlatform>>> = const { Cell::new(None) };
        static NESTED: Cell<Option<NonNull<u8>>> = const { Cell::new(None) };
    }
    /// # Safety
    ///
    /// As for `obj_ctor`.
    unsafe fn reentering_ctor(p: *mut u8) {
        // SAFETY: forwarded.
        unsafe { obj_ctor(p) };
        if let Some(cache) = CACHE.take() {
            let nested = cache.alloc().expect("nested alloc");
            NESTED.set(Some(nested));
        }
    }
    // SAFETY: dropped at the end of the test, after the last use.
    let platform = unsafe { Static::new(TestPlatform::new(false, None)) };
    let cache = KmemCache::new(
        "reenter",
        size_of::<Obj>(),
        align_of::<Obj>(),
        CacheFlags::NONE,
        Some(reentering_ctor),
        Some(obj_check),
        platform.get(),
    );
    // SAFETY: as above.
    let cache = unsafe { Static::new(cache) };
    let cache = cache.get();
    CACHE.set(Some(cache));
    let outer = cache.alloc().unwrap();
    let nested = NESTED.take().unwrap();
    assert_ne!(outer, nested);
    let info = cache.info();
    assert_eq!(
        (info.allocs, info.slabs),
        (2, 2),
        "the nested call made its own slab"
    );
    release(cache, nested);
    release(cache, outer);
    cache.drain_cpu_caches();
    cache.shrink();
    assert_eq!(platform.get().pages.outstanding_pages(), 0);
}

/// `is_locked` sees the shared lock while another thread holds it (`info` takes it each call)
/// and not once that thread is done: what a test runner relies on to name a lock a failed test
/// left held.
#[test]
fn is_locked_sees_the_shared_lock_only_while_it_is_held() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let f = plain();
    let cache = f.cache();
    assert!(!cache.is_locked(), "a fresh cache reads as locked");
    let stop = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        s.spawn(|| {
            set_cpu(1);
            while !stop.load(Ordering::Relaxed) {
                let _ = cache.info();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        while !seen && Instant::now() < deadline {
            seen = cache.is_locked();
        }
        stop.store(true, Ordering::Relaxed);
        seen
    });
    assert!(seen, "the lock was never seen held in 20 s of `info` calls");
    assert!(
        !cache.is_locked(),
        "the lock reads as held after its last holder finished"
    );
}

#[test]
fn info_prints_like_slabinfo() {
    let f = plain();
    let cache = f.cache();
    let p = cache.alloc().unwrap();
    let info: SlabInfo = cache.info();
    let line = info.to_string();
    assert!(line.starts_with("test_obj "), "{line}");
    assert!(
        line.contains(&format!(
            " 1 {:>8} {:>6}",
            info.total_objects,
            size_of::<Obj>()
        )),
        "{line}"
    );
    assert!(line.contains(" : slabdata "), "{line}");
    assert!(SlabInfo::HEADER.starts_with("# name"));
    release(cache, p);
}

// ---- misuse ------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "double free")]
fn double_free_from_a_magazine_panics() {
    let f = plain();
    let p = f.cache().alloc().unwrap();
    release(f.cache(), p);
    release(f.cache(), p);
}

#[test]
#[should_panic(expected = "double free")]
fn double_free_from_a_slab_free_list_panics() {
    let f = plain();
    let p = f.cache().alloc().unwrap();
    let keep = f.cache().alloc().unwrap();
    release(f.cache(), p);
    f.cache().drain_cpu_caches();
    release(f.cache(), p);
    release(f.cache(), keep);
}

#[test]
#[should_panic(expected = "double free")]
fn double_free_with_the_link_inside_is_caught_by_the_red_zone() {
    let f = Fixture::new(
        CacheFlags::RED_ZONE,
        Some(Obj::SPARE_OFFSET),
        TestPlatform::new(false, None),
    );
    let p = f.cache().alloc().unwrap();
    release(f.cache(), p);
    release(f.cache(), p);
}

#[test]
#[should_panic(expected = "foreign pointer")]
fn free_of_another_caches_object_panics() {
    let f = plain();
    let g = plain();
    let p = g.cache().alloc().unwrap();
    release(f.cache(), p);
}

#[test]
#[should_panic(expected = "not the start of an object")]
fn free_of_an_interior_pointer_panics() {
    let f = plain();
    let p = f.cache().alloc().unwrap();
    // SAFETY: 8 bytes into a 40-byte object.
    release(f.cache(), unsafe { p.add(8) });
}

#[test]
#[should_panic(expected = "foreign pointer")]
fn free_of_unrelated_memory_panics() {
    let f = plain();
    // Memory aligned like a slab, so the header the cache reads is inside it.
    let platform = TestPlatform::new(false, None);
    let block = platform.pages.alloc(4).unwrap();
    // SAFETY: the block is ours; zero it so it holds no magic.
    unsafe { block.as_ptr().write_bytes(0, PAGE_SIZE << 4) };
    // SAFETY: inside the block.
    let p = unsafe { block.add(256) };
    // SAFETY: deliberately wrong: `p` is not an object of the cache, and `free` must say so.
    unsafe { f.cache().free(p) };
}

#[test]
#[should_panic(expected = "red zone after freed object")]
fn overflow_into_the_right_red_zone_panics() {
    let f = Fixture::new(CacheFlags::RED_ZONE, None, TestPlatform::new(false, None));
    let p = f.cache().alloc().unwrap();
    // SAFETY: one byte past the object lands in its red-zone padding or word (test of misuse).
    unsafe { p.as_ptr().add(size_of::<Obj>()).write(0) };
    release(f.cache(), p);
}

#[test]
#[should_panic(expected = "red zone before freed object")]
fn underflow_into_the_left_red_zone_panics() {
    let f = Fixture::new(CacheFlags::RED_ZONE, None, TestPlatform::new(false, None));
    let p = f.cache().alloc().unwrap();
    // SAFETY: the byte before the object is its left red zone (test of misuse).
    unsafe { p.as_ptr().sub(1).write(0) };
    release(f.cache(), p);
}

#[test]
#[should_panic(expected = "freed in a state its constructor does not leave")]
fn freeing_a_dirty_object_breaks_the_ctor_contract() {
    let f = Fixture::new(
        CacheFlags::CONSTRUCTED_CHECK,
        None,
        TestPlatform::new(false, None),
    );
    let p = f.cache().alloc().unwrap();
    obj(p).payload = [1, 2];
    // SAFETY: deliberately not in constructed state; `free` must say so.
    unsafe { f.cache().free(p) };
}

/// A poisoned cache has no constructor: objects are raw memory.
/// Returns `(platform, cache)`: bound in that order, the cache is dropped first.
fn poisoned() -> (Static<TestPlatform>, Static<KmemCache<TestPlatform>>) {
    // SAFETY: the tests drop the cache before the platform, and use neither afterwards.
    let platform = unsafe { Static::new(TestPlatform::new(false, None)) };
    let cache = KmemCache::new(
        "poisoned",
        48,
        16,
        CacheFlags::POISON,
        None,
        None,
        platform.get(),
    );
    // SAFETY: as above.
    (platform, unsafe { Static::new(cache) })
}

#[test]
fn poisoned_objects_are_reused_intact() {
    let (_platform, cache) = poisoned();
    let cache = cache.get();
    let p = cache.alloc().unwrap();
    // SAFETY: the object is ours and 48 bytes long.
    unsafe { p.as_ptr().write_bytes(0x11, 48) };
    // SAFETY: a live object; no constructed state to restore.
    unsafe { cache.free(p) };
    assert_eq!(cache.alloc(), Some(p));
    // SAFETY: as above.
    unsafe { cache.free(p) };
}

#[test]
#[should_panic(expected = "use after free")]
fn write_after_free_is_caught_by_poison() {
    let (_platform, cache) = poisoned();
    let cache = cache.get();
    let p = cache.alloc().unwrap();
    // SAFETY: a live object.
    unsafe { cache.free(p) };
    // SAFETY: deliberately writes a free object (still mapped); the next alloc must notice.
    unsafe { p.as_ptr().add(5).write(0) };
    cache.alloc();
}

#[test]
#[should_panic(expected = "POISON would overwrite")]
fn poison_is_refused_for_typesafe_caches() {
    let flags = CacheFlags::POISON | CacheFlags::TYPESAFE_BY_RCU;
    KmemCache::new("bad", 16, 8, flags, None, None, &NO_PAGES);
}

#[test]
#[should_panic(expected = "POISON would destroy")]
fn poison_is_refused_for_constructed_caches() {
    KmemCache::new(
        "bad",
        16,
        8,
        CacheFlags::POISON,
        Some(obj_ctor),
        None,
        &NO_PAGES,
    );
}

// ---- const construction and the typed wrapper --------------------------------------------

/// A platform with no memory, usable in a `static`.
struct NoPages;

impl Platform for NoPages {
    fn cpu_id(&self) -> usize {
        0
    }
    fn alloc_pages(&self, _order: u32) -> Option<NonNull<u8>> {
        None
    }
    unsafe fn free_pages(&self, _pages: NonNull<u8>, _order: u32) {
        unreachable!("no pages were handed out")
    }
    unsafe fn defer_after_grace_period(
        &self,
        _node: *mut DeferredFree,
        _callback: unsafe fn(*mut DeferredFree),
    ) {
        unreachable!("no pages were handed out")
    }
}

static NO_PAGES: NoPages = NoPages;

/// A VMA-like object: the lock word is set up by the constructor and never re-initialised.
#[repr(C)]
struct Vma {
    start: u64,
    end: u64,
    lock: u32,
}

const VMA_UNLOCKED: u32 = 0x10c0;

impl SlabObject for Vma {
    unsafe fn construct(slot: *mut Self) {
        // SAFETY: per the trait's contract.
        unsafe {
            slot.write(Vma {
                start: 0,
                end: 0,
                lock: VMA_UNLOCKED,
            })
        };
    }
    fn is_constructed(&self) -> bool {
        self.lock == VMA_UNLOCKED
    }
}

static STATIC_VMAS: TypedCache<Vma, NoPages> =
    TypedCache::new("vma", CacheFlags::TYPESAFE_BY_RCU, &NO_PAGES).with_free_link_offset(0);
static STATIC_RAW: KmemCache<NoPages> = KmemCache::new(
    "raw",
    24,
    8,
    CacheFlags::RED_ZONE.union(CacheFlags::LIFO_REUSE),
    None,
    None,
    &NO_PAGES,
);

#[test]
fn caches_can_be_statics() {
    assert_eq!(STATIC_VMAS.alloc(), None);
    assert_eq!(STATIC_RAW.alloc(), None);
    let info = STATIC_VMAS.raw().info();
    assert_eq!(
        (info.name, info.object_size, info.slot_size),
        ("vma", 24, 24)
    );
    assert_eq!(STATIC_RAW.name(), "raw");
}

#[test]
fn typed_cache_hands_out_constructed_objects() {
    // SAFETY: dropped last, after every use.
    let platform = unsafe { Static::new(TestPlatform::new(false, None)) };
    // SAFETY: dropped before the platform.
    let vmas = unsafe {
        Static::new(TypedCache::<Vma, _>::new(
            "vma",
            CacheFlags::CONSTRUCTED_CHECK,
            platform.get(),
        ))
    };
    let vmas = vmas.get();
    let v = vmas.alloc().unwrap();
    // SAFETY: a live, constructed object.
    unsafe {
        assert_eq!(v.as_ref().lock, VMA_UNLOCKED);
        (*v.as_ptr()).start = 0x1000;
        vmas.free(v);
    }
    assert_eq!(vmas.raw().info().active_objects, 0);
}

#[test]
fn typed_cache_without_ctor_initialises_on_alloc() {
    // SAFETY: dropped last, after every use.
    let platform = unsafe { Static::new(TestPlatform::new(false, None)) };
    // SAFETY: dropped before the platform.
    let cache = unsafe {
        Static::new(TypedCache::<(u64, u32), _>::without_ctor(
            "pairs",
            CacheFlags::NONE,
            platform.get(),
        ))
    };
    let cache = cache.get();
    let p = cache.alloc_init((5, 6)).unwrap();
    // SAFETY: initialised by `alloc_init`.
    assert_eq!(unsafe { *p.as_ptr() }, (5, 6));
    // SAFETY: a live object; `(u64, u32)` needs no drop.
    unsafe { cache.free(p) };
}

#[test]
#[should_panic(expected = "alloc_init on a constructed cache")]
fn alloc_init_is_refused_on_constructed_caches() {
    let _ = STATIC_VMAS.alloc_init(Vma {
        start: 0,
        end: 0,
        lock: 0,
    });
}

#[test]
fn the_shared_lock_is_taken_with_interrupts_off_and_a_magazine_hit_leaves_them_alone() {
    let f = plain();
    let cache = f.cache();
    set_cpu(0);
    let calls = interrupts_off_calls();
    let a = cache.alloc().unwrap();
    assert!(
        interrupts_off_calls() > calls,
        "an empty magazine is refilled under the shared lock, with interrupts off"
    );
    assert!(interrupts_on(), "interrupts are back on after the refill");
    release(cache, a);
    let calls = interrupts_off_calls();
    let b = cache.alloc().unwrap();
    release(cache, b);
    assert_eq!(
        interrupts_off_calls(),
        calls,
        "a magazine hit and a free into a magazine with room took the shared lock"
    );

    // Inside an "interrupt handler" (interrupts already off) they stay off afterwards.
    set_interrupts(false);
    let all: Vec<_> = (0..3 * cache.info().objects_per_slab)
        .map(|_| cache.alloc().unwrap())
        .collect();
    assert!(
        !interrupts_on(),
        "the shared path turned interrupts on in a handler"
    );
    set_interrupts(true);
    all.into_iter().for_each(|p| release(cache, p));
    assert!(interrupts_on());
}
