//! Process descriptors (`pidfd_open`): a file of the anonymous inode (`anon_inode:[pidfd]`)
//! that names one process, for the calls that take a process by descriptor
//! (`process_madvise`). It holds a weak handle, so it names that process and no later one with
//! the same id; once the process is gone it names nothing (`ESRCH`). Nothing in it changes
//! after it is made, so it needs no lock. It polls readable once its process has ended (a
//! zombie), and hung up too once that is collected, as Linux's `pidfd_poll`; its process's end
//! wakes no poller, which looks again every few milliseconds.

use alloc::sync::{Arc, Weak};
use core::any::Any;

use super::dentry::Dentry;
use super::file::{File, O_RDWR};
use super::poll::{POLLHUP, POLLIN, POLLRDNORM};
use super::{FileKind, FsKind, Inode, Stat};
use crate::proc::Process;
use crate::syscall::errno::Errno;

pub struct PidFd {
    process: Weak<Process>,
}

/// A new descriptor file naming `process`, with the status flags `flags` (`O_NONBLOCK`).
pub fn open(process: &Arc<Process>, flags: u32) -> Result<Arc<File>, Errno> {
    let named = Arc::new(PidFd {
        process: Arc::downgrade(process),
    });
    File::open(Dentry::unnamed("anon_inode:[pidfd]", named), O_RDWR | flags)
}

/// The process `file` names: `None` if it is no process descriptor, `Some(None)` if its
/// process is gone.
pub fn process_of(file: &File) -> Option<Option<Arc<Process>>> {
    let pidfd = file.inode().as_any().downcast_ref::<PidFd>()?;
    Some(pidfd.process.upgrade())
}

impl Inode for PidFd {
    fn kind(&self) -> FileKind {
        FileKind::Anonymous
    }

    fn stat(&self) -> Stat {
        super::eventfd::anonymous_inode_stat()
    }

    fn fs(&self) -> FsKind {
        FsKind::AnonInodefs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn seekable(&self) -> bool {
        false
    }

    /// Linux 6.12's pidfs inodes are immutable.
    fn immutable(&self) -> bool {
        true
    }

    fn reads_at_offsets(&self) -> bool {
        true
    }

    fn can_read_or_write(&self) -> bool {
        false
    }

    fn poll(&self, _file: &File) -> u32 {
        let collected = |process: &Arc<Process>| {
            crate::proc::find(process.pid).is_none_or(|found| !Arc::ptr_eq(&found, process))
        };
        match self.process.upgrade() {
            Some(process) if !collected(&process) && !process.is_zombie() => 0,
            Some(process) if !collected(&process) => POLLIN | POLLRDNORM,
            _ => POLLIN | POLLRDNORM | POLLHUP,
        }
    }

    fn signals_readiness(&self) -> bool {
        false
    }
}
