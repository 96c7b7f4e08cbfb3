#!/bin/bash
# A XenServer-style backup partition (unpacked tree, .xen-backup-partition,
# etc/xensource-inventory) is found and restored onto a zeroed root: partition 1 of its disk
# (XenServer's layout), with the label its own fstab and grub.cfg name (decided from the backup,
# as XenServer's installer does; the root's UUID is not recorded there, so it is a new one).
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image

lb_disk "$LB_WORK/disk.img" 512
lb_attach "$LB_DISK"
mkfs.ext4 -q -L root-test "$LB_P1"
mkfs.ext3 -q "$LB_P2"
old_uuid=$(blkid -p -s UUID -o value "$LB_P1")
mnt=$LB_WORK/mnt; mkdir -p "$mnt"
mount "$LB_P2" "$mnt"
# The fixture with its ext flags (immutable with a hard link, append-only) and sparse files
# (lbtest-compare checks both), without what lifeboat-init's copy of a XenServer tree does not
# keep (a known limitation): paths longer than PATH_MAX (the copy works on path names).
"$LB_TOOLS/lbtest-fixture" "$mnt" --no-long-path >/dev/null \
  || fail "lbtest-fixture failed"
mkdir -p "$mnt/etc" "$mnt/boot/grub"; [ -e "$mnt/etc/fstab" ] || echo "LABEL=root-test / ext3 defaults 1 1" > "$mnt/etc/fstab"
printf 'menuentry "XCP-ng" {\n  multiboot2 /boot/xen.gz dom0_mem=2048M\n  module2 /boot/vmlinuz root=LABEL=root-test ro\n}\n' > "$mnt/boot/grub/grub.cfg"
cat > "$mnt/etc/xensource-inventory" <<INV
PRODUCT_BRAND='XCP-ng'
PRODUCT_VERSION='8.2.1'
PLATFORM_VERSION='3.2.1'
BUILD_NUMBER='release/yangtze/master/58'
INSTALLATION_UUID='3f8e2c1a-1111-4222-8333-444455556666'
CONTROL_DOMAIN_UUID='9a7b6c5d-1111-4222-8333-444455556666'
PRIMARY_DISK='/dev/disk/by-id/virtio-$LB_DISK_SERIAL'
BACKUP_PARTITION='/dev/disk/by-id/virtio-$LB_DISK_SERIAL-part2'
PARTITION_LAYOUT='ROOT,BACKUP'
INV
touch "$mnt/.xen-backup-partition"
umount "$mnt"
# The old root is gone: zeroed, no filesystem, no label, nothing to take an identity from.
dd if=/dev/zero of="$LB_P1" bs=1M count=$(( $(blockdev --getsize64 "$LB_P1") / 1048576 )) status=none conv=fsync
[ -z "$(blkid -p -o value -s TYPE "$LB_P1" 2>/dev/null)" ] || fail "$LB_P1 still holds a filesystem after zeroing"
lb_detach

lb_boot "$LB_WORK/serial.log" "lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff"
lb_expect_log "$LB_WORK/serial.log" "lifeboat-init "
lb_expect_log "$LB_WORK/serial.log" "XenServer backup partition"
lb_expect_log "$LB_WORK/serial.log" "partition 1 of vda (XenServer's layout)"
lb_expect_log "$LB_WORK/serial.log" "the backup's etc/fstab"
lb_expect_log "$LB_WORK/serial.log" "RESTORE COMPLETE"

lb_attach "$LB_DISK"
[ "$(blkid -p -s LABEL -o value "$LB_P1")" = root-test ] || fail "root label not kept"
new_uuid=$(blkid -p -s UUID -o value "$LB_P1")
[ -n "$new_uuid" ] && [ "$new_uuid" != "$old_uuid" ] || fail "root UUID: '$new_uuid' (old '$old_uuid')"
[ "$(blkid -p -s TYPE -o value "$LB_P1")" = ext3 ] || fail "root not recreated as ext3 (the backup's type)"
want=$LB_WORK/want; got=$LB_WORK/got; mkdir -p "$want" "$got"
mount -o ro "$LB_P2" "$want"
mount -o ro "$LB_P1" "$got"
[ ! -e "$got/broken" ] || fail "the old root's files survived"
# The marker and lost+found (mkfs's) are the partition's own, not the tree's.
"$LB_TOOLS/lbtest-compare" "$want" "$got" --ignore .xen-backup-partition --ignore lost+found \
  || fail "restored root differs from the XenServer backup tree"
# The copy counted what it found and what it made: every entry but the fixture's socket.
copied=$(grep -aoE 'Restored .*: [0-9]+ of [0-9]+ entries copied.*' "$LB_WORK/serial.log" | tr -d '\r') \
  || fail "the restore did not report the entries it copied"
[[ $copied =~ :\ ([0-9]+)\ of\ ([0-9]+)\ entries\ copied,.*\ 2\ with\ ext\ flags,\ ([0-9]+)\ sockets ]] \
  || fail "unexpected copy report: $copied"
[ $((BASH_REMATCH[1] + BASH_REMATCH[3])) = "${BASH_REMATCH[2]}" ] || fail "entries missing from the copy: $copied"
echo "copy report: ${copied#*: }"
echo "PASS: XenServer backup partition restored (label, UUID, tree with ext flags and holes)"
