//! The files of `/proc` that describe the system, in Linux's formats: memory (`meminfo`), the
//! processors (`cpuinfo`), time and counters (`uptime`, `stat`, `loadavg`), `version`,
//! `filesystems`, the mount table (`PID/mounts`, `PID/mountinfo`; `mounts` links to
//! `self/mounts`) and `sys/kernel/`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::{LinkTarget, ProcLink};
use crate::arch::cpuid;
use crate::arch::percpu;
use crate::fs::dentry::{
    self, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_STRICTATIME,
};
use crate::fs::dev::StaticDir;
use crate::fs::generated::TextFile;
use crate::fs::{FsKind, Inode};
use crate::proc::clock_ticks;
use crate::syscall::info::{NODENAME, RELEASE, SYSNAME, VERSION};

/// The entries of the root that are not processes, in listing order.
pub(super) fn entries() -> Vec<(&'static str, Arc<dyn Inode>)> {
    let text = |make: fn() -> String| -> Arc<dyn Inode> { TextFile::new(FsKind::Proc, make) };
    let fixed = |text: String| -> Arc<dyn Inode> { TextFile::fixed(FsKind::Proc, text) };
    let kernel = StaticDir::new(
        FsKind::Proc,
        vec![
            ("hostname", fixed(format!("{NODENAME}\n"))),
            ("osrelease", fixed(format!("{RELEASE}\n"))),
            ("ostype", fixed(format!("{SYSNAME}\n"))),
            ("pid_max", fixed(format!("{}\n", 1 << 22))),
        ],
    );
    // `overcommit=` at boot; read-only here.
    let vm = StaticDir::new(
        FsKind::Proc,
        vec![(
            "overcommit_memory",
            fixed(format!("{}\n", crate::mm::commit::mode() as u8)),
        )],
    );
    vec![
        ("cpuinfo", text(cpuinfo)),
        ("filesystems", text(filesystems)),
        ("loadavg", text(loadavg)),
        ("meminfo", text(meminfo)),
        ("mounts", ProcLink::new(LinkTarget::Path("self/mounts"))),
        ("self", ProcLink::new(LinkTarget::OwnProcess)),
        ("stat", text(stat)),
        (
            "sys",
            StaticDir::new(FsKind::Proc, vec![("kernel", kernel), ("vm", vm)]),
        ),
        ("thread-self", ProcLink::new(LinkTarget::OwnThread)),
        ("uptime", text(uptime)),
        ("version", text(version)),
    ]
}

/// `meminfo`: `Key:` padded to 16 columns, the value in KiB in 8.
fn meminfo() -> String {
    let memory = crate::mm::frame::stats();
    let slab_pages: usize = crate::mm::slab::caches()
        .iter()
        .map(|cache| cache.info().pages)
        .sum();
    let anonymous_pages: i64 = crate::proc::live_processes()
        .iter()
        .filter_map(|p| p.mm())
        .map(|mm| mm.resident_pages.sum().max(0))
        .sum();
    let locked_pages: u64 = crate::proc::live_processes()
        .iter()
        .filter_map(|p| p.mm())
        .map(|mm| mm.read().locked_resident_pages())
        .sum();
    let kib = |pages: usize| pages as u64 * 4;
    let mut text = String::new();
    for (key, value) in [
        ("MemTotal", kib(memory.total_frames)),
        ("MemFree", kib(memory.free_frames)),
        ("MemAvailable", kib(memory.free_frames)),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Mlocked", locked_pages * 4),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", anonymous_pages as u64 * 4),
        ("Shmem", 0),
        ("Slab", kib(slab_pages)),
        ("SReclaimable", 0),
        ("SUnreclaim", kib(slab_pages)),
        ("CommitLimit", crate::mm::commit::commit_limit() as u64 * 4),
        ("Committed_AS", crate::mm::commit::committed() as u64 * 4),
    ] {
        // Writing to a `String` cannot fail.
        let _ = writeln!(text, "{:<16}{value:8} kB", format!("{key}:"));
    }
    text
}

/// `cpuinfo`: one block per online CPU, as Linux lays them out for x86.
fn cpuinfo() -> String {
    let identity = cpuid::identity();
    let cpus: Vec<(usize, u32, cpuid::Place)> = percpu::online_cpus()
        .map(|cpu| {
            let apic_id = cpu.apic_id.load(Ordering::Relaxed);
            (cpu.index, apic_id, cpuid::place(apic_id))
        })
        .collect();
    let mhz_thousandths = crate::time::tsc_hz() / 1000;
    let mut text = String::new();
    for &(index, apic_id, place) in &cpus {
        let in_package = cpus.iter().filter(|(_, _, p)| p.package == place.package);
        let siblings = in_package.clone().count();
        let mut cores: Vec<u32> = in_package.map(|(_, _, p)| p.core).collect();
        cores.sort_unstable();
        cores.dedup();
        // Writing to a `String` cannot fail.
        let _ = write!(
            text,
            "processor\t: {index}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\n\
             model name\t: {}\nstepping\t: {}\ncpu MHz\t\t: {}.{:03}\n",
            identity.vendor,
            identity.family,
            identity.model,
            identity.model_name,
            identity.stepping,
            mhz_thousandths / 1000,
            mhz_thousandths % 1000,
        );
        if let Some(kib) = identity.cache_kib {
            let _ = writeln!(text, "cache size\t: {kib} KB");
        }
        let _ = write!(
            text,
            "physical id\t: {}\nsiblings\t: {siblings}\ncore id\t\t: {}\ncpu cores\t: {}\n\
             apicid\t\t: {apic_id}\ninitial apicid\t: {apic_id}\nfpu\t\t: yes\n\
             fpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {}\n\
             bugs\t\t:\nbogomips\t: {}.{:02}\nclflush size\t: {}\ncache_alignment\t: {}\n\
             address sizes\t: {} bits physical, {} bits virtual\npower management:\n\n",
            place.package,
            place.core,
            cores.len(),
            identity.max_leaf,
            identity.flags.join(" "),
            mhz_thousandths * 2 / 1000,
            mhz_thousandths * 2 / 10 % 100,
            identity.clflush_bytes,
            identity.clflush_bytes,
            identity.physical_address_bits,
            identity.virtual_address_bits,
        );
    }
    text
}

/// Seconds with two decimals, from timer ticks (`uptime`).
fn seconds(ticks: u64) -> String {
    let hundredths = clock_ticks(ticks);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// `uptime`: seconds since boot, and seconds the CPUs spent idle (summed).
fn uptime() -> String {
    let now_ns = crate::time::now_ns();
    let idle: u64 = percpu::online_cpus()
        .map(|cpu| cpu.sched.idle_ticks())
        .sum();
    format!(
        "{}.{:02} {}\n",
        now_ns / 1_000_000_000,
        now_ns / 10_000_000 % 100,
        seconds(idle)
    )
}

/// `stat`: time per CPU in clock ticks (busy time counted as user time: the timer does not
/// tell user from kernel time), interrupts, context switches, boot time, tasks made, running.
fn stat() -> String {
    let times: Vec<(usize, u64, u64)> = percpu::online_cpus()
        .map(|cpu| {
            let idle = cpu.sched.idle_ticks();
            let all = cpu.ticks.load(Ordering::Relaxed);
            (
                cpu.index,
                clock_ticks(all.saturating_sub(idle)),
                clock_ticks(idle),
            )
        })
        .collect();
    let line = |name: &str, busy: u64, idle: u64| format!("{name} {busy} 0 0 {idle} 0 0 0 0 0 0\n");
    let (busy, idle) = times
        .iter()
        .fold((0, 0), |(b, i), &(_, busy, idle)| (b + busy, i + idle));
    let mut text = line("cpu ", busy, idle);
    for &(index, busy, idle) in &times {
        text.push_str(&line(&format!("cpu{index}"), busy, idle));
    }
    let interrupts: u64 = percpu::online_cpus()
        .map(|cpu| cpu.ticks.load(Ordering::Relaxed) + cpu.call_interrupts.load(Ordering::Relaxed))
        .sum();
    let (_, switches) = crate::sched::statistics();
    // Writing to a `String` cannot fail.
    let _ = write!(
        text,
        "intr {interrupts}\nctxt {switches}\nbtime {}\nprocesses {}\nprocs_running {}\n\
         procs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        crate::time::realtime_offset_ns() / 1_000_000_000,
        crate::sched::task::tids_allocated(),
        crate::sched::runnable_tasks(),
    );
    text
}

/// `loadavg`: no load averages are kept (0.00); runnable and existing user threads, and the
/// last id handed out.
fn loadavg() -> String {
    let threads: usize = crate::proc::live_processes()
        .iter()
        .map(|p| p.thread_count())
        .sum();
    format!(
        "0.00 0.00 0.00 {}/{threads} {}\n",
        crate::sched::runnable_tasks(),
        crate::sched::task::tids_allocated()
    )
}

fn version() -> String {
    format!("{SYSNAME} version {RELEASE} (vmakernel@build) (rustc) {VERSION}\n")
}

/// `filesystems`: what `mount` takes (none needs a device).
fn filesystems() -> String {
    FsKind::MOUNTABLE
        .iter()
        .map(|kind| format!("nodev\t{}\n", kind.name()))
        .collect()
}

/// A mount's flags as Linux's option lists show them (`rw,nosuid,relatime`).
fn mount_options(flags: u64) -> String {
    let mut text = String::from(if flags & MS_RDONLY != 0 { "ro" } else { "rw" });
    for (flag, name) in [
        (MS_NOSUID, ",nosuid"),
        (MS_NODEV, ",nodev"),
        (MS_NOEXEC, ",noexec"),
        (MS_NOATIME, ",noatime"),
        (MS_NODIRATIME, ",nodiratime"),
    ] {
        if flags & flag != 0 {
            text.push_str(name);
        }
    }
    if flags & (MS_NOATIME | MS_STRICTATIME) == 0 {
        text.push_str(",relatime");
    }
    text
}

/// `text` with the characters that would split a line of the mount table (space, tab,
/// newline, backslash) written as octal escapes, as Linux writes them.
fn escaped(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `PID/mounts`: source, mount point, type, options, and two zeros.
pub(super) fn mounts() -> String {
    dentry::mounts()
        .iter()
        .map(|m| {
            format!(
                "{} {} {} {} 0 0\n",
                escaped(&m.source),
                escaped(&m.point),
                m.fs.name(),
                mount_options(m.flags)
            )
        })
        .collect()
}

/// `PID/mountinfo`: id, parent id, device, root, mount point, options, `-`, type, source,
/// the file system's options.
pub(super) fn mountinfo() -> String {
    dentry::mounts()
        .iter()
        .map(|m| {
            let device = m.fs.device();
            format!(
                "{} {} {}:{} / {} {} - {} {} rw\n",
                m.id,
                m.parent_id,
                (device >> 8) & 0xfff,
                device & 0xff,
                escaped(&m.point),
                mount_options(m.flags),
                m.fs.name(),
                escaped(&m.source),
            )
        })
        .collect()
}
