//! Pipes: pipe2 and its flags, a pipe between two processes (EOF when the last writer goes),
//! EPIPE and SIGPIPE without a reader, PIPE_BUF atomicity, FIONREAD, a write that faults part
//! way, and waiting on pipes with poll, ppoll, select and pselect6 (readable, writable,
//! hang-up, timeouts, error cases).

use alloc::vec::Vec;

use urt::ktap::TestResult;
use urt::signal::{SIG_DFL, SIG_IGN, SIGPIPE};
use urt::sys::{
    self, Errno, FdSet, PAGE_SIZE, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd, Timespec,
};
use urt::{check, check_eq, check_err, check_ok};

use crate::process::{Child, End};
use crate::signals::Saved;
use crate::util::{Fd, KERNEL_ADDR, Mapping, ms_since, pipe};

/// Linux's PIPE_BUF: writes up to this size are atomic.
const PIPE_BUF: usize = 4096;
/// More descriptors than any table may hold (Linux's largest `nr_open` is 1 << 20).
const BEYOND_LIMIT: usize = 1 << 20;

/// FIONREAD: the bytes waiting in the pipe.
fn queued(fd: &Fd) -> Result<usize, Errno> {
    let mut n = 0i32;
    sys::ioctl(fd.0, sys::FIONREAD, &raw mut n as usize).map(|_| n as usize)
}

pub fn pipe2_flags() -> TestResult {
    let (r, w) = check_ok!(pipe(0));
    check_eq!(check_ok!(r.stat()).st_mode & sys::S_IFMT, sys::S_IFIFO);
    check_eq!((check_ok!(r.fd_flags()), check_ok!(w.fd_flags())), (0, 0));
    let access = |fd: &Fd| sys::fcntl(fd.0, sys::F_GETFL, 0).map(|f| f & sys::O_ACCMODE);
    check_eq!(check_ok!(access(&r)), sys::O_RDONLY);
    check_eq!(check_ok!(access(&w)), sys::O_WRONLY);
    let mut buf = [0u8; 4];
    let p = buf.as_mut_ptr() as usize;
    check_err!(sys::write(r.0, p, 1), Errno::EBADF);
    check_err!(sys::read(w.0, p, 1), Errno::EBADF);
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_eq!(check_ok!(r.fd_flags()), sys::FD_CLOEXEC);
    check_eq!(check_ok!(w.fd_flags()), sys::FD_CLOEXEC);
    let (r, w) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    check!(check_ok!(sys::fcntl(r.0, sys::F_GETFL, 0)) & sys::O_NONBLOCK != 0);
    check!(check_ok!(sys::fcntl(w.0, sys::F_GETFL, 0)) & sys::O_NONBLOCK != 0);
    check_err!(sys::read(r.0, p, 4), Errno::EAGAIN);
    check_err!(pipe(sys::O_APPEND), Errno::EINVAL);
    check_err!(sys::pipe2(KERNEL_ADDR, 0), Errno::EFAULT);
    // O_NOTIFICATION_PIPE (O_EXCL's bit): Debian's kernels have no notification queues. The
    // flags are checked first, the descriptors' address never.
    check_err!(pipe(sys::O_EXCL | sys::O_NONBLOCK), Errno::ENOPKG);
    check_err!(sys::pipe2(KERNEL_ADDR, sys::O_EXCL), Errno::ENOPKG);
    check_err!(pipe(sys::O_EXCL | sys::O_APPEND), Errno::EINVAL);
    // Neither end can seek or be read at an offset.
    check_err!(sys::lseek(r.0, 0, sys::SEEK_CUR), Errno::ESPIPE);
    check_err!(sys::pread64(r.0, p, 1, 0), Errno::ESPIPE);
    check_err!(sys::pwrite64(w.0, p, 1, 0), Errno::ESPIPE);
    Ok(())
}

pub fn pipe_between_processes() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let message: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut child = check_ok!(Child::fork(|| {
        // In pieces, with pauses: the reader waits for each.
        for piece in message.chunks(7000) {
            if w.write_all(piece).is_err() {
                return 1;
            }
            sys::sleep_ns(5_000_000);
        }
        0
    }));
    // The child's exit closes its write end; ours must go too before EOF can come.
    drop(w);
    check_eq!(check_ok!(r.read_to_end()), message);
    check_eq!(check_ok!(child.end()), End::Exited(0));
    Ok(())
}

pub fn pipe_without_reader_epipe_and_sigpipe() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    drop(r);
    let mut saved = Saved::new();
    saved.dispose(SIGPIPE, SIG_IGN)?;
    check_err!(sys::write(w.0, c"x".as_ptr() as usize, 1), Errno::EPIPE);
    // No reader is found before the buffer is read; a write of nothing is nothing.
    check_err!(sys::write(w.0, 0, 16), Errno::EPIPE);
    check_eq!(check_ok!(sys::write(w.0, 0, 0)), 0);
    // With the default action, the write kills the writer.
    let mut child = check_ok!(Child::fork(|| {
        let _ = urt::signal::set_disposition(SIGPIPE, SIG_DFL);
        let _ = sys::write(w.0, c"x".as_ptr() as usize, 1);
        0
    }));
    check_eq!(check_ok!(child.end()), End::Killed(SIGPIPE as i32));
    Ok(())
}

pub fn pipe_buf_writes_are_atomic() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    two_writers_never_mix(r, w, PIPE_BUF, 64, |fd, block| {
        sys::write(fd, block.as_ptr() as usize, block.len()) == Ok(block.len())
    })
}

/// Two forked writers each put `rounds` blocks of `block_len` bytes (all `a`, all `b`) into
/// the pipe `w` with `write_block`, which says whether the whole block went in; the reader
/// must see every block whole, never one writer's bytes inside the other's.
pub(crate) fn two_writers_never_mix(
    r: Fd,
    w: Fd,
    block_len: usize,
    rounds: usize,
    write_block: fn(usize, &[u8]) -> bool,
) -> TestResult {
    let writer = |byte: u8| {
        let w = &w;
        move || {
            let block = alloc::vec![byte; block_len];
            for _ in 0..rounds {
                if !write_block(w.0, &block) {
                    return 1;
                }
            }
            0
        }
    };
    let mut a = check_ok!(Child::fork(writer(b'a')));
    let mut b = check_ok!(Child::fork(writer(b'b')));
    drop(w);
    let all = check_ok!(r.read_to_end());
    check_eq!(check_ok!(a.end()), End::Exited(0));
    check_eq!(check_ok!(b.end()), End::Exited(0));
    check_eq!(all.len(), 2 * rounds * block_len);
    for (i, block) in all.chunks(block_len).enumerate() {
        check!(
            block.iter().all(|&x| x == block[0]),
            "block {i} mixes two writers' bytes"
        );
    }
    Ok(())
}

pub fn nonblocking_pipe_full_and_fionread() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    check_eq!(check_ok!(queued(&r)), 0);
    let chunk = [7u8; 1000];
    let mut total = 0;
    loop {
        match sys::write(w.0, chunk.as_ptr() as usize, chunk.len()) {
            Ok(n) => total += n,
            Err(Errno::EAGAIN) => break,
            Err(e) => check!(false, "write to a filling pipe: {e:?}"),
        }
        check!(total < 1 << 24, "the pipe never fills");
    }
    check!(total >= PIPE_BUF, "a pipe holds only {total} bytes");
    check_eq!(check_ok!(queued(&r)), total);
    // Full: a write of PIPE_BUF bytes goes whole or not at all.
    let block = [8u8; PIPE_BUF];
    check_err!(
        sys::write(w.0, block.as_ptr() as usize, PIPE_BUF),
        Errno::EAGAIN
    );
    let mut sink = [0u8; 2 * PIPE_BUF];
    check_eq!(
        check_ok!(sys::read(r.0, sink.as_mut_ptr() as usize, sink.len())),
        sink.len()
    );
    check_eq!(
        check_ok!(sys::write(w.0, block.as_ptr() as usize, PIPE_BUF)),
        PIPE_BUF
    );
    check_eq!(check_ok!(queued(&r)), total - PIPE_BUF);
    check_err!(queued(&Fd(9999)), Errno::EBADF);
    Ok(())
}

/// A write from a buffer that runs into a page it cannot read counts in Linux's pieces: the
/// odd part that joins the last page of the pipe, then whole pages. The piece the fault falls
/// in is dropped (EFAULT if it was the first), and a page's slot taken for it stays, empty: the
/// read end polls readable until a read goes past it. A regular file keeps the bytes before the
/// fault.
pub fn pipe_write_fault_counts_in_pieces() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    check_ok!(sys::mprotect(m.page(3), PAGE_SIZE, sys::PROT_NONE));
    let edge = m.page(3);
    let (r, w) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    let mut read_end = [pollfd(&r, POLLIN)];
    check_err!(sys::write(w.0, edge - 13, 64), Errno::EFAULT);
    check_eq!(check_ok!(queued(&r)), 0);
    check_eq!(
        check_ok!(poll(&mut read_end, 0)),
        1,
        "the empty page polls readable"
    );
    let mut sink = [0u8; 64];
    let buf = sink.as_mut_ptr() as usize;
    check_err!(sys::read(r.0, buf, 64), Errno::EAGAIN);
    check_eq!(check_ok!(poll(&mut read_end, 0)), 0);
    // The odd part joining the last page faults: nothing goes in.
    check_eq!(check_ok!(sys::write(w.0, b"abc".as_ptr() as usize, 3)), 3);
    check_err!(sys::write(w.0, edge - 6, 64), Errno::EFAULT);
    check_eq!(check_ok!(queued(&r)), 3);
    // Three pages from 16 bytes into page 0: two go in, the third faults.
    check_eq!(
        check_ok!(sys::write(w.0, m.page(0) + 16, 3 * PAGE_SIZE)),
        2 * PAGE_SIZE
    );
    // Five odd bytes join the last page (the empty one), then two pages; the third faults.
    check_eq!(
        check_ok!(sys::write(w.0, m.page(0) + 11, 3 * PAGE_SIZE + 5)),
        2 * PAGE_SIZE + 5
    );
    check_eq!(check_ok!(queued(&r)), 4 * PAGE_SIZE + 8);
    // A packet pipe: the empty packet reads as 0 bytes.
    let (pr, pw) = check_ok!(pipe(sys::O_DIRECT | sys::O_NONBLOCK | sys::O_CLOEXEC));
    check_err!(sys::write(pw.0, edge - 13, 64), Errno::EFAULT);
    check_eq!(check_ok!(sys::read(pr.0, buf, 64)), 0);
    check_err!(sys::read(pr.0, buf, 64), Errno::EAGAIN);
    // A file keeps what came before the fault.
    let file = Fd(check_ok!(sys::memfd_create(c"f".as_ptr() as usize, 0)));
    check_eq!(check_ok!(sys::write(file.0, edge - 13, 64)), 13);
    Ok(())
}

/// One pollfd asking for `events` on `fd`.
fn pollfd(fd: &Fd, events: i16) -> PollFd {
    PollFd {
        fd: fd.0 as i32,
        events,
        revents: 0,
    }
}

fn poll(fds: &mut [PollFd], timeout_ms: i32) -> Result<usize, Errno> {
    sys::poll(fds.as_mut_ptr() as usize, fds.len(), timeout_ms as usize)
}

pub fn poll_on_pipes() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let mut fds = [pollfd(&r, POLLIN), pollfd(&w, POLLOUT)];
    check_eq!(
        check_ok!(poll(&mut fds, 0)),
        1,
        "only the write end is ready"
    );
    check_eq!((fds[0].revents, fds[1].revents), (0, POLLOUT));
    check_ok!(w.write_all(b"x"));
    check_eq!(check_ok!(poll(&mut fds, 0)), 2);
    check_eq!(fds[0].revents, POLLIN);
    // The writer gone: hang-up, with the data still readable, then hang-up alone.
    drop(w);
    let mut read_end = [pollfd(&r, POLLIN)];
    check_eq!(check_ok!(poll(&mut read_end, 0)), 1);
    check_eq!(read_end[0].revents, POLLIN | POLLHUP);
    let mut byte = [0u8; 1];
    check_ok!(sys::read(r.0, byte.as_mut_ptr() as usize, 1));
    check_ok!(poll(&mut read_end, 0));
    check_eq!(read_end[0].revents, POLLHUP);
    // The reader gone: an error on the write end.
    let (r2, w2) = check_ok!(pipe(sys::O_CLOEXEC));
    drop(r2);
    let mut write_end = [pollfd(&w2, POLLOUT)];
    check_eq!(check_ok!(poll(&mut write_end, 0)), 1);
    check!(
        write_end[0].revents & POLLERR != 0,
        "revents {:#x}",
        write_end[0].revents
    );
    // A negative fd is skipped; a closed one is POLLNVAL and counts.
    let mut odd = [
        PollFd {
            fd: -1,
            events: POLLIN,
            revents: 0x7,
        },
        PollFd {
            fd: 9999,
            events: POLLIN,
            revents: 0,
        },
    ];
    check_eq!(check_ok!(poll(&mut odd, 0)), 1);
    check_eq!((odd[0].revents, odd[1].revents), (0, POLLNVAL));
    check_err!(sys::poll(0, BEYOND_LIMIT, 0), Errno::EINVAL);
    check_err!(sys::poll(KERNEL_ADDR, 1, 0), Errno::EFAULT);
    Ok(())
}

pub fn poll_waits_and_times_out() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let mut fds = [pollfd(&r, POLLIN)];
    let started = sys::monotonic_ns();
    check_eq!(check_ok!(poll(&mut fds, 50)), 0);
    check!(
        ms_since(started) >= 50,
        "poll(50 ms) returned after {} ms",
        ms_since(started)
    );
    let raw_w = w.0;
    let writer = urt::thread::spawn(move || {
        sys::sleep_ns(20_000_000);
        sys::write(raw_w, c"y".as_ptr() as usize, 1).is_ok()
    });
    check_eq!(
        check_ok!(poll(&mut fds, -1)),
        1,
        "poll wakes when data comes"
    );
    check_eq!(fds[0].revents, POLLIN);
    check!(writer.join());
    Ok(())
}

pub fn ppoll_on_pipes() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let mut fds = [pollfd(&r, POLLIN)];
    let p = fds.as_mut_ptr() as usize;
    let zero = Timespec::default();
    let z = &raw const zero as usize;
    check_eq!(check_ok!(sys::ppoll(p, 1, z, 0, 8)), 0);
    check_ok!(w.write_all(b"x"));
    // No timeout at all: data is there, so it returns at once.
    check_eq!(check_ok!(sys::ppoll(p, 1, 0, 0, 8)), 1);
    check_eq!(fds[0].revents, POLLIN);
    // With a signal mask for the wait (SIGUSR1 blocked meanwhile).
    let mask = urt::signal::sigmask(urt::signal::SIGUSR1);
    check_eq!(
        check_ok!(sys::ppoll(p, 1, z, &raw const mask as usize, 8)),
        1
    );
    let bad = Timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000_000,
    };
    check_err!(
        sys::ppoll(p, 1, &raw const bad as usize, 0, 8),
        Errno::EINVAL
    );
    check_err!(
        sys::ppoll(p, 1, z, &raw const mask as usize, 4),
        Errno::EINVAL
    );
    Ok(())
}

/// The read and write sets for `r` and `w`.
fn sets(r: &Fd, w: &Fd) -> (FdSet, FdSet) {
    let (mut rd, mut wr) = (FdSet::default(), FdSet::default());
    rd.set(r.0);
    wr.set(w.0);
    (rd, wr)
}

/// The address of a set, or NULL.
fn set_ptr(set: Option<&mut FdSet>) -> usize {
    set.map_or(0, |s| s as *mut FdSet as usize)
}

/// select(nfds, read, write, NULL, timeout).
fn select(
    nfds: usize,
    read: Option<&mut FdSet>,
    write: Option<&mut FdSet>,
    mut timeout: sys::Timeval,
) -> Result<usize, Errno> {
    let t = &raw mut timeout as usize;
    sys::select(nfds, set_ptr(read), set_ptr(write), 0, t)
}

pub fn select_and_pselect6_on_pipes() -> TestResult {
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let nfds = r.0.max(w.0) + 1;
    let now = sys::Timeval::default();
    let (mut rd, mut wr) = sets(&r, &w);
    check_eq!(
        check_ok!(select(nfds, Some(&mut rd), Some(&mut wr), now)),
        1
    );
    check!(
        !rd.is_set(r.0) && wr.is_set(w.0),
        "only the write end is ready"
    );
    check_ok!(w.write_all(b"x"));
    let (mut rd, mut wr) = sets(&r, &w);
    check_eq!(
        check_ok!(select(nfds, Some(&mut rd), Some(&mut wr), now)),
        2
    );
    check!(rd.is_set(r.0) && wr.is_set(w.0));
    // pselect6: a timespec, and the signal mask argument (no mask: a NULL set).
    let (mut rd, mut wr) = sets(&r, &w);
    let zero = Timespec::default();
    let no_mask = [0usize, 8];
    let (z, m) = (&raw const zero as usize, no_mask.as_ptr() as usize);
    let (rp, wp) = (set_ptr(Some(&mut rd)), set_ptr(Some(&mut wr)));
    check_eq!(check_ok!(sys::pselect6(nfds, rp, wp, 0, z, m)), 2);
    let bad = Timespec {
        tv_sec: -1,
        tv_nsec: 0,
    };
    check_err!(
        sys::pselect6(nfds, rp, wp, 0, &raw const bad as usize, m),
        Errno::EINVAL
    );
    // A wait that times out: nothing to read.
    let mut byte = [0u8; 1];
    check_ok!(sys::read(r.0, byte.as_mut_ptr() as usize, 1));
    let (mut rd, _) = sets(&r, &w);
    let short = sys::Timeval {
        tv_sec: 0,
        tv_usec: 30_000,
    };
    let started = sys::monotonic_ns();
    check_eq!(check_ok!(select(nfds, Some(&mut rd), None, short)), 0);
    let ms = ms_since(started);
    check!(ms >= 30, "select(30 ms) returned after {ms} ms");
    check!(!rd.is_set(r.0));
    // Errors: a negative count, a closed descriptor in a set (a number inside the table: the
    // kernel clips the count to the table's size).
    check_err!(select(usize::MAX, Some(&mut rd), None, now), Errno::EINVAL);
    let freed = check_ok!(sys::dup(w.0));
    check_ok!(sys::close(freed));
    let mut closed = FdSet::default();
    closed.set(freed);
    check_err!(
        select(freed + 1, Some(&mut closed), None, now),
        Errno::EBADF
    );
    // An O_PATH descriptor is open but polls as POLLNVAL: poll says so, and select finds it
    // ready in each set that asks (the exceptional one too).
    let place = check_ok!(Fd::open(c".", sys::O_PATH | sys::O_CLOEXEC, 0));
    let mut entry = [pollfd(&place, POLLIN)];
    check_eq!(check_ok!(poll(&mut entry, 0)), 1);
    check_eq!(entry[0].revents, POLLNVAL);
    let (mut rd, mut wr) = sets(&place, &place);
    let mut ex = rd;
    let (rp, wp, ep) = (
        set_ptr(Some(&mut rd)),
        set_ptr(Some(&mut wr)),
        set_ptr(Some(&mut ex)),
    );
    let mut timeout = now;
    let t = &raw mut timeout as usize;
    check_eq!(check_ok!(sys::select(place.0 + 1, rp, wp, ep, t)), 3);
    check!(rd.is_set(place.0) && wr.is_set(place.0) && ex.is_set(place.0));
    Ok(())
}
