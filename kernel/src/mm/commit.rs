//! Commit accounting: how much memory the address spaces have been promised, and whether a
//! new promise is kept (Linux's `vm.overcommit_memory` and `__vm_enough_memory`).
//!
//! Every VMA with `VM_ACCOUNT` (private writable memory and shared anonymous memory, unless
//! mapped with `MAP_NORESERVE`) is charged its size when it is made and uncharged when it
//! goes; edits charge the difference between the pieces they publish and the VMAs they
//! replace (`MmWriteGuard::edit`), fork charges the copies. The mode, chosen at boot with
//! `overcommit=`, decides what is refused:
//! - `heuristic` (Linux's mode 0, the default): one charge larger than all of memory (there is
//!   no swap) is refused, everything else is promised;
//! - `always` (mode 1): nothing is refused;
//! - `never` (mode 2): the sum of all charges may not pass the commit limit, half of memory
//!   (Linux's `overcommit_ratio` of 50, without the reserve it keeps for a user's recovery).
//!
//! The count is one atomic; a charge that would pass the limit is taken back at once, so
//! concurrent charges can only be refused too eagerly, never let past the limit.

use core::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use crate::syscall::errno::{ENOMEM, Errno};

/// `vm.overcommit_memory`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Heuristic = 0,
    Always = 1,
    Never = 2,
}

impl Mode {
    /// The mode the boot option `overcommit=` names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "heuristic" => Some(Self::Heuristic),
            "always" => Some(Self::Always),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(Mode::Heuristic as u8);
/// Pages charged (Linux's `vm_committed_as`).
static COMMITTED: AtomicI64 = AtomicI64::new(0);

/// Sets the mode (at boot).
pub fn set_mode(mode: Mode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Always,
        2 => Mode::Never,
        _ => Mode::Heuristic,
    }
}

/// All of memory, in pages (Linux's `totalram_pages() + total_swap_pages`, with no swap).
fn total_pages() -> i64 {
    super::frame::stats().total_frames as i64
}

/// The most that may be charged in the strict mode (Linux's `vm_commit_limit`), in pages.
pub fn commit_limit() -> i64 {
    total_pages() / 2
}

/// Pages charged now.
pub fn committed() -> i64 {
    COMMITTED.load(Ordering::Relaxed).max(0)
}

/// Charges `pages` more, or refuses them with `ENOMEM` as the mode says (then nothing is
/// charged).
pub fn charge(pages: u64) -> Result<(), Errno> {
    let pages = i64::try_from(pages).map_err(|_| ENOMEM)?;
    let total = COMMITTED.fetch_add(pages, Ordering::Relaxed) + pages;
    let refused = match mode() {
        Mode::Always => false,
        Mode::Heuristic => pages > total_pages(),
        Mode::Never => total > commit_limit(),
    };
    if refused {
        COMMITTED.fetch_sub(pages, Ordering::Relaxed);
        return Err(ENOMEM);
    }
    Ok(())
}

/// Gives back `pages` charged earlier.
pub fn uncharge(pages: u64) {
    COMMITTED.fetch_sub(pages as i64, Ordering::Relaxed);
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::{Mode, commit_limit, committed, mode, set_mode};
    use crate::ktest;
    use crate::mm::mmap::{
        self, MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
    };
    use crate::mm::torture::address_space;
    use crate::syscall::errno::ENOMEM;

    const PAGE: u64 = 4096;
    const RW: u64 = PROT_READ | PROT_WRITE;
    const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

    ktest! {
        /// `overcommit=never`: charges may not pass the commit limit, `MAP_NORESERVE` does
        /// not help, read-only memory is not charged until it becomes writable, and munmap
        /// gives a charge back. (The margin keeps other processes' charges meanwhile out of
        /// the way.)
        fn strict_mode_refuses_past_the_commit_limit() {
            let space = address_space("commit-never");
            let mm = &space.mm;
            let previous = mode();
            set_mode(Mode::Never);
            let room = (commit_limit() - committed()).max(0) as u64;
            let too_much = (room + 1024) * PAGE;
            let refused = mmap::mmap(mm, 0, too_much, RW, ANON, u64::MAX, 0);
            let unreserved = mmap::mmap(mm, 0, too_much, RW, ANON | MAP_NORESERVE, u64::MAX, 0);
            let shared = mmap::mmap(mm, 0, too_much, RW, MAP_SHARED | MAP_ANONYMOUS, u64::MAX, 0);
            let read_only = mmap::mmap(mm, 0, too_much, PROT_READ, ANON, u64::MAX, 0);
            let made_writable = read_only.map(|addr| mmap::mprotect(mm, addr, too_much, RW));
            let before = committed();
            let fits = mmap::mmap(mm, 0, 16 * PAGE, RW, ANON, u64::MAX, 0);
            let charged = committed() - before;
            set_mode(previous);
            assert_eq!(refused, Err(ENOMEM), "a private writable mapping past the limit");
            assert_eq!(unreserved, Err(ENOMEM), "MAP_NORESERVE in the strict mode");
            assert_eq!(shared, Err(ENOMEM), "shared anonymous memory past the limit");
            assert_eq!(made_writable, Ok(Err(ENOMEM)), "mprotect past the limit");
            let fits = fits.expect("16 pages fit");
            assert!(charged >= 16, "16 pages charged {charged}");
            let before = committed();
            mmap::munmap(mm, fits, 16 * PAGE).expect("munmap");
            assert!(committed() <= before - 16, "munmap gave the charge back");
            space.mm.teardown();
        }
    }
}
