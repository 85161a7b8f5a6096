//! `cargo xtask bench`: boots the kernel (and, with `--linux`, Linux kernels) under QEMU with
//! /bin/bench (user/bench) as init, collects its `bench:` lines, and hands them to
//! [`report`] for the table, JSON, Markdown and chart under target/bench/.
//!
//! The boots, in order: our kernel on multi-threaded TCG with the per-VMA lock on, the same
//! with `vma_lock=off`, then each Linux kernel; then the instruction counts, one 2-CPU boot per
//! kernel under `-accel tcg,thread=single -icount shift=0`, where the guest clock counts
//! instructions (of every CPU, so the program first waits until the guest is quiet: its
//! `settle=1`). Every boot also times fork ([`forks`]), reads of /proc/self/maps ([`maps`]) and
//! realloc-style growth by mremap and by copy ([`grow`]) after the scenarios. Every boot uses the same QEMU, `-cpu`, memory and machine, with guest RAM
//! preallocated (`-mem-prealloc`) so that the host's first touch of guest memory is not timed.

mod export;
mod forks;
mod grow;
mod maps;
pub mod report;

pub use export::{export, import};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qemu::{Accel, Echo, Firmware, Outcome, Profile, Qemu, RunOptions};
use serde::{Deserialize, Serialize};

use crate::{artifacts, install, ramdisk, testrun, user};
use forks::ForkMeasurement;
use grow::GrowMeasurement;
use maps::MapsMeasurement;
use report::{Context, Measurement, Method, Report, ThreadResult};

/// What `cargo xtask bench` was asked for.
pub struct Options {
    /// Guest CPUs of the throughput boots.
    pub smp: u32,
    /// Repetitions of every measurement.
    pub reps: u32,
    /// QEMU `-cpu` for every boot (ours and Linux alike).
    pub cpu: String,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Pages per region and rounds per thread (scenario a maps `pages`, `rounds` times; the
    /// others touch `pages * rounds` pages of the shared region per thread).
    pub pages: u32,
    pub rounds: u32,
    /// Linux kernels (bzImages) to run beside ours.
    pub linux: Vec<PathBuf>,
    /// Skip the icount boots.
    pub no_icount: bool,
    /// Extra options for our kernel (e.g. `page_clear=stosb`).
    pub cmdline: String,
    /// The command line as typed, for the report.
    pub command: String,
}

const SCENARIOS: &str = "a,a-procs,a-file,b,c,d-touched,d-untouched,spin,spin-pause";
/// The icount boots measure the scenarios without a storm, on one thread and on two: under
/// `thread=single` QEMU runs the CPUs in turn and the guest clock counts the instructions of
/// both, so two threads' instructions per fault against one thread's is what a second faulting
/// thread costs the kernel (lock spinning, shootdowns), free of the host's caches and load.
const ICOUNT_SCENARIOS: &str = "a,a-procs,b";
const ICOUNT_THREADS: &str = "1,2";
const ICOUNT_CPUS: u32 = 2;
/// Icount work per measurement: enough to average out the munmap of scenario a.
const ICOUNT_PAGES: u32 = 512;
const ICOUNT_ROUNDS: u32 = 8;
/// Fork, exit and wait (after the scenarios, in every boot): a process with one more region
/// of a page, with 100 and 10 000 of them (each a VMA), with 10 000 VMAs left untouched, and
/// with one region of 10 000 written pages (see user/bench and [`forks`]).
const FORK_CASES: &str = "1x1,100x1,10000x1,10000x0,1x10000";
const FORK_ITERATIONS: u32 = 16;
/// Reads of /proc/self/maps (after the fork cases, in every boot): per repetition, 200 timed
/// reads quiet and 200 beside a storm, in a process with 64 more regions (each a VMA; see
/// user/bench and [`maps`]). About 0.2 ms a read under TCG: a second or two a boot.
const MAPS_READS: u32 = 200;
const MAPS_VMAS: u32 = 64;
/// `bench: maps` lines per repetition: quiet and storm.
const MAPS_CONDITIONS: usize = 2;
/// `bench: grow` lines per repetition (after the maps reads, in every boot): a buffer grown
/// from 1 MiB to 64 MiB by mremap and by copy (see user/bench and [`grow`]).
const GROW_WAYS: usize = 2;
/// A whole boot: generous, TCG on a busy host is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(1800);
const SILENCE_TIMEOUT: Duration = Duration::from_secs(300);

/// One kernel configuration the matrix runs on.
#[derive(Clone, Serialize, Deserialize)]
enum Kernel {
    Ours { vma_lock: bool },
    Linux { bzimage: PathBuf },
}

/// One boot: a kernel, how time is measured, CPUs, and the bench program's arguments.
#[derive(Serialize, Deserialize)]
struct Boot {
    kernel: Kernel,
    method: Method,
    cpus: u32,
    args: Vec<String>,
    /// `bench: scenario=` lines this boot will print (for the progress line).
    expected: usize,
    /// `bench: fork` lines this boot will print.
    #[serde(default)]
    expected_forks: usize,
    /// `bench: maps` lines this boot will print where the kernel has /proc/self/maps.
    #[serde(default)]
    expected_maps: usize,
    /// `bench: grow` lines this boot will print.
    #[serde(default)]
    expected_grows: usize,
}

/// The thread counts of the matrix: 1, 2, 4, ... up to `smp`, and `smp` itself.
fn thread_counts(smp: u32) -> Vec<u32> {
    let mut counts: Vec<u32> = std::iter::successors(Some(1u32), |n| n.checked_mul(2))
        .take_while(|&n| n <= smp)
        .collect();
    if counts.last() != Some(&smp) {
        counts.push(smp);
    }
    counts
}

fn plan(options: &Options) -> Vec<Boot> {
    let threads = thread_counts(options.smp);
    let threads_arg = threads
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let wall_args = vec![
        format!("scenarios={SCENARIOS}"),
        format!("threads={threads_arg}"),
        format!("pages={}", options.pages),
        format!("rounds={}", options.rounds),
        format!("reps={}", options.reps),
        "warmup=1".into(),
        format!("forks={FORK_CASES}"),
        format!("fork_iterations={FORK_ITERATIONS}"),
        format!("maps={MAPS_READS}"),
        format!("maps_vmas={MAPS_VMAS}"),
        "grow=1".into(),
    ];
    let wall_expected = SCENARIOS.split(',').count() * threads.len() * options.reps as usize;
    let forks_expected = |reps: u32| FORK_CASES.split(',').count() * reps as usize;
    let maps_expected = |reps: u32| MAPS_CONDITIONS * reps as usize;
    let grows_expected = |reps: u32| GROW_WAYS * reps as usize;
    let icount_args = vec![
        format!("scenarios={ICOUNT_SCENARIOS}"),
        format!("threads={ICOUNT_THREADS}"),
        format!("pages={ICOUNT_PAGES}"),
        format!("rounds={ICOUNT_ROUNDS}"),
        format!("reps={}", options.reps.min(3)),
        "settle=1".into(),
        "calibrate=1".into(),
        format!("forks={FORK_CASES}"),
        format!("fork_iterations={FORK_ITERATIONS}"),
        format!("maps={MAPS_READS}"),
        format!("maps_vmas={MAPS_VMAS}"),
        "grow=1".into(),
    ];
    let icount_expected = ICOUNT_SCENARIOS.split(',').count()
        * ICOUNT_THREADS.split(',').count()
        * options.reps.min(3) as usize;
    let mut kernels = vec![
        Kernel::Ours { vma_lock: true },
        Kernel::Ours { vma_lock: false },
    ];
    kernels.extend(options.linux.iter().map(|bzimage| Kernel::Linux {
        bzimage: bzimage.clone(),
    }));
    let mut boots: Vec<Boot> = kernels
        .iter()
        .map(|kernel| Boot {
            kernel: kernel.clone(),
            method: Method::Wall,
            cpus: options.smp,
            args: wall_args.clone(),
            expected: wall_expected,
            expected_forks: forks_expected(options.reps),
            expected_maps: maps_expected(options.reps),
            expected_grows: grows_expected(options.reps),
        })
        .collect();
    if !options.no_icount {
        boots.extend(
            kernels
                .iter()
                .filter(|k| !matches!(k, Kernel::Ours { vma_lock: false }))
                .map(|kernel| Boot {
                    kernel: kernel.clone(),
                    method: Method::Icount,
                    cpus: ICOUNT_CPUS,
                    args: icount_args.clone(),
                    expected: icount_expected,
                    expected_forks: forks_expected(options.reps.min(3)),
                    expected_maps: maps_expected(options.reps.min(3)),
                    expected_grows: grows_expected(options.reps.min(3)),
                }),
        );
    }
    boots
}

/// Runs the benchmark and writes the reports; the exit status says whether every boot
/// delivered its measurements.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    check_linux_images(&options.linux)?;
    let qemu = install::ensure_qemu(false)?;
    let kernel_elf = artifacts::build_kernel(true, artifacts::Tests::Without)?;
    let programs = user::build_all()?;
    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let boots = plan(options);
    let mut results = Results::default();
    for (index, boot) in boots.iter().enumerate() {
        let label = boot_label(index, boots.len(), boot);
        let got = run_boot(&qemu, boot, &kernel_elf, &programs, options, &dir, &label);
        results.add(&label, boot, got);
    }
    eprintln!();
    let context = Context {
        date: today(),
        host: host_description(),
        qemu: format!("QEMU {}", qemu.version()),
        cpu_model: options.cpu.clone(),
        command: options.command.clone(),
        repetitions: options.reps,
    };
    results.report(context, &dir)
}

/// The measurements of every boot so far, and what went wrong.
#[derive(Default)]
struct Results {
    measurements: Vec<Measurement>,
    forks: Vec<ForkMeasurement>,
    maps: Vec<MapsMeasurement>,
    /// The kernels without /proc/self/maps, with why ("ours: ENOENT(2)"), each once.
    maps_unavailable: Vec<String>,
    grows: Vec<GrowMeasurement>,
    failures: Vec<String>,
}

/// What one boot measured: the scenarios' runs, the fork cases', the maps reads' (or why its
/// kernel could not read /proc/self/maps) and the growths'.
struct BootResults {
    measurements: Vec<Measurement>,
    forks: Vec<ForkMeasurement>,
    maps: Vec<MapsMeasurement>,
    /// "KERNEL: ERRNO" where the program found /proc/self/maps unavailable.
    maps_unavailable: Option<String>,
    grows: Vec<GrowMeasurement>,
}

impl Results {
    /// Takes in one boot's measurements, noting a failure if it has fewer than it should. A
    /// kernel without /proc/self/maps is noted, not failed: it measures the rest.
    fn add(&mut self, label: &str, boot: &Boot, got: Result<BootResults, String>) {
        let mut got = match got {
            Ok(got) => got,
            Err(e) => return self.failures.push(format!("{label}: {e}")),
        };
        let expected_maps = if got.maps_unavailable.is_some() {
            0
        } else {
            boot.expected_maps
        };
        for (what, count, expected) in [
            ("", got.measurements.len(), boot.expected),
            (" fork", got.forks.len(), boot.expected_forks),
            (" maps", got.maps.len(), expected_maps),
            (" grow", got.grows.len(), boot.expected_grows),
        ] {
            if count < expected {
                self.failures
                    .push(format!("{label}: {count} of {expected}{what} measurements"));
            }
        }
        if let Some(why) = got.maps_unavailable
            && !self.maps_unavailable.contains(&why)
        {
            self.maps_unavailable.push(why);
        }
        self.measurements.append(&mut got.measurements);
        self.forks.append(&mut got.forks);
        self.maps.append(&mut got.maps);
        self.grows.append(&mut got.grows);
    }

    /// Prints the table and writes the reports into `dir`; the exit status is a failure if any
    /// boot fell short.
    fn report(self, context: Context, dir: &Path) -> Result<ExitCode, String> {
        let report = Report::new(self.measurements, context)
            .with_forks(self.forks)
            .with_maps(self.maps, self.maps_unavailable)
            .with_grows(self.grows);
        println!("{}", report.table());
        let written = report.write_all(dir)?;
        println!(
            "reports: {}, {}, {}",
            written.json.display(),
            written.markdown.display(),
            written.svg.display()
        );
        if self.failures.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            for failure in &self.failures {
                eprintln!("xtask: bench: {failure}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// "[2/6] ours vma_lock=off throughput 2 CPUs": a boot on the progress line and in errors.
fn boot_label(index: usize, total: usize, boot: &Boot) -> String {
    format!(
        "[{}/{total}] {} {} {} CPU{}",
        index + 1,
        kernel_label(&boot.kernel),
        match boot.method {
            Method::Wall => "throughput",
            Method::Icount => "icount",
        },
        boot.cpus,
        if boot.cpus == 1 { "" } else { "s" }
    )
}

/// The kernel's name on the progress line and, for ours, in the report (Linux's name in the
/// report comes from the guest's uname, see `parse`).
fn kernel_label(kernel: &Kernel) -> String {
    match kernel {
        Kernel::Ours { vma_lock: true } => "ours".into(),
        Kernel::Ours { vma_lock: false } => "ours vma_lock=off".into(),
        Kernel::Linux { bzimage } => testrun::linux_label(bzimage),
    }
}

/// The name of `boot`'s files: its image, serial log and, for an export, its line in run.sh.
fn boot_name(boot: &Boot) -> String {
    match (&boot.kernel, boot.method) {
        (Kernel::Ours { vma_lock: true }, Method::Wall) => "ours".to_owned(),
        (Kernel::Ours { vma_lock: false }, _) => "ours-vma-lock-off".to_owned(),
        (Kernel::Ours { .. }, Method::Icount) => "ours-icount".to_owned(),
        (Kernel::Linux { bzimage }, method) => format!(
            "linux-{}{}",
            linux_image_name(bzimage),
            if method == Method::Icount {
                "-icount"
            } else {
                ""
            }
        ),
    }
}

/// A Linux image's name in boot names, logs and exports: its file name, with the folder's name
/// added when the file name says no version (Debian's packages since 7.x install
/// `/usr/lib/modules/RELEASE/vmlinuz`, so that two kernels would both be `vmlinuz`).
fn linux_image_name(bzimage: &Path) -> String {
    let file = bzimage
        .file_name()
        .map_or("kernel".into(), |n| n.to_string_lossy().into_owned());
    if file.chars().any(|c| c.is_ascii_digit()) {
        return file;
    }
    match bzimage.parent().and_then(Path::file_name) {
        Some(folder) => format!("{file}-{}", folder.to_string_lossy()),
        None => file,
    }
}

/// Checks the `--linux` images: each a bzImage, no two with the same name (their logs and
/// exported copies would overwrite each other).
fn check_linux_images(images: &[PathBuf]) -> Result<(), String> {
    let mut names = BTreeMap::new();
    for bzimage in images {
        let name = linux_image_name(bzimage);
        if let Some(other) = names.insert(name.clone(), bzimage) {
            return Err(format!(
                "--linux {} and --linux {} would share the name {name}: rename one",
                other.display(),
                bzimage.display(),
            ));
        }
    }
    images
        .iter()
        .try_for_each(|bzimage| testrun::check_bzimage(bzimage))
}

/// Builds what `boot` needs: our kernel's disk image (with /bin/bench as init and its
/// arguments in /etc/init.args), or a Linux initramfs in `dir` and the `-kernel`, `-initrd`,
/// `-append` options. Returns the QEMU profile and the disk image to boot.
fn prepare_boot(
    boot: &Boot,
    kernel_elf: &Path,
    programs: &[user::Program],
    options: &Options,
    dir: &Path,
) -> Result<(Profile, PathBuf), String> {
    let name = boot_name(boot);
    let mut profile = Profile::new(format!("bench-{name}"), Firmware::Bios, boot.cpus);
    profile.memory_mib = options.memory_mib;
    profile.cpu_model = Some(match boot.method {
        Method::Wall => options.cpu.clone(),
        // Under icount QEMU stops with "Bad icount read" when the guest reads an x2APIC
        // timer register (an MSR, not an I/O access): both kernels get the memory-mapped APIC.
        Method::Icount => format!("{},x2apic=off", options.cpu),
    });
    profile.accel = match boot.method {
        Method::Wall => Accel::Tcg,
        Method::Icount => Accel::TcgSingleThread,
    };
    profile.extra_args = vec!["-mem-prealloc".into()];
    if boot.method == Method::Icount {
        profile
            .extra_args
            .extend(["-icount".into(), "shift=0".into()]);
    }
    let image = match &boot.kernel {
        Kernel::Ours { vma_lock } => {
            let contents = ramdisk::Contents {
                programs: programs.to_vec(),
                files: vec![ramdisk::init_args(&boot.args)],
                debian_root: None,
            };
            let cmdline = format!(
                "init=/bin/bench exit{}{}{}",
                if *vma_lock { "" } else { " vma_lock=off" },
                if options.cmdline.is_empty() { "" } else { " " },
                options.cmdline
            );
            artifacts::make_images(kernel_elf, &cmdline, &format!("bench-{name}"), &contents)?.bios
        }
        Kernel::Linux { bzimage } => {
            let cpio = dir.join(format!("{name}.cpio"));
            testrun::linux_initramfs(programs, "/bin/bench", None, &cpio)?;
            let init_args: Vec<String> = std::iter::once(testrun::POWEROFF.to_owned())
                .chain(boot.args.iter().cloned())
                .collect();
            testrun::prepare_linux_boot(&mut profile, dir, bzimage, &cpio, &init_args)?
        }
    };
    Ok((profile, image))
}

fn run_boot(
    qemu: &Qemu,
    boot: &Boot,
    kernel_elf: &Path,
    programs: &[user::Program],
    options: &Options,
    dir: &Path,
    label: &str,
) -> Result<BootResults, String> {
    let (profile, image) = prepare_boot(boot, kernel_elf, programs, options, dir)?;
    let log = dir.join(format!("{}.log", boot_name(boot)));
    let done = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress(label.to_owned(), log.clone(), boot.expected, done.clone());
    let run_options = RunOptions {
        timeout: Some(BOOT_TIMEOUT),
        silence_timeout: Some(SILENCE_TIMEOUT),
        echo: Echo::None,
        serial_log: Some(log.clone()),
        input: Vec::new(),
    };
    let result = qemu.run(&profile, &image, &run_options);
    done.store(true, Ordering::Relaxed);
    let _ = progress.join();
    let result = result.map_err(|e| e.to_string())?;
    collect(boot, &result.serial, result.outcome, &log, label)
}

/// The measurements in one boot's serial output, named after the kernel that made them. A
/// boot that ended badly is an error if it measured nothing, else a warning.
fn collect(
    boot: &Boot,
    serial: &[String],
    outcome: Outcome,
    log: &Path,
    label: &str,
) -> Result<BootResults, String> {
    let parsed = parse(serial, boot.method, boot.cpus);
    let finished = match &boot.kernel {
        Kernel::Ours { .. } => outcome.is_success(),
        // Linux powers off: QEMU exits 0 with -no-reboot.
        Kernel::Linux { .. } => outcome == Outcome::UnexpectedExit(0),
    };
    let mut measurements = parsed.measurements;
    let kernel_name = match &boot.kernel {
        Kernel::Ours { .. } => kernel_label(&boot.kernel),
        Kernel::Linux { .. } => format!("Linux {}", parsed.release),
    };
    let clear = match &boot.kernel {
        Kernel::Ours { .. } => parsed.ours_clear.as_deref().unwrap_or("mov"),
        Kernel::Linux { .. } if parsed.erms => "stosb",
        Kernel::Linux { .. } => "stosq",
    };
    for m in &mut measurements {
        m.kernel = kernel_name.clone();
        if boot.method == Method::Icount {
            m.clear_instructions = parsed.clears.get(clear).copied();
        }
    }
    let mut forks = parsed.forks;
    for fork in &mut forks {
        fork.kernel = kernel_name.clone();
    }
    let mut maps = parsed.maps;
    for run in &mut maps {
        run.kernel = kernel_name.clone();
    }
    let mut grows = parsed.grows;
    for run in &mut grows {
        run.kernel = kernel_name.clone();
    }
    let maps_unavailable = parsed
        .maps_unavailable
        .map(|why| format!("{kernel_name}: {why}"));
    if let Some(line) = &parsed.unsettled {
        eprintln!(
            "\nxtask: bench: {label}: the guest never went quiet, so its counts include other work ({line})"
        );
    }
    if !finished || !parsed.errors.is_empty() {
        let mut why = format!("the boot ended badly ({outcome})");
        for error in &parsed.errors {
            why.push_str(&format!("; {error}"));
        }
        why.push_str(&format!("; serial log: {}", log.display()));
        if measurements.is_empty() && forks.is_empty() && maps.is_empty() && grows.is_empty() {
            return Err(why);
        }
        eprintln!("\nxtask: bench: {label}: {why}");
    }
    Ok(BootResults {
        measurements,
        forks,
        maps,
        maps_unavailable,
        grows,
    })
}

/// Shows `label` and how many of `expected` measurements the serial log holds so far, on one
/// terminal line, until `done`.
fn spawn_progress(
    label: String,
    log: PathBuf,
    expected: usize,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        loop {
            let finished = done.load(Ordering::Relaxed);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let count = text.matches("bench: scenario=").count();
            let last = text
                .lines()
                .rev()
                .find_map(|l| l.split("bench: scenario=").nth(1))
                .map(|rest| rest.split(" faults").next().unwrap_or(rest).to_owned())
                .unwrap_or_else(|| "booting".into());
            eprint!(
                "\r\x1b[K{label}: {count}/{expected} ({last}) {:.0} s",
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
            if finished {
                eprintln!();
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    })
}

/// What one boot's serial output says.
#[derive(Default)]
struct Parsed {
    release: String,
    erms: bool,
    /// Calibrated instructions per clear, by method (icount boots).
    clears: BTreeMap<String, u64>,
    /// How our kernel clears pages (its boot log says so).
    ours_clear: Option<String>,
    /// The program's `bench: unsettled` line: the guest never went quiet before measuring.
    unsettled: Option<String>,
    measurements: Vec<Measurement>,
    forks: Vec<ForkMeasurement>,
    maps: Vec<MapsMeasurement>,
    /// Why the program could not read /proc/self/maps (its `bench: maps: … unavailable` line).
    maps_unavailable: Option<String>,
    grows: Vec<GrowMeasurement>,
    errors: Vec<String>,
}

/// `items` in groups of those `same` puts together, each group led by its first item, in the
/// order of their first items.
fn group_by<T>(items: &[T], same: impl Fn(&T, &T) -> bool) -> Vec<Vec<&T>> {
    let mut groups: Vec<Vec<&T>> = Vec::new();
    for item in items {
        match groups.iter_mut().find(|group| same(group[0], item)) {
            Some(group) => group.push(item),
            None => groups.push(vec![item]),
        }
    }
    groups
}

/// The value of `key=` in a line of space-separated `key=value` fields.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

/// The value of `key=` in `line`, or why there is none.
fn required_field<'a>(line: &'a str, key: &str) -> Result<&'a str, String> {
    field(line, key).ok_or_else(|| format!("no {key}= in {line:?}"))
}

fn number(line: &str, key: &str) -> Result<u64, String> {
    required_field(line, key)?
        .parse()
        .map_err(|_| format!("{key}= is not a number in {line:?}"))
}

fn parse_measurement(line: &str, method: Method, cpus: u32) -> Result<Measurement, String> {
    let per_thread = field(line, "per_thread")
        .ok_or_else(|| format!("no per_thread= in {line:?}"))?
        .split(',')
        .map(|pair| {
            let (faults, ns) = pair
                .split_once('/')
                .ok_or_else(|| format!("bad per_thread entry {pair:?}"))?;
            Ok(ThreadResult {
                faults: faults
                    .parse()
                    .map_err(|_| format!("bad faults in {pair:?}"))?,
                elapsed_ns: ns.parse().map_err(|_| format!("bad ns in {pair:?}"))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Measurement {
        kernel: String::new(),
        method,
        cpus,
        scenario: field(line, "scenario")
            .ok_or_else(|| format!("no scenario= in {line:?}"))?
            .to_owned(),
        threads: number(line, "threads")? as u32,
        rep: number(line, "rep")? as u32,
        faults: number(line, "faults")?,
        elapsed_ns: number(line, "elapsed_ns")?,
        minflt: number(line, "minflt")?,
        per_thread,
        storm_ops: number(line, "storm_ops")?,
        clear_instructions: None,
    })
}

fn parse(serial: &[String], method: Method, cpus: u32) -> Parsed {
    let mut parsed = Parsed::default();
    for line in serial {
        if let Some(at) = line.find("mm: pages are cleared with ") {
            let rest = &line[at + "mm: pages are cleared with ".len()..];
            parsed.ours_clear = rest.split_whitespace().last().map(str::to_owned);
        }
        let Some(at) = line.find("bench: ") else {
            continue;
        };
        let line = &line[at..];
        if line.starts_with("bench: start ") {
            parsed.release = field(line, "release").unwrap_or("unknown").to_owned();
            parsed.erms = field(line, "erms") == Some("1");
        } else if line.starts_with("bench: unsettled ") {
            parsed.unsettled = Some(line.to_owned());
        } else if line.starts_with("bench: clear ") {
            for key in ["mov", "stosq", "stosb", "movnti"] {
                if let Ok(n) = number(line, key) {
                    parsed.clears.insert(key.into(), n);
                }
            }
        } else if line.starts_with("bench: fork ") {
            if line.contains(" failed: ") {
                parsed.errors.push(line.to_owned());
                continue;
            }
            match forks::parse_line(line, method, cpus) {
                Ok(m) => parsed.forks.push(m),
                Err(e) => parsed.errors.push(e),
            }
        } else if let Some(note) = line.strip_prefix("bench: maps: ") {
            // "/proc/self/maps unavailable (ENOENT(2))": the reason in its parentheses.
            let why = note
                .split_once("unavailable")
                .map_or(note, |(_, why)| why.trim());
            let why = why.strip_prefix('(').and_then(|w| w.strip_suffix(')'));
            parsed.maps_unavailable = Some(why.unwrap_or(note).to_owned());
        } else if line.starts_with("bench: maps ") {
            if line.contains(" failed: ") {
                parsed.errors.push(line.to_owned());
                continue;
            }
            match maps::parse_line(line, method, cpus) {
                Ok(m) => parsed.maps.push(m),
                Err(e) => parsed.errors.push(e),
            }
        } else if line.starts_with("bench: grow ") {
            if line.contains(" failed: ") {
                parsed.errors.push(line.to_owned());
                continue;
            }
            match grow::parse_line(line, method, cpus) {
                Ok(m) => parsed.grows.push(m),
                Err(e) => parsed.errors.push(e),
            }
        } else if line.starts_with("bench: scenario=") {
            if line.contains(" failed: ") {
                parsed.errors.push(line.to_owned());
                continue;
            }
            match parse_measurement(line, method, cpus) {
                Ok(m) => parsed.measurements.push(m),
                Err(e) => parsed.errors.push(e),
            }
        } else if line.contains("failed") {
            parsed.errors.push(line.to_owned());
        }
    }
    parsed
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_owned())
}

/// The host's CPU model and core count, from /proc/cpuinfo.
fn host_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_double_up_to_smp() {
        assert_eq!(thread_counts(1), [1]);
        assert_eq!(thread_counts(2), [1, 2]);
        assert_eq!(thread_counts(6), [1, 2, 4, 6]);
        assert_eq!(thread_counts(8), [1, 2, 4, 8]);
    }

    #[test]
    fn parses_the_bench_lines() {
        let serial: Vec<String> = [
            "[    0.1] cpu0 INFO  mm: pages are cleared with stosq",
            "bench: start release=6.1.0-56-amd64 cpus=2 erms=1",
            "bench: unsettled after_ns=30000000000 trials=2500 trial_ns=12000000 last_ns=13000000",
            "bench: clear stosb=4100 stosq=516 movnti=708",
            "bench: scenario=a threads=2 rep=1 faults=16 elapsed_ns=2000 minflt=19 storm_ops=0 per_thread=8/1500,8/2000",
            "bench: scenario=c threads=1 rep=0 failed: mmap: ENOMEM",
            "bench: fork vmas=100 pages=1 rep=0 forks=16 elapsed_ns=3200 fork_ns=1600",
            "bench: fork vmas=10000 pages=1 rep=0 failed: fork: ENOMEM",
            "bench: maps condition=quiet vmas=64 rep=0 reads=200 median_ns=150000 p99_ns=390000 worst_ns=490000 lines=72 storm_ops=0",
            "bench: maps condition=storm vmas=64 rep=0 failed: storm mmap: ENOMEM",
            "bench: grow method=mremap rep=0 from_kib=1024 to_kib=65536 steps=2 elapsed_ns=300 move_ns=30 step_ns=100,200",
            "bench: grow method=copy rep=0 failed: grew in place at 1048576 bytes",
            "bench: done (2 measurements)",
        ]
        .map(String::from)
        .to_vec();
        let parsed = parse(&serial, Method::Wall, 2);
        assert_eq!(parsed.release, "6.1.0-56-amd64");
        assert!(parsed.erms);
        assert_eq!(parsed.ours_clear.as_deref(), Some("stosq"));
        assert_eq!(parsed.clears["stosb"], 4100);
        assert!(parsed.unsettled.is_some());
        assert_eq!(parsed.measurements.len(), 1);
        let m = &parsed.measurements[0];
        assert_eq!((m.scenario.as_str(), m.threads, m.rep), ("a", 2, 1));
        assert_eq!(
            (m.faults, m.elapsed_ns, m.minflt, m.cpus),
            (16, 2000, 19, 2)
        );
        assert_eq!(m.per_thread[1].elapsed_ns, 2000);
        assert_eq!(parsed.errors.len(), 4, "{:?}", parsed.errors);
        assert!(parsed.errors[0].contains("ENOMEM"));
        assert!(parsed.errors[1].contains("fork: ENOMEM"));
        assert!(parsed.errors[2].contains("storm mmap: ENOMEM"));
        assert!(parsed.errors[3].contains("grew in place"));
        assert_eq!(parsed.grows.len(), 1);
        assert_eq!(
            (parsed.grows[0].way.as_str(), parsed.grows[0].step_ns.len()),
            ("mremap", 2)
        );
        assert_eq!(parsed.forks.len(), 1);
        assert_eq!((parsed.forks[0].vmas, parsed.forks[0].cpus), (100, 2));
        assert_eq!(parsed.maps.len(), 1);
        assert_eq!(
            (parsed.maps[0].condition.as_str(), parsed.maps[0].median_ns),
            ("quiet", 150_000)
        );
        assert_eq!(parsed.maps_unavailable, None);
    }

    fn boot(kernel: Kernel) -> Boot {
        Boot {
            kernel,
            method: Method::Wall,
            cpus: 2,
            args: Vec::new(),
            expected: 1,
            expected_forks: 0,
            expected_maps: 2,
            expected_grows: 0,
        }
    }

    #[test]
    fn a_kernel_without_proc_maps_is_noted_not_failed() {
        let serial: Vec<String> = [
            "bench: start release=6.15.0-vmakernel cpus=2 erms=1",
            "bench: maps: /proc/self/maps unavailable (ENOENT(2))",
            "bench: scenario=b threads=1 rep=0 faults=16 elapsed_ns=2000 minflt=19 storm_ops=0 per_thread=16/2000",
            "bench: done (1 measurements)",
        ]
        .map(String::from)
        .to_vec();
        let ours = boot(Kernel::Ours { vma_lock: true });
        let got = collect(
            &ours,
            &serial,
            Outcome::Success,
            Path::new("ours.log"),
            "[1/2] ours",
        );
        let got = got.expect("the boot measured");
        assert_eq!(got.maps_unavailable.as_deref(), Some("ours: ENOENT(2)"));
        let mut results = Results::default();
        results.add("[1/2] ours", &ours, Ok(got));
        assert!(results.failures.is_empty(), "{:?}", results.failures);
        assert_eq!(results.maps_unavailable, ["ours: ENOENT(2)"]);

        // A kernel that has /proc/self/maps but printed fewer lines than expected fell short.
        let linux = boot(Kernel::Linux {
            bzimage: PathBuf::from("vmlinuz-6.12"),
        });
        let serial: Vec<String> = serial
            .into_iter()
            .filter(|line| !line.contains("unavailable"))
            .collect();
        let got = collect(
            &linux,
            &serial,
            Outcome::UnexpectedExit(0),
            Path::new("l.log"),
            "[2/2]",
        );
        results.add("[2/2] Linux", &linux, got);
        assert_eq!(results.failures, ["[2/2] Linux: 0 of 2 maps measurements"]);
    }

    #[test]
    fn linux_images_are_named_by_file_or_by_release_folder() {
        let name = |path: &str| linux_image_name(Path::new(path));
        assert_eq!(
            name("/tmp/x/boot/vmlinuz-6.1.0-56-amd64"),
            "vmlinuz-6.1.0-56-amd64"
        );
        assert_eq!(
            name("/tmp/x/usr/lib/modules/7.3-amd64/vmlinuz"),
            "vmlinuz-7.3-amd64"
        );
        assert_eq!(name("linux/arch/x86/boot/bzImage"), "bzImage-boot");
    }

    #[test]
    fn two_linux_images_of_one_name_are_refused() {
        let images = [
            PathBuf::from("/a/linux/arch/x86/boot/bzImage"),
            PathBuf::from("/b/linux/arch/x86/boot/bzImage"),
        ];
        let error = check_linux_images(&images).unwrap_err();
        assert!(
            error.contains("would share the name bzImage-boot"),
            "{error}"
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_not_a_measurement() {
        let serial = vec!["bench: scenario=a threads=x rep=0".to_owned()];
        let parsed = parse(&serial, Method::Wall, 1);
        assert!(parsed.measurements.is_empty());
        assert_eq!(parsed.errors.len(), 1);
    }
}
