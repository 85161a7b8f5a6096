//! Moving data between user buffers and the kernel for the read-like and write-like calls,
//! with Linux's checks and results: a buffer that wraps or leaves the user half is `EFAULT`
//! before anything moves (Linux's `access_ok`), one call moves at most [`MAX_RW_COUNT`]
//! bytes, and a fault part way through ends the transfer with the count of the bytes moved
//! before it (`EFAULT` only when it was the first byte).
//!
//! Data moves through a small buffer on the kernel stack, a piece at a time; no piece crosses a
//! page boundary. A page is accessible whole or not at all, so a piece either moves whole or
//! faults at its first byte, and the count returned is exact. Between pieces the thread gives
//! way ([`crate::sched::cond_resched`]) and stops early if it was killed, so a transfer of any
//! size holds no lock for long and never stalls RCU.

use super::errno::{EFAULT, Errno, SysResult};
use crate::arch::uaccess::{copy_from_user, copy_to_user, is_user_range};

/// The most bytes one call moves (Linux's `MAX_RW_COUNT`: `INT_MAX` rounded down to a page);
/// asking for more gives a partial result.
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// Bytes moved per piece.
const PIECE: usize = 512;
const PAGE: u64 = 4096;

/// Linux's `access_ok`: `[buf, buf + len)` lies in the user half without wrapping (checked
/// even when `len` is 0).
pub fn check_buffer(buf: u64, len: u64) -> Result<(), Errno> {
    if usize::try_from(len).is_ok_and(|len| is_user_range(buf, len)) {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

/// Hands the `len` user bytes at `buf` (already checked) to `sink`, piece by piece; returns
/// how many were handed over.
pub fn from_user(buf: u64, len: u64, mut sink: impl FnMut(&[u8])) -> SysResult {
    let mut piece = [0u8; PIECE];
    in_pieces(buf, len, |addr, size| {
        copy_from_user(&mut piece[..size], addr)?;
        sink(&piece[..size]);
        Ok(())
    })
}

/// Fills the `len` user bytes at `buf` (already checked) with what `source` puts in each
/// piece; returns how many were filled.
pub fn to_user(buf: u64, len: u64, mut source: impl FnMut(&mut [u8])) -> SysResult {
    let mut piece = [0u8; PIECE];
    in_pieces(buf, len, |addr, size| {
        source(&mut piece[..size]);
        copy_to_user(addr, &piece[..size])
    })
}

/// Runs `step(addr, size)` over `[buf, buf + len)` in pieces that cross no page boundary;
/// returns the bytes of the pieces done, or the first piece's error.
fn in_pieces(
    buf: u64,
    len: u64,
    mut step: impl FnMut(u64, usize) -> Result<(), Errno>,
) -> SysResult {
    let mut done = 0;
    while done < len {
        if done > 0 {
            crate::sched::cond_resched();
            if crate::sched::current().is_killed() {
                break;
            }
        }
        let addr = buf + done;
        let to_page_end = PAGE - addr % PAGE;
        let size = (len - done).min(to_page_end).min(PIECE as u64);
        if let Err(error) = step(addr, size as usize) {
            return if done == 0 { Err(error) } else { Ok(done) };
        }
        done += size;
    }
    Ok(done)
}
