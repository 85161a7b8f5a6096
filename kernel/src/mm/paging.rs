//! The kernel's page tables: the bootloader's PML4, cleaned and completed at boot.
//!
//! At boot the lower half (user space, PML4 entries 0..256) is emptied of whatever the
//! bootloader left there, and every empty kernel-half entry (256..512) gets a page-table page, so
//! that address spaces created later can share the kernel half by copying those 256 entries and
//! never need to learn of new kernel mappings. One kernel-half entry is reserved for the heap.
//! Kernel mappings are changed only by [`map_kernel_page`], under the frame allocator's rules.

use spin::Mutex;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use super::{frame, phys_to_virt};

const ENTRIES: usize = 512;
const FIRST_KERNEL_ENTRY: usize = 256;

/// Serialises changes to kernel mappings.
static KERNEL_TABLES: Mutex<()> = Mutex::new(());

fn active_pml4() -> &'static mut PageTable {
    let (frame, _) = x86_64::registers::control::Cr3::read();
    // SAFETY: CR3 holds the physical address of the active PML4, which the direct map covers;
    // callers serialise changes through `KERNEL_TABLES` (or run alone at boot).
    unsafe { &mut *(phys_to_virt(frame.start_address().as_u64()) as *mut PageTable) }
}

/// The address of the first byte covered by kernel-half PML4 entry `index`.
fn pml4_entry_base(index: usize) -> u64 {
    // Sign-extend bit 47.
    (((index as u64) << 39) as i64)
        .wrapping_shl(16)
        .wrapping_shr(16) as u64
}

/// Empties the lower half, reserves a kernel-half entry for the heap, and allocates a page-table
/// page for every other empty kernel-half entry. Returns the heap's base address.
pub fn init() -> u64 {
    let pml4 = active_pml4();
    let leftovers = pml4
        .iter()
        .take(FIRST_KERNEL_ENTRY)
        .filter(|e| !e.is_unused())
        .count();
    if leftovers > 0 {
        for entry in pml4.iter_mut().take(FIRST_KERNEL_ENTRY) {
            entry.set_unused();
        }
        x86_64::instructions::tlb::flush_all();
        log::info!("paging: removed {leftovers} lower-half PML4 entries the bootloader left");
    }
    assert!(
        pml4.iter().take(FIRST_KERNEL_ENTRY).all(|e| e.is_unused()),
        "the lower half must be empty: it belongs to user processes"
    );

    let heap_index = (FIRST_KERNEL_ENTRY..ENTRIES)
        .find(|&i| pml4[i].is_unused())
        .expect("no free kernel-half PML4 entry for the heap");
    let mut created = 0;
    for index in FIRST_KERNEL_ENTRY..ENTRIES {
        if pml4[index].is_unused() {
            let table = allocate_table().expect("out of memory for kernel page tables");
            let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
            pml4[index].set_addr(table, flags);
            created += 1;
        }
    }
    log::info!(
        "paging: kernel half complete ({created} page-table pages added); heap at {:#x}",
        pml4_entry_base(heap_index)
    );
    pml4_entry_base(heap_index)
}

/// A zeroed frame for a page table.
fn allocate_table() -> Option<PhysAddr> {
    let phys = frame::allocate(0)?;
    // SAFETY: the frame was just allocated, so nothing else uses it; the direct map covers it.
    unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, 0, 4096) };
    Some(PhysAddr::new(phys))
}

struct TableFrames;

// SAFETY: every frame returned is freshly allocated, zeroed and unused elsewhere.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        allocate_table().map(PhysFrame::containing_address)
    }
}

/// Maps the kernel page at `virt` to the frame at `phys` (read-write, no-execute, global).
///
/// # Safety
/// `virt` must be a kernel-half page owned by the caller and unmapped; `phys` a frame the caller
/// owns.
pub unsafe fn map_kernel_page(virt: u64, phys: u64) -> Result<(), &'static str> {
    let _guard = KERNEL_TABLES.lock();
    // SAFETY: the direct map covers all physical memory at this offset, and the lock above
    // serialises every change to kernel mappings.
    let mut mapper = unsafe { OffsetPageTable::new(active_pml4(), VirtAddr::new(phys_to_virt(0))) };
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_EXECUTE
        | PageTableFlags::GLOBAL;
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let frame = PhysFrame::containing_address(PhysAddr::new(phys));
    // SAFETY: the caller owns both the page and the frame, so the mapping aliases nothing.
    match unsafe { mapper.map_to(page, frame, flags, &mut TableFrames) } {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        Err(_) => Err("cannot map a kernel page (page already mapped or out of page-table memory)"),
    }
}
