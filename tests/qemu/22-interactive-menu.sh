#!/bin/bash
# The "Restore from backup" menu driven over the serial console: choose the
# backup, Restore, confirm with "yes", then Power off; the root is restored as in check 1.
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

lb_drive "$LB_WORK/serial.log" "" \
  expect:"Restore from backup" expect:"will overwrite /dev/vda1" expect:"Choice:" send:1 \
  expect:"2) Verify only" expect:"Choice:" send:2 expect:"Verify OK" \
  expect:"Choice:" send:1 expect:"Type yes" send:yes \
  expect:"Restore finished" expect:"Choice:" send:2 \
  || { tail -n 40 "$LB_WORK/serial.log"; fail "the menu did not go as expected"; }
lb_expect_log "$LB_WORK/serial.log" " onto /dev/vda1: "
lb_check_restored
echo "PASS: interactive restore over the serial console"
