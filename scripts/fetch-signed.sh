#!/bin/bash
# Fetches Debian's Secure Boot chain as Debian packages and unpacks them; never installs them.
# Idempotent (`make signed`).
#   scripts/fetch-signed.sh [DEST]     (default build/signed)
# DEST/shimx64.efi  shim signed by the Microsoft UEFI CA (shim-signed)
# DEST/mmx64.efi    MokManager, signed by Debian (shim-helpers-amd64-signed)
# DEST/gcdx64.efi   GRUB for CD/USB media, signed by Debian (grub-efi-amd64-signed)
# DEST/grubnetx64.efi  GRUB for network boot, signed by Debian (grub-efi-amd64-signed)
# DEST/versions     the packages and versions unpacked
# The signed kernel is the one scripts/fetch-kernel.sh unpacks: Debian's linux-image-*-amd64
# packages carry the signed vmlinuz (the unsigned build is linux-image-*-amd64-unsigned).
set -euo pipefail
dest=${1:-build/signed}
files=(shimx64.efi mmx64.efi gcdx64.efi grubnetx64.efi)
have=1
for f in "${files[@]}" versions; do [ -s "$dest/$f" ] || have=""; done
[ -n "$have" ] && exit 0
pkgs=(shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed)
if ! apt-cache show "${pkgs[@]}" >/dev/null 2>&1; then
  apt-get update -qq
fi
tmp=$(mktemp -d) && chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq "${pkgs[@]}" >/dev/null) \
  || { echo "fetch-signed: apt-get download ${pkgs[*]} failed (network? apt sources?)" >&2; exit 1; }
mkdir -p "$tmp/root"
: > "$tmp/versions"
for deb in "$tmp"/*.deb; do
  dpkg-deb -x "$deb" "$tmp/root"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' | sed 's/Package: //; s/ Version: / /' >> "$tmp/versions"
done
pick() { # NAME GLOB: the one file that matches
  local found
  found=$(find "$tmp/root" -path "$2" -type f | head -n1)
  [ -n "$found" ] || { echo "fetch-signed: no $2 in ${pkgs[*]}" >&2; exit 1; }
  cp "$found" "$dest.tmp/$1"
}
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
pick shimx64.efi '*/usr/lib/shim/shimx64.efi.signed'
pick mmx64.efi '*/usr/lib/shim/mmx64.efi.signed'
pick gcdx64.efi '*/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed'
pick grubnetx64.efi '*/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'
cp "$tmp/versions" "$dest.tmp/versions"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "fetch-signed: $(paste -sd, "$dest/versions") -> $dest"
