//! The Linux x86_64 system call table: numbers, argument registers (RDI, RSI, RDX, R10, R8,
//! R9) and `-errno` results in RAX, as Linux has them, so that the same static binary runs here
//! and on Linux. Unimplemented calls return `-ENOSYS` and log one line naming the call.
//!
//! Runs in process context with interrupts enabled, on the calling thread's kernel stack; no
//! lock is held on entry.

pub mod errno;
mod files;
mod identity;
pub mod info;
mod io;
mod ipc;
mod policy;
mod poll;
mod process;
mod signal;
mod thread;
mod time;
mod timers;
mod transfer;

use crate::arch::trap::TrapFrame;
use crate::sched;
use errno::{ENOSYS, SysResult};

/// The arguments of a call, in ABI order.
pub struct Args([u64; 6]);

impl Args {
    fn from_frame(frame: &TrapFrame) -> Self {
        Self([
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ])
    }
}

/// `rt_sigreturn`: it sets every register, RAX included, from a signal frame.
const RT_SIGRETURN: u64 = 15;

/// Whether system call `number` restored the registers from a signal frame: then no register
/// holds a result that could be restarted, and only IRETQ brings all of them back (SYSRET
/// clobbers RCX and R11).
pub fn restores_registers(number: u64) -> bool {
    number == RT_SIGRETURN
}

/// Runs the call the frame asks for and leaves its result in RAX.
pub fn dispatch(frame: &mut TrapFrame) {
    let number = frame.rax;
    let a = Args::from_frame(frame).0;
    let result: SysResult = match number {
        0 => io::read(a[0], a[1], a[2]),
        1 => io::write(a[0], a[1], a[2]),
        2 => files::open(a[0], a[1], a[2]),
        3 => io::close(a[0]),
        4 => files::stat(a[0], a[1]),
        5 => files::fstat(a[0], a[1]),
        6 => files::lstat(a[0], a[1]),
        7 => poll::poll(a[0], a[1], a[2]),
        8 => io::lseek(a[0], a[1], a[2]),
        9 => with_mm(|mm| crate::mm::mmap::mmap(mm, a[0], a[1], a[2], a[3], a[4], a[5])),
        10 => with_mm(|mm| crate::mm::mmap::mprotect(mm, a[0], a[1], a[2])),
        11 => with_mm(|mm| crate::mm::mmap::munmap(mm, a[0], a[1])),
        12 => with_mm(|mm| crate::mm::mmap::brk(mm, a[0])),
        13 => signal::rt_sigaction(a[0], a[1], a[2], a[3]),
        14 => signal::rt_sigprocmask(a[0], a[1], a[2], a[3]),
        RT_SIGRETURN => signal::rt_sigreturn(frame),
        16 => io::ioctl(a[0], a[1], a[2]),
        17 => io::pread64(a[0], a[1], a[2], a[3]),
        18 => io::pwrite64(a[0], a[1], a[2], a[3]),
        19 => io::readv(a[0], a[1], a[2]),
        20 => io::writev(a[0], a[1], a[2]),
        21 => files::faccessat2(AT_FDCWD, a[0], a[1], 0),
        22 => ipc::pipe2(a[0], 0),
        23 => poll::select(a[0], a[1], a[2], a[3], a[4]),
        24 => {
            sched::yield_now();
            Ok(0)
        }
        25 => Err(ENOSYS), // mremap: not implemented (callers fall back to mmap + copy)
        26 => with_mm(|mm| crate::mm::mmap::msync(mm, a[0], a[1], a[2])),
        32 => io::dup(a[0]),
        33 => io::dup2(a[0], a[1]),
        28 => with_mm(|mm| crate::mm::mmap::madvise(mm, a[0], a[1], a[2])),
        34 => signal::pause(),
        35 => time::nanosleep(a[0], a[1]),
        36 => timers::getitimer(a[0], a[1]),
        37 => timers::alarm(a[0]),
        38 => timers::setitimer(a[0], a[1], a[2]),
        39 => Ok(u64::from(thread::process().pid)),
        40 => io::sendfile(a[0], a[1], a[2], a[3]),
        41 => ipc::socket(a[0], a[1], a[2]),
        56 => process::clone(frame, a[0], a[1], a[2], a[3], a[4]),
        57 => process::fork(frame),
        58 => process::vfork(frame),
        59 => process::execve(a[0], a[1], a[2]),
        60 => crate::proc::exit_thread(crate::proc::exited_with(a[0] as u32)),
        61 => process::wait4(a[0], a[1], a[2], a[3]),
        62 => signal::kill(a[0], a[1]),
        63 => info::uname(a[0]),
        72 => io::fcntl(a[0], a[1], a[2]),
        74 | 75 => io::fsync(a[0]),
        76 => files::truncate(a[0], a[1]),
        77 => files::ftruncate(a[0], a[1]),
        79 => files::getcwd(a[0], a[1]),
        80 => files::chdir(a[0]),
        81 => files::fchdir(a[0]),
        82 => files::renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
        83 => files::mkdirat(AT_FDCWD, a[0], a[1]),
        84 => files::unlinkat(AT_FDCWD, a[0], AT_REMOVEDIR),
        85 => files::creat(a[0], a[1]),
        86 => files::linkat(AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
        87 => files::unlinkat(AT_FDCWD, a[0], 0),
        88 => files::symlinkat(a[0], AT_FDCWD, a[1]),
        89 => files::readlinkat(AT_FDCWD, a[0], a[1], a[2]),
        90 => files::fchmodat(AT_FDCWD, a[0], a[1], 0),
        91 => files::fchmod(a[0], a[1]),
        95 => files::umask(a[0]),
        96 => time::gettimeofday(a[0]),
        97 => info::getrlimit(a[0], a[1]),
        98 => info::getrusage(a[0] as i64, a[1]),
        99 => files::sysinfo(a[0]),
        100 => time::times(a[0]),
        102 | 104 | 107 | 108 => Ok(0), // getuid, getgid, geteuid, getegid: root
        109 => process::setpgid(a[0], a[1]),
        110 => process::getppid(),
        111 => process::getpgid(0),
        112 => process::setsid(),
        121 => process::getpgid(a[0]),
        124 => process::getsid(a[0]),
        125 => identity::capget(a[0], a[1]),
        126 => identity::capset(a[0], a[1]),
        127 => signal::rt_sigpending(a[0], a[1]),
        128 => signal::rt_sigtimedwait(a[0], a[1], a[2], a[3]),
        129 => signal::rt_sigqueueinfo(a[0], a[1], a[2]),
        130 => signal::rt_sigsuspend(a[0], a[1]),
        131 => signal::sigaltstack(frame.rsp, a[0], a[1]),
        137 => files::statfs(a[0], a[1]),
        138 => files::fstatfs(a[0], a[1]),
        140 => policy::getpriority(a[0], a[1]),
        141 => policy::setpriority(a[0], a[1], a[2]),
        142 => policy::sched_setparam(a[0], a[1]),
        143 => policy::sched_getparam(a[0], a[1]),
        144 => policy::sched_setscheduler(a[0], a[1], a[2]),
        145 => policy::sched_getscheduler(a[0]),
        146 => policy::sched_get_priority_max(a[0]),
        147 => policy::sched_get_priority_min(a[0]),
        148 => policy::sched_rr_get_interval(a[0], a[1]),
        153 => io::vhangup(),
        157 => info::prctl(a[0], a[1], [a[2], a[3], a[4]]),
        158 => thread::arch_prctl(a[0], a[1]),
        165 => files::mount(a[0], a[1], a[2], a[3], a[4]),
        166 => files::umount2(a[0], a[1]),
        169 => info::reboot(a[0], a[1], a[2]),
        186 => Ok(u64::from(sched::current().tid)),
        200 => signal::tkill(a[0], a[1]),
        201 => time::time(a[0]),
        // set_thread_area, get_thread_area: for 32-bit code; Linux answers 64-bit callers
        // ENOSYS (glibc's pthread code asks), and so does this kernel, without a log line.
        205 | 211 => Err(ENOSYS),
        202 => thread::futex(a[0], a[1], a[2], a[3], a[5]),
        203 => thread::sched_setaffinity(a[0], a[1], a[2]),
        204 => thread::sched_getaffinity(a[0], a[1], a[2]),
        217 => files::getdents64(a[0], a[1], a[2]),
        218 => thread::set_tid_address(a[0]),
        219 => signal::restart_syscall(),
        222 => timers::timer_create(a[0], a[1], a[2]),
        223 => timers::timer_settime(a[0], a[1], a[2], a[3]),
        224 => timers::timer_gettime(a[0], a[1]),
        225 => timers::timer_getoverrun(a[0]),
        226 => timers::timer_delete(a[0]),
        228 => time::clock_gettime(a[0], a[1]),
        229 => time::clock_getres(a[0], a[1]),
        230 => time::clock_nanosleep(a[0], a[1], a[2], a[3]),
        231 => crate::proc::exit_group(a[0] as u32),
        234 => signal::tgkill(a[0], a[1], a[2]),
        247 => process::waitid(a[0], a[1], a[2], a[3], a[4]),
        257 => files::openat(a[0], a[1], a[2], a[3]),
        258 => files::mkdirat(a[0], a[1], a[2]),
        262 => files::newfstatat(a[0], a[1], a[2], a[3]),
        263 => files::unlinkat(a[0], a[1], a[2]),
        264 => files::renameat2(a[0], a[1], a[2], a[3], 0),
        265 => files::linkat(a[0], a[1], a[2], a[3], a[4]),
        266 => files::symlinkat(a[0], a[1], a[2]),
        267 => files::readlinkat(a[0], a[1], a[2], a[3]),
        268 => files::fchmodat(a[0], a[1], a[2], 0),
        269 => files::faccessat2(a[0], a[1], a[2], 0),
        270 => poll::pselect6(a[0], a[1], a[2], a[3], a[4], a[5]),
        271 => poll::ppoll(a[0], a[1], a[2], a[3], a[4]),
        273 => thread::set_robust_list(a[0], a[1]),
        274 => thread::get_robust_list(a[0], a[1], a[2]),
        284 => ipc::eventfd2(a[0], 0),
        285 => io::fallocate(a[0], a[1], a[2], a[3]),
        290 => ipc::eventfd2(a[0], a[1]),
        292 => io::dup3(a[0], a[1], a[2]),
        293 => ipc::pipe2(a[0], a[1]),
        295 => io::preadv(a[0], a[1], a[2], a[3]),
        296 => io::pwritev(a[0], a[1], a[2], a[3]),
        297 => signal::rt_tgsigqueueinfo(a[0], a[1], a[2], a[3]),
        302 => info::prlimit64(a[0], a[1], a[2], a[3]),
        309 => thread::getcpu(a[0], a[1]),
        316 => files::renameat2(a[0], a[1], a[2], a[3], a[4]),
        318 => info::getrandom(a[0], a[1], a[2]),
        319 => files::memfd_create(a[0], a[1]),
        322 => process::execveat(a[0], a[1], a[2], a[3], a[4]),
        332 => files::statx(a[0], a[1], a[2], a[3], a[4]),
        334 => Err(ENOSYS), // rseq: not implemented (libcs fall back)
        435 => process::clone3(frame, a[0], a[1]),
        436 => io::close_range(a[0], a[1], a[2]),
        439 => files::faccessat2(a[0], a[1], a[2], a[3]),
        452 => files::fchmodat(a[0], a[1], a[2], a[3]),
        _ => {
            log::warn!(
                "{}[{}]: unimplemented system call {number} ({}); returning -ENOSYS",
                sched::current().name(),
                sched::current().tid,
                name(number)
            );
            Err(ENOSYS)
        }
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(errno) => (-i64::from(errno.0)) as u64,
    };
}

/// `dirfd` meaning the working directory, for the calls without a directory argument.
const AT_FDCWD: u64 = -100i64 as u64;
/// `unlinkat`'s flag for `rmdir`.
const AT_REMOVEDIR: u64 = 0x200;

/// Runs `f` with the calling thread's address space.
fn with_mm(f: impl FnOnce(&crate::mm::addrspace::Mm) -> SysResult) -> SysResult {
    f(thread::mm())
}

/// The name of a Linux x86_64 system call, for the log line of an unimplemented one.
fn name(number: u64) -> &'static str {
    match number {
        2 => "open",
        4 => "stat",
        6 => "lstat",
        21 => "access",
        27 => "mincore",
        32 => "dup",
        33 => "dup2",
        37 => "alarm",
        38 => "setitimer",
        41 => "socket",
        72 => "fcntl",
        79 => "getcwd",
        80 => "chdir",
        99 => "sysinfo",
        100 => "times",
        257 => "openat",
        _ => "unknown",
    }
}
