//! Multi-threaded stress test on real threads: readers fault on random addresses of two
//! address spaces while one writer per address space maps, unmaps, changes and duplicates VMAs
//! drawn from one shared typesafe "slab" with immediate LIFO reuse — so a freed VMA goes to the
//! other address space or another address at once, while stale readers still probe it.
//!
//! Invariants checked by the readers under the read lock: the VMA belongs to their address
//! space, covers their address, and its two data words are consistent (the writer changes them
//! one after the other, with a delay between, under the write lock). Delays are injected at
//! every [`DelayPoint`] to widen the race windows. At the end every object is detached and
//! back in the slab. A watchdog fails the test after [`TIME_LIMIT`] rather than let a lost
//! wake-up hang it.
#![cfg(not(loom))]

mod common;

use common::VmaData;
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Condvar, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};
use vmalock::{
    DelayPoint, LockFail, MmIdentity, MmLockSeq, Platform, VmaFields, lock_vma_under_rcu,
    vm_area_init_from,
};

const OBJECTS: usize = 6;
const REGIONS: u64 = 4;
const PAGE: u64 = 0x1000;
const READERS: usize = if cfg!(miri) { 2 } else { 4 };
const WRITER_OPS: u32 = if cfg!(miri) { 200 } else { 200_000 };
/// The whole test, writers and final unmapping, must end within this; the watchdog ends the
/// process otherwise.
const TIME_LIMIT: Duration = Duration::from_secs(60);
const EMPTY: usize = usize::MAX;

/// The writer's data words: `version`, then `check == checksum(mm, start, end, version)`,
/// written one after the other under the write lock, so a reader inside a write would see them
/// disagree.
#[derive(Default)]
struct Data {
    version: AtomicU64,
    check: AtomicU64,
}

impl VmaData for Data {
    fn copy_from(&self, orig: &Self) {
        self.version.copy_from(&orig.version);
        self.check.copy_from(&orig.check);
    }
}

type Vma = common::Vma<Data>;

fn checksum(mm: usize, start: u64, end: u64, version: u64) -> u64 {
    (mm as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ start.rotate_left(17) ^ end ^ version << 3
}

struct Mm {
    id: usize,
    seq: MmLockSeq,
    mmap_lock: RwLock<()>,
    tree: Vec<AtomicUsize>,
}

/// A table of hashed wait queues, as the kernel's: a waiter registers (takes the bucket lock)
/// before testing its condition, a waker takes the same lock, so no wake-up is lost.
struct Waits {
    buckets: Vec<(Mutex<()>, Condvar)>,
    wakes: AtomicU64,
    sleeps: AtomicU64,
}

struct World {
    objects: Vec<Vma>,
    free: Mutex<Vec<usize>>,
    mms: Vec<Mm>,
    waits: Waits,
    stop: AtomicBool,
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn seed(s: u64) {
    RNG.with(|r| r.set(s.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1));
}

fn rand() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

fn spin(n: u64) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

impl Platform for World {
    fn wait_until(&self, key: usize, mut cond: impl FnMut() -> bool) {
        let (lock, cv) = &self.waits.buckets[(key >> 6) % self.waits.buckets.len()];
        let mut guard = lock.lock().unwrap();
        while !cond() {
            self.waits.sleeps.fetch_add(1, Relaxed);
            guard = cv.wait(guard).unwrap();
        }
    }

    fn wake_all(&self, key: usize) {
        assert!(
            self.objects.iter().any(|v| v.lock.wait_key() == key),
            "woken through a key that is no VMA"
        );
        self.waits.wakes.fetch_add(1, Relaxed);
        let (lock, cv) = &self.waits.buckets[(key >> 6) % self.waits.buckets.len()];
        let _guard = lock.lock().unwrap();
        cv.notify_all();
    }

    fn delay(&self, at: DelayPoint) {
        // Now and then a long pause where a reader holds a pointer it has not yet validated,
        // long enough for a writer to free and reuse the VMA (as in Jann Horn's reproducer).
        let long = matches!(at, DelayPoint::AfterLookup | DelayPoint::AfterEarlyCheck);
        match rand() % 64 {
            0 if long => spin(rand() % 50_000),
            0..8 => spin(rand() % 512),
            _ => {}
        }
    }
}

impl World {
    fn ident<'a>(&self, mm: &'a Mm) -> MmIdentity<'a> {
        MmIdentity {
            id: mm.id,
            lock_seq: &mm.seq,
        }
    }

    fn lookup(&self, mm: &Mm, addr: u64) -> Option<&Vma> {
        let i = mm.tree[(addr / PAGE) as usize].load(Acquire);
        (i != EMPTY).then(|| &self.objects[i])
    }

    fn alloc(&self) -> Option<usize> {
        let i = self.free.lock().unwrap().pop()?;
        assert!(self.objects[i].lock.is_constructed_state());
        Some(i)
    }

    fn free(&self, i: usize) {
        assert!(
            self.objects[i].lock.is_constructed_state(),
            "freeing an attached VMA"
        );
        self.free.lock().unwrap().push(i);
    }

    /// Under the write lock: the data words change one at a time, with a pause between.
    fn set_data(&self, v: &Vma, version: u64) {
        v.data.version.store(version, Relaxed);
        spin(rand() % 64);
        v.data
            .check
            .store(checksum(v.mm_id(), v.start(), v.end(), version), Relaxed);
    }

    fn writer(&self, mm: &Mm, ops: u32) {
        for op in 0..ops {
            let _mmap = mm.mmap_lock.write().unwrap();
            mm.seq.mmap_write_lock();
            let r = rand() % REGIONS;
            let slot = &mm.tree[r as usize];
            let cur = slot.load(Relaxed);
            match (cur, rand() % 3) {
                (EMPTY, _) => {
                    if let Some(i) = self.alloc() {
                        let v = &self.objects[i];
                        v.lock.vma_start_write(&mm.seq, self);
                        v.set_identity(mm.id, r * PAGE, (r + 1) * PAGE);
                        self.set_data(v, u64::from(op));
                        v.lock.vma_mark_attached(&mm.seq);
                        slot.store(i, Release);
                    }
                }
                (i, 0) => {
                    // munmap
                    let v = &self.objects[i];
                    v.lock.vma_start_write(&mm.seq, self);
                    slot.store(EMPTY, Release);
                    v.lock.vma_mark_detached(&mm.seq, self);
                    self.free(i);
                }
                (i, 1) => {
                    // mprotect of the whole VMA
                    let v = &self.objects[i];
                    v.lock.vma_start_write(&mm.seq, self);
                    self.set_data(v, u64::from(op));
                }
                (i, _) => {
                    // Replace by a duplicate (as a split would create one), free the original.
                    if let Some(n) = self.alloc() {
                        let (orig, new) = (&self.objects[i], &self.objects[n]);
                        vm_area_init_from(new, orig);
                        assert!(new.lock.is_constructed_state());
                        new.lock.vma_start_write(&mm.seq, self);
                        orig.lock.vma_start_write(&mm.seq, self);
                        self.set_data(new, u64::from(op));
                        new.lock.vma_mark_attached(&mm.seq);
                        slot.store(n, Release);
                        orig.lock.vma_mark_detached(&mm.seq, self);
                        self.free(i);
                    }
                }
            }
            mm.seq.mmap_write_unlock();
        }
    }

    fn check_data(v: &Vma, mm: &Mm, addr: u64) {
        assert_eq!(v.mm_id(), mm.id, "locked another address space's VMA");
        assert!(
            v.start() <= addr && addr < v.end(),
            "locked a VMA not covering the address"
        );
        let version = v.data.version.load(Relaxed);
        spin(rand() % 32);
        assert_eq!(
            v.data.check.load(Relaxed),
            checksum(mm.id, v.start(), v.end(), version),
            "read a VMA while it was being written"
        );
    }

    fn reader(&self, stats: &Stats) {
        while !self.stop.load(Relaxed) {
            let mm = &self.mms[(rand() % 2) as usize];
            let addr = (rand() % REGIONS) * PAGE + rand() % PAGE;
            match lock_vma_under_rcu(self.ident(mm), addr, |a| self.lookup(mm, a), 3, self) {
                Ok(found) => {
                    Self::check_data(&found.vma, mm, addr);
                    stats.count(None, found.misses);
                }
                Err(fallback) => {
                    // The slow path: under the mmap_lock nothing changes.
                    let _mmap = mm.mmap_lock.read().unwrap();
                    if let Some(v) = self.lookup(mm, addr) {
                        Self::check_data(v, mm, addr);
                    }
                    stats.count(Some(fallback.reason), fallback.misses);
                }
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    success: AtomicU64,
    misses: AtomicU64,
    reasons: [AtomicU64; 6],
}

impl Stats {
    fn count(&self, reason: Option<LockFail>, misses: u32) {
        self.misses.fetch_add(u64::from(misses), Relaxed);
        match reason {
            None => self.success.fetch_add(1, Relaxed),
            Some(r) => self.reasons[r as usize].fetch_add(1, Relaxed),
        };
    }
}

/// Ends the test process with a failure if the test has not dropped the returned sender within
/// [`TIME_LIMIT`]. A writer that waits for a wake-up that never comes sleeps in its condition
/// variable for ever, and neither a panic nor the end of the scope can get it out (the scope
/// waits for it): only ending the process turns the hang into a failure.
fn watchdog() -> mpsc::Sender<()> {
    let (finished, wait) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(TIME_LIMIT) {
            // Straight to stderr: the test harness's capture of `eprintln!` would be lost
            // with the process.
            let _ = writeln!(
                std::io::stderr(),
                "vmalock stress: not finished after {TIME_LIMIT:?}: a writer or detacher is \
                 stuck (a lost wake-up?)"
            );
            std::process::exit(101);
        }
    });
    finished
}

#[test]
fn readers_writers_and_reuse_on_real_threads() {
    let mm = |id| Mm {
        id,
        seq: MmLockSeq::new(),
        mmap_lock: RwLock::new(()),
        tree: (0..REGIONS).map(|_| AtomicUsize::new(EMPTY)).collect(),
    };
    let world = World {
        objects: (0..OBJECTS).map(|_| Vma::new()).collect(),
        free: Mutex::new((0..OBJECTS).collect()),
        mms: vec![mm(1), mm(2)],
        waits: Waits {
            buckets: (0..4).map(|_| (Mutex::new(()), Condvar::new())).collect(),
            wakes: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
        },
        stop: AtomicBool::new(false),
    };
    let stats = Stats::default();
    let started = Instant::now();
    let finished = watchdog();
    thread::scope(|s| {
        let writers: Vec<_> = world
            .mms
            .iter()
            .enumerate()
            .map(|(n, mm)| {
                let world = &world;
                s.spawn(move || {
                    seed(1000 + n as u64);
                    world.writer(mm, WRITER_OPS);
                })
            })
            .collect();
        for n in 0..READERS {
            let (world, stats) = (&world, &stats);
            s.spawn(move || {
                seed(n as u64 + 1);
                world.reader(stats);
            });
        }
        while !writers.iter().all(|w| w.is_finished()) {
            thread::sleep(Duration::from_millis(10));
        }
        world.stop.store(true, Relaxed);
    });

    // Unmap everything: every object detached and back in the slab.
    for mm in &world.mms {
        mm.seq.mmap_write_lock();
        for slot in &mm.tree {
            let i = slot.swap(EMPTY, Relaxed);
            if i != EMPTY {
                let v = &world.objects[i];
                v.lock.vma_start_write(&mm.seq, &world);
                v.lock.vma_mark_detached(&mm.seq, &world);
                world.free(i);
            }
        }
        mm.seq.mmap_write_unlock();
    }
    assert_eq!(world.free.lock().unwrap().len(), OBJECTS);
    drop(finished);

    let reasons = [
        "no_vma",
        "detached",
        "locked",
        "wrong_mm",
        "limit",
        "out_of_range",
    ];
    let counts: Vec<String> = reasons
        .iter()
        .zip(&stats.reasons)
        .map(|(name, n)| format!("{name} {}", n.load(Relaxed)))
        .collect();
    println!(
        "fast path {} ok, misses {}, fallbacks: {}; writer sleeps {}, wakes {}; {:?}",
        stats.success.load(Relaxed),
        stats.misses.load(Relaxed),
        counts.join(", "),
        world.waits.sleeps.load(Relaxed),
        world.waits.wakes.load(Relaxed),
        started.elapsed()
    );
    assert!(stats.success.load(Relaxed) > 0);
}
