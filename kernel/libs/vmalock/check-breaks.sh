#!/bin/sh
# Mutation check of the loom models: every deliberately removed check (the `broken!` sites in
# src/, and `fork_no_write_lock` in tests/loom.rs, which takes the write lock out of the fork
# model's fork) must make at least one loom model fail. The check lives in xtask
# (xtask/src/breaks.rs) and runs in `cargo xtask test`; this is a shortcut to it.
#
#   kernel/libs/vmalock/check-breaks.sh [NAME...]     (from anywhere in the workspace)
cd "$(dirname "$0")/../../.." || exit 2
exec cargo xtask check-breaks "$@"
