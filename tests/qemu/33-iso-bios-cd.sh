#!/bin/bash
# The ISO as a CD on BIOS: El Torito -> isolinux -> menu.c32 -> "Restore from backup" after the
# timeout -> lifeboat-init and its menu.
source "$(dirname "$0")/lib/media.bash"
media_build
boot_watch iso-bios-cd 240 --machine pc -- -cdrom "$MEDIA/lifeboat.iso" -boot d
grep -aq 'Lifeboat recovery CD' "$LOG" || fail "the isolinux menu has no title"
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the isolinux menu lacks the unattended entry"
kernel_cmdline | grep -q 'console=ttyS0,115200 console=tty0' || fail "kernel command line: $(kernel_cmdline)"
kernel_cmdline | grep -q 'lifeboat.yes' && fail "the default entry must not be the unattended one"
echo "ok: the ISO boots as a CD on BIOS"
