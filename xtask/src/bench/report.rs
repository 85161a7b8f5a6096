//! What the page-fault benchmark measured, in the forms people and tools read.
//!
//! The runner hands over one [`Measurement`] per run. [`Report`] owns everything after that:
//! grouping the runs over their repetitions, the statistics (median, min, max), the target
//! figures (our kernel against Linux, storm retention, scaling), and rendering them as a
//! terminal table, JSON (`bench.json`), Markdown (`bench.md`) and an SVG chart (`bench.svg`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::forks::{self, ForkBreakdown, ForkMeasurement, ForkRow};
use super::grow::{self, GrowMeasurement, GrowRow};
use super::maps::{self, MapsMeasurement, MapsRow};

/// Our kernel as the runner names it.
const OURS: &str = "ours";
/// Our kernel with the per-VMA lock switched off.
const OURS_VMA_LOCK_OFF: &str = "ours vma_lock=off";
/// Every kernel whose name starts with this is a Linux kernel to compare against.
const LINUX_PREFIX: &str = "Linux";
/// The chart's file name; the Markdown report links to it.
const CHART_FILE: &str = "bench.svg";

/// How a run measured time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    /// Multi-threaded TCG: `elapsed_ns` is guest wall-clock nanoseconds.
    Wall,
    /// `-icount shift=0`: `elapsed_ns` counts guest instructions (1 ns = 1 instruction).
    Icount,
}

/// One faulting thread of one run.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadResult {
    pub faults: u64,
    pub elapsed_ns: u64,
}

/// One run: one kernel, one scenario, one thread count, one repetition.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// e.g. "ours", "ours vma_lock=off", "Linux 6.1.0-56-amd64"
    pub kernel: String,
    pub method: Method,
    /// Guest CPUs (`-smp`).
    pub cpus: u32,
    /// "a", "a-procs", "a-file", "b", "c", "d-touched", "d-untouched", "spin", "spin-pause"
    pub scenario: String,
    /// Faulting threads (the storm thread of c and d is not counted).
    pub threads: u32,
    /// Repetition number, 0-based.
    pub rep: u32,
    /// Pages the faulting threads touched (each a page fault), in total.
    pub faults: u64,
    /// From the first thread's start to the last thread's end.
    pub elapsed_ns: u64,
    /// `getrusage(RUSAGE_SELF)` `ru_minflt` delta over the run.
    pub minflt: u64,
    pub per_thread: Vec<ThreadResult>,
    /// mmap/mprotect/munmap calls of the storm thread inside the measured window (0 in a and b).
    pub storm_ops: u64,
    /// Icount only: guest instructions one page clear costs in this kernel.
    pub clear_instructions: Option<u64>,
}

/// Where and how the benchmark ran; the head of the Markdown report.
#[derive(Clone, Debug, Serialize)]
pub struct Context {
    pub date: String,
    pub host: String,
    pub qemu: String,
    pub cpu_model: String,
    pub command: String,
    pub repetitions: u32,
}

/// Median, minimum and maximum of one quantity over the repetitions of a group.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for no values.
    pub(super) fn of(values: &[f64]) -> Option<Stats> {
        Some(Stats {
            median: median(values)?,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The middle value; of an even count, the mean of the two middle ones. `None` for no values.
pub(super) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

/// `count` per second over `elapsed_ns` (which must not be 0).
fn per_second(count: u64, elapsed_ns: u64) -> f64 {
    count as f64 * 1e9 / elapsed_ns as f64
}

/// `numerator / denominator` where both exist and the denominator is positive.
fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    let (numerator, denominator) = (numerator?, denominator?);
    (denominator > 0.0).then(|| numerator / denominator)
}

/// One wall-clock group: a kernel, CPU count, scenario and thread count over its repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct WallRow {
    pub kernel: String,
    pub cpus: u32,
    pub scenario: String,
    pub threads: u32,
    pub reps: usize,
    /// Median pages touched.
    pub faults: f64,
    /// Page faults per second.
    pub throughput: Stats,
    /// Median over repetitions of the mean over threads of each thread's faults per second.
    pub per_thread_throughput: f64,
    /// Median `ru_minflt` delta.
    pub minflt: f64,
}

/// One instruction-count group.
#[derive(Clone, Debug, Serialize)]
pub struct IcountRow {
    pub kernel: String,
    pub cpus: u32,
    pub scenario: String,
    pub threads: u32,
    pub reps: usize,
    /// Guest instructions per page fault.
    pub instructions_per_fault: Stats,
    /// The same less one page clear; absent where a repetition lacks `clear_instructions`.
    pub without_clear: Option<Stats>,
}

/// What a target figure must reach.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met_by(self, value: f64) -> bool {
        match self {
            Target::AtLeast(bound) => value >= bound,
            Target::AtMost(bound) => value <= bound,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::AtLeast(bound) => write!(f, "≥ {bound:.2}"),
            Target::AtMost(bound) => write!(f, "≤ {bound:.2}"),
        }
    }
}

/// One target figure: a ratio, and whether it meets its target where it has one.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub target: Option<Target>,
    pub pass: Option<bool>,
}

/// The files [`Report::write_all`] wrote.
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub svg: PathBuf,
}

/// The measurements, their statistics and the target figures.
#[derive(Debug, Serialize)]
pub struct Report {
    context: Context,
    measurements: Vec<Measurement>,
    /// Runs left out of the statistics, and why (one line each).
    excluded: Vec<String>,
    wall: Vec<WallRow>,
    icount: Vec<IcountRow>,
    /// The largest guest CPU count among the wall-clock groups: the figures and the chart use it.
    wall_cpus: Option<u32>,
    /// The same for the instruction-count groups.
    icount_cpus: Option<u32>,
    targets: Vec<Figure>,
    /// Rounds of fork, exit and wait ([`forks`](super::forks)): the runs, their groups and
    /// what each VMA and page adds.
    fork_measurements: Vec<ForkMeasurement>,
    forks: Vec<ForkRow>,
    fork_breakdowns: Vec<ForkBreakdown>,
    /// Reads of /proc/self/maps ([`maps`](super::maps)): the runs, their groups, and the
    /// kernels that could not read it, with why.
    maps_measurements: Vec<MapsMeasurement>,
    maps: Vec<MapsRow>,
    maps_unavailable: Vec<String>,
    /// Growths of a buffer by mremap and by copy ([`grow`](super::grow)): the runs and their
    /// groups.
    grow_measurements: Vec<GrowMeasurement>,
    grows: Vec<GrowRow>,
}

/// What one group of repetitions shares.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    kernel: KernelName<'a>,
    method: Method,
    cpus: u32,
    scenario: &'a str,
    threads: u32,
}

/// A kernel name that sorts ours first, then ours without the VMA lock, others, Linux last.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KernelName<'a> {
    rank: u8,
    name: &'a str,
}

impl<'a> KernelName<'a> {
    fn new(name: &'a str) -> Self {
        let rank = match name {
            OURS => 0,
            OURS_VMA_LOCK_OFF => 1,
            _ if name.starts_with(LINUX_PREFIX) => 3,
            _ => 2,
        };
        KernelName { rank, name }
    }
}

/// Why a run cannot enter the statistics, if it cannot.
fn unusable(run: &Measurement) -> Option<&'static str> {
    if run.faults == 0 {
        Some("no faults")
    } else if run.elapsed_ns == 0 {
        Some("elapsed_ns is 0")
    } else if run.method == Method::Wall && run.per_thread.is_empty() {
        Some("no per-thread results")
    } else if run.method == Method::Wall && run.per_thread.iter().any(|t| t.elapsed_ns == 0) {
        Some("a thread's elapsed_ns is 0")
    } else {
        None
    }
}

/// The mean over threads of each thread's faults per second.
fn mean_thread_throughput(run: &Measurement) -> f64 {
    let sum: f64 = run
        .per_thread
        .iter()
        .map(|t| per_second(t.faults, t.elapsed_ns))
        .sum();
    sum / run.per_thread.len() as f64
}

fn wall_row(key: &GroupKey, runs: &[&Measurement]) -> Option<WallRow> {
    let values = |value: fn(&Measurement) -> f64| runs.iter().map(|run| value(run)).collect();
    let throughput: Vec<f64> = values(|run| per_second(run.faults, run.elapsed_ns));
    Some(WallRow {
        kernel: key.kernel.name.to_string(),
        cpus: key.cpus,
        scenario: key.scenario.to_string(),
        threads: key.threads,
        reps: runs.len(),
        faults: median(&values(|run| run.faults as f64))?,
        throughput: Stats::of(&throughput)?,
        per_thread_throughput: median(&values(mean_thread_throughput))?,
        minflt: median(&values(|run| run.minflt as f64))?,
    })
}

fn icount_row(key: &GroupKey, runs: &[&Measurement]) -> Option<IcountRow> {
    let per_fault = |run: &Measurement| run.elapsed_ns as f64 / run.faults as f64;
    let with_clear: Vec<f64> = runs.iter().map(|run| per_fault(run)).collect();
    let without_clear: Option<Vec<f64>> = runs
        .iter()
        .map(|run| Some(per_fault(run) - run.clear_instructions? as f64))
        .collect();
    Some(IcountRow {
        kernel: key.kernel.name.to_string(),
        cpus: key.cpus,
        scenario: key.scenario.to_string(),
        threads: key.threads,
        reps: runs.len(),
        instructions_per_fault: Stats::of(&with_clear)?,
        without_clear: without_clear.and_then(|values| Stats::of(&values)),
    })
}

/// The rows at one CPU count, for looking groups up by kernel, scenario and threads, and the
/// usable wall-clock runs behind them.
struct Groups<'a> {
    wall: Vec<&'a WallRow>,
    icount: Vec<&'a IcountRow>,
    runs: Vec<&'a Measurement>,
}

impl<'a> Groups<'a> {
    fn wall(&self, kernel: &str, scenario: &str, threads: u32) -> Option<&WallRow> {
        self.wall
            .iter()
            .find(|r| r.kernel == kernel && r.scenario == scenario && r.threads == threads)
            .copied()
    }

    fn icount(&self, kernel: &str, scenario: &str, threads: u32) -> Option<&IcountRow> {
        self.icount
            .iter()
            .find(|r| r.kernel == kernel && r.scenario == scenario && r.threads == threads)
            .copied()
    }

    fn throughput(&self, kernel: &str, scenario: &str, threads: u32) -> Option<f64> {
        self.wall(kernel, scenario, threads)
            .map(|r| r.throughput.median)
    }

    /// The best repetition's throughput: noise on a shared host only ever slows a run down,
    /// so the best run is the closest to what the kernel costs by itself.
    fn best_throughput(&self, kernel: &str, scenario: &str, threads: u32) -> Option<f64> {
        self.wall(kernel, scenario, threads)
            .map(|r| r.throughput.max)
    }

    /// The median over repetitions of `value(run of numerator) / value(run of denominator)`,
    /// each pair taken from the same repetition of one boot: the two runs are moments apart,
    /// so a slow spell of the host weighs on both sides of a ratio rather than on one.
    fn paired_ratio(
        &self,
        kernel: &str,
        numerator: (&str, u32),
        denominator: (&str, u32),
        value: fn(&Measurement) -> f64,
    ) -> Option<f64> {
        self.paired(kernel, numerator, denominator, |num, den| {
            ratio(Some(value(num)), Some(value(den)))
        })
    }

    /// The median over repetitions of what a fault of one thread of `scenario` costs more than
    /// one of `baseline`, in microseconds (from each thread's own faults/s, averaged over
    /// threads). Where retention is a share, this is the time: a storm that costs two kernels
    /// the same time a fault takes the larger share from the faster one.
    fn paired_extra_fault_time(
        &self,
        kernel: &str,
        scenario: (&str, u32),
        baseline: (&str, u32),
    ) -> Option<f64> {
        let micros_per_fault = |run: &Measurement| {
            let rate = mean_thread_throughput(run);
            (rate > 0.0).then(|| 1e6 / rate)
        };
        self.paired(kernel, scenario, baseline, |run, base| {
            Some(micros_per_fault(run)? - micros_per_fault(base)?)
        })
    }

    /// The median over repetitions of `combine(run of first, run of second)`, the two runs
    /// taken from the same repetition of one boot.
    fn paired(
        &self,
        kernel: &str,
        first: (&str, u32),
        second: (&str, u32),
        combine: impl Fn(&Measurement, &Measurement) -> Option<f64>,
    ) -> Option<f64> {
        let find = |(scenario, threads): (&str, u32), rep: u32| {
            self.runs.iter().find(|r| {
                r.kernel == kernel && r.scenario == scenario && r.threads == threads && r.rep == rep
            })
        };
        let values: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.kernel == kernel && r.scenario == first.0 && r.threads == first.1)
            .filter_map(|run| combine(run, find(second, run.rep)?))
            .collect();
        median(&values)
    }

    /// Every kernel present, ours first and Linux last.
    fn kernels(&self) -> Vec<&'a str> {
        let wall = self.wall.iter().map(|r| r.kernel.as_str());
        let icount = self.icount.iter().map(|r| r.kernel.as_str());
        let ordered: BTreeSet<KernelName> = wall.chain(icount).map(KernelName::new).collect();
        ordered.into_iter().map(|k| k.name).collect()
    }
}

/// Appends a figure where its value could be computed.
fn push_figure(
    figures: &mut Vec<Figure>,
    name: String,
    value: Option<f64>,
    target: Option<Target>,
) {
    if let Some(value) = value {
        let pass = target.map(|target| target.met_by(value));
        figures.push(Figure {
            name,
            value,
            target,
            pass,
        });
    }
}

/// The target figures the groups allow; a figure whose groups are missing is left out.
fn target_figures(groups: &Groups) -> Vec<Figure> {
    let mut figures = Vec::new();
    let kernels = groups.kernels();
    let linux: Vec<&str> = kernels
        .iter()
        .copied()
        .filter(|k| k.starts_with(LINUX_PREFIX))
        .collect();

    for linux in &linux {
        push_figure(
            &mut figures,
            format!("single-thread faults/s, ours / {linux}"),
            ratio(
                groups.throughput(OURS, "a", 1),
                groups.throughput(linux, "a", 1),
            ),
            Some(Target::AtLeast(2.0)),
        );
        push_figure(
            &mut figures,
            format!("single-thread faults/s a-file, ours / {linux}"),
            ratio(
                groups.throughput(OURS, "a-file", 1),
                groups.throughput(linux, "a-file", 1),
            ),
            None,
        );
    }

    let per_fault = |kernel| groups.icount(kernel, "a", 1);
    for linux in &linux {
        let without_clear = |kernel| per_fault(kernel)?.without_clear.map(|s| s.median);
        push_figure(
            &mut figures,
            format!("instr/fault without clear, ours / {linux}"),
            ratio(without_clear(OURS), without_clear(linux)),
            Some(Target::AtMost(0.5)),
        );
        let with_clear = |kernel| per_fault(kernel).map(|r| r.instructions_per_fault.median);
        push_figure(
            &mut figures,
            format!("instr/fault with clear, ours / {linux}"),
            ratio(with_clear(OURS), with_clear(linux)),
            None,
        );
    }
    // What a second faulting thread costs the kernel, in instructions (QEMU runs the CPUs in
    // turn under icount, so host caches and load play no part).
    for kernel in &kernels {
        let per_fault = |threads| {
            groups
                .icount(kernel, "a", threads)
                .map(|r| r.instructions_per_fault.median)
        };
        push_figure(
            &mut figures,
            format!("instr/fault a 2/1 threads, {kernel}"),
            ratio(per_fault(2), per_fault(1)),
            None,
        );
    }

    let storms = [
        ("c", Some(Target::AtLeast(0.95))),
        ("d-touched", None),
        ("d-untouched", None),
        // The controls: the other CPU only spins in user space, without and with `pause`
        // (with it, QEMU takes its global lock at every `pause`, as at every exception).
        ("spin", None),
        ("spin-pause", None),
    ];
    for (scenario, target) in storms {
        for kernel in &kernels {
            push_figure(
                &mut figures,
                format!("storm retention {scenario}/b per-thread faults/s, {kernel}"),
                groups.paired_ratio(kernel, (scenario, 1), ("b", 1), mean_thread_throughput),
                target.filter(|_| *kernel == OURS),
            );
        }
        for kernel in &kernels {
            push_figure(
                &mut figures,
                format!("storm cost {scenario} - b, µs per fault, {kernel}"),
                groups.paired_extra_fault_time(kernel, (scenario, 1), ("b", 1)),
                None,
            );
        }
    }

    for kernel in &kernels {
        let thread_counts = groups
            .wall
            .iter()
            .filter(|r| r.kernel == *kernel && r.scenario == "a" && r.threads > 1)
            .map(|r| r.threads);
        for threads in thread_counts {
            let target = (*kernel == OURS && threads == 2).then_some(Target::AtLeast(1.8));
            push_figure(
                &mut figures,
                format!("scaling a {threads}/1 threads faults/s, {kernel}"),
                groups.paired_ratio(kernel, ("a", threads), ("a", 1), |run| {
                    per_second(run.faults, run.elapsed_ns)
                }),
                target,
            );
            push_figure(
                &mut figures,
                format!("scaling a {threads}/1 threads, best runs, {kernel}"),
                ratio(
                    groups.best_throughput(kernel, "a", threads),
                    groups.best_throughput(kernel, "a", 1),
                ),
                None,
            );
        }
    }
    figures
}

/// Groups the usable runs over their repetitions into rows; the unusable ones are listed, with why.
fn aggregate(measurements: &[Measurement]) -> (Vec<WallRow>, Vec<IcountRow>, Vec<String>) {
    let mut excluded = Vec::new();
    let mut groups: BTreeMap<GroupKey, Vec<&Measurement>> = BTreeMap::new();
    for run in measurements {
        if let Some(reason) = unusable(run) {
            excluded.push(format!(
                "{} {:?} {} CPUs, scenario {}, {} threads, rep {}: {reason}",
                run.kernel, run.method, run.cpus, run.scenario, run.threads, run.rep
            ));
            continue;
        }
        let key = GroupKey {
            kernel: KernelName::new(&run.kernel),
            method: run.method,
            cpus: run.cpus,
            scenario: &run.scenario,
            threads: run.threads,
        };
        groups.entry(key).or_default().push(run);
    }

    let mut wall = Vec::new();
    let mut icount = Vec::new();
    for (key, runs) in &groups {
        match key.method {
            Method::Wall => wall.extend(wall_row(key, runs)),
            Method::Icount => icount.extend(icount_row(key, runs)),
        }
    }
    (wall, icount, excluded)
}

impl Report {
    pub fn new(measurements: Vec<Measurement>, context: Context) -> Report {
        let (wall, icount, excluded) = aggregate(&measurements);
        let wall_cpus = wall.iter().map(|r| r.cpus).max();
        let icount_cpus = icount.iter().map(|r| r.cpus).max();
        let targets = target_figures(&Groups {
            wall: wall.iter().filter(|r| Some(r.cpus) == wall_cpus).collect(),
            icount: icount
                .iter()
                .filter(|r| Some(r.cpus) == icount_cpus)
                .collect(),
            runs: measurements
                .iter()
                .filter(|r| {
                    r.method == Method::Wall && Some(r.cpus) == wall_cpus && unusable(r).is_none()
                })
                .collect(),
        });
        Report {
            context,
            measurements,
            excluded,
            wall,
            icount,
            wall_cpus,
            icount_cpus,
            targets,
            fork_measurements: Vec::new(),
            forks: Vec::new(),
            fork_breakdowns: Vec::new(),
            maps_measurements: Vec::new(),
            maps: Vec::new(),
            maps_unavailable: Vec::new(),
            grow_measurements: Vec::new(),
            grows: Vec::new(),
        }
    }

    /// Adds the fork measurements: their table, their breakdown, and for each Linux kernel the
    /// ratio of our instructions per round to its, with a small address space and with the most
    /// VMAs measured.
    pub fn with_forks(mut self, measurements: Vec<ForkMeasurement>) -> Report {
        self.forks = forks::rows(&measurements);
        self.fork_breakdowns = forks::breakdowns(&self.forks);
        self.fork_measurements = measurements;
        let icount = |kernel: &str, vmas: u64| {
            self.forks
                .iter()
                .find(|r| {
                    r.kernel == kernel
                        && r.method == Method::Icount
                        && r.vmas == vmas
                        && r.pages == 1
                })
                .map(|r| r.round.median)
        };
        let most_vmas = self
            .forks
            .iter()
            .filter(|r| r.pages == 1)
            .map(|r| r.vmas)
            .max();
        let linux: BTreeSet<&str> = self
            .forks
            .iter()
            .map(|r| r.kernel.as_str())
            .filter(|k| k.starts_with(LINUX_PREFIX))
            .collect();
        let mut figures = Vec::new();
        for linux in linux {
            for vmas in [Some(1), most_vmas].into_iter().flatten() {
                push_figure(
                    &mut figures,
                    format!("instr/fork+exit+wait {vmas} VMAs, ours / {linux}"),
                    ratio(icount(OURS, vmas), icount(linux, vmas)),
                    None,
                );
            }
        }
        self.targets.extend(figures);
        self
    }

    /// Adds the reads of /proc/self/maps: their table, the kernels without it (`unavailable`,
    /// "KERNEL: why"), and for each Linux kernel the ratio of our read to its: in guest time the
    /// median and the longest read of each condition, in instructions the quiet median.
    pub fn with_maps(
        mut self,
        measurements: Vec<MapsMeasurement>,
        unavailable: Vec<String>,
    ) -> Report {
        self.maps = maps::rows(&measurements);
        self.maps_measurements = measurements;
        self.maps_unavailable = unavailable;
        let find = |kernel: &str, method: Method, condition: &str| {
            self.maps
                .iter()
                .find(|r| r.kernel == kernel && r.method == method && r.condition == condition)
        };
        let linux: BTreeSet<&str> = self
            .maps
            .iter()
            .map(|r| r.kernel.as_str())
            .filter(|k| k.starts_with(LINUX_PREFIX))
            .collect();
        let mut figures = Vec::new();
        for linux in linux {
            let compare = |method, condition, value: fn(&MapsRow) -> f64| {
                ratio(
                    find(OURS, method, condition).map(value),
                    find(linux, method, condition).map(value),
                )
            };
            for condition in ["quiet", "storm"] {
                push_figure(
                    &mut figures,
                    format!("maps read median {condition}, ours / {linux}"),
                    compare(Method::Wall, condition, |r| r.median.median),
                    None,
                );
                push_figure(
                    &mut figures,
                    format!("maps read worst {condition}, ours / {linux}"),
                    compare(Method::Wall, condition, |r| r.worst as f64),
                    None,
                );
            }
            push_figure(
                &mut figures,
                format!("instr/maps read quiet, ours / {linux}"),
                compare(Method::Icount, "quiet", |r| r.median.median),
                None,
            );
        }
        self.targets.extend(figures);
        self
    }

    /// Adds the growths: their table, and in instructions the ratio of our growth by mremap to
    /// each Linux kernel's (the whole growth, and its mremap calls alone), and on each kernel
    /// the ratio of the growth by mremap to the growth by copy.
    pub fn with_grows(mut self, measurements: Vec<GrowMeasurement>) -> Report {
        self.grows = grow::rows(&measurements);
        self.grow_measurements = measurements;
        let find = |kernel: &str, way: &str| {
            self.grows
                .iter()
                .find(|r| r.kernel == kernel && r.method == Method::Icount && r.way == way)
        };
        let mut kernels: Vec<&str> = Vec::new();
        for row in self.grows.iter().filter(|r| r.method == Method::Icount) {
            if !kernels.contains(&row.kernel.as_str()) {
                kernels.push(&row.kernel);
            }
        }
        let mut figures = Vec::new();
        for linux in kernels.iter().filter(|k| k.starts_with(LINUX_PREFIX)) {
            push_figure(
                &mut figures,
                format!("instr/growth by mremap, ours / {linux}"),
                ratio(
                    find(OURS, "mremap").map(|r| r.whole.median),
                    find(linux, "mremap").map(|r| r.whole.median),
                ),
                None,
            );
            push_figure(
                &mut figures,
                format!("instr/mremap calls of a growth, ours / {linux}"),
                ratio(
                    find(OURS, "mremap").map(|r| r.moves),
                    find(linux, "mremap").map(|r| r.moves),
                ),
                None,
            );
        }
        for kernel in kernels {
            push_figure(
                &mut figures,
                format!("instr/growth, by mremap / by copy, {kernel}"),
                ratio(
                    find(kernel, "mremap").map(|r| r.whole.median),
                    find(kernel, "copy").map(|r| r.whole.median),
                ),
                None,
            );
        }
        self.targets.extend(figures);
        self
    }

    /// The terminal table: wall-clock groups, instruction-count groups, targets.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (heading, about, table) in self.sections() {
            out.push_str(&format!("{heading}: {about}\n"));
            out.push_str(&table.text());
            out.push('\n');
        }
        if !self.excluded.is_empty() {
            out.push_str("Left out of the statistics:\n");
            for line in &self.excluded {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }

    /// The Markdown report: the context, the same tables, and a link to the chart.
    pub fn markdown(&self) -> String {
        let c = &self.context;
        let mut out = format!(
            "# Page-fault benchmark\n\n\
             - Date: {}\n- Host: {}\n- QEMU: {}\n- CPU model: {}\n- Command: `{}`\n\
             - Repetitions: {}\n",
            c.date, c.host, c.qemu, c.cpu_model, c.command, c.repetitions
        );
        for (heading, about, table) in self.sections() {
            out.push_str(&format!(
                "\n## {heading}\n\n{about}.\n\n{}",
                table.markdown()
            ));
        }
        if !self.excluded.is_empty() {
            out.push_str("\n## Left out of the statistics\n\n");
            for line in &self.excluded {
                out.push_str(&format!("- {line}\n"));
            }
        }
        out.push_str(&format!(
            "\n## Chart\n\nThroughput against faulting threads: [{CHART_FILE}]({CHART_FILE})\n\n\
             ![page faults per second against faulting threads]({CHART_FILE})\n"
        ));
        out
    }

    /// Pretty JSON: the context, the raw measurements, the groups and the target figures.
    pub fn json(&self) -> String {
        // Serializing plain derived structs (string keys only) into a String cannot fail.
        serde_json::to_string_pretty(self).expect("the report serializes to JSON")
    }

    /// The chart: median throughput (with min–max bars) against threads, one line per kernel,
    /// for scenario a and, where measured, scenario b.
    pub fn svg(&self) -> Result<String, String> {
        let chart_rows: Vec<&WallRow> = self
            .wall
            .iter()
            .filter(|r| Some(r.cpus) == self.wall_cpus)
            .collect();
        let kernels: Vec<&str> = Groups {
            wall: chart_rows.clone(),
            icount: Vec::new(),
            runs: Vec::new(),
        }
        .kernels();
        let scenarios: Vec<&str> = ["a", "b"]
            .into_iter()
            .filter(|s| *s == "a" || chart_rows.iter().any(|r| r.scenario == *s))
            .collect();

        let mut svg = String::new();
        {
            let height = PANEL_HEIGHT * scenarios.len() as u32;
            let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(chart_error)?;
            let panels = root.split_evenly((scenarios.len(), 1));
            for (panel, scenario) in panels.iter().zip(scenarios) {
                let rows: Vec<&WallRow> = chart_rows
                    .iter()
                    .copied()
                    .filter(|r| r.scenario == scenario)
                    .collect();
                self.draw_panel(panel, scenario, &rows, &kernels)?;
            }
            root.present().map_err(chart_error)?;
        }
        Ok(svg)
    }

    /// One scenario's chart; `kernels` fixes each kernel's colour across panels.
    fn draw_panel(
        &self,
        area: &DrawingArea<SVGBackend, Shift>,
        scenario: &str,
        rows: &[&WallRow],
        kernels: &[&str],
    ) -> Result<(), String> {
        let max_threads = rows.iter().map(|r| r.threads).max().unwrap_or(1);
        let highest = rows.iter().map(|r| r.throughput.max).fold(0.0, f64::max);
        let y_top = if highest > 0.0 { highest * 1.1 } else { 1.0 };
        let title = match self.wall_cpus {
            Some(cpus) => format!(
                "Scenario {scenario}: page faults per second, {cpus} guest CPUs (median, min–max)"
            ),
            None => format!("Scenario {scenario}: no wall-clock measurements"),
        };

        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(110)
            .build_cartesian_2d(0u32..max_threads + 1, 0f64..y_top)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .bold_line_style(RGBColor(0xd0, 0xd0, 0xd0))
            .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .x_desc("faulting threads")
            .y_desc("page faults per second")
            .x_labels(max_threads as usize + 2)
            .y_label_formatter(&|value| grouped(*value))
            .draw()
            .map_err(chart_error)?;

        for (index, kernel) in kernels.iter().enumerate() {
            let line: Vec<&WallRow> = rows
                .iter()
                .copied()
                .filter(|r| r.kernel == *kernel)
                .collect();
            if line.is_empty() {
                continue;
            }
            let colour = CHART_COLOURS[index % CHART_COLOURS.len()];
            let medians = line.iter().map(|r| (r.threads, r.throughput.median));
            chart
                .draw_series(LineSeries::new(medians, colour.stroke_width(2)).point_size(4))
                .map_err(chart_error)?
                .label(*kernel)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(line.iter().map(|r| {
                    let t = &r.throughput;
                    ErrorBar::new_vertical(r.threads, t.min, t.median, t.max, colour, 10)
                }))
                .map_err(chart_error)?;
        }
        if !rows.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 18))
                .draw()
                .map_err(chart_error)?;
        }
        Ok(())
    }

    /// Writes `bench.json`, `bench.md` and `bench.svg` into `dir`, creating it.
    pub fn write_all(&self, dir: &Path) -> Result<Written, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let written = Written {
            json: dir.join("bench.json"),
            markdown: dir.join("bench.md"),
            svg: dir.join(CHART_FILE),
        };
        let svg = self
            .svg()
            .map_err(|e| format!("{}: {e}", written.svg.display()))?;
        for (path, text) in [
            (&written.json, self.json()),
            (&written.markdown, self.markdown()),
            (&written.svg, svg),
        ] {
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(written)
    }

    /// The tables that both the terminal and the Markdown show: heading, what it shows, table.
    fn sections(&self) -> [(&'static str, String, Table); 7] {
        let basis = |cpus: Option<u32>, what: &str| match cpus {
            Some(cpus) => format!("{what} from the {cpus}-CPU runs"),
            None => format!("no {what}"),
        };
        [
            (
                "Wall clock",
                "page faults per second, median over repetitions \
                 (spread: min and max against the median)"
                    .to_string(),
                self.wall_table(),
            ),
            (
                "Instruction count",
                "-icount shift=0: guest instructions per page fault, median over repetitions"
                    .to_string(),
                self.icount_table(),
            ),
            (
                "Fork",
                "rounds of fork, the child's exit and the parent's wait4 in a process with VMAs \
                 regions of pages each (written; 0: one page, untouched), median over \
                 repetitions: guest time (wall), guest instructions (icount); the fork call is \
                 the parent's share"
                    .to_string(),
                forks::table(&self.forks),
            ),
            (
                "Fork breakdown",
                "a round with a small address space, and what each VMA (with its page, or \
                 without) and each page in one VMA add to it, from the cases with the most of \
                 them against the 1x1 case"
                    .to_string(),
                forks::breakdown_table(&self.fork_breakdowns),
            ),
            ("Maps reads", self.maps_about(), maps::table(&self.maps)),
            (
                "Growth",
                "a buffer grown the way realloc grows a mapping of its own, doubling from the \
                 first size to the last, every step forced to move and every new page written: \
                 by mremap (the page-table entries move) or by copy (mmap, copy, munmap: what a \
                 kernel without mremap leaves); median over repetitions of the whole growth \
                 (spread: min and max), per step, the last step, and the grow calls alone \
                 (mremap, or mmap+copy+munmap): guest time (wall), guest instructions (icount)"
                    .to_string(),
                grow::table(&self.grows),
            ),
            (
                "Targets",
                format!(
                    "{}; {}",
                    basis(self.wall_cpus, "wall-clock figures"),
                    basis(self.icount_cpus, "instruction figures")
                ),
                self.targets_table(),
            ),
        ]
    }

    /// What the maps table shows, and which kernels could not read /proc/self/maps.
    fn maps_about(&self) -> String {
        let mut about = String::from(
            "complete reads of /proc/self/maps (open, read to the end, close) in a process with \
             VMAs more regions, alone (quiet) and beside a thread in c's storm (storm); per \
             repetition the median, 99th percentile and longest read, here the median of the \
             medians (spread: the medians' min and max), the median of the 99th percentiles and \
             the longest read of all: guest time (wall), guest instructions (icount, where the \
             storm's CPU counts too)",
        );
        if !self.maps_unavailable.is_empty() {
            about.push_str(&format!(
                "; /proc/self/maps unavailable on {}",
                self.maps_unavailable.join(", ")
            ));
        }
        about
    }

    fn wall_table(&self) -> Table {
        use Align::{Left, Right};
        let mut table = Table::with_group_columns(&[
            ("faults", Right),
            ("faults/s", Right),
            ("spread", Left),
            ("per thread faults/s", Right),
            ("minflt", Right),
        ]);
        for r in &self.wall {
            table.push_group_row(
                (&r.kernel, r.cpus, &r.scenario, r.threads, r.reps),
                [
                    grouped(r.faults),
                    grouped(r.throughput.median),
                    spread(&r.throughput),
                    grouped(r.per_thread_throughput),
                    grouped(r.minflt),
                ],
            );
        }
        table
    }

    fn icount_table(&self) -> Table {
        use Align::{Left, Right};
        let mut table = Table::with_group_columns(&[
            ("instr/fault", Right),
            ("spread", Left),
            ("instr/fault without clear", Right),
        ]);
        for r in &self.icount {
            table.push_group_row(
                (&r.kernel, r.cpus, &r.scenario, r.threads, r.reps),
                [
                    grouped(r.instructions_per_fault.median),
                    spread(&r.instructions_per_fault),
                    r.without_clear
                        .map_or_else(|| NONE.to_string(), |s| grouped(s.median)),
                ],
            );
        }
        table
    }

    fn targets_table(&self) -> Table {
        use Align::{Left, Right};
        let mut table = Table::new(&[
            ("figure", Left),
            ("value", Right),
            ("target", Left),
            ("result", Left),
        ]);
        for figure in &self.targets {
            let result = match figure.pass {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => NONE,
            };
            table.rows.push(vec![
                figure.name.clone(),
                format!("{:.3}", figure.value),
                figure
                    .target
                    .map_or_else(|| NONE.to_string(), |t| t.to_string()),
                result.to_string(),
            ]);
        }
        table
    }
}

/// What a cell shows where there is nothing to show.
pub(super) const NONE: &str = "—";

const CHART_WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 600;
const CHART_COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn chart_error(error: impl fmt::Display) -> String {
    format!("cannot draw the chart: {error}")
}

/// A whole number with its digits in groups of three: `1234567.4` is `1 234 567`.
pub(super) fn grouped(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    if rounded < 0.0 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// A guest cost as the method measures it: µs of guest time, or instructions.
pub(super) fn time_or_instructions(method: Method, value: f64) -> String {
    match method {
        Method::Wall => format!("{:.1} µs", value / 1000.0),
        Method::Icount => grouped(value),
    }
}

/// The method's name in the tables.
pub(super) fn method_name(method: Method) -> &'static str {
    match method {
        Method::Wall => "wall",
        Method::Icount => "icount",
    }
}

/// Min and max as percentages off the median: `-2.0% +3.1%`.
pub(super) fn spread(stats: &Stats) -> String {
    if stats.median <= 0.0 {
        return NONE.to_string();
    }
    let off = |value: f64| (value / stats.median - 1.0) * 100.0;
    format!("{:+.1}% {:+.1}%", off(stats.min), off(stats.max))
}

#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Right,
}

/// A table rendered either as aligned plain text or as Markdown.
pub(super) struct Table {
    columns: Vec<(&'static str, Align)>,
    pub(super) rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// A table whose rows are groups: kernel, cpus, scenario, threads, reps, then `columns`.
    fn with_group_columns(columns: &[(&'static str, Align)]) -> Table {
        use Align::{Left, Right};
        let group = [
            ("kernel", Left),
            ("cpus", Right),
            ("scenario", Left),
            ("threads", Right),
            ("reps", Right),
        ];
        Table::new(&[&group[..], columns].concat())
    }

    /// A row of a [`Table::with_group_columns`] table.
    fn push_group_row(
        &mut self,
        (kernel, cpus, scenario, threads, reps): (&str, u32, &str, u32, usize),
        cells: impl IntoIterator<Item = String>,
    ) {
        let mut row = vec![
            kernel.to_owned(),
            cpus.to_string(),
            scenario.to_owned(),
            threads.to_string(),
            reps.to_string(),
        ];
        row.extend(cells);
        self.rows.push(row);
    }

    pub(super) fn text(&self) -> String {
        if self.rows.is_empty() {
            return "  (none)\n".to_string();
        }
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let padded: Vec<String> = cells
                .zip(&self.columns)
                .zip(&widths)
                .map(|((cell, (_, align)), width)| match align {
                    Align::Left => format!("{cell:<width$}"),
                    Align::Right => format!("{cell:>width$}"),
                })
                .collect();
            format!("  {}\n", padded.join("  ").trim_end())
        };
        let mut out = line(&mut self.columns.iter().map(|(h, _)| *h));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(&mut rule.iter().map(String::as_str)));
        for row in &self.rows {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        out
    }

    fn markdown(&self) -> String {
        if self.rows.is_empty() {
            return "(none)\n".to_string();
        }
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let mut out = line(self.columns.iter().map(|(h, _)| h.to_string()).collect());
        out.push_str(&line(
            self.columns
                .iter()
                .map(|(_, align)| match align {
                    Align::Left => "---".to_string(),
                    Align::Right => "---:".to_string(),
                })
                .collect(),
        ));
        for row in &self.rows {
            out.push_str(&line(row.iter().map(|c| c.replace('|', "\\|")).collect()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "Linux 6.1.0-56-amd64";

    fn context() -> Context {
        Context {
            date: "2026-11-25".into(),
            host: "testhost".into(),
            qemu: "QEMU 9.2.0".into(),
            cpu_model: "Test CPU".into(),
            command: "cargo xtask bench".into(),
            repetitions: 3,
        }
    }

    /// A wall-clock run in which every thread touched the same share of `faults` in `elapsed_ns`.
    fn wall(
        kernel: &str,
        scenario: &str,
        threads: u32,
        rep: u32,
        faults: u64,
        elapsed_ns: u64,
    ) -> Measurement {
        Measurement {
            kernel: kernel.into(),
            method: Method::Wall,
            cpus: 8,
            scenario: scenario.into(),
            threads,
            rep,
            faults,
            elapsed_ns,
            minflt: faults + 10,
            per_thread: (0..threads)
                .map(|_| ThreadResult {
                    faults: faults / u64::from(threads),
                    elapsed_ns,
                })
                .collect(),
            storm_ops: 0,
            clear_instructions: None,
        }
    }

    fn icount(kernel: &str, faults: u64, instructions: u64, clear: Option<u64>) -> Measurement {
        icount_threads(kernel, 1, faults, instructions, clear)
    }

    fn icount_threads(
        kernel: &str,
        threads: u32,
        faults: u64,
        instructions: u64,
        clear: Option<u64>,
    ) -> Measurement {
        Measurement {
            method: Method::Icount,
            clear_instructions: clear,
            ..wall(kernel, "a", threads, 0, faults, instructions)
        }
    }

    fn figure<'a>(report: &'a Report, name: &str) -> Option<&'a Figure> {
        report.targets.iter().find(|f| f.name == name)
    }

    /// Ours at 2.5 times Linux's single-thread throughput, three kernels in a and b.
    fn sample() -> Report {
        let mut runs = Vec::new();
        for rep in 0..3 {
            // 1 ms per run; faults set the throughput (x 1000 per second).
            let jitter = u64::from(rep) * 10;
            runs.push(wall(OURS, "a", 1, rep, 2500 + jitter, 1_000_000));
            runs.push(wall(OURS, "a", 2, rep, 4800 + jitter, 1_000_000));
            runs.push(wall(
                OURS_VMA_LOCK_OFF,
                "a",
                1,
                rep,
                2400 + jitter,
                1_000_000,
            ));
            runs.push(wall(
                OURS_VMA_LOCK_OFF,
                "a",
                2,
                rep,
                3000 + jitter,
                1_000_000,
            ));
            runs.push(wall(LINUX, "a", 1, rep, 1000 + jitter, 1_000_000));
            runs.push(wall(LINUX, "a", 2, rep, 1900 + jitter, 1_000_000));
            runs.push(wall(OURS, "b", 1, rep, 2000, 1_000_000));
            runs.push(wall(OURS, "c", 1, rep, 1980, 1_000_000));
            runs.push(wall(LINUX, "b", 1, rep, 1000, 1_000_000));
            runs.push(wall(LINUX, "c", 1, rep, 500, 1_000_000));
        }
        runs.push(icount(OURS, 100, 300_000, Some(1000)));
        runs.push(icount_threads(OURS, 2, 200, 606_000, Some(1000)));
        runs.push(icount(LINUX, 100, 500_000, Some(1500)));
        Report::new(runs, context())
    }

    #[test]
    fn median_min_max() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[8.0, 2.0, 4.0, 1.0]), Some(3.0));
        assert_eq!(Stats::of(&[]), None);
        let stats = Stats::of(&[3.0, 7.0, 1.0, 5.0]);
        assert_eq!(
            stats,
            Some(Stats {
                median: 4.0,
                min: 1.0,
                max: 7.0
            })
        );
        let single = Stats::of(&[2.5]);
        assert_eq!(
            single,
            Some(Stats {
                median: 2.5,
                min: 2.5,
                max: 2.5
            })
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1 000");
        assert_eq!(grouped(1_234_567.6), "1 234 568");
        assert_eq!(grouped(-12_345.0), "-12 345");
        let stats = Stats {
            median: 100.0,
            min: 98.0,
            max: 103.1,
        };
        assert_eq!(spread(&stats), "-2.0% +3.1%");
    }

    #[test]
    fn groups_over_repetitions() {
        let mut runs = vec![
            wall(OURS, "a", 1, 0, 1000, 1_000_000),
            wall(OURS, "a", 1, 1, 3000, 1_000_000),
            wall(OURS, "a", 1, 2, 2000, 1_000_000),
            wall(OURS, "a", 2, 0, 4000, 2_000_000),
            wall(LINUX, "a", 1, 0, 500, 1_000_000),
        ];
        // Thread 1 of the last run took twice as long: its rate is half of thread 0's.
        runs[3].per_thread[1].elapsed_ns = 4_000_000;
        let report = Report::new(runs, context());
        assert_eq!(report.wall.len(), 3);
        assert!(report.icount.is_empty());

        let first = &report.wall[0];
        assert_eq!(
            (first.kernel.as_str(), first.threads, first.reps),
            (OURS, 1, 3)
        );
        assert_eq!(
            first.throughput,
            Stats {
                median: 2e6,
                min: 1e6,
                max: 3e6
            }
        );
        assert_eq!(first.per_thread_throughput, 2e6);
        assert_eq!(first.faults, 2000.0);
        assert_eq!(first.minflt, 2010.0);

        let two = &report.wall[1];
        assert_eq!((two.threads, two.reps), (2, 1));
        assert_eq!(two.throughput.median, 2e6);
        // Each thread touched 2000 pages: in 2 ms (1e6/s) and in 4 ms (0.5e6/s).
        assert_eq!(two.per_thread_throughput, 0.75e6);

        assert_eq!(report.wall[2].kernel, LINUX);
        assert_eq!(report.wall_cpus, Some(8));
    }

    #[test]
    fn instructions_per_fault() {
        let runs = vec![
            icount(OURS, 100, 300_000, Some(1000)),
            Measurement {
                rep: 1,
                ..icount(OURS, 100, 320_000, Some(1000))
            },
            icount(LINUX, 100, 500_000, None),
        ];
        let report = Report::new(runs, context());
        let ours = &report.icount[0];
        assert_eq!(ours.reps, 2);
        assert_eq!(ours.instructions_per_fault.median, 3100.0);
        assert_eq!(ours.without_clear.map(|s| s.median), Some(2100.0));
        assert_eq!(report.icount[1].without_clear, None);
    }

    #[test]
    fn unusable_runs_are_left_out() {
        let runs = vec![
            wall(OURS, "a", 1, 0, 1000, 1_000_000),
            wall(OURS, "a", 1, 1, 1000, 0),
            wall(OURS, "a", 1, 2, 0, 1_000_000),
        ];
        let report = Report::new(runs, context());
        assert_eq!(report.wall[0].reps, 1);
        assert_eq!(report.excluded.len(), 2);
        assert!(report.excluded[0].contains("rep 1: elapsed_ns is 0"));
        assert!(report.table().contains("rep 2: no faults"));
    }

    #[test]
    fn ratios_pair_the_runs_of_one_repetition() {
        // b at 1 thread: 100, 300, 200 faults in 1 ms; c: 95, 285, 100. Pairing rep by rep
        // gives 0.95, 0.95, 0.5: median 0.95. The medians alone (100 / 200) would say 0.5.
        let runs = [(100, 95), (300, 285), (200, 100)]
            .into_iter()
            .enumerate()
            .flat_map(|(rep, (b, c))| {
                [
                    wall(OURS, "b", 1, rep as u32, b, 1_000_000),
                    wall(OURS, "c", 1, rep as u32, c, 1_000_000),
                ]
            })
            .collect();
        let report = Report::new(runs, context());
        let storm = figure(&report, "storm retention c/b per-thread faults/s, ours");
        let storm = storm.expect("the storm figure");
        assert!((storm.value - 0.95).abs() < 1e-9, "{}", storm.value);
        assert_eq!(storm.pass, Some(true));
    }

    #[test]
    fn storm_cost_is_the_extra_time_a_fault_takes() {
        // Two kernels that lose the same 0.25 µs a fault to the storm: the fast one (1 µs a
        // fault without it) keeps 0.8 of its rate, the slow one (4 µs) 0.941. Rep 1 of the fast
        // one is a slow spell on both sides (2 µs, 2.25 µs) and pairs to the same cost.
        let runs = vec![
            wall(OURS, "b", 1, 0, 1000, 1_000_000),
            wall(OURS, "c", 1, 0, 800, 1_000_000),
            wall(OURS, "b", 1, 1, 500, 1_000_000),
            wall(OURS, "c", 1, 1, 444, 999_000),
            wall(OURS, "b", 1, 2, 1000, 1_000_000),
            wall(OURS, "c", 1, 2, 800, 1_000_000),
            wall(LINUX, "b", 1, 0, 250, 1_000_000),
            wall(LINUX, "c", 1, 0, 235, 998_750),
        ];
        let report = Report::new(runs, context());
        let cost = |kernel| {
            figure(
                &report,
                &format!("storm cost c - b, µs per fault, {kernel}"),
            )
            .map(|f| (f.value, f.pass))
        };
        let (ours, pass) = cost(OURS).expect("our storm cost");
        assert!((ours - 0.25).abs() < 1e-9, "{ours}");
        assert_eq!(pass, None);
        let (linux, _) = cost(LINUX).expect("Linux's storm cost");
        assert!((linux - 0.25).abs() < 1e-9, "{linux}");
        let retention = figure(
            &report,
            &format!("storm retention c/b per-thread faults/s, {LINUX}"),
        );
        assert!((retention.expect("Linux's retention").value - 4.0 / 4.25).abs() < 1e-9);
    }

    #[test]
    fn target_figures_pass_and_fail() {
        let report = sample();
        let single = figure(&report, &format!("single-thread faults/s, ours / {LINUX}"));
        let single = single.expect("the single-thread figure");
        assert!((single.value - 2510.0 / 1010.0).abs() < 1e-9);
        assert_eq!(single.pass, Some(true));

        let without = figure(
            &report,
            &format!("instr/fault without clear, ours / {LINUX}"),
        );
        let without = without.expect("the instructions figure");
        assert!((without.value - 2000.0 / 3500.0).abs() < 1e-9);
        assert_eq!(without.pass, Some(false));
        let with = figure(&report, &format!("instr/fault with clear, ours / {LINUX}"));
        assert_eq!(with.map(|f| (f.value, f.pass)), Some((0.6, None)));
        let second_thread = figure(&report, "instr/fault a 2/1 threads, ours");
        assert_eq!(second_thread.map(|f| (f.value, f.pass)), Some((1.01, None)));
        // Linux ran no 2-thread icount measurement.
        assert!(figure(&report, &format!("instr/fault a 2/1 threads, {LINUX}")).is_none());

        let storm = figure(&report, "storm retention c/b per-thread faults/s, ours");
        assert_eq!(storm.map(|f| (f.value, f.pass)), Some((0.99, Some(true))));
        let storm = figure(
            &report,
            &format!("storm retention c/b per-thread faults/s, {LINUX}"),
        );
        assert_eq!(storm.map(|f| (f.value, f.pass)), Some((0.5, None)));
        // No kernel ran d, and ours without the VMA lock ran no c.
        assert!(!report.targets.iter().any(|f| f.name.contains("d-touched")));
        let off = format!("storm retention c/b per-thread faults/s, {OURS_VMA_LOCK_OFF}");
        assert!(figure(&report, &off).is_none());

        let scaling = figure(&report, "scaling a 2/1 threads faults/s, ours");
        let scaling = scaling.expect("the scaling figure");
        assert!((scaling.value - 4810.0 / 2510.0).abs() < 1e-9);
        assert_eq!(scaling.pass, Some(true));
        let off = figure(
            &report,
            &format!("scaling a 2/1 threads faults/s, {OURS_VMA_LOCK_OFF}"),
        );
        assert_eq!(off.map(|f| f.pass), Some(None));
    }

    #[test]
    fn target_figures_without_linux_are_absent() {
        let runs = (0..3)
            .flat_map(|rep| {
                [
                    wall(OURS, "a", 1, rep, 2000, 1_000_000),
                    wall(OURS, "a", 2, rep, 3000, 1_000_000),
                ]
            })
            .collect();
        let report = Report::new(runs, context());
        assert!(!report.targets.iter().any(|f| f.name.contains("ours /")));
        let scaling = figure(&report, "scaling a 2/1 threads faults/s, ours");
        assert_eq!(scaling.map(|f| (f.value, f.pass)), Some((1.5, Some(false))));
        let best = figure(&report, "scaling a 2/1 threads, best runs, ours");
        assert_eq!(best.map(|f| (f.value, f.pass)), Some((1.5, None)));
        assert_eq!(report.targets.len(), 2);
    }

    #[test]
    fn json_round_trips() {
        let report = sample();
        let json: serde_json::Value =
            serde_json::from_str(&report.json()).expect("the report's JSON parses");
        assert_eq!(json["context"]["host"], "testhost");
        let measurements = json["measurements"]
            .as_array()
            .expect("a measurements array");
        assert_eq!(measurements.len(), report.measurements.len());
        assert_eq!(measurements[0]["kernel"], OURS);
        assert_eq!(measurements[0]["method"], "Wall");
        assert_eq!(measurements[0]["faults"], 2500);
        assert_eq!(measurements[0]["per_thread"][0]["elapsed_ns"], 1_000_000);
        assert_eq!(json["wall"][0]["throughput"]["median"], 2.51e6);
        assert_eq!(json["targets"][0]["target"]["at_least"], 2.0);
        assert_eq!(json["targets"][0]["pass"], true);
    }

    #[test]
    fn table_and_markdown_show_the_targets() {
        let report = sample();
        let table = report.table();
        assert!(table.contains("2 510 000"), "{table}");
        assert!(table.contains("Targets: wall-clock figures from the 8-CPU runs"));
        let markdown = report.markdown();
        assert!(markdown.contains("- Host: testhost\n"));
        assert!(markdown.contains("- Command: `cargo xtask bench`\n"));
        assert!(markdown.contains("\n## Targets\n\n"));
        assert!(
            markdown.contains("| figure | value | target | result |\n| --- | ---: | --- | --- |\n")
        );
        let row = format!("| single-thread faults/s, ours / {LINUX} | 2.485 | ≥ 2.00 | PASS |\n");
        assert!(markdown.contains(&row), "{markdown}");
        assert!(markdown.contains(&format!(
            "| instr/fault without clear, ours / {LINUX} | 0.571 | ≤ 0.50 | FAIL |\n"
        )));
        assert!(
            markdown.contains(
                "| instr/fault with clear, ours / Linux 6.1.0-56-amd64 | 0.600 | — | — |\n"
            )
        );
        assert!(markdown.contains("(bench.svg)"));
    }

    #[test]
    fn fork_rounds_are_reported_and_compared_with_linux() {
        let fork = |kernel: &str, vmas: u64, per_round: u64| ForkMeasurement {
            kernel: kernel.into(),
            method: Method::Icount,
            cpus: 2,
            vmas,
            pages: 1,
            rep: 0,
            forks: 4,
            elapsed_ns: per_round * 4,
            fork_ns: per_round * 2,
        };
        let report = sample().with_forks(vec![
            fork(OURS, 1, 50_000),
            fork(OURS, 10_000, 2_050_000),
            fork(LINUX, 1, 100_000),
            fork(LINUX, 10_000, 8_100_000),
        ]);
        let ratio = |name: &str| figure(&report, name).map(|f| f.value);
        assert_eq!(
            ratio(&format!("instr/fork+exit+wait 1 VMAs, ours / {LINUX}")),
            Some(0.5)
        );
        let most = format!("instr/fork+exit+wait 10000 VMAs, ours / {LINUX}");
        assert!((ratio(&most).unwrap() - 2_050_000.0 / 8_100_000.0).abs() < 1e-9);
        let markdown = report.markdown();
        assert!(markdown.contains("\n## Fork breakdown\n"), "{markdown}");
        assert!(
            markdown.contains("| ours | icount | 2 | 50 000 | 200 |"),
            "{markdown}"
        );
        assert!(report.json().contains("\"fork_breakdowns\""));
    }

    #[test]
    fn maps_reads_are_reported_and_compared_with_linux() {
        let read = |kernel: &str, method, condition: &str, median_ns, worst_ns| MapsMeasurement {
            kernel: kernel.into(),
            method,
            cpus: 2,
            condition: condition.into(),
            vmas: 64,
            rep: 0,
            reads: 200,
            median_ns,
            p99_ns: worst_ns,
            worst_ns,
            lines: 72,
            storm_ops: 0,
        };
        let report = sample().with_maps(
            vec![
                read(OURS, Method::Wall, "quiet", 40_000, 80_000),
                read(OURS, Method::Wall, "storm", 50_000, 100_000),
                read(LINUX, Method::Wall, "quiet", 160_000, 400_000),
                read(LINUX, Method::Wall, "storm", 200_000, 20_000_000),
                read(OURS, Method::Icount, "quiet", 30_000, 31_000),
                read(LINUX, Method::Icount, "quiet", 120_000, 125_000),
            ],
            vec!["ours vma_lock=off: ENOENT(2)".into()],
        );
        let ratio = |name: &str| figure(&report, name).map(|f| f.value);
        assert_eq!(
            ratio(&format!("maps read median quiet, ours / {LINUX}")),
            Some(0.25)
        );
        assert_eq!(
            ratio(&format!("maps read median storm, ours / {LINUX}")),
            Some(0.25)
        );
        assert_eq!(
            ratio(&format!("maps read worst storm, ours / {LINUX}")),
            Some(0.005)
        );
        assert_eq!(
            ratio(&format!("instr/maps read quiet, ours / {LINUX}")),
            Some(0.25)
        );
        let markdown = report.markdown();
        assert!(markdown.contains("\n## Maps reads\n"), "{markdown}");
        assert!(
            markdown.contains("| ours | wall | 2 | storm | 64 | 1 | 72 | 50.0 µs |"),
            "{markdown}"
        );
        assert!(markdown.contains("unavailable on ours vma_lock=off: ENOENT(2)"));
        let json = report.json();
        assert!(json.contains("\"maps_measurements\"") && json.contains("\"worst\": 20000000"));
    }

    #[test]
    fn growths_are_reported_and_compared_with_linux_and_with_copying() {
        let growth = |kernel: &str, way: &str, elapsed_ns: u64, move_ns| GrowMeasurement {
            kernel: kernel.into(),
            method: Method::Icount,
            cpus: 2,
            way: way.into(),
            rep: 0,
            from_kib: 1024,
            to_kib: 65536,
            steps: 6,
            elapsed_ns,
            move_ns,
            step_ns: vec![elapsed_ns / 6; 6],
        };
        let report = sample().with_grows(vec![
            growth(OURS, "mremap", 30_000_000, 60_000),
            growth(OURS, "copy", 120_000_000, 90_000_000),
            growth(LINUX, "mremap", 60_000_000, 240_000),
        ]);
        let ratio = |name: &str| figure(&report, name).map(|f| f.value);
        assert_eq!(
            ratio(&format!("instr/growth by mremap, ours / {LINUX}")),
            Some(0.5)
        );
        assert_eq!(
            ratio(&format!("instr/mremap calls of a growth, ours / {LINUX}")),
            Some(0.25)
        );
        assert_eq!(ratio("instr/growth, by mremap / by copy, ours"), Some(0.25));
        // Linux grew only by mremap here: no ratio to copying for it.
        assert_eq!(
            ratio(&format!("instr/growth, by mremap / by copy, {LINUX}")),
            None
        );
        let markdown = report.markdown();
        assert!(markdown.contains("\n## Growth\n"), "{markdown}");
        assert!(
            markdown.contains("| ours | icount | 2 | mremap | 1→64 MiB | 6 | 1 |"),
            "{markdown}"
        );
        assert!(report.json().contains("\"grow_measurements\""));
        assert!(report.table().contains("Growth: "));
    }

    #[test]
    fn chart_has_labels_and_legend() {
        let svg = sample().svg().expect("the chart draws");
        for text in [
            "faulting threads",
            "page faults per second",
            "Scenario a: page faults per second, 8 guest CPUs",
            "Scenario b:",
            // Legend entries, each a <text> element of its own.
            ">\nours\n</text>",
            ">\nours vma_lock=off\n</text>",
            ">\nLinux 6.1.0-56-amd64\n</text>",
        ] {
            assert!(svg.contains(text), "the chart lacks {text:?}");
        }
        // Without wall-clock runs the chart still draws, empty.
        let empty = Report::new(Vec::new(), context())
            .svg()
            .expect("an empty chart");
        assert!(empty.contains("no wall-clock measurements"));
    }

    #[test]
    fn writes_the_three_files() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-report-{}", std::process::id()));
        let written = sample().write_all(&dir).expect("the report writes");
        let markdown = std::fs::read_to_string(&written.markdown).expect("bench.md");
        assert!(markdown.starts_with("# Page-fault benchmark"));
        let svg = std::fs::read_to_string(&written.svg).expect("bench.svg");
        assert!(svg.starts_with("<svg"));
        let json = std::fs::read_to_string(&written.json).expect("bench.json");
        assert!(json.contains("\"measurements\""));
        std::fs::remove_dir_all(&dir).expect("the scratch directory goes");
    }
}
