//! More of pipes, eventfd and the poll family: a pipe's capacity and how writes share its pages
//! (F_GETPIPE_SZ, F_SETPIPE_SZ), packets (O_DIRECT), readv and writev on a pipe (one read that
//! waits only for some data; a writev of PIPE_BUF bytes in all is atomic), blocked reads and
//! writes that signals interrupt, hang-ups and errors that wake poll, poll and select continued
//! after a stop, ppoll's and pselect6's signal masks, the time left written back, select's bit
//! layout past one word, eventfd's waits and readiness, the names /proc shows, and the old pipe
//! and eventfd calls.
//!
//! Under Linux this program is /init: every signal sent to the caller has a handler (SIGUSR1,
//! SIGPIPE) and each test puts back the actions and the mask it changed (`Saved`).

use alloc::vec;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use urt::ktap::TestResult;
use urt::signal::{
    self as sig, SA_RESTART, SA_SIGINFO, SI_USER, SIG_BLOCK, SIG_UNBLOCK, SIGCONT, SIGPIPE,
    SIGSTOP, SIGUSR1, SigInfo, UContext, sigmask,
};
use urt::sys::{
    self, Errno, FdSet, Iovec, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, PollFd,
    Timespec, Timeval,
};
use urt::{check, check_eq, check_err, check_ok, skip};

use crate::process::{Child, End, wait};
use crate::signals::Saved;
use crate::util::{Fd, KERNEL_ADDR, ms_since, pipe, readlink};

const PAGE: usize = 4096;
/// Linux's default pipe capacity.
const DEFAULT_CAPACITY: usize = 16 * PAGE;
const TEN_S: u64 = 10_000_000_000;

// ---- helpers ----

fn capacity(fd: &Fd) -> Result<usize, Errno> {
    sys::fcntl(fd.0, sys::F_GETPIPE_SZ, 0)
}

fn set_capacity(fd: &Fd, size: usize) -> Result<usize, Errno> {
    sys::fcntl(fd.0, sys::F_SETPIPE_SZ, size)
}

/// FIONREAD: the bytes waiting.
fn queued(fd: &Fd) -> Result<usize, Errno> {
    let mut n = 0i32;
    sys::ioctl(fd.0, sys::FIONREAD, &raw mut n as usize).map(|_| n as usize)
}

fn write(fd: &Fd, data: &[u8]) -> Result<usize, Errno> {
    sys::write(fd.0, data.as_ptr() as usize, data.len())
}

fn read(fd: &Fd, buf: &mut [u8]) -> Result<usize, Errno> {
    sys::read(fd.0, buf.as_mut_ptr() as usize, buf.len())
}

/// An eventfd.
fn eventfd(initial: usize, flags: usize) -> Result<Fd, Errno> {
    sys::eventfd2(initial, flags).map(Fd)
}

fn counter_read(fd: &Fd) -> Result<u64, Errno> {
    let mut value = 0u64;
    sys::read(fd.0, &raw mut value as usize, 8).map(|_| value)
}

fn counter_write(fd: &Fd, value: u64) -> Result<usize, Errno> {
    sys::write(fd.0, &raw const value as usize, 8)
}

/// poll on one descriptor: the count and its revents.
fn poll_one(fd: usize, events: i16, timeout_ms: i32) -> Result<(usize, i16), Errno> {
    let mut entry = PollFd {
        fd: fd as i32,
        events,
        revents: 0,
    };
    let n = sys::poll(&raw mut entry as usize, 1, timeout_ms as usize)?;
    Ok((n, entry.revents))
}

/// A set holding `fds`.
fn fd_set(fds: &[usize]) -> FdSet {
    let mut set = FdSet::default();
    for &fd in fds {
        set.set(fd);
    }
    set
}

fn set_ptr(set: &mut FdSet) -> usize {
    set as *mut FdSet as usize
}

/// Runs `body` in a thread that sleeps `delay_ms` first.
fn later<T: Send + 'static>(
    delay_ms: u64,
    body: impl FnOnce() -> T + Send + 'static,
) -> urt::thread::JoinHandle<T> {
    urt::thread::spawn(move || {
        sys::sleep_ns(delay_ms * 1_000_000);
        body()
    })
}

/// SIGUSR1 to thread `tid` of this process after `delay_ms`.
fn signal_later(tid: usize, delay_ms: u64) -> urt::thread::JoinHandle<bool> {
    later(delay_ms, move || {
        sys::tgkill(sys::getpid(), tid, SIGUSR1).is_ok()
    })
}

/// What the recording handler saw last, and how often it ran.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static CODE: AtomicI32 = AtomicI32::new(-1);
static PID: AtomicU32 = AtomicU32::new(0);
static TID: AtomicUsize = AtomicUsize::new(0);
/// The mask the handler ran with, and the one its frame restores.
static MASK_INSIDE: AtomicU64 = AtomicU64::new(0);
static MASK_SAVED: AtomicU64 = AtomicU64::new(0);

fn reset() {
    COUNT.store(0, SeqCst);
    CODE.store(-1, SeqCst);
    PID.store(0, SeqCst);
    TID.store(0, SeqCst);
}

extern "C" fn record(_signo: i32, info: *mut SigInfo, uc: *mut UContext) {
    // SAFETY: the kernel passes a valid siginfo and ucontext (on the signal frame).
    let (info, uc) = unsafe { (&*info, &*uc) };
    CODE.store(info.code, SeqCst);
    PID.store(info.pid(), SeqCst);
    TID.store(sys::gettid(), SeqCst);
    MASK_INSIDE.store(sig::blocked(), SeqCst);
    MASK_SAVED.store(uc.sigmask, SeqCst);
    COUNT.fetch_add(1, SeqCst);
}

/// SIGUSR1 handled by [`record`] with `flags`, unblocked; put back when the result drops.
fn handle_sigusr1(flags: u64) -> Result<Saved, urt::ktap::Failure> {
    let mut saved = Saved::new();
    saved.handle(SIGUSR1, record, SA_SIGINFO | flags, 0)?;
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    reset();
    Ok(saved)
}

// ---- tests ----

pub fn pipe_capacity_is_counted_in_pages() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    check_eq!(check_ok!(capacity(&r)), DEFAULT_CAPACITY);
    check_eq!(check_ok!(capacity(&w)), DEFAULT_CAPACITY);
    check_eq!(check_ok!(set_capacity(&w, 0)), PAGE, "at least a page");
    check_eq!(check_ok!(capacity(&r)), PAGE, "both ends share it");
    // One page: one-byte writes share it to its end.
    for i in 0..PAGE {
        check_eq!(check_ok!(write(&w, b"x")), 1, "byte {i}");
    }
    check_err!(write(&w, b"x"), Errno::EAGAIN);
    check_eq!(check_ok!(queued(&r)), PAGE);
    let mut sink = vec![0u8; 2 * PAGE];
    check_eq!(check_ok!(read(&r, &mut sink)), PAGE);
    // Two pages: a write that does not fit in what is left of the last page takes a new page,
    // and a full pipe takes nothing more, even with room in its last page.
    check_eq!(
        check_ok!(set_capacity(&w, 5000)),
        2 * PAGE,
        "a power of two"
    );
    let data = [7u8; 3000];
    check_eq!(check_ok!(write(&w, &data)), 3000);
    check_eq!(check_ok!(write(&w, &data)), 3000);
    check_eq!(
        check_ok!(write(&w, &data[..1000])),
        1000,
        "joins the last page"
    );
    check_err!(write(&w, &data[..200]), Errno::EAGAIN);
    check_eq!(check_ok!(queued(&r)), 7000);
    check_err!(set_capacity(&w, PAGE), Errno::EBUSY);
    check_eq!(check_ok!(set_capacity(&w, 1 << 20)), 1 << 20);
    check_eq!(check_ok!(write(&w, &data)), 3000, "room again");
    check_err!(set_capacity(&w, (1 << 31) + 1), Errno::EINVAL);
    // Only pipes have a capacity.
    let counter = check_ok!(eventfd(0, sys::EFD_CLOEXEC));
    check_err!(capacity(&counter), Errno::EBADF);
    check_err!(set_capacity(&counter, PAGE), Errno::EBADF);
    Ok(())
}

pub fn pipe_packets_with_o_direct() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_DIRECT | sys::O_NONBLOCK | sys::O_CLOEXEC));
    check!(check_ok!(sys::fcntl(w.0, sys::F_GETFL, 0)) & sys::O_DIRECT != 0);
    check_eq!(check_ok!(write(&w, b"abc")), 3);
    check_eq!(check_ok!(write(&w, b"defgh")), 5);
    let mut buf = [0u8; 100];
    check_eq!(check_ok!(read(&r, &mut buf)), 3, "one packet per read");
    check_eq!(&buf[..3], b"abc");
    check_eq!(check_ok!(read(&r, &mut buf[..2])), 2);
    check_eq!(&buf[..2], b"de");
    check_err!(read(&r, &mut buf), Errno::EAGAIN);
    // A write longer than a page is a packet per page.
    let long = [9u8; PAGE + 904];
    check_eq!(check_ok!(write(&w, &long)), long.len());
    let mut big = vec![0u8; 2 * PAGE];
    check_eq!(check_ok!(read(&r, &mut big)), PAGE);
    check_eq!(check_ok!(read(&r, &mut big)), 904);
    Ok(())
}

pub fn readv_and_writev_on_pipes() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    // Three buffers, one message.
    let parts: [&[u8]; 3] = [b"one ", b"two ", b"three"];
    let iov = parts.map(|part| Iovec {
        base: part.as_ptr() as usize,
        len: part.len(),
    });
    check_eq!(check_ok!(sys::writev(w.0, iov.as_ptr() as usize, 3)), 13);
    let mut buf = [0u8; 64];
    check_eq!(check_ok!(read(&r, &mut buf)), 13);
    check_eq!(&buf[..13], b"one two three");
    // readv takes what is there and does not wait to fill its other buffers.
    check_ok!(w.write_all(b"1234"));
    let raw_r = r.0;
    let reader = urt::thread::spawn(move || {
        let (mut first, mut second) = ([0u8; 4], [0u8; 4]);
        let iov = [
            Iovec {
                base: first.as_mut_ptr() as usize,
                len: 4,
            },
            Iovec {
                base: second.as_mut_ptr() as usize,
                len: 4,
            },
        ];
        (sys::readv(raw_r, iov.as_ptr() as usize, 2), first)
    });
    let (got, first) = match reader.join_timeout(TEN_S) {
        Ok(Some(result)) => result,
        waiting => {
            // Let a reader that waits for more go, then fail.
            check_ok!(w.write_all(b"5678"));
            if let Err(reader) = waiting {
                let _ = reader.join();
            }
            return Err(urt::ktap::Failure::fail(
                file!(),
                line!(),
                "readv waited to fill its second buffer".into(),
            ));
        }
    };
    check_eq!(got, Ok(4));
    check_eq!(&first, b"1234");
    // Two writers of PIPE_BUF bytes in two buffers each: never mixed.
    crate::pipes::two_writers_never_mix(r, w, PAGE, 48, |fd, block| {
        let (first, second) = block.split_at(block.len() / 2);
        let iov = [
            Iovec {
                base: first.as_ptr() as usize,
                len: first.len(),
            },
            Iovec {
                base: second.as_ptr() as usize,
                len: second.len(),
            },
        ];
        sys::writev(fd, iov.as_ptr() as usize, 2) == Ok(block.len())
    })
}

pub fn blocked_pipe_calls_and_signals() -> TestResult {
    let main = sys::gettid();
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let mut buf = [0u8; 16];
    // Without SA_RESTART, a read that waits ends with EINTR.
    {
        let _saved = handle_sigusr1(0)?;
        let sender = signal_later(main, 30);
        check_err!(read(&r, &mut buf), Errno::EINTR);
        check!(sender.join());
        check_eq!(COUNT.load(SeqCst), 1);
    }
    // With it, the read goes on and gets what comes after the signal.
    {
        let _saved = handle_sigusr1(SA_RESTART)?;
        let sender = signal_later(main, 30);
        let raw_w = w.0;
        let writer = later(80, move || {
            sys::write(raw_w, b"late".as_ptr() as usize, 4) == Ok(4)
        });
        check_eq!(check_ok!(read(&r, &mut buf)), 4);
        check!(sender.join() && writer.join());
        check_eq!(COUNT.load(SeqCst), 1);
        check_eq!(&buf[..4], b"late");
    }
    // A write that waits for room returns what it wrote before the signal.
    {
        let _saved = handle_sigusr1(0)?;
        check_ok!(set_capacity(&w, PAGE));
        let sender = signal_later(main, 30);
        let two_pages = [1u8; 2 * PAGE];
        check_eq!(check_ok!(write(&w, &two_pages)), PAGE);
        check!(sender.join());
        check_eq!(COUNT.load(SeqCst), 1);
    }
    // The last reader goes while a write waits: EPIPE, and SIGPIPE from the writer itself.
    let mut saved = Saved::new();
    saved.handle(SIGPIPE, record, SA_SIGINFO, 0)?;
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGPIPE)));
    reset();
    let raw_r = r.0;
    core::mem::forget(r);
    let closer = later(30, move || sys::close(raw_r).is_ok());
    check_err!(write(&w, b"more"), Errno::EPIPE);
    check!(closer.join());
    check_eq!(COUNT.load(SeqCst), 1);
    check_eq!(CODE.load(SeqCst), SI_USER);
    check_eq!(PID.load(SeqCst) as usize, sys::getpid());
    check_eq!(TID.load(SeqCst), main, "the writing thread takes it");
    Ok(())
}

pub fn poll_hangup_error_and_wakeups() -> TestResult {
    // Hang-up and error are reported even when not asked for.
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let raw_w = w.0;
    core::mem::forget(w);
    let closer = later(30, move || sys::close(raw_w).is_ok());
    check_eq!(check_ok!(poll_one(r.0, POLLIN, -1)), (1, POLLHUP), "woken");
    check!(closer.join());
    check_eq!(check_ok!(poll_one(r.0, 0, 0)), (1, POLLHUP));
    let (r, w) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    check_ok!(set_capacity(&w, PAGE));
    check_eq!(check_ok!(write(&w, &[0u8; PAGE])), PAGE);
    check_eq!(check_ok!(poll_one(w.0, POLLOUT, 0)), (0, 0), "full");
    let raw_r = r.0;
    core::mem::forget(r);
    let closer = later(30, move || sys::close(raw_r).is_ok());
    check_eq!(check_ok!(poll_one(w.0, POLLOUT, -1)), (1, POLLERR), "woken");
    check!(closer.join());
    // The normal-data events, asked for alone.
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_ok!(w.write_all(b"x"));
    check_eq!(check_ok!(poll_one(r.0, POLLRDNORM, 0)), (1, POLLRDNORM));
    check_eq!(check_ok!(poll_one(w.0, POLLWRNORM, 0)), (1, POLLWRNORM));
    // The console (standard output) is writable.
    check_eq!(check_ok!(poll_one(1, POLLOUT, 0)), (1, POLLOUT));
    // No descriptors at all: a sleep. The (empty) array must still be user memory, which is
    // checked when the results go back, after the wait.
    let started = sys::monotonic_ns();
    check_eq!(check_ok!(sys::poll(0, 0, 30)), 0);
    check!(ms_since(started) >= 30, "slept {} ms", ms_since(started));
    let started = sys::monotonic_ns();
    check_err!(sys::poll(KERNEL_ADDR, 0, 30), Errno::EFAULT);
    check!(
        ms_since(started) >= 30,
        "EFAULT after {} ms",
        ms_since(started)
    );
    Ok(())
}

pub fn poll_and_select_after_a_signal() -> TestResult {
    // A handler ends poll with EINTR, SA_RESTART or not.
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let _saved = handle_sigusr1(SA_RESTART)?;
    let sender = signal_later(sys::gettid(), 30);
    check_err!(poll_one(r.0, POLLIN, -1), Errno::EINTR);
    check!(sender.join());
    check_eq!(COUNT.load(SeqCst), 1);
    // Stopped and continued, poll and select go on waiting (to the same deadline).
    let poller = check_ok!(Child::fork(|| {
        match poll_one(r.0, POLLIN, -1) {
            Ok((1, POLLIN)) => 0,
            _ => 1,
        }
    }));
    let timed = check_ok!(Child::fork(|| {
        let mut read = fd_set(&[r.0]);
        let mut timeout = Timeval {
            tv_sec: 0,
            tv_usec: 300_000,
        };
        let started = sys::monotonic_ns();
        let n = sys::select(r.0 + 1, set_ptr(&mut read), 0, 0, &raw mut timeout as usize);
        match n {
            Ok(0) if ms_since(started) >= 300 => 0,
            Ok(0) => 2,
            _ => 1,
        }
    }));
    sys::sleep_ns(50_000_000);
    for child in [&poller, &timed] {
        check_ok!(sys::kill(child.pid, SIGSTOP));
        check_ok!(wait(child.pid, sys::WUNTRACED));
    }
    sys::sleep_ns(20_000_000);
    for child in [&poller, &timed] {
        check_ok!(sys::kill(child.pid, SIGCONT));
    }
    let (mut poller, mut timed) = (poller, timed);
    check_eq!(check_ok!(timed.end()), End::Exited(0), "select timed out");
    check_ok!(w.write_all(b"x"));
    check_eq!(check_ok!(poller.end()), End::Exited(0), "poll saw the byte");
    Ok(())
}

pub fn ppoll_and_pselect6_signal_masks() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let _saved = handle_sigusr1(0)?;
    let before = check_ok!(sig::sigprocmask(SIG_BLOCK, sigmask(SIGUSR1)));
    let blocked = before | sigmask(SIGUSR1);
    let wait_mask = before;
    let mut entry = PollFd {
        fd: r.0 as i32,
        events: POLLIN,
        revents: 0,
    };
    let entry_ptr = &raw mut entry as usize;
    let mask_ptr = &raw const wait_mask as usize;
    // Pending and blocked before the call, unblocked by its mask: the handler runs, with the
    // call's mask, and the caller's comes back after it.
    check_ok!(sig::raise(SIGUSR1));
    check_err!(sys::ppoll(entry_ptr, 1, 0, mask_ptr, 8), Errno::EINTR);
    check_eq!(COUNT.load(SeqCst), 1);
    check_eq!(MASK_INSIDE.load(SeqCst), wait_mask | sigmask(SIGUSR1));
    check_eq!(
        MASK_SAVED.load(SeqCst),
        blocked,
        "the frame keeps the caller's mask"
    );
    check_eq!(sig::blocked(), blocked, "the mask is back after ppoll");
    reset();
    check_ok!(sig::raise(SIGUSR1));
    let mut read = fd_set(&[r.0]);
    let argument = [mask_ptr, 8];
    check_err!(
        sys::pselect6(
            r.0 + 1,
            set_ptr(&mut read),
            0,
            0,
            0,
            argument.as_ptr() as usize
        ),
        Errno::EINTR
    );
    check_eq!(COUNT.load(SeqCst), 1);
    check_eq!(MASK_INSIDE.load(SeqCst), wait_mask | sigmask(SIGUSR1));
    check_eq!(sig::blocked(), blocked, "the mask is back after pselect6");
    // A mask that blocks the signal for the wait: it comes once the call returns.
    check_ok!(sig::sigprocmask(SIG_UNBLOCK, sigmask(SIGUSR1)));
    reset();
    let sender = signal_later(sys::gettid(), 20);
    let quarter = Timespec::from_nanos(150_000_000);
    let started = sys::monotonic_ns();
    let blocking = before | sigmask(SIGUSR1);
    let n = sys::ppoll(
        entry_ptr,
        1,
        &raw const quarter as usize,
        &raw const blocking as usize,
        8,
    );
    check!(sender.join());
    check_eq!(n, Ok(0), "not interrupted");
    check!(ms_since(started) >= 150, "after {} ms", ms_since(started));
    check_eq!(COUNT.load(SeqCst), 1, "delivered as the call returned");
    check_eq!(sig::blocked(), before);
    // pselect6's mask argument: a NULL set needs no size; a set needs a sigset_t's.
    let mut write = fd_set(&[w.0]);
    let no_set = [0usize, 4];
    let zero = Timespec::default();
    let z = &raw const zero as usize;
    check_eq!(
        check_ok!(sys::pselect6(
            w.0 + 1,
            0,
            set_ptr(&mut write),
            0,
            z,
            no_set.as_ptr() as usize
        )),
        1
    );
    let short = [mask_ptr, 4];
    check_err!(
        sys::pselect6(
            w.0 + 1,
            0,
            set_ptr(&mut write),
            0,
            z,
            short.as_ptr() as usize
        ),
        Errno::EINVAL
    );
    check_err!(
        sys::pselect6(w.0 + 1, 0, set_ptr(&mut write), 0, z, KERNEL_ADDR),
        Errno::EFAULT
    );
    Ok(())
}

pub fn time_left_is_written_back() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let nfds = r.0.max(w.0) + 1;
    // Ready at once: most of the time is left.
    let mut write = fd_set(&[w.0]);
    let mut tv = Timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    check_eq!(
        check_ok!(sys::select(
            nfds,
            0,
            set_ptr(&mut write),
            0,
            &raw mut tv as usize
        )),
        1
    );
    let left_us = tv.tv_sec * 1_000_000 + tv.tv_usec;
    check!(
        (4_000_000..5_000_000).contains(&left_us),
        "select left {left_us} us of 5 s"
    );
    // Microseconds past a second carry into the seconds.
    let mut tv = Timeval {
        tv_sec: 0,
        tv_usec: 1_500_000,
    };
    check_eq!(
        check_ok!(sys::select(
            nfds,
            0,
            set_ptr(&mut write),
            0,
            &raw mut tv as usize
        )),
        1
    );
    let left_us = tv.tv_sec * 1_000_000 + tv.tv_usec;
    check!(
        (1_000_000..1_500_000).contains(&left_us),
        "select left {left_us} us of 1.5 s"
    );
    let mut bad = Timeval {
        tv_sec: 1,
        tv_usec: -1,
    };
    check_err!(
        sys::select(nfds, 0, set_ptr(&mut write), 0, &raw mut bad as usize),
        Errno::EINVAL
    );
    let mut ts = Timespec::from_nanos(5_000_000_000);
    let mut entry = PollFd {
        fd: w.0 as i32,
        events: POLLOUT,
        revents: 0,
    };
    check_eq!(
        check_ok!(sys::ppoll(
            &raw mut entry as usize,
            1,
            &raw mut ts as usize,
            0,
            8
        )),
        1
    );
    let left_ms = ts.as_nanos() / 1_000_000;
    check!(
        (4000..5000).contains(&left_ms),
        "ppoll left {left_ms} ms of 5 s"
    );
    let mut ts = Timespec::from_nanos(5_000_000_000);
    let t = &raw mut ts as usize;
    check_eq!(
        check_ok!(sys::pselect6(nfds, 0, set_ptr(&mut write), 0, t, 0)),
        1
    );
    let left_ms = ts.as_nanos() / 1_000_000;
    check!(
        (4000..5000).contains(&left_ms),
        "pselect6 left {left_ms} ms of 5 s"
    );
    // Timed out: nothing left.
    let mut read = fd_set(&[r.0]);
    let mut tv = Timeval {
        tv_sec: 0,
        tv_usec: 30_000,
    };
    check_eq!(
        check_ok!(sys::select(
            nfds,
            set_ptr(&mut read),
            0,
            0,
            &raw mut tv as usize
        )),
        0
    );
    check_eq!((tv.tv_sec, tv.tv_usec), (0, 0));
    Ok(())
}

pub fn select_bit_layout() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    // Descriptors in the second word of the sets.
    let high_r = Fd(check_ok!(sys::dup2(r.0, 100)));
    let high_w = Fd(check_ok!(sys::dup2(w.0, 101)));
    let (mut read, mut write) = (fd_set(&[high_r.0]), fd_set(&[high_w.0]));
    let mut now = Timeval::default();
    let t = &raw mut now as usize;
    check_eq!(
        check_ok!(sys::select(
            102,
            set_ptr(&mut read),
            set_ptr(&mut write),
            0,
            t
        )),
        1
    );
    check_eq!((read, write), (FdSet::default(), fd_set(&[101])));
    check_ok!(w.write_all(b"x"));
    let (mut read, mut write) = (fd_set(&[high_r.0]), fd_set(&[high_w.0]));
    check_eq!(
        check_ok!(sys::select(
            102,
            set_ptr(&mut read),
            set_ptr(&mut write),
            0,
            t
        )),
        2
    );
    check_eq!((read, write), (fd_set(&[100]), fd_set(&[101])));
    // Bits from nfds on are not looked at, not even for a closed descriptor.
    let mut read = fd_set(&[high_r.0, 101, 200]);
    check_eq!(check_ok!(sys::select(101, set_ptr(&mut read), 0, 0, t)), 1);
    check_eq!(
        read,
        fd_set(&[100, 200]),
        "the words from nfds on are not written either"
    );
    // A pipe has no exceptional condition.
    let mut except = fd_set(&[r.0, w.0]);
    check_eq!(
        check_ok!(sys::select(r.0.max(w.0) + 1, 0, 0, set_ptr(&mut except), t)),
        0
    );
    // Each bit counts: an eventfd with a count is readable and writable.
    let counter = check_ok!(eventfd(1, sys::EFD_CLOEXEC));
    let (mut read, mut write) = (fd_set(&[counter.0]), fd_set(&[counter.0]));
    let n = counter.0 + 1;
    check_eq!(
        check_ok!(sys::select(
            n,
            set_ptr(&mut read),
            set_ptr(&mut write),
            0,
            t
        )),
        2
    );
    // No descriptors: a sleep, and no set is read or written.
    let k = KERNEL_ADDR;
    check_eq!(check_ok!(sys::select(0, k, k, k, t)), 0);
    let mut short = Timeval {
        tv_sec: 0,
        tv_usec: 30_000,
    };
    let started = sys::monotonic_ns();
    check_eq!(
        check_ok!(sys::select(0, 0, 0, 0, &raw mut short as usize)),
        0
    );
    check!(ms_since(started) >= 30, "slept {} ms", ms_since(started));
    Ok(())
}

pub fn eventfd_waits_and_readiness() -> TestResult {
    let counter = check_ok!(eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC));
    check_eq!(
        check_ok!(sys::fcntl(counter.0, sys::F_GETFL, 0)),
        sys::O_RDWR | sys::O_NONBLOCK
    );
    check_eq!(check_ok!(counter.fd_flags()), sys::FD_CLOEXEC);
    let st = check_ok!(counter.stat());
    check_eq!(st.st_mode, 0o600, "an anonymous inode has no file type");
    let mut fs = sys::StatFs::default();
    check_ok!(sys::fstatfs(counter.0, &raw mut fs as usize));
    check_eq!(fs.f_type, 0x0904_1934, "anon_inodefs");
    let both = POLLIN | POLLOUT;
    check_eq!(check_ok!(poll_one(counter.0, both, 0)), (1, POLLOUT));
    check_ok!(counter_write(&counter, 2));
    check_eq!(check_ok!(poll_one(counter.0, both, 0)), (1, both));
    check_ok!(counter_write(&counter, u64::MAX - 3));
    check_eq!(check_ok!(poll_one(counter.0, both, 0)), (1, POLLIN), "full");
    // Values are 8 bytes: a larger buffer reads 8; a write of more is refused since Linux 6.10
    // (it wrote 8 before).
    let mut wide = [0u64; 2];
    check_eq!(
        check_ok!(sys::read(counter.0, wide.as_mut_ptr() as usize, 16)),
        8
    );
    check_eq!(wide[0], u64::MAX - 1);
    wide[0] = 5;
    match sys::write(counter.0, wide.as_ptr() as usize, 16) {
        Ok(8) => urt::diag!("eventfd: a 16-byte write wrote 8 bytes (Linux before 6.10)"),
        Err(Errno::EINVAL) => {
            urt::diag!("eventfd: a 16-byte write is EINVAL (Linux 6.10 on)");
            check_ok!(counter_write(&counter, 5));
        }
        other => check!(false, "a 16-byte eventfd write: {other:?}"),
    }
    check_eq!(check_ok!(counter_read(&counter)), 5);
    // Blocking: a write past the maximum waits for a read, a read of zero for a write.
    let blocking = check_ok!(eventfd(0, sys::EFD_CLOEXEC));
    check_ok!(counter_write(&blocking, u64::MAX - 1));
    let fd = blocking.0;
    let reader = later(30, move || {
        let mut value = 0u64;
        sys::read(fd, &raw mut value as usize, 8).map(|_| value)
    });
    check_eq!(check_ok!(counter_write(&blocking, 1)), 8);
    check_eq!(reader.join(), Ok(u64::MAX - 1));
    check_eq!(check_ok!(counter_read(&blocking)), 1);
    let writer = later(30, move || {
        let value = 4u64;
        sys::write(fd, &raw const value as usize, 8)
    });
    check_eq!(check_ok!(counter_read(&blocking)), 4);
    check_eq!(writer.join(), Ok(8));
    // A signal ends a wait.
    let _saved = handle_sigusr1(0)?;
    let sender = signal_later(sys::gettid(), 30);
    check_err!(counter_read(&blocking), Errno::EINTR);
    check!(sender.join());
    check_eq!(COUNT.load(SeqCst), 1);
    Ok(())
}

pub fn names_and_old_calls() -> TestResult {
    // pipe(2) and eventfd(2): as pipe2 and eventfd2 with no flags.
    let mut fds = [0i32; 2];
    check_ok!(sys::pipe(fds.as_mut_ptr() as usize));
    let (r, w) = (Fd(fds[0] as usize), Fd(fds[1] as usize));
    check_eq!((check_ok!(r.fd_flags()), check_ok!(w.fd_flags())), (0, 0));
    check_ok!(w.write_all(b"ok"));
    let mut buf = [0u8; 2];
    check_eq!(check_ok!(read(&r, &mut buf)), 2);
    check_err!(sys::pipe(KERNEL_ADDR), Errno::EFAULT);
    let counter = Fd(check_ok!(sys::eventfd(5)));
    check_eq!(
        check_ok!(sys::fcntl(counter.0, sys::F_GETFL, 0)),
        sys::O_RDWR
    );
    check_eq!(check_ok!(counter.fd_flags()), 0);
    check_eq!(check_ok!(counter_read(&counter)), 5);
    // The names /proc/self/fd gives them.
    let Ok(_) = readlink(c"/proc/self/fd/0") else {
        skip!("no /proc/self/fd");
    };
    let ino = check_ok!(r.stat()).st_ino;
    check_eq!(check_ok!(w.stat()).st_ino, ino, "one inode for both ends");
    let name = |fd: usize| readlink(&crate::util::cstring(&alloc::format!("/proc/self/fd/{fd}")));
    check_eq!(check_ok!(name(r.0)), alloc::format!("pipe:[{ino}]"));
    check_eq!(check_ok!(name(w.0)), alloc::format!("pipe:[{ino}]"));
    check_eq!(check_ok!(name(counter.0)), "anon_inode:[eventfd]");
    Ok(())
}
