//! Kernel glue for RCU: the one [`rcu::Rcu`] instance, read-side guards, the quiescent states
//! of the idle loop and the test runner, `call_rcu`, `synchronize_rcu`, `rcu_barrier`, grace-
//! period timing, stall warnings and statistics.
//!
//! The algorithm and its memory-ordering argument live in kernel/libs/rcu. This module supplies
//! what it asks of its caller: the CPU index (kernel code is never preempted, so a guard stays on
//! its CPU), process context for `call_rcu` and polling (never the timer interrupt: callbacks
//! free memory), and an idle loop that enters the extended quiescent state around `hlt`.
//! Interrupts taken on an idle CPU leave the extended quiescent state for their duration
//! ([`irq_enter`]/[`irq_exit`]).

#[cfg(feature = "ktest")]
use alloc::boxed::Box;
use core::marker::PhantomData;
use core::panic::Location;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use rcu::{Callback, Rcu, RcuHead};
use x86_64::instructions::interrupts;

use crate::arch::percpu::{self, PerCpu, per_cpu};
use crate::time;

static RCU: Rcu = Rcu::new();

/// Callbacks one CPU runs per poll: a flood of them cannot stall a CPU.
const CALLBACK_BATCH: usize = 64;
/// A grace period running longer than this is reported, with the CPUs holding it up
/// (`rcu.stall_ms=N` changes it).
static STALL_AFTER_NS: AtomicU64 = AtomicU64::new(10_000_000_000);
/// Stall warnings printed, and the CPUs the last one named (tests read these).
static STALL_WARNINGS: AtomicU64 = AtomicU64::new(0);
static LAST_STALL_CPUS: AtomicU64 = AtomicU64::new(0);

/// When the grace period in progress started (`time::now_ns`).
static GP_STARTED_NS: AtomicU64 = AtomicU64::new(0);
static LONGEST_GP_NS: AtomicU64 = AtomicU64::new(0);
/// The grace period last reported as stalled (one warning per stall period).
static STALL_REPORTED: AtomicU64 = AtomicU64::new(0);
static STALL_REPORTED_AT: AtomicU64 = AtomicU64::new(0);

/// Where each CPU's outermost read-side section began (debug reports).
static SECTION_SITE: PerCpu<AtomicPtr<Location<'static>>> =
    per_cpu![AtomicPtr::new(core::ptr::null_mut())];
/// Interrupt nesting per CPU, and whether the outermost interrupt took the CPU out of idle.
static IRQ_DEPTH: PerCpu<AtomicUsize> = per_cpu![AtomicUsize::new(0)];
static IRQ_LEFT_IDLE: PerCpu<AtomicBool> = per_cpu![AtomicBool::new(false)];

/// Sets how long a grace period may run before a stall warning (`rcu.stall_ms`).
pub fn set_stall_timeout_ms(ms: u64) {
    STALL_AFTER_NS.store(ms.saturating_mul(1_000_000), Ordering::Relaxed);
}

/// Brings this CPU into grace-period accounting; each CPU calls it once as it starts.
pub fn cpu_online() {
    RCU.cpu_online(percpu::cpu_index());
}

/// An RCU read-side critical section; ends when dropped. Not `Send`: it belongs to its CPU.
pub struct RcuReadGuard {
    cpu: usize,
    _not_send: PhantomData<*mut ()>,
}

/// Enters a read-side section. Inside, nothing may sleep (debug builds check where it could).
#[track_caller]
pub fn read_lock() -> RcuReadGuard {
    let cpu = percpu::cpu_index();
    if !RCU.in_read_section(cpu) {
        SECTION_SITE[cpu].store(Location::caller() as *const _ as *mut _, Ordering::Relaxed);
    }
    RCU.read_lock(cpu);
    RcuReadGuard {
        cpu,
        _not_send: PhantomData,
    }
}

impl Drop for RcuReadGuard {
    fn drop(&mut self) {
        debug_assert_eq!(self.cpu, percpu::cpu_index(), "an RCU guard changed CPUs");
        RCU.read_unlock(self.cpu);
    }
}

/// Panics (naming both sites) if called inside a read-side section or in an interrupt handler:
/// the check for code that may sleep or wait for a grace period.
#[track_caller]
pub fn might_sleep() {
    let cpu = percpu::cpu_index();
    assert!(
        IRQ_DEPTH[cpu].load(Ordering::Relaxed) == 0,
        "sleeping in an interrupt handler at {}",
        Location::caller()
    );
    if RCU.in_read_section(cpu) {
        let site = SECTION_SITE[cpu].load(Ordering::Relaxed);
        // SAFETY: null or a `&'static Location` stored by `read_lock`.
        let site = unsafe { site.as_ref() };
        panic!(
            "sleeping inside an RCU read-side section at {} (section entered at {})",
            Location::caller(),
            site.map_or("?".into(), |l| alloc::format!("{l}"))
        );
    }
}

/// Reports a quiescent state for this CPU (if outside any read section) and, if this CPU has
/// callbacks waiting, drives RCU: grace periods and a batch of its ready callbacks. Long kernel
/// loops call it (`rcu_qs()`), and so does every return to user mode.
///
/// A CPU with no callbacks leaves the grace periods to the CPUs that queued some (they poll on
/// their own returns to user mode, context switches and idle passes) and to
/// [`synchronize_rcu`]'s waiters: the report is one load when it is not new, where a poll reads
/// every CPU's state and the clock. A CPU with callbacks polls at once when
/// [`POLL_AT_CALLBACKS`] are waiting, else once per timer tick, so that one grace period serves
/// many callbacks: each new grace period costs every busy CPU a cache miss and a fence when it
/// reports, and a thread that unmaps in a loop queues tens of thousands of callbacks a second.
pub fn quiescent_state() {
    let cpu = percpu::cpu_index();
    report_quiescent_state(cpu);
    let pending = RCU.pending_callbacks(cpu);
    if pending == 0 {
        return;
    }
    let tick = percpu::this_cpu().ticks.load(Ordering::Relaxed);
    let last_poll_tick = &LAST_POLL_TICK[cpu];
    if pending >= POLL_AT_CALLBACKS || last_poll_tick.load(Ordering::Relaxed) != tick {
        last_poll_tick.store(tick, Ordering::Relaxed);
        poll(cpu);
    }
}

/// Callbacks waiting on a CPU that make its next quiescent state poll, tick or not.
const POLL_AT_CALLBACKS: u64 = CALLBACK_BATCH as u64;

/// Per CPU: the timer tick of its last poll from [`quiescent_state`].
static LAST_POLL_TICK: PerCpu<AtomicU64> = per_cpu![AtomicU64::new(u64::MAX)];

/// Reports a quiescent state and drives RCU whether or not this CPU has callbacks: for those
/// that wait for a grace period.
fn quiescent_state_and_poll() {
    let cpu = percpu::cpu_index();
    report_quiescent_state(cpu);
    poll(cpu);
}

fn report_quiescent_state(cpu: usize) {
    if !RCU.in_read_section(cpu) {
        RCU.quiescent_state(cpu);
    }
}

fn poll(cpu: usize) {
    let outcome = RCU.poll(cpu, CALLBACK_BATCH);
    let now = time::now_ns();
    if outcome.completed_gp.is_some() {
        let took = now.saturating_sub(GP_STARTED_NS.load(Ordering::Relaxed));
        LONGEST_GP_NS.fetch_max(took, Ordering::Relaxed);
    }
    if outcome.started_gp.is_some() {
        GP_STARTED_NS.store(now, Ordering::Relaxed);
    }
    check_stall(now);
}

/// Warns (once per stall period) when a grace period has waited too long, naming the CPUs that
/// have not reported a quiescent state.
fn check_stall(now: u64) {
    let Some(gp) = RCU.gp_in_progress() else {
        return;
    };
    let waited = now.saturating_sub(GP_STARTED_NS.load(Ordering::Relaxed));
    let threshold = STALL_AFTER_NS.load(Ordering::Relaxed);
    if waited <= threshold {
        return;
    }
    let reported = STALL_REPORTED.load(Ordering::Relaxed) == gp;
    let since_report = now.saturating_sub(STALL_REPORTED_AT.load(Ordering::Relaxed));
    if !reported || since_report > threshold {
        let holding = RCU.cpus_holding_gp();
        if holding == 0 {
            // Every CPU has reported: the grace period ends at the next step of the machine,
            // and a warning would name nobody.
            return;
        }
        STALL_REPORTED.store(gp, Ordering::Relaxed);
        STALL_REPORTED_AT.store(now, Ordering::Relaxed);
        LAST_STALL_CPUS.store(holding, Ordering::Relaxed);
        STALL_WARNINGS.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "rcu: grace period {gp} stalled for {} ms; CPUs holding it up: {}",
            waited / 1_000_000,
            percpu::CpuSet(holding)
        );
    }
}

/// Queues `callback(head)` to run on this CPU after a grace period. Process context only.
///
/// # Safety
/// As for [`rcu::Rcu::call_rcu`]: `head` stays valid and untouched until the callback runs, and
/// the object it lives in was unlinked before this call.
pub unsafe fn call_rcu(head: *mut RcuHead, callback: Callback) {
    let cpu = percpu::cpu_index();
    debug_assert!(
        IRQ_DEPTH[cpu].load(Ordering::Relaxed) == 0,
        "call_rcu in an interrupt handler"
    );
    // SAFETY: forwarded from the caller; we are in process context on `cpu`.
    unsafe { RCU.call_rcu(cpu, head, callback) };
}

/// Waits until a full grace period has passed: every read section that began before the call
/// has ended. A task sleeps a tick at a time meanwhile; before the scheduler runs (and in the
/// idle task) it waits with `hlt` between polls.
#[track_caller]
pub fn synchronize_rcu() {
    might_sleep();
    let ticket = RCU.start_wait();
    while !RCU.is_complete(ticket) {
        quiescent_state_and_poll();
        if RCU.is_complete(ticket) {
            break;
        }
        wait_a_tick();
    }
}

/// Waits until every callback queued (on any CPU) before the call has run. Each CPU queues a
/// marker behind its own callbacks from its idle task, so this waits until every CPU has been
/// idle once: it suits tests and teardown, not paths that run while every CPU is busy.
#[track_caller]
#[cfg(feature = "ktest")]
pub fn rcu_barrier() {
    might_sleep();
    unsafe fn marker_ran(head: *mut RcuHead) {
        // SAFETY: `head` is a `Marker`'s first field (repr(C)), alive until `remaining` is zero.
        let marker = unsafe { &*head.cast::<Marker>() };
        marker.remaining.fetch_sub(1, Ordering::Release);
    }
    #[repr(C)]
    struct Marker<'a> {
        head: RcuHead,
        remaining: &'a AtomicUsize,
    }
    let everyone = percpu::CpuSet::all_online();
    let remaining = AtomicUsize::new(everyone.len());
    let markers = PerCpu::from_fn(|_| {
        spin::Mutex::new(Marker {
            head: RcuHead::new(),
            remaining: &remaining,
        })
    });
    // Each CPU's marker goes behind that CPU's callbacks, queued in its own process context.
    crate::arch::smp::run_in_idle(everyone, &|| {
        let mut marker = markers.local().lock();
        // SAFETY: the marker outlives its callback: we wait for `remaining` below, and the
        // markers are not touched again until then.
        unsafe { call_rcu(&mut marker.head, marker_ran) };
    });
    while remaining.load(Ordering::Acquire) != 0 {
        quiescent_state_and_poll();
        wait_a_tick();
    }
}

/// An RCU-protected pointer to a heap value. Readers borrow the value for as long as their
/// [`RcuReadGuard`] lives, with no lock; writers replace it with one atomic swap (Release
/// publish; concurrent writers are fine), and the old value is dropped after a grace period.
/// Replacing and dropping the cell are for process context.
#[cfg(feature = "ktest")]
struct RcuCell<T: Send + Sync + 'static> {
    current: AtomicPtr<RcuBox<T>>,
}

/// The heap block behind an [`RcuCell`]: the value and the RCU head that frees it.
#[repr(C)]
#[cfg(feature = "ktest")]
struct RcuBox<T> {
    head: RcuHead,
    value: T,
}

/// The RCU callback that drops a retired value.
#[cfg(feature = "ktest")]
unsafe fn drop_retired<T>(head: *mut RcuHead) {
    // SAFETY: `head` is the first field of an `RcuBox<T>` (repr(C)) that `RcuCell` leaked from
    // a `Box` and retired once; a grace period has passed, so no reader holds it.
    drop(unsafe { Box::from_raw(head.cast::<RcuBox<T>>()) });
}

#[cfg(feature = "ktest")]
impl<T: Send + Sync + 'static> RcuCell<T> {
    pub fn new(value: T) -> Self {
        let boxed = Box::new(RcuBox {
            head: RcuHead::new(),
            value,
        });
        Self {
            current: AtomicPtr::new(Box::into_raw(boxed)),
        }
    }

    /// The current value, valid until the guard ends.
    pub fn read<'g>(&self, _guard: &'g RcuReadGuard) -> &'g T {
        // SAFETY: the pointer is never null, and a value is freed only a grace period after it
        // was replaced (or the cell dropped), which cannot end while `_guard` lives.
        unsafe { &(*self.current.load(Ordering::Acquire)).value }
    }

    /// Publishes `value`; the previous value is dropped after a grace period.
    pub fn replace(&self, value: T) {
        let boxed = Box::into_raw(Box::new(RcuBox {
            head: RcuHead::new(),
            value,
        }));
        let old = self.current.swap(boxed, Ordering::AcqRel);
        // SAFETY: `old` was unlinked by the swap and is retired once, by us.
        unsafe { retire(old) };
    }
}

/// Drops the box behind `old` after a grace period.
///
/// # Safety
/// `old` came from `Box::into_raw` in an `RcuCell` and is unreachable from it now.
#[cfg(feature = "ktest")]
unsafe fn retire<T: Send + Sync + 'static>(old: *mut RcuBox<T>) {
    // SAFETY: the head is ours until the callback frees the box (the caller's contract).
    unsafe { call_rcu(&raw mut (*old).head, drop_retired::<T>) };
}

#[cfg(feature = "ktest")]
impl<T: Send + Sync + 'static> Drop for RcuCell<T> {
    fn drop(&mut self) {
        // Readers may still hold the value (their guard outlives no cell borrow): defer.
        // SAFETY: the cell is going away, so its value is unreachable from now on.
        unsafe { retire(*self.current.get_mut()) };
    }
}

/// Waits for about a timer tick: sleeps when a task may (so the CPU runs others meanwhile),
/// halts in the idle task or before the scheduler runs, spins with interrupts disabled.
fn wait_a_tick() {
    if !interrupts::are_enabled() {
        core::hint::spin_loop();
    } else if crate::sched::is_running() && !percpu::this_cpu().sched.is_idle() {
        let tick_ns = 1_000_000_000 / u64::from(crate::arch::apic::timer_hz());
        // A kill does not end a grace-period wait early: ignore the interruption.
        let _ = crate::sched::timer::sleep_ns(tick_ns);
    } else {
        x86_64::instructions::hlt();
    }
}

/// The idle loop's part, with interrupts disabled right before `sti; hlt`: this CPU stops
/// holding grace periods up.
pub fn idle_enter() {
    RCU.enter_idle(percpu::cpu_index());
}

/// After `hlt` returns: grace periods wait for this CPU again.
pub fn idle_exit() {
    RCU.exit_idle(percpu::cpu_index());
}

/// Interrupt entry: on an idle CPU, leave the extended quiescent state for the handler.
pub fn irq_enter() {
    let cpu = percpu::cpu_index();
    if IRQ_DEPTH[cpu].fetch_add(1, Ordering::Relaxed) == 0 && RCU.is_idle(cpu) {
        RCU.exit_idle(cpu);
        IRQ_LEFT_IDLE[cpu].store(true, Ordering::Relaxed);
    }
}

/// Interrupt exit: back into the extended quiescent state if the entry left it.
pub fn irq_exit() {
    let cpu = percpu::cpu_index();
    if IRQ_DEPTH[cpu].fetch_sub(1, Ordering::Relaxed) == 1
        && IRQ_LEFT_IDLE[cpu].swap(false, Ordering::Relaxed)
    {
        RCU.enter_idle(cpu);
    }
}

/// After the test runner abandoned a context with a jump (a caught panic, a stopped test):
/// forgets the read sections and interrupt nesting that context left open on this CPU.
#[cfg(feature = "ktest")]
pub fn recover_after_jump() {
    let cpu = percpu::cpu_index();
    while RCU.in_read_section(cpu) {
        RCU.read_unlock(cpu);
    }
    IRQ_DEPTH[cpu].store(0, Ordering::Relaxed);
    IRQ_LEFT_IDLE[cpu].store(false, Ordering::Relaxed);
}

/// Callbacks queued on every CPU and not run yet (the soak compares them with its baseline).
#[cfg(feature = "ktest")]
pub fn pending_callbacks() -> u64 {
    let stats = RCU.stats();
    stats
        .callbacks_queued
        .saturating_sub(stats.callbacks_invoked)
}

/// Stall warnings printed since boot.
#[cfg(feature = "ktest")]
pub fn stall_warnings() -> u64 {
    STALL_WARNINGS.load(Ordering::Relaxed)
}

/// `rcu: ...` statistics line (boot log, debug key `r`).
pub fn log_statistics() {
    let stats = RCU.stats();
    log::info!(
        "rcu: {} grace periods completed, {} callbacks queued, {} invoked, longest grace period {} ms",
        stats.gps_completed,
        stats.callbacks_queued,
        stats.callbacks_invoked,
        LONGEST_GP_NS.load(Ordering::Relaxed) / 1_000_000
    );
}

#[cfg(feature = "ktest")]
mod ktests {
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    use rcu::RcuHead;

    use super::{
        LAST_STALL_CPUS, POLL_AT_CALLBACKS, RCU, RcuCell, STALL_AFTER_NS, STALL_WARNINGS, call_rcu,
        quiescent_state, quiescent_state_and_poll, rcu_barrier, read_lock, synchronize_rcu,
        wait_a_tick,
    };
    use crate::arch::percpu::{self, CpuSet};
    use crate::arch::smp::run_in_idle;
    use crate::ktest;

    const VALID: u64 = 0x600d_600d_600d_600d;
    const FREED: u64 = 0xdead_dead_dead_dead;
    const POOL: usize = 64;

    /// One object of the rcutorture pool: readers check it is still valid while they hold it.
    #[repr(C)]
    struct TortureObject {
        head: RcuHead,
        state: AtomicU64,
        generation: AtomicU64,
        in_use: AtomicBool,
        freed_by_callback: AtomicU64,
    }

    static OBJECTS: [TortureObject; POOL] = [const {
        TortureObject {
            head: RcuHead::new(),
            state: AtomicU64::new(FREED),
            generation: AtomicU64::new(0),
            in_use: AtomicBool::new(false),
            freed_by_callback: AtomicU64::new(0),
        }
    }; POOL];

    /// The RCU callback: poisons the object, then gives it back to the pool.
    unsafe fn free_object(head: *mut RcuHead) {
        // SAFETY: `head` is the first field of a pool object (repr(C)), which is static.
        let object = unsafe { &*head.cast::<TortureObject>() };
        object.state.store(FREED, Ordering::Release);
        object.freed_by_callback.fetch_add(1, Ordering::Relaxed);
        object.in_use.store(false, Ordering::Release);
    }

    ktest! {
        timeout_ms = 120_000;
        /// rcutorture: readers on every other CPU hold the current object and check that it
        /// stays valid for their whole read section, while this CPU keeps replacing it and
        /// retiring the old one with call_rcu (whose callback poisons it). A reader that ever
        /// sees poison, or the generation change under it, means a grace period ended early.
        fn readers_never_see_an_object_freed_under_them() {
            let current: AtomicPtr<TortureObject> = AtomicPtr::new(core::ptr::null_mut());
            let stop = AtomicBool::new(false);
            let violations = AtomicU64::new(0);
            let reads = AtomicU64::new(0);
            let retired = AtomicU64::new(0);
            let updates = 2_000 * ktest::stress_factor();
            let before: u64 = OBJECTS.iter().map(|o| o.freed_by_callback.load(Ordering::Relaxed)).sum();
            let me = percpu::cpu_index();
            let readers_started = AtomicUsize::new(0);
            let readers = percpu::online_count() - 1;
            let writer = || {
                // Replace objects only while readers run, at a pace that lets them overlap.
                while readers_started.load(Ordering::Acquire) < readers {
                    core::hint::spin_loop();
                }
                let mut next = 0;
                for generation in 1..=updates {
                    // Take a free pool object, waiting for grace periods if none is free.
                    let object = loop {
                        let candidate = &OBJECTS[next % POOL];
                        next += 1;
                        if !candidate.in_use.swap(true, Ordering::AcqRel) {
                            break candidate;
                        }
                        if next % POOL == 0 {
                            quiescent_state();
                        }
                    };
                    object.generation.store(generation, Ordering::Relaxed);
                    object.state.store(VALID, Ordering::Relaxed);
                    let old = current.swap(object as *const _ as *mut _, Ordering::AcqRel);
                    // SAFETY: null or one of the static pool objects.
                    if let Some(old) = unsafe { old.as_ref() } {
                        // SAFETY: `old` was unlinked just now; its head is untouched until the
                        // callback gives the object back.
                        unsafe { call_rcu(&old.head as *const _ as *mut RcuHead, free_object) };
                        retired.fetch_add(1, Ordering::Relaxed);
                    }
                    quiescent_state();
                    crate::time::delay_us(2);
                }
                stop.store(true, Ordering::Release);
            };
            let reader = || {
                readers_started.fetch_add(1, Ordering::AcqRel);
                let mut round = 0u64;
                while !stop.load(Ordering::Acquire) {
                    {
                        let _guard = read_lock();
                        // SAFETY: objects are static; validity is what the test checks.
                        if let Some(object) = unsafe { current.load(Ordering::Acquire).as_ref() } {
                            let generation = object.generation.load(Ordering::Relaxed);
                            for _ in 0..20 {
                                if object.state.load(Ordering::Acquire) != VALID
                                    || object.generation.load(Ordering::Relaxed) != generation
                                {
                                    violations.fetch_add(1, Ordering::Relaxed);
                                }
                                core::hint::spin_loop();
                            }
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    round += 1;
                    if round % 4 == 0 {
                        quiescent_state();
                    }
                }
            };
            run_in_idle(CpuSet::all_online(), &|| {
                if percpu::cpu_index() == me { writer() } else { reader() }
            });
            // The last object stays published; retire it too, then wait for every callback.
            let last = current.swap(core::ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: `last` is a static pool object, unlinked just now.
            unsafe { call_rcu(&(*last).head as *const _ as *mut RcuHead, free_object) };
            retired.fetch_add(1, Ordering::Relaxed);
            rcu_barrier();
            assert_eq!(violations.load(Ordering::Relaxed), 0, "readers saw freed objects");
            let freed: u64 = OBJECTS.iter().map(|o| o.freed_by_callback.load(Ordering::Relaxed)).sum();
            assert_eq!(freed - before, retired.load(Ordering::Relaxed), "callbacks lost or doubled");
            assert!(OBJECTS.iter().all(|o| !o.in_use.load(Ordering::Acquire)), "objects leaked");
            if percpu::online_count() > 1 {
                assert!(reads.load(Ordering::Relaxed) > 0, "the readers never read");
            }
        }
    }

    ktest! {
        /// synchronize_rcu returns only after a read section that began before it has ended.
        fn synchronize_waits_for_a_running_reader() {
            let Some(reader_cpu) = ktest::other_cpu() else {
                return ktest::skip("needs 2 or more CPUs");
            };
            let me = percpu::cpu_index();
            let entered = AtomicBool::new(false);
            let left = AtomicBool::new(false);
            let left_before_sync_returned = AtomicBool::new(false);
            run_in_idle(CpuSet::all_online(), &|| {
                let cpu = percpu::cpu_index();
                if cpu == reader_cpu {
                    let guard = read_lock();
                    entered.store(true, Ordering::Release);
                    crate::time::delay_us(50_000);
                    left.store(true, Ordering::Release);
                    drop(guard);
                } else if cpu == me {
                    while !entered.load(Ordering::Acquire) {
                        core::hint::spin_loop();
                    }
                    synchronize_rcu();
                    left_before_sync_returned.store(left.load(Ordering::Acquire), Ordering::Relaxed);
                }
            });
            assert!(left_before_sync_returned.load(Ordering::Relaxed), "synchronize_rcu returned while the reader was still inside");
        }
    }

    ktest! {
        /// Waiting for a grace period inside a read section panics and names both sites.
        fn sleeping_in_a_read_section_is_reported() {
            if !cfg!(debug_assertions) {
                return ktest::skip("needs a debug build");
            }
            let report = ktest::catch_panic(|| {
                let _guard = read_lock();
                synchronize_rcu();
            })
            .expect_err("synchronize_rcu inside a read section did not panic");
            assert!(report.contains("sleeping inside an RCU read-side section at kernel/src/sync/rcu.rs"), "{report}");
            assert!(report.contains("section entered at kernel/src/sync/rcu.rs"), "{report}");
        }
    }

    ktest! {
        /// rcu_barrier waits for callbacks queued on every CPU.
        fn barrier_waits_for_every_cpus_callbacks() {
            static RAN: AtomicUsize = AtomicUsize::new(0);
            unsafe fn count(_head: *mut RcuHead) {
                RAN.fetch_add(1, Ordering::Relaxed);
            }
            let heads: [spin::Mutex<RcuHead>; crate::arch::percpu::MAX_CPUS] =
                core::array::from_fn(|_| spin::Mutex::new(RcuHead::new()));
            let before = RAN.load(Ordering::Relaxed);
            let everyone = CpuSet::all_online();
            run_in_idle(everyone, &|| {
                let mut head = heads[percpu::cpu_index()].lock();
                // SAFETY: the head outlives its callback: rcu_barrier below waits for it.
                unsafe { call_rcu(&mut *head, count) };
            });
            rcu_barrier();
            assert_eq!(RAN.load(Ordering::Relaxed) - before, everyone.len());
        }
    }

    ktest! {
        /// A CPU that queues a callback per quiescent state shares grace periods among them
        /// (about two per `POLL_AT_CALLBACKS` callbacks, plus one per tick; the bound below
        /// leaves twice that), instead of taking one for each.
        fn grace_periods_serve_many_callbacks() {
            const CALLBACKS: usize = 1024;
            static RAN: AtomicUsize = AtomicUsize::new(0);
            unsafe fn count(_head: *mut RcuHead) {
                RAN.fetch_add(1, Ordering::Relaxed);
            }
            let heads: alloc::vec::Vec<spin::Mutex<RcuHead>> =
                (0..CALLBACKS).map(|_| spin::Mutex::new(RcuHead::new())).collect();
            let before = RAN.load(Ordering::Relaxed);
            let gps_before = RCU.stats().gps_completed;
            let ticks_before = percpu::this_cpu().ticks.load(Ordering::Relaxed);
            for head in &heads {
                // SAFETY: the heads outlive their callbacks: we wait for all of them below.
                unsafe { call_rcu(&mut *head.lock(), count) };
                quiescent_state();
            }
            let gps = RCU.stats().gps_completed - gps_before;
            let ticks = percpu::this_cpu().ticks.load(Ordering::Relaxed) - ticks_before;
            while RAN.load(Ordering::Relaxed) - before < CALLBACKS {
                quiescent_state_and_poll();
                wait_a_tick();
            }
            let most = 4 * CALLBACKS as u64 / POLL_AT_CALLBACKS + ticks + 2;
            assert!(gps <= most, "{gps} grace periods for {CALLBACKS} callbacks in {ticks} ticks");
        }
    }

    ktest! {
        /// RcuCell: readers on every CPU see whole values (never torn, never freed) while
        /// this CPU replaces the value; every old value is dropped after a grace period.
        fn rcu_cell_readers_see_whole_values() {
            #[derive(Clone, Copy)]
            struct Pair {
                a: u64,
                b: u64,
            }
            rcu_barrier();
            let heap_before = crate::mm::heap::usage().1;
            let cell = RcuCell::new(Pair { a: 0, b: !0 });
            let stop = AtomicBool::new(false);
            let torn = AtomicU64::new(0);
            let me = percpu::cpu_index();
            let updates = 3_000 * ktest::stress_factor();
            run_in_idle(CpuSet::all_online(), &|| {
                if percpu::cpu_index() == me {
                    for n in 1..=updates {
                        cell.replace(Pair { a: n, b: !n });
                        quiescent_state();
                    }
                    stop.store(true, Ordering::Release);
                } else {
                    let mut round = 0u32;
                    while !stop.load(Ordering::Acquire) {
                        let guard = read_lock();
                        let value = cell.read(&guard);
                        for _ in 0..8 {
                            if value.a != !value.b {
                                torn.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        drop(guard);
                        round += 1;
                        if round % 8 == 0 {
                            quiescent_state();
                        }
                    }
                }
            });
            assert_eq!(torn.load(Ordering::Relaxed), 0, "a reader saw a torn or freed value");
            drop(cell);
            rcu_barrier();
            assert_eq!(crate::mm::heap::usage().1, heap_before, "retired values leaked");
        }
    }

    ktest! {
        /// A grace period held up past the stall timeout prints a warning naming the CPU.
        fn stall_warning_names_the_cpu_holding_the_grace_period() {
            let Some(holder) = ktest::other_cpu() else {
                return ktest::skip("needs 2 or more CPUs");
            };
            let me = percpu::cpu_index();
            let saved = STALL_AFTER_NS.swap(50_000_000, Ordering::Relaxed);
            let warnings_before = STALL_WARNINGS.load(Ordering::Relaxed);
            let entered = AtomicBool::new(false);
            run_in_idle(CpuSet::all_online(), &|| {
                let cpu = percpu::cpu_index();
                if cpu == holder {
                    let guard = read_lock();
                    entered.store(true, Ordering::Release);
                    crate::time::delay_us(300_000);
                    drop(guard);
                } else if cpu == me {
                    while !entered.load(Ordering::Acquire) {
                        core::hint::spin_loop();
                    }
                    synchronize_rcu();
                }
            });
            STALL_AFTER_NS.store(saved, Ordering::Relaxed);
            assert!(STALL_WARNINGS.load(Ordering::Relaxed) > warnings_before, "no stall warning");
            let named = LAST_STALL_CPUS.load(Ordering::Relaxed);
            assert!(named & (1 << holder) != 0, "the warning named CPUs {named:#x}, not CPU {holder}");
        }
    }
}
