# shellcheck shell=bash
# Shared setup of the store tests (30-39): sourced, not run. tests/root/lib.bash (LIFEBOAT,
# the work dir W, MOUNTS cleaned up at exit, note), and a disk image with a GPT (p1 "root"
# ext4 mounted at $R, p2 "backup" blank), attached as a loop device $LOOP, cleaned up on exit
# (tests/lib/common.bash: loop_attach). Partition nodes are ${LOOP}p1/p2.
# shellcheck source=tests/root/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash" store

# make_disk NAME ROOT_MIB BACKUP_MIB: image $W/NAME.img, loop device echoed (the device is
# detached at exit even though this runs in a command substitution).
make_disk() {
  local img=$W/$1.img size=$(( $2 + $3 + 4 ))
  truncate -s "${size}M" "$img"
  sgdisk -n "1:2048:+$2M" -c 1:root -n "2:0:+$3M" -c 2:backup "$img" >/dev/null
  loop_attach "$img"
  echo "$REPLY"
}

# make_root LOOP: ext4 on LOOPp1 mounted at $W/root, with a small dom0-like tree.
make_root() {
  mkfs.ext4 -q -F -L root-test "${1}p1"
  R=$W/root
  mkdir -p "$R"
  mount "${1}p1" "$R"
  MOUNTS+=("$R")
  mkdir -p "$R/etc" "$R/usr/bin" "$R/var/lib" "$R/tmp"
  echo "PRODUCT_VERSION='8.2.1'" >"$R/etc/xensource-inventory"
  echo "INSTALLATION_UUID='0b4c9b2e-0000-4000-8000-000000000001'" >>"$R/etc/xensource-inventory"
  # This machine's own name: "latest" is the newest backup of this host (core::plan::latest).
  hostname >"$R/etc/hostname"
  for i in $(seq 1 50); do echo "file $i" >"$R/var/lib/f$i"; done
  head -c 2M /dev/urandom >"$R/usr/bin/blob"
}

# json FIELD-EXPR < json: evaluates a python expression on the parsed JSON `j`.
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# generations DEV: the number of Lifeboat generations listed.
generations() {
  "$LIFEBOAT" list --backup-device "$1" --json | json "len([b for b in j['backups'] if b['kind']=='lifeboat'])"
}

# latest_archive MOUNTPOINT: path of the newest committed generation's archive (by commit
# time: two generations made in the same second are named ID and ID-02, which sort the other
# way round).
latest_archive() {
  local newest archives
  newest=$(find "$1/generations" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p/\n' 2>/dev/null |
    sort -n | tail -n 1 | cut -d' ' -f2-)
  [ -n "$newest" ] && [ -d "$newest" ] || return 1
  archives=("$newest"backup.tar*)
  [ -f "${archives[0]}" ] || return 1
  echo "${archives[0]}"
}

# verify_archive FILE: the archive decompresses and GNU tar reads all of it.
verify_archive() {
  case "$1" in
    *.zst) zstd -q -t "$1" && zstd -q -dc "$1" | tar -tf - >/dev/null ;;
    *.gz) gzip -t "$1" && tar -tzf "$1" >/dev/null ;;
    *.xz) xz -t "$1" && tar -tJf "$1" >/dev/null ;;
    *) tar -tf "$1" >/dev/null ;;
  esac
}
