//! Mappings of files: MAP_SHARED pages are the file's (stores reach read(), write() reaches
//! the mapping, a forked child's stores reach the parent), MAP_PRIVATE pages become the
//! process's own when written; pages wholly past the end of the file raise SIGBUS, also after
//! ftruncate shrinks the file under a mapping; msync; and mmap's error cases for files.
//!
//! Accesses that must raise SIGBUS run in a forked child, whose death by SIGBUS is the check.

use alloc::vec::Vec;

use urt::ktap::TestResult;
use urt::signal::SIGBUS;
use urt::sys::{self, Errno, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE};
use urt::{check, check_eq, check_err, check_ok};

use crate::process::{Child, End, touch};
use crate::util::{Fd, Mapping, Scratch, pipe, unmapped_addr};

const RW: usize = PROT_READ | PROT_WRITE;
const O_RW: usize = sys::O_RDWR | sys::O_CLOEXEC;

/// A file of `pages` pages, page `i` filled with the byte `i + 1`, open read-write.
fn paged_file(s: &Scratch, name: &str, pages: usize) -> Result<Fd, Errno> {
    let data: Vec<u8> = (0..pages * PAGE_SIZE)
        .map(|i| (i / PAGE_SIZE + 1) as u8)
        .collect();
    Fd::open(&s.file(name, &data)?, O_RW, 0)
}

/// How a child that reads the byte at `addr` ends.
fn touch_in_child(addr: usize) -> Result<End, Errno> {
    Child::fork(|| {
        touch(addr);
        0
    })?
    .end()
}

pub fn shared_stores_reach_read() -> TestResult {
    let s = check_ok!(Scratch::new("map-shared"));
    let fd = check_ok!(paged_file(&s, "f", 2));
    let map = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, RW, MAP_SHARED, 0));
    check_eq!(map.read(PAGE_SIZE - 1, 2), [1, 2]);
    map.write(10, b"stored");
    map.write(5000, b"there");
    check_eq!(check_ok!(fd.read_at(10, 6)), b"stored");
    check_eq!(check_ok!(fd.read_at(5000, 5)), b"there");
    check_eq!(
        check_ok!(fd.stat()).st_size as usize,
        2 * PAGE_SIZE,
        "the size stays"
    );
    // They stay in the file when the mapping goes.
    drop(map);
    check_eq!(check_ok!(fd.read_at(10, 6)), b"stored");
    Ok(())
}

pub fn write_reaches_a_shared_mapping() -> TestResult {
    let s = check_ok!(Scratch::new("map-write"));
    let fd = check_ok!(paged_file(&s, "f", 1));
    let map = check_ok!(Mapping::file(fd.0, PAGE_SIZE, PROT_READ, MAP_SHARED, 0));
    check_eq!(map.read(100, 1), [1]);
    check_eq!(
        check_ok!(sys::pwrite64(fd.0, c"new".as_ptr() as usize, 3, 100)),
        3
    );
    check_eq!(map.read(100, 3), b"new");
    // Growing the file with write shows in a mapping that reaches past the old end.
    let wide = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, PROT_READ, MAP_SHARED, 0));
    check_ok!(sys::lseek(fd.0, 0, sys::SEEK_END));
    check_ok!(fd.write_all(b"grown"));
    check_eq!(wide.read(PAGE_SIZE, 6), b"grown\0");
    Ok(())
}

pub fn private_stores_stay_private() -> TestResult {
    let s = check_ok!(Scratch::new("map-private"));
    let fd = check_ok!(paged_file(&s, "f", 2));
    let private = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, RW, MAP_PRIVATE, 0));
    let shared = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, PROT_READ, MAP_SHARED, 0));
    private.write(20, b"mine");
    check_eq!(private.read(20, 4), b"mine");
    check_eq!(check_ok!(fd.read_at(20, 4)), [1; 4], "read() sees the file");
    check_eq!(shared.read(20, 4), [1; 4], "a shared mapping sees the file");
    // Once copied, the page no longer follows the file.
    check_ok!(sys::pwrite64(fd.0, c"file".as_ptr() as usize, 4, 20));
    check_eq!(private.read(20, 4), b"mine");
    check_eq!(shared.read(20, 4), b"file");
    Ok(())
}

pub fn shared_file_mapping_across_fork() -> TestResult {
    let s = check_ok!(Scratch::new("map-fork"));
    let fd = check_ok!(paged_file(&s, "f", 1));
    let map = check_ok!(Mapping::file(fd.0, PAGE_SIZE, RW, MAP_SHARED, 0));
    let mut child = check_ok!(Child::fork(|| {
        map.write(0, b"from the child");
        0
    }));
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_eq!(map.read(0, 14), b"from the child");
    check_eq!(check_ok!(fd.read_at(0, 14)), b"from the child");
    // A memfd mapping is shared the same way.
    let memfd = Fd(check_ok!(sys::memfd_create(
        c"ut-map".as_ptr() as usize,
        sys::MFD_CLOEXEC
    )));
    check_ok!(sys::ftruncate(memfd.0, PAGE_SIZE));
    let mem = check_ok!(Mapping::file(memfd.0, PAGE_SIZE, RW, MAP_SHARED, 0));
    let mut child = check_ok!(Child::fork(|| {
        mem.write(8, b"memfd");
        0
    }));
    check_eq!(check_ok!(child.end()), End::Exited(0));
    check_eq!(check_ok!(memfd.read_at(8, 5)), b"memfd");
    Ok(())
}

pub fn pages_past_the_end_raise_sigbus() -> TestResult {
    let s = check_ok!(Scratch::new("map-eof"));
    let fd = check_ok!(Fd::open(
        &check_ok!(s.file("f", &[9u8; PAGE_SIZE + 100])),
        O_RW,
        0
    ));
    for flags in [MAP_SHARED, MAP_PRIVATE] {
        let map = check_ok!(Mapping::file(fd.0, 3 * PAGE_SIZE, RW, flags, 0));
        // The page the end falls in: the file, then zeros; stores there do not grow the file.
        check_eq!(map.read(PAGE_SIZE + 99, 2), [9, 0]);
        map.write(PAGE_SIZE + 200, b"beyond");
        check_eq!(check_ok!(fd.stat()).st_size as usize, PAGE_SIZE + 100);
        check_eq!(check_ok!(fd.read_at(PAGE_SIZE + 200, 6)).len(), 0);
        // A page wholly past the end.
        check_eq!(
            check_ok!(touch_in_child(map.page(2))),
            End::Killed(SIGBUS as i32),
            "a read past the end of the file (flags {flags:#x})"
        );
    }
    Ok(())
}

pub fn truncate_under_a_mapping_raises_sigbus() -> TestResult {
    let s = check_ok!(Scratch::new("map-trunc"));
    let fd = check_ok!(paged_file(&s, "f", 2));
    let map = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, RW, MAP_SHARED, 0));
    check_eq!(map.read(PAGE_SIZE, 1), [2]);
    check_ok!(sys::ftruncate(fd.0, PAGE_SIZE));
    check_eq!(
        check_ok!(touch_in_child(map.page(1))),
        End::Killed(SIGBUS as i32),
        "a read of a page the file lost"
    );
    check_eq!(map.read(0, 1), [1], "the page still in the file");
    // Grown again, the page comes back as zeros: the old contents are gone.
    check_ok!(sys::ftruncate(fd.0, 2 * PAGE_SIZE));
    check_eq!(map.read(PAGE_SIZE, 4), [0; 4]);
    Ok(())
}

pub fn msync_rules() -> TestResult {
    let s = check_ok!(Scratch::new("msync"));
    let fd = check_ok!(paged_file(&s, "f", 2));
    let map = check_ok!(Mapping::file(fd.0, 2 * PAGE_SIZE, RW, MAP_SHARED, 0));
    map.write(0, b"synced");
    let len = 2 * PAGE_SIZE;
    check_ok!(sys::msync(map.addr, len, sys::MS_SYNC));
    check_eq!(check_ok!(fd.read_at(0, 6)), b"synced");
    check_ok!(sys::msync(map.addr, len, sys::MS_ASYNC));
    check_ok!(sys::msync(map.addr, len, sys::MS_INVALIDATE));
    check_ok!(sys::msync(map.addr, 0, sys::MS_SYNC));
    check_ok!(sys::msync(map.addr, 100, sys::MS_SYNC));
    let both = sys::MS_SYNC | sys::MS_ASYNC;
    check_err!(sys::msync(map.addr, len, both), Errno::EINVAL);
    check_err!(sys::msync(map.addr, len, 0x8), Errno::EINVAL);
    check_err!(sys::msync(map.addr + 1, len, sys::MS_SYNC), Errno::EINVAL);
    check_err!(
        sys::msync(unmapped_addr(), PAGE_SIZE, sys::MS_SYNC),
        Errno::ENOMEM
    );
    // Anonymous memory may be synced too.
    let anon = check_ok!(Mapping::rw(1));
    check_ok!(sys::msync(anon.addr, PAGE_SIZE, sys::MS_SYNC));
    Ok(())
}

pub fn mmap_file_errors() -> TestResult {
    let s = check_ok!(Scratch::new("map-errors"));
    let path = check_ok!(s.file("f", &[1u8; 2 * PAGE_SIZE]));
    let ro = check_ok!(Fd::open(&path, sys::O_RDONLY | sys::O_CLOEXEC, 0));
    let wo = check_ok!(Fd::open(&path, sys::O_WRONLY | sys::O_CLOEXEC, 0));
    let map = |fd: usize, prot, flags, offset| Mapping::file(fd, PAGE_SIZE, prot, flags, offset);
    check_err!(map(ro.0, RW, MAP_SHARED, 0), Errno::EACCES);
    check_ok!(map(ro.0, PROT_READ, MAP_SHARED, 0));
    check_ok!(map(ro.0, RW, MAP_PRIVATE, 0));
    check_err!(map(wo.0, PROT_READ, MAP_SHARED, 0), Errno::EACCES);
    check_err!(map(wo.0, PROT_READ, MAP_PRIVATE, 0), Errno::EACCES);
    check_err!(map(ro.0, PROT_READ, MAP_SHARED, 100), Errno::EINVAL);
    check_err!(
        Mapping::file(ro.0, 0, PROT_READ, MAP_SHARED, 0),
        Errno::EINVAL
    );
    check_err!(map(9999, PROT_READ, MAP_SHARED, 0), Errno::EBADF);
    let dir = check_ok!(Fd::open(&crate::util::cstring(s.dir()), sys::O_RDONLY, 0));
    check_err!(map(dir.0, PROT_READ, MAP_PRIVATE, 0), Errno::ENODEV);
    let (r, _w) = check_ok!(pipe(sys::O_CLOEXEC));
    check_err!(map(r.0, PROT_READ, MAP_PRIVATE, 0), Errno::ENODEV);
    let null = check_ok!(Fd::open(c"/dev/null", O_RW, 0));
    check_err!(map(null.0, PROT_READ, MAP_SHARED, 0), Errno::ENODEV);
    // /dev/zero maps as zeroed memory.
    let zero = check_ok!(Fd::open(c"/dev/zero", O_RW, 0));
    let z = check_ok!(map(zero.0, RW, MAP_PRIVATE, 0));
    check!(z.all(0, 0), "/dev/zero mapped with non-zero bytes");
    z.fill(0, 0x5a);
    check!(z.all(0, 0x5a));
    Ok(())
}

pub fn mmap_offset_and_lifetime() -> TestResult {
    let s = check_ok!(Scratch::new("map-offset"));
    let fd = check_ok!(paged_file(&s, "f", 3));
    let third = check_ok!(Mapping::file(
        fd.0,
        PAGE_SIZE,
        PROT_READ,
        MAP_SHARED,
        2 * PAGE_SIZE
    ));
    check!(
        third.all(0, 3),
        "the page at offset 2 pages is not the file's third"
    );
    let tail = check_ok!(Mapping::file(
        fd.0,
        2 * PAGE_SIZE,
        RW,
        MAP_SHARED,
        PAGE_SIZE
    ));
    check!(tail.all(0, 2) && tail.all(1, 3));
    // The mapping keeps the file: closed and unlinked, it still reads and writes it.
    let path = s.path("f");
    drop(fd);
    check_ok!(sys::unlinkat(sys::AT_FDCWD, path.as_ptr() as usize, 0));
    tail.write(PAGE_SIZE, b"kept");
    check_eq!(
        third.read(0, 4),
        b"kept",
        "two mappings of the unlinked file share it"
    );
    Ok(())
}
