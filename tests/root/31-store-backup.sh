#!/bin/bash
# lifeboat backup: two runs make two verified generations, --keep 1 prunes the older ones
# after the commit, a second writer is told who holds the lock, and the device is found
# from lifeboat.toml, from the inventory's BACKUP_PARTITION, and by the partition name.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 48 48); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null

note "1. two backups, two generations"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --json >"$W/b1.json" || fail "backup 1 exited $?"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --json >"$W/b2.json" || fail "backup 2 exited $?"
[ "$(generations "$B")" = 2 ] || fail "expected 2 generations: $("$LIFEBOAT" list --backup-device "$B")"
g1=$(json "j['generation']" <"$W/b1.json"); g2=$(json "j['generation']" <"$W/b2.json")
[[ "$g1" < "$g2" ]] || fail "ids do not sort by time: $g1 $g2"
"$LIFEBOAT" list --backup-device "$B" --json >"$W/list.json"
json "j['backups'][1]['host'], j['backups'][1]['product_version'], j['backups'][1]['state'], j['backups'][1]['files']" <"$W/list.json" \
  | grep -qx "$(hostname) 8.2.1 verified 53" || fail "list: $(cat "$W/list.json")"
M=$W/m; mkdir -p "$M"; mount -o ro "$B" "$M"; MOUNTS+=("$M")
a=$(latest_archive "$M")
[ "$(stat -c %a "$a")" = 600 ] || fail "archive mode $(stat -c %a "$a")"
[ "$(stat -c %a "$(dirname "$a")/meta.json")" = 600 ] || fail "meta mode"
verify_archive "$a" || fail "GNU tar cannot read $a"
json "j['manifest']['source']['filesystem']['label']" <"$(dirname "$a")/meta.json" | grep -qx root-test \
  || fail "manifest source identity: $(cat "$(dirname "$a")/meta.json")"
[ -z "$(ls "$M/staging")" ] || fail "staging not empty"
grep -c backup-committed "$M/journal" | grep -qx 2 || fail "journal: $(cat "$M/journal")"
umount "$M"

note "2. --keep 1 prunes after the commit"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 1 --json >"$W/b3.json" || fail "backup 3"
[ "$(generations "$B")" = 1 ] || fail "--keep 1 left $(generations "$B")"
json "sorted(j['pruned'])" <"$W/b3.json" | grep -q "$g1" || fail "pruned: $(cat "$W/b3.json")"
g3=$(json "j['generation']" <"$W/b3.json")
"$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][0]['id']" | grep -qx "$g3" || fail "the new one was pruned"

note "3. one writer at a time"
head -c 24M /dev/urandom >"$R/usr/bin/big"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --compress xz --level 6 --threads 1 >"$W/slow.out" 2>&1 &
slow=$!
for _ in $(seq 1 100); do grep -q '"command":"backup"' /run/lifeboat/store-$slow-*/lock 2>/dev/null && break; sleep 0.05; done
if "$LIFEBOAT" backup --root "$R" --backup-device "$B" >"$W/second" 2>&1; then fail "a second backup ran alongside"; fi
grep -q "in use by 'lifeboat backup' (pid $slow" "$W/second" || fail "second writer message: $(cat "$W/second")"
wait $slow || fail "the first backup failed: $(cat "$W/slow.out")"
rm -f "$R/usr/bin/big"

note "4. the device from lifeboat.toml, the inventory, the partition name"
printf 'backup_device = "%s"\n' "$B" >"$W/lifeboat.toml"
LIFEBOAT_CONFIG=$W/lifeboat.toml "$LIFEBOAT" backup --root "$R" --keep 3 -q || fail "backup via lifeboat.toml"
pu=$(sgdisk -i 2 "$L" | sed -n 's/^Partition unique GUID: //p' | tr A-F a-f)
printf 'backup_device = "PARTUUID=%s"\n' "$pu" >"$W/partuuid.toml"
LIFEBOAT_CONFIG=$W/partuuid.toml "$LIFEBOAT" backup --root "$R" --keep 3 -q || fail "backup via PARTUUID=$pu"
echo "BACKUP_PARTITION='$B'" >>"$R/etc/xensource-inventory"
LIFEBOAT_CONFIG=$W/none.toml "$LIFEBOAT" backup --root "$R" --keep 3 -q || fail "backup via BACKUP_PARTITION"
sed -i '/BACKUP_PARTITION/d' "$R/etc/xensource-inventory"
sgdisk -c 2:lifeboat "$L" >/dev/null
# Other tests running at the same time may have partitions named lifeboat too: then the
# answer must be a refusal that names ours among the candidates.
if LIFEBOAT_CONFIG=$W/none.toml "$LIFEBOAT" backup --root "$R" --keep 3 --json >"$W/b6.json" 2>"$W/err"; then
  json "j['device']" <"$W/b6.json" | grep -qx "$B" || fail "found $(json "j['device']" <"$W/b6.json")"
  [ "$(generations "$B")" = 3 ] || fail "--keep 3: $(generations "$B")"
else
  grep -q "several partitions have PARTLABEL=lifeboat (.*$B" "$W/err" || fail "backup via PARTLABEL=lifeboat: $(cat "$W/err")"
  note "several partitions are named lifeboat on this machine: refused as it should be"
  "$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 3 -q || fail "backup"
fi
journal_lines=$(mount -o ro "$B" "$M" && grep -c . "$M/journal"; umount "$M")
[ "$journal_lines" -ge 8 ] || fail "journal has $journal_lines records"
echo 'backup_devic = "x"' >"$W/bad.toml"
if LIFEBOAT_CONFIG=$W/bad.toml "$LIFEBOAT" backup --root "$R" 2>"$W/err"; then fail "a bad config was accepted"; fi
grep -q "bad.toml" "$W/err" || fail "bad config message: $(cat "$W/err")"

note "5. a file rewritten during the backup: exit 1, generation marked inconsistent"
head -c 20M /dev/urandom >"$R/var/lib/busy"
touch "$W/writing"
( while [ -e "$W/writing" ]; do
    dd if=/dev/urandom of="$R/var/lib/busy" bs=64k count=1 seek=$((RANDOM % 300)) conv=notrunc status=none 2>/dev/null || true
  done ) &
writer=$!
rc=0; "$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 5 --json >"$W/busy.json" 2>"$W/err" || rc=$?
rm -f "$W/writing"; wait $writer 2>/dev/null || true; rm -f "$R/var/lib/busy"
if [ $rc = 1 ]; then
  json "j['state'], j['changed_files']" <"$W/busy.json" | grep -q "inconsistent.*var/lib/busy" || fail "summary: $(cat "$W/busy.json")"
  "$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['state']" | grep -qx inconsistent || fail "list state"
elif [ $rc = 2 ]; then
  grep -q "kept being rewritten" "$W/err" || fail "backup of a busy file: $(cat "$W/err")"
else
  fail "backup of a busy file exited $rc: $(cat "$W/err")"
fi

note "6. no store on the device"
wipefs -q -a "$B"; mkfs.ext4 -q -F "$B"
if "$LIFEBOAT" backup --root "$R" --backup-device "$B" 2>"$W/err"; then fail "backup into a non-store"; fi
grep -q "init-store" "$W/err" || fail "message: $(cat "$W/err")"
grep -q "$B" /proc/mounts && fail "lifeboat left $B mounted"
echo "PASS 31-store-backup"
