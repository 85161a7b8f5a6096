//! x86_64 glue: descriptor tables, traps, the local APIC and its timer, the TSC, and the
//! machinery that lets kernel code survive a fault it expected (exception table, jump buffers).

pub mod apic;
pub mod backtrace;
pub mod extable;
pub mod fmtbuf;
pub mod gdt;
pub mod jump;
pub mod symbols;
pub mod trap;
pub mod tsc;

use x86_64::instructions::{hlt, interrupts, port::Port};

use crate::boot_options::BootOptions;

/// Descriptor tables and exception handling; the first thing after the console.
pub fn init_bootstrap_cpu() {
    gdt::init();
    trap::init();
}

/// Starts the local APIC timer and enables interrupts.
pub fn init_interrupts(phys_offset: u64) {
    apic::init(phys_offset);
    interrupts::enable();
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

pub fn halt_forever() -> ! {
    interrupts::disable();
    loop {
        hlt();
    }
}

/// After boot: halt until an interrupt, answer debug keys on COM1, and leave QEMU if asked.
pub fn idle_loop(options: &BootOptions) -> ! {
    if options.exit {
        exit(ExitCode::Success);
    }
    log::info!("idle; keys on the serial console: h for help");
    loop {
        hlt();
        while let Some(key) = crate::console::poll_key() {
            crate::debug_keys::handle(key);
        }
    }
}
