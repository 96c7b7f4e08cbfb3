#!/bin/bash
# An unattended restore (lifeboat.restore=latest lifeboat.yes
# lifeboat.after=poweroff) of a root damaged after the backup; the host side then finds the
# original tree, label and UUID included, and the journal records the restore.
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

lb_boot "$LB_WORK/serial.log" "lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff"
lb_expect_log "$LB_WORK/serial.log" "lifeboat-init "
lb_expect_log "$LB_WORK/serial.log" "Verified:"
lb_expect_log "$LB_WORK/serial.log" "RESTORE COMPLETE"
lb_check_restored
echo "PASS: unattended restore"
