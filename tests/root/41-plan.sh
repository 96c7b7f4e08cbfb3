#!/bin/bash
# lifeboat plan: a dry run of a restore on a loop-device host (a root and a store partition,
# a backup). The plan names the root partition with the recorded identity; "latest" is the
# newest backup of this host; a plain tar generation takes its identity from its own fstab;
# --target naming the store partition, a mounted partition, an md leg (metadata 1.0, on two
# other loop devices) and a too-small partition are each refused with their message; a blank
# disk 25% larger gives a BlankDisk plan, or, when the backup recorded no disk layout, a
# refusal saying so. Every test device's bytes are unchanged (checksums before and after).
source "$(dirname "$0")/store-lib.bash"
command -v mdadm >/dev/null || fail "mdadm is not installed (scripts/setup.sh installs it)"
L=$(make_disk d 48 48); make_root "$L"; B=${L}p2
# A label of this run's own: other runs' loop devices may carry make_root's root-test, and a
# label that names two partitions is (rightly) refused as ambiguous.
LABEL=root-plan-$$
e2label "${L}p1" "$LABEL"
# The backup is this host's: "latest" picks backups of the running machine (DMI identity,
# else the host name).
hostname >"$R/etc/hostname"
echo "LABEL=$LABEL / ext4 defaults 0 1" >"$R/etc/fstab"
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --json >"$W/b1.json" || fail "backup 1"
g1=$(json "j['generation']" <"$W/b1.json")
# A newer backup of another host (same store): never "latest", only chosen by hand.
echo otherhost >"$R/etc/hostname"
sleep 1
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --json >"$W/b2.json" || fail "backup 2"
g2=$(json "j['generation']" <"$W/b2.json")
# An xe host-backup style plain tar of a third host, staged: no manifest, no recorded
# identity, no machine identity.
echo plainhost >"$R/etc/hostname"
tar -C "$R" -czf "$W/plain.tar.gz" . || fail "tar"
"$LIFEBOAT" host-restore file-name="$W/plain.tar.gz" --backup-device "$B" --root "$R" -q >/dev/null 2>&1 \
  || fail "host-restore of a plain tar"
g3=$("$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']")
ROOT_UUID=$(blkid -s UUID -o value "${L}p1")
umount "$R"

# Other devices: a too-small partition, two md legs, a blank disk 25% larger than the host's.
truncate -s 40M "$W/small.img"; sgdisk -n 1:2048:+16M -c 1:small "$W/small.img" >/dev/null
loop_attach "$W/small.img"; S=$REPLY
truncate -s 64M "$W/md1.img" "$W/md2.img"
loop_attach "$W/md1.img"; M1=$REPLY
loop_attach "$W/md2.img"; M2=$REPLY
host_bytes=$(stat -c %s "$W/d.img")
truncate -s $((host_bytes * 5 / 4)) "$W/blank.img"
loop_attach "$W/blank.img"; K=$REPLY
MD=""
stop_md() { if [ -n "$MD" ]; then mdadm --stop "$MD" >/dev/null 2>&1; MD=""; fi; }
# The array is stopped before the loop devices under it are detached.
trap 'rc=$?; set +e; stop_md; (exit $rc); lb_run_exit' EXIT
if [ -e /proc/mdstat ] || modprobe md_mod 2>/dev/null; then
  MD=/dev/md/lifeboat-plan-$$
  mdadm --create "$MD" --run --level=1 --metadata=1.0 --raid-devices=2 "$M1" "$M2" >/dev/null 2>&1 \
    || fail "mdadm --create (metadata 1.0) on $M1 $M2"
  mkfs.ext4 -q -F "$MD"
  note "md: RAID1 metadata 1.0 assembled as $MD from $M1 and $M2"
else
  # This kernel has no md driver: the legs get a metadata 1.0 superblock written as mdadm
  # writes it (8 KiB from the end, checksummed), checked with mdadm --examine, and an ext4
  # filesystem at the start, as a leg of XenServer's mirrored disk has.
  mkfs.ext4 -q -F "$M1"
  python3 - "$M1" <<'EOF'
import os, struct, sys
dev = sys.argv[1]
fd = os.open(dev, os.O_RDWR)
size = os.lseek(fd, 0, os.SEEK_END)
sb_sector = ((size // 512) - 16) & ~7
max_dev = 2
sb = bytearray(256 + 2 * max_dev)
struct.pack_into("<IIII", sb, 0, 0xa92b4efc, 1, 0, 0)
sb[16:32] = bytes(range(0x11, 0x21))                  # array UUID
sb[32:64] = b"lifeboat-plan:0".ljust(32, b"\0")
struct.pack_into("<QIIQII", sb, 64, 1700000000, 1, 0, sb_sector, 0, 2)  # ctime level layout size chunk raid_disks
struct.pack_into("<QQQ", sb, 128, 0, sb_sector, sb_sector)   # data_offset data_size super_offset
struct.pack_into("<I", sb, 160, 0)                     # dev_number
sb[168:184] = bytes(range(0x31, 0x41))                 # device UUID
struct.pack_into("<QQQ", sb, 192, 1700000000, 1, 0xffffffffffffffff)  # utime events resync_offset
struct.pack_into("<I", sb, 220, max_dev)
struct.pack_into("<HH", sb, 256, 0, 1)                 # roles
s = sum(struct.unpack_from("<%dI" % (len(sb) // 4), sb))
struct.pack_into("<I", sb, 216, ((s & 0xffffffff) + (s >> 32)) & 0xffffffff)
os.pwrite(fd, bytes(sb), sb_sector * 512)
os.fsync(fd)
os.close(fd)
EOF
  mdadm --examine "$M1" >"$W/examine" 2>&1 || fail "mdadm --examine does not read the leg: $(cat "$W/examine")"
  grep -q "Version : 1.0" "$W/examine" || fail "not a metadata 1.0 leg: $(cat "$W/examine")"
  note "md: no md driver in this kernel; $M1 carries a metadata 1.0 superblock ($(grep -m1 'Array UUID' "$W/examine" | xargs))"
fi

# The legs of an assembled array change when md updates its superblocks: then the array's
# content is compared instead.
if [ -n "$MD" ]; then DEVS=("$L" "$S" "$MD" "$K"); else DEVS=("$L" "$S" "$M1" "$M2" "$K"); fi
sums() { local d; for d in "${DEVS[@]}"; do sha256sum "$d"; done; }
sync
sums >"$W/before"

plan() { # plan ARGS...: the JSON plan or refusal in $W/plan.json, exit code in $rc
  rc=0
  "$LIFEBOAT" plan --backup-device "$B" --json "$@" >"$W/plan.json" 2>"$W/plan.err" || rc=$?
}
refused() { # WHAT KIND PATTERN ARGS...
  local what=$1 kind=$2 pat=$3; shift 3
  plan "$@"
  [ "$rc" = 2 ] || fail "$what: exit $rc, expected 2 (refused): $(cat "$W/plan.json" "$W/plan.err")"
  json "j['ok'], j['refused']" <"$W/plan.json" | grep -qx "False $kind" \
    || fail "$what: not refused as $kind: $(cat "$W/plan.json")"
  grep -qF -- "$pat" "$W/plan.err" || fail "$what: message lacks '$pat': $(cat "$W/plan.err")"
  note "$what refused: $(head -c 240 "$W/plan.err")"
}

note "1. the recorded root partition, with the recorded identity"
plan "$g1"
[ "$rc" = 0 ] || fail "plan exited $rc: $(cat "$W/plan.err")"
json "j['plan']['mode'], j['plan']['root_device'], j['plan']['root_identity']['label'], j['plan']['root_identity']['uuid'], j['plan']['backup']['generation']" \
  <"$W/plan.json" | grep -qx "recorded-disk ${L}p1 $LABEL $ROOT_UUID $g1" \
  || fail "plan: $(cat "$W/plan.json")"
json "' '.join(s['id'] for s in j['plan']['steps'])" <"$W/plan.json" \
  | grep -qx "make-filesystem-p1 restore-root set-final-identity" || fail "steps: $(cat "$W/plan.json")"
json "j['plan']['steps'][0]['destroys']" <"$W/plan.json" | grep -q "ext4 labelled $LABEL" \
  || fail "the first step does not say what it erases: $(cat "$W/plan.json")"
"$LIFEBOAT" plan --backup-device "$B" "$g1" >"$W/plan.txt" || fail "plan (text)"
grep -q "ERASES what is on ${L}p1 now: ext4 labelled $LABEL" "$W/plan.txt" || fail "text plan: $(cat "$W/plan.txt")"
grep -q "(a dry run: nothing was written)" "$W/plan.txt" || fail "text plan: $(cat "$W/plan.txt")"

note "2. latest is this host's newest backup; another host's only by hand"
# The plain tar (host plainhost, no machine identity) is never this host's. g1 and g2 record
# this machine's UUID when it has one, and the MAC addresses of its NICs: then the machine, not
# the host name, decides (core's match_reason: UUID, serial, a MAC both record, host name).
if [ -n "$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)" ] || compgen -G '/sys/class/net/*/device' >/dev/null; then
  want=$g2
else
  want=$g1
fi
plan
json "j['plan']['backup']['generation']" <"$W/plan.json" | grep -qx "$want" \
  || fail "latest is not this host's newest backup $want: $(cat "$W/plan.json" "$W/plan.err")"
plan latest
json "j['plan']['backup']['generation']" <"$W/plan.json" | grep -qx "$want" || fail "latest: $(cat "$W/plan.json")"
plan "$g2"
json "j['plan']['backup']['host']" <"$W/plan.json" | grep -qx otherhost || fail "$g2 by hand: $(cat "$W/plan.json" "$W/plan.err")"

note "3. a plain tar generation takes its identity from its own etc/fstab"
plan "$g3"
[ "$rc" = 0 ] || fail "plan $g3 exited $rc: $(cat "$W/plan.err")"
json "j['plan']['backup']['kind'], j['plan']['root_device'], j['plan']['root_identity']['label']" <"$W/plan.json" \
  | grep -qx "plain-tar ${L}p1 $LABEL" || fail "plain tar plan: $(cat "$W/plan.json")"
json "j['plan']['identity_source']" <"$W/plan.json" | grep -q "etc/fstab (LABEL=$LABEL for /)" \
  || fail "identity source: $(cat "$W/plan.json")"

note "4. refusals, each with its message"
refused "the store partition" holds-this-backup "$B holds the backup being restored" "$g1" --target "$B"
PU=$(blkid -s PARTUUID -o value "$B")
refused "the store partition by PARTUUID" holds-this-backup "$B holds the backup being restored" "$g1" --target "PARTUUID=$PU"
mkdir -p "$W/mnt"; mount -o ro "${L}p1" "$W/mnt"; MOUNTS+=("$W/mnt")
refused "a mounted partition" mounted "${L}p1 is mounted at $W/mnt" "$g1" --target "${L}p1"
refused "the automatic choice, mounted" mounted "${L}p1 is mounted at $W/mnt" "$g1"
umount "$W/mnt"
sync
refused "an md leg" md-leg "one leg of the md array" "$g1" --target "$M1"
refused "a too-small partition" too-small "${S}p1 (16777216 bytes) is smaller than the recorded ext4 filesystem" "$g1" --target "${S}p1"
refused "an unknown name" no-such-device "no such disk or partition" "$g1" --target LABEL=no-such-label

note "5. a blank disk 25% larger"
recorded=$(mount -o ro "$B" "$W/mnt" && python3 -c "
import json,glob,sys
m=json.load(open(glob.glob(sys.argv[1]+'/generations/$g1/meta.json')[0]))['manifest']
print(len(m['source'].get('disks', [])))" "$W/mnt"; umount "$W/mnt")
if [ "$recorded" = 0 ]; then
  refused "a blank disk, no recorded layout" no-disk-layout "this backup did not record its disk layout" "$g1" --target-disk "$K"
else
  plan "$g1" --target-disk "$K"
  [ "$rc" = 0 ] || fail "blank disk plan exited $rc: $(cat "$W/plan.err")"
  json "j['plan']['mode'], j['plan']['target_disk']['dev_path'], j['plan']['steps'][0]['id']" <"$W/plan.json" \
    | grep -qx "blank-disk $K create-table" || fail "blank disk plan: $(cat "$W/plan.json")"
fi
refused "a disk that is not blank" disk-not-blank "is not blank" "$g1" --target-disk "$S"
refused "a partition as the disk" not-a-disk "is a partition, not a disk" "$g1" --target-disk "${S}p1"

note "6. nothing was written"
sync
sums >"$W/after"
stop_md
diff "$W/before" "$W/after" || fail "a dry run changed the bytes of a test device"
echo "PASS 41-plan"
