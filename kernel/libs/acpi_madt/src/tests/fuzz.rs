//! Random damage to valid tables never panics, and `Madt::cpus` agrees with a simple model.

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::{AcpiError, Cpu, Madt, MadtEntry, find_madt};

/// Where an MADT built from `entries` has entry `index`.
fn offset_of(entries: &[Vec<u8>], index: usize) -> usize {
    Madt::HEADER_LEN + entries[..index].iter().map(Vec::len).sum::<usize>()
}

/// What `Madt::cpus` should report, computed the obvious way with a `Vec`: the usable CPUs, and
/// the reason for each entry skipped.
fn model_cpus(madt: &Madt<'_>) -> (Vec<Cpu>, Vec<AcpiError>) {
    let mut cpus: Vec<Cpu> = Vec::new();
    let mut skipped = Vec::new();
    for (offset, entry) in madt.entries_at() {
        let (apic_id, acpi_uid, flags, x2apic_entry, broadcast) = match entry {
            Err(reason) => {
                skipped.push(reason);
                continue;
            }
            Ok(MadtEntry::LocalApic {
                processor_uid,
                apic_id,
                flags,
            }) => (
                u32::from(apic_id),
                u32::from(processor_uid),
                flags,
                false,
                0xff,
            ),
            Ok(MadtEntry::LocalX2Apic {
                x2apic_id,
                flags,
                processor_uid,
            }) => (x2apic_id, processor_uid, flags, true, u32::MAX),
            Ok(_) => continue,
        };
        let enabled = flags & 1 != 0;
        if apic_id == broadcast {
            skipped.push(AcpiError::BroadcastApicId { offset, apic_id });
        } else if !(enabled || (madt.revision >= 5 && flags & 2 != 0)) {
            skipped.push(AcpiError::DisabledCpu {
                offset,
                apic_id,
                flags,
            });
        } else if cpus.iter().any(|cpu| cpu.apic_id == apic_id) {
            skipped.push(AcpiError::DuplicateApicId { offset, apic_id });
        } else {
            cpus.push(Cpu {
                apic_id,
                acpi_uid,
                enabled,
                x2apic_entry,
            });
        }
    }
    (cpus, skipped)
}

/// Checks everything a kernel would call on `madt` against the model.
fn check_madt(madt: &Madt<'_>, table_len: usize) {
    // Each step consumes at least 2 bytes or ends the walk.
    assert!(madt.entries().count() <= table_len / 2);
    let (model, model_skipped) = model_cpus(madt);
    let total = model.len();
    for room in [0, 1, total.saturating_sub(1), total, total + 1] {
        let mut out = vec![Cpu::default(); room];
        let (counts, skipped) = cpus_with_skips(madt, &mut out);
        assert_eq!(counts, (room.min(total), total), "room for {room}");
        assert_eq!(out[..room.min(total)], model[..room.min(total)]);
        assert_eq!(skipped, model_skipped, "room for {room}");
    }
    for reason in &model_skipped {
        assert!(!reason.to_string().is_empty());
    }
}

/// Looks for the MADT in `image` and checks whatever comes out.
fn exercise(image: &Image, rsdp: u64) {
    match find_madt(image, rsdp) {
        Ok(madt) => check_madt(&madt, image.bytes.len()),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

/// An XSDT layout whose MADT holds every decoded entry type.
fn rich_layout() -> Layout {
    let entries = [
        entry::local_apic(0, 0, 1),
        entry::local_apic(1, 1, 2),
        entry::local_x2apic(1, 1, 1),
        entry::local_x2apic(256, 1, 2),
        entry::io_apic(0, 0xfec0_0000, 0),
        entry::source_override(0, 0, 2, 0),
        entry::nmi_source(0xd, 23),
        entry::local_apic_nmi(0xff, 0, 1),
        entry::address_override(0x1_fee0_0000),
        entry::local_x2apic_nmi(u32::MAX, 0, 1),
        entry::raw(0x80, &[1, 2, 3]),
    ];
    layout_xsdt(&madt(5, LAPIC, 1, &entries))
}

/// Recomputes the checksums of the RSDP, the XSDT and the MADT of a [`layout_xsdt`] over their
/// original extents, so that damage inside them gets past the checksums.
fn refix_checksums(layout: &mut Layout, original: &Image) {
    let index = |phys: u64| usize::try_from(phys - BASE).unwrap();
    let rsdp = index(layout.rsdp);
    let bytes = &mut layout.image.bytes;
    fix_checksum(&mut bytes[rsdp..rsdp + 20], 8);
    fix_checksum(&mut bytes[rsdp..rsdp + 36], 32);
    for table in [layout.xsdt, layout.madt] {
        let length = original.read(table + 4, 4).unwrap();
        let length = usize::try_from(u32::from_le_bytes(length.try_into().unwrap())).unwrap();
        let start = index(table);
        fix_checksum(&mut bytes[start..start + length], 9);
    }
}

/// A Processor Local APIC or x2APIC entry with IDs and flags drawn so that duplicates,
/// broadcast IDs and every flag combination come up often, or another entry.
fn any_entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (any::<u8>(), prop_oneof![0u8..6, Just(0xff)], 0u32..4)
            .prop_map(|(uid, id, flags)| entry::local_apic(uid, id, flags)),
        4 => (prop_oneof![0u32..6, 250u32..260, Just(u32::MAX)], 0u32..4, any::<u32>())
            .prop_map(|(id, flags, uid)| entry::local_x2apic(id, flags, uid)),
        1 => any::<u64>().prop_map(entry::address_override),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(kind, payload)| entry::raw(kind, &payload)),
    ]
}

/// An entry that is framed (its length covers its header and stays within the table) but cannot
/// be used: too short for its type, of an unknown type, or a CPU entry with a broadcast ID or
/// with neither the Enabled nor the Online Capable flag.
fn bad_framed_entry() -> impl Strategy<Value = Vec<u8>> {
    let unknown_kind = any::<u8>().prop_filter("not a decoded type", |kind| {
        SIZED_TYPES.iter().all(|&(known, _)| known != *kind)
    });
    prop_oneof![
        (0..SIZED_TYPES.len(), any::<Index>(), any::<u8>()).prop_map(|(which, short, fill)| {
            let (kind, size) = SIZED_TYPES[which];
            let length = 2 + short.index(usize::from(size) - 2);
            entry::raw(kind, &vec![fill; length - 2])
        }),
        (unknown_kind, proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(kind, payload)| entry::raw(kind, &payload)),
        (any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(uid, id, flags)| entry::local_apic(
            uid,
            id,
            flags & !3
        )),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(id, flags, uid)| entry::local_x2apic(id, flags & !3, uid)),
        (any::<u8>(), any::<u32>()).prop_map(|(uid, flags)| entry::local_apic(uid, 0xff, flags)),
        (any::<u32>(), any::<u32>()).prop_map(|(flags, uid)| entry::local_x2apic(
            u32::MAX,
            flags,
            uid
        )),
    ]
}

proptest! {
    #[test]
    fn a_bad_framed_entry_never_hides_a_cpu(
        entries in proptest::collection::vec(any_entry(), 0..16),
        bad in bad_framed_entry(),
        at in any::<Index>(),
        revision in 0u8..7,
    ) {
        let at = at.index(entries.len() + 1);
        let mut with_bad = entries.clone();
        with_bad.insert(at, bad.clone());
        let layouts = [&entries, &with_bad].map(|entries| layout_rsdt(0, &madt(revision, LAPIC, 0, entries)));
        let [clean, damaged] = layouts.each_ref().map(|layout| {
            let madt = find_madt(&layout.image, layout.rsdp).unwrap();
            let mut out = vec![Cpu::default(); 64];
            let ((written, total), skipped) = cpus_with_skips(&madt, &mut out);
            out.truncate(written);
            (out, total, skipped)
        });
        // The same CPUs, in the same order...
        prop_assert_eq!(&clean.0, &damaged.0);
        prop_assert_eq!(clean.1, damaged.1);
        // ...and one more line: the bad entry's, at its offset; the others moved past it.
        let offset = offset_of(&with_bad, at);
        let reported_at: Vec<_> = damaged.2.iter().map(reason_offset).collect();
        let shifted: Vec<_> = clean
            .2
            .iter()
            .map(reason_offset)
            .map(|o| if o >= offset { o + bad.len() } else { o })
            .collect();
        let mut expected = shifted;
        expected.insert(expected.partition_point(|&o| o < offset), offset);
        prop_assert_eq!(reported_at, expected);
    }

    #[test]
    fn corrupted_bytes_never_panic(
        damage in proptest::collection::vec((any::<Index>(), any::<u8>()), 1..8),
        refix in any::<bool>(),
    ) {
        let original = rich_layout();
        let mut layout = original.clone();
        for (at, value) in damage {
            let at = at.index(layout.image.bytes.len());
            layout.image.bytes[at] = value;
        }
        if refix {
            refix_checksums(&mut layout, &original.image);
        }
        exercise(&layout.image, layout.rsdp);
    }

    #[test]
    fn truncated_memory_never_panics(keep in any::<Index>()) {
        let mut layout = rich_layout();
        let keep = keep.index(layout.image.bytes.len() + 1);
        layout.image.bytes.truncate(keep);
        exercise(&layout.image, layout.rsdp);
    }

    #[test]
    fn random_entry_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        revision in 0u8..8,
    ) {
        let layout = layout_rsdt(0, &madt(revision, LAPIC, 0, &[bytes]));
        let madt = find_madt(&layout.image, layout.rsdp).unwrap();
        check_madt(&madt, layout.image.bytes.len());
    }

    #[test]
    fn cpus_match_the_model(
        entries in proptest::collection::vec(any_entry(), 0..24),
        revision in 3u8..7,
    ) {
        let layout = layout_rsdt(0, &madt(revision, LAPIC, 0, &entries));
        let madt = find_madt(&layout.image, layout.rsdp).unwrap();
        check_madt(&madt, layout.image.bytes.len());
    }
}

/// The entries of an MADT (revision 1) holding `entries`.
fn entries_of(entries: &[Vec<u8>]) -> Vec<Result<MadtEntry, AcpiError>> {
    let layout = layout_rsdt(0, &madt(1, LAPIC, 0, entries));
    find_madt(&layout.image, layout.rsdp)
        .unwrap()
        .entries()
        .collect()
}

/// The offset of the entry that `reason` is about.
fn reason_offset(reason: &AcpiError) -> usize {
    match *reason {
        AcpiError::TruncatedEntry { offset, .. }
        | AcpiError::BadEntryLength { offset, .. }
        | AcpiError::UnknownEntryType { offset, .. }
        | AcpiError::BroadcastApicId { offset, .. }
        | AcpiError::DisabledCpu { offset, .. }
        | AcpiError::DuplicateApicId { offset, .. } => offset,
        _ => panic!("{reason} is not about an entry"),
    }
}

/// Each entry type the parser decodes, with the size ACPI 6.5 gives it.
const SIZED_TYPES: [(u8, u8); 8] = [
    (0, 8),
    (1, 12),
    (2, 10),
    (3, 8),
    (4, 6),
    (5, 12),
    (9, 16),
    (10, 12),
];

// A well-formed MADT with one field made hostile: each is refused with the error documented
// for it.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_entry_shorter_than_its_type_is_refused(
        which in 0usize..SIZED_TYPES.len(),
        short in 0u8..16,
    ) {
        let (kind, size) = SIZED_TYPES[which];
        let length = short % size;
        // The bad entry keeps its full size of bytes, so only its Length is wrong; a valid
        // entry before it is decoded. A length of 2 or more still locates the next entry, which
        // is decoded too; below 2, the walk ends.
        let mut bad = entry::raw(kind, &vec![0; usize::from(size) - 2]);
        bad[1] = length;
        let decoded = entries_of(&[entry::local_apic(0, 0, 1), bad, entry::local_apic(1, 1, 1)]);
        prop_assert!(decoded[0].is_ok());
        let needed = if length < 2 { 2 } else { size };
        prop_assert_eq!(
            decoded[1],
            Err(AcpiError::BadEntryLength { offset: 52, kind, length, needed })
        );
        // Where a short length says the next entry starts, in the bad entry's zeroed bytes, a
        // type 0 entry of length 0 ends the walk.
        let framed = length >= 2;
        prop_assert_eq!(decoded.len(), if framed { 3 } else { 2 });
    }

    #[test]
    fn an_entry_longer_than_the_table_is_refused(length in 9u8..=255) {
        let mut long = entry::local_apic(0, 0, 1);
        long[1] = length;
        prop_assert_eq!(
            entries_of(&[long]),
            [Err(AcpiError::TruncatedEntry {
                offset: 44,
                needed: usize::from(length),
                available: 8,
            })]
        );
    }

    #[test]
    fn a_damaged_body_fails_the_checksum(at in any::<Index>(), flip in 1u8..=255) {
        let layout = layout_rsdt(0, &qemu_madt());
        let length = qemu_madt().len();
        let mut bad = layout.clone();
        // Past the header's signature and length, which have errors of their own.
        let at = 8 + at.index(length - 8) as u64;
        *bad.image.byte_mut(layout.madt + at) ^= flip;
        prop_assert_eq!(
            find_madt(&bad.image, bad.rsdp).unwrap_err(),
            AcpiError::BadChecksum {
                address: layout.madt,
                signature: *b"APIC",
                length: length as u32,
            }
        );
    }
}
