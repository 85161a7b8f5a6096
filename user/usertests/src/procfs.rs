//! /proc and /sys as programs read them (ps, top, free, hwloc): this process's files against
//! what the system calls say (getpid, getppid, PR_GET_NAME, getcwd, sched_getaffinity), the
//! system files' formats, statfs's magic numbers, and mount and umount2 with their errors.
//!
//! Under Linux the suite runs as /init, which mounts proc and sysfs first
//! (`urt::init::mount_pseudo_filesystems`); the project's kernel mounts them at boot.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

use urt::ktap::TestResult;
use urt::sys::{self, AT_FDCWD, Errno, S_IFDIR, S_IFMT};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{Fd, cstring, dir_names, read_text, readlink, stat};

const PROC_SUPER_MAGIC: u64 = 0x9fa0;
const SYSFS_MAGIC: u64 = 0x6265_6572;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The calling thread's name (PR_GET_NAME): what /proc calls comm.
fn comm() -> String {
    let mut name = [0u8; 16];
    let _ = sys::prctl(sys::PR_GET_NAME, name.as_mut_ptr() as usize, 0, 0, 0);
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..len]).into_owned()
}

/// The value after `key:` on its line of a `Key:\tvalue` file.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// The fields of /proc/self/stat after `(comm)`: the state is the first (field 3).
fn stat_fields_after_comm(text: &str) -> Vec<&str> {
    let after = text.rfind(") ").map_or("", |at| &text[at + 2..]);
    after.split_whitespace().collect()
}

/// `statfs(path).f_type`.
fn fs_magic(path: &CStr) -> Result<u64, Errno> {
    let mut words = [0u64; 15];
    sys::statfs(path.as_ptr() as usize, words.as_mut_ptr() as usize)?;
    Ok(words[0])
}

/// How many CPUs a list such as `0-3,6\n` names.
fn cpu_list_len(text: &str) -> Option<usize> {
    text.trim_end()
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((first, last)) => {
                Some(last.parse::<usize>().ok()? + 1 - first.parse::<usize>().ok()?)
            }
            None => part.parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

pub fn proc_self_links_to_the_process() -> TestResult {
    let (pid, tid) = (sys::getpid(), sys::gettid());
    check_eq!(check_ok!(readlink(c"/proc/self")), format!("{pid}"));
    check_eq!(
        check_ok!(readlink(c"/proc/thread-self")),
        format!("{pid}/task/{tid}")
    );
    let own = check_ok!(stat(c"/proc/self"));
    check_eq!(own.st_mode & S_IFMT, S_IFDIR);
    let by_pid = check_ok!(stat(&cstring(&format!("/proc/{pid}"))));
    check_eq!((own.st_dev, own.st_ino), (by_pid.st_dev, by_pid.st_ino));
    check_err!(stat(c"/proc/self/no-such-file"), Errno::ENOENT);
    check_err!(stat(c"/proc/0"), Errno::ENOENT);
    let tasks = check_ok!(dir_names(c"/proc/self/task"));
    check!(
        tasks.contains(&format!("{tid}")),
        "/proc/self/task: {tasks:?}"
    );
    let listed = check_ok!(dir_names(c"/proc"));
    for name in [format!("{pid}"), "self".into(), "meminfo".into()] {
        check!(listed.contains(&name), "/proc has no {name}");
    }
    Ok(())
}

pub fn proc_self_status_names_the_process() -> TestResult {
    let status = check_ok!(read_text(c"/proc/self/status"));
    let (pid, ppid) = (format!("{}", sys::getpid()), format!("{}", sys::getppid()));
    let name = comm();
    check_eq!(field(&status, "Name"), Some(name.as_str()));
    check_eq!(field(&status, "Pid"), Some(pid.as_str()));
    check_eq!(field(&status, "Tgid"), Some(pid.as_str()));
    check_eq!(field(&status, "PPid"), Some(ppid.as_str()));
    check!(
        field(&status, "State").is_some_and(|s| s.starts_with("R (running)")),
        "{status}"
    );
    let threads = field(&status, "Threads").and_then(|t| t.parse::<usize>().ok());
    check!(threads.is_some_and(|t| t >= 1), "{status}");
    let rss = field(&status, "VmRSS").and_then(|v| v.strip_suffix(" kB"));
    check!(
        rss.and_then(|kib| kib.trim().parse::<u64>().ok())
            .is_some_and(|kib| kib > 0),
        "{status}"
    );
    Ok(())
}

pub fn proc_self_stat_has_linux_fields() -> TestResult {
    let text = check_ok!(read_text(c"/proc/self/stat"));
    let head = format!("{} ({}) R {} ", sys::getpid(), comm(), sys::getppid());
    check!(text.starts_with(&head), "{text:?} does not start {head:?}");
    check!(text.ends_with('\n'), "{text:?}");
    let fields = stat_fields_after_comm(&text);
    // Fields 3 (state) to 52 (exit_code).
    check_eq!(fields.len(), 50, "{text:?}");
    let number = |n: usize| fields[n - 3].parse::<u64>().unwrap_or(u64::MAX);
    check_eq!(number(5), sys::getpgrp() as u64, "pgrp");
    check_eq!(number(6), sys::getsid(0).unwrap_or(0) as u64, "session");
    check!(number(20) >= 1, "num_threads: {text:?}");
    check!(number(23) > 0 && number(24) > 0, "vsize, rss: {text:?}");
    let uptime = check_ok!(read_text(c"/proc/uptime"));
    let seconds: u64 = uptime
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    check!(
        number(22) <= (seconds + 1) * 100,
        "starttime {} after uptime {uptime:?}",
        number(22)
    );
    Ok(())
}

pub fn proc_self_statm_counts_pages() -> TestResult {
    let text = check_ok!(read_text(c"/proc/self/statm"));
    let pages: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    check_eq!(pages.len(), 7, "{text:?}");
    check!(pages[0] >= pages[1] && pages[1] > 0, "{text:?}");
    check!(text.ends_with('\n'));
    Ok(())
}

/// (`cmdline` and `comm` themselves: `devproc::proc_self_cmdline_and_comm`.)
pub fn proc_self_status_reads_in_pieces_and_seeks() -> TestResult {
    // Reading in small pieces gives the same bytes (the text is made once, at open).
    let fd = check_ok!(Fd::open(c"/proc/self/status", sys::O_RDONLY, 0));
    let mut pieces = Vec::new();
    let mut piece = [0u8; 5];
    loop {
        let n = check_ok!(sys::read(fd.0, piece.as_mut_ptr() as usize, piece.len()));
        if n == 0 {
            break;
        }
        pieces.extend_from_slice(&piece[..n]);
    }
    check!(pieces.starts_with(b"Name:\t"), "status read in pieces");
    check_eq!(check_ok!(sys::lseek(fd.0, 0, 0)), 0);
    let mut first = [0u8; 5];
    check_eq!(
        check_ok!(sys::read(fd.0, first.as_mut_ptr() as usize, 5)),
        5
    );
    check_eq!(&first, b"Name:");
    Ok(())
}

pub fn proc_self_fd_lists_and_links() -> TestResult {
    let fd = check_ok!(Fd::open(
        c"/proc/self/status",
        sys::O_RDONLY | sys::O_CLOEXEC,
        0
    ));
    let names = check_ok!(dir_names(c"/proc/self/fd"));
    for n in [0, 1, 2, fd.0] {
        check!(names.contains(&format!("{n}")), "fd/ has no {n}: {names:?}");
    }
    let link = |n: usize| readlink(&cstring(&format!("/proc/self/fd/{n}")));
    check_eq!(
        check_ok!(link(fd.0)),
        format!("/proc/{}/status", sys::getpid())
    );
    // The link opens the file itself.
    let again = check_ok!(Fd::open(
        &cstring(&format!("/proc/self/fd/{}", fd.0)),
        sys::O_RDONLY | sys::O_CLOEXEC,
        0
    ));
    let (a, b) = (check_ok!(again.stat()), check_ok!(fd.stat()));
    check_eq!((a.st_dev, a.st_ino), (b.st_dev, b.st_ino));
    let dir = check_ok!(Fd::open(
        c"/proc",
        sys::O_RDONLY | sys::O_DIRECTORY | sys::O_CLOEXEC,
        0
    ));
    check_eq!(check_ok!(link(dir.0)), "/proc");
    let closed = fd.0;
    drop(fd);
    check_err!(link(closed), Errno::ENOENT);
    Ok(())
}

/// The working directory (getcwd).
fn cwd() -> Result<String, Errno> {
    let mut path = [0u8; 4096];
    let len = sys::getcwd(path.as_mut_ptr() as usize, path.len())?;
    Ok(String::from_utf8_lossy(&path[..len.saturating_sub(1)]).into_owned())
}

pub fn proc_self_cwd_and_exe() -> TestResult {
    let cwd = check_ok!(cwd());
    check_eq!(check_ok!(readlink(c"/proc/self/cwd")), cwd);
    check_ok!(sys::chdir(c"/proc/self".as_ptr() as usize));
    let moved = readlink(c"/proc/self/cwd");
    check_ok!(sys::chdir(cstring(&cwd).as_ptr() as usize));
    check_eq!(check_ok!(moved), format!("/proc/{}", sys::getpid()));
    let exe = check_ok!(readlink(c"/proc/self/exe"));
    check!(exe.starts_with('/'), "exe: {exe:?}");
    let (through_link, by_path) = (
        check_ok!(stat(c"/proc/self/exe")),
        check_ok!(stat(&cstring(&exe))),
    );
    check_eq!(
        (through_link.st_dev, through_link.st_ino),
        (by_path.st_dev, by_path.st_ino)
    );
    check_eq!(check_ok!(readlink(c"/proc/self/root")), "/");
    Ok(())
}

pub fn proc_meminfo_cpuinfo_uptime_stat() -> TestResult {
    let meminfo = check_ok!(read_text(c"/proc/meminfo"));
    let kib = |key: &str| {
        field(&meminfo, key)
            .and_then(|v| v.strip_suffix(" kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let (total, free) = (kib("MemTotal"), kib("MemFree"));
    check!(
        total.is_some_and(|t| t > 0) && free.is_some_and(|f| Some(f) <= total),
        "{meminfo}"
    );
    check!(meminfo.starts_with("MemTotal:"), "{meminfo}");
    let cpus = sys::cpu_count();
    let cpuinfo = check_ok!(read_text(c"/proc/cpuinfo"));
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor\t: "))
        .count();
    check_eq!(processors, cpus, "processor blocks in /proc/cpuinfo");
    for key in ["vendor_id", "model name", "flags"] {
        check!(
            cpuinfo.lines().any(|l| l.starts_with(key)),
            "no {key} in /proc/cpuinfo"
        );
    }
    let uptime = check_ok!(read_text(c"/proc/uptime"));
    let numbers: Vec<&str> = uptime.split_whitespace().collect();
    check_eq!(numbers.len(), 2, "{uptime:?}");
    check!(
        numbers
            .iter()
            .all(|n| n.split_once('.').is_some_and(|(_, f)| f.len() == 2)),
        "{uptime:?}"
    );
    let stat = check_ok!(read_text(c"/proc/stat"));
    check!(stat.starts_with("cpu  "), "{stat}");
    let per_cpu = stat
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    check_eq!(per_cpu, cpus, "cpuN lines in /proc/stat");
    for key in ["btime ", "processes ", "procs_running ", "ctxt "] {
        check!(
            stat.lines().any(|l| l.starts_with(key)),
            "no {key} in {stat}"
        );
    }
    let loadavg = check_ok!(read_text(c"/proc/loadavg"));
    check_eq!(loadavg.split_whitespace().count(), 5, "{loadavg:?}");
    check!(check_ok!(read_text(c"/proc/version")).starts_with("Linux version "));
    check_eq!(check_ok!(read_text(c"/proc/sys/kernel/ostype")), "Linux\n");
    let filesystems = check_ok!(read_text(c"/proc/filesystems"));
    for name in ["proc", "sysfs", "tmpfs"] {
        check!(
            filesystems.lines().any(|l| l == format!("nodev\t{name}")),
            "{filesystems}"
        );
    }
    Ok(())
}

pub fn proc_mounts_lists_proc_and_sys() -> TestResult {
    for path in [c"/proc/mounts", c"/proc/self/mounts"] {
        let mounts = check_ok!(read_text(path));
        for (point, kind) in [("/proc", "proc"), ("/sys", "sysfs")] {
            check!(
                mounts.lines().any(|l| {
                    let words: Vec<&str> = l.split(' ').collect();
                    words.len() == 6 && words[1] == point && words[2] == kind
                }),
                "{path:?} has no {kind} on {point}: {mounts}"
            );
        }
    }
    let mountinfo = check_ok!(read_text(c"/proc/self/mountinfo"));
    check!(
        mountinfo
            .lines()
            .any(|l| l.contains(" /proc ") && l.contains(" - proc ")),
        "{mountinfo}"
    );
    Ok(())
}

pub fn sys_cpu_lists_and_topology() -> TestResult {
    let cpus = sys::cpu_count();
    let online = check_ok!(read_text(c"/sys/devices/system/cpu/online"));
    check_eq!(cpu_list_len(&online), Some(cpus), "online: {online:?}");
    for name in [c"possible", c"present"] {
        let path = cstring(&format!(
            "/sys/devices/system/cpu/{}",
            name.to_str().unwrap_or("")
        ));
        let text = check_ok!(read_text(&path));
        check!(
            cpu_list_len(&text).is_some_and(|n| n >= cpus) && text.ends_with('\n'),
            "{name:?}: {text:?}"
        );
    }
    let topology = "/sys/devices/system/cpu/cpu0/topology";
    for name in ["core_id", "physical_package_id"] {
        let text = check_ok!(read_text(&cstring(&format!("{topology}/{name}"))));
        check!(text.trim_end().parse::<u32>().is_ok(), "{name}: {text:?}");
    }
    let siblings = check_ok!(read_text(&cstring(&format!(
        "{topology}/core_siblings_list"
    ))));
    check!(
        cpu_list_len(&siblings).is_some_and(|n| n >= 1),
        "{siblings:?}"
    );
    check_ok!(read_text(&cstring(&format!("{topology}/thread_siblings"))));
    Ok(())
}

pub fn statfs_names_proc_and_sysfs() -> TestResult {
    check_eq!(check_ok!(fs_magic(c"/proc")), PROC_SUPER_MAGIC);
    check_eq!(check_ok!(fs_magic(c"/proc/self/status")), PROC_SUPER_MAGIC);
    check_eq!(check_ok!(fs_magic(c"/sys")), SYSFS_MAGIC);
    check_eq!(
        check_ok!(fs_magic(c"/sys/devices/system/cpu/online")),
        SYSFS_MAGIC
    );
    Ok(())
}

pub fn mount_and_umount2_rules() -> TestResult {
    let point = c"/ut-mount";
    let inside = c"/ut-mount/file";
    let path = |c: &CStr| c.as_ptr() as usize;
    let home = cstring(&check_ok!(cwd()));
    let _ = sys::umount2(path(point), sys::MNT_DETACH);
    let _ = sys::unlinkat(AT_FDCWD, path(point), sys::AT_REMOVEDIR);
    check_ok!(sys::mkdir(path(point), 0o755));
    let result = (|| -> TestResult {
        check_ok!(sys::mount(
            path(c"scratch"),
            path(point),
            path(c"tmpfs"),
            0,
            0
        ));
        check_eq!(check_ok!(fs_magic(point)), TMPFS_MAGIC);
        let mounts = check_ok!(read_text(c"/proc/mounts"));
        check!(
            mounts
                .lines()
                .any(|l| l.starts_with("scratch /ut-mount tmpfs ")),
            "{mounts}"
        );
        let file = check_ok!(Fd::open(
            inside,
            sys::O_WRONLY | sys::O_CREAT | sys::O_CLOEXEC,
            0o644
        ));
        check_err!(
            sys::mount(path(c"x"), path(inside), path(c"tmpfs"), 0, 0),
            Errno::ENOTDIR
        );
        check_err!(sys::umount2(path(point), 0), Errno::EBUSY);
        drop(file);
        check_ok!(sys::umount2(path(point), 0));
        check_err!(stat(inside), Errno::ENOENT);
        check_err!(sys::umount2(path(point), 0), Errno::EINVAL);
        // Busy with a working directory inside; a lazy unmount goes all the same.
        check_ok!(sys::mount(0, path(point), path(c"proc"), 0, 0));
        check_ok!(sys::chdir(path(point)));
        let busy = sys::umount2(path(point), 0);
        check_ok!(sys::chdir(path(&home)));
        check_err!(busy, Errno::EBUSY);
        check_ok!(sys::umount2(path(point), sys::MNT_DETACH));
        check_err!(
            sys::mount(0, path(point), path(c"no-such-fs"), 0, 0),
            Errno::ENODEV
        );
        check_err!(sys::mount(0, path(point), 0, 0, 0), Errno::EINVAL);
        check_err!(
            sys::mount(0, path(c"/ut-no-such-dir"), path(c"tmpfs"), 0, 0),
            Errno::ENOENT
        );
        check_err!(sys::umount2(path(point), 0x100), Errno::EINVAL);
        Ok(())
    })();
    let _ = sys::umount2(path(point), sys::MNT_DETACH);
    check_ok!(sys::unlinkat(AT_FDCWD, path(point), sys::AT_REMOVEDIR));
    result
}
