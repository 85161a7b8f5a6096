//! `usertests [--nested] [--poweroff] [--list] [FILTER...]`: the user-space test suite.
//!
//! Each test checks one system call's success semantics and its error cases exactly as Linux
//! answers them; the same binary runs natively on Linux, as Linux's /init
//! (`cargo xtask test --linux`), and on this project's kernel, so Linux is the oracle. Output is
//! KTAP version 1 (see `urt::ktap`); the exit status is 0 when every test passed.

#![no_std]
#![no_main]

extern crate alloc;

mod io;
mod mem;
mod misc;
mod process;
mod procs;
mod signals;
mod stress;
mod threads;
mod util;

use urt::ktap::Test;

urt::main!(main);

const TESTS: &[Test] = urt::tests![
    // memory
    mem::mmap_anon_rw_zeroed,
    mem::mmap_fixed_replaces,
    mem::mmap_fixed_noreplace,
    mem::mmap_hint_free_is_used,
    mem::mmap_hint_busy_moves,
    mem::mmap_noreserve,
    mem::mmap_populate,
    mem::mmap_prot_none,
    mem::mmap_prot_read,
    mem::mmap_prot_exec,
    mem::mmap_einval,
    mem::mmap_enomem,
    mem::mmap_shared_anon_threads,
    mem::munmap_middle_splits,
    mem::munmap_spanning_mappings,
    mem::munmap_errors,
    mem::munmap_nothing_is_ok,
    mem::mprotect_splits,
    mem::mprotect_errors,
    mem::madvise_dontneed_zeroes,
    mem::madvise_errors,
    mem::madvise_dontneed_mixed_kinds,
    mem::madvise_free_stops_at_shared,
    mem::mprotect_mixed_kinds_and_holes,
    mem::munmap_mixed_kinds,
    mem::brk_grow_shrink,
    mem::brk_refuses_nonsense,
    mem::mremap_grow_and_move,
    mem::syscall_writes_demand_fault,
    mem::syscall_reads_demand_fault,
    // threads, TLS, futex
    threads::clone_spawn_join,
    threads::clone_many_threads,
    threads::clone_settls_own_fs,
    threads::clone_parent_settid,
    threads::clone_child_settid,
    threads::clone_child_cleartid_wakes,
    threads::clone_bad_flags_einval,
    threads::thread_exit_keeps_process,
    threads::tid_and_pid,
    threads::set_tid_address_returns_tid,
    threads::sched_yield_ok,
    threads::futex_wait_wrong_value,
    threads::futex_wait_timeout,
    threads::futex_wake_nobody,
    threads::futex_wake_counts,
    threads::futex_wake_all,
    threads::futex_private_and_shared,
    threads::futex_errors,
    threads::arch_prctl_set_get_fs,
    threads::arch_prctl_errors,
    // time, identity, odd calls
    misc::nanosleep_sleeps,
    misc::nanosleep_errors,
    misc::clock_monotonic_across_threads,
    misc::clock_realtime_plausible,
    misc::clock_errors,
    misc::getrandom_fills,
    misc::getrandom_flags,
    misc::getrandom_bad_buffer,
    misc::getrandom_stops_at_a_fault,
    misc::prctl_name,
    misc::prctl_errors,
    misc::uname_fields,
    misc::getrusage_minflt_grows,
    misc::getrusage_errors,
    misc::sched_getaffinity_mask,
    misc::sched_getaffinity_errors,
    misc::sched_setaffinity_pins,
    misc::sched_setaffinity_other_thread,
    misc::sched_setaffinity_errors,
    misc::ids_consistent,
    misc::set_robust_list_len,
    misc::rseq_register,
    misc::prlimit_stack,
    misc::readlinkat_missing,
    misc::unknown_syscall_enosys,
    // signals
    signals::handler_gets_siginfo,
    signals::handler_entry_registers_and_alignment,
    signals::ucontext_describes_the_fault,
    signals::sigreturn_restores_every_register,
    signals::handler_mask_nodefer_and_nesting,
    signals::sa_resethand_runs_once,
    signals::blocked_signals_wait_until_unblocked,
    signals::ignoring_a_signal_discards_it,
    signals::default_ignored_signals_do_nothing,
    signals::sigsuspend_returns_eintr_after_the_handler,
    signals::sigtimedwait_takes_signals_and_times_out,
    signals::sigaltstack_handler_runs_on_the_alternate_stack,
    signals::sigaltstack_errors,
    signals::nanosleep_interrupted_returns_eintr_and_the_rest,
    signals::futex_wait_restarts_under_sa_restart,
    signals::futex_wait_interrupted_without_sa_restart,
    signals::segv_handler_mprotects_and_resumes,
    signals::segv_on_unmapped_memory_is_maperr,
    signals::sigfpe_divide_by_zero,
    signals::general_protection_is_segv_si_kernel,
    signals::int3_is_sigtrap,
    signals::realtime_signals_queue_in_order,
    signals::cancel_signals_reach_another_thread,
    signals::process_signal_goes_to_a_thread_that_takes_it,
    signals::rt_sigaction_set_and_get,
    signals::rt_sigprocmask_how,
    signals::signal_errors,
    // descriptors
    io::write_stdout,
    io::write_errors,
    io::write_stops_at_a_fault,
    io::write_large_console,
    io::writev_gathers,
    io::writev_errors,
    io::read_errors,
    io::readv_errors,
    io::pread_pwrite_console,
    io::fstat_std_fds,
    io::fstat_errors,
    io::newfstatat_fds_and_paths,
    io::ioctl_tcgets,
    // processes that die of faults
    procs::faulter_exit_statuses,
    procs::c_programs_run,
    // processes: fork, vfork, clone, clone3, wait4, waitid, execve, groups and sessions
    process::fork_returns_pid_and_zero,
    process::fork_memory_is_copied,
    process::fork_shared_anon_stays_shared,
    process::fork_madv_dontfork,
    process::fork_madv_wipeonfork,
    process::fork_of_fork,
    process::fork_many_children,
    process::fork_from_a_thread,
    process::wait4_status_encoding,
    process::wait4_wnohang,
    process::wait4_echild_esrch,
    process::wait4_einval,
    process::wait4_efault_still_collects,
    process::wait4_picks_the_pid,
    process::wait4_process_groups,
    process::wait4_rusage,
    process::wait_clone_children,
    process::waitid_exited_siginfo,
    process::waitid_killed_siginfo,
    process::waitid_wnohang,
    process::waitid_wnowait_then_collect,
    process::waitid_idtypes,
    process::waitid_errors,
    process::waitid_without_wexited,
    process::getppid_of_children,
    process::orphan_adopted_by_top,
    process::getpgid_getsid,
    process::setsid_in_child,
    process::setsid_group_leader_eperm,
    process::setpgid_moves_children,
    process::setpgid_errors,
    process::setpgid_after_exec_eacces,
    process::execve_passes_argv_and_envp,
    process::execve_keeps_pid_and_parent,
    process::execve_errors,
    process::execveat_paths_and_flags,
    process::execve_from_a_thread,
    process::vfork_waits_for_exit,
    process::vfork_returns_at_exec,
    process::clone_vm_vfork_shares_memory,
    process::clone_vm_child_cleartid,
    process::clone_vfork_exec_cleartid,
    process::clone_settid_fork,
    process::clone3_sizes,
    process::clone3_einval,
    process::clone3_vfork_on_a_stack,
    // stress
    stress::stress_fault_vs_mmap,
    // last: a kernel without SSE kills the program here
    threads::sse_registers_per_thread,
];

fn main() -> i32 {
    urt::ktap::run(TESTS)
}
