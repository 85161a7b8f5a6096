//! The per-VMA lock under torture: kernel threads working in one address space (as its
//! threads would) fault continuously on VMAs that other threads keep unmapping, remapping,
//! splitting and reprotecting, while a second address space recycles VMAs through the same
//! type-stable cache (which debug builds run in immediate LIFO-reuse mode), with delays
//! injected at the protocol's race windows and forced retries.
//!
//! Invariants: every fault served under a VMA lock finds a VMA of the faulting address space
//! covering the address (asserted in the fault path); data written to the stable region is
//! always read back; the counters of every path (success, abort, miss, retry, fallback) move.
//!
//! Under failure injection (`fail=`, the injection profile of `cargo xtask test`) the same
//! torture runs with VMAs, frames and page tables failing to allocate now and then: an
//! operation may then fail with `ENOMEM` and a write to an unpopulated page with `EFAULT`, but
//! a write that succeeded is still read back, and afterwards frames, page tables, VMAs and slab
//! objects are back at their baseline (taken and checked with the injection paused).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::addrspace::Mm;
use super::inject;
use super::mmap::{self, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};
use super::vma_lock;
use crate::arch::percpu;
use crate::arch::uaccess::{read_user, write_user};
use crate::ktest;
use crate::proc::Process;
use crate::proc::exec::SpawnOptions;
use crate::sched::task::{Task, UserThread};
use crate::sync::Completion;
use crate::syscall::errno::{ENOMEM, SysResult};

const PAGE: u64 = 4096;
/// Pages per slot; slots are the unit the mutators change.
const SLOT_PAGES: u64 = 4;
const SLOTS: u64 = 32;
/// Stable region: always mapped read-write; its slots are split and merged by toggling
/// PROT_EXEC, which keeps the pages.
const STABLE: u64 = 0x1000_0000;
/// Churn region: unmapped, remapped, zapped and made read-only or inaccessible all the time.
/// Few slots, so that faults and changes meet often.
const CHURN: u64 = 0x2000_0000;
const CHURN_SLOTS: u64 = 4;
const RW: u64 = PROT_READ | PROT_WRITE;
const ANON_FIXED: u64 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/// A xorshift generator: the tortures' random choices, the same on every run.
pub(crate) struct Rng(pub u64);

impl Rng {
    /// The next number below `bound`.
    pub(crate) fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// An empty address space for kernel threads to work in, with a process for them to belong
/// to (never registered, never run by a user thread).
pub(crate) struct Space {
    pub process: Arc<Process>,
    pub mm: Arc<Mm>,
}

pub(crate) fn address_space(name: &str) -> Arc<Space> {
    space_for(name, Mm::new().expect("memory for an address space"))
}

/// A [`Space`] for the address space `mm`.
pub(crate) fn space_for(name: &str, mm: Arc<Mm>) -> Arc<Space> {
    let lineage = crate::proc::Lineage {
        parent: None,
        exit_signal: 0,
        vfork_done: None,
        files: None,
    };
    let process = Arc::new(Process::new(
        name,
        mm.clone(),
        lineage,
        &SpawnOptions::default(),
    ));
    Arc::new(Space { process, mm })
}

/// Runs `body` in a kernel thread working in `space`, and waits for it (30 s at most).
pub(crate) fn run_in(space: &Arc<Space>, body: impl FnOnce() + Send + 'static) {
    let done = start_in(space, body);
    assert!(done.wait_timeout(30_000_000_000), "a thread never finished");
}

/// Starts a kernel thread in `space`; returns its completion.
pub(crate) fn start_in(
    space: &Arc<Space>,
    body: impl FnOnce() + Send + 'static,
) -> Arc<Completion> {
    let done = Arc::new(Completion::new());
    let finished = done.clone();
    let user = UserThread::new(
        space.process.clone(),
        space.mm.clone(),
        0,
        0,
        Default::default(),
    );
    let task = Task::new_kernel_in(
        "vma-torture",
        Box::new(move || {
            body();
            finished.complete();
        }),
        Some(user),
    )
    .expect("memory for a torture thread");
    crate::sched::spawn(task);
    done
}

ktest! {
    timeout_ms = 300_000;
    /// See the module documentation.
    fn faults_race_munmap_mprotect_and_vma_reuse_across_address_spaces() {
        if !vma_lock::is_enabled() {
            return ktest::skip("the per-VMA lock is off (vma_lock=off)");
        }
        if percpu::online_count() < 2 {
            // Kernel code is not preempted: on one CPU no fault ever overlaps a change.
            return ktest::skip("needs 2 or more CPUs");
        }
        if inject::is_armed() {
            assert!(inject::is_active(), "failure injection left paused (by a test that failed?)");
        }
        let paused = inject::Suspend::new();
        let baseline = inject::is_armed().then(crate::proc::ktests::Baseline::take);
        let before = vma_lock::totals();
        let victim = address_space("vma-torture");
        let recycler = address_space("vma-recycler");
        mmap::mmap(&victim.mm, STABLE, SLOTS * SLOT_PAGES * PAGE, RW, ANON_FIXED, u64::MAX, 0)
            .expect("the stable region");
        mmap::mmap(&victim.mm, CHURN, CHURN_SLOTS * SLOT_PAGES * PAGE, RW, ANON_FIXED, u64::MAX, 0)
            .expect("the churn region");
        drop(paused);
        vma_lock::set_injection(2_000, 64);

        let rounds = 1_000 * ktest::stress_factor();
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicU64::new(0));
        // One CPU is left to the mutator and the recycler.
        let faulters = (percpu::online_count() - 1).max(2);
        let mut done = Vec::new();
        for index in 0..faulters as u64 {
            let (stop, lost) = (stop.clone(), lost.clone());
            done.push(start_in(&victim, move || {
                let mut rng = Rng(0x9e37_79b9 + index * 7919);
                while !stop.load(Ordering::Acquire) {
                    // Stable region: a page only this thread writes (page index % faulters).
                    let page = rng.next(SLOTS * SLOT_PAGES / faulters as u64) * faulters as u64 + index;
                    let addr = STABLE + page * PAGE + (rng.next(64) * 8);
                    let value = (index << 48) | rng.next(1 << 40);
                    let written = match write_user(addr, &value) {
                        Ok(()) => true,
                        // No frame or table for the page: an injected failure, not a loss.
                        Err(_) if inject::is_active() => false,
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    };
                    if written && read_user::<u64>(addr) != Ok(value) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    // Churn region: may be gone, read-only or inaccessible; must not crash.
                    let churn = CHURN + rng.next(CHURN_SLOTS * SLOT_PAGES) * PAGE;
                    let _ = write_user(churn, &value);
                    let _ = read_user::<u64>(churn);
                    // Kernel code is not preempted: let the mutators and the runner in.
                    crate::sched::yield_now();
                }
            }));
        }
        let mutator = {
            let victim = victim.clone();
            start_in(&victim.clone(), move || {
                let mm = &victim.mm;
                let mut rng = Rng(0x1234_5678);
                // At least `rounds`, then on until the random windows have moved every counter
                // but the miss counter (which `reader_meets_a_detached_vma` makes certain),
                // within a time cap.
                let cap = crate::time::now_ns() + 60_000_000_000;
                let mut round = 0;
                let pending = || counters_since(&before).iter().enumerate().any(|(i, &c)| i != 3 && c == 0);
                while round < rounds || (pending() && crate::time::now_ns() < cap) {
                    round += 1;
                    let slot = rng.next(SLOTS);
                    let pages = 1 + rng.next(SLOT_PAGES * 2);
                    let stable = STABLE + (slot * SLOT_PAGES + rng.next(SLOT_PAGES)) * PAGE;
                    let stable_len = pages.min(SLOTS * SLOT_PAGES - (stable - STABLE) / PAGE) * PAGE;
                    let prot = if rng.next(2) == 0 { RW } else { RW | PROT_EXEC };
                    succeeds_unless_injected(mmap::mprotect(mm, stable, stable_len, prot), "stable mprotect");
                    let churn = CHURN + (slot % CHURN_SLOTS) * SLOT_PAGES * PAGE;
                    let len = SLOT_PAGES * PAGE;
                    match rng.next(5) {
                        0 => {
                            succeeds_unless_injected(mmap::munmap(mm, churn, len), "munmap");
                        }
                        1 => {
                            let remap = mmap::mmap(mm, churn, len, RW, ANON_FIXED, u64::MAX, 0);
                            succeeds_unless_injected(remap, "remap");
                        }
                        2 => {
                            let _ = mmap::mprotect(mm, churn + PAGE, PAGE, PROT_READ);
                        }
                        3 => {
                            let _ = mmap::madvise(mm, churn, len, 4); // MADV_DONTNEED
                        }
                        _ => {
                            let _ = mmap::mprotect(mm, churn, 2 * PAGE, 0);
                        }
                    }
                    // Let the faulters in, and RCU callbacks run (kernel code is not preempted).
                    crate::sched::yield_now();
                }
            })
        };
        let recycler_done = {
            let (recycler, stop) = (recycler.clone(), stop.clone());
            start_in(&recycler.clone(), move || {
                let mm = &recycler.mm;
                let mut rng = Rng(0xdead_beef);
                while !stop.load(Ordering::Acquire) {
                    let addr = CHURN + rng.next(SLOTS) * SLOT_PAGES * PAGE;
                    let mapped = mmap::mmap(mm, addr, PAGE, RW, ANON_FIXED, u64::MAX, 0);
                    if succeeds_unless_injected(mapped, "recycler mmap") {
                        let _ = write_user(addr, &1u64);
                    }
                    succeeds_unless_injected(mmap::munmap(mm, addr, PAGE), "recycler munmap");
                    crate::sched::yield_now();
                }
            })
        };
        assert!(mutator.wait_timeout(240_000_000_000), "the mutator never finished");
        stop.store(true, Ordering::Release);
        for completion in done.iter().chain([&recycler_done]) {
            assert!(completion.wait_timeout(60_000_000_000), "a torture thread never finished");
        }
        vma_lock::set_injection(0, 0);
        let paused = inject::Suspend::new();
        reader_meets_a_detached_vma(&victim);
        victim.mm.teardown();
        recycler.mm.teardown();
        let lost_writes = lost.load(Ordering::Relaxed);
        // Everything this test allocated goes before the baseline is checked.
        drop((victim, recycler, done, mutator, recycler_done, stop, lost));
        if let Some(baseline) = baseline {
            baseline.check();
            crate::println!("# back at baseline: {}", baseline.compared_with_now());
        }
        drop(paused);

        let delta = counters_since(&before);
        crate::println!(
            "# VMA_LOCK_SUCCESS {} VMA_LOCK_ABORT {} VMA_LOCK_RETRY {} VMA_LOCK_MISS {} fallback {}",
            delta[0], delta[1], delta[2], delta[3], delta[4]
        );
        assert_eq!(lost_writes, 0, "data written to the stable region was lost");
        if let Err(name) = every_counter_moved(&before) {
            panic!("the {name} counter never moved: {delta:?}");
        }
    }
}

/// A reader that sits between its lookup and its lock while a writer unmaps the VMA and ends
/// its write session must find the VMA detached and retry the walk (`VMA_LOCK_MISS`): the
/// window the random delays above hit only now and then, made certain.
fn reader_meets_a_detached_vma(victim: &Arc<Space>) {
    const TARGET: u64 = STABLE + SLOTS * SLOT_PAGES * PAGE + 16 * PAGE;
    for _ in 0..10 {
        let misses = vma_lock::totals()[3];
        let mm = &victim.mm;
        mmap::mmap(mm, TARGET, PAGE, RW, ANON_FIXED, u64::MAX, 0).expect("map the target");
        let in_window = Arc::new(AtomicBool::new(false));
        let reader = {
            let in_window = in_window.clone();
            start_in(victim, move || {
                in_window.store(true, Ordering::Release);
                vma_lock::delay_next_lookup_here(20_000_000);
                let _ = write_user(TARGET, &7u64);
            })
        };
        while !in_window.load(Ordering::Acquire) {
            crate::sched::yield_now();
        }
        let _ = crate::sched::timer::sleep_ns(5_000_000);
        mmap::munmap(mm, TARGET, PAGE).expect("unmap the target");
        assert!(
            reader.wait_timeout(10_000_000_000),
            "the reader never finished"
        );
        if vma_lock::totals()[3] > misses {
            return;
        }
    }
}

/// Whether `result` is a success; panics on an error unless it is `ENOMEM` while failures are
/// injected (`fail=`).
fn succeeds_unless_injected(result: SysResult, what: &str) -> bool {
    match result {
        Ok(_) => true,
        Err(ENOMEM) if inject::is_active() => false,
        Err(error) => panic!("{what}: {error:?}"),
    }
}

fn counters_since(before: &[u64; 5]) -> [u64; 5] {
    let after = vma_lock::totals();
    core::array::from_fn(|i| after[i] - before[i])
}

/// `Err(name)` of the first counter that has not moved since `before`.
fn every_counter_moved(before: &[u64; 5]) -> Result<(), &'static str> {
    let delta = counters_since(before);
    match ["success", "abort", "retry", "miss", "fallback"]
        .iter()
        .zip(delta)
        .find(|(_, count)| *count == 0)
    {
        Some((name, _)) => Err(name),
        None => Ok(()),
    }
}

ktest! {
    timeout_ms = 60_000;
    /// A thread that has read an untouched page (mapping the shared zero page) must see what
    /// another thread then writes there from another CPU, without switching address spaces
    /// in between: replacing the zero page must shoot its translation down everywhere.
    /// (QEMU's TCG happens not to keep the stale translation, so under TCG this passes even
    /// without the shootdown; it guards KVM and real machines.)
    fn a_write_that_replaces_the_zero_page_is_seen_on_other_cpus() {
        if percpu::online_count() < 2 {
            return ktest::skip("needs 2 or more CPUs");
        }
        const PAGE_ADDR: u64 = 0x3000_0000;
        const WRITTEN: u64 = 0x5eed;
        let space = address_space("zero-page");
        mmap::mmap(&space.mm, PAGE_ADDR, PAGE, RW, ANON_FIXED, u64::MAX, 0).expect("map");
        let reading = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let reader = {
            let (reading, seen) = (reading.clone(), seen.clone());
            start_in(&space, move || {
                // The first read maps the zero page and caches its translation on this CPU.
                assert_eq!(read_user::<u64>(PAGE_ADDR), Ok(0));
                reading.store(true, Ordering::Release);
                // Spin without sleeping or switching: only a shootdown can refresh the TLB.
                // The copies go a byte at a time, so a read may catch the write half done:
                // only the whole value ends the wait.
                let deadline = crate::time::now_ns() + 3_000_000_000;
                while crate::time::now_ns() < deadline {
                    let value = read_user::<u64>(PAGE_ADDR).unwrap_or(0);
                    seen.store(value, Ordering::Release);
                    if value == WRITTEN {
                        return;
                    }
                }
            })
        };
        while !reading.load(Ordering::Acquire) {
            crate::sched::yield_now();
        }
        let writer = start_in(&space, || {
            write_user(PAGE_ADDR, &WRITTEN).expect("write");
        });
        assert!(writer.wait_timeout(10_000_000_000), "the writer never finished");
        assert!(reader.wait_timeout(10_000_000_000), "the reader never finished");
        space.mm.teardown();
        assert_eq!(
            seen.load(Ordering::Acquire),
            WRITTEN,
            "the reader kept reading the zero page after the write replaced it"
        );
    }
}
