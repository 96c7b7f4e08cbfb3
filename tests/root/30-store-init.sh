#!/bin/bash
# lifeboat init-store: refuses a mounted partition, one with data, a XenServer backup, a vfat
# filesystem and a whole disk (each unless --force, saying why); makes an ext4 store that
# `lifeboat list` opens.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 16 32)
B=${L}p2
M=$W/m; mkdir -p "$M"

expect_refusal() { # WHAT PATTERN ARGS...
  local what=$1 pat=$2; shift 2
  if "$LIFEBOAT" init-store "$@" >"$W/out" 2>&1; then fail "$what: init-store accepted it"; fi
  grep -qi -- "$pat" "$W/out" || fail "$what: the message does not say '$pat': $(cat "$W/out")"
  note "$what refused: $(head -c 200 "$W/out" | tr '\n' ' ')"
}

note "1. a mounted partition"
mkfs.ext4 -q -F "$B"; mount "$B" "$M"; MOUNTS+=("$M")
expect_refusal mounted "mounted at" --backup-device "$B"
expect_refusal "mounted, even with --force" "mounted at" --backup-device "$B" --force
echo data >"$M/precious"; umount "$M"

note "2. a filesystem with data"
expect_refusal data "with data" --backup-device "$B"
expect_refusal data "precious" --backup-device "$B"
mount "$B" "$M"; [ -f "$M/precious" ] || fail "the data was touched"; umount "$M"

note "3. a XenServer backup partition"
mkfs.ext3 -q -F "$B"; mount "$B" "$M"
mkdir -p "$M/etc"; echo "PRODUCT_VERSION='7.1.2'" >"$M/etc/xensource-inventory"; touch "$M/.xen-backup-partition"
umount "$M"
expect_refusal xenserver "XenServer backup" --backup-device "$B"
"$LIFEBOAT" list --backup-device "$B" --json >"$W/list.json"
[ "$(json "j['backups'][0]['kind']" <"$W/list.json")" = xenserver-tree ] || fail "list: $(cat "$W/list.json")"
[ "$(json "j['backups'][0]['product_version']" <"$W/list.json")" = 7.1.2 ] || fail "list: $(cat "$W/list.json")"

note "4. vfat"
mkfs.vfat "$B" >/dev/null
expect_refusal vfat "vfat" --backup-device "$B"

note "5. a whole disk"
expect_refusal "whole disk" "partition table" --backup-device "$L"

note "6. --force over the vfat, then a second init-store is refused"
"$LIFEBOAT" init-store --backup-device "$B" --force >"$W/out" 2>&1 || fail "init-store --force: $(cat "$W/out")"
[ "$(blkid -o value -s TYPE "$B")" = ext4 ] || fail "not ext4"
[ "$(blkid -o value -s LABEL "$B")" = lifeboat ] || fail "no label"
expect_refusal "an existing store" "already holds a Lifeboat store" --backup-device "$B"

note "7. a blank partition needs no --force; the store lists empty"
wipefs -q -a "$B"
"$LIFEBOAT" init-store --backup-device "$B" >"$W/out" 2>&1 || fail "blank: $(cat "$W/out")"
[ "$(generations "$B")" = 0 ] || fail "a new store is not empty"
mount "$B" "$M"
[ -f "$M/.lifeboat-store" ] && [ -d "$M/generations" ] && [ -d "$M/staging" ] || fail "layout: $(ls -a "$M")"
json "j['format']" <"$M/.lifeboat-store" | grep -qx 1 || fail "marker: $(cat "$M/.lifeboat-store")"
umount "$M"
grep -q "$B" /proc/mounts && fail "lifeboat left $B mounted"
echo "PASS 30-store-init"
