//! The end of the line: the panic handler and fatal exceptions.
//!
//! Both print what happened (message or exception report, location, CPU, backtrace), let the
//! test runner turn it into a KTAP result where one is running, and leave QEMU with the failure
//! exit code (on real hardware: halt). A test's panic is instead caught by the runner, which
//! reports it and goes on (see [`crate::ktest`]).

use core::fmt;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::{self, ExitCode, backtrace, trap::TrapFrame};
use crate::console::emergency_write;

/// Set by the first fatal error: a second one while reporting the first just stops the machine.
static DYING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    crate::ktest::catch_test_panic(info);
    if DYING.swap(true, Ordering::SeqCst) {
        arch::exit(ExitCode::Failure);
    }
    emergency_write(format_args!(
        "\nKERNEL PANIC on CPU 0: {}\n",
        info.message()
    ));
    if let Some(location) = info.location() {
        emergency_write(format_args!(
            "  at {}:{}:{}\n",
            location.file(),
            location.line(),
            location.column()
        ));
    }
    write_backtrace(backtrace::current_frame_pointer());
    crate::ktest::abort_run(format_args!("kernel panic: {}", info.message()))
}

/// An unrecoverable exception: prints `report` and a backtrace, then stops the machine.
pub fn fatal(report: fmt::Arguments, frame: Option<&TrapFrame>) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        arch::exit(ExitCode::Failure);
    }
    emergency_write(format_args!("\n{report}\n"));
    if let Some(frame) = frame {
        write_backtrace(frame.rbp);
    }
    crate::ktest::abort_run(format_args!("fatal exception (report above)"))
}

fn write_backtrace(rbp: u64) {
    struct Console;
    impl fmt::Write for Console {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            emergency_write(format_args!("{s}"));
            Ok(())
        }
    }
    emergency_write(format_args!("backtrace:\n"));
    let _ = backtrace::write(&mut Console, rbp);
}
