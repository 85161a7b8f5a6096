//! The in-kernel test runner: tests declared next to the code they test with [`ktest!`], run
//! when the kernel boots with the `test` option, reported over the console in KTAP version 1
//! and closed by the line `N passed, N failed`; then QEMU exits with success or failure.
//!
//! Only test images have any of it: the runner, every test module (`mod ktests`, each under
//! `#[cfg(feature = "ktest")]`) and the hooks the tests use are compiled with the kernel's
//! cargo feature `ktest`, which `cargo xtask test` turns on (and `qemu`/`image` when their
//! options include `test`); production kernels are built without it.
//!
//! A test that panics is reported `not ok` with its message and the run goes on, unless the
//! panic left a lock held that the rest of the run needs (heap, frames, console): then the run
//! ends with every remaining test reported as not run. A test that runs past its timeout is
//! stopped by the timer interrupt and reported the same way as a panic. A test that hangs with
//! interrupts disabled is beyond the kernel's reach; the host's timeout reports it.
//!
//! State: one test runs at a time, on the CPU that booted; [`RUN`] holds what the panic and
//! timer paths of that CPU need to find it. A panic on another CPU during a test is a kernel
//! panic: it stops the machine, and the run ends with the test in progress failed.

mod selftest;
mod soak;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::fmtbuf::FmtBuffer;
use crate::arch::jump::{self, JumpBuffer};
use crate::arch::trap::TrapFrame;
use crate::arch::{self, ExitCode, backtrace};
use crate::boot_options::BootOptions;
use crate::{console, mm, println, time};
use spin::Once;

/// One test, as [`ktest!`] records it in the `ktest_cases` link section.
#[repr(C)]
pub struct TestCase {
    /// The test's path without the crate name, e.g. `mm::heap::ktests::many_sizes`.
    pub name: &'static str,
    pub run: fn(),
    /// 0 for the run's default (`ktest.timeout_ms`).
    pub timeout_ms: u64,
}

/// Declares an in-kernel test; it runs when the kernel boots with the `test` option.
///
/// ```ignore
/// ktest! {
///     fn frames_coalesce() { ... }
/// }
/// ktest! {
///     timeout_ms = 60_000;
///     fn a_long_one() { ... }
/// }
/// ```
#[macro_export]
macro_rules! ktest {
    ($(timeout_ms = $timeout:expr;)? $(#[$attr:meta])* fn $name:ident() $body:block) => {
        $(#[$attr])*
        fn $name() $body

        const _: () = {
            // The section only collects the cases for the runner; tests in modules denied
            // `unsafe` may declare cases too.
            #[allow(unsafe_code)]
            #[used]
            #[unsafe(link_section = "ktest_cases")]
            static CASE: $crate::ktest::TestCase = $crate::ktest::TestCase {
                name: $crate::ktest::strip_crate(concat!(module_path!(), "::", stringify!($name))),
                run: $name,
                timeout_ms: 0 $(+ $timeout)?,
            };
        };
    };
}

/// `kernel::mm::x` → `mm::x`, at compile time.
pub const fn strip_crate(path: &'static str) -> &'static str {
    let prefix = b"kernel::";
    let bytes = path.as_bytes();
    if bytes.len() <= prefix.len() {
        return path;
    }
    let mut i = 0;
    while i < prefix.len() {
        if bytes[i] != prefix[i] {
            return path;
        }
        i += 1;
    }
    let (_, rest) = bytes.split_at(prefix.len());
    match core::str::from_utf8(rest) {
        Ok(rest) => rest,
        Err(_) => path,
    }
}

unsafe extern "C" {
    static __start_ktest_cases: [u8; 0];
    static __stop_ktest_cases: [u8; 0];
}

fn registered_cases() -> &'static [TestCase] {
    // SAFETY: the linker gathers every `ktest_cases` static (all of type `TestCase`) between
    // these symbols; the section is never written after load.
    unsafe {
        let start = __start_ktest_cases.as_ptr().cast::<TestCase>();
        let end = __stop_ktest_cases.as_ptr().cast::<TestCase>();
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    }
}

/// Why the test in progress ended early, written by the panic or timer path.
type Reason = FmtBuffer<256>;
/// Diagnostics for the KTAP output (location, backtrace), written alongside the reason.
type Details = FmtBuffer<2048>;

/// The run in progress.
struct Run {
    /// A test is running and its panic may be caught.
    active: AtomicBool,
    /// The CPU running the tests: only its panics and timer ticks concern the runner.
    cpu: AtomicUsize,
    /// The runner's task (thread id): ticks and panics of other tasks on that CPU are not the
    /// test's.
    task: core::sync::atomic::AtomicU32,
    /// 1-based number of the test in progress (0 between tests).
    number: AtomicUsize,
    total: AtomicUsize,
    passed: AtomicUsize,
    failed: AtomicUsize,
    /// `time::now_ns()` after which the watchdog stops the test; `u64::MAX` for none.
    deadline_ns: AtomicU64,
    /// The test in progress: name and timeout, read by the panic and timer paths.
    current: UnsafeCell<Option<&'static TestCase>>,
    recovery: UnsafeCell<JumpBuffer>,
    reason: UnsafeCell<Reason>,
    /// A test's own [`catch_panic`] is running: its panics go there instead.
    catching: AtomicBool,
    catch_recovery: UnsafeCell<JumpBuffer>,
    caught: UnsafeCell<Reason>,
    /// `ktest.stress`.
    stress: AtomicU64,
    skipped: AtomicUsize,
    /// Set by [`skip`]: why the test in progress does not apply here.
    skipped_because: UnsafeCell<Option<&'static str>>,
    /// The `stats` option.
    print_stats: AtomicBool,
    details: UnsafeCell<Details>,
}

// SAFETY: every cell is written by the runner between tests, or by the panic/timer path of the
// one CPU running the test while `active` is set (which that path clears first); SMP will make
// this per-CPU.
unsafe impl Sync for Run {}

static RUN: Run = Run {
    active: AtomicBool::new(false),
    cpu: AtomicUsize::new(0),
    task: core::sync::atomic::AtomicU32::new(0),
    number: AtomicUsize::new(0),
    total: AtomicUsize::new(0),
    passed: AtomicUsize::new(0),
    failed: AtomicUsize::new(0),
    deadline_ns: AtomicU64::new(u64::MAX),
    current: UnsafeCell::new(None),
    recovery: UnsafeCell::new(JumpBuffer::new()),
    reason: UnsafeCell::new(FmtBuffer::new()),
    catching: AtomicBool::new(false),
    catch_recovery: UnsafeCell::new(JumpBuffer::new()),
    caught: UnsafeCell::new(FmtBuffer::new()),
    stress: AtomicU64::new(1),
    skipped: AtomicUsize::new(0),
    skipped_because: UnsafeCell::new(None),
    print_stats: AtomicBool::new(false),
    details: UnsafeCell::new(FmtBuffer::new()),
};

/// The tests of this run, in order (for reporting the ones an aborted run never reached).
static CASES: Once<Vec<&'static TestCase>> = Once::new();

/// Runs every registered test (filtered by `ktest.filter`) and leaves QEMU with the verdict.
pub fn run_all(options: &BootOptions) -> ! {
    let mut cases: Vec<&'static TestCase> = registered_cases()
        .iter()
        .filter(|case| {
            options
                .tests
                .filter
                .is_none_or(|f| f.split(',').any(|part| case.name.contains(part)))
        })
        .collect();
    cases.sort_by_key(|case| case.name);
    if let Some(which) = options.tests.self_test {
        cases.push(selftest::case(which));
    }
    let cases = CASES.call_once(|| cases);
    RUN.total.store(cases.len(), Ordering::Relaxed);
    RUN.cpu
        .store(crate::arch::percpu::cpu_index(), Ordering::Relaxed);
    RUN.task
        .store(crate::sched::current().tid, Ordering::Relaxed);
    RUN.stress
        .store(u64::from(options.tests.stress), Ordering::Relaxed);
    RUN.print_stats.store(options.stats, Ordering::Relaxed);
    if options.tests.soak_s != 0 {
        soak::run(cases, options.tests.soak_s, options.tests.timeout_ms);
    }
    println!("KTAP version 1");
    println!("1..{}", cases.len());
    for (index, case) in cases.iter().enumerate() {
        run_one(index + 1, case, options.tests.timeout_ms);
        if let Some(lock) = lock_left_held() {
            abort_run(format_args!("the test left the {lock} lock held"));
        }
    }
    finish()
}

fn run_one(number: usize, case: &'static TestCase, default_timeout_ms: u64) {
    let timeout_ms = if case.timeout_ms == 0 {
        default_timeout_ms
    } else {
        case.timeout_ms
    };
    // SAFETY: between tests only the runner touches the cells (`active` is clear).
    unsafe {
        *RUN.current.get() = Some(case);
        *RUN.reason.get() = FmtBuffer::new();
        *RUN.details.get() = FmtBuffer::new();
    }
    RUN.number.store(number, Ordering::Relaxed);
    RUN.deadline_ns.store(
        time::now_ns().saturating_add(timeout_ms * 1_000_000),
        Ordering::Relaxed,
    );
    RUN.active.store(true, Ordering::SeqCst);
    // SAFETY: `RUN.recovery` is static, and `active` (cleared below or by the path that jumps)
    // keeps anyone from jumping to it once this call has returned.
    let outcome = unsafe { jump::call_recoverable(RUN.recovery.get(), case.run) };
    RUN.active.store(false, Ordering::SeqCst);
    RUN.deadline_ns.store(u64::MAX, Ordering::Relaxed);
    if outcome.is_err() {
        crate::sync::rcu::recover_after_jump();
        crate::arch::smp::recover_after_jump();
    }
    // Between tests the runner holds nothing: a quiescent state, like a context switch.
    crate::sync::rcu::quiescent_state();
    match outcome {
        // SAFETY: the test has returned; only the runner touches the cell between tests.
        Ok(()) => match unsafe { (*RUN.skipped_because.get()).take() } {
            None => {
                RUN.passed.fetch_add(1, Ordering::Relaxed);
                println!("ok {number} {}", case.name);
            }
            Some(reason) => {
                RUN.skipped.fetch_add(1, Ordering::Relaxed);
                println!("ok {number} {} # SKIP {reason}", case.name);
            }
        },
        Err(()) => {
            RUN.failed.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the path that jumped here wrote these before jumping and is done with them.
            let (reason, details) = unsafe { (&*RUN.reason.get(), &*RUN.details.get()) };
            println!("not ok {number} {} # {}", case.name, reason.as_str());
            for line in details.as_str().lines() {
                println!("# {line}");
            }
        }
    }
}

/// How long a lock the run needs may stay held after a test before it counts as left held:
/// other CPUs take these locks briefly all the time (a test's threads exiting free their
/// memory), and a holder that was only descheduled by the host lets go within this.
const LEFT_HELD_AFTER_NS: u64 = 1_000_000_000;

/// The lock a failed test may have left held that the rest of the run needs, if any: one that
/// stays held for [`LEFT_HELD_AFTER_NS`].
pub(crate) fn lock_left_held() -> Option<&'static str> {
    let held = || {
        if mm::heap::is_locked() {
            Some("heap")
        } else if mm::frame::is_locked() {
            Some("frame allocator")
        } else {
            // The size classes serve most allocations, the VMA cache every mapping's VMA.
            mm::slab::locked_cache()
        }
    };
    let deadline = time::now_ns().saturating_add(LEFT_HELD_AFTER_NS);
    loop {
        let lock = held();
        if lock.is_none() || time::now_ns() >= deadline {
            return lock;
        }
        core::hint::spin_loop();
    }
}

/// Prints the statistics (with `stats`) and the summary line, and leaves QEMU with the verdict.
fn finish() -> ! {
    if RUN.print_stats.load(Ordering::Relaxed) {
        crate::debug_keys::print_statistics();
    }
    let passed = RUN.passed.load(Ordering::Relaxed);
    let failed = RUN.failed.load(Ordering::Relaxed);
    match RUN.skipped.load(Ordering::Relaxed) {
        0 => println!("{passed} passed, {failed} failed"),
        skipped => println!("{passed} passed, {failed} failed, {skipped} skipped"),
    }
    arch::exit(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// Called first by the panic handler: if a test is running, records the panic as its failure
/// and resumes the runner. Returns only if no test can take the panic.
pub fn catch_test_panic(info: &PanicInfo) {
    if !on_test_cpu() {
        return;
    }
    // Work the test handed to other CPUs refers to the frames about to be abandoned: let it
    // finish first, or give up catching (the kernel panic then stops those CPUs).
    if !crate::arch::smp::wait_for_idle_work(ABANDON_WAIT_NS) {
        return;
    }
    if RUN.catching.swap(false, Ordering::SeqCst) {
        // SAFETY: `catch_panic` runs below us on this stack and reads `caught` after the jump.
        unsafe {
            let _ = write!(OneLine(&mut *RUN.caught.get()), "{}", info.message());
            jump::resume_at(RUN.catch_recovery.get());
        }
    }
    if !RUN.active.swap(false, Ordering::SeqCst) {
        return;
    }
    // SAFETY: `active` was set, so the runner is inside `call_recoverable` below us on this
    // stack and waits for these cells; we cleared `active`, so nobody else writes them.
    unsafe {
        let reason = &mut *RUN.reason.get();
        let _ = write!(OneLine(reason), "{}", info.message());
        let details = &mut *RUN.details.get();
        if let Some(location) = info.location() {
            let _ = writeln!(
                details,
                "panicked at {}:{}:{}",
                location.file(),
                location.line(),
                location.column()
            );
        }
        let _ = writeln!(details, "backtrace:");
        let _ = backtrace::write(details, backtrace::current_frame_pointer());
        jump::resume_at(RUN.recovery.get());
    }
}

/// How long a failing test's work on other CPUs may take to finish before the runner gives
/// up on recovering from the failure.
const ABANDON_WAIT_NS: u64 = 5_000_000_000;

/// Ends the calling test as skipped (`ok N name # SKIP reason`): it does not apply to this
/// machine. The test returns right after calling it.
pub fn skip(reason: &'static str) {
    assert!(
        on_test_cpu() && RUN.active.load(Ordering::SeqCst),
        "skip outside a test"
    );
    // SAFETY: the test in progress, on its own CPU, is the only writer; the runner reads the
    // cell after the test returns.
    unsafe { *RUN.skipped_because.get() = Some(reason) };
}

/// An online CPU other than the test's, for tests that need two; `None` on one CPU (such a test
/// skips).
pub fn other_cpu() -> Option<usize> {
    let me = crate::arch::percpu::cpu_index();
    crate::arch::percpu::online_cpus()
        .map(|c| c.index)
        .find(|&i| i != me)
}

/// For stress tests: how many times their base iteration count to run (`ktest.stress`).
pub fn stress_factor() -> u64 {
    RUN.stress.load(Ordering::Relaxed)
}

/// Runs `f` inside a test, expecting it may panic: returns the panic message instead of
/// failing the test. Like any recovery here, it skips the rest of `f` without unwinding.
pub fn catch_panic<F: FnOnce()>(f: F) -> Result<(), String> {
    assert!(
        on_test_cpu() && RUN.active.load(Ordering::SeqCst),
        "catch_panic outside a test"
    );
    // SAFETY: not catching, so nothing else touches the cells.
    unsafe { *RUN.caught.get() = FmtBuffer::new() };
    RUN.catching.store(true, Ordering::SeqCst);
    // SAFETY: the buffer is static, and `catching` is cleared (by the panic path or below)
    // before this returns, so nobody jumps to it afterwards.
    let outcome = unsafe { jump::call_recoverable(RUN.catch_recovery.get(), f) };
    RUN.catching.store(false, Ordering::SeqCst);
    if outcome.is_err() {
        crate::sync::rcu::recover_after_jump();
        crate::arch::smp::recover_after_jump();
    }
    // SAFETY: the panic path wrote `caught` before jumping; it is not catching now.
    outcome.map_err(|()| unsafe { String::from((*RUN.caught.get()).as_str()) })
}

/// Whether this CPU runs the test runner's task right now (the runner is pinned to its CPU, but
/// sleeps while a test waits, and the CPU then runs other tasks).
fn on_test_cpu() -> bool {
    crate::arch::percpu::cpu_index() == RUN.cpu.load(Ordering::Relaxed)
        && crate::sched::current().tid == RUN.task.load(Ordering::Relaxed)
}

/// Called on every timer tick: stops a test that ran past its deadline, as if it had panicked.
pub fn watchdog(frame: &TrapFrame) {
    if time::now_ns() < RUN.deadline_ns.load(Ordering::Relaxed) || frame.is_user_mode() {
        return;
    }
    if !on_test_cpu() || !RUN.active.load(Ordering::SeqCst) {
        return;
    }
    if !crate::arch::smp::wait_for_idle_work(ABANDON_WAIT_NS) {
        panic!("test timed out while work it gave other CPUs still runs");
    }
    if !RUN.active.swap(false, Ordering::SeqCst) {
        return;
    }
    // SAFETY: as in `catch_test_panic`: the timer interrupted the test on this CPU's stack, and
    // the runner's frame lies above the interrupted one; the EOI is already sent.
    unsafe {
        let case = (*RUN.current.get()).map_or("?", |c| c.name);
        let _ = write!(&mut *RUN.reason.get(), "timed out");
        let details = &mut *RUN.details.get();
        let _ = writeln!(
            details,
            "{case} was still running at its deadline; stopped at:"
        );
        let _ = write!(details, "  RIP {:#018x}", frame.rip);
        if let Some((name, offset)) = crate::arch::symbols::lookup(frame.rip) {
            let _ = write!(details, " <{name}+{offset:#x}>");
        }
        let _ = writeln!(details);
        let _ = backtrace::write(details, frame.rbp);
        jump::resume_at(RUN.recovery.get());
    }
}

/// Ends the run after something the runner cannot recover from (a kernel panic outside a test,
/// a fatal exception, a lock left held): the test in progress fails with `reason`, the rest are
/// reported as not run, and QEMU exits with failure. Outside a test run it just exits.
pub fn abort_run(reason: fmt::Arguments) -> ! {
    let total = RUN.total.load(Ordering::Relaxed);
    let current = RUN.number.load(Ordering::Relaxed);
    if total == 0 {
        arch::exit(ExitCode::Failure);
    }
    RUN.active.store(false, Ordering::SeqCst);
    let mut first_not_run = current + 1;
    let mut one_line = Reason::new();
    let _ = write!(OneLine(&mut one_line), "{reason}");
    if current > 0
        && RUN.passed.load(Ordering::Relaxed) + RUN.failed.load(Ordering::Relaxed) < current
    {
        // The test in progress has no result yet.
        // SAFETY: the run is over; nothing else reads or writes the cells now.
        let name = unsafe { (*RUN.current.get()).map_or("?", |c| c.name) };
        console::emergency_write(format_args!(
            "not ok {current} {name} # {}\n",
            one_line.as_str()
        ));
        RUN.failed.fetch_add(1, Ordering::Relaxed);
    } else {
        // Between tests: no result to give the reason to, so it stands on its own line.
        console::emergency_write(format_args!(
            "# the run was aborted: {}\n",
            one_line.as_str()
        ));
        if current == 0 {
            first_not_run = 1;
        }
    }
    for number in first_not_run..=total {
        let name = CASES
            .get()
            .and_then(|cases| cases.get(number - 1))
            .map_or("?", |c| c.name);
        console::emergency_write(format_args!(
            "not ok {number} {name} # not run: the run was aborted\n"
        ));
        RUN.failed.fetch_add(1, Ordering::Relaxed);
    }
    let passed = RUN.passed.load(Ordering::Relaxed);
    let failed = RUN.failed.load(Ordering::Relaxed);
    match RUN.skipped.load(Ordering::Relaxed) {
        0 => console::emergency_write(format_args!("{passed} passed, {failed} failed\n")),
        skipped => console::emergency_write(format_args!(
            "{passed} passed, {failed} failed, {skipped} skipped\n"
        )),
    }
    arch::exit(ExitCode::Failure)
}

/// Writes through to a buffer with newlines turned into spaces (a KTAP result is one line).
struct OneLine<'a, const N: usize>(&'a mut FmtBuffer<N>);

impl<const N: usize> Write for OneLine<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, piece) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.write_str(" ")?;
            }
            self.0.write_str(piece)?;
        }
        Ok(())
    }
}
