//! Private copies of files in the system's temporary directory, removed when dropped.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A file in [`std::env::temp_dir`] that is deleted when this value is dropped.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Copies `source` to a new file in the temporary directory whose name ends in `suffix`.
    ///
    /// The copy is created exclusively (a name already taken, say by a crashed earlier run, is
    /// skipped) and is writable whatever the source's permissions.
    pub(crate) fn copy_of(source: &Path, suffix: &str) -> io::Result<TempFile> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let mut input = File::open(source)?;
        let dir = std::env::temp_dir();
        let pid = std::process::id();
        let (temp, mut output) = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("qemu-{pid}-{n}-{suffix}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (TempFile { path }, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        // On error `temp` is dropped, which removes the partial copy.
        io::copy(&mut input, &mut output)?;
        output.sync_all()?;
        Ok(temp)
    }

    /// Where the copy is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Nothing useful can be done if this fails; the file is in the temporary directory.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn copies_are_private_and_removed_on_drop() {
        let dir = TempDir::new("tempfile");
        let source = dir.file("VARS.fd", b"variables");
        let mut perms = fs::metadata(&source).expect("metadata").permissions();
        perms.set_readonly(true);
        fs::set_permissions(&source, perms).expect("chmod");

        let a = TempFile::copy_of(&source, "VARS.fd").expect("copy a");
        let b = TempFile::copy_of(&source, "VARS.fd").expect("copy b");
        assert_ne!(a.path(), b.path());
        assert_eq!(fs::read(a.path()).expect("read"), b"variables");
        assert!(
            !fs::metadata(a.path())
                .expect("meta")
                .permissions()
                .readonly()
        );

        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists());
        assert!(b.path().exists());
    }

    #[test]
    fn missing_source_is_an_error() {
        let dir = TempDir::new("tempfile-missing");
        assert!(TempFile::copy_of(&dir.path().join("nope"), "x").is_err());
    }
}
