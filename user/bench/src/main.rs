//! `bench [--poweroff] [KEY=VALUE...]`: page-fault throughput, fork and /proc/self/maps reads, the
//! program `cargo xtask bench` runs as init, on this project's kernel and on Linux alike (static,
//! Linux syscall ABI).
//!
//! Scenarios (each faulting thread writes one byte to every page it owns; each first write is
//! a page fault that allocates and clears a page):
//!
//! - `a`: every thread maps its own private region of `pages` pages, touches it and unmaps it,
//!   `rounds` times (the shape of will-it-scale's page_fault1);
//! - `a-procs`: `a` with processes instead of threads: each "thread" is a child forked for the
//!   measurement, in an address space of its own (will-it-scale's process mode);
//! - `a-file`: `a` on a file: every thread has its own file of `pages` pages in /tmp (made
//!   before the measurement, unlinked at once) and maps it MAP_SHARED, touches every page and
//!   unmaps it, `rounds` times (will-it-scale's page_fault3). The first round's faults add the
//!   pages to the page cache; later rounds map the cached pages;
//! - `b`: one shared region; every thread touches its own disjoint `pages * rounds` pages;
//! - `c`: `b` plus one more thread in a storm of mmap/mprotect/munmap on small regions that
//!   nobody touches (address-space writers next to faults in an unrelated VMA);
//! - `d-touched`: `b` plus a storm thread that maps small regions, touches every page and
//!   unmaps them (each munmap must shoot down translations on the faulting CPUs);
//! - `d-untouched`: the same storm without the touching (no shootdown needed);
//! - `spin`: `b` plus a thread that spins in user space without a system call: the control,
//!   what one more busy CPU costs by itself (under emulation, host time);
//! - `spin-pause`: the same spin with `pause` in the loop. QEMU's TCG leaves translated code at
//!   every `pause` and takes its global lock (the BQL), which it also takes to deliver every
//!   exception, page faults included; so this control shows what contention for that emulator
//!   lock alone costs a faulting CPU, with no kernel work on the other CPU.
//!
//! The storm works in an area of its own, far from the faulting region, at fixed hints with
//! gaps, so that its mappings never merge with the faulting VMA.
//!
//! Fork (`forks=CASES`, after the scenarios in every repetition): for each case `VxP` the
//! program maps `V` regions (VMAs, kept apart by alternating protections) of `max(P, 1)` pages
//! each and writes `P` pages of each (`P = 0`: a page each, never touched), then times
//! `fork_iterations` rounds of fork, the child's `exit_group(0)` and the parent's `wait4`
//! (after two unreported ones). The cases `Vx1` against `1x1` show what each VMA costs fork,
//! `Vx0` what the VMA alone costs, and `1xP` what each page costs.
//!
//! Maps reads (`maps=N`, after the fork cases in every repetition): the program maps
//! `maps_vmas` regions of a page (kept apart as for fork), then in two conditions, `quiet` and
//! `storm` (c's storm thread, started before the reads and stopped after them), times `N`
//! complete reads of /proc/self/maps, each an open, reads until end of file into one buffer and
//! a close (after two unreported ones). As process 1 without /proc/self (Linux's /init) it
//! first mounts proc on /proc; where /proc/self/maps cannot be read it says so once and
//! measures the rest without it.
//!
//! Growth (`grow=1`, after the maps reads in every repetition): a buffer grows from 1 MiB to
//! 64 MiB by doubling, as glibc's `realloc` grows a chunk of its own mapping, in two ways: `mremap`
//! (one `mremap(MREMAP_MAYMOVE)` a step, which carries the pages' table entries to the new place)
//! and `copy` (what a kernel without mremap leaves: mmap the new size, copy the old contents,
//! munmap the old). Before every step a page is mapped just past the buffer (untimed), so that it
//! cannot grow in place and every step moves; after the growth the program writes every new
//! page, as the caller of `realloc` would. The 1 MiB start is written before the timing, and the
//! contents are checked after the last step. One unreported growth of each kind comes first.
//!
//! Options (defaults in brackets): `scenarios=a,a-procs,a-file,b,c,d-touched,d-untouched,spin,spin-pause` [a],
//! `threads=1,2,4` [1], `pages=N` [512], `rounds=N` [16], `reps=N` [1], `warmup=N` [0]
//! (unreported passes over the whole matrix first),
//! `calibrate=1` (also time the four ways to clear a page in user space, for instruction
//! counts under QEMU's icount), `settle=1` (first wait until the guest is quiet: see [`settle`]),
//! `forks=VxP,...` [none], `fork_iterations=N` [16], `maps=N` [0: none], `maps_vmas=V` [64],
//! `grow=1` (the growth measurement).
//!
//! Output, one line per measurement (what xtask parses):
//! `bench: scenario=S threads=T rep=R faults=F elapsed_ns=E faults_per_s=X minflt=M storm_ops=O
//! per_thread=F/E,F/E... per_thread_faults_per_s=X,X...` (faults and nanoseconds of each faulting
//! thread, then its rate; `minflt` is getrusage's count over the whole run, storm included;
//! `storm_ops` counts the storm's system calls inside the measured window),
//! `bench: fork vmas=V pages=P rep=R forks=N elapsed_ns=E fork_ns=F` per fork case (`E` from
//! each fork call to the end of its wait4, summed; `F` the fork calls alone, in the parent),
//! `bench: maps condition=quiet|storm vmas=V rep=R reads=N median_ns=M p99_ns=P worst_ns=W
//! lines=L storm_ops=O` per condition (the median, 99th percentile (nearest rank) and longest
//! read; `L` the lines of the last read, which count the `V` regions and the program's own
//! mappings; `O` the storm's calls during the timed reads), or once
//! `bench: maps: /proc/self/maps unavailable (ERRNO)`,
//! `bench: grow method=mremap|copy rep=R from_kib=F to_kib=T steps=S elapsed_ns=E move_ns=M
//! step_ns=N,N,...` per way (`E` the whole growth, `M` its grow calls alone (mremap, or mmap,
//! copy and munmap), `N` each step with its writes),
//! and before them `bench: start release=UNAME cpus=N erms=0|1` (and with `settle=1`
//! `bench: settled after_ns=N trials=T trial_ns=B`, or `bench: unsettled …` when the guest
//! never went quiet), after them `bench: done`.
//! Exit status 0, 1 when a run failed (the reason is printed), 2 for bad options.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use urt::sys::{self, PAGE_SIZE};
use urt::{eprintln, println};

urt::main!(main);

const PR_SET_THP_DISABLE: usize = 41;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Storm {
    /// No storm thread.
    None,
    /// mmap, two mprotects, munmap; the pages are never touched.
    Protect,
    /// mmap, write every page, munmap.
    Touched,
    /// mmap, munmap of the same sizes as `Touched`, untouched.
    Untouched,
    /// No system calls at all: the thread only spins in user space (the control, showing
    /// what a second busy CPU costs by itself under emulation).
    Spin,
    /// `Spin` with `pause` in the loop (the control for the emulator's global lock).
    SpinPause,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Private regions, mapped and unmapped every round.
    OwnRegions,
    /// The same, each faulting "thread" a process of its own.
    OwnRegionsInProcesses,
    /// Shared mappings of a file of each thread's own, mapped and unmapped every round.
    OwnFiles,
    /// Disjoint pages of one shared region, with the given storm beside.
    SharedRegion(Storm),
}

const SCENARIOS: [(&str, Scenario); 9] = [
    ("a", Scenario::OwnRegions),
    ("a-procs", Scenario::OwnRegionsInProcesses),
    ("a-file", Scenario::OwnFiles),
    ("b", Scenario::SharedRegion(Storm::None)),
    ("c", Scenario::SharedRegion(Storm::Protect)),
    ("d-touched", Scenario::SharedRegion(Storm::Touched)),
    ("d-untouched", Scenario::SharedRegion(Storm::Untouched)),
    ("spin", Scenario::SharedRegion(Storm::Spin)),
    ("spin-pause", Scenario::SharedRegion(Storm::SpinPause)),
];

struct Options {
    scenarios: Vec<(&'static str, Scenario)>,
    threads: Vec<usize>,
    pages: usize,
    rounds: usize,
    reps: usize,
    calibrate: bool,
    settle: bool,
    warmup: usize,
    poweroff: bool,
    forks: Vec<ForkCase>,
    fork_iterations: usize,
    /// Timed reads of /proc/self/maps per condition and repetition (0: none).
    maps: usize,
    maps_vmas: usize,
    /// Whether to measure realloc-style growth.
    grow: bool,
}

/// A fork measurement: `vmas` regions of `max(pages, 1)` pages, `pages` of them written.
#[derive(Clone, Copy)]
struct ForkCase {
    vmas: usize,
    pages: usize,
}

fn fork_cases(value: &str) -> Result<Vec<ForkCase>, String> {
    value
        .split(',')
        .map(|case| {
            let parsed = case.split_once('x').and_then(|(vmas, pages)| {
                Some(ForkCase {
                    vmas: vmas.parse().ok().filter(|&v| v > 0)?,
                    pages: pages.parse().ok()?,
                })
            });
            parsed.ok_or_else(|| format!("forks: {case:?} is not VMASxPAGES"))
        })
        .collect()
}

fn numbers(key: &str, value: &str) -> Result<Vec<usize>, String> {
    value
        .split(',')
        .map(|n| match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{key}: {n:?} is not a positive number")),
        })
        .collect()
}

fn number(key: &str, value: &str) -> Result<usize, String> {
    match numbers(key, value)?.as_slice() {
        [n] => Ok(*n),
        _ => Err(format!("{key} takes one number")),
    }
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        scenarios: Vec::from([SCENARIOS[0]]),
        threads: Vec::from([1]),
        pages: 512,
        rounds: 16,
        reps: 1,
        calibrate: false,
        settle: false,
        warmup: 0,
        poweroff: false,
        forks: Vec::new(),
        fork_iterations: 16,
        maps: 0,
        maps_vmas: 64,
        grow: false,
    };
    for arg in urt::start::args() {
        if arg == "--poweroff" {
            options.poweroff = true;
            continue;
        }
        // Linux hands what follows `--` on its command line to init; a lone `--` may come.
        if arg == "--" {
            continue;
        }
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?} is not KEY=VALUE"))?;
        match key {
            "scenarios" => {
                options.scenarios = value
                    .split(',')
                    .map(|name| {
                        SCENARIOS
                            .iter()
                            .find(|(n, _)| *n == name)
                            .copied()
                            .ok_or_else(|| format!("unknown scenario {name:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "threads" => options.threads = numbers(key, value)?,
            "pages" => options.pages = number(key, value)?,
            "rounds" => options.rounds = number(key, value)?,
            "reps" => options.reps = number(key, value)?,
            "calibrate" => options.calibrate = value == "1",
            "settle" => options.settle = value == "1",
            "warmup" => options.warmup = value.parse().map_err(|_| format!("warmup: {value:?}"))?,
            "forks" => options.forks = fork_cases(value)?,
            "fork_iterations" => options.fork_iterations = number(key, value)?,
            "maps" => options.maps = value.parse().map_err(|_| format!("maps: {value:?}"))?,
            "maps_vmas" => options.maps_vmas = number(key, value)?,
            "grow" => options.grow = value == "1",
            _ => return Err(format!("unknown option {key:?}")),
        }
    }
    Ok(options)
}

/// What one faulting thread did, and the storm's call count as it started and finished.
#[derive(Clone, Copy, Default)]
struct ThreadRun {
    faults: u64,
    started_ns: u64,
    ended_ns: u64,
    storm_calls_at_start: u64,
    storm_calls_at_end: u64,
}

/// A faulting thread's measured window, from the start line to its last fault.
struct Window<'a> {
    start: &'a StartLine,
    started_ns: u64,
    storm_calls_at_start: u64,
}

impl<'a> Window<'a> {
    /// Waits at the start line, then opens the window.
    fn open(start: &'a StartLine) -> Self {
        start.wait();
        Self {
            start,
            started_ns: sys::monotonic_ns(),
            storm_calls_at_start: start.storm_calls.0.load(Ordering::Relaxed),
        }
    }

    fn close(self, faults: u64) -> ThreadRun {
        ThreadRun {
            faults,
            started_ns: self.started_ns,
            ended_ns: sys::monotonic_ns(),
            storm_calls_at_start: self.storm_calls_at_start,
            storm_calls_at_end: self.start.storm_calls.0.load(Ordering::Relaxed),
        }
    }
}

/// Writes one byte to each of `pages` pages from `base`: one page fault each.
fn touch(base: usize, pages: usize) {
    for page in 0..pages {
        // SAFETY: the caller mapped `pages` writable pages at `base` for this thread alone.
        unsafe { ((base + page * PAGE_SIZE) as *mut u8).write_volatile(1) };
    }
}

/// Threads wait here until every one of them exists, so that they start together.
struct StartLine {
    ready: AtomicUsize,
    go: AtomicBool,
    storm_calls: StormCalls,
}

/// The storm's running count of system calls (it alone writes it). The faulting threads read it
/// as their windows open and close, so that a measurement counts only the calls made inside its
/// window: the storm starts before the faulting threads exist and stops only after they are
/// joined. On a cache line of its own, away from the flags the threads wait on.
#[repr(align(64))]
struct StormCalls(AtomicU64);

impl StartLine {
    fn wait(&self) {
        self.ready.fetch_add(1, Ordering::AcqRel);
        while !self.go.load(Ordering::Acquire) {
            let _ = sys::sched_yield();
        }
    }

    fn release_when(&self, count: usize) {
        while self.ready.load(Ordering::Acquire) < count {
            let _ = sys::sched_yield();
        }
        self.go.store(true, Ordering::Release);
    }
}

fn own_regions(start: &StartLine, pages: usize, rounds: usize) -> Result<ThreadRun, String> {
    let window = Window::open(start);
    let len = pages * PAGE_SIZE;
    for _ in 0..rounds {
        let base = sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE)
            .map_err(|e| format!("mmap of {len} bytes: {e}"))?;
        touch(base, pages);
        sys::munmap(base, len).map_err(|e| format!("munmap: {e}"))?;
    }
    Ok(window.close((pages * rounds) as u64))
}

fn own_file(
    start: &StartLine,
    fd: usize,
    pages: usize,
    rounds: usize,
) -> Result<ThreadRun, String> {
    let window = Window::open(start);
    let len = pages * PAGE_SIZE;
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    for _ in 0..rounds {
        let base = sys::mmap(0, len, rw, sys::MAP_SHARED, fd, 0)
            .map_err(|e| format!("mmap of {len} bytes of a file: {e}"))?;
        touch(base, pages);
        sys::munmap(base, len).map_err(|e| format!("munmap: {e}"))?;
    }
    Ok(window.close((pages * rounds) as u64))
}

/// A file of `pages` pages in /tmp for faulting thread `index`, open read-write; its name is
/// gone at once (the descriptor keeps the file until it is closed).
fn scratch_file(index: usize, pages: usize) -> Result<usize, String> {
    let path = format!("/tmp/bench-{}-{index}\0", sys::getpid());
    let flags = sys::O_RDWR | sys::O_CREAT | sys::O_EXCL | sys::O_CLOEXEC;
    let fd = sys::openat(sys::AT_FDCWD, path.as_ptr() as usize, flags, 0o600)
        .map_err(|e| format!("open {}: {e}", path.trim_end_matches('\0')))?;
    let _ = sys::unlinkat(sys::AT_FDCWD, path.as_ptr() as usize, 0);
    if let Err(e) = sys::ftruncate(fd, pages * PAGE_SIZE) {
        let _ = sys::close(fd);
        return Err(format!("ftruncate: {e}"));
    }
    Ok(fd)
}

fn shared_region(start: &StartLine, base: usize, pages: usize) -> Result<ThreadRun, String> {
    let window = Window::open(start);
    touch(base, pages);
    Ok(window.close(pages as u64))
}

/// Where the storm maps: far above the faulting regions, each slot 1 MiB apart.
const STORM_AREA: usize = 0x6000_0000_0000;
const STORM_SLOTS: usize = 64;

/// The controls' thread: spins until `stop`, with plain loads or with `pause` in the loop
/// (QEMU's TCG leaves its execution loop, and takes its global lock, at every `pause`).
fn spin(pause: bool, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if pause {
            core::hint::spin_loop();
        }
    }
}

/// Runs the storm until `stop`, counting its mmap/mprotect/munmap calls in `calls`.
fn storm(kind: Storm, stop: &AtomicBool, calls: &StormCalls) -> Result<(), String> {
    let mut made = 0u64;
    let mut i = 0usize;
    if let Storm::Spin | Storm::SpinPause = kind {
        spin(kind == Storm::SpinPause, stop);
        return Ok(());
    }
    while !stop.load(Ordering::Relaxed) {
        let hint = STORM_AREA + (i % STORM_SLOTS) * 0x10_0000;
        let len = (1 + i % 4) * PAGE_SIZE;
        let rw = sys::PROT_READ | sys::PROT_WRITE;
        let addr = sys::mmap(
            hint,
            len,
            rw,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS,
            usize::MAX,
            0,
        )
        .map_err(|e| format!("storm mmap: {e}"))?;
        match kind {
            Storm::Protect => {
                sys::mprotect(addr, PAGE_SIZE, sys::PROT_READ)
                    .map_err(|e| format!("storm mprotect: {e}"))?;
                sys::mprotect(addr, len, sys::PROT_NONE)
                    .map_err(|e| format!("storm mprotect: {e}"))?;
                made += 2;
            }
            Storm::Touched => touch(addr, len / PAGE_SIZE),
            Storm::Untouched | Storm::None | Storm::Spin | Storm::SpinPause => {}
        }
        sys::munmap(addr, len).map_err(|e| format!("storm munmap: {e}"))?;
        made += 2;
        // One writer: a plain store publishes the count without a locked instruction.
        calls.0.store(made, Ordering::Relaxed);
        i += 1;
    }
    Ok(())
}

/// One measurement: the result line's fields.
struct Measurement {
    runs: Vec<ThreadRun>,
    minflt: u64,
}

impl Measurement {
    /// The storm's calls inside the measured window, from the first thread's start to the last
    /// one's end.
    fn storm_calls(&self) -> u64 {
        let at_start = self.runs.iter().map(|r| r.storm_calls_at_start).min();
        let at_end = self.runs.iter().map(|r| r.storm_calls_at_end).max();
        at_end.unwrap_or(0).saturating_sub(at_start.unwrap_or(0))
    }
}

fn measure(
    scenario: Scenario,
    threads: usize,
    pages: usize,
    rounds: usize,
) -> Result<Measurement, String> {
    let start = alloc::sync::Arc::new(StartLine {
        ready: AtomicUsize::new(0),
        go: AtomicBool::new(false),
        storm_calls: StormCalls(AtomicU64::new(0)),
    });
    if scenario == Scenario::OwnRegionsInProcesses {
        return measure_processes(threads, pages, rounds);
    }
    let stop = alloc::sync::Arc::new(AtomicBool::new(false));
    let faults_before = sys::minor_faults();
    let per_thread_pages = pages * rounds;
    let files = if scenario == Scenario::OwnFiles {
        let mut files = Vec::new();
        for index in 0..threads {
            match scratch_file(index, pages) {
                Ok(fd) => files.push(fd),
                Err(e) => {
                    for fd in files {
                        let _ = sys::close(fd);
                    }
                    return Err(e);
                }
            }
        }
        files
    } else {
        Vec::new()
    };
    let shared = match scenario {
        Scenario::OwnRegions | Scenario::OwnRegionsInProcesses | Scenario::OwnFiles => None,
        Scenario::SharedRegion(_) => {
            let len = threads * per_thread_pages * PAGE_SIZE;
            let base = sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE)
                .map_err(|e| format!("mmap of the shared region ({len} bytes): {e}"))?;
            Some((base, len))
        }
    };
    let storm_thread = match scenario {
        Scenario::SharedRegion(kind) if kind != Storm::None => {
            let stop = stop.clone();
            let start = start.clone();
            Some(urt::thread::spawn(move || {
                storm(kind, &stop, &start.storm_calls)
            }))
        }
        _ => None,
    };
    let workers: Vec<_> = (0..threads)
        .map(|index| {
            let start = start.clone();
            let file = files.get(index).copied();
            urt::thread::spawn(move || match shared {
                None if let Some(fd) = file => own_file(&start, fd, pages, rounds),
                None => own_regions(&start, pages, rounds),
                Some((base, _)) => shared_region(
                    &start,
                    base + index * per_thread_pages * PAGE_SIZE,
                    per_thread_pages,
                ),
            })
        })
        .collect();
    start.release_when(threads);
    let results: Vec<Result<ThreadRun, String>> = workers.into_iter().map(|w| w.join()).collect();
    stop.store(true, Ordering::Relaxed);
    if let Some(thread) = storm_thread {
        thread.join()?;
    }
    let minflt = sys::minor_faults().saturating_sub(faults_before);
    for fd in files {
        let _ = sys::close(fd);
    }
    if let Some((base, len)) = shared {
        sys::munmap(base, len).map_err(|e| format!("munmap of the shared region: {e}"))?;
    }
    Ok(Measurement {
        runs: results.into_iter().collect::<Result<_, _>>()?,
        minflt,
    })
}

/// Scenario a with `processes` forked children in place of threads: they meet at a start line
/// in shared memory and leave their results there; `minflt` is the children's
/// (`RUSAGE_CHILDREN`), counted once they are collected.
fn measure_processes(processes: usize, pages: usize, rounds: usize) -> Result<Measurement, String> {
    let results_at = size_of::<StartLine>().next_multiple_of(align_of::<ThreadRun>());
    let len = (results_at + processes * size_of::<ThreadRun>()).next_multiple_of(PAGE_SIZE);
    let base = sys::mmap(
        0,
        len,
        sys::PROT_READ | sys::PROT_WRITE,
        sys::MAP_SHARED | sys::MAP_ANONYMOUS,
        usize::MAX,
        0,
    )
    .map_err(|e| format!("mmap of the shared start line: {e}"))?;
    // SAFETY: the mapping is fresh (zeroed: a valid StartLine, all atomics at 0), page-aligned,
    // and stays mapped until the end of this function, after every child has ended.
    let start = unsafe { &*(base as *const StartLine) };
    let results = (base + results_at) as *mut ThreadRun;
    let faults_before = children_minor_faults();
    let mut children = Vec::new();
    let mut failure = None;
    for index in 0..processes {
        match sys::fork() {
            Ok(0) => {
                let status = match own_regions(start, pages, rounds) {
                    Ok(run) => {
                        // SAFETY: slot `index` of the shared results is this child's alone.
                        unsafe { results.add(index).write_volatile(run) };
                        0
                    }
                    Err(e) => {
                        println!("bench: scenario=a-procs child {index}: {e}");
                        1
                    }
                };
                sys::exit_group(status);
            }
            Ok(pid) => children.push(pid),
            Err(e) => {
                failure = Some(format!("fork: {e}"));
                break;
            }
        }
    }
    // Those started wait at the start line: let them go even if a fork failed.
    start.release_when(children.len());
    for pid in children {
        let mut status = 0i32;
        match sys::wait4(pid, &raw mut status as usize, 0, 0) {
            Ok(_) if status == 0 => {}
            Ok(_) => failure = Some(format!("a child ended with wait status {status:#x}")),
            Err(e) => failure = Some(format!("wait4: {e}")),
        }
    }
    let minflt = children_minor_faults().saturating_sub(faults_before);
    // SAFETY: every child has ended; each wrote its slot (or failed, which `failure` says).
    let runs = (0..processes)
        .map(|index| unsafe { results.add(index).read_volatile() })
        .collect();
    let _ = sys::munmap(base, len);
    match failure {
        Some(why) => Err(why),
        None => Ok(Measurement { runs, minflt }),
    }
}

/// getrusage(RUSAGE_CHILDREN).ru_minflt: the faults of the children collected so far.
fn children_minor_faults() -> u64 {
    const RUSAGE_CHILDREN: usize = -1isize as usize;
    let mut usage = sys::Rusage::default();
    match sys::getrusage(RUSAGE_CHILDREN, &raw mut usage as usize) {
        Ok(_) => usage.ru_minflt as u64,
        Err(_) => 0,
    }
}

/// Maps `regions` regions of `pages_each` pages in one go, writes `written` pages of each, and
/// makes every other region read-only so that no two neighbours merge: `regions` VMAs. Returns
/// the base and length of the whole, for munmap.
fn map_separate_regions(
    regions: usize,
    pages_each: usize,
    written: usize,
) -> Result<(usize, usize), String> {
    let region_len = pages_each * PAGE_SIZE;
    let len = regions * region_len;
    let base = sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE)
        .map_err(|e| format!("mmap of {len} bytes: {e}"))?;
    for region in 0..regions {
        touch(base + region * region_len, written);
    }
    for region in (1..regions).step_by(2) {
        sys::mprotect(base + region * region_len, region_len, sys::PROT_READ)
            .map_err(|e| format!("mprotect: {e}"))?;
    }
    Ok((base, len))
}

/// Maps the layout of `case` (see the module documentation) and times fork, exit and wait on
/// it; returns the result line.
fn measure_fork(case: ForkCase, iterations: usize, rep: usize) -> Result<String, String> {
    let (base, len) = map_separate_regions(case.vmas, case.pages.max(1), case.pages)?;
    let mut elapsed = 0;
    let mut forking = 0;
    let mut result = Ok(());
    for round in 0..iterations + 2 {
        let started = sys::monotonic_ns();
        let pid = match sys::fork() {
            Ok(0) => sys::exit_group(0),
            Ok(pid) => pid,
            Err(e) => {
                result = Err(format!("fork: {e}"));
                break;
            }
        };
        let forked = sys::monotonic_ns();
        let mut status = 0i32;
        if let Err(e) = sys::wait4(pid, &raw mut status as usize, 0, 0) {
            result = Err(format!("wait4: {e}"));
            break;
        }
        let ended = sys::monotonic_ns();
        // The first two rounds warm up (caches, the emulator's translations).
        if round >= 2 {
            elapsed += ended - started;
            forking += forked - started;
        }
    }
    sys::munmap(base, len).map_err(|e| format!("munmap: {e}"))?;
    result?;
    Ok(format!(
        "bench: fork vmas={} pages={} rep={rep} forks={iterations} elapsed_ns={elapsed} fork_ns={forking}",
        case.vmas, case.pages
    ))
}

/// The conditions of the maps measurement: the reads alone, and beside c's storm.
const MAPS_CONDITIONS: [(&str, Storm); 2] = [("quiet", Storm::None), ("storm", Storm::Protect)];
/// Unreported reads before each condition's timed ones (caches, the emulator's translations,
/// the first touch of the buffer).
const MAPS_WARMUP_READS: usize = 2;
/// How long a condition waits for its storm's first call before it reads anyway (the storm's
/// own failure then shows at its join).
const STORM_START_WAIT_NS: u64 = 1_000_000_000;

/// Reads /proc/self/maps as a program would: open, read until end of file into `buffer`,
/// close. Returns the bytes read.
fn read_maps(buffer: &mut [u8]) -> Result<usize, String> {
    let path = c"/proc/self/maps";
    let fd = sys::open(path.as_ptr() as usize, sys::O_RDONLY | sys::O_CLOEXEC, 0)
        .map_err(|e| format!("{e}"))?;
    let mut filled = 0;
    let read = loop {
        if filled == buffer.len() {
            break Err(format!("more than {} bytes", buffer.len()));
        }
        let free = &mut buffer[filled..];
        match sys::read(fd, free.as_mut_ptr() as usize, free.len()) {
            Ok(0) => break Ok(filled),
            Ok(n) => filled += n,
            Err(e) => break Err(format!("read: {e}")),
        }
    };
    let closed = sys::close(fd).map_err(|e| format!("close: {e}"));
    read.and_then(|n| closed.map(|_| n))
}

/// A buffer that holds /proc/self/maps with `vmas` regions mapped, with room for the program's
/// own mappings and the storm's (a line takes under 256 bytes without a path, and these
/// mappings have none or a short one).
fn maps_buffer(vmas: usize) -> Vec<u8> {
    alloc::vec![0; (vmas + 256) * 256]
}

/// Maps `vmas` regions of a page (apart, see [`map_separate_regions`]), then for each of
/// [`MAPS_CONDITIONS`] times `reads` complete reads of /proc/self/maps; returns a result line
/// per condition (see the module documentation) or why a condition failed.
fn measure_maps(vmas: usize, reads: usize, rep: usize) -> Vec<Result<String, String>> {
    let (base, len) = match map_separate_regions(vmas, 1, 0) {
        Ok(layout) => layout,
        Err(e) => {
            return Vec::from([Err(format!(
                "condition=quiet vmas={vmas} rep={rep} failed: {e}"
            ))]);
        }
    };
    let mut buffer = maps_buffer(vmas);
    let lines = MAPS_CONDITIONS
        .iter()
        .map(|&(condition, storm_kind)| {
            time_maps_reads(storm_kind, &mut buffer, reads)
                .map(|timed| {
                    format!(
                        "bench: maps condition={condition} vmas={vmas} rep={rep} reads={reads} {timed}"
                    )
                })
                .map_err(|e| format!("condition={condition} vmas={vmas} rep={rep} failed: {e}"))
        })
        .collect();
    let _ = sys::munmap(base, len);
    lines
}

/// Times `reads` reads of /proc/self/maps beside the storm `storm_kind` (started before them and
/// stopped after them); returns the line's fields from `median_ns` on.
fn time_maps_reads(storm_kind: Storm, buffer: &mut [u8], reads: usize) -> Result<String, String> {
    let stop = alloc::sync::Arc::new(AtomicBool::new(false));
    let calls = alloc::sync::Arc::new(StormCalls(AtomicU64::new(0)));
    let storm_thread = (storm_kind != Storm::None).then(|| {
        let (stop, calls) = (stop.clone(), calls.clone());
        urt::thread::spawn(move || storm(storm_kind, &stop, &calls))
    });
    if storm_thread.is_some() {
        let waiting_since = sys::monotonic_ns();
        while calls.0.load(Ordering::Relaxed) == 0
            && sys::monotonic_ns() - waiting_since < STORM_START_WAIT_NS
        {
            let _ = sys::sched_yield();
        }
    }
    let mut times = Vec::with_capacity(reads);
    let mut last_read = 0;
    let mut result = Ok(());
    for _ in 0..MAPS_WARMUP_READS {
        if let Err(e) = read_maps(buffer) {
            result = Err(e);
        }
    }
    let calls_at_start = calls.0.load(Ordering::Relaxed);
    while result.is_ok() && times.len() < reads {
        let started = sys::monotonic_ns();
        match read_maps(buffer) {
            Ok(n) => {
                times.push(sys::monotonic_ns() - started);
                last_read = n;
            }
            Err(e) => result = Err(e),
        }
    }
    let storm_ops = calls.0.load(Ordering::Relaxed) - calls_at_start;
    stop.store(true, Ordering::Relaxed);
    if let Some(thread) = storm_thread {
        thread.join()?;
    }
    result?;
    times.sort_unstable();
    let count = times.len();
    let median = (times[(count - 1) / 2] + times[count / 2]) / 2;
    // Nearest rank: the smallest time that at least 99% of the reads did not exceed.
    let p99 = times[(count * 99).div_ceil(100) - 1];
    let worst = times[count - 1];
    let lines = buffer[..last_read].iter().filter(|&&b| b == b'\n').count();
    Ok(format!(
        "median_ns={median} p99_ns={p99} worst_ns={worst} lines={lines} storm_ops={storm_ops}"
    ))
}

/// How a growing buffer moves to its new place.
#[derive(Clone, Copy)]
enum GrowWay {
    /// `mremap(MREMAP_MAYMOVE)`: the kernel carries the pages' table entries.
    Remap,
    /// mmap of the new size, a copy of the contents, munmap of the old.
    Copy,
}

const GROW_WAYS: [(&str, GrowWay); 2] = [("mremap", GrowWay::Remap), ("copy", GrowWay::Copy)];
/// The buffer's first and last size: glibc serves an allocation this large from a mapping of
/// its own (its threshold starts at 128 KiB), and grows it with mremap.
const GROW_FROM: usize = 1 << 20;
const GROW_TO: usize = 64 << 20;

/// One step of a growth: the grow calls alone, and the whole step with the writes of the new
/// pages (guest nanoseconds).
struct GrowStep {
    move_ns: u64,
    step_ns: u64,
}

/// Grows a written buffer from [`GROW_FROM`] to [`GROW_TO`] by doubling in the way `way`, each
/// step forced to move (see the module documentation); returns the steps' times.
fn grow(way: GrowWay) -> Result<Vec<GrowStep>, String> {
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    let mut buffer = sys::mmap_anon(GROW_FROM, rw).map_err(|e| format!("mmap: {e}"))?;
    let mut len = GROW_FROM;
    touch(buffer, len / PAGE_SIZE);
    let mut steps = Vec::new();
    let mut result = Ok(());
    while len < GROW_TO && result.is_ok() {
        let blocker = match block_growth_in_place(buffer + len) {
            Ok(blocker) => blocker,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let new_len = len * 2;
        let started = sys::monotonic_ns();
        let moved = match way {
            GrowWay::Remap => sys::mremap(buffer, len, new_len, sys::MREMAP_MAYMOVE, 0)
                .map_err(|e| format!("mremap: {e}")),
            GrowWay::Copy => move_by_copy(buffer, len, new_len),
        };
        let moved_at = sys::monotonic_ns();
        match moved {
            Ok(new) if new == buffer => result = Err(format!("grew in place at {len} bytes")),
            Ok(new) => {
                touch(new + len, len / PAGE_SIZE);
                steps.push(GrowStep {
                    move_ns: moved_at - started,
                    step_ns: sys::monotonic_ns() - started,
                });
                buffer = new;
                len = new_len;
            }
            Err(e) => result = Err(e),
        }
        if let Some(page) = blocker {
            let _ = sys::munmap(page, PAGE_SIZE);
        }
    }
    // Every page was written with 1 before it moved: a page lost on the way reads 0.
    if result.is_ok() {
        let first_byte = |page: usize| {
            // SAFETY: `buffer` maps `len` readable bytes that this function alone uses.
            unsafe { ((buffer + page * PAGE_SIZE) as *const u8).read_volatile() }
        };
        let lost = (0..len / PAGE_SIZE).find(|&page| first_byte(page) != 1);
        if let Some(page) = lost {
            result = Err(format!("page {page} of {len} bytes lost its contents"));
        }
    }
    let _ = sys::munmap(buffer, len);
    result.map(|()| steps)
}

/// Maps a page at `end`, the first page past a buffer, so that the buffer cannot grow in place;
/// returns it to unmap later, or `None` where something was there already.
fn block_growth_in_place(end: usize) -> Result<Option<usize>, String> {
    let flags = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE;
    match sys::mmap(end, PAGE_SIZE, sys::PROT_NONE, flags, usize::MAX, 0) {
        Ok(page) if page == end => Ok(Some(page)),
        Ok(page) => {
            let _ = sys::munmap(page, PAGE_SIZE);
            Err(format!(
                "the page past the buffer went to {page:#x}, not {end:#x}"
            ))
        }
        Err(e) if e == sys::Errno::EEXIST => Ok(None),
        Err(e) => Err(format!("mmap past the buffer: {e}")),
    }
}

/// What growing costs without mremap: a new mapping of `new_len` bytes, the `len` bytes of
/// `buffer` copied into it, and the old mapping unmapped; returns the new mapping.
fn move_by_copy(buffer: usize, len: usize, new_len: usize) -> Result<usize, String> {
    let new = sys::mmap_anon(new_len, sys::PROT_READ | sys::PROT_WRITE)
        .map_err(|e| format!("mmap: {e}"))?;
    // SAFETY: `buffer` maps `len` readable bytes and `new` `new_len >= len` writable ones, two
    // separate mappings that this program's growth alone uses.
    unsafe { core::ptr::copy_nonoverlapping(buffer as *const u8, new as *mut u8, len) };
    sys::munmap(buffer, len).map_err(|e| format!("munmap: {e}"))?;
    Ok(new)
}

/// The `bench: grow` line of a growth in the way `name` (see the module documentation).
fn grow_line(name: &str, rep: usize, steps: &[GrowStep]) -> String {
    let elapsed: u64 = steps.iter().map(|s| s.step_ns).sum();
    let moving: u64 = steps.iter().map(|s| s.move_ns).sum();
    let mut line = format!(
        "bench: grow method={name} rep={rep} from_kib={} to_kib={} steps={} elapsed_ns={elapsed} move_ns={moving} step_ns=",
        GROW_FROM / 1024,
        GROW_TO / 1024,
        steps.len(),
    );
    for (i, step) in steps.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(line, "{sep}{}", step.step_ns);
    }
    line
}

fn result_line(name: &str, threads: usize, rep: usize, m: &Measurement) -> String {
    let first = m.runs.iter().map(|r| r.started_ns).min().unwrap_or(0);
    let last = m.runs.iter().map(|r| r.ended_ns).max().unwrap_or(0);
    let faults: u64 = m.runs.iter().map(|r| r.faults).sum();
    let elapsed = last - first;
    let mut line = format!(
        "bench: scenario={name} threads={threads} rep={rep} faults={faults} elapsed_ns={elapsed} faults_per_s={} minflt={} storm_ops={} per_thread=",
        per_second(faults, elapsed),
        m.minflt,
        m.storm_calls()
    );
    for (i, run) in m.runs.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            line,
            "{sep}{}/{}",
            run.faults,
            run.ended_ns - run.started_ns
        );
    }
    line.push_str(" per_thread_faults_per_s=");
    for (i, run) in m.runs.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            line,
            "{sep}{}",
            per_second(run.faults, run.ended_ns - run.started_ns)
        );
    }
    line
}

/// `count` events in `ns` nanoseconds, per second.
fn per_second(count: u64, ns: u64) -> u64 {
    (u128::from(count) * 1_000_000_000 / u128::from(ns.max(1))) as u64
}

/// The ways the kernel can clear a 4 KiB page (its `page_clear=` option; the same code, from
/// kernel/libs/pageclear), each timed in user space on a page that is already mapped: under
/// `-icount shift=0` a nanosecond is one instruction (every `rep` iteration counts), and under
/// multi-threaded TCG it shows what each costs in emulation. Each figure is the best of several
/// trials: under icount the guest clock also counts whatever else the kernel does meanwhile
/// (interrupts, deferred work after boot).
fn calibrate_clears() -> Result<String, String> {
    const TRIALS: u64 = 8;
    const LOOPS: u64 = 256;
    let page = sys::mmap_anon(PAGE_SIZE, sys::PROT_READ | sys::PROT_WRITE)
        .map_err(|e| format!("mmap: {e}"))?;
    touch(page, 1);
    let time = |method: Option<pageclear::Method>| {
        (0..TRIALS)
            .map(|_| {
                let started = sys::monotonic_ns();
                for _ in 0..LOOPS {
                    match method {
                        // SAFETY: `page` is a mapped, writable 4 KiB page nothing else uses.
                        Some(method) => unsafe { pageclear::clear(method, page as *mut u8) },
                        None => core::hint::black_box(()),
                    }
                }
                (sys::monotonic_ns() - started) / LOOPS
            })
            .min()
            .unwrap_or(0)
    };
    let empty = time(None);
    let mut line = String::from("bench: clear");
    for method in pageclear::Method::ALL {
        let ns = time(Some(method)).saturating_sub(empty);
        let _ = write!(line, " {}={ns}", method.name());
    }
    let _ = sys::munmap(page, PAGE_SIZE);
    Ok(line)
}

/// Trials of [`settle`]'s loop in a row that must agree with the quickest one.
const SETTLE_STREAK: u32 = 25;
/// How far above the quickest trial a trial still counts as quiet: 1% (per mille).
const SETTLE_TOLERANCE_PER_MILLE: u64 = 10;
/// Iterations of one trial: 12 ms of guest time under `-icount shift=0`.
const SETTLE_ITERATIONS: u64 = 2_000_000;
/// The longest `settle` waits, in guest time.
const SETTLE_MAX_NS: u64 = 30_000_000_000;

/// Waits until the guest is quiet, and returns the line that says how long that took.
///
/// Under `-icount shift=0` the guest clock counts the instructions of every CPU (QEMU runs them
/// in turn), so whatever the kernel still does after boot lands in the first measurements:
/// Linux 6.12 and 7.x spend their first seconds on work of their own, and 7.x measured
/// 30 000-40 000 instructions a fault there against 7 400-8 600 later. So a fixed loop runs
/// again and again until [`SETTLE_STREAK`] trials in a row take no longer than the quickest one
/// so far plus [`SETTLE_TOLERANCE_PER_MILLE`]: nothing else ran meanwhile, on any CPU. Under the
/// wall clock the host's noise rarely allows that, which is why only the icount boots ask for
/// it.
fn settle() -> String {
    let started = sys::monotonic_ns();
    let mut quickest = u64::MAX;
    let mut streak = 0;
    let mut trials = 0u64;
    let within = |ns: u64, reference: u64| {
        ns.saturating_mul(1000) <= reference.saturating_mul(1000 + SETTLE_TOLERANCE_PER_MILLE)
    };
    loop {
        let trial_started = sys::monotonic_ns();
        let mut x = 1u64;
        for _ in 0..SETTLE_ITERATIONS {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let now = sys::monotonic_ns();
        let took = now - trial_started;
        trials += 1;
        // A trial is quiet if it and the quickest so far are within the tolerance of each
        // other; a new quickest that is not starts the streak again with itself.
        streak = if within(took.max(quickest), took.min(quickest)) {
            streak + 1
        } else {
            u32::from(took < quickest)
        };
        quickest = quickest.min(took);
        let waited = now - started;
        if streak >= SETTLE_STREAK {
            return format!("bench: settled after_ns={waited} trials={trials} trial_ns={quickest}");
        }
        if waited >= SETTLE_MAX_NS {
            return format!(
                "bench: unsettled after_ns={waited} trials={trials} trial_ns={quickest} last_ns={took}"
            );
        }
    }
}

/// Whether the CPU has enhanced `rep movsb/stosb` (CPUID.7.0:EBX bit 9): Linux then clears
/// pages with `rep stosb`.
fn has_erms() -> bool {
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    leaf7.ebx & (1 << 9) != 0
}

fn release() -> String {
    let mut uts = [0u8; 6 * 65];
    match sys::uname(uts.as_mut_ptr() as usize) {
        Ok(_) => {
            let field = &uts[2 * 65..3 * 65];
            let len = field.iter().position(|&b| b == 0).unwrap_or(65);
            String::from_utf8_lossy(&field[..len]).replace(' ', "_")
        }
        Err(_) => String::from("unknown"),
    }
}

fn main() -> i32 {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench: {e}");
            eprintln!(
                "usage: bench [--poweroff] [scenarios=a,a-procs,a-file,b,c,d-touched,d-untouched,spin,spin-pause] [threads=1,2,..] [pages=N] [rounds=N] [reps=N] [warmup=N] [calibrate=1] [settle=1] [forks=VxP,...] [fork_iterations=N] [maps=N] [maps_vmas=V] [grow=1]"
            );
            return 2;
        }
    };
    // Transparent huge pages would turn 512 faults into one on Linux.
    if let Err(e) = sys::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) {
        println!("bench: note: prctl(PR_SET_THP_DISABLE) failed: {e}");
    }
    println!(
        "bench: start release={} cpus={} erms={}",
        release(),
        sys::cpu_count(),
        u8::from(has_erms())
    );
    if options.settle {
        println!("{}", settle());
    }
    let mut status = 0;
    if options.calibrate {
        match calibrate_clears() {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("bench: calibration failed: {e}");
                status = 1;
            }
        }
    }
    // Unreported passes first: the emulator translates the code paths, the allocators and
    // caches settle, and the host has placed the CPUs' threads.
    for _ in 0..options.warmup {
        for &(name, scenario) in &options.scenarios {
            for &threads in &options.threads {
                if let Err(e) = measure(scenario, threads, options.pages, options.rounds) {
                    println!("bench: scenario={name} threads={threads} warm-up failed: {e}");
                    status = 1;
                }
            }
        }
    }
    let mut maps_reads = options.maps;
    if maps_reads > 0 {
        for (fs, e) in urt::init::mount_pseudo_filesystems(&[urt::init::PROC]) {
            println!("bench: note: mount {:?} on {:?}: {e}", fs.fstype, fs.target);
        }
        // A kernel without /proc: said once, and the rest is measured without it.
        if let Err(e) = read_maps(&mut maps_buffer(options.maps_vmas)) {
            println!("bench: maps: /proc/self/maps unavailable ({e})");
            maps_reads = 0;
        }
    }
    if options.grow {
        for (name, way) in GROW_WAYS {
            if let Err(e) = grow(way) {
                println!("bench: grow method={name} warm-up failed: {e}");
                status = 1;
            }
        }
    }
    let mut measurements = 0;
    for rep in 0..options.reps {
        for &(name, scenario) in &options.scenarios {
            for &threads in &options.threads {
                match measure(scenario, threads, options.pages, options.rounds) {
                    Ok(m) => println!("{}", result_line(name, threads, rep, &m)),
                    Err(e) => {
                        println!("bench: scenario={name} threads={threads} rep={rep} failed: {e}");
                        status = 1;
                    }
                }
                measurements += 1;
            }
        }
        for &case in &options.forks {
            match measure_fork(case, options.fork_iterations, rep) {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    println!(
                        "bench: fork vmas={} pages={} rep={rep} failed: {e}",
                        case.vmas, case.pages
                    );
                    status = 1;
                }
            }
            measurements += 1;
        }
        if maps_reads > 0 {
            for line in measure_maps(options.maps_vmas, maps_reads, rep) {
                match line {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        println!("bench: maps {e}");
                        status = 1;
                    }
                }
                measurements += 1;
            }
        }
        if options.grow {
            for (name, way) in GROW_WAYS {
                match grow(way) {
                    Ok(steps) => println!("{}", grow_line(name, rep, &steps)),
                    Err(e) => {
                        println!("bench: grow method={name} rep={rep} failed: {e}");
                        status = 1;
                    }
                }
                measurements += 1;
            }
        }
    }
    println!("bench: done ({measurements} measurements)");
    if options.poweroff {
        urt::ktap::power_off();
    }
    status
}
