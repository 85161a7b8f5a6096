//! Restartable sequences (`rseq`), with Linux's ABI and rules: a thread registers a
//! `struct rseq` area in its own memory, and from then on the kernel keeps the area's CPU
//! fields current and aborts the thread's critical sections that a preemption, a migration or a
//! signal interrupted.
//!
//! The area (32 bytes, 32-aligned): `cpu_id_start` (u32, offset 0), `cpu_id` (u32, 4),
//! `rseq_cs` (u64, 8: the address of the running critical section's descriptor, or 0), `flags`
//! (u32, 16: must stay 0), `node_id` (u32, 20), `mm_cid` (u32, 24). A descriptor (`struct
//! rseq_cs`, 32 bytes): `version` (0), `flags` (0), `start_ip`, `post_commit_offset`,
//! `abort_ip`; the four bytes before `abort_ip` hold the signature given at registration.
//!
//! Each time the thread switches out of a CPU (preempted, asleep, or moving to another CPU) and
//! each time a handler is about to run, it notes an event; before it next returns to user mode
//! it reads `rseq_cs`, and if the interrupted instruction lies in `[start_ip, start_ip +
//! post_commit_offset)` and an event was noted, clears `rseq_cs` and resumes at `abort_ip`
//! instead (for a handler, the frame saves `abort_ip`); then it writes the CPU it is on to
//! `cpu_id_start` and `cpu_id`, node 0 to `node_id` and its concurrency id to `mm_cid`. An area
//! or a descriptor that cannot be read or written, or a bad descriptor, kills with SIGSEGV
//! (Linux's `force_sigsegv`).
//!
//! A concurrency id is a small number unique among the registered threads running in one
//! address space at the moment: a registered thread takes the lowest free one of its address
//! space when it is switched in (or registers) and gives it back when it is switched out
//! ([`Mm::take_concurrency_id`]); a thread without an area, which cannot see the id, leaves
//! the address space's shared mask alone at its switches.
//!
//! Registration is per thread: a fork's child inherits it (same addresses, copied memory), a
//! new thread or a `vfork` child (they share the address space) starts without one, and
//! `execve` ends it (the thread gets a new task).
//!
//! # Who touches what
//! [`Rseq`] lives in the thread's `UserThread`. Only the thread itself changes it: its system
//! calls, its switches in and out (the scheduler runs them on the thread's behalf, on the CPU
//! that runs it), and its way back to user mode; a fork fills the child's before the child
//! runs. Relaxed atomics suffice.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::arch::percpu;
use crate::arch::syscall::USER_END;
use crate::arch::trap::TrapFrame;
use crate::arch::uaccess::{is_user_range, read_user, write_user};
use crate::mm::addrspace::Mm;
use crate::sched;
use crate::syscall::errno::{EBUSY, EFAULT, EINVAL, EPERM, Errno, SysResult};

/// The size (and alignment) of the original `struct rseq`; a longer area is accepted too.
const AREA_SIZE: u64 = 32;
/// `rseq`'s `flags` argument: unregister.
const RSEQ_FLAG_UNREGISTER: u64 = 1;
/// `cpu_id` of an area that is not registered.
const CPU_ID_UNINITIALIZED: u32 = u32::MAX;
/// Offsets in the area.
const CPU_ID_START: u64 = 0;
const RSEQ_CS: u64 = 8;
const FLAGS: u64 = 16;
const NODE_ID: u64 = 20;
/// `Rseq::concurrency_id` when the thread holds none (it is not running).
const NO_CONCURRENCY_ID: u32 = u32::MAX;

/// A thread's registration and what its way back to user mode owes it.
pub struct Rseq {
    /// The registered area, 0 for none.
    area: AtomicU64,
    /// Its length as registered (32 or more).
    len: AtomicU32,
    /// The signature every abort handler must follow.
    signature: AtomicU32,
    /// A preemption, migration or signal happened since a critical section last looked
    /// (Linux's event mask): an interrupted critical section aborts.
    event: AtomicBool,
    /// The area must be brought up to date before the thread returns to user mode (Linux's
    /// `TIF_NOTIFY_RESUME` for rseq).
    update_due: AtomicBool,
    /// The concurrency id the thread holds while it runs.
    concurrency_id: AtomicU32,
}

impl Default for Rseq {
    fn default() -> Self {
        Self::new()
    }
}

/// A critical section's descriptor, as read from user memory and checked.
struct CriticalSection {
    start_ip: u64,
    post_commit_offset: u64,
    abort_ip: u64,
    flags: u32,
}

impl CriticalSection {
    fn contains(&self, ip: u64) -> bool {
        ip.wrapping_sub(self.start_ip) < self.post_commit_offset
    }
}

impl Rseq {
    pub const fn new() -> Self {
        Self {
            area: AtomicU64::new(0),
            len: AtomicU32::new(0),
            signature: AtomicU32::new(0),
            event: AtomicBool::new(false),
            update_due: AtomicBool::new(false),
            concurrency_id: AtomicU32::new(NO_CONCURRENCY_ID),
        }
    }

    fn area(&self) -> u64 {
        self.area.load(Ordering::Relaxed)
    }

    /// A fork's child takes the parent's registration (its copy of the area is at the same
    /// address), and brings the area up to date before it first enters user mode.
    pub fn inherit_for_fork(&self, parent: &Rseq) {
        let area = parent.area();
        self.area.store(area, Ordering::Relaxed);
        self.len
            .store(parent.len.load(Ordering::Relaxed), Ordering::Relaxed);
        self.signature
            .store(parent.signature.load(Ordering::Relaxed), Ordering::Relaxed);
        self.event
            .store(parent.event.load(Ordering::Relaxed), Ordering::Relaxed);
        self.update_due.store(area != 0, Ordering::Relaxed);
    }

    /// The scheduler switches the thread out of its CPU: an event for a registered thread,
    /// and its concurrency id goes back to `mm`. Interrupts disabled.
    pub fn switched_out(&self, mm: &Mm) {
        if self.area() != 0 {
            self.event.store(true, Ordering::Relaxed);
            self.update_due.store(true, Ordering::Relaxed);
        }
        self.give_back_concurrency_id(mm);
    }

    /// The thread's concurrency id, if it holds one, goes back to `mm`. Interrupts disabled.
    fn give_back_concurrency_id(&self, mm: &Mm) {
        let id = self
            .concurrency_id
            .swap(NO_CONCURRENCY_ID, Ordering::Relaxed);
        if id != NO_CONCURRENCY_ID {
            mm.put_concurrency_id(id);
        }
    }

    /// The scheduler switches the thread in: it takes a concurrency id of `mm`. Interrupts
    /// disabled.
    pub fn switched_in(&self, mm: &Mm) {
        if self.area() != 0 {
            self.concurrency_id
                .store(mm.take_concurrency_id(), Ordering::Relaxed);
        }
    }

    /// Whether the way back to user mode must call [`update`] first.
    pub fn update_due(&self) -> bool {
        self.update_due.load(Ordering::Relaxed)
    }
}

fn current_rseq() -> &'static Rseq {
    &sched::current().user.as_ref().expect("a user thread").rseq
}

/// `rseq(area, len, flags, signature)`: registers the calling thread's area, or with
/// `RSEQ_FLAG_UNREGISTER` ends the registration, with Linux's checks: `EINVAL` for unknown
/// flags, a length under 32, an area not 32-aligned, an unregistration that names another
/// area or length; `EPERM` for another signature; `EBUSY` when the same area is registered
/// already; `EFAULT` for an area outside user space or one that cannot be read.
pub fn rseq(area: u64, len: u64, flags: u64, signature: u64) -> SysResult {
    let state = current_rseq();
    // The length, flags and signature are 32-bit arguments.
    let (len, flags, signature) = (len as u32, u64::from(flags as u32), signature as u32);
    let registered = state.area();
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags != RSEQ_FLAG_UNREGISTER
            || registered == 0
            || registered != area
            || len != state.len.load(Ordering::Relaxed)
        {
            return Err(EINVAL);
        }
        if signature != state.signature.load(Ordering::Relaxed) {
            return Err(EPERM);
        }
        // Back to what an unregistered area holds: cpu_id "uninitialized", the rest 0.
        write_user(area + CPU_ID_START, &[0u32, CPU_ID_UNINITIALIZED])?;
        write_user(area + NODE_ID, &[0u32, 0])?;
        // Unregistered from now on: the thread gives its concurrency id back as its switch
        // out would, so that a registration after this one does not hold two.
        let user = sched::current().user.as_ref().expect("a user thread");
        x86_64::instructions::interrupts::without_interrupts(|| {
            state.area.store(0, Ordering::Relaxed);
            state.give_back_concurrency_id(&user.mm);
        });
        state.len.store(0, Ordering::Relaxed);
        state.signature.store(0, Ordering::Relaxed);
        return Ok(0);
    }
    if flags != 0 {
        return Err(EINVAL);
    }
    if registered != 0 {
        if registered != area || len != state.len.load(Ordering::Relaxed) {
            return Err(EINVAL);
        }
        if signature != state.signature.load(Ordering::Relaxed) {
            return Err(EPERM);
        }
        return Err(EBUSY);
    }
    if u64::from(len) < AREA_SIZE || !area.is_multiple_of(AREA_SIZE) {
        return Err(EINVAL);
    }
    if !is_user_range(area, len as usize) {
        return Err(EFAULT);
    }
    // A descriptor left behind (a libc reusing an area for a new thread) would abort or kill
    // at the first return to user mode: it is cleared, as Linux does.
    if read_user::<u64>(area + RSEQ_CS)? != 0 {
        write_user(area + RSEQ_CS, &0u64)?;
    }
    state.len.store(len, Ordering::Relaxed);
    state.signature.store(signature, Ordering::Relaxed);
    // Registered from now on: the thread takes a concurrency id as its switch in would, with
    // interrupts disabled so that no switch comes between.
    let user = sched::current().user.as_ref().expect("a user thread");
    x86_64::instructions::interrupts::without_interrupts(|| {
        state.area.store(area, Ordering::Relaxed);
        state.switched_in(&user.mm);
    });
    // The CPU fields are written on the way back to user mode.
    state.update_due.store(true, Ordering::Relaxed);
    Ok(0)
}

/// The way back to user mode, when [`Rseq::update_due`]: aborts an interrupted critical
/// section (moves `frame`'s RIP to its abort handler) and writes the CPU fields. Interrupts
/// enabled.
pub fn update(frame: &mut TrapFrame) {
    let state = current_rseq();
    state.update_due.store(false, Ordering::Relaxed);
    if let Err(why) = fix_up_and_update(state, frame) {
        crate::proc::signal::force_sigsegv(frame, None, why);
    }
}

/// A handler for `signo` is about to run on `frame`: an event, so that a critical section the
/// signal interrupted aborts (the handler returns to its abort handler), and the CPU fields
/// are brought up to date. Interrupts enabled.
pub fn signal_delivery(frame: &mut TrapFrame, signo: u32) {
    let state = current_rseq();
    if state.area() == 0 {
        return;
    }
    state.event.store(true, Ordering::Relaxed);
    state.update_due.store(false, Ordering::Relaxed);
    if let Err(why) = fix_up_and_update(state, frame) {
        crate::proc::signal::force_sigsegv(frame, Some(signo), why);
    }
}

/// Linux's `rseq_ip_fixup` and `rseq_update_cpu_node_id`; the error says what was wrong.
fn fix_up_and_update(state: &Rseq, frame: &mut TrapFrame) -> Result<(), &'static str> {
    let area = state.area();
    if area == 0 {
        return Ok(());
    }
    let efault = |_: Errno| "the rseq area cannot be read or written";
    let descriptor: u64 = read_user(area + RSEQ_CS).map_err(efault)?;
    if descriptor != 0 {
        let section = critical_section(descriptor, state.signature.load(Ordering::Relaxed))?;
        if section.contains(frame.rip) {
            if section.flags != 0 || read_user::<u32>(area + FLAGS).map_err(efault)? != 0 {
                return Err("rseq flags are not 0");
            }
            if state.event.swap(false, Ordering::Relaxed) {
                write_user(area + RSEQ_CS, &0u64).map_err(efault)?;
                frame.rip = section.abort_ip;
            }
        } else {
            // Outside its critical section the descriptor is stale: cleared.
            write_user(area + RSEQ_CS, &0u64).map_err(efault)?;
        }
    }
    let cpu = percpu::cpu_index() as u32;
    let concurrency_id = state.concurrency_id.load(Ordering::Relaxed);
    write_user(area + CPU_ID_START, &[cpu, cpu]).map_err(efault)?;
    // One memory node: node_id is 0.
    write_user(area + NODE_ID, &[0u32, concurrency_id]).map_err(efault)?;
    Ok(())
}

/// Reads and checks the descriptor at `address`: in user space, version 0, the section inside
/// user space without wrapping, the abort handler outside it and preceded by `signature`.
fn critical_section(address: u64, signature: u32) -> Result<CriticalSection, &'static str> {
    if address >= USER_END {
        return Err("the rseq_cs pointer is outside user space");
    }
    let [head, start_ip, post_commit_offset, abort_ip]: [u64; 4] =
        read_user(address).map_err(|_: Errno| "the rseq_cs descriptor cannot be read")?;
    let section = CriticalSection {
        start_ip,
        post_commit_offset,
        abort_ip,
        flags: (head >> 32) as u32,
    };
    let end = start_ip.checked_add(post_commit_offset);
    if head as u32 != 0
        || start_ip >= USER_END
        || end.is_none_or(|end| end >= USER_END)
        || abort_ip >= USER_END
        || section.contains(abort_ip)
    {
        return Err("the rseq_cs descriptor is invalid");
    }
    let found: u32 = read_user(abort_ip.wrapping_sub(4))
        .map_err(|_: Errno| "the rseq abort signature cannot be read")?;
    if found != signature {
        return Err("the rseq abort handler lacks the registered signature");
    }
    Ok(section)
}
