#!/bin/bash
# Builds a recovery image with `lifeboat mkrescue` from Debian's cloud kernel and boots it in
# QEMU (TCG), with zstd and with xz: a test /init (busybox script) loads virtio_pci and
# virtio_blk in the order the image's modules.dep gives, and must see the virtio disk and read
# its marker. Prints initrd sizes and boot times.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib/common.bash
. tests/lib/common.bash
# shellcheck source=tests/lib/qemu.bash
. tests/lib/qemu.bash

bash scripts/fetch-kernel.sh build/kernel || fail "cannot fetch the test kernel"
lifeboat=target/x86_64-unknown-linux-musl/release/lifeboat
init_bin=target/x86_64-unknown-linux-musl/release/lifeboat-init
for b in "$lifeboat" "$init_bin"; do [ -x "$b" ] || fail "no $b: run 'make build'"; done

work=$(mktemp -d)
LB_QEMU_TMP=$work
on_exit "rm -rf '$work'"

# The disk: a marker in its first sector.
truncate -s 16M "$work/disk.img"
printf 'LIFEBOAT-DISK-MARKER-7d3f' | dd of="$work/disk.img" conv=notrunc status=none

cat > "$work/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "TEST: init running on $(uname -r)"
dir=/lib/modules/$(uname -r)
# modules.dep lists a module's dependencies before the modules they need: load from the last.
load() {
  line=$(grep "/$1.ko:" "$dir/modules.dep") || { echo "TEST: $1 not in modules.dep"; return 1; }
  mod=${line%%:*}
  deps=""
  for d in ${line#*:}; do deps="$d $deps"; done
  for p in $deps $mod; do
    insmod "$dir/$p" 2>/dev/null || grep -q "^$(basename "$p" .ko | tr - _) " /proc/modules ||
      echo "TEST: insmod $p failed"
  done
}
load virtio_pci
load virtio_blk
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/block/vda ] && break; sleep 1; done
echo "TEST: block devices: $(ls /sys/block | tr '\n' ' ')"
if [ -e /dev/vda ] && head -c 25 /dev/vda | grep -q LIFEBOAT-DISK-MARKER-7d3f; then
  echo "TEST: PASS virtio disk vda with marker, $(cat /sys/block/vda/size) sectors"
else
  echo "TEST: FAIL no virtio disk"
fi
echo "TEST: modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
poweroff -f
INIT
chmod 755 "$work/init"

status=0
# zstd with 512 MiB as the image is meant to be booted; xz with 256 MiB, the least the restore
# tests give it (the xz decoder needs its dictionary in memory).
for compress in zstd xz; do
  mem=512; [ "$compress" = xz ] && mem=256
  out=$work/out-$compress
  "$lifeboat" mkrescue --kernel build/kernel/vmlinuz --modules build/kernel/modules \
    --init "$work/init" --shell --compress "$compress" --output "$out" | sed 's/^/  /' \
    || fail "lifeboat mkrescue --compress $compress failed"
  size=$(stat -c %s "$out/initrd.img")
  log=$work/serial-$compress.log
  start=$(date +%s.%N)
  lb_qemu --mem "$mem" --kernel "$out/vmlinuz" --initrd "$out/initrd.img" \
    --append 'console=ttyS0 panic=-1' --disk "$work/disk.img" --log "$log" --timeout 300 \
    || echo "  qemu exited with $?"
  end=$(date +%s.%N)
  grep '^TEST:' "$log" | sed 's/^/  /' || true
  secs=$(echo "$end - $start" | bc)
  if grep -q '^TEST: PASS' "$log"; then
    echo "ok: $compress initrd $size bytes, -m $mem, QEMU boot to disk found and powered off in ${secs}s"
  else
    echo "FAIL: $compress image did not find the virtio disk; serial log:"
    tail -40 "$log"
    status=1
  fi
done
# The real PID 1: the image built with the default /init (lifeboat-init beside lifeboat) must
# bring up its menu; the time from QEMU start to the menu is printed.
out=$work/out-real
"$lifeboat" mkrescue -q --kernel build/kernel/vmlinuz --modules build/kernel/modules --shell --output "$out" \
  || fail "lifeboat mkrescue (default /init) failed"
log=$work/serial-real.log
start=$(date +%s.%N)
lb_qemu --mem 512 --kernel "$out/vmlinuz" --initrd "$out/initrd.img" --append 'console=ttyS0 panic=-1' \
  --disk "$work/disk.img" --log "$log" --background
qemu=$LB_QEMU_PID
on_exit "kill $qemu 2>/dev/null"
menu=
deadline=$(($(date +%s) + 300))
while kill -0 "$qemu" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
  if grep -q "Restore from backup" "$log"; then menu=$(echo "$(date +%s.%N) - $start" | bc); break; fi
  sleep 0.2
done
kill "$qemu" 2>/dev/null || true
wait "$qemu" 2>/dev/null || true
if [ -n "$menu" ] && grep -q '^lifeboat-init ' "$log"; then
  echo "ok: lifeboat-init image $(stat -c %s "$out/initrd.img") bytes, menu ${menu}s after QEMU start"
else
  echo "FAIL: lifeboat-init did not reach its menu; serial log:"; tail -30 "$log"; status=1
fi
exit $status
