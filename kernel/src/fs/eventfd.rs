//! Event counters (`eventfd`, `eventfd2`), with Linux's semantics: a 64-bit counter that a
//! write adds to and a read takes (all of it, or 1 with `EFD_SEMAPHORE`). A read moves 8 bytes
//! (`EINVAL` for a smaller buffer); a write takes exactly 8 (`EINVAL` otherwise, as since Linux
//! 6.10; before, a larger buffer was accepted). A read of a zero counter waits, as does a
//! write that would take the counter past [`MAX_COUNT`] (`EAGAIN` if non-blocking). Readable
//! while the counter is not zero, writable while it is below [`MAX_COUNT`].
//!
//! The file is an anonymous inode's, as on Linux: no type bits in its mode, the one inode number
//! of every anonymous file, and the path `anon_inode:[eventfd]`.
//!
//! The counter is under a spinlock held for one update; readers and writers wait on one queue,
//! interruptibly (`ERESTARTSYS`), and every change wakes the pollers too.

use alloc::sync::Arc;
use core::any::Any;

use super::attributes::Attributes;
use super::dentry::Dentry;
use super::file::{File, O_RDWR};
use super::poll::{self, POLLIN, POLLOUT};
use super::{FileKind, FsKind, Inode, Stat, allocate_inode_number};
use crate::sync::WaitQueue;
use crate::sync::waitqueue::WaitResult;
use crate::syscall::errno::{EAGAIN, EINVAL, ERESTARTSYS, Errno};

/// The largest value of the counter.
const MAX_COUNT: u64 = u64::MAX - 1;
/// The size of a read or write.
const VALUE_SIZE: usize = 8;

pub struct EventFd {
    counter: spin::Mutex<u64>,
    /// A read takes 1, not everything (`EFD_SEMAPHORE`).
    semaphore: bool,
    /// Readers waiting for a count, writers for room.
    changed: WaitQueue,
}

/// The inode number every anonymous file shares (Linux has one anonymous inode).
static ANONYMOUS_INODE_NUMBER: spin::Once<u64> = spin::Once::new();

/// The permission bits, owner, group and times of the anonymous inode, which `fchmod`,
/// `fchown` and `futimens` of any file of it change for all (Linux's one shared inode).
static ANONYMOUS_INODE_ATTRIBUTES: Attributes = Attributes::new(0o600, 0);

/// What `stat` says of a file of the anonymous inode (an eventfd, a pidfd).
pub(super) fn anonymous_inode_stat() -> Stat {
    let mut stat = Stat {
        dev: FsKind::AnonInodefs.device(),
        ino: *ANONYMOUS_INODE_NUMBER.call_once(allocate_inode_number),
        nlink: 1,
        blksize: 4096,
        ..Stat::default()
    };
    ANONYMOUS_INODE_ATTRIBUTES.fill(FileKind::Anonymous, &mut stat);
    stat
}

/// A new event counter holding `initial`, opened for reading and writing with the status flags
/// `flags` (`O_NONBLOCK`).
pub fn open(initial: u64, semaphore: bool, flags: u32) -> Result<Arc<File>, Errno> {
    let counter = Arc::new(EventFd {
        counter: spin::Mutex::new(initial),
        semaphore,
        changed: WaitQueue::new(),
    });
    File::open(
        Dentry::unnamed("anon_inode:[eventfd]", counter),
        O_RDWR | flags,
    )
}

impl EventFd {
    /// Runs `update` on the counter until it succeeds (waiting between tries, unless `file` is
    /// non-blocking), then wakes the waiters.
    fn update_or_wait(
        &self,
        file: &File,
        mut update: impl FnMut(&mut u64) -> Option<u64>,
    ) -> Result<u64, Errno> {
        loop {
            let done = update(&mut self.counter.lock());
            if let Some(value) = done {
                self.changed.wake_all();
                poll::readiness_changed();
                return Ok(value);
            }
            if file.nonblocking() {
                return Err(EAGAIN);
            }
            let woken = self.changed.wait_interruptible(
                || {
                    let mut copy = *self.counter.lock();
                    update(&mut copy).is_some()
                },
                None,
            );
            if woken == WaitResult::Interrupted {
                return Err(ERESTARTSYS);
            }
        }
    }
}

impl Inode for EventFd {
    fn kind(&self) -> FileKind {
        FileKind::Anonymous
    }

    fn stat(&self) -> Stat {
        anonymous_inode_stat()
    }

    fn fs(&self) -> FsKind {
        FsKind::AnonInodefs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, file: &File, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.len() < VALUE_SIZE {
            return Err(EINVAL);
        }
        let taken = self.update_or_wait(file, |counter| {
            let take = match *counter {
                0 => return None,
                _ if self.semaphore => 1,
                all => all,
            };
            *counter -= take;
            Some(take)
        })?;
        buf[..VALUE_SIZE].copy_from_slice(&taken.to_ne_bytes());
        Ok(VALUE_SIZE)
    }

    fn write_at(&self, file: &File, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let Ok(bytes) = <[u8; VALUE_SIZE]>::try_from(buf) else {
            return Err(EINVAL);
        };
        let value = u64::from_ne_bytes(bytes);
        if value == u64::MAX {
            return Err(EINVAL);
        }
        self.update_or_wait(file, |counter| {
            (MAX_COUNT - *counter >= value).then(|| {
                *counter += value;
                value
            })
        })?;
        Ok(VALUE_SIZE)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        ANONYMOUS_INODE_ATTRIBUTES.set_mode(mode);
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        ANONYMOUS_INODE_ATTRIBUTES.set_owner(FileKind::Anonymous, uid, gid);
        Ok(())
    }

    fn set_mtime(&self, mtime_ns: u64) -> Result<(), Errno> {
        ANONYMOUS_INODE_ATTRIBUTES.set_mtime(mtime_ns);
        Ok(())
    }

    fn seeks_in_place(&self) -> bool {
        true
    }

    fn check_read(&self, len: u64) -> Result<(), Errno> {
        if len < VALUE_SIZE as u64 {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn check_write(&self, len: u64) -> Result<(), Errno> {
        if len != VALUE_SIZE as u64 {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn write_piece(&self) -> usize {
        VALUE_SIZE
    }

    fn poll(&self, _file: &File) -> u32 {
        let counter = *self.counter.lock();
        let mut events = 0;
        if counter > 0 {
            events |= POLLIN;
        }
        if counter < MAX_COUNT {
            events |= POLLOUT;
        }
        events
    }
}
