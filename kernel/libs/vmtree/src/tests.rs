//! Single-threaded tests: the tree against a `BTreeMap` model, with the structural invariants
//! and the retirement of every replaced node checked after each operation.
//!
//! No reader runs during a writer operation here, so the test reclaimers may free retired nodes
//! as soon as an operation returns (or at once), except where a test keeps a reader open.

use super::*;
use node::{BRANCH_CAP, LEAF_CAP};
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use std::vec::Vec;

thread_local! {
    /// Nodes allocated minus nodes freed by this thread.
    static LIVE_NODES: Cell<i64> = const { Cell::new(0) };
    /// Nodes visited by `read::seek`.
    static VISITS: Cell<usize> = const { Cell::new(0) };
}

pub(crate) fn count_node(delta: i64) {
    LIVE_NODES.with(|live| live.set(live.get() + delta));
}

pub(crate) fn count_visit() {
    VISITS.with(|visits| visits.set(visits.get() + 1));
}

fn live_nodes() -> i64 {
    LIVE_NODES.with(Cell::get)
}

/// No RCU here: the tests only read when no node they could reach has been freed.
struct Guard;
// SAFETY: single-threaded tests free retired nodes only when no reader holds a guard or an
// iterator that could reach them.
unsafe impl ReadGuard for Guard {}

/// Frees at once: for tests where no reader is ever open during a writer operation.
struct FreeNow;
// SAFETY: used only where no reader exists while writers run.
unsafe impl Reclaim for FreeNow {
    unsafe fn retire(&self, node: NonNull<RetiredNode>) {
        // SAFETY: no reader can hold the node (see above); the tree retires it once.
        unsafe { RetiredNode::free(node) };
    }
}

/// Queues retired nodes until [`Counting::settle`].
#[derive(Default)]
struct Counting {
    retired: RefCell<Vec<NonNull<RetiredNode>>>,
}

// SAFETY: nodes are freed only by `settle`, called when no reader is open.
unsafe impl Reclaim for Counting {
    unsafe fn retire(&self, node: NonNull<RetiredNode>) {
        // The reclaimer owns `link` now: scribble on it, as call_rcu would.
        // SAFETY: `link` belongs to the reclaimer from `retire` on.
        unsafe { (*node.as_ptr()).link = [usize::MAX; 4] };
        self.retired.borrow_mut().push(node);
    }
}

impl Counting {
    /// Frees the nodes retired so far.
    fn free_all(&self) {
        for node in self.retired.take() {
            // SAFETY: no reader is open; each node is freed once.
            unsafe { RetiredNode::free(node) };
        }
    }

    /// Checks that the nodes retired since the last call are exactly those that were in the
    /// tree (`before`) and are not any more (`after`), each retired once, then frees them.
    fn settle(&self, before: &BTreeSet<usize>, after: &BTreeSet<usize>) {
        let retired = std::mem::take(&mut *self.retired.borrow_mut());
        let set: BTreeSet<usize> = retired.iter().map(|node| node.as_ptr() as usize).collect();
        assert_eq!(set.len(), retired.len(), "a node was retired twice");
        let gone: BTreeSet<usize> = before.difference(after).copied().collect();
        assert_eq!(
            set, gone,
            "retired nodes differ from the nodes that left the tree"
        );
        for node in retired {
            // SAFETY: no reader is open; each node is freed once.
            unsafe { RetiredNode::free(node) };
        }
    }
}

/// What [`check`] found in a tree.
struct Shape {
    /// Every node's address.
    nodes: BTreeSet<usize>,
    entries: Vec<(Range<u64>, u64)>,
    /// Number of levels (0 for an empty tree).
    height: usize,
}

/// Walks the whole tree and checks every structural invariant.
fn check(tree: &RangeTree<u64>) -> Shape {
    let mut shape = Shape {
        nodes: BTreeSet::new(),
        entries: Vec::new(),
        height: 0,
    };
    if let Some(root) = tree.snapshot() {
        // SAFETY: no node of the current version has been freed.
        let level = unsafe { root.level() };
        shape.height = usize::from(level) + 1;
        // SAFETY: as above.
        unsafe { check_node(root, level, true, &mut shape) };
    }
    for pair in shape.entries.windows(2) {
        assert!(
            pair[0].0.end <= pair[1].0.start,
            "entries overlap or are unsorted: {pair:x?}"
        );
    }
    for (range, _) in &shape.entries {
        assert!(!range.is_empty(), "empty entry {range:x?}");
    }
    assert_eq!(shape.entries.len(), tree.len(), "len");
    shape
}

/// Checks the subtree at `node`, expected at `level`, and returns its summary.
///
/// # Safety
///
/// The subtree is allocated.
unsafe fn check_node(
    node: NodePtr,
    level: u8,
    is_root: bool,
    shape: &mut Shape,
) -> (u64, u64, u64) {
    assert!(
        shape.nodes.insert(node.as_ptr() as usize),
        "node reachable twice"
    );
    // SAFETY: the caller guarantees the subtree is allocated.
    unsafe {
        assert_eq!(node.level(), level, "leaves at different depths");
        if level == 0 {
            let body = node.leaf::<u64>();
            let min = if is_root { 1 } else { LEAF_CAP / 2 };
            assert!(
                (min..=LEAF_CAP).contains(&body.len()),
                "leaf with {} entries",
                body.len()
            );
            for i in 0..body.len() {
                let entry = body.item(i);
                shape.entries.push((entry.start..body.key(i), entry.value));
            }
            return body.summary();
        }
        let body = node.branch();
        let min = if is_root { 2 } else { BRANCH_CAP / 2 };
        assert!(
            (min..=BRANCH_CAP).contains(&body.len()),
            "branch with {} children",
            body.len()
        );
        for i in 0..body.len() {
            let child = body.item(i);
            let (low, high, gap) = check_node(child.node, level - 1, false, shape);
            assert_eq!(
                (child.low, body.key(i), child.gap),
                (low, high, gap),
                "stale summary"
            );
            if i > 0 {
                assert!(body.key(i - 1) <= child.low, "children overlap");
            }
        }
        body.summary()
    }
}

/// The tree, a model of it, and the node bookkeeping, checked after every operation.
struct Harness {
    tree: RangeTree<u64>,
    model: BTreeMap<u64, (u64, u64)>,
    reclaim: Counting,
    nodes: BTreeSet<usize>,
    base_live: i64,
}

impl Harness {
    fn new() -> Self {
        Self {
            tree: RangeTree::new(),
            model: BTreeMap::new(),
            reclaim: Counting::default(),
            nodes: BTreeSet::new(),
            base_live: live_nodes(),
        }
    }

    fn model_entries(&self) -> Vec<(Range<u64>, u64)> {
        self.model
            .iter()
            .map(|(&start, &(end, value))| (start..end, value))
            .collect()
    }

    fn model_overlapping(&self, range: &Range<u64>) -> Vec<(Range<u64>, u64)> {
        self.model_entries()
            .into_iter()
            .filter(|(r, _)| r.start < range.end && range.start < r.end && !range.is_empty())
            .collect()
    }

    /// Checks the tree against the model and settles the reclaimer.
    fn after_op(&mut self) {
        let shape = check(&self.tree);
        assert_eq!(shape.entries, self.model_entries());
        self.reclaim.settle(&self.nodes, &shape.nodes);
        self.nodes = shape.nodes;
        assert_eq!(
            live_nodes() - self.base_live,
            self.nodes.len() as i64,
            "leaked nodes"
        );
    }

    fn insert(&mut self, range: Range<u64>, value: u64) -> Result<(), Error> {
        let expected = if range.is_empty() {
            Err(Error::InvalidRange)
        } else if !self.model_overlapping(&range).is_empty() {
            Err(Error::Overlap)
        } else {
            self.model.insert(range.start, (range.end, value));
            Ok(())
        };
        let result = self.tree.insert(range.clone(), value, &self.reclaim);
        assert_eq!(result, expected, "insert {range:x?}");
        self.after_op();
        result
    }

    fn remove(&mut self, range: Range<u64>) -> Option<u64> {
        let expected = match self.model.get(&range.start) {
            Some(&(end, value)) if end == range.end => {
                self.model.remove(&range.start);
                Some(value)
            }
            _ => None,
        };
        let result = self.tree.remove(range.clone(), &self.reclaim);
        assert_eq!(result, expected, "remove {range:x?}");
        self.after_op();
        result
    }

    fn replace(&mut self, range: Range<u64>, new: &[(Range<u64>, u64)]) -> Result<(), Error> {
        let sorted = new.windows(2).all(|pair| pair[0].0.end <= pair[1].0.start);
        let old = self.model_overlapping(&range);
        let expected = if range.is_empty() || new.iter().any(|(r, _)| r.is_empty()) || !sorted {
            Err(Error::InvalidRange)
        } else if new.iter().any(|(r, _)| {
            self.model_overlapping(r)
                .iter()
                .any(|(o, _)| !old.iter().any(|(x, _)| x == o))
        }) {
            Err(Error::Overlap)
        } else {
            for (r, _) in &old {
                self.model.remove(&r.start);
            }
            for (r, value) in new {
                self.model.insert(r.start, (r.end, *value));
            }
            Ok(())
        };
        let root_before = self.tree.root.load(Relaxed);
        let mut removed = Vec::new();
        let result = self
            .tree
            .replace(range.clone(), new, &self.reclaim, |r, value| {
                removed.push((r, value))
            });
        assert_eq!(result, expected, "replace {range:x?} with {new:x?}");
        if result.is_ok() {
            assert_eq!(removed, old, "removed entries");
        } else {
            assert!(removed.is_empty());
        }
        if result.is_err() || (old.is_empty() && new.is_empty()) {
            assert_eq!(
                self.tree.root.load(Relaxed),
                root_before,
                "published without a change"
            );
        }
        self.after_op();
        result
    }

    fn lookups(&self, addr: u64) {
        let containing = self
            .model
            .range(..=addr)
            .next_back()
            .filter(|(_, (end, _))| *end > addr);
        let expected = containing.map(|(&start, &(end, value))| (start..end, value));
        assert_eq!(self.tree.lookup(addr, &Guard), expected, "lookup {addr:#x}");
        let next = self.model_entries().into_iter().find(|(r, _)| r.end > addr);
        assert_eq!(
            self.tree.next_at_or_after(addr, &Guard),
            next,
            "next {addr:#x}"
        );
    }

    fn iter_range(&self, range: Range<u64>) {
        let got: Vec<_> = self.tree.iter_range(range.clone(), &Guard).collect();
        assert_eq!(got, self.model_overlapping(&range), "iter_range {range:x?}");
    }

    fn gap(&self, within: Range<u64>, size: u64, align: u64) {
        let got = self
            .tree
            .find_gap_top_down(within.clone(), size, align, &Guard);
        assert_eq!(
            got,
            self.model_gap(&within, size, align),
            "gap {within:x?} {size:#x} {align:#x}"
        );
    }

    /// Brute force over every candidate start, highest first (small address spaces only).
    fn model_gap(&self, within: &Range<u64>, size: u64, align: u64) -> Option<u64> {
        if size == 0 || align == 0 || within.end < within.start.checked_add(size)? {
            return None;
        }
        let free = |s: u64| {
            let below = self.model.range(..s + size).next_back();
            below.is_none_or(|(_, &(end, _))| end <= s)
        };
        (within.start..=within.end - size)
            .rev()
            .find(|&s| s % align == 0 && free(s))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: no reader is open.
            unsafe { self.tree.destroy() };
            assert!(self.tree.is_empty() && self.tree.snapshot().is_none());
            assert_eq!(live_nodes(), self.base_live, "nodes leaked at destroy");
        }
    }
}

#[test]
fn empty_tree() {
    let tree = RangeTree::<u64>::new();
    assert!(tree.is_empty());
    assert_eq!(tree.lookup(0, &Guard), None);
    assert_eq!(tree.next_at_or_after(0, &Guard), None);
    assert_eq!(tree.iter(&Guard).count(), 0);
    assert_eq!(
        tree.find_gap_top_down(0..u64::MAX, 0x1000, 0x1000, &Guard),
        Some(u64::MAX - 0x1fff)
    );
    assert_eq!(tree.remove(0..1, &FreeNow), None);
    assert_eq!(
        tree.replace(0..10, &[], &FreeNow, |_, _| unreachable!()),
        Ok(())
    );
    assert!(format!("{tree:?}").contains("len: 0"));
}

#[test]
fn insert_lookup_and_errors() {
    let mut h = Harness::new();
    assert_eq!(h.insert(0x1000..0x3000, 1), Ok(()));
    assert_eq!(
        h.insert(0x3000..0x4000, 2),
        Ok(()),
        "touching entries do not overlap"
    );
    assert_eq!(h.insert(0..0x1000, 3), Ok(()));
    assert_eq!(h.insert(0x2fff..0x3001, 4), Err(Error::Overlap));
    assert_eq!(h.insert(0..u64::MAX, 4), Err(Error::Overlap));
    assert_eq!(h.insert(0x5000..0x5000, 4), Err(Error::InvalidRange));
    #[expect(clippy::reversed_empty_ranges, reason = "testing the check")]
    let backwards = 0x6000..0x5000;
    assert_eq!(h.insert(backwards, 4), Err(Error::InvalidRange));
    assert_eq!(h.insert(u64::MAX - 1..u64::MAX, 5), Ok(()));
    for addr in [
        0,
        0xfff,
        0x1000,
        0x2fff,
        0x3000,
        0x3fff,
        0x4000,
        u64::MAX - 2,
        u64::MAX - 1,
        u64::MAX,
    ] {
        h.lookups(addr);
    }
    assert_eq!(h.tree.len(), 4);
    assert_eq!(Error::Overlap.to_string(), "overlaps an existing entry");
}

#[test]
fn remove_exact_only() {
    let mut h = Harness::new();
    h.insert(0x1000..0x3000, 1).unwrap();
    assert_eq!(h.remove(0x1000..0x2000), None);
    assert_eq!(h.remove(0x0..0x3000), None);
    assert_eq!(h.remove(0x1000..0x1000), None);
    assert_eq!(h.remove(0x1000..0x3000), Some(1));
    assert_eq!(h.remove(0x1000..0x3000), None);
    assert!(h.tree.is_empty());
}

#[test]
fn replace_splits_merges_and_unmaps() {
    let mut h = Harness::new();
    h.insert(0x1000..0x9000, 1).unwrap();
    h.insert(0xa000..0xb000, 2).unwrap();
    // Split in two, same value (mprotect of the upper half would change it).
    h.replace(0x1000..0x9000, &[(0x1000..0x4000, 1), (0x4000..0x9000, 7)])
        .unwrap();
    // Merge back.
    h.replace(0x1000..0x9000, &[(0x1000..0x9000, 1)]).unwrap();
    // munmap of the middle: the pieces extend beyond the range into the removed entry.
    h.replace(0x3000..0x5000, &[(0x1000..0x3000, 1), (0x5000..0x9000, 1)])
        .unwrap();
    // munmap across entries and a hole, keeping nothing.
    h.replace(0x2000..0xa800, &[]).unwrap();
    h.lookups(0x1000);
    h.lookups(0xa000);
    // A new entry may not overlap an entry that stays.
    assert_eq!(h.replace(0x1000..0x2000, &[(0x1000..0x2001, 3)]), Ok(()));
    assert_eq!(h.replace(0x1000..0x2000, &[(0x1000..0x2800, 3)]), Ok(()));
    h.insert(0x2800..0x3000, 4).unwrap();
    assert_eq!(
        h.replace(0x1000..0x2000, &[(0x1000..0x2801, 3)]),
        Err(Error::Overlap)
    );
    assert_eq!(
        h.replace(0x1000..0x2000, &[(0x1000..0x1000, 3)]),
        Err(Error::InvalidRange)
    );
    assert_eq!(h.replace(0x1000..0x1000, &[]), Err(Error::InvalidRange));
    let unsorted = [(0x1800..0x2000, 3), (0x1000..0x1800, 3)];
    assert_eq!(
        h.replace(0x1000..0x2000, &unsorted),
        Err(Error::InvalidRange)
    );
    // Nothing to remove or add: no publish.
    assert_eq!(h.replace(0x5000..0x6000, &[]), Ok(()));
    // Insert through replace into free space.
    assert_eq!(h.replace(0x5000..0x6000, &[(0x5000..0x6000, 5)]), Ok(()));
}

#[test]
#[cfg_attr(miri, ignore = "too slow under Miri; covered natively")]
fn replace_many_entries_at_once() {
    let mut h = Harness::new();
    for i in 0..500 {
        h.insert(i * 0x2000..i * 0x2000 + 0x1000, i).unwrap();
    }
    // Remove 300 entries spanning many leaves and replace them by 40.
    let new: Vec<_> = (0..40)
        .map(|i| {
            (
                0x100_000 + i * 0x8000..0x100_000 + i * 0x8000 + 0x4000,
                1000 + i,
            )
        })
        .collect();
    h.replace(0x100_000..0x100_000 + 300 * 0x2000, &new)
        .unwrap();
    h.iter_range(0..u64::MAX);
    h.replace(0..u64::MAX, &[(0..u64::MAX, 9)]).unwrap();
    assert_eq!(h.tree.len(), 1);
}

/// A second writer while one runs panics; the first one is abandoned without a trace.
#[test]
fn nested_writer_panics() {
    let tree = RangeTree::<u64>::new();
    for i in 0..40 {
        tree.insert(i * 10..i * 10 + 5, i, &FreeNow).unwrap();
    }
    let before = live_nodes();
    let mut calls = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tree.replace(0..400, &[(0..400, 99)], &FreeNow, |_, _| {
            calls += 1;
            // By the second call the operation has copied nodes.
            if calls == 2 {
                tree.insert(500..510, 4, &FreeNow).unwrap();
            }
        })
    }));
    let message = *result.unwrap_err().downcast::<&str>().unwrap();
    assert!(message.contains("concurrent writers"), "{message}");
    // Nothing was published, the copies were freed and the flag released.
    assert_eq!(live_nodes(), before);
    assert_eq!(tree.iter(&Guard).count(), 40);
    tree.insert(500..510, 4, &FreeNow).unwrap();
}

/// An iterator keeps walking the version it started on while writers replace it.
#[test]
fn iterator_sees_one_version() {
    let tree = RangeTree::<u64>::new();
    for i in 0..100 {
        tree.insert(i * 0x100..i * 0x100 + 0x80, i, &FreeNow)
            .unwrap();
    }
    let before: Vec<_> = tree.iter(&Guard).collect();
    let reclaim = Counting::default();
    let mut iter = tree.iter(&Guard);
    let first: Vec<_> = iter.by_ref().take(10).collect();
    // `reclaim` frees nothing while the iterator is open.
    for i in 0..100 {
        tree.remove(i * 0x100..i * 0x100 + 0x80, &reclaim).unwrap();
        tree.insert(i * 0x100..i * 0x100 + 0x40, 1000 + i, &reclaim)
            .unwrap();
    }
    let rest: Vec<_> = iter.collect();
    assert_eq!([first, rest].concat(), before);
    reclaim.free_all();
    let after: Vec<_> = (0..100)
        .map(|i| (i * 0x100..i * 0x100 + 0x40, 1000 + i))
        .collect();
    assert_eq!(check(&tree).entries, after);
}

#[test]
fn gap_search() {
    let mut h = Harness::new();
    h.insert(0x10_000..0x20_000, 1).unwrap();
    h.insert(0x30_000..0x40_000, 2).unwrap();
    h.insert(0x41_000..0x50_000, 3).unwrap();
    let tree = &h.tree;
    let gap = |within: Range<u64>, size, align| tree.find_gap_top_down(within, size, align, &Guard);
    assert_eq!(gap(0..0x60_000, 0x1000, 0x1000), Some(0x5f_000));
    assert_eq!(gap(0..0x50_000, 0x1000, 0x1000), Some(0x40_000));
    assert_eq!(gap(0..0x50_000, 0x2000, 0x1000), Some(0x2e_000));
    assert_eq!(gap(0..0x50_000, 0x2000, 0x8000), Some(0x28_000));
    assert_eq!(gap(0..0x50_000, 0x10_000, 0x1000), Some(0x20_000));
    assert_eq!(gap(0..0x50_000, 0x10_001, 0x1000), None);
    assert_eq!(gap(0..0x20_000, 0x10_000, 0x1000), Some(0));
    assert_eq!(gap(0x1000..0x20_000, 0x10_000, 0x1000), None);
    assert_eq!(gap(0x1000..0x50_000, 0x3000, 0x3000), Some(0x2d_000));
    assert_eq!(gap(0x21_000..0x2f_000, 0x1000, 1), Some(0x2e_000));
    assert_eq!(gap(0x12_000..0x1f_000, 0x1000, 1), None);
    assert_eq!(gap(0..u64::MAX, 0x1000, 0x1000), Some(u64::MAX - 0x1fff));
    assert_eq!(gap(0..u64::MAX, u64::MAX - 0x50_000, 1), Some(0x50_000));
    assert_eq!(gap(0..u64::MAX, 0, 1), None);
    assert_eq!(gap(0..u64::MAX, 1, 0), None);
    assert_eq!(gap(5..5, 1, 1), None);
    assert_eq!(gap(u64::MAX - 1..u64::MAX, 2, 1), None);
}

/// Inserts and removes thousands of entries in a scrambled order, checking everything after
/// each step: the tree grows to several levels and shrinks back to nothing.
#[test]
#[cfg_attr(miri, ignore = "too slow under Miri; covered natively")]
fn grow_and_shrink() {
    let n: u64 = if cfg!(miri) { 150 } else { 3000 };
    let mut h = Harness::new();
    let scrambled = |i: u64| (i * 7919) % n;
    let mut max_height = 0;
    for i in 0..n {
        let k = scrambled(i);
        h.insert(k * 0x10..k * 0x10 + 8, k).unwrap();
        max_height = max_height.max(check(&h.tree).height);
    }
    assert!(
        max_height >= if cfg!(miri) { 2 } else { 4 },
        "height {max_height}"
    );
    for addr in (0..n * 0x10).step_by(5) {
        h.lookups(addr);
    }
    for i in 0..n {
        let k = scrambled(i * 7 % n);
        assert_eq!(h.remove(k * 0x10..k * 0x10 + 8), Some(k));
    }
    assert!(h.tree.is_empty());
}

/// 100,000 entries: lookups stay logarithmic.
#[test]
#[cfg_attr(miri, ignore = "too slow under Miri; covered natively")]
fn hundred_thousand_entries() {
    let n: u64 = if cfg!(miri) { 2_000 } else { 100_000 };
    let started = Instant::now();
    let base_live = live_nodes();
    let tree = RangeTree::<u64>::new();
    let range = |k: u64| k * 0x4000..k * 0x4000 + 0x1000 * (1 + k % 3);
    for i in 0..n {
        let k = (i * 40_503) % n;
        tree.insert(range(k), k, &FreeNow).unwrap();
    }
    let inserted = started.elapsed();
    let shape = check(&tree);
    assert_eq!(shape.entries.len() as u64, n);
    assert_eq!(live_nodes() - base_live, shape.nodes.len() as i64);
    let bound = 2.0 * (n as f64).log(8.0) + 2.0;
    assert!(
        (shape.height as f64) <= bound,
        "height {} > {bound}",
        shape.height
    );
    let mut max_visits = 0;
    for k in (0..n).step_by(if cfg!(miri) { 97 } else { 1 }) {
        let addr = range(k).start + 0x800;
        VISITS.with(|visits| visits.set(0));
        assert_eq!(tree.lookup(addr, &Guard), Some((range(k), k)));
        let visits = VISITS.with(Cell::get);
        assert_eq!(visits, shape.height);
        max_visits = max_visits.max(visits);
        assert_eq!(tree.lookup(range(k).end, &Guard), None);
    }
    let looked_up = started.elapsed();
    // Gaps of 0x3000 follow the entries `k` with `k % 3 == 0`, and none is larger.
    let below_last = 0..range(n - 1).start;
    let k = (n - 2) - (n - 2) % 3;
    let found = tree.find_gap_top_down(below_last.clone(), 0x3000, 0x1000, &Guard);
    assert_eq!(found, Some(range(k).end));
    assert_eq!(tree.find_gap_top_down(below_last, 0x3001, 1, &Guard), None);
    let top = tree.find_gap_top_down(0..u64::MAX, 0x4000, 0x1000, &Guard);
    assert_eq!(top, Some(u64::MAX - 0x4fff));
    // Split every third entry in two, then remove every other entry.
    for k in (0..n).filter(|k| k % 3 == 2) {
        let r = range(k);
        let mid = r.start + 0x1000;
        tree.replace(
            r.clone(),
            &[(r.start..mid, k), (mid..r.end, k)],
            &FreeNow,
            |_, _| (),
        )
        .unwrap();
    }
    for k in (0..n).step_by(2) {
        assert_eq!(tree.remove(range(k), &FreeNow), (k % 3 != 2).then_some(k));
    }
    let shape = check(&tree);
    assert_eq!(tree.iter(&Guard).count(), shape.entries.len());
    drop(tree);
    assert_eq!(live_nodes(), base_live);
    std::eprintln!(
        "{n} entries, height {}, {max_visits} nodes per lookup (bound {bound:.1}): \
         insert {inserted:?}, lookups {:?}, total {:?}",
        shape.height,
        looked_up - inserted,
        started.elapsed()
    );
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Insert(Range<u64>, u64),
    Remove(Range<u64>),
    /// Removes the entry at this index of the model, if any.
    RemoveExisting(usize),
    /// Splits the entry at this index of the model at this offset.
    SplitExisting(usize, u64),
    Replace(Range<u64>, Vec<(Range<u64>, u64)>),
    Lookup(u64),
    Iter(Range<u64>),
    Gap(Range<u64>, u64, u64),
}

/// Addresses of the property test: small enough to collide often.
const SPACE: u64 = 2048;

fn range_strategy(max_len: u64) -> impl Strategy<Value = Range<u64>> {
    (0..SPACE, 0..max_len).prop_map(|(start, len)| start..start + len)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let pieces = prop::collection::vec((0..8u64, 0..24u64, 0..4u64), 0..4);
    prop_oneof![
        8 => (range_strategy(12), 0..4u64).prop_map(|(r, v)| Op::Insert(r, v)),
        1 => range_strategy(12).prop_map(Op::Remove),
        2 => any::<usize>().prop_map(Op::RemoveExisting),
        2 => (any::<usize>(), 1..12u64).prop_map(|(i, at)| Op::SplitExisting(i, at)),
        2 => (range_strategy(64), pieces, any::<bool>()).prop_map(|(range, pieces, shuffle)| {
            let mut at = range.start.saturating_sub(16);
            let mut new: Vec<_> = pieces
                .into_iter()
                .map(|(skip, len, value)| {
                    let r = at + skip..at + skip + len;
                    at = r.end;
                    (r, value)
                })
                .collect();
            if shuffle {
                new.reverse();
            }
            Op::Replace(range, new)
        }),
        2 => (0..SPACE + 16).prop_map(Op::Lookup),
        1 => range_strategy(200).prop_map(Op::Iter),
        1 => (range_strategy(SPACE), 1..40u64, 1..9u64).prop_map(|(w, s, a)| Op::Gap(w, s, a)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_model(ops in prop::collection::vec(op_strategy(), 1..if cfg!(miri) { 40 } else { 600 })) {
        let mut h = Harness::new();
        for op in ops {
            match op {
                Op::Insert(range, value) => {
                    let _ = h.insert(range, value);
                }
                Op::Remove(range) => {
                    h.remove(range);
                }
                Op::RemoveExisting(i) => {
                    if let Some((range, _)) = h.model_entries().get(i % h.model.len().max(1)).cloned() {
                        prop_assert!(h.remove(range).is_some());
                    }
                }
                Op::SplitExisting(i, at) => {
                    if let Some((r, v)) = h.model_entries().get(i % h.model.len().max(1)).cloned() {
                        let mid = (r.start + at).min(r.end - 1).max(r.start + 1);
                        if mid < r.end {
                            prop_assert!(h.replace(r.clone(), &[(r.start..mid, v), (mid..r.end, v + 1)]).is_ok());
                        }
                    }
                }
                Op::Replace(range, new) => {
                    let _ = h.replace(range, &new);
                }
                Op::Lookup(addr) => h.lookups(addr),
                Op::Iter(range) => h.iter_range(range),
                Op::Gap(within, size, align) => h.gap(within, size, align),
            }
        }
        h.iter_range(0..u64::MAX);
        h.gap(0..SPACE + 64, 1, 1);
    }
}
