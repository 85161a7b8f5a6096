//! Random bytes for user programs (`getrandom`, `AT_RANDOM`): RDRAND where the CPU has it,
//! otherwise a xorshift generator seeded from the TSC. Not for cryptography.

use core::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0);

fn has_rdrand() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0
}

fn next() -> u64 {
    if has_rdrand() {
        for _ in 0..10 {
            let mut value = 0u64;
            // SAFETY: the CPU has RDRAND (checked above); it writes `value` and reports success.
            if unsafe { core::arch::x86_64::_rdrand64_step(&mut value) } == 1 {
                return value;
            }
        }
    }
    // xorshift64*, seeded and stirred with the TSC.
    let mut state = STATE.load(Ordering::Relaxed) ^ crate::arch::tsc::read();
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    STATE.store(state, Ordering::Relaxed);
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Fills `buffer` with random bytes.
pub fn fill(buffer: &mut [u8]) {
    for chunk in buffer.chunks_mut(8) {
        let bytes = next().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// A cheap, non-cryptographic number that changes at every call (TSC-based): for choosing
/// where to inject delays and retries in tests.
#[cfg(feature = "ktest")]
pub fn tick() -> u64 {
    let t = crate::arch::tsc::read();
    (t ^ (t >> 7)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32
}
