//! Names: the dentry tree, mounts and path walks.
//!
//! A [`Dentry`] binds a name in a directory to an inode. A directory's dentry caches the
//! children looked up through it (strong references, so a name walked once is found again with
//! one map look-up); an entry leaves the cache when the name is unlinked or renamed, through
//! the functions here, which change the file system and the cache together under the cache's
//! lock. Directories whose contents change behind the VFS (`/proc`) are not cached. Negative
//! results are never cached.
//!
//! A file system is mounted on a directory's dentry: the walk steps from the mount point onto
//! the mounted root, whose parent is the mount point's parent, so `..` and `getcwd` cross
//! mounts as on Linux.
//!
//! Lock order: a dentry's child cache (two, for a rename between directories: lower address
//! first), then what the file system takes inside (see the file systems). The `name`, `parent`
//! and `mounted` locks are leaves.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Once;

use super::{FileKind, Inode};
use crate::syscall::errno::{ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, Errno};

/// The longest name of one path component (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// The longest path, with its terminating NUL (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// The most symbolic links one walk follows (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

pub struct Dentry {
    name: spin::Mutex<String>,
    /// `None` for the root of the tree only.
    parent: spin::Mutex<Option<Arc<Dentry>>>,
    inode: Arc<dyn Inode>,
    children: spin::Mutex<BTreeMap<String, Arc<Dentry>>>,
    /// The root of the file system mounted here.
    mounted: spin::Mutex<Option<Arc<Dentry>>>,
    /// The name was unlinked (an open file or working directory may still hold the dentry).
    deleted: AtomicBool,
}

static ROOT: Once<Arc<Dentry>> = Once::new();

impl Dentry {
    fn new(name: &str, parent: Option<Arc<Dentry>>, inode: Arc<dyn Inode>) -> Arc<Self> {
        Arc::new(Self {
            name: spin::Mutex::new(name.to_string()),
            parent: spin::Mutex::new(parent),
            inode,
            children: spin::Mutex::new(BTreeMap::new()),
            mounted: spin::Mutex::new(None),
            deleted: AtomicBool::new(false),
        })
    }

    /// A dentry that is in no directory, for files without a name (pipes, `memfd_create`):
    /// its path is `name` as given (`pipe:[12]`, `/memfd:x (deleted)`).
    pub fn unnamed(name: &str, inode: Arc<dyn Inode>) -> Arc<Self> {
        let dentry = Self::new(name, None, inode);
        dentry.deleted.store(true, Ordering::Relaxed);
        dentry
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.parent.lock().clone()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    /// The absolute path (what `getcwd`, `/proc/PID/fd` and `/proc/PID/maps` show); an
    /// unlinked file's ends in " (deleted)", an unnamed file's is its name.
    pub fn path(self: &Arc<Self>) -> String {
        if self.parent().is_none() && !Arc::ptr_eq(self, root()) {
            return self.name();
        }
        let mut names = Vec::new();
        let mut at = self.clone();
        while let Some(parent) = at.parent() {
            names.push(at.name());
            at = parent;
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        if path.is_empty() {
            path.push('/');
        }
        if self.is_deleted() {
            path.push_str(" (deleted)");
        }
        path
    }

    /// What is mounted on this dentry, if anything, else the dentry itself (mounts on mounts
    /// are followed to the top).
    fn mount_top(self: Arc<Self>) -> Arc<Self> {
        let mut at = self;
        loop {
            let mounted = at.mounted.lock().clone();
            match mounted {
                Some(root) => at = root,
                None => return at,
            }
        }
    }

    /// The child `name` (not `.` or `..`), from the cache or the file system.
    pub fn child(self: &Arc<Self>, name: &str) -> Result<Arc<Dentry>, Errno> {
        if self.inode.kind() != FileKind::Directory {
            return Err(ENOTDIR);
        }
        if !self.inode.caches_children() {
            let inode = self.inode.lookup(name)?;
            return Ok(Dentry::new(name, Some(self.clone()), inode).mount_top());
        }
        let mut children = self.children.lock();
        if let Some(child) = children.get(name) {
            return Ok(child.clone().mount_top());
        }
        let inode = self.inode.lookup(name)?;
        let child = Dentry::new(name, Some(self.clone()), inode);
        children.insert(name.to_string(), child.clone());
        Ok(child)
    }

    /// Drops the cached dentries below this one that nothing else holds (Linux's
    /// `drop_caches`): the tree then costs memory only for the names in use. Children are
    /// visited with no lock held; a child whose own cache is busy is kept.
    #[cfg(feature = "ktest")]
    fn shrink(self: &Arc<Self>) {
        let mounted = self.mounted.lock().clone();
        if let Some(root) = mounted {
            root.shrink();
        }
        let children: Vec<Arc<Dentry>> = self.children.lock().values().cloned().collect();
        for child in &children {
            child.shrink();
        }
        drop(children);
        self.children.lock().retain(|_, child| {
            Arc::strong_count(child) > 1
                || child.mounted.lock().is_some()
                || child.children.try_lock().is_none_or(|c| !c.is_empty())
        });
    }

    /// The parent for `..`: the root's is itself.
    fn dotdot(self: &Arc<Self>) -> Arc<Dentry> {
        self.parent().unwrap_or_else(|| self.clone())
    }

    /// Creates `name` here (see [`Inode::create`]) and caches it.
    pub fn create(
        self: &Arc<Self>,
        name: &str,
        kind: FileKind,
        mode: u32,
        target: Option<&str>,
    ) -> Result<Arc<Dentry>, Errno> {
        let mut children = self.children.lock();
        let inode = self.inode.create(name, kind, mode, target)?;
        let child = Dentry::new(name, Some(self.clone()), inode);
        if self.inode.caches_children() {
            children.insert(name.to_string(), child.clone());
        }
        Ok(child)
    }

    /// Links `inode` here as `name`.
    pub fn link(self: &Arc<Self>, name: &str, inode: &Arc<dyn Inode>) -> Result<(), Errno> {
        let _children = self.children.lock();
        self.inode.link(name, inode)
    }

    /// Unlinks `name` (a directory when `directory`).
    pub fn unlink(self: &Arc<Self>, name: &str, directory: bool) -> Result<(), Errno> {
        let mut children = self.children.lock();
        if children
            .get(name)
            .is_some_and(|c| c.mounted.lock().is_some())
        {
            return Err(crate::syscall::errno::EBUSY);
        }
        self.inode.unlink(name, directory)?;
        if let Some(gone) = children.remove(name) {
            gone.deleted.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Renames `name` here to `new_name` in `new_parent` (`renameat2` flags).
    pub fn rename(
        self: &Arc<Self>,
        name: &str,
        new_parent: &Arc<Dentry>,
        new_name: &str,
        flags: u32,
    ) -> Result<(), Errno> {
        let same = Arc::ptr_eq(self, new_parent);
        let (mut from, mut to) = if same {
            (self.children.lock(), None)
        } else if Arc::as_ptr(self) < Arc::as_ptr(new_parent) {
            let from = self.children.lock();
            (from, Some(new_parent.children.lock()))
        } else {
            let to = new_parent.children.lock();
            (self.children.lock(), Some(to))
        };
        self.inode
            .rename(name, new_parent.inode.as_ref(), new_name, flags)?;
        let moving = from.remove(name);
        let to_map = to.as_deref_mut().unwrap_or(&mut from);
        let replaced = to_map.remove(new_name);
        if let Some(moving) = moving {
            *moving.name.lock() = new_name.to_string();
            *moving.parent.lock() = Some(new_parent.clone());
            if new_parent.inode.caches_children() {
                to_map.insert(new_name.to_string(), moving);
            }
        }
        if let Some(replaced) = replaced {
            if flags & super::RENAME_EXCHANGE != 0 {
                *replaced.name.lock() = name.to_string();
                *replaced.parent.lock() = Some(self.clone());
                from.insert(name.to_string(), replaced);
            } else {
                replaced.deleted.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The root of the tree.
pub fn root() -> &'static Arc<Dentry> {
    ROOT.get().expect("the root is mounted at boot")
}

/// Drops every cached dentry nothing holds (tests use it to count what processes left
/// behind).
#[cfg(feature = "ktest")]
pub fn shrink_cache() {
    root().shrink();
}

/// Makes `inode` the root of the tree (once, at boot).
pub fn init_root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
    ROOT.call_once(|| Dentry::new("/", None, inode)).clone()
}

/// Mounts the file system whose root is `inode` on the directory at `path` (absolute).
/// Boot-time set-up: a failure is logged.
pub fn mount_at(path: &str, inode: Arc<dyn Inode>) {
    let fs_name = inode.fs().name();
    let point = match resolve(root(), path, Follow::Yes) {
        Ok(point) if point.inode.kind() == FileKind::Directory => point,
        Ok(_) => return log::warn!("fs: cannot mount {fs_name} on {path}: not a directory"),
        Err(error) => return log::warn!("fs: cannot mount {fs_name} on {path}: {error:?}"),
    };
    let root = Dentry::new(&point.name(), point.parent(), inode);
    *point.mounted.lock() = Some(root);
}

/// Whether a walk follows a symbolic link in the last component.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// Checks a path's length and its components' (`ENAMETOOLONG`) and that it is not empty
/// (`ENOENT`).
fn check_path(path: &str) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(ENAMETOOLONG);
    }
    if path.split('/').any(|component| component.len() > NAME_MAX) {
        return Err(ENAMETOOLONG);
    }
    Ok(())
}

/// One walk: counts the symbolic links it follows.
struct Walk {
    links: u32,
}

impl Walk {
    /// Walks every component of `path` from `base` (or the root for an absolute path); the
    /// last is followed if it is a link and `follow` says so, or if the path ends in `/`
    /// (which also requires a directory).
    fn walk(
        &mut self,
        base: &Arc<Dentry>,
        path: &str,
        follow: Follow,
    ) -> Result<Arc<Dentry>, Errno> {
        let mut at = if path.starts_with('/') {
            root().clone()
        } else {
            base.clone()
        };
        let trailing_slash = path.ends_with('/');
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (index, &name) in components.iter().enumerate() {
            let last = index + 1 == components.len();
            if at.inode.kind() != FileKind::Directory {
                return Err(ENOTDIR);
            }
            at = match name {
                "." => at,
                ".." => at.dotdot(),
                name => at.child(name)?,
            };
            if at.inode.kind() == FileKind::Symlink
                && (!last || follow == Follow::Yes || trailing_slash)
            {
                at = self.follow_link(&at)?;
            }
        }
        if trailing_slash && at.inode.kind() != FileKind::Directory {
            return Err(ENOTDIR);
        }
        Ok(at)
    }

    /// Where the symbolic link `link` leads, relative to its directory.
    fn follow_link(&mut self, link: &Arc<Dentry>) -> Result<Arc<Dentry>, Errno> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(ELOOP);
        }
        let target = link.inode.readlink()?;
        check_path(&target)?;
        let directory = link.dotdot();
        self.walk(&directory, &target, Follow::Yes)
    }
}

/// The dentry `path` names, walked from `base` (for a relative path).
pub fn resolve(base: &Arc<Dentry>, path: &str, follow: Follow) -> Result<Arc<Dentry>, Errno> {
    check_path(path)?;
    Walk { links: 0 }.walk(base, path, follow)
}

/// The directory that holds the last component of `path`, and that component's name (for the
/// calls that create, remove or rename names). A path whose last component is `.` or `..`
/// (or the root itself) gives that component as the name; the callers answer those with
/// their own errors.
pub fn resolve_parent(base: &Arc<Dentry>, path: &str) -> Result<(Arc<Dentry>, String), Errno> {
    check_path(path)?;
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok((root().clone(), ".".to_string()));
    }
    let (directory_path, name) = match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((directory, name)) => (directory, name),
        None => (".", trimmed),
    };
    let directory = Walk { links: 0 }.walk(base, directory_path, Follow::Yes)?;
    if directory.inode.kind() != FileKind::Directory {
        return Err(ENOTDIR);
    }
    Ok((directory, name.to_string()))
}

/// Whether `name` is `.` or `..` (which cannot be created, removed or renamed).
pub fn is_dot_or_dotdot(name: &str) -> bool {
    name == "." || name == ".."
}
