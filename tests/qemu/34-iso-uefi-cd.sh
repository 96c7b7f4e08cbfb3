#!/bin/bash
# The ISO as a CD on UEFI: OVMF -> El Torito EFI image (efi.img) -> BOOTX64.EFI (GRUB) finds the
# ISO by its id file -> /boot/grub/grub.cfg -> lifeboat-init and its menu.
source "$(dirname "$0")/lib/media.bash"
media_build
boot_watch iso-uefi-cd 300 --machine q35 --firmware uefi -- -cdrom "$MEDIA/lifeboat.iso" -boot d
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the GRUB menu lacks the unattended entry"
kernel_cmdline | grep -q 'console=ttyS0,115200 console=tty0' || fail "kernel command line: $(kernel_cmdline)"
kernel_cmdline | grep -q 'lifeboat.yes' && fail "the default entry must not be the unattended one"
echo "ok: the ISO boots as a CD on UEFI"
