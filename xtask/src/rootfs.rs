//! The root file system: `cargo xtask rootfs`, booted by `cargo xtask qemu --root` and by the
//! acceptance suite (acceptance.rs).
//!
//! The root is Debian's packages ([`PACKAGES`] and their dependencies, staged by debian.rs)
//! with what their maintainer scripts and an installer would have added: the accounts
//! (`/etc/passwd`, `/etc/group`), `/etc/profile` (PATH, PS1), `/etc/hostname`, busybox's init
//! with an `/etc/inittab` that keeps a login shell (`-/bin/sh`) on the serial console
//! `/dev/ttyS0` (its open by the new session's leader makes the line its controlling terminal,
//! so the shell has job control), and a link to `/bin/busybox` for every applet that no
//! package provides as a program of its own (`ls` stays coreutils', `ps` procps'; `sh`, `init`
//! and `vi` are busybox's). The acceptance scripts (`xtask/acceptance/`) go to `/acceptance/`.
//!
//! The tree is made in `target/rootfs/root/`: the staged Debian root hard-linked (nothing
//! copied; no file of the staged root is ever written through its link) and the additions
//! beside it, remade from scratch by every build, so that edits to the scripts or the files
//! below always reach the next boot. This module owns `target/rootfs/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts;
use crate::debian;
use crate::toolchain::{capture, run};

/// The packages of the root: the shell and its applets, the GNU tools, procps (ps, top, free),
/// stress-ng and Python with its standard library; their dependencies come with them.
pub const PACKAGES: &[&str] = &[
    "busybox",
    "libc6",
    "coreutils",
    "procps",
    "stress-ng",
    "python3-minimal",
    // Python's compiled standard modules (mmap, ctypes, json's scanner...).
    "libpython3.11-stdlib",
    // The terminal descriptions (terminfo) that top and the other curses programs look up,
    // even in batch mode.
    "ncurses-base",
];
/// Dependencies that only maintainer scripts use, left out with what only they need (perl
/// above all, 60 MiB): `init-system-helpers` (update-rc.d) and `dpkg`.
const LEFT_OUT: &[&str] = &["init-system-helpers", "dpkg"];

/// The first program of the root: busybox's init.
pub const INIT: &str = "/sbin/init";
/// Guest memory for `cargo xtask qemu --root` when `--mem` is not given: the ramdisk, its
/// unpacked copy in the root tmpfs, and room for `dd` into `/tmp` and stress-ng.
pub const DEFAULT_MEMORY_MIB: u32 = 1024;
/// Where the acceptance scripts are in the root, and their runner.
pub const ACCEPTANCE_DIR: &str = "/acceptance";
pub const ACCEPTANCE_RUNNER: &str = "/acceptance/run";

/// The host name, the kernel's own (`uname -n`), which the prompt shows.
pub const HOSTNAME: &str = "vmakernel";

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const GROUP: &str = "\
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
";
const PROFILE: &str = r#"# /etc/profile: read by login shells (busybox sh started as -sh by init).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export TERM="${TERM:-vt100}"
export PS1='\u@\h:\w\$ '
cd "$HOME"
"#;
/// busybox init: the start-up script, a shell on COM1 started again whenever it exits, and
/// what to do on Ctrl-Alt-Del and shutdown.
const INITTAB: &str = "\
::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
";
/// The kernel mounts /proc, /sys, /dev and /tmp itself; the script only says the system is up.
const RCS: &str = "\
#!/bin/sh
echo \"$(uname -sr) on $(hostname): busybox sh on the serial console; 'poweroff -f' leaves\"
";

/// A staged, ready root.
pub struct Root {
    /// The tree to pack at `/` (see the module documentation).
    pub dir: PathBuf,
    /// The Debian packages in it, dependencies included.
    pub packages: Vec<String>,
}

/// Stages the packages and makes the root in `target/rootfs/root/`.
pub fn build() -> Result<Root, String> {
    let packages: Vec<String> = PACKAGES.iter().map(|p| (*p).to_owned()).collect();
    let staged = debian::stage_leaving_out(&packages, LEFT_OUT)?;
    let dir = artifacts::target_dir().join("rootfs").join("root");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.parent().expect("under target/"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Hard links: the staged files are shared, not copied.
    run(Command::new("cp").arg("-al").arg(&staged.root).arg(&dir))?;
    let write = |path: &str, mode: u32, text: &str| write_file(&dir, path, mode, text.as_bytes());
    write("etc/passwd", 0o644, PASSWD)?;
    write("etc/group", 0o644, GROUP)?;
    write("etc/profile", 0o644, PROFILE)?;
    write("etc/hostname", 0o644, &format!("{HOSTNAME}\n"))?;
    write("etc/inittab", 0o644, INITTAB)?;
    write("etc/init.d/rcS", 0o755, RCS)?;
    for directory in ["root", "tmp", "proc", "sys", "dev", "run", "var/tmp"] {
        std::fs::create_dir_all(dir.join(directory))
            .map_err(|e| format!("cannot create /{directory} in the root: {e}"))?;
    }
    link_applets(&dir)?;
    add_acceptance_scripts(&dir)?;
    Ok(Root {
        dir,
        packages: staged.packages,
    })
}

/// Writes `text` at `path` in `root` with permission bits `mode`, replacing (not writing
/// through) any file or link there, so that a hard-linked staged file is never changed.
fn write_file(root: &Path, path: &str, mode: u32, data: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let host = root.join(path);
    if let Some(parent) = host.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if host.symlink_metadata().is_ok() {
        std::fs::remove_file(&host).map_err(|e| format!("cannot replace {path}: {e}"))?;
    }
    std::fs::write(&host, data).map_err(|e| format!("cannot write {}: {e}", host.display()))?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", host.display()))
}

/// The directories where a program of the root may be; an applet whose name is in none of
/// them gets a link.
const PROGRAM_DIRECTORIES: &[&str] = &["bin", "sbin", "usr/bin", "usr/sbin"];

/// Links every busybox applet that no package provides (at the path `busybox --list-full`
/// gives it) to `/bin/busybox`. busybox runs on the host through the root's own dynamic
/// linker, so the list is that of the binary in the image.
fn link_applets(root: &Path) -> Result<(), String> {
    let linker = debian::find_in_root(root, "/lib64/ld-linux-x86-64.so.2")
        .ok_or("the root has no /lib64/ld-linux-x86-64.so.2 (libc6)")?;
    let libraries = root.join("lib/x86_64-linux-gnu");
    let list = capture(
        Command::new(&linker)
            .arg("--library-path")
            .arg(&libraries)
            .arg(root.join("bin/busybox"))
            .arg("--list-full"),
    )?;
    for path in applet_links(&list, |name| {
        PROGRAM_DIRECTORIES
            .iter()
            .any(|d| debian::find_in_root(root, &format!("/{d}/{name}")).is_some())
    }) {
        let host = root.join(&path);
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::os::unix::fs::symlink("/bin/busybox", &host)
            .map_err(|e| format!("cannot link {}: {e}", host.display()))?;
    }
    Ok(())
}

/// The links to make from `busybox --list-full` output (`usr/bin/top`, one per line): those
/// whose name `provided` does not know.
fn applet_links(list: &str, provided: impl Fn(&str) -> bool) -> Vec<String> {
    list.lines()
        .map(str::trim)
        .filter(|path| !path.is_empty() && !path.starts_with('/') && !path.contains(".."))
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or(path);
            !name.is_empty() && name != "busybox" && !provided(name)
        })
        .map(str::to_owned)
        .collect()
}

/// The acceptance scripts' directory in the repository.
pub fn acceptance_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("acceptance")
}

/// Copies `xtask/acceptance/*` into the root's `/acceptance/` (mode 0755).
fn add_acceptance_scripts(root: &Path) -> Result<(), String> {
    let sources = acceptance_sources();
    let entries = std::fs::read_dir(&sources)
        .map_err(|e| format!("cannot read {}: {e}", sources.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", sources.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        let data = std::fs::read(entry.path())
            .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        let path = format!("{}/{name}", ACCEPTANCE_DIR.trim_start_matches('/'));
        write_file(root, &path, 0o755, &data)?;
    }
    Ok(())
}

/// `cargo xtask rootfs`: builds the root and says what is in it.
pub fn command() -> Result<std::process::ExitCode, String> {
    let root = build()?;
    println!(
        "root: {} ({} Debian packages: {})",
        root.dir.display(),
        root.packages.len(),
        root.packages.join(", ")
    );
    println!("boot it with `cargo xtask qemu --root`");
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_only_the_applets_no_package_provides() {
        let list = "bin/sh\nsbin/init\nbin/ls\nusr/bin/top\nbin/busybox\n/bin/evil\n../x\n\n";
        let links = applet_links(list, |name| name == "ls" || name == "top");
        assert_eq!(links, ["bin/sh", "sbin/init"]);
    }
}
