//! The crate's synchronisation primitives, from the shared shim (kernel/libs/ksync): `core` and
//! `spin` types normally, loom's under `--cfg loom`, so that the models in `tests/loom.rs`
//! explore every interleaving of the real algorithm.

pub(crate) use ksync::{
    AtomicU32, AtomicU64, Mutex, Ordering, compiler_fence, const_unless_loom, fence,
};
