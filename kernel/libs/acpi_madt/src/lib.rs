//! Finding the CPUs and interrupt controllers of an x86_64 machine in its ACPI tables.
//!
//! Firmware describes the processors and the APIC interrupt controllers of the machine in the
//! MADT, the Multiple APIC Description Table. The kernel needs it to start the other CPUs (their
//! local APIC IDs), to program the I/O APICs (their addresses and first GSIs) and to route the
//! legacy ISA IRQs (the interrupt source overrides). This crate finds the MADT from the RSDP
//! address the bootloader hands over and decodes it, without allocating and without `unsafe`:
//! physical memory is reached only through the [`PhysMemory`] trait, and every multi-byte field is
//! read little-endian from a bounds-checked byte slice, so malformed or hostile tables yield an
//! [`AcpiError`], never a panic.
//!
//! # The path to the MADT
//!
//! Section numbers refer to the ACPI Specification 6.5, chapter 5.2 "ACPI System Description
//! Tables".
//!
//! 1. **RSDP**, "Root System Description Pointer" (§5.2.5). Its 8-byte signature is
//!    `"RSD PTR "`, and the sum of its first 20 bytes (the ACPI 1.0 structure) must be 0 mod 256.
//!    Revision 0 (ACPI 1.0) ends there and holds only the 32-bit RSDT address. Revision 2 and
//!    later (ACPI 2.0+) add a `Length`, the 64-bit XSDT address and an extended checksum over all
//!    `Length` bytes. Revision 1 was never defined; like other systems, this crate treats it as
//!    revision 0.
//! 2. **RSDT** or **XSDT**, "Root System Description Table" (§5.2.7) and "Extended System
//!    Description Table" (§5.2.8): a system description table header followed by the physical
//!    addresses of the other tables, 32-bit in the RSDT, 64-bit (and only 4-byte aligned) in the
//!    XSDT. The XSDT is used when the RSDP has one (revision ≥ 2 and a non-zero address), the RSDT
//!    otherwise. The number of addresses follows from the table's `Length`.
//! 3. **MADT**, "Multiple APIC Description Table" (§5.2.12), signature `"APIC"`: the header, the
//!    32-bit local APIC address, the MADT flags (bit 0 `PCAT_COMPAT`: the machine also has
//!    dual 8259 PICs, which must be masked before the APICs are used), then a list of
//!    variable-length interrupt controller structures, each starting with a type and a length
//!    byte. See [`MadtEntry`] for the types decoded. A damaged entry is skipped alone as long as
//!    its length still locates the next one; see [`Madt::entries`].
//!
//! Every table starts with the 36-byte "System Description Table Header" (§5.2.6): a 4-byte
//! signature, the table's `Length` (header included) and a checksum byte chosen so that all
//! `Length` bytes sum to 0 mod 256. The RSDT, the XSDT and the MADT are checked for signature,
//! minimal length and checksum. Of the other tables listed, only the signature is read; a listed
//! address that cannot be read is skipped, as it cannot be the MADT.
//!
//! [`find_table`] finds any other listed table the same way and returns its checked bytes (the
//! kernel reads the FADT's `IAPC_BOOT_ARCH` flags from it).
//!
//! # Example
//!
//! ```
//! use acpi_madt::{Cpu, MadtEntry, PhysMemory};
//!
//! /// The kernel would read its direct map here.
//! struct NoMemory;
//! impl PhysMemory for NoMemory {
//!     fn read(&self, _phys: u64, _len: usize) -> Option<&[u8]> {
//!         None
//!     }
//! }
//!
//! fn report<M: PhysMemory>(mem: &M, rsdp: u64) -> Result<(), acpi_madt::AcpiError> {
//!     let madt = acpi_madt::find_madt(mem, rsdp)?;
//!     let mut cpus = [Cpu::default(); 64];
//!     let (stored, total) = madt.cpus(&mut cpus, |skipped| println!("{skipped}"));
//!     if stored < total {
//!         println!("using {stored} of {total} CPUs");
//!     }
//!     for entry in madt.entries().flatten() {
//!         if let MadtEntry::IoApic { id, address, gsi_base } = entry {
//!             println!("I/O APIC {id} at {address:#x}, GSIs from {gsi_base}");
//!         }
//!     }
//!     Ok(())
//! }
//!
//! let err = report(&NoMemory, 0xe0000).unwrap_err();
//! assert_eq!(err.to_string(), "physical memory not readable at 0xe0000 (20 bytes)");
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod le;
mod madt;
mod tables;

pub use error::AcpiError;
pub use madt::{Cpu, Madt, MadtEntry};
pub use tables::{find_madt, find_table};

/// Reads physical memory. The kernel implements it over its direct map; tests over a Vec.
pub trait PhysMemory {
    /// `len` bytes at physical address `phys`, or None if out of range.
    fn read(&self, phys: u64, len: usize) -> Option<&[u8]>;
}

#[cfg(test)]
mod tests;
