//! The signal system calls: actions, masks, sending, waiting, the alternate stack, the return
//! from a handler (`rt_sigreturn`) and the continuation of an interrupted sleep
//! (`restart_syscall`). Arguments are read and checked in Linux's order; the state and the
//! delivery are `proc::signal`'s.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::errno::{EINTR, EINVAL, EPERM, ESRCH, Errno, SysResult};
use crate::arch::trap::TrapFrame;
use crate::arch::uaccess::{read_user, write_user};
use crate::proc::Process;
use crate::proc::signal::{
    self, MaskChange, NSIG, Restart, SI_TKILL, SI_USER, SIGKILL, SIGSTOP, SigAction, SigInfo,
};
use crate::sched;

/// The size of `sigset_t` the kernel works with (64 signals).
pub(super) const SIGSET_SIZE: u64 = 8;

/// A signal number argument (`int`) in 1..=64.
fn signal_number(signo: u64) -> Result<u32, Errno> {
    let signo = signo as i32;
    if (1..=NSIG as i32).contains(&signo) {
        Ok(signo as u32)
    } else {
        Err(EINVAL)
    }
}

/// A signal number argument in 0..=64 (0: only check that the target exists).
fn signal_or_zero(signo: u64) -> Result<u32, Errno> {
    if signo as i32 == 0 {
        Ok(0)
    } else {
        signal_number(signo)
    }
}

pub fn rt_sigaction(signo: u64, action: u64, old_action: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let new = if action != 0 {
        Some(SigAction::from_user(read_user::<[u64; 4]>(action)?))
    } else {
        None
    };
    let signo = signal_number(signo)?;
    if new.is_some() && (signo == SIGKILL || signo == SIGSTOP) {
        return Err(EINVAL);
    }
    let old = signal::set_action(signo, new);
    if old_action != 0 {
        write_user(old_action, &old.to_user())?;
    }
    Ok(0)
}

const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;

pub fn rt_sigprocmask(how: u64, set: u64, old_set: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let change = if set != 0 {
        let set = read_user::<u64>(set)?;
        let how = match how as i32 as u64 {
            SIG_BLOCK => MaskChange::Block,
            SIG_UNBLOCK => MaskChange::Unblock,
            SIG_SETMASK => MaskChange::Set,
            _ => return Err(EINVAL),
        };
        Some((how, set))
    } else {
        None
    };
    let old = signal::change_mask(change);
    if old_set != 0 {
        write_user(old_set, &old)?;
    }
    Ok(0)
}

/// `rt_sigpending(set, size)`: the pending signals the thread blocks; `size` may be smaller
/// than a `sigset_t` (only that many bytes are written: none, and any address will do).
pub fn rt_sigpending(set: u64, size: u64) -> SysResult {
    if size > SIGSET_SIZE {
        return Err(EINVAL);
    }
    let pending = signal::blocked_pending().to_le_bytes();
    if size > 0 {
        crate::arch::uaccess::copy_to_user(set, &pending[..size as usize])?;
    }
    Ok(0)
}

pub fn rt_sigsuspend(mask: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let mask = read_user::<u64>(mask)?;
    Err(signal::suspend(mask))
}

pub fn pause() -> SysResult {
    Err(signal::pause())
}

/// `rt_sigtimedwait(set, info, timeout, size)`: returns the signal taken and writes its
/// `siginfo` (a bad `info` is `EFAULT`, after the signal was taken, as on Linux).
pub fn rt_sigtimedwait(set: u64, info: u64, timeout: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let set = read_user::<u64>(set)?;
    let timeout = if timeout != 0 {
        Some(super::time::read_timespec(timeout)?)
    } else {
        None
    };
    let taken = signal::wait_for(set, timeout)?;
    if info != 0 {
        write_user(info, &taken.to_user())?;
    }
    Ok(u64::from(taken.signo()))
}

/// `sigaltstack(new, old)`, for a thread whose user stack pointer is `sp`.
pub fn sigaltstack(sp: u64, stack: u64, old_stack: u64) -> SysResult {
    let new = if stack != 0 {
        Some(read_user::<[u64; 3]>(stack)?)
    } else {
        None
    };
    let old = signal::alt_stack(new, sp)?;
    if old_stack != 0 {
        write_user(old_stack, &old)?;
    }
    Ok(0)
}

/// The calling thread's process id (a signal's `si_pid`).
fn my_pid() -> u32 {
    super::thread::process().pid
}

/// `kill(pid, sig)`: `pid > 0` names a process (or any of its threads), 0 the caller's process
/// group, `-pgid` a group, and -1 every process but the caller and the processes the kernel
/// started (which play init, as pid 1 does on Linux). A signal to a group succeeds if it
/// reached one process; `ESRCH` when none exists. A signal to all never finds none: on Linux
/// the kernel's own threads (pid above 1, ignoring every signal) count among the targets, so
/// only the signal number is checked (EINVAL).
pub fn kill(pid: u64, signo: u64) -> SysResult {
    let pid = pid as i32;
    let me = super::thread::process();
    let targets: Vec<Arc<Process>> = match pid {
        1.. => alloc::vec![crate::proc::find(pid as u32).ok_or(ESRCH)?],
        i32::MIN => return Err(ESRCH),
        // Zombies count, as on Linux: they keep their pid and group until collected (the
        // signal does nothing to them, but the call succeeds).
        -1 => crate::proc::live_processes()
            .into_iter()
            .filter(|p| p.pid != me.pid && p.parent_pid() != 0)
            .collect(),
        group => crate::proc::group_members(if group == 0 {
            me.pgid()
        } else {
            group.unsigned_abs()
        }),
    };
    if targets.is_empty() && pid != -1 {
        return Err(ESRCH);
    }
    // As Linux: no such process comes before a bad signal number.
    let signo = signal_or_zero(signo)?;
    if targets.is_empty() {
        return Ok(0);
    }
    let info = SigInfo::from_sender(signo, SI_USER, my_pid(), 0);
    signal::send_signal_to_each(&targets, signo, info)?;
    Ok(0)
}

/// Sends `info` to the thread `tid` of process `tgid` (any process when `tgid` is `None`).
fn send_to_thread(
    tgid: Option<u32>,
    tid: u64,
    signo: u64,
    info: impl FnOnce(u32) -> SigInfo,
) -> SysResult {
    let thread = u32::try_from(tid)
        .ok()
        .and_then(crate::proc::find_thread)
        .filter(|t| tgid.is_none_or(|tgid| t.process().is_some_and(|p| p.pid == tgid)))
        .ok_or(ESRCH)?;
    let signo = signal_or_zero(signo)?;
    if signo != 0 {
        signal::send_signal_to_thread(&thread, signo, info(signo))?;
    }
    Ok(0)
}

/// A thread id argument (`pid_t`), which must be positive.
fn positive_id(id: u64) -> Result<u32, Errno> {
    let id = id as i32;
    if id > 0 { Ok(id as u32) } else { Err(EINVAL) }
}

pub fn tkill(tid: u64, signo: u64) -> SysResult {
    let tid = positive_id(tid)?;
    send_to_thread(None, u64::from(tid), signo, |signo| {
        SigInfo::from_sender(signo, SI_TKILL, my_pid(), 0)
    })
}

pub fn tgkill(tgid: u64, tid: u64, signo: u64) -> SysResult {
    let tgid = positive_id(tgid)?;
    let tid = positive_id(tid)?;
    send_to_thread(Some(tgid), u64::from(tid), signo, |signo| {
        SigInfo::from_sender(signo, SI_TKILL, my_pid(), 0)
    })
}

/// The `siginfo_t` of `rt_sigqueueinfo`/`rt_tgsigqueueinfo` (`words`) for signal `signo`: a
/// sender may not pose as the kernel, `kill` or `tgkill` (a code of 0 or more, or `SI_TKILL`)
/// except towards itself (`target_is_self`: the target is the caller's own thread id).
fn queued_info(signo: u64, words: [u64; 16], target_is_self: bool) -> Result<SigInfo, Errno> {
    let info = SigInfo::from_user(words, signo as u32);
    if (info.code() >= 0 || info.code() == SI_TKILL) && !target_is_self {
        return Err(EPERM);
    }
    Ok(info)
}

pub fn rt_sigqueueinfo(pid: u64, signo: u64, info: u64) -> SysResult {
    let words = read_user::<[u64; 16]>(info)?;
    let info = queued_info(signo, words, pid as i32 == sched::current().tid as i32)?;
    let pid = pid as i32;
    let process = if pid > 0 {
        crate::proc::find(pid as u32).ok_or(ESRCH)?
    } else {
        return Err(ESRCH);
    };
    let signo = signal_or_zero(signo)?;
    signal::send_signal_to_process(&process, signo, info)?;
    Ok(0)
}

pub fn rt_tgsigqueueinfo(tgid: u64, tid: u64, signo: u64, info: u64) -> SysResult {
    let words = read_user::<[u64; 16]>(info)?;
    let tgid = positive_id(tgid)?;
    let tid = positive_id(tid)?;
    let info = queued_info(signo, words, tid == sched::current().tid)?;
    send_to_thread(Some(tgid), u64::from(tid), signo, |_| info)
}

/// `rt_sigreturn`: the registers come back from the handler's frame; RAX too (the result).
pub fn rt_sigreturn(frame: &mut TrapFrame) -> SysResult {
    Ok(signal::sigreturn(frame))
}

/// `restart_syscall`: continues the sleep a signal without a handler interrupted; `EINTR`
/// when there is none to continue.
pub fn restart_syscall() -> SysResult {
    match signal::take_restart() {
        Some(Restart::Sleep {
            deadline,
            remaining,
        }) => super::time::sleep_relative(deadline, remaining),
        Some(Restart::FutexWait {
            addr,
            value,
            deadline,
            bitset,
        }) => super::thread::futex_wait(addr, value, Some(deadline), bitset),
        Some(Restart::Poll {
            fds,
            count,
            deadline,
        }) => super::poll::poll_until(fds, count, deadline),
        None => Err(EINTR),
    }
}
