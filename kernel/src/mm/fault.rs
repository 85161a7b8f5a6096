//! Page faults on user addresses: from user mode, and from the kernel's uaccess helpers.
//!
//! The architecture's trap handler turns a fault into a [`PageFault`] record and calls
//! [`handle_page_fault`], the one entry; its [`FaultAction`] says what the trap handler does
//! next: retry the access, signal the user process, or return `-EFAULT` from the uaccess
//! helper through the exception table. The handler runs on the faulting task's kernel stack,
//! in process context: it turns interrupts back on (when the faulting code had them on) and
//! may sleep.
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
//!
//! A VMA of a file takes its pages from the file's page cache (`fs::pagecache`), under the
//! same lock: a shared VMA maps the cache's frame itself (writable if the VMA is), so stores
//! reach the file and `write` reaches the mapping; a private one maps it read-only, and a
//! write copies it into a page of the process's own (at once, for a first access that is a
//! write). A page wholly past the end of the file is refused ([`FaultError::PastEndOfFile`]:
//! `SIGBUS`). Each entry holds the frame (`page_refs`), so the cache may let a page go while
//! it is mapped without the frame being freed under the mapping.

use core::sync::atomic::{AtomicU64, Ordering};

use super::addrspace::{Mm, MmapLocked, entry_flags};
use super::frame::UserUse;
use super::page_refs;
use super::pte::{GUARD_ENTRY, NO_EXECUTE, PRESENT, PROT_NONE_ENTRY, WRITABLE, address, entry};
use super::user_tables;
use super::vma::{VM_ACCESS, VM_EXEC, VM_SHARED, VM_WRITE, Vma, VmaFile};
use super::vma_lock;
use super::zero_page;
use crate::arch::percpu::{self, PerCpu, per_cpu};
use crate::arch::syscall::USER_END;
use crate::fs::pagecache::MapError;

/// Why a fault could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA contains the address (`SEGV_MAPERR`).
    NoVma,
    /// The VMA forbids the access (`SEGV_ACCERR`).
    Forbidden,
    /// No frame for the page or a page table.
    OutOfMemory,
    /// The page lies wholly past the end of the file the VMA maps (`BUS_ADRERR`).
    PastEndOfFile,
    /// The page is a guard marker (`MADV_GUARD_INSTALL`): `SEGV_MAPERR`, as on Linux.
    GuardRegion,
}

/// What the faulting access wanted.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub write: bool,
    pub execute: bool,
}

/// Who made the faulting access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// User code.
    User,
    /// A kernel uaccess helper, at an instruction the exception table can resume with
    /// `-EFAULT`.
    Uaccess,
    /// Any other kernel code.
    Kernel,
}

/// A page fault as the architecture reports it.
#[derive(Clone, Copy, Debug)]
pub struct PageFault {
    /// The address accessed.
    pub addr: u64,
    pub access: Access,
    pub mode: FaultMode,
    /// Whether the faulting code ran with interrupts enabled (user code always does).
    pub interrupts_were_on: bool,
}

/// What the trap handler does after [`handle_page_fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// The page is there now: return and let the access run again.
    Retry,
    /// User code made an access its address space does not allow, or no memory was left for
    /// it: the process gets the signal that `FaultError` stands for.
    Signal(FaultError),
    /// A uaccess helper touched a user address that cannot be served: resume it through the
    /// exception table, so it returns `-EFAULT`.
    ReturnEfault,
    /// The kernel faulted on its own: a bug, reported by the trap handler.
    KernelBug,
}

/// Fault counters of one CPU (bumped only by their CPU, with `percpu::add_local`).
struct FaultCounters {
    pub faults: AtomicU64,
    pub zero_page_maps: AtomicU64,
    pub copies_on_write: AtomicU64,
    pub out_of_memory: AtomicU64,
    pub errors: AtomicU64,
}

static COUNTERS: PerCpu<FaultCounters> = per_cpu![FaultCounters {
    faults: AtomicU64::new(0),
    zero_page_maps: AtomicU64::new(0),
    copies_on_write: AtomicU64::new(0),
    out_of_memory: AtomicU64::new(0),
    errors: AtomicU64::new(0),
}];

fn counters() -> &'static FaultCounters {
    COUNTERS.local()
}

/// Sums over CPUs: (faults served, zero-page maps, copies on write, out of memory, errors).
pub fn totals() -> (u64, u64, u64, u64, u64) {
    (
        COUNTERS.sum(|c| c.faults.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.zero_page_maps.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.copies_on_write.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.out_of_memory.load(Ordering::Relaxed)),
        COUNTERS.sum(|c| c.errors.load(Ordering::Relaxed)),
    )
}

/// The page-fault entry: decides whether `fault` is served, signalled, or returned as
/// `-EFAULT`. Interrupts are disabled on entry and on return.
pub fn handle_page_fault(fault: &PageFault) -> FaultAction {
    match fault.mode {
        FaultMode::User => match serve(fault) {
            Ok(()) => FaultAction::Retry,
            Err(error) => FaultAction::Signal(error),
        },
        // Served like a user fault unless page faults are disabled here (the caller holds a
        // spinlock: see `uaccess::read_user_nofault`) or no process runs yet.
        FaultMode::Uaccess
            if fault.addr < USER_END
                && !crate::arch::uaccess::pagefaults_disabled()
                && crate::sched::is_running()
                && serve(fault).is_ok() =>
        {
            FaultAction::Retry
        }
        FaultMode::Uaccess => FaultAction::ReturnEfault,
        FaultMode::Kernel => FaultAction::KernelBug,
    }
}

/// Serves `fault` for the running task's process, with interrupts back on while it does if
/// the faulting code had them on (user code always does): serving may sleep.
fn serve(fault: &PageFault) -> Result<(), FaultError> {
    if fault.interrupts_were_on {
        crate::arch::with_interrupts_enabled(|| fault_in_current(fault.addr, fault.access))
    } else {
        fault_in_current(fault.addr, fault.access)
    }
}

/// How often a fault that found no memory lets the out-of-memory killer make room and tries
/// again before its own process is killed.
const OUT_OF_MEMORY_TRIES: u32 = 8;

/// Serves a fault of the running task's process at `addr`.
fn fault_in_current(addr: u64, access: Access) -> Result<(), FaultError> {
    let task = crate::sched::current();
    let Some(user) = &task.user else {
        return Err(FaultError::NoVma);
    };
    let process = &user.process;
    let mut result = handle_fault(&user.mm, addr, access);
    // Out of memory: the out-of-memory killer makes room (it may sleep, so only where
    // interrupts are on), or leaves the faulting process to be killed.
    let mut tries = 0;
    while result == Err(FaultError::OutOfMemory)
        && tries < OUT_OF_MEMORY_TRIES
        && x86_64::instructions::interrupts::are_enabled()
        && crate::proc::oom::make_room_for(process)
    {
        tries += 1;
        result = handle_fault(&user.mm, addr, access);
    }
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
///
/// Each counter bump looks up the CPU it runs on afresh: the fault may have slept and woken on
/// another CPU, and `add_local` is only safe on this CPU's own counters.
fn handle_fault(mm: &Mm, addr: u64, access: Access) -> Result<(), FaultError> {
    if vma_lock::is_enabled() {
        match fault_under_vma_lock(mm, addr, access) {
            FastPath::Done(result) => {
                percpu::add_local(&vma_lock::counters().success, 1);
                return result;
            }
            FastPath::Aborted => {
                percpu::add_local(&vma_lock::counters().abort, 1);
            }
            FastPath::Retry => {
                percpu::add_local(&vma_lock::counters().retry, 1);
            }
        }
    }
    percpu::add_local(&vma_lock::counters().fallback, 1);
    fault_locked(&mm.read(), addr, access)
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
            |a| {
                mm.lookup_vma(a, &guard).map(|vma| {
                    // A VMA is freed only after it was detached, and detaching waits for
                    // every reader to leave.
                    // SAFETY: `lock_vma_under_rcu` reads the VMA inside this read section and
                    // keeps it beyond only read-locked, which keeps it alive (see above).
                    unsafe { beyond_rcu(vma) }
                })
            },
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
        // The RCU read section ends here; the read lock keeps the VMA from being freed, and
        // the VMA borrowed from it below lives no longer than the lock.
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
    match fill_page(mm, vma, addr, access) {
        // Memory may have been freed meanwhile: one more try, the slow way.
        Err(FaultError::OutOfMemory) => FastPath::Retry,
        result => FastPath::Done(result),
    }
}

/// `vma`, found in an RCU read section, for a lifetime not bound to the section.
///
/// # Safety
/// After the section ends, the caller may use the reference only while it holds the VMA's
/// read lock (taken inside the section).
unsafe fn beyond_rcu<'l>(vma: &Vma) -> &'l Vma {
    // SAFETY: the memory is a `Vma` while the caller uses it (the contract above).
    unsafe { &*(vma as *const Vma) }
}

/// The fault path under `mmap_lock` (held for reading, or for writing by a caller that
/// populates what it just mapped).
pub fn fault_locked(locked: &MmapLocked, addr: u64, access: Access) -> Result<(), FaultError> {
    let vma = locked.find_vma(addr).ok_or(FaultError::NoVma)?;
    check_access(vma.flags(), access)?;
    fill_page(locked.mm(), vma, addr, access)
}

/// Whether a VMA with `flags` allows `access` (on x86 every mapping that allows anything is
/// readable).
fn check_access(flags: u32, access: Access) -> Result<(), FaultError> {
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

/// Makes the page at `addr` of `vma` accessible for `access` (already allowed). Safe against
/// concurrent faults on the same page: every change is a compare-and-swap from the value this
/// fault saw. The caller holds the VMA's read lock or `mmap_lock`.
fn fill_page(mm: &Mm, vma: &Vma, addr: u64, access: Access) -> Result<(), FaultError> {
    let flags = vma.flags();
    let page = addr & !0xfff;
    // SAFETY: both callers hold the read lock of the VMA covering `addr` or `mmap_lock`, so
    // the tables on the way to it stay.
    let slot =
        unsafe { user_tables::lookup_or_create(mm.root(), page) }.ok_or(FaultError::OutOfMemory)?;
    loop {
        let old = slot.load(Ordering::Acquire);
        if old == GUARD_ENTRY {
            return Err(FaultError::GuardRegion);
        }
        let phys = address(old);
        let new = if old & PRESENT != 0 {
            if permits(old, access) {
                // Another thread served it first (or the TLB held an older entry): done.
                crate::arch::mmu::flush_local(page);
                return Ok(());
            }
            if access.write && phys == zero_page() {
                let fresh =
                    user_tables::zeroed_user_frame(UserUse::Page).ok_or(FaultError::OutOfMemory)?;
                match install(slot, old, entry(fresh.phys(), entry_flags(flags, true))) {
                    true => {
                        // The entry owns the page now; unmapping frees it.
                        let _ = fresh.into_raw();
                        mm.resident_pages.add(1);
                        // Other CPUs may still translate the page to the zero page and would
                        // read zeroes instead of what this thread writes next: shoot that
                        // translation down everywhere the address space is loaded. (Upgrades
                        // of one frame need no shootdown: a stale read-only entry only costs a
                        // spurious fault, served above.)
                        mm.flush_page_everywhere(page);
                        return Ok(());
                    }
                    // Another fault changed the entry: the fresh page goes back (dropped).
                    false => continue,
                }
            }
            if access.write && flags & VM_SHARED == 0 && page_refs::is_shared(phys) {
                // Copy-on-write: another address space maps the page too (fork).
                match copy_on_write(mm, slot, old, flags, page)? {
                    true => return Ok(()),
                    false => continue,
                }
            }
            // A page only this address space maps (or a shared mapping's page) whose entry is
            // read-only: a private page its last sharer left, or an entry that lags behind an
            // mprotect that allowed more. It becomes writable in place.
            entry(
                phys,
                entry_flags(flags, access.write || old & WRITABLE != 0),
            )
        } else if old & PROT_NONE_ENTRY != 0 {
            // The page survived a PROT_NONE period; the VMA allows access again.
            entry(phys, entry_flags(flags, false))
        } else if let Some(file) = vma.file() {
            let index = file.pgoff() + (page - vma.start()) / 4096;
            match map_file_page(mm, slot, flags, file, index, access)? {
                true => return Ok(()),
                false => continue,
            }
        } else if !access.write {
            percpu::add_local(&counters().zero_page_maps, 1);
            entry(zero_page(), entry_flags(flags, false))
        } else {
            let fresh =
                user_tables::zeroed_user_frame(UserUse::Page).ok_or(FaultError::OutOfMemory)?;
            if install(slot, 0, entry(fresh.phys(), entry_flags(flags, true))) {
                // The entry owns the page now; unmapping frees it.
                let _ = fresh.into_raw();
                mm.resident_pages.add(1);
                return Ok(());
            }
            // Another fault filled the entry first: the fresh page goes back (dropped).
            continue;
        };
        if install(slot, old, new) {
            crate::arch::mmu::flush_local(page);
            return Ok(());
        }
    }
}

/// Fills the empty entry `slot` with page `index` of `file` (a fault that `access` made in a
/// VMA with `flags`): the page cache's frame for a shared VMA (writable if the VMA is) or a
/// private VMA's read, a copy of it for a private VMA's write. `Ok(false)`: the entry changed
/// meanwhile; look again.
fn map_file_page(
    mm: &Mm,
    slot: &AtomicU64,
    flags: u32,
    file: &VmaFile,
    index: u64,
    access: Access,
) -> Result<bool, FaultError> {
    let cached = file.cache().map_page(index).map_err(|error| match error {
        MapError::PastEnd => FaultError::PastEndOfFile,
        MapError::OutOfMemory => FaultError::OutOfMemory,
    })?;
    let installed = if access.write && flags & VM_SHARED == 0 {
        // The copy is of the page as it is now; the hold on the cache's frame only lasts that
        // long.
        let copy = user_tables::copied_user_frame(cached);
        page_refs::release(cached);
        let copy = copy.ok_or(FaultError::OutOfMemory)?;
        if !install(slot, 0, entry(copy.phys(), entry_flags(flags, true))) {
            // The copy goes back (dropped).
            return Ok(false);
        }
        percpu::add_local(&counters().copies_on_write, 1);
        // The entry owns the copy now; unmapping frees it.
        let _ = copy.into_raw();
        true
    } else {
        let writable = flags & VM_SHARED != 0;
        install(slot, 0, entry(cached, entry_flags(flags, writable)))
    };
    if !installed {
        // Another fault filled the entry first: this one gives its hold back.
        page_refs::release(cached);
        return Ok(false);
    }
    // The entry holds the frame now (the cache's or the copy); unmapping lets it go.
    mm.resident_pages.add(1);
    Ok(true)
}

/// Gives this address space its own copy of the shared page that the present entry `old` in
/// `slot` maps (for a write to `page`): copies it to a fresh frame and installs that, writable,
/// if the entry is still `old`. The old translation is then shot down wherever the address
/// space is loaded before the old frame loses this mapping (and is freed if this was its last):
/// no thread of ours may read the old frame once another sharer may write it in place.
/// `Ok(false)`: the entry changed meanwhile; look again.
fn copy_on_write(
    mm: &Mm,
    slot: &AtomicU64,
    old: u64,
    flags: u32,
    page: u64,
) -> Result<bool, FaultError> {
    let shared = address(old);
    // Every mapping of the frame is read-only, so its contents stay put while they are copied.
    let copy = user_tables::copied_user_frame(shared).ok_or(FaultError::OutOfMemory)?;
    if !install(slot, old, entry(copy.phys(), entry_flags(flags, true))) {
        // The copy goes back (dropped).
        return Ok(false);
    }
    // The entry owns the copy now; unmapping frees it.
    let _ = copy.into_raw();
    percpu::add_local(&counters().copies_on_write, 1);
    mm.flush_page_everywhere(page);
    // Our entry to the frame is gone and shot down: the other mappings (or the page cache)
    // keep it, or, if they went while we copied, it is freed.
    page_refs::release(shared);
    Ok(true)
}

/// Whether the present entry `current` already allows `access`.
fn permits(current: u64, access: Access) -> bool {
    (!access.write || current & WRITABLE != 0) && (!access.execute || current & NO_EXECUTE == 0)
}

fn install(slot: &AtomicU64, old: u64, new: u64) -> bool {
    slot.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}
