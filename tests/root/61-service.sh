#!/bin/bash
# Running as a service: install-units writes the five units (the files of dist/systemd, with
# this program in ExecStart) and --dry-run writes nothing; a backup on a real store takes
# `keep` from lifeboat.toml and leaves the state file and the Prometheus textfile (no
# timestamps, no temporary file left); `status`, `status --json` and `status --check` report
# it (OK, then WARNING past --warn-age, CRITICAL past --crit-age); a backup while another
# process holds the store's lock exits 11 and is recorded as such; a verify that finds damage
# makes the check CRITICAL and the textfile say so.
source "$(dirname "$0")/store-lib.bash"

note "1. install-units"
U=$W/units-root
"$LIFEBOAT" install-units --root "$U" --dry-run >"$W/dry" || fail "install-units --dry-run"
[ ! -e "$U" ] || fail "--dry-run wrote $(find "$U")"
grep -q "^# $U/etc/systemd/system/lifeboat-verify.timer" "$W/dry" || fail "dry run: $(cat "$W/dry")"
"$LIFEBOAT" install-units --root "$U" --program /opt/lb/lifeboat >"$W/units.out" || fail "install-units"
for u in lifeboat-backup.service lifeboat-backup.timer lifeboat-verify.service lifeboat-verify.timer lifeboat-serve.service; do
  [ -f "$U/etc/systemd/system/$u" ] || fail "no $u: $(cat "$W/units.out")"
done
grep -q '^ExecStart=/usr/bin/systemd-inhibit .* /opt/lb/lifeboat backup --quiet$' "$U/etc/systemd/system/lifeboat-backup.service" ||
  fail "ExecStart: $(grep ExecStart "$U/etc/systemd/system/lifeboat-backup.service")"
diff <(sed 's|/opt/lb/lifeboat|/usr/sbin/lifeboat|' "$U/etc/systemd/system/lifeboat-verify.service") dist/systemd/lifeboat-verify.service ||
  fail "the written unit is not dist/systemd's"
grep -qx 'ExecStart=/opt/lb/lifeboat serve' "$U/etc/systemd/system/lifeboat-serve.service" ||
  fail "serve ExecStart: $(grep ExecStart "$U/etc/systemd/system/lifeboat-serve.service")"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing"
systemd-analyze verify --man=no "$U"/etc/systemd/system/lifeboat-*.{timer,service} >"$W/analyze" 2>&1 || true
# /opt/lb/lifeboat does not exist here: that is the only thing systemd-analyze may say.
if grep -v "/opt/lb/lifeboat" "$W/analyze" | grep -q .; then fail "systemd-analyze: $(cat "$W/analyze")"; fi
"$LIFEBOAT" install-units --root "$U" --program /opt/lb/lifeboat | grep -c '^unchanged' | grep -qx 5 ||
  fail "a second install-units rewrote the units"

note "2. a backup leaves the state and the textfile"
L=$(make_disk d 48 48); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
mkdir -p "$W/prom"
cat >"$W/lifeboat.toml" <<EOF
backup_device = "$B"
keep = 1
state_file = "$W/state/state.json"
textfile_dir = "$W/prom"
EOF
export LIFEBOAT_CONFIG=$W/lifeboat.toml
"$LIFEBOAT" backup --root "$R" -q || fail "backup 1 exited $?"
"$LIFEBOAT" backup --root "$R" --json >"$W/b2.json" || fail "backup 2 exited $?"
json "len(j['pruned'])" <"$W/b2.json" | grep -qx 1 || fail "keep = 1 from lifeboat.toml: $(cat "$W/b2.json")"
g2=$(json "j['generation']" <"$W/b2.json")
[ -f "$W/state/state.json" ] || fail "no state file"
P=$W/prom/lifeboat.prom
[ -f "$P" ] || fail "no textfile in $W/prom: $(ls -A "$W/prom")"
[ "$(ls -A "$W/prom")" = lifeboat.prom ] || fail "left beside it: $(ls -A "$W/prom")"
for m in lifeboat_backup_last_success_timestamp_seconds lifeboat_backup_last_success_duration_seconds \
  lifeboat_backup_last_written_bytes lifeboat_backup_last_content_bytes lifeboat_backup_last_files \
  lifeboat_store_generations lifeboat_store_bytes lifeboat_backup_last_exit_status; do
  grep -q "^$m [0-9]" "$P" || fail "no $m in $(cat "$P")"
  grep -q "^# TYPE $m gauge$" "$P" || fail "no TYPE for $m"
done
grep -qx 'lifeboat_store_generations 1' "$P" || fail "generations: $(grep generations "$P")"
grep -qx 'lifeboat_backup_last_files 53' "$P" || fail "files: $(grep files "$P")"
grep -qx 'lifeboat_backup_last_exit_status 0' "$P" || fail "exit: $(grep exit "$P")"
# Exposition format: every sample is NAME VALUE, no timestamp.
if grep -v '^#' "$P" | awk 'NF != 2' | grep -q .; then fail "samples with timestamps: $(cat "$P")"; fi
size=$(json "j['size']" <"$W/b2.json")
grep -qx "lifeboat_backup_last_written_bytes $size" "$P" || fail "written bytes: $(grep written "$P") vs $size"

note "3. status"
"$LIFEBOAT" status >"$W/status" || fail "status exited $?"
grep -q "Last good backup:  $g2" "$W/status" || fail "status: $(cat "$W/status")"
"$LIFEBOAT" status --json | json "j['last_good_backup']['generation'], j['generations'], j['last_backup_run']['exit_status']" |
  grep -qx "$g2 1 0" || fail "status --json: $("$LIFEBOAT" status --json)"
out=$("$LIFEBOAT" status --check) || fail "status --check exited $?: $out"
[[ "$out" == "LIFEBOAT OK - last good backup $g2 "*"| age="* ]] || fail "check line: $out"
[ "$(wc -l <<<"$out")" = 1 ] || fail "more than one line: $out"
sleep 2
set +e
out=$("$LIFEBOAT" status --check --warn-age 1s --crit-age 1h); rc=$?
[ $rc = 1 ] && [[ "$out" == "LIFEBOAT WARNING - "* ]] || fail "warn: exit $rc: $out"
out=$("$LIFEBOAT" status --check --warn-age 1s --crit-age 1s); rc=$?
[ $rc = 2 ] && [[ "$out" == "LIFEBOAT CRITICAL - "* ]] || fail "crit: exit $rc: $out"
out=$("$LIFEBOAT" status --check --warn-age soon); rc=$?
[ $rc = 3 ] && [[ "$out" == "LIFEBOAT UNKNOWN - "* ]] || fail "unknown: exit $rc: $out"
out=$("$LIFEBOAT" status --check --backup-device "$W/none"); rc=$?
[ $rc = 3 ] || fail "no device: exit $rc: $out"
set -e

note "4. a held lock: exit 11, recorded"
M=$W/m; mkdir -p "$M"; mount "$B" "$M"; MOUNTS+=("$M")
# The test shell itself holds the lock (as a running backup would): no process to clean up.
exec {lockfd}<>"$M/lock"
flock -n "$lockfd" || fail "cannot take the lock of the fresh store"
set +e
"$LIFEBOAT" backup --root "$R" -q 2>"$W/locked"; rc=$?
set -e
[ $rc = 11 ] || fail "a backup with the lock held exited $rc: $(cat "$W/locked")"
grep -q "in use" "$W/locked" || fail "message: $(cat "$W/locked")"
flock -u "$lockfd"; exec {lockfd}>&-
grep -qx 'lifeboat_backup_last_exit_status 11' "$P" || fail "exit 11 not in the textfile: $(grep exit "$P")"
grep -qx 'lifeboat_store_generations 1' "$P" || fail "the last good backup's facts were lost"
set +e
out=$("$LIFEBOAT" status --check); rc=$?
set -e
[ $rc = 1 ] && [[ "$out" == *"exited 11"* ]] || fail "after a locked run: exit $rc: $out"

note "5. verify: sound, then damaged"
umount "$M"
"$LIFEBOAT" verify -q || fail "verify exited $?"
grep -qx 'lifeboat_verify_last_success 1' "$P" || fail "verify: $(grep verify "$P")"
"$LIFEBOAT" backup --root "$R" -q || fail "backup 3"
mount "$B" "$M"
a=$(latest_archive "$M"); echo x >>"$a"; umount "$M"
set +e
"$LIFEBOAT" verify -q 2>/dev/null; rc=$?
out=$("$LIFEBOAT" status --check); crc=$?
set -e
[ $rc = 1 ] || fail "verify of a damaged generation exited $rc"
grep -qx 'lifeboat_verify_last_success 0' "$P" || fail "textfile after damage: $(grep verify "$P")"
grep -qx 'lifeboat_verify_last_exit_status 1' "$P" || fail "textfile after damage: $(grep verify "$P")"
[ $crc = 2 ] && [[ "$out" == "LIFEBOAT CRITICAL - "*"verification"* ]] || fail "after damage: exit $crc: $out"
echo "61-service: ok"
