//! Readers on several threads walk the tree without locks while one writer splits, merges,
//! removes and re-inserts entries, with a small epoch-based RCU written here to free the
//! retired nodes after a grace period.
//!
//! * "Stable" entries: the address range `[a, c)` of stable entry `k` is always covered, by one
//!   entry or by two halves split at varying points, always with values of class `k`. The writer
//!   switches between the shapes with one `replace`, so a reader must always find `[a, c)`
//!   covered by class `k`, and an iteration must always see it tiled exactly.
//! * "Volatile" entries: between the stable ones, inserted and removed in batches, so that leaves
//!   and branches split, share and merge around the stable entries all the time.
//! * The global allocator poisons every freed block, so a reader that walked into a freed node
//!   would read garbage and fail (or crash) rather than see the old contents.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
use std::thread;
use std::time::{Duration, Instant};
use vmtree::{RangeTree, ReadGuard, Reclaim, RetiredNode};

/// The system allocator, filling every block with 0xa5 before freeing it.
struct Poisoning;

// SAFETY: forwards to `System`, writing only inside the block being freed.
unsafe impl GlobalAlloc for Poisoning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the block is `layout.size()` bytes and the caller's to free.
        unsafe {
            ptr.write_bytes(0xa5, layout.size());
            System.dealloc(ptr, layout);
        }
    }
}

#[global_allocator]
static ALLOCATOR: Poisoning = Poisoning;

/// A retired node waiting for its grace period.
struct Retired {
    /// Readers that entered with an epoch above this cannot reach the node.
    epoch: u64,
    node: NonNull<RetiredNode>,
}

// SAFETY: a retired node is unreachable for new readers; only the reclaimer touches it.
unsafe impl Send for Retired {}

/// Epoch-based RCU for a fixed set of reader threads.
///
/// A reader stores the epoch it saw in its slot (0: outside any critical section), then issues a
/// SeqCst fence before it loads the tree's root. `retire` issues a SeqCst fence (after the
/// writer's publish) and advances the epoch, tagging the node with the epoch before. A reader
/// whose slot holds a larger epoch read it after the advance, so the fences order the publish
/// before its root load: it cannot reach the node. A slot read as 0 after the retire fence
/// belongs to a reader that has left (its earlier loads happen before), or whose next entry is
/// ordered after the fence and sees the new root. So a node is freed once every slot is 0 or
/// above its tag.
struct Rcu {
    epoch: AtomicU64,
    slots: Vec<AtomicU64>,
    pending: Mutex<Vec<Retired>>,
    retired: AtomicUsize,
    freed: AtomicUsize,
}

struct Guard<'a> {
    rcu: &'a Rcu,
    slot: usize,
}

// SAFETY: a `Guard` exists only between `Rcu::read` and its drop, while its slot is non-zero.
unsafe impl ReadGuard for Guard<'_> {}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.rcu.slots[self.slot].store(0, Release);
    }
}

impl Rcu {
    fn new(readers: usize) -> Self {
        Self {
            epoch: AtomicU64::new(1),
            slots: (0..readers).map(|_| AtomicU64::new(0)).collect(),
            pending: Mutex::new(Vec::new()),
            retired: AtomicUsize::new(0),
            freed: AtomicUsize::new(0),
        }
    }

    fn read(&self, slot: usize) -> Guard<'_> {
        self.slots[slot].store(self.epoch.load(SeqCst), SeqCst);
        fence(SeqCst);
        Guard { rcu: self, slot }
    }

    /// Frees the nodes whose grace period is over.
    fn poll(&self) {
        fence(SeqCst);
        let oldest = self
            .slots
            .iter()
            .map(|slot| slot.load(SeqCst))
            .filter(|&e| e != 0)
            .min();
        let mut pending = self.pending.lock().unwrap();
        pending.retain(|retired| {
            if oldest.is_some_and(|oldest| oldest <= retired.epoch) {
                return true;
            }
            // SAFETY: every reader that could reach the node has left (see `Rcu`).
            unsafe { RetiredNode::free(retired.node) };
            self.freed.fetch_add(1, Relaxed);
            false
        });
    }
}

// SAFETY: nodes are freed by `poll` only after their grace period (see `Rcu`).
unsafe impl Reclaim for Rcu {
    unsafe fn retire(&self, node: NonNull<RetiredNode>) {
        fence(SeqCst);
        let epoch = self.epoch.fetch_add(1, SeqCst);
        self.pending.lock().unwrap().push(Retired { epoch, node });
        self.retired.fetch_add(1, Relaxed);
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STABLE: u64 = 64;
const SPAN: u64 = 0x10_0000;
const STABLE_LEN: u64 = 0x4_0000;
const SLOTS: u64 = 32;
const SLOT: u64 = (SPAN - STABLE_LEN) / SLOTS;
const PAGE: u64 = 0x1000;
/// Values of volatile entries have this bit; stable entry `k` has values `k << 4 | shape`.
const VOLATILE: u64 = 1 << 63;

fn stable(k: u64) -> Range<u64> {
    k * SPAN..k * SPAN + STABLE_LEN
}

fn volatile(k: u64, slot: u64) -> Range<u64> {
    let start = stable(k).end + slot * SLOT;
    start..start + SLOT / 2
}

/// One reader thread's checks; returns the number of lookups.
fn reader(tree: &RangeTree<u64>, rcu: &Rcu, slot: usize, stop: &AtomicBool) -> u64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (slot as u64 + 1));
    let mut lookups = 0;
    while !stop.load(Relaxed) {
        let guard = rcu.read(slot);
        for _ in 0..64 {
            let k = rng.below(STABLE);
            let addr = stable(k).start + rng.below(STABLE_LEN);
            let (range, value) = tree.lookup(addr, &guard).expect("stable address uncovered");
            assert!(
                range.contains(&addr),
                "{range:x?} does not contain {addr:#x}"
            );
            assert_eq!(value >> 4, k, "wrong value class at {addr:#x}");
            assert!(stable(k).start <= range.start && range.end <= stable(k).end);
            // Between stable entries: a volatile entry, or the next stable one.
            let k = rng.below(STABLE - 1);
            let addr = stable(k).end + rng.below(SPAN - STABLE_LEN);
            let (range, value) = tree.next_at_or_after(addr, &guard).expect("nothing after");
            assert!(range.end > addr);
            assert!(
                value & VOLATILE != 0 || value >> 4 == k + 1,
                "{range:x?} {value:#x}"
            );
            lookups += 2;
        }
        // Every stable entry in the window is tiled exactly by its pieces.
        let k = rng.below(STABLE - 1);
        let mut covered = [stable(k).start, stable(k + 1).start];
        let mut last_end = 0;
        for (range, value) in tree.iter_range(k * SPAN..(k + 2) * SPAN, &guard) {
            assert!(
                range.start >= last_end && !range.is_empty(),
                "unsorted at {range:x?}"
            );
            last_end = range.end;
            if value & VOLATILE == 0 {
                let which = &mut covered[((value >> 4) - k) as usize];
                assert_eq!(range.start, *which, "stable entry not tiled: {range:x?}");
                *which = range.end;
            }
        }
        assert_eq!(
            covered,
            [stable(k).end, stable(k + 1).end],
            "stable entries cut short"
        );
        lookups += 1;
        drop(guard);
    }
    lookups
}

#[test]
fn readers_never_see_a_partial_operation() {
    // More threads than CPUs is fine: readers preempted in the middle of a walk are welcome.
    let readers = 4;
    let duration = Duration::from_millis(1500);
    let tree = RangeTree::<u64>::new();
    let rcu = Rcu::new(readers);
    for k in 0..STABLE {
        tree.insert(stable(k), k << 4, &rcu).unwrap();
    }
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (lookups, writes) = thread::scope(|scope| {
        let (tree, rcu, stop) = (&tree, &rcu, &stop);
        let handles: Vec<_> = (0..readers)
            .map(|slot| scope.spawn(move || reader(tree, rcu, slot, stop)))
            .collect();
        // The writer: its own record of the tree's shape.
        let mut rng = Rng(42);
        let mut split = [None::<u64>; STABLE as usize];
        let mut present = vec![[false; SLOTS as usize]; STABLE as usize];
        let mut writes = 0u64;
        while started.elapsed() < duration || writes < 1000 {
            let k = rng.below(STABLE);
            let whole = stable(k);
            match rng.below(4) {
                0 => {
                    // Split at a new point, or merge back: one publish either way.
                    let new = if split[k as usize].is_some() && rng.below(2) == 0 {
                        split[k as usize] = None;
                        vec![(whole.clone(), k << 4)]
                    } else {
                        let at = whole.start + PAGE * (1 + rng.below(STABLE_LEN / PAGE - 1));
                        split[k as usize] = Some(at);
                        vec![(whole.start..at, k << 4 | 1), (at..whole.end, k << 4 | 2)]
                    };
                    tree.replace(whole, &new, rcu, |_, _| ()).unwrap();
                }
                1 => {
                    // A batch of volatile inserts.
                    for _ in 0..8 {
                        let slot = rng.below(SLOTS);
                        if !present[k as usize][slot as usize] {
                            let value = VOLATILE | slot;
                            tree.insert(volatile(k, slot), value, rcu).unwrap();
                            present[k as usize][slot as usize] = true;
                        }
                    }
                }
                2 => {
                    // A few exact removals.
                    for slot in 0..SLOTS {
                        if present[k as usize][slot as usize] && rng.below(3) == 0 {
                            tree.remove(volatile(k, slot), rcu).unwrap();
                            present[k as usize][slot as usize] = false;
                        }
                    }
                }
                _ => {
                    // Unmap a whole volatile region at once.
                    let region = stable(k).end..(k + 1) * SPAN;
                    let mut removed = 0;
                    tree.replace(region, &[], rcu, |_, _| removed += 1).unwrap();
                    let expected = present[k as usize].iter().filter(|&&p| p).count();
                    assert_eq!(removed, expected);
                    present[k as usize] = [false; SLOTS as usize];
                }
            }
            rcu.poll();
            writes += 1;
        }
        stop.store(true, Relaxed);
        let lookups: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let volatile = present.iter().flatten().filter(|&&p| p).count();
        assert_eq!(
            tree.len(),
            STABLE as usize + split.iter().flatten().count() + volatile
        );
        (lookups, writes)
    });
    // Every reader has left: the last grace period is over.
    rcu.poll();
    let (retired, freed) = (rcu.retired.load(Relaxed), rcu.freed.load(Relaxed));
    assert_eq!(retired, freed);
    println!(
        "{readers} readers, {lookups} lookups, {writes} writer operations, {retired} nodes \
         retired and freed, in {:?}",
        started.elapsed()
    );
}
