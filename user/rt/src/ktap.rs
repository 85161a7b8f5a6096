//! A KTAP version 1 test harness for user programs.
//!
//! Tests are `fn() -> TestResult`, listed with [`tests!`](crate::tests); checks (`check!`,
//! `check_eq!`, `check_ok!`, `check_err!`) return a failure carrying `file:line` and a message
//! from the test, so a failing check ends that test only. `skip!(reason)` reports the test as
//! `# SKIP reason`. A panic ends the process (status 101) after reporting the running test as
//! `not ok` with the panic's location and message.
//!
//! Output (standard output, one write per line):
//!
//! ```text
//! KTAP version 1
//! 1..N
//! ok 1 mem::mmap_anon_rw
//! not ok 2 mem::munmap_split # user/usertests/src/mem.rs:40: expected EINVAL, got Ok(0)
//! ok 3 mem::mremap_grow_and_move # SKIP mremap: ENOSYS
//! 1 passed, 1 failed, 1 skipped
//! ```
//!
//! Options: `--nested` indents every line by four spaces (the kernel runs the program as one of
//! its tests, so this is a subtest block); `--poweroff` powers the machine off at the end when
//! the program is process 1 (Linux's /init); `--list` prints the test names; `--pending` adds
//! the pending tests (those of features the kernel under test does not have yet, which the
//! oracle runs) after the others; `--param=NAME=VALUE` sets a value a test reads with
//! [`param`] (a size, say); any other argument is a filter: only tests whose name contains one
//! of the filters run. Exit status: 0 when no test failed, 1 otherwise, 2 for a bad option.

use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sys;

/// Why a test did not pass.
pub enum Failure {
    Fail {
        file: &'static str,
        line: u32,
        message: String,
    },
    Skip(String),
}

pub type TestResult = Result<(), Failure>;

/// One registered test.
pub struct Test {
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

/// Builds a `&[Test]` from `module::function` paths, named after them.
#[macro_export]
macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$($crate::ktap::Test {
            name: concat!(stringify!($module), "::", stringify!($name)),
            run: $module::$name,
        }),*]
    };
}

/// Fails the test unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err($crate::ktap::Failure::fail(
                file!(), line!(), alloc::format!("check failed: {}", stringify!($cond))));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::ktap::Failure::fail(file!(), line!(), alloc::format!($($fmt)+)));
        }
    };
}

/// Fails the test unless `left == right`, showing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err($crate::ktap::Failure::fail(file!(), line!(), alloc::format!(
                "{} == {}: {:?} != {:?}", stringify!($left), stringify!($right), l, r)));
        }
    }};
    ($left:expr, $right:expr, $($fmt:tt)+) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err($crate::ktap::Failure::fail(file!(), line!(), alloc::format!(
                "{:?} != {:?}: {}", l, r, alloc::format!($($fmt)+))));
        }
    }};
}

/// Evaluates a `Result<T, Errno>`; fails the test on `Err`, else yields the value.
#[macro_export]
macro_rules! check_ok {
    ($call:expr) => {
        match $call {
            Ok(v) => v,
            Err(e) => {
                return Err($crate::ktap::Failure::fail(
                    file!(),
                    line!(),
                    alloc::format!("{} failed: {:?}", stringify!($call), e),
                ));
            }
        }
    };
}

/// Fails the test unless the `Result<_, Errno>` is `Err(errno)`.
#[macro_export]
macro_rules! check_err {
    ($call:expr, $errno:expr) => {
        match $call {
            Err(e) if e == $errno => {}
            other => {
                return Err($crate::ktap::Failure::fail(
                    file!(),
                    line!(),
                    alloc::format!(
                        "{}: expected {:?}, got {:?}",
                        stringify!($call),
                        $errno,
                        other
                    ),
                ));
            }
        }
    };
}

/// Ends the test as skipped, with the reason.
#[macro_export]
macro_rules! skip {
    ($($fmt:tt)+) => {
        return Err($crate::ktap::Failure::Skip(alloc::format!($($fmt)+)))
    };
}

/// Prints a KTAP diagnostic line (`# ...`), indented when nested.
#[macro_export]
macro_rules! diag {
    ($($fmt:tt)+) => {
        $crate::ktap::line(format_args!("# {}", format_args!($($fmt)+)))
    };
}

impl Failure {
    pub fn fail(file: &'static str, line: u32, message: String) -> Self {
        Failure::Fail {
            file,
            line,
            message,
        }
    }
}

static NESTED: AtomicBool = AtomicBool::new(false);
/// The test running now (1-based), 0 when none.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static CURRENT_NAME: AtomicUsize = AtomicUsize::new(0);
static CURRENT_NAME_LEN: AtomicUsize = AtomicUsize::new(0);

const PARAM: &str = "--param=";

/// The value given with `--param=NAME=VALUE` for `name`, if any (the last one wins).
pub fn param(name: &str) -> Option<&'static str> {
    crate::start::args()
        .filter_map(|a| a.strip_prefix(PARAM)?.strip_prefix(name)?.strip_prefix('='))
        .last()
}

/// The indentation of KTAP lines: four spaces when `--nested`.
pub fn indent() -> &'static str {
    if NESTED.load(Ordering::Relaxed) {
        "    "
    } else {
        ""
    }
}

/// Prints one KTAP line (with the indentation) in one write.
pub fn line(args: fmt::Arguments<'_>) {
    crate::io::print_to(1, format_args!("{}{}\n", indent(), args));
}

/// KTAP comments end at the line and must not contain another `#`.
struct Sanitized<'a>(&'a str);

impl fmt::Display for Sanitized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let c = match c {
                '\n' | '\r' => ' ',
                '#' => '_',
                c => c,
            };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

fn panic_hook(info: &core::panic::PanicInfo<'_>) {
    let number = CURRENT.load(Ordering::Relaxed);
    if number == 0 {
        return;
    }
    // SAFETY: CURRENT_NAME/LEN describe a `&'static str` set by `run` before the test began.
    let name = unsafe {
        core::str::from_utf8_unchecked(core::slice::from_raw_parts(
            CURRENT_NAME.load(Ordering::Relaxed) as *const u8,
            CURRENT_NAME_LEN.load(Ordering::Relaxed),
        ))
    };
    let message = alloc::format!("{}", info.message());
    match info.location() {
        Some(loc) => line(format_args!(
            "not ok {number} {name} # panicked at {}:{}: {}",
            loc.file(),
            loc.line(),
            Sanitized(&message)
        )),
        None => line(format_args!(
            "not ok {number} {name} # panicked: {}",
            Sanitized(&message)
        )),
    }
    line(format_args!(
        "# the panic ends the program: the remaining tests do not run"
    ));
}

/// Runs the program's tests as the command line says and returns the exit status: the groups
/// in order, then with `--pending` the pending groups.
pub fn run(groups: &[&[Test]], pending: &[&[Test]]) -> i32 {
    let mut poweroff = false;
    let mut list = false;
    let mut with_pending = false;
    let mut filters: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    for arg in crate::start::args() {
        match arg {
            "--nested" => NESTED.store(true, Ordering::Relaxed),
            "--poweroff" => poweroff = true,
            "--list" => list = true,
            "--pending" => with_pending = true,
            // Linux passes what follows `--` on its command line to init; a lone `--` may
            // come through.
            "--" => {}
            a if a.starts_with(PARAM) && a[PARAM.len()..].contains('=') => {}
            a if a.starts_with("--") => {
                crate::eprintln!(
                    "unknown option {a} (options: --nested --poweroff --list --pending --param=NAME=VALUE FILTER...)"
                );
                return 2;
            }
            a => filters.push(a),
        }
    }
    let pending = if with_pending { pending } else { &[] };
    let all = groups.iter().chain(pending).copied().flatten();
    if list {
        for test in all {
            crate::println!("{}", test.name);
        }
        return 0;
    }
    crate::start::set_panic_hook(panic_hook);
    let selected: alloc::vec::Vec<&Test> = all
        .filter(|t| filters.is_empty() || filters.iter().any(|f| t.name.contains(f)))
        .collect();
    line(format_args!("KTAP version 1"));
    line(format_args!("1..{}", selected.len()));
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (i, test) in selected.iter().enumerate() {
        let number = i + 1;
        CURRENT_NAME.store(test.name.as_ptr() as usize, Ordering::Relaxed);
        CURRENT_NAME_LEN.store(test.name.len(), Ordering::Relaxed);
        CURRENT.store(number, Ordering::Relaxed);
        let started = sys::monotonic_ns();
        let result = (test.run)();
        let ms = (sys::monotonic_ns().saturating_sub(started)) / 1_000_000;
        CURRENT.store(0, Ordering::Relaxed);
        match result {
            Ok(()) => {
                passed += 1;
                line(format_args!("ok {number} {}", test.name));
            }
            Err(Failure::Skip(reason)) => {
                skipped += 1;
                line(format_args!(
                    "ok {number} {} # SKIP {}",
                    test.name,
                    Sanitized(&reason)
                ));
            }
            Err(Failure::Fail {
                file,
                line: at,
                message,
            }) => {
                failed += 1;
                line(format_args!(
                    "not ok {number} {} # {file}:{at}: {}",
                    test.name,
                    Sanitized(&message)
                ));
            }
        }
        if ms >= 2000 {
            line(format_args!("# {} took {ms} ms", test.name));
        }
    }
    line(format_args!(
        "{passed} passed, {failed} failed, {skipped} skipped"
    ));
    if poweroff {
        power_off();
    }
    if failed == 0 { 0 } else { 1 }
}

const TCSBRK: usize = 0x5409;

/// Powers the machine off, only when this is process 1 (never on a developer's machine).
pub fn power_off() {
    if sys::getpid() != 1 {
        line(format_args!("# --poweroff ignored: this is not process 1"));
        return;
    }
    // Let the console drain (tcdrain) before the machine goes away with the last lines.
    let _ = sys::ioctl(1, TCSBRK, 1);
    sys::sleep_ns(100_000_000);
    let r = sys::reboot(
        sys::LINUX_REBOOT_MAGIC1,
        sys::LINUX_REBOOT_MAGIC2,
        sys::LINUX_REBOOT_CMD_POWER_OFF,
        0,
    );
    line(format_args!("# reboot(POWER_OFF) returned {r:?}"));
}
