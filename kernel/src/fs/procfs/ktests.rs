//! In-kernel tests of `/proc` read through the VFS (a running process's files) and of the
//! mount table (mount, busy and lazy unmounts).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::fs::dentry::{self, Dentry, Follow};
use crate::fs::file::{File, O_RDONLY};
use crate::fs::{FileKind, FsKind};
use crate::ktest;
use crate::proc::Process;
use crate::proc::exec::{SpawnOptions, spawn};
use crate::proc::signal::{SI_KERNEL, SIGKILL, SigInfo, send_signal_to_process};
use crate::syscall::errno::{EBUSY, EINVAL, ENOENT, ENOTDIR, Errno};

fn resolve(path: &str) -> Result<Arc<Dentry>, Errno> {
    dentry::resolve(dentry::root(), path, Follow::Yes)
}

/// The whole text of the file at `path`, read seven bytes at a time (offsets must line up).
fn read_all(path: &str) -> Result<Vec<u8>, Errno> {
    let file = File::open(resolve(path)?, O_RDONLY)?;
    let mut text = Vec::new();
    let mut piece = [0u8; 7];
    loop {
        let count = file.inode().read_at(&file, text.len() as u64, &mut piece)?;
        if count == 0 {
            return Ok(text);
        }
        text.extend_from_slice(&piece[..count]);
    }
}

fn read_text(path: &str) -> String {
    let bytes = read_all(path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
    String::from_utf8(bytes).unwrap_or_else(|_| panic!("{path} is not text"))
}

/// Starts `/bin/faulter sleep MS`: two threads that sleep, then exit 0.
fn sleeper(ms: &str) -> Arc<Process> {
    spawn(
        "/bin/faulter",
        &[b"/bin/faulter", b"sleep", ms.as_bytes()],
        SpawnOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

ktest! {
    timeout_ms = 60_000;
    /// A running process's `stat`, `status`, `cmdline`, `task/` and `exe` read through the VFS
    /// say what the process is; once it is gone, its directory is too.
    fn proc_pid_files_of_a_running_process() {
        let process = sleeper("3000");
        let pid = process.pid;
        for _ in 0..200 {
            if process.thread_count() == 2 {
                break;
            }
            let _ = crate::sched::timer::sleep_ns(10_000_000);
        }
        let stat = read_text(&format!("/proc/{pid}/stat"));
        let head = format!("{pid} (faulter) ");
        assert!(stat.starts_with(&head), "stat: {stat:?}");
        assert!(stat.ends_with('\n'), "stat: {stat:?}");
        let fields: Vec<&str> = stat[head.len()..].split_whitespace().collect();
        assert_eq!(fields.len() + 2, 52, "stat: {stat:?}");
        assert!(matches!(fields[0], "S" | "R"), "state: {stat:?}");
        // ppid 0 (the kernel started it), its own group and session, 2 threads.
        assert_eq!(&fields[1..4], &["0", &format!("{pid}"), &format!("{pid}")]);
        assert_eq!(fields[17], "2", "num_threads: {stat:?}");

        let status = read_text(&format!("/proc/{pid}/status"));
        for line in ["Name:\tfaulter\n", &format!("Pid:\t{pid}\n"), "Threads:\t2\n"] {
            assert!(status.contains(line), "{line:?} not in {status}");
        }
        let cmdline = read_all(&format!("/proc/{pid}/cmdline")).expect("cmdline");
        assert_eq!(cmdline, b"/bin/faulter\0sleep\x003000\0");
        let exe = resolve(&format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(exe.path(), "/bin/faulter");
        let task = resolve(&format!("/proc/{pid}/task")).expect("task/");
        let threads = task.inode().entries(0).expect("task/ lists");
        assert_eq!(threads.len(), 2);
        assert_eq!(threads[0].name, format!("{pid}"));
        assert_eq!(
            resolve(&format!("/proc/{pid}")).expect("PID/").inode().stat().ino,
            task.child(&threads[0].name).expect("task/PID").parent().expect("task/")
                .parent().expect("PID/").inode().stat().ino,
        );

        send_signal_to_process(&process, SIGKILL, SigInfo::new(SIGKILL, SI_KERNEL, [0; 4]))
            .expect("SIGKILL is sent");
        assert!(process.exited.wait_timeout(10_000_000_000), "the sleeper lives on");
        // Nobody waits for it: the kernel collected it.
        assert_eq!(resolve(&format!("/proc/{pid}/stat")).err(), Some(ENOENT));
    }
}

ktest! {
    /// The system files say what the kernel knows: as many `processor` blocks and `cpuN` lines
    /// as CPUs are online, the memory in `meminfo`, `/proc` in the mount table.
    fn proc_system_files_describe_the_machine() {
        let cpus = crate::arch::percpu::online_count();
        let cpuinfo = read_text("/proc/cpuinfo");
        assert_eq!(cpuinfo.lines().filter(|l| l.starts_with("processor\t: ")).count(), cpus);
        let stat = read_text("/proc/stat");
        assert!(stat.starts_with("cpu  "), "{stat}");
        let numbered = stat.lines().filter(|l| {
            l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        });
        assert_eq!(numbered.count(), cpus);
        let total_kib = crate::mm::frame::stats().total_frames * 4;
        assert!(read_text("/proc/meminfo").contains(&format!("MemTotal:       {total_kib:8} kB\n")));
        // A kernel thread has no `/proc/self`: the table's text, as a process reads it.
        assert_eq!(resolve("/proc/self").err(), Some(ENOENT));
        let mounts = super::system::mounts();
        for line in ["rootfs / tmpfs rw,relatime 0 0\n", "proc /proc proc rw,relatime 0 0\n"] {
            assert!(mounts.contains(line), "{line:?} not in {mounts}");
        }
        // Linux's CPU-list format: a range, or the one CPU alone.
        let online = read_text("/sys/devices/system/cpu/online");
        let expected = match cpus {
            1 => String::from("0\n"),
            _ => format!("0-{}\n", cpus - 1),
        };
        assert_eq!(online, expected);
    }
}

ktest! {
    /// `mount` puts a new file system on a directory, which the walk then reaches and the
    /// table lists; `unmount` refuses while a file in it is open (unless lazy) and takes it
    /// away; the errors are Linux's.
    fn mount_and_unmount_follow_the_rules() {
        let tmp = resolve("/tmp").expect("/tmp");
        let point = tmp.create("ktest-mount", FileKind::Directory, 0o755, None).expect("mkdir");
        dentry::mount(&point, FsKind::Tmpfs, "scratch", dentry::MS_NOSUID).expect("mount");
        let root = resolve("/tmp/ktest-mount").expect("the mount's root");
        assert!(!Arc::ptr_eq(&root, &point), "the walk steps onto the mounted root");
        assert_eq!(root.path(), "/tmp/ktest-mount");
        let line = "scratch /tmp/ktest-mount tmpfs rw,nosuid,relatime 0 0\n";
        assert!(super::system::mounts().contains(line));
        let file = root.create("f", FileKind::Regular, 0o644, None).expect("a file inside");
        let open = File::open(file, O_RDONLY).expect("open");
        assert_eq!(dentry::unmount(&root, false).err(), Some(EBUSY));
        drop(open);
        dentry::unmount(&root, false).expect("unmount once nothing is open");
        assert!(!super::system::mounts().contains(line));
        assert_eq!(dentry::unmount(&point, false).err(), Some(EINVAL), "nothing mounted");
        // Lazily, even while in use.
        dentry::mount(&point, FsKind::Proc, "proc", 0).expect("mount proc");
        let proc_root = resolve("/tmp/ktest-mount").expect("the proc root");
        let busy = resolve("/tmp/ktest-mount/cpuinfo").expect("cpuinfo");
        assert_eq!(dentry::unmount(&proc_root, false).err(), Some(EBUSY));
        dentry::unmount(&proc_root, true).expect("lazy unmount");
        drop(busy);
        drop((root, proc_root));
        let regular = resolve("/etc/cmdline").expect("a file");
        assert_eq!(dentry::mount(&regular, FsKind::Tmpfs, "x", 0).err(), Some(ENOTDIR));
        assert_eq!(dentry::mount(dentry::root(), FsKind::Tmpfs, "x", 0).err(), Some(EBUSY));
        assert_eq!(dentry::unmount(dentry::root(), false).err(), Some(EBUSY));
        tmp.unlink("ktest-mount", true).expect("rmdir");
    }
}
