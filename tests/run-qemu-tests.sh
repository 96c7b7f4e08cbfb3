#!/bin/bash
# The QEMU tests (tests/qemu/NN-*.sh; QEMU under TCG, never -enable-kvm).
# Only the numbered scripts are tests: the helpers they source (*.bash, lib/) are not run.
#   tests/run-qemu-tests.sh [TEST...]     (default: every numbered test)
# LB_QEMU_JOBS=N runs N tests at once (default 2: a TCG guest keeps about one core busy and a
# test spends much of its time outside QEMU, so two at a time use a 2-core machine fully). Each
# test works in its own directory, loop devices and QEMU; a test's output is printed in one
# piece when it ends, with its duration, and the slowest tests are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${LB_QEMU_JOBS:-2}
case $jobs in '' | *[!0-9]* | 0) echo "LB_QEMU_JOBS must be a positive number, not '$jobs'" >&2; exit 2 ;; esac

if [ $# -gt 0 ]; then tests=("$@"); else tests=(tests/qemu/[0-9][0-9]-*.sh); fi
[ -e "${tests[0]}" ] || { echo "no tests found in tests/qemu" >&2; exit 1; }
# The slowest tests (measured: 46 about 9 min, 43, 28, 44 and 45 3-4 min) start first, so that
# the run does not end with one long test alone on a core; the rest keep their numeric order.
slow_first=(46 43 28 44 45)
ordered=()
for n in "${slow_first[@]}"; do
  for t in "${tests[@]}"; do [[ $(basename "$t") == "$n"-* ]] && ordered+=("$t"); done
done
for t in "${tests[@]}"; do
  [[ " ${slow_first[*]} " == *" $(basename "$t" | cut -c1-2) "* ]] || ordered+=("$t")
done
tests=("${ordered[@]}")

# What every test needs, made once before any starts (so that two tests never build them at
# the same time): the binaries, the lbtest tools, the kernel.
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build -q --release --locked --target x86_64-unknown-linux-musl -p lifeboat -p lifeboat-init
cargo build -q --locked -p lifeboat-tests --bins
bash scripts/fetch-kernel.sh build/kernel

out=$(mktemp -d /tmp/lbqemu-run.XXXXXX)
trap 'rm -rf "$out"' EXIT
declare -A test_of=() start_of=()
pass=0; fail=0; failed=(); times=()

# Waits for any running test to end and prints it.
reap_one() {
  local done_pid rc=0 t secs
  wait -n -p done_pid "${!test_of[@]}" || rc=$?
  t=${test_of[$done_pid]}; unset "test_of[$done_pid]"
  secs=$(( $(date +%s) - start_of[$t] ))
  echo "=== $t (${secs} s)"
  cat "$out/$(basename "$t").log"
  if [ "$rc" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$t"); echo "FAILED: $t"; fi
  times+=("$secs $t")
}

for t in "${tests[@]}"; do
  while [ "${#test_of[@]}" -ge "$jobs" ]; do reap_one; done
  start_of[$t]=$(date +%s)
  bash "$t" > "$out/$(basename "$t").log" 2>&1 &
  test_of[$!]=$t
done
while [ "${#test_of[@]}" -gt 0 ]; do reap_one; done

echo "slowest: $(printf '%s\n' "${times[@]}" | sort -rn | head -n 6 | awk '{printf "%s %s s; ", $2, $1}')"
[ "$fail" -eq 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "qemu tests: $pass passed, $fail failed ($jobs at a time)"
[ "$fail" -eq 0 ]
