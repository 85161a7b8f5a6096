//! Per-CPU data, reached through the GS base: each CPU's [`CpuBlock`] starts with a pointer to
//! itself, so `mov reg, gs:[0]` finds it from any context (no lock, no table lookup).
//!
//! CPU indices are dense (0 = bootstrap CPU, then the APs in MADT order), below [`MAX_CPUS`],
//! and index the registry [`cpu`]. A `CpuBlock` is built before its CPU starts, published in the
//! registry once, and lives for good; its fields are atomics or `Once`s, so other CPUs may read
//! it at any time. The bootstrap CPU's lives in a static (it is needed before the heap exists);
//! the others are leaked boxes.
//!
//! State that other modules keep per CPU lives in a [`PerCpu<T>`](PerCpu) of their own, not in
//! the block: one `T` per CPU index, each on a cache line of its own, so that what each CPU
//! bumps on its hot paths shares no line with another CPU's. A `PerCpu` has no lock; what
//! protects a slot is the slot type's business (atomics, or a lock inside `T`), and the rules
//! under which [`PerCpu::local`] is this CPU's slot are on that method.
//!
//! [`MAX_CPUS`] is defined once, in kernel/libs/ksync, which the crates with per-CPU state of
//! their own (rcu, slab) depend on too: the kernel and they cannot disagree on the bound.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use spin::Once;
use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

use super::gdt::CpuTables;

/// The most CPUs the kernel runs on (CPU indices are `0..MAX_CPUS`); CPU sets are 64-bit masks.
pub use ksync::MAX_CPUS;

/// One CPU's own data: what the entry paths reach through `gs:[offset]`, its identity, its
/// tables and its scheduler (see the module documentation).
#[repr(C)]
pub struct CpuBlock {
    /// This structure's own address; must stay the first field (`gs:[0]`).
    self_ptr: AtomicPtr<CpuBlock>,
    /// Top of the running task's kernel stack (`gs:[8]`): where the `SYSCALL` entry switches
    /// to. Written by this CPU at every task switch.
    pub kernel_stack_top: AtomicU64,
    /// The user RSP, saved by the `SYSCALL` entry until it is on the kernel stack (`gs:[16]`).
    pub user_rsp_scratch: AtomicU64,
    /// Dense CPU number.
    pub index: usize,
    /// The local APIC ID (x2APIC ID in x2APIC mode).
    pub apic_id: AtomicU32,
    /// Set once the CPU runs kernel code with its own tables and timer.
    pub online: AtomicBool,
    /// Local APIC timer interrupts taken.
    pub ticks: AtomicU64,
    /// Call IPIs taken (TLB shootdowns and other cross-CPU calls, see `smp::call_many`).
    pub call_interrupts: AtomicU64,
    /// Passes of the idle loop, and how many of them ended in `hlt` (bumped by this CPU with
    /// [`add_local`]).
    pub idle_passes: AtomicU64,
    pub idle_halts: AtomicU64,
    /// GDT, TSS and interrupt stacks, built by the CPU itself as it starts.
    pub tables: CpuTables,
    /// Cross-CPU function calls waiting for this CPU (see `smp::call_many`).
    pub call_queue: super::smp::CallQueue,
    /// Work for this CPU's idle loop (see `smp::run_in_idle`).
    pub idle_work: super::smp::IdleWork,
    /// IPI round trips (see `smp::ping`).
    pub ping: super::smp::PingState,
    /// Where an NMI stopped this CPU during a panic elsewhere: (RIP, RSP, RBP).
    pub stopped_at: Once<(u64, u64, u64)>,
    /// The scheduler's state for this CPU: run queue, current and idle task.
    pub sched: crate::sched::CpuSched,
}

/// Offsets the assembly entry paths use (`gs:[offset]`).
pub const KERNEL_STACK_TOP_OFFSET: usize = core::mem::offset_of!(CpuBlock, kernel_stack_top);
pub const USER_RSP_SCRATCH_OFFSET: usize = core::mem::offset_of!(CpuBlock, user_rsp_scratch);

impl CpuBlock {
    pub const fn new(index: usize, apic_id: u32) -> Self {
        Self {
            self_ptr: AtomicPtr::new(core::ptr::null_mut()),
            kernel_stack_top: AtomicU64::new(0),
            user_rsp_scratch: AtomicU64::new(0),
            index,
            apic_id: AtomicU32::new(apic_id),
            online: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            call_interrupts: AtomicU64::new(0),
            idle_passes: AtomicU64::new(0),
            idle_halts: AtomicU64::new(0),
            tables: CpuTables::new(),
            call_queue: super::smp::CallQueue::new(),
            idle_work: super::smp::IdleWork::new(),
            ping: super::smp::PingState::new(),
            stopped_at: Once::new(),
            sched: crate::sched::CpuSched::new(),
        }
    }
}

static BSP: CpuBlock = CpuBlock::new(0, 0);

static REGISTRY: [AtomicPtr<CpuBlock>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// CPUs registered so far (online or starting).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// Makes `percpu` this CPU's per-CPU data (GS base) and publishes it in the registry.
///
/// Panics unless its index is below [`MAX_CPUS`], before GS points at it: [`PerCpu::local`]
/// relies on every block GS points at having such an index.
pub fn install(percpu: &'static CpuBlock) {
    assert!(
        percpu.index < MAX_CPUS,
        "CPU index {} is not below MAX_CPUS ({MAX_CPUS})",
        percpu.index
    );
    percpu
        .self_ptr
        .store((percpu as *const CpuBlock).cast_mut(), Ordering::Relaxed);
    GsBase::write(VirtAddr::from_ptr(percpu));
    REGISTRY[percpu.index].store((percpu as *const CpuBlock).cast_mut(), Ordering::Release);
    REGISTERED.fetch_max(percpu.index + 1, Ordering::AcqRel);
}

/// The bootstrap CPU's data: installed first thing at boot.
pub fn install_bootstrap() {
    install(&BSP);
}

/// This CPU's data.
pub fn this_cpu() -> &'static CpuBlock {
    let ptr: *const CpuBlock;
    // SAFETY: GS base points at this CPU's `CpuBlock` from `install` on, whose first field holds
    // its own address; every CPU installs its data before running any other kernel code.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, preserves_flags, readonly));
        &*ptr
    }
}

/// This CPU's index, below [`MAX_CPUS`] (`install` checks it).
pub fn cpu_index() -> usize {
    this_cpu().index
}

/// Adds `delta` to a counter that only this CPU writes (a per-CPU statistic), with one
/// instruction and no `lock` prefix: an interrupt cannot split it and no other CPU writes the
/// counter, so nothing is lost, and the cache line is not locked (Linux's `this_cpu_add`).
/// Other CPUs may read the counter at any time (an aligned 8-byte load is atomic).
pub fn add_local(counter: &AtomicU64, delta: u64) {
    // SAFETY: `counter` is a valid, aligned `AtomicU64`; the unlocked add is a single
    // read-modify-write instruction, which is atomic with respect to this CPU's interrupts, and
    // the caller guarantees no other CPU writes the counter.
    unsafe {
        core::arch::asm!(
            "add qword ptr [{counter}], {delta}",
            counter = in(reg) counter.as_ptr(),
            delta = in(reg) delta,
            options(nostack),
        );
    }
}

/// The registered CPU with this index.
pub fn cpu(index: usize) -> Option<&'static CpuBlock> {
    let ptr = REGISTRY.get(index)?.load(Ordering::Acquire);
    // SAFETY: registry entries are null or point at `CpuBlock`s that live for good.
    unsafe { ptr.as_ref() }
}

/// Every registered CPU, online or still starting.
pub fn registered_cpus() -> impl Iterator<Item = &'static CpuBlock> {
    (0..REGISTERED.load(Ordering::Acquire)).filter_map(cpu)
}

/// Every registered CPU that is online.
pub fn online_cpus() -> impl Iterator<Item = &'static CpuBlock> {
    registered_cpus().filter(|c| c.online.load(Ordering::Acquire))
}

pub fn online_count() -> usize {
    online_cpus().count()
}

/// A set of CPUs by index.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct CpuSet(pub u64);

/// `{0,3,5}`.
impl core::fmt::Display for CpuSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("{")?;
        for (n, index) in self.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{index}")?;
        }
        f.write_str("}")
    }
}

impl CpuSet {
    /// Every CPU index, online or not: what a task may run on unless it is pinned.
    pub const ALL: Self = Self(u64::MAX);

    pub fn all_online() -> Self {
        Self(online_cpus().fold(0, |mask, c| mask | 1 << c.index))
    }

    /// Every registered CPU, online or still starting (Linux's "possible" CPUs).
    pub fn all_registered() -> Self {
        Self(registered_cpus().fold(0, |mask, c| mask | 1 << c.index))
    }

    pub fn contains(self, index: usize) -> bool {
        index < MAX_CPUS && self.0 & (1 << index) != 0
    }

    pub fn with(self, index: usize) -> Self {
        Self(self.0 | 1 << index)
    }

    pub fn without(self, index: usize) -> Self {
        Self(self.0 & !(1 << index))
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_CPUS).filter(move |&i| self.contains(i))
    }
}

/// One `T` for each CPU index, each on cache lines of its own (see the module documentation).
/// Built by [`per_cpu!`] (in a `static`, or anywhere else) or [`PerCpu::from_fn`]; the slots of
/// CPUs that never start stay as built.
pub struct PerCpu<T> {
    slots: [CacheAligned<T>; MAX_CPUS],
}

/// A value on cache lines of its own: aligned, and padded, to 64 bytes. The slot of a
/// [`PerCpu`].
#[repr(align(64))]
pub struct CacheAligned<T>(T);

impl<T> CacheAligned<T> {
    pub const fn new(value: T) -> Self {
        Self(value)
    }
}

impl<T> PerCpu<T> {
    /// Slot `i` is CPU `i`'s. [`per_cpu!`] is the short way to call it.
    pub const fn from_slots(slots: [CacheAligned<T>; MAX_CPUS]) -> Self {
        Self { slots }
    }

    /// CPU `i`'s slot starts as `init(i)`: for a `PerCpu` built at run time, from values that
    /// are not constants (only `rcu_barrier` needs one, and it exists only in test images).
    #[cfg(feature = "ktest")]
    pub fn from_fn(mut init: impl FnMut(usize) -> T) -> Self {
        Self {
            slots: core::array::from_fn(|cpu| CacheAligned(init(cpu))),
        }
    }

    /// This CPU's slot: the slot of the CPU that runs the call. No bounds check, one load
    /// from GS and one from the block (as [`cpu_index`]).
    ///
    /// Kernel code is not preempted, and a task changes CPUs only when it sleeps or yields: the
    /// slot stays this CPU's until the caller next does, and interrupt handlers that run
    /// meanwhile run on this CPU and get the same slot. Code that counts on being the slot's
    /// only writer (as [`add_local`] does) must write before it next sleeps or yields; the
    /// reference stays valid after that, but may then be another CPU's slot.
    pub fn local(&self) -> &T {
        // SAFETY: `cpu_index` is the index of the block GS points at, which `install` checked
        // against MAX_CPUS before pointing GS at it; the block is shared from then on, so its
        // index never changes. `slots` has MAX_CPUS entries.
        unsafe { &self.slots.get_unchecked(cpu_index()).0 }
    }

    /// Every slot, CPU 0's first: all [`MAX_CPUS`] of them, whether their CPU started or not.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|slot| &slot.0)
    }

    /// `value` summed over every slot, e.g. `COUNTERS.sum(|c| c.faults.load(Ordering::Relaxed))`.
    /// Each slot is read once, at its own moment: taken while CPUs update their slots, the sum
    /// is an approximation, exact once they are quiet.
    pub fn sum<S: core::iter::Sum>(&self, value: impl FnMut(&T) -> S) -> S {
        self.iter().map(value).sum()
    }
}

/// CPU `index`'s slot, from any CPU; panics unless `index` is below [`MAX_CPUS`].
impl<T> core::ops::Index<usize> for PerCpu<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.slots[index].0
    }
}

/// A [`PerCpu`] whose every slot starts as `$init`, a constant expression (evaluated once per
/// slot), so that it can initialise a `static`:
/// `static HITS: PerCpu<AtomicU64> = per_cpu![AtomicU64::new(0)];`
macro_rules! per_cpu {
    ($init:expr) => {
        $crate::arch::percpu::PerCpu::from_slots(
            [const { $crate::arch::percpu::CacheAligned::new($init) };
                $crate::arch::percpu::MAX_CPUS],
        )
    };
}
pub(crate) use per_cpu;
