//! Futexes: sleeping on a 32-bit word of user memory until another thread wakes that word.
//!
//! Waiters sit in a table of hashed buckets, keyed by (address space, user address): Linux's
//! private key. For threads of one process, Linux's shared key names the same word; processes
//! that share memory (`MAP_SHARED` across fork) cannot meet on a futex there yet (Linux keys
//! those by the page). A bucket holds memory only while someone waits in it.
//!
//! No lost wake-ups: a waiter marks itself asleep, then takes the bucket lock, reads the word
//! and joins the bucket in one critical section; a waker takes the same lock to find waiters.
//! The word is read with page faults disabled under that spinlock; if the page is missing the
//! waiter drops the lock, faults it in with an ordinary read, and starts over.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::uaccess;
use crate::mm::addrspace::Mm;
use crate::sched::{self, Task, timer};
use crate::sync::IrqSpinLock;
use crate::syscall::errno::{EAGAIN, EINTR, ETIMEDOUT, Errno};
use crate::time::now_ns;

struct Waiter {
    mm: usize,
    addr: u64,
    task: Arc<Task>,
    woken: Arc<AtomicBool>,
}

const BUCKETS: usize = 64;

static TABLE: [IrqSpinLock<Vec<Waiter>>; BUCKETS] =
    [const { IrqSpinLock::new(Vec::new()) }; BUCKETS];

fn bucket(mm: usize, addr: u64) -> &'static IrqSpinLock<Vec<Waiter>> {
    let hash = (addr >> 2)
        .wrapping_add(mm as u64 >> 6)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    &TABLE[(hash >> 58) as usize % BUCKETS]
}

/// Sleeps while the word at `addr` holds `expected`, until woken, `deadline` (ns since boot)
/// or a signal (`EINTR`: the caller decides whether the call restarts). `EAGAIN` if the word
/// differs, `EFAULT` for a bad address.
pub fn wait(mm: &Mm, addr: u64, expected: u32, deadline: Option<u64>) -> Result<(), Errno> {
    if addr % 4 != 0 {
        return Err(crate::syscall::errno::EINVAL);
    }
    let me = sched::current_arc();
    let woken = Arc::new(AtomicBool::new(false));
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
                    task: me.clone(),
                    woken: woken.clone(),
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
        if woken.load(Ordering::Acquire) {
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
    if result.is_err() {
        let removed = {
            let mut waiters = bucket.lock();
            let index = waiters.iter().position(|w| Arc::ptr_eq(&w.woken, &woken));
            let removed = index.map(|i| waiters.swap_remove(i));
            release_if_empty(&mut waiters);
            removed
        };
        // Woken after all, between the checks and the removal: that wake-up counts.
        if removed.is_none() {
            return Ok(());
        }
    }
    result
}

/// Gives an empty bucket's memory back: a bucket holds memory only while threads wait in it,
/// so the table does not keep what the busiest moment of some earlier process needed.
fn release_if_empty(waiters: &mut Vec<Waiter>) {
    if waiters.is_empty() {
        *waiters = Vec::new();
    }
}

/// Wakes up to `count` waiters on the word at `addr`; returns how many.
pub fn wake(mm: &Mm, addr: u64, count: u32) -> u32 {
    let bucket = bucket(mm.id(), addr);
    let mut chosen = Vec::new();
    {
        let mut waiters = bucket.lock();
        let mut index = 0;
        while index < waiters.len() && (chosen.len() as u32) < count {
            if waiters[index].mm == mm.id() && waiters[index].addr == addr {
                chosen.push(waiters.remove(index));
            } else {
                index += 1;
            }
        }
        release_if_empty(&mut waiters);
    }
    for waiter in &chosen {
        waiter.woken.store(true, Ordering::Release);
        sched::wake(&waiter.task);
    }
    chosen.len() as u32
}
