#!/bin/bash
# Power cuts at random moments of a real restore. QEMU is killed (kill -9) a random delay after
# a console line of one phase (verify, mkfs, extraction, sync, final label/UUID, journal), at
# LB_POWER_CUTS (default 10, at least 10) moments chosen from a printed seed (LIFEBOAT_SEED
# reproduces them). After every cut the disk is inspected from this side:
#   - while the store's journal says the restore is not done, the root partition never carries
#     the backup's label or UUID, unless it is still the untouched old root or already holds
#     the complete backup (the instant between tune2fs and the journal record);
# and the image is booted again: it reports the unfinished restore and, when the journal holds
# the plan of that restore, resumes at the first step not done ("Resuming at step N/M"). The last
# boot runs uncut: the result equals the backup, with its label, UUID and journal records.
# First, one boot to the menu with the old root set to `errors=panic` and marked as needing
# journal recovery: discovery looks at it without writing a byte (read-only, no journal
# replay) and without panicking.
# shellcheck source=tests/qemu/lib/restore.bash
source "$(dirname "$0")/lib/restore.bash"
lb_setup
lb_image
lb_store_disk

T0=$(date +%s)

lb_attach "$LB_DISK"
tune2fs -e panic "$LB_P1" >/dev/null
debugfs -w -R "feature needs_recovery" "$LB_P1" >/dev/null 2>&1
dumpe2fs -h "$LB_P1" 2>/dev/null | grep -q 'features:.*needs_recovery' || fail "could not mark the old root as needing recovery"
ROOT_DIGEST_DAMAGED=$(md5sum < "$LB_P1")
lb_detach
lb_drive "$LB_WORK/boot-0.log" "" choose:"Power off" expect:"Powering off" \
  || { tail -n 30 "$LB_WORK/boot-0.log"; fail "boot 0: the menu never came"; }
lb_attach "$LB_DISK"
[ "$(md5sum < "$LB_P1")" = "$ROOT_DIGEST_DAMAGED" ] \
  || fail "boot 0: discovery wrote to the root partition it only looked at (journal replayed?)"
lb_detach
lb_log "boot 0: discovery left the old root (errors=panic, needs_recovery) untouched"
SEED=${LIFEBOAT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
CUTS=${LB_POWER_CUTS:-10}
[ "$CUTS" -ge 10 ] || fail "LB_POWER_CUTS=$CUTS: the test needs at least 10 power cuts"
echo "power-cut seed: $SEED (run again with LIFEBOAT_SEED=$SEED for the same moments)"
RANDOM=$SEED
APPEND="lifeboat.restore=latest lifeboat.yes lifeboat.after=poweroff"

# Phase: the console line it starts with, and the longest random delay after it (ms).
PHASES=("Verifying " "Creating ext4 on" "Extracting ..." "Syncing ..."
        "Setting the recorded label" "Recording restore-done")
DELAYS=(2500 1200 800 300 200 40)

# The moments: every phase in turn, in a random order per round, each with a random delay.
# A moment that comes after the restore finished is no cut: the boots go on until $CUTS cuts
# landed (at most twice as many boots).
MOMENTS=()
while [ "${#MOMENTS[@]}" -lt $((2 * CUTS)) ]; do
  # Shuffled in this shell: a subshell would reseed $RANDOM and lose the seed.
  order=("${!PHASES[@]}")
  for ((i = ${#order[@]} - 1; i > 0; i--)); do
    j=$((RANDOM % (i + 1))); t=${order[i]}; order[i]=${order[j]}; order[j]=$t
  done
  for i in "${order[@]}"; do
    MOMENTS+=("$i:$((RANDOM % ${DELAYS[$i]}))")
  done
done

smnt=$LB_WORK/state-store; fsmnt=$LB_WORK/state-root; refmnt=$LB_WORK/state-ref
mkdir -p "$smnt" "$fsmnt" "$refmnt"
on_exit "umount '$smnt' '$fsmnt' '$refmnt' 2>/dev/null"

# The last restore event in the store's journal ("restore-started", "restore-done" or none).
# The store is mounted as the image mounts it: with its ext4 journal replayed.
journal_state() {
  mount "$LB_P2" "$smnt" || { echo unmountable; return 0; }
  local ev
  ev=$(grep -a -o '"event":"restore-[a-z]*"' "$smnt/journal" 2>/dev/null | tail -n1 | cut -d'"' -f4)
  umount "$smnt"
  echo "${ev:-none}"
}

# Whether the store's journal holds a restore plan with no restore-done after it (the next boot
# must resume it): "yes" or "no".
plan_pending() {
  mount "$LB_P2" "$smnt" || { echo no; return 0; }
  awk '/"event":"plan-recorded"/ { p = NR } /"event":"restore-done"/ { d = NR }
       END { print (p > d ? "yes" : "no") }' "$smnt/journal" 2>/dev/null || echo no
  umount "$smnt"
}

# Whether the root partition holds the complete backup (read-only, its journal not replayed).
root_is_complete() {
  mount -o ro,noload "$LB_P1" "$fsmnt" 2>/dev/null || return 1
  mount -o ro,loop "$LB_WORK/ref.img" "$refmnt"
  local rc=0
  lb_compare "$refmnt" "$fsmnt" >/dev/null 2>&1 || rc=1
  umount "$refmnt" "$fsmnt"
  return $rc
}

# Checks the disk after a cut; prints the journal state.
check_after_cut() {
  local n=$1 ev label uuid
  lb_attach "$LB_DISK"
  ev=$(journal_state)
  [ "$ev" != unmountable ] || fail "cut $n: the store partition does not mount"
  plan_pending > "$LB_WORK/plan-pending"
  label=$(blkid -p -s LABEL -o value "$LB_P1" 2>/dev/null || true)
  uuid=$(blkid -p -s UUID -o value "$LB_P1" 2>/dev/null || true)
  lb_log "cut $n: journal says ${ev}; root label '${label}', UUID '${uuid}'"
  if [ "$ev" = none ] && [ "$(md5sum < "$LB_P1")" != "$ROOT_DIGEST_DAMAGED" ]; then
    fail "cut $n: no restore started, yet the root partition was written to"
  fi
  if [ "$ev" = restore-started ] && { [ "$label" = root-test ] || [ "$uuid" = "$ROOT_UUID" ]; }; then
    if [ "$(md5sum < "$LB_P1")" = "$ROOT_DIGEST_DAMAGED" ]; then
      lb_log "cut $n: the root is still the untouched old one"
    elif root_is_complete; then
      lb_log "cut $n: the root holds the complete backup (an earlier restore not yet formatted again, or a cut between tune2fs and the journal)"
    else
      fail "cut $n: the restore is not done but the half-restored root carries the final label or UUID ($label, $uuid)"
    fi
  fi
  lb_detach
  echo "$ev" > "$LB_WORK/last-event"
}

# After a cut that left a recorded plan unfinished, the boot resumes it at a step the journal
# does not record as done; after any other cut it starts from the first step.
console() { tr -d '\r' < "$1"; }
expect_resume() { # LOG WHAT
  local steps
  # Steps run (made again or not): the boot got past the point where it decides to resume.
  steps=$(console "$1" | grep -a -c -E '^Step [0-9]+/[0-9]+' || true)
  if [ "$pending" = yes ] && [ "$steps" -gt 0 ]; then
    console "$1" | grep -a -E '^Resuming at step [0-9]+/' >/dev/null || { tail -n 30 "$1"; fail "$2: the journal held an unfinished plan, but the boot did not resume it"; }
    lb_log "$2: $(console "$1" | grep -a -m1 -o -E '^Resuming at step [0-9]+/[0-9]+ \([^)]*\)')"
    RESUMED=$((RESUMED + 1))
  elif [ "$pending" = no ] && [ "$steps" -gt 0 ]; then
    console "$1" | grep -a '^Resuming at step ' >/dev/null && fail "$2: no unfinished plan in the journal, yet the boot resumed one"
    console "$1" | grep -a -E '^Step 1/' >/dev/null || fail "$2: no unfinished plan in the journal, yet the plan did not start at step 1"
  fi
  return 0
}
RESUMED=0

cut=0
landed=0
LANDED=()
for m in "${MOMENTS[@]}"; do
  [ "$landed" -lt "$CUTS" ] || break
  cut=$((cut + 1))
  phase=${m%%:*}; delay=${m#*:}
  marker=${PHASES[$phase]}
  log=$LB_WORK/boot-$cut.log
  before=$(cat "$LB_WORK/last-event" 2>/dev/null || echo none)
  pending=$(cat "$LB_WORK/plan-pending" 2>/dev/null || echo no)
  lb_log "boot $cut: power cut ${delay} ms after \"$marker\""
  lb_image_opts "$APPEND"
  lb_qemu "${LB_IMAGE_OPTS[@]}" --log "$log" --background
  qpid=$LB_QEMU_PID
  deadline=$((SECONDS + LB_QEMU_TIMEOUT_S))
  while ! grep -a -q -F -- "$marker" "$log"; do
    kill -0 "$qpid" 2>/dev/null || break
    [ "$SECONDS" -lt "$deadline" ] || { kill -9 "$qpid"; wait "$qpid" || true; tail -n 30 "$log"; fail "boot $cut: the console never showed \"$marker\""; }
    sleep 0.01
  done
  if kill -0 "$qpid" 2>/dev/null; then
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  fi
  if kill -9 "$qpid" 2>/dev/null; then
    wait "$qpid" 2>/dev/null || true
    landed=$((landed + 1))
    LANDED+=("${marker}+${delay}ms")
    lb_log "boot $cut: power cut $landed"
  else
    wait "$qpid" || true
    lb_log "boot $cut: the restore finished before the cut"
  fi
  lb_keep_log "$log"
  # A resumed plan skips the phases of the steps done: their marker is not shown.
  grep -a -q -F -- "$marker" "$log" || console "$log" | grep -a '^Resuming at step ' >/dev/null ||
    { tail -n 30 "$log"; fail "boot $cut: the console never showed \"$marker\""; }
  if [ "$before" = restore-started ]; then
    lb_expect_log "$log" "ATTENTION: a restore from the store on /dev/vda2 started and did not finish"
  fi
  expect_resume "$log" "boot $cut"
  check_after_cut "$cut"
done

# The last boot, uncut: it offers to finish what the cuts left and finishes.
before=$(cat "$LB_WORK/last-event")
pending=$(cat "$LB_WORK/plan-pending")
lb_boot "$LB_WORK/final.log" "$APPEND"
expect_resume "$LB_WORK/final.log" "the last boot"
if [ "$before" = restore-started ]; then
  lb_expect_log "$LB_WORK/final.log" "ATTENTION: a restore from the store on /dev/vda2 started and did not finish"
fi
lb_expect_log "$LB_WORK/final.log" "RESTORE COMPLETE"
lb_check_restored
[ "$landed" -ge "$CUTS" ] || fail "only $landed of $CUTS power cuts landed in $cut boots"
echo "power cuts: $landed in $cut boots, seed $SEED:"
printf '  %s\n' "${LANDED[@]}"
echo "boots that resumed a recorded plan: $RESUMED"
[ "$RESUMED" -ge 1 ] || fail "no boot resumed a recorded plan: the cuts never left one unfinished"
echo "total time: $(( $(date +%s) - T0 )) s for boot 0, $cut cut boots and the final one"
echo "PASS: power cuts at $CUTS random moments of a restore"
