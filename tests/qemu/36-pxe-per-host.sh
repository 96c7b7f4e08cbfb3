#!/bin/bash
# Per-host configs (`mkrescue --pxe-host MAC --unattended`): the machine with that MAC boots the
# unattended entry (lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot) through pxelinux
# (BIOS), GRUB (UEFI) and iPXE; any other machine still gets the interactive default.
# Only the boot loaders' choice is checked here (the kernel command line); the restore itself is
# 37-pxe-unattended-restore.sh.
source "$(dirname "$0")/lib/media.bash"
HOST_MAC=52:54:00:4c:42:01
OTHER_MAC=52:54:00:4c:42:02
media_build --host "$HOST_MAC" --unattended
[ -f "$MEDIA/pxe/pxelinux.cfg/01-52-54-00-4c-42-01" ] || fail "no pxelinux per-host config"
[ -f "$MEDIA/pxe/grub.cfg-01-52-54-00-4c-42-01" ] || fail "no GRUB per-host config"
[ -f "$MEDIA/pxe/boot-01-52-54-00-4c-42-01.ipxe" ] || fail "no iPXE per-host script"

unattended='lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot'
# The real lifeboat-init starts restoring at once (and finds no disk here): wait for its first
# line only.
MENU_PATTERN=lifeboat-init

boot_watch per-host-bios 240 --machine pc --netboot "$MEDIA/pxe:pxelinux.0" --nic e1000 --mac "$HOST_MAC"
kernel_cmdline | grep -q "$unattended" || fail "pxelinux did not pick the per-host config: $(kernel_cmdline)"

boot_watch per-host-uefi 300 --machine q35 --firmware uefi --netboot "$MEDIA/pxe:bootx64.efi" --nic virtio-net-pci --mac "$HOST_MAC"
kernel_cmdline | grep -q "$unattended" || fail "GRUB did not pick the per-host config: $(kernel_cmdline)"

boot_watch per-host-ipxe 240 --machine pc --netboot "$MEDIA/pxe:boot.ipxe" --nic virtio-net-pci --mac "$HOST_MAC"
kernel_cmdline | grep -q "$unattended" || fail "iPXE did not chain the per-host script: $(kernel_cmdline)"

boot_watch other-host-bios 240 --machine pc --netboot "$MEDIA/pxe:pxelinux.0" --nic e1000 --mac "$OTHER_MAC"
kernel_cmdline | grep -q 'lifeboat.yes' && fail "another machine got the unattended entry: $(kernel_cmdline)"
echo "ok: per-host configs pick the unattended restore for $HOST_MAC only"
