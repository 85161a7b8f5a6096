//! A sleeping mutex for process context: a waiter sleeps instead of spinning, so it may be held
//! across anything that sleeps (allocation, user memory access, other sleeping locks), but
//! never inside an RCU read-side section or an interrupt handler.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

use super::waitqueue::{WaitQueue, WaitResult};

pub struct Mutex<T> {
    locked: AtomicBool,
    waiters: WaitQueue,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and `locked` admits one guard at a time.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the value.
unsafe impl<T: Send> Send for Mutex<T> {}

pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            waiters: WaitQueue::new(),
            value: UnsafeCell::new(value),
        }
    }

    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| MutexGuard { mutex: self })
    }

    #[track_caller]
    #[cfg(feature = "ktest")]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if let Some(guard) = self.try_lock() {
            return guard;
        }
        crate::sync::rcu::might_sleep();
        self.waiters.wait_until(|| {
            self.locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        MutexGuard { mutex: self }
    }

    /// [`Mutex::lock`], unless the task is killed while it waits: then `None` (it leaves
    /// without the lock; a wake-up it was given passes on to the next waiter, since the lock
    /// is held by someone who will wake one on release, or it takes the lock after all).
    #[track_caller]
    pub fn lock_killable(&self) -> Option<MutexGuard<'_, T>> {
        if let Some(guard) = self.try_lock() {
            return Some(guard);
        }
        crate::sync::rcu::might_sleep();
        let result = self.waiters.wait_killable(|| {
            self.locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        (result == WaitResult::Ready).then_some(MutexGuard { mutex: self })
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the one holder of the lock.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard is the one holder of the lock.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.locked.store(false, Ordering::Release);
        self.mutex.waiters.wake_one();
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::sync::Arc;
    use core::sync::atomic::Ordering;

    use super::Mutex;
    use crate::ktest;
    use crate::sync::Completion;

    ktest! {
        /// A task killed while it waits for a mutex leaves without it; the holder's release
        /// then still reaches the next waiter.
        fn a_killed_waiter_leaves_lock_killable_without_the_lock() {
            let lock = Arc::new(Mutex::new(()));
            let held = lock.lock();
            let gave_up = Arc::new(Completion::new());
            let (l, g) = (lock.clone(), gave_up.clone());
            let killed = crate::sched::spawn_kernel("mutex-killed", move || {
                assert!(l.lock_killable().is_none(), "a killed waiter took the lock");
                g.complete();
            })
            .expect("memory for a test thread");
            let got_it = Arc::new(Completion::new());
            let (l, g) = (lock.clone(), got_it.clone());
            crate::sched::spawn_kernel("mutex-next", move || {
                let _guard = l.lock_killable().expect("not killed");
                g.complete();
            })
            .expect("memory for a test thread");
            // Both wait now (or soon: a kill before the wait is seen at its first check).
            crate::sched::timer::sleep_ns(20_000_000).expect("not killed");
            killed.killed.store(true, Ordering::Release);
            crate::sched::wake(&killed);
            assert!(gave_up.wait_timeout(10_000_000_000), "the killed waiter kept waiting");
            drop(held);
            assert!(got_it.wait_timeout(10_000_000_000), "the next waiter was never woken");
        }
    }
}
