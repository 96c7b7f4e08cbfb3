# shellcheck shell=bash
# Shared by tests/qemu/3*.sh (boot media): builds the recovery image, the PXE tree and the ISO
# with `lifeboat mkrescue`, boots QEMU (tests/lib/qemu.bash: TCG only, never KVM) and watches
# the serial console. Sourced, never run.
#
#   source tests/qemu/lib/media.bash
#   media_build [--host MAC --unattended] [--append TEXT] [--secure-boot]
#                               -> $MEDIA/pxe (PXE tree), $MEDIA/lifeboat.iso (--secure-boot:
#                                  Debian's signed shim and GRUB from $SIGNED, build/signed)
#   boot_watch NAME DEADLINE_S [lb_qemu OPTION...] -- [QEMU ARG...]
#                               -> waits for lifeboat-init and its menu on the serial console;
#                                  sets $LOG, prints the times
#   boot_until_exit NAME DEADLINE_S [lb_qemu OPTION...] -- [QEMU ARG...]
#                               -> waits until the machine powers off or reboots
#   boot_refused NAME DEADLINE_S PATTERN [lb_qemu OPTION...] -- [QEMU ARG...]
#                               -> waits for PATTERN (extended regexp) on the serial console;
#                                  fails if the kernel starts instead, or on timeout
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a library: source it from a test" >&2
  exit 2
fi
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
# shellcheck source=tests/lib/common.bash
. "$ROOT/tests/lib/common.bash"
# shellcheck source=tests/lib/qemu.bash
. "$ROOT/tests/lib/qemu.bash"

KERNEL=${LIFEBOAT_KERNEL:-$ROOT/build/kernel/vmlinuz}
MODULES=${LIFEBOAT_MODULES:-$ROOT/build/kernel/modules}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LIFEBOAT=${LIFEBOAT:-$TARGET_DIR/x86_64-unknown-linux-musl/release/lifeboat}
LIFEBOAT_INIT=${LIFEBOAT_INIT:-$TARGET_DIR/x86_64-unknown-linux-musl/release/lifeboat-init}
# Short menus in tests: the default entry boots after 1 s.
export LIFEBOAT_MENU_TIMEOUT=${LIFEBOAT_MENU_TIMEOUT:-1}

MEDIA=$(mktemp -d /tmp/lifeboat-media.XXXXXX)
LB_QEMU_TMP=$MEDIA
QEMU_PIDS=()
media_cleanup() {
  local p
  for p in "${QEMU_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_MEDIA:-}" ]; then echo "kept $MEDIA"; else rm -rf "$MEDIA"; fi
}
on_exit media_cleanup


[ -e "$KERNEL" ] || bash scripts/fetch-kernel.sh build/kernel
[ -e "$KERNEL" ] || fail "no kernel at $KERNEL (bash scripts/fetch-kernel.sh build/kernel)"
SIGNED=${LIFEBOAT_SIGNED_DIR:-$ROOT/build/signed}

# The image and the boot media, from `lifeboat mkrescue` (the thing under test: a failure fails
# the test).
media_build() {
  local host="" unattended="" append="" secure=""
  while [ $# -gt 0 ]; do
    case $1 in
      --secure-boot) secure=1; shift ;;
      --host) host=$2; shift 2 ;;
      --append) append=$2; shift 2 ;;
      --unattended) unattended=1; shift ;;
      *) fail "media_build: unknown option $1" ;;
    esac
  done
  [ -x "$LIFEBOAT" ] && [ -x "$LIFEBOAT_INIT" ] \
    || fail "no $LIFEBOAT or $LIFEBOAT_INIT: run 'make build'"
  local args=(mkrescue "${LB_MKRESCUE_LEVEL[@]}" --kernel "$KERNEL" --modules "$MODULES" --init "$LIFEBOAT_INIT"
              --output "$MEDIA/image" --pxe "$MEDIA/pxe" --iso "$MEDIA/lifeboat.iso")
  [ -n "$host" ] && args+=(--pxe-host "$host")
  [ -n "$unattended" ] && args+=(--unattended)
  [ -n "$append" ] && args+=(--append "$append")
  if [ -n "$secure" ]; then
    [ -s "$SIGNED/shimx64.efi" ] || bash scripts/fetch-signed.sh "$SIGNED"
    args+=(--secure-boot --signed-dir "$SIGNED")
  fi
  local err
  err=$("$LIFEBOAT" "${args[@]}" 2>&1 >/dev/null) || fail "lifeboat mkrescue failed: $err"
  [ -f "$MEDIA/pxe/pxelinux.0" ] || fail "no PXE tree written"
  [ -f "$MEDIA/lifeboat.iso" ] || fail "no ISO written"
  echo "ISO $(du -h "$MEDIA/lifeboat.iso" | cut -f1), initrd $(du -h "$MEDIA/pxe/initrd.img" | cut -f1)"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# boot_watch NAME DEADLINE -- QEMU ARGS: boots, waits for the boot loader menu ("Boot from local
# disk"), then lifeboat-init followed by its menu title; kills QEMU; fails on timeout.
# MENU_PATTERN (default "Restore from backup") is what must follow the lifeboat-init line.
# Extra patterns to wait for (anywhere) in WAIT_ALSO (array, optional).
boot_watch() {
  local name=$1 deadline=$2; shift 2
  LOG="$MEDIA/$name.log"
  : > "$LOG"
  local t0 t_loader="" t_init="" t_menu="" ok=""
  t0=$(now)
  lb_qemu --mem 1024 --log "$LOG" --background "$@"
  local pid=$LB_QEMU_PID
  QEMU_PIDS+=("$pid")
  while :; do
    [ -z "$t_loader" ] && grep -aq 'Boot from local disk' "$LOG" && t_loader=$(since "$t0")
    [ -z "$t_init" ] && grep -aq 'lifeboat-init' "$LOG" && t_init=$(since "$t0")
    if [ -n "$t_init" ] && [ -z "$t_menu" ] && sed -n '/lifeboat-init/,$p' "$LOG" | grep -aq -- "${MENU_PATTERN:-Restore from backup}"; then
      t_menu=$(since "$t0")
      ok=1
      local p
      for p in "${WAIT_ALSO[@]:-}"; do
        [ -z "$p" ] && continue
        grep -aqE -- "$p" "$LOG" || ok=""
      done
      [ -n "$ok" ] && break
      t_menu=""
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      # QEMU left: one last look at the log.
      sleep 0.2
      if [ -z "$ok" ] && sed -n '/lifeboat-init/,$p' "$LOG" | grep -aq -- "${MENU_PATTERN:-Restore from backup}"; then
        ok=1
        for p in "${WAIT_ALSO[@]:-}"; do [ -z "$p" ] || grep -aqE -- "$p" "$LOG" || ok=""; done
        [ -z "$t_init" ] && t_init=$(since "$t0")
        t_menu=$(since "$t0")
      fi
      break
    fi
    if awk -v e="$(since "$t0")" -v d="$deadline" 'BEGIN { exit !(e > d) }'; then break; fi
    sleep 0.2
  done
  stop_qemu "$pid"
  [ -n "$ok" ] || console_fail "$name" 40 "lifeboat-init and its menu did not appear within ${deadline}s"
  echo "TIME $name: boot loader menu ${t_loader:-?}s, lifeboat-init ${t_init}s, menu ${t_menu}s after power-on"
  printf '%s\t%s\t%s\t%s\n' "$name" "${t_loader:-?}" "$t_init" "$t_menu" >> "${MEDIA_TIMES:-/dev/null}"
}

# stop_qemu PID: power the machine off (it may have left already).
stop_qemu() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# console_fail NAME LINES WHY...: the last LINES of the serial console ($LOG), then fail.
console_fail() {
  local name=$1 lines=$2; shift 2
  echo "--- serial console of $name (last $lines lines, escapes stripped):"
  strip_log "$LOG" | tail -n "$lines"
  fail "$name: $*"
}

strip_log() { tr -d '\r' < "$1" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1b[()][0-9A-Za-z]//g' | grep -av '^\s*$' || true; }

# The kernel command line the firmware/boot loader chose (printed by the kernel).
kernel_cmdline() { strip_log "$LOG" | grep -a -m1 'Kernel command line:' || true; }

# boot_until_exit NAME DEADLINE -- QEMU ARGS: boots with -no-reboot and waits until the machine
# powers off or reboots (QEMU exits); fails on timeout, or as soon as the serial console shows
# STOP_PATTERN (an extended regexp, optional). Sets $LOG, prints the time.
boot_until_exit() {
  local name=$1 deadline=$2; shift 2
  LOG="$MEDIA/$name.log"
  : > "$LOG"
  local t0 pid why=""
  t0=$(now)
  lb_qemu --mem 1024 --log "$LOG" --background "$@"
  pid=$LB_QEMU_PID
  QEMU_PIDS+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    if [ -n "${STOP_PATTERN:-}" ] && grep -aqE -- "$STOP_PATTERN" "$LOG"; then
      why="the console showed: $(grep -aoE -m1 -- "$STOP_PATTERN" "$LOG")"
    elif awk -v e="$(since "$t0")" -v d="$deadline" 'BEGIN { exit !(e > d) }'; then
      why="the machine was still running after ${deadline}s"
    fi
    if [ -n "$why" ]; then
      sleep 1
      stop_qemu "$pid"
      console_fail "$name" 60 "$why"
    fi
    sleep 0.5
  done
  wait "$pid" || { strip_log "$LOG" | tail -n 20; fail "$name: QEMU failed"; }
  echo "TIME $name: power-on to reboot $(since "$t0")s"
}

# boot_refused NAME DEADLINE PATTERN -- QEMU ARGS: boots and waits until the serial console shows
# PATTERN (the boot loader refusing something); fails if the kernel starts ("Linux version",
# "EFI stub") or PATTERN does not appear in time. Sets $LOG, prints the time.
boot_refused() {
  local name=$1 deadline=$2 pattern=$3; shift 3
  LOG="$MEDIA/$name.log"
  : > "$LOG"
  local t0 pid why=""
  t0=$(now)
  lb_qemu --mem 1024 --log "$LOG" --background "$@"
  pid=$LB_QEMU_PID
  QEMU_PIDS+=("$pid")
  while :; do
    if grep -aqE -- "$pattern" "$LOG"; then break; fi
    if grep -aqE 'Linux version|EFI stub' "$LOG"; then
      why="the kernel started: it was not refused"
    elif ! kill -0 "$pid" 2>/dev/null; then
      why="QEMU left before the console showed /$pattern/"
    elif awk -v e="$(since "$t0")" -v d="$deadline" 'BEGIN { exit !(e > d) }'; then
      why="/$pattern/ did not appear within ${deadline}s"
    fi
    [ -n "$why" ] && break
    sleep 0.5
  done
  stop_qemu "$pid"
  [ -z "$why" ] || console_fail "$name" 40 "$why"
  echo "TIME $name: refused $(since "$t0")s after power-on: $(strip_log "$LOG" | grep -aoE -m1 -- "$pattern")"
}
