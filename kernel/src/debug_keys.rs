//! Diagnostics on demand: keys on COM1 that dump state at any time (DESIGN.md §2), and the
//! statistics printed at exit with the `stats` option. More join as subsystems land.

use core::sync::atomic::Ordering;

use crate::arch::{percpu, smp};

pub fn handle(key: u8) {
    match key {
        b'h' | b'?' => crate::println!(
            "keys: h help, m memory (frames and heap), r RCU, s slabinfo, t timer ticks per CPU, i IPI round trips"
        ),
        b'm' => crate::mm::log_statistics(),
        b'r' => crate::sync::rcu::log_statistics(),
        b's' => crate::mm::slab::log_statistics(),
        b't' => {
            for cpu in percpu::online_cpus() {
                crate::println!(
                    "cpu{}: {} timer ticks",
                    cpu.index,
                    cpu.ticks.load(Ordering::Relaxed)
                );
            }
        }
        b'i' => {
            let me = percpu::cpu_index();
            for cpu in percpu::online_cpus().filter(|c| c.index != me) {
                crate::println!(
                    "cpu{me} -> cpu{} -> cpu{me}: {} ns",
                    cpu.index,
                    smp::ping(cpu.index)
                );
            }
        }
        b'\r' | b'\n' => {}
        other => crate::println!("unknown key {:?}; h for help", other as char),
    }
}

/// Every subsystem's statistics lines (the `stats` option prints them at exit).
pub fn print_statistics() {
    crate::mm::log_statistics();
    crate::sync::rcu::log_statistics();
    crate::mm::slab::log_statistics();
}
