# shellcheck shell=bash
# Issue 9, tests 1 and 2: restore onto a new, blank disk (tests/qemu/39-new-disk-uefi.sh with
# FIRMWARE=uefi, tests/qemu/40-new-disk-bios.sh with FIRMWARE=bios). Sourced by them; the whole
# test is here, the firmware decides the boot chain:
#   1. the virtual XenServer host (scripts/mkhost.sh [--bios]), a blank store disk, (UEFI:) fresh
#      OVMF variables
#   2. boot the host; UEFI: efibootmgr makes its own boot entry for GRUB on the ESP and the
#      removable-media fallback \EFI\BOOT\BOOTX64.EFI is deleted; `lifeboat init-store` +
#      `lifeboat backup` to the second disk (the backup records the whole disk, the boot entry,
#      the MBR boot code and BIOS boot partition); power off
#   3. capture the old disk: partition table, identities, root, ESP files or boot code
#   4. the system disk is replaced by a blank one 25% larger (another serial)
#   5. the recovery image (`lifeboat mkrescue`, direct kernel boot; UEFI: a fresh copy of the OVMF
#      variables that has no entry for the host) restores unattended with lifeboat.disk=
#   6. the host boots from the new disk through its own GRUB; UEFI: by the boot entry the restore
#      recreated (no bootindex: the firmware's own boot order and BootNext decide, and OVMF's
#      "BdsDxe: starting Boot#### ..." line must name it)
#   7. old and new disk compared: partition table (but the disk size), every partition's
#      identity (sgdisk -i, blkid -p), root entry by entry, ESP files or boot code bytes
# QEMU under TCG only (tests/lib/qemu.bash). Three boots; each phase prints its time.
# TEST_FROM=5: for work on these tests only: start at the restore, reusing $WORK of a run that
# stopped after phase 4 (its disks and $WORK/state.env).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a test body: run tests/qemu/39-new-disk-uefi.sh or 40-new-disk-bios.sh" >&2
  exit 2
fi
set -euo pipefail
case ${FIRMWARE:-} in
  uefi|bios) ;;
  *) echo "FAIL: FIRMWARE must be uefi or bios, not '${FIRMWARE:-}'" >&2; exit 2 ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

WORK=${WORK:-build/test-new-disk-$FIRMWARE}
KERNEL_DIR=${KERNEL_DIR:-build/kernel}
RELEASE_DIR=${RELEASE_DIR:-target/x86_64-unknown-linux-musl/release}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-400}
RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-1500}
STORY_VERBOSE=${STORY_VERBOSE:-0}
PHASES=7
OLD_SERIAL=LBDEMO0001      # the disk serial mkhost.sh's inventory names
NEW_SERIAL=LBNEWDISK0002   # the replacement disk
STORE_SERIAL=LBSTORE0003   # the second disk, with the Lifeboat store
# The machine's SMBIOS identity, the same in every boot: the backup records it, and 'latest'
# restores unattended only a backup taken on this machine.
MACHINE_UUID=5d2f6a8e-3c41-4b7a-9e05-8f1d2c3b4a59
MACHINE_SERIAL=LBNEWDISK-HOST-1
ENTRY_LABEL="XenServer lbdemo"
LOADER='\EFI\xenserver\grubx64.efi'
ESP_PART=4 ROOT_PART=1 BIOS_BOOT_PART=4
LIFEBOAT=$RELEASE_DIR/lifeboat
LIFEBOAT_INIT=$RELEASE_DIR/lifeboat-init
OLD=$WORK/old-disk.img
NEW=$WORK/new-disk.img
STORE=$WORK/store-disk.img
LOGS=$WORK/logs
REPORT=$WORK/report.txt
[ "$(id -u)" = 0 ] || { echo "FAIL: $0 needs root (loop devices, mounts)" >&2; exit 1; }
mkdir -p "$WORK" "$LOGS"
VARS=$WORK/host-vars.fd
uefi() { [ "$FIRMWARE" = uefi ]; }
# shellcheck source=tests/qemu/lib/host.bash
. tests/qemu/lib/host.bash
story_leftovers "$OLD" "$NEW" "$WORK/reference-root.img"
TEST_FROM=${TEST_FROM:-1}

# utf16 TEXT: the bytes of TEXT in UTF-16LE as a grep -P pattern (how the variable store holds
# a boot entry's description).
utf16() { printf '%s' "$1" | iconv -t UTF-16LE | od -An -tx1 | tr -s ' \n' ' ' | sed 's/ $//; s/ /\\x/g'; }
vars_have_entry() { LC_ALL=C grep -q -a -P "$(utf16 "$ENTRY_LABEL")" "$1"; }

for f in "$LIFEBOAT" "$LIFEBOAT_INIT"; do [ -x "$f" ] || fail "$f is missing: run 'make build'"; done
[ -s "$KERNEL_DIR/version" ] || fail "no kernel in $KERNEL_DIR: run 'make kernel'"
if uefi; then
  [ -r "$OVMF_CODE" ] && [ -r "$OVMF_VARS" ] || fail "no UEFI firmware at $OVMF_CODE / $OVMF_VARS: run 'make setup' (package ovmf)"
  command -v efibootmgr >/dev/null || fail "efibootmgr is not installed (make setup): mkhost.sh puts it in the host"
fi
# sha256 IMG OFFSET LENGTH: of those bytes of IMG.
sha256_of() { tail -c +"$(($2 + 1))" "$1" | head -c "$3" | sha256sum | cut -c1-64; }
boot_code() { # IMG -> the BIOS boot chain: the MBR's boot code and the BIOS boot partition
  local off size
  read -r off size < <(part_range "$1" $BIOS_BOOT_PART)
  echo "mbr-boot-code $(sha256_of "$1" 0 440)"
  echo "bios-boot-partition $(sha256_of "$1" "$off" "$size")"
}

identity() { # IMG PART -> the partition's entry and what blkid finds in it
  local off size
  read -r off size < <(part_range "$1" "$2")
  sgdisk -i "$2" "$1"
  echo "blkid:"
  blkid -p -O "$off" -S "$size" -o export "$1" 2>/dev/null | grep -v '^DEVNAME=' | LC_ALL=C sort || true
}

if [ "$TEST_FROM" -gt 1 ]; then
  [ -s "$WORK/state.env" ] || fail "TEST_FROM=$TEST_FROM needs a previous run's $WORK/state.env"
  # shellcheck source=/dev/null
  . "$WORK/state.env"
  say "TEST_FROM=$TEST_FROM: phases 1 to $((TEST_FROM - 1)) skipped, reusing $WORK"
  if uefi; then cp "$OVMF_VARS" "$WORK/restore-vars.fd"; VARS=$WORK/restore-vars.fd; fi
  rm -f "$NEW" && truncate -s "$new_size" "$NEW"
else
phase 1 "Build the host disk ($FIRMWARE), a blank store disk$(uefi && echo ', fresh UEFI variables')"
mkhost_args=("$OLD")
uefi || mkhost_args=(--bios "$OLD")
LIFEBOAT_BIN=$LIFEBOAT KERNEL_DIR=$KERNEL_DIR bash scripts/mkhost.sh "${mkhost_args[@]}" | sed 's/^/      /'
rm -f "$STORE" "$NEW"
truncate -s 1G "$STORE"
if uefi; then
  cp "$OVMF_VARS" "$VARS"
  vars_have_entry "$VARS" && fail "the fresh OVMF variables ($OVMF_VARS) already hold an entry '$ENTRY_LABEL'"
fi
sgdisk -p "$OLD" | awk '/^ +[0-9]/ { printf "      p%s %s %s %s\n", $1, $4, $5, $6 }'

if uefi; then
  phase 2 "Boot the host: its own UEFI boot entry, no fallback loader, backup to the second disk"
else
  phase 2 "Boot the host (BIOS, GRUB in the BIOS boot partition), backup to the second disk"
fi
DISKS=()
virtio_disk "$OLD" disk0 "$OLD_SERIAL" 1
virtio_disk "$STORE" disk1 "$STORE_SERIAL"
HOST_DISKS=("${DISKS[@]}")
# shellcheck disable=SC2016 # the script runs in the guest: its variables are the guest's
uefi_commands='
run efibootmgr -c -d "$(readlink -f "$PRIMARY_DISK")" -p '"$ESP_PART"' -L "'"$ENTRY_LABEL"'" -l '"'$LOADER'"'
run rm /boot/efi/EFI/BOOT/BOOTX64.EFI
run rmdir /boot/efi/EFI/BOOT
run efibootmgr -v'
uefi || uefi_commands=
HOST_CHECK=
uefi || HOST_CHECK='var-log=ok boot-efi=none swap=ok backup-partition=ok lifeboat=ok'
# shellcheck disable=SC2016 # the script runs in the guest: its variables are the guest's
boot_host boot1-backup "first boot$(uefi && echo ' (removable-media fallback, fresh variables)')" '
store=$(readlink -f /dev/disk/by-id/virtio-'"$STORE_SERIAL"')
'"$uefi_commands"'
run lifeboat init-store --backup-device "$BACKUP_PARTITION"
run lifeboat init-store --backup-device "$store"
run lifeboat backup --backup-device "$store"
run lifeboat list --backup-device "$store"
'
if uefi; then
  log_has boot1-backup "^Boot[0-9A-F]{4}\\* $ENTRY_LABEL" || fail "efibootmgr made no entry '$ENTRY_LABEL' in the host (serial log: $LOGS/boot1-backup.log)"
  ok "the host's own boot entry: $(log_line boot1-backup "^Boot[0-9A-F]{4}\\* $ENTRY_LABEL")"
  vars_have_entry "$VARS" || fail "the host's variables file $VARS does not hold '$ENTRY_LABEL' after efibootmgr"
fi
ok "init-store on BACKUP_PARTITION and on the second disk, backup to the second disk"
generation=$(log_line boot1-backup '^[0-9]{8}T[0-9]{6}Z ' | tr -s ' ')
[ -n "$generation" ] || fail "lifeboat list shows no generation after the backup (serial log: $LOGS/boot1-backup.log)"
size_of "generation (lifeboat list in the host)" "$generation"

phase 3 "Capture the old disk: partition table, identities, root, $(uefi && echo ESP || echo 'MBR boot code and BIOS boot partition')"
sgdisk -p "$OLD" > "$WORK/old-table.txt"
parts=$(sgdisk -p "$OLD" | awk '/^ +[0-9]/ { print $1 }' | sort -n | tr '\n' ' ')
[ -n "$parts" ] || fail "no partitions on $OLD"
for p in $parts; do identity "$OLD" "$p" > "$WORK/old-p$p.txt"; done
read -r root_off root_size < <(part_range "$OLD" $ROOT_PART)
rm -f "$WORK/reference-root.img"
dd if="$OLD" of="$WORK/reference-root.img" bs=1M skip=$((root_off / 1048576)) count=$((root_size / 1048576)) conv=sparse status=none
if uefi; then
  read -r esp_off _ < <(part_range "$OLD" $ESP_PART)
  esp_files "$OLD" "$esp_off" "$WORK/reference-esp"
  [ ! -e "$WORK/reference-esp/EFI/BOOT/BOOTX64.EFI" ] || fail "the ESP still holds the fallback loader \\EFI\\BOOT\\BOOTX64.EFI"
  ok "the old ESP has no removable-media fallback; GRUB only as ${LOADER}"
else
  boot_code "$OLD" > "$WORK/old-boot-code.txt"
  [ "$(sha256_of "$OLD" 0 440)" != "$(head -c 440 /dev/zero | sha256sum | cut -c1-64)" ] || fail "the old disk's MBR holds no boot code"
fi
say "partitions: $parts; root $(grep '^LABEL=' "$WORK/old-p$ROOT_PART.txt")"

phase 4 "Replace the system disk by a blank one, 25% larger"
old_size=$(stat -c %s "$OLD")
new_size=$((old_size * 5 / 4 / 1048576 * 1048576))
truncate -s "$new_size" "$NEW"
[ -z "$(blkid -p "$NEW" 2>/dev/null)" ] || fail "the new disk is not blank"
size_of "old disk / new disk" "$(human "$old_size") / $(human "$new_size")"
if uefi; then
  cp "$OVMF_VARS" "$WORK/restore-vars.fd"
  VARS=$WORK/restore-vars.fd
  vars_have_entry "$VARS" && fail "the restore's variables file already holds '$ENTRY_LABEL'"
  ok "the variables given to the restore boot hold no entry '$ENTRY_LABEL' (a fresh copy of $OVMF_VARS)"
fi
declare -p parts old_size new_size > "$WORK/state.env"
fi

phase 5 "Restore unattended onto the blank disk (lifeboat.disk=$NEW_SERIAL)"
rm -rf "$WORK/rescue"
"$LIFEBOAT" mkrescue "${LB_MKRESCUE_LEVEL[@]}" --kernel "$KERNEL_DIR/vmlinuz" --modules "$KERNEL_DIR/modules" \
  --init "$LIFEBOAT_INIT" --output "$WORK/rescue" > "$LOGS/mkrescue.log" 2>&1 ||
  fail "lifeboat mkrescue failed: $(tail -n3 "$LOGS/mkrescue.log")"
[ -s "$WORK/rescue/vmlinuz" ] && [ -s "$WORK/rescue/initrd.img" ] || fail "lifeboat mkrescue wrote no image in $WORK/rescue"
size_of "recovery initrd" "$(human "$(stat -c %s "$WORK/rescue/initrd.img")")"
if [ "${COMPARE_PLAN:-0}" = 1 ]; then
  # Issue 9, test 7: the dry run on this side, with the same backup and the blank disk as loop
  # devices, for the comparison with the plan the image prints.
  gen_id=${generation%% *}
  loop_attach "$STORE" ro; store_loop=$REPLY
  loop_attach "$NEW"; new_loop=$REPLY
  "$LIFEBOAT" plan "$gen_id" --target-disk "$new_loop" --backup-device "$store_loop" --json \
    > "$WORK/agent-plan.json" 2> "$LOGS/agent-plan.err" ||
    fail "lifeboat plan $gen_id --target-disk $new_loop failed: $(cat "$LOGS/agent-plan.err")"
  detach_all
  ok "lifeboat plan --json on this side: $(grep -c '"id"' "$WORK/agent-plan.json") steps for $new_loop"
fi
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
virtio_disk "$STORE" disk1 "$STORE_SERIAL"
restore_args=("${DISKS[@]}" -net none -kernel "$WORK/rescue/vmlinuz" -initrd "$WORK/rescue/initrd.img"
  -append "console=ttyS0 panic=-1 lifeboat.restore=latest lifeboat.yes lifeboat.disk=$NEW_SERIAL lifeboat.after=poweroff")
first=restore
if [ "${CUT_RESTORE:-0}" = 1 ]; then
  # The plan is journalled step by step: a power cut during the root's extraction, then the
  # same boot again resumes at the step the cut stopped.
  first=restore-cut
  QEMU_CUT_AT='^Extracting \.\.\.' QEMU_CUT_DELAY=1 QEMU_GIVE_UP='Choose a backup' \
    qemu_run restore-cut "$RESTORE_TIMEOUT" "${restore_args[@]}"
  [ "$QEMU_CUT" = 1 ] || fail "the restore ended before the power cut (serial log: $LOGS/restore-cut.log)"
  cut_step=$(tr -d '\r' < "$LOGS/restore-cut.log" | grep -a -E '^Step [0-9]+/[0-9]+: ' | tail -n1 | grep -o -E '^Step [0-9]+/[0-9]+' | cut -d' ' -f2 | cut -d/ -f1)
  [ -n "$cut_step" ] || fail "the cut boot ran no step (serial log: $LOGS/restore-cut.log)"
  log_has restore-cut '^RESTORE COMPLETE' && fail "the cut boot completed the restore: no power cut in the middle"
  ok "power cut at step $cut_step of the plan: '$(log_line restore-cut '^Step [0-9]+/' | cut -c1-80)'"
fi
QEMU_GIVE_UP='Choose a backup' qemu_run restore "$RESTORE_TIMEOUT" "${restore_args[@]}"
log_has restore '^RESTORE COMPLETE' ||
  fail "the recovery image ended without 'RESTORE COMPLETE' (serial log: $LOGS/restore.log)"
if [ "${CUT_RESTORE:-0}" = 1 ]; then
  resumed=$(log_line restore '^Resuming at step ')
  [[ $resumed == "Resuming at step $cut_step/"* ]] ||
    fail "after the cut at step $cut_step the restore did not resume there: '${resumed:-no Resuming line}' (serial log: $LOGS/restore.log)"
  # The first step run (not counting the root and ESP made again before a resumed restore-root).
  first_step=$(tr -d '\r' < "$LOGS/restore.log" | grep -a -E '^Step [0-9]+/[0-9]+: ' | head -n1 | grep -o -E '^Step [0-9]+/')
  [ "$first_step" = "Step $cut_step/" ] || fail "the resumed boot ran '$first_step' first, not step $cut_step"
  log_has restore '^Step 1/' && fail "the resumed boot ran the plan's first step again"
  ok "the next boot: '$(echo "$resumed" | cut -c1-100)'"
fi
if [ "${COMPARE_PLAN:-0}" = 1 ]; then
  tr -d '\r' < "$LOGS/$first.log" | grep -a -m1 '^LIFEBOAT-PLAN ' | cut -d' ' -f2- > "$WORK/image-plan.json"
  [ -s "$WORK/image-plan.json" ] || fail "the recovery image printed no LIFEBOAT-PLAN line (serial log: $LOGS/$first.log)"
  python3 - "$WORK/agent-plan.json" "$WORK/image-plan.json" "$new_loop" "$store_loop" <<'EOF' ||
import json, re, sys
agent = json.load(open(sys.argv[1]))["plan"]
image = json.load(open(sys.argv[2]))
new, store = sys.argv[3], sys.argv[4]
def norm(v):
    # The same disks under their names here (loop devices) and in the VM (virtio).
    s = json.dumps(v, sort_keys=True)
    s = re.sub(re.escape(new) + r"p(\d+)", r"/dev/vda\1", s)
    s = re.sub(re.escape(new) + r"\b", "/dev/vda", s)
    s = re.sub(re.escape(store) + r"\b", "/dev/vdb", s)
    s = re.sub(r"\b" + re.escape(store.replace("/dev/", "")) + r"\b", "vdb", s)
    return json.loads(s)
# The machine and the disk's model/serial differ between this side and the VM: compared are
# what the plan does and with which identities.
keys = ["mode", "backup", "root_device", "esp_device", "root_identity", "identity_source", "steps", "notes"]
bad = [k for k in keys if norm(agent.get(k)) != norm(image.get(k))]
if agent["target_disk"]["size_bytes"] != image["target_disk"]["size_bytes"]:
    bad.append("target_disk.size_bytes")
for k in bad:
    print(f"{k}: agent {json.dumps(norm(agent.get(k)))[:400]}\n  image {json.dumps(norm(image.get(k)))[:400]}")
sys.exit(1 if bad else 0)
EOF
    fail "lifeboat plan --json and the recovery image's plan differ (above)"
  ok "the image's LIFEBOAT-PLAN equals lifeboat plan --json: $(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["mode"], len(p["steps"]), "steps")' "$WORK/image-plan.json")"
fi
say "$(log_line restore '^Restored ')"
ok "the recovery image restored unattended onto the blank disk and powered off"
if uefi; then
  vars_have_entry "$VARS" || fail "after the restore the variables hold no entry '$ENTRY_LABEL': the plan did not recreate it"
  ok "the restore wrote the boot entry '$ENTRY_LABEL' into the variables"
  phase 6 "Boot the host from the new disk, by the recreated boot entry"
else
  phase 6 "Boot the host from the new disk, through the recreated MBR boot code and BIOS boot partition"
fi
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
HOST_DISKS=("${DISKS[@]}")
# The inventory's BACKUP_PARTITION names the old disk by its serial: on the new disk it is absent
# until the inventory is updated (as after any disk replacement on XenServer).
HOST_CHECK="var-log=ok boot-efi=$(uefi && echo ok || echo none) swap=ok backup-partition=(ok|missing) lifeboat=ok"
# A firmware that finds nothing to boot says so: stop there rather than at the timeout.
QEMU_GIVE_UP='No bootable device|BdsDxe: failed to|No bootable option' \
  boot_host boot2-new-disk 'from the new disk' "
$(uefi && echo 'run efibootmgr -v')
run cat /proc/cmdline
"
log_has boot2-new-disk 'GNU GRUB|Welcome to GRUB' || fail "GRUB never showed on the console (serial log: $LOGS/boot2-new-disk.log)"
if uefi; then
# OVMF says on the serial console which entry it loads and starts ("BdsDxe: starting Boot0003
# "label" from HD(...)/\EFI\...").
bds() { tr -d '\r' < "$LOGS/$1.log" | grep -a -o -E 'BdsDxe: (loading|starting) Boot[0-9A-F]{4} .*' || true; }
starting=$(bds boot2-new-disk | grep '^BdsDxe: starting' || true)
[ -n "$starting" ] || fail "OVMF did not say which entry it booted (serial log: $LOGS/boot2-new-disk.log)"
[ "$(echo "$starting" | wc -l)" = 1 ] || fail "the firmware tried more than one entry: $(bds boot2-new-disk)"
[[ $starting == *"\"$ENTRY_LABEL\""* ]] ||
  fail "the firmware booted another entry than the recreated '$ENTRY_LABEL': '$starting'"
[[ $starting == *"$LOADER"* ]] || fail "the entry booted does not name GRUB's $LOADER: '$starting'"
ok "OVMF booted the recreated entry: '$starting'"
else
  ok "SeaBIOS started GRUB from the new disk's MBR: $(log_line boot2-new-disk 'Booting .XenServer' | grep -a -o "Booting .XenServer[^']*'")"
fi

phase 7 "Compare the new disk with the old one"
sgdisk -p "$NEW" > "$WORK/new-table.txt"
# The disk's own lines: its name and size, the last usable sector, the free space.
table_norm() { grep -v -E '^Disk .*: [0-9]+ sectors|last usable sector|^Total free space' "$1"; }
diff <(table_norm "$WORK/old-table.txt") <(table_norm "$WORK/new-table.txt") > "$LOGS/table.diff" ||
  fail "the partition table differs (old -> new): $(cat "$LOGS/table.diff")"
grep -q "Disk identifier (GUID)" "$WORK/new-table.txt" || fail "sgdisk -p prints no disk GUID for $NEW"
ok "partition table equal apart from the disk size: $(grep 'Disk identifier' "$WORK/new-table.txt"), $(grep -c '^ *[0-9]' "$WORK/new-table.txt") partitions"
say "old: $(grep 'last usable' "$WORK/old-table.txt")"
say "new: $(grep 'last usable' "$WORK/new-table.txt")"
for p in $parts; do
  identity "$NEW" "$p" > "$WORK/new-p$p.txt"
  diff "$WORK/old-p$p.txt" "$WORK/new-p$p.txt" > "$LOGS/p$p.diff" ||
    fail "partition $p differs (old -> new): $(cat "$LOGS/p$p.diff")"
  what=$(sed -n 's/^TYPE=//p' "$WORK/new-p$p.txt")
  label=$(sed -n 's/^LABEL=//p' "$WORK/new-p$p.txt")
  uuid=$(sed -n 's/^UUID=//p' "$WORK/new-p$p.txt")
  partuuid=$(sed -n 's/^Partition unique GUID: //p' "$WORK/new-p$p.txt")
  ok "p$p equal (sgdisk -i, blkid -p): PARTUUID $partuuid, ${what:-no filesystem}${label:+ $label}${uuid:+ $uuid}"
done
mount_part_ro "$NEW" $ROOT_PART "$WORK/mnt/restored"
mount_ro "$WORK/reference-root.img" "$WORK/mnt/reference"
compare_roots "$WORK/mnt/reference" "$WORK/mnt/restored"
detach_all
if uefi; then
  read -r esp_off_new _ < <(part_range "$NEW" $ESP_PART)
  esp_files "$NEW" "$esp_off_new" "$WORK/restored-esp" || fail "the new disk's ESP cannot be read"
  diff -r "$WORK/reference-esp" "$WORK/restored-esp" > "$LOGS/esp.diff" 2>&1 ||
    fail "the ESP differs after the restore: $(head -n 5 "$LOGS/esp.diff")"
  ok "the new ESP holds the same files as the old one ($(find "$WORK/restored-esp" -type f | wc -l) files, no fallback loader)"
else
  boot_code "$NEW" > "$WORK/new-boot-code.txt"
  diff "$WORK/old-boot-code.txt" "$WORK/new-boot-code.txt" > "$LOGS/boot-code.diff" ||
    fail "the BIOS boot chain differs (sha256, old -> new): $(cat "$LOGS/boot-code.diff")"
  ok "MBR boot code (440 bytes) and BIOS boot partition equal, byte for byte"
fi
end_phase

story_summary "$REPORT" "${green}${bold}A blank disk, 25% larger, got the host's whole layout back and boots it through $(uefi && echo 'its own UEFI entry' || echo 'its own GRUB in the BIOS boot partition').${reset}"
# Keep the serial logs and the report; drop the large images.
rm -f "$OLD" "$NEW" "$STORE" "$WORK/reference-root.img"
