//! The user programs every ramdisk carries at `/bin/NAME`: the Rust programs in `user/`
//! (static non-PIE ELF at 0x400000, built for x86_64-unknown-none into `target/user`) and the C
//! programs of `user/c` ([`C_PROGRAMS`]) built with `musl-gcc -static` (and with glibc's
//! `gcc -static` where the host has a static libc); plus the checks that a program given to
//! `cargo xtask qemu --run` is an x86_64 executable, static unless it comes from `--debian`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts;

/// The Rust programs (packages in `user/`), packed as `/bin/<package>`.
pub const RUST_PROGRAMS: &[&str] = &[
    "demo",
    "usertests",
    "faulter",
    "bench",
    "forktorture",
    "echoline",
    "fuzz",
];
/// The programs a test ramdisk must carry (the glibc builds are optional: they need glibc's
/// libc.a).
pub const EXPECTED_PROGRAMS: &[&str] = &[
    "demo",
    "usertests",
    "faulter",
    "bench",
    "forktorture",
    "echoline",
    "fuzz",
    "hello-musl",
    "realloc-grow-musl",
];
/// Code generation for the user programs: absolute addresses (non-PIE; the link arguments
/// `--no-pie --image-base=0x400000` come from each program's build.rs), the small code model
/// (the target defaults to the kernel model), frame pointers for backtraces.
pub const RUSTFLAGS: &str =
    "-C relocation-model=static -C code-model=small -C force-frame-pointers=yes";
/// The C programs: (source, name), each built as `NAME-musl` and `NAME-glibc`.
const C_PROGRAMS: &[(&str, &str)] = &[
    ("user/c/hello_pthread.c", "hello"),
    ("user/c/realloc_grow.c", "realloc-grow"),
];

/// One built program.
#[derive(Clone)]
pub struct Program {
    pub name: String,
    pub path: PathBuf,
}

/// Where the user programs are built (a target directory of their own: other RUSTFLAGS).
pub fn target_dir() -> PathBuf {
    artifacts::target_dir().join("user")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_owned()
}

/// A cargo command for the user programs: their target, target directory and flags.
pub fn cargo_command(subcommand: &str) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg(subcommand)
        .args(["--release", "--target", "x86_64-unknown-none"])
        .env("CARGO_TARGET_DIR", target_dir())
        .env("RUSTFLAGS", RUSTFLAGS)
        // Without DWARF (the symbol table stays): the ramdisk, which the BIOS loader reads
        // slowly under TCG, is a quarter of the size.
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .current_dir(workspace_root());
    for name in RUST_PROGRAMS {
        cmd.args(["--package", name]);
    }
    cmd
}

/// Builds every user program and checks that each is a static executable.
pub fn build_all() -> Result<Vec<Program>, String> {
    let status = cargo_command("build")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("the user programs did not build (the compiler's messages are above)".into());
    }
    let bin = target_dir().join("x86_64-unknown-none").join("release");
    let mut programs: Vec<Program> = RUST_PROGRAMS
        .iter()
        .map(|name| Program {
            name: (*name).into(),
            path: bin.join(name),
        })
        .collect();
    programs.extend(build_c()?);
    for program in &programs {
        let data = std::fs::read(&program.path)
            .map_err(|e| format!("cannot read {}: {e}", program.path.display()))?;
        check_static_elf(&data).map_err(|why| format!("{} {why}", program.path.display()))?;
    }
    Ok(programs)
}

/// `NAME-musl` for every C program (required; musl-tools is installed when missing) and
/// `NAME-glibc` (when the host's gcc can link statically).
fn build_c() -> Result<Vec<Program>, String> {
    let out = target_dir().join("c");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let musl_gcc = crate::install::ensure_musl_gcc()?;
    let mut programs = Vec::new();
    for (source_path, name) in C_PROGRAMS {
        let source = workspace_root().join(source_path);
        let musl = out.join(format!("{name}-musl"));
        compile_c(&musl_gcc, &source, &musl)
            .map_err(|why| format!("musl-gcc could not build {source_path}: {why}"))?;
        programs.push(Program {
            name: format!("{name}-musl"),
            path: musl,
        });
        let glibc = out.join(format!("{name}-glibc"));
        match compile_c(Path::new("gcc"), &source, &glibc) {
            Ok(()) => programs.push(Program {
                name: format!("{name}-glibc"),
                path: glibc,
            }),
            Err(why) => eprintln!("xtask: skipping {name}-glibc (gcc -static: {why})"),
        }
    }
    Ok(programs)
}

/// Compiles `source` into the static executable `out`, unless `out` is newer than `source`.
fn compile_c(compiler: &Path, source: &Path, out: &Path) -> Result<(), String> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(src), Some(bin)) = (modified(source), modified(out))
        && bin > src
    {
        return Ok(());
    }
    let output = Command::new(compiler)
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(out)
        .arg(source)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", compiler.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&output.stderr);
        Err(text.lines().next().unwrap_or("failed").trim().to_owned())
    }
}

/// Checks that `data` is a static x86_64 executable the kernel can load: see
/// [`elf_interpreter`], and no PT_INTERP. The error completes the sentence "PATH ...".
pub fn check_static_elf(data: &[u8]) -> Result<(), String> {
    match elf_interpreter(data)? {
        None => Ok(()),
        Some(interp) => Err(format!(
            "is dynamically linked (interpreter {interp}); build it with -static"
        )),
    }
}

/// Checks that `data` is an x86_64 executable the kernel can load: ELF64, little-endian,
/// x86_64, an executable (ET_EXEC) or a position-independent one (ET_DYN with an entry point,
/// such as a PIE or the dynamic linker itself); returns the path in its PT_INTERP, if it has
/// one. The error completes the sentence "PATH ...".
pub fn elf_interpreter(data: &[u8]) -> Result<Option<String>, String> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    if data[4] != 2 || data[5] != 1 {
        return Err("is not a 64-bit little-endian ELF file (x86_64 is needed)".into());
    }
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap_or([0; 8]));
    let machine = u16_at(18);
    if machine != 62 {
        return Err(format!(
            "is built for ELF machine {machine}, not x86_64 (62)"
        ));
    }
    let kind = u16_at(16);
    let entry = u64_at(24);
    match kind {
        2 => {}
        3 if entry != 0 => {}
        3 => return Err("is a shared library, not an executable".into()),
        1 => return Err("is an object file, not an executable (link it)".into()),
        other => return Err(format!("is not an executable (ELF type {other})")),
    }
    let phoff = usize::try_from(u64_at(32)).unwrap_or(usize::MAX);
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    let table_end = phnum
        .checked_mul(phentsize)
        .and_then(|len| len.checked_add(phoff));
    if phentsize < 56 || table_end.is_none_or(|end| end > data.len()) {
        return Err("has a damaged program header table".into());
    }
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph) == 3 {
            // PT_INTERP: the dynamic loader's path.
            let offset = usize::try_from(u64_at(ph + 8)).unwrap_or(usize::MAX);
            let size = usize::try_from(u64_at(ph + 32)).unwrap_or(0);
            let interp = data
                .get(offset..offset.saturating_add(size))
                .map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned())
                .unwrap_or_else(|| "?".into());
            return Ok(Some(interp));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header and one program header of type `ph_type`.
    fn elf(kind: u16, machine: u16, entry: u64, ph_type: u32, interp: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 64 + 56];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2;
        d[5] = 1;
        d[16..18].copy_from_slice(&kind.to_le_bytes());
        d[18..20].copy_from_slice(&machine.to_le_bytes());
        d[24..32].copy_from_slice(&entry.to_le_bytes());
        d[32..40].copy_from_slice(&64u64.to_le_bytes());
        d[54..56].copy_from_slice(&56u16.to_le_bytes());
        d[56..58].copy_from_slice(&1u16.to_le_bytes());
        d[64..68].copy_from_slice(&ph_type.to_le_bytes());
        let at = d.len() as u64;
        d[64 + 8..64 + 16].copy_from_slice(&at.to_le_bytes());
        d[64 + 32..64 + 40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
        d.extend_from_slice(interp);
        d
    }

    #[test]
    fn accepts_static_executables() {
        assert_eq!(check_static_elf(&elf(2, 62, 0x401000, 1, b"")), Ok(()));
        assert_eq!(check_static_elf(&elf(3, 62, 0x1000, 1, b"")), Ok(()));
    }

    #[test]
    fn names_what_is_wrong() {
        let dynamic = elf(3, 62, 0x1000, 3, b"/lib64/ld-linux-x86-64.so.2\0");
        assert_eq!(
            check_static_elf(&dynamic),
            Err(
                "is dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2); \
                 build it with -static"
                    .into()
            )
        );
        assert!(
            check_static_elf(b"#!/bin/sh\n")
                .unwrap_err()
                .contains("not an ELF")
        );
        assert!(
            check_static_elf(&elf(2, 183, 1, 1, b""))
                .unwrap_err()
                .contains("machine 183")
        );
        assert!(
            check_static_elf(&elf(3, 62, 0, 1, b""))
                .unwrap_err()
                .contains("shared library")
        );
        let mut truncated = elf(2, 62, 1, 1, b"");
        truncated.truncate(80);
        assert!(
            check_static_elf(&truncated)
                .unwrap_err()
                .contains("program header")
        );
    }
}
