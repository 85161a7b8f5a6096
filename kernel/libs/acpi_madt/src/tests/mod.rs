//! Host tests over synthetic firmware tables.
//!
//! [`Image`] is a fake physical memory: one run of bytes at a base address, nothing readable
//! outside it. The builders below emit the tables byte by byte, with correct lengths and
//! checksums, so that each test can then break exactly one thing.

mod cpus;
mod entries;
mod fuzz;
mod walk;

use crate::{AcpiError, Cpu, Madt, PhysMemory};

/// Where [`Layout`]s place their tables: below 1 MiB, like a BIOS.
pub(crate) const BASE: u64 = 0xe_0000;
/// QEMU's (and nearly everyone's) local APIC address.
pub(crate) const LAPIC: u32 = 0xfee0_0000;

/// Physical memory holding `bytes` at `base`; reads anywhere else fail.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) base: u64,
    pub(crate) bytes: Vec<u8>,
}

impl PhysMemory for Image {
    fn read(&self, phys: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(phys.checked_sub(self.base)?).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }
}

impl Image {
    /// Memory at `base` with a few zero bytes first, so that no table sits at `base` itself.
    pub(crate) fn new(base: u64) -> Self {
        Self {
            base,
            bytes: vec![0; 16],
        }
    }

    /// Appends `table` at the next 16-byte boundary and returns its address.
    pub(crate) fn place(&mut self, table: &[u8]) -> u64 {
        self.place_misaligned(table, 0)
    }

    /// Appends `table` `misalign` bytes past the next 16-byte boundary and returns its address.
    pub(crate) fn place_misaligned(&mut self, table: &[u8], misalign: usize) -> u64 {
        let start = self.bytes.len().next_multiple_of(16) + misalign;
        self.bytes.resize(start, 0);
        self.bytes.extend_from_slice(table);
        self.base + start as u64
    }

    /// The byte at physical address `phys`, for corrupting a table in place.
    pub(crate) fn byte_mut(&mut self, phys: u64) -> &mut u8 {
        let index = usize::try_from(phys - self.base).unwrap();
        &mut self.bytes[index]
    }
}

/// `Madt::cpus` into `out`: `(written, total)` and the reasons given for the entries skipped.
pub(crate) fn cpus_with_skips(
    madt: &Madt<'_>,
    out: &mut [Cpu],
) -> ((usize, usize), Vec<AcpiError>) {
    let mut skipped = Vec::new();
    let counts = madt.cpus(out, |reason| skipped.push(reason));
    (counts, skipped)
}

/// Sets `bytes[at]` so that all of `bytes` sum to 0 mod 256.
pub(crate) fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    let sum = bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b));
    bytes[at] = sum.wrapping_neg();
}

/// A table: the 36-byte header for `signature` and `revision`, then `body`.
pub(crate) fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(36 + body.len()).unwrap();
    let mut table = Vec::new();
    table.extend_from_slice(signature);
    table.extend_from_slice(&length.to_le_bytes());
    table.extend_from_slice(&[revision, 0]); // the checksum is fixed below
    table.extend_from_slice(b"HOBBY ");
    table.extend_from_slice(b"TESTTBL ");
    table.extend_from_slice(&1u32.to_le_bytes());
    table.extend_from_slice(b"RUST");
    table.extend_from_slice(&1u32.to_le_bytes());
    table.extend_from_slice(body);
    fix_checksum(&mut table, 9);
    table
}

/// Sets a table's `Length` field to `length`, keeping its checksum right.
pub(crate) fn with_length(mut table: Vec<u8>, length: u32) -> Vec<u8> {
    table[4..8].copy_from_slice(&length.to_le_bytes());
    fix_checksum(&mut table, 9);
    table
}

/// An RSDT listing `tables`.
pub(crate) fn rsdt(tables: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = tables
        .iter()
        .flat_map(|&t| u32::try_from(t).unwrap().to_le_bytes())
        .collect();
    sdt(b"RSDT", 1, &body)
}

/// An XSDT listing `tables`.
pub(crate) fn xsdt(tables: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = tables.iter().flat_map(|t| t.to_le_bytes()).collect();
    sdt(b"XSDT", 1, &body)
}

/// An MADT of `revision` with the given fixed fields and `entries`.
pub(crate) fn madt(
    revision: u8,
    local_apic_address: u32,
    flags: u32,
    entries: &[Vec<u8>],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&local_apic_address.to_le_bytes());
    body.extend_from_slice(&flags.to_le_bytes());
    body.extend(entries.iter().flatten());
    sdt(b"APIC", revision, &body)
}

/// An RSDP of `revision`: the 20-byte ACPI 1.0 structure below 2, else the 36-byte one with
/// `Length` 36 and both checksums.
pub(crate) fn rsdp(revision: u8, rsdt: u64, xsdt: u64) -> Vec<u8> {
    let mut rsdp = Vec::new();
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0); // checksum
    rsdp.extend_from_slice(b"HOBBY ");
    rsdp.push(revision);
    rsdp.extend_from_slice(&u32::try_from(rsdt).unwrap().to_le_bytes());
    if revision >= 2 {
        rsdp.extend_from_slice(&36u32.to_le_bytes());
        rsdp.extend_from_slice(&xsdt.to_le_bytes());
        rsdp.extend_from_slice(&[0; 4]); // extended checksum, reserved
        fix_checksum(&mut rsdp[..20], 8);
        fix_checksum(&mut rsdp, 32);
    } else {
        fix_checksum(&mut rsdp, 8);
    }
    rsdp
}

/// Builders for the MADT's interrupt controller structures.
pub(crate) mod entry {
    /// A structure of type `kind` with `payload` after its 2-byte header.
    pub(crate) fn raw(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut entry = vec![kind, u8::try_from(2 + payload.len()).unwrap()];
        entry.extend_from_slice(payload);
        entry
    }

    pub(crate) fn local_apic(processor_uid: u8, apic_id: u8, flags: u32) -> Vec<u8> {
        let mut p = vec![processor_uid, apic_id];
        p.extend_from_slice(&flags.to_le_bytes());
        raw(0, &p)
    }

    pub(crate) fn io_apic(id: u8, address: u32, gsi_base: u32) -> Vec<u8> {
        let mut p = vec![id, 0];
        p.extend_from_slice(&address.to_le_bytes());
        p.extend_from_slice(&gsi_base.to_le_bytes());
        raw(1, &p)
    }

    pub(crate) fn source_override(bus: u8, source: u8, gsi: u32, flags: u16) -> Vec<u8> {
        let mut p = vec![bus, source];
        p.extend_from_slice(&gsi.to_le_bytes());
        p.extend_from_slice(&flags.to_le_bytes());
        raw(2, &p)
    }

    pub(crate) fn nmi_source(flags: u16, gsi: u32) -> Vec<u8> {
        let mut p = flags.to_le_bytes().to_vec();
        p.extend_from_slice(&gsi.to_le_bytes());
        raw(3, &p)
    }

    pub(crate) fn local_apic_nmi(processor_uid: u8, flags: u16, lint: u8) -> Vec<u8> {
        let mut p = vec![processor_uid];
        p.extend_from_slice(&flags.to_le_bytes());
        p.push(lint);
        raw(4, &p)
    }

    pub(crate) fn address_override(address: u64) -> Vec<u8> {
        let mut p = vec![0, 0];
        p.extend_from_slice(&address.to_le_bytes());
        raw(5, &p)
    }

    pub(crate) fn local_x2apic(x2apic_id: u32, flags: u32, processor_uid: u32) -> Vec<u8> {
        let mut p = vec![0, 0];
        p.extend_from_slice(&x2apic_id.to_le_bytes());
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&processor_uid.to_le_bytes());
        raw(9, &p)
    }

    pub(crate) fn local_x2apic_nmi(processor_uid: u32, flags: u16, lint: u8) -> Vec<u8> {
        let mut p = flags.to_le_bytes().to_vec();
        p.extend_from_slice(&processor_uid.to_le_bytes());
        p.extend_from_slice(&[lint, 0, 0, 0]);
        raw(10, &p)
    }
}

/// The MADT that QEMU's `pc` machine builds for 4 CPUs (the ISA overrides trimmed to two).
pub(crate) fn qemu_madt() -> Vec<u8> {
    let mut entries: Vec<Vec<u8>> = (0..4).map(|i| entry::local_apic(i, i, 1)).collect();
    entries.push(entry::io_apic(0, 0xfec0_0000, 0));
    entries.push(entry::source_override(0, 0, 2, 0)); // the PIT's IRQ 0 is GSI 2
    entries.push(entry::source_override(0, 9, 9, 0xd)); // ACPI SCI: level, active high
    entries.push(entry::local_apic_nmi(0xff, 0, 1));
    madt(1, LAPIC, crate::Madt::PCAT_COMPAT, &entries)
}

/// A set of tables in one [`Image`], with the addresses of its parts.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) image: Image,
    pub(crate) rsdp: u64,
    pub(crate) rsdt: u64,
    /// Zero when the RSDP has no XSDT.
    pub(crate) xsdt: u64,
    pub(crate) madt: u64,
}

/// `madt` between two other tables, listed by an RSDT, itself named by an RSDP of `revision`
/// (below 2: no XSDT).
pub(crate) fn layout_rsdt(revision: u8, madt: &[u8]) -> Layout {
    let mut image = Image::new(BASE);
    let facp = image.place(&sdt(b"FACP", 6, &[0; 8]));
    let madt = image.place(madt);
    let hpet = image.place(&sdt(b"HPET", 1, &[0; 20]));
    let rsdt = image.place(&rsdt(&[facp, madt, hpet]));
    let rsdp = image.place(&rsdp(revision, rsdt, 0));
    Layout {
        image,
        rsdp,
        rsdt,
        xsdt: 0,
        madt,
    }
}

/// Like [`layout_rsdt`] with an ACPI 2.0 RSDP that also names an XSDT listing the same tables.
/// The XSDT sits at an odd address, so that its 64-bit entries are misaligned.
pub(crate) fn layout_xsdt(madt: &[u8]) -> Layout {
    let mut image = Image::new(BASE);
    let facp = image.place(&sdt(b"FACP", 6, &[0; 8]));
    let madt = image.place(madt);
    let hpet = image.place(&sdt(b"HPET", 1, &[0; 20]));
    let rsdt = image.place(&rsdt(&[facp, madt, hpet]));
    let xsdt = image.place_misaligned(&xsdt(&[facp, madt, hpet]), 3);
    let rsdp = image.place(&rsdp(2, rsdt, xsdt));
    Layout {
        image,
        rsdp,
        rsdt,
        xsdt,
        madt,
    }
}
