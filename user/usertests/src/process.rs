//! Processes: fork, vfork, clone and clone3 of processes, wait4, waitid, execve, execveat,
//! getppid, process groups and sessions.
//!
//! Children report through their exit status or a shared page (`MAP_SHARED`), never through
//! the KTAP output. Every test collects its children, also when it fails (see [`Child`]), so
//! that the waits of later tests see only their own. Linux runs this program as /init (pid 1,
//! in session 0 and process group 0), the project's kernel as a process it started itself: the
//! tests never compare the top process's own group or session with a number, and call `setsid`
//! only in children.

use alloc::ffi::CString;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};

use urt::sys::{self, CloneArgs, Errno, PAGE_SIZE, Siginfo};
use urt::{check, check_eq, check_err, check_ok, skip};

use crate::util::{KERNEL_ADDR, Mapping, Scratch, mapped, unmapped_addr, write_file};
use urt::ktap::TestResult;

const TEN_S: u64 = 10_000_000_000;
const RW: usize = sys::PROT_READ | sys::PROT_WRITE;
/// A pid no process has (above Linux's largest `pid_max`).
pub(crate) const NO_PID: usize = 0x3fff_ffff;

// ---- helpers ----

/// How a child ended, from its wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Exited(i32),
    /// Killed by this signal (the core-dump bit aside).
    Killed(i32),
    Other(i32),
}

impl End {
    pub(crate) fn of(status: i32) -> Self {
        match status & 0x7f {
            0 => End::Exited((status >> 8) & 0xff),
            0x7f => End::Other(status),
            signal => End::Killed(signal),
        }
    }
}

/// `wait4(pid, &status, options, NULL)`, again after `EINTR`: the pid and the raw status.
pub(crate) fn wait(pid: usize, options: usize) -> Result<(usize, i32), Errno> {
    let mut status = 0i32;
    loop {
        match sys::wait4(pid, &raw mut status as usize, options, 0) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(got) => return Ok((got, status)),
        }
    }
}

/// A child process. Dropping it kills and collects it if the test did not (a failing test
/// leaves no child behind, not even a stopped one).
pub(crate) struct Child {
    pub(crate) pid: usize,
    pub(crate) collected: bool,
}

impl Child {
    /// Forks a child that runs `body` and exits with what it returns.
    pub(crate) fn fork(body: impl FnOnce() -> i32) -> Result<Self, Errno> {
        let pid = sys::fork()?;
        if pid == 0 {
            sys::exit_group(body());
        }
        Ok(Self::of(pid))
    }

    /// The child `pid`, made some other way.
    pub(crate) fn of(pid: usize) -> Self {
        Self {
            pid,
            collected: false,
        }
    }

    /// Waits for the child; its raw wait status.
    pub(crate) fn status(&mut self) -> Result<i32, Errno> {
        let (got, status) = wait(self.pid, sys::WALL)?;
        self.collected = true;
        if got != self.pid {
            return Err(Errno::ESRCH);
        }
        Ok(status)
    }

    /// Waits for the child; how it ended.
    pub(crate) fn end(&mut self) -> Result<End, Errno> {
        self.status().map(End::of)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.collected {
            let _ = sys::kill(self.pid, urt::signal::SIGKILL);
            let _ = wait(self.pid, sys::WALL);
        }
    }
}

/// Anonymous shared memory (`MAP_SHARED`): a forked child writes to the same pages.
pub(crate) struct Shared {
    addr: usize,
    len: usize,
}

impl Shared {
    pub(crate) fn new() -> Result<Self, Errno> {
        Self::pages(1)
    }

    fn pages(pages: usize) -> Result<Self, Errno> {
        let len = pages * PAGE_SIZE;
        let flags = sys::MAP_SHARED | sys::MAP_ANONYMOUS;
        let addr = sys::mmap(0, len, RW, flags, usize::MAX, 0)?;
        Ok(Self { addr, len })
    }

    /// Word `i` of the first page.
    pub(crate) fn word(&self, i: usize) -> &AtomicUsize {
        let i = i % (PAGE_SIZE / 8);
        // SAFETY: inside the mapping, aligned; atomics are sound on memory others write.
        unsafe { &*((self.addr + i * 8) as *const AtomicUsize) }
    }

    /// The first word of page `i`.
    fn page_word(&self, i: usize) -> &AtomicUsize {
        let offset = (i * PAGE_SIZE) % self.len;
        // SAFETY: as `word`.
        unsafe { &*((self.addr + offset) as *const AtomicUsize) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = sys::munmap(self.addr, self.len);
    }
}

/// Polls `cond` every millisecond, for 10 s at most; whether it came true.
pub(crate) fn eventually(cond: impl Fn() -> bool) -> bool {
    let start = sys::monotonic_ns();
    while !cond() {
        if sys::monotonic_ns().saturating_sub(start) > TEN_S {
            return false;
        }
        sys::sleep_ns(1_000_000);
    }
    true
}

/// Reads the byte at `addr`, which may kill the process (that is the point).
pub(crate) fn touch(addr: usize) {
    // SAFETY: a read through a register, outside what Rust knows: at worst a fault that ends
    // the process, which the tests want to see.
    unsafe { asm!("mov al, byte ptr [{}]", in(reg) addr, out("al") _, options(nostack)) };
}

/// NUL-terminated strings and a NULL-terminated array of pointers to them (argv, envp).
pub(crate) struct Strings {
    _strings: Vec<CString>,
    pointers: Vec<usize>,
}

impl Strings {
    pub(crate) fn new<S: AsRef<str>>(items: &[S]) -> Self {
        let strings: Vec<CString> = items
            .iter()
            .map(|s| CString::new(s.as_ref()).unwrap_or_default())
            .collect();
        let mut pointers: Vec<usize> = strings.iter().map(|s| s.as_ptr() as usize).collect();
        pointers.push(0);
        Self {
            _strings: strings,
            pointers,
        }
    }

    pub(crate) fn ptr(&self) -> usize {
        self.pointers.as_ptr() as usize
    }
}

/// /bin/faulter (or where it is on a developer's machine).
pub(crate) fn faulter() -> Option<CString> {
    crate::procs::program_path("faulter")
}

/// Whether this is the kernel-started process at the top of its tree (Linux's /init), which
/// adopts orphans and runs in `/`.
pub(crate) fn is_top() -> bool {
    sys::getppid() == 0
}

/// Runs `attempt` (an exec that must fail) in a child, which exits with the error number (or
/// 250 if the call returned success, which exec never does).
fn exec_error(attempt: impl FnOnce() -> sys::SysResult) -> Result<End, Errno> {
    Child::fork(|| match attempt() {
        Err(e) => e.0,
        Ok(_) => 250,
    })?
    .end()
}

/// `execve(path, argv, envp)` of faulter in a child; how the child ended.
fn run_faulter(path: &CString, argv: &Strings, envp: &Strings) -> Result<End, Errno> {
    Child::fork(|| {
        let _ = sys::execve(path.as_ptr() as usize, argv.ptr(), envp.ptr());
        127
    })?
    .end()
}

/// `clone(flags | exit_signal, NULL stack)` of a process, like fork: the child returns here.
pub(crate) fn clone_fork(flags: usize, ptid: usize, ctid: usize) -> sys::SysResult {
    // SAFETY: callers never pass CLONE_VM: the child runs on its own copy of the memory, as
    // after fork.
    unsafe { sys::raw(sys::nr::CLONE, &[flags & !sys::CLONE_VM, 0, ptid, ctid, 0]) }
}

/// `clone3(args, size)` that must fail: a child, if one is made anyway, exits at once with
/// `exit(0)` without touching memory (it may share the caller's stack).
fn try_clone3(args: usize, size: usize) -> sys::SysResult {
    let ret: usize;
    // SAFETY: the child, if any, runs only the two instructions after the jump and exits;
    // the caller goes on as after any system call.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov eax, 60",
            "xor edi, edi",
            "syscall",
            "2:",
            inlateout("rax") sys::nr::CLONE3 => ret,
            inlateout("rdi") args => _, in("rsi") size,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    sys::decode(ret)
}

/// A stack for a child that shares our memory: mapped, unmapped on drop.
struct Stack(Mapping);

impl Stack {
    fn new() -> Result<Self, Errno> {
        Mapping::rw(16).map(Stack)
    }

    fn top(&self) -> usize {
        self.0.addr + self.0.len
    }
}

// ---- fork ----

pub fn fork_returns_pid_and_zero() -> TestResult {
    let shared = check_ok!(Shared::new());
    let me = sys::getpid();
    let fs = urt::thread::fs0();
    let mut child = check_ok!(Child::fork(|| {
        shared.word(0).store(sys::getpid(), SeqCst);
        shared.word(1).store(sys::gettid(), SeqCst);
        shared.word(2).store(sys::getppid(), SeqCst);
        shared.word(3).store(urt::thread::fs0(), SeqCst);
        0
    }));
    check!(
        child.pid > 0 && child.pid != me,
        "fork returned {}",
        child.pid
    );
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_eq!(
        shared.word(0).load(SeqCst),
        child.pid,
        "getpid in the child is not what fork returned"
    );
    check_eq!(shared.word(1).load(SeqCst), child.pid, "the child's tid");
    check_eq!(shared.word(2).load(SeqCst), me, "getppid in the child");
    check_eq!(shared.word(3).load(SeqCst), fs, "the child's FS base");
    check_eq!(sys::getpid(), me);
    Ok(())
}

pub fn fork_memory_is_copied() -> TestResult {
    static GLOBAL: AtomicUsize = AtomicUsize::new(0);
    GLOBAL.store(1, SeqCst);
    let heap = alloc::boxed::Box::new(AtomicUsize::new(11));
    let local = AtomicUsize::new(5);
    let shared = check_ok!(Shared::new());
    let m = check_ok!(Mapping::rw(4));
    for i in 0..4 {
        m.fill(i, 0xa0 + i as u8);
    }
    let mut child = check_ok!(Child::fork(|| {
        let mut bad = 0;
        if !(0..4).all(|i| m.all(i, 0xa0 + i as u8)) {
            bad |= 1;
        }
        if GLOBAL.load(SeqCst) != 1 || heap.load(SeqCst) != 11 || local.load(SeqCst) != 5 {
            bad |= 2;
        }
        // Our writes stay ours...
        m.fill(0, 0xbb);
        GLOBAL.store(2, SeqCst);
        heap.store(22, SeqCst);
        local.store(6, SeqCst);
        shared.word(0).store(1, SeqCst);
        // ...and the parent's, made after the fork, do not reach us.
        if !eventually(|| shared.word(1).load(SeqCst) == 1) {
            return 99;
        }
        if !m.all(1, 0xa1) || !m.all(0, 0xbb) {
            bad |= 4;
        }
        if GLOBAL.load(SeqCst) != 2 || heap.load(SeqCst) != 22 || local.load(SeqCst) != 6 {
            bad |= 8;
        }
        bad
    }));
    check!(eventually(|| shared.word(0).load(SeqCst) == 1));
    check!(
        m.all(0, 0xa0),
        "the child's write reached the parent's page"
    );
    check_eq!(GLOBAL.load(SeqCst), 1, "the child's write reached a static");
    check_eq!(heap.load(SeqCst), 11, "the child's write reached the heap");
    check_eq!(local.load(SeqCst), 5, "the child's write reached the stack");
    m.fill(1, 0xcc);
    GLOBAL.store(3, SeqCst);
    heap.store(33, SeqCst);
    local.store(7, SeqCst);
    shared.word(1).store(1, SeqCst);
    // 1: the child did not see our data; 4, 8: our later writes reached it.
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check!(m.all(1, 0xcc) && m.all(2, 0xa2) && m.all(3, 0xa3));
    Ok(())
}

pub fn fork_shared_anon_stays_shared() -> TestResult {
    // Four pages, the last three untouched before the fork.
    let shared = check_ok!(Shared::pages(4));
    shared.word(0).store(0x1111, SeqCst);
    let mut child = check_ok!(Child::fork(|| {
        if shared.word(0).load(SeqCst) != 0x1111 {
            return 1;
        }
        shared.word(1).store(0x2222, SeqCst);
        shared.page_word(3).store(0x4444, SeqCst);
        if !eventually(|| shared.page_word(2).load(SeqCst) == 0x3333) {
            return 2;
        }
        0
    }));
    check!(
        eventually(|| shared.word(1).load(SeqCst) == 0x2222),
        "the child's write to shared memory did not reach the parent"
    );
    shared.page_word(2).store(0x3333, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_eq!(
        shared.page_word(3).load(SeqCst),
        0x4444,
        "a shared page first touched in the child"
    );
    Ok(())
}

pub fn fork_madv_dontfork() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    m.fill(0, 0x11);
    m.fill(1, 0x22);
    check_ok!(sys::madvise(m.page(1), PAGE_SIZE, sys::MADV_DONTFORK));
    let mut absent = check_ok!(Child::fork(|| {
        if !mapped(m.page(0)) || !m.all(0, 0x11) {
            return 1;
        }
        if mapped(m.page(1)) {
            return 2;
        }
        0
    }));
    check_eq!(
        check_ok!(absent.end()),
        End::Exited(0),
        "1: the rest of the mapping is missing; 2: the MADV_DONTFORK page was copied"
    );
    let mut toucher = check_ok!(Child::fork(|| {
        touch(m.page(1));
        1
    }));
    check_eq!(
        check_ok!(toucher.end()),
        End::Killed(sys::SIGSEGV as i32),
        "a child reading the MADV_DONTFORK page"
    );
    check!(m.all(1, 0x22), "the parent lost its MADV_DONTFORK page");
    check_ok!(sys::madvise(m.page(1), PAGE_SIZE, sys::MADV_DOFORK));
    let mut copied = check_ok!(Child::fork(|| i32::from(!m.all(1, 0x22))));
    check_eq!(check_ok!(copied.end()), End::Exited(0), "after MADV_DOFORK");
    check_err!(
        sys::madvise(unmapped_addr(), PAGE_SIZE, sys::MADV_DONTFORK),
        Errno::ENOMEM
    );
    Ok(())
}

pub fn fork_madv_wipeonfork() -> TestResult {
    let m = check_ok!(Mapping::rw(2));
    m.fill(0, 0x5a);
    m.fill(1, 0x5b);
    check_ok!(sys::madvise(m.page(0), PAGE_SIZE, sys::MADV_WIPEONFORK));
    let mut child = check_ok!(Child::fork(|| {
        if !m.all(0, 0) {
            return 1;
        }
        if !m.all(1, 0x5b) {
            return 2;
        }
        m.fill(0, 0x77);
        i32::from(!m.all(0, 0x77)) * 3
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "1: the MADV_WIPEONFORK page is not zero in the child; 2: its neighbour changed; 3: not writable"
    );
    check!(m.all(0, 0x5a), "the parent's MADV_WIPEONFORK page changed");
    check_ok!(sys::madvise(m.page(0), PAGE_SIZE, sys::MADV_KEEPONFORK));
    let mut kept = check_ok!(Child::fork(|| i32::from(!m.all(0, 0x5a))));
    check_eq!(
        check_ok!(kept.end()),
        End::Exited(0),
        "after MADV_KEEPONFORK"
    );
    let shared = check_ok!(Shared::new());
    check_err!(
        sys::madvise(shared.addr, PAGE_SIZE, sys::MADV_WIPEONFORK),
        Errno::EINVAL
    );
    Ok(())
}

pub fn fork_of_fork() -> TestResult {
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        let me = sys::getpid();
        let Ok(mut grandchild) = Child::fork(|| {
            shared.word(1).store(sys::getppid(), SeqCst);
            7
        }) else {
            return 1;
        };
        shared.word(0).store(grandchild.pid, SeqCst);
        match grandchild.end() {
            Ok(End::Exited(7)) if shared.word(1).load(SeqCst) == me => 9,
            Ok(End::Exited(7)) => 2,
            _ => 3,
        }
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(9),
        "2: the grandchild's getppid is not the child; 3: the grandchild's status"
    );
    let grandchild = shared.word(0).load(SeqCst);
    check!(grandchild != 0 && grandchild != child.pid && grandchild != sys::getpid());
    check_err!(wait(grandchild, sys::WNOHANG), Errno::ECHILD);
    Ok(())
}

pub fn fork_many_children() -> TestResult {
    const N: usize = 100;
    let m = check_ok!(Mapping::rw(1));
    m.fill(0, 0xee);
    let mut children = Vec::with_capacity(N);
    for i in 0..N {
        let child = check_ok!(Child::fork(|| {
            // Each child writes its copy of the page and some stack, then exits with its number.
            m.fill(0, i as u8);
            let local = core::hint::black_box([i as u8; 2048]);
            if !m.all(0, i as u8) {
                return 255;
            }
            i32::from(local[i])
        }));
        children.push(child);
    }
    for _ in 0..N {
        let (pid, status) = check_ok!(wait(usize::MAX, 0));
        let found = children.iter().position(|c| c.pid == pid);
        check!(
            found.is_some(),
            "wait4(-1) returned {pid}, not a child of this test"
        );
        let i = found.unwrap_or_default();
        children[i].collected = true;
        check_eq!(End::of(status), End::Exited(i as i32), "child {i}");
    }
    check_err!(wait(usize::MAX, sys::WNOHANG), Errno::ECHILD);
    check!(m.all(0, 0xee), "a child's write reached the parent");
    Ok(())
}

pub fn fork_from_a_thread() -> TestResult {
    // The child of a thread is the process's child: the main thread collects it.
    let forked = urt::thread::spawn(|| {
        let pid = sys::fork();
        if pid == Ok(0) {
            sys::exit_group(6);
        }
        pid
    })
    .join();
    let mut child = Child::of(check_ok!(forked));
    check_eq!(check_ok!(child.end()), End::Exited(6));
    Ok(())
}

// ---- wait4 ----

pub fn wait4_status_encoding() -> TestResult {
    type Body = fn() -> i32;
    let cases: [(&str, Body, i32); 6] = [
        ("exit_group(0)", || sys::exit_group(0), 0),
        ("exit_group(42)", || sys::exit_group(42), 42 << 8),
        ("exit_group(0x1ff)", || sys::exit_group(0x1ff), 0xff00),
        ("exit_group(-1)", || sys::exit_group(-1), 0xff00),
        ("exit(3) of the last thread", || sys::exit_thread(3), 3 << 8),
        (
            "a read of address 0",
            || {
                touch(0);
                1
            },
            sys::SIGSEGV as i32,
        ),
    ];
    for (what, body, expected) in cases {
        let mut child = check_ok!(Child::fork(body));
        let status = check_ok!(child.status());
        // A death by signal may carry the core-dump bit (0x80), as the system is set up.
        let status = if status & 0x7f != 0 {
            status & !0x80
        } else {
            status
        };
        check_eq!(status, expected, "{what}: wait status {status:#x}");
    }
    Ok(())
}

pub fn wait4_wnohang() -> TestResult {
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(0).load(SeqCst) == 1))
    }));
    let mut status = 0x5a5a_i32;
    for (pid, what) in [(child.pid, "the child"), (usize::MAX, "-1"), (0, "0")] {
        check_eq!(
            sys::wait4(pid, &raw mut status as usize, sys::WNOHANG, 0),
            Ok(0),
            "wait4({what}, WNOHANG) with the child running"
        );
    }
    check_eq!(status, 0x5a5a, "wait4 with WNOHANG wrote a status");
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_err!(wait(usize::MAX, sys::WNOHANG), Errno::ECHILD);
    Ok(())
}

pub fn wait4_echild_esrch() -> TestResult {
    check_err!(wait(usize::MAX, 0), Errno::ECHILD);
    check_err!(wait(usize::MAX, sys::WNOHANG), Errno::ECHILD);
    check_err!(wait(0, 0), Errno::ECHILD);
    check_err!(wait(sys::getpid(), 0), Errno::ECHILD);
    check_err!(wait(NO_PID, 0), Errno::ECHILD);
    check_err!(wait(NO_PID.wrapping_neg(), 0), Errno::ECHILD);
    check_err!(wait(i32::MIN as isize as usize, 0), Errno::ESRCH);
    // A grandchild is not ours to wait for.
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        let Ok(mut grandchild) = Child::fork(|| 0) else {
            return 1;
        };
        shared.word(0).store(grandchild.pid, SeqCst);
        let waited = eventually(|| shared.word(1).load(SeqCst) == 1);
        match grandchild.end() {
            Ok(End::Exited(0)) if waited => 0,
            _ => 2,
        }
    }));
    check!(eventually(|| shared.word(0).load(SeqCst) != 0));
    let grandchild = shared.word(0).load(SeqCst);
    check_err!(wait(grandchild, 0), Errno::ECHILD);
    check_err!(wait(grandchild, sys::WNOHANG), Errno::ECHILD);
    shared.word(1).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    // A child already collected is gone.
    check_err!(wait(child.pid, 0), Errno::ECHILD);
    Ok(())
}

pub fn wait4_einval() -> TestResult {
    for options in [sys::WEXITED, 0x10, sys::WNOWAIT, 0x1000_0000] {
        check_err!(wait(usize::MAX, options), Errno::EINVAL);
    }
    Ok(())
}

pub fn wait4_efault_still_collects() -> TestResult {
    let mut usage = sys::Rusage {
        ru_maxrss: 0x5a5a,
        ..Default::default()
    };
    // A bad status pointer: EFAULT, but the child is collected and no usage written.
    let mut child = check_ok!(Child::fork(|| 5));
    check_err!(
        sys::wait4(child.pid, KERNEL_ADDR, 0, &raw mut usage as usize),
        Errno::EFAULT
    );
    child.collected = true;
    check_err!(wait(child.pid, sys::WNOHANG), Errno::ECHILD);
    check_eq!(
        usage.ru_maxrss,
        0x5a5a,
        "the usage was written before the status failed"
    );
    // A bad usage pointer: EFAULT, after the status was written.
    let mut child = check_ok!(Child::fork(|| 6));
    let mut status = 0i32;
    check_err!(
        sys::wait4(child.pid, &raw mut status as usize, 0, KERNEL_ADDR),
        Errno::EFAULT
    );
    child.collected = true;
    check_err!(wait(child.pid, sys::WNOHANG), Errno::ECHILD);
    check_eq!(status, 6 << 8, "the status is written before the usage");
    // No status pointer at all is fine.
    let mut child = check_ok!(Child::fork(|| 7));
    check_eq!(sys::wait4(child.pid, 0, 0, 0), Ok(child.pid));
    child.collected = true;
    Ok(())
}

pub fn wait4_picks_the_pid() -> TestResult {
    let shared = check_ok!(Shared::new());
    let mut first = check_ok!(Child::fork(|| 1));
    let mut second = check_ok!(Child::fork(|| {
        if eventually(|| shared.word(0).load(SeqCst) == 1) {
            2
        } else {
            99
        }
    }));
    // The first child ends at once; waiting for the second does not collect it.
    check_eq!(
        sys::wait4(second.pid, 0, sys::WNOHANG, 0),
        Ok(0),
        "wait4(second, WNOHANG)"
    );
    shared.word(0).store(1, SeqCst);
    check_eq!(wait(second.pid, 0), Ok((second.pid, 2 << 8)));
    second.collected = true;
    check_eq!(wait(usize::MAX, 0), Ok((first.pid, 1 << 8)));
    first.collected = true;
    Ok(())
}

pub fn wait4_process_groups() -> TestResult {
    let shared = check_ok!(Shared::new());
    let mut leader = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(0).load(SeqCst) == 1))
    }));
    // The parent moves the child into a group of its own.
    check_ok!(sys::setpgid(leader.pid, leader.pid));
    check_eq!(sys::getpgid(leader.pid), Ok(leader.pid));
    let mut member = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(1).load(SeqCst) == 1))
    }));
    check_ok!(sys::setpgid(member.pid, leader.pid));
    check_eq!(sys::getpgid(member.pid), Ok(leader.pid));
    let mut stays = check_ok!(Child::fork(|| 3));
    // wait4(0): our group only, which holds `stays`.
    check_eq!(wait(0, 0), Ok((stays.pid, 3 << 8)));
    stays.collected = true;
    check_err!(wait(0, sys::WNOHANG), Errno::ECHILD);
    // wait4(-pgid): that group.
    let group = leader.pid.wrapping_neg();
    check_eq!(sys::wait4(group, 0, sys::WNOHANG, 0), Ok(0));
    shared.word(1).store(1, SeqCst);
    check_eq!(wait(group, 0), Ok((member.pid, 0)));
    member.collected = true;
    shared.word(0).store(1, SeqCst);
    check_eq!(wait(group, 0), Ok((leader.pid, 0)));
    leader.collected = true;
    check_err!(wait(group, 0), Errno::ECHILD);
    Ok(())
}

pub fn wait4_rusage() -> TestResult {
    let mut child = check_ok!(Child::fork(|| {
        let Ok(m) = Mapping::rw(32) else {
            return 1;
        };
        for i in 0..32 {
            m.fill(i, 1);
        }
        0
    }));
    let mut usage = sys::Rusage::default();
    let mut status = -1i32;
    check_eq!(
        sys::wait4(
            child.pid,
            &raw mut status as usize,
            0,
            &raw mut usage as usize
        ),
        Ok(child.pid)
    );
    child.collected = true;
    check_eq!(status, 0);
    check!(
        usage.ru_minflt >= 32,
        "the child's minor faults: {}",
        usage.ru_minflt
    );
    Ok(())
}

/// Children whose exit signal is not SIGCHLD ("clone" children) are waited for with __WCLONE
/// or __WALL only; the others without __WCLONE.
pub fn wait_clone_children() -> TestResult {
    let clone_child = || -> Result<Child, Errno> {
        // Exit signal 0: the parent is told nothing.
        let pid = clone_fork(0, 0, 0)?;
        if pid == 0 {
            sys::exit_group(4);
        }
        Ok(Child::of(pid))
    };
    let mut child = check_ok!(clone_child());
    check!(eventually(|| {
        // Ends with the child: WALL|WNOWAIT leaves it for the waits below.
        let mut info = Siginfo::filled(0);
        let options = sys::WEXITED | sys::WNOWAIT | sys::WALL | sys::WNOHANG;
        sys::waitid(sys::P_PID, child.pid, &raw mut info as usize, options, 0).is_ok()
            && info.pid == child.pid as i32
    }));
    check_err!(wait(child.pid, 0), Errno::ECHILD);
    check_err!(wait(usize::MAX, sys::WNOHANG), Errno::ECHILD);
    let mut info = Siginfo::filled(0);
    check_err!(
        sys::waitid(sys::P_ALL, 0, &raw mut info as usize, sys::WEXITED, 0),
        Errno::ECHILD
    );
    check_eq!(wait(child.pid, sys::WCLONE), Ok((child.pid, 4 << 8)));
    child.collected = true;
    let mut child = check_ok!(clone_child());
    check_eq!(wait(usize::MAX, sys::WALL), Ok((child.pid, 4 << 8)));
    child.collected = true;
    // A SIGCHLD child is not a clone child.
    let mut child = check_ok!(Child::fork(|| 5));
    check_err!(wait(child.pid, sys::WCLONE), Errno::ECHILD);
    check_eq!(wait(child.pid, 0), Ok((child.pid, 5 << 8)));
    child.collected = true;
    Ok(())
}

// ---- waitid ----

/// What waitid leaves alone in a `siginfo_t` it fills: the padding after `si_code` and
/// everything after `si_status`.
fn untouched(info: &Siginfo, fill: i32) -> bool {
    info.pad == fill && info.rest.iter().all(|&w| w == fill)
}

pub fn waitid_exited_siginfo() -> TestResult {
    const FILL: i32 = 0x5a5a_5a5a;
    let mut child = check_ok!(Child::fork(|| 42));
    let mut info = Siginfo::filled(FILL);
    check_eq!(
        sys::waitid(
            sys::P_PID,
            child.pid,
            &raw mut info as usize,
            sys::WEXITED,
            0
        ),
        Ok(0),
        "waitid returns 0, not the pid"
    );
    child.collected = true;
    check_eq!(info.signo, sys::SIGCHLD as i32);
    check_eq!(info.errno, 0);
    check_eq!(info.code, sys::CLD_EXITED);
    check_eq!(info.pid, child.pid as i32);
    check_eq!(info.uid, sys::getuid() as u32);
    check_eq!(info.status, 42);
    check!(
        untouched(&info, FILL),
        "waitid wrote more than the SIGCHLD fields: {info:?}"
    );
    check_err!(wait(child.pid, sys::WNOHANG), Errno::ECHILD);
    Ok(())
}

pub fn waitid_killed_siginfo() -> TestResult {
    let mut child = check_ok!(Child::fork(|| {
        touch(0);
        1
    }));
    let mut info = Siginfo::filled(0);
    check_ok!(sys::waitid(
        sys::P_ALL,
        0,
        &raw mut info as usize,
        sys::WEXITED,
        0
    ));
    child.collected = true;
    check_eq!(info.signo, sys::SIGCHLD as i32);
    check!(
        info.code == sys::CLD_KILLED || info.code == sys::CLD_DUMPED,
        "si_code {} for a death by SIGSEGV",
        info.code
    );
    check_eq!(info.pid, child.pid as i32);
    check_eq!(info.status, sys::SIGSEGV as i32);
    Ok(())
}

pub fn waitid_wnohang() -> TestResult {
    const FILL: i32 = 0x5a5a_5a5a;
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(0).load(SeqCst) == 1))
    }));
    let mut info = Siginfo::filled(FILL);
    let options = sys::WEXITED | sys::WNOHANG;
    check_eq!(
        sys::waitid(sys::P_PID, child.pid, &raw mut info as usize, options, 0),
        Ok(0)
    );
    // Nothing to report: the SIGCHLD fields are zeroes.
    check_eq!(
        (
            info.signo,
            info.errno,
            info.code,
            info.pid,
            info.uid,
            info.status
        ),
        (0, 0, 0, 0, 0, 0)
    );
    check!(untouched(&info, FILL), "{info:?}");
    check_eq!(
        sys::waitid(sys::P_ALL, 0, &raw mut info as usize, options, 0),
        Ok(0)
    );
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_err!(
        sys::waitid(sys::P_ALL, 0, &raw mut info as usize, options, 0),
        Errno::ECHILD
    );
    Ok(())
}

pub fn waitid_wnowait_then_collect() -> TestResult {
    let mut child = check_ok!(Child::fork(|| 3));
    for round in 0..2 {
        let mut info = Siginfo::filled(0);
        let options = sys::WEXITED | sys::WNOWAIT;
        check_eq!(
            sys::waitid(sys::P_PID, child.pid, &raw mut info as usize, options, 0),
            Ok(0)
        );
        check_eq!(
            (info.signo, info.code, info.pid, info.status),
            (sys::SIGCHLD as i32, sys::CLD_EXITED, child.pid as i32, 3),
            "WNOWAIT report {round}"
        );
    }
    check_eq!(check_ok!(child.end()), End::Exited(3));
    let mut info = Siginfo::filled(0);
    check_err!(
        sys::waitid(
            sys::P_PID,
            child.pid,
            &raw mut info as usize,
            sys::WEXITED,
            0
        ),
        Errno::ECHILD
    );
    Ok(())
}

pub fn waitid_idtypes() -> TestResult {
    let mut info = Siginfo::filled(0);
    let infop = &raw mut info as usize;
    // P_ALL
    let mut child = check_ok!(Child::fork(|| 1));
    check_ok!(sys::waitid(sys::P_ALL, 0, infop, sys::WEXITED, 0));
    child.collected = true;
    check_eq!((info.pid, info.status), (child.pid as i32, 1));
    // P_PGID 0: the caller's group.
    let mut child = check_ok!(Child::fork(|| 2));
    check_ok!(sys::waitid(sys::P_PGID, 0, infop, sys::WEXITED, 0));
    child.collected = true;
    check_eq!((info.pid, info.status), (child.pid as i32, 2));
    // P_PGID of a child's own group; P_PID.
    let shared = check_ok!(Shared::new());
    let mut grouped = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(0).load(SeqCst) == 1)) + 3
    }));
    check_ok!(sys::setpgid(grouped.pid, grouped.pid));
    let options = sys::WEXITED | sys::WNOHANG;
    check_ok!(sys::waitid(sys::P_PGID, grouped.pid, infop, options, 0));
    check_eq!(info.pid, 0, "waitid(P_PGID) reported a running child");
    shared.word(0).store(1, SeqCst);
    check_ok!(sys::waitid(
        sys::P_PGID,
        grouped.pid,
        infop,
        sys::WEXITED,
        0
    ));
    grouped.collected = true;
    check_eq!((info.pid, info.status), (grouped.pid as i32, 3));
    let mut child = check_ok!(Child::fork(|| 4));
    check_ok!(sys::waitid(sys::P_PID, child.pid, infop, sys::WEXITED, 0));
    child.collected = true;
    check_eq!((info.pid, info.status), (child.pid as i32, 4));
    Ok(())
}

pub fn waitid_errors() -> TestResult {
    let mut info = Siginfo::filled(0);
    let infop = &raw mut info as usize;
    let einval = [
        (sys::P_ALL, 0, 0, "no WEXITED, WSTOPPED or WCONTINUED"),
        (sys::P_ALL, 0, sys::WNOHANG, "WNOHANG alone"),
        (sys::P_ALL, 0, sys::WEXITED | 0x10, "an unknown option"),
        (4, 0, sys::WEXITED, "idtype 4"),
        (sys::P_PID, 0, sys::WEXITED, "P_PID 0"),
        (sys::P_PID, usize::MAX, sys::WEXITED, "P_PID -1"),
        (sys::P_PGID, usize::MAX, sys::WEXITED, "P_PGID -1"),
        (sys::P_PIDFD, usize::MAX, sys::WEXITED, "P_PIDFD -1"),
    ];
    for (idtype, id, options, what) in einval {
        let r = sys::waitid(idtype, id, infop, options, 0);
        check_eq!(r, Err(Errno::EINVAL), "waitid with {what}");
    }
    check_err!(
        sys::waitid(sys::P_ALL, 0, infop, sys::WEXITED, 0),
        Errno::ECHILD
    );
    check_err!(
        sys::waitid(sys::P_PID, NO_PID, infop, sys::WEXITED, 0),
        Errno::ECHILD
    );
    check_err!(
        sys::waitid(sys::P_PGID, NO_PID, infop, sys::WEXITED, 0),
        Errno::ECHILD
    );
    // A bad siginfo pointer: EFAULT, and the child is collected anyway.
    let mut child = check_ok!(Child::fork(|| 0));
    check_err!(
        sys::waitid(sys::P_PID, child.pid, KERNEL_ADDR, sys::WEXITED, 0),
        Errno::EFAULT
    );
    child.collected = true;
    check_err!(wait(child.pid, sys::WNOHANG), Errno::ECHILD);
    // A bad usage pointer: EFAULT before the siginfo is written.
    let mut child = check_ok!(Child::fork(|| 0));
    let mut info = Siginfo::filled(7);
    check_err!(
        sys::waitid(
            sys::P_PID,
            child.pid,
            &raw mut info as usize,
            sys::WEXITED,
            KERNEL_ADDR
        ),
        Errno::EFAULT
    );
    child.collected = true;
    check_eq!(info, Siginfo::filled(7), "siginfo written before the usage");
    // No siginfo pointer is fine.
    let mut child = check_ok!(Child::fork(|| 0));
    check_eq!(
        sys::waitid(sys::P_PID, child.pid, 0, sys::WEXITED, 0),
        Ok(0)
    );
    child.collected = true;
    Ok(())
}

/// Without WEXITED, an ended child can never be reported: it counts as no child at all
/// (ECHILD), while a running one might still stop (0 with WNOHANG).
pub fn waitid_without_wexited() -> TestResult {
    let mut info = Siginfo::filled(0);
    let infop = &raw mut info as usize;
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(0).load(SeqCst) == 1))
    }));
    for options in [sys::WSTOPPED, sys::WCONTINUED] {
        let r = sys::waitid(sys::P_PID, child.pid, infop, options | sys::WNOHANG, 0);
        check_eq!(r, Ok(0), "options {options:#x} with the child running");
        check_eq!(info.pid, 0);
    }
    shared.word(0).store(1, SeqCst);
    // Wait until it is a zombie, without collecting it.
    check_ok!(sys::waitid(
        sys::P_PID,
        child.pid,
        infop,
        sys::WEXITED | sys::WNOWAIT,
        0
    ));
    for options in [
        sys::WSTOPPED | sys::WNOHANG,
        sys::WSTOPPED,
        sys::WCONTINUED,
        sys::WSTOPPED | sys::WCONTINUED,
    ] {
        let r = sys::waitid(sys::P_PID, child.pid, infop, options, 0);
        check_eq!(
            r,
            Err(Errno::ECHILD),
            "options {options:#x} with the child ended"
        );
        let r = sys::waitid(sys::P_ALL, 0, infop, options, 0);
        check_eq!(r, Err(Errno::ECHILD), "P_ALL, options {options:#x}");
    }
    check_eq!(check_ok!(child.end()), End::Exited(0));
    Ok(())
}

// ---- getppid, orphans ----

pub fn getppid_of_children() -> TestResult {
    let me = sys::getpid();
    let mut child = check_ok!(Child::fork(|| {
        if sys::getppid() != me {
            return 1;
        }
        let child = sys::getpid();
        let grandchild = Child::fork(move || i32::from(sys::getppid() != child) * 3);
        match grandchild.and_then(|mut g| g.end()) {
            Ok(End::Exited(0)) => 0,
            _ => 2,
        }
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "1: the child's getppid; 2: the grandchild's"
    );
    // getppid never fails and the parent's answer is stable.
    check_eq!(sys::getppid(), sys::getppid());
    Ok(())
}

pub fn orphan_adopted_by_top() -> TestResult {
    if !is_top() {
        skip!(
            "not the top process of its tree (getppid {})",
            sys::getppid()
        );
    }
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        let me = sys::getpid();
        // Two orphans: a fork's child, and a clone child whose exit signal is 0.
        for (i, exit_signal) in [(0, sys::SIGCHLD), (1, 0)] {
            match clone_fork(exit_signal, 0, 0) {
                Ok(0) => {
                    // Waits until its parent is gone, reports its new parent.
                    if eventually(|| sys::getppid() != me) {
                        shared.word(2 + i).store(sys::getppid(), SeqCst);
                        sys::exit_group(0)
                    }
                    sys::exit_group(1)
                }
                Ok(pid) => shared.word(i).store(pid, SeqCst),
                Err(_) => return 1,
            }
        }
        0
    }));
    check_eq!(check_ok!(child.end()), End::Exited(0));
    for i in 0..2 {
        let orphan = shared.word(i).load(SeqCst);
        check!(orphan != 0);
        // Adopted by us: ours to collect, with a plain wait (an adopted process ends with
        // SIGCHLD whatever it was created with).
        let mut orphan = Child::of(orphan);
        check_eq!(
            wait(orphan.pid, 0).map(|(pid, status)| (pid, End::of(status))),
            Ok((orphan.pid, End::Exited(0))),
            "orphan {i}"
        );
        orphan.collected = true;
        check_eq!(
            shared.word(2 + i).load(SeqCst),
            sys::getpid(),
            "orphan {i}'s new parent"
        );
    }
    Ok(())
}

// ---- process groups and sessions ----

pub fn getpgid_getsid() -> TestResult {
    let me = sys::getpid();
    let pgrp = sys::getpgrp();
    let sid = check_ok!(sys::getsid(0));
    check_eq!(sys::getpgid(0), Ok(pgrp));
    check_eq!(sys::getpgid(me), Ok(pgrp));
    check_eq!(sys::getsid(me), Ok(sid));
    let shared = check_ok!(Shared::new());
    let mut child = check_ok!(Child::fork(|| {
        shared.word(0).store(sys::getpgrp(), SeqCst);
        shared
            .word(1)
            .store(sys::getsid(0).unwrap_or(usize::MAX), SeqCst);
        shared.word(2).store(1, SeqCst);
        i32::from(!eventually(|| shared.word(3).load(SeqCst) == 1))
    }));
    check!(eventually(|| shared.word(2).load(SeqCst) == 1));
    check_eq!(shared.word(0).load(SeqCst), pgrp, "a child's group");
    check_eq!(shared.word(1).load(SeqCst), sid, "a child's session");
    check_eq!(sys::getpgid(child.pid), Ok(pgrp));
    check_eq!(sys::getsid(child.pid), Ok(sid));
    shared.word(3).store(1, SeqCst);
    // A zombie keeps its group and session until collected.
    check_ok!(sys::waitid(
        sys::P_PID,
        child.pid,
        0,
        sys::WEXITED | sys::WNOWAIT,
        0
    ));
    check_eq!(sys::getpgid(child.pid), Ok(pgrp), "a zombie's group");
    check_eq!(sys::getsid(child.pid), Ok(sid), "a zombie's session");
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_err!(sys::getpgid(child.pid), Errno::ESRCH);
    check_err!(sys::getsid(child.pid), Errno::ESRCH);
    for pid in [NO_PID, usize::MAX] {
        check_err!(sys::getpgid(pid), Errno::ESRCH);
        check_err!(sys::getsid(pid), Errno::ESRCH);
    }
    Ok(())
}

pub fn setsid_in_child() -> TestResult {
    let shared = check_ok!(Shared::new());
    let sid = check_ok!(sys::getsid(0));
    let mut child = check_ok!(Child::fork(|| {
        let me = sys::getpid();
        if sys::setsid() != Ok(me) {
            return 1;
        }
        if sys::getsid(0) != Ok(me) || sys::getpgid(0) != Ok(me) || sys::getpgrp() != me {
            return 2;
        }
        // A session leader can neither start another session nor change its group.
        if sys::setsid() != Err(Errno::EPERM) {
            return 3;
        }
        if sys::setpgid(0, 0) != Err(Errno::EPERM) {
            return 4;
        }
        shared.word(0).store(1, SeqCst);
        if !eventually(|| shared.word(1).load(SeqCst) == 1) {
            return 5;
        }
        0
    }));
    check!(eventually(|| shared.word(0).load(SeqCst) != 0));
    check_eq!(sys::getsid(child.pid), Ok(child.pid));
    check_eq!(sys::getpgid(child.pid), Ok(child.pid));
    check_eq!(sys::getsid(0), Ok(sid), "the parent's session changed");
    // In another session now: the parent may not move it.
    check_err!(sys::setpgid(child.pid, child.pid), Errno::EPERM);
    shared.word(1).store(1, SeqCst);
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "1: setsid; 2: the new ids; 3: setsid again; 4: setpgid of a session leader"
    );
    Ok(())
}

pub fn setsid_group_leader_eperm() -> TestResult {
    let mut child = check_ok!(Child::fork(|| {
        if sys::setpgid(0, 0).is_err() {
            return 1;
        }
        if sys::getpgrp() != sys::getpid() {
            return 2;
        }
        match sys::setsid() {
            Err(Errno::EPERM) => 0,
            _ => 3,
        }
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "1, 2: setpgid(0, 0); 3: setsid of a group leader did not fail with EPERM"
    );
    Ok(())
}

pub fn setpgid_moves_children() -> TestResult {
    let shared = check_ok!(Shared::new());
    let waiting = || i32::from(!eventually(|| shared.word(0).load(SeqCst) == 1));
    let mut leader = check_ok!(Child::fork(waiting));
    // pgid 0: the process's own pid.
    check_ok!(sys::setpgid(leader.pid, 0));
    check_eq!(sys::getpgid(leader.pid), Ok(leader.pid));
    shared.word(1).store(leader.pid, SeqCst);
    let mut member = check_ok!(Child::fork(|| {
        // A child moves itself into the leader's group.
        let group = shared.word(1).load(SeqCst);
        if sys::setpgid(0, group).is_err() || sys::getpgrp() != group {
            return 1;
        }
        shared.word(2).store(1, SeqCst);
        waiting()
    }));
    check!(eventually(|| shared.word(2).load(SeqCst) == 1));
    check_eq!(sys::getpgid(member.pid), Ok(leader.pid));
    // And back into a group of its own, by the parent.
    check_ok!(sys::setpgid(member.pid, member.pid));
    check_eq!(sys::getpgid(member.pid), Ok(member.pid));
    // Moving into its own group again changes nothing.
    check_ok!(sys::setpgid(member.pid, member.pid));
    shared.word(0).store(1, SeqCst);
    check_eq!(check_ok!(member.end()), End::Exited(0));
    check_eq!(check_ok!(leader.end()), End::Exited(0));
    Ok(())
}

pub fn setpgid_errors() -> TestResult {
    check_err!(sys::setpgid(0, usize::MAX), Errno::EINVAL);
    // pgid 0 stands for pid, -1 here: negative.
    check_err!(sys::setpgid(usize::MAX, 0), Errno::EINVAL);
    check_err!(sys::setpgid(usize::MAX, sys::getpid()), Errno::ESRCH);
    check_err!(sys::setpgid(NO_PID, 0), Errno::ESRCH);
    // Not a process (a thread): EINVAL.
    let shared = check_ok!(Shared::new());
    let thread = urt::thread::spawn(|| {
        let tid = sys::gettid();
        let r = sys::setpgid(tid, 0);
        (r, tid)
    });
    let (r, tid) = thread.join();
    check_eq!(r, Err(Errno::EINVAL), "setpgid of thread {tid}");
    // Neither the caller nor its child: ESRCH, both ways along the tree.
    let me = sys::getpid();
    let mut child = check_ok!(Child::fork(|| {
        let Ok(mut grandchild) =
            Child::fork(|| i32::from(!eventually(|| shared.word(1).load(SeqCst) == 1)))
        else {
            return 1;
        };
        shared.word(0).store(grandchild.pid, SeqCst);
        let parent = match sys::setpgid(me, me) {
            Err(Errno::ESRCH) => 0,
            _ => 2,
        };
        match grandchild.end() {
            Ok(End::Exited(0)) => parent,
            _ => 3,
        }
    }));
    check!(eventually(|| shared.word(0).load(SeqCst) != 0));
    let grandchild = shared.word(0).load(SeqCst);
    check_err!(sys::setpgid(grandchild, grandchild), Errno::ESRCH);
    // A group that does not exist (in our session): EPERM.
    check_err!(sys::setpgid(child.pid, NO_PID), Errno::EPERM);
    shared.word(1).store(1, SeqCst);
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "2: setpgid of the parent did not fail with ESRCH"
    );
    // A group of another session: EPERM.
    let mut other = check_ok!(Child::fork(|| {
        let r = sys::setsid();
        shared.word(2).store(1, SeqCst);
        if r.is_err() {
            return 1;
        }
        i32::from(!eventually(|| shared.word(3).load(SeqCst) == 1))
    }));
    let mut member = check_ok!(Child::fork(|| {
        i32::from(!eventually(|| shared.word(3).load(SeqCst) == 1))
    }));
    check!(eventually(|| shared.word(2).load(SeqCst) == 1));
    check_err!(sys::setpgid(member.pid, other.pid), Errno::EPERM);
    shared.word(3).store(1, SeqCst);
    check_eq!(check_ok!(other.end()), End::Exited(0));
    check_eq!(check_ok!(member.end()), End::Exited(0));
    Ok(())
}

pub fn setpgid_after_exec_eacces() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let argv = Strings::new(&["faulter", "sleep", "100"]);
    let envp = Strings::new::<&str>(&[]);
    // vfork returns once the child has let go of our memory in its exec; Linux marks it as
    // having exec'd a little later (PF_FORKNOEXEC is cleared after the vfork parent is woken),
    // so until then setpgid may still succeed.
    let pid = check_ok!(sys::vfork_exec(
        path.as_ptr() as usize,
        argv.ptr(),
        envp.ptr()
    ));
    let mut child = Child::of(pid);
    check!(
        eventually(|| sys::setpgid(pid, pid) == Err(Errno::EACCES)),
        "setpgid of a child that exec'd never said EACCES"
    );
    check_err!(sys::setpgid(pid, 0), Errno::EACCES);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    Ok(())
}

// ---- execve, execveat ----

pub fn execve_passes_argv_and_envp() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let long = "L".repeat(3000);
    let long_var = alloc::format!("LONG={long}");
    let env = ["A=1", "EMPTY=", "", long_var.as_str(), "LAST=z"];
    let mut argv: Vec<&str> = alloc::vec!["any argv0", "env-is", "any argv0"];
    argv.extend_from_slice(&env);
    check_eq!(
        check_ok!(run_faulter(
            &path,
            &Strings::new(&argv),
            &Strings::new(&env)
        )),
        End::Exited(0),
        "argv[0] or the environment differ (faulter env-is)"
    );
    // The environment is what execve was given: nothing is inherited.
    let argv = Strings::new(&["x", "env-is", "x"]);
    let no_env = Strings::new::<&str>(&[]);
    check_eq!(
        check_ok!(run_faulter(&path, &argv, &no_env)),
        End::Exited(0)
    );
    // The check can fail: a variable more than expected.
    let one = Strings::new(&["A=1"]);
    check_eq!(check_ok!(run_faulter(&path, &argv, &one)), End::Exited(1));
    // argc counts empty arguments.
    let argv = Strings::new(&["", "argc", "", "", "last"]);
    check_eq!(
        check_ok!(run_faulter(&path, &argv, &no_env)),
        End::Exited(5)
    );
    // A NULL argv runs the program with argc 1 (an empty argv[0]): faulter's usage, 2. A
    // NULL envp is an empty environment.
    let mut child = check_ok!(Child::fork(|| {
        let _ = sys::execve(path.as_ptr() as usize, 0, 0);
        127
    }));
    check_eq!(check_ok!(child.end()), End::Exited(2), "argv NULL");
    Ok(())
}

pub fn execve_keeps_pid_and_parent() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let me = sys::getpid();
    let mut child = check_ok!(Child::fork(|| {
        let pid = alloc::format!("{}", sys::getpid());
        let ppid = alloc::format!("{me}");
        let argv = Strings::new(&["faulter", "ids", pid.as_str(), ppid.as_str()]);
        let _ = sys::execve(path.as_ptr() as usize, argv.ptr(), 0);
        127
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "1: the exec'd program's pid, tid or parent differ (faulter ids)"
    );
    Ok(())
}

pub fn execve_errors() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let p = path.as_ptr() as usize;
    let argv = Strings::new(&["faulter", "argc"]);
    let env = Strings::new::<&str>(&[]);
    let missing = c"/bin/no-such-program".as_ptr() as usize;
    let bad_arg = [KERNEL_ADDR, 0usize];
    // Inaccessible for the whole test (an address merely unmapped could be reused by the
    // allocations below).
    let none = check_ok!(Mapping::new(1, sys::PROT_NONE));
    let inaccessible = none.addr;
    let bad_env = [inaccessible, 0usize];
    let huge = "a".repeat(200 * 1024);
    let huge_argv = Strings::new(&["faulter", "argc", huge.as_str()]);
    let long_path = CString::new(alloc::format!("/{}", "a".repeat(5000))).unwrap_or_default();
    let mut trailing = path.as_bytes().to_vec();
    trailing.extend_from_slice(b"/\0");
    let cases: [(&str, usize, usize, usize, Errno); 14] = [
        (
            "a missing file",
            missing,
            argv.ptr(),
            env.ptr(),
            Errno::ENOENT,
        ),
        ("path NULL", 0, argv.ptr(), env.ptr(), Errno::EFAULT),
        (
            "path in the kernel",
            KERNEL_ADDR,
            argv.ptr(),
            env.ptr(),
            Errno::EFAULT,
        ),
        (
            "path inaccessible",
            inaccessible,
            argv.ptr(),
            env.ptr(),
            Errno::EFAULT,
        ),
        (
            "argv inaccessible",
            p,
            inaccessible,
            env.ptr(),
            Errno::EFAULT,
        ),
        (
            "argv[0] in the kernel",
            p,
            bad_arg.as_ptr() as usize,
            env.ptr(),
            Errno::EFAULT,
        ),
        (
            "envp inaccessible",
            p,
            argv.ptr(),
            inaccessible,
            Errno::EFAULT,
        ),
        (
            "envp[0] inaccessible",
            p,
            argv.ptr(),
            bad_env.as_ptr() as usize,
            Errno::EFAULT,
        ),
        (
            "a 200 KiB argument",
            p,
            huge_argv.ptr(),
            env.ptr(),
            Errno::E2BIG,
        ),
        (
            "a 5001-byte path",
            long_path.as_ptr() as usize,
            argv.ptr(),
            env.ptr(),
            Errno::ENAMETOOLONG,
        ),
        (
            "a directory",
            c"/bin".as_ptr() as usize,
            argv.ptr(),
            env.ptr(),
            Errno::EACCES,
        ),
        (
            "the root",
            c"/".as_ptr() as usize,
            argv.ptr(),
            env.ptr(),
            Errno::EACCES,
        ),
        (
            "a directory with a trailing slash",
            c"/bin/".as_ptr() as usize,
            argv.ptr(),
            env.ptr(),
            Errno::EACCES,
        ),
        (
            "a file with a trailing slash",
            trailing.as_ptr() as usize,
            argv.ptr(),
            env.ptr(),
            Errno::ENOTDIR,
        ),
    ];
    for (what, path, argv, envp, errno) in cases {
        let end = check_ok!(exec_error(|| sys::execve(path, argv, envp)));
        check_eq!(
            end,
            End::Exited(errno.0),
            "execve of {what}: expected {errno:?}"
        );
    }
    Ok(())
}

/// Where [`tiny_elf`] loads its segments (a static executable's usual address).
const TINY_ELF_BASE: u64 = 0x40_0000;

/// A static x86-64 executable of `loads` `PT_LOAD` headers, each mapping the whole file at
/// [`TINY_ELF_BASE`] with `memsz` bytes of memory; its only instruction, `hlt`, is at the end
/// of the file, and `entry` is where it starts. Run well formed, it dies of `SIGSEGV` on its
/// privileged `hlt`, which shows the image is right but for the defect each case puts in.
fn tiny_elf(loads: u16, memsz: Option<u64>, entry: Option<u64>) -> Vec<u8> {
    const HEADER: usize = 64;
    const PHDR: usize = 56;
    let code = HEADER + PHDR * usize::from(loads);
    let size = code as u64 + 1;
    let mut image = Vec::with_capacity(code + 1);
    image.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    image.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    image.extend_from_slice(&62u16.to_le_bytes()); // e_machine: EM_X86_64
    image.extend_from_slice(&1u32.to_le_bytes()); // e_version
    let entry = entry.unwrap_or(TINY_ELF_BASE + code as u64);
    image.extend_from_slice(&entry.to_le_bytes());
    image.extend_from_slice(&(HEADER as u64).to_le_bytes()); // e_phoff
    image.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    image.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    image.extend_from_slice(&(HEADER as u16).to_le_bytes()); // e_ehsize
    image.extend_from_slice(&(PHDR as u16).to_le_bytes()); // e_phentsize
    image.extend_from_slice(&loads.to_le_bytes()); // e_phnum
    image.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    for _ in 0..loads {
        image.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
        image.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R X
        image.extend_from_slice(&0u64.to_le_bytes()); // p_offset
        image.extend_from_slice(&TINY_ELF_BASE.to_le_bytes()); // p_vaddr
        image.extend_from_slice(&TINY_ELF_BASE.to_le_bytes()); // p_paddr
        image.extend_from_slice(&size.to_le_bytes()); // p_filesz
        image.extend_from_slice(&memsz.unwrap_or(size).to_le_bytes());
        image.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    }
    image.push(0xf4); // hlt
    image
}

/// Malformed executables written to /tmp and run: each is refused (`ENOEXEC`, Linux's answer
/// to a header it cannot load) and the caller goes on. The defects in the segments (a huge
/// `p_memsz`, an entry outside every segment, overlapping segments) are refused here before
/// anything is mapped; Linux 6.12 finds them past its point of no return, or not at all, and
/// the process dies of `SIGSEGV`, which is also accepted: either way the program never runs.
pub fn execve_refuses_malformed_elf_files() -> TestResult {
    let s = check_ok!(Scratch::new("badelf"));
    let good = tiny_elf(1, None, None);
    let with = |at: usize, bytes: &[u8]| {
        let mut image = good.clone();
        image[at..at + bytes.len()].copy_from_slice(bytes);
        image
    };
    let run = |name: &str, image: &[u8]| -> Result<End, Errno> {
        let path = s.path(name);
        write_file(&path, 0o755, image)?;
        let argv = Strings::new(&[name]);
        exec_error(|| sys::execve(path.as_ptr() as usize, argv.ptr(), 0))
    };
    let segv = End::Killed(sys::SIGSEGV as i32);
    check_eq!(
        check_ok!(run("well-formed", &good)),
        segv,
        "the control image"
    );
    let refused = End::Exited(Errno::ENOEXEC.0);
    let header_defects: [(&str, Vec<u8>); 6] = [
        ("not-elf", alloc::vec![b'A'; 64]),
        ("truncated-header", good[..20].to_vec()),
        ("arm-machine", with(18, &40u16.to_le_bytes())),
        ("object-file", with(16, &1u16.to_le_bytes())),
        ("phentsize-32", with(54, &32u16.to_le_bytes())),
        ("no-phdrs", with(56, &0u16.to_le_bytes())),
    ];
    for (name, image) in &header_defects {
        check_eq!(check_ok!(run(name, image)), refused, "execve of {name}");
    }
    let segment_defects = [
        ("huge-memsz", tiny_elf(1, Some(1 << 47), None)),
        ("entry-outside", tiny_elf(1, None, Some(0x1_0000))),
        ("overlapping-segments", tiny_elf(2, None, None)),
    ];
    for (name, image) in &segment_defects {
        let end = check_ok!(run(name, image));
        check!(
            end == refused || end == segv,
            "execve of {name}: {end:?}, expected ENOEXEC or death by SIGSEGV"
        );
    }
    Ok(())
}

pub fn execveat_paths_and_flags() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let argv = Strings::new(&["faulter", "argc"]);
    let env = Strings::new::<&str>(&[]);
    let run = |dirfd: usize, path: usize, flags: usize| {
        exec_error(|| sys::execveat(dirfd, path, argv.ptr(), env.ptr(), flags))
    };
    let p = path.as_ptr() as usize;
    // An absolute path: the directory descriptor does not matter. faulter argc exits 2.
    for dirfd in [sys::AT_FDCWD, 1, 999] {
        check_eq!(check_ok!(run(dirfd, p, 0)), End::Exited(2), "dirfd {dirfd}");
    }
    check_eq!(
        check_ok!(run(sys::AT_FDCWD, p, sys::AT_EMPTY_PATH)),
        End::Exited(2)
    );
    for flags in [0x1, 0x8000, 0x200] {
        check_eq!(
            check_ok!(run(sys::AT_FDCWD, p, flags)),
            End::Exited(Errno::EINVAL.0),
            "flags {flags:#x}"
        );
    }
    let relative = c"bin/faulter".as_ptr() as usize;
    check_eq!(
        check_ok!(run(1, relative, 0)),
        End::Exited(Errno::ENOTDIR.0)
    );
    check_eq!(
        check_ok!(run(999, relative, 0)),
        End::Exited(Errno::EBADF.0)
    );
    let empty = c"".as_ptr() as usize;
    check_eq!(
        check_ok!(run(sys::AT_FDCWD, empty, 0)),
        End::Exited(Errno::ENOENT.0)
    );
    // AT_EMPTY_PATH runs what the descriptor is: the console, or the working directory.
    check_eq!(
        check_ok!(run(1, empty, sys::AT_EMPTY_PATH)),
        End::Exited(Errno::EACCES.0)
    );
    check_eq!(
        check_ok!(run(sys::AT_FDCWD, empty, sys::AT_EMPTY_PATH)),
        End::Exited(Errno::EACCES.0)
    );
    // From the working directory, which is / where faulter is /bin/faulter.
    if is_top() && path.as_bytes().starts_with(b"/bin/") {
        check_eq!(check_ok!(run(sys::AT_FDCWD, relative, 0)), End::Exited(2));
        let end = check_ok!(exec_error(|| sys::execve(relative, argv.ptr(), env.ptr())));
        check_eq!(end, End::Exited(2), "execve of a relative path");
    }
    Ok(())
}

/// execve from a process with other threads: they disappear, and the new program runs as
/// the process (its pid, and the parent it had), whichever thread called execve.
pub fn execve_from_a_thread() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let me = sys::getpid();
    for from_main in [false, true] {
        let mut child = check_ok!(Child::fork(|| {
            let pid = alloc::format!("{}", sys::getpid());
            let ppid = alloc::format!("{me}");
            let argv = Strings::new(&["faulter", "ids", pid.as_str(), ppid.as_str()]);
            let path = path.as_ptr() as usize;
            let argv_ptr = argv.ptr();
            let _sleeper = urt::thread::spawn(|| {
                loop {
                    sys::sleep_ns(5_000_000);
                }
            });
            let _yielder = urt::thread::spawn(|| {
                loop {
                    let _ = sys::sched_yield();
                }
            });
            if from_main {
                let _ = sys::execve(path, argv_ptr, 0);
            } else {
                let execer = urt::thread::spawn(move || sys::execve(path, argv_ptr, 0));
                let _ = execer.join();
            }
            127
        }));
        check_eq!(
            check_ok!(child.end()),
            End::Exited(0),
            "execve from the {} thread (1: the ids differ, faulter ids)",
            if from_main { "main" } else { "second" }
        );
    }
    Ok(())
}

// ---- vfork ----

/// `vfork()` whose child sleeps `ts`, sets `mark` to 1 and exits with `code`, all in
/// registers: it never touches the stack it shares with the caller.
fn vfork_sleep_mark(ts: &sys::Timespec, mark: &AtomicU32, code: i32) -> sys::SysResult {
    let ret: usize;
    // SAFETY: the child runs only the instructions below, with its arguments in registers the
    // kernel keeps across system calls (r8, r9, r10), writes only `mark` (an atomic) and
    // exits; the caller sleeps in vfork meanwhile and goes on as after any system call.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r8",
            "xor esi, esi",
            "mov eax, {nanosleep}",
            "syscall",
            "mov dword ptr [r9], 1",
            "mov edi, r10d",
            "mov eax, {exit_group}",
            "syscall",
            "ud2",
            "2:",
            nanosleep = const sys::nr::NANOSLEEP,
            exit_group = const sys::nr::EXIT_GROUP,
            inlateout("rax") sys::nr::VFORK => ret,
            in("r8") ts as *const sys::Timespec as usize,
            in("r9") mark.as_ptr() as usize,
            in("r10") code as usize,
            lateout("rdi") _, lateout("rsi") _, lateout("rcx") _, lateout("r11") _,
        );
    }
    sys::decode(ret)
}

pub fn vfork_waits_for_exit() -> TestResult {
    static MARK: AtomicU32 = AtomicU32::new(0);
    MARK.store(0, SeqCst);
    let ts = sys::Timespec::from_nanos(100_000_000);
    let started = sys::monotonic_ns();
    let pid = check_ok!(vfork_sleep_mark(&ts, &MARK, 9));
    let elapsed = sys::monotonic_ns().saturating_sub(started);
    let mut child = Child::of(pid);
    // The child wrote our memory, and we slept until it exited.
    check_eq!(MARK.load(SeqCst), 1, "the vfork child's write");
    check!(
        elapsed >= 100_000_000,
        "vfork returned after {elapsed} ns, before the child's 100 ms sleep ended"
    );
    check_eq!(check_ok!(child.end()), End::Exited(9));
    Ok(())
}

pub fn vfork_returns_at_exec() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let argv = Strings::new(&["faulter", "sleep", "2000"]);
    let envp = Strings::new::<&str>(&[]);
    let pid = check_ok!(sys::vfork_exec(
        path.as_ptr() as usize,
        argv.ptr(),
        envp.ptr()
    ));
    let mut child = Child::of(pid);
    // Back before the exec'd program ends.
    check_eq!(
        sys::wait4(pid, 0, sys::WNOHANG, 0),
        Ok(0),
        "the exec'd program already ended"
    );
    check_eq!(check_ok!(child.end()), End::Exited(0));
    // A failed execve: the child exits 127 (and the parent goes on).
    let missing = c"/bin/no-such-program".as_ptr() as usize;
    let mut child = Child::of(check_ok!(sys::vfork_exec(missing, argv.ptr(), envp.ptr())));
    check_eq!(check_ok!(child.end()), End::Exited(127));
    Ok(())
}

/// What a child sharing our memory (`CLONE_VM`) works with.
#[derive(Default)]
struct VmChild {
    word: AtomicU32,
    tid_seen: AtomicU32,
    pid_seen: AtomicUsize,
    exec: [AtomicUsize; 3],
    /// Leave with exit(2) instead of exit_group(2).
    thread_exit: bool,
}

extern "C" fn vm_child_write_sleep(arg: usize) -> ! {
    // SAFETY: the parent passed a VmChild that outlives this child.
    let shared = unsafe { &*(arg as *const VmChild) };
    shared.word.store(1, SeqCst);
    sys::sleep_ns(50_000_000);
    shared.word.store(2, SeqCst);
    sys::exit_group(7)
}

extern "C" fn vm_child_report_tid(arg: usize) -> ! {
    // SAFETY: as vm_child_write_sleep.
    let shared = unsafe { &*(arg as *const VmChild) };
    shared.tid_seen.store(shared.word.load(SeqCst), SeqCst);
    shared.pid_seen.store(sys::getpid(), SeqCst);
    if shared.thread_exit {
        sys::exit_thread(0)
    }
    sys::exit_group(0)
}

extern "C" fn vm_child_exec(arg: usize) -> ! {
    // SAFETY: as vm_child_write_sleep.
    let shared = unsafe { &*(arg as *const VmChild) };
    let [path, argv, envp] = &shared.exec;
    let _ = sys::execve(path.load(SeqCst), argv.load(SeqCst), envp.load(SeqCst));
    sys::exit_group(127)
}

pub fn clone_vm_vfork_shares_memory() -> TestResult {
    let stack = check_ok!(Stack::new());
    let shared = VmChild::default();
    let flags = sys::CLONE_VM | sys::CLONE_VFORK | sys::SIGCHLD;
    // SAFETY: the child runs on `stack`, touches only `shared`'s atomics, and exits; both
    // outlive it (it is collected below, or by the guard).
    let pid = check_ok!(unsafe {
        urt::thread::clone_on_stack(
            flags,
            stack.top(),
            0,
            0,
            0,
            vm_child_write_sleep,
            &raw const shared as usize,
        )
    });
    let mut child = Child::of(pid);
    check_eq!(
        shared.word.load(SeqCst),
        2,
        "CLONE_VFORK returned before the child exited, or its writes are not ours"
    );
    check_eq!(check_ok!(child.end()), End::Exited(7));
    Ok(())
}

pub fn clone_vm_child_cleartid() -> TestResult {
    let stack = check_ok!(Stack::new());
    for thread_exit in [false, true] {
        let shared = VmChild {
            word: AtomicU32::new(0xdead),
            thread_exit,
            ..VmChild::default()
        };
        let ptid = AtomicU32::new(0);
        let flags = sys::CLONE_VM
            | sys::CLONE_PARENT_SETTID
            | sys::CLONE_CHILD_SETTID
            | sys::CLONE_CHILD_CLEARTID
            | sys::SIGCHLD;
        // SAFETY: as in clone_vm_vfork_shares_memory; the child exits before `shared`,
        // `ptid` and `stack` go (it is collected before the next round).
        let pid = check_ok!(unsafe {
            urt::thread::clone_on_stack(
                flags,
                stack.top(),
                ptid.as_ptr() as usize,
                shared.word.as_ptr() as usize,
                0,
                vm_child_report_tid,
                &raw const shared as usize,
            )
        });
        let mut child = Child::of(pid);
        check_eq!(ptid.load(SeqCst), pid as u32, "CLONE_PARENT_SETTID");
        check_eq!(check_ok!(child.end()), End::Exited(0));
        let how = if thread_exit { "exit" } else { "exit_group" };
        check_eq!(
            shared.tid_seen.load(SeqCst),
            pid as u32,
            "CLONE_CHILD_SETTID, seen by the child ({how})"
        );
        check_eq!(shared.pid_seen.load(SeqCst), pid);
        check_eq!(
            shared.word.load(SeqCst),
            0,
            "CLONE_CHILD_CLEARTID after the child's {how}"
        );
    }
    Ok(())
}

pub fn clone_vfork_exec_cleartid() -> TestResult {
    let Some(path) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let argv = Strings::new(&["faulter", "argc"]);
    let stack = check_ok!(Stack::new());
    let shared = VmChild {
        word: AtomicU32::new(0xdead),
        ..VmChild::default()
    };
    shared.exec[0].store(path.as_ptr() as usize, SeqCst);
    shared.exec[1].store(argv.ptr(), SeqCst);
    let flags = sys::CLONE_VM | sys::CLONE_VFORK | sys::CLONE_CHILD_CLEARTID | sys::SIGCHLD;
    // SAFETY: as in clone_vm_vfork_shares_memory; the child execs (or exits) before clone
    // returns.
    let pid = check_ok!(unsafe {
        urt::thread::clone_on_stack(
            flags,
            stack.top(),
            0,
            shared.word.as_ptr() as usize,
            0,
            vm_child_exec,
            &raw const shared as usize,
        )
    });
    let mut child = Child::of(pid);
    check_eq!(
        shared.word.load(SeqCst),
        0,
        "CLONE_CHILD_CLEARTID when the vfork child exec'd"
    );
    check_eq!(check_ok!(child.end()), End::Exited(2));
    Ok(())
}

/// CLONE_PARENT_SETTID and CLONE_CHILD_SETTID without CLONE_VM: the parent's word is set in
/// the parent's memory only, the child's in the child's only.
pub fn clone_settid_fork() -> TestResult {
    let shared = check_ok!(Shared::new());
    for use_clone3 in [false, true] {
        let ptid = AtomicU32::new(0xdead);
        let ctid = AtomicU32::new(0xbeef);
        let flags = sys::CLONE_PARENT_SETTID | sys::CLONE_CHILD_SETTID | sys::CLONE_CHILD_CLEARTID;
        let pid = if use_clone3 {
            let args = CloneArgs {
                flags: flags as u64,
                parent_tid: ptid.as_ptr() as u64,
                child_tid: ctid.as_ptr() as u64,
                exit_signal: sys::SIGCHLD as u64,
                ..CloneArgs::default()
            };
            let size = core::mem::size_of::<CloneArgs>();
            // SAFETY: no CLONE_VM: the child runs on a copy of the memory, as after fork.
            check_ok!(unsafe { sys::clone3(&raw const args as usize, size) })
        } else {
            check_ok!(clone_fork(
                flags | sys::SIGCHLD,
                ptid.as_ptr() as usize,
                ctid.as_ptr() as usize
            ))
        };
        if pid == 0 {
            shared.word(0).store(ptid.load(SeqCst) as usize, SeqCst);
            shared.word(1).store(ctid.load(SeqCst) as usize, SeqCst);
            shared.word(2).store(sys::getpid(), SeqCst);
            sys::exit_group(0);
        }
        let mut child = Child::of(pid);
        check_eq!(check_ok!(child.end()), End::Exited(0));
        let call = if use_clone3 { "clone3" } else { "clone" };
        check_eq!(ptid.load(SeqCst), pid as u32, "{call}: the parent's ptid");
        check_eq!(
            ctid.load(SeqCst),
            0xbeef,
            "{call}: the parent's ctid changed (set or cleared in the child's memory only)"
        );
        check_eq!(
            shared.word(0).load(SeqCst),
            0xdead,
            "{call}: the child's ptid"
        );
        check_eq!(shared.word(1).load(SeqCst), pid, "{call}: the child's ctid");
        check_eq!(shared.word(2).load(SeqCst), pid);
    }
    Ok(())
}

// ---- clone3 ----

pub fn clone3_sizes() -> TestResult {
    let page = check_ok!(Mapping::rw(1));
    let args_at = page.addr;
    let args = CloneArgs {
        exit_signal: sys::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: the (zeroed) page is ours, writable and large enough.
    unsafe { (args_at as *mut CloneArgs).write(args) };
    // The smallest size, the full structure, and a whole page of zeroes after it all work.
    for size in [sys::CLONE_ARGS_SIZE_VER0, 80, 88, PAGE_SIZE] {
        // SAFETY: no CLONE_VM: the child runs on a copy of the memory, as after fork.
        let pid = check_ok!(unsafe { sys::clone3(args_at, size) });
        if pid == 0 {
            sys::exit_group(5);
        }
        let mut child = Child::of(pid);
        check_eq!(check_ok!(child.end()), End::Exited(5), "size {size}");
    }
    for size in [0, 8, sys::CLONE_ARGS_SIZE_VER0 - 1] {
        check_err!(try_clone3(args_at, size), Errno::EINVAL);
    }
    check_err!(try_clone3(args_at, PAGE_SIZE + 1), Errno::E2BIG);
    // Bytes this kernel does not know must be zero.
    // SAFETY: inside the page.
    unsafe { *((args_at + 4000) as *mut u8) = 1 };
    check_err!(try_clone3(args_at, PAGE_SIZE), Errno::E2BIG);
    check_err!(try_clone3(0, 88), Errno::EFAULT);
    check_err!(try_clone3(KERNEL_ADDR, 88), Errno::EFAULT);
    Ok(())
}

pub fn clone3_einval() -> TestResult {
    let base = CloneArgs {
        exit_signal: sys::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    let stack = check_ok!(Stack::new());
    let set_tid = [0i32; 1];
    let cases: [(&str, CloneArgs); 11] = [
        (
            "an exit signal in flags",
            CloneArgs {
                flags: sys::SIGCHLD as u64,
                exit_signal: 0,
                ..base
            },
        ),
        (
            "CLONE_DETACHED",
            CloneArgs {
                flags: sys::CLONE_DETACHED as u64,
                ..base
            },
        ),
        (
            "an unknown flag",
            CloneArgs {
                flags: 1 << 40,
                ..base
            },
        ),
        (
            "exit signal 65",
            CloneArgs {
                exit_signal: 65,
                ..base
            },
        ),
        (
            "an exit signal with high bits",
            CloneArgs {
                exit_signal: (1 << 32) | sys::SIGCHLD as u64,
                ..base
            },
        ),
        (
            "a stack without a size",
            CloneArgs {
                stack: stack.0.addr as u64,
                ..base
            },
        ),
        (
            "a stack size without a stack",
            CloneArgs {
                stack_size: 4096,
                ..base
            },
        ),
        (
            "set_tid_size without set_tid",
            CloneArgs {
                set_tid_size: 1,
                ..base
            },
        ),
        (
            "set_tid without set_tid_size",
            CloneArgs {
                set_tid: set_tid.as_ptr() as u64,
                ..base
            },
        ),
        (
            "CLONE_THREAD with an exit signal",
            CloneArgs {
                flags: (sys::CLONE_VM | sys::CLONE_SIGHAND | sys::CLONE_THREAD) as u64,
                ..base
            },
        ),
        (
            "CLONE_SIGHAND without CLONE_VM",
            CloneArgs {
                flags: sys::CLONE_SIGHAND as u64,
                ..base
            },
        ),
    ];
    let size = core::mem::size_of::<CloneArgs>();
    for (what, args) in cases {
        let r = try_clone3(&raw const args as usize, size);
        check_eq!(r, Err(Errno::EINVAL), "clone3 with {what}");
    }
    Ok(())
}

extern "C" fn vm_child_write_exit(arg: usize) -> ! {
    // SAFETY: as vm_child_write_sleep.
    let shared = unsafe { &*(arg as *const VmChild) };
    sys::sleep_ns(20_000_000);
    shared.word.store(3, SeqCst);
    sys::exit_group(8)
}

pub fn clone3_vfork_on_a_stack() -> TestResult {
    let stack = check_ok!(Stack::new());
    let shared = VmChild::default();
    let mut args = CloneArgs {
        flags: (sys::CLONE_VM | sys::CLONE_VFORK) as u64,
        exit_signal: sys::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: as in clone_vm_vfork_shares_memory.
    let pid = check_ok!(unsafe {
        urt::thread::clone3_on_stack(
            &mut args,
            stack.0.addr,
            stack.top(),
            vm_child_write_exit,
            &raw const shared as usize,
        )
    });
    let mut child = Child::of(pid);
    check_eq!(
        shared.word.load(SeqCst),
        3,
        "the clone3 vfork child's write"
    );
    check_eq!(check_ok!(child.end()), End::Exited(8));
    Ok(())
}
