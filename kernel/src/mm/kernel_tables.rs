//! The kernel's page tables: the bootloader's PML4, cleaned and completed at boot.
//!
//! At boot the lower half (user space, PML4 entries 0..256) is emptied of whatever the
//! bootloader left there, and every empty kernel-half entry (256..512) gets a page-table page, so
//! that address spaces created later can share the kernel half by copying those 256 entries and
//! never need to learn of new kernel mappings. One kernel-half entry is reserved for the heap.
//! Kernel mappings are changed only by the functions here, under `KERNEL_TABLES`; run-time
//! mappings (device registers, test pages) get addresses from a region of their own.

use spin::Mutex;
use x86_64::VirtAddr;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
};

use super::pte::{GLOBAL, HUGE_PAGE, NO_CACHE, NO_EXECUTE, PRESENT, WRITABLE, WRITE_THROUGH};
use super::{PhysAddr, frame};

/// Entry bits (named in `pte`) in the form the `x86_64` crate's mapper takes.
fn flags(bits: u64) -> PageTableFlags {
    PageTableFlags::from_bits_truncate(bits)
}

/// `phys` in the form the `x86_64` crate's mapper takes.
fn mapper_addr(phys: PhysAddr) -> x86_64::PhysAddr {
    x86_64::PhysAddr::new(phys.as_u64())
}

const ENTRIES: usize = 512;
const FIRST_KERNEL_ENTRY: usize = 256;

/// Serialises changes to kernel mappings.
static KERNEL_TABLES: Mutex<()> = Mutex::new(());

/// The kernel's PML4. Address spaces share its kernel half (the same lower-level tables), so
/// kernel mappings made here are seen by every address space.
///
/// # Safety
/// The caller holds `KERNEL_TABLES` for as long as the reference lives (or runs alone, at
/// boot), so that no other reference to the table is in use.
unsafe fn active_pml4<'a>() -> &'a mut PageTable {
    // SAFETY: the kernel root is a live PML4, which the direct map covers; the caller has it
    // to itself (see above).
    unsafe { &mut *(kernel_root().to_virt() as *mut PageTable) }
}

/// The address of the first byte covered by kernel-half PML4 entry `index`.
fn pml4_entry_base(index: usize) -> u64 {
    // Sign-extend bit 47.
    (((index as u64) << 39) as i64)
        .wrapping_shl(16)
        .wrapping_shr(16) as u64
}

/// The physical address of the kernel's own PML4 (the bootloader's, completed by `init`): the
/// page tables of kernel threads, and the source of every address space's kernel half.
static KERNEL_ROOT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub fn kernel_root() -> PhysAddr {
    PhysAddr::new(KERNEL_ROOT.load(core::sync::atomic::Ordering::Relaxed))
}

/// The next free address of the kernel-map region (device registers and other pages mapped at
/// run time), handed out upwards and never reused; set by `init`.
static KERNEL_MAP_NEXT: Mutex<u64> = Mutex::new(0);

/// Empties the lower half, reserves kernel-half entries for the heap and for device mappings,
/// and allocates a page-table page for every other empty kernel-half entry. Returns the heap's
/// base address.
pub fn init() -> u64 {
    KERNEL_ROOT.store(
        crate::arch::mmu::loaded_root().as_u64(),
        core::sync::atomic::Ordering::Relaxed,
    );
    // SAFETY: boot runs alone, before anything else maps kernel pages.
    let pml4 = unsafe { active_pml4() };
    let leftovers = pml4
        .iter()
        .take(FIRST_KERNEL_ENTRY)
        .filter(|e| !e.is_unused())
        .count();
    if leftovers > 0 {
        for entry in pml4.iter_mut().take(FIRST_KERNEL_ENTRY) {
            entry.set_unused();
        }
        crate::arch::mmu::flush_local_all();
        log::info!("paging: removed {leftovers} lower-half PML4 entries the bootloader left");
    }
    assert!(
        pml4.iter().take(FIRST_KERNEL_ENTRY).all(|e| e.is_unused()),
        "the lower half must be empty: it belongs to user processes"
    );

    let mut free_entries = (FIRST_KERNEL_ENTRY..ENTRIES).filter(|&i| pml4[i].is_unused());
    let heap_index = free_entries
        .next()
        .expect("no free kernel-half PML4 entry for the heap");
    let map_index = free_entries
        .next()
        .expect("no free kernel-half PML4 entry for run-time mappings");
    *KERNEL_MAP_NEXT.lock() = pml4_entry_base(map_index);
    let mut created = 0;
    for index in FIRST_KERNEL_ENTRY..ENTRIES {
        if pml4[index].is_unused() {
            let table = allocate_table().expect("out of memory for kernel page tables");
            pml4[index].set_addr(table, flags(PRESENT | WRITABLE));
            created += 1;
        }
    }
    log::info!(
        "paging: kernel half complete ({created} page-table pages added); heap at {:#x}",
        pml4_entry_base(heap_index)
    );
    pml4_entry_base(heap_index)
}

/// Page-table pages of the kernel half (never freed): the tests' frame accounting leaves them
/// out.
#[cfg(feature = "ktest")]
static KERNEL_TABLE_FRAMES: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(0);

#[cfg(feature = "ktest")]
pub fn kernel_table_frames() -> usize {
    KERNEL_TABLE_FRAMES.load(core::sync::atomic::Ordering::Relaxed)
}

/// A zeroed frame for a kernel page table, handed on to the table that will link it.
fn allocate_table() -> Option<x86_64::PhysAddr> {
    let table = frame::allocate(0)?;
    #[cfg(feature = "ktest")]
    KERNEL_TABLE_FRAMES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: the frame was just allocated, so nothing else uses it; the direct map covers it.
    unsafe { core::ptr::write_bytes(table.start().to_virt() as *mut u8, 0, 4096) };
    Some(mapper_addr(table.into_raw()))
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
pub unsafe fn map_kernel_page(virt: u64, phys: PhysAddr) -> Result<(), &'static str> {
    // SAFETY: forwarded from the caller.
    unsafe { map_page_with(virt, phys, 0) }
}

/// Maps `pages` pages of device registers at physical `phys` uncached (PCD|PWT) at a fresh
/// kernel address, which it returns. Mappings are never removed.
///
/// # Safety
/// `phys` must be device memory that no other mapping in the kernel uses with caching on.
pub unsafe fn map_mmio(phys: PhysAddr, pages: u64) -> Result<u64, &'static str> {
    let virt = reserve_virtual(pages);
    for page in 0..pages {
        // SAFETY: the MMIO region hands out each page once, so `virt` is unmapped and ours;
        // the caller vouches for the device memory.
        unsafe {
            map_page_with(
                virt + page * 4096,
                phys.add(page * 4096),
                NO_CACHE | WRITE_THROUGH,
            )?
        };
    }
    Ok(virt)
}

/// `pages` pages of fresh, unmapped kernel address space for the caller alone.
pub fn reserve_virtual(pages: u64) -> u64 {
    let mut next = KERNEL_MAP_NEXT.lock();
    let virt = *next;
    *next += pages * 4096;
    virt
}

/// Points the mapped kernel page at `virt` to the frame at `phys` and returns the old frame.
/// No TLB is flushed: the caller shoots the old translation down (`smp::shootdown`).
///
/// # Safety
/// The caller owns the page at `virt` and the frame at `phys`.
#[cfg(feature = "ktest")]
pub unsafe fn remap_kernel_page(virt: u64, phys: PhysAddr) -> Result<PhysAddr, &'static str> {
    // SAFETY: forwarded from the caller.
    unsafe { swap_kernel_pte(virt, Some(phys)) }
}

/// Unmaps the kernel page at `virt` and returns its frame; no TLB is flushed (as above).
///
/// # Safety
/// The caller owns the page at `virt`, and nobody uses it any more.
pub unsafe fn unmap_kernel_page(virt: u64) -> Result<PhysAddr, &'static str> {
    // SAFETY: forwarded from the caller.
    unsafe { swap_kernel_pte(virt, None) }
}

/// Replaces the level-1 entry of `virt` (a mapped 4 KiB kernel page) with one for `phys` (same
/// flags) or with nothing; returns the old frame.
///
/// # Safety
/// See [`remap_kernel_page`].
unsafe fn swap_kernel_pte(virt: u64, phys: Option<PhysAddr>) -> Result<PhysAddr, &'static str> {
    let _guard = KERNEL_TABLES.lock();
    let addr = VirtAddr::new(virt);
    // SAFETY: `KERNEL_TABLES` is held until the end of the function.
    let mut table = unsafe { active_pml4() } as *mut PageTable;
    for index in [addr.p4_index(), addr.p3_index(), addr.p2_index()] {
        // SAFETY: `table` is a live page table of the kernel half (changed only under the lock
        // held here); the direct map covers the next level.
        let entry = unsafe { &(&*table)[index] };
        if entry.is_unused() || entry.flags().contains(flags(HUGE_PAGE)) {
            return Err("not a mapped 4 KiB kernel page");
        }
        table = PhysAddr::new(entry.addr().as_u64()).to_virt() as *mut PageTable;
    }
    // SAFETY: as above, for the level-1 table.
    let entry = unsafe { &mut (&mut *table)[addr.p1_index()] };
    if entry.is_unused() {
        return Err("not a mapped 4 KiB kernel page");
    }
    let old = PhysAddr::new(entry.addr().as_u64());
    match phys {
        Some(phys) => {
            let kept = entry.flags();
            entry.set_addr(mapper_addr(phys), kept);
        }
        None => entry.set_unused(),
    }
    Ok(old)
}

/// # Safety
/// As for [`map_kernel_page`].
unsafe fn map_page_with(virt: u64, phys: PhysAddr, extra: u64) -> Result<(), &'static str> {
    let _guard = KERNEL_TABLES.lock();
    // SAFETY: the direct map covers all physical memory at this offset, and the lock above,
    // held until the end, serialises every change to kernel mappings.
    let mut mapper =
        unsafe { OffsetPageTable::new(active_pml4(), VirtAddr::new(PhysAddr::new(0).to_virt())) };
    let entry_flags = flags(PRESENT | WRITABLE | NO_EXECUTE | GLOBAL | extra);
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let frame = PhysFrame::containing_address(mapper_addr(phys));
    // SAFETY: the caller owns both the page and the frame, so the mapping aliases nothing.
    match unsafe { mapper.map_to(page, frame, entry_flags, &mut TableFrames) } {
        Ok(flush) => {
            // The page was unmapped: only this CPU may hold a stale "not present" entry.
            flush.ignore();
            crate::arch::mmu::flush_local(virt);
            Ok(())
        }
        Err(_) => Err("cannot map a kernel page (page already mapped or out of page-table memory)"),
    }
}

/// Identity-maps the page at physical `phys` (below 4 GiB) in the lower half, executable: the
/// AP trampoline runs there while paging switches on. Undone by [`unmap_low_identity`].
///
/// # Safety
/// `phys` must be a page the caller owns; the lower half must hold nothing else.
pub unsafe fn map_low_identity(phys: PhysAddr) -> Result<(), &'static str> {
    let _guard = KERNEL_TABLES.lock();
    // SAFETY: as in `map_page_with`.
    let mut mapper =
        unsafe { OffsetPageTable::new(active_pml4(), VirtAddr::new(PhysAddr::new(0).to_virt())) };
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(phys.as_u64()));
    let frame = PhysFrame::containing_address(mapper_addr(phys));
    // SAFETY: the caller owns the page, and the lower half is otherwise empty.
    match unsafe { mapper.map_to(page, frame, flags(PRESENT | WRITABLE), &mut TableFrames) } {
        Ok(flush) => {
            flush.ignore();
            crate::arch::mmu::flush_local(phys.as_u64());
            Ok(())
        }
        Err(_) => Err("cannot map the page (already mapped or out of page-table memory)"),
    }
}

/// Empties the lower half again, freeing the page-table pages under it (not the mapped pages),
/// and flushes every CPU's TLB so that none keeps a lower-half translation.
pub fn unmap_low_identity() {
    {
        let _guard = KERNEL_TABLES.lock();
        // SAFETY: `KERNEL_TABLES` is held until the end of the block.
        let pml4 = unsafe { active_pml4() };
        for entry in pml4.iter_mut().take(FIRST_KERNEL_ENTRY) {
            if !entry.is_unused() {
                // SAFETY: a lower-half table of the trampoline's identity map, used no more:
                // the AP that ran there is in the kernel, and the entry is removed next.
                unsafe { free_table_tree(PhysAddr::new(entry.addr().as_u64()), 3) };
                entry.set_unused();
            }
        }
    }
    let everyone = crate::arch::percpu::CpuSet::all_online();
    crate::arch::smp::shootdown(everyone, crate::arch::smp::Flush::All);
}

/// Frees the page-table page at `phys` and, above level 1, the tables its entries point to.
///
/// # Safety
/// `phys` is a page table of the lower half of the kernel's tables (which this module alone
/// changes, under `KERNEL_TABLES`), reachable only through the entry being removed, and no
/// CPU walks it any more.
unsafe fn free_table_tree(phys: PhysAddr, level: u8) {
    if level > 1 {
        // SAFETY: the table is the caller's to free (see above), so no one changes it.
        let table = unsafe { &*(phys.to_virt() as *const PageTable) };
        for entry in table.iter().filter(|e| !e.is_unused()) {
            if !entry.flags().contains(flags(HUGE_PAGE)) {
                // SAFETY: linked only below `phys`, so the caller's to free as well.
                unsafe { free_table_tree(PhysAddr::new(entry.addr().as_u64()), level - 1) };
            }
        }
    }
    // SAFETY: every lower-half table is a single frame from `allocate_table` (`init` dropped
    // the bootloader's without freeing them), and this one is unreachable (see above).
    unsafe { frame::free(phys, 0) };
}
