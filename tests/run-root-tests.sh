#!/bin/bash
# Root tests on loop devices and filesystem images (tests/root/NN-*.sh; each cleans up after itself).
# Only the numbered scripts are tests: the helpers they source (*.bash, lib/) are not run.
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0; fail=0; failed=()
for t in tests/root/[0-9][0-9]-*.sh; do
  [ -e "$t" ] || continue
  echo "=== $t"
  if bash "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$t"); echo "FAILED: $t"; fi
done
[ "$fail" -eq 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "root tests: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] || { echo "no tests found in tests/root" >&2; exit 1; }
[ "$fail" -eq 0 ]
