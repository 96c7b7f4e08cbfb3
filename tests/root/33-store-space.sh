#!/bin/bash
# A backup partition too small: refused before writing when the estimate does not fit, and
# when the partition fills up during the write the partial generation is removed; either
# way with a clear message and the last good generation intact.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 96 40); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
M=$W/m; mkdir -p "$M"

note "1. a first backup that cannot fit is refused before anything is written"
head -c 50M /dev/urandom >"$R/usr/bin/huge"
if "$LIFEBOAT" backup --root "$R" --backup-device "$B" --compress none >"$W/out" 2>&1; then fail "accepted"; fi
grep -q "not enough space on the backup partition $B" "$W/out" || fail "message: $(cat "$W/out")"
note "$(cat "$W/out")"
mount -o ro "$B" "$M"; [ -z "$(ls "$M/staging")" ] && [ -z "$(ls "$M/generations")" ] || fail "something was written"; umount "$M"
rm "$R/usr/bin/huge"

note "2. a good generation"
head -c 12M /dev/urandom >"$R/usr/bin/data"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" -q || fail "backup"
good=$("$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']")

note "3. the partition fills up during the write"
head -c 40M /dev/urandom >"$R/usr/bin/more"
if "$LIFEBOAT" backup --root "$R" --backup-device "$B" >"$W/out" 2>&1; then fail "a backup bigger than the partition succeeded"; fi
grep -q "is full" "$W/out" || fail "message: $(cat "$W/out")"
grep -q "$good is intact" "$W/out" || fail "message does not name the intact generation: $(cat "$W/out")"
note "$(cat "$W/out")"
[ "$("$LIFEBOAT" list --backup-device "$B" --json | json "[b['id'] for b in j['backups']]")" = "['$good']" ] || fail "generations changed"
mount -o ro "$B" "$M"
[ -z "$(ls "$M/staging")" ] || fail "staging not cleaned: $(ls "$M/staging")"
verify_archive "$(latest_archive "$M")" || fail "the good generation does not verify"
df -h "$M" | tail -n1
umount "$M"

note "4. host-restore of an upload bigger than the free space is refused up front"
cat "$R/usr/bin/more" "$R/usr/bin/data" >"$W/big.xbk"
if "$LIFEBOAT" host-restore file-name="$W/big.xbk" --backup-device "$B" --root "$R" >"$W/out" 2>&1; then fail "accepted"; fi
grep -q "not enough space" "$W/out" || fail "message: $(cat "$W/out")"
note "5. host-restore from stdin that fills the partition"
"$LIFEBOAT" host-backup file-name="$W/big2.xbk" --root "$R" -q >/dev/null 2>&1 || fail "host-backup"
if "$LIFEBOAT" host-restore file-name=- --backup-device "$B" --root "$R" <"$W/big2.xbk" >"$W/out" 2>&1; then fail "accepted"; fi
grep -q "filled up" "$W/out" || fail "message: $(cat "$W/out")"
note "$(cat "$W/out")"
[ "$("$LIFEBOAT" list --backup-device "$B" --json | json "[b['id'] for b in j['backups']]")" = "['$good']" ] || fail "generations changed"
mount -o ro "$B" "$M"; [ -z "$(ls "$M/staging")" ] || fail "staging not cleaned"; umount "$M"
echo "PASS 33-store-space"
