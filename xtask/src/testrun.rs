//! `cargo xtask test`: host tests, the in-kernel suites under each QEMU profile, a check
//! that the harness itself notices failures, timeouts and hangs, and the root file system's
//! serial session and acceptance suite (acceptance.rs), a short run of the system-call fuzzer
//! (fuzz.rs); with `--linux BZIMAGE`, also the user
//! test suite and the acceptance suite as /init of a real Linux kernel (the oracle for the
//! syscall semantics); and the screen test (screen.rs: keys through QEMU's monitor, the
//! framebuffer read back).
//! Prints one line per step and ends with `N passed, N failed` over everything; exits non-zero
//! on any failure.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use qemu::ktap::{Status, Summary};
use qemu::{Echo, Firmware, Machine, Outcome, Profile, Qemu, RunOptions, RunResult};

use crate::acceptance;
use crate::artifacts::{self, Images, Tests};
use crate::breaks;
use crate::fuzz;
use crate::install;
use crate::ramdisk::{self, Contents};
use crate::rootfs::{self, Root};
use crate::user::{self, Program};

/// A whole suite on one profile must finish within this (debug kernel, TCG, a busy host).
const PROFILE_TIMEOUT: Duration = Duration::from_secs(600);
/// The deliberate hang is declared hung after this.
const HANG_TIMEOUT: Duration = Duration::from_secs(45);
/// A run that prints nothing for this long is hung (the longest test's own timeout is 120 s).
const SILENCE_TIMEOUT: Duration = Duration::from_secs(180);
/// Serial lines shown when a run fails or hangs.
const TAIL_LINES: usize = 25;

const TEST_CMDLINE: &str = "test log=info stats";

#[derive(Default)]
pub struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    pub fn add(&mut self, passed: usize, failed: usize, skipped: usize) {
        self.passed += passed;
        self.failed += failed;
        self.skipped += skipped;
    }
}

pub fn run(
    full: bool,
    verbose: bool,
    linux: Option<&Path>,
    linux_only: bool,
    acceptance_only: bool,
    screen_only: bool,
) -> Result<ExitCode, String> {
    if let Some(bzimage) = linux {
        check_bzimage(bzimage)?;
    }
    let mut tally = Tally::default();
    let everything = !linux_only && !acceptance_only && !screen_only;
    if everything {
        lints(&mut tally)?;
        host_tests(&mut tally)?;
    }
    let qemu = install::ensure_qemu(everything)?;
    let programs = user::build_all()?;
    if everything {
        kernel_suites(&qemu, full, verbose, &programs, &mut tally)?;
        fuzz::short_run(&qemu, &programs, verbose, &mut tally);
        debian_programs(&qemu, verbose, &mut tally);
    }
    if everything || screen_only {
        screen_test(&qemu, &programs, verbose, &mut tally);
    }
    if !screen_only {
        root_suites(
            &qemu,
            linux,
            acceptance_only,
            linux_only,
            &programs,
            verbose,
            &mut tally,
        )?;
    }
    println!("{}", counts(tally.passed, tally.failed, tally.skipped));
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The root file system's steps: the serial session and the acceptance suite here (unless
/// `linux_only`), and with `linux`, the user test suite (unless `acceptance_only`) and the
/// acceptance suite under that Linux kernel, compared with ours.
fn root_suites(
    qemu: &Qemu,
    linux: Option<&Path>,
    acceptance_only: bool,
    linux_only: bool,
    programs: &[Program],
    verbose: bool,
    tally: &mut Tally,
) -> Result<(), String> {
    let root = rootfs::build()?;
    let ours = if linux_only {
        None
    } else {
        acceptance::serial_session(qemu, &root, programs, verbose, tally)?;
        root_screen_test(qemu, &root, programs, verbose, tally);
        Some(acceptance::suite(qemu, &root, programs, verbose, tally)?)
    };
    if let Some(bzimage) = linux {
        if !acceptance_only {
            linux_suite(qemu, bzimage, programs, verbose, tally)?;
        }
        acceptance::linux_suite(
            qemu,
            bzimage,
            &root,
            programs,
            ours.as_ref(),
            verbose,
            tally,
        )?;
    }
    Ok(())
}

/// The in-kernel suites on every profile, the check of the test ramdisk's programs, and the
/// harness self-checks.
fn kernel_suites(
    qemu: &Qemu,
    full: bool,
    verbose: bool,
    programs: &[Program],
    tally: &mut Tally,
) -> Result<(), String> {
    let kernel = artifacts::build_kernel(false, Tests::With)?;
    let contents = Contents {
        programs: programs.to_vec(),
        files: Vec::new(),
        debian_root: None,
    };
    let suites = if full {
        full_suites()
    } else {
        default_suites()
    };
    let mut images: Vec<(&str, Images)> = Vec::new();
    for suite in &suites {
        if let Some(reason) = suite.unsupported_by(qemu) {
            println!("kernel [{}]: skipped: {reason}", suite.profile.describe());
            tally.add(0, 0, 1);
            continue;
        }
        if !images.iter().any(|(cmdline, _)| *cmdline == suite.cmdline) {
            let name = format!("test-{}", images.len());
            let made = artifacts::make_images(&kernel, suite.cmdline, &name, &contents)?;
            if images.is_empty() {
                check_ramdisk_programs(&made.ramdisk, tally);
            }
            images.push((suite.cmdline, made));
        }
        let (_, suite_images) = images
            .iter()
            .find(|(cmdline, _)| *cmdline == suite.cmdline)
            .expect("made above");
        kernel_suite(qemu, &suite.profile, suite_images, verbose, tally);
    }
    harness_checks(qemu, &kernel, &contents, verbose, tally)
}

/// Programs from Debian's packages, unmodified, run on this kernel: a dynamically linked
/// hello world (its dynamic linker and libc mapped from the page cache) must print its greeting
/// and exit 0.
fn debian_programs(qemu: &Qemu, verbose: bool, tally: &mut Tally) {
    const GREETING: &str = "Hello, world!";
    let what = "debian: hello (/usr/bin/hello, dynamically linked)";
    let packages = ["hello".to_owned()];
    match run_debian_program(qemu, &packages, "/usr/bin/hello", &[], verbose) {
        Ok(run) if run.status == Some(0) && run.serial.iter().any(|l| l.contains(GREETING)) => {
            println!("{what}: ok");
            tally.add(1, 0, 0);
        }
        Ok(run) => {
            let status = run.status.map_or_else(
                || "no exit status".to_owned(),
                |s| format!("exit status {s}"),
            );
            println!(
                "{what}: FAILED: {status} (QEMU: {:?}), greeting {}; serial log in {}",
                run.outcome,
                if run.serial.iter().any(|l| l.contains(GREETING)) {
                    "printed"
                } else {
                    "missing"
                },
                serial_log("debian").display()
            );
            tally.add(0, 1, 0);
        }
        Err(message) => {
            println!("{what}: FAILED: {message}");
            tally.add(0, 1, 0);
        }
    }
}

/// The screen test (screen.rs): one pass or failure.
fn screen_test(qemu: &Qemu, programs: &[Program], verbose: bool, tally: &mut Tally) {
    report_step(
        "screen: keys through QEMU's keyboard reach echoline, its answer on the framebuffer",
        crate::screen::run(qemu, programs, verbose),
        tally,
    );
}

fn root_screen_test(
    qemu: &Qemu,
    root: &Root,
    programs: &[Program],
    verbose: bool,
    tally: &mut Tally,
) {
    report_step(
        "root: screen: keys through QEMU's keyboard reach the shell, its answer on the framebuffer",
        crate::screen::root_shell(qemu, root, programs, verbose),
        tally,
    );
}

/// One step's line (`WHAT: ok (SUMMARY)` or `WHAT: FAILED: WHY`), counted as one test.
fn report_step(what: &str, result: Result<String, String>, tally: &mut Tally) {
    match result {
        Ok(summary) => {
            println!("{what}: ok ({summary})");
            tally.add(1, 0, 0);
        }
        Err(message) => {
            println!("{what}: FAILED: {message}");
            tally.add(0, 1, 0);
        }
    }
}

/// The kernel's tests run the user programs from the ramdisk: check they are all there.
fn check_ramdisk_programs(cpio: &Path, tally: &mut Tally) {
    let names = user::EXPECTED_PROGRAMS;
    let what = format!("/bin/{{{}}} in the test ramdisk", names.join(","));
    match ramdisk::check_programs(cpio, names) {
        Ok(()) => {
            println!("user: {what}: ok");
            tally.add(1, 0, 0);
        }
        Err(message) => {
            println!("user: {what}: FAILED: {message}");
            tally.add(0, 1, 0);
        }
    }
}

/// The kernel command line of a Linux run: the console on COM1, power off instead of
/// rebooting on a panic (QEMU runs with -no-reboot), and what follows `--` for /init.
const LINUX_APPEND: &str = "console=ttyS0 panic=-1 quiet rdinit=/init --";
/// The option that makes usertests and bench power the machine off when they are done.
pub const POWEROFF: &str = "--poweroff";
/// The option that makes usertests run its pending tests too (those of kernel features still
/// to come, for which Linux is the oracle).
const PENDING: &str = "--pending";
/// A whole usertests run under Linux (TCG, a busy host).
const LINUX_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a bzImage's setup header says "HdrS" (Linux's x86 boot protocol).
const SETUP_HEADER_MAGIC: std::ops::Range<usize> = 0x202..0x206;
/// The setup header's boot protocol version (16 bits, e.g. 0x020f for 2.15).
const SETUP_PROTOCOL_VERSION: usize = 0x206;
/// The setup header's `kernel_version` (16 bits, from protocol 2.00): where the kernel's version
/// string starts, less 0x200; it lies in the setup code, so within the first 64 KiB + 0x200.
const SETUP_KERNEL_VERSION: usize = 0x20e;
const SETUP_KERNEL_VERSION_BASE: usize = 0x200;

/// One-line check that `path` is a readable bzImage (its setup header says "HdrS").
pub fn check_bzimage(path: &Path) -> Result<(), String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("cannot read the Linux kernel {}: {e}", path.display()))?;
    if data.get(SETUP_HEADER_MAGIC) != Some(b"HdrS") {
        return Err(format!(
            "{} is not a Linux bzImage (no 'HdrS' setup header; use a vmlinuz, not a vmlinux)",
            path.display()
        ));
    }
    Ok(())
}

/// How reports name a Linux kernel: `Linux RELEASE` (the release as `uname -r` prints it, read
/// from the bzImage's setup header), followed by the file name in parentheses when that does not
/// already contain the release; `Linux (FILE)` when the image gives no release.
pub fn linux_label(bzimage: &Path) -> String {
    let file = bzimage.file_name().map_or_else(
        || bzimage.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    match linux_release(bzimage) {
        Some(release) if file.contains(&release) => format!("Linux {release}"),
        Some(release) => format!("Linux {release} ({file})"),
        None => format!("Linux ({file})"),
    }
}

/// The release of the bzImage at `path`; `None` if it cannot be read or names none.
fn linux_release(path: &Path) -> Option<String> {
    use std::io::Read;
    let limit = SETUP_KERNEL_VERSION_BASE + usize::from(u16::MAX) + 1;
    let mut setup = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(limit as u64)
        .read_to_end(&mut setup)
        .ok()?;
    release_in_setup(&setup)
}

/// The release in the version string of a bzImage whose first bytes are `setup`: its first word
/// (the version string reads like `6.12.95+deb12-amd64 (builder@host) #1 SMP ...`). `None`
/// without the "HdrS" header, before boot protocol 2.00, or if the string is empty.
fn release_in_setup(setup: &[u8]) -> Option<String> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(setup.get(at..at + 2)?.try_into().ok()?));
    if setup.get(SETUP_HEADER_MAGIC) != Some(b"HdrS") || u16_at(SETUP_PROTOCOL_VERSION)? < 0x200 {
        return None;
    }
    let start = SETUP_KERNEL_VERSION_BASE + usize::from(u16_at(SETUP_KERNEL_VERSION)?);
    let text = setup.get(start..)?;
    let text = &text[..text.iter().position(|&b| b == 0)?];
    let release = std::str::from_utf8(text).ok()?.split_whitespace().next()?;
    Some(release.to_owned())
}

/// An initramfs for Linux: /bin/* (every program), the tree of Debian's packages at
/// `debian_root` if given, /dev/console, the empty directories /proc, /sys and /tmp (mode
/// 01777), and /init, a symbolic link to `init` (a path in the initramfs, such as
/// `/bin/usertests`).
pub fn linux_initramfs(
    programs: &[Program],
    init: &str,
    debian_root: Option<&Path>,
    out: &Path,
) -> Result<(), String> {
    let mut archive = initrd::ArchiveBuilder::new();
    let fail = |e: initrd::BuildError| format!("initramfs: {e}");
    archive.add_dir("dev", 0o755).map_err(fail)?;
    // Where usertests mounts proc, sysfs (and devtmpfs on /dev) as init, and its scratch files.
    archive.add_dir("proc", 0o755).map_err(fail)?;
    archive.add_dir("sys", 0o755).map_err(fail)?;
    archive.add_dir("tmp", 0o1777).map_err(fail)?;
    // Linux opens /dev/console for init's standard descriptors: without it, no output.
    archive
        .add_char_device("dev/console", 0o600, 5, 1)
        .map_err(fail)?;
    for program in programs {
        let data = std::fs::read(&program.path)
            .map_err(|e| format!("cannot read {}: {e}", program.path.display()))?;
        archive
            .add_file(&format!("bin/{}", program.name), 0o755, &data)
            .map_err(fail)?;
    }
    if let Some(root) = debian_root {
        crate::debian::add_tree(&mut archive, root)?;
    }
    archive.add_symlink("init", init).map_err(fail)?;
    std::fs::write(out, archive.finish())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Adds to `profile` what boots `bzimage` with the initramfs `cpio`, its /init getting
/// `init_args` (on the command line `LINUX_APPEND` plus the arguments), and
/// returns the disk image to run it with: an empty one in `dir`, since the qemu crate always
/// attaches a disk and Linux, booting from -kernel/-initrd, ignores it.
pub fn prepare_linux_boot(
    profile: &mut Profile,
    dir: &Path,
    bzimage: &Path,
    cpio: &Path,
    init_args: &[String],
) -> Result<std::path::PathBuf, String> {
    let disk = dir.join("empty.img");
    std::fs::write(&disk, [0u8; 512])
        .map_err(|e| format!("cannot write {}: {e}", disk.display()))?;
    let append = std::iter::once(LINUX_APPEND)
        .chain(init_args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    profile.extra_args.extend([
        "-kernel".into(),
        bzimage.display().to_string(),
        "-initrd".into(),
        cpio.display().to_string(),
        "-append".into(),
        append,
    ]);
    Ok(disk)
}

/// Boots `bzimage` with usertests as /init and counts its KTAP results.
fn linux_suite(
    qemu: &Qemu,
    bzimage: &Path,
    programs: &[Program],
    verbose: bool,
    tally: &mut Tally,
) -> Result<(), String> {
    let dir = artifacts::target_dir().join("linux");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cpio = dir.join("initramfs.cpio");
    linux_initramfs(programs, "/bin/usertests", None, &cpio)?;
    let mut profile = Profile::new("linux", Firmware::Bios, 2);
    let init_args = [POWEROFF.into(), PENDING.into()];
    let disk = prepare_linux_boot(&mut profile, &dir, bzimage, &cpio, &init_args)?;
    let options = RunOptions {
        timeout: Some(LINUX_TIMEOUT),
        silence_timeout: Some(SILENCE_TIMEOUT),
        echo: if verbose {
            Echo::Prefixed("[linux] ".into())
        } else {
            Echo::None
        },
        serial_log: Some(serial_log("linux")),
        input: Vec::new(),
    };
    let what = format!(
        "linux: usertests [{}, {} CPUs, {} MiB, {}]",
        linux_label(bzimage),
        profile.cpus,
        profile.memory_mib,
        profile.accel
    );
    let result = match qemu.run(&profile, &disk, &options) {
        Ok(result) => result,
        Err(e) => {
            println!("{what}: could not run: {e}");
            tally.add(0, 1, 0);
            return Ok(());
        }
    };
    let report = result.ktap();
    let (passed, failed, skipped) = report.counts();
    let verdict = report.verdict();
    // Linux powers off (QEMU exits 0 with -no-reboot): the verdict is the KTAP report's.
    let clean = verdict.is_pass() && result.outcome == Outcome::UnexpectedExit(0);
    let version = report
        .results
        .iter()
        .flat_map(|r| &r.diagnostics)
        .find_map(|d| d.strip_prefix("uname: "))
        .unwrap_or("version unknown");
    println!(
        "{what}: {} ({:.1} s, {version}){}",
        counts(passed, failed, skipped),
        result.elapsed.as_secs_f64(),
        if clean { "" } else { " FAILED" }
    );
    for test in &report.results {
        match test.status {
            Status::NotOk => println!(
                "  not ok {} {}: {}",
                test.number,
                test.name,
                test.reason.as_deref().unwrap_or("")
            ),
            Status::Skip => println!(
                "  skipped {} {}: {}",
                test.number,
                test.name,
                test.reason.as_deref().unwrap_or("")
            ),
            Status::Ok => {}
        }
    }
    tally.add(passed, failed, skipped);
    if !clean {
        let ending = match result.outcome {
            Outcome::UnexpectedExit(0) => None,
            Outcome::TimedOut => Some(format!(
                "hung: no power-off within {} s (serial log: {})",
                LINUX_TIMEOUT.as_secs(),
                serial_log("linux").display()
            )),
            outcome => Some(format!("QEMU: {outcome}")),
        };
        report_unclean_boot(ending, &verdict.problems, &result, failed, tally);
    }
    Ok(())
}

/// `P passed, F failed[, S skipped]`, the KTAP summary line's wording.
fn counts(passed: usize, failed: usize, skipped: usize) -> Summary {
    Summary {
        passed,
        failed,
        skipped: (skipped > 0).then_some(skipped),
    }
}

/// What a boot that did not end cleanly shows: how it ended, the report's problems and the last
/// serial lines; the boot itself counts as one failure when no single test failed (a hang, a
/// crash, no summary).
fn report_unclean_boot(
    ending: Option<String>,
    problems: &[String],
    result: &RunResult,
    failed: usize,
    tally: &mut Tally,
) {
    if let Some(ending) = ending {
        println!("  {ending}");
    }
    for problem in problems {
        println!("  {problem}");
    }
    show_tail(result);
    if failed == 0 {
        tally.add(0, 1, 0);
    }
}

/// One boot of the in-kernel suites: a machine and the kernel options.
struct Suite {
    profile: Profile,
    cmdline: &'static str,
}

/// The torture run: the stress tests' iteration counts multiplied.
const TORTURE_CMDLINE: &str = "test log=info stats ktest.stress=4";
/// The user programs with every fault on the `mmap_lock` path: same results as with the
/// per-VMA lock.
const VMA_LOCK_OFF_CMDLINE: &str = "test log=info stats vma_lock=off ktest.filter=proc::ktests::";
/// Failure injection (kernel/src/mm/inject.rs): user frames, VMA objects and user page tables
/// fail to allocate now and then, from the end of boot on. Only the tests written for it run:
/// the fault torture (which then accepts `ENOMEM` from a change and `EFAULT` from a write to a
/// page that got no frame) and a set of user programs (the user suite's memory, mremap, file
/// mapping, process and thread groups, one process each, and fork tortures) that must each end
/// with a status a process may have under memory pressure: its tests passed, or one failed or
/// panicked on an `ENOMEM` it did not expect, or it was killed (SIGKILL) for a fault that
/// found no memory. Whether a given user test passes depends on where the failures land, so
/// the suite's verdict is not asked for: what is checked is that the kernel neither panics,
/// nor hangs, nor kills with another signal, and that frames, VMAs, slab objects and the page
/// cache are back at their baseline afterwards (taken and checked with the injection paused).
/// The rates make failures common enough that every program meets several, and rare enough
/// that each gets far into its work; the statistics lines count the failures per kind.
const INJECTION_CMDLINE: &str = "test log=info stats fail=frames:200,slab:50,pagetable:20 \
     ktest.filter=mm::torture::faults_race,under_injected_failures";
/// The CPU model that has an x2APIC under TCG (QEMU 9.0 and newer).
const X2APIC_CPU: &str = "max,+x2apic";

impl Suite {
    fn new(profile: Profile) -> Self {
        Self {
            profile,
            cmdline: TEST_CMDLINE,
        }
    }

    fn x2apic(mut profile: Profile) -> Self {
        profile.cpu_model = Some(X2APIC_CPU.into());
        Self::new(profile)
    }

    fn vma_lock_off(cpus: u32) -> Self {
        let profile = Profile::new(format!("vma-lock-off-smp{cpus}"), Firmware::Bios, cpus);
        Self {
            profile,
            cmdline: VMA_LOCK_OFF_CMDLINE,
        }
    }

    fn injection(cpus: u32) -> Self {
        let profile = Profile::new(format!("injection-smp{cpus}"), Firmware::Bios, cpus);
        Self {
            profile,
            cmdline: INJECTION_CMDLINE,
        }
    }

    fn torture(cpus: u32) -> Self {
        let profile = Profile::new(format!("torture-smp{cpus}"), Firmware::Bios, cpus);
        Self {
            profile,
            cmdline: TORTURE_CMDLINE,
        }
    }

    /// Why this QEMU cannot run the suite, if it cannot.
    fn unsupported_by(&self, qemu: &Qemu) -> Option<String> {
        let wants_x2apic = self.profile.cpu_model.as_deref() == Some(X2APIC_CPU);
        (wants_x2apic && !qemu.supports_tcg_x2apic()).then(|| {
            format!(
                "QEMU {} emulates no x2APIC under TCG (9.0 or newer does)",
                qemu.version()
            )
        })
    }
}

/// The default set, sized for a 2-core machine: BIOS at 1 and 2 CPUs, UEFI at 2, x2APIC at 4,
/// the per-VMA lock off at 4, failure injection at 2, and one 8-CPU torture run. Four CPUs with
/// the xAPIC are left to `--full`: the x2APIC profile runs the same suite on 4, and the torture
/// run the xAPIC on 8.
fn default_suites() -> Vec<Suite> {
    vec![
        Suite::new(Profile::new("bios-smp1", Firmware::Bios, 1)),
        Suite::new(Profile::new("bios-smp2", Firmware::Bios, 2)),
        Suite::new(Profile::new("uefi-smp2", Firmware::Uefi, 2)),
        Suite::x2apic(Profile::new("x2apic-smp4", Firmware::Bios, 4)),
        Suite::vma_lock_off(4),
        Suite::injection(2),
        Suite::torture(8),
    ]
}

/// Firmware × CPUs × chipset × APIC mode, and the torture run.
fn full_suites() -> Vec<Suite> {
    let mut suites = Vec::new();
    for firmware in [Firmware::Bios, Firmware::Uefi] {
        for cpus in [1, 2, 3, 4, 8] {
            for machine in [Machine::Q35, Machine::Pc] {
                for x2apic in [false, true] {
                    let name = format!(
                        "{}-smp{cpus}-{}{}",
                        if firmware == Firmware::Bios {
                            "bios"
                        } else {
                            "uefi"
                        },
                        machine.qemu_name(),
                        if x2apic { "-x2apic" } else { "" }
                    );
                    let mut profile = Profile::new(name, firmware, cpus);
                    profile.machine = machine;
                    suites.push(if x2apic {
                        Suite::x2apic(profile)
                    } else {
                        Suite::new(profile)
                    });
                }
            }
        }
    }
    suites.push(Suite::vma_lock_off(4));
    suites.push(Suite::injection(2));
    suites.push(Suite::torture(8));
    suites
}

/// The house rules CI can check: formatting, and clippy with warnings denied on every crate
/// (the host crates, and the kernel for its own target, as production kernels build it and with
/// its tests). Each counts as one test.
fn lints(tally: &mut Tally) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let checks: [(&str, &[&str]); 4] = [
        ("cargo fmt --check", &["fmt", "--all", "--", "--check"]),
        (
            "cargo clippy (host crates)",
            &[
                "clippy",
                "--workspace",
                "--exclude",
                "kernel",
                "--exclude",
                "urt",
                "--exclude",
                "demo",
                "--exclude",
                "usertests",
                "--exclude",
                "faulter",
                "--exclude",
                "bench",
                "--exclude",
                "forktorture",
                "--exclude",
                "echoline",
                "--exclude",
                "fuzz",
                "--all-targets",
                "--color",
                "never",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "cargo clippy (kernel)",
            &[
                "clippy",
                "--package",
                "kernel",
                "--target",
                "x86_64-unknown-none",
                "--color",
                "never",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "cargo clippy (kernel with its tests)",
            &[
                "clippy",
                "--package",
                "kernel",
                "--target",
                "x86_64-unknown-none",
                "--features",
                "ktest",
                "--color",
                "never",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    let mut commands: Vec<(&str, Command)> = checks
        .iter()
        .map(|(name, args)| {
            let mut command = Command::new(&cargo);
            command.args(*args);
            (*name, command)
        })
        .collect();
    // The user programs: their own target directory and flags (see user.rs).
    let mut user_clippy = user::cargo_command("clippy");
    user_clippy.args([
        "--package",
        "urt",
        "--color",
        "never",
        "--",
        "-D",
        "warnings",
    ]);
    commands.push(("cargo clippy (user programs)", user_clippy));
    // All at once: most of each is one compiler process working on one crate, and the host
    // has cores to spare for the others. Their output goes to files, not pipes: a child
    // blocked on a full pipe could hold the build directory's lock another one waits for.
    let logs = artifacts::target_dir().join("lint-logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let start = Instant::now();
    let mut running = Vec::new();
    for (n, (name, mut command)) in commands.into_iter().enumerate() {
        let log = logs.join(format!("{n}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let errors = file
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let child = command
            .stdout(file)
            .stderr(errors)
            .spawn()
            .map_err(|e| format!("cannot run {name}: {e}"))?;
        running.push((name, child, log));
    }
    // Each one's time is from the common start to its own end, found by polling.
    let mut ended: Vec<Option<(std::process::ExitStatus, f64)>> = vec![None; running.len()];
    while ended.iter().any(Option::is_none) {
        for ((name, child, _), end) in running.iter_mut().zip(&mut ended) {
            if end.is_none()
                && let Some(status) = child
                    .try_wait()
                    .map_err(|e| format!("cannot wait for {name}: {e}"))?
            {
                *end = Some((status, start.elapsed().as_secs_f64()));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for ((name, _, log), (status, seconds)) in running.iter().zip(ended.into_iter().flatten()) {
        if status.success() {
            println!("lint: {name}: ok ({seconds:.1} s)");
            tally.add(1, 0, 0);
        } else {
            println!("lint: {name}: FAILED ({seconds:.1} s)");
            print!("{}", std::fs::read_to_string(log).unwrap_or_default());
            tally.add(0, 1, 0);
        }
    }
    Ok(())
}

/// Crates whose unsafe code Miri checks, with the test targets it runs (their heavy tests
/// shrink or skip under `cfg(miri)`). The parsers (initrd, acpi_madt) have no unsafe code, so
/// Miri would add nothing there.
const MIRI_RUNS: &[(&str, &[&str])] = &[
    ("buddy", &["--lib"]),
    ("rcu", &["--lib"]),
    ("slab", &["--lib", "--test", "api"]),
    ("vmtree", &["--lib"]),
];
/// The preemption bound of the loom models' debug-profile run: 1 keeps it near 13 s on a
/// loaded 2-core host, where the bound of 2 takes about 60 s (vmalock's models alone 45 s).
const LOOM_DEBUG_PREEMPTIONS: &str = "1";

/// Host tests: `cargo test` over the workspace's host crates (its default members), the loom
/// models (release and debug profiles), the mutation check of the VMA lock's models
/// (breaks.rs), and Miri on the unsafe crates.
fn host_tests(tally: &mut Tally) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut test = Command::new(&cargo);
    test.args(["test", "--color", "never"]);
    cargo_test_step("host: cargo test", test, tally)?;

    // The release run explores the most interleavings; the debug run (the dev profile) adds
    // the crates' debug assertions and overflow checks, at a lower bound to stay short.
    for (profile, preemptions) in [("release", "2"), ("dev", LOOM_DEBUG_PREEMPTIONS)] {
        let mut loom = breaks::loom_command(&cargo);
        loom.args([
            "test",
            "--profile",
            profile,
            "--color",
            "never",
            "--test",
            "loom",
        ]);
        for name in breaks::LOOM_CRATES {
            loom.args(["--package", name]);
        }
        loom.env("LOOM_MAX_PREEMPTIONS", preemptions);
        let label = format!("loom: models, {profile} profile, LOOM_MAX_PREEMPTIONS={preemptions}");
        cargo_test_step(&label, loom, tally)?;
    }
    // After the release run, whose build it reuses.
    let started = Instant::now();
    let caught = breaks::check(&[])?;
    println!(
        "loom: vmalock mutation check (every break makes a model fail): {} ({:.1} s)",
        if caught { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    tally.add(usize::from(caught), usize::from(!caught), 0);

    for (name, targets) in MIRI_RUNS {
        let mut miri = Command::new(&cargo);
        miri.args(["miri", "test", "--color", "never", "--package", name]);
        miri.args(*targets);
        cargo_test_step(&format!("miri: {name} {}", targets.join(" ")), miri, tally)?;
    }
    Ok(())
}

/// Runs one `cargo test`-like command, counts its `test result:` lines, and prints one line
/// `LABEL: N passed, N failed, N ignored (T s)`.
fn cargo_test_step(label: &str, mut command: Command, tally: &mut Tally) -> Result<(), String> {
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for line in stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
    {
        for part in line.split(['.', ';']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (
                words.next().and_then(|n| n.parse::<usize>().ok()),
                words.next(),
            ) {
                match what {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    if !output.status.success() {
        print!("{stdout}");
        eprint!("{stderr}");
        // A build failure reports no test results; count it as one failure.
        failed = failed.max(1);
    }
    println!(
        "{label}: {passed} passed, {failed} failed, {ignored} ignored ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    tally.add(passed, failed, 0);
    Ok(())
}

pub fn serial_log(name: &str) -> std::path::PathBuf {
    artifacts::target_dir()
        .join("test-logs")
        .join(format!("{name}.log"))
}

pub(crate) fn run_profile(
    qemu: &Qemu,
    profile: &Profile,
    image: &Path,
    timeout: Duration,
    verbose: bool,
) -> Result<RunResult, String> {
    let options = RunOptions {
        timeout: Some(timeout),
        silence_timeout: Some(SILENCE_TIMEOUT),
        echo: if verbose {
            Echo::Prefixed(format!("[{}] ", profile.name))
        } else {
            Echo::None
        },
        serial_log: Some(serial_log(&profile.name)),
        input: Vec::new(),
    };
    qemu.run(profile, image, &options)
        .map_err(|e| e.to_string())
}

fn image_for<'a>(profile: &Profile, images: &'a Images) -> &'a Path {
    match profile.firmware {
        Firmware::Bios => &images.bios,
        Firmware::Uefi => &images.uefi,
    }
}

fn show_tail(result: &RunResult) {
    println!("  last serial lines:");
    for line in result.last_lines(TAIL_LINES) {
        println!("  | {line}");
    }
    if !result.stderr.trim().is_empty() {
        println!("  QEMU said: {}", result.stderr.trim());
    }
}

fn kernel_suite(qemu: &Qemu, profile: &Profile, images: &Images, verbose: bool, tally: &mut Tally) {
    let result = match run_profile(
        qemu,
        profile,
        image_for(profile, images),
        PROFILE_TIMEOUT,
        verbose,
    ) {
        Ok(result) => result,
        Err(message) => {
            println!("kernel [{}]: could not run: {message}", profile.describe());
            tally.add(0, 1, 0);
            return;
        }
    };
    let report = result.ktap();
    let (passed, failed, skipped) = report.counts();
    let verdict = report.verdict();
    let clean = result.outcome == Outcome::Success && verdict.is_pass();
    println!(
        "kernel [{}]: {} ({:.1} s){}",
        profile.describe(),
        counts(passed, failed, skipped),
        result.elapsed.as_secs_f64(),
        if clean { "" } else { " FAILED" }
    );
    for test in report.results.iter().filter(|t| t.status == Status::NotOk) {
        println!(
            "  not ok {} {}: {}",
            test.number,
            test.name,
            test.reason.as_deref().unwrap_or("")
        );
        for line in &test.diagnostics {
            println!("    {line}");
        }
    }
    tally.add(passed, failed, skipped);
    check_log_lines_whole(profile, &result.serial, tally);
    if !clean {
        let ending = match result.outcome {
            Outcome::TimedOut => format!(
                "hung: no exit within {} s, or no output for {} s (serial log: {})",
                PROFILE_TIMEOUT.as_secs(),
                SILENCE_TIMEOUT.as_secs(),
                serial_log(&profile.name).display()
            ),
            outcome => format!("QEMU: {outcome}"),
        };
        report_unclean_boot(Some(ending), &verdict.problems, &result, failed, tally);
    }
}

/// The diagnostic of usertests' `io::write_large_console` saying how many kernel log lines it
/// asked for during its large write (by calling unknown system calls).
const LARGE_WRITE_ASKED: &str = "# large write: asked the kernel for ";

/// Checks that every kernel log line usertests asked for during its large console write is in
/// the serial log whole, on a line of its own (`[  time] cpuN WARN  name[tid]: unimplemented
/// system call N ...`, N one of the numbers the test named): user output, however large,
/// neither drops nor breaks a log line. Counts as one test where the suite ran that test.
fn check_log_lines_whole(profile: &Profile, serial: &[String], tally: &mut Tally) {
    // "# large write: asked the kernel for 64 log lines (system calls from 896)"
    let Some((asked, first)) = serial.iter().find_map(|line| {
        let rest = line.trim_start().strip_prefix(LARGE_WRITE_ASKED)?;
        let (asked, rest) = rest.split_once(' ')?;
        let first = rest
            .strip_prefix("log lines (system calls from ")?
            .strip_suffix(')')?;
        Some((asked.parse::<u64>().ok()?, first.parse::<u64>().ok()?))
    }) else {
        return;
    };
    let asked_for = |line: &str| {
        line.split_once(": unimplemented system call ")
            .and_then(|(_, rest)| rest.strip_suffix(" (unknown); returning -ENOSYS"))
            .and_then(|number| number.parse::<u64>().ok())
            .is_some_and(|number| (first..first + asked).contains(&number))
    };
    let whole = serial
        .iter()
        .filter(|line| is_log_line(line, "WARN") && asked_for(line))
        .count();
    let what = format!(
        "kernel [{}]: kernel log lines during a large console write: {asked} asked for, {whole} whole",
        profile.describe()
    );
    if whole as u64 == asked {
        println!("{what}: ok");
        tally.add(1, 0, 0);
    } else {
        println!("{what}: FAILED");
        tally.add(0, 1, 0);
    }
}

/// Whether `line` is one whole kernel log line of `level`: `[SSSSS.UUUUUU] cpuN LEVEL ...`.
pub fn is_log_line(line: &str, level: &str) -> bool {
    let Some((stamp, rest)) = line.strip_prefix('[').and_then(|l| l.split_once("] cpu")) else {
        return false;
    };
    let stamp_ok = stamp.trim_start().split_once('.').is_some_and(|(s, us)| {
        s.bytes().all(|b| b.is_ascii_digit())
            && us.len() == 6
            && us.bytes().all(|b| b.is_ascii_digit())
    });
    let Some((cpu, rest)) = rest.split_once(' ') else {
        return false;
    };
    stamp_ok
        && !cpu.is_empty()
        && cpu.bytes().all(|b| b.is_ascii_digit())
        && rest.strip_prefix(level).is_some_and(|r| r.starts_with(' '))
}

/// One deliberately broken run the harness must catch, and what catching it looks like.
struct HarnessCheck {
    what: &'static str,
    /// A short name for the image and the serial log.
    name: &'static str,
    cmdline: &'static str,
    cpus: u32,
    timeout: Duration,
    expect: fn(&RunResult) -> Result<(), String>,
}

const HARNESS_CHECKS: &[HarnessCheck] = &[
    HarnessCheck {
        what: "a failing test fails the run and is named with its message",
        name: "selftest-fail",
        cmdline: "test ktest.filter=ktest::selftest ktest.selftest=fail",
        cpus: 1,
        timeout: PROFILE_TIMEOUT,
        expect: |r| {
            expect_not_ok(
                r,
                "ktest::selftest::deliberate_failure",
                "deliberate failure",
            )
        },
    },
    HarnessCheck {
        what: "a test past its timeout is stopped and reported",
        name: "selftest-timeout",
        cmdline: "test ktest.filter=ktest::selftest ktest.selftest=timeout",
        cpus: 1,
        timeout: PROFILE_TIMEOUT,
        expect: |r| expect_not_ok(r, "ktest::selftest::deliberate_timeout", "timed out"),
    },
    HarnessCheck {
        what: "an unexpected kernel fault prints its report and ends the run",
        name: "selftest-fault",
        cmdline: "test ktest.filter=ktest::selftest ktest.selftest=fault",
        cpus: 1,
        timeout: PROFILE_TIMEOUT,
        expect: |r| {
            expect_not_ok(r, "ktest::selftest::deliberate_fault", "fatal exception")?;
            let report = r
                .serial
                .iter()
                .any(|l| l.starts_with("EXCEPTION on CPU 0: page fault (#PF, vector 14)"));
            let cr2 = r
                .serial
                .iter()
                .any(|l| l.contains("faulting address (CR2): 0x0000000000000010"));
            let symbol = r
                .serial
                .iter()
                .any(|l| l.contains("<kernel::ktest::selftest::fault+"));
            if report && cr2 && symbol {
                Ok(())
            } else {
                Err("the exception report is incomplete".into())
            }
        },
    },
    HarnessCheck {
        what: "a test that fails holding a lock is reported, and the run stops naming the lock",
        name: "selftest-lock",
        cmdline: "test ktest.filter=ktest::selftest ktest.selftest=lock",
        cpus: 1,
        timeout: PROFILE_TIMEOUT,
        expect: |r| {
            expect_not_ok(
                r,
                "ktest::selftest::deliberate_lock_left_held",
                "deliberate failure holding the heap lock",
            )?;
            if r.serial
                .iter()
                .any(|l| l == "# the run was aborted: the test left the heap lock held")
            {
                Ok(())
            } else {
                Err("the run was not stopped for the heap lock left held".into())
            }
        },
    },
    HarnessCheck {
        what: "a CPU that never answers its start-up IPIs is reported and skipped",
        name: "phantom-cpu",
        cmdline: "exit smp.phantom_apic_id=200",
        cpus: 2,
        timeout: PROFILE_TIMEOUT,
        expect: |r| {
            if r.outcome != Outcome::Success {
                return Err(format!("expected boot to complete, got: {}", r.outcome));
            }
            let reported = r.serial.iter().any(|l| {
                l.contains("CPU with APIC ID 200 did not start (never ran the trampoline); skipped")
            });
            let online = r.serial.iter().any(|l| l.ends_with("smp: 2 CPUs online"));
            match (reported, online) {
                (true, true) => Ok(()),
                (false, _) => Err("no report of the CPU that did not start".into()),
                (true, false) => Err("the real CPUs did not all come online".into()),
            }
        },
    },
    HarnessCheck {
        what: "a hang with interrupts off is caught by the host timeout",
        name: "selftest-hang",
        cmdline: "test ktest.filter=ktest::selftest ktest.selftest=hang",
        cpus: 1,
        timeout: HANG_TIMEOUT,
        expect: |r| {
            if r.outcome != Outcome::TimedOut {
                return Err(format!("expected a hang, got: {}", r.outcome));
            }
            if !r.serial.iter().any(|l| l == "1..1") {
                return Err("the hung run's last lines lack its KTAP plan".into());
            }
            Ok(())
        },
    },
];

fn expect_not_ok(result: &RunResult, name: &str, reason: &str) -> Result<(), String> {
    if result.outcome != Outcome::Failure {
        return Err(format!(
            "expected the failure exit code, got: {}",
            result.outcome
        ));
    }
    let report = result.ktap();
    let test = report
        .results
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("no result for {name}"))?;
    if test.status != Status::NotOk {
        return Err(format!("{name} was not reported `not ok`"));
    }
    if !test.reason.as_deref().unwrap_or("").contains(reason) {
        return Err(format!(
            "{name}'s reason {:?} lacks {reason:?}",
            test.reason
        ));
    }
    if report.summary.is_none() {
        return Err("no summary line after the failure".into());
    }
    Ok(())
}

fn harness_checks(
    qemu: &Qemu,
    kernel: &Path,
    contents: &Contents,
    verbose: bool,
    tally: &mut Tally,
) -> Result<(), String> {
    for check in HARNESS_CHECKS {
        let images = artifacts::make_images(kernel, check.cmdline, check.name, contents)?;
        let profile = Profile::new(check.name, Firmware::Bios, check.cpus);
        let outcome = run_profile(qemu, &profile, &images.bios, check.timeout, verbose)
            .and_then(|result| (check.expect)(&result).inspect_err(|_| show_tail(&result)));
        match outcome {
            Ok(()) => {
                println!("harness: {}: ok", check.what);
                tally.add(1, 0, 0);
            }
            Err(message) => {
                println!("harness: {}: FAILED: {message}", check.what);
                tally.add(0, 1, 0);
            }
        }
    }
    Ok(())
}

/// How a program from Debian's packages ran as init (see [`run_debian_program`]).
pub struct DebianRun {
    /// The serial output, the kernel's log lines included.
    pub serial: Vec<String>,
    /// init's exit status, as the kernel reported it; `None` when it never did (a hang, a
    /// crash, a refused start: the serial output says which).
    pub status: Option<i32>,
    /// How QEMU ended.
    pub outcome: Outcome,
}

/// A run of a Debian program must end within this (debug kernel, TCG, a busy host).
const DEBIAN_TIMEOUT: Duration = Duration::from_secs(300);

/// Boots our kernel (debug build, without its tests; BIOS, 2 CPUs) with `packages` and their
/// dependencies from Debian's archive in the ramdisk and `init`, a program among them such as
/// `/usr/bin/hello`, as init with `args`. Returns once init exits (the kernel then leaves
/// QEMU), the run falls silent or [`DEBIAN_TIMEOUT`] passes; the serial output is also in
/// `target/test-logs/debian.log`.
pub fn run_debian_program(
    qemu: &Qemu,
    packages: &[String],
    init: &str,
    args: &[String],
    verbose: bool,
) -> Result<DebianRun, String> {
    let staged = crate::debian::stage(packages)?;
    let target = crate::run_target(Path::new(init), Some(&staged))?;
    if !matches!(target, crate::RunTarget::Debian { .. }) {
        return Err(format!(
            "{init} is not in the Debian packages staged ({})",
            staged.packages.join(", ")
        ));
    }
    let kernel = artifacts::build_kernel(false, Tests::Without)?;
    let mut contents = Contents {
        programs: Vec::new(),
        files: Vec::new(),
        debian_root: Some(staged.root.clone()),
    };
    let mut cmdline = String::from("exit");
    crate::prepare_run(&target, args, &mut contents, &mut cmdline)?;
    let images = artifacts::make_images(&kernel, &cmdline, "debian", &contents)?;
    let profile = Profile::new("debian", Firmware::Bios, 2);
    let result = run_profile(qemu, &profile, &images.bios, DEBIAN_TIMEOUT, verbose)?;
    Ok(DebianRun {
        status: crate::init_status(&result.serial, &target.init_path()),
        serial: result.serial,
        outcome: result.outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a bzImage of boot protocol `protocol` whose version string is
    /// `version`, 0x3000 bytes in.
    fn setup_with_version(protocol: u16, version: &[u8]) -> Vec<u8> {
        let mut setup = vec![0u8; 0x3000];
        setup[SETUP_HEADER_MAGIC].copy_from_slice(b"HdrS");
        setup[SETUP_PROTOCOL_VERSION..][..2].copy_from_slice(&protocol.to_le_bytes());
        let pointer = u16::try_from(setup.len() - SETUP_KERNEL_VERSION_BASE).unwrap();
        setup[SETUP_KERNEL_VERSION..][..2].copy_from_slice(&pointer.to_le_bytes());
        setup.extend_from_slice(version);
        setup
    }

    #[test]
    fn the_release_is_the_first_word_of_the_setup_headers_version_string() {
        let version = b"6.12.95+deb12-amd64 (builder@buildhost) #1 SMP\0\0";
        assert_eq!(
            release_in_setup(&setup_with_version(0x20f, version)).as_deref(),
            Some("6.12.95+deb12-amd64")
        );
        // Before boot protocol 2.00 the field does not exist; no "HdrS", no header at all.
        assert_eq!(release_in_setup(&setup_with_version(0x1ff, version)), None);
        let mut no_magic = setup_with_version(0x20f, version);
        no_magic[SETUP_HEADER_MAGIC].fill(0);
        assert_eq!(release_in_setup(&no_magic), None);
        // A string without its NUL, or empty.
        assert_eq!(release_in_setup(&setup_with_version(0x20f, b"6.1")), None);
        assert_eq!(release_in_setup(&setup_with_version(0x20f, b"\0")), None);
    }

    #[test]
    #[ignore = "fetches Debian's libc6, builds the kernel and boots it under QEMU (minutes)"]
    fn debian_dynamic_linker_runs_as_init() {
        let qemu = install::ensure_qemu(false).unwrap();
        let run = run_debian_program(
            &qemu,
            &["libc6".into()],
            "/lib64/ld-linux-x86-64.so.2",
            &["--version".into()],
            true,
        )
        .unwrap();
        assert_eq!(run.status, Some(0), "outcome: {}", run.outcome);
        assert!(
            run.serial
                .iter()
                .any(|l| l.starts_with("ld.so (Debian GLIBC")),
            "no version line"
        );
    }

    #[test]
    fn log_lines_are_recognised_only_whole() {
        let line =
            "[   12.345678] cpu3 WARN  usertests[7]: unimplemented system call 1023 (unknown)";
        assert!(is_log_line(line, "WARN"));
        assert!(!is_log_line(line, "INFO"));
        // Glued behind user output, or cut short: not a whole log line.
        assert!(!is_log_line(
            &format!("    # large write.....{line}"),
            "WARN"
        ));
        assert!(!is_log_line("[   12.34] cpu3 WARN  x", "WARN"));
        assert!(!is_log_line("[   12.345678] cpu WARN  x", "WARN"));
        assert!(!is_log_line("[   12.345678] cpu3 WARNING x", "WARN"));
    }
}
