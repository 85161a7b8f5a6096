//! (being written)

pub fn run(_seed: u64, _count: u64) -> i32 {
    unimplemented!()
}
