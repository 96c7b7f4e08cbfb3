#!/bin/bash
# Many lifeboat processes on one store at once: list and verify (read-only mounts) beside
# backups (read-write). Each process mounts the store as it needs; none may pull the store
# from under another (a reader unmounting the mount a second reader is using), none may be
# refused because another holds a read-only mount. Readers always succeed; a backup either
# commits or is refused with status 11 (the store lock); every generation left verifies and
# no lifeboat mount is left behind.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 40 96); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
"$LIFEBOAT" backup --root "$R" --backup-device "$B" -q || fail "first backup"
ROUNDS=${ROUNDS:-3}
for round in $(seq "$ROUNDS"); do
  note "round $round: 16 readers and 2 backups at once"
  pids=() kinds=()
  for i in $(seq 16); do
    if (( i % 2 )); then
      "$LIFEBOAT" list --backup-device "$B" --json >"$W/out.$i" 2>&1 & kinds+=(list)
    else
      "$LIFEBOAT" verify --backup-device "$B" -q >"$W/out.$i" 2>&1 & kinds+=(verify)
    fi
    pids+=($!)
  done
  for i in 17 18; do
    "$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 3 -q >"$W/out.$i" 2>&1 & kinds+=(backup)
    pids+=($!)
  done
  for n in "${!pids[@]}"; do
    i=$((n + 1))
    set +e; wait "${pids[$n]}"; rc=$?; set -e
    case "${kinds[$n]}:$rc" in
      list:0|verify:0|backup:0|backup:11) ;;
      *) fail "round $round: ${kinds[$n]} #$i ended with status $rc: $(cat "$W/out.$i")" ;;
    esac
  done
  ! grep -q ' /run/lifeboat/store-' /proc/self/mounts || fail "a lifeboat mount was left behind: $(grep lifeboat /proc/self/mounts)"
done
note "every generation verifies, the store is not mounted"
"$LIFEBOAT" verify --backup-device "$B" >"$W/out" 2>&1 || fail "final verify: $(cat "$W/out")"
! grep -q "^$B " /proc/self/mounts || fail "$B is still mounted"
echo "PASS 38-store-concurrent"
