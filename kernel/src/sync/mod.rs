//! Kernel synchronisation: spinlocks, RCU, and the sleeping primitives built on the scheduler
//! (wait queues, completions, a mutex, the reader-writer semaphore used as `mmap_lock`).

pub mod completion;
pub mod mutex;
pub mod percpu_counter;
pub mod rcu;
pub mod rwsem;
pub mod spinlock;
pub mod waitqueue;

pub use completion::Completion;
pub use mutex::Mutex;
pub use percpu_counter::PerCpuCounter;
pub use rwsem::RwSem;
pub use spinlock::IrqSpinLock;
pub use waitqueue::WaitQueue;
