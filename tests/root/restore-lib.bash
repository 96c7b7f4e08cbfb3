# shellcheck shell=bash
# Shared setup of the restore tests (10-19): sourced, not run. Finds the binaries, makes a
# work dir, and cleans up (mounts, loop devices, immutable flags) on exit.
#   LIFEBOAT   the lifeboat binary (default: the static release build)
#   LBTEST     directory of the test tools lbtest-fixture, lbtest-compare, lbtest-hostile
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a library: source it from a test" >&2
  exit 2
fi
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=tests/lib/common.bash
. tests/lib/common.bash
LIFEBOAT=${LIFEBOAT:-$PWD/target/x86_64-unknown-linux-musl/release/lifeboat}
[ -x "$LIFEBOAT" ] || fail "no lifeboat binary at $LIFEBOAT (make build, or set LIFEBOAT)"
if [ -z "${LBTEST:-}" ]; then
  cargo build -q -p lifeboat-tests --bins || fail "cargo build of the lbtest-* tools failed"
  LBTEST=$PWD/target/debug
fi
W=$(mktemp -d /var/tmp/lifeboat-restore.XXXXXX)
MOUNTS=()
restore_cleanup() {
  local i
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    mountpoint -q "${MOUNTS[$i]}" 2>/dev/null && umount -l "${MOUNTS[$i]}"
  done
  # Trees outside images may hold immutable files (GNU tar extractions do not, ours might).
  chattr -R -i -a "$W" 2>/dev/null
  rm -rf "$W"
}
on_exit restore_cleanup
note() { echo "--- $*"; }

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
