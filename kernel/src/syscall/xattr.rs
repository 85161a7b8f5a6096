//! Extended attributes: `setxattr`, `getxattr`, `listxattr`, `removexattr` and their `l` (the
//! last link not followed) and `f` (a descriptor) forms.
//!
//! The attributes live with the inode, where its file system keeps them
//! ([`Inode::xattrs`]: tmpfs does, as Linux's does, for the `user.`, `trusted.` and `security.`
//! namespaces); a file system that keeps none answers `EOPNOTSUPP`. Every process is root, so
//! the trusted namespace is open to all. Linux 6.12's order of checks: `setxattr` checks its
//! flags, name and value, and `removexattr` its name, before the path is walked; `getxattr` and
//! `listxattr` walk it first. The descriptor forms look the descriptor up first.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::errno::{E2BIG, EEXIST, EINVAL, ENODATA, EOPNOTSUPP, EPERM, ERANGE, Errno, SysResult};
use super::files::lookup_path;
use super::int_arg;
use super::io::file;
use crate::arch::uaccess::{copy_from_user, copy_to_user, strncpy_from_user};
use crate::fs::dentry::Follow;
use crate::fs::{FileKind, Inode};

/// The longest attribute name.
const XATTR_NAME_MAX: usize = 255;
/// The largest value, and the largest list of names.
const XATTR_SIZE_MAX: u64 = 65_536;
const XATTR_LIST_MAX: u64 = 65_536;
/// `setxattr` flags: the attribute must not exist yet; it must exist already.
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;

/// The namespaces a file system keeps attributes in (Linux's tmpfs handlers).
const NAMESPACES: [&str; 3] = ["user.", "trusted.", "security."];
const USER_PREFIX: &str = "user.";

/// Which file a call names: a path (its last link followed or not) or a descriptor.
pub enum FileTarget {
    Path(Follow),
    Descriptor,
}

/// The inode `target` names.
fn target_inode(target: &FileTarget, file_or_path: u64) -> Result<Arc<dyn Inode>, Errno> {
    match target {
        FileTarget::Path(follow) => Ok(lookup_path(file_or_path, *follow)?.inode().clone()),
        FileTarget::Descriptor => Ok(file(int_arg(file_or_path))?.inode().clone()),
    }
}

/// `setxattr`'s flags (an `int`): `EINVAL` for a bit besides `XATTR_CREATE` and
/// `XATTR_REPLACE`.
pub fn check_xattr_flags(flags: u64) -> Result<u32, Errno> {
    let flags = int_arg(flags) as u32;
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(EINVAL);
    }
    Ok(flags)
}

/// An attribute name copied in: `EFAULT`, and `ERANGE` for an empty one or one longer than
/// `XATTR_NAME_MAX`.
pub fn check_xattr_name(name: u64) -> Result<String, Errno> {
    let mut bytes = alloc::vec![0u8; XATTR_NAME_MAX + 1];
    let length = match strncpy_from_user(&mut bytes, name) {
        Ok(0) | Err(super::errno::ENAMETOOLONG) => return Err(ERANGE),
        Ok(length) => length,
        Err(error) => return Err(error),
    };
    bytes.truncate(length);
    // A name that is not UTF-8 is in no namespace this kernel keeps.
    String::from_utf8(bytes).map_err(|_| EOPNOTSUPP)
}

/// Linux's `xattr_permission` for root: an immutable inode's attributes cannot change
/// (`EPERM`); a `user.` attribute belongs only to regular files and directories (`EPERM` to
/// change one elsewhere, `ENODATA` to read one). The immutable inodes are pidfs's, regular
/// files inside though `stat` shows them without a type, so reading passes this check.
fn check_permission(inode: &Arc<dyn Inode>, name: &str, writing: bool) -> Result<(), Errno> {
    if inode.immutable() {
        return if writing { Err(EPERM) } else { Ok(()) };
    }
    let plain = matches!(inode.kind(), FileKind::Regular | FileKind::Directory);
    if name.starts_with(USER_PREFIX) && !plain {
        return Err(if writing { EPERM } else { ENODATA });
    }
    Ok(())
}

/// The attributes of `inode` for the attribute `name`, as Linux's `xattr_resolve_name` finds
/// its handler: `EOPNOTSUPP` for a file system without attributes or a name in no namespace,
/// `EINVAL` for a namespace's bare prefix.
fn attributes<'a>(
    inode: &'a Arc<dyn Inode>,
    name: &str,
) -> Result<&'a spin::Mutex<BTreeMap<String, Vec<u8>>>, Errno> {
    let attributes = inode.xattrs().ok_or(EOPNOTSUPP)?;
    match NAMESPACES.iter().find(|prefix| name.starts_with(*prefix)) {
        Some(prefix) if name.len() == prefix.len() => Err(EINVAL),
        Some(_) => Ok(attributes),
        None => Err(EOPNOTSUPP),
    }
}

/// setxattr, lsetxattr, fsetxattr.
pub fn setxattr(
    target: FileTarget,
    file_or_path: u64,
    name: u64,
    value: u64,
    size: u64,
    flags: u64,
) -> SysResult {
    // The descriptor's EBADF comes first; a path is walked after the arguments are copied.
    let early = match target {
        FileTarget::Descriptor => Some(target_inode(&target, file_or_path)?),
        FileTarget::Path(_) => None,
    };
    let flags = check_xattr_flags(flags)?;
    let name = check_xattr_name(name)?;
    if size > XATTR_SIZE_MAX {
        return Err(E2BIG);
    }
    // An empty value is not read: its pointer may be anything.
    let mut bytes = alloc::vec![0u8; size as usize];
    if size > 0 {
        copy_from_user(&mut bytes, value)?;
    }
    let inode = match early {
        Some(inode) => inode,
        None => target_inode(&target, file_or_path)?,
    };
    check_permission(&inode, &name, true)?;
    let mut attributes = attributes(&inode, &name)?.lock();
    let exists = attributes.contains_key(&name);
    if flags & XATTR_CREATE != 0 && exists {
        return Err(EEXIST);
    }
    if flags & XATTR_REPLACE != 0 && !exists {
        return Err(ENODATA);
    }
    attributes.insert(name, bytes);
    Ok(0)
}

/// getxattr, lgetxattr, fgetxattr: the value's length, and the value where `size` is not 0
/// (`ERANGE` if it does not fit).
pub fn getxattr(
    target: FileTarget,
    file_or_path: u64,
    name: u64,
    value: u64,
    size: u64,
) -> SysResult {
    let inode = target_inode(&target, file_or_path)?;
    let name = check_xattr_name(name)?;
    check_permission(&inode, &name, false)?;
    let found = attributes(&inode, &name)?
        .lock()
        .get(&name)
        .cloned()
        .ok_or(ENODATA)?;
    if size == 0 {
        return Ok(found.len() as u64);
    }
    if found.len() as u64 > size.min(XATTR_SIZE_MAX) {
        return Err(ERANGE);
    }
    copy_out(value, &found)?;
    Ok(found.len() as u64)
}

/// listxattr, llistxattr, flistxattr: the names, each with its NUL; their length where `size`
/// is 0, `ERANGE` where they do not fit. A file system without attributes lists none.
pub fn listxattr(target: FileTarget, file_or_path: u64, list: u64, size: u64) -> SysResult {
    let inode = target_inode(&target, file_or_path)?;
    let mut names = Vec::new();
    if let Some(attributes) = inode.xattrs() {
        for name in attributes.lock().keys() {
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
    }
    if size == 0 {
        return Ok(names.len() as u64);
    }
    if names.len() as u64 > size.min(XATTR_LIST_MAX) {
        return Err(ERANGE);
    }
    copy_out(list, &names)?;
    Ok(names.len() as u64)
}

/// Copies `bytes` out to `address`: nothing at all, and no fault, when there are none.
fn copy_out(address: u64, bytes: &[u8]) -> Result<(), Errno> {
    if bytes.is_empty() {
        return Ok(());
    }
    copy_to_user(address, bytes)
}

/// removexattr, lremovexattr, fremovexattr: `ENODATA` for an attribute the file does not have.
/// The name is copied in before a path is walked (a descriptor's `EBADF` comes first).
pub fn removexattr(target: FileTarget, file_or_path: u64, name: u64) -> SysResult {
    let early = match target {
        FileTarget::Descriptor => Some(target_inode(&target, file_or_path)?),
        FileTarget::Path(_) => None,
    };
    let name = check_xattr_name(name)?;
    let inode = match early {
        Some(inode) => inode,
        None => target_inode(&target, file_or_path)?,
    };
    check_permission(&inode, &name, true)?;
    attributes(&inode, &name)?
        .lock()
        .remove(&name)
        .ok_or(ENODATA)?;
    Ok(0)
}
