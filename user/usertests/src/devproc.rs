//! The device files (/dev/null, zero, full, random, urandom, tty, console, ttyS0 and the
//! terminal ioctls), /proc (self, its maps, status, stat, statm, cmdline, comm and fd/, then
//! meminfo, cpuinfo, uptime, stat and mounts) and the CPU lists of /sys.
//!
//! What the files say about this process is compared with what the system calls say (getpid,
//! PR_GET_NAME, argv, sched_getaffinity), never with fixed values: Linux runs this program as
//! /init, the project's kernel as /bin/usertests.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

use urt::ktap::TestResult;
use urt::sys::{self, Errno, PAGE_SIZE, S_IFCHR, S_IFDIR, S_IFMT};
use urt::{check, check_eq, check_err, check_ok, skip};

use crate::process::{Child, is_top};
use crate::util::{
    Fd, Mapping, Scratch, cstring, dir_names, pipe, read_file, read_text, readlink, stat,
};

const RW: usize = sys::O_RDWR | sys::O_CLOEXEC;

/// `st_rdev` of device `major:minor` (Linux's encoding).
pub(crate) fn device(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// Checks that `path` is the character device `major:minor`.
fn check_char_device(path: &CStr, major: u64, minor: u64) -> TestResult {
    let st = check_ok!(stat(path));
    check_eq!(
        st.st_mode & S_IFMT,
        S_IFCHR,
        "{path:?} is a character device"
    );
    check_eq!(
        st.st_rdev,
        device(major, minor),
        "{path:?} is {major}:{minor}"
    );
    Ok(())
}

// ---- /dev ----

pub fn dev_null_and_zero() -> TestResult {
    check_char_device(c"/dev/null", 1, 3)?;
    check_char_device(c"/dev/zero", 1, 5)?;
    let null = check_ok!(Fd::open(c"/dev/null", RW, 0));
    let mut buf = [0xffu8; 64];
    let p = buf.as_mut_ptr() as usize;
    check_eq!(
        check_ok!(sys::read(null.0, p, 64)),
        0,
        "/dev/null reads as empty"
    );
    check_eq!(
        check_ok!(sys::write(null.0, p, 64)),
        64,
        "/dev/null takes everything"
    );
    let zero = check_ok!(Fd::open(c"/dev/zero", RW, 0));
    check_eq!(check_ok!(sys::read(zero.0, p, 64)), 64);
    check!(buf.iter().all(|&b| b == 0), "/dev/zero gave {buf:?}");
    check_eq!(check_ok!(sys::write(zero.0, p, 64)), 64);
    Ok(())
}

pub fn dev_full_is_full() -> TestResult {
    check_char_device(c"/dev/full", 1, 7)?;
    let full = check_ok!(Fd::open(c"/dev/full", RW, 0));
    let mut buf = [0xffu8; 16];
    let p = buf.as_mut_ptr() as usize;
    check_err!(sys::write(full.0, p, 16), Errno::ENOSPC);
    check_eq!(check_ok!(sys::read(full.0, p, 16)), 16);
    check!(buf.iter().all(|&b| b == 0), "/dev/full reads as zeros");
    Ok(())
}

pub fn dev_random_and_urandom() -> TestResult {
    check_char_device(c"/dev/random", 1, 8)?;
    check_char_device(c"/dev/urandom", 1, 9)?;
    for path in [c"/dev/random", c"/dev/urandom"] {
        let fd = check_ok!(Fd::open(path, sys::O_RDONLY | sys::O_CLOEXEC, 0));
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        check_eq!(check_ok!(sys::read(fd.0, a.as_mut_ptr() as usize, 64)), 64);
        check_eq!(check_ok!(sys::read(fd.0, b.as_mut_ptr() as usize, 64)), 64);
        check!(a != [0; 64] && a != b, "{path:?} gave {a:?} then {b:?}");
    }
    Ok(())
}

pub fn dev_tty_nodes() -> TestResult {
    check_char_device(c"/dev/tty", 5, 0)?;
    check_char_device(c"/dev/console", 5, 1)?;
    check_char_device(c"/dev/ttyS0", 4, 64)?;
    check_eq!(check_ok!(stat(c"/dev")).st_mode & S_IFMT, S_IFDIR);
    Ok(())
}

pub fn terminal_ioctls() -> TestResult {
    let mut termios = [0u8; 60];
    let mut winsize = [0u16; 4];
    let (t, w) = (termios.as_mut_ptr() as usize, winsize.as_mut_ptr() as usize);
    for fd in [0, 1] {
        match sys::ioctl(fd, sys::TCGETS, t) {
            Err(Errno::ENOTTY) if !is_top() => {
                skip!("fd {fd} is not a terminal (output redirected)")
            }
            r => check!(r.is_ok(), "TCGETS on fd {fd}: {r:?}"),
        }
        check_ok!(sys::ioctl(fd, sys::TIOCGWINSZ, w));
    }
    let s = check_ok!(Scratch::new("tty-ioctl"));
    let file = check_ok!(Fd::open(&check_ok!(s.file("f", b"")), RW, 0));
    let null = check_ok!(Fd::open(c"/dev/null", RW, 0));
    let (_r, pipe_w) = check_ok!(pipe(sys::O_CLOEXEC));
    for fd in [&file, &null, &pipe_w] {
        check_err!(sys::ioctl(fd.0, sys::TCGETS, t), Errno::ENOTTY);
        check_err!(sys::ioctl(fd.0, sys::TIOCGWINSZ, w), Errno::ENOTTY);
    }
    Ok(())
}

// ---- /proc: this process ----

/// The calling thread's name (PR_GET_NAME), which /proc calls comm.
fn comm() -> String {
    let mut name = [0u8; 16];
    let _ = sys::prctl(sys::PR_GET_NAME, name.as_mut_ptr() as usize, 0, 0, 0);
    let len = name.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&name[..len]).into_owned()
}

/// The value of `key` in a `Key:\tvalue` file such as /proc/self/status.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

pub fn proc_self_names_the_process() -> TestResult {
    let pid = sys::getpid();
    check_eq!(check_ok!(readlink(c"/proc/self")), format!("{pid}"));
    check_eq!(
        check_ok!(readlink(c"/proc/thread-self")),
        format!("{pid}/task/{}", sys::gettid())
    );
    check_eq!(check_ok!(stat(c"/proc/self")).st_mode & S_IFMT, S_IFDIR);
    check_eq!(
        check_ok!(stat(c"/proc/self")).st_ino,
        check_ok!(stat(&cstring(&format!("/proc/{pid}")))).st_ino
    );
    check_err!(stat(c"/proc/self/no-such-entry"), Errno::ENOENT);
    Ok(())
}

/// One line of /proc/self/maps.
struct MapsLine {
    start: usize,
    end: usize,
    perms: String,
    offset: usize,
    inode: u64,
    path: String,
}

fn maps() -> Result<Vec<MapsLine>, Errno> {
    let text = read_text(c"/proc/self/maps")?;
    let hex = |s: &str| usize::from_str_radix(s, 16).ok();
    let parse = |line: &str| {
        let mut words = line.split_whitespace();
        let (start, end) = words.next()?.split_once('-')?;
        let perms = words.next()?;
        let offset = words.next()?;
        let _device = words.next()?;
        let inode = words.next()?;
        let path = words.collect::<Vec<_>>().join(" ");
        Some(MapsLine {
            start: hex(start)?,
            end: hex(end)?,
            perms: perms.into(),
            offset: hex(offset)?,
            inode: inode.parse().ok()?,
            path,
        })
    };
    text.lines()
        .map(|l| parse(l).ok_or(Errno::EINVAL))
        .collect()
}

pub fn proc_self_maps_lists_mappings() -> TestResult {
    // An anonymous page between two inaccessible ones: a line of its own.
    let region = check_ok!(Mapping::new(3, sys::PROT_NONE));
    check_ok!(sys::mprotect(
        region.page(1),
        PAGE_SIZE,
        sys::PROT_READ | sys::PROT_WRITE
    ));
    let s = check_ok!(Scratch::new("maps"));
    let path = check_ok!(s.file("mapped", &[1u8; 2 * PAGE_SIZE]));
    let fd = check_ok!(Fd::open(&path, RW, 0));
    let ino = check_ok!(fd.stat()).st_ino;
    let shared = check_ok!(Mapping::file(
        fd.0,
        PAGE_SIZE,
        sys::PROT_READ,
        sys::MAP_SHARED,
        0
    ));
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    let private = check_ok!(Mapping::file(
        fd.0,
        PAGE_SIZE,
        rw,
        sys::MAP_PRIVATE,
        PAGE_SIZE
    ));
    let lines = check_ok!(maps());
    let find = |addr: usize| lines.iter().find(|l| l.start == addr);
    let anon = check_ok!(find(region.page(1)).ok_or(format!(
        "no line starts at the anonymous page {:#x}",
        region.page(1)
    )));
    check_eq!(anon.end, region.page(2));
    check_eq!(
        (anon.perms.as_str(), anon.offset, anon.inode),
        ("rw-p", 0, 0)
    );
    check!(
        anon.path.is_empty(),
        "an anonymous mapping with a path: {}",
        anon.path
    );
    let file = check_ok!(find(shared.addr).ok_or(format!(
        "no line for the shared file mapping at {:#x}",
        shared.addr
    )));
    check_eq!(file.end, shared.addr + PAGE_SIZE);
    check_eq!(
        (file.perms.as_str(), file.offset, file.inode),
        ("r--s", 0, ino)
    );
    let expected = s.path("mapped");
    check_eq!(file.path.as_str(), expected.to_str().unwrap_or(""));
    let copy = check_ok!(find(private.addr).ok_or(format!(
        "no line for the private file mapping at {:#x}",
        private.addr
    )));
    check_eq!((copy.perms.as_str(), copy.offset), ("rw-p", PAGE_SIZE));
    check_eq!(copy.path, file.path);
    Ok(())
}

pub fn proc_self_status_and_stat() -> TestResult {
    let (pid, ppid, name) = (sys::getpid(), sys::getppid(), comm());
    let status = check_ok!(read_text(c"/proc/self/status"));
    let (pid_text, ppid_text) = (format!("{pid}"), format!("{ppid}"));
    check_eq!(field(&status, "Name"), Some(name.as_str()));
    check_eq!(field(&status, "Pid"), Some(pid_text.as_str()));
    check_eq!(field(&status, "Tgid"), Some(pid_text.as_str()));
    check_eq!(field(&status, "PPid"), Some(ppid_text.as_str()));
    check!(
        field(&status, "State").is_some_and(|s| s.starts_with('R')),
        "{status}"
    );
    // stat: "PID (COMM) STATE PPID ...".
    let stat = check_ok!(read_text(c"/proc/self/stat"));
    let head = format!("{pid} ({name}) R {ppid} ");
    check!(
        stat.starts_with(&head),
        "/proc/self/stat: {stat:?}, expected {head:?}..."
    );
    check!(stat.ends_with('\n'));
    // statm: seven page counts; the program is resident.
    let statm = check_ok!(read_text(c"/proc/self/statm"));
    let pages: Vec<u64> = statm
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    check_eq!(pages.len(), 7, "/proc/self/statm: {statm:?}");
    check!(
        pages[0] >= pages[1] && pages[1] > 0,
        "/proc/self/statm: {statm:?}"
    );
    Ok(())
}

pub fn proc_self_cmdline_and_comm() -> TestResult {
    let mut expected = Vec::new();
    for i in 0..urt::start::argc() {
        expected.extend_from_slice(urt::start::arg(i).unwrap_or_default());
        expected.push(0);
    }
    check_eq!(check_ok!(read_file(c"/proc/self/cmdline")), expected);
    check_eq!(
        check_ok!(read_text(c"/proc/self/comm")),
        format!("{}\n", comm())
    );
    // A name set with PR_SET_NAME shows (in a child: ours stays).
    let mut child = check_ok!(Child::fork(|| {
        let _ = sys::prctl(sys::PR_SET_NAME, c"ut-comm".as_ptr() as usize, 0, 0, 0);
        let comm = read_text(c"/proc/self/comm");
        let status = read_text(c"/proc/self/status").unwrap_or_default();
        match comm {
            Ok(c) if c == "ut-comm\n" && field(&status, "Name") == Some("ut-comm") => 0,
            _ => 1,
        }
    }));
    check_eq!(
        check_ok!(child.end()),
        crate::process::End::Exited(0),
        "comm in a child"
    );
    Ok(())
}

pub fn proc_self_fd_lists_descriptors() -> TestResult {
    let s = check_ok!(Scratch::new("proc-fd"));
    let path = check_ok!(s.file("f", b""));
    let fd = check_ok!(Fd::open(&path, RW, 0));
    let names = check_ok!(dir_names(c"/proc/self/fd"));
    for n in [0, 1, 2, fd.0] {
        check!(
            names.contains(&format!("{n}")),
            "/proc/self/fd has no {n}: {names:?}"
        );
    }
    let link = |n: usize| readlink(&cstring(&format!("/proc/self/fd/{n}")));
    check_eq!(check_ok!(link(fd.0)), path.to_str().unwrap_or(""));
    let (r, _w) = check_ok!(pipe(sys::O_CLOEXEC));
    let ino = check_ok!(r.stat()).st_ino;
    check_eq!(check_ok!(link(r.0)), format!("pipe:[{ino}]"));
    let memfd = Fd(check_ok!(sys::memfd_create(
        c"ut".as_ptr() as usize,
        sys::MFD_CLOEXEC
    )));
    check_eq!(check_ok!(link(memfd.0)), "/memfd:ut (deleted)");
    // Opening the link opens the file itself.
    let again = check_ok!(Fd::open(
        &cstring(&format!("/proc/self/fd/{}", fd.0)),
        RW,
        0
    ));
    check_eq!(check_ok!(again.stat()).st_ino, check_ok!(fd.stat()).st_ino);
    let closed = fd.0;
    drop(fd);
    check_err!(link(closed), Errno::ENOENT);
    Ok(())
}

// ---- /proc: the system ----

pub fn proc_meminfo_and_uptime() -> TestResult {
    let meminfo = check_ok!(read_text(c"/proc/meminfo"));
    for key in ["MemTotal", "MemFree", "MemAvailable"] {
        let value = field(&meminfo, key).unwrap_or("");
        let kib = value
            .strip_suffix(" kB")
            .and_then(|n| n.trim().parse::<u64>().ok());
        check!(kib.is_some_and(|k| k > 0), "/proc/meminfo {key}: {value:?}");
    }
    let uptime = check_ok!(read_text(c"/proc/uptime"));
    let numbers: Vec<f64> = uptime
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    check_eq!(numbers.len(), 2, "/proc/uptime: {uptime:?}");
    check!(numbers[0] > 0.0, "/proc/uptime: {uptime:?}");
    Ok(())
}

/// The lines of `text` that start with `word` followed by a digit (cpu0, cpu1...).
fn numbered(text: &str, word: &str) -> usize {
    text.lines()
        .filter(|l| {
            l.strip_prefix(word)
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

pub fn proc_cpuinfo_and_stat_count_cpus() -> TestResult {
    let cpus = sys::cpu_count();
    let cpuinfo = check_ok!(read_text(c"/proc/cpuinfo"));
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    check_eq!(processors, cpus, "processor lines in /proc/cpuinfo");
    let stat = check_ok!(read_text(c"/proc/stat"));
    check!(
        stat.starts_with("cpu "),
        "/proc/stat begins {:?}",
        &stat[..stat.len().min(40)]
    );
    check_eq!(numbered(&stat, "cpu"), cpus, "cpuN lines in /proc/stat");
    Ok(())
}

pub fn proc_mounts_lists_root_and_proc() -> TestResult {
    let mounts = check_ok!(read_text(c"/proc/mounts"));
    let points: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    for point in ["/", "/proc"] {
        check!(
            points.contains(&point),
            "/proc/mounts has no {point}: {mounts}"
        );
    }
    Ok(())
}

/// The number of CPUs in a list such as `0-3,5\n`, if it is one.
fn cpu_list_count(text: &str) -> Option<usize> {
    text.trim_end_matches('\n')
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?),
            None => part.parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

pub fn sys_cpu_lists() -> TestResult {
    let cpus = sys::cpu_count();
    let mut counts = Vec::new();
    for name in ["online", "possible", "present"] {
        let path = cstring(&format!("/sys/devices/system/cpu/{name}"));
        let text = check_ok!(read_text(&path));
        check!(
            text.starts_with('0') && text.ends_with('\n'),
            "{name}: {text:?}"
        );
        let count = cpu_list_count(&text).ok_or(format!("{name}: {text:?} is not a CPU list"));
        counts.push(check_ok!(count));
    }
    check_eq!(counts[0], cpus, "online CPUs");
    check!(
        counts[1] >= cpus && counts[2] >= cpus,
        "possible, present: {counts:?}"
    );
    let core = check_ok!(read_text(c"/sys/devices/system/cpu/cpu0/topology/core_id"));
    check!(core.trim_end().parse::<u32>().is_ok(), "core_id: {core:?}");
    Ok(())
}
