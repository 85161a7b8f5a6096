//! The crate's synchronisation primitives, from the shared shim (kernel/libs/ksync): `core` and
//! `spin` types normally, loom's under `--cfg loom`, so that the models in `tests/loom.rs`
//! explore the interleavings of the real allocator (loom's cell also checks that the per-CPU
//! try-lock really gives exclusive access to a magazine).

pub(crate) use ksync::{
    AtomicBool, AtomicPtr, AtomicUsize, Mutex, Ordering, UnsafeCell, const_unless_loom, spin_loop,
};
