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
. scripts/host/disk.sh
# shellcheck source=tests/lib/common.bash
. tests/lib/common.bash
# shellcheck source=tests/lib/qemu.bash
. tests/lib/qemu.bash

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
SERIAL=LBDEMO0001          # the disk serial mkhost.sh's inventory names (/dev/disk/by-id/virtio-...)
ROOT_PART=1 BACKUP_PART=2 SR_PART=3 ESP_PART=4 LOGS_PART=5

LIFEBOAT=$RELEASE_DIR/lifeboat
LIFEBOAT_INIT=$RELEASE_DIR/lifeboat-init
DISK=$WORK/host.img
VARS=$WORK/host-vars.fd
LOGS=$WORK/logs
REPORT=$WORK/report.txt

# --- output -------------------------------------------------------------------------------
story_start=$(date +%s)
phase_names=() phase_times=() verified=() sizes=()
current_phase='' phase_start=0
bold=; dim=; red=; green=; reset=
if [ -t 1 ]; then bold=$'\e[1m'; dim=$'\e[2m'; red=$'\e[31m'; green=$'\e[32m'; reset=$'\e[0m'; fi

phase() { # N TITLE
  end_phase
  current_phase="$1. $2"
  phase_start=$(date +%s)
  echo
  echo "${bold}[$1/7] $2${reset}"
}
end_phase() {
  [ -n "$current_phase" ] || return 0
  local t=$(($(date +%s) - phase_start))
  phase_names+=("$current_phase") phase_times+=("$t")
  echo "${dim}      ($current_phase: ${t}s)${reset}"
  current_phase=
}
say() { echo "      $*"; }
ok() { verified+=("$*"); echo "      ${green}ok${reset}  $*"; }
size_of() { sizes+=("$(printf '%-46s %s' "$1" "$2")"); say "$1: $2"; }
fail() {
  echo "${red}FAILED${reset} in phase ${current_phase:-setup}: $*" >&2
  echo "      serial logs: $LOGS/" >&2
  exit 1
}
human() { numfmt --to=iec-i --suffix=B "$1"; }

# --- cleanup of what the story attaches and mounts -------------------------------------------
# Loop devices: tests/lib/common.bash (loop_attach; detached at exit, with their mounts).
mounts=() qemu_pid=''
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null; done
}
on_exit cleanup
trap 'exit 130' INT TERM

attach() { # IMG PART [ro] -> the partition's device in $REPLY
  loop_attach "$1" "${3:-rw}"
  REPLY=${REPLY}p$2
  [ -b "$REPLY" ] || fail "$1 has no partition $2"
}
detach_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" || fail "cannot unmount ${mounts[i]}"; done
  mounts=()
  loop_detach_all
}
mount_ro() { # DEV-OR-IMAGE DIR
  local dev=$1
  mkdir -p "$2"
  if [ -f "$dev" ]; then loop_attach "$dev" ro; dev=$REPLY; fi
  mount -o ro,noload "$dev" "$2" 2>/dev/null || mount -o ro "$dev" "$2" || fail "cannot mount $1 on $2"
  mounts+=("$2")
}
# mount_part_ro IMG PART DIR: a partition of a disk image, read-only. Loop devices are shared
# with whatever else runs on the machine; if one is taken away under us (another program
# detaching "its" device by number), attach a fresh one and try again.
mount_part_ro() {
  local dev
  mkdir -p "$3"
  for _ in 1 2 3; do
    attach "$1" "$2" ro
    dev=$REPLY
    if mount -o ro,noload "$dev" "$3" 2>/dev/null || mount -o ro "$dev" "$3" 2>/dev/null; then
      mounts+=("$3")
      return 0
    fi
    loop_detach "${dev%p"$2"}"
    sleep 1
  done
  fail "cannot mount partition $2 of $1 on $3 (tried three loop devices)"
}

# --- QEMU ------------------------------------------------------------------------------------
# qemu_run NAME TIMEOUT ARGS...: runs a VM (tests/lib/qemu.bash: TCG, UEFI with the host's own
# variables file, serial on stdout) until it powers off or reboots (-no-reboot makes both end
# QEMU); shows the lines that tell the story as they come.
# The serial log is $LOGS/NAME.log.
story_lines='LIFEBOAT-DEMO|RESTORE|Creating|Running|Menu ready|Disks settled|Loading|[Ll]ifeboat|[Rr]estor|[Vv]erif|[Bb]ackup|generation|[Ee]rror|[Ff]ail|panic|PXE|TFTP|Welcome to GRUB|[Dd]one'
qemu_run() {
  local name=$1 timeout=$2; shift 2
  local log=$LOGS/$name.log
  : > "$log"
  lb_qemu --machine q35 --mem 512 --firmware uefi --vars "$VARS" --log "$log" --background -- \
    -smp 2 -drive file="$DISK",format=raw,if=none,id=disk0,cache=unsafe -device virtio-rng-pci "$@"
  qemu_pid=$LB_QEMU_PID
  local filter=(cat)
  [ "$STORY_VERBOSE" = 1 ] || filter=(grep -a --line-buffered -E "$story_lines")
  tail -n +1 -F --pid="$qemu_pid" "$log" 2>/dev/null | tr -d '\r' |
    sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -a --line-buffered -v -E '^\s*$|command-line|\*XenServer \(' | "${filter[@]}" |
    cut -c1-150 | sed -u "s/^/      ${dim}guest| /; s/\$/${reset}/" &
  local follower=$!
  local t=0 give_up='Kernel panic - not syncing|LIFEBOAT-DEMO-RESULT rc=[1-9]|RESTORE NOT DONE'
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ $((t % 5)) = 4 ] && grep -a -q -E "$give_up" "$log"; then
      sleep 3   # let the guest finish its sentence
      kill "$qemu_pid" 2>/dev/null
      wait "$qemu_pid" 2>/dev/null
      qemu_pid=
      wait "$follower" 2>/dev/null
      fail "the VM '$name' failed: $(grep -a -E "$give_up" "$log" | tr -d '\r' | head -n1) (serial log: $log)"
    fi
    if [ "$t" -ge "$timeout" ]; then
      kill "$qemu_pid" 2>/dev/null
      wait "$qemu_pid" 2>/dev/null
      qemu_pid=
      wait "$follower" 2>/dev/null
      fail "the VM '$name' did not finish within ${timeout}s (serial log: $log)"
    fi
    sleep 1
    t=$((t + 1))
  done
  local rc=0
  wait "$qemu_pid" || rc=$?
  qemu_pid=
  wait "$follower" 2>/dev/null || true
  [ "$rc" = 0 ] || fail "QEMU exited with status $rc (serial log: $log)"
}
host_disk_args=(-device "virtio-blk-pci,drive=disk0,serial=$SERIAL,bootindex=1")
log_has() { tr -d '\r' < "$LOGS/$1.log" | grep -a -q -E "$2"; }
log_line() { tr -d '\r' < "$LOGS/$1.log" | grep -a -E "$2" | tail -n1; }

# A boot of the host from its disk, with a one-shot script (handed over through QEMU's fw_cfg:
# nothing is written to the host's disk) that ends by powering the host off.
boot_host() { # NAME WHEN SCRIPT
  local name=$1 when=$2 commands=$3 script=$WORK/$1.on-boot.sh
  cat > "$script" <<EOF
. /etc/xensource-inventory
run() { echo "LIFEBOAT-DEMO-RUN \$*"; "\$@"; }
(
set -e
$commands
)
echo "LIFEBOAT-DEMO-RESULT rc=\$?"
sync
poweroff
EOF
  qemu_run "$name" "$BOOT_TIMEOUT" "${host_disk_args[@]}" -net none \
    -fw_cfg name=opt/lifeboat/on-boot,file="$script"
  log_has "$name" '^LIFEBOAT-DEMO-HOST-UP ' || fail "the host never said it was up (serial log: $LOGS/$name.log)"
  local up; up=$(log_line "$name" '^LIFEBOAT-DEMO-HOST-UP ')
  ok "$when: the host booted through OVMF and GRUB to its service: '${up}'"
  local check; check=$(log_line "$name" '^LIFEBOAT-DEMO-CHECK ')
  case "$check" in
    *missing*|"") fail "the host came up incomplete: '$check'" ;;
  esac
  ok "$when: fstab mounted /var/log (logs), /boot/efi (ESP) and swap by LABEL; BACKUP_PARTITION present; lifeboat runs"
  log_has "$name" '^LIFEBOAT-DEMO-RESULT rc=0' ||
    fail "a command inside the host failed: $(log_line "$name" 'LIFEBOAT-DEMO-RESULT') (serial log: $LOGS/$name.log)"
}

# --- tree listing (fallback comparer) -------------------------------------------------------
# One line per entry with everything the restore must keep: type, mode with special bits,
# numeric owner, size, mtime in ns, symlink target, device numbers, content hash, hardlink group,
# xattrs (ACLs and capabilities included) and the ext flags a user sets (i, a, ...).
tree_listing() { # DIR OUT [IGNORE-REGEX]
  local dir=$1 out=$2 ignore=${3:-'^$'}
  (
    cd "$dir"
    find . -xdev -printf '%p\0' | LC_ALL=C sort -z | grep -a -z -v -E "$ignore" |
      xargs -0 -r stat -c '%n|%F|%a|%u:%g|%s|%.9Y|%N|%t:%T|%h|%i|%b' |
      awk -F'|' -v OFS='|' '{
        # Regular files: size counts; directories: their size depends on the filesystem.
        if ($2 ~ /directory/) $5 = "-"
        if ($2 !~ /special/) $8 = "-"
        # Hardlinks: the inode number says nothing across filesystems; the group does.
        if ($9 > 1 && $2 !~ /directory/) { if (!($10 in first)) first[$10] = $1; $10 = "link:" first[$10] } else $10 = "-"
        if ($2 ~ /directory/) $9 = "-"
        # Sparse files stay sparse: fewer bytes allocated than their size says.
        $11 = ($2 ~ /regular/ && $11 * 512 < $5) ? "sparse" : "-"
        print
      }'
    echo "--- content"
    find . -xdev -type f -printf '%p\0' | LC_ALL=C sort -z | grep -a -z -v -E "$ignore" | xargs -0 -r sha256sum
    echo "--- xattrs"
    find . -xdev -printf '%p\0' | LC_ALL=C sort -z | grep -a -z -v -E "$ignore" |
      xargs -0 -r getfattr -h -d -m - -e hex 2>/dev/null
    echo "--- flags"
    find . -xdev \( -type f -o -type d \) -printf '%p\0' | LC_ALL=C sort -z | grep -a -z -v -E "$ignore" |
      xargs -0 -r lsattr -d 2>/dev/null | awk '{ f = $1; gsub(/[^iaAdSsuc]/, "", f); if (f != "") print f, $2 }'
  ) > "$out"
}

# --- the story ------------------------------------------------------------------------------
mkdir -p "$WORK" "$LOGS"
rm -f "$REPORT"
# Leftovers of an interrupted run: mounts below $WORK/mnt, loop devices on our images.
awk -v w="$(realpath -m "$WORK/mnt")" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
  while read -r m; do umount "$m" || true; done
for f in "$DISK" "$WORK/reference-root.img"; do
  if [ -e "$f" ]; then losetup -j "$f" -O NAME -n | xargs -r -n1 losetup -d; fi
done
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
rm -rf "$WORK/reference-esp" && mkdir -p "$WORK/reference-esp"
MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$DISK@@$esp_off" ::/ "$WORK/reference-esp/"
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
"$LIFEBOAT" mkrescue --kernel "$KERNEL_DIR/vmlinuz" --modules "$KERNEL_DIR/modules" \
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
qemu_run restore "$RESTORE_TIMEOUT" \
  -device virtio-blk-pci,drive=disk0,serial=$SERIAL,bootindex=2 \
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
# What legitimately differs, and why (each is left out on both sides):
#  - lost+found: made by mkfs, not part of any backup (the restore's mkfs makes a new one).
#  - the mount point boot/efi's own mode and mtime: the backup includes the ESP, so its entry
#    for boot/efi is the ESP's root directory, restored onto the ESP; the directory under it on
#    the root filesystem is made by the restore. The other mount points (dev, proc, sys, run, tmp,
#    var/log) are compared: the backup records the directories under them.
#  - tmp/*, var/crash/*, var/xsconfig/*, uuid-named files in var/xapi: the xe host-backup default
#    excludes, left out of the backup by design (mkhost.sh puts files there on purpose).
mountpoints=(dev proc sys run tmp var/log boot/efi)
for m in "${mountpoints[@]}"; do
  [ -d "$WORK/mnt/restored/$m" ] && [ ! -L "$WORK/mnt/restored/$m" ] ||
    fail "the mount point /$m is missing from the restored root"
done
ok "the mount points exist in the restored root: ${mountpoints[*]/#//}"
uuid_file=var/xapi/$(sed -n "s/^INSTALLATION_UUID='\(.*\)'/\1/p" "$WORK/mnt/reference/etc/xensource-inventory")
ignored=(lost+found boot/efi var/crash var/xsconfig "$uuid_file")
ignore="^\./(lost\+found(/|\$)|boot/efi\$|tmp/.|var/crash/.|var/xsconfig/.|$uuid_file\$)"
compare_tool=
if [ -e tests/src/bin/lbtest-compare.rs ]; then
  cargo build -q --locked -p lifeboat-tests --bin lbtest-compare 2>"$LOGS/lbtest-compare-build.log" ||
    fail "cannot build the tree comparer: $(tail -n3 "$LOGS/lbtest-compare-build.log")"
  compare_tool=target/debug/lbtest-compare
fi
if [ -n "$compare_tool" ]; then
  ignore_args=()
  for i in "${ignored[@]}"; do ignore_args+=(--ignore "$i"); done
  "$compare_tool" "$WORK/mnt/reference" "$WORK/mnt/restored" "${ignore_args[@]}" > "$LOGS/compare.log" 2>&1 ||
    fail "lbtest-compare found differences (all in $LOGS/compare.log): $(head -n 20 "$LOGS/compare.log")"
  ok "lbtest-compare: $(tail -n1 "$LOGS/compare.log")"
fi
tree_listing "$WORK/mnt/reference" "$WORK/listing-reference.txt" "$ignore"
tree_listing "$WORK/mnt/restored" "$WORK/listing-restored.txt" "$ignore"
if ! diff -u "$WORK/listing-reference.txt" "$WORK/listing-restored.txt" > "$WORK/listing.diff"; then
  echo "      differences (reference -> restored), first lines of $WORK/listing.diff:"
  grep -a '^[-+][^-+]' "$WORK/listing.diff" | head -n 30 | sed 's/^/        /'
  fail "the restored root differs from the captured tree"
fi
entries=$(grep -a -c '|' "$WORK/listing-reference.txt" || true)
ok "every one of $entries entries equal: type, mode, owner, size, mtime (ns), link targets, devices, content, hardlinks, xattrs/ACLs/capabilities, ext flags"
ok "left out on both sides: lost+found (mkfs), boot/efi's own mode/mtime (the ESP's root is restored onto the ESP), tmp/*, var/crash/*, var/xsconfig/*, $uuid_file (xe host-backup excludes)"
detach_all
rm -rf "$WORK/restored-esp" && mkdir -p "$WORK/restored-esp"
MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$DISK@@$esp_off" ::/ "$WORK/restored-esp/" ||
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
{
  echo
  echo "${bold}Summary${reset}"
  echo "  Times:"
  for i in "${!phase_names[@]}"; do printf '    %-78s %5ss\n' "${phase_names[i]}" "${phase_times[i]}"; done
  printf '    %-78s %5ss\n' "total" "$(($(date +%s) - story_start))"
  echo "  Sizes:"
  for s in "${sizes[@]}"; do echo "    $s"; done
  echo "  Verified:"
  for v in "${verified[@]}"; do echo "    - $v"; done
  if [ "$STORY_STUB" = 1 ]; then
    echo "STORY_STUB=1: the harness works; no backup was taken and no recovery image was booted."
  else
    echo "${green}${bold}The host was backed up, broken, restored by PXE and boots again with the same root.${reset}"
  fi
} | tee >(sed 's/\x1b\[[0-9;]*m//g' > "$REPORT")
