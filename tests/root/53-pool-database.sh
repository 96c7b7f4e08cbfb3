#!/bin/bash
# The pool database as a member of each generation (issue 10, item 3). Where `xe` is on PATH,
# `lifeboat backup` runs `xe pool-dump-database file-name=...` and keeps the dump beside the
# archive, recorded in meta.json (size, BLAKE3); `list` shows a POOL-DB column, `verify`
# checks the dump, `pool-database GEN --output F` writes it back byte for byte, `copy` takes
# it along, `push` stores it as its own age-encrypted object (hosts/<id>/<GEN>.pooldb) that
# `verify --repo` checks and `pool-database --repo` extracts (also with the recovery key), and
# `host-restore --repo GEN` stages into a store with its dump (a flipped chunk: nothing staged).
# xe does not exist on this machine: a stand-in script on PATH writes the dump (the one place
# a stand-in is right; everything else is the real program on real loop devices).
# shellcheck source=tests/root/repo-lib.bash
source "$(dirname "$0")/repo-lib.bash"
L=$(make_disk d 48 64)
make_root "$L"
B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
export LIFEBOAT_CONFIG=$W/lifeboat.toml
M=$W/m; mkdir -p "$M"; MOUNTS+=("$M")

# The stand-in xe: logs its arguments, writes a dump (an XML head and 300 KiB of random
# bytes) to file-name=, and keeps a copy of it in $W/dumps/N; XE_FAIL=1 makes it fail.
mkdir -p "$W/bin" "$W/dumps"
cat >"$W/bin/xe" <<'XE'
#!/bin/bash
echo "$*" >>"$XE_LOG"
[ "${XE_FAIL:-0}" = 1 ] && { echo "Error: Connection refused (calling connect )" >&2; exit 1; }
[ "$1" = pool-dump-database ] || { echo "unexpected xe command: $*" >&2; exit 2; }
f=${2#file-name=}
{ echo '<?xml version="1.0"?><database>'; head -c 300K /dev/urandom; } >"$f"
n=$(find "$XE_DUMPS" -type f | wc -l)
cp "$f" "$XE_DUMPS/$n"
XE
chmod 755 "$W/bin/xe"
export PATH=$W/bin:$PATH XE_LOG=$W/xe.log XE_DUMPS=$W/dumps

# in_store CMD...: runs CMD with the store mounted read-write at $M.
in_store() { mount "$B" "$M"; "$@"; local rc=$?; umount "$M"; return $rc; }
# staging_empty: the mounted store's staging/ holds nothing.
staging_empty() { [ -z "$(ls -A "$M/staging")" ]; }

note "1. backup with xe on PATH: the dump is a member of the generation"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 9 --json >"$W/b1.json" 2>"$W/err" \
  || fail "backup: $(cat "$W/err")"
g1=$(json "j['generation']" <"$W/b1.json")
grep -q "^pool-dump-database file-name=.*/staging/$g1/pool-database$" "$XE_LOG" \
  || fail "xe was not run as expected: $(cat "$XE_LOG")"
dump1=$W/dumps/0
[ "$(json "j['pool_database']" <"$W/b1.json")" = "$(stat -c %s "$dump1")" ] \
  || fail "backup's pool_database is not the dump's size: $(cat "$W/b1.json")"
mount -o ro "$B" "$M"
cmp "$dump1" "$M/generations/$g1/pool-database" || fail "the stored dump differs from xe's"
[ "$(stat -c %a "$M/generations/$g1/pool-database")" = 600 ] || fail "the stored dump is not 0600"
python3 - "$M/generations/$g1/meta.json" "$dump1" <<'PY' || fail "meta.json's pool_database record"
import json, sys
m = json.load(open(sys.argv[1]))["pool_database"]
assert m["file"] == "pool-database" and m["size"] == len(open(sys.argv[2], "rb").read()), m
assert len(m["blake3"]) == 64, m
PY
umount "$M"

note "2. --no-pool-database: xe is not run, the generation has none"
sleep 1
: >"$XE_LOG"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 9 --no-pool-database --json >"$W/b2.json" \
  || fail "backup --no-pool-database"
g2=$(json "j['generation']" <"$W/b2.json")
[ ! -s "$XE_LOG" ] || fail "xe ran with --no-pool-database: $(cat "$XE_LOG")"

note "3. list: a POOL-DB column and pool_database in --json"
"$LIFEBOAT" list --backup-device "$B" >"$W/list.out"
head -2 "$W/list.out" | grep -q "POOL-DB" || fail "no POOL-DB column: $(cat "$W/list.out")"
grep "^$g1 " "$W/list.out" | grep -q "KiB *$" || fail "g1 shows no pool database: $(cat "$W/list.out")"
grep "^$g2 " "$W/list.out" | grep -q " -$" || fail "g2 shows a pool database: $(cat "$W/list.out")"
"$LIFEBOAT" list --backup-device "$B" --json >"$W/list.json"
[ "$(json "[b['pool_database'] for b in j['backups']]" <"$W/list.json")" = "[$(stat -c %s "$dump1"), None]" ] \
  || fail "list --json: $(cat "$W/list.json")"

note "4. verify reads both generations sound; pool-database writes the dump byte for byte"
"$LIFEBOAT" verify --backup-device "$B" >"$W/v.out" 2>&1 || fail "verify: $(cat "$W/v.out")"
"$LIFEBOAT" pool-database "$g1" --backup-device "$B" --output "$W/out.db" >"$W/pd.out" 2>&1 \
  || fail "pool-database: $(cat "$W/pd.out")"
cmp "$dump1" "$W/out.db" || fail "the extracted dump differs from xe's"
[ "$(stat -c %a "$W/out.db")" = 600 ] || fail "the extracted dump is not 0600"
grep -q "xe pool-restore-database file-name=$W/out.db" "$W/pd.out" || fail "no restore hint: $(cat "$W/pd.out")"
"$LIFEBOAT" pool-database "$g1" --backup-device "$B" --output "$W/out.db" >"$W/out" 2>&1 \
  && fail "pool-database overwrote an existing file"
cmp "$dump1" "$W/out.db" || fail "a refused pool-database changed the existing file"
"$LIFEBOAT" pool-database "$g2" --backup-device "$B" --output "$W/none.db" >"$W/out" 2>&1 \
  && fail "pool-database of a generation without one succeeded"
grep -q "has no pool database" "$W/out" && [ ! -e "$W/none.db" ] || fail "no-dump case: $(cat "$W/out")"

note "5. a failing xe: no generation is committed, the error says what to do"
sleep 1
before=$(generations "$B" | wc -w)
XE_FAIL=1 "$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 9 >"$W/out" 2>&1 \
  && fail "backup succeeded although xe failed"
grep -q "pool-dump-database. failed.*--no-pool-database" "$W/out" || fail "xe failure: $(cat "$W/out")"
[ "$(generations "$B" | wc -w)" = "$before" ] || fail "a generation was committed although xe failed"
in_store staging_empty || fail "the failed backup left staging/ behind"

note "6. one flipped byte in the stored dump: verify names it, pool-database refuses"
in_store flip_middle_byte "$M/generations/$g1/pool-database"
"$LIFEBOAT" verify --backup-device "$B" "$g1" >"$W/v.out" 2>&1 && fail "verify missed the flipped dump"
grep -q "DAMAGED.*pool database's BLAKE3" "$W/v.out" || fail "verify does not name the dump: $(cat "$W/v.out")"
"$LIFEBOAT" pool-database "$g1" --backup-device "$B" --output "$W/bad.db" >"$W/out" 2>&1 \
  && fail "pool-database wrote a damaged dump"
[ ! -e "$W/bad.db" ] || fail "pool-database left a file behind"
in_store flip_middle_byte "$M/generations/$g1/pool-database"
"$LIFEBOAT" verify --backup-device "$B" "$g1" >/dev/null 2>&1 || fail "the byte flipped back does not verify"

note "7. copy to another store takes the dump along"
U=$(make_disk usb 8 64)
"$LIFEBOAT" init-store --backup-device "${U}p2" >/dev/null
"$LIFEBOAT" copy "$g1" --backup-device "$B" --to-device "${U}p2" >"$W/out" 2>&1 || fail "copy: $(cat "$W/out")"
"$LIFEBOAT" pool-database "$g1" --backup-device "${U}p2" --output "$W/usb.db" >/dev/null 2>&1 \
  || fail "pool-database from the copy"
cmp "$dump1" "$W/usb.db" || fail "the copy's dump differs"

note "8. the repository: push stores it encrypted; list, verify and pool-database --repo"
REPO=$W/repo
K=(--repo "$REPO" --fleet-key "$W/fleet.key" --identity "$W/host.key")
repo_init_step
"$LIFEBOAT" push --backup-device "$B" "${K[@]}" "$g1" >"$W/p.out" 2>&1 || fail "push: $(cat "$W/p.out")"
obj=$(find "$REPO/hosts" -name "$g1.pooldb")
[ -n "$obj" ] || fail "no $g1.pooldb object in the repository: $(find "$REPO/hosts")"
python3 - "$dump1" "$obj" <<'PY' || fail "the pool database lies in plaintext in the repository"
import sys
d = open(sys.argv[1], 'rb').read()
o = open(sys.argv[2], 'rb').read()
sys.exit(1 if d[100:164] in o or b"<database>" in o else 0)
PY
"$LIFEBOAT" list "${K[@]}" >"$W/rl.out" || fail "list --repo"
grep -q "POOL-DB" "$W/rl.out" && grep "^$g1 " "$W/rl.out" | grep -q "KiB *$" \
  || fail "list --repo: $(cat "$W/rl.out")"
[ "$(json "j['backups'][0]['pool_database']" < <("$LIFEBOAT" list "${K[@]}" --json))" = "$(stat -c %s "$dump1")" ] \
  || fail "list --repo --json has no pool_database"
"$LIFEBOAT" verify "${K[@]}" "$g1" >"$W/v.out" 2>&1 || fail "verify --repo: $(cat "$W/v.out")"
"$LIFEBOAT" pool-database "$g1" "${K[@]}" --output "$W/repo.db" >/dev/null 2>"$W/err" \
  || fail "pool-database --repo: $(cat "$W/err")"
cmp "$dump1" "$W/repo.db" || fail "the dump from the repository differs"
hid=$("$LIFEBOAT" repo hosts "${K[@]}" --json | json "j[0]['host_id']")
"$LIFEBOAT" pool-database latest --repo "$REPO" --identity "$W/recovery.key" --fleet-key "$W/none" \
  --repo-host "$hid" --output "$W/rec.db" >/dev/null 2>"$W/err" || fail "pool-database with the recovery key: $(cat "$W/err")"
cmp "$dump1" "$W/rec.db" || fail "the dump read with the recovery key differs"

note "9. one flipped byte in the .pooldb object: verify --repo names it, pool-database --repo refuses"
flip_middle_byte "$obj"
"$LIFEBOAT" verify "${K[@]}" "$g1" >"$W/v.out" 2>&1 && fail "verify --repo missed the flipped pool database"
grep -q "DAMAGED.*pool database.*$g1.pooldb" "$W/v.out" || fail "verify --repo does not name it: $(cat "$W/v.out")"
"$LIFEBOAT" pool-database "$g1" "${K[@]}" --output "$W/bad2.db" >"$W/out" 2>&1 \
  && fail "pool-database --repo wrote a damaged dump"
[ ! -e "$W/bad2.db" ] || fail "pool-database --repo left a file behind"

note "10. host-restore --repo GEN: staged into an empty store, verified while staged, dump included"
flip_middle_byte "$obj"   # sound again
"$LIFEBOAT" init-store --backup-device "${U}p2" --force -q 2>/dev/null
"$LIFEBOAT" host-restore --root "$R" --backup-device "${U}p2" "${K[@]}" "$g1" >"$W/hr.out" 2>&1 \
  || fail "host-restore --repo: $(cat "$W/hr.out")"
grep -q "Staged generation $g1 of $REPO" "$W/hr.out" || fail "host-restore --repo: $(cat "$W/hr.out")"
"$LIFEBOAT" verify --backup-device "${U}p2" >"$W/v.out" 2>&1 || fail "verify of the staged generation: $(cat "$W/v.out")"
"$LIFEBOAT" pool-database latest --backup-device "${U}p2" --output "$W/hr.db" >/dev/null 2>&1 \
  || fail "pool-database of the staged generation"
cmp "$dump1" "$W/hr.db" || fail "the staged generation's dump differs"
# A flipped chunk: the staging is refused and nothing is committed.
"$LIFEBOAT" init-store --backup-device "${U}p2" --force -q 2>/dev/null
chunk=$(find "$REPO/chunks" -type f | sort | sed -n 1p)
flip_middle_byte "$chunk"
"$LIFEBOAT" host-restore --root "$R" --backup-device "${U}p2" "${K[@]}" "$g1" >"$W/hr.out" 2>&1 \
  && fail "host-restore --repo staged a generation with a flipped chunk"
grep -q "$(basename "$chunk")" "$W/hr.out" || fail "host-restore --repo does not name the chunk: $(cat "$W/hr.out")"
[ "$(generations "${U}p2")" = 0 ] || fail "a damaged repository generation was committed"

note "11. repo hosts: latest generation, its age and size, the last verify --repo (recorded, sealed)"
"$LIFEBOAT" repo hosts "${K[@]}" --json >"$W/h.json" || fail "repo hosts"
python3 - "$g1" "$W/h.json" <<'PY' || fail "repo hosts after a damaged verify: $(cat "$W/h.json")"
import json, sys
h = json.load(open(sys.argv[2]))[0]
assert h["latest"] == sys.argv[1] and 0 <= h["latest_age_seconds"] < 3600 and h["latest_bytes"] > 0, h
# The last verify --repo (step 9) found the flipped pool database.
assert h["last_verify_ok"] is False and h["last_verify_damaged"] == [sys.argv[1]], h
PY
flip_middle_byte "$chunk"   # sound again
"$LIFEBOAT" verify "${K[@]}" >"$W/v.out" 2>&1 || fail "verify --repo of the sound repository: $(cat "$W/v.out")"
"$LIFEBOAT" repo hosts "${K[@]}" >"$W/h.out" || fail "repo hosts"
head -1 "$W/h.out" | grep -q "AGE.*SIZE.*LAST VERIFIED" || fail "repo hosts columns: $(cat "$W/h.out")"
sed -n 2p "$W/h.out" | grep -q "$g1 .* ok$" || fail "repo hosts does not show the sound verify: $(cat "$W/h.out")"
grep -aq "checked\|$g1" < <(find "$REPO/hosts" -name status -exec cat {} +) \
  && fail "the status object is not sealed"
echo "53-pool-database: ok"
