#!/bin/bash
# S3 Object Lock on a real radosgw (scripts/s3-server.sh; bucket lifeboat-lock has Object Lock
# enabled, lifeboat-test has not): `repo init --object-lock-days` on the plain bucket is refused
# with a message naming Object Lock; on the locked bucket the config records it, a push writes
# the index, the pool database and the chunks with COMPLIANCE retention, a DELETE of the index's
# version by curl (--aws-sigv4, the host's own credentials) is refused by the server, a second
# push extends the retention of the chunks it reuses, `repo prune --keep-last 1` says "cannot
# delete yet (retained until DATE)" and exits 0, and both generations still verify and restore.
# shellcheck source=tests/root/repo-lib.bash
source "$(dirname "$0")/repo-lib.bash"
command -v radosgw >/dev/null || fail "radosgw is not installed (make setup)"
t_all=$SECONDS
repo_fixture
S3DIR=$W/s3
on_exit "bash scripts/s3-server.sh stop '$S3DIR' >/dev/null 2>&1"
bash scripts/s3-server.sh start "$S3DIR" >"$W/s3-start.out" 2>&1 \
  || fail "the S3 server did not start: $(tail -n 5 "$W/s3-start.out") (logs: $S3DIR/log)"
eval "$(bash scripts/s3-server.sh env "$S3DIR")"
EP=$LIFEBOAT_TEST_S3_ENDPOINT
PLAIN=$LIFEBOAT_TEST_S3_BUCKET
BUCKET=$LIFEBOAT_TEST_S3_LOCK_BUCKET
PREFIX=locked-$$
export AWS_SHARED_CREDENTIALS_FILE
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export LIFEBOAT_CONFIG=$W/lifeboat.toml
cat >"$LIFEBOAT_CONFIG" <<TOML
[repository]
[repository.s3]
endpoint = "$EP"
path_style = true
TOML
K=(--repo "s3://$BUCKET/$PREFIX" --fleet-key "$W/fleet.key" --identity "$W/host.key")
AKEY=$(sed -n 's/^aws_access_key_id *= *//p' "$AWS_SHARED_CREDENTIALS_FILE")
SKEY=$(sed -n 's/^aws_secret_access_key *= *//p' "$AWS_SHARED_CREDENTIALS_FILE")
[ -n "$AKEY" ] && [ -n "$SKEY" ] || fail "no key in $AWS_SHARED_CREDENTIALS_FILE"
# s3curl ARGS...: curl signing with the test user's key (as 52-repo-s3.sh), no -f: callers
# read the status with -w.
s3curl() {
  printf 'user = "%s:%s"\n' "$AKEY" "$SKEY" | curl -sS --aws-sigv4 "aws:amz:us-east-1:s3" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -K - "$@"
}
# retained_until KEY: the object's COMPLIANCE retain-until date (empty when not COMPLIANCE).
retained_until() {
  s3curl -I "$EP/$BUCKET/$1" >"$W/head.out" || fail "HEAD $1 failed"
  grep -qi '^x-amz-object-lock-mode: *COMPLIANCE' "$W/head.out" || return 0
  sed -n 's/^x-amz-object-lock-retain-until-date: *\([^\r]*\).*/\1/Ip' "$W/head.out"
}
# days_ahead DATE: how many days from now DATE is (one decimal).
days_ahead() {
  python3 -c "import sys,datetime as d; t=d.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')); print(round((t-d.datetime.now(d.timezone.utc)).total_seconds()/86400,1))" "$1"
}

note "1. repo init --object-lock-days on a bucket without Object Lock: refused"
"$LIFEBOAT" repo init --repo "s3://$PLAIN/$PREFIX" --fleet-key "$W/plain-fleet.key" --identity "$W/plain-host.key" \
  --object-lock-days 1 >"$W/init-plain.out" 2>&1 && fail "repo init --object-lock-days succeeded on $PLAIN"
grep -q "has no S3 Object Lock" "$W/init-plain.out" || fail "refusal does not name Object Lock: $(cat "$W/init-plain.out")"
note "$(grep -o "has no S3 Object Lock[^:]*" "$W/init-plain.out" | head -n 1)"

note "2. repo init --object-lock-days 1 on s3://$BUCKET/$PREFIX: recorded in the config"
"$LIFEBOAT" repo init "${K[@]}" --chunk-kib 128 --grace 3600 --object-lock-days 1 >"$W/init.out" 2>&1 \
  || fail "repo init: $(cat "$W/init.out")"
grep '^AGE-SECRET-KEY-1' "$W/init.out" >"$W/recovery.key" || fail "no recovery key printed: $(cat "$W/init.out")"
s3curl -f -o "$W/config" "$EP/$BUCKET/$PREFIX/config" || fail "cannot read the config"
[ "$(json "j['object_lock_days']" <"$W/config")" = 1 ] || fail "config does not record the lock: $(cat "$W/config")"

note "3. backup --repo: index and chunks written with COMPLIANCE retention"
repo_first_backup_step
hid=$("$LIFEBOAT" repo hosts "${K[@]}" --json | json "j[0]['host_id']")
index=$PREFIX/hosts/$hid/$g1.index
s3curl -f "$EP/$BUCKET?list-type=2&max-keys=1&prefix=$PREFIX%2Fchunks%2F" >"$W/list.xml" || fail "cannot list chunks"
chunk=$(sed -n 's:.*<Key>\([^<]*\)</Key>.*:\1:p' "$W/list.xml")
[ -n "$chunk" ] || fail "no chunk under $PREFIX/chunks/"
u_index=$(retained_until "$index")
u_chunk1=$(retained_until "$chunk")
[ -n "$u_index" ] || fail "the index $index is not under COMPLIANCE retention: $(cat "$W/head.out")"
[ -n "$u_chunk1" ] || fail "chunk $chunk is not under COMPLIANCE retention: $(cat "$W/head.out")"
ahead=$(days_ahead "$u_index")
note "index retained until $u_index ($ahead days), chunk until $u_chunk1"
python3 -c "import sys; sys.exit(0 if 0.9 <= $ahead <= 1.1 else 1)" || fail "index retained $ahead days, not 1"

note "4. DELETE of the index's version with the host's own credentials: refused by the server"
retained_until "$index" >/dev/null
vid=$(sed -n 's/^x-amz-version-id: *\([^\r]*\).*/\1/Ip' "$W/head.out")
[ -n "$vid" ] || fail "HEAD $index gave no version id: $(cat "$W/head.out")"
code=$(s3curl -o "$W/del.out" -w '%{http_code}' -X DELETE "$EP/$BUCKET/$index?versionId=$vid") || fail "curl DELETE failed"
[ "$code" = 403 ] || fail "DELETE of the locked index answered HTTP $code: $(cat "$W/del.out")"
note "DELETE ?versionId: HTTP $code $(sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' "$W/del.out")"
s3curl -f -o /dev/null "$EP/$BUCKET/$index" || fail "the index is gone after the refused DELETE"

note "5. a second backup: the reused chunks' retention is extended"
sleep 2
repo_backup "$W/b2.json"
g2=$(json "j['generation']" <"$W/b2.json")
ext=$(json "j['pushed']['retention_extended']" <"$W/b2.json")
up=$(json "j['pushed']['uploaded_chunks']" <"$W/b2.json")
n=$(json "j['pushed']['chunks']" <"$W/b2.json")
note "second push: $n chunks, $up uploaded, $ext retention extended"
[ "$ext" -gt 0 ] && [ $((ext + up)) -ge "$((n / 2))" ] || fail "reused chunks not extended: $(cat "$W/b2.json")"
u_chunk2=$(retained_until "$chunk")
python3 -c "import sys,datetime as d; f=lambda s: d.datetime.fromisoformat(s.replace('Z','+00:00')); sys.exit(0 if f(sys.argv[2]) > f(sys.argv[1]) else 1)" "$u_chunk1" "$u_chunk2" \
  || fail "chunk $chunk retained until $u_chunk2, not later than $u_chunk1"

note "6. repo prune --keep-last 1: the locked generation cannot be deleted yet, exit 0"
"$LIFEBOAT" repo prune "${K[@]}" --keep-last 1 >"$W/prune.out" 2>&1 || fail "repo prune failed: $(cat "$W/prune.out")"
grep -q "hosts/$hid/$g1: cannot delete yet (retained until" "$W/prune.out" || fail "prune did not say 'cannot delete yet': $(cat "$W/prune.out")"
note "$(grep "cannot delete yet" "$W/prune.out" | head -n 1)"
grep -q "^forgot" "$W/prune.out" && fail "prune forgot a locked generation: $(cat "$W/prune.out")"
[ "$(json "sorted(b['id'] for b in j['backups'])" < <("$LIFEBOAT" list "${K[@]}" --json))" = "$(python3 -c "print(sorted(['$g1', '$g2']))")" ] \
  || fail "list after prune: $("$LIFEBOAT" list "${K[@]}" --json)"

note "7. everything still verifies and restores"
"$LIFEBOAT" verify "${K[@]}" "$g1" >"$W/v1.out" 2>&1 || fail "verify --repo $g1: $(cat "$W/v1.out")"
repo_verify_restore_step
echo "54-repo-lock: ok ($((SECONDS - t_all)) s)"
