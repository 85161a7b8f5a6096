//! `cargo xtask`: the project's command line.
//!
//! - `build`: the kernel ELF
//! - `image`: BIOS and UEFI disk images, and how to put them on a USB stick
//! - `qemu`: boot the kernel under QEMU with the serial console on this terminal; `--run PATH`
//!   runs one static program as init and exits with its status
//! - `test`: host tests, then the in-kernel suites under the QEMU profiles; `--linux BZIMAGE`
//!   also runs the user test suite under a real Linux kernel
//! - `bench`: the page-fault benchmark (bench/), ours with the per-VMA lock on and off, and
//!   Linux kernels beside it with `--linux BZIMAGE`
//!
//! Every image carries the user programs (user.rs) in its ramdisk at `/bin/NAME`.
//!
//! Before anything else it makes sure the nightly toolchain can build the project
//! (toolchain.rs), and where QEMU or OVMF are needed and missing, installs them (install.rs).

mod artifacts;
mod bench;
mod install;
mod ramdisk;
mod symbols;
mod testrun;
mod toolchain;
mod user;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use qemu::{Accel, Echo, Firmware, Machine, Outcome, Profile, Qemu, RunOptions};

use crate::artifacts::Tests;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, boot and test the kernel",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel ELF.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Write the BIOS and UEFI disk images (target/images/).
    Image {
        #[arg(long)]
        release: bool,
        /// Kernel options packed into the image's ramdisk (/etc/cmdline).
        #[arg(long, default_value = "")]
        cmdline: String,
    },
    /// Boot the kernel under QEMU; the serial console is this terminal (Ctrl-C stops QEMU).
    Qemu(QemuArgs),
    /// Run the host tests and the in-kernel test suites under QEMU.
    Test {
        /// Every profile in the cross product, not just the default set.
        #[arg(long)]
        full: bool,
        /// Show each profile's serial output live.
        #[arg(long, short)]
        verbose: bool,
        /// Also boot this Linux kernel (a bzImage, such as a distribution's vmlinuz) with the
        /// user programs as its initramfs and /bin/usertests as /init: Linux is the oracle.
        #[arg(long, value_name = "BZIMAGE")]
        linux: Option<PathBuf>,
        /// With --linux: run only the Linux suite (no lints, host tests or kernel profiles).
        #[arg(long, requires = "linux")]
        linux_only: bool,
    },
    /// Page-fault throughput, scaling and instructions per fault, beside Linux with --linux
    /// (reports in target/bench/).
    Bench(BenchArgs),
}

/// The most CPUs `qemu` and `bench` give a guest (the kernel itself runs up to 64).
const MAX_GUEST_CPUS: u32 = 16;

#[derive(clap::Args)]
struct BenchArgs {
    /// Guest CPUs of the throughput runs (threads go 1, 2, 4, ... up to this); default: the
    /// host's cores.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GUEST_CPUS)))]
    smp: Option<u32>,
    /// Repetitions of every measurement (the report shows medians and spread).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: u32,
    /// QEMU CPU model for every boot, ours and Linux's.
    #[arg(long, default_value = "max")]
    cpu: String,
    /// Guest memory, e.g. 2G.
    #[arg(long, default_value = "2G", value_parser = parse_memory)]
    mem: u32,
    /// Pages of each region (scenario a maps and unmaps one per round); the default is
    /// will-it-scale's page_fault1 region, 128 MiB.
    #[arg(long, default_value_t = 32768, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pages: u32,
    /// Rounds per thread: each thread faults pages x rounds pages per measurement.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    rounds: u32,
    /// A Linux kernel (bzImage) to run the same program under as init; may be repeated.
    #[arg(long, value_name = "BZIMAGE")]
    linux: Vec<PathBuf>,
    /// Skip the instruction counts (the single-CPU icount boots).
    #[arg(long)]
    no_icount: bool,
    /// Further options for our kernel, e.g. "page_clear=stosb".
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Build the boots into DIR with run.sh, to run on another machine instead of here.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Report the boots that DIR's run.sh ran (DIR from --export); the reports go into DIR.
    /// The export fixed what ran, so the options above do not apply.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["export", "smp", "reps", "cpu", "mem", "pages", "rounds", "linux", "no_icount", "cmdline"]
    )]
    import: Option<PathBuf>,
}

#[derive(clap::Args)]
struct QemuArgs {
    /// Number of CPUs (1-16); default: the host's cores, at least 2, so that the demo's threads
    /// fault on several CPUs at once.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GUEST_CPUS)))]
    smp: Option<u32>,
    /// Guest memory, e.g. 512M or 2G.
    #[arg(long, default_value = "512M", value_parser = parse_memory)]
    mem: u32,
    /// Boot through UEFI (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    /// QEMU CPU model, e.g. max or qemu64.
    #[arg(long)]
    cpu: Option<String>,
    #[arg(long, value_enum, default_value_t = MachineArg::Q35)]
    machine: MachineArg,
    #[arg(long, value_enum, default_value_t = AccelArg::Tcg)]
    accel: AccelArg,
    #[arg(long)]
    release: bool,
    /// Kernel options, e.g. "test" or "log=debug".
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Leave QEMU once boot completes or the tests end (for scripts).
    #[arg(long)]
    exit: bool,
    /// Run this static x86_64 program as init (packed as /bin/NAME, arguments after `--`),
    /// leave QEMU when it exits, and exit with its status.
    #[arg(long, value_name = "PATH")]
    run: Option<PathBuf>,
    /// With --run: boot this Linux kernel (a bzImage) instead of ours, with the program as its
    /// /init, to compare what it does under Linux.
    #[arg(long, value_name = "BZIMAGE", requires = "run", conflicts_with_all = ["uefi", "cmdline", "release"])]
    linux: Option<PathBuf>,
    /// Arguments for the --run program (after `--`).
    #[arg(last = true, value_name = "ARGS", requires = "run")]
    args: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MachineArg {
    Q35,
    Pc,
}

#[derive(Clone, Copy, ValueEnum)]
enum AccelArg {
    Tcg,
    Kvm,
}

fn parse_memory(text: &str) -> Result<u32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let (digits, scale) = match upper.strip_suffix('G') {
        Some(d) => (d, 1024),
        None => (upper.strip_suffix('M').unwrap_or(&upper), 1),
    };
    let value: u32 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512M or 2G"))?;
    let mib = value.checked_mul(scale).ok_or("size too large")?;
    if !(64..=65536).contains(&mib) {
        return Err(format!("{mib} MiB is outside 64M..64G"));
    }
    Ok(mib)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match toolchain::check() {
        Ok(toolchain::Outcome::Ready) => {}
        Ok(toolchain::Outcome::Updated) => return rerun_on_new_toolchain(),
        Err(message) => return fail(&message),
    }
    let result = match cli.command {
        Cmd::Build { release } => artifacts::build_kernel(release, Tests::Without).map(|path| {
            println!("kernel: {}", path.display());
            ExitCode::SUCCESS
        }),
        Cmd::Image { release, cmdline } => image(release, &cmdline),
        Cmd::Qemu(args) => run_qemu(&args),
        Cmd::Test {
            full,
            verbose,
            linux,
            linux_only,
        } => testrun::run(full, verbose, linux.as_deref(), linux_only),
        Cmd::Bench(args) => run_bench(args),
    };
    result.unwrap_or_else(|message| fail(&message))
}

fn run_bench(args: BenchArgs) -> Result<ExitCode, String> {
    if let Some(dir) = &args.import {
        return bench::import(dir);
    }
    let smp = args.smp.unwrap_or(host_cores().min(MAX_GUEST_CPUS));
    let needed_mib = u64::from(smp) * u64::from(args.pages) * u64::from(args.rounds) * 4 / 1024;
    if needed_mib + 256 > u64::from(args.mem) {
        return Err(format!(
            "{smp} threads x {} pages x {} rounds need {needed_mib} MiB of guest memory plus room for the kernel; raise --mem (now {} MiB)",
            args.pages, args.rounds, args.mem
        ));
    }
    let command = std::iter::once("cargo xtask".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let options = bench::Options {
        smp,
        reps: args.reps,
        cpu: args.cpu,
        memory_mib: args.mem,
        pages: args.pages,
        rounds: args.rounds,
        linux: args.linux,
        no_icount: args.no_icount,
        cmdline: args.cmdline,
        command,
    };
    match &args.export {
        Some(dir) => bench::export(&options, dir),
        None => bench::run(&options),
    }
}

/// The CPUs this process may use on the host (at least 1).
fn host_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("xtask: {message}");
    ExitCode::FAILURE
}

/// rustup replaced the compiler this xtask was built with: build and run xtask again.
fn rerun_on_new_toolchain() -> ExitCode {
    if std::env::var_os("XTASK_RERUN").is_some() {
        return fail("the toolchain was updated twice in a row; run the command again");
    }
    eprintln!("xtask: running again on the updated toolchain");
    let status = Command::new("cargo")
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(std::env::args_os().skip(1))
        .env("XTASK_RERUN", "1")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => fail(&format!("cannot run cargo: {e}")),
    }
}

fn image(release: bool, cmdline: &str) -> Result<ExitCode, String> {
    let kernel = artifacts::build_kernel(release, Tests::for_cmdline(cmdline))?;
    let contents = ramdisk::Contents {
        programs: user::build_all()?,
        files: Vec::new(),
    };
    let images = artifacts::make_images(&kernel, cmdline, "kernel", &contents)?;
    println!("BIOS image: {}", images.bios.display());
    println!("UEFI image: {}", images.uefi.display());
    println!();
    println!("To boot a real machine, write one image to a USB stick (this erases the stick;");
    println!("check the device name with `lsblk` first):");
    println!(
        "  sudo dd if={} of=/dev/sdX bs=4M conv=fsync status=progress",
        images.uefi.display()
    );
    println!("Use the UEFI image on UEFI machines and the BIOS image on legacy-BIOS machines.");
    println!("The boot log appears on COM1 (115200 8N1) and on the screen.");
    Ok(ExitCode::SUCCESS)
}

/// Whether the kernel options name the first program.
fn has_init(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|opt| opt.starts_with("init="))
}

/// The name a `--run` program gets in the ramdisk (`/bin/NAME`): its file name, which must be
/// text without spaces.
fn program_name(path: &Path) -> Result<String, String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace))
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "{}: the file name must be text without spaces",
                path.display()
            )
        })
}

/// Adds the `--run` program to the ramdisk as init: `/bin/NAME`, its arguments in
/// `/etc/init.args` (one per line), `init=/bin/NAME` in the options. Returns NAME.
fn prepare_run(
    path: &Path,
    args: &[String],
    contents: &mut ramdisk::Contents,
    cmdline: &mut String,
) -> Result<String, String> {
    let shown = path.display();
    let data = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    user::check_static_elf(&data).map_err(|why| format!("{shown} {why}"))?;
    let name = program_name(path)?;
    if has_init(cmdline) {
        return Err("--run chooses init itself; remove init= from --cmdline".into());
    }
    if let Some(bad) = args.iter().find(|a| a.contains('\n')) {
        return Err(format!(
            "argument {bad:?} contains a newline, which /etc/init.args cannot carry"
        ));
    }
    if args.iter().any(String::is_empty) {
        return Err("empty arguments cannot be passed through /etc/init.args".into());
    }
    contents.programs.retain(|p| p.name != name);
    contents.programs.push(user::Program {
        name: name.clone(),
        path: path.to_owned(),
    });
    contents.files.push(ramdisk::init_args(args));
    cmdline.push_str(&format!(" init=/bin/{name}"));
    Ok(name)
}

/// The status in the kernel's line `init: /bin/NAME exited with status N`.
fn init_status(serial: &[String], name: &str) -> Option<i32> {
    let needle = format!("init: /bin/{name} exited with status ");
    serial.iter().rev().find_map(|line| {
        let at = line.find(&needle)?;
        let rest = line[at + needle.len()..].trim();
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    })
}

/// The QEMU profile `cargo xtask qemu` asks for.
fn qemu_profile(args: &QemuArgs, name: &str, firmware: Firmware) -> Profile {
    let cpus = args
        .smp
        .unwrap_or_else(|| host_cores().clamp(2, MAX_GUEST_CPUS));
    let mut profile = Profile::new(name, firmware, cpus);
    profile.memory_mib = args.mem;
    profile.cpu_model = args.cpu.clone();
    profile.machine = match args.machine {
        MachineArg::Q35 => Machine::Q35,
        MachineArg::Pc => Machine::Pc,
    };
    profile.accel = match args.accel {
        AccelArg::Tcg => Accel::Tcg,
        AccelArg::Kvm => Accel::Kvm,
    };
    profile
}

/// `qemu --run PATH --linux BZIMAGE`: boots Linux with the program as /init (beside the user
/// programs in /bin), streams the serial output, and exits with the program's status, which
/// Linux reports when its init exits (`Attempted to kill init! exitcode=0x0000SS00`).
fn run_under_linux(
    qemu: &Qemu,
    args: &QemuArgs,
    bzimage: &Path,
    path: &Path,
) -> Result<ExitCode, String> {
    testrun::check_bzimage(bzimage)?;
    let name = program_name(path)?;
    let mut programs = user::build_all()?;
    programs.retain(|p| p.name != name);
    programs.push(user::Program {
        name: name.clone(),
        path: path.to_owned(),
    });
    let dir = artifacts::target_dir().join("qemu");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cpio = dir.join("linux-initramfs.cpio");
    testrun::linux_initramfs(&programs, &name, &cpio)?;
    let mut profile = qemu_profile(args, "qemu-linux", Firmware::Bios);
    let disk = testrun::prepare_linux_boot(&mut profile, &dir, bzimage, &cpio, &args.args)?;
    let log = dir.join("serial.log");
    eprintln!(
        "xtask: booting {} with {} as /init (serial copy in {})",
        bzimage.display(),
        path.display(),
        log.display()
    );
    let options = RunOptions {
        echo: Echo::Raw,
        serial_log: Some(log),
        ..RunOptions::default()
    };
    let result = qemu
        .run(&profile, &disk, &options)
        .map_err(|e| e.to_string())?;
    match linux_init_status(&result.serial) {
        Some(status) => {
            println!("{} exited with status {status} (Linux)", path.display());
            Ok(ExitCode::from(status))
        }
        None => Err(format!(
            "{}: Linux never reported its init's exit ({})",
            path.display(),
            result.outcome
        )),
    }
}

/// The exit status in Linux's panic line when init exits: `exitcode=0x0000SS00`, SS the status
/// (a death by signal N shows as N in the low byte, reported here as 128 + N).
fn linux_init_status(serial: &[String]) -> Option<u8> {
    let needle = "Attempted to kill init! exitcode=0x";
    serial.iter().rev().find_map(|line| {
        let at = line.find(needle)?;
        let hex: String = line[at + needle.len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        let code = u32::from_str_radix(&hex, 16).ok()?;
        let signal = code & 0x7f;
        Some(if signal == 0 {
            (code >> 8) as u8
        } else {
            128 + signal as u8
        })
    })
}

fn run_qemu(args: &QemuArgs) -> Result<ExitCode, String> {
    let qemu = install::ensure_qemu(args.uefi)?;
    // Check the program before the builds, so that a wrong path fails at once.
    if let Some(path) = &args.run {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        user::check_static_elf(&data).map_err(|why| format!("{} {why}", path.display()))?;
    }
    if let (Some(bzimage), Some(path)) = (&args.linux, &args.run) {
        return run_under_linux(&qemu, args, bzimage, path);
    }
    let kernel = artifacts::build_kernel(args.release, Tests::for_cmdline(&args.cmdline))?;
    let mut contents = ramdisk::Contents {
        programs: user::build_all()?,
        files: Vec::new(),
    };
    let mut cmdline = args.cmdline.clone();
    let run = match &args.run {
        Some(path) => Some(prepare_run(path, &args.args, &mut contents, &mut cmdline)?),
        None => None,
    };
    if !has_init(&cmdline) {
        cmdline.push_str(" init=/bin/demo");
    }
    if args.exit || run.is_some() {
        cmdline.push_str(" exit");
    }
    let images = artifacts::make_images(&kernel, cmdline.trim(), "qemu", &contents)?;
    let firmware = if args.uefi {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let profile = qemu_profile(args, "qemu", firmware);
    let image = if args.uefi {
        &images.uefi
    } else {
        &images.bios
    };
    let log = artifacts::target_dir().join("qemu").join("serial.log");
    eprintln!(
        "xtask: booting {} (serial copy in {})",
        profile.describe(),
        log.display()
    );
    if args.exit || run.is_some() {
        let options = RunOptions {
            echo: Echo::Raw,
            serial_log: Some(log),
            ..RunOptions::default()
        };
        let result = qemu
            .run(&profile, image, &options)
            .map_err(|e| e.to_string())?;
        if let (Some(name), Some(path)) = (&run, &args.run) {
            return match init_status(&result.serial, name) {
                Some(status) => {
                    println!("{} exited with status {status}", path.display());
                    Ok(ExitCode::from(u8::try_from(status).unwrap_or(255)))
                }
                None => {
                    eprintln!(
                        "xtask: {}: the kernel never reported its exit status ({}); last serial lines:",
                        path.display(),
                        result.outcome
                    );
                    for line in result.last_lines(15) {
                        eprintln!("  | {line}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            };
        }
        return match result.outcome {
            Outcome::Success | Outcome::Killed => Ok(ExitCode::SUCCESS),
            other => Err(format!("QEMU: {other}")),
        };
    }
    match qemu
        .run_interactive(&profile, image, &log)
        .map_err(|e| e.to_string())?
    {
        Outcome::Success | Outcome::Killed => Ok(ExitCode::SUCCESS),
        other => Err(format!("QEMU: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_init_status() {
        let serial: Vec<String> = [
            "[    0.5] cpu0 INFO  init: started /bin/prog as process 1",
            "hello",
            "[    0.9] cpu1 INFO  init: /bin/prog exited with status 139",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(init_status(&serial, "prog"), Some(139));
        assert_eq!(init_status(&serial, "other"), None);
        assert_eq!(init_status(&serial[..2], "prog"), None);
    }

    #[test]
    fn finds_linux_init_status() {
        let line = |code: &str| {
            vec![format!(
                "[    2.1] Kernel panic - not syncing: Attempted to kill init! exitcode={code}"
            )]
        };
        assert_eq!(linux_init_status(&line("0x00000000")), Some(0));
        assert_eq!(linux_init_status(&line("0x00000100")), Some(1));
        assert_eq!(linux_init_status(&line("0x0000000b")), Some(139));
        assert_eq!(linux_init_status(&["no panic".to_owned()]), None);
    }

    #[test]
    fn run_packs_program_and_arguments() {
        let mut contents = ramdisk::Contents::default();
        let mut cmdline = String::from("log=debug");
        let exe = std::env::current_exe().expect("test binary");
        let args = ["a b".to_owned(), "c".to_owned()];
        let name = prepare_run(&exe, &args, &mut contents, &mut cmdline);
        // The test binary is dynamically linked on most hosts: then the refusal says so.
        match name {
            Ok(name) => {
                assert!(cmdline.ends_with(&format!("init=/bin/{name}")));
                assert_eq!(contents.files[0].1, b"a b\nc\n");
            }
            Err(e) => assert!(e.contains("dynamically linked"), "{e}"),
        }
        let bad = ["x\ny".to_owned()];
        let mut cmdline = String::new();
        assert!(has_init("a init=/bin/x b") && !has_init("initx"));
        let err = prepare_run(Path::new("/nonexistent"), &bad, &mut contents, &mut cmdline);
        assert!(err.unwrap_err().starts_with("cannot read /nonexistent"));
    }
}
