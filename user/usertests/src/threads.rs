//! clone threads, thread ids, TLS (arch_prctl, CLONE_SETTLS), futex, exit.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use urt::sys::{self, Errno};
use urt::thread::{self, Builder, THREAD_FLAGS};
use urt::{check, check_eq, check_err, check_ok};

use crate::util::{KERNEL_ADDR, ms_since, unmapped_addr};
use urt::ktap::TestResult;

const TEN_S: u64 = 10_000_000_000;

pub fn clone_spawn_join() -> TestResult {
    let t = thread::spawn(|| 6 * 7);
    check!(t.tid() > 0);
    check_eq!(t.join(), 42);
    Ok(())
}

pub fn clone_many_threads() -> TestResult {
    let n = 8;
    let handles: Vec<_> = (0..n)
        .map(|i| thread::spawn(move || (i, sys::gettid(), sys::getpid())))
        .collect();
    let tids: Vec<u32> = handles.iter().map(|h| h.tid()).collect();
    let mut seen = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let (index, tid, pid) = h.join();
        check_eq!(index, i);
        check_eq!(
            tid as u32,
            tids[i],
            "gettid in the thread differs from clone's return"
        );
        check_eq!(pid, sys::getpid(), "threads share the process id");
        check!(tid != sys::gettid());
        check!(!seen.contains(&tid), "thread id {tid} given twice");
        seen.push(tid);
    }
    Ok(())
}

pub fn clone_settls_own_fs() -> TestResult {
    let main_fs = thread::fs0();
    let mut got = 0usize;
    check_ok!(sys::arch_prctl(sys::ARCH_GET_FS, &raw mut got as usize));
    check_eq!(
        got,
        main_fs,
        "ARCH_GET_FS differs from fs:0 on the main thread"
    );
    let handles: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(|| {
                let mut fs = 0usize;
                let r = sys::arch_prctl(sys::ARCH_GET_FS, &raw mut fs as usize);
                (thread::fs0(), fs, r.is_ok(), thread::current().addr())
            })
        })
        .collect();
    for h in handles {
        let block = h.block().addr();
        let (fs0, fs, ok, current) = h.join();
        check!(ok, "ARCH_GET_FS failed in a thread");
        check_eq!(fs0, block, "fs:0 in the thread is not its own TLS block");
        check_eq!(
            fs,
            block,
            "ARCH_GET_FS in the thread is not the CLONE_SETTLS value"
        );
        check_eq!(current, block);
        check!(block != main_fs);
    }
    check_eq!(thread::fs0(), main_fs, "the main thread's FS changed");
    Ok(())
}

pub fn clone_parent_settid() -> TestResult {
    static RELEASE: AtomicU32 = AtomicU32::new(0);
    RELEASE.store(0, Ordering::Relaxed);
    let t = thread::spawn(|| {
        while RELEASE.load(Ordering::Acquire) == 0 {
            let _ = sys::futex_wait(&RELEASE, 0, Some(100_000_000));
        }
    });
    let word = t.block().tid.load(Ordering::Acquire);
    let t_tid = t.tid();
    RELEASE.store(1, Ordering::Release);
    let _ = sys::futex_wake(&RELEASE, 1);
    check_ok!(t.join_timeout(TEN_S).map_err(|_| Errno::ETIMEDOUT));
    check_eq!(
        word,
        t_tid,
        "CLONE_PARENT_SETTID did not store the tid before clone returned"
    );
    Ok(())
}

pub fn clone_child_settid() -> TestResult {
    let flags = (THREAD_FLAGS & !sys::CLONE_PARENT_SETTID) | sys::CLONE_CHILD_SETTID;
    let t = check_ok!(Builder::new().flags(flags).spawn(|| {
        (
            thread::current().tid.load(Ordering::Acquire),
            sys::gettid() as u32,
        )
    }));
    let expected = t.tid();
    let (word, tid) =
        check_ok!(t.join_timeout(TEN_S).map_err(|_| Errno::ETIMEDOUT)).unwrap_or((0, 0));
    check_eq!(tid, expected);
    check_eq!(
        word,
        tid,
        "CLONE_CHILD_SETTID did not store the tid in the child"
    );
    Ok(())
}

pub fn clone_child_cleartid_wakes() -> TestResult {
    let t = thread::spawn(|| {
        sys::sleep_ns(20_000_000);
    });
    check!(t.block().tid.load(Ordering::Acquire) != 0 || t.is_finished());
    // join waits on the tid word with FUTEX_WAIT: the exit must clear it and wake us.
    let started = sys::monotonic_ns();
    check!(
        t.join_timeout(TEN_S).is_ok(),
        "no CLONE_CHILD_CLEARTID wake within 10 s"
    );
    check!(ms_since(started) < 5000);
    Ok(())
}

pub fn clone_bad_flags_einval() -> TestResult {
    // Each of these is refused before anything is created; a child, if one were made
    // anyway, exits at once without touching memory.
    let try_clone = |flags: usize| -> Result<usize, Errno> {
        let ret: usize;
        // SAFETY: a child (there should be none) only calls exit(0).
        unsafe {
            core::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov eax, 60",
                "xor edi, edi",
                "syscall",
                "2:",
                inlateout("rax") sys::nr::CLONE => ret,
                in("rdi") flags, in("rsi") 0usize, in("rdx") 0usize, in("r10") 0usize,
                in("r8") 0usize, lateout("rcx") _, lateout("r11") _,
            );
        }
        sys::decode(ret)
    };
    // CLONE_THREAD needs CLONE_SIGHAND; CLONE_SIGHAND needs CLONE_VM.
    check_err!(try_clone(sys::CLONE_VM | sys::CLONE_THREAD), Errno::EINVAL);
    check_err!(try_clone(sys::CLONE_SIGHAND), Errno::EINVAL);
    Ok(())
}

pub fn thread_exit_keeps_process() -> TestResult {
    let t = thread::spawn(|| -> u32 { sys::exit_thread(7) });
    let result = check_ok!(t.join_timeout(TEN_S).map_err(|_| Errno::ETIMEDOUT));
    check!(result.is_none(), "the thread returned instead of exiting");
    // Still here: exit(2) ended only that thread.
    check_eq!(thread::spawn(|| 1).join(), 1);
    Ok(())
}

pub fn tid_and_pid() -> TestResult {
    let pid = sys::getpid();
    check!(pid > 0);
    check_eq!(sys::gettid(), pid, "the main thread's tid is the pid");
    let (tid, tpid) = thread::spawn(|| (sys::gettid(), sys::getpid())).join();
    check!(tid != pid);
    check_eq!(tpid, pid);
    Ok(())
}

pub fn set_tid_address_returns_tid() -> TestResult {
    static WORD: AtomicU32 = AtomicU32::new(0);
    check_eq!(
        check_ok!(sys::set_tid_address(WORD.as_ptr() as usize)),
        sys::gettid()
    );
    // In a thread too; the thread's exit then clears and wakes that word.
    // (Each thread puts its own tid word back, or join would never see it cleared.)
    let own = || thread::current().tid.as_ptr() as usize;
    let t = thread::spawn(move || {
        static T: AtomicU32 = AtomicU32::new(1);
        let r = sys::set_tid_address(T.as_ptr() as usize);
        let _ = sys::set_tid_address(own());
        (r, sys::gettid())
    });
    let (r, tid) = t.join();
    check_eq!(check_ok!(r), tid);
    // Bad addresses are not checked until exit (and then ignored).
    let t = thread::spawn(move || {
        let r = sys::set_tid_address(KERNEL_ADDR).is_ok();
        let _ = sys::set_tid_address(own());
        r
    });
    check!(t.join());
    Ok(())
}

pub fn sched_yield_ok() -> TestResult {
    for _ in 0..10 {
        check_eq!(check_ok!(sys::sched_yield()), 0);
    }
    Ok(())
}

pub fn futex_wait_wrong_value() -> TestResult {
    let word = AtomicU32::new(5);
    check_err!(sys::futex_wait(&word, 4, None), Errno::EAGAIN);
    let shared = sys::futex(word.as_ptr() as usize, sys::FUTEX_WAIT, 4, 0, 0, 0);
    check_err!(shared, Errno::EAGAIN);
    Ok(())
}

pub fn futex_wait_timeout() -> TestResult {
    let word = AtomicU32::new(0);
    let started = sys::monotonic_ns();
    check_err!(
        sys::futex_wait(&word, 0, Some(20_000_000)),
        Errno::ETIMEDOUT
    );
    let ms = ms_since(started);
    check!(
        ms >= 20,
        "FUTEX_WAIT with a 20 ms timeout returned after {ms} ms"
    );
    Ok(())
}

pub fn futex_wake_nobody() -> TestResult {
    let word = AtomicU32::new(0);
    check_eq!(check_ok!(sys::futex_wake(&word, 1)), 0);
    check_eq!(check_ok!(sys::futex_wake(&word, i32::MAX as u32)), 0);
    Ok(())
}

pub fn futex_wake_counts() -> TestResult {
    static WORD: AtomicU32 = AtomicU32::new(0);
    static ARRIVED: AtomicUsize = AtomicUsize::new(0);
    WORD.store(0, Ordering::Relaxed);
    ARRIVED.store(0, Ordering::Relaxed);
    let n = 3;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            thread::spawn(|| {
                ARRIVED.fetch_add(1, Ordering::AcqRel);
                sys::futex_wait(&WORD, 0, Some(TEN_S))
            })
        })
        .collect();
    while ARRIVED.load(Ordering::Acquire) < n {
        let _ = sys::sched_yield();
    }
    sys::sleep_ns(20_000_000);
    // Wake one at a time: never more than one per call, all of them in the end.
    let started = sys::monotonic_ns();
    let mut woken = 0;
    while woken < n && ms_since(started) < 5000 {
        let k = check_ok!(sys::futex_wake(&WORD, 1));
        check!(k <= 1, "FUTEX_WAKE with 1 woke {k}");
        woken += k;
        if k == 0 {
            sys::sleep_ns(1_000_000);
        }
    }
    check_eq!(woken, n, "not every waiter was woken");
    for h in handles {
        let r = h.join();
        check!(
            r == Ok(0),
            "a waiter's FUTEX_WAIT returned {r:?}, not 0 (woken)"
        );
    }
    Ok(())
}

pub fn futex_wake_all() -> TestResult {
    static WORD: AtomicU32 = AtomicU32::new(0);
    static ARRIVED: AtomicUsize = AtomicUsize::new(0);
    WORD.store(0, Ordering::Relaxed);
    ARRIVED.store(0, Ordering::Relaxed);
    let n = 4;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            thread::spawn(|| {
                ARRIVED.fetch_add(1, Ordering::AcqRel);
                while WORD.load(Ordering::Acquire) == 0 {
                    let _ = sys::futex_wait(&WORD, 0, Some(TEN_S));
                }
            })
        })
        .collect();
    while ARRIVED.load(Ordering::Acquire) < n {
        let _ = sys::sched_yield();
    }
    WORD.store(1, Ordering::Release);
    let k = check_ok!(sys::futex_wake(&WORD, i32::MAX as u32));
    check!(k <= n, "woke {k} of {n}");
    for h in handles {
        check!(h.join_timeout(TEN_S).is_ok(), "a waiter was not woken");
    }
    Ok(())
}

pub fn futex_private_and_shared() -> TestResult {
    // Private: wait and wake with FUTEX_PRIVATE_FLAG on private memory.
    static P: AtomicU32 = AtomicU32::new(0);
    P.store(0, Ordering::Relaxed);
    let t = thread::spawn(|| {
        while P.load(Ordering::Acquire) == 0 {
            let _ = sys::futex_wait(&P, 0, Some(TEN_S));
        }
    });
    sys::sleep_ns(5_000_000);
    P.store(1, Ordering::Release);
    check_ok!(sys::futex_wake(&P, 1));
    check!(t.join_timeout(TEN_S).is_ok());
    // Shared: without the flag, on a MAP_SHARED page.
    let addr = check_ok!(sys::mmap(
        0,
        sys::PAGE_SIZE,
        sys::PROT_READ | sys::PROT_WRITE,
        sys::MAP_SHARED | sys::MAP_ANONYMOUS,
        usize::MAX,
        0
    ));
    let t = thread::spawn(move || {
        // SAFETY: the mapping lives until after join; the word is used atomically.
        let word = unsafe { &*(addr as *const AtomicU32) };
        while word.load(Ordering::Acquire) == 0 {
            let ts = sys::Timespec::from_nanos(TEN_S);
            let _ = sys::futex(addr, sys::FUTEX_WAIT, 0, &raw const ts as usize, 0, 0);
        }
    });
    sys::sleep_ns(5_000_000);
    // SAFETY: as above.
    unsafe { (*(addr as *const AtomicU32)).store(1, Ordering::Release) };
    check_ok!(sys::futex(addr, sys::FUTEX_WAKE, 1, 0, 0, 0));
    let joined = t.join_timeout(TEN_S).is_ok();
    let _ = sys::munmap(addr, sys::PAGE_SIZE);
    check!(joined);
    Ok(())
}

pub fn futex_errors() -> TestResult {
    let word = AtomicU32::new(0);
    let addr = word.as_ptr() as usize;
    let wait = sys::FUTEX_WAIT | sys::FUTEX_PRIVATE_FLAG;
    check_err!(sys::futex(addr + 1, wait, 0, 0, 0, 0), Errno::EINVAL);
    check_err!(sys::futex(0, wait, 0, 0, 0, 0), Errno::EFAULT);
    check_err!(sys::futex(KERNEL_ADDR, wait, 0, 0, 0, 0), Errno::EFAULT);
    check_err!(sys::futex(unmapped_addr(), wait, 0, 0, 0, 0), Errno::EFAULT);
    let bad = sys::Timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000_000,
    };
    check_err!(
        sys::futex(addr, wait, 0, &raw const bad as usize, 0, 0),
        Errno::EINVAL
    );
    check_err!(sys::futex(addr, wait, 0, KERNEL_ADDR, 0, 0), Errno::EFAULT);
    check_err!(
        sys::futex(addr, 99 | sys::FUTEX_PRIVATE_FLAG, 0, 0, 0, 0),
        Errno::ENOSYS
    );
    Ok(())
}

pub fn arch_prctl_set_get_fs() -> TestResult {
    // In a thread of its own, so that nothing else uses its TLS while FS points elsewhere.
    let t = thread::spawn(|| {
        let mine = thread::fs0();
        static OTHER: [usize; 8] = [0x1234_5678, 0, 0, 0, 0, 0, 0, 0];
        let other = OTHER.as_ptr() as usize;
        let set = sys::arch_prctl(sys::ARCH_SET_FS, other);
        let seen = thread::fs0();
        let mut got = 0usize;
        let get = sys::arch_prctl(sys::ARCH_GET_FS, &raw mut got as usize);
        let restore = sys::arch_prctl(sys::ARCH_SET_FS, mine);
        (set, seen, get, got, other, restore, thread::fs0() == mine)
    });
    let (set, seen, get, got, other, restore, back) = t.join();
    check_ok!(set);
    check_eq!(seen, 0x1234_5678, "fs:0 does not read the new FS base");
    check_ok!(get);
    check_eq!(got, other);
    check_ok!(restore);
    check!(back);
    Ok(())
}

pub fn arch_prctl_errors() -> TestResult {
    let mut v = 0usize;
    check_err!(sys::arch_prctl(0x9999, &raw mut v as usize), Errno::EINVAL);
    check_err!(sys::arch_prctl(sys::ARCH_SET_FS, KERNEL_ADDR), Errno::EPERM);
    check_err!(sys::arch_prctl(sys::ARCH_GET_FS, 0), Errno::EFAULT);
    check_err!(
        sys::arch_prctl(sys::ARCH_GET_FS, KERNEL_ADDR),
        Errno::EFAULT
    );
    check_err!(
        sys::arch_prctl(sys::ARCH_GET_FS, unmapped_addr()),
        Errno::EFAULT
    );
    Ok(())
}

/// Loads xmm0-xmm15 from `a`, calls sched_yield `rounds` times, stores them to `b`.
fn sse_round_trip(a: &[u64; 32], b: &mut [u64; 32], rounds: usize) {
    // SAFETY: reads 256 bytes at `a` and writes 256 at `b`; the compiler never uses the xmm
    // registers in these programs (the target is soft-float), so clobbering them is harmless.
    unsafe {
        core::arch::asm!(
            "movdqu xmm0, [{a}]", "movdqu xmm1, [{a} + 16]", "movdqu xmm2, [{a} + 32]",
            "movdqu xmm3, [{a} + 48]", "movdqu xmm4, [{a} + 64]", "movdqu xmm5, [{a} + 80]",
            "movdqu xmm6, [{a} + 96]", "movdqu xmm7, [{a} + 112]", "movdqu xmm8, [{a} + 128]",
            "movdqu xmm9, [{a} + 144]", "movdqu xmm10, [{a} + 160]", "movdqu xmm11, [{a} + 176]",
            "movdqu xmm12, [{a} + 192]", "movdqu xmm13, [{a} + 208]",
            "movdqu xmm14, [{a} + 224]", "movdqu xmm15, [{a} + 240]",
            "2:",
            "mov eax, 24",
            "syscall",
            "dec {n}",
            "jnz 2b",
            "movdqu [{b}], xmm0", "movdqu [{b} + 16], xmm1", "movdqu [{b} + 32], xmm2",
            "movdqu [{b} + 48], xmm3", "movdqu [{b} + 64], xmm4", "movdqu [{b} + 80], xmm5",
            "movdqu [{b} + 96], xmm6", "movdqu [{b} + 112], xmm7", "movdqu [{b} + 128], xmm8",
            "movdqu [{b} + 144], xmm9", "movdqu [{b} + 160], xmm10", "movdqu [{b} + 176], xmm11",
            "movdqu [{b} + 192], xmm12", "movdqu [{b} + 208], xmm13",
            "movdqu [{b} + 224], xmm14", "movdqu [{b} + 240], xmm15",
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_mut_ptr(),
            n = inout(reg) rounds.max(1) => _,
            out("rax") _, out("rcx") _, out("r11") _,
            options(nostack),
        );
    }
}

/// Every thread's SSE registers survive system calls and context switches (more threads than
/// CPUs, each yielding). C programs use SSE everywhere (musl's pthread_create starts with
/// `pxor xmm0, xmm0`): a kernel that has not enabled SSE (CR4.OSFXSR) kills this program
/// with SIGILL (status 132) here, and one that does not save and restore the registers per
/// thread fails the comparison.
pub fn sse_registers_per_thread() -> TestResult {
    urt::diag!("sse: a death by SIGILL (status 132) here means the kernel has not enabled SSE");
    let threads = sys::cpu_count() * 2 + 1;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                let mut a = [0u64; 32];
                for (i, w) in a.iter_mut().enumerate() {
                    *w = ((t as u64 + 1) << 40) ^ ((i as u64) << 8) ^ 0x5555_0000_aaaa_0000;
                }
                let mut b = [0u64; 32];
                sse_round_trip(&a, &mut b, 200);
                a == b
            })
        })
        .collect();
    let mut a = [0u64; 32];
    for (i, w) in a.iter_mut().enumerate() {
        *w = !(i as u64);
    }
    let mut b = [0u64; 32];
    sse_round_trip(&a, &mut b, 200);
    check!(a == b, "the main thread's xmm registers changed");
    for (t, h) in handles.into_iter().enumerate() {
        check!(
            h.join(),
            "thread {t}'s xmm registers changed across sched_yield"
        );
    }
    Ok(())
}
