# Shared by tests/qemu/3*.sh (boot media): builds the recovery image, the PXE tree and the ISO,
# boots QEMU (TCG only, never KVM) and watches the serial console.
#
#   source tests/qemu/lib/media.bash
#   media_build [--host MAC --unattended]   -> $MEDIA/pxe (PXE tree), $MEDIA/lifeboat.iso
#   boot_watch NAME DEADLINE_S -- QEMU ARGS  -> waits for lifeboat-init and its menu on the serial
#                                               console; sets $LOG, prints the times
#
# The image: `lifeboat mkrescue` with the real lifeboat-init when both are built; until they
# are, a stub initramfs (static busybox /init that prints a lifeboat-init line, the menu title
# and the kernel command line, then powers off) and the builders driven through the ignored
# unit test `build_media_from_env`. MEDIA_IMAGE=stub|real forces one.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"

KERNEL=${LIFEBOAT_KERNEL:-$ROOT/build/kernel/vmlinuz}
MODULES=${LIFEBOAT_MODULES:-$ROOT/build/kernel/modules}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LIFEBOAT=${LIFEBOAT:-$TARGET_DIR/x86_64-unknown-linux-musl/release/lifeboat}
LIFEBOAT_INIT=${LIFEBOAT_INIT:-$TARGET_DIR/x86_64-unknown-linux-musl/release/lifeboat-init}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS.fd}
# Short menus in tests: the default entry boots after 1 s.
export LIFEBOAT_MENU_TIMEOUT=${LIFEBOAT_MENU_TIMEOUT:-1}

MEDIA=$(mktemp -d /tmp/lifeboat-media.XXXXXX)
QEMU_PIDS=()
media_cleanup() {
  local p
  for p in "${QEMU_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_MEDIA:-}" ]; then echo "kept $MEDIA"; else rm -rf "$MEDIA"; fi
}
trap media_cleanup EXIT

skip() { echo "SKIP: $*"; exit 0; }
die() { echo "FAIL: $*" >&2; exit 1; }

[ -e "$KERNEL" ] || bash scripts/fetch-kernel.sh build/kernel
[ -e "$KERNEL" ] || die "no kernel at $KERNEL (bash scripts/fetch-kernel.sh build/kernel)"

# The stub initramfs: a static busybox /init.
stub_initrd() {
  local out=$1 d="$MEDIA/stub-root"
  rm -rf "$d" && mkdir -p "$d"/{bin,dev,proc,sys}
  cp "$(command -v busybox)" "$d/bin/busybox"
  file -L "$d/bin/busybox" | grep -q 'statically linked' || die "busybox is not static: apt-get install busybox-static"
  mknod "$d/dev/console" c 5 1
  cat > "$d/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
for c in /dev/ttyS0 /dev/tty0; do
  { echo "lifeboat-init media-test-stub"; echo "Restore from backup";
    echo "stub cmdline: $(/bin/busybox cat /proc/cmdline)"; } > $c 2>/dev/null
done
/bin/busybox sleep 1
/bin/busybox poweroff -f
EOF
  chmod 755 "$d/init"
  (cd "$d" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9) > "$out"
}

# Real image if mkrescue and lifeboat-init exist; else the stub. Sets IMAGE_KIND.
media_build() {
  local host="" unattended="" append=""
  while [ $# -gt 0 ]; do
    case $1 in
      --host) host=$2; shift 2 ;;
      --append) append=$2; shift 2 ;;
      --unattended) unattended=1; shift ;;
      *) die "media_build: unknown option $1" ;;
    esac
  done
  local kind=${MEDIA_IMAGE:-auto}
  if [ "${MEDIA_REQUIRE_REAL:-}" = 1 ]; then kind=real; fi
  if [ "$kind" = auto ]; then
    kind=stub
    if [ -x "$LIFEBOAT" ] && [ -x "$LIFEBOAT_INIT" ]; then kind=real; fi
  fi
  if [ "$kind" = real ]; then
    local args=(mkrescue --kernel "$KERNEL" --modules "$MODULES" --init "$LIFEBOAT_INIT"
                --output "$MEDIA/image" --pxe "$MEDIA/pxe" --iso "$MEDIA/lifeboat.iso")
    [ -n "$host" ] && args+=(--pxe-host "$host")
    [ -n "$unattended" ] && args+=(--unattended)
    [ -n "$append" ] && args+=(--append "$append")
    local err
    if err=$("$LIFEBOAT" "${args[@]}" 2>&1 >/dev/null); then
      IMAGE_KIND=real
    elif [ "${MEDIA_REQUIRE_REAL:-}" = 1 ] && grep -q 'not built yet' <<<"$err"; then
      skip "lifeboat mkrescue: $err"
    elif [ -z "${MEDIA_IMAGE:-}" ] && grep -q 'not built yet' <<<"$err"; then
      echo "note: $err; testing the media with the stub image"
      kind=stub
    else
      die "lifeboat mkrescue failed: $err"
    fi
  fi
  if [ "$kind" = stub ]; then
    stub_initrd "$MEDIA/stub-initrd.img"
    LIFEBOAT_MEDIA_KERNEL=$KERNEL LIFEBOAT_MEDIA_INITRD=$MEDIA/stub-initrd.img \
    LIFEBOAT_MEDIA_PXE=$MEDIA/pxe LIFEBOAT_MEDIA_ISO=$MEDIA/lifeboat.iso \
    LIFEBOAT_MEDIA_HOST=$host LIFEBOAT_MEDIA_UNATTENDED=$unattended LIFEBOAT_MEDIA_APPEND=$append \
      cargo test -q --locked -p lifeboat --bin lifeboat build_media_from_env -- --ignored --exact \
        rescue::pxe::tests::build_media_from_env > "$MEDIA/build.log" 2>&1 \
      || { cat "$MEDIA/build.log"; die "building the boot media failed"; }
    IMAGE_KIND=stub
  fi
  [ -f "$MEDIA/pxe/pxelinux.0" ] || die "no PXE tree written"
  [ -f "$MEDIA/lifeboat.iso" ] || die "no ISO written"
  echo "image: $IMAGE_KIND; ISO $(du -h "$MEDIA/lifeboat.iso" | cut -f1), initrd $(du -h "$MEDIA/pxe/initrd.img" | cut -f1)"
}

ovmf_args() {
  cp "$OVMF_VARS" "$MEDIA/vars-$1.fd"
  echo "-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE -drive if=pflash,format=raw,unit=1,file=$MEDIA/vars-$1.fd"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# boot_watch NAME DEADLINE -- QEMU ARGS: boots, waits for the boot loader menu ("Boot from local
# disk"), then lifeboat-init followed by its menu title; kills QEMU; fails on timeout.
# MENU_PATTERN (default "Restore from backup") is what must follow the lifeboat-init line.
# Extra patterns to wait for (anywhere) in WAIT_ALSO (array, optional).
boot_watch() {
  local name=$1 deadline=$2; shift 3
  LOG="$MEDIA/$name.log"
  : > "$LOG"
  local t0 t_loader="" t_init="" t_menu="" ok=""
  t0=$(now)
  qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none -no-reboot \
    -serial "file:$LOG" "$@" > "$MEDIA/$name.qemu.out" 2>&1 &
  local pid=$!
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
      # QEMU left (the stub powers off): one last look at the log.
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
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -z "$ok" ]; then
    echo "--- serial console of $name (last 40 lines, escapes stripped):"
    strip_log "$LOG" | tail -n 40
    cat "$MEDIA/$name.qemu.out" || true
    die "$name: lifeboat-init and its menu did not appear within ${deadline}s"
  fi
  echo "TIME $name: boot loader menu ${t_loader:-?}s, lifeboat-init ${t_init}s, menu ${t_menu}s after power-on ($IMAGE_KIND image)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "${t_loader:-?}" "$t_init" "$t_menu" "$IMAGE_KIND" >> "${MEDIA_TIMES:-/dev/null}"
}

strip_log() { tr -d '\r' < "$1" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1b[()][0-9A-Za-z]//g' | grep -av '^\s*$' || true; }

# The kernel command line the firmware/boot loader chose (printed by the kernel).
kernel_cmdline() { strip_log "$LOG" | grep -a -m1 'Kernel command line:' || true; }

# boot_until_exit NAME DEADLINE -- QEMU ARGS: boots with -no-reboot and waits until the machine
# powers off or reboots (QEMU exits); fails on timeout, or as soon as the serial console shows
# STOP_PATTERN (an extended regexp, optional). Sets $LOG, prints the time.
boot_until_exit() {
  local name=$1 deadline=$2; shift 3
  LOG="$MEDIA/$name.log"
  : > "$LOG"
  local t0 pid why=""
  t0=$(now)
  qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none -no-reboot \
    -serial "file:$LOG" "$@" > "$MEDIA/$name.qemu.out" 2>&1 &
  pid=$!
  QEMU_PIDS+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    if [ -n "${STOP_PATTERN:-}" ] && grep -aqE -- "$STOP_PATTERN" "$LOG"; then
      why="the console showed: $(grep -aoE -m1 -- "$STOP_PATTERN" "$LOG")"
    elif awk -v e="$(since "$t0")" -v d="$deadline" 'BEGIN { exit !(e > d) }'; then
      why="the machine was still running after ${deadline}s"
    fi
    if [ -n "$why" ]; then
      sleep 1
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo "--- serial console of $name (last 60 lines, escapes stripped):"
      strip_log "$LOG" | tail -n 60
      die "$name: $why"
    fi
    sleep 0.5
  done
  wait "$pid" || { cat "$MEDIA/$name.qemu.out"; die "$name: QEMU failed"; }
  echo "TIME $name: power-on to reboot $(since "$t0")s ($IMAGE_KIND image)"
}
