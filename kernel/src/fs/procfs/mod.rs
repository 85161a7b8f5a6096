//! `/proc`: the processes and the system as Linux shows them, made when read.
//!
//! The root holds fixed files ([`system`]: memory, CPUs, uptime, counters, versions, mounts,
//! `sys/kernel`), the links `self` and `thread-self`, and one directory per process, `PID/`
//! ([`process`]: status, memory, arguments, descriptors, threads; `task/TID/` holds the same
//! for each thread). A process's directory and its entries are only a pid (and a thread id)
//! and a name: each use finds the process in the registry again, so a directory outlives its
//! process harmlessly (`ENOENT` from then on), and none of these directories lets the dentry
//! cache keep its children ([`Inode::caches_children`]). A file's text is made when it is
//! opened and read from that snapshot ([`super::generated`]).
//!
//! Inode numbers are fixed by what a node is: a process's directory is always the same inode,
//! however it was reached (`/proc/self`, `/proc/PID`).
//!
//! Locks: none of its own. Making a text takes the locks of what it reads (the process
//! registry, a process's thread list, descriptor table and signal state, `mmap_lock` for
//! reading) one at a time, never two together.

mod process;
mod system;

#[cfg(feature = "ktest")]
mod ktests;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::dentry::{self, Dentry};
use super::file::File;
use super::generated;
use super::{DirEntry, FileKind, FsKind, Inode, Stat, allocate_inode_number};
use crate::proc::Process;
use crate::sched::Task;
use crate::syscall::errno::{EINVAL, EISDIR, ENOENT, ENOTDIR, Errno};

/// A new `/proc`: the root directory of one instance.
pub fn new_root() -> Arc<dyn Inode> {
    Arc::new(ProcRoot {
        ino: allocate_inode_number(),
        fixed: system::entries(),
    })
}

/// What `stat` says of a directory of `/proc`.
fn directory_stat(ino: u64, mode: u32) -> Stat {
    let boot = crate::time::realtime_offset_ns();
    Stat {
        dev: FsKind::Proc.device(),
        ino,
        mode: FileKind::Directory.mode_bits() | mode,
        nlink: 2,
        blksize: 1024,
        mtime_ns: boot,
        ctime_ns: boot,
        ..Stat::default()
    }
}

/// What `stat` says of a link of `/proc`.
fn link_stat(ino: u64, mode: u32) -> Stat {
    Stat {
        mode: FileKind::Symlink.mode_bits() | mode,
        nlink: 1,
        ..directory_stat(ino, 0)
    }
}

/// The number a name of `/proc` or `task/` spells: digits only, no leading zero (`01` names
/// nothing, as on Linux).
fn parse_id(name: &str) -> Option<u32> {
    if name.len() > 1 && name.starts_with('0') || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The directory entry of `inode` called `name`.
fn dir_entry(name: String, inode: &dyn Inode) -> DirEntry {
    DirEntry {
        name,
        ino: inode.stat().ino,
        kind: inode.kind(),
    }
}

/// `/proc` itself.
struct ProcRoot {
    ino: u64,
    /// The entries that are not processes, in listing order.
    fixed: Vec<(&'static str, Arc<dyn Inode>)>,
}

impl Inode for ProcRoot {
    fn kind(&self) -> FileKind {
        FileKind::Directory
    }

    fn stat(&self) -> Stat {
        directory_stat(self.ino, 0o555)
    }

    fn fs(&self) -> FsKind {
        FsKind::Proc
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn caches_children(&self) -> bool {
        false
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        if let Some((_, inode)) = self.fixed.iter().find(|(entry, _)| *entry == name) {
            return Ok(inode.clone());
        }
        let id = parse_id(name).ok_or(ENOENT)?;
        let process = crate::proc::find(id).ok_or(ENOENT)?;
        // A thread's id names its directory too (unlisted, as on Linux).
        let tid = (process.pid != id).then_some(id);
        Ok(Arc::new(ProcessNode {
            pid: process.pid,
            tid,
            entry: Entry::Dir,
        }))
    }

    fn entries(&self, from: usize) -> Result<Vec<DirEntry>, Errno> {
        let mut pids: Vec<u32> = crate::proc::live_processes()
            .iter()
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        let fixed = self
            .fixed
            .iter()
            .map(|(name, inode)| dir_entry(name.to_string(), inode.as_ref()));
        let processes = pids.into_iter().map(|pid| {
            let node = ProcessNode {
                pid,
                tid: None,
                entry: Entry::Dir,
            };
            dir_entry(format!("{pid}"), &node)
        });
        Ok(fixed.chain(processes).skip(from).collect())
    }
}

/// Where a link of the root leads.
#[derive(Clone, Copy)]
enum LinkTarget {
    /// `self`: the caller's process directory.
    OwnProcess,
    /// `thread-self`: the caller's thread directory.
    OwnThread,
    /// A fixed path (`mounts` → `self/mounts`).
    Path(&'static str),
}

/// A link of the root.
struct ProcLink {
    ino: u64,
    target: LinkTarget,
}

impl ProcLink {
    fn new(target: LinkTarget) -> Arc<Self> {
        Arc::new(Self {
            ino: allocate_inode_number(),
            target,
        })
    }
}

impl Inode for ProcLink {
    fn kind(&self) -> FileKind {
        FileKind::Symlink
    }

    fn stat(&self) -> Stat {
        link_stat(self.ino, 0o777)
    }

    fn fs(&self) -> FsKind {
        FsKind::Proc
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// `ENOENT` for `self` and `thread-self` from a kernel thread (no process).
    fn readlink(&self) -> Result<String, Errno> {
        let task = crate::sched::current();
        let pid = task.process().map(|p| p.pid).ok_or(ENOENT);
        match self.target {
            LinkTarget::OwnProcess => Ok(format!("{}", pid?)),
            LinkTarget::OwnThread => Ok(format!("{}/task/{}", pid?, task.tid)),
            LinkTarget::Path(path) => Ok(path.to_string()),
        }
    }
}

/// An entry of a process's (or thread's) directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// The directory itself.
    Dir,
    Cmdline,
    Comm,
    Cwd,
    Environ,
    Exe,
    FdDir,
    /// `fd/N`.
    Fd(u32),
    Maps,
    MountInfo,
    Mounts,
    Root,
    Stat,
    Statm,
    Status,
    TaskDir,
}

/// The names in a process's directory (a thread's has all but the last, `task`).
const ENTRIES: [(&str, Entry); 14] = [
    ("cmdline", Entry::Cmdline),
    ("comm", Entry::Comm),
    ("cwd", Entry::Cwd),
    ("environ", Entry::Environ),
    ("exe", Entry::Exe),
    ("fd", Entry::FdDir),
    ("maps", Entry::Maps),
    ("mountinfo", Entry::MountInfo),
    ("mounts", Entry::Mounts),
    ("root", Entry::Root),
    ("stat", Entry::Stat),
    ("statm", Entry::Statm),
    ("status", Entry::Status),
    ("task", Entry::TaskDir),
];

/// A process's directory or one of its entries; with `tid`, a thread's (`task/TID/`).
#[derive(Clone, Copy, Debug)]
struct ProcessNode {
    pid: u32,
    tid: Option<u32>,
    entry: Entry,
}

impl ProcessNode {
    /// The process, while it is in the registry (a zombie too).
    fn process(&self) -> Result<Arc<Process>, Errno> {
        crate::proc::find(self.pid)
            .filter(|p| p.pid == self.pid)
            .ok_or(ENOENT)
    }

    /// The thread the entry speaks of: the directory's thread, or the process's leader
    /// (`None` once every thread has exited). `ENOENT` when a thread's directory outlived it.
    fn thread(&self, process: &Process) -> Result<Option<Arc<Task>>, Errno> {
        match self.tid {
            Some(tid) => Ok(Some(
                process
                    .threads()
                    .into_iter()
                    .find(|t| t.tid == tid)
                    .ok_or(ENOENT)?,
            )),
            None => Ok(process.leader()),
        }
    }

    /// The process, its thread checked too for a thread's directory.
    fn live(&self) -> Result<Arc<Process>, Errno> {
        let process = self.process()?;
        self.thread(&process)?;
        Ok(process)
    }

    fn with_entry(&self, entry: Entry) -> Self {
        Self { entry, ..*self }
    }

    /// The names this directory lists.
    fn entry_names(&self) -> &'static [(&'static str, Entry)] {
        match self.tid {
            Some(_) => &ENTRIES[..ENTRIES.len() - 1],
            None => &ENTRIES,
        }
    }

    /// The open description behind `fd/N` (`ENOENT` once it is closed).
    fn open_file(&self, fd: u32) -> Result<Arc<File>, Errno> {
        self.live()?.files().get(u64::from(fd)).map_err(|_| ENOENT)
    }

    /// Where a magic link leads (`exe`, `cwd`, `root`, `fd/N`); `ENOENT` for an ended process.
    fn link_dentry(&self) -> Result<Arc<Dentry>, Errno> {
        let process = self.live()?;
        if process.is_zombie() {
            return Err(ENOENT);
        }
        match self.entry {
            Entry::Exe => process.invocation().executable.ok_or(ENOENT),
            Entry::Cwd => Ok(process.fs_context().cwd()),
            Entry::Root => Ok(dentry::root().clone()),
            Entry::Fd(fd) => Ok(self.open_file(fd)?.dentry().clone()),
            _ => Err(EINVAL),
        }
    }
}

impl Inode for ProcessNode {
    fn kind(&self) -> FileKind {
        match self.entry {
            Entry::Dir | Entry::FdDir | Entry::TaskDir => FileKind::Directory,
            Entry::Cwd | Entry::Exe | Entry::Root | Entry::Fd(_) => FileKind::Symlink,
            _ => FileKind::Regular,
        }
    }

    /// Numbers: the process's (or thread's) id in the high half, whether this is a thread's
    /// directory in bit 31, the entry below (`fd/N` from 0x10000 on).
    fn stat(&self) -> Stat {
        let id = u64::from(self.tid.unwrap_or(self.pid));
        let entry = match self.entry {
            Entry::Dir => 0,
            Entry::Fd(fd) => 0x1_0000 + u64::from(fd),
            entry => ENTRIES
                .iter()
                .position(|(_, e)| *e == entry)
                .map_or(0, |i| i as u64 + 1),
        };
        let ino = id << 32 | u64::from(self.tid.is_some()) << 31 | entry;
        match self.entry {
            Entry::Dir | Entry::TaskDir => directory_stat(ino, 0o555),
            Entry::FdDir => directory_stat(ino, 0o500),
            Entry::Fd(fd) => {
                // As Linux: the owner's read and write bits say how the file is open.
                let (read, write) = self
                    .open_file(fd)
                    .map_or((false, false), |f| (f.readable(), f.writable()));
                let mode = if read { 0o500 } else { 0 } | if write { 0o300 } else { 0 };
                link_stat(ino, mode)
            }
            Entry::Cwd | Entry::Exe | Entry::Root => link_stat(ino, 0o777),
            Entry::Environ => generated::file_stat(FsKind::Proc, ino, 0o400),
            _ => generated::file_stat(FsKind::Proc, ino, 0o444),
        }
    }

    fn fs(&self) -> FsKind {
        FsKind::Proc
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn caches_children(&self) -> bool {
        false
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        let process = self.live()?;
        let found = match self.entry {
            Entry::Dir => {
                let (_, entry) = self
                    .entry_names()
                    .iter()
                    .find(|(entry, _)| *entry == name)
                    .ok_or(ENOENT)?;
                self.with_entry(*entry)
            }
            Entry::TaskDir => {
                let tid = parse_id(name).ok_or(ENOENT)?;
                if !process.threads().iter().any(|t| t.tid == tid) {
                    return Err(ENOENT);
                }
                Self {
                    pid: self.pid,
                    tid: Some(tid),
                    entry: Entry::Dir,
                }
            }
            Entry::FdDir => {
                let fd = parse_id(name).ok_or(ENOENT)?;
                self.open_file(fd)?;
                self.with_entry(Entry::Fd(fd))
            }
            _ => return Err(ENOTDIR),
        };
        Ok(Arc::new(found))
    }

    fn entries(&self, from: usize) -> Result<Vec<DirEntry>, Errno> {
        let process = self.live()?;
        let entries: Vec<DirEntry> = match self.entry {
            Entry::Dir => self
                .entry_names()
                .iter()
                .map(|(name, entry)| dir_entry(name.to_string(), &self.with_entry(*entry)))
                .collect(),
            Entry::TaskDir => {
                let mut tids: Vec<u32> = process.threads().iter().map(|t| t.tid).collect();
                tids.sort_unstable();
                tids.into_iter()
                    .map(|tid| {
                        let thread = Self {
                            pid: self.pid,
                            tid: Some(tid),
                            entry: Entry::Dir,
                        };
                        dir_entry(format!("{tid}"), &thread)
                    })
                    .collect()
            }
            Entry::FdDir => process
                .files()
                .open_fds()
                .into_iter()
                .map(|fd| {
                    let link = self.with_entry(Entry::Fd(fd as u32));
                    dir_entry(format!("{fd}"), &link)
                })
                .collect(),
            _ => return Err(ENOTDIR),
        };
        Ok(entries.into_iter().skip(from).collect())
    }

    fn readlink(&self) -> Result<String, Errno> {
        match self.entry {
            Entry::Root => Ok("/".to_string()),
            Entry::Cwd | Entry::Exe | Entry::Fd(_) => Ok(self.link_dentry()?.path()),
            _ => Err(EINVAL),
        }
    }

    fn magic_link(&self) -> Option<Result<Arc<Dentry>, Errno>> {
        (self.kind() == FileKind::Symlink).then(|| self.link_dentry())
    }

    fn open(&self, file: &File) -> Result<(), Errno> {
        if self.kind() != FileKind::Regular {
            return Ok(());
        }
        let process = self.process()?;
        let thread = self.thread(&process)?;
        let subject = process::Subject {
            id: self.tid.unwrap_or(self.pid),
            process,
            thread,
        };
        let text = match self.entry {
            Entry::Cmdline => subject.process.invocation().arguments.to_vec(),
            Entry::Environ => subject.process.invocation().environment.to_vec(),
            Entry::Comm => format!("{}\n", subject.comm()).into_bytes(),
            Entry::Maps => subject.maps(),
            Entry::MountInfo => system::mountinfo().into_bytes(),
            Entry::Mounts => system::mounts().into_bytes(),
            Entry::Stat => subject.stat().into_bytes(),
            Entry::Statm => subject.statm().into_bytes(),
            Entry::Status => subject.status().into_bytes(),
            _ => return Err(EINVAL),
        };
        generated::keep(file, text);
        Ok(())
    }

    fn read_at(&self, file: &File, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.kind() != FileKind::Regular {
            return Err(EISDIR);
        }
        generated::read(file, offset, buf)
    }

    /// As on Linux, root may open these files for writing, but they take no write.
    fn write_at(&self, _file: &File, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        if self.kind() != FileKind::Regular {
            return Err(EISDIR);
        }
        Err(EINVAL)
    }
}
