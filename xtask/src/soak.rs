//! `cargo xtask soak [--minutes N] [--smp N]`: one boot of the test kernel that runs, in rounds
//! until N minutes have passed, the fault torture (the mm torture tests), the user test suite
//! (/bin/usertests) and the fuzzer (/bin/fuzz calls and model, the round's number as seed;
//! skipped with a note while it is not written yet). The kernel drives the rounds
//! (`ktest.soak_s`, kernel/src/ktest/soak.rs) and ends with its check that frames, slab objects,
//! VMAs and queued RCU callbacks are back at the baseline it took before the first round, and
//! that no RCU stall was reported. This prints a summary (rounds, each step's passes, failures
//! and skips, the baseline figures) and fails on any failure, stall warning, or unclean end.

use std::process::ExitCode;
use std::time::Duration;

use qemu::ktap::Status;
use qemu::{Firmware, Outcome, Profile};

use crate::artifacts::{self, Tests};
use crate::install;
use crate::ramdisk::Contents;
use crate::testrun;
use crate::user;

/// The tests each round runs (`ktest.filter`, alternatives separated by `,`): the fault
/// torture of the per-VMA lock, of mremap and of the lockless maps walk, and the user suite.
const ROUND_TESTS: &str = "mm::torture::,relocate::torture::mremap_moves,maps::torture::lockless,proc::ktests::user_test_suite_passes";
/// Guest memory.
const MEMORY_MIB: u32 = 1024;
/// Time allowed beyond the soak's minutes: the last round started before the deadline runs to
/// its end (the user suite alone may take minutes on a busy host), then the closing check.
const LAST_ROUND_ALLOWANCE: Duration = Duration::from_secs(1500);
/// What the kernel prints before each round, and before each figure of its closing check.
const SOAK_LINE: &str = "# soak: ";
/// The kernel's stall warning (sync/rcu.rs).
const RCU_STALL: &str = "rcu: grace period ";

pub fn run(minutes: u32, smp: u32, verbose: bool) -> Result<ExitCode, String> {
    let qemu = install::ensure_qemu(false)?;
    let programs = user::build_all()?;
    let kernel = artifacts::build_kernel(false, Tests::With)?;
    let contents = Contents {
        programs,
        files: Vec::new(),
        debian_root: None,
    };
    let seconds = u64::from(minutes) * 60;
    let cmdline = format!("test log=info stats ktest.soak_s={seconds} ktest.filter={ROUND_TESTS}");
    let images = artifacts::make_images(&kernel, &cmdline, "soak", &contents)?;
    let mut profile = Profile::new(format!("soak-smp{smp}"), Firmware::Bios, smp);
    profile.memory_mib = MEMORY_MIB;
    println!(
        "soak [{}]: {minutes} min of rounds; serial log: {}",
        profile.describe(),
        testrun::serial_log(&profile.name).display()
    );
    let timeout = Duration::from_secs(seconds) + LAST_ROUND_ALLOWANCE;
    let result = testrun::run_profile(&qemu, &profile, &images.bios, timeout, verbose)?;
    let report = result.ktap();
    let mut problems = report.verdict().problems;
    if result.outcome != Outcome::Success {
        problems.push(match result.outcome {
            Outcome::TimedOut => format!(
                "hung: no end within {} s, or a long silence",
                timeout.as_secs()
            ),
            outcome => format!("QEMU: {outcome}"),
        });
    }
    // Each step's name and (passed, failed, skipped), in the order first seen.
    let mut steps: Vec<(&str, [usize; 3])> = Vec::new();
    for test in &report.results {
        let index = match steps.iter().position(|(name, _)| *name == test.name) {
            Some(index) => index,
            None => {
                steps.push((&test.name, [0; 3]));
                steps.len() - 1
            }
        };
        let column = match test.status {
            Status::Ok => 0,
            Status::NotOk => 1,
            Status::Skip => 2,
        };
        steps[index].1[column] += 1;
        if test.status == Status::NotOk {
            problems.push(format!(
                "not ok {} {}: {}",
                test.number,
                test.name,
                test.reason.as_deref().unwrap_or("")
            ));
        }
    }
    let soak_lines: Vec<&str> = result
        .serial
        .iter()
        .filter_map(|line| line.trim_start().strip_prefix(SOAK_LINE))
        .collect();
    let rounds = soak_lines
        .iter()
        .filter(|line| line.starts_with("round "))
        .count();
    let stalls = result
        .serial
        .iter()
        .filter(|line| line.contains(RCU_STALL) && line.contains(" stalled for "))
        .count();
    if stalls > 0 {
        problems.push(format!("{stalls} RCU stall warnings in the log"));
    }
    let closed = steps
        .iter()
        .any(|(name, counts)| *name == "soak::back_at_baseline" && counts[0] == 1);
    if !closed {
        problems.push("the closing check against the baseline did not pass".to_owned());
    }
    println!(
        "soak [{}]: {rounds} rounds in {:.0} s",
        profile.name,
        result.elapsed.as_secs_f64()
    );
    for (name, [passed, failed, skipped]) in &steps {
        println!("  {name}: {passed} passed, {failed} failed, {skipped} skipped");
    }
    for line in soak_lines.iter().filter(|line| !line.starts_with("round ")) {
        println!("  {line}");
    }
    println!("  RCU stall warnings in the log: {stalls}");
    if problems.is_empty() {
        println!("soak: passed");
        return Ok(ExitCode::SUCCESS);
    }
    println!("soak: FAILED");
    for problem in &problems {
        println!("  {problem}");
    }
    println!("  last serial lines:");
    for line in result.last_lines(25) {
        println!("  | {line}");
    }
    Ok(ExitCode::FAILURE)
}
