//! The reader's side: `vma_start_read`, the read guard, `lock_vma_under_rcu`, and duplication.

use crate::lock::{MmLockSeq, VmaLock};
use crate::platform::{DelayPoint, Platform};
use core::ops::Deref;

/// What the lock needs to know about a VMA. Every method is a Relaxed load of an atomic field
/// (or a field projection): the reader calls them on VMAs that may be changing under it, and
/// trusts the answers only after its Acquire increment.
pub trait VmaFields {
    /// The VMA's lock words: a field of the VMA (the reader turns its address into the wait
    /// key, so it must not load anything).
    fn lock(&self) -> &VmaLock;
    /// The identity of the owning address space, as a number (the kernel: the `Mm`'s
    /// address). Compared, never dereferenced: the VMA may belong to an address space that is
    /// being torn down.
    fn mm_id(&self) -> usize;
    /// The first address of the VMA.
    fn start(&self) -> u64;
    /// One past the last address of the VMA.
    fn end(&self) -> u64;
}

/// Duplication (split, `mprotect` of a part, fork).
pub trait VmaCopy: VmaFields {
    /// Copies every field of `orig` into `self` one by one — never the lock words. `self` is a
    /// detached VMA fresh from the slab that stale readers may be probing; the caller holds
    /// the `mmap_lock` for writing.
    fn copy_fields_from(&self, orig: &Self);
}

/// Initialises `new` (detached, just allocated) as a copy of `orig` (Linux's
/// `vm_area_init_from`): the fields, not the lock. Copying the lock state would make `new` look
/// attached, or read-locked by `orig`'s readers, to any stale reader that still holds a pointer
/// to the object from its previous life; `new` stays detached until the caller attaches it.
pub fn vm_area_init_from<V: VmaCopy>(new: &V, orig: &V) {
    debug_assert!(
        new.lock().is_constructed_state(),
        "duplicating into an attached VMA"
    );
    new.copy_fields_from(orig);
    #[cfg(any(loom, vmalock_break = "copy_lock"))]
    if broken!("copy_lock") {
        new.lock().copy_state_from(orig.lock());
    }
}

/// The address space a reader works for: its identity (compared with [`VmaFields::mm_id`]) and
/// its sequence.
#[derive(Clone, Copy)]
pub struct MmIdentity<'a> {
    /// The value [`VmaFields::mm_id`] returns for this address space's VMAs. Unique among live
    /// address spaces (a freed one's VMAs are all detached, so reusing its id is harmless).
    pub id: usize,
    /// The address space's sequence.
    pub lock_seq: &'a MmLockSeq,
}

/// Why a read lock was not taken; every failure sends the fault to the `mmap_lock` path.
///
/// Linux's counters: `lock_vma_under_rcu` counts one `VMA_LOCK_ABORT` per failure and one
/// `VMA_LOCK_MISS` per detached VMA it retried past ([`Found::misses`], [`Fallback::misses`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockFail {
    /// The tree has no VMA at the address.
    NoVma,
    /// The VMA was detached (`vm_refcnt` 0): removed, freed, or reused but not yet attached.
    /// [`lock_vma_under_rcu`] retries the lookup.
    Detached,
    /// Write-locked in the current session, or a writer or detacher is draining readers.
    Locked,
    /// The VMA belongs to another address space (reused: seed case 1c/2).
    WrongMm,
    /// Too many readers ([`VM_REFCNT_LIMIT`](crate::VM_REFCNT_LIMIT)).
    LimitReached,
    /// The VMA does not cover the address (reused elsewhere, or changed before we locked it).
    OutOfRange,
}

/// A read lock on a VMA; dropping it is `vma_end_read`. It dereferences to the VMA, whose
/// fields are stable while it lives (writers wait for it).
#[must_use = "dropping the guard releases the read lock at once"]
pub struct ReadLocked<'a, V: VmaFields, P: Platform> {
    vma: &'a V,
    platform: &'a P,
}

impl<V: VmaFields, P: Platform> Deref for ReadLocked<'_, V, P> {
    type Target = V;

    fn deref(&self) -> &V {
        self.vma
    }
}

impl<V: VmaFields, P: Platform> Drop for ReadLocked<'_, V, P> {
    fn drop(&mut self) {
        let lock = self.vma.lock();
        // The key is taken before the decrement: afterwards the VMA may be detached, freed and
        // reused by another address space, and nothing of it may be loaded.
        let key = lock.wait_key();
        let wake = lock.put_ref();
        self.platform.delay(DelayPoint::AfterPutRef);
        if wake {
            // Deliberately wrong under `wake_via_mm`: Linux's July 2025 use-after-free.
            let key = if broken!("wake_via_mm") {
                self.vma.mm_id()
            } else {
                key
            };
            self.platform.wake_all(key);
        }
    }
}

/// Releases a read lock (the same as dropping it).
pub fn vma_end_read<V: VmaFields, P: Platform>(guard: ReadLocked<'_, V, P>) {
    drop(guard);
}

/// Tries to read-lock `vma` for the address space `mm`. Never waits.
///
/// Call inside an RCU read section in which `vma` was found (it may have been freed and reused
/// since; the typesafe slab keeps it a VMA). In order:
/// 1. a racy early bail-out if `vm_lock_seq` equals `mm`'s sequence;
/// 2. the Acquire increment, refused at 0 ([`LockFail::Detached`]), with the exclude bit set
///    ([`LockFail::Locked`]) or at the limit ([`LockFail::LimitReached`]);
/// 3. the owner check, `mm_id() == mm.id` — before the sequence check, because compared with a
///    foreign VMA's `vm_lock_seq`, `mm`'s sequence means nothing;
/// 4. the sequence re-check, `mm`'s sequence loaded with Acquire.
///
/// A failure after step 2 drops the reference like [`vma_end_read`], touching no address
/// space. The range is not checked here: see [`lock_vma_under_rcu`].
pub fn vma_start_read<'a, V: VmaFields, P: Platform>(
    vma: &'a V,
    mm: MmIdentity<'_>,
    platform: &'a P,
) -> Result<ReadLocked<'a, V, P>, LockFail> {
    let lock = vma.lock();
    if lock.lock_seq_hint() == mm.lock_seq.sequence() {
        return Err(LockFail::Locked);
    }
    platform.delay(DelayPoint::AfterEarlyCheck);
    let guard = take_reference(vma, mm, platform)?;
    if !broken!("seq_recheck") && lock.lock_seq_hint() == mm.lock_seq.sequence_acquire() {
        return Err(LockFail::Locked);
    }
    Ok(guard)
}

/// Steps 2 and 3 of [`vma_start_read`]: the Acquire increment and the owner check.
fn take_reference<'a, V: VmaFields, P: Platform>(
    vma: &'a V,
    mm: MmIdentity<'_>,
    platform: &'a P,
) -> Result<ReadLocked<'a, V, P>, LockFail> {
    vma.lock().try_get_ref()?;
    // We hold a reference: the VMA cannot be detached, so not freed or reused, until the guard
    // drops it; its fields were stored before the attach or the clear our increment read from.
    let guard = ReadLocked { vma, platform };
    platform.delay(DelayPoint::AfterGetRef);
    if vma.mm_id() != mm.id && !broken!("mm_check") {
        return Err(LockFail::WrongMm);
    }
    Ok(guard)
}

/// A reference that keeps a VMA attached, taken whether or not the VMA is write-locked
/// ([`vma_pin`]). Dropping it is the same as [`vma_end_read`].
///
/// It keeps the VMA in its current life (not detached, so not freed or reused) but, unlike a
/// read lock, not away from the writer of the current session, who may hold the VMA
/// write-locked. So it makes the VMA's fields stable only in a kernel whose writers change a
/// VMA's fields while it is detached and never in place under the write lock (the kernel this
/// crate serves replaces a VMA by fresh ones for every change).
#[must_use = "dropping the guard releases the reference at once"]
pub struct Pinned<'a, V: VmaFields, P: Platform>(ReadLocked<'a, V, P>);

impl<V: VmaFields, P: Platform> Deref for Pinned<'_, V, P> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.0
    }
}

/// Takes a reference on `vma` for the address space `mm` that ignores the write lock: steps 2
/// and 3 of [`vma_start_read`], without the sequence checks. Never waits.
///
/// For readers that copy a VMA's fields and would otherwise be starved by writers that keep
/// write-locking it (a `/proc/PID/maps` reader under a storm of `mprotect`s): refused only
/// while the VMA is detached ([`LockFail::Detached`]), while a writer or detacher excludes
/// readers ([`LockFail::Locked`], which lasts only until the readers before it have left), at
/// the limit, or for a VMA of another address space. The same RCU rules as
/// [`vma_start_read`]; see [`Pinned`] for what it does not protect.
pub fn vma_pin<'a, V: VmaFields, P: Platform>(
    vma: &'a V,
    mm: MmIdentity<'_>,
    platform: &'a P,
) -> Result<Pinned<'a, V, P>, LockFail> {
    take_reference(vma, mm, platform).map(Pinned)
}

/// Whether `vma` covers `addr`: `start <= addr < end`. The end is exclusive: a VMA reused just
/// below the address, ending exactly at it, does not cover it.
fn covers<V: VmaFields>(vma: &V, addr: u64) -> bool {
    let below_end = if broken!("range_end_inclusive") {
        addr <= vma.end()
    } else {
        broken!("range_no_end") || addr < vma.end()
    };
    vma.start() <= addr && below_end
}

/// A VMA read-locked by [`lock_vma_under_rcu`].
#[must_use = "dropping the guard releases the read lock at once"]
pub struct Found<'a, V: VmaFields, P: Platform> {
    /// The lock.
    pub vma: ReadLocked<'a, V, P>,
    /// How many times a detached VMA made the lookup start over (Linux's `VMA_LOCK_MISS`).
    pub misses: u32,
}

/// Why [`lock_vma_under_rcu`] fell back, and how many lookups it retried first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The last failure.
    pub reason: LockFail,
    /// How many times a detached VMA made the lookup start over (Linux's `VMA_LOCK_MISS`).
    pub misses: u32,
}

/// The page fault's fast path: finds the VMA containing `addr` in address space `mm` and
/// read-locks it, or says why not.
///
/// `lookup(addr)` is the RCU tree walk, from the root each time (a cursor kept across a retry
/// may point into freed nodes: Linux's November 2025 fix). The caller holds one RCU read
/// section across the whole call — nothing here sleeps or spins — and may leave it as soon as
/// this returns. A VMA found detached means the tree changed under the walk: the lookup is
/// retried, at most `max_retries` times, never waiting for the writer, who may itself be
/// waiting for a grace period. Once locked, the VMA must still cover `addr`: it may have been
/// reused at another address, or shrunk, before the increment.
pub fn lock_vma_under_rcu<'a, V: VmaFields, P: Platform>(
    mm: MmIdentity<'_>,
    addr: u64,
    mut lookup: impl FnMut(u64) -> Option<&'a V>,
    max_retries: u32,
    platform: &'a P,
) -> Result<Found<'a, V, P>, Fallback> {
    let mut misses = 0;
    loop {
        let Some(vma) = lookup(addr) else {
            return Err(Fallback {
                reason: LockFail::NoVma,
                misses,
            });
        };
        platform.delay(DelayPoint::AfterLookup);
        let reason = match vma_start_read(vma, mm, platform) {
            Ok(locked) => {
                platform.delay(DelayPoint::BeforeRangeCheck);
                if broken!("range_check") || covers(&*locked, addr) {
                    return Ok(Found {
                        vma: locked,
                        misses,
                    });
                }
                LockFail::OutOfRange
            }
            Err(LockFail::Detached) => {
                misses += 1;
                if misses <= max_retries {
                    continue;
                }
                LockFail::Detached
            }
            Err(reason) => reason,
        };
        return Err(Fallback { reason, misses });
    }
}
