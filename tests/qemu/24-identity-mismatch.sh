#!/bin/bash
# A machine whose DMI UUID and serial differ from the backup's: "latest" does not pick another
# machine's backup (core's one rule: other hosts' backups only when chosen by hand); named by
# its generation id it is refused without lifeboat.allow-other-host (root untouched), and
# restored with it.
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

LB_UUID=0badc0de-0000-4000-8000-00000000beef LB_SERIAL=OTHER-MACHINE \
lb_drive "$LB_WORK/serial0.log" "lifeboat.restore=latest lifeboat.yes lifeboat.settle=3" \
  expect:"no backup here was taken on this host" choose:"Power off" \
  || { tail -n 40 "$LB_WORK/serial0.log"; fail "latest picked another machine's backup"; }
lb_check_untouched

LB_UUID=0badc0de-0000-4000-8000-00000000beef LB_SERIAL=OTHER-MACHINE \
lb_drive "$LB_WORK/serial.log" "lifeboat.restore=$LB_GEN lifeboat.yes" \
  expect:"this backup was taken on another machine" expect:"machine UUID" \
  expect:"refused: identity mismatch" choose:"Power off" \
  || { tail -n 40 "$LB_WORK/serial.log"; fail "the mismatch was not refused as expected"; }
grep -a -q "Creating ext4" "$LB_WORK/serial.log" && fail "the root was recreated despite the mismatch"
lb_check_untouched

LB_UUID=0badc0de-0000-4000-8000-00000000beef LB_SERIAL=OTHER-MACHINE \
lb_boot "$LB_WORK/serial2.log" "lifeboat.restore=$LB_GEN lifeboat.yes lifeboat.allow-other-host lifeboat.after=poweroff"
lb_expect_log "$LB_WORK/serial2.log" "lifeboat.allow-other-host is set"
lb_expect_log "$LB_WORK/serial2.log" "RESTORE COMPLETE"
lb_check_restored
echo "PASS: latest skipped another machine's backup; named, it was refused, then accepted with lifeboat.allow-other-host"
