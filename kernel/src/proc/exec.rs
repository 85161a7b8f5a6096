//! Running an executable file: as a new process the kernel starts ([`spawn`]), or in place of
//! a process's image (`execve`, [`execve`]). The file is found through the VFS (relative paths
//! from the working directory). An x86_64 ELF (static, static-PIE at a fixed base, or
//! dynamically linked with its `PT_INTERP` interpreter loaded below the mmap base), checked by
//! kernel/libs/elf, is loaded into a fresh address space, with the System V initial stack
//! (argc, argv, envp, auxv) built above its stack VMA; a `#!` script runs its interpreter.
//! `execve` builds the new address space aside and swaps it in only once nothing can fail any
//! more.
//!
//! The loadable segments become VMAs with their protections. A page one segment alone fills
//! with file bytes is a private mapping of the file's page cache (shared between processes
//! until written); where two segments share a page, or a segment's file bytes end and its BSS
//! begins, the page is an anonymous copy with both protections; the rest of the BSS is
//! zero-fill on demand.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Invocation, Lineage, Process, register};
use crate::arch::syscall::{USER_END, user_frame};
use crate::fs::dentry::Dentry;
use crate::fs::file::File;
use crate::mm::addrspace::{
    Edit, MMAP_BASE, MMAP_MIN_ADDR, Mm, MmWriteGuard, STACK_SIZE, STACK_TOP,
};
use crate::mm::vma::{VM_EXEC, VM_IMAGE, VM_READ, VM_STACK, VM_WRITE};
use crate::sched::task::{Task, UserThread};
use crate::syscall::errno::{
    E2BIG, EACCES, EINTR, ELOOP, ENAMETOOLONG, ENOENT, ENOEXEC, ENOMEM, ENOTDIR, Errno,
};

/// Where a static-PIE executable is loaded (Linux's usual choice for PIE without ASLR).
const PIE_BASE: u64 = 0x5555_5555_4000;
/// Environment every process starts with.
const ENVIRONMENT: [&[u8]; 3] = [b"PATH=/bin", b"HOME=/", b"TERM=vt100"];

fn limits() -> elf::Limits {
    elf::Limits {
        min_addr: MMAP_MIN_ADDR,
        user_end: USER_END,
        ..elf::Limits::DEFAULT
    }
}

/// Options for [`spawn`].
#[derive(Default)]
pub struct SpawnOptions {
    /// The first program (`init=`): it gets process id 1, as on Linux (programs such as
    /// busybox's init refuse to run as anything else), unless a process took that id already.
    pub init: bool,
    /// Keep a copy of what the process writes to fds 1 and 2 (tests).
    #[cfg(feature = "ktest")]
    pub capture_output: bool,
    /// With `capture_output`: keep what it writes to the console off the console (output that
    /// is not the kernel's KTAP, such as a user suite run for its endings alone).
    #[cfg(feature = "ktest")]
    pub hide_output: bool,
}

/// A program loaded into a new address space, ready to run.
struct Image {
    mm: Arc<Mm>,
    entry: u64,
    rsp: u64,
    /// The executable file loaded (a script's interpreter, for a script).
    executable: Arc<Dentry>,
    /// The arguments it got (a script's are rewritten for its interpreter).
    args: Vec<Vec<u8>>,
}

/// Why a program could not be loaded.
enum LoadError {
    /// No executable file at the path (the walk's error, or `EACCES`).
    NotFound(Errno),
    /// Not an executable this kernel runs (`reason` says why).
    NotExecutable(String),
    /// Arguments and environment do not fit the stack.
    TooBig(String),
    OutOfMemory,
}

impl LoadError {
    fn errno(&self) -> Errno {
        match self {
            LoadError::NotFound(errno) => *errno,
            LoadError::NotExecutable(_) => ENOEXEC,
            LoadError::TooBig(_) => E2BIG,
            LoadError::OutOfMemory => ENOMEM,
        }
    }
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::NotFound(errno) => f.write_str(match *errno {
                ENOENT => "no such file",
                EACCES => "not an executable file",
                ENOTDIR => "a component of the path is not a directory",
                ELOOP => "too many symbolic links",
                ENAMETOOLONG => "file name too long",
                _ => "cannot open it",
            }),
            LoadError::NotExecutable(reason) | LoadError::TooBig(reason) => write!(f, "{reason}"),
            LoadError::OutOfMemory => write!(f, "out of memory"),
        }
    }
}

/// An executable file, open, and its bytes (which the ELF checks read; the segments are
/// mapped from the file's page cache).
struct Executable {
    file: Arc<File>,
    bytes: Vec<u8>,
}

/// The executable file at `path` (relative paths from the caller's working directory), open
/// for reading: `EACCES` for a directory, another kind of file or one without execute
/// permission; the walk's errors otherwise.
fn read_executable(path: &str) -> Result<Executable, Errno> {
    use crate::fs::{FileKind, dentry, file::O_RDONLY};
    let base = match crate::sched::current().process() {
        Some(process) => process.fs_context().cwd(),
        None => dentry::root().clone(),
    };
    let found = dentry::resolve(&base, path, dentry::Follow::Yes)?;
    let inode = found.inode().clone();
    let stat = inode.stat();
    if inode.kind() != FileKind::Regular || stat.mode & 0o111 == 0 {
        return Err(EACCES);
    }
    let file = File::open(found, O_RDONLY)?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(stat.size as usize)
        .map_err(|_| ENOMEM)?;
    bytes.resize(stat.size as usize, 0);
    let read = inode.read_at(&file, 0, &mut bytes)?;
    bytes.truncate(read);
    Ok(Executable { file, bytes })
}

/// How many `#!` scripts may lead to one another before the binary (Linux's limit).
const MAX_SCRIPT_DEPTH: usize = 4;
/// The bytes of a `#!` line that count (Linux's `BINPRM_BUF_SIZE`).
const SCRIPT_LINE_MAX: usize = 256;

/// What a `#!` line names: the interpreter and its one optional argument.
struct ScriptLine {
    interpreter: String,
    argument: Option<Vec<u8>>,
}

/// The `#!` line of a script, or `None` for a file that is not one. `ENOEXEC` for a line with
/// no interpreter or one too long to hold it.
fn script_interpreter(bytes: &[u8]) -> Result<Option<ScriptLine>, LoadError> {
    let Some(rest) = bytes.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let not_executable = || LoadError::NotExecutable(String::from("bad #! line"));
    let window = &rest[..rest.len().min(SCRIPT_LINE_MAX - 2)];
    let line = match window.iter().position(|&b| b == b'\n') {
        Some(end) => &window[..end],
        // The whole window without a line end: fine if the interpreter's name ended in it.
        None if window.len() < SCRIPT_LINE_MAX - 2 => window,
        None => match window.iter().rposition(|&b| b == b' ' || b == b'\t') {
            Some(_) => window,
            None => return Err(not_executable()),
        },
    };
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line = line.trim_ascii();
    let name_end = line.iter().position(is_blank).unwrap_or(line.len());
    if name_end == 0 {
        return Err(not_executable());
    }
    let interpreter = core::str::from_utf8(&line[..name_end])
        .map_err(|_| not_executable())?
        .into();
    let argument = line[name_end..].trim_ascii();
    Ok(Some(ScriptLine {
        interpreter,
        argument: (!argument.is_empty()).then(|| argument.to_vec()),
    }))
}

/// Loads the executable at `path` into a new address space with `args` and `env` on its
/// initial stack. A `#!` script runs its interpreter instead, with the script's path among
/// the arguments (`interpreter [argument] path args[1..]`).
fn build_image(path: &str, args: &[&[u8]], env: &[&[u8]]) -> Result<Image, LoadError> {
    let mut file = String::from(path);
    let mut args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    for _ in 0..=MAX_SCRIPT_DEPTH {
        let executable = read_executable(&file).map_err(LoadError::NotFound)?;
        let Some(ScriptLine {
            interpreter,
            argument,
        }) = script_interpreter(&executable.bytes)?
        else {
            return load_elf(path, &executable, args, env);
        };
        let mut rewritten = alloc::vec![interpreter.as_bytes().to_vec()];
        rewritten.extend(argument);
        rewritten.push(file.into_bytes());
        rewritten.extend(args.into_iter().skip(1));
        args = rewritten;
        file = interpreter;
    }
    Err(LoadError::NotFound(ELOOP))
}

/// Parses an ELF executable and places it: a position-independent one at `base`.
fn place(image: &[u8], base: u64) -> Result<elf::Program, LoadError> {
    let not_executable = |e: elf::ElfError| LoadError::NotExecutable(format!("{e}"));
    let program = elf::parse(image, &limits()).map_err(not_executable)?;
    if program.is_pie {
        program.relocated(base, &limits()).map_err(not_executable)
    } else {
        Ok(program)
    }
}

/// Loads the ELF executable `image` (found at `path`) and, for a dynamically linked one, its
/// interpreter (the dynamic linker, placed below the mmap base as Linux places it), into a
/// new address space. The process starts in the interpreter when there is one, told where
/// the program is by the auxiliary vector (`AT_PHDR`, `AT_ENTRY`, `AT_BASE`).
fn load_elf(
    path: &str,
    executable: &Executable,
    args: Vec<Vec<u8>>,
    env: &[&[u8]],
) -> Result<Image, LoadError> {
    let program = place(&executable.bytes, PIE_BASE)?;
    let mm = Mm::new().ok_or(LoadError::OutOfMemory)?;
    let guard = mm.write();
    map_segments(&guard, executable, &program)?;
    let heap_start = program
        .segments
        .iter()
        .map(|s| (s.end() + 0xfff) & !0xfff)
        .max()
        .unwrap_or(MMAP_MIN_ADDR);
    guard.set_brk(heap_start..heap_start);
    let mut aux = elf::AuxInfo::for_program(&program);
    let entry = match &program.interpreter {
        None => program.entry,
        Some(interpreter) => {
            let linker_file = read_executable(interpreter).map_err(LoadError::NotFound)?;
            let unplaced = elf::parse(&linker_file.bytes, &limits())
                .map_err(|e| LoadError::NotExecutable(format!("{interpreter}: {e}")))?;
            if unplaced.interpreter.is_some() {
                return Err(LoadError::NotExecutable(format!(
                    "the interpreter {interpreter} needs an interpreter itself"
                )));
            }
            let linker = if unplaced.is_pie {
                let (start, end) = unplaced.span();
                let base = guard
                    .find_free_top_down(end - start, MMAP_BASE)
                    .ok_or(LoadError::OutOfMemory)?;
                aux.base = base;
                place(&linker_file.bytes, base)?
            } else {
                unplaced
            };
            map_segments(&guard, &linker_file, &linker)?;
            linker.entry
        }
    };
    let arg_slices: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let rsp = build_stack(&guard, &program, aux, path, &arg_slices, env)?;
    drop(guard);
    Ok(Image {
        mm,
        entry,
        rsp,
        executable: executable.file.dentry().clone(),
        args,
    })
}

/// The name a program's threads get: its file name.
fn program_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Starts the executable at `path` with `args` (argv[0] included) as a new process.
pub fn spawn(path: &str, args: &[&[u8]], options: SpawnOptions) -> Result<Arc<Process>, String> {
    let image =
        build_image(path, args, &ENVIRONMENT).map_err(|e| format!("cannot run {path}: {e}"))?;
    let lineage = Lineage {
        parent: None,
        exit_signal: 0,
        vfork_done: None,
        files: None,
    };
    let process = Arc::new(Process::new(path, image.mm.clone(), lineage, &options));
    let args: Vec<&[u8]> = image.args.iter().map(Vec::as_slice).collect();
    process.set_invocation(Invocation::new(
        image.executable.clone(),
        &args,
        &ENVIRONMENT,
    ));
    let frame = user_frame(image.entry, image.rsp);
    let user = UserThread::new(process.clone(), image.mm, 0, 0, frame);
    let task = Task::new_user(
        process.pid,
        program_name(path),
        user,
        super::signal::user_thread_start,
    )
    .ok_or("out of memory for a kernel stack")?;
    process.add_thread(task.clone());
    register(process.clone());
    crate::sched::spawn(task);
    Ok(process)
}

/// `execve` of the running thread: loads `path` with `args` and `env` into a new address
/// space, then — past the point of no return — kills the process's other threads, and goes on
/// as the process's only thread (with the process's id as its thread id, as Linux does) in
/// the new image. Returns only when the new image could not be built (nothing changed), or
/// when the process is being killed. Takes the caller's copies of the strings: on success this
/// thread ends here without returning, so it frees them itself.
pub fn execve(path: String, args: Vec<Vec<u8>>, env: Vec<Vec<u8>>) -> Errno {
    let process = crate::sched::current()
        .process()
        .expect("a user thread")
        .clone();
    let built = {
        // Linux runs a program given no arguments with an empty argv[0].
        let args: Vec<&[u8]> = if args.is_empty() {
            alloc::vec![b"".as_slice()]
        } else {
            args.iter().map(Vec::as_slice).collect()
        };
        let env: Vec<&[u8]> = env.iter().map(Vec::as_slice).collect();
        // What the image knows of its file and arguments goes to the invocation here: this
        // thread ends without returning, so nothing it still holds later would be freed.
        build_image(&path, &args, &env).map(|image| {
            let Image {
                mm,
                entry,
                rsp,
                executable,
                args,
            } = image;
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let invocation = Invocation::new(executable, &args, &env);
            (invocation, (mm, entry, rsp))
        })
    };
    drop((args, env));
    let (invocation, (image_mm, entry, rsp)) = match built {
        Ok(built) => built,
        Err(error) => {
            if let LoadError::NotExecutable(reason) = &error {
                log::info!("execve {path}: {reason}");
            }
            return error.errno();
        }
    };
    let me = crate::sched::current_arc();
    let old = me.user.as_ref().expect("a user thread");
    let thread = UserThread::new(
        process.clone(),
        image_mm.clone(),
        0,
        0,
        user_frame(entry, rsp),
    );
    let Some(task) = Task::new_user(
        process.pid,
        program_name(&path),
        thread,
        super::signal::user_thread_start,
    ) else {
        return ENOMEM;
    };
    task.set_allowed_cpus(me.allowed_cpus());
    task.set_policy(me.policy());
    if !process.kill_other_threads_for_exec() {
        // Killed meanwhile: the caller leaves at its return to user mode.
        return EINTR;
    }
    // The point of no return: the process runs the new image from here on. The old address
    // space may live on in a vfork parent, which sees the clear-child-tid word cleared first.
    super::clear_child_tid(old);
    // The mask and the pending signals survive execve.
    if let Some(new) = &task.user {
        new.signals.inherit_for_exec(&old.signals);
    }
    process.begin_new_image(&path, image_mm, invocation, &me, task.clone());
    // This task leaves the old address space (tearing it down unless a vfork parent still
    // uses it) and ends; the new one takes its place. What this frame owns goes first:
    // `exit_current` never returns.
    super::leave_address_space(&old.mm);
    drop(path);
    drop(process);
    drop(me);
    crate::sched::spawn(task);
    crate::sched::exit_current()
}

/// Maps the loadable segments of `program` from `executable` (Linux's `elf_map`): a page
/// that one segment alone covers with bytes of the file is a private mapping of the file's page
/// cache, so every process running the program shares its text and read-only data until a
/// write copies a page. The rest is anonymous memory filled with the segments' bytes: a page
/// two segments share (it gets both protections), and the page where a segment's file bytes
/// end and its zero-filled part (BSS) begins, whose tail must read as zeros.
fn map_segments(
    mm: &MmWriteGuard,
    executable: &Executable,
    program: &elf::Program,
) -> Result<(), LoadError> {
    const PAGE: u64 = 4096;
    let oom = |_| LoadError::OutOfMemory;
    let page_down = |a: u64| a & !(PAGE - 1);
    let page_up = |a: u64| (a + PAGE - 1) & !(PAGE - 1);
    // The page range of a segment that can come from the file: congruent offsets, and short of
    // the page where its file bytes stop if a zero-filled part follows.
    let from_file = |s: &elf::Segment| {
        let file_end = s.vaddr + s.filesz;
        let end = if s.memsz > s.filesz {
            page_down(file_end)
        } else {
            page_up(file_end)
        };
        let congruent = s.vaddr % PAGE == s.file_offset % PAGE;
        let start = page_down(s.vaddr);
        if congruent && end > start {
            start..end
        } else {
            start..start
        }
    };
    let mut bounds: Vec<u64> = Vec::new();
    for segment in &program.segments {
        bounds.push(page_down(segment.vaddr));
        bounds.push(page_up(segment.end()));
        let file_pages = from_file(segment);
        bounds.extend([file_pages.start, file_pages.end]);
    }
    bounds.sort_unstable();
    bounds.dedup();
    for pair in bounds.windows(2) {
        let piece = pair[0]..pair[1];
        let touching: Vec<&elf::Segment> = program
            .segments
            .iter()
            .filter(|s| s.vaddr < piece.end && s.end() > piece.start)
            .collect();
        let flags = touching.iter().fold(0, |flags, s| flags | segment_flags(s));
        if flags == 0 {
            continue;
        }
        match touching.as_slice() {
            [only] if from_file(only).start <= piece.start && piece.end <= from_file(only).end => {
                let pgoff = (only.file_offset - (only.vaddr - piece.start)) / PAGE;
                mm.map_file(piece, flags | VM_IMAGE, &executable.file, pgoff)
                    .map_err(oom)?;
            }
            _ => {
                mm.edit(piece.clone(), Edit::Map(flags | VM_IMAGE))
                    .map_err(oom)?;
                for segment in touching {
                    let start = segment.vaddr.max(piece.start);
                    let end = (segment.vaddr + segment.filesz).min(piece.end);
                    if start < end {
                        let at = (segment.file_offset + (start - segment.vaddr)) as usize;
                        let data = &executable.bytes[at..at + (end - start) as usize];
                        copy_into(mm, start, data).map_err(oom)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Maps the stack and builds the initial one (argc, argv, envp, auxv); returns its RSP.
fn build_stack(
    mm: &MmWriteGuard,
    program: &elf::Program,
    mut aux: elf::AuxInfo,
    path: &str,
    args: &[&[u8]],
    env: &[&[u8]],
) -> Result<u64, LoadError> {
    let oom = |_| LoadError::OutOfMemory;
    let stack_flags =
        VM_READ | VM_WRITE | VM_STACK | if program.stack_executable { VM_EXEC } else { 0 };
    mm.edit(STACK_TOP - STACK_SIZE..STACK_TOP, Edit::Map(stack_flags))
        .map_err(oom)?;
    aux.hwcap = u64::from(core::arch::x86_64::__cpuid(1).edx);
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let stack = elf::build_initial_stack(STACK_TOP, args, env, path.as_bytes(), &aux, random)
        .map_err(|e| LoadError::TooBig(format!("{e}")))?;
    copy_into(mm, stack.rsp, &stack.bytes).map_err(oom)?;
    Ok(stack.rsp)
}

fn segment_flags(segment: &elf::Segment) -> u32 {
    let mut flags = 0;
    if segment.readable {
        flags |= VM_READ;
    }
    if segment.writable {
        flags |= VM_WRITE;
    }
    if segment.executable {
        flags |= VM_EXEC;
    }
    flags
}

/// Copies `data` to user address `addr` of `mm` (mapped VMAs) through fresh pages.
fn copy_into(
    mm: &MmWriteGuard,
    addr: u64,
    data: &[u8],
) -> Result<(), crate::syscall::errno::Errno> {
    let mut done = 0;
    while done < data.len() {
        let at = addr + done as u64;
        let offset = (at % 4096) as usize;
        let chunk = (4096 - offset).min(data.len() - done);
        let page = mm.page_for_loading(at & !0xfff)?;
        // SAFETY: `page` is the kernel address (direct map) of a page of this new address space,
        // which no one else can reach yet; the chunk stays inside it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data[done..].as_ptr(),
                (page + offset as u64) as *mut u8,
                chunk,
            );
        }
        done += chunk;
    }
    Ok(())
}
