#!/bin/bash
# Secure Boot: `mkrescue --secure-boot` media on OVMF with the ovmf package's Microsoft-key
# variable store (Secure Boot on, SMM, q35). The ISO as a CD and the PXE tree over QEMU's TFTP
# (OVMF's own network stack: no iPXE option ROM) boot shim -> Debian's signed GRUB -> the signed
# kernel -> lifeboat-init, which reports "Secure boot enabled"; a kernel with one byte changed
# is refused by GRUB (shim's verifier) and never starts.
source "$(dirname "$0")/lib/media.bash"
media_build --secure-boot
for f in EFI/BOOT/BOOTX64.EFI EFI/BOOT/grubx64.efi EFI/BOOT/mmx64.efi; do
  xorriso -osirrox on -indev "$MEDIA/lifeboat.iso" -extract "/$f" "$MEDIA/x" >/dev/null 2>&1 \
    || fail "the ISO has no /$f"
  rm -f "$MEDIA/x"
done
cmp -s "$MEDIA/pxe/bootx64.efi" "$SIGNED/shimx64.efi" || fail "the PXE tree's bootx64.efi is not Debian's shim"
cmp -s "$MEDIA/pxe/grubx64.efi" "$SIGNED/grubnetx64.efi" || fail "the PXE tree's grubx64.efi is not grubnetx64.efi"
cmp -s "$MEDIA/pxe/vmlinuz" "$KERNEL" || fail "the PXE tree's kernel is not the signed kernel byte for byte"

# The firmware really enforces: the kernel says so, and lifeboat-init reads the variable.
WAIT_ALSO=('Secure boot enabled' 'Firmware: UEFI, Secure boot enabled')
boot_watch sb-iso 400 --machine q35 --firmware uefi-secure -- -cdrom "$MEDIA/lifeboat.iso" -boot d
grep -aq 'Restore from backup (unattended)' "$LOG" || fail "the signed GRUB did not read our menu"
strip_log "$LOG" | grep -aq 'Kernel is locked down from EFI Secure Boot' || fail "the kernel is not locked down"
boot_watch sb-pxe 400 --machine q35 --firmware uefi-secure --netboot "$MEDIA/pxe:bootx64.efi" \
  --nic virtio-net-pci,romfile=
kernel_cmdline | grep -q 'BOOT_IMAGE=(tftp,' || fail "not booted over TFTP: $(kernel_cmdline)"
WAIT_ALSO=()

# One byte of the kernel's code changed (its signature no longer matches): GRUB must refuse it.
python3 - "$MEDIA/pxe/vmlinuz" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(b)
PY
boot_refused sb-pxe-tampered 400 'bad shim signature|Security Violation|verification failed|[Ii]nvalid signature' \
  --machine q35 --firmware uefi-secure --netboot "$MEDIA/pxe:bootx64.efi" --nic virtio-net-pci,romfile=
echo "ok: Secure Boot media boot (ISO, PXE) to the menu; a tampered kernel is refused"
