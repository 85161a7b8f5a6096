//! Loom models of the per-VMA lock, run on the real code with loom's atomics
//! (`RUSTFLAGS="--cfg loom"`).
//!
//! The world of every model is a tiny typesafe slab: a fixed array of VMA objects that are never
//! freed, only detached and reused at once — exactly what `TYPESAFE_BY_RCU` guarantees a stale
//! reader — two address spaces (ids 1 and 2), each with a sequence and a "tree" of one slot per
//! 5-byte region (Release publish, Acquire lookup).
//!
//! Each VMA carries, besides its atomic fields, a payload in a loom `UnsafeCell`: a copy of what
//! the VMA is (owner, range, version) written only by the `mmap_lock` writer — under the VMA
//! write lock, or while the VMA is detached — and read by readers only while they hold a read
//! lock. Loom reports any read not ordered after the last write and any write not ordered after
//! the reads (a reader inside while a writer writes, or a field published without
//! Release/Acquire); and the reader asserts that the payload is the VMA it asked for.
//!
//! `fork_vs_write_fault` adds one page of VMA 0 to that world: the parent's and the child's
//! page-table entries (atomics, as in the kernel), two frames each with a count of extra
//! mappers and one word of contents, and the `mmap_lock` a fault falls back to. It checks the
//! kernel's fork against a write fault rather than the lock itself.
//!
//! Each model is named after the case it checks. `cargo xtask check-breaks` runs them with one
//! check removed at a time (`VMALOCK_BREAK=NAME`, or `--cfg vmalock_break="NAME"`;
//! `fork_no_write_lock` removes the write lock from the fork model's fork) and shows that a
//! model fails under every one.
//!
//! Run with `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2
//! cargo test --release -p vmalock --test loom`.
#![cfg(loom)]

mod common;

use common::VmaData;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread::{self, JoinHandle};
use vmalock::{
    Fallback, LockFail, MmIdentity, MmLockSeq, Platform, VM_REFCNT_LIMIT, VmaFields,
    lock_vma_under_rcu, vm_area_init_from, vma_pin, vma_start_read,
};

const MM1: usize = 1;
const MM2: usize = 2;
const REGION: u64 = 5;
const REGIONS: usize = 6;
const EMPTY: usize = usize::MAX;

/// What a VMA is, as its writer meant it; checked by readers under the read lock.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Payload {
    mm: usize,
    start: u64,
    end: u64,
    version: u64,
}

/// The payload, in a loom cell.
#[derive(Default)]
struct PayloadCell(UnsafeCell<Payload>);

impl PayloadCell {
    /// Reads the payload; loom checks the read is ordered after the last write.
    fn get(&self) -> Payload {
        // SAFETY: loom's cell checks that no write races with this read.
        self.0.with(|p| unsafe { *p })
    }

    fn update(&self, f: impl FnOnce(&mut Payload)) {
        // SAFETY: loom's cell checks that no read or write races with this write.
        self.0.with_mut(|p| f(unsafe { &mut *p }))
    }
}

impl VmaData for PayloadCell {
    fn copy_from(&self, orig: &Self) {
        let p = orig.get();
        self.update(|q| *q = p);
    }
}

type Vma = common::Vma<PayloadCell>;

impl Vma {
    fn payload(&self) -> Payload {
        self.data.get()
    }

    fn set_payload(&self, f: impl FnOnce(&mut Payload)) {
        self.data.update(f)
    }
}

struct Mm {
    id: usize,
    seq: MmLockSeq,
    tree: [AtomicUsize; REGIONS],
}

#[derive(Clone, Copy, PartialEq)]
enum Wait {
    /// Writers spin with `yield_now`: the smallest state space.
    Spin,
    /// Writers sleep on a condition variable that only `wake_all` signals, so a lost or
    /// misdirected wake-up leaves the writer asleep and loom reports a deadlock.
    Sleep,
}

struct World {
    vmas: Vec<Vma>,
    mms: [Mm; 2],
    wait: Wait,
    queue: Mutex<()>,
    wakeup: Condvar,
}

impl World {
    fn new(vmas: usize, wait: Wait) -> Arc<World> {
        let mm = |id| Mm {
            id,
            seq: MmLockSeq::new(),
            tree: std::array::from_fn(|_| AtomicUsize::new(EMPTY)),
        };
        Arc::new(World {
            vmas: (0..vmas).map(|_| Vma::new()).collect(),
            mms: [mm(MM1), mm(MM2)],
            wait,
            queue: Mutex::new(()),
            wakeup: Condvar::new(),
        })
    }

    fn mm(&self, id: usize) -> &Mm {
        &self.mms[id - 1]
    }

    fn ident(&self, id: usize) -> MmIdentity<'_> {
        MmIdentity {
            id,
            lock_seq: &self.mm(id).seq,
        }
    }

    fn is_vma_key(&self, key: usize) -> bool {
        self.vmas.iter().any(|v| v.lock.wait_key() == key)
    }

    /// A world of one VMA object, installed in address space 1 at [0, 10) with version 1.
    fn with_one_vma(wait: Wait) -> Arc<World> {
        let w = World::new(1, wait);
        w.session(MM1, || w.install(MM1, 0, 0, 10, 1));
        w
    }

    /// One `mmap_lock` write session (the model has one writer per address space, so the
    /// `mmap_lock` itself is implied).
    fn session(&self, mm: usize, f: impl FnOnce()) {
        self.mm(mm).seq.mmap_write_lock();
        f();
        self.mm(mm).seq.mmap_write_unlock();
    }

    /// The RCU tree walk.
    fn lookup(&self, mm: usize, addr: u64) -> Option<&Vma> {
        let i = self.mm(mm).tree[(addr / REGION) as usize].load(Acquire);
        (i != EMPTY).then(|| &self.vmas[i])
    }

    fn publish(&self, mm: usize, start: u64, end: u64, vma: usize) {
        for r in start / REGION..end / REGION {
            self.mm(mm).tree[r as usize].store(vma, Release);
        }
    }

    /// mmap: a detached VMA from the slab, write-locked, filled in, attached, then published.
    fn install(&self, mm: usize, vma: usize, start: u64, end: u64, version: u64) {
        let v = &self.vmas[vma];
        let seq = &self.mm(mm).seq;
        assert!(v.lock.is_constructed_state());
        v.lock.vma_start_write(seq, self);
        v.set_identity(mm, start, end);
        v.set_payload(|p| {
            *p = Payload {
                mm,
                start,
                end,
                version,
            }
        });
        v.lock.vma_mark_attached(seq);
        self.publish(mm, start, end, vma);
    }

    /// mprotect: write-lock the VMA and change its payload's version.
    fn rewrite(&self, mm: usize, vma: usize, version: u64) {
        let v = &self.vmas[vma];
        v.lock.vma_start_write(&self.mm(mm).seq, self);
        v.set_payload(|p| p.version = version);
    }

    /// munmap: write-lock, unpublish, detach; the object is then free for reuse.
    fn remove(&self, mm: usize, vma: usize) {
        let v = &self.vmas[vma];
        let seq = &self.mm(mm).seq;
        v.lock.vma_start_write(seq, self);
        self.publish(mm, v.start(), v.end(), EMPTY);
        v.lock.vma_mark_detached(seq, self);
        assert!(v.lock.is_constructed_state(), "detached with {:?}", v.lock);
    }

    /// The page fault's fast path for `addr` in `mm`; on success, checks under the read lock
    /// that the VMA is the one asked for and returns what it is.
    fn fault(&self, mm: usize, addr: u64, retries: u32) -> Result<Payload, Fallback> {
        let found =
            lock_vma_under_rcu(self.ident(mm), addr, |a| self.lookup(mm, a), retries, self)?;
        Ok(check_locked(&found.vma, mm, addr))
    }
}

/// Under a read lock: the VMA belongs to `mm` and covers `addr`.
fn check_locked(vma: &Vma, mm: usize, addr: u64) -> Payload {
    let p = vma.payload();
    assert_eq!(p.mm, mm, "read-locked another address space's VMA: {p:?}");
    assert!(
        p.start <= addr && addr < p.end,
        "read-locked a VMA that does not cover {addr}: {p:?}"
    );
    p
}

impl Platform for World {
    fn wait_until(&self, key: usize, mut cond: impl FnMut() -> bool) {
        assert!(self.is_vma_key(key), "waiting on a key that is no VMA");
        match self.wait {
            Wait::Spin => {
                while !cond() {
                    thread::yield_now();
                }
            }
            Wait::Sleep => {
                let mut guard = self.queue.lock().unwrap();
                while !cond() {
                    guard = self.wakeup.wait(guard).unwrap();
                }
            }
        }
    }

    fn wake_all(&self, key: usize) {
        assert!(
            !self.mms.iter().any(|mm| mm.id == key),
            "a reader woke the writer through address space {key}, reached from a VMA it no \
             longer held a reference to (Linux's July 2025 use-after-free)"
        );
        assert!(self.is_vma_key(key), "woken through a key that is no VMA");
        if self.wait == Wait::Sleep {
            let _guard = self.queue.lock().unwrap();
            self.wakeup.notify_all();
        }
    }
}

/// Runs `f` on a thread of its own, with its own reference to the world.
fn spawn(w: &Arc<World>, f: impl FnOnce(&World) + 'static) -> JoinHandle<()> {
    let w = w.clone();
    thread::spawn(move || f(&w))
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs a model at the project's preemption bound (`LOOM_MAX_PREEMPTIONS`).
fn model(f: impl Fn() + Sync + Send + 'static) {
    loom::model(f);
}

/// Runs a small model with at least three preemptions: these cost under a second even so.
fn small_model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if let Some(bound) = builder.preemption_bound {
        builder.preemption_bound = Some(bound.max(3));
    }
    builder.check(f);
}

/// No reader holds a read lock while a writer holds the VMA write lock, and the writer waits
/// for every reader: two readers fault while the writer write-locks the VMA and rewrites its
/// payload. Loom's cell reports any overlap; the readers see version 1 or 2, never a mix.
#[test]
fn reader_vs_writer() {
    model(|| {
        let w = World::with_one_vma(Wait::Sleep);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                spawn(&w, |w| {
                    if let Ok(p) = w.fault(MM1, 5, 1) {
                        assert!(p.version == 1 || p.version == 2, "{p:?}");
                    }
                })
            })
            .collect();
        w.session(MM1, || w.rewrite(MM1, 0, 2));
        join_all(readers);
        assert_eq!(w.vmas[0].lock.refcount(), 1);
    });
}

/// Seed case 1 (same address space): the VMA a reader found at 5 is removed and reused at once
/// for [20, 30) in the same address space. The reader must fail (detached, locked, or out of
/// range) or lock a VMA that covers 5 — never the reused one.
#[test]
fn reuse_same_mm_other_address() {
    small_model(|| {
        let w = World::with_one_vma(Wait::Spin);
        let reader = spawn(&w, |w| {
            let _ = w.fault(MM1, 5, 1);
        });
        w.session(MM1, || {
            w.remove(MM1, 0);
            w.install(MM1, 0, 20, 30, 2);
        });
        reader.join().unwrap();
    });
}

/// Seed case 1, the range's end: the VMA a reader found at 10 ([10, 15)) is removed and reused
/// at once just below, at [5, 10), in the same address space, so that its end is the very
/// address the reader faults on. The range check must refuse it (the end is exclusive); a check
/// that takes the end as inclusive, or ignores it, locks a VMA that does not cover 10.
#[test]
fn reuse_same_mm_ending_at_the_address() {
    small_model(|| {
        let w = World::new(1, Wait::Spin);
        w.session(MM1, || w.install(MM1, 0, 10, 15, 1));
        let reader = spawn(&w, |w| {
            let _ = w.fault(MM1, 10, 1);
        });
        w.session(MM1, || {
            w.remove(MM1, 0);
            w.install(MM1, 0, 5, 10, 2);
        });
        reader.join().unwrap();
    });
}

/// Seed case 2 (and Jann Horn's 2025 interleaving): while a reader of address space 1 is
/// locking the VMA it found, the VMA is removed, reused by address space 2 at the same range,
/// and then unmapped there, whose writer must wait out the reader's transient reference. The
/// reader must never succeed with address space 2's VMA (the range check cannot tell them
/// apart, and address space 1's sequence means nothing for a foreign VMA), and its wake-up
/// must reach the writer without touching either address space (checked in `wake_all`).
#[test]
fn reuse_other_mm_while_locking() {
    model(|| {
        let w = World::with_one_vma(Wait::Sleep);
        let reader = spawn(&w, |w| {
            let _ = w.fault(MM1, 5, 1);
        });
        w.session(MM1, || w.remove(MM1, 0));
        w.session(MM2, || w.install(MM2, 0, 0, 10, 2));
        w.session(MM2, || w.remove(MM2, 0));
        reader.join().unwrap();
        assert!(w.vmas[0].lock.is_constructed_state());
    });
}

/// Seed case 3: the object is reused and re-attached in address space 2 at [20, 30). A reader
/// of address space 1 that found it at 5 and whose Acquire increment succeeds against the new
/// attach must see the new owner and range (Relaxed loads, as in the real code) — and so fail —
/// because they were stored before the Release attach.
#[test]
fn reattach_ordering() {
    small_model(|| {
        let w = World::with_one_vma(Wait::Spin);
        let reader = spawn(&w, |w| {
            let _ = w.fault(MM1, 5, 0);
        });
        w.session(MM1, || w.remove(MM1, 0));
        w.session(MM2, || w.install(MM2, 0, 20, 30, 2));
        reader.join().unwrap();
    });
}

/// The maps walk's pin (`vma_pin`), which a write lock does not refuse: a reader pins the VMA
/// it found at 5 while the writer write-locks it, unpublishes and detaches it, and reuses the
/// object at [20, 30) in the same address space, all in one session. The reader trusts the pin
/// only if a second lookup still finds the same VMA at 5; it must then read the VMA's first
/// life whole: the detach waits for the pin, so the reuse's payload write cannot race with the
/// read (loom's cell), and the second lookup rejects the object in its second life.
#[test]
fn pin_vs_detach_and_reuse() {
    small_model(|| {
        let w = World::with_one_vma(Wait::Spin);
        let reader = spawn(&w, |w| {
            let Some(vma) = w.lookup(MM1, 5) else {
                return;
            };
            if let Ok(pinned) = vma_pin(vma, w.ident(MM1), w)
                && w.lookup(MM1, 5).is_some_and(|now| std::ptr::eq(now, vma))
            {
                let p = check_locked(&pinned, MM1, 5);
                assert_eq!(p.version, 1, "pinned the VMA in its second life: {p:?}");
            }
        });
        w.session(MM1, || {
            w.remove(MM1, 0);
            w.install(MM1, 0, 20, 30, 2);
        });
        reader.join().unwrap();
        assert_eq!(w.vmas[0].lock.refcount(), 1);
    });
}

/// Vlastimil Babka's catch: a split duplicates VMA 0 ([0, 10), read-locked by a holder) into
/// object 1, which was the VMA at [0, 10) before VMA 0 replaced it and which a stale reader
/// still probes at 7. The copy must leave object 1 detached: not attached, not read-locked by
/// the holder's reference, so the prober cannot lock it before the split attaches it.
#[test]
fn duplicate_does_not_copy_lock_state() {
    model(|| {
        let w = World::new(2, Wait::Spin);
        w.session(MM1, || w.install(MM1, 1, 0, 10, 1));
        w.session(MM1, || {
            w.remove(MM1, 1);
            w.install(MM1, 0, 0, 10, 2);
        });
        let holder = spawn(&w, |w| {
            let _ = w.fault(MM1, 2, 0);
        });
        let prober = spawn(&w, |w| {
            // The pointer it found before object 1 was removed, then the tree.
            let mut stale = Some(&w.vmas[1]);
            let lookup = |a| stale.take().or_else(|| w.lookup(MM1, a));
            if let Ok(found) = lock_vma_under_rcu(w.ident(MM1), 7, lookup, 0, w) {
                check_locked(&found.vma, MM1, 7);
            }
        });
        let seq = &w.mm(MM1).seq;
        let (orig, new) = (&w.vmas[0], &w.vmas[1]);
        w.session(MM1, || {
            vm_area_init_from(new, orig);
            assert!(
                new.lock.is_constructed_state(),
                "the duplicate looks attached or read-locked: {:?}",
                new.lock
            );
            // Split at 5: the new VMA takes [5, 10), the original keeps [0, 5).
            new.start.store(5, Relaxed);
            new.set_payload(|p| {
                p.start = 5;
                p.version = 3;
            });
            orig.lock.vma_start_write(seq, &*w);
            orig.end.store(5, Relaxed);
            orig.set_payload(|p| p.end = 5);
            new.lock.vma_start_write(seq, &*w);
            new.lock.vma_mark_attached(seq);
            w.publish(MM1, 5, 10, 1);
        });
        holder.join().unwrap();
        prober.join().unwrap();
    });
}

/// A writer sleeps until the readers it excludes have left; the last one wakes it through the
/// VMA's own address, never through an address space: here one reader of address space 2 and
/// one stale reader of address space 1, whose VMA was recycled into address space 2. A lost or
/// misdirected wake-up leaves the writer asleep (loom: deadlock); a wake-up through an address
/// space fails in `wake_all`.
#[test]
fn writer_waits_for_readers_and_wakeup_not_through_mm() {
    model(|| {
        let w = World::with_one_vma(Wait::Sleep);
        w.session(MM1, || w.remove(MM1, 0));
        w.session(MM2, || w.install(MM2, 0, 0, 10, 2));
        let stale = spawn(&w, |w| {
            let r = vma_start_read(&w.vmas[0], w.ident(MM1), w);
            assert!(
                r.is_err(),
                "locked address space 2's VMA for address space 1"
            );
        });
        let reader = spawn(&w, |w| {
            if let Ok(p) = w.fault(MM2, 5, 0) {
                assert!(p.version == 2 || p.version == 3, "{p:?}");
            }
        });
        w.session(MM2, || w.rewrite(MM2, 0, 3));
        stale.join().unwrap();
        reader.join().unwrap();
        assert_eq!(w.vmas[0].lock.refcount(), 1);
    });
}

/// Detaching waits for transient readers — readers that incremented after the write lock and
/// are about to back off — so that on return `vm_refcnt` is 0 for good and the object can be
/// reused: here its payload is overwritten at once, as a reuse would.
#[test]
fn detach_waits_for_transient_readers() {
    small_model(|| {
        let w = World::with_one_vma(Wait::Sleep);
        let reader = spawn(&w, |w| {
            if let Ok(p) = w.fault(MM1, 5, 1) {
                assert_eq!(p.version, 1);
            }
        });
        w.session(MM1, || {
            w.remove(MM1, 0);
            w.vmas[0].set_payload(|p| p.version = 99);
        });
        reader.join().unwrap();
        assert!(
            w.vmas[0].lock.is_constructed_state(),
            "a reader's reference outlived the detach: {:?}",
            w.vmas[0].lock
        );
    });
}

/// Readers fail, and fall back, when one more would reach the exclude bit: with the count one
/// below the limit, two readers never hold the lock together, and the one refused is refused
/// for the limit.
#[test]
fn reader_limit() {
    small_model(|| {
        let w = World::with_one_vma(Wait::Spin);
        let v = &w.vmas[0];
        v.lock.test_add_readers(VM_REFCNT_LIMIT - 2);
        let inside = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let inside = inside.clone();
                spawn(&w, move |w| {
                    let lookup = |a| w.lookup(MM1, a);
                    match lock_vma_under_rcu(w.ident(MM1), 5, lookup, 0, w) {
                        Ok(_locked) => {
                            let others = inside.fetch_add(1, SeqCst);
                            assert_eq!(others, 0, "two readers past the limit");
                            inside.fetch_sub(1, SeqCst);
                        }
                        Err(f) => assert_eq!(f.reason, LockFail::LimitReached),
                    }
                })
            })
            .collect();
        join_all(readers);
        assert_eq!(v.lock.refcount(), VM_REFCNT_LIMIT - 1);
        v.lock.test_remove_readers(VM_REFCNT_LIMIT - 2);
    });
}

/// Page-table entry bits of the fork model: the kernel's x86-64 `PRESENT` and `WRITABLE`, and a
/// frame index in the address bits.
const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const FRAME_SHIFT: u32 = 12;

fn pte(frame: usize, flags: u64) -> u64 {
    ((frame as u64) << FRAME_SHIFT) | flags
}

fn frame_of(entry: u64) -> usize {
    (entry >> FRAME_SHIFT) as usize
}

/// A physical page: how many mappers it has besides the first, and its contents (one word).
#[derive(Default)]
struct Frame {
    /// 0: one mapper, who owns it and may write it in place; more: copy on write.
    extra_mappers: AtomicU32,
    data: AtomicU64,
}

/// The memory of the fork model: the parent's and the child's entry for one page of VMA 0, the
/// frames, and the parent's `mmap_lock` (one writer and one fallback reader: a mutex suffices).
struct Memory {
    mmap_lock: Mutex<()>,
    parent: AtomicU64,
    child: AtomicU64,
    frames: [Frame; 2],
    next_frame: AtomicUsize,
}

impl Memory {
    /// Frame 0 mapped read-only in the parent, its only mapper — as an earlier fork whose child
    /// has exited leaves it — so that the parent's first write faults.
    fn new() -> Arc<Memory> {
        Arc::new(Memory {
            mmap_lock: Mutex::new(()),
            parent: AtomicU64::new(pte(0, PRESENT)),
            child: AtomicU64::new(0),
            frames: Default::default(),
            next_frame: AtomicUsize::new(1),
        })
    }

    /// The parent writes `value` at `addr`: a write fault under the VMA lock, or under the
    /// `mmap_lock` if the VMA is write-locked. The store itself is done under the lock that
    /// served the fault: the retried instruction stores through the entry the fault left, or
    /// faults again; a store through a stale TLB entry is the business of fork's TLB flush,
    /// which happens before the child can run and is not modelled.
    fn write(&self, w: &World, addr: u64, value: u64) {
        let lookup = |a| w.lookup(MM1, a);
        match lock_vma_under_rcu(w.ident(MM1), addr, lookup, 0, w) {
            Ok(found) => {
                check_locked(&found.vma, MM1, addr);
                self.write_fault(value);
            }
            Err(_) => {
                let _mmap = self.mmap_lock.lock().unwrap();
                self.write_fault(value);
            }
        }
    }

    /// The write fault on the parent's page, under its VMA's read lock or the `mmap_lock`:
    /// reuse the frame if the parent is its only mapper, else copy it. Every change to the
    /// entry is a compare-and-swap from the value the fault loaded (as the kernel's
    /// `fill_page`). Only the fault makes the entry writable or points it elsewhere, so its
    /// compare-and-swap cannot fail here and it copies at most once: two frames suffice.
    fn write_fault(&self, value: u64) {
        loop {
            let old = self.parent.load(Acquire);
            assert!(old & PRESENT != 0, "the parent's page vanished: {old:#x}");
            let frame = &self.frames[frame_of(old)];
            let new = if old & WRITABLE != 0 {
                old
            } else if frame.extra_mappers.load(Acquire) == 0 {
                old | WRITABLE
            } else {
                let copy = self.next_frame.fetch_add(1, Relaxed);
                let data = frame.data.load(Relaxed);
                self.frames[copy].data.store(data, Relaxed);
                pte(copy, PRESENT | WRITABLE)
            };
            if new == old
                || self
                    .parent
                    .compare_exchange(old, new, AcqRel, Acquire)
                    .is_ok()
            {
                if frame_of(new) != frame_of(old) {
                    // Release: our copy's read of the old frame happens before its remaining
                    // mapper, now its owner, writes it in place.
                    frame.extra_mappers.fetch_sub(1, Release);
                }
                self.frames[frame_of(new)].data.store(value, Relaxed);
                return;
            }
        }
    }

    /// fork, copying the parent's one VMA: write-lock it, then write-protect and share its
    /// page. Returns what the child sees in its page when fork returns.
    ///
    /// The entry and count operations are Relaxed: the VMA write lock alone orders them
    /// against the faults (a fault before it leaves its read lock with a Release that the
    /// write lock acquires; one after it re-checks the sequence with Acquire against
    /// `mmap_write_unlock`'s Release).
    fn fork(&self, w: &World) -> u64 {
        let _mmap = self.mmap_lock.lock().unwrap();
        w.session(MM1, || {
            // Deliberately wrong under `fork_no_write_lock`: Linux before 6.4's fix ("fork:
            // lock VMAs of the parent process when forking").
            if !cfg!(vmalock_break = "fork_no_write_lock")
                && !vmalock::loom_break_selected("fork_no_write_lock")
            {
                w.vmas[0].lock.vma_start_write(&w.mm(MM1).seq, w);
            }
            let old = self.parent.fetch_and(!WRITABLE, Relaxed);
            if old & PRESENT != 0 {
                self.frames[frame_of(old)]
                    .extra_mappers
                    .fetch_add(1, Relaxed);
                self.child.store(old & !WRITABLE, Relaxed);
            }
        });
        let child = self.child.load(Relaxed);
        self.frames[frame_of(child)].data.load(Relaxed)
    }

    /// After both threads: the parent cannot write a shared frame, and the child's page still
    /// holds what it held when fork returned.
    fn check(&self, child_at_fork: u64, parent_wrote: u64) {
        let (parent, child) = (self.parent.load(Relaxed), self.child.load(Relaxed));
        assert_eq!(child & (PRESENT | WRITABLE), PRESENT, "child {child:#x}");
        let shared = self.frames[frame_of(parent)].extra_mappers.load(Relaxed);
        assert!(
            parent & WRITABLE == 0 || shared == 0,
            "the parent's entry {parent:#x} is writable but its frame has {shared} other \
             mapper(s) (the child's entry is {child:#x})"
        );
        let data = self.frames[frame_of(child)].data.load(Relaxed);
        assert_eq!(
            data, child_at_fork,
            "a parent write after fork changed the child's page"
        );
        assert_eq!(
            self.frames[frame_of(parent)].data.load(Relaxed),
            parent_wrote
        );
    }
}

/// fork against a concurrent write fault under the VMA lock (Linux 6.4's "fork: lock VMAs of
/// the parent process when forking"). The parent's page is read-only with no other mapper, so
/// its write faults: a fault before fork reuses the page, one after fork copies it, one while
/// fork holds the VMA write lock falls back to the `mmap_lock` and so runs after fork. Without
/// the write lock (`vmalock_break="fork_no_write_lock"`) the fault can see the count at 0
/// before fork raises it and make the entry writable after fork shared the page: the parent's
/// write then lands in the child's page.
#[test]
fn fork_vs_write_fault() {
    model(|| {
        let w = World::with_one_vma(Wait::Sleep);
        let mem = Memory::new();
        let parent = {
            let (w, mem) = (w.clone(), mem.clone());
            thread::spawn(move || mem.write(&w, 5, 1))
        };
        let child_at_fork = mem.fork(&w);
        parent.join().unwrap();
        mem.check(child_at_fork, 1);
    });
}
