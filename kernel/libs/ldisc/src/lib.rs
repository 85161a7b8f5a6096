//! The terminal line discipline: what stands between a terminal device (the serial line) and the
//! processes that read and write it, with Linux's semantics (its `N_TTY` discipline).
//!
//! This crate owns the pure logic of one terminal: its settings ([`Termios`], Linux's structure
//! and bit values), the queue of input not yet read, line editing, echo, the choice of signals,
//! and output processing. It does no I/O, sleeps never and takes no locks: the kernel keeps one
//! [`LineDiscipline`] per terminal behind a lock of its own, feeds it the bytes the device
//! receives, writes the bytes it hands back to the device, sends the signals it names and puts
//! readers to sleep when it says so. It allocates nothing; its state is a fixed ~5 KiB and
//! [`LineDiscipline::new`] is `const`, so the kernel can place it in a static.
//!
//! # Input
//!
//! [`LineDiscipline::receive`] takes one byte from the device and, in Linux's order:
//!
//! 1. strips it to 7 bits (`ISTRIP`); after `VLNEXT` (^V) stores it literally and stops here;
//! 2. with `IXON`, consumes `VSTOP` (^S) and `VSTART` (^Q), reporting an [`OutputFlow`] change;
//! 3. with `ISIG`, turns `VINTR` (^C), `VQUIT` (^\) and `VSUSP` (^Z) into a [`Signal`] for the
//!    foreground process group, flushing all input unless `NOFLSH` (and echoing `^C`);
//! 4. maps carriage return and newline (`IGNCR`, `ICRNL`, `INLCR`);
//! 5. in canonical mode (`ICANON`), edits the line: `VERASE` (^?) removes a character,
//!    `VWERASE` (^W) a word, `VKILL` (^U) the line; `VREPRINT` (^R) echoes the line again;
//!    newline, `VEOL` and `VEOL2` complete the line (the terminator is part of it); `VEOF` (^D)
//!    completes it without a terminator, so that at the start of a line a read returns 0;
//! 6. otherwise stores the byte.
//!
//! The echo (with `ECHO`; `ECHONL` echoes newlines alone) goes to a sink the caller passes,
//! already through the output modes: `ECHOCTL` shows control characters as `^X`, `ECHOE` erases
//! with backspace-space-backspace (a tab by moving back to where it started), `ECHOKE` erases a
//! killed line character by character, `ECHOK` alone echoes the kill character and a newline.
//! A [`Received`] tells what else to do: send a signal, wake readers, restart writers.
//!
//! The queue holds 4096 bytes, as Linux's. An ordinary byte is dropped, without echo, once 4095
//! are held; the last slot is kept for a line terminator, so a canonical line has at most 4095
//! bytes before its newline and can always be completed.
//!
//! # Reading
//!
//! [`LineDiscipline::read`] is one attempt of a `read(2)`. In canonical mode it returns at most
//! one line (a short buffer takes the line's start and leaves the rest for the next read), and an
//! empty line that `VEOF` completed is [`ReadOutcome::EndOfFile`]. Otherwise bytes are readable
//! as soon as they arrive, and `VMIN`/`VTIME` decide when a read is complete:
//!
//! | `VMIN` | `VTIME` | the read returns                                                      |
//! |--------|---------|-----------------------------------------------------------------------|
//! | 0      | 0       | what is there, possibly nothing, at once                              |
//! | 0      | t > 0   | once a byte is there, or 0 after t tenths of a second                 |
//! | n > 0  | 0       | once it has min(n, buffer) bytes                                      |
//! | n > 0  | t > 0   | as above, or t after the latest byte (the first has no time limit)    |
//!
//! The caller does the waiting: [`ReadOutcome::WouldBlock`] says how long. `FIONREAD` is
//! [`LineDiscipline::readable_bytes`] and `poll`'s readiness [`LineDiscipline::is_readable`].
//!
//! Changing the settings ([`LineDiscipline::set_termios`]) keeps the input: leaving canonical
//! mode makes the partial line readable at once, and entering it makes whatever is held a
//! complete line, as Linux does.
//!
//! # Output
//!
//! [`LineDiscipline::process_output`] applies the output modes to what processes write: with
//! `OPOST`, `ONLCR` turns newline into carriage return and newline and `OCRNL` carriage return
//! into newline. It also follows the cursor's column, which erasing a tab needs. Output flow
//! control is the caller's: while [`LineDiscipline::output_stopped`], writers should wait.
//!
//! # Differences from Linux
//!
//! - Only ASCII control characters (below 0x20, and 0x7f) count as control characters for
//!   `ECHOCTL`; Linux's character table also classes 0x80-0x9f as control, which bytes of UTF-8
//!   characters can be.
//! - A canonical read whose buffer holds exactly the bytes before a `VEOF` terminator also
//!   consumes the terminator (POSIX: "the EOF is discarded"); Linux leaves it for the next read,
//!   which then returns 0.
//! - A full queue drops further ordinary bytes instead of leaving them in the device's buffer;
//!   signal, flow-control and editing characters still act.
//! - Not implemented (stored, no effect): `IXANY`, `IXOFF`, `IMAXBEL`, `IUCLC`, `PARMRK` and
//!   parity, `OLCUC`, `ONOCR`, `ONLRET`, delays and tab expansion, `ECHOPRT`, `FLUSHO`,
//!   `PENDIN`, `EXTPROC`, `VDISCARD`; `TOSTOP` is the kernel's to enforce.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod discipline;
mod input;
pub mod termios;

pub use discipline::{Deciseconds, LineDiscipline, OutputFlow, ReadOutcome, Received, Signal};
pub use termios::{Termios, Winsize};

#[cfg(test)]
mod tests;
