//! What CPUID says about the processor, in the words `/proc/cpuinfo` uses, and where a CPU sits
//! in the package/core/thread topology (from its APIC ID), for `/proc/cpuinfo` and `/sys`.
//!
//! Queries of the CPU that runs the caller, with no state: every CPU of a machine is taken to
//! be the same model, as on the machines (and emulators) this kernel runs on.

use alloc::string::String;
use alloc::vec::Vec;
use core::arch::x86_64::{__cpuid, __cpuid_count};

/// The processor as `/proc/cpuinfo` describes it.
pub struct Identity {
    /// `GenuineIntel`, `AuthenticAMD`...
    pub vendor: String,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    /// The brand string (`Intel(R) Xeon(R) ...`), or `unknown`.
    pub model_name: String,
    /// The highest standard CPUID leaf.
    pub max_leaf: u32,
    /// Linux's names of the features CPUID reports, in Linux's order.
    pub flags: Vec<&'static str>,
    /// The L2 cache's size in KiB.
    pub cache_kib: Option<u32>,
    /// `clflush` line size in bytes.
    pub clflush_bytes: u32,
    pub physical_address_bits: u32,
    pub virtual_address_bits: u32,
}

/// Where a CPU is: its package (socket) and its core in the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub package: u32,
    pub core: u32,
}

/// One register of one CPUID leaf and Linux's names of its bits (`None`: a bit Linux does not
/// show, or that is not a feature).
struct FlagWord {
    leaf: u32,
    subleaf: u32,
    register: Register,
    names: [Option<&'static str>; 32],
}

#[derive(Clone, Copy)]
enum Register {
    Ebx,
    Ecx,
    Edx,
    Eax,
}

/// Names for bits `first..` of a word, in order.
const fn names(first: usize, list: &[Option<&'static str>]) -> [Option<&'static str>; 32] {
    let mut out = [None; 32];
    let mut i = 0;
    while i < list.len() {
        out[first + i] = list[i];
        i += 1;
    }
    out
}

/// The feature words Linux shows, in the order of its capability words (so the flags come out
/// in Linux's order).
const FLAG_WORDS: [FlagWord; 8] = [
    FlagWord {
        leaf: 1,
        subleaf: 0,
        register: Register::Edx,
        names: names(
            0,
            &[
                Some("fpu"),
                Some("vme"),
                Some("de"),
                Some("pse"),
                Some("tsc"),
                Some("msr"),
                Some("pae"),
                Some("mce"),
                Some("cx8"),
                Some("apic"),
                None,
                Some("sep"),
                Some("mtrr"),
                Some("pge"),
                Some("mca"),
                Some("cmov"),
                Some("pat"),
                Some("pse36"),
                Some("pn"),
                Some("clflush"),
                None,
                Some("dts"),
                Some("acpi"),
                Some("mmx"),
                Some("fxsr"),
                Some("sse"),
                Some("sse2"),
                Some("ss"),
                Some("ht"),
                Some("tm"),
                Some("ia64"),
                Some("pbe"),
            ],
        ),
    },
    FlagWord {
        leaf: 0x8000_0001,
        subleaf: 0,
        register: Register::Edx,
        names: {
            let mut n = [None; 32];
            n[11] = Some("syscall");
            n[19] = Some("mp");
            n[20] = Some("nx");
            n[22] = Some("mmxext");
            n[25] = Some("fxsr_opt");
            n[26] = Some("pdpe1gb");
            n[27] = Some("rdtscp");
            n[29] = Some("lm");
            n[30] = Some("3dnowext");
            n[31] = Some("3dnow");
            n
        },
    },
    FlagWord {
        leaf: 1,
        subleaf: 0,
        register: Register::Ecx,
        names: names(
            0,
            &[
                Some("pni"),
                Some("pclmulqdq"),
                Some("dtes64"),
                Some("monitor"),
                Some("ds_cpl"),
                Some("vmx"),
                Some("smx"),
                Some("est"),
                Some("tm2"),
                Some("ssse3"),
                Some("cid"),
                Some("sdbg"),
                Some("fma"),
                Some("cx16"),
                Some("xtpr"),
                Some("pdcm"),
                None,
                Some("pcid"),
                Some("dca"),
                Some("sse4_1"),
                Some("sse4_2"),
                Some("x2apic"),
                Some("movbe"),
                Some("popcnt"),
                Some("tsc_deadline_timer"),
                Some("aes"),
                Some("xsave"),
                None,
                Some("avx"),
                Some("f16c"),
                Some("rdrand"),
                Some("hypervisor"),
            ],
        ),
    },
    FlagWord {
        leaf: 0x8000_0001,
        subleaf: 0,
        register: Register::Ecx,
        names: names(
            0,
            &[
                Some("lahf_lm"),
                Some("cmp_legacy"),
                Some("svm"),
                Some("extapic"),
                Some("cr8_legacy"),
                Some("abm"),
                Some("sse4a"),
                Some("misalignsse"),
                Some("3dnowprefetch"),
                Some("osvw"),
                Some("ibs"),
                Some("xop"),
                Some("skinit"),
                Some("wdt"),
                None,
                Some("lwp"),
                Some("fma4"),
                Some("tce"),
                None,
                Some("nodeid_msr"),
                None,
                Some("tbm"),
                Some("topoext"),
                Some("perfctr_core"),
                Some("perfctr_nb"),
                None,
                Some("bpext"),
                Some("ptsc"),
                Some("perfctr_llc"),
                Some("mwaitx"),
            ],
        ),
    },
    FlagWord {
        leaf: 7,
        subleaf: 0,
        register: Register::Ebx,
        names: names(
            0,
            &[
                Some("fsgsbase"),
                Some("tsc_adjust"),
                Some("sgx"),
                Some("bmi1"),
                Some("hle"),
                Some("avx2"),
                None,
                Some("smep"),
                Some("bmi2"),
                Some("erms"),
                Some("invpcid"),
                Some("rtm"),
                Some("cqm"),
                None,
                Some("mpx"),
                Some("rdt_a"),
                Some("avx512f"),
                Some("avx512dq"),
                Some("rdseed"),
                Some("adx"),
                Some("smap"),
                Some("avx512ifma"),
                None,
                Some("clflushopt"),
                Some("clwb"),
                Some("intel_pt"),
                Some("avx512pf"),
                Some("avx512er"),
                Some("avx512cd"),
                Some("sha_ni"),
                Some("avx512bw"),
                Some("avx512vl"),
            ],
        ),
    },
    FlagWord {
        leaf: 0xd,
        subleaf: 1,
        register: Register::Eax,
        names: names(
            0,
            &[
                Some("xsaveopt"),
                Some("xsavec"),
                Some("xgetbv1"),
                Some("xsaves"),
            ],
        ),
    },
    FlagWord {
        leaf: 7,
        subleaf: 0,
        register: Register::Ecx,
        names: names(
            1,
            &[
                Some("avx512vbmi"),
                Some("umip"),
                Some("pku"),
                Some("ospke"),
                Some("waitpkg"),
                Some("avx512_vbmi2"),
                None,
                Some("gfni"),
                Some("vaes"),
                Some("vpclmulqdq"),
                Some("avx512_vnni"),
                Some("avx512_bitalg"),
                Some("tme"),
                Some("avx512_vpopcntdq"),
                None,
                Some("la57"),
                None,
                None,
                None,
                None,
                None,
                Some("rdpid"),
                None,
                None,
                Some("cldemote"),
                None,
                Some("movdiri"),
                Some("movdir64b"),
                Some("enqcmd"),
                Some("sgx_lc"),
            ],
        ),
    },
    FlagWord {
        leaf: 7,
        subleaf: 0,
        register: Register::Edx,
        names: {
            let mut n = [None; 32];
            n[4] = Some("fsrm");
            n[8] = Some("avx512_vp2intersect");
            n[10] = Some("md_clear");
            n[14] = Some("serialize");
            n[16] = Some("tsxldtrk");
            n[18] = Some("pconfig");
            n[19] = Some("arch_lbr");
            n[20] = Some("ibt");
            n[22] = Some("amx_bf16");
            n[23] = Some("avx512_fp16");
            n[24] = Some("amx_tile");
            n[25] = Some("amx_int8");
            n[28] = Some("flush_l1d");
            n[29] = Some("arch_capabilities");
            n
        },
    },
];

/// The highest standard and extended leaves.
fn max_leaves() -> (u32, u32) {
    (__cpuid(0).eax, __cpuid(0x8000_0000).eax)
}

/// Whether `leaf` exists on this CPU.
fn has_leaf(leaf: u32) -> bool {
    let (standard, extended) = max_leaves();
    if leaf >= 0x8000_0000 {
        leaf <= extended
    } else {
        leaf <= standard
    }
}

/// The processor this runs on.
pub fn identity() -> Identity {
    let leaf0 = __cpuid(0);
    let vendor_bytes: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    let signature = __cpuid(1);
    let base_family = (signature.eax >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((signature.eax >> 20) & 0xff)
    } else {
        base_family
    };
    let mut model = (signature.eax >> 4) & 0xf;
    if family >= 6 {
        model |= ((signature.eax >> 16) & 0xf) << 4;
    }
    let flags = FLAG_WORDS
        .iter()
        .filter(|word| has_leaf(word.leaf))
        .flat_map(|word| {
            let r = __cpuid_count(word.leaf, word.subleaf);
            let bits = match word.register {
                Register::Eax => r.eax,
                Register::Ebx => r.ebx,
                Register::Ecx => r.ecx,
                Register::Edx => r.edx,
            };
            (0..32).filter_map(move |bit| word.names[bit].filter(|_| bits & (1 << bit) != 0))
        })
        .collect();
    let (physical_address_bits, virtual_address_bits) = if has_leaf(0x8000_0008) {
        let sizes = __cpuid(0x8000_0008).eax;
        (sizes & 0xff, (sizes >> 8) & 0xff)
    } else {
        (36, 48)
    };
    Identity {
        vendor: String::from_utf8_lossy(&vendor_bytes).into_owned(),
        family,
        model,
        stepping: signature.eax & 0xf,
        model_name: brand_string().unwrap_or_else(|| String::from("unknown")),
        max_leaf: leaf0.eax,
        flags,
        cache_kib: cache_kib(),
        clflush_bytes: ((signature.ebx >> 8) & 0xff) * 8,
        physical_address_bits,
        virtual_address_bits,
    }
}

/// Leaves 0x80000002-4: the brand string, trimmed.
fn brand_string() -> Option<String> {
    if !has_leaf(0x8000_0004) {
        return None;
    }
    let bytes: Vec<u8> = (0x8000_0002..=0x8000_0004)
        .flat_map(|leaf| {
            let r = __cpuid(leaf);
            [r.eax, r.ebx, r.ecx, r.edx]
        })
        .flat_map(u32::to_le_bytes)
        .take_while(|&b| b != 0)
        .collect();
    let name = String::from_utf8_lossy(&bytes).trim().into();
    Some(name).filter(|n: &String| !n.is_empty())
}

/// The L2 cache's size in KiB (leaf 0x80000006 ECX), what Linux's generic code shows.
fn cache_kib() -> Option<u32> {
    if !has_leaf(0x8000_0006) {
        return None;
    }
    Some(__cpuid(0x8000_0006).ecx >> 16).filter(|&kib| kib > 0)
}

/// How many low bits of an APIC ID number the thread in its core, and how many the core and
/// thread in the package (leaf 0xB); without that leaf, every CPU is a core of package 0.
fn topology_shifts() -> (u32, u32) {
    if !has_leaf(0xb) || __cpuid_count(0xb, 0).ebx == 0 {
        return (0, 32);
    }
    let (mut thread_bits, mut package_bits) = (0, 0);
    for level in 0..8 {
        let r = __cpuid_count(0xb, level);
        let kind = (r.ecx >> 8) & 0xff;
        if kind == 0 {
            break;
        }
        let shift = r.eax & 0x1f;
        if kind == 1 {
            thread_bits = shift;
        }
        package_bits = shift;
    }
    (thread_bits, package_bits.max(thread_bits))
}

/// Where the CPU with this APIC ID sits.
pub fn place(apic_id: u32) -> Place {
    let (thread_bits, package_bits) = topology_shifts();
    let core_mask = 1u32
        .checked_shl(package_bits - thread_bits)
        .map_or(u32::MAX, |m| m - 1);
    Place {
        package: apic_id.checked_shr(package_bits).unwrap_or(0),
        core: (apic_id >> thread_bits) & core_mask,
    }
}
