//! The local APIC of every CPU (x2APIC through MSRs when the CPU has it, else xAPIC through its
//! register page mapped uncached), its periodic timer, inter-processor interrupts, and the
//! masked legacy 8259 PIC.
//!
//! The bootstrap CPU chooses the mode and calibrates the timer against the TSC once; every AP
//! enables its APIC in the same mode and reuses the calibration (one bus clock for all CPUs).
//! The timer interrupt counts ticks per CPU and drives the in-kernel test watchdog.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use x86_64::instructions::interrupts;
use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::percpu::{self, CpuSet};
use super::trap::TrapFrame;

/// The PIC's vectors after remapping: masked, but a spurious IRQ 7/15 may still arrive.
const PIC_VECTOR_BASE: u8 = 0x20;
pub const TIMER_VECTOR: u8 = 0x30;
/// Cross-CPU function calls (smp.rs).
pub const CALL_VECTOR: u8 = 0xf0;
/// Wakes a halted CPU and does nothing else.
pub const WAKE_VECTOR: u8 = 0xf1;
/// IPI round-trip tests: a ping asks for a pong.
pub const PING_VECTOR: u8 = 0xf2;
pub const ERROR_VECTOR: u8 = 0xfe;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

// Register offsets in the xAPIC page; the x2APIC MSR is 0x800 + offset / 16.
const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xb0;
const REG_SPURIOUS: u32 = 0xf0;
const REG_ERROR_STATUS: u32 = 0x280;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const DIVIDE_BY_16: u32 = 0b0011;

const ICR_FIXED: u64 = 0b000 << 8;
const ICR_NMI: u64 = 0b100 << 8;
const ICR_INIT: u64 = 0b101 << 8;
const ICR_STARTUP: u64 = 0b110 << 8;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u64 = 1 << 14;
const ICR_ALL_BUT_SELF: u64 = 0b11 << 18;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC register page (unused in x2APIC mode).
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);
/// The timer's initial count for the configured rate, from the bootstrap CPU's calibration.
static TIMER_INITIAL_COUNT: AtomicU32 = AtomicU32::new(0);
/// The timer's rate, set once at boot.
static TIMER_HZ: AtomicU32 = AtomicU32::new(250);

/// Timer interrupts per second on every CPU.
pub fn timer_hz() -> u32 {
    TIMER_HZ.load(Ordering::Relaxed)
}

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is enabled, so MSRs 0x800.. are the APIC's registers.
        unsafe { Msr::new(0x800 + reg / 16).read() as u32 }
    } else {
        let base = XAPIC_BASE.load(Ordering::Relaxed);
        // SAFETY: `init_bootstrap` mapped the xAPIC page at `base` uncached; registers are
        // 32-bit aligned.
        unsafe { core::ptr::read_volatile((base + u64::from(reg)) as *const u32) }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`.
        unsafe { Msr::new(0x800 + reg / 16).write(u64::from(value)) }
    } else {
        let base = XAPIC_BASE.load(Ordering::Relaxed);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((base + u64::from(reg)) as *mut u32, value) }
    }
}

pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// This CPU's APIC ID, read from the hardware.
pub fn id() -> u32 {
    if is_x2apic() {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    }
}

/// Remaps the 8259 PICs away from the exception vectors and masks every line.
fn disable_pic() {
    let mut master_cmd: Port<u8> = Port::new(0x20);
    let mut master_data: Port<u8> = Port::new(0x21);
    let mut slave_cmd: Port<u8> = Port::new(0xa0);
    let mut slave_data: Port<u8> = Port::new(0xa1);
    // SAFETY: the standard ICW1-4 sequence on the PC's PIC ports, at boot with interrupts off.
    unsafe {
        master_cmd.write(0x11);
        slave_cmd.write(0x11);
        master_data.write(PIC_VECTOR_BASE);
        slave_data.write(PIC_VECTOR_BASE + 8);
        master_data.write(4);
        slave_data.write(2);
        master_data.write(1);
        slave_data.write(1);
        master_data.write(0xff);
        slave_data.write(0xff);
    }
}

/// Sets IA32_APIC_BASE's enable bit (and x2APIC mode where `x2apic`); returns the MSR's value.
fn enable_in_msr(x2apic: bool) -> u64 {
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting EN (and EXTD, which the caller
    // checked the CPU supports) is the architectural way to enable the APIC.
    unsafe {
        let mut value = msr.read() | APIC_BASE_ENABLE;
        if x2apic {
            value |= APIC_BASE_X2APIC;
        }
        msr.write(value);
        value
    }
}

/// Spurious vector, error vector, timer: the per-CPU part of enabling the APIC.
fn enable_local_vectors() {
    write(REG_SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_LVT_ERROR, u32::from(ERROR_VECTOR));
    // Writing the error status register clears it (twice, as the SDM advises for xAPIC).
    write(REG_ERROR_STATUS, 0);
    write(REG_ERROR_STATUS, 0);
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
}

fn start_timer() {
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(
        REG_TIMER_INITIAL,
        TIMER_INITIAL_COUNT.load(Ordering::Relaxed),
    );
}

/// The bootstrap CPU: masks the PIC, picks x2APIC when the CPU has it (or firmware already
/// enabled it), maps the xAPIC page otherwise, and calibrates and starts the timer at `hz`.
pub fn init_bootstrap(phys_offset: u64, hz: u32) {
    disable_pic();
    let has_x2apic = core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0;
    let base = enable_in_msr(has_x2apic);
    X2APIC.store(base & APIC_BASE_X2APIC != 0, Ordering::Relaxed);
    if !is_x2apic() {
        let phys = base & 0x000f_ffff_ffff_f000;
        // SAFETY: this is the local APIC's register page, which nothing else maps.
        let virt = unsafe { crate::mm::kernel_tables::map_mmio(crate::mm::PhysAddr::new(phys), 1) }
            .unwrap_or_else(|e| {
                log::warn!("apic: cannot map the xAPIC page uncached ({e}); using the direct map");
                phys_offset + phys
            });
        XAPIC_BASE.store(virt, Ordering::Relaxed);
    }
    enable_local_vectors();

    // Calibrate: count down from the maximum for 10 ms of TSC time.
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INITIAL, u32::MAX);
    crate::time::delay_us(10_000);
    let per_10ms = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    let initial = (per_10ms * 100 / u64::from(hz)).clamp(1, u64::from(u32::MAX)) as u32;
    TIMER_INITIAL_COUNT.store(initial, Ordering::Relaxed);
    TIMER_HZ.store(hz, Ordering::Relaxed);
    start_timer();
    log::info!(
        "apic: {} mode, timer {hz} Hz ({initial} bus ticks/16 per tick)",
        if is_x2apic() { "x2APIC" } else { "xAPIC" }
    );
}

/// An AP: the same mode as the bootstrap CPU, its own vectors and timer.
pub fn init_ap() {
    enable_in_msr(is_x2apic());
    enable_local_vectors();
    start_timer();
}

pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

pub fn timer_interrupt(frame: &mut TrapFrame) {
    percpu::this_cpu().ticks.fetch_add(1, Ordering::Relaxed);
    end_of_interrupt();
    crate::sched::tick();
    // In test images, a test past its deadline is stopped here.
    #[cfg(feature = "ktest")]
    crate::ktest::watchdog(frame);
    #[cfg(not(feature = "ktest"))]
    let _ = frame;
}

/// Writes the interrupt command register: `command` holds the delivery mode, vector and
/// shorthand; `destination` the APIC ID (ignored with a shorthand).
fn send(destination: u32, command: u64) {
    // Two writes in xAPIC mode: an interrupt between them must not send its own IPI.
    interrupts::without_interrupts(|| {
        if is_x2apic() {
            // SAFETY: x2APIC mode: MSR 0x830 is the ICR, one 64-bit write sends.
            unsafe { Msr::new(0x830).write((u64::from(destination) << 32) | command) };
        } else {
            write(REG_ICR_HIGH, destination << 24);
            write(REG_ICR_LOW, command as u32);
            while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
                core::hint::spin_loop();
            }
        }
    });
}

/// A fixed-vector IPI to one CPU.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send(apic_id, ICR_FIXED | ICR_LEVEL_ASSERT | u64::from(vector));
}

/// A fixed-vector IPI to every CPU in `cpus`: one broadcast (all but self) when that is the
/// set, one IPI per CPU otherwise.
pub fn send_ipi_to_set(cpus: CpuSet, vector: u8) {
    let me = percpu::cpu_index();
    if cpus.len() > 1 && cpus == CpuSet::all_online().without(me) {
        send(
            0,
            ICR_ALL_BUT_SELF | ICR_FIXED | ICR_LEVEL_ASSERT | u64::from(vector),
        );
        return;
    }
    for cpu in cpus.iter().filter_map(percpu::cpu) {
        send_ipi(cpu.apic_id.load(Ordering::Relaxed), vector);
    }
}

/// An NMI to every CPU but this one (the panic path's stop signal).
pub fn send_nmi_all_but_self() {
    send(0, ICR_ALL_BUT_SELF | ICR_NMI | ICR_LEVEL_ASSERT);
}

/// INIT, then (by the caller, after the delays the SDM asks for) STARTUP at `page`.
pub fn send_init(apic_id: u32) {
    send(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
}

/// STARTUP IPI: the AP begins in real mode at `page << 12`.
pub fn send_startup(apic_id: u32, page: u8) {
    send(apic_id, ICR_STARTUP | ICR_LEVEL_ASSERT | u64::from(page));
}
