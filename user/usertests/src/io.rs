//! write, writev, read, readv, pread64, pwrite64, fstat, newfstatat, ioctl(TCGETS) on the
//! standard descriptors.
//!
//! What the tests write to standard output is a KTAP diagnostic line (indented when nested),
//! so it does not disturb the report. Reads from fd 0 would wait for input: only the error
//! cases that Linux detects before reading are tested there.

use alloc::format;
use alloc::string::String;

use urt::sys::{self, Errno, Iovec, PAGE_SIZE, Stat};
use urt::{check, check_eq, check_err, check_ok, diag};

use crate::util::{KERNEL_ADDR, Mapping, bad_addrs, ms_since};
use urt::ktap::TestResult;

fn diag_line(text: &str) -> String {
    format!("{}# {text}\n", urt::ktap::indent())
}

pub fn write_stdout() -> TestResult {
    let line = diag_line("write: one line");
    check_eq!(
        check_ok!(sys::write(1, line.as_ptr() as usize, line.len())),
        line.len()
    );
    check_eq!(check_ok!(sys::write(1, line.as_ptr() as usize, 0)), 0);
    // A zero-length write does not look at the buffer.
    check_eq!(check_ok!(sys::write(1, 0, 0)), 0);
    Ok(())
}

pub fn write_errors() -> TestResult {
    let b = b"x";
    check_err!(sys::write(usize::MAX, b.as_ptr() as usize, 1), Errno::EBADF);
    check_err!(sys::write(9999, b.as_ptr() as usize, 1), Errno::EBADF);
    for (what, addr) in bad_addrs() {
        let r = sys::write(1, addr, 16);
        check!(r == Err(Errno::EFAULT), "write({what}): {r:?}");
    }
    let r = sys::write(1, b.as_ptr() as usize, usize::MAX);
    check!(r == Err(Errno::EFAULT), "write(len usize::MAX): {r:?}");
    let none = check_ok!(Mapping::new(1, sys::PROT_NONE));
    check_err!(sys::write(1, none.addr, 16), Errno::EFAULT);
    // The range is checked before the length is cut to what one call moves, and even when
    // nothing is to be written: a range that leaves the user half or wraps is EFAULT.
    check_err!(sys::write(1, b.as_ptr() as usize, 1 << 63), Errno::EFAULT);
    check_err!(sys::write(1, KERNEL_ADDR, 0), Errno::EFAULT);
    check_err!(sys::write(1, usize::MAX - 8, 16), Errno::EFAULT);
    Ok(())
}

/// Bytes of one line of [`diag_lines`]; a page holds a whole number of them.
const DIAG_LINE: usize = 64;

/// Fills `len` bytes at `addr` (a multiple of [`DIAG_LINE`]) with KTAP diagnostic lines of
/// [`DIAG_LINE`] bytes, so that writing them to standard output keeps the report valid.
fn diag_lines(addr: usize, len: usize, what: &str) {
    let mut line = diag_line(what).into_bytes();
    line.pop();
    line.resize(DIAG_LINE - 1, b'.');
    line.push(b'\n');
    for at in (0..len).step_by(DIAG_LINE) {
        // SAFETY: the caller's `len` bytes at `addr` are writable memory.
        unsafe { core::ptr::copy_nonoverlapping(line.as_ptr(), (addr + at) as *mut u8, DIAG_LINE) };
    }
}

/// A write or writev that meets an unmapped page part way returns the bytes before it (a
/// fault at the very start is EFAULT): the same count as Linux's terminals report, for
/// buffers that start on a page.
pub fn write_stops_at_a_fault() -> TestResult {
    let m = check_ok!(Mapping::rw(4));
    diag_lines(m.addr, 3 * PAGE_SIZE, "write up to a fault");
    check_ok!(sys::munmap(m.page(3), PAGE_SIZE));
    check_eq!(check_ok!(sys::write(1, m.addr, m.len)), 3 * PAGE_SIZE);
    check_err!(sys::write(1, m.page(3), PAGE_SIZE), Errno::EFAULT);
    let iov = [
        Iovec {
            base: m.addr,
            len: 2 * PAGE_SIZE,
        },
        Iovec {
            base: m.page(2),
            len: 2 * PAGE_SIZE,
        },
        Iovec {
            base: m.addr,
            len: PAGE_SIZE,
        },
    ];
    check_eq!(
        check_ok!(sys::writev(1, iov.as_ptr() as usize, iov.len())),
        3 * PAGE_SIZE
    );
    let first_faults = [Iovec {
        base: m.page(3),
        len: 16,
    }];
    check_err!(
        sys::writev(1, first_faults.as_ptr() as usize, 1),
        Errno::EFAULT
    );
    Ok(())
}

/// The size of [`write_large_console`]'s one write, in MiB, unless `--param=large-write-mib=N`
/// says otherwise.
const LARGE_WRITE_MIB: usize = 1;

/// One write of 1 MiB (or `--param=large-write-mib=N`) to the console completes and returns its
/// length while two other threads
/// run: one keeps faulting pages in (and, on this project's kernel, making the kernel log a
/// line, through a system call it does not know), and gets through some of its rounds before
/// the large write returns; the other prints lines, which may wait for the large write (Linux
/// lets one write to a terminal through at a time) but all succeed.
pub fn write_large_console() -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    static FAULT_ROUNDS: AtomicUsize = AtomicUsize::new(0);
    static LOG_LINES_ASKED: AtomicUsize = AtomicUsize::new(0);
    DONE.store(false, Ordering::SeqCst);
    FAULT_ROUNDS.store(0, Ordering::SeqCst);
    LOG_LINES_ASKED.store(0, Ordering::SeqCst);
    let mib = match urt::ktap::param("large-write-mib").map(str::parse::<usize>) {
        None => LARGE_WRITE_MIB,
        Some(Ok(mib)) if mib > 0 => mib,
        Some(_) => {
            return Err(urt::ktap::Failure::fail(
                file!(),
                line!(),
                "large-write-mib must be a positive number".into(),
            ));
        }
    };
    let size = mib << 20;
    let buffer = check_ok!(Mapping::rw(size / PAGE_SIZE));
    diag_lines(buffer.addr, buffer.len, "large write");
    let faulter = urt::thread::spawn(|| {
        while !DONE.load(Ordering::SeqCst) {
            let Ok(pages) = Mapping::rw(16) else {
                return false;
            };
            for page in 0..16 {
                pages.fill(page, 0x3c);
            }
            drop(pages);
            if LOG_LINES_ASKED.load(Ordering::SeqCst) < MAX_LOG_LINES {
                let asked = LOG_LINES_ASKED.fetch_add(1, Ordering::SeqCst);
                // SAFETY: an unknown system call does nothing (this kernel logs a line the
                // first time a number comes).
                let _ = unsafe { sys::raw(FIRST_UNKNOWN_SYSCALL + asked, &[]) };
            }
            FAULT_ROUNDS.fetch_add(1, Ordering::SeqCst);
        }
        true
    });
    let printer = urt::thread::spawn(|| {
        (1..=8).all(|n| {
            let line = diag_line(&format!("large write: printer line {n}"));
            sys::write(1, line.as_ptr() as usize, line.len()) == Ok(line.len())
        })
    });
    let start_ns = sys::monotonic_ns();
    let written = sys::write(1, buffer.addr, buffer.len);
    let write_ms = ms_since(start_ns);
    let rounds_during_write = FAULT_ROUNDS.load(Ordering::SeqCst);
    DONE.store(true, Ordering::SeqCst);
    let faulter_ok = faulter.join();
    let printer_ok = printer.join();
    check_eq!(written, Ok(size));
    check!(faulter_ok, "the faulting thread's mmap failed");
    check!(printer_ok, "a write of the printing thread failed");
    diag!(
        "large write: {mib} MiB in {write_ms} ms; the faulting thread made {rounds_during_write} rounds during it"
    );
    // `cargo xtask test` finds every one of these kernel log lines whole in the serial log.
    diag!(
        "large write: asked the kernel for {} log lines (system calls from {FIRST_UNKNOWN_SYSCALL})",
        LOG_LINES_ASKED.load(Ordering::SeqCst)
    );
    // A console write of a megabyte takes seconds; run natively into a file it takes
    // milliseconds, too short to say anything about the other threads.
    check!(
        rounds_during_write > 0 || write_ms < 1000,
        "the faulting thread made no progress during a write of {write_ms} ms"
    );
    Ok(())
}

/// The first of [`MAX_LOG_LINES`] system call numbers no kernel knows (ENOSYS), which no other
/// test calls: this project's kernel logs a line the first time each comes.
const FIRST_UNKNOWN_SYSCALL: usize = 896;
/// How many kernel log lines [`write_large_console`] asks for during its write.
const MAX_LOG_LINES: usize = 64;

pub fn writev_gathers() -> TestResult {
    let head = format!("{}# writev: ", urt::ktap::indent());
    let parts: [&[u8]; 4] = [head.as_bytes(), b"one ", b"", b"line\n"];
    let iov = parts.map(|p| Iovec {
        base: p.as_ptr() as usize,
        len: p.len(),
    });
    let total: usize = parts.iter().map(|p| p.len()).sum();
    check_eq!(
        check_ok!(sys::writev(1, iov.as_ptr() as usize, iov.len())),
        total
    );
    check_eq!(check_ok!(sys::writev(1, iov.as_ptr() as usize, 0)), 0);
    // A NULL base with zero length is fine.
    let empty = [Iovec { base: 0, len: 0 }];
    check_eq!(check_ok!(sys::writev(1, empty.as_ptr() as usize, 1)), 0);
    Ok(())
}

pub fn writev_errors() -> TestResult {
    let b = b"x";
    let one = [Iovec {
        base: b.as_ptr() as usize,
        len: 1,
    }];
    let p = one.as_ptr() as usize;
    check_err!(sys::writev(9999, p, 1), Errno::EBADF);
    check_err!(sys::writev(1, p, 1025), Errno::EINVAL);
    check_err!(sys::writev(1, p, usize::MAX), Errno::EINVAL);
    for (what, addr) in bad_addrs() {
        let r = sys::writev(1, addr, 1);
        check!(r == Err(Errno::EFAULT), "writev(iov = {what}): {r:?}");
        let bad = [Iovec { base: addr, len: 8 }];
        let r = sys::writev(1, bad.as_ptr() as usize, 1);
        check!(r == Err(Errno::EFAULT), "writev(iov_base = {what}): {r:?}");
    }
    let huge = [Iovec {
        base: b.as_ptr() as usize,
        len: usize::MAX,
    }];
    check_err!(sys::writev(1, huge.as_ptr() as usize, 1), Errno::EINVAL);
    Ok(())
}

pub fn read_errors() -> TestResult {
    let mut buf = [0u8; 16];
    let p = buf.as_mut_ptr() as usize;
    check_err!(sys::read(usize::MAX, p, 16), Errno::EBADF);
    check_err!(sys::read(9999, p, 16), Errno::EBADF);
    // Refused before anything is read (fd 0 would otherwise wait for input).
    check_err!(sys::read(0, KERNEL_ADDR, 16), Errno::EFAULT);
    check_err!(sys::read(0, p, usize::MAX), Errno::EFAULT);
    check_err!(sys::read(0, p, 1 << 63), Errno::EFAULT);
    check_err!(sys::read(0, KERNEL_ADDR, 0), Errno::EFAULT);
    check_eq!(check_ok!(sys::read(0, p, 0)), 0);
    Ok(())
}

/// The console, like every terminal, cannot be read or written at an offset: ESPIPE, before
/// the buffer is looked at; a negative offset is EINVAL first, an unknown fd EBADF. (Run
/// natively with a descriptor redirected to a file, which can seek, the ESPIPE checks of
/// that descriptor do not apply and are skipped.)
pub fn pread_pwrite_console() -> TestResult {
    let mut buf = [0u8; 16];
    let p = buf.as_mut_ptr() as usize;
    let unseekable = |fd: usize| {
        let r = sys::lseek(fd, 0, sys::SEEK_CUR);
        if r != Err(Errno::ESPIPE) {
            diag!("fd {fd} can seek here (lseek: {r:?}): not a terminal");
        }
        r == Err(Errno::ESPIPE)
    };
    if unseekable(0) {
        check_err!(sys::pread64(0, p, 16, 0), Errno::ESPIPE);
        check_err!(sys::pread64(0, p, usize::MAX, 0), Errno::ESPIPE);
    }
    if unseekable(1) {
        check_err!(sys::pwrite64(1, p, 16, 0), Errno::ESPIPE);
        check_err!(sys::pwrite64(1, KERNEL_ADDR, 16, 0), Errno::ESPIPE);
    }
    check_err!(sys::pread64(9999, p, 16, 0), Errno::EBADF);
    check_err!(sys::pread64(0, p, 16, usize::MAX), Errno::EINVAL);
    check_err!(sys::pwrite64(9999, p, 16, 1 << 63), Errno::EINVAL);
    Ok(())
}

pub fn readv_errors() -> TestResult {
    let mut buf = [0u8; 16];
    let one = [Iovec {
        base: buf.as_mut_ptr() as usize,
        len: 16,
    }];
    let p = one.as_ptr() as usize;
    check_err!(sys::readv(9999, p, 1), Errno::EBADF);
    check_err!(sys::readv(0, p, 1025), Errno::EINVAL);
    check_err!(sys::readv(0, p, usize::MAX), Errno::EINVAL);
    for (what, addr) in bad_addrs() {
        let r = sys::readv(0, addr, 1);
        check!(r == Err(Errno::EFAULT), "readv(iov = {what}): {r:?}");
    }
    let kernel = [Iovec {
        base: KERNEL_ADDR,
        len: 16,
    }];
    check_err!(sys::readv(0, kernel.as_ptr() as usize, 1), Errno::EFAULT);
    // Every buffer is checked before anything is read, empty ones too.
    let later_bad = [
        Iovec {
            base: buf.as_mut_ptr() as usize,
            len: 16,
        },
        Iovec {
            base: KERNEL_ADDR,
            len: 0,
        },
    ];
    check_err!(sys::readv(0, later_bad.as_ptr() as usize, 2), Errno::EFAULT);
    // A negative length anywhere is EINVAL, even after a bad buffer.
    let negative_later = [
        Iovec {
            base: KERNEL_ADDR,
            len: 16,
        },
        Iovec {
            base: buf.as_mut_ptr() as usize,
            len: usize::MAX,
        },
    ];
    check_err!(
        sys::readv(0, negative_later.as_ptr() as usize, 2),
        Errno::EINVAL
    );
    Ok(())
}

fn kind(mode: u32) -> &'static str {
    match mode & sys::S_IFMT {
        sys::S_IFCHR => "char device",
        sys::S_IFIFO => "fifo",
        sys::S_IFREG => "regular file",
        0o140000 => "socket",
        0o060000 => "block device",
        sys::S_IFDIR => "directory",
        _ => "?",
    }
}

pub fn fstat_std_fds() -> TestResult {
    for fd in 0..3 {
        let mut st = Stat::default();
        check_eq!(check_ok!(sys::fstat(fd, &raw mut st as usize)), 0);
        check!(
            st.st_mode & sys::S_IFMT != 0,
            "fd {fd}: no file type in {:#o}",
            st.st_mode
        );
        diag!("fd {fd}: {}, mode {:#o}", kind(st.st_mode), st.st_mode);
    }
    Ok(())
}

pub fn fstat_errors() -> TestResult {
    let mut st = Stat::default();
    check_err!(sys::fstat(9999, &raw mut st as usize), Errno::EBADF);
    check_err!(sys::fstat(usize::MAX, &raw mut st as usize), Errno::EBADF);
    for (what, addr) in bad_addrs() {
        let r = sys::fstat(1, addr);
        check!(r == Err(Errno::EFAULT), "fstat({what}): {r:?}");
    }
    Ok(())
}

pub fn newfstatat_fds_and_paths() -> TestResult {
    let mut a = Stat::default();
    let mut b = Stat::default();
    check_ok!(sys::fstat(1, &raw mut a as usize));
    check_ok!(sys::newfstatat(
        1,
        c"".as_ptr() as usize,
        &raw mut b as usize,
        sys::AT_EMPTY_PATH
    ));
    check_eq!(
        (a.st_dev, a.st_ino, a.st_mode, a.st_rdev),
        (b.st_dev, b.st_ino, b.st_mode, b.st_rdev)
    );
    check_err!(
        sys::newfstatat(
            sys::AT_FDCWD,
            c"/nonexistent-usertests".as_ptr() as usize,
            &raw mut b as usize,
            0
        ),
        Errno::ENOENT
    );
    // An empty path without AT_EMPTY_PATH.
    check_err!(
        sys::newfstatat(1, c"".as_ptr() as usize, &raw mut b as usize, 0),
        Errno::ENOENT
    );
    check_err!(
        sys::newfstatat(sys::AT_FDCWD, KERNEL_ADDR, &raw mut b as usize, 0),
        Errno::EFAULT
    );
    check_err!(
        sys::newfstatat(1, c"".as_ptr() as usize, KERNEL_ADDR, sys::AT_EMPTY_PATH),
        Errno::EFAULT
    );
    Ok(())
}

/// The standard descriptors of this program as init (Linux's, or one the project's kernel
/// started) are the console, a terminal: TCGETS succeeds (isatty). Run from a shell, they may
/// be files or pipes: ENOTTY.
pub fn ioctl_tcgets() -> TestResult {
    let mut termios = [0u8; 60];
    for fd in 0..3 {
        match sys::ioctl(fd, sys::TCGETS, termios.as_mut_ptr() as usize) {
            Ok(_) => check_err!(sys::ioctl(fd, sys::TCGETS, KERNEL_ADDR), Errno::EFAULT),
            Err(Errno::ENOTTY) if !crate::process::is_top() => {
                diag!("fd {fd}: TCGETS: ENOTTY (not a terminal)")
            }
            Err(e) => check!(false, "ioctl(fd {fd}, TCGETS): {e:?}, expected success"),
        }
    }
    check_err!(
        sys::ioctl(9999, sys::TCGETS, termios.as_mut_ptr() as usize),
        Errno::EBADF
    );
    Ok(())
}
