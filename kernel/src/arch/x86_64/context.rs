//! Switching between tasks' kernel stacks, and the first steps of a new task.
//!
//! A task that is not running is described by one word, its saved stack pointer: the switch
//! pushes the callee-saved registers on the old stack, stores RSP, loads the new task's RSP and
//! pops its registers. Everything else (the scheduler's bookkeeping, CR3, the TSS) is the
//! scheduler's business, done with interrupts disabled around [`switch`].

use core::arch::global_asm;

// `context_switch(save: *mut u64 /* rdi */, next: u64 /* rsi */)`.
// `task_trampoline`: where a new task's first switch "returns" to: R12 holds the entry function,
// R13 its argument (see `prepare_stack`).
global_asm!(
    ".global context_switch",
    ".type context_switch, @function",
    "context_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".size context_switch, . - context_switch",
    "",
    ".global task_trampoline",
    ".type task_trampoline, @function",
    "task_trampoline:",
    "xor ebp, ebp",
    "mov rdi, r13",
    "call r12",
    "ud2",
    ".size task_trampoline, . - task_trampoline",
);

unsafe extern "C" {
    fn context_switch(save: *mut u64, next: u64);
    fn task_trampoline();
}

/// Saves the running context's stack pointer in `*save` and continues the context saved as
/// `next`. Returns when some CPU switches back to the saved context.
///
/// # Safety
/// Interrupts are disabled; `next` was saved by `switch` or built by [`prepare_stack`] and is
/// not running anywhere; `save` stays valid until the context is resumed.
pub unsafe fn switch(save: *mut u64, next: u64) {
    // SAFETY: forwarded from the caller; the assembly saves and restores every callee-saved
    // register, so to Rust this is an ordinary call.
    unsafe { context_switch(save, next) }
}

/// Builds the first context of a task on the empty stack whose top is `top`: when switched
/// to, it calls `entry(argument)` with a 16-byte aligned stack; `entry` must never return.
/// Returns the stack pointer to switch to.
///
/// # Safety
/// `top` is the 16-byte aligned top of a mapped stack that nothing uses.
pub unsafe fn prepare_stack(top: u64, entry: extern "C" fn(usize) -> !, argument: usize) -> u64 {
    // After the six pops and `ret`, RSP = top - 16: aligned, as a `call` needs.
    let frame = [
        0,                                   // r15
        0,                                   // r14
        argument as u64,                     // r13
        entry as *const () as u64,           // r12
        0,                                   // rbx
        0,                                   // rbp
        task_trampoline as *const () as u64, // return address
    ];
    let start = top - 16 - (frame.len() * 8) as u64;
    // SAFETY: the caller gives us the stack; the frame lies inside it.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), start as *mut u64, frame.len()) };
    start
}

/// A user thread's x87/SSE registers while it does not run (the FXSAVE image), or as a signal
/// frame carries them.
#[repr(C, align(16))]
pub struct FpuState([u8; 512]);

/// Where the FXSAVE image keeps MXCSR and the mask of the MXCSR bits the CPU supports.
const MXCSR: usize = 24;
const MXCSR_MASK: usize = 28;
/// The supported MXCSR bits when the CPU reports a mask of 0 (all but DAZ).
const DEFAULT_MXCSR_MASK: u32 = 0xffbf;

impl FpuState {
    /// The state a new thread starts with (as after `FNINIT`, MXCSR at its reset value):
    /// x87 control word 0x37f, all exceptions masked.
    pub fn initial() -> Self {
        let mut area = [0u8; 512];
        area[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        area[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        Self(area)
    }

    /// This CPU's x87/SSE registers now: the running user thread's while it is in the kernel
    /// (the kernel itself uses none).
    pub fn capture() -> Self {
        let mut state = Self([0; 512]);
        state.save();
        state
    }

    /// The FXSAVE image.
    pub fn image(&self) -> &[u8; 512] {
        &self.0
    }

    /// An image user code handed in (a signal frame's): MXCSR bits this CPU does not support
    /// are cleared, since FXRSTOR refuses them with #GP.
    pub fn from_image(image: &[u8; 512]) -> Self {
        let live = Self::capture();
        let word = |bytes: &[u8; 512], at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let supported = match word(&live.0, MXCSR_MASK) {
            0 => DEFAULT_MXCSR_MASK,
            mask => mask,
        };
        let mut state = Self(*image);
        let mxcsr = word(image, MXCSR) & supported;
        state.0[MXCSR..MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
        state
    }

    /// Saves this CPU's x87/SSE registers here.
    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned, as FXSAVE needs; CR4.OSFXSR is set on
        // every CPU (cpu_features).
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) };
    }

    /// Loads this CPU's x87/SSE registers from here.
    pub fn restore(&self) {
        // SAFETY: as for `save`; the image came from FXSAVE, `initial` or `from_image` (a valid
        // MXCSR in each case).
        unsafe {
            core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, readonly))
        };
    }
}
