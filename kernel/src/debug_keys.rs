//! Diagnostics on demand: keys on COM1 that dump state at any time, and the
//! statistics printed at exit with the `stats` option. More join as subsystems land. The
//! terminal's input worker (fs/tty) hands the keys over: every key while no file of the
//! terminal is open, `^]` and the key while one is.

use core::sync::atomic::Ordering;

use crate::arch::{percpu, smp};

pub fn handle(key: u8) {
    match key {
        b'h' | b'?' => crate::println!(
            "keys: h help, m memory (frames and heap), r RCU, s slabinfo, t timer ticks and call IPIs per CPU, i IPI round trips, p processes, a address spaces (every process's maps), f faults and scheduler, v VMA-lock counters"
        ),
        b'p' => {
            for process in crate::proc::live_processes() {
                let (vmas, resident) = process
                    .mm()
                    .map_or((0, 0), |mm| (mm.vma_count(), mm.resident_pages.sum()));
                crate::println!(
                    "pid {} (parent {}) {}: {} threads, {} VMAs, {} resident pages, {} minor faults{}",
                    process.pid,
                    process.parent_pid(),
                    process.path(),
                    process.thread_count(),
                    vmas,
                    resident,
                    process.minor_faults.sum(),
                    if process.exited.is_done() {
                        " (zombie)"
                    } else {
                        ""
                    }
                );
            }
        }
        b'a' => print_maps(),
        b'f' => print_scheduler_and_faults(),
        b'v' => crate::mm::vma_lock::log_statistics(),
        b'm' => crate::mm::log_statistics(),
        b'r' => crate::sync::rcu::log_statistics(),
        b's' => crate::mm::slab::log_statistics(),
        b't' => print_interrupts(),
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

/// Every live process's address space as `/proc/PID/maps` shows it, read without `mmap_lock`
/// (so a process that holds its lock for long does not hold up the console).
fn print_maps() {
    for process in crate::proc::live_processes() {
        let Some(mm) = process.mm() else {
            continue;
        };
        let path = process.path();
        crate::println!("pid {} {path}:", process.pid);
        let mut walk = crate::mm::maps::LocklessMaps::new(&mm, 0);
        let mut line = alloc::string::String::new();
        for entry in &mut walk {
            line.clear();
            crate::mm::maps::write_maps_line(&mut line, &entry, Some(&path));
            crate::print!("{line}");
        }
        let stats = walk.stats();
        crate::println!(
            "({} attempts retried, {} steps pinned their VMA, at most {} attempts for one)",
            stats.retries,
            stats.pinned_steps,
            stats.most_attempts
        );
    }
}

/// Every subsystem's statistics lines (the `stats` option prints them at exit).
pub fn print_statistics() {
    crate::mm::log_statistics();
    crate::sync::rcu::log_statistics();
    crate::mm::slab::log_statistics();
    print_scheduler_and_faults();
    crate::mm::vma_lock::log_statistics();
    print_interrupts();
}

fn print_interrupts() {
    for cpu in percpu::online_cpus() {
        log::info!(
            "cpu{}: {} timer ticks, {} call IPIs (TLB shootdowns and other cross-CPU calls), \
             {} idle passes, {} halts",
            cpu.index,
            cpu.ticks.load(Ordering::Relaxed),
            cpu.call_interrupts.load(Ordering::Relaxed),
            cpu.idle_passes.load(Ordering::Relaxed),
            cpu.idle_halts.load(Ordering::Relaxed)
        );
    }
}

fn print_scheduler_and_faults() {
    let (queued, switches) = crate::sched::statistics();
    log::info!("sched: {switches} context switches, {queued} tasks queued");
    let (faults, zero, copies, oom, errors) = crate::mm::fault::totals();
    log::info!(
        "faults: {faults} served ({zero} mapped the zero page, {copies} copied on write), {oom} out of memory, {errors} refused"
    );
}

/// Whether the `stats` option asked for statistics at exit.
static PRINT_AT_EXIT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn print_statistics_at_exit(enabled: bool) {
    PRINT_AT_EXIT.store(enabled, Ordering::Relaxed);
}

/// Prints the statistics if the `stats` option is set (on the way out).
pub fn print_statistics_if_asked() {
    if PRINT_AT_EXIT.load(Ordering::Relaxed) {
        print_statistics();
    }
}
