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
    let archive = bookworm_archive_uri(&texts).ok_or(
        "no apt source serves Debian's bookworm suite, so xtask cannot tell where its backports \
         are; add bookworm-backports to apt's sources by hand",
    )?;
    let text = format!(
        "Types: deb\nURIs: {archive}\nSuites: bookworm-backports\nComponents: main\n{signed_by}"
    );
    std::fs::write(BACKPORTS_SOURCES, text)
        .map_err(|e| format!("cannot write {BACKPORTS_SOURCES}: {e}"))
}

/// The archive address of the apt source that serves Debian's `bookworm` suite (the machine's
/// own mirror), from apt's sources in either format: deb822 stanzas (`URIs:` and `Suites:`) or
/// one-line `deb URI SUITE COMPONENTS...` entries.
fn bookworm_archive_uri(texts: &[String]) -> Option<String> {
    for text in texts {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|line| {
                    let value = line.trim().strip_prefix(name)?.strip_prefix(':')?;
                    Some(
                        value
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect::<Vec<_>>(),
                    )
                })
            };
            if let (Some(uris), Some(suites)) = (field("URIs"), field("Suites"))
                && suites.iter().any(|s| s == "bookworm")
                && let Some(uri) = uris.into_iter().next()
            {
                return Some(uri);
            }
        }
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            // `deb [options] URI SUITE COMPONENTS...`
            let rest = match words.first() {
                Some(&"deb") => &words[1..],
                _ => continue,
            };
            let rest = match rest.first() {
                Some(option) if option.starts_with('[') => {
                    let end = rest.iter().position(|w| w.ends_with(']'))?;
                    &rest[end + 1..]
                }
                _ => rest,
            };
            if rest.get(1) == Some(&"bookworm") {
                return Some(rest[0].to_owned());
            }
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::bookworm_archive_uri;

    #[test]
    fn finds_the_mirror_that_serves_bookworm() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            bookworm_archive_uri(&[deb822.to_owned()]).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "# deb http://old.example/debian bookworm main\n\
                        deb [signed-by=/k.gpg arch=amd64] http://other.example/debian bookworm main contrib\n";
        assert_eq!(
            bookworm_archive_uri(&[one_line.to_owned()]).as_deref(),
            Some("http://other.example/debian")
        );
        let security_only = "deb http://mirror.example/debian-security bookworm-security main\n";
        assert_eq!(bookworm_archive_uri(&[security_only.to_owned()]), None);
    }
}
