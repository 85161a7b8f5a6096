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
//! remains, so no fault can be walking them, and only after the TLB shootdown.

use alloc::vec::Vec;
use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::{frame, phys_to_virt};

pub const PRESENT: u64 = 1 << 0;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const NO_EXECUTE: u64 = 1 << 63;
/// Set by the CPU on the first access through an entry, and on the first write for `DIRTY`
/// (a locked update of the entry, which under QEMU is an atomic in the page walk). Entries are
/// installed with them already set, as Linux does: a fault installs a page because it is about
/// to be accessed (written, for a writable one), and nothing here reads them back.
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
/// A software bit of a non-present entry: the page is still there, but its VMA allows no access
/// (`PROT_NONE`). Such entries keep their frame and count as mapping a page.
pub const PROT_NONE_ENTRY: u64 = 1 << 10;
/// An entry that holds a page, accessible or not.
const MAPS_PAGE: u64 = PRESENT | PROT_NONE_ENTRY;
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

const ENTRIES: usize = 512;
/// Bytes one entry covers at each level (1 = page table … 4 = PML4).
const fn entry_span(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

fn index(addr: u64, level: u32) -> usize {
    ((addr >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// The entries of the page-table page at physical `table`.
fn entries(table: u64) -> &'static [AtomicU64; ENTRIES] {
    // SAFETY: `table` is a live page-table page (4 KiB, aligned) reached through the direct
    // map; every access to it goes through these atomics.
    unsafe { &*(phys_to_virt(table) as *const [AtomicU64; ENTRIES]) }
}

/// A zeroed frame, or `None` when memory is exhausted.
pub fn zeroed_frame() -> Option<u64> {
    let phys = frame::allocate(0)?;
    zero_frame(phys);
    Some(phys)
}

/// A zeroed frame for user memory or a user page table; `None` once only the kernel's reserve
/// is left (see `frame::USER_RESERVE_FRAMES`).
pub fn zeroed_user_frame() -> Option<u64> {
    let phys = frame::allocate_for_user()?;
    zero_frame(phys);
    Some(phys)
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
pub fn zero_frame(phys: u64) {
    let method = pageclear::Method::from_u8(PAGE_CLEAR.load(Ordering::Relaxed))
        .unwrap_or(pageclear::Method::Stores);
    // SAFETY: the caller owns the frame, and the direct map covers its 4096 bytes.
    unsafe { pageclear::clear(method, phys_to_virt(phys) as *mut u8) };
}

/// The leaf entry for `addr`, creating missing tables; `None` when out of memory.
pub fn lookup_or_create(root: u64, addr: u64) -> Option<&'static AtomicU64> {
    let mut table = root;
    for level in [4, 3, 2] {
        let slot = &entries(table)[index(addr, level)];
        let mut entry = slot.load(Ordering::Acquire);
        if entry & PRESENT == 0 {
            let new = zeroed_user_frame()?;
            let value = new | PRESENT | WRITABLE | USER | ACCESSED;
            // AcqRel: publishes the zeroed table (Release); on failure, reads the winner's.
            match slot.compare_exchange(0, value, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => entry = value,
                Err(current) => {
                    frame::free_user(new);
                    entry = current;
                }
            }
        }
        table = entry & ADDRESS_MASK;
    }
    Some(&entries(table)[index(addr, 1)])
}

/// Calls `visit` with the address and slot of every leaf entry of `[start, end)` whose page
/// table exists, descending only into present tables (so a sparse range costs what is mapped,
/// not its size), until `visit` breaks.
fn for_each_leaf<B>(
    root: u64,
    start: u64,
    end: u64,
    visit: &mut impl FnMut(u64, &AtomicU64) -> ControlFlow<B>,
) -> ControlFlow<B> {
    walk_leaves(root, 4, 0, start, end, visit)
}

fn walk_leaves<B>(
    table: u64,
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
        let slot = &entries(table)[i];
        let flow = if level == 1 {
            visit(entry_base, slot)
        } else {
            let entry = slot.load(Ordering::Acquire);
            if entry & PRESENT == 0 {
                continue;
            }
            walk_leaves(
                entry & ADDRESS_MASK,
                level - 1,
                entry_base,
                start.max(entry_base),
                end,
                visit,
            )
        };
        if flow.is_break() {
            return flow;
        }
    }
    ControlFlow::Continue(())
}

/// Clears the leaf entries of `[start, end)` and adds the frames of those that held a page to
/// `out`, without ever growing it: when `out` is full, stops before the next entry to clear and
/// returns that entry's address (the caller makes room, then calls again from there).
pub fn take_range(root: u64, start: u64, end: u64, out: &mut Vec<u64>) -> Option<u64> {
    for_each_leaf(root, start, end, &mut |addr, slot| {
        if slot.load(Ordering::Relaxed) == 0 {
            return ControlFlow::Continue(());
        }
        if out.len() == out.capacity() {
            return ControlFlow::Break(addr);
        }
        let old = slot.swap(0, Ordering::AcqRel);
        if old & MAPS_PAGE != 0 {
            out.push(old & ADDRESS_MASK);
        }
        ControlFlow::Continue(())
    })
    .break_value()
}

/// Rewrites the leaf entries in `[start, end)` that hold a page with `update`.
pub fn update_range(root: u64, start: u64, end: u64, update: impl Fn(u64) -> u64) -> bool {
    let mut changed = false;
    let _: ControlFlow<()> = for_each_leaf(root, start, end, &mut |_, slot| {
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
        ControlFlow::Continue(())
    });
    changed
}

/// Unhooks the page-table pages whose whole span lies in `[floor, ceiling)` (where no VMA
/// remains) and that overlap `[start, end)`, adding their frames to `out`. Their leaf entries
/// must already be clear. The caller frees the frames after the TLB shootdown.
pub fn take_tables(root: u64, start: u64, end: u64, floor: u64, ceiling: u64, out: &mut Vec<u64>) {
    take_tables_at(root, 4, 0, start, end, floor, ceiling, out);
}

#[allow(clippy::too_many_arguments)]
fn take_tables_at(
    table: u64,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
    floor: u64,
    ceiling: u64,
    out: &mut Vec<u64>,
) {
    let span = entry_span(level);
    let first = if start > base {
        ((start - base) / span) as usize
    } else {
        0
    };
    for i in first..ENTRIES {
        let entry_base = base + i as u64 * span;
        if entry_base >= end || (level == 4 && i >= 256) {
            break;
        }
        let slot = &entries(table)[i];
        let entry = slot.load(Ordering::Acquire);
        if entry & PRESENT == 0 || level == 1 {
            continue;
        }
        let child = entry & ADDRESS_MASK;
        if entry_base >= floor && entry_base + span <= ceiling {
            slot.store(0, Ordering::Release);
            collect_subtree(child, level - 1, out);
        } else if level > 2 {
            take_tables_at(
                child,
                level - 1,
                entry_base,
                start,
                end,
                floor,
                ceiling,
                out,
            );
        }
    }
}

/// Adds the page-table page `table` (at `level`) and every table below it to `out`.
fn collect_subtree(table: u64, level: u32, out: &mut Vec<u64>) {
    if level > 1 {
        for slot in entries(table).iter() {
            let entry = slot.load(Ordering::Acquire);
            if entry & PRESENT != 0 {
                collect_subtree(entry & ADDRESS_MASK, level - 1, out);
            }
        }
    } else {
        debug_assert!(
            entries(table)
                .iter()
                .all(|e| e.load(Ordering::Relaxed) & MAPS_PAGE == 0),
            "freeing a page table that still maps pages"
        );
    }
    out.push(table);
}

/// A new top-level table: empty lower half, the kernel's upper half (shared, see paging.rs).
pub fn new_root() -> Option<u64> {
    let root = zeroed_frame()?;
    let kernel = super::paging::kernel_root();
    for i in 256..ENTRIES {
        let entry = entries(kernel)[i].load(Ordering::Relaxed);
        entries(root)[i].store(entry, Ordering::Relaxed);
    }
    Some(root)
}

/// Checks that the lower half of `root` holds no table any more (teardown's final check).
pub fn is_lower_half_empty(root: u64) -> bool {
    entries(root)[..256]
        .iter()
        .all(|e| e.load(Ordering::Relaxed) == 0)
}
