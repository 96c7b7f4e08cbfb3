#!/bin/bash
# Damage detected by `lifeboat verify` (exit 1, the damaged path named) and by `lifeboat
# restore` (exit 2, path named): bit flips in file data, in a file's checksum, in the manifest,
# in a header, in the compressed stream; truncation at several points.
source "$(dirname "$0")/restore-lib.bash"

ext4_mount src 128; SRC=$W/src
"$LBTEST/lbtest-fixture" "$SRC" --big-mib 1 --sparse-mib 4 --no-flags >/dev/null
"$LIFEBOAT" host-backup file-name="$W/good.tar" --root "$SRC" --compress none 2>/dev/null || fail "host-backup"
"$LIFEBOAT" host-backup file-name="$W/good.zst" --root "$SRC" --compress zstd 2>/dev/null || fail "host-backup zstd"
"$LIFEBOAT" verify file-name="$W/good.tar" >/dev/null || fail "the sound archive does not verify"

# flip FILE OFFSET: xor one bit of the byte at OFFSET.
flip() {
  local b
  b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  printf '%b' "\\x$(printf %02x $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
# sethex FILE OFFSET: replace the hex digit at OFFSET by another hex digit.
sethex() {
  local c
  c=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null)
  if [ "$c" = 0 ]; then c=1; else c=0; fi
  printf %s "$c" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
offset_of() { grep -boa -- "$2" "$1" | head -1 | cut -d: -f1; }

# expect_damage NAME FILE [PATH]: verify exits 1 (naming PATH when given).
expect_damage() {
  local rc=0
  "$LIFEBOAT" verify file-name="$2" >"$W/v.out" 2>"$W/v.err" || rc=$?
  [ $rc -eq 1 ] || fail "$1: verify exit $rc, expected 1 ($(cat "$W/v.out" "$W/v.err"))"
  if [ -n "${3:-}" ]; then
    grep -q -- "$3" "$W/v.err" || fail "$1: verify does not name $3: $(cat "$W/v.err")"
  fi
  echo "ok: $1: $(head -c 300 "$W/v.err")"
}

DATA=$(offset_of "$W/good.tar" "hello, lifeboat")
[ -n "$DATA" ] || fail "file content not found in the archive"

cp "$W/good.tar" "$W/bad.tar"; flip "$W/bad.tar" $((DATA + 3))
expect_damage "bit flip in data" "$W/bad.tar" files/small
mkdir "$W/t1"; rc=0
"$LIFEBOAT" restore file-name="$W/bad.tar" --target-dir "$W/t1" >/dev/null 2>"$W/r.err" || rc=$?
[ $rc -eq 2 ] || fail "restore of damaged data: exit $rc"
grep -q files/small "$W/r.err" || fail "restore does not name the damaged file: $(cat "$W/r.err")"

SUM=$(grep -boa "b3=" "$W/good.tar" | cut -d: -f1 | awk -v d="$DATA" '$1 < d' | tail -1)
cp "$W/good.tar" "$W/bad.tar"; sethex "$W/bad.tar" $((SUM + 3))
expect_damage "bit flip in the checksum" "$W/bad.tar" files/small

MAN=$(offset_of "$W/good.tar" '"hostname"')
cp "$W/good.tar" "$W/bad.tar"; flip "$W/bad.tar" $((MAN + 13))
expect_damage "bit flip in the manifest" "$W/bad.tar"

HDR=$(grep -boa "ustar" "$W/good.tar" | cut -d: -f1 | awk -v d="$DATA" '$1 < d' | tail -1)
cp "$W/good.tar" "$W/bad.tar"; flip "$W/bad.tar" $((HDR - 257 + 2))
expect_damage "bit flip in a header" "$W/bad.tar"

SIZE=$(stat -c %s "$W/good.tar")
for cut in $((SIZE / 3)) $((SIZE / 2)) $((DATA + 5)) $((SIZE - 2048)) 700; do
  head -c "$cut" "$W/good.tar" >"$W/cut.tar"
  expect_damage "truncated at $cut of $SIZE" "$W/cut.tar"
done

ZSIZE=$(stat -c %s "$W/good.zst")
for at in $((ZSIZE / 4)) $((ZSIZE / 2)) $((ZSIZE - 16)); do
  cp "$W/good.zst" "$W/bad.zst"; flip "$W/bad.zst" "$at"
  expect_damage "zstd bit flip at $at" "$W/bad.zst" "archive entry"
done
head -c $((ZSIZE / 2)) "$W/good.zst" >"$W/cut.zst"
expect_damage "zstd truncated" "$W/cut.zst" "archive entry"
"$LIFEBOAT" verify file-name="$W/cut.zst" --json >"$W/v.json" 2>/dev/null || true
grep -q '"ok":false' "$W/v.json" || fail "verify --json: $(cat "$W/v.json")"
echo "13-verify-corruption: ok"
