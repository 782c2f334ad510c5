#!/usr/bin/env bash
# Runs the system tests of this folder (`make test-system`, part of `make test`): each
# script prints PASS, SKIP or FAIL with a reason; this one fails when any of them fails
# and says how long each took. Arguments: test names to run (default: all).
set -u
cd "$(dirname "$0")"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(install service cron demo)
failed=()
for t in "${tests[@]}"; do
    start=$SECONDS
    echo "== system test $t"
    bash "./$t.sh" || failed+=("$t")
    echo "   ($t: $((SECONDS - start)) s)"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "system tests failed: ${failed[*]}"
    exit 1
fi
echo "system tests: all passed or skipped"
