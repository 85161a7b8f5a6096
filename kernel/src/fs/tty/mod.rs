//! Terminals: the console (the serial line, and the screen with the PS/2 keyboard) as a Linux
//! tty, with the line discipline of kernel/libs/ldisc.
//!
//! A [`Tty`] is one terminal: its discipline (settings, input queue, editing, echo, output
//! processing), window size, session and foreground process group, and the queues its readers
//! and writers sleep on. The kernel has one, [`CONSOLE`], which `/dev/console` (5:1),
//! `/dev/ttyS0` (4:64) and `/dev/tty` (5:0, the caller's controlling terminal) all name
//! ([`TerminalDevice`]); in-kernel tests make others whose output stays in memory.
//!
//! # Input
//! COM1's receive interrupt keeps the bytes (`console::serial_interrupt`), as the keyboard's
//! keeps what its keys send (`console::keyboard_input`), and has the `tty-input` kernel thread
//! woken, which feeds them to [`Tty::receive`]: in process context,
//! so that editing, echo, waking readers and signalling the foreground group (`^C` SIGINT, `^\`
//! SIGQUIT, `^Z` SIGTSTP) happen as the bytes arrive, whether anyone reads or not. Where the
//! interrupt cannot be routed, the thread polls the UART every 10 ms instead.
//!
//! The console's debug keys (debug_keys.rs) share the line: while no file of the terminal is
//! open (no program started yet, or all have ended), keys are debug keys as before; while one
//! is, they are the terminal's, and `^]` followed by a key sends that key to the debug keys.
//!
//! # Reading and writing
//! A read takes what the discipline gives (a line in canonical mode; by `VMIN`/`VTIME`
//! otherwise), sleeping in between unless the file is non-blocking (`EAGAIN`). A write goes out
//! through the discipline's output processing (`ONLCR`: `\n` as `\r\n`) a line at a time, each
//! line (up to 256 bytes) under one console lock, so no log line lands inside it; the
//! terminal's write lock ([`Inode::writer_lock`]) keeps one `write` together. `^S` (or
//! `TCXONC`) stops output: writers wait until `^Q`. `poll` sees it readable when a read would
//! not wait for input, writable unless output is stopped; every change that may make it ready
//! wakes pollers ([`poll::readiness_changed`]).
//!
//! # Sessions and job control
//! The terminal belongs to at most one session, whose processes have it as controlling
//! terminal; with one terminal, a process's controlling terminal is the console exactly when
//! the console's session is the process's. As on Linux, a session leader gets it by opening
//! `/dev/ttyS0` (not `/dev/console` or `/dev/tty`, and not with `O_NOCTTY`) while it belongs to
//! no session, or with `TIOCSCTTY` on any of its files; it is released by the leader's
//! `TIOCNOTTY` (SIGHUP and SIGCONT to the foreground group) or exit (SIGHUP). A process of the
//! session outside the foreground group that reads it (through `/dev/tty` or `/dev/ttyS0`: the
//! console's name is exempt, as on Linux) gets SIGTTIN, and one that changes its settings, or
//! writes under `TOSTOP`, gets SIGTTOU: Linux's `tty_check_change`, with `EIO` for an orphaned
//! group or an ignored SIGTTIN.
//!
//! # Locks
//! A terminal's state is under its spinlock (process context only; no interrupt takes it),
//! held while a piece of output or echo goes to the console, so the console lock nests inside
//! it. No signal is sent, process looked up or task woken under it. The write lock (sleeping)
//! is outermost, held across a whole `write`.
//!
//! # Differences from Linux
//! - A leader's exit or `TIOCNOTTY` does not hang up the open files of the terminal (they go on
//!   working); `TIOCNOTTY` by a process that is not its session's leader changes nothing.
//! - Output is written synchronously: nothing waits in an output buffer, so `TCSETSW`,
//!   `TCSBRK` and `TCOFLUSH` have nothing to drain or drop (`TCSBRK` sends no break).

#[cfg(feature = "ktest")]
mod ktests;

use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicUsize, Ordering};

use ldisc::termios::{TOSTOP, VSTART, VSTOP};
use ldisc::{LineDiscipline, OutputFlow, ReadOutcome, Termios, Winsize};

use super::file::{File, O_NOCTTY};
use super::poll::{self, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use super::{FileKind, FsKind, Inode, Stat, allocate_inode_number};
use crate::arch::uaccess::{copy_from_user, copy_to_user, read_user, write_user};
use crate::console::TERMINAL_PIECE_MAX;
use crate::proc::Process;
use crate::proc::signal::{
    self, SI_KERNEL, SIGCONT, SIGHUP, SIGTTIN, SIGTTOU, SIGWINCH, SigInfo, sigmask,
};
use crate::sync::waitqueue::WaitResult;
use crate::sync::{Mutex, WaitQueue};
use crate::syscall::errno::{
    EAGAIN, EINTR, EINVAL, EIO, ENOTTY, ENXIO, EPERM, ERESTARTSYS, ESRCH, Errno,
};

// The terminal ioctls (x86_64 numbers).
const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TIOCNOTTY: u64 = 0x5422;
const TCSBRKP: u64 = 0x5425;
const TIOCGSID: u64 = 0x5429;

// `TCXONC` arguments.
const TCOOFF: u64 = 0;
const TCOON: u64 = 1;
const TCIOFF: u64 = 2;
const TCION: u64 = 3;

// `TCFLSH` arguments.
const TCIFLUSH: u64 = 0;
const TCOFLUSH: u64 = 1;
const TCIOFLUSH: u64 = 2;

/// The most bytes of a write processed at once: output processing at most doubles them, and
/// the result goes to the console under one lock.
const OUTPUT_PIECE_MAX: usize = TERMINAL_PIECE_MAX / 2;

/// The key that, typed on the serial line, sends the next key to the debug keys even while a
/// program has the terminal open (`^]`).
const DEBUG_ESCAPE: u8 = 0x1d;

/// How often the input worker polls the UART when its interrupt could not be routed.
const POLL_INTERVAL_NS: u64 = 10_000_000;

/// Where a terminal's output and echo go.
enum Output {
    /// The console: the serial line and the screen.
    Console,
    /// Kept in memory (the in-kernel tests' terminals).
    #[cfg(feature = "ktest")]
    Memory(spin::Mutex<alloc::vec::Vec<u8>>),
}

impl Output {
    /// Sends one piece of at most [`TERMINAL_PIECE_MAX`] bytes.
    fn write(&self, bytes: &[u8]) {
        match self {
            Output::Console => crate::console::write_terminal_piece(bytes),
            #[cfg(feature = "ktest")]
            Output::Memory(kept) => kept.lock().extend_from_slice(bytes),
        }
    }
}

/// Output on its way to the device, gathered so that a piece goes out at once (under one
/// console lock, so no log line lands inside it).
struct Staged<'a> {
    output: &'a Output,
    bytes: [u8; TERMINAL_PIECE_MAX],
    len: usize,
}

impl<'a> Staged<'a> {
    fn new(output: &'a Output) -> Self {
        Self {
            output,
            bytes: [0; TERMINAL_PIECE_MAX],
            len: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.len == self.bytes.len() {
                self.flush();
            }
            let count = bytes.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + count].copy_from_slice(&bytes[..count]);
            self.len += count;
            bytes = &bytes[count..];
        }
    }

    fn flush(&mut self) {
        if self.len > 0 {
            self.output.write(&self.bytes[..self.len]);
            self.len = 0;
        }
    }
}

/// What the terminal's lock protects.
struct TtyState {
    ldisc: LineDiscipline,
    winsize: Winsize,
    /// The session whose controlling terminal this is (0: none).
    session: u32,
    /// The foreground process group (0: none).
    foreground: u32,
    /// Output stopped by `TCXONC` (`TCOOFF`), apart from `^S`, which `^Q` does not undo.
    stopped_by_request: bool,
}

impl TtyState {
    /// Whether a read could take something now (a line, an end of file, or raw bytes): what
    /// sleeping readers wait for.
    fn has_input(&self) -> bool {
        self.ldisc.is_readable() || self.ldisc.readable_bytes() > 0
    }

    fn output_stopped(&self) -> bool {
        self.ldisc.output_stopped() || self.stopped_by_request
    }

    /// Whether `process` has this terminal as its controlling terminal.
    fn controls(&self, process: &Process) -> bool {
        self.session != 0 && self.session == process.sid()
    }
}

/// One terminal. See the module documentation.
pub struct Tty {
    state: spin::Mutex<TtyState>,
    /// Readers waiting for input (woken by input, new settings, flushes).
    readers: WaitQueue,
    /// Writers waiting for stopped output to start again.
    writers: WaitQueue,
    /// One `write` at a time (Linux's `atomic_write_lock`).
    write_lock: Mutex<()>,
    /// Open descriptions of the terminal's device files.
    open_files: AtomicUsize,
    output: Output,
}

/// The serial console's terminal.
pub static CONSOLE: Tty = Tty::new(Output::Console);

/// The running thread's process, if it is a user thread.
fn caller() -> Option<&'static alloc::sync::Arc<Process>> {
    crate::sched::current().process()
}

/// Sends `signo` from the kernel to process group `pgid`, if there is one (0: none).
fn signal_group(pgid: u32, signo: u32) {
    if pgid != 0 {
        let info = SigInfo::new(signo, SI_KERNEL, [0; 4]);
        let _ = signal::send_signal_to_each(&crate::proc::group_members(pgid), signo, info);
    }
}

impl Tty {
    /// A terminal with Linux's default settings, no window size (a serial line has none), no
    /// session and no input.
    const fn new(output: Output) -> Self {
        Self {
            state: spin::Mutex::new(TtyState {
                ldisc: LineDiscipline::new(),
                winsize: Winsize {
                    ws_row: 0,
                    ws_col: 0,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                },
                session: 0,
                foreground: 0,
                stopped_by_request: false,
            }),
            readers: WaitQueue::new(),
            writers: WaitQueue::new(),
            write_lock: Mutex::new(()),
            open_files: AtomicUsize::new(0),
            output,
        }
    }

    /// Bytes from the device, as the serial line delivered them: edited, echoed, stored for
    /// readers, or turned into signals for the foreground group.
    pub fn receive(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut signals = 0u64;
        let mut input_ready = false;
        let mut output_started = false;
        let foreground = {
            let mut state = self.state.lock();
            let mut echo = Staged::new(&self.output);
            for &byte in bytes {
                let received = state.ldisc.receive(byte, &mut |bytes| echo.push(bytes));
                if let Some(signal) = received.signal {
                    signals |= sigmask(signal.number());
                }
                input_ready |= received.input_ready;
                output_started |= received.output_flow == Some(OutputFlow::Started);
            }
            echo.flush();
            state.foreground
        };
        self.wake(input_ready, output_started);
        for signo in 1..=64 {
            if signals & sigmask(signo) != 0 {
                signal_group(foreground, signo);
            }
        }
    }

    /// Wakes sleeping readers and writers, and pollers, after a change that may let them go
    /// on.
    fn wake(&self, readers: bool, writers: bool) {
        if readers {
            self.readers.wake_all();
        }
        if writers {
            self.writers.wake_all();
        }
        if readers || writers {
            poll::readiness_changed();
        }
    }

    /// What `poll` sees: readable when a read would not wait for input (a line; `VMIN` bytes
    /// in raw mode), writable unless output is stopped.
    fn poll_events(&self) -> u32 {
        let state = self.state.lock();
        let mut events = 0;
        if state.ldisc.is_readable() {
            events |= POLLIN | POLLRDNORM;
        }
        if !state.output_stopped() {
            events |= POLLOUT | POLLWRNORM;
        }
        events
    }

    /// One `read` into `buf`: a line in canonical mode, else as `VMIN` and `VTIME` say. Sleeps
    /// for input unless `nonblocking` (`EAGAIN` then, when nothing was read); a signal ends the
    /// sleep (`ERESTARTSYS`, or the bytes gathered so far).
    pub fn read(&self, nonblocking: bool, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut gathered = 0;
        let mut deadline = None;
        loop {
            let outcome = self.state.lock().ldisc.read(&mut buf[gathered..], gathered);
            let (copied, timeout) = match outcome {
                ReadOutcome::Bytes(count) => return Ok(gathered + count),
                ReadOutcome::EndOfFile => return Ok(gathered),
                ReadOutcome::WouldBlock { copied, timeout } => (copied, timeout),
            };
            gathered += copied;
            if let Some(timeout) = timeout
                && (deadline.is_none() || copied > 0)
            {
                deadline = Some(crate::time::now_ns() + timeout.as_millis() * 1_000_000);
            }
            if nonblocking {
                return if gathered > 0 {
                    Ok(gathered)
                } else {
                    Err(EAGAIN)
                };
            }
            match self
                .readers
                .wait_interruptible(|| self.state.lock().has_input(), deadline)
            {
                WaitResult::Ready => {}
                WaitResult::TimedOut => return Ok(gathered),
                WaitResult::Interrupted if gathered > 0 => return Ok(gathered),
                WaitResult::Interrupted => return Err(ERESTARTSYS),
            }
        }
    }

    /// One `write` of `bytes`, through the output processing, a line (at most
    /// [`OUTPUT_PIECE_MAX`] bytes) at a time. Waits while output is stopped, unless
    /// `nonblocking`; returns the bytes written before an error.
    pub fn write(&self, nonblocking: bool, bytes: &[u8]) -> Result<usize, Errno> {
        let mut written = 0;
        let pieces = bytes
            .split_inclusive(|&b| b == b'\n')
            .flat_map(|line| line.chunks(OUTPUT_PIECE_MAX));
        for piece in pieces {
            if let Err(error) = self.wait_while_stopped(nonblocking) {
                return if written > 0 { Ok(written) } else { Err(error) };
            }
            let mut state = self.state.lock();
            let mut out = Staged::new(&self.output);
            state
                .ldisc
                .process_output(piece, &mut |bytes| out.push(bytes));
            out.flush();
            drop(state);
            written += piece.len();
        }
        Ok(written)
    }

    fn wait_while_stopped(&self, nonblocking: bool) -> Result<(), Errno> {
        if !self.state.lock().output_stopped() {
            return Ok(());
        }
        if nonblocking {
            return Err(EAGAIN);
        }
        match self
            .writers
            .wait_interruptible(|| !self.state.lock().output_stopped(), None)
        {
            WaitResult::Ready => Ok(()),
            WaitResult::TimedOut | WaitResult::Interrupted => Err(ERESTARTSYS),
        }
    }

    /// New settings (`TCSETS`; `flush_input` for `TCSETSF`). Readers look again: leaving
    /// canonical mode may have made input readable.
    fn set_termios(&self, termios: &Termios, flush_input: bool) {
        {
            let mut state = self.state.lock();
            if flush_input {
                state.ldisc.flush_input();
            }
            state.ldisc.set_termios(termios);
        }
        self.wake(true, true);
    }

    /// Linux's `tty_check_change`: a process of the terminal's session outside its foreground
    /// group may not read it (`signo` SIGTTIN) or change it, or write it under `TOSTOP`
    /// (SIGTTOU). Its group gets the signal and the call restarts once it continues; `EIO`
    /// instead for an orphaned group, and for a SIGTTIN it blocks or ignores (a blocked or
    /// ignored SIGTTOU lets the change through).
    fn check_foreground(&self, signo: u32) -> Result<(), Errno> {
        let Some(process) = caller() else {
            return Ok(());
        };
        let foreground = {
            let state = self.state.lock();
            if !state.controls(process) {
                return Ok(());
            }
            state.foreground
        };
        if foreground == 0 || process.pgid() == foreground {
            return Ok(());
        }
        if signal::blocked_or_ignored(signo) {
            return if signo == SIGTTIN { Err(EIO) } else { Ok(()) };
        }
        if crate::proc::is_group_orphaned(process) {
            return Err(EIO);
        }
        signal_group(process.pgid(), signo);
        Err(ERESTARTSYS)
    }

    /// Whether writes must pass [`Tty::check_foreground`] (`TOSTOP`).
    fn stops_background_writers(&self) -> bool {
        self.state.lock().ldisc.termios().c_lflag & TOSTOP != 0
    }

    /// The session leader `process` makes this its controlling terminal, if it belongs to no
    /// session (Linux's `tty_open_proc_set_tty`, for an open without `O_NOCTTY`).
    fn acquire_on_open(&self, process: &Process) {
        if process.pid != process.sid() {
            return;
        }
        let mut state = self.state.lock();
        if state.session == 0 {
            state.session = process.sid();
            state.foreground = process.pgid();
        }
    }

    /// The terminal belongs to session `sid` no longer, if it did: its foreground group gets
    /// SIGHUP (and SIGCONT, with `and_continue`).
    fn release_session(&self, sid: u32, and_continue: bool) {
        let foreground = {
            let mut state = self.state.lock();
            if state.session != sid {
                return;
            }
            state.session = 0;
            core::mem::take(&mut state.foreground)
        };
        signal_group(foreground, SIGHUP);
        if and_continue {
            signal_group(foreground, SIGCONT);
        }
    }

    /// A terminal `ioctl`.
    pub fn ioctl(&self, request: u64, argument: u64) -> Result<u64, Errno> {
        match request {
            TCGETS => {
                let termios = *self.state.lock().ldisc.termios();
                copy_to_user(argument, &termios.to_bytes())?;
            }
            TCSETS | TCSETSW | TCSETSF => {
                self.check_foreground(SIGTTOU)?;
                let mut bytes = [0; Termios::SIZE];
                copy_from_user(&mut bytes, argument)?;
                let termios = Termios::from_bytes(&bytes);
                if request == TCSETS {
                    self.set_termios(&termios, false);
                } else {
                    // After the write in progress (which is all there is to drain).
                    let _no_writer = self.write_lock.lock_killable().ok_or(EINTR)?;
                    self.set_termios(&termios, request == TCSETSF);
                }
            }
            TCSBRK | TCSBRKP => self.check_foreground(SIGTTOU)?,
            TCFLSH => {
                self.check_foreground(SIGTTOU)?;
                match argument {
                    TCIFLUSH | TCIOFLUSH => self.state.lock().ldisc.flush_input(),
                    TCOFLUSH => {}
                    _ => return Err(EINVAL),
                }
            }
            TCXONC => {
                self.check_foreground(SIGTTOU)?;
                self.flow_control(argument)?;
            }
            TIOCGWINSZ => {
                let winsize = self.state.lock().winsize;
                copy_to_user(argument, &winsize.to_bytes())?;
            }
            TIOCSWINSZ => {
                let mut bytes = [0; Winsize::SIZE];
                copy_from_user(&mut bytes, argument)?;
                self.resize(Winsize::from_bytes(&bytes));
            }
            TIOCGPGRP => {
                let foreground = self.controlling_state(|state| state.foreground)?;
                write_user(argument, &foreground)?;
            }
            TIOCGSID => {
                let session = self.controlling_state(|state| state.session)?;
                write_user(argument, &session)?;
            }
            TIOCSPGRP => self.set_foreground(argument)?,
            TIOCSCTTY => self.make_controlling(argument)?,
            TIOCNOTTY => {
                let process = caller().ok_or(ENOTTY)?;
                self.controlling_state(|_| ())?;
                if process.pid == process.sid() {
                    self.release_session(process.sid(), true);
                }
            }
            FIONREAD => {
                let count = self.state.lock().ldisc.readable_bytes() as u32;
                write_user(argument, &count)?;
            }
            TIOCOUTQ => write_user(argument, &0u32)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    /// `f(state)` when the terminal is the caller's controlling terminal, else `ENOTTY`.
    fn controlling_state<R>(&self, f: impl FnOnce(&TtyState) -> R) -> Result<R, Errno> {
        let process = caller().ok_or(ENOTTY)?;
        let state = self.state.lock();
        if !state.controls(process) {
            return Err(ENOTTY);
        }
        Ok(f(&state))
    }

    /// `TCXONC`: stop or restart output, or send the stop or start character.
    fn flow_control(&self, action: u64) -> Result<(), Errno> {
        match action {
            TCOOFF => self.state.lock().stopped_by_request = true,
            TCOON => {
                self.state.lock().stopped_by_request = false;
                self.wake(false, true);
            }
            TCIOFF | TCION => {
                let state = self.state.lock();
                let character =
                    state.ldisc.termios().c_cc[if action == TCIOFF { VSTOP } else { VSTART }];
                if character != ldisc::termios::DISABLED {
                    self.output.write(&[character]);
                }
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// `TIOCSWINSZ`: a new size; the foreground group gets SIGWINCH if it changed.
    fn resize(&self, winsize: Winsize) {
        let foreground = {
            let mut state = self.state.lock();
            if state.winsize == winsize {
                return;
            }
            state.winsize = winsize;
            state.foreground
        };
        signal_group(foreground, SIGWINCH);
    }

    /// `TIOCSPGRP`: the controlling process makes group `*argument` of its session the
    /// foreground group. As Linux, the id may also name a process (its session counts).
    fn set_foreground(&self, argument: u64) -> Result<(), Errno> {
        match self.check_foreground(SIGTTOU) {
            Err(EIO) => return Err(ENOTTY),
            other => other?,
        }
        let pgid = read_user::<i32>(argument)?;
        let pgid = u32::try_from(pgid).map_err(|_| EINVAL)?;
        let process = caller().ok_or(ENOTTY)?;
        self.controlling_state(|_| ())?;
        let session = crate::proc::group_members(pgid)
            .first()
            .map(|member| member.sid())
            .or_else(|| crate::proc::find(pgid).map(|named| named.sid()))
            .ok_or(ESRCH)?;
        if session != process.sid() {
            return Err(EPERM);
        }
        let mut state = self.state.lock();
        if !state.controls(process) {
            return Err(ENOTTY);
        }
        state.foreground = pgid;
        Ok(())
    }

    /// `TIOCSCTTY`: the calling session leader makes this its controlling terminal; with
    /// `steal` 1, even from another session (every process is privileged here).
    fn make_controlling(&self, steal: u64) -> Result<(), Errno> {
        let process = caller().ok_or(EPERM)?;
        let leader = process.pid == process.sid();
        let mut state = self.state.lock();
        if leader && state.controls(process) {
            return Ok(());
        }
        if !leader || state.session != 0 && steal != 1 {
            return Err(EPERM);
        }
        state.session = process.sid();
        state.foreground = process.pgid();
        Ok(())
    }

    /// Whether a file of the terminal is open.
    fn is_open(&self) -> bool {
        self.open_files.load(Ordering::Relaxed) > 0
    }
}

/// `/dev/ttyS0`'s device number as `/proc/PID/stat`'s `tty_nr` encodes it (Linux's
/// `new_encode_dev`: the minor's low byte, the major above it).
const CONSOLE_TTY_NR: u32 = (4 << 8) | 64;

/// `process`'s controlling terminal as `/proc/PID/stat` shows it: its device number and the
/// terminal's foreground group (0 when none), or `None` without one.
pub fn controlling_terminal(process: &Process) -> Option<(u32, u32)> {
    let state = CONSOLE.state.lock();
    state
        .controls(process)
        .then_some((CONSOLE_TTY_NR, state.foreground))
}

/// Gives the console's terminal the size of the screen (at boot, when the screen alone is the
/// console); a serial line has none, which programs take as 80 by 24.
pub fn set_console_size(columns: usize, rows: usize) {
    CONSOLE.state.lock().winsize = Winsize {
        ws_col: u16::try_from(columns).unwrap_or(u16::MAX),
        ws_row: u16::try_from(rows).unwrap_or(u16::MAX),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
}

/// The leader of session `sid` exited: the console, if it was the session's controlling
/// terminal, belongs to no session from now on, and its foreground group gets SIGHUP.
pub fn session_leader_exited(sid: u32) {
    CONSOLE.release_session(sid, false);
}

/// `vhangup`: the console, if it is the controlling terminal of session `sid`, belongs to no
/// session from now on, and its foreground group gets SIGHUP and SIGCONT (Linux's hangup; the
/// open descriptors stay usable here).
pub fn hang_up(sid: u32) {
    CONSOLE.release_session(sid, true);
}

/// Which name of the console's terminal a device file is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name {
    /// `/dev/console`: never becomes a controlling terminal on open, no job-control stops for
    /// its reads and writes.
    Console,
    /// `/dev/tty`: the caller's controlling terminal (`ENXIO` on open without one).
    Controlling,
    /// `/dev/ttyS0`: the serial line itself.
    Serial,
}

/// A device file of the console's terminal.
pub struct TerminalDevice {
    ino: u64,
    name: Name,
}

impl TerminalDevice {
    /// `/dev/console`, 5:1.
    pub fn console() -> Arc<dyn Inode> {
        Self::named(Name::Console)
    }

    /// `/dev/tty`, 5:0.
    pub fn controlling() -> Arc<dyn Inode> {
        Self::named(Name::Controlling)
    }

    /// `/dev/ttyS0`, 4:64.
    pub fn serial() -> Arc<dyn Inode> {
        Self::named(Name::Serial)
    }

    fn named(name: Name) -> Arc<dyn Inode> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            name,
        })
    }
}

impl Inode for TerminalDevice {
    fn kind(&self) -> FileKind {
        FileKind::CharDevice
    }

    fn stat(&self) -> Stat {
        let (major, minor, mode) = match self.name {
            Name::Console => (5, 1, 0o600),
            Name::Controlling => (5, 0, 0o666),
            Name::Serial => (4, 64, 0o660),
        };
        super::dev::char_device_stat(self.ino, major, minor, mode)
    }

    fn fs(&self) -> FsKind {
        FsKind::Devtmpfs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn seekable(&self) -> bool {
        false
    }

    fn writer_lock(&self) -> Option<&Mutex<()>> {
        Some(&CONSOLE.write_lock)
    }

    fn open(&self, file: &File) -> Result<(), Errno> {
        // Counted first: `release` runs even for an open refused below.
        CONSOLE.open_files.fetch_add(1, Ordering::Relaxed);
        let Some(process) = caller() else {
            return Ok(());
        };
        match self.name {
            Name::Console => {}
            Name::Controlling => {
                CONSOLE.controlling_state(|_| ()).map_err(|_| ENXIO)?;
            }
            Name::Serial => {
                if file.flags() & O_NOCTTY == 0 && file.readable() {
                    CONSOLE.acquire_on_open(process);
                }
            }
        }
        Ok(())
    }

    fn release(&self, _file: &File) {
        CONSOLE.open_files.fetch_sub(1, Ordering::Relaxed);
    }

    fn read_at(&self, file: &File, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.name != Name::Console {
            CONSOLE.check_foreground(SIGTTIN)?;
        }
        CONSOLE.read(file.nonblocking(), buf)
    }

    fn write_at(&self, file: &File, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        if self.name != Name::Console && CONSOLE.stops_background_writers() {
            CONSOLE.check_foreground(SIGTTOU)?;
        }
        // Test images keep what a process writes, for the test that started it; some keep it
        // off the console too.
        #[cfg(feature = "ktest")]
        if let Some(process) = caller()
            && process.output_hidden
            && let Some(capture) = &process.captured_output
        {
            capture.lock().extend_from_slice(buf);
            return Ok(buf.len());
        }
        let written = CONSOLE.write(file.nonblocking(), buf)?;
        #[cfg(feature = "ktest")]
        if let Some(process) = caller()
            && let Some(capture) = &process.captured_output
        {
            capture.lock().extend_from_slice(&buf[..written]);
        }
        Ok(written)
    }

    fn ioctl(&self, _file: &File, request: u64, argument: u64) -> Result<u64, Errno> {
        CONSOLE.ioctl(request, argument)
    }

    fn poll(&self, _file: &File) -> u32 {
        CONSOLE.poll_events()
    }
}

/// Starts the console terminal's input worker, the `tty-input` kernel thread (see the module
/// documentation). With `serial_interrupt` false (the interrupt could not be routed) it polls.
pub fn start_input(serial_interrupt: bool) {
    if crate::sched::spawn_kernel("tty-input", move || input_worker(serial_interrupt)).is_none() {
        log::error!("tty: no memory for the input worker; the console takes no input");
    }
}

fn input_worker(serial_interrupt: bool) {
    let mut escaped = false;
    let mut bytes = [0; 64];
    loop {
        let deadline = (!serial_interrupt).then(|| crate::time::now_ns() + POLL_INTERVAL_NS);
        crate::console::wait_for_input(deadline);
        loop {
            let count = crate::console::take_input(&mut bytes);
            if count == 0 {
                break;
            }
            route_input(&bytes[..count], &mut escaped);
        }
    }
}

/// Hands received bytes to the console's terminal, but for debug keys: every key while no file
/// of the terminal is open, and the key after `^]` (`escaped` carries a `^]` that ended the
/// previous batch).
fn route_input(bytes: &[u8], escaped: &mut bool) {
    let mut terminal_from = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if !*escaped && byte != DEBUG_ESCAPE && CONSOLE.is_open() {
            continue;
        }
        CONSOLE.receive(&bytes[terminal_from..index]);
        terminal_from = index + 1;
        if byte == DEBUG_ESCAPE && !*escaped {
            *escaped = true;
        } else {
            *escaped = false;
            crate::debug_keys::handle(byte);
        }
    }
    CONSOLE.receive(&bytes[terminal_from..]);
}
