//! `churn`: fork beside a thread that keeps changing the address space.
//!
//! A thread maps slots of [`SLOT_PAGES`] pages at fixed addresses (with gaps, so that they
//! never merge), writes its generation into each page in order, then makes one page read-only
//! or inaccessible, or unmaps the slot again; each turn of a slot first unmaps it. Meanwhile the
//! main thread forks, one child at a time. Fork takes the address space's lock for writing, so
//! each child must see every slot in one state: wholly unmapped, or mapped with the pages of
//! one generation, written up to some page and untouched (zero) after it. It finds out which
//! pages are mapped with `mprotect` (`ENOMEM`: nothing mapped there), which also makes the
//! inaccessible ones readable. A stable region, written before the first fork, must read back
//! exactly.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use urt::println;
use urt::sys::{self, Errno, PAGE_SIZE};

use crate::{Region, pattern, pause, wait};

const STABLE_PAGES: usize = 32;
const STABLE_TAG: u64 = 0x800;
const SLOTS: usize = 8;
const SLOT_PAGES: usize = 4;
const SLOT_TAG: u64 = 0x900;
/// Far from where either kernel puts mappings of its own choosing.
const AREA: usize = 0x5100_0000_0000;

fn slot_addr(slot: usize) -> usize {
    AREA + slot * 2 * SLOT_PAGES * PAGE_SIZE
}

fn stable_value(page: usize, word: usize) -> u64 {
    pattern(STABLE_TAG, (page * 512 + word) as u64)
}

pub fn run(forks: usize) -> Result<String, String> {
    let stable = Region::map(STABLE_PAGES, false).map_err(|e| format!("mmap: {e}"))?;
    for page in 0..STABLE_PAGES {
        for word in [0, 511] {
            stable
                .at(page, word)
                .store(stable_value(page, word), Ordering::Relaxed);
        }
    }
    static STOP: AtomicBool = AtomicBool::new(false);
    static GENERATIONS: AtomicU64 = AtomicU64::new(0);
    let churner = urt::thread::Builder::new()
        .stack_size(16 * 1024)
        .spawn(|| churn(&STOP, &GENERATIONS))
        .map_err(|e| format!("the churn thread: {e}"))?;
    let mut result = Ok(());
    for round in 0..forks {
        let pid = match sys::fork() {
            Ok(pid) => pid,
            Err(e) => {
                result = Err(format!("fork {round}: {e}"));
                break;
            }
        };
        if pid == 0 {
            sys::exit_group(child(stable, round));
        }
        match wait(pid as isize) {
            Ok((_, 0)) => {}
            Ok((_, status)) => {
                result = Err(format!("child {round} ended with status {status}"));
                break;
            }
            Err(e) => {
                result = Err(format!("wait4: {e}"));
                break;
            }
        }
        // Let the churn go on between forks.
        pause();
    }
    STOP.store(true, Ordering::Relaxed);
    churner.join()?;
    result?;
    Ok(format!(
        "{forks} forks beside {} generations of mmap, write, mprotect and munmap",
        GENERATIONS.load(Ordering::Relaxed)
    ))
}

/// The churn thread: turns of slots until `stop`, counting generations.
fn churn(stop: &AtomicBool, generations: &AtomicU64) -> Result<(), String> {
    let len = SLOT_PAGES * PAGE_SIZE;
    let mut generation = 0u64;
    while !stop.load(Ordering::Relaxed) {
        generation += 1;
        let slot = generation as usize % SLOTS;
        let addr = slot_addr(slot);
        sys::munmap(addr, len).map_err(|e| format!("churn munmap: {e}"))?;
        let rw = sys::PROT_READ | sys::PROT_WRITE;
        let flags = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE;
        match sys::mmap(addr, len, rw, flags, usize::MAX, 0) {
            Ok(at) if at == addr => {}
            Ok(at) => return Err(format!("churn mmap at {addr:#x} landed at {at:#x}")),
            Err(e) => return Err(format!("churn mmap at {addr:#x}: {e}")),
        }
        let value = pattern(SLOT_TAG + slot as u64, generation);
        for page in 0..SLOT_PAGES {
            let word = (addr + page * PAGE_SIZE) as *mut u64;
            // SAFETY: this thread mapped the slot read-write just now, and only it unmaps it.
            let back = unsafe {
                word.write_volatile(value);
                word.read_volatile()
            };
            if back != value {
                return Err(format!("churn: wrote {value:#x}, read {back:#x}"));
            }
        }
        match generation % 3 {
            0 => sys::mprotect(addr + PAGE_SIZE, PAGE_SIZE, sys::PROT_READ),
            1 => sys::mprotect(addr + 2 * PAGE_SIZE, PAGE_SIZE, sys::PROT_NONE),
            _ => sys::munmap(addr, len),
        }
        .map_err(|e| format!("churn mprotect or munmap: {e}"))?;
        generations.store(generation, Ordering::Relaxed);
    }
    Ok(())
}

/// The child of round `round`: 0 if all is well, 1 for the stable region, 2 for a slot in no
/// single state, 3 for an unexpected error.
fn child(stable: Region, round: usize) -> i32 {
    for page in 0..STABLE_PAGES {
        for word in [0, 511] {
            let value = stable.at(page, word).load(Ordering::Relaxed);
            if value != stable_value(page, word) {
                println!(
                    "forktorture: churn child {round}: stable page {page} word {word} holds \
                     {value:#x}"
                );
                return 1;
            }
        }
    }
    for slot in 0..SLOTS {
        match slot_state(slot) {
            Ok(()) => {}
            Err((status, why)) => {
                println!("forktorture: churn child {round}: slot {slot}: {why}");
                return status;
            }
        }
    }
    0
}

/// Checks that slot `slot` is in one state (see the module documentation).
fn slot_state(slot: usize) -> Result<(), (i32, String)> {
    let mut mapped = [false; SLOT_PAGES];
    let mut values = [0u64; SLOT_PAGES];
    for page in 0..SLOT_PAGES {
        let addr = slot_addr(slot) + page * PAGE_SIZE;
        match sys::mprotect(addr, PAGE_SIZE, sys::PROT_READ) {
            Ok(_) => {
                mapped[page] = true;
                // SAFETY: the page is mapped and readable now, and this process has one
                // thread: nothing unmaps it meanwhile.
                values[page] = unsafe { (addr as *const u64).read_volatile() };
            }
            Err(Errno::ENOMEM) => {}
            Err(e) => return Err((3, format!("mprotect: {e}"))),
        }
    }
    if mapped.iter().all(|&m| !m) {
        return Ok(());
    }
    if !mapped.iter().all(|&m| m) {
        return Err((2, format!("partly mapped: {mapped:?}")));
    }
    // One generation's value up to some page, zeroes after it.
    let first = values[0];
    let tag_ok = first == 0 || first >> 40 == SLOT_TAG + slot as u64;
    let written = values.iter().take_while(|&&v| v == first && v != 0).count();
    if !tag_ok || values[written..].iter().any(|&v| v != 0) {
        return Err((2, format!("pages hold {values:#x?}")));
    }
    Ok(())
}
