#!/bin/bash
# lifeboat host-restore: a good archive is staged and committed as a new generation; plain
# tar.gz (xe host-backup style) is accepted with a warning; truncated and bit-flipped
# uploads, and an older-major backup onto a newer host, are refused with the previous
# generation intact and nothing left in staging.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 40 64); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
"$LIFEBOAT" backup --root "$R" --backup-device "$B" -q || fail "first backup"
good=$("$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']")
[ -n "$good" ] || fail "lifeboat list names no generation"
M=$W/m; mkdir -p "$M"

intact() { # the previous generation is still the latest, verifies, and staging is empty
  local n
  n=$("$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']")
  [ "$n" = "$1" ] || fail "latest is $n, expected $1"
  mount -o ro "$B" "$M"
  verify_archive "$(latest_archive "$M")" || { umount "$M"; fail "the previous generation no longer verifies"; }
  [ -z "$(ls "$M/staging")" ] || { ls -la "$M/staging"; umount "$M"; fail "staging not empty"; }
  umount "$M"
}
refused() { # WHAT PATTERN FILE [ARGS...]
  local what=$1 pat=$2 f=$3; shift 3
  if "$LIFEBOAT" host-restore file-name="$f" --backup-device "$B" --root "$R" "$@" >"$W/out" 2>&1; then
    fail "$what: accepted"
  fi
  grep -qi -- "$pat" "$W/out" || fail "$what: message lacks '$pat': $(cat "$W/out")"
  note "$what refused: $(tr '\n' ' ' <"$W/out" | head -c 300)"
}

note "1. a Lifeboat archive (zstd) is staged, verified and committed"
"$LIFEBOAT" host-backup file-name="$W/host.xbk" --root "$R" -q >/dev/null 2>&1 || fail "host-backup"
"$LIFEBOAT" host-restore file-name="$W/host.xbk" --backup-device "$B" --root "$R" >"$W/out" 2>&1 || fail "host-restore: $(cat "$W/out")"
"$LIFEBOAT" list --backup-device "$B" --json >"$W/list.json"
json "j['backups'][-1]['origin'], j['backups'][-1]['state'], j['backups'][-1]['codec']" <"$W/list.json" | grep -qx "host-restore verified zstd" \
  || fail "list: $(cat "$W/list.json")"
staged=$(json "j['backups'][-1]['id']" <"$W/list.json")
mount -o ro "$B" "$M"; cmp "$W/host.xbk" "$M/generations/$staged/backup.tar.zst" || fail "the staged copy differs from the upload"; umount "$M"

note "2. damaged uploads are refused; the last good generation stays"
size=$(stat -c %s "$W/host.xbk")
head -c $((size / 2)) "$W/host.xbk" >"$W/trunc.xbk"
refused truncated "damaged\|truncated" "$W/trunc.xbk"; intact "$staged"
head -c $((size - 7)) "$W/host.xbk" >"$W/short.xbk"
refused "7 bytes short" "damaged\|truncated\|end" "$W/short.xbk"; intact "$staged"
flip() { python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[off] ^= 0x10; open(p, 'wb').write(b)
PY
}
cp "$W/host.xbk" "$W/flip.xbk"; flip "$W/flip.xbk" $((size / 2))
refused "bit flip (zstd)" "damaged\|checksum\|corrupt" "$W/flip.xbk"; intact "$staged"
"$LIFEBOAT" host-backup file-name="$W/plain.xbk" --root "$R" --compress none -q >/dev/null 2>&1 || fail "host-backup none"
off=$(grep -obUa "file 25" "$W/plain.xbk" | head -n1 | cut -d: -f1)
[ -n "$off" ] || fail "cannot find file content in the plain archive"
flip "$W/plain.xbk" "$off"
refused "bit flip in a file's content (no compression)" "checksum" "$W/plain.xbk"; intact "$staged"
cat /dev/null >"$W/empty.xbk"
refused empty "empty" "$W/empty.xbk"; intact "$staged"
head -c 100000 /dev/urandom >"$W/noise.xbk"
refused "random bytes" "refused" "$W/noise.xbk"; intact "$staged"

note "3. a plain tar.gz (xe host-backup) is accepted with a warning, from stdin too"
tar -C "$R" -czf "$W/xe.tgz" --numeric-owner .
"$LIFEBOAT" host-restore file-name=- --backup-device "$B" --root "$R" <"$W/xe.tgz" >"$W/out" 2>&1 || fail "plain tar.gz: $(cat "$W/out")"
grep -q "no checksums" "$W/out" || fail "no warning: $(cat "$W/out")"
"$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['state'], j['backups'][-1]['product_version'], j['backups'][-1]['host']" \
  | grep -qx "unchecked 8.2.1 $(hostname)" || fail "list: $("$LIFEBOAT" list --backup-device "$B")"
xe=$("$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']")
head -c $(( $(stat -c %s "$W/xe.tgz") - 20 )) "$W/xe.tgz" >"$W/xe-trunc.tgz"
refused "truncated tar.gz" "refused" "$W/xe-trunc.tgz"; intact "$xe"

note "4. an older major version onto a newer host"
O=$W/old; mkdir -p "$O/etc"; echo "PRODUCT_VERSION='6.5.0'" >"$O/etc/xensource-inventory"; echo old >"$O/etc/hostname"
tar -C "$O" -czf "$W/old.tgz" .
refused "6.5 onto 8.2" "Cannot restore backup created with a different partition layout" "$W/old.tgz"; intact "$xe"
"$LIFEBOAT" host-restore file-name="$W/old.tgz" --backup-device "$B" --root "$R" --force >"$W/out" 2>&1 || fail "--force: $(cat "$W/out")"
"$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['product_version']" | grep -qx 6.5.0 || fail "forced one not committed"

note "5. a missing file does not touch the store"
refused "missing file" "cannot open" "$W/nope.xbk"
grep -q "$B" /proc/mounts && fail "lifeboat left $B mounted"
echo "PASS 34-store-host-restore"
