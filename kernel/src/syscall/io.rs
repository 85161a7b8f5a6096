//! Descriptors and data: read, write and their vector and positioned forms, lseek, close,
//! dup, fcntl, ioctl, sendfile.
//!
//! Data moves through a kernel buffer: the file's operation fills or drains it with the file
//! system's locks held, and the copy to or from user memory happens after, with no lock held
//! (a fault there may sleep). Buffers are checked as Linux does (see `transfer`): a buffer
//! that wraps or leaves the user half is `EFAULT` before anything moves, one call moves at most
//! `MAX_RW_COUNT` bytes, and a fault part way returns the bytes moved before it.
//!
//! Streams (files without positions: pipes, the console, eventfds) are read with one call of
//! the file's `read_at` for all the user buffers of a `read` or `readv` (at most [`CHUNK`]
//! bytes), which waits only until some data is there; the bytes it took are then copied out, so
//! a fault in that copy loses those it did not copy. Writes to a stream gather the user buffers
//! into chunks of [`CHUNK`] bytes, one `write_at` each: a `writev` of at most a pipe's
//! `PIPE_BUF` bytes in all is one atomic write, however many buffers hold it.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::errno::{
    EBADF, EFAULT, EINTR, EINVAL, EISDIR, ENODEV, ENOMEM, EOVERFLOW, ESPIPE, Errno, SysResult,
};
use super::int_arg;
use super::thread::process;
use super::transfer::{self, MAX_RW_COUNT, check_buffer};
use crate::arch::uaccess::{read_user, write_user};
use crate::fs::FileKind;
use crate::fs::file::{
    File, MAX_FDS, O_APPEND, O_CLOEXEC, O_DIRECT, O_NONBLOCK, O_PATH, SETFL_MASK,
};
use crate::fs::pipe::pipe_of;
use crate::sync::mutex::MutexGuard;

/// `iovcnt` limit (Linux's `UIO_MAXIOV`).
const MAX_IOV: u64 = 1024;
/// The most bytes moved through the kernel buffer at once.
const CHUNK: usize = 64 * 1024;

/// The open description behind the descriptor argument `fd`, for a call that uses the file
/// itself: an `O_PATH` descriptor names a place, not a file open for anything, and is `EBADF`
/// here, as Linux's `fdget` makes it.
pub fn file(fd: u64) -> Result<Arc<File>, Errno> {
    let file = file_or_place(fd)?;
    if file.flags() & O_PATH != 0 {
        return Err(EBADF);
    }
    Ok(file)
}

/// The open description behind `fd`, `O_PATH` ones included (Linux's `fdget_raw`): for the
/// calls that need only the place a descriptor names (the directory a relative path starts
/// from, fstat, fstatfs, fchdir, an `AT_EMPTY_PATH` lookup).
pub fn file_or_place(fd: u64) -> Result<Arc<File>, Errno> {
    process().files().get(int_arg(fd))
}

/// Reads from the stream `file` into the user buffers `vectors` (checked): one read of the
/// file, which waits for data if there is none, scattered over the buffers in order.
fn read_stream(file: &File, vectors: &[IoVec]) -> SysResult {
    let total = vectors.iter().map(|vector| vector.len).sum::<u64>();
    if total == 0 {
        return Ok(0);
    }
    let mut kernel = vec![0u8; (total as usize).min(CHUNK)];
    let count = file.inode().read_at(file, 0, &mut kernel)?;
    let mut done = 0;
    for vector in vectors {
        let piece = &kernel[done..count.min(done + vector.len as usize)];
        if piece.is_empty() {
            break;
        }
        match copy_out(vector.base, piece) {
            Ok(copied) => {
                done += copied as usize;
                if copied < piece.len() as u64 {
                    break;
                }
            }
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        }
    }
    Ok(done as u64)
}

/// A cursor over user buffers (checked) that copies their bytes out in order.
struct Gather<'a> {
    vectors: &'a [IoVec],
    /// The next byte: a vector and the offset in it.
    vector: usize,
    offset: u64,
}

impl<'a> Gather<'a> {
    fn new(vectors: &'a [IoVec]) -> Self {
        Self {
            vectors,
            vector: 0,
            offset: 0,
        }
    }

    /// Copies the next bytes into `out`; returns how many, fewer than its size only at the end
    /// of the buffers or at a fault.
    fn fill(&mut self, out: &mut [u8]) -> usize {
        let mut filled = 0;
        while filled < out.len() && self.vector < self.vectors.len() {
            let IoVec { base, len } = self.vectors[self.vector];
            let want = ((len - self.offset) as usize).min(out.len() - filled);
            let copied = copy_in(base + self.offset, &mut out[filled..filled + want]).unwrap_or(0);
            filled += copied;
            self.offset += copied as u64;
            if copied < want {
                break;
            }
            if self.offset == len {
                (self.vector, self.offset) = (self.vector + 1, 0);
            }
        }
        filled
    }
}

/// Writes the user buffers `vectors` (checked) to the stream `file`. A pipe gathers them
/// itself ([`crate::fs::pipe::Pipe::write`]: a fault counts in its pieces, as on Linux); other
/// streams get them in chunks of [`CHUNK`] bytes, one write of the file each, and a short
/// write or a fault ends the call with the bytes written. A fault drops the piece of the
/// stream's [`crate::fs::Inode::write_piece`] it cut short, as Linux's stream writers do.
fn write_stream(file: &File, vectors: &[IoVec]) -> SysResult {
    let total = vectors.iter().map(|vector| vector.len).sum::<u64>();
    let mut gather = Gather::new(vectors);
    if let Some(pipe) = pipe_of(file) {
        let written = pipe.write(file, total as usize, &mut |out| gather.fill(out))?;
        return Ok(written as u64);
    }
    let piece = file.inode().write_piece();
    let mut kernel = vec![0u8; (total as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < total {
        let want = kernel.len().min((total - done) as usize);
        let mut filled = gather.fill(&mut kernel[..want]);
        if filled < want {
            filled -= filled % piece;
        }
        if filled == 0 {
            // Only a fault stops the gathering before the end.
            return if done == 0 { Err(EFAULT) } else { Ok(done) };
        }
        let written = match file.inode().write_at(file, 0, &kernel[..filled]) {
            Ok(written) => written,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        };
        done += written as u64;
        if written < filled || filled < want {
            break;
        }
        if done < total {
            crate::sched::cond_resched();
            if crate::sched::current().is_killed() {
                break;
            }
        }
    }
    Ok(done)
}

/// Reads from the seekable `file` into user memory at `buf` (`len` bytes, checked), at `offset`
/// or (for `None`) at and advancing the file's position.
fn read_file(file: &File, buf: u64, len: u64, offset: Option<u64>) -> SysResult {
    let inode = file.inode();
    let len = len.min(MAX_RW_COUNT);
    let mut position = match offset {
        Some(_) => None,
        None => Some(file.lock_position()?),
    };
    let start = offset.unwrap_or_else(|| **position.as_ref().expect("locked above"));
    let mut done = 0u64;
    let mut kernel = vec![0u8; (len as usize).min(CHUNK)];
    while done < len {
        let want = ((len - done) as usize).min(CHUNK);
        let count = match inode.read_at(file, start + done, &mut kernel[..want]) {
            Ok(count) => count,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        };
        if count == 0 {
            break;
        }
        let copied = match copy_out(buf + done, &kernel[..count]) {
            Ok(copied) => copied,
            Err(error) if done == 0 => return Err(error),
            Err(_) => 0,
        };
        done += copied;
        if copied < count as u64 || count < want {
            break;
        }
    }
    if let Some(position) = &mut position {
        **position = start + done;
    }
    Ok(done)
}

/// The inode's writer lock, if it has one, held for a whole `write` or `writev`.
fn one_writer(file: &File) -> Result<Option<MutexGuard<'_, ()>>, Errno> {
    match file.inode().writer_lock() {
        Some(lock) => Ok(Some(lock.lock_killable().ok_or(EINTR)?)),
        None => Ok(None),
    }
}

/// Writes user memory at `buf` (`len` bytes, checked) to the seekable `file`, at `offset` or
/// (for `None`) at and advancing the file's position (the end of the file with `O_APPEND`).
fn write_file(file: &File, buf: u64, len: u64, offset: Option<u64>) -> SysResult {
    let inode = file.inode();
    let len = len.min(MAX_RW_COUNT);
    if len == 0 {
        return Ok(0);
    }
    let mut position = match offset {
        Some(_) => None,
        None => Some(file.lock_position()?),
    };
    // With O_APPEND every write goes to the end, a positioned one too (Linux's rule).
    let start = match (offset, &position) {
        _ if file.flags() & O_APPEND != 0 => inode.stat().size,
        (Some(offset), _) => offset,
        (None, Some(position)) => **position,
        (None, None) => 0,
    };
    let mut done = 0u64;
    let mut kernel = vec![0u8; (len as usize).min(CHUNK)];
    while done < len {
        let want = ((len - done) as usize).min(CHUNK);
        let copied = match copy_in(buf + done, &mut kernel[..want]) {
            Ok(copied) => copied,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        };
        let written = match inode.write_at(file, start + done, &kernel[..copied]) {
            Ok(written) => written,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        };
        done += written as u64;
        if written < want {
            break;
        }
        if done < len {
            crate::sched::cond_resched();
            if crate::sched::current().is_killed() {
                break;
            }
        }
    }
    if let Some(position) = &mut position {
        **position = start + done;
    }
    Ok(done)
}

/// Copies `data` to user memory at `buf`; returns the bytes copied before a fault
/// (`EFAULT` if none were).
fn copy_out(buf: u64, data: &[u8]) -> SysResult {
    let mut unread = data;
    transfer::to_user(buf, data.len() as u64, |piece| {
        let (now, rest) = unread.split_at(piece.len());
        piece.copy_from_slice(now);
        unread = rest;
    })
}

/// Fills `out` from user memory at `buf`; returns the bytes copied before a fault (`EFAULT`
/// if none were).
fn copy_in(buf: u64, out: &mut [u8]) -> Result<usize, Errno> {
    let mut filled = 0;
    transfer::from_user(buf, out.len() as u64, |piece| {
        out[filled..filled + piece.len()].copy_from_slice(piece);
        filled += piece.len();
    })?;
    Ok(filled)
}

fn readable_file(fd: u64) -> Result<Arc<File>, Errno> {
    let file = file(fd)?;
    check_readable(&file)?;
    Ok(file)
}

fn writable_file(fd: u64) -> Result<Arc<File>, Errno> {
    let file = file(fd)?;
    check_writable(&file)?;
    Ok(file)
}

/// `EBADF` unless `file` was opened for reading, then `EINVAL` if it cannot be read at all.
fn check_readable(file: &File) -> Result<(), Errno> {
    if !file.readable() {
        return Err(EBADF);
    }
    if !file.inode().can_read_or_write() {
        return Err(EINVAL);
    }
    Ok(())
}

/// `EBADF` unless `file` was opened for writing, then `EINVAL` if it cannot be written at all.
fn check_writable(file: &File) -> Result<(), Errno> {
    if !file.writable() {
        return Err(EBADF);
    }
    if !file.inode().can_write() {
        return Err(EINVAL);
    }
    Ok(())
}

/// `EISDIR` for a directory, which a read answers whatever its length (Linux's
/// `generic_read_dir`), so before a read of nothing returns.
fn not_a_directory(file: &File) -> Result<(), Errno> {
    if file.inode().kind() == FileKind::Directory {
        return Err(EISDIR);
    }
    Ok(())
}

/// One user buffer as the vector the stream calls take, its length cut to what one call moves.
fn single(buf: u64, len: u64) -> [IoVec; 1] {
    [IoVec {
        base: buf,
        len: len.min(MAX_RW_COUNT),
    }]
}

pub fn read(fd: u64, buf: u64, len: u64) -> SysResult {
    let file = readable_file(fd)?;
    check_buffer(buf, len)?;
    not_a_directory(&file)?;
    file.inode().check_read(len)?;
    if len == 0 {
        return Ok(0);
    }
    if !file.inode().seekable() {
        return read_stream(&file, &single(buf, len));
    }
    read_file(&file, buf, len, None)
}

pub fn write(fd: u64, buf: u64, len: u64) -> SysResult {
    let file = writable_file(fd)?;
    check_buffer(buf, len)?;
    let _one_writer = one_writer(&file)?;
    if !file.inode().seekable() {
        file.inode().check_write(len)?;
        return write_stream(&file, &single(buf, len));
    }
    write_file(&file, buf, len, None)
}

/// A positioned call's file (the offset was checked): `EBADF`, then `ESPIPE` for a stream,
/// before the access mode is looked at (Linux's order).
fn positioned(fd: u64) -> Result<Arc<File>, Errno> {
    let file = file(fd)?;
    if !file.inode().reads_at_offsets() {
        return Err(ESPIPE);
    }
    Ok(file)
}

pub fn pread64(fd: u64, buf: u64, len: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(EINVAL);
    }
    let file = positioned(fd)?;
    check_readable(&file)?;
    check_buffer(buf, len)?;
    not_a_directory(&file)?;
    if len == 0 {
        return Ok(0);
    }
    read_file(&file, buf, len, Some(offset))
}

pub fn pwrite64(fd: u64, buf: u64, len: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(EINVAL);
    }
    let file = positioned(fd)?;
    check_writable(&file)?;
    check_buffer(buf, len)?;
    write_file(&file, buf, len, Some(offset))
}

/// One `struct iovec`.
#[derive(Clone, Copy, Default)]
pub(super) struct IoVec {
    pub(super) base: u64,
    pub(super) len: u64,
}

/// Reads and checks an iovec array in Linux's order: the count (`EINVAL`), the array itself
/// (`EFAULT`), every length (`EINVAL` if negative), then every buffer's range (`EFAULT`; the
/// buffers are not touched); lengths past [`MAX_RW_COUNT`] in all are cut. As Linux's
/// `import_ubuf`, a single vector is cut before its range is checked, several after.
pub(super) fn read_iovecs(iov: u64, count: u64) -> Result<Vec<IoVec>, Errno> {
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
    if let [single] = vectors.as_mut_slice() {
        single.len = single.len.min(MAX_RW_COUNT);
    }
    let mut total = 0;
    for vector in &mut vectors {
        check_buffer(vector.base, vector.len)?;
        vector.len = vector.len.min(MAX_RW_COUNT - total);
        total += vector.len;
    }
    Ok(vectors)
}

/// Runs `step` over the vectors with the running offset, stopping at the first short one;
/// an error after some bytes moved ends the call with those bytes.
fn vectored(
    vectors: &[IoVec],
    offset: Option<u64>,
    mut step: impl FnMut(u64, u64, Option<u64>) -> SysResult,
) -> SysResult {
    let mut done = 0;
    for vector in vectors.iter().filter(|v| v.len > 0) {
        match step(vector.base, vector.len, offset.map(|o| o + done)) {
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

pub fn readv(fd: u64, iov: u64, count: u64) -> SysResult {
    let file = readable_file(fd)?;
    let vectors = read_iovecs(iov, count)?;
    if !file.inode().seekable() {
        return read_stream(&file, &vectors);
    }
    vectored(&vectors, None, |buf, len, at| {
        read_file(&file, buf, len, at)
    })
}

pub fn writev(fd: u64, iov: u64, count: u64) -> SysResult {
    let file = writable_file(fd)?;
    let vectors = read_iovecs(iov, count)?;
    let _one_writer = one_writer(&file)?;
    if !file.inode().seekable() {
        return write_stream(&file, &vectors);
    }
    vectored(&vectors, None, |buf, len, at| {
        write_file(&file, buf, len, at)
    })
}

pub fn preadv(fd: u64, iov: u64, count: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(EINVAL);
    }
    let file = positioned(fd)?;
    check_readable(&file)?;
    let vectors = read_iovecs(iov, count)?;
    vectored(&vectors, Some(offset), |buf, len, at| {
        read_file(&file, buf, len, at)
    })
}

pub fn pwritev(fd: u64, iov: u64, count: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(EINVAL);
    }
    let file = positioned(fd)?;
    check_writable(&file)?;
    let vectors = read_iovecs(iov, count)?;
    vectored(&vectors, Some(offset), |buf, len, at| {
        write_file(&file, buf, len, at)
    })
}

const SEEK_SET: u64 = 0;
const SEEK_CUR: u64 = 1;
const SEEK_END: u64 = 2;
const SEEK_DATA: u64 = 3;
const SEEK_HOLE: u64 = 4;

/// lseek, checked in Linux's order: the descriptor, the whence (`EINVAL` past `SEEK_HOLE`,
/// whatever the file), then the file's own rules: `ESPIPE` for a stream, the position 0 and
/// no move for a file that seeks in place (an eventfd), only `SEEK_SET` and `SEEK_CUR` in a
/// directory; a target that wraps or is negative is `EINVAL`. `SEEK_DATA` and `SEEK_HOLE`
/// in a page cache find its pages (`PageCache::seek_data_or_hole`).
pub fn lseek(fd: u64, offset: u64, whence: u64) -> SysResult {
    let file = file(fd)?;
    let whence = u64::from(whence as u32);
    if whence > SEEK_HOLE {
        return Err(EINVAL);
    }
    let inode = file.inode();
    if inode.seeks_in_place() {
        return Ok(0);
    }
    if !inode.seekable() {
        return Err(ESPIPE);
    }
    let directory = inode.kind() == FileKind::Directory;
    if directory && !matches!(whence, SEEK_SET | SEEK_CUR) {
        return Err(EINVAL);
    }
    let mut position = file.lock_position()?;
    let offset = offset as i64;
    let size = inode.stat().size as i64;
    let target = match (whence, inode.page_cache()) {
        (SEEK_SET, _) => offset,
        (SEEK_CUR, _) => (*position as i64).wrapping_add(offset),
        (SEEK_END, _) => size.wrapping_add(offset),
        // A page cache knows its holes (tmpfs); a negative offset is past any end.
        (SEEK_DATA | SEEK_HOLE, Some(cache)) => cache
            .seek_data_or_hole(offset as u64, whence == SEEK_DATA)
            .ok_or(super::errno::ENXIO)? as i64,
        // Other files have no holes worth reporting: data runs to the end, a hole starts there.
        (SEEK_DATA, None) if offset < size && offset >= 0 => offset,
        (SEEK_HOLE, None) if offset < size && offset >= 0 => size,
        _ => return Err(super::errno::ENXIO),
    };
    if target < 0 {
        return Err(EINVAL);
    }
    *position = target as u64;
    Ok(target as u64)
}

pub fn close(fd: u64) -> SysResult {
    let file = process().files().remove(int_arg(fd))?;
    drop(file);
    Ok(0)
}

const CLOSE_RANGE_UNSHARE: u64 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;

/// close_range: the bounds and the flags are `unsigned int`s.
pub fn close_range(first: u64, last: u64, flags: u64) -> SysResult {
    let (first, last, flags) = (first as u32, last as u32, u64::from(flags as u32));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(EINVAL);
    }
    let process = process();
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        process.unshare_files();
    }
    let closed = process.files().remove_range(
        u64::from(first),
        u64::from(last),
        flags & CLOSE_RANGE_CLOEXEC != 0,
    );
    drop(closed);
    Ok(0)
}

pub fn dup(fd: u64) -> SysResult {
    let file = file(fd)?;
    let files = process().files();
    files.install(file, false, 0)
}

pub fn dup2(old: u64, new: u64) -> SysResult {
    let (old, new) = (int_arg(old), int_arg(new));
    let files = process().files();
    let file = files.get(old)?;
    if old == new {
        return Ok(new);
    }
    let replaced = files.install_at(new, file, false)?;
    drop(replaced);
    Ok(new)
}

/// dup3: `flags` is an `int`, as Linux declares it (its upper half is not looked at).
pub fn dup3(old: u64, new: u64, flags: u64) -> SysResult {
    let (old, new, flags) = (int_arg(old), int_arg(new), flags as u32);
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(EINVAL);
    }
    let files = process().files();
    let file = files.get(old)?;
    let replaced = files.install_at(new, file, flags != 0)?;
    drop(replaced);
    Ok(new)
}

const F_DUPFD: u32 = 0;
const F_GETFD: u32 = 1;
const F_SETFD: u32 = 2;
const F_GETFL: u32 = 3;
const F_SETFL: u32 = 4;
const F_GETLK: u32 = 5;
const F_SETLK: u32 = 6;
const F_SETLKW: u32 = 7;
const F_SETOWN: u32 = 8;
const F_GETOWN: u32 = 9;
const F_SETSIG: u32 = 10;
const F_GETSIG: u32 = 11;
const F_GETLEASE: u32 = 1025;
const F_DUPFD_CLOEXEC: u32 = 1030;
const F_ADD_SEALS: u32 = 1033;
const F_GET_SEALS: u32 = 1034;
/// The seals Linux knows (`F_SEAL_SEAL` to `F_SEAL_EXEC`), and the one that forbids more.
const F_ALL_SEALS: u32 = 0x3f;
const F_SEAL_SEAL: u64 = 1;
const F_SETPIPE_SZ: u32 = 1031;
const F_GETPIPE_SZ: u32 = 1032;
const FD_CLOEXEC: u64 = 1;
/// `l_type` values: a read lock, a write lock, no lock.
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
/// The highest signal number (`F_SETSIG` takes 0 to this).
const LAST_SIGNAL: u32 = 64;

/// fcntl: `fd` and `command` are 32-bit (`unsigned int`), the integer arguments an `int`.
pub fn fcntl(fd: u64, command: u64, argument: u64) -> SysResult {
    let fd = int_arg(fd);
    let files = process().files();
    let file = files.get(fd)?;
    // An `O_PATH` descriptor answers only the commands on the descriptor itself (Linux's
    // `check_fcntl_cmd`).
    let on_the_descriptor = matches!(
        command as u32,
        F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_GETFL
    );
    if file.flags() & O_PATH != 0 && !on_the_descriptor {
        return Err(EBADF);
    }
    let integer = argument as i32;
    match command as u32 {
        command @ (F_DUPFD | F_DUPFD_CLOEXEC) => {
            let lowest = integer as u32 as usize;
            if lowest >= MAX_FDS {
                return Err(EINVAL);
            }
            files.install(file, command == F_DUPFD_CLOEXEC, lowest)
        }
        F_GETFD => Ok(u64::from(files.close_on_exec(fd)?)),
        F_SETFD => {
            files.set_close_on_exec(fd, argument & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(u64::from(file.flags())),
        F_SETFL => {
            // O_DIRECT is refused (even where it is set already) unless the file does direct
            // I/O (Linux 6.12's `FMODE_CAN_ODIRECT`) or is a pipe (its packet mode).
            let inode = file.inode();
            let direct_io = inode.kind() == FileKind::Fifo || inode.direct_io();
            if argument as u32 & O_DIRECT != 0 && !direct_io {
                return Err(EINVAL);
            }
            file.set_status_flags(argument as u32 & SETFL_MASK);
            Ok(0)
        }
        // Record locks: no other process can hold one (there is no locking between
        // processes yet), so every valid lock is granted and none is ever in the way.
        F_GETLK => {
            let mut words = read_user::<[u64; 4]>(argument)?;
            let lock = RecordLock::from_words(&words);
            if lock.kind != F_RDLCK && lock.kind != F_WRLCK {
                return Err(EINVAL);
            }
            lock.check_range(&file)?;
            // The struct goes back as it came, but for `l_type`.
            words[0] = words[0] & !0xffff | F_UNLCK as u64;
            write_user(argument, &words)?;
            Ok(0)
        }
        F_SETLK | F_SETLKW => {
            let lock = RecordLock::from_words(&read_user::<[u64; 4]>(argument)?);
            lock.check_range(&file)?;
            match lock.kind {
                F_RDLCK if !file.readable() => Err(EBADF),
                F_WRLCK if !file.writable() => Err(EBADF),
                F_RDLCK | F_WRLCK | F_UNLCK => Ok(0),
                _ => Err(EINVAL),
            }
        }
        F_GETOWN => Ok(i64::from(file.owner()) as u64),
        F_SETOWN => {
            if integer == i32::MIN {
                return Err(EINVAL);
            }
            let id = integer.unsigned_abs();
            let exists = crate::proc::find_thread(id).is_some() || crate::proc::group_exists(id);
            if id != 0 && !exists {
                return Err(super::errno::ESRCH);
            }
            file.set_owner(integer);
            Ok(0)
        }
        F_GETSIG => Ok(u64::from(file.signal())),
        F_SETSIG => {
            let signal = u32::try_from(integer)
                .ok()
                .filter(|&signal| signal <= LAST_SIGNAL)
                .ok_or(EINVAL)?;
            file.set_signal(signal);
            Ok(0)
        }
        // Leases: none is ever taken (F_SETLEASE is refused), so none is held.
        F_GETLEASE => Ok(F_UNLCK as u64),
        // Seals: a memory file's (tmpfs, memfd) carry F_SEAL_SEAL, which forbids adding any;
        // memfds made with MFD_ALLOW_SEALING carry it too here (no seal is enforced).
        F_ADD_SEALS => {
            if !file.writable() {
                return Err(super::errno::EPERM);
            }
            if argument as u32 & !F_ALL_SEALS != 0 || !sealable_kind(&file) {
                return Err(EINVAL);
            }
            Err(super::errno::EPERM)
        }
        F_GET_SEALS if sealable_kind(&file) => Ok(F_SEAL_SEAL),
        F_GETPIPE_SZ => Ok(pipe_of(&file).ok_or(EBADF)?.capacity()),
        F_SETPIPE_SZ => pipe_of(&file).ok_or(EBADF)?.set_capacity(argument),
        _ => Err(EINVAL),
    }
}

/// Whether `file` is one seals apply to: a regular file of a memory file system (Linux's
/// shmem files).
fn sealable_kind(file: &File) -> bool {
    file.inode().kind() == FileKind::Regular && file.inode().fs() == crate::fs::FsKind::Tmpfs
}

/// The fields of a `struct flock` (x86_64, 32 bytes) that a lock request is checked on.
struct RecordLock {
    kind: i16,
    whence: i16,
    start: i64,
    len: i64,
}

impl RecordLock {
    /// The struct as four words: `l_type` and `l_whence` in the first, `l_start`, `l_len`.
    fn from_words(words: &[u64; 4]) -> Self {
        Self {
            kind: words[0] as i16,
            whence: (words[0] >> 16) as i16,
            start: words[1] as i64,
            len: words[2] as i64,
        }
    }

    /// Linux's checks of the range (`flock_to_posix_lock`): `EINVAL` for an unknown whence or
    /// a range starting before 0, `EOVERFLOW` for one ending past the largest offset.
    fn check_range(&self, file: &File) -> Result<(), Errno> {
        let base = match u64::from(self.whence as u16) {
            SEEK_SET => 0,
            SEEK_CUR => *file.lock_position()? as i64,
            SEEK_END => file.inode().stat().size as i64,
            _ => return Err(EINVAL),
        };
        let start = base.checked_add(self.start).ok_or(EOVERFLOW)?;
        if start < 0 {
            return Err(EINVAL);
        }
        match self.len {
            len if len > 0 && len - 1 > i64::MAX - start => Err(EOVERFLOW),
            len if len < 0 && start + len < 0 => Err(EINVAL),
            _ => Ok(()),
        }
    }
}

const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;
const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;

/// ioctl: `fd` and `request` are 32-bit (`unsigned int`), as Linux declares them. An `O_PATH`
/// descriptor is `EBADF` for every request, `FIOCLEX` included (Linux's `fdget`).
pub fn ioctl(fd: u64, request: u64, argument: u64) -> SysResult {
    let (fd, request) = (int_arg(fd), int_arg(request));
    let file = file(fd)?;
    let files = process().files();
    match request {
        FIOCLEX | FIONCLEX => {
            files.set_close_on_exec(fd, request == FIOCLEX)?;
            Ok(0)
        }
        FIONBIO => {
            let on = read_user::<u32>(argument)? != 0;
            let flags = file.flags() & SETFL_MASK;
            file.set_status_flags(if on {
                flags | O_NONBLOCK
            } else {
                flags & !O_NONBLOCK
            });
            Ok(0)
        }
        FIONREAD => match bytes_to_read(&file)? {
            Some(count) => {
                write_user(argument, &(count.min(i32::MAX as u64) as u32))?;
                Ok(0)
            }
            None => file.inode().ioctl(&file, request, argument),
        },
        _ => file.inode().ioctl(&file, request, argument),
    }
}

/// `FIONREAD`'s answer where the VFS knows it: what is left after a regular file's position,
/// what waits in a pipe.
fn bytes_to_read(file: &File) -> Result<Option<u64>, Errno> {
    if file.inode().kind() == FileKind::Regular {
        let position = *file.lock_position()?;
        return Ok(Some(file.inode().stat().size.saturating_sub(position)));
    }
    Ok(pipe_of(file).map(|pipe| pipe.queued() as u64))
}

/// `sendfile`: copies up to `count` bytes from `in_fd` (at `*offset` when `offset` is not
/// NULL, which is then advanced, else at its position) to `out_fd`. Checked in Linux's order:
/// the offset (`EFAULT`), the input (`EBADF`, `ESPIPE` for a stream given an offset, `EINVAL`
/// for a count or range past the largest offset), the output (`EBADF`), then `EINVAL` for an
/// appending output or an input that cannot be spliced from (a pipe, a directory, an
/// eventfd). The descriptors are `int`s.
pub fn sendfile(out_fd: u64, in_fd: u64, offset: u64, count: u64) -> SysResult {
    if offset == 0 {
        return send_file(out_fd, in_fd, None, count);
    }
    // The offset goes back (advanced or not) whatever the copy answered, and a failure
    // there is the answer (Linux's `put_user` after `do_sendfile`).
    let mut position = read_user::<i64>(offset)?;
    let result = send_file(out_fd, in_fd, Some(&mut position), count);
    write_user(offset, &position)?;
    result
}

/// sendfile's copy, with the offset read from the caller (`None`: the input's position).
fn send_file(out_fd: u64, in_fd: u64, offset: Option<&mut i64>, count: u64) -> SysResult {
    let given = offset.as_deref().copied();
    let input = readable_file(in_fd)?;
    if given.is_some() && !input.inode().seekable() {
        return Err(ESPIPE);
    }
    let start = match given {
        Some(at) => at,
        None if input.inode().seekable() => *input.lock_position()? as i64,
        None => 0,
    };
    check_range(start, count)?;
    let output = writable_file(out_fd)?;
    if output.flags() & O_APPEND != 0 || !matches!(input.inode().kind(), FileKind::Regular) {
        return Err(EINVAL);
    }
    let mut at = given.map(|at| at as u64);
    let count = count.min(MAX_RW_COUNT);
    let mut kernel = Vec::new();
    kernel
        .try_reserve_exact((count as usize).min(CHUNK))
        .map_err(|_| ENOMEM)?;
    kernel.resize((count as usize).min(CHUNK), 0);
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        let read = match at {
            Some(position) => input.inode().read_at(&input, position, &mut kernel[..want]),
            None => read_at_position(&input, &mut kernel[..want]),
        };
        let read = match read {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        };
        let written = match write_kernel(&output, &kernel[..read]) {
            Ok(written) => written,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        };
        done += written as u64;
        if let Some(position) = &mut at {
            *position += written as u64;
        }
        if written < read || read < want {
            break;
        }
    }
    if let (Some(position), Some(offset)) = (at, offset) {
        *offset = position as i64;
    }
    Ok(done)
}

/// Linux's `rw_verify_area` on a position and a count: `EINVAL` for a count that is negative
/// as a signed size, a negative position, or a range that runs past the largest offset.
fn check_range(position: i64, count: u64) -> Result<(), Errno> {
    if (count as i64) < 0 || position < 0 || position.checked_add(count as i64).is_none() {
        return Err(EINVAL);
    }
    Ok(())
}

/// Reads into a kernel buffer at and advancing `file`'s position.
fn read_at_position(file: &File, buf: &mut [u8]) -> Result<usize, Errno> {
    if !file.inode().seekable() {
        return file.inode().read_at(file, 0, buf);
    }
    let mut position = file.lock_position()?;
    let read = file.inode().read_at(file, *position, buf)?;
    *position += read as u64;
    Ok(read)
}

/// Writes a kernel buffer at and advancing `file`'s position.
fn write_kernel(file: &File, buf: &[u8]) -> Result<usize, Errno> {
    if !file.inode().seekable() {
        return file.inode().write_at(file, 0, buf);
    }
    let mut position = file.lock_position()?;
    let written = file.inode().write_at(file, *position, buf)?;
    *position += written as u64;
    Ok(written)
}

const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
const FALLOC_FL_COLLAPSE_RANGE: u32 = 0x08;
const FALLOC_FL_ZERO_RANGE: u32 = 0x10;
const FALLOC_FL_INSERT_RANGE: u32 = 0x20;
const FALLOC_FL_UNSHARE_RANGE: u32 = 0x40;
/// The operations (at most one may be asked for; none is allocation).
const FALLOC_FL_OPERATIONS: u32 = FALLOC_FL_PUNCH_HOLE
    | FALLOC_FL_COLLAPSE_RANGE
    | FALLOC_FL_ZERO_RANGE
    | FALLOC_FL_INSERT_RANGE
    | FALLOC_FL_UNSHARE_RANGE;

/// fallocate, checked in Linux 6.12's order (`vfs_fallocate`): the descriptor, the range
/// (`EINVAL`), the mode (`EOPNOTSUPP` for an unknown bit, two operations, a hole punched
/// without `FALLOC_FL_KEEP_SIZE`, a range collapsed or inserted with it), the access mode
/// (`EBADF`), the file's kind (`ESPIPE`, `EISDIR`, `ENODEV`), the end (`EFBIG`); the memory
/// file systems then allocate (with or without `FALLOC_FL_KEEP_SIZE`) and do no other
/// operation (`EOPNOTSUPP`). `mode` is an `int`.
pub fn fallocate(fd: u64, mode: u64, offset: u64, len: u64) -> SysResult {
    let file = file(fd)?;
    let (mode, offset, len) = (mode as u32, offset as i64, len as i64);
    if offset < 0 || len <= 0 {
        return Err(EINVAL);
    }
    let keep_size = mode & FALLOC_FL_KEEP_SIZE != 0;
    let supported = match mode & FALLOC_FL_OPERATIONS {
        _ if mode & !(FALLOC_FL_OPERATIONS | FALLOC_FL_KEEP_SIZE) != 0 => false,
        0 | FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_ZERO_RANGE => true,
        FALLOC_FL_PUNCH_HOLE => keep_size,
        FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE => !keep_size,
        _ => false,
    };
    if !supported {
        return Err(super::errno::EOPNOTSUPP);
    }
    if !file.writable() {
        return Err(EBADF);
    }
    let inode = file.inode();
    match inode.kind() {
        FileKind::Regular => {}
        FileKind::Directory => return Err(EISDIR),
        FileKind::Fifo => return Err(ESPIPE),
        _ => return Err(ENODEV),
    }
    let end = offset.checked_add(len).ok_or(super::errno::EFBIG)? as u64;
    match mode {
        0 | FALLOC_FL_KEEP_SIZE => {
            inode.allocate(offset as u64..end, mode == FALLOC_FL_KEEP_SIZE)?;
            Ok(0)
        }
        _ => Err(super::errno::EOPNOTSUPP),
    }
}

pub fn fsync(fd: u64) -> SysResult {
    let file = file(fd)?;
    match file.inode().kind() {
        // Memory is the storage: nothing is ever waiting to be written.
        FileKind::Regular | FileKind::Directory => Ok(0),
        _ => Err(EINVAL),
    }
}

/// `POSIX_FADV_NORMAL` to `POSIX_FADV_NOREUSE`: the advice fadvise64 knows.
const POSIX_FADV_LAST: u64 = 5;

/// fadvise64: advice about a file's page cache, which this kernel takes without acting on it
/// (the page cache keeps everything); Linux's checks: `EBADF`, `ESPIPE` for a pipe, `EINVAL`
/// for an unknown advice or a negative length.
pub fn fadvise64(fd: u64, _offset: u64, len: u64, advice: u64) -> SysResult {
    let file = file(fd)?;
    if file.inode().kind() == FileKind::Fifo {
        return Err(ESPIPE);
    }
    // `advice` is an `int`.
    if u64::from(advice as u32) > POSIX_FADV_LAST || (len as i64) < 0 {
        return Err(EINVAL);
    }
    Ok(0)
}

/// copy_file_range: copies up to `len` bytes between two regular files of one file system, at
/// the offsets given (then advanced) or at and advancing the files' positions. Checked in
/// Linux's order: the descriptors (`EBADF`), the offsets (`EFAULT`), the flags (`EINVAL`),
/// the kinds (`EISDIR`, `EINVAL`), the access modes (`EBADF`, an appending output too), the
/// file systems (`EXDEV`), offsets that wrap (`EOVERFLOW`), the length cut at the input's end,
/// an overlap within one file (`EINVAL`), then both ranges (`EINVAL`).
pub fn copy_file_range(
    fd_in: u64,
    offset_in: u64,
    fd_out: u64,
    offset_out: u64,
    len: u64,
    flags: u64,
) -> SysResult {
    let (input, output) = (file(fd_in)?, file(fd_out)?);
    let given = |pointer: u64| match pointer {
        0 => Ok(None),
        pointer => read_user::<i64>(pointer).map(Some),
    };
    let (given_in, given_out) = (given(offset_in)?, given(offset_out)?);
    if flags as u32 != 0 {
        return Err(EINVAL);
    }
    let (inode_in, inode_out) = (input.inode(), output.inode());
    if inode_in.kind() == FileKind::Directory || inode_out.kind() == FileKind::Directory {
        return Err(EISDIR);
    }
    if inode_in.kind() != FileKind::Regular || inode_out.kind() != FileKind::Regular {
        return Err(EINVAL);
    }
    if !input.readable() || !output.writable() || output.flags() & O_APPEND != 0 {
        return Err(EBADF);
    }
    let file_system = |inode: &Arc<dyn crate::fs::Inode>| (inode.fs(), inode.fs_instance());
    if file_system(inode_in) != file_system(inode_out) {
        return Err(super::errno::EXDEV);
    }
    let position_of = |file: &File, given: Option<i64>| match given {
        Some(at) => Ok(at),
        None => file.lock_position().map(|position| *position as i64),
    };
    let (pos_in, pos_out) = (
        position_of(&input, given_in)?,
        position_of(&output, given_out)?,
    );
    let wraps = |position: i64| (position as u64).checked_add(len).is_none();
    if wraps(pos_in) || wraps(pos_out) {
        return Err(EOVERFLOW);
    }
    let size_in = inode_in.stat().size;
    let count = len.min(size_in.saturating_sub(pos_in as u64));
    let same = Arc::ptr_eq(inode_in, inode_out);
    let overlaps =
        pos_out as u64 + count > pos_in as u64 && (pos_out as u64) < pos_in as u64 + count;
    if same && overlaps {
        return Err(EINVAL);
    }
    check_range(pos_in, count)?;
    check_range(pos_out, count)?;
    let count = count.min(MAX_RW_COUNT);
    let mut kernel = vec![0u8; (count as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        let moved = inode_in
            .read_at(&input, pos_in as u64 + done, &mut kernel[..want])
            .and_then(|read| inode_out.write_at(&output, pos_out as u64 + done, &kernel[..read]));
        match moved {
            Ok(0) => break,
            Ok(written) => done += written as u64,
            Err(error) if done == 0 => return Err(error),
            Err(_) => break,
        }
    }
    if done > 0 {
        for (file, pointer, start) in [(&input, offset_in, pos_in), (&output, offset_out, pos_out)]
        {
            let end = start as u64 + done;
            if pointer == 0 {
                *file.lock_position()? = end;
            } else {
                write_user(pointer, &end)?;
            }
        }
    }
    Ok(done)
}

/// `vhangup`: hangs up the caller's controlling terminal, if it has one (every caller has the
/// privilege: all are root).
pub fn vhangup() -> SysResult {
    crate::fs::tty::hang_up(super::thread::process().sid());
    Ok(0)
}
