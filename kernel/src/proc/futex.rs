//! Futexes: sleeping on a 32-bit word of user memory until another thread wakes that word.
//!
//! Waiters sit in a table of hashed buckets, keyed by (address space, user address): Linux's
//! private key. For threads of one process, Linux's shared key names the same word; processes
//! that share memory (`MAP_SHARED` across fork) cannot meet on a futex there yet (Linux keys
//! those by the page). A bucket holds memory only while someone waits in it. Each waiter
//! carries a bitset (the BITSET operations wake only waiters whose bits meet theirs) and its
//! word's address in a [`WaitState`] shared with the sleeping thread, since a requeue moves it
//! to another word (and bucket).
//!
//! No lost wake-ups: a waiter marks itself asleep, then takes the bucket lock, reads the word
//! and joins the bucket in one critical section; a waker takes the same lock to find waiters.
//! The word is read with page faults disabled under that spinlock; if the page is missing the
//! waiter drops the lock, faults it in with an ordinary read, and starts over. Operations on
//! two words (requeue, wake-op) take both buckets' locks, the lower index first. A waiter's
//! address changes only under the lock of the bucket it leaves.
//!
//! Priority-inheritance futexes hold their owner's thread id (and a waiters bit) in the word:
//! lock and unlock change it with an atomic compare-and-exchange under the bucket lock, and a
//! thread that finds the lock taken sleeps on the word like a waiter. No priority is lent
//! (the scheduler has no priorities to lend); an unlock leaves the word free and wakes one
//! waiter, which takes it (setting the waiters bit again while others remain). An owner that
//! ends without unlocking leaves its waiters asleep until their timeout (Linux marks such a
//! lock's owner dead and hands it on).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::uaccess;
use crate::mm::addrspace::Mm;
use crate::sched::{self, Task, timer};
use crate::sync::IrqSpinLock;
use crate::sync::spinlock::IrqSpinLockGuard;
use crate::syscall::errno::{
    EAGAIN, EDEADLK, EFAULT, EINTR, EINVAL, ENOSYS, EPERM, ESRCH, ETIMEDOUT, Errno,
};
use crate::time::now_ns;

/// What a sleeping thread and its entry in a bucket share.
struct WaitState {
    woken: AtomicBool,
    /// The word waited on now (a requeue changes it).
    addr: AtomicU64,
}

struct Waiter {
    mm: usize,
    addr: u64,
    bitset: u32,
    task: Arc<Task>,
    state: Arc<WaitState>,
}

impl Waiter {
    fn is_on(&self, mm: usize, addr: u64) -> bool {
        self.mm == mm && self.addr == addr
    }
}

/// The bitset of the plain WAIT and WAKE operations: every waiter, every bit.
pub const BITSET_MATCH_ANY: u32 = u32::MAX;

const BUCKETS: usize = 64;

static TABLE: [IrqSpinLock<Vec<Waiter>>; BUCKETS] =
    [const { IrqSpinLock::new(Vec::new()) }; BUCKETS];

fn bucket_index(mm: usize, addr: u64) -> usize {
    let hash = (addr >> 2)
        .wrapping_add(mm as u64 >> 6)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (hash >> 58) as usize % BUCKETS
}

fn bucket(mm: usize, addr: u64) -> &'static IrqSpinLock<Vec<Waiter>> {
    &TABLE[bucket_index(mm, addr)]
}

type Bucket = IrqSpinLockGuard<'static, Vec<Waiter>>;

/// Locks the buckets of words `first` and `second` (the lower index first); the second guard
/// is `None` when both words hash to the same bucket.
fn lock_two(mm: usize, first: u64, second: u64) -> (Bucket, Option<Bucket>) {
    let (a, b) = (bucket_index(mm, first), bucket_index(mm, second));
    if a == b {
        return (TABLE[a].lock(), None);
    }
    if a < b {
        let first = TABLE[a].lock();
        (first, Some(TABLE[b].lock()))
    } else {
        let second = TABLE[b].lock();
        (TABLE[a].lock(), Some(second))
    }
}

/// [`lock_two`] of `from` and `to` once the word at `from` holds `expected`, where one is
/// given: `EAGAIN` when it holds another value. A word whose page is not present is faulted
/// in with no lock held (`EFAULT` for a bad address), and the check made again.
fn lock_two_expecting(
    mm: usize,
    from: u64,
    to: u64,
    expected: Option<u32>,
) -> Result<(Bucket, Option<Bucket>), Errno> {
    loop {
        let buckets = lock_two(mm, from, to);
        let Some(expected) = expected else {
            return Ok(buckets);
        };
        match uaccess::read_user_nofault::<u32>(from) {
            Ok(value) if value != expected => return Err(EAGAIN),
            Ok(_) => return Ok(buckets),
            Err(_) => {
                drop(buckets);
                uaccess::read_user::<u32>(from)?;
            }
        }
    }
}

/// Sleeps while the word at `addr` holds `expected`, until a wake-up that meets `bitset`,
/// `deadline` (ns since boot) or a signal (`EINTR`: the caller decides whether the call
/// restarts). `EAGAIN` if the word differs, `EFAULT` for a bad address.
pub fn wait(
    mm: &Mm,
    addr: u64,
    expected: u32,
    deadline: Option<u64>,
    bitset: u32,
) -> Result<(), Errno> {
    if addr % 4 != 0 {
        return Err(crate::syscall::errno::EINVAL);
    }
    let me = sched::current_arc();
    let state = Arc::new(WaitState {
        woken: AtomicBool::new(false),
        addr: AtomicU64::new(addr),
    });
    let bucket = bucket(mm.id(), addr);
    loop {
        sched::set_current_sleeping();
        let mut waiters = bucket.lock();
        match uaccess::read_user_nofault::<u32>(addr) {
            Ok(value) if value != expected => {
                drop(waiters);
                sched::set_current_runnable();
                return Err(EAGAIN);
            }
            Ok(_) => {
                waiters.push(Waiter {
                    mm: mm.id(),
                    addr,
                    bitset,
                    task: me.clone(),
                    state: state.clone(),
                });
                break;
            }
            Err(_) => {
                drop(waiters);
                sched::set_current_runnable();
                // Fault the page in (or learn that the address is bad), then try again.
                uaccess::read_user::<u32>(addr)?;
            }
        }
    }
    let timer = deadline.map(|at| timer::add(at, me.clone()));
    let result = loop {
        if state.woken.load(Ordering::Acquire) {
            break Ok(());
        }
        if me.signal_pending() {
            break Err(EINTR);
        }
        if deadline.is_some_and(|at| now_ns() >= at) {
            break Err(ETIMEDOUT);
        }
        sched::schedule();
        sched::set_current_sleeping();
    };
    sched::set_current_runnable();
    if let Some(id) = timer {
        timer::cancel(id);
    }
    // Woken after all, between the checks and the removal: that wake-up counts.
    if result.is_err() && !leave(mm.id(), &state) {
        return Ok(());
    }
    result
}

/// Takes the waiter of `state` out of its bucket, following it if a requeue moved it; false
/// if it is in none (a waker took it out: it was woken).
fn leave(mm: usize, state: &Arc<WaitState>) -> bool {
    loop {
        let addr = state.addr.load(Ordering::Acquire);
        let mut waiters = bucket(mm, addr).lock();
        if let Some(index) = waiters.iter().position(|w| Arc::ptr_eq(&w.state, state)) {
            waiters.swap_remove(index);
            release_if_empty(&mut waiters);
            return true;
        }
        // Under this bucket's lock a requeue away from it has already changed the address.
        if state.addr.load(Ordering::Acquire) == addr {
            return false;
        }
    }
}

/// Gives an empty bucket's memory back: a bucket holds memory only while threads wait in it,
/// so the table does not keep what the busiest moment of some earlier process needed.
fn release_if_empty(waiters: &mut Vec<Waiter>) {
    if waiters.is_empty() {
        *waiters = Vec::new();
    }
}

/// Takes out of `waiters` up to `count` waiters on the word at `addr` whose bitsets meet
/// `bitset`, into `chosen`; returns how many.
fn take_waiters(
    waiters: &mut Vec<Waiter>,
    mm: usize,
    addr: u64,
    count: u32,
    bitset: u32,
    chosen: &mut Vec<Waiter>,
) -> u32 {
    let mut taken = 0;
    let mut index = 0;
    while index < waiters.len() && taken < count {
        if waiters[index].is_on(mm, addr) && waiters[index].bitset & bitset != 0 {
            chosen.push(waiters.remove(index));
            taken += 1;
        } else {
            index += 1;
        }
    }
    release_if_empty(waiters);
    taken
}

fn wake_all(chosen: Vec<Waiter>) {
    for waiter in &chosen {
        waiter.state.woken.store(true, Ordering::Release);
        sched::wake(&waiter.task);
    }
}

/// Wakes up to `count` waiters on the word at `addr` whose bitsets meet `bitset`; returns how
/// many.
pub fn wake(mm: &Mm, addr: u64, count: u32, bitset: u32) -> u32 {
    let mut chosen = Vec::new();
    let woken = {
        let mut waiters = bucket(mm.id(), addr).lock();
        take_waiters(&mut waiters, mm.id(), addr, count, bitset, &mut chosen)
    };
    wake_all(chosen);
    woken
}

/// FUTEX_REQUEUE and FUTEX_CMP_REQUEUE: if the word at `from` holds `expected` (when given;
/// else `EAGAIN`), wakes up to `wake_count` of its waiters and moves up to `move_count` more
/// to the word at `to`; returns how many were woken and moved.
pub fn requeue(
    mm: &Mm,
    from: u64,
    to: u64,
    wake_count: u32,
    move_count: u32,
    expected: Option<u32>,
) -> Result<u32, Errno> {
    let id = mm.id();
    let mut chosen = Vec::new();
    let handled = {
        let (mut source, mut target) = lock_two_expecting(id, from, to, expected)?;
        let mut handled = 0;
        let mut index = 0;
        while index < source.len() && handled < wake_count.saturating_add(move_count) {
            if !source[index].is_on(id, from) {
                index += 1;
                continue;
            }
            handled += 1;
            if handled <= wake_count {
                chosen.push(source.remove(index));
                continue;
            }
            let waiter = &mut source[index];
            waiter.addr = to;
            waiter.state.addr.store(to, Ordering::Release);
            match target.as_mut() {
                Some(target) => target.push(source.remove(index)),
                None => index += 1,
            }
        }
        release_if_empty(&mut source);
        handled
    };
    wake_all(chosen);
    Ok(handled)
}

/// The operation of FUTEX_WAKE_OP, decoded from its encoded argument: what to do to the
/// second word and the comparison of its old value that decides whether its waiters wake.
pub struct WakeOp {
    kind: u32,
    operand: u32,
    comparison: u32,
    comparand: i32,
}

const WAKE_OP_SHIFT_FLAG: u32 = 8;

impl WakeOp {
    /// Linux's layout: operation (bits 28-30, bit 31 making the operand a shift count),
    /// comparison (24-27), operand (12-23) and comparand (0-11), both signed.
    pub fn decode(encoded: u32) -> Self {
        let signed_12 = |bits: u32| ((bits << 20) as i32) >> 20;
        let mut operand = signed_12(encoded >> 12);
        if (encoded >> 28) & WAKE_OP_SHIFT_FLAG != 0 {
            operand = 1 << (operand & 31);
        }
        Self {
            kind: (encoded >> 28) & 7,
            operand: operand as u32,
            comparison: (encoded >> 24) & 15,
            comparand: signed_12(encoded),
        }
    }

    /// The new value of a word that held `old`; `ENOSYS` for an unknown operation.
    fn apply(&self, old: u32) -> Result<u32, Errno> {
        match self.kind {
            0 => Ok(self.operand),
            1 => Ok(old.wrapping_add(self.operand)),
            2 => Ok(old | self.operand),
            3 => Ok(old & !self.operand),
            4 => Ok(old ^ self.operand),
            _ => Err(ENOSYS),
        }
    }

    /// Whether the old value `old` passes the comparison; `ENOSYS` for an unknown one.
    fn compare(&self, old: u32) -> Result<bool, Errno> {
        let (old, comparand) = (old as i32, self.comparand);
        match self.comparison {
            0 => Ok(old == comparand),
            1 => Ok(old != comparand),
            2 => Ok(old < comparand),
            3 => Ok(old >= comparand),
            4 => Ok(old <= comparand),
            5 => Ok(old > comparand),
            _ => Err(ENOSYS),
        }
    }
}

/// Applies `op` atomically to the word at `addr` with page faults disabled; returns its old
/// value, or `EFAULT` if the page is missing (the caller faults it in and tries again).
fn apply_nofault(addr: u64, op: &WakeOp) -> Result<u32, Errno> {
    let mut old = uaccess::read_user_nofault::<u32>(addr)?;
    loop {
        let seen = uaccess::cmpxchg_user_u32_nofault(addr, old, op.apply(old)?)?;
        if seen == old {
            return Ok(old);
        }
        old = seen;
    }
}

/// FUTEX_WAKE_OP: applies `op` to the word at `second`, wakes up to `count` waiters of the
/// word at `first` and, if the comparison of the second word's old value passes, up to
/// `second_count` of its own; returns how many woke. The operation is done, as on Linux, even
/// when its comparison is unknown (`ENOSYS`).
pub fn wake_op(
    mm: &Mm,
    first: u64,
    second: u64,
    count: u32,
    second_count: u32,
    op: &WakeOp,
) -> Result<u32, Errno> {
    let id = mm.id();
    let mut chosen = Vec::new();
    let woken = loop {
        let (mut one, mut other) = lock_two(id, first, second);
        let old = match apply_nofault(second, op) {
            Ok(old) => old,
            Err(EFAULT) => {
                drop((one, other));
                fault_in_writable(second)?;
                continue;
            }
            Err(error) => return Err(error),
        };
        let passes = op.compare(old)?;
        let mut woken = take_waiters(&mut one, id, first, count, BITSET_MATCH_ANY, &mut chosen);
        if passes {
            let bucket = other.as_mut().unwrap_or(&mut one);
            woken += take_waiters(
                bucket,
                id,
                second,
                second_count,
                BITSET_MATCH_ANY,
                &mut chosen,
            );
        }
        break woken;
    };
    wake_all(chosen);
    Ok(woken)
}

/// The owner's thread id in a priority-inheritance futex word, and its two flags.
pub const PI_OWNER_MASK: u32 = 0x3fff_ffff;
pub const PI_OWNER_DIED: u32 = 0x4000_0000;
pub const PI_WAITERS: u32 = 0x8000_0000;

/// What one attempt at a priority-inheritance lock found.
pub enum PiAttempt {
    Taken,
    /// Another thread holds it; the word now reads this (waiters bit set).
    Held(u32),
}

/// Faults the page of the word at `addr` in for writing, or learns that it cannot be written.
fn fault_in_writable(addr: u64) -> Result<(), Errno> {
    uaccess::cmpxchg_user_u32(addr, 0, 0).map(drop)
}

/// One attempt of thread `tid` at the priority-inheritance lock at `addr`, as Linux's: EDEADLK
/// if it holds it; a free word (owner 0) becomes `tid` (keeping the owner-died bit, with the
/// waiters bit if others wait); a held one gets the waiters bit, and then ESRCH if `is_thread`
/// says its owner does not exist.
pub fn pi_try_lock(
    mm: &Mm,
    addr: u64,
    tid: u32,
    is_thread: impl Fn(u32) -> bool,
) -> Result<PiAttempt, Errno> {
    let id = mm.id();
    loop {
        let waiters = bucket(id, addr).lock();
        let Ok(value) = uaccess::read_user_nofault::<u32>(addr) else {
            drop(waiters);
            fault_in_writable(addr)?;
            continue;
        };
        let owner = value & PI_OWNER_MASK;
        if owner == tid {
            return Err(EDEADLK);
        }
        let new = if owner == 0 {
            let others = waiters.iter().any(|w| w.is_on(id, addr));
            (value & PI_OWNER_DIED) | tid | if others { PI_WAITERS } else { 0 }
        } else {
            value | PI_WAITERS
        };
        match uaccess::cmpxchg_user_u32_nofault(addr, value, new) {
            Ok(seen) if seen == value => {}
            Ok(_) => continue,
            Err(_) => {
                drop(waiters);
                fault_in_writable(addr)?;
                continue;
            }
        }
        drop(waiters);
        if owner == 0 {
            return Ok(PiAttempt::Taken);
        }
        if !is_thread(owner) {
            return Err(ESRCH);
        }
        return Ok(PiAttempt::Held(new));
    }
}

/// Thread `tid` gives back the priority-inheritance lock at `addr`: the word becomes 0 and one
/// waiter wakes to take it. EPERM if `tid` does not hold it; EAGAIN if the word changed under
/// the exchange (user space sorts that out, as on Linux).
pub fn pi_unlock(mm: &Mm, addr: u64, tid: u32) -> Result<(), Errno> {
    let id = mm.id();
    let mut chosen = Vec::new();
    loop {
        let mut waiters = bucket(id, addr).lock();
        let Ok(value) = uaccess::read_user_nofault::<u32>(addr) else {
            drop(waiters);
            fault_in_writable(addr)?;
            continue;
        };
        if value & PI_OWNER_MASK != tid {
            return Err(EPERM);
        }
        match uaccess::cmpxchg_user_u32_nofault(addr, value, 0) {
            Ok(seen) if seen == value => {}
            Ok(_) => return Err(EAGAIN),
            Err(_) => {
                drop(waiters);
                fault_in_writable(addr)?;
                continue;
            }
        }
        take_waiters(&mut waiters, id, addr, 1, BITSET_MATCH_ANY, &mut chosen);
        break;
    }
    wake_all(chosen);
    Ok(())
}

/// FUTEX_CMP_REQUEUE_PI, where no thread ever waits to be requeued (this kernel has no
/// FUTEX_WAIT_REQUEUE_PI): if the word at `from` holds `expected` (else EAGAIN) and the word
/// at `to` can be read, 0 moved; a plain waiter on `from` is EINVAL, as on Linux.
pub fn requeue_pi(mm: &Mm, from: u64, to: u64, expected: u32) -> Result<u32, Errno> {
    let id = mm.id();
    loop {
        let (source, target) = lock_two_expecting(id, from, to, Some(expected))?;
        if uaccess::read_user_nofault::<u32>(to).is_err() {
            drop((source, target));
            fault_in_writable(to)?;
            continue;
        }
        if source.iter().any(|w| w.is_on(id, from)) {
            return Err(EINVAL);
        }
        return Ok(0);
    }
}
