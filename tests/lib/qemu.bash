# shellcheck shell=bash
# The one QEMU launcher of the tests and scripts (sourced, never run). Always TCG (-accel tcg,
# never KVM), no display, no monitor, -no-reboot (a reboot ends QEMU), serial console on stdio.
#
#   lb_qemu_cmd [OPTION...] [-- QEMU-ARG...]   sets the array LB_QEMU_CMD
#   lb_qemu     [OPTION...] [-- QEMU-ARG...]   runs it: in the foreground (until QEMU exits or
#                                              --timeout; returns QEMU's status) or, with
#                                              --background, sets LB_QEMU_PID
# Options:
#   --mem MB                  memory (default 512)
#   --machine pc|q35          machine type (default QEMU's)
#   --firmware bios|uefi|uefi-secure
#                             uefi: OVMF with a private copy of its variables (--vars FILE, or
#                             one in $LB_QEMU_TMP); default bios (SeaBIOS); uefi-secure: OVMF
#                             with SMM and a copy of the ovmf package's variable store that
#                             enrolls Microsoft's keys with Secure Boot on (q35 only)
#   --vars FILE               the UEFI variables file to use (kept across runs when it exists)
#   --kernel FILE --initrd FILE --append TEXT   direct kernel boot
#   --disk FILE               raw virtio disk; its serial: --disk-serial S (before --disk)
#   --netboot DIR:BOOTFILE    user network with QEMU's TFTP server on DIR; --nic MODEL
#                             (default e1000) and --mac MAC apply; boots from the network
#   --smbios-uuid U --smbios-serial S   the machine's DMI identity
#   --log FILE                serial console and QEMU's messages go to FILE (lb_qemu)
#   --timeout S               lb_qemu in the foreground: kill QEMU after S seconds (default 300)
#   --background              lb_qemu: start QEMU and return; its pid is $LB_QEMU_PID
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a library: source it" >&2
  exit 2
fi
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS.fd}
OVMF_SECURE_CODE=${OVMF_SECURE_CODE:-/usr/share/OVMF/OVMF_CODE_4M.ms.fd}
OVMF_SECURE_VARS=${OVMF_SECURE_VARS:-/usr/share/OVMF/OVMF_VARS_4M.ms.fd}

lb_qemu_cmd() {
  local mem=512 machine="" firmware=bios vars="" disk_serial="" nic=e1000 mac="" uuid="" serial=""
  local boot_args=() drive_args=() net_args=() n_disk=0
  LB_QEMU_LOG=/dev/stdout LB_QEMU_TIMEOUT=300 LB_QEMU_BG=""
  while [ $# -gt 0 ]; do
    case $1 in
      --mem) mem=$2; shift 2 ;;
      --machine) machine=$2; shift 2 ;;
      --firmware) firmware=$2; shift 2 ;;
      --vars) vars=$2; shift 2 ;;
      --kernel) boot_args+=(-kernel "$2"); shift 2 ;;
      --initrd) boot_args+=(-initrd "$2"); shift 2 ;;
      --append) boot_args+=(-append "$2"); shift 2 ;;
      --disk-serial) disk_serial=$2; shift 2 ;;
      --disk)
        [ -n "$2" ] || { echo "lb_qemu: --disk needs a file" >&2; return 2; }
        drive_args+=(-drive "file=$2,if=none,id=d$n_disk,format=raw"
          -device "virtio-blk-pci,drive=d$n_disk${disk_serial:+,serial=$disk_serial}")
        n_disk=$((n_disk + 1)); disk_serial=""; shift 2 ;;
      --nic) nic=$2; shift 2 ;;
      --mac) mac=$2; shift 2 ;;
      --netboot)
        net_args=(-netdev "user,id=n0,tftp=${2%%:*},bootfile=${2#*:}")
        shift 2 ;;
      --smbios-uuid) uuid=$2; shift 2 ;;
      --smbios-serial) serial=$2; shift 2 ;;
      --log) LB_QEMU_LOG=$2; shift 2 ;;
      --timeout) LB_QEMU_TIMEOUT=$2; shift 2 ;;
      --background) LB_QEMU_BG=1; shift ;;
      --) shift; break ;;
      *) echo "lb_qemu: unknown option $1" >&2; return 2 ;;
    esac
  done
  LB_QEMU_CMD=(qemu-system-x86_64 -accel tcg -m "$mem" -display none -monitor none -serial stdio
    -no-reboot)
  [ -n "$machine" ] && LB_QEMU_CMD+=(-M "$machine")
  case $firmware in
    bios) ;;
    uefi)
      [ -r "$OVMF_CODE" ] || { echo "lb_qemu: no UEFI firmware at $OVMF_CODE (make setup: ovmf)" >&2; return 2; }
      if [ -z "$vars" ]; then vars=$(mktemp "${LB_QEMU_TMP:-/tmp}/ovmf-vars.XXXXXX"); fi
      [ -s "$vars" ] || cp "$OVMF_VARS" "$vars"
      LB_QEMU_CMD+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
        -drive "if=pflash,format=raw,unit=1,file=$vars") ;;
    uefi-secure)
      [ "$machine" = q35 ] || { echo "lb_qemu: --firmware uefi-secure needs --machine q35 (SMM)" >&2; return 2; }
      [ -r "$OVMF_SECURE_CODE" ] && [ -r "$OVMF_SECURE_VARS" ] \
        || { echo "lb_qemu: no Secure Boot OVMF at $OVMF_SECURE_CODE / $OVMF_SECURE_VARS (make setup: ovmf)" >&2; return 2; }
      if [ -z "$vars" ]; then vars=$(mktemp "${LB_QEMU_TMP:-/tmp}/ovmf-vars.XXXXXX"); fi
      [ -s "$vars" ] || cp "$OVMF_SECURE_VARS" "$vars"
      LB_QEMU_CMD=("${LB_QEMU_CMD[@]/#q35/q35,smm=on}")
      LB_QEMU_CMD+=(-global "driver=cfi.pflash01,property=secure,value=on"
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_SECURE_CODE"
        -drive "if=pflash,format=raw,unit=1,file=$vars") ;;
    *) echo "lb_qemu: --firmware bios, uefi or uefi-secure, not $firmware" >&2; return 2 ;;
  esac
  LB_QEMU_CMD+=("${boot_args[@]}" "${drive_args[@]}")
  if [ ${#net_args[@]} -gt 0 ]; then
    LB_QEMU_CMD+=("${net_args[@]}" -device "$nic,netdev=n0${mac:+,mac=$mac}" -boot n)
  fi
  if [ -n "$uuid$serial" ]; then
    LB_QEMU_CMD+=(-smbios "type=1${uuid:+,uuid=$uuid}${serial:+,serial=$serial}")
  fi
  LB_QEMU_CMD+=("$@")
}

lb_qemu() {
  lb_qemu_cmd "$@" || return
  if [ -n "$LB_QEMU_BG" ]; then
    "${LB_QEMU_CMD[@]}" </dev/null >"$LB_QEMU_LOG" 2>&1 &
    # shellcheck disable=SC2034 # read by the caller
    LB_QEMU_PID=$!
    return 0
  fi
  timeout "$LB_QEMU_TIMEOUT" "${LB_QEMU_CMD[@]}" </dev/null >"$LB_QEMU_LOG" 2>&1
}
