//! Kernel locking primitives. Sleeping locks (rwsem, mutex), wait queues and RCU join later.

pub mod spinlock;

pub use spinlock::IrqSpinLock;
