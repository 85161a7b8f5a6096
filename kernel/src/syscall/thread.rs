//! Threads: clone of a thread, futex, TLS, thread ids, CPU affinity.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::errno::{
    EINTR, EINVAL, ENOSYS, ERESTART_RESTARTBLOCK, ERESTARTSYS, ESRCH, Errno, MAX_ERRNO, SysResult,
};
use crate::arch::percpu::CpuSet;
use crate::arch::trap::TrapFrame;
use crate::arch::uaccess::{copy_from_user, write_user};
use crate::proc::{Process, futex};
use crate::sched::task::{Task, UserThread};
use crate::sched::{self};

/// The calling thread's process (system calls come only from user threads).
pub fn process() -> &'static Arc<Process> {
    sched::current()
        .process()
        .expect("system calls come from user threads")
}

/// The calling thread's address space.
pub fn mm() -> &'static crate::mm::addrspace::Mm {
    &sched::current()
        .user
        .as_ref()
        .expect("system calls come from user threads")
        .mm
}

use super::process::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED, CLONE_FILES, CLONE_FS,
    CLONE_PARENT_SETTID, CLONE_SETTLS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM,
    CloneRequest,
};

/// What a thread-creating clone may ask for.
const THREAD_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID;

/// A clone with `CLONE_THREAD` (checked by the caller with the flag rules): a new thread of
/// this process, which returns 0 in RAX on `request.stack`.
pub fn clone_thread(frame: &TrapFrame, request: &CloneRequest) -> SysResult {
    let CloneRequest {
        flags,
        exit_signal: signal,
        stack,
        parent_tid,
        child_tid,
        tls,
    } = *request;
    if flags & !THREAD_FLAGS != 0 || signal != 0 {
        return Err(EINVAL);
    }
    let process = process().clone();
    let me = sched::current();
    let tid = crate::sched::task::allocate_tid();
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if stack != 0 {
        child_frame.rsp = stack;
    }
    let parent_fs = me
        .user
        .as_ref()
        .map_or(0, |u| u.fs_base.load(Ordering::Relaxed));
    let fs_base = if flags & CLONE_SETTLS != 0 {
        tls
    } else {
        parent_fs
    };
    if flags & CLONE_SETTLS != 0 && !is_canonical_user(tls) {
        return Err(super::errno::EPERM);
    }
    let clear_tid = if flags & CLONE_CHILD_CLEARTID != 0 {
        child_tid
    } else {
        0
    };
    if flags & CLONE_PARENT_SETTID != 0 {
        write_user(parent_tid, &tid)?;
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        write_user(child_tid, &tid)?;
    }
    let mm = me.user.as_ref().expect("a user thread").mm.clone();
    let user =
        UserThread::new(process.clone(), mm, fs_base, clear_tid, child_frame).with_current_fpu();
    // A new thread starts with its creator's signal mask.
    if let Some(parent) = &me.user {
        user.signals.inherit_mask(&parent.signals);
    }
    let task = Task::new_user(
        tid,
        &me.name(),
        user,
        crate::proc::signal::user_thread_start,
    )
    .ok_or(super::errno::ENOMEM)?;
    // It may run on the CPUs its creator may run on, with its policy.
    task.inherit_scheduling(me);
    if !process.add_thread(task.clone()) {
        return Err(super::errno::EINTR);
    }
    sched::spawn(task);
    Ok(u64::from(tid))
}

fn is_canonical_user(addr: u64) -> bool {
    addr < crate::arch::syscall::USER_END
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
const ARCH_GET_CPUID: u64 = 0x1011;
const ARCH_GET_XCOMP_SUPP: u64 = 0x1021;
/// The user register state the kernel keeps (FXSAVE's): x87 and SSE, as an XSAVE feature mask.
const USER_XFEATURES: u64 = 0b11;

pub fn arch_prctl(code: u64, address: u64) -> SysResult {
    let user = sched::current().user.as_ref().expect("a user thread");
    // `int option`.
    match code as u32 as u64 {
        ARCH_SET_FS => {
            if !is_canonical_user(address) {
                return Err(super::errno::EPERM);
            }
            user.fs_base.store(address, Ordering::Relaxed);
            x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new(address));
            Ok(0)
        }
        ARCH_GET_FS => {
            write_user(address, &user.fs_base.load(Ordering::Relaxed))?;
            Ok(0)
        }
        ARCH_GET_GS => {
            write_user(address, &0u64)?;
            Ok(0)
        }
        ARCH_SET_GS => Err(super::errno::EPERM),
        // The CPUID instruction works (it is never made to fault).
        ARCH_GET_CPUID => Ok(1),
        ARCH_GET_XCOMP_SUPP => {
            write_user(address, &USER_XFEATURES)?;
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

pub fn set_tid_address(address: u64) -> SysResult {
    let task = sched::current();
    let user = task.user.as_ref().expect("a user thread");
    user.clear_child_tid.store(address, Ordering::Relaxed);
    Ok(u64::from(task.tid))
}

/// `sizeof(struct robust_list_head)`, the only length `set_robust_list` takes.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

/// `set_robust_list(head, len)`: records the head for `get_robust_list`.
pub fn set_robust_list(head: u64, len: u64) -> SysResult {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(EINVAL);
    }
    let user = sched::current().user.as_ref().expect("a user thread");
    user.robust_list.store(head, Ordering::Relaxed);
    Ok(0)
}

/// `get_robust_list(tid, head_out, len_out)`: thread `tid`'s (0: the caller's) robust list
/// head and its size.
pub fn get_robust_list(tid: u64, head_out: u64, len_out: u64) -> SysResult {
    let task = match tid as u32 {
        0 => sched::current_arc(),
        tid => crate::proc::find_thread(tid).ok_or(ESRCH)?,
    };
    let head = task
        .user
        .as_ref()
        .map_or(0, |user| user.robust_list.load(Ordering::Relaxed));
    // Linux (6.12's stable updates on) passes the head back from a helper that answers errors
    // as pointers: a head among the last 4095 addresses is taken for one, and answered
    // before anything is written.
    let as_error = head as i64;
    if (-MAX_ERRNO..0).contains(&as_error) {
        return Err(Errno(-as_error as i32));
    }
    write_user(len_out, &ROBUST_LIST_HEAD_SIZE)?;
    write_user(head_out, &head)?;
    Ok(0)
}

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_LOCK_PI: u32 = 6;
const FUTEX_UNLOCK_PI: u32 = 7;
const FUTEX_TRYLOCK_PI: u32 = 8;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
const FUTEX_CMP_REQUEUE_PI: u32 = 12;
const FUTEX_LOCK_PI2: u32 = 13;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;

/// Linux's futex key checks, in its order: an aligned word (EINVAL) in user space (EFAULT);
/// a shared (not private) futex is keyed by its page, which must be there (faulted in, for
/// writing when `write`). User space is Linux's `access_ok` for an object this small: only
/// the start is checked against the top (`USER_END`, which passes: a guard page lies above
/// it), so a private futex there is keyed, and only reading the word faults.
fn futex_key(addr: u64, shared: bool, write: bool) -> Result<(), super::errno::Errno> {
    if addr % 4 != 0 {
        return Err(EINVAL);
    }
    if addr > crate::arch::syscall::USER_END {
        return Err(super::errno::EFAULT);
    }
    if shared {
        if write {
            crate::arch::uaccess::cmpxchg_user_u32(addr, 0, 0)?;
        } else {
            crate::arch::uaccess::read_user::<u32>(addr)?;
        }
    }
    Ok(())
}

/// A count argument of the wake operations (an `int`): Linux wakes one waiter even when it
/// is 0 or negative.
fn wake_count(count: u64) -> u32 {
    (count as i32).max(1) as u32
}

/// `futex(addr, op, value, timeout, addr2, value3)`: WAIT and WAKE (and their BITSET forms),
/// REQUEUE, CMP_REQUEUE and WAKE_OP, the priority-inheritance locks (LOCK_PI, LOCK_PI2,
/// TRYLOCK_PI, UNLOCK_PI, and CMP_REQUEUE_PI, which finds no one to requeue: there is no
/// WAIT_REQUEUE_PI, ENOSYS), private or shared; checked in Linux's order: the timeout of the
/// operations that take one (EFAULT, EINVAL), `FUTEX_CLOCK_REALTIME` where it does not belong
/// (ENOSYS), then the operation's own checks. For REQUEUE, CMP_REQUEUE and WAKE_OP the
/// `timeout` argument is a second count.
pub fn futex(addr: u64, op: u64, value: u64, timeout: u64, addr2: u64, value3: u64) -> SysResult {
    // `int op`, `u32 val`, `u32 val3`.
    let op = op as u32;
    let (value, value3) = (value as u32, value3 as u32);
    let command = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let shared = op & FUTEX_PRIVATE_FLAG == 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let takes_timeout = matches!(
        command,
        FUTEX_WAIT | FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI
    );
    let deadline = if timeout != 0 && takes_timeout {
        let ns = super::time::read_timespec(timeout)?;
        Some(if command == FUTEX_WAIT {
            crate::time::now_ns().saturating_add(ns)
        } else if realtime || command == FUTEX_LOCK_PI {
            super::time::realtime_to_monotonic(ns)
        } else {
            ns
        })
    } else {
        None
    };
    if realtime
        && !matches!(
            command,
            FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return Err(ENOSYS);
    }
    let mm = mm();
    // The second count of REQUEUE, CMP_REQUEUE and WAKE_OP: the timeout argument's low half.
    let count2 = timeout as u32 as u64;
    match command {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if command == FUTEX_WAIT {
                futex::BITSET_MATCH_ANY
            } else {
                value3
            };
            if bitset == 0 {
                return Err(EINVAL);
            }
            futex_key(addr, shared, false)?;
            futex_wait(addr, value, deadline, bitset)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if command == FUTEX_WAKE {
                futex::BITSET_MATCH_ANY
            } else {
                value3
            };
            if bitset == 0 {
                return Err(EINVAL);
            }
            futex_key(addr, shared, false)?;
            let count = wake_count(u64::from(value));
            Ok(u64::from(futex::wake(mm, addr, count, bitset)))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (wake, moved) = (value as i32, count2 as u32 as i32);
            if wake < 0 || moved < 0 {
                return Err(EINVAL);
            }
            futex_key(addr, shared, false)?;
            futex_key(addr2, shared, false)?;
            let expected = (command == FUTEX_CMP_REQUEUE).then_some(value3);
            let handled = futex::requeue(mm, addr, addr2, wake as u32, moved as u32, expected)?;
            Ok(u64::from(handled))
        }
        FUTEX_WAKE_OP => {
            futex_key(addr, shared, false)?;
            futex_key(addr2, shared, true)?;
            let op = futex::WakeOp::decode(value3);
            let (count, second_count) = (wake_count(u64::from(value)), wake_count(count2));
            let woken = futex::wake_op(mm, addr, addr2, count, second_count, &op)?;
            Ok(u64::from(woken))
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            futex_key(addr, shared, true)?;
            futex_lock_pi(addr, deadline, command == FUTEX_TRYLOCK_PI)
        }
        FUTEX_UNLOCK_PI => {
            // Linux reads the word and checks the owner before it looks at the key.
            let word = crate::arch::uaccess::read_user::<u32>(addr)?;
            let tid = sched::current().tid;
            if word & futex::PI_OWNER_MASK != tid {
                return Err(super::errno::EPERM);
            }
            futex_key(addr, shared, true)?;
            futex::pi_unlock(mm, addr, tid)?;
            Ok(0)
        }
        FUTEX_CMP_REQUEUE_PI => {
            let (wake, moved) = (value as i32, count2 as u32 as i32);
            if wake < 0 || moved < 0 || addr == addr2 || wake != 1 {
                return Err(EINVAL);
            }
            futex_key(addr, shared, false)?;
            futex_key(addr2, shared, true)?;
            Ok(u64::from(futex::requeue_pi(mm, addr, addr2, value3)?))
        }
        _ => Err(ENOSYS),
    }
}

/// FUTEX_LOCK_PI, LOCK_PI2 and (`try_only`) TRYLOCK_PI: takes the lock at `addr`, sleeping
/// while another thread holds it, until `deadline` (ETIMEDOUT); TRYLOCK_PI does not sleep
/// (EAGAIN). A signal interrupts the sleep and the call starts again, as on Linux.
fn futex_lock_pi(addr: u64, deadline: Option<u64>, try_only: bool) -> SysResult {
    let tid = sched::current().tid;
    let is_thread = |owner: u32| crate::proc::find_thread(owner).is_some();
    loop {
        match futex::pi_try_lock(mm(), addr, tid, is_thread)? {
            futex::PiAttempt::Taken => return Ok(0),
            futex::PiAttempt::Held(_) if try_only => return Err(super::errno::EAGAIN),
            futex::PiAttempt::Held(seen) => {
                match futex::wait(mm(), addr, seen, deadline, futex::BITSET_MATCH_ANY) {
                    Ok(()) | Err(super::errno::EAGAIN) => {}
                    Err(EINTR) => return Err(super::errno::ERESTARTNOINTR),
                    Err(error) => return Err(error),
                }
            }
        }
    }
}

/// FUTEX_WAIT until woken or `deadline`. A signal interrupts it: without a deadline the call
/// restarts unless a handler without `SA_RESTART` runs; with one it continues through
/// `restart_syscall` unless a handler runs (then `EINTR`), as on Linux.
pub(super) fn futex_wait(addr: u64, value: u32, deadline: Option<u64>, bitset: u32) -> SysResult {
    match futex::wait(mm(), addr, value, deadline, bitset) {
        Ok(()) => Ok(0),
        Err(EINTR) => match deadline {
            None => Err(ERESTARTSYS),
            Some(deadline) => {
                crate::proc::signal::set_restart(crate::proc::signal::Restart::FutexWait {
                    addr,
                    value,
                    deadline,
                    bitset,
                });
                Err(ERESTART_RESTARTBLOCK)
            }
        },
        Err(error) => Err(error),
    }
}

/// The size of the kernel's CPU mask in bytes (Linux's `cpumask_size()`): one `u64`.
const CPU_MASK_BYTES: u32 = size_of::<u64>() as u32;

/// `sched_getaffinity(pid, len, mask)`: the online CPUs thread `pid` may run on; returns the
/// bytes written. Checked in Linux's order: `len` (EINVAL), the thread (ESRCH), the buffer
/// (EFAULT).
pub fn sched_getaffinity(pid: u64, len: u64, mask: u64) -> SysResult {
    // `unsigned int len`: Linux wants room for every possible CPU, in whole `unsigned long`s.
    let len = len as u32;
    if len < CPU_MASK_BYTES || !len.is_multiple_of(CPU_MASK_BYTES) {
        return Err(EINVAL);
    }
    let task = affinity_target(pid)?;
    let cpus = task.allowed_cpus().intersection(CpuSet::all_online());
    write_user(mask, &cpus.0)?;
    Ok(u64::from(CPU_MASK_BYTES))
}

/// `sched_setaffinity(pid, len, mask)`: lets thread `pid` run only on the CPUs in `mask`. As
/// Linux: of `len` bytes only the kernel's mask size is read, a shorter mask is padded with
/// zeroes, CPUs that are not online are ignored, and a mask left with none is EINVAL. Checked
/// in Linux's order: the buffer (EFAULT), the thread (ESRCH), the mask (EINVAL).
pub fn sched_setaffinity(pid: u64, len: u64, mask: u64) -> SysResult {
    let mut bytes = [0u8; CPU_MASK_BYTES as usize];
    let read = (len as u32).min(CPU_MASK_BYTES) as usize;
    // Nothing to read, nothing to fault on (Linux copies 0 bytes from any address).
    if read > 0 {
        copy_from_user(&mut bytes[..read], mask)?;
    }
    let task = affinity_target(pid)?;
    let cpus = CpuSet(u64::from_le_bytes(bytes));
    if cpus.intersection(CpuSet::all_online()).is_empty() {
        return Err(EINVAL);
    }
    sched::set_affinity(&task, cpus);
    Ok(0)
}

/// The thread an affinity call names: `pid` (a `pid_t`) 0 is the caller, else any thread
/// (every caller is root: it may change any); a negative or unknown one is ESRCH.
fn affinity_target(pid: u64) -> Result<Arc<Task>, super::errno::Errno> {
    match pid as i32 {
        0 => Ok(sched::current_arc()),
        ..0 => Err(ESRCH),
        pid => crate::proc::find_thread(pid as u32).ok_or(ESRCH),
    }
}

/// `getcpu(cpu, node)`: where the caller runs now.
pub fn getcpu(cpu: u64, node: u64) -> SysResult {
    let index = crate::arch::percpu::cpu_index() as u32;
    if cpu != 0 {
        write_user(cpu, &index)?;
    }
    if node != 0 {
        write_user(node, &0u32)?;
    }
    Ok(0)
}
