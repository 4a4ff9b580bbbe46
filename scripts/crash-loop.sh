#!/bin/sh
# Kills real builds with SIGKILL at random moments N times (default 100) and checks
# the store after each: `rbuild store check` finds no damage, no mounts or processes
# are left, and the next build gives the same image (tests/it/crash.rs).
# Needs root (overlay mounts) and /bin/busybox (busybox-static).
# Usage: scripts/crash-loop.sh [N]      RBUILD_CRASH_SEED=S replays a run.
set -u
cd "$(dirname "$0")/.."
n="${1:-100}"
log=$(mktemp)
start=$(date +%s)
RBUILD_CRASH_ITERATIONS="$n" cargo test -j1 --test it crash -- --nocapture --test-threads 1 >"$log" 2>&1
status=$?
grep -E '^(crash:|test |test result|thread|  left|  right|error)' "$log"
[ $status -eq 0 ] || tail -40 "$log"
rm -f "$log"
echo "crash-loop: $n iterations, exit $status, $(( $(date +%s) - start )) s wall time (incl. compile)"
exit $status
