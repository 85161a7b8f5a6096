//! Features every CPU turns on as it starts: no-execute pages (EFER.NXE); x87 and SSE for user
//! code (the kernel itself is built without them; the scheduler saves and restores user
//! threads' registers with FXSAVE/FXRSTOR, see `FpuState`); and, where the CPU has them, SMEP
//! (the kernel never executes user pages) and SMAP (the kernel touches user pages only inside
//! the uaccess helpers, which set EFLAGS.AC for the access).
//!
//! Whether SMAP is on is decided by the bootstrap CPU and read by the uaccess helpers (`stac` and
//! `clac` are invalid instructions without it). The flags are written once, before other CPUs
//! start.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

static SMAP: AtomicBool = AtomicBool::new(false);
static SMEP: AtomicBool = AtomicBool::new(false);

/// Whether SMAP is on (uaccess must bracket user accesses with `stac`/`clac`).
pub fn smap_enabled() -> bool {
    SMAP.load(Ordering::Relaxed)
}

fn smep_enabled() -> bool {
    SMEP.load(Ordering::Relaxed)
}

/// Turns the features on for this CPU (the first CPU also decides which are used).
pub fn init_this_cpu() {
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let has_smep = leaf7.ebx & (1 << 7) != 0;
    let has_smap = leaf7.ebx & (1 << 20) != 0;
    let has_nx = core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 20) != 0;
    if percpu_is_bootstrap() {
        SMEP.store(has_smep, Ordering::Relaxed);
        SMAP.store(has_smap, Ordering::Relaxed);
        log::info!(
            "cpu features: NX {}, SMEP {}, SMAP {}",
            on_off(has_nx),
            on_off(has_smep),
            on_off(has_smap)
        );
    }
    assert!(has_nx, "this kernel needs no-execute pages (NX)");
    // SAFETY: setting NXE only makes bit 63 of page-table entries meaningful; the kernel's
    // tables use it as no-execute already.
    unsafe { Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    // SAFETY: x87/SSE on for user code: no emulation, no lazy-switch trap (TS), `fwait` obeys
    // MP; FXSAVE/FXRSTOR and SSE exceptions enabled. The kernel emits no FPU/SSE code.
    unsafe {
        Cr0::update(|flags| {
            flags.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            flags.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
    }
    let mut cr4 = Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE;
    if smep_enabled() {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if smap_enabled() {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: SMEP/SMAP only forbid the kernel to execute or touch user pages outside the
    // uaccess helpers; no kernel code does either.
    unsafe { Cr4::update(|flags| flags.insert(cr4)) };
}

fn percpu_is_bootstrap() -> bool {
    super::percpu::cpu_index() == 0
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
