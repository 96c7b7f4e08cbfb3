#!/bin/bash
# A restore that started and never finished (the journal's last restore record is
# "restore-started") is reported at boot, and the menu's restore finishes it.
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

lb_attach "$LB_DISK"
smnt=$LB_WORK/smnt; mkdir -p "$smnt"; mount "$LB_P2" "$smnt"
gen=$(basename "$(dirname "$(ls "$smnt"/generations/*/meta.json)")")
echo "{\"time\":\"2026-01-01T00:00:00Z\",\"event\":\"restore-started\",\"generation\":\"$gen\",\"target\":\"/dev/vda1\"}" >> "$smnt/journal"
umount "$smnt"; lb_detach

lb_drive "$LB_WORK/serial.log" "" \
  expect:"ATTENTION: a restore from the store on /dev/vda2 started and did not finish" \
  expect:"started and did not finish: the root is incomplete" expect:"Choice:" send:1 \
  expect:"1) Restore" expect:"Choice:" send:1 expect:"Type yes" send:yes \
  expect:"Restore finished" expect:"Choice:" send:2 \
  || { tail -n 40 "$LB_WORK/serial.log"; fail "the interrupted restore was not reported and finished"; }
lb_check_restored
echo "PASS: interrupted restore reported and finished"
