//! Multi-threaded stress test: each thread plays one CPU.
//!
//! Readers repeatedly look up two shared objects under `read_lock` and check that neither has
//! been poisoned. One writer replaces the first object and frees the old one with `call_rcu`;
//! another replaces the second and frees the old one itself after a synchronous wait
//! (`start_wait` + `is_complete`, the glue's `synchronize_rcu`). Freeing poisons the object
//! first, so a reader that sees poison has caught a grace period that ended too early.
#![cfg(not(loom))]

use rcu::{Rcu, RcuHead};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const LIVE: u64 = 0xa11e_0b1e_c7a1_1e55;
const POISON: u64 = 0xdead_dead_dead_dead;

// Miri runs a shrunken version (it is thousands of times slower, and still checks every
// access of the objects for use after free and data races).
const READERS: usize = if cfg!(miri) { 2 } else { 4 };
/// How long the writers may take before the test gives up on them.
const TIME_LIMIT: Duration = Duration::from_secs(60);
const ASYNC_UPDATES: u64 = if cfg!(miri) { 50 } else { 200_000 };
const SYNC_UPDATES: u64 = if cfg!(miri) { 5 } else { 20_000 };
/// The CPUs the two writers play.
const ASYNC_CPU: usize = READERS;
const SYNC_CPU: usize = READERS + 1;

#[repr(C)]
struct Obj {
    head: RcuHead,
    magic: AtomicU64,
    generation: u64,
}

fn new_obj(generation: u64) -> *mut Obj {
    Box::into_raw(Box::new(Obj {
        head: RcuHead::new(),
        magic: AtomicU64::new(LIVE),
        generation,
    }))
}

/// Poisons and frees an object.
///
/// # Safety
///
/// `obj` came from `new_obj`, is no longer reachable and no reader still uses it.
unsafe fn poison_and_free(obj: *mut Obj) {
    // SAFETY: `obj` is valid and now ours alone (the caller's contract).
    unsafe {
        (*obj).magic.store(POISON, Ordering::Relaxed);
        drop(Box::from_raw(obj));
    }
}

/// The `call_rcu` callback.
///
/// # Safety
///
/// `head` heads an `Obj` from `new_obj` whose grace period has passed.
unsafe fn free_callback(head: *mut RcuHead) {
    // SAFETY: `head` is the first field of a `#[repr(C)]` `Obj` (so the cast gives back the
    // object), and RCU calls this only after every reader that could see it has finished.
    unsafe { poison_and_free(head.cast::<Obj>()) };
}

struct Shared {
    rcu: Rcu,
    by_callback: AtomicPtr<Obj>,
    by_wait: AtomicPtr<Obj>,
    /// How many writers have finished.
    writers_done: AtomicU64,
}

/// Reads one object under the caller's read lock and checks it is alive.
fn check(ptr: &AtomicPtr<Obj>) -> u64 {
    let obj = ptr.load(Ordering::Acquire);
    // SAFETY: the caller is in a read-side section and `obj` was published (Release) before
    // it could be seen, so it is valid until the section ends.
    let obj = unsafe { &*obj };
    assert_eq!(
        obj.magic.load(Ordering::Relaxed),
        LIVE,
        "reader saw a freed object"
    );
    let generation = black_box(obj.generation);
    // Linger in the section so that writers get a chance to race with it.
    for _ in 0..8 {
        black_box(obj.generation);
    }
    assert_eq!(
        obj.magic.load(Ordering::Relaxed),
        LIVE,
        "object freed during a section"
    );
    generation
}

/// Returns the number of read-side rounds.
fn reader(shared: &Shared, cpu: usize) -> u64 {
    let rcu = &shared.rcu;
    rcu.cpu_online(cpu);
    let mut last = (0, 0);
    let start = Instant::now();
    let mut round = 0;
    while shared.writers_done.load(Ordering::Relaxed) < 2 {
        round += 1;
        if round % 4096 == 0 {
            assert!(start.elapsed() < TIME_LIMIT, "writers made no progress");
        }
        rcu.read_lock(cpu);
        let seen = (check(&shared.by_callback), check(&shared.by_wait));
        rcu.read_unlock(cpu);
        // Each writer publishes newer objects only.
        assert!(seen.0 >= last.0 && seen.1 >= last.1);
        last = seen;
        if round % 8 == 0 {
            rcu.quiescent_state(cpu);
        }
        if round % 32 == 0 {
            rcu.poll(cpu, 16);
        }
        if round % 512 == cpu as u64 {
            rcu.enter_idle(cpu);
            thread::yield_now();
            rcu.exit_idle(cpu);
        }
    }
    rcu.enter_idle(cpu);
    round
}

fn async_writer(shared: &Shared) {
    let rcu = &shared.rcu;
    let cpu = ASYNC_CPU;
    rcu.cpu_online(cpu);
    for generation in 1..=ASYNC_UPDATES {
        let old = shared
            .by_callback
            .swap(new_obj(generation), Ordering::AcqRel);
        // SAFETY: `old` is unlinked and freed only by the callback; this thread plays `cpu`.
        unsafe { rcu.call_rcu(cpu, old.cast::<RcuHead>(), free_callback) };
        rcu.quiescent_state(cpu);
        rcu.poll(cpu, 64);
        while rcu.stats().pending[cpu] > 1_000 {
            rcu.quiescent_state(cpu);
            rcu.poll(cpu, 64);
            thread::yield_now();
        }
    }
    while rcu.has_pending_callbacks(cpu) {
        rcu.quiescent_state(cpu);
        rcu.poll(cpu, 64);
        thread::yield_now();
    }
    rcu.enter_idle(cpu);
    shared.writers_done.fetch_add(1, Ordering::Relaxed);
}

fn sync_writer(shared: &Shared) {
    let rcu = &shared.rcu;
    let cpu = SYNC_CPU;
    rcu.cpu_online(cpu);
    for generation in 1..=SYNC_UPDATES {
        let old = shared.by_wait.swap(new_obj(generation), Ordering::AcqRel);
        let ticket = rcu.start_wait();
        while !rcu.is_complete(ticket) {
            rcu.quiescent_state(cpu);
            rcu.poll(cpu, 64);
            thread::yield_now();
        }
        // SAFETY: unlinked before `start_wait`, and a full grace period has passed since.
        unsafe { poison_and_free(old) };
    }
    rcu.enter_idle(cpu);
    shared.writers_done.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn readers_never_see_freed_objects() {
    let shared = Arc::new(Shared {
        rcu: Rcu::new(),
        by_callback: AtomicPtr::new(new_obj(0)),
        by_wait: AtomicPtr::new(new_obj(0)),
        writers_done: AtomicU64::new(0),
    });
    let readers: Vec<_> = (0..READERS)
        .map(|cpu| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || reader(&shared, cpu))
        })
        .collect();
    let s = Arc::clone(&shared);
    let writer = thread::spawn(move || async_writer(&s));
    let s = Arc::clone(&shared);
    let waiter = thread::spawn(move || sync_writer(&s));
    writer.join().expect("the call_rcu writer failed");
    waiter.join().expect("the synchronous writer failed");
    let rounds: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("a reader failed"))
        .sum();

    let stats = shared.rcu.stats();
    assert_eq!(stats.callbacks_queued, ASYNC_UPDATES);
    assert_eq!(stats.callbacks_invoked, ASYNC_UPDATES);
    assert_eq!(stats.gps_started, stats.gps_completed);
    assert!(stats.gps_completed >= SYNC_UPDATES);
    println!(
        "{} grace periods for {ASYNC_UPDATES} callbacks and {SYNC_UPDATES} waits; \
         {rounds} read-side rounds",
        stats.gps_completed
    );
    for ptr in [&shared.by_callback, &shared.by_wait] {
        // SAFETY: every thread has finished, so nothing else can reach the last objects.
        unsafe { poison_and_free(ptr.load(Ordering::Acquire)) };
    }
}
