# shellcheck shell=bash
# Shared setup of the restore tests (10-19): sourced, not run. tests/root/lib.bash (LIFEBOAT,
# the work dir W, MOUNTS cleaned up at exit, note), and:
#   LBTEST     directory of the test tools lbtest-fixture, lbtest-compare, lbtest-hostile
# shellcheck source=tests/root/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash" restore
if [ -z "${LBTEST:-}" ]; then
  cargo build -q -p lifeboat-tests --bins || fail "cargo build of the lbtest-* tools failed"
  LBTEST=$PWD/target/debug
fi

# ext4_mount NAME MIB: a fresh ext4 image $W/NAME.img on a loop device, mounted at $W/NAME
# (not in a subshell: the mount is recorded for the cleanup).
ext4_mount() {
  local name=$1 mib=$2
  truncate -s "${mib}M" "$W/$name.img"
  mkfs.ext4 -q -F "$W/$name.img"
  mkdir -p "$W/$name"
  loop_attach "$W/$name.img"
  mount "$REPLY" "$W/$name"
  MOUNTS+=("$W/$name")
}
