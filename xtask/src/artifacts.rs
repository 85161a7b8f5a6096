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

/// Whether a kernel carries the in-kernel tests: its cargo feature `ktest` compiles in the
/// tests, their runner and the hooks they use. Production kernels leave them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tests {
    Without,
    With,
}

impl Tests {
    /// Test images for kernel options that ask for the test run (`test`), production otherwise.
    /// As in the kernel, the last valid `test` option counts.
    pub fn for_cmdline(cmdline: &str) -> Self {
        let runs_tests = initrd::cmdline::parse(cmdline)
            .filter(|opt| opt.key == "test")
            .filter_map(|opt| initrd::cmdline::parse_bool(opt.value))
            .last()
            == Some(true);
        if runs_tests {
            Self::With
        } else {
            Self::Without
        }
    }
}

/// Builds the kernel; the compiler's own output is what the user sees on failure. A kernel with
/// its tests is built under a profile of its own (`ktest`, `ktest-release`: see Cargo.toml), so
/// that it lands beside the production kernel instead of replacing it.
pub fn build_kernel(release: bool, tests: Tests) -> Result<PathBuf, String> {
    let mut cmd = Command::new(cargo());
    cmd.args([
        "build",
        "--package",
        "kernel",
        "--target",
        "x86_64-unknown-none",
    ]);
    let profile = match (release, tests) {
        (false, Tests::Without) => "debug",
        (true, Tests::Without) => "kernel-release",
        (false, Tests::With) => "ktest",
        (true, Tests::With) => "ktest-release",
    };
    // `debug` is the directory of cargo's default profile, `dev`, which needs no option.
    if profile != "debug" {
        cmd.args(["--profile", profile]);
    }
    if tests == Tests::With {
        cmd.args(["--features", "ktest"]);
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
    let loaded_kernel = dir.join(format!("{name}-kernel.elf"));
    strip_debug_info(kernel, &loaded_kernel)?;
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
        .arg(&loaded_kernel)
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

/// Writes `kernel` without its debug information to `to`: the images carry this copy. The
/// loaders read the whole file (the BIOS stage through the disk services of real mode, slow
/// under TCG), and nothing in the machine uses the DWARF sections (three quarters of a test
/// kernel); the kernel's backtraces use the symbol map in the ramdisk, made from the original.
fn strip_debug_info(kernel: &Path, to: &Path) -> Result<(), String> {
    crate::toolchain::run(
        Command::new(crate::toolchain::llvm_tool("llvm-objcopy")?)
            .arg("--strip-debug")
            .arg(kernel)
            .arg(to),
    )
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::Tests;

    #[test]
    fn the_test_option_selects_a_kernel_with_its_tests() {
        assert_eq!(Tests::for_cmdline("log=debug test exit"), Tests::With);
        assert_eq!(Tests::for_cmdline("test=on"), Tests::With);
        assert_eq!(Tests::for_cmdline("test test=off"), Tests::Without);
        assert_eq!(Tests::for_cmdline("test test=maybe"), Tests::With);
        assert_eq!(
            Tests::for_cmdline("init=/bin/test ktest.filter=test"),
            Tests::Without
        );
        assert_eq!(Tests::for_cmdline(""), Tests::Without);
    }
}
