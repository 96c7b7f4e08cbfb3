# shellcheck shell=bash
# Shell helpers for partitions of a disk image, sourced by mkhost.sh and story.sh.
# Loop devices reach a partition through --offset/--sizelimit, so no partition scan (and no
# udev) is needed: containers often have neither.

# part_range IMG N -> "OFFSET SIZE" in bytes of partition N (512-byte sectors).
part_range() {
  sgdisk -i "$2" "$1" | awk '
    /^First sector:/ { first = $3 }
    /^Last sector:/  { last = $3 }
    END { if (first == "" || last == "") exit 1; printf "%d %d\n", first * 512, (last - first + 1) * 512 }'
}

# part_attach IMG N [ro] -> prints the loop device that shows partition N.
part_attach() {
  local off size
  read -r off size < <(part_range "$1" "$2") || { echo "no partition $2 in $1" >&2; return 1; }
  if [ "${3:-}" = ro ]; then
    losetup --show -f -r -o "$off" --sizelimit "$size" "$1"
  else
    losetup --show -f -o "$off" --sizelimit "$size" "$1"
  fi
}
