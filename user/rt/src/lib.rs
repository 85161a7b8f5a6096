//! `urt`: the runtime of the user programs in `user/`.
//!
//! Static, `no_std` x86_64 programs that speak the Linux syscall ABI and so run unchanged on
//! Linux and on this project's kernel. The runtime provides:
//!
//! - `_start` (see [`start`]): reads argc/argv/envp/auxv from the SysV initial stack, gives the
//!   main thread its thread block through `arch_prctl(ARCH_SET_FS)` (the only system call made
//!   before `main`), calls the program's `main` and ends with `exit_group(status)`;
//! - raw `syscall0..6` and typed wrappers returning `Result<usize, Errno>` ([`sys`]);
//! - `print!`/`println!`/`eprintln!`: each call formats into a buffer and issues one write(2),
//!   so lines from different threads do not interleave ([`io`]);
//! - a thread-safe global allocator on mmap ([`heap`]);
//! - threads created with clone(2) and joined through the kernel's clear-child-tid futex wake
//!   ([`thread`]);
//! - signal types, handler installation and the `rt_sigreturn` trampoline ([`signal`]);
//! - a KTAP version 1 test harness ([`ktap`]);
//! - as Linux's `/init`, the pseudo filesystems a distribution's init would mount ([`init`]);
//! - a panic handler that prints the message and location and exits with status 101.
//!
//! A program names its entry point with [`main!`]: `urt::main!(main);` where
//! `fn main() -> i32`.

#![no_std]

extern crate alloc;

pub mod fs;
pub mod heap;
pub mod init;
pub mod io;
pub mod ktap;
pub mod signal;
pub mod start;
pub mod sync;
pub mod sys;
pub mod thread;

pub use sys::Errno;

/// Declares the program's entry point: `urt::main!(my_main);` with `fn my_main() -> i32`.
/// The return value becomes the process's exit status.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "Rust" fn __urt_main() -> i32 {
            $main()
        }
    };
}
