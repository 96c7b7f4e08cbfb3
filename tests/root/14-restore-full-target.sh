#!/bin/bash
# A restore into a filesystem too small for the archive stops with a clear error (the target,
# the bytes written, what to do), exit 2, and bounded memory.
source "$(dirname "$0")/restore-lib.bash"

ext4_mount src 256; SRC=$W/src
"$LBTEST/lbtest-fixture" "$SRC" --big-mib 96 >/dev/null
"$LIFEBOAT" host-backup file-name="$W/b.zst" --root "$SRC" 2>/dev/null || fail "host-backup"
ext4_mount small 24; DST=$W/small
rc=0
/usr/bin/time -f "%M" -o "$W/rss" "$LIFEBOAT" restore file-name="$W/b.zst" --target-dir "$DST" >"$W/out" 2>"$W/err" || rc=$?
[ $rc -eq 2 ] || fail "exit $rc, expected 2: $(cat "$W/err")"
grep -q "the target $DST is full: [0-9]* bytes written" "$W/err" || fail "unclear error: $(cat "$W/err")"
grep -q "free space on it" "$W/err" || fail "no advice: $(cat "$W/err")"
rss=$(tail -1 "$W/rss")
[ "$rss" -lt 131072 ] || fail "peak RSS ${rss} KiB"
echo "ok: $(grep -o 'the target.*' "$W/err" | head -c 300) (peak RSS ${rss} KiB)"
echo "14-restore-full-target: ok"
