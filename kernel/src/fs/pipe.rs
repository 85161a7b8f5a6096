//! Pipes: a ring of page-sized slots between the files of a read end and a write end, with
//! Linux's semantics (its `pipe_inode_info`):
//!
//! - The capacity is counted in slots of a page: 16 (64 KiB) unless `F_SETPIPE_SZ` changes it.
//!   A write whose size is not a multiple of a page first appends its odd part to the last slot
//!   if it fits there (so small writes share a page), then fills new slots a page at a time. A
//!   write of at most `PIPE_BUF` bytes (a page) is therefore never split: it goes whole into
//!   the last slot or into one new slot, or waits for one (`EAGAIN` if non-blocking). A larger
//!   write may be interleaved with others between pages, and a non-blocking one moves what fits.
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
//! One spinlock protects the ring and the counts, held to move at most one call's bytes between
//! the ring and the caller's kernel buffer (and to allocate a slot's page), never across user
//! memory or a sleep. Readers wait on `readable`, writers on `writable`, interruptibly (a signal
//! ends the wait with `ERESTARTSYS`, or with the bytes moved so far); every change also wakes the
//! pollers ([`poll::readiness_changed`]).
//!
//! The read and write system calls move the data through a kernel buffer (`syscall::io`): a read
//! takes its bytes out of the ring before they are copied to user memory, so a fault in that copy
//! loses the bytes it did not copy (Linux copies straight from the ring and leaves them there).

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
use crate::syscall::errno::{EAGAIN, EBUSY, EINVAL, ENOMEM, EPERM, EPIPE, ERESTARTSYS, Errno};

/// The size of a slot, also `PIPE_BUF`: writes of up to this many bytes are atomic.
const PAGE: usize = 4096;
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

    /// Appends what of `data` fits now (see the module docs); `starting`: nothing of this write
    /// went in yet, so its odd part may join the last slot. `ENOMEM` if a slot's page cannot be
    /// had and nothing went in.
    fn push(&mut self, data: &[u8], packet: bool, starting: bool) -> Result<usize, Errno> {
        let mut pushed = 0;
        let odd = data.len() % PAGE;
        if starting
            && !packet
            && odd != 0
            && let Some(last) = self.slots.back_mut()
            && !last.packet
            && last.bytes.len() + odd <= PAGE
        {
            last.bytes.extend_from_slice(&data[..odd]);
            pushed = odd;
        }
        while pushed < data.len() && !self.is_full() {
            let piece = &data[pushed..data.len().min(pushed + PAGE)];
            let mut bytes = Vec::new();
            if bytes.try_reserve_exact(PAGE).is_err() {
                return if pushed > 0 { Ok(pushed) } else { Err(ENOMEM) };
            }
            bytes.extend_from_slice(piece);
            self.slots.push_back(Slot {
                bytes,
                start: 0,
                packet,
            });
            pushed += piece.len();
        }
        Ok(pushed)
    }

    /// Moves the oldest bytes into `buf`, up to its size or the end of the first packet met;
    /// returns how many.
    fn pop(&mut self, buf: &mut [u8]) -> usize {
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
                break;
            }
        }
        popped
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
            let (popped, writers) = {
                let mut ring = self.ring.lock();
                (ring.pop(buf), ring.writers)
            };
            if popped > 0 {
                self.wake_writers();
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
        let packet = file.flags() & O_DIRECT != 0;
        let mut written = 0;
        // What ends the call once nothing more can go in now: the bytes written, if any.
        let partial_or = |written: usize, error: Errno| {
            if written > 0 { Ok(written) } else { Err(error) }
        };
        loop {
            let pushed = {
                let mut ring = self.ring.lock();
                (ring.readers > 0).then(|| ring.push(&buf[written..], packet, written == 0))
            };
            match pushed {
                None => {
                    send_sigpipe();
                    return partial_or(written, EPIPE);
                }
                Some(Err(error)) => return partial_or(written, error),
                Some(Ok(0)) => {}
                Some(Ok(count)) => {
                    written += count;
                    self.wake_readers();
                }
            }
            if written == buf.len() {
                return Ok(written);
            }
            if file.nonblocking() {
                return partial_or(written, EAGAIN);
            }
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
