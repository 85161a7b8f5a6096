//! Raw Linux x86_64 system calls (`syscall0..6`), their numbers, `Errno`, and typed wrappers.
//!
//! Every wrapper returns `Result<usize, Errno>`: the kernel's `-errno` (a return value in
//! `-4095..=-1`) becomes `Err`. Pointers are passed as given, unchecked: the tests hand the
//! kernel bad ones on purpose, so the wrappers take raw pointers and addresses, not references.

use core::arch::asm;
use core::fmt;

/// System call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const OPEN: usize = 2;
    pub const CLOSE: usize = 3;
    pub const STAT: usize = 4;
    pub const FSTAT: usize = 5;
    pub const LSTAT: usize = 6;
    pub const POLL: usize = 7;
    pub const LSEEK: usize = 8;
    pub const MMAP: usize = 9;
    pub const MPROTECT: usize = 10;
    pub const MUNMAP: usize = 11;
    pub const BRK: usize = 12;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const RT_SIGRETURN: usize = 15;
    pub const IOCTL: usize = 16;
    pub const PREAD64: usize = 17;
    pub const PWRITE64: usize = 18;
    pub const READV: usize = 19;
    pub const WRITEV: usize = 20;
    pub const PIPE: usize = 22;
    pub const SELECT: usize = 23;
    pub const SCHED_YIELD: usize = 24;
    pub const MREMAP: usize = 25;
    pub const MSYNC: usize = 26;
    pub const MINCORE: usize = 27;
    pub const MADVISE: usize = 28;
    pub const DUP: usize = 32;
    pub const DUP2: usize = 33;
    pub const PAUSE: usize = 34;
    pub const NANOSLEEP: usize = 35;
    pub const GETPID: usize = 39;
    pub const SENDFILE: usize = 40;
    pub const SOCKET: usize = 41;
    pub const SOCKETPAIR: usize = 53;
    pub const CLONE: usize = 56;
    pub const FORK: usize = 57;
    pub const VFORK: usize = 58;
    pub const EXECVE: usize = 59;
    pub const EXIT: usize = 60;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const UNAME: usize = 63;
    pub const FCNTL: usize = 72;
    pub const FSYNC: usize = 74;
    pub const FDATASYNC: usize = 75;
    pub const TRUNCATE: usize = 76;
    pub const FTRUNCATE: usize = 77;
    pub const GETCWD: usize = 79;
    pub const CHDIR: usize = 80;
    pub const FCHDIR: usize = 81;
    pub const MKDIR: usize = 83;
    pub const CREAT: usize = 85;
    pub const FCHMOD: usize = 91;
    pub const UMASK: usize = 95;
    pub const GETRUSAGE: usize = 98;
    pub const SYSINFO: usize = 99;
    pub const GETUID: usize = 102;
    pub const GETGID: usize = 104;
    pub const GETEUID: usize = 107;
    pub const GETEGID: usize = 108;
    pub const SETPGID: usize = 109;
    pub const GETPPID: usize = 110;
    pub const GETPGRP: usize = 111;
    pub const SETSID: usize = 112;
    pub const GETPGID: usize = 121;
    pub const GETSID: usize = 124;
    pub const RT_SIGPENDING: usize = 127;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const RT_SIGQUEUEINFO: usize = 129;
    pub const RT_SIGSUSPEND: usize = 130;
    pub const SIGALTSTACK: usize = 131;
    pub const STATFS: usize = 137;
    pub const FSTATFS: usize = 138;
    pub const SETPRIORITY: usize = 141;
    pub const PRCTL: usize = 157;
    pub const ARCH_PRCTL: usize = 158;
    pub const MOUNT: usize = 165;
    pub const UMOUNT2: usize = 166;
    pub const REBOOT: usize = 169;
    pub const GETTID: usize = 186;
    pub const TKILL: usize = 200;
    pub const FUTEX: usize = 202;
    pub const SCHED_SETAFFINITY: usize = 203;
    pub const SCHED_GETAFFINITY: usize = 204;
    pub const GETDENTS64: usize = 217;
    pub const SET_TID_ADDRESS: usize = 218;
    pub const CLOCK_GETTIME: usize = 228;
    pub const CLOCK_NANOSLEEP: usize = 230;
    pub const EXIT_GROUP: usize = 231;
    pub const TGKILL: usize = 234;
    pub const WAITID: usize = 247;
    pub const OPENAT: usize = 257;
    pub const MKDIRAT: usize = 258;
    pub const NEWFSTATAT: usize = 262;
    pub const UNLINKAT: usize = 263;
    pub const LINKAT: usize = 265;
    pub const SYMLINKAT: usize = 266;
    pub const READLINKAT: usize = 267;
    pub const FCHMODAT: usize = 268;
    pub const FACCESSAT: usize = 269;
    pub const PSELECT6: usize = 270;
    pub const PPOLL: usize = 271;
    pub const SET_ROBUST_LIST: usize = 273;
    pub const EVENTFD: usize = 284;
    pub const FALLOCATE: usize = 285;
    pub const EVENTFD2: usize = 290;
    pub const DUP3: usize = 292;
    pub const PIPE2: usize = 293;
    pub const PREADV: usize = 295;
    pub const PWRITEV: usize = 296;
    pub const RT_TGSIGQUEUEINFO: usize = 297;
    pub const MLOCK: usize = 149;
    pub const MUNLOCK: usize = 150;
    pub const MLOCKALL: usize = 151;
    pub const MUNLOCKALL: usize = 152;
    pub const PRLIMIT64: usize = 302;
    pub const GETCPU: usize = 309;
    pub const RENAMEAT2: usize = 316;
    pub const GETRANDOM: usize = 318;
    pub const MEMFD_CREATE: usize = 319;
    pub const EXECVEAT: usize = 322;
    pub const MLOCK2: usize = 325;
    pub const STATX: usize = 332;
    pub const RSEQ: usize = 334;
    pub const PIDFD_OPEN: usize = 434;
    pub const CLONE3: usize = 435;
    pub const CLOSE_RANGE: usize = 436;
    pub const PROCESS_MADVISE: usize = 440;
    pub const FACCESSAT2: usize = 439;
}

/// A Linux error number (the positive value; the kernel returns its negation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
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
    pub const ENODEV: Errno = Errno(19);
    pub const ENOTDIR: Errno = Errno(20);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const ENOTTY: Errno = Errno(25);
    pub const ETXTBSY: Errno = Errno(26);
    pub const ENOSPC: Errno = Errno(28);
    pub const ESPIPE: Errno = Errno(29);
    pub const EPIPE: Errno = Errno(32);
    pub const ERANGE: Errno = Errno(34);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOSYS: Errno = Errno(38);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ELOOP: Errno = Errno(40);
    pub const ENODATA: Errno = Errno(61);
    pub const ENOPKG: Errno = Errno(65);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const ETIMEDOUT: Errno = Errno(110);

    /// The symbolic name, for messages.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            5 => "EIO",
            7 => "E2BIG",
            8 => "ENOEXEC",
            9 => "EBADF",
            10 => "ECHILD",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            19 => "ENODEV",
            20 => "ENOTDIR",
            21 => "EISDIR",
            22 => "EINVAL",
            25 => "ENOTTY",
            26 => "ETXTBSY",
            28 => "ENOSPC",
            29 => "ESPIPE",
            32 => "EPIPE",
            34 => "ERANGE",
            36 => "ENAMETOOLONG",
            38 => "ENOSYS",
            39 => "ENOTEMPTY",
            40 => "ELOOP",
            75 => "EOVERFLOW",
            95 => "EOPNOTSUPP",
            110 => "ETIMEDOUT",
            _ => "E?",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a system call returned, decoded.
pub type SysResult = Result<usize, Errno>;

/// Decodes a raw return value: `-4095..=-1` is an error.
#[inline]
pub fn decode(ret: usize) -> SysResult {
    if ret > (-4096isize) as usize {
        Err(Errno(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

/// # Safety
/// The call must not break memory safety (see the syscall's contract).
#[inline]
pub unsafe fn syscall0(n: usize) -> usize {
    let ret;
    // SAFETY: the caller vouches for the call; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    ret
}

/// # Safety
/// As [`syscall0`].
#[inline]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// # Safety
/// As [`syscall0`].
#[inline]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// # Safety
/// As [`syscall0`].
#[inline]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// # Safety
/// As [`syscall0`].
#[inline]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// # Safety
/// As [`syscall0`].
#[inline]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, in("r8") e, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// # Safety
/// As [`syscall0`].
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn syscall6(
    n: usize,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, in("r8") e, in("r9") f, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    ret
}

/// Any system call with up to six arguments, decoded. For tests that pass odd arguments.
///
/// # Safety
/// As [`syscall0`]: the call must not write where Rust code holds live references.
#[inline]
pub unsafe fn raw(n: usize, args: &[usize]) -> SysResult {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: forwarded to the caller.
    decode(unsafe { syscall6(n, a(0), a(1), a(2), a(3), a(4), a(5)) })
}

// ---- constants ----

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const PROT_EXEC: usize = 4;
/// `mprotect`: from the start of the VMA, which must grow down.
pub const PROT_GROWSDOWN: usize = 0x0100_0000;
/// `mprotect`: to the end of the VMA, which must grow up (none does on x86-64).
pub const PROT_GROWSUP: usize = 0x0200_0000;
pub const MAP_SHARED: usize = 0x01;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_SHARED_VALIDATE: usize = 0x03;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_GROWSDOWN: usize = 0x0100;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_POPULATE: usize = 0x8000;
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;
pub const MAP_SYNC: usize = 0x8_0000;
pub const MAP_LOCKED: usize = 0x2000;
pub const MAP_HUGETLB: usize = 0x4_0000;
/// `MAP_HUGETLB`'s page size, log2, in these bits.
pub const MAP_HUGE_SHIFT: usize = 26;
pub const SEEK_SET: usize = 0;
pub const SEEK_CUR: usize = 1;
pub const SEEK_END: usize = 2;
pub const MADV_NORMAL: usize = 0;
pub const MADV_DONTNEED: usize = 4;
pub const MADV_FREE: usize = 8;
pub const MADV_DONTFORK: usize = 10;
pub const MADV_DOFORK: usize = 11;
pub const MADV_WIPEONFORK: usize = 18;
pub const MADV_KEEPONFORK: usize = 19;
pub const MADV_RANDOM: usize = 1;
pub const MADV_SEQUENTIAL: usize = 2;
pub const MADV_WILLNEED: usize = 3;
pub const MADV_REMOVE: usize = 9;
pub const MADV_MERGEABLE: usize = 12;
pub const MADV_UNMERGEABLE: usize = 13;
pub const MADV_HUGEPAGE: usize = 14;
pub const MADV_NOHUGEPAGE: usize = 15;
pub const MADV_DONTDUMP: usize = 16;
pub const MADV_DODUMP: usize = 17;
pub const MADV_COLD: usize = 20;
pub const MADV_PAGEOUT: usize = 21;
pub const MADV_POPULATE_READ: usize = 22;
pub const MADV_POPULATE_WRITE: usize = 23;
pub const MADV_DONTNEED_LOCKED: usize = 24;
pub const MADV_GUARD_INSTALL: usize = 102;
pub const MADV_GUARD_REMOVE: usize = 103;
pub const MLOCK_ONFAULT: usize = 1;
pub const MCL_CURRENT: usize = 1;
pub const MCL_FUTURE: usize = 2;
pub const MCL_ONFAULT: usize = 4;
pub const MREMAP_MAYMOVE: usize = 1;
pub const MREMAP_FIXED: usize = 2;
pub const MREMAP_DONTUNMAP: usize = 4;

pub const FUTEX_WAIT: usize = 0;
pub const FUTEX_WAKE: usize = 1;
pub const FUTEX_PRIVATE_FLAG: usize = 128;

pub const CLOCK_REALTIME: usize = 0;
pub const CLOCK_MONOTONIC: usize = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: usize = 2;
pub const CLOCK_THREAD_CPUTIME_ID: usize = 3;

pub const ARCH_SET_FS: usize = 0x1002;
pub const ARCH_GET_FS: usize = 0x1003;

pub const PR_SET_NAME: usize = 15;
pub const PR_GET_NAME: usize = 16;

pub const CLONE_VM: usize = 0x100;
pub const CLONE_FS: usize = 0x200;
pub const CLONE_FILES: usize = 0x400;
pub const CLONE_SIGHAND: usize = 0x800;
pub const CLONE_VFORK: usize = 0x4000;
pub const CLONE_THREAD: usize = 0x1_0000;
pub const CLONE_SYSVSEM: usize = 0x4_0000;
pub const CLONE_SETTLS: usize = 0x8_0000;
pub const CLONE_PARENT_SETTID: usize = 0x10_0000;
pub const CLONE_CHILD_CLEARTID: usize = 0x20_0000;
pub const CLONE_DETACHED: usize = 0x40_0000;
pub const CLONE_CHILD_SETTID: usize = 0x100_0000;

/// `wait4`/`waitid` options.
pub const WNOHANG: usize = 1;
pub const WUNTRACED: usize = 2;
pub const WSTOPPED: usize = 2;
pub const WEXITED: usize = 4;
pub const WCONTINUED: usize = 8;
pub const WNOWAIT: usize = 0x0100_0000;
pub const WNOTHREAD: usize = 0x2000_0000;
pub const WALL: usize = 0x4000_0000;
pub const WCLONE: usize = 0x8000_0000;
/// `waitid` id types.
pub const P_ALL: usize = 0;
pub const P_PID: usize = 1;
pub const P_PGID: usize = 2;
pub const P_PIDFD: usize = 3;
/// `si_code` of a `waitid` report.
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

pub const RUSAGE_SELF: usize = 0;
pub const RUSAGE_THREAD: usize = 1;
pub const RLIMIT_STACK: usize = 3;
pub const AT_FDCWD: usize = -100isize as usize;
pub const AT_EMPTY_PATH: usize = 0x1000;
/// Terminal ioctls.
pub const TCGETS: usize = 0x5401;
pub const TCSETS: usize = 0x5402;
pub const TCSETSW: usize = 0x5403;
pub const TCSETSF: usize = 0x5404;
pub const TCFLSH: usize = 0x540b;
pub const TIOCSCTTY: usize = 0x540e;
pub const TIOCGPGRP: usize = 0x540f;
pub const TIOCSPGRP: usize = 0x5410;
pub const TIOCSWINSZ: usize = 0x5414;
pub const FIONBIO: usize = 0x5421;
pub const TIOCNOTTY: usize = 0x5422;
pub const TIOCGSID: usize = 0x5429;

// Files: open flags, `*at` flags, modes, fcntl, and the other calls' flags.
pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_RDWR: usize = 2;
pub const O_ACCMODE: usize = 3;
pub const O_CREAT: usize = 0o100;
pub const O_EXCL: usize = 0o200;
pub const O_NOCTTY: usize = 0o400;
pub const O_TRUNC: usize = 0o1000;
pub const O_APPEND: usize = 0o2000;
pub const O_NONBLOCK: usize = 0o4000;
pub const O_DIRECT: usize = 0o4_0000;
pub const O_DIRECTORY: usize = 0o20_0000;
pub const O_NOFOLLOW: usize = 0o40_0000;
pub const O_CLOEXEC: usize = 0o200_0000;
pub const O_PATH: usize = 0o1000_0000;
pub const AT_SYMLINK_NOFOLLOW: usize = 0x100;
pub const AT_REMOVEDIR: usize = 0x200;
pub const AT_EACCESS: usize = 0x200;
pub const AT_SYMLINK_FOLLOW: usize = 0x400;
pub const RENAME_NOREPLACE: usize = 1;
pub const RENAME_EXCHANGE: usize = 2;
pub const F_OK: usize = 0;
pub const X_OK: usize = 1;
pub const W_OK: usize = 2;
pub const R_OK: usize = 4;
pub const S_IFMT: u32 = 0o170000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const F_DUPFD: usize = 0;
pub const F_GETFD: usize = 1;
pub const F_SETFD: usize = 2;
pub const F_GETFL: usize = 3;
pub const F_SETFL: usize = 4;
pub const F_DUPFD_CLOEXEC: usize = 1030;
pub const F_SETPIPE_SZ: usize = 1031;
pub const F_GETPIPE_SZ: usize = 1032;
pub const FD_CLOEXEC: usize = 1;
pub const CLOSE_RANGE_CLOEXEC: usize = 4;
pub const FALLOC_FL_KEEP_SIZE: usize = 1;
/// `umount2` flags.
pub const MNT_DETACH: usize = 2;
pub const MS_ASYNC: usize = 1;
pub const MS_INVALIDATE: usize = 2;
pub const MS_SYNC: usize = 4;
pub const MFD_CLOEXEC: usize = 1;
pub const EFD_SEMAPHORE: usize = 1;
pub const EFD_NONBLOCK: usize = O_NONBLOCK;
pub const EFD_CLOEXEC: usize = O_CLOEXEC;
pub const STATX_BASIC_STATS: usize = 0x7ff;
pub const POLLIN: i16 = 1;
pub const POLLOUT: i16 = 4;
pub const POLLERR: i16 = 8;
pub const POLLHUP: i16 = 0x10;
pub const POLLNVAL: i16 = 0x20;
pub const POLLRDNORM: i16 = 0x40;
pub const POLLWRNORM: i16 = 0x100;
pub const FIONREAD: usize = 0x541b;
pub const TIOCGWINSZ: usize = 0x5413;
/// `d_type` of a directory entry.
pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;
pub const MS_NOSUID: usize = 2;
pub const MS_NODEV: usize = 4;
pub const MS_NOEXEC: usize = 8;
pub const SIGSEGV: usize = 11;
pub const SIGCHLD: usize = 17;

pub const LINUX_REBOOT_MAGIC1: usize = 0xfee1_dead;
pub const LINUX_REBOOT_MAGIC2: usize = 0x2812_1969;
pub const LINUX_REBOOT_CMD_POWER_OFF: usize = 0x4321_fedc;

pub const PAGE_SIZE: usize = 4096;

// ---- structures ----

#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

impl Timespec {
    pub fn as_nanos(&self) -> u64 {
        (self.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(self.tv_nsec as u64)
    }
    pub fn from_nanos(ns: u64) -> Self {
        Self {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    pub ru_maxrss: i64,
    pub ru_ixrss: i64,
    pub ru_idrss: i64,
    pub ru_isrss: i64,
    pub ru_minflt: i64,
    pub ru_majflt: i64,
    pub ru_nswap: i64,
    pub ru_inblock: i64,
    pub ru_oublock: i64,
    pub ru_msgsnd: i64,
    pub ru_msgrcv: i64,
    pub ru_nsignals: i64,
    pub ru_nvcsw: i64,
    pub ru_nivcsw: i64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}

impl Default for Utsname {
    fn default() -> Self {
        Self {
            sysname: [0; 65],
            nodename: [0; 65],
            release: [0; 65],
            version: [0; 65],
            machine: [0; 65],
            domainname: [0; 65],
        }
    }
}

/// `struct stat` of x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub reserved: [i64; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Iovec {
    pub base: usize,
    pub len: usize,
}

/// `siginfo_t` as `waitid` fills it (the fields of a `SIGCHLD` report; 128 bytes in all).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Siginfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pub pad: i32,
    pub pid: i32,
    pub uid: u32,
    pub status: i32,
    pub rest: [i32; 25],
}

impl Siginfo {
    /// Every word set to `word`, to see which ones a call writes.
    pub fn filled(word: i32) -> Self {
        Self {
            signo: word,
            errno: word,
            code: word,
            pad: word,
            pid: word,
            uid: word as u32,
            status: word,
            rest: [word; 25],
        }
    }
}

/// `struct clone_args` of `clone3` (`CLONE_ARGS_SIZE_VER2`, 88 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// `clone3`'s first size (`CLONE_ARGS_SIZE_VER0`: up to `tls`).
pub const CLONE_ARGS_SIZE_VER0: usize = 64;

/// `struct statx` (256 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub spare0: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    /// atime, btime, ctime, mtime: seconds (i64), nanoseconds (u32), 4 reserved bytes.
    pub times: [[u64; 2]; 4],
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub rest: [u64; 14],
}

/// `struct statfs` of x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct StatFs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

/// `struct sysinfo` of x86_64 (112 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
}

/// `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// `fd_set` of select: 1024 bits.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct FdSet(pub [u64; 16]);

impl FdSet {
    pub fn set(&mut self, fd: usize) {
        self.0[fd / 64] |= 1 << (fd % 64);
    }
    pub fn is_set(&self, fd: usize) -> bool {
        self.0[fd / 64] & (1 << (fd % 64)) != 0
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

// ---- typed wrappers ----

macro_rules! wrap {
    ($(#[$m:meta])* $name:ident($($arg:ident),*) = $nr:expr, $call:ident) => {
        $(#[$m])*
        #[inline]
        pub fn $name($($arg: usize),*) -> SysResult {
            // SAFETY: these calls take plain values or user addresses; the kernel checks the
            // addresses (a bad one is an error, not a crash), and memory the kernel writes is
            // reached through raw addresses, never through live Rust references.
            decode(unsafe { $call($nr, $($arg),*) })
        }
    };
}

wrap!(read(fd, buf, len) = nr::READ, syscall3);
wrap!(write(fd, buf, len) = nr::WRITE, syscall3);
wrap!(readv(fd, iov, cnt) = nr::READV, syscall3);
wrap!(writev(fd, iov, cnt) = nr::WRITEV, syscall3);
wrap!(lseek(fd, offset, whence) = nr::LSEEK, syscall3);
wrap!(pread64(fd, buf, len, offset) = nr::PREAD64, syscall4);
wrap!(pwrite64(fd, buf, len, offset) = nr::PWRITE64, syscall4);
wrap!(mmap(addr, len, prot, flags, fd, off) = nr::MMAP, syscall6);
wrap!(munmap(addr, len) = nr::MUNMAP, syscall2);
wrap!(mprotect(addr, len, prot) = nr::MPROTECT, syscall3);
wrap!(madvise(addr, len, advice) = nr::MADVISE, syscall3);
wrap!(
    mremap(old, old_len, new_len, flags, new_addr) = nr::MREMAP,
    syscall5
);
wrap!(
    /// brk never fails: it returns the (possibly unchanged) break.
    brk(addr) = nr::BRK,
    syscall1
);
wrap!(
    futex(uaddr, op, val, timeout, uaddr2, val3) = nr::FUTEX,
    syscall6
);
wrap!(set_tid_address(tidptr) = nr::SET_TID_ADDRESS, syscall1);
wrap!(arch_prctl(code, addr) = nr::ARCH_PRCTL, syscall2);
wrap!(
    sched_setaffinity(pid, len, mask) = nr::SCHED_SETAFFINITY,
    syscall3
);
wrap!(
    sched_getaffinity(pid, len, mask) = nr::SCHED_GETAFFINITY,
    syscall3
);
wrap!(nanosleep(req, rem) = nr::NANOSLEEP, syscall2);
wrap!(clock_gettime(clock, tp) = nr::CLOCK_GETTIME, syscall2);
wrap!(getrandom(buf, len, flags) = nr::GETRANDOM, syscall3);
wrap!(prctl(option, a2, a3, a4, a5) = nr::PRCTL, syscall5);
wrap!(uname(buf) = nr::UNAME, syscall1);
wrap!(getrusage(who, usage) = nr::GETRUSAGE, syscall2);
wrap!(ioctl(fd, cmd, arg) = nr::IOCTL, syscall3);
wrap!(fstat(fd, st) = nr::FSTAT, syscall2);
wrap!(
    newfstatat(dirfd, path, st, flags) = nr::NEWFSTATAT,
    syscall4
);
wrap!(set_robust_list(head, len) = nr::SET_ROBUST_LIST, syscall2);
wrap!(rseq(rseq, len, flags, sig) = nr::RSEQ, syscall4);
wrap!(prlimit64(pid, resource, new, old) = nr::PRLIMIT64, syscall4);
wrap!(
    rt_sigaction(sig, act, oact, size) = nr::RT_SIGACTION,
    syscall4
);
wrap!(
    rt_sigprocmask(how, set, oset, size) = nr::RT_SIGPROCMASK,
    syscall4
);
wrap!(sigaltstack(ss, old) = nr::SIGALTSTACK, syscall2);
wrap!(rt_sigpending(set, size) = nr::RT_SIGPENDING, syscall2);
wrap!(rt_sigsuspend(mask, size) = nr::RT_SIGSUSPEND, syscall2);
wrap!(
    rt_sigtimedwait(set, info, timeout, size) = nr::RT_SIGTIMEDWAIT,
    syscall4
);
wrap!(
    rt_sigqueueinfo(pid, sig, info) = nr::RT_SIGQUEUEINFO,
    syscall3
);
wrap!(
    rt_tgsigqueueinfo(tgid, tid, sig, info) = nr::RT_TGSIGQUEUEINFO,
    syscall4
);
wrap!(kill(pid, sig) = nr::KILL, syscall2);
wrap!(tkill(tid, sig) = nr::TKILL, syscall2);
wrap!(tgkill(tgid, tid, sig) = nr::TGKILL, syscall3);
wrap!(pause() = nr::PAUSE, syscall0);
wrap!(
    clock_nanosleep(clock, flags, req, rem) = nr::CLOCK_NANOSLEEP,
    syscall4
);
wrap!(readlinkat(dirfd, path, buf, len) = nr::READLINKAT, syscall4);
wrap!(getcpu(cpu, node, cache) = nr::GETCPU, syscall3);
wrap!(wait4(pid, status, options, rusage) = nr::WAIT4, syscall4);
wrap!(
    waitid(idtype, id, info, options, rusage) = nr::WAITID,
    syscall5
);
wrap!(execve(path, argv, envp) = nr::EXECVE, syscall3);
wrap!(
    execveat(dirfd, path, argv, envp, flags) = nr::EXECVEAT,
    syscall5
);
wrap!(setpgid(pid, pgid) = nr::SETPGID, syscall2);
wrap!(getpgid(pid) = nr::GETPGID, syscall1);
wrap!(getsid(pid) = nr::GETSID, syscall1);
wrap!(reboot(magic1, magic2, cmd, arg) = nr::REBOOT, syscall4);

wrap!(open(path, flags, mode) = nr::OPEN, syscall3);
wrap!(openat(dirfd, path, flags, mode) = nr::OPENAT, syscall4);
wrap!(creat(path, mode) = nr::CREAT, syscall2);
wrap!(close(fd) = nr::CLOSE, syscall1);
wrap!(close_range(first, last, flags) = nr::CLOSE_RANGE, syscall3);
wrap!(
    /// `preadv(fd, iov, cnt, offset)` (the offset's high half, for 32-bit callers, is 0).
    preadv(fd, iov, cnt, offset) = nr::PREADV,
    syscall4
);
wrap!(pwritev(fd, iov, cnt, offset) = nr::PWRITEV, syscall4);
wrap!(stat(path, st) = nr::STAT, syscall2);
wrap!(lstat(path, st) = nr::LSTAT, syscall2);
wrap!(statx(dirfd, path, flags, mask, buf) = nr::STATX, syscall5);
wrap!(getdents64(fd, buf, len) = nr::GETDENTS64, syscall3);
wrap!(mkdirat(dirfd, path, mode) = nr::MKDIRAT, syscall3);
wrap!(mkdir(path, mode) = nr::MKDIR, syscall2);
wrap!(unlinkat(dirfd, path, flags) = nr::UNLINKAT, syscall3);
wrap!(
    renameat2(olddirfd, old, newdirfd, new, flags) = nr::RENAMEAT2,
    syscall5
);
wrap!(
    linkat(olddirfd, old, newdirfd, new, flags) = nr::LINKAT,
    syscall5
);
wrap!(symlinkat(target, dirfd, path) = nr::SYMLINKAT, syscall3);
wrap!(fchmod(fd, mode) = nr::FCHMOD, syscall2);
wrap!(fchmodat(dirfd, path, mode) = nr::FCHMODAT, syscall3);
wrap!(truncate(path, len) = nr::TRUNCATE, syscall2);
wrap!(ftruncate(fd, len) = nr::FTRUNCATE, syscall2);
wrap!(fallocate(fd, mode, offset, len) = nr::FALLOCATE, syscall4);
wrap!(fsync(fd) = nr::FSYNC, syscall1);
wrap!(fdatasync(fd) = nr::FDATASYNC, syscall1);
wrap!(chdir(path) = nr::CHDIR, syscall1);
wrap!(fchdir(fd) = nr::FCHDIR, syscall1);
wrap!(getcwd(buf, len) = nr::GETCWD, syscall2);
wrap!(faccessat(dirfd, path, mode) = nr::FACCESSAT, syscall3);
wrap!(
    faccessat2(dirfd, path, mode, flags) = nr::FACCESSAT2,
    syscall4
);
wrap!(
    /// umask never fails: it returns the old mask.
    umask(mask) = nr::UMASK,
    syscall1
);
wrap!(dup(fd) = nr::DUP, syscall1);
wrap!(dup2(old, new) = nr::DUP2, syscall2);
wrap!(dup3(old, new, flags) = nr::DUP3, syscall3);
wrap!(fcntl(fd, cmd, arg) = nr::FCNTL, syscall3);
wrap!(memfd_create(name, flags) = nr::MEMFD_CREATE, syscall2);
wrap!(statfs(path, buf) = nr::STATFS, syscall2);
wrap!(fstatfs(fd, buf) = nr::FSTATFS, syscall2);
wrap!(sendfile(out, input, offset, count) = nr::SENDFILE, syscall4);
wrap!(eventfd2(initval, flags) = nr::EVENTFD2, syscall2);
wrap!(sysinfo(info) = nr::SYSINFO, syscall1);
wrap!(pipe2(fds, flags) = nr::PIPE2, syscall2);
wrap!(pipe(fds) = nr::PIPE, syscall1);
wrap!(eventfd(initval) = nr::EVENTFD, syscall1);
wrap!(poll(fds, nfds, timeout_ms) = nr::POLL, syscall3);
wrap!(
    ppoll(fds, nfds, timeout, sigmask, sigsetsize) = nr::PPOLL,
    syscall5
);
wrap!(
    select(nfds, readfds, writefds, exceptfds, timeout) = nr::SELECT,
    syscall5
);
wrap!(
    /// `pselect6(..., timeout, sig)`: `sig` points at `{ sigset address, sigset size }`.
    pselect6(nfds, readfds, writefds, exceptfds, timeout, sig) = nr::PSELECT6,
    syscall6
);
wrap!(msync(addr, len, flags) = nr::MSYNC, syscall3);
wrap!(mincore(addr, len, vec) = nr::MINCORE, syscall3);
wrap!(mlock(addr, len) = nr::MLOCK, syscall2);
wrap!(mlock2(addr, len, flags) = nr::MLOCK2, syscall3);
wrap!(munlock(addr, len) = nr::MUNLOCK, syscall2);
wrap!(mlockall(flags) = nr::MLOCKALL, syscall1);
wrap!(munlockall() = nr::MUNLOCKALL, syscall0);
wrap!(pidfd_open(pid, flags) = nr::PIDFD_OPEN, syscall2);
wrap!(
    process_madvise(pidfd, iovec, vlen, advice, flags) = nr::PROCESS_MADVISE,
    syscall5
);
wrap!(
    mount(source, target, fstype, flags, data) = nr::MOUNT,
    syscall5
);
wrap!(umount2(target, flags) = nr::UMOUNT2, syscall2);

#[inline]
pub fn getpid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETPID) }
}
#[inline]
pub fn gettid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETTID) }
}
#[inline]
pub fn getuid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETUID) }
}
#[inline]
pub fn geteuid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETEUID) }
}
#[inline]
pub fn getgid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETGID) }
}
#[inline]
pub fn getegid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETEGID) }
}
#[inline]
pub fn getppid() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETPPID) }
}
#[inline]
pub fn getpgrp() -> usize {
    // SAFETY: no arguments.
    unsafe { syscall0(nr::GETPGRP) }
}
#[inline]
pub fn setsid() -> SysResult {
    // SAFETY: no arguments.
    decode(unsafe { syscall0(nr::SETSID) })
}

/// `fork()`: returns the child's pid in the parent and 0 in the child, which goes on from
/// here in a copy of the caller's memory, with the calling thread only. The child should end
/// with [`exit_group`]: the other threads' locks (the heap's) may be held forever in its copy.
#[inline]
pub fn fork() -> SysResult {
    // SAFETY: the child runs on its own copy of the memory, stack included, as a fork's
    // child does under any libc; nothing is shared with the caller.
    decode(unsafe { syscall0(nr::FORK) })
}

/// `clone3(args, size)`.
///
/// # Safety
/// `args` must not ask for `CLONE_VM` (nor `CLONE_THREAD`): the child returns from this call
/// like a fork's child, which is sound only on a copy of the caller's memory. (Use
/// [`crate::thread::clone3_on_stack`] for a child that shares the memory.)
#[inline]
pub unsafe fn clone3(args: usize, size: usize) -> SysResult {
    // SAFETY: forwarded to the caller.
    decode(unsafe { syscall2(nr::CLONE3, args, size) })
}

/// `vfork()` whose child at once calls `execve(path, argv, envp)` (prepared beforehand), and
/// `exit_group(127)` if that fails. Returns the child's pid once the child has exec'd or
/// exited (the caller sleeps until then), or the error of vfork itself.
pub fn vfork_exec(path: usize, argv: usize, envp: usize) -> SysResult {
    let ret: usize;
    // SAFETY: the child shares our memory and stack but touches neither: it runs only these
    // instructions, its arguments in registers (a system call keeps all but rax, rcx, r11),
    // and never returns here. The caller sleeps in vfork meanwhile.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov eax, {execve}",
            "syscall",
            "mov edi, 127",
            "mov eax, {exit_group}",
            "syscall",
            "ud2",
            "2:",
            execve = const nr::EXECVE,
            exit_group = const nr::EXIT_GROUP,
            inlateout("rax") nr::VFORK => ret,
            inlateout("rdi") path => _, in("rsi") argv, in("rdx") envp,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    decode(ret)
}

#[inline]
pub fn sched_yield() -> SysResult {
    // SAFETY: no arguments.
    decode(unsafe { syscall0(nr::SCHED_YIELD) })
}

/// Ends the calling thread (the process ends with its last thread).
pub fn exit_thread(code: i32) -> ! {
    // SAFETY: exit does not return.
    unsafe {
        syscall1(nr::EXIT, code as usize);
    }
    loop {
        core::hint::spin_loop();
    }
}

/// Ends the process, every thread.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group does not return.
    unsafe {
        syscall1(nr::EXIT_GROUP, code as usize);
    }
    loop {
        core::hint::spin_loop();
    }
}

// ---- convenience ----

/// An anonymous private mapping with `prot`, at any address.
pub fn mmap_anon(len: usize, prot: usize) -> SysResult {
    mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, usize::MAX, 0)
}

/// The clock's time in nanoseconds (0 if the clock fails).
pub fn clock_ns(clock: usize) -> u64 {
    let mut ts = Timespec::default();
    match clock_gettime(clock, &raw mut ts as usize) {
        Ok(_) => ts.as_nanos(),
        Err(_) => 0,
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    clock_ns(CLOCK_MONOTONIC)
}

/// Sleeps for `ns` nanoseconds (restarting after EINTR).
pub fn sleep_ns(ns: u64) {
    let mut req = Timespec::from_nanos(ns);
    let mut rem = Timespec::default();
    while let Err(Errno::EINTR) = nanosleep(&raw const req as usize, &raw mut rem as usize) {
        req = rem;
    }
}

/// The CPU this thread runs on (getcpu), or `None` if the call fails.
pub fn current_cpu() -> Option<u32> {
    let mut cpu = 0u32;
    getcpu(&raw mut cpu as usize, 0, 0).ok().map(|_| cpu)
}

/// The number of CPUs this thread may run on (sched_getaffinity), at least 1.
pub fn cpu_count() -> usize {
    let mut mask = [0u64; 16];
    match sched_getaffinity(0, core::mem::size_of_val(&mask), mask.as_mut_ptr() as usize) {
        Ok(len) => mask[..len / 8]
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum::<usize>()
            .max(1),
        Err(_) => 1,
    }
}

/// getrusage(RUSAGE_SELF).ru_minflt, or 0.
pub fn minor_faults() -> u64 {
    let mut ru = Rusage::default();
    match getrusage(RUSAGE_SELF, &raw mut ru as usize) {
        Ok(_) => ru.ru_minflt as u64,
        Err(_) => 0,
    }
}

/// FUTEX_WAIT (private) on `word` while it holds `val`, with an optional relative timeout.
pub fn futex_wait(
    word: &core::sync::atomic::AtomicU32,
    val: u32,
    timeout_ns: Option<u64>,
) -> SysResult {
    let ts = timeout_ns.map(Timespec::from_nanos);
    let tsp = ts.as_ref().map_or(0, |t| t as *const Timespec as usize);
    futex(
        word.as_ptr() as usize,
        FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
        val as usize,
        tsp,
        0,
        0,
    )
}

/// FUTEX_WAKE (private) of up to `n` waiters on `word`.
pub fn futex_wake(word: &core::sync::atomic::AtomicU32, n: u32) -> SysResult {
    futex(
        word.as_ptr() as usize,
        FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
        n as usize,
        0,
        0,
        0,
    )
}

/// `setxattr`'s flags: the attribute must not exist yet, or must exist.
pub const XATTR_CREATE: usize = 1;
pub const XATTR_REPLACE: usize = 2;
