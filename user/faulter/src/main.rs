//! `faulter MODE`: dies the way MODE says, to check that the kernel turns a user fault into
//! the death of the process with the right signal (exit status 128 + signal).
//!
//! | mode | what it does | Linux ends it with |
//! |---|---|---|
//! | `null` | reads address 0 | SIGSEGV (139) |
//! | `write-ro` | writes to a PROT_READ mapping | SIGSEGV (139) |
//! | `exec-nx` | jumps into a mapping without PROT_EXEC | SIGSEGV (139) |
//! | `prot-none` | reads a PROT_NONE mapping | SIGSEGV (139) |
//! | `ud2` | executes ud2 | SIGILL (132) |
//! | `div0` | divides by zero | SIGFPE (136) |
//! | `gp` | executes hlt (privileged) | SIGSEGV (139) |
//! | `kernel-addr` | reads 0xffff_8000_0000_0000 | SIGSEGV (139) |
//! | `stack-overflow` | recurses until the stack runs out | SIGSEGV (139) |
//! | `thread-null` | a second thread reads address 0 while main waits | SIGSEGV (139) |
//! | `no-restorer` | raises SIGUSR1 whose handler lacks `SA_RESTORER` (no way back on x86_64) | SIGSEGV (139) |
//! | `bad-sigreturn` | calls `rt_sigreturn` with its stack pointer on a kernel address | SIGSEGV (139) |
//! | `segv-in-handler` | reads address 0; the SIGSEGV handler does too (SIGSEGV blocked there) | SIGSEGV (139) |
//! | `oom` | two threads write to fresh pages of a 1 TiB `MAP_NORESERVE` mapping until memory runs out | SIGKILL (137) |
//! | `exit N` | exits with status N | N |
//! | `ok` | prints a line and exits 0 | 0 |
//!
//! Modes for the process tests (`execve` from usertests):
//!
//! | mode | what it does | exit status |
//! |---|---|---|
//! | `argc` | nothing | the number of arguments, argv[0] included |
//! | `env-is ARGV0 VAR...` | compares argv[0] with ARGV0 and the environment with VAR... | 0 when both match, 1 otherwise |
//! | `ids PID PPID` | compares getpid(), gettid() with PID and getppid() with PPID | 0 when all match, 1 otherwise |
//! | `sleep MS` | a second thread and the main thread sleep MS ms, then it exits 0 (also for the kernel's tests that stop, continue or kill a process from outside) | 0 |
//! | `catch SIG MS` | a handler for SIG exits with status SIG; meanwhile it sleeps MS ms (for the kernel's terminal tests: a stop signal's default action does nothing in a kernel-started process's orphaned group) | SIG, or 0 when none came |
//! | `fds FD...` | asks whether each FD is open (fcntl F_GETFD) | bit i set when the i-th FD is open (at most 6); 64 for a bad argument |
//! | `sigstate SIG` | reads signal SIG's action (rt_sigaction), the mask (rt_sigprocmask) and the pending set (rt_sigpending) | the action's handler (0 `SIG_DFL`, 1 `SIG_IGN`, 2 a handler), + 4 if SIG is blocked, + 8 if it is pending, + 16 if the action has flags or a mask; 64 when the calls fail |

#![no_std]
#![no_main]

extern crate alloc;

use core::arch::asm;

use urt::signal::{self, SigAction, SigInfo, UContext};
use urt::sys;
use urt::{eprintln, println};

urt::main!(main);

const MODES: &str = "null write-ro exec-nx prot-none ud2 div0 gp kernel-addr stack-overflow thread-null no-restorer bad-sigreturn segv-in-handler oom exit ok argc env-is ids sleep catch sigstate fds";

fn main() -> i32 {
    let Some(mode) = urt::start::arg_str(1) else {
        eprintln!("usage: faulter MODE (one of: {MODES})");
        return 2;
    };
    let expect = |what: &str| println!("faulter: {mode}: expecting {what}");
    match mode {
        "ok" => {
            println!("faulter: ok");
            0
        }
        "sleep" => {
            let ms = urt::start::arg_str(2)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(1000);
            let other = urt::thread::spawn(move || sys::sleep_ns(ms * 1_000_000));
            sys::sleep_ns(ms * 1_000_000);
            other.join();
            println!("faulter: slept {ms} ms");
            0
        }
        "catch" => {
            let arg = |index| urt::start::arg_str(index).and_then(|s| s.parse::<u64>().ok());
            let (Some(signo), Some(ms)) = (arg(2), arg(3)) else {
                eprintln!("faulter: catch: usage: catch SIG MS");
                return 64;
            };
            if signal::set_handler(signo as usize, exit_with_signal_number, 0, 0).is_err() {
                eprintln!("faulter: catch: rt_sigaction failed");
                return 64;
            }
            sys::sleep_ns(ms * 1_000_000);
            0
        }
        "exit" => {
            let code = urt::start::arg_str(2)
                .and_then(|s| s.parse::<i32>().ok())
                .unwrap_or(0);
            println!("faulter: exit {code}");
            code
        }
        "argc" => urt::start::argc() as i32,
        "env-is" => env_is(),
        "ids" => ids(),
        "sigstate" => sigstate(),
        "fds" => open_fds(),
        "oom" => {
            // Two threads touch fresh pages of a huge MAP_NORESERVE mapping, each its own half,
            // until memory runs out: the kernel kills the whole process (SIGKILL, status 137)
            // and goes on.
            expect("SIGKILL (status 137) when memory runs out");
            let half = 1usize << 39;
            let flags = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE;
            let base = match sys::mmap(
                0,
                2 * half,
                sys::PROT_READ | sys::PROT_WRITE,
                flags,
                usize::MAX,
                0,
            ) {
                Ok(base) => base,
                Err(e) => {
                    eprintln!("faulter: oom: mmap failed: {e:?}");
                    return 1;
                }
            };
            let touch_all = move |start: usize| {
                let mut page = start;
                while page < start + half {
                    write_at(page);
                    page += 4096;
                }
            };
            let other = urt::thread::spawn(move || touch_all(base + half));
            touch_all(base);
            other.join();
            survived(mode)
        }
        "null" => {
            expect("SIGSEGV (status 139)");
            read_at(0);
            survived(mode)
        }
        "kernel-addr" => {
            expect("SIGSEGV (status 139)");
            read_at(0xffff_8000_0000_0000);
            survived(mode)
        }
        "write-ro" => {
            expect("SIGSEGV (status 139)");
            let page = map(sys::PROT_READ);
            write_at(page);
            survived(mode)
        }
        "prot-none" => {
            expect("SIGSEGV (status 139)");
            let page = map(sys::PROT_NONE);
            read_at(page);
            survived(mode)
        }
        "exec-nx" => {
            expect("SIGSEGV (status 139)");
            let page = map(sys::PROT_READ | sys::PROT_WRITE);
            // SAFETY: the page is ours; `ret` (0xc3) would return at once if it ran.
            unsafe {
                *(page as *mut u8) = 0xc3;
                asm!("call {}", in(reg) page, clobber_abi("C"));
            }
            survived(mode)
        }
        "ud2" => {
            expect("SIGILL (status 132)");
            // SAFETY: raises #UD, which ends the process.
            unsafe { asm!("ud2", options(nostack)) };
            survived(mode)
        }
        "div0" => {
            expect("SIGFPE (status 136)");
            // SAFETY: raises #DE, which ends the process.
            unsafe {
                asm!("xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx",
                     out("eax") _, out("ecx") _, out("edx") _, options(nostack));
            }
            survived(mode)
        }
        "gp" => {
            expect("SIGSEGV (status 139)");
            // SAFETY: hlt in ring 3 raises #GP, which ends the process.
            unsafe { asm!("hlt", options(nostack)) };
            survived(mode)
        }
        "stack-overflow" => {
            expect("SIGSEGV (status 139)");
            let depth = recurse(0);
            println!("faulter: recursion returned at depth {depth}");
            survived(mode)
        }
        "thread-null" => {
            expect("SIGSEGV (status 139), the whole process");
            let t = urt::thread::spawn(|| {
                read_at(0);
            });
            t.join();
            survived(mode)
        }
        "no-restorer" => {
            expect("SIGSEGV (status 139)");
            let action = SigAction {
                handler: ignore_signal as *const () as usize,
                flags: signal::SA_SIGINFO,
                restorer: 0,
                mask: 0,
            };
            if signal::sigaction(signal::SIGUSR1, Some(&action)).is_ok() {
                let _ = signal::raise(signal::SIGUSR1);
            }
            survived(mode)
        }
        "bad-sigreturn" => {
            expect("SIGSEGV (status 139)");
            // SAFETY: not safe at all: rt_sigreturn finds no frame there, and the process ends.
            unsafe {
                asm!("mov rsp, {}", "mov eax, 15", "syscall", "ud2",
                     in(reg) 0xffff_8000_0000_0000usize, options(noreturn));
            }
        }
        "segv-in-handler" => {
            expect("SIGSEGV (status 139)");
            if signal::set_handler(signal::SIGSEGV, fault_again, signal::SA_SIGINFO, 0).is_ok() {
                read_at(0);
            }
            survived(mode)
        }
        other => {
            eprintln!("faulter: unknown mode {other} (one of: {MODES})");
            2
        }
    }
}

/// `env-is ARGV0 VAR...`: 0 when argv[0] is ARGV0 and the environment is exactly VAR...
fn env_is() -> i32 {
    let mut same = urt::start::arg(0) == urt::start::arg(2);
    if !same {
        eprintln!(
            "faulter: env-is: argv[0] is {:?}, expected {:?}",
            urt::start::arg(0),
            urt::start::arg(2)
        );
    }
    let env: alloc::vec::Vec<&[u8]> = urt::start::environment().collect();
    let expected: alloc::vec::Vec<&[u8]> = (3..urt::start::argc())
        .filter_map(urt::start::arg)
        .collect();
    if env != expected {
        eprintln!("faulter: env-is: the environment is {env:?}, expected {expected:?}");
        same = false;
    }
    if same { 0 } else { 1 }
}

/// `ids PID PPID`: 0 when getpid() and gettid() are PID and getppid() is PPID.
fn ids() -> i32 {
    let arg = |i| urt::start::arg_str(i).and_then(|s| s.parse::<usize>().ok());
    let (pid, tid, ppid) = (sys::getpid(), sys::gettid(), sys::getppid());
    if Some(pid) == arg(2) && tid == pid && Some(ppid) == arg(3) {
        0
    } else {
        eprintln!(
            "faulter: ids: pid {pid} tid {tid} ppid {ppid}, expected {:?} {:?}",
            arg(2),
            arg(3)
        );
        1
    }
}

/// `fds FD...`: which of the descriptors are open, as bits of the exit status (the first FD
/// is bit 0); 64 when an argument is not a number or there are more than 6.
fn open_fds() -> i32 {
    let fds: Option<alloc::vec::Vec<usize>> = (2..urt::start::argc())
        .map(|i| urt::start::arg_str(i).and_then(|s| s.parse().ok()))
        .collect();
    match fds {
        Some(fds) if fds.len() <= 6 => fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| sys::fcntl(**fd, sys::F_GETFD, 0).is_ok())
            .map(|(i, _)| 1 << i)
            .sum(),
        _ => {
            eprintln!("faulter: fds: up to 6 descriptor numbers expected");
            64
        }
    }
}

/// `sigstate SIG`: how signal SIG stands after exec, as an exit status (see the table above).
fn sigstate() -> i32 {
    let Some(signo) = urt::start::arg_str(2).and_then(|s| s.parse::<usize>().ok()) else {
        eprintln!("faulter: sigstate: no signal number");
        return 64;
    };
    let (Ok(action), Ok(pending)) = (signal::sigaction(signo, None), signal::pending()) else {
        eprintln!("faulter: sigstate: rt_sigaction or rt_sigpending failed");
        return 64;
    };
    let bit = signal::sigmask(signo);
    let handler = match action.handler {
        signal::SIG_DFL => 0,
        signal::SIG_IGN => 1,
        _ => 2,
    };
    let blocked = if signal::blocked() & bit != 0 { 4 } else { 0 };
    let pending = if pending & bit != 0 { 8 } else { 0 };
    let extra = if action.flags != 0 || action.mask != 0 {
        16
    } else {
        0
    };
    println!("faulter: sigstate {signo}: {action:?}, blocked {blocked}, pending {pending}");
    handler + blocked + pending + extra
}

fn map(prot: usize) -> usize {
    match sys::mmap_anon(sys::PAGE_SIZE, prot) {
        Ok(page) => page,
        Err(e) => {
            eprintln!("faulter: mmap failed: {e}");
            sys::exit_group(3)
        }
    }
}

fn read_at(addr: usize) {
    // SAFETY: not safe at all: this is meant to fault and end the process.
    unsafe { asm!("mov al, byte ptr [{}]", in(reg) addr, out("al") _, options(nostack)) };
}

fn write_at(addr: usize) {
    // SAFETY: as read_at.
    unsafe { asm!("mov byte ptr [{}], 1", in(reg) addr, options(nostack)) };
}

/// Recurses with a large frame until the stack runs out (it never returns normally).
fn recurse(depth: usize) -> usize {
    let mut frame = [0u8; 4096];
    frame[depth % 4096] = depth as u8;
    let frame = core::hint::black_box(frame);
    if depth == usize::MAX {
        return depth;
    }
    recurse(depth + 1) + frame[depth % 4096] as usize
}

extern "C" fn ignore_signal(_: i32, _: *mut SigInfo, _: *mut UContext) {}

extern "C" fn exit_with_signal_number(signo: i32, _: *mut SigInfo, _: *mut UContext) {
    sys::exit_group(signo);
}

/// A SIGSEGV handler that faults itself, with SIGSEGV blocked: that one kills.
extern "C" fn fault_again(_: i32, _: *mut SigInfo, _: *mut UContext) {
    read_at(0);
}

fn survived(mode: &str) -> i32 {
    eprintln!("faulter: {mode}: still alive, the fault was not delivered");
    1
}
