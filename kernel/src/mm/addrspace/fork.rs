//! Fork's copy of an address space (Linux's `dup_mmap`), with copy-on-write.
//!
//! The parent's `mmap_lock` is held for writing throughout, and **every** parent VMA is
//! write-locked before its page-table entries are copied: a fault under a VMA read lock
//! (which needs no `mmap_lock`) must not run in the middle of the copy. Without that lock a
//! write fault could make a page writable again, or install a fresh page, after fork copied
//! its entry — the parent's later writes would then reach the child (Linux 6.4 shipped per-VMA
//! locking with exactly that hole; fixed by "fork: lock VMAs of the parent process when
//! forking"). The vmalock crate's loom model `fork_against_write_fault` shows it.
//!
//! Each child VMA is a field-by-field copy ([`Vma::dup`], never the lock words), write-locked
//! and attached by the child's own write session once complete; the child's tree is published
//! in one update. Entries:
//! - a private page is write-protected in the parent (atomically, so the hardware's accessed
//!   and dirty bits are kept) and mapped read-only in the child; the frame's sharing count
//!   ([`page_refs`]) goes up. The first write on either side copies it, or, once the other
//!   side let go, takes it back in place (see the fault handler);
//! - a shared page is mapped as it is in both, and counted too. Shared anonymous memory has
//!   no backing object here, so fork first gives every page of a shared anonymous VMA a frame
//!   in the parent (otherwise parent and child would later fault in different pages); a shared
//!   VMA of a file needs none: both fault their missing pages in from the file's page cache.
//!   A private VMA of a file is copied like any private one (its pages still the cache's are
//!   read-only anyway); the child's VMA takes its own reference to the file;
//! - the zero page is mapped as it is, and so are guard markers (`MADV_GUARD_INSTALL`);
//! - `MADV_DONTFORK` ranges are left out of the child, `MADV_WIPEONFORK` ones give it fresh
//!   zero-filled memory; the child's VMAs are not locked (`mlock`).
//!
//! Each VMA copied is charged to the commit count as its own mapping (mm/commit.rs); a refused
//! charge fails the fork with `ENOMEM`.
//!
//! Before the parent's VMA locks end (with its write session), its stale writable
//! translations are shot down on every CPU that has the address space loaded: from then on,
//! a parent thread that writes a shared page faults and copies.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::Ordering;

use super::{Mm, MmWriteGuard, charged_pages, entry_flags};
use crate::arch::syscall::USER_END;
use crate::mm::commit;
use crate::mm::frame::UserUse;
use crate::mm::page_refs;
use crate::mm::pte::{GUARD_ENTRY, MAPS_PAGE, PRESENT, WRITABLE, address, entry};
use crate::mm::user_tables;
use crate::mm::vma::{VM_DONTCOPY, VM_SHARED, VM_WIPEONFORK, Vma};
use crate::mm::vma_tree::RcuReclaim;
use crate::mm::zero_page;
use crate::syscall::errno::{ENOMEM, Errno};

impl Mm {
    /// A copy of this address space for a forked child. On `ENOMEM` nothing of the child
    /// remains, and the parent is as it was, save pages of shared mappings populated and
    /// private pages write-protected (both invisible to its threads).
    pub fn fork(&self) -> Result<Arc<Mm>, Errno> {
        let child = Mm::new().ok_or(ENOMEM)?;
        let parent = self.write();
        let copied = {
            let child_locked = child.write();
            let copied = parent.copy_into(&child_locked);
            child_locked.set_brk(self.brk_range());
            copied
        };
        // The parent's VMA write locks end here: its threads fault again, and copy.
        drop(parent);
        // On failure the child is torn down (dropped), giving back what it was given.
        copied.map(|()| child)
    }
}

impl MmWriteGuard<'_> {
    /// Copies every VMA of this (parent) address space and its entries into `child`, then
    /// shoots down the parent's translations. On failure the VMAs copied so far are still
    /// published, so that tearing the child down frees them and their pages.
    fn copy_into(&self, child: &MmWriteGuard) -> Result<(), Errno> {
        let parent = self.mm;
        let mut copies = Vec::new();
        let mut result = Ok(());
        let mut protected = false;
        for vma in self.vmas_in(0..USER_END) {
            self.write_lock_vma(vma);
            let flags = vma.flags();
            if flags & VM_DONTCOPY != 0 {
                continue;
            }
            let charge = charged_pages(flags, vma.pages());
            if let Err(error) = commit::charge(charge) {
                result = Err(error);
                break;
            }
            // From here the copy carries the charge: tearing the child down gives it back.
            let Some(copy) = Vma::dup(vma, child.mm) else {
                commit::uncharge(charge);
                result = Err(ENOMEM);
                break;
            };
            let copy_ref = child.vma(copy);
            child.write_lock_vma(copy_ref);
            copy_ref.lock.vma_mark_attached(&child.mm.lock_seq);
            copies.push((vma.start()..vma.end(), copy));
            if flags & VM_WIPEONFORK != 0 && flags & VM_SHARED == 0 {
                continue;
            }
            let copied = if flags & VM_SHARED != 0 && vma.file().is_none() {
                self.populate_shared(vma, vma.start()..vma.end())
                    .and_then(|()| child.copy_entries(parent, vma))
            } else {
                child.copy_entries(parent, vma)
            };
            match copied {
                Ok(wrote_protected) => protected |= wrote_protected,
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        if !copies.is_empty() {
            child
                .mm
                .tree
                .replace(0..USER_END, &copies, &RcuReclaim, |_, _| {
                    unreachable!("a new address space has no VMA to replace")
                })
                .expect("the copies are the parent's VMAs: sorted and disjoint");
        }
        if protected {
            parent.shoot_down(&(0..USER_END));
        }
        result
    }

    /// Copies the entries of `vma` (of `parent`, write-locked) into this (child) address
    /// space: shared pages as they are, private ones write-protected on both sides. Returns
    /// whether a parent entry lost its write permission (a shootdown is due).
    fn copy_entries(&self, parent: &Mm, vma: &Vma) -> Result<bool, Errno> {
        let shared = vma.flags() & VM_SHARED != 0;
        let zero = zero_page();
        let mut protected = false;
        let mut pages = 0i64;
        let mut copy = |slot: &core::sync::atomic::AtomicU64| {
            let mut current = slot.load(Ordering::Acquire);
            let frame = address(current);
            if frame == zero || current == GUARD_ENTRY {
                return current;
            }
            if !shared && current & WRITABLE != 0 {
                // Atomically: the CPU may set the accessed or dirty bit meanwhile.
                current = slot.fetch_and(!WRITABLE, Ordering::AcqRel) & !WRITABLE;
                protected = true;
            }
            page_refs::share(frame);
            pages += 1;
            current
        };
        // SAFETY: both guards hold their `mmap_lock` for writing; `vma` is write-locked and
        // its copy in the child is write-locked and not yet published: no fault runs in the
        // range of either.
        let copied = unsafe {
            user_tables::copy_range(
                parent.root(),
                self.mm.root(),
                vma.start(),
                vma.end(),
                vma.start(),
                &mut copy,
            )
        };
        self.mm.resident_pages.add(pages);
        copied.map(|()| protected).map_err(|_| ENOMEM)
    }

    /// Gives every page of `range` of the shared VMA `vma` (write-locked) its own frame in
    /// this address space, replacing missing entries and the zero page, so that another
    /// mapping (a fork's child, an mremap copy) can share every page with it.
    pub(super) fn populate_shared(&self, vma: &Vma, range: Range<u64>) -> Result<(), Errno> {
        let flags = vma.flags();
        let zero = zero_page();
        for page in range.step_by(4096) {
            // SAFETY: this guard holds `mmap_lock` for writing, so the tables stay.
            let slot =
                unsafe { user_tables::lookup_or_create(self.mm.root(), page) }.ok_or(ENOMEM)?;
            let current = slot.load(Ordering::Acquire);
            if current & MAPS_PAGE != 0 && address(current) != zero {
                continue;
            }
            let fresh = user_tables::zeroed_user_frame(UserUse::Page).ok_or(ENOMEM)?;
            // The VMA is write-locked: no fault changes the entry meanwhile.
            slot.store(
                entry(fresh.into_raw(), entry_flags(flags, true)),
                Ordering::Release,
            );
            if current & PRESENT != 0 {
                // It mapped the zero page: some CPU may still translate to it.
                self.mm.flush_page_everywhere(page);
            }
            self.mm.resident_pages.add(1);
        }
        Ok(())
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use crate::arch::uaccess::{read_user, write_user};
    use crate::ktest;
    use crate::mm::mmap::{
        self, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
    };
    use crate::mm::page_refs;
    use crate::mm::torture::{Space, address_space, run_in, space_for};

    const PAGE: u64 = 4096;
    const PRIVATE: u64 = 0x4000_0000;
    const PRIVATE_PAGES: u64 = 64;
    const SHARED: u64 = 0x5000_0000;
    const SHARED_PAGES: u64 = 8;
    const DONTFORK: u64 = 0x6000_0000;
    const WIPEONFORK: u64 = 0x6100_0000;
    const MADV_DONTFORK: u64 = 10;
    const MADV_WIPEONFORK: u64 = 18;

    fn map(space: &Space, addr: u64, pages: u64, shared: bool) {
        let kind = if shared { MAP_SHARED } else { MAP_PRIVATE };
        mmap::mmap(
            &space.mm,
            addr,
            pages * PAGE,
            PROT_READ | PROT_WRITE,
            kind | MAP_ANONYMOUS | MAP_FIXED,
            u64::MAX,
            0,
        )
        .expect("map");
    }

    ktest! {
        timeout_ms = 120_000;
        /// A fork's child sees the parent's memory as it was at the fork, and from then on each
        /// side's writes to private pages stay its own (copy on write, in both directions,
        /// through a fork of the fork too), while shared pages stay shared; `MADV_DONTFORK`
        /// leaves a range out of the child and `MADV_WIPEONFORK` gives it zeroes. Once all are
        /// torn down no frame is counted as shared any more.
        fn fork_copies_on_write_and_shares_shared_pages() {
            let sharing_before = page_refs::shared_frames();
            let parent = address_space("fork-parent");
            map(&parent, PRIVATE, PRIVATE_PAGES, false);
            map(&parent, SHARED, SHARED_PAGES, true);
            map(&parent, DONTFORK, 1, false);
            map(&parent, WIPEONFORK, 1, false);
            mmap::madvise(&parent.mm, DONTFORK, PAGE, MADV_DONTFORK).expect("dontfork");
            mmap::madvise(&parent.mm, WIPEONFORK, PAGE, MADV_WIPEONFORK).expect("wipeonfork");
            run_in(&parent, || {
                // Every other private page written; the rest only read (the zero page).
                for page in 0..PRIVATE_PAGES {
                    let addr = PRIVATE + page * PAGE;
                    if page % 2 == 0 {
                        write_user(addr, &(0x1000 + page)).expect("parent write");
                    } else {
                        assert_eq!(read_user::<u64>(addr), Ok(0));
                    }
                }
                // One shared page written before the fork; the others first touched after.
                write_user(SHARED, &0x2000u64).expect("shared write");
                write_user(DONTFORK, &0x88u64).expect("dontfork write");
                write_user(WIPEONFORK, &0x77u64).expect("wipeonfork write");
            });

            let (_, _, copies_before, _, _) = crate::mm::fault::totals();
            let child = space_for("fork-child", parent.mm.fork().expect("fork"));
            assert_eq!(
                child.mm.resident_pages.sum(),
                parent.mm.resident_pages.sum() - 2,
                "the child maps the parent's pages but the two left out"
            );
            run_in(&child, || {
                for page in 0..PRIVATE_PAGES {
                    let want = if page % 2 == 0 { 0x1000 + page } else { 0 };
                    assert_eq!(read_user::<u64>(PRIVATE + page * PAGE), Ok(want));
                }
                assert_eq!(read_user::<u64>(SHARED), Ok(0x2000));
                assert!(read_user::<u64>(DONTFORK).is_err(), "MADV_DONTFORK range copied");
                assert_eq!(read_user::<u64>(WIPEONFORK), Ok(0), "MADV_WIPEONFORK range kept");
                for page in 0..PRIVATE_PAGES {
                    write_user(PRIVATE + page * PAGE, &(0xc000 + page)).expect("child write");
                }
                for page in 0..SHARED_PAGES {
                    write_user(SHARED + page * PAGE, &(0xcc00 + page)).expect("child shared");
                }
            });
            let grandchild =
                space_for("fork-grandchild", child.mm.fork().expect("fork of fork"));
            run_in(&parent, || {
                for page in 0..PRIVATE_PAGES {
                    let want = if page % 2 == 0 { 0x1000 + page } else { 0 };
                    assert_eq!(
                        read_user::<u64>(PRIVATE + page * PAGE),
                        Ok(want),
                        "the child's write reached the parent"
                    );
                }
                for page in 0..SHARED_PAGES {
                    assert_eq!(read_user::<u64>(SHARED + page * PAGE), Ok(0xcc00 + page));
                }
                write_user(PRIVATE, &0xdeadu64).expect("parent write after fork");
            });
            run_in(&grandchild, || {
                assert_eq!(read_user::<u64>(PRIVATE), Ok(0xc000), "not the child's page");
                write_user(PRIVATE + PAGE, &0x6666u64).expect("grandchild write");
                assert_eq!(read_user::<u64>(SHARED + PAGE), Ok(0xcc01));
            });
            run_in(&child, || {
                assert_eq!(read_user::<u64>(PRIVATE), Ok(0xc000), "the parent's write leaked");
                assert_eq!(read_user::<u64>(PRIVATE + PAGE), Ok(0xc001), "the grandchild's leaked");
            });
            // The child copied the parent's written pages and the grandchild one of the child's;
            // the parent's write came after the child had copied that page, so the parent (its
            // only mapper by then) wrote it in place.
            let (_, _, copies_after, _, _) = crate::mm::fault::totals();
            // The child copies the parent's written pages (its other pages were the zero
            // page: fresh pages, no copies); the parent's later write finds its page no longer
            // shared and keeps it; the grandchild copies the one page it writes.
            assert_eq!(
                copies_after - copies_before,
                PRIVATE_PAGES / 2 + 1,
                "copies on write"
            );
            for space in [&grandchild, &child, &parent] {
                space.mm.teardown();
            }
            assert_eq!(page_refs::shared_frames(), sharing_before, "sharing counts leaked");
        }
    }
}
