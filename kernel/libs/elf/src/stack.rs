//! The SysV x86_64 initial process stack: what a new program finds at `rsp`.
//!
//! From high to low addresses, as Linux lays it out:
//!
//! ```text
//! stack_top -> 8 zero bytes (end marker)
//!              AT_EXECFN string, NUL-terminated
//!              environment strings, in order
//!              argument strings, in order
//!              AT_PLATFORM string "x86_64"
//!              AT_RANDOM: 16 random bytes
//!              padding to 16 bytes
//!              auxv: (type, value) pairs, ending with AT_NULL
//!              0, envp[envc - 1] ... envp[0]
//!              0, argv[argc - 1] ... argv[0]
//! rsp       -> argc                                  (rsp % 16 == 0)
//! ```

use alloc::vec::Vec;
use core::fmt;

use crate::{PAGE_SIZE, Program};

/// Most bytes of argument, environment and file name strings (NULs included) plus 8 per argv
/// and envp pointer (their NULs included); more is [`StackError::TooBig`], `E2BIG`.
pub const MAX_ARG_BYTES: usize = 128 * 1024;
/// The `AT_PLATFORM` string.
const PLATFORM: &[u8] = b"x86_64";
/// Clock ticks per second of `times()`, `AT_CLKTCK`.
const CLOCK_TICKS: u64 = 100;
/// `AT_RSEQ_FEATURE_SIZE`: the fields of `struct rseq` the kernel keeps (through `mm_cid`).
const RSEQ_FEATURE_SIZE: u64 = 28;
/// `AT_RSEQ_ALIGN`: the alignment an rseq area needs.
const RSEQ_ALIGN: u64 = 32;

/// Auxiliary vector entry types (`AT_*` in `<elf.h>`), those this crate writes.
#[allow(missing_docs)]
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_RSEQ_FEATURE_SIZE: u64 = 27;
    pub const AT_RSEQ_ALIGN: u64 = 28;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}

use auxv::*;

/// The values of the auxiliary vector that depend on the program and the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuxInfo {
    /// `AT_PHDR`.
    pub phdr: u64,
    /// `AT_PHENT`.
    pub phent: u64,
    /// `AT_PHNUM`.
    pub phnum: u64,
    /// `AT_ENTRY`.
    pub entry: u64,
    /// `AT_BASE`: 0 without an interpreter, so always 0 for static programs, PIE or not.
    pub base: u64,
    /// `AT_UID`.
    pub uid: u32,
    /// `AT_EUID`.
    pub euid: u32,
    /// `AT_GID`.
    pub gid: u32,
    /// `AT_EGID`.
    pub egid: u32,
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
    /// `AT_SECURE`.
    pub secure: bool,
    /// `AT_MINSIGSTKSZ`, left out when `None`.
    pub minsigstksz: Option<u64>,
}

impl AuxInfo {
    /// The program's values (`AT_PHDR` 0 if unknown), ids 0 and no CPU features.
    #[must_use]
    pub fn for_program(program: &Program) -> Self {
        Self {
            phdr: program.phdr_vaddr.unwrap_or(0),
            phent: program.phent.into(),
            phnum: program.phnum.into(),
            entry: program.entry,
            ..Self::default()
        }
    }
}

/// The initial stack: `bytes` go at `rsp`, and end at the `stack_top` they were built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialStack {
    /// The initial stack pointer, 16-byte aligned, pointing at `argc`.
    pub rsp: u64,
    /// The contents of `[rsp, stack_top)`.
    pub bytes: Vec<u8>,
}

/// Why an initial stack cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The strings and pointers exceed [`MAX_ARG_BYTES`] (`E2BIG`).
    TooBig {
        /// Their size (saturated).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A string contains a NUL byte.
    InteriorNul {
        /// `"argument"`, `"environment string"` or `"file name"`.
        what: &'static str,
        /// Its index (0 for the file name).
        index: usize,
    },
    /// `stack_top` is too low to hold the stack.
    NoRoom {
        /// The top asked for.
        stack_top: u64,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooBig { size, max } => {
                write!(f, "argument list too long ({size} bytes > {max})")
            }
            Self::InteriorNul { what, index } => write!(f, "{what} {index} contains a NUL byte"),
            Self::NoRoom { stack_top } => {
                write!(f, "no room for the initial stack below {stack_top:#x}")
            }
        }
    }
}

impl core::error::Error for StackError {}

/// Lays out the initial stack of a program that gets the arguments `args`, the environment
/// `env`, the file name `execfn` (`AT_EXECFN`) and the `random` bytes (`AT_RANDOM`), so that it
/// ends at `stack_top`. Pointers in it are absolute addresses computed from `stack_top`.
///
/// # Errors
///
/// [`StackError::TooBig`] past [`MAX_ARG_BYTES`], [`StackError::InteriorNul`] for a string with
/// a NUL byte, [`StackError::NoRoom`] if the stack would start below address 0.
pub fn build_initial_stack(
    stack_top: u64,
    args: &[&[u8]],
    env: &[&[u8]],
    execfn: &[u8],
    aux: &AuxInfo,
    random: [u8; 16],
) -> Result<InitialStack, StackError> {
    let mut size = 8usize.saturating_mul(args.len().saturating_add(env.len()).saturating_add(2));
    for (what, list) in [
        ("argument", args),
        ("environment string", env),
        ("file name", &[execfn]),
    ] {
        for (index, s) in list.iter().enumerate() {
            if s.contains(&0) {
                return Err(StackError::InteriorNul { what, index });
            }
            size = size.saturating_add(s.len() + 1);
        }
    }
    if size > MAX_ARG_BYTES {
        return Err(StackError::TooBig {
            size,
            max: MAX_ARG_BYTES,
        });
    }

    // The string area, in ascending address order; `push` returns each string's offset in it.
    let mut area = Vec::with_capacity(size + 32);
    let mut push = |s: &[u8], nul: bool| {
        let offset = area.len() as u64;
        area.extend_from_slice(s);
        if nul {
            area.push(0);
        }
        offset
    };
    let random_at = push(&random, false);
    let platform_at = push(PLATFORM, true);
    let arg_at: Vec<u64> = args.iter().map(|s| push(s, true)).collect();
    let env_at: Vec<u64> = env.iter().map(|s| push(s, true)).collect();
    let execfn_at = push(execfn, true);
    push(&[0; 8], false);

    let no_room = StackError::NoRoom { stack_top };
    let area_start = stack_top.checked_sub(area.len() as u64).ok_or(no_room)?;
    let mut words = Vec::with_capacity(args.len() + env.len() + 48);
    words.push(args.len() as u64);
    words.extend(arg_at.iter().map(|off| area_start + off));
    words.push(0);
    words.extend(env_at.iter().map(|off| area_start + off));
    words.push(0);
    // The order Linux writes them in; AT_MINSIGSTKSZ comes first from ARCH_DLINFO.
    let minsigstksz = aux.minsigstksz.map(|size| (AT_MINSIGSTKSZ, size));
    let pairs = [
        (AT_HWCAP, aux.hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, CLOCK_TICKS),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, aux.phent),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, aux.uid.into()),
        (AT_EUID, aux.euid.into()),
        (AT_GID, aux.gid.into()),
        (AT_EGID, aux.egid.into()),
        (AT_SECURE, aux.secure.into()),
        (AT_RANDOM, area_start + random_at),
        (AT_HWCAP2, aux.hwcap2),
        (AT_EXECFN, area_start + execfn_at),
        (AT_RSEQ_FEATURE_SIZE, RSEQ_FEATURE_SIZE),
        (AT_RSEQ_ALIGN, RSEQ_ALIGN),
        (AT_PLATFORM, area_start + platform_at),
        (AT_NULL, 0),
    ];
    words.extend(
        minsigstksz
            .into_iter()
            .chain(pairs)
            .flat_map(|(k, v)| [k, v]),
    );
    let table_size = 8 * words.len() as u64;
    let rsp = area_start.checked_sub(table_size).ok_or(no_room)? & !15;

    let mut bytes = Vec::with_capacity((stack_top - rsp) as usize);
    bytes.extend(words.iter().flat_map(|w| w.to_le_bytes()));
    bytes.resize((area_start - rsp) as usize, 0);
    bytes.extend_from_slice(&area);
    Ok(InitialStack { rsp, bytes })
}
