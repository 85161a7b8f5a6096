//! mremap: shrinking in place, growing in place (and merging with the next mapping), moving
//! with `MREMAP_MAYMOVE`, to a fixed place with `MREMAP_FIXED` (what was there unmapped),
//! `MREMAP_DONTUNMAP` (the source stays mapped: empty for private memory, the same pages for
//! shared memory), duplicating a shared mapping with an old length of 0; private and shared
//! anonymous memory and files; and every error, as Linux (5.13 and later) answers.
//!
//! Each test places its mappings inside an area it reserved and freed first, so that what
//! lies around them is known.

use urt::ktap::TestResult;
use urt::sys::{
    self, Errno, MAP_FIXED, MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE,
    PROT_NONE, PROT_READ, PROT_WRITE,
};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{Fd, Mapping, Scratch, mapped, read_text};

const RW: usize = PROT_READ | PROT_WRITE;
const PRIVATE: usize = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS;
const SHARED: usize = MAP_SHARED | sys::MAP_ANONYMOUS;
const NOFD: usize = usize::MAX;

/// The address of a free area of `pages` pages (mapped and unmapped again).
fn area(pages: usize) -> Result<usize, Errno> {
    let addr = sys::mmap(0, pages * PAGE_SIZE, PROT_NONE, PRIVATE, NOFD, 0)?;
    sys::munmap(addr, pages * PAGE_SIZE)?;
    Ok(addr)
}

/// Maps `pages` pages at `addr` (fixed) with `prot` and `flags`; unmapped on drop.
fn map_at(addr: usize, pages: usize, prot: usize, flags: usize) -> Result<Mapping, Errno> {
    let got = sys::mmap(addr, pages * PAGE_SIZE, prot, flags | MAP_FIXED, NOFD, 0)?;
    Ok(Mapping {
        addr: got,
        len: pages * PAGE_SIZE,
    })
}

/// A mapping at `addr` of `pages` pages that mremap made (unmapped on drop).
fn remapped(addr: usize, pages: usize) -> Mapping {
    Mapping {
        addr,
        len: pages * PAGE_SIZE,
    }
}

/// How many lines of /proc/self/maps (VMAs) overlap `[start, end)`.
fn vmas_in(start: usize, end: usize) -> Result<usize, Errno> {
    let text = read_text(c"/proc/self/maps")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (range, _) = line.split_once(' ')?;
            let (from, to) = range.split_once('-')?;
            Some((
                usize::from_str_radix(from, 16).ok()?,
                usize::from_str_radix(to, 16).ok()?,
            ))
        })
        .filter(|&(from, to)| from < end && to > start)
        .count())
}

/// Fills page `i` of `m` with `i + 1 + base`, for `pages` pages.
fn fill_pages(m: &Mapping, pages: usize, base: u8) {
    for i in 0..pages {
        m.fill(i, base + i as u8 + 1);
    }
}

pub fn mremap_shrink_in_place() -> TestResult {
    let at = check_ok!(area(4));
    let m = check_ok!(map_at(at, 4, RW, PRIVATE));
    fill_pages(&m, 4, 0);
    check_eq!(
        check_ok!(sys::mremap(at, 4 * PAGE_SIZE, PAGE_SIZE, 0, 0)),
        at
    );
    check!(m.all(0, 1), "the kept page lost its contents");
    check!(
        !mapped(m.page(1)) && !mapped(m.page(3)),
        "the cut pages stayed"
    );
    // The same length: nothing happens, the address comes back.
    check_eq!(check_ok!(sys::mremap(at, PAGE_SIZE, PAGE_SIZE, 0, 0)), at);
    // Lengths round up to pages.
    check_eq!(check_ok!(sys::mremap(at, 100, 1, 0, 0)), at);
    check!(m.all(0, 1));
    Ok(())
}

pub fn mremap_grow_in_place() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, PRIVATE));
    fill_pages(&m, 2, 0);
    let grown = check_ok!(sys::mremap(at, 2 * PAGE_SIZE, 5 * PAGE_SIZE, 0, 0));
    check_eq!(
        grown,
        at,
        "a free range after the mapping: it grows where it is"
    );
    core::mem::forget(m);
    let m = remapped(at, 5);
    check!(
        m.all(0, 1) && m.all(1, 2),
        "the old pages lost their contents"
    );
    check!(m.all(4, 0), "the new part is not zero");
    check_eq!(check_ok!(vmas_in(at, at + 8 * PAGE_SIZE)), 1, "one VMA");
    Ok(())
}

pub fn mremap_grow_in_place_merges_with_the_next() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 8, RW, PRIVATE));
    m.fill(0, 0x41);
    check_ok!(sys::munmap(m.page(2), 2 * PAGE_SIZE));
    check_eq!(check_ok!(vmas_in(at, at + 8 * PAGE_SIZE)), 2);
    // Growing up to the next mapping exactly: one VMA again.
    check_eq!(
        check_ok!(sys::mremap(at, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0)),
        at
    );
    check_eq!(check_ok!(vmas_in(at, at + 8 * PAGE_SIZE)), 1, "not merged");
    check!(m.all(0, 0x41) && m.all(2, 0) && m.all(7, 0));
    Ok(())
}

pub fn mremap_grow_moves_only_with_maymove() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, PRIVATE));
    // A neighbour that does not merge (other protection) blocks growing in place.
    let _next = check_ok!(map_at(at + 2 * PAGE_SIZE, 1, PROT_READ, PRIVATE));
    fill_pages(&m, 2, 0x10);
    check_err!(
        sys::mremap(at, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0, 0),
        Errno::ENOMEM
    );
    check!(m.all(0, 0x11), "a refused mremap changed the mapping");
    let moved = check_ok!(sys::mremap(
        at,
        2 * PAGE_SIZE,
        4 * PAGE_SIZE,
        MREMAP_MAYMOVE,
        0
    ));
    core::mem::forget(m);
    check!(moved != at, "it could not grow where it was");
    let n = remapped(moved, 4);
    check!(
        n.all(0, 0x11) && n.all(1, 0x12),
        "the move lost the contents"
    );
    check!(n.all(3, 0), "the grown part is not zero");
    check!(!mapped(at) && !mapped(at + PAGE_SIZE), "the source stayed");
    check!(mapped(at + 2 * PAGE_SIZE), "the neighbour went too");
    // The moved pages are writable where they are now.
    n.fill(0, 0x77);
    check!(n.all(0, 0x77));
    Ok(())
}

pub fn mremap_move_part_splits_the_source() -> TestResult {
    let at = check_ok!(area(4));
    let m = check_ok!(map_at(at, 4, RW, PRIVATE));
    fill_pages(&m, 4, 0x20);
    // Pages 1 and 2, grown to 3 pages: not at the end of the VMA, so it moves.
    let moved = check_ok!(sys::mremap(
        m.page(1),
        2 * PAGE_SIZE,
        3 * PAGE_SIZE,
        MREMAP_MAYMOVE,
        0
    ));
    let n = remapped(moved, 3);
    check!(n.all(0, 0x22) && n.all(1, 0x23) && n.all(2, 0));
    check!(
        m.all(0, 0x21) && m.all(3, 0x24),
        "the rest of the source changed"
    );
    check!(!mapped(m.page(1)) && !mapped(m.page(2)));
    check_eq!(
        check_ok!(vmas_in(at, at + 4 * PAGE_SIZE)),
        2,
        "split in two"
    );
    Ok(())
}

pub fn mremap_fixed_replaces_the_destination() -> TestResult {
    let at = check_ok!(area(12));
    let m = check_ok!(map_at(at, 3, RW, PRIVATE));
    fill_pages(&m, 3, 0x30);
    let dest = check_ok!(map_at(at + 6 * PAGE_SIZE, 6, RW, PRIVATE));
    dest.fill(0, 0x99);
    dest.fill(4, 0x98);
    let to = dest.page(1);
    let got = check_ok!(sys::mremap(
        at,
        3 * PAGE_SIZE,
        3 * PAGE_SIZE,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        to
    ));
    check_eq!(got, to);
    check!(dest.all(1, 0x31) && dest.all(2, 0x32) && dest.all(3, 0x33));
    check!(
        dest.all(0, 0x99) && dest.all(4, 0x98),
        "the destination's neighbours changed"
    );
    check!(
        !mapped(at) && !mapped(at + 2 * PAGE_SIZE),
        "the source stayed"
    );
    core::mem::forget(m);
    Ok(())
}

pub fn mremap_fixed_shrinks_and_grows() -> TestResult {
    let at = check_ok!(area(16));
    let m = check_ok!(map_at(at, 4, RW, PRIVATE));
    fill_pages(&m, 4, 0x40);
    // An old length above the new one: the rest is unmapped, the start moves.
    let to = at + 8 * PAGE_SIZE;
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    check_eq!(
        check_ok!(sys::mremap(at, 4 * PAGE_SIZE, 2 * PAGE_SIZE, flags, to)),
        to
    );
    core::mem::forget(m);
    let n = remapped(to, 2);
    check!(n.all(0, 0x41) && n.all(1, 0x42));
    check!(!mapped(at + 2 * PAGE_SIZE) && !mapped(at + 3 * PAGE_SIZE));
    check!(!mapped(to + 2 * PAGE_SIZE));
    // And grown while moved.
    let back = at + PAGE_SIZE;
    check_eq!(
        check_ok!(sys::mremap(to, 2 * PAGE_SIZE, 5 * PAGE_SIZE, flags, back)),
        back
    );
    core::mem::forget(n);
    let b = remapped(back, 5);
    check!(b.all(0, 0x41) && b.all(1, 0x42) && b.all(4, 0));
    Ok(())
}

pub fn mremap_fixed_errors() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, PRIVATE));
    m.fill(0, 0x50);
    let len = 2 * PAGE_SIZE;
    let elsewhere = at + 4 * PAGE_SIZE;
    // MREMAP_FIXED without MREMAP_MAYMOVE.
    check_err!(
        sys::mremap(at, len, len, MREMAP_FIXED, elsewhere),
        Errno::EINVAL
    );
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    // An unaligned destination; one past the end of user space.
    check_err!(
        sys::mremap(at, len, len, flags, elsewhere + 1),
        Errno::EINVAL
    );
    check_err!(
        sys::mremap(at, len, len, flags, 0x7fff_ffff_f000),
        Errno::EINVAL
    );
    // Overlapping the source, before or after.
    check_err!(
        sys::mremap(at, len, len, flags, at + PAGE_SIZE),
        Errno::EINVAL
    );
    check_err!(sys::mremap(at, len, len, flags, at), Errno::EINVAL);
    check_err!(
        sys::mremap(at + PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE, flags, at),
        Errno::EINVAL
    );
    check!(m.all(0, 0x50), "a refused mremap changed the mapping");
    Ok(())
}

pub fn mremap_dontunmap_private() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, PRIVATE));
    fill_pages(&m, 2, 0x60);
    let len = 2 * PAGE_SIZE;
    // Needs MREMAP_MAYMOVE, and equal lengths.
    check_err!(
        sys::mremap(at, len, len, MREMAP_DONTUNMAP, 0),
        Errno::EINVAL
    );
    check_err!(
        sys::mremap(at, len, 3 * PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0),
        Errno::EINVAL
    );
    let to = at + 4 * PAGE_SIZE;
    let flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED;
    check_eq!(check_ok!(sys::mremap(at, len, len, flags, to)), to);
    let n = remapped(to, 2);
    check!(n.all(0, 0x61) && n.all(1, 0x62), "the pages did not move");
    check!(mapped(at), "MREMAP_DONTUNMAP unmapped the source");
    check!(m.all(0, 0) && m.all(1, 0), "the source kept its pages");
    m.fill(0, 0x6f);
    check!(
        n.all(0, 0x61),
        "the source and the destination share a page"
    );
    // Without MREMAP_FIXED the address is a hint.
    let moved = check_ok!(sys::mremap(
        to,
        len,
        len,
        MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
        0
    ));
    let o = remapped(moved, 2);
    check!(o.all(0, 0x61) && n.all(0, 0));
    Ok(())
}

pub fn mremap_dontunmap_shared_keeps_the_pages_in_both() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, SHARED));
    fill_pages(&m, 1, 0x70);
    let to = at + 4 * PAGE_SIZE;
    let len = 2 * PAGE_SIZE;
    let flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED;
    check_eq!(check_ok!(sys::mremap(at, len, len, flags, to)), to);
    let n = remapped(to, 2);
    check!(
        n.all(0, 0x71) && m.all(0, 0x71),
        "shared memory: the same pages in both"
    );
    n.fill(1, 0x7a);
    check!(
        m.all(1, 0x7a),
        "a store through the destination is not seen at the source"
    );
    Ok(())
}

pub fn mremap_duplicates_a_shared_mapping() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, SHARED));
    m.fill(0, 0x5d);
    // An old length of 0 maps the same memory again (MREMAP_MAYMOVE: elsewhere).
    check_err!(sys::mremap(at, 0, 2 * PAGE_SIZE, 0, 0), Errno::ENOMEM);
    let copy = check_ok!(sys::mremap(at, 0, 2 * PAGE_SIZE, MREMAP_MAYMOVE, 0));
    check!(copy != at);
    let c = remapped(copy, 2);
    check!(c.all(0, 0x5d), "the duplicate shows other memory");
    check!(m.all(0, 0x5d), "the original lost its pages");
    c.fill(1, 0x5e);
    check!(
        m.all(1, 0x5e),
        "a store through the duplicate is not seen in the original"
    );
    // Of private memory, it is refused.
    let p = check_ok!(map_at(at + 4 * PAGE_SIZE, 1, RW, PRIVATE));
    check_err!(
        sys::mremap(p.addr, 0, PAGE_SIZE, MREMAP_MAYMOVE, 0),
        Errno::EINVAL
    );
    Ok(())
}

pub fn mremap_errors() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, PRIVATE));
    let _other = check_ok!(map_at(at + 2 * PAGE_SIZE, 2, PROT_READ, PRIVATE));
    m.fill(0, 0x33);
    let len = 2 * PAGE_SIZE;
    check_err!(sys::mremap(at + 1, len, len, 0, 0), Errno::EINVAL);
    check_err!(sys::mremap(at, len, len, 8, 0), Errno::EINVAL);
    check_err!(sys::mremap(at, len, 0, MREMAP_MAYMOVE, 0), Errno::EINVAL);
    // Nothing mapped at the address.
    check_err!(
        sys::mremap(
            at + 5 * PAGE_SIZE,
            PAGE_SIZE,
            2 * PAGE_SIZE,
            MREMAP_MAYMOVE,
            0
        ),
        Errno::EFAULT
    );
    // An old range over two VMAs, or past the VMA into a hole.
    check_err!(
        sys::mremap(at, 3 * PAGE_SIZE, 5 * PAGE_SIZE, MREMAP_MAYMOVE, 0),
        Errno::EFAULT
    );
    check_err!(
        sys::mremap(
            at + 2 * PAGE_SIZE,
            3 * PAGE_SIZE,
            4 * PAGE_SIZE,
            MREMAP_MAYMOVE,
            0
        ),
        Errno::EFAULT
    );
    // A shrink needs only a VMA at the address: the rest is unmapped, holes and all.
    check_eq!(
        check_ok!(sys::mremap(at, 6 * PAGE_SIZE, PAGE_SIZE, 0, 0)),
        at
    );
    check!(m.all(0, 0x33) && !mapped(at + PAGE_SIZE) && !mapped(at + 3 * PAGE_SIZE));
    Ok(())
}

pub fn mremap_prot_none_pages_move_with_their_contents() -> TestResult {
    let at = check_ok!(area(8));
    let m = check_ok!(map_at(at, 2, RW, PRIVATE));
    fill_pages(&m, 2, 0x90);
    check_ok!(sys::mprotect(at, 2 * PAGE_SIZE, PROT_NONE));
    let to = at + 4 * PAGE_SIZE;
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    check_eq!(
        check_ok!(sys::mremap(at, 2 * PAGE_SIZE, 2 * PAGE_SIZE, flags, to)),
        to
    );
    core::mem::forget(m);
    check_ok!(sys::mprotect(to, 2 * PAGE_SIZE, RW));
    let n = remapped(to, 2);
    check!(n.all(0, 0x91) && n.all(1, 0x92));
    Ok(())
}

pub fn mremap_file_mappings() -> TestResult {
    let s = check_ok!(Scratch::new("mremap"));
    let data: alloc::vec::Vec<u8> = (0..4 * PAGE_SIZE)
        .map(|i| (i / PAGE_SIZE + 1) as u8)
        .collect();
    let path = check_ok!(s.file("pages", &data));
    let fd = check_ok!(Fd::open(&path, sys::O_RDWR | sys::O_CLOEXEC, 0));
    let at = check_ok!(area(16));
    // Shared: pages 1 and 2 of the file moved elsewhere show the same file pages.
    let shared = check_ok!(sys::mmap(
        at,
        4 * PAGE_SIZE,
        RW,
        MAP_SHARED | MAP_FIXED,
        fd.0,
        0
    ));
    let m = remapped(shared, 4);
    check!(m.all(1, 2));
    let to = at + 8 * PAGE_SIZE;
    let flags = MREMAP_MAYMOVE | MREMAP_FIXED;
    check_eq!(
        check_ok!(sys::mremap(
            m.page(1),
            2 * PAGE_SIZE,
            2 * PAGE_SIZE,
            flags,
            to
        )),
        to
    );
    let n = remapped(to, 2);
    check!(
        n.all(0, 2) && n.all(1, 3),
        "the moved mapping shows other file pages"
    );
    n.write(0, b"moved");
    check_eq!(
        check_ok!(fd.read_at(PAGE_SIZE, 5)),
        b"moved",
        "stores do not reach the file"
    );
    check!(m.all(0, 1) && m.all(3, 4) && !mapped(m.page(1)));
    drop(n);
    drop(m);
    // Private: a page written before the move keeps its private contents, the others show
    // the file.
    let private = check_ok!(sys::mmap(
        at,
        2 * PAGE_SIZE,
        RW,
        sys::MAP_PRIVATE | MAP_FIXED,
        fd.0,
        2 * PAGE_SIZE
    ));
    let p = remapped(private, 2);
    p.fill(0, 0xee);
    let moved = check_ok!(sys::mremap(
        private,
        2 * PAGE_SIZE,
        3 * PAGE_SIZE,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        to
    ));
    core::mem::forget(p);
    let q = remapped(moved, 3);
    check!(
        q.all(0, 0xee) && q.all(1, 4),
        "the private file mapping moved wrong"
    );
    check_eq!(
        check_ok!(fd.read_at(2 * PAGE_SIZE, 1)),
        [3u8],
        "a private store reached the file"
    );
    Ok(())
}
