//! `snapshot`: does every child get one instant of its parent?
//!
//! Writer threads run rounds: round `r` stores `started = r`, then writes `pattern(tag, r)`
//! into two words (the first and the last) of each of its private pages, in order, reading
//! each word first (it must still hold round `r - 1`: no child's write may reach it), then
//! stores the round into its word of a `MAP_SHARED` page and `done = r`. Every store is a
//! release store, so the stores reach memory in program order. Every other writer first makes
//! its pages read-only and writable again (two mprotects, which also split and merge VMAs), so
//! that each of its writes faults and takes the page back in place: faults that must not run
//! while fork copies the page (Linux 6.4's per-VMA locking lacked that exclusion at first).
//! Meanwhile the main thread
//! forks again and again; each fork's child shares the pages a writer has not copied since the
//! fork before (with up to [`LIVE`] children alive at once, frames have several sharers).
//!
//! Whatever the kernel does while it forks, a writer's stores either land in the child's copy
//! or not, and once one did not (the writer faulted and waited for the fork), none after it
//! does. So what a child sees of a writer is a *prefix* of its stores: `started` and `done` are
//! equal and every word holds that round, or `started = done + 1` and the words hold round
//! `started` up to some point and round `done` after it. And the prefix lies between what the
//! forker read just before the fork (`done`: the lower bound, passed in the child's copy) and
//! just after it returned (`started`: the upper bound, handed over through shared memory).
//! Each child checks that, page by page; then that its copy no longer changes while the
//! parent's writers go on; that the shared pages do keep changing, and that what it writes to
//! shared memory reaches the parent; and finally writes its own pattern into every private
//! page and reads it back, twice, a pause apart. Every third child starts a writer of its own
//! and forks a grandchild, which does the same checks against it.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use urt::println;
use urt::sys;

use crate::{PATIENCE_NS, Region, Zeroable, pattern, pause, wait, wait_until};

/// Private pages per writer.
const PAGES: usize = 16;
/// The words a round writes in each page, in this order.
const WORDS: [usize; 2] = [0, 511];
/// Words per writer.
const SLOTS: usize = PAGES * WORDS.len();
/// The most writer threads (the default: one per CPU but one, at least 2).
pub const MAX_WRITERS: usize = 6;
/// Children alive at once.
const LIVE: usize = 4;
/// The writers of the forking process are tagged from here, children from `CHILD_TAG` (plus
/// their number), children's own writers from `GRAND_TAG`.
const WRITER_TAG: u64 = 0x100;
const CHILD_TAG: u64 = 0x10_000;
const GRAND_TAG: u64 = 0x20_000;

/// What a child found wrong, as bits of its exit status.
const NOT_AN_INSTANT: i32 = 1;
const CHANGED_AFTER_FORK: i32 = 2;
const SHARED_NOT_SHARED: i32 = 4;
const OWN_WRITES_LOST: i32 = 8;
const GRANDCHILD_FAILED: i32 = 16;
const CHILD_WRITE_LEAKED: i32 = 32;
const SETUP_FAILED: i32 = 64;

/// What a writer does before each round besides writing (see [`Writer::run`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing: its writes fault only on pages a fork shares.
    Plain,
    /// Makes its pages read-only and writable again.
    Reprotects,
    /// Drops its pages (`MADV_DONTNEED`): every write of the round faults a fresh page in.
    Zaps,
}

/// One writer thread's counters, region and findings (in private memory: a child has its copy).
struct Writer {
    tag: u64,
    region: Region,
    /// Its word of the shared region, if it has one.
    shared: Option<&'static AtomicU64>,
    kind: Kind,
    started: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
    /// Words that held something else than this writer's previous round, and the first such.
    foreign: AtomicU64,
    first_foreign: AtomicU64,
}

impl Writer {
    /// A writer over `region`, which must hold `pattern(tag, 0)` in every slot.
    fn new(
        tag: u64,
        region: Region,
        shared: Option<&'static AtomicU64>,
        kind: Kind,
    ) -> &'static Writer {
        Box::leak(Box::new(Writer {
            tag,
            region,
            shared,
            kind,
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            foreign: AtomicU64::new(0),
            first_foreign: AtomicU64::new(0),
        }))
    }

    /// Slot `slot` (in the order a round writes them).
    fn slot(&self, slot: usize) -> &'static AtomicU64 {
        self.region
            .at(slot / WORDS.len(), WORDS[slot % WORDS.len()])
    }

    /// Fills every slot with `value`.
    fn fill(&self, value: u64) {
        for slot in 0..SLOTS {
            self.slot(slot).store(value, Ordering::Release);
        }
    }

    /// Rounds until `stop` (see the module documentation). Before its writes, a writer that
    /// [`Kind::Reprotects`] makes its pages read-only and writable again, which leaves their
    /// entries read-only: each write then faults and (the page being its own by then) makes the
    /// entry writable in place. One that [`Kind::Zaps`] drops its pages after `started`: each
    /// write then faults a fresh page in. Both are faults that must not run while fork copies
    /// the page.
    fn run(&self) {
        let mut round = self.done.load(Ordering::Relaxed);
        while !self.stop.load(Ordering::Relaxed) {
            if self.kind == Kind::Reprotects {
                for prot in [sys::PROT_READ, sys::PROT_READ | sys::PROT_WRITE] {
                    if let Err(e) = self.region.protect(prot) {
                        panic!("writer {:#x}: mprotect: {e}", self.tag);
                    }
                }
            }
            let next = round + 1;
            self.started.store(next, Ordering::Release);
            let old = if self.kind == Kind::Zaps {
                if let Err(e) = self.region.drop_pages() {
                    panic!("writer {:#x}: madvise: {e}", self.tag);
                }
                0
            } else {
                pattern(self.tag, round)
            };
            let new = pattern(self.tag, next);
            for slot in 0..SLOTS {
                let word = self.slot(slot);
                let seen = word.load(Ordering::Acquire);
                if seen != old && self.foreign.fetch_add(1, Ordering::Relaxed) == 0 {
                    self.first_foreign.store(seen, Ordering::Relaxed);
                }
                word.store(new, Ordering::Release);
            }
            if let Some(shared) = self.shared {
                shared.store(next, Ordering::Release);
            }
            self.done.store(next, Ordering::Release);
            round = next;
        }
    }

    /// Starts a thread running rounds; it ends at `stop`.
    fn start(&'static self) -> Result<urt::thread::JoinHandle<()>, sys::Errno> {
        urt::thread::Builder::new()
            .stack_size(16 * 1024)
            .spawn(move || self.run())
    }

    /// `Err` with what this writer found, if it found a word it had not written.
    fn findings(&self, who: &str) -> Result<(), String> {
        match self.foreign.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(format!(
                "{who}: writer {:#x} found {n} words it had not written, the first {:#x}",
                self.tag,
                self.first_foreign.load(Ordering::Relaxed)
            )),
        }
    }
}

/// What a forker hands its child through shared memory: the upper bounds, read after fork
/// returned; and where the child leaves its mark.
#[repr(C, align(64))]
struct Handoff {
    ready: AtomicU64,
    upper: [AtomicU64; MAX_WRITERS],
    mailbox: AtomicU64,
}

/// Shared state of the whole run.
#[repr(C, align(64))]
struct Control {
    /// Forks the top process has made.
    forks: AtomicU64,
    /// The top process has forked for the last time.
    finished: AtomicBool,
}

// SAFETY: both are made of atomics, for which zero is a valid value.
unsafe impl Zeroable for Handoff {}
// SAFETY: as above.
unsafe impl Zeroable for Control {}
// SAFETY: as above.
unsafe impl Zeroable for Counter {}

/// The mark child `index` leaves in its mailbox.
fn mark(index: usize) -> u64 {
    pattern(0xc0de, index as u64)
}

/// The shared memory of a run: the control block and a handoff per child and grandchild.
#[derive(Clone, Copy)]
struct Shared {
    control: &'static Control,
    handoffs: &'static [Handoff],
    /// The writers' round counters in shared memory.
    counters: &'static [Counter],
}

/// A counter on a cache line of its own.
#[repr(C, align(64))]
struct Counter(AtomicU64);

pub fn run(forks: usize, writers: Option<usize>) -> Result<String, String> {
    let writers = writers
        .unwrap_or(sys::cpu_count().saturating_sub(1))
        .clamp(2, MAX_WRITERS);
    let handoff_pages = (2 * forks * size_of::<Handoff>()).div_ceil(sys::PAGE_SIZE);
    let map = |pages, shared| Region::map(pages, shared).map_err(|e| format!("mmap: {e}"));
    let control = map(1, true)?.as_slice::<Control>(1);
    let shared = Shared {
        control: &control[0],
        handoffs: map(handoff_pages, true)?.as_slice::<Handoff>(2 * forks),
        counters: map(1, true)?.as_slice::<Counter>(writers),
    };
    let mut team: Vec<&'static Writer> = Vec::new();
    for (index, counter) in shared.counters.iter().enumerate() {
        let tag = WRITER_TAG + index as u64;
        let kind = [Kind::Plain, Kind::Reprotects, Kind::Zaps][index % 3];
        let writer = Writer::new(tag, map(PAGES, false)?, Some(&counter.0), kind);
        writer.fill(pattern(tag, 0));
        team.push(writer);
    }
    let threads = team
        .iter()
        .map(|writer| writer.start())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a writer thread: {e}"))?;
    if !wait_until(PATIENCE_NS, || {
        team.iter().all(|w| w.done.load(Ordering::Acquire) > 0)
    }) {
        return Err("the writers never finished a round".into());
    }

    let mut failures: Vec<String> = Vec::new();
    let mut pids: Vec<usize> = Vec::with_capacity(forks);
    let mut live = 0;
    let mut grandchildren = 0;
    for index in 0..forks {
        if live == LIVE {
            reap(shared, &pids, &mut failures);
            live -= 1;
        }
        let lower: Vec<u64> = team
            .iter()
            .map(|w| w.done.load(Ordering::Acquire))
            .collect();
        let pid = sys::fork().map_err(|e| format!("fork {index}: {e}"))?;
        if pid == 0 {
            sys::exit_group(child(shared, index, forks, &team, &lower));
        }
        let handoff = &shared.handoffs[index];
        for (upper, writer) in handoff.upper.iter().zip(&team) {
            upper.store(writer.started.load(Ordering::Acquire), Ordering::Relaxed);
        }
        handoff.ready.store(1, Ordering::Release);
        shared
            .control
            .forks
            .store(index as u64 + 1, Ordering::Release);
        pids.push(pid);
        live += 1;
        grandchildren += usize::from(forks_a_grandchild(index));
    }
    shared.control.finished.store(true, Ordering::Release);
    for _ in 0..live {
        reap(shared, &pids, &mut failures);
    }
    for writer in &team {
        writer.stop.store(true, Ordering::Relaxed);
    }
    for thread in threads {
        thread.join();
    }
    for writer in &team {
        if let Err(why) = writer.findings("the parent") {
            failures.push(why);
        }
    }
    let rounds: u64 = team.iter().map(|w| w.done.load(Ordering::Relaxed)).sum();
    match failures.first() {
        None => Ok(format!(
            "{forks} children and {grandchildren} grandchildren each saw one instant; \
             {writers} writers, {rounds} rounds"
        )),
        Some(first) => Err(format!("{} failures; the first: {first}", failures.len())),
    }
}

/// Whether child `index` forks a grandchild.
fn forks_a_grandchild(index: usize) -> bool {
    index % 3 == 1
}

/// Waits for any child; notes a bad status or a missing mark.
fn reap(shared: Shared, pids: &[usize], failures: &mut Vec<String>) {
    match wait(-1) {
        Ok((pid, status)) => {
            let Some(index) = pids.iter().position(|&p| p == pid) else {
                failures.push(format!("wait4 returned pid {pid}, no child of ours"));
                return;
            };
            if status != 0 {
                failures.push(format!(
                    "child {index} (pid {pid}) ended with status {status}"
                ));
            }
            let seen = shared.handoffs[index].mailbox.load(Ordering::Acquire);
            if seen != mark(index) {
                failures.push(format!(
                    "child {index}'s mark in shared memory: {seen:#x}, expected {:#x}",
                    mark(index)
                ));
            }
        }
        Err(e) => failures.push(format!("wait4: {e}")),
    }
}

/// Child `index` of `forks`: the checks, then a grandchild if it is its turn, then lingering
/// while the next children are forked. Returns the exit status.
fn child(
    shared: Shared,
    index: usize,
    forks: usize,
    team: &[&'static Writer],
    lower: &[u64],
) -> i32 {
    let who = format!("child {index}");
    let mut status = examine(&who, shared, index, team, lower);
    if forks_a_grandchild(index) {
        status |= grandchild(shared, index, forks, team);
    }
    // Stay while the next children are forked, so that frames have several sharers.
    let next = (index + LIVE - 1) as u64;
    wait_until(PATIENCE_NS, || {
        shared.control.forks.load(Ordering::Acquire) >= next
            || shared.control.finished.load(Ordering::Acquire)
    });
    status
}

/// Starts a writer over the child's copy of the first writer's pages and forks a grandchild
/// that checks its instant of the child. Returns the status bits for the child.
fn grandchild(shared: Shared, index: usize, forks: usize, team: &[&'static Writer]) -> i32 {
    let who = format!("child {index}");
    let tag = GRAND_TAG + index as u64;
    let writer = Writer::new(tag, team[0].region, None, Kind::Plain);
    writer.fill(pattern(tag, 0));
    let Ok(thread) = writer.start() else {
        println!("forktorture: {who}: cannot start a writer");
        return SETUP_FAILED;
    };
    let mut status = 0;
    if !wait_until(PATIENCE_NS, || writer.done.load(Ordering::Acquire) > 0) {
        println!("forktorture: {who}: its writer never finished a round");
        status |= SETUP_FAILED;
    }
    let slot = forks + index;
    let lower = [writer.done.load(Ordering::Acquire)];
    match sys::fork() {
        Ok(0) => {
            let who = format!("grandchild {index}");
            // Its instant of the child's writer; the parent's writers still fill shared pages.
            sys::exit_group(examine(&who, shared, slot, &[writer], &lower));
        }
        Ok(pid) => {
            let handoff = &shared.handoffs[slot];
            handoff.upper[0].store(writer.started.load(Ordering::Acquire), Ordering::Relaxed);
            handoff.ready.store(1, Ordering::Release);
            match wait(pid as isize) {
                Ok((_, 0)) => {}
                Ok((_, code)) => {
                    println!("forktorture: {who}: its grandchild ended with status {code}");
                    status |= GRANDCHILD_FAILED;
                }
                Err(e) => {
                    println!("forktorture: {who}: wait4 for its grandchild: {e}");
                    status |= GRANDCHILD_FAILED;
                }
            }
            if handoff.mailbox.load(Ordering::Acquire) != mark(slot) {
                println!("forktorture: {who}: its grandchild's mark never reached it");
                status |= GRANDCHILD_FAILED;
            }
        }
        Err(e) => {
            println!("forktorture: {who}: fork: {e}");
            status |= SETUP_FAILED;
        }
    }
    writer.stop.store(true, Ordering::Relaxed);
    thread.join();
    if let Err(why) = writer.findings(&who) {
        println!("forktorture: {why}");
        status |= CHILD_WRITE_LEAKED;
    }
    status
}

/// The checks of a freshly forked process `who` (handoff `slot`) against the forker's
/// `writers`, whose `done` counters read `lower` before the fork; the shared pages are watched
/// through the top writers' counters. Returns the exit status bits.
fn examine(
    who: &str,
    shared: Shared,
    slot: usize,
    writers: &[&'static Writer],
    lower: &[u64],
) -> i32 {
    let handoff = &shared.handoffs[slot];
    if !wait_until(PATIENCE_NS, || handoff.ready.load(Ordering::Acquire) != 0) {
        println!("forktorture: {who}: the upper bounds never came");
        return SETUP_FAILED;
    }
    let mut status = 0;
    let mut seen = [[0u64; SLOTS]; MAX_WRITERS];
    for (index, writer) in writers.iter().enumerate() {
        let upper = handoff.upper[index].load(Ordering::Relaxed);
        for (slot, value) in seen[index].iter_mut().enumerate() {
            *value = writer.slot(slot).load(Ordering::Acquire);
        }
        if let Err(why) = one_instant(writer, lower[index], upper, &seen[index]) {
            println!(
                "forktorture: {who}: not one instant of writer {:#x}: {why}",
                writer.tag
            );
            status |= NOT_AN_INSTANT;
        }
    }
    // The copy must stay as it is while the parent's writers go on.
    pause();
    for (index, writer) in writers.iter().enumerate() {
        for (slot, &before) in seen[index].iter().enumerate() {
            let now = writer.slot(slot).load(Ordering::Acquire);
            if now != before {
                println!(
                    "forktorture: {who}: writer {:#x}'s slot {slot} changed after the fork: \
                     {before:#x} then {now:#x}",
                    writer.tag
                );
                status |= CHANGED_AFTER_FORK;
                break;
            }
        }
    }
    status |= check_shared(who, shared, slot);
    status | write_own(who, slot, writers)
}

/// `Ok` if `seen` (a writer's slots in a child) and the child's copies of the writer's counters
/// are a prefix of the writer's stores (its `MADV_DONTNEED` included), within `lower..=upper`.
fn one_instant(writer: &Writer, lower: u64, upper: u64, seen: &[u64; SLOTS]) -> Result<(), String> {
    let started = writer.started.load(Ordering::Acquire);
    let done = writer.done.load(Ordering::Acquire);
    if !(lower <= done && done <= started && started <= done + 1 && started <= upper) {
        return Err(format!(
            "counters started={started} done={done}, forker saw done={lower} before and \
             started={upper} after"
        ));
    }
    let (newer, older) = (pattern(writer.tag, started), pattern(writer.tag, done));
    // Round `started` up to some slot, and from there on round `done`, or (once a zapping
    // writer has dropped its pages, before its first write of the round) zeroes.
    let written = if started == done {
        0
    } else {
        seen.iter().take_while(|&&v| v == newer).count()
    };
    let tail_ok = |tail: u64| seen[written..].iter().all(|&v| v == tail);
    let zapped = writer.kind == Kind::Zaps && started != done;
    let consistent = if written > 0 && zapped {
        tail_ok(0)
    } else {
        tail_ok(older) || (zapped && tail_ok(0))
    };
    if consistent {
        return Ok(());
    }
    let slot = written
        + seen[written..]
            .iter()
            .position(|&v| v != seen[written])
            .unwrap_or(0);
    Err(format!(
        "slot {slot} holds {:#x} after {written} slots of round {started} (counters \
         started={started} done={done}, bounds {lower}..={upper})",
        seen[slot]
    ))
}

/// Shared pages keep changing as the parent's writers go on, and what this process writes
/// there reaches its parent (the mark, checked there).
fn check_shared(who: &str, shared: Shared, slot: usize) -> i32 {
    let mut status = 0;
    for (index, Counter(counter)) in shared.counters.iter().enumerate() {
        let before = counter.load(Ordering::Acquire);
        if !wait_until(PATIENCE_NS, || counter.load(Ordering::Acquire) != before) {
            println!(
                "forktorture: {who}: shared counter {index} stayed at {before}: the parent's \
                 writes do not reach it"
            );
            status |= SHARED_NOT_SHARED;
        }
    }
    shared.handoffs[slot]
        .mailbox
        .store(mark(slot), Ordering::Release);
    status
}

/// Writes this process's pattern over every slot of `writers` and reads it back, at once and
/// after a pause (while the parent's writers go on in their copies).
fn write_own(who: &str, slot: usize, writers: &[&'static Writer]) -> i32 {
    let mine = pattern(CHILD_TAG, slot as u64);
    for writer in writers {
        // A writer that reprotects may have been between its two mprotects at the fork.
        if let Err(e) = writer.region.protect(sys::PROT_READ | sys::PROT_WRITE) {
            println!("forktorture: {who}: mprotect: {e}");
            return SETUP_FAILED;
        }
        writer.fill(mine);
    }
    for pass in ["at once", "after a pause"] {
        for writer in writers {
            for index in 0..SLOTS {
                let value = writer.slot(index).load(Ordering::Acquire);
                if value != mine {
                    println!(
                        "forktorture: {who}: wrote {mine:#x} over writer {:#x}'s slot {index}, \
                         read {value:#x} {pass}",
                        writer.tag
                    );
                    return OWN_WRITES_LOST;
                }
            }
        }
        pause();
    }
    0
}
