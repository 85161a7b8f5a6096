//! Property test: random sequences of per-CPU operations on a few simulated CPUs, played by one
//! thread, checked against a simple model of what RCU promises.
//!
//! The model tracks every read-side section (outermost lock to outermost unlock). When a
//! callback is queued, or a synchronous wait begins, it records the sections open at that
//! moment; the callback must not run, and the wait must not complete, until they have all
//! ended. Callbacks must also run on their own CPU, in queue order, and at the end, once every
//! CPU leaves its sections and keeps reporting quiescent states, all of them must have run.
#![cfg(not(loom))]

use proptest::prelude::*;
use rcu::{GpTicket, Rcu, RcuHead};
use std::cell::RefCell;
use std::collections::BTreeSet;

const CPUS: usize = 4;
/// Operations per case (Miri runs short cases: it is thousands of times slower).
const MAX_OPS: usize = if cfg!(miri) { 60 } else { 200 };

#[derive(Clone, Copy, Debug)]
enum Op {
    Online(usize),
    ReadLock(usize),
    ReadUnlock(usize),
    Qs(usize),
    EnterIdle(usize),
    ExitIdle(usize),
    CallRcu(usize),
    StartWait,
    Poll(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let cpu = 0..CPUS;
    prop_oneof![
        1 => cpu.clone().prop_map(Op::Online),
        4 => cpu.clone().prop_map(Op::ReadLock),
        4 => cpu.clone().prop_map(Op::ReadUnlock),
        3 => cpu.clone().prop_map(Op::Qs),
        2 => cpu.clone().prop_map(Op::EnterIdle),
        2 => cpu.clone().prop_map(Op::ExitIdle),
        3 => cpu.clone().prop_map(Op::CallRcu),
        1 => Just(Op::StartWait),
        4 => (cpu, 0..4usize).prop_map(|(cpu, budget)| Op::Poll(cpu, budget)),
    ]
}

/// An object whose freeing is logged.
#[repr(C)]
struct Obj {
    head: RcuHead,
    id: usize,
}

thread_local! {
    /// `(cpu that ran the callback, object id)`, in the order callbacks ran.
    static FREED: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
    /// The CPU whose `poll` is running.
    static POLLING: RefCell<usize> = const { RefCell::new(usize::MAX) };
}

/// # Safety
///
/// `head` heads an `Obj` leaked from a `Box`, freed only here.
unsafe fn free_obj(head: *mut RcuHead) {
    // SAFETY: `head` is the first field of a `#[repr(C)]` `Obj` from `Box::into_raw`, and
    // the pointer carries the whole box's provenance.
    let obj = unsafe { Box::from_raw(head.cast::<Obj>()) };
    let cpu = POLLING.with(|p| *p.borrow());
    FREED.with(|f| f.borrow_mut().push((cpu, obj.id)));
}

#[derive(Default, Clone, Copy)]
struct CpuModel {
    online: bool,
    idle: bool,
    depth: usize,
    /// The id of the outermost open section, if any.
    section: Option<usize>,
}

/// A queued callback or a started wait, and the sections that must end first.
struct Waiter {
    cpu: usize,
    blockers: Vec<usize>,
}

struct Model {
    rcu: Box<Rcu>,
    cpus: [CpuModel; CPUS],
    open: BTreeSet<usize>,
    next_section: usize,
    callbacks: Vec<Waiter>,
    tickets: Vec<(GpTicket, Vec<usize>)>,
    /// How many of the freed log entries have been checked.
    checked: usize,
}

impl Model {
    fn new() -> Self {
        FREED.with(|f| f.borrow_mut().clear());
        let rcu = Box::new(Rcu::new());
        rcu.cpu_online(0);
        let mut cpus = [CpuModel::default(); CPUS];
        cpus[0].online = true;
        Model {
            rcu,
            cpus,
            open: BTreeSet::new(),
            next_section: 0,
            callbacks: Vec::new(),
            tickets: Vec::new(),
            checked: 0,
        }
    }

    fn blockers(&self) -> Vec<usize> {
        self.open.iter().copied().collect()
    }

    /// Applies `op` if it is legal in the current state (skipped otherwise).
    fn apply(&mut self, op: Op) {
        let rcu = &*self.rcu;
        match op {
            Op::Online(c) if !self.cpus[c].online => {
                rcu.cpu_online(c);
                self.cpus[c].online = true;
            }
            Op::ReadLock(c) if self.active(c) => {
                rcu.read_lock(c);
                let m = &mut self.cpus[c];
                m.depth += 1;
                if m.depth == 1 {
                    m.section = Some(self.next_section);
                    self.open.insert(self.next_section);
                    self.next_section += 1;
                }
            }
            Op::ReadUnlock(c) if self.active(c) && self.cpus[c].depth > 0 => {
                rcu.read_unlock(c);
                let m = &mut self.cpus[c];
                m.depth -= 1;
                if m.depth == 0 {
                    self.open.remove(&m.section.take().unwrap());
                }
            }
            Op::Qs(c) if self.active(c) && self.cpus[c].depth == 0 => rcu.quiescent_state(c),
            Op::EnterIdle(c) if self.active(c) && self.cpus[c].depth == 0 => {
                rcu.enter_idle(c);
                self.cpus[c].idle = true;
            }
            Op::ExitIdle(c) if self.cpus[c].online && self.cpus[c].idle => {
                rcu.exit_idle(c);
                self.cpus[c].idle = false;
            }
            Op::CallRcu(c) if self.active(c) => {
                let id = self.callbacks.len();
                let obj = Box::into_raw(Box::new(Obj {
                    head: RcuHead::new(),
                    id,
                }));
                // SAFETY: the object is leaked until `free_obj` reclaims it, and this thread
                // plays CPU `c`.
                unsafe { rcu.call_rcu(c, obj.cast::<RcuHead>(), free_obj) };
                self.callbacks.push(Waiter {
                    cpu: c,
                    blockers: self.blockers(),
                });
            }
            Op::StartWait => {
                let ticket = rcu.start_wait();
                self.tickets.push((ticket, self.blockers()));
            }
            // The glue polls from process context on a CPU that is awake (an idle CPU polls
            // before it halts, that is before `enter_idle`).
            Op::Poll(c, budget) if self.active(c) => self.poll(c, budget),
            _ => {}
        }
        self.check();
    }

    fn active(&self, c: usize) -> bool {
        self.cpus[c].online && !self.cpus[c].idle
    }

    fn poll(&mut self, c: usize, budget: usize) {
        POLLING.with(|p| *p.borrow_mut() = c);
        let out = self.rcu.poll(c, budget);
        POLLING.with(|p| *p.borrow_mut() = usize::MAX);
        assert!(out.ran <= budget);
    }

    /// Checks everything that ran or completed since the last check.
    fn check(&mut self) {
        let freed = FREED.with(|f| f.borrow().clone());
        for &(cpu, id) in &freed[self.checked..] {
            let cb = &self.callbacks[id];
            assert_eq!(cpu, cb.cpu, "callback {id} ran on the wrong CPU");
            for s in &cb.blockers {
                assert!(
                    !self.open.contains(s),
                    "callback {id} ran while section {s}, open when it was queued, is still open"
                );
            }
            // Queue order: every earlier callback of the same CPU has already run.
            for earlier in (0..id).filter(|&e| self.callbacks[e].cpu == cpu) {
                assert!(
                    freed.iter().any(|&(_, f)| f == earlier),
                    "callback {id} ran before {earlier}, queued earlier on CPU {cpu}"
                );
            }
        }
        self.checked = freed.len();
        for (ticket, blockers) in &self.tickets {
            if self.rcu.is_complete(*ticket) {
                for s in blockers {
                    assert!(
                        !self.open.contains(s),
                        "GP {} completed while section {s} is still open",
                        ticket.gp()
                    );
                }
            }
        }
        let stats = self.rcu.stats();
        assert!(stats.gps_completed <= stats.gps_started);
        assert!(stats.gps_started <= stats.gps_completed + 1);
        assert_eq!(stats.callbacks_queued, self.callbacks.len() as u64);
        assert_eq!(stats.callbacks_invoked, self.checked as u64);
    }

    /// Ends every section, then lets every awake CPU report and poll until all is done.
    fn drain(&mut self) {
        for c in 0..CPUS {
            while self.cpus[c].depth > 0 {
                self.apply(Op::ReadUnlock(c));
            }
        }
        for _ in 0..4 {
            for c in 0..CPUS {
                self.apply(Op::Qs(c));
                self.apply(Op::Poll(c, usize::MAX));
            }
        }
        // Idle CPUs wake up to run their callbacks.
        for c in 0..CPUS {
            self.apply(Op::ExitIdle(c));
        }
        for _ in 0..4 {
            for c in 0..CPUS {
                self.apply(Op::Qs(c));
                self.apply(Op::Poll(c, usize::MAX));
            }
        }
        assert_eq!(self.checked, self.callbacks.len(), "callbacks left over");
        for (ticket, _) in &self.tickets {
            assert!(self.rcu.is_complete(*ticket));
        }
        assert_eq!(self.rcu.cpus_holding_gp(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn callbacks_and_waits_respect_read_sections(ops in prop::collection::vec(op(), 0..MAX_OPS)) {
        let mut model = Model::new();
        for op in ops {
            model.apply(op);
        }
        model.drain();
    }
}
