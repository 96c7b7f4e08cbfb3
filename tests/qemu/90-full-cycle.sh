#!/bin/bash
# The full cycle on a virtual XenServer-style host (UEFI, GPT, XenServer's partition layout):
# back up from inside the host, wipe its root, restore by UEFI PXE with the per-host unattended
# config, boot the host again from its disk and compare its root with the captured one.
# Fails on any failed phase or any difference (scripts/story.sh does the work).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${WORK:-build/test-full-cycle}
WORK=$work bash scripts/story.sh
# Keep the serial logs and the report; drop the large images.
rm -f "$work/host.img" "$work/reference-root.img"
