//! Which processors `Madt::cpus` reports, and how it fills the caller's buffer.

use super::*;
use crate::{AcpiError, Cpu, Madt, find_madt};

const ENABLED: u32 = 1;
const ONLINE_CAPABLE: u32 = 2;

/// `Madt::cpus` into a buffer of `room` CPUs, for an MADT of `revision` built from `entries`;
/// also the reasons given for skipped entries.
fn cpus_and_skips(
    revision: u8,
    entries: &[Vec<u8>],
    room: usize,
) -> (Vec<Cpu>, usize, Vec<AcpiError>) {
    let layout = layout_rsdt(0, &madt(revision, LAPIC, 0, entries));
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    let mut out = vec![Cpu::default(); room];
    let ((written, total), skipped) = cpus_with_skips(&madt, &mut out);
    out.truncate(written);
    (out, total, skipped)
}

/// [`cpus_and_skips`] without the reasons.
fn cpus_of(revision: u8, entries: &[Vec<u8>], room: usize) -> (Vec<Cpu>, usize) {
    let (cpus, total, _) = cpus_and_skips(revision, entries, room);
    (cpus, total)
}

/// The offset in the MADT of entry `index` of `entries`.
fn offset_of(entries: &[Vec<u8>], index: usize) -> usize {
    Madt::HEADER_LEN + entries[..index].iter().map(Vec::len).sum::<usize>()
}

fn xapic(apic_id: u32, acpi_uid: u32, enabled: bool) -> Cpu {
    Cpu {
        apic_id,
        acpi_uid,
        enabled,
        x2apic_entry: false,
    }
}

fn x2apic(apic_id: u32, acpi_uid: u32, enabled: bool) -> Cpu {
    Cpu {
        apic_id,
        acpi_uid,
        enabled,
        x2apic_entry: true,
    }
}

#[test]
fn qemu_like_cpus() {
    let layout = layout_rsdt(0, &qemu_madt());
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    let mut out = [Cpu::default(); 8];
    assert_eq!(cpus_with_skips(&madt, &mut out), ((4, 4), vec![]));
    assert_eq!(out[..4], [0, 1, 2, 3].map(|i| xapic(i, i, true)));
}

#[test]
fn x2apic_entries() {
    let entries = [
        entry::local_apic(0, 0, ENABLED),
        entry::local_x2apic(256, ENABLED, 1),
        entry::local_x2apic(0x1_0000, ENABLED, 2),
    ];
    assert_eq!(
        cpus_of(1, &entries, 8),
        (
            vec![
                xapic(0, 0, true),
                x2apic(256, 1, true),
                x2apic(0x1_0000, 2, true)
            ],
            3
        )
    );
}

#[test]
fn one_cpu_per_apic_id_first_entry_wins() {
    let entries = [
        entry::local_apic(0, 0, ENABLED),
        entry::local_apic(1, 1, ENABLED),
        entry::local_x2apic(1, ENABLED, 1), // x2APIC entry for an 8-bit ID: allowed, duplicate
        entry::local_x2apic(2, ENABLED, 2),
        entry::local_apic(2, 2, ENABLED), // the same CPU again, the other way round
        entry::local_apic(9, 0, ENABLED), // same ID, different UID: still one CPU
    ];
    assert_eq!(
        cpus_of(1, &entries, 8),
        (
            vec![xapic(0, 0, true), xapic(1, 1, true), x2apic(2, 2, true)],
            3
        )
    );
}

#[test]
fn disabled_entries_are_excluded() {
    let entries = [
        entry::local_apic(0, 0, ENABLED),
        entry::local_apic(1, 1, 0),
        entry::local_x2apic(300, 0, 2),
        // A disabled entry does not hide a usable one for the same ID.
        entry::local_x2apic(1, ENABLED, 1),
    ];
    assert_eq!(
        cpus_of(5, &entries, 8),
        (vec![xapic(0, 0, true), x2apic(1, 1, true)], 2)
    );
}

#[test]
fn online_capable_cpus_from_acpi_6_3() {
    let entries = [
        entry::local_apic(0, 0, ENABLED),
        entry::local_apic(1, 1, ONLINE_CAPABLE),
        entry::local_x2apic(256, ONLINE_CAPABLE, 2),
        // Both bits, which the specification forbids: enabled wins.
        entry::local_apic(3, 3, ENABLED | ONLINE_CAPABLE),
    ];
    assert_eq!(
        cpus_of(5, &entries, 8),
        (
            vec![
                xapic(0, 0, true),
                xapic(1, 1, false),
                x2apic(256, 2, false),
                xapic(3, 3, true)
            ],
            4
        )
    );
    // Before MADT revision 5 the bit was reserved, and is ignored.
    assert_eq!(
        cpus_of(4, &entries, 8),
        (vec![xapic(0, 0, true), xapic(3, 3, true)], 2)
    );
}

#[test]
fn broadcast_ids_are_skipped() {
    let entries = [
        entry::local_apic(0, 0xff, ENABLED),
        entry::local_x2apic(u32::MAX, ENABLED, 1),
        entry::local_x2apic(0xff, ENABLED, 2), // valid in x2APIC mode
    ];
    assert_eq!(cpus_of(1, &entries, 8), (vec![x2apic(0xff, 2, true)], 1));
}

#[test]
fn buffer_too_small() {
    let layout = layout_rsdt(0, &qemu_madt());
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    let sentinel = xapic(0xdead, 0xbeef, false);
    let mut out = [sentinel; 3];
    assert_eq!(cpus_with_skips(&madt, &mut out[..2]), ((2, 4), vec![]));
    assert_eq!(out, [xapic(0, 0, true), xapic(1, 1, true), sentinel]);
    assert_eq!(cpus_with_skips(&madt, &mut []), ((0, 4), vec![]));
}

#[test]
fn duplicates_are_found_once_the_buffer_is_full() {
    let entries = [
        entry::local_apic(0, 0, ENABLED),
        entry::local_apic(1, 1, ENABLED),
        entry::local_apic(2, 2, ENABLED),
        entry::local_x2apic(2, ENABLED, 2),
        entry::local_x2apic(0, ENABLED, 0),
        entry::local_x2apic(700, ENABLED, 3),
        entry::local_x2apic(700, ENABLED, 3),
    ];
    for room in 0..6 {
        let (cpus, total) = cpus_of(1, &entries, room);
        assert_eq!(total, 4, "room for {room}");
        assert_eq!(cpus.len(), room.min(4));
    }
}

#[test]
fn each_skipped_entry_is_reported_once_with_its_offset() {
    let entries = [
        entry::local_apic(0, 0, ENABLED),
        entry::local_apic(1, 1, 0),                // disabled
        entry::local_apic(2, 0xff, ENABLED),       // broadcast ID
        entry::local_x2apic(0, ENABLED, 9),        // APIC ID 0 again
        entry::raw(9, &[0; 6]),                    // an x2APIC entry 8 bytes short
        entry::raw(0x80, &[1, 2]),                 // OEM type
        entry::local_x2apic(u32::MAX, ENABLED, 3), // broadcast ID
        entry::local_x2apic(300, ENABLED, 4),
    ];
    let at = |index| offset_of(&entries, index);
    for room in [0, 1, 2, 8] {
        let (cpus, total, skipped) = cpus_and_skips(1, &entries, room);
        assert_eq!(total, 2);
        assert_eq!(
            cpus,
            [xapic(0, 0, true), x2apic(300, 4, true)][..room.min(2)]
        );
        assert_eq!(
            skipped,
            [
                AcpiError::DisabledCpu {
                    offset: at(1),
                    apic_id: 1,
                    flags: 0
                },
                AcpiError::BroadcastApicId {
                    offset: at(2),
                    apic_id: 0xff
                },
                AcpiError::DuplicateApicId {
                    offset: at(3),
                    apic_id: 0
                },
                AcpiError::BadEntryLength {
                    offset: at(4),
                    kind: 9,
                    length: 8,
                    needed: 16
                },
                AcpiError::UnknownEntryType {
                    offset: at(5),
                    kind: 0x80,
                    length: 4
                },
                AcpiError::BroadcastApicId {
                    offset: at(6),
                    apic_id: u32::MAX
                },
            ],
            "room for {room}"
        );
    }
}

#[test]
fn cpus_before_an_unframed_entry_are_kept() {
    for unframed in [vec![0x80, 0, 0, 0], vec![0, 1, 0, 0], vec![0, 255, 0, 0]] {
        let entries = [
            entry::local_apic(0, 0, ENABLED),
            entry::local_apic(1, 1, ENABLED),
            unframed.clone(),
            entry::local_apic(2, 2, ENABLED),
        ];
        let (cpus, total, skipped) = cpus_and_skips(1, &entries, 8);
        assert_eq!(
            (cpus, total),
            (vec![xapic(0, 0, true), xapic(1, 1, true)], 2)
        );
        let offset = offset_of(&entries, 2);
        let expected = match unframed[1] {
            length @ (0 | 1) => AcpiError::BadEntryLength {
                offset,
                kind: unframed[0],
                length,
                needed: 2,
            },
            length => AcpiError::TruncatedEntry {
                offset,
                needed: usize::from(length),
                available: 4 + 8,
            },
        };
        assert_eq!(skipped, [expected]);
        assert!(
            expected
                .to_string()
                .ends_with("; the rest of the table is ignored")
        );
    }
}
