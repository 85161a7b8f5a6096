//! Processes: `clone`/`fork`/`vfork`/`clone3` (threads go on to thread.rs), `wait4`, `waitid`,
//! and the process tree's identities: `getppid`, process groups and sessions.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::errno::{
    E2BIG, EACCES, EBADF, EFAULT, EINVAL, ENAMETOOLONG, ENOENT, ENOMEM, ENOTDIR, EPERM, ESRCH,
    SysResult,
};
use super::thread::{self, process};
use crate::arch::trap::TrapFrame;
use crate::arch::uaccess::{read_user, write_user};
use crate::proc::exec::SpawnOptions;
use crate::proc::signal::SIGCHLD;
use crate::proc::wait::{self, Kinds, Selector, WaitOptions};
use crate::proc::{self, Lineage, Process};
use crate::sched::{self, task::Task, task::UserThread};
use crate::sync::Completion;

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
const CLONE_IO: u64 = 0x8000_0000;
/// The exit signal's bits in `clone`'s flags.
const CSIGNAL: u64 = 0xff;

/// What a process-creating clone may ask for. `CLONE_FILES` shares the descriptor table,
/// `CLONE_FS` the working directory and umask (without them the child gets copies). A shared
/// address space (`CLONE_VM`, as `vfork` and `posix_spawn` use)
/// is supported; shared signal handlers between processes are not.
const FORK_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_VFORK
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID
    | CLONE_IO;

/// A clone request, from `clone`'s registers or `clone3`'s structure.
#[derive(Clone, Copy)]
pub struct CloneRequest {
    pub flags: u64,
    pub exit_signal: u64,
    /// The child's stack pointer; 0 keeps the caller's.
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
}

/// `clone(flags, stack, parent_tid, child_tid, tls)`.
pub fn clone(
    frame: &TrapFrame,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> SysResult {
    let request = CloneRequest {
        flags: flags & !CSIGNAL,
        exit_signal: flags & CSIGNAL,
        stack,
        parent_tid,
        child_tid,
        tls,
    };
    spawn(frame, &request)
}

/// `fork()`.
pub fn fork(frame: &TrapFrame) -> SysResult {
    spawn(frame, &fork_request(0))
}

/// `vfork()`: the child borrows the address space, and the caller sleeps until the child
/// calls `execve` or exits.
pub fn vfork(frame: &TrapFrame) -> SysResult {
    spawn(frame, &fork_request(CLONE_VM | CLONE_VFORK))
}

fn fork_request(flags: u64) -> CloneRequest {
    CloneRequest {
        flags,
        exit_signal: u64::from(SIGCHLD),
        stack: 0,
        parent_tid: 0,
        child_tid: 0,
        tls: 0,
    }
}

/// The size of `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`), and the first one.
const CLONE_ARGS_SIZE: u64 = 88;
const CLONE_ARGS_SIZE_VER0: u64 = 64;
/// The most entries of `clone3`'s `set_tid` (Linux's `MAX_PID_NS_LEVEL`).
const MAX_PID_NS_LEVEL: u64 = 32;

/// `clone3(args, size)`.
pub fn clone3(frame: &TrapFrame, args: u64, size: u64) -> SysResult {
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(EINVAL);
    }
    if size > 4096 {
        return Err(E2BIG);
    }
    let mut fields = [0u64; (CLONE_ARGS_SIZE / 8) as usize];
    let known = size.min(CLONE_ARGS_SIZE);
    for (index, field) in fields.iter_mut().enumerate().take((known / 8) as usize) {
        *field = read_user(args + index as u64 * 8)?;
    }
    // A newer caller's extra fields must be zero (Linux's `copy_struct_from_user`).
    let mut at = CLONE_ARGS_SIZE;
    while at < size {
        if read_user::<u8>(args + at)? != 0 {
            return Err(E2BIG);
        }
        at += 1;
    }
    let [
        flags,
        pidfd,
        child_tid,
        parent_tid,
        exit_signal,
        stack,
        stack_size,
        tls,
        set_tid,
        set_tid_size,
        cgroup,
    ] = fields;
    let _ = (pidfd, cgroup);
    // Linux's checks, in its order. A set_tid array is well formed with 1 to 32 entries;
    // choosing the new ids is not supported.
    if set_tid_size > MAX_PID_NS_LEVEL || (set_tid == 0) != (set_tid_size == 0) {
        return Err(EINVAL);
    }
    if exit_signal & !CSIGNAL != 0 || exit_signal > 64 {
        return Err(EINVAL);
    }
    // clone3 keeps the exit signal out of the flags, and CLONE_DETACHED is no flag of it.
    if flags & (CSIGNAL | CLONE_DETACHED) != 0 || set_tid_size != 0 {
        return Err(EINVAL);
    }
    if flags & CLONE_THREAD != 0 && exit_signal != 0 {
        return Err(EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(EINVAL);
    }
    let request = CloneRequest {
        flags,
        exit_signal,
        stack: stack.wrapping_add(stack_size),
        parent_tid,
        child_tid,
        tls,
    };
    spawn(frame, &request)
}

/// A thread or a process, as `request` asks.
fn spawn(frame: &TrapFrame, request: &CloneRequest) -> SysResult {
    let flags = request.flags;
    // Linux's rules: threads share signal handlers, which need a shared address space.
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0
        || flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0
    {
        return Err(EINVAL);
    }
    if flags & CLONE_THREAD != 0 {
        return thread::clone_thread(frame, request);
    }
    if flags & CLONE_SIGHAND != 0 {
        log::warn!(
            "{}: clone with CLONE_SIGHAND but without CLONE_THREAD (processes sharing signal handlers) is not supported",
            sched::current().name()
        );
        return Err(EINVAL);
    }
    if flags & !FORK_FLAGS & !CLONE_PIDFD != 0 || flags & CLONE_PIDFD != 0 {
        return Err(EINVAL);
    }
    if request.exit_signal > 64 {
        return Err(EINVAL);
    }
    fork_process(frame, request)
}

/// Starts a child process: a copy of the caller's address space (or, with `CLONE_VM`, the
/// same one), one thread that returns 0 from the call where the caller's returns the child's
/// pid.
fn fork_process(frame: &TrapFrame, request: &CloneRequest) -> SysResult {
    let flags = request.flags;
    let parent = process();
    let me = sched::current();
    let my_thread = me.user.as_ref().expect("a user thread");
    if flags & CLONE_SETTLS != 0 && request.tls >= crate::arch::syscall::USER_END {
        return Err(EPERM);
    }
    let shares_mm = flags & CLONE_VM != 0;
    let mm = if shares_mm {
        my_thread.mm.clone()
    } else {
        my_thread.mm.fork()?
    };
    let vfork_done = (flags & CLONE_VFORK != 0).then(|| Arc::new(Completion::new()));
    let lineage = Lineage {
        parent: Some(parent.clone()),
        exit_signal: request.exit_signal as u32,
        vfork_done: vfork_done.clone(),
        files: Some((
            if flags & CLONE_FILES != 0 {
                parent.files()
            } else {
                parent.files().copy()
            },
            if flags & CLONE_FS != 0 {
                parent.fs_context().clone()
            } else {
                parent.fs_context().copy()
            },
        )),
    };
    let child = Arc::new(Process::new(
        &parent.path(),
        mm.clone(),
        lineage,
        &SpawnOptions::default(),
    ));
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if request.stack != 0 {
        child_frame.rsp = request.stack;
    }
    let fs_base = if flags & CLONE_SETTLS != 0 {
        request.tls
    } else {
        my_thread.fs_base.load(Ordering::Relaxed)
    };
    let clear_tid = if flags & CLONE_CHILD_CLEARTID != 0 {
        request.child_tid
    } else {
        0
    };
    let thread = UserThread::new(child.clone(), mm.clone(), fs_base, clear_tid, child_frame)
        .with_current_fpu();
    if flags & CLONE_CHILD_SETTID != 0 {
        thread
            .set_child_tid
            .store(request.child_tid, Ordering::Relaxed);
    }
    thread.signals.inherit_for_fork(&my_thread.signals);
    if !shares_mm {
        // A vfork child (or any child sharing the address space) registers its own.
        thread.rseq.inherit_for_fork(&my_thread.rseq);
    }
    let task = Task::new_user(
        child.pid,
        &me.name(),
        thread,
        crate::proc::signal::user_thread_start,
    )
    .ok_or(ENOMEM)?;
    task.inherit_scheduling(me);
    if shares_mm {
        // Nothing can fail from here on.
        mm.add_user();
    }
    child.add_thread(task.clone());
    proc::register(child.clone());
    if flags & CLONE_PARENT_SETTID != 0 {
        // As Linux: written after the copy (so only the parent sees it); a bad pointer is
        // the caller's problem.
        let _ = write_user(request.parent_tid, &child.pid);
    }
    let pid = child.pid;
    drop(child);
    sched::spawn(task);
    if let Some(done) = vfork_done {
        // Until the child execs or exits; a kill of the caller ends the wait.
        done.wait_killable();
    }
    Ok(u64::from(pid))
}

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WSTOPPED: u64 = 2;
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

/// Which children `pid` (wait4's first argument) names.
fn selector_for(pid: i64) -> Result<Selector, super::errno::Errno> {
    Ok(match pid {
        -1 => Selector::Any,
        0 => Selector::Group(process().pgid()),
        pid if pid == i64::from(i32::MIN) => return Err(ESRCH),
        pid if pid < 0 => Selector::Group((-pid) as u32),
        pid => Selector::Pid(pid as u32),
    })
}

/// The kinds of children a wait's options ask for.
fn kinds(options: u64) -> Kinds {
    if options & WALL != 0 {
        Kinds::All
    } else if options & WCLONE != 0 {
        Kinds::Clone
    } else {
        Kinds::Plain
    }
}

/// `wait4(pid, status, options, rusage)`; `WUNTRACED` and `WCONTINUED` report stopped and
/// continued children too.
pub fn wait4(pid: u64, status: u64, options: u64, usage: u64) -> SysResult {
    // `int options`.
    let options = u64::from(options as u32);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(EINVAL);
    }
    let selector = selector_for(i64::from(pid as i32))?;
    let wait_options = WaitOptions {
        no_hang: options & WNOHANG != 0,
        keep: false,
        exits: true,
        stops: options & WUNTRACED != 0,
        continues: options & WCONTINUED != 0,
        kinds: kinds(options),
    };
    let Some(ended) = wait::wait_for_child(process(), selector, wait_options)? else {
        return Ok(0);
    };
    // As Linux: the status first, then the usage; a fault in either fails the call, with the
    // child collected all the same.
    if status != 0 {
        write_user(status, &ended.wait_status)?;
    }
    if usage != 0 {
        write_user(usage, &super::info::rusage(ended.ticks, ended.minor_faults))?;
    }
    Ok(u64::from(ended.pid))
}

const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;

/// `sizeof(siginfo_t)`.
const SIGINFO_SIZE: usize = 128;

const P_PIDFD: u64 = 3;

/// `waitid(idtype, id, infop, options, rusage)`. As Linux, `infop` (unless null) is written
/// whatever the wait answered, errors included: a bad one makes any answer `EFAULT`.
pub fn waitid(idtype: u64, id: u64, info: u64, options: u64, usage: u64) -> SysResult {
    let reported = wait_for_id(idtype, id, options);
    // As Linux: the usage first, then the siginfo; a fault in either fails the call, with
    // the child collected all the same.
    if let (Ok(Some(ended)), true) = (&reported, usage != 0) {
        write_user(usage, &super::info::rusage(ended.ticks, ended.minor_faults))?;
    }
    if info == 0 {
        return reported.map(|_| 0);
    }
    // siginfo_t's SIGCHLD fields, zeroes when nothing was reported: si_signo, si_errno and
    // si_code, then (at 16) si_pid, si_uid and si_status. Like Linux, nothing else of the
    // 128-byte structure is written, though all of it must be user memory.
    if !crate::arch::uaccess::is_user_range(info, SIGINFO_SIZE) {
        return Err(EFAULT);
    }
    let (mut head, mut sigchld) = ([0i32; 3], [0i32; 3]);
    if let Ok(Some(ended)) = &reported {
        let (code, status) = wait::sigchld_code_and_status(ended.wait_status, ended.job);
        head[0] = SIGCHLD as i32;
        head[2] = code;
        sigchld[0] = ended.pid as i32;
        sigchld[2] = status;
    }
    write_user(info, &head)?;
    write_user(info + 16, &sigchld)?;
    reported.map(|_| 0)
}

/// The wait of `waitid`: `idtype` (an `int`) and `id` name the children (`P_PIDFD`: by a
/// process descriptor), `options` (an `int`) what to wait for.
fn wait_for_id(
    idtype: u64,
    id: u64,
    options: u64,
) -> Result<Option<wait::Ended>, super::errno::Errno> {
    let options = u64::from(options as u32);
    let known = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WSTOPPED | WCONTINUED) == 0 {
        return Err(EINVAL);
    }
    let id = id as u32 as i32;
    let selector = match u64::from(idtype as u32) {
        P_ALL => Selector::Any,
        P_PID if id > 0 => Selector::Pid(id as u32),
        P_PGID if id == 0 => Selector::Group(process().pgid()),
        P_PGID if id > 0 => Selector::Group(id as u32),
        P_PIDFD if id >= 0 => {
            let file = process().files().get(id as u64)?;
            // As Linux's `pidfd_get_pid`: a descriptor that is no process descriptor is EBADF.
            let target = crate::fs::pidfd::process_of(&file).ok_or(EBADF)?;
            // A process gone is no child: pid 0 matches none.
            Selector::Pid(target.map_or(0, |p| p.pid))
        }
        _ => return Err(EINVAL),
    };
    let wait_options = WaitOptions {
        no_hang: options & WNOHANG != 0,
        keep: options & WNOWAIT != 0,
        exits: options & WEXITED != 0,
        stops: options & WSTOPPED != 0,
        continues: options & WCONTINUED != 0,
        kinds: kinds(options),
    };
    wait::wait_for_child(process(), selector, wait_options)
}

/// `getppid()`.
pub fn getppid() -> SysResult {
    Ok(u64::from(process().parent_pid()))
}

/// The process `pid` names for the group and session calls: the caller for 0.
fn process_or_self(pid: u64) -> Result<Arc<Process>, super::errno::Errno> {
    let pid = pid as u32 as i32;
    if pid < 0 {
        return Err(ESRCH);
    }
    if pid == 0 {
        return Ok(process().clone());
    }
    proc::find(pid as u32).ok_or(ESRCH)
}

/// `getpgid(pid)`.
pub fn getpgid(pid: u64) -> SysResult {
    Ok(u64::from(process_or_self(pid)?.pgid()))
}

/// `getsid(pid)`.
pub fn getsid(pid: u64) -> SysResult {
    Ok(u64::from(process_or_self(pid)?.sid()))
}

/// `setpgid(pid, pgid)`, with Linux's rules: the caller or a child of it, in the caller's
/// session and not a session leader, that has not called `execve`, into a group of the
/// caller's session (or a new one named after itself).
pub fn setpgid(pid: u64, pgid: u64) -> SysResult {
    let me = process();
    // As Linux: pid 0 is the caller and pgid 0 the pid, before a negative group is refused
    // (so `setpgid(-1, 0)` is EINVAL).
    let pid = match pid as u32 as i32 {
        0 => me.pid as i32,
        pid => pid,
    };
    let pgid = match pgid as u32 as i32 {
        0 => pid,
        pgid => pgid,
    };
    if pgid < 0 {
        return Err(EINVAL);
    }
    let target = if pid == me.pid as i32 {
        me.clone()
    } else if let Some(child) = u32::try_from(pid)
        .ok()
        .and_then(|pid| proc::child_of(me, pid))
    {
        if child.sid() != me.sid() {
            return Err(EPERM);
        }
        if child.did_exec() {
            return Err(EACCES);
        }
        child
    } else if u32::try_from(pid).is_ok_and(proc::is_secondary_thread) {
        // A thread, not a process.
        return Err(EINVAL);
    } else {
        return Err(ESRCH);
    };
    if target.pid == target.sid() {
        return Err(EPERM);
    }
    let pgid = pgid as u32;
    if pgid != target.pid && !proc::group_exists_in_session(pgid, me.sid()) {
        return Err(EPERM);
    }
    target.set_pgid(pgid);
    Ok(0)
}

/// `setsid()`: a new session and group led by the caller, unless it leads a group already.
pub fn setsid() -> SysResult {
    let me = process();
    if proc::group_exists(me.pid) {
        return Err(EPERM);
    }
    me.set_session(me.pid);
    Ok(u64::from(me.pid))
}

/// Longest path `execve` takes, its NUL included (Linux's `PATH_MAX`).
const PATH_MAX: usize = 4096;
/// Where `execveat` resolves a relative path from the working directory.
const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;

/// `execve(path, argv, envp)`. Returns only on failure.
pub fn execve(path: u64, argv: u64, envp: u64) -> SysResult {
    execveat(AT_FDCWD as u64, path, argv, envp, 0)
}

/// `execveat(dirfd, path, argv, envp, flags)`: a relative path starts at `dirfd` (or the
/// working directory for `AT_FDCWD`); with `AT_EMPTY_PATH` an empty path runs the file `dirfd`
/// is open on. Returns only on failure.
///
/// Linux's order: the path copied in (`ENOENT` for an empty one without `AT_EMPTY_PATH`), the
/// flags (an `int`), the file opened ([`exec_path`]), then `argv` and `envp` copied.
pub fn execveat(dirfd: u64, path: u64, argv: u64, envp: u64, flags: u64) -> SysResult {
    let flags = super::int_arg(flags);
    // Everything this function owns is handed to `exec::execve` or dropped before the call:
    // when it succeeds it never returns here, so nothing left in this frame would be freed.
    let mut name = alloc::vec![0u8; PATH_MAX];
    let length = crate::arch::uaccess::strncpy_from_user(&mut name, path)?;
    if length == 0 && flags & AT_EMPTY_PATH == 0 {
        return Err(ENOENT);
    }
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let path = exec_path(&name[..length], dirfd as u32 as i32, flags)?;
    drop(name);
    let args = copy_strings(argv)?;
    let env = copy_strings(envp)?;
    Err(crate::proc::exec::execve(path, args, env))
}

/// The path `execveat` runs for the path `name` it was given, relative to `dirfd`: as given
/// when absolute or relative to the working directory (the loader walks it from there), else
/// from the directory `dirfd` is open on; the path of the file `dirfd` is open on for an empty
/// name with `AT_EMPTY_PATH`. The file must be there and runnable ([`check_runnable`]), as
/// Linux opens it before it reads the arguments.
fn exec_path(
    name: &[u8],
    dirfd: i32,
    flags: u64,
) -> Result<alloc::string::String, super::errno::Errno> {
    use crate::fs::FileKind;
    use crate::fs::dentry::{self, Follow};
    let name = core::str::from_utf8(name).map_err(|_| ENOENT)?;
    let files = process().files();
    if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(ENOENT);
        }
        if dirfd == AT_FDCWD {
            // The working directory: not a file to run.
            return Err(EACCES);
        }
        let file = files.get(u64::from(dirfd as u32))?;
        check_runnable(file.inode())?;
        return Ok(file.dentry().path());
    }
    let path = if name.starts_with('/') || dirfd == AT_FDCWD {
        alloc::string::String::from(name)
    } else {
        let directory = files.get(u64::from(dirfd as u32))?;
        if directory.inode().kind() != FileKind::Directory {
            return Err(ENOTDIR);
        }
        alloc::format!("{}/{name}", directory.dentry().path().trim_end_matches('/'))
    };
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let cwd = process().fs_context().cwd();
    check_runnable(dentry::resolve(&cwd, &path, follow)?.inode())?;
    Ok(path)
}

/// Linux's `do_open_execat`: a symbolic link left unfollowed is `ELOOP`; anything but a
/// regular file with an execute bit is `EACCES` (root too needs one); then a file that some
/// description has open for writing is `ETXTBSY`.
fn check_runnable(inode: &Arc<dyn crate::fs::Inode>) -> Result<(), super::errno::Errno> {
    use crate::fs::FileKind;
    match inode.kind() {
        FileKind::Symlink => return Err(super::errno::ELOOP),
        FileKind::Regular if inode.stat().mode & 0o111 != 0 => {}
        _ => return Err(EACCES),
    }
    inode
        .writers()
        .map_or(Ok(()), |writers| writers.check_none())
}

/// Copies a NULL-terminated array of string pointers (argv or envp) from user space; a NULL
/// array is empty. `E2BIG` once the strings pass what an initial stack can hold.
fn copy_strings(array: u64) -> Result<Vec<Vec<u8>>, super::errno::Errno> {
    let mut strings = Vec::new();
    if array == 0 {
        return Ok(strings);
    }
    let mut total = 0usize;
    for index in 0u64.. {
        let pointer: u64 = read_user(array.checked_add(index * 8).ok_or(EFAULT)?)?;
        if pointer == 0 {
            break;
        }
        let string = copy_string(pointer, elf::MAX_ARG_BYTES - total)?;
        total += string.len() + 1 + 8;
        strings.push(string);
    }
    Ok(strings)
}

/// Copies the NUL-terminated string at `src` (without the NUL); `E2BIG` if it has more than
/// `limit` bytes.
fn copy_string(src: u64, limit: usize) -> Result<Vec<u8>, super::errno::Errno> {
    let mut string = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let at = src.checked_add(string.len() as u64).ok_or(EFAULT)?;
        match crate::arch::uaccess::strncpy_from_user(&mut chunk, at) {
            Ok(length) => {
                string.extend_from_slice(&chunk[..length]);
                break;
            }
            Err(error) if error == ENAMETOOLONG => string.extend_from_slice(&chunk),
            Err(error) => return Err(error),
        }
        if string.len() > limit {
            return Err(E2BIG);
        }
    }
    if string.len() > limit {
        return Err(E2BIG);
    }
    Ok(string)
}
