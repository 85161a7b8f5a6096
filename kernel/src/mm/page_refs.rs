//! Sharing of user frames: how many holders each frame has beyond the first — page-table
//! entries that map it, and the page cache that holds a file's pages.
//!
//! Fork makes a parent and its child map the same frames (copy-on-write private pages, shared
//! anonymous pages), and mappings of a file map its page cache's frames. A frame is freed only
//! when its last holder lets go, and a write fault on a write-protected private page may keep
//! the page (make its entry writable again) only if nothing else holds it; otherwise it copies.
//!
//! The table holds one counter per frame of usable memory: the number of holders *beyond the
//! first*. Zero — the state of every frame the allocator hands out — means one holder (or
//! none), so a fault that maps a fresh anonymous page never touches the table, and only fork,
//! the frames it shared, and mapped file pages pay for sharing. For a page-cache frame the
//! cache is the first holder, so a mapped one always counts as shared while the cache keeps it
//! (a private mapping's write copies it). The shared zero page is never counted.
//!
//! # Protection
//! The counters are atomics. A holder is added ([`share`]) by fork, which holds the mapping
//! address space's `mmap_lock` for writing and has write-locked the VMA, so a fault that reads
//! the count under that VMA's read lock cannot miss a new sharer of a page it maps; or by a
//! fault that maps a page-cache frame, under the cache's lock while the cache holds the frame
//! (a count that stays above zero for as long as the cache holds it, so nothing decides from
//! it to write the frame in place). A mapping is dropped ([`unshare`], [`release`]) only after
//! its entry was cleared or replaced and the translation shot down, so a count that reaches
//! "one holder" means the remaining holder alone can reach the frame.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, Ordering};

use super::{PhysAddr, frame};

/// Extra mappings per frame number, for frames below `FRAME_LIMIT`.
static EXTRA_MAPPINGS: spin::Once<Box<[AtomicU32]>> = spin::Once::new();

/// Sizes the table to cover physical memory up to `memory_end` (the end of usable memory).
/// Once, at boot, after the heap is up.
pub fn init(memory_end: u64) {
    let frames = memory_end.div_ceil(4096) as usize;
    EXTRA_MAPPINGS.call_once(|| (0..frames).map(|_| AtomicU32::new(0)).collect());
    log::info!(
        "frames: sharing counts for {frames} frames ({} KiB)",
        frames * size_of::<AtomicU32>() / 1024
    );
}

fn counter(phys: PhysAddr) -> &'static AtomicU32 {
    let table = EXTRA_MAPPINGS.get().expect("page_refs::init ran at boot");
    &table[(phys.as_u64() / 4096) as usize]
}

/// Records one more holder of the user frame `phys` (not the zero page).
pub fn share(phys: PhysAddr) {
    debug_assert!(phys != super::zero_page(), "the zero page is not counted");
    counter(phys).fetch_add(1, Ordering::Relaxed);
}

/// Whether a holder of `phys` other than the caller exists.
pub fn is_shared(phys: PhysAddr) -> bool {
    counter(phys).load(Ordering::Acquire) != 0
}

/// Drops one holder of `phys` (a mapping whose entry is gone, cleared or replaced and shot
/// down; or the page cache). Returns `true` when it was the last one: the frame is then the
/// caller's to free.
pub fn unshare(phys: PhysAddr) -> bool {
    let counter = counter(phys);
    let mut extra = counter.load(Ordering::Acquire);
    loop {
        if extra == 0 {
            return true;
        }
        // Release: this mapper's accesses to the frame happen before a later sole owner's
        // reuse (which reads the count with Acquire).
        match counter.compare_exchange_weak(extra, extra - 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return false,
            Err(current) => extra = current,
        }
    }
}

/// Gives up one hold on `phys`: an entry that mapped it and is gone (cleared or replaced, and
/// shot down), or a hold taken for a mapping that was never installed. Frees the frame when
/// that was the last hold.
pub fn release(phys: PhysAddr) {
    if unshare(phys) {
        // SAFETY: the caller's hold was the last: no entry maps the frame (any that did is gone
        // and shot down) and no page cache holds it.
        unsafe { frame::free_user_frames(&[phys]) };
    }
}

/// Frames held more than once (tests check that it returns to its baseline).
#[cfg(feature = "ktest")]
pub fn shared_frames() -> usize {
    EXTRA_MAPPINGS.get().map_or(0, |table| {
        table
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) != 0)
            .count()
    })
}
