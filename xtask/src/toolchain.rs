//! Makes sure the active nightly can build the project before anything else runs.
//!
//! rust-toolchain.toml names the plain `nightly` channel, and rustup on this project's machines
//! installs nothing by itself. A fresh machine may carry a nightly too old for the bootloader's
//! UEFI stage, so `check` compares the compiler's commit date with [`MINIMUM_COMMIT_DATE`],
//! updates the channel with rustup when it is older (saying so), adds missing components and
//! targets, and tells the caller to run itself again on the new compiler.

use std::process::Command;

/// The oldest nightly known to build bootloader 0.11.17 (its UEFI stage's x86_64 dependency
/// stopped compiling on older ones): the 2026-10-29 channel, whose commit date is the day before.
pub const MINIMUM_COMMIT_DATE: &str = "2026-10-28";

/// Components and targets rust-toolchain.toml asks for; rustup does not install them here.
const COMPONENTS: &[&str] = &["rust-src", "llvm-tools", "rustfmt", "clippy", "miri"];
const TARGETS: &[&str] = &["x86_64-unknown-none"];

/// What the caller must do after the check.
pub enum Outcome {
    /// The toolchain is fine as it is.
    Ready,
    /// rustup replaced the compiler this process was built with: run xtask again.
    Updated,
}

pub fn check() -> Result<Outcome, String> {
    let version = rustc_version()?;
    let date = commit_date(&version)
        .ok_or_else(|| format!("cannot read the commit date from `rustc -vV`:\n{version}"))?;
    if !version.contains("-nightly") {
        return Err(format!(
            "the active Rust toolchain is not a nightly ({}); rust-toolchain.toml asks for one",
            first_line(&version)
        ));
    }
    if date.as_str() < MINIMUM_COMMIT_DATE {
        eprintln!(
            "xtask: nightly from {date} is older than {MINIMUM_COMMIT_DATE}, which this project needs; \
             updating it with `rustup toolchain install nightly`"
        );
        let mut cmd = Command::new("rustup");
        cmd.args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--no-self-update",
        ]);
        for component in COMPONENTS {
            cmd.args(["--component", component]);
        }
        for target in TARGETS {
            cmd.args(["--target", target]);
        }
        run(&mut cmd)?;
        // Ask the channel itself: this process may run under an override of another toolchain.
        let after = capture(Command::new("rustup").args(["run", "nightly", "rustc", "-vV"]))?;
        match commit_date(&after) {
            // The run on the new compiler checks components and targets again.
            Some(new) if new.as_str() >= MINIMUM_COMMIT_DATE => return Ok(Outcome::Updated),
            other => {
                return Err(format!(
                    "rustup could not bring nightly to {MINIMUM_COMMIT_DATE} or later (still at {}); \
                     install a newer one with `rustup toolchain install nightly`",
                    other.unwrap_or_default()
                ));
            }
        }
    }
    let installed = capture(Command::new("rustup").args(["component", "list", "--installed"]))?;
    for component in COMPONENTS {
        // rustup names host-specific components with the host triple (`clippy-x86_64-...`) and
        // the rest bare (`rust-src`).
        let present = installed
            .lines()
            .map(str::trim)
            .any(|line| line == *component || line.starts_with(&format!("{component}-x86_64")));
        if !present {
            eprintln!("xtask: adding the missing rustup component {component}");
            run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    let targets = capture(Command::new("rustup").args(["target", "list", "--installed"]))?;
    for target in TARGETS {
        if !targets.lines().any(|line| line.trim() == *target) {
            eprintln!("xtask: adding the missing rustup target {target}");
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    Ok(Outcome::Ready)
}

fn rustc_version() -> Result<String, String> {
    capture(Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV"))
}

/// A program of the toolchain's `llvm-tools` component (e.g. `llvm-objcopy`), found in the
/// active toolchain's sysroot.
pub fn llvm_tool(name: &str) -> Result<std::path::PathBuf, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = capture(Command::new(&rustc).args(["--print", "sysroot"]))?;
    let version = rustc_version()?;
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .ok_or_else(|| format!("cannot read the host triple from `rustc -vV`:\n{version}"))?;
    let path = std::path::Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin")
        .join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{name} is missing from the toolchain ({}); add it with `rustup component add llvm-tools`",
            path.display()
        ))
    }
}

/// The `commit-date: YYYY-MM-DD` line of `rustc -vV`.
fn commit_date(version: &str) -> Option<String> {
    version
        .lines()
        .find_map(|line| line.strip_prefix("commit-date: "))
        .map(|date| date.trim().to_owned())
        .filter(|date| date.len() == 10)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Runs `cmd` and returns its standard output; an error names the command and holds its
/// standard error.
pub fn capture(cmd: &mut Command) -> Result<String, String> {
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `cmd` with the terminal's output; an error names the command and how it failed.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_commit_date() {
        let v = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\ncommit-date: 2026-05-19\nhost: x";
        assert_eq!(commit_date(v).as_deref(), Some("2026-05-19"));
        assert!(commit_date("rustc 1.0\n").is_none());
        assert!(commit_date(v).unwrap().as_str() < MINIMUM_COMMIT_DATE);
    }
}
