//! The end of the line: the panic handler and fatal exceptions.
//!
//! Both stop the other CPUs with an NMI (each records where it was), print what happened
//! (message or exception report, location, CPU, backtrace, and where every other CPU stopped),
//! let the test runner turn it into a KTAP result where one is running, and leave QEMU with the
//! failure exit code (on real hardware: halt). In a test image (feature `ktest`) a test's panic
//! is instead caught by the runner, which reports it and goes on (see `crate::ktest`).

use core::fmt;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::{self, ExitCode, backtrace, percpu, smp, trap::TrapFrame};
use crate::console::emergency_write;

/// The CPU (index + 1) that is reporting a fatal error; 0 while none is.
static DYING: AtomicUsize = AtomicUsize::new(0);

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    #[cfg(feature = "ktest")]
    crate::ktest::catch_test_panic(info);
    begin_dying();
    emergency_write(format_args!(
        "\nKERNEL PANIC on CPU {}: {}\n",
        percpu::cpu_index(),
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
    report_other_cpus();
    end_run(format_args!("kernel panic: {}", info.message()))
}

/// An unrecoverable exception: prints `report` and a backtrace, then stops the machine.
pub fn fatal(report: fmt::Arguments, frame: Option<&TrapFrame>) -> ! {
    begin_dying();
    emergency_write(format_args!("\n{report}\n"));
    if let Some(frame) = frame {
        write_backtrace(frame.rbp);
    }
    report_other_cpus();
    end_run(format_args!("fatal exception (report above)"))
}

/// Leaves QEMU with failure: in a test image, through the test runner, which first reports the
/// test in progress as failed with `reason` and the rest as not run.
#[cfg(feature = "ktest")]
fn end_run(reason: fmt::Arguments) -> ! {
    crate::ktest::abort_run(reason)
}

/// Leaves QEMU with failure (the report is already on the console).
#[cfg(not(feature = "ktest"))]
fn end_run(_reason: fmt::Arguments) -> ! {
    arch::exit(ExitCode::Failure)
}

/// Claims the right to report, then stops the other CPUs. A CPU that fails while another one
/// reports halts quietly (the report is under way); one that fails again while reporting exits.
fn begin_dying() {
    let me = percpu::cpu_index() + 1;
    match DYING.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        Err(holder) if holder == me => arch::exit(ExitCode::Failure),
        Err(_) => arch::halt_forever(),
    }
    smp::stop_other_cpus();
}

/// Where each other online CPU was when the NMI stopped it.
fn report_other_cpus() {
    let me = percpu::cpu_index();
    for cpu in percpu::online_cpus().filter(|c| c.index != me) {
        match cpu.stopped_at.get() {
            Some(&(rip, rsp, rbp)) => {
                emergency_write(format_args!("CPU {} stopped at RIP {rip:#018x}", cpu.index));
                if let Some((name, offset)) = arch::symbols::lookup(rip) {
                    emergency_write(format_args!(" <{name}+{offset:#x}>"));
                }
                emergency_write(format_args!(", RSP {rsp:#018x}\n"));
                write_backtrace(rbp);
            }
            None => emergency_write(format_args!(
                "CPU {} did not answer the stop NMI\n",
                cpu.index
            )),
        }
    }
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
