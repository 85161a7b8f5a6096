//! The soak's own steps (ktest/soak.rs runs them): the baseline taken before the first round,
//! the fuzzer run after each round with the round's number as its seed, and the closing check
//! that everything is back at the baseline.
//!
//! The baseline lives in [`BASELINE`] between the first step and the last; only the test
//! runner's task touches it.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use super::ktests::{Baseline, output, run};
use crate::ktest::{self, TestCase};
use crate::sync::rcu;

/// System calls with hostile arguments per round (`fuzz calls SEED COUNT`).
const FUZZ_CALLS: u64 = 2000;
/// Shadow-model operations per round, and the threads that make them
/// (`fuzz model SEED OPERATIONS THREADS`).
const FUZZ_MODEL_OPERATIONS: u64 = 2000;
const FUZZ_MODEL_THREADS: u64 = 4;
/// How long one fuzzer run may take.
const FUZZ_TIMEOUT_S: u64 = 240;

/// The round in progress: the fuzzer's seed.
static ROUND: AtomicU64 = AtomicU64::new(0);

/// What the closing check compares with: the baseline, the RCU callbacks queued and not yet
/// run, and the stall warnings printed, all taken after the kernel settled.
struct Before {
    baseline: Baseline,
    pending_callbacks: u64,
    stall_warnings: u64,
}

static BASELINE: spin::Mutex<Option<Before>> = spin::Mutex::new(None);

/// The first step: takes the baseline.
pub static TAKE_BASELINE: TestCase = TestCase {
    name: "soak::take_baseline",
    run: take_baseline,
    timeout_ms: 300_000,
};

/// The steps after each round's tests.
pub static EACH_ROUND: [&TestCase; 2] = [&FUZZ_HOSTILE_CALLS, &FUZZ_SHADOW_MODEL];

static FUZZ_HOSTILE_CALLS: TestCase = TestCase {
    name: "soak::fuzz_calls",
    run: fuzz_calls,
    timeout_ms: (FUZZ_TIMEOUT_S + 30) * 1000,
};

static FUZZ_SHADOW_MODEL: TestCase = TestCase {
    name: "soak::fuzz_model",
    run: fuzz_model,
    timeout_ms: (FUZZ_TIMEOUT_S + 30) * 1000,
};

/// The last step: everything is back at the baseline.
pub static BACK_AT_BASELINE: TestCase = TestCase {
    name: "soak::back_at_baseline",
    run: back_at_baseline,
    timeout_ms: 300_000,
};

/// Round `round` begins (numbered from 1).
pub fn start_round(round: u64) {
    ROUND.store(round, Ordering::Relaxed);
}

fn take_baseline() {
    let baseline = Baseline::take();
    *BASELINE.lock() = Some(Before {
        baseline,
        pending_callbacks: rcu::pending_callbacks(),
        stall_warnings: rcu::stall_warnings(),
    });
}

fn back_at_baseline() {
    let before = BASELINE.lock().take().expect("the baseline was taken");
    // Settles the kernel first (rcu_barrier, per-CPU slab caches drained).
    before.baseline.check();
    crate::println!("# soak: {}", before.baseline.compared_with_now());
    let pending = rcu::pending_callbacks();
    let stalls = rcu::stall_warnings() - before.stall_warnings;
    crate::println!(
        "# soak: RCU callbacks queued and not run: {} before, {pending} after; stall warnings: {stalls}",
        before.pending_callbacks
    );
    assert_eq!(
        pending, before.pending_callbacks,
        "RCU callbacks left queued"
    );
    assert_eq!(stalls, 0, "RCU stall warnings during the soak");
}

fn fuzz_calls() {
    let seed = ROUND.load(Ordering::Relaxed);
    let Some(text) = run_fuzz(&format!("calls {seed} {FUZZ_CALLS}")) else {
        return;
    };
    // Its last line: `calls: N calls, seed S`.
    let summary = summary_line(&text, "calls", seed);
    crate::println!("# soak: fuzz {summary}");
}

fn fuzz_model() {
    let seed = ROUND.load(Ordering::Relaxed);
    let Some(text) = run_fuzz(&format!(
        "model {seed} {FUZZ_MODEL_OPERATIONS} {FUZZ_MODEL_THREADS}"
    )) else {
        return;
    };
    // Its last line: `model: N operations, M mismatches, seed S`.
    let summary = summary_line(&text, "model", seed);
    crate::println!("# soak: fuzz {summary}");
    let mismatches: alloc::vec::Vec<&str> = text
        .lines()
        .filter(|line| line.contains("MISMATCH"))
        .collect();
    assert!(
        mismatches.is_empty() && summary.contains(" 0 mismatches"),
        "fuzz model seed {seed}: {summary}\n{}",
        mismatches.join("\n")
    );
}

/// The fuzzer's summary line for `mode` (the line that starts `MODE: `); fails the step when
/// there is none.
fn summary_line<'a>(text: &'a str, mode: &str, seed: u64) -> &'a str {
    text.lines()
        .find(|line| {
            line.strip_prefix(mode)
                .is_some_and(|rest| rest.starts_with(": "))
        })
        .unwrap_or_else(|| {
            panic!(
                "no summary line from fuzz {mode} seed {seed}:\n{}",
                tail(text, 20)
            )
        })
}

/// Runs `/bin/fuzz` with `args` (space-separated) and returns its output; fails the step unless
/// it exits 0. `None`: the step is skipped, the fuzzer being absent or not written yet.
fn run_fuzz(args: &str) -> Option<String> {
    if let Some(why) = fuzzer_missing() {
        ktest::skip(why);
        return None;
    }
    let mut argv: alloc::vec::Vec<&[u8]> = alloc::vec![b"/bin/fuzz"];
    argv.extend(args.split(' ').map(str::as_bytes));
    let process = run("/bin/fuzz", &argv, true, FUZZ_TIMEOUT_S);
    let text = output(&process);
    assert_eq!(
        process.exit_status(),
        0,
        "fuzz {args} failed:\n{}",
        tail(&text, 20)
    );
    Some(text)
}

/// Why the fuzzer cannot run, if it cannot: not in the ramdisk, or a build of it whose modes are
/// not written yet (its probe `fuzz calls 1 1` prints its usage or panics with "not
/// implemented"). Probed once per boot.
fn fuzzer_missing() -> Option<&'static str> {
    static PROBE: spin::Once<Option<&'static str>> = spin::Once::new();
    *PROBE.call_once(|| {
        if super::ramdisk::find("/bin/fuzz").is_none() {
            return Some("no /bin/fuzz in the ramdisk");
        }
        let process = run("/bin/fuzz", &[b"/bin/fuzz", b"calls", b"1", b"1"], true, 60);
        let text = output(&process);
        let unwritten = text.contains("not implemented") || text.contains("usage:");
        if process.exit_status() != 0 && unwritten {
            crate::println!("# soak: the fuzzer is skipped: `fuzz calls 1 1` said {text:?}");
            Some("/bin/fuzz is not written yet (`fuzz calls 1 1` gave its usage or a panic)")
        } else {
            None
        }
    })
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: alloc::vec::Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
