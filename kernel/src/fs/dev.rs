//! `/dev`: the character devices every program expects (console, tty, ttyS0, null, zero, full,
//! random, urandom) in a fixed directory, and [`StaticDir`], the fixed directory itself (also
//! what `/sys` is built from).
//!
//! The console reads the serial line and writes to it (through [`crate::console`], which also
//! carries the kernel log). One user write to it at a time (Linux's `atomic_write_lock` of a
//! terminal): the output of one `write` is never mixed with another's, however large; log
//! lines come between two pieces of a write, never inside a line.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::file::File;
use super::{DirEntry, FileKind, FsKind, Inode, Stat, allocate_inode_number, poll};
use crate::sync::Mutex;
use crate::syscall::errno::{EAGAIN, ENOENT, ENOSPC, ERESTARTSYS, Errno};

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
    Console,
    Null,
    Zero,
    Full,
    Random,
}

struct CharDevice {
    ino: u64,
    device: Device,
    /// Linux's device number, as `stat` encodes it.
    rdev: u64,
    mode: u32,
}

/// Linux's `new_encode_dev`.
const fn encode_device(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// One writer of the console at a time (see the module documentation).
static CONSOLE_WRITERS: Mutex<()> = Mutex::new(());

/// The most bytes one read of the console returns.
const MAX_CONSOLE_READ: usize = 4096;

impl Inode for CharDevice {
    fn kind(&self) -> FileKind {
        FileKind::CharDevice
    }

    fn stat(&self) -> Stat {
        Stat {
            dev: FsKind::Devtmpfs.device(),
            ino: self.ino,
            mode: FileKind::CharDevice.mode_bits() | self.mode,
            nlink: 1,
            rdev: self.rdev,
            blksize: 4096,
            ..Stat::default()
        }
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

    fn seekable(&self) -> bool {
        self.device != Device::Console
    }

    fn writer_lock(&self) -> Option<&Mutex<()>> {
        (self.device == Device::Console).then_some(&CONSOLE_WRITERS)
    }

    /// The console is readable while a byte waits on the serial line; always writable.
    fn poll(&self, _file: &File) -> u32 {
        if self.device == Device::Console && !crate::console::input_waiting() {
            poll::POLLOUT | poll::POLLWRNORM
        } else {
            poll::ALWAYS_READY
        }
    }

    /// Nothing tells when a byte comes to the console: pollers look every few milliseconds.
    fn signals_readiness(&self) -> bool {
        self.device != Device::Console
    }

    fn read_at(&self, file: &File, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.device {
            Device::Console => read_console(file, buf),
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
            Device::Console => {
                write_console(buf);
                Ok(buf.len())
            }
            Device::Full => Err(ENOSPC),
            Device::Null | Device::Zero | Device::Random => Ok(buf.len()),
        }
    }
}

/// Sends program output to the console (and, in test images, to the process's capture buffer,
/// if any).
fn write_console(bytes: &[u8]) {
    #[cfg(feature = "ktest")]
    if let Some(process) = crate::sched::current().process()
        && let Some(capture) = &process.captured_output
    {
        capture.lock().extend_from_slice(bytes);
    }
    crate::console::write_bytes(bytes);
}

/// Reads from the serial line: waits for the first byte, then returns what is there. A signal
/// interrupts the wait (the call restarts unless a handler without `SA_RESTART` runs).
fn read_console(file: &File, buf: &mut [u8]) -> Result<usize, Errno> {
    let len = buf.len().min(MAX_CONSOLE_READ);
    let mut count = 0;
    loop {
        while count < len {
            match crate::console::poll_key() {
                Some(b'\r') => buf[count] = b'\n',
                Some(byte) => buf[count] = byte,
                None => break,
            }
            count += 1;
        }
        if count > 0 || len == 0 {
            return Ok(count);
        }
        if file.nonblocking() {
            return Err(EAGAIN);
        }
        if crate::sched::timer::sleep_ns(10_000_000).is_err() {
            return Err(ERESTARTSYS);
        }
    }
}

fn device(device: Device, major: u64, minor: u64, mode: u32) -> Arc<dyn Inode> {
    Arc::new(CharDevice {
        ino: allocate_inode_number(),
        device,
        rdev: encode_device(major, minor),
        mode,
    })
}

/// The console device (what a kernel-started process gets as fds 0, 1 and 2).
pub fn console() -> Arc<dyn Inode> {
    CONSOLE
        .call_once(|| device(Device::Console, 5, 1, 0o600))
        .clone()
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
            ("tty", console()),
            ("ttyS0", console()),
            ("urandom", device(Device::Random, 1, 9, 0o666)),
            ("zero", device(Device::Zero, 1, 5, 0o666)),
        ],
    )
}
