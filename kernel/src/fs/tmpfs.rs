//! tmpfs: a file system in memory, for the root (filled from the ramdisk at boot, writable,
//! like Linux's initramfs) and `/tmp`. A directory is a sorted map of names to inodes, a
//! regular file is its page cache, a symbolic link its target; the one device node is the
//! whiteout (character device 0:0, which no driver opens) that `RENAME_WHITEOUT` leaves.
//!
//! A directory's map is under its own spinlock. A rename takes the file system's rename lock
//! first (one rename at a time, so two cannot build a loop), then the maps involved, lower
//! address first. Times and modes are atomics. An inode's extended attributes are under a
//! spinlock of their own, a leaf.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};

use super::file::{File, O_PATH, Writers};
use super::pagecache::PageCache;
use super::{
    DirEntry, FileKind, FsKind, Inode, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, Stat,
};
use super::{allocate_inode_number, attributes::Attributes, dentry::Dentry, now_ns};
use crate::syscall::errno::{
    EEXIST, EINVAL, EISDIR, EMLINK, ENOENT, ENOTDIR, ENOTEMPTY, ENXIO, EOPNOTSUPP, EPERM, EXDEV,
    Errno,
};

/// The most links a file may have.
const MAX_LINKS: u32 = 65_000;

enum Content {
    Directory(spin::Mutex<BTreeMap<String, Arc<TmpInode>>>),
    Regular(PageCache),
    Symlink(String),
    /// A whiteout: a character device node of device 0:0 (no driver, so no open but
    /// `O_PATH`'s).
    Whiteout,
}

pub struct TmpInode {
    ino: u64,
    /// Which tmpfs the inode belongs to (a link or rename between two is `EXDEV`).
    instance: u64,
    kind: FileKind,
    nlink: AtomicU32,
    /// Permission bits, owner, group and times.
    attributes: Attributes,
    /// The descriptions open for writing, or the programs running the file.
    writers: Writers,
    /// Extended attributes (`setxattr`), by name.
    xattrs: spin::Mutex<BTreeMap<String, Vec<u8>>>,
    content: Content,
    /// Whether its descriptions may do direct I/O: a regular file opened through the file
    /// system may (Linux's tmpfs open gives `FMODE_CAN_ODIRECT`), a memfd's or shared
    /// memory's file, made without that open, may not.
    direct_io: bool,
}

/// One rename at a time (Linux's `s_vfs_rename_mutex`): a directory cannot be moved into its
/// own subtree by two renames racing.
static RENAME_LOCK: spin::Mutex<()> = spin::Mutex::new(());

impl TmpInode {
    fn new(instance: u64, kind: FileKind, mode: u32, content: Content) -> Arc<Self> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            instance,
            kind,
            nlink: AtomicU32::new(if kind == FileKind::Directory { 2 } else { 1 }),
            attributes: Attributes::new(mode, now_ns()),
            writers: Writers::default(),
            xattrs: spin::Mutex::new(BTreeMap::new()),
            content,
            direct_io: kind == FileKind::Regular,
        })
    }

    /// The root directory of a new tmpfs.
    pub fn new_dir(mode: u32) -> Arc<Self> {
        Self::new(
            allocate_inode_number(),
            FileKind::Directory,
            mode,
            Content::Directory(spin::Mutex::new(BTreeMap::new())),
        )
    }

    /// A regular file that is in no directory and no file system (`memfd_create`, shared
    /// anonymous memory): no direct I/O.
    pub fn new_unnamed_file(mode: u32) -> Arc<Self> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            instance: allocate_inode_number(),
            kind: FileKind::Regular,
            nlink: AtomicU32::new(0),
            attributes: Attributes::new(mode, now_ns()),
            writers: Writers::default(),
            xattrs: spin::Mutex::new(BTreeMap::new()),
            content: Content::Regular(PageCache::new()),
            direct_io: false,
        })
    }

    /// A regular file in no directory of the tmpfs `directory` belongs to (`O_TMPFILE`: a
    /// link may give it a name later); `EOPNOTSUPP` for a directory of another file system.
    pub fn new_tmpfile(directory: &Arc<dyn Inode>, mode: u32) -> Result<Arc<Self>, Errno> {
        let directory = directory
            .as_any()
            .downcast_ref::<TmpInode>()
            .ok_or(EOPNOTSUPP)?;
        let file = Self::new(
            directory.instance,
            FileKind::Regular,
            mode,
            Content::Regular(PageCache::new()),
        );
        file.nlink.store(0, Ordering::Relaxed);
        Ok(file)
    }

    fn children(&self) -> Result<&spin::Mutex<BTreeMap<String, Arc<TmpInode>>>, Errno> {
        match &self.content {
            Content::Directory(children) => Ok(children),
            _ => Err(ENOTDIR),
        }
    }

    fn touch(&self) {
        self.attributes.touch_contents();
    }

    fn is_empty_dir(&self) -> bool {
        self.children().is_ok_and(|c| c.lock().is_empty())
    }
}

/// `inode` as an inode of the same tmpfs as `of` (`EXDEV` for any other).
fn same_fs<'a>(of: &TmpInode, inode: &'a dyn Inode) -> Result<&'a TmpInode, Errno> {
    inode
        .as_any()
        .downcast_ref::<TmpInode>()
        .filter(|inode| inode.instance == of.instance)
        .ok_or(EXDEV)
}

impl Inode for TmpInode {
    fn kind(&self) -> FileKind {
        self.kind
    }

    fn fs(&self) -> FsKind {
        FsKind::Tmpfs
    }

    fn fs_instance(&self) -> u64 {
        self.instance
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn direct_io(&self) -> bool {
        self.direct_io
    }

    fn stat(&self) -> Stat {
        let (size, blocks) = match &self.content {
            Content::Directory(children) => ((children.lock().len() as u64 + 2) * 20, 0),
            Content::Regular(cache) => (cache.size(), cache.resident_pages() * 8),
            Content::Symlink(target) => (target.len() as u64, 0),
            Content::Whiteout => (0, 0),
        };
        let mut stat = Stat {
            dev: FsKind::Tmpfs.device(),
            ino: self.ino,
            nlink: self.nlink.load(Ordering::Relaxed),
            size,
            blocks,
            blksize: 4096,
            ..Stat::default()
        };
        self.attributes.fill(self.kind, &mut stat);
        stat
    }

    fn set_mode(&self, mode: u32) -> Result<(), Errno> {
        self.attributes.set_mode(mode);
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.attributes.set_owner(self.kind, uid, gid);
        Ok(())
    }

    fn set_mtime(&self, mtime_ns: u64) -> Result<(), Errno> {
        self.attributes.set_mtime(mtime_ns);
        Ok(())
    }

    fn writers(&self) -> Option<&Writers> {
        (self.kind == FileKind::Regular).then_some(&self.writers)
    }

    fn xattrs(&self) -> Option<&spin::Mutex<BTreeMap<String, Vec<u8>>>> {
        Some(&self.xattrs)
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        let children = self.children()?.lock();
        let child = children.get(name).ok_or(ENOENT)?;
        Ok(child.clone())
    }

    fn create(
        &self,
        name: &str,
        kind: FileKind,
        mode: u32,
        target: Option<&str>,
    ) -> Result<Arc<dyn Inode>, Errno> {
        let content = match kind {
            FileKind::Directory => Content::Directory(spin::Mutex::new(BTreeMap::new())),
            FileKind::Regular => Content::Regular(PageCache::new()),
            FileKind::Symlink => Content::Symlink(target.ok_or(EINVAL)?.to_string()),
            FileKind::CharDevice | FileKind::Fifo | FileKind::Anonymous => return Err(EPERM),
        };
        let mut children = self.children()?.lock();
        if children.contains_key(name) {
            return Err(EEXIST);
        }
        let child = TmpInode::new(self.instance, kind, mode, content);
        children.insert(name.to_string(), child.clone());
        if kind == FileKind::Directory {
            self.nlink.fetch_add(1, Ordering::Relaxed);
        }
        drop(children);
        self.touch();
        Ok(child)
    }

    fn link(&self, name: &str, inode: &Arc<dyn Inode>) -> Result<(), Errno> {
        let target = same_fs(self, inode.as_ref())?;
        if target.kind == FileKind::Directory {
            return Err(EPERM);
        }
        let mut children = self.children()?.lock();
        if children.contains_key(name) {
            return Err(EEXIST);
        }
        if target.nlink.load(Ordering::Relaxed) >= MAX_LINKS {
            return Err(EMLINK);
        }
        let shared = clone_arc(inode)?;
        target.nlink.fetch_add(1, Ordering::Relaxed);
        target.attributes.touch_status();
        children.insert(name.to_string(), shared);
        drop(children);
        self.touch();
        Ok(())
    }

    fn unlink(&self, name: &str, directory: bool) -> Result<(), Errno> {
        let mut children = self.children()?.lock();
        let child = children.get(name).ok_or(ENOENT)?;
        match (directory, child.kind == FileKind::Directory) {
            (true, false) => return Err(ENOTDIR),
            (false, true) => return Err(EISDIR),
            (true, true) if !child.is_empty_dir() => return Err(ENOTEMPTY),
            _ => {}
        }
        let child = children.remove(name).expect("found above");
        drop(children);
        if directory {
            self.nlink.fetch_sub(1, Ordering::Relaxed);
            child.nlink.store(0, Ordering::Relaxed);
        } else {
            child.nlink.fetch_sub(1, Ordering::Relaxed);
        }
        child.attributes.touch_status();
        self.touch();
        Ok(())
    }

    fn rename(
        &self,
        name: &str,
        new_parent: &dyn Inode,
        new_name: &str,
        flags: u32,
    ) -> Result<(), Errno> {
        let new_parent = same_fs(self, new_parent)?;
        let _renaming = RENAME_LOCK.lock();
        let same = core::ptr::eq(self, new_parent);
        let (mut from, mut to) = if same {
            (self.children()?.lock(), None)
        } else if (self as *const Self) < (new_parent as *const Self) {
            let from = self.children()?.lock();
            (from, Some(new_parent.children()?.lock()))
        } else {
            let to = new_parent.children()?.lock();
            (self.children()?.lock(), Some(to))
        };
        let moving = from.get(name).cloned().ok_or(ENOENT)?;
        let to_map = to.as_deref_mut().unwrap_or(&mut from);
        let replaced = to_map.get(new_name).cloned();
        match &replaced {
            Some(_) if flags & RENAME_NOREPLACE != 0 => return Err(EEXIST),
            None if flags & RENAME_EXCHANGE != 0 => return Err(ENOENT),
            _ => {}
        }
        // Linux's traps, before the kinds are compared: a directory moved below itself is
        // `EINVAL`; a target that is an ancestor of the source (its parent included, whose
        // entries are locked above, so it must not be looked into) is `ENOTEMPTY`, or `EINVAL`
        // for an exchange.
        if moving.kind == FileKind::Directory && !same && is_within(new_parent, &moving) {
            return Err(EINVAL);
        }
        if let Some(replaced) = &replaced
            && replaced.kind == FileKind::Directory
            && !same
            && is_within(self, replaced)
        {
            return Err(if flags & RENAME_EXCHANGE != 0 {
                EINVAL
            } else {
                ENOTEMPTY
            });
        }
        if let Some(replaced) = &replaced {
            if Arc::ptr_eq(replaced, &moving) {
                return Ok(());
            }
            if flags & RENAME_EXCHANGE == 0 {
                match (
                    moving.kind == FileKind::Directory,
                    replaced.kind == FileKind::Directory,
                ) {
                    (true, false) => return Err(ENOTDIR),
                    (false, true) => return Err(EISDIR),
                    (true, true) if !replaced.is_empty_dir() => return Err(ENOTEMPTY),
                    _ => {}
                }
            }
        }
        if flags & RENAME_EXCHANGE != 0 {
            let replaced = replaced.expect("checked above");
            to_map.insert(new_name.to_string(), moving.clone());
            from.insert(name.to_string(), replaced.clone());
            if !same {
                let moved_dirs = i32::from(moving.kind == FileKind::Directory)
                    - i32::from(replaced.kind == FileKind::Directory);
                adjust_links(new_parent, moved_dirs);
                adjust_links(self, -moved_dirs);
            }
        } else {
            to_map.insert(new_name.to_string(), moving.clone());
            if flags & RENAME_WHITEOUT != 0 {
                // The old name stays taken by a whiteout, mode 0 whatever the umask.
                let whiteout =
                    TmpInode::new(self.instance, FileKind::CharDevice, 0, Content::Whiteout);
                from.insert(name.to_string(), whiteout);
            } else {
                from.remove(name);
            }
            if let Some(replaced) = &replaced {
                if replaced.kind == FileKind::Directory {
                    replaced.nlink.store(0, Ordering::Relaxed);
                    adjust_links(new_parent, -1);
                } else {
                    replaced.nlink.fetch_sub(1, Ordering::Relaxed);
                }
            }
            if moving.kind == FileKind::Directory && !same {
                adjust_links(new_parent, 1);
                adjust_links(self, -1);
            }
        }
        drop(from);
        drop(to);
        self.touch();
        new_parent.touch();
        Ok(())
    }

    fn entries(&self, from: usize) -> Result<Vec<DirEntry>, Errno> {
        let children = self.children()?.lock();
        Ok(children
            .iter()
            .skip(from)
            .map(|(name, inode)| DirEntry {
                name: name.clone(),
                ino: inode.ino,
                kind: inode.kind,
            })
            .collect())
    }

    fn open(&self, file: &File) -> Result<(), Errno> {
        match self.content {
            // No driver has device 0:0.
            Content::Whiteout if file.flags() & O_PATH == 0 => Err(ENXIO),
            _ => Ok(()),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        match &self.content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => Err(EINVAL),
        }
    }

    fn read_at(&self, _file: &File, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match &self.content {
            Content::Regular(cache) => Ok(cache.read(offset, buf)),
            Content::Directory(_) => Err(EISDIR),
            Content::Symlink(_) | Content::Whiteout => Err(EINVAL),
        }
    }

    fn write_at(&self, _file: &File, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        match &self.content {
            Content::Regular(cache) => {
                let written = cache.write(offset, buf)?;
                self.touch();
                Ok(written)
            }
            Content::Directory(_) => Err(EISDIR),
            Content::Symlink(_) | Content::Whiteout => Err(EINVAL),
        }
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        match &self.content {
            Content::Regular(cache) => {
                cache.truncate(size)?;
                self.touch();
                Ok(())
            }
            Content::Directory(_) => Err(EISDIR),
            Content::Symlink(_) | Content::Whiteout => Err(EINVAL),
        }
    }

    fn allocate(&self, range: core::ops::Range<u64>, keep_size: bool) -> Result<(), Errno> {
        match &self.content {
            Content::Regular(cache) => {
                cache.allocate(range, keep_size)?;
                self.touch();
                Ok(())
            }
            Content::Directory(_) => Err(EISDIR),
            Content::Symlink(_) | Content::Whiteout => Err(EINVAL),
        }
    }

    fn page_cache(&self) -> Option<&PageCache> {
        match &self.content {
            Content::Regular(cache) => Some(cache),
            _ => None,
        }
    }
}

/// The `Arc<TmpInode>` behind `inode` (the same allocation).
fn clone_arc(inode: &Arc<dyn Inode>) -> Result<Arc<TmpInode>, Errno> {
    let any: Arc<dyn Any + Send + Sync> = inode.clone();
    any.downcast::<TmpInode>().map_err(|_| EXDEV)
}

fn adjust_links(directory: &TmpInode, by: i32) {
    if by > 0 {
        directory.nlink.fetch_add(by as u32, Ordering::Relaxed);
    } else if by < 0 {
        directory
            .nlink
            .fetch_sub(by.unsigned_abs(), Ordering::Relaxed);
    }
}

/// Whether `directory` is `ancestor` or lies below it (under the rename lock, so the tree's
/// shape holds still for directories).
fn is_within(directory: &TmpInode, ancestor: &TmpInode) -> bool {
    if core::ptr::eq(directory, ancestor) {
        return true;
    }
    let Ok(children) = ancestor.children() else {
        return false;
    };
    let subdirectories: Vec<Arc<TmpInode>> = children
        .lock()
        .values()
        .filter(|c| c.kind == FileKind::Directory)
        .cloned()
        .collect();
    subdirectories.iter().any(|sub| is_within(directory, sub))
}

/// What went wrong unpacking the ramdisk.
#[derive(Debug)]
pub enum UnpackError {
    /// The archive itself is malformed here; the entries before it were unpacked.
    Archive(initrd::ParseError),
    /// This entry could not be created.
    Entry(String, Errno),
}

/// Unpacks the boot ramdisk (a cpio archive) into the root: directories, regular files (their
/// bytes copied into the page cache) and symbolic links, with their modes.
pub fn fill_from_ramdisk(root: &Arc<Dentry>) -> Result<(), UnpackError> {
    let Some(bytes) = crate::proc::ramdisk::bytes() else {
        return Ok(());
    };
    for entry in initrd::Archive::new(bytes).iter() {
        let entry = entry.map_err(UnpackError::Archive)?;
        let path = entry.name.trim_start_matches('/').trim_end_matches('/');
        if path.is_empty() || path == "." {
            continue;
        }
        let fail = |error| UnpackError::Entry(path.to_string(), error);
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (make_directories(root, parent).map_err(fail)?, name),
            None => (root.inode().clone(), path),
        };
        let mode = entry.mode;
        let kind = match mode & 0o170_000 {
            0o040_000 => FileKind::Directory,
            0o120_000 => FileKind::Symlink,
            0o100_000 => FileKind::Regular,
            _ => continue,
        };
        let target = (kind == FileKind::Symlink)
            .then(|| core::str::from_utf8(entry.data).map_err(|_| fail(EINVAL)))
            .transpose()?;
        let inode = match parent.create(name, kind, mode, target) {
            Ok(inode) => inode,
            Err(EEXIST) if kind == FileKind::Directory => {
                let existing = parent.lookup(name).map_err(fail)?;
                existing.set_mode(mode).map_err(fail)?;
                continue;
            }
            Err(error) => return Err(fail(error)),
        };
        if let Some(cache) = inode.page_cache() {
            cache.write(0, entry.data).map_err(fail)?;
        }
    }
    Ok(())
}

/// The directory at `path` (relative to `root`), created with mode 0755 where missing.
fn make_directories(root: &Arc<Dentry>, path: &str) -> Result<Arc<dyn Inode>, Errno> {
    let mut directory = root.inode().clone();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        directory = match directory.lookup(name) {
            Ok(found) => found,
            Err(ENOENT) => directory.create(name, FileKind::Directory, 0o755, None)?,
            Err(error) => return Err(error),
        };
    }
    Ok(directory)
}
