//! Page faults on user addresses: from user mode, and from the kernel's uaccess helpers.
//!
//! The handler runs on the faulting task's kernel stack, in process context: it turns
//! interrupts back on (when the faulting code had them on) and may sleep.
//!
//! The fast path locks only the VMA it needs: `lock_vma_under_rcu` finds it in the tree under
//! RCU and read-locks it (kernel/libs/vmalock revalidates it against reuse: same address
//! space, attached, covering the address); the fault is then served under that lock alone.
//! When that fails — no VMA, a writer holds it, it was recycled — or the fault cannot finish
//! under it, the fault is served again under `mmap_lock` for reading (the slow path, and the
//! only one with `vma_lock=off`).
//!
//! Either way the handler checks the access against the VMA's protection and fills the page:
//! a read of an untouched anonymous page maps the shared zero page read-only; a write maps a
//! fresh zeroed page (or replaces the zero page, or makes a page the VMA allows to write
//! writable). Entries are installed with compare-and-swap, so two threads faulting on one page
//! (or in neighbouring VMAs sharing a page table) never lose each other's work; the loser frees
//! its page.

use core::sync::atomic::{AtomicU64, Ordering};

use super::addrspace::{Mm, entry_flags};
use super::pagetable::{self, ADDRESS_MASK, NO_EXECUTE, PRESENT, PROT_NONE_ENTRY, WRITABLE};
use super::vma::{VM_ACCESS, VM_EXEC, VM_WRITE, Vma};
use super::vma_lock;
use super::zero_page;
use crate::arch::percpu::{self, PerCpu, per_cpu};
use crate::arch::trap::TrapFrame;

/// Why a fault could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA contains the address (`SEGV_MAPERR`).
    NoVma,
    /// The VMA forbids the access (`SEGV_ACCERR`).
    Forbidden,
    /// No frame for the page or a page table.
    OutOfMemory,
}

/// What the faulting access wanted, from the #PF error code.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub write: bool,
    pub execute: bool,
}

impl Access {
    pub fn from_error_code(code: u64) -> Self {
        Self {
            write: code & 2 != 0,
            execute: code & 16 != 0,
        }
    }
}

/// Fault counters of one CPU (bumped only by their CPU, with `percpu::add_local`).
pub struct FaultCounters {
    pub faults: AtomicU64,
    pub zero_page_maps: AtomicU64,
    pub out_of_memory: AtomicU64,
    pub errors: AtomicU64,
}

pub static COUNTERS: PerCpu<FaultCounters> = per_cpu![FaultCounters {
    faults: AtomicU64::new(0),
    zero_page_maps: AtomicU64::new(0),
    out_of_memory: AtomicU64::new(0),
    errors: AtomicU64::new(0),
}];

fn counters() -> &'static FaultCounters {
    COUNTERS.local()
}

/// Sums over CPUs: (faults served, zero-page maps, out of memory, errors).
pub fn totals() -> (u64, u64, u64, u64) {
    (
        COUNTERS.sum(|c| c.faults.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.zero_page_maps.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.out_of_memory.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.errors.load(Ordering::Relaxed)),
    )
}

/// A #PF from user mode at `addr`. Interrupts are disabled on entry and on return.
pub fn handle_user_fault(frame: &TrapFrame, addr: u64) -> Result<(), FaultError> {
    let access = Access::from_error_code(frame.error_code);
    with_interrupts(true, || fault_in_current(addr, access))
}

/// A #PF at a uaccess instruction on user address `addr`: served like a user fault unless page
/// faults are disabled here (the caller holds a spinlock: see `uaccess::read_user_nofault`).
/// Returns whether the access may be retried.
pub fn handle_uaccess_fault(frame: &TrapFrame, addr: u64) -> bool {
    if crate::arch::uaccess::pagefaults_disabled() || !crate::sched::is_running() {
        return false;
    }
    let access = Access::from_error_code(frame.error_code);
    let interrupts_were_on = frame.rflags & (1 << 9) != 0;
    with_interrupts(interrupts_were_on, || fault_in_current(addr, access)).is_ok()
}

/// Runs `f` with interrupts enabled if `enable`, and disables them again afterwards.
fn with_interrupts<R>(enable: bool, f: impl FnOnce() -> R) -> R {
    if enable {
        x86_64::instructions::interrupts::enable();
    }
    let result = f();
    x86_64::instructions::interrupts::disable();
    result
}

/// Serves a fault of the running task's process at `addr`.
fn fault_in_current(addr: u64, access: Access) -> Result<(), FaultError> {
    let task = crate::sched::current();
    let Some(process) = task.process() else {
        return Err(FaultError::NoVma);
    };
    let result = handle_fault(&process.mm, addr, access);
    match result {
        Ok(()) => {
            percpu::add_local(&counters().faults, 1);
            process.minor_faults.add(1);
        }
        Err(FaultError::OutOfMemory) => {
            percpu::add_local(&counters().out_of_memory, 1);
        }
        Err(_) => {
            percpu::add_local(&counters().errors, 1);
        }
    }
    result
}

/// Serves a fault at `addr` of `mm`: under a VMA lock if it can, else under `mmap_lock`.
pub fn handle_fault(mm: &Mm, addr: u64, access: Access) -> Result<(), FaultError> {
    let counters = vma_lock::counters();
    if vma_lock::is_enabled() {
        match fault_under_vma_lock(mm, addr, access) {
            FastPath::Done(result) => {
                percpu::add_local(&counters.success, 1);
                return result;
            }
            FastPath::Aborted => {
                percpu::add_local(&counters.abort, 1);
            }
            FastPath::Retry => {
                percpu::add_local(&counters.retry, 1);
            }
        }
    }
    percpu::add_local(&counters.fallback, 1);
    fault_under_mmap_lock(mm, addr, access)
}

/// How the fast path ended.
enum FastPath {
    /// Served (or refused: a bad access is final) under the VMA lock.
    Done(Result<(), FaultError>),
    /// No VMA lock taken: `lock_vma_under_rcu` failed.
    Aborted,
    /// The VMA was locked but the fault must be served under `mmap_lock`.
    Retry,
}

/// Lookups that find a detached VMA start over at most this often before falling back.
const MAX_LOOKUP_RETRIES: u32 = 3;

/// The fast path: lock the VMA under RCU, serve the fault under that lock alone.
fn fault_under_vma_lock(mm: &Mm, addr: u64, access: Access) -> FastPath {
    let locked = {
        let guard = crate::sync::rcu::read_lock();
        let found = vmalock::lock_vma_under_rcu(
            mm.identity(),
            addr,
            |a| mm.lookup_vma(a, &guard),
            MAX_LOOKUP_RETRIES,
            &vma_lock::PLATFORM,
        );
        let misses = match &found {
            Ok(found) => found.misses,
            Err(fallback) => fallback.misses,
        };
        if misses > 0 {
            percpu::add_local(&vma_lock::counters().miss, u64::from(misses));
        }
        match found {
            Ok(found) => found.vma,
            Err(_) => return FastPath::Aborted,
        }
        // The RCU read section ends here: a read-locked VMA cannot be detached or freed.
    };
    let vma: &Vma = &locked;
    debug_assert!(
        vma.mm() == mm.id() && vma.start() <= addr && addr < vma.end(),
        "lock_vma_under_rcu returned a VMA that does not cover {addr:#x} in this mm"
    );
    let flags = vma.flags();
    if let Err(error) = check_access(flags, access) {
        return FastPath::Done(Err(error));
    }
    if vma_lock::force_retry() {
        return FastPath::Retry;
    }
    match fill_page(mm, flags, addr, access) {
        // Memory may have been freed meanwhile: one more try, the slow way.
        Err(FaultError::OutOfMemory) => FastPath::Retry,
        result => FastPath::Done(result),
    }
}

/// The fault path under `mmap_lock` held for reading.
pub fn fault_under_mmap_lock(mm: &Mm, addr: u64, access: Access) -> Result<(), FaultError> {
    mm.mmap_lock.down_read();
    let result = match mm.find_vma(addr) {
        None => Err(FaultError::NoVma),
        Some(vma) => {
            let flags = vma.get().flags();
            check_access(flags, access).and_then(|()| fill_page(mm, flags, addr, access))
        }
    };
    mm.mmap_lock.up_read();
    result
}

/// Whether a VMA with `flags` allows `access` (on x86 every mapping that allows anything is
/// readable).
pub fn check_access(flags: u32, access: Access) -> Result<(), FaultError> {
    let allowed = if access.execute {
        flags & VM_EXEC != 0
    } else if access.write {
        flags & VM_WRITE != 0
    } else {
        flags & VM_ACCESS != 0
    };
    if allowed {
        Ok(())
    } else {
        Err(FaultError::Forbidden)
    }
}

/// Makes the page at `addr` of a VMA with `flags` accessible for `access` (already allowed).
/// Safe against concurrent faults on the same page: every change is a compare-and-swap from
/// the value this fault saw.
pub fn fill_page(mm: &Mm, flags: u32, addr: u64, access: Access) -> Result<(), FaultError> {
    let page = addr & !0xfff;
    let slot = pagetable::lookup_or_create(mm.root(), page).ok_or(FaultError::OutOfMemory)?;
    loop {
        let old = slot.load(Ordering::Acquire);
        let phys = old & ADDRESS_MASK;
        let new = if old & PRESENT != 0 {
            if permits(old, access) {
                // Another thread served it first (or the TLB held an older entry): done.
                x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(page));
                return Ok(());
            }
            if access.write && phys == zero_page() {
                let fresh = pagetable::zeroed_user_frame().ok_or(FaultError::OutOfMemory)?;
                match install(slot, old, fresh | entry_flags(flags, true)) {
                    true => {
                        mm.resident_pages.add(1);
                        // Other CPUs may still translate the page to the zero page and would
                        // read zeroes instead of what this thread writes next: shoot that
                        // translation down everywhere the address space is loaded. (Upgrades
                        // of one frame need no shootdown: a stale read-only entry only costs a
                        // spurious fault, served above.)
                        mm.flush_page_everywhere(page);
                        return Ok(());
                    }
                    false => {
                        super::frame::free_user(fresh);
                        continue;
                    }
                }
            }
            // A page this process owns whose entry lags behind an mprotect that allowed more.
            phys | entry_flags(flags, access.write || old & WRITABLE != 0)
        } else if old & PROT_NONE_ENTRY != 0 {
            // The page survived a PROT_NONE period; the VMA allows access again.
            phys | entry_flags(flags, false)
        } else if !access.write {
            percpu::add_local(&counters().zero_page_maps, 1);
            zero_page() | entry_flags(flags, false)
        } else {
            let fresh = pagetable::zeroed_user_frame().ok_or(FaultError::OutOfMemory)?;
            if install(slot, 0, fresh | entry_flags(flags, true)) {
                mm.resident_pages.add(1);
                return Ok(());
            }
            super::frame::free_user(fresh);
            continue;
        };
        if install(slot, old, new) {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(page));
            return Ok(());
        }
    }
}

/// Whether the present entry `entry` already allows `access`.
fn permits(entry: u64, access: Access) -> bool {
    (!access.write || entry & WRITABLE != 0) && (!access.execute || entry & NO_EXECUTE == 0)
}

fn install(slot: &AtomicU64, old: u64, new: u64) -> bool {
    slot.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}
