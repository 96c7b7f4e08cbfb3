#!/bin/bash
# The whole Lifeboat story on a virtual XenServer 8-style host, under QEMU (TCG, UEFI/OVMF):
#   1. build the host disk (cached by content)      5. boot the recovery image by PXE; it restores
#   2. boot the host; init-store, backup; power off    the latest backup unattended, then reboots
#   3. capture the root filesystem                  6. boot the host from its own disk again
#   4. damage the root                              7. compare root with the captured one
# Used by `make demo` (scripts/demo.sh) and tests/qemu/90-full-cycle.sh. Exits non-zero on any
# failure or mismatch, naming the phase, with the guest's serial log under $WORK/logs/.
#
# Environment:
#   WORK          work directory (default build/story); everything but the cache lives there
#   DAMAGE        wipe (default: the root partition becomes zeros) or delete (rm -rf /etc /usr)
#   KERNEL_DIR    Debian kernel from scripts/fetch-kernel.sh (default build/kernel)
#   RELEASE_DIR   static binaries from `make build` (default target/x86_64-unknown-linux-musl/release)
#   BOOT_TIMEOUT  seconds for a host boot (default 300); RESTORE_TIMEOUT (default 1500)
#   STORY_VERBOSE 1: show every line the guests print (default: the lines that tell the story)
#   STORY_FROM    6 or 7: for work on this script only: start at that phase, reusing $WORK from
#                 a previous run (the disk, the captured root, $WORK/state.env)
#   STORY_STUB    1: for work on this script only: no backup, and phase 5 copies the captured
#                 root back instead of booting the recovery image (verifies the harness itself)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-build/story}
DAMAGE=${DAMAGE:-wipe}
KERNEL_DIR=${KERNEL_DIR:-build/kernel}
RELEASE_DIR=${RELEASE_DIR:-target/x86_64-unknown-linux-musl/release}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-1500}
STORY_VERBOSE=${STORY_VERBOSE:-0}
STORY_STUB=${STORY_STUB:-0}
STORY_FROM=${STORY_FROM:-1}
MAC=52:54:00:12:34:56
# The machine's SMBIOS identity, the same in every boot (tests/qemu/lib/host.bash): the backup
# records it, and lifeboat.restore=latest restores unattended only a backup of this machine.
MACHINE_UUID=8e3b7d52-1f0a-4c6e-9b2d-5a4f3e2d1c0b
MACHINE_SERIAL=LBDEMO-HOST-1
SERIAL=LBDEMO0001          # the disk serial mkhost.sh's inventory names (/dev/disk/by-id/virtio-...)
ROOT_PART=1 BACKUP_PART=2 SR_PART=3 ESP_PART=4 LOGS_PART=5

LIFEBOAT=$RELEASE_DIR/lifeboat
LIFEBOAT_INIT=$RELEASE_DIR/lifeboat-init
DISK=$WORK/host.img
VARS=$WORK/host-vars.fd
LOGS=$WORK/logs
REPORT=$WORK/report.txt

# The helpers (output, loop devices and mounts, QEMU, host boots, comparisons) are shared with
# the new-disk tests.
# shellcheck source=tests/qemu/lib/host.bash
. tests/qemu/lib/host.bash
virtio_disk "$DISK" disk0 "$SERIAL" 1
HOST_DISKS=("${DISKS[@]}")

# --- the story ------------------------------------------------------------------------------
mkdir -p "$WORK" "$LOGS"
rm -f "$REPORT"
story_leftovers "$DISK" "$WORK/reference-root.img"
echo "${bold}Lifeboat: back up a XenServer-style host, break it, bring it back${reset}"
echo "${dim}(QEMU under TCG, UEFI firmware; logs in $WORK/logs; damage mode: $DAMAGE)${reset}"
for f in "$LIFEBOAT" "$LIFEBOAT_INIT"; do
  [ -x "$f" ] || fail "$f is missing: run 'make build'"
done
[ -s "$KERNEL_DIR/version" ] || fail "no kernel in $KERNEL_DIR: run 'make kernel'"
[ -r "$OVMF_CODE" ] || fail "no UEFI firmware at $OVMF_CODE: run 'make setup' (package ovmf)"

if [ "$STORY_FROM" -gt 1 ]; then
  [ -s "$WORK/state.env" ] || fail "STORY_FROM=$STORY_FROM needs a previous run's $WORK/state.env"
  # shellcheck source=/dev/null
  . "$WORK/state.env"
  say "STORY_FROM=$STORY_FROM: phases 1 to $((STORY_FROM - 1)) skipped, reusing $WORK"
fi
if [ "$STORY_FROM" -le 5 ]; then
phase 1 "Build the virtual XenServer host disk"
say "GPT in XenServer's order: logs, backup, root, ESP, swap, SR; busybox dom0 with the Debian kernel"
t0=$(date +%s)
LIFEBOAT_BIN=$LIFEBOAT KERNEL_DIR=$KERNEL_DIR bash scripts/mkhost.sh "$DISK" | sed 's/^/      /'
cp "$OVMF_VARS" "$VARS"
size_of "host disk (apparent / allocated)" "$(human "$(stat -c %s "$DISK")") / $(human $(($(stat -c %b "$DISK") * 512)))"
sgdisk -p "$DISK" | awk '/^ +[0-9]/ { printf "      p%s %s %s %s\n", $1, $4, $5, $6 }'

phase 2 "Boot the host, create the backup store, back up, power off"
say "inside the host: lifeboat init-store on BACKUP_PARTITION, lifeboat backup, lifeboat list"
if [ "$STORY_STUB" = 1 ]; then
  boot_host boot1-backup 'first boot' 'run lifeboat --version'
else
# shellcheck disable=SC2016 # the script runs in the guest: its variables are the guest's
boot_host boot1-backup 'first boot' '
run lifeboat init-store --backup-device "$BACKUP_PARTITION"
run lifeboat backup
run lifeboat list
'
ok "lifeboat init-store and lifeboat backup succeeded inside the host"
generation=$(log_line boot1-backup '^[0-9]{8}T[0-9]{6}Z ' | tr -s ' ')
[ -n "$generation" ] && size_of "generation (lifeboat list in the host)" "$generation"
mount_part_ro "$DISK" $BACKUP_PART "$WORK/mnt/backup"
size_of "backup store (used on the backup partition)" "$(du -sh "$WORK/mnt/backup" | cut -f1)"
biggest=$(find "$WORK/mnt/backup" -type f -printf '%s %P\n' | sort -n | tail -n1)
[ -n "$biggest" ] || fail "the backup partition holds no file after the backup"
size_of "largest file of the generation" "$(human "${biggest%% *}") (${biggest#* })"
detach_all
fi

phase 3 "Capture the root filesystem as it was backed up"
read -r root_off root_size < <(part_range "$DISK" $ROOT_PART)
rm -f "$WORK/reference-root.img"
dd if="$DISK" of="$WORK/reference-root.img" bs=1M skip=$((root_off / 1048576)) count=$((root_size / 1048576)) conv=sparse status=none
root_uuid_before=$(blkid -p -o value -s UUID "$WORK/reference-root.img")
root_label_before=$(blkid -p -o value -s LABEL "$WORK/reference-root.img")
read -r sr_off sr_size < <(part_range "$DISK" $SR_PART)
sr_hash_before=$(dd if="$DISK" bs=1M skip=$((sr_off / 1048576)) count=$((sr_size / 1048576)) status=none | sha256sum | cut -c1-64)
read -r esp_off _ < <(part_range "$DISK" $ESP_PART)
esp_files "$DISK" "$esp_off" "$WORK/reference-esp"
mount_ro "$WORK/reference-root.img" "$WORK/mnt/reference"
ref_count=$(find "$WORK/mnt/reference" -xdev | wc -l)
size_of "root content (captured)" "$(du -sh --apparent-size "$WORK/mnt/reference" | cut -f1), $ref_count entries"
detach_all
say "root $root_label_before (UUID $root_uuid_before) copied to $WORK/reference-root.img; ESP files copied"
declare -p root_off root_size esp_off sr_off sr_size sr_hash_before root_uuid_before root_label_before > "$WORK/state.env"

phase 4 "Damage the root filesystem ($DAMAGE)"
case "$DAMAGE" in
  wipe)
    fallocate -p -o "$root_off" -l "$root_size" "$DISK"
    [ -z "$(blkid -p -o value -s TYPE -O "$root_off" "$DISK" 2>/dev/null)" ] || fail "the root is still a filesystem after the wipe"
    ok "the root partition is all zeros: no filesystem, no label, nothing for GRUB to boot"
    ;;
  delete)
    attach "$DISK" $ROOT_PART
    mkdir -p "$WORK/mnt/damage"
    mount "$REPLY" "$WORK/mnt/damage" && mounts+=("$WORK/mnt/damage")
    rm -rf "$WORK/mnt/damage/etc" "$WORK/mnt/damage/usr"
    detach_all
    ok "/etc and /usr are gone from the root filesystem"
    ;;
  *) fail "DAMAGE must be wipe or delete, not '$DAMAGE'" ;;
esac

phase 5 "Boot the recovery image by PXE; it restores the latest backup unattended"
if [ "$STORY_STUB" = 1 ]; then
  say "STORY_STUB=1: copying the captured root back instead (no recovery image involved)"
  fallocate -p -o "$root_off" -l "$root_size" "$DISK"
  dd if="$WORK/reference-root.img" of="$DISK" bs=1M seek=$((root_off / 1048576)) conv=notrunc,sparse status=none
else
rm -rf "$WORK/rescue" "$WORK/tftp"
t0=$(date +%s)
"$LIFEBOAT" mkrescue "${LB_MKRESCUE_LEVEL[@]}" --kernel "$KERNEL_DIR/vmlinuz" --modules "$KERNEL_DIR/modules" \
  --init "$LIFEBOAT_INIT" --output "$WORK/rescue" --pxe "$WORK/tftp" \
  --pxe-host "$MAC" --unattended > "$LOGS/mkrescue.log" 2>&1 ||
  fail "lifeboat mkrescue failed: $(tail -n3 "$LOGS/mkrescue.log")"
say "lifeboat mkrescue built the image and the PXE tree in $(($(date +%s) - t0))s"
[ -s "$WORK/rescue/initrd.img" ] || fail "mkrescue wrote no $WORK/rescue/initrd.img"
size_of "recovery initrd" "$(human "$(stat -c %s "$WORK/rescue/initrd.img")")"
size_of "recovery kernel" "$(human "$(stat -L -c %s "$WORK/rescue/vmlinuz")")"
bootfile=
for f in bootx64.efi BOOTX64.EFI grubnetx64.efi grubx64.efi EFI/BOOT/BOOTX64.EFI; do
  [ -e "$WORK/tftp/$f" ] && { bootfile=$f; break; }
done
[ -n "$bootfile" ] || bootfile=$(cd "$WORK/tftp" && find . -iname '*.efi' -printf '%P\n' | sort | head -n1)
[ -n "$bootfile" ] || fail "the PXE tree $WORK/tftp holds no UEFI boot program (*.efi)"
say "UEFI PXE: TFTP root $WORK/tftp, boot file $bootfile, MAC $MAC"
DISKS=()
virtio_disk "$DISK" disk0 "$SERIAL" 2
qemu_run restore "$RESTORE_TIMEOUT" "${DISKS[@]}" \
  -netdev "user,id=n0,tftp=$WORK/tftp,bootfile=$bootfile" \
  -device virtio-net-pci,netdev=n0,mac=$MAC,bootindex=1
log_has restore '^RESTORE COMPLETE' ||
  fail "the recovery image ended without 'RESTORE COMPLETE' (serial log: $LOGS/restore.log)"
say "$(log_line restore '^Restored ')"
ok "the recovery image booted by UEFI PXE (per-host GRUB config), restored unattended and rebooted"
fi

fi
if [ "$STORY_FROM" -le 6 ]; then
phase 6 "Boot the restored host from its own disk"
if [ "$STORY_STUB" = 1 ]; then
  boot_host boot2-restored 'after the restore' 'run lifeboat --version'
else
  boot_host boot2-restored 'after the restore' 'run lifeboat list'
fi

fi
phase 7 "Compare the restored root with the captured one"
root_uuid_after=$(blkid -p -O "$root_off" -o value -s UUID "$DISK" || true)
root_label_after=$(blkid -p -O "$root_off" -o value -s LABEL "$DISK" || true)
[ "$root_label_after" = "$root_label_before" ] || fail "root label is '$root_label_after', was '$root_label_before'"
ok "root filesystem label kept: $root_label_after"
if [ "$root_uuid_after" = "$root_uuid_before" ]; then
  ok "root filesystem UUID kept: $root_uuid_after"
else
  say "note: root filesystem UUID changed ($root_uuid_before -> $root_uuid_after); fstab and GRUB use LABELs"
fi
mount_part_ro "$DISK" $ROOT_PART "$WORK/mnt/restored"
mount_ro "$WORK/reference-root.img" "$WORK/mnt/reference"
compare_roots "$WORK/mnt/reference" "$WORK/mnt/restored"
detach_all
esp_files "$DISK" "$esp_off" "$WORK/restored-esp" ||
  fail "the ESP cannot be read after the restore"
diff -r "$WORK/reference-esp" "$WORK/restored-esp" > "$LOGS/esp.diff" 2>&1 ||
  fail "the ESP differs after the restore: $(head -n 5 "$LOGS/esp.diff")"
ok "the ESP holds the same files as before (GRUB, grub.cfg)"
sr_hash_after=$(dd if="$DISK" bs=1M skip=$((sr_off / 1048576)) count=$((sr_size / 1048576)) status=none | sha256sum | cut -c1-64)
[ "$sr_hash_after" = "$sr_hash_before" ] || fail "the local SR partition changed during the restore"
ok "the local SR partition is untouched (same sha256)"
mount_part_ro "$DISK" $LOGS_PART "$WORK/mnt/logs"
[ -s "$WORK/mnt/logs/installer.log" ] || fail "the logs partition lost its files"
ok "the logs partition (/var/log) kept its files"
detach_all
end_phase

# --- summary --------------------------------------------------------------------------------
if [ "$STORY_STUB" = 1 ]; then
  story_summary "$REPORT" "STORY_STUB=1: the harness works; no backup was taken and no recovery image was booted."
else
  story_summary "$REPORT" "${green}${bold}The host was backed up, broken, restored by PXE and boots again with the same root.${reset}"
fi
