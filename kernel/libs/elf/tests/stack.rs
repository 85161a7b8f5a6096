//! The initial stack, decoded back the way a C runtime reads it at entry.

use elf::auxv::*;
use elf::{AuxInfo, InitialStack, MAX_ARG_BYTES, StackError, build_initial_stack};
use proptest::prelude::*;

const TOP: u64 = 0x7fff_ffff_f000;
const RANDOM: [u8; 16] = *b"0123456789abcdef";

/// What a program finds on its stack.
#[derive(Debug, Default)]
struct Decoded {
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    auxv: Vec<(u64, u64)>,
}

/// Walks `stack` from `rsp` like a C runtime, checking that every pointer stays inside it.
fn decode(stack: &InitialStack, top: u64) -> Decoded {
    assert_eq!(stack.rsp % 16, 0, "rsp must be 16-byte aligned");
    assert_eq!(
        stack.rsp + stack.bytes.len() as u64,
        top,
        "the bytes must end at the top"
    );
    assert_eq!(stack.bytes[stack.bytes.len() - 8..], [0; 8], "end marker");
    let word = |addr: u64| {
        let at = (addr - stack.rsp) as usize;
        u64::from_le_bytes(stack.bytes[at..at + 8].try_into().unwrap())
    };
    let string = |addr: u64| {
        assert!(
            addr >= stack.rsp && addr < top,
            "pointer {addr:#x} outside the stack"
        );
        let rest = &stack.bytes[(addr - stack.rsp) as usize..];
        rest[..rest.iter().position(|&b| b == 0).unwrap()].to_vec()
    };
    let mut decoded = Decoded::default();
    let argc = word(stack.rsp);
    let mut at = stack.rsp + 8;
    for _ in 0..argc {
        decoded.args.push(string(word(at)));
        at += 8;
    }
    assert_eq!(word(at), 0, "argv must end with NULL");
    at += 8;
    while word(at) != 0 {
        decoded.env.push(string(word(at)));
        at += 8;
    }
    at += 8;
    loop {
        let (key, value) = (word(at), word(at + 8));
        decoded.auxv.push((key, value));
        at += 16;
        if key == AT_NULL {
            return decoded;
        }
    }
}

fn aux_value(decoded: &Decoded, key: u64) -> u64 {
    let found = decoded
        .auxv
        .iter()
        .filter(|(k, _)| *k == key)
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "auxv type {key} must occur once");
    found[0].1
}

fn sample_aux() -> AuxInfo {
    AuxInfo {
        phdr: 0x40_0040,
        phent: 56,
        phnum: 9,
        entry: 0x40_1000,
        uid: 1000,
        euid: 1001,
        gid: 100,
        egid: 101,
        hwcap: 0x178b_fbff,
        ..AuxInfo::default()
    }
}

#[test]
fn layout_decodes() {
    let (args, env): (&[&[u8]], &[&[u8]]) = (&[b"prog", b"-x", b""], &[b"HOME=/", b"A=1"]);
    let stack = build_initial_stack(TOP, args, env, b"/bin/prog", &sample_aux(), RANDOM).unwrap();
    let decoded = decode(&stack, TOP);
    assert_eq!(decoded.args, args);
    assert_eq!(decoded.env, env);
    let expected = [
        (AT_PHDR, 0x40_0040),
        (AT_PHENT, 56),
        (AT_PHNUM, 9),
        (AT_PAGESZ, 4096),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, 0x40_1000),
        (AT_UID, 1000),
        (AT_EUID, 1001),
        (AT_GID, 100),
        (AT_EGID, 101),
        (AT_HWCAP, 0x178b_fbff),
        (AT_CLKTCK, 100),
        (AT_SECURE, 0),
        (AT_HWCAP2, 0),
        (AT_RSEQ_FEATURE_SIZE, 28),
        (AT_RSEQ_ALIGN, 32),
    ];
    for (key, value) in expected {
        assert_eq!(aux_value(&decoded, key), value, "auxv type {key}");
    }
    assert_eq!(decoded.auxv.last(), Some(&(AT_NULL, 0)));
    assert!(!decoded.auxv.iter().any(|(k, _)| *k == AT_MINSIGSTKSZ));
    let at = |key| (aux_value(&decoded, key) - stack.rsp) as usize;
    assert_eq!(stack.bytes[at(AT_RANDOM)..][..16], RANDOM);
    assert_eq!(stack.bytes[at(AT_PLATFORM)..][..7], *b"x86_64\0");
    assert_eq!(stack.bytes[at(AT_EXECFN)..][..10], *b"/bin/prog\0");
    // The argument strings are contiguous, as /proc/<pid>/cmdline expects.
    let argv0 = at(AT_PLATFORM) + 7;
    assert_eq!(stack.bytes[argv0..][..9], *b"prog\0-x\0\0");
}

#[test]
fn minsigstksz_is_optional() {
    let aux = AuxInfo {
        minsigstksz: Some(3632),
        ..sample_aux()
    };
    let stack = build_initial_stack(TOP, &[], &[], b"", &aux, RANDOM).unwrap();
    let decoded = decode(&stack, TOP);
    assert!(decoded.args.is_empty() && decoded.env.is_empty());
    assert_eq!(aux_value(&decoded, AT_MINSIGSTKSZ), 3632);
}

#[test]
fn limits() {
    let aux = sample_aux();
    // 8 bytes for each of argv[0], argv's NULL and envp's NULL, the NULs of the arg and file name.
    let fits = vec![b'a'; MAX_ARG_BYTES - 26];
    let stack = build_initial_stack(TOP, &[&fits], &[], b"", &aux, RANDOM).unwrap();
    assert_eq!(decode(&stack, TOP).args, [fits.as_slice()]);
    let too_big = vec![b'a'; MAX_ARG_BYTES - 25];
    let err = build_initial_stack(TOP, &[&too_big], &[], b"", &aux, RANDOM).unwrap_err();
    assert_eq!(
        err,
        StackError::TooBig {
            size: MAX_ARG_BYTES + 1,
            max: MAX_ARG_BYTES
        }
    );
    let many = vec![b"".as_slice(); MAX_ARG_BYTES / 9];
    let err = build_initial_stack(TOP, &[], &many, b"", &aux, RANDOM).unwrap_err();
    assert!(matches!(err, StackError::TooBig { .. }), "{err}");

    let err = build_initial_stack(TOP, &[b"a", b"b\0c"], &[], b"", &aux, RANDOM).unwrap_err();
    assert_eq!(
        err,
        StackError::InteriorNul {
            what: "argument",
            index: 1
        }
    );
    assert_eq!(err.to_string(), "argument 1 contains a NUL byte");
    let err = build_initial_stack(TOP, &[], &[b"\0"], b"", &aux, RANDOM).unwrap_err();
    assert_eq!(
        err,
        StackError::InteriorNul {
            what: "environment string",
            index: 0
        }
    );

    let err = build_initial_stack(0x100, &[b"prog"], &[], b"", &aux, RANDOM).unwrap_err();
    assert_eq!(err, StackError::NoRoom { stack_top: 0x100 });
    let err = build_initial_stack(0x20, &[b"prog"], &[], b"", &aux, RANDOM).unwrap_err();
    assert_eq!(err, StackError::NoRoom { stack_top: 0x20 });
}

fn strings(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(1u8..=255, 0..40), 0..max)
}

proptest! {
    #[test]
    fn any_shape_decodes_aligned(
        args in strings(24),
        env in strings(24),
        execfn in prop::collection::vec(1u8..=255, 0..64),
        top in 0x1_0000u64..0x8000_0000_0000,
        random in any::<[u8; 16]>(),
    ) {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let env: Vec<&[u8]> = env.iter().map(Vec::as_slice).collect();
        let stack = build_initial_stack(top, &args, &env, &execfn, &sample_aux(), random).unwrap();
        let decoded = decode(&stack, top);
        prop_assert_eq!(&decoded.args, &args);
        prop_assert_eq!(&decoded.env, &env);
        let at = |key| (aux_value(&decoded, key) - stack.rsp) as usize;
        prop_assert_eq!(&stack.bytes[at(AT_RANDOM)..][..16], &random);
        prop_assert_eq!(&stack.bytes[at(AT_EXECFN)..][..execfn.len()], &execfn[..]);
        // No more padding than alignment needs.
        let table = 8 * (1 + args.len() + 1 + env.len() + 1 + 2 * decoded.auxv.len());
        let area = 16 + 7 + args.iter().chain(&env).map(|s| s.len() + 1).sum::<usize>()
            + execfn.len() + 1 + 8;
        prop_assert!(stack.bytes.len() - table - area < 16);
    }
}
