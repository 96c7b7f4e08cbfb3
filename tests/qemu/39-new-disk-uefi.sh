#!/bin/bash
# Issue 9, test 1: a UEFI host with XenServer's layout, backed up to a second disk, gets a blank
# system disk 25% larger; the recovery image restores unattended with lifeboat.disk=, the host
# boots from the new disk through its own GRUB by the UEFI boot entry the restore recreated, and
# the new disk equals the old one (but its size). The test: tests/qemu/lib/newdisk.bash.
# Also: the restore is cut (kill -9) during the root's extraction and the next boot resumes at
# that step (CUT_RESTORE), and the plan the image prints equals `lifeboat plan --json` for the
# same backup and disk as loop devices here (COMPARE_PLAN: issue 9, test 7).
FIRMWARE=uefi
CUT_RESTORE=1
COMPARE_PLAN=1
# shellcheck source=tests/qemu/lib/newdisk.bash
. "$(dirname "$0")/lib/newdisk.bash"
