#!/bin/bash
# Root tests on loop devices and filesystem images (each test script cleans up after itself).
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0; fail=0
for t in tests/root/*.sh; do
  [ -e "$t" ] || continue
  echo "=== $t"
  if bash "$t"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $t"; fi
done
echo "root tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
