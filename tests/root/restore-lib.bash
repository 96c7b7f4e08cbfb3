# Shared setup of the restore tests (10-19): sourced, not run. Finds the binaries, makes a
# work dir, and cleans up (mounts, loop devices, immutable flags) on exit.
#   LIFEBOAT   the lifeboat binary (default: the static release build, else target/debug)
#   LBTEST     directory of the test tools lbtest-fixture, lbtest-compare, lbtest-hostile
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LIFEBOAT:-}" ]; then
  LIFEBOAT=$PWD/target/x86_64-unknown-linux-musl/release/lifeboat
  [ -x "$LIFEBOAT" ] || LIFEBOAT=$PWD/target/debug/lifeboat
fi
[ -x "$LIFEBOAT" ] || { echo "no lifeboat binary (make build, or set LIFEBOAT)" >&2; exit 1; }
if [ -z "${LBTEST:-}" ]; then
  cargo build -q -p lifeboat-tests --bins
  LBTEST=$PWD/target/debug
fi
W=$(mktemp -d /var/tmp/lifeboat-restore.XXXXXX)
MOUNTS=()
LOOPS=()
restore_cleanup() {
  set +e
  local i
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    mountpoint -q "${MOUNTS[$i]}" 2>/dev/null && umount -l "${MOUNTS[$i]}"
  done
  for l in "${LOOPS[@]}"; do
    { grep "^$l " /proc/mounts || true; } | awk '{print $2}' | while read -r m; do umount -l "$m" || true; done
    losetup -d "$l" 2>/dev/null || true
  done
  # Trees outside images may hold immutable files (GNU tar extractions do not, ours might).
  chattr -R -i -a "$W" 2>/dev/null || true
  rm -rf "$W"
}
trap restore_cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

# ext4_mount NAME MIB: a fresh ext4 image $W/NAME.img mounted at $W/NAME (not in a subshell:
# the mount is recorded for the cleanup).
ext4_mount() {
  local name=$1 mib=$2
  truncate -s "${mib}M" "$W/$name.img"
  mkfs.ext4 -q -F "$W/$name.img"
  mkdir -p "$W/$name"
  mount -o loop "$W/$name.img" "$W/$name"
  MOUNTS+=("$W/$name")
}
