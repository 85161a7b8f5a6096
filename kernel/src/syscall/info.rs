//! Identity, limits, statistics and the calls a libc makes at start-up: uname, getrusage,
//! prlimit64, prctl, getrandom, reboot.

use core::sync::atomic::Ordering;

use super::errno::{EINVAL, EPERM, ESRCH, SysResult};
use crate::arch::uaccess::{copy_to_user, read_user, strncpy_from_user, write_user};
use crate::proc::creds::{CAP_SETPCAP, Capabilities};

/// What `uname` answers (and `/proc/version`, `/proc/sys/kernel/*`): the system's name, the
/// host name, the release and the version.
pub const SYSNAME: &str = "Linux";
pub const NODENAME: &str = "vmakernel";
pub const RELEASE: &str = "6.15.0-vmakernel";
pub const VERSION: &str = concat!("#1 SMP ", env!("CARGO_PKG_VERSION"));

pub fn uname(buf: u64) -> SysResult {
    let mut utsname = [0u8; 6 * 65];
    let fields: [&[u8]; 6] = [
        SYSNAME.as_bytes(),
        NODENAME.as_bytes(),
        RELEASE.as_bytes(),
        VERSION.as_bytes(),
        b"x86_64",
        b"(none)",
    ];
    for (i, field) in fields.iter().enumerate() {
        utsname[i * 65..i * 65 + field.len()].copy_from_slice(field);
    }
    copy_to_user(buf, &utsname)?;
    Ok(0)
}

const RLIMIT_STACK: u64 = 3;
const RLIMIT_NLIMITS: u64 = 16;
const RLIM_INFINITY: u64 = u64::MAX;

fn limit(resource: u64) -> [u64; 2] {
    match resource {
        RLIMIT_STACK => [crate::mm::addrspace::STACK_SIZE, RLIM_INFINITY],
        7 => [1024, 1024], // RLIMIT_NOFILE
        _ => [RLIM_INFINITY, RLIM_INFINITY],
    }
}

/// `getrlimit(resource, limit)`; `resource` is an `unsigned int`.
pub fn getrlimit(resource: u64, out: u64) -> SysResult {
    if u64::from(resource as u32) >= RLIMIT_NLIMITS {
        return Err(EINVAL);
    }
    write_user(out, &limit(resource as u32 as u64))?;
    Ok(0)
}

/// `prlimit64(pid, resource, new, old)`: limits can be read, not changed. Checked in Linux's
/// order: reading `new` (EFAULT), the process (ESRCH: any thread id names its process), the
/// resource (an `unsigned int`) and the new limit (EINVAL).
pub fn prlimit64(pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    let new = if new != 0 {
        Some(read_user::<[u64; 2]>(new)?)
    } else {
        None
    };
    if pid as i32 != 0 {
        let pid = u32::try_from(pid as i32).map_err(|_| ESRCH)?;
        crate::proc::find(pid).ok_or(ESRCH)?;
    }
    let resource = u64::from(resource as u32);
    if resource >= RLIMIT_NLIMITS {
        return Err(EINVAL);
    }
    if let Some([soft, hard]) = new {
        if soft > hard {
            return Err(EINVAL);
        }
        if [soft, hard] != limit(resource) {
            return Err(EPERM);
        }
    }
    if old != 0 {
        write_user(old, &limit(resource))?;
    }
    Ok(0)
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

/// `getrusage`: CPU time from timer ticks, minor faults counted by the fault handler; no
/// major faults (there is no paging from disk). `RUSAGE_CHILDREN` sums the children collected
/// with `wait4`/`waitid` (and what they collected).
pub fn getrusage(who: i32, out: u64) -> SysResult {
    let task = crate::sched::current();
    let process = super::thread::process();
    let (ticks, minflt) = match who {
        RUSAGE_SELF => crate::proc::wait::usage_of(process),
        RUSAGE_THREAD => (task.ticks.load(Ordering::Relaxed), 0),
        RUSAGE_CHILDREN => crate::proc::wait::children_usage(process),
        _ => return Err(EINVAL),
    };
    write_user(out, &rusage(ticks, minflt))?;
    Ok(0)
}

/// `struct rusage` with `ticks` of CPU time (as user time) and `minflt` minor faults: ru_utime,
/// ru_stime (timevals), then 14 longs: ru_maxrss, ru_ixrss, ru_idrss, ru_isrss, ru_minflt, ...
pub(super) fn rusage(ticks: u64, minflt: u64) -> [u64; 18] {
    let tick_us = 1_000_000 / u64::from(crate::arch::apic::timer_hz());
    let us = ticks * tick_us;
    let mut usage = [0u64; 18];
    usage[0] = us / 1_000_000;
    usage[1] = us % 1_000_000;
    usage[8] = minflt;
    usage
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_CAPBSET_READ: u64 = 23;
const PR_CAPBSET_DROP: u64 = 24;
const PR_GET_NAME: u64 = 16;
const PR_SET_CHILD_SUBREAPER: u64 = 36;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;
const PR_SET_THP_DISABLE: u64 = 41;
const PR_GET_THP_DISABLE: u64 = 42;

/// `prctl(option, argument, more)`: `more` are the third to fifth arguments, which the options
/// that take none want zero.
pub fn prctl(option: u64, argument: u64, more: [u64; 3]) -> SysResult {
    let task = crate::sched::current();
    // `int option`.
    match option as u32 as u64 {
        // Once set, for good: `execve` cannot grant privileges (none does here: there are no
        // set-user-ID files); fork and clone pass it on.
        PR_SET_NO_NEW_PRIVS => {
            if argument != 1 || more != [0; 3] {
                return Err(EINVAL);
            }
            super::thread::process()
                .no_new_privs
                .store(true, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if argument != 0 || more != [0; 3] {
                return Err(EINVAL);
            }
            Ok(u64::from(
                super::thread::process()
                    .no_new_privs
                    .load(Ordering::Relaxed),
            ))
        }
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            let length = match strncpy_from_user(&mut name[..15], argument) {
                Ok(length) => length,
                // Linux copies at most 15 bytes and terminates: a longer name is cut.
                Err(error) if error == super::errno::ENAMETOOLONG => 15,
                Err(error) => return Err(error),
            };
            task.set_name(core::str::from_utf8(&name[..length]).unwrap_or("?"));
            Ok(0)
        }
        PR_GET_NAME => {
            let mut name = [0u8; 16];
            let current = task.name();
            let length = current.len().min(15);
            name[..length].copy_from_slice(&current.as_bytes()[..length]);
            copy_to_user(argument, &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            if argument > 64 {
                return Err(EINVAL);
            }
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            write_user(argument, &0u32)?;
            Ok(0)
        }
        // Whether capability `argument` is in the bounding set; EINVAL for one Linux does
        // not know.
        PR_CAPBSET_READ => {
            let bit = Capabilities::bit(argument).ok_or(EINVAL)?;
            let capabilities = super::thread::process().capabilities.lock();
            Ok(u64::from(capabilities.bounding & bit != 0))
        }
        // Drops capability `argument` from the bounding set, for good: the next `execve`
        // grants it no more. Needs `CAP_SETPCAP` (checked first, as Linux does).
        PR_CAPBSET_DROP => {
            let mut capabilities = super::thread::process().capabilities.lock();
            if capabilities.effective & CAP_SETPCAP == 0 {
                return Err(EPERM);
            }
            capabilities.bounding &= !Capabilities::bit(argument).ok_or(EINVAL)?;
            Ok(0)
        }
        // The orphans among the caller's descendants come to it (any nonzero argument).
        PR_SET_CHILD_SUBREAPER => {
            super::thread::process()
                .child_subreaper
                .store(argument != 0, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let subreaper = super::thread::process()
                .child_subreaper
                .load(Ordering::Relaxed);
            write_user(argument, &i32::from(subreaper))?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(u64::from(
            super::thread::process().dumpable.load(Ordering::Relaxed),
        )),
        // 0 or 1 (Linux's `SUID_DUMP_DISABLE`, `SUID_DUMP_USER`); its third value is for the
        // kernel's own use.
        PR_SET_DUMPABLE => {
            if argument > 1 {
                return Err(EINVAL);
            }
            super::thread::process()
                .dumpable
                .store(argument == 1, Ordering::Relaxed);
            Ok(0)
        }
        // There are no transparent huge pages: the setting is accepted and reads as set.
        PR_SET_THP_DISABLE => Ok(0),
        PR_GET_THP_DISABLE => Ok(1),
        _ => Err(EINVAL),
    }
}

const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;

pub fn getrandom(buf: u64, len: u64, flags: u64) -> SysResult {
    // `unsigned int flags`.
    let flags = u64::from(flags as u32);
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE
    {
        return Err(EINVAL);
    }
    // Linux cuts the length before it checks the buffer (`import_ubuf`), and fills up to a
    // fault.
    let len = len.min(super::transfer::MAX_RW_COUNT);
    super::transfer::check_buffer(buf, len)?;
    super::transfer::to_user(buf, len, crate::random::fill)
}

const REBOOT_MAGIC1: u64 = 0xfee1_dead;
const REBOOT_MAGIC2: [u64; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
const REBOOT_CMD_RESTART: u64 = 0x0123_4567;
const REBOOT_CMD_HALT: u64 = 0xcdef_0123;
const REBOOT_CMD_POWER_OFF: u64 = 0x4321_fedc;
const REBOOT_CMD_CAD_ON: u64 = 0x89ab_cdef;
const REBOOT_CMD_CAD_OFF: u64 = 0;

/// `reboot`: power off and halt end the machine (under QEMU: leave it, with success); the
/// Ctrl-Alt-Del settings are accepted.
pub fn reboot(magic1: u64, magic2: u64, command: u64) -> SysResult {
    if magic1 != REBOOT_MAGIC1 || !REBOOT_MAGIC2.contains(&magic2) {
        return Err(EINVAL);
    }
    match command as u32 as u64 {
        REBOOT_CMD_POWER_OFF | REBOOT_CMD_HALT | REBOOT_CMD_RESTART => {
            log::info!(
                "{}[{}]: reboot({:#x}): powering off",
                crate::sched::current().name(),
                super::thread::process().pid,
                command
            );
            crate::debug_keys::print_statistics_if_asked();
            crate::arch::exit(crate::arch::ExitCode::Success)
        }
        REBOOT_CMD_CAD_ON | REBOOT_CMD_CAD_OFF => Ok(0),
        _ => Err(EINVAL),
    }
}
