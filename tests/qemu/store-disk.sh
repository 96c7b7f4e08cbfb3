# Sourced by the 2x tests: a disk image ($LB_DISK) with a root (p1, ext4, label root-test,
# filled with the fixture) backed up into a Lifeboat store on p2, then damaged.
# Leaves $LB_WORK/ref.img (a copy of the original root filesystem), $ROOT_UUID, and lb_check_restored.
lb_disk "$LB_WORK/disk.img" 512
lb_attach "$LB_DISK"
mkfs.ext4 -q -L root-test "$LB_P1"
ROOT_UUID=$(blkid -p -s UUID -o value "$LB_P1")
mnt=$LB_WORK/mnt; mkdir -p "$mnt"
lb_on_exit "umount '$mnt' 2>/dev/null"
mount "$LB_P1" "$mnt"
lb_fixture "$mnt"
lb_store_backup "$mnt" "$LB_P1" 1 "$LB_P2"
# The reference: a block copy of the backed-up root (a file copy cannot hold every fixture
# path: some are longer than PATH_MAX).
umount "$mnt"
dd if="$LB_P1" of="$LB_WORK/ref.img" bs=4M status=none
mount "$LB_P1" "$mnt"
# Damage the root after the backup.
rm -rf "$mnt/usr" "$mnt/root/secret" 2>/dev/null || true   # (immutable files may stay)
mkdir -p "$mnt/etc"; echo damaged > "$mnt/etc/hostname"; echo junk > "$mnt/junk"
umount "$mnt"
ROOT_DIGEST_DAMAGED=$(md5sum < "$LB_P1")
lb_detach

lb_check_restored() {
  lb_attach "$LB_DISK"
  [ "$(blkid -p -s LABEL -o value "$LB_P1")" = root-test ] || lb_fail "root label not restored"
  [ "$(blkid -p -s UUID -o value "$LB_P1")" = "$ROOT_UUID" ] || lb_fail "root UUID not restored"
  local got=$LB_WORK/got smnt=$LB_WORK/smnt
  mkdir -p "$got" "$smnt"
  mount -o ro "$LB_P1" "$got"; lb_on_exit "umount '$got' 2>/dev/null"
  [ ! -e "$got/junk" ] || lb_fail "the damaged root's files survived"
  mkdir -p "$LB_WORK/ref"
  mount -o ro,loop "$LB_WORK/ref.img" "$LB_WORK/ref"; lb_on_exit "umount '$LB_WORK/ref' 2>/dev/null"
  lb_compare "$LB_WORK/ref" "$got" || lb_fail "restored root differs from the original"
  umount "$LB_WORK/ref"
  umount "$got"
  mount -o ro "$LB_P2" "$smnt"; lb_on_exit "umount '$smnt' 2>/dev/null"
  grep -q restore-started "$smnt/journal" && grep -q restore-done "$smnt/journal" \
    || lb_fail "the store's journal lacks restore-started/restore-done"
  umount "$smnt"
}

lb_check_untouched() {
  lb_attach "$LB_DISK"
  [ "$(md5sum < "$LB_P1")" = "$ROOT_DIGEST_DAMAGED" ] || lb_fail "the root partition was modified"
  lb_detach
}
