//! Helpers shared by the tests: mappings that unmap themselves, probes that ask the kernel
//! whether an address is readable or writable (without faulting), bad addresses, files read
//! whole, links, directory listings, and /proc and /sys mounted where Linux runs the suite.

use alloc::ffi::CString;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

use urt::sys::{self, AT_FDCWD, Errno, PAGE_SIZE, Stat};

/// A canonical kernel-half address: every pointer argument must be refused there.
pub const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;

/// An anonymous private mapping, unmapped on drop.
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

/// `s` as a C string (the empty string if `s` holds a NUL, which no test path does).
pub fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// An open file descriptor, closed when dropped.
#[derive(Debug)]
pub struct Fd(pub usize);

impl Fd {
    /// `openat(AT_FDCWD, path, flags, mode)`.
    pub fn open(path: &CStr, flags: usize, mode: usize) -> Result<Self, Errno> {
        sys::openat(AT_FDCWD, path.as_ptr() as usize, flags, mode).map(Fd)
    }

    /// Everything from the file offset to the end, read in pieces.
    pub fn read_to_end(&self) -> Result<Vec<u8>, Errno> {
        let mut data = Vec::new();
        let mut piece = [0u8; 512];
        loop {
            let count = sys::read(self.0, piece.as_mut_ptr() as usize, piece.len())?;
            if count == 0 {
                return Ok(data);
            }
            data.extend_from_slice(&piece[..count]);
        }
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        let mut st = Stat::default();
        sys::fstat(self.0, &raw mut st as usize)?;
        Ok(st)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = sys::close(self.0);
    }
}

/// `stat(path)` (links followed).
pub fn stat(path: &CStr) -> Result<Stat, Errno> {
    let mut st = Stat::default();
    sys::newfstatat(AT_FDCWD, path.as_ptr() as usize, &raw mut st as usize, 0)?;
    Ok(st)
}

/// The whole file at `path`.
pub fn read_file(path: &CStr) -> Result<Vec<u8>, Errno> {
    Fd::open(path, sys::O_RDONLY | sys::O_CLOEXEC, 0)?.read_to_end()
}

/// The whole file at `path` as text (bytes that are not UTF-8 replaced).
pub fn read_text(path: &CStr) -> Result<String, Errno> {
    Ok(String::from_utf8_lossy(&read_file(path)?).into_owned())
}

/// What the symbolic link at `path` holds.
pub fn readlink(path: &CStr) -> Result<String, Errno> {
    let mut target = [0u8; 4096];
    let len = sys::readlinkat(
        AT_FDCWD,
        path.as_ptr() as usize,
        target.as_mut_ptr() as usize,
        target.len(),
    )?;
    Ok(String::from_utf8_lossy(&target[..len]).into_owned())
}

/// The names in the directory at `path` (`.` and `..` too), sorted.
pub fn dir_names(path: &CStr) -> Result<Vec<String>, Errno> {
    let dir = Fd::open(path, sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC, 0)?;
    let mut names = Vec::new();
    // Eight-byte words: the records' 64-bit fields are aligned.
    let mut buf = [0u64; 512];
    loop {
        let len = sys::getdents64(dir.0, buf.as_mut_ptr() as usize, size_of_val(&buf))?;
        if len == 0 {
            names.sort();
            return Ok(names);
        }
        // SAFETY: the kernel filled the first `len` bytes of `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
        // Each record: d_ino (8), d_off (8), d_reclen (2), d_type (1), the name and its NUL.
        let mut at = 0;
        while at + 19 < len {
            let record = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
            if record < 20 || at + record > len {
                return Err(Errno::EINVAL);
            }
            let name = &bytes[at + 19..at + record];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            names.push(String::from_utf8_lossy(&name[..end]).into_owned());
            at += record;
        }
    }
}

/// Linux runs the suite as /init with nothing mounted: process 1 mounts proc on /proc and
/// sysfs on /sys (making the directories if need be) when /proc/self is missing. Elsewhere
/// (this project's kernel mounts both at boot) it does nothing.
pub fn mount_proc_and_sys_if_missing() {
    if sys::getpid() != 1 || readlink(c"/proc/self").is_ok() {
        return;
    }
    for (directory, fs_type) in [(c"/proc", c"proc"), (c"/sys", c"sysfs")] {
        let _ = sys::mkdir(directory.as_ptr() as usize, 0o555);
        let _ = sys::mount(
            fs_type.as_ptr() as usize,
            directory.as_ptr() as usize,
            fs_type.as_ptr() as usize,
            0,
            0,
        );
    }
}
