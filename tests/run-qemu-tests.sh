#!/bin/bash
# QEMU boots under TCG (never -enable-kvm).
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0; fail=0
for t in tests/qemu/*.sh; do
  [ -e "$t" ] || continue
  echo "=== $t"
  if bash "$t"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $t"; fi
done
echo "qemu tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
