//! Files whose text is made when they are opened (`/proc`, `/sys`), and the text formats the
//! two share (CPU lists and masks).
//!
//! The text is a snapshot kept with the open description (`File::set_private`): reads at any
//! offset, `pread` and `lseek` see one version of it, made at `open`, as a program that reads
//! such a file in pieces expects. Nothing here has a lock of its own: a snapshot is written
//! once and then only read.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Write;

use super::file::File;
use super::{FileKind, FsKind, Inode, Stat, allocate_inode_number};
use crate::arch::percpu::CpuSet;
use crate::syscall::errno::{EINVAL, Errno};

/// The text of one open description of a generated file.
struct Snapshot(Vec<u8>);

/// Keeps `text` as what reads of `file` return (a generated file's `open` hook).
pub fn keep(file: &File, text: Vec<u8>) {
    file.set_private(Snapshot(text));
}

/// Reads `file`'s snapshot at `offset` into `buf`; 0 at its end.
pub fn read(file: &File, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let Some(Snapshot(text)) = file.private::<Snapshot>() else {
        return Ok(0);
    };
    let start = usize::try_from(offset).map_or(text.len(), |o| o.min(text.len()));
    let count = buf.len().min(text.len() - start);
    buf[..count].copy_from_slice(&text[start..start + count]);
    Ok(count)
}

/// What `stat` says of a generated file: a regular file of size 0 (as Linux's `/proc` and
/// `/sys` files are: the size is known only once the text is made), `mode` its permissions,
/// times the boot's.
pub fn file_stat(fs: FsKind, ino: u64, mode: u32) -> Stat {
    let boot = crate::time::realtime_offset_ns();
    Stat {
        dev: fs.device(),
        ino,
        mode: FileKind::Regular.mode_bits() | mode,
        nlink: 1,
        blksize: 1024,
        mtime_ns: boot,
        ctime_ns: boot,
        ..Stat::default()
    }
}

/// A regular file whose text a function makes at each open.
pub struct TextFile {
    ino: u64,
    fs: FsKind,
    make: Box<dyn Fn() -> String + Send + Sync>,
}

impl TextFile {
    pub fn new(fs: FsKind, make: impl Fn() -> String + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            fs,
            make: Box::new(make),
        })
    }

    /// A file whose text never changes.
    pub fn fixed(fs: FsKind, text: String) -> Arc<Self> {
        Self::new(fs, move || text.clone())
    }
}

impl Inode for TextFile {
    fn kind(&self) -> FileKind {
        FileKind::Regular
    }

    fn stat(&self) -> Stat {
        file_stat(self.fs, self.ino, 0o444)
    }

    fn fs(&self) -> FsKind {
        self.fs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, file: &File) -> Result<(), Errno> {
        keep(file, (self.make)().into_bytes());
        Ok(())
    }

    fn read_at(&self, file: &File, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        read(file, offset, buf)
    }

    /// As on Linux, a file with nothing to write to opens for writing (root may) but takes no
    /// write.
    fn write_at(&self, _file: &File, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(EINVAL)
    }
}

/// A CPU set as Linux's lists show it (`/sys/devices/system/cpu/online`, `Cpus_allowed_list`):
/// ranges and single CPUs, comma-separated (`0-3,6`), without a newline.
pub fn cpu_list(cpus: CpuSet) -> String {
    let mut text = String::new();
    let mut indices = cpus.iter().peekable();
    while let Some(first) = indices.next() {
        let mut last = first;
        while indices.peek() == Some(&(last + 1)) {
            last += 1;
            indices.next();
        }
        if !text.is_empty() {
            text.push(',');
        }
        // Writing to a `String` cannot fail.
        let _ = match last {
            last if last == first => write!(text, "{first}"),
            last => write!(text, "{first}-{last}"),
        };
    }
    text
}

/// A CPU set as Linux's masks show it (`thread_siblings`, `Cpus_allowed`): hexadecimal, as
/// many digits as `possible` CPUs need, a comma between groups of 32 CPUs; no newline.
pub fn cpu_mask(cpus: CpuSet, possible: usize) -> String {
    let digits = possible.max(1).div_ceil(4);
    let mut text = String::new();
    for digit in (0..digits).rev() {
        let nibble = (cpus.0.checked_shr(digit as u32 * 4).unwrap_or(0) & 0xf) as u32;
        text.push(char::from_digit(nibble, 16).unwrap_or('0'));
        if digit % 8 == 0 && digit > 0 {
            text.push(',');
        }
    }
    text
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::{cpu_list, cpu_mask};
    use crate::arch::percpu::CpuSet;
    use crate::ktest;

    ktest! {
        /// CPU lists and masks read as Linux writes them.
        fn cpu_lists_and_masks_are_written_as_linux_writes_them() {
            assert_eq!(cpu_list(CpuSet(0b1111)), "0-3");
            assert_eq!(cpu_list(CpuSet(0b1)), "0");
            assert_eq!(cpu_list(CpuSet(0b1101_0110)), "1-2,4,6-7");
            assert_eq!(cpu_list(CpuSet(0)), "");
            assert_eq!(cpu_mask(CpuSet(0b1111), 4), "f");
            assert_eq!(cpu_mask(CpuSet(0b1), 2), "1");
            assert_eq!(cpu_mask(CpuSet(0b10), 16), "0002");
            assert_eq!(cpu_mask(CpuSet(1 << 32 | 1), 36), "1,00000001");
        }
    }
}
