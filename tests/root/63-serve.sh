#!/bin/bash
# host=H transport=tls against a real `lifeboat serve` on 127.0.0.1: a CA of `lifeboat ca`,
# certificates (mutual TLS) and tokens; the host-backup/list/verify/host-restore round trip
# with each; refusals of a certificate of another CA, an expired certificate, a wrong token
# and a backup-only credential asking to restore; a client killed mid-upload (nothing
# committed, the previous generation still verifies); 20 clients at once (each completes or
# is refused as busy with status 12, nothing lost or half-written); every request logged with
# the client's name and role.
source "$(dirname "$0")/store-lib.bash"
L=$(make_disk d 40 128); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
"$LIFEBOAT" backup --root "$R" --backup-device "$B" -q || fail "first backup"
M=$W/m; mkdir -p "$M"
latest() { "$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']"; }

note "a CA, certificates and tokens"
C=$W/ca
"$LIFEBOAT" ca init "$C" 2>/dev/null || fail "ca init"
[ "$(stat -c %a "$C/ca.key")" = 600 ] || fail "ca.key is not mode 600"
"$LIFEBOAT" ca issue "$C" --name 127.0.0.1 --role server 2>/dev/null || fail "issue server"
"$LIFEBOAT" ca issue "$C" --name alice --role admin 2>/dev/null || fail "issue admin"
"$LIFEBOAT" ca issue "$C" --name cron --role backup 2>/dev/null || fail "issue backup"
"$LIFEBOAT" ca issue "$C" --name old --role admin --days 1 --backdate-days 3 2>/dev/null || fail "issue expired"
"$LIFEBOAT" ca issue "$C" --name alice --role admin 2>"$W/out" && fail "issue overwrote alice's files"
"$LIFEBOAT" ca init "$W/ca2" 2>/dev/null && "$LIFEBOAT" ca issue "$W/ca2" --name mallory --role admin 2>/dev/null || fail "second CA"
openssl x509 -in "$C/cron.pem" -noout -subject | grep -q 'OU *= *backup' || fail "no role in the certificate: $(openssl x509 -in "$C/cron.pem" -noout -subject)"
T=$W/tokens
"$LIFEBOAT" token add ops --role restore --tokens-file "$T" >"$W/ops.token" 2>/dev/null || fail "token add ops"
"$LIFEBOAT" token add nightly --role backup --tokens-file "$T" >"$W/nightly.token" 2>/dev/null || fail "token add nightly"
echo "lbt_0000" >"$W/wrong.token"
grep -qF "$(cat "$W/ops.token")" "$T" && fail "the tokens file holds a token in clear"
"$LIFEBOAT" token list --tokens-file "$T" | grep -qx "nightly backup" || fail "token list: $("$LIFEBOAT" token list --tokens-file "$T")"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$W/serve.toml" <<CONF
[serve]
listen = "127.0.0.1:$PORT"
cert = "$C/127.0.0.1.pem"
key = "$C/127.0.0.1.key"
client_ca = "$C/ca.pem"
tokens = "$T"
max_concurrent = 6
CONF
: >"$W/serve.log"
"$LIFEBOAT" serve --config "$W/serve.toml" 2>"$W/serve.log" &
SERVE=$!
on_exit "kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null"
for _ in $(seq 100); do grep -q listening "$W/serve.log" && break; sleep 0.1; done
kill -0 "$SERVE" || fail "lifeboat serve did not start: $(cat "$W/serve.log")"

H="host=127.0.0.1:$PORT transport=tls ca=$C/ca.pem"
cert() { echo "$H cert=$C/$1.pem key=$C/$1.key"; }
token() { echo "$H token-file=$W/$1.token"; }
read -ra ADMIN <<<"$(cert alice)"
read -ra OPS <<<"$(token ops)"

for how in ADMIN OPS; do
  declare -n A=$how
  note "$how: host-backup, list, verify, host-restore"
  "$LIFEBOAT" host-backup "${A[@]}" file-name="$W/$how.xbk" --root "$R" >"$W/out" 2>&1 || fail "$how host-backup: $(cat "$W/out")"
  [ ! -e "$W/$how.xbk.partial" ] || fail "partial left"
  zstd -q -dc "$W/$how.xbk" | tar -tf - >"$W/members" || fail "$how: GNU tar cannot read the archive"
  grep -q 'var/lib/f50$' "$W/members" || fail "$how: the archive lacks var/lib/f50"
  "$LIFEBOAT" verify --file-name "$W/$how.xbk" >"$W/out" 2>&1 || fail "$how: local verify: $(cat "$W/out")"
  "$LIFEBOAT" list "${A[@]}" --backup-device "$B" --json >"$W/list.json" 2>"$W/err" || fail "$how list: $(cat "$W/err")"
  json "j['backups'][-1]['id']" <"$W/list.json" | grep -qx "$(latest)" || fail "$how list: $(cat "$W/list.json")"
  "$LIFEBOAT" verify "${A[@]}" --backup-device "$B" >"$W/out" 2>&1 || fail "$how verify: $(cat "$W/out")"
  "$LIFEBOAT" verify "${A[@]}" file-name="$W/$how.xbk" >"$W/out" 2>&1 || fail "$how verify upload: $(cat "$W/out")"
  before=$(latest)
  "$LIFEBOAT" host-restore "${A[@]}" file-name="$W/$how.xbk" --backup-device "$B" --root "$R" >"$W/out" 2>&1 \
    || fail "$how host-restore: $(cat "$W/out")"
  staged=$(latest)
  [ "$staged" != "$before" ] || fail "$how: no new generation"
  mount -o ro "$B" "$M"; cmp "$W/$how.xbk" "$M/generations/$staged/backup.tar.zst" || { umount "$M"; fail "the staged copy differs"; }; umount "$M"
  set +e
  "$LIFEBOAT" list "${A[@]}" --backup-device "$W/no-such-device" >"$W/out" 2>&1; rc=$?
  set -e
  [ "$rc" = 2 ] && grep -q no-such-device "$W/out" || fail "$how: a far error: status $rc: $(cat "$W/out")"
done

refused() { # WHAT PATTERN... (after a command that must fail; its output in $W/out)
  local what=$1; shift
  for p in "$@"; do grep -qi -- "$p" "$W/out" || fail "$what: message lacks '$p': $(cat "$W/out")"; done
  note "$what refused: $(tr '\n' ' ' <"$W/out" | head -c 300)"
}
good=$(latest)
note "refusals"
read -ra X <<<"$H cert=$W/ca2/mallory.pem key=$W/ca2/mallory.key"
"$LIFEBOAT" list "${X[@]}" --backup-device "$B" >"$W/out" 2>&1 && fail "a certificate of another CA was accepted"
refused "other CA" "TLS with 127.0.0.1 failed" "chain"
read -ra X <<<"$(cert old)"
"$LIFEBOAT" list "${X[@]}" --backup-device "$B" >"$W/out" 2>&1 && fail "an expired certificate was accepted"
refused "expired certificate" "expired"
read -ra X <<<"$(token wrong)"
"$LIFEBOAT" list "${X[@]}" --backup-device "$B" >"$W/out" 2>&1 && fail "a wrong token was accepted"
refused "wrong token" "token is not known"
read -ra X <<<"$(token nightly)"
"$LIFEBOAT" list "${X[@]}" --backup-device "$B" >"$W/out" 2>&1 || fail "a backup token cannot list: $(cat "$W/out")"
"$LIFEBOAT" host-restore "${X[@]}" file-name="$W/ADMIN.xbk" --backup-device "$B" --root "$R" >"$W/out" 2>&1 && fail "a backup token restored"
refused "backup token restoring" "nightly may not run host-restore"
read -ra X <<<"$(cert cron)"
"$LIFEBOAT" host-restore "${X[@]}" file-name="$W/ADMIN.xbk" --backup-device "$B" --root "$R" >"$W/out" 2>&1 && fail "a backup certificate restored"
refused "backup certificate restoring" "cron may not run host-restore"
"$LIFEBOAT" backup "${ADMIN[@]}" --backup-device "$B" >"$W/out" 2>&1 && fail "backup host= accepted"
[ "$(latest)" = "$good" ] || fail "a refused request changed the store"
grep -q 'alice (admin by certificate): host-restore' "$W/serve.log" || fail "the log lacks alice's host-restore: $(cat "$W/serve.log")"
grep -q 'nightly (backup by token): host-restore.*status 2.*may not' "$W/serve.log" || fail "the log lacks nightly's refusal: $(cat "$W/serve.log")"

note "a client killed mid-upload commits nothing"
mkfifo "$W/fifo"
size=$(stat -c %s "$W/ADMIN.xbk")
"$LIFEBOAT" host-restore "${ADMIN[@]}" file-name="$W/fifo" --backup-device "$B" --root "$R" >"$W/out" 2>&1 &
LB=$!
{ head -c $((size / 2)) "$W/ADMIN.xbk"; touch "$W/half-sent"; exec sleep 60; } >"$W/fifo" &
WRITER=$!
on_exit "kill $WRITER 2>/dev/null"
for _ in $(seq 100); do [ -e "$W/half-sent" ] && break; sleep 0.1; done
[ -e "$W/half-sent" ] || fail "the first half was never read"
sleep 1
kill -KILL "$LB"; wait "$LB" 2>/dev/null || true
kill "$WRITER" 2>/dev/null || true
for _ in $(seq 150); do grep -q 'upload was cut' "$W/serve.log" && break; sleep 0.2; done
grep -q 'upload was cut' "$W/serve.log" || fail "the server did not see the cut: $(cat "$W/serve.log")"
[ "$(latest)" = "$good" ] || fail "latest is $(latest) after a cut upload, expected $good"
mount -o ro "$B" "$M"
verify_archive "$(latest_archive "$M")" || { umount "$M"; fail "the previous generation no longer verifies"; }
umount "$M"

note "20 clients at once (max_concurrent = 6)"
pids=()
for i in $(seq 20); do
  case $((i % 3)) in
    0) "$LIFEBOAT" host-backup "${OPS[@]}" file-name="$W/c$i.xbk" --root "$R" -q >"$W/c$i.out" 2>&1 & ;;
    1) "$LIFEBOAT" list "${ADMIN[@]}" --backup-device "$B" --json >"$W/c$i.out" 2>&1 & ;;
    2) "$LIFEBOAT" verify "${ADMIN[@]}" --backup-device "$B" -q >"$W/c$i.out" 2>&1 & ;;
  esac
  pids+=($!)
done
done_n=0 busy_n=0
for n in "${!pids[@]}"; do
  i=$((n + 1))
  set +e; wait "${pids[$n]}"; rc=$?; set -e
  case $rc in
    0) done_n=$((done_n + 1))
       if (( i % 3 == 0 )); then
         zstd -q -dc "$W/c$i.xbk" | tar -tf - >"$W/members" || fail "client $i: a broken archive"
         grep -q 'var/lib/f50$' "$W/members" || fail "client $i: the archive lacks var/lib/f50"
       fi ;;
    12) busy_n=$((busy_n + 1)); grep -q 'busy' "$W/c$i.out" || fail "client $i: status 12 without saying busy: $(cat "$W/c$i.out")"
        [ -e "$W/c$i.xbk" ] && fail "client $i: refused, yet a file was written" ;;
    *) fail "client $i ended with status $rc: $(cat "$W/c$i.out")" ;;
  esac
  [ -e "$W/c$i.xbk.partial" ] && fail "client $i left a partial file"
done
note "$done_n completed, $busy_n refused as busy"
(( done_n > 0 )) || fail "no client completed"
"$LIFEBOAT" verify --backup-device "$B" >"$W/out" 2>&1 || fail "the store after 20 clients: $(cat "$W/out")"
[ "$(latest)" = "$good" ] || fail "the store changed"
kill -0 "$SERVE" || fail "lifeboat serve died: $(tail "$W/serve.log")"
echo "PASS 63-serve"
