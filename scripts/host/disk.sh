# shellcheck shell=bash
# Shell helpers for partitions of a disk image, sourced by mkhost.sh and story.sh (loop
# devices: tests/lib/common.bash).

# part_range IMG N -> "OFFSET SIZE" in bytes of partition N (512-byte sectors).
part_range() {
  sgdisk -i "$2" "$1" | awk '
    /^First sector:/ { first = $3 }
    /^Last sector:/  { last = $3 }
    END { if (first == "" || last == "") exit 1; printf "%d %d\n", first * 512, (last - first + 1) * 512 }'
}

