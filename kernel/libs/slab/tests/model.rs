//! Property tests: random alloc/free sequences across simulated CPUs against a model (the list
//! of live objects), for several cache configurations, checking after every step that live
//! objects are distinct, aligned, inside slab pages, constructed exactly once and never again,
//! handed out in constructed state, reused LIFO, and that `info()` and the platform's page count
//! agree with the model; at the end, that drain + shrink give every page back — for typesafe
//! caches only once the grace period ends.
#![cfg(not(loom))] // std-thread and `const` caches; the loom models are in loom.rs

mod common;

use common::{
    Fixture, OBJ_MAGIC, Obj, TestPlatform, ctor_record, ctor_runs, obj_check, reset_ctor_log,
    set_cpu,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use slab::{CacheFlags, KmemCache};
use std::ptr::NonNull;

const CPUS: usize = 4;

#[derive(Clone, Copy, Debug)]
enum Op {
    Alloc { cpu: usize },
    Free { cpu: usize, pick: usize },
    Drain,
    Shrink,
    GracePeriod,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..CPUS).prop_map(|cpu| Op::Alloc { cpu }),
        5 => (0..CPUS, any::<usize>()).prop_map(|(cpu, pick)| Op::Free { cpu, pick }),
        1 => Just(Op::Drain),
        1 => Just(Op::Shrink),
        1 => Just(Op::GracePeriod),
    ]
}

/// The configurations under test: flags and the free-link placement.
const CONFIGS: [(CacheFlags, Option<usize>); 6] = [
    (CacheFlags::NONE, None),
    (CacheFlags::TYPESAFE_BY_RCU, None),
    (CacheFlags::LIFO_REUSE, None),
    (
        CacheFlags::TYPESAFE_BY_RCU.union(CacheFlags::LIFO_REUSE),
        None,
    ),
    (
        CacheFlags::RED_ZONE.union(CacheFlags::CONSTRUCTED_CHECK),
        None,
    ),
    (
        CacheFlags::RED_ZONE.union(CacheFlags::TYPESAFE_BY_RCU),
        Some(Obj::SPARE_OFFSET),
    ),
];

struct Live {
    ptr: NonNull<u8>,
    /// The serial the constructor gave this slot; reuse must not change it.
    serial: u64,
    /// What the test wrote into the payload while it owned the object.
    stamp: u64,
}

fn obj<'a>(p: NonNull<u8>) -> &'a mut Obj {
    // SAFETY: the model only passes live objects of the `Obj` cache, which it owns.
    unsafe { &mut *p.as_ptr().cast::<Obj>() }
}

fn check_info(
    cache: &KmemCache<TestPlatform>,
    platform: &TestPlatform,
    live: usize,
    counts: (usize, usize),
) {
    let info = cache.info();
    assert_eq!(info.active_objects, live);
    assert_eq!((info.allocs, info.frees), counts);
    assert_eq!(info.total_objects, info.slabs * info.objects_per_slab);
    assert!(info.total_objects >= live);
    assert_eq!(info.pages, platform.pages.outstanding_pages());
    assert_eq!(info.pending_frees, platform.pending_callbacks());
    assert_eq!(
        info.slabs_created - info.slabs_freed,
        info.slabs + info.pending_frees
    );
    assert_eq!(
        ctor_runs(),
        info.slabs_created * info.objects_per_slab,
        "one ctor run per slot"
    );
}

fn run(config: usize, ops: &[Op]) {
    let (flags, link) = CONFIGS[config];
    let typesafe = flags.contains(CacheFlags::TYPESAFE_BY_RCU);
    let lifo = flags.contains(CacheFlags::LIFO_REUSE);
    reset_ctor_log();
    // Freed pages are never reused inside a case, so an address names one slot for good.
    let f = Fixture::new(flags, link, TestPlatform::new(false, None));
    let (cache, platform) = (f.cache(), f.platform());
    let size = size_of::<Obj>();
    let mut live: Vec<Live> = Vec::new();
    let (mut allocs, mut frees) = (0, 0);
    // The object freed by the previous step, and on which CPU.
    let mut just_freed: Option<(usize, NonNull<u8>)> = None;
    let mut stamp = 0;

    for &op in ops {
        let previous_free = just_freed.take();
        match op {
            Op::Alloc { cpu } => {
                set_cpu(cpu);
                let p = cache.alloc().expect("the host has memory");
                allocs += 1;
                let addr = p.addr().get();
                assert_eq!(addr % align_of::<Obj>(), 0, "aligned");
                assert!(platform.pages.contains(addr, size), "inside a slab page");
                for other in &live {
                    assert!(
                        other.ptr.addr().get().abs_diff(addr) >= size,
                        "overlaps a live object"
                    );
                }
                let (runs, serial) = ctor_record(addr).expect("constructed");
                assert_eq!(runs, 1, "constructed exactly once");
                let o = obj(p);
                assert_eq!(
                    (o.magic, o.serial, o.payload),
                    (OBJ_MAGIC, serial, [0; 2]),
                    "constructed state"
                );
                if let Some((freed_on, freed)) = previous_free
                    && (lifo || freed_on == cpu)
                {
                    assert_eq!(p, freed, "the object freed last is handed out first");
                }
                stamp += 1;
                o.payload = [stamp, !stamp];
                live.push(Live {
                    ptr: p,
                    serial,
                    stamp,
                });
            }
            Op::Free { cpu, pick } => {
                if live.is_empty() {
                    continue;
                }
                let victim = live.swap_remove(pick % live.len());
                let o = obj(victim.ptr);
                assert_eq!(
                    o.payload,
                    [victim.stamp, !victim.stamp],
                    "nobody else wrote it"
                );
                assert_eq!(o.serial, victim.serial);
                o.payload = [0; 2];
                set_cpu(cpu);
                // SAFETY: a live object of this cache, back in constructed state.
                unsafe { cache.free(victim.ptr) };
                frees += 1;
                // SAFETY: still mapped (it has a live neighbour or sits in a magazine or a
                // slab that has not gone back yet), and an `Obj`.
                let intact = unsafe { obj_check(victim.ptr.as_ptr()) };
                assert!(intact, "freeing keeps the object intact");
                just_freed = Some((cpu, victim.ptr));
            }
            Op::Drain => cache.drain_cpu_caches(),
            Op::Shrink => {
                let released = platform.pages.released_pages();
                cache.shrink();
                if typesafe {
                    assert_eq!(
                        platform.pages.released_pages(),
                        released,
                        "not before a grace period"
                    );
                }
            }
            Op::GracePeriod => platform.complete_grace_period(),
        }
        check_info(cache, platform, live.len(), (allocs, frees));
    }

    for victim in live.drain(..) {
        obj(victim.ptr).payload = [0; 2];
        // SAFETY: as above.
        unsafe { cache.free(victim.ptr) };
        frees += 1;
    }
    cache.drain_cpu_caches();
    cache.shrink();
    check_info(cache, platform, 0, (allocs, frees));
    let info = cache.info();
    assert_eq!(info.slabs, 0);
    if typesafe {
        assert_eq!(info.pending_frees, platform.pending_callbacks());
        assert_eq!(
            platform.pages.outstanding_pages(),
            info.pending_frees * info.pages_per_slab
        );
        platform.complete_grace_period();
    }
    assert_eq!(
        platform.pages.outstanding_pages(),
        0,
        "every page went back"
    );
    let info = cache.info();
    assert_eq!((info.pages, info.pending_frees), (0, 0));
    assert_eq!(info.slabs_freed, info.slabs_created);
}

/// Cases and long-run length: Miri runs a shrunk subset.
const CASES: u32 = if cfg!(miri) { 3 } else { 64 };
const LONG: usize = if cfg!(miri) { 300 } else { 3000 };

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(CASES);
    if cfg!(miri) {
        // Miri's isolation forbids the regression file.
        config.failure_persistence = None;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_sequences_match_the_model(
        config in 0..CONFIGS.len(),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        run(config, &ops);
    }
}

/// Long runs that cross magazine, batch and slab boundaries many times, for each configuration.
#[test]
fn long_sequences_in_every_configuration() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for config in 0..CONFIGS.len() {
        let ops = prop::collection::vec(op(), LONG)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        run(config, &ops);
    }
}
