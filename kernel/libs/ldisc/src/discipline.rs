//! [`LineDiscipline`]: the state of one terminal between its device and its readers and writers
//! (settings, input queue, editing state, output column), and what its operations report back.
//! Nothing in it is shared: the kernel's lock around the whole value protects it.

use crate::input::{CAPACITY, InputQueue};
use crate::termios::*;

/// A signal the terminal sends to its foreground process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `VINTR` (^C): `SIGINT`.
    Interrupt,
    /// `VQUIT` (^\): `SIGQUIT`.
    Quit,
    /// `VSUSP` (^Z): `SIGTSTP`.
    Suspend,
}

impl Signal {
    /// The signal's number on Linux x86_64.
    pub const fn number(self) -> u32 {
        match self {
            Self::Interrupt => 2,
            Self::Quit => 3,
            Self::Suspend => 20,
        }
    }
}

/// A change of the output flow control (`IXON`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFlow {
    /// `VSTOP` (^S): output to the device must pause.
    Stopped,
    /// `VSTART` (^Q), or a signal character: output may go on; wake blocked writers.
    Started,
}

/// What one received byte asks of the caller, besides the echo already passed to its sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Send this signal to the terminal's foreground process group.
    pub signal: Option<Signal>,
    /// Input became readable (a line was completed, or a non-canonical byte stored): wake
    /// sleeping readers and pollers.
    pub input_ready: bool,
    /// Output was stopped or restarted.
    pub output_flow: Option<OutputFlow>,
}

/// A duration in tenths of a second, the unit of `VTIME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deciseconds(pub u8);

impl Deciseconds {
    /// The duration in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0 as u64 * 100
    }
}

/// The result of one attempt of [`LineDiscipline::read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The read is complete: this attempt copied `n` bytes (possibly 0: `VMIN` = `VTIME` = 0
    /// with nothing to read, or an empty buffer); `read` returns them with those gathered before.
    Bytes(usize),
    /// End of input (canonical `VEOF` at the start of a line): `read` returns 0.
    EndOfFile,
    /// The read must wait. This attempt copied `copied` bytes (non-canonical, fewer than
    /// `VMIN`); keep them and try again with the rest of the buffer once input arrives. With a
    /// `timeout`, (re)start a timer of that length if none is running or `copied > 0`; when it
    /// expires, `read` returns what it has gathered (0 if nothing). A non-blocking read returns
    /// what it has gathered, or `EAGAIN` if nothing; an interrupted one, likewise or `EINTR`.
    WouldBlock {
        copied: usize,
        timeout: Option<Deciseconds>,
    },
}

/// How much of the line being edited an erase character removes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Erase {
    /// `VERASE`: one character.
    Character,
    /// `VWERASE`: trailing non-word bytes, then one word.
    Word,
    /// `VKILL`: the whole line.
    Line,
}

/// Where echo and output bytes go: the device.
type Sink<'a> = &'a mut dyn FnMut(&[u8]);

/// Control characters (echoed as `^X` under `ECHOCTL`). Only ASCII's: bytes from 0x80 on are
/// left alone so that UTF-8 echoes unchanged.
fn is_control(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f
}

/// A UTF-8 continuation byte.
fn is_continuation(byte: u8) -> bool {
    byte & 0xc0 == 0x80
}

/// Bytes `VWERASE` treats as part of a word: ASCII letters, digits and `_`, and every non-ASCII
/// byte (letters of other scripts, in UTF-8 or Latin-1).
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// One terminal's line discipline: its settings, its input queue and its output column.
pub struct LineDiscipline {
    termios: Termios,
    input: InputQueue,
    /// The previous byte was `VLNEXT`: take the next one literally.
    literal_next: bool,
    /// `VSTOP` arrived (under `IXON`) and no `VSTART` since.
    output_stopped: bool,
    /// The device's cursor column, as far as output and echo tell.
    column: usize,
    /// The column where the echo of the line being edited began (for erasing tabs).
    line_start_column: usize,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        Self::new()
    }
}

impl LineDiscipline {
    /// A terminal with Linux's default settings and no input. It is about 5 KiB: `const`, so
    /// that the kernel can build it in a static.
    pub const fn new() -> Self {
        Self {
            termios: Termios::linux_default(),
            input: InputQueue::new(),
            literal_next: false,
            output_stopped: false,
            column: 0,
            line_start_column: 0,
        }
    }

    /// The current settings (`TCGETS`).
    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    /// Replaces the settings (`TCSETS`; `TCSETSF` is [`Self::flush_input`] first). Switching
    /// canonical mode off makes everything held readable at once, the partial line included;
    /// switching it on makes what is held one complete line. Turning `IXON` off restarts
    /// stopped output: check [`Self::output_stopped`] afterwards to wake writers.
    pub fn set_termios(&mut self, termios: &Termios) {
        let old = self.termios;
        self.termios = *termios;
        if old.is_canonical() != termios.is_canonical() {
            self.input.remark(termios.is_canonical());
            self.literal_next = false;
        }
        if !self.iflag(IXON) {
            self.output_stopped = false;
        }
    }

    /// Whether output to the device is stopped (`VSTOP` under `IXON`). Writers should wait
    /// until [`OutputFlow::Started`]; this crate itself never holds output back.
    pub fn output_stopped(&self) -> bool {
        self.output_stopped
    }

    /// Drops all input, read or not (`TCFLSH` with `TCIFLUSH`).
    pub fn flush_input(&mut self) {
        self.input.clear();
        self.literal_next = false;
    }

    /// Bytes a read could return now without waiting (`FIONREAD`): in canonical mode those of
    /// complete lines, end-of-file markers not counted.
    pub fn readable_bytes(&self) -> usize {
        if self.termios.is_canonical() {
            self.input.complete_data_len()
        } else {
            self.input.len()
        }
    }

    /// Whether `poll` reports the terminal readable: a complete line (an end-of-file one too)
    /// in canonical mode; otherwise any byte, or `VMIN` bytes when `VTIME` is 0.
    pub fn is_readable(&self) -> bool {
        if self.termios.is_canonical() {
            return self.input.complete_len() > 0;
        }
        let (min, time) = (self.termios.c_cc[VMIN], self.termios.c_cc[VTIME]);
        let wanted = if time == 0 && min > 0 { min } else { 1 };
        self.input.len() >= usize::from(wanted)
    }

    /// Processes one byte from the device: input mapping, signals, flow control, editing and
    /// storage. The echo, already output-processed, goes to `echo` (possibly in several
    /// pieces, possibly none); write it to the device as it is.
    pub fn receive(&mut self, byte: u8, echo: &mut impl FnMut(&[u8])) -> Received {
        self.receive_byte(byte, echo)
    }

    /// One attempt of a `read(2)` into `out`, which follows the `gathered` bytes earlier
    /// attempts of the same read copied (0 on the first). In canonical mode it copies at most
    /// one line; non-canonically it applies `VMIN` and `VTIME`, and the caller does the waiting
    /// that [`ReadOutcome::WouldBlock`] asks for.
    pub fn read(&mut self, out: &mut [u8], gathered: usize) -> ReadOutcome {
        if out.is_empty() {
            return ReadOutcome::Bytes(0);
        }
        if self.termios.is_canonical() {
            self.read_line(out)
        } else {
            self.read_raw(out, gathered)
        }
    }

    /// Applies the output modes to `bytes` written to the terminal and hands the result to
    /// `out` (in pieces: runs of `bytes` and the replacements between them).
    pub fn process_output(&mut self, bytes: &[u8], out: &mut impl FnMut(&[u8])) {
        self.emit(bytes, out);
    }

    fn iflag(&self, flag: u32) -> bool {
        self.termios.c_iflag & flag != 0
    }

    fn oflag(&self, flag: u32) -> bool {
        self.termios.c_oflag & flag != 0
    }

    fn lflag(&self, flag: u32) -> bool {
        self.termios.c_lflag & flag != 0
    }

    /// Whether `byte` is the control character at `index` (never a disabled one).
    fn is_char(&self, index: usize, byte: u8) -> bool {
        let value = self.termios.c_cc[index];
        value != DISABLED && value == byte
    }

    fn receive_byte(&mut self, byte: u8, echo: Sink<'_>) -> Received {
        let mut received = Received::default();
        let mut byte = if self.iflag(ISTRIP) {
            byte & 0x7f
        } else {
            byte
        };
        if self.literal_next {
            self.literal_next = false;
            received.input_ready = self.store(byte, echo) && !self.termios.is_canonical();
            return received;
        }
        if self.iflag(IXON) {
            if self.is_char(VSTART, byte) {
                received.output_flow = self.restart_output();
                return received;
            }
            if self.is_char(VSTOP, byte) {
                if !self.output_stopped {
                    self.output_stopped = true;
                    received.output_flow = Some(OutputFlow::Stopped);
                }
                return received;
            }
        }
        if self.lflag(ISIG) {
            let signal = if self.is_char(VINTR, byte) {
                Some(Signal::Interrupt)
            } else if self.is_char(VQUIT, byte) {
                Some(Signal::Quit)
            } else if self.is_char(VSUSP, byte) {
                Some(Signal::Suspend)
            } else {
                None
            };
            if signal.is_some() {
                if !self.lflag(NOFLSH) {
                    self.flush_input();
                }
                if self.iflag(IXON) {
                    received.output_flow = self.restart_output();
                }
                if self.lflag(ECHO) {
                    self.echo_char(byte, echo);
                }
                received.signal = signal;
                return received;
            }
        }
        if byte == b'\r' {
            if self.iflag(IGNCR) {
                return received;
            }
            if self.iflag(ICRNL) {
                byte = b'\n';
            }
        } else if byte == b'\n' && self.iflag(INLCR) {
            byte = b'\r';
        }
        if self.termios.is_canonical() {
            let extended = self.lflag(IEXTEN);
            if self.is_char(VERASE, byte) {
                self.erase(Erase::Character, byte, echo);
                return received;
            }
            if extended && self.is_char(VWERASE, byte) {
                self.erase(Erase::Word, byte, echo);
                return received;
            }
            if self.is_char(VKILL, byte) {
                self.erase(Erase::Line, byte, echo);
                return received;
            }
            if extended && self.is_char(VLNEXT, byte) {
                self.literal_next = true;
                if self.lflag(ECHO) && self.lflag(ECHOCTL) {
                    // A placeholder the next character's echo overwrites.
                    self.emit(b"^\x08", echo);
                }
                return received;
            }
            if extended && self.lflag(ECHO) && self.is_char(VREPRINT, byte) {
                self.reprint(byte, echo);
                return received;
            }
            let terminator = byte == b'\n'
                || self.is_char(VEOF, byte)
                || self.is_char(VEOL, byte)
                || (extended && self.is_char(VEOL2, byte));
            if terminator {
                received.input_ready = self.end_line(byte, echo);
                return received;
            }
        }
        received.input_ready = self.store(byte, echo) && !self.termios.is_canonical();
        received
    }

    /// Restarts stopped output; the change, if there was one.
    fn restart_output(&mut self) -> Option<OutputFlow> {
        let was_stopped = core::mem::replace(&mut self.output_stopped, false);
        was_stopped.then_some(OutputFlow::Started)
    }

    /// Stores an ordinary byte and echoes it; false if the queue has no room for it (Linux
    /// keeps the last slot for a line terminator).
    fn store(&mut self, byte: u8, echo: Sink<'_>) -> bool {
        if self.input.len() >= CAPACITY - 1 {
            return false;
        }
        if self.lflag(ECHO) {
            if self.termios.is_canonical() && self.input.editing_len() == 0 {
                self.line_start_column = self.column;
            }
            self.echo_char(byte, echo);
        }
        self.input.push(byte);
        true
    }

    /// Completes the line being edited with `terminator` (canonical mode); false if the queue
    /// is full.
    fn end_line(&mut self, terminator: u8, echo: Sink<'_>) -> bool {
        if self.input.len() >= CAPACITY {
            return false;
        }
        let end_of_file = terminator != b'\n' && self.is_char(VEOF, terminator);
        if terminator == b'\n' {
            if self.lflag(ECHO) || self.lflag(ECHONL) {
                self.emit(b"\n", echo);
            }
        } else if !end_of_file && self.lflag(ECHO) {
            if self.input.editing_len() == 0 {
                self.line_start_column = self.column;
            }
            self.echo_char(terminator, echo);
        }
        self.input.push_line_end(terminator, end_of_file);
        true
    }

    /// Echoes a character as the user typed it: `^X` for a control character under `ECHOCTL`
    /// (tab excepted).
    fn echo_char(&mut self, byte: u8, echo: Sink<'_>) {
        if self.lflag(ECHOCTL) && is_control(byte) && byte != b'\t' {
            self.emit(&[b'^', byte ^ 0x40], echo);
        } else {
            self.emit(&[byte], echo);
        }
    }

    /// `VERASE`, `VWERASE` or `VKILL` (`typed`): shortens the line being edited and erases the
    /// removed characters from the screen.
    fn erase(&mut self, kind: Erase, typed: u8, echo: Sink<'_>) {
        if self.input.editing_len() == 0 {
            return;
        }
        if kind == Erase::Line {
            if !self.lflag(ECHO) {
                self.input.truncate_editing(0);
                return;
            }
            if !(self.lflag(ECHOK) && self.lflag(ECHOKE) && self.lflag(ECHOE)) {
                self.input.truncate_editing(0);
                self.echo_char(typed, echo);
                if self.lflag(ECHOK) {
                    self.emit(b"\n", echo);
                }
                return;
            }
        }
        let utf8 = self.iflag(IUTF8);
        let mut seen_word = false;
        while self.input.editing_len() > 0 {
            // One character: under IUTF8, a lead byte with its continuation bytes.
            let mut start = self.input.editing_len() - 1;
            while utf8 && start > 0 && is_continuation(self.input.editing_byte(start)) {
                start -= 1;
            }
            let erased = self.input.editing_byte(start);
            if utf8 && is_continuation(erased) {
                break; // never erase part of a character
            }
            if kind == Erase::Word {
                if is_word_byte(erased) {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            self.input.truncate_editing(start);
            if self.lflag(ECHO) {
                self.echo_erasure(kind, typed, erased, echo);
            }
            if kind == Erase::Character {
                break;
            }
        }
    }

    /// The echo of one erased character `erased` (now removed from the line being edited).
    fn echo_erasure(&mut self, kind: Erase, typed: u8, erased: u8, echo: Sink<'_>) {
        if kind == Erase::Character && !self.lflag(ECHOE) {
            self.echo_char(typed, echo);
        } else if erased == b'\t' {
            self.echo_tab_erasure(echo);
        } else {
            let echoctl = self.lflag(ECHOCTL);
            if is_control(erased) && echoctl {
                self.emit(b"\x08 \x08", echo); // the caret of "^X"
            }
            if !is_control(erased) || echoctl {
                self.emit(b"\x08 \x08", echo);
            }
        }
    }

    /// Moves the cursor back over an erased tab: to the column the tab started from, found by
    /// measuring the line back to the previous tab (or to where its echo began).
    fn echo_tab_erasure(&mut self, echo: Sink<'_>) {
        let mut width = 0;
        let mut after_tab = false;
        for index in (0..self.input.editing_len()).rev() {
            let byte = self.input.editing_byte(index);
            if byte == b'\t' {
                after_tab = true;
                break;
            }
            if is_control(byte) {
                if self.lflag(ECHOCTL) {
                    width += 2;
                }
            } else if !(self.iflag(IUTF8) && is_continuation(byte)) {
                width += 1;
            }
        }
        if !after_tab {
            width += self.line_start_column;
        }
        let backspaces = (8 - width % 8).min(self.column);
        for _ in 0..backspaces {
            self.emit(b"\x08", echo);
        }
    }

    /// `VREPRINT`: echoes the character, a newline, and the line being edited again.
    fn reprint(&mut self, typed: u8, echo: Sink<'_>) {
        self.echo_char(typed, echo);
        self.emit(b"\n", echo);
        for index in 0..self.input.editing_len() {
            let byte = self.input.editing_byte(index);
            self.echo_char(byte, echo);
        }
    }

    /// Canonical read: the first complete line, or as much of it as fits.
    fn read_line(&mut self, out: &mut [u8]) -> ReadOutcome {
        let Some(line) = self.input.first_line() else {
            return ReadOutcome::WouldBlock {
                copied: 0,
                timeout: None,
            };
        };
        if line.data_len == 0 {
            self.input.consume(line.stored_len);
            return ReadOutcome::EndOfFile;
        }
        let copied = line.data_len.min(out.len());
        self.input.peek(&mut out[..copied]);
        // A line read whole takes its end-of-file marker with it.
        let whole = copied == line.data_len;
        self.input
            .consume(if whole { line.stored_len } else { copied });
        ReadOutcome::Bytes(copied)
    }

    /// Non-canonical read, by `VMIN` and `VTIME`.
    fn read_raw(&mut self, out: &mut [u8], gathered: usize) -> ReadOutcome {
        let copied = self.input.len().min(out.len());
        self.input.peek(&mut out[..copied]);
        self.input.consume(copied);
        let min = usize::from(self.termios.c_cc[VMIN]);
        let time = self.termios.c_cc[VTIME];
        let timer = (time > 0).then_some(Deciseconds(time));
        if min == 0 {
            // VTIME alone: a timer for the first byte; any byte completes the read.
            return if copied > 0 || timer.is_none() {
                ReadOutcome::Bytes(copied)
            } else {
                ReadOutcome::WouldBlock {
                    copied: 0,
                    timeout: timer,
                }
            };
        }
        let total = gathered + copied;
        if total >= min.min(gathered + out.len()) {
            return ReadOutcome::Bytes(copied);
        }
        // VMIN: wait without a timer for the first byte, then (with VTIME) between bytes.
        ReadOutcome::WouldBlock {
            copied,
            timeout: if total == 0 { None } else { timer },
        }
    }

    /// Writes `bytes` to the device through the output modes, keeping track of the column.
    fn emit(&mut self, bytes: &[u8], out: Sink<'_>) {
        let post = self.oflag(OPOST);
        let mut run_start = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            let replacement: Option<&[u8]> = match byte {
                b'\n' if post && self.oflag(ONLCR) => Some(b"\r\n"),
                b'\r' if post && self.oflag(OCRNL) => Some(b"\n"),
                _ => None,
            };
            self.advance_column(byte);
            if let Some(replacement) = replacement {
                if run_start < index {
                    out(&bytes[run_start..index]);
                }
                out(replacement);
                run_start = index + 1;
            }
        }
        if run_start < bytes.len() {
            out(&bytes[run_start..]);
        }
    }

    /// The column after writing `byte` (before output mapping).
    fn advance_column(&mut self, byte: u8) {
        let post = self.oflag(OPOST);
        match byte {
            b'\n' if post && self.oflag(ONLCR) => self.return_to_line_start(),
            b'\n' => {}
            // Mapped to a newline, a carriage return only moves down.
            b'\r' if post && self.oflag(OCRNL) => {}
            b'\r' => self.return_to_line_start(),
            b'\t' => self.column = (self.column | 7) + 1,
            0x08 => self.column = self.column.saturating_sub(1),
            _ if is_control(byte) => {}
            _ if self.iflag(IUTF8) && is_continuation(byte) => {}
            _ => self.column += 1,
        }
    }

    fn return_to_line_start(&mut self) {
        self.column = 0;
        self.line_start_column = 0;
    }
}
