# shellcheck shell=bash
# Shared steps of the repository tests (50-repo-local on a directory, 52-repo-s3 on radosgw):
# sourced, not run. tests/root/store-lib.bash (a disk image, the root tree $R, json), the
# lbtest-* tools ($LBTEST), and the steps both tests run. The caller sets:
#   K     the repository options: (--repo URL --fleet-key FILE --identity FILE)
# and each step sets what the next reads (g1, first, the recovery key in $W/recovery.key).
# shellcheck source=tests/root/store-lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/store-lib.bash"
if [ -z "${LBTEST:-}" ]; then
  cargo build -q -p lifeboat-tests --bins || fail "cargo build of the lbtest-* tools failed"
  LBTEST=$PWD/target/debug
fi

# repo_fixture: the disk (loop device L, backup partition B, a store on it) and the root $R,
# with enough content for the 2% figure to mean something (chunks of 128 KiB on average).
repo_fixture() {
  L=$(make_disk d 112 192)
  make_root "$L"
  B=${L}p2
  mkdir -p "$R/usr/lib"
  for i in $(seq 1 20); do head -c 2M /dev/urandom >"$R/usr/lib/blob$i"; done
  "$LIFEBOAT" init-store --backup-device "$B" >/dev/null
}

# repo_init_step: `repo init` prints a recovery key once (kept in $W/recovery.key), the key
# files are root-only, a second init on the same repository is refused.
repo_init_step() {
  "$LIFEBOAT" repo init "${K[@]}" --chunk-kib 128 --grace 3600 >"$W/init.out" 2>&1 || fail "repo init: $(cat "$W/init.out")"
  grep '^AGE-SECRET-KEY-1' "$W/init.out" >"$W/recovery.key" || fail "no recovery key printed: $(cat "$W/init.out")"
  local f
  for f in fleet.key host.key; do
    [ "$(stat -c %a "$W/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$W/$f")"
  done
  "$LIFEBOAT" repo init "${K[@]}" >"$W/out" 2>&1 && fail "a second repo init on the same repository succeeded"
  return 0
}

# repo_backup OUT.json: `backup --repo` of $R into $B, then the push; its JSON in OUT.
repo_backup() {
  "$LIFEBOAT" backup --root "$R" --backup-device "$B" "${K[@]}" --keep 5 --json >"$1" 2>"$W/err" \
    || fail "backup --repo: $(cat "$W/err")"
}

# repo_first_backup_step: the first `backup --repo` (g1, first: bytes stored), `list --repo`
# shows it.
repo_first_backup_step() {
  local t0
  t0=$(date +%s.%N)
  repo_backup "$W/b1.json"
  # shellcheck disable=SC2034 # read by 52-repo-s3.sh (the push throughput)
  push_seconds=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
  g1=$(json "j['generation']" <"$W/b1.json")
  first=$(json "j['pushed']['uploaded_bytes'] + j['pushed']['index_bytes']" <"$W/b1.json")
  stream=$(json "j['pushed']['stream_bytes']" <"$W/b1.json")
  note "first push: $first bytes stored for a $stream-byte stream"
  [ "$(json "[b['id'] for b in j['backups']]" < <("$LIFEBOAT" list "${K[@]}" --json))" = "['$g1']" ] \
    || fail "list --repo: $("$LIFEBOAT" list "${K[@]}" --json)"
}

# peak_rss_kib CMD...: runs CMD (its output in $W/rss.out), prints its peak RSS in KiB.
peak_rss_kib() {
  python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"), stderr=subprocess.STDOUT)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)' "$W/rss.out" "$@"
}

# repo_verify_restore_step: `verify --repo` says sound, `restore --repo` of g1 equals $R entry
# by entry (lbtest-compare) within 128 MiB of RSS.
repo_verify_restore_step() {
  "$LIFEBOAT" verify "${K[@]}" latest >"$W/v.out" 2>&1 || fail "verify --repo: $(cat "$W/v.out")"
  grep -q "sound" "$W/v.out" || fail "verify --repo: $(cat "$W/v.out")"
  mkdir "$W/restored"
  local rss
  rss=$(peak_rss_kib "$LIFEBOAT" restore "${K[@]}" "$g1" --target-dir "$W/restored")
  [ "$rss" -gt 0 ] || fail "restore --repo failed: $(cat "$W/rss.out" 2>/dev/null)"
  "$LBTEST/lbtest-compare" "$R" "$W/restored" --ignore lost+found >"$W/cmp.out" \
    || fail "restore --repo differs: $(head -c 3000 "$W/cmp.out")"
  note "restore --repo peak RSS: $((rss / 1024)) MiB"
  [ "$rss" -lt $((128 * 1024)) ] || fail "restore --repo used $((rss / 1024)) MiB (budget 128 MiB)"
}

# repo_second_backup_step: a second backup of the unchanged root adds < 2%; `push` finds
# nothing left to push.
repo_second_backup_step() {
  sleep 1
  repo_backup "$W/b2.json"
  local second
  second=$(json "j['pushed']['uploaded_bytes'] + j['pushed']['index_bytes']" <"$W/b2.json")
  note "second push: $second bytes ($(python3 -c "print(round(100*$second/$first, 2))")% of the first)"
  python3 -c "import sys; sys.exit(0 if $second < 0.02 * $first else 1)" \
    || fail "the second generation added $second bytes, the first $first"
  "$LIFEBOAT" push --backup-device "$B" "${K[@]}" >"$W/p.out" 2>&1 || fail "push: $(cat "$W/p.out")"
  [ "$(grep -c "already in" "$W/p.out")" = 2 ] || fail "push pushed again: $(cat "$W/p.out")"
}

# repo_flipped_chunk_step ID: chunk ID was flipped in the store (by the caller): `repo check`
# without --read-data does not read it, `repo check --read-data` and `verify --repo` name it.
repo_flipped_chunk_step() {
  "$LIFEBOAT" repo check "${K[@]}" >"$W/c.out" 2>&1 || fail "repo check without --read-data read the data: $(cat "$W/c.out")"
  "$LIFEBOAT" repo check "${K[@]}" --read-data >"$W/c.out" 2>&1 && fail "repo check --read-data missed the flipped chunk"
  grep -q "$1" "$W/c.out" || fail "repo check does not name chunk $1: $(cat "$W/c.out")"
  "$LIFEBOAT" verify "${K[@]}" >"$W/v.out" 2>&1 && fail "verify --repo missed the flipped chunk"
  grep -q "DAMAGED.*$1" "$W/v.out" || fail "verify --repo does not name chunk $1: $(cat "$W/v.out")"
}

# flip_middle_byte FILE: one bit of FILE's middle byte inverted, in place.
flip_middle_byte() {
  python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 1
open(p, 'wb').write(b)
PY
}
