//! Failure injection (the `fail=` boot option): chosen allocations fail on purpose, so that
//! the code that handles an exhausted allocator runs and can be tested. Three kinds:
//!
//! - `frames`: frames for user memory (anonymous and copied pages, page-cache pages, fork's
//!   copies), through [`super::user_tables`];
//! - `slab`: VMA objects from their slab cache ([`super::vma`]);
//! - `pagetable`: user page-table pages, the root of a new address space included.
//!
//! The option is `fail=KIND:RATE[,KIND:RATE...]`, where a rate `N` fails every Nth allocation
//! of that kind and `P%` fails each with probability P percent (up to three decimals: `0.125%`),
//! drawn from a generator seeded by `fail.seed=S` (default 1). Allocations made while the
//! kernel boots never fail: [`arm`] starts the injection once boot is complete, before init or
//! the tests start. [`Suspend`] pauses it (a test taking its baseline; test builds only).
//! Test builds can also script one failure of a kind without the option ([`FailNth`]: the
//! Nth allocation the scripting thread asks for), to drive one failure path deterministically.
//!
//! Everything is atomics: the rates are set once at boot, before other CPUs allocate user
//! memory; the counters are only added to; a script's countdown is set by its thread, counted
//! down only by that thread, and cleared when the script ends.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// What kind of allocation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Frames = 0,
    Slab = 1,
    PageTable = 2,
}

const KINDS: [Kind; 3] = [Kind::Frames, Kind::Slab, Kind::PageTable];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Frames => "frames",
            Kind::Slab => "slab",
            Kind::PageTable => "pagetable",
        }
    }
}

/// How often one kind fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rate {
    #[default]
    Never,
    /// Every Nth allocation (N ≥ 1).
    Every(u64),
    /// Each allocation with this chance, in millionths of one (1..=1 000 000).
    PerMillion(u64),
}

/// Millionths in a percent.
const PER_MILLION_IN_PERCENT: u64 = 10_000;

impl Rate {
    /// `N` or `P%` (see the module documentation); `None` when malformed or zero.
    fn parse(text: &str) -> Option<Self> {
        match text.strip_suffix('%') {
            None => text.parse().ok().filter(|&n| n > 0).map(Rate::Every),
            Some(percent) => {
                let (whole, fraction) = percent.split_once('.').unwrap_or((percent, ""));
                if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let whole: u64 = whole.parse().ok()?;
                let mut thousandths: u64 = if fraction.is_empty() {
                    0
                } else {
                    fraction.parse().ok()?
                };
                for _ in fraction.len()..3 {
                    thousandths *= 10;
                }
                let per_million = whole.checked_mul(PER_MILLION_IN_PERCENT)? + thousandths * 10;
                (1..=100 * PER_MILLION_IN_PERCENT)
                    .contains(&per_million)
                    .then_some(Rate::PerMillion(per_million))
            }
        }
    }

    /// The rate as one word for [`RATES`]: 0 never, `N` every Nth, `PER_MILLION_FLAG | p`.
    fn encode(self) -> u64 {
        match self {
            Rate::Never => 0,
            Rate::Every(n) => n,
            Rate::PerMillion(p) => PER_MILLION_FLAG | p,
        }
    }

    fn decode(word: u64) -> Self {
        match word {
            0 => Rate::Never,
            w if w & PER_MILLION_FLAG != 0 => Rate::PerMillion(w & !PER_MILLION_FLAG),
            n => Rate::Every(n),
        }
    }
}

impl core::fmt::Display for Rate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Rate::Never => write!(f, "never"),
            Rate::Every(n) => write!(f, "{n}"),
            Rate::PerMillion(p) => {
                let (whole, rest) = (p / PER_MILLION_IN_PERCENT, p % PER_MILLION_IN_PERCENT);
                if rest == 0 {
                    write!(f, "{whole}%")
                } else {
                    let digits = alloc::format!("{:03}", rest / 10);
                    write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
                }
            }
        }
    }
}

/// The rate of every kind (`fail=`), as the boot options hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rates([Rate; 3]);

impl Rates {
    /// `KIND:RATE[,KIND:RATE...]`; `None` when any part is malformed (unknown kind, bad rate,
    /// a kind named twice).
    pub fn parse(text: &str) -> Option<Self> {
        let mut rates = Rates::default();
        for part in text.split(',') {
            let (name, rate) = part.split_once(':')?;
            let kind = KINDS.into_iter().find(|kind| kind.name() == name)?;
            let slot = &mut rates.0[kind as usize];
            if *slot != Rate::Never {
                return None;
            }
            *slot = Rate::parse(rate)?;
        }
        Some(rates)
    }

    pub fn is_none(&self) -> bool {
        self.0.iter().all(|&rate| rate == Rate::Never)
    }
}

impl core::fmt::Display for Rates {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut separator = "";
        for kind in KINDS {
            let rate = self.0[kind as usize];
            if rate != Rate::Never {
                write!(f, "{separator}{}:{rate}", kind.name())?;
                separator = ",";
            }
        }
        Ok(())
    }
}

/// Each kind's rate, encoded by [`Rate::encode`].
static RATES: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
const PER_MILLION_FLAG: u64 = 1 << 63;
static SEED: AtomicU64 = AtomicU64::new(1);
/// Set by [`arm`] once boot is complete.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Live [`Suspend`] guards.
static SUSPENDED: AtomicUsize = AtomicUsize::new(0);
/// Allocations of each kind while armed, and how many of them were made to fail.
static ATTEMPTS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static INJECTED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// Sets the rates and the seed (`fail=`, `fail.seed=`), at boot; nothing fails before [`arm`].
pub fn configure(rates: Rates, seed: u64) {
    for (word, rate) in RATES.iter().zip(rates.0) {
        word.store(rate.encode(), Ordering::Relaxed);
    }
    SEED.store(seed, Ordering::Relaxed);
}

/// Starts the injection (boot is complete), if any rate is set.
pub fn arm() {
    if RATES.iter().all(|word| word.load(Ordering::Relaxed) == 0) {
        return;
    }
    let rates = Rates(core::array::from_fn(|i| {
        Rate::decode(RATES[i].load(Ordering::Relaxed))
    }));
    log::warn!(
        "fail: allocations now fail on purpose ({rates}, seed {})",
        SEED.load(Ordering::Relaxed)
    );
    ARMED.store(true, Ordering::Release);
}

/// Whether injection was armed (boot option `fail=`), suspended or not.
#[cfg(feature = "ktest")]
pub fn is_armed() -> bool {
    ARMED.load(Ordering::Acquire)
}

/// Whether injection is armed (and not suspended): failures may come from it now.
pub fn is_active() -> bool {
    ARMED.load(Ordering::Acquire) && SUSPENDED.load(Ordering::Acquire) == 0
}

/// Whether this allocation of `kind` is to fail (and counts it if so).
pub fn should_fail(kind: Kind) -> bool {
    #[cfg(feature = "ktest")]
    if FailNth::takes(kind) {
        return true;
    }
    if !is_active() {
        return false;
    }
    let index = kind as usize;
    let rate = Rate::decode(RATES[index].load(Ordering::Relaxed));
    if rate == Rate::Never {
        return false;
    }
    let attempt = ATTEMPTS[index].fetch_add(1, Ordering::Relaxed) + 1;
    let fail = match rate {
        Rate::Never => false,
        Rate::Every(n) => attempt.is_multiple_of(n),
        Rate::PerMillion(p) => {
            let seed = SEED.load(Ordering::Relaxed);
            mix(seed ^ ((index as u64) << 56) ^ attempt) % 1_000_000 < p
        }
    };
    if fail {
        INJECTED[index].fetch_add(1, Ordering::Relaxed);
    }
    fail
}

/// A well-spread 64-bit hash of `x` (the finaliser of SplitMix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Failures injected so far, by kind (frames, slab, pagetable).
#[cfg(feature = "ktest")]
pub fn injected() -> [u64; 3] {
    core::array::from_fn(|i| INJECTED[i].load(Ordering::Relaxed))
}

/// While one lives, nothing fails on purpose (a test taking or checking its baseline).
#[cfg(feature = "ktest")]
pub struct Suspend(());

#[cfg(feature = "ktest")]
impl Suspend {
    pub fn new() -> Self {
        SUSPENDED.fetch_add(1, Ordering::AcqRel);
        Suspend(())
    }
}

#[cfg(feature = "ktest")]
impl Drop for Suspend {
    fn drop(&mut self) {
        SUSPENDED.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A failure scripted by a test (test images only): while a `FailNth` lives, the `n`th
/// allocation of its kind that the thread which made it asks for fails, once, whether `fail=`
/// armed the injection or not; other threads' allocations are not counted. One script per
/// kind at a time. Scripted failures are not counted among the injected ones.
#[cfg(feature = "ktest")]
pub struct FailNth {
    kind: Kind,
}

/// Per kind: the allocations the scripting thread has left before the one that fails (0: no
/// script, or it fired), that thread (its task's address), and whether the failure came.
#[cfg(feature = "ktest")]
static SCRIPT_COUNTDOWN: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
#[cfg(feature = "ktest")]
static SCRIPT_THREAD: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
#[cfg(feature = "ktest")]
static SCRIPT_FIRED: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];

#[cfg(feature = "ktest")]
impl FailNth {
    /// Scripts the failure of the `n`th (from 1) allocation of `kind` of the calling thread.
    pub fn new(kind: Kind, n: u64) -> Self {
        assert!(n > 0, "allocations are counted from 1");
        let index = kind as usize;
        SCRIPT_FIRED[index].store(false, Ordering::Relaxed);
        SCRIPT_THREAD[index].store(current_thread(), Ordering::Relaxed);
        let earlier = SCRIPT_COUNTDOWN[index].swap(n, Ordering::AcqRel);
        assert_eq!(earlier, 0, "a failure of this kind is scripted already");
        FailNth { kind }
    }

    /// Whether the scripted allocation came, and failed.
    pub fn fired(&self) -> bool {
        SCRIPT_FIRED[self.kind as usize].load(Ordering::Acquire)
    }

    /// Whether this allocation of `kind` is the scripted one (counting it if it is the
    /// scripting thread's).
    fn takes(kind: Kind) -> bool {
        let index = kind as usize;
        if SCRIPT_COUNTDOWN[index].load(Ordering::Acquire) == 0
            || SCRIPT_THREAD[index].load(Ordering::Relaxed) != current_thread()
        {
            return false;
        }
        // Only the scripting thread counts down, so no other thread races this update.
        let left = SCRIPT_COUNTDOWN[index].load(Ordering::Relaxed) - 1;
        SCRIPT_COUNTDOWN[index].store(left, Ordering::Release);
        if left == 0 {
            SCRIPT_FIRED[index].store(true, Ordering::Release);
        }
        left == 0
    }
}

#[cfg(feature = "ktest")]
impl Drop for FailNth {
    fn drop(&mut self) {
        SCRIPT_COUNTDOWN[self.kind as usize].store(0, Ordering::Release);
    }
}

/// The calling thread, as the address of its task.
#[cfg(feature = "ktest")]
fn current_thread() -> usize {
    core::ptr::from_ref(crate::sched::current()) as usize
}

/// One line: the allocations seen while armed and the failures injected, by kind (the
/// `stats` option prints it at exit; nothing when injection was never armed).
pub fn log_statistics() {
    if !ARMED.load(Ordering::Acquire) {
        return;
    }
    let [frames, slab, tables] = core::array::from_fn::<_, 3, _>(|i| {
        (
            INJECTED[i].load(Ordering::Relaxed),
            ATTEMPTS[i].load(Ordering::Relaxed),
        )
    });
    log::info!(
        "fail: injected {} of {} frame, {} of {} slab, {} of {} page-table allocations",
        frames.0,
        frames.1,
        slab.0,
        slab.1,
        tables.0,
        tables.1
    );
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::{Rate, Rates};
    use crate::ktest;

    ktest! {
        /// `fail=` accepts every-Nth and percentage rates per kind, prints them back the same
        /// way, and refuses unknown kinds, zero, repeated kinds and malformed numbers.
        fn fail_option_parses_and_refuses() {
            let rates = Rates::parse("frames:50,slab:0.5%,pagetable:7").expect("valid");
            assert_eq!(rates.0, [Rate::Every(50), Rate::PerMillion(5_000), Rate::Every(7)]);
            assert_eq!(alloc::format!("{rates}"), "frames:50,slab:0.5%,pagetable:7");
            assert_eq!(Rates::parse("slab:100%").map(|r| r.0[1]), Some(Rate::PerMillion(1_000_000)));
            assert_eq!(alloc::format!("{}", Rates::parse("frames:0.125%").unwrap()), "frames:0.125%");
            for bad in ["", "frames", "frames:", "frames:0", "frames:-1", "heap:3", "frames:1,frames:2",
                        "frames:101%", "frames:0%", "frames:0.0001%", "frames:x%", "frames:1.%x", "frames:5,"] {
                assert_eq!(Rates::parse(bad), None, "accepted {bad:?}");
            }
        }
    }
}
