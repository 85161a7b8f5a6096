//! The reader on damaged input: it must report errors, never panic, and never loop.

use initrd::{Archive, ArchiveBuilder, Entry, FIELD_NAMES, ParseError};
use proptest::prelude::*;

/// A valid archive with directories, files of several sizes and an empty file.
fn sample() -> Vec<u8> {
    let mut builder = ArchiveBuilder::new();
    builder
        .add_file("etc/cmdline", 0o644, b"test init=/bin/init\n")
        .unwrap();
    builder.add_file("bin/init", 0o755, &[0xAA; 37]).unwrap();
    builder.add_file("empty", 0o644, b"").unwrap();
    builder.add_file("x", 0o644, b"xyz").unwrap();
    builder.finish()
}

/// Every item of `bytes`' entry iterator, checking that at most one error comes, and last.
fn parse(bytes: &[u8]) -> (Vec<Entry<'_>>, Option<ParseError>) {
    let mut entries = Vec::new();
    let mut iter = Archive::new(bytes).iter();
    for item in iter.by_ref() {
        match item {
            Ok(entry) => entries.push(entry),
            Err(error) => {
                assert!(iter.next().is_none(), "items after an error");
                return (entries, Some(error));
            }
        }
    }
    assert!(iter.next().is_none(), "iterator not fused");
    (entries, None)
}

/// Parses `bytes`, which must fail at once with `expected`, and checks its message.
fn assert_fails(bytes: &[u8], expected: ParseError) {
    let (entries, error) = parse(bytes);
    assert_eq!(entries, []);
    assert_eq!(error, Some(expected));
    let offset = expected.offset().to_string();
    assert!(expected.to_string().contains(&offset), "{expected}");
}

/// The first header of `sample()` with `field` (0-based, after the magic) replaced.
fn with_field(field: usize, value: [u8; 8]) -> Vec<u8> {
    let mut bytes = sample();
    let at = 6 + 8 * field;
    bytes[at..at + 8].copy_from_slice(&value);
    bytes
}

#[test]
fn truncated_at_every_offset() {
    let bytes = sample();
    let (full, error) = parse(&bytes);
    assert_eq!(error, None);
    assert_eq!(full.len(), 6);
    // The trailer's header and name end 3 bytes before the end; its padding is optional.
    let complete = bytes.len() - 3;
    for len in 0..=bytes.len() {
        let (entries, error) = parse(&bytes[..len]);
        assert_eq!(entries, full[..entries.len()], "cut at {len}");
        assert_eq!(error.is_none(), len >= complete, "cut at {len}: {error:?}");
        if let Some(error) = error {
            assert!(error.offset() <= len, "cut at {len}: {error:?}");
            assert!(
                matches!(
                    error,
                    ParseError::Truncated { .. } | ParseError::MissingTrailer { .. }
                ),
                "cut at {len}: {error:?}"
            );
        }
    }
}

#[test]
fn every_single_byte_corruption() {
    let bytes = sample();
    for at in 0..bytes.len() {
        for value in [0, b'0', b'F', b'f', b'g', b'/', 0xff] {
            let mut bad = bytes.clone();
            bad[at] = value;
            // Whatever the outcome, `parse` checks that the iterator ends after an error.
            let _ = parse(&bad);
        }
    }
}

#[test]
fn bad_magic() {
    let mut bytes = sample();
    bytes[5] = b'7';
    assert_fails(&bytes, ParseError::BadMagic { offset: 0 });
    // Also in a later entry.
    let mut bytes = sample();
    let offset = 116; // the second header: the first entry, directory "bin", is 116 bytes long
    bytes[offset] = b'1';
    let (entries, error) = parse(&bytes);
    assert_eq!(entries.len(), 1);
    assert_eq!(error, Some(ParseError::BadMagic { offset }));
    assert_eq!(error.unwrap().to_string(), "bad magic at byte offset 116");
}

#[test]
fn non_hex_fields() {
    for (field, name) in [
        (0, "ino"),
        (1, "mode"),
        (6, "filesize"),
        (11, "namesize"),
        (12, "check"),
    ] {
        for value in [*b"0000000g", *b"+0000001", *b" 0000001", *b"0x000001"] {
            let offset = 6 + 8 * field;
            assert_fails(
                &with_field(field, value),
                ParseError::BadField {
                    offset,
                    field: name,
                },
            );
        }
    }
    assert_eq!(
        ParseError::BadField {
            offset: 14,
            field: "mode"
        }
        .to_string(),
        "field mode at byte offset 14 is not 8 hex digits"
    );
}

#[test]
fn sizes_past_the_end() {
    assert_fails(
        &with_field(6, *b"FFFFFFFF"),
        ParseError::Truncated {
            offset: 116,
            what: "data",
        },
    );
    assert_fails(
        &with_field(11, *b"FFFFFFFF"),
        ParseError::Truncated {
            offset: 110,
            what: "name",
        },
    );
    let bytes = sample();
    assert_fails(
        &bytes[..50],
        ParseError::Truncated {
            offset: 0,
            what: "header",
        },
    );
}

#[test]
fn bad_names() {
    // namesize 0: no room for the NUL.
    assert_fails(
        &with_field(11, *b"00000000"),
        ParseError::NameNotTerminated { offset: 110 },
    );
    // namesize 3 on "bin\0": the last byte is 'n', not NUL.
    assert_fails(
        &with_field(11, *b"00000003"),
        ParseError::NameNotTerminated { offset: 110 },
    );
    // A NUL inside the name.
    let mut bytes = sample();
    bytes[111] = 0;
    assert_fails(&bytes, ParseError::NameNotTerminated { offset: 110 });
    // Not UTF-8.
    let mut bytes = sample();
    bytes[111] = 0xff;
    assert_fails(&bytes, ParseError::NameNotUtf8 { offset: 110 });
    assert_eq!(
        ParseError::NameNotUtf8 { offset: 110 }.to_string(),
        "name at byte offset 110 is not UTF-8"
    );
}

#[test]
fn missing_trailer() {
    let bytes = sample();
    let without_trailer = &bytes[..bytes.len() - 124];
    let (entries, error) = parse(without_trailer);
    assert_eq!(entries.len(), 6);
    assert_eq!(
        error,
        Some(ParseError::MissingTrailer {
            offset: without_trailer.len()
        })
    );
    // `find` still sees the entries before the error, but nothing after it.
    assert!(Archive::new(without_trailer).find("x").is_some());
    let mut bytes = bytes;
    bytes[116] = b'X';
    assert!(Archive::new(&bytes).find("bin").is_some());
    assert!(Archive::new(&bytes).find("x").is_none());
}

#[test]
fn garbage_after_trailer_is_ignored() {
    let mut bytes = sample();
    bytes.extend_from_slice(b"\xff\xfenot an archive");
    assert_eq!(parse(&bytes).1, None);
}

/// A header whose fields are drawn from small and hostile values, then a random tail.
fn hostile_archive() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        (0u32..64).prop_map(|v| format!("{v:08x}")),
        Just("FFFFFFFF".to_owned()),
        Just("7FFFFFFF".to_owned()),
        "[0-9a-fA-FgG+ ]{8}",
    ];
    let header = (
        prop_oneof![Just("070701"), Just("070702"), Just("070700")],
        prop::collection::vec(field, 13),
    )
        .prop_map(|(magic, fields)| format!("{magic}{}", fields.concat()).into_bytes());
    (
        prop::collection::vec(header, 1..4),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(headers, tail)| {
            let mut bytes = headers.concat();
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
        let _ = Archive::new(&bytes).find("etc/cmdline");
    }

    #[test]
    fn hostile_headers_never_panic(bytes in hostile_archive()) {
        let (entries, _) = parse(&bytes);
        for entry in entries {
            prop_assert!(entry.data.len() <= bytes.len());
        }
    }

    #[test]
    fn mutated_archives_never_panic(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample();
        for (at, value) in mutations {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let len = cut.index(bytes.len() + 1);
        let (entries, _) = parse(&bytes[..len]);
        prop_assert!(entries.len() <= 7);
    }
}

// A well-formed archive with one header field made hostile: each is refused with the error
// documented for it, at the offset documented for it.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_non_hex_digit_in_any_field_is_refused(
        field in 0usize..13,
        at in 0usize..8,
        byte in any::<u8>().prop_filter("not a hex digit", |b| !b.is_ascii_hexdigit()),
    ) {
        let mut bytes = sample();
        let offset = 6 + 8 * field;
        bytes[offset + at] = byte;
        assert_fails(&bytes, ParseError::BadField { offset, field: FIELD_NAMES[field] });
    }

    #[test]
    fn a_size_past_the_end_is_refused(size in any::<u32>(), name in any::<bool>()) {
        let bytes = sample();
        // The first entry's name starts at 110 and its data (after the name "bin" and its
        // padding) at 116.
        let (field, offset, what) = if name { (11, 110, "name") } else { (6, 116, "data") };
        prop_assume!(offset + size as usize > bytes.len());
        let hex: [u8; 8] = format!("{size:08X}").into_bytes().try_into().unwrap();
        assert_fails(&with_field(field, hex), ParseError::Truncated { offset, what });
    }

    #[test]
    fn a_bad_magic_is_refused(at in 0usize..6, byte in any::<u8>()) {
        let mut bytes = sample();
        prop_assume!(b"070701"[at] != byte && !(at == 5 && byte == b'2'));
        bytes[at] = byte;
        assert_fails(&bytes, ParseError::BadMagic { offset: 0 });
    }
}
