//! PS/2 keyboard decoding: the scan codes an i8042 controller delivers (set 1, which is what
//! the controller's translation makes of the keyboard's set 2) to the bytes a Linux virtual
//! terminal sends its line discipline, with a US layout.
//!
//! This crate owns the keyboard's modifier state (both shifts, both controls, alt, caps lock)
//! and the prefix of a scan code in progress; it does no I/O and allocates nothing, so the
//! kernel feeds it from the keyboard interrupt ([`Keyboard::scan_code`]).
//!
//! What keys send, as on a Linux console with its default keymap:
//! - printable keys their character (shift, and caps lock for letters, as expected); Enter
//!   `\r`, Backspace `DEL` (0x7f), Tab `\t`, Escape `ESC`; the keypad its digits and signs;
//! - with control, letters and `@[\]^_` their control character (`^A` is 1), space and `2`
//!   NUL, `6` `^^`, `-` and `/` `^_`;
//! - with alt, the same bytes after an `ESC` (the meta convention);
//! - arrows `ESC [ A`..`D`; Home, Insert, Delete, End, Page Up, Page Down `ESC [ 1~`..`6~`;
//!   F1-F5 `ESC [ [ A`..`E`, F6-F12 `ESC [ 17~`..`24~`.
//!
//! Key releases, the controller's fake shifts around extended keys, and Pause (`E1` and five
//! more bytes) send nothing. Num lock and scroll lock are not tracked: the keypad always sends
//! digits.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// The bytes one scan code produced (at most 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyBytes {
    bytes: [u8; 6],
    len: usize,
}

impl KeyBytes {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        let count = bytes.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + count].copy_from_slice(&bytes[..count]);
        self.len += count;
    }
}

const ESC: u8 = 0x1b;
/// Set 1 sends a key's release as its press code with this bit set.
const RELEASE: u8 = 0x80;
const EXTENDED: u8 = 0xe0;
const PAUSE: u8 = 0xe1;
/// The bytes of Pause after its `E1`.
const PAUSE_REST: u8 = 5;

const LEFT_SHIFT: u8 = 0x2a;
const RIGHT_SHIFT: u8 = 0x36;
const CONTROL: u8 = 0x1d;
const ALT: u8 = 0x38;
const CAPS_LOCK: u8 = 0x3a;

/// Characters of the keys 0x00..0x58 of set 1, without and with shift (0: no character).
const UNSHIFTED: &[u8; 0x59] = b"\0\x1b1234567890-=\x7f\tqwertyuiop[]\r\0asdfghjkl;'`\0\\zxcvbnm,./\0*\0 \0\0\0\0\0\0\0\0\0\0\0\0\x00789-456+1230.\0\0\0\0\0";
const SHIFTED: &[u8; 0x59] = b"\0\x1b!@#$%^&*()_+\x7f\tQWERTYUIOP{}\r\0ASDFGHJKL:\"~\0|ZXCVBNM<>?\0*\0 \0\0\0\0\0\0\0\0\0\0\0\0\x00789-456+1230.\0\0\0\0\0";

/// Function keys F1-F10 (0x3b..0x44), F11 (0x57) and F12 (0x58).
fn function_key(code: u8) -> Option<&'static [u8]> {
    Some(match code {
        0x3b => b"\x1b[[A",
        0x3c => b"\x1b[[B",
        0x3d => b"\x1b[[C",
        0x3e => b"\x1b[[D",
        0x3f => b"\x1b[[E",
        0x40 => b"\x1b[17~",
        0x41 => b"\x1b[18~",
        0x42 => b"\x1b[19~",
        0x43 => b"\x1b[20~",
        0x44 => b"\x1b[21~",
        0x57 => b"\x1b[23~",
        0x58 => b"\x1b[24~",
        _ => return None,
    })
}

/// The editing and cursor keys, which come after an `E0` prefix.
fn extended_key(code: u8) -> Option<&'static [u8]> {
    Some(match code {
        0x47 => b"\x1b[1~",
        0x48 => b"\x1b[A",
        0x49 => b"\x1b[5~",
        0x4b => b"\x1b[D",
        0x4d => b"\x1b[C",
        0x4f => b"\x1b[4~",
        0x50 => b"\x1b[B",
        0x51 => b"\x1b[6~",
        0x52 => b"\x1b[2~",
        0x53 => b"\x1b[3~",
        0x1c => b"\r",
        0x35 => b"/",
        _ => return None,
    })
}

/// One keyboard's state. See the crate documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keyboard {
    left_shift: bool,
    right_shift: bool,
    left_control: bool,
    right_control: bool,
    left_alt: bool,
    right_alt: bool,
    caps_lock: bool,
    /// An `E0` came: the next code is an extended key's.
    extended: bool,
    /// Bytes of a Pause sequence still to skip.
    pause_left: u8,
}

impl Keyboard {
    pub const fn new() -> Self {
        Self {
            left_shift: false,
            right_shift: false,
            left_control: false,
            right_control: false,
            left_alt: false,
            right_alt: false,
            caps_lock: false,
            extended: false,
            pause_left: 0,
        }
    }

    /// Takes one byte from the controller and returns what the terminal receives for it.
    pub fn scan_code(&mut self, byte: u8) -> KeyBytes {
        let mut out = KeyBytes::default();
        if self.pause_left > 0 {
            self.pause_left -= 1;
            return out;
        }
        match byte {
            EXTENDED => {
                self.extended = true;
                return out;
            }
            PAUSE => {
                self.pause_left = PAUSE_REST;
                return out;
            }
            _ => {}
        }
        let extended = core::mem::take(&mut self.extended);
        let pressed = byte & RELEASE == 0;
        let code = byte & !RELEASE;
        match (code, extended) {
            // The controller's fake shifts around extended keys.
            (LEFT_SHIFT | RIGHT_SHIFT, true) => return out,
            (LEFT_SHIFT, false) => self.left_shift = pressed,
            (RIGHT_SHIFT, false) => self.right_shift = pressed,
            (CONTROL, false) => self.left_control = pressed,
            (CONTROL, true) => self.right_control = pressed,
            (ALT, false) => self.left_alt = pressed,
            (ALT, true) => self.right_alt = pressed,
            (CAPS_LOCK, false) => {
                if pressed {
                    self.caps_lock = !self.caps_lock;
                }
            }
            _ if !pressed => {}
            (_, true) => {
                if let Some(bytes) = extended_key(code) {
                    self.with_alt(&mut out, bytes);
                }
            }
            (_, false) => {
                if let Some(bytes) = function_key(code) {
                    out.push(bytes);
                } else if let Some(byte) = self.character(code) {
                    self.with_alt(&mut out, &[byte]);
                }
            }
        }
        out
    }

    /// `bytes`, after an `ESC` while alt is held.
    fn with_alt(&self, out: &mut KeyBytes, bytes: &[u8]) {
        if self.left_alt || self.right_alt {
            out.push(&[ESC]);
        }
        out.push(bytes);
    }

    /// The character key `code` sends with the modifiers held, if any.
    fn character(&self, code: u8) -> Option<u8> {
        let index = usize::from(code);
        let base = *UNSHIFTED.get(index)?;
        if base == 0 {
            return None;
        }
        let mut shifted = self.left_shift || self.right_shift;
        if base.is_ascii_lowercase() && self.caps_lock {
            shifted = !shifted;
        }
        let character = if shifted { SHIFTED[index] } else { base };
        if !(self.left_control || self.right_control) {
            return Some(character);
        }
        Some(match character {
            b' ' | b'2' | b'@' => 0,
            b'6' | b'^' => 0x1e,
            b'-' | b'_' | b'/' => 0x1f,
            b'?' => 0x7f,
            b'a'..=b'z' | b'A'..=b'Z' | b'[' | b'\\' | b']' => character & 0x1f,
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a run of scan codes sends.
    fn typed(codes: &[u8]) -> Vec<u8> {
        let mut keyboard = Keyboard::new();
        codes
            .iter()
            .flat_map(|&code| keyboard.scan_code(code).as_slice().to_vec())
            .collect()
    }

    #[test]
    fn letters_digits_and_releases() {
        // h, i (each pressed and released), 1, Enter.
        assert_eq!(
            typed(&[0x23, 0xa3, 0x17, 0x97, 0x02, 0x82, 0x1c, 0x9c]),
            b"hi1\r"
        );
        assert_eq!(typed(&[0x39, 0x0e, 0x0f, 0x01]), b" \x7f\t\x1b");
    }

    #[test]
    fn shift_and_caps_lock() {
        // Shift held for a and 1, released before b.
        assert_eq!(typed(&[0x2a, 0x1e, 0x02, 0xaa, 0x30]), b"A!b");
        assert_eq!(typed(&[0x36, 0x27, 0x28, 0xb6]), b":\"");
        // Caps lock changes letters only; shift undoes it.
        assert_eq!(
            typed(&[0x3a, 0xba, 0x1e, 0x02, 0x2a, 0x1e, 0xaa, 0x3a, 0xba, 0x1e]),
            b"A1aa"
        );
    }

    #[test]
    fn control_and_alt() {
        // ^C, ^D, ^[ , ^@ (control-space), then control released.
        assert_eq!(
            typed(&[0x1d, 0x2e, 0x20, 0x1a, 0x39, 0x9d, 0x2e]),
            b"\x03\x04\x1b\0c"
        );
        // Right control is E0 1D.
        assert_eq!(typed(&[0xe0, 0x1d, 0x26, 0xe0, 0x9d, 0x26]), b"\x0cl");
        // Alt-x sends ESC x.
        assert_eq!(typed(&[0x38, 0x2d, 0xb8, 0x2d]), b"\x1bxx");
    }

    #[test]
    fn cursor_and_editing_keys() {
        assert_eq!(
            typed(&[0xe0, 0x48, 0xe0, 0xc8, 0xe0, 0x50, 0xe0, 0x4b, 0xe0, 0x4d]),
            b"\x1b[A\x1b[B\x1b[D\x1b[C"
        );
        assert_eq!(
            typed(&[
                0xe0, 0x47, 0xe0, 0x4f, 0xe0, 0x53, 0xe0, 0x52, 0xe0, 0x49, 0xe0, 0x51
            ]),
            b"\x1b[1~\x1b[4~\x1b[3~\x1b[2~\x1b[5~\x1b[6~"
        );
        // Keypad 7 without E0 is a digit; with E0 (fake shift around it) Home.
        assert_eq!(typed(&[0x47, 0xe0, 0x2a, 0xe0, 0x47]), b"7\x1b[1~");
        assert_eq!(typed(&[0x3b, 0x44, 0x58]), b"\x1b[[A\x1b[21~\x1b[24~");
        // Pause sends nothing, and what follows decodes.
        assert_eq!(typed(&[0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5, 0x1e]), b"a");
    }
}
