//! The `SYSCALL` entry and the way into user mode.
//!
//! `SYSCALL` does not switch stacks: the entry swaps GS to this CPU's data (`swapgs`), parks the
//! user RSP in per-CPU scratch, loads the running task's kernel stack top from per-CPU data
//! (written at every task switch), and builds a [`TrapFrame`] like an interrupt's, so a system
//! call, an exception and an interrupt from user mode all look alike to the rest of the kernel
//! (clone copies it, a kill abandons it). `SFMASK` clears IF, TF, DF and AC on entry.
//!
//! The way back is `SYSRET` when the frame allows it (a canonical user RIP, user selectors);
//! anything else — a frame the kernel changed to point elsewhere — leaves through `IRETQ`
//! (`trap_return`), which cannot be abused to fault in kernel mode with a user stack.

use core::arch::global_asm;

use x86_64::VirtAddr;
use x86_64::registers::model_specific::{Efer, EferFlags, KernelGsBase, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;

use super::gdt::{KERNEL_CODE, KERNEL_DATA, USER_CODE, USER_DATA};
use super::percpu::{KERNEL_STACK_TOP_OFFSET, USER_RSP_SCRATCH_OFFSET};
use super::trap::TrapFrame;

/// The `vector` a system call's frame carries (no real vector is this large).
pub const SYSCALL_MARKER: u64 = 0x100;

/// The first address above user space (Linux's `TASK_SIZE`): the last page below the
/// canonical hole stays unmapped, so no user mapping ends at the hole.
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;

// The entry builds the top of a `TrapFrame` as an interrupt would (SS, RSP, RFLAGS, CS, RIP,
// error code, vector) and joins the trap path, which saves the registers, dispatches (see
// `handle`) and leaves by SYSRET or IRETQ (trap.rs).
global_asm!(
    ".global syscall_entry",
    ".type syscall_entry, @function",
    "syscall_entry:",
    "swapgs",
    "mov gs:[{user_rsp}], rsp",
    "mov rsp, gs:[{kernel_rsp}]",
    "push {user_data}",
    "push qword ptr gs:[{user_rsp}]",
    "push r11",
    "push {user_code}",
    "push rcx",
    "push 0",
    "push {marker}",
    "jmp trap_save",
    ".size syscall_entry, . - syscall_entry",
    "",
    ".global enter_user_frame",
    ".type enter_user_frame, @function",
    "enter_user_frame:",
    "mov rsp, rdi",
    "jmp trap_return",
    ".size enter_user_frame, . - enter_user_frame",
    user_rsp = const USER_RSP_SCRATCH_OFFSET,
    kernel_rsp = const KERNEL_STACK_TOP_OFFSET,
    user_data = const USER_DATA as u64,
    user_code = const USER_CODE as u64,
    marker = const SYSCALL_MARKER,
);

unsafe extern "C" {
    fn syscall_entry();
    fn enter_user_frame(frame: *mut TrapFrame) -> !;
}

/// Programs this CPU's `SYSCALL` MSRs.
pub fn init_this_cpu() {
    // SAFETY: the selectors match the GDT's fixed order (gdt.rs asserts it), LSTAR points at the
    // entry above, and SFMASK makes the entry run with interrupts off and DF/AC clear.
    unsafe {
        Star::write(
            SegmentSelector(USER_CODE),
            SegmentSelector(USER_DATA),
            SegmentSelector(KERNEL_CODE),
            SegmentSelector(KERNEL_DATA),
        )
        .expect("the GDT order SYSCALL/SYSRET need");
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK,
        );
        Efer::update(|flags| flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        // The user's GS base while the kernel runs (swapgs exchanges the two).
        KernelGsBase::write(VirtAddr::zero());
    }
}

/// A system call's frame, from the trap dispatcher: runs the call with interrupts enabled, then
/// the work due before returning to user mode (signals included: a handler's frame, a restart).
/// Returns whether `SYSRET` may be used (else `IRETQ`).
pub fn handle(frame: &mut TrapFrame) -> u64 {
    x86_64::instructions::interrupts::enable();
    let number = frame.rax;
    crate::syscall::dispatch(frame);
    let restored = crate::syscall::restores_registers(number);
    crate::proc::signal::return_to_user(frame, (!restored).then_some(number));
    u64::from(
        !restored
            && frame.rip < USER_END
            && frame.cs == u64::from(USER_CODE)
            && frame.ss == u64::from(USER_DATA),
    )
}

/// A frame that enters user mode at `rip` with stack `rsp` and every other register zero.
pub fn user_frame(rip: u64, rsp: u64) -> TrapFrame {
    TrapFrame {
        rip,
        rsp,
        cs: u64::from(USER_CODE),
        ss: u64::from(USER_DATA),
        rflags: (RFlags::INTERRUPT_FLAG).bits() | 0x2,
        ..TrapFrame::default()
    }
}

/// Enters user mode with the registers in `frame`, on the running task's kernel stack.
/// Interrupts are disabled.
///
/// # Safety
/// `frame` is a user frame (user selectors, IF set) on the current task's stack, above
/// everything still in use.
pub unsafe fn enter_user(frame: *mut TrapFrame) -> ! {
    // SAFETY: forwarded. The `vector` slot tells `trap_return` the way out: 0 is IRETQ (a
    // cloned frame still carries the system call's marker).
    unsafe {
        (*frame).vector = 0;
        enter_user_frame(frame)
    }
}
