//! Node layout and the operations on the contents of one node.
//!
//! Every node is one heap allocation: a [`Header`] (the [`RetiredNode`] handed to the reclaimer,
//! the writer's generation and the node's level) followed by a [`Body`] of up to `N` slots, each
//! a key and an item, kept in key order:
//!
//! * a *leaf* (level 0) holds entries: the key is the entry's end, the item its start and value;
//! * a *branch* (level `h > 0`) holds children of level `h - 1`: the key is the highest end in the
//!   child's subtree, the item the child's pointer, its lowest start and the largest gap between
//!   two consecutive entries inside it.
//!
//! Keys are upper bounds ("pivots"), so every descent looks for the first slot whose key is above
//! an address. Because each slot carries its own summary rather than a separator shared with its
//! neighbour, slots move between siblings unchanged when nodes split, merge or share.

use crate::sync::Published;
use alloc::boxed::Box;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

/// Most entries in a leaf.
pub(crate) const LEAF_CAP: usize = 16;
/// Most children of a branch.
pub(crate) const BRANCH_CAP: usize = 8;

/// The header at the start of every node, handed to [`Reclaim::retire`](crate::Reclaim::retire)
/// when the node is replaced.
///
/// It is the first field of every node (offset 0, `repr(C)`), so a pointer to it is a pointer to
/// the node. Once retired, `link` belongs to the reclaimer: 32 bytes of scratch, aligned like a
/// `usize`, for an intrusive list head (an RCU callback head), so that retiring needs no
/// allocation. Readers that may still be walking the node never read `link`. When the grace
/// period is over the reclaimer calls [`RetiredNode::free`], which frees the whole node.
#[repr(C)]
pub struct RetiredNode {
    /// Scratch space for the reclaimer, from `retire` until `free`.
    pub link: [usize; 4],
    /// Frees the node this header starts; set at allocation, never changed.
    free: unsafe fn(NonNull<RetiredNode>),
}

impl RetiredNode {
    /// Frees the node that `node` heads.
    ///
    /// # Safety
    ///
    /// `node` was passed to [`Reclaim::retire`](crate::Reclaim::retire), every read-side critical
    /// section that might have seen it has ended, and it is freed only once.
    pub unsafe fn free(node: NonNull<RetiredNode>) {
        // SAFETY: the caller passes a live retired node; `free` is never written after allocation.
        let free = unsafe { (&raw const (*node.as_ptr()).free).read() };
        // SAFETY: `free` was chosen for this node's type when it was allocated; the caller
        // guarantees nobody uses the node any more.
        unsafe { free(node) }
    }
}

/// Everything in a node other than its slots.
#[repr(C)]
pub(crate) struct Header {
    retired: RetiredNode,
    /// The writer transaction that created the node (writer-only: readers never look at it).
    generation: u64,
    /// 0 for a leaf, the height of the subtree above the leaves for a branch.
    level: u8,
}

/// A node with slots of type `T`, `N` of them at most.
#[repr(C)]
struct Node<T: Item, const N: usize> {
    header: Header,
    body: Published<Body<T, N>>,
}

/// What a slot holds besides its key.
pub(crate) trait Item: Copy {
    /// The lowest address the slot covers.
    fn low(&self) -> u64;
    /// The largest gap between two consecutive entries inside the slot.
    fn gap(&self) -> u64;
}

/// A leaf slot: an entry `[start, key)` mapped to `value`.
#[derive(Clone, Copy)]
pub(crate) struct Entry<V> {
    pub(crate) start: u64,
    pub(crate) value: V,
}

impl<V: Copy> Item for Entry<V> {
    fn low(&self) -> u64 {
        self.start
    }

    fn gap(&self) -> u64 {
        0
    }
}

/// A branch slot: a child and the summary of its subtree (its highest end is the key).
#[derive(Clone, Copy)]
pub(crate) struct Child {
    /// The lowest start in the subtree.
    pub(crate) low: u64,
    /// The largest gap between consecutive entries of the subtree.
    pub(crate) gap: u64,
    pub(crate) node: NodePtr,
}

impl Item for Child {
    fn low(&self) -> u64 {
        self.low
    }

    fn gap(&self) -> u64 {
        self.gap
    }
}

/// The slots of a node.
///
/// Invariant: `items[..len]` are initialised; `keys[..len]` are strictly increasing; every slot
/// covers addresses below its key and at or above the previous slot's key.
#[derive(Clone, Copy)]
pub(crate) struct Body<T: Item, const N: usize> {
    len: usize,
    keys: [u64; N],
    items: [MaybeUninit<T>; N],
}

pub(crate) type LeafBody<V> = Body<Entry<V>, LEAF_CAP>;
pub(crate) type BranchBody = Body<Child, BRANCH_CAP>;

impl<T: Item, const N: usize> Body<T, N> {
    pub(crate) fn new() -> Self {
        Self {
            len: 0,
            keys: [0; N],
            items: [MaybeUninit::uninit(); N],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn key(&self, i: usize) -> u64 {
        self.keys[..self.len][i]
    }

    pub(crate) fn item(&self, i: usize) -> T {
        assert!(i < self.len);
        // SAFETY: `items[..len]` are initialised.
        unsafe { self.items[i].assume_init() }
    }

    /// The first slot whose key is above `addr`, or `len` if there is none.
    pub(crate) fn first_above(&self, addr: u64) -> usize {
        self.keys[..self.len].partition_point(|&key| key <= addr)
    }

    pub(crate) fn set(&mut self, i: usize, key: u64, item: T) {
        assert!(i < self.len);
        self.keys[i] = key;
        self.items[i] = MaybeUninit::new(item);
    }

    /// Inserts a slot at `i`; the node must not be full.
    pub(crate) fn insert(&mut self, i: usize, key: u64, item: T) {
        assert!(self.len < N && i <= self.len);
        self.keys.copy_within(i..self.len, i + 1);
        self.items.copy_within(i..self.len, i + 1);
        self.len += 1;
        self.set(i, key, item);
    }

    /// Removes slot `i` and returns its key and item.
    pub(crate) fn remove(&mut self, i: usize) -> (u64, T) {
        let removed = (self.key(i), self.item(i));
        self.keys.copy_within(i + 1..self.len, i);
        self.items.copy_within(i + 1..self.len, i);
        self.len -= 1;
        removed
    }

    /// Moves the slots from `at` on into a new body.
    pub(crate) fn split_off(&mut self, at: usize) -> Self {
        let mut right = Self::new();
        right.append_slots(&self.keys[at..self.len], &self.items[at..self.len]);
        self.len = at;
        right
    }

    /// Appends all of `other`'s slots; they must fit.
    pub(crate) fn append(&mut self, other: &Self) {
        self.append_slots(&other.keys[..other.len], &other.items[..other.len]);
    }

    fn append_slots(&mut self, keys: &[u64], items: &[MaybeUninit<T>]) {
        let end = self.len + keys.len();
        self.keys[self.len..end].copy_from_slice(keys);
        self.items[self.len..end].copy_from_slice(items);
        self.len = end;
    }

    /// Moves slots between `self` and its right neighbour `right` so that `self` has half of
    /// them (rounded down).
    pub(crate) fn share(&mut self, right: &mut Self) {
        let want = (self.len + right.len) / 2;
        if self.len < want {
            let moved = want - self.len;
            self.append_slots(&right.keys[..moved], &right.items[..moved]);
            right.keys.copy_within(moved..right.len, 0);
            right.items.copy_within(moved..right.len, 0);
            right.len -= moved;
        } else {
            let moved = self.len - want;
            right.keys.copy_within(..right.len, moved);
            right.items.copy_within(..right.len, moved);
            right.keys[..moved].copy_from_slice(&self.keys[want..self.len]);
            right.items[..moved].copy_from_slice(&self.items[want..self.len]);
            right.len += moved;
            self.len = want;
        }
    }

    /// The summary a parent keeps: the lowest address, the highest key, and the largest gap
    /// between consecutive entries below this node. The body must not be empty.
    pub(crate) fn summary(&self) -> (u64, u64, u64) {
        let mut gap = self.item(0).gap();
        for i in 1..self.len {
            let item = self.item(i);
            gap = gap.max(item.gap()).max(item.low() - self.keys[i - 1]);
        }
        (self.item(0).low(), self.key(self.len - 1), gap)
    }
}

/// A pointer to a node, leaf or branch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NodePtr(NonNull<Header>);

impl NodePtr {
    /// Allocates a node of `level` created by writer transaction `generation`.
    pub(crate) fn alloc<T: Item, const N: usize>(
        level: u8,
        generation: u64,
        body: Body<T, N>,
    ) -> Self {
        #[cfg(all(test, not(loom)))]
        crate::tests::count_node(1);
        let node = Box::new(Node {
            header: Header {
                retired: RetiredNode {
                    link: [0; 4],
                    free: free_node::<T, N>,
                },
                generation,
                level,
            },
            body: Published::new(body),
        });
        Self(NonNull::from(Box::leak(node)).cast())
    }

    /// `None` for null.
    pub(crate) fn new(ptr: *mut Header) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    pub(crate) fn as_ptr(self) -> *mut Header {
        self.0.as_ptr()
    }

    pub(crate) fn retired(self) -> NonNull<RetiredNode> {
        self.0.cast()
    }

    /// # Safety
    ///
    /// The node is live: reachable from a root loaded inside the caller's read-side critical
    /// section, or owned by the calling writer.
    pub(crate) unsafe fn level(self) -> u8 {
        // SAFETY: the node is live (caller); `level` is never written after allocation. Only this
        // field is read, not the `link` a reclaimer may be using.
        unsafe { (&raw const (*self.as_ptr()).level).read() }
    }

    /// # Safety
    ///
    /// The caller is the writer and the node is live.
    pub(crate) unsafe fn generation(self) -> u64 {
        // SAFETY: as for `level`.
        unsafe { (&raw const (*self.as_ptr()).generation).read() }
    }

    /// The node's slots.
    ///
    /// # Safety
    ///
    /// The node is live for `'a`, has slots of type `T` (`N` of them), and is not written
    /// during `'a`.
    pub(crate) unsafe fn body<'a, T: Item, const N: usize>(self) -> &'a Body<T, N> {
        // SAFETY: the caller guarantees the node's type and liveness; the reference covers the
        // body only, never the header that the reclaimer may write.
        unsafe { (*self.0.cast::<Node<T, N>>().as_ptr()).body.get() }
    }

    /// The node's slots, for writing.
    ///
    /// # Safety
    ///
    /// As for [`body`](Self::body), and the node has not been published: the calling writer
    /// owns it, and holds no other reference to its body during `'a`.
    pub(crate) unsafe fn body_mut<'a, T: Item, const N: usize>(self) -> &'a mut Body<T, N> {
        // SAFETY: as above; nobody else can reach an unpublished node.
        unsafe { (*self.0.cast::<Node<T, N>>().as_ptr()).body.get_mut() }
    }

    /// A leaf's entries.
    ///
    /// # Safety
    ///
    /// As for [`body`](Self::body), and the node is a leaf of a tree with values `V`.
    pub(crate) unsafe fn leaf<'a, V: Copy>(self) -> &'a LeafBody<V> {
        // SAFETY: forwarded to the caller.
        unsafe { self.body() }
    }

    /// A branch's children.
    ///
    /// # Safety
    ///
    /// As for [`body`](Self::body), and the node is a branch.
    pub(crate) unsafe fn branch<'a>(self) -> &'a BranchBody {
        // SAFETY: forwarded to the caller.
        unsafe { self.body() }
    }

    /// The slot a parent keeps for this node: its key and item.
    ///
    /// # Safety
    ///
    /// The node is live, not empty, and belongs to a tree with values `V`.
    pub(crate) unsafe fn as_child<V: Copy>(self) -> (u64, Child) {
        // SAFETY: forwarded to the caller; the level says which kind of node this is.
        let (low, high, gap) = unsafe {
            if self.level() == 0 {
                self.leaf::<V>().summary()
            } else {
                self.branch().summary()
            }
        };
        (
            high,
            Child {
                low,
                gap,
                node: self,
            },
        )
    }

    /// Frees this node and every node below it, now.
    ///
    /// # Safety
    ///
    /// Nobody else can reach any of these nodes any more, and they belong to a tree with
    /// values `V`.
    pub(crate) unsafe fn free_subtree<V: Copy>(self) {
        // SAFETY: the caller owns the subtree; children are read before their parent is freed.
        unsafe {
            if self.level() > 0 {
                let body = self.branch();
                for i in 0..body.len() {
                    body.item(i).node.free_subtree::<V>();
                }
            }
            RetiredNode::free(self.retired());
        }
    }
}

/// The `free` function of a node with slots `T`.
///
/// # Safety
///
/// `node` heads a node of that type, allocated by [`NodePtr::alloc`], that nobody uses any more.
unsafe fn free_node<T: Item, const N: usize>(node: NonNull<RetiredNode>) {
    #[cfg(all(test, not(loom)))]
    crate::tests::count_node(-1);
    // SAFETY: the header is at offset 0 of the node, which came from `Box::leak` of this type
    // (the pointer has the provenance of the whole allocation); the caller guarantees it is unused.
    drop(unsafe { Box::from_raw(node.cast::<Node<T, N>>().as_ptr()) });
}
