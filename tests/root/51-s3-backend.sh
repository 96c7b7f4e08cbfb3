#!/bin/bash
# The S3 backend (repo/src/backend/s3.rs) against a real server: radosgw on a one-node Ceph
# cluster (scripts/s3-server.sh) on free loopback ports. Runs repo/tests/s3_backend.rs:
# put/get/head/delete, list paging with continuation tokens, a multipart upload, wrong
# credentials, a missing bucket, Object Lock (a retained object cannot be deleted), and prints
# the loopback PUT throughput; then stops the server and checks that the same endpoint is
# Unreachable within seconds (bounded retries).
# HTTPS: the same radosgw over TLS, trusted through S3Settings::ca_file, refused without it.
# A bucket with a 1 MiB quota stands for a full store: Full, and an aborted multipart upload.
source "$(dirname "$0")/lib.bash" s3-backend
S3DIR=$W/s3
on_exit "bash scripts/s3-server.sh stop '$S3DIR' >/dev/null 2>&1"
t0=$SECONDS
bash scripts/s3-server.sh start "$S3DIR" || fail "the S3 server did not start (logs: $S3DIR/log)"
note "radosgw up in $((SECONDS - t0)) s"
eval "$(bash scripts/s3-server.sh env "$S3DIR")"
export CI=${CI:-} LIFEBOAT_TEST_S3_ENDPOINT AWS_SHARED_CREDENTIALS_FILE
rc=0
cargo test --locked -q -p lifeboat-repo --test s3_backend -- --ignored --skip stopped_server \
  --nocapture --test-threads 2 >"$W/tests.out" 2>&1 || rc=$?
sed -nE 's/.*(S3 loopback PUT|untrusted certificate:)/\1/p; /^(failures|thread .* panicked|test result)/p' "$W/tests.out"
((rc == 0)) && grep -q '^test result: ok\. 9 passed' "$W/tests.out" ||
  fail "the S3 backend tests failed (exit $rc; output above, all of it in $W/tests.out)"
grep -q 'S3 loopback PUT throughput' "$W/tests.out" || fail "no throughput figure printed"
note "stopping the server: its endpoint must now be unreachable"
bash scripts/s3-server.sh stop "$S3DIR"
rc=0
cargo test --locked -q -p lifeboat-repo --test s3_backend -- --ignored --exact \
  stopped_server_is_unreachable --nocapture >"$W/stopped.out" 2>&1 || rc=$?
sed -nE 's/.*(unreachable after)/\1/p; /^(thread .* panicked|test result)/p' "$W/stopped.out"
((rc == 0)) && grep -q '^test result: ok\. 1 passed' "$W/stopped.out" ||
  fail "a stopped server was not reported Unreachable in time (exit $rc)"
note "ok ($((SECONDS - t0)) s)"
