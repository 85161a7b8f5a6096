//! What waits in a pending set: each signal's `siginfo`, standard signals once, real-time
//! signals queued in the order they came; and which one is taken next. The sets live in
//! `ProcessSignals` and `ThreadSignals`, under their locks.

use alloc::vec::Vec;

use super::{SI_USER, SIGRTMIN, SYNCHRONOUS, sigmask};
use crate::syscall::errno::{EAGAIN, Errno};

/// Queued instances per pending set (process or thread): Linux's `RLIMIT_SIGPENDING` in spirit.
/// A real-time signal beyond it fails with `EAGAIN` unless `kill` sent it.
pub const MAX_QUEUED: usize = 1024;

/// A signal's `siginfo_t`, as much as the kernel keeps of it (Linux's `kernel_siginfo`, 48
/// bytes): `si_signo`, `si_errno`, `si_code`, then 32 bytes whose layout depends on the signal
/// and the code (`si_pid` and `si_uid` of a sender; `si_addr` of a fault; pid, uid, status and
/// times of a SIGCHLD). User space sees 128 bytes, the rest zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    words: [u64; 6],
}

impl SigInfo {
    /// Signal `signo` with `code` and the layout-dependent `fields` (bytes 16..48 of
    /// `siginfo_t`, as little-endian words: for SIGCHLD, `pid | uid << 32`, the status, user
    /// and system time in clock ticks).
    pub fn new(signo: u32, code: i32, fields: [u64; 4]) -> Self {
        let [a, b, c, d] = fields;
        Self {
            words: [u64::from(signo), u64::from(code as u32), a, b, c, d],
        }
    }

    /// Signal `signo` from a sender (`kill`, `tgkill`): `si_pid` and `si_uid`.
    pub fn from_sender(signo: u32, code: i32, pid: u32, uid: u32) -> Self {
        Self::new(
            signo,
            code,
            [u64::from(pid) | u64::from(uid) << 32, 0, 0, 0],
        )
    }

    /// A fault at `addr` (`si_addr`).
    pub(super) fn fault(signo: u32, code: i32, addr: u64) -> Self {
        Self::new(signo, code, [addr, 0, 0, 0])
    }

    /// What `rt_sigqueueinfo` was given (128 bytes), sent as `signo`: only its first 48 bytes
    /// are kept, as on Linux.
    pub fn from_user(words: [u64; 16], signo: u32) -> Self {
        let mut kept = [0; 6];
        kept.copy_from_slice(&words[..6]);
        kept[0] = (kept[0] & !0xffff_ffff) | u64::from(signo);
        Self { words: kept }
    }

    pub fn signo(&self) -> u32 {
        self.words[0] as u32
    }

    pub fn code(&self) -> i32 {
        self.words[1] as u32 as i32
    }

    /// Word `index` (0-3) of the layout-dependent fields given to [`SigInfo::new`].
    pub fn field(&self, index: usize) -> u64 {
        self.words[2 + index]
    }

    pub(super) fn with_signo(mut self, signo: u32) -> Self {
        self.words[0] = (self.words[0] & !0xffff_ffff) | u64::from(signo);
        self
    }

    /// The 128 bytes user space sees.
    pub fn to_user(self) -> [u64; 16] {
        let mut words = [0; 16];
        words[..6].copy_from_slice(&self.words);
        words
    }
}

/// The next signal of `set` to take: a synchronous one first, else the lowest.
pub(super) fn next_signal(set: u64) -> Option<u32> {
    let first = if set & SYNCHRONOUS != 0 {
        set & SYNCHRONOUS
    } else {
        set
    };
    (first != 0).then(|| first.trailing_zeros() + 1)
}

/// Signals waiting in one set (a thread's or a process's): which are pending, and the
/// `siginfo` of each instance, in the order they came.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) set: u64,
    pub(super) queue: Vec<SigInfo>,
}

impl Pending {
    /// Adds an instance. A standard signal already pending is not added again; a real-time
    /// signal beyond [`MAX_QUEUED`] is refused (`EAGAIN`) unless `kill` sent it, in which case
    /// it stays pending without its `siginfo`.
    pub(super) fn add(&mut self, info: SigInfo) -> Result<(), Errno> {
        let signo = info.signo();
        let bit = sigmask(signo);
        if signo < SIGRTMIN && self.set & bit != 0 {
            return Ok(());
        }
        if self.queue.len() < MAX_QUEUED {
            self.queue.push(info);
        } else if signo >= SIGRTMIN && info.code() != SI_USER {
            return Err(EAGAIN);
        }
        self.set |= bit;
        Ok(())
    }

    /// Takes the oldest instance of `signo` (which is pending); an instance that lost its
    /// `siginfo` comes back as a plain `kill` from nobody.
    pub(super) fn take(&mut self, signo: u32) -> SigInfo {
        let mut found = None;
        let mut more = false;
        for (index, info) in self.queue.iter().enumerate() {
            if info.signo() == signo {
                if found.is_some() {
                    more = true;
                    break;
                }
                found = Some(index);
            }
        }
        if !more {
            self.set &= !sigmask(signo);
        }
        match found {
            Some(index) => self.queue.remove(index),
            None => SigInfo::from_sender(signo, SI_USER, 0, 0),
        }
    }

    /// Drops every instance of the signals in `mask`.
    pub(super) fn discard(&mut self, mask: u64) {
        self.set &= !mask;
        self.queue.retain(|info| sigmask(info.signo()) & mask == 0);
    }
}
