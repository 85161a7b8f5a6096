//! Scheduling policy and priority: `getpriority`/`setpriority` (nice values), the
//! `sched_*scheduler`/`sched_*param` pair, `sched_get_priority_min`/`max` and
//! `sched_rr_get_interval`, over each task's [`SchedPolicy`]. Every caller is root here, so
//! no change is refused for want of a privilege.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::errno::{EINVAL, ESRCH, Errno, SysResult};
use crate::arch::uaccess::{read_user, write_user};
use crate::sched::task::{SCHED_OTHER, SchedPolicy};
use crate::sched::{self, Task};

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;

const NICE_MIN: i32 = -20;
const NICE_MAX: i32 = 19;

const SCHED_FIFO: u32 = 1;
const SCHED_RR: u32 = 2;
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;
const SCHED_DEADLINE: u32 = 6;
/// Linux's extensible scheduling class (BPF programs), which it knows but this kernel does
/// not have: only its priority range (0 to 0) is answered.
const SCHED_EXT: u32 = 7;
const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;
/// The highest real-time priority.
const MAX_RT_PRIORITY: u32 = 99;
/// `sched_rr_get_interval` of a `SCHED_RR` task: Linux's default round-robin slice.
const RR_INTERVAL_MS: u64 = 100;

/// The tasks `which`/`who` of `getpriority`/`setpriority` name: a thread, the threads of a
/// process group's members, or those of a user's processes (everyone is root: user 0 is
/// every process, another user none).
fn priority_targets(which: u64, who: u64) -> Result<Vec<Arc<Task>>, Errno> {
    let who = who as u32;
    match which {
        PRIO_PROCESS => Ok(if who == 0 {
            alloc::vec![sched::current_arc()]
        } else {
            crate::proc::find_thread(who).into_iter().collect()
        }),
        PRIO_PGRP => {
            let pgid = if who == 0 {
                super::thread::process().pgid()
            } else {
                who
            };
            Ok(crate::proc::group_members(pgid)
                .iter()
                .flat_map(|p| p.threads())
                .collect())
        }
        PRIO_USER if who == 0 => Ok(crate::proc::live_processes()
            .iter()
            .flat_map(|p| p.threads())
            .collect()),
        PRIO_USER => Ok(Vec::new()),
        _ => Err(EINVAL),
    }
}

/// `getpriority`: the highest priority among the targets, as the system call gives it
/// (`20 - nice`: 1 to 40; the libc turns it back into a nice value).
pub fn getpriority(which: u64, who: u64) -> SysResult {
    let targets = priority_targets(which, who)?;
    let highest = targets.iter().map(|t| 20 - t.policy().nice).max();
    highest.map(|p| p as u64).ok_or(ESRCH)
}

/// `setpriority`: sets the nice value (clamped to -20..19) of every target.
pub fn setpriority(which: u64, who: u64, nice: u64) -> SysResult {
    let nice = (nice as i32).clamp(NICE_MIN, NICE_MAX);
    let targets = priority_targets(which, who)?;
    if targets.is_empty() {
        return Err(ESRCH);
    }
    for task in targets {
        task.set_policy(SchedPolicy {
            nice,
            ..task.policy()
        });
    }
    Ok(0)
}

/// The thread a `sched_*` call names: `pid` 0 is the caller; a negative one is EINVAL.
fn sched_target(pid: u64) -> Result<Arc<Task>, Errno> {
    match pid as i32 {
        0 => Ok(sched::current_arc()),
        ..0 => Err(EINVAL),
        pid => crate::proc::find_thread(pid as u32).ok_or(ESRCH),
    }
}

/// Whether `policy` is one `sched_setscheduler` sets (`SCHED_DEADLINE` needs `sched_setattr`).
fn settable(policy: u32) -> bool {
    matches!(
        policy,
        SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE
    )
}

fn is_real_time(policy: u32) -> bool {
    policy == SCHED_FIFO || policy == SCHED_RR
}

/// Sets `pid`'s policy (`None`: keep it) and real-time priority from `param`.
fn set_scheduler(pid: u64, policy: Option<u32>, param: u64) -> SysResult {
    if param == 0 || (pid as i32) < 0 {
        return Err(EINVAL);
    }
    let priority = read_user::<i32>(param)?;
    let task = sched_target(pid)?;
    let old = task.policy();
    let (policy, reset_on_fork) = match policy {
        Some(policy) => (
            policy & !SCHED_RESET_ON_FORK,
            policy & SCHED_RESET_ON_FORK != 0,
        ),
        None => (old.policy, old.reset_on_fork),
    };
    if !settable(policy) {
        return Err(EINVAL);
    }
    let valid_priority = if is_real_time(policy) {
        (1..=MAX_RT_PRIORITY as i32).contains(&priority)
    } else {
        priority == 0
    };
    if !valid_priority {
        return Err(EINVAL);
    }
    task.set_policy(SchedPolicy {
        policy,
        rt_priority: priority as u32,
        nice: old.nice,
        reset_on_fork,
    });
    Ok(0)
}

pub fn sched_setscheduler(pid: u64, policy: u64, param: u64) -> SysResult {
    let policy = policy as i32;
    if policy < 0 {
        return Err(EINVAL);
    }
    set_scheduler(pid, Some(policy as u32), param)
}

pub fn sched_setparam(pid: u64, param: u64) -> SysResult {
    set_scheduler(pid, None, param)
}

pub fn sched_getscheduler(pid: u64) -> SysResult {
    let policy = sched_target(pid)?.policy();
    let flag = if policy.reset_on_fork {
        SCHED_RESET_ON_FORK
    } else {
        0
    };
    Ok(u64::from(policy.policy | flag))
}

pub fn sched_getparam(pid: u64, param: u64) -> SysResult {
    if param == 0 {
        return Err(EINVAL);
    }
    let policy = sched_target(pid)?.policy();
    write_user(param, &(policy.rt_priority as i32))?;
    Ok(0)
}

/// The real-time priorities of `policy`: 1-99 for `SCHED_FIFO` and `SCHED_RR`, 0 for the
/// others Linux knows.
fn priority_range(policy: u64) -> Result<(u64, u64), Errno> {
    match policy as i32 as u32 {
        SCHED_FIFO | SCHED_RR => Ok((1, u64::from(MAX_RT_PRIORITY))),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE | SCHED_EXT => Ok((0, 0)),
        _ => Err(EINVAL),
    }
}

pub fn sched_get_priority_max(policy: u64) -> SysResult {
    Ok(priority_range(policy)?.1)
}

pub fn sched_get_priority_min(policy: u64) -> SysResult {
    Ok(priority_range(policy)?.0)
}

/// `sched_rr_get_interval`: 0 for `SCHED_FIFO` (no slice), Linux's round-robin slice for
/// `SCHED_RR`, the scheduler's own slice for the others.
pub fn sched_rr_get_interval(pid: u64, out: u64) -> SysResult {
    let policy = sched_target(pid)?.policy().policy;
    let ms = match policy {
        SCHED_FIFO => 0,
        SCHED_RR => RR_INTERVAL_MS,
        _ => sched::SLICE_MS,
    };
    let ns = ms * 1_000_000;
    write_user(
        out,
        &[(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64],
    )?;
    Ok(0)
}
