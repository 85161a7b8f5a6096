//! The calls on a descriptor as Linux 6.12 checks their arguments: descriptors and `int` flags
//! are 32-bit (the register's upper half is not part of them), and each call's errors come in
//! Linux's order (which of a bad descriptor, a bad offset, a bad buffer or a file that cannot
//! do it is answered first); `SEEK_DATA` and `SEEK_HOLE` in tmpfs; fcntl's signal, owner,
//! lease, seal and lock commands; the extended attribute calls on a descriptor, by namespace
//! and kind of file.

use urt::ktap::TestResult;
use urt::sys::{self, Errno, POLLHUP, POLLIN, PollFd};
use urt::{check_eq, check_err, check_ok};

use crate::process::Child;
use crate::util::{Fd, KERNEL_ADDR, Mapping, Scratch, pipe};

/// A descriptor number with bits above the low 32 that Linux never looks at.
const HIGH: usize = 1 << 32;
/// A descriptor that is open nowhere.
const CLOSED: usize = 9999;
const EXDEV: Errno = Errno(18);
const F_SETOWN: usize = 8;
const F_GETOWN: usize = 9;
const F_SETSIG: usize = 10;
const F_GETSIG: usize = 11;
const F_GETLEASE: usize = 1025;
const F_ADD_SEALS: usize = 1033;
const F_GET_SEALS: usize = 1034;
const F_GETLK: usize = 5;
const F_SETLK: usize = 6;
const F_RDLCK: u16 = 0;
const F_WRLCK: u16 = 1;
const F_UNLCK: u16 = 2;
const SEEK_END: usize = 2;
const SEEK_DATA: usize = 3;
const SEEK_HOLE: usize = 4;
const PAGE: usize = 4096;
const MFD_ALLOW_SEALING: usize = 2;
const MFD_HUGETLB: usize = 4;
const MFD_NOEXEC_SEAL: usize = 8;
const MFD_EXEC: usize = 0x10;
const COPY_FILE_RANGE: usize = 326;
const FSETXATTR: usize = 190;
const FGETXATTR: usize = 193;
const FREMOVEXATTR: usize = 199;

/// A file `name` in `s` holding `data`, open read-write, and open again read-only.
fn file_twice(s: &Scratch, name: &str, data: &[u8]) -> Result<(Fd, Fd), Errno> {
    let path = s.file(name, data)?;
    let rw = Fd::open(&path, sys::O_RDWR | sys::O_CLOEXEC, 0)?;
    let ro = Fd::open(&path, sys::O_RDONLY | sys::O_CLOEXEC, 0)?;
    Ok((rw, ro))
}

pub fn descriptors_and_int_flags_are_32_bit() -> TestResult {
    let s = check_ok!(Scratch::new("fdargs32"));
    let (file, _ro) = check_ok!(file_twice(&s, "f", b"abc"));
    let wide = file.0 | HIGH;
    let mut st = sys::Stat::default();
    check_ok!(sys::fstat(wide, &mut st as *mut sys::Stat as usize));
    check_eq!(check_ok!(sys::lseek(wide, 1, sys::SEEK_SET)), 1);
    let mut buf = [0u8; 2];
    check_eq!(
        check_ok!(sys::pread64(wide, buf.as_mut_ptr() as usize, 2, 0)),
        2
    );
    check_ok!(sys::fchmod(wide, 0o644));
    check_ok!(sys::fdatasync(wide));
    check_ok!(sys::fcntl(wide, sys::F_GETFL, 0));
    let copy = Fd(check_ok!(sys::dup(wide)));
    let target = Fd(41);
    check_eq!(check_ok!(sys::dup2(wide, target.0 | HIGH)), target.0);
    // dup3's flags are an int: high bits alone are no flag at all.
    check_eq!(check_ok!(sys::dup3(wide, target.0, 1 << 40)), target.0);
    check_eq!(check_ok!(target.fd_flags()), 0);
    check_ok!(sys::close(copy.0 | HIGH));
    core::mem::forget(copy);
    check_err!(sys::close(CLOSED | HIGH), Errno::EBADF);
    check_ok!(sys::close_range(CLOSED, CLOSED, 1 << 40));
    // memfd_create's flags are an unsigned int; 6.12 knows MFD_EXEC, MFD_NOEXEC_SEAL and
    // MFD_HUGETLB (with a page size in the top bits), not MFD_EXEC with MFD_NOEXEC_SEAL.
    let name = c"fdargs".as_ptr() as usize;
    for flags in [
        1 << 63,
        MFD_EXEC | MFD_ALLOW_SEALING,
        MFD_NOEXEC_SEAL,
        MFD_HUGETLB | MFD_EXEC,
        MFD_HUGETLB | 21 << 26,
    ] {
        drop(Fd(check_ok!(sys::memfd_create(name, flags))));
    }
    check_err!(sys::memfd_create(name, 21 << 26), Errno::EINVAL);
    // A huge page size x86-64 has no hugetlb pool of is ENODEV, after the name.
    for log in [1, 4, 12] {
        check_err!(
            sys::memfd_create(name, MFD_HUGETLB | log << 26),
            Errno::ENODEV
        );
    }
    check_err!(sys::memfd_create(0, MFD_HUGETLB | 1 << 26), Errno::EFAULT);
    // A huge-page memfd, no huge page reserved: it cannot be written, takes sizes in whole
    // huge pages, reads as zeroes and has no page to allocate.
    let huge = Fd(check_ok!(sys::memfd_create(name, MFD_HUGETLB)));
    check_err!(sys::pwrite64(huge.0, KERNEL_ADDR, 1, 0), Errno::EINVAL);
    check_err!(sys::write(huge.0, KERNEL_ADDR, 0), Errno::EINVAL);
    check_err!(sys::ftruncate(huge.0, PAGE), Errno::EINVAL);
    check_ok!(sys::ftruncate(huge.0, 2 << 20));
    let st = check_ok!(huge.stat());
    check_eq!((st.st_size, st.st_blksize), (2 << 20, 2 << 20));
    check_eq!(check_ok!(huge.read_at(4, 8)), alloc::vec![0u8; 8]);
    check_err!(sys::fallocate(huge.0, 0, 0, 1), Errno::ENOSPC);
    check_err!(
        sys::memfd_create(name, MFD_EXEC | MFD_NOEXEC_SEAL),
        Errno::EINVAL
    );
    check_err!(sys::memfd_create(0, MFD_EXEC), Errno::EFAULT);
    drop(Fd(check_ok!(sys::eventfd2(0, sys::EFD_NONBLOCK | 1 << 40))));
    Ok(())
}

pub fn descriptor_calls_check_in_linux_order() -> TestResult {
    let s = check_ok!(Scratch::new("fdorder"));
    let (file, ro) = check_ok!(file_twice(&s, "f", b"0123456789"));
    let (read_end, write_end) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    let event = Fd(check_ok!(sys::eventfd2(0, sys::EFD_NONBLOCK)));
    let dir = check_ok!(Fd::open(&s.path(""), sys::O_RDONLY | sys::O_DIRECTORY, 0));
    let buf = [0u8; 16].as_ptr() as usize;
    // pread64/pwrite64: a stream is ESPIPE before its access mode is looked at.
    check_err!(sys::pwrite64(read_end.0, buf, 1, 0), Errno::ESPIPE);
    check_err!(sys::pread64(write_end.0, buf, 1, 0), Errno::ESPIPE);
    check_err!(sys::pwrite64(ro.0, buf, 1, 0), Errno::EBADF);
    // ftruncate: a negative length before the descriptor.
    check_err!(sys::ftruncate(CLOSED, usize::MAX), Errno::EINVAL);
    // fallocate: the descriptor, the range, the mode, the access mode, the kind of file.
    check_err!(sys::fallocate(CLOSED, 0, usize::MAX, 1), Errno::EBADF);
    check_err!(sys::fallocate(ro.0, 0x80, 0, 1), Errno::EOPNOTSUPP);
    // 6.12: one operation at most, punching keeps the size, collapsing and inserting change it.
    for mode in [0x23, 0x28, 0x09, 0x02] {
        check_err!(sys::fallocate(ro.0, mode, 0, 1), Errno::EOPNOTSUPP);
    }
    check_err!(sys::fallocate(ro.0, 0x08, 0, 1), Errno::EBADF);
    check_err!(sys::fallocate(ro.0, 0, 0, 1), Errno::EBADF);
    check_err!(sys::fallocate(event.0, 0, 0, 1), Errno::ENODEV);
    check_err!(sys::fallocate(write_end.0, 0, 0, 1), Errno::ESPIPE);
    // lseek: the whence before the kind of file; an eventfd stays at 0; a directory has no
    // end to seek from; a target that wraps is EINVAL.
    check_err!(sys::lseek(read_end.0, 0, 5), Errno::EINVAL);
    check_err!(sys::lseek(read_end.0, 0, sys::SEEK_SET), Errno::ESPIPE);
    check_eq!(check_ok!(sys::lseek(event.0, 100, SEEK_END)), 0);
    check_err!(sys::lseek(dir.0, 0, SEEK_END), Errno::EINVAL);
    check_eq!(check_ok!(sys::lseek(file.0, 1, sys::SEEK_SET)), 1);
    check_err!(
        sys::lseek(file.0, i64::MAX as usize, sys::SEEK_CUR),
        Errno::EINVAL
    );
    tmpfs_holes(&s)?;
    // An eventfd takes and gives exactly 8 bytes, checked before the buffer; a read of
    // nothing is no exception.
    check_err!(sys::write(event.0, 0, 7), Errno::EINVAL);
    check_err!(sys::read(event.0, buf, 0), Errno::EINVAL);
    check_err!(sys::read(event.0, 0, 7), Errno::EINVAL);
    // The 8 bytes are taken at once: a buffer that faults after 6 of them is EFAULT.
    let edge = check_ok!(Mapping::rw(2));
    check_ok!(sys::mprotect(edge.page(1), sys::PAGE_SIZE, sys::PROT_NONE));
    check_err!(sys::write(event.0, edge.page(1) - 6, 8), Errno::EFAULT);
    // sendfile: the offset pointer first, a stream given an offset, a count that is negative
    // as a signed size, then the output; a pipe cannot be spliced from.
    check_err!(sys::sendfile(CLOSED, CLOSED, 8, 1), Errno::EFAULT);
    let offset = 0i64;
    let at = &offset as *const i64 as usize;
    check_err!(sys::sendfile(CLOSED, read_end.0, at, 1), Errno::ESPIPE);
    check_err!(sys::sendfile(CLOSED, file.0, at, 1 << 63), Errno::EINVAL);
    check_err!(sys::sendfile(CLOSED, file.0, at, 1), Errno::EBADF);
    check_err!(sys::sendfile(file.0, read_end.0, 0, 1), Errno::EINVAL);
    // The offset is written back whatever the copy answered: into read-only memory, EFAULT.
    let read_only = c"x".as_ptr() as usize;
    check_err!(sys::sendfile(CLOSED, CLOSED, read_only, 1), Errno::EFAULT);
    // F_SETFL takes O_DIRECT only for a file that does direct I/O (a tmpfs file that open
    // made, not a memfd, a directory or an eventfd) or a pipe (its packet mode).
    let set_direct = |fd: &Fd| {
        let flags = sys::fcntl(fd.0, sys::F_GETFL, 0)?;
        sys::fcntl(fd.0, sys::F_SETFL, flags | sys::O_DIRECT)?;
        sys::fcntl(fd.0, sys::F_SETFL, flags)
    };
    let unopened = Fd(check_ok!(sys::memfd_create(c"direct".as_ptr() as usize, 0)));
    let (packets, _) = check_ok!(pipe(0));
    let null = check_ok!(Fd::open(c"/dev/null", sys::O_RDWR, 0));
    check_ok!(set_direct(&file));
    check_ok!(set_direct(&packets));
    check_err!(set_direct(&event), Errno::EINVAL);
    check_err!(set_direct(&unopened), Errno::EINVAL);
    check_err!(set_direct(&dir), Errno::EINVAL);
    check_err!(set_direct(&null), Errno::EINVAL);
    // copy_file_range: copies within one file system, refuses overlap in one file.
    let (other, _) = check_ok!(file_twice(&s, "g", b""));
    let mut from = 2i64;
    let copy = |from: &mut i64, len| {
        // SAFETY: copy_file_range reads and writes the i64 `from` points to; the other
        // arguments are plain values or NULL.
        unsafe {
            sys::syscall6(
                COPY_FILE_RANGE,
                file.0,
                from as *mut i64 as usize,
                other.0,
                0,
                len,
                0,
            )
        }
    };
    check_eq!(sys::decode(copy(&mut from, 5)), Ok(5));
    check_eq!(from, 7);
    check_eq!(check_ok!(other.read_at(0, 16)), b"23456".to_vec());
    // SAFETY: as above, with NULL offsets.
    let overlap = unsafe { sys::syscall6(COPY_FILE_RANGE, file.0, 0, file.0, 0, 4, 0) };
    check_eq!(sys::decode(overlap), Err(Errno::EINVAL));
    let memfd = Fd(check_ok!(sys::memfd_create(c"m".as_ptr() as usize, 0)));
    // SAFETY: as above.
    let across = unsafe { sys::syscall6(COPY_FILE_RANGE, file.0, 0, memfd.0, 0, 4, 0) };
    check_eq!(sys::decode(across), Err(EXDEV));
    // fchmod of a pipe or an eventfd is allowed to root.
    check_ok!(sys::fchmod(read_end.0, 0o600));
    check_ok!(sys::fchmod(event.0, 0o600));
    Ok(())
}

/// SEEK_DATA and SEEK_HOLE in a tmpfs file find the pages written: a page never written is a
/// hole, and so is one fallocate gave a frame until it is written (or allocated again).
fn tmpfs_holes(s: &Scratch) -> TestResult {
    let (file, _) = check_ok!(file_twice(s, "holes", b""));
    let seek = |offset: usize, whence| sys::lseek(file.0, offset, whence);
    check_err!(seek(0, SEEK_DATA), Errno::ENXIO);
    check_eq!(
        check_ok!(sys::pwrite64(file.0, b"x".as_ptr() as usize, 1, PAGE + 16)),
        1
    );
    let size = PAGE + 17;
    check_eq!(check_ok!(seek(0, SEEK_HOLE)), 0);
    check_eq!(check_ok!(seek(0, SEEK_DATA)), PAGE);
    check_eq!(check_ok!(seek(PAGE + 3, SEEK_DATA)), PAGE + 3);
    check_eq!(check_ok!(seek(PAGE + 3, SEEK_HOLE)), size);
    check_err!(seek(size, SEEK_DATA), Errno::ENXIO);
    check_err!(seek(size, SEEK_HOLE), Errno::ENXIO);
    check_err!(seek(usize::MAX, SEEK_HOLE), Errno::ENXIO);
    // The position moved to the last answer.
    check_eq!(check_ok!(seek(0, sys::SEEK_CUR)), size);
    // Pages 0 and 2 allocated, not written: holes still, page 1 data.
    check_ok!(sys::fallocate(file.0, 0, 0, 3 * PAGE));
    check_eq!(check_ok!(seek(0, SEEK_DATA)), PAGE);
    check_eq!(check_ok!(seek(PAGE, SEEK_HOLE)), 2 * PAGE);
    check_err!(seek(2 * PAGE, SEEK_DATA), Errno::ENXIO);
    // Written, page 2 holds data.
    check_eq!(
        check_ok!(sys::pwrite64(file.0, b"y".as_ptr() as usize, 1, 2 * PAGE)),
        1
    );
    check_eq!(check_ok!(seek(2 * PAGE, SEEK_DATA)), 2 * PAGE);
    check_eq!(check_ok!(seek(PAGE, SEEK_HOLE)), 3 * PAGE);
    check_eq!(check_ok!(seek(0, SEEK_HOLE)), 0);
    // Allocated a second time, page 0 is data (zeroes).
    check_ok!(sys::fallocate(file.0, 0, 0, 1));
    check_eq!(check_ok!(seek(0, SEEK_DATA)), 0);
    check_eq!(check_ok!(seek(0, SEEK_HOLE)), 3 * PAGE);
    Ok(())
}

/// A `struct flock` with `l_type`, `l_whence`, `l_start` and `l_len`.
fn flock(kind: u16, whence: u16, start: i64, len: i64) -> [u64; 4] {
    [
        u64::from(kind) | u64::from(whence) << 16,
        start as u64,
        len as u64,
        0,
    ]
}

pub fn fcntl_signal_owner_lease_seals_and_locks() -> TestResult {
    let s = check_ok!(Scratch::new("fdfcntl"));
    let (file, ro) = check_ok!(file_twice(&s, "f", b"abc"));
    check_eq!(check_ok!(sys::fcntl(file.0, F_GETSIG, 0)), 0);
    check_ok!(sys::fcntl(file.0, F_SETSIG, 10));
    check_eq!(check_ok!(sys::fcntl(file.0, F_GETSIG, 0)), 10);
    check_err!(sys::fcntl(file.0, F_SETSIG, 65), Errno::EINVAL);
    check_err!(sys::fcntl(file.0, F_SETSIG, usize::MAX), Errno::EINVAL);
    check_eq!(check_ok!(sys::fcntl(file.0, F_GETOWN, 0)), 0);
    let pid = sys::getpid();
    check_ok!(sys::fcntl(file.0, F_SETOWN, pid));
    check_eq!(check_ok!(sys::fcntl(file.0, F_GETOWN, 0)), pid);
    check_err!(sys::fcntl(file.0, F_SETOWN, 0x8000_0000), Errno::EINVAL);
    check_eq!(
        check_ok!(sys::fcntl(file.0, F_GETLEASE, 0)),
        usize::from(F_UNLCK)
    );
    // Seals: a read-only description may add none; a tmpfs file carries F_SEAL_SEAL.
    check_err!(sys::fcntl(ro.0, F_ADD_SEALS, 1), Errno::EPERM);
    check_err!(sys::fcntl(file.0, F_ADD_SEALS, 0x40), Errno::EINVAL);
    check_err!(sys::fcntl(file.0, F_ADD_SEALS, 1), Errno::EPERM);
    check_eq!(check_ok!(sys::fcntl(file.0, F_GET_SEALS, 0)), 1);
    let (read_end, _write_end) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    check_err!(sys::fcntl(read_end.0, F_GET_SEALS, 0), Errno::EINVAL);
    // Locks: the whence, a range before 0, the type, then the access mode it needs.
    let set = |fd: usize, lock: [u64; 4]| sys::fcntl(fd, F_SETLK, lock.as_ptr() as usize);
    check_err!(set(file.0, flock(F_WRLCK, 3, 0, 0)), Errno::EINVAL);
    check_err!(set(file.0, flock(F_WRLCK, 0, -1, 0)), Errno::EINVAL);
    check_err!(set(file.0, flock(F_WRLCK, 0, 4, -5)), Errno::EINVAL);
    check_err!(
        set(file.0, flock(F_WRLCK, 0, 2, i64::MAX)),
        Errno::EOVERFLOW
    );
    check_err!(set(file.0, flock(7, 0, 0, 0)), Errno::EINVAL);
    check_err!(set(ro.0, flock(F_WRLCK, 0, 0, 0)), Errno::EBADF);
    check_ok!(set(ro.0, flock(F_RDLCK, 0, 0, 0)));
    check_err!(sys::fcntl(file.0, F_SETLK, 8), Errno::EFAULT);
    let mut query = flock(F_WRLCK, 0, 5, 3);
    check_ok!(sys::fcntl(file.0, F_GETLK, query.as_mut_ptr() as usize));
    check_eq!(query, flock(F_UNLCK, 0, 5, 3));
    let mut bad = flock(F_UNLCK, 0, 0, 0);
    check_err!(
        sys::fcntl(file.0, F_GETLK, bad.as_mut_ptr() as usize),
        Errno::EINVAL
    );
    Ok(())
}

/// `readv` of a directory reads the vector (EFAULT only for the array itself) but not the
/// buffers before the directory answers EISDIR: a single vector's length is cut to what one
/// call moves before its range is checked, so one reaching past user space is no EFAULT.
pub fn readv_of_a_directory_is_eisdir() -> TestResult {
    let s = check_ok!(Scratch::new("readvdir"));
    let dir = check_ok!(Fd::open(
        &check_ok!(s.subdir("d")),
        sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC,
        0
    ));
    // A buffer low in user space (the program's own data, never written: the read fails),
    // with a length far past the end of user space.
    static BUFFER: [u8; 1] = [0];
    let low = BUFFER.as_ptr() as usize;
    let huge = [low, usize::MAX >> 1];
    check_err!(sys::readv(dir.0, huge.as_ptr() as usize, 1), Errno::EISDIR);
    let unmapped = [crate::util::unmapped_addr(), 16];
    check_err!(
        sys::readv(dir.0, unmapped.as_ptr() as usize, 1),
        Errno::EISDIR
    );
    check_err!(
        sys::preadv(dir.0, unmapped.as_ptr() as usize, 1, 0),
        Errno::EISDIR
    );
    check_err!(
        sys::readv(dir.0, crate::util::unmapped_addr(), 1),
        Errno::EFAULT
    );
    let two = [low, usize::MAX >> 1, low, 1];
    check_err!(sys::readv(dir.0, two.as_ptr() as usize, 2), Errno::EFAULT);
    // A read of nothing is EISDIR too; getdents64 with no room for an entry is EINVAL before
    // its buffer is looked at, and at the directory's end reads nothing wherever it points.
    check_err!(sys::read(dir.0, low, 0), Errno::EISDIR);
    check_err!(sys::pread64(dir.0, low, 0, 0), Errno::EISDIR);
    check_err!(sys::getdents64(dir.0, KERNEL_ADDR, 1), Errno::EINVAL);
    let mut entries = [0u8; 256];
    check_ok!(sys::getdents64(dir.0, entries.as_mut_ptr() as usize, 256));
    check_eq!(check_ok!(sys::getdents64(dir.0, KERNEL_ADDR, 256)), 0);
    Ok(())
}

/// A pidfd has no read or write operation: a read or write of it is EINVAL before its buffers
/// are looked at, even a vector of none, and a positioned one too (it cannot seek). It polls
/// readable once its process has ended, and hung up too once that was collected; not at all
/// before.
pub fn pidfd_is_neither_read_nor_written() -> TestResult {
    let pidfd = Fd(check_ok!(sys::pidfd_open(sys::getpid(), 0)));
    let mut byte = [0u8; 8];
    let buf = byte.as_mut_ptr() as usize;
    check_err!(sys::read(pidfd.0, buf, 8), Errno::EINVAL);
    check_err!(sys::read(pidfd.0, KERNEL_ADDR, 0), Errno::EINVAL);
    check_err!(sys::write(pidfd.0, buf, 8), Errno::EINVAL);
    check_err!(sys::readv(pidfd.0, buf, 0), Errno::EINVAL);
    // It has no position, yet takes an offset: EINVAL rather than ESPIPE.
    check_err!(sys::pread64(pidfd.0, buf, 8, 0), Errno::EINVAL);
    check_err!(sys::pwrite64(pidfd.0, KERNEL_ADDR, 8, 0), Errno::EINVAL);
    check_err!(sys::lseek(pidfd.0, 0, sys::SEEK_SET), Errno::ESPIPE);
    let poll = |fd: &Fd, timeout_ms: usize| {
        let mut entry = PollFd {
            fd: fd.0 as i32,
            events: POLLIN,
            revents: 0,
        };
        sys::poll(&raw mut entry as usize, 1, timeout_ms).map(|ready| (ready, entry.revents))
    };
    check_eq!(check_ok!(poll(&pidfd, 0)), (0, 0));
    let mut child = check_ok!(Child::fork(|| 0));
    let child_fd = Fd(check_ok!(sys::pidfd_open(child.pid, 0)));
    check_eq!(check_ok!(poll(&child_fd, 10_000)), (1, POLLIN), "a zombie");
    check_ok!(child.status());
    check_eq!(
        check_ok!(poll(&child_fd, 0)),
        (1, POLLIN | POLLHUP),
        "collected"
    );
    Ok(())
}

fn fgetxattr(fd: usize, name: &core::ffi::CStr) -> sys::SysResult {
    let mut value = [0u8; 16];
    // SAFETY: fgetxattr writes at most 16 bytes to `value`.
    sys::decode(unsafe {
        sys::syscall4(
            FGETXATTR,
            fd,
            name.as_ptr() as usize,
            value.as_mut_ptr() as usize,
            16,
        )
    })
}

fn fsetxattr(fd: usize, name: usize, size: usize, flags: usize) -> sys::SysResult {
    let value = [b'v'; 4];
    // SAFETY: fsetxattr reads `size` bytes of `value` (the sizes given past 4 are refused
    // before any byte is read).
    sys::decode(unsafe { sys::syscall5(FSETXATTR, fd, name, value.as_ptr() as usize, size, flags) })
}

fn fremovexattr(fd: usize, name: &core::ffi::CStr) -> sys::SysResult {
    // SAFETY: fremovexattr only reads the name.
    sys::decode(unsafe { sys::syscall2(FREMOVEXATTR, fd, name.as_ptr() as usize) })
}

pub fn fd_xattrs_by_namespace_and_kind() -> TestResult {
    let s = check_ok!(Scratch::new("fdxattr"));
    let (file, _ro) = check_ok!(file_twice(&s, "f", b""));
    let (read_end, _write_end) = check_ok!(pipe(sys::O_NONBLOCK | sys::O_CLOEXEC));
    let event = Fd(check_ok!(sys::eventfd2(0, sys::EFD_NONBLOCK)));
    let user = c"user.fdargs";
    // The descriptor comes before the name.
    check_err!(fgetxattr(CLOSED, c""), Errno::EBADF);
    check_err!(fgetxattr(file.0, c""), Errno::ERANGE);
    check_err!(fgetxattr(file.0, user), Errno::ENODATA);
    check_err!(fgetxattr(file.0, c"trusted.fdargs"), Errno::ENODATA);
    check_err!(fgetxattr(file.0, c"bogus"), Errno::EOPNOTSUPP);
    check_err!(fremovexattr(file.0, user), Errno::ENODATA);
    // A pidfd's inode is immutable: no attribute of any name changes; it is a regular file
    // inside, so reading a user. one gets as far as its file system, which keeps none.
    let pidfd = Fd(check_ok!(sys::pidfd_open(sys::getpid(), 0)));
    let bogus = c"bogus";
    check_err!(
        fsetxattr(pidfd.0, bogus.as_ptr() as usize, 1, 0),
        Errno::EPERM
    );
    check_err!(
        fsetxattr(pidfd.0, user.as_ptr() as usize, 1, 0),
        Errno::EPERM
    );
    check_err!(fremovexattr(pidfd.0, bogus), Errno::EPERM);
    check_err!(fgetxattr(pidfd.0, user), Errno::EOPNOTSUPP);
    check_err!(fgetxattr(pidfd.0, bogus), Errno::EOPNOTSUPP);
    // user. attributes only on regular files and directories; pipes and eventfds keep none.
    check_err!(fgetxattr(read_end.0, user), Errno::ENODATA);
    check_err!(fremovexattr(read_end.0, user), Errno::EPERM);
    check_err!(fgetxattr(read_end.0, c"trusted.fdargs"), Errno::EOPNOTSUPP);
    check_err!(fgetxattr(event.0, user), Errno::ENODATA);
    check_err!(fgetxattr(event.0, c"security.fdargs"), Errno::EOPNOTSUPP);
    // fsetxattr: the flags, the name, the size, the value, then the file.
    let name = user.as_ptr() as usize;
    check_err!(fsetxattr(CLOSED, 0, 1, 4), Errno::EBADF);
    check_err!(fsetxattr(file.0, 0, 1, 4), Errno::EINVAL);
    check_err!(fsetxattr(file.0, 0, 1, 1 << 40), Errno::EFAULT);
    check_err!(fsetxattr(file.0, name, 65537, 0), Errno::E2BIG);
    check_err!(fsetxattr(read_end.0, name, 1, 0), Errno::EPERM);
    check_err!(
        fsetxattr(file.0, name, 1, sys::XATTR_REPLACE),
        Errno::ENODATA
    );
    Ok(())
}
