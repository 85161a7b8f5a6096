//! Backtraces by walking the frame-pointer chain (the kernel is built with frame pointers).
//!
//! Each frame is `[rbp] = caller's rbp, [rbp + 8] = return address`. The walk stops at a null or
//! misaligned frame pointer, at one outside the kernel half, and after a fixed depth; each load
//! goes through [`super::extable::probe_read_u64`], so a corrupt chain ends the trace instead of
//! faulting inside the panic path.

use core::fmt::{self, Write};

const MAX_FRAMES: usize = 32;
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// Writes `  #N 0xADDR <symbol+offset>` lines for the chain starting at `rbp`.
pub fn write(out: &mut impl Write, mut rbp: u64) -> fmt::Result {
    for depth in 0..MAX_FRAMES {
        if rbp < KERNEL_HALF || rbp % 8 != 0 {
            break;
        }
        let (Ok(caller_rbp), Ok(return_address)) = (
            super::extable::probe_read_u64(rbp),
            super::extable::probe_read_u64(rbp + 8),
        ) else {
            break;
        };
        if return_address == 0 {
            break;
        }
        write!(out, "  #{depth:<2} {return_address:#018x}")?;
        // The call instruction is just before the return address.
        if let Some((name, offset)) = super::symbols::lookup(return_address - 1) {
            write!(out, " <{name}+{:#x}>", offset + 1)?;
        }
        writeln!(out)?;
        rbp = caller_rbp;
    }
    Ok(())
}

/// This function's own frame pointer, for a backtrace of the caller's stack.
#[inline(always)]
pub fn current_frame_pointer() -> u64 {
    let rbp: u64;
    // SAFETY: reads a register; no memory access.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags))
    };
    rbp
}
