//! The root file system under test in `cargo xtask test`: a session typed on the serial line of
//! `qemu --root`'s shell, and the acceptance suite (`xtask/acceptance/*.sh`, run by
//! `/acceptance/run` as init) on 4 CPUs, here and, with `--linux`, under Linux as the oracle,
//! with the differences reported.
//!
//! The suite's runner prints one line per script (`acceptance: NAME: ok`, `... skipped`,
//! `... FAILED (why)`) and a summary; every script counts as a test. A kernel log line saying a
//! program made a system call this kernel does not implement fails the run it appears in.
//! New scripts are new files in `xtask/acceptance/`: the runner finds them, and
//! `cargo xtask rootfs` copies them into the root.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use qemu::{Echo, Firmware, Outcome, Profile, Qemu, RunOptions, RunResult, Typed};

use crate::artifacts::{self, Tests};
use crate::ramdisk::Contents;
use crate::rootfs::{self, Root};
use crate::testrun::{self, Tally};
use crate::user::Program;

/// A boot of the root must end within this (debug kernel, TCG, a busy host).
const TIMEOUT: Duration = Duration::from_secs(600);
/// A boot that prints nothing for this long is hung.
const SILENCE: Duration = Duration::from_secs(150);
/// CPUs of the acceptance runs, ours and Linux's.
const SUITE_CPUS: u32 = 4;

/// What a script's run came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Skipped,
    Failed(String),
}

/// The verdicts of one run of the suite, by script name, and whether its summary line came.
#[derive(Debug, Default)]
pub struct SuiteRun {
    pub verdicts: BTreeMap<String, Verdict>,
    pub finished: bool,
}

/// The runner's lines: `acceptance: NAME: ok|skipped|FAILED (...)` and the summary
/// `acceptance: P passed, F failed, S skipped`.
fn parse_suite(serial: &[String]) -> SuiteRun {
    let mut run = SuiteRun::default();
    for line in serial {
        let Some(rest) = line.strip_prefix("acceptance: ") else {
            continue;
        };
        if rest.contains(" passed, ") && rest.ends_with(" skipped") {
            run.finished = true;
            continue;
        }
        let Some((name, verdict)) = rest.split_once(": ") else {
            continue;
        };
        let verdict = match verdict {
            "ok" => Verdict::Ok,
            "skipped" => Verdict::Skipped,
            "running" => continue,
            other => Verdict::Failed(other.trim_start_matches("FAILED").trim().to_owned()),
        };
        run.verdicts.insert(name.to_owned(), verdict);
    }
    run
}

/// The kernel's log lines about unimplemented system calls
/// (`[  time] cpuN WARN  PROGRAM[TID]: unimplemented system call N (NAME); ...`).
fn unimplemented_calls(serial: &[String]) -> Vec<&str> {
    serial
        .iter()
        .filter(|line| {
            testrun::is_log_line(line, "WARN") && line.contains(": unimplemented system call ")
        })
        .map(|line| {
            line.split_once(" WARN ")
                .map_or(line.as_str(), |(_, l)| l.trim())
        })
        .collect()
}

/// The images of the root booted with `cmdline` (our debug kernel, without its tests).
pub fn root_images(
    root: &Root,
    programs: &[Program],
    cmdline: &str,
    name: &str,
) -> Result<artifacts::Images, String> {
    let kernel = artifacts::build_kernel(false, Tests::Without)?;
    let contents = Contents {
        programs: programs.to_vec(),
        files: Vec::new(),
        debian_root: Some(root.dir.clone()),
    };
    artifacts::make_images(&kernel, cmdline, name, &contents)
}

/// Boots the root on our kernel; UEFI, whose firmware reads a ramdisk this large in seconds
/// where the BIOS loader takes minutes under TCG.
fn boot(
    qemu: &Qemu,
    images: &artifacts::Images,
    name: &str,
    cpus: u32,
    input: Vec<Typed>,
    verbose: bool,
) -> Result<RunResult, String> {
    let mut profile = Profile::new(name, Firmware::Uefi, cpus);
    profile.memory_mib = rootfs::DEFAULT_MEMORY_MIB;
    let options = RunOptions {
        timeout: Some(TIMEOUT),
        silence_timeout: Some(SILENCE),
        echo: if verbose {
            Echo::Prefixed(format!("[{name}] "))
        } else {
            Echo::None
        },
        serial_log: Some(testrun::serial_log(name)),
        input,
    };
    qemu.run(&profile, &images.uefi, &options)
        .map_err(|e| e.to_string())
}

/// A command typed in the serial session and how its output is checked.
struct Step {
    command: &'static str,
    check: fn(&[&str]) -> Result<(), String>,
}

const SESSION: &[Step] = &[
    Step {
        command: "ls /proc | head",
        check: |out| match out {
            [first, ..] if out.len() == 10 && *first == "1" => Ok(()),
            _ => Err(format!("expected 10 names starting with 1, got {out:?}")),
        },
    },
    Step {
        command: "cat /proc/self/maps",
        check: |out| {
            let stack = out.iter().any(|l| l.ends_with("[stack]"));
            let cat = out.iter().any(|l| l.ends_with("/cat"));
            if stack && cat {
                Ok(())
            } else {
                Err(format!(
                    "no [stack] or no /bin/cat line in {} lines",
                    out.len()
                ))
            }
        },
    },
    Step {
        command: "ps -o tty= -p $$",
        check: |out| expect_lines(out, &["ttyS0"]),
    },
    Step {
        command: "echo hi | wc -c",
        check: |out| expect_lines(out, &["3"]),
    },
    Step {
        command: "sleep 1 & wait; echo waited=$?",
        check: |out| expect_last(out, "waited=0"),
    },
    // Short enough for the line editor's 80 columns with the prompt and the marker.
    Step {
        command: "dd if=/dev/zero of=/tmp/x bs=1M count=64",
        check: |out| {
            if out
                .iter()
                .any(|l| l.starts_with("67108864 bytes (67 MB, 64 MiB) copied"))
            {
                Ok(())
            } else {
                Err(format!("no 64 MiB copied in {out:?}"))
            }
        },
    },
];

fn expect_lines(out: &[&str], wanted: &[&str]) -> Result<(), String> {
    if out == wanted {
        Ok(())
    } else {
        Err(format!("expected {wanted:?}, got {out:?}"))
    }
}

fn expect_last(out: &[&str], wanted: &str) -> Result<(), String> {
    if out.last() == Some(&wanted) {
        Ok(())
    } else {
        Err(format!("expected a last line {wanted:?}, got {out:?}"))
    }
}

/// The marker echoed after step `n`: the command line shows `@@$((n))@@`, the output `@@N@@`,
/// so a cue on the output never matches the echoed command.
fn marker(n: usize) -> (String, String) {
    (format!("@@$(({n}))@@"), format!("@@{n}@@"))
}

/// The shell's banner, printed when the login shell starts reading commands.
const SHELL_READY: &str = "Enter 'help' for a list of built-in commands.";
/// The foreground job of the ^C step says it runs, then becomes `sleep 100`.
const SLEEPER: &str = "sh -c 'echo @@sleeping$((1))@@; exec sleep 100'";
const SLEEPING: &str = "@@sleeping1@@";

/// What is typed: each step's command with its marker, the ^C of a foreground `sleep 100`
/// once it runs, the status it left, and `poweroff -f`.
fn session_input() -> Vec<Typed> {
    let mut input = Vec::new();
    let mut cue = SHELL_READY.to_owned();
    for (n, step) in SESSION.iter().enumerate() {
        let (typed, shown) = marker(n);
        input.push(Typed {
            cue,
            text: format!("{}; echo {typed}\n", step.command).into_bytes(),
        });
        cue = shown;
    }
    input.push(Typed {
        cue,
        text: format!("{SLEEPER}\n").into_bytes(),
    });
    // ^C; the line discipline drops what was typed before it, so the next line waits for the
    // shell's next prompt, which follows the job's end.
    input.push(Typed {
        cue: SLEEPING.into(),
        text: b"\x03".to_vec(),
    });
    let (typed, shown) = marker(SESSION.len());
    input.push(Typed {
        cue: "^C".into(),
        text: format!("echo interrupted=$?; echo {typed}\n").into_bytes(),
    });
    input.push(Typed {
        cue: shown,
        text: b"poweroff -f\n".to_vec(),
    });
    input
}

/// The output lines of step `n`: after the last line that shows its command (the terminal's
/// echo and the line editor's may both show it), up to its marker.
fn step_output(serial: &[String], n: usize) -> Option<Vec<&str>> {
    let (typed, shown) = marker(n);
    let end = serial.iter().position(|l| l.contains(&shown))?;
    let start = serial[..end].iter().rposition(|l| l.contains(&typed))? + 1;
    Some(
        serial[start..end]
            .iter()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !testrun::is_log_line(l, "WARN") && !testrun::is_log_line(l, "INFO"))
            .collect(),
    )
}

/// The serial session: the root boots to its shell on 2 CPUs, the commands of [`SESSION`] are
/// typed and their output checked, then a foreground `sleep 100` is interrupted with ^C
/// (status 130). Each command counts as a test, the ^C as one more.
pub fn serial_session(
    qemu: &Qemu,
    root: &Root,
    programs: &[Program],
    verbose: bool,
    tally: &mut Tally,
) -> Result<(), String> {
    let cmdline = format!("init={}", rootfs::INIT);
    let images = root_images(root, programs, &cmdline, "root-session")?;
    let result = boot(qemu, &images, "root-session", 2, session_input(), verbose)?;
    let mut failed = false;
    for (n, step) in SESSION.iter().enumerate() {
        let what = format!("root: serial session: {}", step.command);
        match step_output(&result.serial, n).map(|out| (step.check)(&out)) {
            Some(Ok(())) => {
                println!("{what}: ok");
                tally.add(1, 0, 0);
            }
            Some(Err(why)) => {
                println!("{what}: FAILED: {why}");
                tally.add(0, 1, 0);
                failed = true;
            }
            None => {
                println!(
                    "{what}: FAILED: its output never ended ({})",
                    result.outcome
                );
                tally.add(0, 1, 0);
                failed = true;
            }
        }
    }
    let what = "root: serial session: ^C interrupts a foreground sleep 100";
    match step_output(&result.serial, SESSION.len()) {
        Some(out) if out.last() == Some(&"interrupted=130") => {
            println!("{what}: ok");
            tally.add(1, 0, 0);
        }
        other => {
            println!("{what}: FAILED: {other:?} ({})", result.outcome);
            tally.add(0, 1, 0);
            failed = true;
        }
    }
    if failed {
        show_tail(&result);
    }
    Ok(())
}

/// The acceptance suite on our kernel (4 CPUs); its verdicts for the comparison with Linux.
pub fn suite(
    qemu: &Qemu,
    root: &Root,
    programs: &[Program],
    verbose: bool,
    tally: &mut Tally,
) -> Result<SuiteRun, String> {
    let cmdline = format!("init={}", rootfs::ACCEPTANCE_RUNNER);
    let images = root_images(root, programs, &cmdline, "acceptance")?;
    let result = boot(qemu, &images, "acceptance", SUITE_CPUS, Vec::new(), verbose)?;
    let run = parse_suite(&result.serial);
    report("acceptance", &run, &result, tally);
    let calls = unimplemented_calls(&result.serial);
    let what = "acceptance: no unimplemented system calls";
    if calls.is_empty() {
        println!("{what}: ok");
        tally.add(1, 0, 0);
    } else {
        println!("{what}: FAILED: {} call(s)", calls.len());
        for call in calls {
            println!("  {call}");
        }
        tally.add(0, 1, 0);
    }
    Ok(run)
}

/// Counts and prints one run's verdicts; a run that never finished counts as one failure more.
fn report(label: &str, run: &SuiteRun, result: &RunResult, tally: &mut Tally) {
    for (name, verdict) in &run.verdicts {
        match verdict {
            Verdict::Ok => tally.add(1, 0, 0),
            Verdict::Skipped => {
                println!("{label}: {name}: skipped");
                tally.add(0, 0, 1);
            }
            Verdict::Failed(why) => {
                println!(
                    "{label}: {name}: FAILED {why} (serial log: {})",
                    log_of(label)
                );
                tally.add(0, 1, 0);
            }
        }
    }
    let passed = run.verdicts.values().filter(|v| **v == Verdict::Ok).count();
    println!(
        "{label}: {passed} of {} scripts passed ({:.1} s){}",
        run.verdicts.len(),
        result.elapsed.as_secs_f64(),
        if run.finished {
            ""
        } else {
            ", the run never finished"
        }
    );
    if !run.finished {
        tally.add(0, 1, 0);
        show_tail(result);
    }
}

fn log_of(label: &str) -> String {
    testrun::serial_log(label).display().to_string()
}

fn show_tail(result: &RunResult) {
    println!("  ended: {}; last serial lines:", result.outcome);
    for line in result.last_lines(20) {
        println!("  | {line}");
    }
}

/// The suite as `/init` of a Linux kernel (4 CPUs, the same root in its initramfs); the
/// scripts whose verdicts differ from `ours` are listed.
pub fn linux_suite(
    qemu: &Qemu,
    bzimage: &Path,
    root: &Root,
    programs: &[Program],
    ours: Option<&SuiteRun>,
    verbose: bool,
    tally: &mut Tally,
) -> Result<(), String> {
    let dir = artifacts::target_dir().join("linux");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cpio = dir.join("acceptance.cpio");
    testrun::linux_initramfs(programs, rootfs::ACCEPTANCE_RUNNER, Some(&root.dir), &cpio)?;
    let mut profile = Profile::new("acceptance-linux", Firmware::Bios, SUITE_CPUS);
    profile.memory_mib = rootfs::DEFAULT_MEMORY_MIB;
    let disk = testrun::prepare_linux_boot(&mut profile, &dir, bzimage, &cpio, &[])?;
    let label = "acceptance-linux";
    let options = RunOptions {
        timeout: Some(TIMEOUT),
        silence_timeout: Some(SILENCE),
        echo: if verbose {
            Echo::Prefixed(format!("[{label}] "))
        } else {
            Echo::None
        },
        serial_log: Some(testrun::serial_log(label)),
        input: Vec::new(),
    };
    let result = qemu
        .run(&profile, &disk, &options)
        .map_err(|e| e.to_string())?;
    let run = parse_suite(&result.serial);
    report(label, &run, &result, tally);
    if result.outcome != Outcome::UnexpectedExit(0) && !run.finished {
        println!("  Linux: {}", result.outcome);
    }
    if let Some(ours) = ours {
        let names: std::collections::BTreeSet<&String> =
            ours.verdicts.keys().chain(run.verdicts.keys()).collect();
        let mut differences = 0;
        for name in names {
            let (here, there) = (ours.verdicts.get(name), run.verdicts.get(name));
            if here != there {
                differences += 1;
                println!("acceptance: {name}: differs: here {here:?}, Linux {there:?}");
            }
        }
        println!("acceptance: {differences} difference(s) between this kernel and Linux");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn reads_the_runner_lines() {
        let serial = lines(
            "acceptance: shell: running\n# ok: x\nacceptance: shell: ok\n\
             acceptance: proc: FAILED (status 1)\nacceptance: py: skipped\n\
             acceptance: 1 passed, 1 failed, 1 skipped\n",
        );
        let run = parse_suite(&serial);
        assert!(run.finished);
        assert_eq!(run.verdicts["shell"], Verdict::Ok);
        assert_eq!(run.verdicts["proc"], Verdict::Failed("(status 1)".into()));
        assert_eq!(run.verdicts["py"], Verdict::Skipped);
        assert!(!parse_suite(&serial[..3]).finished);
    }

    #[test]
    fn finds_unimplemented_calls_and_step_output() {
        let serial = lines(
            "[    5.861779] cpu1 WARN  init[1]: unimplemented system call 334 (rseq); returning -ENOSYS\n\
             user text: unimplemented system call 1 (x)\n\
             echo hi | wc -c; echo @@$((2))@@root@vmakernel:~# echo hi | wc -c; echo @@$((2))@@\n\
             3\r\n@@2@@\n",
        );
        assert_eq!(
            unimplemented_calls(&serial),
            ["init[1]: unimplemented system call 334 (rseq); returning -ENOSYS"]
        );
        assert_eq!(step_output(&serial, 2), Some(vec!["3"]));
        assert_eq!(step_output(&serial, 1), None);
        let input = session_input();
        assert_eq!(input[0].cue, SHELL_READY);
        assert_eq!(input[1].cue, "@@0@@");
        assert_eq!(input.last().unwrap().text, b"poweroff -f\n");
    }
}
