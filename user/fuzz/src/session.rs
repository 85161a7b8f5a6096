//! `fuzz session COUNT THREADS SEED...`: the whole of a `cargo xtask fuzz` boot, run as init.
//! For each seed, a child runs `calls SEED COUNT`, then (with THREADS > 0) another runs
//! `model SEED COUNT THREADS`; each child's end is reported on a line of its own
//! (`fuzz: calls seed S: exit N` or `fuzz: calls seed S: signal N`), and the session ends with
//! `fuzz: session done` and powers the machine off (when it is process 1).
//!
//! Children, not the session itself, run the calls: whatever a call does to its process (its
//! group, its session, its mappings, its limits) stays in that child.

use urt::{println, sys};

use crate::{calls, model};

pub fn run(count: u64, threads: usize, seeds: &[u64]) -> i32 {
    let mut failures = 0;
    for &seed in seeds {
        failures += u32::from(!in_child("calls", seed, || calls::run(seed, count)));
        if threads > 0 {
            failures += u32::from(!in_child("model", seed, || {
                model::run(seed, count, threads)
            }));
        }
    }
    println!("fuzz: session done, {failures} failed");
    urt::ktap::power_off();
    i32::from(failures > 0)
}

/// Runs `body` in a child and reports how the child ended; true if it exited with 0.
fn in_child(mode: &str, seed: u64, body: impl FnOnce() -> i32) -> bool {
    let child = match sys::fork() {
        Ok(0) => sys::exit_group(body()),
        Ok(child) => child,
        Err(e) => {
            println!("fuzz: {mode} seed {seed}: fork failed: {e}");
            return false;
        }
    };
    let mut status = 0u32;
    loop {
        match sys::wait4(child, &raw mut status as usize, 0, 0) {
            Ok(_) => break,
            Err(sys::Errno::EINTR) => continue,
            Err(e) => {
                println!("fuzz: {mode} seed {seed}: wait4 failed: {e}");
                return false;
            }
        }
    }
    let signal = status & 0x7f;
    if signal == 0 {
        let code = (status >> 8) & 0xff;
        println!("fuzz: {mode} seed {seed}: exit {code}");
        code == 0
    } else {
        println!("fuzz: {mode} seed {seed}: signal {signal}");
        false
    }
}
