//! Threads: clone(2) with an mmap'd stack (guard page below it) and a thread block as TLS.
//!
//! Every thread's FS base points at its [`ThreadBlock`], whose first word points at itself
//! (the x86_64 TLS ABI convention, so `mov rax, fs:0` finds the block). The main thread's
//! block is static and installed with `arch_prctl(ARCH_SET_FS)` before `main`; a new thread's
//! block sits at the top of its stack mapping and is installed by `CLONE_SETTLS`.
//!
//! The block's `tid` word is both the `CLONE_PARENT_SETTID` target (the kernel stores the new
//! thread's id there before clone returns) and the `CLONE_CHILD_CLEARTID` target (the kernel
//! writes 0 there when the thread exits and does a FUTEX_WAKE on it). [`JoinHandle::join`]
//! waits for that 0 with FUTEX_WAIT, shared (not `FUTEX_PRIVATE_FLAG`), because Linux wakes the
//! clear-child-tid futex with a shared key.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::sys::{self, Errno};

/// The flags of a thread (what pthread_create passes).
pub const THREAD_FLAGS: usize = sys::CLONE_VM
    | sys::CLONE_FS
    | sys::CLONE_FILES
    | sys::CLONE_SIGHAND
    | sys::CLONE_THREAD
    | sys::CLONE_SYSVSEM
    | sys::CLONE_SETTLS
    | sys::CLONE_PARENT_SETTID
    | sys::CLONE_CHILD_CLEARTID;

const DEFAULT_STACK: usize = 256 * 1024;

/// Per-thread data, reached through FS.
#[repr(C, align(64))]
pub struct ThreadBlock {
    /// Points at this block (fs:0).
    self_ptr: AtomicUsize,
    /// The thread id: set by CLONE_PARENT_SETTID / CLONE_CHILD_SETTID, cleared at exit.
    pub tid: AtomicU32,
    _pad: u32,
    /// A free word for the thread's own use (tests).
    pub user: AtomicUsize,
    /// What the new thread runs; taken by the thread when it starts.
    start: UnsafeCell<Option<Box<dyn FnOnce() + Send>>>,
}

// SAFETY: `start` is written by the creator before clone and taken by the new thread after;
// everything else is atomic.
unsafe impl Sync for ThreadBlock {}

impl ThreadBlock {
    pub(crate) const fn new_main() -> Self {
        Self {
            self_ptr: AtomicUsize::new(0),
            tid: AtomicU32::new(0),
            _pad: 0,
            user: AtomicUsize::new(0),
            start: UnsafeCell::new(None),
        }
    }

    /// This block's address (what FS must hold).
    pub fn addr(&self) -> usize {
        self as *const Self as usize
    }
}

/// Installs the main thread's block as its FS base.
pub(crate) fn init_main_thread() {
    let block = &crate::start::MAIN_BLOCK;
    block.self_ptr.store(block.addr(), Ordering::Relaxed);
    block.tid.store(sys::gettid() as u32, Ordering::Relaxed);
    if sys::arch_prctl(sys::ARCH_SET_FS, block.addr()).is_err() {
        crate::eprintln!("urt: arch_prctl(ARCH_SET_FS) failed; threads will not work");
    }
}

/// The value at fs:0, which is the calling thread's block address.
pub fn fs0() -> usize {
    let value: usize;
    // SAFETY: reads one word at FS base, which every urt thread has set to its block.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) value, options(nostack, readonly, preserves_flags));
    }
    value
}

/// The calling thread's block.
pub fn current() -> &'static ThreadBlock {
    // SAFETY: fs:0 holds the address of the thread's block, which outlives the thread.
    unsafe { &*(fs0() as *const ThreadBlock) }
}

// The new thread starts here with rsp at its stack top, where the creator put the entry
// function and its argument: pop both and call.
// urt_clone(flags, stack, ptid, ctid, tls) -> tid or -errno (SysV: rdi, rsi, rdx, rcx, r8).
core::arch::global_asm!(
    ".globl urt_clone",
    ".type urt_clone, @function",
    "urt_clone:",
    "mov r10, rcx",
    "mov eax, 56",
    "syscall",
    "test rax, rax",
    "jnz 2f",
    "xor ebp, ebp",
    "pop rax",
    "pop rdi",
    "call rax",
    "ud2",
    "2:",
    "ret",
    ".size urt_clone, . - urt_clone",
);

// The same for clone3: urt_clone3(args, size) -> tid or -errno; the child starts on the
// stack `args` names, where the creator put the entry function and its argument.
core::arch::global_asm!(
    ".globl urt_clone3",
    ".type urt_clone3, @function",
    "urt_clone3:",
    "mov eax, 435",
    "syscall",
    "test rax, rax",
    "jnz 2f",
    "xor ebp, ebp",
    "pop rax",
    "pop rdi",
    "call rax",
    "ud2",
    "2:",
    "ret",
    ".size urt_clone3, . - urt_clone3",
);

unsafe extern "C" {
    fn urt_clone(flags: usize, stack: usize, ptid: usize, ctid: usize, tls: usize) -> usize;
    fn urt_clone3(args: *const sys::CloneArgs, size: usize) -> usize;
}

/// Puts `entry` and `arg` on the 16-byte aligned `stack_top` for the child to pop, and
/// returns the child's initial stack pointer.
///
/// # Safety
/// The 16 bytes below `stack_top` are writable and unused.
unsafe fn push_entry(stack_top: usize, entry: extern "C" fn(usize) -> !, arg: usize) -> usize {
    let sp = (stack_top & !15) - 16;
    // SAFETY: the caller's promise.
    unsafe {
        *(sp as *mut usize) = entry as usize;
        *((sp + 8) as *mut usize) = arg;
    }
    sp
}

/// `clone(flags, stack, ptid, ctid, tls)` whose child runs `entry(arg)` on the stack that
/// ends at `stack_top`: for children that share the caller's memory (`CLONE_VM`, `CLONE_VFORK`)
/// without running on its stack. Returns what the caller's clone returned.
///
/// # Safety
/// The memory below `stack_top` is a stack nothing else uses until the child has exited or
/// exec'd. `entry` never returns, and with `CLONE_VM` touches only memory meant to be shared
/// (atomics), without the heap; without `CLONE_SETTLS` it runs with the caller's thread block.
pub unsafe fn clone_on_stack(
    flags: usize,
    stack_top: usize,
    ptid: usize,
    ctid: usize,
    tls: usize,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> Result<usize, Errno> {
    // SAFETY: the caller's promises.
    unsafe {
        let sp = push_entry(stack_top, entry, arg);
        sys::decode(urt_clone(flags, sp, ptid, ctid, tls))
    }
}

/// `clone3(args)` whose child runs `entry(arg)` on the stack `stack_base..stack_top` (this
/// sets `args.stack` and `args.stack_size`). Returns what the caller's clone3 returned.
///
/// # Safety
/// As [`clone_on_stack`].
pub unsafe fn clone3_on_stack(
    args: &mut sys::CloneArgs,
    stack_base: usize,
    stack_top: usize,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> Result<usize, Errno> {
    // SAFETY: the caller's promises.
    unsafe {
        let sp = push_entry(stack_top, entry, arg);
        args.stack = stack_base as u64;
        args.stack_size = (sp - stack_base) as u64;
        sys::decode(urt_clone3(args, core::mem::size_of::<sys::CloneArgs>()))
    }
}

extern "C" fn thread_entry(block: *const ThreadBlock) -> ! {
    // SAFETY: the creator filled `start` before clone and never touches it again.
    let start = unsafe { (*(*block).start.get()).take() };
    if let Some(f) = start {
        f();
    }
    sys::exit_thread(0)
}

/// Where a thread's result waits for `join`.
struct Packet<T> {
    result: UnsafeCell<Option<T>>,
}

/// Options for a new thread.
pub struct Builder {
    stack_size: usize,
    flags: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        Self {
            stack_size: DEFAULT_STACK,
            flags: THREAD_FLAGS,
        }
    }

    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The clone flags (default [`THREAD_FLAGS`]). Without `CLONE_CHILD_CLEARTID` the thread
    /// cannot be joined (`join` would wait forever); without `CLONE_SETTLS` the thread runs on
    /// its parent's FS and `current()` lies.
    pub fn flags(mut self, flags: usize) -> Self {
        self.flags = flags;
        self
    }

    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, Errno>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let page = sys::PAGE_SIZE;
        let stack = (self.stack_size + page - 1) & !(page - 1);
        let len = stack + 2 * page;
        let base = sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE)?;
        // The guard page: a stack overflow faults instead of running into other memory.
        if let Err(e) = sys::mprotect(base, page, sys::PROT_NONE) {
            let _ = sys::munmap(base, len);
            return Err(e);
        }
        let block_addr = (base + len - core::mem::size_of::<ThreadBlock>()) & !63;
        let packet: Box<Packet<T>> = Box::new(Packet {
            result: UnsafeCell::new(None),
        });
        let slot = &*packet as *const Packet<T> as usize;
        let start: Box<dyn FnOnce() + Send> = Box::new(move || {
            let value = f();
            // SAFETY: the joiner reads the slot only after this thread has exited.
            unsafe { *(*(slot as *const Packet<T>)).result.get() = Some(value) };
        });
        // SAFETY: block_addr is inside the fresh mapping, 64-byte aligned, unused.
        let block = unsafe {
            let block = block_addr as *mut ThreadBlock;
            block.write(ThreadBlock {
                self_ptr: AtomicUsize::new(block_addr),
                // Not 0 until the thread has exited, even without CLONE_PARENT_SETTID.
                tid: AtomicU32::new(u32::MAX),
                _pad: 0,
                user: AtomicUsize::new(0),
                start: UnsafeCell::new(Some(start)),
            });
            &*block
        };
        let sp = (block_addr - 16) & !15;
        // SAFETY: the two words below the block are in the mapping and unused.
        unsafe {
            *(sp as *mut usize) = thread_entry as extern "C" fn(*const ThreadBlock) -> ! as usize;
            *((sp + 8) as *mut usize) = block_addr;
        }
        let tid_word = block.tid.as_ptr() as usize;
        // SAFETY: the new thread runs on its own stack and only touches its block and the
        // closure; the mapping stays until join has seen the thread exit.
        let ret = unsafe { urt_clone(self.flags, sp, tid_word, tid_word, block_addr) };
        match sys::decode(ret) {
            Ok(tid) => Ok(JoinHandle {
                block: block_addr,
                base,
                len,
                tid: tid as u32,
                packet,
            }),
            Err(e) => {
                // SAFETY: the clone failed, so nothing else uses the block.
                unsafe { drop((*block.start.get()).take()) };
                let _ = sys::munmap(base, len);
                Err(e)
            }
        }
    }
}

/// Starts a thread running `f` with the default stack and flags; panics if clone fails.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(e) => panic!("clone failed: {e}"),
    }
}

/// A running thread; `join` waits for it and returns its result.
pub struct JoinHandle<T> {
    block: usize,
    base: usize,
    len: usize,
    tid: u32,
    packet: Box<Packet<T>>,
}

impl<T> JoinHandle<T> {
    /// The thread id clone returned.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// The thread's block (its FS base).
    pub fn block(&self) -> &ThreadBlock {
        // SAFETY: the mapping stays until join.
        unsafe { &*(self.block as *const ThreadBlock) }
    }

    /// Whether the kernel has cleared the thread's tid word (it exited).
    pub fn is_finished(&self) -> bool {
        self.block().tid.load(Ordering::Acquire) == 0
    }

    /// Waits until the thread has exited (its tid word is 0) and returns its result.
    pub fn join(self) -> T {
        let tid = self.tid;
        match self.join_timeout(u64::MAX) {
            Ok(Some(value)) => value,
            _ => panic!("thread {tid} exited without a result"),
        }
    }

    /// Waits until the thread has exited, at most `timeout_ns` (then the handle comes back);
    /// the result is `None` if the thread ended through exit(2) instead of returning.
    pub fn join_timeout(self, timeout_ns: u64) -> Result<Option<T>, Self> {
        let deadline = sys::monotonic_ns().saturating_add(timeout_ns);
        loop {
            let word = &self.block().tid;
            let tid = word.load(Ordering::Acquire);
            if tid == 0 {
                break;
            }
            let now = sys::monotonic_ns();
            if now >= deadline {
                return Err(self);
            }
            let wait = (deadline - now).min(1_000_000_000);
            let ts = sys::Timespec::from_nanos(wait);
            // Shared futex: the kernel's clear-child-tid wake uses a shared key.
            let _ = sys::futex(
                word.as_ptr() as usize,
                sys::FUTEX_WAIT,
                tid as usize,
                &raw const ts as usize,
                0,
                0,
            );
        }
        // SAFETY: the thread has exited, so it no longer touches the packet or the mapping.
        let value = unsafe { (*self.packet.result.get()).take() };
        let _ = sys::munmap(self.base, self.len);
        Ok(value)
    }
}
