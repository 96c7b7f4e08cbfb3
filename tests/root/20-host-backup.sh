#!/bin/bash
# lifeboat host-backup on a loop-mounted ext4 tree: archive written atomically, mount points
# named, excludes applied, GNU tar can list and extract it, pre-hook failures stop it.
# shellcheck source=tests/root/lib.bash
source "$(dirname "$0")/lib.bash" hb

truncate -s 64M "$W/root.img"
mkfs.ext4 -q -F "$W/root.img"
mkdir -p "$W/root"
loop_attach "$W/root.img"
mount "$REPLY" "$W/root"
MOUNTS+=("$W/root")
R=$W/root
mkdir -p "$R/etc" "$R/tmp/junk" "$R/var/log" "$R/boot/efi" "$R/var/crash" "$R/usr/bin"
echo "PRODUCT_VERSION='8.2.1'" >"$R/etc/xensource-inventory"
echo data >"$R/usr/bin/tool"; chmod 4755 "$R/usr/bin/tool"
ln "$R/usr/bin/tool" "$R/usr/bin/tool2"
echo junk >"$R/tmp/junk/x"; echo crash >"$R/var/crash/core"
setfattr -n user.lifeboat -v yes "$R/etc/xensource-inventory"
chattr +i "$R/usr/bin/tool"
mount -t tmpfs -o size=1M tmpfs "$R/var/log"; MOUNTS+=("$R/var/log"); echo log >"$R/var/log/messages"
mount -t tmpfs -o size=1M tmpfs "$R/boot/efi"; MOUNTS+=("$R/boot/efi"); echo efi >"$R/boot/efi/grubx64.efi"

# 1. A good backup: exit 0, no .partial left, the skipped mount named on stderr.
"$LIFEBOAT" host-backup file-name="$W/b.xbk" --root "$R" --json >"$W/summary.json" 2>"$W/err" \
  || fail "host-backup exited $? ($(cat "$W/err"))"
[ -f "$W/b.xbk" ] || fail "no archive"
[ ! -e "$W/b.xbk.partial" ] || fail ".partial left behind"
grep -q "var/log" "$W/err" || fail "the skipped mount var/log is not named: $(cat "$W/err")"
grep -q '"consistent": true' "$W/summary.json" || fail "summary: $(cat "$W/summary.json")"
[ "$(stat -c %a "$W/b.xbk")" = 600 ] || fail "archive mode is not 0600"

# 2. GNU tar lists and extracts it; excludes and mounts as expected.
zstd -dc "$W/b.xbk" | tar -tf - >"$W/list"
grep -qx "./usr/bin/tool\|usr/bin/tool" "$W/list" || fail "usr/bin/tool not listed"
grep -q "boot/efi/grubx64.efi" "$W/list" || fail "/boot/efi not included"
grep -q "var/log/messages" "$W/list" && fail "var/log (another filesystem) was descended into"
grep -q "tmp/junk" "$W/list" && fail "tmp/* not excluded"
grep -q "var/crash/core" "$W/list" && fail "var/crash/* not excluded"
grep -Eq "^(\./)?var/log/?$" "$W/list" || fail "var/log not kept as a directory"
mkdir "$W/x"
zstd -dc "$W/b.xbk" | tar --xattrs --xattrs-include='*' --numeric-owner -xpf - -C "$W/x"
[ "$(cat "$W/x/usr/bin/tool")" = data ] || fail "content differs"
[ "$(stat -c %a "$W/x/usr/bin/tool")" = 4755 ] || fail "setuid lost"
[ "$(stat -c %i "$W/x/usr/bin/tool")" = "$(stat -c %i "$W/x/usr/bin/tool2")" ] || fail "hardlink lost"
[ "$(getfattr --absolute-names --only-values -n user.lifeboat "$W/x/etc/xensource-inventory")" = yes ] || fail "xattr lost"

# 3. gzip and --exclude; stdout.
"$LIFEBOAT" host-backup file-name=- --root "$R" --compress gzip --exclude 'usr/*' -q >"$W/b.tgz" \
  || fail "gzip to stdout failed"
gzip -dc "$W/b.tgz" | tar -tf - >"$W/list2"
grep -q "usr/bin" "$W/list2" && fail "--exclude usr/* ignored"
grep -q "etc/xensource-inventory" "$W/list2" || fail "gzip archive incomplete"

# 4. A failing pre-hook stops everything: exit 2, no file.
set +e
"$LIFEBOAT" host-backup file-name="$W/c.xbk" --root "$R" --pre-hook "exit 3" -q 2>"$W/err2"
rc=$?
set -e
[ "$rc" = 2 ] || fail "a failing pre-hook gave exit $rc"
{ [ ! -e "$W/c.xbk" ] && [ ! -e "$W/c.xbk.partial" ]; } || fail "a file was left after a failed pre-hook"
grep -q "pre-hook" "$W/err2" || fail "the error does not name the pre-hook"

# 5. An unwritable destination: exit 2, clear message.
set +e
"$LIFEBOAT" host-backup file-name=/nonexistent/dir/b.xbk --root "$R" -q 2>"$W/err3"
rc=$?
set -e
[ "$rc" = 2 ] || fail "an impossible destination gave exit $rc"
grep -q "/nonexistent/dir" "$W/err3" || fail "the error does not name the destination"

chattr -i "$R/usr/bin/tool"
echo "host-backup: ok"
