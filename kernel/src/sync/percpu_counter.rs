//! A counter split into one slot per CPU, each on a cache line of its own: adding touches only
//! the adding CPU's slot, so counters bumped on hot paths (the page fault's resident pages and
//! minor faults) share no cache line between CPUs. Reading sums the slots, so a read taken
//! while others add is a moment's approximation, exact once the adders are quiet.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::percpu;

#[repr(align(64))]
struct Slot(AtomicU64);

/// See the module documentation.
pub struct PerCpuCounter {
    slots: Box<[Slot]>,
}

impl PerCpuCounter {
    /// A counter at 0 with a slot for each CPU started so far (CPUs that start later, if
    /// any, share slots).
    pub fn new() -> Self {
        let cpus = percpu::registered_cpus().count().max(1);
        Self {
            slots: (0..cpus).map(|_| Slot(AtomicU64::new(0))).collect(),
        }
    }

    /// Adds `delta` (which may be negative) on this CPU's slot.
    pub fn add(&self, delta: i64) {
        // Two's complement: adding `delta as u64` with wrap-around subtracts when negative.
        let delta = delta as u64;
        let cpu = percpu::cpu_index();
        match self.slots.get(cpu) {
            // The slot is this CPU's alone: no locked instruction needed.
            Some(slot) => percpu::add_local(&slot.0, delta),
            // A CPU that started after the counter was made shares a slot: lock it.
            None => {
                self.slots[cpu % self.slots.len()]
                    .0
                    .fetch_add(delta, Ordering::Relaxed);
            }
        }
    }

    /// The sum over every CPU's slot.
    pub fn sum(&self) -> i64 {
        self.slots
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed))) as i64
    }
}

impl Default for PerCpuCounter {
    fn default() -> Self {
        Self::new()
    }
}
