//! The ramdisk every image carries: a cpio (newc) archive with the kernel options
//! (`/etc/cmdline`) and the kernel's symbol map (`/boot/kernel.sym`). User programs join later.

use std::path::Path;

use initrd::ArchiveBuilder;

pub fn pack(cmdline: &str, kernel_elf: &Path, out: &Path) -> Result<(), String> {
    let elf = std::fs::read(kernel_elf)
        .map_err(|e| format!("cannot read the kernel {}: {e}", kernel_elf.display()))?;
    let symbols = crate::symbols::symbol_map(&elf)?;
    let mut archive = ArchiveBuilder::new();
    let add = |archive: &mut ArchiveBuilder, path: &str, data: &[u8]| {
        archive
            .add_file(path, 0o644, data)
            .map_err(|e| format!("ramdisk: {e}"))
    };
    add(
        &mut archive,
        "etc/cmdline",
        format!("{cmdline}\n").as_bytes(),
    )?;
    add(&mut archive, "boot/kernel.sym", symbols.as_bytes())?;
    std::fs::write(out, archive.finish())
        .map_err(|e| format!("cannot write the ramdisk {}: {e}", out.display()))
}
