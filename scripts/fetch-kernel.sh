#!/bin/bash
# Fetches Debian's current cloud kernel (or, with --generic, the generic one with real-hardware
# drivers) as a Debian package and unpacks it; never installs it. Idempotent.
#   scripts/fetch-kernel.sh [--generic] DEST
# DEST/vmlinuz, DEST/modules (the /lib/modules/<version> tree), DEST/version.
set -euo pipefail
flavour=cloud-amd64
if [ "${1:-}" = --generic ]; then flavour=amd64; shift; fi
dest=${1:-build/kernel}
if [ -s "$dest/version" ] && [ -e "$dest/vmlinuz" ] && [ -d "$dest/modules" ]; then
  exit 0
fi
meta=linux-image-$flavour
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve $meta to a kernel package" >&2; exit 1; }
tmp=$(mktemp -d) && chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq "$pkg" >/dev/null)
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
dpkg-deb -x "$tmp"/*.deb "$dest.tmp/root"
version=$(find "$dest.tmp/root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n1)
ln -s "root/boot/vmlinuz-$version" "$dest.tmp/vmlinuz"
ln -s "root/lib/modules/$version" "$dest.tmp/modules"
echo "$version" > "$dest.tmp/version"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "fetch-kernel: $pkg -> $dest (kernel $version)"
