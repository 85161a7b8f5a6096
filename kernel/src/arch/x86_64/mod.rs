//! x86_64 glue: descriptor tables, traps, per-CPU data, the local APIC and its timer, the I/O
//! APIC (for the serial line's interrupt), starting the other CPUs and working with them, the
//! TSC, what CPUID says of the processor and its topology, and the machinery that lets kernel
//! code survive a fault it expected (exception table; in test images, jump buffers).

pub mod acpi;
pub mod ap_boot;
pub mod apic;
pub mod backtrace;
pub mod context;
pub mod cpu_features;
pub mod cpuid;
pub mod extable;
pub mod fmtbuf;
pub mod gdt;
pub mod ioapic;
#[cfg(feature = "ktest")]
pub mod jump;
pub mod mmu;
pub mod percpu;
pub mod smp;
pub mod symbols;
pub mod syscall;
pub mod trap;
pub mod tsc;
pub mod uaccess;

use core::sync::atomic::Ordering;

use bootloader_api::info::MemoryRegions;
use x86_64::instructions::{hlt, interrupts, port::Port};

/// Per-CPU data, descriptor tables and exception handling: the first thing at boot, so that
/// even the first log line knows its CPU.
pub fn init_bootstrap_cpu() {
    percpu::install_bootstrap();
    percpu::this_cpu().tables.load_bootstrap();
    trap::init();
    cpu_features::init_this_cpu();
    syscall::init_this_cpu();
}

/// Starts the bootstrap CPU's local APIC and timer, makes the boot context a task, and enables
/// interrupts.
pub fn init_interrupts(phys_offset: u64, timer_hz: u32) {
    apic::init_bootstrap(phys_offset, timer_hz);
    let bsp = percpu::this_cpu();
    bsp.apic_id.store(apic::id(), Ordering::Relaxed);
    crate::sched::init_cpu(true);
    bsp.online.store(true, Ordering::Release);
    crate::sync::rcu::cpu_online();
    interrupts::enable();
}

/// Finds the CPUs in the ACPI MADT and starts all but this one; logs `smp: N CPUs online`.
/// In test images, `phantom_apic_id` (the `smp.phantom_apic_id` option) adds a CPU that does
/// not exist, to exercise the path of a CPU that never answers.
pub fn start_other_cpus(
    rsdp: Option<u64>,
    regions: &MemoryRegions,
    #[cfg(feature = "ktest")] phantom_apic_id: Option<u32>,
) {
    let apic_ids = match rsdp.map(acpi::cpus) {
        Some(Ok(ids)) => ids,
        Some(Err(error)) => {
            log::error!("acpi: {error}; running on the bootstrap CPU alone");
            alloc::vec::Vec::new()
        }
        None => {
            log::error!("acpi: the bootloader found no RSDP; running on the bootstrap CPU alone");
            alloc::vec::Vec::new()
        }
    };
    log::info!(
        "cpu 0: online, APIC ID {} ({}), bootstrap CPU",
        apic::id(),
        if apic::is_x2apic() { "x2APIC" } else { "xAPIC" }
    );
    #[cfg(feature = "ktest")]
    let apic_ids = {
        let mut with_phantom = apic_ids;
        if let Some(id) = phantom_apic_id {
            log::warn!(
                "smp: also trying APIC ID {id}, which the MADT does not list (smp.phantom_apic_id)"
            );
            with_phantom.push(id);
        }
        with_phantom
    };
    ap_boot::start_aps(regions, &apic_ids);
    log::info!("smp: {} CPUs online", percpu::online_count());
}

/// How the kernel leaves QEMU: the value written to the isa-debug-exit port (0xf4). QEMU exits
/// with `(value << 1) | 1`, which the host side maps back (see the `qemu` crate).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0x10,
    Failure = 0x11,
}

/// Leaves QEMU with `code`; on a real machine (no debug-exit device) halts for good.
pub fn exit(code: ExitCode) -> ! {
    let mut port: Port<u32> = Port::new(0xf4);
    // SAFETY: under QEMU port 0xf4 is the isa-debug-exit device xtask attaches; on real
    // hardware nothing decodes it and the write is ignored.
    unsafe { port.write(code as u32) };
    halt_forever()
}

/// Runs `f` with interrupts enabled and disables them again afterwards: for a trap handler
/// that entered with them disabled and must do work that may sleep.
pub fn with_interrupts_enabled<R>(f: impl FnOnce() -> R) -> R {
    interrupts::enable();
    let result = f();
    interrupts::disable();
    result
}

/// Disables interrupts on this CPU; whether they were enabled, for [`restore_interrupts`].
#[inline]
pub fn disable_interrupts_saving() -> bool {
    let were_enabled = interrupts::are_enabled();
    interrupts::disable();
    were_enabled
}

/// Enables interrupts again if [`disable_interrupts_saving`] found them enabled.
#[inline]
pub fn restore_interrupts(were_enabled: bool) {
    if were_enabled {
        interrupts::enable();
    }
}

pub fn halt_forever() -> ! {
    interrupts::disable();
    loop {
        hlt();
    }
}

/// Halts until an interrupt in RCU's extended quiescent state, without missing an interrupt
/// that arrives just before: called with interrupts disabled, it enables them with the `hlt`
/// itself (`sti; hlt`), and returns with them disabled again.
fn idle_halt() {
    crate::sync::rcu::idle_enter();
    interrupts::enable_and_hlt();
    interrupts::disable();
    crate::sync::rcu::idle_exit();
}

/// One pass of an idle task's loop (interrupts enabled on entry and exit): run work handed to
/// this CPU, report a quiescent state and run ready RCU callbacks, let `scheduler` run queued
/// tasks (it returns whether more work is waiting), then halt unless work came meanwhile.
pub fn run_idle_pass(cpu: &percpu::CpuBlock, scheduler: impl FnOnce() -> bool) {
    percpu::add_local(&cpu.idle_passes, 1);
    smp::run_idle_work(cpu);
    crate::sync::rcu::quiescent_state();
    let busy = scheduler();
    interrupts::disable();
    // Checked with interrupts disabled: a wake-up IPI that comes after this stays pending and
    // ends the `hlt` at once.
    let work_waiting = busy
        || cpu.idle_work.is_pending()
        || cpu.sched.queued() > 0
        || cpu.sched.need_resched.load(Ordering::Relaxed)
        || crate::sync::waitqueue::interrupt_wakes_pending();
    if !work_waiting {
        percpu::add_local(&cpu.idle_halts, 1);
        idle_halt();
    }
    interrupts::enable();
}
