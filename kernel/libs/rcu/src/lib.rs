//! Read-copy-update (RCU) for a non-preemptive SMP kernel.
//!
//! This crate is the algorithm only: it knows nothing of the hardware, never sleeps and never
//! allocates. The kernel glue calls it from every CPU with that CPU's index (`0..MAX_CPUS`);
//! host tests do the same from threads that each play one CPU. A function taking `cpu` must be
//! called *on* that CPU (by the thread playing it), except where its docs say otherwise.
//!
//! # The model
//!
//! Kernel code is never preempted, so a read-side critical section ends before its CPU can
//! switch tasks. A CPU therefore knows when it holds no reference obtained under RCU — at a
//! context switch, on return to user mode, in the idle loop, or wherever the kernel calls
//! [`Rcu::quiescent_state`] — and it says so itself: a *quiescent state* (QS). An idle CPU is in
//! an *extended* QS ([`Rcu::enter_idle`] .. [`Rcu::exit_idle`]) and never holds anything up.
//! The read-side markers ([`Rcu::read_lock`], [`Rcu::read_unlock`]) only count nesting for
//! debugging checks and keep the compiler from moving accesses out of the section.
//!
//! A *grace period* (GP) starts when someone waits for one (a queued callback, a
//! `synchronize_rcu` caller) and ends once every online CPU has passed a QS since it began, or
//! has been idle since it began. Any read-side section that was running when the GP began has
//! then ended, so whatever was unlinked before the GP began can be freed.
//!
//! # What is owned where
//!
//! * Global counters (one cache line): `gp_seq`, the number of GPs started; `completed`, the
//!   number completed; `requested`, the highest GP number anyone waits for; `online`, the
//!   bitmask of CPUs in GP accounting. Only one GP runs at a time, so always
//!   `completed <= gp_seq <= completed + 1`; GP number `n` is the `n`th GP ever started.
//! * Per CPU, written only by that CPU: the read-side nesting count and the callback counters
//!   (local line); `qs_seen`, the number of the latest GP this CPU has reported a QS for, and
//!   `dynticks`, a counter that is odd while the CPU is idle (remote line: GP completers read
//!   these two). The nesting count is never read by another CPU.
//! * Per CPU: a FIFO of callbacks ([`RcuHead`] nodes embedded in the objects to free) under a
//!   spin mutex that only the owning CPU takes (see `callback.rs`). Each node is tagged with
//!   the GP it waits for; tags never decrease along the list, so callbacks run in queue order.
//!
//! There is no global lock: starting and completing a GP are single compare-and-swaps on
//! `gp_seq` and `completed`, done by whichever CPU polls first ([`Rcu::poll`]).
//!
//! # Grace-period state machine
//!
//! * **Request.** [`Rcu::call_rcu`] and [`Rcu::start_wait`] read `gp_seq` (after a full fence)
//!   and wait for GP `gp_seq + 1`: the GP in progress, if any, began before the call and does
//!   not cover it, the next one begins after it. They raise `requested` to that number.
//! * **Start.** [`Rcu::poll`]: if no GP is in progress (`completed == gp_seq`) and
//!   `requested > gp_seq`, CAS `gp_seq` from `g` to `g + 1`. Nothing else is written at the
//!   start: the per-CPU state is compared with the GP number instead of being reset.
//! * **Report.** A CPU outside any read-side section reads `gp_seq` and stores it in its
//!   `qs_seen` ([`Rcu::quiescent_state`], also done by [`Rcu::exit_idle`] and
//!   [`Rcu::cpu_online`]).
//! * **Complete.** [`Rcu::poll`]: with GP `n` in progress, every online CPU has `qs_seen >= n`
//!   or an odd `dynticks` (idle now); then CAS `completed` from `n - 1` to `n`. A CPU that went
//!   idle after GP `n` began and woke again before anyone looked is covered by its wake-up:
//!   `exit_idle` reports a QS for the GP in progress, which is sound because nobody is in a
//!   read-side section when leaving idle.
//! * **Invoke.** [`Rcu::poll`] pops, in order, the owning CPU's callbacks whose GP number is
//!   at most `completed`, up to a budget, and runs them outside the list's lock.
//!
//! # Memory ordering
//!
//! Safety needs two things of a GP `n` that a callback (or waiter) is tagged with:
//!
//! 1. *Sections before a CPU's QS are over when the GP completes.* A section's accesses are
//!    sequenced before the CPU's Release store to `qs_seen` (or before its entering idle, a
//!    SeqCst increment of `dynticks`). The completer reads those with Acquire, then publishes
//!    with its CAS on `completed`, which the CPU running the callback (or the waiter) reads
//!    with Acquire. So every access of such a section happens before the callback frees.
//! 2. *Sections after a CPU's QS (or after the completer saw it idle, or missed it coming
//!    online) see the unlink.* This is the store-buffering pattern that x86 does not order
//!    by itself, and both sides use a SeqCst fence (`mfence`):
//!    - the updater: unlink (store) → fence F1 → read `gp_seq == n - 1`;
//!    - a reporting CPU: read `gp_seq >= n` → fence → store `qs_seen`, then later sections;
//!    - the completer: read `gp_seq == n` → fence F_c → read `online`, `qs_seen`, `dynticks`;
//!    - a CPU leaving idle: increment `dynticks` (and read `gp_seq` for its report) → fence →
//!      sections; a CPU coming online: set its `online` bit → read `gp_seq` → fence → sections.
//!
//!    The updater's read of `n - 1` precedes, in `gp_seq`'s modification order, the CAS that
//!    started GP `n`, which precedes any read of `n` or more; so F1 comes before the reporting
//!    CPU's fence (and before F_c) in the single total order of SeqCst fences. Likewise, when
//!    the completer reads `dynticks` odd (or `online` without the bit), its read precedes the
//!    CPU's later increment (or `fetch_or`), so F_c precedes that CPU's fence. By the fence
//!    rules, every load after the later fence sees the unlink that came before F1.
//!
//! The GP start itself needs no fence, and `requested` orders nothing: the argument above runs
//! through the values of `gp_seq`, not through what the starting CPU has seen. The completer's
//! fence is usually redundant with the fence of its own CPU's report for GP `n`, but not when
//! the polling CPU is idle or not online yet. On x86 the SeqCst increments of `dynticks` and
//! the CASes are locked instructions (full barriers) and every fence is an `mfence`; none of
//! them is on the read-side fast path.
//!
//! # Testing
//!
//! Unit tests (`src/tests.rs`) drive the state machine from one thread; `tests/model.rs` checks
//! random operation sequences against a model of which read-side sections each callback and
//! wait must outlast; `tests/stress.rs` runs readers and updaters on threads; `tests/loom.rs`
//! explores the protocol under loom, where removing any one of the fences above, or weakening
//! the Acquire loads of the completer's scan, makes a model fail.
//!
//! # Rules for callers
//!
//! * A CPU reports a QS only outside read-side sections, and enters idle only outside them.
//!   An interrupt handler on an idle CPU that uses RCU calls [`Rcu::exit_idle`] first and
//!   [`Rcu::enter_idle`] before returning ([`Rcu::is_idle`] tells which case applies).
//! * [`Rcu::call_rcu`] and [`Rcu::poll`] are for process context and must not interrupt each
//!   other on one CPU (both take the CPU's callback lock). Callbacks run inside `poll` and may
//!   queue new callbacks, but must not call `poll` themselves.
//! * GPs complete only while some CPU keeps polling: a CPU with pending callbacks polls from
//!   its idle loop and scheduler paths, and synchronous waiters poll while they wait.
#![cfg_attr(not(test), no_std)]

mod callback;
mod sync;

#[cfg(all(test, not(loom)))]
mod tests;

pub use callback::{Callback, RcuHead};

use callback::CallbackList;
use sync::{AtomicU32, AtomicU64, Mutex, Ordering, compiler_fence, fence};

/// The number of CPUs the crate can track (CPU indices are `0..MAX_CPUS`): the kernel's bound,
/// [`ksync::MAX_CPUS`], at most 64 so that a `u64` bitmask names any set of them. Loom models
/// use 4, to keep every model small.
pub const MAX_CPUS: usize = if cfg!(loom) { 4 } else { ksync::MAX_CPUS };

/// A grace period that a synchronous waiter waits for, from [`Rcu::start_wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GpTicket(u64);

impl GpTicket {
    /// The number of the grace period waited for.
    pub fn gp(self) -> u64 {
        self.0
    }
}

/// What one [`Rcu::poll`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// How many of the CPU's callbacks it ran.
    pub ran: usize,
    /// The grace period this call completed, if it completed one.
    pub completed_gp: Option<u64>,
    /// The grace period this call started, if it started one (after completing the previous
    /// one, possibly in the same call).
    pub started_gp: Option<u64>,
}

/// A snapshot of the counters, for statistics and diagnostics. Counters of other CPUs are
/// read without synchronisation, so a snapshot taken while they run is approximate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Grace periods started; the current (or last) grace period's number.
    pub gps_started: u64,
    /// Grace periods completed.
    pub gps_completed: u64,
    /// Callbacks queued by all CPUs.
    pub callbacks_queued: u64,
    /// Callbacks run on all CPUs.
    pub callbacks_invoked: u64,
    /// Callbacks queued and not yet run, per CPU.
    pub pending: [u64; MAX_CPUS],
    /// Bitmask of the CPUs in grace-period accounting.
    pub online: u64,
    /// Bitmask of the online CPUs that hold up the grace period in progress
    /// (see [`Rcu::cpus_holding_gp`]).
    pub holding: u64,
}

/// Global grace-period state, on its own cache line.
#[repr(align(64))]
struct Global {
    /// Grace periods started.
    gp_seq: AtomicU64,
    /// Grace periods completed.
    completed: AtomicU64,
    /// The highest grace-period number that a callback or waiter waits for.
    requested: AtomicU64,
    /// Bitmask of online CPUs.
    online: AtomicU64,
}

/// State that only its own CPU reads and writes.
#[repr(align(64))]
struct Local {
    /// Read-side nesting depth; checked by debug assertions only.
    nesting: AtomicU32,
    /// Callbacks this CPU has queued (written by this CPU only; others read it for stats).
    queued: AtomicU64,
    /// Callbacks this CPU has run (written by this CPU only; others read it for stats).
    invoked: AtomicU64,
    /// Callbacks waiting for their grace period, in queue order.
    callbacks: Mutex<CallbackList>,
}

/// State that its CPU writes and grace-period completers read.
#[repr(align(64))]
struct Remote {
    /// The latest grace period this CPU has reported a quiescent state for.
    qs_seen: AtomicU64,
    /// Odd while the CPU is idle (in an extended quiescent state), even otherwise.
    dynticks: AtomicU64,
}

struct PerCpu {
    local: Local,
    remote: Remote,
}

impl PerCpu {
    sync::const_unless_loom! {
        fn new() -> Self {
            Self {
                local: Local {
                    nesting: AtomicU32::new(0),
                    queued: AtomicU64::new(0),
                    invoked: AtomicU64::new(0),
                    callbacks: Mutex::new(CallbackList::new()),
                },
                remote: Remote {
                    qs_seen: AtomicU64::new(0),
                    dynticks: AtomicU64::new(0),
                },
            }
        }
    }
}

impl Global {
    sync::const_unless_loom! {
        fn new() -> Self {
            Self {
                gp_seq: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                requested: AtomicU64::new(0),
                online: AtomicU64::new(0),
            }
        }
    }
}

/// Adds one to a counter that only the calling CPU writes, without a read-modify-write
/// instruction.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The RCU state of the whole machine: global grace-period counters and per-CPU state.
pub struct Rcu {
    global: Global,
    cpus: [PerCpu; MAX_CPUS],
}

impl Rcu {
    /// No CPU online, no grace period started; usable in a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            global: Global::new(),
            cpus: [const { PerCpu::new() }; MAX_CPUS],
        }
    }

    /// No CPU online, no grace period started (loom's atomics cannot be built in a `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            global: Global::new(),
            cpus: core::array::from_fn(|_| PerCpu::new()),
        }
    }

    /// Brings `cpu` into grace-period accounting, not idle; called on `cpu` before it uses
    /// RCU. From now on grace periods wait for it.
    pub fn cpu_online(&self, cpu: usize) {
        let bit = 1u64 << cpu;
        let remote = &self.cpus[cpu].remote;
        debug_assert!(
            remote.dynticks.load(Ordering::Relaxed) % 2 == 0,
            "CPU {cpu} brought online while idle"
        );
        self.global.online.fetch_or(bit, Ordering::SeqCst);
        let gp = self.global.gp_seq.load(Ordering::SeqCst);
        // Pairs with the completer's fence: a completer that missed our bit read `online`
        // before our `fetch_or`, so everything we read from here on sees what updaters did
        // before that GP began (see the crate docs).
        fence(Ordering::SeqCst);
        remote.qs_seen.store(gp, Ordering::Release);
    }

    // ----- Read side -----

    /// Begins a read-side critical section on `cpu` (sections nest).
    ///
    /// References obtained under RCU stay valid until the matching [`Rcu::read_unlock`]. The
    /// section must not sleep, schedule or report a quiescent state.
    pub fn read_lock(&self, cpu: usize) {
        let nesting = &self.cpus[cpu].local.nesting;
        nesting.store(nesting.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// Ends the innermost read-side critical section on `cpu`.
    #[track_caller]
    pub fn read_unlock(&self, cpu: usize) {
        compiler_fence(Ordering::SeqCst);
        let nesting = &self.cpus[cpu].local.nesting;
        let depth = nesting.load(Ordering::Relaxed);
        debug_assert!(depth > 0, "rcu read_unlock on CPU {cpu} without read_lock");
        nesting.store(depth.wrapping_sub(1), Ordering::Relaxed);
    }

    /// Whether `cpu` is inside a read-side critical section.
    pub fn in_read_section(&self, cpu: usize) -> bool {
        self.cpus[cpu].local.nesting.load(Ordering::Relaxed) != 0
    }

    // ----- Quiescent states -----

    /// Reports that `cpu` holds no reference obtained under RCU: it is outside every
    /// read-side section (debug builds check this and panic naming the caller).
    #[track_caller]
    pub fn quiescent_state(&self, cpu: usize) {
        debug_assert!(
            !self.in_read_section(cpu),
            "quiescent state reported on CPU {cpu} inside an RCU read-side section"
        );
        let remote = &self.cpus[cpu].remote;
        let gp = self.global.gp_seq.load(Ordering::SeqCst);
        // Only this CPU writes `qs_seen`; if it already holds `gp`, the earlier report already
        // fenced after reading `gp`.
        if remote.qs_seen.load(Ordering::Relaxed) != gp {
            // Pairs with the updaters' fence (see the crate docs): sections after this report
            // see everything unlinked before grace period `gp` began.
            fence(Ordering::SeqCst);
            // Release: the sections before this report happen before whoever sees the value.
            remote.qs_seen.store(gp, Ordering::Release);
        }
    }

    /// `cpu` enters the idle extended quiescent state: grace periods stop waiting for it.
    /// Must be outside every read-side section.
    #[track_caller]
    pub fn enter_idle(&self, cpu: usize) {
        debug_assert!(
            !self.in_read_section(cpu),
            "CPU {cpu} goes idle inside an RCU read-side section"
        );
        let old = self.cpus[cpu]
            .remote
            .dynticks
            .fetch_add(1, Ordering::SeqCst);
        debug_assert!(old % 2 == 0, "CPU {cpu} enters idle twice");
    }

    /// `cpu` leaves the idle extended quiescent state (at wake-up, or on entry to an interrupt
    /// handler that uses RCU): grace periods wait for it again.
    #[track_caller]
    pub fn exit_idle(&self, cpu: usize) {
        let remote = &self.cpus[cpu].remote;
        let old = remote.dynticks.fetch_add(1, Ordering::SeqCst);
        debug_assert!(old % 2 == 1, "CPU {cpu} leaves idle without entering it");
        let gp = self.global.gp_seq.load(Ordering::SeqCst);
        // One fence serves both reasons for it (see the crate docs): a completer that saw us
        // idle read `dynticks` before our increment, and we report a QS for `gp`; either way,
        // what we read from now on sees everything unlinked before that GP began.
        fence(Ordering::SeqCst);
        // Nothing was in a read-side section while idle, so this is a quiescent state. It
        // also covers a CPU that was idle for part of a GP but was never seen idle.
        if remote.qs_seen.load(Ordering::Relaxed) != gp {
            remote.qs_seen.store(gp, Ordering::Release);
        }
    }

    /// Whether `cpu` is idle (between [`Rcu::enter_idle`] and [`Rcu::exit_idle`]).
    pub fn is_idle(&self, cpu: usize) -> bool {
        self.cpus[cpu].remote.dynticks.load(Ordering::Relaxed) % 2 == 1
    }

    // ----- Updaters -----

    /// Queues `callback(head)` on `cpu`, to run on `cpu` after a full grace period, after the
    /// callbacks `cpu` queued earlier. Call it after unlinking the object that embeds `head`.
    ///
    /// # Safety
    ///
    /// `head` is valid for reads and writes and stays so, untouched by anyone else, until
    /// `callback(head)` has been called; `callback` is sound to call with `head` then. The
    /// call is made on `cpu`, in process context.
    pub unsafe fn call_rcu(&self, cpu: usize, head: *mut RcuHead, callback: Callback) {
        let target = self.request_gp();
        let local = &self.cpus[cpu].local;
        // SAFETY: the caller hands `head` over until the callback runs; the list takes it
        // prepared with a target no smaller than the ones queued before on this CPU, since
        // `gp_seq` never decreases.
        unsafe {
            RcuHead::prepare(head, callback, target);
            local.callbacks.lock().push(head);
        }
        bump(&local.queued);
    }

    /// Begins a synchronous wait (`synchronize_rcu`) for the caller's earlier unlinks:
    /// returns the grace period to wait for and makes sure one will be started. Wait with
    /// [`Rcu::is_complete`], reporting quiescent states and polling meanwhile.
    pub fn start_wait(&self) -> GpTicket {
        GpTicket(self.request_gp())
    }

    /// Whether the grace period of `ticket` has completed. Once it has, every read-side
    /// section that overlapped the [`Rcu::start_wait`] call has ended (Acquire).
    pub fn is_complete(&self, ticket: GpTicket) -> bool {
        self.global.completed.load(Ordering::Acquire) >= ticket.0
    }

    /// The number of a grace period that begins after this call, recorded as requested.
    fn request_gp(&self) -> u64 {
        // Pairs with the fences of reporting CPUs and completers (see the crate docs): the
        // caller's unlinks are seen by every section that starts after a QS for the target.
        fence(Ordering::SeqCst);
        let target = self.global.gp_seq.load(Ordering::SeqCst) + 1;
        // `requested` only tells pollers to start a GP; it orders nothing (the fences do).
        if self.global.requested.load(Ordering::Relaxed) < target {
            self.global.requested.fetch_max(target, Ordering::Relaxed);
        }
        target
    }

    // ----- Driving -----

    /// Drives the machinery from `cpu` (process context): completes the grace period in
    /// progress if no online CPU holds it up, starts the next one if callbacks or waiters need
    /// it, then runs up to `budget` of `cpu`'s callbacks whose grace period has completed, in
    /// queue order.
    pub fn poll(&self, cpu: usize, budget: usize) -> PollOutcome {
        let completed_gp = self.try_complete_gp(cpu);
        let started_gp = self.try_start_gp();
        let ran = self.run_callbacks(cpu, budget);
        PollOutcome {
            ran,
            completed_gp,
            started_gp,
        }
    }

    /// Completes the grace period in progress if no online CPU holds it up; returns its
    /// number if this call completed it.
    fn try_complete_gp(&self, cpu: usize) -> Option<u64> {
        let gp = self.gp_in_progress()?;
        // The calling CPU is usually the one that has not reported yet: a cheap early out.
        let me = &self.cpus[cpu].remote;
        if self.global.online.load(Ordering::Relaxed) & (1 << cpu) != 0
            && me.qs_seen.load(Ordering::Relaxed) < gp
            && me.dynticks.load(Ordering::Relaxed) % 2 == 0
        {
            return None;
        }
        if self.holding_mask(gp) != 0 {
            return None;
        }
        // Release: the CPU that runs a callback (or a waiter) reads `completed` with Acquire,
        // so the read-side sections we saw finished happen before it.
        self.global
            .completed
            .compare_exchange(gp - 1, gp, Ordering::SeqCst, Ordering::Relaxed)
            .ok()
            .map(|_| gp)
    }

    /// Starts a grace period if none is in progress and one has been requested; returns its
    /// number if this call started it.
    fn try_start_gp(&self) -> Option<u64> {
        let gp = self.global.gp_seq.load(Ordering::SeqCst);
        // `completed <= gp_seq` always, so equality (read after `gp`) means no GP is running;
        // the CAS below fails if `gp_seq` moved meanwhile.
        if self.global.completed.load(Ordering::Acquire) != gp
            || self.global.requested.load(Ordering::Relaxed) <= gp
        {
            return None;
        }
        self.global
            .gp_seq
            .compare_exchange(gp, gp + 1, Ordering::SeqCst, Ordering::Relaxed)
            .ok()
            .map(|_| gp + 1)
    }

    /// The number of the grace period in progress, if one is: two loads, cheap enough for a
    /// stall check on every poll (unlike [`Rcu::stats`], which visits every CPU).
    pub fn gp_in_progress(&self) -> Option<u64> {
        let gp = self.global.gp_seq.load(Ordering::SeqCst);
        // Read after `gp`: GP `gp` is in progress if the one before it is the last completed.
        // Grace periods may have started and completed since `gp` was read, so `completed`
        // may be past `gp` (then `gp` is over, and `gp - 1` could even be -1: the loom models'
        // debug run found GP 0 reported as in progress here).
        let completed = self.global.completed.load(Ordering::Acquire);
        (completed.wrapping_add(1) == gp).then_some(gp)
    }

    /// Bitmask of the online CPUs that have neither reported a QS for grace period `gp` nor
    /// are idle, where `gp` was read from `gp_seq` by the caller.
    fn holding_mask(&self, gp: u64) -> u64 {
        // The completer's fence (see the crate docs): the per-CPU state below is read after
        // GP `gp` began, so a CPU we see idle, or miss coming online, sees everything unlinked
        // before that GP once it wakes up or comes online.
        fence(Ordering::SeqCst);
        let mut holding = 0;
        let mut online = self.global.online.load(Ordering::Acquire);
        while online != 0 {
            let cpu = online.trailing_zeros() as usize;
            online &= online - 1;
            let remote = &self.cpus[cpu].remote;
            // Acquire (both): the CPU's sections before its report, or before it went idle,
            // happen before us and so before the grace period is declared complete.
            if remote.qs_seen.load(Ordering::Acquire) < gp
                && remote.dynticks.load(Ordering::Acquire) % 2 == 0
            {
                holding |= 1 << cpu;
            }
        }
        holding
    }

    /// Runs up to `budget` of `cpu`'s callbacks whose grace period has completed.
    fn run_callbacks(&self, cpu: usize, budget: usize) -> usize {
        let local = &self.cpus[cpu].local;
        // Acquire: pairs with the completer's CAS (see `try_complete_gp`).
        let completed = self.global.completed.load(Ordering::Acquire);
        let mut ran = 0;
        while ran < budget {
            // One node at a time, and the callback outside the lock: a callback may queue
            // more callbacks on this CPU.
            let Some((node, callback)) = local.callbacks.lock().pop_ready(completed) else {
                break;
            };
            bump(&local.invoked);
            ran += 1;
            // SAFETY: the node was queued by `call_rcu` with this callback, whose contract
            // makes the call sound once a grace period begun after the call has completed,
            // which `pop_ready` checked against `completed`. The list no longer refers to it.
            unsafe { callback(node) };
        }
        ran
    }

    /// Whether `cpu` has queued callbacks that have not run yet (read from any CPU, the
    /// answer may be stale).
    pub fn has_pending_callbacks(&self, cpu: usize) -> bool {
        self.pending_callbacks(cpu) != 0
    }

    /// How many callbacks `cpu` has queued that have not run yet (read from any CPU, the
    /// answer may be stale).
    pub fn pending_callbacks(&self, cpu: usize) -> u64 {
        let local = &self.cpus[cpu].local;
        let invoked = local.invoked.load(Ordering::Relaxed);
        local.queued.load(Ordering::Relaxed).saturating_sub(invoked)
    }

    /// Bitmask of the online CPUs that hold up the grace period in progress (neither reported
    /// a quiescent state for it nor idle); 0 if none is in progress. For stall warnings.
    pub fn cpus_holding_gp(&self) -> u64 {
        self.gp_in_progress().map_or(0, |gp| self.holding_mask(gp))
    }

    /// A snapshot of the counters (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        let mut pending = [0; MAX_CPUS];
        let mut queued = 0;
        let mut invoked = 0;
        for (cpu, slot) in pending.iter_mut().enumerate() {
            let local = &self.cpus[cpu].local;
            queued += local.queued.load(Ordering::Relaxed);
            invoked += local.invoked.load(Ordering::Relaxed);
            *slot = self.pending_callbacks(cpu);
        }
        Stats {
            gps_started: self.global.gp_seq.load(Ordering::Relaxed),
            gps_completed: self.global.completed.load(Ordering::Relaxed),
            callbacks_queued: queued,
            callbacks_invoked: invoked,
            pending,
            online: self.global.online.load(Ordering::Relaxed),
            holding: self.cpus_holding_gp(),
        }
    }
}

impl Default for Rcu {
    fn default() -> Self {
        Self::new()
    }
}
