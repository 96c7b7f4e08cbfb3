#!/bin/bash
# Installs, idempotently, what building and testing Lifeboat needs on a Debian machine.
set -euo pipefail

PACKAGES=(
  musl-tools build-essential pkg-config
  # tests/root/62-remote-ssh.sh: a real sshd on 127.0.0.1 (host=H runs ssh)
  openssh-server openssh-client
  e2fsprogs dosfstools mtools gdisk fdisk parted util-linux kmod cpio file attr acl
  zstd pigz xz-utils gzip tar libarchive-tools time
  qemu-system-x86 qemu-utils ovmf ipxe-qemu
  pxelinux syslinux-common isolinux xorriso grub-efi-amd64-bin grub-pc-bin grub-common
  busybox-static python3 bc shellcheck mdadm lvm2 efibootmgr
  rpm man-db
  # The S3 server of the tests (scripts/s3-server.sh): a one-node Ceph cluster and radosgw
  # (measured: 20 s, ~77 MB, Ceph 16.2.15); curl signs its warm-up requests (--aws-sigv4).
  ceph-mon ceph-osd radosgw ceph-common curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding the musl target"
  rustup target add x86_64-unknown-linux-musl
fi
echo "setup: ok"
