//! Files and directories: open, openat, creat, close, the reads and writes (plain, positioned,
//! vectored), lseek, the stat family and statx, getdents64, mkdirat, unlinkat, renameat2,
//! linkat, symlinkat and readlinkat, chmod, truncate, fallocate, fsync, the working directory,
//! faccessat2, umask, memfd_create, statfs, sendfile, eventfd2 and sysinfo.
//!
//! Each test works in a scratch directory of its own under /tmp ([`Scratch`]), removed when
//! the test ends, and sets the umask it relies on ([`Umask`]). The process runs as root, which
//! passes the read and write permission checks whatever the mode says.

use alloc::string::String;
use alloc::vec::Vec;

use urt::ktap::TestResult;
use urt::sys::{self, AT_FDCWD, Errno, Iovec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{
    Cwd, Fd, KERNEL_ADDR, Scratch, Umask, cstring, dir_entries, dir_names, lstat, pipe, read_file,
    readlink, stat,
};

const RW: usize = sys::O_RDWR | sys::O_CLOEXEC;
const RO: usize = sys::O_RDONLY | sys::O_CLOEXEC;
const DIR: usize = sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC;
const NEW: usize = sys::O_RDWR | sys::O_CREAT | sys::O_EXCL | sys::O_CLOEXEC;

/// The address of a path, for the raw wrappers.
fn at(path: &core::ffi::CStr) -> usize {
    path.as_ptr() as usize
}

/// The file type bits of a mode.
fn kind(mode: u32) -> u32 {
    mode & S_IFMT
}

// ---- open, creat, close ----

pub fn open_creat_excl_trunc() -> TestResult {
    let _umask = Umask::set(0o022);
    let s = check_ok!(Scratch::new("open-creat"));
    let path = s.path("f");
    let fd = check_ok!(Fd::open(&path, NEW, 0o644));
    check_ok!(fd.write_all(b"hello"));
    check_err!(Fd::open(&path, NEW, 0o644), Errno::EEXIST);
    // O_CREAT without O_EXCL opens the file as it is: contents and mode kept.
    let again = check_ok!(Fd::open(&path, RO | sys::O_CREAT, 0o600));
    check_eq!(check_ok!(again.read_to_end()), b"hello");
    check_eq!(check_ok!(again.stat()).st_mode, S_IFREG | 0o644);
    // O_TRUNC empties it, through every descriptor.
    drop(check_ok!(Fd::open(&path, sys::O_WRONLY | sys::O_TRUNC, 0)));
    check_eq!(check_ok!(fd.stat()).st_size, 0);
    check_err!(Fd::open(&s.path("missing"), RO, 0), Errno::ENOENT);
    check_err!(
        Fd::open(&s.path("no-dir/f"), RW | sys::O_CREAT, 0o644),
        Errno::ENOENT
    );
    // open(2) and creat(2): creat is O_WRONLY | O_CREAT | O_TRUNC.
    let made = Fd(check_ok!(sys::creat(at(&s.path("c")), 0o640)));
    check_eq!(check_ok!(sys::write(made.0, at(c"xy"), 2)), 2);
    let mut buf = [0u8; 4];
    check_err!(
        sys::read(made.0, buf.as_mut_ptr() as usize, 4),
        Errno::EBADF
    );
    check_eq!(check_ok!(made.stat()).st_mode, S_IFREG | 0o640);
    let opened = Fd(check_ok!(sys::open(at(&s.path("c")), RO, 0)));
    check_eq!(check_ok!(opened.read_to_end()), b"xy");
    check_err!(sys::write(opened.0, at(c"z"), 1), Errno::EBADF);
    // openat: relative to a directory descriptor; an absolute path ignores it.
    let dir = check_ok!(Fd::open(&cstring(s.dir()), DIR, 0));
    let rel = Fd(check_ok!(sys::openat(dir.0, at(c"c"), RO, 0)));
    check_eq!(check_ok!(rel.read_to_end()), b"xy");
    check_ok!(sys::openat(usize::MAX - 5, at(&path), RO, 0).map(Fd));
    check_err!(sys::openat(9999, at(c"c"), RO, 0).map(Fd), Errno::EBADF);
    check_err!(sys::openat(fd.0, at(c"c"), RO, 0).map(Fd), Errno::ENOTDIR);
    check_err!(
        sys::openat(AT_FDCWD, KERNEL_ADDR, RO, 0).map(Fd),
        Errno::EFAULT
    );
    Ok(())
}

pub fn open_directory_rules() -> TestResult {
    let s = check_ok!(Scratch::new("open-dir"));
    let file = check_ok!(s.file("f", b"x"));
    let dir = check_ok!(s.subdir("d"));
    check_err!(Fd::open(&file, DIR, 0), Errno::ENOTDIR);
    check_err!(Fd::open(&dir, sys::O_WRONLY, 0), Errno::EISDIR);
    check_err!(Fd::open(&dir, sys::O_RDWR, 0), Errno::EISDIR);
    check_err!(Fd::open(&dir, RO | sys::O_CREAT, 0o644), Errno::EISDIR);
    let d = check_ok!(Fd::open(&dir, DIR, 0));
    check_eq!(kind(check_ok!(d.stat()).st_mode), S_IFDIR);
    let mut buf = [0u8; 8];
    check_err!(sys::read(d.0, buf.as_mut_ptr() as usize, 8), Errno::EISDIR);
    check_err!(sys::write(d.0, buf.as_ptr() as usize, 8), Errno::EBADF);
    // Without O_DIRECTORY, O_RDONLY opens a directory too.
    check_ok!(Fd::open(&dir, RO, 0));
    Ok(())
}

pub fn open_append_writes_at_the_end() -> TestResult {
    let s = check_ok!(Scratch::new("append"));
    let path = check_ok!(s.file("f", b"abc"));
    let fd = check_ok!(Fd::open(&path, RW | sys::O_APPEND, 0));
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_SET)), 0);
    check_ok!(fd.write_all(b"def"));
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)), 6);
    // Another descriptor's write moves the end: the next append goes after it.
    let other = check_ok!(Fd::open(&path, sys::O_WRONLY | sys::O_APPEND, 0));
    check_ok!(other.write_all(b"gh"));
    check_ok!(fd.write_all(b"i"));
    // pwrite on an O_APPEND descriptor appends too, whatever the offset (Linux's rule).
    check_eq!(check_ok!(sys::pwrite64(fd.0, at(c"j"), 1, 0)), 1);
    check_eq!(check_ok!(read_file(&path)), b"abcdefghij");
    Ok(())
}

pub fn close_then_ebadf() -> TestResult {
    let s = check_ok!(Scratch::new("close"));
    let path = check_ok!(s.file("f", b"x"));
    let fd = check_ok!(sys::openat(AT_FDCWD, at(&path), RO, 0));
    check_eq!(check_ok!(sys::close(fd)), 0);
    check_err!(sys::close(fd), Errno::EBADF);
    let mut buf = [0u8; 1];
    check_err!(sys::read(fd, buf.as_mut_ptr() as usize, 1), Errno::EBADF);
    check_err!(sys::close(usize::MAX), Errno::EBADF);
    check_err!(sys::close(9999), Errno::EBADF);
    // The number is free again: the next open takes the lowest free one.
    let next = check_ok!(Fd::open(&path, RO, 0));
    check!(
        next.0 <= fd,
        "open after close gave {}, {fd} was free",
        next.0
    );
    Ok(())
}

// ---- reads and writes ----

pub fn read_write_and_offsets() -> TestResult {
    let s = check_ok!(Scratch::new("rw"));
    let fd = check_ok!(Fd::open(&s.path("f"), NEW, 0o644));
    check_ok!(fd.write_all(b"hello world"));
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)), 11);
    let mut buf = [0u8; 16];
    let p = buf.as_mut_ptr() as usize;
    check_eq!(check_ok!(sys::read(fd.0, p, 16)), 0, "read at the end");
    // pread and pwrite leave the offset alone.
    check_eq!(check_ok!(fd.read_at(6, 16)), b"world");
    check_eq!(check_ok!(sys::pwrite64(fd.0, at(c"HELLO"), 5, 0)), 5);
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)), 11);
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_SET)), 0);
    check_eq!(check_ok!(sys::read(fd.0, p, 7)), 7);
    check_eq!(&buf[..7], b"HELLO w");
    check_eq!(check_ok!(fd.read_at(100, 4)).len(), 0, "pread past the end");
    check_err!(sys::pread64(fd.0, p, 4, usize::MAX), Errno::EINVAL);
    check_err!(sys::pwrite64(fd.0, p, 4, usize::MAX), Errno::EINVAL);
    check_err!(sys::read(fd.0, KERNEL_ADDR, 4), Errno::EFAULT);
    check_err!(sys::write(fd.0, KERNEL_ADDR, 4), Errno::EFAULT);
    Ok(())
}

pub fn vectored_reads_and_writes() -> TestResult {
    let s = check_ok!(Scratch::new("vec"));
    let fd = check_ok!(Fd::open(&s.path("f"), NEW, 0o644));
    let parts: [&[u8]; 3] = [b"ab", b"", b"cdef"];
    let iov = parts.map(|p| Iovec {
        base: p.as_ptr() as usize,
        len: p.len(),
    });
    check_eq!(check_ok!(sys::writev(fd.0, iov.as_ptr() as usize, 3)), 6);
    check_ok!(sys::lseek(fd.0, 0, sys::SEEK_SET));
    let (mut a, mut b, mut c) = ([0u8; 2], [0u8; 3], [0u8; 10]);
    let into = [
        Iovec {
            base: a.as_mut_ptr() as usize,
            len: 2,
        },
        Iovec {
            base: b.as_mut_ptr() as usize,
            len: 3,
        },
        Iovec {
            base: c.as_mut_ptr() as usize,
            len: 10,
        },
    ];
    check_eq!(check_ok!(sys::readv(fd.0, into.as_ptr() as usize, 3)), 6);
    check_eq!((&a, &b, &c[..1]), (b"ab", b"cde", &b"f"[..]));
    // pwritev and preadv: at an offset, which the descriptor's offset does not follow.
    let xy = [Iovec {
        base: at(c"XY"),
        len: 2,
    }];
    check_eq!(check_ok!(sys::pwritev(fd.0, xy.as_ptr() as usize, 1, 2)), 2);
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)), 6);
    check_eq!(
        check_ok!(sys::preadv(fd.0, into.as_ptr() as usize, 2, 1)),
        5
    );
    check_eq!((&a, &b), (b"bX", b"Yef"));
    check_err!(
        sys::preadv(fd.0, into.as_ptr() as usize, 1, usize::MAX),
        Errno::EINVAL
    );
    check_err!(
        sys::preadv(9999, into.as_ptr() as usize, 1, 0),
        Errno::EBADF
    );
    Ok(())
}

pub fn lseek_whence_and_holes() -> TestResult {
    let s = check_ok!(Scratch::new("lseek"));
    let fd = check_ok!(Fd::open(&s.path("f"), NEW, 0o644));
    check_ok!(fd.write_all(b"0123456789"));
    check_eq!(check_ok!(sys::lseek(fd.0, 0, sys::SEEK_SET)), 0);
    check_eq!(check_ok!(sys::lseek(fd.0, 3, sys::SEEK_CUR)), 3);
    check_eq!(
        check_ok!(sys::lseek(fd.0, -2isize as usize, sys::SEEK_END)),
        8
    );
    check_err!(
        sys::lseek(fd.0, -1isize as usize, sys::SEEK_SET),
        Errno::EINVAL
    );
    check_err!(
        sys::lseek(fd.0, -20isize as usize, sys::SEEK_CUR),
        Errno::EINVAL
    );
    check_err!(sys::lseek(fd.0, 0, 7), Errno::EINVAL);
    check_eq!(
        check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)),
        8,
        "a failed seek moves nothing"
    );
    // Past the end: allowed; a write there leaves a hole that reads as zeros.
    check_eq!(check_ok!(sys::lseek(fd.0, 100, sys::SEEK_SET)), 100);
    check_eq!(
        check_ok!(fd.stat()).st_size,
        10,
        "seeking does not grow the file"
    );
    check_ok!(fd.write_all(b"x"));
    check_eq!(check_ok!(fd.stat()).st_size, 101);
    let all = check_ok!(fd.read_at(0, 200));
    check_eq!(all.len(), 101);
    check!(
        all[10..100].iter().all(|&b| b == 0),
        "the hole is not zeros"
    );
    check_eq!(all[100], b'x');
    check_err!(sys::lseek(9999, 0, sys::SEEK_SET), Errno::EBADF);
    let (r, _w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_err!(sys::lseek(r.0, 0, sys::SEEK_SET), Errno::ESPIPE);
    Ok(())
}

// ---- metadata ----

pub fn stat_family_fields() -> TestResult {
    let _umask = Umask::set(0o022);
    let s = check_ok!(Scratch::new("stat"));
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let path = check_ok!(s.file("f", &data));
    let st = check_ok!(stat(&path));
    check_eq!(st.st_mode, S_IFREG | 0o644);
    check_eq!(st.st_size, 5000);
    check_eq!(st.st_nlink, 1);
    check!(st.st_blksize > 0, "st_blksize {}", st.st_blksize);
    check!(
        st.st_blocks * 512 >= 5000,
        "st_blocks {} for 5000 bytes",
        st.st_blocks
    );
    let fd = check_ok!(Fd::open(&path, RO, 0));
    let fst = check_ok!(fd.stat());
    check_eq!(
        (fst.st_ino, fst.st_dev, fst.st_size),
        (st.st_ino, st.st_dev, st.st_size)
    );
    // stat(2) and lstat(2), and newfstatat with AT_EMPTY_PATH on the descriptor.
    let mut legacy = sys::Stat::default();
    check_ok!(sys::stat(at(&path), &raw mut legacy as usize));
    check_eq!(legacy.st_ino, st.st_ino);
    check_ok!(sys::lstat(at(&path), &raw mut legacy as usize));
    check_eq!(legacy.st_ino, st.st_ino);
    check_ok!(sys::newfstatat(
        fd.0,
        at(c""),
        &raw mut legacy as usize,
        sys::AT_EMPTY_PATH
    ));
    check_eq!(legacy.st_ino, st.st_ino);
    // A symbolic link: lstat sees the link (its size is the target's length), stat the file.
    let link = check_ok!(s.symlink("l", "f"));
    let lst = check_ok!(lstat(&link));
    check_eq!(kind(lst.st_mode), S_IFLNK);
    check_eq!(lst.st_size, 1);
    check_eq!(check_ok!(stat(&link)).st_ino, st.st_ino);
    // A directory: two links, and one more for each subdirectory's `..`.
    let dir = check_ok!(s.subdir("d"));
    let dst = check_ok!(stat(&dir));
    check_eq!(dst.st_mode, S_IFDIR | 0o755);
    check_eq!(dst.st_nlink, 2);
    check_ok!(s.subdir("d/sub"));
    check_eq!(check_ok!(stat(&dir)).st_nlink, 3);
    check_err!(stat(&s.path("missing")), Errno::ENOENT);
    check_err!(stat(c""), Errno::ENOENT);
    check_err!(crate::util::stat_at(&path, 1), Errno::EINVAL);
    Ok(())
}

pub fn statx_fields() -> TestResult {
    let s = check_ok!(Scratch::new("statx"));
    let path = check_ok!(s.file("f", &[7u8; 3000]));
    let st = check_ok!(stat(&path));
    let mut stx = sys::Statx::default();
    let buf = &raw mut stx as usize;
    check_ok!(sys::statx(
        AT_FDCWD,
        at(&path),
        0,
        sys::STATX_BASIC_STATS,
        buf
    ));
    check_eq!(
        stx.mask as usize & sys::STATX_BASIC_STATS,
        sys::STATX_BASIC_STATS,
        "stx_mask"
    );
    check_eq!(u32::from(stx.mode), st.st_mode);
    check_eq!(stx.size, 3000);
    check_eq!(u64::from(stx.nlink), st.st_nlink);
    check_eq!(stx.ino, st.st_ino);
    check_eq!(stx.blocks as i64, st.st_blocks);
    check!(stx.blksize > 0);
    let fd = check_ok!(Fd::open(&path, RO, 0));
    let mut by_fd = sys::Statx::default();
    let by_fd_buf = &raw mut by_fd as usize;
    check_ok!(sys::statx(
        fd.0,
        at(c""),
        sys::AT_EMPTY_PATH,
        sys::STATX_BASIC_STATS,
        by_fd_buf
    ));
    check_eq!(by_fd.ino, st.st_ino);
    let link = check_ok!(s.symlink("l", "f"));
    let flags = sys::AT_SYMLINK_NOFOLLOW;
    check_ok!(sys::statx(
        AT_FDCWD,
        at(&link),
        flags,
        sys::STATX_BASIC_STATS,
        by_fd_buf
    ));
    check_eq!(u32::from(by_fd.mode) & S_IFMT, S_IFLNK);
    // Both sync flags at once, and the reserved mask bit, are refused.
    let basic = sys::STATX_BASIC_STATS;
    check_err!(
        sys::statx(AT_FDCWD, at(&path), 0x6000, basic, buf),
        Errno::EINVAL
    );
    check_err!(
        sys::statx(AT_FDCWD, at(&path), 0, 0x8000_0000, buf),
        Errno::EINVAL
    );
    check_err!(
        sys::statx(AT_FDCWD, at(&s.path("missing")), 0, basic, buf),
        Errno::ENOENT
    );
    check_err!(
        sys::statx(AT_FDCWD, at(&path), 0, basic, KERNEL_ADDR),
        Errno::EFAULT
    );
    Ok(())
}

pub fn getdents64_lists_everything() -> TestResult {
    let s = check_ok!(Scratch::new("getdents"));
    check_ok!(s.file("f", b""));
    check_ok!(s.subdir("d"));
    check_ok!(s.symlink("l", "f"));
    let dir = check_ok!(Fd::open(&cstring(s.dir()), DIR, 0));
    let mut entries = check_ok!(dir_entries(dir.0));
    entries.sort();
    let got: Vec<(&str, u8)> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    check_eq!(
        got,
        [
            (".", sys::DT_DIR),
            ("..", sys::DT_DIR),
            ("d", sys::DT_DIR),
            ("f", sys::DT_REG),
            ("l", sys::DT_LNK)
        ]
    );
    // At the end it stays at the end; a seek to 0 starts over.
    check_eq!(check_ok!(dir_entries(dir.0)).len(), 0);
    check_eq!(check_ok!(sys::lseek(dir.0, 0, sys::SEEK_SET)), 0);
    check_eq!(check_ok!(dir_entries(dir.0)).len(), 5);
    check_ok!(sys::lseek(dir.0, 0, sys::SEEK_SET));
    let mut small = [0u64; 2];
    check_err!(
        sys::getdents64(dir.0, small.as_mut_ptr() as usize, 16),
        Errno::EINVAL
    );
    let file = check_ok!(Fd::open(&s.path("f"), RO, 0));
    let mut buf = [0u64; 64];
    let p = buf.as_mut_ptr() as usize;
    check_err!(sys::getdents64(file.0, p, 512), Errno::ENOTDIR);
    check_err!(sys::getdents64(9999, p, 512), Errno::EBADF);
    check_err!(sys::getdents64(dir.0, KERNEL_ADDR, 512), Errno::EFAULT);
    Ok(())
}

// ---- names: mkdir, unlink, rename, link, symlink ----

pub fn mkdirat_rules() -> TestResult {
    let _umask = Umask::set(0o022);
    let s = check_ok!(Scratch::new("mkdir"));
    let d = s.path("d");
    check_ok!(sys::mkdirat(AT_FDCWD, at(&d), 0o777));
    check_eq!(check_ok!(stat(&d)).st_mode, S_IFDIR | 0o755);
    check_eq!(check_ok!(dir_names(&d)), [".", ".."]);
    check_err!(sys::mkdirat(AT_FDCWD, at(&d), 0o755), Errno::EEXIST);
    let f = check_ok!(s.file("f", b""));
    check_err!(sys::mkdirat(AT_FDCWD, at(&f), 0o755), Errno::EEXIST);
    check_err!(
        sys::mkdirat(AT_FDCWD, at(&s.path("f/sub")), 0o755),
        Errno::ENOTDIR
    );
    check_err!(
        sys::mkdirat(AT_FDCWD, at(&s.path("no/sub")), 0o755),
        Errno::ENOENT
    );
    // Relative to a directory descriptor, and mkdir(2).
    let dir = check_ok!(Fd::open(&d, DIR, 0));
    check_ok!(sys::mkdirat(dir.0, at(c"inner"), 0o700));
    check_eq!(check_ok!(stat(&s.path("d/inner"))).st_mode, S_IFDIR | 0o700);
    check_ok!(sys::mkdir(at(&s.path("legacy")), 0o755));
    check_eq!(kind(check_ok!(stat(&s.path("legacy"))).st_mode), S_IFDIR);
    Ok(())
}

pub fn unlinkat_rules() -> TestResult {
    let s = check_ok!(Scratch::new("unlink"));
    let f = check_ok!(s.file("f", b"data"));
    let d = check_ok!(s.subdir("d"));
    check_ok!(s.file("d/inner", b""));
    check_err!(sys::unlinkat(AT_FDCWD, at(&d), 0), Errno::EISDIR);
    check_err!(
        sys::unlinkat(AT_FDCWD, at(&d), sys::AT_REMOVEDIR),
        Errno::ENOTEMPTY
    );
    check_err!(
        sys::unlinkat(AT_FDCWD, at(&f), sys::AT_REMOVEDIR),
        Errno::ENOTDIR
    );
    check_err!(
        sys::unlinkat(AT_FDCWD, at(&s.path("missing")), 0),
        Errno::ENOENT
    );
    check_err!(sys::unlinkat(AT_FDCWD, at(&f), 0x1), Errno::EINVAL);
    check_err!(
        sys::unlinkat(AT_FDCWD, at(&s.path("d/.")), sys::AT_REMOVEDIR),
        Errno::EINVAL
    );
    check_err!(
        sys::unlinkat(AT_FDCWD, at(&s.path("d/..")), sys::AT_REMOVEDIR),
        Errno::ENOTEMPTY
    );
    // An unlinked file lives on while it is open: its data stays, its link count is 0.
    let open = check_ok!(Fd::open(&f, RO, 0));
    check_ok!(sys::unlinkat(AT_FDCWD, at(&f), 0));
    check_err!(stat(&f), Errno::ENOENT);
    check_eq!(check_ok!(open.read_to_end()), b"data");
    check_eq!(check_ok!(open.stat()).st_nlink, 0);
    // Emptied, the directory goes; relative to a directory descriptor.
    let dir = check_ok!(Fd::open(&d, DIR, 0));
    check_ok!(sys::unlinkat(dir.0, at(c"inner"), 0));
    check_ok!(sys::unlinkat(AT_FDCWD, at(&d), sys::AT_REMOVEDIR));
    check_err!(stat(&d), Errno::ENOENT);
    check_eq!(check_ok!(dir_names(&cstring(s.dir()))), [".", ".."]);
    Ok(())
}

pub fn renameat2_rules() -> TestResult {
    let s = check_ok!(Scratch::new("rename"));
    let rename = |old: &str, new: &str, flags: usize| {
        sys::renameat2(
            AT_FDCWD,
            at(&s.path(old)),
            AT_FDCWD,
            at(&s.path(new)),
            flags,
        )
    };
    check_ok!(s.file("a", b"A"));
    check_ok!(s.file("b", b"B"));
    // Replacing a file: the new name holds the old file, the old name is gone.
    let a_ino = check_ok!(stat(&s.path("a"))).st_ino;
    check_ok!(rename("a", "b", 0));
    check_err!(stat(&s.path("a")), Errno::ENOENT);
    check_eq!(check_ok!(stat(&s.path("b"))).st_ino, a_ino);
    check_eq!(check_ok!(read_file(&s.path("b"))), b"A");
    check_ok!(s.file("c", b"C"));
    check_err!(rename("c", "b", sys::RENAME_NOREPLACE), Errno::EEXIST);
    check_ok!(rename("c", "c2", sys::RENAME_NOREPLACE));
    // RENAME_EXCHANGE swaps two names.
    check_ok!(rename("b", "c2", sys::RENAME_EXCHANGE));
    check_eq!(check_ok!(read_file(&s.path("b"))), b"C");
    check_eq!(check_ok!(read_file(&s.path("c2"))), b"A");
    check_err!(rename("b", "missing", sys::RENAME_EXCHANGE), Errno::ENOENT);
    let both = sys::RENAME_EXCHANGE | sys::RENAME_NOREPLACE;
    check_err!(rename("b", "c2", both), Errno::EINVAL);
    // Directories: over an empty one, not over a full one; not over a file nor under itself.
    check_ok!(s.subdir("d1"));
    check_ok!(s.subdir("d2"));
    check_ok!(s.subdir("full"));
    check_ok!(s.file("full/x", b""));
    check_err!(rename("d1", "full", 0), Errno::ENOTEMPTY);
    check_ok!(rename("d1", "d2", 0));
    check_err!(stat(&s.path("d1")), Errno::ENOENT);
    check_err!(rename("d2", "b", 0), Errno::ENOTDIR);
    check_err!(rename("b", "d2", 0), Errno::EISDIR);
    check_err!(rename("full", "full/sub", 0), Errno::EINVAL);
    // A name renamed onto itself (or onto another link of the same file) does nothing.
    check_ok!(rename("b", "b", 0));
    check_eq!(check_ok!(read_file(&s.path("b"))), b"C");
    check_err!(rename("missing", "z", 0), Errno::ENOENT);
    check_err!(rename("b", "no-dir/z", 0), Errno::ENOENT);
    Ok(())
}

pub fn linkat_shares_the_file() -> TestResult {
    let s = check_ok!(Scratch::new("link"));
    let a = check_ok!(s.file("a", b"one"));
    let b = s.path("b");
    check_ok!(sys::linkat(AT_FDCWD, at(&a), AT_FDCWD, at(&b), 0));
    let (sa, sb) = (check_ok!(stat(&a)), check_ok!(stat(&b)));
    check_eq!((sa.st_ino, sa.st_nlink), (sb.st_ino, 2));
    // One file under two names: a write through one is read through the other.
    let fd = check_ok!(Fd::open(
        &b,
        sys::O_WRONLY | sys::O_APPEND | sys::O_CLOEXEC,
        0
    ));
    check_ok!(fd.write_all(b" two"));
    check_eq!(check_ok!(read_file(&a)), b"one two");
    check_ok!(sys::unlinkat(AT_FDCWD, at(&a), 0));
    check_eq!(check_ok!(stat(&b)).st_nlink, 1);
    check_eq!(check_ok!(read_file(&b)), b"one two");
    check_err!(
        sys::linkat(AT_FDCWD, at(&b), AT_FDCWD, at(&b), 0),
        Errno::EEXIST
    );
    let d = check_ok!(s.subdir("d"));
    check_err!(
        sys::linkat(AT_FDCWD, at(&d), AT_FDCWD, at(&s.path("d2")), 0),
        Errno::EPERM
    );
    check_err!(
        sys::linkat(AT_FDCWD, at(&a), AT_FDCWD, at(&s.path("c")), 0),
        Errno::ENOENT
    );
    check_err!(
        sys::linkat(AT_FDCWD, at(&b), AT_FDCWD, at(&s.path("c")), 0x1),
        Errno::EINVAL
    );
    // A link to a symbolic link is a second link, unless AT_SYMLINK_FOLLOW asks for its target.
    let l = check_ok!(s.symlink("l", "b"));
    check_ok!(sys::linkat(
        AT_FDCWD,
        at(&l),
        AT_FDCWD,
        at(&s.path("l2")),
        0
    ));
    check_eq!(kind(check_ok!(lstat(&s.path("l2"))).st_mode), S_IFLNK);
    let follow = sys::AT_SYMLINK_FOLLOW;
    check_ok!(sys::linkat(
        AT_FDCWD,
        at(&l),
        AT_FDCWD,
        at(&s.path("b2")),
        follow
    ));
    check_eq!(check_ok!(lstat(&s.path("b2"))).st_ino, sb.st_ino);
    Ok(())
}

pub fn symlink_and_readlink() -> TestResult {
    let s = check_ok!(Scratch::new("symlink"));
    let target = "some/where/not-there";
    let link = check_ok!(s.symlink("l", target));
    check_eq!(check_ok!(readlink(&link)), target);
    check_eq!(check_ok!(lstat(&link)).st_size as usize, target.len());
    // The target comes back truncated to the buffer, without a NUL.
    let mut buf = [0xffu8; 8];
    let p = buf.as_mut_ptr() as usize;
    check_eq!(check_ok!(sys::readlinkat(AT_FDCWD, at(&link), p, 4)), 4);
    check_eq!(buf, *b"some\xff\xff\xff\xff");
    check_err!(sys::readlinkat(AT_FDCWD, at(&link), p, 0), Errno::EINVAL);
    let f = check_ok!(s.file("f", b""));
    check_err!(sys::readlinkat(AT_FDCWD, at(&f), p, 8), Errno::EINVAL);
    check_err!(
        sys::readlinkat(AT_FDCWD, at(&cstring(s.dir())), p, 8),
        Errno::EINVAL
    );
    check_err!(sys::symlinkat(at(c"x"), AT_FDCWD, at(&link)), Errno::EEXIST);
    check_err!(
        sys::symlinkat(at(c""), AT_FDCWD, at(&s.path("e"))),
        Errno::ENOENT
    );
    // Relative to a directory descriptor.
    let dir = check_ok!(Fd::open(&cstring(s.dir()), DIR, 0));
    check_ok!(sys::symlinkat(at(c"f"), dir.0, at(c"rel")));
    let mut rel = [0u8; 8];
    let n = check_ok!(sys::readlinkat(
        dir.0,
        at(c"rel"),
        rel.as_mut_ptr() as usize,
        8
    ));
    check_eq!(&rel[..n], b"f");
    Ok(())
}

pub fn chmod_changes_the_mode() -> TestResult {
    let s = check_ok!(Scratch::new("chmod"));
    let path = check_ok!(s.file("f", b""));
    let fd = check_ok!(Fd::open(&path, RO, 0));
    check_ok!(sys::fchmod(fd.0, 0o600));
    check_eq!(check_ok!(stat(&path)).st_mode, S_IFREG | 0o600);
    check_ok!(sys::fchmodat(AT_FDCWD, at(&path), 0o4751));
    check_eq!(check_ok!(fd.stat()).st_mode, S_IFREG | 0o4751);
    // The file type bits of the argument are ignored.
    check_ok!(sys::fchmod(fd.0, (S_IFDIR | 0o644) as usize));
    check_eq!(check_ok!(fd.stat()).st_mode, S_IFREG | 0o644);
    // Through a symbolic link: the target changes.
    let link = check_ok!(s.symlink("l", "f"));
    check_ok!(sys::fchmodat(AT_FDCWD, at(&link), 0o640));
    check_eq!(check_ok!(stat(&path)).st_mode, S_IFREG | 0o640);
    check_err!(sys::fchmod(9999, 0o644), Errno::EBADF);
    check_err!(
        sys::fchmodat(AT_FDCWD, at(&s.path("missing")), 0o644),
        Errno::ENOENT
    );
    Ok(())
}

// ---- sizes ----

pub fn truncate_grows_and_shrinks() -> TestResult {
    let s = check_ok!(Scratch::new("truncate"));
    let path = check_ok!(s.file("f", b"0123456789"));
    let fd = check_ok!(Fd::open(&path, RW, 0));
    check_ok!(sys::ftruncate(fd.0, 5000));
    check_eq!(check_ok!(fd.stat()).st_size, 5000);
    let all = check_ok!(fd.read_at(0, 6000));
    check_eq!(all.len(), 5000);
    check_eq!(&all[..10], b"0123456789");
    check!(
        all[10..].iter().all(|&b| b == 0),
        "grown bytes are not zeros"
    );
    check_ok!(sys::truncate(at(&path), 4));
    check_eq!(check_ok!(read_file(&path)), b"0123");
    // Grown again: what was cut is gone, zeros come back.
    check_ok!(sys::ftruncate(fd.0, 8));
    check_eq!(check_ok!(read_file(&path)), b"0123\0\0\0\0");
    check_eq!(
        check_ok!(sys::lseek(fd.0, 0, sys::SEEK_CUR)),
        0,
        "the offset stays"
    );
    check_err!(sys::ftruncate(fd.0, usize::MAX), Errno::EINVAL);
    let ro = check_ok!(Fd::open(&path, RO, 0));
    check_err!(sys::ftruncate(ro.0, 0), Errno::EINVAL);
    check_err!(sys::ftruncate(9999, 0), Errno::EBADF);
    check_err!(sys::truncate(at(&cstring(s.dir())), 0), Errno::EISDIR);
    check_err!(sys::truncate(at(&s.path("missing")), 0), Errno::ENOENT);
    let (_r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_err!(sys::ftruncate(w.0, 0), Errno::EINVAL);
    Ok(())
}

pub fn fallocate_grows_the_file() -> TestResult {
    let s = check_ok!(Scratch::new("fallocate"));
    let path = check_ok!(s.file("f", b"abc"));
    let fd = check_ok!(Fd::open(&path, RW, 0));
    check_ok!(sys::fallocate(fd.0, 0, 0, 8192));
    let st = check_ok!(fd.stat());
    check_eq!(st.st_size, 8192);
    check!(st.st_blocks * 512 >= 8192, "st_blocks {}", st.st_blocks);
    let all = check_ok!(fd.read_at(0, 9000));
    check_eq!(&all[..3], b"abc");
    check!(
        all[3..].iter().all(|&b| b == 0),
        "allocated bytes are not zeros"
    );
    // KEEP_SIZE allocates without growing; a range inside the file changes nothing.
    check_ok!(sys::fallocate(fd.0, sys::FALLOC_FL_KEEP_SIZE, 8192, 4096));
    check_eq!(check_ok!(fd.stat()).st_size, 8192);
    check_ok!(sys::fallocate(fd.0, 0, 0, 10));
    check_eq!(check_ok!(fd.read_at(0, 3)), b"abc");
    check_err!(sys::fallocate(fd.0, 0, 0, 0), Errno::EINVAL);
    check_err!(sys::fallocate(fd.0, 0, usize::MAX, 10), Errno::EINVAL);
    let ro = check_ok!(Fd::open(&path, RO, 0));
    check_err!(sys::fallocate(ro.0, 0, 0, 10), Errno::EBADF);
    let (_r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_err!(sys::fallocate(w.0, 0, 0, 10), Errno::ESPIPE);
    Ok(())
}

pub fn fsync_and_fdatasync() -> TestResult {
    let s = check_ok!(Scratch::new("fsync"));
    let path = check_ok!(s.file("f", b"x"));
    let fd = check_ok!(Fd::open(&path, RW, 0));
    check_ok!(sys::fsync(fd.0));
    check_ok!(sys::fdatasync(fd.0));
    let dir = check_ok!(Fd::open(&cstring(s.dir()), DIR, 0));
    check_ok!(sys::fsync(dir.0));
    check_err!(sys::fsync(9999), Errno::EBADF);
    check_err!(sys::fdatasync(9999), Errno::EBADF);
    let (r, _w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_err!(sys::fsync(r.0), Errno::EINVAL);
    Ok(())
}

// ---- the working directory, access, umask ----

/// getcwd into a buffer of `len` bytes: the path without its NUL.
fn getcwd(len: usize) -> Result<String, Errno> {
    let mut buf = alloc::vec![0u8; len];
    let n = sys::getcwd(buf.as_mut_ptr() as usize, len)?;
    // The length counts the NUL.
    buf.truncate(n.saturating_sub(1));
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub fn chdir_fchdir_getcwd() -> TestResult {
    let _cwd = check_ok!(Cwd::save());
    let s = check_ok!(Scratch::new("cwd"));
    let sub = check_ok!(s.subdir("sub"));
    check_ok!(sys::chdir(at(&cstring(s.dir()))));
    check_eq!(check_ok!(getcwd(4096)), s.dir());
    // Relative paths start here.
    check_ok!(s.file("f", b"here"));
    check_eq!(check_ok!(read_file(c"f")), b"here");
    check_ok!(sys::chdir(at(c"sub")));
    check_eq!(check_ok!(getcwd(4096)), alloc::format!("{}/sub", s.dir()));
    check_ok!(sys::chdir(at(c"..")));
    check_eq!(check_ok!(getcwd(4096)), s.dir());
    let fd = check_ok!(Fd::open(&sub, DIR, 0));
    check_ok!(sys::fchdir(fd.0));
    check_eq!(check_ok!(getcwd(4096)), alloc::format!("{}/sub", s.dir()));
    // The buffer must hold the path and its NUL.
    let exact = s.dir().len() + "/sub".len() + 1;
    check_eq!(check_ok!(getcwd(exact)).len(), exact - 1);
    check_err!(getcwd(exact - 1), Errno::ERANGE);
    check_err!(getcwd(1), Errno::ERANGE);
    check_err!(sys::getcwd(0, 0), Errno::ERANGE);
    check_err!(sys::getcwd(KERNEL_ADDR, 4096), Errno::EFAULT);
    let file = check_ok!(Fd::open(&s.path("f"), RO, 0));
    check_err!(sys::fchdir(file.0), Errno::ENOTDIR);
    check_err!(sys::fchdir(9999), Errno::EBADF);
    check_err!(sys::chdir(at(&s.path("f"))), Errno::ENOTDIR);
    check_err!(sys::chdir(at(&s.path("missing"))), Errno::ENOENT);
    check_eq!(
        check_ok!(getcwd(4096)),
        alloc::format!("{}/sub", s.dir()),
        "failures move nothing"
    );
    check_ok!(sys::chdir(at(c"/")));
    check_eq!(check_ok!(getcwd(4096)), "/");
    Ok(())
}

pub fn faccessat2_modes() -> TestResult {
    let s = check_ok!(Scratch::new("access"));
    let plain = check_ok!(s.file("plain", b""));
    let exe = check_ok!(s.file("exe", b""));
    check_ok!(sys::fchmodat(AT_FDCWD, at(&exe), 0o755));
    let access = |path: &core::ffi::CStr, mode: usize, flags: usize| {
        sys::faccessat2(AT_FDCWD, at(path), mode, flags)
    };
    check_ok!(access(&plain, sys::F_OK, 0));
    check_ok!(access(&plain, sys::R_OK | sys::W_OK, 0));
    // Even root may execute only what has an execute bit.
    check_err!(access(&plain, sys::X_OK, 0), Errno::EACCES);
    check_ok!(access(&exe, sys::X_OK, sys::AT_EACCESS));
    check_err!(access(&s.path("missing"), sys::F_OK, 0), Errno::ENOENT);
    // A dangling link: missing when followed, there when not.
    let dangling = check_ok!(s.symlink("dangling", "missing"));
    check_err!(access(&dangling, sys::F_OK, 0), Errno::ENOENT);
    check_ok!(access(&dangling, sys::F_OK, sys::AT_SYMLINK_NOFOLLOW));
    let fd = check_ok!(Fd::open(&exe, RO, 0));
    check_ok!(sys::faccessat2(
        fd.0,
        at(c""),
        sys::X_OK,
        sys::AT_EMPTY_PATH
    ));
    check_err!(access(&plain, 8, 0), Errno::EINVAL);
    check_err!(access(&plain, sys::F_OK, 0x1), Errno::EINVAL);
    // faccessat: the same without flags.
    check_ok!(sys::faccessat(AT_FDCWD, at(&exe), sys::X_OK));
    check_err!(
        sys::faccessat(AT_FDCWD, at(&plain), sys::X_OK),
        Errno::EACCES
    );
    Ok(())
}

pub fn umask_masks_new_modes() -> TestResult {
    let guard = Umask::set(0o077);
    check_eq!(
        check_ok!(sys::umask(0o027)),
        0o077,
        "umask returns the old mask"
    );
    let s = check_ok!(Scratch::new("umask"));
    let f = s.path("f");
    drop(check_ok!(Fd::open(&f, NEW, 0o666)));
    check_eq!(check_ok!(stat(&f)).st_mode, S_IFREG | 0o640);
    check_ok!(sys::mkdirat(AT_FDCWD, at(&s.path("d")), 0o777));
    check_eq!(check_ok!(stat(&s.path("d"))).st_mode, S_IFDIR | 0o750);
    // Only the permission bits count.
    check_eq!(check_ok!(sys::umask(0o7777)), 0o027);
    check_eq!(check_ok!(sys::umask(0o022)), 0o777);
    // chmod is not masked.
    check_ok!(sys::fchmodat(AT_FDCWD, at(&f), 0o666));
    check_eq!(check_ok!(stat(&f)).st_mode, S_IFREG | 0o666);
    drop(guard);
    Ok(())
}

// ---- special files and calls ----

pub fn memfd_create_makes_a_file() -> TestResult {
    let fd = Fd(check_ok!(sys::memfd_create(
        at(c"usertests"),
        sys::MFD_CLOEXEC
    )));
    check_eq!(check_ok!(fd.fd_flags()), sys::FD_CLOEXEC);
    let st = check_ok!(fd.stat());
    check_eq!((kind(st.st_mode), st.st_size), (S_IFREG, 0));
    check_ok!(fd.write_all(b"in memory"));
    check_eq!(check_ok!(fd.read_at(3, 64)), b"memory");
    check_ok!(sys::ftruncate(fd.0, 3));
    check_eq!(check_ok!(fd.read_at(0, 64)), b"in ");
    let plain = Fd(check_ok!(sys::memfd_create(at(c""), 0)));
    check_eq!(check_ok!(plain.fd_flags()), 0);
    let long = cstring(&"n".repeat(250));
    check_err!(sys::memfd_create(at(&long), 0).map(Fd), Errno::EINVAL);
    check_err!(sys::memfd_create(at(c"x"), 0x100).map(Fd), Errno::EINVAL);
    check_err!(sys::memfd_create(KERNEL_ADDR, 0).map(Fd), Errno::EFAULT);
    Ok(())
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

pub fn statfs_names_the_filesystem() -> TestResult {
    let mut fs = sys::StatFs::default();
    let buf = &raw mut fs as usize;
    check_ok!(sys::statfs(at(c"/tmp"), buf));
    check_eq!(fs.f_type, TMPFS_MAGIC, "/tmp is tmpfs");
    check!(fs.f_bsize > 0 && fs.f_namelen >= 255, "{fs:?}");
    let s = check_ok!(Scratch::new("statfs"));
    let fd = check_ok!(Fd::open(&check_ok!(s.file("f", b"")), RO, 0));
    let mut by_fd = sys::StatFs::default();
    check_ok!(sys::fstatfs(fd.0, &raw mut by_fd as usize));
    check_eq!(by_fd.f_type, TMPFS_MAGIC);
    check_ok!(sys::statfs(at(c"/proc"), buf));
    check_eq!(fs.f_type, PROC_SUPER_MAGIC, "/proc is proc");
    check_err!(
        sys::statfs(at(c"/nonexistent-usertests"), buf),
        Errno::ENOENT
    );
    check_err!(sys::fstatfs(9999, buf), Errno::EBADF);
    check_err!(sys::statfs(at(c"/tmp"), KERNEL_ADDR), Errno::EFAULT);
    Ok(())
}

pub fn sendfile_copies() -> TestResult {
    let s = check_ok!(Scratch::new("sendfile"));
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let src = check_ok!(Fd::open(&check_ok!(s.file("src", &data)), RO, 0));
    let dst = check_ok!(Fd::open(&s.path("dst"), NEW, 0o644));
    // With an offset pointer: it advances, the source's offset does not.
    let mut offset = 100i64;
    let off = &raw mut offset as usize;
    check_eq!(check_ok!(sys::sendfile(dst.0, src.0, off, 5000)), 5000);
    check_eq!(offset, 5100);
    check_eq!(check_ok!(sys::lseek(src.0, 0, sys::SEEK_CUR)), 0);
    check_eq!(check_ok!(dst.read_at(0, 6000)), &data[100..5100]);
    // Without one: from the source's offset, which advances; the end gives a short count.
    check_ok!(sys::lseek(src.0, 9000, sys::SEEK_SET));
    check_eq!(check_ok!(sys::sendfile(dst.0, src.0, 0, 5000)), 1000);
    check_eq!(check_ok!(sys::lseek(src.0, 0, sys::SEEK_CUR)), 10_000);
    check_eq!(check_ok!(sys::sendfile(dst.0, src.0, 0, 5000)), 0);
    check_eq!(check_ok!(dst.stat()).st_size, 6000);
    // Into a pipe.
    let (r, w) = check_ok!(pipe(sys::O_CLOEXEC));
    let mut at_start = 0i64;
    check_eq!(
        check_ok!(sys::sendfile(w.0, src.0, &raw mut at_start as usize, 300)),
        300
    );
    drop(w);
    check_eq!(check_ok!(r.read_to_end()), &data[..300]);
    check_err!(sys::sendfile(dst.0, 9999, 0, 10), Errno::EBADF);
    check_err!(sys::sendfile(9999, src.0, 0, 10), Errno::EBADF);
    let wo = check_ok!(Fd::open(&s.path("src"), sys::O_WRONLY | sys::O_CLOEXEC, 0));
    check_err!(sys::sendfile(dst.0, wo.0, 0, 10), Errno::EBADF);
    check_err!(sys::sendfile(src.0, src.0, 0, 10), Errno::EBADF);
    Ok(())
}

/// The 8-byte counter an eventfd read gives.
fn eventfd_read(fd: usize) -> Result<u64, Errno> {
    let mut value = 0u64;
    sys::read(fd, &raw mut value as usize, 8).map(|_| value)
}

fn eventfd_write(fd: usize, value: u64) -> Result<usize, Errno> {
    sys::write(fd, &raw const value as usize, 8)
}

pub fn eventfd_counts() -> TestResult {
    let fd = Fd(check_ok!(sys::eventfd2(3, sys::EFD_NONBLOCK)));
    check_eq!(check_ok!(eventfd_read(fd.0)), 3);
    check_err!(eventfd_read(fd.0), Errno::EAGAIN);
    check_eq!(check_ok!(eventfd_write(fd.0, 2)), 8);
    check_eq!(check_ok!(eventfd_write(fd.0, 5)), 8);
    check_eq!(check_ok!(eventfd_read(fd.0)), 7, "writes add up");
    // The counter stops below u64::MAX: a write that would pass it waits (here: EAGAIN).
    check_ok!(eventfd_write(fd.0, u64::MAX - 1));
    check_err!(eventfd_write(fd.0, 1), Errno::EAGAIN);
    check_err!(eventfd_write(fd.0, u64::MAX), Errno::EINVAL);
    let mut small = [0u8; 4];
    check_err!(
        sys::read(fd.0, small.as_mut_ptr() as usize, 4),
        Errno::EINVAL
    );
    check_err!(sys::write(fd.0, small.as_ptr() as usize, 4), Errno::EINVAL);
    // EFD_SEMAPHORE: each read takes one.
    let sem = Fd(check_ok!(sys::eventfd2(
        2,
        sys::EFD_SEMAPHORE | sys::EFD_NONBLOCK
    )));
    check_eq!(check_ok!(eventfd_read(sem.0)), 1);
    check_eq!(check_ok!(eventfd_read(sem.0)), 1);
    check_err!(eventfd_read(sem.0), Errno::EAGAIN);
    check_err!(sys::eventfd2(0, 0x10).map(Fd), Errno::EINVAL);
    // Blocking: a read waits for a thread's write.
    let blocking = Fd(check_ok!(sys::eventfd2(0, sys::O_CLOEXEC)));
    let raw_fd = blocking.0;
    let writer = urt::thread::spawn(move || {
        sys::sleep_ns(20_000_000);
        eventfd_write(raw_fd, 9).is_ok()
    });
    check_eq!(check_ok!(eventfd_read(blocking.0)), 9);
    check!(writer.join());
    Ok(())
}

pub fn sysinfo_is_plausible() -> TestResult {
    let mut info = sys::Sysinfo::default();
    check_ok!(sys::sysinfo(&raw mut info as usize));
    check!(
        info.totalram > 0 && info.freeram <= info.totalram,
        "{info:?}"
    );
    check!(info.mem_unit >= 1, "mem_unit {}", info.mem_unit);
    check!(info.procs >= 1, "procs {}", info.procs);
    check!(info.uptime >= 0, "uptime {}", info.uptime);
    check!(info.freeswap <= info.totalswap);
    check_err!(sys::sysinfo(KERNEL_ADDR), Errno::EFAULT);
    Ok(())
}
