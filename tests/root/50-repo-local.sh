#!/bin/bash
# The off-host repository in a directory (issue 10, items 1 and 2): `repo init` (a recovery
# key printed once), `backup --repo` (local commit, then a push that verifies the generation
# as it reads it), `list|verify|restore --repo` (the tar stream reassembled from encrypted
# chunks, consumed by core's verify loop and restore engine), a second backup of the
# unchanged root adds < 2% to the repository, `push` finds nothing left to push, the recovery
# key alone reads the generation, a flipped chunk is named by `repo check --read-data` and by
# `verify --repo`, and `repo prune` marks before it deletes.
source "$(dirname "$0")/store-lib.bash"
if [ -z "${LBTEST:-}" ]; then
  cargo build -q -p lifeboat-tests --bins || fail "cargo build of the lbtest-* tools failed"
  LBTEST=$PWD/target/debug
fi
L=$(make_disk d 112 192); make_root "$L"; B=${L}p2
# Enough content for the 2% figure to mean something (chunks of 128 KiB on average here).
mkdir -p "$R/usr/lib"
for i in $(seq 1 20); do head -c 2M /dev/urandom >"$R/usr/lib/blob$i"; done
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
# No host configuration file is read: everything is on the command line.
export LIFEBOAT_CONFIG=$W/lifeboat.toml
REPO=$W/repo
K=(--repo "$REPO" --fleet-key "$W/fleet.key" --identity "$W/host.key")

note "1. repo init: a new recovery key printed once, key files root-only"
"$LIFEBOAT" repo init "${K[@]}" --chunk-kib 128 --grace 3600 >"$W/init.out" 2>&1 || fail "repo init: $(cat "$W/init.out")"
grep '^AGE-SECRET-KEY-1' "$W/init.out" >"$W/recovery.key" || fail "no recovery key printed: $(cat "$W/init.out")"
for f in fleet.key host.key; do
  [ "$(stat -c %a "$W/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$W/$f")"
done
grep -rq "AGE-SECRET-KEY\|LIFEBOAT-FLEET-KEY" "$REPO" && fail "a secret key lies in plaintext in the repository"
"$LIFEBOAT" repo init "${K[@]}" >"$W/out" 2>&1 && fail "a second repo init on the same directory succeeded"

note "2. backup --repo: committed locally, then pushed"
"$LIFEBOAT" backup --root "$R" --backup-device "$B" "${K[@]}" --keep 5 --json >"$W/b1.json" 2>"$W/err" \
  || fail "backup --repo: $(cat "$W/err")"
g1=$(json "j['generation']" <"$W/b1.json")
first=$(json "j['pushed']['uploaded_bytes'] + j['pushed']['index_bytes']" <"$W/b1.json")
stream=$(json "j['pushed']['stream_bytes']" <"$W/b1.json")
note "first push: $first bytes stored for a $stream-byte stream"
[ "$(json "[b['id'] for b in j['backups']]" < <("$LIFEBOAT" list "${K[@]}" --json))" = "['$g1']" ] \
  || fail "list --repo: $("$LIFEBOAT" list "${K[@]}" --json)"
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
"$LIFEBOAT" verify "${K[@]}" latest >"$W/v.out" 2>&1 || fail "verify --repo: $(cat "$W/v.out")"
grep -q "sound" "$W/v.out" || fail "verify --repo: $(cat "$W/v.out")"
mkdir "$W/restored"
# peak_rss_kib CMD...: runs CMD (its output in $W/rss.out), prints its peak RSS in KiB.
peak_rss_kib() {
  python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"), stderr=subprocess.STDOUT)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)' "$W/rss.out" "$@"
}
rss=$(peak_rss_kib "$LIFEBOAT" restore "${K[@]}" "$g1" --target-dir "$W/restored")
[ "$rss" -gt 0 ] || fail "restore --repo failed: $(cat "$W/rss.out" 2>/dev/null)"
"$LBTEST/lbtest-compare" "$R" "$W/restored" --ignore lost+found >"$W/cmp.out" \
  || fail "restore --repo differs: $(head -c 3000 "$W/cmp.out")"
note "restore --repo peak RSS: $((rss / 1024)) MiB"
[ "$rss" -lt $((128 * 1024)) ] || fail "restore --repo used $((rss / 1024)) MiB (budget 128 MiB)"

note "4. a second backup of the unchanged root adds < 2%; push finds nothing left"
sleep 1
"$LIFEBOAT" backup --root "$R" --backup-device "$B" "${K[@]}" --keep 5 --json >"$W/b2.json" 2>"$W/err" \
  || fail "second backup --repo: $(cat "$W/err")"
second=$(json "j['pushed']['uploaded_bytes'] + j['pushed']['index_bytes']" <"$W/b2.json")
note "second push: $second bytes ($(python3 -c "print(round(100*$second/$first, 2))")% of the first)"
python3 -c "import sys; sys.exit(0 if $second < 0.02 * $first else 1)" \
  || fail "the second generation added $second bytes, the first $first"
"$LIFEBOAT" push --backup-device "$B" "${K[@]}" >"$W/p.out" 2>&1 || fail "push: $(cat "$W/p.out")"
[ "$(grep -c "already in" "$W/p.out")" = 2 ] || fail "push pushed again: $(cat "$W/p.out")"

note "5. the recovery key alone (no fleet key file) reads this host's generation"
hid=$("$LIFEBOAT" repo hosts "${K[@]}" --json | json "j[0]['host_id']")
"$LIFEBOAT" verify --repo "$REPO" --identity "$W/recovery.key" --fleet-key "$W/none" --repo-host "$hid" latest \
  >"$W/v.out" 2>&1 || fail "verify with the recovery key: $(cat "$W/v.out")"

note "6. a flipped chunk is named by repo check --read-data and verify --repo"
"$LIFEBOAT" repo check "${K[@]}" --read-data >"$W/c.out" 2>&1 || fail "repo check: $(cat "$W/c.out")"
chunk=$(find "$REPO/chunks" -type f | sort | sed -n 1p)
python3 - "$chunk" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 1
open(p, 'wb').write(b)
PY
id=$(basename "$chunk")
"$LIFEBOAT" repo check "${K[@]}" >"$W/c.out" 2>&1 || fail "repo check without --read-data read the data: $(cat "$W/c.out")"
"$LIFEBOAT" repo check "${K[@]}" --read-data >"$W/c.out" 2>&1 && fail "repo check --read-data missed the flipped chunk"
grep -q "$id" "$W/c.out" || fail "repo check does not name chunk $id: $(cat "$W/c.out")"
"$LIFEBOAT" verify "${K[@]}" >"$W/v.out" 2>&1 && fail "verify --repo missed the flipped chunk"
grep -q "DAMAGED.*$id" "$W/v.out" || fail "verify --repo does not name chunk $id: $(cat "$W/v.out")"

note "7. repo prune: generations forgotten, their chunks marked, none deleted before the grace period"
"$LIFEBOAT" repo prune "${K[@]}" --keep-last 1 --json >"$W/pr.json" || fail "repo prune"
[ "$(json "len(j['forgotten'])" <"$W/pr.json")" = 1 ] && [ "$(json "j['deleted']" <"$W/pr.json")" = 0 ] \
  || fail "prune: $(cat "$W/pr.json")"
[ "$(json "len(j['backups'])" < <("$LIFEBOAT" list "${K[@]}" --json))" = 1 ] || fail "prune kept both"
echo "50-repo-local: ok"
