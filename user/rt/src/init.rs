//! What a program run as Linux's `/init` sets up for itself: Linux starts process 1 with
//! nothing mounted, so the pseudo filesystems a distribution's init would mount (proc on
//! `/proc`, sysfs, devtmpfs) are missing until the program mounts them. The project's kernel has
//! them already (or, without mount(2), nothing to mount). Stateless: the kernel's mount table
//! is the only state.

use alloc::vec::Vec;
use core::ffi::CStr;

use crate::sys::{self, Errno};

/// A pseudo filesystem to mount: its type (also the mount's source), where, and its flags.
#[derive(Clone, Copy, Debug)]
pub struct PseudoFs {
    pub fstype: &'static CStr,
    pub target: &'static CStr,
    pub flags: usize,
}

/// proc on `/proc`.
pub const PROC: PseudoFs = PseudoFs {
    fstype: c"proc",
    target: c"/proc",
    flags: sys::MS_NOSUID | sys::MS_NODEV | sys::MS_NOEXEC,
};
/// sysfs on `/sys`.
pub const SYSFS: PseudoFs = PseudoFs {
    fstype: c"sysfs",
    target: c"/sys",
    flags: sys::MS_NOSUID | sys::MS_NODEV | sys::MS_NOEXEC,
};
/// devtmpfs on `/dev`.
pub const DEVTMPFS: PseudoFs = PseudoFs {
    fstype: c"devtmpfs",
    target: c"/dev",
    flags: sys::MS_NOSUID,
};

/// As process 1 before anything mounted proc (`/proc/self` missing), mounts each of
/// `filesystems`, creating its directory when missing; otherwise does nothing. A kernel without
/// mount(2) (ENOSYS) passes silently. Returns the mounts that failed, with why.
pub fn mount_pseudo_filesystems(filesystems: &[PseudoFs]) -> Vec<(PseudoFs, Errno)> {
    let mut failed = Vec::new();
    if sys::getpid() != 1 || exists(c"/proc/self") {
        return failed;
    }
    for &fs in filesystems {
        let mut result = mount(fs);
        if result == Err(Errno::ENOENT) {
            result = sys::mkdir(fs.target.as_ptr() as usize, 0o755).and_then(|_| mount(fs));
        }
        match result {
            Ok(_) | Err(Errno::ENOSYS) => {}
            Err(e) => failed.push((fs, e)),
        }
    }
    failed
}

fn mount(fs: PseudoFs) -> sys::SysResult {
    let fstype = fs.fstype.as_ptr() as usize;
    sys::mount(fstype, fs.target.as_ptr() as usize, fstype, fs.flags, 0)
}

fn exists(path: &CStr) -> bool {
    let mut st = sys::Stat::default();
    sys::newfstatat(
        sys::AT_FDCWD,
        path.as_ptr() as usize,
        &raw mut st as usize,
        0,
    )
    .is_ok()
}
