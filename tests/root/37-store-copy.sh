#!/bin/bash
# Backups off the host disk: `lifeboat init-store` and `backup` on second loop "USB disks" (a
# whole-disk filesystem and a partitioned one), and `lifeboat copy GEN --to-device DEV /
# --to-file F`: the copy is the stored archive byte for byte, `list` and `verify` read it on
# the USB store, `host-restore` stages a copied file back; copying twice says "already
# there"; a damaged source, the same store, an uninitialised target and a full target are
# refused and leave nothing behind; what a copy cut short leaves in staging/ is never listed
# and is removed by the next writer.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 48 64); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
M=$W/m; MU=$W/mu; mkdir -p "$M" "$MU"

# usb_disk NAME MIB [gpt]: a second disk, blank (whole) or with one GPT partition; the device
# to use (the disk or its partition) echoed.
usb_disk() {
  local img=$W/$1.img
  truncate -s "$2M" "$img"
  [ "${3:-}" = gpt ] && sgdisk -n 1:2048:0 -c 1:usb "$img" >/dev/null
  loop_attach "$img"
  if [ "${3:-}" = gpt ]; then echo "${REPLY}p1"; else echo "$REPLY"; fi
}
# mounted DEV: DEV itself is mounted somewhere.
mounted() { awk -v d="$1" '$1 == d {f=1} END {exit !f}' /proc/mounts; }
# gens DEV: the ids of the Lifeboat generations on DEV, space-separated.
gens() { "$LIFEBOAT" list --backup-device "$1" --json | json "' '.join(b['id'] for b in j['backups'])"; }
# nothing_staged DEV: the store on DEV has an empty staging/.
nothing_staged() {
  mount -o ro "$1" "$MU"
  local left; left=$(ls -A "$MU/staging")
  umount "$MU"
  [ -z "$left" ] || fail "staging/ of $1 is not empty: $left"
}
# archive_of DEV GEN: a copy (in $W) of generation GEN's archive on DEV.
archive_of() {
  mount -o ro "$1" "$MU"
  cp "$MU"/generations/"$2"/backup.tar* "$W/$2.$(basename "$1").archive"
  umount "$MU"
  echo "$W/$2.$(basename "$1").archive"
}

note "1. init-store and backup on USB disks: a whole-disk filesystem and a partition"
U=$(usb_disk usb 64)
UP=$(usb_disk usbgpt 64 gpt)
for dev in "$U" "$UP"; do
  "$LIFEBOAT" init-store --backup-device "$dev" >"$W/out" 2>&1 || fail "init-store $dev: $(cat "$W/out")"
  "$LIFEBOAT" backup --root "$R" --backup-device "$dev" --json >"$W/b.json" 2>"$W/err" \
    || fail "backup to $dev: $(cat "$W/err")"
  [ "$(gens "$dev" | wc -w)" = 1 ] || fail "backup on $dev: $(gens "$dev")"
  "$LIFEBOAT" verify --backup-device "$dev" >/dev/null || fail "verify on $dev"
done
for dev in "$U" "$UP"; do mounted "$dev" && fail "lifeboat left $dev mounted"; done
# Start the copies from empty USB stores.
"$LIFEBOAT" init-store --backup-device "$U" --force -q 2>/dev/null
"$LIFEBOAT" init-store --backup-device "$UP" --force -q 2>/dev/null
[ -z "$(gens "$U")" ] && [ -z "$(gens "$UP")" ] || fail "the USB stores are not empty again"

note "2. a backup on the host store, copied to both USB stores"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 9 --json >"$W/b.json" || fail "backup"
g=$(json "j['generation']" <"$W/b.json")
orig=$(archive_of "$B" "$g")
for dev in "$U" "$UP"; do
  "$LIFEBOAT" copy "$g" --backup-device "$B" --to-device "$dev" --json >"$W/c.json" 2>"$W/err" \
    || fail "copy $g to $dev: $(cat "$W/err")"
  [ "$(json "j['already']" <"$W/c.json")" = False ] || fail "first copy: $(cat "$W/c.json")"
  [ "$(json "j['target_id']" <"$W/c.json")" = "$g" ] || fail "the copy's id: $(cat "$W/c.json")"
  [ "$(gens "$dev")" = "$g" ] || fail "list on $dev: $(gens "$dev")"
  "$LIFEBOAT" verify "$g" --backup-device "$dev" >"$W/v.out" 2>&1 || fail "verify on $dev: $(cat "$W/v.out")"
  grep -q "sound" "$W/v.out" || fail "verify on $dev: $(cat "$W/v.out")"
  cmp "$orig" "$(archive_of "$dev" "$g")" || fail "the copy on $dev differs from the original"
  mount -o ro "$dev" "$MU"
  grep -q "\"event\":\"copied\".*\"generation\":\"$g\"" "$MU/journal" || fail "no 'copied' journal line: $(cat "$MU/journal")"
  umount "$MU"
  nothing_staged "$dev"
done
note "$(tr -d '\n ' <"$W/c.json" | cut -c1-300)"
"$LIFEBOAT" list --backup-device "$U"

note "3. copy twice: already there, exit 0, nothing written"
"$LIFEBOAT" copy latest --backup-device "$B" --to-device "$U" >"$W/out" 2>&1 || fail "second copy: $(cat "$W/out")"
grep -q "already on $U" "$W/out" || fail "the second copy does not say it is already there: $(cat "$W/out")"
"$LIFEBOAT" copy latest --backup-device "$B" --to-device "$U" --json >"$W/c.json" || fail "second copy --json"
[ "$(json "j['already']" <"$W/c.json")" = True ] || fail "--json: $(cat "$W/c.json")"
[ "$(gens "$U")" = "$g" ] || fail "the second copy changed the USB store: $(gens "$U")"

note "4. copy to a file: the stored archive byte for byte; host-restore stages it back"
F=$W/out-dir/host.xbk; mkdir -p "$W/out-dir"
"$LIFEBOAT" copy "$g" --backup-device "$B" --to-file "$F" >"$W/out" 2>&1 || fail "copy to a file: $(cat "$W/out")"
cmp "$orig" "$F" || fail "the file differs from the stored archive"
[ "$(ls -A "$W/out-dir")" = host.xbk ] || fail "left behind: $(ls -A "$W/out-dir")"
"$LIFEBOAT" verify file-name="$F" >/dev/null || fail "verify file-name=$F"
"$LIFEBOAT" copy "$g" --backup-device "$B" --to-file "$F" --json | json "j['already']" | grep -qx True \
  || fail "a second copy to the same file is not 'already'"
"$LIFEBOAT" host-restore file-name="$F" --backup-device "$UP" --root "$R" >"$W/out" 2>&1 \
  || fail "host-restore of the copied file: $(cat "$W/out")"
staged=$("$LIFEBOAT" list --backup-device "$UP" --json | json "[b['id'] for b in j['backups'] if b['origin']=='host-restore'][0]")
cmp "$F" "$(archive_of "$UP" "$staged")" || fail "host-restore did not stage the copied file as it is"
"$LIFEBOAT" verify "$staged" --backup-device "$UP" >/dev/null || fail "verify of the staged copy"

note "5. refused: the same store, an uninitialised target, a file that holds something else"
rc=0; "$LIFEBOAT" copy "$g" --backup-device "$B" --to-device "$B" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "is the backup device" "$W/out" || fail "copy onto the same store: exit $rc: $(cat "$W/out")"
rc=0; "$LIFEBOAT" copy "$g" --backup-device "$B" --to-device "${UP%p1}" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "whole disk with a gpt partition table.*name the partition" "$W/out" \
  || fail "the partitioned disk itself: exit $rc: $(cat "$W/out")"
BLANK=$(usb_disk blank 16)
rc=0; "$LIFEBOAT" copy "$g" --backup-device "$B" --to-device "$BLANK" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "lifeboat init-store --backup-device $BLANK" "$W/out" || fail "a blank target: exit $rc: $(cat "$W/out")"
[ -z "$(blkid -p -o value -s TYPE "$BLANK")" ] || fail "copy formatted the blank target"
mkfs.ext4 -q -F "$BLANK"
rc=0; "$LIFEBOAT" copy "$g" --backup-device "$B" --to-device "$BLANK" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "holds no Lifeboat store.*init-store" "$W/out" || fail "an ext4 without a store: exit $rc: $(cat "$W/out")"
echo other >"$W/other.xbk"
rc=0; "$LIFEBOAT" copy "$g" --backup-device "$B" --to-file "$W/other.xbk" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "exists and is not a copy" "$W/out" && [ "$(cat "$W/other.xbk")" = other ] \
  || fail "an existing different file: exit $rc: $(cat "$W/out")"
note "$(cat "$W/out")"

note "6. a damaged source (one flipped byte) is refused; nothing appears in the target"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 9 --compress none --json >"$W/b.json" || fail "backup 2"
g2=$(json "j['generation']" <"$W/b.json")
mount "$B" "$M"; MOUNTS+=("$M")
a=$M/generations/$g2/backup.tar
off=$(( $(stat -c %s "$a") / 2 ))
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1)[0]; f.seek(o); f.write(bytes([b ^ 1]))' "$a" "$off"
umount "$M"
rc=0; "$LIFEBOAT" copy "$g2" --backup-device "$B" --to-device "$U" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "$g2.*is damaged" "$W/out" || fail "a damaged source: exit $rc: $(cat "$W/out")"
note "$(cat "$W/out")"
[ "$(gens "$U")" = "$g" ] || fail "the damaged copy appeared in the target: $(gens "$U")"
nothing_staged "$U"
rc=0; "$LIFEBOAT" copy "$g2" --backup-device "$B" --to-file "$W/out-dir/damaged.xbk" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "is damaged" "$W/out" || fail "a damaged source to a file: exit $rc: $(cat "$W/out")"
[ "$(ls -A "$W/out-dir")" = host.xbk ] || fail "left behind: $(ls -A "$W/out-dir")"

note "7. a full target is refused and left as it was"
head -c 20M /dev/urandom >"$R/usr/bin/big"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 9 --json >"$W/b.json" || fail "backup 3"
g3=$(json "j['generation']" <"$W/b.json")
SMALL=$(usb_disk small 16)
"$LIFEBOAT" init-store --backup-device "$SMALL" -q
rc=0; "$LIFEBOAT" copy "$g3" --backup-device "$B" --to-device "$SMALL" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "no space for a copy of generation $g3 on" "$W/out" || fail "a full target: exit $rc: $(cat "$W/out")"
note "$(cat "$W/out")"
[ -z "$(gens "$SMALL")" ] || fail "the full target lists $(gens "$SMALL")"
nothing_staged "$SMALL"
T=$W/tiny; mkdir -p "$T"; mount -t tmpfs -o size=8m tiny "$T"; MOUNTS+=("$T")
rc=0; "$LIFEBOAT" copy "$g3" --backup-device "$B" --to-file "$T/g3.xbk" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "no space" "$W/out" || fail "a full file system: exit $rc: $(cat "$W/out")"
[ -z "$(ls -A "$T")" ] || fail "left behind on the full file system: $(ls -A "$T")"
umount "$T"
note "8. a copy cut short (the USB disk pulled out): never listed, removed by the next writer"
mount "$U" "$MU"
mkdir "$MU/staging/$g3"
head -c 3M "$(archive_of "$B" "$g3")" >"$MU/staging/$g3/backup.tar.zst"
umount "$MU"
[ "$(gens "$U")" = "$g" ] || fail "a half copy is listed: $(gens "$U")"
"$LIFEBOAT" verify --backup-device "$U" >/dev/null || fail "verify with a half copy in staging/"
"$LIFEBOAT" copy "$g3" --backup-device "$B" --to-device "$U" >"$W/out" 2>&1 || fail "copy after a cut: $(cat "$W/out")"
grep -q "removed '$g3' from $U/staging" "$W/out" || fail "the debris is not reported: $(cat "$W/out")"
[ "$(gens "$U")" = "$g $g3" ] || fail "after the cut: $(gens "$U")"
"$LIFEBOAT" verify --backup-device "$U" >/dev/null || fail "verify after the cut"
nothing_staged "$U"
for dev in "$U" "$UP" "$SMALL" "$B"; do mounted "$dev" && fail "lifeboat left $dev mounted"; done
echo "PASS 37-store-copy"
