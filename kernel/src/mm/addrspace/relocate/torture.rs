//! mremap under torture (test images only): mover threads carry regions back and forth
//! between two places with `MREMAP_FIXED` (whole regions, and random parts of them, which
//! splits and merges their VMAs), while faulter threads on the other CPUs write every page of
//! every region for the first time (each write a fault, racing with the moves) and read the
//! pages the others wrote.
//!
//! Regions are larger than a leaf page table's span, so moves carry whole tables (by their
//! level-2 entry) as well as single entries.
//!
//! A page of a region keeps its offset wherever it is, so a thread finds it by trying both
//! places. Every value written is known: a page written once must read as that value from
//! then on, wherever it went (never lost to a move), and at the end of each round every page
//! of every region holds its value. Frames, VMAs and the frames' holder counts are back at
//! their baseline once the address space is gone (checked in the working kernel; the broken
//! one's check is the lost page).
//!
//! `mremap.break=no_source_lock` (or the second test, which sets it itself) makes moves skip
//! the source's write lock: a fault under the source's read lock then installs its page at the
//! old place after the move carried the entries, the write goes there and is lost with the
//! unmapped source, which the checks must catch.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{set_break_no_source_lock, tables_moved};
use crate::arch::percpu;
use crate::arch::uaccess::{read_user, write_user};
use crate::ktest;
use crate::mm::mmap::{
    self, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ,
    PROT_WRITE,
};
use crate::mm::torture::{Rng, Space, address_space, start_in};
use crate::mm::vma_lock;
use crate::proc::ktests::Baseline;
use crate::sync::Completion;
use crate::time::now_ns;

const PAGE: u64 = 4096;
const REGIONS: u64 = 2;
/// 2.5 MiB: a move of a region's first 512 pages or more carries their leaf table whole (the
/// homes are 2 MiB-aligned, so congruent), the rest entry by entry.
const REGION_PAGES: u64 = 640;
/// Region `r` lives at `HOMES[r][0]` or `HOMES[r][1]` (page by page): far apart, in page
/// tables of their own.
const HOMES: [[u64; 2]; REGIONS as usize] =
    [[0x4000_0000, 0x4800_0000], [0x5000_0000, 0x5800_0000]];

/// What page `page` of region `region` holds once written in round `round`.
fn expected(round: u64, region: u64, page: u64) -> u64 {
    (round << 32) | (region << 16) | (page << 1) | 1
}

/// What one run does.
struct Plan {
    rounds: u64,
    /// Stop at the first lost page (the break check).
    stop_at_first_failure: bool,
    /// Give up after this long, rounds done or not.
    deadline_ns: u64,
}

/// What a run saw.
#[derive(Default)]
struct Tally {
    moves: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
    failures: AtomicU64,
    first_failure: spin::Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.first_failure.lock().get_or_insert(what);
    }
}

/// One round's shared state: which pages are written.
struct Round {
    number: u64,
    written: Vec<AtomicBool>,
    faulters_done: AtomicBool,
}

impl Round {
    fn index(region: u64, page: u64) -> usize {
        (region * REGION_PAGES + page) as usize
    }
}

/// Page `page` of region `region` read wherever it is; `None` while it is nowhere mapped (a
/// move in progress on both tries).
fn read_page(region: u64, page: u64) -> Option<u64> {
    HOMES[region as usize]
        .iter()
        .find_map(|home| read_user::<u64>(home + page * PAGE).ok())
}

/// Writes `value` to page `page` of region `region`, wherever it is; false if it was nowhere
/// mapped on both tries.
fn write_page(region: u64, page: u64, value: u64) -> bool {
    HOMES[region as usize]
        .iter()
        .any(|home| write_user(home + page * PAGE, &value).is_ok())
}

fn faulter(round: Arc<Round>, tally: Arc<Tally>, index: u64, faulters: u64, stop: Arc<AtomicBool>) {
    let mut rng = Rng(0x5eed_0000 + index * 104_729 + round.number);
    for region in 0..REGIONS {
        let mut page = index;
        while page < REGION_PAGES {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let value = expected(round.number, region, page);
            if !write_page(region, page, value) {
                // Both tries met the region in motion: try again.
                crate::sched::yield_now();
                continue;
            }
            round.written[Round::index(region, page)].store(true, Ordering::Release);
            tally.writes.fetch_add(1, Ordering::Relaxed);
            // A page another thread wrote: it must still hold its value.
            let other_region = rng.next(REGIONS);
            let other = rng.next(REGION_PAGES);
            if round.written[Round::index(other_region, other)].load(Ordering::Acquire)
                && let Some(found) = read_page(other_region, other)
            {
                tally.reads.fetch_add(1, Ordering::Relaxed);
                let want = expected(round.number, other_region, other);
                if found != want {
                    tally.fail(format!(
                        "round {}: page {other} of region {other_region} reads {found:#x}, not {want:#x}",
                        round.number
                    ));
                }
            }
            page += faulters;
            crate::sched::yield_now();
        }
    }
}

/// Moves region `region` back and forth until the faulters are done: from a random page to
/// the end of the VMA that holds it, or a random part of that, to the same offsets in its
/// other home (so whole regions move, and parts that split and merge VMAs). The part always
/// lies inside one VMA: a failed `MREMAP_FIXED` may have unmapped its destination already.
fn mover(space: Arc<Space>, round: Arc<Round>, tally: Arc<Tally>, region: u64) {
    let mm = &space.mm;
    let homes = HOMES[region as usize];
    let mut rng = Rng(0xabcd_0000 + region * 31 + round.number);
    while !round.faulters_done.load(Ordering::Acquire) {
        let first = if rng.next(3) == 0 {
            0
        } else {
            rng.next(REGION_PAGES)
        };
        let found = {
            let locked = mm.read();
            [(homes[0], homes[1]), (homes[1], homes[0])]
                .into_iter()
                .find_map(|(from, to)| {
                    let vma = locked.find_vma(from + first * PAGE)?;
                    Some((from, to, (vma.end() - from) / PAGE))
                })
        };
        let Some((from, to, limit)) = found else {
            tally.fail(format!(
                "round {}: page {first} of region {region} is in neither home",
                round.number
            ));
            return;
        };
        let pages = if rng.next(2) == 0 {
            limit - first
        } else {
            1 + rng.next(limit - first)
        };
        let (offset, len) = (first * PAGE, pages * PAGE);
        let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
        match mmap::mremap(mm, from + offset, len, len, flags, to + offset) {
            Ok(_) => {
                tally.moves.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => tally.fail(format!(
                "round {}: mremap of pages {first}+{pages} of region {region}: {error:?}",
                round.number
            )),
        }
        crate::sched::yield_now();
    }
}

/// Runs `plan` in a fresh address space, which is gone afterwards; `tally` says what happened.
fn run(plan: &Plan, tally: &Arc<Tally>) {
    let space = address_space("mremap-torture");
    let faulters = (percpu::online_count() as u64)
        .saturating_sub(REGIONS)
        .max(2);
    let stop = Arc::new(AtomicBool::new(false));
    for number in 1..=plan.rounds {
        if now_ns() > plan.deadline_ns
            || (plan.stop_at_first_failure && tally.failures.load(Ordering::Relaxed) > 0)
        {
            break;
        }
        for homes in HOMES {
            mmap::mmap(
                &space.mm,
                homes[0],
                REGION_PAGES * PAGE,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                u64::MAX,
                0,
            )
            .expect("map a region");
        }
        let round = Arc::new(Round {
            number,
            written: (0..REGIONS * REGION_PAGES)
                .map(|_| AtomicBool::new(false))
                .collect(),
            faulters_done: AtomicBool::new(false),
        });
        let movers: Vec<Arc<Completion>> = (0..REGIONS)
            .map(|region| {
                let (space2, round, tally) = (space.clone(), round.clone(), tally.clone());
                start_in(&space, move || mover(space2, round, tally, region))
            })
            .collect();
        let threads: Vec<Arc<Completion>> = (0..faulters)
            .map(|index| {
                let (round, tally, stop) = (round.clone(), tally.clone(), stop.clone());
                start_in(&space, move || faulter(round, tally, index, faulters, stop))
            })
            .collect();
        for done in &threads {
            assert!(
                done.wait_timeout(120_000_000_000),
                "a faulter never finished"
            );
        }
        round.faulters_done.store(true, Ordering::Release);
        for done in &movers {
            assert!(done.wait_timeout(60_000_000_000), "a mover never finished");
        }
        check_round(&space, &round, tally);
        for homes in HOMES {
            for home in homes {
                mmap::munmap(&space.mm, home, REGION_PAGES * PAGE).expect("unmap a home");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    space.mm.teardown();
}

/// Every page of every region holds its round's value, and the address space maps no more
/// than the regions (two VMAs at most each, one per home).
fn check_round(space: &Arc<Space>, round: &Arc<Round>, tally: &Arc<Tally>) {
    let checker = {
        let (round, tally) = (round.clone(), tally.clone());
        start_in(space, move || {
            for region in 0..REGIONS {
                for page in 0..REGION_PAGES {
                    let want = expected(round.number, region, page);
                    match read_page(region, page) {
                        Some(found) if found == want => {}
                        found => tally.fail(format!(
                            "round {}, at the end: page {page} of region {region} reads {found:x?}, not {want:#x}",
                            round.number
                        )),
                    }
                }
            }
        })
    };
    assert!(
        checker.wait_timeout(60_000_000_000),
        "the checker never finished"
    );
    let pages = space.mm.resident_pages.sum();
    if pages != (REGIONS * REGION_PAGES) as i64 {
        tally.fail(format!(
            "round {}: {pages} pages resident, not {}",
            round.number,
            REGIONS * REGION_PAGES
        ));
    }
}

fn report(label: &str, tally: &Tally) {
    crate::println!(
        "# {label}: {} moves, {} first writes, {} reads checked, {} failures; the first: {}",
        tally.moves.load(Ordering::Relaxed),
        tally.writes.load(Ordering::Relaxed),
        tally.reads.load(Ordering::Relaxed),
        tally.failures.load(Ordering::Relaxed),
        tally.first_failure.lock().as_deref().unwrap_or("none")
    );
}

ktest! {
    timeout_ms = 600_000;
    /// See the module documentation.
    fn mremap_moves_race_faults_and_lose_no_page() {
        if !vma_lock::is_enabled() {
            return ktest::skip("the per-VMA lock is off (vma_lock=off)");
        }
        if percpu::online_count() < 4 {
            return ktest::skip("needs 4 or more CPUs");
        }
        let tally = Arc::new(Tally::default());
        let started = now_ns();
        let baseline = Baseline::take();
        let tables_before = tables_moved();
        vma_lock::set_injection(2_000, 64);
        run(
            &Plan {
                rounds: 16 * ktest::stress_factor(),
                stop_at_first_failure: false,
                deadline_ns: now_ns() + 240_000_000_000,
            },
            &tally,
        );
        vma_lock::set_injection(0, 0);
        baseline.check();
        report("mremap torture", &tally);
        let tables = tables_moved() - tables_before;
        crate::println!(
            "# mremap torture: {} ms, {tables} leaf tables moved whole",
            (now_ns() - started) / 1_000_000
        );
        assert_eq!(
            tally.failures.load(Ordering::Relaxed),
            0,
            "{}",
            tally.first_failure.lock().as_deref().unwrap_or("")
        );
        assert!(tally.moves.load(Ordering::Relaxed) > 0, "nothing moved");
    }
}

ktest! {
    timeout_ms = 300_000;
    /// The torture is strong enough to matter: with moves that skip the source's write lock
    /// (`mremap.break=no_source_lock`), a write is lost to a move within the time allowed.
    fn the_mremap_torture_catches_a_move_without_the_source_lock() {
        if !vma_lock::is_enabled() {
            return ktest::skip("the per-VMA lock is off (vma_lock=off)");
        }
        if percpu::online_count() < 4 {
            return ktest::skip("needs 4 or more CPUs");
        }
        let was_broken = set_break_no_source_lock(true);
        vma_lock::set_injection(2_000, 0);
        let tally = Arc::new(Tally::default());
        run(
            &Plan {
                rounds: u64::MAX,
                stop_at_first_failure: true,
                deadline_ns: now_ns() + 120_000_000_000,
            },
            &tally,
        );
        vma_lock::set_injection(0, 0);
        set_break_no_source_lock(was_broken);
        report("broken mremap", &tally);
        assert!(
            tally.failures.load(Ordering::Relaxed) > 0,
            "the torture did not catch the move without the source's write lock"
        );
    }
}
