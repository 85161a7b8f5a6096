//! `cargo xtask bench --export DIR` and `--import DIR`: the benchmark on a machine without the
//! repository or a Rust toolchain (a bigger host, say).
//!
//! `--export` builds every boot of the plan into DIR: our kernel's disk images, the Linux
//! kernels and their initramfs, a manifest (`boots.json`) and `run.sh`, a POSIX shell script
//! that runs the boots one after another with the QEMU it is given. Copy DIR to the other
//! machine and run the script there; it leaves each boot's serial output in DIR. Back here,
//! `--import DIR` reads those logs and writes the usual reports into DIR.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use qemu::{Outcome, SerialIo, Version, shell_quote};
use serde::{Deserialize, Serialize};

use super::report::Context;
use super::{
    Boot, Kernel, Options, Results, boot_label, boot_name, check_linux_images, collect,
    linux_image_name, plan, prepare_boot,
};
use crate::{artifacts, install, user};

/// The list of boots in an export, in the order run.sh runs them.
const MANIFEST: &str = "boots.json";
const SCRIPT: &str = "run.sh";

/// What `--import` needs to know about an export besides the logs.
#[derive(Serialize, Deserialize)]
struct Manifest {
    /// The `--export` command line.
    command: String,
    cpu_model: String,
    repetitions: u32,
    /// Linux kernels are named by their file in the export directory.
    boots: Vec<Boot>,
}

/// run.sh up to the boots. `boot NAME ARGS...` runs QEMU with ARGS, the serial console going
/// to NAME.log, QEMU's own messages to NAME.err and its exit status to NAME.status.
const SCRIPT_HEAD: &str = r#"#!/bin/sh
# Written by `cargo xtask bench --export`: runs the benchmark's boots on this machine.
#   QEMU=/path/to/qemu-system-x86_64 (default: the one on PATH)
#   QEMU_EXTRA="options" adds QEMU options to every boot (such as -L for a firmware folder).
# Each boot leaves NAME.log (serial console), NAME.err (QEMU's messages) and NAME.status (its
# exit status) here. Then, on a machine with the repository: cargo xtask bench --import DIR
# With arguments, only the boots they name run (names as in the lines at the end).
set -u
cd "$(dirname "$0")" || exit 1
selected=" $* "
qemu=${QEMU:-qemu-system-x86_64}
# shellcheck disable=SC2086 # QEMU_EXTRA is a list of options
"$qemu" ${QEMU_EXTRA:-} --version | head -n 1 > qemu-version.txt || exit 1
grep -m 1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//' > host.txt
getconf _NPROCESSORS_ONLN >> host.txt
date +%Y-%m-%d > date.txt
boot() {
    name=$1
    shift
    case $selected in
    "  " | *" $name "*) ;;
    *) return ;;
    esac
    echo "$name: started at $(date +%T)" >&2
    # shellcheck disable=SC2086
    "$qemu" "$@" ${QEMU_EXTRA:-} > "$name.log" 2> "$name.err" < /dev/null
    status=$?
    echo "$status" > "$name.status"
    echo "$name: exit status $status, $(grep -c 'bench: scenario=' "$name.log") measurements, $(date +%T)" >&2
}
"#;

/// Builds the plan's boots into `dir` with run.sh and the manifest.
pub fn export(options: &Options, dir: &Path) -> Result<ExitCode, String> {
    check_linux_images(&options.linux)?;
    // Only to write the command lines: run.sh names no QEMU binary of this machine.
    let qemu = install::ensure_qemu(false)?;
    let stale = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if stale {
        return Err(format!(
            "{} is not empty: export into a new directory, so that no old log is taken for a new one",
            dir.display()
        ));
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let kernel_elf = artifacts::build_kernel(true, artifacts::Tests::Without)?;
    let programs = user::build_all()?;
    let mut boots = plan(options);
    for boot in &mut boots {
        if let Kernel::Linux { bzimage } = &mut boot.kernel {
            *bzimage = copy_into(&dir, bzimage, Some(&linux_image_name(bzimage)))?;
        }
    }
    let mut script = String::from(SCRIPT_HEAD);
    for boot in &boots {
        let name = boot_name(boot);
        let (profile, image) = prepare_boot(boot, &kernel_elf, &programs, options, &dir)?;
        let image = copy_into(&dir, &image, Some(&format!("{name}.img")))?;
        let command = qemu
            .command(&profile, &image, SerialIo::Captured)
            .map_err(|e| e.to_string())?;
        script.push_str(&format!("boot {name}"));
        for arg in command.args() {
            script.push(' ');
            script.push_str(&shell_quote(&relative_to(&dir, &arg)));
        }
        script.push('\n');
    }
    let script_path = dir.join(SCRIPT);
    write(&script_path, &script)?;
    set_executable(&script_path)?;
    for boot in &mut boots {
        if let Kernel::Linux { bzimage } = &mut boot.kernel {
            *bzimage = PathBuf::from(bzimage.file_name().unwrap_or_default());
        }
    }
    let manifest = Manifest {
        command: options.command.clone(),
        cpu_model: options.cpu.clone(),
        repetitions: options.reps,
        boots,
    };
    // Plain derived structs with string keys always serialize.
    let json = serde_json::to_string_pretty(&manifest).expect("the manifest serializes");
    write(&dir.join(MANIFEST), &json)?;
    println!(
        "{} boots in {}: copy it to the machine to measure on, run `sh run.sh` there (QEMU=... \
         names its QEMU), then `cargo xtask bench --import DIR` with the results",
        manifest.boots.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads the serial logs run.sh left in `dir` and writes the reports beside them.
pub fn import(dir: &Path) -> Result<ExitCode, String> {
    let manifest: Manifest = serde_json::from_str(&read(&dir.join(MANIFEST))?).map_err(|e| {
        format!(
            "{} is not a bench export's manifest: {e}",
            dir.join(MANIFEST).display()
        )
    })?;
    let mut results = Results::default();
    for (index, boot) in manifest.boots.iter().enumerate() {
        let label = boot_label(index, manifest.boots.len(), boot);
        let name = boot_name(boot);
        let log = dir.join(format!("{name}.log"));
        let got = read_status(&dir.join(format!("{name}.status"))).and_then(|outcome| {
            let serial: Vec<String> = read(&log)?.lines().map(str::to_owned).collect();
            collect(boot, &serial, outcome, &log, &label)
        });
        results.add(&label, boot, got);
    }
    let version = read(&dir.join("qemu-version.txt"))?;
    let host = read(&dir.join("host.txt"))?;
    let mut host_lines = host.lines();
    let context = Context {
        date: read(&dir.join("date.txt"))?.trim().to_owned(),
        host: format!(
            "{}, {} cores",
            host_lines.next().unwrap_or("unknown CPU"),
            host_lines.next().unwrap_or("?")
        ),
        qemu: Version::parse(&version)
            .map_or_else(|| version.trim().to_owned(), |v| format!("QEMU {v}")),
        cpu_model: manifest.cpu_model.clone(),
        command: format!(
            "{}; sh run.sh; cargo xtask bench --import DIR",
            manifest.command
        ),
        repetitions: manifest.repetitions,
    };
    results.report(context, dir)
}

/// How a boot of run.sh ended, from the exit status it recorded.
fn read_status(path: &Path) -> Result<Outcome, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("no exit status ({}: {e}); did run.sh run?", path.display()))?;
    text.trim()
        .parse()
        .map(Outcome::from_code)
        .map_err(|_| format!("{} holds no exit status", path.display()))
}

/// `arg` with every mention of `dir/` removed, so that run.sh finds the files beside itself.
fn relative_to(dir: &Path, arg: &str) -> String {
    arg.replace(&format!("{}/", dir.display()), "")
}

/// Copies `file` into `dir` (as `name`, or under its own name) unless it is there already.
fn copy_into(dir: &Path, file: &Path, name: Option<&str>) -> Result<PathBuf, String> {
    if file.parent() == Some(dir) {
        return Ok(file.to_owned());
    }
    let name = name.map_or_else(|| file.file_name().unwrap_or_default().into(), Into::into);
    let copy = dir.join::<PathBuf>(name);
    fs::copy(file, &copy)
        .map_err(|e| format!("cannot copy {} to {}: {e}", file.display(), copy.display()))?;
    Ok(copy)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn set_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make {} executable: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_the_export_become_relative() {
        let dir = Path::new("/tmp/out");
        assert_eq!(
            relative_to(dir, "format=raw,if=ide,file=/tmp/out/ours.img"),
            "format=raw,if=ide,file=ours.img"
        );
        assert_eq!(relative_to(dir, "/tmp/out/vmlinuz"), "vmlinuz");
        assert_eq!(relative_to(dir, "/tmp/outside/x"), "/tmp/outside/x");
    }

    #[test]
    fn reads_recorded_exit_statuses() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-status-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ours.status");
        fs::write(&path, "33\n").unwrap();
        assert_eq!(read_status(&path), Ok(Outcome::Success));
        fs::write(&path, "0\n").unwrap();
        assert_eq!(read_status(&path), Ok(Outcome::UnexpectedExit(0)));
        fs::write(&path, "\n").unwrap();
        assert!(
            read_status(&path)
                .unwrap_err()
                .contains("holds no exit status")
        );
        assert!(
            read_status(&dir.join("missing.status"))
                .unwrap_err()
                .contains("did run.sh run?")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
