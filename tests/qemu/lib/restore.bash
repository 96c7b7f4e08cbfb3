# shellcheck shell=bash
# Shared by the QEMU tests of the recovery image (tests/qemu/2x-*.sh, 37): sourced, never run.
# QEMU runs under TCG only (tests/lib/qemu.bash): never -enable-kvm.
#
#   lb_setup                  repo root, tools, a work dir $LB_WORK removed on exit
#   lb_bin                    builds lifeboat, lifeboat-init (static) and the lbtest-* tools
#   lb_image                  $LB_IMG/vmlinuz + $LB_IMG/initrd.img from `lifeboat mkrescue`
#   lb_disk FILE SIZE_MB      GPT image: p1 root (ext4, label root-test, 160 MiB), p2 backup (rest)
#   lb_attach FILE            loop device $LB_LOOP, partitions $LB_P1, $LB_P2
#   lb_store_disk             the disk of the restore tests: a backed-up root, then damaged
#                             (LB_STORE_BOOTABLE=1: a root that boots, lb_bootable_root)
#   lb_bootable_root DIR LABEL  a kernel, initramfs, grub.cfg and /sbin/init in a root
#   lb_fixture DIR            a tree with every kind of entry and metadata (lbtest-fixture)
#   lb_compare WANT GOT       the trees are the same (lbtest-compare)
#   lb_boot LOG APPEND [qemu args...]   boots the image with the disk $LB_DISK, serial to LOG
#   lb_drive LOG APPEND STEP...         boots it and drives the menu over the serial console
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a library: source it from a test" >&2
  exit 2
fi
set -euo pipefail

LB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=tests/lib/common.bash
. "$LB_ROOT/tests/lib/common.bash"
# shellcheck source=tests/lib/qemu.bash
. "$LB_ROOT/tests/lib/qemu.bash"
LB_TARGET=x86_64-unknown-linux-musl
LB_QEMU_TIMEOUT_S=${LB_QEMU_TIMEOUT:-300}
export LB_MACHINE_UUID=4c1fe0a2-7d1b-4f2e-9a55-0123456789ab
export LB_MACHINE_SERIAL=LB-TEST-0001
export LB_DISK_SERIAL=LBDISK0001

lb_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

lb_setup() {
  cd "$LB_ROOT"
  [ "$(id -u)" = 0 ] || fail "the QEMU restore tests need root (loop devices, mount)"
  command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 is not installed (make setup)"
  LB_WORK=$(mktemp -d /tmp/lbqemu.XXXXXX)
  LB_QEMU_TMP=$LB_WORK
  on_exit "rm -rf '$LB_WORK'"
  export CC_x86_64_unknown_linux_musl=musl-gcc
}

# The lifeboat binary (host side), lifeboat-init (static) and the lbtest-* tools, built once
# per run. A failed build fails the test.
lb_bin() {
  local profile=${LB_PROFILE:-release}
  local flag=(); [ "$profile" = release ] && flag=(--release)
  if [ -z "${LB_BUILT:-}" ]; then
    cargo build -q "${flag[@]}" --target "$LB_TARGET" -p lifeboat-init -p lifeboat >&2 \
      || fail "cargo build of lifeboat and lifeboat-init failed"
    cargo build -q -p lifeboat-tests --bins >&2 || fail "cargo build of the lbtest-* tools failed"
    LB_BUILT=1
  fi
  LB_INIT=$LB_ROOT/target/$LB_TARGET/$profile/lifeboat-init
  LB_AGENT=$LB_ROOT/target/$LB_TARGET/$profile/lifeboat
  LB_TOOLS=$LB_ROOT/target/debug
  local b
  for b in "$LB_INIT" "$LB_AGENT" "$LB_TOOLS"/lbtest-{fixture,compare,store}; do
    [ -x "$b" ] || fail "$b is missing after the build"
  done
}

lb_kernel() {
  bash scripts/fetch-kernel.sh build/kernel >&2 || fail "cannot fetch the test kernel (scripts/fetch-kernel.sh)"
  LB_VMLINUZ=$LB_ROOT/build/kernel/vmlinuz
}

# The recovery image, built by `lifeboat mkrescue` (the thing under test: no other way). The
# tests that source this file boot the same image, and mkrescue is reproducible: the first test
# of a run builds it under build/qemu-images/<hash of the binaries, the kernel and the options>,
# the others take it from there (a lock keeps two parallel tests from building it twice).
lb_image() {
  lb_bin
  lb_kernel
  local opts=("${LB_MKRESCUE_LEVEL[@]}" --shell) key dir lock
  key=$({ cat "$LB_AGENT" "$LB_INIT" "$LB_VMLINUZ"; echo "${opts[*]}"; } | sha256sum | cut -c1-16)
  dir=$LB_ROOT/build/qemu-images
  mkdir -p "$dir"
  LB_IMG=$dir/$key
  exec {lock}>"$dir/lock"
  flock "$lock"
  if [ -s "$LB_IMG/initrd.img" ]; then
    lb_log "image from lifeboat mkrescue, built earlier in this run ($LB_IMG)"
  else
    # Images of older binaries are of no use any more.
    find "$dir" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
    "$LB_AGENT" mkrescue "${opts[@]}" --kernel "$LB_VMLINUZ" --modules build/kernel/modules --init "$LB_INIT" \
      --output "$LB_IMG.tmp" >"$LB_WORK/mkrescue.log" 2>&1 \
      || { cat "$LB_WORK/mkrescue.log" >&2; rm -rf "$LB_IMG.tmp"; fail "lifeboat mkrescue failed"; }
    [ -s "$LB_IMG.tmp/vmlinuz" ] && [ -s "$LB_IMG.tmp/initrd.img" ] || fail "lifeboat mkrescue wrote no image in $LB_IMG.tmp"
    mv "$LB_IMG.tmp" "$LB_IMG"
    lb_log "image built with lifeboat mkrescue"
  fi
  flock -u "$lock"
  exec {lock}>&-
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

# The disk image as a loop device $LB_LOOP with its partitions $LB_P1 and $LB_P2.
lb_attach() {
  loop_attach "$1"
  LB_LOOP=$REPLY LB_P1=${REPLY}p1 LB_P2=${REPLY}p2
}

lb_detach() { loop_detach "$LB_LOOP"; }

# A tree with every kind of entry the restore must keep.
lb_fixture() { "$LB_TOOLS/lbtest-fixture" "$1" >/dev/null || fail "lbtest-fixture $1 failed"; }

lb_compare() { "$LB_TOOLS/lbtest-compare" "$1" "$2"; }

lb_keep_log() {
  mkdir -p "$LB_ROOT/build/qemu-logs"
  cp "$1" "$LB_ROOT/build/qemu-logs/$(basename "$0" .sh)-$(basename "$1")" 2>/dev/null || true
}

# The options of lb_qemu for the image and $LB_DISK. LB_EXTRA_APPEND adds kernel arguments
# (for measuring, such as loglevel=1; the tests never set it).
lb_image_opts() {
  local append="$1 ${LB_EXTRA_APPEND:-}"
  LB_IMAGE_OPTS=(--mem "${LB_MEM:-512}" --kernel "$LB_IMG/vmlinuz" --initrd "$LB_IMG/initrd.img"
    --append "console=ttyS0 panic=-1 $append" --disk-serial "$LB_DISK_SERIAL" --disk "$LB_DISK"
    --smbios-uuid "${LB_UUID:-$LB_MACHINE_UUID}" --smbios-serial "${LB_SERIAL:-$LB_MACHINE_SERIAL}")
}

# Prints the image's own account of its time to the menu (kernel, initramfs unpack, coldplug,
# settle, discovery) from LOG, with a NOTE: printed, never asserted (timings belong to
# make bench, not make test).
lb_menu_time() {
  local line
  line=$(awk '/Menu ready/ { sub(/.*Menu ready/, "Menu ready"); sub(/\r$/, ""); print; exit }' "$1")
  if [ -n "$line" ]; then echo "$line ($2)"; fi
}

# Boots the image unattended. LOG gets the serial console. Extra arguments go to QEMU.
lb_boot() {
  local log=$1 append=$2; shift 2
  local start end rc=0
  lb_image_opts "$append"
  start=$(date +%s.%N)
  lb_qemu "${LB_IMAGE_OPTS[@]}" --log "$log" --timeout "$LB_QEMU_TIMEOUT_S" -- "$@" || rc=$?
  [ $rc = 0 ] || lb_log "qemu exited with $rc"
  end=$(date +%s.%N)
  LB_BOOT_SECS=$(echo "$end - $start" | bc)
  lb_keep_log "$log"
  lb_log "qemu ran for ${LB_BOOT_SECS}s"
  lb_menu_time "$log" "QEMU ran ${LB_BOOT_SECS}s in all"
  return 0
}

# Boots the image and drives it over the serial console: lb_drive LOG APPEND STEP... where
# STEP is expect:TEXT, send:LINE or choose:LABEL (see serial_driver.py, which needs QEMU's
# stdin and stdout as pipes). Fails when a prompt never comes.
lb_drive() {
  local log=$1 append=$2; shift 2
  lb_image_opts "$append"
  lb_qemu_cmd "${LB_IMAGE_OPTS[@]}"
  local rc=0
  python3 "$LB_ROOT/tests/qemu/lib/serial_driver.py" "$log" "$LB_QEMU_TIMEOUT_S" "$@" -- "${LB_QEMU_CMD[@]}" || rc=$?
  lb_keep_log "$log"
  lb_menu_time "$log" "driven over the serial console"
  return $rc
}

lb_expect_log() {
  local log=$1 pattern=$2
  grep -a -q -- "$pattern" "$log" || { echo "--- serial log ($log):"; tail -n 60 "$log"; fail "the console never showed: $pattern"; }
}

# Backs up the filesystem mounted at ROOTMNT (partition N of the disk image $LB_DISK) into a
# Lifeboat store on BACKUPDEV: `lifeboat init-store` + `lifeboat backup`. The backup runs on
# this test machine, not in the QEMU guest the image restores: so the generation's recorded
# identity (machine DMI, disk, partition) is then set to the guest's (lbtest-store, through
# core's own types), as if the backup had been taken there (this machine has no DMI, and its
# "disk" is a loop device).
# Sets $LB_GEN, the generation id (the store holds one).
lb_store_backup() {
  local rootmnt=$1 partno=$2 backupdev=$3
  "$LB_AGENT" init-store --backup-device "$backupdev" >&2 || fail "lifeboat init-store failed"
  "$LB_AGENT" backup --root "$rootmnt" --backup-device "$backupdev" --no-default-excludes >&2 \
    || fail "lifeboat backup failed"
  local smnt=$LB_WORK/store-mnt partuuid
  partuuid=$(sgdisk -i "$partno" "$LB_DISK" | awk -F': ' '/unique GUID/ {print tolower($2)}')
  mkdir -p "$smnt" && mount "$backupdev" "$smnt"
  "$LB_TOOLS/lbtest-store" set-identity "$smnt" --machine-uuid "$LB_MACHINE_UUID" \
    --machine-serial "$LB_MACHINE_SERIAL" --disk-serial "$LB_DISK_SERIAL" \
    --disk-size "$(stat -c %s "$LB_DISK")" --disk-name vda --table gpt --partuuid "$partuuid" \
    --partition "$partno" >&2 || fail "lbtest-store set-identity failed"
  local g
  for g in "$smnt"/generations/*/; do LB_GEN=$(basename "$g"); done
  export LB_GEN
  umount "$smnt"
}

# The disk of the restore tests ($LB_DISK in $LB_WORK): a root (p1, ext4, label root-test,
# filled with the fixture, then made bootable by lb_bootable_root when LB_STORE_BOOTABLE=1)
# backed up into a Lifeboat store on p2, then damaged. Sets
# $ROOT_UUID, $ROOT_DIGEST_DAMAGED and leaves $LB_WORK/ref.img (a block copy of the original
# root: a file copy cannot hold every fixture path, some are longer than PATH_MAX).
lb_store_disk() {
  [ -n "${LB_WORK:-}" ] && [ -d "$LB_WORK" ] || fail "lb_store_disk: call lb_setup first"
  local mnt=$LB_WORK/mnt
  lb_disk "$LB_WORK/disk.img" 512
  lb_attach "$LB_DISK"
  mkfs.ext4 -q -L root-test "$LB_P1"
  ROOT_UUID=$(blkid -p -s UUID -o value "$LB_P1")
  mkdir -p "$mnt"
  mount "$LB_P1" "$mnt"
  lb_fixture "$mnt"
  if [ "${LB_STORE_BOOTABLE:-}" = 1 ]; then lb_bootable_root "$mnt" root-test; fi
  lb_store_backup "$mnt" 1 "$LB_P2"
  umount "$mnt"
  dd if="$LB_P1" of="$LB_WORK/ref.img" bs=4M status=none
  mount "$LB_P1" "$mnt"
  # Damage the root after the backup (immutable files may stay).
  rm -rf "${mnt:?}/usr" "$mnt/root/secret" 2>/dev/null || true
  mkdir -p "$mnt/etc"; echo damaged > "$mnt/etc/hostname"; echo junk > "$mnt/junk"
  umount "$mnt"
  ROOT_DIGEST_DAMAGED=$(md5sum < "$LB_P1")
  lb_detach
}

lb_check_restored() {
  lb_attach "$LB_DISK"
  [ "$(blkid -p -s LABEL -o value "$LB_P1")" = root-test ] || fail "root label not restored"
  [ "$(blkid -p -s UUID -o value "$LB_P1")" = "$ROOT_UUID" ] || fail "root UUID not restored"
  local got=$LB_WORK/got smnt=$LB_WORK/smnt ref=$LB_WORK/ref
  mkdir -p "$got" "$smnt" "$ref"
  mount -o ro "$LB_P1" "$got"
  [ ! -e "$got/junk" ] || fail "the damaged root's files survived"
  loop_attach "$LB_WORK/ref.img" ro
  mount -o ro "$REPLY" "$ref"
  lb_compare "$ref" "$got" || fail "restored root differs from the original"
  loop_detach "$REPLY"
  umount "$got"
  mount -o ro "$LB_P2" "$smnt"
  grep -q restore-started "$smnt/journal" && grep -q restore-done "$smnt/journal" \
    || fail "the store's journal lacks restore-started/restore-done"
  lb_detach
}

lb_check_untouched() {
  lb_attach "$LB_DISK"
  [ "$(md5sum < "$LB_P1")" = "$ROOT_DIGEST_DAMAGED" ] || fail "the root partition was modified"
  lb_detach
}

# lb_bootable_root DIR LABEL: makes the root mounted at DIR bootable as a host's root is (the
# way scripts/mkhost.sh builds one, reduced): the test kernel in /boot, its own initramfs
# (busybox, scripts/host/initramfs-init, the virtio block driver), a /boot/grub/grub.cfg whose
# default entry boots it with root=LABEL=LABEL (a Xen multiboot entry follows, never the
# default), and an /sbin/init that prints LB_RESTORED_INIT on the console and powers off.
LB_RESTORED_INIT="LIFEBOAT-TEST: the restored system's own /sbin/init is running"
lb_bootable_root() {
  local r=$1 label=$2 kver moddir ird m
  kver=$(cat "$LB_ROOT/build/kernel/version")
  moddir=$LB_ROOT/build/kernel/modules
  [ -x /bin/busybox ] || fail "no /bin/busybox: install busybox-static (make setup)"
  mkdir -p "$r"/{bin,sbin,boot/grub,dev,proc,sys}
  cp /bin/busybox "$r/bin/busybox"
  cat > "$r/sbin/init" <<INIT
#!/bin/busybox sh
# The restored system's own init (a test fixture): says so on the console and powers off.
/bin/busybox echo "$LB_RESTORED_INIT (kernel \$(/bin/busybox uname -r))"
/bin/busybox sync
/bin/busybox poweroff -f
INIT
  chmod 0755 "$r/sbin/init"
  cp "$LB_ROOT/build/kernel/vmlinuz" "$r/boot/vmlinuz-$kver"
  ird=$(mktemp -d "$LB_WORK/initramfs.XXXXXX")
  mkdir -p "$ird/bin" "$ird/lib/modules"
  cp /bin/busybox "$ird/bin/busybox"
  install -m 0755 "$LB_ROOT/scripts/host/initramfs-init" "$ird/init"
  local -A added=()
  local order=()
  _lb_add_module() {
    local name=${1//-/_} path dep
    [ -n "${added[$name]:-}" ] && return 0
    added[$name]=1
    path=$(find "$moddir/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n 1)
    [ -n "$path" ] || return 0   # built in
    for dep in $(modinfo -F depends "$path" | tr ',' ' '); do _lb_add_module "$dep"; done
    cp "$path" "$ird/lib/modules/$name.ko"
    order+=("$name")
  }
  for m in virtio_pci virtio_blk; do _lb_add_module "$m"; done
  [ -f "$ird/lib/modules/virtio_blk.ko" ] || fail "lb_bootable_root: no virtio_blk.ko in $moddir"
  printf '%s\n' "${order[@]}" > "$ird/lib/modules/load-order"
  (cd "$ird" && find . | sort | cpio -o -H newc --quiet | gzip -1) > "$r/boot/initrd-$kver.img" \
    || fail "lb_bootable_root: cannot write the initramfs"
  cat > "$r/boot/grub/grub.cfg" <<CFG
set default="0"
set timeout=1
menuentry 'Restored test system' --id restored {
  search --no-floppy --label $label --set root
  linux /boot/vmlinuz-$kver root=LABEL=$label ro console=ttyS0 panic=-1 loglevel=4
  initrd /boot/initrd-$kver.img
}
menuentry 'XenServer (never the default here)' {
  multiboot2 /boot/xen.gz dom0_mem=1024M
  module2 /boot/vmlinuz-$kver root=LABEL=$label ro
}
CFG
}
