//! Virtual-machine profiles and the QEMU command lines built from them.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::find::Qemu;
use crate::run::RunError;
use crate::temp::TempFile;

/// How the machine boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default firmware.
    Bios,
    /// OVMF (UEFI), loaded as two pflash devices; needs [`Qemu::ovmf`].
    Uefi,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        })
    }
}

/// The emulated chipset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Machine {
    /// Q35 (ICH9, PCIe), `-machine q35`.
    Q35,
    /// i440FX (PIIX, legacy PCI), `-machine pc`.
    Pc,
}

impl Machine {
    /// The name QEMU's `-machine` option takes.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Machine::Q35 => "q35",
            Machine::Pc => "pc",
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

/// The accelerator that executes guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accel {
    /// TCG with one host thread per virtual CPU (`-accel tcg,thread=multi`).
    Tcg,
    /// TCG with all virtual CPUs on one host thread, round-robin (`-accel tcg,thread=single`).
    TcgSingleThread,
    /// KVM (`-accel kvm`); needs `/dev/kvm`.
    Kvm,
}

impl Accel {
    /// The value of QEMU's `-accel` option.
    pub fn qemu_arg(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg,thread=multi",
            Accel::TcgSingleThread => "tcg,thread=single",
            Accel::Kvm => "kvm",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg-mt",
            Accel::TcgSingleThread => "tcg-st",
            Accel::Kvm => "kvm",
        })
    }
}

/// One virtual machine configuration that images are run on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// A short name, such as `bios-smp4`.
    pub name: String,
    /// How the machine boots.
    pub firmware: Firmware,
    /// The number of virtual CPUs (`-smp`).
    pub cpus: u32,
    /// Guest memory in MiB (`-m`).
    pub memory_mib: u32,
    /// The CPU model (`-cpu`), or `None` for QEMU's default.
    pub cpu_model: Option<String>,
    /// The chipset.
    pub machine: Machine,
    /// The accelerator.
    pub accel: Accel,
    /// Further arguments, placed last on the command line so that they can override earlier
    /// ones (for example `-display gtk` to see the framebuffer).
    pub extra_args: Vec<String>,
}

impl Profile {
    /// A profile with 512 MiB of memory, a q35 machine, multi-threaded TCG, QEMU's default
    /// CPU model and no extra arguments.
    pub fn new(name: impl Into<String>, firmware: Firmware, cpus: u32) -> Profile {
        Profile {
            name: name.into(),
            firmware,
            cpus,
            memory_mib: 512,
            cpu_model: None,
            machine: Machine::Q35,
            accel: Accel::Tcg,
            extra_args: Vec::new(),
        }
    }

    /// A one-line summary, such as `bios-smp4 (BIOS, 4 CPUs, 512 MiB, q35, tcg-mt)`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} ({}, {} CPU{}, {} MiB, {}, {}",
            self.name,
            self.firmware,
            self.cpus,
            if self.cpus == 1 { "" } else { "s" },
            self.memory_mib,
            self.machine,
            self.accel
        );
        if let Some(model) = &self.cpu_model {
            text.push_str(", cpu ");
            text.push_str(model);
        }
        if !self.extra_args.is_empty() {
            text.push_str(", extra: ");
            text.push_str(&self.extra_args.join(" "));
        }
        text.push(')');
        text
    }
}

/// Where the guest's COM1 goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SerialIo {
    /// To QEMU's standard output, which is piped; standard error is piped too and standard
    /// input is empty (`-serial stdio`). For [`Qemu::run`].
    Captured,
    /// To and from the terminal QEMU inherits, so keystrokes reach the guest and Ctrl-C ends
    /// QEMU, with a copy of the output in `log`. For [`Qemu::run_interactive`].
    Interactive {
        /// The file that receives a copy of everything the guest writes.
        log: PathBuf,
    },
}

/// A QEMU command ready to spawn, together with the temporary files it refers to.
///
/// Keep this value alive until QEMU has exited: dropping it deletes the private copy of the
/// UEFI variable store.
#[derive(Debug)]
pub struct QemuCommand {
    command: Command,
    vars: Option<TempFile>,
}

impl QemuCommand {
    /// The command, for spawning it (its standard streams are already set up for the
    /// [`SerialIo`] it was built with).
    pub fn command_mut(&mut self) -> &mut Command {
        &mut self.command
    }

    /// The arguments, lossily converted to strings (for display and tests).
    pub fn args(&self) -> Vec<String> {
        self.command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    /// The private copy of the OVMF variable store, for UEFI profiles.
    pub fn vars_copy(&self) -> Option<&Path> {
        self.vars.as_ref().map(TempFile::path)
    }
}

impl fmt::Display for QemuCommand {
    /// The command line as a shell would take it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_quote(&self.command.get_program().to_string_lossy()))?;
        for arg in self.args() {
            write!(f, " {}", shell_quote(&arg))?;
        }
        Ok(())
    }
}

/// `text` quoted for a POSIX shell when it contains anything but safe characters.
pub fn shell_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_.,/=:+@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A `-drive` (or `-chardev`) option value: `prefix` followed by `path` with its commas
/// doubled, which is how QEMU's option syntax escapes them.
fn option_with_path(prefix: &str, path: &Path) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    for &byte in path.as_os_str().as_bytes() {
        bytes.push(byte);
        if byte == b',' {
            bytes.push(b',');
        }
    }
    OsString::from_vec(bytes)
}

impl Qemu {
    /// Builds the command that runs `image` on `profile`, with COM1 connected as `io` says.
    ///
    /// For UEFI profiles this copies the OVMF variable store to a private temporary file,
    /// which lives as long as the returned [`QemuCommand`]. Fails if the image does not exist,
    /// or the profile needs OVMF and none was found.
    pub fn command(
        &self,
        profile: &Profile,
        image: &Path,
        io: SerialIo,
    ) -> Result<QemuCommand, RunError> {
        if !image.exists() {
            return Err(RunError::ImageMissing {
                path: image.to_owned(),
            });
        }
        let mut command = Command::new(&self.binary);
        command
            .args(["-machine", profile.machine.qemu_name()])
            .args(["-accel", profile.accel.qemu_arg()])
            .arg("-smp")
            .arg(profile.cpus.to_string())
            .arg("-m")
            .arg(profile.memory_mib.to_string());
        if let Some(model) = &profile.cpu_model {
            command.args(["-cpu", model]);
        }

        let vars = match profile.firmware {
            Firmware::Bios => None,
            Firmware::Uefi => {
                let ovmf = self.ovmf.as_ref().ok_or_else(|| RunError::OvmfMissing {
                    profile: profile.name.clone(),
                })?;
                let vars = TempFile::copy_of(&ovmf.vars, "OVMF_VARS.fd").map_err(|source| {
                    RunError::OvmfVarsCopy {
                        from: ovmf.vars.clone(),
                        source,
                    }
                })?;
                command
                    .arg("-drive")
                    .arg(option_with_path(
                        "if=pflash,format=raw,readonly=on,file=",
                        &ovmf.code,
                    ))
                    .arg("-drive")
                    .arg(option_with_path("if=pflash,format=raw,file=", vars.path()));
                Some(vars)
            }
        };
        command
            .arg("-drive")
            .arg(option_with_path("format=raw,if=ide,file=", image))
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .arg("-no-reboot")
            // No network card: the kernel has no driver, and without one neither firmware
            // spends time loading a PXE ROM or falls back to network boot.
            .args(["-nic", "none"])
            .args(["-display", "none"]);

        match io {
            SerialIo::Captured => {
                command
                    .args(["-serial", "stdio", "-monitor", "none"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
            SerialIo::Interactive { log } => {
                command
                    .arg("-chardev")
                    .arg(option_with_path("stdio,id=com1,signal=on,logfile=", &log))
                    .args(["-serial", "chardev:com1", "-monitor", "none"])
                    .stdin(Stdio::inherit())
                    .stdout(Stdio::inherit())
                    .stderr(Stdio::inherit());
            }
        }
        command.args(&profile.extra_args);
        Ok(QemuCommand { command, vars })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find::{Ovmf, Version};
    use crate::testutil::TempDir;
    use std::fs;

    /// The value following the first occurrence of `option` in `args`.
    fn value_of<'a>(args: &'a [String], option: &str) -> Option<&'a str> {
        let at = args.iter().position(|arg| arg == option)?;
        args.get(at + 1).map(String::as_str)
    }

    /// Every value following an occurrence of `option` in `args`.
    fn values_of<'a>(args: &'a [String], option: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|pair| pair[0] == option)
            .map(|pair| pair[1].as_str())
            .collect()
    }

    #[test]
    fn profile_defaults_and_description() {
        let profile = Profile::new("bios-smp4", Firmware::Bios, 4);
        assert_eq!(profile.memory_mib, 512);
        assert_eq!(profile.machine, Machine::Q35);
        assert_eq!(profile.accel, Accel::Tcg);
        assert_eq!(profile.cpu_model, None);
        assert_eq!(
            profile.describe(),
            "bios-smp4 (BIOS, 4 CPUs, 512 MiB, q35, tcg-mt)"
        );

        let mut single = Profile::new("uefi-up", Firmware::Uefi, 1);
        single.machine = Machine::Pc;
        single.accel = Accel::TcgSingleThread;
        single.cpu_model = Some("max".into());
        single.memory_mib = 128;
        single.extra_args = vec!["-d".into(), "int".into()];
        assert_eq!(
            single.describe(),
            "uefi-up (UEFI, 1 CPU, 128 MiB, pc, tcg-st, cpu max, extra: -d int)"
        );
    }

    #[test]
    fn bios_command_line() {
        let dir = TempDir::new("cmd-bios");
        let image = dir.file("bios.img", b"image");
        let qemu = Qemu::with_binary("/usr/bin/qemu-system-x86_64", Version::new(10, 0, 2));
        let mut profile = Profile::new("bios-smp4", Firmware::Bios, 4);
        profile.cpu_model = Some("qemu64,+x2apic".into());
        profile.extra_args = vec!["-display".into(), "gtk".into()];
        let cmd = qemu
            .command(&profile, &image, SerialIo::Captured)
            .expect("command");
        let args = cmd.args();
        assert_eq!(value_of(&args, "-machine"), Some("q35"));
        assert_eq!(value_of(&args, "-accel"), Some("tcg,thread=multi"));
        assert_eq!(value_of(&args, "-smp"), Some("4"));
        assert_eq!(value_of(&args, "-m"), Some("512"));
        assert_eq!(value_of(&args, "-cpu"), Some("qemu64,+x2apic"));
        let image_drive = format!("format=raw,if=ide,file={}", image.display());
        assert_eq!(values_of(&args, "-drive"), [image_drive.as_str()]);
        assert_eq!(
            value_of(&args, "-device"),
            Some("isa-debug-exit,iobase=0xf4,iosize=0x04")
        );
        assert!(args.iter().any(|arg| arg == "-no-reboot"));
        assert_eq!(value_of(&args, "-serial"), Some("stdio"));
        assert_eq!(value_of(&args, "-monitor"), Some("none"));
        assert!(!args.iter().any(|arg| arg == "-bios" || arg == "-chardev"));
        assert!(cmd.vars_copy().is_none());
        // Extra arguments come last, so they override the default display.
        assert_eq!(values_of(&args, "-display"), ["none", "gtk"]);
        assert_eq!(args[args.len() - 2..], ["-display", "gtk"]);
        assert!(cmd.to_string().starts_with(
            "/usr/bin/qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -smp 4 -m 512 "
        ));
    }

    #[test]
    fn uefi_command_line_uses_pflash_and_a_private_vars_copy() {
        let dir = TempDir::new("cmd-uefi");
        let image = dir.file("uefi.img", b"image");
        let ovmf = Ovmf {
            code: dir.file("OVMF_CODE.fd", b"code"),
            vars: dir.file("OVMF_VARS.fd", b"vars"),
        };
        let qemu = Qemu::with_binary("qemu-system-x86_64", Version::new(9, 2, 0))
            .with_ovmf(Some(ovmf.clone()));
        let mut profile = Profile::new("uefi-kvm", Firmware::Uefi, 2);
        profile.accel = Accel::Kvm;
        profile.machine = Machine::Pc;
        let log = dir.path().join("serial.log");
        let cmd = qemu
            .command(&profile, &image, SerialIo::Interactive { log: log.clone() })
            .expect("command");
        let args = cmd.args();
        assert_eq!(value_of(&args, "-machine"), Some("pc"));
        assert_eq!(value_of(&args, "-accel"), Some("kvm"));
        assert!(!args.iter().any(|arg| arg == "-bios" || arg == "-cpu"));

        let copy = cmd.vars_copy().expect("vars copy").to_owned();
        assert_ne!(copy, ovmf.vars);
        assert!(copy.starts_with(std::env::temp_dir()));
        assert_eq!(fs::read(&copy).expect("copy readable"), b"vars");
        let drives = values_of(&args, "-drive");
        assert_eq!(
            drives,
            [
                format!(
                    "if=pflash,format=raw,readonly=on,file={}",
                    ovmf.code.display()
                ),
                format!("if=pflash,format=raw,file={}", copy.display()),
                format!("format=raw,if=ide,file={}", image.display()),
            ]
        );
        assert_eq!(
            value_of(&args, "-chardev"),
            Some(format!("stdio,id=com1,signal=on,logfile={}", log.display()).as_str())
        );
        assert_eq!(value_of(&args, "-serial"), Some("chardev:com1"));
        assert_eq!(value_of(&args, "-monitor"), Some("none"));

        drop(cmd);
        assert!(!copy.exists(), "the vars copy is removed with the command");
    }

    #[test]
    fn uefi_without_ovmf_is_a_clear_error() {
        let dir = TempDir::new("cmd-noovmf");
        let image = dir.file("uefi.img", b"image");
        let qemu = Qemu::with_binary("qemu-system-x86_64", Version::new(9, 2, 0));
        let profile = Profile::new("uefi-smp1", Firmware::Uefi, 1);
        let err = qemu
            .command(&profile, &image, SerialIo::Captured)
            .expect_err("no OVMF");
        assert!(matches!(err, RunError::OvmfMissing { .. }));
        let text = err.to_string();
        assert!(
            text.contains("OVMF") && text.contains("uefi-smp1"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn missing_image_is_an_error() {
        let dir = TempDir::new("cmd-noimage");
        let qemu = Qemu::with_binary("qemu-system-x86_64", Version::new(9, 2, 0));
        let profile = Profile::new("bios", Firmware::Bios, 1);
        let err = qemu
            .command(&profile, &dir.path().join("none.img"), SerialIo::Captured)
            .expect_err("no image");
        assert!(matches!(err, RunError::ImageMissing { .. }), "{err}");
    }

    #[test]
    fn commas_in_paths_are_escaped() {
        let dir = TempDir::new("cmd,comma");
        let image = dir.file("a,b.img", b"image");
        let qemu = Qemu::with_binary("qemu-system-x86_64", Version::new(9, 2, 0));
        let profile = Profile::new("bios", Firmware::Bios, 1);
        let cmd = qemu
            .command(&profile, &image, SerialIo::Captured)
            .expect("command");
        let expected = format!(
            "format=raw,if=ide,file={}",
            image.display().to_string().replace(',', ",,")
        );
        assert_eq!(values_of(&cmd.args(), "-drive"), [expected.as_str()]);
        assert!(cmd.to_string().contains(",,"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("-smp"), "-smp");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
