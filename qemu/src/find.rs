//! Locating `qemu-system-x86_64`, reading its version, and finding OVMF firmware.
//!
//! Environment variables override the search:
//! - `QEMU`: the binary, either a path or a program name looked up on `PATH`;
//! - `OVMF_CODE` and `OVMF_VARS`: the firmware code and variable-store images (set both).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::{env, fs};

/// The program name looked up on `PATH` when `QEMU` is not set.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Well-known locations of OVMF firmware in distribution packages, as (code, vars) pairs, in
/// order of preference.
const OVMF_PATHS: &[(&str, &str)] = &[
    // Debian and Ubuntu, package `ovmf` (the 4 MiB build; the 2 MiB one in older releases).
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    // Fedora, package `edk2-ovmf`.
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    // Arch Linux, package `edk2-ovmf`.
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    (
        "/usr/share/edk2/x64/OVMF_CODE.fd",
        "/usr/share/edk2/x64/OVMF_VARS.fd",
    ),
    // Gentoo, package `sys-firmware/edk2-ovmf`.
    (
        "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
        "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    ),
    // openSUSE, package `qemu-ovmf-x86_64`.
    (
        "/usr/share/qemu/ovmf-x86_64-code.fd",
        "/usr/share/qemu/ovmf-x86_64-vars.fd",
    ),
];

/// Firmware images that QEMU itself ships, relative to its installation prefix (used after
/// [`OVMF_PATHS`]: Homebrew, source builds, some distributions).
const BUNDLED_OVMF: (&str, &str) = (
    "share/qemu/edk2-x86_64-code.fd",
    "share/qemu/edk2-i386-vars.fd",
);

/// A QEMU version, such as 10.0.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The major version (10 in 10.0.2).
    pub major: u32,
    /// The minor version (0 in 10.0.2).
    pub minor: u32,
    /// The micro version (2 in 10.0.2).
    pub micro: u32,
}

impl Version {
    /// A version from its three parts.
    pub const fn new(major: u32, minor: u32, micro: u32) -> Version {
        Version {
            major,
            minor,
            micro,
        }
    }

    /// Reads the version from the output of `qemu-system-x86_64 --version`, whose first line
    /// looks like `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1)`.
    ///
    /// A missing micro part counts as 0; `None` if no line has a `version X.Y` part.
    pub fn parse(output: &str) -> Option<Version> {
        output.lines().find_map(|line| {
            let start = line.find("version ")? + "version ".len();
            let token = line[start..].split_whitespace().next()?;
            let mut parts = token.split('.').map(leading_number);
            let major = parts.next().flatten()?;
            let minor = parts.next().flatten()?;
            let micro = parts.next().flatten().unwrap_or(0);
            Some(Version::new(major, minor, micro))
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The number at the start of `text` (`"2-rc1"` gives 2), if there is one.
fn leading_number(text: &str) -> Option<u32> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// OVMF firmware for UEFI runs: a read-only code image and a template for the variable store
/// (each run gets a private, writable copy of the latter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ovmf {
    /// The firmware code, mapped read-only as the first pflash device.
    pub code: PathBuf,
    /// The variable-store template, copied for each run.
    pub vars: PathBuf,
}

/// Why [`Qemu::find`] failed.
#[derive(Debug)]
pub enum FindError {
    /// The program was not found in any directory on `PATH`.
    NotOnPath {
        /// The program that was looked for.
        program: String,
        /// Whether the name came from the `QEMU` environment variable.
        from_env: bool,
    },
    /// `QEMU` names a path that is not an executable file.
    NotExecutable {
        /// The path from `QEMU`.
        path: PathBuf,
    },
    /// `qemu-system-x86_64 --version` could not be run or failed.
    VersionCommand {
        /// The binary that was run.
        binary: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The output of `--version` has no recognisable version.
    VersionUnknown {
        /// The binary that was run.
        binary: PathBuf,
        /// The first line of its output.
        output: String,
    },
    /// An `OVMF_CODE` or `OVMF_VARS` override names a file that does not exist.
    OvmfFileMissing {
        /// The environment variable.
        var: &'static str,
        /// Its value.
        path: PathBuf,
    },
    /// Only one of `OVMF_CODE` and `OVMF_VARS` is set.
    OvmfHalfSet {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is not.
        unset: &'static str,
    },
}

impl fmt::Display for FindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindError::NotOnPath {
                program,
                from_env: false,
            } => write!(f, "{program} not found on PATH"),
            FindError::NotOnPath {
                program,
                from_env: true,
            } => write!(f, "QEMU={program}: not found on PATH"),
            FindError::NotExecutable { path } => {
                write!(f, "QEMU={}: not an executable file", path.display())
            }
            FindError::VersionCommand { binary, reason } => {
                write!(
                    f,
                    "could not run `{} --version`: {reason}",
                    binary.display()
                )
            }
            FindError::VersionUnknown { binary, output } => write!(
                f,
                "no version in the output of `{} --version`: {output:?}",
                binary.display()
            ),
            FindError::OvmfFileMissing { var, path } => {
                write!(f, "{var}={}: no such file", path.display())
            }
            FindError::OvmfHalfSet { set, unset } => {
                write!(f, "{set} is set but {unset} is not: set both or neither")
            }
        }
    }
}

impl std::error::Error for FindError {}

/// An installed QEMU: the `qemu-system-x86_64` binary, its version, and OVMF if found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qemu {
    pub(crate) binary: PathBuf,
    version: Version,
    pub(crate) ovmf: Option<Ovmf>,
}

impl Qemu {
    /// Finds QEMU and OVMF, running the binary once to read its version.
    ///
    /// The binary is `$QEMU` (a path, or a program name looked up on `PATH`), else
    /// [`QEMU_BINARY`] on `PATH`. The firmware is `$OVMF_CODE` and `$OVMF_VARS` (set both),
    /// else the first pair found among the files of the usual distribution packages (Debian,
    /// Ubuntu, Fedora, Arch, Gentoo, openSUSE), else the firmware QEMU ships in its prefix.
    ///
    /// OVMF that is not installed is not an error (`ovmf()` is then `None` and only UEFI runs
    /// fail); an override that names a missing file is.
    pub fn find() -> Result<Qemu, FindError> {
        Qemu::find_with(&|name| env::var_os(name))
    }

    /// [`Qemu::find`] with the environment given as a lookup function.
    fn find_with(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Qemu, FindError> {
        let binary = locate_binary(env)?;
        let version = read_version(&binary)?;
        let ovmf = locate_ovmf(env, &ovmf_candidates(&binary))?;
        Ok(Qemu {
            binary,
            version,
            ovmf,
        })
    }

    /// A QEMU at a known path and of a known version, without OVMF (add it with
    /// [`Qemu::with_ovmf`]). Nothing is checked or run.
    pub fn with_binary(binary: impl Into<PathBuf>, version: Version) -> Qemu {
        Qemu {
            binary: binary.into(),
            version,
            ovmf: None,
        }
    }

    /// The same QEMU with the given firmware (or none).
    pub fn with_ovmf(self, ovmf: Option<Ovmf>) -> Qemu {
        Qemu { ovmf, ..self }
    }

    /// The `qemu-system-x86_64` binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// QEMU's version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The OVMF firmware, if found.
    pub fn ovmf(&self) -> Option<&Ovmf> {
        self.ovmf.as_ref()
    }

    /// Whether TCG emulates the x2APIC, so that `-cpu` models with x2apic work without KVM
    /// (QEMU 9.0 and later).
    pub fn supports_tcg_x2apic(&self) -> bool {
        self.version >= Version::new(9, 0, 0)
    }
}

/// The value of an environment variable, treating an empty value as unset.
fn non_empty_var(env: &dyn Fn(&str) -> Option<OsString>, name: &str) -> Option<OsString> {
    env(name).filter(|value| !value.is_empty())
}

/// The QEMU binary: `QEMU` (a path, or a name looked up on `PATH`), else [`QEMU_BINARY`] on
/// `PATH`.
fn locate_binary(env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf, FindError> {
    let path_var = env("PATH");
    let Some(value) = non_empty_var(env, "QEMU") else {
        return search_path(path_var.as_deref(), OsStr::new(QEMU_BINARY)).ok_or_else(|| {
            FindError::NotOnPath {
                program: QEMU_BINARY.to_owned(),
                from_env: false,
            }
        });
    };
    let path = PathBuf::from(&value);
    if path.components().count() > 1 {
        if is_executable(&path) {
            Ok(path)
        } else {
            Err(FindError::NotExecutable { path })
        }
    } else {
        search_path(path_var.as_deref(), &value).ok_or_else(|| FindError::NotOnPath {
            program: value.to_string_lossy().into_owned(),
            from_env: true,
        })
    }
}

/// The first executable `program` in the directories of `path_var`.
fn search_path(path_var: Option<&OsStr>, program: &OsStr) -> Option<PathBuf> {
    env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file with an execute bit set.
fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `binary --version` and parses its output.
fn read_version(binary: &Path) -> Result<Version, FindError> {
    let failed = |reason: String| FindError::VersionCommand {
        binary: binary.to_owned(),
        reason,
    };
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("").trim();
        return Err(failed(if first.is_empty() {
            output.status.to_string()
        } else {
            format!("{}: {first}", output.status)
        }));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Version::parse(&stdout).ok_or_else(|| FindError::VersionUnknown {
        binary: binary.to_owned(),
        output: stdout.lines().next().unwrap_or("").trim().to_owned(),
    })
}

/// The (code, vars) pairs to try: [`OVMF_PATHS`], then QEMU's own firmware next to `binary`.
fn ovmf_candidates(binary: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut candidates: Vec<(PathBuf, PathBuf)> = OVMF_PATHS
        .iter()
        .map(|&(code, vars)| (PathBuf::from(code), PathBuf::from(vars)))
        .collect();
    // Resolve symlinks (Homebrew links bin/ into its Cellar) to find the real prefix.
    let real = fs::canonicalize(binary).unwrap_or_else(|_| binary.to_owned());
    if let Some(prefix) = real.parent().and_then(Path::parent) {
        candidates.push((prefix.join(BUNDLED_OVMF.0), prefix.join(BUNDLED_OVMF.1)));
    }
    candidates
}

/// OVMF from `OVMF_CODE`/`OVMF_VARS`, else the first candidate pair whose files both exist.
fn locate_ovmf(
    env: &dyn Fn(&str) -> Option<OsString>,
    candidates: &[(PathBuf, PathBuf)],
) -> Result<Option<Ovmf>, FindError> {
    let code = non_empty_var(env, "OVMF_CODE").map(PathBuf::from);
    let vars = non_empty_var(env, "OVMF_VARS").map(PathBuf::from);
    match (code, vars) {
        (Some(code), Some(vars)) => {
            for (var, path) in [("OVMF_CODE", &code), ("OVMF_VARS", &vars)] {
                if !path.is_file() {
                    return Err(FindError::OvmfFileMissing {
                        var,
                        path: path.clone(),
                    });
                }
            }
            Ok(Some(Ovmf { code, vars }))
        }
        (Some(_), None) => Err(FindError::OvmfHalfSet {
            set: "OVMF_CODE",
            unset: "OVMF_VARS",
        }),
        (None, Some(_)) => Err(FindError::OvmfHalfSet {
            set: "OVMF_VARS",
            unset: "OVMF_CODE",
        }),
        (None, None) => Ok(candidates
            .iter()
            .find(|(code, vars)| code.is_file() && vars.is_file())
            .map(|(code, vars)| Ovmf {
                code: code.clone(),
                vars: vars.clone(),
            })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TempDir, script_lock};
    use std::collections::HashMap;

    #[test]
    fn parses_versions() {
        let debian = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1)\n\
                      Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(Version::parse(debian), Some(Version::new(10, 0, 2)));
        assert_eq!(
            Version::parse("QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1.4)"),
            Some(Version::new(8, 2, 2))
        );
        assert_eq!(
            Version::parse("QEMU emulator version 9.1.50 (v9.1.0-1234-gdeadbeef)"),
            Some(Version::new(9, 1, 50))
        );
        assert_eq!(
            Version::parse("QEMU emulator version 7.2.0-rc1"),
            Some(Version::new(7, 2, 0))
        );
        assert_eq!(
            Version::parse("QEMU emulator version 2.5"),
            Some(Version::new(2, 5, 0))
        );
        assert_eq!(Version::parse("QEMU emulator version x.y"), None);
        assert_eq!(Version::parse("something else entirely"), None);
        assert_eq!(Version::parse(""), None);
        assert_eq!(Version::new(10, 0, 2).to_string(), "10.0.2");
    }

    #[test]
    fn x2apic_support_starts_with_9_0() {
        let qemu = |major, minor| Qemu::with_binary("qemu", Version::new(major, minor, 0));
        assert!(!qemu(8, 2).supports_tcg_x2apic());
        assert!(qemu(9, 0).supports_tcg_x2apic());
        assert!(qemu(10, 0).supports_tcg_x2apic());
    }

    /// An environment lookup backed by a map.
    fn fake_env(vars: &[(&str, &OsStr)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn finds_binary_on_path_and_reads_version() {
        let _lock = script_lock();
        let dir = TempDir::new("find-path");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("mkdir");
        dir.script(
            &bin.join(QEMU_BINARY),
            "echo 'QEMU emulator version 9.2.1 (test)'",
        );
        let path_var = env::join_paths([dir.path().join("missing"), bin.clone()]).expect("join");
        let env = fake_env(&[("PATH", &path_var)]);
        let qemu = Qemu::find_with(&env).expect("found");
        assert_eq!(qemu.binary(), bin.join(QEMU_BINARY));
        assert_eq!(qemu.version(), Version::new(9, 2, 1));
    }

    #[test]
    fn qemu_variable_overrides_path() {
        let _lock = script_lock();
        let dir = TempDir::new("find-env");
        let fake = dir.path().join("my-qemu");
        dir.script(&fake, "echo 'QEMU emulator version 10.1.0'");
        let empty = OsString::new();
        let env = fake_env(&[("QEMU", fake.as_os_str()), ("PATH", &empty)]);
        let qemu = Qemu::find_with(&env).expect("found");
        assert_eq!(qemu.binary(), fake);
        assert_eq!(qemu.version(), Version::new(10, 1, 0));

        let missing = dir.path().join("nope");
        let env = fake_env(&[("QEMU", missing.as_os_str())]);
        let err = Qemu::find_with(&env).expect_err("missing override");
        assert!(matches!(err, FindError::NotExecutable { .. }), "{err}");
        assert!(err.to_string().starts_with("QEMU="), "{err}");
    }

    #[test]
    fn missing_binary_is_reported() {
        let dir = TempDir::new("find-none");
        let env = fake_env(&[("PATH", dir.path().as_os_str())]);
        let err = Qemu::find_with(&env).expect_err("not found");
        assert_eq!(err.to_string(), "qemu-system-x86_64 not found on PATH");
        let env = fake_env(&[]);
        assert!(matches!(
            Qemu::find_with(&env),
            Err(FindError::NotOnPath {
                from_env: false,
                ..
            })
        ));
    }

    #[test]
    fn bad_version_output_is_reported() {
        let _lock = script_lock();
        let dir = TempDir::new("find-badver");
        let fake = dir.path().join("qemu");
        dir.script(&fake, "echo 'not a qemu'");
        let env = fake_env(&[("QEMU", fake.as_os_str())]);
        let err = Qemu::find_with(&env).expect_err("unparsable");
        assert!(matches!(err, FindError::VersionUnknown { .. }), "{err}");
        assert!(err.to_string().contains("\"not a qemu\""), "{err}");

        dir.script(&fake, "echo 'boom' >&2; exit 3");
        let err = Qemu::find_with(&env).expect_err("failing");
        assert!(matches!(err, FindError::VersionCommand { .. }), "{err}");
        assert!(err.to_string().contains("boom"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn ovmf_overrides_and_search() {
        let dir = TempDir::new("find-ovmf");
        let code = dir.file("CODE.fd", b"code");
        let vars = dir.file("VARS.fd", b"vars");
        let missing = dir.path().join("missing.fd");

        let env = fake_env(&[
            ("OVMF_CODE", code.as_os_str()),
            ("OVMF_VARS", vars.as_os_str()),
        ]);
        let found = locate_ovmf(&env, &[]).expect("ok").expect("some");
        assert_eq!(
            found,
            Ovmf {
                code: code.clone(),
                vars: vars.clone()
            }
        );

        let env = fake_env(&[("OVMF_CODE", code.as_os_str())]);
        let err = locate_ovmf(&env, &[]).expect_err("half set");
        assert_eq!(
            err.to_string(),
            "OVMF_CODE is set but OVMF_VARS is not: set both or neither"
        );

        let env = fake_env(&[
            ("OVMF_CODE", code.as_os_str()),
            ("OVMF_VARS", missing.as_os_str()),
        ]);
        let err = locate_ovmf(&env, &[]).expect_err("missing file");
        assert!(matches!(
            err,
            FindError::OvmfFileMissing {
                var: "OVMF_VARS",
                ..
            }
        ));

        // Without overrides: the first pair whose files both exist; none is not an error.
        let env = fake_env(&[]);
        let candidates = [
            (code.clone(), missing.clone()),
            (missing.clone(), vars.clone()),
            (code.clone(), vars.clone()),
        ];
        let found = locate_ovmf(&env, &candidates).expect("ok").expect("some");
        assert_eq!(found, Ovmf { code, vars });
        assert_eq!(locate_ovmf(&env, &candidates[..2]).expect("ok"), None);
    }

    #[test]
    fn bundled_firmware_is_searched_relative_to_the_binary() {
        let candidates = ovmf_candidates(Path::new("/opt/qemu/bin/qemu-system-x86_64"));
        assert_eq!(candidates.len(), OVMF_PATHS.len() + 1);
        assert_eq!(
            candidates.last(),
            Some(&(
                PathBuf::from("/opt/qemu/share/qemu/edk2-x86_64-code.fd"),
                PathBuf::from("/opt/qemu/share/qemu/edk2-i386-vars.fd")
            ))
        );
    }
}
