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

/// What a path that names no regular file names instead, for `execve`'s error: a directory
/// (an entry of that kind, or the parent of entries) or a path through a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAFile {
    Directory,
    /// A component before the last is a regular file (`ENOTDIR`).
    ThroughAFile,
    Missing,
}

/// Why `path` (absolute) names no regular file.
pub fn why_not_a_file(path: &str) -> NotAFile {
    let Some(bytes) = RAMDISK.get() else {
        return NotAFile::Missing;
    };
    let archive = initrd::Archive::new(bytes);
    let path = path.trim_end_matches('/');
    let mut prefix = path;
    while let Some((parent, _)) = prefix.rsplit_once('/') {
        if !parent.is_empty() && archive.find(parent).is_some_and(|e| e.is_file()) {
            return NotAFile::ThroughAFile;
        }
        prefix = parent;
    }
    let inside = alloc::format!("{}/", path.trim_start_matches('/'));
    let is_directory = path.is_empty()
        || archive
            .find(path)
            .is_some_and(|e| e.mode & 0o170_000 == 0o040_000)
        || archive
            .iter()
            .filter_map(Result::ok)
            .any(|e| e.name.trim_start_matches('/').starts_with(inside.as_str()));
    if is_directory {
        NotAFile::Directory
    } else {
        NotAFile::Missing
    }
}
