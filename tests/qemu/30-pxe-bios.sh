#!/bin/bash
# BIOS PXE: SeaBIOS + the NIC's PXE ROM -> pxelinux.0 over QEMU's built-in TFTP -> menu.c32 ->
# default entry "Restore from backup" after the timeout -> lifeboat-init and its menu.
source "$(dirname "$0")/lib/media.bash"
media_build
boot_watch pxe-bios 240 --machine pc --netboot "$MEDIA/pxe:pxelinux.0" --nic e1000
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the pxelinux menu lacks the unattended entry"
kernel_cmdline | grep -q 'console=ttyS0,115200 console=tty0' || fail "kernel command line: $(kernel_cmdline)"
kernel_cmdline | grep -q 'lifeboat.yes' && fail "the default entry must not be the unattended one"
echo "ok: BIOS PXE boots the recovery image"
