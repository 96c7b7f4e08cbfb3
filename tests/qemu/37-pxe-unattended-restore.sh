#!/bin/bash
# A machine restores itself from the network: a disk with a root partition (ext4) and a backup
# partition holding a Lifeboat store with one backup of that root; the root is damaged; the
# machine boots by BIOS PXE, pxelinux picks its per-host config (`mkrescue --pxe-host MAC
# --unattended`), lifeboat-init restores the latest generation without asking and reboots. The
# restored root must equal the backed-up one: every path, type, mode, owner, size, mtime (ns),
# link target, hard link count, content and xattr, and the filesystem's label and UUID.
# Needs the real image: `make build` (lifeboat with mkrescue, init-store and backup; lifeboat-init).
source "$(dirname "$0")/lib/media.bash"
[ -x "$LIFEBOAT" ] && [ -x "$LIFEBOAT_INIT" ] ||
  skip "needs the static lifeboat and lifeboat-init (make build)"
for t in setfattr getfattr sgdisk mkfs.ext4 losetup blkid; do
  command -v "$t" >/dev/null || skip "needs $t"
done

HOST_MAC=52:54:00:4c:42:37
DISK=$MEDIA/disk.img
MNT=$MEDIA/mnt
LOOP=""
cleanup_disk() {
  mountpoint -q "$MNT" && umount "$MNT"
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  LOOP=""
}
trap 'cleanup_disk; media_cleanup' EXIT

attach() {
  LOOP=$(losetup -f --show -P "$DISK")
  udevadm settle 2>/dev/null || true
  # In containers the kernel's partition scan may not happen, and without udev the nodes may
  # be missing: add the partitions with partx, make the nodes from sysfs.
  local p n
  [ -e /sys/block/"${LOOP#/dev/}"/"${LOOP#/dev/}"p1 ] || partx -a "$LOOP" 2>/dev/null || true
  for p in /sys/block/"${LOOP#/dev/}"/"${LOOP#/dev/}"p*; do
    n=/dev/$(basename "$p")
    [ -e "$n" ] || mknod "$n" b "$(cut -d: -f1 "$p/dev")" "$(cut -d: -f2 "$p/dev")"
  done
}
mkdir -p "$MNT"

# The machine's disk: GPT, root (p1) and backup (p2).
truncate -s 1G "$DISK"
sgdisk -Z -n 1:2048:+384M -t 1:8300 -c 1:root -n 2:0:0 -t 2:8300 -c 2:backup "$DISK" >/dev/null
attach
mkfs.ext4 -q -L root-lbtest -U 2f0c3c1e-37d4-4c3e-9a57-0123456789ab "${LOOP}p1"
mount "${LOOP}p1" "$MNT"

# A root with the things a restore gets wrong.
m=$MNT
mkdir -p "$m"/{etc,usr/bin,var/lib/app,home/user,tmp}
echo lbtest > "$m/etc/hostname"
printf 'LABEL=root-lbtest / ext4 defaults 0 1\n' > "$m/etc/fstab"
cp "$(command -v busybox)" "$m/usr/bin/busybox"
chmod 4755 "$m/usr/bin/busybox"
ln -s busybox "$m/usr/bin/sh"
ln "$m/etc/hostname" "$m/etc/hostname.hardlink"
truncate -s 16M "$m/var/lib/app/sparse.db"
echo "in the middle" | dd of="$m/var/lib/app/sparse.db" bs=1 seek=$((8 << 20)) conv=notrunc status=none
mkfifo "$m/var/lib/app/fifo"
printf '\xff\xfename' > "$m/home/user/$(printf 'caf\xe9')"
setfattr -n user.lifeboat -v restored "$m/etc/hostname"
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$m/usr/bin/busybox" 2>/dev/null || true
chown -R 1000:1000 "$m/home/user"
chmod 1777 "$m/tmp"
touch -h -d '2001-02-03 04:05:06.123456789' "$m/etc/hostname" "$m/usr/bin/sh" "$m/home/user"

listing() {  # listing DIR: everything the restore must reproduce, one line a path
  (cd "$1" && find . -path ./lost+found -prune -o -printf '%p|%y|%m|%U|%G|%n|%T@|%l|' \
      -exec sh -c '
        if [ -f "$1" ] && [ ! -L "$1" ]; then printf "%s|%s" "$(stat -c %s "$1")" "$(sha256sum < "$1" | cut -c1-64)"; fi
        printf "|%s\n" "$(getfattr -h -d -m - -e hex --absolute-names "$1" 2>/dev/null | grep -v "^#" | grep . | LC_ALL=C sort | tr "\n" " ")"
      ' _ {} \; | LC_ALL=C sort)
}
listing "$MNT" > "$MEDIA/before.txt"
fs_id() { blkid -o value -s LABEL "$1"; blkid -o value -s UUID "$1"; }
fs_id "${LOOP}p1" > "$MEDIA/fs-before.txt"

# The backup store and one generation of that root.
out=$("$LIFEBOAT" init-store --backup-device "${LOOP}p2" 2>&1) || {
  grep -q 'not built yet' <<<"$out" && skip "lifeboat init-store: $out"
  die "lifeboat init-store: $out"
}
out=$("$LIFEBOAT" --quiet backup --root "$MNT" --backup-device "${LOOP}p2" 2>&1) || {
  grep -q 'not built yet' <<<"$out" && skip "lifeboat backup: $out"
  die "lifeboat backup: $out"
}
echo "backup: $(tail -n1 <<<"$out")"

# Damage the root.
rm -rf "$m/usr" "$m/home"
echo broken > "$m/etc/hostname"
listing "$MNT" | cmp -s - "$MEDIA/before.txt" && die "the damage did not change the root"
cleanup_disk

# The machine was backed up from this test host, not from the VM: allow the identity mismatch.
MEDIA_REQUIRE_REAL=1 media_build --host "$HOST_MAC" --unattended --append lifeboat.allow-other-host
boot_until_exit pxe-unattended-restore 900 -- -M pc \
  -netdev "user,id=n0,tftp=$MEDIA/pxe,bootfile=pxelinux.0" -device "e1000,netdev=n0,mac=$HOST_MAC" \
  -drive "file=$DISK,format=raw,if=virtio" -boot n
grep -aq 'lifeboat-init' "$LOG" || die "lifeboat-init did not start"
kernel_cmdline | grep -q 'lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot' ||
  die "pxelinux did not pick the per-host config: $(kernel_cmdline)"

attach
mount -o ro "${LOOP}p1" "$MNT"
listing "$MNT" > "$MEDIA/after.txt"
fs_id "${LOOP}p1" > "$MEDIA/fs-after.txt"
if ! diff -u "$MEDIA/before.txt" "$MEDIA/after.txt"; then
  strip_log "$LOG" | tail -n 40
  die "the restored root differs from the backed-up one"
fi
diff -u "$MEDIA/fs-before.txt" "$MEDIA/fs-after.txt" || die "the root's label or UUID changed"
echo "ok: the machine restored its root unattended through its per-host PXE config"
