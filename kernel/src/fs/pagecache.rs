//! The page cache of one regular file: its data, page by page, in frames of their own. `read`
//! and `write` copy through it, and `mmap` maps its frames; a page that was never written or
//! mapped reads as zeros and takes no frame (a hole). For tmpfs files the cache is the file:
//! there is no disk behind it. A page `fallocate` gave a frame stays a hole for `SEEK_DATA`,
//! `SEEK_HOLE` and `mincore` until it is written or mapped (Linux's not-uptodate folio).
//!
//! # Frames and their mappings
//! The cache owns its frames: it is the first holder of each, and every page-table entry that
//! maps one counts as one more (`mm::page_refs`, raised by [`PageCache::map_page`] under the
//! cache's lock, so a frame is never mapped after the cache let it go unless the mapper already
//! held it). A frame goes back to the allocator when its last holder lets go: the cache (when
//! truncation cuts the page off, or the file goes away) or the last mapping (munmap, exit),
//! whichever is last. So a mapping never frees a frame the cache still holds, and truncation
//! never frees a frame a mapping still shows.
//!
//! # Mappers
//! The cache knows the address spaces that map it (Linux's `i_mmap`): each VMA of the file
//! counts its address space in ([`PageCache::add_mapper`], `mm::vma`). Truncation that cuts
//! pages off first takes them out of the page map (so no fault finds them again: a fault past
//! the new end is refused, which user code sees as `SIGBUS`), then unmaps them from every
//! mapper — each address space's `mmap_lock` is taken for writing and the file's VMAs
//! write-locked, so a fault that found a page before the cut has installed it by then — and
//! only then drops the cache's hold on the frames.
//!
//! # Locks
//! The page map and the size are under one spinlock, held to look a page up, insert one or
//! copy at most a page's bytes between a frame and a kernel buffer; never across user memory.
//! The mappers have a spinlock of their own, a leaf: taken by VMA creation and freeing (under
//! the address space's `mmap_lock`) and by truncation alone, never with the other held. An
//! address space found there is pinned (`Weak::upgrade`) before the lock is released, and
//! unpinned with no lock held.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Weak;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::mm::addrspace::Mm;
use crate::mm::frame::UserUse;
use crate::mm::{PhysAddr, frame, page_refs, user_tables};
use crate::syscall::errno::{EFBIG, ENOMEM, ENOSPC, Errno};

const PAGE: u64 = 4096;

/// The largest file size (Linux's `MAX_LFS_FILESIZE` on 64-bit).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Pages held by every page cache together, and the page caches alive (statistics, and the
/// tests' check that files leave nothing behind).
static CACHED_PAGES: AtomicUsize = AtomicUsize::new(0);
static LIVE_CACHES: AtomicUsize = AtomicUsize::new(0);

/// Numbers the truncations, so that one that looks for mappers again knows whom it unmapped.
static TRUNCATIONS: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
struct Pages {
    /// Page index → frame.
    frames: BTreeMap<u64, PhysAddr>,
    /// The pages among `frames` that `fallocate` gave a frame and nothing wrote or mapped
    /// since: holes still, for whoever asks where the data is.
    unwritten: BTreeSet<u64>,
    size: u64,
}

/// An address space that maps the file.
struct Mapper {
    mm: Weak<Mm>,
    /// Its VMAs that map the file.
    vmas: usize,
    /// The last truncation that unmapped its pages.
    unmapped_by: u64,
}

/// Why a page cannot be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The page lies wholly past the end of the file.
    PastEnd,
    /// No frame for a page of a hole.
    OutOfMemory,
}

pub struct PageCache {
    pages: spin::Mutex<Pages>,
    mappers: spin::Mutex<Vec<Mapper>>,
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

/// Gives up the cache's hold on each of `frames` (no longer in its page map): frees those no
/// mapping holds.
fn release_frames(frames: &mut Vec<PhysAddr>) {
    frames.retain(|&phys| page_refs::unshare(phys));
    // SAFETY: the cache's hold was the last on each frame left: no entry maps it, and the
    // cache no longer lists it.
    unsafe { frame::free_user_frames(frames) };
    frames.clear();
}

impl Pages {
    /// The frame of page `index` for a write or a mapping (the page holds data from now on),
    /// a zeroed one inserted for a hole; `None` when no frame is left.
    fn frame_or_new(&mut self, index: u64) -> Option<PhysAddr> {
        if let Some(&phys) = self.frames.get(&index) {
            self.unwritten.remove(&index);
            return Some(phys);
        }
        let phys = user_tables::zeroed_user_frame(UserUse::Page)?.into_raw();
        // The frame is the cache's from now on (freed by truncation or the cache's drop).
        self.frames.insert(index, phys);
        CACHED_PAGES.fetch_add(1, Ordering::Relaxed);
        Some(phys)
    }

    /// Whether page `index` has a frame that was written or mapped.
    fn holds_data(&self, index: u64) -> bool {
        self.frames.contains_key(&index) && !self.unwritten.contains(&index)
    }
}

impl PageCache {
    pub fn new() -> Self {
        LIVE_CACHES.fetch_add(1, Ordering::Relaxed);
        Self {
            pages: spin::Mutex::new(Pages {
                frames: BTreeMap::new(),
                unwritten: BTreeSet::new(),
                size: 0,
            }),
            mappers: spin::Mutex::new(Vec::new()),
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
            let phys = match pages.frame_or_new(at / PAGE) {
                Some(phys) => phys,
                None if done == 0 => return Err(ENOSPC),
                None => break,
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
    /// allocated so far stay). A page given its frame here stays a hole until written or
    /// mapped; one that an earlier `fallocate` gave its frame holds data from now on (Linux
    /// initialises such a folio on the second allocation).
    pub fn allocate(&self, range: core::ops::Range<u64>, keep_size: bool) -> Result<(), Errno> {
        if range.end > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let mut pages = self.pages.lock();
        for index in range.start / PAGE..range.end.div_ceil(PAGE) {
            let new = !pages.frames.contains_key(&index);
            pages.frame_or_new(index).ok_or(ENOSPC)?;
            if new {
                pages.unwritten.insert(index);
            }
        }
        if !keep_size && range.end > pages.size {
            pages.size = range.end;
        }
        Ok(())
    }

    /// Whether page `index` holds data in the cache (`mincore`): a frame that was written or
    /// mapped.
    pub fn is_cached(&self, index: u64) -> bool {
        self.pages.lock().holds_data(index)
    }

    /// `SEEK_DATA` (`data`) or `SEEK_HOLE` from `offset`, as Linux's tmpfs answers: the start
    /// of the first page from `offset` on that holds data, or of the first that does not (the
    /// end of the file is a hole), never before `offset` nor past the end. `None` (`ENXIO`)
    /// for an offset at or past the end, or no data from it on.
    pub fn seek_data_or_hole(&self, offset: u64, data: bool) -> Option<u64> {
        let pages = self.pages.lock();
        if offset >= pages.size {
            return None;
        }
        let last = (pages.size - 1) / PAGE;
        let mut index = offset / PAGE;
        if data {
            index = *pages
                .frames
                .range(index..=last)
                .map(|(index, _)| index)
                .find(|&&index| !pages.unwritten.contains(&index))?;
        } else {
            while index <= last && pages.holds_data(index) {
                index += 1;
            }
        }
        Some((index * PAGE).clamp(offset, pages.size))
    }

    /// Clears the cached pages `indices` in place (`MADV_REMOVE`: a hole punched, the size
    /// kept); mappings of them see zeroes too.
    pub fn clear_pages(&self, indices: core::ops::Range<u64>) {
        let pages = self.pages.lock();
        for (_, &phys) in pages.frames.range(indices) {
            // SAFETY: a frame of this cache, which stays while its lock is held.
            unsafe { user_tables::clear_shared_frame(phys) };
        }
    }

    /// The frame of page `index` for a new mapping of it, with the mapping's hold taken
    /// (`page_refs::share`): whoever maps it gives the hold up when the entry goes (or at once,
    /// with `page_refs::unshare`, if it does not install it). A hole inside the file gets a
    /// zeroed frame; a page wholly past the end is refused.
    pub fn map_page(&self, index: u64) -> Result<PhysAddr, MapError> {
        let mut pages = self.pages.lock();
        if index >= pages.size.div_ceil(PAGE) {
            return Err(MapError::PastEnd);
        }
        let phys = pages.frame_or_new(index).ok_or(MapError::OutOfMemory)?;
        page_refs::share(phys);
        Ok(phys)
    }

    /// Sets the size: pages wholly past it are unmapped from every mapping and freed, the tail
    /// of the last one is zeroed.
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let (mut cut, gone) = {
            let mut pages = self.pages.lock();
            if size < pages.size
                && !size.is_multiple_of(PAGE)
                && let Some(&phys) = pages.frames.get(&(size / PAGE))
            {
                // SAFETY: the frame is the cache's and its lock is held.
                let page = unsafe { frame_bytes(phys) };
                page[(size % PAGE) as usize..].fill(0);
            }
            let gone = size.div_ceil(PAGE)..pages.size.div_ceil(PAGE);
            pages.size = size;
            let cut: Vec<PhysAddr> = pages.frames.split_off(&gone.start).into_values().collect();
            drop(pages.unwritten.split_off(&gone.start));
            (cut, gone)
        };
        CACHED_PAGES.fetch_sub(cut.len(), Ordering::Relaxed);
        if !gone.is_empty() {
            self.unmap_everywhere(gone);
        }
        release_frames(&mut cut);
        Ok(())
    }

    /// Clears every mapping of the file pages `pages` (truncation): private copies of them
    /// too, as Linux does, so the next access of any of them faults (and, past the end, gets
    /// `SIGBUS`). Mappers that join meanwhile (a fork copying a mapper's entries) are found by
    /// looking again until every mapper was visited by this truncation.
    fn unmap_everywhere(&self, pages: Range<u64>) {
        let serial = TRUNCATIONS.fetch_add(1, Ordering::Relaxed);
        loop {
            let next = self.mappers.lock().iter_mut().find_map(|mapper| {
                if mapper.unmapped_by == serial {
                    return None;
                }
                mapper.unmapped_by = serial;
                mapper.mm.upgrade()
            });
            let Some(mm) = next else {
                return;
            };
            mm.unmap_file_pages(self, pages.clone());
            // Unpinned with no lock held: the last handle tears the address space down.
            drop(mm);
        }
    }

    /// Counts one more VMA of `mm` that maps the file.
    pub fn add_mapper(&self, mm: &Mm) -> Result<(), Errno> {
        let mut mappers = self.mappers.lock();
        if let Some(mapper) = mappers
            .iter_mut()
            .find(|m| core::ptr::eq(Weak::as_ptr(&m.mm), mm))
        {
            mapper.vmas += 1;
            return Ok(());
        }
        mappers.try_reserve(1).map_err(|_| ENOMEM)?;
        mappers.push(Mapper {
            mm: mm.weak(),
            vmas: 1,
            unmapped_by: 0,
        });
        Ok(())
    }

    /// Counts one VMA of the address space `mm_id` (its [`Mm::id`]) out.
    pub fn remove_mapper(&self, mm_id: usize) {
        let mut mappers = self.mappers.lock();
        let at = mappers
            .iter()
            .position(|m| Weak::as_ptr(&m.mm) as usize == mm_id)
            .expect("a VMA of the file counted its address space in");
        mappers[at].vmas -= 1;
        if mappers[at].vmas == 0 {
            // The weak handle is dropped under the lock: it frees no address space (only a
            // strong handle's drop tears one down).
            mappers.swap_remove(at);
            // The last mapper gone, the list's memory goes too: a program's file is mapped
            // and unmapped for every run, and would otherwise keep it for good.
            if mappers.is_empty() {
                *mappers = Vec::new();
            }
        }
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        debug_assert!(
            self.mappers.get_mut().is_empty(),
            "a page cache dropped while mapped"
        );
        let mut frames: Vec<PhysAddr> = core::mem::take(&mut self.pages.get_mut().frames)
            .into_values()
            .collect();
        CACHED_PAGES.fetch_sub(frames.len(), Ordering::Relaxed);
        LIVE_CACHES.fetch_sub(1, Ordering::Relaxed);
        release_frames(&mut frames);
    }
}

/// Pages held by all page caches, and the page caches alive.
pub fn statistics() -> (usize, usize) {
    (
        CACHED_PAGES.load(Ordering::Relaxed),
        LIVE_CACHES.load(Ordering::Relaxed),
    )
}

/// Logs the page caches' size (debug key `m`, with the memory statistics).
pub fn log_statistics() {
    let (pages, caches) = statistics();
    log::info!(
        "page cache: {pages} pages ({} KiB) in {caches} files",
        pages * PAGE as usize / 1024
    );
}

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::{PAGE, statistics};
    use crate::arch::percpu;
    use crate::arch::uaccess::{read_user, write_user};
    use crate::fs::Inode;
    use crate::fs::dentry::Dentry;
    use crate::fs::file::{File, O_RDWR};
    use crate::fs::tmpfs::TmpInode;
    use crate::ktest;
    use crate::mm::mmap::{self, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
    use crate::mm::torture::{Rng, Space, address_space, run_in, start_in};
    use crate::proc::ktests::Baseline;
    use crate::syscall::errno::EFAULT;

    const PAGES: u64 = 32;
    /// Where the file is mapped shared, and privately (in the first address space).
    const SHARED: u64 = 0x4000_0000;
    const PRIVATE: u64 = 0x5000_0000;

    /// An open, unnamed tmpfs file of `PAGES` pages (a hole).
    fn new_file() -> Arc<File> {
        let inode: Arc<dyn Inode> = TmpInode::new_unnamed_file(0o600);
        let file = File::open(Dentry::unnamed("/filemap-ktest", inode), O_RDWR).expect("open");
        file.inode().truncate(PAGES * PAGE).expect("size the file");
        file
    }

    fn map(space: &Space, addr: u64, file: &Arc<File>, kind: u64) {
        let prot = PROT_READ | PROT_WRITE;
        mmap::map(
            &space.mm,
            addr,
            PAGES * PAGE,
            prot,
            kind | MAP_FIXED,
            Some(file),
            0,
        )
        .expect("map the file");
    }

    ktest! {
        timeout_ms = 60_000;
        /// Two address spaces map one file shared: a store through one is read through the
        /// other; a private mapping's store stays its own. Truncation unmaps the cut page from
        /// both (their accesses fail from then on, as user code's would with SIGBUS) while the
        /// page before it stays, and the cut frame is freed only once nothing maps it: once all
        /// is gone, frames, page-cache pages and files are back at their baseline.
        fn truncation_unmaps_the_cut_pages_from_every_mapping() {
            let baseline = Baseline::take();
            let (pages_before, _) = statistics();
            {
                let file = new_file();
                let (a, b) = (address_space("filemap-a"), address_space("filemap-b"));
                map(&a, SHARED, &file, MAP_SHARED);
                map(&a, PRIVATE, &file, MAP_PRIVATE);
                map(&b, SHARED, &file, MAP_SHARED);
                run_in(&a, || {
                    write_user(SHARED + PAGE, &0x5eedu64).expect("shared store");
                    write_user(PRIVATE + PAGE, &0x0111u64).expect("private store");
                    assert_eq!(read_user::<u64>(SHARED), Ok(0), "a hole reads as zeros");
                });
                run_in(&b, || {
                    assert_eq!(read_user::<u64>(SHARED + PAGE), Ok(0x5eed), "not shared");
                });
                assert_eq!(statistics().0 - pages_before, 2, "the pages the faults cached");
                file.inode().truncate(PAGE + 8).expect("shrink");
                file.inode().truncate(PAGE).expect("shrink to the page");
                assert_eq!(statistics().0 - pages_before, 1, "the cut page is out of the cache");
                run_in(&a, || {
                    assert_eq!(read_user::<u64>(SHARED + PAGE), Err(EFAULT), "still mapped");
                    assert_eq!(read_user::<u64>(PRIVATE + PAGE), Err(EFAULT), "copy kept");
                    assert_eq!(read_user::<u64>(SHARED), Ok(0));
                });
                run_in(&b, || {
                    assert_eq!(read_user::<u64>(SHARED + PAGE), Err(EFAULT), "still mapped");
                });
                for space in [&a, &b] {
                    space.mm.teardown();
                }
            }
            baseline.check();
        }
    }

    ktest! {
        timeout_ms = 300_000;
        /// Threads of two address spaces store and load through shared and private mappings
        /// of one file while one thread shrinks and grows the file and another forks the first
        /// address space and remaps parts of the second. A load after a store sees the store,
        /// zeros (truncation cut the page and it grew back) or a refused access (past the
        /// end); and when all is gone no frame is lost or freed twice: frames, sharing counts,
        /// page-cache pages and files are back at their baseline.
        fn faults_race_truncation_fork_and_remapping() {
            if percpu::online_count() < 2 {
                return ktest::skip("needs 2 or more CPUs");
            }
            let baseline = Baseline::take();
            {
                let file = new_file();
                let (a, b) = (address_space("filemap-a"), address_space("filemap-b"));
                map(&a, SHARED, &file, MAP_SHARED);
                map(&a, PRIVATE, &file, MAP_PRIVATE);
                map(&b, SHARED, &file, MAP_SHARED);
                let stop = Arc::new(AtomicBool::new(false));
                let wrong = Arc::new(AtomicU64::new(0));
                // Stores made, and those refused (past the end, or unmapped for a moment).
                let stores = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
                let faulters = (percpu::online_count() - 1).max(2) as u64;
                let mut done = Vec::new();
                for index in 0..faulters {
                    let (stop, wrong, stores) = (stop.clone(), wrong.clone(), stores.clone());
                    let space = if index % 2 == 0 { &a } else { &b };
                    let has_private = index % 2 == 0;
                    done.push(start_in(space, move || {
                        let mut rng = Rng(0x9e37_79b9 + index * 7919);
                        let mut count = 0u64;
                        while !stop.load(Ordering::Acquire) {
                            count += 1;
                            // Each thread its own word of the page: a shared one, and (not
                            // written through the file) a private one.
                            let private = has_private && rng.next(2) == 0;
                            let (base, word) = if private {
                                (PRIVATE, 16 + index)
                            } else {
                                (SHARED, index)
                            };
                            let addr = base + rng.next(PAGES) * PAGE + word * 8;
                            let value = (index << 48) | count;
                            let stored = write_user(addr, &value).is_ok();
                            stores[usize::from(!stored)].fetch_add(1, Ordering::Relaxed);
                            if stored {
                                let read = read_user::<u64>(addr);
                                if !matches!(read, Ok(0) | Err(EFAULT)) && read != Ok(value) {
                                    wrong.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            // Kernel code is not preempted: let the others in.
                            crate::sched::yield_now();
                        }
                    }));
                }
                let rounds = 400 * ktest::stress_factor();
                let truncator = {
                    let file = file.clone();
                    start_in(&a, move || {
                        let mut rng = Rng(0x1234_5678);
                        for _ in 0..rounds {
                            let size = rng.next(PAGES * PAGE + 1);
                            file.inode().truncate(size).expect("truncate");
                            crate::sched::yield_now();
                        }
                    })
                };
                let forker = {
                    let (a, b, file, stop) = (a.clone(), b.clone(), file.clone(), stop.clone());
                    start_in(&b.clone(), move || {
                        let mut rng = Rng(0xdead_beef);
                        while !stop.load(Ordering::Acquire) {
                            if rng.next(2) == 0 {
                                let child = a.mm.fork().expect("fork");
                                child.teardown();
                            } else {
                                // Unmap a few pages of the shared mapping and map them again,
                                // as the same pages of the file (the VMAs merge back).
                                let first = rng.next(PAGES - 4);
                                let (addr, len) = (SHARED + first * PAGE, 4 * PAGE);
                                mmap::munmap(&b.mm, addr, len).expect("munmap");
                                let prot = PROT_READ | PROT_WRITE;
                                mmap::map(&b.mm, addr, len, prot, MAP_SHARED | MAP_FIXED,
                                    Some(&file), first * PAGE)
                                    .expect("map again");
                            }
                            crate::sched::yield_now();
                        }
                    })
                };
                assert!(truncator.wait_timeout(240_000_000_000), "the truncator never finished");
                stop.store(true, Ordering::Release);
                for completion in done.iter().chain([&forker]) {
                    assert!(completion.wait_timeout(60_000_000_000), "a thread never finished");
                }
                crate::println!(
                    "# {} stores, {} refused, {rounds} truncations",
                    stores[0].load(Ordering::Relaxed),
                    stores[1].load(Ordering::Relaxed)
                );
                assert_eq!(b.mm.vma_count(), 1, "the remapped pieces did not merge back");
                for space in [&a, &b] {
                    space.mm.teardown();
                }
                assert_eq!(wrong.load(Ordering::Relaxed), 0, "a load saw another value");
            }
            baseline.check();
        }
    }
}
