//! Signals, with Linux's x86_64 ABI and semantics: the actions a process chose, the signals
//! waiting for its threads, delivery to handlers on the way back to user mode, `rt_sigreturn`,
//! the default actions (terminate, terminate with a core flag, stop, continue, ignore), and the
//! faults of user code, which become signals too.
//!
//! # What lives where
//! - [`ProcessSignals`] (`Process::signals`): the 64 actions, shared by every thread (threads
//!   always share them here, as `CLONE_SIGHAND` asks); the process-wide pending set, which
//!   process-directed signals (`kill`) join; the group stop and the job-control events a parent's
//!   wait will report ([`ProcessSignals::take_job_event`]).
//! - [`ThreadSignals`] (`UserThread::signals`): the thread's blocked mask, its own pending set
//!   (thread-directed signals: `tgkill`, faults), the mask to restore after `rt_sigsuspend`
//!   (and `ppoll`, `pselect6`), the alternate signal stack, the restart block of an interrupted
//!   sleep, and `work`, the flag that sends the thread through delivery before it returns to
//!   user mode (Linux's `TIF_SIGPENDING`), also what ends its interruptible sleeps
//!   ([`Task::signal_pending`]).
//! - `queue.rs`: `siginfo` and the pending sets; `delivery.rs`: the way back to user mode and
//!   `rt_sigreturn`; `frame.rs`: the `rt_sigframe` a handler runs on; `fault.rs`: user faults as
//!   signals. This file: the state, sending, and what the system calls change.
//!
//! # Locks
//! All of it is protected by the process's signal lock (`ProcessSignals::shared`); each thread's
//! part also has a lock of its own. Order: process signal lock → a thread's signal lock → the
//! process's thread list, tasks' scheduler locks. A thread's lock is taken alone only for its
//! restart block and while a thread is set up (clone, fork, exec); two threads' locks are held
//! together only under the process's lock. `work` changes only under the process's lock: any
//! sender sets it, only its own thread clears it (recomputing it from the pending sets, its mask
//! and the group stop), and it is read without a lock. Woken threads are kicked (woken, and sent
//! an IPI when they run) after the locks are released.
//!
//! # Sending
//! A signal whose action ignores it is dropped at once unless the thread it was sent to blocks
//! it (the action may change before it is unblocked). Standard signals (1-31) are pending once at
//! most; real-time ones (32-64) queue, each with its `siginfo`, up to `queue::MAX_QUEUED` per set. A
//! process-directed signal goes to the process's set and wakes one thread that does not block
//! it (the first thread if it can). A signal whose default action kills, sent to a thread that
//! does not block it, kills the whole process at once (every thread exits before it next
//! returns to user mode); SIGKILL always does. Stop signals discard a pending SIGCONT and
//! SIGCONT discards pending stop signals; SIGCONT also ends a group stop. A stopped process
//! takes no other signal until it continues (they wait in their sets), but for SIGKILL.
//!
//! # Delivery
//! [`return_to_user`] runs before every return to user mode, with the interrupted registers (a
//! system call's, a fault's, an interrupt's). When the thread's `work` is set it takes the next
//! signal it does not block: its own set before the process's, synchronous signals (faults)
//! first, then the lowest number. A handler gets a signal frame on the user stack or the
//! alternate stack, runs with `sa_mask` and the signal blocked; one whose default is to stop
//! makes every thread stop until SIGCONT (or SIGKILL); a fatal one ends the process. A system
//! call a signal interrupted returns a restart code (`ERESTARTSYS` and friends), which becomes
//! `EINTR` when a handler runs (or a restart, for `ERESTARTSYS` under `SA_RESTART`) and a
//! transparent restart when none does, as on Linux.
//!
//! # Faults
//! A user fault is Linux's `force_sig`: when the signal is blocked, ignored or has no handler,
//! the process dies at once with a report line like Linux's
//! `prog[pid]: segfault at ADDR ip IP sp SP error CODE in prog`; otherwise the handler runs on
//! the way out of the exception, with Linux's `si_code` and `si_addr`.
//!
//! # Deaths
//! A process killed by a signal ends with the wait status `signal`, or `signal | 0x80` for the
//! signals whose default action dumps core (no core file is written: there is no file system);
//! `Process::exit_status` shows it as 128 + signal.
//!
//! # Groups
//! A signal to a process group (`kill(-pgid, sig)`, the terminal's `^C`, `^\` and `^Z`, its
//! job-control stops) goes to each member ([`send_signal_to_each`] over
//! `proc::group_members`).

mod delivery;
mod fault;
mod frame;
#[cfg(feature = "ktest")]
mod ktests;
mod queue;

pub use delivery::{return_to_user, sigreturn, user_thread_start};
pub(super) use fault::report_fatal_of;
pub use fault::{force_sigsegv, user_exception, user_page_fault_failed};
pub use queue::SigInfo;
use queue::{Pending, next_signal};

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use super::Process;
use crate::sched::task::UserThread;
use crate::sched::{self, Task};
use crate::sync::IrqSpinLock;
use crate::syscall::errno::{EAGAIN, EINTR, EINVAL, ENOMEM, EPERM, ERESTARTNOHAND, ESRCH, Errno};

/// The highest signal number.
pub const NSIG: u32 = 64;
pub const SIGHUP: u32 = 1;
const SIGQUIT: u32 = 3;
const SIGILL: u32 = 4;
const SIGTRAP: u32 = 5;
const SIGABRT: u32 = 6;
const SIGBUS: u32 = 7;
const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
const SIGSEGV: u32 = 11;
pub const SIGPIPE: u32 = 13;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub(super) const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
const SIGURG: u32 = 23;
const SIGXCPU: u32 = 24;
const SIGXFSZ: u32 = 25;
pub const SIGWINCH: u32 = 28;
const SIGSYS: u32 = 31;
/// The first real-time signal (glibc keeps 32 and 33 for itself: thread cancellation).
const SIGRTMIN: u32 = 32;

/// The bit of signal `signo` (1..=64) in a signal set.
pub const fn sigmask(signo: u32) -> u64 {
    1 << (signo - 1)
}

/// SIGKILL and SIGSTOP can be neither blocked nor caught.
pub const UNBLOCKABLE: u64 = sigmask(SIGKILL) | sigmask(SIGSTOP);
const STOP_SIGNALS: u64 = sigmask(SIGSTOP) | sigmask(SIGTSTP) | sigmask(SIGTTIN) | sigmask(SIGTTOU);
/// Signals of a fault of the thread itself, taken before others.
const SYNCHRONOUS: u64 = sigmask(SIGSEGV)
    | sigmask(SIGBUS)
    | sigmask(SIGILL)
    | sigmask(SIGTRAP)
    | sigmask(SIGFPE)
    | sigmask(SIGSYS);

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
const SA_EXPOSE_TAGBITS: u64 = 0x800;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// The flags `rt_sigaction` keeps (Linux clears the others, so that a program can tell which
/// flags the kernel knows).
const SA_KNOWN: u64 = SA_NOCLDSTOP
    | SA_NOCLDWAIT
    | SA_SIGINFO
    | SA_EXPOSE_TAGBITS
    | SA_RESTORER
    | SA_ONSTACK
    | SA_RESTART
    | SA_NODEFER
    | SA_RESETHAND;

/// `si_code`: sent by `kill`.
pub const SI_USER: i32 = 0;
/// `si_code`: sent by the kernel.
pub const SI_KERNEL: i32 = 0x80;
/// `si_code`: sent by `tkill`/`tgkill`.
pub const SI_TKILL: i32 = -6;
/// `stack_t.ss_flags`: the thread runs on its alternate stack (reported by `sigaltstack`).
const SS_ONSTACK: u32 = 1;
/// `stack_t.ss_flags`: no alternate stack.
const SS_DISABLE: u32 = 2;
/// `stack_t.ss_flags`: the stack is disabled while a handler runs on it (restored by
/// `rt_sigreturn`).
const SS_AUTODISARM: u32 = 1 << 31;
/// The smallest alternate stack `sigaltstack` accepts.
const MINSIGSTKSZ: u64 = 2048;

/// One signal's `struct sigaction`, in the kernel's x86_64 layout: handler, flags, restorer,
/// mask.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    pub fn from_user([handler, flags, restorer, mask]: [u64; 4]) -> Self {
        Self {
            handler,
            flags,
            restorer,
            mask,
        }
    }

    pub fn to_user(self) -> [u64; 4] {
        [self.handler, self.flags, self.restorer, self.mask]
    }

    /// Whether a signal sent now would be dropped (`SIG_IGN`, or the default action ignores it;
    /// SIGCONT's continues a stopped process when it is sent, and is ignored besides).
    fn ignores(&self, signo: u32) -> bool {
        self.handler == SIG_IGN
            || self.handler == SIG_DFL
                && matches!(
                    default_action(signo),
                    DefaultAction::Ignore | DefaultAction::Continue
                )
    }

    /// Whether the signal kills the process if it arrives now.
    fn kills(&self, signo: u32) -> bool {
        signo == SIGKILL
            || self.handler == SIG_DFL
                && matches!(
                    default_action(signo),
                    DefaultAction::Terminate | DefaultAction::Core
                )
    }
}

/// What a signal does when its handler is `SIG_DFL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultAction {
    Terminate,
    /// Terminate with the core flag in the wait status.
    Core,
    Ignore,
    Stop,
    /// Continue a stopped process (done when it is sent), otherwise ignored.
    Continue,
}

fn default_action(signo: u32) -> DefaultAction {
    match signo {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// The wait status of a death by `signo` (with the core flag where the default dumps core).
fn death_status(signo: u32) -> u32 {
    super::killed_by(signo, default_action(signo) == DefaultAction::Core)
}

/// A signal's name, for log lines.
struct Name(u32);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 31] = [
            "SIGHUP",
            "SIGINT",
            "SIGQUIT",
            "SIGILL",
            "SIGTRAP",
            "SIGABRT",
            "SIGBUS",
            "SIGFPE",
            "SIGKILL",
            "SIGUSR1",
            "SIGSEGV",
            "SIGUSR2",
            "SIGPIPE",
            "SIGALRM",
            "SIGTERM",
            "SIGSTKFLT",
            "SIGCHLD",
            "SIGCONT",
            "SIGSTOP",
            "SIGTSTP",
            "SIGTTIN",
            "SIGTTOU",
            "SIGURG",
            "SIGXCPU",
            "SIGXFSZ",
            "SIGVTALRM",
            "SIGPROF",
            "SIGWINCH",
            "SIGIO",
            "SIGPWR",
            "SIGSYS",
        ];
        match NAMES.get(self.0.wrapping_sub(1) as usize) {
            Some(name) => f.write_str(name),
            None => write!(f, "SIGRTMIN+{}", self.0 - SIGRTMIN),
        }
    }
}

/// A group stop: begun by the thread that took a stop signal, in effect until SIGCONT.
struct GroupStop {
    signal: u32,
    /// Threads that have stopped so far.
    stopped: usize,
    /// Every thread has stopped (and the stop was recorded for wait).
    complete: bool,
}

/// What a parent's SIGCHLD action says about its children ([`ProcessSignals::child_policy`]).
#[derive(Clone, Copy, Debug)]
pub struct ChildPolicy {
    pub collect_at_once: bool,
    pub signal_ends: bool,
    pub signal_stops: bool,
}

/// A change of a process's job-control state, for a parent's wait (`WUNTRACED`,
/// `WCONTINUED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// Every thread stopped, by this signal.
    Stopped(u32),
    /// SIGCONT ended a stop.
    Continued,
}

impl JobEvent {
    /// The status wait4 reports: `0x7f | signal << 8` for a stop, `0xffff` for a continue.
    pub fn wait_status(self) -> u32 {
        match self {
            JobEvent::Stopped(signal) => 0x7f | signal << 8,
            JobEvent::Continued => 0xffff,
        }
    }
}

/// The process-wide part (under [`ProcessSignals::shared`]).
struct Shared {
    actions: [SigAction; NSIG as usize],
    pending: Pending,
    stop: Option<GroupStop>,
    /// Counts group stops, so that a thread knows whether it has taken part in this one.
    stop_generation: u64,
    /// The last job-control change, until wait reports it.
    event: Option<JobEvent>,
    /// The change the parent has not been told of yet ([`report_job_event`]): kept apart from
    /// `event`, which a wait may take before the report goes out.
    unreported_event: Option<JobEvent>,
}

/// A process's signal masks as `/proc` shows them ([`ProcessSignals::masks`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignalMasks {
    pub pending: u64,
    pub ignored: u64,
    pub caught: u64,
}

/// A process's signal state: actions, process-directed pending signals, job control. See the
/// module docs.
pub struct ProcessSignals {
    shared: IrqSpinLock<Shared>,
}

impl Default for ProcessSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSignals {
    /// Every action `SIG_DFL`, nothing pending.
    pub fn new() -> Self {
        Self::with_actions([SigAction::default(); NSIG as usize])
    }

    fn with_actions(actions: [SigAction; NSIG as usize]) -> Self {
        Self {
            shared: IrqSpinLock::new(Shared {
                actions,
                pending: Pending::default(),
                stop: None,
                stop_generation: 0,
                event: None,
                unreported_event: None,
            }),
        }
    }

    /// The state of a child made by fork: the parent's actions (handlers included: the child
    /// runs the same program); nothing pending, no stop. The child's thread copies the
    /// parent thread's with [`ThreadSignals::inherit_for_fork`].
    pub fn clone_for_fork(&self) -> Self {
        Self::with_actions(self.shared.lock().actions)
    }

    /// Whether a group stop is in effect (`/proc`'s state `T`).
    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stop.is_some()
    }

    /// The process-wide pending signals, the ignored ones (`SIG_IGN`) and those with a handler,
    /// as masks (bit `n - 1` for signal `n`), for `/proc/PID/status` and `stat`.
    pub fn masks(&self) -> SignalMasks {
        let shared = self.shared.lock();
        let mut masks = SignalMasks {
            pending: shared.pending.set,
            ..SignalMasks::default()
        };
        for (signo, action) in (1..).zip(shared.actions.iter()) {
            match action.handler {
                SIG_DFL => {}
                SIG_IGN => masks.ignored |= sigmask(signo),
                _ => masks.caught |= sigmask(signo),
            }
        }
        masks
    }

    /// How a parent's SIGCHLD action treats its children: whether ended ones are collected at
    /// once, never becoming zombies (`SIG_IGN` or `SA_NOCLDWAIT`), whether the signal is sent
    /// for an end at all (not when ignored), and whether stops and continues send it (not with
    /// `SA_NOCLDSTOP`).
    pub fn child_policy(&self) -> ChildPolicy {
        let action = self.shared.lock().actions[SIGCHLD as usize - 1];
        ChildPolicy {
            collect_at_once: action.handler == SIG_IGN || action.flags & SA_NOCLDWAIT != 0,
            signal_ends: action.handler != SIG_IGN,
            signal_stops: action.flags & SA_NOCLDSTOP == 0,
        }
    }

    /// What exec does to the actions: handled signals revert to `SIG_DFL`, ignored ones stay
    /// ignored; flags, restorers and masks are cleared. Pending signals stay pending, and the
    /// threads' masks stay (see [`ThreadSignals::on_exec`]).
    pub fn on_exec(&self) {
        for action in &mut self.shared.lock().actions {
            let handler = if action.handler == SIG_IGN {
                SIG_IGN
            } else {
                SIG_DFL
            };
            *action = SigAction {
                handler,
                ..SigAction::default()
            };
        }
    }

    /// The job-control change wait4 should report next, if it asks for that kind (`stopped`:
    /// `WUNTRACED`, `continued`: `WCONTINUED`); `consume` takes it (else `WNOWAIT`: it stays).
    pub fn take_job_event(
        &self,
        stopped: bool,
        continued: bool,
        consume: bool,
    ) -> Option<JobEvent> {
        let mut shared = self.shared.lock();
        let event = shared.event?;
        let wanted = match event {
            JobEvent::Stopped(_) => stopped,
            JobEvent::Continued => continued,
        };
        if !wanted {
            return None;
        }
        if consume {
            shared.event = None;
        }
        Some(event)
    }
}

/// A thread's alternate signal stack (`sigaltstack`): base, size and the flags as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AltStack {
    base: u64,
    size: u64,
    flags: u32,
}

impl AltStack {
    const DISABLED: AltStack = AltStack {
        base: 0,
        size: 0,
        flags: SS_DISABLE,
    };

    /// Whether `sp` lies on the stack (its top included).
    fn contains(&self, sp: u64) -> bool {
        sp > self.base && sp - self.base <= self.size
    }

    /// Whether the thread runs on the stack, judged by `sp`: never while `SS_AUTODISARM` is
    /// set (a handler on such a stack has it disarmed; this lets a corrupted stack pointer near
    /// the stack still take a signal).
    fn is_on(&self, sp: u64) -> bool {
        self.flags & SS_AUTODISARM == 0 && self.contains(sp)
    }

    /// The flags `sigaltstack` reports for a thread at `sp`.
    fn reported_flags(&self, sp: u64) -> u32 {
        let state = if self.size == 0 {
            SS_DISABLE
        } else if self.is_on(sp) {
            SS_ONSTACK
        } else {
            0
        };
        state | (self.flags & SS_AUTODISARM)
    }

    /// As `stack_t` (`ss_sp`, `ss_flags`, `ss_size`), with `flags` in the flags field.
    fn to_user(self, flags: u32) -> [u64; 3] {
        [self.base, u64::from(flags), self.size]
    }
}

/// How `restart_syscall` continues a sleep that a signal without a handler interrupted
/// (Linux's restart block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// nanosleep, relative clock_nanosleep: until `deadline` (monotonic ns); the time left
    /// goes to `remaining` (0: nowhere) if interrupted again.
    Sleep { deadline: u64, remaining: u64 },
    /// FUTEX_WAIT with a timeout: on the word at `addr` while it holds `value`, for a
    /// wake-up meeting `bitset`, until `deadline`.
    FutexWait {
        addr: u64,
        value: u32,
        deadline: u64,
        bitset: u32,
    },
    /// poll: the `count` pollfds at `fds`, until `deadline` (`None`: no limit).
    Poll {
        fds: u64,
        count: u64,
        deadline: Option<u64>,
    },
}

/// A thread's own part (under [`ThreadSignals::state`], inside the process's lock).
struct ThreadState {
    blocked: u64,
    /// While `rt_sigtimedwait` sleeps: the mask it unblocked the awaited signals from (Linux's
    /// `real_blocked`), so that they are not fatal or ignored meanwhile.
    waiting_blocked: u64,
    /// The mask to restore on the way back to user mode (`rt_sigsuspend`, `ppoll`,
    /// `pselect6`), or to save in the frame of the handler that runs then.
    saved_mask: Option<u64>,
    pending: Pending,
    alt_stack: AltStack,
    /// The last fault's vector, error code and address (`trapno`, `err`, `cr2` of the
    /// sigcontext).
    fault: [u64; 3],
    restart: Option<Restart>,
    /// The last group stop the thread took part in.
    stop_generation: u64,
}

/// A thread's signal state: mask, thread-directed pending signals, alternate stack. See the
/// module docs.
pub struct ThreadSignals {
    /// Delivery has work before the return to user mode (see the module docs).
    work: AtomicBool,
    state: IrqSpinLock<ThreadState>,
}

impl Default for ThreadSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadSignals {
    /// Nothing blocked or pending, no alternate stack.
    pub fn new() -> Self {
        Self {
            work: AtomicBool::new(false),
            state: IrqSpinLock::new(ThreadState {
                blocked: 0,
                waiting_blocked: 0,
                saved_mask: None,
                pending: Pending::default(),
                alt_stack: AltStack::DISABLED,
                fault: [0; 3],
                restart: None,
                stop_generation: 0,
            }),
        }
    }

    /// The thread's blocked mask and its own pending signals (`/proc`).
    pub fn blocked_and_pending(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.blocked, state.pending.set)
    }

    /// A new thread (`clone`) starts with its creator's mask; no alternate stack. It looks for
    /// signals before it first enters user mode (a group stop may have begun meanwhile).
    pub fn inherit_mask(&self, creator: &ThreadSignals) {
        let blocked = creator.state.lock().blocked;
        self.state.lock().blocked = blocked;
        self.work.store(true, Ordering::Release);
    }

    /// A fork's child thread starts with its parent's mask and alternate stack.
    pub fn inherit_for_fork(&self, parent: &ThreadSignals) {
        let (blocked, alt_stack) = {
            let parent = parent.state.lock();
            (parent.blocked, parent.alt_stack)
        };
        let mut state = self.state.lock();
        state.blocked = blocked;
        state.alt_stack = alt_stack;
    }

    /// The thread that goes on after `execve` (a new task, see `exec::execve`) from the one
    /// that called it, `old`: the mask and the pending signals stay; there is no alternate
    /// stack and no restart block.
    pub fn inherit_for_exec(&self, old: &ThreadSignals) {
        let (blocked, pending) = {
            let mut old = old.state.lock();
            (old.blocked, core::mem::take(&mut old.pending))
        };
        let mut state = self.state.lock();
        state.blocked = blocked;
        state.pending = pending;
        self.work.store(true, Ordering::Release);
    }

    /// Whether delivery has work for the thread (an unblocked signal pending, a group stop to
    /// join); may be stale by the time the caller looks.
    pub fn has_work(&self) -> bool {
        self.work.load(Ordering::Acquire)
    }

    /// Recomputes `work` for the caller's own thread, with both locks held.
    fn recalc(&self, shared: &Shared, state: &ThreadState) {
        let deliverable = (state.pending.set | shared.pending.set) & !state.blocked != 0;
        let stopping = shared.stop.is_some() && state.stop_generation != shared.stop_generation;
        self.work.store(deliverable || stopping, Ordering::Release);
    }
}

fn signals_of(task: &Task) -> &ThreadSignals {
    &task.user.as_ref().expect("a user thread").signals
}

/// The running user thread.
fn current_user() -> &'static UserThread {
    sched::current().user.as_ref().expect("a user thread")
}

/// Wakes `task` and, if it runs on another CPU, interrupts it, so that it looks at its signals
/// (or its `killed` flag) soon. Process context.
pub(crate) fn kick(task: &Arc<Task>) {
    sched::wake(task);
    if task.on_cpu.load(Ordering::Acquire) && !core::ptr::eq(Arc::as_ptr(task), sched::current()) {
        let cpu = task.cpu.load(Ordering::Relaxed);
        if let Some(target) = crate::arch::percpu::cpu(cpu) {
            crate::arch::apic::send_ipi(
                target.apic_id.load(Ordering::Relaxed),
                crate::arch::apic::WAKE_VECTOR,
            );
        }
    }
}

/// Sends `signo` to `process` (process-directed: any thread that does not block it takes it).
/// `info` carries the details (its signal number is replaced by `signo`). Signal 0 only checks
/// that the process exists. `EINVAL` for a number above 64; `EAGAIN` when a real-time signal's
/// queue is full. A process that is exiting takes no more signals (success).
pub fn send_signal_to_process(
    process: &Arc<Process>,
    signo: u32,
    info: SigInfo,
) -> Result<(), Errno> {
    if signo > NSIG {
        return Err(EINVAL);
    }
    if signo == 0 {
        return Ok(());
    }
    send(process, None, info.with_signo(signo))
}

/// Whether an instance of a signal that `matches` waits in `process`'s pending set, or in
/// `thread`'s own when given (a POSIX timer sends its signal again only once it was taken).
pub fn is_queued(
    process: &Process,
    thread: Option<&Task>,
    matches: impl Fn(&SigInfo) -> bool,
) -> bool {
    let shared = process.signals.shared.lock();
    match thread.and_then(|t| t.user.as_ref()) {
        Some(user) => user.signals.state.lock().pending.queue.iter().any(&matches),
        None => shared.pending.queue.iter().any(&matches),
    }
}

/// Sends `signo` to every process of `targets` (a process group, or all): success if one took
/// it, otherwise the last error, `ESRCH` when there is none (Linux's `group_send_sig_info`
/// loop).
pub fn send_signal_to_each(
    targets: &[Arc<Process>],
    signo: u32,
    info: SigInfo,
) -> Result<(), Errno> {
    let mut result = Err(ESRCH);
    for process in targets {
        match send_signal_to_process(process, signo, info) {
            Ok(()) => result = Ok(()),
            Err(error) if result.is_err() => result = Err(error),
            Err(_) => {}
        }
    }
    result
}

/// Sends `signo` to the user thread `task` (thread-directed: only it takes it, though a fatal
/// signal still ends its whole process). As [`send_signal_to_process`] otherwise; `ESRCH` for a
/// kernel thread.
pub fn send_signal_to_thread(task: &Arc<Task>, signo: u32, info: SigInfo) -> Result<(), Errno> {
    if signo > NSIG {
        return Err(EINVAL);
    }
    let process = task.process().ok_or(ESRCH)?;
    if signo == 0 {
        return Ok(());
    }
    send(process, Some(task), info.with_signo(signo))
}

/// Sends `info` to `process`: to `thread`'s own set if given (thread-directed), else to the
/// process's set.
fn send(process: &Arc<Process>, thread: Option<&Arc<Task>>, info: SigInfo) -> Result<(), Errno> {
    if process.is_exiting() {
        return Ok(());
    }
    let signo = info.signo();
    let bit = sigmask(signo);
    let mut kicks: Vec<Arc<Task>> = Vec::new();
    let mut fatal = false;
    let result = {
        let mut shared = process.signals.shared.lock();
        let threads = process.threads();
        // Stop and continue signals cancel each other's pending instances; SIGCONT ends a stop
        // whatever its action.
        let cancelled = if default_action(signo) == DefaultAction::Stop {
            sigmask(SIGCONT)
        } else if signo == SIGCONT {
            STOP_SIGNALS
        } else {
            0
        };
        if cancelled != 0 {
            shared.pending.discard(cancelled);
            for thread in &threads {
                signals_of(thread).state.lock().pending.discard(cancelled);
            }
        }
        if signo == SIGCONT
            && let Some(stop) = shared.stop.take()
        {
            if stop.complete {
                shared.event = Some(JobEvent::Continued);
                shared.unreported_event = shared.event;
            }
            kicks.extend(threads.iter().cloned());
        }
        let action = shared.actions[signo as usize - 1];
        // The thread the signal was sent to (for a process, its first thread) decides whether
        // an ignored signal is dropped: not while it blocks it, as the action may change
        // before it is unblocked.
        let target = thread.or(threads.first());
        let blocked_there = target.is_some_and(|t| {
            let state = signals_of(t).state.lock();
            (state.blocked | state.waiting_blocked) & bit != 0
        });
        if action.ignores(signo) && !blocked_there {
            Ok(())
        } else {
            let added = match thread {
                Some(thread) => signals_of(thread).state.lock().pending.add(info),
                None => shared.pending.add(info),
            };
            if added.is_ok() {
                // The thread to tell: the target if it takes the signal, else (for a process)
                // another that does. None while the process is stopped (but for SIGKILL), or
                // when all block it: it waits in the set until a thread takes it.
                let stopped = shared.stop.is_some() && signo != SIGKILL;
                let wants = |t: &&Arc<Task>| {
                    !stopped && !t.is_killed() && signals_of(t).state.lock().blocked & bit == 0
                };
                let chosen = match thread {
                    Some(thread) => Some(thread).filter(wants),
                    None => target.filter(wants).or_else(|| threads.iter().find(wants)),
                };
                if let Some(chosen) = chosen {
                    let waiting = signals_of(chosen).state.lock().waiting_blocked & bit != 0;
                    if action.kills(signo) && !waiting {
                        fatal = true;
                    } else {
                        signals_of(chosen).work.store(true, Ordering::Release);
                        kicks.push(chosen.clone());
                    }
                }
            }
            added
        }
    };
    for thread in &kicks {
        kick(thread);
    }
    report_job_event(process);
    if fatal {
        log::info!(
            "{}[{}]: killed by signal {signo} ({})",
            process.path(),
            process.pid,
            Name(signo)
        );
        kill_process(process, signo);
    }
    result
}

/// Ends `process` as if by `signo`: every thread is killed (the caller too, if it is one of
/// them) and leaves before it next returns to user mode; the wait status is final.
fn kill_process(process: &Process, signo: u32) {
    process.kill_all_but_current(death_status(signo));
    let me = sched::current();
    if me
        .process()
        .is_some_and(|p| core::ptr::eq(Arc::as_ptr(p), process))
    {
        me.killed.store(true, Ordering::Release);
    }
}

/// The running thread dies of `signo`, and its process with it. Never returns.
fn die(signo: u32) -> ! {
    x86_64::instructions::interrupts::enable();
    super::group_exit(death_status(signo))
}

/// A thread of `process` has exited (and left its thread list): a group stop that waited only
/// for it is complete, and signals it might have taken go to threads that may take them.
pub(super) fn thread_exited(process: &Process) {
    if process.is_exiting() {
        return;
    }
    let mut kicks = Vec::new();
    {
        let mut shared = process.signals.shared.lock();
        let threads = process.threads();
        if let Some(stop) = &mut shared.stop
            && !stop.complete
            && stop.stopped >= threads.len()
        {
            stop.complete = true;
            let signal = stop.signal;
            shared.event = Some(JobEvent::Stopped(signal));
            shared.unreported_event = shared.event;
        }
        let pending = shared.pending.set;
        for thread in threads {
            let signals = signals_of(&thread);
            if pending & !signals.state.lock().blocked != 0 {
                signals.work.store(true, Ordering::Release);
                kicks.push(thread);
            }
        }
    }
    for thread in &kicks {
        kick(thread);
    }
    report_job_event(process);
}

/// Tells `process`'s parent about a job-control change recorded since the last call (all its
/// threads stopped, or a SIGCONT resumed it). Called with no signal lock held: the parent's
/// signal state is locked to send it SIGCHLD.
pub(super) fn report_job_event(process: &Process) {
    let event = process.signals.shared.lock().unreported_event.take();
    if let Some(event) = event {
        super::job_control_changed(process, event);
    }
}

/// Runs `f` on the running thread's signal state with both locks held, then recomputes its
/// `work` and kicks the threads `f` asked for.
fn with_current<R>(
    f: impl FnOnce(&Process, &mut Shared, &mut ThreadState, &mut Vec<Arc<Task>>) -> R,
) -> R {
    let user = current_user();
    let mut kicks = Vec::new();
    let result = {
        let mut shared = user.process.signals.shared.lock();
        let mut state = user.signals.state.lock();
        let result = f(&user.process, &mut shared, &mut state, &mut kicks);
        user.signals.recalc(&shared, &state);
        result
    };
    for task in &kicks {
        kick(task);
    }
    result
}

/// Gives the running thread the mask `mask` (SIGKILL and SIGSTOP never blocked). Signals of the
/// process it now blocks go to other threads that take them (Linux's retargeting).
fn set_blocked(
    process: &Process,
    shared: &Shared,
    state: &mut ThreadState,
    mask: u64,
    kicks: &mut Vec<Arc<Task>>,
) {
    let mask = mask & !UNBLOCKABLE;
    let newly_blocked = mask & !state.blocked;
    state.blocked = mask;
    let orphans = shared.pending.set & newly_blocked;
    if orphans == 0 {
        return;
    }
    let me = sched::current();
    for thread in process.threads() {
        if core::ptr::eq(Arc::as_ptr(&thread), me) {
            continue;
        }
        let signals = signals_of(&thread);
        if orphans & !signals.state.lock().blocked != 0 {
            signals.work.store(true, Ordering::Release);
            kicks.push(thread);
        }
    }
}

/// `rt_sigaction` for the running thread's process: sets signal `signo`'s action to `new`, if
/// given, and returns the old one. Making a signal ignored drops its pending instances.
pub fn set_action(signo: u32, new: Option<SigAction>) -> SigAction {
    with_current(|process, shared, state, _| {
        let slot = signo as usize - 1;
        let old = shared.actions[slot];
        if let Some(mut new) = new {
            new.flags &= SA_KNOWN;
            new.mask &= !UNBLOCKABLE;
            shared.actions[slot] = new;
            if new.ignores(signo) {
                let bit = sigmask(signo);
                shared.pending.discard(bit);
                state.pending.discard(bit);
                let me = sched::current();
                for thread in process.threads() {
                    if !core::ptr::eq(Arc::as_ptr(&thread), me) {
                        signals_of(&thread).state.lock().pending.discard(bit);
                    }
                }
            }
        }
        old
    })
}

/// How `rt_sigprocmask` changes the mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskChange {
    Block,
    Unblock,
    Set,
}

/// `rt_sigprocmask` for the running thread: changes its mask, if asked, and returns the old one.
pub fn change_mask(change: Option<(MaskChange, u64)>) -> u64 {
    with_current(|process, shared, state, kicks| {
        let old = state.blocked;
        if let Some((how, set)) = change {
            let new = match how {
                MaskChange::Block => old | set,
                MaskChange::Unblock => old & !set,
                MaskChange::Set => set,
            };
            set_blocked(process, shared, state, new, kicks);
        }
        old
    })
}

/// Whether the running thread blocks `signo` or its process ignores it with `SIG_IGN` (Linux's
/// `is_ignored`, which the terminal's job-control checks ask).
pub fn blocked_or_ignored(signo: u32) -> bool {
    with_current(|_, shared, state, _| {
        state.blocked & sigmask(signo) != 0 || shared.actions[signo as usize - 1].handler == SIG_IGN
    })
}

/// `rt_sigpending`: the signals pending for the running thread (its own and its process's)
/// that it blocks.
pub fn blocked_pending() -> u64 {
    with_current(|_, shared, state, _| (state.pending.set | shared.pending.set) & state.blocked)
}

/// `rt_sigsuspend`: waits with `mask` in place of the running thread's mask until a signal is
/// delivered; the way back restores the mask (after the handler, through its frame). Returns the
/// restart code: `EINTR` once a handler ran, a restart otherwise.
pub fn suspend(mask: u64) -> Errno {
    set_temporary_mask(mask);
    pause()
}

/// Puts `mask` in place of the running thread's mask for one call (`rt_sigsuspend`, `ppoll`,
/// `pselect6`: Linux's `set_user_sigmask`). The old mask comes back with
/// [`restore_temporary_mask`], or, when a signal interrupted the call, on the way back to user
/// mode: after the handler (its frame keeps the old mask), or at once if none runs.
pub fn set_temporary_mask(mask: u64) {
    with_current(|process, shared, state, kicks| {
        state.saved_mask = Some(state.blocked);
        set_blocked(process, shared, state, mask, kicks);
    });
}

/// Puts back the mask [`set_temporary_mask`] replaced: the call ends without a signal to
/// deliver.
pub fn restore_temporary_mask() {
    with_current(|process, shared, state, kicks| {
        if let Some(mask) = state.saved_mask.take() {
            set_blocked(process, shared, state, mask, kicks);
        }
    });
}

/// `pause`: waits until a signal is delivered (see [`suspend`]).
pub fn pause() -> Errno {
    while sched::timer::sleep_until(u64::MAX).is_ok() {}
    ERESTARTNOHAND
}

/// `rt_sigtimedwait`: takes a pending signal of `set` (not SIGKILL or SIGSTOP) for the running
/// thread, waiting up to `timeout` ns (`None`: no limit) for one. `EAGAIN` when none came in
/// time, `EINTR` when another signal interrupted the wait.
pub fn wait_for(set: u64, timeout: Option<u64>) -> Result<SigInfo, Errno> {
    let wanted = set & !UNBLOCKABLE;
    let deadline = timeout.map_or(u64::MAX, |ns| crate::time::now_ns().saturating_add(ns));
    let taken = with_current(|_, shared, state, _| {
        let info = take_from(shared, state, wanted);
        if info.is_none() && timeout != Some(0) {
            // Asleep, the awaited signals must reach this thread: unblock them meanwhile.
            state.waiting_blocked = state.blocked;
            state.blocked &= !wanted;
        }
        info
    });
    if let Some(info) = taken {
        return Ok(info);
    }
    if timeout == Some(0) {
        return Err(EAGAIN);
    }
    let slept = sched::timer::sleep_until(deadline);
    let taken = with_current(|process, shared, state, kicks| {
        let mask = core::mem::take(&mut state.waiting_blocked);
        set_blocked(process, shared, state, mask, kicks);
        take_from(shared, state, wanted)
    });
    match (taken, slept) {
        (Some(info), _) => Ok(info),
        (None, Ok(())) => Err(EAGAIN),
        (None, Err(_)) => Err(EINTR),
    }
}

/// Takes a pending signal of `wanted` (the thread's own first).
fn take_from(shared: &mut Shared, state: &mut ThreadState, wanted: u64) -> Option<SigInfo> {
    if let Some(signo) = next_signal(state.pending.set & wanted) {
        return Some(state.pending.take(signo));
    }
    let signo = next_signal(shared.pending.set & wanted)?;
    Some(shared.pending.take(signo))
}

/// `sigaltstack` for the running thread at user stack pointer `sp`: returns the old stack (as
/// `stack_t`) and installs `new`, if given. `EPERM` while the thread runs on its alternate
/// stack, `EINVAL` for bad flags, `ENOMEM` for a stack smaller than `MINSIGSTKSZ`.
pub fn alt_stack(new: Option<[u64; 3]>, sp: u64) -> Result<[u64; 3], Errno> {
    with_current(|_, _, state, _| {
        let current = state.alt_stack;
        let old = current.to_user(current.reported_flags(sp));
        if let Some([base, flags, size]) = new {
            let flags = flags as u32;
            if current.is_on(sp) {
                return Err(EPERM);
            }
            let mode = flags & !SS_AUTODISARM;
            if mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE {
                return Err(EINVAL);
            }
            state.alt_stack = if mode == SS_DISABLE {
                AltStack {
                    base: 0,
                    size: 0,
                    flags,
                }
            } else if size < MINSIGSTKSZ {
                return Err(ENOMEM);
            } else {
                AltStack { base, size, flags }
            };
        }
        Ok(old)
    })
}

/// Keeps how `restart_syscall` continues the running thread's interrupted call.
pub fn set_restart(restart: Restart) {
    current_user().signals.state.lock().restart = Some(restart);
}

/// `restart_syscall`: what to continue (once), if anything.
pub fn take_restart() -> Option<Restart> {
    current_user().signals.state.lock().restart.take()
}
