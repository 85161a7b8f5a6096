//! (being written)

pub fn run(_seed: u64, _count: u64, _threads: usize) -> i32 {
    unimplemented!()
}
