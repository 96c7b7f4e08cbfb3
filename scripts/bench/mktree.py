#!/usr/bin/env python3
"""Fills DIR with a benchmark tree: `mktree.py DIR files N` makes N small files (0.5-8 KiB,
half text, half random bytes) in directories of 1,000; `mktree.py DIR bytes N` makes about N
bytes in 64 MiB files (each one a distinct mix of text and random blocks, so that it
compresses about as well as /usr does). Deterministic (seeded), so reruns make the same tree."""
import os
import random
import sys


_POOL = []


def text_block(rng, size):
    """`size` bytes of a word salad: a slice of a 4 MiB pool made once."""
    if not _POOL:
        _POOL.append(make_text(random.Random(7), 4 << 20))
    pool = _POOL[0]
    start = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
    return pool[start:start + size]


def make_text(rng, size):
    words = [b"lifeboat", b"xen", b"dom0", b"backup", b"restore", b"config", b"value",
             b"#include", b"return", b"0x7f", b"usr", b"lib", b"=", b"\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def small_files(root, n):
    rng = random.Random(13)
    for i in range(n):
        d = os.path.join(root, "d%04d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        size = rng.randint(512, 8192)
        half = size // 2
        with open(os.path.join(d, "f%06d" % i), "wb") as f:
            f.write(text_block(rng, half))
            f.write(rng.randbytes(size - half))


def big_files(root, total):
    rng = random.Random(13)
    chunk = 64 << 20
    block = 1 << 20
    os.makedirs(root, exist_ok=True)
    made = 0
    i = 0
    while made < total:
        with open(os.path.join(root, "big%05d" % i), "wb") as f:
            for _ in range(chunk // block):
                if rng.random() < 0.5:
                    f.write(rng.randbytes(block))
                else:
                    f.write(text_block(rng, block))
        made += chunk
        i += 1


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("files", "bytes"):
        sys.exit("usage: mktree.py DIR files|bytes N")
    root, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "files":
        small_files(root, n)
    else:
        big_files(root, n)


if __name__ == "__main__":
    main()
