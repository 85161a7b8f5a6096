//! The memory system calls: mmap, munmap, mprotect, madvise, brk — with Linux's argument checks
//! and error numbers. Each takes `mmap_lock` for writing around its edit of the address space
//! ([`Mm::write`]; the edits are methods of its guard); `MAP_POPULATE` faults the pages in
//! afterwards, under the read lock, like any fault.

use core::ops::Range;

use super::addrspace::{Edit, MMAP_BASE, MMAP_MIN_ADDR, Mm, MmapLocked};
use super::fault::{self, Access};
use super::vma::{
    VM_ACCESS, VM_BRK, VM_DONTCOPY, VM_EXEC, VM_READ, VM_SHARED, VM_WIPEONFORK, VM_WRITE, Vma,
};
use crate::arch::syscall::USER_END;
use crate::syscall::errno::{EBADF, EEXIST, EINVAL, ENODEV, ENOMEM, EPERM, Errno, SysResult};

pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const PROT_EXEC: u64 = 4;
const PROT_GROWSDOWN: u64 = 0x0100_0000;
const PROT_GROWSUP: u64 = 0x0200_0000;

pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
const MAP_TYPE: u64 = 0x0f;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
const MAP_POPULATE: u64 = 0x8000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

const MADV_NORMAL: u64 = 0;
const MADV_RANDOM: u64 = 1;
const MADV_SEQUENTIAL: u64 = 2;
const MADV_WILLNEED: u64 = 3;
const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;
const MADV_DONTFORK: u64 = 10;
const MADV_DOFORK: u64 = 11;
const MADV_HUGEPAGE: u64 = 14;
const MADV_NOHUGEPAGE: u64 = 15;
const MADV_WIPEONFORK: u64 = 18;
const MADV_KEEPONFORK: u64 = 19;

const PAGE: u64 = 4096;

/// Placement without a hint leaves this much unmapped above each new mapping. Independent
/// mappings are then never adjacent, so they never merge: one thread's mmap or munmap never
/// write-locks another thread's VMA (which would send that thread's faults to `mmap_lock`),
/// and an overrun faults instead of running into the neighbour.
const GUARD_GAP: u64 = PAGE;

fn page_up(len: u64) -> Option<u64> {
    len.checked_add(PAGE - 1).map(|l| l & !(PAGE - 1))
}

/// VMA flags for `prot`, or `EINVAL` for unknown bits.
fn vm_flags(prot: u64) -> Result<u32, Errno> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Err(EINVAL);
    }
    let mut flags = 0;
    if prot & PROT_READ != 0 {
        flags |= VM_READ;
    }
    if prot & PROT_WRITE != 0 {
        flags |= VM_WRITE;
    }
    if prot & PROT_EXEC != 0 {
        flags |= VM_EXEC;
    }
    Ok(flags)
}

pub fn mmap(
    mm: &Mm,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: u64,
    offset: u64,
) -> SysResult {
    if len == 0 {
        return Err(EINVAL);
    }
    let len = page_up(len).filter(|&l| l <= USER_END).ok_or(ENOMEM)?;
    let mut vm = vm_flags(prot)?;
    // Anonymous memory is MAP_PRIVATE or MAP_SHARED; MAP_SHARED_VALIDATE is for files.
    match flags & MAP_TYPE {
        MAP_PRIVATE => {}
        MAP_SHARED => vm |= VM_SHARED,
        _ => return Err(EINVAL),
    }
    if !offset.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    if flags & MAP_ANONYMOUS == 0 {
        // No files: the console (fds 0-2) cannot be mapped, other descriptors do not exist.
        return Err(if (fd as i64) >= 0 && fd <= 2 {
            ENODEV
        } else {
            EBADF
        });
    }
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if fixed && !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let start = {
        let locked = mm.write();
        let start = place(&locked, addr, len, flags)?;
        locked.edit(start..start + len, Edit::Map(vm))?;
        start
    };
    if flags & MAP_POPULATE != 0 && vm & VM_ACCESS != 0 {
        populate(mm, start..start + len, vm & VM_WRITE != 0);
    }
    Ok(start)
}

/// Where a new mapping of `len` bytes goes.
fn place(mm: &MmapLocked, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
    let fits = |start: u64| start.checked_add(len).is_some_and(|end| end <= USER_END);
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if !fits(addr) {
            return Err(ENOMEM);
        }
        if addr < MMAP_MIN_ADDR {
            return Err(EPERM);
        }
        if flags & MAP_FIXED == 0 && !mm.is_free(addr..addr + len) {
            return Err(EEXIST);
        }
        return Ok(addr);
    }
    let hint = addr & !(PAGE - 1);
    if hint >= MMAP_MIN_ADDR && fits(hint) && mm.is_free(hint..hint + len) {
        return Ok(hint);
    }
    // Room for the mapping and its guard gap above it.
    let with_gap = len.checked_add(GUARD_GAP).ok_or(ENOMEM)?;
    mm.find_free_top_down(with_gap, MMAP_BASE)
        .or_else(|| mm.find_free_top_down(with_gap, USER_END))
        .ok_or(ENOMEM)
}

/// Faults in every page of `range` (MAP_POPULATE); errors are left for later accesses to meet.
fn populate(mm: &Mm, range: Range<u64>, write: bool) {
    let access = Access {
        write,
        execute: false,
    };
    let mut page = range.start;
    while page < range.end {
        if fault::fault_locked(&mm.read(), page, access).is_err() {
            return;
        }
        page += PAGE;
    }
}

/// Checks a page-aligned `addr` and `len` bytes; returns the page range (empty for `len` 0).
fn user_range(addr: u64, len: u64) -> Result<Range<u64>, Errno> {
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(EINVAL)?;
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    if end > USER_END {
        return Err(EINVAL);
    }
    Ok(addr..end)
}

pub fn munmap(mm: &Mm, addr: u64, len: u64) -> SysResult {
    if len == 0 {
        return Err(EINVAL);
    }
    let range = user_range(addr, len)?;
    let locked = mm.write();
    if !locked.is_free(range.clone()) {
        locked.edit(range, Edit::Unmap)?;
    }
    Ok(0)
}

/// `mprotect`: like Linux, the VMAs are changed in address order up to the first hole, and a
/// hole makes the call fail with `ENOMEM` after the pieces before it were changed.
pub fn mprotect(mm: &Mm, addr: u64, len: u64, prot: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let vm = vm_flags(prot)?;
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(ENOMEM)?;
    let end = addr
        .checked_add(len)
        .filter(|&e| e <= USER_END)
        .ok_or(ENOMEM)?;
    let range = addr..end;
    let locked = mm.write();
    let mapped_end = mapped_prefix_end(&locked.vmas_in(range.clone()), &range);
    if mapped_end > range.start {
        locked.edit(range.start..mapped_end, Edit::Protect(vm))?;
    }
    if mapped_end < range.end {
        Err(ENOMEM)
    } else {
        Ok(0)
    }
}

/// `madvise`. Like Linux, the advice is applied VMA by VMA in address order: a hole in the
/// range makes the call fail with `ENOMEM` once the mapped pieces around it were advised, and
/// a VMA the advice does not apply to (`MADV_FREE` on shared memory) ends the walk there with
/// `EINVAL`. Dropping advice clears private pages only (see [`Mm::zap`]).
pub fn madvise(mm: &Mm, addr: u64, len: u64, advice: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    // What the advice does: drop pages, or set and clear lasting VMA bits.
    let (dropping, set, clear) = match advice {
        MADV_DONTNEED | MADV_FREE => (true, 0, 0),
        MADV_NORMAL | MADV_RANDOM | MADV_SEQUENTIAL | MADV_WILLNEED | MADV_HUGEPAGE
        | MADV_NOHUGEPAGE => (false, 0, 0),
        MADV_DONTFORK => (false, VM_DONTCOPY, 0),
        MADV_DOFORK => (false, 0, VM_DONTCOPY),
        MADV_WIPEONFORK => (false, VM_WIPEONFORK, 0),
        MADV_KEEPONFORK => (false, 0, VM_WIPEONFORK),
        _ => return Err(EINVAL),
    };
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(EINVAL)?;
    let end = addr
        .checked_add(len)
        .filter(|&e| e <= USER_END)
        .ok_or(EINVAL)?;
    let range = addr..end;
    let locked = mm.write();
    let vmas = locked.vmas_in(range.clone());
    let mut result = if mapped_prefix_end(&vmas, &range) < range.end {
        Err(ENOMEM)
    } else {
        Ok(0)
    };
    let mut advised = range.clone();
    if matches!(advice, MADV_FREE | MADV_WIPEONFORK)
        && let Some(shared) = vmas.iter().find(|v| v.flags() & VM_SHARED != 0)
    {
        // For private anonymous memory only: advised up to the first shared mapping.
        advised.end = shared.start().max(range.start);
        result = Err(EINVAL);
    }
    if advised.start < advised.end {
        if dropping {
            locked.zap(advised);
        } else if set | clear != 0 && !vmas.is_empty() {
            locked.edit(advised, Edit::Advise { set, clear })?;
        }
    }
    result
}

/// Where the mapped part of `range` that starts at `range.start` ends, given `vmas` (those
/// overlapping `range`, in order): `range.end` when VMAs cover all of it, `range.start` when
/// `range.start` itself is unmapped.
fn mapped_prefix_end(vmas: &[&Vma], range: &Range<u64>) -> u64 {
    let mut covered = range.start;
    for vma in vmas {
        if vma.start() > covered {
            break;
        }
        covered = vma.end();
    }
    covered.min(range.end)
}

/// `brk`: moves the end of the heap; returns the (new or unchanged) end, never an error.
pub fn brk(mm: &Mm, requested: u64) -> SysResult {
    let locked = mm.write();
    let heap = mm.brk_range();
    if requested < heap.start || requested > USER_END {
        return Ok(heap.end);
    }
    let (Some(old_top), Some(new_top)) = (page_up(heap.end), page_up(requested)) else {
        return Ok(heap.end);
    };
    if new_top > old_top {
        if !locked.is_free(old_top..new_top)
            || locked
                .edit(old_top..new_top, Edit::Map(VM_READ | VM_WRITE | VM_BRK))
                .is_err()
        {
            return Ok(heap.end);
        }
    } else if new_top < old_top && locked.edit(new_top..old_top, Edit::Unmap).is_err() {
        return Ok(heap.end);
    }
    locked.set_brk(heap.start..requested);
    Ok(requested)
}
