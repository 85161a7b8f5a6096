//! `cargo xtask`: the project's command line.
//!
//! - `build`: the kernel ELF
//! - `image`: BIOS and UEFI disk images, and how to put them on a USB stick
//! - `qemu`: boot the kernel under QEMU with the serial console on this terminal; `--run PATH`
//!   runs one program as init and exits with its status; `--debian PKG,...` puts Debian's
//!   packages into the ramdisk (debian.rs), whose programs `--run` then runs, dynamically linked
//!   ones included
//! - `rootfs`: the root file system of Debian's packages with a shell (rootfs.rs), which
//!   `qemu --root` boots
//! - `test`: host tests, then the in-kernel suites under the QEMU profiles, then the root's
//!   serial session and acceptance suite (acceptance.rs); `--linux BZIMAGE` also runs the user
//!   test suite and the acceptance suite under a real Linux kernel; the screen test (screen.rs)
//!   types through QEMU's monitor and reads the framebuffer back
//! - `fuzz`: the system-call fuzzer (user/fuzz) on this kernel, and beside Linux kernels with
//!   `--linux BZIMAGE`, every divergence grouped by call (fuzz.rs)
//! - `soak`: one boot that runs the fault torture, the user suite and the fuzzer in rounds for
//!   N minutes and ends with the kernel's check that nothing leaked (soak.rs)
//! - `bench`: the page-fault benchmark (bench/), ours with the per-VMA lock on and off, and
//!   Linux kernels beside it with `--linux BZIMAGE`
//! - `check-breaks`: the mutation check of the VMA lock's loom models (breaks.rs)
//!
//! Every image carries the user programs (user.rs) in its ramdisk at `/bin/NAME`.
//!
//! Before anything else it makes sure the nightly toolchain can build the project
//! (toolchain.rs), and where QEMU or OVMF are needed and missing, installs them (install.rs).

mod acceptance;
mod artifacts;
mod bench;
mod breaks;
mod debian;
mod fuzz;
mod install;
mod ramdisk;
mod rootfs;
mod screen;
mod soak;
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
        /// Carry the root file system of `cargo xtask rootfs` and boot to its login shell on
        /// the serial console.
        #[arg(long)]
        root: bool,
    },
    /// Build the root file system (Debian's busybox, coreutils, procps, stress-ng, python3 and
    /// a login shell on the serial console) that `qemu --root` boots (target/rootfs/root/).
    Rootfs,
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
        /// Only the root file system's steps: the serial session and the acceptance suite
        /// (with --linux, under Linux too).
        #[arg(long, conflicts_with = "linux_only")]
        acceptance_only: bool,
        /// Run only the screen test: keys typed through QEMU's monitor, the framebuffer read
        /// back with screendump.
        #[arg(long, conflicts_with_all = ["linux_only", "acceptance_only"])]
        screen_only: bool,
    },
    /// The system-call fuzzer: hostile arguments and the shadow model, on this kernel and,
    /// with --linux, under Linux kernels, every divergence grouped by call.
    Fuzz(FuzzArgs),
    /// Run the fault torture, the user suite and the fuzzer in rounds in one boot for N
    /// minutes, then check that frames, slab objects, VMAs and RCU callbacks are back at their
    /// baseline and that no RCU stall was reported.
    Soak {
        /// How long to start new rounds (the last one runs to its end).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1440))]
        minutes: u32,
        /// Guest CPUs.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GUEST_CPUS)))]
        smp: u32,
        /// Show the serial output live.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Page-fault throughput, scaling and instructions per fault, beside Linux with --linux
    /// (reports in target/bench/).
    Bench(BenchArgs),
    /// The mutation check of the VMA lock's loom models: every deliberately removed check
    /// (kernel/libs/vmalock's `broken!` sites) must make a model fail.
    CheckBreaks {
        /// Only these breaks (default: every one in the sources).
        names: Vec<String>,
    },
}

/// Guest memory of `cargo xtask qemu` without `--mem` or `--root`.
const DEFAULT_MEMORY_MIB: u32 = 512;
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
struct FuzzArgs {
    /// A seed (may be repeated); default: 1.
    #[arg(long = "seed", value_name = "N")]
    seeds: Vec<u64>,
    /// Calls per seed, and shadow-model operations per seed.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    iterations: u64,
    /// Guest CPUs (may be repeated: one boot per kernel and count).
    #[arg(long = "smp", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GUEST_CPUS)))]
    smp: Vec<u32>,
    /// Threads of the shadow model (0: no model).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=64))]
    threads: u32,
    /// A Linux kernel (bzImage) to run the same seeds under, the oracle; may be repeated.
    #[arg(long, value_name = "BZIMAGE")]
    linux: Vec<PathBuf>,
    /// Show each boot's serial output live.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(clap::Args)]
struct QemuArgs {
    /// Number of CPUs (1-16); default: the host's cores, at least 2, so that the demo's threads
    /// fault on several CPUs at once.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GUEST_CPUS)))]
    smp: Option<u32>,
    /// Guest memory, e.g. 512M or 2G; default 512M, 1G with --root.
    #[arg(long, value_parser = parse_memory)]
    mem: Option<u32>,
    /// Boot the root file system of `cargo xtask rootfs` to a login shell on the serial
    /// console (busybox init as /sbin/init).
    #[arg(long, conflicts_with_all = ["debian", "run"])]
    root: bool,
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
    /// Show the screen (the framebuffer console, with the PS/2 keyboard) in a window: QEMU's
    /// `-display` with this value, `gtk` when none is given (`sdl`, or `vnc=:N` for a VNC server
    /// on port 5900+N).
    #[arg(long, value_name = "UI", num_args = 0..=1, default_missing_value = "gtk")]
    display: Option<String>,
    /// Run this program as init (arguments after `--`), leave QEMU when it exits, and exit
    /// with its status: with --debian, a path in those packages (e.g. /usr/bin/hello) runs from
    /// the image, dynamically linked or not; otherwise a static x86_64 program from the host,
    /// packed as /bin/NAME.
    #[arg(long, value_name = "PATH")]
    run: Option<PathBuf>,
    /// Put these Debian packages and their dependencies (Depends, Pre-Depends) into the
    /// ramdisk at /, less /usr/share/{doc,man,locale,info}: fetched with apt-get from Debian's
    /// archive into target/debian/debs/ and unpacked with dpkg-deb into target/debian/root-*/.
    #[arg(long, value_name = "PKG,...", value_delimiter = ',')]
    debian: Vec<String>,
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
        Cmd::Image {
            release,
            cmdline,
            root,
        } => image(release, &cmdline, root),
        Cmd::Rootfs => rootfs::command(),
        Cmd::Qemu(args) => run_qemu(&args),
        Cmd::Test {
            full,
            verbose,
            linux,
            linux_only,
            acceptance_only,
            screen_only,
        } => testrun::run(
            full,
            verbose,
            linux.as_deref(),
            linux_only,
            acceptance_only,
            screen_only,
        ),
        Cmd::Fuzz(args) => fuzz::run(&fuzz::Request {
            seeds: if args.seeds.is_empty() {
                vec![1]
            } else {
                args.seeds
            },
            iterations: args.iterations,
            cpus: if args.smp.is_empty() {
                vec![2]
            } else {
                args.smp
            },
            threads: args.threads,
            linux: args.linux,
            verbose: args.verbose,
        }),
        Cmd::Soak {
            minutes,
            smp,
            verbose,
        } => soak::run(minutes, smp, verbose),
        Cmd::Bench(args) => run_bench(args),
        Cmd::CheckBreaks { names } => breaks::check(&names).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
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

fn image(release: bool, cmdline: &str, root: bool) -> Result<ExitCode, String> {
    let kernel = artifacts::build_kernel(release, Tests::for_cmdline(cmdline))?;
    let root = root.then(rootfs::build).transpose()?;
    let contents = ramdisk::Contents {
        programs: user::build_all()?,
        files: Vec::new(),
        debian_root: root.as_ref().map(|r| r.dir.clone()),
    };
    let mut cmdline = cmdline.to_owned();
    if root.is_some() && !has_init(&cmdline) {
        cmdline.push_str(&format!(" init={}", rootfs::INIT));
    }
    let images = artifacts::make_images(&kernel, cmdline.trim(), "kernel", &contents)?;
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

/// What `--run` starts as init.
#[derive(Debug, PartialEq, Eq)]
enum RunTarget {
    /// A static program on the host, packed as `/bin/NAME`.
    Host { path: PathBuf, name: String },
    /// A program among the `--debian` packages, started at its path in the image.
    Debian { path: String },
}

impl RunTarget {
    /// init's path in the image.
    fn init_path(&self) -> String {
        match self {
            Self::Host { name, .. } => format!("/bin/{name}"),
            Self::Debian { path } => path.clone(),
        }
    }
}

/// Decides what `--run PATH` runs. With `--debian`, an absolute PATH that names a file in the
/// staged packages runs from the image, dynamically linked or not, provided what interprets it
/// is staged too; any other PATH must be a static x86_64 program on the host.
fn run_target(path: &Path, staged: Option<&debian::Staged>) -> Result<RunTarget, String> {
    let shown = path.display();
    if let (Some(staged), Some(text)) = (staged, path.to_str())
        && text.starts_with('/')
        && let Some(host) = staged.find(text).filter(|host| host.is_file())
    {
        if text.contains(char::is_whitespace) {
            return Err(format!("{shown}: the path must be text without spaces"));
        }
        check_staged_program(staged, text, &host, 0)?;
        return Ok(RunTarget::Debian {
            path: text.to_owned(),
        });
    }
    let elsewhere = staged
        .filter(|_| path.is_absolute())
        .map(|s| {
            format!(
                " (it is not in the Debian packages staged: {}; add its package to --debian)",
                s.packages.join(", ")
            )
        })
        .unwrap_or_default();
    let data = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}{elsewhere}"))?;
    user::check_static_elf(&data).map_err(|why| format!("{shown} {why}{elsewhere}"))?;
    Ok(RunTarget::Host {
        path: path.to_owned(),
        name: program_name(path)?,
    })
}

/// Interpreters that may stand between a staged program and what the kernel loads last: a
/// `#!` script's interpreter and that program's dynamic linker.
const MAX_INTERPRETERS: u32 = 2;

/// Checks that `path`, a file in the staged packages (at `host` on this machine), can start:
/// an x86_64 executable whose PT_INTERP is staged too, or a `#!` script whose interpreter is
/// such a program; `depth` counts the interpreters already followed.
fn check_staged_program(
    staged: &debian::Staged,
    path: &str,
    host: &Path,
    depth: u32,
) -> Result<(), String> {
    let data = std::fs::read(host).map_err(|e| format!("cannot read {}: {e}", host.display()))?;
    let interpreter = match data.strip_prefix(b"#!") {
        Some(script) => {
            let line = script.split(|&b| b == b'\n').next().unwrap_or_default();
            let interpreter = String::from_utf8_lossy(line)
                .split_whitespace()
                .next()
                .map(str::to_owned);
            Some(interpreter.ok_or_else(|| format!("{path}: its #! line names no program"))?)
        }
        None => user::elf_interpreter(&data).map_err(|why| format!("{path} {why}"))?,
    };
    let Some(interpreter) = interpreter else {
        return Ok(());
    };
    if depth == MAX_INTERPRETERS {
        return Err(format!(
            "{path} is an interpreter that needs an interpreter itself ({interpreter})"
        ));
    }
    let Some(found) = staged.find(&interpreter).filter(|host| host.is_file()) else {
        let glibc = if interpreter.contains("/ld-linux") {
            " (glibc's dynamic linker is in libc6: --debian libc6)"
        } else {
            ""
        };
        return Err(format!(
            "{path} needs {interpreter}, which is not in the Debian packages staged ({}); \
             add its package to --debian{glibc}",
            staged.packages.join(", ")
        ));
    };
    check_staged_program(staged, &interpreter, &found, depth + 1)
}

/// Adds the `--run` target to the ramdisk as init: a host program as `/bin/NAME`, its arguments
/// in `/etc/init.args` (one per line), `init=PATH` in the options.
fn prepare_run(
    target: &RunTarget,
    args: &[String],
    contents: &mut ramdisk::Contents,
    cmdline: &mut String,
) -> Result<(), String> {
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
    if let RunTarget::Host { path, name } = target {
        contents.programs.retain(|p| p.name != *name);
        contents.programs.push(user::Program {
            name: name.clone(),
            path: path.clone(),
        });
    }
    contents.files.push(ramdisk::init_args(args));
    cmdline.push_str(&format!(" init={}", target.init_path()));
    Ok(())
}

/// The status in the kernel's line `init: PATH exited with status N`, PATH init's path in the
/// image.
fn init_status(serial: &[String], init_path: &str) -> Option<i32> {
    let needle = format!("init: {init_path} exited with status ");
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
    profile.memory_mib = args.mem.unwrap_or(if args.root {
        rootfs::DEFAULT_MEMORY_MIB
    } else {
        DEFAULT_MEMORY_MIB
    });
    profile.cpu_model = args.cpu.clone();
    profile.machine = match args.machine {
        MachineArg::Q35 => Machine::Q35,
        MachineArg::Pc => Machine::Pc,
    };
    profile.accel = match args.accel {
        AccelArg::Tcg => Accel::Tcg,
        AccelArg::Kvm => Accel::Kvm,
    };
    if let Some(display) = &args.display {
        // After the qemu crate's `-display none`, so it wins.
        profile
            .extra_args
            .extend(["-display".into(), display.clone()]);
    }
    profile
}

/// `qemu --run PATH --linux BZIMAGE`: boots Linux with the program as /init (beside the user
/// programs in /bin and the `--debian` packages), streams the serial output, and exits with the
/// program's status, which Linux reports when its init exits
/// (`Attempted to kill init! exitcode=0x0000SS00`).
fn run_under_linux(
    qemu: &Qemu,
    args: &QemuArgs,
    bzimage: &Path,
    path: &Path,
    target: &RunTarget,
    staged: Option<&debian::Staged>,
) -> Result<ExitCode, String> {
    testrun::check_bzimage(bzimage)?;
    let mut programs = user::build_all()?;
    if let RunTarget::Host { path, name } = target {
        programs.retain(|p| p.name != *name);
        programs.push(user::Program {
            name: name.clone(),
            path: path.clone(),
        });
    }
    let dir = artifacts::target_dir().join("qemu");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cpio = dir.join("linux-initramfs.cpio");
    let debian_root = staged.map(|s| s.root.as_path());
    testrun::linux_initramfs(&programs, &target.init_path(), debian_root, &cpio)?;
    let mut profile = qemu_profile(args, "qemu-linux", Firmware::Bios);
    let disk = testrun::prepare_linux_boot(&mut profile, &dir, bzimage, &cpio, &args.args)?;
    let log = dir.join("serial.log");
    eprintln!(
        "xtask: booting {} ({}) with {} as /init (serial copy in {})",
        testrun::linux_label(bzimage),
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

/// Says how large the ramdisk with the Debian packages came out.
fn report_ramdisk(ramdisk: &Path, staged: &debian::Staged) {
    let mib = std::fs::metadata(ramdisk).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0));
    eprintln!(
        "xtask: ramdisk {}: {mib:.1} MiB with {} Debian package(s): {}",
        ramdisk.display(),
        staged.packages.len(),
        staged.packages.join(", ")
    );
}

fn run_qemu(args: &QemuArgs) -> Result<ExitCode, String> {
    let qemu = install::ensure_qemu(args.uefi)?;
    let staged = if args.debian.is_empty() {
        None
    } else {
        Some(debian::stage(&args.debian)?)
    };
    // Check the program before the builds, so that a wrong path fails at once.
    let target = args
        .run
        .as_deref()
        .map(|path| run_target(path, staged.as_ref()))
        .transpose()?;
    if let (Some(bzimage), Some(path), Some(target)) = (&args.linux, &args.run, &target) {
        return run_under_linux(&qemu, args, bzimage, path, target, staged.as_ref());
    }
    let kernel = artifacts::build_kernel(args.release, Tests::for_cmdline(&args.cmdline))?;
    let root = args.root.then(rootfs::build).transpose()?;
    let mut contents = ramdisk::Contents {
        programs: user::build_all()?,
        files: Vec::new(),
        debian_root: match &root {
            Some(root) => Some(root.dir.clone()),
            None => staged.as_ref().map(|s| s.root.clone()),
        },
    };
    let mut cmdline = args.cmdline.clone();
    if let Some(target) = &target {
        prepare_run(target, &args.args, &mut contents, &mut cmdline)?;
    }
    if !has_init(&cmdline) {
        let init = if root.is_some() {
            rootfs::INIT
        } else {
            "/bin/demo"
        };
        cmdline.push_str(&format!(" init={init}"));
    }
    if args.exit || target.is_some() {
        cmdline.push_str(" exit");
    }
    let images = artifacts::make_images(&kernel, cmdline.trim(), "qemu", &contents)?;
    if let Some(staged) = &staged {
        report_ramdisk(&images.ramdisk, staged);
    }
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
    if args.exit || target.is_some() {
        let options = RunOptions {
            echo: Echo::Raw,
            serial_log: Some(log),
            ..RunOptions::default()
        };
        let result = qemu
            .run(&profile, image, &options)
            .map_err(|e| e.to_string())?;
        if let (Some(target), Some(path)) = (&target, &args.run) {
            return match init_status(&result.serial, &target.init_path()) {
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
        // A script waits for the kernel's own end: QEMU killed by a signal (by the host's
        // out-of-memory killer, say) ends nothing the kernel reported, so it is a failure.
        return match result.outcome {
            Outcome::Success => Ok(ExitCode::SUCCESS),
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
        assert_eq!(init_status(&serial, "/bin/prog"), Some(139));
        assert_eq!(init_status(&serial, "/bin/other"), None);
        assert_eq!(init_status(&serial[..2], "/bin/prog"), None);
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
        // The test binary is dynamically linked on most hosts: then the refusal says so.
        match run_target(&exe, None) {
            Ok(target) => {
                prepare_run(&target, &args, &mut contents, &mut cmdline).unwrap();
                assert!(cmdline.ends_with(&format!(" init={}", target.init_path())));
                assert!(target.init_path().starts_with("/bin/"));
                assert_eq!(contents.programs.last().unwrap().path, exe);
                assert_eq!(contents.files[0].1, b"a b\nc\n");
            }
            Err(e) => assert!(e.contains("dynamically linked"), "{e}"),
        }
        let target = RunTarget::Debian {
            path: "/usr/bin/hello".into(),
        };
        let mut contents = ramdisk::Contents::default();
        let mut cmdline = String::new();
        prepare_run(&target, &args, &mut contents, &mut cmdline).unwrap();
        assert_eq!(cmdline, " init=/usr/bin/hello");
        assert!(contents.programs.is_empty());
        assert_eq!(contents.files, [ramdisk::init_args(&args)]);
        let bad = ["x\ny".to_owned()];
        assert!(prepare_run(&target, &bad, &mut contents, &mut String::new()).is_err());
        assert!(prepare_run(&target, &args, &mut contents, &mut cmdline).is_err());
        assert!(has_init("a init=/bin/x b") && !has_init("initx"));
        let err = run_target(Path::new("/nonexistent"), None);
        assert!(err.unwrap_err().starts_with("cannot read /nonexistent"));
    }

    #[test]
    fn debian_programs_run_from_the_image_when_their_interpreter_is_there() {
        let exe = std::env::current_exe().expect("test binary");
        let data = std::fs::read(&exe).unwrap();
        // This check needs a dynamically linked test binary, as on glibc hosts.
        let Ok(Some(interpreter)) = user::elf_interpreter(&data) else {
            return;
        };
        let root = std::env::temp_dir().join(format!("xtask-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/prog"), &data).unwrap();
        std::fs::write(root.join("usr/bin/script"), b"#!/usr/bin/prog -x\n").unwrap();
        let staged = debian::Staged {
            root: root.clone(),
            packages: vec!["prog".into()],
        };
        let err = run_target(Path::new("/usr/bin/prog"), Some(&staged)).unwrap_err();
        assert!(
            err.contains(&format!("/usr/bin/prog needs {interpreter}"))
                && err.contains("--debian libc6"),
            "{err}"
        );
        let err = run_target(Path::new("/usr/bin/script"), Some(&staged)).unwrap_err();
        assert!(err.contains("/usr/bin/prog needs"), "{err}");
        // With the dynamic linker staged (the host's, itself static), both run from the image.
        let linker = root.join(interpreter.trim_start_matches('/'));
        std::fs::create_dir_all(linker.parent().unwrap()).unwrap();
        std::fs::copy(&interpreter, &linker).unwrap();
        for path in ["/usr/bin/prog", "/usr/bin/script"] {
            assert_eq!(
                run_target(Path::new(path), Some(&staged)),
                Ok(RunTarget::Debian { path: path.into() })
            );
        }
        // A path outside the staged root is a host program, held to the static-only rule.
        let err = run_target(&exe, Some(&staged)).unwrap_err();
        assert!(
            err.contains("not in the Debian packages staged: prog"),
            "{err}"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
