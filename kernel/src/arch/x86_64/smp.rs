//! Work on other CPUs: cross-CPU function calls, work for idle CPUs, TLB shootdown, and
//! stopping every other CPU on a panic.
//!
//! **Calls** ([`call_many`]): the initiator links one [`CallRequest`] per target, held in an
//! array on its own stack, into each target's lock-free [`CallQueue`] and sends the call IPI;
//! each target takes its whole queue in the interrupt handler, runs the function, and counts
//! down the request's `pending`. The initiator waits for zero with interrupts enabled, so two
//! CPUs calling each other at once both make progress, and nothing is allocated or freed in
//! interrupt context. A target reads everything it needs from a request before counting down:
//! after that the initiator may return and its stack frame is gone.
//!
//! **Idle work** ([`run_in_idle`]): runs a closure on other CPUs in their idle loop, with
//! interrupts enabled — process context, where it may wait for interrupts (the IPI tests need
//! that). It stands in for kernel threads until the scheduler exists.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use x86_64::instructions::interrupts;

use super::apic;
use super::percpu::{self, CpuBlock, CpuSet, MAX_CPUS};

/// One target's link to a call: lives in the initiator's stack frame.
pub struct CallRequest {
    next: AtomicPtr<CallRequest>,
    call: AtomicPtr<Call<'static>>,
}

impl CallRequest {
    const fn new() -> Self {
        Self {
            next: AtomicPtr::new(core::ptr::null_mut()),
            call: AtomicPtr::new(core::ptr::null_mut()),
        }
    }
}

/// What every target of one call shares.
struct Call<'a> {
    function: &'a (dyn Fn() + Sync),
    /// Targets that have not finished yet.
    pending: AtomicUsize,
}

/// A CPU's pending calls: a lock-free stack that the owner takes whole.
pub struct CallQueue {
    head: AtomicPtr<CallRequest>,
}

impl CallQueue {
    pub const fn new() -> Self {
        Self {
            head: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    fn push(&self, request: &CallRequest) {
        let node = (request as *const CallRequest).cast_mut();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            request.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }
}

/// Runs `function` on every CPU in `cpus` (here directly, elsewhere in the call-IPI handler
/// with interrupts disabled) and returns when all have finished.
///
/// Must be called with interrupts enabled: a CPU waiting with them disabled could never answer
/// a call aimed at it, and two such CPUs would wait for each other forever.
pub fn call_many(cpus: CpuSet, function: &(dyn Fn() + Sync)) {
    assert!(
        interrupts::are_enabled(),
        "call_many with interrupts disabled would deadlock"
    );
    let me = percpu::cpu_index();
    let others = cpus.without(me);
    let call = Call {
        function,
        pending: AtomicUsize::new(others.len()),
    };
    let requests = [const { CallRequest::new() }; MAX_CPUS];
    // SAFETY (lifetime): targets drop every reference to `call` and `requests` before counting
    // down `pending`, and this function returns only once it is zero.
    let call_ptr = (&call as *const Call<'_>)
        .cast::<Call<'static>>()
        .cast_mut();
    let mut queued = CpuSet::default();
    for index in others.iter() {
        let Some(target) = percpu::cpu(index).filter(|c| c.online.load(Ordering::Acquire)) else {
            call.pending.fetch_sub(1, Ordering::Relaxed);
            continue;
        };
        requests[index].call.store(call_ptr, Ordering::Relaxed);
        target.call_queue.push(&requests[index]);
        queued = queued.with(index);
    }
    apic::send_ipi_to_set(queued, apic::CALL_VECTOR);
    if cpus.contains(me) {
        function();
    }
    while call.pending.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
}

/// The call IPI: runs every call queued for this CPU.
pub fn handle_call_interrupt() {
    apic::end_of_interrupt();
    let cpu = percpu::this_cpu();
    percpu::add_local(&cpu.call_interrupts, 1);
    let queue = &cpu.call_queue;
    let mut node = queue.head.swap(core::ptr::null_mut(), Ordering::Acquire);
    while !node.is_null() {
        // SAFETY: a queued request stays alive until its call's `pending` is counted down,
        // which happens below only after the last read of the request and the call.
        let (next, call) = unsafe {
            let request = &*node;
            (
                request.next.load(Ordering::Relaxed),
                &*request.call.load(Ordering::Relaxed),
            )
        };
        (call.function)();
        call.pending.fetch_sub(1, Ordering::Release);
        node = next;
    }
}

/// Work handed to an idle CPU (see [`run_in_idle`]).
pub struct IdleWork {
    work: AtomicPtr<Call<'static>>,
    /// Set while the CPU may be running work (from before it takes it until it is done).
    running: AtomicBool,
}

impl IdleWork {
    pub const fn new() -> Self {
        Self {
            work: AtomicPtr::new(core::ptr::null_mut()),
            running: AtomicBool::new(false),
        }
    }

    pub fn is_pending(&self) -> bool {
        !self.work.load(Ordering::Acquire).is_null()
    }
}

/// Serialises users of the idle-work slots.
#[cfg(feature = "ktest")]
static IDLE_WORK_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Runs `function` on every CPU in `cpus` in process context with interrupts enabled: here
/// directly, on the other CPUs in their idle loop. Returns when all have finished. The other
/// CPUs must be idle (no scheduler yet: they are, outside of this call).
#[cfg(feature = "ktest")]
pub fn run_in_idle(cpus: CpuSet, function: &(dyn Fn() + Sync)) {
    assert!(
        interrupts::are_enabled(),
        "run_in_idle waits for other CPUs: interrupts must be on"
    );
    let _serial = IDLE_WORK_LOCK.lock();
    let me = percpu::cpu_index();
    let others = cpus.without(me);
    let call = Call {
        function,
        pending: AtomicUsize::new(others.len()),
    };
    let call_ptr = (&call as *const Call<'_>)
        .cast::<Call<'static>>()
        .cast_mut();
    for index in others.iter() {
        match percpu::cpu(index).filter(|c| c.online.load(Ordering::Acquire)) {
            Some(target) => {
                target.idle_work.work.store(call_ptr, Ordering::Release);
                apic::send_ipi(target.apic_id.load(Ordering::Relaxed), apic::WAKE_VECTOR);
            }
            None => {
                call.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    if cpus.contains(me) {
        function();
    }
    while call.pending.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
}

/// Runs the work handed to this CPU, if any (called by the idle loop, interrupts enabled).
pub fn run_idle_work(cpu: &CpuBlock) {
    cpu.idle_work.running.store(true, Ordering::SeqCst);
    let call = cpu
        .idle_work
        .work
        .swap(core::ptr::null_mut(), Ordering::Acquire);
    if !call.is_null() {
        // SAFETY: `run_in_idle` keeps the call alive until `pending` reaches zero.
        let call = unsafe { &*call };
        (call.function)();
        call.pending.fetch_sub(1, Ordering::Release);
    }
    cpu.idle_work.running.store(false, Ordering::SeqCst);
}

/// Waits (at most `timeout_ns`) until no other CPU has idle work queued or running. The test
/// runner calls it before abandoning a test that handed work to other CPUs: that work refers to
/// the abandoned stack frames. False if some CPU is still busy at the deadline.
#[cfg(feature = "ktest")]
pub fn wait_for_idle_work(timeout_ns: u64) -> bool {
    let me = percpu::cpu_index();
    let deadline = crate::time::now_ns() + timeout_ns;
    let busy = || {
        percpu::online_cpus()
            .filter(|c| c.index != me)
            .any(|c| c.idle_work.is_pending() || c.idle_work.running.load(Ordering::SeqCst))
    };
    while busy() {
        if crate::time::now_ns() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// After the test runner abandoned a context that was inside `run_in_idle` (and every other
/// CPU's part has finished: [`wait_for_idle_work`]), releases the lock that context held.
#[cfg(feature = "ktest")]
pub fn recover_after_jump() {
    if IDLE_WORK_LOCK.is_locked() {
        // SAFETY: only the abandoned context could hold it (the runner's CPU is the only one
        // that hands out idle work), and it will never run again.
        unsafe { IDLE_WORK_LOCK.force_unlock() };
    }
}

/// Pages up to which a shootdown flushes page by page; above, the whole TLB.
const FLUSH_ALL_THRESHOLD: u64 = 32;

/// Which translations to drop.
#[derive(Clone, Copy, Debug)]
pub enum Flush {
    /// Pages `start..end` (byte addresses).
    Range {
        start: u64,
        end: u64,
    },
    All,
}

fn flush_local(flush: Flush) {
    match flush {
        Flush::Range { start, end } if (end - start) / 4096 <= FLUSH_ALL_THRESHOLD => {
            let mut page = start & !0xfff;
            while page < end {
                x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(page));
                page += 4096;
            }
        }
        _ => x86_64::instructions::tlb::flush_all(),
    }
}

/// Drops stale translations on every CPU in `cpus` and returns once all have done so.
///
/// The caller has already changed the page tables. For user address spaces it must read the
/// set of CPUs using the address space *after* its page-table stores, with a full fence between:
/// a CPU that joins later loads the new tables, one that joined earlier is in
/// the set. Must be called with interrupts enabled (see [`call_many`]).
pub fn shootdown(cpus: CpuSet, flush: Flush) {
    call_many(cpus, &|| flush_local(flush));
}

/// Set while a panicking CPU stops the others.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Stops every other online CPU with an NMI and waits (briefly) until each has recorded where it
/// was (`CpuBlock::stopped_at`; the panic report reads it, and names a CPU that did not answer).
pub fn stop_other_cpus() {
    STOPPING.store(true, Ordering::SeqCst);
    let me = percpu::cpu_index();
    let others = CpuSet::all_online().without(me);
    if others.is_empty() {
        return;
    }
    apic::send_nmi_all_but_self();
    let deadline = crate::time::now_ns() + 100_000_000;
    while others.iter().any(|i| !has_stopped(i)) && crate::time::now_ns() < deadline {
        core::hint::spin_loop();
    }
}

fn has_stopped(index: usize) -> bool {
    percpu::cpu(index).is_some_and(|c| c.stopped_at.is_completed())
}

/// The NMI handler's question: is this the panic path's stop signal? If so, records where this
/// CPU was and halts for good.
pub fn stop_if_requested(rip: u64, rsp: u64, rbp: u64) {
    if STOPPING.load(Ordering::SeqCst) {
        percpu::this_cpu().stopped_at.call_once(|| (rip, rsp, rbp));
        loop {
            x86_64::instructions::hlt();
        }
    }
}

/// IPI ping-pong state of one CPU. Counters only grow, so IPIs that the APIC merges (a second
/// one arriving while the first is pending) lose nothing: each handler run settles every
/// difference it finds.
pub struct PingState {
    /// Pings CPU `i` has asked of this CPU (written by `i`).
    requests: [AtomicU64; MAX_CPUS],
    /// Pings from CPU `i` this CPU has answered (written by this CPU's handler only).
    answered: [AtomicU64; MAX_CPUS],
    /// Pongs CPU `i` has sent this CPU (written by `i`'s handler).
    pong_notices: [AtomicU64; MAX_CPUS],
    /// Pongs from CPU `i` this CPU's handler has taken in (written by this CPU's handler only).
    pongs_seen: [AtomicU64; MAX_CPUS],
    /// Ping-vector interrupts taken.
    pub interrupts: AtomicU64,
}

impl PingState {
    pub const fn new() -> Self {
        Self {
            requests: [const { AtomicU64::new(0) }; MAX_CPUS],
            answered: [const { AtomicU64::new(0) }; MAX_CPUS],
            pong_notices: [const { AtomicU64::new(0) }; MAX_CPUS],
            pongs_seen: [const { AtomicU64::new(0) }; MAX_CPUS],
            interrupts: AtomicU64::new(0),
        }
    }

    /// (pings this CPU answered for `from`, pongs this CPU received from `from`).
    #[cfg(feature = "ktest")]
    pub fn totals(&self, from: usize) -> (u64, u64) {
        (
            self.answered[from].load(Ordering::Acquire),
            self.pongs_seen[from].load(Ordering::Acquire),
        )
    }
}

/// An IPI round trip: asks CPU `target` to answer with an IPI and waits (interrupts enabled)
/// until this CPU's handler has seen the answer. Returns the round-trip time in nanoseconds.
pub fn ping(target: usize) -> u64 {
    assert!(
        interrupts::are_enabled(),
        "ping waits for an interrupt: interrupts must be on"
    );
    let me = percpu::this_cpu();
    let other = percpu::cpu(target).expect("ping: no such CPU");
    let expected = me.ping.pongs_seen[target].load(Ordering::Acquire) + 1;
    let started = crate::time::now_ns();
    other.ping.requests[me.index].fetch_add(1, Ordering::AcqRel);
    apic::send_ipi(other.apic_id.load(Ordering::Relaxed), apic::PING_VECTOR);
    while me.ping.pongs_seen[target].load(Ordering::Acquire) < expected {
        core::hint::spin_loop();
    }
    crate::time::now_ns() - started
}

/// The ping vector: answers new pings with pongs and takes in pongs.
pub fn handle_ping_interrupt() {
    apic::end_of_interrupt();
    let me = percpu::this_cpu();
    me.ping.interrupts.fetch_add(1, Ordering::Relaxed);
    for cpu in percpu::registered_cpus() {
        let from = cpu.index;
        let requested = me.ping.requests[from].load(Ordering::Acquire);
        let answered = me.ping.answered[from].load(Ordering::Relaxed);
        if requested > answered {
            me.ping.answered[from].store(requested, Ordering::Release);
            cpu.ping.pong_notices[me.index].fetch_add(requested - answered, Ordering::AcqRel);
            apic::send_ipi(cpu.apic_id.load(Ordering::Relaxed), apic::PING_VECTOR);
        }
        let notices = me.ping.pong_notices[from].load(Ordering::Acquire);
        if notices > me.ping.pongs_seen[from].load(Ordering::Relaxed) {
            me.ping.pongs_seen[from].store(notices, Ordering::Release);
        }
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    use super::{Flush, call_many, ping, run_in_idle, shootdown};
    use crate::arch::percpu::{self, CpuSet, MAX_CPUS};
    use crate::arch::{acpi, apic};
    use crate::ktest;
    use crate::mm::{frame, kernel_tables};

    ktest! {
        /// Every CPU the MADT lists came online.
        fn online_cpus_match_the_madt() {
            let listed = acpi::madt_cpu_count().min(MAX_CPUS);
            assert!(listed >= 1, "the MADT listed no CPU");
            assert_eq!(percpu::online_count(), listed, "online CPUs differ from the MADT's");
        }
    }

    ktest! {
        /// Every CPU's local APIC timer ticks (about `hz` times a second).
        fn every_cpu_timer_ticks() {
            let before: [u64; MAX_CPUS] = core::array::from_fn(|i| {
                percpu::cpu(i).map_or(0, |c| c.ticks.load(Ordering::Relaxed))
            });
            crate::time::delay_us(100_000);
            for cpu in percpu::online_cpus() {
                let ticks = cpu.ticks.load(Ordering::Relaxed) - before[cpu.index];
                assert!(ticks >= 5, "CPU {} ticked {ticks} times in 100 ms", cpu.index);
            }
        }
    }

    ktest! {
        /// A cross-CPU call runs once on every CPU, and the initiator sees each one's result;
        /// every other CPU counts the call IPI it took.
        fn cross_call_runs_everywhere_and_returns_results() {
            let runs: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
            let seen_apic_id: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; MAX_CPUS];
            let interrupts_before: [u64; MAX_CPUS] = core::array::from_fn(|i| {
                percpu::cpu(i).map_or(0, |c| c.call_interrupts.load(Ordering::Relaxed))
            });
            let everyone = CpuSet::all_online();
            call_many(everyone, &|| {
                let me = percpu::this_cpu();
                runs[me.index].fetch_add(1, Ordering::Relaxed);
                seen_apic_id[me.index].store(apic::id(), Ordering::Relaxed);
            });
            for cpu in percpu::online_cpus() {
                assert_eq!(runs[cpu.index].load(Ordering::Relaxed), 1, "CPU {} ran it", cpu.index);
                assert_eq!(seen_apic_id[cpu.index].load(Ordering::Relaxed), cpu.apic_id.load(Ordering::Relaxed));
            }
            let total: u32 = runs.iter().map(|r| r.load(Ordering::Relaxed)).sum();
            assert_eq!(total as usize, everyone.len(), "a CPU outside the set ran the call");
            let me = percpu::cpu_index();
            for cpu in percpu::online_cpus().filter(|c| c.index != me) {
                let taken = cpu.call_interrupts.load(Ordering::Relaxed) - interrupts_before[cpu.index];
                assert!(taken >= 1, "CPU {} counted no call IPI", cpu.index);
            }
        }
    }

    ktest! {
        /// Per-CPU data: a distinct `CpuBlock` on every CPU, unchanged across timer interrupts.
        fn per_cpu_data_is_distinct_and_survives_interrupts() {
            let addresses: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
            run_in_idle(CpuSet::all_online(), &|| {
                let me = percpu::this_cpu();
                let start_ticks = me.ticks.load(Ordering::Relaxed);
                while me.ticks.load(Ordering::Relaxed) < start_ticks + 5 {
                    let again = percpu::this_cpu();
                    assert!(core::ptr::eq(me, again), "per-CPU pointer changed under interrupts");
                    assert_eq!(again.index, me.index);
                }
                assert_eq!(me.apic_id.load(Ordering::Relaxed), apic::id(), "wrong CPU's data");
                addresses[me.index].store(me as *const _ as u64, Ordering::Relaxed);
            });
            for cpu in percpu::online_cpus() {
                let address = addresses[cpu.index].load(Ordering::Relaxed);
                assert_eq!(address, cpu as *const _ as u64, "CPU {} saw other data", cpu.index);
            }
        }
    }

    /// Pings from `i` to `j` as `(answered by j, pongs seen by i)`.
    fn ping_totals() -> [[(u64, u64); MAX_CPUS]; MAX_CPUS] {
        let mut totals = [[(0, 0); MAX_CPUS]; MAX_CPUS];
        for from in percpu::online_cpus() {
            for to in percpu::online_cpus() {
                totals[from.index][to.index] =
                    (to.ping.totals(from.index).0, from.ping.totals(to.index).1);
            }
        }
        totals
    }

    /// Every CPU pings others `rounds` times (all at once); then every pair must balance:
    /// each ping answered exactly once and each answer seen exactly once.
    fn ping_everyone(rounds: u64, stride_all: bool) {
        let before = ping_totals();
        let sent: [[AtomicU64; MAX_CPUS]; MAX_CPUS] =
            [const { [const { AtomicU64::new(0) }; MAX_CPUS] }; MAX_CPUS];
        let online: [usize; MAX_CPUS] = {
            let mut list = [0; MAX_CPUS];
            for (slot, cpu) in list.iter_mut().zip(percpu::online_cpus()) {
                *slot = cpu.index;
            }
            list
        };
        let count = percpu::online_count();
        run_in_idle(CpuSet::all_online(), &|| {
            let me = percpu::cpu_index();
            for round in 0..rounds {
                for step in 1..count {
                    let target = if stride_all {
                        online[(me + step) % count]
                    } else {
                        online[(me + 1 + (round as usize + step) % (count - 1)) % count]
                    };
                    if target == me {
                        continue;
                    }
                    ping(target);
                    sent[me][target].fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let after = ping_totals();
        for from in percpu::online_cpus().map(|c| c.index) {
            for to in percpu::online_cpus().map(|c| c.index) {
                let sent = sent[from][to].load(Ordering::Relaxed);
                let answered = after[from][to].0 - before[from][to].0;
                let seen = after[from][to].1 - before[from][to].1;
                assert_eq!(
                    answered, sent,
                    "CPU {to} answered {answered} of {sent} pings from CPU {from}"
                );
                assert_eq!(
                    seen, sent,
                    "CPU {from} saw {seen} pongs for {sent} pings to CPU {to}"
                );
            }
        }
    }

    ktest! {
        /// An IPI round trip from every CPU to every other CPU.
        fn ipi_round_trip_between_every_pair() {
            if percpu::online_count() < 2 {
                return ktest::skip("needs 2 or more CPUs");
            }
            ping_everyone(1, true);
        }
    }

    ktest! {
        /// Every CPU hammers IPIs at the others at once; no delivery is lost or duplicated.
        fn ipi_storm_loses_and_duplicates_nothing() {
            if percpu::online_count() < 2 {
                return ktest::skip("needs 2 or more CPUs");
            }
            ping_everyone(200 * ktest::stress_factor(), false);
        }
    }

    ktest! {
        /// Every CPU shoots down every other CPU at the same time, over and over: all waits
        /// end (initiators wait with interrupts on), and every call runs exactly once.
        fn concurrent_shootdowns_do_not_deadlock() {
            let rounds = 100 * ktest::stress_factor();
            let calls = AtomicU64::new(0);
            let everyone = CpuSet::all_online();
            run_in_idle(everyone, &|| {
                let others = everyone.without(percpu::cpu_index());
                for round in 0..rounds {
                    let flush = if round % 2 == 0 {
                        Flush::All
                    } else {
                        Flush::Range { start: 0xffff_c000_0000_0000, end: 0xffff_c000_0000_4000 }
                    };
                    shootdown(others, flush);
                    call_many(others, &|| {
                        calls.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            let expected = rounds * (everyone.len() * (everyone.len() - 1)) as u64;
            assert_eq!(calls.load(Ordering::Relaxed), expected, "calls lost or run twice");
        }
    }

    ktest! {
        /// A page mapped and read by every CPU is remapped to another frame and shot down;
        /// afterwards every CPU reads the new contents, never the old.
        fn tlb_shootdown_shows_every_cpu_the_new_frame() {
            const OLD: u64 = 0x01d0_01d0_01d0_01d0;
            const NEW: u64 = 0x0e40_0e40_0e40_0e40;
            let old = frame::allocate(0).expect("no frame");
            let new = frame::allocate(0).expect("no frame");
            // SAFETY: both frames were just allocated to this test.
            unsafe {
                *(old.start().to_virt() as *mut u64) = OLD;
                *(new.start().to_virt() as *mut u64) = NEW;
            }
            let page = kernel_tables::reserve_virtual(1);
            // SAFETY: the page was just reserved for this test and the frame is ours.
            unsafe { kernel_tables::map_kernel_page(page, old.start()) }.expect("map");
            let everyone = CpuSet::all_online();
            let read = || {
                // SAFETY: the page stays mapped (to one of the two frames) until the end.
                unsafe { core::ptr::read_volatile(page as *const u64) }
            };
            // Every CPU caches the translation to the old frame.
            let saw_old = AtomicU32::new(0);
            run_in_idle(everyone, &|| {
                if read() == OLD {
                    saw_old.fetch_add(1, Ordering::Relaxed);
                }
            });
            assert_eq!(saw_old.load(Ordering::Relaxed) as usize, everyone.len());
            // SAFETY: the page and both frames belong to this test.
            let previous = unsafe { kernel_tables::remap_kernel_page(page, new.start()) }.expect("remap");
            assert_eq!(previous, old.start());
            shootdown(everyone, Flush::Range { start: page, end: page + 4096 });
            let saw_new = AtomicU32::new(0);
            run_in_idle(everyone, &|| {
                let value = read();
                assert_ne!(value, OLD, "CPU {} read the old frame after the shootdown", percpu::cpu_index());
                if value == NEW {
                    saw_new.fetch_add(1, Ordering::Relaxed);
                }
            });
            assert_eq!(saw_new.load(Ordering::Relaxed) as usize, everyone.len());
            // SAFETY: nobody uses the page any more.
            let last = unsafe { kernel_tables::unmap_kernel_page(page) }.expect("unmap");
            shootdown(everyone, Flush::All);
            assert_eq!(last, new.start());
            // Both frames go back now that nothing maps them (dropped).
        }
    }
}
