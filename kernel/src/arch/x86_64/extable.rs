//! The exception table: instructions that are allowed to fault in kernel mode, each with the
//! address where execution continues instead (Linux's `__ex_table`).
//!
//! Entries live in the `kernel_extable` link section as pairs of 32-bit offsets relative to the
//! entry itself, so the table needs no relocation in a position-independent kernel. The linker
//! provides `__start_kernel_extable`/`__stop_kernel_extable`. On a fixup the handler moves RIP to
//! the continuation and sets RAX to `-EFAULT`; code that uses the table reads RAX to learn of it.
//! Users: the uaccess helpers (uaccess.rs) and [`probe_read_u64`].

use super::trap::TrapFrame;

/// The assembly lines, for an `asm!` template, of the table entry that lets the instruction
/// at local label `2` fault and continues at local label `3`.
macro_rules! fault_at_2_continue_at_3 {
    () => {
        ".pushsection kernel_extable, \"a\"\n.balign 4\n.long 2b - .\n.long 3b - .\n.popsection"
    };
}
pub(crate) use fault_at_2_continue_at_3;

/// `-EFAULT` as the fixed-up instruction sees it in RAX.
pub const EFAULT: i64 = -14;

#[repr(C)]
struct Entry {
    fault: i32,
    fixup: i32,
}

unsafe extern "C" {
    static __start_kernel_extable: [u8; 0];
    static __stop_kernel_extable: [u8; 0];
}

fn entries() -> &'static [Entry] {
    // SAFETY: the linker places every `kernel_extable` entry between these two symbols, and the
    // section is read-only after load.
    unsafe {
        let start = __start_kernel_extable.as_ptr().cast::<Entry>();
        let end = __stop_kernel_extable.as_ptr().cast::<Entry>();
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    }
}

fn resolve(field: &i32) -> u64 {
    (field as *const i32 as u64).wrapping_add(*field as i64 as u64)
}

/// Whether the instruction at `rip` may fault (it has a continuation).
pub fn has_fixup(rip: u64) -> bool {
    entries().iter().any(|entry| resolve(&entry.fault) == rip)
}

/// Redirects a kernel-mode fault at a listed instruction to its continuation.
pub fn fixup(frame: &mut TrapFrame) -> bool {
    match entries()
        .iter()
        .find(|entry| resolve(&entry.fault) == frame.rip)
    {
        Some(entry) => {
            frame.rip = resolve(&entry.fixup);
            frame.rax = EFAULT as u64;
            true
        }
        None => false,
    }
}

/// Reads a u64 at `addr`, which may be unmapped: `Err(EFAULT)` instead of a fatal fault.
/// (A probe for diagnostics and the extable's own test; uaccess will be built the same way.)
pub fn probe_read_u64(addr: u64) -> Result<u64, i64> {
    let value: u64;
    let status: i64;
    // SAFETY: the load either succeeds or faults at label 2, which the table entry redirects to
    // label 3 with RAX = -EFAULT; no memory is written and the stack is untouched.
    unsafe {
        core::arch::asm!(
            "xor eax, eax",
            "2: mov {value}, qword ptr [{addr}]",
            "3:",
            fault_at_2_continue_at_3!(),
            addr = in(reg) addr,
            value = out(reg) value,
            out("rax") status,
            options(nostack, readonly),
        );
    }
    if status == 0 { Ok(value) } else { Err(status) }
}
