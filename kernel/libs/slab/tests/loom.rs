//! Loom models of the allocator's races, run on the real code with loom's atomics and mutex
//! (`RUSTFLAGS="--cfg loom"`). Under loom a magazine holds 2 objects and moves 1 per refill or
//! flush, and a cache serves 2 CPUs, so that a few operations reach every path.
//!
//! 1. The RCU-deferred page free: a reader holding a stale pointer runs against a thread that
//!    frees the object, drains and shrinks. The page goes back only through the deferred
//!    callback, which the model runs only once the reader is done (its grace period), and the
//!    reader always reads a constructed object.
//! 2. Per-CPU refill and flush racing on the shared partial list from two CPUs: no object is
//!    handed out twice, and the counts and pages balance afterwards.
//! 3. Two threads claiming the same CPU (as an interrupt re-entering the cache would): the
//!    magazine's try-lock sends one of them to the shared path, and loom's cell checks that the
//!    magazine is never reached by both.
#![cfg(loom)]

use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use slab::{CacheFlags, DeferredFree, KmemCache, PAGE_SIZE, Platform};
use std::alloc::{Layout, alloc, dealloc};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

loom::thread_local! {
    static CPU: Cell<usize> = Cell::new(0);
}

fn set_cpu(id: usize) {
    CPU.with(|cpu| cpu.set(id));
}

/// A raw pointer that the models hand from one modelled thread to another.
#[derive(Clone, Copy)]
struct Shared<T>(NonNull<T>);

// SAFETY: the models pass objects between threads the way kernel code does; what each thread
// may do with them is what the test checks.
unsafe impl<T> Send for Shared<T> {}

/// Pages from the std allocator; deferred callbacks wait in a queue until the model ends the
/// grace period.
struct LoomPlatform {
    outstanding: AtomicUsize,
    /// Set once the model's reader has left its read section.
    reader_done: AtomicBool,
    /// Set while the model runs deferred callbacks: the only place pages of a typesafe cache
    /// may go back.
    in_callbacks: AtomicBool,
    typesafe: bool,
    deferred: Mutex<Vec<Pending>>,
}

/// A deferred callback waiting for the model's grace period.
struct Pending {
    node: Shared<DeferredFree>,
    callback: unsafe fn(*mut DeferredFree),
}

impl LoomPlatform {
    fn new(typesafe: bool) -> Self {
        Self {
            outstanding: AtomicUsize::new(0),
            reader_done: AtomicBool::new(false),
            in_callbacks: AtomicBool::new(false),
            typesafe,
            deferred: Mutex::new(Vec::new()),
        }
    }

    fn layout(order: u32) -> Layout {
        Layout::from_size_align(PAGE_SIZE << order, PAGE_SIZE << order).unwrap()
    }

    /// Ends the grace period: runs the queued callbacks.
    fn run_callbacks(&self) {
        let ready = std::mem::take(&mut *self.deferred.lock().unwrap());
        self.in_callbacks.store(true, Relaxed);
        for Pending { node, callback } in ready {
            // SAFETY: the model calls this only after the reader is done.
            unsafe { callback(node.0.as_ptr()) };
        }
        self.in_callbacks.store(false, Relaxed);
    }
}

impl Platform for LoomPlatform {
    fn cpu_id(&self) -> usize {
        CPU.with(Cell::get)
    }

    fn alloc_pages(&self, order: u32) -> Option<NonNull<u8>> {
        self.outstanding.fetch_add(1 << order, Relaxed);
        // SAFETY: non-zero size.
        NonNull::new(unsafe { alloc(Self::layout(order)) })
    }

    unsafe fn free_pages(&self, pages: NonNull<u8>, order: u32) {
        if self.typesafe {
            assert!(
                self.in_callbacks.load(Relaxed),
                "a typesafe page went back outside the deferred callback"
            );
            assert!(
                self.reader_done.load(Acquire),
                "a page went back while a reader may read it"
            );
        }
        self.outstanding.fetch_sub(1 << order, Relaxed);
        // SAFETY: per the contract the pages are ours again.
        unsafe { dealloc(pages.as_ptr(), Self::layout(order)) };
    }

    unsafe fn defer_after_grace_period(
        &self,
        node: *mut DeferredFree,
        callback: unsafe fn(*mut DeferredFree),
    ) {
        let node = Shared(NonNull::new(node).unwrap());
        self.deferred
            .lock()
            .unwrap()
            .push(Pending { node, callback });
    }
}

/// Objects are 512 bytes (15 per slab) to keep the models small. The first word is an atomic
/// set up by the constructor: the "lock word" of model 1, the owner of model 2.
const OBJECT_SIZE: usize = 512;
const CONSTRUCTED: usize = 0xc0;

/// # Safety
///
/// `p` is valid for writes of an `AtomicUsize` and aligned.
unsafe fn ctor(p: *mut u8) {
    // SAFETY: per the contract.
    unsafe { p.cast::<AtomicUsize>().write(AtomicUsize::new(CONSTRUCTED)) };
}

fn word<'a>(p: NonNull<u8>) -> &'a AtomicUsize {
    // SAFETY: every object of the models' caches starts with the constructor's atomic, and the
    // models read it only while its slab is mapped.
    unsafe { p.cast::<AtomicUsize>().as_ref() }
}

/// A platform and a cache for one execution of a model (leaked: loom runs many executions,
/// each small).
fn setup(flags: CacheFlags) -> (&'static LoomPlatform, &'static KmemCache<LoomPlatform>) {
    let typesafe = flags.contains(CacheFlags::TYPESAFE_BY_RCU);
    let platform: &'static LoomPlatform = Box::leak(Box::new(LoomPlatform::new(typesafe)));
    let cache = KmemCache::new("loom", OBJECT_SIZE, 8, flags, Some(ctor), None, platform);
    (platform, Box::leak(Box::new(cache)))
}

#[test]
fn stale_reader_against_free_drain_and_shrink() {
    loom::model(|| {
        let (platform, cache) = setup(CacheFlags::TYPESAFE_BY_RCU);
        set_cpu(0);
        let object = Shared(cache.alloc().unwrap());
        // The reader found `object` inside its read section, which began before the free.
        let reader = loom::thread::spawn(move || {
            assert_eq!(
                word(object.0).load(Relaxed),
                CONSTRUCTED,
                "a stale reader saw a non-object"
            );
            platform.reader_done.store(true, Release);
        });
        let freer = loom::thread::spawn(move || {
            set_cpu(1);
            // SAFETY: the object is live, owned here, and still in constructed state.
            unsafe { cache.free(object.0) };
            cache.drain_cpu_caches();
            cache.shrink();
        });
        freer.join().unwrap();
        let info = cache.info();
        assert_eq!((info.slabs, info.pending_frees), (0, 1));
        assert_eq!(
            platform.outstanding.load(Relaxed),
            info.pages_per_slab,
            "the pages wait for the grace period"
        );
        // The grace period ends when the reader is done.
        while !platform.reader_done.load(Acquire) {
            loom::thread::yield_now();
        }
        platform.run_callbacks();
        reader.join().unwrap();
        assert_eq!(platform.outstanding.load(Relaxed), 0);
        assert_eq!(cache.info().pending_frees, 0);
    });
}

/// Two threads on CPUs `cpus` each allocate `count` objects, marking them as theirs, then free
/// them; afterwards the counts balance and drain + shrink return every page.
fn alloc_free_race(cpus: [usize; 2], count: usize) {
    let (platform, cache) = setup(CacheFlags::NONE);
    // One slab, its objects back on the slab's free list.
    set_cpu(0);
    let warm = cache.alloc().unwrap();
    // SAFETY: live and constructed.
    unsafe { cache.free(warm) };
    cache.drain_cpu_caches();

    let threads: Vec<_> = (0..2)
        .map(|thread| {
            loom::thread::spawn(move || {
                set_cpu(cpus[thread]);
                let owner = thread + 1;
                let objects: Vec<_> = (0..count)
                    .map(|_| {
                        let p = cache.alloc().unwrap();
                        assert_eq!(
                            word(p).swap(owner, Relaxed),
                            CONSTRUCTED,
                            "handed out twice"
                        );
                        p
                    })
                    .collect();
                for p in objects {
                    word(p).store(CONSTRUCTED, Relaxed);
                    // SAFETY: live, owned here, back in constructed state.
                    unsafe { cache.free(p) };
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());

    let info = cache.info();
    let ops = 2 * count + 1;
    assert_eq!(
        (info.active_objects, info.allocs, info.frees),
        (0, ops, ops)
    );
    cache.drain_cpu_caches();
    cache.shrink();
    assert_eq!(platform.outstanding.load(Relaxed), 0);
    assert_eq!(cache.info().slabs_freed, cache.info().slabs_created);
}

#[test]
fn refill_and_flush_race_on_the_partial_list() {
    // Three objects overflow the two-object magazine on the way back: refills on the way in,
    // a flush on the way out.
    loom::model(|| alloc_free_race([0, 1], 3));
}

#[test]
fn same_cpu_callers_fall_back_to_the_shared_path() {
    loom::model(|| alloc_free_race([1, 1], 2));
}
