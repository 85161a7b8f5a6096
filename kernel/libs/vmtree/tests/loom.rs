//! Loom models of the publication and reclamation protocol: a reader walks the tree while a
//! writer publishes one operation and retires the nodes it replaced, freeing them after a
//! loom-modelled grace period.
//!
//! Node contents live in loom cells under `--cfg loom`, so loom also checks that every node a
//! reader reads was written before the Release store of the root that the reader's Acquire load
//! found (a causality violation otherwise).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p vmtree --release --test loom`.
#![cfg(loom)]

use loom::sync::atomic::Ordering::{Release, SeqCst};
use loom::sync::atomic::{AtomicUsize, fence};
use loom::sync::{Arc, Mutex};
use loom::thread;
use std::ops::Range;
use std::ptr::NonNull;
use vmtree::{RangeTree, ReadGuard, Reclaim, RetiredNode};

struct Retired(NonNull<RetiredNode>);

// SAFETY: a retired node is touched only by the reclaimer.
unsafe impl Send for Retired {}

/// The smallest RCU: a count of readers inside a critical section, and a grace period that
/// waits for it to drop to zero. Both sides issue a SeqCst fence between their store and their
/// load (the reader: count, then root; the writer: root, then count), so either the writer sees
/// the reader or the reader sees the new root.
struct Rcu {
    readers: AtomicUsize,
    pending: Mutex<Vec<Retired>>,
}

struct Guard<'a>(&'a Rcu);

// SAFETY: a `Guard` exists only while its reader is counted.
unsafe impl ReadGuard for Guard<'_> {}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Release);
    }
}

impl Rcu {
    fn new() -> Self {
        Self {
            readers: AtomicUsize::new(0),
            pending: Mutex::new(Vec::new()),
        }
    }

    fn read(&self) -> Guard<'_> {
        self.readers.fetch_add(1, SeqCst);
        fence(SeqCst);
        Guard(self)
    }

    /// Waits for the readers that might see the retired nodes, then frees them.
    fn synchronize(&self) {
        fence(SeqCst);
        while self.readers.load(SeqCst) != 0 {
            thread::yield_now();
        }
        for Retired(node) in self.pending.lock().unwrap().drain(..) {
            // SAFETY: no reader that could reach the node is left.
            unsafe { RetiredNode::free(node) };
        }
    }
}

// SAFETY: `synchronize` frees only after the grace period.
unsafe impl Reclaim for Rcu {
    unsafe fn retire(&self, node: NonNull<RetiredNode>) {
        self.pending.lock().unwrap().push(Retired(node));
    }
}

type Entries = Vec<(Range<u64>, u64)>;

/// Builds a tree with `before`, then lets a reader iterate it while the writer applies
/// `replace(range, new)`; the reader must see `before` or `after` exactly.
fn model(before: Entries, range: Range<u64>, new: Entries, after: Entries) {
    loom::model(move || {
        let tree = Arc::new(RangeTree::<u64>::new());
        let rcu = Arc::new(Rcu::new());
        for (r, value) in &before {
            tree.insert(r.clone(), *value, &*rcu).unwrap();
        }
        rcu.synchronize();
        let reader = {
            let (tree, rcu) = (tree.clone(), rcu.clone());
            let (before, after) = (before.clone(), after.clone());
            thread::spawn(move || {
                let guard = rcu.read();
                let seen: Entries = tree.iter(&guard).collect();
                assert!(seen == before || seen == after, "partial state {seen:x?}");
            })
        };
        tree.replace(range.clone(), &new, &*rcu, |_, _| ()).unwrap();
        rcu.synchronize();
        reader.join().unwrap();
        let guard = rcu.read();
        assert_eq!(tree.iter(&guard).collect::<Entries>(), after);
    });
}

/// A one-leaf tree: the leaf is copied and retired.
#[test]
fn split_in_one_leaf() {
    model(
        vec![(0..10, 1), (20..30, 2)],
        0..10,
        vec![(0..4, 3), (4..10, 4)],
        vec![(0..4, 3), (4..10, 4), (20..30, 2)],
    );
}

/// A two-level tree (one root, two leaves): the root and one leaf are copied and retired, the
/// other leaf is shared by both versions.
#[test]
fn replace_in_two_levels() {
    let before: Entries = (0..17).map(|i| (i * 10..i * 10 + 5, i)).collect();
    let mut after = before.clone();
    after[16] = (160..168, 99);
    model(before, 160..165, vec![(160..168, 99)], after);
}

/// A removal that empties a leaf below half, merges it with its sibling and collapses the root:
/// three nodes retired at once.
#[test]
fn merge_collapses_the_root() {
    let before: Entries = (0..17).map(|i| (i * 10..i * 10 + 5, i)).collect();
    let after = before[1..].to_vec();
    model(before, 0..5, vec![], after);
}
