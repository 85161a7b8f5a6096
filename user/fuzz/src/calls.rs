//! `fuzz calls SEED COUNT`: COUNT system calls with hostile arguments, one line each
//! (`call NAME(ARGS) -> RESULT`), then `calls: N calls, seed S`.
//!
//! Every argument comes from the seeded generator and from addresses fixed at build time (the
//! program is static and not position-independent), so that one seed prints the same lines on
//! every kernel that answers the same; results the kernel may legitimately choose differently
//! are printed as a word (`addr` for a mapping's address, `pid` for process and thread ids,
//! `ok` for times).
//!
//! What the fuzzer owns, and the only memory a call may change the mappings of:
//! - the window, `WINDOW..WINDOW + WINDOW_SPAN`: every range given to mmap, munmap, mprotect,
//!   madvise, mremap, mlock, msync and mincore lies in it or is invalid (kernel half,
//!   non-canonical, above the user limit, wrapping); every `reset` rebuilds its layout;
//! - the arena, `ARENA..ARENA_END`: the structures a call reads (prepared fresh before each
//!   call in one slot per argument) and small buffers a call writes; the page after it is never
//!   mapped, so that `ARENA_END - k` is a pointer whose first bytes are mapped and the rest not;
//! - the descriptors `FIRST_FD..=LAST_FD` and the directory `/tmp/fuzz-SEED`, whose
//!   subdirectory `work` is the working directory of the calls.
//!
//! The program itself never reads or writes through a pointer it hands to the kernel, except
//! to prepare the arena (always mapped) before each call. Calls that would end, stop or block
//! the fuzzer are left out or given only arguments that fail or return at once (zero
//! timeouts, invalid signals, nonexistent processes, non-blocking descriptors).

use alloc::string::String;
use core::fmt::Write;

use urt::println;
use urt::sys::{self, Errno, nr};

use crate::rng::Rng;

const PAGE: usize = 4096;
/// The fuzzer's own part of the address space for mapping calls.
const WINDOW: usize = 0x1000_0000_0000;
const WINDOW_SPAN: usize = 1 << 40;
/// The window after a reset: read-write pages, a hole, read-only pages, `PROT_NONE` pages.
const RW_PAGES: usize = 24;
const HOLE_END: usize = 28;
const RO_END: usize = 36;
const NONE_END: usize = 40;
/// The part of the window the mapping calls aim at (a few pages beyond the layout).
const TARGET_PAGES: usize = 48;
/// The longest range a valid mapping call gets (larger ones are invalid or wrap).
const MAX_RANGE_PAGES: usize = 64;
const ARENA: usize = 0x0f00_0000_0000;
const ARENA_PAGES: usize = 16;
const ARENA_END: usize = ARENA + ARENA_PAGES * PAGE;
/// Each argument's slot in the arena: what the call reads, or a small buffer it writes.
const SLOT: usize = 0x800;
/// The first user address that is not (Linux's `TASK_SIZE`, x86_64, 4-level paging).
const USER_LIMIT: usize = 0x7fff_ffff_f000;
const KERNEL_HALF: usize = 0xffff_8000_0000_0000;
/// The calls between two resets of the window, the descriptors and the directory.
const RESET_EVERY: u64 = 64;
/// `setpriority`'s "every process of a user".
const PRIO_USER: usize = 2;

/// The descriptors a reset opens: a file, the directory, a pipe, an eventfd, a memfd, the file
/// again read-only.
const FILE_FD: usize = 3;
const DIR_FD: usize = 4;
const PIPE_READ_FD: usize = 5;
const PIPE_WRITE_FD: usize = 6;
const EVENT_FD: usize = 7;
const MEMFD_FD: usize = 8;
const READ_ONLY_FD: usize = 9;
const FIRST_FD: usize = 3;
const LAST_FD: usize = 12;

/// How a result is printed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Show {
    /// The value itself.
    Value,
    /// `addr`: an address the kernel chose.
    Addr,
    /// `pid`: a process, group, session or thread id.
    Pid,
    /// `ok`: a time or a count of ticks.
    Ok,
}

/// One system call: its name, number, number of arguments, how its result is shown, and the
/// generator of its arguments.
struct Call {
    name: &'static str,
    number: usize,
    arity: usize,
    show: Show,
    args: fn(&mut Gen) -> [usize; 6],
}

/// The seeded source of hostile arguments, and the arena they point into.
struct Gen {
    rng: Rng,
}

/// Paths relative to the working directory (`work` in the fuzzer's directory, which a reset
/// makes the working directory) and one that cannot exist. None leads out of the fuzzer's
/// directory, so that no call changes anything else, whatever machine runs it: the one `..`
/// (`d/../f`) leads one level above the working directory when `d` is a symbolic link to `.`
/// (a call may make one), which is why the working directory is a level down; no path goes
/// further up from there (it would need a directory named `d` one level up, and the calls can
/// make only files there).
const PATHS: &[&[u8]] = &[
    b"f\0",
    b"d\0",
    b"l\0",
    b"g\0",
    b"d/x\0",
    b".\0",
    b"\0",
    b"/nonexistent/x\0",
    b"f/\0",
    b"f/x\0",
    b"d/../f\0",
];

impl Gen {
    fn below(&mut self, bound: usize) -> usize {
        self.rng.below(bound as u64) as usize
    }

    fn one(&mut self, choices: &[usize]) -> usize {
        *self.rng.pick(choices)
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// Copies `bytes` to the start of `slot` and returns its address.
    fn put(&mut self, slot: usize, bytes: &[u8]) -> usize {
        let at = ARENA + slot * SLOT;
        let len = bytes.len().min(SLOT);
        // SAFETY: the arena is mapped read-write for the whole run (`map_arena`, and no call
        // may change mappings outside the window), and `len` keeps the copy in the slot.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, len) };
        at
    }

    /// `put` of 64-bit words.
    fn put_words(&mut self, slot: usize, words: &[u64]) -> usize {
        let mut bytes = [0u8; SLOT];
        for (chunk, word) in bytes.as_chunks_mut::<8>().0.iter_mut().zip(words) {
            *chunk = word.to_le_bytes();
        }
        self.put(slot, &bytes[..(words.len() * 8).min(SLOT)])
    }

    /// An address no call may dereference: NULL, a hole in the window, the kernel half,
    /// non-canonical, above the user limit.
    fn bad_pointer(&mut self) -> usize {
        match self.below(6) {
            0 => 0,
            1 => WINDOW + RW_PAGES * PAGE + self.below(PAGE),
            2 => KERNEL_HALF + self.below(4) * 0x1000_0000 + self.one(&[0, 8, 0xfff]),
            3 => self.one(&[
                0x0000_8000_0000_0000,
                0x8000_0000_0000_0000,
                0x00ff_0000_0000_0000,
            ]),
            4 => USER_LIMIT + self.one(&[0, 0x10, 0xff8]),
            _ => self.one(&[1, 0xfff, usize::MAX, usize::MAX - 7]),
        }
    }

    /// A pointer to what `slot` holds, or a hostile variant of it: misaligned, straddling the
    /// arena's end (its first bytes mapped, the rest not), into the window, or bad.
    fn pointer_to(&mut self, good: usize) -> usize {
        match self.below(10) {
            0..=3 => good,
            4 => good + self.one(&[1, 2, 3, 4, 7]),
            5 => ARENA_END - self.one(&[1, 2, 3]),
            6 => WINDOW + self.below(TARGET_PAGES) * PAGE + self.one(&[0, 0, 8, 0xff9]),
            _ => self.bad_pointer(),
        }
    }

    /// A pointer to `words` (put in `slot`), or a hostile variant.
    fn words(&mut self, slot: usize, words: &[u64]) -> usize {
        let good = self.put_words(slot, words);
        self.pointer_to(good)
    }

    /// A pointer the kernel reads a timeout or a time from: only ones that do not sleep (zero or
    /// invalid; a relative nanosecond of a CPU-time clock is a wait without end for a process
    /// that sleeps), never the window, whose bytes could say anything.
    fn timeout(&mut self, slot: usize) -> usize {
        self.time_pointer(
            slot,
            &[[0, 0], [0, 1_000_000_000], [u64::MAX, 0], [0, u64::MAX]],
        )
    }

    /// As `timeout`, for a `struct timeval` (select's), whose microseconds Linux carries into
    /// seconds instead of refusing: no value a million or above.
    fn timeval(&mut self, slot: usize) -> usize {
        self.time_pointer(slot, &[[0, 0], [u64::MAX, 0], [0, u64::MAX]])
    }

    fn time_pointer(&mut self, slot: usize, pairs: &[[u64; 2]]) -> usize {
        let pair = *self.rng.pick(pairs);
        let good = self.put_words(slot, &pair);
        match self.below(8) {
            0..=4 => good,
            5 => good + 16, // the zeros after it
            6 => ARENA_END - self.one(&[1, 2, 3]),
            // Never NULL: no timeout at all is a wait without end.
            _ => self.bad_pointer().max(1),
        }
    }

    /// A buffer the kernel writes or reads, and its length: a small one in the arena, one in
    /// the window of any length (the kernel stops at the first hole), or a bad one.
    fn buffer(&mut self, slot: usize) -> (usize, usize) {
        match self.below(8) {
            0..=2 => {
                let at = ARENA + slot * SLOT + self.one(&[0, 0, 1, 8]);
                (at, self.one(&[0, 1, 8, 64, 512, 0x400]))
            }
            3 => (ARENA_END - self.below(16) - 1, self.one(&[1, 16, 64])),
            4 | 5 => (
                WINDOW + self.below(TARGET_PAGES) * PAGE + self.one(&[0, 0, 1, 0xff0]),
                self.length(),
            ),
            _ => (self.bad_pointer(), self.length()),
        }
    }

    /// A length: zero, small, a page and a byte more, huge, wrapping.
    fn length(&mut self) -> usize {
        self.one(&[
            0,
            1,
            7,
            64,
            PAGE,
            PAGE + 1,
            0x1_0000,
            0x7fff_f000,
            1 << 31,
            1 << 63,
            usize::MAX,
            usize::MAX - 7,
        ])
    }

    /// A path: one of `PATHS`, a path longer than `PATH_MAX`, one without its terminating
    /// byte at the arena's end, or a bad pointer.
    fn path(&mut self, slot: usize) -> usize {
        match self.below(12) {
            0..=7 => {
                let path = *self.rng.pick(PATHS);
                self.put(slot, path)
            }
            8 => {
                let long = [b'a'; SLOT];
                let at = self.put(slot, &long);
                self.put(slot + 1, &[b'a'; SLOT - 1]);
                at // two slots of 'a' and then zeros: 4095 bytes, PATH_MAX with its 0
            }
            9 => ARENA_END - self.one(&[1, 2, 3]),
            _ => self.bad_pointer(),
        }
    }

    /// A descriptor: one of the fuzzer's own, or an invalid one (never 0, 1 or 2, also not
    /// in its low 32 bits, so that no call closes or writes the console).
    fn fd(&mut self) -> usize {
        match self.below(8) {
            0..=5 => FIRST_FD + self.below(LAST_FD - FIRST_FD + 1),
            6 => self.one(&[usize::MAX, 0xffff_ffff, 1023, 1 << 20, 0x7fff_ffff]),
            _ => self.one(&[0x1_0000_0003, (-100isize) as usize, 0x8000_0000]),
        }
    }

    /// A directory descriptor: `AT_FDCWD` or `fd`.
    fn dirfd(&mut self) -> usize {
        if self.chance(2) {
            sys::AT_FDCWD
        } else {
            self.fd()
        }
    }

    /// Flags: none, known ones, unknown bits, all bits.
    fn flags(&mut self, known: usize) -> usize {
        match self.below(6) {
            0 => 0,
            1 | 2 => known & self.rng.next_u64() as usize,
            3 => (known & self.rng.next_u64() as usize) | 1 << self.below(64),
            4 => 1 << self.below(64),
            _ => self.one(&[usize::MAX, 0xffff_ffff, 0x8000_0000]),
        }
    }

    /// A small or hostile integer.
    fn int(&mut self) -> usize {
        match self.below(3) {
            0 => self.below(8),
            1 => self.one(&[0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 32, usize::MAX]),
            _ => self.rng.next_u64() as usize,
        }
    }

    /// A process id: the caller (0), init (1), nonexistent or invalid (never -1 with a real
    /// signal: the callers give only signal 0 or invalid ones).
    fn pid(&mut self) -> usize {
        self.one(&[
            0,
            1,
            0x3fff_0000,
            0x7fff_ffff,
            usize::MAX,
            0xffff_ffff,
            0x8000_0000,
        ])
    }

    /// A signal that reaches no one: 0 (a check only) or an invalid number.
    fn no_signal(&mut self) -> usize {
        self.one(&[0, 65, 128, usize::MAX, 0xffff_ffff, 1 << 32])
    }

    /// A signal number for calls that name one without sending it.
    fn signal(&mut self) -> usize {
        self.one(&[0, 9, 19, 10, 12, 32, 64, 65, usize::MAX])
    }

    /// A range in the window (page-aligned or not, small) or an invalid one (starting beyond
    /// the user limit, wrapping, in the kernel half).
    fn range(&mut self) -> (usize, usize) {
        let inside = WINDOW + self.below(TARGET_PAGES) * PAGE;
        match self.below(10) {
            0..=5 => (inside, self.below(MAX_RANGE_PAGES / 4 + 1) * PAGE),
            6 => (
                inside + self.one(&[1, 0x800, 0xfff]),
                self.one(&[1, PAGE, 3 * PAGE]),
            ),
            // Wrapping lengths only: a range from the window across the user limit covers the
            // fuzzer's stack, which madvise(MADV_DONTNEED) would clear, on Linux too.
            7 => (inside, self.one(&[usize::MAX, usize::MAX - PAGE + 2])),
            8 => (
                self.bad_pointer() & !(PAGE - 1),
                self.one(&[0, PAGE, 16 * PAGE]),
            ),
            _ => (inside, self.one(&[0, 1, PAGE - 1, 2 * PAGE + 1])),
        }
    }

    /// An address for `mmap` or `mremap`'s destination: in the window or invalid, never NULL
    /// (a fixed mapping at 0 would turn later NULL pointers valid).
    fn map_address(&mut self) -> usize {
        match self.below(6) {
            0..=3 => WINDOW + self.below(TARGET_PAGES) * PAGE + self.one(&[0, 0, 0, 1, 0x800]),
            _ => loop {
                let bad = self.bad_pointer();
                if bad >= USER_LIMIT {
                    break bad & !(PAGE - 1);
                }
            },
        }
    }
}

/// `[a, b, c, 0, 0, 0]` and the like.
fn args(given: &[usize]) -> [usize; 6] {
    let mut all = [0; 6];
    all[..given.len()].copy_from_slice(given);
    all
}

fn read_like(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    let (buf, len) = g.buffer(1);
    args(&[fd, buf, len, g.one(&[0, 1, PAGE, usize::MAX, 1 << 62])])
}

fn vector_like(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    let count = g.one(&[0, 1, 2, 3, 1024, 1025, usize::MAX]);
    let base = WINDOW + g.below(RW_PAGES) * PAGE;
    let lens = [g.length() as u64, 16, 0, 64];
    let iov = g.words(
        1,
        &[
            base as u64,
            lens[0],
            (base + 64) as u64,
            lens[1],
            0,
            lens[2],
        ],
    );
    args(&[fd, iov, count, g.one(&[0, 1, PAGE, usize::MAX])])
}

fn stat_like(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    let (buf, _) = g.buffer(2);
    args(&[path, buf])
}

fn fstat_like(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    let (buf, _) = g.buffer(1);
    args(&[fd, buf])
}

fn path_mode(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    args(&[path, g.flags(0o7777)])
}

fn two_paths(g: &mut Gen) -> [usize; 6] {
    let from = g.path(0);
    let to = g.path(2);
    args(&[from, to])
}

fn one_path(g: &mut Gen) -> [usize; 6] {
    args(&[g.path(0)])
}

fn one_fd(g: &mut Gen) -> [usize; 6] {
    args(&[g.fd()])
}

fn no_args(_: &mut Gen) -> [usize; 6] {
    [0; 6]
}

fn chown_like(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    args(&[
        path,
        g.one(&[0, 1000, usize::MAX, 0xffff_ffff]),
        g.one(&[0, 1000, usize::MAX]),
    ])
}

fn mmap(g: &mut Gen) -> [usize; 6] {
    let addr = g.map_address();
    let len = g.one(&[
        0,
        1,
        PAGE,
        3 * PAGE,
        16 * PAGE,
        PAGE + 1,
        1 << 40,
        usize::MAX,
        usize::MAX - PAGE + 2,
        USER_LIMIT,
    ]);
    let prot = g.flags(0x7 | 0x0100_0000 | 0x0200_0000);
    let kind = g.one(&[1, 2, 3, 0, 2, 2]);
    let mut flags = kind | g.flags(0x10 | 0x20 | 0x100 | 0x4000 | 0x1_0000 | 0x10_0000) & !0xf;
    if len > MAX_RANGE_PAGES * PAGE {
        // Population of a huge mapping would exhaust the machine, not test the kernel.
        flags &= !(sys::MAP_POPULATE | sys::MAP_LOCKED);
    }
    if g.chance(2) {
        flags |= sys::MAP_ANONYMOUS;
    }
    if g.chance(3) {
        flags |= sys::MAP_FIXED;
    }
    let fd = if g.chance(2) { usize::MAX } else { g.fd() };
    let offset = g.one(&[0, 0, PAGE, 1, 1 << 40, usize::MAX - PAGE + 1]);
    [addr, len, prot, flags, fd, offset]
}

fn mprotect(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    args(&[addr, len, g.flags(0x7 | 0x0100_0000 | 0x0200_0000)])
}

fn munmap(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    args(&[addr, len])
}

fn madvise(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    // Every advice Linux knows but the two that poison or offline pages (100, 101).
    let advice = g.one(&[
        0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23,
    ]);
    let advice = if g.chance(8) { g.int() } else { advice };
    args(&[
        addr,
        len,
        if advice == 100 || advice == 101 {
            0
        } else {
            advice
        },
    ])
}

fn mremap(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    let new_len = g.one(&[0, PAGE, 2 * PAGE, 8 * PAGE, PAGE + 1, usize::MAX, 1 << 47]);
    let flags = g.flags(0x7);
    args(&[addr, len, new_len, flags, g.map_address()])
}

fn range_flags(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    args(&[addr, len, g.flags(0x7)])
}

fn mincore(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    let vector = if g.chance(2) {
        WINDOW + g.below(RW_PAGES) * PAGE
    } else {
        g.bad_pointer()
    };
    args(&[addr, len, vector])
}

fn brk(g: &mut Gen) -> [usize; 6] {
    args(&[g.one(&[
        0,
        1,
        PAGE,
        KERNEL_HALF,
        0x0000_8000_0000_0000,
        USER_LIMIT,
        usize::MAX,
    ])])
}

fn rt_sigaction(g: &mut Gen) -> [usize; 6] {
    let sig = g.one(&[0, 9, 19, 10, 12, 65, usize::MAX, 32, 64]);
    let handler = g.one(&[0, 1, 0x1234, usize::MAX]) as u64;
    let flags = g.flags(0xdc00_0007) as u64;
    let mask = g.rng.next_u64();
    let act = g.words(1, &[handler, flags, 0, mask]);
    let (old, _) = g.buffer(2);
    args(&[sig, act, old, g.one(&[8, 8, 0, 4, 16])])
}

fn rt_sigprocmask(g: &mut Gen) -> [usize; 6] {
    let how = g.one(&[0, 1, 2, 3, usize::MAX]);
    let mask = g.rng.next_u64();
    let set = g.words(1, &[mask]);
    let (old, _) = g.buffer(2);
    args(&[how, set, old, g.one(&[8, 8, 0, 4, 16])])
}

fn ioctl(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    // No FIONBIO nor FIOASYNC: a blocking pipe would hang the fuzzer, SIGIO would end it.
    let request = g.one(&[
        0x5401,
        0x5413,
        0x541b,
        0x5451,
        0x5450,
        0x540f,
        0,
        0xdead_beef,
    ]);
    let (arg, _) = g.buffer(2);
    args(&[fd, request, arg])
}

fn access(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    args(&[path, g.flags(0x7)])
}

fn pipe2(g: &mut Gen) -> [usize; 6] {
    let (fds, _) = g.buffer(0);
    // Always non-blocking: the fuzzer reads every descriptor it has.
    args(&[fds, g.flags(0o2004000 | 0o40000) | sys::O_NONBLOCK])
}

fn select(g: &mut Gen) -> [usize; 6] {
    let nfds = g.one(&[0, 1, 8, 13, 64, 1024, 1025, 0x8000_0000, usize::MAX]);
    let read = g.words(1, &[0x1f8]);
    let write = g.words(2, &[0x1f8]);
    let bits = g.rng.next_u64();
    let except = g.words(3, &[bits]);
    args(&[nfds, read, write, except, g.timeval(4)])
}

fn dup2(g: &mut Gen) -> [usize; 6] {
    let old = g.fd();
    args(&[old, g.fd(), g.flags(0o2000000)])
}

fn nanosleep(g: &mut Gen) -> [usize; 6] {
    let req = g.timeout(0);
    let (rem, _) = g.buffer(1);
    args(&[req, rem])
}

fn getitimer(g: &mut Gen) -> [usize; 6] {
    let which = g.one(&[0, 1, 2, 3, usize::MAX]);
    let (out, _) = g.buffer(1);
    args(&[which, out])
}

fn setitimer(g: &mut Gen) -> [usize; 6] {
    let which = g.one(&[0, 1, 2, 3, usize::MAX]);
    let usec = g.one(&[0, 1000, 999_999, 1_000_000, usize::MAX]) as u64;
    let sec = g.one(&[0, 1, 10]) as u64;
    let new = g.words(1, &[0, 0, sec, usec]);
    let (old, _) = g.buffer(2);
    args(&[which, new, old])
}

fn alarm(g: &mut Gen) -> [usize; 6] {
    args(&[g.one(&[0, 1, 1000, 0xffff_ffff, usize::MAX, 1 << 32])])
}

fn sendfile(g: &mut Gen) -> [usize; 6] {
    let out = g.fd();
    let input = g.fd();
    let offset = if g.chance(3) {
        0
    } else {
        let at = g.one(&[0, 1, 1 << 40, usize::MAX]) as u64;
        g.words(2, &[at])
    };
    args(&[out, input, offset, g.length()])
}

fn socket(g: &mut Gen) -> [usize; 6] {
    let domain = g.one(&[0, 1, 2, 10, 16, 17, 46, 0xffff]);
    // Always non-blocking, as pipe2.
    let kind = g.one(&[0, 1, 2, 3, 5, 0x80801, 0xffff]) | sys::O_NONBLOCK;
    let (out, _) = g.buffer(3);
    args(&[domain, kind, g.one(&[0, 1, 6, 17, 255]), out])
}

fn clone(g: &mut Gen) -> [usize; 6] {
    // Only combinations Linux refuses before creating anything (in the low 32 bits: clone
    // ignores the rest).
    let flags = g.one(&[
        0x800,
        0x1_0000,
        0x1_0000 | 0x800,
        0x200 | 0x2_0000,
        0x1000_0000 | 0x200,
    ]);
    let (tid, _) = g.buffer(2);
    args(&[flags, g.bad_pointer(), tid, tid, g.bad_pointer()])
}

fn execve(g: &mut Gen) -> [usize; 6] {
    // The paths are the fuzzer's own files and directories, none a program.
    let path = g.path(0);
    let argv = g.words(2, &[0x0f00_0000_0000, 0]);
    args(&[path, argv, if g.chance(2) { 0 } else { g.bad_pointer() }])
}

fn wait4(g: &mut Gen) -> [usize; 6] {
    // The fuzzer has no children: nothing to wait for, whatever the options.
    let (status, _) = g.buffer(1);
    let (usage, _) = g.buffer(3);
    args(&[
        g.one(&[usize::MAX, 0, 1, 0x3fff_0000, 0x8000_0000]),
        status,
        g.flags(0xe100_000f),
        usage,
    ])
}

fn kill(g: &mut Gen) -> [usize; 6] {
    let pid = g.one(&[0, 1, usize::MAX, 0x3fff_0000, 0x8000_0000, 0xffff_ffff]);
    args(&[pid, g.no_signal()])
}

fn uname(g: &mut Gen) -> [usize; 6] {
    let (out, _) = g.buffer(0);
    args(&[out])
}

fn fcntl(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    let cmd = g.one(&[
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1030, 1031, 1032, 1033, 1034, 1024, 1025, 9999,
    ]);
    let arg = match cmd {
        // F_SETFL: never clear O_NONBLOCK, never set O_ASYNC.
        4 => {
            (g.flags(0o2000000 | 0o4000 | 0o200000 | 0o40000 | 0o1000) | sys::O_NONBLOCK) & !0o20000
        }
        5..=7 => {
            let kind = g.one(&[0, 1, 2, 3]) as u64;
            let whence = g.one(&[0, 1, 2]) as u64;
            let start = g.one(&[0, 1, usize::MAX]) as u64;
            g.words(2, &[kind | whence << 16, start, 0, 0])
        }
        _ => g.int(),
    };
    args(&[fd, cmd, arg])
}

fn truncate(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    args(&[path, g.one(&[0, 1, PAGE, 1 << 20, usize::MAX, 1 << 63])])
}

fn ftruncate(g: &mut Gen) -> [usize; 6] {
    args(&[g.fd(), g.one(&[0, 1, PAGE, 1 << 20, usize::MAX, 1 << 63])])
}

fn getcwd(g: &mut Gen) -> [usize; 6] {
    let (buf, len) = g.buffer(0);
    args(&[buf, len])
}

fn mkdir(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    args(&[path, g.flags(0o7777)])
}

fn creat(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    args(&[path, g.flags(0o7777)])
}

fn readlink(g: &mut Gen) -> [usize; 6] {
    let path = g.path(0);
    let (buf, len) = g.buffer(2);
    args(&[path, buf, len])
}

fn fchmod(g: &mut Gen) -> [usize; 6] {
    args(&[g.fd(), g.flags(0o7777)])
}

fn fchown(g: &mut Gen) -> [usize; 6] {
    args(&[
        g.fd(),
        g.one(&[0, 1000, usize::MAX]),
        g.one(&[0, 1000, usize::MAX]),
    ])
}

fn umask(g: &mut Gen) -> [usize; 6] {
    args(&[g.flags(0o777)])
}

fn out_pair(g: &mut Gen) -> [usize; 6] {
    let (a, _) = g.buffer(0);
    let (b, _) = g.buffer(1);
    args(&[a, b])
}

fn one_out(g: &mut Gen) -> [usize; 6] {
    let (a, _) = g.buffer(0);
    args(&[a])
}

fn getrlimit(g: &mut Gen) -> [usize; 6] {
    let resource = g.one(&[0, 1, 3, 7, 8, 15, 16, 100, usize::MAX]);
    let (out, _) = g.buffer(1);
    args(&[resource, out])
}

fn getrusage(g: &mut Gen) -> [usize; 6] {
    let who = g.one(&[0, 1, usize::MAX, usize::MAX - 1, 2, 99]);
    let (out, _) = g.buffer(1);
    args(&[who, out])
}

fn setpgid(g: &mut Gen) -> [usize; 6] {
    args(&[g.pid(), g.pid()])
}

fn one_pid(g: &mut Gen) -> [usize; 6] {
    args(&[g.pid()])
}

fn capget(g: &mut Gen) -> [usize; 6] {
    let version = g.one(&[0x1998_0330, 0x2007_1026, 0x2008_0522, 0, 0xdead]) as u64;
    let pid = g.one(&[0, 1, 0x3fff_0000]) as u64;
    let header = g.words(0, &[version | pid << 32]);
    let (data, _) = g.buffer(1);
    args(&[header, data])
}

fn capset(g: &mut Gen) -> [usize; 6] {
    // Never data that drops the capabilities: the rest of the run would be a different test.
    let version = g.one(&[0x1998_0330, 0x2008_0522, 0, 0xdead]) as u64;
    let pid = g.one(&[0, 1, 0x3fff_0000]) as u64;
    let header = g.words(0, &[version | pid << 32]);
    args(&[header, g.bad_pointer()])
}

fn rt_sigpending(g: &mut Gen) -> [usize; 6] {
    let (out, _) = g.buffer(0);
    args(&[out, g.one(&[8, 8, 0, 4, 16])])
}

fn rt_sigtimedwait(g: &mut Gen) -> [usize; 6] {
    let mask = g.rng.next_u64();
    let set = g.words(0, &[mask]);
    let (info, _) = g.buffer(1);
    args(&[set, info, g.timeout(2), g.one(&[8, 8, 0, 16])])
}

fn rt_sigqueueinfo(g: &mut Gen) -> [usize; 6] {
    let pid = g.pid();
    let sig = g.no_signal();
    let code = g.one(&[0, usize::MAX, usize::MAX - 5]) as u64;
    let info = g.words(2, &[sig as u64, code << 32, 0, 0]);
    args(&[pid, sig, info])
}

fn rt_sigsuspend(g: &mut Gen) -> [usize; 6] {
    // Only calls that fail at once: a valid mask would wait for a signal that never comes.
    if g.chance(2) {
        args(&[g.bad_pointer(), 8])
    } else {
        let set = g.put_words(0, &[0]);
        args(&[set, g.one(&[0, 4, 16, usize::MAX])])
    }
}

fn sigaltstack(g: &mut Gen) -> [usize; 6] {
    let sp = (WINDOW + g.below(RW_PAGES) * PAGE) as u64;
    let flags = g.one(&[0, 1, 2, 4, 0x8000_0000, 0xffff]) as u64;
    let size = g.one(&[0, 2047, 2048, 8192, usize::MAX]) as u64;
    let new = if g.chance(4) {
        0
    } else {
        g.words(0, &[sp, flags, size])
    };
    let (old, _) = g.buffer(1);
    args(&[new, old])
}

fn getpriority(g: &mut Gen) -> [usize; 6] {
    args(&[g.one(&[0, 1, 2, 3, usize::MAX]), g.pid()])
}

fn setpriority(g: &mut Gen) -> [usize; 6] {
    args(&[
        g.one(&[0, 1, 2, 3, usize::MAX]),
        g.pid(),
        g.one(&[0, 5, 19, 20, usize::MAX - 20, 1000]),
    ])
}

fn sched_param(g: &mut Gen) -> [usize; 6] {
    let priority = g.one(&[0, 1, 50, 99, 100, 0xffff_ffff]) as u64;
    let param = g.words(1, &[priority]);
    args(&[g.pid(), param])
}

fn sched_setscheduler(g: &mut Gen) -> [usize; 6] {
    let policy = g.one(&[0, 1, 2, 3, 5, 6, 7, 0x4000_0000, usize::MAX]);
    let priority = g.one(&[0, 1, 50, 99, 100, 0xffff_ffff]) as u64;
    let param = g.words(2, &[priority]);
    args(&[g.pid(), policy, param])
}

fn policy_only(g: &mut Gen) -> [usize; 6] {
    args(&[g.one(&[0, 1, 2, 3, 5, 6, 7, usize::MAX])])
}

fn pid_out(g: &mut Gen) -> [usize; 6] {
    let pid = g.pid();
    let (out, _) = g.buffer(1);
    args(&[pid, out])
}

fn mlock(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    args(&[addr, len])
}

fn mlockall(g: &mut Gen) -> [usize; 6] {
    // No MCL_FUTURE: it would make every later mapping resident, a huge one included.
    args(&[g.one(&[0, 1, 4, 5, 8, usize::MAX, 0x10])])
}

fn prctl(g: &mut Gen) -> [usize; 6] {
    // No PR_SET_SECCOMP, PR_SET_TSC, PR_SET_MM nor the like: they would end the fuzzer.
    let option = g.one(&[0, 1, 2, 3, 4, 15, 16, 36, 37, 38, 39, 0x7fff, usize::MAX]);
    let arg = match option {
        1 => g.signal(),
        2 | 16 => g.buffer(1).0,
        15 => g.path(1),
        _ => g.int(),
    };
    args(&[option, arg, g.int(), g.int(), g.int()])
}

fn arch_prctl(g: &mut Gen) -> [usize; 6] {
    let code = g.one(&[0x1001, 0x1002, 0x1003, 0x1004, 0x1011, 0x1021, 0, 0x9999]);
    let arg = match code {
        // Setting FS or GS to a usable address would break the fuzzer's thread pointer.
        0x1001 | 0x1002 => g.one(&[KERNEL_HALF, 0x0000_8000_0000_0000, usize::MAX]),
        _ => g.buffer(1).0,
    };
    args(&[code, arg])
}

fn mount(g: &mut Gen) -> [usize; 6] {
    let source = g.path(0);
    let target = g.path(2);
    // The file system type is always an unreadable pointer (never NULL, which a remount or a
    // bind mount takes): refused before anything is mounted or changed.
    let kind = g.bad_pointer().max(1);
    args(&[source, target, kind, g.flags(0x7fff), g.bad_pointer()])
}

fn umount2(g: &mut Gen) -> [usize; 6] {
    let target = g.path(0);
    args(&[target, g.flags(0xf)])
}

fn reboot(g: &mut Gen) -> [usize; 6] {
    // A wrong first magic number: refused before anything else.
    args(&[
        g.one(&[0, 0xfee1_deae, usize::MAX]),
        g.int(),
        0x4321_fedc,
        0,
    ])
}

fn tkill(g: &mut Gen) -> [usize; 6] {
    args(&[g.pid(), g.no_signal()])
}

fn futex(g: &mut Gen) -> [usize; 6] {
    let word = if g.chance(2) {
        let value = g.one(&[0, 1, 0x8000_0000]) as u64;
        g.put_words(0, &[value]) + g.one(&[0, 0, 4, 1])
    } else {
        g.bad_pointer()
    };
    let op = g.one(&[0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 99]) | g.one(&[0, 128, 256]);
    // Every waiting operation gets a timeout that has passed (or a bad one).
    let timeout = g.timeout(1);
    let other = if g.chance(2) {
        g.put_words(2, &[0])
    } else {
        g.bad_pointer()
    };
    args(&[
        word,
        op,
        g.one(&[0, 1, 0x7fff_ffff, 0xffff_ffff]),
        timeout,
        other,
        g.int(),
    ])
}

fn affinity(g: &mut Gen) -> [usize; 6] {
    let pid = g.pid();
    let size = g.one(&[0, 1, 7, 8, 128, 4096, usize::MAX]);
    let bits = g.one(&[0, 1, 3, usize::MAX]) as u64;
    let mask = g.words(2, &[bits]);
    args(&[pid, size, mask])
}

fn xattr_set(g: &mut Gen) -> [usize; 6] {
    let target = if g.chance(3) { g.fd() } else { g.path(0) };
    let name = g.one(&[0, 1, 2]);
    let name = match name {
        0 => g.put(2, b"user.fuzz\0"),
        1 => g.put(2, b"bogus\0"),
        _ => g.bad_pointer(),
    };
    let (value, len) = g.buffer(3);
    args(&[target, name, value, len, g.flags(0x3)])
}

fn xattr_get(g: &mut Gen) -> [usize; 6] {
    let mut all = xattr_set(g);
    all[4] = 0;
    all
}

fn xattr_list(g: &mut Gen) -> [usize; 6] {
    let target = if g.chance(3) { g.fd() } else { g.path(0) };
    let (buf, len) = g.buffer(1);
    args(&[target, buf, len])
}

fn xattr_remove(g: &mut Gen) -> [usize; 6] {
    let mut all = xattr_set(g);
    all[2] = 0;
    all[3] = 0;
    all[4] = 0;
    all
}

fn getdents(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    let (buf, len) = g.buffer(1);
    args(&[fd, buf, len])
}

fn set_tid_address(g: &mut Gen) -> [usize; 6] {
    args(&[g.buffer(0).0])
}

fn fadvise(g: &mut Gen) -> [usize; 6] {
    args(&[
        g.fd(),
        g.one(&[0, 1, usize::MAX]),
        g.length(),
        g.one(&[0, 1, 2, 3, 4, 5, 6, 99]),
    ])
}

fn timer_create(g: &mut Gen) -> [usize; 6] {
    let clock = g.one(&[0, 1, 2, 3, 4, 5, 7, 11, 99, usize::MAX]);
    // SIGEV_NONE, or a signal the fuzzer ignores (SIGALRM), or invalid ones.
    let notify = g.one(&[1, 0, 4, 99]) as u64;
    let event = if g.chance(4) {
        0
    } else {
        let signal = g.one(&[14, 0, 65]) as u64;
        g.words(1, &[0, signal | notify << 32, 0, 0])
    };
    let (id, _) = g.buffer(2);
    args(&[clock, event, id])
}

fn timer_settime(g: &mut Gen) -> [usize; 6] {
    let timer = g.one(&[0, 1, 2, 99, usize::MAX]);
    let flags = g.one(&[0, 1, 2]);
    let nsec = g.one(&[0, 1000, 1_000_000_000, usize::MAX]) as u64;
    let new = g.words(2, &[0, 0, 0, nsec]);
    let (old, _) = g.buffer(3);
    args(&[timer, flags, new, old])
}

fn timer_gettime(g: &mut Gen) -> [usize; 6] {
    let timer = g.one(&[0, 1, 2, 99, usize::MAX]);
    let (out, _) = g.buffer(1);
    args(&[timer, out])
}

fn timer_only(g: &mut Gen) -> [usize; 6] {
    args(&[g.one(&[0, 1, 2, 99, usize::MAX])])
}

fn clock_out(g: &mut Gen) -> [usize; 6] {
    let clock = g.one(&[
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        11,
        99,
        usize::MAX,
        0xffff_fffe,
    ]);
    let (out, _) = g.buffer(1);
    args(&[clock, out])
}

fn clock_nanosleep(g: &mut Gen) -> [usize; 6] {
    let clock = g.one(&[0, 1, 2, 3, 7, 99, usize::MAX]);
    let flags = g.one(&[0, 1, 2, usize::MAX]);
    let req = g.timeout(2);
    let (rem, _) = g.buffer(3);
    args(&[clock, flags, req, rem])
}

fn tgkill(g: &mut Gen) -> [usize; 6] {
    args(&[g.pid(), g.pid(), g.no_signal()])
}

fn waitid(g: &mut Gen) -> [usize; 6] {
    let (info, _) = g.buffer(2);
    let (usage, _) = g.buffer(4);
    args(&[
        g.one(&[0, 1, 2, 3, 4, 99]),
        g.pid(),
        info,
        g.flags(0xe100_000f),
        usage,
    ])
}

fn openat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    // O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC,
    // O_PATH, O_TMPFILE and the access modes.
    let flags = g.flags(
        0o3 | 0o100
            | 0o200
            | 0o1000
            | 0o2000
            | 0o4000
            | 0o200000
            | 0o400000
            | 0o2000000
            | 0o10000000
            | 0o20000000,
    );
    args(&[dir, path, flags, g.flags(0o7777)])
}

fn open(g: &mut Gen) -> [usize; 6] {
    let all = openat(g);
    args(&[all[1], all[2], all[3]])
}

fn mkdirat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    args(&[dir, path, g.flags(0o7777)])
}

fn fchownat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    args(&[
        dir,
        path,
        g.one(&[0, 1000, usize::MAX]),
        g.one(&[0, 1000, usize::MAX]),
        g.flags(0x1100),
    ])
}

fn newfstatat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    let (buf, _) = g.buffer(2);
    args(&[dir, path, buf, g.flags(0x1100 | 0x800)])
}

fn unlinkat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    args(&[dir, path, g.flags(0x200)])
}

fn renameat(g: &mut Gen) -> [usize; 6] {
    let from_dir = g.dirfd();
    let from = g.path(1);
    let to_dir = g.dirfd();
    let to = g.path(3);
    args(&[from_dir, from, to_dir, to, g.flags(0x7)])
}

fn linkat(g: &mut Gen) -> [usize; 6] {
    let all = renameat(g);
    args(&[all[0], all[1], all[2], all[3], g.flags(0x1400)])
}

fn symlinkat(g: &mut Gen) -> [usize; 6] {
    let target = g.path(0);
    let dir = g.dirfd();
    let path = g.path(2);
    args(&[target, dir, path])
}

fn readlinkat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    let (buf, len) = g.buffer(3);
    args(&[dir, path, buf, len])
}

fn fchmodat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    args(&[dir, path, g.flags(0o7777), g.flags(0x1100)])
}

fn faccessat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    args(&[dir, path, g.flags(0x7), g.flags(0x1300)])
}

fn pselect6(g: &mut Gen) -> [usize; 6] {
    let mut all = select(g);
    all[4] = g.timeout(4);
    let mask = g.put_words(5, &[0]);
    all[5] = if g.chance(2) {
        0
    } else {
        let size = g.one(&[8, 0, 16]) as u64;
        g.words(5, &[mask as u64, size])
    };
    all
}

fn ppoll(g: &mut Gen) -> [usize; 6] {
    let events = g.one(&[1, 4, 0xffff]) as u64;
    let entry = |fd: usize| fd as u64 | events << 32;
    let fds = g.words(0, &[entry(FILE_FD), entry(PIPE_READ_FD), entry(1 << 20)]);
    let nfds = g.one(&[0, 1, 2, 3, 1 << 20, usize::MAX]);
    let timeout = g.timeout(1);
    let mask = if g.chance(2) { 0 } else { g.words(2, &[0]) };
    args(&[fds, nfds, timeout, mask, g.one(&[8, 0, 16])])
}

fn poll(g: &mut Gen) -> [usize; 6] {
    let all = ppoll(g);
    // Never a timeout: a poll that finds nothing ready would wait.
    args(&[all[0], all[1], 0])
}

fn set_robust_list(g: &mut Gen) -> [usize; 6] {
    let head = g.buffer(0).0;
    args(&[head, g.one(&[24, 0, 23, 25, usize::MAX])])
}

fn get_robust_list(g: &mut Gen) -> [usize; 6] {
    let (head, _) = g.buffer(1);
    let (len, _) = g.buffer(2);
    args(&[g.pid(), head, len])
}

fn utimensat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = if g.chance(4) { 0 } else { g.path(1) };
    let nsec = [0, (1 << 30) - 1, (1 << 30) - 2, 1_000_000_000, 5];
    let (access, modify) = (*g.rng.pick(&nsec), *g.rng.pick(&nsec));
    let times = g.words(2, &[0, access, 1, modify]);
    let times = if g.chance(4) { 0 } else { times };
    args(&[dir, path, times, g.flags(0x1100)])
}

fn eventfd2(g: &mut Gen) -> [usize; 6] {
    // Always non-blocking, as pipe2.
    args(&[g.int(), g.flags(0o2000000 | 1) | sys::O_NONBLOCK])
}

fn eventfd(g: &mut Gen) -> [usize; 6] {
    args(&[g.int()])
}

fn fallocate(g: &mut Gen) -> [usize; 6] {
    args(&[
        g.fd(),
        g.flags(0x7f),
        g.one(&[0, 1, PAGE, usize::MAX, 1 << 62]),
        // No huge length: tmpfs would allocate it.
        g.one(&[0, 1, PAGE, 1 << 16, usize::MAX]),
    ])
}

fn dup3(g: &mut Gen) -> [usize; 6] {
    let old = g.fd();
    args(&[old, g.fd(), g.flags(0o2000000)])
}

fn preadv(g: &mut Gen) -> [usize; 6] {
    vector_like(g)
}

fn rt_tgsigqueueinfo(g: &mut Gen) -> [usize; 6] {
    let all = rt_sigqueueinfo(g);
    args(&[all[0], g.pid(), all[1], all[2]])
}

fn prlimit64(g: &mut Gen) -> [usize; 6] {
    let resource = g.one(&[0, 1, 3, 7, 8, 15, 16, 100, usize::MAX]);
    // New limits only where they are refused (soft above hard) or unreadable: a change Linux
    // makes outlives the reset (a zero RLIMIT_NOFILE would fail every later open). The
    // window's bytes could be acceptable limits (zeros), so a pointer there becomes one that
    // straddles the arena's end (the same draws of the generator either way).
    let new = if g.chance(2) {
        0
    } else {
        let at = g.words(2, &[u64::MAX, 1]);
        if (WINDOW..WINDOW + WINDOW_SPAN).contains(&at) {
            ARENA_END - 8
        } else {
            at
        }
    };
    let (old, _) = g.buffer(3);
    args(&[g.pid(), resource, new, old])
}

fn getcpu(g: &mut Gen) -> [usize; 6] {
    let (cpu, _) = g.buffer(0);
    let (node, _) = g.buffer(1);
    args(&[cpu, node, 0])
}

fn getrandom(g: &mut Gen) -> [usize; 6] {
    let (buf, len) = g.buffer(0);
    args(&[buf, len, g.flags(0x7)])
}

fn memfd_create(g: &mut Gen) -> [usize; 6] {
    let name = g.path(0);
    args(&[name, g.flags(0x1f)])
}

fn execveat(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let all = execve(g);
    args(&[dir, all[0], all[1], all[2], g.flags(0x1100)])
}

fn mlock2(g: &mut Gen) -> [usize; 6] {
    let (addr, len) = g.range();
    args(&[addr, len, g.flags(0x1)])
}

fn copy_file_range(g: &mut Gen) -> [usize; 6] {
    let input = g.fd();
    let at = g.one(&[0, 1, usize::MAX]) as u64;
    let in_offset = if g.chance(2) { 0 } else { g.words(1, &[at]) };
    let output = g.fd();
    let at = g.one(&[0, 1, usize::MAX]) as u64;
    let out_offset = if g.chance(2) { 0 } else { g.words(3, &[at]) };
    args(&[
        input,
        in_offset,
        output,
        out_offset,
        g.length(),
        g.flags(0x1),
    ])
}

fn statx(g: &mut Gen) -> [usize; 6] {
    let dir = g.dirfd();
    let path = g.path(1);
    let (buf, _) = g.buffer(4);
    args(&[
        dir,
        path,
        g.flags(0x7900),
        g.flags(0xfff | 0x8000_0000),
        buf,
    ])
}

fn rseq(g: &mut Gen) -> [usize; 6] {
    // Never a registration that succeeds (the arena's bytes change under it, and a garbage
    // critical-section pointer is a SIGSEGV): lengths below the structure's 32 bytes, or a
    // bad pointer.
    if g.chance(2) {
        args(&[g.bad_pointer(), 32, g.flags(0x1), g.int()])
    } else {
        let area = g.buffer(0).0;
        args(&[area, g.one(&[0, 16, 31]), g.flags(0x1), g.int()])
    }
}

fn pidfd_open(g: &mut Gen) -> [usize; 6] {
    args(&[g.pid(), g.flags(0o4000 | 0x8)])
}

fn clone3(g: &mut Gen) -> [usize; 6] {
    // A bad structure or a size Linux refuses before reading it.
    if g.chance(2) {
        args(&[g.bad_pointer(), g.one(&[64, 88])])
    } else {
        let at = g.put_words(0, &[0x800, 0]);
        args(&[at, g.one(&[0, 1, 63, 0x1001, usize::MAX])])
    }
}

fn close_range(g: &mut Gen) -> [usize; 6] {
    let first = g.one(&[3, 5, 9, 12, 1 << 20, 0xffff_ffff]);
    let last = g.one(&[3, 4, 12, 0xffff_ffff, usize::MAX, 2]);
    args(&[first, last, g.flags(0x6)])
}

fn process_madvise(g: &mut Gen) -> [usize; 6] {
    let fd = g.fd();
    let iov = g.words(1, &[WINDOW as u64, PAGE as u64]);
    args(&[
        fd,
        iov,
        g.one(&[0, 1, 1024, 1025, usize::MAX]),
        g.one(&[8, 21, 99]),
        g.flags(0x1),
    ])
}

fn fchmodat2(g: &mut Gen) -> [usize; 6] {
    fchmodat(g)
}

fn rename2(g: &mut Gen) -> [usize; 6] {
    renameat(g)
}

fn sched_yield(_: &mut Gen) -> [usize; 6] {
    [0; 6]
}

macro_rules! calls {
    ($($name:ident $number:literal $arity:literal $show:ident $args:expr;)*) => {
        &[$(Call {
            name: stringify!($name),
            number: $number,
            arity: $arity,
            show: Show::$show,
            args: $args,
        }),*]
    };
}

/// Every call the kernel implements, less those that would end, stop or replace the fuzzer
/// (exit, exit_group, pause, fork, vfork, rt_sigreturn) and the two it answers ENOSYS to
/// (set_thread_area, get_thread_area).
const CALLS: &[Call] = calls! {
    read 0 3 Value read_like;
    write 1 3 Value read_like;
    open 2 3 Value open;
    close 3 1 Value one_fd;
    stat 4 2 Value stat_like;
    fstat 5 2 Value fstat_like;
    lstat 6 2 Value stat_like;
    poll 7 3 Value poll;
    lseek 8 3 Value |g| args(&[g.fd(), g.one(&[0, 1, usize::MAX, 1 << 62, 1 << 63]), g.one(&[0, 1, 2, 3, 4, 5])]);
    mmap 9 6 Addr mmap;
    mprotect 10 3 Value mprotect;
    munmap 11 2 Value munmap;
    brk 12 1 Addr brk;
    rt_sigaction 13 4 Value rt_sigaction;
    rt_sigprocmask 14 4 Value rt_sigprocmask;
    ioctl 16 3 Value ioctl;
    pread64 17 4 Value read_like;
    pwrite64 18 4 Value read_like;
    readv 19 3 Value vector_like;
    writev 20 3 Value vector_like;
    access 21 2 Value access;
    pipe 22 1 Value |g| args(&[g.bad_pointer()]);
    select 23 5 Value select;
    sched_yield 24 0 Value sched_yield;
    mremap 25 5 Addr mremap;
    msync 26 3 Value range_flags;
    mincore 27 3 Value mincore;
    madvise 28 3 Value madvise;
    dup 32 1 Value one_fd;
    dup2 33 2 Value dup2;
    nanosleep 35 2 Value nanosleep;
    getitimer 36 2 Value getitimer;
    alarm 37 1 Ok alarm;
    setitimer 38 3 Value setitimer;
    getpid 39 0 Pid no_args;
    sendfile 40 4 Value sendfile;
    socket 41 3 Value socket;
    socketpair 53 4 Value socket;
    clone 56 5 Value clone;
    execve 59 3 Value execve;
    wait4 61 4 Value wait4;
    kill 62 2 Value kill;
    uname 63 1 Value uname;
    fcntl 72 3 Value fcntl;
    fsync 74 1 Value one_fd;
    fdatasync 75 1 Value one_fd;
    truncate 76 2 Value truncate;
    ftruncate 77 2 Value ftruncate;
    getcwd 79 2 Value getcwd;
    chdir 80 1 Value one_path;
    fchdir 81 1 Value one_fd;
    rename 82 2 Value two_paths;
    mkdir 83 2 Value mkdir;
    rmdir 84 1 Value one_path;
    creat 85 2 Value creat;
    link 86 2 Value two_paths;
    unlink 87 1 Value one_path;
    symlink 88 2 Value two_paths;
    readlink 89 3 Value readlink;
    chmod 90 2 Value path_mode;
    fchmod 91 2 Value fchmod;
    chown 92 3 Value chown_like;
    fchown 93 3 Value fchown;
    lchown 94 3 Value chown_like;
    umask 95 1 Value umask;
    gettimeofday 96 2 Value out_pair;
    getrlimit 97 2 Value getrlimit;
    getrusage 98 2 Value getrusage;
    sysinfo 99 1 Value one_out;
    times 100 1 Ok one_out;
    getuid 102 0 Value no_args;
    getgid 104 0 Value no_args;
    geteuid 107 0 Value no_args;
    getegid 108 0 Value no_args;
    setpgid 109 2 Pid setpgid;
    getppid 110 0 Pid no_args;
    getpgrp 111 0 Pid no_args;
    setsid 112 0 Pid no_args;
    getpgid 121 1 Pid one_pid;
    getsid 124 1 Pid one_pid;
    capget 125 2 Value capget;
    capset 126 2 Value capset;
    rt_sigpending 127 2 Value rt_sigpending;
    rt_sigtimedwait 128 4 Value rt_sigtimedwait;
    rt_sigqueueinfo 129 3 Value rt_sigqueueinfo;
    rt_sigsuspend 130 2 Value rt_sigsuspend;
    sigaltstack 131 2 Value sigaltstack;
    statfs 137 2 Value stat_like;
    fstatfs 138 2 Value fstat_like;
    getpriority 140 2 Value getpriority;
    setpriority 141 3 Value setpriority;
    sched_setparam 142 2 Value sched_param;
    sched_getparam 143 2 Value sched_param;
    sched_setscheduler 144 3 Value sched_setscheduler;
    sched_getscheduler 145 1 Value one_pid;
    sched_get_priority_max 146 1 Value policy_only;
    sched_get_priority_min 147 1 Value policy_only;
    sched_rr_get_interval 148 2 Value pid_out;
    mlock 149 2 Value mlock;
    munlock 150 2 Value mlock;
    mlockall 151 1 Value mlockall;
    munlockall 152 0 Value no_args;
    vhangup 153 0 Value no_args;
    prctl 157 5 Value prctl;
    arch_prctl 158 2 Value arch_prctl;
    sync 162 0 Value no_args;
    mount 165 5 Value mount;
    umount2 166 2 Value umount2;
    reboot 169 4 Value reboot;
    gettid 186 0 Pid no_args;
    setxattr 188 5 Value xattr_set;
    lsetxattr 189 5 Value xattr_set;
    fsetxattr 190 5 Value xattr_set;
    getxattr 191 4 Value xattr_get;
    lgetxattr 192 4 Value xattr_get;
    fgetxattr 193 4 Value xattr_get;
    listxattr 194 3 Value xattr_list;
    llistxattr 195 3 Value xattr_list;
    flistxattr 196 3 Value xattr_list;
    removexattr 197 2 Value xattr_remove;
    lremovexattr 198 2 Value xattr_remove;
    fremovexattr 199 2 Value xattr_remove;
    tkill 200 2 Value tkill;
    time 201 1 Ok one_out;
    futex 202 6 Value futex;
    sched_setaffinity 203 3 Value affinity;
    sched_getaffinity 204 3 Value affinity;
    getdents64 217 3 Value getdents;
    set_tid_address 218 1 Pid set_tid_address;
    restart_syscall 219 0 Value no_args;
    fadvise64 221 4 Value fadvise;
    timer_create 222 3 Value timer_create;
    timer_settime 223 4 Value timer_settime;
    timer_gettime 224 2 Value timer_gettime;
    timer_getoverrun 225 1 Value timer_only;
    timer_delete 226 1 Value timer_only;
    clock_gettime 228 2 Value clock_out;
    clock_getres 229 2 Value clock_out;
    clock_nanosleep 230 4 Value clock_nanosleep;
    tgkill 234 3 Value tgkill;
    waitid 247 5 Value waitid;
    openat 257 4 Value openat;
    mkdirat 258 3 Value mkdirat;
    fchownat 260 5 Value fchownat;
    newfstatat 262 4 Value newfstatat;
    unlinkat 263 3 Value unlinkat;
    renameat 264 4 Value renameat;
    linkat 265 5 Value linkat;
    symlinkat 266 3 Value symlinkat;
    readlinkat 267 4 Value readlinkat;
    fchmodat 268 3 Value fchmodat;
    faccessat 269 3 Value faccessat;
    pselect6 270 6 Value pselect6;
    ppoll 271 5 Value ppoll;
    set_robust_list 273 2 Value set_robust_list;
    get_robust_list 274 3 Value get_robust_list;
    utimensat 280 4 Value utimensat;
    eventfd 284 1 Value eventfd;
    fallocate 285 4 Value fallocate;
    eventfd2 290 2 Value eventfd2;
    dup3 292 3 Value dup3;
    pipe2 293 2 Value pipe2;
    preadv 295 4 Value preadv;
    pwritev 296 4 Value preadv;
    rt_tgsigqueueinfo 297 4 Value rt_tgsigqueueinfo;
    prlimit64 302 4 Value prlimit64;
    syncfs 306 1 Value one_fd;
    getcpu 309 3 Value getcpu;
    renameat2 316 5 Value rename2;
    getrandom 318 3 Value getrandom;
    memfd_create 319 2 Value memfd_create;
    execveat 322 5 Value execveat;
    mlock2 325 3 Value mlock2;
    copy_file_range 326 6 Value copy_file_range;
    statx 332 5 Value statx;
    rseq 334 4 Value rseq;
    pidfd_open 434 2 Value pidfd_open;
    clone3 435 2 Value clone3;
    close_range 436 3 Value close_range;
    faccessat2 439 4 Value faccessat;
    process_madvise 440 5 Value process_madvise;
    fchmodat2 452 4 Value fchmodat2;
};

/// Signals a call could make the kernel send the fuzzer and whose default action would end
/// it: ignored for the whole run (the fuzzed `rt_sigaction` never names them).
const IGNORED_SIGNALS: &[usize] = &[
    urt::signal::SIGALRM,
    urt::signal::SIGPIPE,
    26, // SIGVTALRM
    27, // SIGPROF
    29, // SIGIO
    urt::signal::SIGTTIN,
    urt::signal::SIGTTOU,
    urt::signal::SIGTSTP,
    urt::signal::SIGURG,
    urt::signal::SIGWINCH,
    25, // SIGXFSZ
];

pub fn run(seed: u64, count: u64) -> i32 {
    if let Err(problem) = prepare(seed) {
        urt::eprintln!("fuzz calls: {problem}");
        return 1;
    }
    let mut g = Gen {
        rng: Rng::new(seed),
    };
    for n in 0..count {
        if n % RESET_EVERY == 0 {
            reset(seed);
        }
        let call = &CALLS[g.below(CALLS.len())];
        clear_arena();
        let a = (call.args)(&mut g);
        // SAFETY: the arguments name only the fuzzer's own window, arena, descriptors and
        // directory as valid targets (see the module's notes); every other pointer or range is
        // invalid, which the kernel must refuse.
        let ret = unsafe { sys::syscall6(call.number, a[0], a[1], a[2], a[3], a[4], a[5]) };
        let result = sys::decode(ret);
        if let Ok(addr) = result {
            tidy_after(call, &a, addr);
        }
        print_line(call, &a, result);
    }
    reset(seed);
    remove_directory(seed);
    println!("calls: {count} calls, seed {seed}");
    0
}

/// Closes the descriptors and removes the directory with whatever the calls left in it (they
/// may have made directories in directories, or renamed one over another), so that runs one
/// after the other in one boot (the soak) leave nothing behind.
fn remove_directory(seed: u64) {
    let _ = sys::close_range(FIRST_FD, u32::MAX as usize, 0);
    let _ = sys::chdir(c"/tmp".as_ptr() as usize);
    let dir = directory(seed);
    let _ = urt::fs::remove_tree(dir.trim_end_matches('\0'));
}

/// What a successful call leaves that the rest of the run must not meet, undone unprinted: a
/// mapping outside the window (or a huge one inside it), which would use up memory or address
/// space over a long run; a blocking eventfd (`eventfd` has no flags), which a later read
/// would wait on for ever; a socket, which only Linux can make (this kernel has no address
/// family, an explained divergence in `cargo xtask fuzz`): left open on Linux alone, it would
/// take a descriptor number and shift every later one, so that calls on descriptors diverge
/// for the rest of the reset's window.
fn tidy_after(call: &Call, a: &[usize; 6], value: usize) {
    const EVENTFD: usize = 284;
    let (addr, len) = match call.number {
        nr::MMAP => (value, a[1]),
        nr::MREMAP => (value, a[2]),
        EVENTFD => {
            let _ = sys::fcntl(value, sys::F_SETFL, sys::O_NONBLOCK);
            return;
        }
        nr::SOCKET => {
            let _ = sys::close(value);
            return;
        }
        nr::SOCKETPAIR => {
            for fd in arena_u32s::<2>(a[3]) {
                let _ = sys::close(fd as usize);
            }
            return;
        }
        _ => return,
    };
    let inside = (WINDOW..WINDOW + WINDOW_SPAN).contains(&addr);
    if !inside || len > MAX_RANGE_PAGES * PAGE {
        let _ = sys::munmap(addr, len);
    }
}

/// The `N` 32-bit words a call wrote at `at`, where that lies in the arena (nothing otherwise:
/// the call succeeded, so it was writable, but the fuzzer reads only its own arena).
fn arena_u32s<const N: usize>(at: usize) -> impl Iterator<Item = u32> {
    let inside = at >= ARENA && at.saturating_add(N * 4) <= ARENA_END;
    (0..N).filter(move |_| inside).map(move |i| {
        // SAFETY: the words lie in the arena (checked above), which is mapped read-write for
        // the whole run; `read_unaligned` allows any alignment.
        unsafe { core::ptr::read_unaligned((at + i * 4) as *const u32) }
    })
}

fn print_line(call: &Call, a: &[usize; 6], result: sys::SysResult) {
    let mut line = String::with_capacity(160);
    let _ = write!(line, "call {}(", call.name);
    for (i, arg) in a[..call.arity].iter().enumerate() {
        let _ = write!(line, "{}{arg:#x}", if i == 0 { "" } else { ", " });
    }
    let _ = match (result, call.show) {
        (Err(Errno(e)), _) => match Errno(e).name() {
            "E?" => write!(line, ") -> -E{e}"),
            name => write!(line, ") -> -{name}"),
        },
        (Ok(_), Show::Addr) => write!(line, ") -> addr"),
        (Ok(_), Show::Pid) => write!(line, ") -> pid"),
        (Ok(_), Show::Ok) => write!(line, ") -> ok"),
        (Ok(v), Show::Value) => write!(line, ") -> {v}"),
    };
    println!("{line}");
}

/// The bytes at the arena's end, before the page that is never mapped: not zero, so that a
/// string starting there runs off the end (a path without its terminating byte).
const ARENA_TAIL: usize = 64;

/// Puts the whole arena back to what it held before the first call, before each call's
/// arguments are prepared: zeros, then `ARENA_TAIL` bytes of `a`. Calls write into the arena
/// (buffers, results, random bytes), and the kernels compared write different things there
/// (times, ids, random data), so whatever a call reads beyond what its generator put (a
/// misaligned structure, a path at the end) must not be what an earlier call left.
fn clear_arena() {
    // SAFETY: the arena is mapped read-write for the whole run (`prepare`), and both writes
    // lie within it.
    unsafe {
        core::ptr::write_bytes(ARENA as *mut u8, 0, ARENA_END - ARENA - ARENA_TAIL);
        core::ptr::write_bytes((ARENA_END - ARENA_TAIL) as *mut u8, b'a', ARENA_TAIL);
    }
}

/// Maps the arena, ignores the signals a call could raise, and makes the directory.
fn prepare(seed: u64) -> Result<(), &'static str> {
    let prot = sys::PROT_READ | sys::PROT_WRITE;
    let flags = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE;
    match sys::mmap(ARENA, ARENA_PAGES * PAGE, prot, flags, usize::MAX, 0) {
        Ok(ARENA) => {}
        _ => return Err("cannot map the arena"),
    }
    for &signal in IGNORED_SIGNALS {
        urt::signal::set_disposition(signal, urt::signal::SIG_IGN)
            .map_err(|_| "cannot ignore a signal")?;
    }
    let _ = sys::mkdir(directory(seed).as_ptr() as usize, 0o777);
    let _ = sys::mkdir(working_directory(seed).as_ptr() as usize, 0o777);
    Ok(())
}

/// The fuzzer's directory, `/tmp/fuzz-SEED`, NUL-terminated: everything the calls make is in
/// it.
fn directory(seed: u64) -> String {
    alloc::format!("/tmp/fuzz-{seed}\0")
}

/// The calls' working directory, `work` in the fuzzer's directory, NUL-terminated.
fn working_directory(seed: u64) -> String {
    alloc::format!("/tmp/fuzz-{seed}/work\0")
}

/// Puts the window, the descriptors, the working directory, the file mode mask, the signal
/// mask and the nice value of every process of the user (root) back as they were at the
/// start, unprinted, so that a difference between kernels does not spread through the rest
/// of the run. (The nice values: `setpriority` on process group 1 reaches init here but no
/// one on Linux, whose init stays in group 0, an explained divergence; `PRIO_USER` then
/// reads the difference.)
fn reset(seed: u64) {
    let _ = sys::munmap(WINDOW, WINDOW_SPAN);
    let layout = [
        (0, RW_PAGES, sys::PROT_READ | sys::PROT_WRITE),
        (HOLE_END, RO_END, sys::PROT_READ),
        (RO_END, NONE_END, sys::PROT_NONE),
    ];
    for (first, end, prot) in layout {
        let flags = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED;
        let _ = sys::mmap(
            WINDOW + first * PAGE,
            (end - first) * PAGE,
            prot,
            flags,
            usize::MAX,
            0,
        );
    }
    let _ = sys::munlockall();
    let _ = sys::close_range(FIRST_FD, u32::MAX as usize, 0);
    let dir = working_directory(seed);
    let _ = sys::chdir(dir.as_ptr() as usize);
    // SAFETY: umask touches no memory.
    let _ = unsafe { sys::syscall1(nr::UMASK, 0o022) };
    // SAFETY: setpriority touches no memory.
    let _ = unsafe { sys::syscall3(nr::SETPRIORITY, PRIO_USER, 0, 0) };
    let _ = urt::signal::sigprocmask(urt::signal::SIG_SETMASK, 0);
    let file = c"f".as_ptr() as usize;
    let here = c".".as_ptr() as usize;
    let rw_create = sys::O_RDWR | sys::O_CREAT;
    place(FILE_FD, sys::open(file, rw_create, 0o644));
    let _ = sys::ftruncate(FILE_FD, 0);
    place(DIR_FD, sys::open(here, sys::O_DIRECTORY, 0));
    let mut ends = [0u32; 2];
    if sys::pipe2(ends.as_mut_ptr() as usize, sys::O_NONBLOCK).is_ok() {
        place(PIPE_READ_FD, Ok(ends[0] as usize));
        place(PIPE_WRITE_FD, Ok(ends[1] as usize));
    }
    place(EVENT_FD, sys::eventfd2(0, sys::EFD_NONBLOCK));
    place(MEMFD_FD, sys::memfd_create(c"fuzz".as_ptr() as usize, 0));
    place(READ_ONLY_FD, sys::open(file, 0, 0));
}

/// Moves a descriptor just opened to the number `want`.
fn place(want: usize, opened: sys::SysResult) {
    if let Ok(fd) = opened
        && fd != want
    {
        let _ = sys::dup2(fd, want);
        let _ = sys::close(fd);
    }
}
