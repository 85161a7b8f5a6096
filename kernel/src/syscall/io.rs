//! The console as file descriptors 0, 1 and 2 — like Linux's `/dev/console` opened for reading
//! and writing: reads come from the serial line, writes go to it verbatim. There is no file
//! system: other descriptors do not exist, paths do not resolve.
//!
//! Buffers are checked and moved as Linux does (see `transfer`): a write of any size goes out
//! in small pieces, with no spinlock held between them, and a fault part way returns the
//! bytes written before it.

use alloc::vec::Vec;

use super::errno::{
    EBADF, EFAULT, EINTR, EINVAL, ENOENT, ENOTTY, ERESTARTSYS, ESPIPE, Errno, SysResult,
};
use super::transfer::{self, MAX_RW_COUNT, check_buffer};
use crate::arch::uaccess::{read_user, write_user};
use crate::sync::Mutex;

/// One user write to the console at a time (Linux's `atomic_write_lock` of a terminal): the
/// output of one `write` or `writev` is never mixed with another's, however large. Kernel log
/// lines do not wait for it; they come between two pieces of a write (see `console`). A
/// thread killed while it waits gives up (its process is exiting).
static CONSOLE_WRITERS: Mutex<()> = Mutex::new(());

/// `iovcnt` limit (Linux's `UIO_MAXIOV`).
const MAX_IOV: u64 = 1024;
/// The most bytes one read of the console returns.
const MAX_READ: u64 = 4096;

fn is_console(fd: u64) -> bool {
    fd <= 2
}

pub fn write(fd: u64, buf: u64, len: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    check_buffer(buf, len)?;
    let _writing = CONSOLE_WRITERS.lock_killable().ok_or(EINTR)?;
    transfer::from_user(buf, len.min(MAX_RW_COUNT), emit)
}

/// Sends program output to the console (and, in test images, to the process's capture buffer,
/// if any).
fn emit(bytes: &[u8]) {
    #[cfg(feature = "ktest")]
    if let Some(process) = crate::sched::current().process()
        && let Some(capture) = &process.captured_output
    {
        capture.lock().extend_from_slice(bytes);
    }
    crate::console::write_bytes(bytes);
}

/// One `struct iovec`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct IoVec {
    base: u64,
    len: u64,
}

/// Reads and checks an iovec array in Linux's order: the count (`EINVAL`), the array itself
/// (`EFAULT`), every length (`EINVAL` if negative), then every buffer (`EFAULT`); lengths
/// past [`MAX_RW_COUNT`] in all are cut.
fn read_iovecs(iov: u64, count: u64) -> Result<Vec<IoVec>, Errno> {
    if count > MAX_IOV {
        return Err(EINVAL);
    }
    let mut vectors = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = iov.checked_add(i * 16).ok_or(EFAULT)?;
        let [base, len] = read_user::<[u64; 2]>(at)?;
        vectors.push(IoVec { base, len });
    }
    if vectors.iter().any(|v| (v.len as i64) < 0) {
        return Err(EINVAL);
    }
    let mut total = 0;
    for vector in &mut vectors {
        check_buffer(vector.base, vector.len)?;
        vector.len = vector.len.min(MAX_RW_COUNT - total);
        total += vector.len;
    }
    Ok(vectors)
}

pub fn writev(fd: u64, iov: u64, count: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    let vectors = read_iovecs(iov, count)?;
    let _writing = CONSOLE_WRITERS.lock_killable().ok_or(EINTR)?;
    let mut done = 0;
    for vector in vectors {
        match transfer::from_user(vector.base, vector.len, emit) {
            Ok(moved) => {
                done += moved;
                if moved < vector.len {
                    break;
                }
            }
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// Reads from the serial console: waits for the first byte, then returns what is there (at
/// most [`MAX_READ`] bytes). A signal interrupts the wait (the call restarts unless a handler
/// without `SA_RESTART` runs).
pub fn read(fd: u64, buf: u64, len: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    check_buffer(buf, len)?;
    if len == 0 {
        return Ok(0);
    }
    let len = len.min(MAX_READ) as usize;
    let mut bytes = Vec::new();
    loop {
        while bytes.len() < len {
            match crate::console::poll_key() {
                Some(b'\r') => bytes.push(b'\n'),
                Some(byte) => bytes.push(byte),
                None => break,
            }
        }
        if !bytes.is_empty() {
            break;
        }
        if crate::sched::timer::sleep_ns(10_000_000).is_err() {
            return Err(ERESTARTSYS);
        }
    }
    let mut unread = bytes.as_slice();
    transfer::to_user(buf, bytes.len() as u64, |piece| {
        let (now, rest) = unread.split_at(piece.len());
        piece.copy_from_slice(now);
        unread = rest;
    })
}

pub fn readv(fd: u64, iov: u64, count: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    let vectors = read_iovecs(iov, count)?;
    match vectors.iter().find(|v| v.len > 0) {
        Some(first) => read(fd, first.base, first.len),
        None => Ok(0),
    }
}

/// `pread64` and `pwrite64`: a negative offset is `EINVAL`; the console, like every terminal,
/// cannot be read or written at an offset (`ESPIPE`, before the buffer is looked at).
pub fn pread_pwrite(fd: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(EINVAL);
    }
    if is_console(fd) {
        Err(ESPIPE)
    } else {
        Err(EBADF)
    }
}

pub fn close(fd: u64) -> SysResult {
    if is_console(fd) { Ok(0) } else { Err(EBADF) }
}

pub fn lseek(fd: u64) -> SysResult {
    if is_console(fd) {
        Err(ESPIPE)
    } else {
        Err(EBADF)
    }
}

pub fn ioctl(fd: u64, request: u64, _argument: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    // TCGETS, TIOCGWINSZ and the rest: the console is a plain serial line, not a terminal.
    let _ = request;
    Err(ENOTTY)
}

/// `struct stat` for a character device (the console), 144 bytes on x86_64.
fn console_stat() -> [u64; 18] {
    let mut stat = [0u64; 18];
    stat[0] = 0x0b; // st_dev
    stat[1] = 3; // st_ino
    stat[2] = 1; // st_nlink
    // st_mode (u32) | st_uid (u32): character device, rw for the owner.
    stat[3] = 0o020_620;
    stat[5] = 0x0501; // st_rdev: /dev/console (5, 1)
    stat[7] = 1024; // st_blksize
    stat
}

pub fn fstat(fd: u64, buf: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    write_user(buf, &console_stat())?;
    Ok(0)
}

const AT_EMPTY_PATH: u64 = 0x1000;

/// `newfstatat`: the console's descriptors (`AT_EMPTY_PATH`), and the ramdisk's files by
/// absolute path (regular files, read-only and executable: what `execve` runs).
pub fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let mut name = [0u8; 256];
    let length = crate::arch::uaccess::strncpy_from_user(&mut name, path)?;
    if length == 0 && flags & AT_EMPTY_PATH != 0 {
        return fstat(dirfd, buf);
    }
    let file = core::str::from_utf8(&name[..length])
        .ok()
        .filter(|path| path.starts_with('/'))
        .and_then(crate::proc::ramdisk::find)
        .ok_or(ENOENT)?;
    write_user(buf, &ramdisk_file_stat(file))?;
    Ok(0)
}

/// `struct stat` of a ramdisk file: a regular file, mode 0555, on the ramdisk's device.
fn ramdisk_file_stat(file: &[u8]) -> [u64; 18] {
    let mut stat = [0u64; 18];
    stat[0] = 0x01; // st_dev: the initial ramdisk (1, 0)
    stat[1] = file.as_ptr() as u64 / 8; // st_ino: one number per file
    stat[2] = 1; // st_nlink
    stat[3] = 0o100_555; // st_mode | st_uid << 32: regular file, root's
    stat[6] = file.len() as u64; // st_size
    stat[7] = 4096; // st_blksize
    stat[8] = file.len().div_ceil(512) as u64; // st_blocks
    stat
}

pub fn readlinkat(path: u64) -> SysResult {
    let mut name = [0u8; 256];
    crate::arch::uaccess::strncpy_from_user(&mut name, path)?;
    Err(ENOENT)
}
