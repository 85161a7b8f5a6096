//! The ramdisk format shared by the kernel and the host tools.
//!
//! The bootloader hands the kernel a ramdisk: a cpio archive in the "newc" format, the format of
//! Linux's initramfs. It carries `/etc/cmdline`, a text file of kernel options, and later the user
//! programs. This crate holds both sides of that format:
//!
//! - [`Archive`] reads an archive in place. It is `no_std`, allocates nothing and never panics on
//!   malformed input: every defect is reported as a [`ParseError`].
//! - [`ArchiveBuilder`] (feature `std`, off by default) writes one, deterministically, for the
//!   host side (`xtask`).
//! - [`cmdline`] splits the text of `/etc/cmdline` into `key` / `key=value` options.
//!
//! # The newc format
//!
//! An archive is a sequence of entries, each made of:
//!
//! 1. a 110-byte ASCII header: the magic `070701` (or `070702`, whose `check` field holds the sum
//!    of a regular file's data bytes) followed by 13 fields of 8 hexadecimal digits each: `ino`,
//!    `mode`, `uid`, `gid`, `nlink`, `mtime`, `filesize`, `devmajor`, `devminor`, `rdevmajor`,
//!    `rdevminor`, `namesize` and `check`;
//! 2. the path name, `namesize` bytes including its terminating NUL, padded with NULs so that the
//!    header and name together end on a multiple of 4 bytes (counted from the archive start);
//! 3. the data, `filesize` bytes, padded likewise to a multiple of 4.
//!
//! The entry named `TRAILER!!!` ends the archive; whatever follows it is ignored.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use initrd::{Archive, ArchiveBuilder};
//!
//! let mut builder = ArchiveBuilder::new();
//! builder.add_file("etc/cmdline", 0o644, b"log=debug stats\n")?;
//! let bytes = builder.finish();
//!
//! let archive = Archive::new(&bytes);
//! let cmdline = archive.find("/etc/cmdline").expect("packed above");
//! assert!(cmdline.is_file());
//! for opt in initrd::cmdline::parse(core::str::from_utf8(cmdline.data)?) {
//!     println!("{} = {:?}", opt.key, opt.value);
//! }
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(not(feature = "std"), no_std)]

pub mod cmdline;
mod read;
#[cfg(feature = "std")]
mod write;

pub use read::{Archive, Entries, Entry, FIELD_NAMES, ParseError};
#[cfg(feature = "std")]
pub use write::{ArchiveBuilder, BuildError};

/// Magic of the plain newc format.
const MAGIC: &[u8; 6] = b"070701";
/// Magic of the newc format with checksums in the `check` field.
const MAGIC_CRC: &[u8; 6] = b"070702";
/// Length of the fixed-size header: the magic and 13 fields of 8 hex digits.
const HEADER_LEN: usize = 6 + 13 * FIELD_LEN;
/// Length of one hexadecimal header field.
const FIELD_LEN: usize = 8;
/// Name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// Mask of the file type bits of `mode`.
const S_IFMT: u32 = 0o170_000;
/// File type of a directory.
const S_IFDIR: u32 = 0o040_000;
/// File type of a regular file.
const S_IFREG: u32 = 0o100_000;
/// File type of a character device.
#[cfg(feature = "std")]
const S_IFCHR: u32 = 0o020_000;
/// File type of a symbolic link (its data is the target).
const S_IFLNK: u32 = 0o120_000;
