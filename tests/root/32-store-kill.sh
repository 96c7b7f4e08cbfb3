#!/bin/bash
# kill -9 of `lifeboat backup` and `lifeboat host-restore` at random moments: every time,
# the store still lists its committed generations and the newest one verifies; the next run
# removes the debris in staging/ and says so.
source "$(dirname "$0")/store-lib.bash"
ROUNDS=${ROUNDS:-12}
L=$(make_disk d 64 160); make_root "$L"; B=${L}p2
head -c 16M /dev/urandom >"$R/usr/bin/random"
for i in $(seq 1 400); do echo "small $i" >"$R/var/lib/s$i"; done
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
"$LIFEBOAT" host-backup file-name="$W/upload.xbk" --root "$R" -q >/dev/null 2>&1 || fail "host-backup"
M=$W/m; mkdir -p "$M"

t0=$(date +%s%N)
"$LIFEBOAT" backup --root "$R" --backup-device "$B" -q || fail "first backup"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "a backup takes ${ms} ms; killing at random moments within ${ms} ms"

use_verify=1
"$LIFEBOAT" verify latest --backup-device "$B" -q >"$W/v" 2>&1 || use_verify=0
note "checking with $([ $use_verify = 1 ] && echo "lifeboat verify" || echo "zstd -t and tar -t")"
check_store() { # ROUND: the newest generation verifies
  local n
  n=$("$LIFEBOAT" list --backup-device "$B" --json | json "len(j['backups'])") || fail "round $1: list failed"
  [ "$n" -ge 1 ] || fail "round $1: no generation left"
  if [ $use_verify = 1 ]; then
    "$LIFEBOAT" verify latest --backup-device "$B" -q >"$W/v" 2>&1 || fail "round $1: verify: $(cat "$W/v")"
  else
    mount -o ro "$B" "$M" || fail "round $1: cannot mount"
    verify_archive "$(latest_archive "$M")" || { umount "$M"; fail "round $1: the newest generation does not verify"; }
    umount "$M"
  fi
}

killed_in_flight=0
for round in $(seq 1 "$ROUNDS"); do
  delay_ms=$(( RANDOM % (ms + 1) ))
  if [ $((round % 2)) = 0 ]; then
    what=host-restore
    "$LIFEBOAT" host-restore file-name="$W/upload.xbk" --backup-device "$B" --root "$R" -q >/dev/null 2>&1 &
  else
    what=backup
    "$LIFEBOAT" backup --root "$R" --backup-device "$B" -q >/dev/null 2>&1 &
  fi
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then killed_in_flight=$((killed_in_flight + 1)); fi
  wait "$pid" 2>/dev/null || true
  check_store "$round"
  note "round $round: kill -9 of $what after ${delay_ms} ms: store intact ($("$LIFEBOAT" list --backup-device "$B" --json | json "len(j['backups'])") generations)"
done
[ "$killed_in_flight" -ge $((ROUNDS / 3)) ] || fail "only $killed_in_flight of $ROUNDS runs were still running when killed"

"$LIFEBOAT" backup --root "$R" --backup-device "$B" >"$W/final" 2>&1 || fail "a backup after the kills: $(cat "$W/final")"
check_store final
mount -o ro "$B" "$M"
[ -z "$(ls "$M/staging")" ] || fail "staging not empty after a good run: $(ls "$M/staging")"
umount "$M"
# No mount left behind by the killed runs once a run completed.
grep -q "^$B " /proc/mounts && fail "mounts of $B left: $(grep "^$B " /proc/mounts)"
echo "PASS 32-store-kill ($killed_in_flight runs killed in flight)"
