# Shared setup of the store tests (30-39): sourced, not run. A disk image with a GPT
# (p1 "root" ext4 mounted at $R, p2 "backup" blank), attached as a loop device $LOOP, cleaned
# up on exit. Partition nodes are ${LOOP}p1/p2 (created with partx where udev is missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LIFEBOAT:-}" ]; then
  LIFEBOAT=$PWD/target/x86_64-unknown-linux-musl/release/lifeboat
  [ -x "$LIFEBOAT" ] || LIFEBOAT=$PWD/target/debug/lifeboat
fi
[ -x "$LIFEBOAT" ] || { echo "no lifeboat binary (make build, or set LIFEBOAT)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/lifeboat-store.XXXXXX)
LOOPS=()
MOUNTS=()
store_cleanup() {
  local i
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    mountpoint -q "${MOUNTS[$i]}" 2>/dev/null && umount -l "${MOUNTS[$i]}"
  done
  # Mounts lifeboat made (if it was killed) of our loop devices. make_disk runs in a command
  # substitution (a subshell), so the devices it attached are read back from $W/loops.
  [ -f "$W/loops" ] && mapfile -t -O "${#LOOPS[@]}" LOOPS <"$W/loops"
  for l in "${LOOPS[@]}"; do
    # Only this device and its partitions ("/dev/loop1" must not match "/dev/loop12").
    awk -v d="$l" '$1 == d || index($1, d "p") == 1 {print $2}' /proc/mounts |
      while read -r m; do umount -l "$m" || true; done
    losetup -d "$l" 2>/dev/null || true
  done
  rm -rf "$W"
}
trap store_cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

# make_disk NAME ROOT_MIB BACKUP_MIB: image $W/NAME.img, loop device echoed.
make_disk() {
  local img=$W/$1.img size=$(( $2 + $3 + 4 ))
  truncate -s "${size}M" "$img"
  sgdisk -n "1:2048:+$2M" -c 1:root -n "2:0:+$3M" -c 2:backup "$img" >/dev/null
  local l
  l=$(losetup --find --show --partscan "$img")
  LOOPS+=("$l")
  echo "$l" >>"$W/loops"
  [ -e "${l}p2" ] || partx -a "$l" 2>/dev/null || true
  local n=0
  while [ ! -e "${l}p2" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  [ -e "${l}p2" ] || fail "no partition nodes for $l"
  echo "$l"
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
  echo testhost >"$R/etc/hostname"
  for i in $(seq 1 50); do echo "file $i" >"$R/var/lib/f$i"; done
  head -c 2M /dev/urandom >"$R/usr/bin/blob"
}

# json FIELD-EXPR < json: evaluates a python expression on the parsed JSON `j`.
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# generations DEV: the number of Lifeboat generations listed.
generations() {
  "$LIFEBOAT" list --backup-device "$1" --json | json "len([b for b in j['backups'] if b['kind']=='lifeboat'])"
}

# latest_archive MOUNTPOINT: path of the newest committed generation's archive.
latest_archive() {
  local d
  d=$(ls -d "$1"/generations/*/ 2>/dev/null | sort | tail -n1)
  [ -n "$d" ] || return 1
  ls "$d"backup.tar* | head -n1
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
