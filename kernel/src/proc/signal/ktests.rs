//! In-kernel tests of the signal state (queues, fork and exec inheritance) and of what only the
//! kernel can do to a process from outside: stop it, continue it, kill it with a signal.

use alloc::sync::Arc;

use super::queue::{Pending, next_signal};
use super::{
    AltStack, JobEvent, ProcessSignals, SA_RESTART, SA_SIGINFO, SI_KERNEL, SI_USER, SIG_IGN,
    SIGCONT, SIGKILL, SIGQUIT, SIGSEGV, SIGSTOP, SigAction, SigInfo, ThreadSignals,
    send_signal_to_process, sigmask,
};
use crate::ktest;
use crate::proc::Process;
use crate::proc::exec::{SpawnOptions, spawn};
use crate::syscall::errno::EAGAIN;

const SIGUSR1: u32 = 10;
const SIGUSR2: u32 = 12;
const SIGTERM: u32 = 15;

ktest! {
    /// Standard signals are pending once; real-time ones queue with their siginfo, in order;
    /// a full queue refuses real-time signals unless kill sent them.
    fn pending_sets_queue_real_time_signals_only() {
        let mut pending = Pending::default();
        let from = |signo, pid| SigInfo::from_sender(signo, SI_USER, pid, 0);
        pending.add(from(SIGUSR1, 1)).unwrap();
        pending.add(from(SIGUSR1, 2)).unwrap();
        for pid in [3, 4, 5] {
            pending.add(from(40, pid)).unwrap();
        }
        assert_eq!(pending.set, sigmask(SIGUSR1) | sigmask(40));
        assert_eq!(pending.take(SIGUSR1), from(SIGUSR1, 1));
        assert_eq!(pending.set, sigmask(40));
        for pid in [3, 4, 5] {
            assert_eq!(pending.take(40), from(40, pid));
        }
        assert_eq!(pending.set, 0);
        for i in 0..super::queue::MAX_QUEUED {
            pending.add(from(33, i as u32)).unwrap();
        }
        let queued = SigInfo::new(34, -1, [0; 4]);
        assert_eq!(pending.add(queued), Err(EAGAIN));
        // From kill: pending all the same, without its siginfo.
        pending.add(from(35, 9)).unwrap();
        assert_eq!(pending.take(35), from(35, 0));
        pending.discard(sigmask(33));
        assert_eq!((pending.set, pending.queue.len()), (0, 0));
    }
}

ktest! {
    /// Faults come before other signals, then the lowest number.
    fn synchronous_signals_first_then_lowest() {
        assert_eq!(next_signal(0), None);
        assert_eq!(next_signal(sigmask(40) | sigmask(SIGUSR1)), Some(SIGUSR1));
        assert_eq!(next_signal(sigmask(1) | sigmask(SIGSEGV)), Some(SIGSEGV));
    }
}

ktest! {
    /// fork copies the actions (nothing pending) and the thread's mask and alternate stack;
    /// exec sends handled signals back to SIG_DFL, keeps ignored ones ignored, clears flags,
    /// masks and restorers, drops the alternate stack and keeps the mask.
    fn fork_and_exec_inheritance() {
        let parent = ProcessSignals::new();
        let handler = SigAction {
            handler: 0x40_1000,
            flags: SA_SIGINFO | SA_RESTART,
            restorer: 0x40_2000,
            mask: sigmask(SIGUSR2),
        };
        let ignored = SigAction { handler: SIG_IGN, flags: SA_RESTART, restorer: 0, mask: 1 };
        {
            let mut shared = parent.shared.lock();
            shared.actions[SIGUSR1 as usize - 1] = handler;
            shared.actions[SIGUSR2 as usize - 1] = ignored;
            shared.pending.add(SigInfo::new(SIGTERM, SI_KERNEL, [0; 4])).unwrap();
        }
        let child = parent.clone_for_fork();
        {
            let shared = child.shared.lock();
            assert_eq!(shared.actions, parent.shared.lock().actions);
            assert_eq!(shared.pending.set, 0);
        }
        child.on_exec();
        {
            let shared = child.shared.lock();
            assert_eq!(shared.actions[SIGUSR1 as usize - 1], SigAction::default());
            assert_eq!(
                shared.actions[SIGUSR2 as usize - 1],
                SigAction { handler: SIG_IGN, ..SigAction::default() }
            );
        }

        let thread = ThreadSignals::new();
        let alt = AltStack { base: 0x7000_0000, size: 8192, flags: 0 };
        {
            let mut state = thread.state.lock();
            state.blocked = sigmask(SIGUSR1);
            state.alt_stack = alt;
        }
        let forked = ThreadSignals::new();
        forked.inherit_for_fork(&thread);
        {
            let state = forked.state.lock();
            assert_eq!((state.blocked, state.alt_stack), (sigmask(SIGUSR1), alt));
        }
        forked
            .state
            .lock()
            .pending
            .add(SigInfo::new(SIGUSR2, SI_KERNEL, [0; 4]))
            .unwrap();
        let exec = ThreadSignals::new();
        exec.inherit_for_exec(&forked);
        let state = exec.state.lock();
        assert_eq!((state.blocked, state.alt_stack), (sigmask(SIGUSR1), AltStack::DISABLED));
        assert_eq!(state.pending.set, sigmask(SIGUSR2), "pending signals survive execve");
    }
}

/// Starts `/bin/faulter sleep MS`: two threads that sleep, then exit 0.
fn sleeper(ms: u64) -> Arc<Process> {
    let ms = alloc::format!("{ms}");
    spawn(
        "/bin/faulter",
        &[b"/bin/faulter", b"sleep", ms.as_bytes()],
        SpawnOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn kernel_signal(process: &Arc<Process>, signo: u32) {
    send_signal_to_process(process, signo, SigInfo::new(signo, SI_KERNEL, [0; 4]))
        .expect("the signal is sent");
}

/// Waits up to 10 s for the process's next job-control event.
fn job_event(process: &Process) -> Option<JobEvent> {
    for _ in 0..1000 {
        if let Some(event) = process.signals.take_job_event(true, true, true) {
            return Some(event);
        }
        let _ = crate::sched::timer::sleep_ns(10_000_000);
    }
    None
}

ktest! {
    timeout_ms = 120_000;
    /// SIGSTOP stops every thread of a process (sleeping ones too), SIGCONT lets it go on —
    /// the interrupted sleeps continue to their deadlines — and it exits normally; both changes
    /// are recorded for wait, with wait4's statuses.
    fn stop_and_continue_a_process() {
        let process = sleeper(1500);
        let _ = crate::sched::timer::sleep_ns(200_000_000);
        kernel_signal(&process, SIGSTOP);
        let stopped = job_event(&process);
        assert_eq!(stopped, Some(JobEvent::Stopped(SIGSTOP)));
        assert_eq!(stopped.map(JobEvent::wait_status), Some(0x137f));
        let asleep = || {
            process.threads().iter().all(|t| t.sched.lock().state == crate::sched::SLEEPING)
        };
        for _ in 0..100 {
            if asleep() {
                break;
            }
            let _ = crate::sched::timer::sleep_ns(10_000_000);
        }
        assert!(asleep(), "a thread of the stopped process still runs");
        kernel_signal(&process, SIGCONT);
        let continued = job_event(&process);
        assert_eq!(continued.map(JobEvent::wait_status), Some(0xffff));
        assert!(process.exited.wait_timeout(30_000_000_000), "the sleeper never ended");
        assert_eq!(process.wait_status(), 0, "the sleeper failed after SIGCONT");
    }
}

ktest! {
    timeout_ms = 120_000;
    /// Default actions from outside: SIGTERM terminates (wait status 15, shown as 143), SIGQUIT
    /// terminates with the core flag (0x83, 131), SIGKILL ends a stopped process.
    fn fatal_signals_end_processes_with_their_status() {
        for (signo, wait_status, exit_status) in
            [(SIGTERM, 15, 143), (SIGQUIT, 0x83, 131), (SIGKILL, 9, 137)]
        {
            let process = sleeper(60_000);
            let _ = crate::sched::timer::sleep_ns(100_000_000);
            if signo == SIGKILL {
                kernel_signal(&process, SIGSTOP);
                assert_eq!(job_event(&process), Some(JobEvent::Stopped(SIGSTOP)));
            }
            kernel_signal(&process, signo);
            assert!(process.exited.wait_timeout(30_000_000_000), "signal {signo} did not end it");
            assert_eq!(process.wait_status(), wait_status, "signal {signo}");
            assert_eq!(process.exit_status(), exit_status, "signal {signo}");
        }
    }
}
