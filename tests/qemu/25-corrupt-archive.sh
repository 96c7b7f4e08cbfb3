#!/bin/bash
# A corrupted archive is refused by the verification before anything is
# written: the root partition stays bit for bit as it was, and the journal records nothing.
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

lb_attach "$LB_DISK"
smnt=$LB_WORK/smnt; mkdir -p "$smnt"; mount "$LB_P2" "$smnt"
archive=$(ls "$smnt"/generations/*/backup.tar*)
size=$(stat -c %s "$archive")
# Flip bytes in the middle of the compressed stream.
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$archive" bs=1 seek=$((size / 2)) conv=notrunc status=none
umount "$smnt"; lb_detach

lb_drive "$LB_WORK/serial.log" "lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff" \
  expect:"Verifying" expect:"RESTORE NOT DONE: the backup failed verification" \
  expect:"Nothing was written to /dev/vda1" choose:"Power off" \
  || { tail -n 40 "$LB_WORK/serial.log"; fail "the corrupted archive was not refused as expected"; }
lb_check_untouched
lb_attach "$LB_DISK"; mount -o ro "$LB_P2" "$smnt"
! grep -q restore-started "$smnt/journal" 2>/dev/null || fail "the journal says a restore started"
umount "$smnt"; lb_detach
echo "PASS: corrupted archive refused before the root was touched"
