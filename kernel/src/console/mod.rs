//! The console: the `log` backend, the byte sink for test output and terminal output, and the
//! serial line's input.
//!
//! Owns COM1 (when a UART answers the loopback test), the bootloader's framebuffer (when there
//! is one; a terminal of its own, see [`framebuffer`]) and the PS/2 keyboard (when an i8042
//! answers, see [`keyboard`]): one console, as Linux's `console=ttyS0 console=tty0` would be
//! if both showed the shell. Every line and all terminal output go to the serial line and the
//! screen, and what the serial line and the keyboard receive goes to the same terminal, so a
//! machine without a serial port still shows its boot and test output on screen and gives a
//! shell to its keyboard. All of it sits behind one spinlock, taken with interrupts disabled so
//! that an interrupt handler that logs cannot deadlock against the code it interrupted.
//!
//! The lock is held for one log line, one [`print!`], or one piece of terminal output: the
//! terminal (`fs::tty`) sends a user write a line at a time, at most [`TERMINAL_PIECE_MAX`]
//! bytes under the lock, so other CPUs keep logging (and taking interrupts) while a large write
//! is in progress. A log line always starts on a line of its own: if terminal output left the
//! line unfinished, the log line is preceded by a line break (as Linux's printk does after an
//! unterminated message). Log lines end in `\r\n` on the serial line; terminal output goes out
//! as the terminal's output processing made it.
//!
//! Input: the serial receive interrupt ([`serial_interrupt`], routed by `arch::ioapic`) moves
//! the UART's bytes into a small buffer under the same lock and has [`INPUT_ARRIVED`] woken;
//! the keyboard interrupt puts what the keys send there too ([`keyboard_input`]);
//! the terminal's input worker takes them ([`take_input`]), reading the UART directly too, which
//! is all it does where the interrupt could not be routed.
//!
//! Log lines look like `[    1.234567] cpu0 INFO  message`: seconds since boot from the
//! calibrated TSC, the CPU, the level, the text. Test output (KTAP) is written with [`print!`] and carries no prefix.

#[deny(unsafe_code)]
mod framebuffer;
pub mod keyboard;
mod serial;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::sync::{IrqSpinLock, WaitQueue};
use bootloader_api::info::FrameBuffer;

use crate::time;

/// The most bytes of terminal output written under the console lock at once (one line, or
/// this much of a longer one, after output processing). It bounds how long other CPUs wait and
/// interrupts stay off: about 5 ms under QEMU's TCG (10 µs a byte for the serial port and the
/// screen together, measured), 45 ms on a real 115200-baud line. Long enough for a whole KTAP
/// line of a user test, so that no log line lands inside one.
pub const TERMINAL_PIECE_MAX: usize = 512;

/// Bytes the serial line received and the terminal has not taken yet: a ring.
const RECEIVED_MAX: usize = 256;

struct Received {
    bytes: [u8; RECEIVED_MAX],
    start: usize,
    len: usize,
}

impl Received {
    /// Keeps `byte`, or drops it when the ring is full (the terminal's worker fell behind by a
    /// whole ring, or is not running yet).
    fn push(&mut self, byte: u8) {
        if self.len < RECEIVED_MAX {
            self.bytes[(self.start + self.len) % RECEIVED_MAX] = byte;
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.bytes[self.start];
        self.start = (self.start + 1) % RECEIVED_MAX;
        self.len -= 1;
        Some(byte)
    }
}

struct Console {
    serial: Option<serial::Serial>,
    screen: framebuffer::Screen,
    /// Whether the last byte written ended a line (or nothing was written yet).
    at_line_start: bool,
    received: Received,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(serial) = &mut self.serial {
            serial.write_str(s);
        }
        self.screen.write_str(s);
        self.note_written(s.as_bytes());
        Ok(())
    }
}

impl Console {
    /// Writes terminal output verbatim (the screen decodes them as UTF-8, see [`framebuffer`]).
    fn write_terminal_bytes(&mut self, bytes: &[u8]) {
        if let Some(serial) = &mut self.serial {
            serial.write_bytes(bytes);
        }
        self.screen.write_bytes(bytes);
        self.note_written(bytes);
    }

    /// Keeps [`Console::at_line_start`] up to date after `bytes` went out.
    fn note_written(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.at_line_start = last == b'\n';
        }
    }
}

const NOTHING_RECEIVED: Received = Received {
    bytes: [0; RECEIVED_MAX],
    start: 0,
    len: 0,
};

static CONSOLE: IrqSpinLock<Console> = IrqSpinLock::new(Console {
    serial: None,
    screen: framebuffer::Screen::new(),
    at_line_start: true,
    received: NOTHING_RECEIVED,
});

/// Woken when the serial line or the keyboard received bytes ([`serial_interrupt`],
/// [`keyboard_input`]).
static INPUT_ARRIVED: WaitQueue = WaitQueue::new();

/// Set once a panic has begun: from then on output ignores the lock (see [`emergency_write`]).
static PANICKING: AtomicBool = AtomicBool::new(false);

struct Logger;

static LOGGER: Logger = Logger;

/// Brings up COM1 and the framebuffer console and installs the logger at `Info`.
pub fn init(framebuffer: Option<FrameBuffer>) {
    let serial = serial::Serial::probe_com1();
    let has_serial = serial.is_some();
    let has_screen = {
        // Field by field: the screen's grid is too large to build on the boot stack.
        let mut console = CONSOLE.lock();
        console.serial = serial;
        console.at_line_start = true;
        framebuffer.is_some_and(|framebuffer| console.screen.attach(framebuffer))
    };
    // `set_logger` fails only if a logger is already installed; this runs once, first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    log::info!(
        "console: serial COM1 {}, framebuffer {}",
        if has_serial { "present" } else { "absent" },
        if has_screen { "present" } else { "absent" }
    );
    if has_screen {
        let (columns, rows) = CONSOLE.lock().screen.size();
        log::info!("console: the screen is a {columns}x{rows} terminal");
    }
}

/// Starts the `screen` kernel thread, which draws screen output that waited because it
/// scrolled too soon after the last scroll (see [`framebuffer`]); nothing without a screen.
pub fn start_screen_refresh() {
    if !CONSOLE.lock().screen.is_present() {
        return;
    }
    let refresh = || {
        loop {
            let _ = crate::sched::timer::sleep_ns(framebuffer::SCROLL_DRAW_INTERVAL_NS);
            CONSOLE.lock().screen.draw();
        }
    };
    if crate::sched::spawn_kernel("screen", refresh).is_none() {
        log::warn!("console: no memory for the screen's refresh thread");
    }
}

/// Which devices make the console (the `console=` boot option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Devices {
    /// The serial line, and the screen with the keyboard.
    Both,
    Serial,
    /// The screen and the keyboard: COM1 is left alone.
    Screen,
}

impl Devices {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "both" => Some(Self::Both),
            "serial" => Some(Self::Serial),
            "screen" => Some(Self::Screen),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Serial => "serial",
            Self::Screen => "screen",
        }
    }
}

/// Keeps only `devices` for the console from now on (a device that is absent stays so).
/// Returns the screen's size (columns, rows) when the screen alone is the console, for the
/// terminal's window size.
pub fn select(devices: Devices) -> Option<(usize, usize)> {
    let mut console = CONSOLE.lock();
    match devices {
        Devices::Both => None,
        Devices::Serial => {
            console.screen.detach();
            None
        }
        Devices::Screen => {
            if !console.screen.is_present() {
                // Nothing would show at all: keep the serial line.
                return None;
            }
            console.serial = None;
            Some(console.screen.size())
        }
    }
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

/// Writes one piece of terminal output (at most [`TERMINAL_PIECE_MAX`] bytes, ready for the
/// line: the terminal did the output processing) under the lock, so that no log line lands
/// inside it.
pub fn write_terminal_piece(bytes: &[u8]) {
    debug_assert!(bytes.len() <= TERMINAL_PIECE_MAX);
    CONSOLE.lock().write_terminal_bytes(bytes);
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
    let mut console = CONSOLE.lock();
    let _ = console.write_fmt(args);
    // Nothing may come after this to draw what waited.
    console.screen.draw();
}

/// Has the UART raise its interrupt when bytes arrive, once `arch::ioapic` routed it; false
/// without a serial port.
pub fn enable_receive_interrupt() -> bool {
    let mut console = CONSOLE.lock();
    let Some(serial) = &mut console.serial else {
        return false;
    };
    serial.enable_receive_interrupt();
    true
}

/// COM1's receive interrupt (interrupt context): keeps what the UART holds for the terminal
/// and has its worker woken.
pub fn serial_interrupt() {
    {
        let mut console = CONSOLE.lock();
        let Console {
            serial, received, ..
        } = &mut *console;
        if let Some(serial) = serial {
            while let Some(byte) = serial.try_read() {
                received.push(byte);
            }
        }
    }
    INPUT_ARRIVED.wake_all_from_interrupt();
}

/// Bytes the keyboard sent (interrupt context): kept for the terminal like the serial line's,
/// and its worker woken.
pub fn keyboard_input(bytes: &[u8]) {
    {
        let mut console = CONSOLE.lock();
        for &byte in bytes {
            console.received.push(byte);
        }
    }
    INPUT_ARRIVED.wake_all_from_interrupt();
}

/// Moves received bytes into `out`, oldest first: those the interrupt kept, then those still in
/// the UART. Returns how many.
pub fn take_input(out: &mut [u8]) -> usize {
    let mut console = CONSOLE.lock();
    let Console {
        serial, received, ..
    } = &mut *console;
    let mut count = 0;
    for slot in out.iter_mut() {
        let Some(byte) = received
            .pop()
            .or_else(|| serial.as_mut().and_then(serial::Serial::try_read))
        else {
            break;
        };
        *slot = byte;
        count += 1;
    }
    count
}

/// Sleeps until the receive interrupt kept bytes, or until `deadline` (ns since boot) if given:
/// without the interrupt, the caller polls [`take_input`] that often.
pub fn wait_for_input(deadline: Option<u64>) {
    let _ = INPUT_ARRIVED.wait_interruptible(|| CONSOLE.lock().received.len > 0, deadline);
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
