//! A memory file of huge pages (`memfd_create` with `MFD_HUGETLB`), as Linux's hugetlbfs file
//! behaves with no huge page reserved, which this kernel has for every size (Linux's
//! `nr_hugepages` of 0): it has a size, in whole huge pages, and reads as zeroes, but it has no
//! write operation (`EINVAL`) and no page can ever be given to it (`fallocate` is `ENOSPC`).
//!
//! The size is an atomic and the attributes are atomics: nothing is locked.

use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use super::attributes::Attributes;
use super::file::File;
use super::pagecache::MAX_FILE_SIZE;
use super::{FileKind, FsKind, Inode, Stat, allocate_inode_number, now_ns};
use crate::syscall::errno::{EFBIG, EINVAL, ENOSPC, Errno};

pub struct HugeMemoryFile {
    ino: u64,
    /// The huge page size in bytes: the size is a multiple of it.
    page_size: u64,
    size: AtomicU64,
    attributes: Attributes,
}

impl HugeMemoryFile {
    /// An empty file of `page_size`-byte pages, with permission bits `mode`.
    pub fn new(page_size: u64, mode: u32) -> Arc<Self> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            page_size,
            size: AtomicU64::new(0),
            attributes: Attributes::new(mode, now_ns()),
        })
    }
}

impl Inode for HugeMemoryFile {
    fn kind(&self) -> FileKind {
        FileKind::Regular
    }

    fn stat(&self) -> Stat {
        let mut stat = Stat {
            dev: FsKind::Hugetlbfs.device(),
            ino: self.ino,
            size: self.size.load(Ordering::Relaxed),
            blksize: self.page_size as u32,
            ..Stat::default()
        };
        self.attributes.fill(FileKind::Regular, &mut stat);
        stat
    }

    fn fs(&self) -> FsKind {
        FsKind::Hugetlbfs
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        self.attributes.set_mode(mode);
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.attributes.set_owner(FileKind::Regular, uid, gid);
        Ok(())
    }

    fn set_mtime(&self, mtime_ns: u64) -> Result<(), Errno> {
        self.attributes.set_mtime(mtime_ns);
        Ok(())
    }

    /// Zeroes up to the end: no page was ever given to the file.
    fn read_at(&self, _file: &File, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let size = self.size.load(Ordering::Relaxed);
        let count = (buf.len() as u64).min(size.saturating_sub(offset)) as usize;
        buf[..count].fill(0);
        Ok(count)
    }

    fn can_write(&self) -> bool {
        false
    }

    /// Only whole huge pages (`EINVAL` otherwise).
    fn truncate(&self, size: u64) -> Result<(), Errno> {
        if !size.is_multiple_of(self.page_size) {
            return Err(EINVAL);
        }
        self.size.store(size, Ordering::Relaxed);
        self.attributes.touch_contents();
        Ok(())
    }

    /// No huge page is reserved: the first one the range needs is missing.
    fn allocate(&self, range: core::ops::Range<u64>, _keep_size: bool) -> Result<(), Errno> {
        if range.end > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        Err(ENOSPC)
    }
}
