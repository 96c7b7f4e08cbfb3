#!/bin/bash
# Issue 9, test 3: an md RAID1 host (two disks, metadata 1.0): the root restored through the
# array; then both disks replaced by blank ones and the whole layout recreated; the array is
# clean after boot.
#   1. the host (scripts/mkhost.sh --raid1: BIOS, root on /dev/md0 over p1 of disk A and p1 of
#      disk B, its initramfs assembles the array with mdadm), a blank store disk
#   2. boot the host from the array ([UU] in /proc/mdstat), `lifeboat init-store` +
#      `lifeboat backup` to the store disk; power off
#   3. capture the root (the array's data area: a 1.0 leg starts with it); break the root on the
#      array (files deleted, a marker added, on both legs alike)
#   4. mode (a): the recovery image (`lifeboat mkrescue`) assembles the array read-only,
#      verifies, restores the root THROUGH /dev/md0; the host boots: [UU], the root whole again
#   5. mode (b): both disks replaced by blank ones 25% larger; the recovery image with
#      lifeboat.disk=A,B recreates both tables, the array (same UUID, metadata 1.0, name), the
#      filesystems, restores; the host boots from the new disks: [UU], array clean
#   6. the new disks compared with the old ones: tables, array superblocks (mdadm --examine),
#      root entry by entry (lbtest-compare)
# QEMU under TCG only (tests/lib/qemu.bash). Five boots; each phase prints its time.
set -euo pipefail
cd "$(dirname "$0")/../.."

FIRMWARE=bios
VARS=unused-with-bios
WORK=${WORK:-build/test-md-raid1-host}
KERNEL_DIR=${KERNEL_DIR:-build/kernel}
RELEASE_DIR=${RELEASE_DIR:-target/x86_64-unknown-linux-musl/release}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-500}
RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-1500}
STORY_VERBOSE=${STORY_VERBOSE:-0}
PHASES=6
SERIAL_A=LBDEMO0001      # the disk serial mkhost.sh's inventory names (disk A: the whole layout)
SERIAL_B=LBDEMO0002      # disk B: the second leg only
NEW_A=LBNEWDISKA0004
NEW_B=LBNEWDISKB0005
STORE_SERIAL=LBSTORE0003
MACHINE_UUID=7a3e5c1d-2b4f-4e6a-8c9d-0f1e2d3c4b5a
MACHINE_SERIAL=LBMDHOST-1
MD_UUID=6d5a1b2c:3d4e5f60:71829304:a5b6c7d8   # mkhost.sh --raid1
MD_NAME=lbdemo:root
LIFEBOAT=$RELEASE_DIR/lifeboat
LIFEBOAT_INIT=$RELEASE_DIR/lifeboat-init
A=$WORK/disk-a.img
B=$WORK/disk-b.img
NA=$WORK/new-disk-a.img
NB=$WORK/new-disk-b.img
STORE=$WORK/store-disk.img
LOGS=$WORK/logs
REPORT=$WORK/report.txt
[ "$(id -u)" = 0 ] || { echo "FAIL: $0 needs root (loop devices, mounts)" >&2; exit 1; }
mkdir -p "$WORK" "$LOGS"
# shellcheck source=tests/qemu/lib/host.bash
. tests/qemu/lib/host.bash
story_leftovers "$A" "$B" "$NA" "$NB" "$WORK/reference-root.img"
for f in "$LIFEBOAT" "$LIFEBOAT_INIT"; do [ -x "$f" ] || fail "$f is missing: run 'make build'"; done
[ -s "$KERNEL_DIR/version" ] || fail "no kernel in $KERNEL_DIR: run 'make kernel'"
command -v mdadm >/dev/null || fail "mdadm is not installed (make setup)"

# examine IMG -> mdadm --examine of partition 1 of IMG (this machine reads superblocks, it has no md).
examine() {
  attach "$1" 1 ro
  mdadm --examine "$REPLY" 2>&1 || fail "mdadm --examine refuses partition 1 of $1"
  loop_detach "${REPLY%p1}"
}
# check_examine IMG WHAT: a clean member of our array, metadata 1.0, both legs active.
check_examine() {
  local out=$WORK/examine-$2.txt
  examine "$1" > "$out"
  grep -q "Version : 1.0" "$out" || fail "$2: not metadata 1.0: $(grep Version "$out")"
  grep -q "Array UUID : $MD_UUID" "$out" || fail "$2: array UUID is not $MD_UUID: $(grep 'Array UUID' "$out")"
  grep -q "Name : $MD_NAME" "$out" || fail "$2: array name is not $MD_NAME: $(grep 'Name :' "$out")"
  grep -q "State : clean" "$out" || fail "$2: the array is not clean: $(grep 'State :' "$out" | head -n1)"
  grep -q "Array State : AA" "$out" || fail "$2: not both legs active: $(grep 'Array State' "$out")"
  ok "$2: mdadm --examine: metadata 1.0, array $MD_UUID ($MD_NAME), clean, Array State AA"
}
# mdstat NAME: the host's /proc/mdstat showed md0 as raid1 over two legs, both up.
mdstat_uu() {
  log_has "$1" '^md0 : active raid1 ' || fail "the host's /proc/mdstat shows no active raid1 md0 (serial log: $LOGS/$1.log)"
  log_has "$1" '\[2/2\] \[UU\]' || fail "the host's /proc/mdstat does not show both legs up [UU]: $(log_line "$1" '\[[0-9]/[0-9]\]') (serial log: $LOGS/$1.log)"
  ok "the host's /proc/mdstat: '$(log_line "$1" '^md0 : ')' '$(log_line "$1" '\[2/2\] \[UU\]' | sed 's/^ *//')'"
}
HOST_CHECK='var-log=ok boot-efi=none swap=ok backup-partition=ok lifeboat=ok'
# The host's initramfs that gives up says so: stop there rather than at the timeout.
export QEMU_GIVE_UP='host-initramfs: dropping to a shell'
# shellcheck disable=SC2016 # runs in the guest
md_commands='
run cat /proc/mdstat
run grep -q "^/dev/md0 / " /proc/mounts
run mdadm --detail /dev/md0
'

phase 1 "Build the RAID1 host (disks A and B), a blank store disk"
LIFEBOAT_BIN=$LIFEBOAT KERNEL_DIR=$KERNEL_DIR bash scripts/mkhost.sh --raid1 "$A" "$B" | sed 's/^/      /'
rm -f "$STORE" "$NA" "$NB"
truncate -s 1G "$STORE"
check_examine "$A" "disk A's leg as built"
check_examine "$B" "disk B's leg as built"
sgdisk -p "$A" > "$WORK/old-table-a.txt"
sgdisk -p "$B" > "$WORK/old-table-b.txt"

phase 2 "Boot the host from its array, backup to the store disk"
DISKS=()
virtio_disk "$A" disk0 "$SERIAL_A" 1
virtio_disk "$B" disk1 "$SERIAL_B"
virtio_disk "$STORE" disk2 "$STORE_SERIAL"
HOST_DISKS=("${DISKS[@]}")
# shellcheck disable=SC2016 # the script runs in the guest: its variables are the guest's
boot_host boot1-backup "first boot" "$md_commands"'
store=$(readlink -f /dev/disk/by-id/virtio-'"$STORE_SERIAL"')
run lifeboat init-store --backup-device "$store"
run lifeboat backup --backup-device "$store"
run lifeboat list --backup-device "$store"
'
mdstat_uu boot1-backup
ok "the root is /dev/md0 (mounted), lifeboat backup to the store disk"
generation=$(log_line boot1-backup '^[0-9]{8}T[0-9]{6}Z ' | tr -s ' ')
[ -n "$generation" ] || fail "lifeboat list shows no generation after the backup (serial log: $LOGS/boot1-backup.log)"
size_of "generation (lifeboat list in the host)" "$generation"

phase 3 "Capture the root, then break it on both legs"
read -r _ leg_size < <(part_range "$A" 1)
md_bytes=$(((leg_size / 512 - 16) / 8 * 8 * 512))
attach "$A" 1 ro
rm -f "$WORK/reference-root.img"
dd if="$REPLY" of="$WORK/reference-root.img" bs=4096 count=$((md_bytes / 4096)) conv=sparse status=none
detach_all
# Broken alike on both legs (as md would have written it): files deleted, a marker added.
mkdir -p "$WORK/mnt/break"
attach "$A" 1
leg_a=$REPLY
mount -t ext4 "$leg_a" "$WORK/mnt/break"
mounts+=("$WORK/mnt/break")
chattr -i -a "$WORK/mnt/break/opt/lifeboat-demo/immutable" "$WORK/mnt/break/opt/lifeboat-demo/append-only"
rm -rf "$WORK/mnt/break/opt/lifeboat-demo" "$WORK/mnt/break/var/xapi"
echo "broken after the backup" > "$WORK/mnt/break/BROKEN"
detach_all
attach "$A" 1 ro
leg_a=$REPLY
attach "$B" 1
dd if="$leg_a" of="$REPLY" bs=4096 count=$((md_bytes / 4096)) conv=notrunc status=none
detach_all
check_examine "$B" "disk B's leg after the break"
ok "the root on the array lost /opt/lifeboat-demo and /var/xapi and got /BROKEN (both legs)"

phase 4 "Mode (a): restore through the array, then boot the host"
rm -rf "$WORK/rescue"
"$LIFEBOAT" mkrescue "${LB_MKRESCUE_LEVEL[@]}" --kernel "$KERNEL_DIR/vmlinuz" --modules "$KERNEL_DIR/modules" \
  --init "$LIFEBOAT_INIT" --output "$WORK/rescue" > "$LOGS/mkrescue.log" 2>&1 ||
  fail "lifeboat mkrescue failed: $(tail -n3 "$LOGS/mkrescue.log")"
[ -s "$WORK/rescue/vmlinuz" ] && [ -s "$WORK/rescue/initrd.img" ] || fail "lifeboat mkrescue wrote no image in $WORK/rescue"
rescue=(-net none -kernel "$WORK/rescue/vmlinuz" -initrd "$WORK/rescue/initrd.img")
QEMU_GIVE_UP='Choose a backup' qemu_run restore-a "$RESTORE_TIMEOUT" "${HOST_DISKS[@]}" "${rescue[@]}" \
  -append "console=ttyS0 panic=-1 lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff"
log_has restore-a '^RESTORE COMPLETE' || fail "the recovery image ended without 'RESTORE COMPLETE' (serial log: $LOGS/restore-a.log)"
log_has restore-a "md: array $MD_UUID \(raid1, metadata 1.0, name $MD_NAME\) assembled read-only as /dev/md0" ||
  fail "the recovery image did not assemble the array (serial log: $LOGS/restore-a.log)"
log_has restore-a 'Creating ext4 on /dev/md0' || fail "the root was not made on /dev/md0 (serial log: $LOGS/restore-a.log)"
if tr -d '\r' < "$LOGS/restore-a.log" | grep -a -v '^LIFEBOAT-PLAN ' | grep -a -E "Creating ext4 on /dev/vd[ab]1|mount.* /dev/vd[ab]1"; then
  fail "a leg was written or mounted by itself"
fi
ok "mode (a): $(log_line restore-a '^md: array ' | cut -c1-120)"
say "$(log_line restore-a '^Restored ')"
DISKS=()
virtio_disk "$A" disk0 "$SERIAL_A" 1
virtio_disk "$B" disk1 "$SERIAL_B"
HOST_DISKS=("${DISKS[@]}")
HOST_CHECK='var-log=ok boot-efi=none swap=ok backup-partition=ok lifeboat=ok'
boot_host boot2-after-a "after the restore through the array" "$md_commands"'
run test ! -e /BROKEN
run test -e /opt/lifeboat-demo/hardlink-b
run test -s /var/xapi/state.db
'
mdstat_uu boot2-after-a
ok "the host's root is whole again: /BROKEN gone, /opt/lifeboat-demo and /var/xapi back"
check_examine "$A" "disk A's leg after mode (a)"
check_examine "$B" "disk B's leg after mode (a)"

phase 5 "Mode (b): both disks replaced by blank ones, lifeboat.disk=$NEW_A,$NEW_B"
a_size=$(stat -c %s "$A") b_size=$(stat -c %s "$B")
truncate -s $((a_size * 5 / 4 / 1048576 * 1048576)) "$NA"
truncate -s $((b_size * 5 / 4 / 1048576 * 1048576)) "$NB"
size_of "old disks A, B / new disks" "$(human "$a_size"), $(human "$b_size") / $(human "$(stat -c %s "$NA")"), $(human "$(stat -c %s "$NB")")"
DISKS=()
virtio_disk "$NA" disk0 "$NEW_A"
virtio_disk "$NB" disk1 "$NEW_B"
virtio_disk "$STORE" disk2 "$STORE_SERIAL"
restore_b=("${DISKS[@]}" "${rescue[@]}"
  -append "console=ttyS0 panic=-1 lifeboat.restore=latest lifeboat.yes lifeboat.disk=$NEW_A,$NEW_B lifeboat.after=poweroff")
if [ "${CUT_RESTORE:-1}" = 1 ]; then
  # A power cut during the root's extraction (after the tables and the array were made); the
  # same boot again resumes at the step the cut stopped, with the array as the cut left it.
  QEMU_CUT_AT='^Step [0-9]+/[0-9]+: restore the backup into the root' QEMU_CUT_DELAY=2 \
    QEMU_GIVE_UP='Choose a backup' qemu_run restore-b-cut "$RESTORE_TIMEOUT" "${restore_b[@]}"
  [ "$QEMU_CUT" = 1 ] || fail "the restore ended before the power cut (serial log: $LOGS/restore-b-cut.log)"
  log_has restore-b-cut '^RESTORE COMPLETE' && fail "the cut boot completed the restore: no power cut in the middle"
  cut_step=$(log_line restore-b-cut '^Step [0-9]+/[0-9]+: ' | grep -o -E '^Step [0-9]+' | cut -d' ' -f2)
  ok "power cut at step $cut_step: '$(log_line restore-b-cut '^Step [0-9]+/' | cut -c1-90)'"
fi
QEMU_GIVE_UP='Choose a backup' qemu_run restore-b "$RESTORE_TIMEOUT" "${restore_b[@]}"
log_has restore-b '^RESTORE COMPLETE' || fail "the recovery image ended without 'RESTORE COMPLETE' (serial log: $LOGS/restore-b.log)"
if [ "${CUT_RESTORE:-1}" = 1 ]; then
  # The console may drop lines near the plan's long LIFEBOAT-PLAN line (it carries the BIOS
  # boot partition), "Resuming at step" among them: the store's journal records the resume.
  first_step=$(tr -d '\r' < "$LOGS/restore-b.log" | grep -a -E '^Step [0-9]+/[0-9]+: ' | head -n1 | grep -o -E '^Step [0-9]+/')
  [ "$first_step" = "Step $cut_step/" ] || fail "the resumed boot ran '${first_step:-no step}' first, not step $cut_step (serial log: $LOGS/restore-b.log)"
  log_has restore-b '^Step 1/' && fail "the resumed boot ran the plan's first step again"
  mount_ro "$STORE" "$WORK/mnt/store"
  journal=$(find "$WORK/mnt/store" -maxdepth 3 -type f -name journal | head -n1)
  [ -n "$journal" ] || fail "no journal in the store on $STORE"
  grep -a -q "resuming at step $cut_step" "$journal" || fail "the store's journal $journal records no 'resuming at step $cut_step'"
  detach_all
  ok "the next boot resumed at step $cut_step (journal: 'resuming at step $cut_step')"
fi
first_b=restore-b
[ "${CUT_RESTORE:-1}" = 1 ] && first_b=restore-b-cut
log_has "$first_b" 'Running mdadm --create' || fail "the array was not created (serial log: $LOGS/$first_b.log)"
ok "mode (b): $(log_line "$first_b" 'Running mdadm --create' | cut -c1-140)"
say "$(log_line restore-b '^Restored ')"
DISKS=()
virtio_disk "$NA" disk0 "$NEW_A" 1
virtio_disk "$NB" disk1 "$NEW_B"
HOST_DISKS=("${DISKS[@]}")
# The inventory's BACKUP_PARTITION names the old disk A by its serial: absent on the new one.
HOST_CHECK='var-log=ok boot-efi=none swap=ok backup-partition=(ok|missing) lifeboat=ok'
QEMU_GIVE_UP="No bootable device|$QEMU_GIVE_UP" boot_host boot3-new-disks "from the new disks" "$md_commands"
mdstat_uu boot3-new-disks

phase 6 "Compare the new disks with the old ones"
table_norm() { grep -v -E '^Disk .*: [0-9]+ sectors|last usable sector|^Total free space' "$1"; }
sgdisk -p "$NA" > "$WORK/new-table-a.txt"
sgdisk -p "$NB" > "$WORK/new-table-b.txt"
for d in a b; do
  diff <(table_norm "$WORK/old-table-$d.txt") <(table_norm "$WORK/new-table-$d.txt") > "$LOGS/table-$d.diff" ||
    fail "disk ${d^^}'s partition table differs (old -> new): $(cat "$LOGS/table-$d.diff")"
done
ok "both partition tables equal apart from the disk size ($(grep -c '^ *[0-9]' "$WORK/new-table-a.txt") and $(grep -c '^ *[0-9]' "$WORK/new-table-b.txt") partitions, same GUIDs)"
check_examine "$NA" "new disk A's leg"
check_examine "$NB" "new disk B's leg"
attach "$NA" 1 ro
dumpe2fs -h "$REPLY" > "$WORK/dumpe2fs-new.txt" 2>/dev/null || fail "no ext4 at the start of new disk A's leg"
detach_all
grep -q '^Filesystem volume name: *root-lbdemo$' "$WORK/dumpe2fs-new.txt" || fail "the root's label is not root-lbdemo on the new array"
# (mount -t ext4: the leg's type by blkid is linux_raid_member; its data area is the ext4.)
attach "$NA" 1 ro
mkdir -p "$WORK/mnt/restored"
mount -t ext4 -o ro,noload "$REPLY" "$WORK/mnt/restored" || fail "cannot mount the ext4 of new disk A's leg ($REPLY)"
mounts+=("$WORK/mnt/restored")
mount_ro "$WORK/reference-root.img" "$WORK/mnt/reference"
compare_roots "$WORK/mnt/reference" "$WORK/mnt/restored"
detach_all
end_phase

story_summary "$REPORT" "${green}${bold}An md RAID1 root restored through its array, then recreated on two blank disks: the host boots with [UU].${reset}"
rm -f "$A" "$B" "$NA" "$NB" "$STORE" "$WORK/reference-root.img"
