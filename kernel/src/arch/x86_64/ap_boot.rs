//! Starting the application processors (bootloader 0.11 starts none).
//!
//! The trampoline below is copied to a free page under 1 MiB. A started AP runs it in real mode
//! with CS = that page; it is position-independent there (data is addressed relative to CS, and
//! the two absolute addresses it needs, the GDT base and the long-mode entry, are patched into
//! its parameter block by [`start_aps`]). It loads a GDT of its own, the bootstrap CPU's CR4,
//! CR3 (so the kernel's PML4 must lie below 4 GiB), EFER (LME and NXE: the kernel's tables use
//! NX) and CR0, goes straight to long mode, and jumps to [`ap_entry`] in the upper half on the
//! stack the parameter block names. The page is identity-mapped in the lower half while APs
//! start, and unmapped afterwards.
//!
//! APs start one at a time (INIT, 10 ms, STARTUP, 200 µs, STARTUP), each with a timeout; one
//! that never answers is reported with the last stage its trampoline reached, reset with INIT,
//! and skipped.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, Ordering};

use alloc::boxed::Box;
use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use x86_64::registers::control::{Cr0, Cr3, Cr4, Cr4Flags};
use x86_64::registers::model_specific::Efer;

use super::gdt::IstStacks;
use super::percpu::{self, CpuBlock, MAX_CPUS};
use super::{apic, trap};
use crate::mm::{PhysAddr, frame, kernel_tables};
use crate::time;

global_asm!(
    ".pushsection .text.ap_trampoline, \"ax\"",
    ".code16",
    ".global ap_trampoline_start",
    "ap_trampoline_start:",
    "cli",
    "cld",
    "mov ax, cs",
    "mov ds, ax",
    // DS-relative accesses to the parameter block, encoded by hand (LLVM's Intel syntax takes
    // no symbol differences in memory operands): `mov dword [disp16], 1`.
    ".byte 0x66, 0xc7, 0x06",
    ".word ap_tp_stage - ap_trampoline_start",
    ".long 1",
    // lgdt with a 32-bit base (operand-size prefix), DS-relative.
    ".byte 0x66, 0x0f, 0x01, 0x16",
    ".word ap_tp_gdtr - ap_trampoline_start",
    ".byte 0x66, 0xa1", // mov eax, dword [disp16]
    ".word ap_tp_cr4 - ap_trampoline_start",
    "mov cr4, eax",
    ".byte 0x66, 0xa1", // mov eax, dword [disp16]
    ".word ap_tp_cr3 - ap_trampoline_start",
    "mov cr3, eax",
    ".byte 0x66, 0xa1", // mov eax, dword [disp16]
    ".word ap_tp_efer - ap_trampoline_start",
    "xor edx, edx",
    "mov ecx, 0xc0000080",
    "wrmsr",
    ".byte 0x66, 0xa1", // mov eax, dword [disp16]
    ".word ap_tp_cr0 - ap_trampoline_start",
    "mov cr0, eax",
    // jmp far m16:32 through DS: into the 64-bit code segment of the trampoline's GDT.
    ".byte 0x66, 0xff, 0x2e",
    ".word ap_tp_far - ap_trampoline_start",
    ".code64",
    ".global ap_trampoline_long",
    "ap_trampoline_long:",
    "mov ax, 0x10",
    "mov ds, ax",
    "mov es, ax",
    "mov ss, ax",
    "xor eax, eax",
    "mov fs, ax",
    "mov gs, ax",
    "mov dword ptr [rip + ap_tp_stage], 2",
    "mov rsp, qword ptr [rip + ap_tp_stack]",
    "mov rdi, qword ptr [rip + ap_tp_percpu]",
    "mov rax, qword ptr [rip + ap_tp_entry]",
    // A zero return address ends backtraces, and leaves RSP as a call would.
    "push 0",
    "jmp rax",
    ".balign 8",
    ".global ap_trampoline_params",
    "ap_trampoline_params:",
    "ap_tp_cr3: .long 0",
    "ap_tp_cr4: .long 0",
    "ap_tp_efer: .long 0",
    "ap_tp_cr0: .long 0",
    "ap_tp_gdtr: .word 23",
    ".long 0",
    ".word 0",
    "ap_tp_far: .long 0",
    ".word 0x08",
    ".word 0",
    "ap_tp_stack: .quad 0",
    "ap_tp_percpu: .quad 0",
    "ap_tp_entry: .quad 0",
    "ap_tp_stage: .long 0",
    ".long 0",
    ".global ap_trampoline_gdt",
    "ap_trampoline_gdt:",
    ".quad 0",
    ".quad 0x00af9a000000ffff",
    ".quad 0x00cf92000000ffff",
    ".global ap_trampoline_end",
    "ap_trampoline_end:",
    ".popsection",
);

unsafe extern "C" {
    static ap_trampoline_start: [u8; 0];
    static ap_trampoline_params: [u8; 0];
    static ap_trampoline_gdt: [u8; 0];
    static ap_trampoline_end: [u8; 0];
}

/// Matches the assembly's parameter block field for field.
#[repr(C)]
struct Params {
    cr3: u32,
    cr4: u32,
    efer: u32,
    cr0: u32,
    /// The GDTR image: 16-bit limit, then the 32-bit base (unaligned, as `lgdt` reads it).
    gdtr: [u8; 6],
    _pad0: u16,
    long_mode_offset: u32,
    long_mode_selector: u16,
    _pad1: u16,
    stack: u64,
    percpu: u64,
    entry: u64,
    /// 1: the AP runs the trampoline; 2: it reached long mode.
    stage: AtomicU32,
    _pad2: u32,
}

const _: () = assert!(core::mem::offset_of!(Params, gdtr) == 16);
const _: () = assert!(core::mem::offset_of!(Params, stack) == 32);
const _: () = assert!(core::mem::offset_of!(Params, stage) == 56);

fn symbol(s: &[u8; 0]) -> u64 {
    s.as_ptr() as u64
}

/// How long an AP may take to reach the kernel.
const AP_TIMEOUT_NS: u64 = 1_000_000_000;
const AP_STACK_ORDER: usize = 4;

/// A free page below 1 MiB for the trampoline (frames there are never in the frame allocator).
fn trampoline_page(regions: &MemoryRegions) -> Option<u64> {
    let candidates = [
        0x8000u64, 0x9000, 0x7000, 0x10000, 0x20000, 0x30000, 0x40000, 0x50000, 0x60000, 0x70000,
    ];
    candidates.into_iter().find(|&page| {
        regions
            .iter()
            .any(|r| r.kind == MemoryRegionKind::Usable && r.start <= page && page + 4096 <= r.end)
    })
}

/// Starts every CPU the MADT lists besides this one. Returns how many came up.
pub fn start_aps(regions: &MemoryRegions, apic_ids: &[u32]) -> usize {
    let bsp_id = apic::id();
    let aps: alloc::vec::Vec<u32> = apic_ids
        .iter()
        .copied()
        .filter(|&id| id != bsp_id)
        .collect();
    if aps.is_empty() {
        return 0;
    }
    let Some(page) = trampoline_page(regions) else {
        log::error!("smp: no free page below 1 MiB for the AP trampoline; running on one CPU");
        return 0;
    };
    let (pml4, _) = Cr3::read();
    let cr3 = pml4.start_address().as_u64();
    let Ok(cr3_low) = u32::try_from(cr3) else {
        log::error!("smp: the kernel's PML4 at {cr3:#x} is above 4 GiB; running on one CPU");
        return 0;
    };

    // Copy the trampoline and fill in what the assembly cannot know.
    // SAFETY: the symbols delimit the trampoline's bytes in the kernel image.
    let (start, params_at, gdt_at, end) = unsafe {
        (
            symbol(&ap_trampoline_start),
            symbol(&ap_trampoline_params),
            symbol(&ap_trampoline_gdt),
            symbol(&ap_trampoline_end),
        )
    };
    let len = (end - start) as usize;
    let long_mode_offset = start_offset_of_long_mode();
    assert!(len <= 4096, "the AP trampoline outgrew its page");
    let page_virt = PhysAddr::new(page).to_virt();
    // SAFETY: `page` is usable RAM below 1 MiB that nothing else uses (the frame allocator
    // never hands out low memory); the source is the trampoline in the kernel image.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, page_virt as *mut u8, len) };
    // SAFETY: the parameter block lies inside the copied page, suitably aligned (.balign 8).
    let params = unsafe { &mut *((page_virt + (params_at - start)) as *mut Params) };
    params.cr3 = cr3_low;
    params.cr4 = (Cr4::read() - Cr4Flags::PCID).bits() as u32;
    // LMA is the CPU's to set; LME and NXE (and anything else on) are copied.
    params.efer = (Efer::read_raw() & !(1 << 10)) as u32;
    params.cr0 = Cr0::read_raw() as u32;
    let gdt_base = (page + (gdt_at - start)) as u32;
    params.gdtr[2..].copy_from_slice(&gdt_base.to_le_bytes());
    params.long_mode_offset = (page + long_mode_offset) as u32;
    // SAFETY: the page is ours and stays mapped until every AP is past the trampoline.
    if let Err(error) = unsafe { kernel_tables::map_low_identity(PhysAddr::new(page)) } {
        log::error!("smp: cannot identity-map the trampoline ({error}); running on one CPU");
        return 0;
    }

    let mut started = 0;
    for &apic_id in &aps {
        let index = 1 + started;
        if index >= MAX_CPUS {
            log::warn!("smp: more than {MAX_CPUS} CPUs; the rest stay off");
            break;
        }
        if start_one(params, page, index, apic_id) {
            started += 1;
        }
    }
    kernel_tables::unmap_low_identity();
    started
}

fn start_offset_of_long_mode() -> u64 {
    unsafe extern "C" {
        static ap_trampoline_long: [u8; 0];
    }
    // SAFETY: both symbols are in the trampoline; only their addresses are used.
    unsafe { symbol(&ap_trampoline_long) - symbol(&ap_trampoline_start) }
}

/// Starts one AP and waits until it is online; false (and the AP reset) on timeout.
fn start_one(params: &mut Params, page: u64, index: usize, apic_id: u32) -> bool {
    let Some(stack) = frame::allocate(AP_STACK_ORDER) else {
        log::error!("smp: no memory for CPU {index}'s stack");
        return false;
    };
    let percpu: &'static CpuBlock = Box::leak(Box::new(CpuBlock::new(index, apic_id)));
    params.stack = stack.start().to_virt() + (4096 << AP_STACK_ORDER);
    params.percpu = percpu as *const CpuBlock as u64;
    params.entry = ap_entry as *const () as u64;
    params.stage.store(0, Ordering::SeqCst);

    apic::send_init(apic_id);
    time::delay_us(10_000);
    apic::send_startup(apic_id, (page >> 12) as u8);
    time::delay_us(200);
    if params.stage.load(Ordering::SeqCst) == 0 {
        apic::send_startup(apic_id, (page >> 12) as u8);
    }
    let deadline = time::now_ns() + AP_TIMEOUT_NS;
    while !percpu.online.load(Ordering::Acquire) {
        if time::now_ns() > deadline {
            let stage = match params.stage.load(Ordering::SeqCst) {
                0 => "never ran the trampoline",
                1 => "stopped in the trampoline before long mode",
                _ => "reached long mode but not the kernel",
            };
            log::error!("smp: CPU with APIC ID {apic_id} did not start ({stage}); skipped");
            apic::send_init(apic_id);
            // The AP never registered itself, so its data and stack stay unused: the stack
            // goes back (dropped); the `CpuBlock` is leaked (small, once).
            return false;
        }
        core::hint::spin_loop();
    }
    // The stack is the AP's for good.
    let _ = stack.into_raw();
    true
}

/// Where an AP enters the kernel, on its own stack, with interrupts off.
extern "C" fn ap_entry(percpu: &'static CpuBlock) -> ! {
    percpu::install(percpu);
    percpu.tables.load_with(IstStacks::allocate());
    trap::load_idt();
    super::cpu_features::init_this_cpu();
    super::syscall::init_this_cpu();
    apic::init_ap();
    percpu.apic_id.store(apic::id(), Ordering::Relaxed);
    log::info!(
        "cpu {}: online, APIC ID {} ({})",
        percpu.index,
        apic::id(),
        if apic::is_x2apic() { "x2APIC" } else { "xAPIC" }
    );
    crate::sched::init_cpu(false);
    crate::sync::rcu::cpu_online();
    percpu.online.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();
    crate::sched::idle_loop()
}
