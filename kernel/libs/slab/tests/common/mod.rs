//! Test doubles shared by the host tests: a page source over the std allocator, a platform with
//! a thread-local CPU id and a hand-driven grace period, and a way to give a test `'static`
//! caches that are still freed at its end.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use slab::{CacheFlags, DeferredFree, KmemCache, PAGE_SIZE, Platform};
use std::alloc::{Layout, alloc, dealloc};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Mutex;

thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
    /// The calling thread's "interrupts on" flag, as `TestPlatform` keeps it.
    static INTERRUPTS_ON: Cell<bool> = const { Cell::new(true) };
    static INTERRUPTS_OFF_CALLS: Cell<usize> = const { Cell::new(0) };
    /// `interrupts_off` calls not yet matched by `interrupts_restore`: shared locks held.
    static SHARED_LOCKS_HELD: Cell<usize> = const { Cell::new(0) };
}

/// Whether the calling thread's interrupts are on (for `TestPlatform`'s hooks).
pub fn interrupts_on() -> bool {
    INTERRUPTS_ON.with(Cell::get)
}

/// Sets the calling thread's interrupt flag, as a handler's entry would turn it off.
pub fn set_interrupts(on: bool) {
    INTERRUPTS_ON.with(|flag| flag.set(on));
}

/// How often `TestPlatform::interrupts_off` ran on the calling thread.
pub fn interrupts_off_calls() -> usize {
    INTERRUPTS_OFF_CALLS.with(Cell::get)
}

/// Makes the calling thread "CPU `id`" for every test platform.
pub fn set_cpu(id: usize) {
    CPU.with(|cpu| cpu.set(id));
}

pub fn current_cpu() -> usize {
    CPU.with(Cell::get)
}

/// Byte written over pages when they go back to the page source.
pub const FREED_PAGE_BYTE: u8 = 0xde;

/// A block of pages from the std allocator.
#[derive(Clone, Copy)]
struct Block {
    base: NonNull<u8>,
    order: u32,
}

// SAFETY: a block is plain memory owned by the page source; the pointer carries no thread
// affinity.
unsafe impl Send for Block {}

impl Block {
    fn layout(order: u32) -> Layout {
        let bytes = PAGE_SIZE << order;
        Layout::from_size_align(bytes, bytes).unwrap()
    }

    fn contains(&self, addr: usize, len: usize) -> bool {
        let start = self.base.addr().get();
        addr >= start && addr + len <= start + (PAGE_SIZE << self.order)
    }
}

#[derive(Default)]
struct PagesState {
    outstanding: HashMap<usize, Block>,
    /// Freed blocks, overwritten with `FREED_PAGE_BYTE` and kept until the source is dropped:
    /// reads of them stay defined, and with `reuse` they are handed out again (newest first).
    freed: Vec<Block>,
    allocated: usize,
    released: usize,
}

/// Naturally aligned blocks of pages, with accounting and optional immediate reuse of freed
/// blocks (which makes a premature free visible to stale readers).
pub struct Pages {
    reuse: bool,
    /// Most pages outstanding at once; `alloc` fails beyond it.
    limit: Option<usize>,
    state: Mutex<PagesState>,
}

impl Pages {
    pub fn new(reuse: bool, limit: Option<usize>) -> Self {
        Self {
            reuse,
            limit,
            state: Mutex::default(),
        }
    }

    pub fn alloc(&self, order: u32) -> Option<NonNull<u8>> {
        let mut state = self.state.lock().unwrap();
        let pages = 1 << order;
        if self
            .limit
            .is_some_and(|limit| self.outstanding_pages_locked(&state) + pages > limit)
        {
            return None;
        }
        let reused = if self.reuse {
            state
                .freed
                .iter()
                .rposition(|b| b.order == order)
                .map(|i| state.freed.remove(i))
        } else {
            None
        };
        let block = reused.unwrap_or_else(|| {
            // SAFETY: the layout has a non-zero size.
            let base = unsafe { alloc(Block::layout(order)) };
            Block {
                base: NonNull::new(base).expect("host out of memory"),
                order,
            }
        });
        state.outstanding.insert(block.base.addr().get(), block);
        state.allocated += pages;
        Some(block.base)
    }

    /// # Safety
    ///
    /// `base` came from `alloc(order)` and is not used any more.
    pub unsafe fn free(&self, base: NonNull<u8>, order: u32) {
        let mut state = self.state.lock().unwrap();
        let block = state
            .outstanding
            .remove(&base.addr().get())
            .expect("free of pages not outstanding");
        assert_eq!(block.order, order, "pages freed with the wrong order");
        // SAFETY: the block is ours again and `PAGE_SIZE << order` bytes long.
        unsafe {
            base.as_ptr()
                .write_bytes(FREED_PAGE_BYTE, PAGE_SIZE << order)
        };
        state.freed.push(block);
        state.released += 1 << order;
    }

    fn outstanding_pages_locked(&self, state: &PagesState) -> usize {
        state.outstanding.values().map(|b| 1 << b.order).sum()
    }

    pub fn outstanding_pages(&self) -> usize {
        self.outstanding_pages_locked(&self.state.lock().unwrap())
    }

    /// Pages handed back so far.
    pub fn released_pages(&self) -> usize {
        self.state.lock().unwrap().released
    }

    /// Whether `[addr, addr + len)` lies inside one outstanding block.
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        self.state
            .lock()
            .unwrap()
            .outstanding
            .values()
            .any(|b| b.contains(addr, len))
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap();
        for block in state.outstanding.values().chain(&state.freed) {
            // SAFETY: every block was allocated with this layout and is not used any more
            // (the caches using this source are gone).
            unsafe { dealloc(block.base.as_ptr(), Block::layout(block.order)) };
        }
    }
}

/// A deferred callback waiting for the test's grace period.
pub struct Deferred {
    pub node: *mut DeferredFree,
    pub callback: unsafe fn(*mut DeferredFree),
}

// SAFETY: the node is a slab header field that nobody but the platform touches until the
// callback runs; running the callback on another thread is allowed (process context).
unsafe impl Send for Deferred {}

impl Deferred {
    /// # Safety
    ///
    /// A grace period has passed since the callback was queued.
    pub unsafe fn run(self) {
        // SAFETY: per the contract of `Platform::defer_after_grace_period`.
        unsafe { (self.callback)(self.node) }
    }
}

/// A platform whose grace periods end when the test says so.
pub struct TestPlatform {
    pub pages: Pages,
    deferred: Mutex<Vec<Deferred>>,
}

impl TestPlatform {
    pub fn new(reuse: bool, limit: Option<usize>) -> Self {
        Self {
            pages: Pages::new(reuse, limit),
            deferred: Mutex::default(),
        }
    }

    pub fn pending_callbacks(&self) -> usize {
        self.deferred.lock().unwrap().len()
    }

    /// Ends a grace period: runs every callback queued so far.
    pub fn complete_grace_period(&self) {
        let ready = std::mem::take(&mut *self.deferred.lock().unwrap());
        for deferred in ready {
            // SAFETY: the test has no read sections open when it ends a grace period.
            unsafe { deferred.run() };
        }
    }
}

impl Platform for TestPlatform {
    fn cpu_id(&self) -> usize {
        current_cpu()
    }

    fn alloc_pages(&self, order: u32) -> Option<NonNull<u8>> {
        assert_no_shared_lock();
        self.pages.alloc(order)
    }

    unsafe fn free_pages(&self, pages: NonNull<u8>, order: u32) {
        assert_no_shared_lock();
        // SAFETY: forwarded contract.
        unsafe { self.pages.free(pages, order) }
    }

    unsafe fn defer_after_grace_period(
        &self,
        node: *mut DeferredFree,
        callback: unsafe fn(*mut DeferredFree),
    ) {
        assert_no_shared_lock();
        self.deferred
            .lock()
            .unwrap()
            .push(Deferred { node, callback });
    }

    fn interrupts_off(&self) -> bool {
        INTERRUPTS_OFF_CALLS.with(|calls| calls.set(calls.get() + 1));
        SHARED_LOCKS_HELD.with(|held| held.set(held.get() + 1));
        INTERRUPTS_ON.with(|flag| flag.replace(false))
    }

    fn interrupts_restore(&self, were_on: bool) {
        SHARED_LOCKS_HELD.with(|held| held.set(held.get() - 1));
        if were_on {
            set_interrupts(true);
        }
    }
}

/// The cache calls the platform's page and grace-period functions only without its shared lock.
fn assert_no_shared_lock() {
    assert_eq!(
        SHARED_LOCKS_HELD.with(Cell::get),
        0,
        "the platform was called with the shared lock held"
    );
}

/// A leaked box that is reclaimed when dropped: a `'static` reference for the duration of a
/// test, as `KmemCache::alloc` needs.
pub struct Static<T: 'static> {
    ptr: NonNull<T>,
}

impl<T> Static<T> {
    /// # Safety
    ///
    /// No reference returned by [`Static::get`] is used after this `Static` is dropped.
    pub unsafe fn new(value: T) -> Self {
        Self {
            ptr: NonNull::from(Box::leak(Box::new(value))),
        }
    }

    pub fn get(&self) -> &'static T {
        // SAFETY: the box lives until `drop`, and by `new`'s contract nobody uses the
        // reference after that.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for Static<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` and is reclaimed once.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

// SAFETY: `Static<T>` is shared ownership of a `T` behind a pointer, like `&T`.
unsafe impl<T: Sync> Sync for Static<T> {}
// SAFETY: as above; dropping it on another thread drops the `T` there, which `Send` allows.
unsafe impl<T: Sync + Send> Send for Static<T> {}

/// A cache with its platform, dropped in that order at the end of a test.
pub struct Fixture {
    pub cache: Static<KmemCache<TestPlatform>>,
    pub platform: Static<TestPlatform>,
}

impl Fixture {
    /// A cache of [`Obj`] with its constructor and check, `flags`, and optionally the free link
    /// at `link_offset` inside the object.
    pub fn new(flags: CacheFlags, link_offset: Option<usize>, platform: TestPlatform) -> Self {
        // SAFETY: the fixture drops the cache before the platform, and tests use neither
        // after dropping the fixture.
        let platform = unsafe { Static::new(platform) };
        let mut cache = KmemCache::new(
            "test_obj",
            size_of::<Obj>(),
            align_of::<Obj>(),
            flags,
            Some(obj_ctor),
            Some(obj_check),
            platform.get(),
        );
        if let Some(offset) = link_offset {
            cache = cache.with_free_link_offset(offset);
        }
        // SAFETY: as above.
        let cache = unsafe { Static::new(cache) };
        Self { cache, platform }
    }

    pub fn cache(&self) -> &'static KmemCache<TestPlatform> {
        self.cache.get()
    }

    pub fn platform(&self) -> &'static TestPlatform {
        self.platform.get()
    }
}

pub const OBJ_MAGIC: u64 = 0x0b1e_c7ed_0b1e_c7ed;

/// The test object: the constructor sets `magic` and a fresh `serial`, and zeroes `payload`;
/// the constructed state is `magic` intact and `payload` zero. `spare` is what tests that put
/// the free link inside the object use for it (offset [`Obj::SPARE_OFFSET`]).
#[repr(C)]
pub struct Obj {
    pub magic: u64,
    pub serial: u64,
    pub payload: [u64; 2],
    pub spare: u64,
}

impl Obj {
    pub const SPARE_OFFSET: usize = std::mem::offset_of!(Obj, spare);
}

thread_local! {
    /// Per object address: how often the constructor ran there, and the serial it gave.
    static CTORS: RefCell<HashMap<usize, (u32, u64)>> = RefCell::default();
    static NEXT_SERIAL: Cell<u64> = const { Cell::new(1) };
}

/// # Safety
///
/// `p` is valid for writes of an `Obj` and aligned.
pub unsafe fn obj_ctor(p: *mut u8) {
    let serial = NEXT_SERIAL.with(|n| n.replace(n.get() + 1));
    // SAFETY: per the contract.
    unsafe {
        p.cast::<Obj>().write(Obj {
            magic: OBJ_MAGIC,
            serial,
            payload: [0; 2],
            spare: 0,
        })
    };
    CTORS.with(|c| {
        let mut c = c.borrow_mut();
        let entry = c.entry(p.addr()).or_insert((0, 0));
        *entry = (entry.0 + 1, serial);
    });
}

/// # Safety
///
/// `p` points to an `Obj`.
pub unsafe fn obj_check(p: *const u8) -> bool {
    // SAFETY: per the contract.
    let obj = unsafe { &*p.cast::<Obj>() };
    obj.magic == OBJ_MAGIC && obj.payload == [0; 2]
}

/// `(runs, last serial)` of the constructor at `addr` on this thread.
pub fn ctor_record(addr: usize) -> Option<(u32, u64)> {
    CTORS.with(|c| c.borrow().get(&addr).copied())
}

/// Constructor runs on this thread so far.
pub fn ctor_runs() -> usize {
    CTORS.with(|c| c.borrow().values().map(|&(runs, _)| runs as usize).sum())
}

/// Forgets this thread's constructor log (between property-test cases, whose pages may reuse
/// addresses of an earlier case's).
pub fn reset_ctor_log() {
    CTORS.with(|c| c.borrow_mut().clear());
}
