//! What the program loader needs to know about a user program before it maps it.
//!
//! User programs are static x86_64 ELF executables: non-PIE (`ET_EXEC`) or static-PIE (`ET_DYN`
//! without a `PT_INTERP`). This crate owns the two parts of `execve` that need no kernel state:
//!
//! - [`parse`] validates an executable image against the [`Limits`] of the user address space and
//!   describes it as a [`Program`]: the entry point, the `PT_LOAD` [`Segment`]s to map, where the
//!   program headers lie in memory (for `AT_PHDR`) and whether the stack is executable. It never
//!   panics on malformed input: every defect is an [`ElfError`] whose message names the program
//!   header and the values at fault, ready to log after "cannot run /bin/foo: ".
//! - [`build_initial_stack`] lays out the SysV initial process stack (argc, argv, envp, auxv and
//!   the strings they point to) as bytes to copy below the top of the new stack.
//!
//! It is `no_std` with `alloc`, has no `unsafe` and no dependencies, so it is tested on the host.
//!
//! # Decisions
//!
//! - **Static-PIE.** [`parse`] returns the link-time addresses of an `ET_DYN` program (its first
//!   segment usually at 0) with [`Program::is_pie`] set; the loader picks a page-aligned base and
//!   calls [`Program::relocated`], which checks the moved program against the limits. The loader
//!   only maps it: a static-PIE program applies its own relocations at start.
//! - **Segments sharing a page.** `PT_LOAD` segments must be in ascending address order and their
//!   byte ranges `[vaddr, vaddr + memsz)` must not overlap, but two neighbours may share a page
//!   (the end of text and the start of data in the same page, as linkers without
//!   `-z separate-code` lay them out). The loader then maps that page once with the union of the
//!   two protections, copies both file ranges into it, and zeroes a segment's `.bss` tail only
//!   within its own byte range.
//! - **Executable stack.** Without a `PT_GNU_STACK` header the stack is *not* executable, as on
//!   Linux x86_64 since 5.8 (`elf_read_implies_exec` only applies to 32-bit programs there).
//! - **`AT_BASE`** is the load address of the program interpreter, which static programs do not
//!   have, so it is 0 for both kinds, as Linux passes it.
//!
//! # Example
//!
//! ```
//! use elf::{AuxInfo, ElfError, InitialStack, Limits, Program};
//!
//! /// What `execve` computes before it maps anything.
//! fn prepare(image: &[u8], path: &[u8]) -> Result<(Program, InitialStack), String> {
//!     let limits = Limits::DEFAULT;
//!     let mut program = elf::parse(image, &limits).map_err(|e: ElfError| e.to_string())?;
//!     if program.is_pie {
//!         program = program.relocated(0x5555_5555_4000, &limits).map_err(|e| e.to_string())?;
//!     }
//!     let aux = AuxInfo::for_program(&program);
//!     let top = 0x7fff_ffff_f000;
//!     let random = [4; 16]; // from the kernel's random source
//!     let stack = elf::build_initial_stack(top, &[path], &[b"HOME=/"], path, &aux, random)
//!         .map_err(|e| e.to_string())?;
//!     Ok((program, stack))
//! }
//!
//! let err = prepare(b"#!/bin/sh\n", b"/bin/foo").unwrap_err();
//! assert_eq!(err, "not an ELF file (bad magic)");
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod parse;
mod stack;

pub use parse::{ElfError, Limits, Program, Segment, Tls, parse};
pub use stack::{AuxInfo, InitialStack, MAX_ARG_BYTES, StackError, auxv, build_initial_stack};

/// Size of a page, `AT_PAGESZ`.
pub const PAGE_SIZE: u64 = 4096;

// Offsets and sizes from the image are `u64`s; `as usize` relies on this.
const _: () = assert!(usize::BITS >= u64::BITS);

/// Rounds `addr` down to a page boundary.
const fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Rounds `addr` up to a page boundary, or `None` past the end of the address space.
const fn page_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(end) => Some(page_down(end)),
        None => None,
    }
}
