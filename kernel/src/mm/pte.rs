//! Page-table entries of the x86-64 four-level format: the bits both halves' tables use (the
//! kernel half in `kernel_tables`, user halves in `user_tables`), and the one software bit.
//! Everything that builds or reads an entry names its bits from here.

use super::PhysAddr;

pub const PRESENT: u64 = 1 << 0;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const WRITE_THROUGH: u64 = 1 << 3;
pub const NO_CACHE: u64 = 1 << 4;
/// Set by the CPU on the first access through an entry, and on the first write for `DIRTY`
/// (a locked update of the entry, which under QEMU is an atomic in the page walk). User entries
/// are installed with them already set, as Linux does: a fault installs a page because it is
/// about to be accessed (written, for a writable one), and nothing here reads them back.
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
/// In a level-2 or level-3 entry: it maps a large page rather than a table.
pub const HUGE_PAGE: u64 = 1 << 7;
/// Kept in every address space's TLB entries across CR3 loads (kernel mappings only).
pub const GLOBAL: u64 = 1 << 8;
/// A software bit of a non-present entry: the page is still there, but its VMA allows no access
/// (`PROT_NONE`). Such entries keep their frame and count as mapping a page.
pub const PROT_NONE_ENTRY: u64 = 1 << 10;
/// A software bit of a non-present entry that holds no page: a guard marker
/// (`MADV_GUARD_INSTALL`). An access faults with `SIGSEGV`; dropping pages (`MADV_DONTNEED`)
/// keeps it, unmapping and `MADV_GUARD_REMOVE` clear it.
pub const GUARD_ENTRY: u64 = 1 << 11;
pub const NO_EXECUTE: u64 = 1 << 63;
/// An entry that holds a page, accessible or not.
pub const MAPS_PAGE: u64 = PRESENT | PROT_NONE_ENTRY;
/// The frame (or table) address bits of an entry.
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The frame or table an entry points to.
pub const fn address(entry: u64) -> PhysAddr {
    PhysAddr::new(entry & ADDRESS_MASK)
}

/// An entry for `frame` with `flags`.
pub const fn entry(frame: PhysAddr, flags: u64) -> u64 {
    frame.as_u64() | flags
}
