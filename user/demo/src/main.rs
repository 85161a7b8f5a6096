//! `demo [THREADS] [ROUNDS] [PAGES]`: page faults on every CPU while the address space changes.
//!
//! THREADS workers (default: the CPUs sched_getaffinity allows) each map a private anonymous
//! region of PAGES pages (default 64), write a pattern into every page (each first write is a
//! page fault), read it back, unmap it, and do that ROUNDS times (default 20). One more thread
//! keeps mapping, mprotecting and unmapping small unrelated regions until the workers are done.
//! Each worker notes the CPU it runs on (getcpu) right before each page's fault. At the end: a
//! table per thread, the faults on each CPU, the minor faults of getrusage(RUSAGE_SELF), and
//! `demo: N threads, M faults, CPUs used: {0,1,2,3}`. Exit status 1 if any page read back wrong.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use urt::sys::{self, PAGE_SIZE};
use urt::{eprintln, println};

urt::main!(main);

/// CPUs counted apart; getcpu numbers beyond fold onto them (as in the masks of CPUs).
const MAX_CPUS: usize = 64;

struct Report {
    tid: u32,
    rounds: usize,
    pages: u64,
    /// Faults (first writes to fresh pages) by the CPU getcpu named right before each.
    faults_by_cpu: [u64; MAX_CPUS],
    ms: u64,
    errors: u64,
}

impl Report {
    /// The CPUs this thread faulted on, as a mask.
    fn cpus(&self) -> u64 {
        (0..MAX_CPUS)
            .filter(|&cpu| self.faults_by_cpu[cpu] != 0)
            .fold(0, |mask, cpu| mask | 1 << cpu)
    }
}

fn arg(i: usize, default: usize) -> Result<usize, String> {
    match urt::start::arg_str(i) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(alloc::format!(
                "argument {i} ({text:?}) is not a positive number"
            )),
        },
    }
}

fn cpu_set(mask: u64) -> String {
    let mut text = String::from("{");
    for cpu in (0..64).filter(|c| mask & (1 << c) != 0) {
        if text.len() > 1 {
            text.push(',');
        }
        let _ = write!(text, "{cpu}");
    }
    text.push('}');
    text
}

fn worker(index: usize, rounds: usize, pages: usize) -> Report {
    let started = sys::monotonic_ns();
    let tid = sys::gettid() as u32;
    let (mut touched, mut errors) = (0u64, 0u64);
    let mut faults_by_cpu = [0u64; MAX_CPUS];
    for round in 0..rounds {
        let len = pages * PAGE_SIZE;
        let base = match sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE) {
            Ok(base) => base,
            Err(e) => {
                eprintln!("demo: thread {index}: mmap failed: {e}");
                errors += 1;
                continue;
            }
        };
        let pattern = |page: usize, word: usize| {
            ((index as u64) << 48) ^ ((round as u64) << 32) ^ ((page as u64) << 12) ^ word as u64
        };
        let words = PAGE_SIZE / 8;
        for page in 0..pages {
            // The thread may move between CPUs at any time: ask right before the fault.
            if let Some(cpu) = sys::current_cpu() {
                faults_by_cpu[cpu as usize % MAX_CPUS] += 1;
            }
            let p = (base + page * PAGE_SIZE) as *mut u64;
            for word in [0, words / 2, words - 1] {
                // SAFETY: inside the fresh read-write mapping.
                unsafe { p.add(word).write_volatile(pattern(page, word)) };
            }
            touched += 1;
        }
        for page in 0..pages {
            let p = (base + page * PAGE_SIZE) as *const u64;
            for word in 0..words {
                // SAFETY: as above.
                let got = unsafe { p.add(word).read_volatile() };
                let want = if word == 0 || word == words / 2 || word == words - 1 {
                    pattern(page, word)
                } else {
                    0
                };
                if got != want {
                    errors += 1;
                }
            }
        }
        let _ = sys::munmap(base, len);
    }
    Report {
        tid,
        rounds,
        pages: touched,
        faults_by_cpu,
        ms: (sys::monotonic_ns() - started) / 1_000_000,
        errors,
    }
}

fn main() -> i32 {
    let (threads, rounds, pages) = match (arg(1, sys::cpu_count()), arg(2, 20), arg(3, 64)) {
        (Ok(t), Ok(r), Ok(p)) => (t, r, p),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("demo: {e}; usage: demo [THREADS] [ROUNDS] [PAGES]");
            return 2;
        }
    };
    println!(
        "demo: {threads} threads x {rounds} rounds x {pages} pages, plus one mmap/mprotect/munmap thread"
    );
    let faults_before = sys::minor_faults();
    let started = sys::monotonic_ns();

    static DONE: AtomicBool = AtomicBool::new(false);
    static CHURN_OPS: AtomicU64 = AtomicU64::new(0);
    let churn = urt::thread::spawn(|| {
        let started = sys::monotonic_ns();
        let mut cpus = 0u64;
        let mut i = 0usize;
        // The churn maps inside an arena of its own, fenced by an inaccessible page at each
        // end: a mapping next to a worker's with the same protection would merge with it, and
        // each change to the merged VMA would then lock the worker's pages too.
        let Ok(arena) = sys::mmap_anon(6 * PAGE_SIZE, sys::PROT_NONE) else {
            return (cpus, 0);
        };
        let inside = arena + PAGE_SIZE;
        let fixed = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED;
        while !DONE.load(Ordering::Relaxed) {
            if let Some(cpu) = sys::current_cpu() {
                cpus |= 1u64 << (cpu % 64);
            }
            let len = (1 + i % 4) * PAGE_SIZE;
            let rw = sys::PROT_READ | sys::PROT_WRITE;
            if let Ok(addr) = sys::mmap(inside, len, rw, fixed, usize::MAX, 0) {
                let _ = sys::mprotect(addr, PAGE_SIZE, sys::PROT_READ);
                let _ = sys::mprotect(addr, len, sys::PROT_NONE);
                let _ = sys::munmap(addr, len);
                CHURN_OPS.fetch_add(4, Ordering::Relaxed);
            }
            i += 1;
            if i % 16 == 0 {
                let _ = sys::sched_yield();
            }
        }
        let _ = sys::munmap(arena, 6 * PAGE_SIZE);
        (cpus, (sys::monotonic_ns() - started) / 1_000_000)
    });
    let workers: Vec<_> = (0..threads)
        .map(|index| urt::thread::spawn(move || worker(index, rounds, pages)))
        .collect();
    let reports: Vec<Report> = workers.into_iter().map(|w| w.join()).collect();
    DONE.store(true, Ordering::Relaxed);
    let (churn_cpus, churn_ms) = churn.join();
    let elapsed_ms = (sys::monotonic_ns() - started) / 1_000_000;
    let minflt = sys::minor_faults().saturating_sub(faults_before);

    println!("thread    tid  rounds  faults  errors  ms      CPUs");
    let (mut total, mut errors, mut all_cpus) = (0u64, 0u64, churn_cpus);
    let mut faults_by_cpu = [0u64; MAX_CPUS];
    for (i, r) in reports.iter().enumerate() {
        println!(
            "{:<6} {:>6}  {:>6}  {:>6}  {:>6}  {:<6}  {}",
            i,
            r.tid,
            r.rounds,
            r.pages,
            r.errors,
            r.ms,
            cpu_set(r.cpus())
        );
        total += r.pages;
        errors += r.errors;
        all_cpus |= r.cpus();
        for (sum, faults) in faults_by_cpu.iter_mut().zip(r.faults_by_cpu) {
            *sum += faults;
        }
    }
    println!(
        "churn  {:>6}  {:>6} mmap/mprotect/munmap calls  {:<6}  {}",
        "",
        CHURN_OPS.load(Ordering::Relaxed),
        churn_ms,
        cpu_set(churn_cpus)
    );
    // Every CPU the process may use (a CPU that saw no fault shows 0), and any other that
    // getcpu named.
    let allowed = sys::cpu_count();
    println!("cpu    faults");
    for (cpu, faults) in faults_by_cpu.iter().enumerate() {
        if cpu < allowed || *faults != 0 {
            println!("{cpu:<6} {faults:>6}");
        }
    }
    println!("elapsed {elapsed_ms} ms, minor faults (getrusage): {minflt}");
    if errors > 0 {
        println!("demo: {errors} words read back wrong");
    }
    println!(
        "demo: {threads} threads, {total} faults, CPUs used: {}",
        cpu_set(all_cpus)
    );
    if errors == 0 { 0 } else { 1 }
}
