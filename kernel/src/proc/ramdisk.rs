//! The ramdisk the bootloader handed over (a cpio archive, read in place): executables under
//! `/bin`, the kernel options, the symbol map. Set once at boot, read-only afterwards.

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
