//! Brings QEMU and OVMF (and musl-gcc, for the C test program) onto the machine when they are
//! missing.
//!
//! As root on Debian or Ubuntu it installs `qemu-system-x86` and `ovmf` with apt-get, saying
//! so; on Debian 12 from bookworm-backports (adding that suite to apt's sources if missing),
//! since bookworm's own QEMU 7.2 emulates no x2APIC under TCG. Anywhere else it prints the
//! command for the user's system and fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use qemu::Qemu;

use crate::toolchain::run;

const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

/// QEMU, with OVMF when `need_uefi`; installs them first where it can.
pub fn ensure_qemu(need_uefi: bool) -> Result<Qemu, String> {
    if let Ok(qemu) = Qemu::find()
        && (!need_uefi || qemu.ovmf().is_some())
    {
        return Ok(qemu);
    }
    let os = OsRelease::read();
    if !(os.is_debian_like() && is_root()) {
        return Err(format!(
            "QEMU{} is missing; install it with: {}",
            if need_uefi {
                " or its UEFI firmware (OVMF)"
            } else {
                ""
            },
            os.install_hint()
        ));
    }
    if os.codename == "bookworm" {
        ensure_backports()?;
    }
    eprintln!("xtask: installing qemu-system-x86 and ovmf with apt-get");
    let mut update = Command::new("apt-get");
    update.arg("update").arg("-q");
    run(&mut update)?;
    let mut install = Command::new("apt-get");
    install.env("DEBIAN_FRONTEND", "noninteractive");
    install.args(["install", "-y", "-q", "--no-install-recommends"]);
    if os.codename == "bookworm" {
        install.args(["-t", "bookworm-backports"]);
    }
    install.args(["qemu-system-x86", "ovmf"]);
    run(&mut install)?;
    let qemu =
        Qemu::find().map_err(|e| format!("QEMU still not usable after installing it: {e}"))?;
    if need_uefi && qemu.ovmf().is_none() {
        return Err("OVMF still not found after installing the ovmf package".into());
    }
    Ok(qemu)
}

/// `musl-gcc` (for the C test program); on Debian or Ubuntu, as root, installs musl-tools with
/// apt-get when it is missing.
pub fn ensure_musl_gcc() -> Result<PathBuf, String> {
    if let Some(path) = find_in_path("musl-gcc") {
        return Ok(path);
    }
    let os = OsRelease::read();
    if !(os.is_debian_like() && is_root()) {
        let hint = if os.is_debian_like() {
            "sudo apt-get install musl-tools"
        } else {
            "your system's musl package (it provides musl-gcc)"
        };
        return Err(format!("musl-gcc is missing; install it with: {hint}"));
    }
    eprintln!("xtask: installing musl-tools (musl-gcc) with apt-get");
    let mut update = Command::new("apt-get");
    update.arg("update").arg("-q");
    run(&mut update)?;
    let mut install = Command::new("apt-get");
    install.env("DEBIAN_FRONTEND", "noninteractive");
    install.args([
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "musl-tools",
    ]);
    run(&mut install)?;
    find_in_path("musl-gcc")
        .ok_or_else(|| "musl-gcc still missing after installing musl-tools".into())
}

/// The first executable file called `name` in `$PATH`.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Adds bookworm-backports to apt's sources unless some source already names it.
fn ensure_backports() -> Result<(), String> {
    let mut texts = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(text);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in dir.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                texts.push(text);
            }
        }
    }
    let enabled = texts.iter().flat_map(|t| t.lines()).any(|line| {
        let line = line.trim();
        !line.starts_with('#') && line.contains("bookworm-backports")
    });
    if enabled {
        return Ok(());
    }
    eprintln!(
        "xtask: adding Debian's bookworm-backports suite to apt's sources ({BACKPORTS_SOURCES}) \
         for QEMU 9 or newer"
    );
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let signed_by = if Path::new(keyring).exists() {
        format!("Signed-By: {keyring}\n")
    } else {
        String::new()
    };
    let text = format!(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n{signed_by}"
    );
    std::fs::write(BACKPORTS_SOURCES, text)
        .map_err(|e| format!("cannot write {BACKPORTS_SOURCES}: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The fields of /etc/os-release that decide how to install things.
struct OsRelease {
    id: String,
    id_like: String,
    codename: String,
}

impl OsRelease {
    fn read() -> Self {
        let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        Self {
            id: field("ID"),
            id_like: field("ID_LIKE"),
            codename: field("VERSION_CODENAME"),
        }
    }

    fn is_debian_like(&self) -> bool {
        self.id == "debian" || self.id == "ubuntu" || self.id_like.split(' ').any(|i| i == "debian")
    }

    fn install_hint(&self) -> &'static str {
        match self.id.as_str() {
            _ if cfg!(target_os = "macos") => "brew install qemu",
            "debian" if self.codename == "bookworm" => {
                "sudo apt-get install -t bookworm-backports qemu-system-x86 ovmf (after enabling bookworm-backports)"
            }
            "fedora" | "rhel" | "centos" => "sudo dnf install qemu-system-x86 edk2-ovmf",
            "arch" | "manjaro" => "sudo pacman -S qemu-system-x86 edk2-ovmf",
            "opensuse-tumbleweed" | "opensuse-leap" => {
                "sudo zypper install qemu-x86 qemu-ovmf-x86_64"
            }
            _ if self.is_debian_like() => "sudo apt-get install qemu-system-x86 ovmf",
            _ => "your system's qemu-system-x86_64 and OVMF (edk2) packages",
        }
    }
}
