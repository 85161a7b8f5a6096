//! Files: the virtual file system every path and descriptor goes through.
//!
//! - An [`Inode`] is one file of some file system: a directory, a regular file, a symbolic
//!   link, a device, a pipe. File systems implement the trait ([`tmpfs`] for the root and
//!   `/tmp`, [`dev`] for `/dev`, whose terminals are [`tty`]'s); what an inode cannot do answers with Linux's error by
//!   default (`ENOTDIR` for a lookup in a file, `EINVAL` for reading a directory's link...).
//! - Files that are not in any directory: [`pipe`]s and [`eventfd`]s, under unnamed dentries.
//! - [`poll`]: the readiness `poll`, `select` and their kin wait for, and how files wake them.
//! - A [`Dentry`](dentry::Dentry) is a name in the tree: its parent, its inode and what is
//!   mounted on it. Dentries are cached (a directory keeps the children looked up through it)
//!   so path walks of busy names cost map look-ups, and they give `..` and `getcwd` their
//!   answers across mount points. [`dentry::resolve`] walks a path. The mount table (what
//!   `mount` and `umount2` change, what `/proc/mounts` lists) is [`dentry`]'s too.
//! - [`procfs`] (`/proc`) and [`sysfs`] (`/sys`) make their files' text when they are opened
//!   ([`generated`]): processes, memory, CPUs and mounts as Linux shows them.
//! - A [`File`](file::File) is an open file description (offset, status flags); a process's
//!   [`FdTable`](file::FdTable) maps descriptors to them, shared with `CLONE_FILES` and copied
//!   by `fork`. The [`FsContext`](file::FsContext) (working directory, umask) is shared with
//!   `CLONE_FS`.
//!
//! # Locks
//! Every lock of this module is a spinlock held for a short, bounded piece of work on kernel
//! memory; none is held while user memory is touched (data moves through kernel buffers
//! between the lock and the user copy), so none is held across a page fault or a sleep. Order:
//! the rename lock ([`tmpfs`]), then directory entry maps (lower address first), then a
//! dentry's child cache, then an inode's data. The descriptor table's lock is a leaf, and so
//! are a pipe's ring and an eventfd's counter: their callers sleep (on wait queues) with no
//! lock held.

pub mod attributes;
pub mod dentry;
pub mod dev;
pub mod eventfd;
pub mod file;
pub mod generated;
pub mod hugetlb;
pub mod pagecache;
pub mod pidfd;
pub mod pipe;
pub mod poll;
pub mod procfs;
pub mod sysfs;
pub mod tmpfs;
pub mod tty;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::syscall::errno::{EINVAL, EISDIR, ENOTDIR, ENOTTY, EPERM, Errno};
use file::File;

/// What kind of file an inode is (the `S_IFMT` bits of its mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    /// A pipe (Linux's FIFO type).
    Fifo,
    /// An anonymous inode's file (eventfd): no type bits in its mode, as on Linux.
    Anonymous,
}

impl FileKind {
    /// The `S_IFMT` bits.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileKind::Regular => 0o100_000,
            FileKind::Directory => 0o040_000,
            FileKind::Symlink => 0o120_000,
            FileKind::CharDevice => 0o020_000,
            FileKind::Fifo => 0o010_000,
            FileKind::Anonymous => 0,
        }
    }

    /// The `d_type` of a directory entry (`getdents64`).
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileKind::Regular => 8,
            FileKind::Directory => 4,
            FileKind::Symlink => 10,
            FileKind::CharDevice => 2,
            FileKind::Fifo => 1,
            FileKind::Anonymous => 0,
        }
    }
}

/// The attributes `stat` reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u32,
    /// Owner and group.
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blocks: u64,
    pub blksize: u32,
    /// Modification and status-change times, ns since the epoch.
    pub mtime_ns: u64,
    pub ctime_ns: u64,
}

/// One entry of a directory listing.
pub struct DirEntry {
    pub name: String,
    pub ino: u64,
    pub kind: FileKind,
}

/// The file system kinds `statfs` tells apart (Linux's magic numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    Tmpfs,
    Devtmpfs,
    Proc,
    Sysfs,
    /// Where pipes live (never mounted).
    Pipefs,
    /// Where anonymous inodes live (never mounted).
    AnonInodefs,
    /// Where huge-page memory files live (never mounted here).
    Hugetlbfs,
}

impl FsKind {
    /// The kinds `mount` makes, in the order `/proc/filesystems` lists them.
    pub const MOUNTABLE: [FsKind; 4] =
        [FsKind::Sysfs, FsKind::Tmpfs, FsKind::Devtmpfs, FsKind::Proc];

    /// `f_type` of `struct statfs`.
    pub const fn magic(self) -> u64 {
        match self {
            FsKind::Tmpfs | FsKind::Devtmpfs => 0x0102_1994,
            FsKind::Proc => 0x9fa0,
            FsKind::Sysfs => 0x6265_6572,
            FsKind::Pipefs => 0x5049_5045,
            FsKind::AnonInodefs => 0x0904_1934,
            FsKind::Hugetlbfs => 0x9584_58f6,
        }
    }

    /// The device number `stat` reports for files of this kind (one anonymous device each).
    pub const fn device(self) -> u64 {
        match self {
            FsKind::Tmpfs => 0x16,
            FsKind::Devtmpfs => 0x05,
            FsKind::Proc => 0x15,
            FsKind::Sysfs => 0x14,
            FsKind::Pipefs => 0x0d,
            FsKind::AnonInodefs => 0x0e,
            FsKind::Hugetlbfs => 0x0f,
        }
    }

    /// The type name `mount` takes and `/proc/mounts` shows.
    pub const fn name(self) -> &'static str {
        match self {
            FsKind::Tmpfs => "tmpfs",
            FsKind::Devtmpfs => "devtmpfs",
            FsKind::Proc => "proc",
            FsKind::Sysfs => "sysfs",
            FsKind::Pipefs => "pipefs",
            FsKind::AnonInodefs => "anon_inodefs",
            FsKind::Hugetlbfs => "hugetlbfs",
        }
    }

    /// The kind `mount` names `name` (`None`: Linux's `ENODEV`).
    pub fn from_name(name: &str) -> Option<FsKind> {
        Self::MOUNTABLE.into_iter().find(|kind| kind.name() == name)
    }

    /// The root directory of a new instance of this kind (what `mount` puts on its target);
    /// `None` for the kinds that are never mounted.
    pub fn new_instance(self) -> Option<Arc<dyn Inode>> {
        match self {
            FsKind::Tmpfs => Some(tmpfs::TmpInode::new_dir(0o1777)),
            FsKind::Devtmpfs => Some(dev::new_devfs()),
            FsKind::Proc => Some(procfs::new_root()),
            FsKind::Sysfs => Some(sysfs::new_root()),
            FsKind::Pipefs | FsKind::AnonInodefs | FsKind::Hugetlbfs => None,
        }
    }
}

/// `renameat2` flags.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
pub const RENAME_WHITEOUT: u32 = 4;

/// A file of some file system. Every operation has Linux's answer for a file that cannot do
/// it as its default, so a file system implements only what its files do.
pub trait Inode: Send + Sync + Any {
    fn kind(&self) -> FileKind;
    fn stat(&self) -> Stat;
    fn fs(&self) -> FsKind;

    /// Which instance of its file system kind the file belongs to (Linux's superblock):
    /// tmpfs mounts tell theirs apart, each memfd is one of its own here; 0 for the kinds
    /// that have one instance.
    fn fs_instance(&self) -> u64 {
        0
    }
    fn as_any(&self) -> &dyn Any;

    /// `chmod`: the permission bits (07777) become `mode`.
    fn set_mode(&self, _mode: u32) -> Result<(), Errno> {
        Err(EPERM)
    }

    /// `chown`: the owner and group become `uid` and `gid` where given (`None`: unchanged).
    fn set_owner(&self, _uid: Option<u32>, _gid: Option<u32>) -> Result<(), Errno> {
        Err(EPERM)
    }

    /// The extended attributes of the file (name to value), where its file system keeps them
    /// (`None`: it keeps none). The lock is a leaf.
    fn xattrs(&self) -> Option<&spin::Mutex<alloc::collections::BTreeMap<String, Vec<u8>>>> {
        None
    }

    /// The count of descriptions open for writing, for a file that can be run (a regular file
    /// of a file system that keeps one); `None` for the others.
    fn writers(&self) -> Option<&file::Writers> {
        None
    }

    /// `utimensat`: the modification time becomes `mtime_ns` (ns since the epoch).
    fn set_mtime(&self, _mtime_ns: u64) -> Result<(), Errno> {
        Err(EPERM)
    }

    // Directories.

    /// The child called `name` (never `.` or `..`: the path walk answers those).
    fn lookup(&self, _name: &str) -> Result<Arc<dyn Inode>, Errno> {
        Err(ENOTDIR)
    }

    /// Whether children found by [`Inode::lookup`] may be cached as dentries (false for
    /// directories whose contents change without going through the VFS, like `/proc`).
    fn caches_children(&self) -> bool {
        true
    }

    /// A new child `name` of `kind` with permission bits `mode` (`EEXIST` if the name is
    /// taken). For a symbolic link, `target` is what it points to.
    fn create(
        &self,
        _name: &str,
        _kind: FileKind,
        _mode: u32,
        _target: Option<&str>,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(ENOTDIR)
    }

    /// A new name `name` for `inode` (a hard link).
    fn link(&self, _name: &str, _inode: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(ENOTDIR)
    }

    /// Removes `name`: a directory (empty) when `directory`, anything else otherwise.
    fn unlink(&self, _name: &str, _directory: bool) -> Result<(), Errno> {
        Err(ENOTDIR)
    }

    /// Moves `name` to `new_name` in `new_parent` (same file system) with `renameat2` flags.
    fn rename(
        &self,
        _name: &str,
        _new_parent: &dyn Inode,
        _new_name: &str,
        _flags: u32,
    ) -> Result<(), Errno> {
        Err(ENOTDIR)
    }

    /// The entries from position `from` on (`.` and `..` not included), in a stable order.
    fn entries(&self, _from: usize) -> Result<Vec<DirEntry>, Errno> {
        Err(ENOTDIR)
    }

    // Symbolic links.

    fn readlink(&self) -> Result<String, Errno> {
        Err(EINVAL)
    }

    /// For a link that stands for an open file rather than a path (`/proc/PID/fd/N`, `exe`,
    /// `cwd`: Linux's "magic links"), the dentry it leads to, which a walk takes instead of
    /// walking [`Inode::readlink`]'s text (so a pipe or a deleted file opens). `None` for an
    /// ordinary link.
    fn magic_link(&self) -> Option<Result<Arc<dentry::Dentry>, Errno>> {
        None
    }

    // Data.

    /// Whether its descriptions may do direct I/O (`O_DIRECT`; Linux's `FMODE_CAN_ODIRECT`).
    fn direct_io(&self) -> bool {
        false
    }

    /// Whether it is immutable (Linux's `S_IMMUTABLE`): its extended attributes cannot change.
    fn immutable(&self) -> bool {
        false
    }

    /// Called when a description of this inode is opened (pipes count readers and writers,
    /// `/proc` files take their snapshot).
    fn open(&self, _file: &File) -> Result<(), Errno> {
        Ok(())
    }

    /// Called when the last descriptor of an open description goes.
    fn release(&self, _file: &File) {}

    /// Reads at `offset` into `buf`; returns the count (0 at the end of the data). May sleep
    /// (pipes, terminals) unless the description is non-blocking.
    fn read_at(&self, _file: &File, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(EISDIR)
    }

    /// A stream's own checks of a `read` of `len` bytes, made before a read of nothing
    /// returns (an eventfd gives 8 bytes or nothing: `EINVAL` for fewer, 0 included).
    fn check_read(&self, _len: u64) -> Result<(), Errno> {
        Ok(())
    }

    /// A stream's own checks of a `write` of `len` bytes, made before any byte is copied from
    /// the caller, so they come before `EFAULT` (an eventfd takes exactly 8 bytes, a pipe
    /// with no reader left is `EPIPE`).
    fn check_write(&self, _len: u64) -> Result<(), Errno> {
        Ok(())
    }

    /// The bytes a stream takes from a `write`'s caller at once (Linux copies an eventfd's 8
    /// bytes in one go): a fault in the caller's buffer drops the piece it cuts short, so the
    /// write returns the pieces before it, or `EFAULT`. 1 where every byte before a fault
    /// counts.
    fn write_piece(&self) -> usize {
        1
    }

    /// Writes `buf` at `offset`; returns the count.
    fn write_at(&self, _file: &File, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(EISDIR)
    }

    /// Whether the file can be read or written at all (Linux's `FMODE_CAN_READ` and
    /// `FMODE_CAN_WRITE`: the file has the operation): `EINVAL` for a descriptor open for
    /// reading or writing a file without it (a pidfd), before any buffer is looked at.
    fn can_read_or_write(&self) -> bool {
        true
    }

    /// Whether the file can be written at all, where it can be read (a huge-page memory file
    /// cannot): `EINVAL` as for [`Inode::can_read_or_write`].
    fn can_write(&self) -> bool {
        self.can_read_or_write()
    }

    /// Whether the file has positions (`lseek`, `pread` work): regular files, directories and
    /// some devices; pipes and terminals do not (`ESPIPE`).
    fn seekable(&self) -> bool {
        true
    }

    /// Whether `pread` and `pwrite` take an offset in the file (Linux's `FMODE_PREAD` and
    /// `FMODE_PWRITE`) rather than answering `ESPIPE`: a file with positions, and a pidfd
    /// (opened as a file of its own file system, though without `lseek`).
    fn reads_at_offsets(&self) -> bool {
        self.seekable()
    }

    /// Whether `lseek` answers position 0 and moves nothing (Linux's `noop_llseek`, which an
    /// eventfd has), though the file has no positions for `pread` and `pwrite`.
    fn seeks_in_place(&self) -> bool {
        false
    }

    /// A lock a `write` or `writev` holds from its first byte to its last, so that one call's
    /// output is never mixed with another's (terminals).
    fn writer_lock(&self) -> Option<&crate::sync::Mutex<()>> {
        None
    }

    /// Gives `range` frames of its own (`fallocate`), growing the file to its end unless
    /// `keep_size`.
    fn allocate(&self, _range: core::ops::Range<u64>, _keep_size: bool) -> Result<(), Errno> {
        Err(crate::syscall::errno::ENODEV)
    }

    /// Sets the size (`truncate`, `ftruncate`).
    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        Err(EINVAL)
    }

    fn ioctl(&self, _file: &File, _request: u64, _argument: u64) -> Result<u64, Errno> {
        Err(ENOTTY)
    }

    /// The [`poll`] events the file is ready for, as seen through `file` (its access mode
    /// matters): readable, writable, hung up, in error. A file that cannot wait is always
    /// ready for both (Linux's `DEFAULT_POLLMASK`).
    fn poll(&self, _file: &File) -> u32 {
        poll::ALWAYS_READY
    }

    /// Whether the file calls [`poll::readiness_changed`] after every change of what
    /// [`Inode::poll`] answers; pollers look again every few milliseconds at a file that does
    /// not.
    fn signals_readiness(&self) -> bool {
        true
    }

    /// The page cache of a regular file (what `mmap` maps).
    fn page_cache(&self) -> Option<&pagecache::PageCache> {
        None
    }

    /// Whether `mmap` of the file gives fresh zero-filled memory, as an anonymous mapping
    /// does (`/dev/zero`). A file that neither has a page cache nor maps zeroes cannot be
    /// mapped (`ENODEV`).
    fn maps_zeroes(&self) -> bool {
        false
    }
}

/// Inode numbers, unique across the file systems of this boot.
static NEXT_INODE_NUMBER: AtomicU64 = AtomicU64::new(2);

pub fn allocate_inode_number() -> u64 {
    NEXT_INODE_NUMBER.fetch_add(1, Ordering::Relaxed)
}

/// Nanoseconds since the epoch, for file times.
pub fn now_ns() -> u64 {
    crate::time::now_ns() + crate::time::realtime_offset_ns()
}

/// Builds the tree: the root tmpfs filled from the ramdisk, `/tmp`, `/dev`, `/proc`, `/sys`.
/// Once at boot, before the first process starts.
pub fn init() {
    let root = dentry::init_root(tmpfs::TmpInode::new_dir(0o755));
    match tmpfs::fill_from_ramdisk(&root) {
        Ok(()) => {}
        Err(tmpfs::UnpackError::Archive(error)) => {
            log::warn!("fs: the ramdisk is damaged ({error}); unpacked up to there")
        }
        Err(tmpfs::UnpackError::Entry(path, error)) => {
            log::warn!(
                "fs: the ramdisk's {path} could not be unpacked (errno {})",
                error.0
            );
        }
    }
    for (path, mode) in [
        ("tmp", 0o1777),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
    ] {
        match root.inode().create(path, FileKind::Directory, mode, None) {
            Ok(_) | Err(crate::syscall::errno::EEXIST) => {}
            Err(error) => log::warn!("fs: cannot create /{path}: {error:?}"),
        }
    }
    for (path, kind) in [
        ("/tmp", FsKind::Tmpfs),
        ("/dev", FsKind::Devtmpfs),
        ("/proc", FsKind::Proc),
        ("/sys", FsKind::Sysfs),
    ] {
        dentry::mount_at(path, kind);
    }
}
