#!/bin/bash
# Bad input on the command line is refused at once with a message that says what to do, and
# never damages what it names: host-backup to a device node, a FIFO or a directory; restore
# into / or a non-empty directory; verify of a directory or of random bytes; --level out of
# range; xe-style key=value words (a value that contains '=', an unknown key).
set -euo pipefail
cd "$(dirname "$0")/../.."
LIFEBOAT=${LIFEBOAT:-$PWD/target/x86_64-unknown-linux-musl/release/lifeboat}
[ -x "$LIFEBOAT" ] || { echo "no lifeboat binary at $LIFEBOAT (make build)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/lifeboat-cli.XXXXXX)
LOOP=
cleanup() {
  set +e
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }
# run NAME CMD...: runs CMD with stdout/stderr in $W/NAME.out/.err; its status in $rc.
run() {
  local name=$1; shift
  set +e
  "$@" >"$W/$name.out" 2>"$W/$name.err"
  rc=$?
  set -e
}
err() { cat "$W/$1.err"; }

R=$W/root
mkdir -p "$R/etc" "$R/usr/bin"
echo "PRODUCT_VERSION='8.2.1'" >"$R/etc/xensource-inventory"
echo data >"$R/usr/bin/tool"
echo keep >"$R/etc/keep=me"
echo drop >"$R/junk=1"
"$LIFEBOAT" host-backup file-name="$W/good.xbk" --root "$R" -q || fail "the reference backup failed"

note "host-backup to a block device: refused, the node stays a block device, nothing written"
truncate -s 32M "$W/disk.img"
printf 'precious' | dd of="$W/disk.img" conv=notrunc status=none
LOOP=$(losetup -f --show "$W/disk.img")
# A node of our own for the loop device: whatever happens to it, /dev is not touched.
mknod "$W/blk" b "$(stat -c '%t' "$LOOP" | xargs printf '%d')" "$(stat -c '%T' "$LOOP" | xargs printf '%d')"
before=$(sha256sum <"$LOOP")
run blk "$LIFEBOAT" host-backup file-name="$W/blk" --root "$R" --pre-hook "touch $W/hook-blk"
[ -b "$W/blk" ] || fail "the block device node was replaced: $(stat -c %F "$W/blk")"
[ "$rc" = 2 ] || fail "host-backup to a block device: exit $rc, expected 2: $(err blk)"
grep -q "is a block device" "$W/blk.err" || fail "unclear refusal: $(err blk)"
[ "$(sha256sum <"$LOOP")" = "$before" ] || fail "the block device was written"
[ ! -e "$W/blk.partial" ] || fail "a .partial file was left beside the node"
[ ! -e "$W/hook-blk" ] || fail "the pre-hook ran before the destination was refused"

note "host-backup to a character device: written in place, the node stays"
mknod "$W/null" c 1 3
run chr "$LIFEBOAT" host-backup file-name="$W/null" --root "$R" -q
[ -c "$W/null" ] || fail "the character device node was replaced: $(stat -c %F "$W/null")"
[ "$rc" = 0 ] || fail "host-backup to a character device: exit $rc: $(err chr)"
[ ! -e "$W/null.partial" ] || fail "a .partial file was left beside the node"

note "host-backup to a FIFO: streamed through it; what came out verifies"
mkfifo "$W/fifo"
timeout 120 cat "$W/fifo" >"$W/from-fifo" &
reader=$!
run fifo timeout 120 "$LIFEBOAT" host-backup file-name="$W/fifo" --root "$R" -q
[ -p "$W/fifo" ] || fail "the FIFO was replaced: $(stat -c %F "$W/fifo")"
[ "$rc" = 0 ] || fail "host-backup to a FIFO: exit $rc: $(err fifo)"
wait "$reader" || fail "nothing came out of the FIFO"
run fifo-verify "$LIFEBOAT" verify file-name="$W/from-fifo"
{ [ "$rc" = 0 ] && grep -q "every checksum verified" "$W/fifo-verify.out"; } \
  || fail "the archive streamed through the FIFO does not verify ($rc): $(err fifo-verify)"

note "host-backup to a directory: refused before anything runs"
mkdir "$W/outdir"
run dir "$LIFEBOAT" host-backup file-name="$W/outdir" --root "$R" --pre-hook "touch $W/hook-dir"
[ "$rc" = 2 ] || fail "host-backup to a directory: exit $rc: $(err dir)"
grep -q "is a directory" "$W/dir.err" || fail "unclear refusal: $(err dir)"
[ ! -e "$W/hook-dir" ] || fail "the backup (its pre-hook) ran before the directory was refused"
[ ! -e "$W/outdir.partial" ] || fail "a .partial file was written"
[ -z "$(ls -A "$W/outdir")" ] || fail "something was written into the directory"

note "--level out of range: refused when parsed, with the codec's range"
run level "$LIFEBOAT" host-backup file-name="$W/level.xbk" --root "$R" --level 99999 \
  --pre-hook "touch $W/hook-level"
[ "$rc" = 2 ] || fail "--level 99999: exit $rc: $(err level)"
{ grep -q "level 99999" "$W/level.err" && grep -q "zstd takes" "$W/level.err"; } \
  || fail "the message does not give zstd's levels: $(err level)"
grep -q "output" "$W/level.err" && fail "misleading hint about the output: $(err level)"
[ ! -e "$W/hook-level" ] || fail "the pre-hook ran before the level was checked"
{ [ ! -e "$W/level.xbk" ] && [ ! -e "$W/level.xbk.partial" ]; } || fail "a file was written"
run level-gz "$LIFEBOAT" host-backup file-name="$W/level.xbk" --root "$R" --compress gzip --level 10
{ [ "$rc" = 2 ] && grep -q "gzip takes 1 to 9" "$W/level-gz.err"; } || fail "gzip --level 10: $rc $(err level-gz)"

note "xe-style words: a value with '=' after an option stays a value; unknown keys as typed"
run excl "$LIFEBOAT" host-backup file-name="$W/excl.xbk" --root "$R" --exclude 'junk=*' -q
[ "$rc" = 0 ] || fail "--exclude 'junk=*': exit $rc: $(err excl)"
zstd -dc "$W/excl.xbk" | tar -tf - >"$W/excl.list"
grep -q "junk=1" "$W/excl.list" && fail "--exclude 'junk=*' was not applied"
grep -q "etc/keep=me" "$W/excl.list" || fail "etc/keep=me is missing: $(cat "$W/excl.list")"
run append "$LIFEBOAT" mkrescue --append console=ttyS1,115200 --kernel "$W/no-such-kernel" --output "$W/img"
grep -q -- "--console" "$W/append.err" && fail "--append's value was taken for an option: $(err append)"
grep -q "no-such-kernel does not exist" "$W/append.err" || fail "mkrescue: $(err append)"
run mklevel "$LIFEBOAT" mkrescue --level 20 --kernel "$W/no-such-kernel" --output "$W/img"
{ [ "$rc" != 0 ] && grep -q "zstd takes 1 to 19" "$W/mklevel.err"; } \
  || fail "mkrescue --level 20: exit $rc, not refused with zstd's levels before anything else: $(err mklevel)"
[ ! -e "$W/img" ] || fail "mkrescue --level 20 wrote $W/img"
run bogus "$LIFEBOAT" host-backup bogus-key=1 file-name="$W/bogus.xbk" --root "$R"
[ "$rc" = 2 ] || fail "bogus-key=1: exit $rc"
grep -q "'bogus-key=1'" "$W/bogus.err" || fail "the unknown word is not shown as typed: $(err bogus)"
grep -q -- "--bogus-key" "$W/bogus.err" && fail "the unknown word was rewritten: $(err bogus)"
[ ! -e "$W/bogus.xbk" ] || fail "a backup was written despite the unknown argument"

note "verify of a directory, of random bytes, of compressed random bytes: not an archive, exit 2"
head -c 200000 /dev/urandom >"$W/random"
gzip -c "$W/random" >"$W/random.gz"
for f in "$W/outdir" "$W/random" "$W/random.gz"; do
  run verify "$LIFEBOAT" verify file-name="$f"
  [ "$rc" = 2 ] || fail "verify $f: exit $rc, expected 2: $(err verify)"
  grep -q "DAMAGED" "$W/verify.err" && fail "verify $f: called damaged: $(err verify)"
  grep -Eq "not a Lifeboat or tar archive|is a directory, not an archive" "$W/verify.err" \
    || fail "verify $f: unclear: $(err verify)"
done
mkdir "$W/t-random"
run restore-random "$LIFEBOAT" restore file-name="$W/random" --target-dir "$W/t-random"
{ [ "$rc" = 2 ] && grep -q "not a Lifeboat or tar archive" "$W/restore-random.err"; } \
  || fail "restore of random bytes: $rc $(err restore-random)"
[ -z "$(ls -A "$W/t-random")" ] || fail "restore of random bytes wrote into the target"

note "restore into a non-empty directory: refused without --force, done with it"
mkdir -p "$W/busy/etc"; echo mine >"$W/busy/etc/hosts"
run busy "$LIFEBOAT" restore file-name="$W/good.xbk" --target-dir "$W/busy"
[ "$rc" = 2 ] || fail "restore into a non-empty directory: exit $rc: $(err busy)"
{ grep -q "not empty" "$W/busy.err" && grep -q -- "--force" "$W/busy.err"; } \
  || fail "the refusal does not say what to do: $(err busy)"
[ ! -e "$W/busy/usr" ] || fail "files were restored despite the refusal"
run busy-force "$LIFEBOAT" restore file-name="$W/good.xbk" --target-dir "$W/busy" --force
{ [ "$rc" = 0 ] && [ "$(cat "$W/busy/usr/bin/tool")" = data ]; } || fail "--force: $rc $(err busy-force)"
[ "$(cat "$W/busy/etc/hosts")" = mine ] || fail "--force removed a file that is not in the archive"
mkdir -p "$W/fresh/lost+found"
run fresh "$LIFEBOAT" restore file-name="$W/good.xbk" --target-dir "$W/fresh"
[ "$rc" = 0 ] || fail "a directory holding only lost+found was refused: $(err fresh)"

note "restore into / (here: / of a chroot): refused, even with --force"
C=$W/chroot
mkdir -p "$C/mnt"
cp "$LIFEBOAT" "$C/lifeboat"; cp "$W/good.xbk" "$C/good.xbk"
for args in "/" "/ --force" "/mnt/.."; do
  # shellcheck disable=SC2086 # $args: the target and maybe --force
  run slash chroot "$C" /lifeboat restore file-name=/good.xbk --target-dir $args
  [ "$rc" = 2 ] || fail "restore --target-dir $args: exit $rc: $(err slash)"
  grep -q "it is / of the running system" "$W/slash.err" || fail "unclear refusal: $(err slash)"
  { [ ! -e "$C/usr" ] && [ ! -e "$C/etc" ]; } || fail "restore --target-dir $args wrote into /"
done

echo "21-cli-bad-input: ok"
