//! An editor: random memory calls in its own arena, each result predicted by a page-by-page
//! model of the arena, and every page checked after each call.
//!
//! The model knows, for each page, whether it is mapped, its protection, what backs it
//! (private or shared anonymous memory, or a page of the editor's file mapped private or
//! shared) and what it holds: zero, a tag the editor wrote (word 0 holds the tag and the last
//! word [`seal`] of it), either of the two after `MADV_FREE`, the file's page, or a guard
//! marker. Pages also carry the number of the mapping they came from, renewed by mprotect and
//! mremap, so that a run of pages with one number lies inside one VMA whatever the kernel
//! merges: mremap is only asked of such runs, whose result Linux defines.
//!
//! The arena lies far below where the kernel places mappings it chooses, so a mapping placed
//! by the kernel (no address, a hint that is taken, `MREMAP_MAYMOVE`) lands outside every
//! arena: the editor checks and unmaps it at once. Only the editor touches its arena, its file
//! and (editor 0) the break; everything here is the editor thread's own.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::Ordering;

use urt::println;
use urt::sys::{
    self, Errno, MADV_DONTNEED, MADV_FREE, MADV_GUARD_INSTALL, MADV_GUARD_REMOVE, MADV_WILLNEED,
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED,
    MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE,
    SysResult,
};

use super::{
    ARENA_PAGES, CHILD_FAULTED, GUARDS_KNOWN, IN_CHILD, OPERATIONS_DONE, PREDICTED_ERRORS,
    PROGRESS_INTERVAL, RUNS, arena_base, in_arenas, mismatch, start_together,
};
use crate::rng::Rng;

/// The pages of an editor's file.
const FILE_PAGES: usize = 16;
/// The most pages the break grows to.
const BRK_PAGES: usize = 64;
/// The most pages one call spans (most are much shorter).
const MAX_SPAN: usize = 24;
/// Every this many operations, the whole arena's mappings and the file are checked.
const SWEEP_EVERY: u64 = 32;
/// The last word of a page: [`seal`] of the tag in word 0.
const LAST_WORD: usize = PAGE_SIZE / 8 - 1;

/// The protections used (x86 cannot map write-only; execute-only depends on protection keys).
const PROTS: [usize; 5] = [
    PROT_NONE,
    PROT_READ,
    PROT_READ | PROT_WRITE,
    PROT_READ | PROT_EXEC,
    PROT_READ | PROT_WRITE | PROT_EXEC,
];

/// What backs a page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backing {
    AnonPrivate,
    AnonShared,
    /// Page `.0` of the editor's file, mapped private.
    FilePrivate(usize),
    /// Page `.0` of the editor's file, mapped shared.
    FileShared(usize),
}

/// What a page holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    Zero,
    Tag(u64),
    /// After `MADV_FREE`: zero, or still the tag.
    Freed(u64),
    /// The file page's current contents (a shared file page, or a private one not yet written).
    File,
    /// A guard marker (`MADV_GUARD_INSTALL`): any access faults.
    Guard,
}

#[derive(Clone, Copy)]
struct Page {
    mapped: bool,
    prot: usize,
    backing: Backing,
    content: Content,
    /// The mapping the page belongs to (see the module doc).
    mapping: u32,
}

const UNMAPPED: Page = Page {
    mapped: false,
    prot: PROT_NONE,
    backing: Backing::AnonPrivate,
    content: Content::Zero,
    mapping: 0,
};

impl Page {
    fn readable(&self) -> bool {
        self.mapped && self.prot & PROT_READ != 0 && self.content != Content::Guard
    }

    fn writable(&self) -> bool {
        self.readable() && self.prot & PROT_WRITE != 0
    }
}

/// The last word of a page whose first word is `tag`.
fn seal(tag: u64) -> u64 {
    if tag == 0 {
        0
    } else {
        tag ^ 0x5ea1_5ea1_5ea1_5ea1
    }
}

/// Word 0 and the last word of the page at `addr`.
fn read_page(addr: usize) -> (u64, u64) {
    let words = addr as *const u64;
    // SAFETY: the callers read only pages the model says are mapped readable; a page the
    // kernel refuses raises SIGSEGV, which the fault handler reports.
    unsafe { (words.read_volatile(), words.add(LAST_WORD).read_volatile()) }
}

/// Writes `tag` into the page at `addr` (word 0, and its seal in the last word).
fn write_page(addr: usize, tag: u64) {
    let words = addr as *mut u64;
    // SAFETY: the callers write only pages the model says are mapped writable and that only
    // this editor uses; a refusal faults into the handler.
    unsafe {
        words.write_volatile(tag);
        words.add(LAST_WORD).write_volatile(seal(tag));
    }
}

/// A call's result, printed.
struct Shown(SysResult);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "{v:#x}"),
            Err(e) => f.write_str(e.name()),
        }
    }
}

/// The operation under way, for the MISMATCH lines.
#[derive(Clone, Copy)]
struct Op {
    name: &'static str,
    args: [usize; 4],
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({:#x}, {:#x}, {:#x}, {:#x})",
            self.name, self.args[0], self.args[1], self.args[2], self.args[3]
        )
    }
}

struct Editor {
    index: usize,
    rng: Rng,
    base: usize,
    pages: Vec<Page>,
    next_mapping: u32,
    /// The file's pages: the tag each holds (0: zero).
    file: Vec<u64>,
    fd: usize,
    /// The break: where it starts (page-aligned) and its pages' contents (editor 0 only).
    brk: Option<(usize, Vec<Content>)>,
    /// Whether the kernel knows guard markers (None until first tried).
    guards: Option<bool>,
    /// mincore's vector.
    residency: Vec<u8>,
    /// A page for pread and pwrite.
    buffer: Vec<u64>,
    op: Op,
    /// The operation's index in the coverage counters (`KINDS`).
    kind: usize,
    done: u64,
}

pub fn run(seed: u64, index: usize, operations: u64, everyone: usize) {
    let editor = Editor::new(seed, index);
    start_together(everyone);
    let Some(mut editor) = editor else {
        return;
    };
    for _ in 0..operations {
        editor.step();
    }
    editor.sweep();
    editor.finish();
}

impl Editor {
    /// Sets up the arena (checked free), the file and (editor 0) the break; `None`, with a
    /// mismatch counted, if that fails.
    fn new(seed: u64, index: usize) -> Option<Self> {
        let base = arena_base(index);
        let len = ARENA_PAGES * PAGE_SIZE;
        let reserve = sys::mmap(
            base,
            len,
            PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            usize::MAX,
            0,
        );
        if reserve != Ok(base) || sys::munmap(base, len).is_err() {
            mismatch(format_args!(
                "editor {index}: cannot claim its arena at {base:#x}: {}",
                Shown(reserve)
            ));
            return None;
        }
        let mut rng = Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let file: Vec<u64> = (0..FILE_PAGES).map(|_| rng.next_u64() | 1).collect();
        let fd = match create_file(index, &file) {
            Ok(fd) => fd,
            Err(e) => {
                mismatch(format_args!(
                    "editor {index}: cannot create its file: {}",
                    e.name()
                ));
                return None;
            }
        };
        let brk = (index == 0).then(|| {
            let start = sys::brk(0).unwrap_or(0);
            let start = (start + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
            let _ = sys::brk(start);
            (start, Vec::with_capacity(BRK_PAGES))
        });
        Some(Self {
            index,
            rng,
            base,
            pages: vec![UNMAPPED; ARENA_PAGES],
            next_mapping: 1,
            file,
            fd,
            brk,
            guards: None,
            residency: vec![0; ARENA_PAGES + MAX_SPAN + 8],
            buffer: vec![0; PAGE_SIZE / 8],
            op: Op {
                name: "setup",
                args: [0; 4],
            },
            kind: 0,
            done: 0,
        })
    }

    fn finish(&mut self) {
        let _ = sys::munmap(self.base, ARENA_PAGES * PAGE_SIZE);
        let _ = sys::close(self.fd);
        let path = file_path(self.index);
        let _ = sys::unlinkat(sys::AT_FDCWD, path.as_ptr() as usize, 0);
        if let Some((start, _)) = self.brk {
            let _ = sys::brk(start);
        }
    }

    fn addr(&self, page: usize) -> usize {
        self.base + page * PAGE_SIZE
    }

    fn new_mapping(&mut self) -> u32 {
        self.next_mapping += 1;
        self.next_mapping
    }

    fn report(&self, at: usize, expected: fmt::Arguments<'_>, got: fmt::Arguments<'_>) {
        mismatch(format_args!(
            "editor {} op {} {} at {at:#x}: expected {expected}, got {got}",
            self.index, self.done, self.op
        ));
    }

    /// Compares a call's result with the model's prediction.
    fn expect(&self, got: SysResult, want: SysResult) {
        if want.is_err() {
            PREDICTED_ERRORS[self.kind].fetch_add(1, Ordering::Relaxed);
        }
        if got != want {
            self.report(
                self.op.args[0],
                format_args!("{}", Shown(want)),
                format_args!("{}", Shown(got)),
            );
        }
    }

    /// A random span of pages in the arena: (first, count), mostly short.
    fn span(&mut self) -> (usize, usize) {
        let count = if self.rng.below(4) == 0 {
            1 + self.rng.below(MAX_SPAN as u64) as usize
        } else {
            1 + self.rng.below(4) as usize
        };
        (
            self.rng.below((ARENA_PAGES - count + 1) as u64) as usize,
            count,
        )
    }

    /// A span like [`Self::span`] that, three times in four, starts at a mapped page (when
    /// there is one), so that most calls meet mappings rather than holes.
    fn mapped_span(&mut self) -> (usize, usize) {
        let (first, count) = self.span();
        if self.rng.below(4) == 0 {
            return (first, count);
        }
        let start = self.rng.below(ARENA_PAGES as u64) as usize;
        match (0..ARENA_PAGES)
            .map(|i| (start + i) % ARENA_PAGES)
            .find(|&page| self.pages[page].mapped)
        {
            Some(page) if self.rng.below(2) == 0 => {
                // Within the mapped run that starts there.
                let run = self.pages[page..].iter().take_while(|p| p.mapped).count();
                (page, count.min(run))
            }
            Some(page) => (page.min(ARENA_PAGES - count), count),
            None => (first, count),
        }
    }

    fn tag(&mut self) -> u64 {
        self.rng.next_u64() | 1
    }

    fn step(&mut self) {
        self.done += 1;
        let operations = OPERATIONS_DONE.fetch_add(1, Ordering::Relaxed) + 1;
        if operations.is_multiple_of(PROGRESS_INTERVAL) {
            println!("model progress: {operations} operations");
        }
        let roll = self.rng.below(100);
        self.kind = match roll {
            0..20 => 0,
            20..30 => 1,
            30..45 => 2,
            45..60 => 3,
            60..70 => 4,
            70..72 => 5,
            72..75 => 6,
            75..80 if self.brk.is_some() => 7,
            75..84 => 8,
            _ => 9,
        };
        RUNS[self.kind].fetch_add(1, Ordering::Relaxed);
        let (first, count) = match self.kind {
            0 => self.op_mmap(),
            1 => self.op_munmap(),
            2 => self.op_mprotect(),
            3 => self.op_madvise(),
            4 => self.op_mremap(),
            5 => self.op_fork(),
            6 => self.op_pwrite(),
            7 => self.op_brk(),
            8 => self.op_invalid(),
            _ => self.op_write(),
        };
        self.verify_memory();
        let lo = first.saturating_sub(1);
        let hi = (first + count + 1).min(ARENA_PAGES);
        self.verify_mappings(lo, hi);
        if self.done.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        self.verify_mappings(0, ARENA_PAGES);
        self.verify_file();
        self.verify_break();
    }

    // ---- checks ----

    /// What word 0 of a page may hold: (one value, another it may hold instead).
    fn expected(&self, backing: Backing, content: Content) -> (u64, u64) {
        match (content, backing) {
            (Content::Tag(t), _) => (t, t),
            (Content::Freed(t), _) => (t, 0),
            (Content::File, Backing::FilePrivate(k) | Backing::FileShared(k)) => {
                (self.file[k], self.file[k])
            }
            _ => (0, 0),
        }
    }

    /// Checks one page's contents against the model; on a difference, reports it and takes
    /// the kernel's value, so that one fault is reported once.
    fn check_page(&mut self, addr: usize, page: usize) -> bool {
        let p = self.pages[page];
        let (w0, last) = read_page(addr);
        let (a, b) = self.expected(p.backing, p.content);
        if (w0 == a || w0 == b) && last == seal(w0) {
            return true;
        }
        self.report(
            addr,
            format_args!("{a:#x}{}", if a == b { "" } else { " (or 0)" }),
            format_args!("{w0:#x}/{last:#x}"),
        );
        self.pages[page].content = match (p.content, p.backing) {
            (Content::File, Backing::FileShared(k) | Backing::FilePrivate(k)) => {
                self.file[k] = w0;
                Content::File
            }
            _ if w0 == 0 => Content::Zero,
            _ => Content::Tag(w0),
        };
        false
    }

    /// Reads back every page the model says is readable, and the break.
    fn verify_memory(&mut self) {
        for page in 0..ARENA_PAGES {
            if self.pages[page].readable() {
                self.check_page(self.addr(page), page);
            }
        }
        if let Some((start, contents)) = &self.brk {
            for (i, content) in contents.iter().enumerate() {
                let addr = start + i * PAGE_SIZE;
                let (w0, last) = read_page(addr);
                let (a, _) = self.expected(Backing::AnonPrivate, *content);
                if w0 != a || last != seal(a) {
                    self.report(
                        addr,
                        format_args!("{a:#x} (break)"),
                        format_args!("{w0:#x}/{last:#x}"),
                    );
                }
            }
        }
    }

    /// Checks with mincore that pages `lo..hi` are mapped where the model says so and unmapped
    /// elsewhere (mincore fails with ENOMEM on a hole; nothing is touched).
    fn verify_mappings(&mut self, lo: usize, hi: usize) {
        let mut page = lo;
        while page < hi {
            let mapped = self.pages[page].mapped;
            let mut end = page + 1;
            if mapped {
                while end < hi && self.pages[end].mapped {
                    end += 1;
                }
                let got = sys::mincore(
                    self.addr(page),
                    (end - page) * PAGE_SIZE,
                    self.residency.as_mut_ptr() as usize,
                );
                if got.is_err() {
                    self.report(
                        self.addr(page),
                        format_args!("{} mapped pages (mincore)", end - page),
                        format_args!("{}", Shown(got)),
                    );
                }
            } else {
                let got = sys::mincore(
                    self.addr(page),
                    PAGE_SIZE,
                    self.residency.as_mut_ptr() as usize,
                );
                if got != Err(Errno::ENOMEM) {
                    self.report(
                        self.addr(page),
                        format_args!("unmapped (mincore ENOMEM)"),
                        format_args!("{}", Shown(got)),
                    );
                }
            }
            page = end;
        }
    }

    /// Reads the file with pread and compares it with the model.
    fn verify_file(&mut self) {
        for k in 0..FILE_PAGES {
            self.check_file_page(k);
        }
    }

    fn check_file_page(&mut self, k: usize) {
        let got = sys::pread64(
            self.fd,
            self.buffer.as_mut_ptr() as usize,
            PAGE_SIZE,
            k * PAGE_SIZE,
        );
        let want = self.file[k];
        let (w0, last) = (self.buffer[0], self.buffer[LAST_WORD]);
        if got != Ok(PAGE_SIZE) || w0 != want || last != seal(want) {
            self.report(
                k * PAGE_SIZE,
                format_args!("file page {k} = {want:#x} (pread)"),
                format_args!("{} bytes, {w0:#x}/{last:#x}", Shown(got)),
            );
            self.file[k] = w0;
        }
    }

    /// Checks with mincore that the pages above the break are unmapped.
    fn verify_break(&mut self) {
        let Some((start, contents)) = &self.brk else {
            return;
        };
        let top = start + contents.len() * PAGE_SIZE;
        let got = sys::mincore(top, PAGE_SIZE, self.residency.as_mut_ptr() as usize);
        if got != Err(Errno::ENOMEM) {
            self.report(
                top,
                format_args!("unmapped above the break"),
                format_args!("{}", Shown(got)),
            );
        }
    }

    // ---- the model's edits ----

    fn map(&mut self, first: usize, count: usize, prot: usize, backing: Backing) {
        let mapping = self.new_mapping();
        for i in 0..count {
            let (backing, content) = match backing {
                Backing::FilePrivate(k) => (Backing::FilePrivate(k + i), Content::File),
                Backing::FileShared(k) => (Backing::FileShared(k + i), Content::File),
                other => (other, Content::Zero),
            };
            self.pages[first + i] = Page {
                mapped: true,
                prot,
                backing,
                content,
                mapping,
            };
        }
    }

    /// `MAP_POPULATE` of a writable private file mapping faults its pages in for writing, as
    /// Linux does: each becomes a private copy of the file page, which later file writes do
    /// not reach.
    fn populated(&mut self, first: usize, count: usize, populate: usize) {
        for page in first..first + count {
            let p = &mut self.pages[page];
            if let (Backing::FilePrivate(k), true) =
                (p.backing, populate != 0 && p.prot & PROT_WRITE != 0)
            {
                p.content = Content::Tag(self.file[k]);
            }
        }
    }

    fn unmap(&mut self, first: usize, count: usize) {
        self.pages[first..first + count].fill(UNMAPPED);
    }

    fn any_mapped(&self, first: usize, count: usize) -> bool {
        self.pages[first..first + count].iter().any(|p| p.mapped)
    }

    /// Writes a new tag into a page the model says is writable.
    fn write(&mut self, page: usize) {
        let tag = self.tag();
        write_page(self.addr(page), tag);
        let p = &mut self.pages[page];
        match p.backing {
            Backing::FileShared(k) => self.file[k] = tag,
            _ => p.content = Content::Tag(tag),
        }
    }

    /// Checks a mapping the kernel placed (outside every arena) holding `contents` and
    /// unmaps it.
    fn check_placed(&mut self, addr: usize, prot: usize, contents: &[(Backing, Content)]) {
        let len = contents.len() * PAGE_SIZE;
        if in_arenas(addr, len) {
            self.report(
                addr,
                format_args!("a placement outside the arenas"),
                format_args!("{addr:#x}"),
            );
            return;
        }
        if prot & PROT_READ != 0 {
            for (i, (backing, content)) in contents.iter().enumerate() {
                let at = addr + i * PAGE_SIZE;
                let (w0, last) = read_page(at);
                let (a, b) = self.expected(*backing, *content);
                if !((w0 == a || w0 == b) && last == seal(w0)) {
                    self.report(
                        at,
                        format_args!("{a:#x} (placed)"),
                        format_args!("{w0:#x}/{last:#x}"),
                    );
                }
            }
        }
        let got = sys::munmap(addr, len);
        if got.is_err() {
            self.report(
                addr,
                format_args!("munmap of the placed mapping: 0"),
                format_args!("{}", Shown(got)),
            );
        }
    }

    // ---- operations: each returns the span of pages to check with mincore ----

    fn op_mmap(&mut self) -> (usize, usize) {
        let (first, mut count) = self.span();
        let prot = *self.rng.pick(&PROTS);
        let (backing, share, fd, offset) = match self.rng.below(4) {
            0 | 1 => (
                Backing::AnonPrivate,
                MAP_PRIVATE | MAP_ANONYMOUS,
                usize::MAX,
                0,
            ),
            2 => (
                Backing::AnonShared,
                MAP_SHARED | MAP_ANONYMOUS,
                usize::MAX,
                0,
            ),
            kind => {
                count = count.min(FILE_PAGES);
                let k = self.rng.below((FILE_PAGES - count + 1) as u64) as usize;
                let (backing, share) = if kind == 3 && self.rng.below(2) == 0 {
                    (Backing::FileShared(k), MAP_SHARED)
                } else {
                    (Backing::FilePrivate(k), MAP_PRIVATE)
                };
                (backing, share, self.fd, k * PAGE_SIZE)
            }
        };
        let populate = if self.rng.below(8) == 0 {
            MAP_POPULATE
        } else {
            0
        };
        let addr = self.addr(first);
        let len = count * PAGE_SIZE;
        let placement = match self.rng.below(10) {
            0..6 => MAP_FIXED,
            6 | 7 => MAP_FIXED_NOREPLACE,
            8 => 0,
            _ => usize::MAX,
        };
        let hint = if placement == usize::MAX { 0 } else { addr };
        let flags = share
            | populate
            | if placement == usize::MAX {
                0
            } else {
                placement
            };
        self.op = Op {
            name: "mmap",
            args: [hint, len, prot, flags],
        };
        let got = sys::mmap(hint, len, prot, flags, fd, offset);
        let free = !self.any_mapped(first, count);
        match placement {
            MAP_FIXED => {
                self.expect(got, Ok(addr));
                self.map(first, count, prot, backing);
                self.populated(first, count, populate);
            }
            MAP_FIXED_NOREPLACE if !free => self.expect(got, Err(Errno::EEXIST)),
            0 | MAP_FIXED_NOREPLACE if free => {
                self.expect(got, Ok(addr));
                self.map(first, count, prot, backing);
                self.populated(first, count, populate);
            }
            _ => match got {
                Ok(placed) => {
                    let contents: Vec<(Backing, Content)> = (0..count)
                        .map(|i| match backing {
                            Backing::FilePrivate(k) => (Backing::FilePrivate(k + i), Content::File),
                            Backing::FileShared(k) => (Backing::FileShared(k + i), Content::File),
                            other => (other, Content::Zero),
                        })
                        .collect();
                    self.check_placed(placed, prot, &contents);
                }
                Err(_) => self.expect(got, Ok(0)),
            },
        }
        (first, count)
    }

    fn op_munmap(&mut self) -> (usize, usize) {
        let (first, count) = self.mapped_span();
        let addr = self.addr(first);
        self.op = Op {
            name: "munmap",
            args: [addr, count * PAGE_SIZE, 0, 0],
        };
        let got = sys::munmap(addr, count * PAGE_SIZE);
        self.expect(got, Ok(0));
        self.unmap(first, count);
        (first, count)
    }

    fn op_mprotect(&mut self) -> (usize, usize) {
        let (first, count) = self.mapped_span();
        let prot = *self.rng.pick(&PROTS);
        let addr = self.addr(first);
        self.op = Op {
            name: "mprotect",
            args: [addr, count * PAGE_SIZE, prot, 0],
        };
        let got = sys::mprotect(addr, count * PAGE_SIZE, prot);
        // Linux changes the pages up to the first hole, and fails with ENOMEM if there is one.
        let leading = self.pages[first..first + count]
            .iter()
            .take_while(|p| p.mapped)
            .count();
        self.expect(
            got,
            if leading == count {
                Ok(0)
            } else {
                Err(Errno::ENOMEM)
            },
        );
        let mut previous = None;
        let mut renumbered = 0;
        for page in first..first + leading {
            let p = &mut self.pages[page];
            p.prot = prot;
            // One new number per old mapping changed: each still lies inside one VMA.
            if previous != Some(p.mapping) {
                previous = Some(p.mapping);
                self.next_mapping += 1;
                renumbered = self.next_mapping;
            }
            p.mapping = renumbered;
        }
        (first, count)
    }

    fn op_madvise(&mut self) -> (usize, usize) {
        let (first, count) = self.mapped_span();
        let addr = self.addr(first);
        let span = &self.pages[first..first + count];
        let holes = span.iter().any(|p| !p.mapped);
        let all_anon_private = span
            .iter()
            .all(|p| !p.mapped || p.backing == Backing::AnonPrivate);
        let guarded = span.iter().any(|p| p.mapped && p.content == Content::Guard);
        let mut advice = *self.rng.pick(&[
            MADV_DONTNEED,
            MADV_DONTNEED,
            MADV_FREE,
            MADV_WILLNEED,
            MADV_GUARD_INSTALL,
            MADV_GUARD_REMOVE,
        ]);
        // FREE is for private anonymous memory only (EINVAL elsewhere, after the pages before);
        // guard markers on anything else, or with holes, are left alone.
        let guard = advice == MADV_GUARD_INSTALL || advice == MADV_GUARD_REMOVE;
        if (advice == MADV_FREE && (!all_anon_private || guarded))
            || (guard && (holes || !all_anon_private || self.guards == Some(false)))
        {
            advice = MADV_DONTNEED;
        }
        self.op = Op {
            name: "madvise",
            args: [addr, count * PAGE_SIZE, advice, 0],
        };
        let got = sys::madvise(addr, count * PAGE_SIZE, advice);
        if guard && advice != MADV_DONTNEED && self.guards.is_none() {
            let known = got != Err(Errno::EINVAL);
            GUARDS_KNOWN.store(known, Ordering::Relaxed);
            self.guards = Some(known);
            if !known {
                // A kernel before Linux 6.13: no guard markers.
                return (first, count);
            }
        }
        self.expect(got, if holes { Err(Errno::ENOMEM) } else { Ok(0) });
        for p in self.pages[first..first + count]
            .iter_mut()
            .filter(|p| p.mapped)
        {
            p.content = match (advice, p.content, p.backing) {
                (MADV_DONTNEED, Content::Guard, _) => Content::Guard,
                (MADV_DONTNEED, _, Backing::AnonPrivate) => Content::Zero,
                (MADV_DONTNEED, _, Backing::FilePrivate(_)) => Content::File,
                (MADV_FREE, Content::Tag(t) | Content::Freed(t), _) => Content::Freed(t),
                (MADV_GUARD_INSTALL, _, _) => Content::Guard,
                (MADV_GUARD_REMOVE, Content::Guard, _) => Content::Zero,
                (_, content, _) => content,
            };
        }
        (first, count)
    }

    /// mremap of a part of one mapping: shrink, grow (in place or moved by the kernel), or
    /// move to a fixed place in the arena.
    fn op_mremap(&mut self) -> (usize, usize) {
        let (page, _) = self.mapped_span();
        if !self.pages[page].mapped {
            // Growing what is not mapped: EFAULT.
            let addr = self.addr(page);
            self.op = Op {
                name: "mremap",
                args: [addr, PAGE_SIZE, 2 * PAGE_SIZE, 0],
            };
            let got = sys::mremap(addr, PAGE_SIZE, 2 * PAGE_SIZE, 0, 0);
            self.expect(got, Err(Errno::EFAULT));
            return (page, 1);
        }
        let mapping = self.pages[page].mapping;
        let mut start = page;
        while start > 0 && self.pages[start - 1].mapped && self.pages[start - 1].mapping == mapping
        {
            start -= 1;
        }
        let mut end = page + 1;
        while end < ARENA_PAGES && self.pages[end].mapped && self.pages[end].mapping == mapping {
            end += 1;
        }
        let first = start + self.rng.below((page - start + 1) as u64) as usize;
        let last = page + 1 + self.rng.below((end - page) as u64) as usize;
        let old = last - first;
        if self.pages[first..last]
            .iter()
            .any(|p| p.content == Content::Guard)
        {
            return self.op_munmap();
        }
        let backing = self.pages[first].backing;
        let growable = backing == Backing::AnonPrivate;
        let addr = self.addr(first);
        match self.rng.below(3) {
            0 if old > 1 => {
                let new = 1 + self.rng.below(old as u64 - 1) as usize;
                self.op = Op {
                    name: "mremap",
                    args: [addr, old * PAGE_SIZE, new * PAGE_SIZE, 0],
                };
                let got = sys::mremap(addr, old * PAGE_SIZE, new * PAGE_SIZE, 0, 0);
                self.expect(got, Ok(addr));
                self.unmap(first + new, old - new);
                (first, old)
            }
            1 if growable && first + old < ARENA_PAGES => {
                let new =
                    old + 1 + self.rng.below((ARENA_PAGES - first - old).min(8) as u64) as usize;
                let may_move = if self.rng.below(2) == 0 {
                    MREMAP_MAYMOVE
                } else {
                    0
                };
                self.op = Op {
                    name: "mremap",
                    args: [addr, old * PAGE_SIZE, new * PAGE_SIZE, may_move],
                };
                let got = sys::mremap(addr, old * PAGE_SIZE, new * PAGE_SIZE, may_move, 0);
                let in_place = last == end && !self.any_mapped(last, new - old);
                if in_place {
                    self.expect(got, Ok(addr));
                    let grown = Page {
                        content: Content::Zero,
                        ..self.pages[first]
                    };
                    self.pages[last..first + new].fill(grown);
                } else if may_move == 0 {
                    self.expect(got, Err(Errno::ENOMEM));
                } else {
                    let mut contents: Vec<(Backing, Content)> = self.pages[first..last]
                        .iter()
                        .map(|p| (p.backing, p.content))
                        .collect();
                    contents.resize(new, (Backing::AnonPrivate, Content::Zero));
                    let prot = self.pages[first].prot;
                    self.unmap(first, old);
                    match got {
                        Ok(placed) => self.check_placed(placed, prot, &contents),
                        Err(_) => self.expect(got, Ok(0)),
                    }
                }
                (first, new.max(old))
            }
            _ => {
                let new = if growable && self.rng.below(3) == 0 {
                    old + 1 + self.rng.below(4) as usize
                } else {
                    1 + self.rng.below(old as u64) as usize
                };
                if new > ARENA_PAGES {
                    return (first, old);
                }
                let target = self.rng.below((ARENA_PAGES - new + 1) as u64) as usize;
                let to = self.addr(target);
                self.op = Op {
                    name: "mremap",
                    args: [addr, old * PAGE_SIZE, new * PAGE_SIZE, to],
                };
                let got = sys::mremap(
                    addr,
                    old * PAGE_SIZE,
                    new * PAGE_SIZE,
                    MREMAP_MAYMOVE | MREMAP_FIXED,
                    to,
                );
                if target < last && first < target + new {
                    // The new range overlaps the old.
                    self.expect(got, Err(Errno::EINVAL));
                    return (first, old);
                }
                self.expect(got, Ok(to));
                let mapping = self.new_mapping();
                let mut moved: Vec<Page> = self.pages[first..first + old.min(new)].to_vec();
                moved.resize(
                    new,
                    Page {
                        content: Content::Zero,
                        ..self.pages[first]
                    },
                );
                self.unmap(first, old);
                for (i, mut p) in moved.into_iter().enumerate() {
                    p.mapping = mapping;
                    self.pages[target + i] = p;
                }
                self.verify_mappings(first, last);
                (target, new)
            }
        }
    }

    /// Writes new tags into the writable pages of a span (and, for editor 0, a page of the
    /// break).
    fn op_write(&mut self) -> (usize, usize) {
        let (first, count) = self.mapped_span();
        self.op = Op {
            name: "write",
            args: [self.addr(first), count * PAGE_SIZE, 0, 0],
        };
        for page in first..first + count {
            if self.pages[page].writable() {
                self.write(page);
                if let Backing::FileShared(k) = self.pages[page].backing {
                    self.check_file_page(k);
                }
            }
        }
        let tag = self.tag();
        if let Some((start, contents)) = &mut self.brk
            && !contents.is_empty()
        {
            let i = (tag % contents.len() as u64) as usize;
            write_page(*start + i * PAGE_SIZE, tag);
            contents[i] = Content::Tag(tag);
        }
        (first, count)
    }

    /// Writes a file page with pwrite: shared mappings and private ones not yet written see it.
    fn op_pwrite(&mut self) -> (usize, usize) {
        let k = self.rng.below(FILE_PAGES as u64) as usize;
        let tag = self.tag();
        self.buffer.fill(0);
        self.buffer[0] = tag;
        self.buffer[LAST_WORD] = seal(tag);
        self.op = Op {
            name: "pwrite",
            args: [self.fd, PAGE_SIZE, k * PAGE_SIZE, tag as usize],
        };
        let got = sys::pwrite64(
            self.fd,
            self.buffer.as_ptr() as usize,
            PAGE_SIZE,
            k * PAGE_SIZE,
        );
        self.expect(got, Ok(PAGE_SIZE));
        self.file[k] = tag;
        (0, 0)
    }

    fn op_brk(&mut self) -> (usize, usize) {
        let grow = self.rng.below(2) == 0;
        let step = 1 + self.rng.below(8) as usize;
        let Some((start, contents)) = &mut self.brk else {
            return (0, 0);
        };
        let start = *start;
        let pages = if grow {
            (contents.len() + step).min(BRK_PAGES)
        } else {
            contents.len().saturating_sub(step)
        };
        contents.resize(pages, Content::Zero);
        let want = start + pages * PAGE_SIZE;
        self.op = Op {
            name: "brk",
            args: [want, 0, 0, 0],
        };
        let got = sys::brk(want);
        self.expect(got, Ok(want));
        self.verify_break();
        (0, 0)
    }

    /// fork: the child checks some pages, writes a shared page (which the parent then sees)
    /// and a private one (which it must not), and exits with the number of pages that
    /// differed.
    fn op_fork(&mut self) -> (usize, usize) {
        let probes: Vec<usize> = (0..8)
            .map(|_| self.rng.below(ARENA_PAGES as u64) as usize)
            .filter(|&page| self.pages[page].readable())
            .collect();
        let writable = |p: &Page, shared: bool| {
            p.writable()
                && matches!(p.backing, Backing::AnonShared | Backing::FileShared(_)) == shared
        };
        let shared = (0..ARENA_PAGES).find(|&page| writable(&self.pages[page], true));
        let private = (0..ARENA_PAGES)
            .rev()
            .find(|&page| writable(&self.pages[page], false));
        let (shared_tag, private_tag) = (self.tag(), self.tag());
        self.op = Op {
            name: "fork",
            args: [probes.len(), shared.unwrap_or(0), private.unwrap_or(0), 0],
        };
        match sys::fork() {
            Ok(0) => {
                IN_CHILD.store(true, Ordering::Relaxed);
                let mut differ = 0;
                for &page in &probes {
                    let p = self.pages[page];
                    let (w0, last) = read_page(self.addr(page));
                    let (a, b) = self.expected(p.backing, p.content);
                    if !((w0 == a || w0 == b) && last == seal(w0)) {
                        differ += 1;
                    }
                }
                if let Some(page) = shared {
                    write_page(self.addr(page), shared_tag);
                }
                if let Some(page) = private {
                    write_page(self.addr(page), private_tag);
                    if read_page(self.addr(page)).0 != private_tag {
                        differ += 1;
                    }
                }
                sys::exit_group(differ);
            }
            Ok(child) => {
                let mut status = 0i32;
                let waited = sys::wait4(child, &raw mut status as usize, 0, 0);
                self.expect(waited, Ok(child));
                if status != 0 {
                    let code = (status >> 8) & 0xff;
                    let signal = status & 0x7f;
                    self.report(
                        child,
                        format_args!("a child that exits 0"),
                        format_args!(
                            "{} (signal {signal}, {code} pages differed{})",
                            status,
                            if code == CHILD_FAULTED {
                                ", or it faulted"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                if let Some(page) = shared {
                    match self.pages[page].backing {
                        Backing::FileShared(k) => self.file[k] = shared_tag,
                        _ => self.pages[page].content = Content::Tag(shared_tag),
                    }
                }
            }
            Err(e) => self.report(0, format_args!("a child"), format_args!("{}", e.name())),
        }
        (0, 0)
    }

    /// Calls with one bad argument: each fails the same way on every kernel.
    fn op_invalid(&mut self) -> (usize, usize) {
        let (first, count) = self.span();
        let addr = self.addr(first);
        let len = count * PAGE_SIZE;
        let anon = MAP_PRIVATE | MAP_ANONYMOUS;
        let (name, got, want) = match self.rng.below(9) {
            0 => (
                "mmap len 0",
                sys::mmap(addr, 0, PROT_READ, anon | MAP_FIXED, usize::MAX, 0),
                Errno::EINVAL,
            ),
            1 => (
                "mmap misaligned fixed",
                sys::mmap(addr + 8, len, PROT_READ, anon | MAP_FIXED, usize::MAX, 0),
                Errno::EINVAL,
            ),
            2 => (
                "mmap neither shared nor private",
                sys::mmap(
                    addr,
                    len,
                    PROT_READ,
                    MAP_ANONYMOUS | MAP_FIXED,
                    usize::MAX,
                    0,
                ),
                Errno::EINVAL,
            ),
            3 => (
                "mmap misaligned offset",
                sys::mmap(addr, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, self.fd, 100),
                Errno::EINVAL,
            ),
            4 => (
                "mmap bad fd",
                sys::mmap(addr, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, 999, 0),
                Errno::EBADF,
            ),
            5 => (
                "munmap misaligned",
                sys::munmap(addr + 8, len),
                Errno::EINVAL,
            ),
            6 => ("munmap len 0", sys::munmap(addr, 0), Errno::EINVAL),
            7 => (
                "mprotect bad prot",
                sys::mprotect(addr, len, 0x20),
                Errno::EINVAL,
            ),
            _ => (
                "mremap fixed without maymove",
                sys::mremap(addr, len, len, MREMAP_FIXED, addr),
                Errno::EINVAL,
            ),
        };
        self.op = Op {
            name,
            args: [addr, len, 0, 0],
        };
        self.expect(got, Err(want));
        (first, count)
    }
}

/// `/tmp/fuzz-model-PID-INDEX`, NUL-terminated.
fn file_path(index: usize) -> Vec<u8> {
    let mut path = alloc::format!("/tmp/fuzz-model-{}-{index}", sys::getpid()).into_bytes();
    path.push(0);
    path
}

/// Creates the editor's file: page `k` holds the tag `file[k]` (and its seal).
fn create_file(index: usize, file: &[u64]) -> Result<usize, Errno> {
    let path = file_path(index);
    // Linux's initramfs may have no /tmp.
    let _ = sys::mkdir(c"/tmp".as_ptr() as usize, 0o1777);
    let fd = sys::openat(
        sys::AT_FDCWD,
        path.as_ptr() as usize,
        sys::O_RDWR | sys::O_CREAT | sys::O_TRUNC | sys::O_CLOEXEC,
        0o600,
    )?;
    let mut page = vec![0u64; PAGE_SIZE / 8];
    for (k, &tag) in file.iter().enumerate() {
        page[0] = tag;
        page[LAST_WORD] = seal(tag);
        sys::pwrite64(fd, page.as_ptr() as usize, PAGE_SIZE, k * PAGE_SIZE)?;
    }
    Ok(fd)
}
