#!/bin/bash
# Issue 10, the disaster story (scripts/disaster-story.sh does the work, `DAMAGE=disk make demo`
# tells the same): the host's generation pushed to radosgw, both disks lost, the recovery image
# gets an address by DHCP and restores from the repository onto a blank disk (whole layout,
# verified before any write), and the host boots again through its own GRUB. Fails on any
# failed phase or difference.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-build/test-disaster-repo} bash scripts/disaster-story.sh
