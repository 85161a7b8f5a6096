//! Each CPU's GDT and TSS, with separate interrupt stacks (IST) for the exceptions that may
//! arrive on a broken stack: double fault, NMI and machine check.
//!
//! Every CPU builds its own tables once, as it starts, inside its [`PerCpu`](super::percpu);
//! they never change afterwards. The IDT is shared (trap.rs).

use alloc::boxed::Box;
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

struct Gdt {
    table: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// One CPU's descriptor tables.
pub struct CpuTables {
    tss: Once<TaskStateSegment>,
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
            tss
        });
        let gdt = self.gdt.call_once(|| {
            let mut table = GlobalDescriptorTable::new();
            let code = table.append(Descriptor::kernel_code_segment());
            let data = table.append(Descriptor::kernel_data_segment());
            let tss = table.append(Descriptor::tss_segment(tss));
            Gdt {
                table,
                code,
                data,
                tss,
            }
        });
        gdt.table.load();
        // SAFETY: the selectors index descriptors of the GDT just loaded, which lives for good.
        unsafe {
            CS::set_reg(gdt.code);
            SS::set_reg(gdt.data);
            DS::set_reg(gdt.data);
            ES::set_reg(gdt.data);
            load_tss(gdt.tss);
        }
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
