#!/bin/bash
# The ISO written to a USB stick (attached as a raw USB disk on an XHCI controller): BIOS through
# the isohybrid MBR, then UEFI through the EFI partition entry -> lifeboat-init and its menu.
source "$(dirname "$0")/lib/media.bash"
media_build
usb=(-device "qemu-xhci,id=xhci" -drive "if=none,id=stick,format=raw,readonly=on,file=$MEDIA/lifeboat.iso"
  -device "usb-storage,bus=xhci.0,drive=stick,bootindex=1")
boot_watch iso-usb-bios 240 --machine pc -- "${usb[@]}"
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the isolinux menu lacks the unattended entry"
boot_watch iso-usb-uefi 300 --machine q35 --firmware uefi -- "${usb[@]}"
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the GRUB menu lacks the unattended entry"
echo "ok: the ISO boots from a USB stick on BIOS and UEFI"
