//! Monotonic time since boot, from the TSC, and wall time from the CMOS real-time clock.
//!
//! `init` measures the TSC frequency once and reads the RTC once; afterwards [`now_ns`]
//! converts the counter, and wall time is boot's wall time plus that. Before `init` (the first
//! log lines) time reads as zero.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::tsc;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Wall-clock time (ns since the Unix epoch) at `now_ns() == 0`.
static REALTIME_OFFSET_NS: AtomicU64 = AtomicU64::new(0);

pub fn init() {
    BOOT_TSC.store(tsc::read(), Ordering::Relaxed);
    let (hz, source) = tsc::frequency();
    TSC_HZ.store(hz, Ordering::Relaxed);
    log::info!(
        "time: TSC at {}.{:03} MHz ({source:?})",
        hz / 1_000_000,
        hz / 1000 % 1000
    );
    let wall = read_rtc_seconds();
    REALTIME_OFFSET_NS.store(
        wall.saturating_mul(1_000_000_000).saturating_sub(now_ns()),
        Ordering::Relaxed,
    );
    log::info!("time: real-time clock reads {wall} s since the epoch");
}

/// The TSC's frequency in Hz (`/proc/cpuinfo`'s `cpu MHz`).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns.
pub fn realtime_offset_ns() -> u64 {
    REALTIME_OFFSET_NS.load(Ordering::Relaxed)
}

/// Reads a CMOS register.
fn cmos(register: u8) -> u8 {
    use x86_64::instructions::port::Port;
    let mut index: Port<u8> = Port::new(0x70);
    let mut data: Port<u8> = Port::new(0x71);
    // SAFETY: ports 0x70/0x71 are the CMOS index and data registers on every PC; the kernel
    // touches them only here, once, at boot (bit 7 of the index keeps NMIs enabled as is).
    unsafe {
        index.write(register);
        data.read()
    }
}

/// The RTC's date and time as seconds since the Unix epoch (the RTC keeps UTC under QEMU).
fn read_rtc_seconds() -> u64 {
    // Wait out an update in progress, then read until two reads agree.
    let read = || {
        while cmos(0x0a) & 0x80 != 0 {
            core::hint::spin_loop();
        }
        [
            cmos(0x00),
            cmos(0x02),
            cmos(0x04),
            cmos(0x07),
            cmos(0x08),
            cmos(0x09),
            cmos(0x32),
        ]
    };
    let mut values = read();
    loop {
        let again = read();
        if again == values {
            break;
        }
        values = again;
    }
    let status_b = cmos(0x0b);
    let binary = status_b & 0x04 != 0;
    let decode = |v: u8| {
        if binary {
            u64::from(v)
        } else {
            u64::from((v >> 4) * 10 + (v & 0x0f))
        }
    };
    let [second, minute, hour_raw, day, month, year, century] = values;
    let pm = hour_raw & 0x80 != 0;
    let mut hour = decode(hour_raw & 0x7f);
    if status_b & 0x02 == 0 {
        // 12-hour clock.
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match decode(century) {
        19..=21 => decode(century),
        _ => 20,
    };
    let year = century * 100 + decode(year);
    days_since_epoch(year, decode(month), decode(day)) * 86_400
        + hour * 3600
        + decode(minute) * 60
        + decode(second)
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let (year, month) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * month + 2) / 5 + day.max(1) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).saturating_sub(719_468)
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

/// Spins for at least `ns` nanoseconds.
#[cfg(feature = "ktest")]
pub fn delay_ns(ns: u64) {
    let deadline = now_ns() + ns;
    while now_ns() < deadline {
        core::hint::spin_loop();
    }
}

/// Spins for at least `us` microseconds.
pub fn delay_us(us: u64) {
    let deadline = now_ns() + us * 1000;
    while now_ns() < deadline {
        core::hint::spin_loop();
    }
}
