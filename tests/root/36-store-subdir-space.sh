#!/bin/bash
# `backup --root SUBDIR` needs room for what is under SUBDIR, not for its whole filesystem: a
# two-file directory on a nearly full root filesystem backs up into a small store, and the
# space check still refuses a SUBDIR that cannot fit.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 64 12); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
S=$R/srv/data; mkdir -p "$S"
echo one >"$S/a"; echo two >"$S/b"

note "1. a subdirectory bigger than the store is refused before anything is written"
head -c 40M /dev/urandom >"$S/filler"
if "$LIFEBOAT" backup --root "$S" --backup-device "$B" --compress none >"$W/out" 2>&1; then fail "accepted"; fi
grep -q "not enough space on the backup partition $B" "$W/out" || fail "message: $(cat "$W/out")"
note "$(cat "$W/out")"

note "2. two small files under a subdirectory of a 40 MiB filesystem, into a 12 MiB store"
mv "$S/filler" "$R/usr/bin/filler"
"$LIFEBOAT" backup --root "$S" --backup-device "$B" --compress none --json >"$W/b.json" 2>"$W/b.err" \
  || fail "refused: $(cat "$W/b.err")"
json "j['files']" <"$W/b.json" | grep -qx 2 || fail "files: $(cat "$W/b.json")"
T=$W/t; mkdir -p "$T"
"$LIFEBOAT" restore latest --target-dir "$T" --backup-device "$B" -q || fail "restore"
[ "$(cat "$T/a" "$T/b")" = "$(printf 'one\ntwo')" ] || fail "restored content"
echo "PASS 36-store-subdir-space"
