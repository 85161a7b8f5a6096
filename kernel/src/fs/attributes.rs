//! The attributes `chmod`, `chown` and `utimensat` change (permission bits, owner, group,
//! modification and status-change times), kept the same way by every file system that stores
//! them: tmpfs inodes, pipes, and the one anonymous inode of eventfds.
//!
//! Each attribute is an atomic of its own, read and written with relaxed ordering: a `stat`
//! racing a change may see some attributes old and others new, as Linux's lockless `stat` may.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{FileKind, Stat, now_ns};

pub struct Attributes {
    /// Permission bits (07777).
    mode: AtomicU32,
    uid: AtomicU32,
    gid: AtomicU32,
    mtime_ns: AtomicU64,
    ctime_ns: AtomicU64,
}

impl Attributes {
    /// Owned by root, with permission bits `mode` and both times `time_ns`.
    pub const fn new(mode: u32, time_ns: u64) -> Self {
        Self {
            mode: AtomicU32::new(mode & 0o7777),
            uid: AtomicU32::new(0),
            gid: AtomicU32::new(0),
            mtime_ns: AtomicU64::new(time_ns),
            ctime_ns: AtomicU64::new(time_ns),
        }
    }

    /// `stat`'s mode (the type bits of `kind` with the permission bits), owner and times
    /// written into `stat`.
    pub fn fill(&self, kind: FileKind, stat: &mut Stat) {
        stat.mode = kind.mode_bits() | self.mode.load(Ordering::Relaxed);
        stat.uid = self.uid.load(Ordering::Relaxed);
        stat.gid = self.gid.load(Ordering::Relaxed);
        stat.mtime_ns = self.mtime_ns.load(Ordering::Relaxed);
        stat.ctime_ns = self.ctime_ns.load(Ordering::Relaxed);
    }

    pub fn set_mode(&self, mode: u32) {
        self.mode.store(mode & 0o7777, Ordering::Relaxed);
        self.touch_status();
    }

    /// As Linux's `chown` by root: the owner and group become `uid` and `gid` where given, and
    /// a file that is not a directory loses its set-user-ID bit, and its set-group-ID bit
    /// where group execution is allowed.
    pub fn set_owner(&self, kind: FileKind, uid: Option<u32>, gid: Option<u32>) {
        if let Some(uid) = uid {
            self.uid.store(uid, Ordering::Relaxed);
        }
        if let Some(gid) = gid {
            self.gid.store(gid, Ordering::Relaxed);
        }
        if kind != FileKind::Directory {
            const SET_UID: u32 = 0o4000;
            const SET_GID: u32 = 0o2000;
            const SET_GID_WITH_GROUP_EXEC: u32 = SET_GID | 0o010;
            let mode = self.mode.load(Ordering::Relaxed);
            let mut cleared = mode & !SET_UID;
            if mode & SET_GID_WITH_GROUP_EXEC == SET_GID_WITH_GROUP_EXEC {
                cleared &= !SET_GID;
            }
            self.mode.store(cleared, Ordering::Relaxed);
        }
        self.touch_status();
    }

    /// `utimensat`: the modification time becomes `mtime_ns`.
    pub fn set_mtime(&self, mtime_ns: u64) {
        self.mtime_ns.store(mtime_ns, Ordering::Relaxed);
        self.touch_status();
    }

    /// A write: both times become now.
    pub fn touch_contents(&self) {
        let now = now_ns();
        self.mtime_ns.store(now, Ordering::Relaxed);
        self.ctime_ns.store(now, Ordering::Relaxed);
    }

    /// A change of the attributes or of the names of the file: its status-change time becomes
    /// now.
    pub fn touch_status(&self) {
        self.ctime_ns.store(now_ns(), Ordering::Relaxed);
    }
}
