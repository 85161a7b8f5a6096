//! Single-threaded tests of the state machine and of every failure reason. The races are in
//! tests/loom.rs and tests/stress.rs.

extern crate std;

use crate::*;
use core::cell::Cell;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::vec::Vec;

#[path = "../tests/common/mod.rs"]
mod common;

/// The shared test VMA; its data word stands for the VMA's flags.
type Vma = common::Vma<AtomicU64>;

/// Never needs to wait in these tests: asserts the condition already holds, and records wakes.
#[derive(Default)]
struct NoWait {
    wakes: Cell<usize>,
    delays: std::cell::RefCell<Vec<DelayPoint>>,
}

impl Platform for NoWait {
    fn wait_until(&self, _key: usize, mut cond: impl FnMut() -> bool) {
        assert!(cond(), "a single-threaded test would wait forever");
    }
    fn wake_all(&self, _key: usize) {
        self.wakes.set(self.wakes.get() + 1);
    }
    fn delay(&self, at: DelayPoint) {
        self.delays.borrow_mut().push(at);
    }
}

struct Mm {
    id: usize,
    seq: MmLockSeq,
}

impl Mm {
    fn new(id: usize) -> Self {
        Self {
            id,
            seq: MmLockSeq::new(),
        }
    }
    fn ident(&self) -> MmIdentity<'_> {
        MmIdentity {
            id: self.id,
            lock_seq: &self.seq,
        }
    }
}

/// A VMA of `mm` over `[start, end)`, attached, the write session closed.
fn attached(mm: &Mm, start: u64, end: u64, p: &NoWait) -> Vma {
    let vma = Vma::new();
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, p);
    vma.set_identity(mm.id, start, end);
    vma.lock.vma_mark_attached(&mm.seq);
    mm.seq.mmap_write_unlock();
    vma
}

#[test]
fn constructed_state() {
    let lock = VmaLock::new();
    assert!(lock.is_constructed_state());
    assert!(!lock.is_attached());
    assert_eq!(lock.refcount(), 0);
    assert_eq!(lock.lock_seq(), VM_LOCK_SEQ_NEVER);
    const _: () = assert!(VM_REFCNT_LIMIT < VM_REFCNT_EXCLUDE_READERS);
    // The largest count a detacher can make (limit readers + X - 1) fits.
    assert!(
        VM_REFCNT_LIMIT
            .checked_add(VM_REFCNT_EXCLUDE_READERS)
            .is_some()
    );
}

#[test]
fn mm_sequence_is_odd_while_write_locked() {
    let seq = MmLockSeq::new();
    assert!(!seq.is_write_locked());
    seq.mmap_write_lock();
    assert!(seq.is_write_locked());
    assert_eq!(seq.sequence(), 1);
    seq.mmap_write_unlock();
    assert!(!seq.is_write_locked());
    assert_eq!(seq.sequence(), 2);
}

#[test]
fn read_lock_and_unlock() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0x1000, 0x3000, &p);
    assert_eq!(vma.lock.refcount(), 1);
    let a = vma_start_read(&vma, mm.ident(), &p).unwrap();
    let b = vma_start_read(&vma, mm.ident(), &p).unwrap();
    assert_eq!(vma.lock.refcount(), 3);
    assert_eq!(a.start(), 0x1000);
    vma_end_read(a);
    drop(b);
    assert_eq!(vma.lock.refcount(), 1);
    assert_eq!(p.wakes.get(), 0, "no writer, no wake-up");
}

#[test]
fn detached_vma_is_not_locked() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = Vma::new();
    vma.mm.store(1, Relaxed);
    vma.end.store(u64::MAX, Relaxed);
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Detached)
    );
    assert_eq!(vma.lock.refcount(), 0);
}

#[test]
fn write_lock_keeps_readers_out_until_the_session_ends() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p);
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, &p);
    assert!(vma.lock.is_write_locked(&mm.seq));
    assert_eq!(
        vma.lock.refcount(),
        1,
        "the exclude bit is only held while draining"
    );
    // Already locked in this session: a second call is a no-op.
    vma.lock.vma_start_write(&mm.seq, &p);
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Locked)
    );
    assert_eq!(vma.lock.refcount(), 1);
    mm.seq.mmap_write_unlock();
    assert!(!vma.lock.is_write_locked(&mm.seq));
    assert!(vma_start_read(&vma, mm.ident(), &p).is_ok());
}

#[test]
fn sequence_recheck_catches_a_lock_the_early_check_missed() {
    // The early check and the re-check both compare; with the delay hook we lock the VMA
    // between them, as a writer on another CPU would.
    struct LockInWindow<'a> {
        vma: &'a Vma,
        mm: &'a Mm,
        inner: NoWait,
    }
    impl Platform for LockInWindow<'_> {
        fn wait_until(&self, key: usize, cond: impl FnMut() -> bool) {
            self.inner.wait_until(key, cond)
        }
        fn wake_all(&self, key: usize) {
            self.inner.wake_all(key)
        }
        fn delay(&self, at: DelayPoint) {
            if at == DelayPoint::AfterEarlyCheck {
                self.mm.seq.mmap_write_lock();
                self.vma.lock.vma_start_write(&self.mm.seq, &self.inner);
            }
        }
    }
    let mm = Mm::new(1);
    let vma = attached(&mm, 0, 10, &NoWait::default());
    let p = LockInWindow {
        vma: &vma,
        mm: &mm,
        inner: NoWait::default(),
    };
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Locked)
    );
    assert_eq!(vma.lock.refcount(), 1);
}

#[test]
fn wrong_mm_is_refused_and_the_reference_dropped() {
    let (mm1, mm2, p) = (Mm::new(1), Mm::new(2), NoWait::default());
    let vma = attached(&mm2, 0, 10, &p);
    assert_eq!(
        vma_start_read(&vma, mm1.ident(), &p).err(),
        Some(LockFail::WrongMm)
    );
    assert_eq!(vma.lock.refcount(), 1);
}

#[test]
fn new_vma_is_write_locked_before_attach() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = Vma::new();
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, &p);
    assert_eq!(
        vma.lock.refcount(),
        0,
        "no readers to exclude when detached"
    );
    assert!(vma.lock.is_write_locked(&mm.seq));
    vma.mm.store(1, Relaxed);
    vma.end.store(10, Relaxed);
    vma.lock.vma_mark_attached(&mm.seq);
    assert!(vma.lock.is_attached());
    // Attached but still write-locked until the session ends.
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Locked)
    );
    mm.seq.mmap_write_unlock();
    assert!(vma_start_read(&vma, mm.ident(), &p).is_ok());
}

#[test]
fn detach_returns_to_the_constructed_state() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p);
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, &p);
    vma.lock.vma_mark_detached(&mm.seq, &p);
    assert!(vma.lock.is_constructed_state());
    mm.seq.mmap_write_unlock();
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Detached)
    );
}

#[test]
fn detach_with_a_transient_reader_waits_for_it() {
    // A transient reader (incremented after the write lock, about to find it locked) is
    // modelled by a phantom reader that leaves when the detacher starts waiting.
    struct LeaveWhenWaited<'a> {
        vma: &'a Vma,
        waited: Cell<u32>,
    }
    impl Platform for LeaveWhenWaited<'_> {
        fn wait_until(&self, _key: usize, mut cond: impl FnMut() -> bool) {
            assert!(!cond(), "the transient reader is still there");
            self.waited.set(self.waited.get() + 1);
            self.vma.lock.test_remove_readers(1);
            assert!(cond());
        }
        fn wake_all(&self, _key: usize) {}
    }
    let (mm, p0) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p0);
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, &p0);
    vma.lock.test_add_readers(1);
    let p = LeaveWhenWaited {
        vma: &vma,
        waited: Cell::new(0),
    };
    vma.lock.vma_mark_detached(&mm.seq, &p);
    assert_eq!(p.waited.get(), 1);
    assert!(vma.lock.is_constructed_state());
    mm.seq.mmap_write_unlock();
}

#[test]
fn reader_leaving_while_a_writer_drains_wakes_it_by_the_vma_address() {
    struct Keys(std::cell::RefCell<Vec<usize>>);
    impl Platform for Keys {
        fn wait_until(&self, _: usize, _: impl FnMut() -> bool) {}
        fn wake_all(&self, key: usize) {
            self.0.borrow_mut().push(key);
        }
    }
    let (mm, p0) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p0);
    let keys = Keys(Default::default());
    let r1 = vma_start_read(&vma, mm.ident(), &keys).unwrap();
    let r2 = vma_start_read(&vma, mm.ident(), &keys).unwrap();
    // A writer has set the bit and is waiting (simulated: its wait returned at once above).
    vma.lock.test_add_readers(VM_REFCNT_EXCLUDE_READERS);
    drop(r1);
    assert!(
        keys.0.borrow().is_empty(),
        "a reader is still in: no wake-up"
    );
    drop(r2);
    assert_eq!(*keys.0.borrow(), [vma.lock.wait_key()]);
    assert_eq!(vma.lock.wait_key(), core::ptr::from_ref(&vma.lock).addr());
}

#[test]
fn reader_limit() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p);
    // 1 (attached) + LIMIT - 2 readers: one more fits, then no more.
    vma.lock.test_add_readers(VM_REFCNT_LIMIT - 2);
    let last = vma_start_read(&vma, mm.ident(), &p).unwrap();
    assert_eq!(vma.lock.refcount(), VM_REFCNT_LIMIT);
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::LimitReached)
    );
    assert_eq!(vma.lock.refcount(), VM_REFCNT_LIMIT);
    drop(last);
    assert!(vma_start_read(&vma, mm.ident(), &p).is_ok());
    vma.lock.test_remove_readers(VM_REFCNT_LIMIT - 2);
    assert_eq!(vma.lock.refcount(), 1);
}

#[test]
fn duplicate_copies_fields_not_the_lock() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let orig = attached(&mm, 0, 10, &p);
    orig.data.store(7, Relaxed);
    let _reader = vma_start_read(&orig, mm.ident(), &p).unwrap();
    let new = Vma::new();
    vm_area_init_from(&new, &orig);
    assert!(new.lock.is_constructed_state());
    assert_eq!(new.lock.lock_seq(), VM_LOCK_SEQ_NEVER);
    assert_eq!((new.mm_id(), new.start(), new.end()), (1, 0, 10));
    assert_eq!(new.data.load(Relaxed), 7);
    assert_eq!(
        vma_start_read(&new, mm.ident(), &p).err(),
        Some(LockFail::Detached)
    );
}

fn one_vma_tree<'a>(vma: &'a Vma) -> impl FnMut(u64) -> Option<&'a Vma> {
    move |addr| (vma.start() <= addr && addr < vma.end()).then_some(vma)
}

#[test]
fn lock_vma_under_rcu_success_and_reasons() {
    let (mm, other, p) = (Mm::new(1), Mm::new(2), NoWait::default());
    let vma = attached(&mm, 0x1000, 0x2000, &p);
    let found = lock_vma_under_rcu(mm.ident(), 0x1800, one_vma_tree(&vma), 3, &p).unwrap();
    assert_eq!(found.misses, 0);
    assert_eq!(found.vma.start(), 0x1000);
    drop(found);

    let no_vma = lock_vma_under_rcu(mm.ident(), 0x5000, one_vma_tree(&vma), 3, &p);
    assert_eq!(no_vma.err().unwrap().reason, LockFail::NoVma);

    let wrong = lock_vma_under_rcu(other.ident(), 0x1800, one_vma_tree(&vma), 3, &p);
    assert_eq!(wrong.err().unwrap().reason, LockFail::WrongMm);

    // A stale tree that hands out a VMA not covering the address (reused elsewhere).
    let stale = lock_vma_under_rcu(mm.ident(), 0x9000, |_| Some(&vma), 3, &p);
    assert_eq!(stale.err().unwrap().reason, LockFail::OutOfRange);
    assert_eq!(vma.lock.refcount(), 1);
    assert!(p.delays.borrow().contains(&DelayPoint::BeforeRangeCheck));
}

/// A stale lookup that hands out a VMA reused just below the address: its end is the address
/// itself, which it does not cover (the end is exclusive); the address one below is covered.
#[test]
fn lock_vma_under_rcu_refuses_a_vma_ending_at_the_address() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0x1000, 0x2000, &p);
    let at_end = lock_vma_under_rcu(mm.ident(), 0x2000, |_| Some(&vma), 3, &p);
    assert_eq!(at_end.err().unwrap().reason, LockFail::OutOfRange);
    let above = lock_vma_under_rcu(mm.ident(), 0x2001, |_| Some(&vma), 3, &p);
    assert_eq!(above.err().unwrap().reason, LockFail::OutOfRange);
    let below = lock_vma_under_rcu(mm.ident(), 0xfff, |_| Some(&vma), 3, &p);
    assert_eq!(below.err().unwrap().reason, LockFail::OutOfRange);
    let last = lock_vma_under_rcu(mm.ident(), 0x1fff, |_| Some(&vma), 3, &p).unwrap();
    assert_eq!(last.vma.end(), 0x2000);
    drop(last);
    assert_eq!(vma.lock.refcount(), 1);
}

#[test]
fn lock_vma_under_rcu_retries_a_detached_vma() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let live = attached(&mm, 0, 10, &p);
    let dead = Vma::new();
    // Two lookups find the detached one, then the tree has been updated.
    let mut n = 0;
    let lookup = |_| {
        n += 1;
        Some(if n <= 2 { &dead } else { &live })
    };
    let found = lock_vma_under_rcu(mm.ident(), 5, lookup, 3, &p).unwrap();
    assert_eq!(found.misses, 2);
    drop(found);
    // Always detached: gives up after max_retries retries.
    let gave_up = lock_vma_under_rcu(mm.ident(), 5, |_| Some(&dead), 3, &p).err();
    assert_eq!(
        gave_up,
        Some(Fallback {
            reason: LockFail::Detached,
            misses: 4
        })
    );
}

#[test]
fn limit_and_lock_reasons_from_lock_vma_under_rcu() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p);
    vma.lock.test_add_readers(VM_REFCNT_LIMIT - 1);
    let full = lock_vma_under_rcu(mm.ident(), 5, one_vma_tree(&vma), 3, &p);
    assert_eq!(full.err().unwrap().reason, LockFail::LimitReached);
    vma.lock.test_remove_readers(VM_REFCNT_LIMIT - 1);
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, &p);
    let locked = lock_vma_under_rcu(mm.ident(), 5, one_vma_tree(&vma), 3, &p);
    assert_eq!(locked.err().unwrap().reason, LockFail::Locked);
    mm.seq.mmap_write_unlock();
}

#[test]
fn the_exclude_bit_refuses_readers_as_locked() {
    let (mm, p) = (Mm::new(1), NoWait::default());
    let vma = attached(&mm, 0, 10, &p);
    vma.lock.test_add_readers(VM_REFCNT_EXCLUDE_READERS);
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Locked)
    );
    assert_eq!(vma.lock.refcount(), VM_REFCNT_EXCLUDE_READERS + 1);
}

#[test]
fn a_pin_ignores_the_write_lock_but_not_detach_exclusion_or_the_owner() {
    let (mm, other, p) = (Mm::new(1), Mm::new(2), NoWait::default());
    let vma = attached(&mm, 0, 10, &p);
    mm.seq.mmap_write_lock();
    vma.lock.vma_start_write(&mm.seq, &p);
    assert_eq!(
        vma_start_read(&vma, mm.ident(), &p).err(),
        Some(LockFail::Locked)
    );
    let pinned = vma_pin(&vma, mm.ident(), &p).unwrap();
    assert_eq!((pinned.start(), pinned.end()), (0, 10));
    assert_eq!(vma.lock.refcount(), 2);
    drop(pinned);
    assert_eq!(vma.lock.refcount(), 1);
    assert_eq!(
        vma_pin(&vma, other.ident(), &p).err(),
        Some(LockFail::WrongMm)
    );
    assert_eq!(vma.lock.refcount(), 1);
    vma.lock.vma_mark_detached(&mm.seq, &p);
    mm.seq.mmap_write_unlock();
    assert_eq!(
        vma_pin(&vma, mm.ident(), &p).err(),
        Some(LockFail::Detached)
    );
    vma.lock.test_add_readers(VM_REFCNT_EXCLUDE_READERS + 1);
    assert_eq!(vma_pin(&vma, mm.ident(), &p).err(), Some(LockFail::Locked));
}
