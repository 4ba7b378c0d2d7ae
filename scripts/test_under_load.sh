#!/usr/bin/env bash
# The README's test command on a busy machine: one CPU hog per core (a Python busy loop at normal priority, as
# another user's job would be) runs for the whole suite, then is stopped. The suite must pass this way: its waits
# end on outcomes, and its bounds count work (CPU seconds of the test's own process), not the wall clock.
# Usage: bash scripts/test_under_load.sh [pytest args]     (HOGS=N to choose how many; default: one per core)
set -uo pipefail
cd "$(dirname "$0")/.."
hogs=${HOGS:-$(nproc)}
pids=()
stop_hogs() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait "${pids[@]}" 2>/dev/null; }
trap stop_hogs EXIT INT TERM
for _ in $(seq "$hogs"); do
  python3 -c "while True: pass" &
  pids+=($!)
done
echo "test_under_load.sh: $hogs CPU hogs running (pids ${pids[*]}); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
bash scripts/test.sh "$@"
rc=$?
echo "test_under_load.sh: exit $rc after $(( $(date +%s) - start )) s with $hogs hogs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
