//! Bounds-checked little-endian reads from byte slices.
//!
//! ACPI tables are little-endian and their fields are not necessarily aligned (the XSDT's 64-bit
//! addresses start at offset 36), so fields are assembled from bytes rather than read through
//! typed references. Every read returns `None` instead of panicking when the field does not lie
//! entirely inside the slice.

/// `N` bytes at `offset`.
fn array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// The byte at `offset`.
pub(crate) fn u8_at(bytes: &[u8], offset: usize) -> Option<u8> {
    bytes.get(offset).copied()
}

/// The little-endian `u16` at `offset`.
pub(crate) fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    array(bytes, offset).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `offset`.
pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    array(bytes, offset).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `offset`.
pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    array(bytes, offset).map(u64::from_le_bytes)
}

/// The 4-byte table signature at `offset`.
pub(crate) fn signature_at(bytes: &[u8], offset: usize) -> Option<[u8; 4]> {
    array(bytes, offset)
}

/// Whether `bytes` sum to 0 mod 256, the ACPI checksum rule.
pub(crate) fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) == 0
}

/// A 32-bit ACPI length as a `usize`, saturating where `usize` is narrower (the read of that many
/// bytes then fails as unreadable rather than silently covering fewer bytes).
pub(crate) fn len_usize(length: u32) -> usize {
    usize::try_from(length).unwrap_or(usize::MAX)
}
