//! The ramdisk the bootloader handed over (a cpio archive, read in place): the kernel options
//! and the symbol map are read from it directly; the root file system is unpacked from it
//! (`fs::tmpfs`). Set once at boot, read-only afterwards.

use spin::Once;

static RAMDISK: Once<&'static [u8]> = Once::new();

pub fn init(bytes: &'static [u8]) {
    RAMDISK.call_once(|| bytes);
}

/// The contents of the regular file at `path` (absolute, as packed).
pub fn find(path: &str) -> Option<&'static [u8]> {
    let bytes = *RAMDISK.get()?;
    let entry = initrd::Archive::new(bytes).find(path)?;
    entry.is_file().then_some(entry.data)
}

/// The whole archive (the root file system is unpacked from it at boot).
pub fn bytes() -> Option<&'static [u8]> {
    RAMDISK.get().copied()
}
