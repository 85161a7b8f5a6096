//! The ramdisk every image carries: a cpio (newc) archive with the kernel options
//! (`/etc/cmdline`), the kernel's symbol map (`/boot/kernel.sym`), the user programs
//! (`/bin/NAME`, mode 0755), any further files (such as `/etc/init.args`) and, with
//! `--debian`, the tree of Debian's packages unpacked on the host (debian.rs).

use std::path::{Path, PathBuf};

use initrd::{Archive, ArchiveBuilder};

use crate::user::Program;

/// What goes into a ramdisk besides the kernel options and symbols.
#[derive(Default)]
pub struct Contents {
    /// Packed as `/bin/NAME`.
    pub programs: Vec<Program>,
    /// Further files: path in the archive and contents (mode 0644).
    pub files: Vec<(String, Vec<u8>)>,
    /// A staging root of Debian's packages, packed at `/` (see [`crate::debian::add_tree`]).
    pub debian_root: Option<PathBuf>,
}

/// The file `/etc/init.args` that passes `args` to init, one per line.
pub fn init_args(args: &[String]) -> (String, Vec<u8>) {
    let mut text = String::new();
    for arg in args {
        text.push_str(arg);
        text.push('\n');
    }
    ("etc/init.args".into(), text.into_bytes())
}

pub fn pack(
    cmdline: &str,
    kernel_elf: &Path,
    contents: &Contents,
    out: &Path,
) -> Result<(), String> {
    let elf = std::fs::read(kernel_elf)
        .map_err(|e| format!("cannot read the kernel {}: {e}", kernel_elf.display()))?;
    let symbols = crate::symbols::symbol_map(&elf)?;
    let mut archive = ArchiveBuilder::new();
    let add = |archive: &mut ArchiveBuilder, path: &str, mode: u32, data: &[u8]| {
        archive
            .add_file(path, mode, data)
            .map_err(|e| format!("ramdisk: {e}"))
    };
    add(
        &mut archive,
        "etc/cmdline",
        0o644,
        format!("{cmdline}\n").as_bytes(),
    )?;
    add(&mut archive, "boot/kernel.sym", 0o644, symbols.as_bytes())?;
    for program in &contents.programs {
        let data = std::fs::read(&program.path)
            .map_err(|e| format!("cannot read {}: {e}", program.path.display()))?;
        add(&mut archive, &format!("bin/{}", program.name), 0o755, &data)?;
    }
    for (path, data) in &contents.files {
        add(&mut archive, path, 0o644, data)?;
    }
    if let Some(root) = &contents.debian_root {
        crate::debian::add_tree(&mut archive, root)?;
    }
    std::fs::write(out, archive.finish())
        .map_err(|e| format!("cannot write the ramdisk {}: {e}", out.display()))
}

/// Checks that the ramdisk at `path` holds every program in `names` as an executable
/// `/bin/NAME`; the error names the missing ones.
pub fn check_programs(path: &Path, names: &[&str]) -> Result<(), String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the ramdisk {}: {e}", path.display()))?;
    let archive = Archive::new(&bytes);
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            !archive.find(&format!("/bin/{name}")).is_some_and(|entry| {
                entry.is_file() && entry.mode & 0o111 != 0 && !entry.data.is_empty()
            })
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} lacks /bin/{}",
            path.display(),
            missing.join(", /bin/")
        ))
    }
}
