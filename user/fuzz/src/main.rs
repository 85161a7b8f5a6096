//! `fuzz calls SEED COUNT`: COUNT system calls with hostile arguments, one line each.
//! `fuzz model SEED OPERATIONS THREADS`: THREADS threads edit and fault the address space while
//! a shadow model checks every result and every page.
//! `fuzz session COUNT THREADS SEED...`: both, for every seed, each in a child, as the init of
//! a `cargo xtask fuzz` boot (session.rs).
//!
//! The same seed gives the same sequence on every kernel, so that `cargo xtask fuzz` can set
//! this kernel's answers beside Linux's.

#![no_std]
#![no_main]

extern crate alloc;

mod calls;
mod model;
mod rng;
mod session;

use urt::eprintln;

urt::main!(main);

const USAGE: &str = "usage: fuzz calls SEED COUNT | fuzz model SEED OPERATIONS THREADS \
                     | fuzz session COUNT THREADS SEED...";

fn main() -> i32 {
    let number = |i: usize| urt::start::arg_str(i).and_then(|s| s.parse::<u64>().ok());
    match (urt::start::arg_str(1), number(2), number(3)) {
        (Some("session"), Some(count), Some(threads)) => {
            let seeds: Option<alloc::vec::Vec<u64>> = (4..urt::start::argc()).map(number).collect();
            match seeds {
                Some(seeds) if !seeds.is_empty() => session::run(count, threads as usize, &seeds),
                _ => {
                    eprintln!("{USAGE}");
                    2
                }
            }
        }
        (Some("calls"), Some(seed), Some(count)) => calls::run(seed, count),
        (Some("model"), Some(seed), Some(operations)) => match number(4) {
            Some(threads) if threads > 0 => model::run(seed, operations, threads as usize),
            _ => {
                eprintln!("{USAGE}");
                2
            }
        },
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}
