//! Hardware glue. Only x86_64 exists; the indirection keeps `arch::` paths stable.

pub mod x86_64;

pub use self::x86_64::*;
