#!/bin/bash
# A committed generation whose archive no longer reads as what its meta.json records (here:
# the first 512 bytes zeroed, which also wipes the compression header) is refused by
# `verify` (exit 1, naming the generation) and by `restore latest` (exit 2, nothing restored),
# for a compressed and an uncompressed generation alike.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 48 48); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
M=$W/m; mkdir -p "$M"

for codec in zstd none; do
  note "$codec: a sound generation verifies"
  "$LIFEBOAT" backup --root "$R" --backup-device "$B" --compress "$codec" --keep 1 --json >"$W/b.json" \
    || fail "backup ($codec)"
  g=$(json "j['generation']" <"$W/b.json")
  "$LIFEBOAT" verify "$g" --backup-device "$B" >"$W/v.out" 2>&1 || fail "verify of a sound $g: $(cat "$W/v.out")"

  note "$codec: its first 512 bytes zeroed"
  mount "$B" "$M"; MOUNTS+=("$M")
  a=$(latest_archive "$M")
  dd if=/dev/zero of="$a" bs=512 count=1 conv=notrunc status=none
  umount "$M"

  rc=0; "$LIFEBOAT" verify --backup-device "$B" >"$W/v.out" 2>"$W/v.err" || rc=$?
  [ $rc -eq 1 ] || fail "verify of the damaged $g: exit $rc: $(cat "$W/v.out" "$W/v.err")"
  grep -q "generation $g.*DAMAGED" "$W/v.err" || fail "verify does not name $g: $(cat "$W/v.err")"
  note "$(cat "$W/v.err")"

  T=$W/target-$codec; mkdir -p "$T"
  rc=0; "$LIFEBOAT" restore latest --target-dir "$T" --backup-device "$B" >"$W/r.out" 2>"$W/r.err" || rc=$?
  [ $rc -ne 0 ] || fail "restore latest of the damaged $g exited 0: $(cat "$W/r.out" "$W/r.err")"
  grep -q "$g" "$W/r.err" || fail "restore does not name $g: $(cat "$W/r.err")"
  [ -z "$(ls -A "$T")" ] || fail "restore wrote into $T: $(ls -A "$T")"
  note "restore exit $rc: $(cat "$W/r.err")"
done
echo "PASS 35-store-damaged"
