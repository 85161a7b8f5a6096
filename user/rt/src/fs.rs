//! Directory helpers over the raw calls: the entries of an open directory, and the removal of
//! a whole tree.

use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::sys::{self, AT_FDCWD, Errno};

/// One directory entry as getdents64 gives it: the name and `d_type`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: String,
    pub kind: u8,
}

/// The entries of the open directory `fd` from its offset on (`.` and `..` included), in the
/// order getdents64 gives them.
pub fn dir_entries(fd: usize) -> Result<Vec<DirEntry>, Errno> {
    let mut out = Vec::new();
    // 8-byte aligned: the records' 64-bit fields are read in place.
    let mut buf = [0u64; 512];
    loop {
        let len = sys::getdents64(fd, buf.as_mut_ptr() as usize, 8 * buf.len())?;
        if len == 0 {
            return Ok(out);
        }
        // SAFETY: the kernel wrote `len` bytes of the buffer.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, len) };
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name NUL-ended.
        let mut at = 0;
        while at + 19 <= len {
            let reclen = u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
            if reclen < 20 || at + reclen > len {
                return Err(Errno::EIO);
            }
            let name = &bytes[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            out.push(DirEntry {
                name: String::from_utf8_lossy(name).into_owned(),
                kind: bytes[at + 18],
            });
            at += reclen;
        }
    }
}

/// Removes `path` and, if it is a directory, everything under it (symbolic links are removed,
/// not followed).
pub fn remove_tree(path: &str) -> Result<(), Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    match sys::unlinkat(AT_FDCWD, c.as_ptr() as usize, 0) {
        Ok(_) => return Ok(()),
        // A directory (Linux says EISDIR; POSIX allows EPERM).
        Err(Errno::EISDIR | Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let flags = sys::O_RDONLY | sys::O_DIRECTORY | sys::O_NOFOLLOW | sys::O_CLOEXEC;
    let dir = sys::openat(AT_FDCWD, c.as_ptr() as usize, flags, 0)?;
    let entries = dir_entries(dir);
    let _ = sys::close(dir);
    for entry in entries? {
        if entry.name != "." && entry.name != ".." {
            remove_tree(&format!("{path}/{}", entry.name))?;
        }
    }
    sys::unlinkat(AT_FDCWD, c.as_ptr() as usize, sys::AT_REMOVEDIR).map(|_| ())
}
