//! The console: the `log` backend and the byte sink for test output.
//!
//! Owns COM1 (when a UART answers the loopback test) and the bootloader's framebuffer (when
//! there is one); every line goes to both, so a machine without a serial port still shows its
//! boot and test output on screen. Both sit behind one spinlock, taken with interrupts disabled
//! so that an interrupt handler that logs cannot deadlock against the code it interrupted.
//!
//! The lock is held for one log line, one [`print!`], or one piece of user output: user writes
//! of any size are sent a line at a time, at most [`USER_PIECE_MAX`] bytes under the lock, so
//! other CPUs keep logging (and taking interrupts) while a large write is in progress. A log
//! line always starts on a line of its own: if user output left the line unfinished, the log
//! line is preceded by a line break (as Linux's printk does after an unterminated message).
//!
//! Log lines look like `[    1.234567] cpu0 INFO  message`: seconds since boot from the
//! calibrated TSC, the CPU, the level, the text. Test output (KTAP) is written with [`print!`] and carries no prefix.

#[deny(unsafe_code)]
mod framebuffer;
mod serial;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::sync::IrqSpinLock;
use bootloader_api::info::FrameBuffer;

use crate::time;

/// The most bytes of user output written under the console lock at once (one line, or this
/// much of a longer one). It bounds how long other CPUs wait and interrupts stay off: about
/// 2.5 ms under QEMU's TCG (10 µs a byte for the serial port and the screen together,
/// measured), 22 ms on a real 115200-baud line. Long enough for a whole KTAP line of a user
/// test, so that no log line lands inside one.
const USER_PIECE_MAX: usize = 256;

struct Console {
    serial: Option<serial::Serial>,
    screen: Option<framebuffer::Screen>,
    /// Whether the last byte written ended a line (or nothing was written yet).
    at_line_start: bool,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(serial) = &mut self.serial {
            serial.write_str(s);
        }
        if let Some(screen) = &mut self.screen {
            screen.write_str(s);
        }
        self.note_written(s.as_bytes());
        Ok(())
    }
}

impl Console {
    /// Writes user bytes verbatim (the screen decodes them as UTF-8, see [`framebuffer`]).
    fn write_user_bytes(&mut self, bytes: &[u8]) {
        if let Some(serial) = &mut self.serial {
            serial.write_bytes(bytes);
        }
        if let Some(screen) = &mut self.screen {
            screen.write_bytes(bytes);
        }
        self.note_written(bytes);
    }

    /// Keeps [`Console::at_line_start`] up to date after `bytes` went out.
    fn note_written(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.at_line_start = last == b'\n';
        }
    }
}

static CONSOLE: IrqSpinLock<Console> = IrqSpinLock::new(Console {
    serial: None,
    screen: None,
    at_line_start: true,
});

/// Set once a panic has begun: from then on output ignores the lock (see [`emergency_write`]).
static PANICKING: AtomicBool = AtomicBool::new(false);

struct Logger;

static LOGGER: Logger = Logger;

/// Brings up COM1 and the framebuffer console and installs the logger at `Info`.
pub fn init(framebuffer: Option<FrameBuffer>) {
    let serial = serial::Serial::probe_com1();
    let screen = framebuffer.and_then(framebuffer::Screen::new);
    let (has_serial, has_screen) = (serial.is_some(), screen.is_some());
    *CONSOLE.lock() = Console {
        serial,
        screen,
        at_line_start: true,
    };
    // `set_logger` fails only if a logger is already installed; this runs once, first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    log::info!(
        "console: serial COM1 {}, framebuffer {}",
        if has_serial { "present" } else { "absent" },
        if has_screen { "present" } else { "absent" }
    );
}

pub fn set_max_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

/// Writes formatted text to the console without a log prefix (used by [`print!`]).
pub fn write_fmt(args: fmt::Arguments) {
    if PANICKING.load(Ordering::Relaxed) {
        emergency_write(args);
        return;
    }
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Writes bytes a user program sent to fd 1 or 2, verbatim (only `\n` becomes `\r\n` on the
/// serial line, as a terminal expects), a piece at a time: each line, or each
/// [`USER_PIECE_MAX`] bytes of a longer one, under the lock, which is released (and interrupts
/// restored) between pieces. Log lines from other CPUs may come between two lines of `bytes`.
pub fn write_bytes(bytes: &[u8]) {
    for piece in user_pieces(bytes) {
        CONSOLE.lock().write_user_bytes(piece);
    }
}

/// `bytes` cut after each line break and after every [`USER_PIECE_MAX`] bytes of a longer line.
fn user_pieces(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|line| line.chunks(USER_PIECE_MAX))
}

/// Writes one log line (without its line break): on a line of its own, whole.
fn write_log_line(args: fmt::Arguments) {
    if PANICKING.load(Ordering::Relaxed) {
        emergency_write(format_args!("{args}\n"));
        return;
    }
    let mut console = CONSOLE.lock();
    if !console.at_line_start {
        let _ = console.write_str("\n");
    }
    let _ = writeln!(console, "{args}");
}

/// Output for the panic and fatal-exception paths: takes the console even if its lock is held.
///
/// The lock holder may be the code that just failed (a panic inside a `write!` to the console),
/// and it will never run again, so waiting for it would hang the report.
pub fn emergency_write(args: fmt::Arguments) {
    PANICKING.store(true, Ordering::Relaxed);
    if CONSOLE.is_locked() {
        // SAFETY: only the failing context writes from here on: the panic path stops every
        // other CPU (smp::stop_other_cpus) before it writes, so the holder never runs again.
        unsafe { CONSOLE.force_unlock() };
    }
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Reads one byte from COM1 if one is waiting (the debug keys, see debug_keys.rs).
pub fn poll_key() -> Option<u8> {
    CONSOLE
        .lock()
        .serial
        .as_mut()
        .and_then(serial::Serial::try_read)
}

/// Whether a byte from COM1 is waiting for [`poll_key`] (it is not taken).
pub fn input_waiting() -> bool {
    CONSOLE
        .lock()
        .serial
        .as_mut()
        .is_some_and(serial::Serial::has_input)
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let nanos = time::now_ns();
        write_log_line(format_args!(
            "[{:>5}.{:06}] cpu{} {:<5} {}",
            nanos / 1_000_000_000,
            (nanos % 1_000_000_000) / 1000,
            crate::arch::percpu::cpu_index(),
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

/// Prints to the console (serial and screen) with no prefix.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::write_fmt(format_args!($($arg)*)));
}

/// [`print!`] with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::print!("{}\n", format_args!($($arg)*)));
}
