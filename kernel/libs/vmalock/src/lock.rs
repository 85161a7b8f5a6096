//! The lock words of a VMA ([`VmaLock`]) and of an address space ([`MmLockSeq`]), and the
//! writer's side of the protocol: write-lock, attach, detach.

use crate::platform::{DelayPoint, Platform};
use crate::read::LockFail;
use crate::sync::{AtomicU32, AtomicU64, Ordering::*, const_unless_loom};

/// The bit of `vm_refcnt` that a writer or detacher sets while it drains readers; readers never
/// increment while it is set (Linux 7.0's name; `VMA_LOCK_OFFSET` in 6.15).
pub const VM_REFCNT_EXCLUDE_READERS: u32 = 1 << 30;

/// The highest value a reader's increment may produce: `1 + (LIMIT - 1)` readers. Below
/// [`VM_REFCNT_EXCLUDE_READERS`], so readers can never set that bit by counting up to it.
pub const VM_REFCNT_LIMIT: u32 = VM_REFCNT_EXCLUDE_READERS - 1;

/// `vm_lock_seq` of a VMA never write-locked: a value no [`MmLockSeq`] reaches.
pub const VM_LOCK_SEQ_NEVER: u64 = u64::MAX;

const X: u32 = VM_REFCNT_EXCLUDE_READERS;

/// The per-address-space sequence number (Linux's `mm->mm_lock_seq`).
///
/// Even while nobody holds the `mmap_lock` for writing, odd during a write session: the
/// session's odd value is what [`VmaLock::vma_start_write`] stores into each VMA it locks, so
/// "`vm_lock_seq` equals the address space's sequence" means "write-locked in the current
/// session". Advancing it at the end of the session unlocks every VMA at once.
///
/// 64 bits so that it never wraps: with Linux's 32 bits a VMA locked 2^31 sessions ago looks
/// locked again, which costs readers a needless fallback but could also let `vma_start_write`
/// skip draining readers.
pub struct MmLockSeq {
    seq: AtomicU64,
}

impl MmLockSeq {
    const_unless_loom! {
        /// A new address space: sequence 0, not write-locked.
        pub fn new() -> Self {
            Self { seq: AtomicU64::new(0) }
        }
    }

    /// Begins a write session. Call right after taking the `mmap_lock` for writing.
    ///
    /// Relaxed: beginning a session publishes nothing; each VMA's write lock publishes itself
    /// through the Release clear of the exclude bit in [`VmaLock::vma_start_write`].
    pub fn mmap_write_lock(&self) {
        let seq = self.seq.load(Relaxed);
        debug_assert!(
            seq % 2 == 0,
            "mmap_write_lock: a write session is already open"
        );
        self.seq.store(seq.wrapping_add(1), Relaxed);
    }

    /// Ends a write session, unlocking every VMA write-locked in it. Call right before
    /// releasing the `mmap_lock` (also when downgrading it to a read lock).
    ///
    /// Release: a reader whose Acquire re-check sees the new value, and so treats the VMA as
    /// unlocked, also sees every change the writer made to it (Jann Horn's 2023 ordering fix).
    pub fn mmap_write_unlock(&self) {
        let seq = self.seq.load(Relaxed);
        debug_assert!(seq % 2 == 1, "mmap_write_unlock: no write session open");
        let order = if broken!("unlock_relaxed") {
            Relaxed
        } else {
            Release
        };
        self.seq.store(seq.wrapping_add(1), order);
    }

    /// Whether a write session is open. Reliable only for the `mmap_lock` holder.
    pub fn is_write_locked(&self) -> bool {
        self.sequence() % 2 == 1
    }

    /// The current value, Relaxed: exact for the `mmap_lock` writer (the only one who changes
    /// it), a hint for anyone else.
    pub fn sequence(&self) -> u64 {
        self.seq.load(Relaxed)
    }

    /// The reader's re-check, after its increment.
    pub(crate) fn sequence_acquire(&self) -> u64 {
        let order = if broken!("recheck_relaxed") {
            Relaxed
        } else {
            Acquire
        };
        self.seq.load(order)
    }
}

impl Default for MmLockSeq {
    fn default() -> Self {
        Self::new()
    }
}

/// The lock words embedded in every VMA: `vm_refcnt` and `vm_lock_seq`. See the crate
/// documentation for the states and the rules.
///
/// Neither `Clone` nor `Copy`, on purpose: copying the lock state of one VMA into another (a
/// `memcpy` duplication) makes the copy look attached or read-locked to stale readers
/// (Vlastimil Babka's catch in the review of the typesafe VMA cache).
pub struct VmaLock {
    /// 0 detached; 1 attached; 1 + N with N readers; `X` set while a writer or detacher drains.
    vm_refcnt: AtomicU32,
    /// The [`MmLockSeq`] value of the write session that last write-locked this VMA.
    vm_lock_seq: AtomicU64,
}

impl VmaLock {
    const_unless_loom! {
        /// The constructed state, set once by the slab constructor: detached, never locked.
        /// Afterwards the words change only through the protocol, never by re-initialisation;
        /// a freed VMA is back in this state as far as `vm_refcnt` goes (see
        /// [`is_constructed_state`](Self::is_constructed_state)).
        pub fn new() -> Self {
            Self {
                vm_refcnt: AtomicU32::new(0),
                vm_lock_seq: AtomicU64::new(VM_LOCK_SEQ_NEVER),
            }
        }
    }

    /// The key writers and detachers of this VMA wait on: the lock's address. A reader computes
    /// it before dropping its reference and uses only the number afterwards.
    #[inline]
    pub fn wait_key(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// `vm_refcnt` now (Relaxed): for assertions, statistics and tests.
    pub fn refcount(&self) -> u32 {
        self.vm_refcnt.load(Relaxed)
    }

    /// `vm_lock_seq` now (Relaxed): for assertions and tests.
    pub fn lock_seq(&self) -> u64 {
        self.vm_lock_seq.load(Relaxed)
    }

    /// Whether the VMA counts as attached. Reliable for the `mmap_lock` writer, who alone
    /// attaches and detaches.
    pub fn is_attached(&self) -> bool {
        self.refcount() != 0
    }

    /// Whether the VMA is write-locked in the current session of `mm`. Reliable for the
    /// `mmap_lock` writer of `mm` (Linux's `vma_assert_write_locked`).
    pub fn is_write_locked(&self, mm: &MmLockSeq) -> bool {
        self.lock_seq() == mm.sequence()
    }

    /// The slab's free check: detached and nobody excluding readers — the state the
    /// constructor left, as far as any stale reader can tell (`vm_lock_seq` keeps the last
    /// session's value; with a count of 0 nobody can rely on it).
    pub fn is_constructed_state(&self) -> bool {
        self.refcount() == 0
    }

    /// Write-locks the VMA for the rest of the current `mmap_lock` write session of `mm`.
    ///
    /// The caller holds `mm`'s `mmap_lock` for writing and `mm.mmap_write_lock()` has been
    /// called. Returns at once if the VMA is already locked in this session. Otherwise it sets
    /// the exclude bit, sleeps until the readers that came before have left, stores the
    /// session's sequence and clears the bit. A detached VMA (a new one, write-locked before it
    /// is attached) has no readers to drain: only its attach, by this same writer, could raise
    /// its count.
    pub fn vma_start_write<P: Platform>(&self, mm: &MmLockSeq, platform: &P) {
        let seq = mm.sequence();
        debug_assert!(
            mm.is_write_locked(),
            "vma_start_write outside a write session"
        );
        if self.vm_lock_seq.load(Relaxed) == seq {
            return;
        }
        // Nonzero stays nonzero until we detach: readers only remove references they added.
        if self.vm_refcnt.load(Relaxed) == 0 {
            self.vm_lock_seq.store(seq, Relaxed);
            return;
        }
        // Acquire: if the readers have already gone, this is what orders us after them.
        let old = self.vm_refcnt.fetch_add(X, Acquire);
        debug_assert!(
            old != 0 && old & X == 0,
            "vma_start_write: refcount {old:#x}"
        );
        self.wait_for_readers(X + 1, platform);
        self.vm_lock_seq.store(seq, Relaxed);
        // Release: a reader whose increment comes after this sees the new vm_lock_seq.
        let order = if broken!("clear_relaxed") {
            Relaxed
        } else {
            Release
        };
        self.vm_refcnt.fetch_sub(X, order);
    }

    /// Attaches a VMA whose fields are all set: from now on readers may lock it. Insert it
    /// into the tree afterwards.
    ///
    /// The caller holds the `mmap_lock` for writing and has write-locked the VMA. Release: a
    /// reader whose Acquire increment finds the VMA attached sees every field stored before.
    pub fn vma_mark_attached(&self, mm: &MmLockSeq) {
        debug_assert!(
            self.is_write_locked(mm),
            "attaching a VMA that is not write-locked"
        );
        debug_assert_eq!(self.refcount(), 0, "attaching a VMA that is not detached");
        let order = if broken!("attach_relaxed") {
            Relaxed
        } else {
            Release
        };
        self.vm_refcnt.store(1, order);
    }

    /// Detaches a VMA already removed from the tree. On return `vm_refcnt` is 0 and no reader
    /// holds a reference, so the VMA may be freed (and reused at once).
    ///
    /// The caller holds the `mmap_lock` for writing and has write-locked the VMA, so a reader
    /// can only hold a *transient* reference: taken after the write lock, it fails the
    /// sequence re-check and is dropped at once. If there is one, set the exclude bit in place
    /// of our own reference and wait for them to leave.
    pub fn vma_mark_detached<P: Platform>(&self, mm: &MmLockSeq, platform: &P) {
        debug_assert!(
            self.is_write_locked(mm),
            "detaching a VMA that is not write-locked"
        );
        // Acquire (here and below): the transient readers' loads of this VMA happen before
        // whatever the caller does with the object next.
        if self
            .vm_refcnt
            .compare_exchange(1, 0, Acquire, Relaxed)
            .is_ok()
        {
            return;
        }
        if broken!("detach_no_wait") {
            self.vm_refcnt.store(0, Relaxed);
            return;
        }
        let old = self.vm_refcnt.fetch_add(X - 1, Acquire);
        debug_assert!(
            old >= 1 && old & X == 0,
            "vma_mark_detached: refcount {old:#x}"
        );
        self.wait_for_readers(X, platform);
        // Nobody can change the count now; nothing is published by leaving X for 0.
        let old = self.vm_refcnt.fetch_sub(X, Relaxed);
        debug_assert_eq!(old, X);
    }

    fn wait_for_readers<P: Platform>(&self, target: u32, platform: &P) {
        platform.delay(DelayPoint::WhileExcluding);
        if broken!("writer_no_wait") && target == X + 1 {
            return;
        }
        platform.wait_until(self.wait_key(), || self.vm_refcnt.load(Acquire) == target);
    }

    /// The reader's increment: from `1..LIMIT` to one more (Linux's
    /// `__refcount_inc_not_zero_limited_acquire`).
    pub(crate) fn try_get_ref(&self) -> Result<(), LockFail> {
        let success = if broken!("inc_relaxed") {
            Relaxed
        } else {
            Acquire
        };
        let limit = if broken!("no_limit") {
            X
        } else {
            VM_REFCNT_LIMIT
        };
        let mut old = self.vm_refcnt.load(Relaxed);
        loop {
            if old == 0 {
                return Err(LockFail::Detached);
            }
            if old >= limit {
                return Err(if old & X != 0 {
                    LockFail::Locked
                } else {
                    LockFail::LimitReached
                });
            }
            match self
                .vm_refcnt
                .compare_exchange_weak(old, old + 1, success, Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => old = now,
            }
        }
    }

    /// The reader's decrement; returns whether a writer or detacher may now be able to go on.
    /// Release: what the reader read under the lock happens before what they do next.
    pub(crate) fn put_ref(&self) -> bool {
        let order = if broken!("end_read_relaxed") {
            Relaxed
        } else {
            Release
        };
        let now = self.vm_refcnt.fetch_sub(1, order) - 1;
        debug_assert!(now != 0, "a reader dropped the attach reference");
        // A writer waits for X + 1, a detacher for X.
        now & X != 0 && now <= X + 1 && !broken!("no_wake")
    }

    /// The first half of the fault path's early bail-out (a racy hint).
    pub(crate) fn lock_seq_hint(&self) -> u64 {
        self.vm_lock_seq.load(Relaxed)
    }

    /// Deliberately wrong: a `memcpy` duplication of the lock words (`vmalock_break="copy_lock"`).
    #[cfg(any(loom, vmalock_break = "copy_lock"))]
    pub(crate) fn copy_state_from(&self, orig: &VmaLock) {
        self.vm_refcnt.store(orig.vm_refcnt.load(Relaxed), Relaxed);
        self.vm_lock_seq
            .store(orig.vm_lock_seq.load(Relaxed), Relaxed);
    }

    /// Test support: pretends `n` more readers hold the lock, to reach the reader limit
    /// without 2^30 threads. Only this crate's tests have it (feature `test-hooks`).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn test_add_readers(&self, n: u32) {
        self.vm_refcnt.fetch_add(n, Relaxed);
    }

    /// Test support: removes `n` readers added by [`test_add_readers`](Self::test_add_readers)
    /// (no writer may be waiting).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn test_remove_readers(&self, n: u32) {
        self.vm_refcnt.fetch_sub(n, Relaxed);
    }
}

impl Default for VmaLock {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for VmaLock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VmaLock")
            .field("vm_refcnt", &format_args!("{:#x}", self.refcount()))
            .field("vm_lock_seq", &self.lock_seq())
            .finish()
    }
}
