//! `usertests [--nested] [--poweroff] [--list] [--pending] [FILTER...]`: the user-space test
//! suite.
//!
//! Each test checks one system call's success semantics and its error cases exactly as Linux
//! answers them; the same binary runs natively on Linux, as Linux's /init
//! (`cargo xtask test --linux`), and on this project's kernel, so Linux is the oracle. Output is
//! KTAP version 1 (see `urt::ktap`); the exit status is 0 when every test passed.
//!
//! [`GROUPS`] are the tests the kernel passes. [`PENDING`] holds, one group per module, the
//! tests written ahead of the kernel features they check (issue 22: files, paths, descriptors,
//! pipes, /dev, /proc and /sys): they run only with `--pending`, which the Linux
//! oracle run passes. A group moves from `PENDING` to `GROUPS` when the kernel passes it.

#![no_std]
#![no_main]

extern crate alloc;

mod childsig;
mod devproc;
mod fdargs;
mod fds;
mod filemap;
mod files;
mod io;
mod mem;
mod memctl;
mod misc;
mod mremap;
mod pathcalls;
mod paths;
mod pipe_poll;
mod pipes;
mod proccalls;
mod process;
mod procfs;
mod procs;
mod rseq;
mod signals;
mod stress;
mod threads;
mod timers;
mod tty;
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
    mem::mmap_checks_the_place_before_the_kind,
    mem::mmap_shared_anon_threads,
    mem::munmap_middle_splits,
    mem::munmap_spanning_mappings,
    mem::munmap_errors,
    mem::munmap_nothing_is_ok,
    mem::mprotect_splits,
    mem::mprotect_errors,
    mem::mprotect_grows_flags,
    mem::madvise_dontneed_zeroes,
    mem::madvise_errors,
    mem::madvise_dontneed_mixed_kinds,
    mem::madvise_free_stops_at_shared,
    mem::mprotect_mixed_kinds_and_holes,
    mem::munmap_mixed_kinds,
    mem::brk_grow_shrink,
    mem::brk_refuses_nonsense,
    mremap::mremap_shrink_in_place,
    mremap::mremap_grow_in_place,
    mremap::mremap_grow_in_place_merges_with_the_next,
    mremap::mremap_grow_moves_only_with_maymove,
    mremap::mremap_move_part_splits_the_source,
    mremap::mremap_fixed_replaces_the_destination,
    mremap::mremap_fixed_shrinks_and_grows,
    mremap::mremap_fixed_errors,
    mremap::mremap_dontunmap_private,
    mremap::mremap_dontunmap_shared_keeps_the_pages_in_both,
    mremap::mremap_duplicates_a_shared_mapping,
    mremap::mremap_errors,
    mremap::mremap_prot_none_pages_move_with_their_contents,
    mremap::mremap_file_mappings,
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
    misc::prlimit_stack,
    misc::readlinkat_missing,
    misc::unknown_syscall_enosys,
    // restartable sequences
    rseq::registration_errors,
    rseq::cpu_id_follows_affinity,
    rseq::reregistering_keeps_one_concurrency_id,
    rseq::fork_inherits_threads_do_not,
    rseq::signal_aborts_critical_section,
    rseq::preemption_aborts_critical_section,
    rseq::per_cpu_counters_are_exact,
    rseq::bad_signature_kills,
    // timers, scheduling policy, capabilities
    timers::alarm_returns_seconds_left,
    timers::alarm_sends_sigalrm,
    timers::setitimer_real_repeats,
    timers::setitimer_errors,
    timers::posix_timer_sends_its_signal,
    timers::posix_timer_default_event_and_thread_id,
    timers::posix_timer_settime_and_gettime,
    timers::posix_timer_overrun,
    timers::posix_timer_errors,
    timers::cpu_time_timer_fires_after_spinning,
    timers::thread_cpu_time_timer_waits_while_asleep,
    timers::itimer_prof_counts_down_and_sends_sigprof,
    timers::times_counts_ticks,
    timers::priority_get_set,
    timers::sched_policy_calls,
    timers::capabilities_get_and_drop,
    timers::capabilities_bounding_set,
    timers::robust_list_thread_area_socket,
    // the argument checks of the process, time and signal calls, in Linux's order
    proccalls::clocks_linux_has,
    proccalls::clock_nanosleep_checks_clock_first,
    proccalls::gettimeofday_writes_timezone,
    proccalls::timer_checks_in_linux_order,
    proccalls::kill_all_and_sigpending_sizes,
    proccalls::wait_options_and_siginfo_order,
    proccalls::waitid_pidfd_of_other_descriptors,
    proccalls::prlimit64_checks_in_linux_order,
    proccalls::child_subreaper_adopts_orphans,
    proccalls::dumpable_set_and_inherited,
    proccalls::arch_prctl_queries_and_int_flags,
    proccalls::sched_ext_range_and_other_affinity,
    proccalls::futex_requeue_wake_op_bitset,
    proccalls::futex_priority_inheritance_locks,
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
    process::execve_refuses_malformed_elf_files,
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
    // signals between parents and children
    childsig::sigchld_handler_sees_exit_and_kill,
    childsig::sigchld_ignored_leaves_no_zombie,
    childsig::sa_nocldwait_leaves_no_zombie_but_signals,
    childsig::stop_and_continue_wait4_and_sigchld,
    childsig::sa_nocldstop_only_ends_signal,
    childsig::waitid_stopped_and_continued,
    childsig::kill_negative_pgid_signals_the_group,
    childsig::kill_zero_signals_the_callers_group,
    childsig::kill_zombie_then_collected,
    childsig::wait4_interrupted_by_a_handler,
    childsig::wait4_restarts_under_sa_restart,
    childsig::fork_keeps_handlers_and_mask_not_pending,
    childsig::execve_resets_handlers_keeps_ignored_mask_pending,
    childsig::tty_stop_dropped_in_orphaned_groups,
    // /proc, /sys, mount
    procfs::proc_self_links_to_the_process,
    procfs::proc_self_status_names_the_process,
    procfs::proc_self_stat_has_linux_fields,
    procfs::proc_self_statm_counts_pages,
    procfs::proc_self_status_reads_in_pieces_and_seeks,
    procfs::proc_self_fd_lists_and_links,
    procfs::proc_self_cwd_and_exe,
    procfs::proc_meminfo_cpuinfo_uptime_stat,
    procfs::proc_mounts_lists_proc_and_sys,
    procfs::sys_cpu_lists_and_topology,
    procfs::statfs_names_proc_and_sysfs,
    procfs::mount_and_umount2_rules,
    // stress
    stress::stress_fault_vs_mmap,
];

/// Last: a kernel without SSE kills the program here.
const LAST: &[Test] = urt::tests![threads::sse_registers_per_thread];

/// Files and directories: open to sysinfo (`files`).
const FILES: &[Test] = urt::tests![
    files::open_creat_excl_trunc,
    files::open_directory_rules,
    files::open_append_writes_at_the_end,
    files::close_then_ebadf,
    files::read_write_and_offsets,
    files::vectored_reads_and_writes,
    files::lseek_whence_and_holes,
    files::stat_family_fields,
    files::statx_fields,
    files::getdents64_lists_everything,
    files::mkdirat_rules,
    files::unlinkat_rules,
    files::renameat2_rules,
    files::linkat_shares_the_file,
    files::symlink_and_readlink,
    files::chmod_changes_the_mode,
    files::truncate_grows_and_shrinks,
    files::fallocate_grows_the_file,
    files::fsync_and_fdatasync,
    files::chdir_fchdir_getcwd,
    files::faccessat2_modes,
    files::umask_masks_new_modes,
    files::memfd_create_makes_a_file,
    files::statfs_names_the_filesystem,
    files::sendfile_copies,
    files::eventfd_counts,
    files::sysinfo_is_plausible,
];

/// Path walks (`paths`).
const PATHS: &[Test] = urt::tests![
    paths::dot_and_dotdot,
    paths::symlinks_relative_absolute_and_chained,
    paths::o_nofollow_and_o_excl_on_links,
    paths::symlink_loops_and_the_limit,
    paths::name_and_path_length_limits,
    paths::a_file_is_not_a_directory,
    paths::empty_and_bad_paths,
    paths::at_calls_relative_to_a_directory,
    pathcalls::path_calls_take_int_flags,
    pathcalls::path_calls_check_in_linux_order,
    pathcalls::open_flags_as_linux_builds_them,
    pathcalls::o_path_descriptors_name_a_place,
    pathcalls::chown_as_root,
    pathcalls::pipes_and_eventfds_take_owner_and_times,
    pathcalls::exec_of_a_file_open_for_writing_is_busy,
    pathcalls::xattrs_on_tmpfs,
];

/// The descriptor table, within a process and across fork, clone and execve (`fds`).
const FDS: &[Test] = urt::tests![
    fds::dup_takes_the_lowest_free,
    fds::dup2_and_dup3,
    fds::fcntl_dupfd,
    fds::fcntl_descriptor_flags,
    fds::fcntl_status_flags,
    fds::close_range_closes_and_marks,
    fds::fork_shares_open_files,
    fds::clone_files_shares_the_table,
    fds::clone_without_files_copies_the_table,
    fds::execve_closes_cloexec_descriptors,
    fds::execve_runs_scripts_through_their_interpreter,
    fds::execve_relative_paths_and_directory_descriptors,
    fdargs::descriptors_and_int_flags_are_32_bit,
    fdargs::descriptor_calls_check_in_linux_order,
    fdargs::fcntl_signal_owner_lease_seals_and_locks,
    fdargs::fd_xattrs_by_namespace_and_kind,
    fdargs::readv_of_a_directory_is_eisdir,
    fdargs::pidfd_is_neither_read_nor_written,
];

/// Pipes and waiting on them (`pipes`).
const PIPES: &[Test] = urt::tests![
    pipes::pipe2_flags,
    pipes::pipe_between_processes,
    pipes::pipe_without_reader_epipe_and_sigpipe,
    pipes::pipe_buf_writes_are_atomic,
    pipes::nonblocking_pipe_full_and_fionread,
    pipes::pipe_write_fault_counts_in_pieces,
    pipes::poll_on_pipes,
    pipes::poll_waits_and_times_out,
    pipes::ppoll_on_pipes,
    pipes::select_and_pselect6_on_pipes,
    filemap::mmap_of_a_pipe_is_enodev,
];

/// More of pipes, eventfd and the poll family (`pipe_poll`).
const PIPE_POLL: &[Test] = urt::tests![
    pipe_poll::pipe_capacity_is_counted_in_pages,
    pipe_poll::pipe_packets_with_o_direct,
    pipe_poll::readv_and_writev_on_pipes,
    pipe_poll::blocked_pipe_calls_and_signals,
    pipe_poll::poll_hangup_error_and_wakeups,
    pipe_poll::poll_and_select_after_a_signal,
    pipe_poll::ppoll_and_pselect6_signal_masks,
    pipe_poll::time_left_is_written_back,
    pipe_poll::select_bit_layout,
    pipe_poll::eventfd_waits_and_readiness,
    pipe_poll::names_and_old_calls,
];

/// The terminal (`tty`).
const TTY: &[Test] = urt::tests![
    tty::termios_set_and_get,
    tty::window_size_set_and_get,
    tty::console_reads_without_input,
    tty::controlling_terminal_and_job_control,
    tty::opening_the_serial_line_takes_it,
];

/// /dev, /proc and /sys (`devproc`).
const DEVPROC: &[Test] = urt::tests![
    devproc::dev_null_and_zero,
    devproc::dev_full_is_full,
    devproc::dev_random_and_urandom,
    devproc::dev_tty_nodes,
    devproc::terminal_ioctls,
    devproc::proc_self_names_the_process,
    devproc::proc_self_maps_lists_mappings,
    devproc::proc_self_status_and_stat,
    devproc::proc_self_cmdline_and_comm,
    devproc::proc_self_fd_lists_descriptors,
    devproc::proc_meminfo_and_uptime,
    devproc::proc_cpuinfo_and_stat_count_cpus,
    devproc::proc_mounts_lists_root_and_proc,
    devproc::sys_cpu_lists,
];

/// Mappings of files (`filemap`).
const FILEMAP: &[Test] = urt::tests![
    filemap::shared_stores_reach_read,
    filemap::write_reaches_a_shared_mapping,
    filemap::private_stores_stay_private,
    filemap::shared_file_mapping_across_fork,
    filemap::pages_past_the_end_raise_sigbus,
    filemap::truncate_under_a_mapping_raises_sigbus,
    filemap::msync_rules,
    filemap::mmap_file_errors,
    filemap::mmap_offset_and_lifetime,
    filemap::shared_mapping_between_two_opens,
    filemap::madvise_dontneed_on_file_mappings,
    filemap::mprotect_file_mappings,
    filemap::map_shared_validate,
    signals::sigbus_past_the_end_of_a_mapped_file,
];

/// mincore, msync, mlock, madvise's advice, process_madvise, overcommit (`memctl`).
const MEMCTL: &[Test] = urt::tests![
    memctl::mincore_anonymous_residency,
    memctl::mincore_file_page_cache,
    memctl::mincore_errors,
    memctl::msync_anonymous_and_edges,
    memctl::mlock_faults_in_and_counts,
    memctl::mlock_errors,
    memctl::mlock_stops_at_prot_none,
    memctl::msync_and_madvise_ignore_high_bits,
    memctl::mlockall_current_and_future,
    memctl::madvise_every_advice,
    memctl::madvise_locked_memory,
    memctl::madvise_populate,
    memctl::madvise_remove_punches_holes,
    memctl::madvise_edges,
    memctl::madvise_guard_regions,
    memctl::process_madvise_own_memory,
    memctl::mmap_hugetlb_without_reserved_pages,
    memctl::overcommit_heuristic,
    memctl::mmap_munmap_mprotect_edges,
];

/// What runs, in order. A group from [`PENDING`] joins here, before [`LAST`], when the kernel
/// passes it.
const GROUPS: &[&[Test]] = &[
    TESTS, FILES, PATHS, FDS, PIPES, PIPE_POLL, FILEMAP, MEMCTL, TTY, DEVPROC, LAST,
];

/// The groups of features the kernel does not have yet: they run only with `--pending` (after
/// [`GROUPS`]).
const PENDING: &[&[Test]] = &[];

fn main() -> i32 {
    mount_pseudo_filesystems();
    urt::ktap::run(GROUPS, PENDING)
}

/// As Linux's /init, mounts proc on /proc, sysfs on /sys and devtmpfs on /dev, as a
/// distribution's init does (see [`urt::init`]). A failure also shows up in the tests that need
/// them.
fn mount_pseudo_filesystems() {
    use urt::init::{DEVTMPFS, PROC, SYSFS};
    for (fs, e) in urt::init::mount_pseudo_filesystems(&[PROC, SYSFS, DEVTMPFS]) {
        urt::eprintln!("usertests: mount {:?} on {:?}: {e:?}", fs.fstype, fs.target);
    }
}
