//! Threads allocate, publish, unpublish and free objects of one `TYPESAFE_BY_RCU` cache while
//! "stale readers" keep pointers to objects that may be freed and reused under them. A small
//! host RCU (an epoch counter and a reader registry) drives the platform's grace periods, and
//! freed pages are overwritten and handed out again at once, so a page given back inside a
//! grace period shows up as a broken object or a changed slab generation.
#![cfg(not(loom))] // std-thread and `const` caches; the loom models are in loom.rs

mod common;

use common::{Deferred, Pages, Static, current_cpu, set_cpu};
use slab::{CacheFlags, DeferredFree, Platform, SlabObject, TypedCache};
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::thread;
use std::time::Duration;

const WORKERS: usize = 4;
/// Registry slots: one per worker, one for the main thread.
const READERS: usize = WORKERS + 1;
const TABLE: usize = 64;
/// Rounds per worker; Miri runs a shrunk version.
const ROUNDS: usize = if cfg!(miri) { 300 } else { 20_000 };

/// A tiny RCU: readers publish the epoch they started in; a grace period advances the epoch
/// and waits until no reader is still in an older one.
struct HostRcu {
    epoch: AtomicU64,
    /// 0: not reading; otherwise the epoch the read section started in.
    readers: [AtomicU64; READERS],
    queue: Mutex<Vec<Deferred>>,
    grace_periods: AtomicUsize,
}

struct ReadGuard<'a> {
    rcu: &'a HostRcu,
    slot: usize,
}

impl HostRcu {
    fn new() -> Self {
        Self {
            epoch: AtomicU64::new(1),
            readers: [const { AtomicU64::new(0) }; READERS],
            queue: Mutex::default(),
            grace_periods: AtomicUsize::new(0),
        }
    }

    fn read_lock(&self, slot: usize) -> ReadGuard<'_> {
        // SeqCst on both sides: a grace period's scan that misses this store is ordered before
        // it, so every load in the section sees what the updater did before the grace period.
        self.readers[slot].store(self.epoch.load(SeqCst), SeqCst);
        ReadGuard { rcu: self, slot }
    }

    /// Runs every callback queued before the call, after a full grace period.
    fn synchronize_and_run(&self) {
        let batch = std::mem::take(&mut *self.queue.lock().unwrap());
        let epoch = self.epoch.fetch_add(1, SeqCst) + 1;
        for reader in &self.readers {
            loop {
                let started = reader.load(SeqCst);
                if started == 0 || started >= epoch {
                    break;
                }
                thread::yield_now();
            }
        }
        self.grace_periods.fetch_add(1, Relaxed);
        for deferred in batch {
            // SAFETY: every reader that could have seen the slab before it was retired has
            // left its read section.
            unsafe { deferred.run() };
        }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.rcu.readers[self.slot].store(0, SeqCst);
    }
}

struct RcuPlatform {
    pages: Pages,
    rcu: HostRcu,
}

impl Platform for RcuPlatform {
    fn cpu_id(&self) -> usize {
        current_cpu()
    }

    fn alloc_pages(&self, order: u32) -> Option<NonNull<u8>> {
        self.pages.alloc(order)
    }

    unsafe fn free_pages(&self, pages: NonNull<u8>, order: u32) {
        // SAFETY: forwarded contract.
        unsafe { self.pages.free(pages, order) }
    }

    unsafe fn defer_after_grace_period(
        &self,
        node: *mut DeferredFree,
        callback: unsafe fn(*mut DeferredFree),
    ) {
        self.rcu
            .queue
            .lock()
            .unwrap()
            .push(Deferred { node, callback });
    }
}

const MAGIC: u64 = 0x7e5a_fe0b_1ec7_0000;
const UNLOCKED: u32 = 0x10c0;
const LOCKED: u32 = 0x10c1;

/// The lock word is set up by the constructor and afterwards changes only by the lock
/// protocol, never by re-initialisation; stale readers load it.
#[repr(C)]
struct Node {
    magic: AtomicU64,
    lock: AtomicU32,
    id: AtomicU64,
    /// Makes slabs small (about 15 nodes), so that they fill, empty and retire often.
    _pad: [u64; 28],
}

static CONSTRUCTED: AtomicUsize = AtomicUsize::new(0);

impl SlabObject for Node {
    unsafe fn construct(slot: *mut Self) {
        // SAFETY: per the trait's contract.
        unsafe {
            slot.write(Node {
                magic: AtomicU64::new(MAGIC),
                lock: AtomicU32::new(UNLOCKED),
                id: AtomicU64::new(0),
                _pad: [0; 28],
            })
        };
        CONSTRUCTED.fetch_add(1, Relaxed);
    }

    fn is_constructed(&self) -> bool {
        self.magic.load(Relaxed) == MAGIC && self.lock.load(Relaxed) == UNLOCKED
    }
}

/// What a stale reader may see: a constructed node, locked or not.
fn assert_node(node: &Node) {
    assert_eq!(
        node.magic.load(Relaxed),
        MAGIC,
        "a stale reader saw memory that is not a node"
    );
    let lock = node.lock.load(Acquire);
    assert!(
        lock == UNLOCKED || lock == LOCKED,
        "lock word {lock:#x} is not a lock state"
    );
}

type Cache = TypedCache<Node, RcuPlatform>;

struct Shared {
    cache: &'static Cache,
    rcu: &'static HostRcu,
    table: [AtomicPtr<Node>; TABLE],
    next_id: AtomicU64,
    stale_reads: AtomicUsize,
}

/// Replaces table entry `i` with a new node and frees the old one at once (typesafe: it may be
/// reused by the next allocation while readers still look at it).
fn replace(shared: &Shared, i: usize) {
    let new = shared.cache.alloc().expect("host memory");
    // SAFETY: a live node of the cache.
    let node = unsafe { new.as_ref() };
    assert!(node.is_constructed(), "handed out in constructed state");
    node.id.store(shared.next_id.fetch_add(1, Relaxed), Relaxed);
    let old = shared.table[i].swap(new.as_ptr(), SeqCst);
    if let Some(old) = NonNull::new(old) {
        // SAFETY: unpublished: this thread now owns it; stale readers only load.
        let node = unsafe { old.as_ref() };
        assert_eq!(
            node.lock
                .compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed),
            Ok(UNLOCKED)
        );
        node.id.store(0, Relaxed);
        node.lock.store(UNLOCKED, Release);
        // SAFETY: owned, back in constructed state.
        unsafe { shared.cache.free(old) };
    }
}

/// Looks at table entry `i` inside a read section, yielding in the middle so that the node may
/// be freed, reused, and its slab emptied and shrunk meanwhile.
fn read(shared: &Shared, slot: usize, i: usize, linger: bool) {
    let _guard = shared.rcu.read_lock(slot);
    let Some(p) = NonNull::new(shared.table[i].load(SeqCst)) else {
        return;
    };
    // SAFETY: found inside a read section of a typesafe cache: the slab stays mapped.
    let generation = unsafe { shared.cache.raw().slab_generation(p.as_ptr().cast()) };
    assert_eq!(generation % 2, 0);
    // SAFETY: as above: memory of a constructed node for the whole read section.
    let node = unsafe { p.as_ref() };
    let id = node.id.load(Relaxed);
    for _ in 0..if linger { 8 } else { 1 } {
        assert_node(node);
        if linger {
            thread::yield_now();
        }
    }
    if node.id.load(Relaxed) != id {
        shared.stale_reads.fetch_add(1, Relaxed);
    }
    // SAFETY: as above.
    let now = unsafe { shared.cache.raw().slab_generation(p.as_ptr().cast()) };
    assert_eq!(
        now, generation,
        "the slab's pages went back inside a grace period"
    );
}

fn worker(shared: &Shared, cpu: usize, seed: u64) {
    set_cpu(cpu);
    let mut x = seed;
    for round in 0..ROUNDS {
        // xorshift
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x as usize >> 8) % TABLE;
        match x % 16 {
            0..=5 => replace(shared, i),
            6..=14 => read(shared, cpu, i, x % 4 == 0),
            _ => {
                shared.cache.raw().drain_cpu_caches();
                shared.cache.raw().shrink();
            }
        }
        if round % 128 == 0 {
            // Empty part of the table so that whole slabs become free and retire.
            for j in (0..TABLE).filter(|j| j % WORKERS == cpu) {
                let old = shared.table[j].swap(ptr::null_mut(), SeqCst);
                if let Some(old) = NonNull::new(old) {
                    // SAFETY: unpublished and owned, never modified since construction but
                    // for `id`, which the constructed state does not cover.
                    unsafe { shared.cache.free(old) };
                }
            }
            shared.cache.raw().drain_cpu_caches();
            shared.cache.raw().shrink();
        }
    }
}

#[test]
fn stale_readers_always_see_constructed_nodes() {
    // SAFETY: the cache is dropped before the platform, both after every thread has finished.
    let platform = unsafe {
        Static::new(RcuPlatform {
            pages: Pages::new(true, None),
            rcu: HostRcu::new(),
        })
    };
    let flags = CacheFlags::TYPESAFE_BY_RCU.union(CacheFlags::CONSTRUCTED_CHECK);
    // SAFETY: as above.
    let cache = unsafe { Static::new(Cache::new("node", flags, platform.get())) };
    let (p, rcu) = (platform.get(), &platform.get().rcu);
    let shared = Shared {
        cache: cache.get(),
        rcu,
        table: [const { AtomicPtr::new(ptr::null_mut()) }; TABLE],
        next_id: AtomicU64::new(1),
        stale_reads: AtomicUsize::new(0),
    };
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Relaxed) {
                rcu.synchronize_and_run();
                thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|cpu| {
                let shared = &shared;
                s.spawn(move || worker(shared, cpu, 0x9e37_79b9_7f4a_7c15 ^ (cpu as u64 + 1)))
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        // Stop the grace-period thread before reporting a failed worker, or the scope would
        // wait for it for ever.
        stop.store(true, Relaxed);
        results.into_iter().for_each(|r| r.unwrap());
    });
    let info = cache.get().raw().info();
    assert!(
        info.slabs_freed > 0,
        "slabs went back during the run: {info:?}"
    );
    assert!(rcu.grace_periods.load(Relaxed) > 0);
    eprintln!(
        "{info}\n{} grace periods, {} reads saw their node reused",
        rcu.grace_periods.load(Relaxed),
        shared.stale_reads.load(Relaxed)
    );

    // A reader that holds a stale pointer across the final free, drain and shrink keeps the
    // page until it leaves its read section.
    set_cpu(0);
    replace(&shared, 0);
    let guard = rcu.read_lock(WORKERS);
    let held = NonNull::new(shared.table[0].load(SeqCst)).unwrap();
    for entry in &shared.table {
        if let Some(old) = NonNull::new(entry.swap(ptr::null_mut(), SeqCst)) {
            // SAFETY: unpublished and owned, in constructed state.
            unsafe { shared.cache.free(old) };
        }
    }
    let raw = cache.get().raw();
    raw.drain_cpu_caches();
    raw.shrink();
    assert_eq!(raw.info().slabs, 0);
    let outstanding = p.pages.outstanding_pages();
    assert!(outstanding > 0, "the pages wait for the reader");
    thread::scope(|s| {
        let gp = s.spawn(|| rcu.synchronize_and_run());
        thread::sleep(Duration::from_millis(50));
        // SAFETY: inside the read section that found `held`.
        assert_node(unsafe { held.as_ref() });
        assert_eq!(
            p.pages.outstanding_pages(),
            outstanding,
            "no page goes back while the reader reads"
        );
        assert!(!gp.is_finished(), "the grace period waits for the reader");
        drop(guard);
        gp.join().unwrap();
    });
    rcu.synchronize_and_run();
    assert_eq!(
        p.pages.outstanding_pages(),
        0,
        "every page went back after the grace period"
    );
    let info = raw.info();
    assert_eq!(
        (info.active_objects, info.pages, info.pending_frees),
        (0, 0, 0)
    );
    assert_eq!(
        CONSTRUCTED.load(Relaxed),
        info.slabs_created * info.objects_per_slab
    );
}
