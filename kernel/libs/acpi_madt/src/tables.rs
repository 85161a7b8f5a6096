//! From the RSDP through the RSDT or XSDT to the MADT (ACPI 6.5 §5.2.5 to §5.2.8).

use crate::le::{checksum_ok, len_usize, signature_at, u8_at, u32_at, u64_at};
use crate::{AcpiError, Madt, PhysMemory};

/// Size of the "System Description Table Header" (§5.2.6) that starts every table.
pub(crate) const SDT_HEADER_LEN: usize = 36;
/// Offset of `Length` in the table header.
const SDT_LENGTH: usize = 4;

/// The ACPI 1.0 part of the RSDP, covered by its first checksum.
const RSDP_V1_LEN: usize = 20;
/// Size of the RSDP of ACPI 2.0 and later, its reserved tail included.
const RSDP_V2_LEN: u32 = 36;
const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
const RSDP_REVISION: usize = 15;
const RSDP_RSDT_ADDRESS: usize = 16;
const RSDP_LENGTH: usize = 20;
const RSDP_XSDT_ADDRESS: usize = 24;

const MADT_SIGNATURE: [u8; 4] = *b"APIC";

/// The table that lists all the others.
#[derive(Clone, Copy)]
enum Root {
    /// "Root System Description Table" (§5.2.7): 32-bit table addresses.
    Rsdt,
    /// "Extended System Description Table" (§5.2.8): 64-bit table addresses.
    Xsdt,
}

impl Root {
    fn signature(self) -> [u8; 4] {
        match self {
            Self::Rsdt => *b"RSDT",
            Self::Xsdt => *b"XSDT",
        }
    }

    /// Size of one table address.
    fn pointer_len(self) -> usize {
        match self {
            Self::Rsdt => 4,
            Self::Xsdt => 8,
        }
    }

    /// The table address that starts `bytes`.
    fn pointer(self, bytes: &[u8]) -> Option<u64> {
        match self {
            Self::Rsdt => u32_at(bytes, 0).map(u64::from),
            Self::Xsdt => u64_at(bytes, 0),
        }
    }
}

/// Finds the MADT from the physical address of the RSDP and reads its fixed fields.
///
/// Follows the XSDT when the RSDP has revision 2 or later and a non-zero XSDT address, the RSDT
/// otherwise. The RSDP, the root table and the MADT must pass their signature, length and
/// checksum checks; the MADT's entries are decoded lazily, by [`Madt::entries`] and
/// [`Madt::cpus`]. The returned [`Madt`] borrows the table from `mem`.
///
/// # Errors
///
/// The first defect met on the way: an RSDP, RSDT or XSDT that cannot be read or fails its
/// checks, a root table that lists no MADT, or an MADT that cannot be read or fails its checks.
/// Listed tables that cannot be read are skipped rather than reported, since only the MADT is
/// wanted.
pub fn find_madt<M: PhysMemory>(mem: &M, rsdp_phys: u64) -> Result<Madt<'_>, AcpiError> {
    let (address, root_address, root_signature, tables) =
        find_listed(mem, rsdp_phys, MADT_SIGNATURE)?;
    let Some(address) = address else {
        return Err(AcpiError::NoMadt {
            root_address,
            root_signature,
            tables,
        });
    };
    let table = read_table(mem, address, MADT_SIGNATURE, Madt::HEADER_LEN)?;
    Madt::from_table(table).ok_or(AcpiError::Unreadable {
        address,
        len: Madt::HEADER_LEN,
    })
}

/// The whole table with `signature` (such as `*b"FACP"`, the FADT) that the RSDT or XSDT lists,
/// checked for its signature, length and checksum as [`find_madt`] checks the MADT; `Ok(None)`
/// when none is listed.
///
/// # Errors
///
/// As [`find_madt`]'s, but for a missing table.
pub fn find_table<M: PhysMemory>(
    mem: &M,
    rsdp_phys: u64,
    signature: [u8; 4],
) -> Result<Option<&[u8]>, AcpiError> {
    match find_listed(mem, rsdp_phys, signature)?.0 {
        Some(address) => read_table(mem, address, signature, SDT_HEADER_LEN).map(Some),
        None => Ok(None),
    }
}

/// The address of the first table with `signature` that the root table lists (if any), with
/// the root table's address and signature and how many tables it lists.
fn find_listed<M: PhysMemory>(
    mem: &M,
    rsdp_phys: u64,
    signature: [u8; 4],
) -> Result<(Option<u64>, u64, [u8; 4], usize), AcpiError> {
    let (root_address, root) = root_table(mem, rsdp_phys)?;
    let root_signature = root.signature();
    let root_bytes = read_table(mem, root_address, root_signature, SDT_HEADER_LEN)?;
    // The addresses fill the table after its header; a partial one at the end is ignored.
    let pointers = root_bytes
        .get(SDT_HEADER_LEN..)
        .unwrap_or_default()
        .chunks_exact(root.pointer_len());
    let tables = pointers.len();
    let found = pointers
        .filter_map(|pointer| root.pointer(pointer))
        .find(|&address| {
            // Only the signature matters here; a table that cannot be read is not the one.
            mem.read(address, SDT_HEADER_LEN)
                .and_then(|header| signature_at(header, 0))
                == Some(signature)
        });
    Ok((found, root_address, root_signature, tables))
}

/// Checks the RSDP at `address` and returns the address and kind of the root table it
/// designates.
fn root_table<M: PhysMemory>(mem: &M, address: u64) -> Result<(u64, Root), AcpiError> {
    let v1 = read(mem, address, RSDP_V1_LEN)?;
    if v1.get(..RSDP_SIGNATURE.len()) != Some(RSDP_SIGNATURE) {
        return Err(AcpiError::BadRsdpSignature { address });
    }
    if !checksum_ok(v1) {
        return Err(AcpiError::BadRsdpChecksum { address });
    }
    // `read` returned all the bytes asked for, so the fields below are present; a missing one
    // would be memory that could not be read.
    let unreadable = AcpiError::Unreadable {
        address,
        len: RSDP_V1_LEN,
    };
    let rsdt = u32_at(v1, RSDP_RSDT_ADDRESS).ok_or(unreadable)?;
    if u8_at(v1, RSDP_REVISION).ok_or(unreadable)? < 2 {
        return Ok((u64::from(rsdt), Root::Rsdt));
    }

    let v2 = read(mem, address, len_usize(RSDP_V2_LEN))?;
    let unreadable = AcpiError::Unreadable {
        address,
        len: v2.len(),
    };
    let length = u32_at(v2, RSDP_LENGTH).ok_or(unreadable)?;
    if length < RSDP_V2_LEN {
        return Err(AcpiError::BadRsdpLength { address, length });
    }
    if !checksum_ok(read(mem, address, len_usize(length))?) {
        return Err(AcpiError::BadRsdpExtendedChecksum { address, length });
    }
    match u64_at(v2, RSDP_XSDT_ADDRESS).ok_or(unreadable)? {
        0 => Ok((u64::from(rsdt), Root::Rsdt)),
        xsdt => Ok((xsdt, Root::Xsdt)),
    }
}

/// Reads the whole table at `address` after checking its signature, that its `Length` covers
/// at least `min_len` bytes, and its checksum.
fn read_table<M: PhysMemory>(
    mem: &M,
    address: u64,
    signature: [u8; 4],
    min_len: usize,
) -> Result<&[u8], AcpiError> {
    let header = read(mem, address, SDT_HEADER_LEN)?;
    let unreadable = AcpiError::Unreadable {
        address,
        len: SDT_HEADER_LEN,
    };
    let found = signature_at(header, 0).ok_or(unreadable)?;
    if found != signature {
        return Err(AcpiError::BadSignature {
            address,
            expected: signature,
            found,
        });
    }
    let length = u32_at(header, SDT_LENGTH).ok_or(unreadable)?;
    if len_usize(length) < min_len {
        let minimum = u32::try_from(min_len).unwrap_or(u32::MAX);
        return Err(AcpiError::BadLength {
            address,
            signature,
            length,
            minimum,
        });
    }
    let table = read(mem, address, len_usize(length))?;
    if !checksum_ok(table) {
        return Err(AcpiError::BadChecksum {
            address,
            signature,
            length,
        });
    }
    Ok(table)
}

/// `len` bytes at `address`, insisting that the [`PhysMemory`] returned exactly that many.
fn read<M: PhysMemory>(mem: &M, address: u64, len: usize) -> Result<&[u8], AcpiError> {
    mem.read(address, len)
        .filter(|bytes| bytes.len() == len)
        .ok_or(AcpiError::Unreadable { address, len })
}
