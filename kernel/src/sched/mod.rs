//! The scheduler: per-CPU run queues of tasks, the switch between them, sleeping and waking.
//!
//! # Policy
//! Round robin per CPU. Kernel code is never preempted: a task in the kernel
//! runs until it sleeps, exits, returns to user mode or calls [`schedule`]. The timer tick only
//! asks for a switch ([`tick`]); the switch happens when the task is about to return to user
//! mode ([`return_to_user`]). New tasks go to the least-loaded CPU, an idle CPU steals queued
//! tasks from busy ones, and waking a task queued on a halted CPU sends that CPU an IPI.
//!
//! # Affinity
//! A task runs only on the CPUs of its allowed set (`sched_setaffinity`; the boot task is pinned
//! to the bootstrap CPU). Spawning and waking choose among them, and a stealer takes only tasks
//! that allow it. A task whose set stops including the CPU it is on moves at its next
//! [`schedule`] or return to user mode (a task queued there meanwhile runs there once more):
//! [`schedule`] queues it on an allowed CPU once its switch away is complete
//! ([`finish_switch`]), never before, so the `on_cpu` rule below still holds.
//!
//! # Who protects what
//! - A CPU's run queue: its `IrqSpinLock`. Any CPU may push (wake-ups, spawning) or pop
//!   (stealing).
//! - A CPU's `current`/`switched_out` slots: that CPU alone, with interrupts disabled.
//! - A task's `state`/`queued`: the task's `sched` lock. Sleeping is race-free because the
//!   sleeper publishes `SLEEPING` (followed by a full fence) *before* it checks its condition,
//!   and the waker makes the condition true *before* it takes the task's lock to read the state:
//!   one of the two always sees the other (no lost wake-ups).
//! - A task's saved context: handed over through `on_cpu`. The CPU switching away clears it
//!   (Release) only after the switch saved the context. A waker queues a task only once it is
//!   clear (Acquire), and stealers skip tasks that still have it set, so a CPU picks from its
//!   queue only tasks that run nowhere — apart from its own requeued task, which it waits for
//!   while it finishes switching away from it. (Without that, two CPUs could each wait for the
//!   task the other is switching away from.)
//!
//! Wake-ups and spawning happen in process context only (they may allocate); interrupt
//! handlers set flags that process context acts on.

#[cfg(feature = "ktest")]
mod ktests;
pub mod task;
pub mod timer;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, fence};

use spin::Once;
use x86_64::instructions::interrupts;

use crate::arch::percpu::{self, CpuBlock, CpuSet};
use crate::sync::IrqSpinLock;
pub use task::{DEAD, RUNNABLE, SLEEPING, Task};

/// Timer ticks a task runs before it yields the CPU to queued tasks (at its next return to
/// user mode).
pub const SLICE_MS: u64 = 10;

/// A slot only its own CPU touches, with interrupts disabled.
struct CpuLocal<T>(UnsafeCell<T>);

// SAFETY: see the type's documentation: one CPU, interrupts disabled, so never two accesses at
// once.
unsafe impl<T> Sync for CpuLocal<T> {}

/// One CPU's scheduler state (inside its `CpuBlock`).
pub struct CpuSched {
    run_queue: IrqSpinLock<VecDeque<Arc<Task>>>,
    /// The running task (raw, for [`current`] from anywhere on this CPU).
    current: AtomicPtr<Task>,
    /// The reference that keeps the running task alive.
    current_ref: CpuLocal<Option<Arc<Task>>>,
    /// The task the last switch left, until the next task finishes the switch.
    switched_out: CpuLocal<Option<Arc<Task>>>,
    /// The task in `switched_out` is runnable but may not run here: once its switch is
    /// complete, it goes to an allowed CPU's queue.
    switched_out_moves: CpuLocal<bool>,
    idle: Once<Arc<Task>>,
    /// Set by the tick (or a wake-up) when the running task should give the CPU up.
    pub need_resched: AtomicBool,
    /// Set by a tick that found CPU-time timers armed: the running task looks at its
    /// process's on its way back to user mode.
    cpu_timers_due: AtomicBool,
    /// The CPU runs its idle task.
    in_idle: AtomicBool,
    /// Tick count at which the running task's slice began.
    slice_start: AtomicU64,
    pub context_switches: AtomicU64,
}

impl Default for CpuSched {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuSched {
    pub const fn new() -> Self {
        Self {
            run_queue: IrqSpinLock::new(VecDeque::new()),
            current: AtomicPtr::new(core::ptr::null_mut()),
            current_ref: CpuLocal(UnsafeCell::new(None)),
            switched_out: CpuLocal(UnsafeCell::new(None)),
            switched_out_moves: CpuLocal(UnsafeCell::new(false)),
            idle: Once::new(),
            need_resched: AtomicBool::new(false),
            cpu_timers_due: AtomicBool::new(false),
            in_idle: AtomicBool::new(false),
            slice_start: AtomicU64::new(0),
            context_switches: AtomicU64::new(0),
        }
    }

    /// Tasks waiting in the run queue.
    pub fn queued(&self) -> usize {
        self.run_queue.lock().len()
    }

    /// Queued tasks plus the running one unless it is the idle task.
    fn load(&self) -> usize {
        self.queued() + usize::from(!self.in_idle.load(Ordering::Relaxed))
    }

    pub fn is_idle(&self) -> bool {
        self.in_idle.load(Ordering::Relaxed)
    }

    /// Timer ticks this CPU spent in its idle task (`/proc/stat`, `/proc/uptime`).
    pub fn idle_ticks(&self) -> u64 {
        self.idle
            .get()
            .map_or(0, |idle| idle.ticks.load(Ordering::Relaxed))
    }
}

/// The running task. It stays alive while it runs, which is as long as the caller can use it.
pub fn current() -> &'static Task {
    let ptr = percpu::this_cpu().sched.current.load(Ordering::Relaxed);
    // SAFETY: set before any code runs in the task (`init_cpu`, the switch), and the task is
    // kept alive by `current_ref` while it runs on this CPU; the reference is used only by code
    // running in that task.
    unsafe { ptr.as_ref() }.expect("the scheduler is initialised on this CPU")
}

/// A counted reference to the running task.
pub fn current_arc() -> Arc<Task> {
    let ptr = percpu::this_cpu().sched.current.load(Ordering::Relaxed);
    // SAFETY: `ptr` came from an `Arc` that `current_ref` holds while the task runs.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

/// Whether the scheduler runs on this CPU (tasks exist).
pub fn is_running() -> bool {
    !percpu::this_cpu()
        .sched
        .current
        .load(Ordering::Relaxed)
        .is_null()
}

/// Tasks a CPU's run queue has room for from the start.
const RUN_QUEUE_START: usize = 8;

/// Makes the context this CPU runs in a task: on the bootstrap CPU the boot context becomes
/// the task `kmain` and an idle task is created; on an AP the boot context becomes the idle
/// task. Interrupts are disabled.
pub fn init_cpu(bootstrap: bool) {
    let cpu = percpu::this_cpu();
    let index = cpu.index;
    let sched = &cpu.sched;
    let this = if bootstrap {
        let idle = Task::new_kernel(
            &alloc::format!("idle/{index}"),
            alloc::boxed::Box::new(|| idle_loop()),
        )
        .expect("memory for the bootstrap CPU's idle task");
        idle.cpu.store(index, Ordering::Relaxed);
        sched.idle.call_once(|| idle);
        // The boot task stays on the bootstrap CPU: the test runner and its watchdog (the
        // bootstrap CPU's timer) rely on it.
        let kmain = Task::for_current_context("kmain");
        kmain.set_allowed_cpus(CpuSet::default().with(index));
        kmain
    } else {
        let idle = Task::for_current_context(&alloc::format!("idle/{index}"));
        sched.idle.call_once(|| idle.clone());
        sched.in_idle.store(true, Ordering::Relaxed);
        idle
    };
    // Room for a few tasks now rather than at the first wake-up that lands here, so that
    // memory a CPU's queue holds for good is taken at boot (a leak check in a test would
    // otherwise count it against the first processes that ran on the CPU).
    sched.run_queue.lock().reserve(RUN_QUEUE_START);
    this.cpu.store(index, Ordering::Relaxed);
    this.cpus_seen.fetch_or(1 << index, Ordering::Relaxed);
    sched
        .current
        .store(Arc::as_ptr(&this).cast_mut(), Ordering::Relaxed);
    // SAFETY: this CPU, interrupts disabled (see `CpuLocal`).
    unsafe { *sched.current_ref.0.get() = Some(this) };
}

fn idle_task(cpu: &CpuBlock) -> &Arc<Task> {
    cpu.sched
        .idle
        .get()
        .expect("every online CPU has an idle task")
}

/// Gives the CPU to the next queued task, if any. A running task that is still runnable goes
/// to the back of the queue, or to an allowed CPU's if this CPU is no longer one of its own;
/// one that is sleeping or dead stays off it until woken (or for good). Returns when the
/// calling task runs again. Never in an interrupt handler or an RCU read-side section.
#[track_caller]
pub fn schedule() {
    crate::sync::rcu::might_sleep();
    // A context switch is a quiescent state, and a place to run a batch of ready RCU callbacks
    // (CPUs busy in kernel threads would otherwise never run them).
    crate::sync::rcu::quiescent_state();
    let were_enabled = interrupts::are_enabled();
    interrupts::disable();
    let cpu = percpu::this_cpu();
    let sched = &cpu.sched;
    sched.need_resched.store(false, Ordering::Relaxed);

    let prev = current();
    let prev_is_idle = sched.in_idle.load(Ordering::Relaxed);
    let still_runnable = {
        let mut state = prev.sched.lock();
        if state.state == RUNNABLE {
            true
        } else {
            state.queued = false;
            false
        }
    };
    // The idle task is never queued, and never moves.
    let moves = still_runnable && !prev_is_idle && !prev.may_run_on(cpu.index);
    let next = {
        let mut queue = sched.run_queue.lock();
        if still_runnable && !prev_is_idle && !moves {
            queue.push_back(current_arc());
        }
        queue.pop_front()
    };
    let next = match next {
        Some(next) => next,
        None if still_runnable && !moves => {
            // Only the idle task (which never queues itself) gets here with nothing queued.
            restore(were_enabled);
            return;
        }
        None => steal(cpu).unwrap_or_else(|| idle_task(cpu).clone()),
    };
    if core::ptr::eq(Arc::as_ptr(&next), prev) {
        restore(were_enabled);
        return;
    }
    // SAFETY: this CPU, interrupts disabled; `finish_switch` reads it after the switch.
    unsafe { *sched.switched_out_moves.0.get() = moves };
    switch_to(cpu, prev, next);
    finish_switch();
    restore(were_enabled);
}

fn restore(were_enabled: bool) {
    if were_enabled {
        interrupts::enable();
    }
}

/// Switches from `prev` (the running task) to `next`. Interrupts are disabled.
fn switch_to(cpu: &CpuBlock, prev: &Task, next: Arc<Task>) {
    let sched = &cpu.sched;
    // The task may still be switching out on the CPU it ran on last: wait until its context
    // is saved.
    while next.on_cpu.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    next.on_cpu.store(true, Ordering::Relaxed);
    next.cpu.store(cpu.index, Ordering::Relaxed);
    next.cpus_seen.fetch_or(1 << cpu.index, Ordering::Relaxed);
    crate::mm::switch_address_space(prev, &next, cpu.index);
    if let Some(stack) = next.stack() {
        cpu.tables.set_kernel_stack(stack.top());
        cpu.kernel_stack_top.store(stack.top(), Ordering::Relaxed);
    }
    if let Some(user) = &prev.user {
        // SAFETY: this CPU runs `prev` and is switching away from it, interrupts disabled.
        unsafe { user.save_fpu() };
        user.rseq.switched_out(&user.mm);
    }
    if let Some(user) = &next.user {
        // SAFETY: this CPU took `next` over (on_cpu) and is about to run it.
        unsafe { user.restore_fpu() };
        x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new_truncate(
            user.fs_base.load(Ordering::Relaxed),
        ));
        user.rseq.switched_in(&user.mm);
    }
    let is_idle = core::ptr::eq(Arc::as_ptr(&next), Arc::as_ptr(idle_task(cpu)));
    sched.in_idle.store(is_idle, Ordering::Relaxed);
    sched
        .slice_start
        .store(cpu.ticks.load(Ordering::Relaxed), Ordering::Relaxed);
    sched.context_switches.fetch_add(1, Ordering::Relaxed);
    let next_context = {
        // SAFETY: `next` is not running anywhere (on_cpu was clear and is ours now), so its
        // saved context is stable.
        unsafe { *next.context_ptr() }
    };
    sched
        .current
        .store(Arc::as_ptr(&next).cast_mut(), Ordering::Relaxed);
    // SAFETY: this CPU, interrupts disabled.
    unsafe {
        let outgoing = (*sched.current_ref.0.get()).replace(next);
        *sched.switched_out.0.get() = outgoing;
    }
    // SAFETY: interrupts are disabled; `next` was saved by a switch or prepared as a new task
    // and is ours to run (on_cpu); `prev`'s context slot lives as long as `prev`, which
    // `switched_out` keeps alive until the switch is complete.
    unsafe { crate::arch::context::switch(prev.context_ptr(), next_context) };
}

/// The second half of a switch, run by the task switched to: the task switched away from has
/// its context saved now, so other CPUs may resume it, and one that may not run here goes to
/// a CPU it may run on. Interrupts are disabled.
pub fn finish_switch() {
    let sched = &percpu::this_cpu().sched;
    // SAFETY: this CPU, interrupts disabled.
    let (prev, moves) = unsafe {
        (
            (*sched.switched_out.0.get()).take(),
            core::mem::take(&mut *sched.switched_out_moves.0.get()),
        )
    };
    if let Some(prev) = prev {
        prev.on_cpu.store(false, Ordering::Release);
        if moves {
            enqueue_on(wake_target(&prev), prev);
        }
    }
}

/// Marks the running task asleep ahead of checking its wait condition; see the module docs.
pub fn set_current_sleeping() {
    current().sched.lock().state = SLEEPING;
    // The condition loads that follow must not pass the store above (store-load order).
    fence(Ordering::SeqCst);
}

/// Undoes [`set_current_sleeping`] when the condition turned out true.
pub fn set_current_runnable() {
    current().sched.lock().state = RUNNABLE;
}

/// Wakes `task` if it sleeps; returns whether it did. Process context only.
pub fn wake(task: &Arc<Task>) -> bool {
    let enqueue = {
        let mut state = task.sched.lock();
        if state.state != SLEEPING {
            return false;
        }
        state.state = RUNNABLE;
        !core::mem::replace(&mut state.queued, true)
    };
    if enqueue {
        // The task may still be switching out on its CPU: queue it only once its context is
        // saved, so that no CPU ever picks a task that runs elsewhere (two CPUs each waiting
        // for the other's task to leave would wait forever).
        while task.on_cpu.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let target = wake_target(task);
        enqueue_on(target, task.clone());
    }
    true
}

/// The CPU a woken task goes to: where it ran last, unless that CPU is busy (or no longer
/// allowed) and another allowed one idles.
fn wake_target(task: &Task) -> usize {
    let allowed = task.allowed_cpus();
    let last = task.cpu.load(Ordering::Relaxed);
    match percpu::cpu(last) {
        Some(cpu)
            if allowed.contains(last)
                && cpu.online.load(Ordering::Acquire)
                && cpu.sched.load() == 0 =>
        {
            last
        }
        _ => least_loaded_cpu(allowed),
    }
}

/// The least-loaded online CPU of `allowed`, which names one for every task that runs (see
/// `Task::set_allowed_cpus`).
fn least_loaded_cpu(allowed: CpuSet) -> usize {
    percpu::online_cpus()
        .filter(|cpu| allowed.contains(cpu.index))
        .min_by_key(|cpu| cpu.sched.load())
        .map_or(0, |cpu| cpu.index)
}

/// Puts `task` in CPU `target`'s run queue and makes sure that CPU notices.
fn enqueue_on(target: usize, task: Arc<Task>) {
    let cpu = percpu::cpu(target).expect("an online CPU");
    cpu.sched.run_queue.lock().push_back(task);
    if target == percpu::cpu_index() {
        if cpu.sched.is_idle() {
            cpu.sched.need_resched.store(true, Ordering::Relaxed);
        }
    } else if cpu.sched.is_idle() {
        crate::arch::apic::send_ipi(
            cpu.apic_id.load(Ordering::Relaxed),
            crate::arch::apic::WAKE_VECTOR,
        );
    }
}

/// Starts `task` (new) on the least-loaded CPU it may run on.
pub fn spawn(task: Arc<Task>) {
    let target = least_loaded_cpu(task.allowed_cpus());
    task.cpu.store(target, Ordering::Relaxed);
    enqueue_on(target, task);
}

/// Starts a kernel thread running `entry`.
pub fn spawn_kernel(name: &str, entry: impl FnOnce() + Send + 'static) -> Option<Arc<Task>> {
    let task = Task::new_kernel(name, alloc::boxed::Box::new(entry))?;
    spawn(task.clone());
    Some(task)
}

/// Takes a queued task from the busiest other CPU, for an idle `cpu`.
fn steal(cpu: &CpuBlock) -> Option<Arc<Task>> {
    let victim = percpu::online_cpus()
        .filter(|other| other.index != cpu.index)
        .max_by_key(|other| other.sched.queued())?;
    let mut queue = victim.sched.run_queue.lock();
    // Only a task allowed here, and not one that still switches out on the victim (its own
    // requeued task).
    let index = queue
        .iter()
        .rposition(|task| task.may_run_on(cpu.index) && !task.on_cpu.load(Ordering::Acquire))?;
    queue.remove(index)
}

/// Lets `task` run only on `cpus` (at least one of them online), from now on: its next
/// wake-up goes to one of them, and if it runs or is queued elsewhere it moves at its next
/// [`schedule`] or return to user mode. A task running in user mode on a CPU the set leaves out
/// gets an IPI, which brings it into the kernel and out through [`return_to_user`].
pub fn set_affinity(task: &Task, cpus: CpuSet) {
    task.set_allowed_cpus(cpus);
    if core::ptr::eq(task, current()) || !task.on_cpu.load(Ordering::Acquire) {
        return;
    }
    let index = task.cpu.load(Ordering::Relaxed);
    if cpus.contains(index) {
        return;
    }
    if let Some(cpu) = percpu::cpu(index) {
        crate::arch::apic::send_ipi(
            cpu.apic_id.load(Ordering::Relaxed),
            crate::arch::apic::WAKE_VECTOR,
        );
    }
}

/// Gives the CPU to other runnable tasks, if any.
pub fn yield_now() {
    schedule();
}

/// A preemption point for long kernel loops (Linux's `cond_resched`): kernel code is not
/// preempted, so a loop that may run for long reports an RCU quiescent state here and gives the
/// CPU away when the tick asked for a switch. Not inside an RCU read section or under a
/// spinlock.
#[track_caller]
pub fn cond_resched() {
    crate::sync::rcu::quiescent_state();
    if percpu::this_cpu()
        .sched
        .need_resched
        .load(Ordering::Relaxed)
    {
        schedule();
    }
}

/// Ends the running kernel thread (or, from `proc`, a user thread whose process state is
/// already settled). Never returns.
pub fn exit_current() -> ! {
    interrupts::disable();
    current().sched.lock().state = DEAD;
    schedule();
    unreachable!("a dead task was resumed");
}

/// The timer tick (interrupt context): accounts the tick, asks for a look at the CPU-time
/// timers while any are armed, and asks for a switch when the slice is used up and others
/// wait, or when a sleeper's timer expired.
pub fn tick() {
    let cpu = percpu::this_cpu();
    let sched = &cpu.sched;
    if sched.current.load(Ordering::Relaxed).is_null() {
        return;
    }
    current().ticks.fetch_add(1, Ordering::Relaxed);
    if timer::has_expired() {
        sched.need_resched.store(true, Ordering::Relaxed);
    }
    if sched.is_idle() {
        return;
    }
    if crate::proc::timers::cpu_timers_armed() {
        sched.cpu_timers_due.store(true, Ordering::Relaxed);
    }
    let now = cpu.ticks.load(Ordering::Relaxed);
    let slice_ticks = SLICE_MS * u64::from(crate::arch::apic::timer_hz()) / 1000;
    let used = now.saturating_sub(sched.slice_start.load(Ordering::Relaxed));
    if used >= slice_ticks.max(1) && !sched.run_queue.lock().is_empty() {
        sched.need_resched.store(true, Ordering::Relaxed);
    }
}

/// Work due before a task returns to user mode (interrupts disabled on entry and exit): RCU
/// (a quiescent state, ready callbacks), expired timers (CPU-time ones after a tick asked),
/// wake-ups interrupts asked for, a kill, a pending switch, a move off a CPU the task may no
/// longer run on.
pub fn return_to_user() {
    loop {
        interrupts::enable();
        crate::sync::rcu::quiescent_state();
        timer::run_expired();
        // A plain load first: the flag is rarely set, and every return to user mode passes.
        let due = &percpu::this_cpu().sched.cpu_timers_due;
        if due.load(Ordering::Relaxed) && due.swap(false, Ordering::Relaxed) {
            crate::proc::timers::run_cpu_timers();
        }
        crate::sync::waitqueue::run_interrupt_wakes();
        if current().is_killed() {
            crate::proc::exit_killed_thread();
        }
        if must_switch() {
            schedule();
            continue;
        }
        interrupts::disable();
        if !must_switch() {
            return;
        }
    }
}

/// A switch is due on this CPU, or the running task may not run here.
fn must_switch() -> bool {
    let cpu = percpu::this_cpu();
    cpu.sched.need_resched.load(Ordering::Relaxed) || !current().may_run_on(cpu.index)
}

/// Each CPU's idle task: run work handed to this CPU and RCU callbacks, fire timers, do the
/// wake-ups interrupts asked for, run queued tasks (or steal some), and halt when there is
/// nothing to do.
pub fn idle_loop() -> ! {
    let cpu = percpu::this_cpu();
    loop {
        crate::arch::run_idle_pass(cpu, || {
            timer::run_expired();
            crate::sync::waitqueue::run_interrupt_wakes();
            let queued = !cpu.sched.run_queue.lock().is_empty();
            let stolen = if queued { None } else { steal(cpu) };
            if let Some(task) = stolen {
                cpu.sched.run_queue.lock().push_back(task);
            }
            // A switch that a tick or a wake-up asked for is the idle task's to take even when
            // nothing is queued (the woken task may have gone elsewhere, or been stolen):
            // `schedule` clears the request, or this CPU would never halt again.
            if queued || cpu.sched.queued() > 0 || cpu.sched.need_resched.load(Ordering::Relaxed) {
                schedule();
            }
            cpu.sched.queued() > 0 || cpu.sched.need_resched.load(Ordering::Relaxed)
        });
    }
}

/// Tasks running or waiting to run, over all CPUs (`/proc/stat`, `/proc/loadavg`).
pub fn runnable_tasks() -> usize {
    percpu::online_cpus().map(|cpu| cpu.sched.load()).sum()
}

/// Runnable tasks over all CPUs' queues, and context switches so far (for statistics).
pub fn statistics() -> (usize, u64) {
    percpu::online_cpus().fold((0, 0), |(queued, switches), cpu| {
        (
            queued + cpu.sched.queued(),
            switches + cpu.sched.context_switches.load(Ordering::Relaxed),
        )
    })
}
