//! Writer transactions: build the next version of the tree out of sight of readers, then publish
//! it with one store.
//!
//! A [`Txn`] holds the tree's writer flag for its whole life (a second writer panics) and works
//! on a private root. Nodes it allocates carry its generation number: those are *fresh*, owned
//! by the transaction and changed in place. Any other node is *published*: readers may be walking
//! it, so it is never written. Changing one means copying it ([`Txn::make_mut`]); the copy is
//! fresh, its parent (made fresh first, on the way down) now points to it, and the original is
//! queued for retirement. A published node that drops out of the tree (merged into a sibling,
//! an emptied root) is queued too; a fresh node that drops out was never seen and is freed at
//! once. Every path from the root to a changed node is therefore fresh, and each published node
//! is queued at most once: after the first copy nothing in the new version points to it.
//!
//! [`Txn::commit`] stores the new root with Release, then hands the queue to the reclaimer: the
//! queued nodes are exactly the published nodes that the new version no longer reaches. A
//! transaction dropped without committing (a panic in the middle of an operation) publishes
//! nothing, forgets the queue (the queued nodes are still in the published version) and frees
//! its fresh nodes.

use crate::node::{BRANCH_CAP, BranchBody, Child, Entry, Item, LEAF_CAP, LeafBody, NodePtr};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::{RangeTree, Reclaim, RetiredNode, read};
use core::ops::Range;
use core::ptr;

/// The writer's state between operations: touched only by the writer holding the flag.
pub(crate) struct WriterState {
    /// The generation of the last transaction.
    generation: u64,
    /// Published nodes replaced by the running transaction; empty between transactions (the
    /// allocation is kept for the next one).
    retired: alloc::vec::Vec<NodePtr>,
}

impl WriterState {
    pub(crate) const fn new() -> Self {
        Self {
            generation: 0,
            retired: alloc::vec::Vec::new(),
        }
    }
}

/// One writer operation in progress.
///
/// Invariant: every node reachable from `root` is either fresh (generation `generation`, reachable
/// only from here) or published and unchanged; fresh nodes are reachable from `root` only through
/// fresh nodes.
pub(crate) struct Txn<'t, V: Copy + Send + Sync> {
    tree: &'t RangeTree<V>,
    state: &'t mut WriterState,
    generation: u64,
    root: Option<NodePtr>,
    len: usize,
    /// Set by `commit`: `root` is the published root now.
    published: bool,
}

impl<'t, V: Copy + Send + Sync> Txn<'t, V> {
    /// Takes the tree's writer flag and starts from the published version.
    ///
    /// # Panics
    ///
    /// If another writer is running on this tree: the caller broke the serialisation contract.
    pub(crate) fn begin(tree: &'t RangeTree<V>) -> Self {
        if tree
            .writing
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_err()
        {
            panic!("vmtree: concurrent writers on one tree (the caller must serialise writers)");
        }
        // SAFETY: the flag, taken with Acquire after the previous writer released it, makes this
        // the only user of the writer state until `drop` releases it.
        let state = unsafe { &mut *tree.writer.get() };
        state.generation += 1;
        Self {
            tree,
            generation: state.generation,
            state,
            root: NodePtr::new(tree.root.load(Acquire)),
            len: tree.len.load(Relaxed),
            published: false,
        }
    }

    /// The first entry of this version that overlaps `range`.
    pub(crate) fn first_overlap(&self, range: &Range<u64>) -> Option<(Range<u64>, V)> {
        // SAFETY: the writer's version stays allocated and unchanged while it reads.
        unsafe { read::first_overlap::<V>(self.root, range) }
    }

    /// Publishes this version and retires the nodes it replaced.
    pub(crate) fn commit<R: Reclaim + ?Sized>(mut self, reclaim: &R) {
        let root = self.root.map_or(ptr::null_mut(), NodePtr::as_ptr);
        // Release: a reader that loads this root sees every node below it fully written.
        self.tree.root.store(root, Release);
        self.tree.len.store(self.len, Relaxed);
        self.published = true;
        for node in self.state.retired.drain(..) {
            // SAFETY: the node was published, the root just stored no longer reaches it, and the
            // queue holds it once (see the module documentation).
            unsafe { reclaim.retire(node.retired()) };
        }
    }

    /// Adds the entry `range -> value`, which overlaps none of this version's entries.
    pub(crate) fn insert(&mut self, range: Range<u64>, value: V) {
        let entry = Entry {
            start: range.start,
            value,
        };
        self.len += 1;
        let Some(root) = self.root else {
            let mut body = LeafBody::new();
            body.insert(0, range.end, entry);
            self.root = Some(NodePtr::alloc(0, self.generation, body));
            return;
        };
        // SAFETY: `root` is this version's root.
        let (root, split) = unsafe { self.insert_below(root, range.end, entry) };
        self.root = Some(match split {
            None => root,
            Some(right) => {
                let mut body = BranchBody::new();
                for (i, node) in [root, right].into_iter().enumerate() {
                    // SAFETY: both are fresh, non-empty nodes.
                    let (key, child) = unsafe { node.as_child::<V>() };
                    body.insert(i, key, child);
                }
                // SAFETY: `root` is fresh.
                let level = unsafe { root.level() } + 1;
                NodePtr::alloc(level, self.generation, body)
            }
        });
    }

    /// Inserts the entry `[entry.start, end)` below `node`. Returns the fresh version of `node`
    /// and, if it had to split, its new right sibling.
    ///
    /// # Safety
    ///
    /// `node` is in this version.
    unsafe fn insert_below(
        &mut self,
        node: NodePtr,
        end: u64,
        entry: Entry<V>,
    ) -> (NodePtr, Option<NodePtr>) {
        // SAFETY: `node` is in this version (caller); `make_mut` returns a fresh node whose body
        // only this function touches until it returns.
        unsafe {
            let level = node.level();
            if level == 0 {
                let node = self.make_mut::<Entry<V>, LEAF_CAP>(node);
                let body = node.body_mut::<Entry<V>, LEAF_CAP>();
                let i = body.first_above(entry.start);
                return (node, self.insert_slot(level, body, i, end, entry));
            }
            let node = self.make_mut::<Child, BRANCH_CAP>(node);
            let body = node.body_mut::<Child, BRANCH_CAP>();
            // The first child that ends above the new start (no entry there overlaps the new
            // one, so the new entry belongs before its first), or else the last child.
            let i = body.first_above(entry.start).min(body.len() - 1);
            let (child, split) = self.insert_below(body.item(i).node, end, entry);
            let (key, item) = child.as_child::<V>();
            body.set(i, key, item);
            let right = split.and_then(|right| {
                let (key, item) = right.as_child::<V>();
                self.insert_slot(level, body, i + 1, key, item)
            });
            (node, right)
        }
    }

    /// Inserts a slot at `i` of `body`, the body of a fresh node of `level`. A full node is
    /// split in half first; the new right half is returned.
    fn insert_slot<T: Item, const N: usize>(
        &mut self,
        level: u8,
        body: &mut crate::node::Body<T, N>,
        i: usize,
        key: u64,
        item: T,
    ) -> Option<NodePtr> {
        if body.len() < N {
            body.insert(i, key, item);
            return None;
        }
        let mut right = body.split_off(N / 2);
        if i <= N / 2 {
            body.insert(i, key, item);
        } else {
            right.insert(i - N / 2, key, item);
        }
        Some(NodePtr::alloc(level, self.generation, right))
    }

    /// Removes the entry that starts at `start`, which must exist, and returns its value.
    pub(crate) fn remove(&mut self, start: u64) -> V {
        let root = self.root.expect("vmtree: removing from an empty tree");
        // SAFETY: `root` is this version's root; the new root is fresh.
        let (root, value) = unsafe { self.remove_below(root, start) };
        // SAFETY: `root` is fresh; its only child, if it is a branch with one, is in this version.
        self.root = unsafe {
            if root.level() == 0 {
                (root.leaf::<V>().len() > 0).then_some(root)
            } else if root.branch().len() == 1 {
                Some(root.branch().item(0).node)
            } else {
                Some(root)
            }
        };
        if self.root != Some(root) {
            // SAFETY: `root` is no longer in this version.
            unsafe { self.discard(root) };
        }
        self.len -= 1;
        value
    }

    /// Removes the entry that starts at `start` from below `node`. Returns the fresh version of
    /// `node` (which may have too few slots now: its parent fixes that) and the entry's value.
    ///
    /// # Safety
    ///
    /// `node` is in this version and has the entry below it.
    unsafe fn remove_below(&mut self, node: NodePtr, start: u64) -> (NodePtr, V) {
        // SAFETY: as in `insert_below`.
        unsafe {
            let level = node.level();
            if level == 0 {
                let node = self.make_mut::<Entry<V>, LEAF_CAP>(node);
                let body = node.body_mut::<Entry<V>, LEAF_CAP>();
                let (_, entry) = body.remove(body.first_above(start));
                debug_assert_eq!(entry.start, start);
                return (node, entry.value);
            }
            let node = self.make_mut::<Child, BRANCH_CAP>(node);
            let body = node.body_mut::<Child, BRANCH_CAP>();
            let i = body.first_above(start);
            let (child, value) = self.remove_below(body.item(i).node, start);
            let (key, item) = child.as_child::<V>();
            body.set(i, key, item);
            let (len, min) = if level == 1 {
                (child.leaf::<V>().len(), LEAF_CAP / 2)
            } else {
                (child.branch().len(), BRANCH_CAP / 2)
            };
            if len < min {
                // Every branch but the root has at least two children, and so has a root whose
                // child could shrink this far.
                let left = if i + 1 < body.len() { i } else { i - 1 };
                if level == 1 {
                    self.join::<Entry<V>, LEAF_CAP>(body, left);
                } else {
                    self.join::<Child, BRANCH_CAP>(body, left);
                }
            }
            (node, value)
        }
    }

    /// Merges children `left` and `left + 1` of `parent` (the body of a fresh branch) into one
    /// node, or, when their slots do not fit in one, shares them out evenly.
    ///
    /// # Safety
    ///
    /// The children are in this version and have slots of type `T`, `N` at most.
    unsafe fn join<T: Item, const N: usize>(&mut self, parent: &mut BranchBody, left: usize) {
        // SAFETY: the children are in this version (caller); `make_mut` returns fresh nodes that
        // only this function touches.
        unsafe {
            let (l, r) = (parent.item(left).node, parent.item(left + 1).node);
            let l = self.make_mut::<T, N>(l);
            let l_body = l.body_mut::<T, N>();
            if l_body.len() + r.body::<T, N>().len() <= N {
                l_body.append(r.body::<T, N>());
                self.discard(r);
                parent.remove(left + 1);
            } else {
                let r = self.make_mut::<T, N>(r);
                l_body.share(r.body_mut::<T, N>());
                let (key, item) = r.as_child::<V>();
                parent.set(left + 1, key, item);
            }
            let (key, item) = l.as_child::<V>();
            parent.set(left, key, item);
        }
    }

    /// A writable version of `node`: itself if fresh, else a fresh copy, the original being
    /// queued for retirement.
    ///
    /// # Safety
    ///
    /// `node` is in this version and has slots of type `T`, `N` at most; the caller replaces it
    /// with the result.
    unsafe fn make_mut<T: Item, const N: usize>(&mut self, node: NodePtr) -> NodePtr {
        // SAFETY: `node` is live (caller) and, if published, never written.
        unsafe {
            if node.generation() == self.generation {
                return node;
            }
            let copy = NodePtr::alloc(node.level(), self.generation, *node.body::<T, N>());
            self.state.retired.push(node);
            copy
        }
    }

    /// Frees the fresh nodes at and below `node`.
    ///
    /// # Safety
    ///
    /// The transaction is abandoned, and `node` is in its version.
    unsafe fn free_fresh(&mut self, node: NodePtr) {
        // SAFETY: fresh nodes are reachable only through fresh nodes, and nobody but this
        // transaction can reach them; children are read before their parent is freed.
        unsafe {
            if node.generation() != self.generation {
                return;
            }
            if node.level() > 0 {
                let body = node.branch();
                for i in 0..body.len() {
                    self.free_fresh(body.item(i).node);
                }
            }
            RetiredNode::free(node.retired());
        }
    }

    /// Drops `node` out of the tree: frees it now if fresh, else queues it for retirement.
    ///
    /// # Safety
    ///
    /// `node` was in this version and nothing in it points to `node` any more. Its children,
    /// if any, have been moved elsewhere.
    unsafe fn discard(&mut self, node: NodePtr) {
        // SAFETY: a fresh node was never published, so nobody else can reach it.
        unsafe {
            if node.generation() == self.generation {
                RetiredNode::free(node.retired());
            } else {
                self.state.retired.push(node);
            }
        }
    }
}

impl<V: Copy + Send + Sync> Drop for Txn<'_, V> {
    fn drop(&mut self) {
        if !self.published {
            // Abandoned (a panic in `replace`'s callback, between two steps): the queued nodes
            // are still in the published version; the fresh ones are freed.
            self.state.retired.clear();
            if let Some(root) = self.root {
                // SAFETY: the fresh nodes of this version were never published.
                unsafe { self.free_fresh(root) };
            }
        }
        self.tree.writing.store(false, Release);
    }
}
