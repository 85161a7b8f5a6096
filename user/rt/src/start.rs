//! Process start: `_start`, the initial stack (argc, argv, envp, auxv), exit, panics.

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::sys;
use crate::thread::{self, ThreadBlock};

// The SysV initial stack at `_start`: rsp points at argc, then argv[0..argc], NULL, envp...,
// NULL, auxv pairs ending with AT_NULL. rsp is 16-byte aligned there by the ABI, but align it
// anyway; clear rbp so that frame-pointer walks end here.
core::arch::global_asm!(
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    ".size _start, . - _start",
    entry = sym start_rust,
);

static ARGC: AtomicUsize = AtomicUsize::new(0);
static ARGV: AtomicPtr<*const u8> = AtomicPtr::new(core::ptr::null_mut());
static ENVP: AtomicPtr<*const u8> = AtomicPtr::new(core::ptr::null_mut());
static AUXV: AtomicPtr<usize> = AtomicPtr::new(core::ptr::null_mut());

unsafe extern "Rust" {
    /// Defined by the program through `urt::main!`.
    fn __urt_main() -> i32;
}

/// Called by `_start` with the initial stack pointer.
///
/// # Safety
/// `sp` is the initial stack the kernel built.
unsafe extern "C" fn start_rust(sp: *const usize) -> ! {
    // SAFETY: the kernel lays out argc, argv, NULL, envp, NULL, auxv at sp.
    unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *mut *const u8;
        let envp = argv.add(argc + 1);
        let mut end = envp;
        while !(*end).is_null() {
            end = end.add(1);
        }
        let auxv = end.add(1) as *mut usize;
        ARGC.store(argc, Ordering::Relaxed);
        ARGV.store(argv, Ordering::Relaxed);
        ENVP.store(envp, Ordering::Relaxed);
        AUXV.store(auxv, Ordering::Relaxed);
    }
    thread::init_main_thread();
    // SAFETY: the program defines it with `urt::main!`.
    let status = unsafe { __urt_main() };
    sys::exit_group(status)
}

/// The number of arguments (argc).
pub fn argc() -> usize {
    ARGC.load(Ordering::Relaxed)
}

/// Argument `i` as bytes (without its NUL), if `i < argc`.
pub fn arg(i: usize) -> Option<&'static [u8]> {
    if i >= argc() {
        return None;
    }
    // SAFETY: argv has argc valid NUL-terminated strings that live for the whole process.
    unsafe { Some(cstr(*ARGV.load(Ordering::Relaxed).add(i))) }
}

/// Argument `i` as text (lossy: `None` if it is not UTF-8).
pub fn arg_str(i: usize) -> Option<&'static str> {
    arg(i).and_then(|a| core::str::from_utf8(a).ok())
}

/// Iterates over the arguments after argv[0], as text (non-UTF-8 arguments are skipped).
pub fn args() -> impl Iterator<Item = &'static str> {
    (1..argc()).filter_map(arg_str)
}

/// The value of auxiliary vector entry `key` (AT_PAGESZ = 6, AT_PHDR = 3, AT_RANDOM = 25...).
pub fn auxv(key: usize) -> Option<usize> {
    let mut p = AUXV.load(Ordering::Relaxed);
    if p.is_null() {
        return None;
    }
    // SAFETY: auxv is a list of (key, value) pairs ending with key 0.
    unsafe {
        while *p != 0 {
            if *p == key {
                return Some(*p.add(1));
            }
            p = p.add(2);
        }
    }
    None
}

/// The environment's entries (`NAME=VALUE`), in order.
pub fn environment() -> impl Iterator<Item = &'static [u8]> {
    let mut p = ENVP.load(Ordering::Relaxed);
    core::iter::from_fn(move || {
        // SAFETY: envp is a NULL-terminated list of NUL-terminated strings that live for the
        // whole process; `p` stops at the NULL.
        unsafe {
            if p.is_null() || (*p).is_null() {
                return None;
            }
            let entry = cstr(*p);
            p = p.add(1);
            Some(entry)
        }
    })
}

/// The environment variable `name`'s value.
pub fn env(name: &str) -> Option<&'static [u8]> {
    let mut p = ENVP.load(Ordering::Relaxed);
    if p.is_null() {
        return None;
    }
    // SAFETY: envp is a NULL-terminated list of NUL-terminated strings.
    unsafe {
        while !(*p).is_null() {
            let entry = cstr(*p);
            if entry.len() > name.len()
                && &entry[..name.len()] == name.as_bytes()
                && entry[name.len()] == b'='
            {
                return Some(&entry[name.len() + 1..]);
            }
            p = p.add(1);
        }
    }
    None
}

/// The bytes of a NUL-terminated string.
///
/// # Safety
/// `p` points at a NUL-terminated string that lives forever.
unsafe fn cstr(p: *const u8) -> &'static [u8] {
    let mut len = 0;
    // SAFETY: the caller's promise.
    unsafe {
        while *p.add(len) != 0 {
            len += 1;
        }
        core::slice::from_raw_parts(p, len)
    }
}

/// A hook the panic handler calls before printing (the KTAP harness uses it to report the
/// running test as failed).
static PANIC_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Registers `hook` to run when any thread panics, with the message.
pub fn set_panic_hook(hook: fn(&core::panic::PanicInfo<'_>)) {
    PANIC_HOOK.store(hook as *mut (), Ordering::Release);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let hook = PANIC_HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: only `set_panic_hook` stores here, always a `fn(&PanicInfo)`.
        let hook: fn(&core::panic::PanicInfo<'_>) = unsafe { core::mem::transmute(hook) };
        hook(info);
    }
    let tid = sys::gettid();
    match info.location() {
        Some(loc) => crate::eprintln!(
            "panic in thread {tid} at {}:{}: {}",
            loc.file(),
            loc.line(),
            info.message()
        ),
        None => crate::eprintln!("panic in thread {tid}: {}", info.message()),
    }
    sys::exit_group(101)
}

/// The thread block of the main thread (static: set up before the allocator is used).
pub(crate) static MAIN_BLOCK: ThreadBlock = ThreadBlock::new_main();
