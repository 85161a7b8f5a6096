//! Single-threaded tests of the grace-period state machine: one thread plays every CPU in turn.

use super::*;
use std::cell::RefCell;
use std::rc::Rc;

/// An object freed by a callback; the log records which objects were freed, in order.
#[repr(C)]
struct Obj {
    head: RcuHead,
    id: u32,
    log: Rc<RefCell<Vec<u32>>>,
}

/// Frees an `Obj` and logs its id.
///
/// # Safety
///
/// `head` is the head of an `Obj` from `Box::into_raw`, freed only here.
unsafe fn free_obj(head: *mut RcuHead) {
    // SAFETY: `head` is the first field of a `#[repr(C)]` `Obj` leaked by `queue`, and the
    // pointer carries the provenance of the whole box.
    let obj = unsafe { Box::from_raw(head.cast::<Obj>()) };
    obj.log.borrow_mut().push(obj.id);
}

/// Queues the freeing of a new object `id` on `cpu`.
fn queue(rcu: &Rcu, cpu: usize, id: u32, log: &Rc<RefCell<Vec<u32>>>) {
    let obj = Box::into_raw(Box::new(Obj {
        head: RcuHead::new(),
        id,
        log: Rc::clone(log),
    }));
    // SAFETY: the object is leaked until `free_obj` reclaims it; nobody else touches it.
    unsafe { rcu.call_rcu(cpu, obj.cast::<RcuHead>(), free_obj) };
}

fn log() -> Rc<RefCell<Vec<u32>>> {
    Rc::new(RefCell::new(Vec::new()))
}

fn online(n: usize) -> Rcu {
    let rcu = Rcu::new();
    for cpu in 0..n {
        rcu.cpu_online(cpu);
    }
    rcu
}

/// Every CPU in `cpus` reports a quiescent state.
fn all_qs(rcu: &Rcu, cpus: core::ops::Range<usize>) {
    for cpu in cpus {
        rcu.quiescent_state(cpu);
    }
}

#[test]
fn no_grace_period_without_a_request() {
    let rcu = online(2);
    all_qs(&rcu, 0..2);
    assert_eq!(rcu.poll(0, 10), PollOutcome::default());
    assert_eq!(rcu.poll(1, 10), PollOutcome::default());
    let stats = rcu.stats();
    assert_eq!((stats.gps_started, stats.gps_completed), (0, 0));
    assert_eq!(rcu.cpus_holding_gp(), 0);
}

#[test]
fn grace_period_waits_for_every_online_cpu() {
    let rcu = online(3);
    let ticket = rcu.start_wait();
    assert_eq!(ticket.gp(), 1);
    assert!(!rcu.is_complete(ticket));

    assert_eq!(rcu.gp_in_progress(), None);
    let out = rcu.poll(0, 10);
    assert_eq!(out.started_gp, Some(1));
    assert_eq!(out.completed_gp, None);
    assert_eq!(rcu.gp_in_progress(), Some(1));
    assert_eq!(rcu.cpus_holding_gp(), 0b111);

    rcu.quiescent_state(0);
    rcu.quiescent_state(2);
    assert_eq!(rcu.cpus_holding_gp(), 0b010);
    assert_eq!(rcu.poll(0, 10), PollOutcome::default());
    assert!(!rcu.is_complete(ticket));

    rcu.quiescent_state(1);
    assert_eq!(rcu.cpus_holding_gp(), 0);
    let out = rcu.poll(2, 10);
    assert_eq!(out.completed_gp, Some(1));
    assert_eq!(out.started_gp, None, "nobody asked for another");
    assert!(rcu.is_complete(ticket));
    assert_eq!(rcu.gp_in_progress(), None);
    assert_eq!(rcu.cpus_holding_gp(), 0);
    // Completed once only.
    assert_eq!(rcu.poll(1, 10), PollOutcome::default());
    assert_eq!(rcu.stats().gps_completed, 1);
}

#[test]
fn quiescent_state_before_the_grace_period_does_not_count() {
    let rcu = online(2);
    let ticket = rcu.start_wait();
    all_qs(&rcu, 0..2); // before GP 1 started: reports GP 0
    assert_eq!(rcu.poll(0, 10).started_gp, Some(1));
    assert_eq!(rcu.poll(0, 10).completed_gp, None);
    all_qs(&rcu, 0..2);
    assert_eq!(rcu.poll(0, 10).completed_gp, Some(1));
    assert!(rcu.is_complete(ticket));
}

#[test]
fn idle_cpus_do_not_hold_grace_periods() {
    let rcu = online(3);
    rcu.enter_idle(1);
    rcu.enter_idle(2);
    assert!(rcu.is_idle(1) && !rcu.is_idle(0));
    let ticket = rcu.start_wait();
    assert_eq!(rcu.poll(0, 10).started_gp, Some(1));
    assert_eq!(rcu.cpus_holding_gp(), 0b001);
    rcu.quiescent_state(0);
    assert_eq!(rcu.poll(0, 10).completed_gp, Some(1));
    assert!(rcu.is_complete(ticket));
}

#[test]
fn waking_from_idle_reports_a_quiescent_state() {
    let rcu = online(2);
    let ticket = rcu.start_wait();
    assert_eq!(rcu.poll(0, 10).started_gp, Some(1));
    // CPU 1 sleeps and wakes during the GP without anyone sampling it while idle.
    rcu.enter_idle(1);
    rcu.exit_idle(1);
    assert!(!rcu.is_idle(1));
    assert_eq!(rcu.cpus_holding_gp(), 0b01);
    rcu.quiescent_state(0);
    assert_eq!(rcu.poll(0, 10).completed_gp, Some(1));
    assert!(rcu.is_complete(ticket));
}

#[test]
fn a_cpu_awake_since_before_the_grace_period_holds_it() {
    let rcu = online(2);
    rcu.enter_idle(1);
    rcu.exit_idle(1); // reports GP 0
    rcu.start_wait();
    rcu.poll(0, 10);
    rcu.quiescent_state(0);
    assert_eq!(rcu.cpus_holding_gp(), 0b10);
    assert_eq!(rcu.poll(0, 10).completed_gp, None);
}

#[test]
fn offline_cpus_are_ignored_and_new_ones_are_counted() {
    let rcu = online(1); // CPUs 1.. never came online
    let ticket = rcu.start_wait();
    rcu.poll(0, 10);
    rcu.quiescent_state(0);
    assert_eq!(rcu.poll(0, 10).completed_gp, Some(1));
    assert!(rcu.is_complete(ticket));

    // A CPU coming online during a GP reports for it, but later GPs wait for it.
    let ticket = rcu.start_wait();
    assert_eq!(rcu.poll(0, 10).started_gp, Some(2));
    rcu.cpu_online(5);
    assert_eq!(rcu.stats().online, 0b10_0001);
    assert_eq!(rcu.cpus_holding_gp(), 0b1);
    rcu.quiescent_state(0);
    assert_eq!(rcu.poll(0, 10).completed_gp, Some(2));
    assert!(rcu.is_complete(ticket));

    let ticket = rcu.start_wait();
    rcu.poll(0, 10);
    rcu.quiescent_state(0);
    assert_eq!(rcu.cpus_holding_gp(), 0b10_0000);
    assert_eq!(rcu.poll(0, 10).completed_gp, None);
    rcu.quiescent_state(5);
    assert_eq!(rcu.poll(5, 10).completed_gp, Some(3));
    assert!(rcu.is_complete(ticket));
}

#[test]
fn a_request_during_a_grace_period_waits_for_the_next_one() {
    let rcu = online(2);
    let first = rcu.start_wait();
    rcu.poll(0, 10);
    let second = rcu.start_wait();
    assert_eq!((first.gp(), second.gp()), (1, 2));
    all_qs(&rcu, 0..2);
    let out = rcu.poll(1, 10);
    assert_eq!((out.completed_gp, out.started_gp), (Some(1), Some(2)));
    assert!(rcu.is_complete(first) && !rcu.is_complete(second));
    assert_eq!(rcu.poll(1, 10).completed_gp, None);
    all_qs(&rcu, 0..2);
    assert_eq!(rcu.poll(0, 10).completed_gp, Some(2));
    assert!(rcu.is_complete(second));
    // Many requests before a GP starts share it.
    let a = rcu.start_wait();
    let b = rcu.start_wait();
    assert_eq!(a, b);
}

#[test]
fn callbacks_wait_for_their_grace_period_and_run_in_order() {
    let rcu = online(2);
    let freed = log();
    queue(&rcu, 0, 1, &freed);
    queue(&rcu, 0, 2, &freed);
    assert!(rcu.has_pending_callbacks(0));
    assert!(!rcu.has_pending_callbacks(1));
    assert_eq!((rcu.pending_callbacks(0), rcu.pending_callbacks(1)), (2, 0));

    assert_eq!(rcu.poll(0, 10).started_gp, Some(1));
    queue(&rcu, 0, 3, &freed); // needs GP 2
    rcu.quiescent_state(0);
    assert_eq!(rcu.poll(0, 10).ran, 0);
    assert!(freed.borrow().is_empty());

    rcu.quiescent_state(1);
    let out = rcu.poll(0, 10);
    assert_eq!(
        (out.completed_gp, out.started_gp, out.ran),
        (Some(1), Some(2), 2)
    );
    assert_eq!(*freed.borrow(), [1, 2]);

    all_qs(&rcu, 0..2);
    let out = rcu.poll(1, 10);
    assert_eq!(
        (out.completed_gp, out.ran),
        (Some(2), 0),
        "CPU 1 runs only its own"
    );
    assert_eq!(rcu.poll(0, 10).ran, 1);
    assert_eq!(*freed.borrow(), [1, 2, 3]);
    assert!(!rcu.has_pending_callbacks(0));
}

#[test]
fn callbacks_run_in_bounded_batches() {
    let rcu = online(1);
    let freed = log();
    for id in 0..10 {
        queue(&rcu, 0, id, &freed);
    }
    rcu.poll(0, 0);
    rcu.quiescent_state(0);
    let out = rcu.poll(0, 4);
    assert_eq!((out.completed_gp, out.ran), (Some(1), 4));
    assert_eq!(rcu.poll(0, 4).ran, 4);
    assert_eq!(rcu.stats().pending[0], 2);
    assert_eq!(rcu.poll(0, 4).ran, 2);
    assert_eq!(rcu.poll(0, 4).ran, 0);
    assert_eq!(*freed.borrow(), (0..10).collect::<Vec<_>>());
}

/// A callback that queues another callback on CPU 0 (as a slab freeing a page might).
unsafe fn requeue(head: *mut RcuHead) {
    // SAFETY: as for `free_obj`.
    let obj = unsafe { Box::from_raw(head.cast::<Obj>()) };
    obj.log.borrow_mut().push(obj.id);
    if obj.id == 0 {
        let next = Box::into_raw(Box::new(Obj {
            head: RcuHead::new(),
            id: 1,
            log: Rc::clone(&obj.log),
        }));
        // SAFETY: only the test thread runs, as CPU 0, and the object is leaked until freed.
        unsafe { RCU_FOR_REQUEUE.call_rcu(0, next.cast::<RcuHead>(), requeue) };
    }
}

static RCU_FOR_REQUEUE: Rcu = Rcu::new();

#[test]
fn a_callback_may_queue_another() {
    let rcu = &RCU_FOR_REQUEUE;
    rcu.cpu_online(0);
    let freed = log();
    let obj = Box::into_raw(Box::new(Obj {
        head: RcuHead::new(),
        id: 0,
        log: Rc::clone(&freed),
    }));
    // SAFETY: leaked until `requeue` frees it.
    unsafe { rcu.call_rcu(0, obj.cast::<RcuHead>(), requeue) };
    for _ in 0..4 {
        rcu.quiescent_state(0);
        rcu.poll(0, 10);
    }
    assert_eq!(*freed.borrow(), [0, 1]);
    assert!(!rcu.has_pending_callbacks(0));
}

#[test]
fn read_sections_nest() {
    let rcu = online(1);
    assert!(!rcu.in_read_section(0));
    rcu.read_lock(0);
    rcu.read_lock(0);
    rcu.read_unlock(0);
    assert!(rcu.in_read_section(0));
    rcu.read_unlock(0);
    assert!(!rcu.in_read_section(0));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "inside an RCU read-side section")]
fn quiescent_state_inside_a_read_section_panics() {
    let rcu = online(1);
    rcu.read_lock(0);
    rcu.quiescent_state(0);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "goes idle inside an RCU read-side section")]
fn idle_inside_a_read_section_panics() {
    let rcu = online(1);
    rcu.read_lock(0);
    rcu.enter_idle(0);
}

#[test]
fn synchronize_loop_on_one_cpu() {
    // The glue's synchronize_rcu: report, poll, until complete.
    let rcu = online(1);
    let ticket = rcu.start_wait();
    let mut rounds = 0;
    while !rcu.is_complete(ticket) {
        rcu.quiescent_state(0);
        rcu.poll(0, 10);
        rounds += 1;
        assert!(rounds < 10);
    }
    assert_eq!(rounds, 2);
}

#[test]
fn stats_count_everything() {
    let rcu = online(2);
    let freed = log();
    queue(&rcu, 0, 0, &freed);
    queue(&rcu, 1, 1, &freed);
    queue(&rcu, 1, 2, &freed);
    rcu.poll(0, 10);
    let stats = rcu.stats();
    assert_eq!(stats.gps_started, 1);
    assert_eq!(stats.gps_completed, 0);
    assert_eq!(stats.callbacks_queued, 3);
    assert_eq!(stats.callbacks_invoked, 0);
    assert_eq!(&stats.pending[..3], &[1, 2, 0]);
    assert_eq!(stats.online, 0b11);
    assert_eq!(stats.holding, 0b11);

    all_qs(&rcu, 0..2);
    rcu.poll(0, 10);
    rcu.poll(1, 1);
    let stats = rcu.stats();
    assert_eq!((stats.gps_started, stats.gps_completed), (1, 1));
    assert_eq!((stats.callbacks_queued, stats.callbacks_invoked), (3, 2));
    assert_eq!(&stats.pending[..3], &[0, 1, 0]);
    assert_eq!(stats.holding, 0);
    rcu.poll(1, 1);
    assert_eq!(rcu.stats().callbacks_invoked, 3);
}
