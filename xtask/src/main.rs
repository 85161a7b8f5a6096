//! `cargo xtask`: the project's command line.
//!
//! - `build`: the kernel ELF
//! - `image`: BIOS and UEFI disk images, and how to put them on a USB stick
//! - `qemu`: boot the kernel under QEMU with the serial console on this terminal
//! - `test`: host tests, then the in-kernel suites under the QEMU profiles
//!
//! Before anything else it makes sure the nightly toolchain can build the project
//! (toolchain.rs), and where QEMU or OVMF are needed and missing, installs them (install.rs).

mod artifacts;
mod install;
mod ramdisk;
mod symbols;
mod testrun;
mod toolchain;

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use qemu::{Accel, Echo, Firmware, Machine, Outcome, Profile, RunOptions};

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
    },
}

#[derive(clap::Args)]
struct QemuArgs {
    /// Number of CPUs (1-16).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    smp: u32,
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
        Cmd::Build { release } => artifacts::build_kernel(release).map(|path| {
            println!("kernel: {}", path.display());
            ExitCode::SUCCESS
        }),
        Cmd::Image { release, cmdline } => image(release, &cmdline),
        Cmd::Qemu(args) => run_qemu(&args),
        Cmd::Test { full, verbose } => testrun::run(full, verbose),
    };
    result.unwrap_or_else(|message| fail(&message))
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
    let kernel = artifacts::build_kernel(release)?;
    let images = artifacts::make_images(&kernel, cmdline, "kernel")?;
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

fn run_qemu(args: &QemuArgs) -> Result<ExitCode, String> {
    let qemu = install::ensure_qemu(args.uefi)?;
    let kernel = artifacts::build_kernel(args.release)?;
    let mut cmdline = args.cmdline.clone();
    if args.exit {
        cmdline.push_str(" exit");
    }
    let images = artifacts::make_images(&kernel, cmdline.trim(), "qemu")?;
    let firmware = if args.uefi {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let mut profile = Profile::new("qemu", firmware, args.smp);
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
    let outcome = if args.exit {
        let options = RunOptions {
            echo: Echo::Raw,
            serial_log: Some(log),
            ..RunOptions::default()
        };
        qemu.run(&profile, image, &options)
            .map_err(|e| e.to_string())?
            .outcome
    } else {
        qemu.run_interactive(&profile, image, &log)
            .map_err(|e| e.to_string())?
    };
    match outcome {
        Outcome::Success | Outcome::Killed => Ok(ExitCode::SUCCESS),
        other => Err(format!("QEMU: {other}")),
    }
}
