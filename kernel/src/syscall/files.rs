//! Names and attributes: open, the stat family, directories, links, renames, modes, sizes, the
//! working directory, access checks, file-system statistics, mounts, `memfd_create`,
//! `sysinfo`.
//!
//! Paths are copied from user memory whole (`ENAMETOOLONG` at `PATH_MAX`) and walked by
//! [`crate::fs::dentry`]; the `*at` forms start relative paths at a directory descriptor or,
//! with `AT_FDCWD`, at the working directory. Every process runs as root, so permission bits
//! are kept and reported but only execute bits are checked (as Linux does for root).

use alloc::string::String;
use alloc::sync::Arc;

use super::errno::{
    EBUSY, EEXIST, EFAULT, EINVAL, EISDIR, ELOOP, ENODEV, ENOENT, ENOTDIR, EOPNOTSUPP, ERANGE,
    Errno, SysResult,
};
use super::int_arg;
use super::io::{file, file_or_place};
use super::thread::process;
use crate::arch::uaccess::{copy_to_user, read_user, strncpy_from_user, write_user};
use crate::fs::dentry::{self, Dentry, Follow, PATH_MAX};
use crate::fs::file::{
    File, O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOFOLLOW,
    O_PATH, O_RDWR, O_TMPFILE, O_TRUNC, O_WRONLY,
};
use crate::fs::hugetlb::HugeMemoryFile;
use crate::fs::{FileKind, Inode, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, Stat};

/// `dirfd` meaning the working directory.
const AT_FDCWD: u64 = -100i64 as u64;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EACCESS: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;

/// The path at user address `path`.
fn user_path(path: u64) -> Result<String, Errno> {
    let mut bytes = alloc::vec![0u8; PATH_MAX];
    let length = strncpy_from_user(&mut bytes, path)?;
    bytes.truncate(length);
    String::from_utf8(bytes).map_err(|_| EINVAL)
}

/// Where a relative path given with `dirfd` starts.
fn start_of(dirfd: u64, path: &str) -> Result<Arc<Dentry>, Errno> {
    if path.starts_with('/') || dirfd as i32 as i64 == AT_FDCWD as i64 {
        return Ok(process().fs_context().cwd());
    }
    let directory = file_or_place(dirfd)?;
    if directory.inode().kind() != FileKind::Directory {
        return Err(ENOTDIR);
    }
    Ok(directory.dentry().clone())
}

/// The dentry `dirfd` and `path` name; an empty path names `dirfd` itself when `flags` has
/// `AT_EMPTY_PATH`.
fn lookup_at(dirfd: u64, path: u64, flags: u64, follow: Follow) -> Result<Arc<Dentry>, Errno> {
    let path = user_path(path)?;
    lookup_copied(dirfd, &path, flags, follow)
}

/// [`lookup_at`] of a path already copied in.
fn lookup_copied(dirfd: u64, path: &str, flags: u64, follow: Follow) -> Result<Arc<Dentry>, Errno> {
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd as i32 as i64 == AT_FDCWD as i64 {
            return Ok(process().fs_context().cwd());
        }
        return Ok(file_or_place(dirfd)?.dentry().clone());
    }
    if path.is_empty() {
        return Err(ENOENT);
    }
    let base = start_of(dirfd, path)?;
    dentry::resolve(&base, path, follow)
}

/// The path at `path` as Linux's `getname` copies it: `EFAULT`, `ENAMETOOLONG`, and `ENOENT`
/// for an empty one unless `flags` has `AT_EMPTY_PATH`.
fn user_path_flags(path: u64, flags: u64) -> Result<String, Errno> {
    let text = user_path(path)?;
    if text.is_empty() && flags & AT_EMPTY_PATH == 0 {
        return Err(ENOENT);
    }
    Ok(text)
}

/// The directory and last name of `path` (relative to `dirfd`).
fn parent_at(dirfd: u64, path: u64) -> Result<(Arc<Dentry>, String, bool), Errno> {
    let path = user_path(path)?;
    if path.is_empty() {
        return Err(ENOENT);
    }
    let base = start_of(dirfd, &path)?;
    let (directory, name) = dentry::resolve_parent(&base, &path)?;
    Ok((directory, name, path.ends_with('/')))
}

pub fn open(path: u64, flags: u64, mode: u64) -> SysResult {
    openat(AT_FDCWD, path, flags, mode)
}

pub fn creat(path: u64, mode: u64) -> SysResult {
    openat(
        AT_FDCWD,
        path,
        u64::from(O_CREAT | O_WRONLY | O_TRUNC),
        mode,
    )
}

/// The flags `open` knows (Linux's `VALID_OPEN_FLAGS`); it ignores the others.
const VALID_OPEN_FLAGS: u32 = 0x7f_ffc3;
/// What `O_PATH` keeps of the other flags.
const O_PATH_FLAGS: u32 = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;

/// The flags an `open` goes on with, checked as Linux's `build_open_how` and
/// `build_open_flags` do for `open` and `openat`: unknown bits dropped, `O_PATH` keeping only
/// its companions, `EINVAL` for `O_DIRECTORY | O_CREAT` and for `O_TMPFILE` without
/// `O_DIRECTORY` or without write access.
fn open_flags(flags: u64) -> Result<u32, Errno> {
    let mut flags = flags as u32 & VALID_OPEN_FLAGS;
    if flags & O_PATH != 0 {
        flags &= O_PATH_FLAGS;
    }
    if flags & (O_DIRECTORY | O_CREAT) == O_DIRECTORY | O_CREAT {
        return Err(EINVAL);
    }
    if flags & O_TMPFILE != 0 && (flags & O_DIRECTORY == 0 || flags & O_ACCMODE == 0) {
        return Err(EINVAL);
    }
    Ok(flags | O_LARGEFILE)
}

pub fn openat(dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    let flags = open_flags(flags)?;
    // `umode_t`: 16 bits, of which the permission bits count.
    let mode = u32::from(mode as u16) & 0o7777;
    if flags & O_TMPFILE != 0 {
        return open_tmpfile(dirfd, path, flags, mode);
    }
    let dentry = open_dentry(dirfd, path, flags, mode)?;
    let inode = dentry.inode().clone();
    let kind = inode.kind();
    if flags & O_PATH == 0 {
        if flags & O_DIRECTORY != 0 && kind != FileKind::Directory {
            return Err(ENOTDIR);
        }
        // Linux's `may_open`: a directory cannot be opened for writing (nor truncated).
        let writes = flags & O_ACCMODE != 0 || flags & O_TRUNC != 0;
        if kind == FileKind::Directory && (writes || flags & O_CREAT != 0) {
            return Err(EISDIR);
        }
        if kind == FileKind::Symlink {
            return Err(ELOOP);
        }
        // Linux's `do_dentry_open`: only a file that does direct I/O opens with `O_DIRECT`
        // (one created by this open stays).
        if flags & O_DIRECT != 0 && !inode.direct_io() {
            return Err(EINVAL);
        }
    } else if flags & O_DIRECTORY != 0 && kind != FileKind::Directory {
        return Err(ENOTDIR);
    }
    let status = if flags & O_PATH != 0 {
        O_PATH | flags & (O_DIRECTORY | O_NOFOLLOW)
    } else {
        flags
    };
    let file = File::open(dentry, status)?;
    if flags & O_TRUNC != 0 && flags & O_PATH == 0 && kind == FileKind::Regular {
        inode.truncate(0)?;
    }
    process().files().install(file, flags & O_CLOEXEC != 0, 0)
}

/// `O_TMPFILE`: a new regular file in no directory, on the file system of the directory
/// `path` names (`ENOTDIR` if it is not one, `EOPNOTSUPP` where that file system cannot).
fn open_tmpfile(dirfd: u64, path: u64, flags: u32, mode: u32) -> SysResult {
    let directory = lookup_at(
        dirfd,
        path,
        0,
        follow_unless(u64::from(flags), u64::from(O_NOFOLLOW)),
    )?;
    if directory.inode().kind() != FileKind::Directory {
        return Err(ENOTDIR);
    }
    let mode = mode & !process().fs_context().umask();
    let inode: Arc<dyn Inode> = crate::fs::tmpfs::TmpInode::new_tmpfile(directory.inode(), mode)?;
    // Linux names it as a deleted file of the directory.
    let name = alloc::format!(
        "{}/#{} (deleted)",
        directory.path().trim_end_matches('/'),
        inode.stat().ino
    );
    let file = File::open(
        Dentry::unnamed(&name, inode),
        flags & !O_TMPFILE & !O_DIRECTORY,
    )?;
    process().files().install(file, flags & O_CLOEXEC != 0, 0)
}

/// The dentry an `open` names, created (a regular file) for `O_CREAT` where missing.
fn open_dentry(dirfd: u64, path: u64, flags: u32, mode: u32) -> Result<Arc<Dentry>, Errno> {
    let follow = if flags & O_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    if flags & O_CREAT == 0 {
        return lookup_at(dirfd, path, 0, follow);
    }
    let (directory, name, trailing_slash) = parent_at(dirfd, path)?;
    // `.` and `..` name a directory that exists (`EEXIST` for `O_EXCL`, before Linux's
    // `EISDIR` for creating a directory); another name with a slash after it cannot be created.
    if dentry::is_dot_or_dotdot(&name) {
        return Err(if flags & O_EXCL != 0 { EEXIST } else { EISDIR });
    }
    if trailing_slash {
        return Err(EISDIR);
    }
    let (mut directory, mut name) = (directory, name);
    // A symbolic link is followed to what it names, which is created if missing (a dangling
    // link), up to the walk's limit of links.
    for _ in 0..=dentry::MAX_SYMLINKS {
        match directory.child(&name) {
            Ok(_) if flags & O_EXCL != 0 => return Err(EEXIST),
            Ok(link) if link.inode().kind() == FileKind::Symlink && follow == Follow::Yes => {
                let target = link.inode().readlink()?;
                (directory, name) = dentry::resolve_parent(&directory, &target)?;
                if target.ends_with('/') || dentry::is_dot_or_dotdot(&name) {
                    return Err(EISDIR);
                }
            }
            Ok(existing) => return Ok(existing),
            Err(ENOENT) => {
                let mode = mode & !process().fs_context().umask();
                return match directory.create(&name, FileKind::Regular, mode, None) {
                    // Created meanwhile by someone else: open theirs (unless O_EXCL).
                    Err(EEXIST) if flags & O_EXCL == 0 => directory.child(&name),
                    other => other,
                };
            }
            Err(error) => return Err(error),
        }
    }
    Err(ELOOP)
}

/// `struct stat` (x86_64, 144 bytes) of `stat`.
fn stat_words(stat: &Stat) -> [u64; 18] {
    let mut words = [0u64; 18];
    words[0] = stat.dev;
    words[1] = stat.ino;
    words[2] = u64::from(stat.nlink);
    words[3] = u64::from(stat.mode) | u64::from(stat.uid) << 32;
    words[4] = u64::from(stat.gid);
    words[5] = stat.rdev;
    words[6] = stat.size;
    words[7] = u64::from(stat.blksize);
    words[8] = stat.blocks;
    // Access time: the modification time (access times are not kept).
    words[9] = stat.mtime_ns / 1_000_000_000;
    words[10] = stat.mtime_ns % 1_000_000_000;
    words[11] = stat.mtime_ns / 1_000_000_000;
    words[12] = stat.mtime_ns % 1_000_000_000;
    words[13] = stat.ctime_ns / 1_000_000_000;
    words[14] = stat.ctime_ns % 1_000_000_000;
    words
}

pub fn fstat(fd: u64, buf: u64) -> SysResult {
    let stat = file_or_place(fd)?.inode().stat();
    write_user(buf, &stat_words(&stat))?;
    Ok(0)
}

pub fn stat(path: u64, buf: u64) -> SysResult {
    newfstatat(AT_FDCWD, path, buf, 0)
}

pub fn lstat(path: u64, buf: u64) -> SysResult {
    newfstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)
}

/// The flags of the stat family (checked before the path is copied in).
const STAT_FLAGS: u64 = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE;

/// The file a call of the stat family names, its flags checked: the path copied in, then
/// looked up from `dirfd` (`AT_EMPTY_PATH` for `dirfd` itself, `AT_SYMLINK_NOFOLLOW`). A NULL
/// path with `AT_EMPTY_PATH` and no other flag but the `ignored` ones names a `dirfd` that is
/// not negative, before anything is copied (Linux 6.12's `vfs_empty_path`).
fn stat_target(dirfd: u64, path: u64, flags: u64, ignored: u64) -> Result<Arc<Dentry>, Errno> {
    if path == 0 && flags & !ignored == AT_EMPTY_PATH && (dirfd as i32) >= 0 {
        return Ok(file_or_place(dirfd)?.dentry().clone());
    }
    let path = user_path_flags(path, flags)?;
    lookup_copied(
        dirfd,
        &path,
        flags,
        follow_unless(flags, AT_SYMLINK_NOFOLLOW),
    )
}

pub fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !STAT_FLAGS != 0 {
        return Err(EINVAL);
    }
    let dentry = stat_target(dirfd, path, flags, 0)?;
    write_user(buf, &stat_words(&dentry.inode().stat()))?;
    Ok(0)
}

/// Whether a walk follows the last link: not when `flags` has the call's `no_follow` bit.
fn follow_unless(flags: u64, no_follow: u64) -> Follow {
    if flags & no_follow != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

/// [`lookup_at`] with the last link followed unless `flags` has `AT_SYMLINK_NOFOLLOW`.
fn lookup_at_flags(dirfd: u64, path: u64, flags: u64) -> Result<Arc<Dentry>, Errno> {
    lookup_at(
        dirfd,
        path,
        flags,
        follow_unless(flags, AT_SYMLINK_NOFOLLOW),
    )
}

/// The fields `statx` fills (`STATX_BASIC_STATS`).
const STATX_BASIC_STATS: u32 = 0x7ff;

/// `STATX__RESERVED`: a mask bit kept for extending the structure.
const STATX_RESERVED: u64 = 0x8000_0000;

/// Linux's order: the mask's reserved bit, the synchronisation type and the other flags, then
/// the path.
pub fn statx(dirfd: u64, path: u64, flags: u64, mask: u64, buf: u64) -> SysResult {
    let flags = int_arg(flags);
    if int_arg(mask) & STATX_RESERVED != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || flags & !STAT_FLAGS != 0
    {
        return Err(EINVAL);
    }
    let ignored = AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    let stat = stat_target(dirfd, path, flags, ignored)?.inode().stat();
    let mut out = [0u8; 256];
    let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &STATX_BASIC_STATS.to_le_bytes());
    put(4, &stat.blksize.to_le_bytes());
    put(16, &stat.nlink.to_le_bytes());
    put(20, &stat.uid.to_le_bytes());
    put(24, &stat.gid.to_le_bytes());
    put(28, &(stat.mode as u16).to_le_bytes());
    put(32, &stat.ino.to_le_bytes());
    put(40, &stat.size.to_le_bytes());
    put(48, &stat.blocks.to_le_bytes());
    for (at, ns) in [
        (64, stat.mtime_ns),
        (96, stat.ctime_ns),
        (112, stat.mtime_ns),
    ] {
        put(at, &(ns / 1_000_000_000).to_le_bytes());
        put(at + 8, &((ns % 1_000_000_000) as u32).to_le_bytes());
    }
    let (rdev_major, rdev_minor) = decode_device(stat.rdev);
    let (dev_major, dev_minor) = decode_device(stat.dev);
    put(128, &rdev_major.to_le_bytes());
    put(132, &rdev_minor.to_le_bytes());
    put(136, &dev_major.to_le_bytes());
    put(140, &dev_minor.to_le_bytes());
    copy_to_user(buf, &out)?;
    Ok(0)
}

/// Linux's `new_decode_dev`: (major, minor).
fn decode_device(device: u64) -> (u32, u32) {
    (
        ((device >> 8) & 0xfff) as u32,
        ((device & 0xff) | ((device >> 12) & 0xfff00)) as u32,
    )
}

/// `getdents64`: entries from the description's position (0 is `.`, 1 is `..`, then the
/// directory's own), as many as fit in `len` bytes (`EINVAL` if not even the first does).
pub fn getdents64(fd: u64, buf: u64, len: u64) -> SysResult {
    let file = file(fd)?;
    let dentry = file.dentry().clone();
    if dentry.inode().kind() != FileKind::Directory {
        return Err(ENOTDIR);
    }
    // `unsigned int count`, which Linux then keeps in an `int`: a count of 2 GiB or more is
    // room for no entry (`EINVAL`). The buffer is looked at only when an entry is written to
    // it (`EFAULT` then), as Linux's `filldir64` does, so no room is `EINVAL` whatever it is.
    let len = u64::from(len as u32);
    let room = if len > i32::MAX as u64 {
        0
    } else {
        len as usize
    };
    let mut position = file.lock_position()?;
    let mut out = alloc::vec::Vec::new();
    let mut next = *position;
    let parent_ino = dentry.parent().map_or(1, |p| p.inode().stat().ino);
    let own_ino = dentry.inode().stat().ino;
    let mut entries = dentry
        .inode()
        .entries(next.saturating_sub(2) as usize)?
        .into_iter();
    loop {
        let (name, ino, kind): (String, u64, FileKind) = match next {
            0 => (".".into(), own_ino, FileKind::Directory),
            1 => ("..".into(), parent_ino, FileKind::Directory),
            _ => match entries.next() {
                Some(entry) => (entry.name, entry.ino, entry.kind),
                None => break,
            },
        };
        let record = (19 + name.len() + 1).next_multiple_of(8);
        if out.len() + record > room {
            if out.is_empty() {
                return Err(EINVAL);
            }
            break;
        }
        let start = out.len();
        out.resize(start + record, 0);
        out[start..start + 8].copy_from_slice(&ino.to_le_bytes());
        out[start + 8..start + 16].copy_from_slice(&(next + 1).to_le_bytes());
        out[start + 16..start + 18].copy_from_slice(&(record as u16).to_le_bytes());
        out[start + 18] = kind.dirent_type();
        out[start + 19..start + 19 + name.len()].copy_from_slice(name.as_bytes());
        next += 1;
    }
    if !out.is_empty() {
        copy_to_user(buf, &out)?;
    }
    *position = next;
    Ok(out.len() as u64)
}

pub fn mkdirat(dirfd: u64, path: u64, mode: u64) -> SysResult {
    let (directory, name, _) = parent_at(dirfd, path)?;
    if dentry::is_dot_or_dotdot(&name) {
        return Err(EEXIST);
    }
    let mode = mode as u32 & 0o7777 & !process().fs_context().umask();
    directory.create(&name, FileKind::Directory, mode, None)?;
    Ok(0)
}

pub fn unlinkat(dirfd: u64, path: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !AT_REMOVEDIR != 0 {
        return Err(EINVAL);
    }
    let (directory, name, trailing_slash) = parent_at(dirfd, path)?;
    let removing_directory = flags & AT_REMOVEDIR != 0;
    match name.as_str() {
        "." if removing_directory => return Err(EINVAL),
        ".." if removing_directory => return Err(super::errno::ENOTEMPTY),
        "." | ".." => return Err(EISDIR),
        _ => {}
    }
    if trailing_slash && !removing_directory {
        let found = directory.child(&name)?;
        return Err(if found.inode().kind() == FileKind::Directory {
            EISDIR
        } else {
            ENOTDIR
        });
    }
    directory.unlink(&name, removing_directory)?;
    Ok(0)
}

pub fn renameat2(
    old_dirfd: u64,
    old_path: u64,
    new_dirfd: u64,
    new_path: u64,
    flags: u64,
) -> SysResult {
    let flags = flags as u32;
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0 && flags & RENAME_EXCHANGE != 0
    {
        return Err(EINVAL);
    }
    let (old_directory, old_name, old_slash) = parent_at(old_dirfd, old_path)?;
    let (new_directory, new_name, new_slash) = parent_at(new_dirfd, new_path)?;
    if dentry::is_dot_or_dotdot(&old_name) {
        return Err(EBUSY);
    }
    if dentry::is_dot_or_dotdot(&new_name) {
        return Err(if flags & RENAME_NOREPLACE != 0 {
            EEXIST
        } else {
            EBUSY
        });
    }
    // Linux looks both names up before it renames: the source's errors, then the target's.
    let moving = old_directory.child(&old_name)?;
    match new_directory.child(&new_name) {
        Ok(_) | Err(ENOENT) => {}
        Err(error) => return Err(error),
    }
    // A trailing slash names a directory.
    if moving.inode().kind() != FileKind::Directory && (old_slash || new_slash) {
        return Err(ENOTDIR);
    }
    old_directory.rename(&old_name, &new_directory, &new_name, flags)?;
    Ok(0)
}

pub fn linkat(
    old_dirfd: u64,
    old_path: u64,
    new_dirfd: u64,
    new_path: u64,
    flags: u64,
) -> SysResult {
    let flags = int_arg(flags);
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 {
        Follow::Yes
    } else {
        Follow::No
    };
    let existing = lookup_at(old_dirfd, old_path, flags, follow)?;
    // Linux's `filename_create`, then `vfs_link`: the new name's errors (`EEXIST` for a name
    // taken) come before a directory's `EPERM`, which the file system gives.
    let (directory, name) = new_name_at(new_dirfd, new_path)?;
    directory.link(&name, existing.inode())?;
    Ok(0)
}

/// The directory and the free name where `path` (relative to `dirfd`) asks for a new file
/// other than a directory, checked as Linux's `filename_create`: `.`, `..` or a name taken is
/// `EEXIST`; a free name written with a trailing slash asks for a directory, and is `ENOENT`.
fn new_name_at(dirfd: u64, path: u64) -> Result<(Arc<Dentry>, String), Errno> {
    let (directory, name, trailing_slash) = parent_at(dirfd, path)?;
    if dentry::is_dot_or_dotdot(&name) {
        return Err(EEXIST);
    }
    match directory.child(&name) {
        Ok(_) => Err(EEXIST),
        Err(ENOENT) if trailing_slash => Err(ENOENT),
        Err(ENOENT) => Ok((directory, name)),
        Err(error) => Err(error),
    }
}

pub fn symlinkat(target: u64, dirfd: u64, path: u64) -> SysResult {
    let target = user_path(target)?;
    if target.is_empty() {
        return Err(ENOENT);
    }
    let (directory, name) = new_name_at(dirfd, path)?;
    directory.create(&name, FileKind::Symlink, 0o777, Some(&target))?;
    Ok(0)
}

pub fn readlinkat(dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i32 <= 0 {
        return Err(EINVAL);
    }
    let path = user_path(path)?;
    let dentry = lookup_copied(dirfd, &path, AT_EMPTY_PATH, Follow::No)?;
    // Linux: what an empty path names (the directory descriptor's file) is "not found" when
    // it is not a link.
    if path.is_empty() && dentry.inode().kind() != FileKind::Symlink {
        return Err(ENOENT);
    }
    let target = dentry.inode().readlink()?;
    let count = target.len().min(size as u32 as usize);
    copy_to_user(buf, &target.as_bytes()[..count])?;
    Ok(count as u64)
}

pub fn fchmod(fd: u64, mode: u64) -> SysResult {
    let file = file(fd)?;
    file.inode().set_mode(mode as u32)?;
    Ok(0)
}

pub fn fchmodat(dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let dentry = lookup_at_flags(dirfd, path, flags)?;
    if dentry.inode().kind() == FileKind::Symlink {
        return Err(EOPNOTSUPP);
    }
    dentry.inode().set_mode(mode as u32)?;
    Ok(0)
}

/// The inode a size change applies to: a regular file (`EISDIR` for a directory, `EINVAL`
/// for anything else) and a size that is not negative.
fn resizable(inode: &Arc<dyn Inode>, size: u64) -> Result<(), Errno> {
    if (size as i64) < 0 {
        return Err(EINVAL);
    }
    match inode.kind() {
        FileKind::Regular => Ok(()),
        FileKind::Directory => Err(EISDIR),
        _ => Err(EINVAL),
    }
}

pub fn truncate(path: u64, size: u64) -> SysResult {
    // Linux refuses a negative length before it looks at the path.
    if (size as i64) < 0 {
        return Err(EINVAL);
    }
    let dentry = lookup_at(AT_FDCWD, path, 0, Follow::Yes)?;
    resizable(dentry.inode(), size)?;
    dentry.inode().truncate(size)?;
    Ok(0)
}

/// ftruncate: a negative size is `EINVAL` before the descriptor is looked at (Linux's order).
pub fn ftruncate(fd: u64, size: u64) -> SysResult {
    if (size as i64) < 0 {
        return Err(EINVAL);
    }
    let file = file(fd)?;
    if !file.writable() || file.inode().kind() != FileKind::Regular {
        return Err(EINVAL);
    }
    resizable(file.inode(), size)?;
    file.inode().truncate(size)?;
    Ok(0)
}

pub fn chdir(path: u64) -> SysResult {
    let dentry = lookup_at(AT_FDCWD, path, 0, Follow::Yes)?;
    change_directory(dentry)
}

pub fn fchdir(fd: u64) -> SysResult {
    change_directory(file_or_place(fd)?.dentry().clone())
}

fn change_directory(dentry: Arc<Dentry>) -> SysResult {
    if dentry.inode().kind() != FileKind::Directory {
        return Err(ENOTDIR);
    }
    process().fs_context().set_cwd(dentry);
    Ok(0)
}

/// `getcwd`: the working directory's path with its NUL; `ERANGE` if it does not fit in
/// `size`, `ENOENT` if the directory was removed.
pub fn getcwd(buf: u64, size: u64) -> SysResult {
    let cwd = process().fs_context().cwd();
    if cwd.is_deleted() {
        return Err(ENOENT);
    }
    let mut path = cwd.path().into_bytes();
    path.push(0);
    if path.len() as u64 > size {
        return Err(ERANGE);
    }
    copy_to_user(buf, &path).map_err(|_| EFAULT)?;
    Ok(path.len() as u64)
}

const X_OK: u64 = 1;

pub fn faccessat2(dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    let (mode, flags) = (int_arg(mode), int_arg(flags));
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let dentry = lookup_at_flags(dirfd, path, flags)?;
    let stat = dentry.inode().stat();
    // Root may read and write anything; it may execute a file with an execute bit set.
    if mode & X_OK != 0 && dentry.inode().kind() != FileKind::Directory && stat.mode & 0o111 == 0 {
        return Err(super::errno::EACCES);
    }
    Ok(0)
}

pub fn umask(mask: u64) -> SysResult {
    Ok(u64::from(process().fs_context().swap_umask(mask as u32)))
}

/// `struct statfs` (x86_64, 120 bytes) of the file system holding `inode`.
fn statfs_words(inode: &Arc<dyn Inode>) -> [u64; 15] {
    let memory = crate::mm::frame::stats();
    let mut words = [0u64; 15];
    words[0] = inode.fs().magic();
    words[1] = 4096; // f_bsize
    words[2] = memory.total_frames as u64; // f_blocks
    words[3] = memory.free_frames as u64; // f_bfree
    words[4] = memory.free_frames as u64; // f_bavail
    words[5] = memory.total_frames as u64; // f_files
    words[6] = memory.free_frames as u64; // f_ffree
    words[8] = dentry::NAME_MAX as u64; // f_namelen
    words[9] = 4096; // f_frsize
    words
}

pub fn statfs(path: u64, buf: u64) -> SysResult {
    let dentry = lookup_at(AT_FDCWD, path, 0, Follow::Yes)?;
    write_user(buf, &statfs_words(dentry.inode()))?;
    Ok(0)
}

pub fn fstatfs(fd: u64, buf: u64) -> SysResult {
    let file = file_or_place(fd)?;
    write_user(buf, &statfs_words(file.inode()))?;
    Ok(0)
}

/// `mount` flags besides the per-mount ones the table keeps (`dentry::MS_*`).
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
/// The magic number old programs put in the high half of the flags.
const MS_MGC_MASK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;
/// The longest type or source string `mount` takes (Linux copies at most a page).
const MOUNT_STRING_MAX: usize = 4096;

/// A string argument of `mount` (`None` for a null pointer).
fn mount_string(address: u64) -> Result<Option<String>, Errno> {
    if address == 0 {
        return Ok(None);
    }
    let mut bytes = alloc::vec![0u8; MOUNT_STRING_MAX];
    let length = match strncpy_from_user(&mut bytes, address) {
        Ok(length) => length,
        // Linux takes the first page and cuts it there.
        Err(super::errno::ENAMETOOLONG) => MOUNT_STRING_MAX - 1,
        Err(error) => return Err(error),
    };
    bytes.truncate(length);
    String::from_utf8(bytes).map(Some).map_err(|_| EINVAL)
}

/// `mount(source, target, type, flags, data)`: mounts a new `proc`, `sysfs`, `tmpfs` or
/// `devtmpfs` on a directory (`ENODEV` for another type, `EINVAL` without one). A remount or a
/// change of propagation (`MS_SHARED`...) of an existing mount succeeds and changes nothing;
/// bind mounts and moves are not supported (`EINVAL`). Options in `data` are ignored.
pub fn mount(source: u64, target: u64, fs_type: u64, flags: u64, _data: u64) -> SysResult {
    let flags = if flags & MS_MGC_MASK == MS_MGC_VAL {
        flags & !MS_MGC_MASK
    } else {
        flags
    };
    let source = mount_string(source)?;
    let fs_type = mount_string(fs_type)?;
    let point = lookup_at(AT_FDCWD, target, 0, Follow::Yes)?;
    let propagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
    if flags & (MS_REMOUNT | propagation) != 0 {
        return if dentry::is_mount_root(&point) {
            Ok(0)
        } else {
            Err(EINVAL)
        };
    }
    if flags & (MS_BIND | MS_MOVE) != 0 {
        return Err(EINVAL);
    }
    let kind = crate::fs::FsKind::from_name(fs_type.as_deref().ok_or(EINVAL)?).ok_or(ENODEV)?;
    dentry::mount(&point, kind, source.as_deref().unwrap_or("none"), flags)?;
    Ok(0)
}

const MNT_FORCE: u64 = 1;
const MNT_DETACH: u64 = 2;
const MNT_EXPIRE: u64 = 4;
const UMOUNT_NOFOLLOW: u64 = 8;

/// `umount2(target, flags)`: unmounts the file system mounted at `target` (`EINVAL` if none
/// is, `EBUSY` while it is in use, unless `MNT_DETACH`). `MNT_EXPIRE` only ever marks the
/// mount (`EAGAIN`, as Linux's first call does); `MNT_FORCE` changes nothing here.
pub fn umount2(target: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(EINVAL);
    }
    let dentry = lookup_at(AT_FDCWD, target, 0, follow_unless(flags, UMOUNT_NOFOLLOW))?;
    // Linux's `can_umount` (a mount's root), then `do_umount` (`MNT_EXPIRE` alone).
    if flags & MNT_EXPIRE != 0 {
        return if !dentry::is_mount_root(&dentry) || flags & (MNT_FORCE | MNT_DETACH) != 0 {
            Err(EINVAL)
        } else {
            Err(super::errno::EAGAIN)
        };
    }
    dentry::unmount(&dentry, flags & MNT_DETACH != 0)?;
    Ok(0)
}

const MFD_CLOEXEC: u32 = 0x01;
const MFD_ALLOW_SEALING: u32 = 0x02;
const MFD_HUGETLB: u32 = 0x04;
const MFD_NOEXEC_SEAL: u32 = 0x08;
const MFD_EXEC: u32 = 0x10;
const MFD_KNOWN: u32 = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/// The huge page size that may ride with `MFD_HUGETLB`: its log2 in bits 26 to 31 (0: the
/// default size).
const MFD_HUGE_SHIFT: u32 = 26;
const MFD_HUGE_SIZE: u32 = 0x3f << MFD_HUGE_SHIFT;
/// The longest name `memfd_create` takes (Linux's `MFD_NAME_MAX_LEN`).
const MFD_NAME_MAX: usize = 249;

/// memfd_create: `flags` is an `unsigned int`, checked as Linux 6.12 does (`EINVAL` for unknown
/// bits, a page size without `MFD_HUGETLB`, or both `MFD_EXEC` and `MFD_NOEXEC_SEAL`), then the
/// name (`EFAULT`, `EINVAL` past 249 bytes), then the huge page size (`ENODEV` for one that is
/// not x86-64's, as Linux answers for a size it has no hugetlb pool of). With `MFD_HUGETLB`
/// the file is a [`HugeMemoryFile`] (no huge page is ever reserved); otherwise an ordinary
/// memory file. No seals are kept (`F_ADD_SEALS` is refused).
pub fn memfd_create(name: u64, flags: u64) -> SysResult {
    let flags = flags as u32;
    let known = match flags & MFD_HUGETLB {
        0 => MFD_KNOWN,
        _ => MFD_KNOWN | MFD_HUGE_SIZE,
    };
    if flags & !known != 0 || flags & (MFD_EXEC | MFD_NOEXEC_SEAL) == MFD_EXEC | MFD_NOEXEC_SEAL {
        return Err(EINVAL);
    }
    let mut bytes = [0u8; MFD_NAME_MAX + 1];
    let length = strncpy_from_user(&mut bytes, name).map_err(|error| match error {
        super::errno::ENAMETOOLONG => EINVAL,
        other => other,
    })?;
    let name = core::str::from_utf8(&bytes[..length]).map_err(|_| EINVAL)?;
    let huge_shift = u64::from((flags & MFD_HUGE_SIZE) >> MFD_HUGE_SHIFT);
    let huge_shifts = crate::mm::mmap::HUGE_PAGE_SHIFTS;
    let inode: Arc<dyn Inode> = match (flags & MFD_HUGETLB, huge_shift) {
        (0, _) => crate::fs::tmpfs::TmpInode::new_unnamed_file(0o777),
        // 0: the default size, 2 MiB.
        (_, 0) => HugeMemoryFile::new(1 << huge_shifts[0], 0o777),
        (_, shift) if huge_shifts.contains(&shift) => HugeMemoryFile::new(1 << shift, 0o777),
        _ => return Err(super::errno::ENODEV),
    };
    // Linux names it as a deleted file of its internal tmpfs.
    let dentry = Dentry::unnamed(&alloc::format!("/memfd:{name} (deleted)"), inode);
    let file = File::open(dentry, O_RDWR | O_LARGEFILE)?;
    process().files().install(file, flags & MFD_CLOEXEC != 0, 0)
}

/// `struct sysinfo` (x86_64, 112 bytes).
pub fn sysinfo(buf: u64) -> SysResult {
    let memory = crate::mm::frame::stats();
    let mut words = [0u64; 14];
    words[0] = crate::time::now_ns() / 1_000_000_000; // uptime
    words[4] = memory.total_frames as u64 * 4096; // totalram
    words[5] = memory.free_frames as u64 * 4096; // freeram
    words[10] = crate::proc::live_processes().len() as u64; // procs (u16)
    words[13] = 1; // mem_unit
    write_user(buf, &words)?;
    Ok(0)
}

/// The dentry `path` names from the working directory (its last link followed or not).
pub(super) fn lookup_path(path: u64, follow: Follow) -> Result<Arc<Dentry>, Errno> {
    lookup_at(AT_FDCWD, path, 0, follow)
}

/// `utimensat`'s `tv_nsec` values: the current time, and no change.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;
const NS_PER_SECOND: i64 = 1_000_000_000;

/// utimensat: sets the modification time (access times are not kept: `stat` shows the
/// modification time for them); a NULL `path` names `dirfd` itself (futimens). Linux's order:
/// the times copied in (`EFAULT`), nothing at all when both are `UTIME_OMIT`; then for a
/// descriptor, flags (`EINVAL` for any) and `EBADF`; for a path, unknown flags (`EINVAL`) and
/// the walk (a NULL path with `AT_FDCWD` is `EFAULT`); last a `tv_nsec` out of range.
pub fn utimensat(dirfd: u64, path: u64, times: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    let given = if times == 0 {
        None
    } else {
        let words: [i64; 4] = read_user(times)?;
        if words[1] == UTIME_OMIT && words[3] == UTIME_OMIT {
            return Ok(0);
        }
        Some(words)
    };
    let dentry = if path == 0 && dirfd as i32 as i64 != AT_FDCWD as i64 {
        if flags != 0 {
            return Err(EINVAL);
        }
        file(int_arg(dirfd))?.dentry().clone()
    } else {
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
            return Err(EINVAL);
        }
        lookup_at_flags(dirfd, path, flags)?
    };
    let mtime = match given {
        None => Some(crate::fs::now_ns()),
        Some(words) => {
            for nanoseconds in [words[1], words[3]] {
                let special = nanoseconds == UTIME_NOW || nanoseconds == UTIME_OMIT;
                if !special && !(0..NS_PER_SECOND).contains(&nanoseconds) {
                    return Err(EINVAL);
                }
            }
            match words[3] {
                UTIME_OMIT => None,
                UTIME_NOW => Some(crate::fs::now_ns()),
                nanoseconds => Some(
                    (words[2].max(0) as u64)
                        .saturating_mul(NS_PER_SECOND as u64)
                        .saturating_add(nanoseconds as u64),
                ),
            }
        }
    };
    if let Some(mtime) = mtime {
        dentry.inode().set_mtime(mtime)?;
    }
    Ok(0)
}

/// `chown`'s "leave unchanged" id.
const UNCHANGED_ID: u32 = u32::MAX;

/// fchownat (chown, lchown): sets the owner and group (`uid_t` and `gid_t`: 32 bits, -1 for
/// unchanged); every process is root, so any ids may be set. Unknown flags are `EINVAL` before
/// the walk.
pub fn fchownat(dirfd: u64, path: u64, owner: u64, group: u64, flags: u64) -> SysResult {
    let flags = int_arg(flags);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let dentry = lookup_at_flags(dirfd, path, flags)?;
    set_owner(dentry.inode(), owner, group)
}

pub fn fchown(fd: u64, owner: u64, group: u64) -> SysResult {
    set_owner(file(fd)?.inode(), owner, group)
}

/// The ownership change of a file found.
fn set_owner(inode: &Arc<dyn Inode>, owner: u64, group: u64) -> SysResult {
    let id = |id: u64| Some(id as u32).filter(|&id| id != UNCHANGED_ID);
    inode.set_owner(id(owner), id(group))?;
    Ok(0)
}
