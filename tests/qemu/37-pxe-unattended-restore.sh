#!/bin/bash
# A machine restores itself from the network: its disk has a root partition and a backup
# partition holding a Lifeboat store with a backup of that root (lb_store_disk in tests/qemu/lib/restore.bash: the
# fixture with every kind of entry, `lifeboat init-store` + `lifeboat backup`, then the root is
# damaged). The machine boots by BIOS PXE; pxelinux picks its per-host config (`lifeboat
# mkrescue --pxe-host MAC --unattended`); lifeboat-init restores the latest generation without
# asking and reboots. The restored root must equal the original (content, metadata, label, UUID)
# and the store's journal must record the restore with its request (lifeboat.request).
# Then the same machine boots through the same per-host entry again: the request is done, so the
# image does not restore: it boots the restored root's default GRUB entry by kexec (the root is
# bootable: lb_bootable_root), which must reach the restored system's own /sbin/init, and the
# journal still holds one restore-done.
source "$(dirname "$0")/lib/media.bash"
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_bin                        # static lifeboat and lifeboat-init
LIFEBOAT=$LB_AGENT
LIFEBOAT_INIT=$LB_INIT

# The disk: root (p1, bootable) backed up into the store (p2), then damaged.
LB_STORE_BOOTABLE=1 lb_store_disk

HOST_MAC=52:54:00:4c:42:37
# The backup was taken on this test machine through loop devices, so the disk identity recorded
# in it differs from the VM's disk: the per-host entry carries lifeboat.allow-other-host.
media_build --host "$HOST_MAC" --unattended --append lifeboat.allow-other-host
STOP_PATTERN='RESTORE NOT DONE|RESTORE FAILED|Choose a backup' boot_until_exit pxe-unattended-restore 900 \
  --machine pc --netboot "$MEDIA/pxe:pxelinux.0" --nic e1000 --mac "$HOST_MAC" \
  --disk-serial "$LB_DISK_SERIAL" --disk "$LB_DISK" \
  --smbios-uuid "$LB_MACHINE_UUID" --smbios-serial "$LB_MACHINE_SERIAL"
kernel_cmdline | grep -q 'lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot lifeboat.request=' ||
  fail "pxelinux did not pick the per-host config: $(kernel_cmdline)"
request=$(kernel_cmdline | grep -o 'lifeboat.request=[^ ]*' | cut -d= -f2)
grep -aq 'lifeboat-init' "$LOG" || fail "lifeboat-init did not start"
grep -aq 'RESTORE COMPLETE' "$LOG" || { strip_log "$LOG" | tail -n 40; fail "lifeboat-init did not complete the restore"; }
lb_check_restored
restore_done_count() {
  local smnt=$LB_WORK/journal-mnt n
  mkdir -p "$smnt"
  lb_attach "$LB_DISK"
  mount -o ro "$LB_P2" "$smnt"
  n=$(grep -c "\"event\":\"restore-done\".*\"request\":\"$request\"" "$smnt/journal" || true)
  umount "$smnt"
  lb_detach
  echo "$n"
}
[ "$(restore_done_count)" = 1 ] || fail "the journal lacks one restore-done with request $request"
lb_attach "$LB_DISK"; root_digest=$(md5sum < "$LB_P1"); lb_detach
echo "ok: the machine restored its root unattended through its per-host PXE config (request $request)"

# The second boot through the same per-host entry: no restore, the local disk boots.
STOP_PATTERN='RESTORE NOT DONE|RESTORE COMPLETE|Extracting|CANNOT BOOT THE LOCAL DISK|Choose a backup' \
  boot_until_exit pxe-unattended-second-boot 900 \
  --machine pc --netboot "$MEDIA/pxe:pxelinux.0" --nic e1000 --mac "$HOST_MAC" \
  --disk-serial "$LB_DISK_SERIAL" --disk "$LB_DISK" \
  --smbios-uuid "$LB_MACHINE_UUID" --smbios-serial "$LB_MACHINE_SERIAL"
kernel_cmdline | grep -q "lifeboat.request=$request" ||
  fail "the second boot did not come through the same per-host entry: $(kernel_cmdline)"
grep -aq "lifeboat.request=$request is done" "$LOG" ||
  { strip_log "$LOG" | tail -n 40; fail "lifeboat-init did not find the request done"; }
grep -aq "$LB_RESTORED_INIT" "$LOG" ||
  { strip_log "$LOG" | tail -n 40; fail "the restored system's own init never ran (kexec of its GRUB entry)"; }
grep -aq 'Creating ext4\|Creating ext3' "$LOG" && fail "the second boot recreated the root"
[ "$(restore_done_count)" = 1 ] || fail "the journal holds more than one restore-done for request $request"
lb_attach "$LB_DISK"; [ "$(md5sum < "$LB_P1")" = "$root_digest" ] || fail "the second boot wrote to the restored root"; lb_detach
echo "ok: the second boot through the same entry started the restored system, no second restore"
