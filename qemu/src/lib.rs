//! Host-side library for running the kernel's disk images under QEMU and judging the result.
//!
//! The `xtask` command line uses it for `cargo xtask qemu` (an interactive session on the
//! developer's terminal) and `cargo xtask test` (captured runs whose serial output is checked).
//!
//! - [`Qemu::find`] locates `qemu-system-x86_64`, reads its [`Version`] and looks for OVMF
//!   firmware ([`Ovmf`]), which only UEFI runs need.
//! - A [`Profile`] describes one virtual machine (firmware, CPUs, memory, accelerator);
//!   [`Qemu::command`] turns a profile and an image into a QEMU command line.
//! - [`Qemu::run`] runs an image with captured serial output and a timeout, and
//!   [`Qemu::run_interactive`] hands the terminal to the guest's COM1.
//! - [`Outcome`] interprets QEMU's exit status: the kernel leaves QEMU through the
//!   `isa-debug-exit` device with [`GUEST_SUCCESS`] or [`GUEST_FAILURE`].
//! - [`ktap`] parses the KTAP output of the kernel's test runner and judges whether the run
//!   was complete and successful.
//!
//! The library supports Unix hosts only (it relies on Unix exit statuses and signals).

#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("the qemu crate supports Unix hosts only");

mod find;
pub mod ktap;
mod outcome;
mod profile;
mod run;
mod sigint;
mod temp;
#[cfg(test)]
mod testutil;

pub use find::{FindError, Ovmf, QEMU_BINARY, Qemu, Version};
pub use outcome::{GUEST_FAILURE, GUEST_SUCCESS, Outcome, exit_status_for};
pub use profile::{Accel, Firmware, Machine, Profile, QemuCommand, SerialIo, shell_quote};
pub use run::{Echo, RunError, RunOptions, RunResult, Typed};
