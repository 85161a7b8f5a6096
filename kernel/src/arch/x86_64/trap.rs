//! Interrupts and exceptions: the IDT, the assembly entry stubs, and the dispatcher.
//!
//! Every vector enters through a 16-byte stub that pushes a uniform [`TrapFrame`] and calls
//! [`trap_dispatch`]. A page fault, from either mode, becomes a [`PageFault`] record for mm's
//! one fault entry, which decides what happens to it. Other exceptions from user mode become
//! signals (`proc::signal`), as do page faults that are not demand faults. Exceptions in kernel mode are offered, in order, to the exception table
//! (fixups for instructions allowed to fault, see [`super::extable`]) and, in test images, to a
//! test's expect-fault hook (`expect_fault`); anything unclaimed is fatal and prints a report.
//!
//! The IDT is written once at boot and then only read by the CPU.

use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
#[cfg(feature = "ktest")]
use core::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};

use super::fmtbuf::FmtBuffer;
use super::gdt;
#[cfg(feature = "ktest")]
use super::jump::{self, JumpBuffer};
use crate::mm::fault::{Access, FaultAction, FaultMode, PageFault};

pub const VECTOR_DIVIDE: u8 = 0;
const VECTOR_NMI: u8 = 2;
pub const VECTOR_INVALID_OPCODE: u8 = 6;
pub const VECTOR_BREAKPOINT: u8 = 3;
const VECTOR_DOUBLE_FAULT: u8 = 8;
const VECTOR_GENERAL_PROTECTION: u8 = 13;
pub const VECTOR_PAGE_FAULT: u8 = 14;
const VECTOR_MACHINE_CHECK: u8 = 18;

/// Registers as the entry stubs leave them on the stack, lowest address first.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    pub fn is_user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

// The stubs: one per vector, 16 bytes apart, so the IDT can compute their addresses. Vectors
// where the CPU pushes an error code skip the dummy push. `trap_common` swaps GS to the
// kernel's when the trap came from user mode; `trap_save` (where the SYSCALL entry joins, see
// syscall.rs) saves the general registers, calls the dispatcher with the frame, and restores
// everything the dispatcher may have changed (a fixup moves RIP and sets RAX; a system call's
// result, a new thread's registers). The dispatcher's return value, kept in the frame's
// `vector` slot (no longer needed), picks the way out: IRETQ (0), or SYSRET for a system call
// whose frame allows it. `trap_return` is also how a task first enters user mode.
global_asm!(
    ".p2align 4",
    ".global trap_stubs",
    ".type trap_stubs, @function",
    "trap_stubs:",
    ".set vector, 0",
    ".rept 256",
    ".p2align 4",
    ".if vector == 8 || vector == 10 || vector == 11 || vector == 12 || vector == 13 || vector == 14 || vector == 17 || vector == 21 || vector == 29 || vector == 30",
    ".else",
    "push 0",
    ".endif",
    "push vector",
    "jmp trap_common",
    ".set vector, vector + 1",
    ".endr",
    ".size trap_stubs, . - trap_stubs",
    "",
    ".type trap_common, @function",
    "trap_common:",
    "cld",
    // [rsp] vector, [rsp+8] error code, [rsp+16] RIP, [rsp+24] CS.
    "test qword ptr [rsp + 24], 3",
    "jz 2f",
    "swapgs",
    "2:",
    ".global trap_save",
    "trap_save:",
    "push rax",
    "push rbx",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push rbp",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov rdi, rsp",
    "call {dispatch}",
    "mov [rsp + 15 * 8], rax",
    ".global trap_return",
    "trap_return:",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbx",
    "pop rax",
    "cmp qword ptr [rsp], 0",
    "jne 4f",
    "add rsp, 16",
    // [rsp] RIP, [rsp+8] CS: back to user mode swaps GS back (interrupts are disabled).
    "test qword ptr [rsp + 8], 3",
    "jz 3f",
    "swapgs",
    "3:",
    "iretq",
    // SYSRET: vector and error code off; RIP into RCX, RFLAGS into R11, then the user RSP.
    "4:",
    "add rsp, 16",
    "pop rcx",
    "add rsp, 8",
    "pop r11",
    "pop rsp",
    "swapgs",
    "sysretq",
    ".size trap_common, . - trap_common",
    dispatch = sym trap_dispatch,
);

unsafe extern "C" {
    static trap_stubs: [u8; 256 * 16];
}

const STUB_SIZE: u64 = 16;

/// Breakpoints (`int3`) handled since boot (counted for the tests, in test images).
#[cfg(feature = "ktest")]
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "ktest")]
fn breakpoints_handled() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}

/// An interrupt gate as the CPU reads it.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

struct IdtCell(UnsafeCell<Idt>);

// SAFETY: the IDT is written only by `init`, on the bootstrap CPU before interrupts are enabled
// and before any other CPU runs; afterwards it is only read (by the CPUs themselves).
unsafe impl Sync for IdtCell {}

static IDT: IdtCell = IdtCell(UnsafeCell::new(Idt([Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attr: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; 256])));

/// Present, DPL 0, 64-bit interrupt gate (interrupts stay disabled on entry).
const INTERRUPT_GATE: u8 = 0x8e;
/// The same with DPL 3: user code may raise it with `int N` (`int3`, as on Linux).
const USER_INTERRUPT_GATE: u8 = 0xee;

/// Fills the IDT with the stubs and loads it.
pub fn init() {
    use x86_64::instructions::segmentation::{CS, Segment};
    let selector = CS::get_reg().0;
    // SAFETY: `trap_stubs` is the stub block above; we only take its address.
    let base = unsafe { trap_stubs.as_ptr() } as u64;
    // SAFETY: see `IdtCell`: this runs once, before interrupts are enabled.
    let idt = unsafe { &mut *IDT.0.get() };
    for (vector, gate) in idt.0.iter_mut().enumerate() {
        let handler = base + vector as u64 * STUB_SIZE;
        let ist = match vector as u8 {
            VECTOR_DOUBLE_FAULT => gdt::IST_DOUBLE_FAULT,
            VECTOR_NMI => gdt::IST_NMI,
            VECTOR_MACHINE_CHECK => gdt::IST_MACHINE_CHECK,
            _ => 0,
        };
        *gate = Gate {
            offset_low: handler as u16,
            selector,
            ist,
            type_attr: if vector as u8 == VECTOR_BREAKPOINT {
                USER_INTERRUPT_GATE
            } else {
                INTERRUPT_GATE
            },
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        };
    }
    load_idt();
}

/// Loads the shared IDT on this CPU.
pub fn load_idt() {
    // SAFETY: after `init` the IDT is only read.
    let idt = unsafe { &*IDT.0.get() };
    let pointer = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::from_ptr(idt),
    };
    // SAFETY: the table is complete, 'static, and every gate points at a valid stub.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
}

/// The first Rust code of every interrupt, exception and system call. Returns nonzero when
/// the frame (a system call's) may leave by SYSRET, zero for IRETQ.
extern "C" fn trap_dispatch(frame: &mut TrapFrame) -> u64 {
    if super::cpu_features::smap_enabled() {
        // EFLAGS.AC may be set: by user code (it may set the flag), or by a uaccess copy that
        // faulted. The kernel runs with SMAP enforced; IRETQ restores the interrupted flags.
        // SAFETY: `clac` exists when SMAP is on and only clears EFLAGS.AC.
        unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
    }
    if frame.vector == super::syscall::SYSCALL_MARKER {
        return super::syscall::handle(frame);
    }
    let vector = frame.vector as u8;
    // Exceptions run in the context they interrupted; interrupts are interrupt context, which
    // on an idle CPU also leaves RCU's extended quiescent state for the handler's duration.
    let interrupt = vector >= 32;
    if interrupt {
        crate::sync::rcu::irq_enter();
    }
    dispatch(frame, vector);
    if interrupt {
        crate::sync::rcu::irq_exit();
    }
    if frame.is_user_mode() {
        // Process context again, on the task's own stack: switch, die, take a signal or go
        // back.
        crate::proc::signal::return_to_user(frame, None);
    }
    0
}

fn dispatch(frame: &mut TrapFrame, vector: u8) {
    match vector {
        // User code's `int3` is SIGTRAP, as on Linux.
        VECTOR_BREAKPOINT if frame.is_user_mode() => exception(frame),
        VECTOR_BREAKPOINT => {
            // `int3` leaves RIP after itself, so returning resumes the code.
            log::info!("breakpoint at {:#x}", frame.rip);
            #[cfg(feature = "ktest")]
            BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
        }
        super::apic::TIMER_VECTOR => super::apic::timer_interrupt(frame),
        super::apic::CALL_VECTOR => super::smp::handle_call_interrupt(),
        super::apic::WAKE_VECTOR => super::apic::end_of_interrupt(),
        super::apic::PING_VECTOR => super::smp::handle_ping_interrupt(),
        super::ioapic::SERIAL_VECTOR => {
            // The UART's line stays raised until its bytes are read: drain first, then EOI.
            crate::console::serial_interrupt();
            super::apic::end_of_interrupt();
        }
        super::ioapic::KEYBOARD_VECTOR => {
            crate::console::keyboard::interrupt();
            super::apic::end_of_interrupt();
        }
        VECTOR_NMI => {
            super::smp::stop_if_requested(frame.rip, frame.rsp, frame.rbp);
            exception(frame);
        }
        super::apic::SPURIOUS_VECTOR => {}
        super::apic::ERROR_VECTOR => {
            log::error!("local APIC error interrupt");
            super::apic::end_of_interrupt();
        }
        0..32 => exception(frame),
        _ => {
            log::warn!("unexpected interrupt on vector {vector}");
            super::apic::end_of_interrupt();
        }
    }
}

fn exception(frame: &mut TrapFrame) {
    // CR2 first: anything below could fault and overwrite it.
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    if frame.vector as u8 == VECTOR_PAGE_FAULT && page_fault(frame, cr2) {
        return;
    }
    if frame.is_user_mode() {
        // A fault of the task's own doing: a signal for its handler, or the end of its process.
        crate::proc::signal::user_exception(frame, cr2);
        return;
    }
    if super::extable::fixup(frame) {
        return;
    }
    let report = FaultReport::new(frame, cr2);
    #[cfg(feature = "ktest")]
    EXPECTED.claim(&report);
    crate::panic::fatal(format_args!("{}", report.text.as_str()), Some(frame));
}

/// #PF error code bits: the access was a write; it was an instruction fetch.
const PF_WRITE: u64 = 1 << 1;
const PF_INSTRUCTION_FETCH: u64 = 1 << 4;
/// RFLAGS.IF: interrupts were enabled.
const RFLAGS_INTERRUPTS: u64 = 1 << 9;

/// Hands a page fault to mm's fault entry as a [`PageFault`] record and carries out its
/// decision; false when the fault is the kernel's own (no fixup: a bug to report).
fn page_fault(frame: &mut TrapFrame, cr2: u64) -> bool {
    let mode = if frame.is_user_mode() {
        FaultMode::User
    } else if super::extable::has_fixup(frame.rip) {
        FaultMode::Uaccess
    } else {
        FaultMode::Kernel
    };
    let fault = PageFault {
        addr: cr2,
        access: Access {
            write: frame.error_code & PF_WRITE != 0,
            execute: frame.error_code & PF_INSTRUCTION_FETCH != 0,
        },
        mode,
        interrupts_were_on: frame.rflags & RFLAGS_INTERRUPTS != 0,
    };
    match crate::mm::fault::handle_page_fault(&fault) {
        FaultAction::Retry => true,
        FaultAction::Signal(error) => {
            crate::proc::signal::user_page_fault_failed(frame, cr2, error);
            true
        }
        FaultAction::ReturnEfault => super::extable::fixup(frame),
        FaultAction::KernelBug => false,
    }
}

/// What the handler knew about a fault, with its report rendered as text.
struct FaultReport {
    #[cfg(feature = "ktest")]
    pub vector: u8,
    #[cfg(feature = "ktest")]
    pub error_code: u64,
    #[cfg(feature = "ktest")]
    pub rip: u64,
    #[cfg(feature = "ktest")]
    pub cr2: u64,
    pub text: FmtBuffer<640>,
}

impl FaultReport {
    fn new(frame: &TrapFrame, cr2: u64) -> Self {
        let mut text = FmtBuffer::new();
        let _ = write_report(&mut text, frame, cr2);
        Self {
            #[cfg(feature = "ktest")]
            vector: frame.vector as u8,
            #[cfg(feature = "ktest")]
            error_code: frame.error_code,
            #[cfg(feature = "ktest")]
            rip: frame.rip,
            #[cfg(feature = "ktest")]
            cr2,
            text,
        }
    }
}

fn write_report(out: &mut impl Write, frame: &TrapFrame, cr2: u64) -> fmt::Result {
    let vector = frame.vector as u8;
    let (name, mnemonic) = exception_name(vector);
    let mode = if frame.is_user_mode() {
        "user"
    } else {
        "kernel"
    };
    let cpu = super::percpu::cpu_index();
    writeln!(
        out,
        "EXCEPTION on CPU {cpu}: {name} ({mnemonic}, vector {vector}) in {mode} mode"
    )?;
    match vector {
        VECTOR_PAGE_FAULT => {
            writeln!(out, "  faulting address (CR2): {cr2:#018x}")?;
            writeln!(
                out,
                "  error code {:#x}: {}",
                frame.error_code,
                PageFaultError(frame.error_code)
            )?;
        }
        VECTOR_GENERAL_PROTECTION | 10 | 11 | 12 if frame.error_code != 0 => {
            writeln!(
                out,
                "  error code {:#x}: {}",
                frame.error_code,
                SelectorError(frame.error_code)
            )?;
        }
        _ if has_error_code(vector) => writeln!(out, "  error code {:#x}", frame.error_code)?,
        _ => {}
    }
    write!(out, "  RIP {:#018x}", frame.rip)?;
    if let Some((symbol, offset)) = super::symbols::lookup(frame.rip) {
        write!(out, " <{symbol}+{offset:#x}>")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "  RSP {:#018x}  RFLAGS {:#010x}  CS {:#x}  SS {:#x}",
        frame.rsp, frame.rflags, frame.cs, frame.ss
    )?;
    let registers = [
        ("RAX", frame.rax),
        ("RBX", frame.rbx),
        ("RCX", frame.rcx),
        ("RDX", frame.rdx),
        ("RSI", frame.rsi),
        ("RDI", frame.rdi),
        ("RBP", frame.rbp),
        ("R8", frame.r8),
        ("R9", frame.r9),
        ("R10", frame.r10),
        ("R11", frame.r11),
        ("R12", frame.r12),
        ("R13", frame.r13),
        ("R14", frame.r14),
        ("R15", frame.r15),
    ];
    for (row, line) in registers.chunks(3).enumerate() {
        if row > 0 {
            writeln!(out)?;
        }
        for (name, value) in line {
            write!(out, "  {name:<3} {value:#018x}")?;
        }
    }
    Ok(())
}

fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// An exception's name, as reports print it ("invalid opcode").
pub fn exception_description(vector: u8) -> &'static str {
    exception_name(vector).0
}

fn exception_name(vector: u8) -> (&'static str, &'static str) {
    match vector {
        0 => ("divide error", "#DE"),
        1 => ("debug", "#DB"),
        2 => ("non-maskable interrupt", "NMI"),
        3 => ("breakpoint", "#BP"),
        4 => ("overflow", "#OF"),
        5 => ("bound range exceeded", "#BR"),
        6 => ("invalid opcode", "#UD"),
        7 => ("device not available", "#NM"),
        8 => ("double fault", "#DF"),
        9 => ("coprocessor segment overrun", "#MF9"),
        10 => ("invalid TSS", "#TS"),
        11 => ("segment not present", "#NP"),
        12 => ("stack-segment fault", "#SS"),
        13 => ("general protection fault", "#GP"),
        14 => ("page fault", "#PF"),
        16 => ("x87 floating-point error", "#MF"),
        17 => ("alignment check", "#AC"),
        18 => ("machine check", "#MC"),
        19 => ("SIMD floating-point exception", "#XM"),
        20 => ("virtualization exception", "#VE"),
        21 => ("control protection exception", "#CP"),
        28 => ("hypervisor injection exception", "#HV"),
        29 => ("VMM communication exception", "#VC"),
        30 => ("security exception", "#SX"),
        _ => ("reserved exception", "#??"),
    }
}

/// The #PF error code in words: "not-present read, kernel", "protection violation write, user, instruction fetch".
struct PageFaultError(u64);

impl fmt::Display for PageFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0;
        let cause = if bits & 1 != 0 {
            "protection violation"
        } else {
            "not-present page"
        };
        let access = if bits & 16 != 0 {
            "instruction fetch"
        } else if bits & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let mode = if bits & 4 != 0 { "user" } else { "kernel" };
        write!(f, "{cause}, {access}, {mode}")?;
        for (bit, what) in [
            (3, "reserved bit set"),
            (5, "protection key"),
            (6, "shadow stack"),
            (15, "SGX"),
        ] {
            if bits & (1 << bit) != 0 {
                write!(f, ", {what}")?;
            }
        }
        Ok(())
    }
}

/// A selector error code (#GP, #TS, #NP, #SS): which table and index.
struct SelectorError(u64);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = match (self.0 >> 1) & 3 {
            0 => "GDT",
            2 => "LDT",
            _ => "IDT",
        };
        let external = if self.0 & 1 != 0 {
            ", external event"
        } else {
            ""
        };
        write!(
            f,
            "{table} selector index {}{external}",
            (self.0 >> 3) & 0x1fff
        )
    }
}

/// The expect-fault hook: one test at a time may arm it, for faults on its own CPU.
#[cfg(feature = "ktest")]
struct ExpectedFault {
    /// The armed vector, or `NOT_ARMED`.
    vector: AtomicU16,
    /// The CPU that armed it: a fault elsewhere is not the one expected.
    cpu: AtomicUsize,
    buffer: UnsafeCell<JumpBuffer>,
    report: UnsafeCell<Option<FaultReport>>,
}

#[cfg(feature = "ktest")]
const NOT_ARMED: u16 = u16::MAX;

// SAFETY: `buffer` and `report` are written only by the armed caller before arming / after
// disarming, and by the trap handler on the same CPU while armed (`vector` orders the two).
#[cfg(feature = "ktest")]
unsafe impl Sync for ExpectedFault {}

#[cfg(feature = "ktest")]
static EXPECTED: ExpectedFault = ExpectedFault {
    vector: AtomicU16::new(NOT_ARMED),
    cpu: AtomicUsize::new(0),
    buffer: UnsafeCell::new(JumpBuffer::new()),
    report: UnsafeCell::new(None),
};

#[cfg(feature = "ktest")]
impl ExpectedFault {
    /// Takes the fault if the hook is armed for its vector: stores the report and resumes
    /// after `expect_fault`'s closure. Returns only if the hook does not claim it.
    fn claim(&self, report: &FaultReport) {
        if self.vector.load(Ordering::Acquire) != u16::from(report.vector)
            || self.cpu.load(Ordering::Relaxed) != super::percpu::cpu_index()
        {
            return;
        }
        self.vector.store(NOT_ARMED, Ordering::Release);
        // SAFETY: the hook was armed on this CPU by `expect_fault`, which is still running
        // below us on this stack and reads the report only after the jump.
        unsafe {
            *self.report.get() = Some(FaultReport {
                text: report.text.clone(),
                ..*report
            });
            jump::resume_at(self.buffer.get());
        }
    }
}

/// Runs `f`, expecting it to raise exception `vector` in kernel mode. The handler's report is
/// returned instead of stopping the machine, and execution resumes here. `None` means `f`
/// returned without that fault. Recovery skips the rest of `f`: whatever it owned is leaked.
#[cfg(feature = "ktest")]
fn expect_fault<F: FnOnce()>(vector: u8, f: F) -> Option<FaultReport> {
    // SAFETY: the hook is disarmed, so nothing else touches the cells now.
    unsafe { *EXPECTED.report.get() = None };
    EXPECTED
        .cpu
        .store(super::percpu::cpu_index(), Ordering::Relaxed);
    EXPECTED.vector.store(u16::from(vector), Ordering::Release);
    // SAFETY: `EXPECTED.buffer` is static; the hook is disarmed (by the handler or below)
    // before this returns, so nobody jumps to it afterwards.
    let outcome = unsafe { jump::call_recoverable(EXPECTED.buffer.get(), f) };
    EXPECTED.vector.store(NOT_ARMED, Ordering::Release);
    match outcome {
        Ok(()) => None,
        // SAFETY: the handler stored the report before jumping; the hook is disarmed.
        Err(()) => unsafe { (*EXPECTED.report.get()).take() },
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::{
        VECTOR_DIVIDE, VECTOR_INVALID_OPCODE, VECTOR_PAGE_FAULT, breakpoints_handled, expect_fault,
    };
    use crate::arch::extable::{EFAULT, probe_read_u64};
    use crate::ktest;

    /// Lower-half addresses: nothing is mapped there in the kernel's own page tables.
    const UNMAPPED_READ: u64 = 0x1000;
    const UNMAPPED_WRITE: u64 = 0x2468;

    ktest! {
        /// `int3` is reported and execution continues after it.
        fn breakpoint_is_handled_and_resumed() {
            let before = breakpoints_handled();
            x86_64::instructions::interrupts::int3();
            let resumed = true;
            assert!(resumed);
            assert_eq!(breakpoints_handled(), before + 1);
        }
    }

    ktest! {
        /// A kernel read of an unmapped page: the report names the fault, CR2 and the error code.
        fn page_fault_report_for_a_read() {
            let report = expect_fault(VECTOR_PAGE_FAULT, || {
                // SAFETY: none needed in effect: the read faults and the hook takes over.
                let value = unsafe { core::ptr::read_volatile(UNMAPPED_READ as *const u64) };
                panic!("read of an unmapped page returned {value}");
            })
            .expect("no page fault");
            assert_eq!(report.cr2, UNMAPPED_READ);
            assert_eq!(report.error_code & 0b111, 0, "expected not-present, read, kernel");
            assert!(report.rip >= 0xffff_8000_0000_0000, "faulting RIP {:#x} outside the kernel", report.rip);
            let text = report.text.as_str();
            for needle in [
                "EXCEPTION on CPU 0: page fault (#PF, vector 14) in kernel mode",
                "faulting address (CR2): 0x0000000000001000",
                "error code 0x0: not-present page, read, kernel",
                "RIP 0xffff",
            ] {
                assert!(text.contains(needle), "report lacks {needle:?}:\n{text}");
            }
        }
    }

    ktest! {
        /// A kernel write of an unmapped page is decoded as a write.
        fn page_fault_report_for_a_write() {
            let report = expect_fault(VECTOR_PAGE_FAULT, || {
                // SAFETY: none needed in effect: the write faults and the hook takes over.
                unsafe { core::ptr::write_volatile(UNMAPPED_WRITE as *mut u8, 1) };
            })
            .expect("no page fault");
            assert_eq!(report.cr2, UNMAPPED_WRITE);
            let text = report.text.as_str();
            assert!(text.contains("not-present page, write, kernel"), "{text}");
        }
    }

    ktest! {
        /// Other exceptions reach the hook with their own names: #UD and #DE.
        fn invalid_opcode_and_divide_error_reports() {
            let ud = expect_fault(VECTOR_INVALID_OPCODE, || {
                // SAFETY: `ud2` only raises #UD, which the hook takes.
                unsafe { core::arch::asm!("ud2") };
            })
            .expect("no #UD");
            assert!(ud.text.as_str().contains("invalid opcode (#UD, vector 6)"), "{}", ud.text.as_str());
            let de = expect_fault(VECTOR_DIVIDE, || {
                // SAFETY: dividing by zero only raises #DE, which the hook takes.
                unsafe {
                    core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div rcx", out("rax") _, out("rdx") _, out("rcx") _)
                };
            })
            .expect("no #DE");
            assert!(de.text.as_str().contains("divide error (#DE, vector 0)"), "{}", de.text.as_str());
        }
    }

    ktest! {
        /// The exception table turns a fault at a listed instruction into -EFAULT.
        fn exception_table_fixup() {
            assert_eq!(probe_read_u64(UNMAPPED_READ), Err(EFAULT));
            let here: u64 = 0x1234_5678_9abc_def0;
            assert_eq!(probe_read_u64(&here as *const u64 as u64), Ok(here));
        }
    }

    ktest! {
        /// Nothing faults: the hook reports nothing and stays out of the way.
        fn expect_fault_without_a_fault() {
            assert!(expect_fault(VECTOR_PAGE_FAULT, || {}).is_none());
        }
    }
}
