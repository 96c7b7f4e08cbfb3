#!/bin/bash
# A XenServer dom0 restored onto a ZEROED root (no filesystem, no label left), its identity
# taken from the backup's own etc/fstab, boot/grub/grub.cfg and etc/xensource-inventory, as
# XenServer's installer takes it; and an interrupted restore finished by the next boot with the
# backup's label, never the temporary `lifeboat-partial`. One boot per scenario:
#   A. a plain `xe host-backup` file (GNU tar -czf of a dom0 tree, no Lifeboat manifest) staged
#      with `lifeboat host-restore file-name=F`, restored unattended: label and type from the
#      fstab (root-44, ext3), a new UUID (the backup names the root by label only), the tree
#      equal to what GNU tar itself extracts from the same file;
#   B. the same restore cut (QEMU killed) as soon as the extraction starts: the root carries
#      lifeboat-partial, the store's journal restore-started; the next boot resumes and finishes
#      with root-44;
#   C. a XenServer backup partition (unpacked tree, .xen-backup-partition) cut as soon as its
#      copy starts: its own journal (lost+found/lifeboat-journal, id xenserver-tree@<time>)
#      says restore-started; the next boot says so, resumes and finishes with root-xen.
# shellcheck source=tests/qemu/lib/restore.bash
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
T0=$(date +%s)
APPEND="lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff"
mnt=$LB_WORK/mnt got=$LB_WORK/got want=$LB_WORK/want
mkdir -p "$mnt" "$got" "$want"
on_exit "umount '$mnt' '$got' '$want' 2>/dev/null"

# dom0_files DIR LABEL: the system files XenServer's installer reads, naming the root LABEL.
dom0_files() {
  local r=$1 label=$2
  mkdir -p "$r/etc" "$r/boot/grub"
  echo "LABEL=$label / ext3 defaults 1 1" > "$r/etc/fstab"
  echo "xs-44" > "$r/etc/hostname"
  printf 'menuentry "XCP-ng" {\n  multiboot2 /boot/xen.gz dom0_mem=2048M\n  module2 /boot/vmlinuz root=LABEL=%s ro\n}\n' "$label" \
    > "$r/boot/grub/grub.cfg"
  cat > "$r/etc/xensource-inventory" <<INV
PRODUCT_BRAND='XCP-ng'
PRODUCT_VERSION='8.2.1'
PLATFORM_VERSION='3.2.1'
BUILD_NUMBER='release/yangtze/master/58'
INSTALLATION_UUID='3f8e2c1a-1111-4222-8333-444455556666'
CONTROL_DOMAIN_UUID='9a7b6c5d-1111-4222-8333-444455556666'
PRIMARY_DISK='/dev/disk/by-id/virtio-$LB_DISK_SERIAL'
BACKUP_PARTITION='/dev/disk/by-id/virtio-$LB_DISK_SERIAL-part2'
INV
}

zero_root() { # the root partition is zeroed: nothing of a filesystem is left
  dd if=/dev/zero of="$LB_P1" bs=1M count=$(( $(blockdev --getsize64 "$LB_P1") / 1048576 )) status=none conv=fsync
  [ -z "$(blkid -p -o value -s TYPE "$LB_P1" 2>/dev/null)" ] || fail "$LB_P1 still holds a filesystem after zeroing"
}

# power_cut LOG MARKER: boots the image and kills QEMU (a power cut) as soon as the console shows MARKER.
power_cut() {
  local log=$1 marker=$2 qpid deadline
  lb_image_opts "$APPEND"
  lb_qemu "${LB_IMAGE_OPTS[@]}" --log "$log" --background
  qpid=$LB_QEMU_PID
  deadline=$((SECONDS + LB_QEMU_TIMEOUT_S))
  while ! grep -s -a -q -F -- "$marker" "$log"; do
    kill -0 "$qpid" 2>/dev/null || { lb_keep_log "$log"; tail -n 30 "$log"; fail "$log: QEMU ended before \"$marker\""; }
    [ "$SECONDS" -lt "$deadline" ] || { kill -9 "$qpid"; wait "$qpid" || true; tail -n 30 "$log"; fail "$log: the console never showed \"$marker\""; }
    sleep 0.01
  done
  kill -9 "$qpid" && wait "$qpid" 2>/dev/null || true
  lb_keep_log "$log"
  lb_log "power cut right after \"$marker\""
}

# last_restore_event JOURNAL: the last restore-* event of a journal file.
last_restore_event() {
  grep -a -o '"event":"restore-[a-z]*"' "$1" | tail -n1 | cut -d'"' -f4
}

root_label() { blkid -p -s LABEL -o value "$LB_P1" 2>/dev/null || true; }

# --- A: a plain xe host-backup file onto a zeroed root -------------------------------------
lb_disk "$LB_WORK/disk.img" 512
lb_attach "$LB_DISK"
mkfs.ext4 -q "$LB_P1"
old_uuid=$(blkid -p -s UUID -o value "$LB_P1")
mount "$LB_P1" "$mnt"
# GNU tar keeps no ext flags and no paths longer than PATH_MAX: the fixture without them, with a
# 48 MiB file (the extraction lasts long enough to be cut in B).
"$LB_TOOLS/lbtest-fixture" "$mnt" --no-flags --no-long-path --big-mib 48 >/dev/null || fail "lbtest-fixture failed"
dom0_files "$mnt" root-44
# As xe host-backup makes it: a gzip tar of dom0's tree.
tar -C "$mnt" --sparse --numeric-owner -czf "$LB_WORK/host-backup.tgz" . 2>"$LB_WORK/tar.err" \
  || fail "tar -czf failed: $(head -c 500 "$LB_WORK/tar.err")"
"$LB_AGENT" init-store --backup-device "$LB_P2" >&2 || fail "lifeboat init-store failed"
"$LB_AGENT" host-restore file-name="$LB_WORK/host-backup.tgz" --backup-device "$LB_P2" --root "$mnt" \
  >"$LB_WORK/stage.out" 2>&1 || fail "lifeboat host-restore file-name= failed: $(cat "$LB_WORK/stage.out")"
umount "$mnt"
zero_root
lb_detach
# What the file holds, as GNU tar itself extracts it (the reference of the comparisons).
truncate -s 300M "$LB_WORK/want.img"
mkfs.ext4 -q -F "$LB_WORK/want.img"
mount -o loop "$LB_WORK/want.img" "$want"
tar -C "$want" -x -p --numeric-owner -zf "$LB_WORK/host-backup.tgz" || fail "GNU tar cannot extract the host-backup file"

check_plain() { # WHAT: the root is the backup, with its label and a new UUID
  lb_attach "$LB_DISK"
  local label uuid
  label=$(root_label); uuid=$(blkid -p -s UUID -o value "$LB_P1")
  [ "$label" = root-44 ] || fail "$1: root label '$label', the backup's fstab and grub.cfg say root-44"
  [ "$(blkid -p -s TYPE -o value "$LB_P1")" = ext3 ] || fail "$1: the root is not ext3, as the backup's fstab says"
  [ -n "$uuid" ] && [ "$uuid" != "$old_uuid" ] || fail "$1: root UUID '$uuid' (the backup records none: a new one)"
  mount -o ro "$LB_P1" "$got"
  "$LB_TOOLS/lbtest-compare" "$want" "$got" --ignore lost+found || fail "$1: the restored root differs from the host-backup file"
  umount "$got"
  mount -o ro "$LB_P2" "$mnt"
  [ "$(last_restore_event "$mnt/journal")" = restore-done ] || fail "$1: the store's journal does not end with restore-done"
  umount "$mnt"
  lb_detach
  lb_log "$1: root-44, ext3, UUID $uuid, the tree equals the host-backup file"
}

lb_boot "$LB_WORK/a.log" "$APPEND"
lb_expect_log "$LB_WORK/a.log" "partition 1 of vda (XenServer's layout)"
lb_expect_log "$LB_WORK/a.log" "the backup's etc/fstab (LABEL=root-44 for /)"
lb_expect_log "$LB_WORK/a.log" "RESTORE COMPLETE"
check_plain "A (plain host-backup, zeroed root)"

# --- B: the same restore, cut during the extraction ----------------------------------------
lb_attach "$LB_DISK"; zero_root; lb_detach
power_cut "$LB_WORK/b-cut.log" "Extracting ..."
lb_attach "$LB_DISK"
[ "$(root_label)" = lifeboat-partial ] || fail "B: after the cut the root is labelled '$(root_label)', not lifeboat-partial"
mount -o ro "$LB_P2" "$mnt"
[ "$(last_restore_event "$mnt/journal")" = restore-started ] || fail "B: the store's journal does not say restore-started after the cut"
umount "$mnt"
lb_detach
lb_boot "$LB_WORK/b.log" "$APPEND"
lb_expect_log "$LB_WORK/b.log" "ATTENTION: a restore from the store on /dev/vda2 started and did not finish"
lb_expect_log "$LB_WORK/b.log" "Resuming at step"
lb_expect_log "$LB_WORK/b.log" "RESTORE COMPLETE"
check_plain "B (plain host-backup, cut, next boot)"
umount "$want"

# --- C: a XenServer backup partition, cut during the copy ----------------------------------
lb_disk "$LB_WORK/disk2.img" 512
lb_attach "$LB_DISK"
mkfs.ext3 -q "$LB_P2"
mount "$LB_P2" "$mnt"
"$LB_TOOLS/lbtest-fixture" "$mnt" --no-long-path --big-mib 48 >/dev/null || fail "lbtest-fixture failed"
dom0_files "$mnt" root-xen
touch "$mnt/.xen-backup-partition"
umount "$mnt"
zero_root
lb_detach
power_cut "$LB_WORK/c-cut.log" "Copying the XenServer backup tree ..."
lb_attach "$LB_DISK"
[ "$(root_label)" = lifeboat-partial ] || fail "C: after the cut the root is labelled '$(root_label)', not lifeboat-partial"
mount -o ro "$LB_P2" "$mnt"
j=$mnt/lost+found/lifeboat-journal
[ -f "$j" ] || fail "C: the XenServer backup partition has no lost+found/lifeboat-journal"
[ "$(last_restore_event "$j")" = restore-started ] || fail "C: its journal does not say restore-started after the cut: $(cat "$j")"
grep -q '"generation":"xenserver-tree@' "$j" || fail "C: the journal does not name the tree (xenserver-tree@<time>): $(cat "$j")"
umount "$mnt"
lb_detach
lb_boot "$LB_WORK/c.log" "$APPEND"
lb_expect_log "$LB_WORK/c.log" "ATTENTION: a restore from the XenServer backup partition on /dev/vda2 started and did not finish"
lb_expect_log "$LB_WORK/c.log" "Resuming at step"
lb_expect_log "$LB_WORK/c.log" "RESTORE COMPLETE"
lb_attach "$LB_DISK"
[ "$(root_label)" = root-xen ] || fail "C: the finished root is labelled '$(root_label)', the backup says root-xen"
mount -o ro "$LB_P2" "$want"
mount -o ro "$LB_P1" "$got"
"$LB_TOOLS/lbtest-compare" "$want" "$got" --ignore .xen-backup-partition --ignore lost+found \
  || fail "C: the restored root differs from the XenServer backup tree"
[ "$(last_restore_event "$want/lost+found/lifeboat-journal")" = restore-done ] || fail "C: the journal does not end with restore-done"
umount "$got" "$want"
lb_detach
lb_log "C: root-xen after the cut and the next boot; the tree equals the backup partition's"
echo "total time: $(( $(date +%s) - T0 )) s for 5 boots"
echo "PASS: XenServer dom0 onto a zeroed root, from a plain host-backup file and a backup partition, cuts finished with the backup's label"
