//! mremap's whole-table moves (test images only): a move between places congruent modulo
//! 2 MiB carries each leaf page table the source covers whole by its level-2 entry, and a
//! misaligned one entry by entry; either way the pages, guard markers and resident count
//! arrive intact.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use super::tables_moved;
use crate::arch::uaccess::{read_user, write_user};
use crate::ktest;
use crate::mm::mmap::{
    self, MADV_GUARD_INSTALL, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE,
    PROT_READ, PROT_WRITE,
};
use crate::mm::torture::{address_space, run_in};
use crate::mm::user_tables::TABLE_SPAN;

const PAGE: u64 = 4096;
const SOURCE: u64 = 0x4000_0000;
/// 4 MiB: two whole leaf tables when the source is aligned.
const LENGTH: u64 = 2 * TABLE_SPAN;
/// A page of the source that holds a guard marker instead of data.
const GUARDED: u64 = 700;

/// What page `page` holds.
fn value(page: u64) -> u64 {
    0xc0de_0000_0000 | page
}

/// Maps `LENGTH` bytes at `source`, writes every page but the guarded one (which gets a guard
/// marker), moves them to `destination` with `MREMAP_FIXED` and checks what arrived there;
/// returns how many leaf tables moved whole.
fn move_and_check(source: u64, destination: u64) -> u64 {
    let space = address_space("mremap-tables");
    let mm = space.mm.clone();
    let moved_tables = Arc::new(AtomicU64::new(0));
    let moved = moved_tables.clone();
    run_in(&space, move || {
        let pages = LENGTH / PAGE;
        mmap::mmap(
            &mm,
            source,
            LENGTH,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            u64::MAX,
            0,
        )
        .expect("map the source");
        for page in (0..pages).filter(|&page| page != GUARDED) {
            write_user(source + page * PAGE, &value(page)).expect("write a source page");
        }
        mmap::madvise(&mm, source + GUARDED * PAGE, PAGE, MADV_GUARD_INSTALL)
            .expect("a guard marker");
        let resident = mm.resident_pages.sum();
        let before = tables_moved();
        let to = mmap::mremap(
            &mm,
            source,
            LENGTH,
            LENGTH,
            MREMAP_MAYMOVE | MREMAP_FIXED,
            destination,
        )
        .expect("the move");
        moved.store(tables_moved() - before, Ordering::Relaxed);
        assert_eq!(to, destination);
        assert_eq!(mm.resident_pages.sum(), resident, "resident pages changed");
        assert!(
            read_user::<u64>(source).is_err(),
            "the source is still mapped"
        );
        for page in (0..pages).filter(|&page| page != GUARDED) {
            let found = read_user::<u64>(destination + page * PAGE).expect("a moved page");
            assert_eq!(found, value(page), "page {page} after the move");
        }
        assert!(
            read_user::<u64>(destination + GUARDED * PAGE).is_err(),
            "the guard marker did not move"
        );
        assert_eq!(
            mm.resident_pages.sum(),
            resident,
            "a moved page faulted in anew"
        );
        mmap::munmap(&mm, destination, LENGTH).expect("unmap the destination");
        assert_eq!(mm.resident_pages.sum(), 0, "pages left behind");
    });
    moved_tables.load(Ordering::Relaxed)
}

ktest! {
    /// Source and destination 2 MiB-aligned: both leaf tables move whole.
    fn aligned_moves_whole_page_tables() {
        assert_eq!(move_and_check(SOURCE, 0x4800_0000), 2);
    }
}

ktest! {
    /// Destination congruent but source and destination off 2 MiB alignment: the one table
    /// the source covers whole moves, the partial ones go entry by entry.
    fn congruent_unaligned_moves_the_whole_table_inside() {
        assert_eq!(move_and_check(SOURCE + 64 * PAGE, 0x4800_0000 + 64 * PAGE), 1);
    }
}

ktest! {
    /// Destination not congruent modulo 2 MiB: every entry moves one by one.
    fn misaligned_moves_entry_by_entry() {
        assert_eq!(move_and_check(SOURCE, 0x4800_0000 + 16 * PAGE), 0);
    }
}
