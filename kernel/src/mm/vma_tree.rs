//! The kernel's glue for the RCU-safe range tree (kernel/libs/vmtree): RCU read guards attest
//! read sections, and replaced nodes are freed with `call_rcu` (using the scratch words every
//! node carries for it, so retiring allocates nothing). Address spaces keep their VMAs in such
//! a tree; writers are serialised by the address space's lock.

use core::ptr::NonNull;

use rcu::RcuHead;
use vmtree::{Reclaim, RetiredNode};

use crate::sync::rcu::{RcuReadGuard, call_rcu};

// SAFETY: an `RcuReadGuard` exists only inside a read-side section of the kernel's RCU, which is
// what `RcuReclaim` waits for.
unsafe impl vmtree::ReadGuard for RcuReadGuard {}

/// Frees retired tree nodes after a grace period.
pub struct RcuReclaim;

// The RCU head lives in the node's scratch words.
const _: () = assert!(size_of::<RcuHead>() <= size_of::<[usize; 4]>());
const _: () = assert!(align_of::<RcuHead>() <= align_of::<[usize; 4]>());

unsafe fn free_retired(head: *mut RcuHead) {
    // SAFETY: `retire` queued the head at the start of a retired node (its `link` scratch is
    // the node's first field, see vmtree's `RetiredNode`), and a grace period has passed.
    unsafe { RetiredNode::free(NonNull::new_unchecked(head.cast::<RetiredNode>())) };
}

// SAFETY: each retired node is queued once with `call_rcu`, whose callback frees it after a
// grace period of the RCU that `RcuReadGuard` belongs to; only the `link` scratch is written.
unsafe impl Reclaim for RcuReclaim {
    unsafe fn retire(&self, node: NonNull<RetiredNode>) {
        let head = node.as_ptr().cast::<RcuHead>();
        // SAFETY: the node is unreachable from the tree's root and retired once (the caller's
        // contract), so its scratch words are ours until the callback frees it.
        unsafe { call_rcu(head, free_retired) };
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

    use vmtree::RangeTree;

    use super::RcuReclaim;
    use crate::arch::percpu::{self, CpuSet};
    use crate::arch::smp::run_in_idle;
    use crate::ktest;
    use crate::sync::rcu::{quiescent_state, rcu_barrier, read_lock};

    const STABLE: u64 = 64;
    const SPAN: u64 = 0x10_0000;
    const VOLATILE_BASE: u64 = STABLE * SPAN + 0x1000_0000;

    ktest! {
        timeout_ms = 120_000;
        /// Readers on every other CPU look up addresses that are always mapped while this CPU
        /// splits and merges their entries (each in one publish) and inserts and removes other
        /// entries: a reader must always find the right entry, and every replaced node is freed
        /// after a grace period (the heap returns to its baseline).
        fn readers_always_find_stable_entries_while_a_writer_splits_and_merges() {
            // Callbacks queued by earlier tests free heap memory: let them run first.
            rcu_barrier();
            let heap_before = crate::mm::heap::usage().1;
            let tree: RangeTree<u64> = RangeTree::new();
            for k in 0..STABLE {
                tree.insert(k * SPAN..(k + 1) * SPAN, k, &RcuReclaim).expect("insert");
            }
            let stop = AtomicBool::new(false);
            let misses = AtomicU64::new(0);
            let lookups = AtomicU64::new(0);
            let readers_started = AtomicUsize::new(0);
            let readers = percpu::online_count() - 1;
            let rounds = 300 * ktest::stress_factor();
            let me = percpu::cpu_index();
            run_in_idle(CpuSet::all_online(), &|| {
                if percpu::cpu_index() == me {
                    while readers_started.load(Ordering::Acquire) < readers {
                        core::hint::spin_loop();
                    }
                    for round in 0..rounds {
                        let k = round % STABLE;
                        let (start, end) = (k * SPAN, (k + 1) * SPAN);
                        let middle = start + (round % 15 + 1) * (SPAN / 16);
                        tree.replace(start..end, &[(start..middle, k), (middle..end, k)], &RcuReclaim, |_, _| {})
                            .expect("split");
                        let volatile = VOLATILE_BASE + round * 0x1000;
                        tree.insert(volatile..volatile + 0x1000, u64::MAX, &RcuReclaim).expect("insert");
                        tree.replace(start..end, &[(start..end, k)], &RcuReclaim, |_, _| {}).expect("merge");
                        if round >= 8 {
                            let old = VOLATILE_BASE + (round - 8) * 0x1000;
                            tree.remove(old..old + 0x1000, &RcuReclaim).expect("remove");
                        }
                        quiescent_state();
                    }
                    stop.store(true, Ordering::Release);
                } else {
                    readers_started.fetch_add(1, Ordering::AcqRel);
                    let mut address = percpu::cpu_index() as u64 * 4099;
                    while !stop.load(Ordering::Acquire) {
                        {
                            let guard = read_lock();
                            for _ in 0..16 {
                                address = address
                                    .wrapping_mul(6364136223846793005)
                                    .wrapping_add(1442695040888963407)
                                    % (STABLE * SPAN);
                                match tree.lookup(address, &guard) {
                                    Some((range, value)) if range.contains(&address) && value == address / SPAN => {}
                                    _ => {
                                        misses.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                            lookups.fetch_add(16, Ordering::Relaxed);
                        }
                        quiescent_state();
                    }
                }
            });
            assert_eq!(misses.load(Ordering::Relaxed), 0, "readers missed always-mapped addresses");
            if readers > 0 {
                assert!(lookups.load(Ordering::Relaxed) > 0, "the readers never looked");
            }
            {
                let guard = read_lock();
                assert_eq!(tree.iter(&guard).filter(|(_, v)| *v != u64::MAX).count(), STABLE as usize);
            }
            drop(tree);
            rcu_barrier();
            assert_eq!(crate::mm::heap::usage().1, heap_before, "tree nodes leaked");
        }
    }
}
