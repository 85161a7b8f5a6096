//! Collecting ended children (`wait4`, `waitid`): a parent sleeps on its `child_events` queue
//! until a child it waits for is a zombie; collecting the child takes it out of the tree and
//! the registry (under the registry lock) and adds its resource use to the parent's.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::{PROCESSES, Process};
use crate::sync::waitqueue::WaitResult;
use crate::syscall::errno::{ECHILD, EINTR, Errno};

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

/// A child that ended, as a wait reports it.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    pub pid: u32,
    pub wait_status: u32,
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
    /// `WEXITED`: ended children are reported (waitid may ask for stops alone, which never
    /// happen here: there is no job control yet).
    pub exits: bool,
}

/// Waits until a child of `parent` matching `selector` has ended, and collects it (unless
/// `options.keep`). `Ok(None)` with `no_hang` when matching children exist but none is
/// ready; `ECHILD` when there is no matching child; `EINTR` when the caller is killed.
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
        _ => Err(EINTR),
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
    let mut matching = family
        .children
        .iter()
        .filter(|child| selector.matches(child))
        .peekable();
    if matching.peek().is_none() {
        return Err(ECHILD);
    }
    let ready = |child: &&Arc<Process>| options.exits && child.family.lock().zombie;
    let Some(child) = matching.find(ready).cloned() else {
        return Ok(None);
    };
    let (ticks, minor_faults) = usage_of(&child);
    let ended = Ended {
        pid: child.pid,
        wait_status: child.wait_status(),
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
