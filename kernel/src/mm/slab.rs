//! The kernel's side of the slab allocator (kernel/libs/slab): pages come from the frame
//! allocator through the direct map, typesafe slabs go back only after an RCU grace period
//! (`call_rcu`, with the RCU head kept in the slab header's platform words), and a registry of
//! caches serves the slabinfo dump (debug key `s`, the `stats` option).
//!
//! The slab takes its shared lock with interrupts off (this platform's `interrupts_off`), so a
//! cache is safe to use from any context; returning typesafe slabs goes through `call_rcu`,
//! which wants process context.

use core::ptr::NonNull;

use rcu::RcuHead;
use slab::{CacheFlags, DeferredFree, KmemCache, Platform, SlabInfo};

use super::{PhysAddr, frame};
use crate::arch::percpu;
use crate::sync::IrqSpinLock;
use crate::sync::rcu::call_rcu;

/// Debug checks every kernel cache adds to its own flags: red zones around each object in debug
/// (and test) builds, checked on free; nothing in release builds. (Double-free and
/// foreign-pointer detection are always on; poisoning suits only caches without a constructor
/// that are not typesafe, which name it themselves.)
pub const DEBUG_FLAGS: CacheFlags = if cfg!(debug_assertions) {
    CacheFlags::RED_ZONE
} else {
    CacheFlags::NONE
};

/// The platform every kernel cache uses.
pub struct KernelPages;

pub static KERNEL_PAGES: KernelPages = KernelPages;

/// Where the RCU head and the slab's callback sit among a `DeferredFree`'s four words.
const HEAD_WORDS: usize = 3;
const CALLBACK_WORD: usize = 3;
const _: () = assert!(size_of::<RcuHead>() <= HEAD_WORDS * size_of::<usize>());
const _: () = assert!(align_of::<RcuHead>() <= align_of::<usize>());

impl Platform for KernelPages {
    fn cpu_id(&self) -> usize {
        percpu::cpu_index()
    }

    fn alloc_pages(&self, order: u32) -> Option<NonNull<u8>> {
        let pages = frame::allocate(order as usize)?;
        // The slab owns the block until `free_pages` gives it back.
        NonNull::new(pages.into_raw().to_virt() as *mut u8)
    }

    unsafe fn free_pages(&self, pages: NonNull<u8>, order: u32) {
        // SAFETY: the slab gives back a block `alloc_pages` handed it (the trait's contract),
        // and uses it no more.
        unsafe {
            frame::free(
                PhysAddr::of_direct_map(pages.as_ptr() as u64),
                order as usize,
            )
        };
    }

    unsafe fn defer_after_grace_period(
        &self,
        node: *mut DeferredFree,
        callback: unsafe fn(*mut DeferredFree),
    ) {
        // SAFETY: the slab hands `node` over until the callback runs; its words are ours.
        let words = unsafe { (*node).platform_words() };
        words[CALLBACK_WORD] = callback as usize;
        let head = words.as_mut_ptr().cast::<RcuHead>();
        // SAFETY: the words stay untouched by anyone else until `run_deferred` (see above); the
        // slab unlinked the slab before handing it over.
        unsafe { call_rcu(head, run_deferred) };
    }

    fn interrupts_off(&self) -> bool {
        crate::arch::disable_interrupts_saving()
    }

    fn interrupts_restore(&self, were_on: bool) {
        crate::arch::restore_interrupts(were_on);
    }
}

/// The RCU callback: finds the `DeferredFree` around the head and runs the slab's callback.
unsafe fn run_deferred(head: *mut RcuHead) {
    // SAFETY: `head` is the start of a `DeferredFree`'s words (see `defer_after_grace_period`);
    // the node's link comes first, one word before them (it is `repr(C)`).
    unsafe {
        let words = head.cast::<usize>();
        let node = words
            .cast::<u8>()
            .sub(size_of::<*mut DeferredFree>())
            .cast::<DeferredFree>();
        debug_assert_eq!((*node).platform_words().as_mut_ptr(), words);
        let callback: unsafe fn(*mut DeferredFree) =
            core::mem::transmute(*words.add(CALLBACK_WORD));
        callback(node);
    }
}

/// Every registered cache, for slabinfo.
static CACHES: IrqSpinLock<[Option<&'static KmemCache<KernelPages>>; 32]> =
    IrqSpinLock::new([None; 32]);

/// Lists `cache` in slabinfo. Caches live for good (statics).
pub fn register(cache: &'static KmemCache<KernelPages>) {
    let mut caches = CACHES.lock();
    if caches.iter().flatten().any(|c| core::ptr::eq(*c, cache)) {
        return;
    }
    match caches.iter_mut().find(|slot| slot.is_none()) {
        Some(slot) => *slot = Some(cache),
        None => log::warn!(
            "slab: registry full; {} is not listed in slabinfo",
            cache.name()
        ),
    }
}

/// Every registered cache (for accounting: `/proc/meminfo`, tests).
pub fn caches() -> alloc::vec::Vec<&'static KmemCache<KernelPages>> {
    CACHES.lock().iter().flatten().copied().collect()
}

/// The name of a registered cache whose shared lock is held now, or of the registry if its own
/// lock is: what the test runner looks for after a test. Allocates nothing (a held size-class
/// lock would stop an allocation).
#[cfg(feature = "ktest")]
pub fn locked_cache() -> Option<&'static str> {
    if CACHES.is_locked() {
        return Some("slab registry");
    }
    CACHES
        .lock()
        .iter()
        .flatten()
        .find(|cache| cache.is_locked())
        .map(|cache| cache.name())
}

/// One line per cache, like /proc/slabinfo, after a summary line.
pub fn log_statistics() {
    let caches = *CACHES.lock();
    let infos = caches.iter().flatten().map(|c| c.info());
    let (count, objects, pages) = infos.clone().fold((0, 0, 0), |(n, o, p), i: SlabInfo| {
        (n + 1, o + i.active_objects, p + i.pages)
    });
    log::info!("slab: {count} caches, {objects} objects active, {pages} pages");
    if count > 0 {
        log::info!("slabinfo: {}", SlabInfo::HEADER.trim_start_matches("# "));
        for info in infos {
            log::info!("slabinfo: {info}");
        }
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    use slab::{CacheFlags, SlabObject, TypedCache};

    use super::{DEBUG_FLAGS, KERNEL_PAGES, KernelPages, register};
    use crate::arch::percpu::{self, CpuSet};
    use crate::arch::smp::run_in_idle;
    use crate::ktest;
    use crate::mm::frame;
    use crate::sync::rcu::{quiescent_state, rcu_barrier, read_lock};

    const MAGIC: u64 = 0x5ab_0b1ec7;
    const UNLOCKED: u64 = 0x10c_4ed;

    /// A stand-in for a VMA: a lock word the constructor sets up once, which stale readers may
    /// load at any time, and an owner written by whoever allocated it.
    struct TortureObject {
        magic: AtomicU64,
        lock: AtomicU64,
        owner: AtomicU64,
    }

    impl SlabObject for TortureObject {
        unsafe fn construct(slot: *mut Self) {
            // SAFETY: the slab hands us an aligned, writable slot.
            unsafe {
                slot.write(TortureObject {
                    magic: AtomicU64::new(MAGIC),
                    lock: AtomicU64::new(UNLOCKED),
                    owner: AtomicU64::new(0),
                })
            };
        }

        fn is_constructed(&self) -> bool {
            self.magic.load(Ordering::Relaxed) == MAGIC
                && self.lock.load(Ordering::Relaxed) == UNLOCKED
                && self.owner.load(Ordering::Relaxed) == 0
        }
    }

    static CACHE: TypedCache<TortureObject, KernelPages> = TypedCache::new(
        "ktest_typesafe",
        CacheFlags::TYPESAFE_BY_RCU
            .union(CacheFlags::LIFO_REUSE)
            .union(CacheFlags::CONSTRUCTED_CHECK)
            .union(DEBUG_FLAGS),
        &KERNEL_PAGES,
    );

    const SLOTS: usize = 64;

    ktest! {
        timeout_ms = 120_000;
        /// Slab torture: every CPU allocates, publishes, unpublishes and frees objects of a
        /// typesafe cache with a constructor, in immediate-LIFO-reuse mode, while reading
        /// published objects under RCU. A reader's object may be freed and reused under it,
        /// but its memory must always hold a constructed object of this type, and its slab
        /// page must not go back during the read section (the page's generation stays put).
        /// Afterwards every object and frame comes back.
        fn typesafe_objects_stay_objects_for_stale_readers() {
            register(CACHE.raw());
            // Frees that earlier tests left to RCU land first, so the count compared at the
            // end moves only with this test's pages.
            rcu_barrier();
            let frames_before = frame::stats().free_frames;
            let slots: [AtomicPtr<TortureObject>; SLOTS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; SLOTS];
            let violations = AtomicU64::new(0);
            let reused_under_reader = AtomicU64::new(0);
            let operations = AtomicUsize::new(0);
            let rounds = 3_000 * ktest::stress_factor();
            run_in_idle(CpuSet::all_online(), &|| {
                let me = percpu::cpu_index() as u64 + 1;
                let mut seed = me.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for round in 0..rounds {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let slot = &slots[(seed >> 33) as usize % SLOTS];
                    if round % 3 == 0 {
                        // Replace: allocate, publish, free what was there.
                        let Some(object) = CACHE.alloc() else {
                            violations.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        // SAFETY: freshly allocated and constructed; ours until published.
                        unsafe { object.as_ref() }.owner.store(me << 32 | round, Ordering::Relaxed);
                        let old = slot.swap(object.as_ptr(), Ordering::AcqRel);
                        if let Some(old) = core::ptr::NonNull::new(old) {
                            // SAFETY: unpublished just now by us; put back in constructed state
                            // before the free (the cache may hand it out again at once).
                            unsafe {
                                old.as_ref().owner.store(0, Ordering::Relaxed);
                                CACHE.free(old);
                            }
                        }
                    } else {
                        // Read under RCU, possibly a stale or reused object.
                        let guard = read_lock();
                        let ptr = slot.load(Ordering::Acquire);
                        if !ptr.is_null() {
                            // SAFETY: the cache is typesafe and we are inside a read section,
                            // so the slab memory is an object of this cache.
                            let generation = unsafe { CACHE.raw().slab_generation(ptr.cast()) };
                            // SAFETY: as above.
                            let object = unsafe { &*ptr };
                            let owner = object.owner.load(Ordering::Relaxed);
                            for _ in 0..8 {
                                if object.magic.load(Ordering::Relaxed) != MAGIC
                                    || object.lock.load(Ordering::Relaxed) != UNLOCKED
                                {
                                    violations.fetch_add(1, Ordering::Relaxed);
                                }
                                core::hint::spin_loop();
                            }
                            if object.owner.load(Ordering::Relaxed) != owner {
                                reused_under_reader.fetch_add(1, Ordering::Relaxed);
                            }
                            // SAFETY: still inside the same read section.
                            if unsafe { CACHE.raw().slab_generation(ptr.cast()) } != generation || generation % 2 == 1 {
                                violations.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        drop(guard);
                    }
                    operations.fetch_add(1, Ordering::Relaxed);
                    if round % 16 == 0 {
                        quiescent_state();
                    }
                }
            });
            for slot in &slots {
                if let Some(object) = core::ptr::NonNull::new(slot.swap(core::ptr::null_mut(), Ordering::AcqRel)) {
                    // SAFETY: unpublished; back to constructed state before the free.
                    unsafe {
                        object.as_ref().owner.store(0, Ordering::Relaxed);
                        CACHE.free(object);
                    }
                }
            }
            assert_eq!(violations.load(Ordering::Relaxed), 0, "a stale reader saw a non-object or a returned page");
            // Leak check: every object back, every page back after a grace period.
            rcu_barrier();
            run_in_idle(CpuSet::all_online(), &|| CACHE.raw().drain_cpu_caches());
            CACHE.raw().shrink();
            rcu_barrier();
            let info = CACHE.raw().info();
            assert_eq!(info.active_objects, 0, "objects leaked: {info}");
            assert_eq!((info.slabs, info.pages, info.pending_frees), (0, 0, 0), "slabs left: {info}");
            assert_eq!(frame::stats().free_frames, frames_before, "frames leaked");
            log::info!(
                "slab torture: {} operations, {} objects reused under a reader",
                operations.load(Ordering::Relaxed),
                reused_under_reader.load(Ordering::Relaxed)
            );
        }
    }

    ktest! {
        /// The test runner's check for a lock left held names a registered cache whose shared
        /// lock is held, and waits out a holder that lets go: here another CPU takes the lock
        /// over and over (`info` takes it each call) until this CPU has seen it held and has
        /// run the check (or for 5 s, if it is never seen).
        fn a_cache_lock_taken_over_and_over_elsewhere_is_seen_and_not_left_held() {
            let Some(other) = ktest::other_cpu() else {
                return ktest::skip("needs 2 or more CPUs");
            };
            register(CACHE.raw());
            let me = percpu::cpu_index();
            let checked = AtomicBool::new(false);
            let holding = AtomicBool::new(true);
            let seen = spin::Mutex::new(None);
            let left_held = spin::Mutex::new(None);
            run_in_idle(CpuSet::default().with(me).with(other), &|| {
                if percpu::cpu_index() == other {
                    // Until the checker is done, not for a fixed time: the host may run both
                    // emulated CPUs on one of its cores, in turns of milliseconds.
                    let give_up = crate::time::now_ns() + 5_000_000_000;
                    while !checked.load(Ordering::Acquire) && crate::time::now_ns() < give_up {
                        let _ = CACHE.raw().info();
                    }
                    holding.store(false, Ordering::Release);
                } else {
                    // Other caches may be taken meanwhile (an idle CPU running RCU callbacks):
                    // look until ours is named.
                    let mut name = None;
                    while name != Some("ktest_typesafe") && holding.load(Ordering::Acquire) {
                        name = super::locked_cache();
                    }
                    *seen.lock() = Some(name);
                    *left_held.lock() = Some(ktest::lock_left_held());
                    checked.store(true, Ordering::Release);
                }
            });
            assert_eq!(*seen.lock(), Some(Some("ktest_typesafe")), "the held cache lock was not named");
            assert_eq!(*left_held.lock(), Some(None), "a cache lock taken over and over counted as left held");
        }
    }
}
