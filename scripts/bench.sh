#!/bin/bash
# make bench: lifeboat host-backup (each codec) and lifeboat restore against tar pipelines on
# the same tree, in the same run. The tree is a copy of this machine's /etc and part of /usr
# (>= 1.5 GB, >= 40,000 files) in an ext4 image cached under build/bench/ (reruns reuse it).
#
# Environment:
#   BENCH_CACHE=warm (default) read the tree once before the runs so every run reads it from
#                    the page cache (fair, and kind to the other users of the machine);
#   BENCH_CACHE=cold drop the page cache before every run (echo 3 > drop_caches).
#   BENCH_CODECS="zstd gzip xz" which codecs to run (xz is slow: minutes per run).
#   BENCH_REPEAT=N   run every command N times and keep the fastest (default 1; use 3 or more
#                    on a busy machine: the minimum is the least disturbed run).
#   LIFEBOAT=path    the binary (default: the release musl build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
B=$ROOT_DIR/build/bench
LIFEBOAT=${LIFEBOAT:-$ROOT_DIR/target/x86_64-unknown-linux-musl/release/lifeboat}
CACHE=${BENCH_CACHE:-warm}
CODECS=${BENCH_CODECS-zstd gzip xz}
REPEAT=${BENCH_REPEAT:-1}
MIN_BYTES=$((1500 * 1000 * 1000))
MIN_FILES=40000
TAR_OPTS=(--xattrs --xattrs-include='*' --acls --selinux --sparse --numeric-owner)

[ "$(id -u)" = 0 ] || { echo "bench: needs root (loop mounts)" >&2; exit 2; }
[ -x "$LIFEBOAT" ] || { echo "bench: $LIFEBOAT missing: run make build" >&2; exit 2; }
for t in tar gzip pigz zstd xz /usr/bin/time mkfs.ext4; do
  command -v "$t" >/dev/null || { echo "bench: $t missing: run make setup" >&2; exit 2; }
done

mkdir -p "$B/mnt" "$B/target" "$B/out"
cleanup() {
  mountpoint -q "$B/target" && umount "$B/target" || true
  mountpoint -q "$B/mnt" && umount "$B/mnt" || true
  rm -rf "$B/out"
}
trap cleanup EXIT INT TERM

# --- the tree (cached) -------------------------------------------------------------------
SOURCES=(etc usr/bin usr/sbin usr/include usr/share usr/libexec usr/lib/python3 usr/lib/python3.11
         usr/lib/gcc usr/lib/llvm-14 usr/lib/x86_64-linux-gnu)
if [ ! -f "$B/tree.ok" ]; then
  echo "bench: building the tree image (once; cached in $B/tree.img)"
  rm -f "$B/tree.img"
  truncate -s 4G "$B/tree.img"
  mkfs.ext4 -q -F -L benchtree "$B/tree.img"
  mount -o loop "$B/tree.img" "$B/mnt"
  for s in "${SOURCES[@]}"; do
    [ -e "/$s" ] || continue
    [ -e "$B/mnt/$s" ] && continue
    mkdir -p "$B/mnt/$(dirname "$s")"
    cp -a "/$s" "$B/mnt/$s" 2>/dev/null || true
    bytes=$(du -sb "$B/mnt" | cut -f1)
    files=$(find "$B/mnt" -xdev | wc -l)
    echo "  + /$s: $((bytes / 1000000)) MB, $files entries"
    if [ "$bytes" -ge "$MIN_BYTES" ] && [ "$files" -ge "$MIN_FILES" ]; then break; fi
  done
  rm -rf "$B/mnt/lost+found"
  [ "$bytes" -ge "$MIN_BYTES" ] && [ "$files" -ge "$MIN_FILES" ] \
    || { echo "bench: this machine has too little in /usr and /etc" >&2; exit 2; }
  umount "$B/mnt"
  echo "$bytes $files" >"$B/tree.ok"
fi
read -r TREE_BYTES TREE_FILES <"$B/tree.ok"
mount -o loop,ro "$B/tree.img" "$B/mnt"
truncate -s 4G "$B/target.img"

prepare() {
  if [ "$CACHE" = cold ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
}
if [ "$CACHE" = warm ]; then
  echo "bench: warming the page cache with the tree"
  tar -C "$B/mnt" -cf - . | cat >/dev/null
fi

# run NAME OUTPUT COMMAND...: times COMMAND (its stdout goes to OUTPUT) REPEAT times; records
# the fastest time, the size and the largest peak RSS. $BEFORE_RUN (if set) runs before each.
declare -A T S M
run() {
  local name=$1 out=$2; shift 2
  local i secs kib best="" rss=0
  for ((i = 0; i < REPEAT; i++)); do
    [ -n "${BEFORE_RUN:-}" ] && $BEFORE_RUN
    prepare
    /usr/bin/time -f '%e %M' -o "$B/time.txt" bash -c "$*" >"$out"
    read -r secs kib <"$B/time.txt"
    if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$secs; fi
    [ "$kib" -gt "$rss" ] && rss=$kib
  done
  T[$name]=$best; M[$name]=$rss
  S[$name]=$(stat -c %s "$out" 2>/dev/null || echo 0)
  printf '  %-22s %8.2f s %14s bytes %8s KiB\n' "$name" "${T[$name]}" "${S[$name]}" "${M[$name]}"
}
fresh_target() {
  mountpoint -q "$B/target" && umount "$B/target"
  mkfs.ext4 -q -F "$B/target.img"
  mount -o loop "$B/target.img" "$B/target"
}

echo "bench: tree $((TREE_BYTES / 1000000)) MB, $TREE_FILES entries; $(nproc) cores;" \
  "cache: $CACHE; best of $REPEAT; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
TAR="tar ${TAR_OPTS[*]} -C $B/mnt -cf - ."
LB="$LIFEBOAT host-backup file-name=- --root $B/mnt --quiet"
for c in $CODECS; do
  case $c in
    zstd) run "tar | zstd -3 -T0" "$B/out/tar.zst" "$TAR | zstd -q -3 -T0"
          run "lifeboat zstd" "$B/out/lb.zst" "$LB --compress zstd" ;;
    gzip) run "tar | gzip -6" "$B/out/tar.gz" "$TAR | gzip -6"
          run "tar | pigz -6" "$B/out/tar.pigz.gz" "$TAR | pigz -6"
          run "lifeboat gzip" "$B/out/lb.gz" "$LB --compress gzip"
          rm -f "$B/out/tar.gz" "$B/out/tar.pigz.gz" "$B/out/lb.gz" ;;
    xz)   run "tar | xz -6 -T0" "$B/out/tar.xz" "$TAR | xz -6 -T0"
          run "lifeboat xz" "$B/out/lb.xz" "$LB --compress xz"
          rm -f "$B/out/tar.xz" "$B/out/lb.xz" ;;
  esac
done

# Restores, into a fresh ext4 each time.
RESTORE=n/a
if [ -f "$B/out/lb.zst" ] && [ -f "$B/out/tar.zst" ]; then
  BEFORE_RUN=fresh_target
  run "zstd -d | tar -x" /dev/null \
    "zstd -dc $B/out/tar.zst | tar ${TAR_OPTS[*]} -C $B/target -xpf -"
  # lifeboat restore ends with a syncfs of the target (a restore is done when it is on disk);
  # tar leaves dirty pages behind, so the same pipeline followed by a sync of the target's
  # filesystem is timed too.
  run "zstd -d | tar -x; sync" /dev/null \
    "zstd -dc $B/out/tar.zst | tar ${TAR_OPTS[*]} -C $B/target -xpf - && sync -f $B/target"
  fresh_target
  if "$LIFEBOAT" restore --help >/dev/null 2>&1 \
     && "$LIFEBOAT" restore --file-name "$B/out/lb.zst" --target-dir "$B/target" --quiet \
          >/dev/null 2>"$B/restore.err"; then
    run "lifeboat restore" /dev/null \
      "$LIFEBOAT restore --file-name $B/out/lb.zst --target-dir $B/target --quiet"
    RESTORE=ok
  else
    echo "  lifeboat restore       n/a ($(head -c 200 "$B/restore.err" 2>/dev/null))"
  fi
  unset BEFORE_RUN
  umount "$B/target"
fi

# --- ratios ------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 <= t + 0) print "ok"; else print "MISSED" }'; }
echo
echo "| check | measured | target | |"
echo "|---|---|---|---|"
line() { echo "| $1 | $2 | $3 | $(verdict "$2" "${3#<= }") |"; }
if [ -n "${T[lifeboat zstd]:-}" ]; then
  line "zstd time vs tar \\| zstd -3 -T0" "$(ratio "${T[lifeboat zstd]}" "${T[tar | zstd -3 -T0]}")" "<= 1.00"
  line "zstd size vs tar \\| zstd -3 -T0" "$(ratio "${S[lifeboat zstd]}" "${S[tar | zstd -3 -T0]}")" "<= 1.02"
fi
if [ -n "${T[lifeboat gzip]:-}" ]; then
  line "gzip time vs tar \\| gzip -6" "$(ratio "${T[lifeboat gzip]}" "${T[tar | gzip -6]}")" "<= 0.60"
  echo "| gzip time vs tar \\| pigz -6 | $(ratio "${T[lifeboat gzip]}" "${T[tar | pigz -6]}") | (info) | |"
  echo "| gzip size vs tar \\| gzip -6 | $(ratio "${S[lifeboat gzip]}" "${S[tar | gzip -6]}") | (info) | |"
fi
if [ -n "${T[lifeboat xz]:-}" ]; then
  echo "| xz time vs tar \\| xz -6 -T0 | $(ratio "${T[lifeboat xz]}" "${T[tar | xz -6 -T0]}") | (info) | |"
  echo "| xz size vs tar \\| xz -6 -T0 | $(ratio "${S[lifeboat xz]}" "${S[tar | xz -6 -T0]}") | (info) | |"
fi
if [ "$RESTORE" = ok ]; then
  line "restore time vs zstd -d \\| tar -x" "$(ratio "${T[lifeboat restore]}" "${T[zstd -d | tar -x]}")" "<= 1.00"
  line "restore time vs zstd -d \\| tar -x; sync (both durable)" "$(ratio "${T[lifeboat restore]}" "${T[zstd -d | tar -x; sync]}")" "<= 1.00"
else
  echo "| restore time vs zstd -d \\| tar -x | n/a | <= 1.00 | n/a |"
fi
maxrss=0
for k in "${!M[@]}"; do
  case $k in lifeboat*) [ "${M[$k]}" -gt "$maxrss" ] && maxrss=${M[$k]} ;; esac
done
line "lifeboat peak RSS (MiB)" "$(awk -v m="$maxrss" 'BEGIN { printf "%.1f", m / 1024 }')" "<= 128"
