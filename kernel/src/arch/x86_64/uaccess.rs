//! Copying to and from user memory: the only way kernel code touches user pages.
//!
//! Each helper first checks that the whole range lies in user space (else `EFAULT`), then copies
//! with an instruction listed in the exception table, with EFLAGS.AC set for the copy when SMAP
//! is on. A page fault at that instruction is first served like a user fault (demand paging:
//! `read()` into untouched BSS works); only an address without a mapping, or an access the
//! mapping forbids, ends the copy with `EFAULT` (see `trap::exception`). Callers must not hold
//! `mmap_lock`, a spinlock or an RCU read section: serving the fault may sleep.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::cpu_features::smap_enabled;
use super::extable::fault_at_2_continue_at_3;
use super::percpu::{PerCpu, per_cpu};
use super::syscall::USER_END;
use crate::syscall::errno::{EFAULT, ENAMETOOLONG, Errno};

/// Whether `[addr, addr + len)` lies inside user space.
pub fn is_user_range(addr: u64, len: usize) -> bool {
    addr.checked_add(len as u64)
        .is_some_and(|end| end <= USER_END)
}

fn check_range(addr: u64, len: usize) -> Result<(), Errno> {
    if is_user_range(addr, len) {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

/// Copies `len` bytes from `src` to `dst` where one side is user memory; `Err(EFAULT)` if a
/// user page is missing for good or forbids the access.
///
/// # Safety
/// The kernel side of the copy is valid for `len` bytes; the user side was range-checked.
unsafe fn copy_raw(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Errno> {
    let status: i64;
    let smap = smap_enabled();
    if smap {
        // SAFETY: `stac` exists when SMAP is on; it only permits user-page accesses until
        // `clac`.
        unsafe { core::arch::asm!("stac", options(nostack)) };
    }
    // SAFETY: the kernel side is valid (the caller's contract); a fault on the user side either
    // is served and the copy resumes, or jumps to label 3 with RAX = -EFAULT (exception table).
    unsafe {
        core::arch::asm!(
            "xor eax, eax",
            "2: rep movsb",
            "3:",
            fault_at_2_continue_at_3!(),
            inout("rdi") dst => _,
            inout("rsi") src => _,
            inout("rcx") len => _,
            out("rax") status,
            options(nostack),
        );
    }
    if smap {
        // SAFETY: as for `stac`: it ends what `stac` permitted.
        unsafe { core::arch::asm!("clac", options(nostack)) };
    }
    if status == 0 { Ok(()) } else { Err(EFAULT) }
}

/// Fills `dst` from user address `src`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), Errno> {
    crate::sync::rcu::might_sleep();
    check_range(src, dst.len())?;
    if dst.is_empty() {
        return Ok(());
    }
    // SAFETY: `dst` is a valid kernel buffer of its length; `src` is range-checked.
    unsafe { copy_raw(dst.as_mut_ptr(), src as *const u8, dst.len()) }
}

/// Writes `src` to user address `dst`.
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), Errno> {
    crate::sync::rcu::might_sleep();
    check_range(dst, src.len())?;
    if src.is_empty() {
        return Ok(());
    }
    // SAFETY: `src` is a valid kernel buffer of its length; `dst` is range-checked.
    unsafe { copy_raw(dst as *mut u8, src.as_ptr(), src.len()) }
}

/// Plain data that may be copied from arbitrary bytes.
///
/// # Safety
/// Every bit pattern of the type's size is a valid value, and it has no padding.
pub unsafe trait Pod: Copy + Default {}

// SAFETY: integers are valid for every bit pattern and have no padding.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: arrays of `Pod` values are `Pod`.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] where [T; N]: Default {}

/// Reads a `T` from user address `src` (any alignment).
pub fn read_user<T: Pod>(src: u64) -> Result<T, Errno> {
    crate::sync::rcu::might_sleep();
    read_user_raw(src)
}

fn read_user_raw<T: Pod>(src: u64) -> Result<T, Errno> {
    check_range(src, size_of::<T>())?;
    let mut value = T::default();
    // SAFETY: `value` is a valid `T`-sized buffer, and `T` is `Pod`, so its bytes may be
    // overwritten with anything; `src` is range-checked.
    unsafe {
        copy_raw(
            (&raw mut value).cast::<u8>(),
            src as *const u8,
            size_of::<T>(),
        )?
    };
    Ok(value)
}

/// Writes `value` to user address `dst` (any alignment).
pub fn write_user<T: Pod>(dst: u64, value: &T) -> Result<(), Errno> {
    // SAFETY: `T` is `Pod`: no padding, so every byte is initialised.
    let bytes =
        unsafe { core::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) };
    copy_to_user(dst, bytes)
}

/// Per CPU: nonzero while uaccess faults must not be served (the caller holds a spinlock).
static PAGEFAULTS_DISABLED: PerCpu<AtomicUsize> = per_cpu![AtomicUsize::new(0)];

/// Whether a uaccess fault on this CPU must fail instead of being served.
pub fn pagefaults_disabled() -> bool {
    PAGEFAULTS_DISABLED.local().load(Ordering::Relaxed) != 0
}

/// Reads a `T` from user address `src` without serving page faults: a missing page gives
/// `EFAULT` at once. For callers holding a spinlock (interrupts disabled, so the CPU stays).
pub fn read_user_nofault<T: Pod>(src: u64) -> Result<T, Errno> {
    let counter = PAGEFAULTS_DISABLED.local();
    counter.fetch_add(1, Ordering::Relaxed);
    let result = read_user_raw(src);
    counter.fetch_sub(1, Ordering::Relaxed);
    result
}

/// Atomically replaces the 4-byte-aligned `u32` at user address `addr` with `new` if it holds
/// `expected`; returns the value it held (equal to `expected` when replaced). The access is a
/// write even when the values differ, so a fault breaks copy-on-write as a store would.
pub fn cmpxchg_user_u32(addr: u64, expected: u32, new: u32) -> Result<u32, Errno> {
    crate::sync::rcu::might_sleep();
    cmpxchg_user_u32_raw(addr, expected, new)
}

/// As [`cmpxchg_user_u32`] without serving page faults (a missing page gives `EFAULT` at
/// once), for callers holding a spinlock.
pub fn cmpxchg_user_u32_nofault(addr: u64, expected: u32, new: u32) -> Result<u32, Errno> {
    let counter = PAGEFAULTS_DISABLED.local();
    counter.fetch_add(1, Ordering::Relaxed);
    let result = cmpxchg_user_u32_raw(addr, expected, new);
    counter.fetch_sub(1, Ordering::Relaxed);
    result
}

fn cmpxchg_user_u32_raw(addr: u64, expected: u32, new: u32) -> Result<u32, Errno> {
    check_range(addr, size_of::<u32>())?;
    if addr % 4 != 0 {
        return Err(EFAULT);
    }
    let smap = smap_enabled();
    if smap {
        // SAFETY: `stac` exists when SMAP is on; it only permits user-page accesses until
        // `clac`.
        unsafe { core::arch::asm!("stac", options(nostack)) };
    }
    let result: u64;
    // SAFETY: `addr` is a range-checked, aligned user address; a fault there either is served
    // and the instruction retried, or jumps to label 3 with RAX = -EFAULT (exception table).
    // A 32-bit CMPXCHG leaves RAX below 2^32 (the old value), so the two cannot be mixed up.
    unsafe {
        core::arch::asm!(
            "2: lock cmpxchg dword ptr [{addr}], {new:e}",
            "3:",
            fault_at_2_continue_at_3!(),
            addr = in(reg) addr,
            new = in(reg) new,
            inout("rax") u64::from(expected) => result,
            options(nostack),
        );
    }
    if smap {
        // SAFETY: as for `stac`: it ends what `stac` permitted.
        unsafe { core::arch::asm!("clac", options(nostack)) };
    }
    u32::try_from(result).map_err(|_| EFAULT)
}

/// Copies the NUL-terminated string at user address `src` into `dst`; returns its length
/// (without the NUL). `ENAMETOOLONG` if `dst` fills up first, `EFAULT` for a bad address.
/// Reads page by page, never past the page holding the terminator.
pub fn strncpy_from_user(dst: &mut [u8], src: u64) -> Result<usize, Errno> {
    let mut copied = 0;
    while copied < dst.len() {
        let addr = src.checked_add(copied as u64).ok_or(EFAULT)?;
        let to_page_end = (4096 - (addr % 4096)) as usize;
        let chunk = to_page_end.min(dst.len() - copied);
        copy_from_user(&mut dst[copied..copied + chunk], addr)?;
        if let Some(nul) = dst[copied..copied + chunk].iter().position(|&b| b == 0) {
            return Ok(copied + nul);
        }
        copied += chunk;
    }
    Err(ENAMETOOLONG)
}
