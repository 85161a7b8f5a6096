//! Faults of user code as signals (Linux's `force_sig`): the signal, its `si_code` and
//! `si_addr`, a handler if there is one, else the death of the process with a report line.

use super::queue::SigInfo;
use super::{
    SI_KERNEL, SIG_DFL, SIG_IGN, SIGBUS, SIGFPE, SIGILL, SIGKILL, SIGSEGV, SIGTRAP, die, sigmask,
    with_current,
};
use crate::arch::trap::{self, TrapFrame};
use crate::mm::fault::FaultError;
use crate::sched;

const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const ILL_ILLOPN: i32 = 2;
const FPE_INTDIV: i32 = 1;
const FPE_FLTDIV: i32 = 3;
const FPE_FLTOVF: i32 = 4;
const FPE_FLTUND: i32 = 5;
const FPE_FLTRES: i32 = 6;
const FPE_FLTINV: i32 = 7;
const TRAP_BRKPT: i32 = 1;
const TRAP_TRACE: i32 = 2;
const BUS_ADRALN: i32 = 1;
const BUS_ADRERR: i32 = 2;

/// Linux's force_sig for the running thread's own fault (`cr2`: the fault address, if any):
/// queues the signal for its handler and returns true, or returns false when the signal is
/// blocked, ignored or has no handler — then it kills.
pub(super) fn force(frame: &TrapFrame, info: SigInfo, cr2: u64) -> bool {
    let signo = info.signo();
    with_current(|_, shared, state, _| {
        let action = shared.actions[signo as usize - 1];
        if state.blocked & sigmask(signo) != 0
            || action.handler == SIG_IGN
            || action.handler == SIG_DFL
        {
            return false;
        }
        state.fault = [frame.vector, frame.error_code, cr2];
        // A synchronous signal is not dropped even if one is pending already: it is delivered
        // first, and the frame reports this fault.
        state.pending.discard(sigmask(signo));
        state.pending.add(info).is_ok()
    })
}

/// A page fault from user mode that the fault handler refused (interrupts disabled): SIGSEGV
/// with `SEGV_MAPERR` (no mapping) or `SEGV_ACCERR` (the mapping forbids the access), or
/// SIGBUS with `BUS_ADRERR` (a page past the end of the mapped file), at the address, for its
/// handler; without one the process dies. Out of memory kills with SIGKILL.
pub fn user_page_fault_failed(frame: &TrapFrame, cr2: u64, error: FaultError) {
    let (signo, code) = match error {
        FaultError::OutOfMemory => {
            kill_for_out_of_memory(frame, cr2);
            die(SIGKILL)
        }
        FaultError::NoVma | FaultError::GuardRegion => (SIGSEGV, SEGV_MAPERR),
        FaultError::Forbidden => (SIGSEGV, SEGV_ACCERR),
        FaultError::PastEndOfFile => (SIGBUS, BUS_ADRERR),
    };
    if !force(frame, SigInfo::fault(signo, code, cr2), cr2) {
        report(frame, cr2, signo);
        die(signo)
    }
}

/// Any other exception from user mode (interrupts disabled): its signal, with Linux's `si_code`
/// and `si_addr`, goes to the handler; without one the process dies.
pub fn user_exception(frame: &mut TrapFrame, cr2: u64) {
    let vector = frame.vector as u8;
    let rip = frame.rip;
    let (signo, code, addr) = match vector {
        trap::VECTOR_DIVIDE => (SIGFPE, FPE_INTDIV, rip),
        16 | 19 => match float_exception_code(vector) {
            Some(code) => (SIGFPE, code, rip),
            // No unmasked exception is pending: nothing to report.
            None => return,
        },
        trap::VECTOR_INVALID_OPCODE => (SIGILL, ILL_ILLOPN, rip),
        trap::VECTOR_BREAKPOINT => (SIGTRAP, SI_KERNEL, 0),
        1 if frame.rflags & RFLAGS_TRAP != 0 => (SIGTRAP, TRAP_TRACE, rip),
        1 => (SIGTRAP, TRAP_BRKPT, rip),
        17 => (SIGBUS, BUS_ADRALN, 0),
        11 | 12 => (SIGBUS, SI_KERNEL, 0),
        _ => (SIGSEGV, SI_KERNEL, 0),
    };
    if !force(frame, SigInfo::fault(signo, code, addr), cr2) {
        report(frame, cr2, signo);
        die(signo)
    }
}

/// Linux's `force_sigsegv` for a check the kernel makes on the way back to user mode that
/// failed (`why`, for the report; rseq's): SIGSEGV goes to its handler, unless the handler
/// being entered is SIGSEGV's own (`during`), or the signal is blocked, ignored or has no
/// handler: then the process dies.
pub fn force_sigsegv(frame: &TrapFrame, during: Option<u32>, why: &str) {
    if during != Some(SIGSEGV) && force(frame, SigInfo::fault(SIGSEGV, SI_KERNEL, 0), 0) {
        return;
    }
    let task = sched::current();
    report_fatal(alloc::format!(
        "{}[{}]: {why} (ip {:016x} sp {:016x}): killed by signal {SIGSEGV} (SIGSEGV, tid {})",
        task.name(),
        task.process().map_or(0, |p| p.pid),
        frame.rip,
        frame.rsp,
        task.tid
    ));
    die(SIGSEGV)
}

/// RFLAGS.TF: single-stepping.
const RFLAGS_TRAP: u64 = 1 << 8;

/// The `si_code` of an x87 (#MF, vector 16) or SIMD (#XM, 19) floating-point exception: the
/// first unmasked exception flagged in the status (x87 status and control words, or MXCSR),
/// or `None` when there is none.
fn float_exception_code(vector: u8) -> Option<i32> {
    let state = crate::arch::context::FpuState::capture();
    let image = state.image();
    let word = |at: usize| u32::from(u16::from_le_bytes([image[at], image[at + 1]]));
    let flags = if vector == 16 {
        // Status word & !control word: the raised exceptions that are not masked.
        word(2) & !word(0)
    } else {
        let mxcsr = u32::from_le_bytes([image[24], image[25], image[26], image[27]]);
        mxcsr & !(mxcsr >> 7)
    };
    if flags & 0x01 != 0 {
        Some(FPE_FLTINV)
    } else if flags & 0x04 != 0 {
        Some(FPE_FLTDIV)
    } else if flags & 0x08 != 0 {
        Some(FPE_FLTOVF)
    } else if flags & 0x12 != 0 {
        Some(FPE_FLTUND)
    } else if flags & 0x20 != 0 {
        Some(FPE_FLTRES)
    } else {
        None
    }
}

/// Logs why a signal kills the running thread's process (and, in test images, keeps the first
/// such report in the process for the tests).
pub(super) fn report_fatal(text: alloc::string::String) {
    match sched::current().process() {
        Some(process) => report_fatal_of(process, text),
        None => log::error!("{text}"),
    }
}

/// Logs why `process` is killed (and, in test images, keeps the first such report in the
/// process for the tests).
pub(in crate::proc) fn report_fatal_of(
    process: &super::super::Process,
    text: alloc::string::String,
) {
    log::error!("{text}");
    #[cfg(feature = "ktest")]
    process.fatal_report.lock().get_or_insert(text);
    #[cfg(not(feature = "ktest"))]
    let _ = process;
}

/// A fault that kills, in words like Linux's `prog[pid]: segfault at ADDR ip IP sp SP error
/// CODE in prog`.
fn report(frame: &TrapFrame, cr2: u64, signal: u32) {
    let task = sched::current();
    let name = task.name();
    let pid = task.process().map_or(0, |p| p.pid);
    report_fatal(if frame.vector as u8 == trap::VECTOR_PAGE_FAULT {
        let (what, signal) = if signal == SIGBUS {
            ("bus error", "SIGBUS")
        } else {
            ("segfault", "SIGSEGV")
        };
        alloc::format!(
            "{name}[{pid}]: {what} at {cr2:x} ip {:016x} sp {:016x} error {:x} in {name} ({signal}, tid {})",
            frame.rip,
            frame.rsp,
            frame.error_code,
            task.tid
        )
    } else {
        alloc::format!(
            "{name}[{pid}]: trap {} ip {:016x} sp {:016x} error {:x} in {name} (signal {signal}, tid {})",
            trap::exception_description(frame.vector as u8),
            frame.rip,
            frame.rsp,
            frame.error_code,
            task.tid
        )
    });
}

/// Kills the running thread's process for want of memory (the caller then exits this thread):
/// the out-of-memory killer (proc/oom.rs) found it the largest. Reports it in one line like
/// Linux's `Out of memory: Killed process PID (NAME) ...`: who, how many pages it had resident,
/// and why. Only the thread that starts the group exit reports: others that run out at the
/// same moment die with it silently.
fn kill_for_out_of_memory(frame: &TrapFrame, cr2: u64) {
    let task = sched::current();
    let Some(user) = &task.user else {
        return;
    };
    let resident = user.mm.resident_pages.sum();
    if user
        .process
        .kill_all_but_current(super::death_status(SIGKILL))
    {
        report_fatal(alloc::format!(
            "out of memory: killed process {} ({}), {resident} pages resident, the most of any \
             process: no frame for a page at {cr2:#x} (ip {:#x}, tid {}) above the kernel's \
             reserve ({} frames free now) (SIGKILL)",
            user.process.pid,
            task.name(),
            frame.rip,
            task.tid,
            crate::mm::frame::free_frames()
        ));
    }
}
