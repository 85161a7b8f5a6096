# Debian's stress-ng: the memory and process stressors, 2 instances each on the suite's 4
# CPUs, 3 s each, with --verify. A good run exits 0 and says `successful run completed`, and
# no line speaks of a failure (but the summary's `failed: 0`). Each stressor's bogo-ops count
# is printed as `bogo-ops: NAME N usr U sys S` for the comparison with Linux's run.
. /acceptance/lib

# Runs a program without CAP_SYS_ADMIN: dropped from the bounding set, so that its execve
# grants it no more (root keeps the others).
without_sys_admin() {
    python3 -c '
import ctypes, os, sys
PR_CAPBSET_DROP, CAP_SYS_ADMIN = 24, 21
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
    sys.exit("PR_CAPBSET_DROP: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
' "$@"
}

# The command that starts stress-ng (a prefix, such as without_sys_admin); none by default.
launcher=

stressor() {
    name=$1
    shift
    out=/tmp/stress-ng.$name.out
    $launcher stress-ng --timeout 3 --verify --metrics-brief --temp-path /tmp "--$name" 2 "$@" > "$out" 2>&1
    status=$?
    cat "$out"
    expect "stress-ng --$name: exit status" "$status" 0
    check "stress-ng --$name: successful run completed" grep -q "] successful run completed" "$out"
    check "stress-ng --$name: no failure lines" sh -c "! grep -E 'fail|FAIL' '$out' | grep -vq ' failed: 0\$'"
    # The metrics line: `stress-ng: metrc: [PID] NAME OPS REAL USR SYS RATE RATE`.
    metrics=$(awk -v s="$name" '$4 == s && $5 ~ /^[0-9]+$/ { print $5, "usr", $7, "sys", $8 }' "$out")
    echo "bogo-ops: $name $metrics"
    ops=${metrics%% *}
    check "stress-ng --$name: some bogo ops" test "${ops:-0}" -gt 0
    rm -f "$out"
}

stressor vm --vm-bytes 32M
stressor mmap --mmap-bytes 16M
stressor mmapfork
stressor brk
stressor stack
stressor fork
# As root, the madvise stressor's MADV_HWPOISON makes Linux poison pages and send SIGBUS,
# which can end the run unsuccessfully; without CAP_SYS_ADMIN Linux refuses it (EPERM), as
# this kernel, which has no memory-failure handling, always does (EINVAL).
launcher=without_sys_admin
stressor madvise
launcher=
stressor mprotect
stressor pthread
stressor sigsegv
finish
