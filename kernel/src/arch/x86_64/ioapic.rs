//! The I/O APIC, for the two device interrupts the kernel takes: COM1's receive interrupt (ISA
//! IRQ 4), which goes to [`SERIAL_VECTOR`], and the PS/2 keyboard's (ISA IRQ 1), which goes to
//! [`KEYBOARD_VECTOR`], both on the bootstrap CPU. Every other input stays masked, as firmware
//! leaves them. Each entry is programmed once, at boot, before the interrupt is enabled at the
//! device; nothing touches the registers afterwards.

use super::acpi;
use crate::mm::PhysAddr;

/// COM1's receive interrupt (trap.rs sends it to `console::serial_interrupt`).
pub const SERIAL_VECTOR: u8 = 0x34;
/// COM1's ISA interrupt line.
const COM1_IRQ: u8 = 4;
/// The PS/2 keyboard's interrupt (trap.rs sends it to `console::keyboard::interrupt`).
pub const KEYBOARD_VECTOR: u8 = 0x35;
/// The i8042's keyboard interrupt line.
const KEYBOARD_IRQ: u8 = 1;

/// Register select and data window, at the start of the register page.
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
/// The version register: bits 16-23 hold the highest redirection entry's index.
const REG_VERSION: u32 = 0x01;
/// Redirection entry `n` is the register pair `0x10 + 2n` (low) and `0x11 + 2n` (high).
const REG_REDIRECTION: u32 = 0x10;
const ACTIVE_LOW: u32 = 1 << 13;
const LEVEL_TRIGGERED: u32 = 1 << 15;

fn read(base: u64, register: u32) -> u32 {
    // SAFETY: `base` is the I/O APIC's register page, mapped uncached by `route`; the
    // select register and the window are 32-bit aligned.
    unsafe {
        core::ptr::write_volatile((base + IOREGSEL) as *mut u32, register);
        core::ptr::read_volatile((base + IOWIN) as *const u32)
    }
}

fn write(base: u64, register: u32, value: u32) {
    // SAFETY: as in `read`.
    unsafe {
        core::ptr::write_volatile((base + IOREGSEL) as *mut u32, register);
        core::ptr::write_volatile((base + IOWIN) as *mut u32, value);
    }
}

/// Routes COM1's interrupt to [`SERIAL_VECTOR`] on the bootstrap CPU, as the MADT found from
/// `rsdp` describes its wiring. Err says why it could not.
pub fn route_serial(rsdp: Option<u64>) -> Result<(), &'static str> {
    route(rsdp, COM1_IRQ, SERIAL_VECTOR)
}

/// Routes the keyboard's interrupt to [`KEYBOARD_VECTOR`] on the bootstrap CPU, as
/// [`route_serial`] does COM1's.
pub fn route_keyboard(rsdp: Option<u64>) -> Result<(), &'static str> {
    route(rsdp, KEYBOARD_IRQ, KEYBOARD_VECTOR)
}

/// Routes ISA interrupt `irq` to `vector` on the bootstrap CPU.
fn route(rsdp: Option<u64>, irq: u8, vector: u8) -> Result<(), &'static str> {
    let rsdp = rsdp.ok_or("the bootloader found no RSDP")?;
    let route = acpi::isa_irq_route(rsdp, irq).ok_or("the MADT lists no I/O APIC for it")?;
    let bootstrap = super::percpu::cpu(0).ok_or("no bootstrap CPU")?;
    let destination = bootstrap
        .apic_id
        .load(core::sync::atomic::Ordering::Relaxed);
    if destination > 0xff {
        return Err("the bootstrap CPU's APIC ID does not fit an I/O APIC entry");
    }
    // SAFETY: the MADT names this page as the I/O APIC's registers, which nothing else maps.
    let base =
        unsafe { crate::mm::kernel_tables::map_mmio(PhysAddr::new(route.ioapic_address), 1) }?;
    let entries = (read(base, REG_VERSION) >> 16 & 0xff) + 1;
    if route.input >= entries {
        return Err("its I/O APIC has no such input");
    }
    let mut low = u32::from(vector);
    if route.active_low {
        low |= ACTIVE_LOW;
    }
    if route.level_triggered {
        low |= LEVEL_TRIGGERED;
    }
    let register = REG_REDIRECTION + 2 * route.input;
    // Fixed delivery, physical destination: the high half names the CPU, the low half (written
    // last, with the mask bit clear) enables the entry.
    write(base, register + 1, destination << 24);
    write(base, register, low);
    Ok(())
}
