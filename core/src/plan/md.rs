//! md RAID membership read from the member's own superblock (metadata 0.90, 1.0, 1.1, 1.2), so
//! that a leg is recognised whether or not its array is assembled. (Written here rather than in
//! `identity::fs`, whose signature list only sees the 1.2 superblock.)

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MD_MAGIC: u32 = 0xa92b_4efc;

/// An md superblock found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdSuperblock {
    /// "0.90", "1.0", "1.1" or "1.2".
    pub metadata: String,
    /// The array UUID as mdadm prints it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`).
    pub array_uuid: String,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn hex_groups(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads the superblock of a member of `size` bytes through `read_at`; None when it has none.
pub fn read_superblock(
    size: u64,
    read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> Option<MdSuperblock> {
    let mut buf = vec![0u8; 256];
    // Version 1: 1.1 at the start, 1.2 4 KiB in, 1.0 8 KiB from the end (4 KiB aligned).
    let end_1_0 = (size / 512).checked_sub(16).map(|s| (s & !7) * 512);
    let places = [(Some(0u64), "1.1"), (Some(4096), "1.2"), (end_1_0, "1.0")];
    for (off, name) in places {
        let Some(off) = off.filter(|o| o + 256 <= size) else {
            continue;
        };
        if read_at(off, &mut buf).is_err() {
            continue;
        }
        if u32_at(&buf, 0) == Some(MD_MAGIC) && u32_at(&buf, 4) == Some(1) {
            return Some(MdSuperblock {
                metadata: name.into(),
                array_uuid: hex_groups(&buf[16..32]),
            });
        }
    }
    // Version 0.90: 64 KiB from the end, 64 KiB aligned.
    let off = (size & !0xffff).checked_sub(0x10000)?;
    read_at(off, &mut buf).ok()?;
    if u32_at(&buf, 0) == Some(MD_MAGIC) && u32_at(&buf, 4) == Some(0) {
        let words = [20, 52, 56, 60]
            .iter()
            .map(|&o| u32_at(&buf, o).map(|w| format!("{w:08x}")))
            .collect::<Option<Vec<_>>>()?;
        return Some(MdSuperblock {
            metadata: "0.90".into(),
            array_uuid: words.join(":"),
        });
    }
    None
}

/// The md superblock on a block device (or image file) of `size` bytes.
pub fn probe_md(path: &Path, size: u64) -> Option<MdSuperblock> {
    let f = File::open(path).ok()?;
    read_superblock(size, &|off, buf| f.read_exact_at(buf, off))
}
