#!/bin/bash
# Hostile archives (.., absolute paths, symlink and hardlink escapes, plain and gzip) through
# `lifeboat restore`: refused with a message naming the entry, exit 2, and nothing written
# outside the target (a canary directory is checked after each). Absolute names and hard link
# targets are refused too (not made relative as GNU tar does), and nothing is written for them.
source "$(dirname "$0")/restore-lib.bash"

CANARY=$W/canary
mkdir -p "$CANARY" && echo "root:x:0:0" >"$CANARY/passwd"
canary_state() { (cd "$W" && find canary -printf '%p %s %n %T@\n' | sort; cat canary/passwd) | sha256sum; }
BEFORE=$(canary_state)
"$LBTEST/lbtest-hostile" "$W/h" "$CANARY" >"$W/list"
[ "$(wc -l <"$W/list")" -ge 10 ] || fail "too few hostile cases: $(cat "$W/list")"
while read -r tar; do
  name=${tar%.tar}
  for form in plain gzip; do
    src=$W/h/$tar
    if [ $form = gzip ]; then gzip -kc "$src" >"$src.gz"; src=$src.gz; fi
    T=$W/t-$name-$form; mkdir -p "$T"
    set +e
    "$LIFEBOAT" restore file-name="$src" --target-dir "$T" >"$W/out" 2>"$W/err"
    rc=$?
    set -e
    case $name in
      refused-*)
        [ $rc -eq 2 ] || fail "$name ($form): exit $rc, expected 2; $(cat "$W/err")"
        grep -q "refusing the archive entry" "$W/err" || fail "$name ($form): unclear error: $(cat "$W/err")" ;;
      accepted-*)
        [ $rc -eq 0 ] || fail "$name ($form): exit $rc: $(cat "$W/err")" ;;
      *) fail "$name: unknown case kind" ;;
    esac
    [ "$(canary_state)" = "$BEFORE" ] || fail "$name ($form) wrote into the canary"
    case $name in
      *absolute*)
        grep -q "absolute" "$W/err" || fail "$name ($form): the error does not say the path is absolute: $(cat "$W/err")"
        [ -z "$(find "$T" -name escaped)" ] || fail "$name ($form): the absolute member was made relative" ;;
    esac
    [ ! -e "$W/escaped" ] && [ ! -e /tmp/escaped ] && [ ! -e /escaped ] || fail "$name ($form) escaped"
  done
  echo "ok: $name"
done <"$W/list"
echo "12-restore-hostile: ok"
