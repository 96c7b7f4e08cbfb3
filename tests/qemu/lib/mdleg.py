#!/usr/bin/env python3
"""Writes an md RAID1 member superblock, metadata 1.0, at the end of a leg image (where mdadm
puts it: 8 KiB before the end, rounded down to 4 KiB; data at offset 0), with its checksum:
  mdleg.py FILE ROLE RAID_DISKS ARRAY_UUID_HEX32 NAME
This machine's kernel has no md driver, so mdadm cannot create an array here; the tests check
the result with `mdadm --examine` here and let the recovery image's kernel assemble it.
Prints the array's size in bytes (the data area)."""
import struct
import sys
import uuid

path, role, raid_disks, array_uuid, name = sys.argv[1:6]
role, raid_disks = int(role), int(raid_disks)
with open(path, "r+b") as f:
    f.seek(0, 2)
    sectors = f.tell() // 512
    sb_off = (sectors - 16) & ~7
    sb = bytearray(256 + 2 * raid_disks)
    struct.pack_into("<III", sb, 0, 0xA92B4EFC, 1, 0)  # magic, major version, feature map
    sb[16:32] = bytes.fromhex(array_uuid)
    sb[32:32 + len(name)] = name.encode()
    # ctime, level, layout, size (sectors), chunk size, raid disks
    struct.pack_into("<QIIQII", sb, 64, 1700000000, 1, 0, sb_off, 0, raid_disks)
    # data offset, data size, super offset, recovery offset
    struct.pack_into("<QQQQ", sb, 128, 0, sb_off, sb_off, 0)
    struct.pack_into("<I", sb, 160, role)  # dev_number
    sb[168:184] = uuid.uuid4().bytes  # device uuid
    struct.pack_into("<QQQ", sb, 192, 1700000000, 1, 0xFFFFFFFFFFFFFFFF)  # utime, events, clean
    struct.pack_into("<I", sb, 220, raid_disks)  # max_dev
    for i in range(raid_disks):
        struct.pack_into("<H", sb, 256 + 2 * i, i)  # dev_roles: device i has role i
    s = sum(struct.unpack_from("<I", sb, i)[0] for i in range(0, len(sb), 4))
    struct.pack_into("<I", sb, 216, ((s & 0xFFFFFFFF) + (s >> 32)) & 0xFFFFFFFF)
    f.seek(sb_off * 512)
    f.write(sb)
print(sb_off * 512)
