//! The crate's atomics, from the shared shim (kernel/libs/ksync): `core`'s normally, loom's
//! under `--cfg loom`, so that the models in `tests/loom.rs` explore the real code.

pub(crate) use ksync::{AtomicU32, AtomicU64, Ordering, const_unless_loom};
