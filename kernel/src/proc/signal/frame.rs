//! The signal frame of Linux's x86_64 ABI, built on the user stack when a handler is entered
//! and read back by `rt_sigreturn`.
//!
//! From the frame's base up (`struct rt_sigframe`, 440 bytes, placed so that RSP + 8 is a
//! multiple of 16 at the handler's first instruction, as after a `call`):
//!
//! | offset | what |
//! |---|---|
//! | 0 | the return address: `sa_restorer`, which calls `rt_sigreturn` |
//! | 8 | `ucontext`: `uc_flags`, `uc_link`, `uc_stack` (`stack_t`), `uc_mcontext` (`struct sigcontext`, 256 bytes: r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, the FPU state's address, 8 reserved words), `uc_sigmask` |
//! | 312 | `siginfo_t` (128 bytes) |
//!
//! The FPU state, the 512-byte FXSAVE image (this kernel does not use XSAVE, so its software
//! area carries no extended-state magic and libcs read it as plain FXSAVE), lies above the
//! frame, 64-byte aligned, below the interrupted stack's 128-byte red zone. The handler starts
//! with RDI = the signal, RSI = &siginfo, RDX = &ucontext, RAX = 0 and a clean FPU state.

use super::delivery::Delivery;
use super::{AltStack, SA_ONSTACK, SA_RESTORER};
use crate::arch::context::FpuState;
use crate::arch::gdt::{USER_CODE, USER_DATA};
use crate::arch::syscall::USER_END;
use crate::arch::trap::TrapFrame;
use crate::arch::uaccess::{copy_from_user, copy_to_user};
use crate::syscall::errno::{EFAULT, Errno};

const FRAME_SIZE: usize = 440;
/// `ucontext` within the frame.
const UCONTEXT: usize = 8;
/// Within `ucontext`: `uc_stack`, `uc_mcontext`, `uc_sigmask`, and its size.
const UC_STACK: usize = 16;
const UC_MCONTEXT: usize = 40;
const UC_SIGMASK: usize = 296;
const UCONTEXT_SIZE: usize = 304;
/// `siginfo_t` within the frame.
const SIGINFO: usize = UCONTEXT + UCONTEXT_SIZE;
/// Within `sigcontext`, after the 17 general registers: the other fields.
const SC_EFLAGS: usize = 136;
const SC_SEGMENTS: usize = 144;
const SC_ERR: usize = 152;
const SC_TRAPNO: usize = 160;
const SC_OLDMASK: usize = 168;
const SC_CR2: usize = 176;
const SC_FPSTATE: usize = 184;
/// `uc_flags`: the sigcontext's SS is meaningful and is restored as it is.
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
/// Below the interrupted RSP, the 128 bytes the System V ABI lets a function use unannounced.
const RED_ZONE: u64 = 128;
const FPSTATE_SIZE: u64 = 512;
/// Bytes 464.. of the FXSAVE image: left to software (XSAVE's magic words would be there).
const FXSAVE_SOFTWARE_AREA: usize = 464;

/// RFLAGS bits.
const CF: u64 = 1;
const PF: u64 = 1 << 2;
const AF: u64 = 1 << 4;
const ZF: u64 = 1 << 6;
const SF: u64 = 1 << 7;
const TF: u64 = 1 << 8;
const DF: u64 = 1 << 10;
const OF: u64 = 1 << 11;
const RF: u64 = 1 << 16;
const AC: u64 = 1 << 18;
/// RFLAGS bits a frame may change (Linux's `FIX_EFLAGS`): interrupts stay enabled and the I/O
/// privilege level stays 0.
const USER_FLAGS: u64 = AC | OF | DF | TF | SF | ZF | AF | PF | CF | RF;
/// RFLAGS bits a handler starts without: DF (the ABI wants it clear), RF, TF, AC.
const HANDLER_CLEARS: u64 = DF | RF | TF | AC;

fn put(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn get(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// The general registers in `sigcontext` order.
fn registers(frame: &TrapFrame) -> [u64; 17] {
    [
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
        frame.rdi, frame.rsi, frame.rbp, frame.rbx, frame.rdx, frame.rax, frame.rcx, frame.rsp,
        frame.rip,
    ]
}

fn set_registers(frame: &mut TrapFrame, registers: [u64; 17]) {
    [
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
        frame.rdi, frame.rsi, frame.rbp, frame.rbx, frame.rdx, frame.rax, frame.rcx, frame.rsp,
        frame.rip,
    ] = registers;
}

/// Builds the frame of `delivery` on the user stack (or its alternate stack) and points the
/// registers at the handler. `Err` when the frame cannot be written (a bad or full stack), the
/// handler lies outside user space, or the action has no restorer (`SA_RESTORER`: on x86_64
/// the handler has nowhere else to return to, as on Linux): the thread cannot take the signal.
pub(super) fn setup(frame: &mut TrapFrame, delivery: &Delivery) -> Result<(), Errno> {
    let handler = delivery.action.handler;
    if handler >= USER_END || delivery.action.flags & SA_RESTORER == 0 {
        return Err(EFAULT);
    }
    let alt: AltStack = delivery.alt_stack;
    let nested = alt.is_on(frame.rsp);
    let mut sp = frame.rsp.wrapping_sub(RED_ZONE);
    let mut entering = false;
    if delivery.action.flags & SA_ONSTACK != 0 && alt.size != 0 && !alt.is_on(sp) {
        sp = alt.base.wrapping_add(alt.size);
        entering = true;
    }
    let fpstate = sp.wrapping_sub(FPSTATE_SIZE) & !63;
    let base = (fpstate.wrapping_sub(FRAME_SIZE as u64).wrapping_add(8) & !15).wrapping_sub(8);
    // A frame must not leave the alternate stack it is on (it would overflow into whatever lies
    // below).
    if (nested || entering) && !alt.contains(base) {
        return Err(EFAULT);
    }

    let mut fpu = *FpuState::capture().image();
    fpu[FXSAVE_SOFTWARE_AREA..].fill(0);
    copy_to_user(fpstate, &fpu)?;

    let mut bytes = [0u8; FRAME_SIZE];
    put(&mut bytes, 0, delivery.action.restorer);
    let uc = UCONTEXT;
    put(&mut bytes, uc, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS);
    let [ss_sp, ss_flags, ss_size] = alt.to_user(alt.flags);
    put(&mut bytes, uc + UC_STACK, ss_sp);
    put(&mut bytes, uc + UC_STACK + 8, ss_flags);
    put(&mut bytes, uc + UC_STACK + 16, ss_size);
    let mc = uc + UC_MCONTEXT;
    for (i, value) in registers(frame).into_iter().enumerate() {
        put(&mut bytes, mc + i * 8, value);
    }
    put(&mut bytes, mc + SC_EFLAGS, frame.rflags);
    // cs, gs, fs, ss: 16 bits each.
    put(
        &mut bytes,
        mc + SC_SEGMENTS,
        (frame.cs & 0xffff) | (frame.ss & 0xffff) << 48,
    );
    let [trapno, err, cr2] = delivery.fault;
    put(&mut bytes, mc + SC_ERR, err);
    put(&mut bytes, mc + SC_TRAPNO, trapno);
    put(&mut bytes, mc + SC_OLDMASK, delivery.saved_mask);
    put(&mut bytes, mc + SC_CR2, cr2);
    put(&mut bytes, mc + SC_FPSTATE, fpstate);
    put(&mut bytes, uc + UC_SIGMASK, delivery.saved_mask);
    for (i, word) in delivery.info.to_user().into_iter().enumerate() {
        put(&mut bytes, SIGINFO + i * 8, word);
    }
    copy_to_user(base, &bytes)?;

    frame.rdi = u64::from(delivery.signo);
    frame.rsi = base + SIGINFO as u64;
    frame.rdx = base + UCONTEXT as u64;
    frame.rax = 0;
    frame.rip = handler;
    frame.rsp = base;
    frame.cs = u64::from(USER_CODE);
    frame.ss = u64::from(USER_DATA);
    frame.rflags &= !HANDLER_CLEARS;
    FpuState::initial().restore();
    Ok(())
}

/// What `rt_sigreturn` hands back besides the registers: the mask and the alternate stack
/// (`stack_t`) to restore.
pub(super) struct Restored {
    pub mask: u64,
    pub alt_stack: [u64; 3],
}

/// Reads the `ucontext` at the user RSP (the handler's `ret` popped the return address) and
/// restores the registers and the FPU state from it. Segment selectors are the user ones
/// whatever the frame says, only the user-changeable RFLAGS bits are taken, and a RIP outside
/// user space is refused (`Err`), as is a frame that cannot be read; then nothing changed.
pub(super) fn restore(frame: &mut TrapFrame) -> Result<Restored, Errno> {
    let mut uc = [0u8; UCONTEXT_SIZE];
    copy_from_user(&mut uc, frame.rsp)?;
    let mc = UC_MCONTEXT;
    let registers: [u64; 17] = core::array::from_fn(|i| get(&uc, mc + i * 8));
    if registers[16] >= USER_END {
        return Err(EFAULT);
    }
    let fpstate = get(&uc, mc + SC_FPSTATE);
    let fpu = if fpstate == 0 {
        FpuState::initial()
    } else {
        // FXRSTOR needs 16-byte alignment: a frame whose state could not be loaded on Linux is
        // refused here too.
        if fpstate % 16 != 0 {
            return Err(EFAULT);
        }
        let mut image = [0u8; FPSTATE_SIZE as usize];
        copy_from_user(&mut image, fpstate)?;
        FpuState::from_image(&image)
    };
    let rflags = get(&uc, mc + SC_EFLAGS);
    set_registers(frame, registers);
    frame.rflags = (frame.rflags & !USER_FLAGS) | (rflags & USER_FLAGS);
    frame.cs = u64::from(USER_CODE);
    frame.ss = u64::from(USER_DATA);
    fpu.restore();
    Ok(Restored {
        mask: get(&uc, UC_SIGMASK),
        alt_stack: [
            get(&uc, UC_STACK),
            get(&uc, UC_STACK + 8) & 0xffff_ffff,
            get(&uc, UC_STACK + 16),
        ],
    })
}
