//! Page faults on every CPU while another thread changes the neighbouring ranges.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use urt::sys::{self, PAGE_SIZE};
use urt::{check, check_eq, check_ok, diag};

use urt::ktap::TestResult;

const PAGES: usize = 16;
const ITERS: usize = 300;
/// A worker's slot: a free page, its PAGES pages, a free page.
const SLOT: usize = PAGES + 2;

/// One thread per CPU writes a per-page pattern into its own pages and reads it back,
/// dropping them with MADV_DONTNEED every round so that every round faults them in again,
/// while one more thread maps, mprotects and unmaps the free pages right next to each
/// worker's range (so the kernel merges and splits the areas around the faulting ones).
/// Every word must read back as written, and no thread may die of a fault.
pub fn stress_fault_vs_mmap() -> TestResult {
    let workers = sys::cpu_count().clamp(2, 8);
    // A PROT_NONE fence page at each end keeps other mappings (thread stacks) out of the
    // free pages between the slots.
    let len = (workers * SLOT + 2) * PAGE_SIZE;
    let fenced = check_ok!(sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE));
    check_ok!(sys::mprotect(fenced, PAGE_SIZE, sys::PROT_NONE));
    check_ok!(sys::mprotect(
        fenced + len - PAGE_SIZE,
        PAGE_SIZE,
        sys::PROT_NONE
    ));
    let base = fenced + PAGE_SIZE;
    for w in 0..workers {
        let slot = base + w * SLOT * PAGE_SIZE;
        check_ok!(sys::munmap(slot, PAGE_SIZE));
        check_ok!(sys::munmap(slot + (SLOT - 1) * PAGE_SIZE, PAGE_SIZE));
    }
    static STOP: AtomicBool = AtomicBool::new(false);
    static CHURN: AtomicU64 = AtomicU64::new(0);
    STOP.store(false, Ordering::Relaxed);
    CHURN.store(0, Ordering::Relaxed);

    let churn = urt::thread::spawn(move || {
        let mut errors = 0u64;
        let mut i = 0usize;
        while !STOP.load(Ordering::Relaxed) {
            let w = i % workers;
            let gap = base
                + w * SLOT * PAGE_SIZE
                + if i % 2 == 0 {
                    0
                } else {
                    (SLOT - 1) * PAGE_SIZE
                };
            i += 1;
            let Ok(got) = sys::mmap(
                gap,
                PAGE_SIZE,
                sys::PROT_READ | sys::PROT_WRITE,
                sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE,
                usize::MAX,
                0,
            ) else {
                errors += 1;
                continue;
            };
            // SAFETY: the gap page is mapped read-write by this thread alone.
            unsafe { (got as *mut u64).write_volatile(i as u64) };
            if sys::mprotect(got, PAGE_SIZE, sys::PROT_READ).is_err() {
                errors += 1;
            }
            // SAFETY: still mapped, readable.
            if unsafe { (got as *const u64).read_volatile() } != i as u64 {
                errors += 1;
            }
            if sys::munmap(got, PAGE_SIZE).is_err() {
                errors += 1;
            }
            CHURN.fetch_add(1, Ordering::Relaxed);
        }
        errors
    });

    let handles: Vec<_> = (0..workers)
        .map(|w| {
            urt::thread::spawn(move || {
                let start = base + (w * SLOT + 1) * PAGE_SIZE;
                let mut bad = 0u64;
                for iter in 0..ITERS {
                    if sys::madvise(start, PAGES * PAGE_SIZE, sys::MADV_DONTNEED).is_err() {
                        bad += 1;
                    }
                    let pattern = |page: usize, word: usize| {
                        ((w as u64) << 56)
                            ^ ((iter as u64) << 24)
                            ^ ((page as u64) << 12)
                            ^ word as u64
                    };
                    for page in 0..PAGES {
                        let p = (start + page * PAGE_SIZE) as *mut u64;
                        for word in (0..PAGE_SIZE / 8).step_by(64) {
                            // SAFETY: this worker's own read-write pages.
                            unsafe { p.add(word).write_volatile(pattern(page, word)) };
                        }
                    }
                    for page in 0..PAGES {
                        let p = (start + page * PAGE_SIZE) as *const u64;
                        for word in (0..PAGE_SIZE / 8).step_by(64) {
                            // SAFETY: as above.
                            if unsafe { p.add(word).read_volatile() } != pattern(page, word) {
                                bad += 1;
                            }
                        }
                    }
                }
                bad
            })
        })
        .collect();
    let bad: u64 = handles.into_iter().map(|h| h.join()).sum();
    STOP.store(true, Ordering::Relaxed);
    let churn_errors = churn.join();
    let _ = sys::munmap(fenced, len);
    let ops = CHURN.load(Ordering::Relaxed);
    diag!(
        "stress: {workers} workers x {ITERS} rounds x {PAGES} pages, {ops} map/protect/unmap cycles next to them"
    );
    check_eq!(bad, 0, "words read back wrong");
    check_eq!(
        churn_errors,
        0,
        "mmap/mprotect/munmap of the free neighbours failed"
    );
    check!(ops > 0, "the churn thread never ran");
    Ok(())
}
