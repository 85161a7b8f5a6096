//! Processes and their threads, and the process tree.
//!
//! A process is an address space with one or more user threads (tasks sharing it), a place in
//! the process tree, a process group and a session. The kernel starts processes from
//! executable files of the root file system ([`exec::spawn`]); processes start others with
//! fork (`clone` without `CLONE_VM`, `fork`, `vfork`, `clone3`) and replace their image with
//! `execve`;
//! threads come from `clone` with `CLONE_THREAD`. A process ends when its last thread exits;
//! `exit_group` (or a fatal signal) kills every other thread first. The last thread tears the
//! address space down (unless a `vfork` child or parent still uses it), so frames, page tables
//! and VMAs go back as the process ends. Signals are [`signal`]'s, restartable
//! sequences [`rseq`]'s.
//!
//! An ended process stays a zombie, holding its wait status, until its parent collects it
//! with `wait4`/`waitid`. A process the kernel started has no parent: it is the init of the
//! processes it forks (Linux's child subreaper). When a process ends, its children are
//! adopted by that init; the kernel collects a process with no parent as soon as it ends.
//!
//! # Locks
//! - A process's thread list is under its `threads` spinlock; the wait status is written once,
//!   by whoever starts the group exit (or by the last thread).
//! - The registry of processes (live and zombie) is under its spinlock, which also serialises
//!   every change of the tree: adopting, becoming a zombie, being collected. Each process's
//!   `family` lock (taken inside the registry lock when the tree changes, or alone to read a
//!   parent) protects its links; a parent's is taken before a child's.
//! - The signal state has its own locks (see [`signal`]).

pub mod creds;
pub mod exec;
pub mod futex;
#[cfg(feature = "ktest")]
pub(crate) mod ktests;
pub mod oom;
pub mod ramdisk;
pub mod rseq;
pub mod signal;
#[cfg(feature = "ktest")]
pub(crate) mod soak;
pub mod timers;
pub mod wait;

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::fs::dentry::Dentry;
use crate::fs::file::{FdTable, FsContext, WriteDenial};
use crate::mm::addrspace::Mm;
use crate::sched::{self, Task};
use crate::sync::{Completion, IrqSpinLock, PerCpuCounter, WaitQueue};

pub struct Process {
    pub pid: u32,
    /// The executable's path (`execve` changes it).
    path: spin::Mutex<String>,
    /// The executable, arguments and environment (`/proc/PID/exe`, `cmdline`, `environ`).
    invocation: spin::Mutex<Invocation>,
    /// When the process was made (ns since boot): `/proc/PID/stat`'s `starttime`.
    start_ns: u64,
    /// The address space, for code outside the process (statistics, tests); the process's
    /// own threads use their own handle (`UserThread::mm`). `None` once the process ended.
    mm: spin::Mutex<Option<Arc<Mm>>>,
    threads: IrqSpinLock<Vec<Arc<Task>>>,
    /// Set by the first `exit_group` (or fatal signal); the status is then final.
    group_exit: AtomicBool,
    /// How the process ended, as `wait4` reports it ([`exited_with`], [`killed_by`]).
    wait_status: AtomicU32,
    /// Completed when the last thread has exited and the address space is gone.
    pub exited: Completion,
    /// Page faults served (getrusage's `ru_minflt`), per CPU: every fault adds to it.
    pub minor_faults: PerCpuCounter,
    /// Timer ticks of threads that have exited (getrusage).
    exited_ticks: AtomicU64,
    /// Timer ticks and page faults of the children collected (`RUSAGE_CHILDREN`).
    children_ticks: AtomicU64,
    children_faults: AtomicU64,
    /// Place in the process tree, under the registry lock for changes.
    family: IrqSpinLock<Family>,
    /// The process group and the session.
    pgid: AtomicU32,
    sid: AtomicU32,
    /// The signal the parent gets when this process ends (`SIGCHLD`, or clone's choice; an
    /// adopted process's is `SIGCHLD`). Waits tell "clone" children (another signal) apart.
    exit_signal: AtomicU32,
    /// Set once the process called `execve` (`setpgid` on it then fails with `EACCES`).
    did_exec: AtomicBool,
    /// A thread is in `execve` past loading, killing the others.
    execing: AtomicBool,
    /// A `vfork` child's promise to its parent, kept at `execve` or exit.
    vfork_done: Option<Arc<Completion>>,
    /// Where the process's waits for its children (`wait4`, `waitid`) sleep.
    child_events: WaitQueue,
    /// When set, what the process writes to fds 1 and 2 is also kept here (tests); a fork's
    /// child shares its parent's.
    #[cfg(feature = "ktest")]
    pub captured_output: Option<Arc<spin::Mutex<Vec<u8>>>>,
    /// What it writes to the console is kept only in `captured_output`, not shown (tests); a
    /// fork's child does as its parent.
    #[cfg(feature = "ktest")]
    pub output_hidden: bool,
    /// Signal actions, process-directed pending signals, job control.
    pub signals: signal::ProcessSignals,
    /// The descriptor table (shared with processes made with `CLONE_FILES`; `execve` gives
    /// the process a copy of its own, exit empties it).
    files: spin::Mutex<Arc<FdTable>>,
    /// The working directory and umask (shared with processes made with `CLONE_FS`).
    fs_context: Arc<FsContext>,
    /// `PR_SET_NO_NEW_PRIVS`: set once, for good; fork passes it on, `execve` keeps it.
    pub no_new_privs: AtomicBool,
    /// `PR_SET_CHILD_SUBREAPER`: the orphans among its descendants come to it rather than to
    /// the reaper at the top of the tree; a fork's child is not one.
    pub child_subreaper: AtomicBool,
    /// `PR_GET_DUMPABLE`: whether the process may dump core and be inspected. Linux keeps it
    /// in the address space; here the process's threads share it. Fork passes it on,
    /// `PR_SET_DUMPABLE` sets it, `execve` sets it again unless the new image's capabilities
    /// permit more than the old ones did (Linux's `commit_creds`, which then makes it 0).
    pub dumpable: AtomicBool,
    /// The capability sets (copied by fork, root's again after `execve`).
    pub capabilities: spin::Mutex<creds::Capabilities>,
    /// The interval timers (`alarm`, `setitimer`, `timer_create`); a fork's child has none.
    pub timers: spin::Mutex<timers::Timers>,
    /// The report of the fault that killed the process, if one did (tests check it).
    #[cfg(feature = "ktest")]
    pub fatal_report: spin::Mutex<Option<String>>,
}

/// What a process runs, as `/proc/PID/exe`, `cmdline` and `environ` show it: set when the
/// kernel starts the process and by `execve`, inherited by fork, emptied when it ends.
#[derive(Clone, Default)]
pub struct Invocation {
    /// The executable file.
    pub executable: Option<Arc<Dentry>>,
    /// The hold that keeps the executable from being opened for writing while it runs
    /// (`None` where its file system keeps no count, or a writer opened it first).
    _write_denial: Option<Arc<WriteDenial>>,
    /// The arguments, each followed by a NUL.
    pub arguments: Arc<[u8]>,
    /// The environment strings, each followed by a NUL.
    pub environment: Arc<[u8]>,
}

impl Invocation {
    pub fn new(executable: Arc<Dentry>, arguments: &[&[u8]], environment: &[&[u8]]) -> Self {
        let joined = |strings: &[&[u8]]| -> Arc<[u8]> {
            strings
                .iter()
                .flat_map(|s| s.iter().copied().chain([0]))
                .collect()
        };
        Self {
            _write_denial: WriteDenial::new(executable.inode()).map(Arc::new),
            executable: Some(executable),
            arguments: joined(arguments),
            environment: joined(environment),
        }
    }
}

/// A process's links in the process tree.
#[derive(Default)]
struct Family {
    /// The parent; `None` for a process the kernel started, or once the kernel adopted it.
    parent: Option<Weak<Process>>,
    /// The process that adopts this one's children when it ends: the kernel-started process
    /// at the top of its tree (`None` for that process itself, whose orphans the kernel takes).
    reaper: Option<Weak<Process>>,
    children: Vec<Arc<Process>>,
    /// Ended and waiting to be collected.
    zombie: bool,
}

/// The wait status of a process that called `exit(code)`.
pub const fn exited_with(code: u32) -> u32 {
    (code & 0xff) << 8
}

/// The wait status of a process killed by `signal` (with `core`: "core dumped").
pub const fn killed_by(signal: u32, core: bool) -> u32 {
    (signal & 0x7f) | if core { 0x80 } else { 0 }
}

/// Processes, live and zombie; its lock also serialises changes of the process tree.
static PROCESSES: IrqSpinLock<Vec<Arc<Process>>> = IrqSpinLock::new(Vec::new());

/// What a new process takes from its creator.
pub struct Lineage {
    /// The forking process, `None` for a process the kernel starts.
    pub parent: Option<Arc<Process>>,
    /// Signal to the parent at exit.
    pub exit_signal: u32,
    /// Set for a `vfork` child: its parent sleeps until it is completed.
    pub vfork_done: Option<Arc<Completion>>,
    /// The descriptors and the file-system context: the parent's own with `CLONE_FILES` and
    /// `CLONE_FS`, else copies. `None` for a process the kernel starts: the console as fds 0,
    /// 1 and 2, the root as working directory.
    pub files: Option<(Arc<FdTable>, Arc<FsContext>)>,
}

impl Process {
    /// A process with address space `mm` and no thread yet, not in the registry: the kernel
    /// starts it ([`exec::spawn`], tests) or `parent` forked it (`lineage`). Group, session,
    /// signal actions and output capture come from the parent; a kernel-started process leads
    /// a session and a group of its own.
    pub fn new(path: &str, mm: Arc<Mm>, lineage: Lineage, options: &exec::SpawnOptions) -> Self {
        let pid = if options.init {
            sched::task::take_init_pid().unwrap_or_else(sched::task::allocate_tid)
        } else {
            sched::task::allocate_tid()
        };
        let parent = lineage.parent.as_ref();
        let (files, fs_context) = lineage
            .files
            .unwrap_or_else(|| (crate::fs::file::console_table(), FsContext::new()));
        let family = Family {
            parent: parent.map(Arc::downgrade),
            reaper: parent.map(|p| {
                p.family
                    .lock()
                    .reaper
                    .clone()
                    .unwrap_or_else(|| Arc::downgrade(p))
            }),
            children: Vec::new(),
            zombie: false,
        };
        Self {
            pid,
            path: spin::Mutex::new(String::from(path)),
            invocation: spin::Mutex::new(parent.map(|p| p.invocation()).unwrap_or_default()),
            start_ns: crate::time::now_ns(),
            mm: spin::Mutex::new(Some(mm)),
            threads: IrqSpinLock::new(Vec::new()),
            group_exit: AtomicBool::new(false),
            wait_status: AtomicU32::new(0),
            exited: Completion::new(),
            minor_faults: PerCpuCounter::new(),
            exited_ticks: AtomicU64::new(0),
            children_ticks: AtomicU64::new(0),
            children_faults: AtomicU64::new(0),
            family: IrqSpinLock::new(family),
            pgid: AtomicU32::new(parent.map_or(pid, |p| p.pgid())),
            sid: AtomicU32::new(parent.map_or(pid, |p| p.sid())),
            exit_signal: AtomicU32::new(lineage.exit_signal),
            did_exec: AtomicBool::new(false),
            execing: AtomicBool::new(false),
            vfork_done: lineage.vfork_done,
            child_events: WaitQueue::new(),
            #[cfg(feature = "ktest")]
            captured_output: match parent {
                Some(parent) => parent.captured_output.clone(),
                None => options
                    .capture_output
                    .then(|| Arc::new(spin::Mutex::new(Vec::new()))),
            },
            #[cfg(feature = "ktest")]
            output_hidden: parent.map_or(options.hide_output, |parent| parent.output_hidden),
            signals: parent
                .map_or_else(signal::ProcessSignals::new, |p| p.signals.clone_for_fork()),
            files: spin::Mutex::new(files),
            fs_context,
            no_new_privs: AtomicBool::new(
                parent.is_some_and(|p| p.no_new_privs.load(Ordering::Relaxed)),
            ),
            child_subreaper: AtomicBool::new(false),
            dumpable: AtomicBool::new(parent.is_none_or(|p| p.dumpable.load(Ordering::Relaxed))),
            capabilities: spin::Mutex::new(
                parent.map_or(creds::Capabilities::ROOT, |p| *p.capabilities.lock()),
            ),
            timers: spin::Mutex::new(timers::Timers::default()),
            #[cfg(feature = "ktest")]
            fatal_report: spin::Mutex::new(None),
        }
    }

    /// The executable's path.
    pub fn path(&self) -> String {
        self.path.lock().clone()
    }

    /// The executable, arguments and environment.
    pub fn invocation(&self) -> Invocation {
        self.invocation.lock().clone()
    }

    /// Records what the process runs (its start by the kernel, `execve`), or, at its end, that
    /// it runs nothing.
    pub fn set_invocation(&self, invocation: Invocation) {
        let old = core::mem::replace(&mut *self.invocation.lock(), invocation);
        drop(old);
    }

    /// When the process was made, in ns since boot.
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// Whether the process has ended and waits to be collected.
    pub fn is_zombie(&self) -> bool {
        self.family.lock().zombie
    }

    /// The thread that speaks for the process in `/proc` (Linux's group leader): the one whose
    /// id is the pid, else (it exited) the first; `None` once the process ended.
    pub fn leader(&self) -> Option<Arc<Task>> {
        let threads = self.threads.lock();
        threads
            .iter()
            .find(|t| t.tid == self.pid)
            .or_else(|| threads.first())
            .cloned()
    }

    /// The descriptor table.
    pub fn files(&self) -> Arc<FdTable> {
        self.files.lock().clone()
    }

    /// The working directory and umask.
    pub fn fs_context(&self) -> &Arc<FsContext> {
        &self.fs_context
    }

    /// The process stops sharing its descriptor table (`close_range` with
    /// `CLOSE_RANGE_UNSHARE`, `execve`): it gets a copy of its own.
    pub fn unshare_files(&self) {
        let own = self.files().copy();
        let shared = core::mem::replace(&mut *self.files.lock(), own);
        drop(shared);
    }

    /// `execve`: the process stops sharing its descriptor table, and its close-on-exec
    /// descriptors close.
    fn files_for_exec(&self) {
        self.unshare_files();
        drop(self.files().remove_close_on_exec());
    }

    /// The address space, while the process lives (for code outside it: statistics, tests).
    pub fn mm(&self) -> Option<Arc<Mm>> {
        self.mm.lock().clone()
    }

    /// How the process ended, as `wait4` reports it. Final once `exited` is complete.
    pub fn wait_status(&self) -> u32 {
        self.wait_status.load(Ordering::Acquire)
    }

    /// The exit status as a shell reports it: the exit code, or 128 + the signal that killed
    /// the process. Final once `exited` is complete.
    pub fn exit_status(&self) -> u32 {
        let status = self.wait_status();
        match status & 0x7f {
            0 => (status >> 8) & 0xff,
            signal => 128 + signal,
        }
    }

    /// The signal the parent gets when this process ends.
    pub fn exit_signal(&self) -> u32 {
        self.exit_signal.load(Ordering::Relaxed)
    }

    pub fn pgid(&self) -> u32 {
        self.pgid.load(Ordering::Relaxed)
    }

    pub fn sid(&self) -> u32 {
        self.sid.load(Ordering::Relaxed)
    }

    /// Whether the process called `execve`.
    pub fn did_exec(&self) -> bool {
        self.did_exec.load(Ordering::Relaxed)
    }

    /// Moves the process to group `pgid` (`setpgid` checked the rules).
    pub fn set_pgid(&self, pgid: u32) {
        self.pgid.store(pgid, Ordering::Relaxed);
    }

    /// Makes the process the leader of a new session `sid` and of its group (`setsid`).
    pub fn set_session(&self, sid: u32) {
        self.sid.store(sid, Ordering::Relaxed);
        self.pgid.store(sid, Ordering::Relaxed);
    }

    /// Whether the kernel started the process: it is the init of its tree.
    pub fn plays_init(&self) -> bool {
        self.family.lock().reaper.is_none()
    }

    /// The parent's pid: 0 for a process the kernel started (or adopted).
    pub fn parent_pid(&self) -> u32 {
        let parent = self.family.lock().parent.clone();
        parent.and_then(|p| p.upgrade()).map_or(0, |p| p.pid)
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

    /// Starts a group exit with `wait_status` (the first one wins: `true` if it is this one)
    /// and kills every thread but the caller: each leaves at its next return to user mode, and
    /// sleeping ones are woken.
    fn kill_all_but_current(&self, wait_status: u32) -> bool {
        let first = !self.group_exit.swap(true, Ordering::AcqRel);
        if first {
            self.wait_status.store(wait_status, Ordering::Release);
        }
        self.kill_other_threads();
        first
    }

    /// Kills every thread but the caller: each leaves at its next return to user mode, and
    /// sleeping ones are woken.
    fn kill_other_threads(&self) {
        let me = sched::current() as *const Task;
        for thread in self.threads() {
            if core::ptr::eq(Arc::as_ptr(&thread), me) {
                continue;
            }
            thread.killed.store(true, Ordering::Release);
            signal::kick(&thread);
        }
    }
}

impl Process {
    /// `execve`'s `de_thread`: kills the other threads and waits until they are gone. `false`
    /// when the caller is killed meanwhile (a group exit, or another thread's `execve` won).
    fn kill_other_threads_for_exec(&self) -> bool {
        if self.execing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.kill_other_threads();
        let me = sched::current();
        while !me.is_killed() && !self.is_exiting() {
            if self.thread_count() == 1 {
                return true;
            }
            let _ = sched::timer::sleep_ns(100_000);
        }
        self.execing.store(false, Ordering::Release);
        false
    }

    /// `execve`'s swap, past its point of no return: the process runs `path` in `mm` with
    /// `task` as its only thread, in place of the calling `old` task. Handled signals go back
    /// to their default action (ignored ones stay ignored), and a `vfork` parent goes on.
    fn begin_new_image(
        &self,
        path: &str,
        mm: Arc<Mm>,
        invocation: Invocation,
        old: &Arc<Task>,
        task: Arc<Task>,
    ) {
        *self.path.lock() = String::from(path);
        self.set_invocation(invocation);
        *self.mm.lock() = Some(mm);
        self.did_exec.store(true, Ordering::Relaxed);
        self.signals.on_exec();
        self.timers.lock().on_exec();
        {
            let mut capabilities = self.capabilities.lock();
            let after = capabilities.after_exec();
            let gains = after.permitted & !capabilities.permitted != 0;
            self.dumpable.store(!gains, Ordering::Relaxed);
            *capabilities = after;
        }
        self.files_for_exec();
        {
            let mut threads = self.threads.lock();
            threads.retain(|t| !Arc::ptr_eq(t, old));
            threads.push(task);
        }
        self.execing.store(false, Ordering::Release);
        if let Some(done) = &self.vfork_done {
            done.complete();
        }
    }
}

/// Enters `process` in the registry, and in its parent's children if it has one.
pub fn register(process: Arc<Process>) {
    let mut processes = PROCESSES.lock();
    let parent = process.family.lock().parent.clone();
    if let Some(parent) = parent.and_then(|p| p.upgrade()) {
        parent.family.lock().children.push(process.clone());
    }
    processes.push(process);
}

/// Processes, live and zombie (for statistics and tests).
pub fn live_processes() -> Vec<Arc<Process>> {
    PROCESSES.lock().clone()
}

/// The process with id `pid`, live or zombie, or else the process of the live thread with
/// that id (as Linux's `find_task_by_vpid` finds any thread).
pub fn find(pid: u32) -> Option<Arc<Process>> {
    let processes = live_processes();
    if let Some(process) = processes.iter().find(|p| p.pid == pid) {
        return Some(process.clone());
    }
    processes
        .into_iter()
        .find(|process| process.threads().iter().any(|t| t.tid == pid))
}

/// The live user thread with id `tid`, in any process.
pub fn find_thread(tid: u32) -> Option<Arc<Task>> {
    live_processes()
        .iter()
        .find_map(|process| process.threads().into_iter().find(|t| t.tid == tid))
}

/// The child `pid` of `parent`, live or zombie.
pub fn child_of(parent: &Process, pid: u32) -> Option<Arc<Process>> {
    let family = parent.family.lock();
    family.children.iter().find(|c| c.pid == pid).cloned()
}

/// Whether `tid` is a thread that is not the first of its process (its id is no pid).
pub fn is_secondary_thread(tid: u32) -> bool {
    find(tid).is_some_and(|p| p.pid != tid)
}

/// Whether a process of group `pgid` exists in session `sid`.
pub fn group_exists_in_session(pgid: u32, sid: u32) -> bool {
    PROCESSES
        .lock()
        .iter()
        .any(|p| p.pgid() == pgid && p.sid() == sid)
}

/// Whether `process`'s group is orphaned (POSIX): no member has a parent in another group of
/// the same session, which could continue it after a stop. As on Linux, where children of init
/// do not count, a member whose parent is a kernel-started process (the init of its tree)
/// does not either.
pub fn is_group_orphaned(process: &Process) -> bool {
    let (pgid, sid) = (process.pgid(), process.sid());
    let processes = PROCESSES.lock();
    !processes.iter().any(|member| {
        let (parent, zombie) = {
            let family = member.family.lock();
            (family.parent.clone(), family.zombie)
        };
        member.pgid() == pgid
            && !zombie
            && parent
                .and_then(|p| p.upgrade())
                .is_some_and(|p| !p.plays_init() && p.pgid() != pgid && p.sid() == sid)
    })
}

/// The processes of group `pgid`, zombies included (they keep their group until collected).
pub fn group_members(pgid: u32) -> Vec<Arc<Process>> {
    live_processes()
        .into_iter()
        .filter(|p| p.pgid() == pgid)
        .collect()
}

/// Whether any process is in group `pgid`.
pub fn group_exists(pgid: u32) -> bool {
    PROCESSES.lock().iter().any(|p| p.pgid() == pgid)
}

/// `exit_group(code)` from the running thread. Never returns.
pub fn exit_group(code: u32) -> ! {
    group_exit(exited_with(code))
}

/// Ends the running thread's process with `wait_status`: kills the other threads, then exits
/// this one. Never returns.
pub fn group_exit(wait_status: u32) -> ! {
    // No owned value may live across the call below: it never returns, so it would never
    // be dropped.
    let process = sched::current().process().expect("a user thread");
    process.kill_all_but_current(wait_status);
    exit_thread(wait_status)
}

/// A killed thread leaving on its way back to user mode. Never returns.
pub fn exit_killed_thread() -> ! {
    let task = sched::current();
    let status = task.process().map_or(0, |p| p.wait_status());
    exit_thread(status)
}

/// Ends the running user thread; `wait_status` becomes the process's if it is the last thread
/// and no group exit set one. Never returns.
pub fn exit_thread(wait_status: u32) -> ! {
    let task = sched::current_arc();
    let user = task.user.as_ref().expect("a user thread");
    let process = user.process.clone();
    clear_child_tid(user);
    process
        .exited_ticks
        .fetch_add(task.ticks.load(Ordering::Relaxed), Ordering::Relaxed);
    let last = {
        let mut threads = process.threads.lock();
        threads.retain(|t| !Arc::ptr_eq(t, &task));
        threads.is_empty()
    };
    if last {
        if !process.group_exit.swap(true, Ordering::AcqRel) {
            process.wait_status.store(wait_status, Ordering::Release);
        }
        finish_process(&process, &user.mm);
    } else {
        signal::thread_exited(&process);
    }
    drop(process);
    drop(task);
    sched::exit_current()
}

/// `CLONE_CHILD_CLEARTID` (or `set_tid_address`) of the running thread, which is leaving its
/// address space (exit, a group exit included, or `execve`): as Linux's `mm_release`, writes 0
/// at the thread's clear-child-tid address and wakes a futex waiter there, when someone else
/// still uses the address space to see it (another thread of the process, or a process that
/// shares it: a `vfork` parent, a `CLONE_VM` child). A bad pointer is the program's problem.
pub(crate) fn clear_child_tid(user: &sched::task::UserThread) {
    let address = user.clear_child_tid.swap(0, Ordering::AcqRel);
    if address == 0 || user.process.thread_count() <= 1 && !user.mm.has_other_users() {
        return;
    }
    if crate::arch::uaccess::write_user(address, &0u32).is_ok() {
        futex::wake(&user.mm, address, 1, futex::BITSET_MATCH_ANY);
    }
}

/// Stops using the address space `mm` on this CPU, for good: loads the kernel's tables. Then,
/// if no other process uses `mm` (a `vfork` parent or child), waits until no CPU has it loaded
/// and tears it down. The running thread must be the last of its process to use `mm`.
pub(crate) fn leave_address_space(mm: &Mm) {
    let cpu = crate::arch::percpu::cpu_index();
    let bit = 1u64 << cpu;
    x86_64::instructions::interrupts::without_interrupts(|| {
        let user = sched::current().user.as_ref().expect("a user thread");
        user.left_mm.store(true, Ordering::Release);
        // SAFETY: the kernel's own tables, whose kernel half every address space shares.
        unsafe { crate::arch::mmu::load_root(crate::mm::kernel_tables::kernel_root()) };
        mm.cpu_mask.fetch_and(!bit, Ordering::SeqCst);
    });
    if mm.drop_user() {
        // Other threads' CPUs leave the mask once they switched to another address space.
        while mm.cpu_mask.load(Ordering::Acquire) != 0 {
            core::hint::spin_loop();
        }
        mm.teardown();
    }
}

/// The last thread's work: leave the address space and tear it down, close the descriptors
/// (and, for a session leader, give up the controlling terminal), keep a `vfork` promise,
/// hand the children to the reaper, then become a zombie for the parent to collect (or be
/// collected at once, with no parent).
fn finish_process(process: &Arc<Process>, mm: &Mm) {
    leave_address_space(mm);
    *process.mm.lock() = None;
    process.timers.lock().on_exit();
    // As on Linux, an ended process shows no executable, arguments or environment.
    process.set_invocation(Invocation::default());
    // Descriptors close now, not when the zombie is collected: a pipe's reader sees the end.
    // (A table shared with `CLONE_FILES` stays open for the others.)
    let table = core::mem::replace(&mut *process.files.lock(), FdTable::new());
    drop(table);
    if process.pid == process.sid() {
        crate::fs::tty::session_leader_exited(process.sid());
    }
    if let Some(done) = &process.vfork_done {
        done.complete();
    }
    let exit_signal = process.exit_signal();
    let (parent, policy) = {
        let mut processes = PROCESSES.lock();
        let (parent, reaper, children) = {
            let mut family = process.family.lock();
            family.zombie = true;
            (
                family.parent.clone().and_then(|p| p.upgrade()),
                family.reaper.clone().and_then(|p| p.upgrade()),
                core::mem::take(&mut family.children),
            )
        };
        let reaper = parent.as_ref().and_then(nearest_subreaper).or(reaper);
        adopt(&mut processes, children, reaper.as_ref());
        let policy = parent.as_ref().map(|p| p.signals.child_policy());
        // No zombie when nobody will collect it: no parent, or one whose SIGCHLD action says
        // so (`SIG_IGN`, `SA_NOCLDWAIT`) for a child that ends with SIGCHLD.
        let collect_now = match (&parent, policy) {
            (Some(_), Some(policy)) => policy.collect_at_once && exit_signal == signal::SIGCHLD,
            _ => true,
        };
        if collect_now {
            if let Some(parent) = &parent {
                parent
                    .family
                    .lock()
                    .children
                    .retain(|c| !Arc::ptr_eq(c, process));
            }
            processes.retain(|p| !Arc::ptr_eq(p, process));
        }
        (parent, policy)
    };
    // Not at info: under emulation the console line costs more than the fork, exit and wait
    // it reports (0.6 ms against 0.5 ms), and fork-heavy programs end thousands of processes.
    log::debug!(
        "process {} ({}) exited with status {}",
        process.pid,
        process.path(),
        process.exit_status()
    );
    process.exited.complete();
    if let (Some(parent), Some(policy)) = (parent, policy) {
        // Linux's do_notify_parent: the exit signal, unless it is SIGCHLD and ignored.
        if exit_signal != 0 && (exit_signal != signal::SIGCHLD || policy.signal_ends) {
            let info = sigchld_info(process, exit_signal, None);
            let _ = signal::send_signal_to_process(&parent, exit_signal, info);
        }
        parent.child_events.wake_all();
    }
}

/// The siginfo a parent gets with the signal for its child `child` (an end, or the job-control
/// change `job`).
fn sigchld_info(child: &Process, signo: u32, job: Option<signal::JobEvent>) -> signal::SigInfo {
    let (code, status) = wait::sigchld_code_and_status(child.wait_status(), job);
    let (ticks, _) = wait::usage_of(child);
    // si_pid and si_uid (root), si_status, si_utime and si_stime (in clock ticks).
    signal::SigInfo::new(
        signo,
        code,
        [
            u64::from(child.pid),
            status as u32 as u64,
            clock_ticks(ticks),
            0,
        ],
    )
}

/// Clock ticks per second: the unit of times user programs see (`USER_HZ`).
pub const USER_HZ: u64 = 100;

/// `timer_ticks` of the scheduler's timer in ns.
pub fn ticks_ns(timer_ticks: u64) -> u64 {
    timer_ticks * (1_000_000_000 / u64::from(crate::arch::apic::timer_hz()))
}

/// `timer_ticks` of the scheduler's timer in clock ticks ([`USER_HZ`]).
pub fn clock_ticks(timer_ticks: u64) -> u64 {
    timer_ticks * USER_HZ / u64::from(crate::arch::apic::timer_hz())
}

/// A job-control change of `process`: all its threads stopped, or a SIGCONT resumed it. Its
/// parent gets SIGCHLD (unless it asked not to with `SA_NOCLDSTOP`), and its waits look again.
pub(crate) fn job_control_changed(process: &Process, event: signal::JobEvent) {
    let parent = process.family.lock().parent.clone();
    let Some(parent) = parent.and_then(|p| p.upgrade()) else {
        return;
    };
    if parent.signals.child_policy().signal_stops {
        let info = sigchld_info(process, signal::SIGCHLD, Some(event));
        let _ = signal::send_signal_to_process(&parent, signal::SIGCHLD, info);
    }
    parent.child_events.wake_all();
}

/// The closest of `ancestor` and its ancestors that is a live child subreaper
/// (`PR_SET_CHILD_SUBREAPER`), if any.
fn nearest_subreaper(ancestor: &Arc<Process>) -> Option<Arc<Process>> {
    let mut candidate = Some(ancestor.clone());
    while let Some(process) = candidate {
        let family = process.family.lock();
        if !family.zombie && process.child_subreaper.load(Ordering::Relaxed) {
            drop(family);
            return Some(process);
        }
        candidate = family.parent.clone().and_then(|p| p.upgrade());
    }
    None
}

/// Gives `children` (of an ending process) to `reaper`, or to the kernel, which collects the
/// zombies among them at once. Under the registry lock.
fn adopt(
    processes: &mut Vec<Arc<Process>>,
    children: Vec<Arc<Process>>,
    reaper: Option<&Arc<Process>>,
) {
    if children.is_empty() {
        return;
    }
    let reaper = reaper.filter(|r| !r.family.lock().zombie);
    for child in children {
        let zombie = {
            let mut family = child.family.lock();
            family.parent = reaper.map(Arc::downgrade);
            family.zombie
        };
        // As Linux: an adopted process tells its new parent with SIGCHLD, whatever its
        // creator asked for (so plain waits see it).
        child.exit_signal.store(signal::SIGCHLD, Ordering::Relaxed);
        match reaper {
            Some(reaper) => reaper.family.lock().children.push(child),
            None if zombie => processes.retain(|p| !Arc::ptr_eq(p, &child)),
            None => {}
        }
    }
    if let Some(reaper) = reaper {
        reaper.child_events.wake_all();
    }
}
