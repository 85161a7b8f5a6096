//! The test VMA, shared by the integration tests (`mod common;` in tests/loom.rs and
//! tests/stress.rs) and the unit tests (src/tests.rs, through `#[path]`).
//!
//! It is written against `ksync`'s atomics, the crate's own: core's normally, loom's under
//! `--cfg loom`, so the same fixture serves the loom models and the real-thread tests. Besides
//! its owner and range, each test VMA carries data of its test's choosing (`D`), which the
//! writer changes under the write lock and the test checks under the read lock.
#![allow(dead_code)] // each test crate uses a part of it

use ksync::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use vmalock::{VmaCopy, VmaFields, VmaLock};

/// A VMA's fields besides its owner and range, duplicated by `vm_area_init_from`.
pub trait VmaData {
    /// Copies `orig`'s data into `self` (the caller holds the `mmap_lock` for writing).
    fn copy_from(&self, orig: &Self);
}

/// A single word, such as the VMA's flags.
impl VmaData for AtomicU64 {
    fn copy_from(&self, orig: &Self) {
        self.store(orig.load(Relaxed), Relaxed);
    }
}

/// A test VMA: the lock words, the owner and range (atomics, as a stale reader may load them at
/// any moment) and the test's own `data`.
pub struct Vma<D> {
    pub lock: VmaLock,
    pub mm: AtomicUsize,
    pub start: AtomicU64,
    pub end: AtomicU64,
    pub data: D,
}

impl<D: Default> Vma<D> {
    /// A detached VMA, as the slab constructor leaves it.
    pub fn new() -> Self {
        Self {
            lock: VmaLock::new(),
            mm: AtomicUsize::new(0),
            start: AtomicU64::new(0),
            end: AtomicU64::new(0),
            data: D::default(),
        }
    }
}

impl<D> Vma<D> {
    /// Gives the VMA its owner and range: the writer, write-locked or before the attach.
    pub fn set_identity(&self, mm: usize, start: u64, end: u64) {
        self.mm.store(mm, Relaxed);
        self.start.store(start, Relaxed);
        self.end.store(end, Relaxed);
    }
}

impl<D> VmaFields for Vma<D> {
    fn lock(&self) -> &VmaLock {
        &self.lock
    }
    fn mm_id(&self) -> usize {
        self.mm.load(Relaxed)
    }
    fn start(&self) -> u64 {
        self.start.load(Relaxed)
    }
    fn end(&self) -> u64 {
        self.end.load(Relaxed)
    }
}

impl<D: VmaData> VmaCopy for Vma<D> {
    fn copy_fields_from(&self, orig: &Self) {
        self.set_identity(orig.mm_id(), orig.start(), orig.end());
        self.data.copy_from(&orig.data);
    }
}
