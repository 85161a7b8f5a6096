//! Restartable sequences (`rseq`): registration and its errors, the CPU fields the kernel keeps
//! current (after `sched_setaffinity` moves the thread, in a fork's child), and critical
//! sections that a signal or a preemption aborts, or that commit.
//!
//! Each test registers in a thread or a child of its own and unregisters before the area goes
//! away ([`Registration`]): a registration lives as long as its thread. The critical sections
//! that only an abort ends run in a child, so that a kernel that never aborts them fails the
//! test instead of hanging the suite.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use urt::ktap::TestResult;
use urt::signal::{self as sig, SA_SIGINFO, SigInfo, UContext, reg};
use urt::sys::{self, Errno};
use urt::{check, check_eq, check_err, check_ok, diag};

use crate::process::{Child, End, Shared};
use crate::util::KERNEL_ADDR;

/// The signature before every abort handler (the one glibc uses on x86_64).
const SIG: u32 = 0x5305_3053;
const FLAG_UNREGISTER: usize = 1;
/// `cpu_id` of an area that is not registered.
const CPU_ID_UNINITIALIZED: u32 = u32::MAX;
/// `AT_RSEQ_FEATURE_SIZE`: the kernel keeps `node_id` and `mm_cid` when it says 28 or more.
const AT_RSEQ_FEATURE_SIZE: usize = 27;
const AT_RSEQ_ALIGN: usize = 28;

/// `struct rseq`, the area a thread registers.
#[repr(C, align(32))]
struct Area {
    cpu_id_start: AtomicU32,
    cpu_id: AtomicU32,
    rseq_cs: AtomicU64,
    flags: AtomicU32,
    node_id: AtomicU32,
    mm_cid: AtomicU32,
    _padding: u32,
}

impl Area {
    /// A fresh area, as a libc prepares one: `cpu_id` uninitialized, the rest 0.
    fn new() -> Box<Self> {
        Box::new(Self {
            cpu_id_start: AtomicU32::new(0),
            cpu_id: AtomicU32::new(CPU_ID_UNINITIALIZED),
            rseq_cs: AtomicU64::new(0),
            flags: AtomicU32::new(0),
            node_id: AtomicU32::new(0),
            mm_cid: AtomicU32::new(0),
            _padding: 0,
        })
    }

    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// (`cpu_id_start`, `cpu_id`, `node_id`, `mm_cid`).
    fn fields(&self) -> (u32, u32, u32, u32) {
        (
            self.cpu_id_start.load(SeqCst),
            self.cpu_id.load(SeqCst),
            self.node_id.load(SeqCst),
            self.mm_cid.load(SeqCst),
        )
    }
}

/// The calling thread's registration of an area, ended on drop.
struct Registration<'a>(&'a Area);

impl<'a> Registration<'a> {
    fn new(area: &'a Area) -> Result<Self, Errno> {
        sys::rseq(area.addr(), 32, 0, SIG as usize)?;
        Ok(Self(area))
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let _ = sys::rseq(self.0.addr(), 32, FLAG_UNREGISTER, SIG as usize);
    }
}

/// The area's fields and the CPU getcpu reports, read while the thread stayed on that CPU.
fn fields_on_one_cpu(area: &Area) -> ((u32, u32, u32, u32), Option<u32>) {
    loop {
        let before = sys::current_cpu();
        let fields = area.fields();
        if sys::current_cpu() == before {
            return (fields, before);
        }
    }
}

/// Sets the calling thread's CPU mask (one word).
fn set_affinity(mask: u64) -> Result<usize, Errno> {
    sys::sched_setaffinity(0, 8, &raw const mask as usize)
}

/// The calling thread's CPU mask (the first word).
fn affinity() -> Result<u64, Errno> {
    let mut mask = [0u64; 16];
    sys::sched_getaffinity(0, 128, mask.as_mut_ptr() as usize)?;
    Ok(mask[0])
}

/// Waits up to `ms` milliseconds for `child` to end; `None` if it still runs (dropping the
/// child kills it).
fn end_within(child: &mut Child, ms: u64) -> Result<Option<End>, Errno> {
    let start = sys::monotonic_ns();
    while crate::util::ms_since(start) < ms {
        let (pid, status) = crate::process::wait(child.pid, sys::WNOHANG)?;
        if pid == child.pid {
            child.collected = true;
            return Ok(Some(End::of(status)));
        }
        sys::sleep_ns(10_000_000);
    }
    Ok(None)
}

/// Registration's errors as Linux has them: bad length, alignment, flags or address first;
/// once registered, `EBUSY` for the same area and signature, `EINVAL` for another area or
/// length, `EPERM` for another signature; unregistration checks the same and puts `cpu_id`
/// back to "uninitialized". Runs in a thread of its own.
pub fn registration_errors() -> TestResult {
    urt::thread::spawn(registration_errors_in_a_thread).join()
}

fn registration_errors_in_a_thread() -> TestResult {
    let area = Area::new();
    let other = Area::new();
    let (a, sig) = (area.addr(), SIG as usize);
    check_err!(sys::rseq(a, 32, FLAG_UNREGISTER, sig), Errno::EINVAL);
    check_err!(sys::rseq(a, 16, 0, sig), Errno::EINVAL);
    check_err!(sys::rseq(a, 0, 0, sig), Errno::EINVAL);
    check_err!(sys::rseq(a + 16, 32, 0, sig), Errno::EINVAL);
    check_err!(sys::rseq(a, 32, 2, sig), Errno::EINVAL);
    check_err!(sys::rseq(KERNEL_ADDR, 32, 0, sig), Errno::EFAULT);
    check_eq!(area.cpu_id.load(SeqCst), CPU_ID_UNINITIALIZED);
    {
        let _registered = check_ok!(Registration::new(&area));
        let ((start, cpu, node, _), at) = fields_on_one_cpu(&area);
        check_eq!(Some(cpu), at, "cpu_id after registering");
        check_eq!(start, cpu, "cpu_id_start");
        check_eq!(node, 0, "node_id");
        check_err!(sys::rseq(a, 32, 0, sig), Errno::EBUSY);
        check_err!(sys::rseq(a, 32, 0, sig + 1), Errno::EPERM);
        check_err!(sys::rseq(other.addr(), 32, 0, sig), Errno::EINVAL);
        check_err!(sys::rseq(a, 64, 0, sig), Errno::EINVAL);
        check_err!(sys::rseq(a, 32, FLAG_UNREGISTER | 2, sig), Errno::EINVAL);
        check_err!(sys::rseq(a, 32, FLAG_UNREGISTER, sig + 1), Errno::EPERM);
        check_err!(
            sys::rseq(other.addr(), 32, FLAG_UNREGISTER, sig),
            Errno::EINVAL
        );
        check_err!(sys::rseq(a, 64, FLAG_UNREGISTER, sig), Errno::EINVAL);
        check_eq!(check_ok!(sys::rseq(a, 32, FLAG_UNREGISTER, sig)), 0);
        check_eq!(area.cpu_id.load(SeqCst), CPU_ID_UNINITIALIZED);
        check_eq!(area.cpu_id_start.load(SeqCst), 0);
        // Registered again (the guard unregisters this one).
        check_eq!(check_ok!(sys::rseq(a, 32, 0, sig)), 0);
        let ((_, cpu, _, _), at) = fields_on_one_cpu(&area);
        check_eq!(Some(cpu), at, "cpu_id after registering again");
    }
    check_err!(sys::rseq(a, 32, FLAG_UNREGISTER, sig), Errno::EINVAL);
    Ok(())
}

/// Pinned to each CPU in turn (up to four), the thread finds that CPU in `cpu_id_start` and
/// `cpu_id`, as getcpu reports it; `node_id` is 0 and `mm_cid` below the number of CPUs. Where
/// the kernel announces `mm_cid` (`AT_RSEQ_FEATURE_SIZE`), two threads running at once on two
/// CPUs hold different ones. Runs in a thread of its own.
pub fn cpu_id_follows_affinity() -> TestResult {
    if let Some(size) = urt::start::auxv(AT_RSEQ_FEATURE_SIZE) {
        check!(size >= 28, "AT_RSEQ_FEATURE_SIZE {size}");
        check_eq!(urt::start::auxv(AT_RSEQ_ALIGN), Some(32), "AT_RSEQ_ALIGN");
    }
    urt::thread::spawn(cpu_id_follows_affinity_in_a_thread).join()?;
    if urt::start::auxv(AT_RSEQ_FEATURE_SIZE).is_some_and(|size| size >= 28) {
        concurrency_ids_differ()?;
    }
    Ok(())
}

fn cpu_id_follows_affinity_in_a_thread() -> TestResult {
    let all = check_ok!(affinity());
    let cpus = all.count_ones();
    let area = Area::new();
    let _registered = check_ok!(Registration::new(&area));
    for cpu in (0..64u32).filter(|&c| all & 1 << c != 0).take(4) {
        check_ok!(set_affinity(1 << cpu));
        check_ok!(sys::sched_yield());
        let (start, now, node, cid) = area.fields();
        check_eq!(
            sys::current_cpu(),
            Some(cpu),
            "getcpu when pinned to CPU {cpu}"
        );
        check_eq!(now, cpu, "cpu_id when pinned to CPU {cpu}");
        check_eq!(start, cpu, "cpu_id_start when pinned to CPU {cpu}");
        check_eq!(node, 0, "node_id");
        check!(cid < cpus, "mm_cid {cid} of {cpus} CPUs");
    }
    check_ok!(set_affinity(all));
    Ok(())
}

/// Two threads, each pinned to a CPU of its own, read their `mm_cid` while both run.
fn concurrency_ids_differ() -> TestResult {
    let all = check_ok!(affinity());
    if all.count_ones() < 2 {
        return Ok(());
    }
    let first = all.trailing_zeros();
    let second = (all & !(1 << first)).trailing_zeros();
    let arrived = Arc::new(AtomicUsize::new(0));
    let spawn_on = |cpu: u32| {
        let arrived = arrived.clone();
        urt::thread::spawn(move || -> Result<u32, Errno> {
            set_affinity(1 << cpu)?;
            let area = Area::new();
            let _registered = Registration::new(&area)?;
            sys::sched_yield()?;
            arrived.fetch_add(1, SeqCst);
            let start = sys::monotonic_ns();
            // Both run now (or one gave up waiting): each reads its own id.
            while arrived.load(SeqCst) < 2 && crate::util::ms_since(start) < 5_000 {
                core::hint::spin_loop();
            }
            let cid = area.mm_cid.load(SeqCst);
            arrived.fetch_add(1, SeqCst);
            while arrived.load(SeqCst) < 4 && crate::util::ms_since(start) < 5_000 {
                core::hint::spin_loop();
            }
            Ok(cid)
        })
    };
    let (a, b) = (spawn_on(first), spawn_on(second));
    let (a, b) = (check_ok!(a.join()), check_ok!(b.join()));
    check!(a != b, "mm_cid {a} and {b} of two threads running at once");
    diag!("mm_cid {a} on CPU {first}, {b} on CPU {second}");
    Ok(())
}

/// Registering and unregistering again and again leaves the thread one concurrency id, still
/// below the number of CPUs: an unregistration gives its id back (a regression test: each
/// registration once took a new id and the old one was lost). Runs in a thread of its own.
pub fn reregistering_keeps_one_concurrency_id() -> TestResult {
    if !urt::start::auxv(AT_RSEQ_FEATURE_SIZE).is_some_and(|size| size >= 28) {
        return Ok(());
    }
    urt::thread::spawn(|| -> TestResult {
        let cpus = check_ok!(affinity()).count_ones();
        let area = Area::new();
        for _ in 0..=64 {
            drop(check_ok!(Registration::new(&area)));
        }
        let _registered = check_ok!(Registration::new(&area));
        let cid = area.mm_cid.load(SeqCst);
        check!(
            cid < cpus,
            "mm_cid {cid} of {cpus} CPUs after 66 registrations"
        );
        Ok(())
    })
    .join()
}

/// A fork's child keeps its parent's registration (registering the same area again is
/// `EBUSY`) with its own CPU fields; a new thread starts without one. Runs in a thread of its
/// own.
pub fn fork_inherits_threads_do_not() -> TestResult {
    urt::thread::spawn(fork_inherits_in_a_thread).join()
}

fn fork_inherits_in_a_thread() -> TestResult {
    let area = Area::new();
    let _registered = check_ok!(Registration::new(&area));
    let a = area.addr();
    let mut child = check_ok!(Child::fork(|| {
        if sys::rseq(a, 32, 0, SIG as usize) != Err(Errno::EBUSY) {
            return 1;
        }
        // SAFETY: the child's copy of the parent's area, at the same address.
        let area = unsafe { &*(a as *const Area) };
        let ((_, cpu, _, _), at) = fields_on_one_cpu(area);
        if Some(cpu) != at {
            return 2;
        }
        if sys::rseq(a, 32, FLAG_UNREGISTER, SIG as usize).is_err() {
            return 3;
        }
        0
    }));
    check_eq!(
        check_ok!(child.end()),
        End::Exited(0),
        "the child's registration"
    );
    let in_thread = urt::thread::spawn(move || {
        let own = Area::new();
        let unregister_other = sys::rseq(a, 32, FLAG_UNREGISTER, SIG as usize);
        let register = sys::rseq(own.addr(), 32, 0, SIG as usize);
        let unregister = sys::rseq(own.addr(), 32, FLAG_UNREGISTER, SIG as usize);
        (unregister_other, register, unregister)
    })
    .join();
    check_eq!(
        in_thread,
        (Err(Errno::EINVAL), Ok(0), Ok(0)),
        "a new thread"
    );
    Ok(())
}

/// Enters a critical section that loops until the kernel aborts it, after setting `entered`
/// to 1 from inside it; returns the abort handler's address, where it resumed.
fn loop_until_aborted(area: &Area, entered: &AtomicUsize) -> usize {
    let abort_at: usize;
    // SAFETY: the section writes only `rseq_cs` of the caller's registered area and
    // `entered`; the descriptor lives in the program's data.
    unsafe {
        asm!(
            "lea {tmp}, [rip + 25f]",
            "mov qword ptr [{area} + 8], {tmp}",
            "22:",
            "mov qword ptr [{entered}], 1",
            "23:",
            "jmp 23b",
            "24:",
            ".long {sig}",
            "26:",
            "lea {abort_at}, [rip + 26b]",
            ".pushsection .data.rseq_cs, \"aw\"",
            ".balign 32",
            "25:",
            ".long 0, 0",
            ".quad 22b, 24b - 22b, 26b",
            ".popsection",
            area = in(reg) area.addr(),
            entered = in(reg) entered.as_ptr(),
            tmp = out(reg) _,
            abort_at = out(reg) abort_at,
            sig = const SIG,
            options(nostack),
        );
    }
    abort_at
}

/// Adds 1 to `slots[cpu]`, where `cpu` is the CPU the thread runs on, as a critical section
/// that commits with its store: true if it committed, false if it aborted (moved or
/// preempted meanwhile).
fn increment_on_this_cpu(area: &Area, slots: &[AtomicU64; 64]) -> bool {
    let cpu = area.cpu_id_start.load(SeqCst);
    let slot = slots[cpu as usize % 64].as_ptr();
    let committed: usize;
    // SAFETY: the section writes only `rseq_cs` of the caller's registered area and the
    // slot, a u64 in `slots`; the descriptor lives in the program's data.
    unsafe {
        asm!(
            "lea {tmp}, [rip + 25f]",
            "mov qword ptr [{area} + 8], {tmp}",
            "22:",
            "cmp dword ptr [{area} + 4], {cpu:e}",
            "jne 26f",
            "mov {tmp}, qword ptr [{slot}]",
            // QEMU's TCG takes interrupts only between the blocks it translates, which end
            // at jumps: this one lets a preemption fall between the load and the store.
            "jmp 28f",
            "28:",
            "add {tmp}, 1",
            "mov qword ptr [{slot}], {tmp}",
            "24:",
            "mov {committed:e}, 1",
            "jmp 27f",
            ".long {sig}",
            "26:",
            "xor {committed:e}, {committed:e}",
            "27:",
            ".pushsection .data.rseq_cs, \"aw\"",
            ".balign 32",
            "25:",
            ".long 0, 0",
            ".quad 22b, 24b - 22b, 26b",
            ".popsection",
            area = in(reg) area.addr(),
            cpu = in(reg) cpu,
            slot = in(reg) slot,
            tmp = out(reg) _,
            committed = out(reg) committed,
            sig = const SIG,
            options(nostack),
        );
    }
    committed != 0
}

static HANDLED: AtomicUsize = AtomicUsize::new(0);
static HANDLER_SAW_RIP: AtomicUsize = AtomicUsize::new(0);

extern "C" fn note_rip(_: i32, _: *mut SigInfo, uc: *mut UContext) {
    // SAFETY: the kernel passes the handler its ucontext.
    let rip = unsafe { (*uc).mcontext.gregs[reg::RIP] };
    HANDLER_SAW_RIP.store(rip as usize, SeqCst);
    HANDLED.fetch_add(1, SeqCst);
}

/// A signal that interrupts a critical section aborts it: the handler's frame holds the abort
/// handler's address, the thread resumes there after the handler, and `rseq_cs` is cleared.
/// A section that committed leaves `rseq_cs` set until the next signal clears it. A preemption
/// aborts the looping section too (on a busy host), and a signal may land between two
/// sections: the child enters the section again until a signal's frame shows the abort
/// address, and the parent signals it until it exits.
pub fn signal_aborts_critical_section() -> TestResult {
    let shared = check_ok!(Shared::new());
    let entered = shared.word(0);
    let mut child = check_ok!(Child::fork(|| {
        let area = Area::new();
        let Ok(_registered) = Registration::new(&area) else {
            return 10;
        };
        if sig::set_handler(sig::SIGUSR1, note_rip, SA_SIGINFO, 0).is_err() {
            return 11;
        }
        let slots: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
        while !increment_on_this_cpu(&area, &slots) {}
        if area.rseq_cs.load(SeqCst) == 0 {
            return 12;
        }
        let _ = sys::kill(sys::getpid(), sig::SIGUSR1);
        if HANDLED.load(SeqCst) != 1 || area.rseq_cs.load(SeqCst) != 0 {
            return 13;
        }
        loop {
            let handled_before = HANDLED.load(SeqCst);
            let abort_at = loop_until_aborted(&area, entered);
            if HANDLED.load(SeqCst) != handled_before && HANDLER_SAW_RIP.load(SeqCst) == abort_at {
                break;
            }
        }
        if area.rseq_cs.load(SeqCst) != 0 {
            return 16;
        }
        0
    }));
    let start = sys::monotonic_ns();
    while entered.load(SeqCst) == 0 && crate::util::ms_since(start) < 20_000 {
        sys::sleep_ns(5_000_000);
    }
    check_eq!(
        entered.load(SeqCst),
        1,
        "the child entered its critical section"
    );
    let start = sys::monotonic_ns();
    let mut end = None;
    while end.is_none() && crate::util::ms_since(start) < 20_000 {
        check_ok!(sys::kill(child.pid, sig::SIGUSR1));
        end = check_ok!(end_within(&mut child, 50));
    }
    check!(end.is_some(), "no signal aborted the critical section");
    check_eq!(end, Some(End::Exited(0)));
    Ok(())
}

/// A preemption aborts a critical section: the thread loops in one, pinned to a CPU with
/// another thread that keeps that CPU busy, until the kernel moves it to its abort handler.
pub fn preemption_aborts_critical_section() -> TestResult {
    let mut child = check_ok!(Child::fork(|| {
        let Some(cpu) = sys::current_cpu() else {
            return 10;
        };
        if set_affinity(1 << cpu).is_err() {
            return 11;
        }
        let done = Arc::new(AtomicBool::new(false));
        let busy = {
            let done = done.clone();
            urt::thread::spawn(move || {
                let start = sys::monotonic_ns();
                while !done.load(SeqCst) && crate::util::ms_since(start) < 30_000 {
                    core::hint::spin_loop();
                }
            })
        };
        let area = Area::new();
        let Ok(_registered) = Registration::new(&area) else {
            return 12;
        };
        let entered = AtomicUsize::new(0);
        loop_until_aborted(&area, &entered);
        done.store(true, SeqCst);
        busy.join();
        if entered.load(SeqCst) != 1 || area.rseq_cs.load(SeqCst) != 0 {
            return 13;
        }
        0
    }));
    let end = check_ok!(end_within(&mut child, 40_000));
    check!(end.is_some(), "no preemption aborted the critical section");
    check_eq!(end, Some(End::Exited(0)));
    Ok(())
}

/// Per-CPU counters updated only by critical sections that commit come out exact, with twice
/// as many threads as CPUs preempting and moving each other for half a second.
pub fn per_cpu_counters_are_exact() -> TestResult {
    let threads = 2 * sys::cpu_count().max(1);
    let slots: Arc<[AtomicU64; 64]> = Arc::new([const { AtomicU64::new(0) }; 64]);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let slots = slots.clone();
            urt::thread::spawn(move || -> Result<(u64, u64), Errno> {
                let area = Area::new();
                let _registered = Registration::new(&area)?;
                let (mut committed, mut aborted) = (0u64, 0u64);
                let start = sys::monotonic_ns();
                while crate::util::ms_since(start) < 500 {
                    for _ in 0..1024 {
                        if increment_on_this_cpu(&area, &slots) {
                            committed += 1;
                        } else {
                            aborted += 1;
                        }
                    }
                }
                Ok((committed, aborted))
            })
        })
        .collect();
    let (mut committed, mut aborted) = (0, 0);
    for worker in workers {
        let (c, a) = check_ok!(worker.join());
        committed += c;
        aborted += a;
    }
    let counted: u64 = slots.iter().map(|s| s.load(SeqCst)).sum();
    check_eq!(counted, committed, "increments counted ({aborted} aborted)");
    diag!("{threads} threads: {committed} increments committed, {aborted} aborted");
    Ok(())
}

/// A descriptor whose abort handler lacks the registered signature kills with SIGSEGV the
/// next time the kernel looks at it (here: on the way into a signal handler), even when the
/// thread is outside the section.
pub fn bad_signature_kills() -> TestResult {
    #[repr(C, align(32))]
    struct Descriptor([u64; 4]);
    let mut child = check_ok!(Child::fork(|| {
        let area = Area::new();
        let Ok(_registered) = Registration::new(&area) else {
            return 10;
        };
        if sig::set_handler(sig::SIGUSR1, note_rip, SA_SIGINFO, 0).is_err() {
            return 11;
        }
        // Code, not preceded by the signature.
        let abort_ip = bad_signature_kills as fn() -> TestResult as usize as u64 + 16;
        let descriptor = Descriptor([0, 0x1000, 0x10, abort_ip]);
        area.rseq_cs
            .store(&raw const descriptor as usize as u64, SeqCst);
        let _ = sys::kill(sys::getpid(), sig::SIGUSR1);
        area.rseq_cs.store(0, SeqCst);
        12
    }));
    let end = check_ok!(end_within(&mut child, 20_000));
    check_eq!(end, Some(End::Killed(sig::SIGSEGV as i32)));
    Ok(())
}
