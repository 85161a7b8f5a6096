//! Delivery on the way back to user mode: a handler's frame, a group stop, a fatal default, the
//! restart (or `EINTR`) of the system call a signal interrupted; and `rt_sigreturn`, the way
//! back from a handler.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::queue::{SigInfo, next_signal};
use super::{
    AltStack, DefaultAction, GroupStop, JobEvent, Name, SA_NODEFER, SA_RESETHAND, SA_RESTART,
    SI_KERNEL, SIG_DFL, SIG_IGN, SIGSEGV, SIGTSTP, SIGTTIN, SIGTTOU, SS_AUTODISARM, Shared,
    SigAction, ThreadSignals, ThreadState, UNBLOCKABLE, alt_stack, current_user, default_action,
    die, fault, frame, kick, set_blocked, sigmask, signals_of, with_current,
};
use crate::arch::trap::TrapFrame;
use crate::proc::Process;
use crate::sched::{self, Task};
use crate::syscall::errno::{
    EINTR, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, Errno,
};

/// What delivery does next, decided under the locks.
enum Next {
    /// Nothing (more) to do.
    Done,
    /// A signal was taken and dropped (ignored): look again.
    Again,
    /// Stop with the process's group stop `generation` until it ends.
    Stop { generation: u64 },
    /// The signal's default action ends the process.
    Die(u32),
    /// Run a handler.
    Handle(Delivery),
}

/// A signal on its way to a handler: what the frame needs.
pub(super) struct Delivery {
    pub(super) signo: u32,
    pub(super) info: SigInfo,
    pub(super) action: SigAction,
    /// The mask `rt_sigreturn` restores.
    pub(super) saved_mask: u64,
    /// The alternate stack as it was before this delivery (`SS_AUTODISARM` may disable it).
    pub(super) alt_stack: AltStack,
    /// The last fault's vector, error code and address.
    pub(super) fault: [u64; 3],
}

/// The way back to user mode: the scheduler's work (RCU, timers, a switch, a kill), then signal
/// delivery into `frame`, the registers user mode resumes with, then the rseq area's update
/// (and the abort of an interrupted critical section) a switch or a registration left due.
/// `syscall` is the number of the system call that is returning, if a signal may restart it.
/// Called with interrupts disabled; returns with them disabled and nothing left to do.
pub fn return_to_user(frame: &mut TrapFrame, mut syscall: Option<u64>) {
    loop {
        sched::return_to_user();
        let Some(user) = sched::current().user.as_ref() else {
            return;
        };
        let restart = syscall.is_some() && restart_code(frame.rax).is_some();
        let signals = restart || user.signals.has_work();
        if !signals && !user.rseq.update_due() {
            return;
        }
        x86_64::instructions::interrupts::enable();
        if signals {
            deliver(frame, syscall.take());
        } else {
            crate::proc::rseq::update(frame);
        }
        x86_64::instructions::interrupts::disable();
    }
}

/// The restart code a system call returned in RAX, if any.
fn restart_code(rax: u64) -> Option<Errno> {
    let code = Errno((rax as i64).wrapping_neg() as i32);
    ((rax as i64) < 0
        && matches!(
            code,
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
        ))
    .then_some(code)
}

/// Makes the system call `number`, whose result is in `frame`, run again when the thread
/// returns to user mode: back over the two-byte `syscall` instruction, with its number in RAX
/// again (the argument registers are unchanged).
fn rewind(frame: &mut TrapFrame, number: u64) {
    frame.rax = number;
    frame.rip = frame.rip.wrapping_sub(2);
}

/// `restart_syscall`'s number.
const NR_RESTART_SYSCALL: u64 = 219;

/// Delivers what is pending for the running thread, interrupts enabled.
fn deliver(frame: &mut TrapFrame, mut syscall: Option<u64>) {
    let task = sched::current();
    let user = task.user.as_ref().expect("a user thread");
    loop {
        match next(&user.process, &user.signals) {
            Next::Again => {}
            Next::Stop { generation } => {
                wait_while_stopped(task, &user.process, generation);
                if task.is_killed() {
                    return;
                }
            }
            Next::Die(signo) => {
                log::info!(
                    "{}[{}]: killed by signal {signo} ({})",
                    task.name(),
                    user.process.pid,
                    Name(signo)
                );
                die(signo)
            }
            Next::Handle(delivery) => {
                if let Some(number) = syscall.take() {
                    match restart_code(frame.rax) {
                        Some(ERESTARTSYS) if delivery.action.flags & SA_RESTART != 0 => {
                            rewind(frame, number)
                        }
                        Some(ERESTARTNOINTR) => rewind(frame, number),
                        Some(_) => frame.rax = (-i64::from(EINTR.0)) as u64,
                        None => {}
                    }
                }
                // A critical section the signal interrupted aborts: the frame saves the abort
                // handler's address.
                crate::proc::rseq::signal_delivery(frame, delivery.signo);
                if frame::setup(frame, &delivery).is_err() {
                    // Linux's force_sigsegv: a handler that cannot be entered kills.
                    fault::report_fatal(alloc::format!(
                        "{}[{}]: cannot enter the handler of {} (handler {:#x}, restorer {:#x}, sp {:#x}): killed by signal {SIGSEGV} (SIGSEGV)",
                        task.name(),
                        user.process.pid,
                        Name(delivery.signo),
                        delivery.action.handler,
                        delivery.action.restorer,
                        frame.rsp
                    ));
                    die(SIGSEGV)
                }
                return;
            }
            Next::Done => {
                if let Some(number) = syscall.take() {
                    match restart_code(frame.rax) {
                        Some(ERESTART_RESTARTBLOCK) => rewind(frame, NR_RESTART_SYSCALL),
                        Some(_) => rewind(frame, number),
                        None => {}
                    }
                }
                return;
            }
        }
    }
}

/// Takes the running thread's next deliverable signal and decides what to do with it.
fn next(process: &Process, thread: &ThreadSignals) -> Next {
    let mut kicks = Vec::new();
    // Whether the terminal stop signals (SIGTSTP, SIGTTIN, SIGTTOU) are dropped: looked up in
    // the process tree before the signal locks are taken (the tree's locks come first).
    let tty_stops_pending = {
        let shared = process.signals.shared.lock();
        let state = thread.state.lock();
        (shared.pending.set | state.pending.set) & TTY_STOP_SIGNALS != 0
    };
    let orphaned = tty_stops_pending && crate::proc::is_group_orphaned(process);
    let next = {
        let mut shared = process.signals.shared.lock();
        let mut state = thread.state.lock();
        let next = next_locked(process, &mut shared, &mut state, &mut kicks, orphaned);
        thread.recalc(&shared, &state);
        next
    };
    for task in &kicks {
        kick(task);
    }
    super::report_job_event(process);
    next
}

/// The stop signals that come from a terminal: Linux drops them (when their action is the
/// default) in an orphaned process group, which no job-control shell would ever continue.
const TTY_STOP_SIGNALS: u64 = sigmask(SIGTSTP) | sigmask(SIGTTIN) | sigmask(SIGTTOU);

/// [`next`] under the signal locks; `orphaned`: the process's group is orphaned.
fn next_locked(
    process: &Process,
    shared: &mut Shared,
    state: &mut ThreadState,
    kicks: &mut Vec<Arc<Task>>,
    orphaned: bool,
) -> Next {
    if shared.stop.is_some() && state.stop_generation != shared.stop_generation {
        state.stop_generation = shared.stop_generation;
        let threads = process.thread_count();
        if let Some(stop) = &mut shared.stop {
            stop.stopped += 1;
            if !stop.complete && stop.stopped >= threads {
                stop.complete = true;
                let signal = stop.signal;
                shared.event = Some(JobEvent::Stopped(signal));
                shared.unreported_event = shared.event;
            }
        }
        return Next::Stop {
            generation: shared.stop_generation,
        };
    }
    let allowed = !state.blocked;
    let info = match next_signal(state.pending.set & allowed) {
        Some(signo) => state.pending.take(signo),
        None => match next_signal(shared.pending.set & allowed) {
            Some(signo) => shared.pending.take(signo),
            None => {
                // Nothing to deliver: a mask rt_sigsuspend (or ppoll, pselect6) replaced comes
                // back.
                if let Some(mask) = state.saved_mask.take() {
                    state.blocked = mask;
                }
                return Next::Done;
            }
        },
    };
    let signo = info.signo();
    let action = shared.actions[signo as usize - 1];
    match action.handler {
        SIG_IGN => Next::Again,
        SIG_DFL => match default_action(signo) {
            DefaultAction::Ignore | DefaultAction::Continue => Next::Again,
            DefaultAction::Terminate | DefaultAction::Core => Next::Die(signo),
            DefaultAction::Stop if orphaned && sigmask(signo) & TTY_STOP_SIGNALS != 0 => {
                Next::Again
            }
            DefaultAction::Stop => {
                // Every thread joins the stop: this one at its next look, the others when
                // kicked.
                shared.stop_generation += 1;
                shared.stop = Some(GroupStop {
                    signal: signo,
                    stopped: 0,
                    complete: false,
                });
                let me = sched::current();
                for thread in process.threads() {
                    if !core::ptr::eq(Arc::as_ptr(&thread), me) {
                        signals_of(&thread).work.store(true, Ordering::Release);
                        kicks.push(thread);
                    }
                }
                Next::Again
            }
        },
        _ => {
            if action.flags & SA_RESETHAND != 0 {
                shared.actions[signo as usize - 1].handler = SIG_DFL;
            }
            let saved_mask = state.saved_mask.take().unwrap_or(state.blocked);
            let mut blocked = state.blocked | action.mask;
            if action.flags & SA_NODEFER == 0 {
                blocked |= sigmask(signo);
            }
            state.blocked = blocked & !UNBLOCKABLE;
            let alt_stack = state.alt_stack;
            if alt_stack.flags & SS_AUTODISARM != 0 {
                state.alt_stack = AltStack::DISABLED;
            }
            Next::Handle(Delivery {
                signo,
                info,
                action,
                saved_mask,
                alt_stack,
                fault: state.fault,
            })
        }
    }
}

/// Sleeps in a group stop until SIGCONT ends it (or the thread is killed).
fn wait_while_stopped(task: &Task, process: &Process, generation: u64) {
    loop {
        sched::set_current_sleeping();
        let stopped = {
            let shared = process.signals.shared.lock();
            shared.stop.is_some() && shared.stop_generation == generation
        };
        if !stopped || task.is_killed() {
            sched::set_current_runnable();
            return;
        }
        sched::schedule();
    }
}

/// `rt_sigreturn`: restores the registers, FPU state, mask and alternate stack a handler's frame
/// saved (the handler's `ret` has popped the return address: RSP points at the `ucontext`).
/// Returns the restored RAX. A frame that cannot be read, or that would resume outside user
/// space, is answered with SIGSEGV, as on Linux.
pub fn sigreturn(frame: &mut TrapFrame) -> u64 {
    match frame::restore(frame) {
        Ok(restored) => {
            with_current(|process, shared, state, kicks| {
                set_blocked(process, shared, state, restored.mask, kicks);
                state.restart = None;
            });
            // As on Linux, a stack that cannot be restored (the thread runs on it) is no
            // reason to fail.
            let _ = alt_stack(Some(restored.alt_stack), frame.rsp);
        }
        Err(_) => {
            // As on Linux, SIGSEGV: for its handler, if there is one.
            let task = sched::current();
            let text = alloc::format!(
                "{}[{}]: bad frame in rt_sigreturn at sp {:#x} (SIGSEGV, tid {})",
                task.name(),
                current_user().process.pid,
                frame.rsp,
                task.tid
            );
            if !fault::force(frame, SigInfo::new(SIGSEGV, SI_KERNEL, [0; 4]), 0) {
                fault::report_fatal(text);
                die(SIGSEGV)
            }
            log::info!("{text}");
        }
    }
    frame.rax
}

/// A user thread's first code: finish the switch and enter user mode with the registers it
/// was created with, from the top of its kernel stack (after the work due before any return to
/// user mode: a kill, a signal sent meanwhile).
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
    let set_tid = user
        .set_child_tid
        .swap(0, core::sync::atomic::Ordering::Relaxed);
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
    // first context was built below it, see `Task::new_user`): nothing else uses it, and the
    // reference ends before `enter_user`.
    let frame = unsafe {
        slot.write(frame);
        &mut *slot
    };
    return_to_user(frame, None);
    // SAFETY: the frame is a user frame on this task's stack, and `enter_user` abandons the
    // stack we run on for good.
    unsafe { crate::arch::syscall::enter_user(slot) }
}
