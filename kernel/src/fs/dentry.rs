//! Names: the dentry tree, mounts and path walks.
//!
//! A [`Dentry`] binds a name in a directory to an inode. A directory's dentry caches the
//! children looked up through it (strong references, so a name walked once is found again with
//! one map look-up); an entry leaves the cache when the name is unlinked or renamed, through
//! the functions here, which change the file system and the cache together under the cache's
//! lock. Directories whose contents change behind the VFS (`/proc`) are not cached, and
//! neither is anything below them: only a dentry the cache itself holds, from the root down,
//! keeps children (each child holds its parent, so a parent nothing above holds would keep
//! itself and its children alive for good). Negative results are never cached.
//!
//! A file system is mounted on a directory's dentry: the walk steps from the mount point onto
//! the mounted root, whose parent is the mount point's parent, so `..` and `getcwd` cross
//! mounts as on Linux. The mount table lists every mount in the order they were made (the
//! root file system first), for `umount2` to find them and `/proc/mounts` to show them.
//!
//! Lock order: the mount table, then a dentry's child cache (two, for a rename between
//! directories: lower address first), then what the file system takes inside (see the file
//! systems). The `name`, `parent` and `mounted` locks are leaves.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use spin::Once;

use super::{FileKind, FsKind, Inode};
use crate::syscall::errno::{EBUSY, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, Errno};

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
    /// Held by the cache from the root down (or the root, or a mounted root on such a
    /// dentry): only then may it keep its children (see the module documentation). Cleared
    /// for good when a lazy unmount takes its file system out of the tree.
    in_cache: AtomicBool,
}

static ROOT: Once<Arc<Dentry>> = Once::new();

impl Dentry {
    fn new(name: &str, parent: Option<Arc<Dentry>>, inode: Arc<dyn Inode>) -> Arc<Self> {
        let in_cache = parent.as_ref().is_none_or(|p| p.keeps_children());
        Arc::new(Self {
            name: spin::Mutex::new(name.to_string()),
            parent: spin::Mutex::new(parent),
            inode,
            children: spin::Mutex::new(BTreeMap::new()),
            mounted: spin::Mutex::new(None),
            deleted: AtomicBool::new(false),
            in_cache: AtomicBool::new(in_cache),
        })
    }

    /// A dentry that is in no directory, for files without a name (pipes, `memfd_create`):
    /// its path is `name` as given (`pipe:[12]`, `/memfd:x (deleted)`).
    pub fn unnamed(name: &str, inode: Arc<dyn Inode>) -> Arc<Self> {
        let dentry = Self::new(name, None, inode);
        dentry.deleted.store(true, Ordering::Relaxed);
        dentry.in_cache.store(false, Ordering::Relaxed);
        dentry
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    /// Whether the children looked up through this dentry stay in the cache.
    fn keeps_children(&self) -> bool {
        self.in_cache.load(Ordering::Relaxed) && self.inode.caches_children()
    }

    /// Takes this dentry and everything below it (mounts included) out of the cache for good,
    /// when a lazy unmount took its file system out of the tree: what is still held stays
    /// usable, and goes with its last holder.
    fn leave_cache(self: &Arc<Self>) {
        self.in_cache.store(false, Ordering::Relaxed);
        let children = core::mem::take(&mut *self.children.lock());
        let mounted = self.mounted.lock().take();
        for child in children.values().chain(mounted.as_ref()) {
            child.leave_cache();
        }
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
        check_name(name)?;
        if !self.keeps_children() {
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
        let mut cache = self.children.lock();
        cache.retain(|_, child| {
            Arc::strong_count(child) > 1
                || child.mounted.lock().is_some()
                || child.children.try_lock().is_none_or(|c| !c.is_empty())
        });
        // An emptied map keeps its root node: a new one holds no memory.
        if cache.is_empty() {
            *cache = BTreeMap::new();
        }
    }

    /// Whether `ancestor` is this dentry or one of its parents (across mount points).
    fn is_below(self: &Arc<Self>, ancestor: &Arc<Dentry>) -> bool {
        let mut at = Some(self.clone());
        while let Some(dentry) = at {
            if Arc::ptr_eq(&dentry, ancestor) {
                return true;
            }
            at = dentry.parent();
        }
        false
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
        check_name(name)?;
        let mut children = self.children.lock();
        let inode = self.inode.create(name, kind, mode, target)?;
        let child = Dentry::new(name, Some(self.clone()), inode);
        if self.keeps_children() {
            children.insert(name.to_string(), child.clone());
        }
        Ok(child)
    }

    /// Links `inode` here as `name`.
    pub fn link(self: &Arc<Self>, name: &str, inode: &Arc<dyn Inode>) -> Result<(), Errno> {
        check_name(name)?;
        let _children = self.children.lock();
        self.inode.link(name, inode)
    }

    /// Unlinks `name` (a directory when `directory`).
    pub fn unlink(self: &Arc<Self>, name: &str, directory: bool) -> Result<(), Errno> {
        check_name(name)?;
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
        check_name(name)?;
        check_name(new_name)?;
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
            if new_parent.keeps_children() {
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

/// Makes `inode` the root of the tree (once, at boot), and the first entry of the mount table.
pub fn init_root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
    ROOT.call_once(|| {
        let root = Dentry::new("/", None, inode);
        MOUNTS.lock().push(Mount {
            id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
            point: root.clone(),
            root: root.clone(),
            source: "rootfs".to_string(),
            flags: 0,
        });
        root
    })
    .clone()
}

/// The per-mount flags of `mount` that the table keeps and `/proc/mounts` shows (they are
/// recorded, not enforced).
pub const MS_RDONLY: u64 = 1;
pub const MS_NOSUID: u64 = 2;
pub const MS_NODEV: u64 = 4;
pub const MS_NOEXEC: u64 = 8;
pub const MS_NOATIME: u64 = 1 << 10;
pub const MS_NODIRATIME: u64 = 1 << 11;
pub const MS_STRICTATIME: u64 = 1 << 24;
const MOUNT_FLAGS: u64 =
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_STRICTATIME;

/// One mounted file system.
struct Mount {
    /// Its number in `/proc/PID/mountinfo`.
    id: u32,
    /// The dentry it is mounted on (the root file system's is its own root).
    point: Arc<Dentry>,
    /// Its root, which walks reach in place of `point`.
    root: Arc<Dentry>,
    /// What `mount` was given as its source (`proc`, `none`...).
    source: String,
    /// The flags of [`MOUNT_FLAGS`] it was mounted with.
    flags: u64,
}

/// Every mount, in the order they were made (the root file system first).
static MOUNTS: spin::Mutex<Vec<Mount>> = spin::Mutex::new(Vec::new());
static NEXT_MOUNT_ID: AtomicU32 = AtomicU32::new(1);

/// A mount as `/proc/PID/mounts` and `mountinfo` show it.
pub struct MountEntry {
    pub id: u32,
    /// The mount that holds the mount point (the root file system's own id for itself).
    pub parent_id: u32,
    pub fs: FsKind,
    pub source: String,
    /// The mount point's path.
    pub point: String,
    pub flags: u64,
}

/// Mounts a new file system of `kind` on the directory `point` (what a walk of the target
/// found, so the top of what is mounted there), with `source` and `mount`'s `flags`.
/// `ENOTDIR` for a file, `ENOENT` for a removed directory, `EBUSY` for the root, `EINVAL` for a
/// directory whose file system does not keep its names (inside `/proc`).
pub fn mount(point: &Arc<Dentry>, kind: FsKind, source: &str, flags: u64) -> Result<(), Errno> {
    if point.inode.kind() != FileKind::Directory {
        return Err(ENOTDIR);
    }
    if point.is_deleted() {
        return Err(ENOENT);
    }
    if Arc::ptr_eq(point, root()) {
        return Err(EBUSY);
    }
    let parent = point.parent();
    if parent.as_ref().is_some_and(|p| !p.keeps_children()) {
        return Err(EINVAL);
    }
    let instance = kind.new_instance().ok_or(crate::syscall::errno::ENODEV)?;
    let root = Dentry::new(&point.name(), parent, instance);
    let mut mounts = MOUNTS.lock();
    let mut mounted = point.mounted.lock();
    if mounted.is_some() {
        return Err(EBUSY);
    }
    *mounted = Some(root.clone());
    drop(mounted);
    mounts.push(Mount {
        id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
        point: point.clone(),
        root,
        source: source.to_string(),
        flags: flags & MOUNT_FLAGS,
    });
    Ok(())
}

/// Whether `dentry` is the root of a mounted file system (`mount` changes such a mount's
/// flags and propagation, which are not kept; anything else is `EINVAL`).
pub fn is_mount_root(dentry: &Arc<Dentry>) -> bool {
    MOUNTS.lock().iter().any(|m| Arc::ptr_eq(&m.root, dentry))
}

/// Unmounts the file system whose root is `target` (what a walk of the path found). `EINVAL`
/// if `target` is no mount's root, `EBUSY` for the root file system, and, unless `detach`
/// (`MNT_DETACH`), for a file system in use: an open file, a working directory or a mount in
/// it. A detached file system stays usable to whoever still holds it; mounts inside it go
/// with it.
pub fn unmount(target: &Arc<Dentry>, detach: bool) -> Result<(), Errno> {
    if !detach {
        // What only the cache holds goes first: what is left is in use.
        target.shrink();
    }
    let mut mounts = MOUNTS.lock();
    let index = mounts
        .iter()
        .position(|m| Arc::ptr_eq(&m.root, target))
        .ok_or(EINVAL)?;
    if Arc::ptr_eq(target, root()) {
        return Err(EBUSY);
    }
    let mut mounted = mounts[index].point.mounted.lock();
    // Held by the mount point, the table and the caller, and by nothing else (a cached child
    // holds its parent): the walks that could take it more wait for the `mounted` lock.
    if !detach && Arc::strong_count(target) > 3 {
        return Err(EBUSY);
    }
    *mounted = None;
    drop(mounted);
    let mut gone = alloc::vec![mounts.remove(index)];
    if detach {
        let (inside, kept): (Vec<Mount>, Vec<Mount>) = core::mem::take(&mut *mounts)
            .into_iter()
            .partition(|m| m.point.is_below(target));
        *mounts = kept;
        gone.extend(inside);
    }
    drop(mounts);
    if detach {
        target.leave_cache();
    }
    // The file systems (and the last references to their trees) go with no lock held.
    drop(gone);
    Ok(())
}

/// The mount table as `/proc/PID/mounts` shows it.
pub fn mounts() -> Vec<MountEntry> {
    let mounts = MOUNTS.lock();
    let parent_of = |mount: &Mount| {
        let mut at = Some(mount.point.clone());
        while let Some(dentry) = at {
            if let Some(holder) = mounts
                .iter()
                .find(|m| m.id != mount.id && Arc::ptr_eq(&m.root, &dentry))
            {
                return holder.id;
            }
            at = dentry.parent();
        }
        mount.id
    };
    mounts
        .iter()
        .map(|mount| MountEntry {
            id: mount.id,
            parent_id: parent_of(mount),
            fs: mount.root.inode.fs(),
            source: mount.source.clone(),
            point: mount.root.path(),
            flags: mount.flags,
        })
        .collect()
}

/// Mounts a new file system of `kind` on the directory at `path` (absolute), its source named
/// after its kind. Boot-time set-up: a failure is logged.
pub fn mount_at(path: &str, kind: FsKind) {
    let fs_name = kind.name();
    let mounted = resolve(root(), path, Follow::Yes).and_then(|p| mount(&p, kind, fs_name, 0));
    if let Err(error) = mounted {
        log::warn!("fs: cannot mount {fs_name} on {path}: {error:?}");
    }
}

/// Whether a walk follows a symbolic link in the last component.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// Checks a path's length (`ENAMETOOLONG`) and that it is not empty (`ENOENT`). Its names'
/// lengths are checked where the walk looks each up ([`check_name`]), as on Linux: a name
/// past a missing directory or a file is `ENOENT` or `ENOTDIR`, whatever its length.
fn check_path(path: &str) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(ENAMETOOLONG);
    }
    Ok(())
}

/// A name looked up, created, linked, removed or renamed in a directory: `ENAMETOOLONG`
/// beyond `NAME_MAX` bytes.
fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
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
        if let Some(target) = link.inode.magic_link() {
            return target;
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
