//! Linux error numbers, as system calls return them (negated in RAX).

/// A Linux error number (positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// The largest error number: a return value from -1 to `-MAX_ERRNO` is an error (Linux's
/// `IS_ERR_VALUE`).
pub const MAX_ERRNO: i64 = 4095;

pub const EPERM: Errno = Errno(1);
pub const ENOENT: Errno = Errno(2);
pub const ESRCH: Errno = Errno(3);
pub const EINTR: Errno = Errno(4);
pub const EIO: Errno = Errno(5);
pub const ENXIO: Errno = Errno(6);
pub const E2BIG: Errno = Errno(7);
pub const ENOEXEC: Errno = Errno(8);
pub const EBADF: Errno = Errno(9);
pub const ECHILD: Errno = Errno(10);
pub const EAGAIN: Errno = Errno(11);
pub const ENOMEM: Errno = Errno(12);
pub const EACCES: Errno = Errno(13);
pub const EFAULT: Errno = Errno(14);
pub const EBUSY: Errno = Errno(16);
pub const EEXIST: Errno = Errno(17);
pub const EXDEV: Errno = Errno(18);
pub const ENODEV: Errno = Errno(19);
pub const ENOTDIR: Errno = Errno(20);
pub const EISDIR: Errno = Errno(21);
pub const EINVAL: Errno = Errno(22);
pub const EMFILE: Errno = Errno(24);
pub const ENOTTY: Errno = Errno(25);
pub const ETXTBSY: Errno = Errno(26);
pub const EFBIG: Errno = Errno(27);
pub const ENOSPC: Errno = Errno(28);
pub const ESPIPE: Errno = Errno(29);
pub const EPIPE: Errno = Errno(32);
pub const EMLINK: Errno = Errno(31);
pub const ERANGE: Errno = Errno(34);
pub const EDEADLK: Errno = Errno(35);
pub const ENAMETOOLONG: Errno = Errno(36);
pub const ENOSYS: Errno = Errno(38);
/// No such extended attribute (`ENODATA`).
pub const ENODATA: Errno = Errno(61);
/// A feature this kernel is built without (`ENOPKG`: Linux's answer for one not configured).
pub const ENOPKG: Errno = Errno(65);
pub const ENOTEMPTY: Errno = Errno(39);
pub const ELOOP: Errno = Errno(40);
pub const EOVERFLOW: Errno = Errno(75);
pub const EOPNOTSUPP: Errno = Errno(95);
/// The address family is not supported (no socket family is).
pub const EAFNOSUPPORT: Errno = Errno(97);
pub const ETIMEDOUT: Errno = Errno(110);

// The restart codes: a sleeping call that a signal interrupted returns one of these, and the
// way back to user mode turns it into `EINTR` or a restart, depending on what the signal does
// (see `proc::signal`). User space never sees them.

/// Restart if no handler runs or the handler has `SA_RESTART`; else `EINTR`.
pub const ERESTARTSYS: Errno = Errno(512);
/// Restart, whether a handler runs or not.
pub const ERESTARTNOINTR: Errno = Errno(513);
/// Restart if no handler runs; else `EINTR`.
pub const ERESTARTNOHAND: Errno = Errno(514);
/// Continue through `restart_syscall` (the thread's restart block) if no handler runs; else
/// `EINTR`.
pub const ERESTART_RESTARTBLOCK: Errno = Errno(516);

/// What a system call returns: a value, or an error number.
pub type SysResult = Result<u64, Errno>;
