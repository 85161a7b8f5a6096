//! `fuzz model SEED OPERATIONS THREADS`: the shadow model of the address space.
//!
//! THREADS editors (seeded per thread from SEED) each own a disjoint arena of address space
//! ([`ARENA_PAGES`] pages at a fixed address far below where the kernel places mappings of its
//! own choosing) and run random mmap, munmap, mprotect, madvise, mremap, brk (editor 0 only),
//! fork, writes and file writes in it. Each keeps a model of its arena page by page (mapped,
//! protection, backing, expected contents), predicts every call's result, and after each
//! operation reads back every page the model says is readable and checks, with calls that
//! return errors instead of faulting (mincore), that the pages it says are mapped are and the
//! others are not ([`editor`]). Meanwhile THREADS/2 faulters (at least one) fault, write,
//! drop and re-protect their own regions and check them ([`faulter`]).
//!
//! Each disagreement prints one line starting `MISMATCH` (the first [`PRINTED_MISMATCHES`]);
//! every [`PROGRESS_INTERVAL`] operations a `model progress: N operations` line shows the run
//! is alive (the host's silence limit counts from the last line); the run ends with
//! `model: N operations, M mismatches, seed S` and exits 0 only if M is 0.
//! A fault on a page the model says is accessible is a mismatch too: the handler prints it
//! and the summary and ends the process with status 1.
//!
//! The statics below are the run's shared state: counters and flags, all atomic.

mod editor;
mod faulter;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use urt::signal::{SA_SIGINFO, SigInfo, UContext};
use urt::sys;
use urt::{eprintln, println};

/// The pages of one editor's arena.
pub const ARENA_PAGES: usize = 128;
/// Where editor 0's arena starts; editor `i`'s starts `i` strides above.
const ARENA_BASE: usize = 0x2000_0000_0000;
/// The distance between two arenas (wide gaps: nothing an editor does reaches the next one).
const ARENA_STRIDE: usize = 64 << 20;
/// The most editors: their arenas all lie in `ARENA_BASE..ARENA_END`.
const MAX_EDITORS: usize = 16;
/// The end of the arenas' part of the address space.
const ARENA_END: usize = ARENA_BASE + MAX_EDITORS * ARENA_STRIDE;
/// How many MISMATCH lines are printed (all are counted).
const PRINTED_MISMATCHES: u64 = 200;

/// Every this many operations (all editors together) one progress line is printed.
const PROGRESS_INTERVAL: u64 = 500;
/// Disagreements between the model and the kernel.
static MISMATCHES: AtomicU64 = AtomicU64::new(0);
/// Operations the editors have run.
static OPERATIONS_DONE: AtomicU64 = AtomicU64::new(0);
/// The seed, for the summary printed by the fault handler.
static SEED: AtomicU64 = AtomicU64::new(0);
/// Set when the editors are done: the faulters stop.
static STOP: AtomicBool = AtomicBool::new(false);
/// Threads that have set themselves up; all start together once every one has.
static READY: AtomicUsize = AtomicUsize::new(0);
/// The operations, by kind, for the coverage line.
const KINDS: [&str; 10] = [
    "mmap", "munmap", "mprotect", "madvise", "mremap", "fork", "pwrite", "brk", "invalid", "write",
];
/// How many operations of each kind ran.
static RUNS: [AtomicU64; KINDS.len()] = [const { AtomicU64::new(0) }; KINDS.len()];
/// How many calls of each kind the model predicted to fail.
static PREDICTED_ERRORS: [AtomicU64; KINDS.len()] = [const { AtomicU64::new(0) }; KINDS.len()];
/// Whether the kernel took a guard marker (`MADV_GUARD_INSTALL`, Linux 6.13).
static GUARDS_KNOWN: AtomicBool = AtomicBool::new(false);
/// Set in a fork's child: a fault there ends the child with [`CHILD_FAULTED`].
static IN_CHILD: AtomicBool = AtomicBool::new(false);
/// A fork child's exit status when it faulted.
const CHILD_FAULTED: i32 = 99;

/// The first address of editor `index`'s arena.
fn arena_base(index: usize) -> usize {
    ARENA_BASE + index * ARENA_STRIDE
}

/// Whether `addr..addr + len` touches the arenas' part of the address space.
fn in_arenas(addr: usize, len: usize) -> bool {
    addr < ARENA_END && addr + len > ARENA_BASE
}

/// Counts a mismatch and prints its line (the first [`PRINTED_MISMATCHES`]).
fn mismatch(what: fmt::Arguments<'_>) {
    if MISMATCHES.fetch_add(1, Ordering::Relaxed) < PRINTED_MISMATCHES {
        println!("MISMATCH {what}");
    }
}

/// Waits until all `threads` threads have called this.
fn start_together(threads: usize) {
    READY.fetch_add(1, Ordering::AcqRel);
    while READY.load(Ordering::Acquire) < threads {
        let _ = sys::sched_yield();
    }
}

fn print_summary() -> u64 {
    let mismatches = MISMATCHES.load(Ordering::Relaxed);
    println!(
        "model: {} operations, {} mismatches, seed {}",
        OPERATIONS_DONE.load(Ordering::Relaxed),
        mismatches,
        SEED.load(Ordering::Relaxed)
    );
    mismatches
}

/// One line: each kind's count (and how many of them the model predicted to fail).
fn print_coverage() {
    let mut line = urt::io::FdWriter::new(1);
    let _ = write!(line, "model coverage:");
    for (kind, name) in KINDS.iter().enumerate() {
        let _ = write!(
            line,
            " {name} {} ({} errors),",
            RUNS[kind].load(Ordering::Relaxed),
            PREDICTED_ERRORS[kind].load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        line,
        " guard markers {}",
        if GUARDS_KNOWN.load(Ordering::Relaxed) {
            "yes"
        } else {
            "no"
        }
    );
    line.flush();
}

/// SIGSEGV and SIGBUS: the model let a thread touch a page the kernel refused.
extern "C" fn on_fault(signal: i32, info: *mut SigInfo, _context: *mut UContext) {
    if IN_CHILD.load(Ordering::Relaxed) {
        sys::exit_group(CHILD_FAULTED);
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).addr() };
    mismatch(format_args!(
        "fault: signal {signal} at {addr:#x}, a page the model says is accessible"
    ));
    print_summary();
    sys::exit_group(1);
}

pub fn run(seed: u64, operations: u64, threads: usize) -> i32 {
    if threads > MAX_EDITORS {
        eprintln!("fuzz model: at most {MAX_EDITORS} threads");
        return 2;
    }
    SEED.store(seed, Ordering::Relaxed);
    for signal in [sys::SIGSEGV, SIGBUS] {
        if let Err(e) = urt::signal::set_handler(signal, on_fault, SA_SIGINFO, 0) {
            eprintln!("fuzz model: sigaction: {}", e.name());
            return 1;
        }
    }
    let faulters = (threads / 2).max(1);
    let everyone = threads + faulters;
    let faulter_threads: alloc::vec::Vec<_> = (0..faulters)
        .map(|i| urt::thread::spawn(move || faulter::run(seed, i, everyone)))
        .collect();
    let editors: alloc::vec::Vec<_> = (0..threads)
        .map(|i| {
            let share =
                operations / threads as u64 + u64::from((i as u64) < operations % threads as u64);
            urt::thread::spawn(move || editor::run(seed, i, share, everyone))
        })
        .collect();
    for editor in editors {
        editor.join();
    }
    STOP.store(true, Ordering::Release);
    for faulter in faulter_threads {
        faulter.join();
    }
    print_coverage();
    if print_summary() == 0 { 0 } else { 1 }
}

const SIGBUS: usize = 7;
