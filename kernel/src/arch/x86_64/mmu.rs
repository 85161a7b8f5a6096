//! The MMU's registers and TLB of this CPU: which page-table root is loaded (CR3), and
//! dropping this CPU's cached translations. Other CPUs' TLBs are reached through
//! [`smp::shootdown`](super::smp::shootdown). The page-table formats themselves are mm's.

use x86_64::VirtAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;

use crate::mm::PhysAddr;

/// Loads the page-table root at physical `root` on this CPU, dropping its non-global
/// translations.
///
/// # Safety
/// `root` must be a complete top-level table whose kernel half maps the kernel as the
/// current one does, so that the code running now goes on unchanged.
pub unsafe fn load_root(root: PhysAddr) {
    let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(root.as_u64()));
    // SAFETY: the kernel half stays the same (the caller's contract); only the user half
    // changes, and no user memory is referenced across this switch.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
}

/// The physical address of the page-table root loaded on this CPU.
pub fn loaded_root() -> PhysAddr {
    PhysAddr::new(Cr3::read().0.start_address().as_u64())
}

/// Drops this CPU's translation of the page at `addr` (`invlpg`).
pub fn flush_local(addr: u64) {
    x86_64::instructions::tlb::flush(VirtAddr::new_truncate(addr));
}

/// Drops all of this CPU's non-global translations.
pub fn flush_local_all() {
    x86_64::instructions::tlb::flush_all();
}
