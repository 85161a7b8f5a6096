//! The terminal: settings (TCGETS, TCSETS, TCSETSW, TCSETSF), window size, the input queue,
//! non-blocking and raw reads and poll on the console, then the controlling terminal and job
//! control (TIOCSCTTY, TIOCGPGRP/TIOCSPGRP, TIOCGSID, TIOCNOTTY, SIGTTIN, SIGTTOU).
//!
//! Under Linux this program is /init with /dev/console as fds 0-2, and on the project's kernel
//! a process the kernel started, with the same: a console that is nobody's controlling
//! terminal, has no window size and receives no input. Run natively, fds 0-2 are the shell's
//! terminal (or no terminal at all): the tests that would change its settings or its job
//! control skip then. Every setting a test changes is put back, also when it fails.

use core::ffi::CStr;

use urt::ktap::TestResult;
use urt::signal::{self, SIG_IGN, SIGHUP, SIGTTIN, SIGTTOU};
use urt::sys::{self, Errno, PollFd};
use urt::{check, check_eq, check_err, check_ok, skip};

use crate::devproc::device;
use crate::process::{Child, End, NO_PID, eventually, is_top};
use crate::util::{Fd, KERNEL_ADDR};

// `struct termios` of TCGETS: four flag words, the line discipline, 19 control characters.
const LFLAG: usize = 3;
const OFLAG: usize = 1;
const CC: usize = 17;
const VTIME: usize = 5;
const VMIN: usize = 6;
const ICANON: u32 = 0o2;
const ECHO: u32 = 0o10;
const OPOST: u32 = 0o1;
const ONLCR: u32 = 0o4;

/// A terminal's settings as TCGETS copies them (36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Termios([u8; 36]);

impl Termios {
    fn get(fd: usize) -> Result<Self, Errno> {
        let mut bytes = [0u8; 36];
        sys::ioctl(fd, sys::TCGETS, bytes.as_mut_ptr() as usize)?;
        Ok(Self(bytes))
    }

    /// TCSETS, TCSETSW or TCSETSF (`request`).
    fn set(&self, fd: usize, request: usize) -> Result<usize, Errno> {
        sys::ioctl(fd, request, self.0.as_ptr() as usize)
    }

    fn flags(&self, word: usize) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.0[4 * word..4 * word + 4]);
        u32::from_le_bytes(bytes)
    }

    fn set_flags(&mut self, word: usize, value: u32) {
        self.0[4 * word..4 * word + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Canonical mode and echo off, with `VMIN` and `VTIME`.
    fn raw(mut self, min: u8, time: u8) -> Self {
        self.set_flags(LFLAG, self.flags(LFLAG) & !(ICANON | ECHO));
        self.0[CC + VMIN] = min;
        self.0[CC + VTIME] = time;
        self
    }
}

/// Puts the console's settings back when dropped.
struct Restore(Termios);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = self.0.set(0, sys::TCSETS);
    }
}

/// The console's settings, to be put back when the guard goes, if fds 0-2 are the console
/// (this program is init); `None` otherwise (run from a shell).
fn console_settings() -> Result<Option<(Termios, Restore)>, Errno> {
    if !is_top() {
        return Ok(None);
    }
    let settings = Termios::get(0)?;
    Ok(Some((settings, Restore(settings))))
}

/// The foreground group of the terminal behind `fd` (TIOCGPGRP).
fn foreground(fd: usize) -> Result<usize, Errno> {
    let mut pgid = 0i32;
    sys::ioctl(fd, sys::TIOCGPGRP, &raw mut pgid as usize)?;
    Ok(pgid as usize)
}

/// TIOCSPGRP with `pgid`.
fn set_foreground(fd: usize, pgid: i32) -> Result<usize, Errno> {
    sys::ioctl(fd, sys::TIOCSPGRP, &raw const pgid as usize)
}

/// The session of the terminal behind `fd` (TIOCGSID).
fn session(fd: usize) -> Result<usize, Errno> {
    let mut sid = 0i32;
    sys::ioctl(fd, sys::TIOCGSID, &raw mut sid as usize)?;
    Ok(sid as usize)
}

fn open(path: &CStr, flags: usize) -> Result<Fd, Errno> {
    Fd::open(path, flags | sys::O_CLOEXEC, 0)
}

fn read_byte(fd: usize) -> Result<usize, Errno> {
    let mut byte = 0u8;
    sys::read(fd, &raw mut byte as usize, 1)
}

pub fn termios_set_and_get() -> TestResult {
    for fd in 0..3 {
        match Termios::get(fd) {
            Err(Errno::ENOTTY) if !is_top() => skip!("fd {fd} is not a terminal"),
            r => check!(r.is_ok(), "TCGETS on fd {fd}: {r:?}"),
        }
    }
    check_err!(sys::ioctl(0, sys::TCGETS, KERNEL_ADDR), Errno::EFAULT);
    let null = check_ok!(open(c"/dev/null", sys::O_RDWR));
    check_err!(Termios::get(null.0), Errno::ENOTTY);
    let Some((original, _restore)) = check_ok!(console_settings()) else {
        skip!("fds 0-2 are a shell's terminal: its settings stay as they are");
    };
    check_eq!(
        (
            original.flags(LFLAG) & (ICANON | ECHO),
            original.flags(OFLAG) & (OPOST | ONLCR)
        ),
        (ICANON | ECHO, OPOST | ONLCR),
        "the console is canonical, echoes, and turns \\n into \\r\\n: {original:?}"
    );
    for request in [sys::TCSETS, sys::TCSETSW, sys::TCSETSF] {
        let changed = original.raw(5, 3);
        check_ok!(changed.set(1, request));
        let now = check_ok!(Termios::get(0));
        check_eq!(
            (now.flags(LFLAG), &now.0[CC..]),
            (changed.flags(LFLAG), &changed.0[CC..]),
            "request {request:#x}: fd 0 sees what fd 1 set"
        );
        check_ok!(original.set(2, sys::TCSETS));
        check_eq!(check_ok!(Termios::get(1)), original);
    }
    check_err!(sys::ioctl(0, sys::TCSETS, KERNEL_ADDR), Errno::EFAULT);
    check_err!(original.set(null.0, sys::TCSETS), Errno::ENOTTY);
    Ok(())
}

pub fn window_size_set_and_get() -> TestResult {
    let mut size = [0u16; 4];
    match sys::ioctl(0, sys::TIOCGWINSZ, size.as_mut_ptr() as usize) {
        Err(Errno::ENOTTY) if !is_top() => skip!("fd 0 is not a terminal"),
        r => check!(r.is_ok(), "TIOCGWINSZ: {r:?}"),
    }
    check_err!(sys::ioctl(0, sys::TIOCGWINSZ, KERNEL_ADDR), Errno::EFAULT);
    if !is_top() {
        skip!("fds 0-2 are a shell's terminal: its size stays as it is");
    }
    check_eq!(size, [0; 4], "a serial console has no size");
    let wanted = [30u16, 100, 0, 0];
    check_ok!(sys::ioctl(1, sys::TIOCSWINSZ, wanted.as_ptr() as usize));
    let mut now = [0u16; 4];
    let got = sys::ioctl(0, sys::TIOCGWINSZ, now.as_mut_ptr() as usize);
    let restored = sys::ioctl(1, sys::TIOCSWINSZ, size.as_ptr() as usize);
    check_ok!(got);
    check_eq!(now, wanted);
    check_ok!(restored);
    check_err!(sys::ioctl(1, sys::TIOCSWINSZ, KERNEL_ADDR), Errno::EFAULT);
    Ok(())
}

/// The console receives nothing in the test runs: an empty input queue, non-blocking reads
/// that say EAGAIN, raw reads that return 0 (at once for VMIN = VTIME = 0, after VTIME tenths
/// of a second for VMIN = 0), and poll that sees it writable only.
pub fn console_reads_without_input() -> TestResult {
    let Some((original, _restore)) = check_ok!(console_settings()) else {
        skip!("fds 0-2 are a shell's terminal, which may have input");
    };
    let mut queued = u32::MAX;
    check_ok!(sys::ioctl(0, sys::FIONREAD, &raw mut queued as usize));
    check_eq!(queued, 0);
    let mut poll = [PollFd {
        fd: 0,
        events: sys::POLLIN | sys::POLLOUT,
        revents: 0,
    }];
    check_eq!(check_ok!(sys::poll(poll.as_mut_ptr() as usize, 1, 0)), 1);
    check_eq!(poll[0].revents, sys::POLLOUT);

    let on = 1u32;
    check_ok!(sys::ioctl(0, sys::FIONBIO, &raw const on as usize));
    let nonblocking = read_byte(0);
    let off = 0u32;
    check_ok!(sys::ioctl(0, sys::FIONBIO, &raw const off as usize));
    check_err!(nonblocking, Errno::EAGAIN);

    check_ok!(original.raw(0, 0).set(0, sys::TCSETS));
    check_eq!(
        check_ok!(read_byte(0)),
        0,
        "VMIN 0, VTIME 0: nothing, at once"
    );
    check_ok!(original.raw(0, 1).set(0, sys::TCSETS));
    let start = sys::monotonic_ns();
    check_eq!(
        check_ok!(read_byte(0)),
        0,
        "VMIN 0, VTIME 1: nothing, after 0.1 s"
    );
    let waited_ms = (sys::monotonic_ns() - start) / 1_000_000;
    check!(
        (90..5000).contains(&waited_ms),
        "VTIME 1 waited {waited_ms} ms"
    );
    Ok(())
}

/// In a child: `Err(step)` unless `ok`, so that the exit status names the step that failed.
fn need(ok: bool, step: i32) -> Result<(), i32> {
    if ok { Ok(()) } else { Err(step) }
}

/// A child running `steps`, which exits 0 or with the number of the step that failed.
fn fork_steps(steps: impl FnOnce() -> Result<(), i32>) -> Result<Child, Errno> {
    Child::fork(|| match steps() {
        Ok(()) => 0,
        Err(step) => step,
    })
}

/// The wait status of `child` once it stops or ends (at most 10 s).
fn stop_or_end(child: &mut Child) -> Option<i32> {
    let status = core::cell::Cell::new(0i32);
    let pid = child.pid;
    let changed = eventually(|| {
        let options = sys::WUNTRACED | sys::WNOHANG;
        sys::wait4(pid, status.as_ptr() as usize, options, 0) == Ok(pid)
    });
    let status = status.get();
    if changed && status & 0x7f != 0x7f {
        child.collected = true;
    }
    changed.then_some(status)
}

/// The status of a child stopped by `signo`.
const fn stopped_by(signo: usize) -> i32 {
    0x7f | (signo as i32) << 8
}

/// A process of the session outside its foreground group: reading the terminal stops it
/// (SIGTTIN), or fails with EIO while it ignores SIGTTIN; changing the settings stops it
/// (SIGTTOU), but not while it blocks SIGTTOU (what a shell does to take the terminal).
fn background_steps(leader: usize) -> Result<(), i32> {
    let in_background = || sys::setpgid(0, 0).is_ok();
    let mut reader = fork_steps(|| {
        need(in_background(), 1)?;
        let tty = open(c"/dev/tty", sys::O_RDWR).map_err(|_| 2)?;
        need(read_byte(tty.0).is_ok(), 3)
    })
    .map_err(|_| 30)?;
    need(stop_or_end(&mut reader) == Some(stopped_by(SIGTTIN)), 31)?;
    let mut ignoring = fork_steps(|| {
        need(in_background(), 1)?;
        need(signal::set_disposition(SIGTTIN, SIG_IGN).is_ok(), 2)?;
        let tty = open(c"/dev/tty", sys::O_RDWR).map_err(|_| 3)?;
        need(read_byte(tty.0) == Err(Errno::EIO), 4)
    })
    .map_err(|_| 32)?;
    need(ignoring.end() == Ok(End::Exited(0)), 33)?;
    let mut changer = fork_steps(|| {
        need(in_background(), 1)?;
        let settings = Termios::get(0).map_err(|_| 2)?;
        need(settings.set(0, sys::TCSETS).is_ok(), 3)
    })
    .map_err(|_| 34)?;
    need(stop_or_end(&mut changer) == Some(stopped_by(SIGTTOU)), 35)?;
    let mut taker = fork_steps(|| {
        need(in_background(), 1)?;
        let me = sys::getpid();
        need(
            signal::sigprocmask(signal::SIG_BLOCK, signal::sigmask(SIGTTOU)).is_ok(),
            2,
        )?;
        need(set_foreground(0, me as i32).is_ok(), 3)?;
        need(foreground(0) == Ok(me), 4)?;
        need(set_foreground(0, leader as i32).is_ok(), 5)
    })
    .map_err(|_| 36)?;
    need(taker.end() == Ok(End::Exited(0)), 37)?;
    need(foreground(0) == Ok(leader), 38)
}

/// A new session's leader takes the console with TIOCSCTTY, then `/dev/tty` is the console,
/// the leader's group the foreground one; it moves the foreground only within the session;
/// TIOCNOTTY gives the console up (the SIGHUP it sends the foreground group is ignored here).
fn session_leader_steps(group_elsewhere: usize) -> Result<(), i32> {
    need(sys::setsid().is_ok(), 1)?;
    let me = sys::getpid();
    need(foreground(0) == Err(Errno::ENOTTY), 2)?;
    need(sys::ioctl(0, sys::TIOCSCTTY, 0).is_ok(), 3)?;
    need(foreground(0) == Ok(me), 4)?;
    need(session(1) == Ok(me), 5)?;
    need(sys::ioctl(0, sys::TIOCSCTTY, 0).is_ok(), 6)?;
    let tty = open(c"/dev/tty", sys::O_RDWR).map_err(|_| 7)?;
    need(tty.stat().map(|st| st.st_rdev) == Ok(device(5, 0)), 8)?;
    need(foreground(tty.0) == Ok(me), 9)?;
    drop(tty);
    need(set_foreground(0, me as i32).is_ok(), 10)?;
    need(set_foreground(0, -1) == Err(Errno::EINVAL), 11)?;
    need(set_foreground(0, NO_PID as i32) == Err(Errno::ESRCH), 12)?;
    need(
        set_foreground(0, group_elsewhere as i32) == Err(Errno::EPERM),
        13,
    )?;
    background_steps(me)?;
    need(signal::set_disposition(SIGHUP, SIG_IGN).is_ok(), 20)?;
    need(sys::ioctl(0, sys::TIOCNOTTY, 0).is_ok(), 21)?;
    need(foreground(0) == Err(Errno::ENOTTY), 22)?;
    need(
        open(c"/dev/tty", sys::O_RDWR).err() == Some(Errno::ENXIO),
        23,
    )
}

pub fn controlling_terminal_and_job_control() -> TestResult {
    if !is_top() {
        skip!("fds 0-2 are a shell's terminal: its job control is the shell's");
    }
    let _restore = check_ok!(console_settings());
    // The console is nobody's controlling terminal yet.
    check_err!(foreground(0), Errno::ENOTTY);
    check_err!(session(0), Errno::ENOTTY);
    check_err!(open(c"/dev/tty", sys::O_RDWR), Errno::ENXIO);
    // A group of this session, for the leader of another to fail to make it its foreground.
    let elsewhere = check_ok!(Child::fork(|| {
        let _ = sys::setpgid(0, 0);
        sys::sleep_ns(20_000_000_000);
        0
    }));
    let _ = sys::setpgid(elsewhere.pid, elsewhere.pid);
    let mut leader = check_ok!(fork_steps(|| session_leader_steps(elsewhere.pid)));
    check_eq!(
        check_ok!(leader.end()),
        End::Exited(0),
        "the session leader's steps (the status is the step that failed)"
    );
    // TIOCNOTTY gave the console up.
    check_err!(foreground(0), Errno::ENOTTY);
    Ok(())
}

/// Opening /dev/ttyS0 makes it a session leader's controlling terminal, unless O_NOCTTY;
/// opening /dev/console never does.
pub fn opening_the_serial_line_takes_it() -> TestResult {
    if !is_top() {
        skip!("fds 0-2 are a shell's terminal: its job control is the shell's");
    }
    let mut leader = check_ok!(fork_steps(|| {
        need(sys::setsid().is_ok(), 1)?;
        let me = sys::getpid();
        let console = open(c"/dev/console", sys::O_RDWR).map_err(|_| 2)?;
        need(foreground(console.0) == Err(Errno::ENOTTY), 3)?;
        let quiet = open(c"/dev/ttyS0", sys::O_RDWR | sys::O_NOCTTY).map_err(|_| 4)?;
        need(foreground(quiet.0) == Err(Errno::ENOTTY), 5)?;
        let serial = open(c"/dev/ttyS0", sys::O_RDWR).map_err(|_| 6)?;
        need(foreground(serial.0) == Ok(me), 7)?;
        need(foreground(console.0) == Ok(me), 8)?;
        need(signal::set_disposition(SIGHUP, SIG_IGN).is_ok(), 9)?;
        need(sys::ioctl(serial.0, sys::TIOCNOTTY, 0).is_ok(), 10)
    }));
    check_eq!(
        check_ok!(leader.end()),
        End::Exited(0),
        "the session leader's steps (the status is the step that failed)"
    );
    Ok(())
}
