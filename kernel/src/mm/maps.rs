//! The address-space half of `/proc/PID/maps`: an address space's VMAs in address order, read
//! without `mmap_lock` (Linux 6.17's design), and the lines Linux makes of them.
//!
//! This module owns no state (but the break switch of test images); what protects what:
//!
//! - The walk ([`LocklessMaps`]) holds nothing between its steps. A step runs in one RCU read
//!   section: it looks up the first VMA ending above the previous line's end in the tree (read
//!   under RCU), takes a reference on it with the VMA's own lock, revalidates it, copies its
//!   fields into a [`MapsEntry`] and drops the reference. The next step starts at the copy's
//!   end. It never takes `mmap_lock`, never waits for a write session, and makes writers wait
//!   only as a fault does (a writer that write-locks or detaches the VMA waits for the
//!   reference to go, a few hundred instructions).
//! - The reference is a read lock (`vmalock::vma_start_read`, the fault path's lock), refused
//!   while the VMA is write-locked; after [`READ_LOCK_ATTEMPTS`] failed attempts the step pins
//!   the VMA instead (`vmalock::vma_pin`), which a write lock does not refuse. Either keeps the
//!   VMA in its current life (attached, so not freed or reused) while its fields are copied,
//!   and in this kernel an attached VMA's fields never change (every edit replaces VMAs by
//!   fresh ones: docs/LOCKING.md), so both copies are exact.
//! - Revalidation: the reference is refused for a detached VMA and for one of another address
//!   space (a VMA freed and reused since the lookup); then the tree, looked up again as it is
//!   now, must name the same VMA as the first ending above the previous end. That second lookup
//!   is what catches a VMA that was reused elsewhere in this same address space, or a VMA that
//!   appeared in between. A step whose reference is refused or whose VMA fails the second
//!   lookup is tried again from a fresh lookup, yielding the CPU in between.
//!
//! What a reader gets: lines in strictly increasing order that never overlap; each line shows
//! a VMA that was this address space's, attached, and the first above the previous line's end
//! at one moment of its step; a VMA that stays in place during the whole walk is shown exactly;
//! an address mapped during the whole walk is covered by a line. Not one instant for the whole
//! file (nor does Linux give one). A VMA that starts below the previous line's end has grown
//! over it since that line was read (a merge): only its part from there on is shown, so that
//! lines never overlap (Linux shows it whole).
//!
//! Progress against a storm of writers: the read lock fails whenever the VMA is write-locked,
//! which lasts a whole write session (page-table changes, shootdowns, frees), and writers that
//! follow one another can keep the same VMA locked session after session; hence the pin after a
//! few refusals, and never a wait for `mmap_lock` (Linux 6.17 takes `mmap_lock` there; here a
//! reader must never wait for the storm). A pin is refused only while the VMA is detached (the
//! tree was republished at that place after the lookup) or while a writer that is write-locking
//! or detaching it excludes readers, which ends as soon as that writer runs again (it waits only
//! for the references taken before it; with no preemption, a woken writer may wait up to a
//! scheduler tick for its CPU); and the second lookup fails only when the tree changed at that
//! place. So a step is held back only by writers acting on that very VMA at that very moment,
//! and each failed attempt is an edit there that has completed or is completing: the walk is
//! lock-free, not wait-free. The torture test (maps/torture.rs) reports the longest step.

use alloc::string::String;
use core::fmt::Write;

use vmalock::{DelayPoint, Platform};

use super::addrspace::Mm;
use super::vma::{VM_BRK, VM_EXEC, VM_IMAGE, VM_READ, VM_SHARED, VM_STACK, VM_WRITE, Vma};
use super::vma_lock::PLATFORM;
use crate::sync::rcu::{RcuReadGuard, read_lock};

#[cfg(feature = "ktest")]
mod torture;

#[cfg(feature = "ktest")]
pub use break_switch::set_break_no_retry;

/// Read-lock attempts of one step before it pins the VMA instead.
pub const READ_LOCK_ATTEMPTS: u32 = 3;

/// One line of `/proc/PID/maps`, copied from a VMA while a reference held it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    pub start: u64,
    pub end: u64,
    /// The VMA's `VM_*` flags.
    pub flags: u32,
    /// What a file mapping maps.
    pub file: Option<MappedFile>,
}

/// The file of a file mapping, as its maps line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    /// The byte offset in the file of the VMA's first page.
    pub offset: u64,
    /// The file's device (as `stat` encodes it) and inode number.
    pub device: u64,
    pub inode: u64,
    /// Its path (" (deleted)" at the end once unlinked).
    pub path: String,
}

impl MapsEntry {
    /// A copy of `vma`'s fields; the caller keeps `vma` in its current life (`mmap_lock`, or a
    /// reference on it, which also keeps its file reference).
    pub fn of(vma: &Vma) -> Self {
        let file = vma.file().map(|mapped| {
            let file = mapped.file();
            let stat = file.inode().stat();
            MappedFile {
                offset: mapped.pgoff() * 4096,
                device: stat.dev,
                inode: stat.ino,
                path: file.dentry().path(),
            }
        });
        Self {
            start: vma.start(),
            end: vma.end(),
            flags: vma.flags(),
            file,
        }
    }
}

/// What a walk met on its way (for statistics and the torture test).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Attempts that failed and were made again.
    pub retries: u64,
    /// Steps that pinned their VMA after [`READ_LOCK_ATTEMPTS`] refused read locks.
    pub pinned_steps: u64,
    /// The most attempts one step needed.
    pub most_attempts: u32,
}

/// The VMAs of an address space in address order, read without `mmap_lock` (see the module
/// documentation). Each item may sleep (the step yields between attempts): iterate in process
/// context, outside RCU read sections and spinlocks.
pub struct LocklessMaps<'a> {
    mm: &'a Mm,
    /// Where the next step starts: the end of the last entry returned.
    from: u64,
    stats: WalkStats,
}

impl<'a> LocklessMaps<'a> {
    /// A walk over the VMAs of `mm` that end above `from`: 0 for all of them, or the end of the
    /// last line a previous read showed, to go on from there.
    pub fn new(mm: &'a Mm, from: u64) -> Self {
        Self {
            mm,
            from,
            stats: WalkStats::default(),
        }
    }

    pub fn stats(&self) -> WalkStats {
        self.stats
    }
}

impl Iterator for LocklessMaps<'_> {
    type Item = MapsEntry;

    fn next(&mut self) -> Option<MapsEntry> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reference = if attempts > READ_LOCK_ATTEMPTS {
                Reference::Pin
            } else {
                Reference::ReadLock
            };
            let found = match step(self.mm, self.from, reference) {
                Attempt::Found(entry) => Some(entry),
                Attempt::End => None,
                Attempt::Retry => {
                    self.stats.retries += 1;
                    // A writer on this CPU that holds the VMA write-locked gets to finish.
                    crate::sched::yield_now();
                    continue;
                }
            };
            self.stats.most_attempts = self.stats.most_attempts.max(attempts);
            if reference == Reference::Pin {
                self.stats.pinned_steps += 1;
            }
            if let Some(entry) = &found {
                self.from = entry.end;
            }
            return found;
        }
    }
}

/// How a step holds its VMA while it copies it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// `vma_start_read`: refused while the VMA is write-locked.
    ReadLock,
    /// `vma_pin`: taken whether or not it is.
    Pin,
}

/// How one attempt at a step ended.
enum Attempt {
    Found(MapsEntry),
    /// No VMA ends above the step's start.
    End,
    /// The VMA could not be taken, or was no longer the first above the step's start.
    Retry,
}

/// One attempt at the step from `from`: the first VMA of `mm` that ends above `from`, taken
/// with `reference`, revalidated and copied, in one RCU read section.
fn step(mm: &Mm, from: u64, reference: Reference) -> Attempt {
    let rcu = read_lock();
    let Some(vma) = mm.next_vma(from, &rcu) else {
        return Attempt::End;
    };
    // The window in which the VMA may be freed and reused (test images widen it).
    PLATFORM.delay(DelayPoint::AfterLookup);
    #[cfg(feature = "ktest")]
    if break_switch::no_retry() {
        return Attempt::Found(clipped(MapsEntry::of(vma), from));
    }
    let identity = mm.identity();
    match reference {
        Reference::ReadLock => match vmalock::vma_start_read(vma, identity, &PLATFORM) {
            Ok(locked) => copy_if_still_next(mm, from, &locked, &rcu),
            Err(_) => Attempt::Retry,
        },
        Reference::Pin => match vmalock::vma_pin(vma, identity, &PLATFORM) {
            Ok(pinned) => copy_if_still_next(mm, from, &pinned, &rcu),
            Err(_) => Attempt::Retry,
        },
    }
}

/// Copies `vma` (held by a reference, so attached and of `mm`) if the tree as it is now still
/// names it as the first VMA ending above `from`: then it is in the tree (not reused elsewhere
/// or about to be published) and nothing lies between `from` and its start.
fn copy_if_still_next(mm: &Mm, from: u64, vma: &Vma, rcu: &RcuReadGuard) -> Attempt {
    match mm.next_vma(from, rcu) {
        Some(now) if core::ptr::eq(now, vma) => Attempt::Found(clipped(MapsEntry::of(vma), from)),
        _ => Attempt::Retry,
    }
}

/// `entry` without what lies below `from` (a VMA that grew over the previous line).
fn clipped(entry: MapsEntry, from: u64) -> MapsEntry {
    MapsEntry {
        start: entry.start.max(from),
        ..entry
    }
}

/// The reference walk: every VMA of the address space whose `mmap_lock` `locked` holds, in
/// one consistent view (test images: the torture test compares the lockless walk with it).
#[cfg(feature = "ktest")]
pub fn entries_locked(locked: &super::addrspace::MmapLocked) -> alloc::vec::Vec<MapsEntry> {
    locked
        .vmas_in(0..crate::arch::syscall::USER_END)
        .into_iter()
        .map(MapsEntry::of)
        .collect()
}

/// How wide Linux pads a line's fields before a name (`25 + 6 * sizeof(void *) - 1`
/// characters); one space follows, so names start in column 73.
const FIELDS_WIDTH: usize = 25 + 6 * size_of::<usize>() - 1;

/// Appends `entry` to `out` as Linux writes a line of `/proc/PID/maps`:
/// `start-end perms offset major:minor inode`, each field followed by one space, then, for a
/// named mapping, padding to a fixed column and the name. Addresses are at least 8 hex digits;
/// perms are `r`, `w`, `x` and `s` (shared) or `p` (private). Names: `[heap]` (the `brk`
/// area), `[stack]`, and `image_path` for the VMAs mapped from the executable when the caller
/// knows it. No VMA is backed by a file yet: the offset, device and inode are 0 until file
/// mappings add them to [`MapsEntry`].
pub fn write_maps_line(out: &mut String, entry: &MapsEntry, image_path: Option<&str>) {
    let line_start = out.len();
    let perm = |bit: u32, set: char| if entry.flags & bit != 0 { set } else { '-' };
    let sharing = if entry.flags & VM_SHARED != 0 {
        's'
    } else {
        'p'
    };
    let (offset, device, inode) = entry
        .file
        .as_ref()
        .map_or((0, 0, 0), |f| (f.offset, f.device, f.inode));
    // Linux's `MAJOR:MINOR` of the device, in hex.
    let (major, minor) = (
        (device >> 8) & 0xfff,
        (device & 0xff) | ((device >> 12) & 0xfff00),
    );
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        "{:08x}-{:08x} {}{}{}{sharing} {offset:08x} {major:02x}:{minor:02x} {inode} ",
        entry.start,
        entry.end,
        perm(VM_READ, 'r'),
        perm(VM_WRITE, 'w'),
        perm(VM_EXEC, 'x'),
    );
    let name = if let Some(file) = &entry.file {
        Some(file.path.as_str())
    } else if entry.flags & VM_STACK != 0 {
        Some("[stack]")
    } else if entry.flags & VM_BRK != 0 {
        Some("[heap]")
    } else if entry.flags & VM_IMAGE != 0 {
        image_path
    } else {
        None
    };
    if let Some(name) = name {
        let padding = FIELDS_WIDTH.saturating_sub(out.len() - line_start);
        out.extend(core::iter::repeat_n(' ', padding + 1));
        out.push_str(name);
    }
    out.push('\n');
}

/// The deliberate bug that shows the torture test catches a reader that neither locks nor
/// revalidates (test images only; `maps.break=no_retry`).
#[cfg(feature = "ktest")]
mod break_switch {
    use core::sync::atomic::{AtomicBool, Ordering};

    static NO_RETRY: AtomicBool = AtomicBool::new(false);

    /// Makes the lockless walk take the VMA its lookup found as it is, without a reference and
    /// without the second lookup (`true`), or work as it should (`false`); returns the setting
    /// it replaces.
    pub fn set_break_no_retry(broken: bool) -> bool {
        NO_RETRY.swap(broken, Ordering::Relaxed)
    }

    pub(super) fn no_retry() -> bool {
        NO_RETRY.load(Ordering::Relaxed)
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::string::String;

    use super::{MappedFile, MapsEntry, write_maps_line};
    use crate::ktest;
    use crate::mm::vma::{VM_BRK, VM_EXEC, VM_IMAGE, VM_READ, VM_SHARED, VM_STACK, VM_WRITE};

    ktest! {
        /// Lines come out as Linux writes them: the heap and anonymous lines are Linux's own
        /// (from a `/proc/self/maps` of Linux 6.18), the others follow its layout (names in
        /// column 73, at least 8 hex digits per address, a space after the inode).
        fn maps_lines_are_laid_out_as_linux_lays_them_out() {
            let entry = |start, end, flags| MapsEntry {
                start,
                end,
                flags,
                file: None,
            };
            let cases = [
                (
                    entry(0x5592_738f_4000, 0x5592_7393_6000, VM_READ | VM_WRITE | VM_BRK),
                    "5592738f4000-559273936000 rw-p 00000000 00:00 0                          [heap]\n",
                ),
                (
                    entry(0x7f02_9360_b000, 0x7f02_9362_d000, VM_READ | VM_WRITE),
                    "7f029360b000-7f029362d000 rw-p 00000000 00:00 0 \n",
                ),
                (
                    entry(0x7fff_fffd_e000, 0x7fff_ffff_f000, VM_READ | VM_WRITE | VM_STACK),
                    "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n",
                ),
                (
                    entry(0x40_0000, 0x45_2000, VM_READ | VM_EXEC | VM_IMAGE),
                    "00400000-00452000 r-xp 00000000 00:00 0                                  /bin/demo\n",
                ),
                (
                    entry(0x1_0000, 0x1_1000, VM_READ | VM_SHARED),
                    "00010000-00011000 r--s 00000000 00:00 0 \n",
                ),
                (entry(0x2_0000, 0x2_2000, 0), "00020000-00022000 ---p 00000000 00:00 0 \n"),
                (
                    MapsEntry {
                        file: Some(MappedFile {
                            offset: 0x22000,
                            device: 0x801,
                            inode: 1_835_018,
                            path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                        }),
                        ..entry(0x7f02_9382_2000, 0x7f02_9399_7000, VM_READ | VM_EXEC)
                    },
                    "7f0293822000-7f0293997000 r-xp 00022000 08:01 1835018                    /usr/lib/x86_64-linux-gnu/libc.so.6\n",
                ),
            ];
            let mut out = String::new();
            for (entry, expected) in cases {
                out.clear();
                write_maps_line(&mut out, &entry, Some("/bin/demo"));
                assert_eq!(out, expected);
            }
            // An image VMA of a process whose path the caller does not know has no name.
            out.clear();
            write_maps_line(&mut out, &entry(0x40_0000, 0x45_2000, VM_READ | VM_IMAGE), None);
            assert_eq!(out, "00400000-00452000 r--p 00000000 00:00 0 \n");
            // Lines append: a buffer holds a file's worth.
            write_maps_line(&mut out, &entry(0x2_0000, 0x2_2000, 0), None);
            assert_eq!(out.lines().count(), 2);
        }
    }
}
