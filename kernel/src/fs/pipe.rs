//! Pipes: a ring of page-sized slots between the files of a read end and a write end, with
//! Linux's semantics (its `pipe_inode_info`):
//!
//! - The capacity is counted in slots of a page: 16 (64 KiB) unless `F_SETPIPE_SZ` changes it.
//!   A write whose size is not a multiple of a page first appends its odd part to the last slot
//!   if it fits there (so small writes share a page), then fills new slots a page at a time. A
//!   write of at most `PIPE_BUF` bytes (a page) is therefore never split: it goes whole into
//!   the last slot or into one new slot, or waits for one (`EAGAIN` if non-blocking). A larger
//!   write may be interleaved with others between pages, and a non-blocking one moves what fits.
//! - A fault in the caller's buffer counts in those pieces, as Linux's `pipe_write` does: the
//!   piece it falls in (the odd part, or a page) is dropped, the write returns the bytes of the
//!   pieces before it or `EFAULT`, and a page's slot stays in the ring, empty: the read end
//!   polls readable, a read goes past it (a packet read returns 0 for it), and it takes room.
//! - A read takes what is there, up to its size, and returns as soon as it took anything: it
//!   waits only while the pipe is empty, and returns 0 (end of file) once no writer is left.
//! - A write with no reader left fails with `EPIPE` and sends SIGPIPE to the writing thread.
//! - Packet mode (`O_DIRECT` on the writing file, from `pipe2`): each page of a write is a
//!   packet in a slot of its own; a read takes at most one packet and drops what of it does not
//!   fit its buffer.
//!
//! The counts of readers and writers are those of the open descriptions of each end, kept by the
//! `open` and `release` hooks. The unnamed dentry of a pipe is called `pipe:[INO]`, what
//! `/proc/PID/fd` shows.
//!
//! # Locks and waits
//! One spinlock protects the ring and the counts, held to move bytes between the ring and a
//! kernel buffer (at most a read's, or [`STAGE`] bytes of a write), and to allocate a slot's
//! page, never across user memory or a sleep. Readers wait on `readable`, writers on
//! `writable`, interruptibly (a signal ends the wait with `ERESTARTSYS`, or with the bytes
//! moved so far); every change also wakes the pollers ([`poll::readiness_changed`]).
//!
//! The read system calls move the data through a kernel buffer (`syscall::io`): a read takes its
//! bytes out of the ring before they are copied to user memory, so a fault in that copy loses
//! the bytes it did not copy (Linux copies straight from the ring and leaves them there). A
//! write gathers its bytes into a kernel buffer first ([`Pipe::write`]).

use alloc::collections::VecDeque;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::attributes::Attributes;
use super::dentry::Dentry;
use super::file::{File, O_DIRECT, O_RDONLY, O_WRONLY};
use super::poll::{self, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use super::{FileKind, FsKind, Inode, Stat, allocate_inode_number, now_ns};
use crate::proc::signal::{self, SI_USER, SIGPIPE, SigInfo};
use crate::sync::WaitQueue;
use crate::sync::waitqueue::WaitResult;
use crate::syscall::errno::{
    EAGAIN, EBUSY, EFAULT, EINVAL, ENOMEM, EPERM, EPIPE, ERESTARTSYS, Errno,
};

/// The size of a slot, also `PIPE_BUF`: writes of up to this many bytes are atomic.
const PAGE: usize = 4096;
/// The most bytes of a write gathered from its caller at a time.
const STAGE: usize = 16 * PAGE;
/// A new pipe's capacity in slots (64 KiB, Linux's default).
const DEFAULT_SLOTS: usize = 16;
/// The largest capacity `F_SETPIPE_SZ` grants: Linux's `/proc/sys/fs/pipe-max-size` for a
/// process without `CAP_SYS_RESOURCE` (larger ones are `EPERM`).
const MAX_CAPACITY: u64 = 1 << 20;
/// Sizes above this are `EINVAL` for `F_SETPIPE_SZ` (Linux's `round_pipe_size`).
const LARGEST_SIZE: u64 = 1 << 31;

/// One page of a pipe's data: the bytes from `start` on are still to be read.
struct Slot {
    bytes: Vec<u8>,
    start: usize,
    /// A packet (`O_DIRECT`): read at most once, never appended to.
    packet: bool,
}

impl Slot {
    fn unread(&self) -> usize {
        self.bytes.len() - self.start
    }
}

/// What ended a [`Ring::push`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum PushEnd {
    /// The whole write is in.
    Done,
    /// No slot is free.
    Full,
    /// The bytes of the next page are not gathered yet.
    Unstaged,
    /// The gathering faulted before the end of the next piece.
    Fault,
    /// No page for a new slot.
    NoMemory,
}

/// The data and the two ends' counts (under [`Pipe::ring`]).
struct Ring {
    slots: VecDeque<Slot>,
    max_slots: usize,
    readers: usize,
    writers: usize,
}

impl Ring {
    fn is_full(&self) -> bool {
        self.slots.len() >= self.max_slots
    }

    fn queued(&self) -> usize {
        self.slots.iter().map(Slot::unread).sum()
    }

    /// Appends the next bytes of a write whose last `remaining` bytes are still to go, from
    /// `staged`: those of them gathered so far, fewer than `remaining` if the gathering stopped
    /// (`faulted`: at a fault, else only for now). Linux's steps: at the start of the write
    /// (`starting`), its odd part joins the last slot if there is room there, or the write
    /// fails with nothing in; then a page at a time into new slots. A page the gathering could
    /// not fill ends the write, its slot left in the ring, empty, as Linux leaves the one it had
    /// taken. Returns the bytes appended and what stopped it.
    fn push(
        &mut self,
        staged: &[u8],
        remaining: usize,
        faulted: bool,
        packet: bool,
        starting: bool,
    ) -> (usize, PushEnd) {
        let mut pushed = 0;
        let odd = remaining % PAGE;
        if starting
            && odd != 0
            && let Some(last) = self.slots.back_mut()
            && !last.packet
            && last.bytes.len() + odd <= PAGE
        {
            if staged.len() < odd {
                return (0, PushEnd::Fault);
            }
            last.bytes.extend_from_slice(&staged[..odd]);
            pushed = odd;
        }
        while pushed < remaining {
            if self.is_full() {
                return (pushed, PushEnd::Full);
            }
            let piece = (remaining - pushed).min(PAGE);
            let available = staged.len() - pushed;
            if available < piece && !faulted {
                return (pushed, PushEnd::Unstaged);
            }
            let mut bytes = Vec::new();
            if bytes.try_reserve_exact(PAGE).is_err() {
                return (pushed, PushEnd::NoMemory);
            }
            let whole = available >= piece;
            if whole {
                bytes.extend_from_slice(&staged[pushed..pushed + piece]);
            }
            self.slots.push_back(Slot {
                bytes,
                start: 0,
                packet,
            });
            if !whole {
                return (pushed, PushEnd::Fault);
            }
            pushed += piece;
        }
        (pushed, PushEnd::Done)
    }

    /// Moves the oldest bytes into `buf`, up to its size or the end of the first packet met
    /// (an empty one too: Linux's read returns 0 for it); returns how many, and whether a
    /// packet ended the read. Empty slots met on the way go.
    fn pop(&mut self, buf: &mut [u8]) -> (usize, bool) {
        let mut popped = 0;
        while popped < buf.len()
            && let Some(slot) = self.slots.front_mut()
        {
            let count = slot.unread().min(buf.len() - popped);
            buf[popped..popped + count].copy_from_slice(&slot.bytes[slot.start..][..count]);
            slot.start += count;
            popped += count;
            let packet = slot.packet;
            if packet || slot.unread() == 0 {
                self.slots.pop_front();
            }
            if packet {
                return (popped, true);
            }
        }
        (popped, false)
    }
}

pub struct Pipe {
    ino: u64,
    /// Permission bits, owner, group and times (`fchmod`, `fchown`, `futimens`).
    attributes: Attributes,
    ring: spin::Mutex<Ring>,
    /// Readers waiting for data or for the last writer to go.
    readable: WaitQueue,
    /// Writers waiting for room or for the last reader to go.
    writable: WaitQueue,
}

/// A new pipe's two ends: the read end and the write end, with the status flags `flags`
/// (`O_NONBLOCK`, `O_DIRECT`).
pub fn open_pair(flags: u32) -> Result<(Arc<File>, Arc<File>), Errno> {
    let pipe = Arc::new(Pipe {
        ino: allocate_inode_number(),
        attributes: Attributes::new(0o600, now_ns()),
        ring: spin::Mutex::new(Ring {
            slots: VecDeque::new(),
            max_slots: DEFAULT_SLOTS,
            readers: 0,
            writers: 0,
        }),
        readable: WaitQueue::new(),
        writable: WaitQueue::new(),
    });
    let dentry = Dentry::unnamed(&format!("pipe:[{}]", pipe.ino), pipe);
    let read_end = File::open(dentry.clone(), O_RDONLY | flags)?;
    let write_end = File::open(dentry, O_WRONLY | flags)?;
    Ok((read_end, write_end))
}

/// The pipe behind `file`, if it is one.
pub fn pipe_of(file: &File) -> Option<&Pipe> {
    file.inode().as_any().downcast_ref::<Pipe>()
}

impl Pipe {
    /// The bytes waiting to be read (`FIONREAD`).
    pub fn queued(&self) -> usize {
        self.ring.lock().queued()
    }

    /// The capacity in bytes (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> u64 {
        (self.ring.lock().max_slots * PAGE) as u64
    }

    /// `F_SETPIPE_SZ`: the capacity becomes `size` rounded up to a power of two pages; returns
    /// it. `EINVAL` past 2 GiB, `EPERM` past [`MAX_CAPACITY`], `EBUSY` if the data there is
    /// takes more slots.
    pub fn set_capacity(&self, size: u64) -> Result<u64, Errno> {
        if size > LARGEST_SIZE {
            return Err(EINVAL);
        }
        let bytes = size.max(PAGE as u64).next_power_of_two();
        if bytes > MAX_CAPACITY {
            return Err(EPERM);
        }
        let slots = bytes as usize / PAGE;
        {
            let mut ring = self.ring.lock();
            if ring.slots.len() > slots {
                return Err(EBUSY);
            }
            ring.max_slots = slots;
        }
        self.wake_writers();
        Ok(bytes)
    }

    /// Writes `total` bytes that `gather` copies in order into the buffers it is given
    /// (returning how many it copied, fewer only at a fault), as Linux's `pipe_write` does:
    /// see [`Ring::push`] for where the bytes go and what a fault leaves. The bytes are
    /// gathered with no lock held, up to [`STAGE`] at a time; a write of at most a page is
    /// gathered whole before the ring is locked, so it goes in at once. Returns the bytes
    /// written, or, if none were: `EPIPE` (and SIGPIPE) without a reader, `EFAULT`, `ENOMEM`,
    /// `EAGAIN` when full and non-blocking, `ERESTARTSYS` for a signal while waiting for room.
    pub fn write(
        &self,
        file: &File,
        total: usize,
        gather: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> Result<usize, Errno> {
        let packet = file.flags() & O_DIRECT != 0;
        // Gathered and not yet in the ring (the `written` bytes before them are).
        let mut staged = Vec::new();
        let mut faulted = false;
        let mut written = 0;
        // The odd part may join the last slot only on the first try, not after a wait.
        let mut starting = true;
        // What ends the call once nothing more can go in now: the bytes written, if any.
        let partial_or = |written: usize, error: Errno| {
            if written > 0 { Ok(written) } else { Err(error) }
        };
        while written < total {
            let remaining = total - written;
            if !faulted && staged.len() < remaining.min(PAGE) {
                let want = (remaining - staged.len()).min(STAGE);
                let old = staged.len();
                if staged.try_reserve_exact(want).is_err() {
                    return partial_or(written, ENOMEM);
                }
                staged.resize(old + want, 0);
                let gathered = gather(&mut staged[old..]);
                staged.truncate(old + gathered);
                faulted = gathered < want;
            }
            let pushed = {
                let mut ring = self.ring.lock();
                (ring.readers > 0).then(|| ring.push(&staged, remaining, faulted, packet, starting))
            };
            starting = false;
            let Some((count, end)) = pushed else {
                send_sigpipe();
                return partial_or(written, EPIPE);
            };
            staged.drain(..count);
            written += count;
            if count > 0 || end == PushEnd::Fault {
                self.wake_readers();
            }
            match end {
                PushEnd::Done | PushEnd::Unstaged => {}
                PushEnd::Fault => return partial_or(written, EFAULT),
                PushEnd::NoMemory => return partial_or(written, ENOMEM),
                PushEnd::Full if file.nonblocking() => return partial_or(written, EAGAIN),
                PushEnd::Full => {
                    let woken = self.writable.wait_interruptible(
                        || {
                            let ring = self.ring.lock();
                            ring.readers == 0 || !ring.is_full()
                        },
                        None,
                    );
                    if woken == WaitResult::Interrupted {
                        return partial_or(written, ERESTARTSYS);
                    }
                }
            }
        }
        Ok(written)
    }

    fn wake_readers(&self) {
        self.readable.wake_all();
        poll::readiness_changed();
    }

    fn wake_writers(&self) {
        self.writable.wake_all();
        poll::readiness_changed();
    }
}

/// SIGPIPE for the calling thread, from itself (Linux's `send_sig(SIGPIPE, current, 0)`).
fn send_sigpipe() {
    let task = crate::sched::current_arc();
    let Some(pid) = task.process().map(|process| process.pid) else {
        return;
    };
    let info = SigInfo::from_sender(SIGPIPE, SI_USER, pid, 0);
    // A kernel thread (a test) has no signals: the EPIPE is all it gets.
    let _ = signal::send_signal_to_thread(&task, SIGPIPE, info);
}

impl Inode for Pipe {
    fn kind(&self) -> FileKind {
        FileKind::Fifo
    }

    fn stat(&self) -> Stat {
        let mut stat = Stat {
            dev: FsKind::Pipefs.device(),
            ino: self.ino,
            nlink: 1,
            blksize: PAGE as u32,
            ..Stat::default()
        };
        self.attributes.fill(FileKind::Fifo, &mut stat);
        stat
    }

    fn fs(&self) -> FsKind {
        FsKind::Pipefs
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        self.attributes.set_mode(mode);
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.attributes.set_owner(FileKind::Fifo, uid, gid);
        Ok(())
    }

    fn set_mtime(&self, mtime_ns: u64) -> Result<(), Errno> {
        self.attributes.set_mtime(mtime_ns);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, file: &File) -> Result<(), Errno> {
        let mut ring = self.ring.lock();
        ring.readers += usize::from(file.readable());
        ring.writers += usize::from(file.writable());
        Ok(())
    }

    fn release(&self, file: &File) {
        {
            let mut ring = self.ring.lock();
            ring.readers -= usize::from(file.readable());
            ring.writers -= usize::from(file.writable());
        }
        self.readable.wake_all();
        self.wake_writers();
    }

    fn read_at(&self, file: &File, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        loop {
            let (popped, packet, freed, writers) = {
                let mut ring = self.ring.lock();
                let slots = ring.slots.len();
                let (popped, packet) = ring.pop(buf);
                (popped, packet, ring.slots.len() < slots, ring.writers)
            };
            if popped > 0 || freed {
                self.wake_writers();
            }
            if popped > 0 || packet {
                return Ok(popped);
            }
            if writers == 0 || buf.is_empty() {
                return Ok(0);
            }
            if file.nonblocking() {
                return Err(EAGAIN);
            }
            let woken = self.readable.wait_interruptible(
                || {
                    let ring = self.ring.lock();
                    !ring.slots.is_empty() || ring.writers == 0
                },
                None,
            );
            if woken == WaitResult::Interrupted {
                return Err(ERESTARTSYS);
            }
        }
    }

    fn check_write(&self, len: u64) -> Result<(), Errno> {
        if len > 0 && self.ring.lock().readers == 0 {
            send_sigpipe();
            return Err(EPIPE);
        }
        Ok(())
    }

    fn write_at(&self, file: &File, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut unread = buf;
        self.write(file, buf.len(), &mut |out| {
            let (now, rest) = unread.split_at(out.len());
            out.copy_from_slice(now);
            unread = rest;
            out.len()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, file: &File) -> u32 {
        let ring = self.ring.lock();
        let mut events = 0;
        if file.readable() {
            if !ring.slots.is_empty() {
                events |= POLLIN | POLLRDNORM;
            }
            if ring.writers == 0 {
                events |= POLLHUP;
            }
        }
        if file.writable() {
            if !ring.is_full() {
                events |= POLLOUT | POLLWRNORM;
            }
            if ring.readers == 0 {
                events |= POLLERR;
            }
        }
        events
    }
}
