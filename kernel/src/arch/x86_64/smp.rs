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
use super::percpu::{self, CpuSet, MAX_CPUS, PerCpu};

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
    for index in others.iter() {
        let Some(target) = percpu::cpu(index).filter(|c| c.online.load(Ordering::Acquire)) else {
            call.pending.fetch_sub(1, Ordering::Relaxed);
            continue;
        };
        requests[index].call.store(call_ptr, Ordering::Relaxed);
        target.call_queue.push(&requests[index]);
        apic::send_ipi(target.apic_id.load(Ordering::Relaxed), apic::CALL_VECTOR);
    }
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
    let queue = &percpu::this_cpu().call_queue;
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
}

impl IdleWork {
    pub const fn new() -> Self {
        Self {
            work: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    pub fn is_pending(&self) -> bool {
        !self.work.load(Ordering::Acquire).is_null()
    }
}

/// Serialises users of the idle-work slots.
static IDLE_WORK_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Runs `function` on every CPU in `cpus` in process context with interrupts enabled: here
/// directly, on the other CPUs in their idle loop. Returns when all have finished. The other
/// CPUs must be idle (no scheduler yet: they are, outside of this call).
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
pub fn run_idle_work(cpu: &PerCpu) {
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
}

/// Pages up to which a shootdown flushes page by page; above, the whole TLB.
pub const FLUSH_ALL_THRESHOLD: u64 = 32;

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
/// set of CPUs using the address space *after* its page-table stores, with a full fence between
/// (DESIGN.md §3): a CPU that joins later loads the new tables, one that joined earlier is in
/// the set. Must be called with interrupts enabled (see [`call_many`]).
pub fn shootdown(cpus: CpuSet, flush: Flush) {
    call_many(cpus, &|| flush_local(flush));
}

/// Set while a panicking CPU stops the others.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Stops every other online CPU with an NMI and waits (briefly) until each has recorded where it
/// was. Returns the CPUs that stopped.
pub fn stop_other_cpus() -> CpuSet {
    STOPPING.store(true, Ordering::SeqCst);
    let me = percpu::cpu_index();
    let others = CpuSet::all_online().without(me);
    if others.is_empty() {
        return others;
    }
    apic::send_nmi_all_but_self();
    let deadline = crate::time::now_ns() + 100_000_000;
    while others.iter().any(|i| !has_stopped(i)) && crate::time::now_ns() < deadline {
        core::hint::spin_loop();
    }
    CpuSet(
        others
            .iter()
            .filter(|&i| has_stopped(i))
            .fold(0, |mask, i| mask | 1 << i),
    )
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
