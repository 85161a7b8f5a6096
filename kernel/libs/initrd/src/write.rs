//! The archive writer (feature `std`), for host tools.

use std::collections::BTreeMap;
use std::fmt;

use crate::{MAGIC, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, TRAILER};

/// Longest name Linux unpacks, in bytes with the terminating NUL (`PATH_MAX`); longer names are
/// skipped by its initramfs code.
const NAME_MAX_WITH_NUL: usize = 4096;
/// Permission bits (including set-id and sticky bits) of a `mode`.
const PERMISSIONS: u32 = 0o7777;
/// Mode of the parent directories created implicitly.
const IMPLICIT_DIR_MODE: u32 = 0o755;
/// Permission bits of a symbolic link, as Linux shows them (they are never checked).
const SYMLINK_MODE: u32 = 0o777;

/// Builds a cpio newc archive in memory, as Linux's initramfs and [`crate::Archive`] read it.
///
/// Paths are relative to the archive root: leading `/`, empty and `.` components are dropped,
/// so `"/etc//cmdline"` and `"./etc/cmdline"` both name `etc/cmdline`. The parent directories of
/// every path are created as needed, once each, with mode `0o755`.
///
/// The output is deterministic: entries come in the byte order of their paths (which puts every
/// directory before its contents) whatever order they were added in, inode numbers count up from
/// 1 in that order, and `mtime`, `uid`, `gid` and the device numbers are 0 (`rdevmajor` and
/// `rdevminor` of a device node excepted); `nlink` is 2 for directories and 1 for the rest.
/// A symbolic link is stored as Linux's initramfs expects: mode `0o120777`, its target as data.
#[derive(Clone, Debug, Default)]
pub struct ArchiveBuilder {
    /// Everything added so far, by normalised path.
    nodes: BTreeMap<String, Node>,
}

/// An inode to be written.
#[derive(Clone, Debug)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    CharDevice { mode: u32, major: u32, minor: u32 },
    Symlink { target: String },
}

impl ArchiveBuilder {
    /// An empty archive.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the directory `path` with permission bits `mode` (e.g. `0o755`; the file type bits
    /// are ignored). If the directory already exists, explicitly or as an implicit parent, this
    /// sets its mode.
    ///
    /// # Errors
    ///
    /// An invalid or too long `path` (see [`BuildError`]), or one where a file already is.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), BuildError> {
        let path = clean_path(path)?;
        self.create_parents(&path)?;
        let mode = mode & PERMISSIONS;
        match self.nodes.get_mut(&path) {
            Some(Node::Dir { mode: old }) => *old = mode,
            Some(Node::File { .. } | Node::CharDevice { .. } | Node::Symlink { .. }) => {
                return Err(BuildError::Exists(path));
            }
            None => {
                self.nodes.insert(path, Node::Dir { mode });
            }
        }
        Ok(())
    }

    /// Adds the regular file `path` with permission bits `mode` (e.g. `0o644`; the file type bits
    /// are ignored) and contents `data`.
    ///
    /// # Errors
    ///
    /// An invalid or too long `path` (see [`BuildError`]), one that already exists, `data` of
    /// 4 GiB or more.
    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), BuildError> {
        let path = clean_path(path)?;
        if u32::try_from(data.len()).is_err() {
            return Err(BuildError::FileTooLarge(path));
        }
        self.create_parents(&path)?;
        if self.nodes.contains_key(&path) {
            return Err(BuildError::Exists(path));
        }
        let node = Node::File {
            mode: mode & PERMISSIONS,
            data: data.to_vec(),
        };
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Adds the character device node `path` with permission bits `mode` and device number
    /// `major:minor` (Linux's initramfs creates it with mknod; `/dev/console` is 5:1).
    ///
    /// # Errors
    ///
    /// An invalid or too long `path` (see [`BuildError`]), or one that already exists.
    pub fn add_char_device(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), BuildError> {
        let path = clean_path(path)?;
        self.create_parents(&path)?;
        if self.nodes.contains_key(&path) {
            return Err(BuildError::Exists(path));
        }
        let node = Node::CharDevice {
            mode: mode & PERMISSIONS,
            major,
            minor,
        };
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Adds the symbolic link `path` pointing to `target`, which is stored as given: absolute
    /// or relative, and never resolved (it may name something not in the archive). A path
    /// below the link cannot be added afterwards: the archive's directories are its own.
    ///
    /// # Errors
    ///
    /// An invalid or too long `path` (see [`BuildError`]), one that already exists, or a
    /// `target` that is empty, holds a NUL byte or is 4096 bytes or longer.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), BuildError> {
        let path = clean_path(path)?;
        if target.is_empty() || target.contains('\0') || target.len() >= NAME_MAX_WITH_NUL {
            return Err(BuildError::InvalidTarget(path));
        }
        self.create_parents(&path)?;
        if self.nodes.contains_key(&path) {
            return Err(BuildError::Exists(path));
        }
        let node = Node::Symlink {
            target: target.into(),
        };
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Writes the archive: every entry, then the `TRAILER!!!` entry.
    #[must_use]
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, node)) in (1..).zip(&self.nodes) {
            let (mode, nlink, data, rdev) = match node {
                Node::Dir { mode } => (S_IFDIR | mode, 2, &[][..], (0, 0)),
                Node::File { mode, data } => (S_IFREG | mode, 1, &data[..], (0, 0)),
                Node::CharDevice { mode, major, minor } => {
                    (S_IFCHR | mode, 1, &[][..], (*major, *minor))
                }
                Node::Symlink { target } => (S_IFLNK | SYMLINK_MODE, 1, target.as_bytes(), (0, 0)),
            };
            push_entry(&mut out, ino, mode, nlink, path, data, rdev);
        }
        push_entry(&mut out, 0, 0, 1, TRAILER, &[], (0, 0));
        out
    }

    /// Adds the missing parent directories of the (normalised) `path`.
    fn create_parents(&mut self, path: &str) -> Result<(), BuildError> {
        let parents = path.match_indices('/').map(|(slash, _)| &path[..slash]);
        for parent in parents {
            match self.nodes.get(parent) {
                Some(Node::Dir { .. }) => {}
                Some(Node::File { .. } | Node::CharDevice { .. } | Node::Symlink { .. }) => {
                    return Err(BuildError::NotADirectory(parent.into()));
                }
                None => {
                    let node = Node::Dir {
                        mode: IMPLICIT_DIR_MODE,
                    };
                    self.nodes.insert(parent.into(), node);
                }
            }
        }
        Ok(())
    }
}

/// Why [`ArchiveBuilder`] refused a path. Each variant holds the path concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The path names the root, contains a `..` component or a NUL byte.
    InvalidPath(String),
    /// The path, normalised, is longer than the 4095 bytes Linux accepts.
    PathTooLong(String),
    /// The file's data is 4 GiB or more, too large for the `filesize` field.
    FileTooLarge(String),
    /// A file or link was added where something already is, or a directory where a file or
    /// link is.
    Exists(String),
    /// A parent of the path is a file (or a symbolic link: links are not followed).
    NotADirectory(String),
    /// The target of the symbolic link at the path is empty, holds a NUL byte or is too long.
    InvalidTarget(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPath(path) => write!(f, "invalid path {path:?} in archive"),
            Self::PathTooLong(path) => write!(f, "path {path:?} is too long for an archive"),
            Self::FileTooLarge(path) => write!(f, "file {path:?} is too large for an archive"),
            Self::Exists(path) => write!(f, "{path:?} is already in the archive"),
            Self::NotADirectory(path) => {
                write!(f, "{path:?} is a file in the archive, not a directory")
            }
            Self::InvalidTarget(path) => {
                write!(
                    f,
                    "symbolic link {path:?} has an empty, too long or NUL-holding target"
                )
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Normalises `path` to its non-empty, non-`.` components joined by `/`, and checks it.
fn clean_path(path: &str) -> Result<String, BuildError> {
    let invalid = || BuildError::InvalidPath(path.into());
    if path.contains('\0') {
        return Err(invalid());
    }
    let mut components = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .peekable();
    if components.peek().is_none() || path.split('/').any(|c| c == "..") {
        return Err(invalid());
    }
    let cleaned = components.collect::<Vec<_>>().join("/");
    if cleaned.len() >= NAME_MAX_WITH_NUL {
        return Err(BuildError::PathTooLong(cleaned));
    }
    Ok(cleaned)
}

/// Appends one entry: header, NUL-terminated `name`, `data`, each padded to 4 bytes; `rdev` is
/// the (major, minor) device number of a device node.
fn push_entry(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    data: &[u8],
    rdev: (u32, u32),
) {
    // Both fit: `clean_path` bounds names, `add_file` the data and `add_symlink` the target.
    let namesize = (name.len() + 1) as u32;
    let filesize = data.len() as u32;
    let (rmajor, rminor) = rdev;
    let fields = [
        ino, mode, 0, 0, nlink, 0, filesize, 0, 0, rmajor, rminor, namesize, 0,
    ];
    out.extend_from_slice(MAGIC);
    for field in fields {
        out.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad(out);
    out.extend_from_slice(data);
    pad(out);
}

/// Appends NULs up to the next multiple of 4 bytes.
fn pad(out: &mut Vec<u8>) {
    let padding = out.len().wrapping_neg() % 4;
    out.resize(out.len() + padding, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_normalises() {
        assert_eq!(clean_path("/etc//cmdline/").unwrap(), "etc/cmdline");
        assert_eq!(clean_path("./bin/./init").unwrap(), "bin/init");
        assert_eq!(clean_path("x").unwrap(), "x");
    }

    #[test]
    fn char_device_header() {
        let mut b = ArchiveBuilder::new();
        b.add_char_device("/dev/console", 0o600, 5, 1).unwrap();
        assert_eq!(
            b.add_char_device("dev/console", 0o600, 5, 1),
            Err(BuildError::Exists("dev/console".into()))
        );
        let out = b.finish();
        let text = String::from_utf8_lossy(&out);
        let at = text.find("dev/console").unwrap();
        let header = &text[at - 110..at];
        let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
        assert_eq!(field(1), S_IFCHR | 0o600);
        assert_eq!((field(9), field(10)), (5, 1));
        assert_eq!(field(6), 0);
        // The parent directory comes first.
        assert!(text.find("dev\0").unwrap() < at);
    }

    #[test]
    fn symlink_entries() {
        let mut b = ArchiveBuilder::new();
        b.add_symlink("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld.so")
            .unwrap();
        b.add_symlink("usr/bin/awk", "mawk").unwrap();
        assert_eq!(
            b.add_symlink("usr/bin/awk", "gawk"),
            Err(BuildError::Exists("usr/bin/awk".into()))
        );
        assert_eq!(
            b.add_dir("usr/bin/awk", 0o755),
            Err(BuildError::Exists("usr/bin/awk".into()))
        );
        assert_eq!(
            b.add_file("usr/bin/awk/x", 0o644, b""),
            Err(BuildError::NotADirectory("usr/bin/awk".into()))
        );
        for bad in ["", "a\0b"] {
            assert_eq!(
                b.add_symlink("bad", bad),
                Err(BuildError::InvalidTarget("bad".into()))
            );
        }
        let long = "t".repeat(NAME_MAX_WITH_NUL);
        assert!(b.add_symlink("bad", &long).is_err());
        assert!(b.add_symlink("long", &long[1..]).is_ok());
        let out = b.finish();
        let text = String::from_utf8_lossy(&out);
        let at = text.find("usr/bin/awk\0").unwrap();
        let header = &text[at - 110..at];
        let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
        assert_eq!(field(1), S_IFLNK | 0o777);
        assert_eq!(field(4), 1);
        assert_eq!(field(6), 4);
        // The target is the data: after the name (11 bytes and a NUL), padded to 4 bytes.
        let data_at = (at + 12).next_multiple_of(4);
        assert_eq!(&out[data_at..data_at + 4], b"mawk");
    }

    #[test]
    fn clean_path_rejects() {
        for bad in ["", "/", ".", "./", "a/../b", "..", "a\0b"] {
            assert_eq!(
                clean_path(bad),
                Err(BuildError::InvalidPath(bad.into())),
                "{bad:?}"
            );
        }
        let long = "a".repeat(NAME_MAX_WITH_NUL);
        assert!(matches!(clean_path(&long), Err(BuildError::PathTooLong(_))));
        assert!(clean_path(&long[1..]).is_ok());
    }
}
