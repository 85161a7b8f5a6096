//! CPU discovery from the ACPI MADT (parsed by kernel/libs/acpi_madt), read through the
//! physical-memory map. Logs the table: CPUs, APIC IDs, I/O APICs, interrupt overrides, and one
//! line for each entry skipped (damaged, unknown, disabled CPU, duplicate APIC ID). Also
//! tells which I/O APIC input a legacy ISA interrupt arrives at ([`isa_irq_route`]), and
//! whether the FADT says the machine has an 8042 keyboard controller ([`has_8042`]).

use alloc::vec::Vec;
#[cfg(feature = "ktest")]
use core::sync::atomic::{AtomicUsize, Ordering};

use acpi_madt::{AcpiError, Cpu, MadtEntry, PhysMemory};

use super::percpu::MAX_CPUS;
use crate::mm::PhysAddr;

/// How many usable CPUs the MADT lists (0 until `cpus` ran).
#[cfg(feature = "ktest")]
static MADT_CPUS: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "ktest")]
pub fn madt_cpu_count() -> usize {
    MADT_CPUS.load(Ordering::Relaxed)
}

/// Physical memory as the direct map shows it.
struct DirectMap;

impl PhysMemory for DirectMap {
    fn read(&self, phys: u64, len: usize) -> Option<&[u8]> {
        let end = phys.checked_add(len as u64)?;
        if end > crate::mm::direct_map_end() {
            return None;
        }
        // SAFETY: the bootloader maps all physical memory up to `direct_map_end` at the offset,
        // and ACPI tables are never written after boot.
        Some(unsafe {
            core::slice::from_raw_parts(PhysAddr::new(phys).to_virt() as *const u8, len)
        })
    }
}

/// The APIC IDs of every usable CPU (enabled or online-capable), in MADT order.
pub fn cpus(rsdp: u64) -> Result<Vec<u32>, AcpiError> {
    let madt = acpi_madt::find_madt(&DirectMap, rsdp)?;
    let mut cpus = [Cpu::default(); MAX_CPUS];
    let (count, total) = madt.cpus(&mut cpus, |skipped| {
        // A CPU the firmware switched off, or a structure for another architecture or an OEM,
        // is routine; every other reason is damage in the table.
        let level = match skipped {
            AcpiError::DisabledCpu { .. } | AcpiError::UnknownEntryType { .. } => log::Level::Info,
            _ => log::Level::Warn,
        };
        log::log!(level, "acpi: {skipped}");
    });
    #[cfg(feature = "ktest")]
    MADT_CPUS.store(total, Ordering::Relaxed);
    if total > count {
        log::warn!("acpi: the MADT lists {total} CPUs; this kernel runs at most {MAX_CPUS}");
    }
    for cpu in &cpus[..count] {
        log::info!(
            "acpi: CPU APIC ID {} (ACPI UID {}, {}{})",
            cpu.apic_id,
            cpu.acpi_uid,
            if cpu.enabled {
                "enabled"
            } else {
                "online-capable"
            },
            if cpu.x2apic_entry {
                ", x2APIC entry"
            } else {
                ""
            }
        );
    }
    for entry in madt.entries().flatten() {
        match entry {
            MadtEntry::IoApic {
                id,
                address,
                gsi_base,
            } => {
                log::info!("acpi: I/O APIC {id} at {address:#x}, GSI base {gsi_base}")
            }
            MadtEntry::InterruptSourceOverride {
                bus,
                source,
                gsi,
                flags,
            } => {
                log::info!("acpi: override bus {bus} IRQ {source} -> GSI {gsi} (flags {flags:#x})")
            }
            _ => {}
        }
    }
    Ok(cpus[..count].iter().map(|cpu| cpu.apic_id).collect())
}

/// Where a legacy ISA interrupt arrives: an I/O APIC input, with its polarity and trigger mode.
pub struct IsaRoute {
    /// Physical address of the I/O APIC's registers.
    pub ioapic_address: u64,
    /// The input (the GSI less the I/O APIC's first GSI).
    pub input: u32,
    pub active_low: bool,
    pub level_triggered: bool,
}

/// The route of ISA IRQ `irq`: GSI `irq`, edge-triggered and active high (the ISA default),
/// unless an interrupt source override says otherwise; delivered by the I/O APIC with the
/// highest first GSI at or below it. `None` without a MADT or such an I/O APIC.
pub fn isa_irq_route(rsdp: u64, irq: u8) -> Option<IsaRoute> {
    let madt = acpi_madt::find_madt(&DirectMap, rsdp).ok()?;
    let (gsi, flags) = madt
        .entries()
        .flatten()
        .find_map(|entry| match entry {
            MadtEntry::InterruptSourceOverride {
                bus: 0,
                source,
                gsi,
                flags,
            } if source == irq => Some((gsi, flags)),
            _ => None,
        })
        .unwrap_or((u32::from(irq), 0));
    let (address, gsi_base) = madt
        .entries()
        .flatten()
        .filter_map(|entry| match entry {
            MadtEntry::IoApic {
                address, gsi_base, ..
            } if gsi_base <= gsi => Some((address, gsi_base)),
            _ => None,
        })
        .max_by_key(|&(_, gsi_base)| gsi_base)?;
    // MPS INTI flags: polarity in bits 0-1, trigger mode in bits 2-3; 3 is active low / level,
    // 0 the bus's default (ISA: active high, edge).
    Some(IsaRoute {
        ioapic_address: u64::from(address),
        input: gsi - gsi_base,
        active_low: flags & 0b11 == 0b11,
        level_triggered: (flags >> 2) & 0b11 == 0b11,
    })
}

/// The FADT's `IAPC_BOOT_ARCH` field (ACPI 6.5 §5.2.9.3): two bytes at this offset, present in
/// FADTs of revision 2 and later.
const FADT_BOOT_ARCH: usize = 109;
const FADT_BOOT_ARCH_MIN_REVISION: u8 = 2;
/// The revision byte of every table's header.
const SDT_REVISION: usize = 8;
/// `IAPC_BOOT_ARCH`'s "8042" flag: the motherboard has an 8042 or equivalent controller.
const BOOT_ARCH_8042: u16 = 1 << 1;

/// Whether the FADT says the machine has an 8042 keyboard controller: `None` when there is no
/// FADT or it is too old to say.
pub fn has_8042(rsdp: u64) -> Option<bool> {
    let fadt = acpi_madt::find_table(&DirectMap, rsdp, *b"FACP").ok()??;
    if *fadt.get(SDT_REVISION)? < FADT_BOOT_ARCH_MIN_REVISION {
        return None;
    }
    let flags = fadt.get(FADT_BOOT_ARCH..FADT_BOOT_ARCH + 2)?;
    Some(u16::from_le_bytes([flags[0], flags[1]]) & BOOT_ARCH_8042 != 0)
}
