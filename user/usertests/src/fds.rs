//! The descriptor table: dup, dup2, dup3, fcntl (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD,
//! F_GETFL, F_SETFL), close_range; and the table across processes: fork copies it (the open
//! files, offsets included, are shared), clone with CLONE_FILES shares the table itself,
//! execve closes the O_CLOEXEC descriptors; execve of a `#!` script runs its interpreter.
//!
//! Descriptor numbers the tests pick themselves (40 and up) are closed again before the test
//! ends, also when it fails ([`Fd`]).

use core::sync::atomic::Ordering::SeqCst;

use urt::ktap::TestResult;
use urt::sys::{self, AT_FDCWD, Errno};
use urt::{check, check_eq, check_err, check_ok, skip};

use crate::process::{Child, End, Shared, Strings, clone_fork, faulter};
use crate::util::{Fd, Scratch, is_open, read_file};

const RW: usize = sys::O_RDWR | sys::O_CLOEXEC;
/// A descriptor number no table reaches (Linux's largest `nr_open` is 1 << 20).
const BEYOND_LIMIT: usize = 1 << 20;

/// A file `name` in `s` holding `data`, open read-write (with O_CLOEXEC).
fn open_file(s: &Scratch, name: &str, data: &[u8]) -> Result<Fd, Errno> {
    Fd::open(&s.file(name, data)?, RW, 0)
}

pub fn dup_takes_the_lowest_free() -> TestResult {
    let s = check_ok!(Scratch::new("dup"));
    let fd = check_ok!(open_file(&s, "f", b"abcdef"));
    let low = check_ok!(sys::dup(fd.0));
    check_ok!(sys::close(low));
    let d = Fd(check_ok!(sys::dup(fd.0)));
    check_eq!(d.0, low, "dup reuses the lowest free number");
    // One open file: the offset and the status flags are shared, FD_CLOEXEC is not.
    let mut buf = [0u8; 2];
    check_eq!(check_ok!(sys::read(fd.0, buf.as_mut_ptr() as usize, 2)), 2);
    check_eq!(check_ok!(sys::lseek(d.0, 0, sys::SEEK_CUR)), 2);
    check_ok!(sys::fcntl(d.0, sys::F_SETFL, sys::O_APPEND));
    check!(check_ok!(sys::fcntl(fd.0, sys::F_GETFL, 0)) & sys::O_APPEND != 0);
    check_eq!(check_ok!(fd.fd_flags()), sys::FD_CLOEXEC);
    check_eq!(check_ok!(d.fd_flags()), 0);
    check_err!(sys::dup(9999), Errno::EBADF);
    Ok(())
}

pub fn dup2_and_dup3() -> TestResult {
    let s = check_ok!(Scratch::new("dup2"));
    let fd = check_ok!(open_file(&s, "f", b"f"));
    let other = check_ok!(open_file(&s, "g", b"g"));
    check_eq!(check_ok!(sys::dup2(fd.0, fd.0)), fd.0, "dup2 onto itself");
    check_err!(sys::dup2(9999, fd.0), Errno::EBADF);
    check_err!(sys::dup2(fd.0, BEYOND_LIMIT), Errno::EBADF);
    // An open target is closed first, silently.
    check_eq!(check_ok!(sys::dup2(fd.0, other.0)), other.0);
    check_eq!(check_ok!(other.stat()).st_ino, check_ok!(fd.stat()).st_ino);
    check_eq!(check_ok!(other.fd_flags()), 0, "dup2 clears FD_CLOEXEC");
    let target = Fd(40);
    check_eq!(
        check_ok!(sys::dup3(fd.0, target.0, sys::O_CLOEXEC)),
        target.0
    );
    check_eq!(check_ok!(target.fd_flags()), sys::FD_CLOEXEC);
    check_err!(sys::dup3(fd.0, fd.0, 0), Errno::EINVAL);
    check_err!(sys::dup3(fd.0, target.0, 0x1), Errno::EINVAL);
    check_err!(sys::dup3(9999, target.0, 0), Errno::EBADF);
    Ok(())
}

pub fn fcntl_dupfd() -> TestResult {
    let s = check_ok!(Scratch::new("dupfd"));
    let fd = check_ok!(open_file(&s, "f", b""));
    let first = Fd(check_ok!(sys::fcntl(fd.0, sys::F_DUPFD, 40)));
    check!(first.0 >= 40, "F_DUPFD 40 gave {}", first.0);
    let second = Fd(check_ok!(sys::fcntl(fd.0, sys::F_DUPFD, first.0)));
    check_eq!(
        second.0,
        first.0 + 1,
        "the lowest free number from the argument on"
    );
    check_eq!(check_ok!(second.fd_flags()), 0);
    let cloexec = Fd(check_ok!(sys::fcntl(fd.0, sys::F_DUPFD_CLOEXEC, 40)));
    check!(cloexec.0 > second.0);
    check_eq!(check_ok!(cloexec.fd_flags()), sys::FD_CLOEXEC);
    drop(first);
    let again = Fd(check_ok!(sys::fcntl(fd.0, sys::F_DUPFD, 40)));
    check_eq!(again.0, second.0 - 1, "a freed number is taken again");
    check_err!(sys::fcntl(fd.0, sys::F_DUPFD, BEYOND_LIMIT), Errno::EINVAL);
    check_err!(sys::fcntl(fd.0, sys::F_DUPFD, usize::MAX), Errno::EINVAL);
    check_err!(sys::fcntl(9999, sys::F_DUPFD, 0), Errno::EBADF);
    Ok(())
}

pub fn fcntl_descriptor_flags() -> TestResult {
    let s = check_ok!(Scratch::new("getfd"));
    let path = check_ok!(s.file("f", b""));
    let plain = check_ok!(Fd::open(&path, sys::O_RDONLY, 0));
    check_eq!(check_ok!(plain.fd_flags()), 0);
    check_ok!(sys::fcntl(plain.0, sys::F_SETFD, sys::FD_CLOEXEC));
    check_eq!(check_ok!(plain.fd_flags()), sys::FD_CLOEXEC);
    check_ok!(sys::fcntl(plain.0, sys::F_SETFD, 0));
    check_eq!(check_ok!(plain.fd_flags()), 0);
    let cloexec = check_ok!(Fd::open(&path, sys::O_RDONLY | sys::O_CLOEXEC, 0));
    check_eq!(check_ok!(cloexec.fd_flags()), sys::FD_CLOEXEC);
    check_err!(sys::fcntl(9999, sys::F_GETFD, 0), Errno::EBADF);
    check_err!(sys::fcntl(plain.0, 9999, 0), Errno::EINVAL);
    Ok(())
}

pub fn fcntl_status_flags() -> TestResult {
    let s = check_ok!(Scratch::new("getfl"));
    let path = check_ok!(s.file("f", b"abc"));
    let fd = check_ok!(Fd::open(&path, RW, 0));
    let flags = check_ok!(sys::fcntl(fd.0, sys::F_GETFL, 0));
    check_eq!(flags & sys::O_ACCMODE, sys::O_RDWR);
    check_eq!(flags & (sys::O_APPEND | sys::O_NONBLOCK), 0);
    let wo = check_ok!(Fd::open(&path, sys::O_WRONLY | sys::O_CLOEXEC, 0));
    check_eq!(
        check_ok!(sys::fcntl(wo.0, sys::F_GETFL, 0)) & sys::O_ACCMODE,
        sys::O_WRONLY
    );
    // F_SETFL changes O_APPEND and O_NONBLOCK; the access mode stays.
    check_ok!(sys::fcntl(
        fd.0,
        sys::F_SETFL,
        sys::O_NONBLOCK | sys::O_WRONLY
    ));
    let flags = check_ok!(sys::fcntl(fd.0, sys::F_GETFL, 0));
    check_eq!(flags & sys::O_ACCMODE, sys::O_RDWR);
    check!(
        flags & sys::O_NONBLOCK != 0,
        "O_NONBLOCK not set: {flags:#o}"
    );
    check_ok!(sys::fcntl(fd.0, sys::F_SETFL, sys::O_APPEND));
    let flags = check_ok!(sys::fcntl(fd.0, sys::F_GETFL, 0));
    check_eq!(flags & (sys::O_APPEND | sys::O_NONBLOCK), sys::O_APPEND);
    check_ok!(sys::lseek(fd.0, 0, sys::SEEK_SET));
    check_ok!(fd.write_all(b"d"));
    check_eq!(
        check_ok!(read_file(&path)),
        b"abcd",
        "O_APPEND set by F_SETFL appends"
    );
    check_err!(sys::fcntl(9999, sys::F_GETFL, 0), Errno::EBADF);
    Ok(())
}

pub fn close_range_closes_and_marks() -> TestResult {
    let s = check_ok!(Scratch::new("close-range"));
    let fd = check_ok!(open_file(&s, "f", b""));
    let fds: alloc::vec::Vec<Fd> = (100..106).map(Fd).collect();
    for d in &fds {
        check_ok!(sys::dup2(fd.0, d.0));
    }
    check_ok!(sys::close_range(101, 103, 0));
    let open: alloc::vec::Vec<bool> = fds.iter().map(|d| is_open(d.0)).collect();
    check_eq!(open, [true, false, false, false, true, true]);
    check_ok!(sys::close_range(
        104,
        u32::MAX as usize,
        sys::CLOSE_RANGE_CLOEXEC
    ));
    check_eq!(check_ok!(fds[4].fd_flags()), sys::FD_CLOEXEC);
    check_eq!(check_ok!(fds[5].fd_flags()), sys::FD_CLOEXEC);
    check_eq!(check_ok!(fds[0].fd_flags()), 0);
    // A range with nothing open is fine; a reversed one or an unknown flag is not.
    check_ok!(sys::close_range(1000, 2000, 0));
    check_err!(sys::close_range(5, 4, 0), Errno::EINVAL);
    check_err!(sys::close_range(100, 100, 0x8), Errno::EINVAL);
    check!(is_open(100), "a failed close_range closed something");
    Ok(())
}

// ---- across processes ----

pub fn fork_shares_open_files() -> TestResult {
    let s = check_ok!(Scratch::new("fork-fds"));
    let path = s.path("f");
    let fd = check_ok!(Fd::open(&path, RW | sys::O_CREAT, 0o644));
    // The child has the parent's descriptors; its writes move the offset they share.
    let mut child = check_ok!(Child::fork(|| {
        let written = sys::write(fd.0, c"child".as_ptr() as usize, 5);
        let closed = sys::close(fd.0);
        if written == Ok(5) && closed.is_ok() {
            0
        } else {
            1
        }
    }));
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check!(
        is_open(fd.0),
        "the child's close closed the parent's descriptor"
    );
    check_eq!(
        check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)),
        5,
        "the shared offset"
    );
    check_ok!(fd.write_all(b"parent"));
    check_eq!(check_ok!(read_file(&path)), b"childparent");
    Ok(())
}

/// A child made by `clone(flags | SIGCHLD)` (no CLONE_VM: it runs on a copy of the memory)
/// that runs `body` and exits with what it returns.
fn clone_child(flags: usize, body: impl FnOnce() -> i32) -> Result<Child, Errno> {
    let pid = clone_fork(flags | sys::SIGCHLD, 0, 0)?;
    if pid == 0 {
        sys::exit_group(body());
    }
    Ok(Child::of(pid))
}

/// In a clone child with `flags`: opens a file (its number goes to the shared word 0), then
/// closes `victim`. Returns (whether `victim` is still open here, whether the child's new
/// descriptor is open here).
fn child_opens_and_closes(
    s: &Scratch,
    flags: usize,
    victim: usize,
) -> Result<(bool, bool), urt::ktap::Failure> {
    let shared = check_ok!(Shared::new());
    let path = s.path("f");
    let mut child = check_ok!(clone_child(flags, || {
        match sys::openat(AT_FDCWD, path.as_ptr() as usize, RW, 0) {
            Ok(new) => shared.word(0).store(new, SeqCst),
            Err(_) => return 1,
        }
        if sys::close(victim).is_ok() { 0 } else { 2 }
    }));
    check_eq!(check_ok!(child.end()), End::Exited(0));
    let new = shared.word(0).load(SeqCst);
    Ok((is_open(victim), is_open(new)))
}

pub fn clone_files_shares_the_table() -> TestResult {
    let s = check_ok!(Scratch::new("clone-files"));
    let victim = check_ok!(open_file(&s, "f", b""));
    let (victim_open, new_open) = child_opens_and_closes(&s, sys::CLONE_FILES, victim.0)?;
    check!(
        !victim_open,
        "CLONE_FILES: the child's close did not reach the parent"
    );
    check!(
        new_open,
        "CLONE_FILES: the child's open did not reach the parent"
    );
    Ok(())
}

pub fn clone_without_files_copies_the_table() -> TestResult {
    let s = check_ok!(Scratch::new("clone-nofiles"));
    let victim = check_ok!(open_file(&s, "f", b""));
    let (victim_open, new_open) = child_opens_and_closes(&s, 0, victim.0)?;
    check!(
        victim_open,
        "without CLONE_FILES: the child's close reached the parent"
    );
    check!(
        !new_open,
        "without CLONE_FILES: the child's open reached the parent"
    );
    Ok(())
}

pub fn execve_closes_cloexec_descriptors() -> TestResult {
    let Some(faulter) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let s = check_ok!(Scratch::new("cloexec"));
    let path = check_ok!(s.file("f", b""));
    let kept = check_ok!(Fd::open(&path, sys::O_RDONLY, 0));
    let closed = check_ok!(Fd::open(&path, sys::O_RDONLY | sys::O_CLOEXEC, 0));
    let marked_later = check_ok!(Fd::open(&path, sys::O_RDONLY, 0));
    check_ok!(sys::fcntl(marked_later.0, sys::F_SETFD, sys::FD_CLOEXEC));
    let dup3_cloexec = Fd(check_ok!(sys::dup3(kept.0, 50, sys::O_CLOEXEC)));
    let dup_of_cloexec = Fd(check_ok!(sys::fcntl(closed.0, sys::F_DUPFD, 60)));
    let numbers: alloc::vec::Vec<alloc::string::String> = [
        &kept,
        &closed,
        &marked_later,
        &dup3_cloexec,
        &dup_of_cloexec,
    ]
    .iter()
    .map(|fd| alloc::format!("{}", fd.0))
    .collect();
    let mut argv = alloc::vec!["faulter", "fds"];
    argv.extend(numbers.iter().map(|n| n.as_str()));
    let argv = Strings::new(&argv);
    let mut child = check_ok!(Child::fork(|| {
        let _ = sys::execve(faulter.as_ptr() as usize, argv.ptr(), 0);
        127
    }));
    // Open after exec: the first (no flag) and the last (a dup does not inherit FD_CLOEXEC).
    check_eq!(
        check_ok!(child.end()),
        End::Exited(1 | 16),
        "bits of the descriptors open after execve (faulter fds)"
    );
    Ok(())
}

pub fn execve_runs_scripts_through_their_interpreter() -> TestResult {
    let Some(faulter) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let faulter = faulter.to_str().unwrap_or("/bin/faulter");
    let s = check_ok!(Scratch::new("script"));
    // `faulter argc` exits with its argument count: here the interpreter, its argument, the
    // script's path and the two arguments after the script's argv[0], which is dropped.
    let line = alloc::format!("#!{faulter}  argc  \necho not run\n");
    let script = check_ok!(s.file("script", line.as_bytes()));
    let exec = |path: &core::ffi::CStr| -> Result<End, Errno> {
        let argv = Strings::new(&["ignored", "a", "b"]);
        let mut child = Child::fork(|| {
            let error = sys::execve(path.as_ptr() as usize, argv.ptr(), 0).err();
            100 + error.map_or(0, |e| e.0)
        })?;
        child.end()
    };
    // Not executable yet.
    check_eq!(check_ok!(exec(&script)), End::Exited(100 + Errno::EACCES.0));
    check_ok!(sys::fchmodat(AT_FDCWD, script.as_ptr() as usize, 0o755));
    check_eq!(check_ok!(exec(&script)), End::Exited(5));
    // A script whose interpreter is missing: ENOENT, as for the program itself.
    let orphan = check_ok!(s.file("orphan", b"#!/no/such/interpreter\n"));
    check_ok!(sys::fchmodat(AT_FDCWD, orphan.as_ptr() as usize, 0o755));
    check_eq!(check_ok!(exec(&orphan)), End::Exited(100 + Errno::ENOENT.0));
    Ok(())
}

pub fn execve_relative_paths_and_directory_descriptors() -> TestResult {
    let Some(faulter) = faulter() else {
        skip!("{}", crate::procs::not_found("faulter"));
    };
    let full = faulter.to_str().unwrap_or("/bin/faulter");
    let (directory, file) = full.rsplit_once('/').unwrap_or(("/bin", "faulter"));
    let directory = crate::util::cstring(if directory.is_empty() { "/" } else { directory });
    let file = crate::util::cstring(file);
    let dot_file = crate::util::cstring(&alloc::format!("./{}", file.to_str().unwrap_or("")));
    let argv = Strings::new(&["faulter", "exit", "7"]);
    let run = |body: &dyn Fn() -> Result<usize, Errno>| -> Result<End, Errno> {
        let mut child = Child::fork(|| 100 + body().err().map_or(0, |e| e.0))?;
        child.end()
    };
    // A path relative to the working directory.
    let from_cwd = run(&|| {
        sys::chdir(directory.as_ptr() as usize)?;
        sys::execve(dot_file.as_ptr() as usize, argv.ptr(), 0)
    });
    check_eq!(
        check_ok!(from_cwd),
        End::Exited(7),
        "execve of ./faulter from its directory"
    );
    // Relative to a directory descriptor, and the file a descriptor is open on.
    let dir = check_ok!(Fd::open(
        &directory,
        sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC,
        0
    ));
    let from_dirfd = run(&|| sys::execveat(dir.0, file.as_ptr() as usize, argv.ptr(), 0, 0));
    check_eq!(
        check_ok!(from_dirfd),
        End::Exited(7),
        "execveat relative to a directory"
    );
    let program = check_ok!(Fd::open(&faulter, sys::O_RDONLY | sys::O_CLOEXEC, 0));
    let empty = c"";
    let from_fd = run(&|| {
        sys::execveat(
            program.0,
            empty.as_ptr() as usize,
            argv.ptr(),
            0,
            sys::AT_EMPTY_PATH,
        )
    });
    check_eq!(
        check_ok!(from_fd),
        End::Exited(7),
        "execveat(fd, \"\", AT_EMPTY_PATH)"
    );
    // A file descriptor used as the directory of a relative path.
    let not_dir = run(&|| sys::execveat(program.0, file.as_ptr() as usize, argv.ptr(), 0, 0));
    check_eq!(check_ok!(not_dir), End::Exited(100 + Errno::ENOTDIR.0));
    Ok(())
}
