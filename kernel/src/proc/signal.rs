//! Faults of user code and the signals they amount to. Signal handlers are not supported: a
//! fault that is not a demand fault kills the whole process, with Linux's exit status for a
//! death by signal (128 + the signal number) and a log line like Linux's
//! `prog[pid]: segfault at ADDR ip IP sp SP error CODE in prog`. The kernel goes on.

use core::sync::atomic::Ordering;

use crate::arch::trap::{self, TrapFrame};
use crate::mm::fault::FaultError;
use crate::sched;

const SIGILL: u32 = 4;
const SIGTRAP: u32 = 5;
const SIGBUS: u32 = 7;
const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
const SIGSEGV: u32 = 11;
pub const SIGCHLD: u32 = 17;

/// A page fault from user mode that the fault handler refused (interrupts disabled): the
/// process dies of SIGSEGV, or of SIGKILL when memory ran out.
pub fn user_page_fault_failed(frame: &TrapFrame, cr2: u64, error: FaultError) -> ! {
    if error == FaultError::OutOfMemory {
        report_out_of_memory(frame, cr2);
        kill_current_process(SIGKILL)
    }
    report(frame, cr2, SIGSEGV);
    kill_current_process(SIGSEGV)
}

/// Any other exception from user mode (interrupts disabled): it kills the process.
pub fn user_exception(frame: &mut TrapFrame, cr2: u64) {
    let vector = frame.vector as u8;
    let signal = match vector {
        trap::VECTOR_DIVIDE | 16 | 19 => SIGFPE,
        trap::VECTOR_INVALID_OPCODE => SIGILL,
        trap::VECTOR_BREAKPOINT | 1 => SIGTRAP,
        17 => SIGBUS,
        _ => SIGSEGV,
    };
    report(frame, cr2, signal);
    kill_current_process(signal)
}

fn report(frame: &TrapFrame, cr2: u64, signal: u32) {
    let task = sched::current();
    let name = task.name();
    let pid = task.process().map_or(0, |p| p.pid);
    let text = if frame.vector as u8 == trap::VECTOR_PAGE_FAULT {
        alloc::format!(
            "{name}[{pid}]: segfault at {cr2:x} ip {:016x} sp {:016x} error {:x} in {name} (SIGSEGV, tid {})",
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
    };
    log::error!("{text}");
    #[cfg(feature = "ktest")]
    if let Some(process) = task.process() {
        process.fatal_report.lock().get_or_insert(text);
    }
}

fn report_out_of_memory(frame: &TrapFrame, cr2: u64) {
    let task = sched::current();
    let text = alloc::format!(
        "out of memory: killed process {} ({}) faulting at {cr2:#x} ip {:#x}",
        task.process().map_or(0, |p| p.pid),
        task.name(),
        frame.rip
    );
    log::error!("{text}");
    #[cfg(feature = "ktest")]
    if let Some(process) = task.process() {
        process.fatal_report.lock().get_or_insert(text);
    }
}

/// Kills the running thread's process as if by `signal`. Never returns.
pub fn kill_current_process(signal: u32) -> ! {
    x86_64::instructions::interrupts::enable();
    super::end_process(super::killed_by(signal, false))
}

/// A user thread's first code: finish the switch and enter user mode with the registers it
/// was created with, from the top of its kernel stack.
pub extern "C" fn user_thread_start(task: usize) -> ! {
    sched::finish_switch();
    // SAFETY: `task` is the running task's own address (see `Task::prepare`).
    let task = unsafe { &*(task as *const sched::Task) };
    let user = task.user.as_ref().expect("a user thread");
    let frame = user
        .initial_frame
        .lock()
        .take()
        .expect("a thread enters user mode once");
    if task.killed.load(Ordering::Acquire) {
        x86_64::instructions::interrupts::enable();
        super::exit_killed_thread();
    }
    let set_tid = user.set_child_tid.swap(0, Ordering::Relaxed);
    if set_tid != 0 {
        // CLONE_CHILD_SETTID of a fork: in the child's own address space. A bad pointer is
        // the program's problem.
        crate::arch::with_interrupts_enabled(|| {
            let _ = crate::arch::uaccess::write_user(set_tid, &task.tid);
        });
    }
    let top = task
        .stack()
        .expect("user threads have a kernel stack")
        .top();
    let slot = (top - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    // SAFETY: the top of the task's own kernel stack was left free for this frame (the task's
    // first context was built below it, see `Task::new_user`), and `enter_user` abandons the
    // stack we run on for good.
    unsafe {
        slot.write(frame);
        crate::arch::syscall::enter_user(slot)
    }
}
