//! `/dev`: the character devices every program expects (console, tty, ttyS0, null, zero, full,
//! random, urandom) in a fixed directory, and [`StaticDir`], the fixed directory itself (also
//! what `/sys` is built from).
//!
//! `console`, `tty` and `ttyS0` are the serial console's terminal ([`super::tty`]); the others
//! are answered here.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::file::File;
use super::tty::TerminalDevice;
use super::{DirEntry, FileKind, FsKind, Inode, Stat, allocate_inode_number};
use crate::syscall::errno::{ENOENT, ENOSPC, Errno};

/// A directory whose entries are fixed when it is made.
pub struct StaticDir {
    ino: u64,
    fs: FsKind,
    entries: Vec<(String, Arc<dyn Inode>)>,
}

impl StaticDir {
    pub fn new(fs: FsKind, entries: Vec<(&str, Arc<dyn Inode>)>) -> Arc<Self> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            fs,
            entries: entries
                .into_iter()
                .map(|(name, inode)| (name.to_string(), inode))
                .collect(),
        })
    }
}

impl Inode for StaticDir {
    fn kind(&self) -> FileKind {
        FileKind::Directory
    }

    fn stat(&self) -> Stat {
        let subdirectories = self
            .entries
            .iter()
            .filter(|(_, inode)| inode.kind() == FileKind::Directory)
            .count() as u32;
        Stat {
            dev: self.fs.device(),
            ino: self.ino,
            mode: FileKind::Directory.mode_bits() | 0o755,
            nlink: 2 + subdirectories,
            blksize: 4096,
            ..Stat::default()
        }
    }

    fn fs(&self) -> FsKind {
        self.fs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        self.entries
            .iter()
            .find(|(entry, _)| entry == name)
            .map(|(_, inode)| inode.clone())
            .ok_or(ENOENT)
    }

    fn entries(&self, from: usize) -> Result<Vec<DirEntry>, Errno> {
        Ok(self
            .entries
            .iter()
            .skip(from)
            .map(|(name, inode)| DirEntry {
                name: name.clone(),
                ino: inode.stat().ino,
                kind: inode.kind(),
            })
            .collect())
    }
}

/// What a character device does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Device {
    Null,
    Zero,
    Full,
    Random,
}

struct CharDevice {
    ino: u64,
    device: Device,
    major: u64,
    minor: u64,
    mode: u32,
}

/// Linux's `new_encode_dev`.
const fn encode_device(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// What `stat` says of character device `major`:`minor` with inode number `ino` and
/// permissions `mode`.
pub(super) fn char_device_stat(ino: u64, major: u64, minor: u64, mode: u32) -> Stat {
    Stat {
        dev: FsKind::Devtmpfs.device(),
        ino,
        mode: FileKind::CharDevice.mode_bits() | mode,
        nlink: 1,
        rdev: encode_device(major, minor),
        blksize: 4096,
        ..Stat::default()
    }
}

impl Inode for CharDevice {
    fn kind(&self) -> FileKind {
        FileKind::CharDevice
    }

    fn stat(&self) -> Stat {
        char_device_stat(self.ino, self.major, self.minor, self.mode)
    }

    fn fs(&self) -> FsKind {
        FsKind::Devtmpfs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn maps_zeroes(&self) -> bool {
        self.device == Device::Zero
    }

    fn read_at(&self, _file: &File, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.device {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random => {
                crate::random::fill(buf);
                Ok(buf.len())
            }
        }
    }

    fn write_at(&self, _file: &File, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.device {
            Device::Full => Err(ENOSPC),
            Device::Null | Device::Zero | Device::Random => Ok(buf.len()),
        }
    }
}

fn device(device: Device, major: u64, minor: u64, mode: u32) -> Arc<dyn Inode> {
    Arc::new(CharDevice {
        ino: allocate_inode_number(),
        device,
        major,
        minor,
        mode,
    })
}

/// The console device (what a kernel-started process gets as fds 0, 1 and 2).
pub fn console() -> Arc<dyn Inode> {
    CONSOLE.call_once(TerminalDevice::console).clone()
}

static CONSOLE: spin::Once<Arc<dyn Inode>> = spin::Once::new();

/// The `/dev` directory.
pub fn new_devfs() -> Arc<dyn Inode> {
    StaticDir::new(
        FsKind::Devtmpfs,
        alloc::vec![
            ("console", console()),
            ("full", device(Device::Full, 1, 7, 0o666)),
            ("null", device(Device::Null, 1, 3, 0o666)),
            ("random", device(Device::Random, 1, 8, 0o666)),
            ("tty", TerminalDevice::controlling()),
            ("ttyS0", TerminalDevice::serial()),
            ("urandom", device(Device::Random, 1, 9, 0o666)),
            ("zero", device(Device::Zero, 1, 5, 0o666)),
        ],
    )
}
