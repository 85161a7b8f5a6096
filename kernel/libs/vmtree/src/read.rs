//! Searches over one version of the tree, given its root: used by readers (inside a read-side
//! critical section, on the root they loaded) and by the writer (on the version it is building).
//!
//! Every function here is `unsafe` for the same reason: the caller guarantees that the nodes
//! reachable from the root it passes stay allocated and unchanged while the function runs, and
//! that they belong to a tree with values `V`.

use crate::node::NodePtr;
use core::ops::{ControlFlow, Range};

/// The leaf and slot of the first entry whose end is above `addr`.
///
/// # Safety
///
/// See the module documentation.
pub(crate) unsafe fn seek<V: Copy>(root: NodePtr, addr: u64) -> Option<(NodePtr, usize)> {
    let mut node = root;
    loop {
        #[cfg(all(test, not(loom)))]
        crate::tests::count_visit();
        // SAFETY: `node` is reachable from `root` (caller); the level says what it holds.
        unsafe {
            if node.level() == 0 {
                let body = node.leaf::<V>();
                let i = body.first_above(addr);
                return (i < body.len()).then_some((node, i));
            }
            let body = node.branch();
            // The child's key is its highest end: if it is above `addr`, so is one of its entries.
            let i = body.first_above(addr);
            if i == body.len() {
                return None;
            }
            node = body.item(i).node;
        }
    }
}

/// The entry in slot `i` of `leaf`.
///
/// # Safety
///
/// See the module documentation; `leaf` is a leaf with a slot `i`.
pub(crate) unsafe fn entry<V: Copy>(leaf: NodePtr, i: usize) -> (Range<u64>, V) {
    // SAFETY: forwarded to the caller.
    let body = unsafe { leaf.leaf::<V>() };
    let entry = body.item(i);
    (entry.start..body.key(i), entry.value)
}

/// The first entry that overlaps `range`.
///
/// # Safety
///
/// See the module documentation.
pub(crate) unsafe fn first_overlap<V: Copy>(
    root: Option<NodePtr>,
    range: &Range<u64>,
) -> Option<(Range<u64>, V)> {
    if range.is_empty() {
        return None;
    }
    // SAFETY: forwarded to the caller.
    let (leaf, i) = unsafe { seek::<V>(root?, range.start)? };
    // SAFETY: `seek` returns an existing slot of a leaf.
    let found = unsafe { entry::<V>(leaf, i) };
    (found.0.start < range.end).then_some(found)
}

/// A search for the highest `start` with `[start, start + size)` free, inside `within`, and a
/// multiple of `align`.
///
/// Free intervals are visited from the highest down: above the last entry, between consecutive
/// entries (branches compare their children's summaries, and descend only into children whose
/// largest inner gap is at least `size`), below the first entry. The first fit is the answer;
/// the search stops as soon as the intervals left lie too low to hold `size` bytes in `within`.
/// A gap of at least `size` that fails only because of alignment costs a descent, so the worst
/// case with a large `align` is linear; with `align` at most a page the descents that fail are
/// rare.
pub(crate) struct GapQuery {
    within: Range<u64>,
    size: u64,
    align: u64,
    /// `within.start + size`: an interval whose end is below this holds no fit, nor does any
    /// interval under it.
    lowest_top: u64,
}

impl GapQuery {
    /// `None` when nothing can fit: an empty `within`, a zero `size` or `align`.
    pub(crate) fn new(within: Range<u64>, size: u64, align: u64) -> Option<Self> {
        let lowest_top = within.start.checked_add(size)?;
        (size > 0 && align > 0 && lowest_top <= within.end).then_some(Self {
            within,
            size,
            align,
            lowest_top,
        })
    }

    /// Runs the search on the tree with root `root`.
    ///
    /// # Safety
    ///
    /// See the module documentation.
    pub(crate) unsafe fn run<V: Copy>(&self, root: Option<NodePtr>) -> Option<u64> {
        // SAFETY: forwarded to the caller.
        match unsafe { self.search::<V>(root) } {
            ControlFlow::Break(found) => found,
            ControlFlow::Continue(()) => None,
        }
    }

    /// # Safety
    ///
    /// See the module documentation.
    unsafe fn search<V: Copy>(&self, root: Option<NodePtr>) -> ControlFlow<Option<u64>> {
        let Some(root) = root else {
            return self.check(0, u64::MAX);
        };
        // SAFETY: forwarded to the caller.
        let (high, child) = unsafe { root.as_child::<V>() };
        self.check(high, u64::MAX)?;
        // SAFETY: forwarded to the caller.
        unsafe { self.descend::<V>(root)? };
        self.check(0, child.low)
    }

    /// Looks for a fit in the gaps between the entries below `node`, highest first.
    ///
    /// # Safety
    ///
    /// See the module documentation.
    unsafe fn descend<V: Copy>(&self, node: NodePtr) -> ControlFlow<Option<u64>> {
        // SAFETY: `node` is reachable from the root (caller); its level says what it holds.
        unsafe {
            if node.level() == 0 {
                let body = node.leaf::<V>();
                for i in (1..body.len()).rev() {
                    self.check(body.key(i - 1), body.item(i).start)?;
                }
                return ControlFlow::Continue(());
            }
            let body = node.branch();
            for i in (0..body.len()).rev() {
                if i + 1 < body.len() {
                    self.check(body.key(i), body.item(i + 1).low)?;
                }
                if body.key(i) < self.lowest_top {
                    return ControlFlow::Break(None);
                }
                let child = body.item(i);
                if child.gap >= self.size && child.low < self.within.end {
                    self.descend::<V>(child.node)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Checks the free interval `[low, high)`, which lies below every interval checked before.
    fn check(&self, low: u64, high: u64) -> ControlFlow<Option<u64>> {
        let top = high.min(self.within.end);
        if top < self.lowest_top {
            return ControlFlow::Break(None);
        }
        let bottom = low.max(self.within.start);
        if top >= bottom && top - bottom >= self.size {
            let start = top - self.size;
            let start = start - start % self.align;
            if start >= bottom {
                return ControlFlow::Break(Some(start));
            }
        }
        ControlFlow::Continue(())
    }
}
