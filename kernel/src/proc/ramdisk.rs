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

/// Whether `path` (absolute) is a directory: the root, or a directory packed as such (every
/// file's parent directories are).
pub fn is_dir(path: &str) -> bool {
    RAMDISK.get().is_some_and(|bytes| {
        path.trim_matches('/').is_empty()
            || initrd::Archive::new(bytes)
                .find(path)
                .is_some_and(|entry| entry.is_dir())
    })
}
