//! In-kernel tests of the scheduler and the sleeping primitives: kernel threads on every CPU
//! sleeping and waking each other (a lost wake-up hangs the test, and its timeout reports it),
//! CPU affinity, mutual exclusion of the mutex and the rwsem, and writers that do not starve.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::Task;
use crate::arch::percpu::{self, CpuSet};
use crate::ktest;
use crate::sync::{Completion, Mutex, RwSem, WaitQueue};

/// Starts `count` kernel threads running `body(index)` and waits for all of them.
fn run_threads(count: usize, body: impl Fn(usize) + Send + Sync + 'static) -> u64 {
    let body = Arc::new(body);
    let cpus_used = Arc::new(AtomicU64::new(0));
    let done: Vec<Arc<Completion>> = (0..count).map(|_| Arc::new(Completion::new())).collect();
    for (index, completion) in done.iter().enumerate() {
        let body = body.clone();
        let completion = completion.clone();
        let cpus_used = cpus_used.clone();
        super::spawn_kernel("ktest-worker", move || {
            body(index);
            cpus_used.fetch_or(
                super::current().cpus_seen.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            completion.complete();
        })
        .expect("memory for a test thread");
    }
    for completion in &done {
        assert!(
            completion.wait_timeout(60_000_000_000),
            "a test thread never finished"
        );
    }
    cpus_used.load(Ordering::Relaxed)
}

ktest! {
    timeout_ms = 120_000;
    /// Pairs of threads pass a token back and forth through wait queues many times: each wait
    /// needs the other's wake-up, so one lost wake-up hangs the pair.
    fn ping_pong_through_wait_queues_loses_no_wakeup() {
        let pairs = percpu::online_count().max(2);
        let rounds = 2_000 * ktest::stress_factor();
        struct Pair {
            turn: AtomicU64,
            queue: WaitQueue,
        }
        let table: Arc<Vec<Pair>> = Arc::new(
            (0..pairs).map(|_| Pair { turn: AtomicU64::new(0), queue: WaitQueue::new() }).collect(),
        );
        let cpus = run_threads(pairs * 2, move |index| {
            let pair = &table[index / 2];
            let side = (index % 2) as u64;
            for round in 0..rounds {
                let mine = round * 2 + side;
                pair.queue.wait_until(|| pair.turn.load(Ordering::Acquire) == mine);
                pair.turn.store(mine + 1, Ordering::Release);
                pair.queue.wake_all();
            }
        });
        if percpu::online_count() > 1 {
            assert!(cpus.count_ones() > 1, "the threads all ran on one CPU: {cpus:#x}");
        }
    }
}

ktest! {
    timeout_ms = 120_000;
    /// Threads on every CPU increment a plain counter under the sleeping mutex.
    fn mutex_excludes_across_cpus() {
        let threads = percpu::online_count() * 2;
        let rounds = 500 * ktest::stress_factor() as usize;
        let counter = Arc::new(Mutex::new(0usize));
        let inside = Arc::new(AtomicUsize::new(0));
        let (c, i) = (counter.clone(), inside.clone());
        run_threads(threads, move |_| {
            for round in 0..rounds {
                let mut value = c.lock();
                assert_eq!(i.fetch_add(1, Ordering::AcqRel), 0, "two holders at once");
                *value += 1;
                if round % 16 == 0 {
                    crate::sched::yield_now();
                }
                i.fetch_sub(1, Ordering::AcqRel);
            }
        });
        assert_eq!(*counter.lock(), threads * rounds);
    }
}

ktest! {
    timeout_ms = 120_000;
    /// Readers hold the rwsem in overlapping turns without a gap while writers ask for it: the
    /// writers must get in (writers do not starve), and never together with a reader.
    fn rwsem_writers_exclude_readers_and_do_not_starve() {
        let readers = percpu::online_count().max(2);
        let writes = 200 * ktest::stress_factor();
        let lock = Arc::new(RwSem::new());
        let state = Arc::new(AtomicU64::new(0)); // readers inside, or u64::MAX/2 for a writer
        let writers_done = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (l, st, wd, wr) = (lock.clone(), state.clone(), writers_done.clone(), written.clone());
        run_threads(readers + 2, move |index| {
            if index < 2 {
                for _ in 0..writes {
                    let writing = l.write();
                    assert_eq!(st.swap(u64::MAX / 2, Ordering::AcqRel), 0, "a writer met someone inside");
                    wr.fetch_add(1, Ordering::Relaxed);
                    st.store(0, Ordering::Release);
                    drop(writing);
                }
                if wr.load(Ordering::Relaxed) == 2 * writes {
                    wd.store(true, Ordering::Release);
                }
            } else {
                while !wd.load(Ordering::Acquire) {
                    let reading = l.read();
                    let before = st.fetch_add(1, Ordering::AcqRel);
                    assert!(before < u64::MAX / 4, "a reader met a writer inside");
                    crate::sched::yield_now();
                    st.fetch_sub(1, Ordering::AcqRel);
                    drop(reading);
                }
            }
        });
        assert_eq!(written.load(Ordering::Relaxed), 2 * writes);
    }
}

ktest! {
    timeout_ms = 120_000;
    /// A writer that takes the rwsem again as soon as it lets go (an mmap/munmap loop) does not
    /// starve the readers: a leaving writer hands the lock to the waiting readers. (Before the
    /// hand-off, faults under mmap_lock beside such a loop ran at 2-7% of their usual rate.)
    fn rwsem_readers_get_in_beside_a_writer_in_a_loop() {
        let readers = percpu::online_count().max(2) - 1;
        let reads = 200 * ktest::stress_factor();
        let lock = Arc::new(RwSem::new());
        let readers_done = Arc::new(AtomicU64::new(0));
        let writes = Arc::new(AtomicU64::new(0));
        let (l, rd, wr) = (lock.clone(), readers_done.clone(), writes.clone());
        run_threads(readers + 1, move |index| {
            if index == 0 {
                while rd.load(Ordering::Acquire) < readers as u64 {
                    let writing = l.write();
                    wr.fetch_add(1, Ordering::Relaxed);
                    drop(writing);
                    // Only so that a single CPU runs the readers too (no kernel preemption).
                    if percpu::online_count() == 1 {
                        crate::sched::yield_now();
                    }
                }
            } else {
                for _ in 0..reads {
                    drop(l.read());
                }
                rd.fetch_add(1, Ordering::Release);
            }
        });
        crate::println!(
            "# {} reads by {readers} readers beside {} writes",
            reads * readers as u64,
            writes.load(Ordering::Relaxed)
        );
    }
}

ktest! {
    timeout_ms = 60_000;
    /// Sleeping for a while takes about that long, and other tasks run meanwhile.
    fn sleep_waits_its_time() {
        let start = crate::time::now_ns();
        crate::sched::timer::sleep_ns(20_000_000).expect("not killed");
        let slept = crate::time::now_ns() - start;
        assert!(slept >= 20_000_000, "woke after {slept} ns");
    }
}

ktest! {
    timeout_ms = 60_000;
    /// An idle CPU left with a switch request and nothing to run (the task a tick or a wake-up
    /// meant may have gone to another CPU) takes the request and halts again, instead of
    /// running its idle loop without a break. (Found with 8 emulated CPUs on 2 host cores,
    /// where the idle CPUs that never halted slowed the one busy CPU several times over.)
    fn an_idle_cpu_with_a_stale_switch_request_halts() {
        let Some(other) = ktest::other_cpu() else {
            return ktest::skip("needs 2 or more CPUs");
        };
        let cpu = percpu::cpu(other).expect("an online CPU");
        let deadline = crate::time::now_ns() + 5_000_000_000;
        while !cpu.sched.is_idle() {
            assert!(crate::time::now_ns() < deadline, "cpu{other} never went idle");
            crate::sched::yield_now();
        }
        let (passes, halts, ticks) = (
            cpu.idle_passes.load(Ordering::Relaxed),
            cpu.idle_halts.load(Ordering::Relaxed),
            cpu.ticks.load(Ordering::Relaxed),
        );
        cpu.sched.need_resched.store(true, Ordering::Relaxed);
        crate::sched::timer::sleep_ns(100_000_000).expect("not killed");
        let passes = cpu.idle_passes.load(Ordering::Relaxed) - passes;
        let halts = cpu.idle_halts.load(Ordering::Relaxed) - halts;
        let ticks = cpu.ticks.load(Ordering::Relaxed) - ticks;
        assert!(
            halts > 0 && passes <= 4 * ticks + 50,
            "cpu{other}: {passes} idle passes and {halts} halts in {ticks} ticks"
        );
    }
}

/// Starts a kernel thread that may run only on `cpus`.
fn spawn_on(cpus: CpuSet, entry: impl FnOnce() + Send + 'static) -> Arc<Task> {
    let task = Task::new_kernel("ktest-affine", Box::new(entry)).expect("memory for a test thread");
    task.set_allowed_cpus(cpus);
    super::spawn(task.clone());
    task
}

ktest! {
    timeout_ms = 120_000;
    /// Tasks allowed one CPU, or two, run nowhere else (`Task::cpus_seen` records every CPU a
    /// task ran on): spawning, waking and stealing all honour the set. Some sleep on timers
    /// and are woken through wait queues by unpinned partners on any CPU; three more take
    /// turns on one CPU for a while, yielding, so that its queue is the busiest and the idle
    /// CPUs keep looking there for work to steal.
    fn pinned_tasks_run_only_on_allowed_cpus() {
        let Some(other) = ktest::other_cpu() else {
            return ktest::skip("needs 2 or more CPUs");
        };
        let me = percpu::cpu_index();
        let one = CpuSet::default().with(other);
        let pair_sets = [one, one.with(me)];
        let rounds = 300 * ktest::stress_factor();
        struct Pair {
            turn: AtomicU64,
            queue: crate::sync::WaitQueue,
        }
        let pairs: Arc<Vec<Pair>> = Arc::new(
            pair_sets
                .iter()
                .map(|_| Pair { turn: AtomicU64::new(0), queue: crate::sync::WaitQueue::new() })
                .collect(),
        );
        let mut checked = Vec::new();
        let mut done = Vec::new();
        let mut start = |cpus: CpuSet, body: Box<dyn FnOnce() + Send>| {
            let finished = Arc::new(crate::sync::Completion::new());
            let f = finished.clone();
            let task = spawn_on(cpus, move || {
                body();
                f.complete();
            });
            done.push(finished);
            task
        };
        // Side 0 runs on `cpus`, side 1 (its partner) anywhere.
        let side = |index: usize, side: u64| -> Box<dyn FnOnce() + Send> {
            let pairs = pairs.clone();
            Box::new(move || {
                let pair = &pairs[index];
                for round in 0..rounds {
                    let mine = round * 2 + side;
                    pair.queue.wait_until(|| pair.turn.load(Ordering::Acquire) == mine);
                    if side == 0 && round % 8 == 0 {
                        crate::sched::timer::sleep_ns(100_000).expect("not killed");
                    }
                    pair.turn.store(mine + 1, Ordering::Release);
                    pair.queue.wake_all();
                    crate::sched::yield_now();
                }
            })
        };
        for (index, &cpus) in pair_sets.iter().enumerate() {
            start(CpuSet::ALL, side(index, 1));
            checked.push((start(cpus, side(index, 0)), cpus));
        }
        let busy_until = crate::time::now_ns() + 300_000_000;
        for _ in 0..3 {
            let spinner = Box::new(move || {
                let mut turns = 0u64;
                while crate::time::now_ns() < busy_until {
                    crate::sched::yield_now();
                    turns += 1;
                    if turns % 64 == 0 {
                        crate::sched::timer::sleep_ns(100_000).expect("not killed");
                    }
                }
            });
            checked.push((start(one, spinner), one));
        }
        for finished in &done {
            assert!(finished.wait_timeout(60_000_000_000), "a test thread never finished");
        }
        for (task, cpus) in &checked {
            let seen = CpuSet(task.cpus_seen.load(Ordering::Relaxed));
            assert!(
                seen.intersection(CpuSet(!cpus.0)).is_empty(),
                "a task allowed {cpus} ran on {seen}"
            );
        }
    }
}

ktest! {
    timeout_ms = 60_000;
    /// A task whose set stops including its CPU moves at its next switch: when another task
    /// changes its set while it runs, and when it changes its own. Afterwards, sleeping and
    /// yielding, it stays where its new set allows.
    fn a_task_moves_off_a_cpu_its_set_leaves_out() {
        let Some(other) = ktest::other_cpu() else {
            return ktest::skip("needs 2 or more CPUs");
        };
        let me = percpu::cpu_index();
        const UNSET: usize = usize::MAX;
        let cpus = Arc::new([const { AtomicUsize::new(UNSET) }; 3]);
        let go = Arc::new(AtomicBool::new(false));
        let seen_after = Arc::new(AtomicU64::new(0));
        let done = Arc::new(crate::sync::Completion::new());
        let (c, g, s, d) = (cpus.clone(), go.clone(), seen_after.clone(), done.clone());
        let task = spawn_on(CpuSet::default().with(other), move || {
            c[0].store(percpu::cpu_index(), Ordering::Relaxed);
            while !g.load(Ordering::Acquire) {
                crate::sched::yield_now();
            }
            // The set changed (to this test's CPU) at the latest before `go`: one more switch
            // moves the task, if none of the yields above did.
            crate::sched::yield_now();
            c[1].store(percpu::cpu_index(), Ordering::Relaxed);
            let current = crate::sched::current();
            crate::sched::set_affinity(current, CpuSet::default().with(other));
            crate::sched::yield_now();
            c[2].store(percpu::cpu_index(), Ordering::Relaxed);
            current.cpus_seen.store(0, Ordering::Relaxed);
            for round in 0..50 {
                if round % 4 == 0 {
                    crate::sched::timer::sleep_ns(100_000).expect("not killed");
                }
                crate::sched::yield_now();
            }
            s.store(current.cpus_seen.load(Ordering::Relaxed), Ordering::Relaxed);
            d.complete();
        });
        let deadline = crate::time::now_ns() + 5_000_000_000;
        while cpus[0].load(Ordering::Relaxed) == UNSET {
            assert!(crate::time::now_ns() < deadline, "the task never started");
            crate::sched::yield_now();
        }
        crate::sched::set_affinity(&task, CpuSet::default().with(me));
        go.store(true, Ordering::Release);
        assert!(done.wait_timeout(30_000_000_000), "the task never finished");
        let [first, moved, back] = [0, 1, 2].map(|i| cpus[i].load(Ordering::Relaxed));
        assert_eq!(first, other, "started outside its set");
        assert_eq!(moved, me, "did not move when another task changed its set");
        assert_eq!(back, other, "did not move when it changed its own set");
        let seen = seen_after.load(Ordering::Relaxed);
        assert_eq!(seen, 1 << other, "ran on {} after its last move", CpuSet(seen));
    }
}
