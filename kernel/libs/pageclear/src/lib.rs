//! The ways to clear a 4 KiB page, in one place for the two users that must agree: the
//! kernel, which clears every fresh user page with the method its `page_clear=` option names,
//! and the benchmark program (user/bench), which times each method in user space so that the
//! report can give instructions per fault with and without the clear.
//!
//! Measured under QEMU 10 (`cargo xtask bench`, README "Performance"): a loop of `mov` stores
//! is the fastest where wall-clock time counts, because TCG runs every `rep` iteration as a
//! separate step; under `-icount` `rep stosq` counts the fewest instructions (516 against 707).

#![no_std]

/// How a page is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Method {
    /// A loop of eight `mov` stores per 64 bytes: the kernel's default (cache-friendly on
    /// hardware; Linux's `clear_page_orig` is this loop).
    Stores,
    /// `rep stosq`: 512 quadword stores.
    RepStosq,
    /// `rep stosb`: 4096 byte stores, fast on CPUs with ERMS; what Linux uses there.
    RepStosb,
    /// `movnti` in a loop, then `sfence`: stores that bypass the cache.
    NonTemporal,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Self::Stores,
        Self::RepStosq,
        Self::RepStosb,
        Self::NonTemporal,
    ];

    /// The short name (the kernel option's value, and the key in the benchmark's output).
    pub fn name(self) -> &'static str {
        match self {
            Self::Stores => "mov",
            Self::RepStosq => "stosq",
            Self::RepStosb => "stosb",
            Self::NonTemporal => "movnti",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.name() == name)
    }

    /// The method whose `as u8` is `value` (for a method kept in an atomic byte).
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|method| *method as u8 == value)
    }
}

/// Bytes [`clear`] writes.
pub const PAGE_SIZE: usize = 4096;

/// Clears the 4096 bytes at `page` with a loop of eight `$store`s of RAX (zero) per 64 bytes,
/// followed by the instructions in `$tail`.
macro_rules! store_loop {
    ($store:literal, $page:expr $(, $tail:literal)*) => {
        core::arch::asm!(
            "2:",
            concat!($store, " [rdi], rax"),
            concat!($store, " [rdi + 8], rax"),
            concat!($store, " [rdi + 16], rax"),
            concat!($store, " [rdi + 24], rax"),
            concat!($store, " [rdi + 32], rax"),
            concat!($store, " [rdi + 40], rax"),
            concat!($store, " [rdi + 48], rax"),
            concat!($store, " [rdi + 56], rax"),
            "add rdi, 64",
            "dec rcx",
            "jnz 2b",
            $($tail,)*
            inout("rdi") $page => _,
            inout("rcx") PAGE_SIZE / 64 => _,
            in("rax") 0u64,
            options(nostack),
        )
    };
}

/// Writes zeroes to the [`PAGE_SIZE`] bytes at `page` with `method`.
///
/// # Safety
/// `page` must be valid for writes of [`PAGE_SIZE`] bytes, and nothing may access those bytes
/// while this runs.
#[inline(always)]
pub unsafe fn clear(method: Method, page: *mut u8) {
    // SAFETY: in every arm, the caller guarantees `page` is writable for PAGE_SIZE bytes and
    // unshared; each variant writes exactly those bytes and clobbers only the registers it
    // names.
    unsafe {
        match method {
            Method::Stores => store_loop!("mov qword ptr", page),
            Method::RepStosq => core::arch::asm!(
                "rep stosq",
                inout("rdi") page => _,
                inout("rcx") PAGE_SIZE / 8 => _,
                in("rax") 0u64,
                options(nostack),
            ),
            Method::RepStosb => core::arch::asm!(
                "rep stosb",
                inout("rdi") page => _,
                inout("rcx") PAGE_SIZE => _,
                in("al") 0u8,
                options(nostack),
            ),
            // Non-temporal stores are weakly ordered: fence them before the page is published.
            Method::NonTemporal => store_loop!("movnti", page, "sfence"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_clears_exactly_one_page() {
        for method in Method::ALL {
            let mut buffer = [0xa5u8; 3 * PAGE_SIZE];
            // SAFETY: the middle page of a local buffer nothing else touches.
            unsafe { clear(method, buffer[PAGE_SIZE..].as_mut_ptr()) };
            let name = method.name();
            assert!(
                buffer[..PAGE_SIZE].iter().all(|&b| b == 0xa5),
                "{name} wrote below"
            );
            assert!(
                buffer[PAGE_SIZE..2 * PAGE_SIZE].iter().all(|&b| b == 0),
                "{name} missed a byte"
            );
            assert!(
                buffer[2 * PAGE_SIZE..].iter().all(|&b| b == 0xa5),
                "{name} wrote above"
            );
        }
    }

    #[test]
    fn names_and_bytes_round_trip() {
        for method in Method::ALL {
            assert_eq!(Method::from_name(method.name()), Some(method));
            assert_eq!(Method::from_u8(method as u8), Some(method));
        }
        assert_eq!(Method::from_name("memset"), None);
        assert_eq!(Method::from_u8(9), None);
    }
}
