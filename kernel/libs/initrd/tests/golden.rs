//! Archives whose bytes are known: written out by hand, or packed by GNU cpio when installed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use initrd::{Archive, ArchiveBuilder, Entry, ParseError};

/// `etc/` and `etc/cmdline` containing `test\n`, as `ArchiveBuilder` must write them.
const GOLDEN: &[u8] = concat!(
    // offset 0: directory "etc", mode 040755
    "070701",
    "00000001000041ED0000000000000000", // ino, mode, uid, gid
    "00000002000000000000000000000000", // nlink, mtime, filesize, devmajor
    "000000000000000000000000",         // devminor, rdevmajor, rdevminor
    "0000000400000000",                 // namesize, check
    "etc\0",
    "\0\0", // 110 + 4 = 114, padded to 116
    // offset 116: file "etc/cmdline", mode 0100644
    "070701",
    "00000002000081A40000000000000000", // ino, mode, uid, gid
    "00000001000000000000000500000000", // nlink, mtime, filesize, devmajor
    "000000000000000000000000",         // devminor, rdevmajor, rdevminor
    "0000000C00000000",                 // namesize, check
    "etc/cmdline\0",
    "\0\0", // 116 + 110 + 12 = 238, padded to 240
    "test\n",
    "\0\0\0", // 245, padded to 248
    // offset 248: trailer
    "070701",
    "00000000000000000000000000000000", // ino, mode, uid, gid
    "00000001000000000000000000000000", // nlink, mtime, filesize, devmajor
    "000000000000000000000000",         // devminor, rdevmajor, rdevminor
    "0000000B00000000",                 // namesize, check
    "TRAILER!!!\0",
    "\0\0\0", // 248 + 110 + 11 = 369, padded to 372
)
.as_bytes();

#[test]
fn golden_bytes_are_well_formed() {
    assert_eq!(GOLDEN.len(), 372);
    assert_eq!(&GOLDEN[116..122], b"070701");
    assert_eq!(&GOLDEN[248..254], b"070701");
}

#[test]
fn reader_reads_golden() {
    let entries: Vec<_> = Archive::new(GOLDEN).iter().collect();
    assert_eq!(
        entries,
        [
            Ok(Entry {
                name: "etc",
                mode: 0o040_755,
                data: b""
            }),
            Ok(Entry {
                name: "etc/cmdline",
                mode: 0o100_644,
                data: b"test\n"
            }),
        ]
    );
}

#[test]
fn writer_writes_golden() {
    let mut builder = ArchiveBuilder::new();
    builder.add_file("/etc/cmdline", 0o644, b"test\n").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&builder.finish()),
        String::from_utf8_lossy(GOLDEN)
    );
}

/// One newc header as GNU cpio writes it (lowercase hex), with the fields this test varies.
fn header(
    magic: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    filesize: usize,
    name: &str,
    check: u32,
) -> String {
    let namesize = name.len() + 1;
    // Values GNU cpio copies from the files' metadata, which the reader ignores.
    let (uid, gid, mtime, devmajor, devminor, rdev) = (1000, 1000, 1_700_000_000, 8, 1, 0);
    format!(
        "{magic}{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{filesize:08x}\
         {devmajor:08x}{devminor:08x}{rdev:08x}{rdev:08x}{namesize:08x}{check:08x}"
    )
}

/// Appends an entry the way GNU cpio lays it out.
fn push(out: &mut Vec<u8>, magic: &str, ino: u32, mode: u32, name: &str, data: &[u8], check: u32) {
    let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
    out.extend(header(magic, ino, mode, nlink, data.len(), name, check).bytes());
    out.extend(name.bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

#[test]
fn reads_gnu_style_archive() {
    // What `find . | cpio -o -H crc` writes: a "." root, "./" prefixes, lowercase hex, nonzero
    // uid/gid/mtime/dev, a symlink, a checksum, and zeros up to a 512-byte block at the end.
    let data = b"\x00\x01\xfe\xffbinary";
    let sum: u32 = data.iter().map(|&b| u32::from(b)).sum();
    let mut bytes = Vec::new();
    push(&mut bytes, "070702", 10, 0o040_755, ".", b"", 0);
    push(&mut bytes, "070702", 11, 0o040_700, "./etc", b"", 0);
    push(&mut bytes, "070702", 12, 0o100_600, "./etc/blob", data, sum);
    push(
        &mut bytes,
        "070702",
        13,
        0o120_777,
        "./etc/link",
        b"blob",
        0,
    );
    push(&mut bytes, "070702", 0, 0, "TRAILER!!!", b"", 0);
    bytes.resize(bytes.len().next_multiple_of(512), 0);

    let archive = Archive::new(&bytes);
    let entries: Vec<_> = archive.iter().collect::<Result<_, _>>().unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name).collect();
    assert_eq!(names, ["", "etc", "etc/blob", "etc/link"]);
    assert!(entries[0].is_dir());
    let link = archive.find("/etc/link").unwrap();
    assert!(!link.is_file() && !link.is_dir());
    assert_eq!(link.data, b"blob");
    assert_eq!(archive.find("./etc/blob").unwrap().data, data);
    assert_eq!(archive.find("/").unwrap().name, "");

    // The same archive with a wrong checksum.
    let mut bad = Vec::new();
    push(&mut bad, "070702", 12, 0o100_600, "blob", data, sum + 1);
    assert_eq!(
        Archive::new(&bad).iter().next(),
        Some(Err(ParseError::BadChecksum {
            offset: 0,
            expected: sum + 1,
            actual: sum
        }))
    );
}

/// Whether GNU cpio can be run; prints a note when not.
fn have_cpio() -> bool {
    let found = Command::new("cpio")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        println!("note: `cpio` is not installed; skipping the GNU cpio comparison");
    }
    found
}

/// A fresh, empty directory under the system's temporary directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("initrd-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The files of the test tree, with their contents.
const TREE: [(&str, &[u8]); 4] = [
    ("etc/cmdline", b"init=/bin/init stats\n"),
    ("bin/init", b"\x7fELF\x00\x01\x02\x03"),
    ("empty", b""),
    ("a/bb/ccc/dddd", b"12345"),
];

#[test]
fn reads_what_gnu_cpio_writes() {
    if !have_cpio() {
        return;
    }
    let dir = scratch_dir("pack");
    for (path, data) in TREE {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    for format in ["newc", "crc"] {
        let output = Command::new("sh")
            .args([
                "-c",
                &format!("find . | LC_ALL=C sort | cpio -o -H {format} --quiet"),
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cpio: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let archive = Archive::new(&output.stdout);
        for entry in archive.iter() {
            entry.unwrap();
        }
        for (path, data) in TREE {
            let entry = archive.find(path).unwrap();
            assert!(entry.is_file());
            assert_eq!(entry.data, data, "{format} {path}");
        }
        assert!(archive.find("a/bb/ccc").unwrap().is_dir());
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gnu_cpio_reads_what_we_write() {
    if !have_cpio() {
        return;
    }
    let mut builder = ArchiveBuilder::new();
    for (path, data) in TREE {
        builder.add_file(path, 0o644, data).unwrap();
    }
    builder.add_dir("var/empty", 0o700).unwrap();
    builder.add_symlink("bin/sh", "../a/bb").unwrap();
    let bytes = builder.finish();

    let dir = scratch_dir("unpack");
    let mut child = Command::new("cpio")
        .args(["-i", "-d", "--quiet"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert!(child.wait().unwrap().success());
    for (path, data) in TREE {
        assert_eq!(fs::read(dir.join(path)).unwrap(), data, "{path}");
    }
    assert!(Path::is_dir(&dir.join("var/empty")));
    assert_eq!(
        fs::read_link(dir.join("bin/sh")).unwrap(),
        Path::new("../a/bb")
    );
    fs::remove_dir_all(dir).unwrap();
}
