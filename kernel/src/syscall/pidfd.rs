//! `pidfd_open`, and `process_madvise`, which takes its process by such a descriptor.

use super::errno::{EBADF, EINVAL, ESRCH, SysResult};
use super::int_arg;
use super::io::read_iovecs;
use super::thread::process;
use crate::fs::file::O_NONBLOCK;
use crate::mm::mmap::{self, MADV_COLD, MADV_COLLAPSE, MADV_PAGEOUT, MADV_WILLNEED};

/// `pidfd_open`'s flag for a descriptor of one thread (`O_EXCL`'s value).
const PIDFD_THREAD: u64 = 0o200;

/// `pidfd_open(pid, flags)`: a close-on-exec descriptor naming the process `pid`; flags
/// `PIDFD_NONBLOCK` (`O_NONBLOCK`) and `PIDFD_THREAD`, `EINVAL` for others or a pid that is
/// not positive, `ESRCH` when no such process exists.
pub fn pidfd_open(pid: u64, flags: u64) -> SysResult {
    // `unsigned int flags`.
    let flags = u64::from(flags as u32);
    if flags & !(u64::from(O_NONBLOCK) | PIDFD_THREAD) != 0 {
        return Err(EINVAL);
    }
    let pid = pid as i32;
    if pid <= 0 {
        return Err(EINVAL);
    }
    let target = crate::proc::find(pid as u32).ok_or(ESRCH)?;
    let file = crate::fs::pidfd::open(&target, flags as u32 & O_NONBLOCK)?;
    process().files().install(file, true, 0)
}

/// `process_madvise(pidfd, iovec, vlen, advice, flags)`: `madvise` of each range of the
/// vector in the address space of the process `pidfd` names, in order, stopping at the first
/// error; returns the bytes advised, or the error if the first range failed. In Linux's order:
/// flags (none exist: `EINVAL`), the vector (`EINVAL`, `EFAULT`), the descriptor (`EBADF`,
/// `ESRCH` for a process gone), then the advice: any `madvise` takes for the calling process
/// (as since Linux 6.13), only `MADV_COLD`, `MADV_PAGEOUT`, `MADV_WILLNEED` and
/// `MADV_COLLAPSE` for another.
pub fn process_madvise(pidfd: u64, iovec: u64, count: u64, advice: u64, flags: u64) -> SysResult {
    // Both are `int`s to Linux: bits above 31 do not count.
    let (advice, flags) = (int_arg(advice), int_arg(flags));
    if flags != 0 {
        return Err(EINVAL);
    }
    let ranges = read_iovecs(iovec, count)?;
    let file = process().files().get(pidfd)?;
    let target = crate::fs::pidfd::process_of(&file)
        .ok_or(EBADF)?
        .ok_or(ESRCH)?;
    let mm = target.mm().ok_or(ESRCH)?;
    let own = core::ptr::eq(&*mm, super::thread::mm());
    if !own
        && !matches!(
            advice,
            MADV_COLD | MADV_PAGEOUT | MADV_WILLNEED | MADV_COLLAPSE
        )
    {
        return Err(EINVAL);
    }
    let mut done = 0;
    for range in ranges {
        if let Err(error) = mmap::madvise(&mm, range.base, range.len, advice) {
            return if done > 0 { Ok(done) } else { Err(error) };
        }
        done += range.len;
    }
    Ok(done)
}
