//! The per-VMA lock: page faults lock one VMA instead of the whole address space.
//!
//! This is Linux's design as merged in 6.15 ("reimplement per-vma lock as a refcount"), with the
//! fixes that followed (the identity check inside `vma_start_read`, July 2025), written against
//! a small trait for what it needs from the kernel ([`Platform`]: sleep and wake on a hashed wait
//! queue) and from the VMA ([`VmaFields`]). It owns no VMA and no tree: it owns the two lock
//! words embedded in every VMA ([`VmaLock`]) and the per-address-space sequence
//! ([`MmLockSeq`]), and the rules for reading the VMA's other fields around them.
//!
//! # The setting
//!
//! VMAs come from a `TYPESAFE_BY_RCU` slab cache: a freed VMA may be handed out again at once,
//! for another address or another address space, but its memory stays a VMA for as long as
//! any RCU reader may hold a pointer to it. A fault looks its VMA up in the RCU-protected tree
//! with no lock at all, so the pointer it finds may name an object that has since been freed,
//! reused and attached somewhere else. Everything below exists to turn such a pointer into
//! either a VMA that is locked against writers *and* is the one the fault wanted, or a failure
//! that sends the fault to the `mmap_lock` slow path.
//!
//! # `vm_refcnt`: one word, five states
//!
//! `X` is [`VM_REFCNT_EXCLUDE_READERS`] (bit 30). `N` counts readers.
//!
//! | value     | state                                                    | entered by                      |
//! |-----------|----------------------------------------------------------|---------------------------------|
//! | 0         | detached: free in the slab, allocated but not attached, or removed | the slab constructor ([`VmaLock::new`]), [`VmaLock::vma_mark_detached`] |
//! | 1         | attached, no reader                                      | [`VmaLock::vma_mark_attached`] (from 0), the last reader leaving |
//! | 1 + N     | attached, N read references                              | readers ([`vma_start_read`])     |
//! | X + 1 + N | a writer excludes readers and waits for N to reach 0     | [`VmaLock::vma_start_write`]     |
//! | X + N     | a detacher excludes readers and waits for N to reach 0   | [`VmaLock::vma_mark_detached`]   |
//!
//! The transitions, each a single atomic operation:
//!
//! | from          | to        | who                                            | operation              |
//! |---------------|-----------|------------------------------------------------|------------------------|
//! | 0             | 1         | `vma_mark_attached`                            | store, Release         |
//! | 1 + N         | 2 + N     | a reader, if `2 + N <= LIMIT`                  | CAS, Acquire           |
//! | 2 + N         | 1 + N     | a reader leaving                               | fetch_sub, Release     |
//! | 1 + N         | X + 1 + N | `vma_start_write`                              | fetch_add `X`, Acquire |
//! | X + 1 + N     | X + N     | a reader leaving (wakes the writer at `X + 1`) | fetch_sub, Release     |
//! | X + 1         | 1         | `vma_start_write`, after storing `vm_lock_seq` | fetch_sub `X`, Release |
//! | 1             | 0         | `vma_mark_detached`, no reader                 | CAS, Acquire           |
//! | 1 + N, N > 0  | X + N     | `vma_mark_detached`, transient readers         | fetch_add `X − 1`, Acquire |
//! | X + N         | X + N − 1 | a transient reader leaving (wakes at `X`)      | fetch_sub, Release     |
//! | X             | 0         | `vma_mark_detached`, readers gone              | fetch_sub `X`, Relaxed |
//!
//! A reader increments only from `1..LIMIT`: never from 0 (the object is not a live VMA), never
//! with `X` set (someone is draining readers), never beyond [`VM_REFCNT_LIMIT`] (the count would
//! run into `X`). It never waits: every failure sends it to the slow path. The writer's
//! and detacher's waits end because readers only ever leave while `X` is set.
//!
//! Write-locked is *not* a refcount state. A VMA is write-locked while its `vm_lock_seq` equals
//! its address space's [`MmLockSeq`]; the writer holds `X` only while it drains the readers that
//! came before, then stores the sequence and clears `X`. Ending the `mmap_lock` write session
//! advances the sequence, which unlocks every VMA of the address space at once (there is no
//! `vma_end_write`).
//!
//! [`vma_pin`] takes the reader's reference without the sequence checks: it keeps a VMA attached
//! (so not freed or reused) even while it is write-locked, which is enough to copy fields that a
//! kernel changes only while a VMA is detached (a `/proc/PID/maps` reader that a storm of writers
//! would otherwise starve). It excludes nothing else of the writer's.
//!
//! # Who may read and write each field
//!
//! | field | written by | read reliably by | read racily by |
//! |-------|------------|------------------|----------------|
//! | `vm_refcnt` | readers (+1/−1); the `mmap_lock` writer (attach, `X`, detach) | anyone: it is the word every check starts from | — |
//! | `vm_lock_seq` | the `mmap_lock` writer, while it holds `X` or while the VMA is detached | the `mmap_lock` holder; a reader holding a reference | anyone, for the early bail-out only |
//! | [`MmLockSeq`] | the `mmap_lock` writer (begin/end of its session) | the `mmap_lock` holder; a reader's re-check (Acquire) | anyone, for the early bail-out only |
//! | the VMA's own fields: start, end, owning mm, flags, … | the `mmap_lock` writer: after `vma_start_write`, or before attaching a new VMA | the `mmap_lock` holder; a reader *after* its Acquire increment (Relaxed loads suffice) | a stale reader before the increment: nothing it loads then may be trusted |
//!
//! In Rust every field that a stale reader may load while a writer stores it is an atomic,
//! including the VMA's own fields: a reader holding a pointer from the tree may load them at any
//! moment, it only must not *trust* them before the increment.
//!
//! # Memory ordering
//!
//! | operation | ordering | pairs with | why |
//! |-----------|----------|------------|-----|
//! | early check: `vm_lock_seq`, `mm_lock_seq` | Relaxed | — | a hint; a wrong answer costs one increment or one fallback |
//! | reader increment (CAS) | Acquire | attach's Release store; the writer's Release clear of `X` | the identity and range loads after it see the fields stored before the attach, and the `vm_lock_seq` stored before the clear |
//! | identity loads after the increment (mm, start, end) and `vm_lock_seq` | Relaxed | ordered by the increment | — |
//! | reader's re-check of `mm_lock_seq` | Acquire | [`MmLockSeq::mmap_write_unlock`]'s Release | a VMA just unlocked is read with the writer's changes (Jann Horn's 2023 fix) |
//! | reader decrement | Release | the writer's and detacher's Acquire loads | whatever the reader read under the lock happens before the writer changes it |
//! | attach: store 1 | Release | the reader's Acquire increment | fields initialised before the attach are seen by whoever increments (seed case 3) |
//! | writer: `+X` | Acquire | readers' Release decrements | if it already reads `X+1`, no wait follows to order the writer after them |
//! | writer/detacher wait: load | Acquire | readers' Release decrements | as above |
//! | writer: `vm_lock_seq` store | Relaxed | published by the clear | — |
//! | writer: clear `X` (`−X`) | Release | the reader's Acquire increment | a reader that gets in after the clear sees the new `vm_lock_seq` and backs off |
//! | detach: CAS 1→0, or `+X−1` | Acquire | transient readers' Release decrements | their loads happen before the object is reused |
//! | detacher: `−X` | Relaxed | — | nobody can increment from 0; nothing is published |
//! | [`MmLockSeq::mmap_write_lock`] | Relaxed | — | nothing to publish: each VMA write lock publishes itself with its Release clear |
//! | [`MmLockSeq::mmap_write_unlock`] | Release | the reader's Acquire re-check | the writer's changes to VMAs are visible to readers that see them unlocked |
//!
//! Every store to `vm_refcnt` other than attach is a read-modify-write, so the release
//! sequence of an attach or of a clear of `X` continues through the readers' increments and
//! decrements: a reader whose increment reads any later value still synchronises with them.
//!
//! # Waiting without touching the address space
//!
//! Writers and detachers sleep through [`Platform::wait_until`] on a key that is the address of
//! the VMA's [`VmaLock`], and re-check `vm_refcnt` after every wake-up. A reader dropping its
//! reference computes that key *before* the decrement and afterwards touches nothing of the
//! VMA: after the decrement the VMA may be detached, freed and reused by another address space
//! whose `mm` is gone. Linux's July 2025 use-after-free came from a reader that woke the writer
//! through the VMA's `mm` (`rcuwait` in `mm_struct`); keyed by the VMA's address there is no
//! `mm` to pin.
//!
//! # What the caller (the kernel) guarantees
//!
//! * Every writer-side operation ([`VmaLock::vma_start_write`], attach, detach, changing a VMA's
//!   fields) runs with the address space's `mmap_lock` held for writing, between
//!   [`MmLockSeq::mmap_write_lock`] and [`MmLockSeq::mmap_write_unlock`]. The crate cannot
//!   check the `mmap_lock`; it debug-asserts that a write session is open.
//! * A new VMA is write-locked before it is attached, and attached only after all its fields
//!   are set; it is inserted into the tree after the attach.
//! * A VMA is removed from the tree, detached ([`VmaLock::vma_mark_detached`]), then freed;
//!   nothing frees an attached VMA (the slab's free check can use
//!   [`VmaLock::is_constructed_state`]). Tearing down an address space detaches every VMA too.
//! * Duplicating a VMA copies its fields one by one and never the lock words
//!   ([`vm_area_init_from`]; [`VmaLock`] is deliberately neither `Clone` nor `Copy`).
//! * [`lock_vma_under_rcu`] and [`vma_start_read`] run inside an RCU read section that covers
//!   the lookup and the call; a successful [`ReadLocked`] may outlive the section, since the
//!   reference keeps the VMA attached and so allocated.
//!
//! # Testing
//!
//! Atomics come from the `ksync` shim, so `--cfg loom` swaps them for loom's: `tests/loom.rs`
//! checks the protocol, including Linux's three object-reuse cases and its later bugs, and
//! `tests/stress.rs` runs it on real threads. One model, `fork_vs_write_fault`, checks a rule
//! for the kernel rather than for this crate: fork must write-lock each parent VMA
//! ([`VmaLock::vma_start_write`]) before it write-protects and shares the VMA's pages. A write
//! fault under the VMA lock reuses a read-only page in place when its mapper count says the
//! parent owns it alone; without the write lock it can read the count before fork raises it and
//! make the entry writable after fork has shared the page, and the parent's next write changes
//! the child's memory (Linux 6.4's "fork: lock VMAs of the parent process when forking"). The
//! model passes with the write lock and fails under `--cfg vmalock_break="fork_no_write_lock"`,
//! which removes it from the model's fork. Each check above can be removed with
//! `--cfg vmalock_break="NAME"` (the `broken!` sites), and in loom builds also at run time with
//! the environment variable `VMALOCK_BREAK=NAME`; `cargo xtask check-breaks` (part of `cargo
//! xtask test`; `check-breaks.sh` is a shortcut) shows that every one of them makes a loom model
//! fail.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// True when this build deliberately removes the named check (`--cfg vmalock_break="name"`), so
/// that a test can show that it catches the hole. Never set for a real build, which has no
/// run-time check here.
#[cfg(not(loom))]
macro_rules! broken {
    ($name:literal) => {
        cfg!(vmalock_break = $name)
    };
}

/// Under loom the check can also be removed at run time ([`loom_break_selected`]), so that one
/// build of the models serves every break of the mutation check.
#[cfg(loom)]
macro_rules! broken {
    ($name:literal) => {
        cfg!(vmalock_break = $name) || $crate::loom_break_selected($name)
    };
}

#[cfg(loom)]
extern crate std;

/// Loom builds only: whether this run removes the check `name`, named by the environment
/// variable `VMALOCK_BREAK` (read once). The mutation check (`cargo xtask check-breaks`) runs
/// one loom build of the models once per break this way, instead of building the crate once
/// per `--cfg vmalock_break`. The loom models use it for the break that lives in the model
/// itself (`fork_no_write_lock`).
#[cfg(loom)]
#[doc(hidden)]
pub fn loom_break_selected(name: &str) -> bool {
    static SELECTED: std::sync::OnceLock<Option<std::string::String>> = std::sync::OnceLock::new();
    SELECTED
        .get_or_init(|| std::env::var("VMALOCK_BREAK").ok())
        .as_deref()
        == Some(name)
}

mod lock;
mod platform;
mod read;
mod sync;

#[cfg(all(test, not(loom)))]
mod tests;
// The unit tests share the integration tests' fixture (tests/common), which names the crate.
#[cfg(all(test, not(loom)))]
extern crate self as vmalock;

pub use lock::{MmLockSeq, VM_LOCK_SEQ_NEVER, VM_REFCNT_EXCLUDE_READERS, VM_REFCNT_LIMIT, VmaLock};
pub use platform::{DelayPoint, Platform};
pub use read::{
    Fallback, Found, LockFail, MmIdentity, Pinned, ReadLocked, VmaCopy, VmaFields,
    lock_vma_under_rcu, vm_area_init_from, vma_end_read, vma_pin, vma_start_read,
};
