//! Memory management: physical frames, the kernel's page tables, the kernel heap and slab
//! caches, and user address spaces (VMAs, page tables, faults, the mmap family).
//!
//! Physical memory is reached through the bootloader's direct map at a dynamic offset
//! ([`PhysAddr::to_virt`]). Frames come from one buddy allocator ([`frame`]), which hands them
//! out as owned values ([`frame::Frames`], [`frame::UserFrame`]); the heap ([`heap`])
//! grows by mapping frames into a virtual region of its own. Lock order: `mmap_lock` → heap →
//! frames (docs/LOCKING.md).

pub mod addrspace;
pub mod commit;
pub mod fault;
pub mod frame;
pub mod heap;
pub mod inject;
pub mod kernel_tables;
pub mod maps;
pub mod mmap;
pub mod page_refs;
pub mod pte;
pub mod slab;
#[cfg(feature = "ktest")]
pub(crate) mod torture;
pub mod user_tables;
pub mod vma;
pub mod vma_lock;
pub mod vma_tree;

pub use addrspace::switch_address_space;

use core::sync::atomic::{AtomicU64, Ordering};

use bootloader_api::info::MemoryRegions;

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);
/// The shared zero page: read faults on untouched anonymous memory map it read-only.
static ZERO_PAGE: AtomicU64 = AtomicU64::new(0);

/// The physical address of the shared zero page.
pub fn zero_page() -> PhysAddr {
    PhysAddr(ZERO_PAGE.load(Ordering::Relaxed))
}
/// The end of what the direct map covers: all of the memory map, and at least 4 GiB.
static DIRECT_MAP_END: AtomicU64 = AtomicU64::new(0);

/// A physical address: of a frame, a page table, a firmware table or device registers. The
/// kernel reaches what lies there through the direct map ([`PhysAddr::to_virt`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct PhysAddr(u64);

impl PhysAddr {
    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The address `bytes` further on.
    pub const fn add(self, bytes: u64) -> Self {
        Self(self.0 + bytes)
    }

    /// The virtual address at which the direct map shows this address.
    pub fn to_virt(self) -> u64 {
        PHYS_OFFSET.load(Ordering::Relaxed) + self.0
    }

    /// The physical address of `virt`, an address in the direct map.
    pub fn of_direct_map(virt: u64) -> Self {
        let offset = PHYS_OFFSET.load(Ordering::Relaxed);
        debug_assert!(virt >= offset, "{virt:#x} is not in the direct map");
        Self(virt - offset)
    }
}

impl core::fmt::LowerHex for PhysAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::LowerHex::fmt(&self.0, f)
    }
}

pub fn direct_map_end() -> u64 {
    DIRECT_MAP_END.load(Ordering::Relaxed)
}

/// Frames, page tables and heap, in that order.
///
/// # Safety
/// `phys_offset` must be the bootloader's physical-memory map, `regions` its memory map, and
/// this must run once, before anything allocates.
pub unsafe fn init(phys_offset: u64, regions: &MemoryRegions) {
    PHYS_OFFSET.store(phys_offset, Ordering::Relaxed);
    let memory_end = regions.iter().map(|r| r.end).max().unwrap_or(0);
    DIRECT_MAP_END.store(memory_end.max(1 << 32), Ordering::Relaxed);
    // SAFETY: forwarded from the caller.
    unsafe { frame::init(phys_offset, regions) };
    let heap_base = kernel_tables::init();
    heap::init(heap_base);
    heap::self_check();
    let usable_end = regions
        .iter()
        .filter(|r| r.kind == bootloader_api::info::MemoryRegionKind::Usable)
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    page_refs::init(usable_end);
    // The zero page is never freed: its frame is handed on to the static for good.
    let zero = user_tables::zeroed_frame().expect("a frame for the zero page");
    ZERO_PAGE.store(zero.into_raw().as_u64(), Ordering::Relaxed);
    vma::register_cache();
}

/// Prints frame, heap and page-cache statistics (debug key `m`, and the boot log).
pub fn log_statistics() {
    frame::log_statistics();
    heap::log_statistics();
    addrspace::log_statistics();
    crate::fs::pagecache::log_statistics();
    inject::log_statistics();
}
