//! User page tables: the lower half of an address space's four-level tree.
//!
//! Every entry is read and written as an atomic through the direct map, because page faults in
//! different (or the same) VMAs fill tables concurrently:
//! - a missing page-table page is created with compare-and-swap on its parent entry; the loser
//!   frees its page and uses the winner's;
//! - a leaf entry is installed only if it is still what the fault saw (compare-and-swap); the
//!   loser frees its page;
//! - entries are cleared with `xchg` (`take_range`), keeping the old values, so no page is lost
//!   to a concurrent write.
//!
//! Whoever clears entries or frees page-table pages holds the address space's `mmap_lock` for
//! writing (and, for a VMA, excludes faults in it); page-table pages are freed only where no VMA
//! remains, so no fault can be walking them, and only after the TLB shootdown. mremap moves a
//! whole leaf table (`move_table`, a level-2 entry cleared in one place and stored in another)
//! under the same rules: only where both spans lie whole in write-locked VMAs, so no fault
//! walks through either entry, and its caller shoots the source span down. Nothing walks user
//! page tables without `mmap_lock` or a VMA read lock (the lockless `/proc/PID/maps` walk reads
//! VMAs only), so table pages need no RCU grace period.

use alloc::vec::Vec;
use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::PhysAddr;
use super::frame::{self, Frames, UserFrame, UserUse};
use super::inject::{self, Kind};
use super::pte::{ACCESSED, GUARD_ENTRY, MAPS_PAGE, PRESENT, USER, WRITABLE, address, entry};

const ENTRIES: usize = 512;
/// Bytes one entry covers at each level (1 = page table … 4 = PML4).
const fn entry_span(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

fn index(addr: u64, level: u32) -> usize {
    ((addr >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// The entries of the page-table page at `table`.
///
/// # Safety
/// `table` is a page-table page (4 KiB, aligned, covered by the direct map) that stays one
/// while the reference lives; every access to it goes through these atomics.
unsafe fn entries<'a>(table: PhysAddr) -> &'a [AtomicU64; ENTRIES] {
    // SAFETY: the caller's contract.
    unsafe { &*(table.to_virt() as *const [AtomicU64; ENTRIES]) }
}

/// A zeroed frame for user memory (the zero page, a page exec loads), or `None` when memory
/// is exhausted or a failure is injected (`fail=frames:`).
pub fn zeroed_frame() -> Option<Frames> {
    if inject::should_fail(Kind::Frames) {
        return None;
    }
    zeroed_block()
}

/// A zeroed frame from the buddy allocator, or `None` when memory is exhausted.
fn zeroed_block() -> Option<Frames> {
    let block = frame::allocate(0)?;
    // SAFETY: the frame is ours alone until `block` is handed on.
    unsafe { zero_frame(block.start()) };
    Some(block)
}

/// A zeroed frame for user memory or a user page table (`used_for`); `None` once only the
/// part of the kernel's reserve `used_for` may not take is left (see
/// `frame::USER_RESERVE_FRAMES` and [`UserUse`]), or when a failure is injected
/// (`fail=frames:` for pages, `fail=pagetable:` for tables).
pub fn zeroed_user_frame(used_for: UserUse) -> Option<UserFrame> {
    let kind = match used_for {
        UserUse::Page => Kind::Frames,
        UserUse::PageTable => Kind::PageTable,
    };
    if inject::should_fail(kind) {
        return None;
    }
    let frame = frame::allocate_for_user(used_for)?;
    // SAFETY: the frame is ours alone until `frame` is handed on.
    unsafe { zero_frame(frame.phys()) };
    Some(frame)
}

/// A frame for user memory holding a copy of the user frame `source` (copy-on-write); `None`
/// once only the kernel's reserve is left, or when a failure is injected. A private page is copied while every mapping has
/// it read-only; a page of a file may be written meanwhile (through a shared mapping, or by
/// `write`), and the copy is then of the page as it was at some point of the copy, as on
/// Linux.
pub fn copied_user_frame(source: PhysAddr) -> Option<UserFrame> {
    if inject::should_fail(Kind::Frames) {
        return None;
    }
    let frame = frame::allocate_for_user(UserUse::Page)?;
    // SAFETY: `frame` is ours alone until handed on; `source` stays allocated (the caller
    // holds a mapping of it or a page-cache hold), and stores into it meanwhile change only
    // what the copy holds. Both are whole frames in the direct map.
    unsafe {
        core::ptr::copy_nonoverlapping(
            source.to_virt() as *const u8,
            frame.phys().to_virt() as *mut u8,
            4096,
        )
    };
    Some(frame)
}

/// How [`zero_frame`] clears pages (`page_clear=`; kernel/libs/pageclear has the methods and
/// their measurements), as a `pageclear::Method` byte.
static PAGE_CLEAR: AtomicU8 = AtomicU8::new(pageclear::Method::Stores as u8);

/// Selects how pages are cleared from now on.
pub fn set_page_clear(method: pageclear::Method) {
    PAGE_CLEAR.store(method as u8, Ordering::Relaxed);
    log::info!("mm: pages are cleared with {}", method.name());
}

/// Clears the 4 KiB frame at `phys`.
///
/// # Safety
/// The caller owns the frame, and nothing else reads or writes it meanwhile.
unsafe fn zero_frame(phys: PhysAddr) {
    let method = pageclear::Method::from_u8(PAGE_CLEAR.load(Ordering::Relaxed))
        .unwrap_or(pageclear::Method::Stores);
    // SAFETY: the frame is the caller's (see above), and the direct map covers its 4096 bytes.
    unsafe { pageclear::clear(method, phys.to_virt() as *mut u8) };
}

/// Clears the user frame `phys` in place, while others may map it (`MADV_REMOVE` of shared
/// memory, which punches a hole in what every sharer sees).
///
/// # Safety
/// `phys` is a user frame (or a page-cache frame) that stays allocated while this runs: the
/// caller holds a mapping of it or the cache's lock. User stores to it meanwhile race only
/// with its contents, as they do with a hole punch on Linux.
pub unsafe fn clear_shared_frame(phys: PhysAddr) {
    // SAFETY: the frame stays allocated (the caller's contract) and the direct map covers
    // its 4096 bytes; nothing in the kernel holds a reference into user memory.
    unsafe { core::ptr::write_bytes(phys.to_virt() as *mut u8, 0, 4096) };
}

/// The leaf entry for `addr` in the tree at `root`, creating missing tables; `None` when out
/// of memory.
///
/// # Safety
/// `root` is an address space's root, and the caller keeps the tables on the way to `addr`
/// from being freed while the reference lives: it holds the address space's `mmap_lock`, or
/// the read lock of a VMA that covers `addr` (tables are freed only where no VMA remains).
pub unsafe fn lookup_or_create<'a>(root: PhysAddr, addr: u64) -> Option<&'a AtomicU64> {
    // SAFETY: forwarded from the caller.
    unsafe { slot_or_create(root, addr, 1) }
}

/// The entry at `level` (1 for a leaf, 2 for the entry that links a leaf table) for `addr`
/// in the tree at `root`, creating the missing tables above it; `None` when out of memory.
///
/// # Safety
/// As for [`lookup_or_create`].
unsafe fn slot_or_create<'a>(root: PhysAddr, addr: u64, level: u32) -> Option<&'a AtomicU64> {
    let mut table = root;
    for above in (level + 1..=4).rev() {
        // SAFETY: `table` is the root or a table linked below it, kept by the caller.
        let slot = unsafe { &entries(table)[index(addr, above)] };
        let mut current = slot.load(Ordering::Acquire);
        if current & PRESENT == 0 {
            let new = zeroed_user_frame(UserUse::PageTable)?;
            let value = entry(new.phys(), PRESENT | WRITABLE | USER | ACCESSED);
            // AcqRel: publishes the zeroed table (Release); on failure, reads the winner's.
            match slot.compare_exchange(0, value, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // The table belongs to the tree now; `take_tables` frees it.
                    let _ = new.into_raw();
                    current = value;
                }
                // The loser's table goes back (dropped).
                Err(winner) => current = winner,
            }
        }
        table = address(current);
    }
    // SAFETY: the table found above, kept by the caller.
    Some(unsafe { &entries(table)[index(addr, level)] })
}

/// The entry at `level` for `addr` in the tree at `root`, or `None` where a table above it is
/// missing.
///
/// # Safety
/// As for [`lookup_or_create`].
unsafe fn existing_slot<'a>(root: PhysAddr, addr: u64, level: u32) -> Option<&'a AtomicU64> {
    let mut table = root;
    for above in (level + 1..=4).rev() {
        // SAFETY: `table` is the root or a table linked below it, kept by the caller.
        let current = unsafe { &entries(table)[index(addr, above)] }.load(Ordering::Acquire);
        if current & PRESENT == 0 {
            return None;
        }
        table = address(current);
    }
    // SAFETY: the table found above, kept by the caller.
    Some(unsafe { &entries(table)[index(addr, level)] })
}

/// The leaf entry for `addr` in the tree at `root`, or 0 where no page table holds one.
///
/// # Safety
/// As for [`lookup_or_create`].
pub unsafe fn leaf_entry(root: PhysAddr, addr: u64) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { existing_slot(root, addr, 1) }.map_or(0, |slot| slot.load(Ordering::Acquire))
}

/// Bytes of address space one leaf page table covers (2 MiB): the unit [`move_table`] moves.
pub const TABLE_SPAN: u64 = entry_span(2);

/// What [`move_table`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TableMove {
    /// The source span has no leaf table: nothing to carry.
    Absent,
    /// The source's leaf table now serves the destination span.
    Moved,
    /// The destination span already has a leaf table: nothing moved, the entries must go
    /// one by one.
    Occupied,
}

/// Moves the leaf page table of the [`TABLE_SPAN`] at `from` to the span at `to` in the same
/// tree (both aligned) by moving its level-2 entry: its 512 entries, pages and guard markers
/// alike, change place in two stores, and no frame's holder count changes. `None` when no
/// frame is left for a table on the way to `to` (nothing moved then).
///
/// # Safety
/// `root` is an address space's root whose `mmap_lock` the caller holds for writing, the two
/// spans do not overlap, and no fault runs in either (each lies whole inside a write-locked
/// VMA, so no fault elsewhere walks through the two level-2 entries). The CPUs may still hold
/// the source's translations and its level-2 entry in their paging-structure caches: the
/// caller shoots the source span down before a fault may run there again.
pub unsafe fn move_table(root: PhysAddr, from: u64, to: u64) -> Option<TableMove> {
    debug_assert!(from.is_multiple_of(TABLE_SPAN) && to.is_multiple_of(TABLE_SPAN));
    // SAFETY: forwarded from the caller.
    let Some(source) = (unsafe { existing_slot(root, from, 2) }) else {
        return Some(TableMove::Absent);
    };
    if source.load(Ordering::Acquire) & PRESENT == 0 {
        return Some(TableMove::Absent);
    }
    // SAFETY: forwarded from the caller; faults in other VMAs may create tables on the way
    // concurrently, which `slot_or_create` settles by compare-and-swap.
    let target = unsafe { slot_or_create(root, to, 2) }?;
    if target.load(Ordering::Acquire) != 0 {
        return Some(TableMove::Occupied);
    }
    let table = source.swap(0, Ordering::AcqRel);
    // Release: the table's entries, written before, are seen with it.
    target.store(table, Ordering::Release);
    Some(TableMove::Moved)
}

/// Calls `visit` with the address and slot of every leaf entry of `[start, end)` whose page
/// table exists, descending only into present tables (so a sparse range costs what is mapped,
/// not its size), until `visit` breaks.
///
/// # Safety
/// `root` is an address space's root whose `mmap_lock` the caller holds for writing: no table
/// of the tree is freed meanwhile.
unsafe fn for_each_leaf<B>(
    root: PhysAddr,
    start: u64,
    end: u64,
    visit: &mut impl FnMut(u64, &AtomicU64) -> ControlFlow<B>,
) -> ControlFlow<B> {
    // SAFETY: forwarded from the caller.
    unsafe { walk_leaves(root, 4, 0, start, end, visit) }
}

/// # Safety
/// As for [`for_each_leaf`], `table` being a table of that tree at `level`.
unsafe fn walk_leaves<B>(
    table: PhysAddr,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
    visit: &mut impl FnMut(u64, &AtomicU64) -> ControlFlow<B>,
) -> ControlFlow<B> {
    let span = entry_span(level);
    let first = (start.saturating_sub(base) / span) as usize;
    for i in first..ENTRIES {
        let entry_base = base + i as u64 * span;
        if entry_base >= end || (level == 4 && i >= 256) {
            break;
        }
        // SAFETY: a table of the tree, which stays (the caller's contract).
        let slot = unsafe { &entries(table)[i] };
        let flow = if level == 1 {
            visit(entry_base, slot)
        } else {
            let current = slot.load(Ordering::Acquire);
            if current & PRESENT == 0 {
                continue;
            }
            // SAFETY: the present entry links a table of the next level of the same tree.
            unsafe {
                walk_leaves(
                    address(current),
                    level - 1,
                    entry_base,
                    start.max(entry_base),
                    end,
                    visit,
                )
            }
        };
        if flow.is_break() {
            return flow;
        }
    }
    ControlFlow::Continue(())
}

/// Copies the leaf entries of `[start, end)` that hold a page or a guard marker from the tree at
/// `source` into the tree at `target`, at `to` on (fork copies to the same addresses of the child's tree,
/// mremap to other addresses of the same tree): `copy` sees each such source slot and returns
/// the entry the target gets (it may change the source's entry: write-protect it, or take it
/// away for a move), or 0 for none. The target's page-table pages are created as needed;
/// `Err(addr)` when no frame is left for one, `addr` being the first source entry not copied
/// (those before it are copied). The target slots must be empty.
///
/// # Safety
/// `source` and `target` are roots of address spaces (the same one, or two) whose `mmap_lock`s
/// the caller holds for writing, no fault runs in the source range or the target range (their
/// VMAs are write-locked), and the two ranges do not overlap.
pub unsafe fn copy_range(
    source: PhysAddr,
    target: PhysAddr,
    start: u64,
    end: u64,
    to: u64,
    copy: &mut impl FnMut(&AtomicU64) -> u64,
) -> Result<(), u64> {
    // The target's page table for the last 2 MiB copied to: neighbouring pages share it.
    let mut table: Option<(u64, &[AtomicU64; ENTRIES])> = None;
    let mut visit = |addr: u64, slot: &AtomicU64| {
        if slot.load(Ordering::Relaxed) & (MAPS_PAGE | GUARD_ENTRY) == 0 {
            return ControlFlow::Continue(());
        }
        let dest = addr - start + to;
        let covers = dest & !(entry_span(2) - 1);
        let leaves = match table {
            Some((base, leaves)) if base == covers => leaves,
            _ => {
                // SAFETY: the caller holds the target's `mmap_lock`, so its tables stay.
                let Some(created) = (unsafe { lookup_or_create(target, dest) }) else {
                    return ControlFlow::Break(addr);
                };
                let page_table =
                    PhysAddr::of_direct_map(created as *const AtomicU64 as u64 & !0xfff);
                // SAFETY: the slot lies in a page table of the target's tree (found just now),
                // which stays while the caller holds its `mmap_lock`.
                let leaves = unsafe { entries(page_table) };
                table = Some((covers, leaves));
                leaves
            }
        };
        let new = copy(slot);
        if new != 0 {
            leaves[index(dest, 1)].store(new, Ordering::Release);
        }
        ControlFlow::Continue(())
    };
    // SAFETY: forwarded from the caller.
    match unsafe { for_each_leaf(source, start, end, &mut visit) } {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(addr) => Err(addr),
    }
}

/// Clears the leaf entries of `[start, end)` (but guard markers when `keep_guards`) and adds
/// the frames of those that held a page to `out`, without ever growing it: when `out` is full, stops before the next entry to clear and
/// returns that entry's address (the caller makes room, then calls again from there). The
/// frames are the caller's to free once the translations are shot down.
///
/// # Safety
/// `root` is an address space's root whose `mmap_lock` the caller holds for writing, and no
/// fault runs in the range (its VMAs are write-locked, or gone).
pub unsafe fn take_range(
    root: PhysAddr,
    start: u64,
    end: u64,
    out: &mut Vec<PhysAddr>,
    keep_guards: bool,
) -> Option<u64> {
    let mut clear = |addr, slot: &AtomicU64| {
        let current = slot.load(Ordering::Relaxed);
        if current == 0 || (keep_guards && current == GUARD_ENTRY) {
            return ControlFlow::Continue(());
        }
        if out.len() == out.capacity() {
            return ControlFlow::Break(addr);
        }
        let old = slot.swap(0, Ordering::AcqRel);
        if old & MAPS_PAGE != 0 {
            out.push(address(old));
        }
        ControlFlow::Continue(())
    };
    // SAFETY: forwarded from the caller.
    unsafe { for_each_leaf(root, start, end, &mut clear) }.break_value()
}

/// Rewrites the leaf entries in `[start, end)` that hold a page with `update`; whether any
/// changed.
///
/// # Safety
/// As for [`take_range`].
pub unsafe fn update_range(
    root: PhysAddr,
    start: u64,
    end: u64,
    update: impl Fn(u64) -> u64,
) -> bool {
    let mut changed = false;
    let mut rewrite = |_, slot: &AtomicU64| {
        let mut old = slot.load(Ordering::Acquire);
        while old & MAPS_PAGE != 0 {
            let new = update(old);
            if new == old {
                break;
            }
            match slot.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    changed = true;
                    break;
                }
                Err(current) => old = current,
            }
        }
        ControlFlow::<()>::Continue(())
    };
    // SAFETY: forwarded from the caller.
    let _ = unsafe { for_each_leaf(root, start, end, &mut rewrite) };
    changed
}

/// Replaces every guard marker in `[start, end)` by an empty entry.
///
/// # Safety
/// As for [`take_range`].
pub unsafe fn clear_guards(root: PhysAddr, start: u64, end: u64) {
    let mut clear = |_, slot: &AtomicU64| {
        if slot.load(Ordering::Relaxed) == GUARD_ENTRY {
            slot.store(0, Ordering::Release);
        }
        ControlFlow::<()>::Continue(())
    };
    // SAFETY: forwarded from the caller.
    let _ = unsafe { for_each_leaf(root, start, end, &mut clear) };
}

/// Unhooks the page-table pages whose whole span lies in `[floor, ceiling)` (where no VMA
/// remains) and that overlap `[start, end)`, adding their frames to `out`. Their leaf entries
/// must already be clear. The caller frees the frames after the TLB shootdown.
///
/// # Safety
/// `root` is an address space's root whose `mmap_lock` the caller holds for writing, and no
/// VMA overlaps `[floor, ceiling)`, so no fault walks the tables taken.
pub unsafe fn take_tables(
    root: PhysAddr,
    start: u64,
    end: u64,
    floor: u64,
    ceiling: u64,
    out: &mut Vec<PhysAddr>,
) {
    let window = TableWindow {
        start,
        end,
        floor,
        ceiling,
    };
    // SAFETY: forwarded from the caller.
    unsafe { take_tables_at(root, 4, 0, &window, out) };
}

/// What [`take_tables`] looks at: tables overlapping `start..end`, taken whole when their span
/// lies inside `floor..ceiling`.
struct TableWindow {
    start: u64,
    end: u64,
    floor: u64,
    ceiling: u64,
}

/// # Safety
/// As for [`take_tables`], `table` being a table of that tree at `level` covering from `base`.
unsafe fn take_tables_at(
    table: PhysAddr,
    level: u32,
    base: u64,
    window: &TableWindow,
    out: &mut Vec<PhysAddr>,
) {
    let span = entry_span(level);
    let first = (window.start.saturating_sub(base) / span) as usize;
    for i in first..ENTRIES {
        let entry_base = base + i as u64 * span;
        if entry_base >= window.end || (level == 4 && i >= 256) {
            break;
        }
        // SAFETY: a table of the tree, which only this caller changes (its contract).
        let slot = unsafe { &entries(table)[i] };
        let current = slot.load(Ordering::Acquire);
        if current & PRESENT == 0 || level == 1 {
            continue;
        }
        let child = address(current);
        if entry_base >= window.floor && entry_base + span <= window.ceiling {
            slot.store(0, Ordering::Release);
            // SAFETY: `child` was linked below `table`, and is unreachable now.
            unsafe { collect_subtree(child, level - 1, out) };
        } else if level > 2 {
            // SAFETY: `child` is a table of the next level of the same tree.
            unsafe { take_tables_at(child, level - 1, entry_base, window, out) };
        }
    }
}

/// Adds the page-table page `table` (at `level`) and every table below it to `out`.
///
/// # Safety
/// `table` is a page table just unhooked from its tree by the caller, which owns it now.
unsafe fn collect_subtree(table: PhysAddr, level: u32, out: &mut Vec<PhysAddr>) {
    // SAFETY: the caller owns the table (see above).
    let slots = unsafe { entries(table) };
    if level > 1 {
        for slot in slots.iter() {
            let current = slot.load(Ordering::Acquire);
            if current & PRESENT != 0 {
                // SAFETY: linked below a table the caller owns, so owned too.
                unsafe { collect_subtree(address(current), level - 1, out) };
            }
        }
    } else {
        debug_assert!(
            slots
                .iter()
                .all(|e| e.load(Ordering::Relaxed) & MAPS_PAGE == 0),
            "freeing a page table that still maps pages"
        );
    }
    out.push(table);
}

/// A new top-level table: empty lower half, the kernel's upper half (shared, see
/// kernel_tables.rs).
pub fn new_root() -> Option<Frames> {
    if inject::should_fail(Kind::PageTable) {
        return None;
    }
    let root = zeroed_block()?;
    // SAFETY: the kernel's root stays for good, and `root` is ours.
    let (kernel, new) = unsafe {
        (
            entries(super::kernel_tables::kernel_root()),
            entries(root.start()),
        )
    };
    for i in 256..ENTRIES {
        new[i].store(kernel[i].load(Ordering::Relaxed), Ordering::Relaxed);
    }
    Some(root)
}

/// Checks that the lower half of `root` holds no table any more (teardown's final check).
///
/// # Safety
/// `root` is a live address space's root.
pub unsafe fn is_lower_half_empty(root: PhysAddr) -> bool {
    // SAFETY: the caller's contract.
    let slots = unsafe { entries(root) };
    slots[..256].iter().all(|e| e.load(Ordering::Relaxed) == 0)
}
