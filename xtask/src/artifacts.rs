//! Building what QEMU and real machines boot: the kernel ELF, the ramdisk, the disk images.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ramdisk::Contents;

/// Where everything xtask makes goes (under the workspace's target directory).
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Builds the kernel; the compiler's own output is what the user sees on failure.
pub fn build_kernel(release: bool) -> Result<PathBuf, String> {
    let mut cmd = Command::new(cargo());
    cmd.args([
        "build",
        "--package",
        "kernel",
        "--target",
        "x86_64-unknown-none",
    ]);
    let profile = if release { "kernel-release" } else { "debug" };
    if release {
        cmd.args(["--profile", profile]);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("the kernel did not build (the compiler's messages are above)".into());
    }
    Ok(target_dir()
        .join("x86_64-unknown-none")
        .join(profile)
        .join("kernel"))
}

/// The two disk images made from one kernel and one set of options.
pub struct Images {
    pub ramdisk: PathBuf,
    pub bios: PathBuf,
    pub uefi: PathBuf,
}

/// Packs a ramdisk with `cmdline` and `contents` (the user programs...) and writes both images
/// as `target/images/NAME-{bios,uefi}.img`; the ramdisk stays as `target/images/NAME.cpio`.
pub fn make_images(
    kernel: &Path,
    cmdline: &str,
    name: &str,
    contents: &Contents,
) -> Result<Images, String> {
    let dir = target_dir().join("images");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ramdisk = dir.join(format!("{name}.cpio"));
    crate::ramdisk::pack(cmdline, kernel, contents, &ramdisk)?;
    let images = Images {
        ramdisk,
        bios: dir.join(format!("{name}-bios.img")),
        uefi: dir.join(format!("{name}-uefi.img")),
    };
    // The image builder is a separate program so that xtask never depends on the bootloader
    // crate (see toolchain.rs).
    let status = Command::new(cargo())
        .args(["run", "--quiet", "--package", "boot", "--"])
        .arg("--kernel")
        .arg(kernel)
        .arg("--ramdisk")
        .arg(&images.ramdisk)
        .arg("--bios")
        .arg(&images.bios)
        .arg("--uefi")
        .arg(&images.uefi)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("the image builder (boot/) failed; its messages are above".into());
    }
    Ok(images)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
