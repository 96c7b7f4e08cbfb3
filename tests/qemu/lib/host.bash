# shellcheck shell=bash
# The virtual XenServer-style host (scripts/mkhost.sh) under QEMU: what scripts/story.sh
# (`make demo`, tests/qemu/90-full-cycle.sh) and the new-disk tests (tests/qemu/39-*.sh) share.
# Sourced, never run. QEMU runs under TCG only (tests/lib/qemu.bash).
#
# The caller sets, before sourcing: WORK (work directory), LOGS (serial logs), VARS (the UEFI
# variables file of the host's boots), BOOT_TIMEOUT, STORY_VERBOSE (1: every guest line), and
# optionally PHASES (how many phases, for "[N/PHASES]"; default 7).
#
#   phase N TITLE, end_phase, say, ok, size_of, fail, human    the story's output; ok and size_of
#                                                             are kept for story_summary
#   attach IMG PART [ro], mount_ro, mount_part_ro IMG PART DIR, detach_all
#   virtio_disk FILE ID SERIAL [BOOTINDEX]   appends a raw virtio disk to the array DISKS
#   qemu_run NAME TIMEOUT QEMU-ARG...       a VM (q35, UEFI with $VARS) until it powers off;
#                                           $LOGS/NAME.log; the disks come in the arguments
#   boot_host NAME WHEN SCRIPT              boots the host from the disks in HOST_DISKS (an
#                                           array of QEMU arguments), runs SCRIPT inside, powers off
#   log_has NAME REGEX, log_line NAME REGEX
#   tree_listing DIR OUT [IGNORE-REGEX]
#   compare_roots REFERENCE-DIR RESTORED-DIR   every entry equal (lbtest-compare and tree_listing)
#   esp_files IMG OFFSET DIR                 copies the files of the FAT filesystem at OFFSET
#   story_summary REPORT LAST-LINE
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a library: source it" >&2
  exit 2
fi
# shellcheck source=tests/lib/common.bash
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.bash"
# shellcheck source=tests/lib/qemu.bash
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/qemu.bash"
# shellcheck source=scripts/host/disk.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/host/disk.sh"

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
  echo "${bold}[$1/${PHASES:-7}] $2${reset}"
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

story_summary() { # REPORT LAST-LINE
  {
    echo
    echo "${bold}Summary${reset}"
    echo "  Times:"
    local i s v
    for i in "${!phase_names[@]}"; do printf '    %-78s %5ss\n' "${phase_names[i]}" "${phase_times[i]}"; done
    printf '    %-78s %5ss\n' "total" "$(($(date +%s) - story_start))"
    echo "  Sizes:"
    for s in "${sizes[@]}"; do echo "    $s"; done
    echo "  Verified:"
    for v in "${verified[@]}"; do echo "    - $v"; done
    echo "$2"
  } | tee >(sed 's/\x1b\[[0-9;]*m//g' > "$1")
}

# --- cleanup of what the story attaches and mounts -------------------------------------------
# Loop devices: tests/lib/common.bash (loop_attach; detached at exit, with their mounts).
mounts=() qemu_pid=''
story_cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null; done
}
on_exit story_cleanup
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
# Leftovers of an interrupted run: mounts below $WORK/mnt, loop devices on the given images.
story_leftovers() { # IMAGE...
  awk -v w="$(realpath -m "$WORK/mnt")" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount "$m" || true; done
  local f
  for f in "$@"; do
    if [ -e "$f" ]; then losetup -j "$f" -O NAME -n | xargs -r -n1 losetup -d; fi
  done
}

# --- QEMU ------------------------------------------------------------------------------------
# virtio_disk FILE ID SERIAL [BOOTINDEX]: the QEMU arguments of a raw virtio disk, appended to
# the array DISKS. Without BOOTINDEX the firmware's own boot order decides.
virtio_disk() {
  DISKS+=(-drive "file=$1,format=raw,if=none,id=$2,cache=unsafe"
    -device "virtio-blk-pci,drive=$2,serial=$3${4:+,bootindex=$4}")
}

# qemu_run NAME TIMEOUT ARGS...: runs a VM (tests/lib/qemu.bash: TCG, q35, UEFI with the
# variables file $VARS, or SeaBIOS when FIRMWARE=bios; serial on stdout) until it powers off or reboots (-no-reboot makes both
# end QEMU); shows the lines that tell the story as they come. The disks are in ARGS.
# The serial log is $LOGS/NAME.log; QEMU_RUN_SECS is how long it ran. Optional: MACHINE_UUID and
# MACHINE_SERIAL (the machine's SMBIOS identity, the same in every boot), QEMU_GIVE_UP (an
# extended regexp: the VM is stopped and the run fails when its console shows it), QEMU_CUT_AT
# (an extended regexp: QEMU_CUT_DELAY seconds after the console shows it, the VM is killed
# with SIGKILL, a power cut, and the run returns with QEMU_CUT=1).
story_lines='LIFEBOAT-DEMO|RESTORE|Creating|Running|Menu ready|Disks settled|Loading|[Ll]ifeboat|[Rr]estor|[Vv]erif|[Bb]ackup|generation|[Ee]rror|[Ff]ail|panic|PXE|TFTP|Welcome to GRUB|[Dd]one|BdsDxe|[Pp]lan|[Ss]tep'
qemu_run() {
  local name=$1 timeout=$2; shift 2
  local log=$LOGS/$name.log t_start
  : > "$log"
  t_start=$(date +%s)
  local fw=(--firmware uefi --vars "${VARS:?}")
  [ "${FIRMWARE:-uefi}" = bios ] && fw=(--firmware bios)
  lb_qemu --machine q35 --mem 512 "${fw[@]}" --log "$log" --background \
    ${MACHINE_UUID:+--smbios-uuid "$MACHINE_UUID"} ${MACHINE_SERIAL:+--smbios-serial "$MACHINE_SERIAL"} -- \
    -smp 2 -device virtio-rng-pci "$@"
  qemu_pid=$LB_QEMU_PID
  local filter=(cat)
  [ "$STORY_VERBOSE" = 1 ] || filter=(grep -a --line-buffered -E "$story_lines")
  tail -n +1 -F --pid="$qemu_pid" "$log" 2>/dev/null | tr -d '\r' |
    sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -a --line-buffered -v -E '^\s*$|command-line|\*XenServer \(' | "${filter[@]}" |
    sed -u -e 's/^\(.\{150\}\).*/\1/' -e "s/^/      ${dim}guest| /; s/\$/${reset}/" &
  local follower=$!
  local t=0 give_up="Kernel panic - not syncing|LIFEBOAT-DEMO-RESULT rc=[1-9]|RESTORE NOT DONE${QEMU_GIVE_UP:+|$QEMU_GIVE_UP}"
  QEMU_CUT=0
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ -n "${QEMU_CUT_AT:-}" ] && grep -a -q -E "$QEMU_CUT_AT" "$log"; then
      sleep "${QEMU_CUT_DELAY:-0}"
      if kill -9 "$qemu_pid" 2>/dev/null; then
        wait "$qemu_pid" 2>/dev/null || true
        qemu_pid=
        wait "$follower" 2>/dev/null || true
        # shellcheck disable=SC2034 # read by the caller
        QEMU_CUT=1
        say "${dim}($name: power cut ${QEMU_CUT_DELAY:-0}s after /$QEMU_CUT_AT/)${reset}"
        return 0
      fi
    fi
    if [ $((t % 5)) = 4 ] && grep -a -q -E "$give_up" "$log"; then
      sleep 3   # let the guest finish its sentence
      kill "$qemu_pid" 2>/dev/null
      wait "$qemu_pid" 2>/dev/null
      qemu_pid=
      wait "$follower" 2>/dev/null || true
      fail "the VM '$name' failed: $(grep -a -E "$give_up" "$log" | tr -d '\r' | head -n1) (serial log: $log)"
    fi
    if [ "$t" -ge "$timeout" ]; then
      kill "$qemu_pid" 2>/dev/null
      wait "$qemu_pid" 2>/dev/null
      qemu_pid=
      wait "$follower" 2>/dev/null || true
      fail "the VM '$name' did not finish within ${timeout}s (serial log: $log)"
    fi
    sleep 1
    t=$((t + 1))
  done
  local rc=0
  wait "$qemu_pid" || rc=$?
  qemu_pid=
  wait "$follower" 2>/dev/null || true
  QEMU_RUN_SECS=$(($(date +%s) - t_start))
  say "${dim}($name: QEMU ran ${QEMU_RUN_SECS}s)${reset}"
  [ "$rc" = 0 ] || fail "QEMU exited with status $rc (serial log: $log)"
}
# grep reads the whole log (no -q): with pipefail, tr killed by SIGPIPE after an early match
# would turn a match into a failure on logs larger than a pipe buffer.
log_has() { tr -d '\r' < "$LOGS/$1.log" | grep -a -E "$2" >/dev/null; }
log_line() { tr -d '\r' < "$LOGS/$1.log" | grep -a -E "$2" | tail -n1; }

# A boot of the host from the disks in HOST_DISKS, with a one-shot script (handed over through
# QEMU's fw_cfg: nothing is written to the host's disk) that ends by powering the host off.
# HOST_CHECK (an extended regexp, optional) is what the host's LIFEBOAT-DEMO-CHECK line must
# match; by default every check must be ok.
boot_host() { # NAME WHEN SCRIPT
  local name=$1 when=$2 commands=$3 script=$WORK/$1.on-boot.sh
  cat > "$script" <<SCRIPT
. /etc/xensource-inventory
run() { echo "LIFEBOAT-DEMO-RUN \$*"; "\$@"; }
(
set -e
$commands
)
echo "LIFEBOAT-DEMO-RESULT rc=\$?"
sync
poweroff
SCRIPT
  qemu_run "$name" "$BOOT_TIMEOUT" "${HOST_DISKS[@]}" -net none \
    -fw_cfg name=opt/lifeboat/on-boot,file="$script"
  log_has "$name" '^LIFEBOAT-DEMO-HOST-UP ' || fail "the host never said it was up (serial log: $LOGS/$name.log)"
  local up; up=$(log_line "$name" '^LIFEBOAT-DEMO-HOST-UP ')
  local fw_name=OVMF; [ "${FIRMWARE:-uefi}" = bios ] && fw_name=SeaBIOS
  ok "$when: the host booted through $fw_name and GRUB to its service: '${up}'"
  local check; check=$(log_line "$name" '^LIFEBOAT-DEMO-CHECK ')
  if [ -n "${HOST_CHECK:-}" ]; then
    [[ $check =~ $HOST_CHECK ]] || fail "the host came up incomplete: '$check'"
    ok "$when: the host's checks: ${check#LIFEBOAT-DEMO-CHECK }"
  else
    case "$check" in
      *missing*|"") fail "the host came up incomplete: '$check'" ;;
    esac
    ok "$when: fstab mounted /var/log (logs), /boot/efi (ESP) and swap by LABEL; BACKUP_PARTITION present; lifeboat runs"
  fi
  log_has "$name" '^LIFEBOAT-DEMO-RESULT rc=0' ||
    fail "a command inside the host failed: $(log_line "$name" 'LIFEBOAT-DEMO-RESULT') (serial log: $LOGS/$name.log)"
}

# --- comparisons ----------------------------------------------------------------------------
# One line per entry with everything the restore must keep: type, mode with special bits,
# numeric owner, size, mtime in ns, symlink target, device numbers, content hash, hardlink group,
# xattrs (ACLs and capabilities included) and the ext flags a user sets (i, a, ...).
tree_listing() { # DIR OUT [IGNORE-REGEX]
  local dir=$1 out=$2 ignore=${3:-'^$'}
  (
    cd "$dir" || exit 1
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

# compare_roots REFERENCE RESTORED: the restored root (a mounted directory) holds every entry of
# the captured one, equal in everything the restore keeps. What legitimately differs, and why
# (each is left out on both sides):
#  - lost+found: made by mkfs, not part of any backup (the restore's mkfs makes a new one).
#  - the mount point boot/efi's own mode and mtime: the backup includes the ESP, so its entry
#    for boot/efi is the ESP's root directory, restored onto the ESP; the directory under it on
#    the root filesystem is made by the restore. The other mount points (dev, proc, sys, run, tmp,
#    var/log) are compared: the backup records the directories under them.
#  - tmp/*, var/crash/*, var/xsconfig/*, uuid-named files in var/xapi: the xe host-backup default
#    excludes, left out of the backup by design (mkhost.sh puts files there on purpose).
compare_roots() {
  local ref=$1 got=$2 m i
  local mountpoints=(dev proc sys run tmp var/log boot/efi)
  for m in "${mountpoints[@]}"; do
    [ -d "$got/$m" ] && [ ! -L "$got/$m" ] || fail "the mount point /$m is missing from the restored root"
  done
  ok "the mount points exist in the restored root: ${mountpoints[*]/#//}"
  local uuid_file
  uuid_file=var/xapi/$(sed -n "s/^INSTALLATION_UUID='\(.*\)'/\1/p" "$ref/etc/xensource-inventory")
  # var/lib/lifeboat: lifeboat writes state.json there after the backup it describes.
  local ignored=(lost+found boot/efi var/crash var/xsconfig var/lib/lifeboat "$uuid_file")
  local ignore="^\./(lost\+found(/|\$)|boot/efi\$|tmp/.|var/crash/.|var/xsconfig/.|var/lib/lifeboat(/|\$)|$uuid_file\$)"
  cargo build -q --locked -p lifeboat-tests --bin lbtest-compare 2>"$LOGS/lbtest-compare-build.log" ||
    fail "cannot build the tree comparer: $(tail -n3 "$LOGS/lbtest-compare-build.log")"
  local ignore_args=()
  for i in "${ignored[@]}"; do ignore_args+=(--ignore "$i"); done
  target/debug/lbtest-compare "$ref" "$got" "${ignore_args[@]}" > "$LOGS/compare.log" 2>&1 ||
    fail "lbtest-compare found differences (all in $LOGS/compare.log): $(head -n 20 "$LOGS/compare.log")"
  ok "lbtest-compare: $(tail -n1 "$LOGS/compare.log")"
  tree_listing "$ref" "$WORK/listing-reference.txt" "$ignore"
  tree_listing "$got" "$WORK/listing-restored.txt" "$ignore"
  if ! diff -u "$WORK/listing-reference.txt" "$WORK/listing-restored.txt" > "$WORK/listing.diff"; then
    echo "      differences (reference -> restored), first lines of $WORK/listing.diff:"
    grep -a '^[-+][^-+]' "$WORK/listing.diff" | head -n 30 | sed 's/^/        /'
    fail "the restored root differs from the captured tree"
  fi
  local entries
  entries=$(grep -a -c '|' "$WORK/listing-reference.txt" || true)
  ok "every one of $entries entries equal: type, mode, owner, size, mtime (ns), link targets, devices, content, hardlinks, xattrs/ACLs/capabilities, ext flags"
  ok "left out on both sides: lost+found (mkfs), boot/efi's own mode/mtime (the ESP's root is restored onto the ESP), tmp/*, var/crash/*, var/xsconfig/*, $uuid_file (xe host-backup excludes)"
}

# esp_files IMG OFFSET DIR: the files of the FAT filesystem at byte OFFSET of IMG, copied into
# DIR with mtools (the build machine's kernel may have no vfat).
esp_files() {
  rm -rf "$3" && mkdir -p "$3"
  MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$1@@$2" ::/ "$3/"
}
