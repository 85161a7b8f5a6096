//! The lockless maps walk under a storm (test images only).
//!
//! An address space holds stable VMAs (never touched during the test; adjacent ones differ in
//! flags so they never merge) and, fenced off from them by unmapped pages, three storm arenas
//! in which threads on other CPUs continuously map, reprotect and unmap random ranges, while
//! each also recycles VMAs through a second address space (VMAs come from one type-stable
//! cache, reused at once in test builds). Reader threads walk the maps without `mmap_lock`
//! over and over and check every walk: lines well-formed and strictly increasing (no overlap,
//! no repeat), every stable VMA there exactly as the `mmap_lock` snapshot taken at the start
//! shows it, everything else a VMA of the storm lying inside an arena. A first phase widens
//! the race windows with injected delays; a second one, without them, times the full reads
//! (walk and formatting), with a walk under `mmap_lock` now and then for comparison.
//!
//! `maps.break=no_retry` (or the second test, which sets it itself) makes the walk take the
//! VMAs it finds without locking or revalidating them: the readers must then catch a torn,
//! repeated or missing line.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::{LocklessMaps, MapsEntry, entries_locked, set_break_no_retry, write_maps_line};
use crate::arch::percpu;
use crate::ktest;
use crate::mm::addrspace::{Edit, Mm};
use crate::mm::mmap::{
    self, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use crate::mm::torture::{Rng, Space, address_space, start_in};
use crate::mm::vma::{
    VM_ACCESS, VM_ACCOUNT, VM_BRK, VM_EXEC, VM_IMAGE, VM_READ, VM_SHARED, VM_STACK, VM_WRITE,
};
use crate::mm::vma_lock;
use crate::time::now_ns;

const PAGE: u64 = 4096;
const BASE: u64 = 0x1000_0000;
/// Pages per storm arena.
const ARENA_PAGES: u64 = 16;
/// The storm arenas, in pages from `BASE`: an unmapped page on each side keeps storm VMAs from
/// ever merging with a stable one.
const ARENAS: [u64; 3] = [11, 31, 53];
/// The stable VMAs: (first page from `BASE`, pages, flags).
const STABLE: [(u64, u64, u32); 8] = [
    (0, 4, VM_READ | VM_IMAGE),
    (4, 4, VM_READ | VM_EXEC | VM_IMAGE),
    (8, 2, VM_READ | VM_WRITE | VM_IMAGE),
    (28, 2, VM_READ | VM_WRITE | VM_BRK),
    (48, 1, 0),
    (49, 2, VM_READ),
    (51, 1, VM_READ | VM_WRITE | VM_SHARED),
    (70, 4, VM_READ | VM_WRITE | VM_STACK),
];
/// Where the storm recycles VMAs in the second address space.
const RECYCLED: u64 = 0x5000_0000;
/// More lines than the layout can ever have: a walk that gets this far runs in circles.
const MAX_LINES: usize = 256;
const IMAGE: &str = "/bin/maps-torture";
const ANON_FIXED: u64 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const PROTECTIONS: [u64; 4] = [PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, 0];

/// How long each phase runs, and whether the first failure ends the run.
struct Plan {
    /// With delays injected at the race windows.
    race_ns: u64,
    /// Without them; the reads are timed.
    timed_ns: u64,
    stop_at_first_failure: bool,
}

/// What the readers and the storm did.
#[derive(Default)]
struct Tally {
    walks: AtomicU64,
    lines: AtomicU64,
    retries: AtomicU64,
    pinned_steps: AtomicU64,
    most_attempts: AtomicU32,
    failures: AtomicU64,
    first_failure: spin::Mutex<Option<String>>,
    edits: AtomicU64,
    /// Full lockless reads of the timed phase (ns).
    lockless_ns: spin::Mutex<Vec<u64>>,
    /// Full reads under `mmap_lock` of the timed phase (ns).
    locked_ns: spin::Mutex<Vec<u64>>,
}

/// `entry` as its maps line, without the newline (for messages).
fn line_of(entry: &MapsEntry) -> String {
    let mut line = String::new();
    write_maps_line(&mut line, entry, Some(IMAGE));
    line.pop();
    line
}

fn in_an_arena(entry: &MapsEntry) -> bool {
    ARENAS.iter().any(|&first| {
        let arena = BASE + first * PAGE..BASE + (first + ARENA_PAGES) * PAGE;
        arena.start <= entry.start && entry.end <= arena.end
    })
}

/// Checks one walk against the stable VMAs of the snapshot taken under `mmap_lock`.
fn check_walk(entries: &[MapsEntry], stable: &[MapsEntry]) -> Result<(), String> {
    if entries.len() > MAX_LINES {
        return Err(format!("the walk ran on past {MAX_LINES} lines"));
    }
    let mut previous_end = 0;
    let mut next_stable = 0;
    for (index, entry) in entries.iter().enumerate() {
        let line = line_of(entry);
        if entry.start >= entry.end || entry.start % PAGE != 0 || entry.end % PAGE != 0 {
            return Err(format!("line {index} is malformed: {line}"));
        }
        if entry.start < previous_end {
            return Err(format!(
                "line {index} starts below the end of the line before ({previous_end:#x}): out of order, overlapping or repeated: {line}"
            ));
        }
        if let Some(missing) = stable.get(next_stable).filter(|s| s.end <= entry.start) {
            return Err(format!(
                "stable VMA missing: {} (line {index} is {line})",
                line_of(missing)
            ));
        }
        if stable.get(next_stable) == Some(entry) {
            next_stable += 1;
        } else if !(in_an_arena(entry) && entry.flags & !(VM_ACCESS | VM_ACCOUNT) == 0) {
            return Err(format!(
                "line {index} is neither a stable VMA nor a storm VMA: {line}"
            ));
        }
        previous_end = entry.end;
    }
    match stable.get(next_stable) {
        Some(missing) => Err(format!(
            "stable VMA missing at the end: {}",
            line_of(missing)
        )),
        None => Ok(()),
    }
}

/// Builds the layout and returns the address space with the snapshot of its stable VMAs.
fn stable_layout() -> (Arc<Space>, Vec<MapsEntry>) {
    let space = address_space("maps-torture");
    {
        let locked = space.mm.write();
        for (first, pages, flags) in STABLE {
            let start = BASE + first * PAGE;
            locked
                .edit(start..start + pages * PAGE, Edit::Map(flags))
                .expect("map a stable VMA");
        }
    }
    let snapshot = entries_locked(&space.mm.read());
    let expected: Vec<MapsEntry> = STABLE
        .iter()
        .map(|&(first, pages, flags)| MapsEntry {
            start: BASE + first * PAGE,
            end: BASE + (first + pages) * PAGE,
            flags,
            file: None,
        })
        .collect();
    // Writable ones are charged to the commit count besides (`VM_ACCOUNT`).
    let as_mapped: Vec<MapsEntry> = snapshot
        .iter()
        .map(|entry| MapsEntry {
            flags: entry.flags & !VM_ACCOUNT,
            ..entry.clone()
        })
        .collect();
    assert_eq!(as_mapped, expected, "the stable VMAs as mapped");
    (space, snapshot)
}

/// One random edit of the storm in `mm`.
fn storm_edit(mm: &Mm, rng: &mut Rng) {
    let arena = BASE + ARENAS[rng.next(ARENAS.len() as u64) as usize] * PAGE;
    let first = rng.next(ARENA_PAGES);
    let pages = (1 + rng.next(4)).min(ARENA_PAGES - first);
    let (start, len) = (arena + first * PAGE, pages * PAGE);
    let prot = PROTECTIONS[rng.next(PROTECTIONS.len() as u64) as usize];
    match rng.next(3) {
        0 => {
            mmap::mmap(mm, start, len, prot, ANON_FIXED, u64::MAX, 0).expect("storm mmap");
        }
        // Fails where the range has a hole, which is fine.
        1 => {
            let _ = mmap::mprotect(mm, start, len, prot);
        }
        _ => {
            mmap::munmap(mm, start, len).expect("storm munmap");
        }
    }
}

/// A reader: walks the maps until `stop`, checking every walk; in the timed phase
/// (`timing`), records how long each full read took, and every eighth read is one under
/// `mmap_lock` instead.
fn read_until_stopped(
    mm: &Mm,
    stable: &[MapsEntry],
    tally: &Tally,
    stop: &AtomicBool,
    timing: &AtomicBool,
    stop_at_first_failure: bool,
) {
    let mut entries = Vec::with_capacity(MAX_LINES + 1);
    let mut text = String::with_capacity((MAX_LINES + 1) * 100);
    let (mut lockless_ns, mut locked_ns) = (Vec::new(), Vec::new());
    let mut round = 0u64;
    while !stop.load(Ordering::Acquire) {
        round += 1;
        let timed = timing.load(Ordering::Acquire);
        let under_lock = timed && round % 8 == 0;
        entries.clear();
        text.clear();
        let began = now_ns();
        if under_lock {
            for entry in entries_locked(&mm.read()) {
                write_maps_line(&mut text, &entry, Some(IMAGE));
                entries.push(entry);
            }
        } else {
            let mut walk = LocklessMaps::new(mm, 0);
            for entry in walk.by_ref() {
                write_maps_line(&mut text, &entry, Some(IMAGE));
                entries.push(entry);
                if entries.len() > MAX_LINES {
                    break;
                }
            }
            let stats = walk.stats();
            tally.retries.fetch_add(stats.retries, Ordering::Relaxed);
            tally
                .pinned_steps
                .fetch_add(stats.pinned_steps, Ordering::Relaxed);
            tally
                .most_attempts
                .fetch_max(stats.most_attempts, Ordering::Relaxed);
        }
        let elapsed = now_ns() - began;
        if timed {
            if under_lock {
                locked_ns.push(elapsed);
            } else {
                lockless_ns.push(elapsed);
            }
        }
        tally.walks.fetch_add(1, Ordering::Relaxed);
        tally
            .lines
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        if let Err(failure) = check_walk(&entries, stable) {
            tally.failures.fetch_add(1, Ordering::Relaxed);
            tally.first_failure.lock().get_or_insert(failure);
            if stop_at_first_failure {
                stop.store(true, Ordering::Release);
            }
        }
        // A quiescent state for RCU, and the CPU for whoever else waits for it.
        crate::sched::cond_resched();
    }
    tally.lockless_ns.lock().extend(lockless_ns);
    tally.locked_ns.lock().extend(locked_ns);
}

/// Runs the storm and the readers as `plan` says; returns what happened.
fn run(plan: &Plan) -> Arc<Tally> {
    let (space, stable) = stable_layout();
    let recycler = address_space("maps-recycler");
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let timing = Arc::new(AtomicBool::new(false));
    let cpus = percpu::online_count() as u64;
    let writers = (cpus / 2).max(1);
    let readers = (cpus - writers).max(1);
    let mut done = Vec::new();
    for index in 0..writers {
        let (space, recycler, tally, stop) =
            (space.clone(), recycler.clone(), tally.clone(), stop.clone());
        done.push(start_in(&space.clone(), move || {
            let mut rng = Rng(0x5eed_0000 + index * 7919);
            while !stop.load(Ordering::Acquire) {
                storm_edit(&space.mm, &mut rng);
                tally.edits.fetch_add(1, Ordering::Relaxed);
                if rng.next(4) == 0 {
                    // Send freed VMAs through another address space.
                    let at = RECYCLED + index * 16 * PAGE + rng.next(16) * PAGE;
                    mmap::mmap(&recycler.mm, at, PAGE, PROT_READ, ANON_FIXED, u64::MAX, 0)
                        .expect("recycler mmap");
                    mmap::munmap(&recycler.mm, at, PAGE).expect("recycler munmap");
                }
                crate::sched::yield_now();
            }
        }));
    }
    for _ in 0..readers {
        let (space, stable, tally, stop, timing) = (
            space.clone(),
            stable.clone(),
            tally.clone(),
            stop.clone(),
            timing.clone(),
        );
        let stop_at_first_failure = plan.stop_at_first_failure;
        done.push(start_in(&space.clone(), move || {
            read_until_stopped(
                &space.mm,
                &stable,
                &tally,
                &stop,
                &timing,
                stop_at_first_failure,
            );
        }));
    }

    vma_lock::set_injection(2_000, 0);
    wait_unless_stopped(&stop, plan.race_ns);
    vma_lock::set_injection(0, 0);
    timing.store(true, Ordering::Release);
    wait_unless_stopped(&stop, plan.timed_ns);
    stop.store(true, Ordering::Release);
    for completion in &done {
        assert!(
            completion.wait_timeout(30_000_000_000),
            "a torture thread never finished"
        );
    }
    let after = entries_locked(&space.mm.read());
    let stable_after: Vec<MapsEntry> = after.into_iter().filter(|e| !in_an_arena(e)).collect();
    assert_eq!(stable_after, stable, "the stable VMAs changed");
    space.mm.teardown();
    recycler.mm.teardown();
    tally
}

/// Sleeps for `ns`, or less if a reader stops the run.
fn wait_unless_stopped(stop: &AtomicBool, ns: u64) {
    let deadline = now_ns() + ns;
    while now_ns() < deadline && !stop.load(Ordering::Acquire) {
        let _ = crate::sched::timer::sleep_ns(10_000_000);
    }
}

/// Median and worst of `samples` (ns), in µs.
fn median_and_worst(samples: &spin::Mutex<Vec<u64>>) -> (u64, u64, usize) {
    let mut samples = samples.lock().clone();
    samples.sort_unstable();
    let median = samples.get(samples.len() / 2).copied().unwrap_or(0);
    let worst = samples.last().copied().unwrap_or(0);
    (median / 1000, worst / 1000, samples.len())
}

ktest! {
    timeout_ms = 120_000;
    /// See the module documentation: the lockless walk never shows a torn, repeated, missing
    /// or out-of-place line while the storm goes on.
    fn lockless_maps_stay_consistent_under_a_storm_of_edits() {
        if percpu::online_count() < 2 {
            return ktest::skip("needs 2 or more CPUs");
        }
        let tally = run(&Plan {
            race_ns: 4_000_000_000 * ktest::stress_factor(),
            timed_ns: 4_000_000_000,
            stop_at_first_failure: false,
        });
        let (median, worst, timed) = median_and_worst(&tally.lockless_ns);
        let (locked_median, locked_worst, locked) = median_and_worst(&tally.locked_ns);
        crate::println!(
            "# {} walks ({} lines) beside {} storm edits: {} attempts retried, {} steps pinned their VMA, at most {} attempts for one step",
            tally.walks.load(Ordering::Relaxed),
            tally.lines.load(Ordering::Relaxed),
            tally.edits.load(Ordering::Relaxed),
            tally.retries.load(Ordering::Relaxed),
            tally.pinned_steps.load(Ordering::Relaxed),
            tally.most_attempts.load(Ordering::Relaxed)
        );
        crate::println!(
            "# full read without mmap_lock: median {median} us, worst {worst} us ({timed} reads); under mmap_lock: median {locked_median} us, worst {locked_worst} us ({locked} reads)"
        );
        if let Some(failure) = tally.first_failure.lock().as_ref() {
            panic!(
                "{} of the walks were inconsistent; the first: {failure}",
                tally.failures.load(Ordering::Relaxed)
            );
        }
        assert!(tally.edits.load(Ordering::Relaxed) > 0, "the storm never edited");
        assert!(timed > 0, "no read was timed");
    }
}

ktest! {
    timeout_ms = 60_000;
    /// The torture is strong enough to matter: with the walk broken to take each VMA it finds
    /// without a reference or a second lookup (`maps.break=no_retry`), the readers catch a
    /// torn, repeated or missing line within the time the run allows.
    fn the_maps_torture_catches_a_walk_that_neither_locks_nor_revalidates() {
        if percpu::online_count() < 2 {
            return ktest::skip("needs 2 or more CPUs");
        }
        let was_broken = set_break_no_retry(true);
        let tally = run(&Plan {
            race_ns: 10_000_000_000,
            timed_ns: 0,
            stop_at_first_failure: true,
        });
        set_break_no_retry(was_broken);
        let failure = tally.first_failure.lock().take();
        crate::println!(
            "# broken walk: {} of {} walks inconsistent; the first: {}",
            tally.failures.load(Ordering::Relaxed),
            tally.walks.load(Ordering::Relaxed),
            failure.as_deref().unwrap_or("none")
        );
        assert!(failure.is_some(), "the torture did not catch the broken walk");
    }
}
