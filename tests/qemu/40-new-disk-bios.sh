#!/bin/bash
# Issue 9, test 2: the same as 39-new-disk-uefi.sh for a BIOS host with GRUB in a BIOS boot
# partition (boot.img in the MBR): the restore writes both back on the blank disk and SeaBIOS
# boots the host from it. The test: tests/qemu/lib/newdisk.bash.
FIRMWARE=bios
# shellcheck source=tests/qemu/lib/newdisk.bash
. "$(dirname "$0")/lib/newdisk.bash"
