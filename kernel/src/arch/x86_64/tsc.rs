//! The time-stamp counter: its frequency, from CPUID on real hardware or measured against the
//! PIT's channel 2 (which needs no interrupts) when CPUID has no answer or a hypervisor runs us,
//! since emulators' CPUID frequency leaves need not match the counter they emulate.

use core::arch::x86_64::{__cpuid, _rdtsc};

use x86_64::instructions::port::Port;

/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;
/// One calibration window: 10 ms of PIT ticks.
const PIT_WINDOW_TICKS: u16 = 11_932;

pub fn read() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    unsafe { _rdtsc() }
}

/// Where the frequency came from, for the boot log.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    CpuidCrystal,
    CpuidBase,
    Pit,
}

/// The TSC frequency in Hz.
pub fn frequency() -> (u64, Source) {
    if !running_under_hypervisor() {
        if let Some(hz) = cpuid_crystal_hz() {
            return (hz, Source::CpuidCrystal);
        }
        if let Some(hz) = cpuid_base_hz() {
            return (hz, Source::CpuidBase);
        }
    }
    // The shortest of three windows: a longer one means we were held up (an SMI, a busy host).
    let hz = (0..3).map(|_| measure_against_pit()).min().unwrap_or(0);
    (hz, Source::Pit)
}

fn max_leaf() -> u32 {
    __cpuid(0).eax
}

fn running_under_hypervisor() -> bool {
    __cpuid(1).ecx & (1 << 31) != 0
}

/// Leaf 0x15: TSC = crystal * EBX / EAX, when the CPU names its crystal frequency.
fn cpuid_crystal_hz() -> Option<u64> {
    if max_leaf() < 0x15 {
        return None;
    }
    let leaf = __cpuid(0x15);
    (leaf.eax != 0 && leaf.ebx != 0 && leaf.ecx != 0)
        .then(|| u64::from(leaf.ecx) * u64::from(leaf.ebx) / u64::from(leaf.eax))
}

/// Leaf 0x16: the processor base frequency in MHz, which the TSC runs at on such CPUs.
fn cpuid_base_hz() -> Option<u64> {
    if max_leaf() < 0x16 {
        return None;
    }
    let mhz = __cpuid(0x16).eax & 0xffff;
    (mhz != 0).then(|| u64::from(mhz) * 1_000_000)
}

/// Counts TSC ticks while PIT channel 2 counts down one window in mode 0.
fn measure_against_pit() -> u64 {
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT and the keyboard controller's port B on every PC;
    // only calibration at boot touches them, with the speaker output kept off.
    unsafe {
        let b = gate.read();
        gate.write((b & !0x02) | 0x01); // gate channel 2 on, speaker off
        command.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        channel2.write(PIT_WINDOW_TICKS as u8);
        channel2.write((PIT_WINDOW_TICKS >> 8) as u8);
        let start = read();
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let end = read();
        (end - start) * PIT_HZ / u64::from(PIT_WINDOW_TICKS)
    }
}
