//! A counter split into one slot per CPU, a [`PerCpu`] of its own: adding touches only the
//! adding CPU's slot, on a cache line of its own, so counters bumped on hot paths (the page
//! fault's resident pages and minor faults) share no cache line between CPUs. Reading sums the
//! slots, so a read taken while others add is a moment's approximation, exact once the adders
//! are quiet.

use alloc::boxed::Box;
use core::num::Wrapping;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::percpu::{self, PerCpu, per_cpu};

/// See the module documentation.
pub struct PerCpuCounter {
    /// Boxed: a cache line for each of `MAX_CPUS` CPUs (4 KiB) is too much to embed in the
    /// address space and process structures that hold counters.
    slots: Box<PerCpu<AtomicU64>>,
}

impl PerCpuCounter {
    /// A counter at 0.
    pub fn new() -> Self {
        Self {
            slots: Box::new(per_cpu![AtomicU64::new(0)]),
        }
    }

    /// Adds `delta` (which may be negative) on this CPU's slot.
    pub fn add(&self, delta: i64) {
        // Two's complement: adding `delta as u64` with wrap-around subtracts when negative.
        // The slot is this CPU's alone: no locked instruction needed.
        percpu::add_local(self.slots.local(), delta as u64);
    }

    /// The sum over every CPU's slot.
    pub fn sum(&self) -> i64 {
        let Wrapping(sum) = self
            .slots
            .sum(|slot| Wrapping(slot.load(Ordering::Relaxed)));
        sum as i64
    }
}

impl Default for PerCpuCounter {
    fn default() -> Self {
        Self::new()
    }
}
