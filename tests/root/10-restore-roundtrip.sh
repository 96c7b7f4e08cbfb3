#!/bin/bash
# Every case of the fixture (ext4, root) backed up by `lifeboat host-backup` in each codec,
# verified, restored by `lifeboat restore` onto a second ext4 image: no difference at all.
# Also: from stdin, and over an existing tree (files replaced, immutable ones too, directories
# kept, files not in the archive left alone).
source "$(dirname "$0")/restore-lib.bash"

ext4_mount src 256; SRC=$W/src
"$LBTEST/lbtest-fixture" "$SRC" >"$W/fixture.log"
grep -q '^skipped' "$W/fixture.log" && fail "fixture cases skipped: $(grep '^skipped' "$W/fixture.log")"

for codec in zstd gzip xz none; do
  note "codec $codec"
  "$LIFEBOAT" host-backup file-name="$W/b.$codec" --root "$SRC" --compress "$codec" 2>"$W/hb.err" \
    || fail "host-backup $codec exited $?: $(cat "$W/hb.err")"
  "$LIFEBOAT" verify file-name="$W/b.$codec" >"$W/verify.out" || fail "verify $codec exited $?"
  grep -q "every checksum verified" "$W/verify.out" || fail "verify said: $(cat "$W/verify.out")"
  ext4_mount "dst-$codec" 256; DST=$W/dst-$codec
  "$LIFEBOAT" restore file-name="$W/b.$codec" --target-dir "$DST" >"$W/restore.out" 2>"$W/restore.err" \
    || fail "restore $codec exited $?: $(cat "$W/restore.err")"
  [ -s "$W/restore.err" ] && fail "restore $codec warned: $(cat "$W/restore.err")"
  "$LBTEST/lbtest-compare" "$SRC" "$DST" >"$W/cmp.out" || fail "$codec: differences:
$(cat "$W/cmp.out")"
  umount "$DST"
done

note "from stdin, --json"
ext4_mount dst-stdin 256; DST=$W/dst-stdin
"$LIFEBOAT" restore file-name=- --target-dir "$DST" --json <"$W/b.zstd" >"$W/r.json" || fail "restore from stdin"
grep -q '"ok":true' "$W/r.json" || fail "json: $(cat "$W/r.json")"
"$LBTEST/lbtest-compare" "$SRC" "$DST" >"$W/cmp.out" || fail "stdin: $(cat "$W/cmp.out")"

note "over an existing tree"
echo changed >"$DST/files/small"; rm "$DST/links/relative"; echo "in the way" >"$DST/links/relative"
echo extra >"$DST/files/extra"
"$LIFEBOAT" restore file-name="$W/b.gzip" --target-dir "$DST" --force >/dev/null || fail "restore over a tree"
"$LBTEST/lbtest-compare" "$SRC" "$DST" --ignore files/extra >"$W/cmp.out" \
  || fail "over a tree: $(cat "$W/cmp.out")"
[ "$(cat "$DST/files/small")" = "hello, lifeboat" ] || fail "files/small not replaced"
[ -f "$DST/files/extra" ] || fail "an existing file not in the archive was removed"
echo "10-restore-roundtrip: ok"
