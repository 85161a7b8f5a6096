//! Non-local return for the kernel's recovery points: a test whose panic must not end the run,
//! and a test that expects a fault and wants control back after the handler's report.
//!
//! [`call_recoverable`] saves the callee-saved registers, stack pointer, return address and
//! RFLAGS in a [`JumpBuffer`] and calls a closure; [`jump_back`] (from a panic handler or a trap
//! handler running below that closure on the same stack) restores them, so `call_recoverable`
//! returns a second time with `Err`. Nothing between the two is unwound: values the abandoned
//! frames owned are leaked, and locks they held stay held (callers check for that).

use core::arch::global_asm;

/// What `jump_save_and_call` stores; the layout is shared with the assembly below.
#[repr(C)]
pub struct JumpBuffer {
    rbx: u64,
    rbp: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rsp: u64,
    rip: u64,
    rflags: u64,
}

impl JumpBuffer {
    pub const fn new() -> Self {
        Self {
            rbx: 0,
            rbp: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rsp: 0,
            rip: 0,
            rflags: 0,
        }
    }
}

global_asm!(
    ".global jump_save_and_call",
    ".type jump_save_and_call, @function",
    "jump_save_and_call:",
    "mov [rdi + 0], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    "lea rax, [rsp + 8]",
    "mov [rdi + 48], rax",
    "mov rax, [rsp]",
    "mov [rdi + 56], rax",
    "pushfq",
    "pop rax",
    "mov [rdi + 64], rax",
    // A frame of our own keeps the frame-pointer chain intact and the stack 16-byte aligned.
    "push rbp",
    "mov rbp, rsp",
    "mov rdi, rdx",
    "call rsi",
    "pop rbp",
    "xor eax, eax",
    "ret",
    ".size jump_save_and_call, . - jump_save_and_call",
    "",
    ".global jump_back",
    ".type jump_back, @function",
    "jump_back:",
    "mov rbx, [rdi + 0]",
    "mov rbp, [rdi + 8]",
    "mov r12, [rdi + 16]",
    "mov r13, [rdi + 24]",
    "mov r14, [rdi + 32]",
    "mov r15, [rdi + 40]",
    "mov rax, [rdi + 64]",
    "mov rsp, [rdi + 48]",
    "push rax",
    "popfq",
    "mov eax, 1",
    "jmp [rdi + 56]",
    ".size jump_back, . - jump_back",
);

unsafe extern "C" {
    fn jump_save_and_call(
        buffer: *mut JumpBuffer,
        function: extern "C" fn(*mut u8),
        argument: *mut u8,
    ) -> u64;
    fn jump_back(buffer: *const JumpBuffer) -> !;
}

/// Runs `f`; returns `Err(())` if [`resume_at`] was called on `buffer` while `f` was running.
///
/// # Safety
/// `buffer` must stay valid and unmoved until `f` returns or the jump lands, and nobody may
/// jump to it after this function has returned.
pub unsafe fn call_recoverable<F: FnOnce()>(buffer: *mut JumpBuffer, f: F) -> Result<(), ()> {
    extern "C" fn trampoline<F: FnOnce()>(argument: *mut u8) {
        // SAFETY: `argument` is the `Option<F>` below, alive until `jump_save_and_call` returns.
        let f = unsafe { (*argument.cast::<Option<F>>()).take() };
        if let Some(f) = f {
            f();
        }
    }
    let mut closure = Some(f);
    // SAFETY: the assembly follows the SysV ABI and returns either normally or through
    // `jump_back` with every callee-saved register restored; the caller keeps `buffer` alive.
    let jumped = unsafe { jump_save_and_call(buffer, trampoline::<F>, (&raw mut closure).cast()) };
    if jumped == 0 { Ok(()) } else { Err(()) }
}

/// Abandons everything since `call_recoverable(buffer, ..)` and makes it return `Err(())`.
///
/// # Safety
/// `buffer` must belong to a `call_recoverable` that is still running on this CPU's current
/// stack, below which the caller runs.
pub unsafe fn resume_at(buffer: *const JumpBuffer) -> ! {
    // SAFETY: the caller guarantees the saved stack frame is live and ours.
    unsafe { jump_back(buffer) }
}
