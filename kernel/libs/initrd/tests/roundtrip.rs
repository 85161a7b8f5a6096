//! Archives written by `ArchiveBuilder` read back through `Archive`.

use std::collections::BTreeMap;

use initrd::{Archive, ArchiveBuilder, BuildError, Entry};
use proptest::prelude::*;

/// All entries of `bytes`, which must parse without error.
fn entries(bytes: &[u8]) -> Vec<Entry<'_>> {
    Archive::new(bytes)
        .iter()
        .collect::<Result<_, _>>()
        .expect("archive parses")
}

#[test]
fn files_dirs_and_empty_file() {
    let mut builder = ArchiveBuilder::new();
    builder.add_dir("/bin", 0o700).unwrap();
    builder
        .add_file("/etc/cmdline", 0o644, b"test log=debug\n")
        .unwrap();
    builder.add_file("./empty", 0o600, b"").unwrap();
    builder
        .add_file("bin/init", 0o755, &[0x7f, b'E', b'L', b'F', 0, 1, 2])
        .unwrap();
    let bytes = builder.finish();
    assert_eq!(bytes.len() % 4, 0);

    let all = entries(&bytes);
    let summary: Vec<_> = all.iter().map(|e| (e.name, e.mode, e.data)).collect();
    assert_eq!(
        summary,
        [
            ("bin", 0o040_700, &b""[..]),
            (
                "bin/init",
                0o100_755,
                &[0x7f, b'E', b'L', b'F', 0, 1, 2][..]
            ),
            ("empty", 0o100_600, b""),
            ("etc", 0o040_755, b""),
            ("etc/cmdline", 0o100_644, b"test log=debug\n"),
        ]
    );
    assert!(all[0].is_dir() && !all[0].is_file());
    assert!(all[1].is_file() && !all[1].is_dir());

    let archive = Archive::new(&bytes);
    for path in ["/etc/cmdline", "etc/cmdline", "./etc/cmdline"] {
        assert_eq!(archive.find(path).unwrap().data, b"test log=debug\n");
    }
    assert!(archive.find("/etc").unwrap().is_dir());
    assert!(archive.find("etc/").unwrap().is_dir());
    assert!(archive.find("/etc/missing").is_none());
    assert!(archive.find("etc//cmdline").is_none());
    assert!(archive.find("TRAILER!!!").is_none());
}

#[test]
fn symlinks_read_back_with_their_targets() {
    let mut builder = ArchiveBuilder::new();
    builder
        .add_file("lib/x86_64-linux-gnu/libc.so.6", 0o644, b"\x7fELF")
        .unwrap();
    builder
        .add_symlink("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld.so")
        .unwrap();
    builder
        .add_symlink("lib/libc.so", "x86_64-linux-gnu/libc.so.6")
        .unwrap();
    let bytes = builder.finish();
    let links: Vec<_> = entries(&bytes)
        .into_iter()
        .filter(Entry::is_symlink)
        .map(|e| (e.name, e.mode, e.data))
        .collect();
    assert_eq!(
        links,
        [
            ("lib/libc.so", 0o120_777, &b"x86_64-linux-gnu/libc.so.6"[..]),
            (
                "lib64/ld-linux-x86-64.so.2",
                0o120_777,
                b"/lib/x86_64-linux-gnu/ld.so"
            ),
        ]
    );
    let archive = Archive::new(&bytes);
    let link = archive.find("/lib/libc.so").unwrap();
    assert!(link.is_symlink() && !link.is_file() && !link.is_dir());
    assert!(archive.find("lib64").unwrap().is_dir());
}

#[test]
fn empty_archive_is_only_a_trailer() {
    let bytes = ArchiveBuilder::new().finish();
    assert_eq!(bytes.len(), 124);
    assert_eq!(entries(&bytes), []);
}

#[test]
fn names_of_every_length_up_to_40() {
    // Every residue of header + name length modulo 4, each with data of every residue too.
    let mut builder = ArchiveBuilder::new();
    let mut expected = BTreeMap::new();
    for len in 1..=40 {
        let name = "n".repeat(len);
        let data: Vec<u8> = (0..len as u8).collect();
        builder.add_file(&name, 0o644, &data).unwrap();
        expected.insert(name, data);
    }
    let bytes = builder.finish();
    let read: BTreeMap<String, Vec<u8>> = entries(&bytes)
        .into_iter()
        .map(|e| (e.name.to_owned(), e.data.to_vec()))
        .collect();
    assert_eq!(read, expected);
}

#[test]
fn output_is_deterministic_and_independent_of_order() {
    let mut a = ArchiveBuilder::new();
    a.add_file("z", 0o644, b"z").unwrap();
    a.add_file("a/b", 0o644, b"b").unwrap();
    a.add_dir("a", 0o755).unwrap();
    let mut b = ArchiveBuilder::new();
    b.add_dir("a", 0o755).unwrap();
    b.add_file("a/b", 0o644, b"b").unwrap();
    b.add_file("z", 0o644, b"z").unwrap();
    assert_eq!(a.clone().finish(), b.finish());
    assert_eq!(a.clone().finish(), a.finish());
}

#[test]
fn directories_precede_their_contents() {
    let mut builder = ArchiveBuilder::new();
    // '-' and '.' sort before '/', so these land between "a" and "a/b".
    builder.add_file("a-x", 0o644, b"").unwrap();
    builder.add_file("a.x", 0o644, b"").unwrap();
    builder.add_file("a/b/c", 0o644, b"").unwrap();
    let bytes = builder.finish();
    let names: Vec<_> = entries(&bytes).iter().map(|e| e.name).collect();
    assert_eq!(names, ["a", "a-x", "a.x", "a/b", "a/b/c"]);
}

#[test]
fn parents_are_created_once_and_add_dir_sets_mode() {
    let mut builder = ArchiveBuilder::new();
    builder.add_file("usr/bin/a", 0o755, b"a").unwrap();
    builder.add_file("usr/bin/b", 0o755, b"b").unwrap();
    builder.add_dir("usr", 0o711).unwrap();
    builder.add_dir("usr", 0o750).unwrap();
    let bytes = builder.finish();
    let dirs: Vec<_> = entries(&bytes)
        .into_iter()
        .filter(Entry::is_dir)
        .map(|e| (e.name, e.mode))
        .collect();
    assert_eq!(dirs, [("usr", 0o040_750), ("usr/bin", 0o040_755)]);
}

#[test]
fn mode_type_bits_are_ignored() {
    let mut builder = ArchiveBuilder::new();
    builder.add_file("f", 0o120_000 | 0o4755, b"").unwrap();
    builder.add_dir("d", 0o100_000 | 0o1777).unwrap();
    let bytes = builder.finish();
    let modes: Vec<_> = entries(&bytes).iter().map(|e| e.mode).collect();
    assert_eq!(modes, [0o041_777, 0o104_755]);
}

#[test]
fn builder_errors() {
    let mut builder = ArchiveBuilder::new();
    builder.add_file("etc/cmdline", 0o644, b"").unwrap();
    assert_eq!(
        builder.add_file("/etc/cmdline", 0o644, b"again"),
        Err(BuildError::Exists("etc/cmdline".into()))
    );
    assert_eq!(
        builder.add_file("etc", 0o644, b""),
        Err(BuildError::Exists("etc".into()))
    );
    assert_eq!(
        builder.add_dir("etc/cmdline", 0o755),
        Err(BuildError::Exists("etc/cmdline".into()))
    );
    assert_eq!(
        builder.add_file("etc/cmdline/x", 0o644, b""),
        Err(BuildError::NotADirectory("etc/cmdline".into()))
    );
    assert_eq!(
        builder.add_dir("/", 0o755),
        Err(BuildError::InvalidPath("/".into()))
    );
    assert_eq!(
        builder.add_file("../x", 0o644, b""),
        Err(BuildError::InvalidPath("../x".into()))
    );
    let error = builder.add_file("a\0b", 0o644, b"").unwrap_err();
    assert_eq!(error.to_string(), r#"invalid path "a\0b" in archive"#);
    // The failed calls left nothing behind.
    let bytes = builder.finish();
    let names: Vec<_> = entries(&bytes).iter().map(|e| e.name).collect();
    assert_eq!(names, ["etc", "etc/cmdline"]);
}

#[test]
fn later_duplicate_wins_in_find() {
    // The builder never writes duplicates, so concatenate two archives minus the first trailer.
    let mut first = ArchiveBuilder::new();
    first.add_file("f", 0o644, b"old").unwrap();
    let mut second = ArchiveBuilder::new();
    second.add_file("f", 0o644, b"new").unwrap();
    let mut bytes = first.finish();
    bytes.truncate(bytes.len() - 124);
    bytes.extend(second.finish());
    assert_eq!(entries(&bytes).len(), 2);
    assert_eq!(Archive::new(&bytes).find("f").unwrap().data, b"new");
}

/// A path of 1 to 3 components, of lengths that exercise every padding.
fn path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_-][a-z0-9._-]{0,8}", 1..=3)
        .prop_map(|components| components.join("/"))
}

proptest! {
    #[test]
    fn random_trees_round_trip(
        files in prop::collection::vec((path(), prop::collection::vec(any::<u8>(), 0..64)), 0..12)
    ) {
        let mut builder = ArchiveBuilder::new();
        let mut expected = BTreeMap::new();
        for (path, data) in &files {
            // Paths that clash with earlier ones (or are `.`/`..`) are refused; leave them out.
            if builder.add_file(path, 0o644, data).is_ok() {
                expected.insert(path.clone(), data.clone());
            }
        }
        let bytes = builder.finish();
        let all = entries(&bytes);
        let read: BTreeMap<String, Vec<u8>> = all
            .iter()
            .filter(|e| e.is_file())
            .map(|e| (e.name.to_owned(), e.data.to_vec()))
            .collect();
        prop_assert_eq!(&read, &expected);
        for name in expected.keys() {
            for (slash, _) in name.match_indices('/') {
                prop_assert!(Archive::new(&bytes).find(&name[..slash]).is_some_and(|e| e.is_dir()));
            }
        }
    }
}
