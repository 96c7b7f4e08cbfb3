#!/bin/bash
# `make demo`: the whole Lifeboat story on a virtual XenServer 8-style host, told as it happens.
# A UEFI host with XenServer's disk layout is built, backed up from inside with `lifeboat backup`,
# its root filesystem is destroyed, the recovery image boots by PXE and restores it unattended,
# and the host boots again from its own disk with the same root, file by file.
# Everything runs under QEMU (TCG, no KVM needed); expect 5 to 15 minutes on two cores.
# Options go through the environment (see scripts/story.sh): DAMAGE=delete, STORY_VERBOSE=1, WORK=dir.
# DAMAGE=disk tells the disaster story instead (scripts/disaster-story.sh): both disks lost, the
# host restored from the repository on radosgw over the network onto a blank disk.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it attaches loop devices and mounts the host's filesystems)" >&2; exit 1; }
if [ "${DAMAGE:-}" = disk ]; then
  WORK=${WORK:-build/demo-disk} exec bash scripts/disaster-story.sh
fi
WORK=${WORK:-build/demo} exec bash scripts/story.sh "$@"
