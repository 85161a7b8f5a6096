//! QEMU exit statuses and what they mean for a run of the kernel.
//!
//! The kernel leaves QEMU by writing a `u32` to I/O port 0xf4, where the `isa-debug-exit`
//! device sits; QEMU then exits with status `(value << 1) | 1`. Any other way out (a triple
//! fault with `-no-reboot`, an ACPI power-off, an error in QEMU itself) gives a status that no
//! value written to the port can produce, so the kernel's verdict cannot be faked by accident.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The value the kernel writes to port 0xf4 when it succeeded (QEMU exits with 33).
pub const GUEST_SUCCESS: u32 = 0x10;
/// The value the kernel writes to port 0xf4 when it failed (QEMU exits with 35).
pub const GUEST_FAILURE: u32 = 0x11;

/// The exit status QEMU reports after the guest writes `value` to the `isa-debug-exit` port
/// (only the low 8 bits of a Unix exit status survive).
pub const fn exit_status_for(value: u32) -> i32 {
    (((value << 1) | 1) & 0xff) as i32
}

/// How a QEMU run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The kernel wrote [`GUEST_SUCCESS`] to the exit port.
    Success,
    /// The kernel wrote [`GUEST_FAILURE`] to the exit port.
    Failure,
    /// The run took longer than its timeout and QEMU was killed.
    TimedOut,
    /// QEMU was ended by a signal, or the user interrupted the run with Ctrl-C; callers running
    /// several images should stop.
    Killed,
    /// QEMU exited with a status that is not the kernel's success or failure code: 0 when the
    /// guest reset or powered off (a triple fault, with `-no-reboot`), 1 when QEMU itself
    /// failed, another odd status when the kernel wrote an unknown value to the exit port.
    UnexpectedExit(i32),
}

impl Outcome {
    /// Interprets QEMU's exit status.
    pub fn from_status(status: ExitStatus) -> Outcome {
        match status.code() {
            Some(code) => Outcome::from_code(code),
            None => {
                debug_assert!(status.signal().is_some());
                Outcome::Killed
            }
        }
    }

    /// Interprets the exit code of a QEMU that exited on its own (as a shell's `$?` records
    /// it, for runs made outside xtask).
    pub fn from_code(code: i32) -> Outcome {
        match code {
            code if code == exit_status_for(GUEST_SUCCESS) => Outcome::Success,
            code if code == exit_status_for(GUEST_FAILURE) => Outcome::Failure,
            code => Outcome::UnexpectedExit(code),
        }
    }

    /// Whether the kernel reported success.
    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Outcome::Success => f.write_str("the kernel reported success"),
            Outcome::Failure => f.write_str("the kernel reported failure"),
            Outcome::TimedOut => f.write_str("timed out: QEMU was killed"),
            Outcome::Killed => f.write_str("QEMU was killed by a signal (Ctrl-C?)"),
            Outcome::UnexpectedExit(0) => {
                f.write_str("QEMU exited without the kernel's exit code (triple fault or reset?)")
            }
            Outcome::UnexpectedExit(1) => f.write_str("QEMU failed to start or reported an error"),
            Outcome::UnexpectedExit(code) if code & 1 == 1 => write!(
                f,
                "the kernel wrote unknown exit code {:#x} (QEMU exit status {code})",
                code >> 1
            ),
            Outcome::UnexpectedExit(code) => write!(f, "QEMU exited with unexpected status {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exit status as `waitpid` reports a normal exit with `code`.
    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn guest_codes_map_to_qemu_statuses() {
        assert_eq!(exit_status_for(GUEST_SUCCESS), 33);
        assert_eq!(exit_status_for(GUEST_FAILURE), 35);
    }

    #[test]
    fn maps_exit_statuses() {
        assert_eq!(Outcome::from_status(exited(33)), Outcome::Success);
        assert_eq!(Outcome::from_status(exited(35)), Outcome::Failure);
        assert_eq!(Outcome::from_status(exited(0)), Outcome::UnexpectedExit(0));
        assert_eq!(Outcome::from_status(exited(1)), Outcome::UnexpectedExit(1));
        assert_eq!(Outcome::from_status(exited(7)), Outcome::UnexpectedExit(7));
        // Killed by SIGKILL (9) and by SIGINT (2).
        assert_eq!(
            Outcome::from_status(ExitStatus::from_raw(9)),
            Outcome::Killed
        );
        assert_eq!(
            Outcome::from_status(ExitStatus::from_raw(2)),
            Outcome::Killed
        );
        assert!(Outcome::Success.is_success());
        assert!(!Outcome::Failure.is_success());
    }

    #[test]
    fn explains_outcomes_in_one_line() {
        assert_eq!(
            Outcome::UnexpectedExit(0).to_string(),
            "QEMU exited without the kernel's exit code (triple fault or reset?)"
        );
        assert_eq!(
            Outcome::UnexpectedExit(1).to_string(),
            "QEMU failed to start or reported an error"
        );
        assert_eq!(
            Outcome::UnexpectedExit(7).to_string(),
            "the kernel wrote unknown exit code 0x3 (QEMU exit status 7)"
        );
        assert_eq!(
            Outcome::UnexpectedExit(2).to_string(),
            "QEMU exited with unexpected status 2"
        );
        for outcome in [
            Outcome::Success,
            Outcome::Failure,
            Outcome::TimedOut,
            Outcome::Killed,
        ] {
            let text = outcome.to_string();
            assert!(!text.is_empty() && !text.contains('\n'));
        }
    }
}
