//! `/sys`: what programs that size themselves to the machine read (the CPU lists and each
//! CPU's place in the package/core/thread topology, for hwloc and lscpu; transparent huge page
//! policy), as Linux lays it out. Fixed directories ([`StaticDir`]) of files whose text is made
//! at open ([`TextFile`]); the CPUs are those registered when the instance is made (at boot,
//! all of them). No lock of its own.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::dev::StaticDir;
use super::generated::{TextFile, cpu_list, cpu_mask};
use super::{FsKind, Inode};
use crate::arch::cpuid;
use crate::arch::percpu::{self, CpuSet, MAX_CPUS};

/// A file whose text never changes.
fn fixed(text: String) -> Arc<dyn Inode> {
    TextFile::fixed(FsKind::Sysfs, text)
}

fn directory(entries: Vec<(&str, Arc<dyn Inode>)>) -> Arc<dyn Inode> {
    StaticDir::new(FsKind::Sysfs, entries)
}

/// A new `/sys`: the root directory of one instance.
pub fn new_root() -> Arc<dyn Inode> {
    let transparent_hugepage = directory(vec![(
        "enabled",
        fixed(String::from("always [madvise] never\n")),
    )]);
    let kernel = directory(vec![(
        "mm",
        directory(vec![("transparent_hugepage", transparent_hugepage)]),
    )]);
    let system = directory(vec![("cpu", cpu_directory())]);
    directory(vec![
        ("devices", directory(vec![("system", system)])),
        ("kernel", kernel),
    ])
}

/// `devices/system/cpu`: the lists of CPUs and a `cpuN` directory for each.
fn cpu_directory() -> Arc<dyn Inode> {
    let possible = CpuSet::all_registered();
    let places: Vec<(usize, cpuid::Place)> = percpu::registered_cpus()
        .map(|cpu| (cpu.index, cpuid::place(cpu.apic_id.load(Ordering::Relaxed))))
        .collect();
    let list = move |cpus: CpuSet| fixed(format!("{}\n", cpu_list(cpus)));
    let mut entries: Vec<(String, Arc<dyn Inode>)> = vec![
        (
            String::from("online"),
            TextFile::new(FsKind::Sysfs, || {
                format!("{}\n", cpu_list(CpuSet::all_online()))
            }),
        ),
        (String::from("possible"), list(possible)),
        (String::from("present"), list(possible)),
        (String::from("offline"), fixed(String::from("\n"))),
        (
            String::from("kernel_max"),
            fixed(format!("{}\n", MAX_CPUS - 1)),
        ),
    ];
    for &(index, place) in &places {
        let set = |same: &dyn Fn(&cpuid::Place) -> bool| {
            CpuSet(
                places
                    .iter()
                    .filter(|(_, p)| same(p))
                    .fold(0, |mask, (i, _)| mask | 1 << i),
            )
        };
        let core = set(&|p| *p == place);
        let package = set(&|p| p.package == place.package);
        let mut topology: Vec<(&str, Arc<dyn Inode>)> = vec![
            ("core_id", fixed(format!("{}\n", place.core))),
            ("physical_package_id", fixed(format!("{}\n", place.package))),
            ("die_id", fixed(String::from("0\n"))),
            ("cluster_id", fixed(String::from("65535\n"))),
        ];
        for (mask_name, list_name, cpus) in [
            ("thread_siblings", "thread_siblings_list", core),
            ("core_cpus", "core_cpus_list", core),
            ("cluster_cpus", "cluster_cpus_list", core),
            ("core_siblings", "core_siblings_list", package),
            ("die_cpus", "die_cpus_list", package),
            ("package_cpus", "package_cpus_list", package),
        ] {
            topology.push((
                mask_name,
                fixed(format!("{}\n", cpu_mask(cpus, possible.len()))),
            ));
            topology.push((list_name, fixed(format!("{}\n", cpu_list(cpus)))));
        }
        let mut cpu: Vec<(&str, Arc<dyn Inode>)> = vec![("topology", directory(topology))];
        // As on x86 Linux, the boot CPU cannot go offline and has no `online` file.
        if index > 0 {
            cpu.push((
                "online",
                TextFile::new(FsKind::Sysfs, move || {
                    let online = CpuSet::all_online().contains(index);
                    String::from(if online { "1\n" } else { "0\n" })
                }),
            ));
        }
        entries.push((format!("cpu{index}"), directory(cpu)));
    }
    StaticDir::new(
        FsKind::Sysfs,
        entries
            .iter()
            .map(|(name, inode)| (name.as_str(), inode.clone()))
            .collect(),
    )
}
