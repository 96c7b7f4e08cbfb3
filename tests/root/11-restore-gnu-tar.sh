#!/bin/bash
# Interoperability with GNU tar, both ways:
# 1. GNU tar extracts our archive: everything but the ext flags (which tar cannot carry) equals
#    the original; only .lifeboat/ (manifest, trailer) is extra.
# 2. A plain `tar --sparse -czf` of the fixture (what xe host-backup makes) is restored by
#    `lifeboat restore`, with a warning that it has no checksums, and equals the original
#    except for the ext flags.
# 3. POSIX ACLs both ways: GNU tar --acls restores our archive's ACLs (from the SCHILY.acl.*
#    records our writer derives), and lifeboat restores a GNU tar --acls archive's ACLs.
# GNU tar cannot create or extract paths longer than PATH_MAX, so long/ is left out here (the
# other tests cover it).
source "$(dirname "$0")/restore-lib.bash"

ext4_mount src 256; SRC=$W/src
"$LBTEST/lbtest-fixture" "$SRC" >/dev/null
"$LIFEBOAT" host-backup file-name="$W/b.tar.zst" --root "$SRC" 2>/dev/null || fail "host-backup"

# Only the flags may differ (plus what each side legitimately adds).
only_flags() {
  grep -v -E '^flags/[a-z-]+: flags |^[0-9]+ differences in ' "$1" || true
}
# GNU tar restores ACLs only from SCHILY.acl.* records (text form): our writer derives them from
# the raw system.posix_acl_* xattrs, so GNU tar must restore the very same ACLs.
same_acls() { # ROOT_A ROOT_B WHAT
  local p
  for p in xattrs/acl xattrs/acl-dir; do
    [ -e "$1/$p" ] || fail "the fixture has no $p"
    [ "$(cd "$1" && getfacl -n -p "$p")" = "$(cd "$2" && getfacl -n -p "$p")" ] \
      || fail "$3: ACLs of $p differ: $(cd "$1" && getfacl -n -p "$p") VS $(cd "$2" && getfacl -n -p "$p")"
  done
}

note "GNU tar extracts our archive"
ext4_mount gnu 256; GNU=$W/gnu
zstd -dc "$W/b.tar.zst" | tar -x -p --numeric-owner --xattrs --xattrs-include='*' --acls --selinux \
  --exclude='./long/*' -C "$GNU" -f - 2>"$W/tar.err" || fail "GNU tar failed: $(head -c 2000 "$W/tar.err")"
"$LBTEST/lbtest-compare" "$SRC" "$GNU" --ignore .lifeboat --ignore long >"$W/cmp.out" \
  && fail "flags were expected to differ"
[ ! -s "$W/tar.err" ] || fail "GNU tar warned while extracting our archive: $(head -c 2000 "$W/tar.err")"
same_acls "$SRC" "$GNU" "GNU tar extraction of our archive"
[ -z "$(only_flags "$W/cmp.out")" ] || fail "GNU tar extraction differs beyond the flags:
$(only_flags "$W/cmp.out")"
[ -f "$GNU/.lifeboat/manifest.json" ] || fail "no manifest extracted by GNU tar"
bsdtar -tf "$W/b.tar.zst" >/dev/null 2>&1 || fail "bsdtar cannot list our archive"

note "lifeboat restores a plain tar --sparse -czf (as xe host-backup writes)"
(cd "$SRC" && tar -c -z --sparse --numeric-owner --xattrs --xattrs-include='*' --acls --selinux \
  --exclude=./long -f "$W/plain.tgz" . 2>"$W/tar.err") \
  || fail "GNU tar could not archive the fixture: $(head -c 2000 "$W/tar.err")"
ext4_mount plain 256; PLAIN=$W/plain
"$LIFEBOAT" restore file-name="$W/plain.tgz" --target-dir "$PLAIN" >"$W/r.out" 2>"$W/r.err" \
  || fail "restore of a plain tar.gz exited $?: $(cat "$W/r.err")"
grep -q "no checksums" "$W/r.err" || fail "no warning about a plain tar: $(cat "$W/r.err")"
"$LBTEST/lbtest-compare" "$SRC" "$PLAIN" --ignore long >"$W/cmp.out" || true
[ -z "$(only_flags "$W/cmp.out")" ] || fail "plain tar restore differs beyond the flags:
$(only_flags "$W/cmp.out")"
"$LIFEBOAT" verify file-name="$W/plain.tgz" >"$W/v.out" || fail "verify of a plain tar.gz exited $?"
grep -q "no checksums" "$W/v.out" || fail "verify of a plain tar: $(cat "$W/v.out")"

note "lifeboat restores the ACLs of a GNU tar --acls archive (text records only)"
(cd "$SRC" && tar -c --numeric-owner --acls --format=posix -f "$W/acls.tar" ./xattrs 2>"$W/tar.err") \
  || fail "GNU tar could not archive xattrs/: $(head -c 2000 "$W/tar.err")"
grep -a -q "SCHILY.acl.access" "$W/acls.tar" || fail "GNU tar wrote no SCHILY.acl.access record"
grep -a -q "SCHILY.xattr.system.posix_acl" "$W/acls.tar" && fail "GNU tar wrote raw ACL xattrs: the case is not tested"
ext4_mount acls 64
"$LIFEBOAT" restore file-name="$W/acls.tar" --target-dir "$W/acls" >"$W/r.out" 2>"$W/r.err" \
  || fail "restore of a GNU tar --acls archive exited $?: $(cat "$W/r.err")"
same_acls "$SRC" "$W/acls" "lifeboat restore of a GNU tar --acls archive"
echo "11-restore-gnu-tar: ok"
