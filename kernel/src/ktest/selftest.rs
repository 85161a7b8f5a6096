//! Deliberately broken tests that check the harness itself (`ktest.selftest=...`): `cargo xtask
//! test` boots them and expects the run to fail in the way each one should.

use super::TestCase;
use crate::boot_options::SelfTest;

static FAIL: TestCase = TestCase {
    name: "ktest::selftest::deliberate_failure",
    run: fail,
    timeout_ms: 0,
};
static TIMEOUT: TestCase = TestCase {
    name: "ktest::selftest::deliberate_timeout",
    run: spin,
    timeout_ms: 500,
};
static HANG: TestCase = TestCase {
    name: "ktest::selftest::deliberate_hang",
    run: hang,
    timeout_ms: 0,
};

static FAULT: TestCase = TestCase {
    name: "ktest::selftest::deliberate_fault",
    run: fault,
    timeout_ms: 0,
};

static LOCK_LEFT_HELD: TestCase = TestCase {
    name: "ktest::selftest::deliberate_lock_left_held",
    run: fail_holding_the_heap_lock,
    timeout_ms: 0,
};

pub fn case(which: SelfTest) -> &'static TestCase {
    match which {
        SelfTest::Fail => &FAIL,
        SelfTest::Timeout => &TIMEOUT,
        SelfTest::Hang => &HANG,
        SelfTest::Fault => &FAULT,
        SelfTest::LockLeftHeld => &LOCK_LEFT_HELD,
    }
}

fn fail() {
    let answer = 6 * 7;
    assert_eq!(
        answer, 43,
        "deliberate failure: the harness must report this message"
    );
}

/// Spins with interrupts enabled: the per-test timeout must stop it.
fn spin() {
    loop {
        core::hint::spin_loop();
    }
}

/// Spins with interrupts disabled: only the host's timeout can end this.
fn hang() {
    x86_64::instructions::interrupts::disable();
    loop {
        core::hint::spin_loop();
    }
}

/// Reads an unmapped address with no one expecting it: a fatal page fault.
fn fault() {
    // SAFETY: not safe at all, deliberately: the read faults and the kernel stops.
    let value = unsafe { core::ptr::read_volatile(0x10 as *const u64) };
    panic!("an unmapped read returned {value}");
}

/// Fails with the heap lock taken and never released: the runner must report the failure, then
/// stop the run, naming the lock, instead of letting the next test wait on it for ever.
fn fail_holding_the_heap_lock() {
    crate::mm::heap::hold_lock_forever();
    panic!("deliberate failure holding the heap lock");
}
