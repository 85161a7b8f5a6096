//! mremap's whole-table moves (test images only): a move between places congruent modulo
//! 2 MiB carries each leaf page table the source covers whole by its level-2 entry, and a
//! misaligned one entry by entry; either way the pages, guard markers and resident count
//! arrive intact. And a move that fails half-way (scripted allocation failures) leaves the
//! address space as it was.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use super::tables_moved;
use crate::arch::uaccess::{read_user, write_user};
use crate::ktest;
use crate::mm::inject::{self, FailNth, Kind};
use crate::mm::mmap::{
    self, MADV_GUARD_INSTALL, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE,
    PROT_READ, PROT_WRITE,
};
use crate::mm::torture::{address_space, run_in};
use crate::mm::user_tables::TABLE_SPAN;
use crate::proc::ktests::Baseline;
use crate::syscall::errno::ENOMEM;

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

ktest! {
    /// A move whose destination merged with the VMA before it, and that then finds no frame
    /// for the destination's first page table, must unmap the destination again: that splits
    /// the merged VMA, which takes a VMA object, and when none is to be had either the unmap is
    /// retried (it once panicked). The failed move leaves the source mapped with its pages, the
    /// neighbour as it was and nothing at the destination; once the address space is gone, the
    /// frames, VMAs and slab objects are back at their baseline.
    fn failed_move_unmaps_a_destination_merged_with_its_neighbour() {
        const PAGES: u64 = 4;
        const NEIGHBOUR: u64 = 0x8000_0000;
        const DESTINATION: u64 = NEIGHBOUR + PAGE;
        // Random failures (`fail=`) would fail other steps than the scripted ones.
        let paused = inject::Suspend::new();
        let baseline = Baseline::take();
        let space = address_space("mremap-rollback");
        let mm = space.mm.clone();
        run_in(&space, move || {
            let rw = PROT_READ | PROT_WRITE;
            let fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
            mmap::mmap(&mm, SOURCE, PAGES * PAGE, rw, fixed, u64::MAX, 0).expect("the source");
            for page in 0..PAGES {
                write_user(SOURCE + page * PAGE, &value(page)).expect("write a source page");
            }
            mmap::mmap(&mm, NEIGHBOUR, PAGE, rw, fixed, u64::MAX, 0).expect("the neighbour");
            let (vmas, resident) = (mm.vma_count(), mm.resident_pages.sum());
            // The move's allocations: the merged VMA (slab 1), the destination's first page
            // table (fails), the neighbour's part left by the unmap (slab 2, fails; a retry
            // gets slab 3).
            let table = FailNth::new(Kind::PageTable, 1);
            let object = FailNth::new(Kind::Slab, 2);
            let moved = mmap::mremap(
                &mm,
                SOURCE,
                PAGES * PAGE,
                PAGES * PAGE,
                MREMAP_MAYMOVE | MREMAP_FIXED,
                DESTINATION,
            );
            assert_eq!(moved, Err(ENOMEM), "the move with no page table to be had");
            assert!(table.fired(), "the move never asked for a page table");
            assert!(object.fired(), "the rollback's unmap took no VMA object: nothing merged");
            drop((table, object));
            assert_eq!(mm.vma_count(), vmas, "VMAs after the failed move");
            {
                let locked = mm.read();
                let neighbour = locked.find_vma(NEIGHBOUR).expect("the neighbour");
                assert_eq!(neighbour.start()..neighbour.end(), NEIGHBOUR..DESTINATION);
                assert!(
                    locked.find_vma(DESTINATION).is_none_or(|vma| vma.start() >= DESTINATION + PAGES * PAGE),
                    "the destination is still mapped"
                );
            }
            assert_eq!(mm.resident_pages.sum(), resident, "resident pages after the failed move");
            for page in 0..PAGES {
                let found = read_user::<u64>(SOURCE + page * PAGE).expect("a source page");
                assert_eq!(found, value(page), "source page {page} after the failed move");
            }
        });
        space.mm.teardown();
        drop(space);
        baseline.check();
        drop(paused);
    }
}
