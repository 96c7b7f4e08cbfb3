#!/bin/bash
# A machine restores itself from the network: its disk has a root partition and a backup
# partition holding a Lifeboat store with a backup of that root (tests/qemu/store-disk.sh: the
# fixture with every kind of entry, `lifeboat init-store` + `lifeboat backup`, then the root is
# damaged). The machine boots by BIOS PXE; pxelinux picks its per-host config (`lifeboat
# mkrescue --pxe-host MAC --unattended`); lifeboat-init restores the latest generation without
# asking and reboots. The restored root must equal the original (content, metadata, label, UUID)
# and the store's journal must record the restore.
source "$(dirname "$0")/lib/media.bash"
source "$(dirname "$0")/lib.sh"
lb_setup                      # replaces the EXIT trap: chain ours
lb_on_exit media_cleanup
lb_bin                        # static lifeboat and lifeboat-init
[ -x "$LB_AGENT" ] && [ -x "$LB_INIT" ] || skip "needs the static lifeboat and lifeboat-init"
LIFEBOAT=$LB_AGENT
LIFEBOAT_INIT=$LB_INIT

# The disk: root (p1) backed up into the store (p2), then damaged.
source "$(dirname "$0")/store-disk.sh"

HOST_MAC=52:54:00:4c:42:37
# The backup was taken on this test machine through loop devices, so the disk identity recorded
# in it differs from the VM's disk: the per-host entry carries lifeboat.allow-other-host.
MEDIA_REQUIRE_REAL=1 media_build --host "$HOST_MAC" --unattended --append lifeboat.allow-other-host
STOP_PATTERN='RESTORE NOT DONE|RESTORE FAILED|Choose a backup' boot_until_exit pxe-unattended-restore 900 -- -M pc \
  -netdev "user,id=n0,tftp=$MEDIA/pxe,bootfile=pxelinux.0" -device "e1000,netdev=n0,mac=$HOST_MAC" \
  -drive "file=$LB_DISK,if=none,id=d0,format=raw" -device "virtio-blk-pci,drive=d0,serial=$LB_DISK_SERIAL" \
  -smbios "type=1,uuid=$LB_MACHINE_UUID,serial=$LB_MACHINE_SERIAL" -boot n
kernel_cmdline | grep -q 'lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot' ||
  die "pxelinux did not pick the per-host config: $(kernel_cmdline)"
grep -aq 'lifeboat-init' "$LOG" || die "lifeboat-init did not start"
grep -aq 'RESTORE COMPLETE' "$LOG" || { strip_log "$LOG" | tail -n 40; die "lifeboat-init did not complete the restore"; }
lb_check_restored
echo "ok: the machine restored its root unattended through its per-host PXE config"
