//! The page cache of one regular file: its data, page by page, in frames of their own. `read`
//! and `write` copy through it; a page that was never written reads as zeros and takes no
//! frame (a hole). For tmpfs files the cache is the file: there is no disk behind it.
//!
//! The page map and the size are under one spinlock, held to look a page up, insert one or
//! copy at most a page's bytes between a frame and a kernel buffer; never across user memory.
//! The cache owns its frames and frees them when pages are cut off by truncation or when the
//! file goes away.

use alloc::collections::BTreeMap;

use crate::mm::PhysAddr;
use crate::mm::frame;
use crate::syscall::errno::{EFBIG, ENOSPC, Errno};

const PAGE: u64 = 4096;

/// The largest file size (Linux's `MAX_LFS_FILESIZE` on 64-bit).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

#[derive(Default)]
struct Pages {
    /// Page index → frame.
    frames: BTreeMap<u64, PhysAddr>,
    size: u64,
}

pub struct PageCache {
    pages: spin::Mutex<Pages>,
}

impl Default for PageCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The bytes of the frame at `phys`, through the direct map.
///
/// # Safety
/// The frame must be the cache's and the cache's lock held for as long as the slice lives.
unsafe fn frame_bytes<'a>(phys: PhysAddr) -> &'a mut [u8] {
    // SAFETY: the direct map covers every frame; the caller keeps the frame alive and holds
    // the lock that serialises access to it.
    unsafe { core::slice::from_raw_parts_mut(phys.to_virt() as *mut u8, PAGE as usize) }
}

impl PageCache {
    pub const fn new() -> Self {
        Self {
            pages: spin::Mutex::new(Pages {
                frames: BTreeMap::new(),
                size: 0,
            }),
        }
    }

    pub fn size(&self) -> u64 {
        self.pages.lock().size
    }

    /// Frames the file holds (`st_blocks` counts them).
    pub fn resident_pages(&self) -> u64 {
        self.pages.lock().frames.len() as u64
    }

    /// Copies up to `buf.len()` bytes from `offset`; stops at the end of the file.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let pages = self.pages.lock();
        if offset >= pages.size {
            return 0;
        }
        let count = (buf.len() as u64).min(pages.size - offset) as usize;
        let mut done = 0;
        while done < count {
            let at = offset + done as u64;
            let in_page = (at % PAGE) as usize;
            let piece = (PAGE as usize - in_page).min(count - done);
            let out = &mut buf[done..done + piece];
            match pages.frames.get(&(at / PAGE)) {
                Some(&phys) => {
                    // SAFETY: the frame is the cache's and its lock is held.
                    let page = unsafe { frame_bytes(phys) };
                    out.copy_from_slice(&page[in_page..][..piece]);
                }
                None => out.fill(0),
            }
            done += piece;
        }
        count
    }

    /// Copies `buf` in at `offset`, growing the file as needed. `ENOSPC` if no frame is left
    /// before the first byte (later ones end the write short).
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let end = offset.checked_add(buf.len() as u64).ok_or(EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let mut pages = self.pages.lock();
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let in_page = (at % PAGE) as usize;
            let piece = (PAGE as usize - in_page).min(buf.len() - done);
            let phys = match pages.frames.get(&(at / PAGE)) {
                Some(&phys) => phys,
                None => match frame::allocate_for_user() {
                    Some(new) => {
                        let phys = new.into_raw();
                        // SAFETY: the frame was just allocated and is about to be the cache's.
                        unsafe { frame_bytes(phys) }.fill(0);
                        pages.frames.insert(at / PAGE, phys);
                        phys
                    }
                    None if done == 0 => return Err(ENOSPC),
                    None => break,
                },
            };
            // SAFETY: the frame is the cache's and its lock is held.
            unsafe { &mut frame_bytes(phys)[in_page..][..piece] }
                .copy_from_slice(&buf[done..done + piece]);
            done += piece;
        }
        let written_end = offset + done as u64;
        if written_end > pages.size {
            pages.size = written_end;
        }
        Ok(done)
    }

    /// Gives every page of `range` a frame (zeroed where there was a hole) and grows the
    /// file to the range's end unless `keep_size`. `ENOSPC` when frames run out (the pages
    /// allocated so far stay).
    pub fn allocate(&self, range: core::ops::Range<u64>, keep_size: bool) -> Result<(), Errno> {
        if range.end > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let mut pages = self.pages.lock();
        for index in range.start / PAGE..range.end.div_ceil(PAGE) {
            if pages.frames.contains_key(&index) {
                continue;
            }
            let phys = frame::allocate_for_user().ok_or(ENOSPC)?.into_raw();
            // SAFETY: the frame was just allocated and is about to be the cache's.
            unsafe { frame_bytes(phys) }.fill(0);
            pages.frames.insert(index, phys);
        }
        if !keep_size && range.end > pages.size {
            pages.size = range.end;
        }
        Ok(())
    }

    /// Sets the size: pages wholly past it are freed, the tail of the last one is zeroed.
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let cut: alloc::vec::Vec<PhysAddr> = {
            let mut pages = self.pages.lock();
            if size < pages.size
                && !size.is_multiple_of(PAGE)
                && let Some(&phys) = pages.frames.get(&(size / PAGE))
            {
                // SAFETY: the frame is the cache's and its lock is held.
                let page = unsafe { frame_bytes(phys) };
                page[(size % PAGE) as usize..].fill(0);
            }
            pages.size = size;
            let first_gone = size.div_ceil(PAGE);
            let gone = pages.frames.split_off(&first_gone);
            gone.into_values().collect()
        };
        // SAFETY: the frames were the cache's alone and are no longer in it.
        unsafe { frame::free_user_frames(&cut) };
        Ok(())
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let frames: alloc::vec::Vec<PhysAddr> = core::mem::take(&mut self.pages.get_mut().frames)
            .into_values()
            .collect();
        // SAFETY: the frames were the cache's alone, and the cache is going away.
        unsafe { frame::free_user_frames(&frames) };
    }
}
