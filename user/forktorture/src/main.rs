//! `forktorture MODE [KEY=VALUE...]`: fork(2) under fire, for the kernel's tests
//! (kernel/src/proc/ktests.rs runs every mode and then checks that frames, slab objects, VMAs
//! and sharing counts are back where they were). It runs on Linux too.
//!
//! | mode | what it does |
//! |---|---|
//! | `snapshot [forks=N] [writers=W]` | threads write rising patterns into private, shared and copy-on-write pages while another forks; each child checks that it got one instant of the parent (see [`snapshot`]) |
//! | `vmas [vmas=N] [forks=N]` | forks a process with `N` single-page VMAs of alternating protections; children and parent check each other's pages (see [`vmas`]) |
//! | `churn [forks=N]` | forks while a thread maps, writes, reprotects and unmaps a region of its own; each child checks a stable region and that the churned one is in one state (see [`churn`]) |
//! | `leak [children=N]` | forks `N` children one after another, each touching and writing copy-on-write pages, and waits for each (see [`leak`]) |
//!
//! A child reports what it found in its exit status (0: all well; otherwise bits that say what
//! failed, printed as it fails). The program prints one summary line per mode and exits 0 when
//! every child and every check agreed, 1 when something failed, 2 for bad arguments.

#![no_std]
#![no_main]

extern crate alloc;

mod churn;
mod leak;
mod snapshot;
mod vmas;

use core::sync::atomic::AtomicU64;

use urt::sys::{self, Errno, PAGE_SIZE};
use urt::{eprintln, println};

urt::main!(main);

const USAGE: &str =
    "usage: forktorture snapshot|vmas|churn|leak [forks=N] [writers=N] [vmas=N] [children=N]";

fn main() -> i32 {
    let Some(mode) = urt::start::arg_str(1) else {
        eprintln!("{USAGE}");
        return 2;
    };
    let options = match Options::parse() {
        Ok(options) => options,
        Err(why) => {
            eprintln!("forktorture: {why}\n{USAGE}");
            return 2;
        }
    };
    let started = sys::monotonic_ns();
    let result = match mode {
        "snapshot" => snapshot::run(options.forks.unwrap_or(60), options.writers),
        "vmas" => vmas::run(options.vmas.unwrap_or(10_000), options.forks.unwrap_or(4)),
        "churn" => churn::run(options.forks.unwrap_or(40)),
        "leak" => leak::run(options.children.unwrap_or(1_000)),
        _ => {
            eprintln!("forktorture: unknown mode {mode:?}\n{USAGE}");
            return 2;
        }
    };
    let ms = (sys::monotonic_ns() - started) / 1_000_000;
    match result {
        Ok(summary) => {
            println!("forktorture: {mode}: ok: {summary} ({ms} ms)");
            0
        }
        Err(why) => {
            println!("forktorture: {mode}: FAILED: {why} ({ms} ms)");
            1
        }
    }
}

/// The `KEY=VALUE` arguments after the mode.
#[derive(Default)]
struct Options {
    forks: Option<usize>,
    writers: Option<usize>,
    vmas: Option<usize>,
    children: Option<usize>,
}

impl Options {
    fn parse() -> Result<Options, alloc::string::String> {
        let mut options = Options::default();
        for arg in urt::start::args().skip(1) {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| alloc::format!("{arg:?} is not KEY=VALUE"))?;
            let number = value
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| alloc::format!("{key}: {value:?} is not a positive number"))?;
            match key {
                "forks" => options.forks = Some(number),
                "writers" => options.writers = Some(number),
                "vmas" => options.vmas = Some(number),
                "children" => options.children = Some(number),
                _ => return Err(alloc::format!("unknown option {key:?}")),
            }
        }
        Ok(options)
    }
}

/// `tag` and `count` in one word: whose value it is and how far that writer had got.
pub fn pattern(tag: u64, count: u64) -> u64 {
    (tag << 40) | count
}

/// Anonymous memory that stays mapped until the process ends (nothing ever unmaps a region),
/// read and written one 64-bit word at a time through atomics.
#[derive(Clone, Copy)]
pub struct Region {
    base: usize,
    pages: usize,
}

impl Region {
    /// `pages` fresh pages, read-write: `MAP_SHARED` (shared with the children forked later) or
    /// `MAP_PRIVATE` (copied on write).
    pub fn map(pages: usize, shared: bool) -> Result<Region, Errno> {
        let kind = if shared {
            sys::MAP_SHARED
        } else {
            sys::MAP_PRIVATE
        };
        let base = sys::mmap(
            0,
            pages * PAGE_SIZE,
            sys::PROT_READ | sys::PROT_WRITE,
            kind | sys::MAP_ANONYMOUS,
            usize::MAX,
            0,
        )?;
        Ok(Region { base, pages })
    }

    /// mprotect(2) of the whole region.
    pub fn protect(&self, prot: usize) -> Result<(), Errno> {
        sys::mprotect(self.base, self.pages * PAGE_SIZE, prot).map(|_| ())
    }

    /// madvise(MADV_DONTNEED) of the whole region: it reads as zeroes afterwards.
    pub fn drop_pages(&self) -> Result<(), Errno> {
        sys::madvise(self.base, self.pages * PAGE_SIZE, sys::MADV_DONTNEED).map(|_| ())
    }

    /// The address of `page`.
    pub fn page(&self, page: usize) -> usize {
        assert!(
            page < self.pages,
            "page {page} of a {}-page region",
            self.pages
        );
        self.base + page * PAGE_SIZE
    }

    /// Word `word` (0..512) of `page`.
    pub fn at(&self, page: usize, word: usize) -> &'static AtomicU64 {
        assert!(word < PAGE_SIZE / 8, "word {word} of a page");
        let addr = self.page(page) + word * 8;
        // SAFETY: the address is inside this region (checked above), 8-byte aligned, and the
        // region stays mapped for the rest of the process; its memory is only ever accessed
        // through atomics.
        unsafe { &*(addr as *const AtomicU64) }
    }

    /// A slice of `T` over the start of the region (zeroed memory, which must be a valid `T`).
    pub fn as_slice<T: Zeroable>(&self, count: usize) -> &'static [T] {
        assert!(count * size_of::<T>() <= self.pages * PAGE_SIZE);
        // SAFETY: the region is page-aligned, big enough (checked above), stays mapped for the
        // rest of the process, and holds zeroes or what `T`'s atomics stored there: `T` is made
        // of atomics for which zero is a valid value (the `Zeroable` promise).
        unsafe { core::slice::from_raw_parts(self.base as *const T, count) }
    }
}

/// Types made only of atomic integers and flags: all-zero memory is a valid value, and shared
/// references to it may be used from several threads and processes.
///
/// # Safety
/// Every bit pattern of zeroes must be a valid `Self`, and `Self` must be `Sync`.
pub unsafe trait Zeroable: Sync {}

/// Waits for the child `pid` (or any child for `-1`); returns its pid and its status as a
/// shell shows it: the exit code, or 128 + the signal that killed it.
pub fn wait(pid: isize) -> Result<(usize, i32), Errno> {
    let mut status = 0i32;
    loop {
        match sys::wait4(pid as usize, &raw mut status as usize, 0, 0) {
            Ok(pid) => {
                let signal = status & 0x7f;
                let code = if signal != 0 {
                    128 + signal
                } else {
                    (status >> 8) & 0xff
                };
                return Ok((pid, code));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Lets the other threads (and processes) run for about a millisecond.
pub fn pause() {
    sys::sleep_ns(1_000_000);
}

/// Waits until `done()` holds, polling with `sched_yield`; `false` after `timeout_ns`.
pub fn wait_until(timeout_ns: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = sys::monotonic_ns() + timeout_ns;
    loop {
        if done() {
            return true;
        }
        if sys::monotonic_ns() > deadline {
            return false;
        }
        let _ = sys::sched_yield();
    }
}

/// How long a child or a parent waits for the other side before it calls it a failure: long,
/// for TCG on a busy host.
pub const PATIENCE_NS: u64 = 60_000_000_000;
