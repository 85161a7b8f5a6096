//! Helpers shared by the tests: mappings that unmap themselves, probes that ask the kernel
//! whether an address is readable or writable (without faulting), bad addresses; for the file
//! tests, descriptors that close themselves, scratch directories under /tmp that remove
//! themselves, whole-file reads and writes, directory listings, and guards that put the
//! umask and the working directory back.

use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

pub use urt::fs::dir_entries;
use urt::fs::remove_tree;
use urt::sys::{self, AT_FDCWD, Errno, PAGE_SIZE, Stat};

/// A canonical kernel-half address: every pointer argument must be refused there.
pub const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;

/// A mapping (anonymous and private unless made with [`Mapping::file`]), unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    pub addr: usize,
    pub len: usize,
}

impl Mapping {
    pub fn new(pages: usize, prot: usize) -> Result<Self, Errno> {
        Self::with_flags(pages, prot, 0)
    }

    pub fn with_flags(pages: usize, prot: usize, flags: usize) -> Result<Self, Errno> {
        let len = pages * PAGE_SIZE;
        let addr = sys::mmap(
            0,
            len,
            prot,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | flags,
            usize::MAX,
            0,
        )?;
        Ok(Self { addr, len })
    }

    /// `len` bytes of the file `fd` from `offset`, with `prot` and `flags` (`MAP_SHARED` or
    /// `MAP_PRIVATE`).
    pub fn file(
        fd: usize,
        len: usize,
        prot: usize,
        flags: usize,
        offset: usize,
    ) -> Result<Self, Errno> {
        let addr = sys::mmap(0, len, prot, flags, fd, offset)?;
        Ok(Self { addr, len })
    }

    /// A copy of `len` bytes at `offset` in the mapping (which the caller made readable).
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        let mut out = alloc::vec![0u8; len];
        // SAFETY: inside the mapping, checked above; a copy, not a reference, since another
        // mapping of the same pages (a child's) may write them.
        unsafe {
            core::ptr::copy_nonoverlapping((self.addr + offset) as *const u8, out.as_mut_ptr(), len)
        };
        out
    }

    /// Writes `data` at `offset` into the mapping (which the caller made writable).
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.len);
        // SAFETY: inside the mapping, checked above.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.addr + offset) as *mut u8,
                data.len(),
            )
        };
    }

    pub fn rw(pages: usize) -> Result<Self, Errno> {
        Self::new(pages, sys::PROT_READ | sys::PROT_WRITE)
    }

    pub fn page(&self, i: usize) -> usize {
        self.addr + i * PAGE_SIZE
    }

    /// Fills page `i` with `byte`.
    pub fn fill(&self, i: usize, byte: u8) {
        // SAFETY: page i is inside the mapping, which the caller made writable.
        unsafe { core::ptr::write_bytes(self.page(i) as *mut u8, byte, PAGE_SIZE) };
    }

    /// Whether every byte of page `i` is `byte`.
    pub fn all(&self, i: usize, byte: u8) -> bool {
        // SAFETY: page i is inside the mapping, which the caller made readable.
        let s = unsafe { core::slice::from_raw_parts(self.page(i) as *const u8, PAGE_SIZE) };
        s.iter().all(|&b| b == byte)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let _ = sys::munmap(self.addr, self.len);
    }
}

/// Whether the kernel can read the 4 bytes at `addr` (a FUTEX_WAIT with a zero timeout reads
/// the word: EFAULT when it cannot).
pub fn readable(addr: usize) -> bool {
    let ts = sys::Timespec::default();
    !matches!(
        sys::futex(
            addr,
            sys::FUTEX_WAIT | sys::FUTEX_PRIVATE_FLAG,
            0x5a5a_5a5a,
            &raw const ts as usize,
            0,
            0
        ),
        Err(Errno::EFAULT)
    )
}

/// Whether the kernel can write the 16 bytes at `addr` (clock_gettime stores a timespec
/// there: EFAULT when it cannot). Clobbers those bytes.
pub fn writable(addr: usize) -> bool {
    sys::clock_gettime(sys::CLOCK_MONOTONIC, addr) != Err(Errno::EFAULT)
}

/// Whether a page is mapped at `addr`: MAP_FIXED_NOREPLACE of one page there fails with
/// EEXIST exactly when something is mapped.
pub fn mapped(addr: usize) -> bool {
    match sys::mmap(
        addr,
        PAGE_SIZE,
        sys::PROT_NONE,
        sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE,
        usize::MAX,
        0,
    ) {
        Ok(got) => {
            let _ = sys::munmap(got, PAGE_SIZE);
            false
        }
        Err(_) => true,
    }
}

/// An address with nothing mapped (a page that was mapped and unmapped again).
pub fn unmapped_addr() -> usize {
    match sys::mmap_anon(PAGE_SIZE, sys::PROT_READ) {
        Ok(addr) => {
            let _ = sys::munmap(addr, PAGE_SIZE);
            addr
        }
        Err(_) => 0x10_0000_0000,
    }
}

/// The three bad addresses every pointer argument is tried with.
pub fn bad_addrs() -> [(&'static str, usize); 3] {
    [
        ("NULL", 0),
        ("kernel address", KERNEL_ADDR),
        ("unmapped address", unmapped_addr()),
    ]
}

/// Elapsed milliseconds since `start_ns` (CLOCK_MONOTONIC).
pub fn ms_since(start_ns: u64) -> u64 {
    sys::monotonic_ns().saturating_sub(start_ns) / 1_000_000
}

/// `s` as a C string (an interior NUL, which no test path has, gives the empty string).
pub fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// A file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(pub usize);

impl Fd {
    /// `openat(AT_FDCWD, path, flags, mode)`.
    pub fn open(path: &CStr, flags: usize, mode: usize) -> Result<Self, Errno> {
        sys::openat(AT_FDCWD, path.as_ptr() as usize, flags, mode).map(Fd)
    }

    /// Writes all of `data` at the file offset.
    pub fn write_all(&self, mut data: &[u8]) -> Result<(), Errno> {
        while !data.is_empty() {
            match sys::write(self.0, data.as_ptr() as usize, data.len())? {
                0 => return Err(Errno::EIO),
                n => data = &data[n..],
            }
        }
        Ok(())
    }

    /// Reads from the file offset to the end of the file.
    pub fn read_to_end(&self) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match sys::read(self.0, buf.as_mut_ptr() as usize, buf.len())? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// `len` bytes read at `offset` (pread64): fewer at the end of the file.
    pub fn read_at(&self, offset: usize, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = alloc::vec![0u8; len];
        let n = sys::pread64(self.0, buf.as_mut_ptr() as usize, len, offset)?;
        buf.truncate(n);
        Ok(buf)
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        let mut st = Stat::default();
        sys::fstat(self.0, &raw mut st as usize)?;
        Ok(st)
    }

    /// `fcntl(F_GETFD)`: the descriptor's flags (`FD_CLOEXEC`).
    pub fn fd_flags(&self) -> Result<usize, Errno> {
        sys::fcntl(self.0, sys::F_GETFD, 0)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = sys::close(self.0);
    }
}

/// Whether `fd` is an open descriptor.
pub fn is_open(fd: usize) -> bool {
    sys::fcntl(fd, sys::F_GETFD, 0).is_ok()
}

/// A pipe: (read end, write end).
pub fn pipe(flags: usize) -> Result<(Fd, Fd), Errno> {
    let mut fds = [0i32; 2];
    sys::pipe2(fds.as_mut_ptr() as usize, flags)?;
    Ok((Fd(fds[0] as usize), Fd(fds[1] as usize)))
}

/// `newfstatat(AT_FDCWD, path, flags)`.
pub fn stat_at(path: &CStr, flags: usize) -> Result<Stat, Errno> {
    let mut st = Stat::default();
    sys::newfstatat(
        AT_FDCWD,
        path.as_ptr() as usize,
        &raw mut st as usize,
        flags,
    )?;
    Ok(st)
}

/// `stat(path)`, following symbolic links.
pub fn stat(path: &CStr) -> Result<Stat, Errno> {
    stat_at(path, 0)
}

/// `lstat(path)`: a symbolic link itself.
pub fn lstat(path: &CStr) -> Result<Stat, Errno> {
    stat_at(path, sys::AT_SYMLINK_NOFOLLOW)
}

/// The whole file at `path`.
pub fn read_file(path: &CStr) -> Result<Vec<u8>, Errno> {
    Fd::open(path, sys::O_RDONLY | sys::O_CLOEXEC, 0)?.read_to_end()
}

/// The whole file at `path` as text (invalid UTF-8 replaced).
pub fn read_text(path: &CStr) -> Result<String, Errno> {
    read_file(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Creates (or truncates) the file at `path` with `mode` and writes `data` to it.
pub fn write_file(path: &CStr, mode: usize, data: &[u8]) -> Result<(), Errno> {
    let flags = sys::O_WRONLY | sys::O_CREAT | sys::O_TRUNC | sys::O_CLOEXEC;
    Fd::open(path, flags, mode)?.write_all(data)
}

/// The target of the symbolic link at `path`.
pub fn readlink(path: &CStr) -> Result<String, Errno> {
    let mut buf = [0u8; 4096];
    let n = sys::readlinkat(
        AT_FDCWD,
        path.as_ptr() as usize,
        buf.as_mut_ptr() as usize,
        4096,
    )?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The names in directory `path`, `.` and `..` included, sorted.
pub fn dir_names(path: &CStr) -> Result<Vec<String>, Errno> {
    let dir = Fd::open(path, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0)?;
    let mut names: Vec<String> = dir_entries(dir.0)?.into_iter().map(|e| e.name).collect();
    names.sort();
    Ok(names)
}

/// A scratch directory `/tmp/usertests-NAME-PID` for one test, removed with all it holds when
/// dropped.
pub struct Scratch {
    dir: String,
}

impl Scratch {
    pub fn new(name: &str) -> Result<Self, Errno> {
        let dir = format!("/tmp/usertests-{name}-{}", sys::getpid());
        // What an earlier run that died here left behind.
        let _ = remove_tree(&dir);
        let c = cstring(&dir);
        sys::mkdirat(AT_FDCWD, c.as_ptr() as usize, 0o755)?;
        Ok(Self { dir })
    }

    /// The directory's absolute path.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The absolute path of `name` in the directory.
    pub fn path(&self, name: &str) -> CString {
        cstring(&format!("{}/{name}", self.dir))
    }

    /// Creates the file `name` (mode 0644) holding `data`; its path.
    pub fn file(&self, name: &str, data: &[u8]) -> Result<CString, Errno> {
        let path = self.path(name);
        write_file(&path, 0o644, data)?;
        Ok(path)
    }

    /// Creates the directory `name` (mode 0755); its path.
    pub fn subdir(&self, name: &str) -> Result<CString, Errno> {
        let path = self.path(name);
        sys::mkdirat(AT_FDCWD, path.as_ptr() as usize, 0o755)?;
        Ok(path)
    }

    /// Creates the symbolic link `name` to `target`; its path.
    pub fn symlink(&self, name: &str, target: &str) -> Result<CString, Errno> {
        let path = self.path(name);
        let target = cstring(target);
        sys::symlinkat(target.as_ptr() as usize, AT_FDCWD, path.as_ptr() as usize)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove_tree(&self.dir);
    }
}

/// The umask set for the guard's life, the old one put back on drop.
pub struct Umask(usize);

impl Umask {
    pub fn set(mask: usize) -> Self {
        Self(sys::umask(mask).unwrap_or(0o022))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        let _ = sys::umask(self.0);
    }
}

/// The working directory, put back on drop (the test may chdir meanwhile).
pub struct Cwd(Fd);

impl Cwd {
    pub fn save() -> Result<Self, Errno> {
        Fd::open(c".", sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0).map(Cwd)
    }
}

impl Drop for Cwd {
    fn drop(&mut self) {
        let _ = sys::fchdir(self.0.0);
    }
}
