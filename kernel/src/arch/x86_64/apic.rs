//! The bootstrap CPU's local APIC (x2APIC through MSRs when the CPU has it, else xAPIC through
//! its MMIO page in the physical map) and its periodic timer, plus the masked legacy 8259 PIC.
//!
//! The timer is calibrated against the TSC and ticks at [`TIMER_HZ`]; its interrupt counts ticks
//! and drives the in-kernel test watchdog. (SMP, IPIs and per-CPU timers build on this.)

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::trap::TrapFrame;

pub const TIMER_HZ: u64 = 1000;
/// The PIC's vectors after remapping: masked, but a spurious IRQ 7/15 may still arrive.
const PIC_VECTOR_BASE: u8 = 0x20;
pub const TIMER_VECTOR: u8 = 0x30;
pub const ERROR_VECTOR: u8 = 0xfe;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

// Register offsets in the xAPIC page; the x2APIC MSR is 0x800 + offset / 16.
const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xb0;
const REG_SPURIOUS: u32 = 0xf0;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const DIVIDE_BY_16: u32 = 0b0011;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC register page (unused in x2APIC mode).
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is enabled, so MSRs 0x800.. are the APIC's registers.
        unsafe { Msr::new(0x800 + reg / 16).read() as u32 }
    } else {
        let base = XAPIC_BASE.load(Ordering::Relaxed);
        // SAFETY: `init` mapped the xAPIC page at `base`; registers are 32-bit aligned.
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

/// Enables the local APIC and starts its periodic timer. `phys_offset` locates the xAPIC page.
pub fn init(phys_offset: u64) {
    disable_pic();
    let has_x2apic = core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0;
    let mut base_msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting EN (and EXTD where the CPU
    // supports x2APIC) is the architectural way to enable the APIC.
    let base = unsafe {
        let mut value = base_msr.read();
        value |= APIC_BASE_ENABLE;
        if has_x2apic {
            value |= APIC_BASE_X2APIC;
        }
        base_msr.write(value);
        value
    };
    X2APIC.store(base & APIC_BASE_X2APIC != 0, Ordering::Relaxed);
    XAPIC_BASE.store(
        phys_offset + (base & 0x000f_ffff_ffff_f000),
        Ordering::Relaxed,
    );

    write(REG_SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_LVT_ERROR, u32::from(ERROR_VECTOR));
    let id = if has_x2apic {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    };

    // Calibrate: count down from the maximum for 10 ms of TSC time.
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INITIAL, u32::MAX);
    crate::time::delay_us(10_000);
    let per_10ms = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    let initial = (per_10ms * 100 / TIMER_HZ).max(1) as u32;
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, initial);
    log::info!(
        "apic: local APIC {id} in {} mode, timer {TIMER_HZ} Hz ({} bus ticks/16 per tick)",
        if X2APIC.load(Ordering::Relaxed) {
            "x2APIC"
        } else {
            "xAPIC"
        },
        initial
    );
}

pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Timer ticks since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

pub fn timer_interrupt(frame: &mut TrapFrame) {
    TICKS.fetch_add(1, Ordering::Relaxed);
    end_of_interrupt();
    crate::ktest::watchdog(frame);
}
