//! In-kernel tests that run the user programs of the ramdisk (user/): the user-space test
//! suite (its KTAP nests under the kernel's), the demo, deliberate faults, a C program built
//! with musl — and check that frames, VMAs and page tables go back once processes are gone.

use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use super::Process;
use super::exec::{SpawnOptions, spawn};
use crate::arch::percpu;
use crate::fs::FileKind;
use crate::fs::dentry::{self, Follow};
use crate::ktest;
use crate::mm::{frame, heap, kernel_tables, page_refs, slab};

/// Frames in use outside the kernel's caches and tables: what processes hold.
fn frames_in_use() -> usize {
    // Listing the caches allocates (a new slab, if its size class had none), so it comes before
    // the frame count: the figures below must all describe one moment.
    let caches = slab::caches();
    let stats = frame::stats();
    let slab_pages: usize = caches.iter().map(|c| c.info().pages).sum();
    stats.total_frames
        - stats.free_frames
        - heap::usage().0 / 4096
        - slab_pages
        - crate::sched::task::pooled_stack_frames()
        - kernel_tables::kernel_table_frames()
}

fn vmas_active() -> usize {
    crate::mm::vma::VMA_CACHE.raw().info().active_objects
}

/// The most caches the slab registry lists.
const CACHES: usize = 32;

/// Objects handed out by each slab cache (the kernel heap's size classes included), by name.
/// Allocates nothing beyond the registry's list, which exists at every count alike.
fn slab_objects() -> [(&'static str, usize); CACHES] {
    let mut counts = [("", 0); CACHES];
    for (count, cache) in counts.iter_mut().zip(slab::caches()) {
        let info = cache.info();
        *count = (info.name, info.active_objects);
    }
    counts
}

/// Lets deferred frees finish: RCU callbacks (a VMA's file reference goes in one, and may hold
/// the last reference to a dentry), cached dentries nothing holds, per-CPU slab magazines,
/// empty slabs.
fn settle() {
    crate::sync::rcu::rcu_barrier();
    dentry::shrink_cache();
    crate::sync::rcu::rcu_barrier();
    for cache in slab::caches() {
        cache.drain_cpu_caches();
        cache.shrink();
    }
    crate::sync::rcu::rcu_barrier();
}

/// Whether a baseline was taken in this boot (see [`Baseline::take`]).
static WARMED_UP: AtomicBool = AtomicBool::new(false);

/// Frame, VMA and slab object counts, frames held more than once, and the page caches' pages
/// and files, before processes run, to compare with afterwards. The test's own allocations
/// must be gone by the check (files the processes made, removed).
pub(crate) struct Baseline {
    frames: usize,
    vmas: usize,
    slab_objects: [(&'static str, usize); CACHES],
    shared_frames: usize,
    page_cache: (usize, usize),
}

impl Baseline {
    /// The first baseline of a boot first runs a small fork torture (threads, sleeps, futexes,
    /// fork, wait) and makes and removes a file in /tmp: containers the kernel keeps for good
    /// (the process registry, the pool of kernel stacks, the timer list, the first node of
    /// /tmp's entry map and of its dentry's cache) take their memory when first used, which
    /// must not count against a test. (Later growth moves a container's memory to a larger
    /// size class, which the total of slab objects does not see.)
    pub(crate) fn take() -> Self {
        if !WARMED_UP.swap(true, Ordering::Relaxed) {
            run_fork_torture(&["snapshot", "forks=2", "writers=2"], 120);
            let tmp = dentry::resolve(dentry::root(), "/tmp", Follow::Yes).expect("/tmp");
            let name = "baseline-warm-up";
            tmp.create(name, FileKind::Regular, 0o600, None)
                .expect("a file in /tmp");
            tmp.unlink(name, false).expect("remove it");
        }
        settle();
        Self {
            frames: frames_in_use(),
            vmas: vmas_active(),
            slab_objects: slab_objects(),
            shared_frames: page_refs::shared_frames(),
            page_cache: crate::fs::pagecache::statistics(),
        }
    }

    pub(crate) fn check(&self) {
        settle();
        assert!(
            crate::proc::live_processes().is_empty(),
            "a process is still alive"
        );
        assert_eq!(vmas_active(), self.vmas, "VMAs leaked");
        // In total: a vector that grew moves from one size class to another.
        let objects = slab_objects();
        let total = |counts: &[(&str, usize)]| counts.iter().map(|&(_, n)| n).sum::<usize>();
        if total(&objects) != total(&self.slab_objects) {
            let mut changed = String::new();
            for (before, after) in self.slab_objects.iter().zip(&objects) {
                if before != after {
                    changed += &alloc::format!(" {} {}->{}", after.0, before.1, after.1);
                }
            }
            panic!(
                "slab objects: {} before, {} after;{changed}",
                total(&self.slab_objects),
                total(&objects)
            );
        }
        assert_eq!(
            page_refs::shared_frames(),
            self.shared_frames,
            "frames still counted as held more than once"
        );
        assert_eq!(
            crate::fs::pagecache::statistics(),
            self.page_cache,
            "page-cache pages and files (pages, files) left behind"
        );
        assert_eq!(
            frames_in_use(),
            self.frames,
            "frames leaked (pages or page tables)"
        );
    }
}

impl Baseline {
    /// The baseline beside the figures of now, in one line (`what before->now`), for reports;
    /// the caller has settled the kernel ([`Baseline::check`] does).
    pub(crate) fn compared_with_now(&self) -> String {
        let total = |counts: &[(&str, usize)]| counts.iter().map(|&(_, n)| n).sum::<usize>();
        let (pages, files) = crate::fs::pagecache::statistics();
        alloc::format!(
            "frames in use {}->{}, VMAs {}->{}, slab objects {}->{}, frames held more than once {}->{}, page-cache pages {}->{pages} and files {}->{files}",
            self.frames,
            frames_in_use(),
            self.vmas,
            vmas_active(),
            total(&self.slab_objects),
            total(&slab_objects()),
            self.shared_frames,
            page_refs::shared_frames(),
            self.page_cache.0,
            self.page_cache.1,
        )
    }
}

/// Runs `path` with `args` and waits (at most `timeout_s`) for it to end.
pub(super) fn run(path: &str, args: &[&[u8]], capture: bool, timeout_s: u64) -> Arc<Process> {
    let process = spawn(
        path,
        args,
        SpawnOptions {
            init: false,
            capture_output: capture,
            hide_output: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        process.exited.wait_timeout(timeout_s * 1_000_000_000),
        "{path} still runs after {timeout_s} s"
    );
    process
}

pub(super) fn output(process: &Process) -> String {
    let bytes = process.captured_output.as_ref().expect("captured").lock();
    String::from_utf8_lossy(&bytes).into_owned()
}

ktest! {
    timeout_ms = 900_000;
    /// The user-space suite (user/usertests): every syscall with its errors, threads, futexes,
    /// and the fault-vs-mmap stress on every CPU. Its KTAP is printed nested in ours. Frames and
    /// VMAs return to their baseline once it has exited.
    fn user_test_suite_passes() {
        let baseline = Baseline::take();
        let process = run("/bin/usertests", &[b"/bin/usertests", b"--nested"], false, 800);
        assert_eq!(process.exit_status(), 0, "the user-space suite failed (see its subtests)");
        drop(process);
        baseline.check();
    }
}

ktest! {
    timeout_ms = 300_000;
    /// The benchmark program (cargo xtask bench) runs every scenario at 1 and 2 threads (or
    /// processes), small: each result line counts the faults it made, getrusage saw at least
    /// as many; each fork case times its rounds; and nothing leaks.
    fn benchmark_program_runs_every_scenario() {
        let baseline = Baseline::take();
        {
            const SCENARIOS: [&str; 9] = [
                "a",
                "a-procs",
                "a-file",
                "b",
                "c",
                "d-touched",
                "d-untouched",
                "spin",
                "spin-pause",
            ];
            let scenarios = alloc::format!("scenarios={}", SCENARIOS.join(","));
            let args: [&[u8]; 7] = [
                b"/bin/bench",
                scenarios.as_bytes(),
                b"threads=1,2",
                b"pages=16",
                b"rounds=2",
                b"forks=1x1,3x2",
                b"fork_iterations=2",
            ];
            let process = run("/bin/bench", &args, true, 240);
            let text = output(&process);
            assert_eq!(process.exit_status(), 0, "bench failed:\n{text}");
            let results: alloc::vec::Vec<&str> =
                text.lines().filter(|l| l.starts_with("bench: scenario=")).collect();
            assert_eq!(
                results.len(),
                2 * SCENARIOS.len(),
                "expected a result per scenario and thread count:\n{text}"
            );
            for scenario in SCENARIOS {
                let prefix = alloc::format!("bench: scenario={scenario} ");
                assert_eq!(
                    results.iter().filter(|l| l.starts_with(&prefix)).count(),
                    2,
                    "scenario {scenario} at 1 and 2 threads:\n{text}"
                );
            }
            let field = |line: &str, key: &str| -> u64 {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no number {key}= in {line}"))
            };
            for line in results {
                let threads = field(line, "threads");
                assert_eq!(field(line, "faults"), threads * 32, "{line}");
                assert!(field(line, "minflt") >= threads * 32, "{line}");
                assert!(field(line, "elapsed_ns") > 0, "{line}");
            }
            let forks: alloc::vec::Vec<&str> =
                text.lines().filter(|l| l.starts_with("bench: fork ")).collect();
            assert_eq!(forks.len(), 2, "expected a line per fork case:\n{text}");
            for (line, vmas) in forks.iter().zip([1, 3]) {
                assert_eq!(field(line, "vmas"), vmas, "{line}");
                assert_eq!(field(line, "forks"), 2, "{line}");
                assert!(field(line, "fork_ns") > 0, "{line}");
                assert!(field(line, "elapsed_ns") > field(line, "fork_ns"), "{line}");
            }
        }
        baseline.check();
    }
}

ktest! {
    timeout_ms = 300_000;
    /// The demo: threads faulting on several CPUs next to an mmap/munmap thread.
    fn demo_runs_threads_on_several_cpus() {
        let baseline = Baseline::take();
        {
            let before = crate::mm::vma_lock::totals();
            let process = run("/bin/demo", &[b"/bin/demo"], true, 240);
            let [success, _, _, _, fallback] = core::array::from_fn::<u64, 5, _>(|i| {
                crate::mm::vma_lock::totals()[i] - before[i]
            });
            let text = output(&process);
            assert_eq!(process.exit_status(), 0, "demo failed:\n{text}");
            let used = text
                .lines()
                .find_map(|l| l.split("CPUs used: ").nth(1))
                .unwrap_or_else(|| panic!("no summary in the demo's output:\n{text}"));
            let cpus = used.split(',').count();
            if percpu::online_count() > 1 {
                assert!(cpus > 1, "the demo's threads ran on one CPU only: {used}");
            }
            // Threads faulting in their own VMAs next to an mmap/munmap thread: with the per-VMA
            // lock, at least 99% of faults never touch mmap_lock.
            crate::println!("# faults: {success} under a VMA lock, {fallback} under mmap_lock");
            if crate::mm::vma_lock::is_enabled() {
                assert!(
                    success * 100 >= (success + fallback) * 99,
                    "only {success} of {} faults took the per-VMA path",
                    success + fallback
                );
            } else {
                assert_eq!(success, 0, "faults took the per-VMA path with vma_lock=off");
            }
        }
        baseline.check();
    }
}

ktest! {
    timeout_ms = 300_000;
    /// Each deliberate fault kills its process with Linux's status (128 + signal) and a report
    /// (signals whose handler cannot run included), while an unrelated process runs on to a
    /// clean exit; nothing leaks. (Running out of memory has a test of its own, below.)
    fn faulting_processes_are_killed_and_others_go_on() {
        let baseline = Baseline::take();
        let bystander = spawn("/bin/demo", &[b"/bin/demo"], SpawnOptions { capture_output: true, init: false, hide_output: false })
            .unwrap_or_else(|e| panic!("{e}"));
        let cases: [(&str, u32, &str); 11] = [
            ("null", 139, "segfault at 0 "),
            ("kernel-addr", 139, "segfault at ffff800000000000"),
            ("write-ro", 139, "segfault at"),
            ("prot-none", 139, "segfault at"),
            ("exec-nx", 139, "segfault at"),
            ("ud2", 132, "trap invalid opcode"),
            ("div0", 136, "trap divide error"),
            ("gp", 139, "trap general protection fault"),
            ("no-restorer", 139, "cannot enter the handler of SIGUSR1"),
            ("bad-sigreturn", 139, "bad frame in rt_sigreturn"),
            ("segv-in-handler", 139, "segfault at 0 "),
        ];
        for (mode, status, report) in cases {
            let process = run("/bin/faulter", &[b"/bin/faulter", mode.as_bytes()], true, 60);
            assert_eq!(process.exit_status(), status, "faulter {mode}: wrong exit status");
            let logged = process.fatal_report.lock().clone().unwrap_or_default();
            assert!(logged.contains(report), "faulter {mode}: report {logged:?} lacks {report:?}");
        }
        assert!(bystander.exited.wait_timeout(240_000_000_000), "the bystander never finished");
        assert_eq!(bystander.exit_status(), 0, "the bystander failed:\n{}", output(&bystander));
        drop(bystander);
        baseline.check();
    }
}

ktest! {
    timeout_ms = 600_000;
    /// Memory exhaustion: two processes of two threads each write to fresh pages until only the
    /// kernel's reserve is left. Each is killed whole (SIGKILL, status 137: its other thread
    /// dies with it) as the process with the most resident pages, with one report naming its
    /// pid, name and resident pages, while a small bystander process whose faults also find
    /// memory gone runs its threads to a clean exit (the killer takes a larger process for it),
    /// and the kernel goes on allocating page tables, slab objects and RCU callbacks from the
    /// reserve. Every frame comes back.
    fn memory_exhaustion_kills_the_process_and_others_finish() {
        let baseline = Baseline::take();
        {
            let (_, _, _, out_of_memory_before, _) = crate::mm::fault::totals();
            let options = || SpawnOptions { capture_output: true, init: false, hide_output: false };
            let bystander = spawn("/bin/demo", &[b"/bin/demo"], options())
                .unwrap_or_else(|e| panic!("{e}"));
            let eaters: alloc::vec::Vec<Arc<Process>> = (0..2)
                .map(|_| {
                    spawn("/bin/faulter", &[b"/bin/faulter", b"oom"], options())
                        .unwrap_or_else(|e| panic!("{e}"))
                })
                .collect();
            for eater in &eaters {
                assert!(eater.exited.wait_timeout(400_000_000_000), "faulter oom still runs");
                assert_eq!(eater.exit_status(), 137, "faulter oom: not killed by SIGKILL");
                let report = eater.fatal_report.lock().clone().unwrap_or_default();
                let who = alloc::format!("out of memory: killed process {} (faulter), ", eater.pid);
                assert!(
                    report.starts_with(&who) && report.contains(" pages resident, the most of any process: "),
                    "faulter oom: report {report:?}"
                );
                crate::println!("# {report}");
            }
            let (_, _, _, out_of_memory, _) = crate::mm::fault::totals();
            assert!(out_of_memory > out_of_memory_before, "no fault ran out of memory");
            assert!(bystander.exited.wait_timeout(240_000_000_000), "the bystander never finished");
            assert_eq!(bystander.exit_status(), 0, "the bystander failed:\n{}", output(&bystander));
        }
        baseline.check();
    }
}

ktest! {
    timeout_ms = 120_000;
    /// A C program built elsewhere (musl-gcc -static) prints with printf and starts a pthread.
    fn musl_program_with_a_pthread_runs() {
        if super::ramdisk::find("/bin/hello-musl").is_none() {
            return ktest::skip("no /bin/hello-musl in the ramdisk (musl-gcc was not available)");
        }
        let process = run("/bin/hello-musl", &[b"hello-musl"], true, 60);
        let text = output(&process);
        assert_eq!(process.exit_status(), 0, "hello-musl failed:\n{text}");
        assert!(text.contains("thread"), "no output from the pthread:\n{text}");
    }
}

ktest! {
    timeout_ms = 600_000;
    /// C programs (musl and glibc builds) grow a buffer from 1 MiB to 256 MiB with `realloc`,
    /// which moves large blocks with `mremap`, and find every byte intact at every step; the
    /// frames come back afterwards.
    fn realloc_grows_a_buffer_to_256_mib_with_mremap() {
        let builds = ["/bin/realloc-grow-musl", "/bin/realloc-grow-glibc"];
        if builds.iter().all(|path| super::ramdisk::find(path).is_none()) {
            return ktest::skip("no /bin/realloc-grow-* in the ramdisk (no C compiler was available)");
        }
        let baseline = Baseline::take();
        for path in builds {
            if super::ramdisk::find(path).is_none() {
                continue;
            }
            let name = path.trim_start_matches("/bin/");
            let process = run(path, &[name.as_bytes()], true, 300);
            let text = output(&process);
            assert_eq!(process.exit_status(), 0, "{name} failed:\n{text}");
            assert!(text.contains("data intact"), "{name} said:\n{text}");
        }
        baseline.check();
    }
}

ktest! {
    timeout_ms = 120_000;
    /// A missing program and a file that is no ELF are refused with a clear message.
    fn bad_executables_are_refused() {
        let missing = spawn("/bin/no-such-program", &[b"x"], SpawnOptions::default()).err();
        assert!(missing.is_some_and(|e| e.contains("no such file")));
        let not_elf = spawn("/etc/cmdline", &[b"x"], SpawnOptions::default()).err();
        assert!(not_elf.is_some_and(|e| e.contains("cannot run /etc/cmdline")), "accepted /etc/cmdline");
    }
}

/// Runs `/bin/forktorture` with `args` (at most `timeout_s`), fails the test with its output
/// unless it exits 0, and prints its summary line.
fn run_fork_torture(args: &[&str], timeout_s: u64) {
    let mut argv: alloc::vec::Vec<&[u8]> = alloc::vec![b"/bin/forktorture"];
    argv.extend(args.iter().map(|a| a.as_bytes()));
    let process = run("/bin/forktorture", &argv, true, timeout_s);
    let text = output(&process);
    assert_eq!(
        process.exit_status(),
        0,
        "forktorture {} failed:\n{text}",
        args.join(" ")
    );
    for line in text.lines().filter(|l| l.starts_with("forktorture: ")) {
        crate::println!("# {line}");
    }
}

/// Runs `/bin/forktorture` with `args` and checks that every frame, VMA, slab object and
/// sharing count it used is back.
fn fork_torture(args: &[&str], timeout_s: u64) {
    let baseline = Baseline::take();
    run_fork_torture(args, timeout_s);
    baseline.check();
}

ktest! {
    timeout_ms = 600_000;
    /// Writer threads keep writing rising patterns into their private pages (copy-on-write
    /// shared with the children still alive) and into shared pages while the main thread forks
    /// 60 children (120 under `ktest.stress`), some of which fork grandchildren beside a writer
    /// of their own: each child sees exactly one instant of each writer, between what the
    /// forker read before and after the fork, that no longer changes; shared pages keep
    /// changing both ways; neither side's writes reach the other's private pages (see
    /// user/forktorture/src/snapshot.rs). Nothing leaks.
    fn forked_children_see_one_instant_of_their_writing_parent() {
        let forks = alloc::format!("forks={}", 60 * ktest::stress_factor().min(2));
        fork_torture(&["snapshot", &forks], 500);
    }
}

ktest! {
    timeout_ms = 300_000;
    /// A process of 10 000 single-page VMAs of alternating protections forks four times:
    /// every page is copied, each side's later writes stay its own, and all 20 000 VMAs and
    /// their pages and tables go back.
    fn fork_copies_ten_thousand_vmas() {
        fork_torture(&["vmas", "vmas=10000", "forks=4"], 240);
    }
}

ktest! {
    timeout_ms = 300_000;
    /// Forks beside a thread that maps, writes, reprotects and unmaps a region of its own: each
    /// child finds every slot of that region in one state and the stable region intact.
    fn fork_beside_munmap_and_mprotect_sees_one_state() {
        let forks = alloc::format!("forks={}", 40 * ktest::stress_factor());
        fork_torture(&["churn", &forks], 240);
    }
}

ktest! {
    timeout_ms = 600_000;
    /// 1 000 children forked one after another (in every profile), each reading the parent's
    /// pages, writing two of them (copies on write, as the parent's own write beside it) and a
    /// fresh page, and collected with wait4: afterwards frames, slab objects, VMAs and the
    /// frames counted as shared are all at their baseline.
    fn a_thousand_forked_children_leak_nothing() {
        fork_torture(&["leak", "children=1000"], 500);
    }
}

/// How a program run under injected failures may end: every test passed (0), a test failed
/// or panicked on an error it did not expect (1, 101: an `ENOMEM` where it wants success), or
/// the process was killed for a fault that found no memory (128 + SIGKILL, or + SIGBUS).
const ENDINGS_UNDER_INJECTION: [u32; 5] = [0, 1, 101, 128 + 9, 128 + 7];

/// The user programs [`user_programs_end_cleanly_under_injected_failures`] runs: the memory,
/// mremap, file-mapping, process (fork, exec, wait) and thread groups of the user suite, one
/// process per group (the suite ends at its first panic, so a group per process reaches more
/// code), and fork tortures.
const PROGRAMS_UNDER_INJECTION: [&[&[u8]]; 8] = [
    &[b"/bin/usertests", b"mem::"],
    &[b"/bin/usertests", b"mremap::"],
    &[b"/bin/usertests", b"memctl::"],
    &[b"/bin/usertests", b"filemap::"],
    &[b"/bin/usertests", b"process::"],
    &[b"/bin/usertests", b"threads::"],
    &[b"/bin/forktorture", b"leak", b"children=100"],
    &[b"/bin/forktorture", b"vmas", b"vmas=500", b"forks=2"],
];

ktest! {
    timeout_ms = 300_000;
    /// Under `fail=` (the injection profile of `cargo xtask test`): user programs whose frames,
    /// VMAs and page tables fail to allocate now and then each end as a process may under
    /// memory pressure (see [`ENDINGS_UNDER_INJECTION`]) or are refused at exec with ENOMEM,
    /// never with another signal, a hang or a kernel panic; afterwards (injection paused)
    /// frames, VMAs, slab objects and the page cache are back at their baseline. Whether a
    /// given test of the suite passes depends on where the failures land, so only how each
    /// program ends is checked; the count of each is printed.
    fn user_programs_end_cleanly_under_injected_failures() {
        use crate::mm::inject;
        if !inject::is_armed() {
            return ktest::skip("no failure injection (boot option fail=)");
        }
        assert!(inject::is_active(), "failure injection left paused (by a test that failed?)");
        let baseline = {
            let _paused = inject::Suspend::new();
            Baseline::take()
        };
        let before = inject::injected();
        for args in PROGRAMS_UNDER_INJECTION {
            let path = core::str::from_utf8(args[0]).expect("a UTF-8 path");
            let name = args.iter().map(|a| String::from_utf8_lossy(a)).collect::<alloc::vec::Vec<_>>().join(" ");
            // The suite's own KTAP stays off the console: its failures are expected here.
            let options = SpawnOptions { init: false, capture_output: true, hide_output: true };
            let process = match spawn(path, args, options) {
                Ok(process) => process,
                Err(error) if error.contains("out of memory") => {
                    crate::println!("# {name}: refused: {error}");
                    continue;
                }
                Err(error) => panic!("{name}: {error}"),
            };
            assert!(process.exited.wait_timeout(120_000_000_000), "{name} still runs after 120 s");
            let status = process.exit_status();
            let report = process.fatal_report.lock().clone().unwrap_or_default();
            crate::println!("# {name}: status {status} {report}");
            if !ENDINGS_UNDER_INJECTION.contains(&status) {
                let text = output(&process);
                let tail: alloc::vec::Vec<&str> = text.lines().rev().take(20).collect();
                panic!("{name} ended with status {status} {report}; its last lines, newest first:\n{}", tail.join("\n"));
            }
        }
        let after = inject::injected();
        assert!(after != before, "not one failure was injected: the rates are too low");
        crate::println!(
            "# injected failures: {} frames, {} slab, {} pagetable",
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        );
        let _paused = inject::Suspend::new();
        baseline.check();
        crate::println!("# back at baseline: {}", baseline.compared_with_now());
    }
}
