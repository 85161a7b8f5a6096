//! Which processors `Madt::cpus` reports, and how it fills the caller's buffer.

use super::*;
use crate::{AcpiError, Cpu, find_madt};

const ENABLED: u32 = 1;
const ONLINE_CAPABLE: u32 = 2;

/// `Madt::cpus` into a buffer of `room` CPUs, for an MADT of `revision` built from `entries`.
fn cpus_of(revision: u8, entries: &[Vec<u8>], room: usize) -> (Vec<Cpu>, usize) {
    let layout = layout_rsdt(0, &madt(revision, LAPIC, 0, entries));
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    let mut out = vec![Cpu::default(); room];
    let (written, total) = madt.cpus(&mut out).unwrap();
    out.truncate(written);
    (out, total)
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
    assert_eq!(madt.cpus(&mut out), Ok((4, 4)));
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
    assert_eq!(madt.cpus(&mut out[..2]), Ok((2, 4)));
    assert_eq!(out, [xapic(0, 0, true), xapic(1, 1, true), sentinel]);
    assert_eq!(madt.cpus(&mut []), Ok((0, 4)));
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
fn malformed_entry_fails_cpus() {
    let entries = [entry::local_apic(0, 0, ENABLED), entry::raw(9, &[0; 6])];
    let layout = layout_rsdt(0, &madt(1, LAPIC, 0, &entries));
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    assert_eq!(
        madt.cpus(&mut [Cpu::default(); 4]),
        Err(AcpiError::BadEntryLength {
            offset: 52,
            kind: 9,
            length: 8
        })
    );
}
