//! Tasks: what the scheduler runs. A task is a kernel thread, or the kernel side of a user
//! thread (then it belongs to a process), with its own kernel stack.
//!
//! Kernel stacks live in a region of kernel address space of their own, each with an unmapped
//! guard page below it, so an overflow faults instead of corrupting the neighbour. Stacks of
//! exited tasks go to a pool and are reused as they are (frame accounting counts the pool
//! apart: [`pooled_stack_frames`]).
//!
//! A task's scheduling state (`state`, `queued`) is protected by its `sched` lock; `on_cpu` and
//! the saved context are handed between CPUs by the switch protocol (see the scheduler). Its
//! allowed CPUs (`allowed_cpus`) are an atomic mask that anyone may read and that only
//! `sched::set_affinity` changes (or its creator, before the task is started). Its scheduling
//! policy, real-time priority and nice value ([`SchedPolicy`]) are under their own lock.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch::percpu::CpuSet;
use crate::mm::{frame, kernel_tables};
use crate::proc::Process;
use crate::sync::IrqSpinLock;

/// Pages of each kernel stack (the guard page comes on top of these).
const STACK_PAGES: u64 = 8;
pub const STACK_SIZE: u64 = STACK_PAGES * 4096;

/// A mapped kernel stack with an unmapped guard page below it.
pub struct KernelStack {
    /// Lowest mapped address.
    base: u64,
}

impl KernelStack {
    pub fn top(&self) -> u64 {
        self.base + STACK_SIZE
    }

    fn allocate() -> Option<Self> {
        if let Some(stack) = STACK_POOL.lock().pop() {
            return Some(stack);
        }
        let guard = kernel_tables::reserve_virtual(STACK_PAGES + 1);
        let base = guard + 4096;
        for page in 0..STACK_PAGES {
            let Some(frame) = frame::allocate(0) else {
                // Give back what was mapped; the address range itself is not reused.
                Self::unmap(base, page);
                return None;
            };
            // SAFETY: the page is fresh address space from `reserve_virtual` and the frame was
            // just allocated: both ours.
            if unsafe { kernel_tables::map_kernel_page(base + page * 4096, frame.start()) }.is_err()
            {
                // The frame goes back (dropped).
                Self::unmap(base, page);
                return None;
            }
            // The mapping owns the frame now; `unmap` frees it.
            let _ = frame.into_raw();
        }
        Some(Self { base })
    }

    /// Unmaps and frees the first `pages` pages from `base` (a stack whose allocation failed
    /// half-way). The translations are shot down on every CPU before the frames go back.
    fn unmap(base: u64, pages: u64) {
        let mut frames = Vec::new();
        for page in 0..pages {
            // SAFETY: the stack is ours and unused (it never ran or its task is gone).
            if let Ok(phys) = unsafe { kernel_tables::unmap_kernel_page(base + page * 4096) } {
                frames.push(phys);
            }
        }
        crate::arch::smp::shootdown(
            crate::arch::percpu::CpuSet::all_online(),
            crate::arch::smp::Flush::Range {
                start: base,
                end: base + pages * 4096,
            },
        );
        for phys in frames {
            // SAFETY: a frame of this stack, mapped by `allocate` and now unmapped and shot down.
            unsafe { frame::free(phys, 0) };
        }
    }
}

/// Stacks of exited tasks, ready for reuse.
static STACK_POOL: IrqSpinLock<Vec<KernelStack>> = IrqSpinLock::new(Vec::new());

/// Frames held by pooled stacks (for frame accounting).
#[cfg(feature = "ktest")]
pub fn pooled_stack_frames() -> usize {
    STACK_POOL.lock().len() * STACK_PAGES as usize
}

/// Room left at the top of a user thread's kernel stack for its first user-mode frame.
const USER_FRAME_RESERVE: u64 = (size_of::<crate::arch::trap::TrapFrame>() as u64 + 15) & !15;

/// Runnable: running, or waiting in a run queue.
pub const RUNNABLE: u8 = 0;
/// Waiting for a wake-up ([`super::wake`]).
pub const SLEEPING: u8 = 1;
/// Finished; never runs again.
pub const DEAD: u8 = 2;

/// The scheduler's view of a task, under [`Task::sched`].
pub struct SchedState {
    pub state: u8,
    /// In a run queue or running: owned by the scheduler. False only for a sleeping or dead
    /// task that has switched out (or is about to): a wake-up must queue it again.
    pub queued: bool,
}

/// What a user thread adds to a task.
pub struct UserThread {
    pub process: Arc<Process>,
    /// The address space the thread runs in, fixed for its life (`execve` gives the thread a
    /// new task). Its own faults and system calls use this handle, with no lock.
    pub mm: Arc<crate::mm::addrspace::Mm>,
    /// The FS base (thread pointer), loaded at every switch to the task.
    pub fs_base: AtomicU64,
    /// `set_tid_address`/`CLONE_CHILD_CLEARTID`: cleared and futex-woken when the thread exits.
    pub clear_child_tid: AtomicU64,
    /// `set_robust_list`: the head of the thread's robust futex list, as `get_robust_list`
    /// reports it (the list is not walked at exit); 0 for none, as a new thread starts.
    pub robust_list: AtomicU64,
    /// `CLONE_CHILD_SETTID` of a fork: where the thread writes its id in its own (new) address
    /// space before it first enters user mode; 0 for none.
    pub set_child_tid: AtomicU64,
    /// The registers the thread first enters user mode with (taken at its first run).
    pub initial_frame: spin::Mutex<Option<crate::arch::trap::TrapFrame>>,
    /// Set when the process's last thread has left the address space to tear it down: from
    /// then on the scheduler treats the task like a kernel thread.
    pub left_mm: AtomicBool,
    /// Blocked and pending signals, the alternate signal stack (see `proc::signal`).
    pub signals: crate::proc::signal::ThreadSignals,
    /// The restartable-sequences registration and its pending update (see `proc::rseq`).
    pub rseq: crate::proc::rseq::Rseq,
    /// x87/SSE registers while the thread is switched out; touched only by the CPU switching
    /// it (see `Task::context`'s hand-over).
    fpu: UnsafeCell<alloc::boxed::Box<crate::arch::context::FpuState>>,
}

// SAFETY: `fpu` is accessed only by the switch code of the CPU that owns the task at that moment
// (the `on_cpu` hand-over orders successive owners); the rest are atomics and locks.
unsafe impl Sync for UserThread {}

impl UserThread {
    pub fn new(
        process: Arc<Process>,
        mm: Arc<crate::mm::addrspace::Mm>,
        fs_base: u64,
        clear_child_tid: u64,
        frame: crate::arch::trap::TrapFrame,
    ) -> Self {
        Self {
            process,
            mm,
            fs_base: AtomicU64::new(fs_base),
            clear_child_tid: AtomicU64::new(clear_child_tid),
            robust_list: AtomicU64::new(0),
            set_child_tid: AtomicU64::new(0),
            initial_frame: spin::Mutex::new(Some(frame)),
            left_mm: AtomicBool::new(false),
            signals: crate::proc::signal::ThreadSignals::new(),
            rseq: crate::proc::rseq::Rseq::new(),
            fpu: UnsafeCell::new(alloc::boxed::Box::new(
                crate::arch::context::FpuState::initial(),
            )),
        }
    }

    /// The thread starts with the calling thread's x87/SSE registers as they are now (clone
    /// and fork copy them, as Linux does), rather than the initial state.
    pub fn with_current_fpu(mut self) -> Self {
        // The new thread is not running, so its area is ours to fill.
        self.fpu.get_mut().save();
        self
    }

    /// Saves the CPU's x87/SSE registers (switching away from this thread).
    ///
    /// # Safety
    /// Only the CPU running the thread, while switching away from it, with interrupts disabled.
    pub unsafe fn save_fpu(&self) {
        // SAFETY: see above: no one else touches the area meanwhile.
        unsafe { (*self.fpu.get()).save() }
    }

    /// Loads the thread's x87/SSE registers (switching to it).
    ///
    /// # Safety
    /// Only the CPU about to run the thread, after taking it over, with interrupts disabled.
    pub unsafe fn restore_fpu(&self) {
        // SAFETY: see above.
        unsafe { (*self.fpu.get()).restore() }
    }
}

/// `SCHED_OTHER`: the default policy.
pub const SCHED_OTHER: u32 = 0;

/// A task's scheduling policy (`SCHED_OTHER`, `SCHED_FIFO`, ...), real-time priority and nice
/// value, as `sched_setscheduler`, `sched_setparam` and `setpriority` set them and their
/// `get` counterparts report them, with Linux's values. A new task inherits its creator's
/// (less what `SCHED_RESET_ON_FORK` resets). The scheduler itself shares the CPUs round-robin
/// whatever they say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPolicy {
    pub policy: u32,
    /// 1-99 under `SCHED_FIFO` and `SCHED_RR`, else 0.
    pub rt_priority: u32,
    /// -20 (most favoured) to 19.
    pub nice: i32,
    /// `SCHED_RESET_ON_FORK`: a task this one creates starts with the default policy and a
    /// nice value of at least 0.
    pub reset_on_fork: bool,
}

impl SchedPolicy {
    /// What a task created by one with this policy starts with.
    fn for_child(self) -> Self {
        if !self.reset_on_fork {
            return self;
        }
        Self {
            policy: if self.rt_priority != 0 {
                SCHED_OTHER
            } else {
                self.policy
            },
            rt_priority: 0,
            nice: self.nice.max(0),
            reset_on_fork: false,
        }
    }
}

/// How a kernel thread starts.
type Entry = Box<dyn FnOnce() + Send>;

pub struct Task {
    pub tid: u32,
    name: spin::Mutex<String>,
    pub sched: IrqSpinLock<SchedState>,
    /// Set from the moment a CPU picks the task until the switch away from it is complete (its
    /// context saved): no other CPU may resume it meanwhile.
    pub on_cpu: AtomicBool,
    /// The CPU it runs on, or last ran on.
    pub cpu: AtomicUsize,
    /// The CPUs it may run on, a [`CpuSet`] (every CPU unless pinned, or `sched_setaffinity`
    /// narrowed it). Changed only through [`Task::set_allowed_cpus`].
    allowed_cpus: AtomicU64,
    /// The scheduling policy, real-time priority and nice value.
    policy: spin::Mutex<SchedPolicy>,
    /// The saved stack pointer while the task is not running.
    context: UnsafeCell<u64>,
    /// The kernel stack; `None` for the boot context of the bootstrap CPU and the APs' idle
    /// tasks, which run on stacks they were started with.
    stack: Option<KernelStack>,
    entry: spin::Mutex<Option<Entry>>,
    /// Asked to exit (exit_group, a fatal signal): interruptible and killable sleeps end, and
    /// the task exits before it returns to user mode.
    pub killed: AtomicBool,
    pub user: Option<UserThread>,
    /// Ticks of the timer spent running (user and kernel).
    pub ticks: AtomicU64,
    /// Bit `n`: ran on CPU `n` (for the demo's and tests' reports).
    pub cpus_seen: AtomicU64,
}

// SAFETY: `context` is written only by the switch that saves the task (on the CPU that runs it)
// and read only by the switch that resumes it, after the `on_cpu` hand-off orders the two.
unsafe impl Sync for Task {}

/// The id of the first program, as on Linux: [`allocate_tid`] never hands it out.
const INIT_PID: u32 = 1;
static NEXT_TID: AtomicU32 = AtomicU32::new(INIT_PID + 1);
static INIT_PID_TAKEN: AtomicBool = AtomicBool::new(false);

pub fn allocate_tid() -> u32 {
    NEXT_TID.fetch_add(1, Ordering::Relaxed)
}

/// Process id 1 for the first program, once; `None` after that.
pub fn take_init_pid() -> Option<u32> {
    (!INIT_PID_TAKEN.swap(true, Ordering::Relaxed)).then_some(INIT_PID)
}

/// The highest task id handed out since boot (`/proc/stat`'s `processes`, `/proc/loadavg`).
pub fn tids_allocated() -> u32 {
    NEXT_TID.load(Ordering::Relaxed) - 1
}

impl Task {
    fn build(
        tid: u32,
        name: &str,
        stack: Option<KernelStack>,
        entry: Option<Entry>,
        user: Option<UserThread>,
    ) -> Self {
        Self {
            tid,
            name: spin::Mutex::new(String::from(name)),
            sched: IrqSpinLock::new(SchedState {
                state: RUNNABLE,
                queued: true,
            }),
            on_cpu: AtomicBool::new(false),
            cpu: AtomicUsize::new(0),
            allowed_cpus: AtomicU64::new(CpuSet::ALL.0),
            policy: spin::Mutex::new(SchedPolicy::default()),
            context: UnsafeCell::new(0),
            stack,
            entry: spin::Mutex::new(entry),
            killed: AtomicBool::new(false),
            user,
            ticks: AtomicU64::new(0),
            cpus_seen: AtomicU64::new(0),
        }
    }

    /// The context this CPU is running in now, as a task (the boot context, an AP's idle loop).
    pub fn for_current_context(name: &str) -> Arc<Self> {
        let task = Self::build(allocate_tid(), name, None, None, None);
        task.on_cpu.store(true, Ordering::Relaxed);
        Arc::new(task)
    }

    /// A kernel thread that will run `entry`; the scheduler starts it at its first switch.
    pub fn new_kernel(name: &str, entry: Entry) -> Option<Arc<Self>> {
        Self::new_kernel_in(name, entry, None)
    }

    /// A kernel thread that works in a process's address space (`user`): its faults and uaccess
    /// go to that address space, as a user thread's would (in-kernel torture tests).
    pub fn new_kernel_in(name: &str, entry: Entry, user: Option<UserThread>) -> Option<Arc<Self>> {
        let stack = KernelStack::allocate()?;
        let task = Arc::new(Self::build(
            allocate_tid(),
            name,
            Some(stack),
            Some(entry),
            user,
        ));
        task.prepare(kernel_thread_start, 0);
        Some(task)
    }

    /// A user thread of `process`, with thread id `tid`, whose first switch runs
    /// `start(task)` (which enters user mode and never returns).
    pub fn new_user(
        tid: u32,
        name: &str,
        user: UserThread,
        start: extern "C" fn(usize) -> !,
    ) -> Option<Arc<Self>> {
        let stack = KernelStack::allocate()?;
        let task = Arc::new(Self::build(tid, name, Some(stack), None, Some(user)));
        // The top of the stack stays free for the frame that enters user mode.
        task.prepare(start, USER_FRAME_RESERVE);
        Some(task)
    }

    fn prepare(self: &Arc<Self>, start: extern "C" fn(usize) -> !, reserve: u64) {
        let top = self.stack.as_ref().expect("a new task has a stack").top() - reserve;
        // SAFETY: the stack is fresh (or pooled, hence unused) and ours; the argument is the
        // task's own address, valid while the task lives (it is running).
        let rsp =
            unsafe { crate::arch::context::prepare_stack(top, start, Arc::as_ptr(self) as usize) };
        // SAFETY: the task is not running anywhere yet.
        unsafe { *self.context.get() = rsp };
    }

    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    pub fn set_name(&self, name: &str) {
        *self.name.lock() = String::from(name);
    }

    pub fn stack(&self) -> Option<&KernelStack> {
        self.stack.as_ref()
    }

    /// Where the switch saves this task's stack pointer.
    pub fn context_ptr(&self) -> *mut u64 {
        self.context.get()
    }

    pub fn process(&self) -> Option<&Arc<Process>> {
        self.user.as_ref().map(|u| &u.process)
    }

    /// The address space the task runs in: its process's, until the task left it at exit.
    pub fn active_mm(&self) -> Option<&crate::mm::addrspace::Mm> {
        self.user
            .as_ref()
            .filter(|u| !u.left_mm.load(Ordering::Acquire))
            .map(|u| &*u.mm)
    }

    /// The CPUs the task may run on (some of them may be offline).
    pub fn allowed_cpus(&self) -> CpuSet {
        CpuSet(self.allowed_cpus.load(Ordering::Acquire))
    }

    /// Whether the task may run on CPU `cpu`: one load and a bit test, for the scheduler's
    /// hot paths.
    pub fn may_run_on(&self, cpu: usize) -> bool {
        self.allowed_cpus().contains(cpu)
    }

    /// Sets the CPUs the task may run on; at least one of them must be online when the task
    /// runs (the boot task is pinned to the bootstrap CPU before that CPU counts as online).
    /// Before the task is started, this is all there is to it; for a started task,
    /// `sched::set_affinity` also moves it off a CPU the set leaves out. Release: pairs with
    /// the Acquire loads, so that whoever sees the new set also sees what its setter wrote
    /// before (a user thread told that its set changed, say).
    pub fn set_allowed_cpus(&self, cpus: CpuSet) {
        self.allowed_cpus.store(cpus.0, Ordering::Release);
    }

    pub fn policy(&self) -> SchedPolicy {
        *self.policy.lock()
    }

    pub fn set_policy(&self, policy: SchedPolicy) {
        *self.policy.lock() = policy;
    }

    /// A new task (not started yet) takes what `creator` (the thread calling `clone`, `fork`)
    /// passes on: the CPUs it may run on and its scheduling policy.
    pub fn inherit_scheduling(&self, creator: &Task) {
        self.set_allowed_cpus(creator.allowed_cpus());
        self.set_policy(creator.policy().for_child());
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Whether an interruptible sleep must end: the task was killed, or a signal waits for the
    /// user thread (one it does not block, or a group stop to join; see `proc::signal`).
    pub fn signal_pending(&self) -> bool {
        self.is_killed() || self.user.as_ref().is_some_and(|u| u.signals.has_work())
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            STACK_POOL.lock().push(stack);
        }
    }
}

/// A kernel thread's first code: finish the switch, run the entry, exit.
extern "C" fn kernel_thread_start(task: usize) -> ! {
    super::finish_switch();
    x86_64::instructions::interrupts::enable();
    // SAFETY: `task` is the running task's own address (see `prepare`); it lives while it runs.
    let task = unsafe { &*(task as *const Task) };
    let entry = task
        .entry
        .lock()
        .take()
        .expect("a kernel thread starts once");
    entry();
    super::exit_current()
}
