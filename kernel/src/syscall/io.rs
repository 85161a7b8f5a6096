//! The console as file descriptors 0, 1 and 2 — like Linux's `/dev/console` opened for reading
//! and writing: reads come from the serial line, writes go to it verbatim. There is no file
//! system: other descriptors do not exist, paths do not resolve.

use alloc::vec;
use alloc::vec::Vec;

use super::errno::{EBADF, EFAULT, EINVAL, ENOENT, ENOTTY, ESPIPE, SysResult};
use crate::arch::uaccess::{copy_from_user, copy_to_user, read_user, write_user};

/// The most bytes one write or read moves (a partial result beyond).
const MAX_TRANSFER: usize = 1 << 20;
/// `iovcnt` limit (Linux's `UIO_MAXIOV`).
const MAX_IOV: u64 = 1024;

fn is_console(fd: u64) -> bool {
    fd <= 2
}

pub fn write(fd: u64, buf: u64, len: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    let len = (len as usize).min(MAX_TRANSFER);
    let mut bytes = vec![0u8; len];
    copy_from_user(&mut bytes, buf)?;
    emit(&bytes);
    Ok(len as u64)
}

/// Sends program output to the console (and to the process's capture buffer, if any).
fn emit(bytes: &[u8]) {
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

fn read_iovecs(iov: u64, count: u64) -> Result<Vec<IoVec>, super::errno::Errno> {
    if count > MAX_IOV {
        return Err(EINVAL);
    }
    let mut vectors = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = iov.checked_add(i * 16).ok_or(EFAULT)?;
        let [base, len] = read_user::<[u64; 2]>(at)?;
        if len as i64 <= -1 {
            return Err(EINVAL);
        }
        vectors.push(IoVec { base, len });
    }
    let total = vectors
        .iter()
        .try_fold(0u64, |sum, v| sum.checked_add(v.len));
    if total.is_none_or(|t| t > i64::MAX as u64) {
        return Err(EINVAL);
    }
    Ok(vectors)
}

pub fn writev(fd: u64, iov: u64, count: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    let vectors = read_iovecs(iov, count)?;
    let mut bytes = Vec::new();
    for vector in vectors {
        let room = MAX_TRANSFER - bytes.len();
        let take = (vector.len as usize).min(room);
        let start = bytes.len();
        bytes.resize(start + take, 0);
        if let Err(error) = copy_from_user(&mut bytes[start..], vector.base) {
            bytes.truncate(start);
            if bytes.is_empty() {
                return Err(error);
            }
            break;
        }
        if bytes.len() == MAX_TRANSFER {
            break;
        }
    }
    emit(&bytes);
    Ok(bytes.len() as u64)
}

/// Reads from the serial console: waits for the first byte, then returns what is there.
pub fn read(fd: u64, buf: u64, len: u64) -> SysResult {
    if !is_console(fd) {
        return Err(EBADF);
    }
    if len == 0 {
        return Ok(0);
    }
    if !crate::arch::uaccess::is_user_range(buf, len as usize) {
        return Err(EFAULT);
    }
    let len = (len as usize).min(4096);
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
            return Err(super::errno::EINTR);
        }
    }
    copy_to_user(buf, &bytes)?;
    Ok(bytes.len() as u64)
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

pub fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let mut name = [0u8; 256];
    let length = crate::arch::uaccess::strncpy_from_user(&mut name, path)?;
    if length == 0 && flags & AT_EMPTY_PATH != 0 {
        return fstat(dirfd, buf);
    }
    Err(ENOENT)
}

pub fn readlinkat(path: u64) -> SysResult {
    let mut name = [0u8; 256];
    crate::arch::uaccess::strncpy_from_user(&mut name, path)?;
    Err(ENOENT)
}
