#!/bin/bash
# Generations of the store: `lifeboat backup` twice, `verify` (every generation, and one),
# `restore latest` and `restore GEN` onto ext4, compared; a damaged generation is named by
# `verify` with exit 1.
source "$(dirname "$0")/restore-lib.bash"

ext4_mount src 256; SRC=$W/src
"$LBTEST/lbtest-fixture" "$SRC" --big-mib 2 --sparse-mib 16 >/dev/null
truncate -s 256M "$W/backup.img"
loop_attach "$W/backup.img"; DEV=$REPLY
"$LIFEBOAT" init-store --backup-device "$DEV" >/dev/null || fail "init-store"
"$LIFEBOAT" backup --root "$SRC" --backup-device "$DEV" >/dev/null 2>&1 || fail "backup 1"
FIRST=$("$LIFEBOAT" list --backup-device "$DEV" --json | grep -o '"id": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
[ -n "$FIRST" ] || fail "no generation listed"
sleep 1
"$LIFEBOAT" backup --root "$SRC" --backup-device "$DEV" >/dev/null 2>&1 || fail "backup 2"
"$LIFEBOAT" verify --backup-device "$DEV" >"$W/v.out" || fail "verify of every generation: $(cat "$W/v.out")"
[ "$(grep -c 'every checksum verified' "$W/v.out")" -eq 2 ] || fail "verify: $(cat "$W/v.out")"
"$LIFEBOAT" verify "$FIRST" --backup-device "$DEV" >/dev/null || fail "verify $FIRST"

for gen in latest "$FIRST"; do
  ext4_mount "dst-$gen" 256; DST=$W/dst-$gen
  "$LIFEBOAT" restore "$gen" --target-dir "$DST" --backup-device "$DEV" >"$W/r.out" 2>"$W/r.err" \
    || fail "restore $gen: $(cat "$W/r.err")"
  "$LBTEST/lbtest-compare" "$SRC" "$DST" >"$W/cmp.out" || fail "restore $gen differs: $(head -c 3000 "$W/cmp.out")"
  umount "$DST"
done

rc=0
"$LIFEBOAT" restore no-such-gen --target-dir "$W" --backup-device "$DEV" 2>"$W/err" || rc=$?
[ $rc -eq 2 ] && grep -q "no generation 'no-such-gen'" "$W/err" || fail "unknown generation: $rc $(cat "$W/err")"

# Damage the first generation's archive behind the store's back.
mkdir -p "$W/m"; mount "$DEV" "$W/m"; MOUNTS+=("$W/m")
ARCH=$(find "$W/m/generations/$FIRST" -maxdepth 1 -type f ! -name meta.json | head -1)
SIZE=$(stat -c %s "$ARCH")
printf '\xff\xff\xff\xff' | dd of="$ARCH" bs=1 seek=$((SIZE / 2)) conv=notrunc 2>/dev/null
umount "$W/m"
rc=0
"$LIFEBOAT" verify --backup-device "$DEV" >"$W/v.out" 2>"$W/v.err" || rc=$?
[ $rc -eq 1 ] || fail "verify of a damaged store: exit $rc"
grep -q "generation $FIRST.*DAMAGED" "$W/v.err" || fail "the damaged generation is not named: $(cat "$W/v.err")"
grep -q "every checksum verified" "$W/v.out" || fail "the sound generation was not reported: $(cat "$W/v.out")"
echo "15-restore-store: ok"
