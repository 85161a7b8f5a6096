//! The memory system calls: mmap, munmap, mremap, mprotect, madvise, msync, mincore, the mlock family,
//! brk — with Linux's argument checks and error numbers. Each takes `mmap_lock` for writing
//! around its edit of the address space ([`Mm::write`]; the edits are methods of its guard);
//! `MAP_POPULATE`, `MADV_POPULATE_*` and locking fault the pages in afterwards, under the read
//! lock, like any fault.
//!
//! Locked memory (`VM_LOCKED`): every process runs as root, which Linux never holds to
//! `RLIMIT_MEMLOCK` (`CAP_IPC_LOCK`), so no lock is refused for its size; with no swap, a page
//! once present stays, and locking only faults the range in and marks the VMAs (`VmLck`,
//! `MADV_DONTNEED` refused, `MS_INVALIDATE` busy).
//!
//! `mmap` of a descriptor maps a regular file (tmpfs, memfd) through its page cache
//! (`MmWriteGuard::map_file`); `/dev/zero` maps as anonymous memory; anything else is
//! `ENODEV`.

use alloc::sync::Arc;
use core::ops::Range;

use super::addrspace::{Edit, MMAP_BASE, MMAP_MIN_ADDR, Mm, MmWriteGuard, MmapLocked};
use super::commit;
use super::fault::{self, Access, FaultError};
use super::pte::{GUARD_ENTRY, MAPS_PAGE};
use super::user_tables::{self, TABLE_SPAN};
use super::vma::{
    VM_ACCESS, VM_BRK, VM_DONTCOPY, VM_EXEC, VM_GROWSDOWN, VM_LOCKED, VM_LOCKED_MASK,
    VM_LOCKONFAULT, VM_NORESERVE, VM_READ, VM_SHARED, VM_WIPEONFORK, VM_WRITE, VM_WRITE_DENIED,
    Vma,
};
use crate::arch::syscall::USER_END;
use crate::arch::uaccess::copy_to_user;
use crate::fs::file::File;
use crate::fs::pagecache::MAX_FILE_SIZE;
use crate::syscall::errno::{
    EACCES, EAGAIN, EBUSY, EEXIST, EFAULT, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, EOVERFLOW, EPERM,
    Errno, SysResult,
};
use crate::syscall::int_arg;

pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const PROT_EXEC: u64 = 4;
/// Known to Linux's `mprotect` (for architectures with atomic-operation memory) and ignored.
const PROT_SEM: u64 = 8;
const PROT_GROWSDOWN: u64 = 0x0100_0000;
const PROT_GROWSUP: u64 = 0x0200_0000;

pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
/// `MAP_SHARED`, with unknown flags refused (`EOPNOTSUPP`) rather than ignored; files only.
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x0100;
const MAP_LOCKED: u64 = 0x2000;
pub const MAP_NORESERVE: u64 = 0x4000;
const MAP_POPULATE: u64 = 0x8000;
const MAP_HUGETLB: u64 = 0x4_0000;
/// `MAP_HUGETLB`'s page size: its log2 in these bits (0: the default size).
const MAP_HUGE_SHIFT: u64 = 26;
const MAP_HUGE_MASK: u64 = 0x3f;
/// The huge page sizes of x86-64 (log2): 2 MiB and 1 GiB (Linux's hugetlb sizes, none of
/// which has pages here).
pub const HUGE_PAGE_SHIFTS: [u64; 2] = [21, 30];
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// The flags `MAP_SHARED_VALIDATE` knows (Linux's `LEGACY_MAP_MASK`: the types, `MAP_FIXED`,
/// `MAP_ANONYMOUS`, the ignored `MAP_DENYWRITE`/`MAP_EXECUTABLE`/`MAP_UNINITIALIZED`,
/// `MAP_GROWSDOWN`, `MAP_LOCKED`, `MAP_NORESERVE`, `MAP_POPULATE`, `MAP_NONBLOCK`, `MAP_STACK`,
/// `MAP_HUGETLB`).
const LEGACY_MAP_MASK: u64 = 0x03
    | 0x10
    | 0x20
    | 0x0800
    | 0x1000
    | 0x400_0000
    | 0x0100
    | 0x2000
    | 0x4000
    | 0x8000
    | 0x1_0000
    | 0x2_0000
    | 0x4_0000;

const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

pub const MADV_NORMAL: u64 = 0;
const MADV_RANDOM: u64 = 1;
const MADV_SEQUENTIAL: u64 = 2;
pub const MADV_WILLNEED: u64 = 3;
const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;
const MADV_REMOVE: u64 = 9;
const MADV_DONTFORK: u64 = 10;
const MADV_DOFORK: u64 = 11;
const MADV_MERGEABLE: u64 = 12;
const MADV_UNMERGEABLE: u64 = 13;
const MADV_HUGEPAGE: u64 = 14;
const MADV_NOHUGEPAGE: u64 = 15;
const MADV_DONTDUMP: u64 = 16;
const MADV_DODUMP: u64 = 17;
const MADV_WIPEONFORK: u64 = 18;
const MADV_KEEPONFORK: u64 = 19;
pub const MADV_COLD: u64 = 20;
pub const MADV_PAGEOUT: u64 = 21;
const MADV_POPULATE_READ: u64 = 22;
const MADV_POPULATE_WRITE: u64 = 23;
const MADV_DONTNEED_LOCKED: u64 = 24;
pub const MADV_COLLAPSE: u64 = 25;
pub const MADV_GUARD_INSTALL: u64 = 102;
const MADV_GUARD_REMOVE: u64 = 103;

const MLOCK_ONFAULT: u64 = 1;
const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

const PAGE: u64 = 4096;

/// Placement without a hint leaves this much unmapped above each new mapping. Independent
/// mappings are then never adjacent, so they never merge: one thread's mmap or munmap never
/// write-locks another thread's VMA (which would send that thread's faults to `mmap_lock`),
/// and an overrun faults instead of running into the neighbour.
const GUARD_GAP: u64 = PAGE;

fn page_up(len: u64) -> Option<u64> {
    len.checked_add(PAGE - 1).map(|l| l & !(PAGE - 1))
}

/// The access bits of `prot` as VMA flags; Linux's `mmap` ignores every other bit of it.
fn access_flags(prot: u64) -> u32 {
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
    flags
}

/// `mmap`: `fd` names the file to map (a descriptor of the calling process) unless
/// `MAP_ANONYMOUS` is given.
pub fn mmap(
    mm: &Mm,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: u64,
    offset: u64,
) -> SysResult {
    if !offset.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let file = if flags & MAP_ANONYMOUS == 0 {
        // An `unsigned long` to mmap, but Linux looks it up as an `unsigned int`.
        Some(crate::syscall::io::file(fd)?)
    } else {
        None
    };
    if flags & MAP_HUGETLB != 0 {
        // No file here is of hugetlbfs; anonymous huge pages need a size x86-64 has. A length
        // that rounds up to nothing in huge pages is `mmap`'s length of 0.
        let shift = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
        if file.is_some() || (shift != 0 && !HUGE_PAGE_SHIFTS.contains(&shift)) {
            return Err(EINVAL);
        }
        let huge_page = 1
            << if shift == 0 {
                HUGE_PAGE_SHIFTS[0]
            } else {
                shift
            };
        let len = len.wrapping_add(huge_page - 1) & !(huge_page - 1);
        if len == 0 {
            return Err(EINVAL);
        }
        return map_huge(mm, addr, len, huge_page, flags, offset);
    }
    map(mm, addr, len, prot, flags, file.as_ref(), offset)
}

/// Anonymous huge pages (`MAP_HUGETLB`), `len` a whole number of huge pages of `huge_page`
/// bytes. Linux maps a file of its own hugetlbfs, with these checks in its order: the place (a
/// fixed address that is not a multiple of the huge page first, `EINVAL`, then those of any
/// mapping, see [`place`]), the file's range (`EOVERFLOW`), the type (`MAP_SHARED_VALIDATE`
/// knows only the legacy flags, `EOPNOTSUPP`; `MAP_GROWSDOWN` is `EINVAL`), an offset that is
/// not a multiple of the huge page (`EINVAL`), then the reservation of the pages: there are
/// none (Linux's `nr_hugepages` of 0), `ENOMEM`. With `MAP_NORESERVE` Linux reserves nothing
/// and makes a mapping whose every access fails (SIGBUS); this kernel makes no huge-page
/// mappings, so that too is `ENOMEM`.
fn map_huge(mm: &Mm, addr: u64, len: u64, huge_page: u64, flags: u64, offset: u64) -> SysResult {
    {
        let locked = mm.read();
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        if fixed && len <= USER_END && !addr.is_multiple_of(huge_page) {
            return Err(EINVAL);
        }
        place(&locked, addr, len, flags)?;
    }
    if offset
        .checked_add(len)
        .is_none_or(|end| end > MAX_FILE_SIZE)
    {
        return Err(EOVERFLOW);
    }
    match flags & MAP_TYPE {
        MAP_SHARED | MAP_PRIVATE => {}
        MAP_SHARED_VALIDATE if flags & !LEGACY_MAP_MASK != 0 => return Err(EOPNOTSUPP),
        MAP_SHARED_VALIDATE => {}
        _ => return Err(EINVAL),
    }
    if flags & MAP_GROWSDOWN != 0 || !offset.is_multiple_of(huge_page) {
        return Err(EINVAL);
    }
    Err(ENOMEM)
}

/// `mmap` with the file (if any) already looked up: anonymous memory, or `file` from byte
/// `offset` (page aligned) on. Linux's checks in Linux's order: the length (`EINVAL` for 0,
/// `ENOMEM` when it rounds up past the end of the address space), the place (see [`place`]),
/// then what is mapped (see [`mapped_kind`]). Bits of `prot` other than the access bits are
/// ignored, as Linux's `mmap` does.
pub fn map(
    mm: &Mm,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    file: Option<&Arc<File>>,
    offset: u64,
) -> SysResult {
    if len == 0 {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(ENOMEM)?;
    let mut vm = access_flags(prot) | mm.default_flags();
    if flags & MAP_LOCKED != 0 {
        vm |= VM_LOCKED;
    }
    if flags & MAP_GROWSDOWN != 0 {
        vm |= VM_GROWSDOWN;
    }
    if flags & MAP_NORESERVE != 0 && commit::mode() != commit::Mode::Never {
        vm |= VM_NORESERVE;
    }
    let (start, vm) = {
        let locked = mm.write();
        let start = place(&locked, addr, len, flags)?;
        let range = start..start + len;
        let (vm, mapped) = mapped_kind(vm, prot, flags, file, offset, len)?;
        match mapped {
            Some((file, pgoff)) => locked.map_file(range, vm, file, pgoff)?,
            None => locked.edit(range, Edit::Map(vm))?,
        }
        (start, vm)
    };
    if vm & VM_LOCKED_MASK == VM_LOCKED {
        // Errors are left for later accesses to meet, as Linux does.
        let _ = fault_in(
            mm,
            start..start + len,
            Populate::Lock {
                skip_failures: true,
            },
        );
    } else if flags & MAP_POPULATE != 0 && vm & VM_ACCESS != 0 {
        populate(mm, start..start + len, vm & VM_WRITE != 0);
    }
    Ok(start)
}

/// What a new mapping shows: a file's page cache from a page on, or (`None`) anonymous memory.
type FilePages<'f> = Option<(&'f Arc<File>, u64)>;

/// The flags of the new VMA (`vm` with the mapping's type added) and what it maps: a file's
/// page cache from page `pgoff` on, or (`None`) anonymous memory, `/dev/zero`'s included.
/// Linux's checks once the place is found, in its order: for a file, a range past the largest
/// file (`EOVERFLOW`), then the type: `MAP_SHARED_VALIDATE` with an unknown flag
/// (`EOPNOTSUPP`), the access the file was opened with (see [`file_checks`]); for anonymous
/// memory, `MAP_SHARED` or `MAP_PRIVATE`; any other type is `EINVAL`, and so is
/// `MAP_GROWSDOWN` for anything but private anonymous memory.
fn mapped_kind(
    mut vm: u32,
    prot: u64,
    flags: u64,
    file: Option<&Arc<File>>,
    offset: u64,
    len: u64,
) -> Result<(u32, FilePages<'_>), Errno> {
    let Some(file) = file else {
        match flags & MAP_TYPE {
            MAP_PRIVATE => {}
            MAP_SHARED if vm & VM_GROWSDOWN == 0 => vm |= VM_SHARED,
            _ => return Err(EINVAL),
        }
        return Ok((vm, None));
    };
    let inode = file.inode();
    // Linux's largest offset: a regular file's largest size; any offset for other files
    // (directories, pipes, devices) short of wrapping.
    let largest = if inode.page_cache().is_some() {
        MAX_FILE_SIZE
    } else {
        u64::MAX
    };
    if offset.checked_add(len).is_none_or(|end| end > largest) {
        return Err(EOVERFLOW);
    }
    match flags & MAP_TYPE {
        MAP_PRIVATE => {}
        // Unknown flags are ignored with MAP_SHARED, refused with MAP_SHARED_VALIDATE.
        MAP_SHARED => vm |= VM_SHARED,
        MAP_SHARED_VALIDATE if flags & !LEGACY_MAP_MASK != 0 => return Err(EOPNOTSUPP),
        MAP_SHARED_VALIDATE => vm |= VM_SHARED,
        _ => return Err(EINVAL),
    }
    file_checks(file, prot, vm)?;
    if vm & VM_GROWSDOWN != 0 {
        return Err(EINVAL);
    }
    if vm & VM_SHARED != 0 && !file.writable() {
        vm |= VM_WRITE_DENIED;
    }
    if inode.maps_zeroes() {
        Ok((vm, None))
    } else {
        Ok((vm, Some((file, offset / PAGE))))
    }
}

/// Whether `file` may be mapped with `prot` into a VMA with `vm` (`VM_SHARED` or not), in
/// Linux's order: a shared writable mapping needs write access, every mapping needs read
/// access, and the file must be one that maps (`ENODEV`: directories, pipes, most devices).
fn file_checks(file: &File, prot: u64, vm: u32) -> Result<(), Errno> {
    if vm & VM_SHARED != 0 && prot & PROT_WRITE != 0 && !file.writable() {
        return Err(EACCES);
    }
    if !file.readable() {
        return Err(EACCES);
    }
    let inode = file.inode();
    if inode.page_cache().is_none() && !inode.maps_zeroes() {
        return Err(ENODEV);
    }
    Ok(())
}

/// Where a new mapping of `len` bytes (page aligned, not 0) goes, with Linux's errors in its
/// order: a length beyond user space (`ENOMEM`); with `MAP_FIXED` or `MAP_FIXED_NOREPLACE`,
/// a range past its end (`ENOMEM`), an unaligned address (`EINVAL`), one below
/// `MMAP_MIN_ADDR` (`EPERM`), and for `MAP_FIXED_NOREPLACE` (with `MAP_FIXED` or not) a
/// range not free (`EEXIST`);
/// without them, a free place (`ENOMEM` when there is none).
fn place(mm: &MmapLocked, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
    if len > USER_END {
        return Err(ENOMEM);
    }
    let fits = |start: u64| start <= USER_END - len;
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if !fits(addr) {
            return Err(ENOMEM);
        }
        if !addr.is_multiple_of(PAGE) {
            return Err(EINVAL);
        }
        if addr < MMAP_MIN_ADDR {
            return Err(EPERM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !mm.is_free(addr..addr + len) {
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

/// How [`fault_in`] faults a range in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Populate {
    /// `MADV_POPULATE_READ`: every page read; an inaccessible VMA is `EINVAL`.
    Read,
    /// `MADV_POPULATE_WRITE`: every page written (copies broken); a VMA without write
    /// permission is `EINVAL`.
    Write,
    /// Locking (Linux's `__mm_populate`): private writable pages written, other accessible
    /// ones read; VMAs locked on fault are left alone, holes skipped. An inaccessible VMA is
    /// `EFAULT`, and the first failure ends the walk, unless `skip_failures` (`mlockall`,
    /// `MAP_LOCKED`, `brk`): then the walk goes on at the next VMA.
    Lock { skip_failures: bool },
}

/// Faults in the pages of `range` as `how` says, each under `mmap_lock` for reading. Errors
/// as `MADV_POPULATE_*` has them: a hole is `ENOMEM` (locking skips holes), a VMA the access
/// does not suit `EINVAL` (`EFAULT` for locking), a page that cannot be had (past the end of
/// a file, a guard marker) `EFAULT`, no memory `ENOMEM`.
fn fault_in(mm: &Mm, range: Range<u64>, how: Populate) -> Result<(), Errno> {
    let locking = matches!(how, Populate::Lock { .. });
    let skip_failures = how
        == Populate::Lock {
            skip_failures: true,
        };
    let mut page = range.start;
    while page < range.end {
        let locked = mm.read();
        let vma = match locked.vma_at_or_after(page) {
            Some(vma) if vma.start() <= page => vma,
            Some(vma) if locking => {
                page = vma.start();
                continue;
            }
            None if locking => return Ok(()),
            _ => return Err(ENOMEM),
        };
        let flags = vma.flags();
        let write = match how {
            Populate::Read if flags & VM_ACCESS == 0 => return Err(EINVAL),
            Populate::Write if flags & VM_WRITE == 0 => return Err(EINVAL),
            Populate::Read => false,
            Populate::Write => true,
            Populate::Lock { .. }
                if flags & VM_LOCKONFAULT != 0 || skip_failures && flags & VM_ACCESS == 0 =>
            {
                page = vma.end();
                continue;
            }
            Populate::Lock { .. } if flags & VM_ACCESS == 0 => return Err(EFAULT),
            Populate::Lock { .. } => flags & (VM_WRITE | VM_SHARED) == VM_WRITE,
        };
        let access = Access {
            write,
            execute: false,
        };
        match fault::fault_locked(&locked, page, access) {
            Ok(()) => page += PAGE,
            Err(_) if skip_failures => page = vma.end(),
            Err(error) => {
                return Err(match error {
                    FaultError::OutOfMemory | FaultError::NoVma => ENOMEM,
                    FaultError::Forbidden => EINVAL,
                    FaultError::PastEndOfFile | FaultError::GuardRegion => EFAULT,
                });
            }
        }
        drop(locked);
    }
    Ok(())
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
    unmap(&mm.write(), addr, len)
}

/// `munmap`'s checks and edit, under the caller's write session.
fn unmap(locked: &MmWriteGuard, addr: u64, len: u64) -> SysResult {
    if len == 0 {
        return Err(EINVAL);
    }
    let range = user_range(addr, len)?;
    if !locked.is_free(range.clone()) {
        locked.edit(range, Edit::Unmap)?;
    }
    Ok(0)
}

pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const MREMAP_DONTUNMAP: u64 = 4;

/// `mremap`, with Linux's (5.13 and later) rules and errors, in Linux's order:
/// - the flags (`MREMAP_FIXED` needs `MREMAP_MAYMOVE`; `MREMAP_DONTUNMAP` needs it too, and
///   equal lengths), an aligned address and a new length that is not 0 (`EINVAL`); the
///   lengths are rounded up to pages, wrapping as Linux's do;
/// - a VMA at `addr` (`EFAULT`);
/// - with `MREMAP_FIXED` or `MREMAP_DONTUNMAP`, a move to `new_addr` (a hint without
///   `MREMAP_FIXED`), see [`move_to`];
/// - a shrink (or the same length) unmaps what follows the new end within the old length, and
///   keeps the address;
/// - a grow needs the old range inside that VMA (`EFAULT`), a shared VMA for an old length of
///   0 (`EINVAL`: a duplicate of private memory would be new memory); it grows in place when
///   the old range ends the VMA and the range after it is free, else moves with
///   `MREMAP_MAYMOVE` to a free place, else fails with `ENOMEM`.
///
/// A move carries the pages' entries (see `MmWriteGuard::move_range`).
pub fn mremap(
    mm: &Mm,
    addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
) -> SysResult {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
        || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
        || (flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len))
        || !addr.is_multiple_of(PAGE)
    {
        return Err(EINVAL);
    }
    let old_len = page_up_wrapping(old_len);
    let new_len = page_up_wrapping(new_len);
    if new_len == 0 {
        return Err(EINVAL);
    }
    let locked = mm.write();
    locked.find_vma(addr).ok_or(EFAULT)?;
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return move_to(&locked, addr, old_len, new_addr, new_len, flags);
    }
    if old_len >= new_len {
        if old_len > new_len {
            let new_end = addr.checked_add(new_len).ok_or(EINVAL)?;
            unmap(&locked, new_end, old_len - new_len)?;
        }
        return Ok(addr);
    }
    let vma = resizable(&locked, addr, old_len)?;
    let grown_end = vma.end().checked_add(new_len - old_len);
    if addr + old_len == vma.end()
        && let Some(grown_end) = grown_end.filter(|&end| end <= USER_END)
        && locked.is_free(vma.end()..grown_end)
    {
        locked.grow_in_place(vma, vma.end()..grown_end)?;
        return Ok(addr);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(ENOMEM);
    }
    let to = place_move(&locked, addr, old_len, new_len)?;
    locked.move_range(addr..addr + old_len, to..to + new_len, old_len == 0)?;
    Ok(to)
}

/// Where a move of `old_len` bytes at `addr` to a free range of `new_len` bytes goes: where
/// [`place`] would put it, but a new range of 2 MiB (a leaf page table's span) or more starts
/// at an address congruent to `addr` modulo 2 MiB when the old range spans one too (so that
/// the move can carry whole page tables, see `MmWriteGuard::move_range`), and 2 MiB-aligned
/// otherwise (so that its own later moves can), as Linux aligns large anonymous ranges.
fn place_move(mm: &MmapLocked, addr: u64, old_len: u64, new_len: u64) -> Result<u64, Errno> {
    if new_len < TABLE_SPAN {
        return place(mm, 0, new_len, 0);
    }
    let residue = if old_len >= TABLE_SPAN {
        addr & (TABLE_SPAN - 1)
    } else {
        0
    };
    // Room for the range wherever its first 2 MiB falls, or, failing that, anywhere.
    match new_len
        .checked_add(TABLE_SPAN - PAGE)
        .map(|with_slack| place(mm, 0, with_slack, 0))
    {
        Some(Ok(room)) => Ok(room + (residue.wrapping_sub(room) & (TABLE_SPAN - 1))),
        _ => place(mm, 0, new_len, 0),
    }
}

/// `mremap` with `MREMAP_FIXED` (to `new_addr`, whatever is mapped there unmapped first) or
/// `MREMAP_DONTUNMAP` (the source stays mapped, empty): Linux's `mremap_to`. `new_addr` must
/// be aligned and the new range inside user space and apart from the old one (`EINVAL`); an
/// old length above the new one is cut to it first (the rest unmapped).
fn move_to(
    locked: &MmWriteGuard,
    addr: u64,
    old_len: u64,
    new_addr: u64,
    new_len: u64,
    flags: u64,
) -> SysResult {
    if !new_addr.is_multiple_of(PAGE) || new_len > USER_END || new_addr > USER_END - new_len {
        return Err(EINVAL);
    }
    if addr.saturating_add(old_len) > new_addr && new_addr + new_len > addr {
        return Err(EINVAL);
    }
    let fixed = flags & MREMAP_FIXED != 0;
    if fixed {
        unmap(locked, new_addr, new_len)?;
    }
    let mut old_len = old_len;
    if old_len > new_len {
        unmap(locked, addr + new_len, old_len - new_len)?;
        old_len = new_len;
    }
    resizable(locked, addr, old_len)?;
    let to = if fixed {
        new_addr
    } else {
        place(locked, new_addr, new_len, 0)?
    };
    let keep_source = flags & MREMAP_DONTUNMAP != 0 || old_len == 0;
    locked.move_range(addr..addr + old_len, to..to + new_len, keep_source)?;
    Ok(to)
}

/// The VMA at `addr` if `old_len` bytes from `addr` may be remapped (Linux's
/// `vma_to_resize`): they lie inside it (`EFAULT`), and an old length of 0 (a duplicate) is
/// of a shared VMA (`EINVAL`).
fn resizable<'l>(locked: &'l MmWriteGuard, addr: u64, old_len: u64) -> Result<&'l Vma, Errno> {
    let vma = locked.find_vma(addr).ok_or(EFAULT)?;
    if old_len == 0 && vma.flags() & VM_SHARED == 0 {
        return Err(EINVAL);
    }
    if old_len > vma.end() - addr {
        return Err(EFAULT);
    }
    Ok(vma)
}

/// `len` rounded up to pages as Linux's `PAGE_ALIGN` does: the lengths that round past the
/// end of the address space wrap to small ones.
fn page_up_wrapping(len: u64) -> u64 {
    len.wrapping_add(PAGE - 1) & !(PAGE - 1)
}

/// `mprotect`, with Linux's checks in its order: `PROT_GROWSDOWN` with `PROT_GROWSUP`, and an
/// unaligned address, are `EINVAL`; a length of 0 succeeds; a range that wraps (its length
/// rounded up as Linux's `PAGE_ALIGN` does) is `ENOMEM`; a bit of `prot` Linux does not know
/// is `EINVAL` (`PROT_SEM` it knows, and ignores). Then the first VMA the range meets: none is
/// `ENOMEM`; with `PROT_GROWSDOWN` the range starts where that VMA does, which must grow down
/// (`EINVAL`); otherwise a hole at the start is `ENOMEM`, and `PROT_GROWSUP` `EINVAL` (no VMA
/// grows up on x86-64). Like Linux, the VMAs are then changed in address order up to the
/// first hole, and a hole makes the call fail with `ENOMEM` after the pieces before it were
/// changed; so does a VMA that may not become writable (`EACCES`: a shared mapping of a file
/// opened read-only). A range past the end of user space is a hole.
pub fn mprotect(mm: &Mm, addr: u64, len: u64, prot: u64) -> SysResult {
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    if grows == PROT_GROWSDOWN | PROT_GROWSUP || !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let end = addr.wrapping_add(page_up_wrapping(len));
    if end <= addr {
        return Err(ENOMEM);
    }
    let known = PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP;
    if prot & !known != 0 {
        return Err(EINVAL);
    }
    let vm = access_flags(prot);
    let locked = mm.write();
    let first = locked
        .vma_at_or_after(addr)
        .filter(|vma| vma.start() < end)
        .ok_or(ENOMEM)?;
    let start = if grows == PROT_GROWSDOWN {
        if first.flags() & VM_GROWSDOWN == 0 {
            return Err(EINVAL);
        }
        first.start()
    } else if first.start() > addr {
        return Err(ENOMEM);
    } else if grows == PROT_GROWSUP {
        return Err(EINVAL);
    } else {
        addr
    };
    let range = start..end.min(USER_END);
    let vmas = locked.vmas_in(range.clone());
    let mut changed_end = mapped_prefix_end(&vmas, &range);
    let mut result = if changed_end < end {
        Err(ENOMEM)
    } else {
        Ok(0)
    };
    if vm & VM_WRITE != 0
        && let Some(denied) = vmas
            .iter()
            .find(|v| v.flags() & VM_WRITE_DENIED != 0 && v.start() < changed_end)
    {
        changed_end = denied.start().max(range.start);
        result = Err(EACCES);
    }
    if changed_end > range.start {
        locked.edit(range.start..changed_end, Edit::Protect(vm))?;
    }
    result
}

/// What one piece of advice does to the VMAs it covers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Advice {
    /// Accepted and changes nothing here (access patterns, swap and huge-page hints, KSM,
    /// core-dump filters: there is no swap, no huge page, no merging, no core dump).
    Hint,
    /// Drops the pages (`MADV_DONTNEED`, `MADV_FREE`, `MADV_DONTNEED_LOCKED`).
    Drop,
    /// Lasting VMA bits set and cleared.
    Flags {
        set: u32,
        clear: u32,
    },
    /// Faults the range in.
    Populate(Populate),
    /// Punches a hole in the shared memory behind the range.
    Remove,
    GuardInstall,
    GuardRemove,
}

/// `advice` as Linux's `madvise` accepts it, or `EINVAL`.
fn parse_advice(advice: u64) -> Result<Advice, Errno> {
    Ok(match advice {
        MADV_NORMAL | MADV_RANDOM | MADV_SEQUENTIAL | MADV_WILLNEED | MADV_MERGEABLE
        | MADV_UNMERGEABLE | MADV_HUGEPAGE | MADV_NOHUGEPAGE | MADV_DONTDUMP | MADV_DODUMP
        | MADV_COLD | MADV_PAGEOUT => Advice::Hint,
        MADV_DONTNEED | MADV_FREE | MADV_DONTNEED_LOCKED => Advice::Drop,
        MADV_DONTFORK => Advice::Flags {
            set: VM_DONTCOPY,
            clear: 0,
        },
        MADV_DOFORK => Advice::Flags {
            set: 0,
            clear: VM_DONTCOPY,
        },
        MADV_WIPEONFORK => Advice::Flags {
            set: VM_WIPEONFORK,
            clear: 0,
        },
        MADV_KEEPONFORK => Advice::Flags {
            set: 0,
            clear: VM_WIPEONFORK,
        },
        MADV_POPULATE_READ => Advice::Populate(Populate::Read),
        MADV_POPULATE_WRITE => Advice::Populate(Populate::Write),
        MADV_REMOVE => Advice::Remove,
        MADV_GUARD_INSTALL => Advice::GuardInstall,
        MADV_GUARD_REMOVE => Advice::GuardRemove,
        // MADV_COLLAPSE needs a huge page to collapse into (Linux: EINVAL for a VMA that
        // cannot hold one); MADV_HWPOISON and MADV_SOFT_OFFLINE exist only with memory-failure
        // handling, which this kernel lacks.
        _ => return Err(EINVAL),
    })
}

/// Whether `advice` may be applied to `vma`; Linux's error for the first VMA it may not be.
fn advice_refused(advice: u64, vma: &Vma) -> Option<Errno> {
    let flags = vma.flags();
    let locked = flags & VM_LOCKED != 0;
    let private_anonymous = flags & VM_SHARED == 0 && vma.file().is_none();
    match advice {
        // Linux's `can_madv_lru_vma`: locked pages stay.
        MADV_DONTNEED | MADV_COLD | MADV_PAGEOUT if locked => Some(EINVAL),
        MADV_FREE if locked || !private_anonymous => Some(EINVAL),
        MADV_WIPEONFORK if !private_anonymous => Some(EINVAL),
        MADV_GUARD_INSTALL if locked || !private_anonymous => Some(EINVAL),
        MADV_GUARD_REMOVE if !private_anonymous => Some(EINVAL),
        MADV_REMOVE if locked => Some(EINVAL),
        // Shared memory only (Linux's shmem object or a file), mapped writable.
        MADV_REMOVE if private_anonymous => Some(EINVAL),
        MADV_REMOVE if flags & VM_SHARED == 0 || flags & VM_WRITE_DENIED != 0 => Some(EACCES),
        _ => None,
    }
}

/// `madvise`. Like Linux, the advice is applied VMA by VMA in address order: a hole in the
/// range makes the call fail with `ENOMEM` once the mapped pieces around it were advised, and
/// a VMA the advice does not apply to (`MADV_FREE` on shared memory or a file, `MADV_DONTNEED`
/// on locked memory, ...) ends the walk there with its error. A range past the end of user
/// space is a hole. Dropping advice keeps shared anonymous pages (see `MmWriteGuard::zap`).
pub fn madvise(mm: &Mm, addr: u64, len: u64, advice: u64) -> SysResult {
    let advice = int_arg(advice);
    let kind = parse_advice(advice)?;
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    // A length that rounds up past the end of the address space, or a range that wraps.
    let len = page_up(len).ok_or(EINVAL)?;
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    if let Advice::Populate(how) = kind {
        return fault_in(mm, addr..end, how).map(|()| 0);
    }
    let range = addr.min(USER_END)..end.min(USER_END);
    let locked = mm.write();
    let vmas = locked.vmas_in(range.clone());
    let mut result = if range.end < end || mapped_prefix_end(&vmas, &range) < range.end {
        Err(ENOMEM)
    } else {
        Ok(0)
    };
    let mut advised = range.clone();
    if let Some((vma, error)) = vmas
        .iter()
        .find_map(|v| advice_refused(advice, v).map(|error| (v, error)))
    {
        advised.end = vma.start().max(range.start);
        result = Err(error);
    }
    if advised.start >= advised.end {
        return result;
    }
    let vmas: alloc::vec::Vec<&Vma> = vmas
        .into_iter()
        .filter(|v| v.start() < advised.end)
        .collect();
    match kind {
        Advice::Hint | Advice::Populate(_) => {}
        Advice::Drop => locked.zap(advised),
        Advice::Flags { set, clear } if !vmas.is_empty() => {
            locked.edit(advised, Edit::Advise { set, clear })?
        }
        Advice::Flags { .. } => {}
        Advice::GuardInstall => {
            for vma in &vmas {
                locked
                    .install_guards(vma.start().max(advised.start)..vma.end().min(advised.end))?;
            }
        }
        Advice::GuardRemove => locked.remove_guards(advised),
        Advice::Remove => {
            for vma in &vmas {
                let part = vma.start().max(advised.start)..vma.end().min(advised.end);
                match vma.file() {
                    Some(file) => {
                        let first = file.pgoff() + (part.start - vma.start()) / PAGE;
                        file.cache()
                            .clear_pages(first..first + (part.end - part.start) / PAGE);
                    }
                    None => locked.zero_shared_pages(part),
                }
            }
        }
    }
    result
}

/// `msync`: memory is the file's storage here, so there is nothing to write back; what is
/// left are Linux's checks, in its order: the flags (one of `MS_ASYNC` and `MS_SYNC` at most,
/// and `MS_INVALIDATE`), an aligned address, a range that does not wrap, then the walk: a
/// hole is `ENOMEM` (at once for `MS_ASYNC` alone, at the end otherwise), and
/// `MS_INVALIDATE` on locked memory `EBUSY`.
pub fn msync(mm: &Mm, addr: u64, len: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || !addr.is_multiple_of(PAGE)
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(EINVAL);
    }
    // Like Linux, a length that rounds up past the end of the address space wraps to nothing.
    let len = page_up_wrapping(len);
    let end = addr.checked_add(len).ok_or(ENOMEM)?;
    if end == addr {
        return Ok(0);
    }
    let locked = mm.read();
    let mut unmapped = false;
    let mut at = addr;
    for vma in locked.vmas_in(addr.min(USER_END)..end.min(USER_END)) {
        if vma.start() > at {
            if flags == MS_ASYNC {
                return Err(ENOMEM);
            }
            unmapped = true;
        }
        if flags & MS_INVALIDATE != 0 && vma.flags() & VM_LOCKED != 0 {
            return Err(EBUSY);
        }
        at = vma.end();
    }
    if unmapped || at < end {
        return Err(ENOMEM);
    }
    Ok(0)
}

/// Pages whose residency `mincore` gathers under `mmap_lock` before it copies them out.
const MINCORE_BATCH: usize = 512;

/// `mincore`: one byte per page of `[addr, addr + len)`, 1 when the page is in memory: an
/// anonymous page that was faulted in (the zero page too), or, for a file, a page its page
/// cache holds whether this mapping has touched it or not. A guard marker is not in memory. A
/// hole is `ENOMEM` (the bytes for the pages before it are written), as is a range outside
/// user space; a vector outside it is `EFAULT`.
pub fn mincore(mm: &Mm, addr: u64, len: u64, vec: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    if addr.checked_add(len).is_none_or(|end| end > USER_END) {
        return Err(ENOMEM);
    }
    let pages = len.div_ceil(PAGE);
    if vec.checked_add(pages).is_none_or(|end| end > USER_END) {
        return Err(EFAULT);
    }
    let end = addr + pages * PAGE;
    let mut page = addr;
    let mut out = vec;
    let mut batch = alloc::vec::Vec::new();
    batch.try_reserve_exact(MINCORE_BATCH).map_err(|_| EAGAIN)?;
    while page < end {
        batch.clear();
        {
            let locked = mm.read();
            let vma = locked.find_vma(page).ok_or(ENOMEM)?;
            let stop = end.min(vma.end()).min(page + (MINCORE_BATCH as u64) * PAGE);
            for at in (page..stop).step_by(PAGE as usize) {
                // SAFETY: `mmap_lock` is held, so the tables stay.
                let current = unsafe { user_tables::leaf_entry(mm.root(), at) };
                let resident = if current & MAPS_PAGE != 0 {
                    true
                } else if current == GUARD_ENTRY {
                    false
                } else if let Some(file) = vma.file() {
                    file.cache()
                        .is_cached(file.pgoff() + (at - vma.start()) / PAGE)
                } else {
                    false
                };
                batch.push(u8::from(resident));
            }
            page = stop;
        }
        // No user memory is touched with `mmap_lock` held.
        copy_to_user(out, &batch)?;
        out += batch.len() as u64;
    }
    Ok(0)
}

/// The page range `mlock` and `munlock` act on: `addr` rounded down, `len` (plus what the
/// rounding added) rounded up, wrapping as Linux's `PAGE_ALIGN` does; `EINVAL` for a range
/// that wraps.
fn lock_range(addr: u64, len: u64) -> Result<Range<u64>, Errno> {
    let offset = addr % PAGE;
    let start = addr - offset;
    let len = len.wrapping_add(offset).wrapping_add(PAGE - 1) & !(PAGE - 1);
    let end = start.wrapping_add(len);
    if end < start {
        return Err(EINVAL);
    }
    Ok(start..end)
}

/// Sets the lock bits of the VMAs of `range` to `lock` (`VM_LOCKED`, with `VM_LOCKONFAULT` or
/// not, or 0): like Linux, VMA by VMA up to the first hole, which is `ENOMEM`.
fn set_lock_bits(mm: &Mm, range: Range<u64>, lock: u32) -> Result<(), Errno> {
    let clamped = range.start.min(USER_END)..range.end.min(USER_END);
    let locked = mm.write();
    let vmas = locked.vmas_in(clamped.clone());
    let covered = mapped_prefix_end(&vmas, &clamped);
    if covered > clamped.start {
        locked.edit(
            clamped.start..covered,
            Edit::Advise {
                set: lock,
                clear: VM_LOCKED_MASK,
            },
        )?;
    }
    if covered < range.end {
        return Err(ENOMEM);
    }
    Ok(())
}

/// `mlock` and `mlock2`: the pages of the range are locked (and, without `MLOCK_ONFAULT`,
/// faulted in, VMA by VMA up to the first failure). A page that cannot be faulted in, or an
/// inaccessible (`PROT_NONE`) VMA, is `ENOMEM`, no memory `EAGAIN`, as Linux's POSIX error
/// mapping has them; the VMAs stay locked either way.
pub fn mlock(mm: &Mm, addr: u64, len: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(EINVAL);
    }
    let range = lock_range(addr, len)?;
    if range.is_empty() {
        return Ok(0);
    }
    let lock = if flags & MLOCK_ONFAULT != 0 {
        VM_LOCKED | VM_LOCKONFAULT
    } else {
        VM_LOCKED
    };
    set_lock_bits(mm, range.clone(), lock)?;
    fault_in(
        mm,
        range,
        Populate::Lock {
            skip_failures: false,
        },
    )
    .map_err(|error| match error {
        ENOMEM => EAGAIN,
        _ => ENOMEM,
    })?;
    Ok(0)
}

/// `munlock`: the VMAs of the range are unlocked; their pages stay.
pub fn munlock(mm: &Mm, addr: u64, len: u64) -> SysResult {
    let range = lock_range(addr, len)?;
    if range.is_empty() {
        return Ok(0);
    }
    set_lock_bits(mm, range, 0)?;
    Ok(0)
}

/// `mlockall`: `MCL_CURRENT` locks every VMA (and faults it in, without `MCL_ONFAULT`),
/// `MCL_FUTURE` every later mapping; `munlockall` is `mlockall` with no flag left.
pub fn mlockall(mm: &Mm, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(EINVAL);
    }
    apply_mlockall(mm, flags);
    Ok(0)
}

/// `munlockall`.
pub fn munlockall(mm: &Mm) -> SysResult {
    apply_mlockall(mm, 0);
    Ok(0)
}

fn apply_mlockall(mm: &Mm, flags: u64) {
    let lock = if flags & MCL_ONFAULT != 0 {
        VM_LOCKED | VM_LOCKONFAULT
    } else {
        VM_LOCKED
    };
    {
        let locked = mm.write();
        let future = if flags & MCL_FUTURE != 0 { lock } else { 0 };
        locked.set_default_flags((mm.default_flags() & !VM_LOCKED_MASK) | future);
        if flags & MCL_FUTURE != 0 && flags & MCL_CURRENT == 0 {
            return;
        }
        let current = if flags & MCL_CURRENT != 0 { lock } else { 0 };
        if mm.vma_count() > 0 {
            // Only fails for want of memory for the new VMAs; Linux, too, leaves the VMAs
            // changed so far and answers 0.
            let _ = locked.edit(
                0..USER_END,
                Edit::Advise {
                    set: current,
                    clear: VM_LOCKED_MASK,
                },
            );
        }
    }
    if flags & MCL_CURRENT != 0 {
        // Linux's `mm_populate`: errors are left for later accesses.
        let _ = fault_in(
            mm,
            0..USER_END,
            Populate::Lock {
                skip_failures: true,
            },
        );
    }
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

/// `brk`: moves the end of the heap; returns the (new or unchanged) end, never an error. Under
/// `mlockall(MCL_FUTURE)` the new part is locked and faulted in, as any new mapping.
pub fn brk(mm: &Mm, requested: u64) -> SysResult {
    let grown = grow_or_shrink_heap(mm, requested);
    if let Some(range) = grown
        && mm.default_flags() & VM_LOCKED_MASK == VM_LOCKED
    {
        let _ = fault_in(
            mm,
            range,
            Populate::Lock {
                skip_failures: true,
            },
        );
    }
    Ok(mm.brk_range().end)
}

/// Moves the end of the heap to `requested` if it may; the pages added, if it grew.
fn grow_or_shrink_heap(mm: &Mm, requested: u64) -> Option<Range<u64>> {
    let locked = mm.write();
    let heap = mm.brk_range();
    if requested < heap.start || requested > USER_END {
        return None;
    }
    let (old_top, new_top) = (page_up(heap.end)?, page_up(requested)?);
    if new_top > old_top {
        let flags = VM_READ | VM_WRITE | VM_BRK | mm.default_flags();
        if !locked.is_free(old_top..new_top)
            || locked.edit(old_top..new_top, Edit::Map(flags)).is_err()
        {
            return None;
        }
    } else if new_top < old_top && locked.edit(new_top..old_top, Edit::Unmap).is_err() {
        return None;
    }
    locked.set_brk(heap.start..requested);
    (new_top > old_top).then_some(old_top..new_top)
}
