//! A faulter: maps a region of its own and, until the editors are done, writes, reads back,
//! drops (`MADV_DONTNEED`) and re-protects it, so that page faults run on every CPU while the
//! editors change the address space beside it. Only this thread touches its region.

use core::sync::atomic::Ordering;

use urt::sys::{self, MADV_DONTNEED, PAGE_SIZE, PROT_READ, PROT_WRITE};

use super::{STOP, mismatch, start_together};
use crate::rng::Rng;

/// The pages of a faulter's region.
const REGION_PAGES: usize = 16;

pub fn run(seed: u64, index: usize, everyone: usize) {
    let mut rng = Rng::new(seed ^ 0xfa17_0000 ^ index as u64);
    let len = REGION_PAGES * PAGE_SIZE;
    let region = sys::mmap_anon(len, PROT_READ | PROT_WRITE);
    start_together(everyone);
    let Ok(region) = region else {
        mismatch(format_args!("faulter {index}: mmap of its region failed"));
        return;
    };
    let page = |i: usize| (region + i * PAGE_SIZE) as *mut u64;
    let mut round = 0u64;
    while !STOP.load(Ordering::Acquire) {
        round += 1;
        let base = rng.next_u64() | 1;
        for i in 0..REGION_PAGES {
            // SAFETY: the region is this thread's, mapped read-write (restored below after
            // every read-only spell).
            unsafe { page(i).write_volatile(base.wrapping_add(i as u64)) };
        }
        let protect = round.is_multiple_of(8);
        if protect && sys::mprotect(region, len, PROT_READ).is_err() {
            mismatch(format_args!(
                "faulter {index}: mprotect({region:#x}, READ) failed"
            ));
        }
        for i in 0..REGION_PAGES {
            // SAFETY: as above; reading is allowed read-only too.
            let got = unsafe { page(i).read_volatile() };
            let want = base.wrapping_add(i as u64);
            if got != want {
                mismatch(format_args!(
                    "faulter {index} round {round}: page {:#x}: expected {want:#x}, got {got:#x}",
                    page(i) as usize
                ));
            }
        }
        if protect && sys::mprotect(region, len, PROT_READ | PROT_WRITE).is_err() {
            mismatch(format_args!(
                "faulter {index}: mprotect({region:#x}, RW) failed"
            ));
            return;
        }
        if round.is_multiple_of(4) {
            if sys::madvise(region, len, MADV_DONTNEED).is_err() {
                mismatch(format_args!("faulter {index}: madvise(DONTNEED) failed"));
            }
            for i in 0..REGION_PAGES {
                // SAFETY: as above.
                let got = unsafe { page(i).read_volatile() };
                if got != 0 {
                    mismatch(format_args!(
                        "faulter {index} round {round}: page {:#x} after DONTNEED: expected 0, got {got:#x}",
                        page(i) as usize
                    ));
                }
            }
        }
    }
    let _ = sys::munmap(region, len);
}
