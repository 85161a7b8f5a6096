//! Each CPU's GDT and TSS, with separate interrupt stacks (IST) for the exceptions that may
//! arrive on a broken stack: double fault, NMI and machine check.
//!
//! Every CPU builds its own tables once, as it starts, inside its [`CpuBlock`](super::percpu).
//! Afterwards only the TSS's `RSP0` changes — the stack an interrupt or exception from user mode
//! lands on — and only its own CPU writes it, at every switch to another task
//! ([`set_kernel_stack`]). The IDT is shared (trap.rs).
//!
//! The GDT's order is fixed by `SYSCALL`/`SYSRET` (see syscall.rs): kernel code, kernel data,
//! user data, user code, so that one `STAR` value yields all four selectors.

use alloc::boxed::Box;
use core::cell::UnsafeCell;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slots (1-based in the IDT, 0-based in the TSS array).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
pub struct IstStacks([[u8; IST_STACK_SIZE]; 3]);

impl IstStacks {
    /// Fresh stacks for a CPU that is about to start.
    pub fn allocate() -> &'static mut IstStacks {
        Box::leak(Box::new(IstStacks([[0; IST_STACK_SIZE]; 3])))
    }
}

/// The bootstrap CPU's IST stacks (needed before the heap exists); the CPU alone writes them.
static mut BOOTSTRAP_IST_STACKS: IstStacks = IstStacks([[0; IST_STACK_SIZE]; 3]);

/// Kernel code and data selectors (GDT entries 1 and 2).
pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
/// User data and code selectors with RPL 3 (GDT entries 3 and 4).
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;

struct Gdt {
    table: GlobalDescriptorTable,
    tss: SegmentSelector,
}

/// A TSS that its CPU updates (`RSP0`) while the CPU itself reads it.
struct TssCell(UnsafeCell<TaskStateSegment>);

// SAFETY: only the owning CPU writes its TSS (`set_kernel_stack`, with interrupts disabled);
// other CPUs never touch it.
unsafe impl Sync for TssCell {}

/// One CPU's descriptor tables.
pub struct CpuTables {
    tss: Once<TssCell>,
    gdt: Once<Gdt>,
}

impl CpuTables {
    pub const fn new() -> Self {
        Self {
            tss: Once::new(),
            gdt: Once::new(),
        }
    }

    /// Builds the tables with the given IST stacks and loads them on this CPU.
    fn load(&'static self, stacks: *mut IstStacks) {
        let tss = self.tss.call_once(|| {
            let mut tss = TaskStateSegment::new();
            for index in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
                let slot = usize::from(index - 1);
                // SAFETY: only the address of the stack is taken; the CPU alone uses it.
                let base = unsafe { core::ptr::addr_of!((*stacks).0[slot]) } as u64;
                tss.interrupt_stack_table[slot] = VirtAddr::new(base + IST_STACK_SIZE as u64);
            }
            TssCell(UnsafeCell::new(tss))
        });
        let gdt = self.gdt.call_once(|| {
            let mut table = GlobalDescriptorTable::new();
            let code = table.append(Descriptor::kernel_code_segment());
            let data = table.append(Descriptor::kernel_data_segment());
            let user_data = table.append(Descriptor::user_data_segment());
            let user_code = table.append(Descriptor::user_code_segment());
            assert_eq!(
                [code.0, data.0, user_data.0, user_code.0],
                [KERNEL_CODE, KERNEL_DATA, USER_DATA, USER_CODE],
                "the GDT order SYSCALL/SYSRET need"
            );
            // SAFETY: the TSS lives for good (inside this CPU's `CpuBlock`) and only the CPU
            // itself writes it afterwards.
            let tss = table.append(unsafe { Descriptor::tss_segment_unchecked(tss.0.get()) });
            Gdt { table, tss }
        });
        gdt.table.load();
        // SAFETY: the selectors index descriptors of the GDT just loaded, which lives for good.
        unsafe {
            CS::set_reg(SegmentSelector(KERNEL_CODE));
            SS::set_reg(SegmentSelector(KERNEL_DATA));
            DS::set_reg(SegmentSelector(KERNEL_DATA));
            ES::set_reg(SegmentSelector(KERNEL_DATA));
            load_tss(gdt.tss);
        }
    }

    /// Sets the stack that interrupts and exceptions from user mode land on (`TSS.RSP0`).
    /// Called by this CPU only, with interrupts disabled, when it switches tasks.
    pub fn set_kernel_stack(&self, top: u64) {
        let tss = self.tss.get().expect("this CPU's tables are loaded");
        // SAFETY: see `TssCell`: this CPU alone writes its TSS, and no interrupt runs meanwhile.
        unsafe { (*tss.0.get()).privilege_stack_table[0] = VirtAddr::new(top) };
    }

    /// The bootstrap CPU's tables, with its static IST stacks.
    pub fn load_bootstrap(&'static self) {
        self.load(&raw mut BOOTSTRAP_IST_STACKS);
    }

    /// An AP's tables, with stacks from [`IstStacks::allocate`].
    pub fn load_with(&'static self, stacks: &'static mut IstStacks) {
        self.load(stacks);
    }
}
