//! Open files and the tables that name them.
//!
//! - [`File`]: an open file description (Linux's `struct file`): the dentry it was opened
//!   through, the status flags (`O_APPEND`, `O_NONBLOCK`, the access mode) and the offset.
//!   Descriptors duplicated with `dup` or inherited through `fork` share one. The offset is
//!   under a sleeping lock held across a read or write of a seekable file, so two threads
//!   sharing a description never read the same bytes (Linux's `f_pos_lock`). What the file
//!   system keeps per description (a `/proc` file's text) is set once, when it is opened.
//! - [`FdTable`]: a process's descriptors, shared between processes made with `CLONE_FILES`
//!   and copied by `fork`. Its spinlock is a leaf: a description is dropped (and released)
//!   only after the lock is gone.
//! - [`FsContext`]: the working directory and the umask, shared with `CLONE_FS`.
//! - [`Writers`] and [`WriteDenial`]: a runnable file's count of descriptions open for
//!   writing, against the running programs' holds on it (`ETXTBSY` either way); an atomic
//!   count, no lock.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::Inode;
use super::dentry::{Dentry, Follow};
use crate::sync::Mutex;
use crate::sync::mutex::MutexGuard;
use crate::syscall::errno::{EBADF, EINTR, EMFILE, ETXTBSY, Errno};

pub const O_ACCMODE: u32 = 0o3;
pub const O_RDONLY: u32 = 0o0;
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECT: u32 = 0o40000;
pub const O_LARGEFILE: u32 = 0o100000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_NOATIME: u32 = 0o1000000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;
pub const O_TMPFILE: u32 = 0o20000000;

/// The flags `F_SETFL` may change.
pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME;

/// The most descriptors a process may have open (`RLIMIT_NOFILE`'s usual soft limit).
pub const MAX_FDS: usize = 1024;

pub struct File {
    dentry: Arc<Dentry>,
    /// Access mode and status flags (no creation flags, no `O_CLOEXEC`).
    flags: AtomicU32,
    position: Mutex<u64>,
    /// Who `F_SETOWN` named (a process, or a group as its negated id; 0 for none) and the
    /// signal `F_SETSIG` chose (0: `SIGIO`): kept for `F_GETOWN` and `F_GETSIG`. No signal is
    /// sent yet (`O_ASYNC` has no effect).
    owner: AtomicI32,
    signal: AtomicU32,
    /// The file system's own data for this description (Linux's `private_data`), set once by
    /// the inode's `open` hook.
    private: spin::Once<Box<dyn Any + Send + Sync>>,
}

impl File {
    /// A description of `dentry`'s inode, opened with `flags`; the inode's `open` hook runs
    /// (and may refuse). The hook still sees `O_NOCTTY` (a terminal asks it), which the
    /// description then drops, as Linux does.
    pub fn open(dentry: Arc<Dentry>, flags: u32) -> Result<Arc<File>, Errno> {
        let status = flags & !(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
        if let Some(writers) = dentry.inode().writers()
            && writes(status)
        {
            writers.add()?;
        }
        let file = Arc::new(File {
            dentry,
            flags: AtomicU32::new(status),
            position: Mutex::new(0),
            owner: AtomicI32::new(0),
            signal: AtomicU32::new(0),
            private: spin::Once::new(),
        });
        file.inode().open(&file)?;
        file.flags.fetch_and(!O_NOCTTY, Ordering::Relaxed);
        Ok(file)
    }

    pub fn dentry(&self) -> &Arc<Dentry> {
        &self.dentry
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        self.dentry.inode()
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// `F_SETFL`: changes the flags of [`SETFL_MASK`], keeps the rest.
    pub fn set_status_flags(&self, flags: u32) {
        let _ = self
            .flags
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(old & !SETFL_MASK | flags & SETFL_MASK)
            });
    }

    /// `F_GETOWN`'s answer.
    pub fn owner(&self) -> i32 {
        self.owner.load(Ordering::Relaxed)
    }

    /// `F_SETOWN`: the process (`who` > 0) or group (`-who`) named, 0 for none.
    pub fn set_owner(&self, who: i32) {
        self.owner.store(who, Ordering::Relaxed);
    }

    /// `F_GETSIG`'s answer.
    pub fn signal(&self) -> u32 {
        self.signal.load(Ordering::Relaxed)
    }

    /// `F_SETSIG`: the signal (checked) that would announce I/O.
    pub fn set_signal(&self, signal: u32) {
        self.signal.store(signal, Ordering::Relaxed);
    }

    pub fn readable(&self) -> bool {
        self.flags() & O_ACCMODE != O_WRONLY && self.flags() & O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        writes(self.flags())
    }

    pub fn nonblocking(&self) -> bool {
        self.flags() & O_NONBLOCK != 0
    }

    /// Keeps `data` with the description for the file system (the first call's stays).
    pub fn set_private<T: Any + Send + Sync>(&self, data: T) {
        self.private.call_once(|| Box::new(data));
    }

    /// What [`File::set_private`] kept, if it is a `T`.
    pub fn private<T: Any>(&self) -> Option<&T> {
        self.private.get()?.downcast_ref()
    }

    /// The offset, locked for a read, write or seek (`EINTR` if the thread is killed while
    /// another holds it).
    pub fn lock_position(&self) -> Result<MutexGuard<'_, u64>, Errno> {
        self.position.lock_killable().ok_or(EINTR)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let inode = self.dentry.inode().clone();
        inode.release(self);
        if let Some(writers) = inode.writers()
            && self.writable()
        {
            writers.remove();
        }
    }
}

/// Whether a description with the status flags `flags` may write.
fn writes(flags: u32) -> bool {
    matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR) && flags & O_PATH == 0
}

/// Linux's `i_writecount` of a file that can be run: the count of open descriptions that may
/// write it (positive), or of the running programs that deny them (negative, as a
/// [`WriteDenial`]). [`File::open`] for writing adds one writer (`ETXTBSY` while a program
/// runs the file) and its drop takes it back; `execve` refuses a file with writers.
#[derive(Default)]
pub struct Writers(AtomicI32);

impl Writers {
    fn add(&self) -> Result<(), Errno> {
        self.0
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
                (count >= 0).then_some(count + 1)
            })
            .map(drop)
            .map_err(|_| ETXTBSY)
    }

    fn remove(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// `execve`'s check before it copies the arguments: `ETXTBSY` while some description may
    /// write the file.
    pub fn check_none(&self) -> Result<(), Errno> {
        if self.0.load(Ordering::Relaxed) > 0 {
            return Err(ETXTBSY);
        }
        Ok(())
    }
}

/// A running program's hold on its executable file, shared by the processes that run it
/// (a fork's child too): while one lasts, the file cannot be opened for writing (`ETXTBSY`,
/// Linux's `deny_write_access` for the life of an address space).
pub struct WriteDenial(Arc<dyn Inode>);

impl WriteDenial {
    /// The hold on `inode`; `None` if its file system keeps no count of writers, or if the
    /// file is open for writing now.
    pub fn new(inode: &Arc<dyn Inode>) -> Option<Self> {
        inode
            .writers()?
            .0
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
                (count <= 0).then_some(count - 1)
            })
            .ok()?;
        Some(Self(inode.clone()))
    }
}

impl Drop for WriteDenial {
    fn drop(&mut self) {
        if let Some(writers) = self.0.writers() {
            writers.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Clone)]
struct Slot {
    file: Arc<File>,
    close_on_exec: bool,
}

/// A process's descriptors.
pub struct FdTable {
    slots: spin::Mutex<Vec<Option<Slot>>>,
}

impl FdTable {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            slots: spin::Mutex::new(Vec::new()),
        })
    }

    /// A copy for a forked child: the same descriptions under the same numbers.
    pub fn copy(&self) -> Arc<Self> {
        Arc::new(Self {
            slots: spin::Mutex::new(self.slots.lock().clone()),
        })
    }

    pub fn get(&self, fd: u64) -> Result<Arc<File>, Errno> {
        let slots = self.slots.lock();
        usize::try_from(fd)
            .ok()
            .and_then(|fd| slots.get(fd))
            .and_then(Option::as_ref)
            .map(|slot| slot.file.clone())
            .ok_or(EBADF)
    }

    /// The descriptors in use, in increasing order.
    pub fn open_fds(&self) -> Vec<u64> {
        let slots = self.slots.lock();
        (0..slots.len() as u64)
            .filter(|&fd| slots[fd as usize].is_some())
            .collect()
    }

    /// Installs `file` under the lowest free number at or above `lowest` (`EMFILE` past
    /// [`MAX_FDS`]).
    pub fn install(
        &self,
        file: Arc<File>,
        close_on_exec: bool,
        lowest: usize,
    ) -> Result<u64, Errno> {
        let mut slots = self.slots.lock();
        let fd = (lowest..MAX_FDS)
            .find(|&fd| slots.get(fd).is_none_or(Option::is_none))
            .ok_or(EMFILE)?;
        if slots.len() <= fd {
            slots.resize(fd + 1, None);
        }
        slots[fd] = Some(Slot {
            file,
            close_on_exec,
        });
        Ok(fd as u64)
    }

    /// Installs `file` as `fd` (`dup2`, `dup3`); returns what `fd` held, for the caller to drop
    /// (outside the lock). `EBADF` for a number past the limit.
    pub fn install_at(
        &self,
        fd: u64,
        file: Arc<File>,
        close_on_exec: bool,
    ) -> Result<Option<Arc<File>>, Errno> {
        let fd = usize::try_from(fd)
            .ok()
            .filter(|&fd| fd < MAX_FDS)
            .ok_or(EBADF)?;
        let mut slots = self.slots.lock();
        if slots.len() <= fd {
            slots.resize(fd + 1, None);
        }
        let old = slots[fd].replace(Slot {
            file,
            close_on_exec,
        });
        Ok(old.map(|slot| slot.file))
    }

    /// Takes `fd` out of the table; the caller drops the description.
    pub fn remove(&self, fd: u64) -> Result<Arc<File>, Errno> {
        let mut slots = self.slots.lock();
        usize::try_from(fd)
            .ok()
            .and_then(|fd| slots.get_mut(fd))
            .and_then(Option::take)
            .map(|slot| slot.file)
            .ok_or(EBADF)
    }

    /// Takes every descriptor in `first..=last` out (`close_range`), or only marks them
    /// close-on-exec when `mark_only`; returns what was taken, for the caller to drop.
    pub fn remove_range(&self, first: u64, last: u64, mark_only: bool) -> Vec<Arc<File>> {
        let mut slots = self.slots.lock();
        let end = usize::try_from(last.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(slots.len());
        let start = usize::try_from(first).unwrap_or(usize::MAX).min(end);
        let mut taken = Vec::new();
        for slot in &mut slots[start..end] {
            if mark_only {
                if let Some(slot) = slot {
                    slot.close_on_exec = true;
                }
            } else if let Some(slot) = slot.take() {
                taken.push(slot.file);
            }
        }
        taken
    }

    /// Takes out every close-on-exec descriptor (`execve`); the caller drops them.
    pub fn remove_close_on_exec(&self) -> Vec<Arc<File>> {
        let mut slots = self.slots.lock();
        slots
            .iter_mut()
            .filter(|slot| slot.as_ref().is_some_and(|s| s.close_on_exec))
            .filter_map(|slot| slot.take().map(|s| s.file))
            .collect()
    }

    pub fn close_on_exec(&self, fd: u64) -> Result<bool, Errno> {
        let slots = self.slots.lock();
        usize::try_from(fd)
            .ok()
            .and_then(|fd| slots.get(fd))
            .and_then(Option::as_ref)
            .map(|slot| slot.close_on_exec)
            .ok_or(EBADF)
    }

    pub fn set_close_on_exec(&self, fd: u64, close_on_exec: bool) -> Result<(), Errno> {
        let mut slots = self.slots.lock();
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|fd| slots.get_mut(fd))
            .and_then(Option::as_mut)
            .ok_or(EBADF)?;
        slot.close_on_exec = close_on_exec;
        Ok(())
    }
}

/// A table with the console open for reading and writing as descriptors 0, 1 and 2 (one
/// description, as Linux's init gets from `/dev/console`): what a process the kernel starts
/// has.
pub fn console_table() -> Arc<FdTable> {
    let table = FdTable::new();
    let dentry = super::dentry::resolve(super::dentry::root(), "/dev/console", Follow::Yes)
        .unwrap_or_else(|_| Dentry::unnamed("/dev/console", super::dev::console()));
    if let Ok(console) = File::open(dentry, O_RDWR) {
        for fd in 0..3 {
            let _ = table.install_at(fd, console.clone(), false);
        }
    }
    table
}

/// Where relative paths start, and the umask.
pub struct FsContext {
    cwd: spin::Mutex<Arc<Dentry>>,
    umask: AtomicU32,
}

impl FsContext {
    /// A context at the root with umask 022 (a kernel-started process).
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            cwd: spin::Mutex::new(super::dentry::root().clone()),
            umask: AtomicU32::new(0o022),
        })
    }

    /// A copy for a child made without `CLONE_FS`.
    pub fn copy(&self) -> Arc<Self> {
        Arc::new(Self {
            cwd: spin::Mutex::new(self.cwd()),
            umask: AtomicU32::new(self.umask()),
        })
    }

    pub fn cwd(&self) -> Arc<Dentry> {
        self.cwd.lock().clone()
    }

    pub fn set_cwd(&self, dentry: Arc<Dentry>) {
        let old = core::mem::replace(&mut *self.cwd.lock(), dentry);
        drop(old);
    }

    pub fn umask(&self) -> u32 {
        self.umask.load(Ordering::Relaxed)
    }

    /// Sets the umask; returns the old one.
    pub fn swap_umask(&self, umask: u32) -> u32 {
        self.umask.swap(umask & 0o777, Ordering::Relaxed)
    }
}
