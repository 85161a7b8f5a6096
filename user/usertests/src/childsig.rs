//! Signals between a parent and its children: SIGCHLD and its siginfo at a child's end, stop
//! and continue; `SIG_IGN` and `SA_NOCLDWAIT` (no zombies), `SA_NOCLDSTOP`; wait4 and waitid
//! reporting stops and continues; kill of process groups, zombies and collected pids; waits
//! interrupted by a handler; what fork and execve keep of the signal state.
//!
//! Under Linux this program is /init, which takes only the signals it handles: no test sends
//! the caller a signal it does not handle, and `kill(0, ...)` is made only by children in a
//! group of their own. Each test puts back the actions and the mask it changed (`Saved`).

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering::SeqCst};

use urt::ktap::TestResult;
use urt::signal::{
    self as sig, SA_NOCLDSTOP, SA_NOCLDWAIT, SA_RESTART, SA_SIGINFO, SIG_BLOCK, SIG_DFL, SIG_IGN,
    SIGCHLD, SIGCONT, SIGINT, SIGKILL, SIGSTOP, SIGTERM, SIGTSTP, SIGUSR1, SIGUSR2, SigInfo,
    UContext, sigmask,
};
use urt::sys::{self, Errno, Siginfo};
use urt::{check, check_eq, check_err, check_ok, skip};

use crate::process::{Child, End, NO_PID, Shared, Strings, eventually, faulter};
use crate::signals::Saved;

/// What the SIGCHLD handler saw last, and how many times it ran.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static CODE: AtomicI32 = AtomicI32::new(0);
static PID: AtomicU32 = AtomicU32::new(0);
static UID: AtomicU32 = AtomicU32::new(u32::MAX);
static STATUS: AtomicI32 = AtomicI32::new(0);

fn reset() {
    COUNT.store(0, SeqCst);
    CODE.store(0, SeqCst);
    PID.store(0, SeqCst);
    UID.store(u32::MAX, SeqCst);
    STATUS.store(0, SeqCst);
}

/// Records SIGCHLD's siginfo: `si_code`, `si_pid`, `si_uid` and `si_status`.
extern "C" fn on_sigchld(_signo: i32, info: *mut SigInfo, _uc: *mut UContext) {
    // SAFETY: the kernel passes a valid siginfo (on the signal frame) in RSI.
    let info = unsafe { &*info };
    CODE.store(info.code, SeqCst);
    PID.store(info.pid(), SeqCst);
    UID.store(info.uid(), SeqCst);
    STATUS.store(info.fields[1] as u32 as i32, SeqCst);
    COUNT.fetch_add(1, SeqCst);
}

/// Counts the signals it takes (SIGUSR1 in the interrupted waits).
static TAKEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count(_signo: i32, _info: *mut SigInfo, _uc: *mut UContext) {
    TAKEN.fetch_add(1, SeqCst);
}

/// Waits (10 s at most) until the SIGCHLD handler ran `n` times in all.
fn sigchld_count_reaches(n: usize) -> bool {
    eventually(|| COUNT.load(SeqCst) >= n)
}

/// The SIGCHLD handler's last record: (si_code, si_pid, si_status).
fn last_sigchld() -> (i32, usize, i32) {
    (
        CODE.load(SeqCst),
        PID.load(SeqCst) as usize,
        STATUS.load(SeqCst),
    )
}

/// Drops the pending instances of a signal the test blocked (by ignoring it for a moment)
/// before `Saved`, declared earlier, puts back its action and the mask: a stray one must not
/// reach a default action when the mask is restored.
struct Discard(usize);

impl Drop for Discard {
    fn drop(&mut self) {
        let _ = sig::set_disposition(self.0, SIG_IGN);
    }
}

/// A child that runs until word 0 of `shared` is 1 (10 s at most), then exits with `code`.
fn child_until_told(shared: &Shared, code: i32) -> Result<Child, Errno> {
    Child::fork(|| {
        if eventually(|| shared.word(0).load(SeqCst) == 1) {
            code
        } else {
            99
        }
    })
}

/// `wait4(pid, &status, options)` once (no retry after EINTR): the pid and the raw status.
fn wait4_once(pid: usize, options: usize) -> Result<(usize, i32), Errno> {
    let mut status = 0i32;
    let got = sys::wait4(pid, &raw mut status as usize, options, 0)?;
    Ok((got, status))
}

pub fn sigchld_handler_sees_exit_and_kill() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGCHLD, on_sigchld, SA_SIGINFO | SA_RESTART, 0)?;
    reset();
    let mut child = check_ok!(Child::fork(|| 42));
    check_eq!(check_ok!(child.end()), End::Exited(42));
    check!(sigchld_count_reaches(1), "no SIGCHLD for an exit");
    check_eq!(
        last_sigchld(),
        (sys::CLD_EXITED, child.pid, 42),
        "(si_code, si_pid, si_status) of an exit"
    );
    check_eq!(UID.load(SeqCst) as usize, sys::getuid(), "si_uid");

    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(child_until_told(&shared, 0));
    check_ok!(sys::kill(child.pid, SIGTERM));
    check_eq!(check_ok!(child.end()), End::Killed(SIGTERM as i32));
    check!(
        sigchld_count_reaches(2),
        "no SIGCHLD for a death by SIGTERM"
    );
    check_eq!(
        last_sigchld(),
        (sys::CLD_KILLED, child.pid, SIGTERM as i32),
        "(si_code, si_pid, si_status) of a death by SIGTERM"
    );
    check_eq!(COUNT.load(SeqCst), 2, "one SIGCHLD per child");
    Ok(())
}

pub fn sigchld_ignored_leaves_no_zombie() -> TestResult {
    let mut saved = Saved::new();
    saved.dispose(SIGCHLD, SIG_IGN)?;
    let start = sys::monotonic_ns();
    let child = check_ok!(Child::fork(|| {
        sys::sleep_ns(100_000_000);
        3
    }));
    let mut child = child;
    // The wait sleeps until the child is gone, then finds nothing to collect.
    check_err!(wait4_once(child.pid, 0), Errno::ECHILD);
    child.collected = true;
    check!(
        sys::monotonic_ns() - start >= 50_000_000,
        "wait4 returned before the child ended"
    );
    check_err!(wait4_once(usize::MAX, sys::WNOHANG), Errno::ECHILD);
    check!(
        eventually(|| sys::kill(child.pid, 0) == Err(Errno::ESRCH)),
        "the ended child still exists (a zombie)"
    );
    Ok(())
}

pub fn sa_nocldwait_leaves_no_zombie_but_signals() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGCHLD, on_sigchld, SA_SIGINFO | SA_NOCLDWAIT, 0)?;
    reset();
    let mut child = check_ok!(Child::fork(|| {
        sys::sleep_ns(50_000_000);
        5
    }));
    check_err!(wait4_once(child.pid, 0), Errno::ECHILD);
    child.collected = true;
    check!(
        sigchld_count_reaches(1),
        "no SIGCHLD with SA_NOCLDWAIT and a handler"
    );
    check_eq!(last_sigchld(), (sys::CLD_EXITED, child.pid, 5));
    check!(
        eventually(|| sys::kill(child.pid, 0) == Err(Errno::ESRCH)),
        "the ended child still exists (a zombie)"
    );
    check_err!(wait4_once(usize::MAX, sys::WNOHANG), Errno::ECHILD);
    Ok(())
}

pub fn stop_and_continue_wait4_and_sigchld() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGCHLD, on_sigchld, SA_SIGINFO | SA_RESTART, 0)?;
    reset();
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(child_until_told(&shared, 7));
    check_ok!(sys::kill(child.pid, SIGSTOP));
    let (got, status) = check_ok!(wait4_once(child.pid, sys::WUNTRACED));
    check_eq!(got, child.pid);
    check_eq!(status & 0xff, 0x7f, "WIFSTOPPED: status {status:#x}");
    check_eq!((status >> 8) & 0xff, SIGSTOP as i32, "WSTOPSIG");
    check!(sigchld_count_reaches(1), "no SIGCHLD for the stop");
    check_eq!(
        last_sigchld(),
        (sys::CLD_STOPPED, child.pid, SIGSTOP as i32)
    );
    // Reported once.
    check_eq!(
        wait4_once(child.pid, sys::WUNTRACED | sys::WNOHANG),
        Ok((0, 0))
    );

    check_ok!(sys::kill(child.pid, SIGCONT));
    let (got, status) = check_ok!(wait4_once(child.pid, sys::WCONTINUED));
    check_eq!(got, child.pid);
    check_eq!(status, 0xffff, "WIFCONTINUED");
    check!(sigchld_count_reaches(2), "no SIGCHLD for the continue");
    check_eq!(
        last_sigchld(),
        (sys::CLD_CONTINUED, child.pid, SIGCONT as i32)
    );
    check_eq!(
        wait4_once(child.pid, sys::WCONTINUED | sys::WNOHANG),
        Ok((0, 0))
    );

    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(7));
    check!(sigchld_count_reaches(3), "no SIGCHLD for the exit");
    check_eq!(last_sigchld(), (sys::CLD_EXITED, child.pid, 7));
    Ok(())
}

pub fn sa_nocldstop_only_ends_signal() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(
        SIGCHLD,
        on_sigchld,
        SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP,
        0,
    )?;
    reset();
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(child_until_told(&shared, 0));
    check_ok!(sys::kill(child.pid, SIGSTOP));
    let (_, status) = check_ok!(wait4_once(child.pid, sys::WUNTRACED));
    check_eq!(status, 0x137f, "stopped by SIGSTOP");
    check_ok!(sys::kill(child.pid, SIGCONT));
    let (_, status) = check_ok!(wait4_once(child.pid, sys::WCONTINUED));
    check_eq!(status, 0xffff);
    // Time for a SIGCHLD that should not come.
    sys::sleep_ns(20_000_000);
    check_eq!(COUNT.load(SeqCst), 0, "SIGCHLD for a stop or continue");
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check!(sigchld_count_reaches(1), "no SIGCHLD for the exit");
    check_eq!(last_sigchld(), (sys::CLD_EXITED, child.pid, 0));
    Ok(())
}

/// `waitid(P_PID, pid, &info, options)`.
fn waitid_pid(pid: usize, options: usize) -> Result<Siginfo, Errno> {
    let mut info = Siginfo::filled(0x5a);
    sys::waitid(sys::P_PID, pid, &raw mut info as usize, options, 0)?;
    Ok(info)
}

pub fn waitid_stopped_and_continued() -> TestResult {
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(child_until_told(&shared, 0));
    // (Not SIGTSTP: Linux discards it in an orphaned process group, as this child's is
    // under Linux's /init.)
    check_ok!(sys::kill(child.pid, SIGSTOP));
    // WNOWAIT leaves the stop to be reported again.
    for options in [sys::WSTOPPED | sys::WNOWAIT, sys::WSTOPPED] {
        let info = check_ok!(waitid_pid(child.pid, options));
        check_eq!(info.signo, SIGCHLD as i32);
        check_eq!(
            info.code,
            sys::CLD_STOPPED,
            "si_code (options {options:#x})"
        );
        check_eq!(info.pid, child.pid as i32);
        check_eq!(info.status, SIGSTOP as i32, "si_status: the stop signal");
    }
    let info = check_ok!(waitid_pid(child.pid, sys::WSTOPPED | sys::WNOHANG));
    check_eq!(
        (info.signo, info.pid),
        (0, 0),
        "a stop is reported once: nothing left"
    );

    check_ok!(sys::kill(child.pid, SIGCONT));
    let info = check_ok!(waitid_pid(child.pid, sys::WCONTINUED));
    check_eq!(info.signo, SIGCHLD as i32);
    check_eq!(info.code, sys::CLD_CONTINUED);
    check_eq!(info.pid, child.pid as i32);
    check_eq!(info.status, SIGCONT as i32, "si_status of a continue");
    let info = check_ok!(waitid_pid(child.pid, sys::WCONTINUED | sys::WNOHANG));
    check_eq!((info.signo, info.pid), (0, 0));

    shared.word(0).store(1, SeqCst);
    let info = check_ok!(waitid_pid(child.pid, sys::WEXITED));
    child.collected = true;
    check_eq!((info.code, info.status), (sys::CLD_EXITED, 0));
    Ok(())
}

/// A child in process group `pgid` (0: a group of its own) that blocks SIGUSR1 (inherited)
/// and exits with 1 once SIGUSR1 is pending, or 0 once word 0 of `shared` is 1.
fn group_member(shared: &Shared, pgid: usize) -> Result<Child, Errno> {
    let child = Child::fork(|| {
        if sys::setpgid(0, pgid).is_err() {
            return 90;
        }
        let signalled = || sig::pending().is_ok_and(|p| p & sigmask(SIGUSR1) != 0);
        if !eventually(|| signalled() || shared.word(0).load(SeqCst) == 1) {
            return 99;
        }
        i32::from(signalled())
    })?;
    // Both set the group, so that it is set when fork returns here.
    let pgid = if pgid == 0 { child.pid } else { pgid };
    sys::setpgid(child.pid, pgid)?;
    Ok(child)
}

pub fn kill_negative_pgid_signals_the_group() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, count, 0, 0)?;
    let _discard = Discard(SIGUSR1);
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    let shared = check_ok!(Shared::new());
    let mut leader = check_ok!(group_member(&shared, 0));
    let mut member = check_ok!(group_member(&shared, leader.pid));
    let mut other = check_ok!(group_member(&shared, 0));
    check_eq!(sys::kill(0usize.wrapping_sub(leader.pid), SIGUSR1), Ok(0));
    // The others never get it: they exit 0 when told to.
    sys::sleep_ns(20_000_000);
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(leader.end()), End::Exited(1), "the leader");
    check_eq!(check_ok!(member.end()), End::Exited(1), "the member");
    check_eq!(check_ok!(other.end()), End::Exited(0), "another group");
    check_eq!(
        sig::pending().map(|p| p & sigmask(SIGUSR1)),
        Ok(0),
        "the caller is not in the group"
    );
    // Nobody is left in the group.
    check_err!(
        sys::kill(0usize.wrapping_sub(leader.pid), SIGUSR1),
        Errno::ESRCH
    );
    check_err!(sys::kill(0usize.wrapping_sub(NO_PID), 0), Errno::ESRCH);
    Ok(())
}

pub fn kill_zero_signals_the_callers_group() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, count, 0, 0)?;
    let _discard = Discard(SIGUSR1);
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    let shared = check_ok!(Shared::new());
    let mut member = check_ok!(group_member(&shared, 0));
    let group = member.pid;
    let mut other = check_ok!(group_member(&shared, 0));
    // A second member sends to its own group (0) once told, then waits like the others.
    let mut sender = check_ok!(Child::fork(|| {
        if sys::setpgid(0, group).is_err() {
            return 90;
        }
        if !eventually(|| shared.word(1).load(SeqCst) == 1) {
            return 99;
        }
        if sys::kill(0, SIGUSR1).is_err() {
            return 91;
        }
        let got = eventually(|| sig::pending().is_ok_and(|p| p & sigmask(SIGUSR1) != 0));
        i32::from(got)
    }));
    check_ok!(sys::setpgid(sender.pid, group));
    shared.word(1).store(1, SeqCst);
    check_eq!(
        check_ok!(sender.end()),
        End::Exited(1),
        "the sender is in the group"
    );
    sys::sleep_ns(20_000_000);
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(member.end()), End::Exited(1), "the other member");
    check_eq!(check_ok!(other.end()), End::Exited(0), "another group");
    check_eq!(sig::pending().map(|p| p & sigmask(SIGUSR1)), Ok(0));
    Ok(())
}

pub fn kill_zombie_then_collected() -> TestResult {
    let mut child = check_ok!(Child::fork(|| {
        if sys::setpgid(0, 0).is_err() {
            return 90;
        }
        4
    }));
    // A zombie: ended, not yet collected (WNOWAIT).
    let mut info = Siginfo::filled(0);
    check_ok!(sys::waitid(
        sys::P_PID,
        child.pid,
        &raw mut info as usize,
        sys::WEXITED | sys::WNOWAIT,
        0
    ));
    check_eq!((info.code, info.status), (sys::CLD_EXITED, 4));
    check_eq!(sys::kill(child.pid, SIGKILL), Ok(0), "kill of a zombie");
    check_eq!(sys::kill(child.pid, 0), Ok(0));
    check_eq!(
        sys::kill(0usize.wrapping_sub(child.pid), SIGTERM),
        Ok(0),
        "kill of a group of zombies"
    );
    // The signals changed nothing: it still ended with 4.
    check_eq!(check_ok!(child.end()), End::Exited(4));
    check_err!(sys::kill(child.pid, SIGKILL), Errno::ESRCH);
    check_err!(sys::kill(child.pid, 0), Errno::ESRCH);
    check_err!(sys::kill(0usize.wrapping_sub(child.pid), 0), Errno::ESRCH);
    Ok(())
}

/// A child that sends its parent SIGUSR1 after 50 ms, then exits 0 once word 0 of `shared`
/// is 1 (`wait_to_exit`) or at once.
fn signal_parent_later(shared: &Shared, wait_to_exit: bool) -> Result<Child, Errno> {
    let parent = sys::getpid();
    Child::fork(move || {
        sys::sleep_ns(50_000_000);
        if sys::kill(parent, SIGUSR1).is_err() {
            return 91;
        }
        if wait_to_exit && !eventually(|| shared.word(0).load(SeqCst) == 1) {
            return 99;
        }
        0
    })
}

pub fn wait4_interrupted_by_a_handler() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, count, 0, 0)?;
    TAKEN.store(0, SeqCst);
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(signal_parent_later(&shared, true));
    check_err!(wait4_once(child.pid, 0), Errno::EINTR);
    check_eq!(TAKEN.load(SeqCst), 1, "the handler ran");
    check_eq!(
        wait4_once(child.pid, sys::WNOHANG),
        Ok((0, 0)),
        "the child is still running"
    );
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    Ok(())
}

pub fn wait4_restarts_under_sa_restart() -> TestResult {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, count, SA_RESTART, 0)?;
    TAKEN.store(0, SeqCst);
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(signal_parent_later(&shared, false));
    let (got, status) = check_ok!(wait4_once(child.pid, 0));
    child.collected = true;
    check_eq!(got, child.pid, "the restarted wait4 returns the child");
    check_eq!(status, 0);
    check_eq!(TAKEN.load(SeqCst), 1, "the handler ran");
    Ok(())
}

pub fn fork_keeps_handlers_and_mask_not_pending() -> TestResult {
    static IN_CHILD: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn mark(_signo: i32, _info: *mut SigInfo, _uc: *mut UContext) {
        IN_CHILD.fetch_add(1, SeqCst);
    }
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, mark, SA_SIGINFO, 0)?;
    saved.handle(SIGUSR2, count, 0, 0)?;
    let _discard = Discard(SIGUSR2);
    check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR2)));
    check_ok!(sig::raise(SIGUSR2));
    check_eq!(
        sig::pending().map(|p| p & sigmask(SIGUSR2)),
        Ok(sigmask(SIGUSR2))
    );
    IN_CHILD.store(0, SeqCst);
    let mut child = check_ok!(Child::fork(|| {
        if sig::pending().map(|p| p & sigmask(SIGUSR2)) != Ok(0) {
            return 1;
        }
        if sig::blocked() & sigmask(SIGUSR2) == 0 {
            return 2;
        }
        if sig::raise(SIGUSR1).is_err() || IN_CHILD.load(SeqCst) != 1 {
            return 3;
        }
        0
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "1: a pending signal was copied, 2: the mask was not, 3: the handler did not run"
    );
    check_eq!(IN_CHILD.load(SeqCst), 0, "the handler ran in the parent");
    Ok(())
}

pub fn execve_resets_handlers_keeps_ignored_mask_pending() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    // Each case: what the child sets up before it execs `faulter sigstate SIG`, and the exit
    // status that says how SIG stands after the exec.
    let state = |signo: usize, setup: fn() -> bool| -> Result<End, Errno> {
        let arg = alloc::format!("{signo}");
        let argv = Strings::new(&["faulter", "sigstate", arg.as_str()]);
        Child::fork(|| {
            if !setup() {
                return 100;
            }
            let _ = sys::execve(path.as_ptr() as usize, argv.ptr(), 0);
            127
        })?
        .end()
    };
    let handled = || sig::set_handler(SIGUSR1, count, SA_SIGINFO | SA_RESTART, !0).is_ok();
    check_eq!(
        check_ok!(state(SIGUSR1, handled)),
        End::Exited(0),
        "a handled signal is SIG_DFL after exec, its flags and mask cleared"
    );
    let ignored = || sig::set_disposition(SIGUSR2, SIG_IGN).is_ok();
    check_eq!(
        check_ok!(state(SIGUSR2, ignored)),
        End::Exited(1),
        "an ignored signal stays ignored"
    );
    let blocked_pending = || {
        sig::set_handler(SIGINT, count, 0, 0).is_ok()
            && sig::sigprocmask(SIG_BLOCK, sigmask(SIGINT)).is_ok()
            && sig::raise(SIGINT).is_ok()
    };
    check_eq!(
        check_ok!(state(SIGINT, blocked_pending)),
        End::Exited(4 + 8),
        "a blocked signal stays blocked and pending (SIG_DFL)"
    );
    let default = || sig::set_disposition(SIGTERM, SIG_DFL).is_ok();
    check_eq!(check_ok!(state(SIGTERM, default)), End::Exited(0));
    Ok(())
}

/// SIGTSTP (like SIGTTIN and SIGTTOU) with its default action is dropped in an orphaned
/// process group — one where no member has a parent in another group of the session — and
/// children of init do not count as such parents. So it does not stop a child of this process
/// (init under Linux, the kernel-started top of the tree here), but it stops a grandchild in a
/// group of its own, whose parent is in another group.
pub fn tty_stop_dropped_in_orphaned_groups() -> TestResult {
    if !crate::process::is_top() {
        skip!("needs to be the top of the process tree (init under Linux)");
    }
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(child_until_told(&shared, 5));
    check_ok!(sys::kill(child.pid, SIGTSTP));
    sys::sleep_ns(50_000_000);
    check_eq!(
        wait4_once(child.pid, sys::WUNTRACED | sys::WNOHANG),
        Ok((0, 0)),
        "SIGTSTP stopped a process of an orphaned group"
    );
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(5), "it kept running");

    let mut middle = check_ok!(Child::fork(|| {
        let Ok(mut grandchild) = Child::fork(|| {
            if sys::setpgid(0, 0).is_err() {
                return 20;
            }
            if eventually(|| shared.word(1).load(SeqCst) == 1) {
                0
            } else {
                21
            }
        }) else {
            return 10;
        };
        let pid = grandchild.pid;
        if !eventually(|| sys::getpgid(pid) == Ok(pid)) {
            return 11;
        }
        if sys::kill(pid, SIGTSTP).is_err() {
            return 12;
        }
        match wait4_once(pid, sys::WUNTRACED) {
            Ok((got, status)) if got == pid && status == 0x7f | (SIGTSTP as i32) << 8 => {}
            _ => return 13,
        }
        if sys::kill(pid, SIGCONT).is_err() {
            return 14;
        }
        shared.word(1).store(1, SeqCst);
        match grandchild.end() {
            Ok(End::Exited(0)) => 0,
            _ => 15,
        }
    }));
    check_eq!(
        check_ok!(middle.end()),
        End::Exited(0),
        "the grandchild's group is not orphaned: 11 no group, 13 not stopped by SIGTSTP"
    );
    Ok(())
}
