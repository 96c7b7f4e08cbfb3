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
[ -f "$MEDIA/pxe/pxelinux.cfg/01-52-54-00-4c-42-01" ] || die "no pxelinux per-host config"
[ -f "$MEDIA/pxe/grub.cfg-01-52-54-00-4c-42-01" ] || die "no GRUB per-host config"
[ -f "$MEDIA/pxe/boot-01-52-54-00-4c-42-01.ipxe" ] || die "no iPXE per-host script"

unattended='lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot'
# The real lifeboat-init starts restoring at once (and finds no disk here): wait for its first
# line only.
MENU_PATTERN=lifeboat-init

net() { echo "-netdev user,id=n0,tftp=$MEDIA/pxe,bootfile=$1 -device $2,netdev=n0,mac=$3 -boot n"; }

# shellcheck disable=SC2046
boot_watch per-host-bios 240 -- -M pc $(net pxelinux.0 e1000 "$HOST_MAC")
kernel_cmdline | grep -q "$unattended" || die "pxelinux did not pick the per-host config: $(kernel_cmdline)"

# shellcheck disable=SC2046
boot_watch per-host-uefi 300 -- -M q35 $(ovmf_args per-host-uefi) $(net bootx64.efi virtio-net-pci "$HOST_MAC")
kernel_cmdline | grep -q "$unattended" || die "GRUB did not pick the per-host config: $(kernel_cmdline)"

# shellcheck disable=SC2046
boot_watch per-host-ipxe 240 -- -M pc $(net boot.ipxe virtio-net-pci "$HOST_MAC")
kernel_cmdline | grep -q "$unattended" || die "iPXE did not chain the per-host script: $(kernel_cmdline)"

# shellcheck disable=SC2046
boot_watch other-host-bios 240 -- -M pc $(net pxelinux.0 e1000 "$OTHER_MAC")
kernel_cmdline | grep -q 'lifeboat.yes' && die "another machine got the unattended entry: $(kernel_cmdline)"
echo "ok: per-host configs pick the unattended restore for $HOST_MAC only"
