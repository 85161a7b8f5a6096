//! Signals: Linux's x86_64 types (`struct sigaction` as the kernel takes it, `siginfo_t`,
//! `ucontext_t` with its `sigcontext`, `stack_t`), the `rt_sigreturn` trampoline every handler
//! returns through ([`restore_rt`], passed as `sa_restorer` with `SA_RESTORER`, as libcs do),
//! and small helpers to install handlers and change the mask.

use crate::sys::{self, Errno, SysResult};

pub const SIGHUP: usize = 1;
pub const SIGINT: usize = 2;
pub const SIGQUIT: usize = 3;
pub const SIGILL: usize = 4;
pub const SIGTRAP: usize = 5;
pub const SIGABRT: usize = 6;
pub const SIGBUS: usize = 7;
pub const SIGFPE: usize = 8;
pub const SIGKILL: usize = 9;
pub const SIGUSR1: usize = 10;
pub const SIGSEGV: usize = 11;
pub const SIGUSR2: usize = 12;
pub const SIGPIPE: usize = 13;
pub const SIGALRM: usize = 14;
pub const SIGTERM: usize = 15;
pub const SIGCHLD: usize = 17;
pub const SIGCONT: usize = 18;
pub const SIGSTOP: usize = 19;
pub const SIGTSTP: usize = 20;
pub const SIGTTIN: usize = 21;
pub const SIGTTOU: usize = 22;
pub const SIGURG: usize = 23;
pub const SIGWINCH: usize = 28;
/// The first real-time signal as the kernel counts (glibc keeps 32 and 33 for itself).
pub const SIGRTMIN: usize = 32;
pub const SIGRTMAX: usize = 64;

pub const SIG_DFL: usize = 0;
pub const SIG_IGN: usize = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SIG_BLOCK: usize = 0;
pub const SIG_UNBLOCK: usize = 1;
pub const SIG_SETMASK: usize = 2;

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;
pub const ILL_ILLOPN: i32 = 2;
pub const FPE_INTDIV: i32 = 1;

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const MINSIGSTKSZ: usize = 2048;

/// `sizeof(sigset_t)` as the kernel takes it.
pub const SIGSET_SIZE: usize = 8;

/// The bit of signal `sig` in a signal set.
pub const fn sigmask(sig: usize) -> u64 {
    1 << (sig - 1)
}

/// `struct sigaction` as the x86_64 kernel takes it.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SigAction {
    pub handler: usize,
    pub flags: u64,
    pub restorer: usize,
    pub mask: u64,
}

/// `siginfo_t` (128 bytes): the common header, then the fields of the signal's kind, as words.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    _pad: i32,
    pub fields: [u64; 14],
}

impl SigInfo {
    /// A `siginfo_t` to queue (`rt_sigqueueinfo`): code, sender and a value.
    pub fn queued(signo: usize, code: i32, pid: u32, uid: u32, value: u64) -> Self {
        let mut info = Self {
            signo: signo as i32,
            code,
            ..Self::default()
        };
        info.fields[0] = u64::from(pid) | u64::from(uid) << 32;
        info.fields[1] = value;
        info
    }

    /// `si_pid` (kill, tgkill, sigqueue, SIGCHLD).
    pub fn pid(&self) -> u32 {
        self.fields[0] as u32
    }

    /// `si_uid`.
    pub fn uid(&self) -> u32 {
        (self.fields[0] >> 32) as u32
    }

    /// `si_value` (sigqueue).
    pub fn value(&self) -> u64 {
        self.fields[1]
    }

    /// `si_addr` (faults).
    pub fn addr(&self) -> usize {
        self.fields[0] as usize
    }
}

/// `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct StackT {
    pub sp: usize,
    pub flags: i32,
    _pad: i32,
    pub size: usize,
}

impl StackT {
    pub fn new(sp: usize, flags: i32, size: usize) -> Self {
        Self {
            sp,
            flags,
            _pad: 0,
            size,
        }
    }
}

/// Indices of `MContext::gregs` (glibc's `REG_*`).
pub mod reg {
    pub const R8: usize = 0;
    pub const R9: usize = 1;
    pub const R10: usize = 2;
    pub const R11: usize = 3;
    pub const R12: usize = 4;
    pub const R13: usize = 5;
    pub const R14: usize = 6;
    pub const R15: usize = 7;
    pub const RDI: usize = 8;
    pub const RSI: usize = 9;
    pub const RBP: usize = 10;
    pub const RBX: usize = 11;
    pub const RDX: usize = 12;
    pub const RAX: usize = 13;
    pub const RCX: usize = 14;
    pub const RSP: usize = 15;
    pub const RIP: usize = 16;
    pub const EFL: usize = 17;
    /// cs, gs, fs and ss, 16 bits each.
    pub const CSGSFS: usize = 18;
    pub const ERR: usize = 19;
    pub const TRAPNO: usize = 20;
    pub const OLDMASK: usize = 21;
    pub const CR2: usize = 22;
}

/// `struct sigcontext` (glibc's `mcontext_t`): 23 registers, the FPU state's address, 8
/// reserved words.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MContext {
    pub gregs: [u64; 23],
    pub fpstate: u64,
    pub reserved: [u64; 8],
}

/// The kernel's `struct ucontext` on x86_64 (glibc's `ucontext_t` starts the same).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UContext {
    pub flags: u64,
    pub link: u64,
    pub stack: StackT,
    pub mcontext: MContext,
    pub sigmask: u64,
}

/// A handler's signature with `SA_SIGINFO` (without it, the kernel passes the same
/// registers).
pub type Handler = extern "C" fn(i32, *mut SigInfo, *mut UContext);

// The restorer: where every handler returns to; it asks the kernel to restore the interrupted
// context (`rt_sigreturn` never returns here).
core::arch::global_asm!(
    ".globl urt_restore_rt",
    ".type urt_restore_rt, @function",
    "urt_restore_rt:",
    "mov eax, 15",
    "syscall",
    "ud2",
    ".size urt_restore_rt, . - urt_restore_rt",
);

unsafe extern "C" {
    fn urt_restore_rt();
}

/// The address of the `rt_sigreturn` trampoline (`sa_restorer`).
pub fn restore_rt() -> usize {
    urt_restore_rt as *const () as usize
}

/// `rt_sigaction(sig, act, old)` with typed actions.
pub fn sigaction(sig: usize, action: Option<&SigAction>) -> Result<SigAction, Errno> {
    let mut old = SigAction::default();
    sys::rt_sigaction(
        sig,
        action.map_or(0, |a| a as *const SigAction as usize),
        &raw mut old as usize,
        SIGSET_SIZE,
    )?;
    Ok(old)
}

/// Installs `handler` for `sig` with `flags` (plus `SA_RESTORER` and the trampoline) and
/// `mask`; returns the old action.
pub fn set_handler(
    sig: usize,
    handler: Handler,
    flags: u64,
    mask: u64,
) -> Result<SigAction, Errno> {
    let action = SigAction {
        handler: handler as usize,
        flags: flags | SA_RESTORER,
        restorer: restore_rt(),
        mask,
    };
    sigaction(sig, Some(&action))
}

/// Sets `sig`'s handler to `SIG_DFL` or `SIG_IGN` (no flags, empty mask).
pub fn set_disposition(sig: usize, disposition: usize) -> Result<SigAction, Errno> {
    sigaction(
        sig,
        Some(&SigAction {
            handler: disposition,
            ..SigAction::default()
        }),
    )
}

/// `rt_sigprocmask(how, set)`; returns the old mask.
pub fn sigprocmask(how: usize, set: u64) -> Result<u64, Errno> {
    let mut old = 0u64;
    sys::rt_sigprocmask(
        how,
        &raw const set as usize,
        &raw mut old as usize,
        SIGSET_SIZE,
    )?;
    Ok(old)
}

/// The calling thread's mask.
pub fn blocked() -> u64 {
    let mut mask = 0u64;
    let _ = sys::rt_sigprocmask(SIG_BLOCK, 0, &raw mut mask as usize, SIGSET_SIZE);
    mask
}

/// The signals pending for the calling thread (its own and its process's) that it blocks.
pub fn pending() -> Result<u64, Errno> {
    let mut set = 0u64;
    sys::rt_sigpending(&raw mut set as usize, SIGSET_SIZE)?;
    Ok(set)
}

/// `tgkill(getpid(), gettid(), sig)`: a signal to the calling thread.
pub fn raise(sig: usize) -> SysResult {
    sys::tgkill(sys::getpid(), sys::gettid(), sig)
}
