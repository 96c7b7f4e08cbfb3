#!/bin/bash
# make bench: lifeboat host-backup (each codec) and lifeboat restore against tar pipelines on
# the same tree, in the same run. The tree is a copy of this machine's /etc and part of /usr
# (>= 1.5 GB, >= 40,000 files) in an ext4 image cached under build/bench/ (reruns reuse it).
# Then the repository figures against radosgw on 127.0.0.1 (scripts/bench/repo.bash).
#
# Environment:
#   BENCH_CACHE=warm (default) read the tree once before the runs so every run reads it from
#                    the page cache (fair, and kind to the other users of the machine);
#   BENCH_CACHE=cold drop the page cache before every run (echo 3 > drop_caches).
#   BENCH_CODECS="zstd gzip xz" which codecs to run (xz is slow: minutes per run).
#   BENCH_REPEAT=N   run every command N times and keep the fastest (default 1; use 3 or more
#                    on a busy machine: the minimum is the least disturbed run).
#   BENCH_HOG=both   (default) run the comparisons twice: on the machine as it is, then with a
#                    CPU hog (one busy process per core, started here) during both sides of
#                    each comparison; BENCH_HOG=quiet or BENCH_HOG=hog runs only one.
#   BENCH_SCALE="10k 100k 1G 5G" the scale trees (small files by count, large files by size),
#                    each in a sparse ext4 image cached under build/bench/; BENCH_FULL=1 adds
#                    1M and 20G (they take long); BENCH_SCALE="" skips them. Each is timed for
#                    lifeboat backup, verify, restore and the two tar pipelines; the curves go
#                    to build/bench/scale.svg beside build/bench/scale.tsv.
#   BENCH_REPO_MB=400 the repository figures (scripts/bench/repo.bash: push, restore --repo,
#                    dedup, RSS against radosgw on 127.0.0.1) on a host root of that many MB of
#                    this machine's files; BENCH_REPO_MB=0 skips them. BENCH_REPO_HOSTS=10 hosts.
#                    BENCH_CODECS="" BENCH_SCALE="" BENCH_HOG=quiet runs only these.
#   BENCH_MENU=1     (default) the recovery image's time from QEMU's start to its menu
#                    (scripts/bench/menu.bash; BENCH_MENU_BOOTS=5 boots, the median, also under
#                    the hog); BENCH_MENU=0 skips it.
#   LIFEBOAT=path    the binary (default: the release musl build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
B=$ROOT_DIR/build/bench
LIFEBOAT=${LIFEBOAT:-$ROOT_DIR/target/x86_64-unknown-linux-musl/release/lifeboat}
CACHE=${BENCH_CACHE:-warm}
CODECS=${BENCH_CODECS-zstd gzip xz}
REPEAT=${BENCH_REPEAT:-1}
HOG_MODE=${BENCH_HOG:-both}
SCALE=${BENCH_SCALE-10k 100k 1G 5G}
REPO_MB=${BENCH_REPO_MB:-400}
MENU=${BENCH_MENU:-1}
if [ "${BENCH_FULL:-0}" = 1 ]; then SCALE="$SCALE 1M 20G"; fi
MIN_BYTES=$((1500 * 1000 * 1000))
MIN_FILES=40000
TAR_OPTS=(--xattrs --xattrs-include='*' --acls --selinux --sparse --numeric-owner)

[ "$(id -u)" = 0 ] || { echo "bench: needs root (loop mounts)" >&2; exit 2; }
[ -x "$LIFEBOAT" ] || { echo "bench: $LIFEBOAT missing: run make build" >&2; exit 2; }
for t in tar gzip pigz zstd xz /usr/bin/time mkfs.ext4 python3; do
  command -v "$t" >/dev/null || { echo "bench: $t missing: run make setup" >&2; exit 2; }
done

mkdir -p "$B/mnt" "$B/target" "$B/out" "$B/smnt"
HOG_PIDS=()
hog_start() {
  local i
  for ((i = 0; i < $(nproc); i++)); do
    bash -c 'while :; do :; done' &
    HOG_PIDS+=($!)
  done
}
hog_stop() {
  local p
  for p in "${HOG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${HOG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  HOG_PIDS=()
}
cleanup() {
  hog_stop
  mountpoint -q "$B/target" && umount "$B/target" || true
  mountpoint -q "$B/smnt" && umount "$B/smnt" || true
  mountpoint -q "$B/mnt" && umount "$B/mnt" || true
  rm -rf "$B/out"
}
# tests/lib/common.bash: loop_attach and on_exit (the loop devices are detached at exit).
# shellcheck source=tests/lib/common.bash
. "$ROOT_DIR/tests/lib/common.bash"
on_exit cleanup
trap 'exit 130' INT TERM

# --- the tree (cached) -------------------------------------------------------------------
SOURCES=(etc usr/bin usr/sbin usr/include usr/share usr/libexec usr/lib/python3 usr/lib/python3.11
         usr/lib/gcc usr/lib/llvm-14 usr/lib/x86_64-linux-gnu)
if [ -n "$CODECS" ] && [ ! -f "$B/tree.ok" ]; then
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
TREE_BYTES=0 TREE_FILES=0
if [ -n "$CODECS" ]; then
  read -r TREE_BYTES TREE_FILES <"$B/tree.ok"
  mount -o loop,ro "$B/tree.img" "$B/mnt"
fi
truncate -s 4G "$B/target.img"

prepare() {
  if [ "$CACHE" = cold ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
}
if [ "$CACHE" = warm ] && [ -n "$CODECS" ]; then
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

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $([ -n "$CODECS" ] && echo "tree $((TREE_BYTES / 1000000)) MB, $TREE_FILES entries; ")$(nproc)" \
  "cores; cache: $CACHE; best of $REPEAT; load average: $LOAD_START"
TAR="tar ${TAR_OPTS[*]} -C $B/mnt -cf - ."
LB="$LIFEBOAT host-backup file-name=- --root $B/mnt --quiet"

# compare SUFFIX: every codec's backup and the restore, each against its tar pipeline; the
# results are named "<command>SUFFIX".
compare() {
  local x=$1 c
  for c in $CODECS; do
    case $c in
      zstd) run "tar | zstd -3 -T0$x" "$B/out/tar.zst" "$TAR | zstd -q -3 -T0"
            run "lifeboat zstd$x" "$B/out/lb.zst" "$LB --compress zstd" ;;
      gzip) run "tar | gzip -6$x" "$B/out/tar.gz" "$TAR | gzip -6"
            run "tar | pigz -6$x" "$B/out/tar.pigz.gz" "$TAR | pigz -6"
            run "lifeboat gzip$x" "$B/out/lb.gz" "$LB --compress gzip"
            rm -f "$B/out/tar.gz" "$B/out/tar.pigz.gz" "$B/out/lb.gz" ;;
      xz)   run "tar | xz -6 -T0$x" "$B/out/tar.xz" "$TAR | xz -6 -T0"
            run "lifeboat xz$x" "$B/out/lb.xz" "$LB --compress xz"
            rm -f "$B/out/tar.xz" "$B/out/lb.xz" ;;
    esac
  done
  # Restores, into a fresh ext4 each time.
  [ -f "$B/out/lb.zst" ] && [ -f "$B/out/tar.zst" ] || return 0
  BEFORE_RUN=fresh_target
  run "zstd -d | tar -x$x" /dev/null \
    "zstd -dc $B/out/tar.zst | tar ${TAR_OPTS[*]} -C $B/target -xpf -"
  # lifeboat restore ends with a syncfs of the target (a restore is done when it is on disk);
  # tar leaves dirty pages behind, so the same pipeline followed by a sync of the target's
  # filesystem is timed too.
  run "zstd -d | tar -x; sync$x" /dev/null \
    "zstd -dc $B/out/tar.zst | tar ${TAR_OPTS[*]} -C $B/target -xpf - && sync -f $B/target"
  run "lifeboat restore$x" /dev/null \
    "$LIFEBOAT restore --file-name $B/out/lb.zst --target-dir $B/target --quiet"
  unset BEFORE_RUN
  umount "$B/target"
}

SUFFIXES=()
case $HOG_MODE in
  both) SUFFIXES=("" " (hog)") ;;
  quiet) SUFFIXES=("") ;;
  hog) SUFFIXES=(" (hog)") ;;
  *) echo "bench: BENCH_HOG is both, quiet or hog" >&2; exit 2 ;;
esac
for x in "${SUFFIXES[@]}"; do
  if [ -n "$x" ]; then
    echo "bench: with a CPU hog (one busy process per core) during both sides"
    hog_start
  fi
  compare "$x"
  hog_stop
done

# --- scale -------------------------------------------------------------------------------
# scale_tree NAME: mounts (read-only, on $B/smnt) the cached sparse ext4 image of the tree
# NAME (10k, 100k, 1M: that many small files; 1G, 5G, 20G: that many bytes in large files),
# making it first when missing. Sets SKIND and SX (the curve's x).
scale_tree() {
  local name=$1 img=$B/scale-$1.img n size inodes
  case $name in
    *k) n=$((${name%k} * 1000)); SKIND=files ;;
    *M) n=$((${name%M} * 1000000)); SKIND=files ;;
    *G) n=$((${name%G} * 1000000000)); SKIND=bytes ;;
    *) echo "bench: BENCH_SCALE names trees like 10k, 1M, 5G, not '$name'" >&2; exit 2 ;;
  esac
  SX=$n
  if [ ! -f "$img.ok" ]; then
    echo "bench: making the scale tree $name (once; cached in $img)"
    if [ "$SKIND" = files ]; then
      size=$((n * 12 * 1024 + (256 << 20))); inodes=$((n + n / 10 + 10000))
    else
      size=$((n + n / 5 + (256 << 20))); inodes=65536
    fi
    rm -f "$img"
    truncate -s "$size" "$img"
    mkfs.ext4 -q -F -N "$inodes" "$img"
    mount -o loop "$img" "$B/smnt"
    rm -rf "$B/smnt/lost+found"
    python3 "$ROOT_DIR/scripts/bench/mktree.py" "$B/smnt/tree" "$SKIND" "$n"
    umount "$B/smnt"
    touch "$img.ok"
  fi
  mount -o loop,ro "$img" "$B/smnt"
}

# The restore target of a scale run: a sparse ext4 image as large as the tree's.
scale_target() {
  mountpoint -q "$B/target" && umount "$B/target"
  rm -f "$B/scale-target.img"
  truncate -s "$(stat -c %s "$B/scale-$1.img")" "$B/scale-target.img"
  mkfs.ext4 -q -F -N "$(tune2fs -l "$B/scale-$1.img" | awk -F: '/^Inode count/ { print $2 + 0 }')" \
    "$B/scale-target.img"
  mount -o loop "$B/scale-target.img" "$B/target"
}

TSV=$B/scale.tsv
if [ -n "$SCALE" ]; then
  printf 'tree\tkind\tx\tcommand\tseconds\trss_kib\n' >"$TSV"
  echo
  echo "bench: scale (time and peak RSS of each command on each tree)"
  for s in $SCALE; do
    scale_tree "$s"
    [ "$CACHE" = warm ] && tar -C "$B/smnt" -cf - . | cat >/dev/null
    STAR="tar ${TAR_OPTS[*]} -C $B/smnt -cf - ."
    run "$s tar | zstd -3 -T0" "$B/out/s.tar.zst" "$STAR | zstd -q -3 -T0"
    run "$s lifeboat backup" "$B/out/s.lb.zst" \
      "$LIFEBOAT host-backup file-name=- --root $B/smnt --quiet --compress zstd"
    run "$s lifeboat verify" /dev/null "$LIFEBOAT verify --file-name $B/out/s.lb.zst --quiet"
    SCALE_NAME=$s
    scale_fresh() { scale_target "$SCALE_NAME"; }
    BEFORE_RUN=scale_fresh
    run "$s zstd -d | tar -x; sync" /dev/null \
      "zstd -dc $B/out/s.tar.zst | tar ${TAR_OPTS[*]} -C $B/target -xpf - && sync -f $B/target"
    run "$s lifeboat restore" /dev/null \
      "$LIFEBOAT restore --file-name $B/out/s.lb.zst --target-dir $B/target --quiet"
    unset BEFORE_RUN
    umount "$B/target"
    rm -f "$B/scale-target.img" "$B/out/s.tar.zst" "$B/out/s.lb.zst"
    umount "$B/smnt"
    for c in "tar | zstd -3 -T0" "lifeboat backup" "lifeboat verify" \
             "zstd -d | tar -x; sync" "lifeboat restore"; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$SKIND" "$SX" "$c" "${T[$s $c]}" "${M[$s $c]}" \
        >>"$TSV"
    done
  done
  python3 "$ROOT_DIR/scripts/bench/svg.py" "$TSV" "$B/scale.svg"
  echo "bench: curves in $B/scale.svg (numbers in $TSV)"
fi

# --- the repository (issue 10) ----------------------------------------------------------
if [ "$REPO_MB" != 0 ]; then
  # shellcheck source=scripts/bench/repo.bash
  . "$ROOT_DIR/scripts/bench/repo.bash"
  repo_bench
fi

# --- the recovery image's menu (issue 13) -------------------------------------------------
if [ "$MENU" != 0 ]; then
  # shellcheck source=scripts/bench/menu.bash
  . "$ROOT_DIR/scripts/bench/menu.bash"
  menu_bench
fi

# --- ratios ------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# verdict MEASURED OP TARGET: ok when MEASURED OP TARGET holds (OP: <=, <, >=), else MISSED.
verdict() {
  awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { if (r == "n/a") { print "n/a"; exit }
    ok = (op == "<=") ? (r + 0 <= t + 0) : (op == "<") ? (r + 0 < t + 0) : (r + 0 >= t + 0)
    print (ok ? "ok" : "MISSED") }'
}
line() {
  case $3 in
    "<= "* | "< "* | ">= "*) echo "| $1 | $2 | $3 | $(verdict "$2" "${3%% *}" "${3#* }") |" ;;
    *) echo "| $1 | $2 | $3 | |" ;;
  esac
}
# rline CHECK A B TARGET: the ratio of the times (or sizes, for CHECK *size*) of A and B.
rline() {
  local a=${T[$2]:-} b=${T[$3]:-}
  case $1 in *size*) a=${S[$2]:-}; b=${S[$3]:-} ;; esac
  if [ -z "$a" ] || [ -z "$b" ]; then echo "| $1 | n/a | $4 | n/a |"; return; fi
  line "$1" "$(ratio "$a" "$b")" "$4"
}
echo
echo "| check | measured | target | |"
echo "|---|---|---|---|"
echo "| load average (1, 5, 15 min) at the start / at the end | $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) | (info) | |"
for x in "${SUFFIXES[@]}"; do
  # Under the hog the targets are 1.0x: the lead must hold on a busy dom0.
  tz="<= 0.50" tr="<= 0.60" tg="<= 0.30"
  [ -n "$x" ] && tz="<= 1.00" tr="<= 1.00" tg="<= 1.00"
  for c in $CODECS; do
    case $c in
      zstd) rline "zstd time vs tar \\| zstd -3 -T0$x" "lifeboat zstd$x" "tar | zstd -3 -T0$x" "$tz"
            rline "zstd size vs tar \\| zstd -3 -T0$x" "lifeboat zstd$x" "tar | zstd -3 -T0$x" "<= 1.02" ;;
      gzip) rline "gzip time vs tar \\| gzip -6$x" "lifeboat gzip$x" "tar | gzip -6$x" "$tg"
            rline "gzip time vs tar \\| pigz -6$x" "lifeboat gzip$x" "tar | pigz -6$x" "(info)" ;;
      xz)   rline "xz time vs tar \\| xz -6 -T0$x" "lifeboat xz$x" "tar | xz -6 -T0$x" "(info)"
            rline "xz size vs tar \\| xz -6 -T0$x" "lifeboat xz$x" "tar | xz -6 -T0$x" "(info)" ;;
    esac
  done
  if [[ " $CODECS " == *" zstd "* ]]; then
    rline "restore time vs zstd -d \\| tar -x; sync (both durable)$x" "lifeboat restore$x" \
      "zstd -d | tar -x; sync$x" "$tr"
    rline "restore time vs zstd -d \\| tar -x (info: tar not synced)$x" "lifeboat restore$x" \
      "zstd -d | tar -x$x" "(info)"
  fi
done
if [ -n "$SCALE" ]; then
  # Linear growth: the time per file (or per GB) of the largest tree against the smallest of
  # its kind, at most 1.5x.
  for kind in files bytes; do
    for c in "lifeboat backup" "lifeboat verify" "lifeboat restore"; do
      lo="" hi=""
      read -r lo hi < <(awk -F'\t' -v k="$kind" -v c="$c" \
        'NR > 1 && $2 == k && $4 == c { r = $5 / $3; if (!n++ || $3 < xl) { xl = $3; lo = r }
           if ($3 > xh) { xh = $3; hi = r } } END { if (n > 1) print lo, hi }' "$TSV") || true
      [ -n "${lo:-}" ] || continue
      line "scale ($kind): $c time per unit, largest vs smallest tree" \
        "$(ratio "$hi" "$lo")" "<= 1.50"
    done
  done
fi
[ "$REPO_MB" != 0 ] && repo_lines
[ "$MENU" != 0 ] && menu_lines
maxrss=0
for k in "${!M[@]}"; do
  case $k in *lifeboat*) [ "${M[$k]}" -gt "$maxrss" ] && maxrss=${M[$k]} ;; esac
done
line "lifeboat peak RSS (MiB), every run and size" \
  "$(awk -v m="$maxrss" 'BEGIN { printf "%.1f", m / 1024 }')" "<= 128"
