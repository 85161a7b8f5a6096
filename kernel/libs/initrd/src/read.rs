//! The archive reader: `no_std`, allocation-free, and total on malformed input.

use core::fmt;
use core::iter::FusedIterator;

use crate::{FIELD_LEN, HEADER_LEN, MAGIC, MAGIC_CRC, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, TRAILER};

// Header field values are `u32`s used as lengths; `as usize` below relies on this.
const _: () = assert!(usize::BITS >= u32::BITS);

/// Names of the 13 header fields after the magic, in archive order (the `field` of
/// [`ParseError::BadField`]).
pub const FIELD_NAMES: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// A cpio newc archive, read in place from a byte slice.
///
/// Creating one checks nothing; the entries are parsed lazily by [`Archive::iter`].
#[derive(Clone, Copy)]
pub struct Archive<'a> {
    bytes: &'a [u8],
}

impl<'a> Archive<'a> {
    /// Wraps the bytes of an archive, which start with the first entry's header.
    #[must_use]
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Iterates over the entries, in archive order, up to the `TRAILER!!!` entry (not yielded).
    ///
    /// On malformed input the iterator yields one `Err` and then ends; the entries before it are
    /// intact. Input that ends before a trailer (a truncated archive, or an empty slice) ends with
    /// [`ParseError::MissingTrailer`] or [`ParseError::Truncated`]; an entry counts as complete
    /// only with its padding, except for the trailer, which may end the input right after its
    /// name. Whatever follows the trailer is ignored.
    #[must_use]
    pub const fn iter(&self) -> Entries<'a> {
        Entries {
            bytes: self.bytes,
            offset: 0,
            done: false,
        }
    }

    /// Finds the entry at `path`.
    ///
    /// Leading `/` and `./` are ignored on both sides, as are trailing `/`, so `"/etc/cmdline"`,
    /// `"etc/cmdline"` and `"./etc/cmdline"` are the same path; no other normalisation happens
    /// (`"etc//cmdline"` matches nothing). If a path occurs more than once, the last entry wins,
    /// as it does when Linux unpacks an initramfs. The search stops at the first malformed entry:
    /// entries after it are not found (use [`Archive::iter`] to see the error).
    #[must_use]
    pub fn find(&self, path: &str) -> Option<Entry<'a>> {
        let path = normalize(path);
        self.iter()
            .map_while(Result::ok)
            .filter(|entry| entry.name == path)
            .last()
    }
}

impl fmt::Debug for Archive<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Archive")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl<'a> IntoIterator for &Archive<'a> {
    type Item = Result<Entry<'a>, ParseError>;
    type IntoIter = Entries<'a>;

    fn into_iter(self) -> Entries<'a> {
        self.iter()
    }
}

/// One entry of an [`Archive`]: a file, directory or other inode, with its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path name, without leading `/` or `./` (nor trailing `/`). The root directory, stored as
    /// `.` by `find . | cpio -o`, has the empty name.
    pub name: &'a str,
    /// File type and permission bits, as in `st_mode`.
    pub mode: u32,
    /// The file's contents (for a symbolic link: its target). Hard links are not resolved: newc
    /// stores the data with only one of the names.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether this entry is a regular file.
    #[must_use]
    pub const fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this entry is a directory.
    #[must_use]
    pub const fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this entry is a symbolic link; [`Entry::data`] is then its target.
    #[must_use]
    pub const fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// Iterator over the entries of an [`Archive`], made by [`Archive::iter`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    /// Byte offset of the next header.
    offset: usize,
    /// Set once the trailer or an error has been reached.
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match parse_entry(self.bytes, self.offset) {
            Ok(Some((entry, next))) => {
                self.offset = next;
                Some(Ok(entry))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for Entries<'_> {}

/// Why an archive could not be read. Every variant carries the byte offset, from the start of the
/// archive, where the problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The input ended at `offset`, after an entry, without a `TRAILER!!!` entry.
    MissingTrailer {
        /// Offset where the next header should start: the input's length.
        offset: usize,
    },
    /// A header, name or data (`what`) extends past the end of the input.
    Truncated {
        /// Offset where the cut-off part starts.
        offset: usize,
        /// `"header"`, `"name"` or `"data"`.
        what: &'static str,
    },
    /// The header does not start with `070701` or `070702`.
    BadMagic {
        /// Offset of the header.
        offset: usize,
    },
    /// A header field is not 8 hexadecimal digits.
    BadField {
        /// Offset of the field.
        offset: usize,
        /// Name of the field, such as `"filesize"`.
        field: &'static str,
    },
    /// The name is empty (`namesize` 0), does not end in a NUL, or has a NUL before its end.
    NameNotTerminated {
        /// Offset of the name.
        offset: usize,
    },
    /// The name is not valid UTF-8.
    NameNotUtf8 {
        /// Offset of the name.
        offset: usize,
    },
    /// In a `070702` archive, the sum of a regular file's bytes differs from its `check` field.
    BadChecksum {
        /// Offset of the header.
        offset: usize,
        /// The value of the `check` field.
        expected: u32,
        /// The sum of the data bytes, modulo 2^32.
        actual: u32,
    },
}

impl ParseError {
    /// Byte offset, from the start of the archive, where the problem was found.
    #[must_use]
    pub const fn offset(&self) -> usize {
        match *self {
            Self::MissingTrailer { offset }
            | Self::Truncated { offset, .. }
            | Self::BadMagic { offset }
            | Self::BadField { offset, .. }
            | Self::NameNotTerminated { offset }
            | Self::NameNotUtf8 { offset }
            | Self::BadChecksum { offset, .. } => offset,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MissingTrailer { offset } => {
                write!(f, "archive ends at byte offset {offset} without a trailer")
            }
            Self::Truncated { offset, what } => {
                write!(
                    f,
                    "{what} at byte offset {offset} runs past the end of the archive"
                )
            }
            Self::BadMagic { offset } => write!(f, "bad magic at byte offset {offset}"),
            Self::BadField { offset, field } => {
                write!(
                    f,
                    "field {field} at byte offset {offset} is not 8 hex digits"
                )
            }
            Self::NameNotTerminated { offset } => {
                write!(f, "name at byte offset {offset} is not NUL-terminated")
            }
            Self::NameNotUtf8 { offset } => {
                write!(f, "name at byte offset {offset} is not UTF-8")
            }
            Self::BadChecksum {
                offset,
                expected,
                actual,
            } => write!(
                f,
                "checksum mismatch in entry at byte offset {offset}: \
                 header says {expected:#010x}, data sums to {actual:#010x}"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

/// Strips leading `/` and `./` and trailing `/` from `path`; `"."` becomes `""`.
fn normalize(mut path: &str) -> &str {
    loop {
        if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else {
            break;
        }
    }
    let path = path.trim_end_matches('/');
    if path == "." { "" } else { path }
}

/// The `len` bytes of `bytes` at `start`, if they are all there.
fn slice_at(bytes: &[u8], start: usize, len: usize) -> Option<&[u8]> {
    bytes.get(start..start.checked_add(len)?)
}

/// Rounds `offset`, an offset within a slice, up to the next multiple of 4: the alignment of
/// names and data. Slices are at most `isize::MAX` bytes long, so this cannot overflow.
const fn align4(offset: usize) -> usize {
    (offset + 3) & !3
}

/// Value of 8 ASCII hexadecimal digits (either case); `None` if `digits` is anything else.
fn parse_hex(digits: &[u8]) -> Option<u32> {
    if digits.len() != FIELD_LEN {
        return None;
    }
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = char::from(digit).to_digit(16)?;
        Some(value << 4 | nibble)
    })
}

/// Parses the entry whose header starts at `start`: the entry and the offset of the next header,
/// or `None` for the trailer.
fn parse_entry(bytes: &[u8], start: usize) -> Result<Option<(Entry<'_>, usize)>, ParseError> {
    if start == bytes.len() {
        return Err(ParseError::MissingTrailer { offset: start });
    }
    let truncated = |offset, what| ParseError::Truncated { offset, what };
    let magic = slice_at(bytes, start, MAGIC.len()).ok_or(truncated(start, "header"))?;
    let crc = match magic {
        m if m == MAGIC => false,
        m if m == MAGIC_CRC => true,
        _ => return Err(ParseError::BadMagic { offset: start }),
    };

    let mut values = [0u32; FIELD_NAMES.len()];
    let mut field_offset = start + MAGIC.len();
    for (value, field) in values.iter_mut().zip(FIELD_NAMES) {
        let digits = slice_at(bytes, field_offset, FIELD_LEN).ok_or(truncated(start, "header"))?;
        *value = parse_hex(digits).ok_or(ParseError::BadField {
            offset: field_offset,
            field,
        })?;
        field_offset += FIELD_LEN;
    }
    let [_, mode, _, _, _, _, filesize, _, _, _, _, namesize, check] = values;

    let name_start = start + HEADER_LEN;
    let name =
        slice_at(bytes, name_start, namesize as usize).ok_or(truncated(name_start, "name"))?;
    let not_terminated = ParseError::NameNotTerminated { offset: name_start };
    let (&nul, name) = name.split_last().ok_or(not_terminated)?;
    if nul != 0 || name.contains(&0) {
        return Err(not_terminated);
    }
    let name =
        core::str::from_utf8(name).map_err(|_| ParseError::NameNotUtf8 { offset: name_start })?;
    if name == TRAILER {
        return Ok(None);
    }

    // Padding counts as part of what it follows: an entry is complete only with its padding.
    let data_start = align4(name_start + namesize as usize);
    if data_start > bytes.len() {
        return Err(truncated(name_start, "name"));
    }
    let data =
        slice_at(bytes, data_start, filesize as usize).ok_or(truncated(data_start, "data"))?;
    let next = align4(data_start + data.len());
    if next > bytes.len() {
        return Err(truncated(data_start, "data"));
    }
    let entry = Entry {
        name: normalize(name),
        mode,
        data,
    };
    if crc && entry.is_file() {
        let sum = data
            .iter()
            .fold(0u32, |sum, &byte| sum.wrapping_add(u32::from(byte)));
        if sum != check {
            return Err(ParseError::BadChecksum {
                offset: start,
                expected: check,
                actual: sum,
            });
        }
    }
    Ok(Some((entry, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_prefixes_and_trailing_slashes() {
        assert_eq!(normalize("/etc/cmdline"), "etc/cmdline");
        assert_eq!(normalize("./etc/cmdline"), "etc/cmdline");
        assert_eq!(normalize(".//./etc/"), "etc");
        assert_eq!(normalize("etc/cmdline"), "etc/cmdline");
        assert_eq!(normalize("."), "");
        assert_eq!(normalize("/"), "");
        assert_eq!(normalize(".hidden"), ".hidden");
        assert_eq!(normalize("../up"), "../up");
    }

    #[test]
    fn parse_hex_accepts_only_8_hex_digits() {
        assert_eq!(parse_hex(b"0000001f"), Some(0x1f));
        assert_eq!(parse_hex(b"DEADbeef"), Some(0xdead_beef));
        assert_eq!(parse_hex(b"FFFFFFFF"), Some(u32::MAX));
        assert_eq!(parse_hex(b"0000001"), None);
        assert_eq!(parse_hex(b"+0000001"), None);
        assert_eq!(parse_hex(b" 0000001"), None);
        assert_eq!(parse_hex(b"0000000g"), None);
    }

    #[test]
    fn empty_input_has_no_trailer() {
        let mut entries = Archive::new(&[]).iter();
        assert_eq!(
            entries.next(),
            Some(Err(ParseError::MissingTrailer { offset: 0 }))
        );
        assert_eq!(entries.next(), None);
    }
}
