//! Starting a process from an executable in the ramdisk: a static x86_64 ELF (non-PIE, or
//! static-PIE loaded at a fixed base), checked by kernel/libs/elf, loaded into a fresh address
//! space, with the System V initial stack (argc, argv, envp, auxv) built above its stack VMA.
//!
//! The loadable segments become VMAs with their protections; where two segments share a page,
//! that page gets both protections. File bytes are copied into fresh pages at load; the rest
//! (BSS) is zero-fill on demand.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32};

use super::{Process, register};
use crate::arch::syscall::{USER_END, user_frame};
use crate::mm::addrspace::{Edit, MMAP_MIN_ADDR, Mm, MmWriteGuard, STACK_SIZE, STACK_TOP};
use crate::mm::vma::{VM_EXEC, VM_IMAGE, VM_READ, VM_STACK, VM_WRITE};
use crate::sched::task::{Task, UserThread, allocate_tid};
use crate::sync::PerCpuCounter;
use crate::sync::{Completion, IrqSpinLock};

/// Where a static-PIE executable is loaded (Linux's usual choice for PIE without ASLR).
const PIE_BASE: u64 = 0x5555_5555_4000;
/// Environment every process starts with.
const ENVIRONMENT: [&[u8]; 3] = [b"PATH=/bin", b"HOME=/", b"TERM=vt100"];

fn limits() -> elf::Limits {
    elf::Limits {
        min_addr: MMAP_MIN_ADDR,
        user_end: USER_END,
        ..elf::Limits::DEFAULT
    }
}

/// Options for [`spawn`]; production kernels have none.
#[derive(Default)]
pub struct SpawnOptions {
    /// Keep a copy of what the process writes to fds 1 and 2 (tests).
    #[cfg(feature = "ktest")]
    pub capture_output: bool,
}

/// Starts the executable at `path` with `args` (argv[0] included) as a new process.
pub fn spawn(path: &str, args: &[&[u8]], options: SpawnOptions) -> Result<Arc<Process>, String> {
    let image =
        super::ramdisk::find(path).ok_or_else(|| format!("{path}: no such file in the ramdisk"))?;
    let program = elf::parse(image, &limits()).map_err(|e| format!("cannot run {path}: {e}"))?;
    let program = if program.is_pie {
        program
            .relocated(PIE_BASE, &limits())
            .map_err(|e| format!("cannot run {path}: {e}"))?
    } else {
        program
    };
    let mm = Box::new(Mm::new().ok_or("out of memory for a new address space")?);
    let loaded = load(&mm.write(), image, &program, path, args);
    let rsp = loaded.map_err(|e| format!("cannot run {path}: {e}"))?;

    let process = Arc::new(Process::new(path, mm, &options));
    let name = path.rsplit('/').next().unwrap_or(path);
    let user = UserThread::new(process.clone(), 0, 0, user_frame(program.entry, rsp));
    let task = Task::new_user(process.pid, name, user, super::signal::user_thread_start)
        .ok_or("out of memory for a kernel stack")?;
    process.add_thread(task.clone());
    register(process.clone());
    crate::sched::spawn(task);
    Ok(process)
}

impl Process {
    /// A process with address space `mm` and no thread yet.
    pub fn new(path: &str, mm: Box<Mm>, options: &SpawnOptions) -> Self {
        #[cfg(not(feature = "ktest"))]
        let _ = options;
        Self {
            pid: allocate_tid(),
            path: String::from(path),
            mm,
            threads: IrqSpinLock::new(Vec::new()),
            group_exit: AtomicBool::new(false),
            wait_status: AtomicU32::new(0),
            exited: Completion::new(),
            minor_faults: PerCpuCounter::new(),
            #[cfg(feature = "ktest")]
            captured_output: options.capture_output.then(|| spin::Mutex::new(Vec::new())),
            signals: super::signal::ProcessSignals::new(),
            #[cfg(feature = "ktest")]
            fatal_report: spin::Mutex::new(None),
        }
    }
}

/// Maps the segments and the stack; returns the initial RSP.
fn load(
    mm: &MmWriteGuard,
    image: &[u8],
    program: &elf::Program,
    path: &str,
    args: &[&[u8]],
) -> Result<u64, String> {
    let oom = |_| String::from("out of memory");
    // Page pieces with the union of the protections of the segments that touch them.
    let mut bounds: Vec<u64> = Vec::new();
    for segment in &program.segments {
        bounds.push(segment.vaddr & !0xfff);
        bounds.push((segment.end() + 0xfff) & !0xfff);
    }
    bounds.sort_unstable();
    bounds.dedup();
    for pair in bounds.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let flags = program
            .segments
            .iter()
            .filter(|s| s.vaddr < end && s.end() > start)
            .fold(0, |flags, s| flags | segment_flags(s));
        if flags != 0 {
            mm.edit(start..end, Edit::Map(flags | VM_IMAGE))
                .map_err(oom)?;
        }
    }
    for segment in &program.segments {
        let data =
            &image[segment.file_offset as usize..(segment.file_offset + segment.filesz) as usize];
        copy_into(mm, segment.vaddr, data).map_err(oom)?;
    }
    let heap_start = program
        .segments
        .iter()
        .map(|s| (s.end() + 0xfff) & !0xfff)
        .max()
        .unwrap_or(MMAP_MIN_ADDR);
    mm.set_brk(heap_start..heap_start);

    let stack_flags =
        VM_READ | VM_WRITE | VM_STACK | if program.stack_executable { VM_EXEC } else { 0 };
    mm.edit(STACK_TOP - STACK_SIZE..STACK_TOP, Edit::Map(stack_flags))
        .map_err(oom)?;
    let mut aux = elf::AuxInfo::for_program(program);
    aux.hwcap = u64::from(core::arch::x86_64::__cpuid(1).edx);
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let stack =
        elf::build_initial_stack(STACK_TOP, args, &ENVIRONMENT, path.as_bytes(), &aux, random)
            .map_err(|e| format!("{e}"))?;
    copy_into(mm, stack.rsp, &stack.bytes).map_err(oom)?;
    Ok(stack.rsp)
}

fn segment_flags(segment: &elf::Segment) -> u32 {
    let mut flags = 0;
    if segment.readable {
        flags |= VM_READ;
    }
    if segment.writable {
        flags |= VM_WRITE;
    }
    if segment.executable {
        flags |= VM_EXEC;
    }
    flags
}

/// Copies `data` to user address `addr` of `mm` (mapped VMAs) through fresh pages.
fn copy_into(
    mm: &MmWriteGuard,
    addr: u64,
    data: &[u8],
) -> Result<(), crate::syscall::errno::Errno> {
    let mut done = 0;
    while done < data.len() {
        let at = addr + done as u64;
        let offset = (at % 4096) as usize;
        let chunk = (4096 - offset).min(data.len() - done);
        let page = mm.page_for_loading(at & !0xfff)?;
        // SAFETY: `page` is the kernel address (direct map) of a page of this new address space,
        // which no one else can reach yet; the chunk stays inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data[done..].as_ptr(),
                (page + offset as u64) as *mut u8,
                chunk,
            );
        }
        done += chunk;
    }
    Ok(())
}
