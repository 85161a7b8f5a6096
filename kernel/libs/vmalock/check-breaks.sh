#!/bin/sh
# Mutation check of the loom models: builds the crate once per deliberately removed check
# (`--cfg vmalock_break="NAME"`, see the `broken!` sites in src/, and `fork_no_write_lock` in
# tests/loom.rs, which takes the write lock out of the fork model's fork), runs every model on
# its own and prints which fail. Every break must make at least one model fail; the script
# exits 1 if one does not (or does not build).
#
#   kernel/libs/vmalock/check-breaks.sh [NAME...]     (from anywhere in the workspace)
#
# Uses its own target directory: every break rebuilds loom and its dependencies (~20 s each).
set -u
cd "$(dirname "$0")/../../.." || exit 2
BREAKS=${*:-"mm_check range_check seq_recheck recheck_relaxed unlock_relaxed inc_relaxed
attach_relaxed copy_lock wake_via_mm no_wake writer_no_wait clear_relaxed end_read_relaxed
detach_no_wait no_limit fork_no_write_lock"}
export CARGO_TARGET_DIR=target/loom-breaks LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
status=0
for b in $BREAKS; do
    export RUSTFLAGS="--cfg loom --cfg vmalock_break=\"$b\""
    test="cargo test --release -q -p vmalock --test loom"
    if ! models=$($test -- --list 2>/dev/null | sed -n 's/: test$//p') || [ -z "$models" ]; then
        echo "$b: DOES NOT BUILD"
        status=1
        continue
    fi
    failed=""
    for m in $models; do
        $test -- --exact "$m" >/dev/null 2>&1 || failed="$failed $m"
    done
    if [ -z "$failed" ]; then
        echo "$b: NO MODEL FAILED"
        status=1
    else
        echo "$b:$failed"
    fi
done
exit $status
