//! `echoline`: prompts with `type> ` on the console (its standard output), reads a line from
//! its standard input and writes it back as `echo: LINE`, until end of file or the line `exit`.
//! The screen test (xtask/src/screen.rs) runs it as init and types at it through QEMU's
//! keyboard.

#![no_std]
#![no_main]

use urt::io::write_all;
use urt::sys::{self, Errno};

urt::main!(main);

const PROMPT: &[u8] = b"type> ";
const ECHO: &[u8] = b"echo: ";

fn main() -> i32 {
    let mut line = [0u8; 512];
    loop {
        write_all(1, PROMPT);
        let count = match sys::read(0, line.as_mut_ptr() as usize, line.len()) {
            Ok(0) => return 0,
            Ok(count) => count,
            Err(Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        let text = line[..count].strip_suffix(b"\n").unwrap_or(&line[..count]);
        if text == b"exit" {
            return 0;
        }
        write_all(1, ECHO);
        write_all(1, text);
        write_all(1, b"\n");
    }
}
