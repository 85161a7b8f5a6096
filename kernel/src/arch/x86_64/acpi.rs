//! CPU discovery from the ACPI MADT (parsed by kernel/libs/acpi_madt), read through the
//! physical-memory map. Logs the table: CPUs, APIC IDs, I/O APICs, interrupt overrides.

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
    let (count, total) = madt.cpus(&mut cpus)?;
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
