//! Kernel synchronisation: spinlocks and RCU. Sleeping locks (rwsem, mutex) and wait queues
//! join with the scheduler.

pub mod rcu;
pub mod spinlock;

pub use spinlock::IrqSpinLock;
