//! `vmas`: fork of a process with thousands of VMAs.
//!
//! One region of `count` pages, each written with its own value, then every other page made
//! read-only, so that the region is `count` single-page VMAs of alternating protections (none
//! can merge with its neighbour). The process forks `forks` times, one child at a time. Each
//! child checks every page against what the parent had written by the fork, then writes every
//! eighth writable page and reads it back. Meanwhile the parent writes every sixteenth page
//! (some of the same pages: both sides copy), and after the child has ended checks that every
//! page holds what it wrote itself.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;

use urt::println;
use urt::sys::{self, PAGE_SIZE};

use crate::{Region, pattern, wait};

const TAG: u64 = 0x500;
const PARENT_TAG: u64 = 0x600;
const CHILD_TAG: u64 = 0x700;

/// The value of `page` in the parent once it has written `rounds` rounds.
fn parent_value(page: usize, rounds: usize) -> u64 {
    if page % 16 == 0 && rounds > 0 {
        pattern(PARENT_TAG + rounds as u64 - 1, page as u64)
    } else {
        pattern(TAG, page as u64)
    }
}

pub fn run(count: usize, forks: usize) -> Result<String, String> {
    let region = Region::map(count, false).map_err(|e| format!("mmap of {count} pages: {e}"))?;
    for page in 0..count {
        region
            .at(page, 0)
            .store(parent_value(page, 0), Ordering::Relaxed);
    }
    for page in (1..count).step_by(2) {
        sys::mprotect(region.page(page), PAGE_SIZE, sys::PROT_READ)
            .map_err(|e| format!("mprotect of page {page}: {e}"))?;
    }
    for round in 0..forks {
        let pid = sys::fork().map_err(|e| format!("fork {round}: {e}"))?;
        if pid == 0 {
            sys::exit_group(child(region, count, round));
        }
        for page in (0..count).step_by(16) {
            region
                .at(page, 0)
                .store(parent_value(page, round + 1), Ordering::Relaxed);
        }
        match wait(pid as isize) {
            Ok((_, 0)) => {}
            Ok((_, status)) => return Err(format!("child {round} ended with status {status}")),
            Err(e) => return Err(format!("wait4: {e}")),
        }
        if let Some(page) = (0..count)
            .find(|&p| region.at(p, 0).load(Ordering::Relaxed) != parent_value(p, round + 1))
        {
            return Err(format!(
                "after child {round}, parent page {page} holds {:#x}, expected {:#x}",
                region.at(page, 0).load(Ordering::Relaxed),
                parent_value(page, round + 1)
            ));
        }
    }
    Ok(format!(
        "{forks} forks of {count} single-page VMAs, every page checked on both sides"
    ))
}

/// The child of round `round`: 0 if all is well, 1 if a page held something else, 2 if its
/// own write did not read back.
fn child(region: Region, count: usize, round: usize) -> i32 {
    if let Some(page) =
        (0..count).find(|&p| region.at(p, 0).load(Ordering::Relaxed) != parent_value(p, round))
    {
        println!(
            "forktorture: vmas child {round}: page {page} holds {:#x}, expected {:#x}",
            region.at(page, 0).load(Ordering::Relaxed),
            parent_value(page, round)
        );
        return 1;
    }
    let mine = |page: usize| pattern(CHILD_TAG + round as u64, page as u64);
    for page in (0..count).step_by(8) {
        region.at(page, 0).store(mine(page), Ordering::Relaxed);
    }
    if let Some(page) = (0..count)
        .step_by(8)
        .find(|&p| region.at(p, 0).load(Ordering::Relaxed) != mine(p))
    {
        println!("forktorture: vmas child {round}: its write to page {page} did not read back");
        return 2;
    }
    0
}
