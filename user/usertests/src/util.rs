//! Helpers shared by the tests: mappings that unmap themselves, probes that ask the kernel
//! whether an address is readable or writable (without faulting), bad addresses.

use urt::sys::{self, Errno, PAGE_SIZE};

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
