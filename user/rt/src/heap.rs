//! The global allocator: power-of-two size classes from 16 B to 64 KiB carved out of 1 MiB
//! mmap'd chunks, with a free list per class, behind one spin lock; anything larger is its own
//! mmap and goes back with munmap. Small blocks are never returned to the kernel.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;

use crate::sync::SpinLock;
use crate::sys;

const MIN_SHIFT: usize = 4;
const MAX_SHIFT: usize = 16;
const CLASSES: usize = MAX_SHIFT - MIN_SHIFT + 1;
const CHUNK: usize = 1 << 20;

struct State {
    free: [usize; CLASSES],
    bump: usize,
    end: usize,
}

pub struct Heap {
    state: SpinLock<State>,
}

#[global_allocator]
static HEAP: Heap = Heap {
    state: SpinLock::new(State {
        free: [0; CLASSES],
        bump: 0,
        end: 0,
    }),
};

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = size.next_power_of_two().trailing_zeros() as usize;
    (shift <= MAX_SHIFT).then_some(shift - MIN_SHIFT)
}

fn round_up(n: usize, to: usize) -> usize {
    (n + to - 1) & !(to - 1)
}

// SAFETY: blocks are handed out once until freed; the lock serialises the free lists.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            if layout.align() > sys::PAGE_SIZE {
                return null_mut();
            }
            let len = round_up(layout.size(), sys::PAGE_SIZE);
            return match sys::mmap_anon(len, sys::PROT_READ | sys::PROT_WRITE) {
                Ok(addr) => addr as *mut u8,
                Err(_) => null_mut(),
            };
        };
        let size = 1usize << (class + MIN_SHIFT);
        let mut st = self.state.lock();
        let head = st.free[class];
        if head != 0 {
            // SAFETY: a free block's first word links to the next free block.
            st.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        // Size-aligned blocks: every class's size is a power of two and a multiple of its
        // alignment, and chunks are page-aligned.
        let mut at = round_up(st.bump, size);
        if st.bump == 0 || at + size > st.end {
            let Ok(chunk) = sys::mmap_anon(CHUNK, sys::PROT_READ | sys::PROT_WRITE) else {
                return null_mut();
            };
            st.bump = chunk;
            st.end = chunk + CHUNK;
            at = chunk;
        }
        st.bump = at + size;
        at as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(&layout) else {
            let _ = sys::munmap(ptr as usize, round_up(layout.size(), sys::PAGE_SIZE));
            return;
        };
        let mut st = self.state.lock();
        // SAFETY: the block is ours again and at least 16 bytes long.
        unsafe { *(ptr as *mut usize) = st.free[class] };
        st.free[class] = ptr as usize;
    }
}
