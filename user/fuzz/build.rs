//! Links the program as a static non-PIE executable at 0x400000. The code generation side
//! (`-C relocation-model=static -C code-model=small`) comes from xtask's RUSTFLAGS for the user
//! programs (xtask/src/user.rs); host builds (clippy of the workspace) link nothing.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=--image-base=0x400000");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
