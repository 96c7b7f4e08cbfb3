#!/bin/bash
# Issue 9, test 4, in the recovery image: lifeboat.target naming the partition that holds the
# backup being restored (the store, /dev/vda2) is refused by the image, unattended, with the
# plan's message, and not one byte of the disk changes (sha256 of the whole disk image before
# and after). The other refusals of test 4 (a mounted partition, an md leg, a too-small
# partition, other stores) go through the same core decision (`lifeboat_core::plan`) and are
# tested without a boot by tests/root/41-plan.sh (`lifeboat plan --target ... --json`).
# The refused plan is not waited on: with only virtio disks (every driver shows its disks while
# it loads) the image says it does not wait lifeboat.settle for more disks.
# shellcheck source=tests/qemu/lib/restore.bash
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

before=$(sha256sum < "$LB_DISK")
lb_drive "$LB_WORK/serial.log" "lifeboat.restore=latest lifeboat.yes lifeboat.target=/dev/vda2 lifeboat.after=poweroff" \
  expect:"RESTORE NOT DONE" expect:"/dev/vda2 holds the backup being restored" \
  choose:"Power off" expect:"Powering off" \
  || { tail -n 40 "$LB_WORK/serial.log"; fail "the image did not refuse lifeboat.target=/dev/vda2 (the store) and go back to its menu"; }
lb_expect_log "$LB_WORK/serial.log" "refused: /dev/vda2 holds the backup being restored"
lb_expect_log "$LB_WORK/serial.log" "not waiting for more disks (lifeboat.settle)"
if grep -a -q -E '^Step [0-9]+/|Creating ext4 on|Extracting \.\.\.' "$LB_WORK/serial.log"; then
  fail "the image ran a step after refusing: $(grep -a -m1 -E '^Step [0-9]+/|Creating ext4 on|Extracting' "$LB_WORK/serial.log")"
fi
after=$(sha256sum < "$LB_DISK")
[ "$before" = "$after" ] || fail "the disk changed although the restore was refused (sha256 ${before%% *} -> ${after%% *})"
echo "disk sha256 unchanged: ${after%% *}"
echo "PASS: lifeboat.target naming the backup's own partition is refused and nothing is written"
