#!/bin/bash
# Issue 9, test 1: a UEFI host with XenServer's layout, backed up to a second disk, gets a blank
# system disk 25% larger; the recovery image restores unattended with lifeboat.disk=, the host
# boots from the new disk through its own GRUB by the UEFI boot entry the restore recreated, and
# the new disk equals the old one (but its size). The test: tests/qemu/lib/newdisk.bash.
FIRMWARE=uefi
# shellcheck source=tests/qemu/lib/newdisk.bash
. "$(dirname "$0")/lib/newdisk.bash"
