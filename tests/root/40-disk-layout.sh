#!/bin/bash
# lifeboat backup records the whole disk (issue 9, item 1): on a loop "disk" with a
# XenServer-like GPT (root, backup store, LVM SR, FAT32 ESP, logs, swap, BIOS boot with GRUB-
# like bytes, MBR boot code), every partition of the manifest's source.disks matches what
# sgdisk -i and blkid -p say of it, with its mount point; then core's GPT writer
# (lbtest-layout recreate) puts the recorded table onto a blank image 25% larger: sgdisk -p
# and -i show the same table apart from the disk size, and the BIOS boot partition's and the
# MBR boot code's bytes are the original ones.
source "$(dirname "$0")/store-lib.bash"
cargo build -q -p lifeboat-tests --bin lbtest-layout || fail "cargo build of lbtest-layout failed"
LBTEST=${LBTEST:-$PWD/target/debug}
command -v blkid >/dev/null || fail "blkid is not installed (make setup)"
have_lvm=1
if ! command -v pvcreate >/dev/null; then
  [ "${CI:-}" = true ] && fail "CI=true and pvcreate is not installed (make setup installs lvm2)"
  have_lvm=0; echo "SKIPPED (part): pvcreate is not installed: no LVM PV partition"
fi

note "1. a XenServer-like disk"
IMG=$W/disk.img
truncate -s 180M "$IMG"
sgdisk -U 5eed0000-1111-4222-8333-444455556666 \
  -n 1:2048:+48M -t 1:8300 -c 1:root -n 2:0:+48M -t 2:8300 -c 2:backup \
  -n 3:0:+8M -t 3:8E00 -c 3:sr -n 4:0:+40M -t 4:EF00 -c 4:esp -A 4:set:0 \
  -n 5:0:+16M -t 5:8300 -c 5:logs -n 6:0:+8M -t 6:8200 -c 6:swap \
  -n 7:0:+1M -t 7:EF02 -c 7:bios -A 7:set:2 "$IMG" >/dev/null
# GRUB-like bytes in the BIOS boot partition (the rest zero) and MBR boot code.
head -c 48K /dev/urandom | dd of="$IMG" bs=512 seek="$(sgdisk -i 7 "$IMG" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')" conv=notrunc status=none
head -c 440 /dev/urandom | dd of="$IMG" conv=notrunc status=none
loop_attach "$IMG"; L=$REPLY
mkfs.ext4 -q -F -L root-xs "${L}p1"
mkfs.vfat -F 32 -n ESP-XS "${L}p4" >/dev/null
mkfs.ext4 -q -F -L logs-xs "${L}p5"
mkswap -q -L swap-xs "${L}p6" >/dev/null
if [ $have_lvm = 1 ]; then
  pvcreate -q -ff -y --config 'devices { filter = [ "a|.*|" ] }' "${L}p3" >/dev/null 2>"$W/pv.err" \
    || fail "pvcreate ${L}p3: $(cat "$W/pv.err")"
fi
"$LIFEBOAT" init-store --backup-device "${L}p2" >/dev/null || fail "init-store on ${L}p2"
R=$W/root; mkdir -p "$R"; mount "${L}p1" "$R"; MOUNTS+=("$R")
mkdir -p "$R/etc" "$R/boot/efi" "$R/var/log" "$R/usr/bin"
echo "PRODUCT_VERSION='8.2.1'" >"$R/etc/xensource-inventory"
echo testhost >"$R/etc/hostname"
swap_uuid=$(blkid -p -s UUID -o value "${L}p6"); esp_uuid=$(blkid -p -s UUID -o value "${L}p4")
printf 'LABEL=root-xs / ext4 defaults 1 1\nUUID=%s /boot/efi vfat defaults 0 2\nUUID=%s none swap defaults 0 0\n' \
  "$esp_uuid" "$swap_uuid" >"$R/etc/fstab"
# The ESP's mount point comes from the mount table when the kernel can mount vfat, else from
# the root's fstab (by UUID=): "/boot/efi" either way. The logs are always mounted.
if grep -qw vfat /proc/filesystems || modprobe -q vfat 2>/dev/null; then
  mount "${L}p4" "$R/boot/efi"; MOUNTS+=("$R/boot/efi")
else
  note "this kernel has no vfat: the ESP's mount point is read from the root's fstab"
fi
mount "${L}p5" "$R/var/log"; MOUNTS+=("$R/var/log")
echo log >"$R/var/log/messages"

note "2. the backup records the disk"
"$LIFEBOAT" backup --root "$R" --backup-device "${L}p2" --json >"$W/b.json" 2>"$W/b.err" \
  || fail "backup exited $?: $(cat "$W/b.err")"
M=$W/m; mkdir -p "$M"; mount -o ro "${L}p2" "$M"; MOUNTS+=("$M")
a=$(latest_archive "$M")
python3 -c 'import json,sys; json.dump(json.load(sys.stdin)["manifest"], sys.stdout)' \
  <"$(dirname "$a")/meta.json" >"$W/manifest.json"
umount "$M"
# The archive's own manifest says the same.
jq -r '.source.disks | length' "$W/manifest.json" | grep -qx 1 \
  || fail "expected 1 recorded disk: $(jq -c '.source.disks | map(.kernel_name)' "$W/manifest.json")"
D() { jq -r ".source.disks[0]$1" "$W/manifest.json"; }
[ "$(D .kernel_name)" = "${L#/dev/}" ] || fail "kernel name $(D .kernel_name), not ${L#/dev/}"
[ "$(D .table_type)" = gpt ] || fail "table type $(D .table_type)"
[ "$(D .table_id)" = 5eed0000-1111-4222-8333-444455556666 ] || fail "disk GUID $(D .table_id)"
[ "$(D .size_bytes)" = $((180 << 20)) ] || fail "disk size $(D .size_bytes)"
[ "$(D .sector_size)" = 512 ] || fail "sector size $(D .sector_size)"
[ "$(D .boot.mbr_boot_code)" = "$(head -c 440 "$IMG" | od -An -v -tx1 | tr -d ' \n')" ] \
  || fail "MBR boot code: $(D .boot.mbr_boot_code)"
[ "$(D '.partitions | map(.number) | join(",")' )" = "1,2,3,4,5,6,7" ] || fail "partitions: $(D '.partitions | map(.number)')"

# Each partition against sgdisk -i and blkid -p.
for n in 1 2 3 4 5 6 7; do
  P() { jq -r ".source.disks[0].partitions[] | select(.number == $n) | $1" "$W/manifest.json"; }
  info=$(sgdisk -i "$n" "$IMG")
  field() { sed -n "s/^$1: *//p" <<<"$info" | sed 's/ (.*//' | tr A-F a-f; }
  first=$(field 'First sector' | cut -d' ' -f1); last=$(field 'Last sector' | cut -d' ' -f1)
  [ "$(P .start_bytes)" = $((first * 512)) ] || fail "p$n start $(P .start_bytes), sgdisk: sector $first"
  [ "$(P .size_bytes)" = $(((last - first + 1) * 512)) ] || fail "p$n size $(P .size_bytes)"
  [ "$(P .type_id)" = "$(field 'Partition GUID code')" ] || fail "p$n type $(P .type_id): $info"
  [ "$(P .partuuid)" = "$(field 'Partition unique GUID')" ] || fail "p$n PARTUUID $(P .partuuid)"
  [ "$(P .name)" = "$(sed -n "s/^Partition name: '\(.*\)'/\1/p" <<<"$info")" ] || fail "p$n name $(P .name)"
  [ "$(printf '%016x' "$(P .attributes)")" = "$(field 'Attribute flags')" ] \
    || fail "p$n attributes $(P .attributes), sgdisk: $(field 'Attribute flags')"
  kind=$(P .content.kind)
  btype=$(blkid -p -s TYPE -o value "${L}p$n" || true)
  buuid=$(blkid -p -s UUID -o value "${L}p$n" || true)
  blabel=$(blkid -p -s LABEL -o value "${L}p$n" || true)
  case $n in
    1|2|4|5)
      want=filesystem; [ $n = 2 ] && want=lifeboat_store
      [ "$kind" = "$want" ] || fail "p$n recorded as $kind, not $want"
      [ "$(P .content.fstype)" = "$btype" ] || fail "p$n fstype $(P .content.fstype), blkid: $btype"
      [ "$(P .content.uuid)" = "$buuid" ] || fail "p$n UUID $(P .content.uuid), blkid: $buuid"
      [ "$(P '.content.label // ""')" = "$blabel" ] || fail "p$n label $(P .content.label), blkid: $blabel" ;;
    3)
      if [ $have_lvm = 1 ]; then
        [ "$kind" = lvm_pv ] || fail "p3 recorded as $kind, not lvm_pv"
        [ "$(P .content.pv_uuid)" = "$buuid" ] || fail "p3 PV UUID $(P .content.pv_uuid), blkid: $buuid"
      fi ;;
    6)
      [ "$kind" = swap ] || fail "p6 recorded as $kind"
      [ "$(P .content.uuid)/$(P .content.label)" = "$buuid/$blabel" ] || fail "p6 swap $(P .content)" ;;
    7)
      [ "$kind" = bios_boot ] || fail "p7 recorded as $kind" ;;
  esac
done
P() { jq -r ".source.disks[0].partitions[] | select(.number == $1) | $2" "$W/manifest.json"; }
[ "$(P 4 .content.fat_bits)/$(P 4 .content.cluster_size)" = "32/512" ] \
  || fail "ESP FAT type/cluster size: $(P 4 .content.fat_bits)/$(P 4 .content.cluster_size)"
[ "$(P 1 .content.inodes_used)" -ge 11 ] && [ "$(P 1 .content.inode_count)" -gt "$(P 1 .content.inodes_used)" ] \
  || fail "root inode counts: $(P 1 .content.inode_count) $(P 1 .content.inodes_used)"
mps=$(jq -r '.source.disks[0].partitions | map("\(.number)=\(.mountpoint // "-")") | join(" ")' "$W/manifest.json")
[ "$mps" = "1=/ 2=- 3=- 4=/boot/efi 5=/var/log 6=- 7=-" ] || fail "mount points: $mps"

note "3. the recorded table written onto a blank disk 25% larger"
NEW=$W/new.img
truncate -s 225M "$NEW"
loop_attach "$NEW"; NL=$REPLY
"$LBTEST/lbtest-layout" recreate "$W/manifest.json" 0 "$NL" >/dev/null || fail "lbtest-layout recreate onto $NL"
loop_detach "$NL"
sgdisk -v "$NEW" | grep -q "No problems found" || fail "sgdisk -v: $(sgdisk -v "$NEW")"
table() { sgdisk -p "$1" | grep -v -e "^Disk $1:" -e "last usable sector" -e "^Total free space"; }
diff <(table "$IMG") <(table "$NEW") >"$W/p.diff" || fail "sgdisk -p differs: $(cat "$W/p.diff")"
for n in 1 2 3 4 5 6 7; do
  diff <(sgdisk -i "$n" "$IMG") <(sgdisk -i "$n" "$NEW") >"$W/i.diff" || fail "sgdisk -i $n differs: $(cat "$W/i.diff")"
done
cmp -n 440 "$IMG" "$NEW" || fail "MBR boot code differs"
first=$(sgdisk -i 7 "$IMG" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
cmp <(dd if="$IMG" bs=512 skip="$first" count=2048 status=none) \
    <(dd if="$NEW" bs=512 skip="$first" count=2048 status=none) || fail "BIOS boot partition bytes differ"
# A disk smaller than the recorded layout: refused, nothing written.
SMALL=$W/small.img; truncate -s 170M "$SMALL"
loop_attach "$SMALL"; SL=$REPLY
if "$LBTEST/lbtest-layout" recreate "$W/manifest.json" 0 "$SL" 2>"$W/small.err"; then fail "a too-small disk was written"; fi
loop_detach "$SL"
grep -q "at least as large" "$W/small.err" || fail "too-small message: $(cat "$W/small.err")"
[ -z "$(tr -d '\0' <"$SMALL" | head -c 1)" ] || fail "bytes were written onto the too-small disk"
echo "PASS 40-disk-layout"
