//! In-kernel tests of the scheduler and the sleeping primitives: kernel threads on every CPU
//! sleeping and waking each other (a lost wake-up hangs the test, and its timeout reports it),
//! mutual exclusion of the mutex and the rwsem, and writers that do not starve.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::percpu;
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
