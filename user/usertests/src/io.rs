//! write, writev, read, readv, fstat, newfstatat, ioctl(TCGETS) on the standard descriptors.
//!
//! What the tests write to standard output is a KTAP diagnostic line (indented when nested),
//! so it does not disturb the report. Reads from fd 0 would wait for input: only the error
//! cases that Linux detects before reading are tested there.

use alloc::format;
use alloc::string::String;

use urt::sys::{self, Errno, Iovec, Stat};
use urt::{check, check_eq, check_err, check_ok, diag};

use crate::util::{KERNEL_ADDR, Mapping, bad_addrs};
use urt::ktap::TestResult;

const S_IFMT: u32 = 0o170000;

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
    Ok(())
}

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
    Ok(())
}

fn kind(mode: u32) -> &'static str {
    match mode & S_IFMT {
        0o020000 => "char device",
        0o010000 => "fifo",
        0o100000 => "regular file",
        0o140000 => "socket",
        0o060000 => "block device",
        0o040000 => "directory",
        _ => "?",
    }
}

pub fn fstat_std_fds() -> TestResult {
    for fd in 0..3 {
        let mut st = Stat::default();
        check_eq!(check_ok!(sys::fstat(fd, &raw mut st as usize)), 0);
        check!(
            st.st_mode & S_IFMT != 0,
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

pub fn ioctl_tcgets() -> TestResult {
    let mut termios = [0u8; 60];
    for fd in 0..3 {
        match sys::ioctl(fd, sys::TCGETS, termios.as_mut_ptr() as usize) {
            Ok(_) => {
                diag!("fd {fd}: TCGETS succeeds (a terminal)");
                check_err!(sys::ioctl(fd, sys::TCGETS, KERNEL_ADDR), Errno::EFAULT);
            }
            Err(Errno::ENOTTY) => diag!("fd {fd}: TCGETS: ENOTTY (not a terminal)"),
            Err(e) => check!(
                false,
                "ioctl(fd {fd}, TCGETS): {e:?}, expected success or ENOTTY"
            ),
        }
    }
    check_err!(
        sys::ioctl(9999, sys::TCGETS, termios.as_mut_ptr() as usize),
        Errno::EBADF
    );
    Ok(())
}
