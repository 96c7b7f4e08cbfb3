# shellcheck shell=bash
# The recovery image's time to its menu for `make bench` (issue 13, item 4): sourced by
# scripts/bench.sh, which gives line, hog_start/hog_stop, $B, $LIFEBOAT, $ROOT_DIR.
# The image is `lifeboat mkrescue`'s with its defaults (the generic driver set, zstd 19: what an
# administrator ships) for the cloud test kernel; QEMU (TCG, tests/lib/qemu.bash) is given the
# kernel and the initrd directly, with one blank virtio disk. Each boot is timed from QEMU's
# start to the image's "Menu ready" line on the serial console, which also says where the time
# after the kernel's start went (kernel, unpack, coldplug, settle, discovery). BENCH_MENU_BOOTS
# (5) boots on the machine as it is, the same under the CPU hog when BENCH_HOG asks for it; the
# median is the figure.
# shellcheck source=tests/lib/qemu.bash
. "$ROOT_DIR/tests/lib/qemu.bash"

MENU_BOOTS=${BENCH_MENU_BOOTS:-5}

# menu_boot LOG: one boot, stopped at the menu; prints the seconds from QEMU's start to the line.
menu_boot() {
  local log=$1 t0 t1
  : >"$log"
  t0=$(date +%s.%N)
  lb_qemu --background --mem 512 --kernel "$B/menu-image/vmlinuz" \
    --initrd "$B/menu-image/initrd.img" --append "console=ttyS0 panic=-1" \
    --disk "$B/menu-disk.img" --log "$log"
  local deadline=$((SECONDS + 180))
  until grep -q "Menu ready" "$log"; do
    if ! kill -0 "$LB_QEMU_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      kill "$LB_QEMU_PID" 2>/dev/null || true
      echo "bench: the recovery image did not reach its menu (serial console: $log)" >&2
      return 1
    fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  kill "$LB_QEMU_PID" 2>/dev/null || true
  wait "$LB_QEMU_PID" 2>/dev/null || true
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }'
}

# menu_runs SUFFIX: MENU_BOOTS boots; sets MENU_MEDIAN and MENU_LINE (keyed by SUFFIX, "quiet" for none) (the image's
# own account of the median boot).
declare -A MENU_MEDIAN MENU_LINE
menu_runs() {
  local x=$1 i s times=() lines=()
  for ((i = 1; i <= MENU_BOOTS; i++)); do
    s=$(menu_boot "$B/menu-boot$i.log")
    times+=("$s")
    lines+=("$(awk '/Menu ready/ { sub(/.*Menu ready/, "Menu ready"); sub(/\r$/, ""); print; exit }' "$B/menu-boot$i.log")")
    echo "bench: recovery image boot $i$x: menu $s s after QEMU's start; ${lines[-1]}"
  done
  # The median boot (by its time from QEMU's start).
  i=$(for ((s = 0; s < ${#times[@]}; s++)); do echo "${times[s]} $s"; done | sort -n |
    awk -v n="${#times[@]}" 'NR == int((n + 1) / 2) { print $2 }')
  MENU_MEDIAN[${x:-quiet}]=${times[i]}
  MENU_LINE[${x:-quiet}]=${lines[i]}
}

menu_bench() {
  bash "$ROOT_DIR/scripts/fetch-kernel.sh" "$ROOT_DIR/build/kernel" >&2
  rm -rf "$B/menu-image"
  "$LIFEBOAT" mkrescue -q --kernel "$ROOT_DIR/build/kernel/vmlinuz" \
    --modules "$ROOT_DIR/build/kernel/modules" --output "$B/menu-image"
  truncate -s 0 "$B/menu-disk.img"
  truncate -s 256M "$B/menu-disk.img"
  local x
  for x in "${SUFFIXES[@]}"; do
    if [ -n "$x" ]; then hog_start; fi
    menu_runs "$x"
    hog_stop
  done
}

menu_lines() {
  local x
  for x in "${SUFFIXES[@]}"; do
    if [ -z "$x" ]; then
      line "recovery image: QEMU start to the menu, s (median of $MENU_BOOTS; ${MENU_LINE[${x:-quiet}]})" \
        "${MENU_MEDIAN[${x:-quiet}]}" "<= 5.0"
    else
      line "recovery image: QEMU start to the menu, s$x (median of $MENU_BOOTS; ${MENU_LINE[${x:-quiet}]})" \
        "${MENU_MEDIAN[${x:-quiet}]}" "(info)"
    fi
  done
}
