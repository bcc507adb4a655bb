#!/usr/bin/env bash
# The whole suite, N times in a row (default 3), beside two CPU-bound loops: the check that
# the tests wait for evidence, never for a fixed time (docs/testing.md: "On a busy machine").
# The loops run in a session of their own (setsid), so that on Linux's autogroup scheduler
# they take their full share of the cores from the tests, as another user's job would.
# Usage: bash tests/busy.sh [N]    (from the repository root; `make test-busy` does this)
set -u
runs=${1:-3}
logs=${BUSY_LOGS:-runs/busy}
mkdir -p "$logs"
setsid bash -c 'python3 -c "while True: pass" & python3 -c "while True: pass" & wait' &
busy=$!
trap 'kill -- -"$busy" 2>/dev/null' EXIT
failed=0
for i in $(seq "$runs"); do
    start=$(date +%s)
    make test >"$logs/test-$i.log" 2>&1
    rc=$?
    summary=$(grep -E "^=+ .*(passed|failed).* in " "$logs/test-$i.log" | tail -1)
    echo "run $i of $runs: exit $rc, $(($(date +%s) - start)) s: $summary"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
done
echo "$failed of $runs runs failed (logs in $logs/)"
[ "$failed" -eq 0 ]
