//! From the RSDP to the MADT: which root table is used, and each check on the way.

use super::*;
use crate::{AcpiError, Madt, find_madt};

/// The IDs of the CPUs that `madt` reports.
fn cpu_ids(madt: &Madt<'_>) -> Vec<u32> {
    let mut out = [crate::Cpu::default(); 16];
    let (written, _) = madt.cpus(&mut out, |reason| panic!("skipped: {reason}"));
    out[..written].iter().map(|cpu| cpu.apic_id).collect()
}

#[test]
fn acpi1_rsdp_leads_through_the_rsdt() {
    for revision in [0, 1] {
        let layout = layout_rsdt(revision, &qemu_madt());
        let madt = find_madt(&layout.image, layout.rsdp).unwrap();
        assert_eq!(madt.local_apic_address, u64::from(LAPIC));
        assert_eq!(madt.flags, Madt::PCAT_COMPAT);
        assert_eq!(cpu_ids(&madt), [0, 1, 2, 3]);
    }
}

#[test]
fn acpi1_rsdp_needs_only_its_20_bytes() {
    // The RSDP ends the image, so reading 36 bytes there would fail.
    let layout = layout_rsdt(0, &qemu_madt());
    assert_eq!(layout.image.bytes.len() as u64, layout.rsdp - BASE + 20);
    assert!(find_madt(&layout.image, layout.rsdp).is_ok());
}

#[test]
fn xsdt_is_preferred_over_rsdt() {
    let mut image = Image::new(BASE);
    let two = image.place(&madt(
        1,
        LAPIC,
        0,
        &[entry::local_apic(0, 0, 1), entry::local_apic(1, 1, 1)],
    ));
    let four = image.place(&qemu_madt());
    let rsdt = image.place(&rsdt(&[two]));
    let xsdt = image.place_misaligned(&xsdt(&[four]), 1);
    let rsdp = image.place(&rsdp(2, rsdt, xsdt));
    let madt = find_madt(&image, rsdp).unwrap();
    assert_eq!(cpu_ids(&madt), [0, 1, 2, 3]);
}

#[test]
fn zero_xsdt_address_falls_back_to_rsdt() {
    let layout = layout_rsdt(2, &qemu_madt());
    assert_eq!(
        layout.image.read(layout.rsdp, 36).unwrap()[15],
        2,
        "an ACPI 2.0 RSDP"
    );
    let madt = find_madt(&layout.image, layout.rsdp).unwrap();
    assert_eq!(cpu_ids(&madt), [0, 1, 2, 3]);
}

#[test]
fn xsdt_addresses_are_64_bit() {
    // Everything above 4 GiB, out of the RSDT's reach; the RSDP's RSDT address is 0.
    let mut image = Image::new(0x1_2345_6000);
    let madt = image.place(&qemu_madt());
    let xsdt = image.place_misaligned(&xsdt(&[madt]), 5);
    let rsdp = image.place(&rsdp(2, 0, xsdt));
    let found = find_madt(&image, rsdp).unwrap();
    assert_eq!(cpu_ids(&found), [0, 1, 2, 3]);
}

#[test]
fn unreadable_and_foreign_tables_are_skipped() {
    let mut image = Image::new(BASE);
    let facp = image.place(&sdt(b"FACP", 6, &[0; 8]));
    let madt = image.place(&qemu_madt());
    // Address 0 and an address past the image cannot be read; the FACP is not the MADT.
    let rsdt = image.place(&rsdt(&[0, 0xdead_0000, facp, madt]));
    let rsdp = image.place(&rsdp(0, rsdt, 0));
    assert!(find_madt(&image, rsdp).is_ok());
}

#[test]
fn missing_madt() {
    let mut image = Image::new(BASE);
    let facp = image.place(&sdt(b"FACP", 6, &[0; 8]));
    let hpet = image.place(&sdt(b"HPET", 1, &[0; 20]));
    let rsdt = image.place(&rsdt(&[facp, hpet]));
    let rsdp = image.place(&rsdp(0, rsdt, 0));
    assert_eq!(
        find_madt(&image, rsdp),
        Err(AcpiError::NoMadt {
            root_address: rsdt,
            root_signature: *b"RSDT",
            tables: 2
        })
    );
}

#[test]
fn rsdp_signature_checksum_and_length() {
    let layout = layout_xsdt(&qemu_madt());
    let address = layout.rsdp;

    let mut bad = layout.clone();
    *bad.image.byte_mut(address + 3) = b'X';
    assert_eq!(
        find_madt(&bad.image, address),
        Err(AcpiError::BadRsdpSignature { address })
    );

    // An OEM ID byte: covered by both checksums, the first one fails.
    let mut bad = layout.clone();
    *bad.image.byte_mut(address + 9) ^= 1;
    assert_eq!(
        find_madt(&bad.image, address),
        Err(AcpiError::BadRsdpChecksum { address })
    );

    // A reserved byte: covered by the extended checksum only.
    let mut bad = layout.clone();
    *bad.image.byte_mut(address + 33) = 1;
    assert_eq!(
        find_madt(&bad.image, address),
        Err(AcpiError::BadRsdpExtendedChecksum {
            address,
            length: 36
        })
    );

    // `Length` lies outside the first checksum.
    let mut bad = layout.clone();
    *bad.image.byte_mut(address + 20) = 20;
    assert_eq!(
        find_madt(&bad.image, address),
        Err(AcpiError::BadRsdpLength {
            address,
            length: 20
        })
    );

    // A `Length` past the end of memory.
    let mut bad = layout;
    *bad.image.byte_mut(address + 21) = 1;
    assert_eq!(
        find_madt(&bad.image, address),
        Err(AcpiError::Unreadable {
            address,
            len: 36 + 256
        })
    );
}

#[test]
fn unreadable_rsdp() {
    let layout = layout_rsdt(0, &qemu_madt());
    assert_eq!(
        find_madt(&layout.image, 0x1000),
        Err(AcpiError::Unreadable {
            address: 0x1000,
            len: 20
        })
    );
    // Readable for 20 bytes, but a revision 2 RSDP needs 36.
    let mut short = layout_xsdt(&qemu_madt());
    let end = short.rsdp - BASE + 20;
    short.image.bytes.truncate(usize::try_from(end).unwrap());
    assert_eq!(
        find_madt(&short.image, short.rsdp),
        Err(AcpiError::Unreadable {
            address: short.rsdp,
            len: 36
        })
    );
}

#[test]
fn bad_checksum_at_each_level() {
    let layout = layout_xsdt(&qemu_madt());
    for (address, signature) in [(layout.xsdt, *b"XSDT"), (layout.madt, *b"APIC")] {
        let mut bad = layout.clone();
        // An OEM ID byte.
        *bad.image.byte_mut(address + 10) ^= 0x20;
        let length =
            u32::from_le_bytes(bad.image.read(address + 4, 4).unwrap().try_into().unwrap());
        assert_eq!(
            find_madt(&bad.image, layout.rsdp),
            Err(AcpiError::BadChecksum {
                address,
                signature,
                length
            })
        );
    }

    let mut bad = layout_rsdt(0, &qemu_madt());
    *bad.image.byte_mut(bad.rsdt + 10) ^= 0x20;
    assert_eq!(
        find_madt(&bad.image, bad.rsdp),
        Err(AcpiError::BadChecksum {
            address: bad.rsdt,
            signature: *b"RSDT",
            length: 48
        })
    );
}

#[test]
fn root_table_signature_is_checked() {
    let mut image = Image::new(BASE);
    let facp = image.place(&sdt(b"FACP", 6, &[0; 8]));
    let rsdp = image.place(&rsdp(2, 0, facp));
    assert_eq!(
        find_madt(&image, rsdp),
        Err(AcpiError::BadSignature {
            address: facp,
            expected: *b"XSDT",
            found: *b"FACP"
        })
    );
}

#[test]
fn table_lengths_are_checked() {
    // A root table claiming less than its header.
    let mut image = Image::new(BASE);
    let rsdt = image.place(&with_length(rsdt(&[]), 35));
    let rsdp = image.place(&rsdp(0, rsdt, 0));
    assert_eq!(
        find_madt(&image, rsdp),
        Err(AcpiError::BadLength {
            address: rsdt,
            signature: *b"RSDT",
            length: 35,
            minimum: 36
        })
    );

    // An MADT without room for its local APIC address and flags.
    let layout = layout_rsdt(0, &sdt(b"APIC", 1, &[0; 4]));
    assert_eq!(
        find_madt(&layout.image, layout.rsdp),
        Err(AcpiError::BadLength {
            address: layout.madt,
            signature: *b"APIC",
            length: 40,
            minimum: 44
        })
    );

    // An MADT that claims to run past the end of memory (the whole image is shorter).
    let layout = layout_rsdt(0, &with_length(qemu_madt(), 0x1000));
    assert!(layout.image.bytes.len() < 0x1000);
    assert_eq!(
        find_madt(&layout.image, layout.rsdp),
        Err(AcpiError::Unreadable {
            address: layout.madt,
            len: 0x1000
        })
    );
}

#[test]
fn root_table_entries_follow_its_length() {
    // Two trailing bytes, not a whole 32-bit address, are ignored.
    let layout = layout_rsdt(0, &qemu_madt());
    let mut image = layout.image.clone();
    let mut table = rsdt(&[layout.madt]);
    table.extend_from_slice(&[0xaa, 0xbb]);
    let table = with_length(table, 42);
    let root = image.place(&table);
    let rsdp = image.place(&rsdp(0, root, 0));
    assert!(find_madt(&image, rsdp).is_ok());
}

#[test]
fn error_messages_name_the_place() {
    let cases = [
        (
            AcpiError::Unreadable {
                address: 0xe0000,
                len: 20,
            },
            "physical memory not readable at 0xe0000 (20 bytes)",
        ),
        (
            AcpiError::BadRsdpSignature { address: 0xf0010 },
            "no RSDP signature \"RSD PTR \" at 0xf0010",
        ),
        (
            AcpiError::BadRsdpChecksum { address: 0xf0010 },
            "RSDP at 0xf0010 fails its checksum",
        ),
        (
            AcpiError::BadRsdpLength {
                address: 0xf0010,
                length: 20,
            },
            "RSDP at 0xf0010 has length 20, less than 36",
        ),
        (
            AcpiError::BadRsdpExtendedChecksum {
                address: 0xf0010,
                length: 36,
            },
            "RSDP at 0xf0010 fails its extended checksum over 36 bytes",
        ),
        (
            AcpiError::BadSignature {
                address: 0x7fe0000,
                expected: *b"XSDT",
                found: *b"\0\"A\xff",
            },
            "expected the XSDT at 0x7fe0000, found signature \"\\x00\\\"A\\xff\"",
        ),
        (
            AcpiError::BadLength {
                address: 0x7fe0100,
                signature: *b"APIC",
                length: 40,
                minimum: 44,
            },
            "APIC at 0x7fe0100 has length 40, less than 44",
        ),
        (
            AcpiError::BadChecksum {
                address: 0x7fe0000,
                signature: *b"RSDT",
                length: 52,
            },
            "RSDT at 0x7fe0000 fails its checksum over 52 bytes",
        ),
        (
            AcpiError::NoMadt {
                root_address: 0x7fe0000,
                root_signature: *b"XSDT",
                tables: 5,
            },
            "no MADT (\"APIC\") among the 5 tables listed by the XSDT at 0x7fe0000",
        ),
        (
            AcpiError::TruncatedEntry {
                offset: 0x54,
                needed: 8,
                available: 4,
            },
            "MADT entry at offset 0x54 needs 8 bytes, only 4 left in the table; the rest of the \
             table is ignored",
        ),
        (
            AcpiError::BadEntryLength {
                offset: 0x2c,
                kind: 0x80,
                length: 0,
                needed: 2,
            },
            "MADT entry of type 128 at offset 0x2c has length 0, less than its 2-byte header; the \
             rest of the table is ignored",
        ),
        (
            AcpiError::BadEntryLength {
                offset: 0x2c,
                kind: 0,
                length: 6,
                needed: 8,
            },
            "MADT entry of type 0 at offset 0x2c has length 6, less than the 8 bytes of its type; \
             entry skipped",
        ),
        (
            AcpiError::UnknownEntryType {
                offset: 0x34,
                kind: 11,
                length: 82,
            },
            "MADT entry at offset 0x34 has type 11 (length 82), not one decoded here; entry skipped",
        ),
        (
            AcpiError::BroadcastApicId {
                offset: 0x3c,
                apic_id: 0xff,
            },
            "MADT entry at offset 0x3c names the broadcast APIC ID 0xff, which no CPU has; entry \
             skipped",
        ),
        (
            AcpiError::DisabledCpu {
                offset: 0x44,
                apic_id: 3,
                flags: 0,
            },
            "MADT entry at offset 0x44: the CPU with APIC ID 3 is neither enabled nor \
             online-capable (flags 0x0); entry skipped",
        ),
        (
            AcpiError::DuplicateApicId {
                offset: 0x4c,
                apic_id: 1,
            },
            "MADT entry at offset 0x4c names APIC ID 1 again, after an earlier entry; entry \
             skipped",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn find_table_returns_other_listed_tables_checked() {
    for layout in [layout_rsdt(0, &qemu_madt()), layout_xsdt(&qemu_madt())] {
        let fadt = crate::find_table(&layout.image, layout.rsdp, *b"FACP")
            .unwrap()
            .expect("the FADT is listed");
        assert_eq!((&fadt[..4], fadt.len()), (&b"FACP"[..], 36 + 8));
        let hpet = crate::find_table(&layout.image, layout.rsdp, *b"HPET").unwrap();
        assert_eq!(hpet.map(<[u8]>::len), Some(36 + 20));
        assert_eq!(
            crate::find_table(&layout.image, layout.rsdp, *b"SSDT"),
            Ok(None)
        );
    }
}
