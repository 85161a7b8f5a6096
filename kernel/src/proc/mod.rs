//! Processes and their threads.
//!
//! A process is an address space with one or more user threads (tasks sharing it). There is no
//! fork or exec: processes are started by the kernel from executables in the ramdisk
//! ([`exec::spawn`]), threads by `clone`. A process ends when its last thread exits; `exit_group`
//! (or a fatal signal) kills every other thread first. The last thread tears the address space
//! down, so frames, page tables and VMAs go back as the process ends. Signals are
//! [`signal`]'s.
//!
//! # Locks
//! A process's thread list is under its `threads` spinlock; the wait status is written once,
//! by whoever starts the group exit (or by the last thread). The registry of live processes is
//! under its own spinlock. The signal state has its locks (see [`signal`]).

pub mod exec;
pub mod futex;
#[cfg(feature = "ktest")]
mod ktests;
pub mod ramdisk;
pub mod signal;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::mm::addrspace::Mm;
use crate::sched::{self, Task};
use crate::sync::{Completion, IrqSpinLock, PerCpuCounter};

pub struct Process {
    pub pid: u32,
    /// The executable's path in the ramdisk.
    pub path: String,
    pub mm: alloc::boxed::Box<Mm>,
    threads: IrqSpinLock<Vec<Arc<Task>>>,
    /// Set by the first `exit_group` (or fatal signal); the status is then final.
    group_exit: AtomicBool,
    /// How the process ended, as wait4 reports it: `code << 8` for an exit, the signal (with
    /// 0x80 for a core dump) for a death by signal.
    wait_status: AtomicU32,
    /// Completed when the last thread has exited and the address space is gone.
    pub exited: Completion,
    /// Page faults served (getrusage's `ru_minflt`), per CPU: every fault adds to it.
    pub minor_faults: PerCpuCounter,
    /// When set, what the process writes to fds 1 and 2 is also kept here (tests).
    #[cfg(feature = "ktest")]
    pub captured_output: Option<spin::Mutex<Vec<u8>>>,
    /// Signal actions, process-directed pending signals, job control.
    pub signals: signal::ProcessSignals,
    /// The report of the fault that killed the process, if one did (tests check it).
    #[cfg(feature = "ktest")]
    pub fatal_report: spin::Mutex<Option<String>>,
}

/// Live processes.
static PROCESSES: IrqSpinLock<Vec<Arc<Process>>> = IrqSpinLock::new(Vec::new());

impl Process {
    /// The exit status as a shell shows it: the exit code, or 128 + the signal that killed it.
    /// Final once `exited` is complete.
    pub fn exit_status(&self) -> u32 {
        let status = self.wait_status();
        match status & 0x7f {
            0 => (status >> 8) & 0xff,
            signal => 128 + signal,
        }
    }

    /// The status wait4 reports for the process's end: `code << 8` after an exit, or the
    /// signal that killed it, with 0x80 if its default action dumps core. Final once `exited`
    /// is complete.
    pub fn wait_status(&self) -> u32 {
        self.wait_status.load(Ordering::Acquire)
    }

    pub fn thread_count(&self) -> usize {
        self.threads.lock().len()
    }

    pub fn threads(&self) -> Vec<Arc<Task>> {
        self.threads.lock().clone()
    }

    /// Adds a thread (before it is started). Fails once the process is exiting.
    pub fn add_thread(&self, task: Arc<Task>) -> bool {
        let mut threads = self.threads.lock();
        if self.group_exit.load(Ordering::Acquire) || threads.is_empty() && self.exited.is_done() {
            return false;
        }
        threads.push(task);
        true
    }

    fn is_exiting(&self) -> bool {
        self.group_exit.load(Ordering::Acquire)
    }

    /// Starts a group exit with wait status `status` (the first one wins) and kills every
    /// thread but the caller: each leaves at its next return to user mode, and sleeping ones
    /// are woken.
    fn kill_all_but_current(&self, status: u32) {
        if !self.group_exit.swap(true, Ordering::AcqRel) {
            self.wait_status.store(status, Ordering::Release);
        }
        let me = sched::current() as *const Task;
        for thread in self.threads() {
            if core::ptr::eq(Arc::as_ptr(&thread), me) {
                continue;
            }
            thread.killed.store(true, Ordering::Release);
            sched::wake(&thread);
            if thread.on_cpu.load(Ordering::Acquire) {
                // Running in user mode somewhere: an interrupt brings it into the kernel.
                let cpu = thread.cpu.load(Ordering::Relaxed);
                if let Some(target) = crate::arch::percpu::cpu(cpu) {
                    crate::arch::apic::send_ipi(
                        target.apic_id.load(Ordering::Relaxed),
                        crate::arch::apic::WAKE_VECTOR,
                    );
                }
            }
        }
    }
}

pub fn register(process: Arc<Process>) {
    PROCESSES.lock().push(process);
}

/// Live processes (for statistics and tests).
pub fn live_processes() -> Vec<Arc<Process>> {
    PROCESSES.lock().clone()
}

/// `exit_group(code)` from the running thread. Never returns.
pub fn exit_group(code: u32) -> ! {
    group_exit((code & 0xff) << 8)
}

/// Ends the running thread's process with wait status `status` (the first group exit's status
/// wins). Never returns.
fn group_exit(status: u32) -> ! {
    // No owned value may live across the call below: it never returns, so it would never
    // be dropped.
    let process = sched::current().process().expect("a user thread");
    process.kill_all_but_current(status);
    end_thread(status)
}

/// A killed thread leaving on its way back to user mode. Never returns.
pub fn exit_killed_thread() -> ! {
    let task = sched::current();
    let status = task.process().map_or(0, |p| p.wait_status());
    end_thread(status)
}

/// `exit(code)`: ends the running user thread (`code` is the process's exit code if it is the
/// last thread and no group exit set one). Never returns.
pub fn exit_thread(code: u32) -> ! {
    end_thread((code & 0xff) << 8)
}

/// Ends the running user thread; `status` is the process's wait status if it is the last thread
/// and no group exit set one. Never returns.
fn end_thread(status: u32) -> ! {
    let task = sched::current_arc();
    let user = task.user.as_ref().expect("a user thread");
    let process = user.process.clone();
    let clear_tid = user.clear_child_tid.swap(0, Ordering::AcqRel);
    if clear_tid != 0 && !process.is_exiting() {
        // CLONE_CHILD_CLEARTID: tell a joiner. A bad pointer is the program's problem.
        if crate::arch::uaccess::write_user(clear_tid, &0u32).is_ok() {
            futex::wake(&process.mm, clear_tid, 1);
        }
    }
    let last = {
        let mut threads = process.threads.lock();
        threads.retain(|t| !Arc::ptr_eq(t, &task));
        threads.is_empty()
    };
    if last {
        if !process.group_exit.swap(true, Ordering::AcqRel) {
            process.wait_status.store(status, Ordering::Release);
        }
        finish_process(&process);
    } else {
        signal::thread_exited(&process);
    }
    drop(process);
    drop(task);
    sched::exit_current()
}

/// The last thread's work: leave the address space, tear it down, report, wake waiters.
fn finish_process(process: &Arc<Process>) {
    let cpu = crate::arch::percpu::cpu_index();
    let bit = 1u64 << cpu;
    // Other threads' CPUs leave the mask once they switched to another address space.
    while process.mm.cpu_mask.load(Ordering::Acquire) & !bit != 0 {
        core::hint::spin_loop();
    }
    x86_64::instructions::interrupts::without_interrupts(|| {
        let user = sched::current().user.as_ref().expect("a user thread");
        user.left_mm.store(true, Ordering::Release);
        // SAFETY: the kernel's own tables, whose kernel half every address space shares.
        unsafe { crate::arch::mmu::load_root(crate::mm::kernel_tables::kernel_root()) };
        process.mm.cpu_mask.fetch_and(!bit, Ordering::SeqCst);
    });
    process.mm.teardown();
    PROCESSES.lock().retain(|p| !Arc::ptr_eq(p, process));
    log::info!(
        "process {} ({}) exited with status {}",
        process.pid,
        process.path,
        process.exit_status()
    );
    process.exited.complete();
}
