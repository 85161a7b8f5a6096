//! Decoding the MADT's interrupt controller structures.

use super::*;
use crate::{AcpiError, Madt, MadtEntry, find_madt};

/// The entries of an MADT of revision 1 built from `entries`, found through an RSDT.
fn decode(entries: &[Vec<u8>]) -> Vec<Result<MadtEntry, AcpiError>> {
    let layout = layout_rsdt(0, &madt(1, LAPIC, 0, entries));
    find_madt(&layout.image, layout.rsdp)
        .unwrap()
        .entries()
        .collect()
}

#[test]
fn qemu_like_table() {
    let layout = layout_rsdt(0, &qemu_madt());
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    assert_eq!(madt.revision, 1);
    assert_ne!(madt.flags & Madt::PCAT_COMPAT, 0);
    let entries: Vec<_> = madt.entries().map(Result::unwrap).collect();
    assert_eq!(
        entries,
        [
            MadtEntry::LocalApic {
                processor_uid: 0,
                apic_id: 0,
                flags: 1
            },
            MadtEntry::LocalApic {
                processor_uid: 1,
                apic_id: 1,
                flags: 1
            },
            MadtEntry::LocalApic {
                processor_uid: 2,
                apic_id: 2,
                flags: 1
            },
            MadtEntry::LocalApic {
                processor_uid: 3,
                apic_id: 3,
                flags: 1
            },
            MadtEntry::IoApic {
                id: 0,
                address: 0xfec0_0000,
                gsi_base: 0
            },
            MadtEntry::InterruptSourceOverride {
                bus: 0,
                source: 0,
                gsi: 2,
                flags: 0
            },
            MadtEntry::InterruptSourceOverride {
                bus: 0,
                source: 9,
                gsi: 9,
                flags: 0xd
            },
            MadtEntry::LocalApicNmi {
                processor_uid: 0xff,
                flags: 0,
                lint: 1
            },
        ]
    );
}

#[test]
fn every_type() {
    let entries = [
        entry::nmi_source(0xf, 0x17),
        entry::local_apic_nmi(2, 0x5, 0),
        entry::address_override(0x1_fee0_0000),
        entry::local_x2apic(0x1_0000, 1, 0x42),
        entry::local_x2apic_nmi(u32::MAX, 0xd, 1),
        entry::raw(0xb, &[0x5a; 80]), // GICC
        entry::raw(0x80, &[]),        // OEM
    ];
    assert_eq!(
        decode(&entries),
        [
            Ok(MadtEntry::NmiSource {
                flags: 0xf,
                gsi: 0x17
            }),
            Ok(MadtEntry::LocalApicNmi {
                processor_uid: 2,
                flags: 0x5,
                lint: 0
            }),
            Ok(MadtEntry::LocalApicAddressOverride {
                address: 0x1_fee0_0000
            }),
            Ok(MadtEntry::LocalX2Apic {
                x2apic_id: 0x1_0000,
                flags: 1,
                processor_uid: 0x42
            }),
            Ok(MadtEntry::LocalX2ApicNmi {
                processor_uid: u32::MAX,
                flags: 0xd,
                lint: 1
            }),
            Err(AcpiError::UnknownEntryType {
                offset: 44 + 8 + 6 + 12 + 16 + 12,
                kind: 0xb,
                length: 82
            }),
            Err(AcpiError::UnknownEntryType {
                offset: 44 + 8 + 6 + 12 + 16 + 12 + 82,
                kind: 0x80,
                length: 2
            }),
        ]
    );
}

#[test]
fn longer_entries_keep_their_known_fields() {
    let mut lapic = entry::local_apic(7, 9, 1);
    lapic.extend_from_slice(&[0xee; 4]);
    lapic[1] = 12;
    let entries = [lapic, entry::io_apic(1, 0xfec0_1000, 24)];
    assert_eq!(
        decode(&entries),
        [
            Ok(MadtEntry::LocalApic {
                processor_uid: 7,
                apic_id: 9,
                flags: 1
            }),
            Ok(MadtEntry::IoApic {
                id: 1,
                address: 0xfec0_1000,
                gsi_base: 24
            }),
        ]
    );
}

#[test]
fn local_apic_address_override() {
    let entries = [
        entry::local_apic(0, 0, 1),
        entry::address_override(0x8_0000_0000),
    ];
    let layout = layout_rsdt(0, &madt(1, LAPIC, 0, &entries));
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    assert_eq!(madt.local_apic_address, 0x8_0000_0000);
}

#[test]
fn override_behind_a_skipped_entry_is_applied() {
    let entries = [
        entry::raw(0, &[0; 4]),
        entry::address_override(0x8_0000_0000),
    ];
    let layout = layout_rsdt(0, &madt(1, LAPIC, 0, &entries));
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    assert_eq!(madt.local_apic_address, 0x8_0000_0000);
    assert_eq!(
        madt.entries().collect::<Vec<_>>(),
        [
            Err(AcpiError::BadEntryLength {
                offset: 44,
                kind: 0,
                length: 6,
                needed: 8
            }),
            Ok(MadtEntry::LocalApicAddressOverride {
                address: 0x8_0000_0000
            })
        ]
    );
}

#[test]
fn override_behind_an_unframed_entry_is_not_applied() {
    let entries = [vec![0, 0], entry::address_override(0x8_0000_0000)];
    let layout = layout_rsdt(0, &madt(1, LAPIC, 0, &entries));
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    assert_eq!(madt.local_apic_address, u64::from(LAPIC));
}

#[test]
fn entry_running_past_the_table() {
    // A local APIC entry cut after 4 of its 8 bytes.
    let entries = [
        entry::local_apic(0, 0, 1),
        entry::local_apic(1, 1, 1)[..4].to_vec(),
    ];
    assert_eq!(
        decode(&entries),
        [
            Ok(MadtEntry::LocalApic {
                processor_uid: 0,
                apic_id: 0,
                flags: 1
            }),
            Err(AcpiError::TruncatedEntry {
                offset: 52,
                needed: 8,
                available: 4
            }),
        ]
    );
}

#[test]
fn stray_byte_after_the_last_entry() {
    let entries = [entry::io_apic(0, 0xfec0_0000, 0), vec![9]];
    assert_eq!(
        decode(&entries),
        [
            Ok(MadtEntry::IoApic {
                id: 0,
                address: 0xfec0_0000,
                gsi_base: 0
            }),
            Err(AcpiError::TruncatedEntry {
                offset: 56,
                needed: 2,
                available: 1
            }),
        ]
    );
}

#[test]
fn lengths_below_the_header_or_the_type() {
    for length in [0, 1] {
        let entries = [vec![0x80, length, 0, 0], entry::local_apic(0, 0, 1)];
        assert_eq!(
            decode(&entries),
            [Err(AcpiError::BadEntryLength {
                offset: 44,
                kind: 0x80,
                length,
                needed: 2
            })],
            "length {length} ends the walk"
        );
    }
    let too_short = [
        (0, 7),
        (1, 11),
        (2, 9),
        (3, 7),
        (4, 5),
        (5, 11),
        (9, 15),
        (10, 11),
    ];
    // Each is skipped alone: the entry after it is decoded.
    for (kind, length) in too_short {
        let payload = vec![0; usize::from(length) - 2];
        assert_eq!(
            decode(&[
                entry::raw(kind, &payload),
                entry::io_apic(2, 0xfec0_0000, 0)
            ]),
            [
                Err(AcpiError::BadEntryLength {
                    offset: 44,
                    kind,
                    length,
                    needed: length + 1
                }),
                Ok(MadtEntry::IoApic {
                    id: 2,
                    address: 0xfec0_0000,
                    gsi_base: 0
                })
            ]
        );
    }
}

#[test]
fn empty_entry_list() {
    assert_eq!(decode(&[]), []);
}

#[test]
fn entries_outlive_the_madt_value() {
    let layout = layout_rsdt(0, &qemu_madt());
    let entries = {
        let madt = find_madt(&layout.image, layout.rsdp).unwrap();
        madt.entries()
    };
    assert_eq!(entries.count(), 8);
}
