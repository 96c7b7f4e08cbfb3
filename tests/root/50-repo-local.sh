#!/bin/bash
# The off-host repository in a directory (issue 10, items 1 and 2): `repo init` (a recovery
# key printed once), `backup --repo` (local commit, then a push that verifies the generation
# as it reads it), `list|verify|restore --repo` (the tar stream reassembled from encrypted
# chunks, consumed by core's verify loop and restore engine), a second backup of the
# unchanged root adds < 2% to the repository, `push` finds nothing left to push, the recovery
# key alone reads the generation, a flipped chunk is named by `repo check --read-data` and by
# `verify --repo`, `repo prune` marks before it deletes, and `copy GEN --repo` pushes a
# generation committed only locally.
# shellcheck source=tests/root/repo-lib.bash
source "$(dirname "$0")/repo-lib.bash"
repo_fixture
# No host configuration file is read: everything is on the command line.
export LIFEBOAT_CONFIG=$W/lifeboat.toml
REPO=$W/repo
K=(--repo "$REPO" --fleet-key "$W/fleet.key" --identity "$W/host.key")

note "1. repo init: a new recovery key printed once, key files root-only"
repo_init_step
grep -rq "AGE-SECRET-KEY\|LIFEBOAT-FLEET-KEY" "$REPO" && fail "a secret key lies in plaintext in the repository"

note "2. backup --repo: committed locally, then pushed"
repo_first_backup_step
# Nothing of the content in clear: a file's bytes are not found in any object.
python3 - "$R/usr/lib/blob1" "$REPO" <<'PY' || fail "plaintext of blob1 found in the repository"
import os, sys
needle = open(sys.argv[1], 'rb').read()[4096:4096 + 64]
for d, _, files in os.walk(sys.argv[2]):
    for f in files:
        if needle in open(os.path.join(d, f), 'rb').read():
            sys.exit(f"found in {os.path.join(d, f)}")
PY
grep -rq "blob1\|xensource-inventory" "$REPO" && fail "a file name is visible in the repository"

note "3. verify --repo and restore --repo, compared with the source tree"
repo_verify_restore_step

note "4. a second backup of the unchanged root adds < 2%; push finds nothing left"
repo_second_backup_step

note "5. the recovery key alone (no fleet key file) reads this host's generation"
hid=$("$LIFEBOAT" repo hosts "${K[@]}" --json | json "j[0]['host_id']")
"$LIFEBOAT" verify --repo "$REPO" --identity "$W/recovery.key" --fleet-key "$W/none" --repo-host "$hid" latest \
  >"$W/v.out" 2>&1 || fail "verify with the recovery key: $(cat "$W/v.out")"

note "6. a flipped chunk is named by repo check --read-data and verify --repo"
"$LIFEBOAT" repo check "${K[@]}" --read-data >"$W/c.out" 2>&1 || fail "repo check: $(cat "$W/c.out")"
chunk=$(find "$REPO/chunks" -type f | sort | sed -n 1p)
flip_middle_byte "$chunk"
repo_flipped_chunk_step "$(basename "$chunk")"

note "7. repo prune: generations forgotten, their chunks marked, none deleted before the grace period"
"$LIFEBOAT" repo prune "${K[@]}" --keep-last 1 --json >"$W/pr.json" || fail "repo prune"
[ "$(json "len(j['forgotten'])" <"$W/pr.json")" = 1 ] && [ "$(json "j['deleted']" <"$W/pr.json")" = 0 ] \
  || fail "prune: $(cat "$W/pr.json")"
[ "$(json "len(j['backups'])" < <("$LIFEBOAT" list "${K[@]}" --json))" = 1 ] || fail "prune kept both"

note "8. copy GEN --repo: a generation committed only locally is pushed (an alias of push GEN)"
sleep 1
"$LIFEBOAT" backup --root "$R" --backup-device "$B" --keep 5 --json >"$W/b3.json" 2>"$W/err" || fail "local backup: $(cat "$W/err")"
g3=$(json "j['generation']" <"$W/b3.json")
json "j.get('pushed')" <"$W/b3.json" | grep -qx None || fail "a backup without --repo pushed: $(cat "$W/b3.json")"
"$LIFEBOAT" copy "$g3" --backup-device "$B" "${K[@]}" --json >"$W/cp.json" 2>"$W/err" || fail "copy --repo: $(cat "$W/err")"
[ "$(json "[p['generation'] for p in j['pushed']]" <"$W/cp.json")" = "['$g3']" ] || fail "copy --repo: $(cat "$W/cp.json")"
json "[b['id'] for b in j['backups']]" < <("$LIFEBOAT" list "${K[@]}" --json) | grep -q "'$g3'" || fail "list --repo lacks $g3 after copy --repo"
"$LIFEBOAT" copy "$g3" --backup-device "$B" "${K[@]}" --to-file "$W/x" >"$W/out" 2>&1 && fail "copy with two targets succeeded"
note "9. repo join: a second host with the fleet key copied joins (a missing or wrong key: refused, nothing made)"
K2=(--repo "$REPO" --fleet-key "$W/fleet2.key" --identity "$W/host2.key")
"$LIFEBOAT" repo join "${K2[@]}" >"$W/j.out" 2>&1 && fail "repo join without a fleet key file succeeded"
grep -q "copy it" "$W/j.out" || fail "repo join without a fleet key: $(cat "$W/j.out")"
"$LIFEBOAT" repo init --repo "$W/other-repo" --fleet-key "$W/other.key" --identity "$W/other-host.key" >/dev/null 2>&1 \
  || fail "repo init of a second repository"
cp "$W/other.key" "$W/fleet2.key"
"$LIFEBOAT" repo join "${K2[@]}" >"$W/j.out" 2>&1 && fail "repo join with another repository's fleet key succeeded"
grep -q "is not the one of the repository" "$W/j.out" || fail "repo join with a wrong fleet key: $(cat "$W/j.out")"
[ ! -e "$W/host2.key" ] || fail "a refused repo join left an identity behind"
cp "$W/fleet.key" "$W/fleet2.key"
"$LIFEBOAT" repo join "${K2[@]}" --json >"$W/j.json" 2>"$W/err" || fail "repo join: $(cat "$W/err")"
h2=$(json "j['host_id']" <"$W/j.json")
[ "$(json "j['identity_made']" <"$W/j.json")" = True ] && [ "$(stat -c %a "$W/host2.key")" = 600 ] \
  || fail "repo join made no root-only identity: $(cat "$W/j.json")"
[ "$h2" != "$hid" ] || fail "the second host got the first host's id $hid"
[ "$("$LIFEBOAT" repo join "${K2[@]}" --json | json "(j['host_id'], j['identity_made'])")" = "('$h2', False)" ] \
  || fail "a second repo join did not keep the identity"
"$LIFEBOAT" push --backup-device "$B" "${K2[@]}" --json >"$W/p2.json" 2>"$W/err" || fail "push as the second host: $(cat "$W/err")"
"$LIFEBOAT" repo hosts "${K[@]}" --json >"$W/h.json" || fail "repo hosts"
[ "$(json "sorted(h['host_id'] for h in j)" <"$W/h.json")" = "$(python3 -c "print(sorted(['$hid', '$h2']))")" ] \
  || fail "repo hosts after the join: $(cat "$W/h.json")"
echo "50-repo-local: ok"
