//! The MADT and its interrupt controller structures (ACPI 6.5 §5.2.12).

use crate::AcpiError;
use crate::le::{u8_at, u16_at, u32_at, u64_at};
use crate::tables::SDT_HEADER_LEN;

/// Offset of the header's `Revision` byte.
const REVISION: usize = 8;
/// Offset of "Local Interrupt Controller Address", right after the header.
const LOCAL_APIC_ADDRESS: usize = SDT_HEADER_LEN;
/// Offset of the MADT `Flags`.
const FLAGS: usize = SDT_HEADER_LEN + 4;

/// "Local APIC Flags" bit 0: the processor is ready for use.
const ENABLED: u32 = 1 << 0;
/// "Local APIC Flags" bit 1: the processor is not enabled but can be brought online later.
const ONLINE_CAPABLE: u32 = 1 << 1;
/// The MADT revision of ACPI 6.3, which defined `ONLINE_CAPABLE`; it was reserved before.
const ONLINE_CAPABLE_REVISION: u8 = 5;
/// Local APIC ID 0xFF is the broadcast destination of xAPIC mode, so no processor can have it.
const XAPIC_BROADCAST: u8 = 0xff;
/// Likewise for x2APIC mode.
const X2APIC_BROADCAST: u32 = u32::MAX;

/// The Multiple APIC Description Table, its fixed fields decoded and its entries kept as bytes.
///
/// Obtained from [`find_madt`](crate::find_madt), which has checked the table's signature,
/// length and checksum. The entries are decoded on demand by [`entries`](Self::entries) and
/// [`cpus`](Self::cpus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Madt<'a> {
    /// Physical address of the local APIC registers, the same for every processor: the
    /// table's 32-bit "Local Interrupt Controller Address", unless a
    /// [`LocalApicAddressOverride`](MadtEntry::LocalApicAddressOverride) entry gives a 64-bit
    /// one. The first such entry that [`entries`](Self::entries) decodes counts.
    pub local_apic_address: u64,
    /// The MADT flags; see [`PCAT_COMPAT`](Self::PCAT_COMPAT).
    pub flags: u32,
    /// The table's revision (5 from ACPI 6.3 on), on which the meaning of some flags depends.
    pub revision: u8,
    /// The interrupt controller structures that follow the fixed fields.
    entries: &'a [u8],
}

impl<'a> Madt<'a> {
    /// Bit of [`flags`](Self::flags): the machine also has the dual 8259 PICs of the PC/AT,
    /// which must be masked before the APICs deliver interrupts.
    pub const PCAT_COMPAT: u32 = 1 << 0;

    /// Size of the fixed part: the table header, the local APIC address and the flags.
    pub(crate) const HEADER_LEN: usize = SDT_HEADER_LEN + 8;

    /// Decodes the fixed part of a whole MADT whose header has been checked; `None` if `table`
    /// is shorter than that fixed part.
    pub(crate) fn from_table(table: &'a [u8]) -> Option<Self> {
        let mut madt = Madt {
            local_apic_address: u64::from(u32_at(table, LOCAL_APIC_ADDRESS)?),
            flags: u32_at(table, FLAGS)?,
            revision: u8_at(table, REVISION)?,
            entries: table.get(Self::HEADER_LEN..)?,
        };
        let address_override = madt.entries().flatten().find_map(|entry| match entry {
            MadtEntry::LocalApicAddressOverride { address } => Some(address),
            _ => None,
        });
        if let Some(address) = address_override {
            madt.local_apic_address = address;
        }
        Some(madt)
    }

    /// The interrupt controller structures, in table order: each decoded one, or the reason
    /// why it is skipped.
    ///
    /// A structure is skipped alone, and the walk goes on after it, when its `Length` still
    /// locates the next one (at least its own 2-byte header, within the table) but its type is
    /// unknown ([`AcpiError::UnknownEntryType`]) or its length is below what its type needs
    /// ([`AcpiError::BadEntryLength`]). A structure whose `Length` is 0 or 1
    /// ([`AcpiError::BadEntryLength`]) or runs past the end of the table
    /// ([`AcpiError::TruncatedEntry`]) ends the walk: the rest of the table cannot be located,
    /// and is ignored.
    pub fn entries(&self) -> impl Iterator<Item = Result<MadtEntry, AcpiError>> + use<'a> {
        self.entries_at().map(|(_, entry)| entry)
    }

    /// [`entries`](Self::entries), each with its offset in the MADT.
    pub(crate) fn entries_at(&self) -> Entries<'a> {
        Entries {
            rest: self.entries,
            offset: Self::HEADER_LEN,
        }
    }

    /// Writes the usable processors into `out`, in table order, and returns `(written, total)`;
    /// calls `skipped` with the reason for every structure it passes over, in table order.
    ///
    /// A processor is usable if a [`LocalApic`](MadtEntry::LocalApic) or
    /// [`LocalX2Apic`](MadtEntry::LocalX2Apic) entry describes it with the Enabled flag (bit 0)
    /// or the Online Capable flag (bit 1) set. Each APIC ID counts once, whether one entry type
    /// or both name it.
    ///
    /// In detail:
    /// - Online Capable is honoured only from MADT [`revision`](Self::revision) 5 (ACPI 6.3),
    ///   before which the bit was reserved. A processor both Enabled and Online Capable (which
    ///   the specification forbids) counts as enabled. A processor with neither is skipped
    ///   ([`AcpiError::DisabledCpu`]).
    /// - Of several entries naming one APIC ID, the first usable one in table order is kept; the
    ///   others are skipped ([`AcpiError::DuplicateApicId`]).
    /// - x2APIC entries with IDs below 255 are accepted like any other. The broadcast IDs, 0xFF
    ///   in an xAPIC entry and 0xFFFF_FFFF in an x2APIC entry, cannot address a processor and
    ///   are skipped ([`AcpiError::BroadcastApicId`]).
    /// - A malformed structure is skipped, or ends the walk, as [`entries`](Self::entries)
    ///   says; the processors before it, and after it when the walk goes on, are used.
    /// - `out[..written]` receives the first `written` CPUs; `total` counts them all, so
    ///   `written < total` means that `out` was too small. The rest of `out` is left as it was.
    pub fn cpus(&self, out: &mut [Cpu], mut skipped: impl FnMut(AcpiError)) -> (usize, usize) {
        let mut written = 0;
        let mut total = 0;
        for (index, (offset, entry)) in self.entries_at().enumerate() {
            let cpu = match self.usable_cpu(offset, entry) {
                Ok(Some(cpu)) => cpu,
                Ok(None) => continue,
                Err(reason) => {
                    skipped(reason);
                    continue;
                }
            };
            // While `out` has room, it holds every CPU seen so far; once full, earlier CPUs
            // may be missing from it, and the table itself is searched.
            let duplicate = if written < out.len() {
                out.iter()
                    .take(written)
                    .any(|seen| seen.apic_id == cpu.apic_id)
            } else {
                self.entries_at()
                    .take(index)
                    .filter_map(|(offset, earlier)| self.usable_cpu(offset, earlier).ok()?)
                    .any(|earlier| earlier.apic_id == cpu.apic_id)
            };
            if duplicate {
                skipped(AcpiError::DuplicateApicId {
                    offset,
                    apic_id: cpu.apic_id,
                });
                continue;
            }
            if let Some(slot) = out.get_mut(written) {
                *slot = cpu;
                written += 1;
            }
            total += 1;
        }
        (written, total)
    }

    /// The processor that `entry`, found at `offset`, describes: `Ok(None)` if it is no
    /// processor entry, an error if it cannot be used (malformed, broadcast ID, neither enabled
    /// nor online-capable).
    fn usable_cpu(
        &self,
        offset: usize,
        entry: Result<MadtEntry, AcpiError>,
    ) -> Result<Option<Cpu>, AcpiError> {
        let (apic_id, acpi_uid, flags, x2apic_entry, broadcast) = match entry? {
            MadtEntry::LocalApic {
                processor_uid,
                apic_id,
                flags,
            } => (
                u32::from(apic_id),
                u32::from(processor_uid),
                flags,
                false,
                u32::from(XAPIC_BROADCAST),
            ),
            MadtEntry::LocalX2Apic {
                x2apic_id,
                flags,
                processor_uid,
            } => (x2apic_id, processor_uid, flags, true, X2APIC_BROADCAST),
            _ => return Ok(None),
        };
        if apic_id == broadcast {
            return Err(AcpiError::BroadcastApicId { offset, apic_id });
        }
        let enabled = flags & ENABLED != 0;
        let online_capable =
            self.revision >= ONLINE_CAPABLE_REVISION && flags & ONLINE_CAPABLE != 0;
        if !(enabled || online_capable) {
            return Err(AcpiError::DisabledCpu {
                offset,
                apic_id,
                flags,
            });
        }
        Ok(Some(Cpu {
            apic_id,
            acpi_uid,
            enabled,
            x2apic_entry,
        }))
    }
}

/// A processor that the system can use, as [`Madt::cpus`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu {
    /// Its local APIC ID, the destination for IPIs (8-bit in xAPIC mode).
    pub apic_id: u32,
    /// Its ACPI Processor UID, which names it in the ACPI namespace and in the NMI entries.
    pub acpi_uid: u32,
    /// `true` if the firmware enabled it; `false` if it is only Online Capable (it may be
    /// brought online later, e.g. hot-added).
    pub enabled: bool,
    /// Whether it came from a Processor Local x2APIC entry rather than a Processor Local APIC
    /// one.
    pub x2apic_entry: bool,
}

/// One interrupt controller structure of the MADT.
///
/// Each is named after its structure in ACPI 6.5 §5.2.12; the sizes are the ones the
/// specification gives. A longer structure is accepted (later revisions may append fields) and
/// its known fields decoded; a shorter one is an [`AcpiError::BadEntryLength`], and a structure
/// of any other type (I/O SAPIC, GIC, the multiprocessor wakeup mailbox, OEM types...) an
/// [`AcpiError::UnknownEntryType`]. Reserved fields are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadtEntry {
    /// Type 0, "Processor Local APIC Structure" (8 bytes): one processor and its local APIC.
    LocalApic {
        /// The processor's ACPI Processor UID.
        processor_uid: u8,
        /// The processor's local APIC ID.
        apic_id: u8,
        /// Bit 0 Enabled, bit 1 Online Capable (ACPI 6.3+).
        flags: u32,
    },
    /// Type 1, "I/O APIC Structure" (12 bytes).
    IoApic {
        /// The I/O APIC's ID.
        id: u8,
        /// Physical address of its registers.
        address: u32,
        /// The Global System Interrupt of its first input.
        gsi_base: u32,
    },
    /// Type 2, "Interrupt Source Override Structure" (10 bytes): an ISA IRQ that is not
    /// identity-mapped to the GSI of the same number, or whose polarity or trigger mode is
    /// not the ISA default (edge, active high).
    InterruptSourceOverride {
        /// 0 for ISA.
        bus: u8,
        /// The bus-relative IRQ.
        source: u8,
        /// The GSI it is delivered to.
        gsi: u32,
        /// MPS INTI flags: bits 0–1 polarity (0 as the bus, 1 active high, 3 active low),
        /// bits 2–3 trigger mode (0 as the bus, 1 edge, 3 level).
        flags: u16,
    },
    /// Type 3, "Non-Maskable Interrupt (NMI) Source Structure" (8 bytes): a GSI that is to be
    /// programmed as an NMI.
    NmiSource {
        /// MPS INTI flags, as in
        /// [`InterruptSourceOverride`](MadtEntry::InterruptSourceOverride).
        flags: u16,
        /// The GSI that carries the NMI.
        gsi: u32,
    },
    /// Type 4, "Local APIC NMI Structure" (6 bytes): a local APIC LINT input wired to NMI.
    LocalApicNmi {
        /// The ACPI Processor UID it applies to; 0xFF for all processors.
        processor_uid: u8,
        /// MPS INTI flags, as in
        /// [`InterruptSourceOverride`](MadtEntry::InterruptSourceOverride).
        flags: u16,
        /// The LINT input, 0 or 1.
        lint: u8,
    },
    /// Type 5, "Local APIC Address Override Structure" (12 bytes): a 64-bit address for the
    /// local APICs that replaces the MADT's 32-bit one.
    LocalApicAddressOverride {
        /// Physical address of the local APIC registers.
        address: u64,
    },
    /// Type 9, "Processor Local x2APIC Structure" (16 bytes): one processor, for APIC IDs that
    /// do not fit in 8 bits (firmware may list others this way too).
    LocalX2Apic {
        /// The processor's 32-bit x2APIC ID.
        x2apic_id: u32,
        /// Bit 0 Enabled, bit 1 Online Capable (ACPI 6.3+).
        flags: u32,
        /// The processor's ACPI Processor UID.
        processor_uid: u32,
    },
    /// Type 10, "Local x2APIC NMI Structure" (12 bytes).
    LocalX2ApicNmi {
        /// The ACPI Processor UID it applies to; 0xFFFF_FFFF for all processors.
        processor_uid: u32,
        /// MPS INTI flags, as in
        /// [`InterruptSourceOverride`](MadtEntry::InterruptSourceOverride).
        flags: u16,
        /// The LINT input, 0 or 1.
        lint: u8,
    },
}

/// Walks the interrupt controller structures, each with its offset in the MADT; see
/// [`Madt::entries`].
pub(crate) struct Entries<'a> {
    /// The structures not yet visited; emptied when the next one cannot be located.
    rest: &'a [u8],
    /// Offset of `rest` in the MADT.
    offset: usize,
}

impl Iterator for Entries<'_> {
    type Item = (usize, Result<MadtEntry, AcpiError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let entry = match self.split_first() {
            Ok((kind, length, entry)) => decode(offset, kind, length, entry),
            Err(unframed) => {
                self.rest = &[];
                Err(unframed)
            }
        };
        Some((offset, entry))
    }
}

impl<'a> Entries<'a> {
    /// Splits the structure at the start of the non-empty `rest` off by its `Length`, and
    /// returns its type, its length and its bytes. Fails if the structure is not framed: its
    /// header or its `Length` bytes run past the table, or its `Length` (below 2) does not cover
    /// its header, so that the next structure cannot be located.
    fn split_first(&mut self) -> Result<(u8, u8, &'a [u8]), AcpiError> {
        let offset = self.offset;
        let available = self.rest.len();
        let (Some(kind), Some(length)) = (u8_at(self.rest, 0), u8_at(self.rest, 1)) else {
            return Err(AcpiError::TruncatedEntry {
                offset,
                needed: 2,
                available,
            });
        };
        // A length below 2 would not even cover the header, and 0 would never move on.
        if length < 2 {
            return Err(AcpiError::BadEntryLength {
                offset,
                kind,
                length,
                needed: 2,
            });
        }
        let needed = usize::from(length);
        let Some((entry, rest)) = self.rest.split_at_checked(needed) else {
            return Err(AcpiError::TruncatedEntry {
                offset,
                needed,
                available,
            });
        };
        self.rest = rest;
        self.offset += needed;
        Ok((kind, length, entry))
    }
}

/// The size that ACPI 6.5 gives each structure type this parser decodes; `None` for the others.
fn entry_size(kind: u8) -> Option<u8> {
    Some(match kind {
        0 | 3 => 8,
        1 | 5 | 10 => 12,
        2 => 10,
        4 => 6,
        9 => 16,
        _ => return None,
    })
}

/// Decodes the structure of type `kind` found at `offset`, `entry` being all its `length`
/// bytes. An unknown type, or a length below the type's size, is an error that skips this
/// structure only.
fn decode(offset: usize, kind: u8, length: u8, entry: &[u8]) -> Result<MadtEntry, AcpiError> {
    let Some(size) = entry_size(kind) else {
        return Err(AcpiError::UnknownEntryType {
            offset,
            kind,
            length,
        });
    };
    entry
        .get(..usize::from(size))
        .and_then(|fields| decode_fields(kind, fields))
        .ok_or(AcpiError::BadEntryLength {
            offset,
            kind,
            length,
            needed: size,
        })
}

/// Reads the fields of a structure of type `kind` from `e`, its first [`entry_size`] bytes;
/// `None` if `kind` has no size there or a field lies past the end of `e`.
fn decode_fields(kind: u8, e: &[u8]) -> Option<MadtEntry> {
    Some(match kind {
        0 => MadtEntry::LocalApic {
            processor_uid: u8_at(e, 2)?,
            apic_id: u8_at(e, 3)?,
            flags: u32_at(e, 4)?,
        },
        1 => MadtEntry::IoApic {
            id: u8_at(e, 2)?,
            address: u32_at(e, 4)?,
            gsi_base: u32_at(e, 8)?,
        },
        2 => MadtEntry::InterruptSourceOverride {
            bus: u8_at(e, 2)?,
            source: u8_at(e, 3)?,
            gsi: u32_at(e, 4)?,
            flags: u16_at(e, 8)?,
        },
        3 => MadtEntry::NmiSource {
            flags: u16_at(e, 2)?,
            gsi: u32_at(e, 4)?,
        },
        4 => MadtEntry::LocalApicNmi {
            processor_uid: u8_at(e, 2)?,
            flags: u16_at(e, 3)?,
            lint: u8_at(e, 5)?,
        },
        5 => MadtEntry::LocalApicAddressOverride {
            address: u64_at(e, 4)?,
        },
        9 => MadtEntry::LocalX2Apic {
            x2apic_id: u32_at(e, 4)?,
            flags: u32_at(e, 8)?,
            processor_uid: u32_at(e, 12)?,
        },
        10 => MadtEntry::LocalX2ApicNmi {
            flags: u16_at(e, 2)?,
            processor_uid: u32_at(e, 4)?,
            lint: u8_at(e, 8)?,
        },
        _ => return None,
    })
}
