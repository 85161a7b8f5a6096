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
    pub const CLOSE: usize = 3;
    pub const FSTAT: usize = 5;
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
    pub const SCHED_YIELD: usize = 24;
    pub const MREMAP: usize = 25;
    pub const MADVISE: usize = 28;
    pub const PAUSE: usize = 34;
    pub const NANOSLEEP: usize = 35;
    pub const GETPID: usize = 39;
    pub const CLONE: usize = 56;
    pub const FORK: usize = 57;
    pub const VFORK: usize = 58;
    pub const EXECVE: usize = 59;
    pub const EXIT: usize = 60;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const UNAME: usize = 63;
    pub const GETCWD: usize = 79;
    pub const CHDIR: usize = 80;
    pub const MKDIR: usize = 83;
    pub const GETRUSAGE: usize = 98;
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
    pub const WAITID: usize = 247;
    pub const TGKILL: usize = 234;
    pub const OPENAT: usize = 257;
    pub const UNLINKAT: usize = 263;
    pub const NEWFSTATAT: usize = 262;
    pub const READLINKAT: usize = 267;
    pub const SET_ROBUST_LIST: usize = 273;
    pub const RT_TGSIGQUEUEINFO: usize = 297;
    pub const PRLIMIT64: usize = 302;
    pub const GETCPU: usize = 309;
    pub const GETRANDOM: usize = 318;
    pub const EXECVEAT: usize = 322;
    pub const RSEQ: usize = 334;
    pub const CLONE3: usize = 435;
}

/// A Linux error number (the positive value; the kernel returns its negation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const ESRCH: Errno = Errno(3);
    pub const EINTR: Errno = Errno(4);
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
    pub const EINVAL: Errno = Errno(22);
    pub const ENOTTY: Errno = Errno(25);
    pub const ESPIPE: Errno = Errno(29);
    pub const ERANGE: Errno = Errno(34);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOSYS: Errno = Errno(38);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const ETIMEDOUT: Errno = Errno(110);

    /// The symbolic name, for messages.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
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
            22 => "EINVAL",
            25 => "ENOTTY",
            29 => "ESPIPE",
            34 => "ERANGE",
            36 => "ENAMETOOLONG",
            38 => "ENOSYS",
            75 => "EOVERFLOW",
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
pub const MAP_SHARED: usize = 0x01;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_POPULATE: usize = 0x8000;
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;
pub const SEEK_CUR: usize = 1;
pub const MADV_NORMAL: usize = 0;
pub const MADV_DONTNEED: usize = 4;
pub const MADV_FREE: usize = 8;
pub const MADV_DONTFORK: usize = 10;
pub const MADV_DOFORK: usize = 11;
pub const MADV_WIPEONFORK: usize = 18;
pub const MADV_KEEPONFORK: usize = 19;
pub const MREMAP_MAYMOVE: usize = 1;

pub const FUTEX_WAIT: usize = 0;
pub const FUTEX_WAKE: usize = 1;
pub const FUTEX_PRIVATE_FLAG: usize = 128;

pub const CLOCK_REALTIME: usize = 0;
pub const CLOCK_MONOTONIC: usize = 1;

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
pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_CREAT: usize = 0o100;
pub const O_DIRECTORY: usize = 0o20_0000;
pub const O_CLOEXEC: usize = 0o200_0000;
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
pub const AT_REMOVEDIR: usize = 0x200;
/// `umount2` flags.
pub const MNT_DETACH: usize = 2;
pub const AT_EMPTY_PATH: usize = 0x1000;
pub const TCGETS: usize = 0x5401;
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
wrap!(openat(dirfd, path, flags, mode) = nr::OPENAT, syscall4);
wrap!(close(fd) = nr::CLOSE, syscall1);
wrap!(getdents64(fd, buf, len) = nr::GETDENTS64, syscall3);
wrap!(mkdir(path, mode) = nr::MKDIR, syscall2);
wrap!(unlinkat(dirfd, path, flags) = nr::UNLINKAT, syscall3);
wrap!(chdir(path) = nr::CHDIR, syscall1);
wrap!(getcwd(buf, len) = nr::GETCWD, syscall2);
wrap!(statfs(path, buf) = nr::STATFS, syscall2);
wrap!(
    mount(source, target, fstype, flags, data) = nr::MOUNT,
    syscall5
);
wrap!(umount2(target, flags) = nr::UMOUNT2, syscall2);
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
