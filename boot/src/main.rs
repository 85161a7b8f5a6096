//! The image builder: turns the kernel ELF and a ramdisk into a BIOS disk image and a UEFI disk
//! image with the `bootloader` crate.
//!
//! `cargo xtask` runs this as a child process (`cargo run -p boot -- ...`) so that xtask itself
//! never depends on the bootloader crate, whose build needs a recent nightly.
//!
//! Usage: `boot --kernel ELF --ramdisk CPIO [--bios OUT] [--uefi OUT]`

use std::path::PathBuf;
use std::process::ExitCode;

use bootloader::{BootConfig, DiskImageBuilder};

struct Args {
    kernel: PathBuf,
    ramdisk: PathBuf,
    bios: Option<PathBuf>,
    uefi: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut kernel = None;
    let mut ramdisk = None;
    let mut bios = None;
    let mut uefi = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--kernel" => &mut kernel,
            "--ramdisk" => &mut ramdisk,
            "--bios" => &mut bios,
            "--uefi" => &mut uefi,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or_else(|| format!("{flag} needs a path"))?;
        *slot = Some(PathBuf::from(value));
    }
    Ok(Args {
        kernel: kernel.ok_or("--kernel is required")?,
        ramdisk: ramdisk.ok_or("--ramdisk is required")?,
        bios,
        uefi,
    })
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut builder = DiskImageBuilder::new(args.kernel.clone());
    builder.set_ramdisk(args.ramdisk.clone());
    // The kernel prints its own log; keep the bootloader's output to what matters.
    let mut config = BootConfig::default();
    config.log_level = bootloader_boot_config::LevelFilter::Warn;
    builder.set_boot_config(&config);
    if let Some(path) = &args.bios {
        builder
            .create_bios_image(path)
            .map_err(|e| format!("cannot write the BIOS image {}: {e:#}", path.display()))?;
    }
    if let Some(path) = &args.uefi {
        builder
            .create_uefi_image(path)
            .map_err(|e| format!("cannot write the UEFI image {}: {e:#}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("boot: {message}");
            ExitCode::FAILURE
        }
    }
}
