//! `print!`, `println!`, `eprint!`, `eprintln!`: one write(2) per call.
//!
//! Each call formats into a 1 KiB stack buffer and writes it with one system call, so that
//! lines printed by different threads do not mix; only a call whose text exceeds the buffer is
//! written in several pieces.

use core::fmt::{self, Write};

use crate::sys::{self, Errno};

const BUF: usize = 1024;

/// A formatting sink that collects text and writes it to `fd` when full or finished.
pub struct FdWriter {
    fd: usize,
    len: usize,
    buf: [u8; BUF],
}

impl FdWriter {
    pub const fn new(fd: usize) -> Self {
        Self {
            fd,
            len: 0,
            buf: [0; BUF],
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for FdWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == BUF {
                self.flush();
            }
            let n = bytes.len().min(BUF - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Writes all of `bytes` to `fd`, retrying after partial writes and EINTR; gives up silently
/// on other errors (there is nowhere to report them).
pub fn write_all(fd: usize, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match sys::write(fd, bytes.as_ptr() as usize, bytes.len()) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[doc(hidden)]
pub fn print_to(fd: usize, args: fmt::Arguments<'_>) {
    let mut w = FdWriter::new(fd);
    let _ = w.write_fmt(args);
    w.flush();
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print_to(1, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::io::print_to(1, format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print_to(1, format_args!("{}\n", format_args!($($arg)*))) };
}

#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::io::print_to(2, format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! eprintln {
    () => { $crate::io::print_to(2, format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print_to(2, format_args!("{}\n", format_args!($($arg)*))) };
}
