//! The calls that take a path, against Linux's prototypes and order of checks: flags, modes
//! and descriptors are C `int`s (the upper half of the register is not looked at); the path is
//! copied in before the flags of the stat family are checked; a name's length is checked where
//! the walk reaches it; `open`'s flags as Linux builds them (`O_TMPFILE` included); `chown` as
//! root; `execve` opens the file before it reads its arguments; `RENAME_WHITEOUT` in tmpfs.

use alloc::string::String;

use urt::ktap::TestResult;
use urt::sys::{self, AT_FDCWD, Errno, O_PATH, Stat, nr};
use urt::{check_eq, check_err, check_ok};

use crate::util::{Fd, KERNEL_ADDR, Scratch, Umask, stat};

/// Bits in the upper half of a register that an `int` argument leaves out.
const HIGH: usize = 1 << 40;
const ACCESS: usize = 21;
const CHDIR: usize = 80;
const RENAME: usize = 82;
const CHOWN: usize = 92;
const LCHOWN: usize = 94;
const FCHOWNAT: usize = 260;
const UTIMENSAT: usize = 280;
const EXECVE: usize = 59;
const FIOCLEX: usize = 0x5451;
const O_TMPFILE: usize = 0o2000_0000 | sys::O_DIRECTORY;
const MNT_FORCE: usize = 1;
const MNT_EXPIRE: usize = 4;
const UTIME_OMIT: u64 = (1 << 30) - 2;

/// A raw call with up to five arguments.
fn call(number: usize, a: [usize; 5]) -> sys::SysResult {
    // SAFETY: the tests pass only their own buffers and paths, or addresses the kernel must
    // refuse.
    sys::decode(unsafe { sys::syscall6(number, a[0], a[1], a[2], a[3], a[4], 0) })
}

fn at(path: &core::ffi::CStr) -> usize {
    path.as_ptr() as usize
}

/// A name longer than `NAME_MAX`.
fn long_name() -> String {
    "n".repeat(300)
}

pub fn path_calls_take_int_flags() -> TestResult {
    let s = check_ok!(Scratch::new("intflags"));
    let f = check_ok!(s.file("f", b"data"));
    let dir = check_ok!(Fd::open(
        &check_ok!(s.subdir("d")),
        sys::O_DIRECTORY | sys::O_CLOEXEC,
        0
    ));
    let mut st = Stat::default();
    let buf = &mut st as *mut Stat as usize;
    check_ok!(call(ACCESS, [at(&f), HIGH | 6, 0, 0, 0]));
    check_ok!(call(nr::FACCESSAT, [AT_FDCWD, at(&f), HIGH | 4, 0, 0]));
    check_ok!(call(nr::FACCESSAT2, [AT_FDCWD, at(&f), HIGH, HIGH, 0]));
    check_ok!(call(nr::NEWFSTATAT, [AT_FDCWD, at(&f), buf, HIGH, 0]));
    check_ok!(call(
        FCHOWNAT,
        [AT_FDCWD, at(&f), usize::MAX, usize::MAX, HIGH]
    ));
    check_ok!(call(UTIMENSAT, [AT_FDCWD, at(&f), 0, HIGH, 0]));
    let g = s.path("g");
    check_ok!(call(nr::LINKAT, [AT_FDCWD, at(&f), AT_FDCWD, at(&g), HIGH]));
    let h = s.path("h");
    check_ok!(call(
        nr::RENAMEAT2,
        [AT_FDCWD, at(&g), AT_FDCWD, at(&h), HIGH]
    ));
    check_ok!(call(nr::UNLINKAT, [AT_FDCWD, at(&h), HIGH, 0, 0]));
    // A descriptor is an `int` too.
    check_ok!(s.file("d/x", b""));
    check_ok!(call(nr::NEWFSTATAT, [HIGH | dir.0, at(c"x"), buf, 0, 0]));
    // The known bits of a flags word are still checked.
    check_err!(
        call(nr::NEWFSTATAT, [AT_FDCWD, at(&f), buf, HIGH | 1, 0]),
        Errno::EINVAL
    );
    // A directory is not run (EACCES), whatever the upper half of the flags says.
    check_err!(
        call(nr::EXECVEAT, [AT_FDCWD, at(&s.path("d")), 0, 0, HIGH]),
        Errno::EACCES
    );
    Ok(())
}

pub fn path_calls_check_in_linux_order() -> TestResult {
    let s = check_ok!(Scratch::new("order"));
    let f = check_ok!(s.file("f", b"data"));
    let missing = s.path("missing");
    let mut st = Stat::default();
    let buf = &mut st as *mut Stat as usize;
    // rename's traps come before the kinds are compared: a target that is an ancestor of the
    // source is ENOTEMPTY (its parent included, which once deadlocked the kernel), a
    // directory moved below itself EINVAL.
    check_ok!(s.subdir("up"));
    check_ok!(s.subdir("up/dir"));
    check_ok!(s.file("up/dir/file", b""));
    let (up, dir, file) = (s.path("up"), s.path("up/dir"), s.path("up/dir/file"));
    check_err!(call(RENAME, [at(&dir), at(&up), 0, 0, 0]), Errno::ENOTEMPTY);
    check_err!(
        call(RENAME, [at(&file), at(&up), 0, 0, 0]),
        Errno::ENOTEMPTY
    );
    let below = s.path("up/dir/below");
    check_err!(call(RENAME, [at(&up), at(&below), 0, 0, 0]), Errno::EINVAL);
    check_err!(call(RENAME, [at(&up), at(&file), 0, 0, 0]), Errno::EINVAL);
    // A new name with a trailing slash asks for a directory: a symbolic or hard link there is
    // ENOENT when the name is free, EEXIST when it is taken.
    let free_dir = s.path("free/");
    let taken_dir = s.path("f/");
    check_err!(
        sys::symlinkat(at(&f), AT_FDCWD, at(&free_dir)),
        Errno::ENOENT
    );
    check_err!(
        sys::symlinkat(at(&f), AT_FDCWD, at(&taken_dir)),
        Errno::EEXIST
    );
    check_err!(
        call(nr::LINKAT, [AT_FDCWD, at(&f), AT_FDCWD, at(&free_dir), 0]),
        Errno::ENOENT
    );
    // The stat family checks its flags and statx its mask before it copies the path in.
    check_err!(
        call(nr::NEWFSTATAT, [AT_FDCWD, KERNEL_ADDR, buf, 0xffff, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(nr::STATX, [AT_FDCWD, KERNEL_ADDR, 0, 0x8000_0000, buf]),
        Errno::EINVAL
    );
    // A NULL path with AT_EMPTY_PATH and no other flag (statx allows its sync and automount
    // flags too) names the descriptor, which must be open; with another flag, or AT_FDCWD,
    // the path is copied in (Linux 6.12).
    let mut statx_buf = [0u8; 256];
    let statx_at = statx_buf.as_mut_ptr() as usize;
    let (empty, dont_sync, no_automount) = (sys::AT_EMPTY_PATH, 0x4000, 0x800);
    let nofollow = sys::AT_SYMLINK_NOFOLLOW;
    check_err!(
        call(nr::STATX, [1023, 0, empty | dont_sync, 1 << 47, statx_at]),
        Errno::EBADF
    );
    check_err!(
        call(nr::STATX, [1023, 0, empty | nofollow, 0, statx_at]),
        Errno::EFAULT
    );
    check_err!(
        call(nr::STATX, [AT_FDCWD, 0, empty, 0, statx_at]),
        Errno::EFAULT
    );
    check_err!(call(nr::NEWFSTATAT, [1023, 0, buf, empty, 0]), Errno::EBADF);
    check_err!(
        call(nr::NEWFSTATAT, [1023, 0, buf, empty | no_automount, 0]),
        Errno::EFAULT
    );
    // A name's length is checked where the walk reaches it.
    let under_file = s.path(&alloc::format!("f/{}", long_name()));
    check_err!(
        call(nr::OPEN, [at(&under_file), sys::O_RDONLY, 0, 0, 0]),
        Errno::ENOTDIR
    );
    let long = s.path(&long_name());
    check_err!(call(CHDIR, [at(&long), 0, 0, 0, 0]), Errno::ENAMETOOLONG);
    // rename looks up both directories before either last name.
    check_err!(
        call(RENAME, [at(&long), KERNEL_ADDR, 0, 0, 0]),
        Errno::EFAULT
    );
    // A negative length before the path.
    check_err!(
        call(nr::TRUNCATE, [at(&missing), usize::MAX, 0, 0, 0]),
        Errno::EINVAL
    );
    // umount2: the path, then MNT_EXPIRE's companions.
    check_err!(
        call(nr::UMOUNT2, [at(&missing), MNT_EXPIRE | MNT_FORCE, 0, 0, 0]),
        Errno::ENOENT
    );
    // utimensat: NULL with AT_FDCWD is a bad path; on a descriptor, no flags; both times
    // omitted changes nothing and looks at nothing; the path before the times' range.
    let omit = [0, UTIME_OMIT, 0, UTIME_OMIT];
    let bad_nsec = [0u64, 2_000_000_000, 0, 0];
    check_err!(
        call(UTIMENSAT, [AT_FDCWD, 0, bad_nsec.as_ptr() as usize, 0, 0]),
        Errno::EFAULT
    );
    let fd = check_ok!(Fd::open(&f, sys::O_RDONLY | sys::O_CLOEXEC, 0));
    check_err!(
        call(UTIMENSAT, [fd.0, 0, 0, sys::AT_SYMLINK_NOFOLLOW, 0]),
        Errno::EINVAL
    );
    check_ok!(call(UTIMENSAT, [fd.0, 0, 0, 0, 0]));
    check_ok!(call(
        UTIMENSAT,
        [1000, at(&missing), omit.as_ptr() as usize, 0, 0]
    ));
    check_err!(
        call(
            UTIMENSAT,
            [AT_FDCWD, at(&missing), bad_nsec.as_ptr() as usize, 0, 0]
        ),
        Errno::ENOENT
    );
    // execve opens the file before it reads argv.
    check_err!(
        call(EXECVE, [at(&missing), KERNEL_ADDR, 0, 0, 0]),
        Errno::ENOENT
    );
    check_err!(call(EXECVE, [at(&f), KERNEL_ADDR, 0, 0, 0]), Errno::EACCES);
    // link: a name taken is EEXIST before a directory's EPERM.
    check_err!(
        call(nr::LINKAT, [AT_FDCWD, at(c"/tmp"), AT_FDCWD, at(&f), 0]),
        Errno::EEXIST
    );
    // rename to `.` with RENAME_NOREPLACE: EEXIST (EBUSY without it).
    let dot = s.path(".");
    check_err!(
        call(
            nr::RENAMEAT2,
            [AT_FDCWD, at(&f), AT_FDCWD, at(&dot), sys::RENAME_NOREPLACE]
        ),
        Errno::EEXIST
    );
    check_err!(call(RENAME, [at(&f), at(&dot), 0, 0, 0]), Errno::EBUSY);
    // RENAME_WHITEOUT with RENAME_NOREPLACE is allowed: the names are looked up.
    const RENAME_WHITEOUT: usize = 4;
    check_err!(
        call(
            nr::RENAMEAT2,
            [
                AT_FDCWD,
                at(&missing),
                AT_FDCWD,
                at(&f),
                RENAME_WHITEOUT | sys::RENAME_NOREPLACE
            ]
        ),
        Errno::ENOENT
    );
    // With names found, the VFS's checks (NOREPLACE onto a name taken, a directory onto a
    // file) come before tmpfs makes the whiteout; then the old name holds a character device
    // 0:0 of mode 0, which opens nothing (ENXIO) and is unlinked as any file.
    let (g, moved) = (check_ok!(s.file("g", b"")), s.path("moved"));
    let whiteout = |from: &core::ffi::CStr, to: &core::ffi::CStr, flags: usize| {
        call(
            nr::RENAMEAT2,
            [
                AT_FDCWD,
                at(from),
                AT_FDCWD,
                at(to),
                RENAME_WHITEOUT | flags,
            ],
        )
    };
    check_err!(whiteout(&f, &g, sys::RENAME_NOREPLACE), Errno::EEXIST);
    check_err!(whiteout(&up, &g, 0), Errno::ENOTDIR);
    check_ok!(whiteout(&g, &moved, 0));
    let left = check_ok!(crate::util::lstat(&g));
    check_eq!(
        (left.st_mode, left.st_rdev, left.st_size),
        (sys::S_IFCHR, 0, 0)
    );
    check_err!(
        Fd::open(&g, sys::O_RDONLY | sys::O_CLOEXEC, 0),
        Errno::ENXIO
    );
    check_ok!(sys::unlinkat(AT_FDCWD, at(&g), 0));
    check_ok!(crate::util::lstat(&moved));
    // readlinkat of an empty path: what the descriptor names is "not found" unless a link.
    let mut text = [0u8; 16];
    check_err!(
        call(
            nr::READLINKAT,
            [fd.0, at(c""), text.as_mut_ptr() as usize, 16, 0]
        ),
        Errno::ENOENT
    );
    Ok(())
}

pub fn open_flags_as_linux_builds_them() -> TestResult {
    let s = check_ok!(Scratch::new("openflags"));
    let _umask = Umask::set(0o022);
    let f = check_ok!(s.file("f", b"data"));
    let d = check_ok!(s.subdir("d"));
    let open =
        |path: &core::ffi::CStr, flags: usize| call(nr::OPEN, [at(path), flags, 0o600, 0, 0]);
    let close = |fd: usize| drop(Fd(fd));
    // O_DIRECTORY | O_CREAT before the directory descriptor or the path.
    check_err!(
        call(
            nr::OPENAT,
            [1000, at(&f), sys::O_DIRECTORY | sys::O_CREAT, 0, 0]
        ),
        Errno::EINVAL
    );
    // O_TMPFILE needs O_DIRECTORY's bit and write access.
    check_err!(
        open(&d, O_TMPFILE & !sys::O_DIRECTORY | sys::O_RDWR),
        Errno::EINVAL
    );
    check_err!(open(&d, O_TMPFILE | sys::O_RDONLY), Errno::EINVAL);
    check_err!(open(&f, O_TMPFILE | sys::O_RDWR), Errno::ENOTDIR);
    // O_DIRECT only where the file does direct I/O: a tmpfs file, not a directory or a device.
    close(check_ok!(open(&f, sys::O_DIRECT | sys::O_RDONLY)));
    check_err!(open(&d, sys::O_DIRECT | sys::O_RDONLY), Errno::EINVAL);
    check_err!(
        open(c"/dev/null", sys::O_DIRECT | sys::O_WRONLY),
        Errno::EINVAL
    );
    // Every bit: O_PATH keeps O_DIRECTORY and O_NOFOLLOW of them.
    check_err!(open(&f, usize::MAX), Errno::ENOTDIR);
    close(check_ok!(open(&d, usize::MAX)));
    // Unknown bits are ignored, and O_PATH drops O_CREAT.
    close(check_ok!(open(&f, 0x3c | HIGH)));
    close(check_ok!(open(&d, O_PATH | sys::O_CREAT | sys::O_RDWR)));
    // A directory is not truncated.
    check_err!(open(&d, sys::O_RDONLY | sys::O_TRUNC), Errno::EISDIR);
    // O_CREAT: `.` exists (EEXIST with O_EXCL, a directory's EISDIR without); a name with a
    // slash after it cannot be created, O_EXCL or not.
    let dot = s.path(".");
    let create = sys::O_CREAT | sys::O_RDONLY;
    check_err!(
        open(&dot, create | sys::O_EXCL | sys::O_TRUNC),
        Errno::EEXIST
    );
    check_err!(open(&dot, create), Errno::EISDIR);
    check_err!(open(&s.path("d/"), create | sys::O_EXCL), Errno::EISDIR);
    // O_TMPFILE: a file in no directory, which a link can name.
    let tmp = Fd(check_ok!(open(
        &d,
        O_TMPFILE | sys::O_RDWR | sys::O_CLOEXEC
    )));
    check_ok!(tmp.write_all(b"anonymous"));
    let st = check_ok!(tmp.stat());
    check_eq!((st.st_nlink, st.st_mode & 0o7777), (0, 0o600));
    let named = s.path("d/named");
    check_ok!(sys::linkat(
        tmp.0,
        at(c""),
        AT_FDCWD,
        at(&named),
        sys::AT_EMPTY_PATH
    ));
    check_eq!(check_ok!(stat(&named)).st_size, 9);
    check_eq!(check_ok!(tmp.stat()).st_nlink, 1);
    Ok(())
}

/// An `O_PATH` descriptor names a place: the calls that use only the place take it (fstat,
/// fstatfs, fchdir, a directory to start from, fcntl on the descriptor itself); every call
/// that uses the open file answers `EBADF`.
pub fn o_path_descriptors_name_a_place() -> TestResult {
    let s = check_ok!(Scratch::new("opath"));
    let _cwd = check_ok!(crate::util::Cwd::save());
    let f = check_ok!(s.file("f", b"data"));
    let d = check_ok!(s.subdir("d"));
    check_ok!(s.file("d/x", b""));
    let file = Fd(check_ok!(call(
        nr::OPEN,
        [at(&f), O_PATH | sys::O_CLOEXEC, 0, 0, 0]
    )));
    let dir = Fd(check_ok!(call(
        nr::OPEN,
        [at(&d), O_PATH | sys::O_CLOEXEC, 0, 0, 0]
    )));
    let mut byte = [0u8; 1];
    let buf = byte.as_mut_ptr() as usize;
    check_err!(call(nr::READ, [file.0, buf, 1, 0, 0]), Errno::EBADF);
    check_err!(call(nr::WRITE, [file.0, buf, 1, 0, 0]), Errno::EBADF);
    check_err!(call(nr::LSEEK, [file.0, 0, 0, 0, 0]), Errno::EBADF);
    check_err!(call(nr::FCHMOD, [file.0, 0o600, 0, 0, 0]), Errno::EBADF);
    check_err!(
        call(nr::FCNTL, [file.0, sys::F_SETFL, 0, 0, 0]),
        Errno::EBADF
    );
    check_err!(call(nr::GETDENTS64, [dir.0, buf, 1, 0, 0]), Errno::EBADF);
    // ioctl answers no request on it, not even FIOCLEX, before it looks at the argument.
    check_err!(
        call(nr::IOCTL, [file.0, sys::FIONREAD, KERNEL_ADDR, 0, 0]),
        Errno::EBADF
    );
    check_err!(call(nr::IOCTL, [file.0, FIOCLEX, 0, 0, 0]), Errno::EBADF);
    check_eq!(check_ok!(file.stat()).st_size, 4);
    // statx with a NULL path and AT_EMPTY_PATH stats it.
    let mut statx_buf = [0u8; 256];
    let statx_at = statx_buf.as_mut_ptr() as usize;
    check_ok!(call(
        nr::STATX,
        [
            file.0,
            0,
            sys::AT_EMPTY_PATH,
            sys::STATX_BASIC_STATS,
            statx_at
        ]
    ));
    check_eq!(statx_buf[40], 4);
    let mut statfs = [0u64; 15];
    check_ok!(call(
        nr::FSTATFS,
        [file.0, statfs.as_mut_ptr() as usize, 0, 0, 0]
    ));
    check_ok!(call(nr::FCNTL, [file.0, sys::F_GETFL, 0, 0, 0]));
    check_ok!(call(nr::FCNTL, [file.0, sys::F_SETFD, 0, 0, 0]));
    let x = c"x";
    drop(Fd(check_ok!(call(
        nr::OPENAT,
        [dir.0, at(x), sys::O_RDONLY, 0, 0]
    ))));
    check_ok!(call(nr::FCHDIR, [dir.0, 0, 0, 0, 0]));
    check_ok!(stat(x));
    Ok(())
}

pub fn chown_as_root() -> TestResult {
    let s = check_ok!(Scratch::new("chown"));
    let f = check_ok!(s.file("f", b"data"));
    let l = s.path("l");
    check_ok!(s.symlink("l", "f"));
    check_ok!(call(CHOWN, [at(&f), 1000, usize::MAX, 0, 0]));
    let st = check_ok!(stat(&f));
    check_eq!((st.st_uid, st.st_gid), (1000, 0));
    // -1 in 32 bits leaves the id as it is.
    check_ok!(call(CHOWN, [at(&f), 0xffff_ffff, 2000, 0, 0]));
    let st = check_ok!(stat(&f));
    check_eq!((st.st_uid, st.st_gid), (1000, 2000));
    // lchown changes the link, not the file.
    check_ok!(call(LCHOWN, [at(&l), 3000, 3000, 0, 0]));
    check_eq!(check_ok!(crate::util::lstat(&l)).st_uid, 3000);
    check_eq!(check_ok!(stat(&f)).st_uid, 1000);
    // A change of owner clears the set-user-ID bit of a file.
    check_ok!(sys::fchmodat(AT_FDCWD, at(&f), 0o4755));
    check_ok!(call(FCHOWNAT, [AT_FDCWD, at(&f), 0, 0, 0]));
    check_eq!(check_ok!(stat(&f)).st_mode & 0o7777, 0o755);
    check_err!(
        call(CHOWN, [at(&s.path("missing")), 0, 0, 0, 0]),
        Errno::ENOENT
    );
    Ok(())
}

const FCHOWN: usize = 93;

/// Pipes and eventfds take an owner, a group and times (`fchown`, `fchownat` with
/// `AT_EMPTY_PATH`, `futimens`) that `fstat` shows; every eventfd is a file of Linux's one
/// anonymous inode, so a change through one shows on all (and is undone here).
pub fn pipes_and_eventfds_take_owner_and_times() -> TestResult {
    let (read_end, write_end) = check_ok!(crate::util::pipe(sys::O_CLOEXEC));
    check_ok!(call(FCHOWN, [write_end.0, 1000, 0, 0, 0]));
    let st = check_ok!(read_end.stat());
    check_eq!((st.st_uid, st.st_gid), (1000, 0));
    check_ok!(call(
        FCHOWNAT,
        [read_end.0, at(c""), 0xffff_ffff, 2000, sys::AT_EMPTY_PATH]
    ));
    let st = check_ok!(write_end.stat());
    check_eq!((st.st_uid, st.st_gid), (1000, 2000));
    let times: [u64; 4] = [0, UTIME_OMIT, 1234, 5678];
    check_ok!(call(
        UTIMENSAT,
        [write_end.0, 0, times.as_ptr() as usize, 0, 0]
    ));
    let st = check_ok!(read_end.stat());
    check_eq!((st.st_mtime, st.st_mtime_nsec), (1234, 5678));

    let first = Fd(check_ok!(sys::eventfd2(0, sys::O_CLOEXEC)));
    let second = Fd(check_ok!(sys::eventfd2(0, sys::O_CLOEXEC)));
    let before = check_ok!(first.stat());
    check_ok!(call(FCHOWN, [first.0, 1000, 1000, 0, 0]));
    check_ok!(call(UTIMENSAT, [first.0, 0, times.as_ptr() as usize, 0, 0]));
    let st = check_ok!(second.stat());
    let seen = (st.st_uid, st.st_gid, st.st_mtime, st.st_mtime_nsec);
    let old_times = [
        0,
        UTIME_OMIT,
        before.st_mtime as u64,
        before.st_mtime_nsec as u64,
    ];
    check_ok!(call(
        FCHOWN,
        [
            first.0,
            before.st_uid as usize,
            before.st_gid as usize,
            0,
            0
        ]
    ));
    check_ok!(call(
        UTIMENSAT,
        [first.0, 0, old_times.as_ptr() as usize, 0, 0]
    ));
    check_eq!(seen, (1000, 1000, 1234, 5678));
    Ok(())
}

/// `execve` of a file some description has open for writing is ETXTBSY, after the walk and
/// the permission checks (EACCES first) and before the arguments are read (a bad argv is no
/// EFAULT); once the writer is closed the arguments are read. A running program's file cannot
/// be opened for writing.
pub fn exec_of_a_file_open_for_writing_is_busy() -> TestResult {
    let s = check_ok!(Scratch::new("txtbsy"));
    let program = check_ok!(s.file("prog", b"#!/nonexistent\n"));
    let writer = check_ok!(Fd::open(&program, sys::O_WRONLY | sys::O_CLOEXEC, 0));
    check_err!(
        call(EXECVE, [at(&program), KERNEL_ADDR, 0, 0, 0]),
        Errno::EACCES
    );
    check_ok!(sys::fchmodat(AT_FDCWD, at(&program), 0o755));
    check_err!(
        call(EXECVE, [at(&program), KERNEL_ADDR, 0, 0, 0]),
        Errno::ETXTBSY
    );
    check_err!(
        call(
            nr::EXECVEAT,
            [writer.0, at(c""), KERNEL_ADDR, 0, sys::AT_EMPTY_PATH]
        ),
        Errno::ETXTBSY
    );
    drop(writer);
    check_err!(
        call(EXECVE, [at(&program), KERNEL_ADDR, 0, 0, 0]),
        Errno::EFAULT
    );
    check_err!(
        Fd::open(c"/proc/self/exe", sys::O_RDWR | sys::O_CLOEXEC, 0).map(|fd| fd.0),
        Errno::ETXTBSY
    );
    Ok(())
}

const SETXATTR: usize = 188;
const LSETXATTR: usize = 189;
const GETXATTR: usize = 191;
const LGETXATTR: usize = 192;
const LISTXATTR: usize = 194;
const REMOVEXATTR: usize = 197;

pub fn xattrs_on_tmpfs() -> TestResult {
    let s = check_ok!(Scratch::new("xattr"));
    let f = check_ok!(s.file("f", b""));
    let l = check_ok!(s.symlink("l", "f"));
    let missing = s.path("missing");
    let name = at(c"user.test");
    let value = b"value";
    let v = value.as_ptr() as usize;
    let mut buf = [0u8; 64];
    let b = buf.as_mut_ptr() as usize;
    // setxattr checks its flags, name and size before the path.
    check_err!(call(SETXATTR, [at(&missing), name, v, 1, 4]), Errno::EINVAL);
    check_err!(
        call(SETXATTR, [at(&missing), KERNEL_ADDR, v, 1, HIGH]),
        Errno::EFAULT
    );
    check_err!(
        call(SETXATTR, [at(&missing), at(c""), v, 1, 0]),
        Errno::ERANGE
    );
    check_err!(
        call(SETXATTR, [at(&missing), name, v, 65537, 0]),
        Errno::E2BIG
    );
    check_err!(call(SETXATTR, [at(&missing), name, v, 1, 0]), Errno::ENOENT);
    // An empty value is not read, wherever it points.
    check_err!(
        call(SETXATTR, [at(&missing), name, KERNEL_ADDR, 0, 0]),
        Errno::ENOENT
    );
    let e = check_ok!(s.file("e", b""));
    check_ok!(call(
        SETXATTR,
        [at(&e), at(c"user.empty"), KERNEL_ADDR, 0, 0]
    ));
    check_eq!(
        check_ok!(call(GETXATTR, [at(&e), at(c"user.empty"), b, 64, 0])),
        0
    );
    // The other calls find the file first.
    check_err!(
        call(GETXATTR, [at(&missing), KERNEL_ADDR, b, 64, 0]),
        Errno::ENOENT
    );
    // Namespaces: an unknown one, a bare prefix.
    check_err!(
        call(SETXATTR, [at(&f), at(c"bogus"), v, 1, 0]),
        Errno::EOPNOTSUPP
    );
    check_err!(
        call(SETXATTR, [at(&f), at(c"user."), v, 1, 0]),
        Errno::EINVAL
    );
    check_err!(
        call(GETXATTR, [at(&f), at(c"bogus"), b, 64, 0]),
        Errno::EOPNOTSUPP
    );
    check_err!(call(GETXATTR, [at(&f), name, b, 64, 0]), Errno::ENODATA);
    // Create and replace.
    check_err!(
        call(SETXATTR, [at(&f), name, v, 5, sys::XATTR_REPLACE]),
        Errno::ENODATA
    );
    check_ok!(call(SETXATTR, [at(&f), name, v, 5, sys::XATTR_CREATE]));
    check_err!(
        call(SETXATTR, [at(&f), name, v, 5, sys::XATTR_CREATE]),
        Errno::EEXIST
    );
    check_eq!(check_ok!(call(GETXATTR, [at(&f), name, b, 0, 0])), 5);
    check_err!(call(GETXATTR, [at(&f), name, b, 2, 0]), Errno::ERANGE);
    check_eq!(check_ok!(call(GETXATTR, [at(&f), name, b, 64, 0])), 5);
    check_eq!(&buf[..5], value);
    check_eq!(check_ok!(call(LISTXATTR, [at(&f), b, 0, 0, 0])), 10);
    check_err!(call(LISTXATTR, [at(&f), b, 3, 0, 0]), Errno::ERANGE);
    check_eq!(check_ok!(call(LISTXATTR, [at(&f), b, 64, 0, 0])), 10);
    check_eq!(&buf[..10], b"user.test\0");
    // A user attribute is for regular files and directories only.
    check_err!(call(LSETXATTR, [at(&l), name, v, 1, 0]), Errno::EPERM);
    check_err!(call(LGETXATTR, [at(&l), name, b, 64, 0]), Errno::ENODATA);
    check_eq!(check_ok!(call(GETXATTR, [at(&l), name, b, 64, 0])), 5);
    // Removal.
    check_ok!(call(REMOVEXATTR, [at(&f), name, 0, 0, 0]));
    check_err!(call(REMOVEXATTR, [at(&f), name, 0, 0, 0]), Errno::ENODATA);
    check_err!(
        call(REMOVEXATTR, [at(&f), at(c"bogus"), 0, 0, 0]),
        Errno::EOPNOTSUPP
    );
    // An empty list is not copied out: a bad buffer does not matter.
    check_eq!(
        check_ok!(call(LISTXATTR, [at(&f), KERNEL_ADDR, 64, 0, 0])),
        0
    );
    // removexattr copies the name in before it walks the path.
    check_err!(
        call(REMOVEXATTR, [at(&missing), KERNEL_ADDR, 0, 0, 0]),
        Errno::EFAULT
    );
    Ok(())
}
