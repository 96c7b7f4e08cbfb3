# shellcheck shell=bash
# The start every root test shares (tests/root/NN-*.sh, through restore-lib.bash,
# store-lib.bash, or directly): sourced, not run. Strict mode, the repository root as the
# working directory, tests/lib/common.bash (fail, on_exit, loop_attach), and:
#   LIFEBOAT   the lifeboat binary (default: the static release build; it must exist)
#   W          a fresh work dir /var/tmp/lifeboat-NAME.XXXXXX (NAME: this file's argument)
#   MOUNTS     mount points to unmount at exit, last first (then W is removed; loop devices
#              are detached before either, by common.bash)
#   note MSG   prints "--- MSG"
case "${BASH_SOURCE[-1]}" in
  *.bash) echo "${BASH_SOURCE[-1]} is a library: source it from a test" >&2; exit 2 ;;
esac
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=tests/lib/common.bash
. tests/lib/common.bash
LIFEBOAT=${LIFEBOAT:-$PWD/target/x86_64-unknown-linux-musl/release/lifeboat}
[ -x "$LIFEBOAT" ] || fail "no lifeboat binary at $LIFEBOAT (make build, or set LIFEBOAT)"
W=$(mktemp -d "/var/tmp/lifeboat-${1:-root}.XXXXXX")
MOUNTS=()
root_test_cleanup() {
  local i
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    mountpoint -q "${MOUNTS[$i]}" 2>/dev/null && umount -l "${MOUNTS[$i]}"
  done
  # Trees outside images may hold immutable files (GNU tar extractions do not, ours might).
  chattr -R -i -a "$W" 2>/dev/null
  rm -rf "$W"
}
on_exit root_test_cleanup
note() { echo "--- $*"; }
