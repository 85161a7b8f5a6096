//! The soak (`ktest.soak_s=N`, which `cargo xtask soak` boots with): one boot runs the tests
//! `ktest.filter` selects over and over, in rounds, each round followed by the soak's own steps
//! (the fuzzer with the round's seed: proc/soak.rs), until N seconds have passed; then it checks
//! that the kernel is back where it was before the first round (frames, slab objects per cache,
//! VMAs, queued RCU callbacks) and printed no RCU stall warning.
//!
//! The output is the runner's KTAP, numbered on across rounds, with the plan line at the end
//! (the number of tests is known only then), a `# soak: round R` line before each round and a
//! `# soak: ...` line for each figure of the closing check. The runner's state ([`super::RUN`])
//! is used as for one run; only the runner's CPU touches it.

use super::{TestCase, finish, lock_left_held, run_one};
use crate::println;
use crate::proc::soak as steps;
use crate::time;

/// Runs the soak over `cases` for `seconds`, each test with its own timeout or
/// `default_timeout_ms`, and leaves QEMU with the verdict.
pub(super) fn run(cases: &[&'static TestCase], seconds: u64, default_timeout_ms: u64) -> ! {
    println!("KTAP version 1");
    let start = time::now_ns();
    let deadline = start.saturating_add(seconds.saturating_mul(1_000_000_000));
    let mut number = 0;
    let mut run_case = |case: &'static TestCase| {
        number += 1;
        run_one(number, case, default_timeout_ms);
        if let Some(lock) = lock_left_held() {
            super::abort_run(format_args!("the test left the {lock} lock held"));
        }
    };
    run_case(&steps::TAKE_BASELINE);
    let mut rounds = 0;
    while time::now_ns() < deadline {
        rounds += 1;
        println!("# soak: round {rounds}");
        steps::start_round(rounds);
        for &case in cases.iter().chain(&steps::EACH_ROUND) {
            run_case(case);
        }
    }
    run_case(&steps::BACK_AT_BASELINE);
    // The last round starts before the deadline and runs to its end: the time taken, not the
    // soak's length.
    let elapsed_s = (time::now_ns() - start) / 1_000_000_000;
    println!("# soak: {rounds} rounds in {elapsed_s} s (rounds started for {seconds} s)");
    println!("1..{number}");
    finish()
}
