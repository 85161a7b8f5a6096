//! Collecting ended children (`wait4`, `waitid`): a parent sleeps on its `child_events` queue
//! until a child it waits for is a zombie (or, when it asks, has stopped or continued);
//! collecting an ended child takes it out of the tree and the registry (under the registry
//! lock) and adds its resource use to the parent's. A stop or continue is reported once.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::signal::JobEvent;
use super::{PROCESSES, Process};
use crate::sync::waitqueue::WaitResult;
use crate::syscall::errno::{ECHILD, ERESTARTSYS, Errno};

/// Which children a wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    Any,
    Pid(u32),
    Group(u32),
}

impl Selector {
    fn matches(self, child: &Process) -> bool {
        match self {
            Selector::Any => true,
            Selector::Pid(pid) => child.pid == pid,
            Selector::Group(pgid) => child.pgid() == pgid,
        }
    }
}

/// Which kinds of children a wait is for (`__WCLONE`, `__WALL`): a "clone" child is one whose
/// exit signal is not `SIGCHLD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kinds {
    /// Those that end with `SIGCHLD` (no option).
    Plain,
    /// Clone children only (`__WCLONE`).
    Clone,
    /// Both (`__WALL`).
    All,
}

impl Kinds {
    fn matches(self, child: &Process) -> bool {
        let clone = child.exit_signal() != super::signal::SIGCHLD;
        match self {
            Kinds::Plain => !clone,
            Kinds::Clone => clone,
            Kinds::All => true,
        }
    }
}

/// A child that ended (or stopped or continued), as a wait reports it.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    pub pid: u32,
    pub wait_status: u32,
    /// The job-control change reported, `None` for an end.
    pub job: Option<JobEvent>,
    /// Timer ticks its threads ran (and those of the children it collected).
    pub ticks: u64,
    /// Its page faults (and those of the children it collected).
    pub minor_faults: u64,
}

/// Resource use of a process and of the children it collected.
pub fn usage_of(process: &Process) -> (u64, u64) {
    let live: u64 = process
        .threads()
        .iter()
        .map(|t| t.ticks.load(Ordering::Relaxed))
        .sum();
    (
        live + process.exited_ticks.load(Ordering::Relaxed),
        process.minor_faults.sum() as u64,
    )
}

/// Resource use of the children `process` has collected, and of theirs (`RUSAGE_CHILDREN`):
/// timer ticks and minor faults.
pub fn children_usage(process: &Process) -> (u64, u64) {
    (
        process.children_ticks.load(Ordering::Relaxed),
        process.children_faults.load(Ordering::Relaxed),
    )
}

/// How a wait behaves (`wait4`'s and `waitid`'s options).
#[derive(Clone, Copy, Debug)]
pub struct WaitOptions {
    /// `WNOHANG`: return at once when no child is ready.
    pub no_hang: bool,
    /// `WNOWAIT`: report the child but leave it to be collected again.
    pub keep: bool,
    /// `WEXITED`: ended children are reported (waitid may ask for stops alone).
    pub exits: bool,
    /// `WUNTRACED`/`WSTOPPED`: children whose threads all stopped are reported.
    pub stops: bool,
    /// `WCONTINUED`: children that a SIGCONT resumed are reported.
    pub continues: bool,
    /// The kinds of children waited for.
    pub kinds: Kinds,
}

/// Waits until a child of `parent` matching `selector` has ended, and collects it (unless
/// `options.keep`). `Ok(None)` with `no_hang` when matching children exist but none is
/// ready; `ECHILD` when there is no matching child that could be reported (an ended child
/// counts only for a wait for ends, as in Linux); `ERESTARTSYS` when a signal interrupts it.
pub fn wait_for_child(
    parent: &Arc<Process>,
    selector: Selector,
    options: WaitOptions,
) -> Result<Option<Ended>, Errno> {
    let mut outcome = None;
    let result = parent.child_events.wait_interruptible(
        || {
            let found = collect(parent, selector, options);
            let done = !matches!(found, Ok(None)) || options.no_hang;
            outcome = Some(found);
            done
        },
        None,
    );
    match (result, outcome) {
        (WaitResult::Ready, Some(found)) => found,
        // A signal came: restarted after its handler if that has SA_RESTART, else EINTR.
        _ => Err(ERESTARTSYS),
    }
}

/// One look at `parent`'s children: collects an ended one that matches.
fn collect(
    parent: &Arc<Process>,
    selector: Selector,
    options: WaitOptions,
) -> Result<Option<Ended>, Errno> {
    let mut processes = PROCESSES.lock();
    let mut family = parent.family.lock();
    let matching = family
        .children
        .iter()
        .filter(|child| selector.matches(child) && options.kinds.matches(child));
    // A live child may still end (or stop, for a wait for stops).
    let mut waitable = false;
    let mut ready = None;
    for child in matching {
        let zombie = child.family.lock().zombie;
        if zombie && options.exits {
            ready = Some(child.clone());
            break;
        }
        if !zombie && (options.stops || options.continues) {
            let consume = !options.keep;
            let job = child
                .signals
                .take_job_event(options.stops, options.continues, consume);
            if let Some(job) = job {
                let (ticks, minor_faults) = usage_of(child);
                return Ok(Some(Ended {
                    pid: child.pid,
                    wait_status: job.wait_status(),
                    job: Some(job),
                    ticks,
                    minor_faults,
                }));
            }
        }
        waitable |= !zombie;
    }
    let Some(child) = ready else {
        return if waitable { Ok(None) } else { Err(ECHILD) };
    };
    let (ticks, minor_faults) = usage_of(&child);
    let ended = Ended {
        pid: child.pid,
        wait_status: child.wait_status(),
        job: None,
        ticks: ticks + child.children_ticks.load(Ordering::Relaxed),
        minor_faults: minor_faults + child.children_faults.load(Ordering::Relaxed),
    };
    if !options.keep {
        family.children.retain(|c| !Arc::ptr_eq(c, &child));
        processes.retain(|p| !Arc::ptr_eq(p, &child));
        parent
            .children_ticks
            .fetch_add(ended.ticks, Ordering::Relaxed);
        parent
            .children_faults
            .fetch_add(ended.minor_faults, Ordering::Relaxed);
    }
    Ok(Some(ended))
}

const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;

/// SIGCHLD's `si_code` and `si_status` for a child with `wait_status`, or with the job-control
/// change `job`: `CLD_EXITED` and the exit code, `CLD_KILLED`/`CLD_DUMPED` and the signal,
/// `CLD_STOPPED` and the stop signal, `CLD_CONTINUED` and SIGCONT.
pub fn sigchld_code_and_status(wait_status: u32, job: Option<JobEvent>) -> (i32, i32) {
    match job {
        Some(JobEvent::Stopped(signal)) => (CLD_STOPPED, signal as i32),
        Some(JobEvent::Continued) => (CLD_CONTINUED, super::signal::SIGCONT as i32),
        None => match (wait_status & 0x7f, wait_status & 0x80 != 0) {
            (0, _) => (CLD_EXITED, ((wait_status >> 8) & 0xff) as i32),
            (signal, false) => (CLD_KILLED, signal as i32),
            (signal, true) => (CLD_DUMPED, signal as i32),
        },
    }
}
