//! Host tests: bytes typed at a terminal with Linux's default settings (or changed ones), the
//! echo they produce, the signals they raise and what reads return.

use super::*;
use crate::termios::*;
use core::mem::{align_of, offset_of, size_of};

/// Types `bytes`; returns the echo and what each byte asked for.
fn type_bytes(tty: &mut LineDiscipline, bytes: &[u8]) -> (Vec<u8>, Vec<Received>) {
    let mut echo = Vec::new();
    let received = bytes
        .iter()
        .map(|&byte| tty.receive(byte, &mut |piece: &[u8]| echo.extend_from_slice(piece)))
        .collect();
    (echo, received)
}

/// Types `bytes` and returns only the echo.
fn echo_of(tty: &mut LineDiscipline, bytes: &[u8]) -> Vec<u8> {
    type_bytes(tty, bytes).0
}

/// One read attempt with a buffer of `size` bytes: the outcome and the bytes copied.
fn read(tty: &mut LineDiscipline, size: usize) -> (ReadOutcome, Vec<u8>) {
    let mut buffer = vec![0; size];
    let outcome = tty.read(&mut buffer, 0);
    let copied = match outcome {
        ReadOutcome::Bytes(n) | ReadOutcome::WouldBlock { copied: n, .. } => n,
        ReadOutcome::EndOfFile => 0,
    };
    buffer.truncate(copied);
    (outcome, buffer)
}

/// Reads with a large buffer and expects `expected` bytes.
fn read_expect(tty: &mut LineDiscipline, expected: &[u8]) {
    let (outcome, bytes) = read(tty, 8192);
    assert_eq!(outcome, ReadOutcome::Bytes(expected.len()));
    assert_eq!(bytes, expected);
}

fn output_of(tty: &mut LineDiscipline, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    tty.process_output(bytes, &mut |piece: &[u8]| out.extend_from_slice(piece));
    out
}

/// A terminal with settings changed by `change`.
fn tty_with(change: impl FnOnce(&mut Termios)) -> LineDiscipline {
    let mut tty = LineDiscipline::new();
    let mut termios = *tty.termios();
    change(&mut termios);
    tty.set_termios(&termios);
    tty
}

/// Non-canonical mode with `VMIN` and `VTIME`, echo off.
fn raw_tty(min: u8, time: u8) -> LineDiscipline {
    tty_with(|t| {
        t.c_lflag &= !(ICANON | ECHO);
        t.c_cc[VMIN] = min;
        t.c_cc[VTIME] = time;
    })
}

const BLOCKED: ReadOutcome = ReadOutcome::WouldBlock {
    copied: 0,
    timeout: None,
};

#[test]
fn termios_has_linux_layout() {
    assert_eq!(size_of::<Termios>(), 36);
    assert_eq!(align_of::<Termios>(), 4);
    assert_eq!(offset_of!(Termios, c_iflag), 0);
    assert_eq!(offset_of!(Termios, c_oflag), 4);
    assert_eq!(offset_of!(Termios, c_cflag), 8);
    assert_eq!(offset_of!(Termios, c_lflag), 12);
    assert_eq!(offset_of!(Termios, c_line), 16);
    assert_eq!(offset_of!(Termios, c_cc), 17);
    assert_eq!(size_of::<Winsize>(), 8);
    assert_eq!(offset_of!(Winsize, ws_ypixel), 6);
}

#[test]
fn user_memory_bytes_match_the_layout() {
    let mut termios = Termios {
        c_line: 7,
        ..Termios::default()
    };
    termios.c_cc[VEOL2] = 0x42;
    let bytes = termios.to_bytes();
    assert_eq!(bytes.len(), size_of::<Termios>());
    assert_eq!(bytes[..4], 0x500u32.to_le_bytes());
    assert_eq!(bytes[12..16], 0x8a3bu32.to_le_bytes());
    assert_eq!(bytes[16], 7);
    assert_eq!(bytes[17 + VEOL2], 0x42);
    assert_eq!(Termios::from_bytes(&bytes), termios);
    let winsize = Winsize {
        ws_row: 0x1234,
        ws_col: 80,
        ws_xpixel: 1,
        ws_ypixel: 0xffff,
    };
    let bytes = winsize.to_bytes();
    assert_eq!(bytes, [0x34, 0x12, 80, 0, 1, 0, 0xff, 0xff]);
    assert_eq!(Winsize::from_bytes(&bytes), winsize);
}

#[test]
fn defaults_are_linux_fresh_tty() {
    let t = Termios::default();
    // `stty -g` on Linux: iflag 500, oflag 5, lflag 8a3b; cflag B38400|CS8|CREAD|HUPCL.
    assert_eq!(t.c_iflag, 0x500);
    assert_eq!(t.c_oflag, 0x5);
    assert_eq!(t.c_cflag, 0x4bf);
    assert_eq!(t.c_lflag, 0x8a3b);
    assert_eq!(t.c_line, 0);
    assert_eq!(
        t.c_cc,
        [
            0x03, 0x1c, 0x7f, 0x15, 0x04, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0,
            0, 0
        ]
    );
    assert_eq!(LineDiscipline::new().termios(), &t);
    let w = Winsize::default();
    assert_eq!(
        (w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel),
        (24, 80, 0, 0)
    );
}

#[test]
fn signal_numbers_are_linux() {
    assert_eq!(Signal::Interrupt.number(), 2);
    assert_eq!(Signal::Quit.number(), 3);
    assert_eq!(Signal::Suspend.number(), 20);
}

#[test]
fn canonical_line_is_readable_at_newline() {
    let mut tty = LineDiscipline::new();
    let (echo, received) = type_bytes(&mut tty, b"ls -l");
    assert_eq!(echo, b"ls -l");
    assert!(received.iter().all(|r| *r == Received::default()));
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
    assert!(!tty.is_readable());
    assert_eq!(tty.readable_bytes(), 0);

    // The terminal sends carriage return for Enter: ICRNL makes it a newline, echoed as CR LF.
    let (echo, received) = type_bytes(&mut tty, b"\r");
    assert_eq!(echo, b"\r\n");
    assert!(received[0].input_ready);
    assert!(tty.is_readable());
    assert_eq!(tty.readable_bytes(), 6);
    read_expect(&mut tty, b"ls -l\n");
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
}

#[test]
fn canonical_read_returns_one_line_at_a_time() {
    let mut tty = LineDiscipline::new();
    echo_of(&mut tty, b"one\ntwo\nthr");
    assert_eq!(tty.readable_bytes(), 8);
    read_expect(&mut tty, b"one\n");
    // A short buffer takes the start of the line; the rest waits for the next read.
    let (outcome, bytes) = read(&mut tty, 2);
    assert_eq!(
        (outcome, bytes.as_slice()),
        (ReadOutcome::Bytes(2), &b"tw"[..])
    );
    read_expect(&mut tty, b"o\n");
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
    // An empty buffer reads nothing and consumes nothing.
    echo_of(&mut tty, b"\n");
    assert_eq!(read(&mut tty, 0).0, ReadOutcome::Bytes(0));
    read_expect(&mut tty, b"thr\n");
}

#[test]
fn erase_echoes_backspace_space_backspace() {
    let mut tty = LineDiscipline::new();
    assert_eq!(
        echo_of(&mut tty, b"cat\x7f\x7fp"),
        b"cat\x08 \x08\x08 \x08p"
    );
    // Erasing an empty line does nothing, and never reaches into completed lines.
    echo_of(&mut tty, b"\n");
    assert_eq!(echo_of(&mut tty, b"\x7f\x7f"), b"");
    echo_of(&mut tty, b"x\n");
    read_expect(&mut tty, b"cp\n");
    read_expect(&mut tty, b"x\n");
}

#[test]
fn erase_of_control_character_removes_its_caret() {
    let mut tty = LineDiscipline::new();
    assert_eq!(echo_of(&mut tty, b"a\x01"), b"a^A");
    assert_eq!(echo_of(&mut tty, b"\x7f"), b"\x08 \x08\x08 \x08");
    // Without ECHOCTL the control character was echoed as itself, with no width.
    let mut tty = tty_with(|t| t.c_lflag &= !ECHOCTL);
    assert_eq!(echo_of(&mut tty, b"a\x01"), b"a\x01");
    assert_eq!(echo_of(&mut tty, b"\x7f"), b"");
}

#[test]
fn erase_without_echoe_echoes_the_erase_character() {
    let mut tty = tty_with(|t| t.c_lflag &= !ECHOE);
    assert_eq!(echo_of(&mut tty, b"ab\x7f"), b"ab^?");
    echo_of(&mut tty, b"\n");
    read_expect(&mut tty, b"a\n");
}

#[test]
fn erase_of_tab_moves_back_to_where_it_started() {
    let mut tty = LineDiscipline::new();
    // A prompt of two columns, then a tab to column 8: erasing it goes back 6 columns.
    output_of(&mut tty, b"$ ");
    assert_eq!(echo_of(&mut tty, b"\t\x7f"), b"\t\x08\x08\x08\x08\x08\x08");
    // After "abc" (column 5), a tab to column 8 and "x": erase both.
    assert_eq!(
        echo_of(&mut tty, b"abc\tx\x7f\x7f"),
        b"abc\tx\x08 \x08\x08\x08\x08"
    );
    // Measured from a previous tab: "\tab\t" puts the second tab at column 10 -> 16.
    let mut tty = LineDiscipline::new();
    echo_of(&mut tty, b"\tab\t");
    assert_eq!(echo_of(&mut tty, b"\x7f"), b"\x08".repeat(6));
}

#[test]
fn erase_takes_a_whole_utf8_character_under_iutf8() {
    let mut tty = tty_with(|t| t.c_iflag |= IUTF8);
    assert_eq!(echo_of(&mut tty, "aé".as_bytes()), "aé".as_bytes());
    assert_eq!(echo_of(&mut tty, b"\x7f"), b"\x08 \x08");
    echo_of(&mut tty, b"\n");
    read_expect(&mut tty, b"a\n");
}

#[test]
fn kill_erases_the_line() {
    let mut tty = LineDiscipline::new();
    assert_eq!(
        echo_of(&mut tty, b"abc\x15"),
        b"abc\x08 \x08\x08 \x08\x08 \x08"
    );
    echo_of(&mut tty, b"d\n");
    read_expect(&mut tty, b"d\n");
    // ECHOK without ECHOKE: the kill character and a newline.
    let mut tty = tty_with(|t| t.c_lflag &= !ECHOKE);
    assert_eq!(echo_of(&mut tty, b"abc\x15"), b"abc^U\r\n");
    echo_of(&mut tty, b"d\n");
    read_expect(&mut tty, b"d\n");
    // Neither: the kill character alone.
    let mut tty = tty_with(|t| t.c_lflag &= !(ECHOKE | ECHOK));
    assert_eq!(echo_of(&mut tty, b"abc\x15"), b"abc^U");
}

#[test]
fn word_erase_removes_trailing_blanks_and_one_word() {
    let mut tty = LineDiscipline::new();
    echo_of(&mut tty, b"foo bar  ");
    assert_eq!(echo_of(&mut tty, b"\x17"), b"\x08 \x08".repeat(5));
    echo_of(&mut tty, b"x-y_z\x17\n");
    read_expect(&mut tty, b"foo x-\n");
    // Without IEXTEN ^W is an ordinary character.
    let mut tty = tty_with(|t| t.c_lflag &= !IEXTEN);
    echo_of(&mut tty, b"ab\x17\n");
    read_expect(&mut tty, b"ab\x17\n");
}

#[test]
fn interrupt_signals_echoes_and_flushes() {
    let mut tty = LineDiscipline::new();
    echo_of(&mut tty, b"done\nsleep 10");
    let (echo, received) = type_bytes(&mut tty, b"\x03");
    assert_eq!(echo, b"^C");
    assert_eq!(received[0].signal, Some(Signal::Interrupt));
    // All input is gone: the unread line and the partial one.
    assert_eq!(tty.readable_bytes(), 0);
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
    echo_of(&mut tty, b"x\n");
    read_expect(&mut tty, b"x\n");
}

#[test]
fn quit_and_suspend_signal_too() {
    let mut tty = LineDiscipline::new();
    let (echo, received) = type_bytes(&mut tty, b"\x1c\x1a");
    assert_eq!(echo, b"^\\^Z");
    assert_eq!(received[0].signal, Some(Signal::Quit));
    assert_eq!(received[1].signal, Some(Signal::Suspend));
}

#[test]
fn noflsh_keeps_input_on_signal() {
    let mut tty = tty_with(|t| t.c_lflag |= NOFLSH);
    let (_, received) = type_bytes(&mut tty, b"ab\n\x03");
    assert_eq!(received[3].signal, Some(Signal::Interrupt));
    read_expect(&mut tty, b"ab\n");
}

#[test]
fn without_isig_control_characters_are_data() {
    let mut tty = tty_with(|t| t.c_lflag &= !ISIG);
    let (echo, received) = type_bytes(&mut tty, b"\x03\n");
    assert_eq!(echo, b"^C\r\n");
    assert_eq!(received[0].signal, None);
    read_expect(&mut tty, b"\x03\n");
}

#[test]
fn eof_at_line_start_is_end_of_input() {
    let mut tty = LineDiscipline::new();
    let (echo, received) = type_bytes(&mut tty, b"\x04");
    assert_eq!(echo, b"");
    assert!(received[0].input_ready);
    assert!(tty.is_readable());
    assert_eq!(tty.readable_bytes(), 0);
    assert_eq!(read(&mut tty, 100).0, ReadOutcome::EndOfFile);
    // The terminal goes on after it.
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
    echo_of(&mut tty, b"more\n");
    read_expect(&mut tty, b"more\n");
}

#[test]
fn eof_mid_line_passes_the_line_without_newline() {
    let mut tty = LineDiscipline::new();
    assert_eq!(echo_of(&mut tty, b"abc\x04"), b"abc");
    assert_eq!(tty.readable_bytes(), 3);
    read_expect(&mut tty, b"abc");
    // The marker went with the line: no spurious end of input.
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
    // Read in pieces, likewise.
    echo_of(&mut tty, b"abc\x04");
    assert_eq!(read(&mut tty, 2).1, b"ab");
    read_expect(&mut tty, b"c");
    assert_eq!(read(&mut tty, 100).0, BLOCKED);
    // ^D^D: the line, then end of input.
    echo_of(&mut tty, b"xy\x04\x04");
    read_expect(&mut tty, b"xy");
    assert_eq!(read(&mut tty, 100).0, ReadOutcome::EndOfFile);
}

#[test]
fn eol_characters_end_lines() {
    let mut tty = tty_with(|t| {
        t.c_cc[VEOL] = b';';
        t.c_cc[VEOL2] = b'|';
    });
    assert_eq!(echo_of(&mut tty, b"a;b|"), b"a;b|");
    read_expect(&mut tty, b"a;");
    read_expect(&mut tty, b"b|");
}

#[test]
fn literal_next_takes_the_next_byte_as_data() {
    let mut tty = LineDiscipline::new();
    let (echo, received) = type_bytes(&mut tty, b"\x16\x03\x16\x7f\n");
    assert_eq!(echo, b"^\x08^C^\x08^?\r\n");
    assert!(received.iter().all(|r| r.signal.is_none()));
    read_expect(&mut tty, b"\x03\x7f\n");
}

#[test]
fn reprint_echoes_the_line_again() {
    let mut tty = LineDiscipline::new();
    assert_eq!(echo_of(&mut tty, b"ab\x01\x12"), b"ab^A^R\r\nab^A");
    echo_of(&mut tty, b"\n");
    read_expect(&mut tty, b"ab\x01\n");
}

#[test]
fn echo_flags() {
    let mut tty = tty_with(|t| t.c_lflag &= !ECHO);
    assert_eq!(echo_of(&mut tty, b"secret\x7f\x15pw\n"), b"");
    read_expect(&mut tty, b"pw\n");
    let mut tty = tty_with(|t| t.c_lflag = (t.c_lflag & !ECHO) | ECHONL);
    assert_eq!(echo_of(&mut tty, b"pw\n"), b"\r\n");
}

#[test]
fn input_mapping_of_cr_and_nl() {
    // IGNCR drops carriage returns.
    let mut tty = tty_with(|t| t.c_iflag |= IGNCR);
    echo_of(&mut tty, b"a\r\n");
    read_expect(&mut tty, b"a\n");
    // Without ICRNL a carriage return is an ordinary (control) character.
    let mut tty = tty_with(|t| t.c_iflag &= !ICRNL);
    assert_eq!(echo_of(&mut tty, b"a\r\n"), b"a^M\r\n");
    read_expect(&mut tty, b"a\r\n");
    // INLCR turns newline into carriage return, which ICRNL does not turn back.
    let mut tty = tty_with(|t| t.c_iflag = INLCR);
    echo_of(&mut tty, b"a\nb\r");
    assert_eq!(tty.readable_bytes(), 0);
    // ISTRIP clears the eighth bit.
    let mut tty = tty_with(|t| t.c_iflag |= ISTRIP);
    echo_of(&mut tty, b"\xe1\x8a");
    read_expect(&mut tty, b"a\n");
}

#[test]
fn flow_control_stops_and_starts_output() {
    let mut tty = LineDiscipline::new();
    let (echo, received) = type_bytes(&mut tty, b"\x13\x13a\x11\x11");
    assert_eq!(echo, b"a");
    assert_eq!(received[0].output_flow, Some(OutputFlow::Stopped));
    assert_eq!(received[1].output_flow, None);
    assert_eq!(received[3].output_flow, Some(OutputFlow::Started));
    assert_eq!(received[4].output_flow, None);
    assert!(!tty.output_stopped());
    // A signal character restarts output too; so does turning IXON off.
    let (_, received) = type_bytes(&mut tty, b"\x13\x03");
    assert_eq!(received[1].output_flow, Some(OutputFlow::Started));
    echo_of(&mut tty, b"\x13");
    assert!(tty.output_stopped());
    let mut termios = *tty.termios();
    termios.c_iflag &= !IXON;
    tty.set_termios(&termios);
    assert!(!tty.output_stopped());
    // Without IXON ^S is data (the ^C above flushed the "a").
    echo_of(&mut tty, b"\x13\n");
    read_expect(&mut tty, b"\x13\n");
}

#[test]
fn line_is_limited_to_4095_bytes_plus_newline() {
    let mut tty = LineDiscipline::new();
    let echo = echo_of(&mut tty, &[b'x'; 5000]);
    assert_eq!(echo.len(), 4095, "dropped bytes are not echoed");
    // Erasing makes room again.
    echo_of(&mut tty, b"\x7fyz");
    let (_, received) = type_bytes(&mut tty, b"\n");
    assert!(received[0].input_ready);
    let mut expected = vec![b'x'; 4094];
    expected.extend_from_slice(b"y\n");
    assert_eq!(tty.readable_bytes(), 4096);
    read_expect(&mut tty, &expected);
    // The queue is empty again and takes a new line.
    echo_of(&mut tty, b"ok\n");
    read_expect(&mut tty, b"ok\n");
}

#[test]
fn ring_wraps_around() {
    let mut tty = LineDiscipline::new();
    for round in 0..50u8 {
        let line: Vec<u8> = (0..100).map(|i| b'a' + (i + round) % 26).collect();
        echo_of(&mut tty, &line);
        echo_of(&mut tty, b"\x04\n");
        read_expect(&mut tty, &line);
        read_expect(&mut tty, b"\n");
    }
}

#[test]
fn raw_bytes_are_readable_at_once() {
    let mut tty = tty_with(|t| t.c_lflag &= !ICANON);
    let (echo, received) = type_bytes(&mut tty, b"q\x01\x7f\x04");
    assert_eq!(echo, b"q^A^?^D");
    assert!(received.iter().all(|r| r.input_ready));
    assert_eq!(tty.readable_bytes(), 4);
    assert!(tty.is_readable());
    read_expect(&mut tty, b"q\x01\x7f\x04");
    // VMIN 1, VTIME 0 (the default): block without a timer.
    assert_eq!(read(&mut tty, 10).0, BLOCKED);
    // Signals still work.
    let (_, received) = type_bytes(&mut tty, b"\x03");
    assert_eq!(received[0].signal, Some(Signal::Interrupt));
}

#[test]
fn raw_read_with_vmin_0_vtime_0_polls() {
    let mut tty = raw_tty(0, 0);
    assert!(!tty.is_readable());
    assert_eq!(read(&mut tty, 10).0, ReadOutcome::Bytes(0));
    echo_of(&mut tty, b"ab");
    read_expect(&mut tty, b"ab");
}

#[test]
fn raw_read_with_vtime_alone_times_out() {
    let mut tty = raw_tty(0, 5);
    let five = Some(Deciseconds(5));
    assert_eq!(
        read(&mut tty, 10).0,
        ReadOutcome::WouldBlock {
            copied: 0,
            timeout: five
        }
    );
    assert_eq!(five.map(Deciseconds::as_millis), Some(500));
    echo_of(&mut tty, b"a");
    read_expect(&mut tty, b"a");
}

#[test]
fn raw_read_with_vmin_gathers_across_attempts() {
    let mut tty = raw_tty(3, 0);
    echo_of(&mut tty, b"ab");
    assert!(!tty.is_readable(), "poll waits for VMIN bytes");
    assert_eq!(tty.readable_bytes(), 2);
    let mut buffer = [0; 10];
    assert_eq!(
        tty.read(&mut buffer, 0),
        ReadOutcome::WouldBlock {
            copied: 2,
            timeout: None
        }
    );
    echo_of(&mut tty, b"cd");
    assert_eq!(tty.read(&mut buffer[2..], 2), ReadOutcome::Bytes(2));
    assert_eq!(&buffer[..4], b"abcd");
    // A buffer smaller than VMIN completes when full.
    echo_of(&mut tty, b"xy");
    assert_eq!(read(&mut tty, 2).0, ReadOutcome::Bytes(2));
}

#[test]
fn raw_read_with_vmin_and_vtime_times_between_bytes() {
    let mut tty = raw_tty(4, 2);
    let mut buffer = [0; 10];
    // No timer until the first byte.
    assert_eq!(tty.read(&mut buffer, 0), BLOCKED);
    echo_of(&mut tty, b"a");
    assert_eq!(
        tty.read(&mut buffer, 0),
        ReadOutcome::WouldBlock {
            copied: 1,
            timeout: Some(Deciseconds(2))
        }
    );
    // A wake-up without new bytes: the running timer goes on.
    assert_eq!(
        tty.read(&mut buffer[1..], 1),
        ReadOutcome::WouldBlock {
            copied: 0,
            timeout: Some(Deciseconds(2))
        }
    );
    echo_of(&mut tty, b"bcde");
    assert_eq!(tty.read(&mut buffer[1..], 1), ReadOutcome::Bytes(4));
    assert_eq!(&buffer[..5], b"abcde");
}

#[test]
fn raw_queue_keeps_4095_bytes() {
    let mut tty = raw_tty(1, 0);
    echo_of(&mut tty, &[7; 5000]);
    assert_eq!(tty.readable_bytes(), 4095);
}

#[test]
fn leaving_canonical_mode_keeps_the_partial_line() {
    let mut tty = LineDiscipline::new();
    echo_of(&mut tty, b"one\npart");
    let mut termios = *tty.termios();
    termios.c_lflag &= !ICANON;
    tty.set_termios(&termios);
    assert_eq!(tty.readable_bytes(), 8);
    read_expect(&mut tty, b"one\npart");
}

#[test]
fn entering_canonical_mode_makes_pending_bytes_a_line() {
    let mut tty = raw_tty(1, 0);
    echo_of(&mut tty, b"xy");
    tty.set_termios(&Termios::default());
    assert!(tty.is_readable());
    assert_eq!(tty.readable_bytes(), 2);
    read_expect(&mut tty, b"xy");
    echo_of(&mut tty, b"z\n");
    read_expect(&mut tty, b"z\n");
}

#[test]
fn flush_input_drops_everything() {
    let mut tty = LineDiscipline::new();
    echo_of(&mut tty, b"a\nb");
    tty.flush_input();
    assert_eq!(tty.readable_bytes(), 0);
    echo_of(&mut tty, b"c\n");
    read_expect(&mut tty, b"c\n");
}

#[test]
fn output_maps_newline_to_crlf() {
    let mut tty = LineDiscipline::new();
    let mut pieces = Vec::new();
    tty.process_output(b"hello\nworld\n", &mut |piece: &[u8]| {
        pieces.push(piece.to_vec())
    });
    assert_eq!(pieces.concat(), b"hello\r\nworld\r\n");
    assert_eq!(pieces.len(), 4, "runs go out whole: {pieces:?}");
    // Without OPOST, or ONLCR, bytes go out unchanged.
    let mut tty = tty_with(|t| t.c_oflag &= !OPOST);
    assert_eq!(output_of(&mut tty, b"a\nb\r"), b"a\nb\r");
    let mut tty = tty_with(|t| t.c_oflag &= !ONLCR);
    assert_eq!(output_of(&mut tty, b"a\nb\r"), b"a\nb\r");
    // OCRNL turns carriage return into newline.
    let mut tty = tty_with(|t| t.c_oflag = OPOST | OCRNL);
    assert_eq!(output_of(&mut tty, b"a\r\n"), b"a\n\n");
    // Without OPOST the echo of a newline is a bare newline too.
    let mut tty = tty_with(|t| t.c_oflag = 0);
    assert_eq!(echo_of(&mut tty, b"a\r"), b"a\n");
}
