//! `leak`: many children, one after another, for the kernel's leak check afterwards.
//!
//! The parent writes one of its [`PAGES`] private pages, forks, writes another (copying it if
//! the child still shares it) and waits for the child. The child checks every page against
//! what the parent had written by the fork, writes two of them (copies on write), maps and
//! writes a fresh page, counts itself in a shared page and exits. Every child must exit 0 and
//! be counted, and `getrusage(RUSAGE_CHILDREN)` must count their faults.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;

use urt::println;
use urt::sys::{self, PAGE_SIZE};

use crate::{Region, pattern, wait};

const PAGES: usize = 8;
const PARENT_TAG: u64 = 0xa00;
const CHILD_TAG: u64 = 0xb00;
const RUSAGE_CHILDREN: usize = -1isize as usize;

pub fn run(children: usize) -> Result<String, String> {
    let map = |pages, shared| Region::map(pages, shared).map_err(|e| format!("mmap: {e}"));
    let private = map(PAGES, false)?;
    let counter = map(1, true)?.at(0, 0);
    let mut expected = [0u64; PAGES];
    let write = |expected: &mut [u64; PAGES], page: usize, value: u64| {
        private.at(page, 0).store(value, Ordering::Relaxed);
        expected[page] = value;
    };
    for page in 0..PAGES {
        write(&mut expected, page, pattern(PARENT_TAG, page as u64));
    }
    for index in 0..children {
        write(
            &mut expected,
            index % PAGES,
            pattern(PARENT_TAG, index as u64),
        );
        let before = expected;
        let pid = sys::fork().map_err(|e| format!("fork {index}: {e}"))?;
        if pid == 0 {
            sys::exit_group(child(private, counter, index, &before));
        }
        write(
            &mut expected,
            (index + 3) % PAGES,
            pattern(PARENT_TAG + 1, index as u64),
        );
        match wait(pid as isize) {
            Ok((_, 0)) => {}
            Ok((_, status)) => return Err(format!("child {index} ended with status {status}")),
            Err(e) => return Err(format!("wait4 for child {index}: {e}")),
        }
        let counted = counter.load(Ordering::Acquire);
        if counted != index as u64 + 1 {
            return Err(format!("after child {index} the shared count is {counted}"));
        }
    }
    for (page, &value) in expected.iter().enumerate() {
        let seen = private.at(page, 0).load(Ordering::Relaxed);
        if seen != value {
            return Err(format!(
                "parent page {page} holds {seen:#x}, expected {value:#x}"
            ));
        }
    }
    // Each child faulted at least three times: two copies on write and a fresh page.
    let mut usage = sys::Rusage::default();
    sys::getrusage(RUSAGE_CHILDREN, &raw mut usage as usize)
        .map_err(|e| format!("getrusage(RUSAGE_CHILDREN): {e}"))?;
    let faults = usage.ru_minflt as usize;
    if faults < 3 * children {
        return Err(format!(
            "getrusage(RUSAGE_CHILDREN) counts {faults} minor faults of {children} children"
        ));
    }
    Ok(format!(
        "{children} children forked, checked and collected; {faults} minor faults"
    ))
}

/// Child `index`: 0 if all is well, 1 if a page held something else, 2 if its own writes did
/// not read back, 3 if it could not map a page.
fn child(
    private: Region,
    counter: &'static core::sync::atomic::AtomicU64,
    index: usize,
    expected: &[u64; PAGES],
) -> i32 {
    for (page, &value) in expected.iter().enumerate() {
        let seen = private.at(page, 0).load(Ordering::Relaxed);
        if seen != value {
            println!(
                "forktorture: leak child {index}: page {page} holds {seen:#x}, expected {value:#x}"
            );
            return 1;
        }
    }
    let mine = pattern(CHILD_TAG, index as u64);
    for page in [index % PAGES, (index + 1) % PAGES] {
        private.at(page, 0).store(mine, Ordering::Relaxed);
        if private.at(page, 0).load(Ordering::Relaxed) != mine {
            return 2;
        }
    }
    let Ok(fresh) = sys::mmap_anon(PAGE_SIZE, sys::PROT_READ | sys::PROT_WRITE) else {
        return 3;
    };
    // SAFETY: the page was just mapped read-write, and this process has one thread.
    let back = unsafe {
        (fresh as *mut u64).write_volatile(mine);
        (fresh as *const u64).read_volatile()
    };
    if back != mine {
        return 2;
    }
    counter.fetch_add(1, Ordering::AcqRel);
    0
}
