#!/bin/bash
# The off-host repository on a real S3 server (radosgw on a one-node Ceph cluster,
# scripts/s3-server.sh, started once): the round trip of 50-repo-local.sh (tests/root/
# repo-lib.bash) on s3://BUCKET/PREFIX, the endpoint and path-style addressing from a
# LIFEBOAT_CONFIG file, the credentials from AWS_SHARED_CREDENTIALS_FILE (never argv): `repo
# init`, `backup --repo`, `list --repo`, `verify --repo`, `restore --repo` compared entry by
# entry, a second push adds < 2%, `repo check`, a chunk object overwritten on the server with one
# bit flipped (curl --aws-sigv4) named by `verify --repo` and `repo check --read-data`, a wrong
# secret refused with an error naming the credentials (the local generations still verify),
# and the server stopped: "cannot be reached" within seconds. Prints the push throughput beside
# the server's own large-object PUT throughput.
# shellcheck source=tests/root/repo-lib.bash
source "$(dirname "$0")/repo-lib.bash"
command -v radosgw >/dev/null || fail "radosgw is not installed (make setup)"
t_all=$SECONDS
repo_fixture
S3DIR=$W/s3
on_exit "bash scripts/s3-server.sh stop '$S3DIR' >/dev/null 2>&1"
t0=$SECONDS
bash scripts/s3-server.sh start "$S3DIR" >"$W/s3-start.out" 2>&1 \
  || fail "the S3 server did not start: $(tail -n 5 "$W/s3-start.out") (logs: $S3DIR/log)"
s3_seconds=$((SECONDS - t0))
note "radosgw up in $s3_seconds s"
eval "$(bash scripts/s3-server.sh env "$S3DIR")"
EP=$LIFEBOAT_TEST_S3_ENDPOINT
BUCKET=$LIFEBOAT_TEST_S3_BUCKET
PREFIX=fleet-$$
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

# s3curl ARGS...: curl signing with the test user's key (scripts/s3-server.sh curl).
s3curl() { bash scripts/s3-server.sh curl "$S3DIR" "$@"; }

note "1. repo init on s3://$BUCKET/$PREFIX"
repo_init_step
note "2. backup --repo: committed locally, then pushed"
repo_first_backup_step
note "3. verify --repo and restore --repo, compared with the source tree"
repo_verify_restore_step
note "4. a second backup of the unchanged root adds < 2%; push finds nothing left"
repo_second_backup_step
note "5. the recovery key alone reads this host's generation"
hid=$("$LIFEBOAT" repo hosts "${K[@]}" --json | json "j[0]['host_id']")
"$LIFEBOAT" verify --repo "s3://$BUCKET/$PREFIX" --identity "$W/recovery.key" --fleet-key "$W/none" \
  --repo-host "$hid" latest >"$W/v.out" 2>&1 || fail "verify with the recovery key: $(cat "$W/v.out")"

note "6. a chunk object flipped on the server is named by repo check --read-data and verify --repo"
"$LIFEBOAT" repo check "${K[@]}" --read-data >"$W/c.out" 2>&1 || fail "repo check: $(cat "$W/c.out")"
s3curl "$EP/$BUCKET?list-type=2&max-keys=1&prefix=$PREFIX%2Fchunks%2F" >"$W/list.xml" || fail "cannot list chunks with curl"
key=$(sed -n 's:.*<Key>\([^<]*\)</Key>.*:\1:p' "$W/list.xml")
[ -n "$key" ] || fail "no chunk object under $PREFIX/chunks/: $(cat "$W/list.xml")"
s3curl -o "$W/chunk" "$EP/$BUCKET/$key" || fail "cannot get $key"
flip_middle_byte "$W/chunk"
s3curl -T "$W/chunk" "$EP/$BUCKET/$key" >/dev/null || fail "cannot overwrite $key"
repo_flipped_chunk_step "$(basename "$key")"

note "7. throughput: the first push beside radosgw's own large-object PUT"
head -c 64M /dev/urandom >"$W/big"
put=$(s3curl -o /dev/null -w '%{speed_upload}' -T "$W/big" "$EP/$BUCKET/put-probe-$$") || fail "PUT of 64 MiB failed"
rm -f "$W/big"
note "$(python3 -c "print(f'backup+push {$stream/1e6/$push_seconds:.1f} MB/s of stream ({$first/1e6/$push_seconds:.1f} MB/s stored, $push_seconds s); radosgw PUT of 64 MiB {$put/1e6:.1f} MB/s')")"

note "8. a wrong secret: refused, the credentials named, nothing lost locally"
sed "s/^aws_secret_access_key *=.*/aws_secret_access_key = wrong-$$/" "$AWS_SHARED_CREDENTIALS_FILE" >"$W/bad-credentials"
rc=0
AWS_SHARED_CREDENTIALS_FILE=$W/bad-credentials "$LIFEBOAT" backup --root "$R" --backup-device "$B" "${K[@]}" \
  --keep 5 >"$W/bad.out" 2>&1 || rc=$?
((rc != 0)) || fail "backup --repo with a wrong secret succeeded: $(cat "$W/bad.out")"
grep -qi "credentials" "$W/bad.out" || fail "the wrong secret's error does not name the credentials: $(cat "$W/bad.out")"
note "exit $rc: $(grep -i credentials "$W/bad.out" | head -n 1)"
"$LIFEBOAT" verify --backup-device "$B" >"$W/lv.out" 2>&1 || fail "the local generations no longer verify: $(cat "$W/lv.out")"

note "9. the server stopped: cannot be reached, within seconds"
bash scripts/s3-server.sh stop "$S3DIR" >/dev/null 2>&1
t0=$SECONDS
"$LIFEBOAT" list "${K[@]}" >"$W/down.out" 2>&1 && fail "list --repo succeeded with the server stopped"
took=$((SECONDS - t0))
grep -q "cannot be reached" "$W/down.out" || fail "no 'cannot be reached' error: $(cat "$W/down.out")"
note "after ${took} s: $(grep "cannot be reached" "$W/down.out" | head -n 1)"
((took <= 20)) || fail "the unreachable server took $took s to report"
echo "52-repo-s3: ok ($((SECONDS - t_all)) s, of which $s3_seconds s starting radosgw)"
