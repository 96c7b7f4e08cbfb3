# shellcheck shell=bash
# Shared by every shell test and scripts/story.sh: sourced, never run.
#
#   fail MESSAGE...        prints "FAIL: MESSAGE" and exits 1
#   on_exit COMMAND        runs COMMAND (a string for eval) at exit, last registered first,
#                          after the loop devices are detached
#   loop_attach FILE [ro]  a loop device for FILE in $REPLY; its partitions (if FILE has a
#                          partition table) are ${REPLY}p1, ${REPLY}p2, ... once this returns
#   loop_detach DEV        unmounts whatever is mounted from DEV or its partitions, detaches DEV
#   loop_detach_all        loop_detach of every device loop_attach made
#
# Every device loop_attach makes is detached at exit (by its name: never by a pattern that
# could match another program's device), also when it was attached in a subshell ($(...)):
# the names are kept in a file.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "${BASH_SOURCE[0]} is a library: source it from a test" >&2
  exit 2
fi
[ -n "${LB_COMMON_LOADED:-}" ] && return 0
LB_COMMON_LOADED=1

fail() { echo "FAIL: $*" >&2; exit 1; }

# Recovery images for tests and the stories: `mkrescue --level 9` (zstd 9: about a second for the
# generic image) instead of the default 19 (25 s on two idle cores, a minute under load, for 12 %
# fewer bytes): the level changes only the initrd's size, and a run builds about twenty images.
# tests/qemu/10-mkrescue-boot.sh builds with the defaults.
# shellcheck disable=SC2034 # used by the files that source this one
LB_MKRESCUE_LEVEL=(--level 9)

# A command that stops a test through `set -e` says which one it was, and where.
set -E
# (Only under `set -e`: after `set +e` a failing command is the test's to judge.)
lb_on_err() {
  local rc=$?
  [[ $- == *e* ]] || return 0
  echo "FAIL: ${BASH_SOURCE[1]}:${BASH_LINENO[0]}: \"$BASH_COMMAND\" exited with $rc" >&2
}
trap lb_on_err ERR

LB_EXIT_CMDS=()
LB_LOOP_LIST=$(mktemp /tmp/lb-loops.XXXXXX)
lb_run_exit() {
  local rc=$? i
  set +e
  trap - ERR
  # Loop devices first (with whatever is mounted from them), so that the commands after
  # (rm -rf of a work dir) never reach into a mounted filesystem.
  loop_detach_all
  rm -f "$LB_LOOP_LIST"
  for ((i = ${#LB_EXIT_CMDS[@]} - 1; i >= 0; i--)); do eval "${LB_EXIT_CMDS[$i]}"; done
  return "$rc"
}
trap lb_run_exit EXIT
on_exit() { LB_EXIT_CMDS+=("$1"); }

loop_attach() {
  local file=$1 mode=${2:-rw} dev parts n=0 p
  [ -n "$file" ] && [ -f "$file" ] || fail "loop_attach: no image file '$file'"
  local ro=(); [ "$mode" = ro ] && ro=(-r)
  dev=$(losetup --show -f -P "${ro[@]}" "$file") || fail "cannot attach $file to a loop device"
  echo "$dev" >>"$LB_LOOP_LIST"
  # Partition nodes appear late (or never, without udev): ask the kernel, then wait for them.
  parts=$(partx -g -o NR "$file" 2>/dev/null | tr -d ' ' || true)
  if [ -n "$parts" ]; then
    partx -a "$dev" 2>/dev/null || true
    for p in $parts; do
      while [ ! -b "${dev}p$p" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
      [ -b "${dev}p$p" ] || fail "no partition node ${dev}p$p for $file (partx -a $dev)"
    done
  fi
  REPLY=$dev
}

loop_detach_all() {
  local dev
  [ -f "$LB_LOOP_LIST" ] || return 0
  while read -r dev; do loop_detach "$dev"; done < <(tac "$LB_LOOP_LIST")
}

loop_detach() {
  local dev=$1 m
  [ -n "$dev" ] || return 0
  # Mounts of exactly this device or its partitions ("/dev/loop1" must not match "/dev/loop12").
  awk -v d="$dev" '$1 == d || index($1, d "p") == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  losetup -d "$dev" 2>/dev/null || echo "warning: cannot detach $dev (losetup -d)" >&2
  if [ -f "$LB_LOOP_LIST" ]; then
    grep -vxF -- "$dev" "$LB_LOOP_LIST" >"$LB_LOOP_LIST.new" || true
    mv "$LB_LOOP_LIST.new" "$LB_LOOP_LIST"
  fi
  return 0
}
