#!/bin/bash
# The image boots and restores with -m 256; with VGA (tty0) as the last
# console= (so /dev/console is tty0), lifeboat-init still drives the serial console too.
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

LB_MEM=256 lb_boot "$LB_WORK/serial.log" "console=tty0 lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff"
lb_expect_log "$LB_WORK/serial.log" "consoles: ttyS0, tty0"
lb_expect_log "$LB_WORK/serial.log" "RESTORE COMPLETE"
lb_check_restored
echo "PASS: restore with 256 MiB of memory"
