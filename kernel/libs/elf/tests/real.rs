//! Executables made by a real toolchain: static and static-PIE from gcc, and a dynamic /bin/ls.

use std::path::PathBuf;
use std::process::Command;

use elf::{Limits, Program, parse};

/// Compiles a tiny C program with `gcc -O1 <flags>`, or `None` (with a note) if that fails.
fn compile(flags: &[&str]) -> Option<Vec<u8>> {
    let name = flags.concat().replace([',', '='], "");
    let dir = std::env::temp_dir().join(format!("elf-test-{}{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source: PathBuf = dir.join("hello.c");
    std::fs::write(
        &source,
        "int main(int c, char **v) { return c + v[0][0]; }\n",
    )
    .unwrap();
    let out = dir.join("hello");
    let status = Command::new("gcc")
        .arg("-O1")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .output();
    let bytes = match status {
        Ok(output) if output.status.success() => std::fs::read(&out).ok(),
        _ => None,
    };
    std::fs::remove_dir_all(&dir).ok();
    if bytes.is_none() {
        println!("note: `gcc {flags:?}` with a static libc is unavailable; skipping");
    }
    bytes
}

/// Checks what the loader relies on in a program built by gcc.
fn check(program: &Program) {
    assert!(program.segments.len() >= 2, "{:#x?}", program.segments);
    assert!(
        program
            .segments
            .iter()
            .any(|s| s.writable && s.memsz > s.filesz),
        "no .bss"
    );
    let entry = program.entry;
    let text = program
        .segments
        .iter()
        .find(|s| s.vaddr <= entry && entry < s.end());
    assert!(text.is_some_and(|s| s.executable), "entry {entry:#x}");
    assert!(
        !program.stack_executable,
        "gcc marks the stack non-executable"
    );
    assert_eq!(program.phent, 56);
    let phdr = program
        .phdr_vaddr
        .expect("program headers must be found for AT_PHDR");
    assert!(
        program
            .segments
            .iter()
            .any(|s| s.vaddr <= phdr && phdr < s.end())
    );
}

#[test]
fn gcc_static() {
    let Some(bytes) = compile(&["-static"]) else {
        return;
    };
    let program = parse(&bytes, &Limits::DEFAULT).unwrap();
    assert!(!program.is_pie);
    assert!(program.segments[0].vaddr >= 0x40_0000);
    check(&program);
}

#[test]
fn gcc_static_pie() {
    let Some(bytes) = compile(&["-static-pie"]) else {
        return;
    };
    let program = parse(&bytes, &Limits::DEFAULT).unwrap();
    assert!(program.is_pie);
    assert_eq!(program.segments[0].vaddr, 0);
    check(&program);
    let moved = program
        .relocated(0x5555_5555_0000, &Limits::DEFAULT)
        .unwrap();
    assert_eq!(moved.entry, program.entry + 0x5555_5555_0000);
    check(&moved);
}

#[test]
fn gcc_static_with_segments_sharing_pages() {
    let flags = [
        "-static",
        "-Wl,-z,noseparate-code,-z,max-page-size=0x10,-z,common-page-size=0x10",
    ];
    let Some(bytes) = compile(&flags) else { return };
    let program = parse(&bytes, &Limits::DEFAULT).unwrap();
    check(&program);
    let pages = |s: &elf::Segment| (s.vaddr >> 12, (s.end() - 1) >> 12);
    let shared = program
        .segments
        .windows(2)
        .any(|w| pages(&w[0]).1 == pages(&w[1]).0);
    assert!(shared, "{:#x?}", program.segments);
}

#[test]
fn dynamic_bin_ls_names_its_interpreter() {
    let Ok(bytes) = std::fs::read("/bin/ls") else {
        println!("note: no /bin/ls; skipping");
        return;
    };
    let program = parse(&bytes, &Limits::DEFAULT).expect("/bin/ls parses");
    let interpreter = program.interpreter.expect("/bin/ls is dynamically linked");
    assert!(interpreter.contains("ld-linux"), "{interpreter}");
}
