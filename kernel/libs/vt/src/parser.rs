//! Bytes to terminal actions: the ECMA-48 syntax of what programs write to a terminal.
//!
//! Text is UTF-8 (a character may arrive split between calls; bytes that cannot be UTF-8 are
//! U+FFFD). `ESC` starts an escape sequence: `ESC [` a control sequence (`CSI`), whose
//! parameters are decimal numbers separated by `;`, optionally after a private marker (`?`,
//! `>`, `=` or `<`), up to a final byte in `@`..`~`; `ESC ]` an operating-system command,
//! skipped up to `BEL` or `ESC \`; `ESC` followed by intermediates (`(`, `)`, `#`, ...) and a
//! final byte, such as a character-set designation, is reported with its final byte only.
//! `CAN` and `SUB` abandon a sequence; other control characters act even inside one, as on a
//! VT100.

/// The most parameters of a control sequence kept; later ones are dropped.
pub const MAX_PARAMETERS: usize = 16;

/// A parsed control sequence (`CSI`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlSequence {
    parameters: [u16; MAX_PARAMETERS],
    count: usize,
    /// The private marker after `CSI` (`?` in `CSI ? 25 h`), or 0.
    pub private: u8,
    /// The last intermediate byte (0x20..0x2f) before the final byte, or 0.
    pub intermediate: u8,
    /// The final byte, which names the function (`H`, `J`, `m`, ...).
    pub final_byte: u8,
}

impl ControlSequence {
    const EMPTY: Self = Self {
        parameters: [0; MAX_PARAMETERS],
        count: 0,
        private: 0,
        intermediate: 0,
        final_byte: 0,
    };

    /// The parameters as written (an omitted one is 0).
    pub fn parameters(&self) -> &[u16] {
        &self.parameters[..self.count]
    }

    /// Parameter `index`, or `default` when it is absent or 0 (the ECMA-48 convention for
    /// counts and positions).
    pub fn parameter_or(&self, index: usize, default: u16) -> u16 {
        match self.parameters().get(index) {
            Some(&value) if value != 0 => value,
            _ => default,
        }
    }
}

/// What a byte (or a run of them) means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A character to show.
    Print(char),
    /// A C0 control character (below 0x20, or 0x7f).
    Control(u8),
    /// `ESC` and a final byte (`ESC 7`, `ESC M`, ...).
    Escape(u8),
    /// A control sequence.
    Csi(ControlSequence),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC` and an intermediate byte: waits for the final byte.
    EscapeIntermediate,
    /// Inside `CSI`'s parameters and intermediates.
    Csi,
    /// Inside an `OSC` string.
    OperatingSystemCommand,
    /// Inside an `OSC` string, after an `ESC` (a `\` ends the string).
    OperatingSystemCommandEscape,
}

/// The parser's state between calls. See the module documentation.
#[derive(Clone, Copy, Debug)]
pub struct Parser {
    state: State,
    sequence: ControlSequence,
    /// Whether a digit or `;` started the parameter in progress.
    parameter_started: bool,
    /// The bytes of a UTF-8 character begun and not finished.
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_needed: usize,
}

const ESC: u8 = 0x1b;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const BEL: u8 = 0x07;

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub const fn new() -> Self {
        Self {
            state: State::Ground,
            sequence: ControlSequence::EMPTY,
            parameter_started: false,
            utf8: [0; 4],
            utf8_len: 0,
            utf8_needed: 0,
        }
    }

    /// Parses `bytes`, handing each action to `act` in order.
    pub fn feed(&mut self, bytes: &[u8], act: &mut impl FnMut(Action)) {
        for &byte in bytes {
            self.byte(byte, act);
        }
    }

    fn byte(&mut self, byte: u8, act: &mut impl FnMut(Action)) {
        if self.utf8_needed > 0 {
            if byte & 0xc0 == 0x80 {
                self.utf8[self.utf8_len] = byte;
                self.utf8_len += 1;
                if self.utf8_len == self.utf8_needed {
                    self.utf8_needed = 0;
                    let text = core::str::from_utf8(&self.utf8[..self.utf8_len]);
                    let c = text.ok().and_then(|t| t.chars().next());
                    act(Action::Print(c.unwrap_or(char::REPLACEMENT_CHARACTER)));
                }
                return;
            }
            // Cut short: one replacement for what came, then this byte on its own.
            self.utf8_needed = 0;
            act(Action::Print(char::REPLACEMENT_CHARACTER));
        }
        match byte {
            CAN | SUB => {
                self.state = State::Ground;
                return;
            }
            ESC if !matches!(self.state, State::OperatingSystemCommand) => {
                self.state = State::Escape;
                return;
            }
            _ => {}
        }
        match self.state {
            State::Ground => self.ground(byte, act),
            State::Escape => self.escape(byte, act),
            State::EscapeIntermediate => match byte {
                0x20..=0x2f => {}
                0x30..=0x7e => {
                    self.state = State::Ground;
                    act(Action::Escape(byte));
                }
                _ => self.control(byte, act),
            },
            State::Csi => self.csi(byte, act),
            State::OperatingSystemCommand => match byte {
                BEL => self.state = State::Ground,
                ESC => self.state = State::OperatingSystemCommandEscape,
                _ => {}
            },
            State::OperatingSystemCommandEscape => {
                self.state = if byte == b'\\' {
                    State::Ground
                } else {
                    State::OperatingSystemCommand
                };
            }
        }
    }

    /// A control character met in any state but an `OSC` string: it acts, the sequence goes on.
    fn control(&mut self, byte: u8, act: &mut impl FnMut(Action)) {
        if byte < 0x20 || byte == 0x7f {
            act(Action::Control(byte));
        }
    }

    fn ground(&mut self, byte: u8, act: &mut impl FnMut(Action)) {
        match byte {
            0x00..=0x1f | 0x7f => act(Action::Control(byte)),
            0x20..=0x7e => act(Action::Print(char::from(byte))),
            _ => {
                let needed = match byte {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf4 => 4,
                    _ => 0,
                };
                if needed == 0 {
                    act(Action::Print(char::REPLACEMENT_CHARACTER));
                } else {
                    self.utf8[0] = byte;
                    self.utf8_len = 1;
                    self.utf8_needed = needed;
                }
            }
        }
    }

    fn escape(&mut self, byte: u8, act: &mut impl FnMut(Action)) {
        match byte {
            b'[' => {
                self.state = State::Csi;
                self.sequence = ControlSequence::EMPTY;
                self.parameter_started = false;
            }
            b']' => self.state = State::OperatingSystemCommand,
            0x20..=0x2f => self.state = State::EscapeIntermediate,
            0x30..=0x7e => {
                self.state = State::Ground;
                act(Action::Escape(byte));
            }
            _ => self.control(byte, act),
        }
    }

    fn csi(&mut self, byte: u8, act: &mut impl FnMut(Action)) {
        let sequence = &mut self.sequence;
        match byte {
            b'0'..=b'9' => {
                if !self.parameter_started {
                    self.parameter_started = true;
                    if sequence.count < MAX_PARAMETERS {
                        sequence.count += 1;
                    }
                }
                if let Some(value) = sequence.parameters[..sequence.count].last_mut() {
                    *value = value
                        .saturating_mul(10)
                        .saturating_add(u16::from(byte - b'0'));
                }
            }
            b';' | b':' => {
                if !self.parameter_started && sequence.count < MAX_PARAMETERS {
                    // An omitted parameter before the separator.
                    sequence.count += 1;
                }
                self.parameter_started = false;
            }
            b'<'..=b'?' => {
                if sequence.count == 0 && !self.parameter_started {
                    sequence.private = byte;
                }
            }
            0x20..=0x2f => sequence.intermediate = byte,
            0x40..=0x7e => {
                sequence.final_byte = byte;
                self.state = State::Ground;
                act(Action::Csi(*sequence));
            }
            _ => self.control(byte, act),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pieces: &[&[u8]]) -> Vec<Action> {
        let mut parser = Parser::new();
        let mut actions = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut |action| actions.push(action));
        }
        actions
    }

    fn csi(actions: &[Action]) -> ControlSequence {
        match actions {
            [Action::Csi(sequence)] => *sequence,
            other => panic!("not one control sequence: {other:?}"),
        }
    }

    #[test]
    fn text_and_controls() {
        assert_eq!(
            parse(&[b"a\r\n\x08\x07"]),
            [
                Action::Print('a'),
                Action::Control(b'\r'),
                Action::Control(b'\n'),
                Action::Control(8),
                Action::Control(7)
            ]
        );
    }

    #[test]
    fn utf8_cut_between_pieces_and_invalid_bytes() {
        let euro = "€".as_bytes();
        assert_eq!(
            parse(&[b"a", &euro[..1], &euro[1..], b"b"]),
            [Action::Print('a'), Action::Print('€'), Action::Print('b')]
        );
        assert_eq!(
            parse(&[b"x\xffy"]),
            [
                Action::Print('x'),
                Action::Print('\u{fffd}'),
                Action::Print('y')
            ]
        );
        assert_eq!(
            parse(&[&euro[..2], b"z"]),
            [Action::Print('\u{fffd}'), Action::Print('z')]
        );
    }

    #[test]
    fn control_sequences_with_parameters() {
        let sequence = csi(&parse(&[b"\x1b[12;34H"]));
        assert_eq!(sequence.parameters(), [12, 34]);
        assert_eq!(sequence.final_byte, b'H');
        let sequence = csi(&parse(&[b"\x1b[", b"H"]));
        assert_eq!(sequence.parameters(), []);
        assert_eq!(sequence.parameter_or(0, 1), 1);
        let sequence = csi(&parse(&[b"\x1b[;5H"]));
        assert_eq!(sequence.parameters(), [0, 5]);
        assert_eq!(sequence.parameter_or(0, 1), 1);
        assert_eq!(sequence.parameter_or(1, 1), 5);
        let sequence = csi(&parse(&[b"\x1b[?25l"]));
        assert_eq!((sequence.private, sequence.parameters()), (b'?', &[25][..]));
        let sequence = csi(&parse(&[b"\x1b[99999999m"]));
        assert_eq!(sequence.parameters(), [u16::MAX]);
    }

    #[test]
    fn escapes_strings_and_cancel() {
        assert_eq!(
            parse(&[b"\x1b7\x1b8"]),
            [Action::Escape(b'7'), Action::Escape(b'8')]
        );
        // A character-set designation: its final byte only.
        assert_eq!(parse(&[b"\x1b(B"]), [Action::Escape(b'B')]);
        // A window title is skipped, ended by BEL or ST.
        assert_eq!(parse(&[b"\x1b]0;title\x07x"]), [Action::Print('x')]);
        assert_eq!(parse(&[b"\x1b]0;t\x1b\\y"]), [Action::Print('y')]);
        // CAN abandons a sequence; a control character inside one acts.
        assert_eq!(parse(&[b"\x1b[1\x18A"]), [Action::Print('A')]);
        let actions = parse(&[b"\x1b[1\r2H"]);
        assert_eq!(actions[0], Action::Control(b'\r'));
        assert_eq!(csi(&actions[1..]).parameters(), [12]);
        // ESC restarts a sequence.
        assert_eq!(csi(&parse(&[b"\x1b[1\x1b[2J"])).parameters(), [2]);
    }
}
