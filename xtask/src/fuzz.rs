//! `cargo xtask fuzz`: the system-call fuzzer (user/fuzz) run on this kernel and, with
//! `--linux BZIMAGE`, under each Linux kernel, with every answer that differs set side by side.
//!
//! Each kernel boots once per CPU count with `/bin/fuzz session COUNT THREADS SEED...` as init,
//! which runs, for every seed, `calls SEED COUNT` and `model SEED COUNT THREADS` in children.
//! A seed prints the same calls with the same arguments on every kernel, so the N-th `call`
//! line of one kernel is the N-th of another: where the results differ, that is a divergence.
//! Divergences are grouped by call and by the pair of answers:
//! - where the Linux kernels answer differently from one another, a Linux-version difference;
//! - where they agree and this kernel answers otherwise, a divergence: explained when
//!   [`EXPLAINED`] lists it with its reason, unexplained (a failure) otherwise.
//!
//! It fails also on a kernel panic, a hang, a child of the session that did not exit 0, and
//! any shadow-model mismatch. The short run of `cargo xtask test` ([`short_run`]) is this kernel
//! alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use qemu::{Echo, Firmware, Outcome, Profile, Qemu, RunOptions, RunResult};

use crate::artifacts::{self, Tests};
use crate::install;
use crate::ramdisk::{self, Contents};
use crate::testrun::{self, Tally};
use crate::user::{self, Program};

/// Divergences from Linux kept on purpose: (call, our answer, Linux's answer, reason). The call
/// is a name, matching every call of it, or, where it has a `(`, the start of the call as
/// printed, arguments included, matching only those calls. An answer `*` matches any.
pub const EXPLAINED: &[(&str, &str, &str, &str)] = &[
    (
        "fcntl",
        "-ESRCH",
        "0",
        "F_SETOWN naming a low process id: Linux's kernel threads hold the ids from 2 up, this \
         kernel's threads take none",
    ),
    (
        "getrandom",
        "*",
        "-EAGAIN",
        "GRND_NONBLOCK early in Linux's boot: its random pool was not yet initialized (the \
         guest has no entropy device), while this kernel's generator needs no initializing",
    ),
    (
        "poll(0xf0000000004, ",
        "1",
        "0",
        "the entries read 4 bytes off their array name descriptor 1, the console, for reading \
         and writing: Linux's serial tty is writable only while its output queue is short, which \
         depends on how far the emulated UART has drained the fuzzer's lines; this kernel's \
         console writes synchronously and is always writable",
    ),
    (
        "socket",
        "-E97",
        "*",
        "no address family is implemented (EAFNOSUPPORT after Linux's generic checks); Linux's \
         families answer for themselves",
    ),
    (
        "socketpair",
        "-E97",
        "*",
        "no address family is implemented (EAFNOSUPPORT after Linux's generic checks and the \
         descriptors' copy); Linux's families answer for themselves",
    ),
    (
        "fgetxattr",
        "-EBADF",
        "-EFAULT",
        "a cascade of socketpair: Linux's AF_UNIX pair (SOCK_RAW taken as SOCK_DGRAM) filled \
         the descriptor slot that stays closed here, so only Linux reached the name's copy",
    ),
    (
        "getpriority",
        "*",
        "-ESRCH",
        "process group 1: this kernel's init leads group and session 1, Linux's stays in \
         group 0 until it calls setsid",
    ),
    (
        "setpriority",
        "0",
        "-ESRCH",
        "process group 1: this kernel's init leads group and session 1, Linux's stays in \
         group 0 until it calls setsid",
    ),
];

/// What `cargo xtask fuzz` was asked for.
pub struct Request {
    pub seeds: Vec<u64>,
    pub iterations: u64,
    pub cpus: Vec<u32>,
    pub threads: u32,
    pub linux: Vec<PathBuf>,
    pub verbose: bool,
}

/// The short run in `cargo xtask test`: this kernel, 2 CPUs, these seeds and calls per seed.
const SHORT_SEEDS: &[u64] = &[1, 2];
const SHORT_CALLS: u64 = 2000;
const SHORT_THREADS: u32 = 2;

/// One kernel's boot: its `call` lines per seed and what else it showed.
struct Boot {
    label: String,
    calls: BTreeMap<u64, Vec<String>>,
    problems: Vec<String>,
    mismatches: usize,
    elapsed: Duration,
}

pub fn run(request: &Request) -> Result<ExitCode, String> {
    for bzimage in &request.linux {
        testrun::check_bzimage(bzimage)?;
    }
    let qemu = install::ensure_qemu(false)?;
    let programs = user::build_all()?;
    let mut failed = false;
    for &cpus in &request.cpus {
        let ours = boot_ours(&qemu, &programs, request, cpus)?;
        let mut linuxes = Vec::new();
        for (index, bzimage) in request.linux.iter().enumerate() {
            linuxes.push(boot_linux(&qemu, &programs, request, cpus, index, bzimage)?);
        }
        for boot in std::iter::once(&ours).chain(&linuxes) {
            let calls: usize = boot.calls.values().map(Vec::len).sum();
            println!(
                "fuzz [{}]: {calls} calls, {} model mismatches ({:.1} s)",
                boot.label,
                boot.mismatches,
                boot.elapsed.as_secs_f64()
            );
            for problem in &boot.problems {
                println!("  {problem}");
            }
        }
        failed |= !ours.problems.is_empty() || ours.mismatches > 0;
        failed |= linuxes.iter().any(|l| l.mismatches > 0);
        if !linuxes.is_empty() {
            failed |= report_divergences(&ours, &linuxes) > 0;
        }
    }
    println!("fuzz: {}", if failed { "FAILED" } else { "passed" });
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The step of `cargo xtask test`: our kernel, one boot, a few thousand calls and the model.
pub fn short_run(qemu: &Qemu, programs: &[Program], verbose: bool, tally: &mut Tally) {
    let request = Request {
        seeds: SHORT_SEEDS.to_vec(),
        iterations: SHORT_CALLS,
        cpus: vec![2],
        threads: SHORT_THREADS,
        linux: Vec::new(),
        verbose,
    };
    let what = format!(
        "fuzz: {} seeds x {SHORT_CALLS} calls and model operations [2 CPUs]",
        SHORT_SEEDS.len()
    );
    match boot_ours(qemu, programs, &request, 2) {
        Ok(boot) => {
            let calls: usize = boot.calls.values().map(Vec::len).sum();
            let clean = boot.problems.is_empty() && boot.mismatches == 0;
            println!(
                "{what}: {calls} calls, {} model mismatches ({:.1} s){}",
                boot.mismatches,
                boot.elapsed.as_secs_f64(),
                if clean { "" } else { " FAILED" }
            );
            for problem in &boot.problems {
                println!("  {problem}");
            }
            tally.add(usize::from(clean), usize::from(!clean), 0);
        }
        Err(e) => {
            println!("{what}: could not run: {e}");
            tally.add(0, 1, 0);
        }
    }
}

/// The session's arguments.
fn session_args(request: &Request) -> Vec<String> {
    let mut args = vec![
        "session".to_owned(),
        request.iterations.to_string(),
        request.threads.to_string(),
    ];
    args.extend(request.seeds.iter().map(u64::to_string));
    args
}

/// Long enough for every seed's calls and model on a busy host under TCG.
fn boot_timeout(request: &Request) -> Duration {
    let work = request.seeds.len() as u64 * request.iterations;
    Duration::from_secs(120 + work / 50)
}

/// A boot that prints nothing for this long is hung. Every call prints a line and the shadow
/// model prints one per 500 operations, so this is many times the longest gap between lines
/// seen on a busy host under TCG, whatever the run's length.
const SILENCE: Duration = Duration::from_secs(180);

fn options(request: &Request, label: &str) -> RunOptions {
    RunOptions {
        timeout: Some(boot_timeout(request)),
        silence_timeout: Some(SILENCE),
        echo: if request.verbose {
            Echo::Prefixed(format!("[{label}] "))
        } else {
            Echo::None
        },
        serial_log: Some(testrun::serial_log(label)),
        input: Vec::new(),
    }
}

fn boot_ours(
    qemu: &Qemu,
    programs: &[Program],
    request: &Request,
    cpus: u32,
) -> Result<Boot, String> {
    let kernel = artifacts::build_kernel(false, Tests::Without)?;
    let contents = Contents {
        programs: programs.to_vec(),
        files: vec![ramdisk::init_args(&session_args(request))],
        debian_root: None,
    };
    let label = format!("fuzz-ours-{cpus}cpu");
    let images = artifacts::make_images(&kernel, "init=/bin/fuzz exit", &label, &contents)?;
    let profile = Profile::new(&label, Firmware::Bios, cpus);
    let result = qemu
        .run(&profile, &images.bios, &options(request, &label))
        .map_err(|e| e.to_string())?;
    let mut boot = parse(format!("ours, {cpus} CPUs"), &label, request, &result);
    if let Some(line) = result.serial.iter().find(|l| l.contains("KERNEL PANIC")) {
        boot.problems.push(format!("kernel panic: {line}"));
    }
    Ok(boot)
}

fn boot_linux(
    qemu: &Qemu,
    programs: &[Program],
    request: &Request,
    cpus: u32,
    index: usize,
    bzimage: &Path,
) -> Result<Boot, String> {
    let dir = artifacts::target_dir().join("fuzz-linux");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cpio = dir.join("initramfs.cpio");
    testrun::linux_initramfs(programs, "/bin/fuzz", None, &cpio)?;
    let label = format!("fuzz-linux{index}-{cpus}cpu");
    let mut profile = Profile::new(&label, Firmware::Bios, cpus);
    let disk =
        testrun::prepare_linux_boot(&mut profile, &dir, bzimage, &cpio, &session_args(request))?;
    let result = qemu
        .run(&profile, &disk, &options(request, &label))
        .map_err(|e| e.to_string())?;
    let mut boot = parse(
        format!("{}, {cpus} CPUs", testrun::linux_label(bzimage)),
        &label,
        request,
        &result,
    );
    if let Some(line) = result
        .serial
        .iter()
        .find(|l| l.contains("Kernel panic") && !l.contains("Attempted to kill init"))
    {
        boot.problems.push(format!("Linux panicked: {line}"));
    }
    Ok(boot)
}

/// Reads a boot's serial output: the `call` lines of each seed (up to its `calls:` summary),
/// the model's mismatches, and how every child ended.
fn parse(label: String, log: &str, request: &Request, result: &RunResult) -> Boot {
    let mut boot = Boot {
        label,
        calls: BTreeMap::new(),
        problems: Vec::new(),
        mismatches: 0,
        elapsed: result.elapsed,
    };
    let mut pending = Vec::new();
    let mut finished = Vec::new();
    for line in &result.serial {
        let line = line.trim_end();
        if line.starts_with("call ") {
            pending.push(line.to_owned());
        } else if let Some(seed) = line
            .strip_prefix("calls: ")
            .and_then(|rest| rest.rsplit("seed ").next())
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            boot.calls.insert(seed, std::mem::take(&mut pending));
        } else if line.starts_with("MISMATCH") {
            boot.mismatches += 1;
        } else if let Some(rest) = line.strip_prefix("fuzz: ")
            && (rest.starts_with("calls seed ") || rest.starts_with("model seed "))
        {
            if !rest.ends_with(": exit 0") {
                boot.problems.push(rest.to_owned());
            }
            finished.push(rest.split(':').next().unwrap_or("").to_owned());
        }
    }
    let model = request.threads > 0;
    for seed in &request.seeds {
        for mode in ["calls", "model"] {
            if mode == "model" && !model {
                continue;
            }
            let name = format!("{mode} seed {seed}");
            if !finished.contains(&name) {
                boot.problems.push(format!("{name}: never finished"));
            }
        }
    }
    match result.outcome {
        Outcome::TimedOut => boot.problems.push(format!(
            "hung: killed after {:.0} s (serial log: {})",
            result.elapsed.as_secs_f64(),
            testrun::serial_log(log).display()
        )),
        Outcome::Killed => boot.problems.push("QEMU was killed".into()),
        _ => {}
    }
    if !boot.problems.is_empty() {
        for line in result.last_lines(10) {
            boot.problems.push(format!("| {line}"));
        }
    }
    boot
}

/// Splits `call NAME(ARGS) -> RESULT` into the call with its arguments, and the result.
fn split(line: &str) -> Option<(&str, &str)> {
    line.rsplit_once(" -> ")
}

fn call_name(call: &str) -> &str {
    call.trim_start_matches("call ")
        .split('(')
        .next()
        .unwrap_or(call)
}

/// The reason [`EXPLAINED`] gives for `call` (a `call NAME(ARGS)` line's first part) answering
/// `ours` here and `linux` there, if it lists one.
fn explained(call: &str, ours: &str, linux: &str) -> Option<&'static str> {
    let printed = call.trim_start_matches("call ");
    EXPLAINED
        .iter()
        .find(|(pattern, o, l, _)| {
            let matches_call = if pattern.contains('(') {
                printed.starts_with(pattern)
            } else {
                *pattern == call_name(call)
            };
            matches_call && (*o == "*" || *o == ours) && (*l == "*" || *l == linux)
        })
        .map(|(_, _, _, reason)| *reason)
}

/// What divergences are grouped by: the call's name, our answer, the Linux kernels' answers
/// joined, and [`EXPLAINED`]'s reason for them if it gives one.
type GroupKey = (String, String, String, Option<&'static str>);

/// A group of divergences: how many, and the first call that showed it.
struct Group {
    count: usize,
    example: String,
}

/// Prints every divergence of ours from the Linux kernels, grouped; returns how many groups are
/// unexplained.
fn report_divergences(ours: &Boot, linuxes: &[Boot]) -> usize {
    // (call name, our answer, the Linux answers joined, the reason if explained) -> group
    let mut divergences: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let mut versions: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let mut compared = 0;
    let mut out_of_step = 0;
    for (seed, our_lines) in &ours.calls {
        let theirs: Vec<&Vec<String>> = linuxes.iter().filter_map(|l| l.calls.get(seed)).collect();
        if theirs.len() != linuxes.len() {
            continue;
        }
        for (i, our_line) in our_lines.iter().enumerate() {
            let Some((call, our_answer)) = split(our_line) else {
                continue;
            };
            let mut answers = Vec::new();
            for lines in &theirs {
                match lines.get(i).and_then(|l| split(l)) {
                    Some((their_call, answer)) if their_call == call => answers.push(answer),
                    _ => {}
                }
            }
            if answers.len() != theirs.len() {
                out_of_step += 1;
                continue;
            }
            compared += 1;
            let name = call_name(call).to_owned();
            let agree = answers.iter().all(|a| *a == answers[0]);
            let (table, reason) = if !agree {
                (&mut versions, None)
            } else if answers[0] != our_answer {
                (&mut divergences, explained(call, our_answer, answers[0]))
            } else {
                continue;
            };
            let key = (name, our_answer.to_owned(), answers.join(" | "), reason);
            table
                .entry(key)
                .and_modify(|g| g.count += 1)
                .or_insert_with(|| Group {
                    count: 1,
                    example: format!("seed {seed}: {call}"),
                });
        }
    }
    let names: Vec<&str> = linuxes.iter().map(|l| l.label.as_str()).collect();
    println!(
        "fuzz: {compared} calls compared with {}; {out_of_step} out of step",
        names.join(" and ")
    );
    let mut unexplained = 0;
    for ((name, our_answer, linux_answer, reason), group) in &divergences {
        let verdict = match reason {
            Some(reason) => format!("explained: {reason}"),
            None => {
                unexplained += 1;
                "UNEXPLAINED".to_owned()
            }
        };
        println!(
            "  {name}: ours {our_answer}, Linux {linux_answer} ({} calls) {verdict}\n    e.g. {}",
            group.count, group.example
        );
    }
    for ((name, our_answer, linux_answers, _), group) in &versions {
        println!(
            "  {name}: Linux-version difference: {linux_answers} (ours {our_answer}, {} calls)\n    e.g. {}",
            group.count, group.example
        );
    }
    println!(
        "fuzz: {} divergences ({unexplained} unexplained), {} Linux-version differences",
        divergences.len(),
        versions.len()
    );
    unexplained
}

#[cfg(test)]
mod tests {
    use super::explained;

    #[test]
    fn a_name_explains_every_call_of_it() {
        let call = "call setpriority(0x1, 0x1, 0x13)";
        assert!(explained(call, "0", "-ESRCH").is_some());
        assert!(explained(call, "0", "-EPERM").is_none());
    }

    #[test]
    fn arguments_explain_only_the_calls_that_start_with_them() {
        assert!(explained("call poll(0xf0000000004, 0x2, 0x0)", "1", "0").is_some());
        assert!(explained("call poll(0xf0000000000, 0x2, 0x0)", "1", "0").is_none());
        assert!(explained("call poll(0xf0000000004, 0x2, 0x0)", "0", "1").is_none());
    }
}
