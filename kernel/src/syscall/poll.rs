//! Waiting for descriptors: poll, ppoll, select and pselect6, with Linux's semantics.
//!
//! - The descriptors are looked up once, before the wait; the files answer what they are ready
//!   for through `Inode::poll`, and the caller sleeps on `fs::poll`'s queue until one of them
//!   is ready, a signal comes, or the timeout passes (0: ask once; none or a negative `poll`
//!   timeout: no limit).
//! - poll: a descriptor that is not open is `POLLNVAL` (and counts as ready), a negative one is
//!   skipped; more entries than `RLIMIT_NOFILE` is `EINVAL`; `revents` is written back whatever
//!   the outcome. select: a set bit naming a descriptor that is not open is `EBADF`; the count
//!   is clipped to the table's size; each set bit that is ready counts once; the sets are written
//!   back unless a signal interrupted the wait.
//! - An `O_PATH` descriptor is open but polls as `POLLNVAL`: poll reports it so, and select
//!   finds it ready in every set that asks for it (Linux's sets include `POLLNVAL`).
//! - A signal interrupts the wait with a restart: poll continues through `restart_syscall` to the
//!   same deadline; the others return `ERESTARTNOHAND` after writing the time left back to their
//!   timeout (which a restart then reads), and with a signal mask (ppoll, pselect6) keep that mask
//!   until the handler is entered, whose frame restores the caller's (Linux's
//!   `set_user_sigmask` and `poll_select_finish`).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::errno::{EBADF, EINTR, EINVAL, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, Errno, SysResult};
use super::signal::SIGSET_SIZE;
use super::thread::process;
use super::time::read_timespec;
use super::transfer::check_buffer;
use crate::arch::uaccess::{copy_from_user, copy_to_user, read_user, write_user};
use crate::fs::file::{File, MAX_FDS, O_PATH};
use crate::fs::poll::{
    self, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM, POLLWRBAND,
    POLLWRNORM,
};
use crate::proc::signal::{self, Restart};
use crate::sync::waitqueue::WaitResult;
use crate::time::now_ns;

/// The size of `struct pollfd`: `int fd; short events; short revents;`.
const POLLFD_SIZE: u64 = 8;
/// Where `revents` is in a `struct pollfd`.
const REVENTS_OFFSET: u64 = 6;

/// The events that put a descriptor in select's read, write and exceptional sets (Linux's
/// `POLLIN_SET`, `POLLOUT_SET`, `POLLEX_SET`): `POLLNVAL`, an `O_PATH` descriptor's, is in all.
const SET_EVENTS: [u32; 3] = [
    POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR | POLLNVAL,
    POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR | POLLNVAL,
    POLLPRI | POLLNVAL,
];

/// A timeout as the caller gave it and the deadline it sets.
#[derive(Clone, Copy)]
struct Timeout {
    given_ns: u64,
    deadline: u64,
}

impl Timeout {
    fn after(ns: u64) -> Self {
        Self {
            given_ns: ns,
            deadline: now_ns().saturating_add(ns),
        }
    }
}

/// The `struct timespec` timeout at `addr`, if not NULL.
fn timespec_timeout(addr: u64) -> Result<Option<Timeout>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    Ok(Some(Timeout::after(read_timespec(addr)?)))
}

/// The `struct timeval` timeout at `addr`, if not NULL: microseconds past a second carry into
/// the seconds, and a negative result is `EINVAL` (as Linux's select).
fn timeval_timeout(addr: u64) -> Result<Option<Timeout>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let [seconds, micros] = read_user::<[i64; 2]>(addr)?;
    let seconds = seconds.wrapping_add(micros / 1_000_000);
    let nanos = micros % 1_000_000 * 1000;
    if seconds < 0 || nanos < 0 {
        return Err(EINVAL);
    }
    let ns = (seconds as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nanos as u64);
    Ok(Some(Timeout::after(ns)))
}

/// How the time left is written back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    Timespec,
    Timeval,
}

/// The end of ppoll, select and pselect6 (Linux's `poll_select_finish`): the time left of a
/// timeout that was not zero goes back to `addr`. If that copy fails, an interrupted call
/// cannot be restarted with the time it has left: it ends with `EINTR`.
fn report_time_left(
    addr: u64,
    timeout: Option<Timeout>,
    format: TimeFormat,
    result: SysResult,
) -> SysResult {
    let Some(timeout) = timeout.filter(|timeout| timeout.given_ns != 0) else {
        return result;
    };
    let left = timeout.deadline.saturating_sub(now_ns());
    let seconds = (left / 1_000_000_000) as i64;
    let nanos = (left % 1_000_000_000) as i64;
    let fraction = match format {
        TimeFormat::Timespec => nanos,
        TimeFormat::Timeval => nanos / 1000,
    };
    match (write_user(addr, &[seconds, fraction]), result) {
        (Err(_), Err(ERESTARTNOHAND)) => Err(EINTR),
        (_, result) => result,
    }
}

/// The signal mask ppoll or pselect6 waits with, if the caller gave one.
struct CallMask {
    installed: bool,
}

impl CallMask {
    /// Installs the mask at `addr` (if not NULL; `size` must be a `sigset_t`'s).
    fn install(addr: u64, size: u64) -> Result<Self, Errno> {
        if addr == 0 {
            return Ok(Self { installed: false });
        }
        if size != SIGSET_SIZE {
            return Err(EINVAL);
        }
        signal::set_temporary_mask(read_user::<u64>(addr)?);
        Ok(Self { installed: true })
    }

    /// Puts the caller's mask back, unless a signal interrupted the call: then it comes back
    /// after the signal is delivered.
    fn finish(self, result: &SysResult) {
        if self.installed && *result != Err(ERESTARTNOHAND) {
            signal::restore_temporary_mask();
        }
    }
}

/// Whether some of `files` must be asked again from time to time (see `fs::poll`).
fn needs_rescan<'a>(mut files: impl Iterator<Item = &'a Arc<File>>) -> bool {
    files.any(|file| !file.inode().signals_readiness())
}

/// What a wait found: the count of ready entries, or `ERESTARTNOHAND` for a signal.
fn wait_outcome(woken: WaitResult, ready: usize) -> SysResult {
    match woken {
        WaitResult::Ready => Ok(ready as u64),
        WaitResult::TimedOut => Ok(0),
        WaitResult::Interrupted => Err(ERESTARTNOHAND),
    }
}

/// The open `file` as the polling calls see it: an `O_PATH` descriptor names a place, not a file
/// open for anything, and is polled as no file (`POLLNVAL`), as Linux's `fdget` makes it.
fn polled(file: Arc<File>) -> Option<Arc<File>> {
    (file.flags() & O_PATH == 0).then_some(file)
}

/// One `struct pollfd`: its descriptor, the file (`None` if not open, or `O_PATH`) and the
/// events asked.
struct PollEntry {
    fd: i32,
    file: Option<Arc<File>>,
    events: u32,
}

impl PollEntry {
    /// Its `revents` now.
    fn revents(&self) -> u32 {
        match &self.file {
            _ if self.fd < 0 => 0,
            None => POLLNVAL,
            Some(file) => file.inode().poll(file) & (self.events | POLLERR | POLLHUP),
        }
    }
}

/// Polls the `count` pollfds at `fds` until `deadline`; writes every `revents` back (`EFAULT`
/// after the wait if the array is not in user memory).
fn poll_fds(fds: u64, count: u64, deadline: Option<u64>) -> SysResult {
    if count > MAX_FDS as u64 {
        return Err(EINVAL);
    }
    let mut raw = vec![0u8; (count * POLLFD_SIZE) as usize];
    // No entries: nothing to read (the address is checked after the wait, below).
    if count > 0 {
        copy_from_user(&mut raw, fds)?;
    }
    let files = process().files();
    let entries: Vec<PollEntry> = raw
        .as_chunks::<{ POLLFD_SIZE as usize }>()
        .0
        .iter()
        .map(|&[f0, f1, f2, f3, e0, e1, ..]| {
            let fd = i32::from_ne_bytes([f0, f1, f2, f3]);
            let events = u32::from(u16::from_ne_bytes([e0, e1]));
            let file = u64::try_from(fd)
                .ok()
                .and_then(|fd| files.get(fd).ok())
                .and_then(polled);
            PollEntry { fd, file, events }
        })
        .collect();
    let rescan = needs_rescan(entries.iter().filter_map(|entry| entry.file.as_ref()));
    let mut revents = vec![0u32; entries.len()];
    let mut ready = 0;
    let woken = poll::wait(
        || {
            for (entry, out) in entries.iter().zip(revents.iter_mut()) {
                *out = entry.revents();
            }
            ready = revents.iter().filter(|&&events| events != 0).count();
            ready > 0
        },
        deadline,
        rescan,
    );
    let result = wait_outcome(woken, ready);
    // As Linux, the array must lie in user memory even when empty.
    check_buffer(fds, count * POLLFD_SIZE)?;
    for (index, events) in revents.iter().enumerate() {
        let at = fds + index as u64 * POLLFD_SIZE + REVENTS_OFFSET;
        copy_to_user(at, &(*events as u16).to_ne_bytes())?;
    }
    result
}

/// poll until `deadline`: a signal without a handler makes it continue, through
/// `restart_syscall`, to the same deadline.
pub(super) fn poll_until(fds: u64, count: u64, deadline: Option<u64>) -> SysResult {
    let result = poll_fds(fds, count, deadline);
    if result == Err(ERESTARTNOHAND) {
        signal::set_restart(Restart::Poll {
            fds,
            count,
            deadline,
        });
        return Err(ERESTART_RESTARTBLOCK);
    }
    result
}

pub fn poll(fds: u64, count: u64, timeout_ms: u64) -> SysResult {
    let deadline = u64::try_from(timeout_ms as i32)
        .ok()
        .map(|ms| Timeout::after(ms * 1_000_000).deadline);
    poll_until(fds, u64::from(count as u32), deadline)
}

pub fn ppoll(fds: u64, count: u64, timeout: u64, mask: u64, mask_size: u64) -> SysResult {
    let wait = timespec_timeout(timeout)?;
    let mask = CallMask::install(mask, mask_size)?;
    let result = poll_fds(fds, u64::from(count as u32), wait.map(|t| t.deadline));
    mask.finish(&result);
    report_time_left(timeout, wait, TimeFormat::Timespec, result)
}

/// An `fd_set` of `words` 64-bit words from `addr` (all clear for NULL; none read for no
/// words, whatever the address).
fn read_fd_set(addr: u64, words: usize) -> Result<Vec<u64>, Errno> {
    let mut bytes = vec![0u8; words * 8];
    if addr != 0 && words > 0 {
        copy_from_user(&mut bytes, addr)?;
    }
    Ok(bytes
        .as_chunks::<8>()
        .0
        .iter()
        .map(|&word| u64::from_ne_bytes(word))
        .collect())
}

fn write_fd_set(addr: u64, set: &[u64]) -> Result<(), Errno> {
    let bytes: Vec<u8> = set.iter().flat_map(|word| word.to_ne_bytes()).collect();
    copy_to_user(addr, &bytes)
}

/// select on descriptors below `count` in the read, write and exceptional sets at `sets`
/// (NULL: none) until `deadline`.
fn select_fds(count: u64, sets: [u64; 3], deadline: Option<u64>) -> SysResult {
    let count = usize::try_from(count as i32)
        .map_err(|_| EINVAL)?
        .min(MAX_FDS);
    let words = count.div_ceil(64);
    let mut wanted = [Vec::new(), Vec::new(), Vec::new()];
    for (set, &addr) in wanted.iter_mut().zip(&sets) {
        *set = read_fd_set(addr, words)?;
        // Bits from `count` on are not looked at.
        if let Some(last) = set.last_mut()
            && count % 64 != 0
        {
            *last &= (1 << (count % 64)) - 1;
        }
    }
    let files = process().files();
    let mut watched: Vec<(usize, Option<Arc<File>>)> = Vec::new();
    for fd in 0..count {
        let bit = 1 << (fd % 64);
        if wanted.iter().any(|set| set[fd / 64] & bit != 0) {
            watched.push((fd, polled(files.get(fd as u64).map_err(|_| EBADF)?)));
        }
    }
    let rescan = needs_rescan(watched.iter().filter_map(|(_, file)| file.as_ref()));
    let mut found = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut ready = 0;
    let woken = poll::wait(
        || {
            ready = 0;
            for set in &mut found {
                set.fill(0);
            }
            for (fd, file) in &watched {
                let events = file
                    .as_ref()
                    .map_or(POLLNVAL, |file| file.inode().poll(file));
                let (word, bit) = (fd / 64, 1 << (fd % 64));
                for ((hits, asked), set_events) in found.iter_mut().zip(&wanted).zip(SET_EVENTS) {
                    if asked[word] & bit != 0 && events & set_events != 0 {
                        hits[word] |= bit;
                        ready += 1;
                    }
                }
            }
            ready > 0
        },
        deadline,
        rescan,
    );
    let ready = wait_outcome(woken, ready)?;
    for (set, &addr) in found.iter().zip(&sets) {
        if addr != 0 && words > 0 {
            write_fd_set(addr, set)?;
        }
    }
    Ok(ready)
}

pub fn select(count: u64, read: u64, write: u64, except: u64, timeval: u64) -> SysResult {
    let wait = timeval_timeout(timeval)?;
    let result = select_fds(count, [read, write, except], wait.map(|t| t.deadline));
    report_time_left(timeval, wait, TimeFormat::Timeval, result)
}

/// `pselect6(count, read, write, except, timeout, sigmask)`: `sigmask` points at a
/// `{ const sigset_t *set; size_t size; }` pair (or is NULL).
pub fn pselect6(
    count: u64,
    read: u64,
    write: u64,
    except: u64,
    timeout: u64,
    sigmask: u64,
) -> SysResult {
    let [mask, mask_size] = if sigmask != 0 {
        read_user::<[u64; 2]>(sigmask)?
    } else {
        [0, 0]
    };
    let wait = timespec_timeout(timeout)?;
    let mask = CallMask::install(mask, mask_size)?;
    let result = select_fds(count, [read, write, except], wait.map(|t| t.deadline));
    mask.finish(&result);
    report_time_left(timeout, wait, TimeFormat::Timespec, result)
}
