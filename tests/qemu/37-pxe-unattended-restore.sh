#!/bin/bash
# A machine restores itself from the network: its disk has a root partition and a backup
# partition holding a Lifeboat store with a backup of that root (lb_store_disk in tests/qemu/lib/restore.bash: the
# fixture with every kind of entry, `lifeboat init-store` + `lifeboat backup`, then the root is
# damaged). The machine boots by BIOS PXE; pxelinux picks its per-host config (`lifeboat
# mkrescue --pxe-host MAC --unattended`); lifeboat-init restores the latest generation without
# asking and reboots. The restored root must equal the original (content, metadata, label, UUID)
# and the store's journal must record the restore.
source "$(dirname "$0")/lib/media.bash"
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_bin                        # static lifeboat and lifeboat-init
LIFEBOAT=$LB_AGENT
LIFEBOAT_INIT=$LB_INIT

# The disk: root (p1) backed up into the store (p2), then damaged.
lb_store_disk

HOST_MAC=52:54:00:4c:42:37
# The backup was taken on this test machine through loop devices, so the disk identity recorded
# in it differs from the VM's disk: the per-host entry carries lifeboat.allow-other-host.
media_build --host "$HOST_MAC" --unattended --append lifeboat.allow-other-host
STOP_PATTERN='RESTORE NOT DONE|RESTORE FAILED|Choose a backup' boot_until_exit pxe-unattended-restore 900 \
  --machine pc --netboot "$MEDIA/pxe:pxelinux.0" --nic e1000 --mac "$HOST_MAC" \
  --disk-serial "$LB_DISK_SERIAL" --disk "$LB_DISK" \
  --smbios-uuid "$LB_MACHINE_UUID" --smbios-serial "$LB_MACHINE_SERIAL"
kernel_cmdline | grep -q 'lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot' ||
  fail "pxelinux did not pick the per-host config: $(kernel_cmdline)"
grep -aq 'lifeboat-init' "$LOG" || fail "lifeboat-init did not start"
grep -aq 'RESTORE COMPLETE' "$LOG" || { strip_log "$LOG" | tail -n 40; fail "lifeboat-init did not complete the restore"; }
lb_check_restored
echo "ok: the machine restored its root unattended through its per-host PXE config"
