//! Kernel options: read once at boot from `/etc/cmdline` in the ramdisk.
//!
//! Bootloader 0.11 passes no command line, so `cargo xtask` packs the options into the ramdisk.
//! Unknown options are reported and ignored, never fatal. The test runner's options (`ktest.*`)
//! and the harness's `smp.phantom_apic_id` exist only in test images (feature `ktest`); a
//! production kernel reports them as unknown.

use core::fmt;

/// Where the options live inside the ramdisk.
const CMDLINE_PATH: &str = "/etc/cmdline";

/// Which deliberately broken test the harness self-check asks for (`ktest.selftest=...`).
#[cfg(feature = "ktest")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// A test whose assertion fails: the run must fail and name it.
    Fail,
    /// A test that spins with interrupts enabled: the per-test timeout must end it.
    Timeout,
    /// A test that spins with interrupts disabled: only the host's timeout can see it.
    Hang,
    /// A test that touches unmapped memory unexpectedly: a fatal exception report ends the run.
    Fault,
    /// A test that fails holding the heap lock: the runner must stop the run and name the lock.
    LockLeftHeld,
}

/// The options only test images know.
#[cfg(feature = "ktest")]
#[derive(Clone, Debug)]
pub struct TestOptions {
    /// `ktest.filter=TEXT[,TEXT...]`: run only tests whose name contains one of the TEXTs.
    pub filter: Option<&'static str>,
    /// `ktest.timeout_ms=N`: the default per-test timeout.
    pub timeout_ms: u64,
    /// `ktest.stress=N`: multiplies the iteration counts of stress tests (torture runs).
    pub stress: u32,
    /// `ktest.soak_s=N`: run the tests in rounds, with the soak's own steps, until N seconds
    /// have passed (ktest/soak.rs); 0 (the default) runs them once.
    pub soak_s: u64,
    /// `ktest.selftest=fail|timeout|hang|fault|lock`: add a deliberately broken test (harness
    /// self-check).
    pub self_test: Option<SelfTest>,
    /// `smp.phantom_apic_id=N`: also try to start a CPU with this APIC ID, which does not
    /// exist (checks that a CPU that never answers is reported and skipped).
    pub phantom_apic_id: Option<u32>,
    /// `maps.break=no_retry`: the lockless `/proc/PID/maps` walk takes each VMA it finds
    /// without locking or revalidating it, a deliberate bug its torture test must catch (see
    /// mm/maps.rs).
    pub maps_break_no_retry: bool,
    /// `mremap.break=no_source_lock`: mremap moves a range without write-locking its source
    /// VMA, a deliberate bug its torture test must catch (see mm/addrspace/relocate.rs).
    pub mremap_break_no_source_lock: bool,
}

#[cfg(feature = "ktest")]
impl Default for TestOptions {
    fn default() -> Self {
        Self {
            filter: None,
            timeout_ms: 30_000,
            stress: 1,
            soak_s: 0,
            self_test: None,
            phantom_apic_id: None,
            maps_break_no_retry: false,
            mremap_break_no_source_lock: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BootOptions {
    /// `test`: run the in-kernel test suites instead of idling (a production kernel, built
    /// without them, says so and leaves).
    pub test: bool,
    /// `exit`: leave QEMU once boot (or the test run) completes, for scripts.
    pub exit: bool,
    /// `stats`: print every subsystem's statistics before leaving.
    pub stats: bool,
    /// `log=error|warn|info|debug|trace`.
    pub log_level: log::LevelFilter,
    /// `hz=N`: the local APIC timer's rate on every CPU (1..=10000; default 250, as in
    /// Linux distributions: under QEMU's TCG every tick also costs the host's main loop time,
    /// and at 1000 Hz two busy CPUs lost about a tenth of their fault throughput to it).
    pub timer_hz: u32,
    /// `rcu.stall_ms=N`: a grace period longer than this prints a stall warning.
    pub rcu_stall_ms: u64,
    /// The test runner's and the harness's options (test images only).
    #[cfg(feature = "ktest")]
    pub tests: TestOptions,
    /// `init=PATH`: the first user program (its arguments come from `/etc/init.args`).
    pub init: Option<&'static str>,
    /// `proc=PATH` (repeatable): more independent processes, started after init.
    pub extra_processes: alloc::vec::Vec<&'static str>,
    /// `vma_lock=on|off`: page faults try the per-VMA lock first (on) or always take
    /// `mmap_lock` (off, for comparison and bisection).
    pub vma_lock: bool,
    /// `page_clear=mov|stosq|stosb|movnti`: how fresh pages are cleared (for measuring; the
    /// default is a loop of `mov` stores).
    pub page_clear: pageclear::Method,
    /// `overcommit=heuristic|always|never`: what commit accounting refuses (Linux's
    /// `vm.overcommit_memory` 0, 1, 2; see mm/commit.rs).
    pub overcommit: crate::mm::commit::Mode,
    /// `console=both|serial|screen`: where the console (log and terminal) goes, and whose
    /// input it takes: the serial line and the screen with the keyboard (the default), or one
    /// of them (`screen` also gives the terminal the screen's size).
    pub console: crate::console::Devices,
    /// `fail=KIND:RATE[,KIND:RATE...]`: allocations of user frames, VMA objects and user page
    /// tables fail on purpose once boot is complete (see mm/inject.rs).
    pub fail: crate::mm::inject::Rates,
    /// `fail.seed=S`: the seed of `fail=`'s percentage rates.
    pub fail_seed: u64,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            test: false,
            exit: false,
            stats: false,
            log_level: log::LevelFilter::Info,
            timer_hz: 250,
            rcu_stall_ms: 10_000,
            #[cfg(feature = "ktest")]
            tests: TestOptions::default(),
            init: None,
            extra_processes: alloc::vec::Vec::new(),
            vma_lock: true,
            page_clear: pageclear::Method::Stores,
            overcommit: crate::mm::commit::Mode::Heuristic,
            console: crate::console::Devices::Both,
            fail: crate::mm::inject::Rates::default(),
            fail_seed: 1,
        }
    }
}

impl BootOptions {
    /// Options from the ramdisk's `/etc/cmdline`; defaults when the ramdisk or file is missing.
    pub fn from_ramdisk(ramdisk: &'static [u8]) -> Self {
        let archive = initrd::Archive::new(ramdisk);
        match archive.find(CMDLINE_PATH) {
            Some(entry) => match core::str::from_utf8(entry.data) {
                Ok(text) => Self::parse(text),
                Err(_) => {
                    log::warn!("{CMDLINE_PATH} is not UTF-8; using default options");
                    Self::default()
                }
            },
            None => {
                if let Some(error) = archive.iter().find_map(Result::err) {
                    log::warn!(
                        "the ramdisk is damaged ({error}) before any {CMDLINE_PATH}; using \
                         default options"
                    );
                } else if !ramdisk.is_empty() {
                    log::warn!("no {CMDLINE_PATH} in the ramdisk; using default options");
                }
                Self::default()
            }
        }
    }

    /// Parses option text; unknown or malformed options are logged and skipped.
    pub fn parse(text: &'static str) -> Self {
        let mut options = Self::default();
        for opt in initrd::cmdline::parse(text) {
            let ok = match opt.key {
                "test" => set_bool(&mut options.test, opt.value),
                "exit" => set_bool(&mut options.exit, opt.value),
                "stats" => set_bool(&mut options.stats, opt.value),
                "log" => opt
                    .value
                    .and_then(|v| v.parse().ok())
                    .map(|level| options.log_level = level)
                    .is_some(),
                "hz" => set_number(&mut options.timer_hz, opt.value, 1..=10_000),
                "rcu.stall_ms" => set_number(&mut options.rcu_stall_ms, opt.value, 1..=u64::MAX),
                "init" => opt.value.map(|v| options.init = Some(v)).is_some(),
                "proc" => opt.value.map(|v| options.extra_processes.push(v)).is_some(),
                "vma_lock" => set_bool(&mut options.vma_lock, opt.value),
                "page_clear" => opt
                    .value
                    .and_then(pageclear::Method::from_name)
                    .map(|method| options.page_clear = method)
                    .is_some(),
                "overcommit" => opt
                    .value
                    .and_then(crate::mm::commit::Mode::parse)
                    .map(|mode| options.overcommit = mode)
                    .is_some(),
                "console" => opt
                    .value
                    .and_then(crate::console::Devices::from_name)
                    .map(|devices| options.console = devices)
                    .is_some(),
                "fail" => opt
                    .value
                    .and_then(crate::mm::inject::Rates::parse)
                    .map(|rates| options.fail = rates)
                    .is_some(),
                "fail.seed" => set_number(&mut options.fail_seed, opt.value, 0..=u64::MAX),
                #[cfg(feature = "ktest")]
                "smp.phantom_apic_id" => opt
                    .value
                    .and_then(|v| v.parse().ok())
                    .map(|id| options.tests.phantom_apic_id = Some(id))
                    .is_some(),
                #[cfg(feature = "ktest")]
                "ktest.filter" => opt.value.map(|v| options.tests.filter = Some(v)).is_some(),
                #[cfg(feature = "ktest")]
                "ktest.timeout_ms" => {
                    set_number(&mut options.tests.timeout_ms, opt.value, 1..=u64::MAX)
                }
                #[cfg(feature = "ktest")]
                "ktest.stress" => set_number(&mut options.tests.stress, opt.value, 1..=u32::MAX),
                #[cfg(feature = "ktest")]
                "ktest.soak_s" => set_number(&mut options.tests.soak_s, opt.value, 1..=u64::MAX),
                #[cfg(feature = "ktest")]
                "ktest.selftest" => {
                    let which = match opt.value {
                        Some("fail") => Some(SelfTest::Fail),
                        Some("timeout") => Some(SelfTest::Timeout),
                        Some("hang") => Some(SelfTest::Hang),
                        Some("fault") => Some(SelfTest::Fault),
                        Some("lock") => Some(SelfTest::LockLeftHeld),
                        _ => None,
                    };
                    which.map(|w| options.tests.self_test = Some(w)).is_some()
                }
                #[cfg(feature = "ktest")]
                "maps.break" => {
                    let known = opt.value == Some("no_retry");
                    options.tests.maps_break_no_retry |= known;
                    known
                }
                #[cfg(feature = "ktest")]
                "mremap.break" => {
                    let known = opt.value == Some("no_source_lock");
                    options.tests.mremap_break_no_source_lock |= known;
                    known
                }
                _ => {
                    log::warn!("unknown kernel option `{}` ignored", opt.key);
                    continue;
                }
            };
            if !ok {
                log::warn!(
                    "kernel option `{}` has a bad value {:?}; ignored",
                    opt.key,
                    opt.value.unwrap_or("")
                );
            }
        }
        options
    }
}

/// Sets `field` from a decimal `value` inside `range`; false (field unchanged) otherwise.
fn set_number<T: core::str::FromStr + PartialOrd>(
    field: &mut T,
    value: Option<&str>,
    range: core::ops::RangeInclusive<T>,
) -> bool {
    match value.and_then(|v| v.parse().ok()) {
        Some(number) if range.contains(&number) => {
            *field = number;
            true
        }
        _ => false,
    }
}

#[cfg(feature = "ktest")]
impl TestOptions {
    /// Writes the options that differ from the defaults (the timeout whenever tests run).
    fn write_non_defaults(&self, f: &mut fmt::Formatter<'_>, test: bool) -> fmt::Result {
        if test {
            write!(f, " ktest.timeout_ms={}", self.timeout_ms)?;
        }
        if let Some(id) = self.phantom_apic_id {
            write!(f, " smp.phantom_apic_id={id}")?;
        }
        if self.stress != 1 {
            write!(f, " ktest.stress={}", self.stress)?;
        }
        if let Some(filter) = self.filter {
            write!(f, " ktest.filter={filter}")?;
        }
        if self.soak_s != 0 {
            write!(f, " ktest.soak_s={}", self.soak_s)?;
        }
        if let Some(which) = self.self_test {
            write!(f, " ktest.selftest={which:?}")?;
        }
        if self.maps_break_no_retry {
            write!(f, " maps.break=no_retry")?;
        }
        if self.mremap_break_no_source_lock {
            write!(f, " mremap.break=no_source_lock")?;
        }
        Ok(())
    }
}

fn set_bool(field: &mut bool, value: Option<&str>) -> bool {
    initrd::cmdline::parse_bool(value)
        .map(|b| *field = b)
        .is_some()
}

impl fmt::Display for BootOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log={} hz={} rcu.stall_ms={}",
            self.log_level, self.timer_hz, self.rcu_stall_ms
        )?;
        if self.test {
            write!(f, " test")?;
        }
        #[cfg(feature = "ktest")]
        self.tests.write_non_defaults(f, self.test)?;
        if let Some(init) = self.init {
            write!(f, " init={init}")?;
        }
        for path in &self.extra_processes {
            write!(f, " proc={path}")?;
        }
        if !self.vma_lock {
            write!(f, " vma_lock=off")?;
        }
        if self.page_clear != pageclear::Method::Stores {
            write!(f, " page_clear={}", self.page_clear.name())?;
        }
        if self.console != crate::console::Devices::Both {
            write!(f, " console={}", self.console.name())?;
        }
        if !self.fail.is_none() {
            write!(f, " fail={} fail.seed={}", self.fail, self.fail_seed)?;
        }
        if self.exit {
            write!(f, " exit")?;
        }
        if self.stats {
            write!(f, " stats")?;
        }
        Ok(())
    }
}
