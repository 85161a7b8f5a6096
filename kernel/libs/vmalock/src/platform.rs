//! What the lock needs from the kernel: sleeping until a condition holds, waking sleepers, and
//! (optionally) delays injected at the protocol's race windows.

/// The kernel's side of the lock.
///
/// The kernel implements it with a static table of sleeping wait queues indexed by a hash of
/// the key; host tests spin and yield, or use a table of condition variables.
pub trait Platform {
    /// Sleeps until `cond()` returns true. Called by writers and detachers with the address
    /// space's `mmap_lock` held for writing, `key` being [`VmaLock::wait_key`].
    ///
    /// `cond` must be evaluated before the first sleep and again after every wake-up, spurious
    /// ones included (several VMAs may share a queue). No wake-up may be lost: a waiter must be
    /// registered on the queue before it evaluates `cond`, and [`Platform::wake_all`] must see
    /// every waiter registered before it runs — for example both take the queue's lock.
    ///
    /// [`VmaLock::wait_key`]: crate::VmaLock::wait_key
    fn wait_until(&self, key: usize, cond: impl FnMut() -> bool);

    /// Wakes every waiter sleeping on `key`'s queue. Called by a reader right after it dropped
    /// its reference, so it must use `key` as a number only: the VMA it came from may already
    /// belong to someone else.
    fn wake_all(&self, key: usize);

    /// An injection point for torture tests: the default does nothing and compiles away. A
    /// kernel torture mode can spin here to widen the race windows (Jann Horn reproduced the
    /// 2025 use-after-free with delays at these places).
    #[inline(always)]
    fn delay(&self, at: DelayPoint) {
        let _ = at;
    }
}

/// The race windows where [`Platform::delay`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayPoint {
    /// [`lock_vma_under_rcu`](crate::lock_vma_under_rcu): the tree lookup returned a VMA, not
    /// yet locked (it may be freed and reused now: seed case 1).
    AfterLookup,
    /// [`vma_start_read`](crate::vma_start_read): the early sequence check passed, the
    /// reference is not taken yet (seed case 2).
    AfterEarlyCheck,
    /// `vma_start_read`: the reference is taken, the identity and sequence not yet checked.
    AfterGetRef,
    /// `lock_vma_under_rcu`: read-locked, the range not yet checked (seed case 3).
    BeforeRangeCheck,
    /// A reader dropped its reference and has not yet woken the writer (the window of the July
    /// 2025 use-after-free).
    AfterPutRef,
    /// A writer or detacher has set the exclude-readers bit and is about to wait.
    WhileExcluding,
}
