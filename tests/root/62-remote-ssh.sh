#!/bin/bash
# host=H over a real sshd on 127.0.0.1 (its own host key, config and authorized keys, made
# here): host-backup streams a valid archive to this side, list/verify run on the far side,
# host-restore stages an upload on a loop-device store, the far exit status comes back, a
# wrong host key and a far Lifeboat of another version are refused clearly, and an upload cut
# mid-way (ssh killed) commits nothing.
source "$(dirname "$0")/store-lib.bash"
SSHD=/usr/sbin/sshd
for t in "$SSHD" ssh ssh-keygen; do
  command -v "$t" >/dev/null || fail "$t is missing: install openssh-server and openssh-client (scripts/setup.sh)"
done
L=$(make_disk d 40 64); make_root "$L"; B=${L}p2
"$LIFEBOAT" init-store --backup-device "$B" >/dev/null
"$LIFEBOAT" backup --root "$R" --backup-device "$B" -q || fail "first backup"
M=$W/m; mkdir -p "$M"

note "an sshd of our own on 127.0.0.1"
S=$W/ssh; mkdir -p "$S/bin" "$S/fake"; chmod 700 "$S"
ln -s "$LIFEBOAT" "$S/bin/lifeboat"
printf '#!/bin/sh\necho "lifeboat 9.9.0"\n' >"$S/fake/lifeboat"; chmod 755 "$S/fake/lifeboat"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$S/other_host_key"
ssh-keygen -q -t ed25519 -N '' -f "$S/admin_key"
ssh-keygen -q -t ed25519 -N '' -f "$S/fake_key"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The far side's PATH comes from the key: the release lifeboat, or a fake of another version.
{
  echo "environment=\"PATH=$S/bin:/usr/sbin:/usr/bin:/sbin:/bin\" $(cat "$S/admin_key.pub")"
  echo "environment=\"PATH=$S/fake:/usr/sbin:/usr/bin:/sbin:/bin\" $(cat "$S/fake_key.pub")"
} >"$S/authorized_keys"
cat >"$S/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitUserEnvironment yes
EOF
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$S/host_key.pub")" >"$S/known_hosts"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$S/other_host_key.pub")" >"$S/wrong_known_hosts"
mkdir -p /run/sshd   # sshd's privilege separation directory (the package makes it at boot)
"$SSHD" -t -f "$S/sshd_config" || fail "sshd refuses its test config"
"$SSHD" -D -e -f "$S/sshd_config" 2>"$S/sshd.log" &
SSHD_PID=$!
on_exit "kill $SSHD_PID 2>/dev/null; wait $SSHD_PID 2>/dev/null"
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  sleep 0.1
done
kill -0 "$SSHD_PID" || fail "sshd did not start: $(cat "$S/sshd.log")"

# host=127.0.0.1 with the test's key and known_hosts (ssh's own options, through ssh-option=).
opts() { # KNOWN_HOSTS KEY
  echo "host=127.0.0.1 ssh-option=Port=$PORT ssh-option=UserKnownHostsFile=$1" \
    "ssh-option=GlobalKnownHostsFile=/dev/null ssh-option=StrictHostKeyChecking=yes" \
    "ssh-option=IdentityFile=$2 ssh-option=IdentitiesOnly=yes ssh-option=BatchMode=yes"
}
read -ra REMOTE <<<"$(opts "$S/known_hosts" "$S/admin_key")"
ssh -p "$PORT" -o UserKnownHostsFile="$S/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
  -o IdentityFile="$S/admin_key" -o IdentitiesOnly=yes 127.0.0.1 lifeboat --version >/dev/null \
  || fail "plain ssh to the test sshd fails: $(cat "$S/sshd.log")"

note "1. host-backup host= streams a valid archive here"
"$LIFEBOAT" host-backup "${REMOTE[@]}" file-name="$W/remote.xbk" --root "$R" >"$W/out" 2>&1 \
  || fail "host-backup host=: $(cat "$W/out")"
[ -s "$W/remote.xbk" ] || fail "no archive written"
[ -e "$W/remote.xbk.partial" ] && fail "the partial file was left behind"
zstd -q -t "$W/remote.xbk" || fail "the streamed archive is not a sound zstd stream"
zstd -q -dc "$W/remote.xbk" | tar -tf - >"$W/members" || fail "GNU tar cannot read the streamed archive"
grep -q 'var/lib/f50$' "$W/members" || fail "the archive lacks var/lib/f50"
"$LIFEBOAT" verify --file-name "$W/remote.xbk" >"$W/out" 2>&1 || fail "local verify of the streamed archive: $(cat "$W/out")"

note "2. list and verify host= run on the far side; its exit status comes back"
"$LIFEBOAT" list "${REMOTE[@]}" --backup-device "$B" --json >"$W/list.json" 2>"$W/err" || fail "list host=: $(cat "$W/err")"
json "len(j['backups'])" <"$W/list.json" | grep -qx 1 || fail "list host=: $(cat "$W/list.json")"
good=$(json "j['backups'][-1]['id']" <"$W/list.json")
"$LIFEBOAT" verify "${REMOTE[@]}" --backup-device "$B" >"$W/out" 2>&1 || fail "verify host=: $(cat "$W/out")"
"$LIFEBOAT" verify "${REMOTE[@]}" file-name="$W/remote.xbk" >"$W/out" 2>&1 || fail "verify host= of an uploaded file: $(cat "$W/out")"
set +e
"$LIFEBOAT" list "${REMOTE[@]}" --backup-device "$W/no-such-device" >"$W/out" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "a far error gave status $rc, not 2: $(cat "$W/out")"
grep -q "no-such-device" "$W/out" || fail "the far side's message was not relayed: $(cat "$W/out")"

note "3. host-restore host= stages the upload on the far store"
"$LIFEBOAT" host-restore "${REMOTE[@]}" file-name="$W/remote.xbk" --backup-device "$B" --root "$R" >"$W/out" 2>&1 \
  || fail "host-restore host=: $(cat "$W/out")"
"$LIFEBOAT" list --backup-device "$B" --json >"$W/list.json"
json "j['backups'][-1]['origin'], j['backups'][-1]['state']" <"$W/list.json" | grep -qx "host-restore verified" \
  || fail "list after host-restore host=: $(cat "$W/list.json")"
staged=$(json "j['backups'][-1]['id']" <"$W/list.json")
[ "$staged" != "$good" ] || fail "no new generation"
mount -o ro "$B" "$M"; cmp "$W/remote.xbk" "$M/generations/$staged/backup.tar.zst" || { umount "$M"; fail "the staged copy differs"; }; umount "$M"

refused() { # WHAT PATTERN... (the command's output in $W/out)
  local what=$1; shift
  for p in "$@"; do grep -qi -- "$p" "$W/out" || fail "$what: message lacks '$p': $(cat "$W/out")"; done
  note "$what refused: $(tr '\n' ' ' <"$W/out" | head -c 400)"
}

note "4. a wrong host key is refused by ssh, and said so"
read -ra WRONG <<<"$(opts "$S/wrong_known_hosts" "$S/admin_key")"
"$LIFEBOAT" list "${WRONG[@]}" --backup-device "$B" >"$W/out" 2>&1 && fail "a wrong host key was accepted"
refused "wrong host key" "Host key verification failed" "ssh to 127.0.0.1 failed"

note "5. a far Lifeboat of another version is refused"
read -ra FAKE <<<"$(opts "$S/known_hosts" "$S/fake_key")"
"$LIFEBOAT" host-backup "${FAKE[@]}" file-name="$W/fake.xbk" --root "$R" >"$W/out" 2>&1 && fail "version 9.9.0 was accepted"
ours=$("$LIFEBOAT" --version | cut -d' ' -f2)
refused "version mismatch" "9.9.0" "Lifeboat $ours" "major.minor"
if [ -e "$W/fake.xbk" ] || [ -e "$W/fake.xbk.partial" ]; then fail "a file was written despite the refusal"; fi

note "6. an upload cut mid-way (ssh killed) commits nothing"
mkfifo "$W/fifo"
size=$(stat -c %s "$W/remote.xbk")
"$LIFEBOAT" host-restore "${REMOTE[@]}" file-name="$W/fifo" --backup-device "$B" --root "$R" >"$W/out" 2>&1 &
LB=$!
{ head -c $((size / 2)) "$W/remote.xbk"; touch "$W/half-sent"; exec sleep 60; } >"$W/fifo" &
WRITER=$!
on_exit "kill $WRITER 2>/dev/null"
for _ in $(seq 100); do [ -e "$W/half-sent" ] && break; sleep 0.1; done
[ -e "$W/half-sent" ] || fail "the first half was never read"
sleep 1
ssh_pid=$(pgrep -P "$LB" -x ssh) || fail "no ssh under lifeboat $LB"
kill -KILL "$ssh_pid"
t0=$SECONDS
set +e; wait "$LB"; rc=$?; set -e
# It must not wait for the rest of the input (the writer holds the FIFO open for 60 s).
(( SECONDS - t0 < 20 )) || fail "lifeboat took $((SECONDS - t0)) s to give up after ssh was killed"
kill "$WRITER" 2>/dev/null || true
[ "$rc" != 0 ] || fail "a cut upload ended with status 0: $(cat "$W/out")"
refused "cut upload" "ended by a signal"
# The far host-restore sees its stdin end early; wait for it to give up.
for _ in $(seq 100); do pgrep -f -- "host-restore --backup-device $B" >/dev/null || break; sleep 0.2; done
pgrep -f -- "host-restore --backup-device $B" >/dev/null && fail "the far host-restore is still running"
n=$("$LIFEBOAT" list --backup-device "$B" --json | json "j['backups'][-1]['id']")
[ "$n" = "$staged" ] || fail "latest is $n after a cut upload, expected $staged"
mount -o ro "$B" "$M"
verify_archive "$(latest_archive "$M")" || { umount "$M"; fail "the previous generation no longer verifies"; }
[ -z "$(ls "$M/staging")" ] || { ls -la "$M/staging"; umount "$M"; fail "staging not empty after a cut upload"; }
umount "$M"

note "7. host= is refused where it makes no sense"
"$LIFEBOAT" backup host=127.0.0.1 --backup-device "$B" >"$W/out" 2>&1 && fail "backup host= accepted"
refused "backup host=" "has no option named 'host'"
"$LIFEBOAT" list ssh-option=Port=1 --backup-device "$B" >"$W/out" 2>&1 && fail "ssh-option= without host= accepted"
refused "ssh-option without host" "host"
echo "PASS 62-remote-ssh"
