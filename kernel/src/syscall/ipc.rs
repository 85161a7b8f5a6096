//! Descriptors that processes and threads signal each other through: pipe, pipe2, eventfd,
//! eventfd2 (the files themselves are `fs::pipe`'s and `fs::eventfd`'s); and `socket` and
//! `socketpair`, which offer no address family.

use super::errno::{EAFNOSUPPORT, EINVAL, ENOPKG, SysResult};
use super::thread::process;
use crate::arch::uaccess::write_user;
use crate::fs::file::{O_CLOEXEC, O_DIRECT, O_EXCL, O_NONBLOCK};

/// `pipe2`'s flag for a notification queue (the bit of `O_EXCL`).
const O_NOTIFICATION_PIPE: u32 = O_EXCL;

/// `pipe2(fds, flags)`: a pipe's read end and write end, as the lowest free descriptors, written
/// to `fds` as two ints. `EINVAL` for flags other than `O_CLOEXEC`, `O_NONBLOCK`, `O_DIRECT` and
/// `O_NOTIFICATION_PIPE`; that last one is `ENOPKG`, before `fds` is looked at, as on a Linux
/// built without notification queues (`CONFIG_WATCH_QUEUE`, which Debian's kernels lack).
/// A bad `fds` is `EFAULT`, and no descriptor stays (the two were visible to the process's
/// other threads meanwhile: Linux reserves the numbers first and installs them after the copy).
pub fn pipe2(fds: u64, flags: u64) -> SysResult {
    let flags = flags as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT | O_NOTIFICATION_PIPE) != 0 {
        return Err(EINVAL);
    }
    if flags & O_NOTIFICATION_PIPE != 0 {
        return Err(ENOPKG);
    }
    let (read_end, write_end) = crate::fs::pipe::open_pair(flags & (O_NONBLOCK | O_DIRECT))?;
    let files = process().files();
    let close_on_exec = flags & O_CLOEXEC != 0;
    let read_fd = files.install(read_end, close_on_exec, 0)?;
    let installed =
        files
            .install(write_end, close_on_exec, 0)
            .and_then(
                |write_fd| match write_user(fds, &[read_fd as i32, write_fd as i32]) {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        drop(files.remove(write_fd));
                        Err(error)
                    }
                },
            );
    if let Err(error) = installed {
        drop(files.remove(read_fd));
        return Err(error);
    }
    Ok(0)
}

/// `eventfd2`'s flag for a counter that reads take one by one.
const EFD_SEMAPHORE: u32 = 1;

/// `eventfd2(initial, flags)`: a new event counter; flags `EFD_SEMAPHORE`, `EFD_NONBLOCK`
/// (`O_NONBLOCK`) and `EFD_CLOEXEC` (`O_CLOEXEC`), `EINVAL` for others.
pub fn eventfd2(initial: u64, flags: u64) -> SysResult {
    let flags = flags as u32;
    if flags & !(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(EINVAL);
    }
    let file = crate::fs::eventfd::open(
        u64::from(initial as u32),
        flags & EFD_SEMAPHORE != 0,
        flags & O_NONBLOCK,
    )?;
    process().files().install(file, flags & O_CLOEXEC != 0, 0)
}

/// `socket`'s type flags, beside the type in the low four bits.
const SOCK_NONBLOCK: u64 = O_NONBLOCK as u64;
const SOCK_CLOEXEC: u64 = O_CLOEXEC as u64;
const SOCK_TYPE_MASK: u64 = 0xf;
/// Socket types (`SOCK_STREAM` 1 to `SOCK_PACKET` 10) and address families (`AF_UNIX` 1 to
/// `AF_MCTP` 45) Linux knows.
const SOCK_TYPES: u64 = 11;
const ADDRESS_FAMILIES: u64 = 46;

/// `socket(family, type, protocol)`: checked as Linux's `__sys_socket` (`EINVAL` for unknown
/// flags or type, `EAFNOSUPPORT` for a family out of range); no address family is registered
/// in this kernel, so every family is then `EAFNOSUPPORT`, as Linux answers for one whose
/// module is absent.
pub fn socket(family: u64, kind: u64, _protocol: u64) -> SysResult {
    let kind = socket_flags(kind)?;
    socket_family(family, kind)
}

/// The type of a `socket`/`socketpair` type argument (an `int`); `EINVAL` for flags other than
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC`.
fn socket_flags(kind: u64) -> Result<u64, super::errno::Errno> {
    let kind = u64::from(kind as u32);
    if kind & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(EINVAL);
    }
    Ok(kind)
}

/// Linux's `__sock_create` checks of `family` and `kind` (EAFNOSUPPORT, EINVAL), then the
/// family's, which is never registered here.
fn socket_family(family: u64, kind: u64) -> SysResult {
    if u64::from(family as u32) >= ADDRESS_FAMILIES {
        return Err(EAFNOSUPPORT);
    }
    if kind & SOCK_TYPE_MASK >= SOCK_TYPES {
        return Err(EINVAL);
    }
    Err(EAFNOSUPPORT)
}

/// `socketpair(family, type, protocol, fds)`: checked as Linux's `__sys_socketpair`: the
/// flags (EINVAL); then the two lowest free descriptor numbers, which Linux reserves, are
/// written to `fds` (EFAULT, EMFILE) before the family is looked at.
pub fn socketpair(family: u64, kind: u64, _protocol: u64, fds: u64) -> SysResult {
    let kind = socket_flags(kind)?;
    let open = process().files().open_fds();
    let mut free = (0..crate::fs::file::MAX_FDS as u64).filter(|fd| !open.contains(fd));
    let (Some(first), Some(second)) = (free.next(), free.next()) else {
        return Err(super::errno::EMFILE);
    };
    write_user(fds, &[first as i32, second as i32])?;
    socket_family(family, kind)
}
