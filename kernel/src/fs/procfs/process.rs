//! The texts of a process's (or a thread's) files, in Linux's formats: `status`, `stat`,
//! `statm`, `comm` and `maps`. Each is made from one look at the process: its registry entry,
//! the thread's scheduler and signal state, and one walk of its VMAs under `mmap_lock` for
//! reading.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::ops::Range;

use crate::arch::percpu::CpuSet;
use crate::arch::syscall::USER_END;
use crate::fs::generated::{cpu_list, cpu_mask};
use crate::mm::addrspace::Mm;
use crate::mm::maps::{LocklessMaps, write_maps_line};
use crate::mm::vma::{VM_EXEC, VM_IMAGE, VM_LOCKED, VM_SHARED, VM_STACK, VM_WRITE};
use crate::proc::{Process, USER_HZ, clock_ticks, wait};
use crate::sched::{RUNNABLE, SLEEPING, Task};

/// The longest name `comm` shows (Linux's `TASK_COMM_LEN` less the NUL).
const COMM_LEN: usize = 15;

/// What `status`, `stat` and `statm` say of an address space, from one walk of its VMAs.
#[derive(Default)]
struct Memory {
    /// Bytes mapped: all of it, private writable data, stacks, executable code.
    size: u64,
    data: u64,
    stack: u64,
    text: u64,
    /// Bytes in VMAs locked with `mlock` (`VmLck`).
    locked: u64,
    resident_pages: u64,
    /// The executable's code (`startcode`, `endcode`), and where its heap starts.
    code: Range<u64>,
    brk_start: u64,
}

impl Memory {
    fn of(mm: &Mm) -> Self {
        let mut memory = Memory {
            resident_pages: mm.resident_pages.sum().max(0) as u64,
            brk_start: mm.brk_range().start,
            ..Memory::default()
        };
        let mut code: Option<Range<u64>> = None;
        let locked = mm.read();
        for vma in locked.vmas_in(0..USER_END) {
            let (range, flags) = (vma.start()..vma.end(), vma.flags());
            let len = range.end - range.start;
            memory.size += len;
            if flags & VM_LOCKED != 0 {
                memory.locked += len;
            }
            if flags & VM_STACK != 0 {
                memory.stack += len;
            } else if flags & VM_WRITE != 0 && flags & VM_SHARED == 0 {
                memory.data += len;
            } else if flags & VM_EXEC != 0 && flags & VM_WRITE == 0 {
                memory.text += len;
                if flags & VM_IMAGE != 0 {
                    code = Some(match code {
                        Some(code) => code.start.min(range.start)..code.end.max(range.end),
                        None => range,
                    });
                }
            }
        }
        memory.code = code.unwrap_or_default();
        memory
    }
}

/// `/proc/PID/maps`: one line per VMA in Linux's format (`crate::mm::maps`), walked without
/// `mmap_lock` (Linux 6.17's way): under RCU and each VMA's read lock, so a reader never waits
/// behind the address space's writers.
fn maps_text(mm: &Mm, image_path: Option<&str>) -> Vec<u8> {
    let mut text = String::new();
    for entry in LocklessMaps::new(mm, 0) {
        write_maps_line(&mut text, &entry, image_path);
    }
    text.into_bytes()
}

/// The process (and thread) a file speaks of.
pub(super) struct Subject {
    /// The id the file shows as the thread's: the thread's in `task/TID/`, else the pid.
    pub(super) id: u32,
    pub(super) process: Arc<Process>,
    /// The thread the file describes (the leader for a process's files); `None` once every
    /// thread has exited.
    pub(super) thread: Option<Arc<Task>>,
}

impl Subject {
    /// The thread's name (what `prctl(PR_SET_NAME)` sets), at most 15 bytes; an ended
    /// process's is its executable's file name.
    pub(super) fn comm(&self) -> String {
        let mut name = match &self.thread {
            Some(thread) => thread.name(),
            None => {
                let path = self.process.path();
                String::from(path.rsplit('/').next().unwrap_or(&path))
            }
        };
        let mut end = name.len().min(COMM_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
        name
    }

    /// The state letter and word: `Z` ended, `T` stopped, else the thread's `R` or `S`.
    fn state(&self) -> (char, &'static str) {
        let Some(thread) = self.thread.as_ref().filter(|_| !self.process.is_zombie()) else {
            return ('Z', "zombie");
        };
        if self.process.signals.is_stopped() {
            return ('T', "stopped");
        }
        match thread.sched.lock().state {
            RUNNABLE => ('R', "running"),
            SLEEPING => ('S', "sleeping"),
            _ => ('X', "dead"),
        }
    }

    fn memory(&self) -> Option<Memory> {
        self.process.mm().map(|mm| Memory::of(&mm))
    }

    /// Timer ticks run: the thread's for a thread's files, the whole process's otherwise
    /// (threads that exited included).
    fn ticks(&self) -> u64 {
        match (&self.thread, self.id == self.process.pid) {
            (Some(thread), false) => thread.ticks.load(core::sync::atomic::Ordering::Relaxed),
            _ => wait::usage_of(&self.process).0,
        }
    }

    /// The thread's blocked mask and its own pending signals.
    fn thread_signals(&self) -> (u64, u64) {
        self.thread
            .as_ref()
            .and_then(|t| t.user.as_ref())
            .map_or((0, 0), |user| user.signals.blocked_and_pending())
    }

    /// The CPUs the thread may run on, of those online.
    fn allowed_cpus(&self) -> CpuSet {
        let allowed = self
            .thread
            .as_ref()
            .map_or(CpuSet::ALL, |t| t.allowed_cpus());
        allowed.intersection(CpuSet::all_online())
    }

    /// `/proc/PID/stat`: the 52 fields of Linux's line, those this kernel does not keep 0.
    pub(super) fn stat(&self) -> String {
        let process = &self.process;
        let (state, _) = self.state();
        let memory = self.memory().unwrap_or_default();
        let (children_ticks, children_faults) = wait::children_usage(process);
        let masks = process.signals.masks();
        let (blocked, _) = self.thread_signals();
        let cpu = self
            .thread
            .as_ref()
            .map_or(0, |t| t.cpu.load(core::sync::atomic::Ordering::Relaxed));
        let exit_code = if process.is_zombie() {
            process.wait_status()
        } else {
            0
        };
        let start = process.start_ns() / (1_000_000_000 / USER_HZ);
        // From `flags` on; `pid` to `tpgid` are written first.
        let fields: [u64; 44] = [
            0, // flags
            process.minor_faults.sum().max(0) as u64,
            children_faults,
            0, // majflt
            0, // cmajflt
            clock_ticks(self.ticks()),
            0, // stime: the ticks do not tell user from kernel time
            clock_ticks(children_ticks),
            0,  // cstime
            20, // priority
            0,  // nice
            process.thread_count() as u64,
            0, // itrealvalue
            start,
            memory.size,
            memory.resident_pages,
            u64::MAX, // rsslim
            memory.code.start,
            memory.code.end,
            0, // startstack
            0, // kstkesp
            0, // kstkeip
            masks.pending,
            blocked,
            masks.ignored,
            masks.caught,
            0, // wchan
            0, // nswap
            0, // cnswap
            u64::from(process.exit_signal()),
            cpu as u64,
            0, // rt_priority
            0, // policy: SCHED_OTHER
            0, // delayacct_blkio_ticks
            0, // guest_time
            0, // cguest_time
            0, // start_data
            0, // end_data
            memory.brk_start,
            0, // arg_start
            0, // arg_end
            0, // env_start
            0, // env_end
            u64::from(exit_code),
        ];
        // Without a controlling terminal: 0 and -1.
        let (tty_nr, tpgid) = crate::fs::tty::controlling_terminal(process)
            .map_or((0, -1), |(nr, foreground)| (nr, i64::from(foreground)));
        let mut text = format!(
            "{} ({}) {state} {} {} {} {tty_nr} {tpgid}",
            self.id,
            self.comm(),
            process.parent_pid(),
            process.pgid(),
            process.sid(),
        );
        for value in fields {
            // Writing to a `String` cannot fail.
            let _ = write!(text, " {value}");
        }
        text.push('\n');
        text
    }

    /// `/proc/PID/statm`: sizes in pages: total, resident, shared, text, library, data and
    /// stack, dirty (the last always 0, as on Linux).
    pub(super) fn statm(&self) -> String {
        let memory = self.memory().unwrap_or_default();
        format!(
            "{} {} 0 {} 0 {} 0\n",
            memory.size / 4096,
            memory.resident_pages,
            memory.text / 4096,
            (memory.data + memory.stack) / 4096,
        )
    }

    /// `/proc/PID/status`: `Key:\tvalue` lines in Linux's order; the memory lines only while
    /// the process has an address space.
    pub(super) fn status(&self) -> String {
        let process = &self.process;
        let (state, state_name) = self.state();
        let fds = process.files().open_fds();
        let fd_size = fds
            .last()
            .map_or(0, |&fd| fd + 1)
            .max(64)
            .next_power_of_two();
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = write!(
            text,
            "Name:\t{}\nUmask:\t{:04o}\nState:\t{state} ({state_name})\nTgid:\t{}\nNgid:\t0\n\
             Pid:\t{}\nPPid:\t{}\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
             FDSize:\t{fd_size}\nGroups:\t\nNStgid:\t{}\nNSpid:\t{}\nNSpgid:\t{}\nNSsid:\t{}\n",
            self.comm(),
            process.fs_context().umask(),
            process.pid,
            self.id,
            process.parent_pid(),
            process.pid,
            self.id,
            process.pgid(),
            process.sid(),
        );
        if let Some(memory) = self.memory() {
            let rss = memory.resident_pages * 4;
            for (key, kib) in [
                ("VmPeak", memory.size / 1024),
                ("VmSize", memory.size / 1024),
                ("VmLck", memory.locked / 1024),
                ("VmPin", 0),
                ("VmHWM", rss),
                ("VmRSS", rss),
                ("RssAnon", rss),
                ("RssFile", 0),
                ("RssShmem", 0),
                ("VmData", memory.data / 1024),
                ("VmStk", memory.stack / 1024),
                ("VmExe", memory.text / 1024),
                ("VmLib", 0),
                ("VmSwap", 0),
            ] {
                let _ = writeln!(text, "{key}:\t{kib:8} kB");
            }
        }
        let masks = process.signals.masks();
        let (blocked, pending) = self.thread_signals();
        let cpus = self.allowed_cpus();
        let possible = CpuSet::all_registered().len();
        let _ = write!(
            text,
            "Threads:\t{}\nSigPnd:\t{pending:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{blocked:016x}\n\
             SigIgn:\t{:016x}\nSigCgt:\t{:016x}\nCapInh:\t0000000000000000\n\
             CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n\
             CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\nCpus_allowed:\t{}\n\
             Cpus_allowed_list:\t{}\nMems_allowed:\t1\nMems_allowed_list:\t0\n",
            process.thread_count(),
            masks.pending,
            masks.ignored,
            masks.caught,
            cpu_mask(cpus, possible),
            cpu_list(cpus),
        );
        text
    }

    /// `/proc/PID/maps` (empty once the process has ended).
    pub(super) fn maps(&self) -> Vec<u8> {
        let Some(mm) = self.process.mm() else {
            return Vec::new();
        };
        let image = self.process.invocation().executable.map(|e| e.path());
        maps_text(&mm, image.as_deref())
    }
}
