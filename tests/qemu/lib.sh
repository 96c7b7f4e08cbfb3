#!/bin/bash
# Shared helpers for the QEMU tests of the recovery image (tests/qemu/2x-*.sh); other tests may
# source it too. QEMU runs under TCG only: never -enable-kvm.
#
#   lb_setup                  repo root, tools, a work dir $LB_WORK removed on exit
#   lb_image                  builds (once) $LB_IMG/vmlinuz + $LB_IMG/initrd.img
#   lb_disk FILE SIZE_MB      GPT image: p1 root (ext4, label root-test, 160 MiB), p2 backup (rest)
#   lb_attach FILE            loop device with partitions -> $LB_LOOP
#   lb_fixture DIR            a tree with every kind of entry and metadata
#   lb_digest DIR             one line per entry with its metadata and content hash
#   lb_boot LOG APPEND [qemu args...]   boots the image with the disk $LB_DISK, serial to LOG
set -euo pipefail

LB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LB_TARGET=x86_64-unknown-linux-musl
LB_QEMU_TIMEOUT=${LB_QEMU_TIMEOUT:-300}
export LB_MACHINE_UUID=4c1fe0a2-7d1b-4f2e-9a55-0123456789ab
export LB_MACHINE_SERIAL=LB-TEST-0001
export LB_DISK_SERIAL=LBDISK0001

lb_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
lb_fail() { echo "FAIL: $*" >&2; exit 1; }

LB_CLEANUP=()
lb_cleanup() {
  local i
  for ((i=${#LB_CLEANUP[@]}-1; i>=0; i--)); do eval "${LB_CLEANUP[$i]}" || true; done
}
lb_on_exit() { LB_CLEANUP+=("$1"); }

lb_setup() {
  cd "$LB_ROOT"
  [ "$(id -u)" = 0 ] || { echo "SKIP: QEMU restore tests need root (loop devices)"; exit 0; }
  command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 0; }
  LB_WORK=$(mktemp -d /tmp/lbqemu.XXXXXX)
  trap lb_cleanup EXIT
  lb_on_exit "rm -rf '$LB_WORK'"
  export CC_x86_64_unknown_linux_musl=musl-gcc
}

# The lifeboat binary (host side) and lifeboat-init (static), built once per run.
lb_bin() {
  local profile=${LB_PROFILE:-release}
  local flag=; [ "$profile" = release ] && flag=--release
  if [ -z "${LB_BUILT:-}" ]; then
    cargo build -q $flag --target $LB_TARGET -p lifeboat-init >&2
    cargo build -q $flag --target $LB_TARGET -p lifeboat >&2 || true
    cargo build -q -p lifeboat-tests --bins >&2 || true   # lbtest-fixture, lbtest-compare
    LB_BUILT=1
  fi
  LB_INIT=$LB_ROOT/target/$LB_TARGET/$profile/lifeboat-init
  LB_AGENT=$LB_ROOT/target/$LB_TARGET/$profile/lifeboat
}

lb_kernel() {
  bash scripts/fetch-kernel.sh build/kernel >&2
  LB_KVER=$(cat build/kernel/version)
  LB_VMLINUZ=$LB_ROOT/build/kernel/vmlinuz
}

# Copies a program and the libraries it needs into an image tree.
lb_copy_prog() {
  local root=$1 prog=$2 dest=$3 lib
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$prog" "$root$dest"
  for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
  done
}

# Builds the initramfs by hand (used until `lifeboat mkrescue` is there, or with LB_HANDMADE=1).
lb_handmade_initrd() {
  local out=$1 root=$LB_WORK/initrd-root src=build/kernel/modules
  rm -rf "$root" && mkdir -p "$root"/{dev,proc,sys,run,tmp,bin,sbin,etc,root}
  cp "$LB_INIT" "$root/init"
  mkdir -p "$root/lib/modules/$LB_KVER"
  (cd "$src" && find kernel/drivers/virtio kernel/drivers/block/virtio_blk.ko kernel/drivers/scsi/virtio_scsi.ko \
      kernel/drivers/scsi/sd_mod.ko kernel/drivers/scsi/sr_mod.ko kernel/drivers/scsi/scsi_mod.ko \
      kernel/drivers/scsi/scsi_common.ko kernel/drivers/cdrom kernel/fs/fat kernel/fs/nls kernel/fs/isofs \
      kernel/lib kernel/arch/x86/crypto/crc32c-intel.ko -name '*.ko' 2>/dev/null) | while read -r m; do
    mkdir -p "$root/lib/modules/$LB_KVER/$(dirname "$m")"
    cp "$src/$m" "$root/lib/modules/$LB_KVER/$m"
  done
  cp "$src"/modules.builtin* "$src"/modules.order "$root/lib/modules/$LB_KVER/" 2>/dev/null || true
  depmod -b "$root" "$LB_KVER" 2>/dev/null
  lb_copy_prog "$root" "$(command -v mke2fs)" /sbin/mke2fs
  lb_copy_prog "$root" "$(command -v tune2fs)" /sbin/tune2fs
  lb_copy_prog "$root" "$(command -v mkfs.vfat)" /sbin/mkfs.vfat
  cp /bin/busybox "$root/bin/busybox" && ln -s busybox "$root/bin/sh"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$LB_WORK/initrd.cpio"
  # /dev/console must exist before devtmpfs is mounted (the kernel opens it for PID 1).
  (mkdir -p "$LB_WORK/devc/dev" && cd "$LB_WORK/devc" && mknod dev/console c 5 1 2>/dev/null; \
     echo dev/console | cpio -o -H newc -R 0:0 --quiet) >> "$LB_WORK/initrd.cpio"
  zstd -q -19 -T0 -f "$LB_WORK/initrd.cpio" -o "$out"
}

lb_image() {
  lb_bin
  lb_kernel
  LB_IMG=$LB_WORK/image
  mkdir -p "$LB_IMG"
  cp -L "$LB_VMLINUZ" "$LB_IMG/vmlinuz"
  if [ -z "${LB_HANDMADE:-}" ] && [ -x "$LB_AGENT" ] && "$LB_AGENT" mkrescue --help >/dev/null 2>&1 \
     && "$LB_AGENT" mkrescue --kernel "$LB_VMLINUZ" --modules build/kernel/modules --init "$LB_INIT" \
          --shell --output "$LB_IMG" >"$LB_WORK/mkrescue.log" 2>&1; then
    lb_log "image built with lifeboat mkrescue"
  else
    lb_log "image built by hand (lifeboat mkrescue unavailable or failed: $(tail -n1 "$LB_WORK/mkrescue.log" 2>/dev/null))"
    lb_handmade_initrd "$LB_IMG/initrd.img"
  fi
  echo "initrd size: $(stat -c %s "$LB_IMG/initrd.img") bytes ($(du -h "$LB_IMG/initrd.img" | cut -f1))"
}

lb_disk() {
  local file=$1 size=${2:-512}
  truncate -s 0 "$file" && truncate -s "${size}M" "$file"
  sgdisk -o \
    -n 1:2048:+160M -t 1:8300 -c 1:root \
    -n 2:0:0 -t 2:8300 -c 2:backup "$file" >/dev/null
  LB_DISK=$file
}

# Loop devices for the disk image: $LB_LOOP (whole disk) and $LB_P1, $LB_P2, ... (one per
# partition, by offset: partition scanning of loop devices does not work in every container).
lb_attach() {
  local file=$1 nr start sectors dev
  LB_LOOP=$(losetup --show -f "$file")
  lb_on_exit "losetup -d $LB_LOOP 2>/dev/null"
  LB_PARTS=()
  while read -r nr start sectors; do
    dev=$(losetup --show -f -o $((start * 512)) --sizelimit $((sectors * 512)) "$file")
    lb_on_exit "losetup -d $dev 2>/dev/null"
    eval "LB_P$nr=$dev"
    LB_PARTS+=("$dev")
  done < <(partx -g -o NR,START,SECTORS "$file")
}

lb_detach() {
  local d
  for d in "${LB_PARTS[@]}" "$LB_LOOP"; do losetup -d "$d" 2>/dev/null || true; done
}

# A tree with every kind of entry the restore must keep.
lb_fixture() {
  local d=$1
  if [ -x "$LB_ROOT/target/debug/lbtest-fixture" ] && [ -z "${LB_SIMPLE_FIXTURE:-}" ]; then
    "$LB_ROOT/target/debug/lbtest-fixture" "$d" >/dev/null && return 0
  fi
  mkdir -p "$d"/{etc,usr/bin,var/lib/empty,boot,root,tmp}
  echo "test-host" > "$d/etc/hostname"
  printf 'LABEL=root-test / ext4 defaults 0 1\n' > "$d/etc/fstab"
  head -c 300000 /dev/urandom > "$d/usr/bin/program"; chmod 4755 "$d/usr/bin/program"
  ln "$d/usr/bin/program" "$d/usr/bin/program-hardlink"
  ln -s ../usr/bin/program "$d/etc/link-to-program"
  ln -s /nonexistent/dangling "$d/etc/dangling"
  mkfifo "$d/var/lib/fifo"
  mknod "$d/var/lib/null" c 1 3
  truncate -s 20M "$d/var/lib/sparse"; echo tail >> "$d/var/lib/sparse"
  echo secret > "$d/root/secret"; chmod 600 "$d/root/secret"; chown 1234:5678 "$d/root/secret"
  setfattr -n user.lifeboat -v kept "$d/root/secret"
  setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$d/usr/bin/program" 2>/dev/null || true
  mkdir -p "$d/var/lib/long"; touch "$d/var/lib/long/$(printf 'n%.0s' $(seq 200))"
  touch "$d/var/lib/$(printf 'caf\xe9')"
  chmod 1777 "$d/tmp"
  touch -d '2001-02-03 04:05:06.123456789' "$d/etc/hostname" "$d/var/lib/empty"
  touch -h -d '2002-02-03 04:05:06' "$d/etc/link-to-program"
}

# Metadata and content of every entry below DIR (lost+found and .xen-backup-partition left out).
lb_digest() {
  local d=$1
  # Directory sizes depend on the filesystem's block size, not on the restore: left out.
  (cd "$d" && find . -path ./lost+found -prune -o ! -name .xen-backup-partition ! -type d -printf '%p|%y|%m|%U|%G|%s|%T@|%l|%n\n' | LC_ALL=C sort
   cd "$d" && find . -path ./lost+found -prune -o -type d -printf '%p|%y|%m|%U|%G|%T@|%n\n' | LC_ALL=C sort
   cd "$d" && find . -path ./lost+found -prune -o -type f ! -name .xen-backup-partition -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
   cd "$d" && getfattr -R -h -d -m - . 2>/dev/null | grep -v '^$' | LC_ALL=C sort)
}

lb_compare() {
  local want=$1 got=$2
  if [ -x "$LB_ROOT/target/debug/lbtest-compare" ] && [ -z "${LB_SIMPLE_FIXTURE:-}" ]; then
    "$LB_ROOT/target/debug/lbtest-compare" "$want" "$got" && return 0
    return 1
  fi
  diff <(lb_digest "$want") <(lb_digest "$got") >&2
}

# The QEMU command line for the image and $LB_DISK (serial on stdio). Extra args appended.
lb_qemu_cmd() {
  local append=$1; shift
  LB_QEMU=(qemu-system-x86_64 -accel tcg -m "${LB_MEM:-512}" -display none -serial stdio -monitor none -no-reboot
    -kernel "$LB_IMG/vmlinuz" -initrd "$LB_IMG/initrd.img"
    -append "console=ttyS0 panic=-1 $append"
    -drive "file=$LB_DISK,if=none,id=d0,format=raw" -device "virtio-blk-pci,drive=d0,serial=$LB_DISK_SERIAL"
    -smbios "type=1,uuid=${LB_UUID:-$LB_MACHINE_UUID},serial=${LB_SERIAL:-$LB_MACHINE_SERIAL}" "$@")
}

lb_keep_log() {
  mkdir -p "$LB_ROOT/build/qemu-logs"
  cp "$1" "$LB_ROOT/build/qemu-logs/$(basename "$0" .sh)-$(basename "$1")" 2>/dev/null || true
}

# Boots the image unattended. LOG gets the serial console. Extra arguments go to QEMU.
lb_boot() {
  local log=$1 append=$2; shift 2
  local start end
  lb_qemu_cmd "$append" "$@"
  start=$(date +%s.%N)
  timeout "$LB_QEMU_TIMEOUT" "${LB_QEMU[@]}" </dev/null >"$log" 2>&1 || lb_log "qemu exited with $?"
  end=$(date +%s.%N)
  LB_BOOT_SECS=$(echo "$end - $start" | bc)
  lb_keep_log "$log"
  lb_log "qemu ran for ${LB_BOOT_SECS}s"
  local menu
  menu=$(grep -a -m1 -o 'Menu ready [0-9.]* s' "$log" || true)
  [ -n "$menu" ] && echo "time to menu: $menu after the kernel started (QEMU run: ${LB_BOOT_SECS}s in all)"
  return 0
}

# Boots the image and drives it over the serial console: lb_drive LOG APPEND STEP... where
# STEP is expect:TEXT or send:LINE (see serial_driver.py). Fails when a prompt never comes.
lb_drive() {
  local log=$1 append=$2; shift 2
  lb_qemu_cmd "$append"
  local rc=0
  python3 "$LB_ROOT/tests/qemu/serial_driver.py" "$log" "$LB_QEMU_TIMEOUT" "$@" -- "${LB_QEMU[@]}" || rc=$?
  lb_keep_log "$log"
  return $rc
}

lb_expect_log() {
  local log=$1 pattern=$2
  grep -a -q -- "$pattern" "$log" || { echo "--- serial log ($log):"; tail -n 60 "$log"; lb_fail "the console never showed: $pattern"; }
}

# Identity of the ext filesystem on DEV as manifest JSON (FilesystemIdentity).
lb_fs_identity_json() {
  dumpe2fs -h "$1" 2>/dev/null | python3 -c '
import sys, json
kv = {}
for line in sys.stdin:
    if ":" in line:
        k, v = line.split(":", 1); kv[k.strip()] = v.strip()
feats = kv.get("Filesystem features", "").split()
fstype = "ext4" if "extent" in feats or "64bit" in feats or "flex_bg" in feats else ("ext3" if "has_journal" in feats else "ext2")
label = kv.get("Filesystem volume name", "")
print(json.dumps({"fstype": fstype, "uuid": kv.get("Filesystem UUID"), "label": None if label in ("", "<none>") else label,
  "size": int(kv.get("Block count", 0)) * int(kv.get("Block size", 0)), "block_size": int(kv.get("Block size", 0)),
  "inode_size": int(kv.get("Inode size", 0)), "features": feats, "device": None}))'
}

# Backs up the filesystem mounted at ROOTMNT (on ROOTDEV, partition N of the disk image
# $LB_DISK) into a Lifeboat store on BACKUPDEV: `lifeboat init-store` + `lifeboat backup`.
# The backup runs on this test machine, not in the QEMU guest the image restores: so the
# generation's recorded identity (machine DMI, disk, partition) is then set to the guest's,
# as if the backup had been taken there (this machine has no DMI, and its "disk" is a loop
# device over one partition of the image).
lb_store_backup() {
  local rootmnt=$1 rootdev=$2 partno=$3 backupdev=$4
  "$LB_AGENT" init-store --backup-device "$backupdev" >&2 || lb_fail "lifeboat init-store failed"
  "$LB_AGENT" backup --root "$rootmnt" --backup-device "$backupdev" --no-default-excludes >&2 \
    || lb_fail "lifeboat backup failed"
  local smnt=$LB_WORK/store-mnt partuuid
  partuuid=$(sgdisk -i "$partno" "$LB_DISK" | awk -F': ' '/unique GUID/ {print tolower($2)}')
  mkdir -p "$smnt" && mount "$backupdev" "$smnt"
  PARTUUID=$partuuid PARTNO=$partno DISKSIZE=$(stat -c %s "$LB_DISK") python3 - "$smnt"/generations/*/meta.json <<'PY'
import json, os, sys
for path in sys.argv[1:]:
    meta = json.load(open(path))
    m = meta["manifest"]
    m["machine"]["product_uuid"] = os.environ["LB_MACHINE_UUID"]
    m["machine"]["product_serial"] = os.environ["LB_MACHINE_SERIAL"]
    m["source"]["disk"].update({"serial": os.environ["LB_DISK_SERIAL"], "size_bytes": int(os.environ["DISKSIZE"]),
                                "kernel_name": "vda", "table_type": "gpt"})
    m["source"]["partition"].update({"partuuid": os.environ["PARTUUID"], "number": int(os.environ["PARTNO"])})
    json.dump(meta, open(path, "w"), indent=1)
PY
  umount "$smnt"
}
