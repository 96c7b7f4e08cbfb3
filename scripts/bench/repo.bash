# shellcheck shell=bash
# The repository figures of `make bench` (issue 10): sourced by scripts/bench.sh, which gives
# run, fresh_target, line, T/S/M and $B, $LIFEBOAT, $ROOT_DIR. Against a real S3 server on
# 127.0.0.1 (scripts/s3-server.sh: radosgw, its bucket lifeboat-test), in one run:
#   - the server's own PUT throughput: BENCH_REPO_PUTS (4) objects of 64 MiB with curl, one
#     after the other and all at once (the faster is the figure); the first `lifeboat push`
#     of a generation against it;
#   - `lifeboat restore --repo` against `lifeboat restore` of the same generation from the
#     backup partition, each into a fresh ext4;
#   - the bytes a second generation of the unchanged host adds, and those of BENCH_REPO_HOSTS
#     (10) hosts backed up from the same tree (each its own hostname, inventory UUID and age
#     identity), measured on the server (radosgw's count of the bucket's bytes);
#   - the peak RSS of push and of restore --repo (run's /usr/bin/time).
# The host: a disk image (GPT: p1 root ext4, p2 the backup partition), its root a copy of
# BENCH_REPO_MB (400) MB of this machine's /usr/share, /usr/lib and /etc, cached in
# $B/repo-MB.img; the backup partition is made anew every run. radosgw keeps its objects in
# memory (memstore, 3 GiB): about BENCH_REPEAT + 1 times the stored generation must fit.
# shellcheck source=tests/lib/common.bash
. "$ROOT_DIR/tests/lib/common.bash"

REPO_HOSTS=${BENCH_REPO_HOSTS:-10}
REPO_PUTS=${BENCH_REPO_PUTS:-4}
S3SH=$ROOT_DIR/scripts/s3-server.sh
S3DIR=$B/s3

# repo_host_disk: $B/repo-MB.img (made once), attached: RROOT (p1, mounted), RDEV (p2, a new
# store).
repo_host_disk() {
  local img=$B/repo-$REPO_MB.img
  if [ ! -f "$img.ok" ]; then
    echo "bench: making the repository bench's host disk ($REPO_MB MB of files; once, cached in $img)"
    rm -f "$img"
    truncate -s $((REPO_MB * 5 + 600))M "$img"
    sgdisk -n "1:2048:+$((REPO_MB * 2 + 128))M" -c 1:root -n 2:0:0 -c 2:backup "$img" >/dev/null
    loop_attach "$img"
    mkfs.ext4 -q -F -L root-bench "${REPLY}p1"
    mount "${REPLY}p1" "$B/rroot"
    # The files, in a fixed order, until REPO_MB MB (apparent sizes).
    python3 - "$REPO_MB" >"$B/repo-files" <<'PY'
import os, sys
budget, total = int(sys.argv[1]) * 1000 * 1000, 0
for top in ("etc", "usr/share", "usr/lib"):
    for d, dirs, files in os.walk("/" + top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if total + st.st_size > budget:
                sys.exit(0)
            total += st.st_size
            sys.stdout.write(p[1:] + "\0")
PY
    tar -C / --null --no-recursion -cf - -T "$B/repo-files" | tar -C "$B/rroot" -xpf -
    mkdir -p "$B/rroot/etc"
    umount "$B/rroot"
    loop_detach "$REPLY"
    touch "$img.ok"
  fi
  loop_attach "$img"
  RDEV=${REPLY}p2
  mount "${REPLY}p1" "$B/rroot"
  RROOT=$B/rroot
  wipefs -q -a "$RDEV"
  "$LIFEBOAT" init-store --backup-device "$RDEV" >/dev/null
}

# repo_host_as N: the root's host identity files are host N's.
repo_host_as() {
  echo "bench-host-$1" >"$RROOT/etc/hostname"
  printf "PRODUCT_VERSION='8.2.1'\nINSTALLATION_UUID='0b4c9b2e-0000-4000-8000-%012d'\n" "$1" \
    >"$RROOT/etc/xensource-inventory"
}

# repo_bytes: the bytes radosgw counts in the bucket.
repo_bytes() { bash "$S3SH" bytes "$S3DIR" "$BUCKET"; }

# jfield FILE EXPR: EXPR (python, on the JSON `j`) of FILE.
jfield() { python3 -c "import json, sys; j = json.load(open(sys.argv[1])); print($2)" "$1"; }

# repo_fresh: a new repository (REPO_URL: REPO_PREFIX-rN) for the next first push; REPO_B0:
# the bucket's bytes before it.
repo_fresh() {
  REPO_RUN=$((REPO_RUN + 1))
  REPO_URL=s3://$BUCKET/$REPO_PREFIX-r$REPO_RUN
  "$LIFEBOAT" repo init --repo "$REPO_URL" --fleet-key "$B/fleet.key" --identity "$B/host1.key" \
    --quiet >"$B/out/init.out" 2>&1 || { echo "bench: repo init: $(cat "$B/out/init.out")" >&2; exit 1; }
  REPO_B0=$(repo_bytes)
}

repo_bench() {
  echo
  mkdir -p "$B/rroot"
  repo_host_disk
  repo_host_as 1
  echo "bench: repository: starting radosgw (scripts/s3-server.sh, in $S3DIR)"
  on_exit "bash '$S3SH' stop '$S3DIR' >/dev/null 2>&1"
  bash "$S3SH" start "$S3DIR" >"$B/s3-start.out" 2>&1 \
    || { echo "bench: the S3 server did not start: $(tail -n 5 "$B/s3-start.out")" >&2; exit 1; }
  eval "$(bash "$S3SH" env "$S3DIR")"
  export AWS_SHARED_CREDENTIALS_FILE
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
  local ep=$LIFEBOAT_TEST_S3_ENDPOINT
  BUCKET=$LIFEBOAT_TEST_S3_BUCKET
  export LIFEBOAT_CONFIG=$B/repo-lifeboat.toml
  printf '[repository]\n[repository.s3]\nendpoint = "%s"\npath_style = true\n' "$ep" >"$LIFEBOAT_CONFIG"
  local prefix i
  prefix=bench-$(date +%s)
  rm -f "$B/fleet.key" "$B"/host*.key

  # The server's own PUT throughput.
  head -c 64M /dev/urandom >"$B/out/put-probe"
  local puts="" par=""
  for ((i = 1; i <= REPO_PUTS; i++)); do
    puts+="bash $S3SH curl $S3DIR -o /dev/null -T $B/out/put-probe $ep/$BUCKET/put-probe-$i; "
    par+="bash $S3SH curl $S3DIR -o /dev/null -T $B/out/put-probe $ep/$BUCKET/put-probe-p$i & "
  done
  run "S3 PUT ${REPO_PUTS}x64 MiB, one by one" /dev/null "$puts"
  run "S3 PUT ${REPO_PUTS}x64 MiB, at once" /dev/null "${par}wait"
  for ((i = 1; i <= REPO_PUTS; i++)); do
    bash "$S3SH" curl "$S3DIR" -X DELETE "$ep/$BUCKET/put-probe-$i" "$ep/$BUCKET/put-probe-p$i"
  done
  rm -f "$B/out/put-probe"
  local put_secs
  put_secs=$(awk -v a="${T["S3 PUT ${REPO_PUTS}x64 MiB, one by one"]}" \
    -v b="${T["S3 PUT ${REPO_PUTS}x64 MiB, at once"]}" 'BEGIN { print (a < b ? a : b) }')
  PUT_RATE=$(awk -v n="$REPO_PUTS" -v s="$put_secs" 'BEGIN { printf "%.1f", n * 64 * 1048576 / s / 1e6 }')

  REPEAT=1 run "lifeboat backup (local)" "$B/out/backup1.json" \
    "$LIFEBOAT backup --root $RROOT --backup-device $RDEV --keep 2 --no-pool-database --json --quiet"
  # The first push, BENCH_REPEAT times (the fastest kept), each into a new repository (PREFIX-rN)
  # so that every one is a first push; the last is the one the steps below use.
  local b0 b1 b2
  REPO_PREFIX=$prefix REPO_RUN=0
  export REPO_URL
  # shellcheck disable=SC2034 # read by run (scripts/bench.sh)
  BEFORE_RUN=repo_fresh
  run "lifeboat push (first)" "$B/out/push1.json" "$LIFEBOAT push --backup-device $RDEV --repo \"\$REPO_URL\"" \
    "--fleet-key $B/fleet.key --identity $B/host1.key --json --quiet"
  unset BEFORE_RUN
  b0=$REPO_B0 b1=$(repo_bytes)
  local url=$REPO_URL
  local k=(--repo "$url" --fleet-key "$B/fleet.key" --identity "$B/host1.key")
  REPO_STREAM=$(jfield "$B/out/push1.json" "sum(p['stream_bytes'] for p in j['pushed'])")
  REPO_UPLOADED=$(jfield "$B/out/push1.json" "sum(p['uploaded_bytes'] + p['index_bytes'] for p in j['pushed'])")
  REPO_FIRST=$((b1 - b0))
  PUSH_RATE=$(awk -v n="$REPO_STREAM" -v s="${T["lifeboat push (first)"]}" 'BEGIN { printf "%.1f", n / s / 1e6 }')
  PUSH_STORED_RATE=$(awk -v n="$REPO_FIRST" -v s="${T["lifeboat push (first)"]}" 'BEGIN { printf "%.1f", n / s / 1e6 }')
  echo "  push: $((REPO_STREAM / 1000000)) MB of stream, $((REPO_FIRST / 1000000)) MB stored" \
    "(the push's count: $((REPO_UPLOADED / 1000000)) MB): $PUSH_RATE MB/s of stream," \
    "$PUSH_STORED_RATE MB/s stored; radosgw PUT $PUT_RATE MB/s"

  local gen
  gen=$(jfield "$B/out/backup1.json" "j['generation']")
  # shellcheck disable=SC2034 # read by run (scripts/bench.sh)
  BEFORE_RUN=fresh_target
  run "lifeboat restore (local)" /dev/null \
    "$LIFEBOAT restore --backup-device $RDEV $gen --target-dir $B/target --quiet"
  run "lifeboat restore --repo" /dev/null \
    "$LIFEBOAT restore ${k[*]} $gen --target-dir $B/target --quiet"
  unset BEFORE_RUN
  umount "$B/target"

  # A second generation of the unchanged host.
  REPEAT=1 run "lifeboat backup (local, 2nd)" /dev/null \
    "$LIFEBOAT backup --root $RROOT --backup-device $RDEV --keep 2 --no-pool-database --quiet"
  REPEAT=1 run "lifeboat push (2nd)" /dev/null "$LIFEBOAT push --backup-device $RDEV ${k[*]} --quiet"
  b2=$(repo_bytes)
  REPO_SECOND=$((b2 - b1))
  echo "  second generation: $REPO_SECOND bytes stored"

  # Hosts 2..N from the same tree: each its own identity files and age identity (made by
  # `repo join` with the fleet key, as another host of the fleet joins).
  for ((i = 2; i <= REPO_HOSTS; i++)); do
    "$LIFEBOAT" repo join --repo "$url" --fleet-key "$B/fleet.key" \
      --identity "$B/host$i.key" --quiet >"$B/out/init.out" 2>&1 \
      || { echo "bench: host $i joining: $(cat "$B/out/init.out")" >&2; exit 1; }
    repo_host_as "$i"
    "$LIFEBOAT" backup --root "$RROOT" --backup-device "$RDEV" --keep 2 --no-pool-database \
      --json --quiet >"$B/out/backup.json"
    "$LIFEBOAT" push --backup-device "$RDEV" --repo "$url" --fleet-key "$B/fleet.key" \
      --identity "$B/host$i.key" "$(jfield "$B/out/backup.json" "j['generation']")" --quiet >/dev/null
  done
  REPO_HOSTS_BYTES=$(($(repo_bytes) - b2))
  local nh
  nh=$(LIFEBOAT_CONFIG=$LIFEBOAT_CONFIG "$LIFEBOAT" repo hosts "${k[@]}" --json \
    | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
  echo "  $REPO_HOSTS hosts ($nh in repo hosts): the first's $REPO_FIRST bytes, then $REPO_HOSTS_BYTES more" \
    "for hosts 2..$REPO_HOSTS"
  umount "$RROOT"
}

# repo_lines: the table's lines (after bench.sh's header).
repo_lines() {
  line "repository: first push, MB/s of stream vs radosgw's own PUT ($PUSH_RATE vs $PUT_RATE MB/s)" \
    "$(ratio "$PUSH_RATE" "$PUT_RATE")" ">= 0.80"
  line "repository: first push, MB/s stored vs radosgw's own PUT (info: $PUSH_STORED_RATE MB/s)" \
    "$(ratio "$PUSH_STORED_RATE" "$PUT_RATE")" "(info)"
  line "repository: restore speed, --repo vs the backup partition (local time / repo time)" \
    "$(ratio "${T["lifeboat restore (local)"]}" "${T["lifeboat restore --repo"]}")" ">= 0.80"
  line "repository: 2nd generation of the unchanged host, % of the first's bytes (radosgw's count)" \
    "$(awk -v a="$REPO_SECOND" -v b="$REPO_FIRST" 'BEGIN { printf "%.2f", 100 * a / b }')" "< 2.00"
  line "repository: $REPO_HOSTS hosts from one tree, x one host's bytes (radosgw's count)" \
    "$(ratio $((REPO_FIRST + REPO_HOSTS_BYTES)) "$REPO_FIRST")" "< 1.30"
  line "repository: lifeboat push peak RSS (MiB)" \
    "$(awk -v m="${M["lifeboat push (first)"]}" 'BEGIN { printf "%.1f", m / 1024 }')" "< 128"
  line "repository: lifeboat restore --repo peak RSS (MiB)" \
    "$(awk -v m="${M["lifeboat restore --repo"]}" 'BEGIN { printf "%.1f", m / 1024 }')" "< 128"
}
