//! Path walks: `.` and `..` (`/..` is `/`), repeated and trailing slashes, symbolic links
//! (relative to their own directory, absolute, chains, in the middle of a path), O_NOFOLLOW,
//! loops and the 40-link limit (ELOOP), the name and path length limits (ENAMETOOLONG), a file
//! used as a directory (ENOTDIR), O_CREAT | O_EXCL on a link, and `*at` calls relative to a
//! directory descriptor.

use alloc::format;
use alloc::string::String;

use urt::ktap::TestResult;
use urt::sys::{self, AT_FDCWD, Errno, S_IFLNK, S_IFMT};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{Cwd, Fd, Scratch, cstring, lstat, read_file, stat};

const RO: usize = sys::O_RDONLY | sys::O_CLOEXEC;

/// The (device, inode) pair naming what `path` leads to.
fn identity(path: &str) -> Result<(u64, u64), Errno> {
    stat(&cstring(path)).map(|st| (st.st_dev, st.st_ino))
}

pub fn dot_and_dotdot() -> TestResult {
    let s = check_ok!(Scratch::new("dots"));
    check_ok!(s.subdir("sub"));
    check_ok!(s.file("sub/f", b"f"));
    let dir = s.dir();
    check_eq!(check_ok!(identity("/..")), check_ok!(identity("/")));
    check_eq!(check_ok!(identity("/../../..")), check_ok!(identity("/")));
    check_eq!(check_ok!(identity("/.")), check_ok!(identity("/")));
    let sub = check_ok!(identity(&format!("{dir}/sub")));
    check_eq!(
        check_ok!(identity(&format!("{dir}/sub/.."))),
        check_ok!(identity(dir))
    );
    check_eq!(check_ok!(identity(&format!("{dir}/./sub/."))), sub);
    check_eq!(check_ok!(identity(&format!("{dir}//sub///"))), sub);
    check_eq!(
        check_ok!(identity(&format!("{dir}/sub/../sub/./f"))),
        check_ok!(identity(&format!("{dir}/sub/f")))
    );
    // `..` of a name that is not there: the walk fails at the missing name.
    check_err!(identity(&format!("{dir}/missing/..")), Errno::ENOENT);
    // Relative to the working directory.
    let _cwd = check_ok!(Cwd::save());
    check_ok!(sys::chdir(cstring(&format!("{dir}/sub")).as_ptr() as usize));
    check_eq!(check_ok!(read_file(c"./f")), b"f");
    check_eq!(check_ok!(read_file(c"../sub/f")), b"f");
    check_eq!(check_ok!(identity(".")), sub);
    check_eq!(check_ok!(identity("..")), check_ok!(identity(dir)));
    Ok(())
}

pub fn symlinks_relative_absolute_and_chained() -> TestResult {
    let s = check_ok!(Scratch::new("links"));
    let dir = s.dir();
    check_ok!(s.subdir("d"));
    check_ok!(s.file("d/target", b"T"));
    // A relative target is relative to the link's own directory, not to the caller's.
    check_ok!(s.symlink("d/rel", "target"));
    check_ok!(s.symlink("abs", &format!("{dir}/d/target")));
    check_ok!(s.symlink("up", "d/../d/target"));
    for name in ["d/rel", "abs", "up"] {
        check_eq!(check_ok!(read_file(&s.path(name))), b"T", "through {name}");
    }
    // Chains: a link to a link to a link.
    check_ok!(s.symlink("c1", "c2"));
    check_ok!(s.symlink("c2", "d/rel"));
    check_eq!(check_ok!(read_file(&s.path("c1"))), b"T");
    // A link in the middle of a path is followed, to a directory.
    check_ok!(s.symlink("dirlink", "d"));
    check_ok!(s.symlink("rootlink", "/"));
    check_eq!(check_ok!(read_file(&s.path("dirlink/target"))), b"T");
    check_eq!(
        check_ok!(identity(&format!("{dir}/rootlink/tmp"))),
        check_ok!(identity("/tmp"))
    );
    // `..` after a link goes up from where the link led.
    check_eq!(
        check_ok!(identity(&format!("{dir}/dirlink/.."))),
        check_ok!(identity(dir))
    );
    // A dangling link: ENOENT through it, but lstat sees it.
    let dangling = check_ok!(s.symlink("dangling", "nowhere"));
    check_err!(Fd::open(&dangling, RO, 0), Errno::ENOENT);
    check_eq!(check_ok!(lstat(&dangling)).st_mode & S_IFMT, S_IFLNK);
    Ok(())
}

pub fn o_nofollow_and_o_excl_on_links() -> TestResult {
    let s = check_ok!(Scratch::new("nofollow"));
    check_ok!(s.subdir("d"));
    check_ok!(s.file("d/f", b"F"));
    let link = check_ok!(s.symlink("l", "d/f"));
    check_ok!(s.symlink("dl", "d"));
    check_err!(Fd::open(&link, RO | sys::O_NOFOLLOW, 0), Errno::ELOOP);
    check_ok!(Fd::open(&s.path("d/f"), RO | sys::O_NOFOLLOW, 0));
    // Only the last component: a link earlier in the path is followed.
    check_ok!(Fd::open(&s.path("dl/f"), RO | sys::O_NOFOLLOW, 0));
    // O_CREAT | O_EXCL does not follow a link, even a dangling one.
    let dangling = check_ok!(s.symlink("dangling", "would-be"));
    let excl = sys::O_RDWR | sys::O_CREAT | sys::O_EXCL | sys::O_CLOEXEC;
    check_err!(Fd::open(&dangling, excl, 0o644), Errno::EEXIST);
    check_err!(stat(&s.path("would-be")), Errno::ENOENT);
    // O_CREAT alone follows it and creates the target.
    drop(check_ok!(Fd::open(
        &dangling,
        sys::O_RDWR | sys::O_CREAT | sys::O_CLOEXEC,
        0o644
    )));
    check_ok!(stat(&s.path("would-be")));
    Ok(())
}

pub fn symlink_loops_and_the_limit() -> TestResult {
    let s = check_ok!(Scratch::new("loops"));
    check_ok!(s.symlink("self", "self"));
    check_ok!(s.symlink("a", "b"));
    check_ok!(s.symlink("b", "a"));
    check_err!(Fd::open(&s.path("self"), RO, 0), Errno::ELOOP);
    check_err!(Fd::open(&s.path("a"), RO, 0), Errno::ELOOP);
    check_err!(stat(&s.path("a/x")), Errno::ELOOP);
    check_ok!(lstat(&s.path("a")));
    // A chain: l0 -> l1 -> ... -> lN -> f. 40 links may be followed in one walk, not 41.
    check_ok!(s.file("f", b"end"));
    check_ok!(s.symlink("l41", "f"));
    for i in (0..41).rev() {
        check_ok!(s.symlink(&format!("l{i}"), &format!("l{}", i + 1)));
    }
    check_eq!(check_ok!(read_file(&s.path("l2"))), b"end", "40 links");
    check_err!(read_file(&s.path("l1")), Errno::ELOOP);
    Ok(())
}

pub fn name_and_path_length_limits() -> TestResult {
    let s = check_ok!(Scratch::new("names"));
    let longest = "n".repeat(255);
    let path = s.path(&longest);
    drop(check_ok!(Fd::open(
        &path,
        sys::O_RDWR | sys::O_CREAT | sys::O_CLOEXEC,
        0o644
    )));
    check_ok!(stat(&path));
    let too_long = s.path(&"n".repeat(256));
    check_err!(
        Fd::open(&too_long, sys::O_RDWR | sys::O_CREAT, 0o644),
        Errno::ENAMETOOLONG
    );
    check_err!(stat(&too_long), Errno::ENAMETOOLONG);
    check_err!(
        sys::mkdirat(AT_FDCWD, too_long.as_ptr() as usize, 0o755),
        Errno::ENAMETOOLONG
    );
    // A whole path: 4095 bytes and the NUL fit (PATH_MAX 4096), one more byte does not. The
    // padding is slashes, which the walk skips.
    let target = format!("{}/{longest}", s.dir());
    let padded = |len: usize| cstring(&format!("{}{target}", "/".repeat(len - target.len())));
    check_ok!(stat(&padded(4095)));
    check_err!(stat(&padded(4096)), Errno::ENAMETOOLONG);
    check_err!(Fd::open(&padded(5000), RO, 0), Errno::ENAMETOOLONG);
    Ok(())
}

pub fn a_file_is_not_a_directory() -> TestResult {
    let s = check_ok!(Scratch::new("notdir"));
    let f = check_ok!(s.file("f", b""));
    check_ok!(s.symlink("l", "f"));
    for name in ["f/", "f/x", "f/.", "f/..", "l/", "l/x"] {
        let r = stat(&s.path(name)).map(|_| ());
        check!(r == Err(Errno::ENOTDIR), "stat {name}: {r:?}");
        let r = Fd::open(&s.path(name), RO, 0).map(|_| ());
        check!(r == Err(Errno::ENOTDIR), "open {name}: {r:?}");
    }
    check_err!(
        Fd::open(&s.path("f/new"), sys::O_RDWR | sys::O_CREAT, 0o644),
        Errno::ENOTDIR
    );
    check_err!(
        sys::mkdirat(AT_FDCWD, s.path("f/d").as_ptr() as usize, 0o755),
        Errno::ENOTDIR
    );
    // A trailing slash is fine on a directory (and on a link to one).
    check_ok!(s.subdir("d"));
    check_ok!(s.symlink("dl", "d"));
    check_ok!(stat(&s.path("d/")));
    check_ok!(stat(&s.path("dl/")));
    check_ok!(sys::mkdirat(
        AT_FDCWD,
        s.path("new/").as_ptr() as usize,
        0o755
    ));
    check_ok!(stat(&f));
    Ok(())
}

pub fn empty_and_bad_paths() -> TestResult {
    check_err!(Fd::open(c"", RO, 0), Errno::ENOENT);
    check_err!(stat(c""), Errno::ENOENT);
    check_err!(sys::openat(AT_FDCWD, 0, RO, 0).map(Fd), Errno::EFAULT);
    check_err!(
        sys::openat(AT_FDCWD, crate::util::KERNEL_ADDR, RO, 0).map(Fd),
        Errno::EFAULT
    );
    // A short path that runs into unmapped memory before its NUL.
    let page = check_ok!(crate::util::Mapping::rw(2));
    check_ok!(sys::munmap(page.page(1), sys::PAGE_SIZE));
    page.fill(0, b'a');
    let tail = page.page(1) - 100;
    check_err!(sys::openat(AT_FDCWD, tail, RO, 0).map(Fd), Errno::EFAULT);
    Ok(())
}

pub fn at_calls_relative_to_a_directory() -> TestResult {
    let s = check_ok!(Scratch::new("at"));
    check_ok!(s.subdir("d"));
    check_ok!(s.file("d/f", b"in d"));
    let d = check_ok!(Fd::open(&s.path("d"), RO | sys::O_DIRECTORY, 0));
    let name = |n: &str| cstring(n);
    let open_at =
        |dirfd: usize, n: &str| sys::openat(dirfd, name(n).as_ptr() as usize, RO, 0).map(Fd);
    check_eq!(
        check_ok!(check_ok!(open_at(d.0, "f")).read_to_end()),
        b"in d"
    );
    check_eq!(
        check_ok!(check_ok!(open_at(d.0, "../d/./f")).read_to_end()),
        b"in d"
    );
    // The directory descriptor keeps its directory even when it is renamed.
    let moved = s.path("moved");
    check_ok!(sys::renameat2(
        AT_FDCWD,
        s.path("d").as_ptr() as usize,
        AT_FDCWD,
        moved.as_ptr() as usize,
        0
    ));
    check_ok!(open_at(d.0, "f"));
    let file = check_ok!(Fd::open(&s.path("moved/f"), RO, 0));
    check_err!(open_at(file.0, "f"), Errno::ENOTDIR);
    check_err!(open_at(9999, "f"), Errno::EBADF);
    // An absolute path ignores the descriptor, even a bad one.
    let abs: String = s.path("moved/f").to_str().unwrap_or("").into();
    check_ok!(open_at(9999, &abs));
    check!(check_ok!(file.stat()).st_nlink == 1);
    Ok(())
}
