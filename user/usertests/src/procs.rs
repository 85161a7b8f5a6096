//! Faults that kill: /bin/faulter run in a child process (fork, execve, wait4), where the
//! kernel has those calls; skipped where fork says ENOSYS (the project's kernel runs faulter
//! itself and checks its exit status).

use alloc::ffi::CString;
use alloc::string::String;
use alloc::vec::Vec;

use urt::sys::{self, Errno};
use urt::{check, diag, skip};

use urt::ktap::TestResult;

/// faulter's modes and the wait status each must end with (128 + signal for a signal).
const CASES: &[(&str, &[&str], i32)] = &[
    ("ok", &[], 0),
    ("exit", &["42"], 42),
    ("null", &[], 128 + 11),
    ("write-ro", &[], 128 + 11),
    ("exec-nx", &[], 128 + 11),
    ("prot-none", &[], 128 + 11),
    ("kernel-addr", &[], 128 + 11),
    ("gp", &[], 128 + 11),
    ("ud2", &[], 128 + 4),
    ("div0", &[], 128 + 8),
    ("stack-overflow", &[], 128 + 11),
    ("thread-null", &[], 128 + 11),
    ("no-restorer", &[], 128 + 11),
    ("bad-sigreturn", &[], 128 + 11),
    ("segv-in-handler", &[], 128 + 11),
];

/// Where program `name` is: /bin/NAME (ramdisks, the Linux initramfs), next to this program,
/// or in `target/user/c/` for the C programs when run from the build directory.
pub(crate) fn program_path(name: &str) -> Option<CString> {
    let mut candidates: Vec<String> = Vec::new();
    candidates.push(alloc::format!("/bin/{name}"));
    if let Some(argv0) = urt::start::arg_str(0)
        && let Some((dir, _)) = argv0.rsplit_once('/')
    {
        candidates.push(alloc::format!("{dir}/{name}"));
        candidates.push(alloc::format!("{dir}/../../c/{name}"));
    }
    candidates.into_iter().find_map(|path| {
        let c = CString::new(path).ok()?;
        let mut st = sys::Stat::default();
        sys::newfstatat(sys::AT_FDCWD, c.as_ptr() as usize, &raw mut st as usize, 0)
            .ok()
            .map(|_| c)
    })
}

/// Why `/bin/NAME` was not found (what newfstatat said).
pub(crate) fn not_found(name: &str) -> String {
    let path = alloc::format!("/bin/{name}\0");
    let mut st = sys::Stat::default();
    let r = sys::newfstatat(
        sys::AT_FDCWD,
        path.as_ptr() as usize,
        &raw mut st as usize,
        0,
    );
    alloc::format!("{name} not found (newfstatat /bin/{name}: {r:?})")
}

/// Runs the program at `path` with `args` in a child and returns its status as a shell shows it.
fn run(path: &CString, args: &[&str]) -> Result<i32, Errno> {
    let owned: Vec<CString> = args
        .iter()
        .map(|a| CString::new(*a).unwrap_or_default())
        .collect();
    let mut argv: Vec<usize> = Vec::with_capacity(owned.len() + 2);
    argv.push(path.as_ptr() as usize);
    argv.extend(owned.iter().map(|a| a.as_ptr() as usize));
    argv.push(0);
    let envp = [0usize];
    // SAFETY: fork takes no arguments; the child only calls execve and exit_group.
    let pid = sys::decode(unsafe { sys::syscall0(sys::nr::FORK) })?;
    if pid == 0 {
        let _ = sys::execve(
            path.as_ptr() as usize,
            argv.as_ptr() as usize,
            envp.as_ptr() as usize,
        );
        sys::exit_group(127);
    }
    let mut status = 0i32;
    loop {
        match sys::wait4(pid, &raw mut status as usize, 0, 0) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    let signal = status & 0x7f;
    Ok(if signal != 0 {
        128 + signal
    } else {
        (status >> 8) & 0xff
    })
}

pub fn faulter_exit_statuses() -> TestResult {
    let Some(path) = program_path("faulter") else {
        skip!("{}", not_found("faulter"));
    };
    let mut failures = String::new();
    for (i, (mode, extra, want)) in CASES.iter().enumerate() {
        let mut args = alloc::vec![*mode];
        args.extend_from_slice(extra);
        match run(&path, &args) {
            Err(Errno::ENOSYS) if i == 0 => skip!("fork or wait4: ENOSYS"),
            Err(e) => failures.push_str(&alloc::format!(" {mode}: {e:?};")),
            Ok(got) if got != *want => {
                failures.push_str(&alloc::format!(" {mode}: status {got}, expected {want};"))
            }
            Ok(_) => {}
        }
    }
    diag!("faulter: {} modes checked", CASES.len());
    check!(failures.is_empty(), "faulter:{failures}");
    Ok(())
}

pub fn c_programs_run() -> TestResult {
    let mut ran = 0;
    let mut failures = String::new();
    for name in ["hello-musl", "hello-glibc"] {
        let Some(path) = program_path(name) else {
            continue;
        };
        match run(&path, &[]) {
            Err(Errno::ENOSYS) => skip!("fork or wait4: ENOSYS"),
            Err(e) => failures.push_str(&alloc::format!(" {name}: {e:?};")),
            Ok(0) => ran += 1,
            Ok(status) => failures.push_str(&alloc::format!(" {name}: status {status};")),
        }
    }
    if ran == 0 && failures.is_empty() {
        skip!("{}", not_found("hello-musl"));
    }
    diag!("{ran} C programs exited 0");
    check!(failures.is_empty(), "C programs:{failures}");
    Ok(())
}
