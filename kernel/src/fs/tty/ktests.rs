//! In-kernel tests of the terminal: input fed as the serial line delivers it ([`Tty::receive`])
//! to terminals whose output stays in memory, read back as `read` would, with what a process
//! of the foreground group gets from the signal characters.

use alloc::sync::Arc;
use alloc::vec::Vec;

use ldisc::Termios;
use ldisc::termios::{ECHO, ICANON, VMIN, VTIME};

use super::{Output, Tty};
use crate::fs::poll::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::proc::Process;
use crate::proc::exec::{SpawnOptions, spawn};
use crate::sync::Completion;
use crate::syscall::errno::{EAGAIN, Errno};
use crate::{ktest, sched};

/// A terminal whose output (echo included) is kept in memory.
fn memory_tty() -> Arc<Tty> {
    Arc::new(Tty::new(Output::Memory(spin::Mutex::new(Vec::new()))))
}

/// What the terminal wrote since the last call.
fn take_output(tty: &Tty) -> Vec<u8> {
    match &tty.output {
        Output::Memory(kept) => core::mem::take(&mut *kept.lock()),
        Output::Console => panic!("not a test terminal"),
    }
}

/// One non-blocking read of up to `size` bytes.
fn read(tty: &Tty, size: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = alloc::vec![0; size];
    let count = tty.read(true, &mut buf)?;
    buf.truncate(count);
    Ok(buf)
}

/// The terminal's settings changed by `change`, as `TCSETS` would set them.
fn set(tty: &Tty, change: impl FnOnce(&mut Termios)) {
    let mut termios = *tty.state.lock().ldisc.termios();
    change(&mut termios);
    tty.set_termios(&termios, false);
}

ktest! {
    /// Canonical mode: erase (^?) and kill (^U) edit the line, echo shows typing and erasing,
    /// carriage return ends a line as a newline, and reads return one line each; `\n` goes out
    /// as `\r\n`.
    fn canonical_lines_are_edited_echoed_and_read_one_at_a_time() {
        let tty = memory_tty();
        tty.receive(b"ab\x7fc\rxyz\x15ok\n");
        assert_eq!(read(&tty, 64).as_deref(), Ok(&b"ac\n"[..]));
        assert_eq!(read(&tty, 64).as_deref(), Ok(&b"ok\n"[..]));
        assert_eq!(read(&tty, 64), Err(EAGAIN));
        assert_eq!(
            take_output(&tty),
            b"ab\x08 \x08c\r\nxyz\x08 \x08\x08 \x08\x08 \x08ok\r\n"
        );
        // A partial line is not readable (for poll neither); a short buffer takes a line's
        // start.
        tty.receive(b"partial");
        assert_eq!(read(&tty, 64), Err(EAGAIN));
        assert_eq!(tty.poll_events(), POLLOUT | POLLWRNORM);
        tty.receive(b" line\n");
        assert_eq!(tty.poll_events(), POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
        assert_eq!(read(&tty, 4).as_deref(), Ok(&b"part"[..]));
        assert_eq!(read(&tty, 64).as_deref(), Ok(&b"ial line\n"[..]));
        assert_eq!(tty.write(false, b"one\ntwo"), Ok(7));
        assert_eq!(take_output(&tty)[b"partial line\r\n".len()..], *b"one\r\ntwo");
    }
}

ktest! {
    /// ^D: at the start of a line a read returns 0 (end of file); after text it passes the text
    /// on without a newline.
    fn end_of_file_reads_zero() {
        let tty = memory_tty();
        tty.receive(b"\x04");
        assert_eq!(read(&tty, 16).as_deref(), Ok(&b""[..]));
        tty.receive(b"abc\x04");
        assert_eq!(read(&tty, 16).as_deref(), Ok(&b"abc"[..]));
        assert_eq!(read(&tty, 16), Err(EAGAIN));
        assert_eq!(take_output(&tty), b"abc", "^D is not echoed");
    }
}

ktest! {
    /// Raw mode set as TCSETS sets it: bytes are readable at once, without echo; VMIN = 0 with
    /// VTIME waits that many tenths of a second for nothing; VMIN = 3 gathers bytes.
    fn raw_mode_by_vmin_and_vtime() {
        let tty = memory_tty();
        tty.receive(b"held");
        set(&tty, |t| {
            t.c_lflag &= !(ICANON | ECHO);
            t.c_cc[VMIN] = 1;
            t.c_cc[VTIME] = 0;
        });
        // The partial line becomes readable when canonical mode ends.
        assert_eq!(read(&tty, 16).as_deref(), Ok(&b"held"[..]));
        tty.receive(b"q\r");
        assert_eq!(read(&tty, 16).as_deref(), Ok(&b"q\n"[..]));
        assert_eq!(take_output(&tty), b"held", "echo only before raw mode");

        set(&tty, |t| {
            t.c_cc[VMIN] = 0;
            t.c_cc[VTIME] = 2;
        });
        let start = crate::time::now_ns();
        let mut buf = [0; 8];
        assert_eq!(tty.read(false, &mut buf), Ok(0));
        let waited_ms = (crate::time::now_ns() - start) / 1_000_000;
        assert!((190..2000).contains(&waited_ms), "VTIME 2 waited {waited_ms} ms");

        set(&tty, |t| {
            t.c_cc[VMIN] = 3;
            t.c_cc[VTIME] = 0;
        });
        tty.receive(b"xy");
        assert_eq!(read(&tty, 8).as_deref(), Ok(&b"xy"[..]), "non-blocking: what is there");
        tty.receive(b"abcd");
        assert_eq!(tty.read(false, &mut buf), Ok(4));
        assert_eq!(&buf[..4], b"abcd");
    }
}

ktest! {
    timeout_ms = 30_000;
    /// A reader sleeping in canonical mode wakes for a complete line, not for its first part.
    fn a_sleeping_reader_wakes_for_a_complete_line() {
        let tty = memory_tty();
        let done = Arc::new(Completion::new());
        let result = Arc::new(spin::Mutex::new(None));
        {
            let (tty, done, result) = (tty.clone(), done.clone(), result.clone());
            sched::spawn_kernel("ktest-tty-reader", move || {
                let mut buf = [0; 32];
                let outcome = tty.read(false, &mut buf).map(|count| buf[..count].to_vec());
                *result.lock() = Some(outcome);
                done.complete();
            })
            .expect("memory for the reader");
        }
        let _ = sched::timer::sleep_ns(50_000_000);
        tty.receive(b"par");
        assert!(!done.wait_timeout(50_000_000), "the reader took a partial line");
        tty.receive(b"tial\r");
        assert!(done.wait_timeout(10_000_000_000), "the reader never woke");
        assert_eq!(result.lock().take(), Some(Ok(b"partial\n".to_vec())));
    }
}

ktest! {
    /// ^S stops output (a non-blocking write gets EAGAIN, poll does not see it writable),
    /// ^Q starts it again;
    /// without OPOST newlines go out as they are.
    fn output_flow_control_and_processing() {
        let tty = memory_tty();
        tty.receive(b"\x13");
        assert_eq!(tty.write(true, b"held"), Err(EAGAIN));
        assert_eq!(tty.poll_events(), 0, "stopped output: not writable");
        tty.receive(b"\x11");
        assert_eq!(tty.write(true, b"a\n"), Ok(2));
        set(&tty, |t| t.c_oflag &= !ldisc::termios::OPOST);
        assert_eq!(tty.write(true, b"b\n"), Ok(2));
        assert_eq!(take_output(&tty), b"a\r\nb\n");
    }
}

/// Starts `/bin/faulter` with `args` as the foreground group of `tty`'s session.
fn foreground_process(tty: &Tty, args: &[&[u8]]) -> Arc<Process> {
    let mut argv: Vec<&[u8]> = alloc::vec![b"/bin/faulter"];
    argv.extend_from_slice(args);
    let process =
        spawn("/bin/faulter", &argv, SpawnOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut state = tty.state.lock();
    state.session = process.sid();
    state.foreground = process.pgid();
    process
}

fn wait_for_exit(process: &Process) -> u32 {
    assert!(
        process.exited.wait_timeout(30_000_000_000),
        "the process never ended"
    );
    process.wait_status()
}

ktest! {
    timeout_ms = 120_000;
    /// ^C, ^\ and ^Z signal the foreground group: SIGINT ends it (status 2), SIGQUIT with the
    /// core flag (0x83); SIGTSTP reaches its handler (a kernel-started process's group is
    /// orphaned, where the default stop does nothing). Each is echoed and flushes the input.
    fn signal_characters_signal_the_foreground_group() {
        let tty = memory_tty();
        let process = foreground_process(&tty, &[b"sleep", b"60000"]);
        tty.receive(b"typed\x03");
        assert_eq!(wait_for_exit(&process), 2, "^C: SIGINT");
        assert_eq!(take_output(&tty), b"typed^C");
        tty.receive(b"\n");
        assert_eq!(read(&tty, 16).as_deref(), Ok(&b"\n"[..]), "^C flushed the line");

        let process = foreground_process(&tty, &[b"sleep", b"60000"]);
        tty.receive(b"\x1c");
        assert_eq!(wait_for_exit(&process), 0x83, "^\\: SIGQUIT");

        let process = foreground_process(&tty, &[b"catch", b"20", b"60000"]);
        // Again until the handler is in place: before, the default action drops SIGTSTP.
        for _ in 0..100 {
            tty.receive(b"\x1a");
            if process.exited.wait_timeout(100_000_000) {
                break;
            }
        }
        assert_eq!(wait_for_exit(&process), crate::proc::exited_with(20), "^Z: SIGTSTP");

        // With no foreground group the characters only flush and echo.
        tty.state.lock().foreground = 0;
        take_output(&tty);
        tty.receive(b"x\x03");
        assert_eq!(read(&tty, 16), Err(EAGAIN));
        assert_eq!(take_output(&tty), b"x^C");
    }
}
