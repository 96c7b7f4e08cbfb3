#!/bin/bash
# `DAMAGE=disk make demo` and tests/qemu/46-disaster-repo.sh. Issue 10, the disaster story: backups that outlive the host. The virtual host (scripts/mkhost.sh,
# BIOS) backs up to its second disk; the generation is pushed to the repository on a real S3
# server (radosgw, scripts/s3-server.sh, on 127.0.0.1, which QEMU's user network shows the guest
# as 10.0.2.2); then BOTH disks are lost and a blank one replaces them. The recovery image
# (`lifeboat mkrescue --repo-config ... --repo-credentials ... --repo-identity ...
# --repo-fleet-key ...`: kernel, initrd.img and repo.img given to QEMU directly, the second
# initrd concatenated to the first) gets an address by DHCP from QEMU's user network, finds this
# host's latest generation in the repository, verifies it by streaming it whole (nothing written),
# streams it again onto the blank disk through the restore plan (the whole recorded layout,
# lifeboat.disk=), and the host boots again through its own GRUB to its service line. Its root
# is compared entry by entry with the old one. No credential is on the kernel command line.
# The restore is a per-host unattended entry (lifeboat.request=): a power cut during its copy
# step, then the same entry resumes at that step from the restore journal the image keeps in
# the repository, and once more boots as done without restoring.
# Phase 9: the administrator has only the repository's recovery key, protected by a passphrase,
# on a USB stick. The image is built from Debian's GENERIC kernel (real-hardware drivers:
# e1000e, usb-storage) with `mkrescue --pxe` and repo.img carrying no identity; the machine, on
# an e1000e NIC, boots it by PXE: "Restore from network" finds the key file on the stick, a wrong
# passphrase then the right one, this machine's generation listed first as matched by its DMI
# UUID (with its plan), a second host of the fleet under "Other hosts' generations", nothing
# written.
# One boot per scenario. QEMU under TCG only.
set -euo pipefail
cd "$(dirname "$0")/.."
FIRMWARE=bios
WORK=${WORK:-build/test-disaster-repo}
KERNEL_DIR=${KERNEL_DIR:-build/kernel}
GENERIC_KERNEL_DIR=${GENERIC_KERNEL_DIR:-build/kernel-generic}
RELEASE_DIR=${RELEASE_DIR:-target/x86_64-unknown-linux-musl/release}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-400}
RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-1500}
STORY_VERBOSE=${STORY_VERBOSE:-0}
PHASES=9
OLD_SERIAL=LBDEMO0001
NEW_SERIAL=LBNEWDISK0009
STORE_SERIAL=LBSTORE0003
MACHINE_UUID=7a0c51e2-9d3b-4c8e-b1f6-2e4d8a9c0b17
MACHINE_SERIAL=LBDISASTER-HOST-1
ROOT_PART=1
REQUEST=20261203-0900-d1s4
LIFEBOAT=$RELEASE_DIR/lifeboat
LIFEBOAT_INIT=$RELEASE_DIR/lifeboat-init
OLD=$WORK/old-disk.img
NEW=$WORK/new-disk.img
STORE=$WORK/store-disk.img
LOGS=$WORK/logs
REPORT=$WORK/report.txt
S3DIR=$WORK/s3
VARS=$WORK/unused-vars.fd  # qemu_run names it; a BIOS host has none
[ "$(id -u)" = 0 ] || { echo "FAIL: $0 needs root (loop devices, mounts)" >&2; exit 1; }
rm -rf "$LOGS" "$WORK/keys" "$WORK/rescue"
mkdir -p "$WORK" "$LOGS" "$WORK/keys"
# shellcheck source=tests/qemu/lib/host.bash
. tests/qemu/lib/host.bash
story_leftovers "$OLD" "$NEW" "$STORE" "$WORK/reference-root.img"
on_exit "bash scripts/s3-server.sh stop '$S3DIR' >/dev/null 2>&1"
for f in "$LIFEBOAT" "$LIFEBOAT_INIT"; do [ -x "$f" ] || fail "$f is missing: run 'make build'"; done
[ -s "$KERNEL_DIR/version" ] || fail "no kernel in $KERNEL_DIR: run 'make kernel'"
[ -s "$GENERIC_KERNEL_DIR/version" ] || fail "no generic kernel in $GENERIC_KERNEL_DIR: run 'make kernel'"
command -v radosgw >/dev/null || fail "radosgw is not installed (make setup)"

phase 1 "Build the host disk (BIOS), a blank store disk; start radosgw"
LIFEBOAT_BIN=$LIFEBOAT KERNEL_DIR=$KERNEL_DIR bash scripts/mkhost.sh --bios "$OLD" | sed 's/^/      /'
rm -f "$STORE" "$NEW"
truncate -s 1G "$STORE"
bash scripts/s3-server.sh start "$S3DIR" > "$LOGS/s3-start.log" 2>&1 ||
  fail "the S3 server did not start: $(tail -n 5 "$LOGS/s3-start.log") (logs: $S3DIR/log)"
eval "$(bash scripts/s3-server.sh env "$S3DIR")"
EP=$LIFEBOAT_TEST_S3_ENDPOINT
PORT=${EP##*:}
URL="s3://$LIFEBOAT_TEST_S3_BUCKET/disaster-$$"
ok "radosgw at $EP (the guest reaches it as http://10.0.2.2:$PORT)"

phase 2 "Boot the host, back up to its second disk"
DISKS=()
virtio_disk "$OLD" disk0 "$OLD_SERIAL" 1
virtio_disk "$STORE" disk1 "$STORE_SERIAL"
HOST_DISKS=("${DISKS[@]}")
HOST_CHECK='var-log=ok boot-efi=none swap=ok backup-partition=ok lifeboat=ok'
# shellcheck disable=SC2016 # the script runs in the guest: its variables are the guest's
boot_host boot1-backup "first boot" '
store=$(readlink -f /dev/disk/by-id/virtio-'"$STORE_SERIAL"')
run lifeboat init-store --backup-device "$store"
run lifeboat backup --backup-device "$store"
run lifeboat list --backup-device "$store"
'
generation=$(log_line boot1-backup '^[0-9]{8}T[0-9]{6}Z ' | tr -s ' ')
[ -n "$generation" ] || fail "lifeboat list shows no generation after the backup (serial log: $LOGS/boot1-backup.log)"
gen_id=${generation%% *}
ok "generation $gen_id on the second disk"

phase 3 "Push the generation to the repository; capture the old root"
export AWS_SHARED_CREDENTIALS_FILE
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
CFG=$WORK/keys/lifeboat.toml
cat > "$CFG" <<TOML
[repository]
url = "$URL"
[repository.s3]
endpoint = "$EP"
path_style = true
TOML
export LIFEBOAT_CONFIG=$CFG
K=(--fleet-key "$WORK/keys/fleet.key" --identity "$WORK/keys/host.key")
"$LIFEBOAT" repo init "${K[@]}" > "$LOGS/repo-init.log" 2>&1 || fail "repo init: $(cat "$LOGS/repo-init.log")"
loop_attach "$STORE"; store_loop=$REPLY
t0=$SECONDS
"$LIFEBOAT" push "$gen_id" --backup-device "$store_loop" "${K[@]}" > "$LOGS/push.log" 2>&1 ||
  fail "lifeboat push: $(cat "$LOGS/push.log")"
size_of "push to radosgw" "$((SECONDS - t0)) s: $(tail -n1 "$LOGS/push.log")"
# A second host of the fleet (another machine): joins with its own identity and backs up a small
# tree (into its own small store, then pushed: LIFEBOAT_CONFIG names the repository).
K2=(--fleet-key "$WORK/keys/fleet.key" --identity "$WORK/keys/other-host.key")
rm -rf "$WORK/other-root" && mkdir -p "$WORK/other-root/etc" "$WORK/other-root/srv"
echo xs-other > "$WORK/other-root/etc/hostname"
for i in 1 2 3; do echo "the other host's file $i" > "$WORK/other-root/srv/f$i"; done
rm -f "$WORK/other-store.img" && truncate -s 64M "$WORK/other-store.img"
loop_attach "$WORK/other-store.img"; other_loop=$REPLY
{ "$LIFEBOAT" repo join "${K2[@]}" && "$LIFEBOAT" init-store --backup-device "$other_loop" &&
  "$LIFEBOAT" backup --root "$WORK/other-root" --backup-device "$other_loop" "${K2[@]}"; } > "$LOGS/other-host.log" 2>&1 ||
  fail "the second host's join and backup: $(tail -n5 "$LOGS/other-host.log")"
detach_all
rm -f "$WORK/other-store.img"
other_gen=$(grep -o -E '^generation [0-9]{8}T[0-9]{6}Z pushed' "$LOGS/other-host.log" | cut -d' ' -f2)
[ -n "$other_gen" ] || fail "the second host's generation was not pushed: $(cat "$LOGS/other-host.log")"
ok "a second host of the fleet (xs-other, its own identity from repo join) pushed generation $other_gen"
"$LIFEBOAT" list "${K[@]}" --repo "$URL" > "$LOGS/list-repo.log" 2>&1 || fail "list --repo: $(cat "$LOGS/list-repo.log")"
grep -q "$gen_id" "$LOGS/list-repo.log" || fail "list --repo does not show $gen_id: $(cat "$LOGS/list-repo.log")"
ok "generation $gen_id is in $URL (lifeboat list --repo)"
read -r root_off root_size < <(part_range "$OLD" $ROOT_PART)
rm -f "$WORK/reference-root.img"
dd if="$OLD" of="$WORK/reference-root.img" bs=1M skip=$((root_off / 1048576)) count=$((root_size / 1048576)) conv=sparse status=none
sgdisk -p "$OLD" > "$WORK/old-table.txt"

phase 4 "Disaster: both disks are gone; a blank disk, 25% larger, replaces them"
old_size=$(stat -c %s "$OLD")
new_size=$((old_size * 5 / 4 / 1048576 * 1048576))
rm -f "$OLD" "$STORE"
truncate -s "$new_size" "$NEW"
[ -z "$(blkid -p "$NEW" 2>/dev/null)" ] || fail "the new disk is not blank"
size_of "old disk / new disk" "$(human "$old_size") / $(human "$new_size")"

phase 5 "Restore from the repository over the network (DHCP) onto the blank disk"
# What the image reads: the endpoint as the guest sees the host's loopback.
sed "s|^endpoint = .*|endpoint = \"http://10.0.2.2:$PORT\"|" "$CFG" > "$WORK/keys/image.toml"
"$LIFEBOAT" mkrescue "${LB_MKRESCUE_LEVEL[@]}" --kernel "$KERNEL_DIR/vmlinuz" --modules "$KERNEL_DIR/modules" \
  --init "$LIFEBOAT_INIT" --output "$WORK/rescue" \
  --repo-config "$WORK/keys/image.toml" --repo-credentials "$AWS_SHARED_CREDENTIALS_FILE" \
  --repo-identity "$WORK/keys/host.key" --repo-fleet-key "$WORK/keys/fleet.key" > "$LOGS/mkrescue.log" 2>&1 ||
  fail "lifeboat mkrescue failed: $(tail -n3 "$LOGS/mkrescue.log")"
[ -s "$WORK/rescue/repo.img" ] || fail "mkrescue --repo-config wrote no $WORK/rescue/repo.img"
[ "$(stat -c %a "$WORK/rescue/repo.img")" = 600 ] || fail "repo.img is mode $(stat -c %a "$WORK/rescue/repo.img"), not 600"
grep -q 'virtio_net' "$WORK/rescue/initrd.list" ||
  fail "the image has no virtio_net module ($WORK/rescue/initrd.list)"
# Two initrds in one file, as a boot loader loads them: the kernel finds the second cpio only at
# a 4-byte boundary after the first (zero bytes between them are skipped).
cp "$WORK/rescue/initrd.img" "$WORK/rescue/initrd+repo.img"
truncate -s $((($(stat -c %s "$WORK/rescue/initrd.img") + 3) / 4 * 4)) "$WORK/rescue/initrd+repo.img"
cat "$WORK/rescue/repo.img" >> "$WORK/rescue/initrd+repo.img"
size_of "recovery initrd / repo.img" "$(human "$(stat -c %s "$WORK/rescue/initrd.img")") / $(stat -c %s "$WORK/rescue/repo.img") bytes"
# The per-host unattended entry of this machine, as `mkrescue --request` writes it: it runs once.
append="console=ttyS0 panic=-1 lifeboat.restore=latest lifeboat.yes lifeboat.disk=$NEW_SERIAL lifeboat.after=poweroff lifeboat.request=$REQUEST"
SECRET=$(sed -n 's/^aws_secret_access_key *= *//p' "$AWS_SHARED_CREDENTIALS_FILE")
[[ $append != *"$SECRET"* ]] || fail "the secret is on the kernel command line"
image_args=(-netdev "user,id=n0" -device "virtio-net-pci,netdev=n0"
  -kernel "$WORK/rescue/vmlinuz" -initrd "$WORK/rescue/initrd+repo.img" -append "$append")
no_journal='REPOSITORY NOT READ|NETWORK NOT UP|Initramfs unpacking failed|No backups were found|NOT RESTORING UNATTENDED|RESTORE JOURNAL NOT WRITTEN'
# A power cut while the root is streamed from the repository onto the new disk.
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
QEMU_CUT_AT='^Extracting from ' QEMU_CUT_DELAY=3 QEMU_GIVE_UP="Choose a backup|RESTORE COMPLETE|$no_journal" \
  qemu_run restore-cut "$RESTORE_TIMEOUT" "${DISKS[@]}" "${image_args[@]}"
[ "$QEMU_CUT" = 1 ] || fail "the restore ended before the power cut (serial log: $LOGS/restore-cut.log)"
net=$(log_line restore-cut '^Network: ')
[[ $net == *"(DHCP)"* ]] || fail "the image got no address by DHCP: '${net:-no Network line}' (serial log: $LOGS/restore-cut.log)"
ok "$net"
log_has restore-cut "^Repository $URL: [0-9]+ generation" || fail "the image did not list the repository (serial log: $LOGS/restore-cut.log)"
ok "$(log_line restore-cut "^Repository $URL: ")"
log_has restore-cut "^Verifying generation $gen_id from $URL" || fail "the image did not verify $gen_id from the repository first"
v=$(tr -d '\r' < "$LOGS/restore-cut.log" | grep -a -n -E '^Verified: ' | head -n1 | cut -d: -f1)
w=$(tr -d '\r' < "$LOGS/restore-cut.log" | grep -a -n -E '^Step [0-9]+/' | head -n1 | cut -d: -f1)
[ -n "$v" ] && [ -n "$w" ] && [ "$v" -lt "$w" ] || fail "no verify verdict before the first step (lines ${v:-none} / ${w:-none})"
ok "verified before any write: $(log_line restore-cut '^Verified: ' | cut -c1-110)"
cut_step=$(tr -d '\r' < "$LOGS/restore-cut.log" | grep -a -E '^Step [0-9]+/[0-9]+: ' | tail -n1 | grep -o -E '^Step [0-9]+/[0-9]+' | cut -d' ' -f2 | cut -d/ -f1)
[ -n "$cut_step" ] || fail "the cut boot ran no step (serial log: $LOGS/restore-cut.log)"
ok "power cut during step $cut_step, the copy: '$(log_line restore-cut '^Step [0-9]+/' | tail -n1 | cut -c1-80)'"
# The same entry again: the restore journal in the repository says where to go on.
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
QEMU_GIVE_UP="Choose a backup|$no_journal" qemu_run restore "$RESTORE_TIMEOUT" "${DISKS[@]}" "${image_args[@]}"
log_has restore '^RESTORE COMPLETE' || fail "the recovery image ended without 'RESTORE COMPLETE' (serial log: $LOGS/restore.log)"
resumed=$(log_line restore '^Resuming at step ')
[[ $resumed == "Resuming at step $cut_step/"*"the repository's restore journal hosts/"* ]] ||
  fail "after the cut at step $cut_step the restore did not resume there from the repository's journal: '${resumed:-no Resuming line}' (serial log: $LOGS/restore.log)"
first_step=$(tr -d '\r' < "$LOGS/restore.log" | grep -a -E '^Step [0-9]+/[0-9]+: ' | head -n1 | grep -o -E '^Step [0-9]+/')
[ "$first_step" = "Step $cut_step/" ] || fail "the resumed boot ran '$first_step' first, not step $cut_step"
! log_has restore '^Step 1/' || fail "the resumed boot ran the plan's first step again"
ok "the same entry again: '$(echo "$resumed" | cut -c1-110)'"
say "$(log_line restore '^Restored ')"
ok "restored from the repository onto the blank disk, then powered off"

phase 6 "Boot the host from the new disk, through its own GRUB"
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
HOST_DISKS=("${DISKS[@]}")
HOST_CHECK="var-log=ok boot-efi=none swap=ok backup-partition=(ok|missing) lifeboat=ok"
QEMU_GIVE_UP='No bootable device' boot_host boot2-new-disk 'from the new disk' '
run cat /proc/cmdline
'
log_has boot2-new-disk 'GNU GRUB|Welcome to GRUB|Booting .XenServer' || fail "GRUB never showed on the console (serial log: $LOGS/boot2-new-disk.log)"

phase 7 "Compare the new disk with the old one"
sgdisk -p "$NEW" > "$WORK/new-table.txt"
table_norm() { grep -v -E '^Disk .*: [0-9]+ sectors|last usable sector|^Total free space' "$1"; }
diff <(table_norm "$WORK/old-table.txt") <(table_norm "$WORK/new-table.txt") > "$LOGS/table.diff" ||
  fail "the partition table differs (old -> new): $(cat "$LOGS/table.diff")"
ok "partition table equal apart from the disk size: $(grep 'Disk identifier' "$WORK/new-table.txt")"
mount_part_ro "$NEW" $ROOT_PART "$WORK/mnt/restored"
mount_ro "$WORK/reference-root.img" "$WORK/mnt/reference"
compare_roots "$WORK/mnt/reference" "$WORK/mnt/restored"
detach_all
end_phase

phase 8 "The same per-host entry (lifeboat.request=) once more: done, not restored again"
# Run-once lives in the restore journal: the repository's records the request done, so the image
# says so and boots the local disk (stopped here as it says it) instead of restoring again.
before=$(sha256sum < "$NEW")
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
QEMU_CUT_AT="lifeboat.request=$REQUEST is done" QEMU_GIVE_UP="Choose a backup|RESTORE COMPLETE|CANNOT BOOT THE LOCAL DISK|$no_journal" \
  qemu_run run-once "$RESTORE_TIMEOUT" "${DISKS[@]}" "${image_args[@]}"
[ "$QEMU_CUT" = 1 ] || fail "the image did not say lifeboat.request=$REQUEST is done (serial log: $LOGS/run-once.log)"
log_has run-once "lifeboat.request=$REQUEST is done: the repository's restore journal hosts/.* recorded restore-done .* \\(of $gen_id, " ||
  fail "the request was not found done in the repository's journal (serial log: $LOGS/run-once.log)"
! log_has run-once '^Step [0-9]+/' || fail "a step ran for a request already done (serial log: $LOGS/run-once.log)"
[ "$(sha256sum < "$NEW")" = "$before" ] || fail "the disk changed although the request was done"
ok "$(log_line run-once "is done: " | cut -c1-60) ... $(log_line run-once "is done: " | grep -o -E 'recorded restore-done.*')"
ok "the disk is unchanged (sha256)"
end_phase

phase 9 "Restore from network with the recovery key on a USB stick: the generic kernel's image by PXE on an e1000e NIC"
# The administrator kept the recovery key `repo init` printed once, protected with a passphrase
# (as `age -p` does; the work factor is fixed here at 2^16, 64 MiB, where age picks about 2^18 by
# timing, so that the two scrypt runs stay short under TCG), on a USB stick (vfat, label KEYS).
# The PXE tree is built from the generic Debian kernel and carries no identity and no fleet key
# (the recovery key unwraps the repository's copy). The machine, on an e1000e NIC, boots the tree
# through QEMU's TFTP server; the operator chooses "Restore from network": the image finds the key
# file on the stick, a wrong passphrase then the right one, this machine's generation is listed
# as matched by its DMI UUID with its plan, the second host on request under "Other hosts'
# generations"; the boot stops there (nothing may have been written).
# This image reads the repository over HTTPS (radosgw's TLS endpoint, its CA baked in with
# --repo-ca) and takes a static address from the PXE entry (lifeboat.ip=, no DHCP).
TLS_PORT=${LIFEBOAT_TEST_S3_HTTPS_ENDPOINT##*:}
sed "s|^endpoint = .*|endpoint = \"https://10.0.2.2:$TLS_PORT\"|" "$CFG" > "$WORK/keys/image-tls.toml"
STATIC_IP=10.0.2.42/24:10.0.2.2:10.0.2.3
PASSPHRASE="lifeboat disaster $$"
grep '^AGE-SECRET-KEY-1' "$LOGS/repo-init.log" > "$WORK/keys/recovery.key" ||
  fail "repo init printed no recovery key: $(cat "$LOGS/repo-init.log")"
cargo build -q --locked -p lifeboat-tests --bin lbtest-age-passphrase 2>"$LOGS/lbtest-age-build.log" ||
  fail "cannot build lbtest-age-passphrase: $(tail -n3 "$LOGS/lbtest-age-build.log")"
LBTEST_PASSPHRASE=$PASSPHRASE target/debug/lbtest-age-passphrase "$WORK/keys/recovery.key" "$WORK/keys/recovery.key.age" 16 \
  > "$LOGS/age-p.log" 2>&1 || fail "cannot protect the recovery key: $(cat "$LOGS/age-p.log")"
STICK=$WORK/usb-stick.img
rm -f "$STICK" && truncate -s 8M "$STICK"
{ mkfs.vfat -n KEYS "$STICK" && mmd -i "$STICK" ::lifeboat &&
  mcopy -i "$STICK" "$WORK/keys/recovery.key.age" ::lifeboat/identity.txt; } > "$LOGS/usb-stick.log" 2>&1 ||
  fail "cannot make the USB stick image: $(cat "$LOGS/usb-stick.log")"
rm -rf "$WORK/pxe" "$WORK/rescue-pxe"
t0=$SECONDS
LIFEBOAT_MENU_TIMEOUT=1 "$LIFEBOAT" mkrescue "${LB_MKRESCUE_LEVEL[@]}" --kernel "$GENERIC_KERNEL_DIR/vmlinuz" --modules "$GENERIC_KERNEL_DIR/modules" \
  --init "$LIFEBOAT_INIT" --output "$WORK/rescue-pxe" --pxe "$WORK/pxe" --append "lifeboat.ip=$STATIC_IP" \
  --repo-config "$WORK/keys/image-tls.toml" --repo-credentials "$AWS_SHARED_CREDENTIALS_FILE" \
  --repo-ca "$S3DIR/tls/ca.pem" > "$LOGS/mkrescue-pxe.log" 2>&1 ||
  fail "lifeboat mkrescue --pxe of the generic kernel without an identity failed: $(tail -n3 "$LOGS/mkrescue-pxe.log")"
size_of "mkrescue of the generic kernel" "$((SECONDS - t0)) s, initrd $(human "$(stat -c %s "$WORK/rescue-pxe/initrd.img")")"
grep -q 'no --repo-identity: the recovery image carries no key' "$LOGS/mkrescue-pxe.log" ||
  fail "mkrescue did not say the image carries no key: $(cat "$LOGS/mkrescue-pxe.log")"
for m in e1000e usb-storage xhci-pci vfat; do
  grep -q "/$m\.ko" "$WORK/rescue-pxe/initrd.list" || fail "the generic image has no $m module ($WORK/rescue-pxe/initrd.list)"
done
grep -q '^  INITRD initrd.img,repo.img$' "$WORK/pxe/pxelinux.cfg/default" ||
  fail "the PXE menu does not load repo.img: $(grep INITRD "$WORK/pxe/pxelinux.cfg/default")"
repo_files=$(cpio -t --quiet < "$WORK/pxe/repo.img" | grep -E 'identity|fleet' || true)
[ -z "$repo_files" ] || fail "repo.img carries key files: $repo_files"
# The only endpoint this image knows is HTTPS: the generations listed below were read over TLS,
# checked against the CA baked in.
grep -q "^endpoint = \"https://10.0.2.2:$TLS_PORT\"" <(cpio -i --quiet --to-stdout etc/lifeboat/repo/lifeboat.toml < "$WORK/pxe/repo.img") ||
  fail "repo.img's configuration does not name the HTTPS endpoint"
cmp -s "$S3DIR/tls/ca.pem" <(cpio -i --quiet --to-stdout etc/lifeboat/repo/ca.pem < "$WORK/pxe/repo.img") ||
  fail "repo.img does not carry the CA given with --repo-ca"
ok "the generic kernel's image ($(cat "$GENERIC_KERNEL_DIR/version")): e1000e, usb-storage, xhci-pci, vfat; repo.img without identity or fleet key"
before=$(sha256sum < "$NEW")
DISKS=()
virtio_disk "$NEW" disk0 "$NEW_SERIAL"
lb_qemu_cmd --machine pc --mem 512 --netboot "$WORK/pxe:pxelinux.0" --nic e1000e \
  --smbios-uuid "$MACHINE_UUID" --smbios-serial "$MACHINE_SERIAL" -- -smp 2 \
  -device qemu-xhci,id=xhci -drive "if=none,id=stick,format=raw,readonly=on,file=$STICK" \
  -device usb-storage,bus=xhci.0,drive=stick,removable=on "${DISKS[@]}"
t0=$SECONDS
QEMU_CUT_AT='^Choose a host' python3 tests/qemu/lib/serial_driver.py "$LOGS/netmenu.log" "$RESTORE_TIMEOUT" \
  choose:"Restore from network" expect:"Key file: " expect:"Passphrase for the repository identity" send:"not $PASSPHRASE" \
  expect:"Wrong passphrase (2 attempts left)" expect:"Passphrase for the repository identity" send:"$PASSPHRASE" \
  expect:"Passphrase accepted" choose:"Other hosts' generations" -- "${LB_QEMU_CMD[@]}" > "$LOGS/netmenu.driver" 2>&1 ||
  fail "the menu did not go as expected: $(cat "$LOGS/netmenu.driver") (serial log: $LOGS/netmenu.log)"
size_of "PXE boot to the other hosts' list" "$((SECONDS - t0)) s"
log_has netmenu 'PXELINUX' || fail "the machine did not boot through pxelinux (serial log: $LOGS/netmenu.log)"
[[ $(log_line netmenu 'Kernel command line:') != *"$SECRET"* ]] || fail "the secret is on the kernel command line"
# Coldplug says what it loaded at each wait (the USB stick's sd_mod comes later, on its own line).
loaded=$(tr -d '\r' < "$LOGS/netmenu.log" | grep -a '^Modules loaded: ' | sed 's/^Modules loaded: //' | tr '\n' ' ')
for m in e1000e xhci_pci usb_storage; do
  [[ " $loaded " == *" $m "* ]] || fail "the generic kernel's $m was not loaded: '${loaded:-no Modules loaded line}' (serial log: $LOGS/netmenu.log)"
done
ok "Modules loaded: ... $(grep -o -E 'xhci_pci|e1000e|usb_storage' <<<"$loaded" | tr '\n' ' ')... ($(wc -w <<<"$loaded") modules)"
log_has netmenu "^Network: [a-z0-9]+ ${STATIC_IP%%:*} via 10.0.2.2 \(lifeboat.ip\)" ||
  fail "the image did not take the static address lifeboat.ip=$STATIC_IP: $(log_line netmenu '^Network: ') (serial log: $LOGS/netmenu.log)"
ok "$(log_line netmenu '^Network: ')"
log_has netmenu "Repository $URL: this image carries no identity" ||
  fail "discovery did not say the image carries no identity (serial log: $LOGS/netmenu.log)"
key=$(log_line netmenu '^Key file: ')
[[ $key =~ ^Key\ file:\ /dev/sd[a-z]+\ \(vfat,\ label\ KEYS\):\ lifeboat/identity.txt ]] ||
  fail "the key file on the USB stick was not found: '${key:-no Key file line}' (serial log: $LOGS/netmenu.log)"
ok "$key"
ok "$(log_line netmenu '^Passphrase accepted')"
! grep -a -q -F "$PASSPHRASE" "$LOGS/netmenu.log" || fail "the passphrase was echoed on the console"
ok "a wrong passphrase was refused, the right one opened the recovery key, neither was echoed"
log_has netmenu "^Repository $URL: 2 generations of 2 hosts" ||
  fail "the recovery key did not list both hosts: $(log_line netmenu "^Repository $URL: ") (serial log: $LOGS/netmenu.log)"
ok "$(log_line netmenu "^Repository $URL: ")"
shown=$(tr -d '\r' < "$LOGS/netmenu.log" | sed -n "/^This machine's generations in /,/^Choose a generation/p")
grep -q -E "^ 1\) .*generation $gen_id\$" <<<"$shown" || fail "this machine's list does not show generation $gen_id first: $shown"
grep -q -E "^ +host 'xs-lbdemo' \(id [0-9a-f]+\): DMI UUID matches\$" <<<"$shown" || fail "the list does not say why the generation is this machine's: $shown"
grep -q -E '^ +will overwrite ' <<<"$shown" || fail "the list shows no restore plan: $shown"
! grep -q "$other_gen" <<<"$shown" || fail "the other host's generation is listed as this machine's: $shown"
ok "$(grep -E '^ 1\) ' <<<"$shown" | cut -c1-110)"
ok "$(grep -E "^ +host 'xs-lbdemo'" <<<"$shown" | sed 's/^ *//')"
ok "$(grep -E '^ +will overwrite ' <<<"$shown" | head -n1 | sed 's/^ *//' | cut -c1-110)"
others=$(tr -d '\r' < "$LOGS/netmenu.log" | sed -n '/^Other hosts in /,$p')
grep -q -E "^ 1\) xs-other \(id [0-9a-f]+\) \| latest generation $other_gen, " <<<"$others" ||
  fail "the other host is not listed on request: $others"
ok "on request: $(grep -E '^ 1\) ' <<<"$others")"
[ "$(sha256sum < "$NEW")" = "$before" ] || fail "the disk changed although nothing was confirmed"
ok "the disk is unchanged (sha256)"
end_phase

story_summary "$REPORT" "${green}${bold}Both disks lost: the host came back from the repository on S3, over the network, onto a blank disk, and boots.${reset}"
rm -f "$NEW" "$WORK/reference-root.img" "$WORK/usb-stick.img"
