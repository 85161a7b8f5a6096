//! The out-of-memory killer: a fault that finds no frame above the kernel's reserve
//! (`mm::frame::USER_RESERVE_FRAMES`) makes room by killing the process with the most resident
//! pages (Linux's choice, its `oom_badness` without swap or adjustments), so that a small
//! process that happens to fault while a large one eats memory lives on. When the largest is
//! the faulting process itself, the caller kills it (signal/fault.rs); otherwise the victim is
//! killed here, with one report line, and the fault waits for it to end and tries again. While
//! a process is already dying (a victim, or a process exiting), faults wait for it instead of
//! choosing another: one victim at a time, as Linux's `oom_lock` has it.
//!
//! State: none of its own; it reads the process registry and each address space's resident
//! count, and kills through the process's group exit.

use alloc::sync::Arc;

use super::{Process, killed_by, live_processes, signal};

/// How long a fault waits for a dying process to give its memory back before it looks again.
const VICTIM_EXIT_WAIT_NS: u64 = 1_000_000_000;

/// The resident pages of `process`, or `None` once it has left its address space.
fn resident_pages(process: &Process) -> Option<i64> {
    process.mm.lock().as_ref().map(|mm| mm.resident_pages.sum())
}

/// Makes room for a fault of `faulting` that found no frame: waits for a process that is dying
/// already, or kills the process with the most resident pages and waits for it. `false`: the
/// largest is `faulting` itself (or no other holds memory), which the caller then kills.
pub fn make_room_for(faulting: &Arc<Process>) -> bool {
    if faulting.is_exiting() {
        // Killed already: its memory comes back as it dies.
        return false;
    }
    let processes = live_processes();
    let dying = processes.iter().find(|process| {
        !Arc::ptr_eq(process, faulting) && process.is_exiting() && resident_pages(process).is_some()
    });
    if let Some(dying) = dying {
        dying.exited.wait_timeout(VICTIM_EXIT_WAIT_NS);
        return true;
    }
    let largest = processes
        .iter()
        .filter_map(|process| Some((resident_pages(process)?, process)))
        .max_by_key(|&(pages, _)| pages);
    let Some((pages, victim)) = largest else {
        return false;
    };
    if Arc::ptr_eq(victim, faulting) {
        return false;
    }
    let name = |process: &Process| {
        process
            .threads()
            .first()
            .map_or_else(Default::default, |thread| thread.name())
    };
    // Named before the kill: its threads may all be gone by the time the report is written.
    let victim_name = name(victim);
    if victim.kill_all_but_current(killed_by(signal::SIGKILL, false)) {
        signal::report_fatal_of(
            victim,
            alloc::format!(
                "out of memory: killed process {} ({}), {pages} pages resident, the most of any \
                 process: process {} ({}) found no frame above the kernel's reserve ({} frames \
                 free) (SIGKILL)",
                victim.pid,
                victim_name,
                faulting.pid,
                name(faulting),
                crate::mm::frame::free_frames()
            ),
        );
    }
    victim.exited.wait_timeout(VICTIM_EXIT_WAIT_NS);
    true
}
