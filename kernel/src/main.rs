//! The kernel binary: the bootloader's entry point and the boot sequence, nothing else.
//!
//! Everything here runs once, on the bootstrap CPU, in the order below. Each step
//! lives in the module that owns it; this file only calls them in order.

#![no_std]
#![no_main]

extern crate alloc;

// Modules that need no `unsafe` are denied it, so that a use there stands out in review.
mod arch;
#[deny(unsafe_code)]
mod boot_options;
mod console;
#[deny(unsafe_code)]
mod debug_keys;
mod fs;
#[cfg(feature = "ktest")]
mod ktest;
mod mm;
#[deny(unsafe_code)]
mod panic;
mod proc;
mod random;
mod sched;
mod sync;
#[deny(unsafe_code)]
mod syscall;
mod time;

use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::{BootInfo, entry_point};

/// Where the bootloader may place the mappings it chooses (kernel image, physical memory map,
/// boot stack, boot info, framebuffer): the upper half. The lower half belongs to user processes.
const KERNEL_DYNAMIC_START: u64 = 0xffff_8000_0000_0000;

/// The boot stack: deep enough for the test runner and exception reports in debug builds.
const BOOT_STACK_SIZE: u64 = 256 * 1024;

const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.dynamic_range_start = Some(KERNEL_DYNAMIC_START);
    config.kernel_stack_size = BOOT_STACK_SIZE;
    config
};

entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    arch::init_bootstrap_cpu();
    console::init(boot_info.framebuffer.take());
    time::init();
    log::info!("kernel {} booting", env!("CARGO_PKG_VERSION"));

    let phys_offset = boot_info
        .physical_memory_offset
        .into_option()
        .expect("the bootloader config asks for a physical memory map");
    // SAFETY: the bootloader maps all physical memory at `phys_offset`, and this is the one
    // call, made before anything else touches page tables or frames.
    unsafe { mm::init(phys_offset, &boot_info.memory_regions) };

    // SAFETY: the bootloader loaded the ramdisk at this address and length and never reuses it.
    let ramdisk = unsafe { boot_ramdisk(boot_info) };
    let options = boot_options::BootOptions::from_ramdisk(ramdisk);
    console::set_max_level(options.log_level);
    let screen_size = console::select(options.console);
    arch::symbols::init(ramdisk, boot_info.kernel_image_offset);
    log::info!("boot options: {}", options);
    sync::rcu::set_stall_timeout_ms(options.rcu_stall_ms);
    mm::vma_lock::set_enabled(options.vma_lock);
    mm::user_tables::set_page_clear(options.page_clear);
    mm::commit::set_mode(options.overcommit);
    mm::inject::configure(options.fail, options.fail_seed);
    #[cfg(feature = "ktest")]
    mm::maps::set_break_no_retry(options.tests.maps_break_no_retry);
    #[cfg(feature = "ktest")]
    mm::addrspace::set_break_no_source_lock(options.tests.mremap_break_no_source_lock);

    arch::init_interrupts(phys_offset, options.timer_hz);
    arch::start_other_cpus(
        boot_info.rsdp_addr.into_option(),
        &boot_info.memory_regions,
        #[cfg(feature = "ktest")]
        options.tests.phantom_apic_id,
    );
    mm::frame::size_cpu_caches(arch::percpu::online_count());

    sync::rcu::synchronize_rcu();
    sync::rcu::log_statistics();
    mm::slab::log_statistics();
    log::info!("boot complete");
    debug_keys::print_statistics_at_exit(options.stats);
    proc::ramdisk::init(ramdisk);
    fs::init();
    if let Some((columns, rows)) = screen_size {
        fs::tty::set_console_size(columns, rows);
    }
    start_terminal_input(boot_info.rsdp_addr.into_option());
    // Boot is complete: allocations may fail on purpose from now on (`fail=`).
    mm::inject::arm();
    if options.test {
        #[cfg(feature = "ktest")]
        ktest::run_all(&options);
        #[cfg(not(feature = "ktest"))]
        leave_without_tests();
    }
    let init = start_user_programs(&options);
    console_loop(&options, init)
}

/// The `test` option in a production kernel, which has no tests: says so and leaves QEMU with
/// the failure exit code, since no verdict can come.
#[cfg(not(feature = "ktest"))]
fn leave_without_tests() -> ! {
    log::error!(
        "test: this kernel was built without its tests; `cargo xtask test` builds and runs them"
    );
    arch::exit(arch::ExitCode::Failure)
}

/// Routes COM1's receive interrupt, sets up the PS/2 keyboard, and starts the console
/// terminal's input worker (which polls the line instead where the serial interrupt cannot be
/// routed) and the screen's refresh thread.
fn start_terminal_input(rsdp: Option<u64>) {
    console::keyboard::init(rsdp);
    console::start_screen_refresh();
    let interrupt = match arch::ioapic::route_serial(rsdp) {
        Ok(()) => console::enable_receive_interrupt(),
        Err(reason) => {
            log::warn!("tty: no serial interrupt ({reason}); polling the line every 10 ms");
            false
        }
    };
    fs::tty::start_input(interrupt);
}

/// Starts `init=` (with the arguments in `/etc/init.args`) and every `proc=` program.
fn start_user_programs(
    options: &boot_options::BootOptions,
) -> Option<alloc::sync::Arc<proc::Process>> {
    let init = options.init.and_then(|path| {
        let args_text = proc::ramdisk::find("/etc/init.args").unwrap_or_default();
        let mut args: alloc::vec::Vec<&[u8]> = alloc::vec![path.as_bytes()];
        args.extend(args_text.split(|&b| b == b'\n').filter(|a| !a.is_empty()));
        #[allow(
            clippy::needless_update,
            reason = "test kernels' options have more fields"
        )]
        let options = proc::exec::SpawnOptions {
            init: true,
            ..Default::default()
        };
        match proc::exec::spawn(path, &args, options) {
            Ok(process) => {
                log::info!("init: started {path} as process {}", process.pid);
                Some(process)
            }
            Err(error) => {
                log::error!("init: {error}");
                None
            }
        }
    });
    for path in &options.extra_processes {
        match proc::exec::spawn(
            path,
            &[path.as_bytes()],
            proc::exec::SpawnOptions::default(),
        ) {
            Ok(process) => log::info!("started {path} as process {}", process.pid),
            Err(error) => log::error!("{error}"),
        }
    }
    init
}

/// The boot task after boot: reports when init exits (with the VMA-lock counters), and leaves
/// QEMU then if the `exit` option asks (success if init's status was 0). The debug keys come
/// through the terminal's input worker (fs/tty).
fn console_loop(
    options: &boot_options::BootOptions,
    init: Option<alloc::sync::Arc<proc::Process>>,
) -> ! {
    let mut init = init;
    if init.is_none() && options.exit {
        debug_keys::print_statistics_if_asked();
        arch::exit(arch::ExitCode::Success);
    }
    log::info!(
        "debug keys on the serial console: h for help (^] and the key while a program has it open)"
    );
    loop {
        if let Some(process) = init.take_if(|p| p.exited.is_done()) {
            let status = process.exit_status();
            log::info!("init: {} exited with status {status}", process.path());
            // How its page faults were served: under a VMA lock, or under `mmap_lock`.
            mm::vma_lock::log_statistics();
            if options.exit {
                debug_keys::print_statistics_if_asked();
                arch::exit(if status == 0 {
                    arch::ExitCode::Success
                } else {
                    arch::ExitCode::Failure
                });
            }
        }
        let _ = sched::timer::sleep_ns(20_000_000);
    }
}

/// The ramdisk the bootloader loaded (a cpio archive packed by `cargo xtask`), or an empty slice.
///
/// # Safety
/// `boot_info` must be the bootloader's, whose ramdisk mapping lives for the whole run.
unsafe fn boot_ramdisk(boot_info: &BootInfo) -> &'static [u8] {
    match boot_info.ramdisk_addr.into_option() {
        // SAFETY: the caller guarantees the bootloader mapped `ramdisk_len` bytes here for good.
        Some(addr) => unsafe {
            core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize)
        },
        None => &[],
    }
}
