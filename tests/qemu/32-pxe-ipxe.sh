#!/bin/bash
# iPXE script: QEMU's NIC ROM is iPXE; given boot.ipxe as the DHCP boot file it runs the script,
# which loads the kernel and initrd by paths relative to its own URL (TFTP here, HTTP in
# production) -> lifeboat-init and its menu.
source "$(dirname "$0")/lib/media.bash"
media_build
boot_watch pxe-ipxe 240 --machine pc --netboot "$MEDIA/pxe:boot.ipxe" --nic virtio-net-pci
kernel_cmdline | grep -q 'initrd=initrd.img console=ttyS0,115200 console=tty0' || fail "kernel command line: $(kernel_cmdline)"
echo "ok: the iPXE script boots the recovery image"
