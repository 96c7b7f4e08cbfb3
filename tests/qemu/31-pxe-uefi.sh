#!/bin/bash
# UEFI PXE: OVMF's network stack -> bootx64.efi (GRUB network image) over QEMU's TFTP -> grub.cfg
# beside it -> "Restore from backup" after the timeout -> lifeboat-init and its menu.
source "$(dirname "$0")/lib/media.bash"
media_build
boot_watch pxe-uefi 300 --machine q35 --firmware uefi --netboot "$MEDIA/pxe:bootx64.efi" --nic virtio-net-pci
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the GRUB menu lacks the unattended entry"
kernel_cmdline | grep -q 'console=ttyS0,115200 console=tty0' || fail "kernel command line: $(kernel_cmdline)"
kernel_cmdline | grep -q 'lifeboat.yes' && fail "the default entry must not be the unattended one"
echo "ok: UEFI PXE boots the recovery image"
