#!/usr/bin/env python3
"""Drives a QEMU guest over its serial console (stdio pipes), expect-style.

serial_driver.py LOG TIMEOUT STEP... -- QEMU-COMMAND...
STEP is `expect:TEXT` (wait until TEXT appears after the previous match), `send:LINE`
(type LINE and Enter) or `choose:LABEL` (wait for a menu line "N) LABEL", then type N). After the steps the guest runs until it exits (or TIMEOUT seconds
in all), or, with QEMU_CUT_AT set (an extended regexp, as for qemu_run in host.bash), until
the console shows it after the last step: then QEMU is killed (SIGKILL, a power cut) and the
run counts as done. Prints the time from QEMU start to the first "Restore from backup" title.
Exit status 0 when every expect matched, 1 otherwise.
"""
import os
import re
import select
import subprocess
import sys
import time


def main():
    log_path, timeout = sys.argv[1], float(sys.argv[2])
    sep = sys.argv.index("--")
    steps, cmd = sys.argv[3:sep], sys.argv[sep + 1:]
    start = time.monotonic()
    deadline = start + timeout
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    buf = b""
    pos = 0
    menu_at = None
    ok = True
    with open(log_path, "wb") as log:
        def pump(wait):
            nonlocal buf, menu_at
            r, _, _ = select.select([proc.stdout], [], [], wait)
            if not r:
                return True
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                return False
            log.write(data)
            log.flush()
            buf += data
            if menu_at is None and b"Restore from backup" in buf:
                menu_at = time.monotonic() - start
            return True

        for step in steps:
            kind, _, text = step.partition(":")
            if kind == "send":
                time.sleep(0.3)
                proc.stdin.write(text.encode() + b"\r")
                proc.stdin.flush()
                continue
            want = text.encode()
            pattern = re.compile(rb" (\d+)\) " + re.escape(want)) if kind == "choose" else None
            while True:
                if pattern is not None:
                    m = pattern.search(buf, pos)
                    if m and b"Choice:" in buf[m.end():]:
                        pos = m.end()
                        time.sleep(0.3)
                        proc.stdin.write(m.group(1) + b"\r")
                        proc.stdin.flush()
                        break
                else:
                    i = buf.find(want, pos)
                    if i >= 0:
                        pos = i + len(want)
                        break
                if time.monotonic() > deadline or not pump(0.5):
                    print(f"serial_driver: never saw {text!r}", file=sys.stderr)
                    ok = False
                    break
            if not ok:
                break
        cut_at = os.environ.get("QEMU_CUT_AT")
        cut = re.compile(cut_at.encode(), re.M) if cut_at else None
        was_cut = False
        while ok and time.monotonic() < deadline and proc.poll() is None:
            if cut is not None and cut.search(buf[pos:].replace(b"\r", b"")):
                proc.kill()
                was_cut = True
                print(f"serial_driver: power cut after /{cut_at}/")
                break
            if not pump(0.5):
                break
        if ok and cut is not None and not was_cut:
            print(f"serial_driver: the console never showed /{cut_at}/", file=sys.stderr)
            ok = False
        try:
            proc.wait(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            proc.kill()
            if ok:
                print("serial_driver: the guest did not finish in time", file=sys.stderr)
                ok = False
        proc.wait()
    if menu_at is not None:
        print(f"time from QEMU start to the menu: {menu_at:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
