//! What can go wrong on the way to the MADT and inside it.

use core::fmt;

/// A defect found while locating or decoding the MADT, or the reason why one of its entries is
/// not used.
///
/// Table addresses are physical; entry offsets count from the first byte of the MADT (its
/// header included), the way table dumps such as `iasl -d` number them. Of the entry errors,
/// [`TruncatedEntry`](Self::TruncatedEntry) and a [`BadEntryLength`](Self::BadEntryLength)
/// below 2 end the walk of the entries (the rest of the table is ignored); the others skip one
/// entry (see [`Madt::entries`](crate::Madt::entries) and [`Madt::cpus`](crate::Madt::cpus)).
/// Their messages say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// The [`PhysMemory`](crate::PhysMemory) cannot provide `len` bytes at `address`.
    Unreadable {
        /// Physical address of the first byte wanted.
        address: u64,
        /// Number of bytes wanted.
        len: usize,
    },
    /// The RSDP does not start with `"RSD PTR "`.
    BadRsdpSignature {
        /// Physical address of the RSDP.
        address: u64,
    },
    /// The first 20 bytes of the RSDP (the ACPI 1.0 part) do not sum to 0.
    BadRsdpChecksum {
        /// Physical address of the RSDP.
        address: u64,
    },
    /// An RSDP of revision 2 or later gives a `Length` too small for its own fields (36 bytes).
    BadRsdpLength {
        /// Physical address of the RSDP.
        address: u64,
        /// The `Length` field.
        length: u32,
    },
    /// An RSDP of revision 2 or later fails its extended checksum over `length` bytes.
    BadRsdpExtendedChecksum {
        /// Physical address of the RSDP.
        address: u64,
        /// The `Length` field.
        length: u32,
    },
    /// The RSDP points at a table whose signature is not the RSDT's or XSDT's.
    BadSignature {
        /// Physical address of the table.
        address: u64,
        /// `"RSDT"` or `"XSDT"`.
        expected: [u8; 4],
        /// The signature found there.
        found: [u8; 4],
    },
    /// A table's `Length` is smaller than its fixed fields.
    BadLength {
        /// Physical address of the table.
        address: u64,
        /// The table's signature.
        signature: [u8; 4],
        /// The `Length` field.
        length: u32,
        /// The least valid length: 36 (the header), 44 for the MADT.
        minimum: u32,
    },
    /// A table's `length` bytes do not sum to 0.
    BadChecksum {
        /// Physical address of the table.
        address: u64,
        /// The table's signature.
        signature: [u8; 4],
        /// The `Length` field.
        length: u32,
    },
    /// None of the tables listed by the RSDT or XSDT is an MADT.
    NoMadt {
        /// Physical address of the RSDT or XSDT.
        root_address: u64,
        /// `"RSDT"` or `"XSDT"`.
        root_signature: [u8; 4],
        /// How many table addresses it lists.
        tables: usize,
    },
    /// An MADT entry does not fit in what is left of the table: its two header bytes, or the
    /// `Length` its header gives.
    TruncatedEntry {
        /// Offset of the entry in the MADT.
        offset: usize,
        /// Bytes the entry needs: 2 for its header, else its `Length`.
        needed: usize,
        /// Bytes left in the MADT from `offset`.
        available: usize,
    },
    /// An MADT entry's `Length` is below 2 (its own header: the walk ends) or below the size
    /// that the ACPI specification gives its type (the entry is skipped).
    BadEntryLength {
        /// Offset of the entry in the MADT.
        offset: usize,
        /// The entry's type.
        kind: u8,
        /// The entry's `Length`.
        length: u8,
        /// The least valid length: 2 for the header, else the size of the type.
        needed: u8,
    },
    /// An MADT entry of a type that the parser does not decode (or that ACPI does not define).
    UnknownEntryType {
        /// Offset of the entry in the MADT.
        offset: usize,
        /// The entry's type.
        kind: u8,
        /// The entry's `Length`.
        length: u8,
    },
    /// A processor entry whose APIC ID is the broadcast ID of its entry type (0xFF for a
    /// Processor Local APIC, 0xFFFF_FFFF for a Processor Local x2APIC), which no processor has.
    BroadcastApicId {
        /// Offset of the entry in the MADT.
        offset: usize,
        /// The APIC ID.
        apic_id: u32,
    },
    /// A processor entry with neither the Enabled flag nor (from MADT revision 5) the Online
    /// Capable flag: the processor cannot be used.
    DisabledCpu {
        /// Offset of the entry in the MADT.
        offset: usize,
        /// The processor's APIC ID.
        apic_id: u32,
        /// The entry's flags.
        flags: u32,
    },
    /// A usable processor entry for an APIC ID that an earlier usable entry already named.
    DuplicateApicId {
        /// Offset of the entry in the MADT.
        offset: usize,
        /// The APIC ID.
        apic_id: u32,
    },
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unreadable { address, len } => {
                write!(
                    f,
                    "physical memory not readable at {address:#x} ({len} bytes)"
                )
            }
            Self::BadRsdpSignature { address } => {
                write!(f, "no RSDP signature \"RSD PTR \" at {address:#x}")
            }
            Self::BadRsdpChecksum { address } => {
                write!(f, "RSDP at {address:#x} fails its checksum")
            }
            Self::BadRsdpLength { address, length } => {
                write!(f, "RSDP at {address:#x} has length {length}, less than 36")
            }
            Self::BadRsdpExtendedChecksum { address, length } => write!(
                f,
                "RSDP at {address:#x} fails its extended checksum over {length} bytes"
            ),
            Self::BadSignature {
                address,
                expected,
                found,
            } => write!(
                f,
                "expected the {} at {address:#x}, found signature \"{}\"",
                Signature(expected),
                Signature(found)
            ),
            Self::BadLength {
                address,
                signature,
                length,
                minimum,
            } => write!(
                f,
                "{} at {address:#x} has length {length}, less than {minimum}",
                Signature(signature)
            ),
            Self::BadChecksum {
                address,
                signature,
                length,
            } => write!(
                f,
                "{} at {address:#x} fails its checksum over {length} bytes",
                Signature(signature)
            ),
            Self::NoMadt {
                root_address,
                root_signature,
                tables,
            } => write!(
                f,
                "no MADT (\"APIC\") among the {tables} tables listed by the {} at {root_address:#x}",
                Signature(root_signature)
            ),
            Self::TruncatedEntry {
                offset,
                needed,
                available,
            } => write!(
                f,
                "MADT entry at offset {offset:#x} needs {needed} bytes, only {available} left in the table; {REST_IGNORED}"
            ),
            Self::BadEntryLength {
                offset,
                kind,
                length,
                needed,
            } if length < 2 => write!(
                f,
                "MADT entry of type {kind} at offset {offset:#x} has length {length}, less than \
                 its {needed}-byte header; {REST_IGNORED}"
            ),
            Self::BadEntryLength {
                offset,
                kind,
                length,
                needed,
            } => write!(
                f,
                "MADT entry of type {kind} at offset {offset:#x} has length {length}, less than \
                 the {needed} bytes of its type; {SKIPPED}"
            ),
            Self::UnknownEntryType {
                offset,
                kind,
                length,
            } => write!(
                f,
                "MADT entry at offset {offset:#x} has type {kind} (length {length}), not one \
                 decoded here; {SKIPPED}"
            ),
            Self::BroadcastApicId { offset, apic_id } => write!(
                f,
                "MADT entry at offset {offset:#x} names the broadcast APIC ID {apic_id:#x}, \
                 which no CPU has; {SKIPPED}"
            ),
            Self::DisabledCpu {
                offset,
                apic_id,
                flags,
            } => write!(
                f,
                "MADT entry at offset {offset:#x}: the CPU with APIC ID {apic_id} is neither \
                 enabled nor online-capable (flags {flags:#x}); {SKIPPED}"
            ),
            Self::DuplicateApicId { offset, apic_id } => write!(
                f,
                "MADT entry at offset {offset:#x} names APIC ID {apic_id} again, after an \
                 earlier entry; {SKIPPED}"
            ),
        }
    }
}

impl core::error::Error for AcpiError {}

/// How the message of an entry error that ends the walk ends.
const REST_IGNORED: &str = "the rest of the table is ignored";
/// How the message of an entry error that skips one entry ends.
const SKIPPED: &str = "entry skipped";

/// Displays a table signature, escaping bytes that are not printable ASCII.
struct Signature([u8; 4]);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .iter()
            .flat_map(|&b| core::ascii::escape_default(b))
            .try_for_each(|c| fmt::Write::write_char(f, char::from(c)))
    }
}
