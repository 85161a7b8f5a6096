//! Signals: actions, masks, delivery to handlers with siginfo and ucontext, `rt_sigreturn`
//! (every register back, SSE included), SA_RESTART and interrupted sleeps, the alternate
//! stack, faults caught by handlers, real-time queues, signals between threads, and the error
//! cases. Each test puts the mask and the actions it changed back when it ends
//! ([`Saved`]).
//!
//! Handlers only touch atomics and make raw system calls: they may interrupt anything,
//! the allocator included.

use alloc::vec::Vec;
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use urt::ktap::TestResult;
use urt::signal::{
    self as sig, Handler, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SA_SIGINFO, SIG_BLOCK,
    SIG_DFL, SIG_IGN, SIG_SETMASK, SIG_UNBLOCK, SIGKILL, SIGSTOP, SIGUSR1, SIGUSR2, SigAction,
    SigInfo, StackT, UContext, reg, sigmask,
};
use urt::sys::{self, Errno, Timespec};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{KERNEL_ADDR, Mapping, bad_addrs, ms_since};

/// A thread id no thread has (the same one `sched_getaffinity_errors` uses).
const NO_SUCH_ID: usize = 0x3fff_fff0;

/// The mask and the actions a test changed, put back when it ends (even when a check fails).
pub(crate) struct Saved {
    mask: u64,
    actions: Vec<(usize, SigAction)>,
}

impl Saved {
    pub(crate) fn new() -> Self {
        Self {
            mask: sig::blocked(),
            actions: Vec::new(),
        }
    }

    fn keep(&mut self, signo: usize, old: SigAction) {
        if !self.actions.iter().any(|(s, _)| *s == signo) {
            self.actions.push((signo, old));
        }
    }

    /// Installs `handler` for `signo`.
    pub(crate) fn handle(
        &mut self,
        signo: usize,
        handler: Handler,
        flags: u64,
        mask: u64,
    ) -> TestResult {
        let old = check_ok!(sig::set_handler(signo, handler, flags, mask));
        self.keep(signo, old);
        Ok(())
    }

    /// Sets `signo` to `SIG_DFL` or `SIG_IGN`.
    pub(crate) fn dispose(&mut self, signo: usize, disposition: usize) -> TestResult {
        let old = check_ok!(sig::set_disposition(signo, disposition));
        self.keep(signo, old);
        Ok(())
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        for (signo, action) in self.actions.drain(..).rev() {
            let _ = sig::sigaction(signo, Some(&action));
        }
        let _ = sig::sigprocmask(SIG_SETMASK, self.mask);
    }
}

/// What the recording handler saw.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST_SIGNO: AtomicI32 = AtomicI32::new(0);
static LAST_CODE: AtomicI32 = AtomicI32::new(0);
static LAST_PID: AtomicU32 = AtomicU32::new(0);
static LAST_UID: AtomicU32 = AtomicU32::new(0);
static LAST_VALUE: AtomicU64 = AtomicU64::new(0);
static LAST_ADDR: AtomicUsize = AtomicUsize::new(0);
static LAST_TID: AtomicUsize = AtomicUsize::new(0);
/// The mask in force while the handler ran.
static MASK_INSIDE: AtomicU64 = AtomicU64::new(0);

fn reset() {
    COUNT.store(0, Ordering::SeqCst);
    for cell in [&LAST_SIGNO, &LAST_CODE] {
        cell.store(0, Ordering::SeqCst);
    }
    LAST_PID.store(0, Ordering::SeqCst);
    LAST_UID.store(0, Ordering::SeqCst);
    LAST_VALUE.store(0, Ordering::SeqCst);
    LAST_ADDR.store(0, Ordering::SeqCst);
    LAST_TID.store(0, Ordering::SeqCst);
    MASK_INSIDE.store(0, Ordering::SeqCst);
}

/// Records the signal, its siginfo, the thread and the mask in force, and counts.
extern "C" fn record(signo: i32, info: *mut SigInfo, _uc: *mut UContext) {
    // SAFETY: the kernel passes a valid siginfo (on the signal frame) in RSI.
    let info = unsafe { &*info };
    LAST_SIGNO.store(signo, Ordering::SeqCst);
    LAST_CODE.store(info.code, Ordering::SeqCst);
    LAST_PID.store(info.pid(), Ordering::SeqCst);
    LAST_UID.store(info.uid(), Ordering::SeqCst);
    LAST_VALUE.store(info.value(), Ordering::SeqCst);
    LAST_ADDR.store(info.addr(), Ordering::SeqCst);
    LAST_TID.store(sys::gettid(), Ordering::SeqCst);
    MASK_INSIDE.store(sig::blocked(), Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// The main thread's id, for threads that signal it.
fn main_tid() -> usize {
    sys::gettid()
}

/// Sends `signo` to thread `tid` from a new thread after `delay_ms`; the thread's result says
/// whether tgkill succeeded.
fn signal_later(tid: usize, signo: usize, delay_ms: u64) -> urt::thread::JoinHandle<bool> {
    urt::thread::spawn(move || {
        sys::sleep_ns(delay_ms * 1_000_000);
        sys::tgkill(sys::getpid(), tid, signo).is_ok()
    })
}

pub fn handler_gets_siginfo() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO, 0)?;
    reset();
    check_eq!(check_ok!(sig::raise(SIGUSR1)), 0);
    check_eq!(
        COUNT.load(Ordering::SeqCst),
        1,
        "the handler ran before tgkill returned"
    );
    check_eq!(LAST_SIGNO.load(Ordering::SeqCst), SIGUSR1 as i32);
    check_eq!(
        LAST_CODE.load(Ordering::SeqCst),
        sig::SI_TKILL,
        "si_code of tgkill"
    );
    check_eq!(LAST_PID.load(Ordering::SeqCst) as usize, sys::getpid());
    check_eq!(LAST_UID.load(Ordering::SeqCst) as usize, sys::getuid());
    check_eq!(LAST_TID.load(Ordering::SeqCst), sys::gettid());

    check_ok!(sys::kill(sys::getpid(), SIGUSR1));
    check_eq!(COUNT.load(Ordering::SeqCst), 2);
    check_eq!(
        LAST_CODE.load(Ordering::SeqCst),
        sig::SI_USER,
        "si_code of kill"
    );
    check_eq!(LAST_PID.load(Ordering::SeqCst) as usize, sys::getpid());

    check_ok!(sys::tkill(sys::gettid(), SIGUSR1));
    check_eq!(COUNT.load(Ordering::SeqCst), 3);
    check_eq!(
        LAST_CODE.load(Ordering::SeqCst),
        sig::SI_TKILL,
        "si_code of tkill"
    );

    let info = SigInfo::queued(SIGUSR1, sig::SI_QUEUE, 4321, 0, 0xfeed_beef);
    check_ok!(sys::rt_sigqueueinfo(
        sys::getpid(),
        SIGUSR1,
        &raw const info as usize
    ));
    check_eq!(COUNT.load(Ordering::SeqCst), 4);
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::SI_QUEUE);
    check_eq!(
        LAST_PID.load(Ordering::SeqCst),
        4321,
        "sigqueue's si_pid is the caller's"
    );
    check_eq!(LAST_VALUE.load(Ordering::SeqCst), 0xfeed_beef);
    Ok(())
}

/// What the probe handler (below) saw at its first instruction: RSP, RDI, RSI, RDX, RAX.
static PROBE: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
/// What the inspecting handler copied from its ucontext.
static SEEN_GREGS: [AtomicU64; 23] = [const { AtomicU64::new(0) }; 23];
static SEEN_FPSTATE: AtomicU64 = AtomicU64::new(0);
static SEEN_UC_MASK: AtomicU64 = AtomicU64::new(0);
static SEEN_UC_FLAGS: AtomicU64 = AtomicU64::new(0);

// A handler in assembly: it records the registers the kernel entered it with, then returns
// through the restorer.
global_asm!(
    ".globl usertests_probe_handler",
    "usertests_probe_handler:",
    "mov [rip + {probe}], rsp",
    "mov [rip + {probe} + 8], rdi",
    "mov [rip + {probe} + 16], rsi",
    "mov [rip + {probe} + 24], rdx",
    "mov [rip + {probe} + 32], rax",
    "ret",
    probe = sym PROBE,
);

unsafe extern "C" {
    fn usertests_probe_handler();
}

/// Copies the interrupted registers from the ucontext.
extern "C" fn inspect(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
    // SAFETY: the kernel passes a valid ucontext (on the signal frame) in RDX.
    let uc = unsafe { &*uc };
    for (cell, value) in SEEN_GREGS.iter().zip(uc.mcontext.gregs) {
        cell.store(value, Ordering::SeqCst);
    }
    SEEN_FPSTATE.store(uc.mcontext.fpstate, Ordering::SeqCst);
    SEEN_UC_MASK.store(uc.sigmask, Ordering::SeqCst);
    SEEN_UC_FLAGS.store(uc.flags, Ordering::SeqCst);
    record(signo, info, core::ptr::null_mut());
}

/// [`inspect`], then skips the two-byte instruction that faulted (`ud2`, `div`, a two-byte load
/// or store).
extern "C" fn inspect_and_skip(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
    inspect(signo, info, uc);
    // SAFETY: as in `inspect`; the handler owns the ucontext until it returns.
    unsafe { (*uc).mcontext.gregs[reg::RIP] += 2 };
}

pub fn handler_entry_registers_and_alignment() -> TestResult {
    let mut saved = Saved::new();
    let old = check_ok!(sig::sigaction(
        SIGUSR1,
        Some(&SigAction {
            handler: usertests_probe_handler as *const () as usize,
            flags: SA_SIGINFO | sig::SA_RESTORER,
            restorer: sig::restore_rt(),
            mask: 0,
        })
    ));
    saved.keep(SIGUSR1, old);
    check_ok!(sig::raise(SIGUSR1));
    let [rsp, rdi, rsi, rdx, rax] = PROBE.each_ref().map(|c| c.load(Ordering::SeqCst) as usize);
    check_eq!((rsp + 8) % 16, 0, "RSP at the handler's entry {rsp:#x}");
    check_eq!(rdi, SIGUSR1, "RDI: the signal");
    check_eq!(rax, 0, "RAX at the handler's entry");
    // RSI = &siginfo and RDX = &ucontext, both on the frame just above the return address.
    check!(
        rsi > rsp && rsi - rsp < 4096,
        "RSI {rsi:#x} far from RSP {rsp:#x}"
    );
    check!(
        rdx > rsp && rdx - rsp < 4096,
        "RDX {rdx:#x} far from RSP {rsp:#x}"
    );
    Ok(())
}

pub fn ucontext_describes_the_fault() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGILL, inspect_and_skip, SA_SIGINFO, sigmask(SIGUSR2))?;
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(sig::SIGHUP)));
    let before = sig::blocked();
    reset();
    let here: usize;
    let sp: usize;
    // SAFETY: ud2 raises SIGILL; the handler skips it (2 bytes) and execution goes on.
    unsafe {
        asm!(
            "mov r12, 0x1212",
            "mov r13, 0x1313",
            "lea {here}, [rip + 2f]",
            "mov {sp}, rsp",
            "2: ud2",
            here = out(reg) here,
            sp = out(reg) sp,
            out("r12") _,
            out("r13") _,
        );
    }
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "the SIGILL handler ran");
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::ILL_ILLOPN);
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), here, "si_addr: the ud2");
    let g = |i: usize| SEEN_GREGS[i].load(Ordering::SeqCst) as usize;
    check_eq!(g(reg::RIP), here, "uc_mcontext RIP");
    check_eq!(g(reg::RSP), sp, "uc_mcontext RSP");
    check_eq!((g(reg::R12), g(reg::R13)), (0x1212, 0x1313));
    check_eq!(g(reg::TRAPNO), 6, "trapno: #UD");
    check_eq!(g(reg::OLDMASK) as u64, before, "oldmask: the mask before");
    check_eq!(SEEN_UC_MASK.load(Ordering::SeqCst), before, "uc_sigmask");
    check_eq!(g(reg::CSGSFS) & 3, 3, "CS is a user selector");
    check_eq!(
        g(reg::EFL) & (1 << 9),
        1 << 9,
        "interrupts on in the saved RFLAGS"
    );
    let fpstate = SEEN_FPSTATE.load(Ordering::SeqCst);
    check!(fpstate != 0 && fpstate % 64 == 0, "fpstate {fpstate:#x}");
    // Inside: the mask before, the handler's sa_mask and the signal itself.
    check_eq!(
        MASK_INSIDE.load(Ordering::SeqCst),
        before | sigmask(SIGUSR2) | sigmask(sig::SIGILL)
    );
    check_eq!(sig::blocked(), before, "rt_sigreturn restored the mask");
    urt::diag!("uc_flags {:#x}", SEEN_UC_FLAGS.load(Ordering::SeqCst));
    Ok(())
}

// Loads every general register (but RSP) and xmm0-15 from `input`, sets CF, executes ud2
// (SIGILL: the handler below changes RBX and R15 in the ucontext and skips the ud2), then
// stores every register, RFLAGS and xmm0-15 to `output`. Layout of both (u64 words): RAX, RBX,
// RCX, RDX, RSI, RDI, RBP, R8-R15 (0-14), RFLAGS (15, output only), xmm0-15 (16-47).
global_asm!(
    ".globl usertests_regs_roundtrip",
    "usertests_regs_roundtrip:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "push rsi",
    "movdqu xmm0, [rdi + 128]",
    "movdqu xmm1, [rdi + 144]",
    "movdqu xmm2, [rdi + 160]",
    "movdqu xmm3, [rdi + 176]",
    "movdqu xmm4, [rdi + 192]",
    "movdqu xmm5, [rdi + 208]",
    "movdqu xmm6, [rdi + 224]",
    "movdqu xmm7, [rdi + 240]",
    "movdqu xmm8, [rdi + 256]",
    "movdqu xmm9, [rdi + 272]",
    "movdqu xmm10, [rdi + 288]",
    "movdqu xmm11, [rdi + 304]",
    "movdqu xmm12, [rdi + 320]",
    "movdqu xmm13, [rdi + 336]",
    "movdqu xmm14, [rdi + 352]",
    "movdqu xmm15, [rdi + 368]",
    "mov rax, [rdi]",
    "mov rbx, [rdi + 8]",
    "mov rcx, [rdi + 16]",
    "mov rdx, [rdi + 24]",
    "mov rsi, [rdi + 32]",
    "mov rbp, [rdi + 48]",
    "mov r8, [rdi + 56]",
    "mov r9, [rdi + 64]",
    "mov r10, [rdi + 72]",
    "mov r11, [rdi + 80]",
    "mov r12, [rdi + 88]",
    "mov r13, [rdi + 96]",
    "mov r14, [rdi + 104]",
    "mov r15, [rdi + 112]",
    "mov rdi, [rdi + 40]",
    "stc",
    "ud2",
    "pushfq",
    "push rdi",
    "mov rdi, [rsp + 16]",
    "mov [rdi], rax",
    "mov [rdi + 8], rbx",
    "mov [rdi + 16], rcx",
    "mov [rdi + 24], rdx",
    "mov [rdi + 32], rsi",
    "pop rax",
    "mov [rdi + 40], rax",
    "mov [rdi + 48], rbp",
    "mov [rdi + 56], r8",
    "mov [rdi + 64], r9",
    "mov [rdi + 72], r10",
    "mov [rdi + 80], r11",
    "mov [rdi + 88], r12",
    "mov [rdi + 96], r13",
    "mov [rdi + 104], r14",
    "mov [rdi + 112], r15",
    "pop rax",
    "mov [rdi + 120], rax",
    "movdqu [rdi + 128], xmm0",
    "movdqu [rdi + 144], xmm1",
    "movdqu [rdi + 160], xmm2",
    "movdqu [rdi + 176], xmm3",
    "movdqu [rdi + 192], xmm4",
    "movdqu [rdi + 208], xmm5",
    "movdqu [rdi + 224], xmm6",
    "movdqu [rdi + 240], xmm7",
    "movdqu [rdi + 256], xmm8",
    "movdqu [rdi + 272], xmm9",
    "movdqu [rdi + 288], xmm10",
    "movdqu [rdi + 304], xmm11",
    "movdqu [rdi + 320], xmm12",
    "movdqu [rdi + 336], xmm13",
    "movdqu [rdi + 352], xmm14",
    "movdqu [rdi + 368], xmm15",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

unsafe extern "C" {
    fn usertests_regs_roundtrip(input: *const u64, output: *mut u64);
}

/// Clobbers every xmm register and the caller-saved general registers, changes RBX and R15 in
/// the ucontext, and skips the ud2.
extern "C" fn clobber_and_skip(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
    // SAFETY: only xmm registers change, which the (soft-float) compiler never uses.
    unsafe {
        asm!(
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm2, xmm2",
            "pcmpeqd xmm3, xmm3", "pcmpeqd xmm4, xmm4", "pcmpeqd xmm5, xmm5",
            "pcmpeqd xmm6, xmm6", "pcmpeqd xmm7, xmm7", "pcmpeqd xmm8, xmm8",
            "pcmpeqd xmm9, xmm9", "pcmpeqd xmm10, xmm10", "pcmpeqd xmm11, xmm11",
            "pcmpeqd xmm12, xmm12", "pcmpeqd xmm13, xmm13", "pcmpeqd xmm14, xmm14",
            "pcmpeqd xmm15, xmm15",
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack, nomem),
        );
    }
    // SAFETY: the kernel passes a valid ucontext in RDX.
    let uc = unsafe { &mut *uc };
    uc.mcontext.gregs[reg::RBX] ^= 0xff;
    uc.mcontext.gregs[reg::R15] ^= 0xff00;
    uc.mcontext.gregs[reg::RIP] += 2;
    record(signo, info, core::ptr::null_mut());
}

pub fn sigreturn_restores_every_register() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGILL, clobber_and_skip, SA_SIGINFO, 0)?;
    reset();
    let mut input = [0u64; 48];
    for (i, word) in input.iter_mut().enumerate() {
        *word = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1) ^ 0x5a00_0000_0000_00a5;
    }
    let mut output = [0u64; 48];
    // SAFETY: reads 48 words of `input`, writes 48 of `output`; the SIGILL it raises is
    // handled and skipped; callee-saved registers are saved and restored by the routine.
    unsafe { usertests_regs_roundtrip(input.as_ptr(), output.as_mut_ptr()) };
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "the SIGILL handler ran");
    let mut expected = input;
    expected[1] ^= 0xff; // RBX, changed in the ucontext
    expected[14] ^= 0xff00; // R15, likewise
    const NAMES: [&str; 15] = [
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
        "r14", "r15",
    ];
    for (i, name) in NAMES.iter().enumerate() {
        check_eq!(output[i], expected[i], "{name} after rt_sigreturn");
    }
    check_eq!(output[15] & 1, 1, "CF after rt_sigreturn");
    check_eq!(output[15] & (1 << 10), 0, "DF after rt_sigreturn");
    for x in 0..16 {
        let at = 16 + 2 * x;
        check_eq!(
            (output[at], output[at + 1]),
            (input[at], input[at + 1]),
            "xmm{x} after rt_sigreturn"
        );
    }
    Ok(())
}

pub fn handler_mask_nodefer_and_nesting() -> TestResult {
    static DEPTH: AtomicUsize = AtomicUsize::new(0);
    static MAX_DEPTH: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn reraise(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
        let depth = DEPTH.fetch_add(1, Ordering::SeqCst) + 1;
        MAX_DEPTH.fetch_max(depth, Ordering::SeqCst);
        if COUNT.load(Ordering::SeqCst) == 0 {
            record(signo, info, uc);
            let _ = sig::raise(signo as usize);
        } else {
            COUNT.fetch_add(1, Ordering::SeqCst);
        }
        DEPTH.fetch_sub(1, Ordering::SeqCst);
    }
    let mut saved = Saved::new();
    let before = sig::blocked();
    for (flags, inside, max_depth) in [
        (0, sigmask(SIGUSR1) | sigmask(SIGUSR2), 1),
        (SA_NODEFER, sigmask(SIGUSR2), 2),
    ] {
        saved.handle(SIGUSR1, reraise, SA_SIGINFO | flags, sigmask(SIGUSR2))?;
        reset();
        MAX_DEPTH.store(0, Ordering::SeqCst);
        check_ok!(sig::raise(SIGUSR1));
        let what = if flags == 0 { "default" } else { "SA_NODEFER" };
        check_eq!(
            COUNT.load(Ordering::SeqCst),
            2,
            "{what}: the raise inside ran too"
        );
        check_eq!(
            MASK_INSIDE.load(Ordering::SeqCst),
            before | inside,
            "{what}: the mask inside the handler"
        );
        check_eq!(
            MAX_DEPTH.load(Ordering::SeqCst),
            max_depth,
            "{what}: nesting"
        );
        check_eq!(sig::blocked(), before, "{what}: the mask after");
    }
    Ok(())
}

pub fn sa_resethand_runs_once() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO | SA_RESETHAND, 0)?;
    reset();
    check_ok!(sig::raise(SIGUSR1));
    check_eq!(COUNT.load(Ordering::SeqCst), 1);
    let now = check_ok!(sig::sigaction(SIGUSR1, None));
    check_eq!(now.handler, SIG_DFL, "SA_RESETHAND: back to SIG_DFL");
    Ok(())
}

pub fn blocked_signals_wait_until_unblocked() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO, 0)?;
    let before = check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    reset();
    check_ok!(sig::raise(SIGUSR1));
    check_ok!(sig::raise(SIGUSR1));
    check_eq!(COUNT.load(Ordering::SeqCst), 0, "delivered while blocked");
    check_eq!(
        check_ok!(sig::pending()) & sigmask(SIGUSR1),
        sigmask(SIGUSR1)
    );
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    check_eq!(
        COUNT.load(Ordering::SeqCst),
        1,
        "a standard signal is pending once, and delivered as soon as it is unblocked"
    );
    check_eq!(check_ok!(sig::pending()), 0);
    check_eq!(sig::blocked(), before & !sigmask(SIGUSR1));
    Ok(())
}

pub fn ignoring_a_signal_discards_it() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO, 0)?;
    check_ok!(sig::sigprocmask(
        SIG_BLOCK,
        sigmask(SIGUSR1) | sigmask(SIGUSR2)
    ));
    reset();
    check_ok!(sig::raise(SIGUSR1));
    check_eq!(
        check_ok!(sig::pending()) & sigmask(SIGUSR1),
        sigmask(SIGUSR1)
    );
    saved.dispose(SIGUSR1, SIG_IGN)?;
    check_eq!(
        check_ok!(sig::pending()) & sigmask(SIGUSR1),
        0,
        "SIG_IGN discards it"
    );
    saved.handle(SIGUSR1, record, SA_SIGINFO, 0)?;
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    check_eq!(
        COUNT.load(Ordering::SeqCst),
        0,
        "the discarded signal was delivered"
    );
    // An ignored signal sent while unblocked is dropped at once; while blocked it stays
    // pending (the action may change before it is unblocked).
    saved.dispose(SIGUSR1, SIG_IGN)?;
    check_ok!(sig::raise(SIGUSR1));
    saved.dispose(SIGUSR2, SIG_IGN)?;
    check_ok!(sig::raise(SIGUSR2));
    check_eq!(check_ok!(sig::pending()), sigmask(SIGUSR2));
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR2)));
    check_eq!(check_ok!(sig::pending()), 0);
    Ok(())
}

pub fn default_ignored_signals_do_nothing() -> TestResult {
    let mut saved = Saved::new();
    for signo in [sig::SIGCHLD, sig::SIGURG, sig::SIGWINCH, sig::SIGCONT] {
        saved.dispose(signo, SIG_DFL)?;
        check_ok!(sig::raise(signo));
        check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(signo)));
        check_ok!(sig::raise(signo));
        check_eq!(
            check_ok!(sig::pending()),
            sigmask(signo),
            "blocked signal {signo} is pending"
        );
        check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(signo)));
        check_eq!(
            check_ok!(sig::pending()),
            0,
            "signal {signo} taken and ignored"
        );
    }
    Ok(())
}

pub fn sigsuspend_returns_eintr_after_the_handler() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO | SA_RESTART, 0)?;
    let before = check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    let blocked = before | sigmask(SIGUSR1);
    // Pending before the call: taken at once.
    reset();
    check_ok!(sig::raise(SIGUSR1));
    let wait_mask = sigmask(SIGUSR2);
    check_err!(
        sys::rt_sigsuspend(&raw const wait_mask as usize, 8),
        Errno::EINTR
    );
    check_eq!(COUNT.load(Ordering::SeqCst), 1);
    check_eq!(
        MASK_INSIDE.load(Ordering::SeqCst),
        wait_mask | sigmask(SIGUSR1),
        "the handler runs with the temporary mask"
    );
    check_eq!(sig::blocked(), blocked, "the mask is back after sigsuspend");
    // Sent by another thread while the caller sleeps.
    reset();
    let sender = signal_later(main_tid(), SIGUSR1, 20);
    check_err!(
        sys::rt_sigsuspend(&raw const wait_mask as usize, 8),
        Errno::EINTR
    );
    check!(sender.join(), "tgkill failed");
    check_eq!(COUNT.load(Ordering::SeqCst), 1);
    check_eq!(sig::blocked(), blocked);
    // pause, likewise.
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    let sender = signal_later(main_tid(), SIGUSR1, 20);
    check_err!(sys::pause(), Errno::EINTR);
    check!(sender.join(), "tgkill failed");
    check_eq!(COUNT.load(Ordering::SeqCst), 2);
    check_err!(
        sys::rt_sigsuspend(&raw const wait_mask as usize, 4),
        Errno::EINVAL
    );
    for (what, addr) in bad_addrs() {
        let r = sys::rt_sigsuspend(addr, 8);
        check!(r == Err(Errno::EFAULT), "rt_sigsuspend({what}): {r:?}");
    }
    Ok(())
}

pub fn sigtimedwait_takes_signals_and_times_out() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO, 0)?;
    saved.handle(SIGUSR2, record, SA_SIGINFO, 0)?;
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR2)));
    reset();
    let set = sigmask(SIGUSR1);
    let s = &raw const set as usize;
    let mut info = SigInfo::default();
    let i = &raw mut info as usize;
    check_ok!(sig::raise(SIGUSR1));
    check_eq!(check_ok!(sys::rt_sigtimedwait(s, i, 0, 8)), SIGUSR1);
    check_eq!(
        (info.signo, info.code, info.pid() as usize),
        (SIGUSR1 as i32, sig::SI_TKILL, sys::getpid())
    );
    check_eq!(
        COUNT.load(Ordering::SeqCst),
        0,
        "a handler ran for the awaited signal"
    );
    check_eq!(check_ok!(sig::pending()), 0);

    let zero = Timespec::default();
    check_err!(
        sys::rt_sigtimedwait(s, i, &raw const zero as usize, 8),
        Errno::EAGAIN
    );
    let short = Timespec::from_nanos(20_000_000);
    let started = sys::monotonic_ns();
    check_err!(
        sys::rt_sigtimedwait(s, i, &raw const short as usize, 8),
        Errno::EAGAIN
    );
    let ms = ms_since(started);
    check!(ms >= 20, "timed out after {ms} ms");

    // Another thread sends the awaited signal while the caller sleeps.
    let sender = signal_later(main_tid(), SIGUSR1, 20);
    check_eq!(check_ok!(sys::rt_sigtimedwait(s, 0, 0, 8)), SIGUSR1);
    check!(sender.join(), "tgkill failed");
    // A signal outside the set, with a handler, interrupts the wait.
    let sender = signal_later(main_tid(), SIGUSR2, 20);
    check_err!(sys::rt_sigtimedwait(s, i, 0, 8), Errno::EINTR);
    check!(sender.join(), "tgkill failed");
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "SIGUSR2's handler");

    check_err!(
        sys::rt_sigtimedwait(s, i, &raw const zero as usize, 4),
        Errno::EINVAL
    );
    let bad = Timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000_000,
    };
    check_err!(
        sys::rt_sigtimedwait(s, i, &raw const bad as usize, 8),
        Errno::EINVAL
    );
    for (what, addr) in bad_addrs() {
        let r = sys::rt_sigtimedwait(addr, i, &raw const zero as usize, 8);
        check!(
            r == Err(Errno::EFAULT),
            "rt_sigtimedwait(set = {what}): {r:?}"
        );
    }
    Ok(())
}

static ALT_LOCAL: AtomicUsize = AtomicUsize::new(0);
static ALT_FLAGS: AtomicI32 = AtomicI32::new(-1);
static ALT_CHANGE: AtomicI32 = AtomicI32::new(0);

/// Records where its stack is, what sigaltstack says inside, and whether it may change it.
extern "C" fn on_alt_stack(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
    let local = 0u8;
    ALT_LOCAL.store(
        core::hint::black_box(&local) as *const u8 as usize,
        Ordering::SeqCst,
    );
    let mut old = StackT::default();
    let _ = sys::sigaltstack(0, &raw mut old as usize);
    ALT_FLAGS.store(old.flags, Ordering::SeqCst);
    let other = StackT::new(old.sp, 0, old.size);
    let result = sys::sigaltstack(&raw const other as usize, 0);
    ALT_CHANGE.store(result.err().map_or(0, |e| e.0), Ordering::SeqCst);
    record(signo, info, uc);
}

pub fn sigaltstack_handler_runs_on_the_alternate_stack() -> TestResult {
    let mut saved = Saved::new();
    let stack = check_ok!(Mapping::rw(16));
    let ss = StackT::new(stack.addr, 0, stack.len);
    check_ok!(sys::sigaltstack(&raw const ss as usize, 0));
    let inside = |addr: usize| addr > stack.addr && addr <= stack.addr + stack.len;
    let result = (|| -> TestResult {
        saved.handle(SIGUSR1, on_alt_stack, SA_SIGINFO | SA_ONSTACK, 0)?;
        reset();
        check_ok!(sig::raise(SIGUSR1));
        check_eq!(COUNT.load(Ordering::SeqCst), 1);
        let local = ALT_LOCAL.load(Ordering::SeqCst);
        check!(
            inside(local),
            "SA_ONSTACK: a local at {local:#x}, the stack at {:#x}",
            stack.addr
        );
        check_eq!(
            ALT_FLAGS.load(Ordering::SeqCst),
            sig::SS_ONSTACK,
            "sigaltstack inside"
        );
        check_eq!(
            ALT_CHANGE.load(Ordering::SeqCst),
            Errno::EPERM.0,
            "changing it inside"
        );
        let mut old = StackT::default();
        check_ok!(sys::sigaltstack(0, &raw mut old as usize));
        check_eq!((old.sp, old.flags, old.size), (stack.addr, 0, stack.len));

        saved.handle(SIGUSR1, on_alt_stack, SA_SIGINFO, 0)?;
        check_ok!(sig::raise(SIGUSR1));
        let local = ALT_LOCAL.load(Ordering::SeqCst);
        check!(
            !inside(local),
            "without SA_ONSTACK: a local at {local:#x} on the alternate stack"
        );
        check_eq!(
            ALT_FLAGS.load(Ordering::SeqCst),
            0,
            "sigaltstack inside, off the stack"
        );
        Ok(())
    })();
    let off = StackT::new(0, sig::SS_DISABLE, 0);
    check_ok!(sys::sigaltstack(&raw const off as usize, 0));
    result
}

pub fn sigaltstack_errors() -> TestResult {
    let mut old = StackT::default();
    check_ok!(sys::sigaltstack(0, &raw mut old as usize));
    check_eq!(old.flags, sig::SS_DISABLE, "no alternate stack at start");
    let m = check_ok!(Mapping::rw(16));
    let ss = StackT::new(m.addr, 0, m.len);
    check_ok!(sys::sigaltstack(&raw const ss as usize, 0));
    check_ok!(sys::sigaltstack(0, &raw mut old as usize));
    check_eq!((old.sp, old.flags, old.size), (m.addr, 0, m.len));
    let small = StackT::new(m.addr, 0, sig::MINSIGSTKSZ - 1);
    check_err!(
        sys::sigaltstack(&raw const small as usize, 0),
        Errno::ENOMEM
    );
    let bad_flags = StackT::new(m.addr, 5, m.len);
    check_err!(
        sys::sigaltstack(&raw const bad_flags as usize, 0),
        Errno::EINVAL
    );
    let off = StackT::new(0, sig::SS_DISABLE, 0);
    check_ok!(sys::sigaltstack(
        &raw const off as usize,
        &raw mut old as usize
    ));
    check_eq!((old.sp, old.size), (m.addr, m.len));
    check_ok!(sys::sigaltstack(0, &raw mut old as usize));
    check_eq!((old.sp, old.flags, old.size), (0, sig::SS_DISABLE, 0));
    for (what, addr) in bad_addrs() {
        if addr == 0 {
            continue; // NULL means "no change"
        }
        let r = sys::sigaltstack(addr, 0);
        check!(r == Err(Errno::EFAULT), "sigaltstack({what}): {r:?}");
        let r = sys::sigaltstack(0, addr);
        check!(r == Err(Errno::EFAULT), "sigaltstack(old = {what}): {r:?}");
    }
    Ok(())
}

pub fn nanosleep_interrupted_returns_eintr_and_the_rest() -> TestResult {
    let mut saved = Saved::new();
    // SA_RESTART does not restart nanosleep.
    saved.handle(SIGUSR1, record, SA_SIGINFO | SA_RESTART, 0)?;
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    reset();
    let sender = signal_later(main_tid(), SIGUSR1, 30);
    let request = Timespec::from_nanos(2_000_000_000);
    let mut rest = Timespec::default();
    let started = sys::monotonic_ns();
    let r = sys::nanosleep(&raw const request as usize, &raw mut rest as usize);
    let ms = ms_since(started);
    check!(sender.join(), "tgkill failed");
    check_eq!(r, Err(Errno::EINTR));
    check_eq!(COUNT.load(Ordering::SeqCst), 1);
    check!(ms < 1500, "nanosleep returned after {ms} ms");
    let rest_ms = rest.as_nanos() / 1_000_000;
    check!(
        (500..2000).contains(&rest_ms),
        "{rest_ms} ms left after {ms} ms of 2000"
    );
    Ok(())
}

/// Waits on a futex word that another thread sets only after it signalled the waiter.
fn futex_wait_with_signal(flags: u64) -> Result<(Result<usize, Errno>, usize), urt::ktap::Failure> {
    static WORD: AtomicU32 = AtomicU32::new(0);
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO | flags, 0)?;
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    reset();
    WORD.store(0, Ordering::SeqCst);
    let main = main_tid();
    let waker = urt::thread::spawn(move || {
        sys::sleep_ns(30_000_000);
        let sent = sys::tgkill(sys::getpid(), main, SIGUSR1).is_ok();
        sys::sleep_ns(30_000_000);
        SEEN.store(COUNT.load(Ordering::SeqCst), Ordering::SeqCst);
        WORD.store(1, Ordering::SeqCst);
        let _ = sys::futex_wake(&WORD, 1);
        sent
    });
    let mut result = sys::futex_wait(&WORD, 0, None);
    if result.is_ok() && WORD.load(Ordering::SeqCst) == 0 {
        result = Err(Errno(-1)); // a spurious wake-up
    }
    check!(waker.join(), "tgkill failed");
    Ok((result, SEEN.load(Ordering::SeqCst)))
}

pub fn futex_wait_restarts_under_sa_restart() -> TestResult {
    let (result, handled_before_wake) = futex_wait_with_signal(SA_RESTART)?;
    check_eq!(
        handled_before_wake,
        1,
        "the handler ran while the thread waited"
    );
    check_eq!(result, Ok(0), "FUTEX_WAIT restarted, then was woken");
    Ok(())
}

pub fn futex_wait_interrupted_without_sa_restart() -> TestResult {
    let (result, _) = futex_wait_with_signal(0)?;
    check_eq!(COUNT.load(Ordering::SeqCst), 1);
    check_eq!(result, Err(Errno::EINTR));
    Ok(())
}

/// A two-byte load from `addr` (`mov eax, [rdi]`), which a handler may skip.
fn load_at(addr: usize) -> u32 {
    let value: u32;
    // SAFETY: the load may fault; the test's handler either fixes the mapping or skips it.
    unsafe { asm!(".byte 0x8b, 0x07", in("rdi") addr, out("eax") value, options(nostack)) };
    value
}

/// A two-byte store to `addr` (`mov [rdi], eax`).
fn store_at(addr: usize, value: u32) {
    // SAFETY: as for `load_at`.
    unsafe { asm!(".byte 0x89, 0x07", in("rdi") addr, in("eax") value, options(nostack)) };
}

static FIX_PAGE: AtomicUsize = AtomicUsize::new(0);

/// Makes the faulting page writable and lets the access run again.
extern "C" fn mprotect_and_retry(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
    // SAFETY: the kernel passes a valid ucontext in RDX.
    let uc = unsafe { &*uc };
    for (cell, value) in SEEN_GREGS.iter().zip(uc.mcontext.gregs) {
        cell.store(value, Ordering::SeqCst);
    }
    let page = FIX_PAGE.load(Ordering::SeqCst);
    let _ = sys::mprotect(page, sys::PAGE_SIZE, sys::PROT_READ | sys::PROT_WRITE);
    record(signo, info, core::ptr::null_mut());
}

pub fn segv_handler_mprotects_and_resumes() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGSEGV, mprotect_and_retry, SA_SIGINFO, 0)?;
    let page = check_ok!(Mapping::new(1, sys::PROT_NONE));
    FIX_PAGE.store(page.addr, Ordering::SeqCst);
    reset();
    let at = page.addr + 0x48;
    store_at(at, 0xabcd_1234);
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGSEGV");
    check_eq!(
        load_at(at),
        0xabcd_1234,
        "the store went through after the handler"
    );
    check_eq!(LAST_SIGNO.load(Ordering::SeqCst), sig::SIGSEGV as i32);
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::SEGV_ACCERR);
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), at, "si_addr");
    let g = |i: usize| SEEN_GREGS[i].load(Ordering::SeqCst) as usize;
    check_eq!(g(reg::TRAPNO), 14, "trapno: #PF");
    check_eq!(g(reg::CR2), at, "cr2");
    check_eq!(g(reg::ERR) & 6, 6, "error code: a user write");
    Ok(())
}

pub fn segv_on_unmapped_memory_is_maperr() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGSEGV, inspect_and_skip, SA_SIGINFO, 0)?;
    reset();
    let addr = crate::util::unmapped_addr() + 8;
    load_at(addr);
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGSEGV");
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::SEGV_MAPERR);
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), addr, "si_addr");
    // A kernel address, likewise unmapped for user code.
    reset();
    load_at(KERNEL_ADDR);
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGSEGV");
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), KERNEL_ADDR, "si_addr");
    Ok(())
}

/// A load from a page of a file mapping wholly past the end of the file raises SIGBUS with
/// `BUS_ADRERR` and the address; the page the end falls in reads (zeros past the end).
pub fn sigbus_past_the_end_of_a_mapped_file() -> TestResult {
    let memfd = crate::util::Fd(check_ok!(sys::memfd_create(
        c"ut-sigbus".as_ptr() as usize,
        sys::MFD_CLOEXEC
    )));
    check_ok!(sys::ftruncate(memfd.0, 100));
    let map = check_ok!(Mapping::file(
        memfd.0,
        2 * sys::PAGE_SIZE,
        sys::PROT_READ,
        sys::MAP_SHARED,
        0
    ));
    let mut saved = Saved::new();
    saved.handle(sig::SIGBUS, inspect_and_skip, SA_SIGINFO, 0)?;
    reset();
    check_eq!(load_at(map.addr + 200), 0, "past the end in the last page");
    check_eq!(
        COUNT.load(Ordering::SeqCst),
        0,
        "a signal for the last page"
    );
    let addr = map.page(1) + 12;
    load_at(addr);
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGBUS");
    check_eq!(LAST_SIGNO.load(Ordering::SeqCst), sig::SIGBUS as i32);
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::BUS_ADRERR);
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), addr, "si_addr");
    Ok(())
}

pub fn sigfpe_divide_by_zero() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGFPE, inspect_and_skip, SA_SIGINFO, 0)?;
    reset();
    let divisor = core::hint::black_box(0u32);
    // SAFETY: `div ecx` (2 bytes) raises #DE; the handler skips it.
    unsafe {
        asm!("xor edx, edx", "div ecx", inout("eax") 7u32 => _, in("ecx") divisor,
             out("edx") _, options(nostack));
    }
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGFPE");
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::FPE_INTDIV);
    let rip = SEEN_GREGS[reg::RIP].load(Ordering::SeqCst) as usize;
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), rip, "si_addr: the div");
    check_eq!(
        SEEN_GREGS[reg::TRAPNO].load(Ordering::SeqCst),
        0,
        "trapno: #DE"
    );
    Ok(())
}

pub fn general_protection_is_segv_si_kernel() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGSEGV, inspect_and_skip, SA_SIGINFO, 0)?;
    reset();
    // SAFETY: `hlt` in user mode raises #GP; the handler skips two bytes: hlt and a nop.
    unsafe { asm!("hlt", "nop", options(nostack, nomem)) };
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGSEGV");
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::SI_KERNEL);
    check_eq!(LAST_ADDR.load(Ordering::SeqCst), 0, "si_addr");
    Ok(())
}

pub fn int3_is_sigtrap() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(sig::SIGTRAP, inspect, SA_SIGINFO, 0)?;
    reset();
    let after: usize;
    // SAFETY: int3 raises SIGTRAP with RIP already past it: the handler returns there.
    unsafe { asm!("int3", "2:", "lea {}, [rip + 2b]", out(reg) after, options(nostack)) };
    check_eq!(COUNT.load(Ordering::SeqCst), 1, "one SIGTRAP");
    check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::SI_KERNEL);
    check_eq!(
        SEEN_GREGS[reg::RIP].load(Ordering::SeqCst) as usize,
        after,
        "RIP after int3"
    );
    check_eq!(
        SEEN_GREGS[reg::TRAPNO].load(Ordering::SeqCst),
        3,
        "trapno: #BP"
    );
    Ok(())
}

pub fn realtime_signals_queue_in_order() -> TestResult {
    static ORDER: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn note(signo: i32, info: *mut SigInfo, _: *mut UContext) {
        // SAFETY: the kernel passes a valid siginfo in RSI.
        let value = unsafe { (*info).value() };
        let at = NEXT.fetch_add(1, Ordering::SeqCst);
        if let Some(slot) = ORDER.get(at) {
            slot.store((signo as u64) << 32 | value, Ordering::SeqCst);
        }
    }
    let (low, high) = (sig::SIGRTMIN + 2, sig::SIGRTMIN + 3);
    let both = sigmask(low) | sigmask(high);
    let mut saved = Saved::new();
    saved.handle(low, note, SA_SIGINFO, both)?;
    saved.handle(high, note, SA_SIGINFO, both)?;
    check_ok!(sig::sigprocmask(SIG_BLOCK, both));
    NEXT.store(0, Ordering::SeqCst);
    let queue = |signo: usize, value: u64| {
        let info = SigInfo::queued(signo, sig::SI_QUEUE, sys::getpid() as u32, 0, value);
        sys::rt_sigqueueinfo(sys::getpid(), signo, &raw const info as usize)
    };
    check_ok!(queue(high, 9));
    for value in 1..=3 {
        check_ok!(queue(low, value));
    }
    check_eq!(check_ok!(sig::pending()), both);
    check_eq!(NEXT.load(Ordering::SeqCst), 0);
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, both));
    let got: Vec<(u64, u64)> = ORDER[..NEXT.load(Ordering::SeqCst).min(8)]
        .iter()
        .map(|slot| {
            let word = slot.load(Ordering::SeqCst);
            (word >> 32, word & 0xffff_ffff)
        })
        .collect();
    let (l, h) = (low as u64, high as u64);
    check_eq!(
        got,
        [(l, 1), (l, 2), (l, 3), (h, 9)],
        "every instance, lowest signal first"
    );
    Ok(())
}

pub fn cancel_signals_reach_another_thread() -> TestResult {
    static HIT: AtomicBool = AtomicBool::new(false);
    static WORD: AtomicU32 = AtomicU32::new(0);
    static TARGET: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn cancel(signo: i32, info: *mut SigInfo, uc: *mut UContext) {
        record(signo, info, uc);
        HIT.store(true, Ordering::SeqCst);
    }
    let mut saved = Saved::new();
    // glibc cancels threads with signal 32, musl with 33: both with SA_SIGINFO, by tgkill.
    for signo in [sig::SIGRTMIN, sig::SIGRTMIN + 1] {
        saved.handle(signo, cancel, SA_SIGINFO, 0)?;
        reset();
        HIT.store(false, Ordering::SeqCst);
        TARGET.store(0, Ordering::SeqCst);
        let waiter = urt::thread::spawn(|| {
            TARGET.store(sys::gettid(), Ordering::SeqCst);
            let started = sys::monotonic_ns();
            // A cancellation point: a wait that only the signal ends.
            while !HIT.load(Ordering::SeqCst) && ms_since(started) < 5000 {
                let _ = sys::futex_wait(&WORD, 0, Some(100_000_000));
            }
            HIT.load(Ordering::SeqCst)
        });
        while TARGET.load(Ordering::SeqCst) == 0 {
            let _ = sys::sched_yield();
        }
        let target = TARGET.load(Ordering::SeqCst);
        sys::sleep_ns(10_000_000);
        check_ok!(sys::tgkill(sys::getpid(), target, signo));
        check!(waiter.join(), "signal {signo} never reached the thread");
        check_eq!(
            LAST_TID.load(Ordering::SeqCst),
            target,
            "the handler ran in the target"
        );
        check_eq!(LAST_CODE.load(Ordering::SeqCst), sig::SI_TKILL);
        check_eq!(COUNT.load(Ordering::SeqCst), 1);
    }
    Ok(())
}

pub fn process_signal_goes_to_a_thread_that_takes_it() -> TestResult {
    static DONE: AtomicBool = AtomicBool::new(false);
    static WORD: AtomicU32 = AtomicU32::new(0);
    static TARGET: AtomicUsize = AtomicUsize::new(0);
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO, 0)?;
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    reset();
    DONE.store(false, Ordering::SeqCst);
    TARGET.store(0, Ordering::SeqCst);
    let other = urt::thread::spawn(|| {
        TARGET.store(sys::gettid(), Ordering::SeqCst);
        let started = sys::monotonic_ns();
        while COUNT.load(Ordering::SeqCst) == 0 && ms_since(started) < 5000 {
            let _ = sys::futex_wait(&WORD, 0, Some(50_000_000));
        }
        DONE.store(true, Ordering::SeqCst);
    });
    while TARGET.load(Ordering::SeqCst) == 0 {
        let _ = sys::sched_yield();
    }
    // The main thread blocks it: only the other thread can take it.
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    check_ok!(sys::kill(sys::getpid(), SIGUSR1));
    other.join();
    check_eq!(COUNT.load(Ordering::SeqCst), 1);
    check_eq!(
        LAST_TID.load(Ordering::SeqCst),
        TARGET.load(Ordering::SeqCst),
        "taken by the thread that does not block it"
    );
    check_eq!(check_ok!(sig::pending()), 0);
    Ok(())
}

pub fn rt_sigaction_set_and_get() -> TestResult {
    const SA_UNSUPPORTED: u64 = 0x400;
    let mut saved = Saved::new();
    let first = SigAction {
        handler: SIG_IGN,
        flags: SA_RESTART | SA_UNSUPPORTED,
        restorer: 0,
        mask: sigmask(SIGUSR2) | sigmask(SIGKILL) | sigmask(SIGSTOP),
    };
    let old = check_ok!(sig::sigaction(SIGUSR1, Some(&first)));
    saved.keep(SIGUSR1, old);
    let now = check_ok!(sig::sigaction(SIGUSR1, None));
    check_eq!(now.handler, SIG_IGN, "the action set");
    check_eq!(now.flags, SA_RESTART, "unknown flags are dropped");
    check_eq!(
        now.mask,
        sigmask(SIGUSR2),
        "SIGKILL and SIGSTOP are never in sa_mask"
    );
    // NULL for both: nothing happens.
    check_ok!(sys::rt_sigaction(SIGUSR1, 0, 0, 8));
    Ok(())
}

pub fn rt_sigprocmask_how() -> TestResult {
    let _saved = Saved::new();
    check_ok!(sig::sigprocmask(SIG_SETMASK, !0));
    check_eq!(
        sig::blocked(),
        !(sigmask(SIGKILL) | sigmask(SIGSTOP)),
        "SIGKILL and SIGSTOP cannot be blocked"
    );
    check_ok!(sig::sigprocmask(SIG_SETMASK, sigmask(SIGUSR1)));
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR2)));
    check_eq!(sig::blocked(), sigmask(SIGUSR1) | sigmask(SIGUSR2));
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    check_eq!(sig::blocked(), sigmask(SIGUSR2));
    let set = sigmask(SIGUSR1);
    check_err!(
        sys::rt_sigprocmask(99, &raw const set as usize, 0, 8),
        Errno::EINVAL
    );
    // Without a new set, `how` is not looked at.
    check_ok!(sys::rt_sigprocmask(99, 0, 0, 8));
    check_err!(
        sys::rt_sigprocmask(SIG_BLOCK, &raw const set as usize, 0, 4),
        Errno::EINVAL
    );
    for (what, addr) in bad_addrs() {
        if addr == 0 {
            continue;
        }
        let r = sys::rt_sigprocmask(SIG_BLOCK, addr, 0, 8);
        check!(
            r == Err(Errno::EFAULT),
            "rt_sigprocmask(set = {what}): {r:?}"
        );
        let r = sys::rt_sigprocmask(SIG_BLOCK, 0, addr, 8);
        check!(
            r == Err(Errno::EFAULT),
            "rt_sigprocmask(old = {what}): {r:?}"
        );
    }
    let mut pending = 0u64;
    check_err!(
        sys::rt_sigpending(&raw mut pending as usize, 9),
        Errno::EINVAL
    );
    check_err!(sys::rt_sigpending(KERNEL_ADDR, 8), Errno::EFAULT);
    Ok(())
}

pub fn signal_errors() -> TestResult {
    let act = SigAction {
        handler: SIG_IGN,
        ..SigAction::default()
    };
    let a = &raw const act as usize;
    check_err!(sys::rt_sigaction(SIGUSR1, a, 0, 4), Errno::EINVAL);
    for signo in [0, 65, usize::MAX] {
        check_err!(sys::rt_sigaction(signo, a, 0, 8), Errno::EINVAL);
    }
    check_err!(sys::rt_sigaction(SIGKILL, a, 0, 8), Errno::EINVAL);
    check_err!(sys::rt_sigaction(SIGSTOP, a, 0, 8), Errno::EINVAL);
    // Reading SIGKILL's action is fine.
    check_ok!(sig::sigaction(SIGKILL, None));
    check_err!(sys::rt_sigaction(SIGUSR1, KERNEL_ADDR, 0, 8), Errno::EFAULT);
    check_err!(sys::rt_sigaction(SIGUSR1, 0, KERNEL_ADDR, 8), Errno::EFAULT);

    let (pid, tid) = (sys::getpid(), sys::gettid());
    check_ok!(sys::kill(pid, 0));
    check_err!(sys::kill(pid, 65), Errno::EINVAL);
    check_err!(sys::kill(NO_SUCH_ID, 0), Errno::ESRCH);
    check_err!(sys::kill(NO_SUCH_ID, 65), Errno::ESRCH);
    check_ok!(sys::tgkill(pid, tid, 0));
    check_err!(sys::tgkill(pid, tid, 65), Errno::EINVAL);
    check_err!(sys::tgkill(pid, NO_SUCH_ID, 0), Errno::ESRCH);
    check_err!(sys::tgkill(NO_SUCH_ID, tid, SIGUSR1), Errno::ESRCH);
    check_err!(sys::tgkill(0, tid, SIGUSR1), Errno::EINVAL);
    check_err!(sys::tgkill(pid, 0, SIGUSR1), Errno::EINVAL);
    check_ok!(sys::tkill(tid, 0));
    check_err!(sys::tkill(0, SIGUSR1), Errno::EINVAL);
    check_err!(sys::tkill(usize::MAX, SIGUSR1), Errno::EINVAL);
    check_err!(sys::tkill(NO_SUCH_ID, 0), Errno::ESRCH);

    // rt_sigqueueinfo may not pose as kill (code >= 0) towards another process.
    let posing = SigInfo::queued(SIGUSR1, sig::SI_USER, pid as u32, 0, 0);
    check_err!(
        sys::rt_sigqueueinfo(NO_SUCH_ID, SIGUSR1, &raw const posing as usize),
        Errno::EPERM
    );
    let queued = SigInfo::queued(SIGUSR1, sig::SI_QUEUE, pid as u32, 0, 0);
    check_err!(
        sys::rt_sigqueueinfo(NO_SUCH_ID, SIGUSR1, &raw const queued as usize),
        Errno::ESRCH
    );
    check_err!(
        sys::rt_sigqueueinfo(pid, SIGUSR1, KERNEL_ADDR),
        Errno::EFAULT
    );
    check_err!(
        sys::rt_tgsigqueueinfo(pid, NO_SUCH_ID, SIGUSR1, &raw const posing as usize),
        Errno::EPERM
    );
    check_err!(
        sys::rt_tgsigqueueinfo(pid, tid, 65, &raw const queued as usize),
        Errno::EINVAL
    );
    check_err!(
        sys::rt_tgsigqueueinfo(0, tid, SIGUSR1, &raw const queued as usize),
        Errno::EINVAL
    );
    Ok(())
}
