//! Loom models of the grace-period protocol, with two or three CPUs each played by a loom
//! thread.
//!
//! The protected object's payload lives in a loom `UnsafeCell`: the reader reads it inside its
//! section and the callback writes it (the "free"), so loom reports any execution in which the
//! free is not ordered after the read, besides the poison check the reader makes.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p rcu --release --test loom`
//! (with `CARGO_TARGET_DIR=target/loom`, so as not to rebuild everything else).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicPtr, Ordering};
use loom::thread;
use rcu::{GpTicket, Rcu, RcuHead};

const LIVE: u64 = 1;
const FREED: u64 = 2;

#[repr(C)]
struct Obj {
    head: RcuHead,
    /// `LIVE` until the callback "frees" the object by writing `FREED`.
    state: UnsafeCell<u64>,
}

impl Obj {
    fn new() -> *mut Obj {
        Box::into_raw(Box::new(Obj {
            head: RcuHead::new(),
            state: UnsafeCell::new(LIVE),
        }))
    }
}

/// Marks the object freed; the memory itself is reclaimed when the model ends.
///
/// # Safety
///
/// `head` heads a live `Obj` whose grace period has passed.
unsafe fn free_obj(head: *mut RcuHead) {
    let obj = head.cast::<Obj>();
    // SAFETY: `head` is the first field of a `#[repr(C)]` `Obj`, still allocated; loom checks
    // that this write does not race with a reader's read.
    unsafe { (*obj).state.with_mut(|s| *s = FREED) };
}

struct Shared {
    rcu: Rcu,
    ptr: AtomicPtr<Obj>,
    old: *mut Obj,
    new: *mut Obj,
}

// SAFETY: `old` and `new` are only freed after every thread has finished; sharing the raw
// pointers is what the model is about.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`.
unsafe impl Sync for Shared {}

impl Shared {
    fn new() -> Arc<Shared> {
        let old = Obj::new();
        Arc::new(Shared {
            rcu: Rcu::new(),
            ptr: AtomicPtr::new(old),
            old,
            new: Obj::new(),
        })
    }

    /// One read-side section on `cpu`: look up the object and check it has not been freed.
    fn read(&self, cpu: usize) {
        self.rcu.read_lock(cpu);
        let obj = self.ptr.load(Ordering::Acquire);
        // SAFETY: the object stays allocated for the whole model; whether reading it here is
        // ordered before the callback's write is what loom checks.
        let state = unsafe { (*obj).state.with(|s| *s) };
        assert_eq!(state, LIVE, "reader saw a freed object");
        self.rcu.read_unlock(cpu);
    }

    /// The updater on `cpu`: unlink the old object, queue its free, and drive grace periods
    /// for a few rounds (reporting quiescent states and polling). The callback may or may not
    /// have run by the end; the model checks that it never runs too early.
    fn update(&self, cpu: usize) {
        self.ptr.store(self.new, Ordering::Release);
        // SAFETY: `old` is unlinked and freed by nobody else; this thread plays `cpu`.
        unsafe { self.rcu.call_rcu(cpu, self.old.cast::<RcuHead>(), free_obj) };
        for _ in 0..3 {
            self.rcu.quiescent_state(cpu);
            self.rcu.poll(cpu, 1);
        }
    }

    /// The start of an updater with a synchronous wait instead of a callback: unlink the old
    /// object and begin the wait.
    fn unlink_and_start_wait(&self) -> GpTicket {
        self.ptr.store(self.new, Ordering::Release);
        self.rcu.start_wait()
    }

    /// Frees the old object if the wait of `ticket` has completed; returns whether it had.
    fn free_if_complete(&self, ticket: GpTicket) -> bool {
        let complete = self.rcu.is_complete(ticket);
        if complete {
            // SAFETY: a full grace period has passed since the unlink.
            unsafe { free_obj(self.old.cast::<RcuHead>()) };
        }
        complete
    }

    fn release(&self) {
        // SAFETY: every thread has finished; both objects came from `Box::into_raw`.
        unsafe {
            drop(Box::from_raw(self.old));
            drop(Box::from_raw(self.new));
        }
    }
}

/// Runs a two-CPU model. These are small enough to explore with at least three preemptions
/// (more than the `LOOM_MAX_PREEMPTIONS=2` the project runs loom with), which some orderings
/// need before a mistake shows: for example, a completer reading a report without Acquire.
fn two_cpu_model(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if let Some(bound) = builder.preemption_bound {
        builder.preemption_bound = Some(bound.max(3));
    }
    builder.check(model);
}

/// Two CPUs online and grace period 1 already requested (by an earlier updater), so that
/// either CPU may start it without synchronising with the updater under test: the ordering
/// must then come from the fences alone.
fn two_cpus_gp_requested(shared: &Shared) {
    shared.rcu.cpu_online(0);
    shared.rcu.cpu_online(1);
    shared.rcu.start_wait();
}

/// A reader that polls (which may start the grace period) and reports a quiescent state
/// between two sections, against an updater that queues a callback and drives grace
/// periods.
#[test]
fn reader_quiescent_state_vs_call_rcu() {
    two_cpu_model(|| {
        let shared = Shared::new();
        two_cpus_gp_requested(&shared);
        let s = Arc::clone(&shared);
        let reader = thread::spawn(move || {
            s.read(0);
            s.rcu.poll(0, 0);
            s.rcu.quiescent_state(0);
            s.read(0);
        });
        shared.update(1);
        reader.join().unwrap();
        shared.release();
    });
}

/// The idle handshake: CPU 0 starts idle, wakes up, reads and goes back to idle while the
/// updater decides whether CPU 0 holds the grace period up. A section begun after CPU 0 left
/// idle must either hold the GP or see the new object.
#[test]
fn idle_exit_vs_grace_period_completion() {
    two_cpu_model(|| {
        let shared = Shared::new();
        two_cpus_gp_requested(&shared);
        shared.rcu.enter_idle(0);
        let s = Arc::clone(&shared);
        let reader = thread::spawn(move || {
            s.rcu.exit_idle(0);
            s.read(0);
            s.rcu.enter_idle(0);
        });
        shared.update(1);
        reader.join().unwrap();
        shared.release();
    });
}

/// The idle handshake with a third CPU completing the grace period, which then reaches the
/// updater through `completed` only. CPU 2 is not online (as a CPU that polls before joining GP
/// accounting): it has no quiescent-state report of its own whose fence would order its scan,
/// so these models need the completer's fence.
fn idle_exit_vs_remote_completer(updater: fn(&Shared)) {
    loom::model(move || {
        let shared = Shared::new();
        two_cpus_gp_requested(&shared);
        shared.rcu.enter_idle(0);
        let s = Arc::clone(&shared);
        let reader = thread::spawn(move || {
            s.rcu.exit_idle(0);
            s.read(0);
            s.rcu.enter_idle(0);
        });
        let s = Arc::clone(&shared);
        let completer = thread::spawn(move || {
            for _ in 0..3 {
                s.rcu.poll(2, 0);
            }
        });
        updater(&shared);
        reader.join().unwrap();
        completer.join().unwrap();
        shared.release();
    });
}

/// The updater begins a synchronous wait, goes idle, and frees if the wait completes.
#[test]
fn idle_exit_vs_remote_completer_sync() {
    idle_exit_vs_remote_completer(|shared| {
        let ticket = shared.unlink_and_start_wait();
        shared.rcu.enter_idle(1);
        for _ in 0..3 {
            if shared.free_if_complete(ticket) {
                break;
            }
            thread::yield_now();
        }
    });
}

/// The updater queues a callback and runs it if the grace period completes.
#[test]
fn idle_exit_vs_remote_completer_callback() {
    idle_exit_vs_remote_completer(|shared| shared.update(1));
}

/// A synchronous waiter (`start_wait` + `is_complete`) against a reader that comes online,
/// reads, reports and reads again.
#[test]
fn cpu_online_and_synchronous_wait() {
    two_cpu_model(|| {
        let shared = Shared::new();
        shared.rcu.cpu_online(1);
        let s = Arc::clone(&shared);
        let reader = thread::spawn(move || {
            s.rcu.cpu_online(0);
            s.read(0);
            s.rcu.quiescent_state(0);
            s.read(0);
        });
        let ticket = shared.unlink_and_start_wait();
        for _ in 0..3 {
            shared.rcu.quiescent_state(1);
            shared.rcu.poll(1, 0);
            if shared.free_if_complete(ticket) {
                break;
            }
        }
        reader.join().unwrap();
        shared.release();
    });
}
