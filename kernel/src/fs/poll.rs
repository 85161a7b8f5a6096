//! Readiness: the events `poll`, `ppoll`, `select` and `pselect6` wait for ([`Inode::poll`]
//! answers them for a file), and the one queue every waiter sleeps on.
//!
//! A file whose readiness changes (a pipe that got data or lost its last writer, an eventfd
//! that was written or read) calls [`readiness_changed`] after the change; that wakes every
//! sleeping poller, and each one asks its own files again and sleeps again if none is ready
//! ([`wait`]).
//!
//! The trade-off: one change wakes every poller of the machine, not only those watching that
//! file (each woken poller pays a scan of its files), in exchange for nothing to register with
//! each file and to undo after the wait. While nobody polls, a change costs one atomic load (the
//! count of sleeping pollers). A file that cannot tell when it changes
//! ([`Inode::signals_readiness`] is false) is asked again every [`RESCAN_NS`] while a poller
//! watches it.
//!
//! Why no wake-up is lost: a poller counts itself in [`SLEEPING_POLLERS`] and joins the queue
//! before it asks its files (each answer taken under the file's lock); a file changes its state
//! under that lock and reads the count after. Either the poller's question came after the change
//! and saw it, or it came before, and then the count (raised before it) is seen by the file,
//! which wakes the queue the poller is in.
//!
//! [`Inode::poll`]: super::Inode::poll
//! [`Inode::signals_readiness`]: super::Inode::signals_readiness

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::WaitQueue;
use crate::sync::waitqueue::WaitResult;

/// Readable.
pub const POLLIN: u32 = 0x001;
/// Urgent data to read.
pub const POLLPRI: u32 = 0x002;
/// Writable.
pub const POLLOUT: u32 = 0x004;
/// An error (a pipe's write end with no reader).
pub const POLLERR: u32 = 0x008;
/// Hung up (a pipe's read end with no writer).
pub const POLLHUP: u32 = 0x010;
/// Not an open descriptor (`poll` only).
pub const POLLNVAL: u32 = 0x020;
/// Normal data to read.
pub const POLLRDNORM: u32 = 0x040;
/// Priority data to read.
pub const POLLRDBAND: u32 = 0x080;
/// Normal data may be written.
pub const POLLWRNORM: u32 = 0x100;
/// Priority data may be written.
pub const POLLWRBAND: u32 = 0x200;

/// What a file that never waits answers: ready to read and to write.
pub const ALWAYS_READY: u32 = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

/// How often a file that does not signal its changes is asked again.
pub const RESCAN_NS: u64 = 10_000_000;

static POLLERS: WaitQueue = WaitQueue::new();
/// Pollers inside [`wait`].
static SLEEPING_POLLERS: AtomicUsize = AtomicUsize::new(0);

/// Wakes every sleeping poller: a file calls it after a change of what it is ready for (with
/// its lock released).
pub fn readiness_changed() {
    if SLEEPING_POLLERS.load(Ordering::SeqCst) != 0 {
        POLLERS.wake_all();
    }
}

/// Sleeps until `ready()` (which asks the watched files, and must neither sleep nor touch user
/// memory) returns true, a signal comes for the thread, or `deadline` (ns since boot; `None`:
/// none) passes; a deadline already past still asks once. `rescan`: a watched file does not
/// signal its changes, so ask again every [`RESCAN_NS`].
pub fn wait(mut ready: impl FnMut() -> bool, deadline: Option<u64>, rescan: bool) -> WaitResult {
    SLEEPING_POLLERS.fetch_add(1, Ordering::SeqCst);
    let result = loop {
        let wake_at = if rescan {
            let next_scan = crate::time::now_ns().saturating_add(RESCAN_NS);
            Some(deadline.map_or(next_scan, |deadline| deadline.min(next_scan)))
        } else {
            deadline
        };
        let result = POLLERS.wait_interruptible(&mut ready, wake_at);
        if result != WaitResult::TimedOut || wake_at == deadline {
            break result;
        }
    };
    SLEEPING_POLLERS.fetch_sub(1, Ordering::SeqCst);
    result
}
