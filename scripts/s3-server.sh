#!/bin/bash
# A real S3 server for the tests: a one-node Ceph cluster (one monitor, one OSD on memstore, no
# mgr) and radosgw on 127.0.0.1, everything (config, keyrings, data, logs, sockets, PIDs) under
# one directory. Debian's ceph-mon, ceph-osd, radosgw and ceph-common (scripts/setup.sh).
#
#   scripts/s3-server.sh start DIR   # idempotent: a cluster already running in DIR is reused
#   scripts/s3-server.sh env DIR     # prints `export ...` lines: endpoint, credentials, buckets
#   scripts/s3-server.sh stop DIR    # TERM, then KILL, the daemons whose PIDs DIR holds
#   scripts/s3-server.sh curl DIR ARGS...  # curl ARGS, signed (SigV4) with the S3 user's key
#   scripts/s3-server.sh bytes DIR BUCKET  # the bytes BUCKET's objects hold (radosgw's own count)
#
# Ports (monitor, radosgw) are chosen free at start, so two clusters in two directories run side
# by side; the OSD takes the first free port of Ceph's 6800-7300 range. After start, DIR holds:
#   credentials   AWS INI file, profile [default]: the S3 user's access key and secret
#   endpoint      http://127.0.0.1:PORT
#   https-endpoint  https://127.0.0.1:PORT2, the same radosgw over TLS, its certificate (for
#                 IP 127.0.0.1, and 10.0.2.2: the host's loopback as a QEMU guest on a user
#                 network sees it) signed by a CA of this cluster: tls/ca.pem
#   buckets       the buckets made at start: "lifeboat-test" (plain), "lifeboat-lock" (Object
#                 Lock), "lifeboat-small" (a bucket quota of 1 MiB: a full store)
# The first CreateBucket takes seconds while radosgw makes its pools: start does it (warm-up).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|env DIR, $0 curl DIR ARGS..., $0 bytes DIR BUCKET" >&2
  exit 2
}
(($# >= 2)) || usage
cmd=$1
case $cmd in
  curl) ;;
  bytes) (($# == 3)) || usage ;;
  *) (($# == 2)) || usage ;;
esac
mkdir -p "$2"
dir=$(cd "$2" && pwd)
shift 2
conf=$dir/ceph.conf
REGION=us-east-1

log() { echo "s3-server: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# A TCP port on 127.0.0.1 nobody listens on, from a range away from Ceph's own defaults.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if ! ss -Hltn "sport = :$p" | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  die "no free TCP port found on 127.0.0.1"
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }


running() {
  local n=0 pid
  [[ -f $dir/pids ]] || return 1
  while read -r _ pid; do
    alive "$pid" || return 1
    n=$((n + 1))
  done <"$dir/pids"
  ((n == 3)) && [[ -f $dir/buckets ]] || return 1
  curl -s -o /dev/null --max-time 5 "$(cat "$dir/endpoint")"
}

# Starts one daemon in the foreground mode Ceph offers (-f), detached from our stdout.
daemon() {
  local name=$1
  shift
  "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo "$name $!" >>"$dir/pids"
}

s3() { # METHOD PATH [curl args...]: one SigV4-signed request to radosgw, prints the HTTP status
  local method=$1 path=$2
  shift 2
  curl -s -o "$dir/log/last-response" -w '%{http_code}' --max-time 60 -X "$method" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS:$SECRET" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "$(cat "$dir/endpoint")$path"
}

stop() {
  local name pid
  [[ -f $dir/pids ]] || {
    log "nothing to stop in $dir"
    return 0
  }
  # Reverse order: radosgw, OSD, monitor.
  tac "$dir/pids" | while read -r name pid; do
    alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 100); do
    local left=0
    while read -r name pid; do alive "$pid" && left=1; done <"$dir/pids"
    ((left)) || break
    sleep 0.1
  done
  while read -r name pid; do
    if alive "$pid"; then
      log "$name ($pid) ignored TERM for 10 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$dir/pids"
  rm -f "$dir/pids"
  log "stopped the cluster in $dir"
}

start() {
  for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl ss openssl; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh (as root)"
  done
  if running; then
    log "a cluster is already running in $dir at $(cat "$dir/endpoint"): reusing it"
    return 0
  fi
  if [[ -f $dir/pids ]]; then
    log "a cluster in $dir is half up or was killed: stopping what is left and starting anew"
    stop
  fi
  local t0=$SECONDS
  # A start that fails half-way leaves nothing running.
  trap 'stop' EXIT
  rm -rf "${dir:?}"/{mon,osd,rgw,run,log,tls,keyring,monmap,ceph.conf,credentials,endpoint,https-endpoint,buckets}
  mkdir -p "$dir"/{mon,osd,rgw,run,log,tls}
  local fsid mon_port rgw_port tls_port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  tls_port=$(free_port)
  [[ $rgw_port != "$mon_port" && $tls_port != "$mon_port" && $tls_port != "$rgw_port" ]] ||
    die "two free ports drawn alike: run start again"
  # A CA of this cluster and radosgw's certificate for 127.0.0.1 and 10.0.2.2 (the server file holds
  # the certificate and its key, as beast's ssl_certificate wants).
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=lifeboat-test-ca \
      -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" &&
      openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
        -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" &&
      openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" \
        -CAcreateserial -days 30 -extfile <(printf 'subjectAltName=IP:127.0.0.1,IP:10.0.2.2\nbasicConstraints=CA:FALSE\n') \
        -out "$dir/tls/server.crt"
  } >>"$dir/log/setup.out" 2>&1 || die "making the test certificates failed: see $dir/log/setup.out"
  cat "$dir/tls/server.crt" "$dir/tls/server.key" >"$dir/tls/server.pem"
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
crash dir = $dir/log
mon cluster log file = default=$dir/log/ceph.\$channel.log cluster=$dir/log/ceph.log
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
osd objectstore = memstore
memstore device bytes = 3221225472
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
mon max pg per osd = 1000
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$dir/tls/server.pem
rgw data = $dir/rgw
# Quotas enforced on current figures (the tests fill a bucket with a 1 MiB quota).
rgw bucket quota ttl = 0
rgw user quota bucket sync interval = 0
EOF
  echo "http://127.0.0.1:$rgw_port" >"$dir/endpoint"
  echo "https://127.0.0.1:$tls_port" >"$dir/https-endpoint"
  export CEPH_CONF=$conf
  # Keyrings: one file holds every key (a test cluster on loopback, owned by root).
  {
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool "$dir/keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *'
    ceph-authtool "$dir/keyring" --gen-key -n client.rgw.a \
      --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
    monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap"
    ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
  } >>"$dir/log/setup.out" 2>&1 || die "creating the monitor failed: see $dir/log/setup.out"
  daemon mon ceph-mon -i a -f
  local ok=0
  for _ in $(seq 1 60); do
    if timeout 10 ceph --connect-timeout 5 -s >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.5
  done
  ((ok)) || die "the monitor did not answer on port $mon_port: see $dir/log/mon.a.log"
  ceph auth import -i "$dir/keyring" >>"$dir/log/setup.out" 2>&1 ||
    die "importing the keyring failed: see $dir/log/setup.out"
  local uuid id
  uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(ceph osd new "$uuid" 2>>"$dir/log/setup.out") || die "ceph osd new failed: see $dir/log/setup.out"
  ceph-authtool "$dir/keyring" --gen-key -n "osd.$id" \
    --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' \
    >>"$dir/log/setup.out" 2>&1
  ceph auth import -i "$dir/keyring" >>"$dir/log/setup.out" 2>&1
  mkdir -p "$dir/osd/ceph-$id"
  ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" </dev/null >>"$dir/log/setup.out" 2>&1 ||
    die "ceph-osd --mkfs failed: see $dir/log/setup.out"
  daemon osd ceph-osd -i "$id" -f
  ok=0
  for _ in $(seq 1 120); do
    if ceph osd stat 2>/dev/null | grep -q '1 up.*1 in'; then
      ok=1
      break
    fi
    sleep 0.5
  done
  ((ok)) || die "the OSD did not come up: see $dir/log/osd.$id.log"
  daemon rgw radosgw -n client.rgw.a -f
  ok=0
  for _ in $(seq 1 120); do
    if curl -s -o /dev/null --max-time 2 "$(cat "$dir/endpoint")"; then
      ok=1
      break
    fi
    sleep 0.5
  done
  ((ok)) || die "radosgw did not answer on port $rgw_port: see $dir/log/client.rgw.a.log"
  ACCESS=LB$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  SECRET=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
  radosgw-admin user create --uid=lifeboat --display-name=lifeboat \
    --access-key="$ACCESS" --secret="$SECRET" >>"$dir/log/setup.out" 2>&1 ||
    die "radosgw-admin user create failed: see $dir/log/setup.out"
  umask 077
  printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$ACCESS" "$SECRET" \
    >"$dir/credentials"
  umask 022
  # Warm-up: the first CreateBucket makes radosgw's pools (seconds); the first multipart too.
  local code
  code=$(s3 PUT /lifeboat-test)
  [[ $code == 200 ]] || die "creating bucket lifeboat-test answered HTTP $code: $(cat "$dir/log/last-response")"
  code=$(s3 PUT /lifeboat-lock -H 'x-amz-bucket-object-lock-enabled: true')
  [[ $code == 200 ]] || die "creating bucket lifeboat-lock answered HTTP $code: $(cat "$dir/log/last-response")"
  code=$(s3 PUT /lifeboat-small)
  [[ $code == 200 ]] || die "creating bucket lifeboat-small answered HTTP $code: $(cat "$dir/log/last-response")"
  { radosgw-admin quota set --quota-scope=bucket --bucket=lifeboat-small --max-size=1048576 &&
    radosgw-admin quota enable --quota-scope=bucket --bucket=lifeboat-small; } \
    >>"$dir/log/setup.out" 2>&1 || die "setting the quota of lifeboat-small failed: see $dir/log/setup.out"
  code=$(s3 POST '/lifeboat-test/warm-up?uploads=')
  [[ $code == 200 ]] || die "the warm-up multipart upload answered HTTP $code: $(cat "$dir/log/last-response")"
  local upload
  upload=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$dir/log/last-response")
  code=$(s3 DELETE "/lifeboat-test/warm-up?uploadId=$upload")
  [[ $code == 204 ]] || die "aborting the warm-up upload answered HTTP $code"
  printf 'lifeboat-test\nlifeboat-lock\nlifeboat-small\n' >"$dir/buckets"
  trap - EXIT
  log "radosgw up at $(cat "$dir/endpoint") in $((SECONDS - t0)) s (cluster in $dir)"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  env)
    running || die "no cluster is running in $dir: run $0 start $dir"
    echo "export LIFEBOAT_TEST_S3_ENDPOINT=$(cat "$dir/endpoint")"
    echo "export AWS_SHARED_CREDENTIALS_FILE=$dir/credentials"
    echo "export LIFEBOAT_TEST_S3_BUCKET=lifeboat-test"
    echo "export LIFEBOAT_TEST_S3_LOCK_BUCKET=lifeboat-lock"
    echo "export LIFEBOAT_TEST_S3_SMALL_BUCKET=lifeboat-small"
    echo "export LIFEBOAT_TEST_S3_HTTPS_ENDPOINT=$(cat "$dir/https-endpoint")"
    echo "export LIFEBOAT_TEST_S3_CA_FILE=$dir/tls/ca.pem"
    echo "export LIFEBOAT_TEST_S3_DIR=$dir"
    ;;
  curl)
    # The secret goes through a config on stdin (never argv); radosgw refuses a SigV4 request
    # without x-amz-content-sha256, which curl 7.88 does not send by itself.
    running || die "no cluster is running in $dir: run $0 start $dir"
    access=$(sed -n 's/^aws_access_key_id *= *//p' "$dir/credentials")
    secret=$(sed -n 's/^aws_secret_access_key *= *//p' "$dir/credentials")
    [[ -n $access && -n $secret ]] || die "no key in $dir/credentials"
    printf 'user = "%s:%s"\n' "$access" "$secret" | curl -sS -f --aws-sigv4 "aws:amz:$REGION:s3" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -K - "$@"
    ;;
  bytes)
    running || die "no cluster is running in $dir: run $0 start $dir"
    CEPH_CONF=$conf radosgw-admin bucket stats --bucket="$1" 2>>"$dir/log/admin.out" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["usage"].get("rgw.main", {}).get("size", 0))' ||
      die "radosgw-admin bucket stats --bucket=$1 failed: see $dir/log/admin.out"
    ;;
  *) usage ;;
esac
