//! The VMA tree: an RCU-safe map from disjoint ranges of user addresses to values, one per
//! address space.
//!
//! Readers walk it with no lock inside an RCU read-side critical section; writers, serialised
//! by the caller (the address space's `mmap_lock`), build the changed part of the next version
//! beside the current one and publish it with one store, so a reader sees each writer operation
//! entirely or not at all.
//!
//! # Structure
//!
//! A B-tree of immutable nodes, copied on write. Leaves hold up to 16 entries `[start, end) ->
//! value`; branches hold up to 8 children. Every slot is keyed by its highest end (a pivot), and
//! a branch slot also records its child's lowest start and the largest gap between consecutive
//! entries inside it, which makes the free-gap search logarithmic too. Invariants:
//!
//! * entries are non-empty, sorted and pairwise disjoint; every slot's key is its subtree's
//!   highest end and the recorded summaries are exact;
//! * all leaves are at the same depth; the root is a leaf with at least one entry or a branch
//!   with at least two children (an empty tree has no nodes); every other node is at least half
//!   full. So a tree of `n` entries has at most `2 + log4(n / 16)` levels, a lookup visits one
//!   node per level, and 100,000 entries take at most 8 levels.
//!
//! # Readers
//!
//! Reading methods take a [`ReadGuard`]: the caller's proof that it is inside a read-side
//! critical section for the whole borrow. They load the root once with Acquire and work on that
//! version only (an [`Iter`] too), copying entries out: nothing borrowed from a node outlives the
//! method or the iterator.
//!
//! # Writers
//!
//! Writing methods ([`insert`](RangeTree::insert), [`remove`](RangeTree::remove),
//! [`replace`](RangeTree::replace)) take `&self`, like the readers, because the tree lives in a
//! structure that readers reach without a lock. The caller must serialise them (the kernel
//! holds `mmap_lock` for writing). The tree checks this: each writing method holds a writer flag
//! for its duration and panics if it finds it taken, so breaking the contract is a bug that is
//! reported, never a data race.
//!
//! Each operation is one transaction (see the `write` module): it copies the nodes it changes
//! (path copying, with splits, merges and sharing between siblings as needed) into fresh nodes
//! that no reader can reach, then
//!
//! 1. stores the new root with **Release** (the only store a reader can observe), and
//! 2. hands each node that the new version no longer reaches to [`Reclaim::retire`], once.
//!
//! # Why readers are safe
//!
//! * *Publication*: every node of the new version was completely written before the Release
//!   store, and readers load the root with Acquire, so a reader that finds a node finds it
//!   complete. Published nodes are never written again (except the reclaimer's `link` scratch
//!   in the header, which readers never read).
//! * *Reclamation*: a node is retired only after the store that unlinked it, and the reclaimer
//!   frees it only after every read-side critical section that might have loaded a root reaching
//!   it has ended (a grace period). A reader's critical section started before the retirement or
//!   after it: in the first case the grace period waits for it; in the second, RCU guarantees
//!   that it sees the unlinking store, so it cannot reach the node.
//! * *Atomicity*: a reader follows the one root it loaded, either the version before an
//!   operation or the one after it; both are complete trees.
//!
//! # Reclamation
//!
//! [`Reclaim`] is how the tree hands over replaced nodes; the kernel implements it with
//! `call_rcu`. Each node starts with a [`RetiredNode`] whose `link` scratch can hold the RCU
//! callback head, so retiring allocates nothing. After the grace period the reclaimer calls
//! [`RetiredNode::free`].
//!
//! Nodes are allocated with the global allocator. [`RangeTree::destroy`] (and dropping the tree)
//! frees all nodes at once, for teardown when no reader can be left.
//!
//! # Example
//!
//! ```
//! use core::ptr::NonNull;
//! use vmtree::{RangeTree, ReadGuard, Reclaim, RetiredNode};
//!
//! // The kernel implements these for its RCU read guard and with `call_rcu`.
//! struct Guard;
//! unsafe impl ReadGuard for Guard {}
//! /// Frees at once: only sound here because this example has no concurrent readers.
//! struct NoReaders;
//! unsafe impl Reclaim for NoReaders {
//!     unsafe fn retire(&self, node: NonNull<RetiredNode>) {
//!         unsafe { RetiredNode::free(node) }
//!     }
//! }
//!
//! let tree = RangeTree::new();
//! tree.insert(0x1000..0x5000, 'r', &NoReaders)?;
//! // mprotect of the upper half: the entry is split, and the halves get different values, in
//! // one publish.
//! let halves = [(0x1000..0x3000, 'r'), (0x3000..0x5000, 'w')];
//! tree.replace(0x3000..0x5000, &halves, &NoReaders, |_, _| {})?;
//! assert_eq!(tree.lookup(0x3800, &Guard), Some((0x3000..0x5000, 'w')));
//! assert_eq!(tree.iter(&Guard).count(), 2);
//! assert_eq!(tree.find_gap_top_down(0..0x10000, 0x2000, 0x1000, &Guard), Some(0xe000));
//! # Ok::<(), vmtree::Error>(())
//! ```
#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod node;
mod read;
mod sync;
mod write;

#[cfg(all(test, not(loom)))]
mod tests;

use core::cell::UnsafeCell;
use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::ops::Range;
use core::ptr::{self, NonNull};

use node::NodePtr;
pub use node::RetiredNode;
use sync::Ordering::{Acquire, Relaxed};
use sync::{AtomicBool, AtomicPtr, AtomicUsize, const_unless_loom};
use write::{Txn, WriterState};

/// Proof that the current thread is inside an RCU read-side critical section.
///
/// Reading methods take `&G`: the critical section must last at least as long as that borrow,
/// and as long as any [`Iter`] created with it.
///
/// # Safety
///
/// While a `&Self` exists, the thread holding it must be inside a read-side critical section of
/// the RCU whose grace periods the trees' [`Reclaim`] waits for.
pub unsafe trait ReadGuard {}

/// Takes the nodes a writer replaced and frees them after a grace period.
///
/// # Safety
///
/// An implementation must call [`RetiredNode::free`] on each retired node once, and only after
/// every read-side critical section (as attested by a [`ReadGuard`]) that began before the call
/// to [`retire`](Reclaim::retire) has ended. It may use the node's `link` scratch in between, and
/// must not touch the rest of the node.
pub unsafe trait Reclaim {
    /// Queues `node` to be freed after a grace period.
    ///
    /// # Safety
    ///
    /// `node` is a node of a [`RangeTree`] that the tree's current root no longer reaches; it is
    /// retired once.
    unsafe fn retire(&self, node: NonNull<RetiredNode>);
}

/// Why a writer operation was refused; the tree is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An empty range, or new entries that are not sorted and disjoint.
    InvalidRange,
    /// The new entry would overlap an entry that stays.
    Overlap,
}

impl core::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidRange => "empty range or unsorted entries",
            Self::Overlap => "overlaps an existing entry",
        })
    }
}

/// A map from disjoint, non-empty, half-open address ranges to values, readable under RCU.
///
/// See the [crate documentation](crate) for the protocol.
pub struct RangeTree<V: Copy + Send + Sync> {
    /// The published root: null for an empty tree. Stored with Release, loaded with Acquire.
    root: AtomicPtr<node::Header>,
    /// The number of entries, updated after each publish.
    len: AtomicUsize,
    /// Set while a writer operation runs.
    writing: AtomicBool,
    /// Used only by the writer holding `writing`.
    writer: UnsafeCell<WriterState>,
    _values: PhantomData<V>,
}

// SAFETY: the tree owns its nodes and the values in them (`V: Send`); moving it to another thread
// moves nothing that is tied to the current one.
unsafe impl<V: Copy + Send + Sync> Send for RangeTree<V> {}

// SAFETY: shared use is the point of the tree: readers only read published nodes, which are never
// written (their values are shared and copied out: `V: Sync + Send`); writer state is touched only
// by the writer holding the `writing` flag, and nodes are freed only after a grace period.
unsafe impl<V: Copy + Send + Sync> Sync for RangeTree<V> {}

impl<V: Copy + Send + Sync> Default for RangeTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Copy + Send + Sync> RangeTree<V> {
    const_unless_loom! {
        /// An empty tree (not `const` under loom, whose atomics cannot be).
        pub fn new() -> Self {
            Self {
                root: AtomicPtr::new(ptr::null_mut()),
                len: AtomicUsize::new(0),
                writing: AtomicBool::new(false),
                writer: UnsafeCell::new(WriterState::new()),
                _values: PhantomData,
            }
        }
    }

    /// The number of entries: exact for the writer, a recent value for anyone else.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Whether the tree has no entries (as [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The published root.
    fn snapshot(&self) -> Option<NodePtr> {
        // Acquire: pairs with the Release store that published it, so its nodes are complete.
        NodePtr::new(self.root.load(Acquire))
    }

    /// The entry containing `addr`.
    pub fn lookup<G: ReadGuard>(&self, addr: u64, guard: &G) -> Option<(Range<u64>, V)> {
        self.next_at_or_after(addr, guard)
            .filter(|(range, _)| range.start <= addr)
    }

    /// The first entry that ends above `addr`: the entry containing `addr` if there is one,
    /// else the first entry after it (Linux's `find_vma`).
    pub fn next_at_or_after<G: ReadGuard>(&self, addr: u64, _guard: &G) -> Option<(Range<u64>, V)> {
        let root = self.snapshot()?;
        // SAFETY: the guard keeps this reader's critical section open, so the version loaded in it
        // stays allocated; published nodes are never written.
        unsafe {
            let (leaf, i) = read::seek::<V>(root, addr)?;
            Some(read::entry::<V>(leaf, i))
        }
    }

    /// The entries that overlap `range`, in address order, all from one version of the tree.
    pub fn iter_range<'a, G: ReadGuard>(&'a self, range: Range<u64>, _guard: &'a G) -> Iter<'a, V> {
        let root = self.snapshot();
        let pos = match root {
            Some(root) if !range.is_empty() => {
                // SAFETY: as in `next_at_or_after`; the iterator keeps the guard borrowed.
                unsafe { read::seek::<V>(root, range.start) }.map(|(leaf, i)| (root, leaf, i))
            }
            _ => None,
        };
        Iter {
            pos,
            end: range.end,
            _tree: PhantomData,
        }
    }

    /// All entries, in address order, from one version of the tree.
    pub fn iter<'a, G: ReadGuard>(&'a self, guard: &'a G) -> Iter<'a, V> {
        // Every entry ends at or below `u64::MAX`, so it starts below it.
        self.iter_range(0..u64::MAX, guard)
    }

    /// The highest `start` such that `[start, start + size)` overlaps no entry, lies inside
    /// `within`, and `start` is a multiple of `align` (for `mmap` without a hint).
    ///
    /// `None` if there is no such place, or if `size` or `align` is zero. Free intervals are
    /// visited from the highest down, skipping subtrees whose gaps are all smaller than `size`,
    /// so the search is logarithmic unless many gaps are large enough but fail only because of
    /// alignment.
    pub fn find_gap_top_down<G: ReadGuard>(
        &self,
        within: Range<u64>,
        size: u64,
        align: u64,
        _guard: &G,
    ) -> Option<u64> {
        let query = read::GapQuery::new(within, size, align)?;
        // SAFETY: as in `next_at_or_after`.
        unsafe { query.run::<V>(self.snapshot()) }
    }

    /// Adds the entry `range -> value`, in one publish.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRange`] if `range` is empty, [`Error::Overlap`] if it overlaps an entry.
    ///
    /// # Panics
    ///
    /// If another writer operation runs on this tree at the same time.
    pub fn insert<R: Reclaim + ?Sized>(
        &self,
        range: Range<u64>,
        value: V,
        reclaim: &R,
    ) -> Result<(), Error> {
        if range.is_empty() {
            return Err(Error::InvalidRange);
        }
        let mut txn = Txn::begin(self);
        if txn.first_overlap(&range).is_some() {
            return Err(Error::Overlap);
        }
        txn.insert(range, value);
        txn.commit(reclaim);
        Ok(())
    }

    /// Removes the entry that is exactly `range`, in one publish, and returns its value; `None`
    /// (and no change) if there is no such entry. To remove parts of entries or several at once,
    /// use [`replace`](Self::replace).
    ///
    /// # Panics
    ///
    /// If another writer operation runs on this tree at the same time.
    pub fn remove<R: Reclaim + ?Sized>(&self, range: Range<u64>, reclaim: &R) -> Option<V> {
        let mut txn = Txn::begin(self);
        if txn.first_overlap(&range)?.0 != range {
            return None;
        }
        let value = txn.remove(range.start);
        txn.commit(reclaim);
        Some(value)
    }

    /// Removes every entry that overlaps `range` (whole, even where it extends beyond `range`)
    /// and adds the entries `new`, all in one publish: splitting, merging, `mprotect` and
    /// `munmap` are each one call, and readers see the state before or after, never between.
    ///
    /// `new` must be sorted and disjoint, and may lie anywhere that is free once the overlapping
    /// entries are gone; typically inside the union of `range` and the removed entries (for
    /// `munmap` of the middle of an entry: the range unmapped, and the two remaining pieces).
    /// `removed` is called for each removed entry, in order, before the change is published
    /// (the tree may be read from it, not written). If it panics, nothing is published.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRange`] if `range` or an entry of `new` is empty, or `new` is not sorted
    /// and disjoint; [`Error::Overlap`] if an entry of `new` overlaps an entry that does not
    /// overlap `range`. Nothing changes, and `removed` is not called.
    ///
    /// # Panics
    ///
    /// If another writer operation runs on this tree at the same time.
    pub fn replace<R: Reclaim + ?Sized>(
        &self,
        range: Range<u64>,
        new: &[(Range<u64>, V)],
        reclaim: &R,
        mut removed: impl FnMut(Range<u64>, V),
    ) -> Result<(), Error> {
        let sorted = new.windows(2).all(|pair| pair[0].0.end <= pair[1].0.start);
        if range.is_empty() || new.iter().any(|(r, _)| r.is_empty()) || !sorted {
            return Err(Error::InvalidRange);
        }
        let mut txn = Txn::begin(self);
        for (new_range, _) in new {
            // An entry that a new one overlaps must be one of those removed.
            let mut from = new_range.start;
            while let Some((old, _)) = txn.first_overlap(&(from..new_range.end)) {
                if old.start >= range.end || old.end <= range.start {
                    return Err(Error::Overlap);
                }
                from = old.end;
            }
        }
        let mut changed = !new.is_empty();
        while let Some((old, value)) = txn.first_overlap(&range) {
            removed(old.clone(), value);
            txn.remove(old.start);
            changed = true;
        }
        for (new_range, value) in new {
            txn.insert(new_range.clone(), *value);
        }
        if changed {
            txn.commit(reclaim);
        }
        Ok(())
    }

    /// Frees every node now, without a grace period, leaving the tree empty.
    ///
    /// # Safety
    ///
    /// No reader may be in the tree or enter it before this returns, no writer operation may run
    /// concurrently, and no node of the tree may still be reachable from a reader's earlier load
    /// (nodes retired earlier are the reclaimer's business and are not touched).
    pub unsafe fn destroy(&self) {
        self.len.store(0, Relaxed);
        if let Some(root) = NodePtr::new(self.root.swap(ptr::null_mut(), Acquire)) {
            // SAFETY: the caller guarantees nobody else uses the tree's nodes.
            unsafe { root.free_subtree::<V>() };
        }
    }
}

impl<V: Copy + Send + Sync> Drop for RangeTree<V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader or writer holds the tree (iterators borrow it).
        unsafe { self.destroy() };
    }
}

impl<V: Copy + Send + Sync + fmt::Debug> fmt::Debug for RangeTree<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeTree")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The entries of one version of a [`RangeTree`] that overlap a range, in address order; made by
/// [`RangeTree::iter_range`]. It borrows the read guard, so it cannot outlive the read-side
/// critical section (nor leave the thread).
pub struct Iter<'a, V: Copy + Send + Sync> {
    /// The version's root, the leaf and the slot of the next entry; `None` when done.
    pos: Option<(NodePtr, NodePtr, usize)>,
    /// Entries starting at or above this are not wanted.
    end: u64,
    _tree: PhantomData<&'a RangeTree<V>>,
}

impl<V: Copy + Send + Sync> Iterator for Iter<'_, V> {
    type Item = (Range<u64>, V);

    fn next(&mut self) -> Option<Self::Item> {
        let (root, mut leaf, mut i) = self.pos?;
        // SAFETY: the nodes of the version loaded by `iter_range` stay allocated and unchanged
        // while the iterator borrows the read guard.
        let (range, value) = unsafe {
            let body = leaf.leaf::<V>();
            if i == body.len() {
                // The next leaf starts with the first entry ending above this leaf's last end.
                let next = read::seek::<V>(root, body.key(i - 1));
                (leaf, i) = match next {
                    Some(pos) => pos,
                    None => {
                        self.pos = None;
                        return None;
                    }
                };
            }
            read::entry::<V>(leaf, i)
        };
        if range.start >= self.end {
            self.pos = None;
            return None;
        }
        self.pos = Some((root, leaf, i + 1));
        Some((range, value))
    }
}

impl<V: Copy + Send + Sync> FusedIterator for Iter<'_, V> {}
