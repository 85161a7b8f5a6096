//! mremap's edits of an address space: growing a VMA in place, and moving a range of it to
//! another place (Linux's `move_vma`), its page-table entries carried along (no data is
//! copied).
//!
//! Everything runs under `mmap_lock` held for writing, inside one VMA write session. A move
//! write-locks the source VMA **before** it maps the destination or touches an entry: from
//! then on a fault in the source finds the VMA write-locked, falls back to `mmap_lock`, waits
//! for the move to end and then finds the page at its new place (or no VMA). A fault that
//! read-locked the source earlier is waited out by the write lock, so the page it installs is
//! in the source's entries before they are carried. The destination is mapped by an ordinary
//! edit ([`Edit::Map`] or [`Edit::MapFile`]), which write-locks every VMA it replaces (those
//! the destination overlapped were unmapped before, by the same kind of edit; neighbours it
//! merges with) and publishes the new VMA write-locked, so no fault fills a destination entry
//! before the move has carried it there. The carried translations are shot down before the
//! source is unmapped (or, with `MREMAP_DONTUNMAP`, kept mapped and empty) and before the
//! session ends.
//!
//! Where source and destination are congruent modulo 2 MiB, each leaf page table the source
//! covers whole moves as one level-2 entry (`user_tables::move_table`) instead of 512 leaf
//! entries, unless the destination has a table there already; the shootdown of the source
//! range drops the CPUs' cached copies of the moved entries with the translations.
//!
//! Entries keep their frames, so the frames' holder counts (`page_refs`) and the resident
//! count stay as they are. Shared anonymous memory has no backing object here: where the
//! source stays mapped (`MREMAP_DONTUNMAP`, or an old length of 0, which duplicates the
//! mapping), its pages are populated and shared with the destination instead of moved, so both
//! show the same memory, as Linux's shmem does. A file VMA's destination maps the file from the
//! page the source's first page showed; the new VMA counts the address space among the file's
//! mappers and the unmapped source's counts it out.
//!
//! Test images have a break switch (`mremap.break=no_source_lock`) that skips the source's
//! write lock, which the mremap torture must catch.

use alloc::sync::Arc;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{Edit, MmWriteGuard};
use crate::fs::file::File;
use crate::mm::page_refs;
use crate::mm::pte::{GUARD_ENTRY, address};
use crate::mm::user_tables::{self, TABLE_SPAN, TableMove};
use crate::mm::vma::{VM_SHARED, Vma};
use crate::mm::zero_page;
use crate::syscall::errno::{ENOMEM, Errno};

/// How a move takes the source's entries to the destination.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// Each entry leaves the source.
    Move,
    /// Each entry is mapped in both places (shared anonymous memory that stays mapped).
    Share,
}

/// What a range that continues `vma` from the address `at` on maps: `vma`'s flags, and its
/// file from the page `at` shows (or anonymous memory).
struct Continuation {
    flags: u32,
    file: Option<(Arc<File>, u64)>,
}

impl Continuation {
    fn of(vma: &Vma, at: u64) -> Self {
        Self {
            flags: vma.flags(),
            file: vma.file().map(|file| {
                (
                    file.file().clone(),
                    file.pgoff() + (at - vma.start()) / 4096,
                )
            }),
        }
    }

    fn edit(&self) -> Edit<'_> {
        match &self.file {
            Some((file, pgoff)) => Edit::MapFile {
                flags: self.flags,
                file,
                pgoff: *pgoff,
            },
            None => Edit::Map(self.flags),
        }
    }
}

impl MmWriteGuard<'_> {
    /// Grows the VMA that ends at `range.start` over `range` (free): the new part continues
    /// it (same flags, the next pages of its file), and the edit merges it with the VMA and,
    /// when it continues that one too, with the VMA after it.
    pub fn grow_in_place(&self, vma: &Vma, range: Range<u64>) -> Result<(), Errno> {
        debug_assert_eq!(vma.end(), range.start);
        let continuation = Continuation::of(vma, range.start);
        self.edit(range, continuation.edit())
    }

    /// Moves `from` (inside one VMA; empty for a duplication of a shared mapping, which then
    /// starts at `from.start`) to `to` (free, at least as long), carrying its entries; the
    /// rest of `to` is new memory of the same kind. The source is unmapped afterwards unless
    /// `keep_source` (then it stays mapped: emptied, or sharing its pages for shared
    /// anonymous memory). `ENOMEM` leaves the source as it was and `to` unmapped.
    pub fn move_range(
        &self,
        from: Range<u64>,
        to: Range<u64>,
        keep_source: bool,
    ) -> Result<(), Errno> {
        let mm = self.mm;
        let vma = self
            .find_vma(from.start)
            .expect("the caller checked the source VMA");
        let shared_anonymous = vma.flags() & VM_SHARED != 0 && vma.file().is_none();
        let (carry, carried) = if keep_source && shared_anonymous {
            let len = if from.is_empty() {
                (to.end - to.start).min(vma.end() - from.start)
            } else {
                from.end - from.start
            };
            (Carry::Share, from.start..from.start + len)
        } else {
            (Carry::Move, from.clone())
        };
        if !break_switch::no_source_lock() {
            self.write_lock_vma(vma);
        }
        let continuation = Continuation::of(vma, from.start);
        if carry == Carry::Share {
            self.populate_shared(vma, carried.clone())?;
        }
        self.edit(to.clone(), continuation.edit())?;
        let mut moved = false;
        if let Err(stopped) = self.carry_entries(carried.clone(), to.start, carry, &mut moved) {
            if carry == Carry::Move {
                let done = to.start..to.start + (stopped - carried.start);
                self.carry_entries(done, carried.start, Carry::Move, &mut moved)
                    .expect("the source's page tables are still there");
            }
            // Where the new mapping merged with a neighbour, unmapping it splits that VMA,
            // which takes VMA objects: a failure to get them is retried, since the mapping
            // must not outlive the failed move.
            while self.edit(to.clone(), Edit::Unmap).is_err() {
                crate::sched::yield_now();
            }
            return Err(ENOMEM);
        }
        if moved {
            // No CPU may reach a carried frame through the source any more: before the
            // source is unmapped or faults in it again, and before the session ends. This
            // drops the source's cached level-2 entries of moved tables too (a range flush is
            // `invlpg`, which empties the paging-structure caches, or a full flush).
            mm.shoot_down(&carried);
        }
        if !keep_source {
            // Like Linux, the move stands even if the source cannot be split (no memory for
            // a VMA): it then stays mapped, its entries gone.
            let _ = self.edit(from, Edit::Unmap);
        }
        Ok(())
    }

    /// Carries the entries of `from` to the same offsets from `to` on (whose entries are
    /// empty); `moved` records whether an entry left the source. `Err(addr)` as
    /// `user_tables::copy_range` says, when no frame was left for a page table.
    ///
    /// A move between addresses congruent modulo [`TABLE_SPAN`] (2 MiB) carries each leaf
    /// table the source covers whole by its level-2 entry (Linux's PMD move), unless the
    /// destination has a table there already; the rest goes entry by entry.
    fn carry_entries(
        &self,
        from: Range<u64>,
        to: u64,
        carry: Carry,
        moved: &mut bool,
    ) -> Result<(), u64> {
        let whole = from.start.next_multiple_of(TABLE_SPAN)..from.end & !(TABLE_SPAN - 1);
        let congruent = to.wrapping_sub(from.start) & (TABLE_SPAN - 1) == 0;
        if carry == Carry::Share || !congruent || whole.start >= whole.end {
            return self.carry_one_by_one(from, to, carry, moved);
        }
        let destination = |at: u64| at - from.start + to;
        self.carry_one_by_one(from.start..whole.start, to, carry, moved)?;
        for span in (whole.start..whole.end).step_by(TABLE_SPAN as usize) {
            // SAFETY: `mmap_lock` is held for writing; the span lies whole in the write-locked
            // source VMA, its destination in the destination's (write-locked since the edit
            // that mapped it), without overlap; the caller shoots the source down after.
            match unsafe { user_tables::move_table(self.mm.root(), span, destination(span)) } {
                None => return Err(span),
                Some(TableMove::Absent) => {}
                Some(TableMove::Moved) => {
                    *moved = true;
                    TABLES_MOVED.fetch_add(1, Ordering::Relaxed);
                }
                Some(TableMove::Occupied) => {
                    self.carry_one_by_one(span..span + TABLE_SPAN, destination(span), carry, moved)?
                }
            }
        }
        self.carry_one_by_one(whole.end..from.end, destination(whole.end), carry, moved)
    }

    /// [`Self::carry_entries`] entry by entry.
    fn carry_one_by_one(
        &self,
        from: Range<u64>,
        to: u64,
        carry: Carry,
        moved: &mut bool,
    ) -> Result<(), u64> {
        if from.is_empty() {
            return Ok(());
        }
        let mm = self.mm;
        let zero = zero_page();
        let mut shared_pages = 0;
        let mut take = |slot: &AtomicU64| match carry {
            Carry::Move => {
                *moved = true;
                slot.swap(0, Ordering::AcqRel)
            }
            Carry::Share => {
                let current = slot.load(Ordering::Acquire);
                // Guard markers exist only in private memory, which is never shared.
                debug_assert_ne!(current, GUARD_ENTRY);
                if address(current) != zero {
                    page_refs::share(address(current));
                    shared_pages += 1;
                }
                current
            }
        };
        // SAFETY: this guard holds `mmap_lock` for writing; the source VMA and the
        // destination's VMA are write-locked (the caller's, and the edit's that mapped it), so
        // no fault runs in either range, and the two ranges do not overlap (mremap's check).
        let carried = unsafe {
            user_tables::copy_range(mm.root(), mm.root(), from.start, from.end, to, &mut take)
        };
        mm.resident_pages.add(shared_pages);
        carried
    }
}

/// Leaf page tables moved whole (by their level-2 entry) since boot.
static TABLES_MOVED: AtomicU64 = AtomicU64::new(0);

/// How many leaf page tables moves carried whole since boot.
pub fn tables_moved() -> u64 {
    TABLES_MOVED.load(Ordering::Relaxed)
}

/// The deliberate bug that shows the mremap torture catches a move that does not write-lock
/// its source (test images only; `mremap.break=no_source_lock`).
#[cfg(feature = "ktest")]
mod break_switch {
    use core::sync::atomic::{AtomicBool, Ordering};

    static NO_SOURCE_LOCK: AtomicBool = AtomicBool::new(false);

    /// Makes moves skip the source VMA's write lock (`true`), or take it as they should
    /// (`false`); returns the setting it replaces.
    pub fn set_break_no_source_lock(broken: bool) -> bool {
        NO_SOURCE_LOCK.swap(broken, Ordering::Relaxed)
    }

    pub(super) fn no_source_lock() -> bool {
        NO_SOURCE_LOCK.load(Ordering::Relaxed)
    }
}

/// Production kernels always lock the source.
#[cfg(not(feature = "ktest"))]
mod break_switch {
    #[inline(always)]
    pub(super) fn no_source_lock() -> bool {
        false
    }
}

#[cfg(feature = "ktest")]
pub use break_switch::set_break_no_source_lock;

#[cfg(feature = "ktest")]
mod torture;

#[cfg(feature = "ktest")]
mod tests;
