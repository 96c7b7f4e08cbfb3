#!/bin/bash
# Builds the disk of a virtual XenServer 8-style host (UEFI, GPT) for the end-to-end story:
#   scripts/mkhost.sh [--print-key] [--bios] OUT.img
#   scripts/mkhost.sh [--print-key] --raid1 OUT_A.img OUT_B.img
# --bios: the same host for BIOS firmware: partition 4 is a BIOS boot partition holding GRUB's
# core.img, GRUB's boot.img is in the MBR, grub.cfg is /boot/grub/grub.cfg on the root, no ESP.
# The image is cached by content under build/cache/ (key: these scripts, the kernel version,
# the lifeboat and busybox binaries, the GRUB version); a cached image is copied (sparse) to OUT.
# --raid1: the --bios host whose ROOT is an md RAID1 array (metadata 1.0, as XenServer's
# installer mirrors; array lbdemo:root, UUID $MD_UUID below) over two partition legs: p1 of
# disk A (the layout below, p1 typed Linux RAID) and p1 of disk B (a disk with that partition
# only, at sector 2048, same size). The rest of the layout stays on disk A only: the BIOS boots
# disk A, and a second copy of logs, swap and SR would only make the images and the restore
# larger without exercising anything more of the array. GRUB reads the root from one leg
# (hd0,gpt1): metadata 1.0 sits at the end of the leg, the ext4 starts at its sector 0. The host's
# initramfs assembles /dev/md0 with mdadm (with its libraries) and mounts it. This machine's
# kernel has no md driver: the legs' superblocks are written by tests/qemu/lib/mdleg.py around
# the ext4 (which fills the array's data area), as mdadm --create --metadata=1.0 puts them.
#
# Layout, in XenServer's physical order and partition numbers, sizes scaled down:
#   p5 logs   64 MiB  ext4 `logs-lbdemo`   (/var/log)
#   p2 backup 512 MiB (same size as root, empty: `lifeboat init-store` formats it)
#   p1 root   512 MiB ext4 `root-lbdemo`   (busybox userland, Debian cloud kernel, lifeboat)
#   p4 ESP    64 MiB  vfat `BOOT-LBDEMO`   (GRUB: EFI/BOOT/BOOTX64.EFI, EFI/xenserver/grub.cfg)
#      (--bios: a 1 MiB BIOS boot partition with GRUB's core.img)
#   p6 swap   32 MiB  `swap-lbdemo`
#   p3 SR     16 MiB  LVM type, a fixed pattern (a restore must never touch it)
# Environment: KERNEL_DIR (default build/kernel, from scripts/fetch-kernel.sh),
#   LIFEBOAT_BIN (default target/x86_64-unknown-linux-musl/release/lifeboat), CACHE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
here=scripts/host

print_key=0 firmware=uefi raid1=0
while [ $# -gt 1 ]; do
  case $1 in
    --print-key) print_key=1; shift ;;
    --bios) firmware=bios; shift ;;
    --raid1) firmware=bios raid1=1; shift ;;
    *) break ;;
  esac
done
usage='usage: scripts/mkhost.sh [--print-key] [--bios] OUT.img | [--print-key] --raid1 OUT_A.img OUT_B.img'
out=${1:?$usage}
out_b=
if [ "$raid1" = 1 ]; then out_b=${2:?$usage}; fi

KERNEL_DIR=${KERNEL_DIR:-build/kernel}
LIFEBOAT_BIN=${LIFEBOAT_BIN:-target/x86_64-unknown-linux-musl/release/lifeboat}
CACHE_DIR=${CACHE_DIR:-build/cache}
BUSYBOX=${BUSYBOX:-/bin/busybox}

# The host's identity (fixed, so the image is reproducible and cacheable).
HOSTNAME_=xs-lbdemo
ROOT_LABEL=root-lbdemo
LOGS_LABEL=logs-lbdemo
SWAP_LABEL=swap-lbdemo
BOOT_LABEL=BOOT-LBDEMO
ROOT_UUID=6c1f2a3b-8d4e-4f50-9a61-72b3c4d5e6f7
LOGS_UUID=0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b
DISK_SERIAL=LBDEMO0001
INSTALLATION_UUID=3f6e1c52-9b0a-4d7e-8f21-5a4c3b2d1e0f
CONTROL_DOMAIN_UUID=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
# --raid1: the array's UUID (mdadm's form: 4 groups of 8 hex digits) and name.
MD_UUID=6d5a1b2c:3d4e5f60:71829304:a5b6c7d8
MD_NAME=lbdemo:root

die() { echo "mkhost: $*" >&2; exit 1; }
[ -s "$KERNEL_DIR/version" ] || die "no kernel in $KERNEL_DIR: run 'bash scripts/fetch-kernel.sh $KERNEL_DIR' (or make kernel)"
[ -x "$LIFEBOAT_BIN" ] || die "no static lifeboat at $LIFEBOAT_BIN: run 'make build'"
[ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX: install busybox-static (make setup)"
KVER=$(cat "$KERNEL_DIR/version")
grub_version=$(dpkg-query -W -f='${Version} ' grub-efi-amd64-bin grub-pc-bin e2fsprogs libc6 efibootmgr 2>/dev/null || echo unknown)

key=$( {
  cat scripts/mkhost.sh "$here"/*
  echo "$KVER" "$grub_version" "$firmware" "$raid1"
  if [ "$raid1" = 1 ]; then
    cat tests/qemu/lib/mdleg.py
    sha256sum "$(command -v mdadm)" | cut -d' ' -f1
  fi
  sha256sum "$LIFEBOAT_BIN" "$BUSYBOX" | cut -d' ' -f1
} | sha256sum | cut -c1-16)
if [ "$print_key" = 1 ]; then echo "$key"; exit 0; fi
variant=$firmware
[ "$raid1" = 1 ] && variant=raid1
cached=$CACHE_DIR/host-$variant-$key.img
cached_b=$CACHE_DIR/host-$variant-$key.b.img
mkdir -p "$CACHE_DIR" "$(dirname "$out")"
if [ -s "$cached" ] && { [ "$raid1" = 0 ] || [ -s "$cached_b" ]; }; then
  cp --sparse=always "$cached" "$out"
  [ "$raid1" = 0 ] || cp --sparse=always "$cached_b" "$out_b"
  echo "mkhost: $out${out_b:+ $out_b} from cache ($cached)"
  exit 0
fi
if [ "$raid1" = 1 ]; then
  command -v mdadm >/dev/null || die "no mdadm on this machine (make setup): the RAID1 host's initramfs needs it"
  [ -r tests/qemu/lib/mdleg.py ] || die "tests/qemu/lib/mdleg.py is missing: it writes the md legs' superblocks"
fi

MiB=$((1024 * 1024))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkhost.XXXXXX")
img=$cached.$$.part
img_b=$cached_b.$$.part
# shellcheck source=scripts/host/disk.sh
. "$here/disk.sh"
cleanup() {
  set +e
  mountpoint -q "$tmp/mnt/root" && umount "$tmp/mnt/root"
  rm -rf "$tmp" "$img" "$img_b"
}
trap cleanup EXIT

# Partition table: created in physical order, numbered as XenServer numbers them.
rm -f "$img"
truncate -s $((1216 * MiB)) "$img"
sgdisk -Z "$img" >/dev/null
boot_part=(-n 4:0:+64M -t 4:ef00)
[ "$firmware" = bios ] && boot_part=(-n 4:0:+1M -t 4:ef02)
root_type=8300
[ "$raid1" = 1 ] && root_type=fd00
sgdisk -a 2048 \
  -n 5:2048:+64M -t 5:8300 \
  -n 2:0:+512M -t 2:8300 \
  -n 1:0:+512M -t 1:$root_type \
  "${boot_part[@]}" \
  -n 6:0:+32M -t 6:8200 \
  -n 3:0:0 -t 3:8e00 \
  "$img" >/dev/null
# Each filesystem is made in a file of the partition's size, then written into its place: only
# the root needs a loop device (to be mounted while it is filled).
part_file() { # N -> a zero file of partition N's size, at $tmp/pN
  local off size
  read -r off size < <(part_range "$img" "$1")
  truncate -s "$size" "$tmp/p$1"
}
part_write() { # N: writes $tmp/pN into partition N of the image
  local off size
  read -r off size < <(part_range "$img" "$1")
  dd if="$tmp/p$1" of="$img" bs=1M seek=$((off / MiB)) conv=notrunc,sparse status=none
  rm -f "$tmp/p$1"
}
for i in 1 3 5 6; do part_file $i; done
[ "$firmware" = uefi ] && part_file 4
if [ "$raid1" = 1 ]; then
  # The ext4 fills the array's data area: the leg less mdadm's 1.0 superblock space (8 KiB
  # before the end, rounded down to 4 KiB, as mdleg.py computes it).
  read -r _ p1_size < <(part_range "$img" 1)
  md_bytes=$(((p1_size / 512 - 16) / 8 * 8 * 512))
  # (-b, -i: the geometry mke2fs picks for the 512 MiB root of the other hosts, not "small".)
  mkfs.ext4 -q -F -b 4096 -i 16384 -L "$ROOT_LABEL" -U "$ROOT_UUID" "$tmp/p1" $((md_bytes / 4096))
else
  mkfs.ext4 -q -F -L "$ROOT_LABEL" -U "$ROOT_UUID" "$tmp/p1"
fi
[ "$firmware" = uefi ] && mkfs.vfat -n "$BOOT_LABEL" "$tmp/p4" >/dev/null
mkswap -L "$SWAP_LABEL" "$tmp/p6" >/dev/null 2>&1
# The local SR: a recognisable pattern the story checks after the restore.
{ yes "LIFEBOAT-DEMO-SR-must-stay-untouched" || true; } | head -c $((15 * MiB)) | dd of="$tmp/p3" conv=notrunc status=none

mkdir -p "$tmp/mnt/root"
mount -o loop "$tmp/p1" "$tmp/mnt/root"
R=$tmp/mnt/root

subst() {
  sed -e "s/@ROOT_LABEL@/$ROOT_LABEL/g" -e "s/@LOGS_LABEL@/$LOGS_LABEL/g" \
    -e "s/@SWAP_LABEL@/$SWAP_LABEL/g" -e "s/@BOOT_LABEL@/$BOOT_LABEL/g" \
    -e "s/@KVER@/$KVER/g" -e "s/@DISK_SERIAL@/$DISK_SERIAL/g" \
    -e "s/@INSTALLATION_UUID@/$INSTALLATION_UUID/g" \
    -e "s/@CONTROL_DOMAIN_UUID@/$CONTROL_DOMAIN_UUID/g" "$1"
}

# --- the userland: busybox and its applet links ---------------------------------------------
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib,etc/init.d,dev,proc,sys,run,tmp,root,home,mnt,boot/efi}
mkdir -p "$R"/var/{log,lib,tmp,spool,backup,crash,xapi,xsconfig} "$R"/opt/xensource/{bin,libexec}
# Lifeboat's state directory, as its packages install it (state.json is written after each run).
mkdir -p "$R/var/lib/lifeboat"
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 0700 "$R/root"
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
  [ -e "$R/$applet" ] || [ -L "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done
# e2fsprogs, as on every dom0 (`lifeboat init-store` makes its ext4 with mkfs.ext4): the build
# machine's programs with the shared libraries they load.
add_program() { # PATH-ON-BUILD-MACHINE [NAME-IN-HOST...]
  local src=$1 lib; shift
  [ -x "$src" ] || die "$src is missing on this machine (make setup installs it)"
  rm -f "$R/sbin/${src##*/}"
  cp -L "$src" "$R/sbin/${src##*/}"
  for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
    [ -e "$R$lib" ] || { mkdir -p "$R${lib%/*}" && cp -L "$lib" "$R$lib"; }
  done
  for name in "$@"; do rm -f "$R/sbin/$name"; ln -s "${src##*/}" "$R/sbin/$name"; done
}
add_program /sbin/mke2fs mkfs.ext4 mkfs.ext3 mkfs.ext2
add_program /sbin/e2fsck fsck.ext4 fsck.ext3
add_program /sbin/tune2fs e2label
add_program /sbin/dumpe2fs
add_program /sbin/blkid
# mdadm: the RAID1 host assembles and inspects its root array with it, as a dom0 does.
if [ "$raid1" = 1 ]; then
  add_program "$(command -v mdadm)"
  mkdir -p "$R/etc/mdadm"
  printf 'DEVICE partitions\nARRAY /dev/md0 metadata=1.0 UUID=%s name=%s\n' "$MD_UUID" "$MD_NAME" > "$R/etc/mdadm/mdadm.conf"
fi
# efibootmgr: a test makes the host's own UEFI boot entry with it, as an installer does.
add_program /usr/bin/efibootmgr
cp /etc/mke2fs.conf "$R/etc/mke2fs.conf"
cp "$LIFEBOAT_BIN" "$R/usr/sbin/lifeboat"
chmod 0755 "$R/usr/sbin/lifeboat"

# --- configuration -----------------------------------------------------------------------------
install -m 0644 "$here/inittab" "$R/etc/inittab"
install -m 0755 "$here/rcS" "$R/etc/init.d/rcS"
install -m 0755 "$here/rcK" "$R/etc/init.d/rcK"
install -m 0755 "$here/lifeboat-demo" "$R/etc/init.d/lifeboat-demo"
if [ "$firmware" = uefi ]; then
  subst "$here/fstab" > "$R/etc/fstab"
else
  subst "$here/fstab" | grep -v ' /boot/efi ' > "$R/etc/fstab"
fi
subst "$here/xensource-inventory" > "$R/etc/xensource-inventory"
echo "$HOSTNAME_" > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$HOSTNAME_" > "$R/etc/hosts"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' > "$R/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$R/etc/group"
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$R/etc/shadow"
chmod 0600 "$R/etc/shadow"
echo "XenServer release 8.2.1 (xenenterprise) - Lifeboat demo host" > "$R/etc/redhat-release"
ln -s redhat-release "$R/etc/system-release"
mkdir -p "$R/etc/xensource"
echo master > "$R/etc/xensource/pool.conf"
chmod 0600 "$R/etc/xensource/pool.conf"

# --- kernel, modules, the host's own initramfs ---------------------------------------------------
cp "$KERNEL_DIR/vmlinuz" "$R/boot/vmlinuz-$KVER"
cp "$KERNEL_DIR/root/boot/config-$KVER" "$R/boot/config-$KVER" 2>/dev/null || true
mkdir -p "$R/lib/modules"
cp -a "$(readlink -f "$KERNEL_DIR/modules")" "$R/lib/modules/$KVER"
depmod -b "$R" "$KVER"

# Initramfs: busybox, /init, the virtio block driver and what it depends on, in load order.
ird=$tmp/initramfs
mkdir -p "$ird/bin" "$ird/lib/modules"
cp "$BUSYBOX" "$ird/bin/busybox"
install -m 0755 "$here/initramfs-init" "$ird/init"
modpath() { awk -v m="$1" -F: '{ n=$1; sub(".*/", "", n); sub("\\.ko.*", "", n); gsub("-", "_", n); if (n == m) { print $1; exit } }' "$R/lib/modules/$KVER/modules.dep"; }
declare -A loaded=()
order=()
add_module() {
  local name=${1//-/_} path dep
  [ -n "${loaded[$name]:-}" ] && return 0
  path=$(modpath "$name")
  [ -n "$path" ] || return 0   # built in
  loaded[$name]=1
  for dep in $(modinfo -F depends "$R/lib/modules/$KVER/$path" | tr ',' ' '); do add_module "$dep"; done
  cp "$R/lib/modules/$KVER/$path" "$ird/lib/modules/$name.ko"
  order+=("$name")
}
md_modules=()
[ "$raid1" = 1 ] && md_modules=(md_mod raid1)
for m in virtio_pci virtio_blk "${md_modules[@]}"; do add_module "$m"; done
if [ "$raid1" = 1 ]; then
  # mdadm with the shared libraries it loads, and the array it assembles (/dev/md0).
  mdadm_bin=$(command -v mdadm)
  mkdir -p "$ird/sbin" "$ird/etc/mdadm" "$ird/run"
  cp -L "$mdadm_bin" "$ird/sbin/mdadm"
  for lib in $(ldd "$mdadm_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$ird${lib%/*}" && cp -L "$lib" "$ird$lib"
  done
  cp "$R/etc/mdadm/mdadm.conf" "$ird/etc/mdadm/mdadm.conf"
fi
printf '%s\n' "${order[@]}" > "$ird/lib/modules/load-order"
(cd "$ird" && find . | sort | cpio -o -H newc --quiet | gzip -9) > "$R/boot/initrd-$KVER.img"
ln -s "vmlinuz-$KVER" "$R/boot/vmlinuz"
ln -s "initrd-$KVER.img" "$R/boot/initrd.img"

# --- dom0-like state, with the file kinds a restore must keep -----------------------------------
# xapi's database, and a pre-backup dump as `xe host-backup` leaves one.
for i in $(seq 1 4000); do
  printf '<row ref="OpaqueRef:%08d" name__label="vm-%d" power_state="Halted" memory="%d"/>\n' "$i" "$i" $((i * 1048576))
done > "$R/var/xapi/state.db"
cp "$R/var/xapi/state.db" "$R/var/backup/pool-database-20260101T000000Z"
# Left out by xe host-backup's default excludes (uuid-named xapi files, crash dumps, xsconfig).
echo "transient" > "$R/var/xapi/$INSTALLATION_UUID"
echo "old crash dump" > "$R/var/crash/dump-2025"
echo "xsconfig scratch" > "$R/var/xsconfig/scratch"
d=$R/opt/lifeboat-demo
mkdir -p "$d"
cp "$BUSYBOX" "$d/setuid-tool" && chmod 4755 "$d/setuid-tool"
cp "$BUSYBOX" "$d/cap-tool"
# security.capability v2: cap_net_raw (bit 13) permitted + effective.
setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 "$d/cap-tool"
mkdir -p "$d/setgid-dir" "$d/sticky-dir"
chmod 2775 "$d/setgid-dir"; chown 0:100 "$d/setgid-dir"
chmod 1777 "$d/sticky-dir"
echo "owned by 1234:5678" > "$d/numeric-owner" && chown 1234:5678 "$d/numeric-owner"
echo "one inode, two names" > "$d/hardlink-a" && ln "$d/hardlink-a" "$d/hardlink-b"
ln -s ../../etc/xensource-inventory "$d/symlink-to-inventory"
ln -s /nonexistent/target "$d/dangling-symlink"
mkfifo "$d/fifo"
mknod "$d/null-copy" c 1 3
mknod "$d/loop7-copy" b 7 7
setfattr -n user.lifeboat.demo -v "kept by the restore" "$d/hardlink-a"
setfattr -n trusted.lifeboat.demo -v "trusted value" "$d/numeric-owner"
setfacl -m u:1234:rwx,g:100:r-x "$d/setgid-dir"
setfacl -d -m u:1234:rwx "$d/setgid-dir"
printf 'name not in UTF-8\n' > "$d/$(printf 'caf\xe9-latin1')"
truncate -s 64M "$d/sparse-vdi.img"
printf 'header' | dd of="$d/sparse-vdi.img" conv=notrunc status=none
printf 'middle' | dd of="$d/sparse-vdi.img" bs=1M seek=32 conv=notrunc status=none
echo "cannot be changed" > "$d/immutable" && chattr +i "$d/immutable"
echo "append only" > "$d/append-only" && chattr +a "$d/append-only"
# Timestamps with nanoseconds, directories included.
touch -h -d '2024-02-29 12:34:56.123456789' "$d/dangling-symlink"
touch -d '2001-09-09 01:46:40.987654321' "$d/numeric-owner"
touch -d '2020-01-01 00:00:00.000000001' "$d/setgid-dir"

if [ "$firmware" = uefi ]; then
# --- the ESP: GRUB for UEFI, found through the removable-media path --------------------------
grub-mkimage -O x86_64-efi -p /EFI/xenserver -o "$tmp/grubx64.efi" \
  part_gpt part_msdos fat ext2 normal linux search search_label search_fs_uuid configfile \
  echo serial terminal gzio test all_video efi_gop
subst "$here/grub.cfg" > "$tmp/grub.cfg"
export MTOOLS_SKIP_CHECK=1
mmd -i "$tmp/p4" ::/EFI ::/EFI/BOOT ::/EFI/xenserver
mcopy -i "$tmp/p4" "$tmp/grubx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$tmp/p4" "$tmp/grubx64.efi" ::/EFI/xenserver/grubx64.efi
mcopy -i "$tmp/p4" "$tmp/grub.cfg" ::/EFI/xenserver/grub.cfg
else
# --- BIOS: GRUB's core.img in the BIOS boot partition, boot.img in the MBR -------------------
# What grub-install does on a GPT disk (grub-bios-setup wants a real device): core.img with every
# module it needs, its first sector's blocklist pointing at the rest of it, and boot.img (the
# first 440 bytes of the MBR) pointing at core.img's first sector.
mkdir -p "$R/boot/grub"
subst "$here/grub.cfg" > "$R/boot/grub/grub.cfg"
grub-mkimage -O i386-pc -p '(hd0,gpt1)/boot/grub' -o "$tmp/core.img" \
  biosdisk part_gpt part_msdos ext2 normal linux search search_label search_fs_uuid configfile \
  echo serial terminal gzio test
read -r core_off core_size < <(part_range "$img" 4)
core_bytes=$(stat -c %s "$tmp/core.img")
[ "$core_bytes" -le "$core_size" ] || die "GRUB's core.img ($core_bytes bytes) does not fit the BIOS boot partition ($core_size)"
le64() { local v=$1 i; for i in 0 1 2 3 4 5 6 7; do printf '\\x%02x' $(((v >> (8 * i)) & 255)); done; }
core_lba=$((core_off / 512))
# diskboot.img's blocklist (the last 12 bytes of core.img's first sector): start LBA, length.
printf %b "$(le64 $((core_lba + 1)))" | dd of="$tmp/core.img" bs=1 seek=$((512 - 12)) conv=notrunc status=none
dd if="$tmp/core.img" of="$img" bs=512 seek="$core_lba" conv=notrunc status=none
# boot.img: its code, the LBA of core.img at 0x5c; the MBR's partition entries stay.
dd if=/usr/lib/grub/i386-pc/boot.img of="$img" bs=440 count=1 conv=notrunc status=none
printf %b "$(le64 "$core_lba")" | dd of="$img" bs=1 seek=$((0x5c)) conv=notrunc status=none
fi

# --- the logs partition ---------------------------------------------------------------------
mkdir -p "$tmp/logs"
echo "$(date -u +%FT%TZ) installed by mkhost.sh" > "$tmp/logs/installer.log"
mkfs.ext4 -q -F -L "$LOGS_LABEL" -U "$LOGS_UUID" -d "$tmp/logs" "$tmp/p5"

sync
umount "$R"
if [ "$raid1" = 1 ]; then
  # The two legs: the same ext4 in both data areas, each with its own 1.0 superblock (roles 0
  # and 1 of 2); disk B holds partition 1 only, of the same size.
  read -r _ p1_size < <(part_range "$img" 1)
  rm -f "$img_b"
  truncate -s $((p1_size + 2 * MiB)) "$img_b"
  sgdisk -Z "$img_b" >/dev/null
  sgdisk -a 2048 -n 1:2048:$((2048 + p1_size / 512 - 1)) -t 1:fd00 "$img_b" >/dev/null
  read -r b_off b_size < <(part_range "$img_b" 1)
  [ "$b_size" = "$p1_size" ] || die "disk B's partition 1 is $b_size bytes, disk A's $p1_size: the legs must be equal"
  cp --sparse=always "$tmp/p1" "$tmp/p1b"
  md_hex=${MD_UUID//:/}
  got_a=$(python3 tests/qemu/lib/mdleg.py "$tmp/p1" 0 2 "$md_hex" "$MD_NAME")
  got_b=$(python3 tests/qemu/lib/mdleg.py "$tmp/p1b" 1 2 "$md_hex" "$MD_NAME")
  [ "$got_a" = "$md_bytes" ] && [ "$got_b" = "$md_bytes" ] ||
    die "mdleg.py made a data area of $got_a / $got_b bytes, the ext4 is $md_bytes"
  mdadm --examine "$tmp/p1b" >/dev/null 2>&1 || die "mdadm --examine refuses the leg written for disk B"
  dd if="$tmp/p1b" of="$img_b" bs=1M seek=$((b_off / MiB)) conv=notrunc,sparse status=none
  rm -f "$tmp/p1b"
fi
for i in 1 3 5 6; do part_write $i; done
[ "$firmware" = uefi ] && part_write 4
if [ "$raid1" = 1 ]; then mv "$img_b" "$cached_b"; fi
mv "$img" "$cached"
# Keep only the newest few cached host images.
# shellcheck disable=SC2012,SC2010 # newest first by mtime; the names are ours (host-<hash>[.b].img)
ls -1t "$CACHE_DIR"/host-"$variant"-*.img 2>/dev/null | grep -v '\.b\.img$' | tail -n +4 | sed 's/\.img$//' |
  while read -r old; do rm -f "$old.img" "$old.b.img"; done
cp --sparse=always "$cached" "$out"
[ "$raid1" = 0 ] || cp --sparse=always "$cached_b" "$out_b"
echo "mkhost: built $out${out_b:+ $out_b} (cached as $cached)"
