//! Monotonic time since boot, from the TSC.
//!
//! `init` measures the TSC frequency once; afterwards [`now_ns`] converts the counter. Before
//! `init` (the first log lines) time reads as zero.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::tsc;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);

pub fn init() {
    BOOT_TSC.store(tsc::read(), Ordering::Relaxed);
    let (hz, source) = tsc::frequency();
    TSC_HZ.store(hz, Ordering::Relaxed);
    log::info!(
        "time: TSC at {}.{:03} MHz ({source:?})",
        hz / 1_000_000,
        hz / 1000 % 1000
    );
}

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return 0;
    }
    let ticks = tsc::read().saturating_sub(BOOT_TSC.load(Ordering::Relaxed));
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64
}

/// Spins for at least `us` microseconds.
pub fn delay_us(us: u64) {
    let deadline = now_ns() + us * 1000;
    while now_ns() < deadline {
        core::hint::spin_loop();
    }
}
