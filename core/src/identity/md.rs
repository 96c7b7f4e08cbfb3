//! md RAID member superblocks, read directly: metadata 1.x (1.1 at the start, 1.2 at 4 KiB,
//! 1.0 near the end) and 0.90 (the last 64 KiB-aligned 64 KiB). The filesystem inside is
//! found at the member's data offset.

use super::table::{le_u32, le_u64, ReadAt};
use crate::archive::disk_layout::MdMember;

const MAGIC: u32 = 0xa92b_4efc;

/// A window of a device starting at `offset` (an md member's data area).
pub struct Window<'a, D: ReadAt + ?Sized> {
    pub inner: &'a D,
    pub offset: u64,
    pub len: u64,
}

impl<D: ReadAt + ?Sized> ReadAt for Window<'_, D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if offset.saturating_add(buf.len() as u64) > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read beyond the end of the md member's data area",
            ));
        }
        self.inner.read_at(self.offset + offset, buf)
    }
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len)
    }
}

fn level_name(level: i32) -> String {
    match level {
        -4 => "multipath".to_string(),
        -1 => "linear".to_string(),
        n if n >= 0 => format!("raid{n}"),
        n => format!("level{n}"),
    }
}

/// A 1.x array UUID as mdadm prints it: the 16 bytes in order, a colon every four.
fn format_array_uuid(u: &[u8]) -> String {
    u.chunks(4).map(hex::encode).collect::<Vec<_>>().join(":")
}

/// Reads an md member's superblock; `Ok(None)` when the device holds none. `filesystem` is
/// filled when the data area holds an ext or vfat filesystem.
pub fn probe<D: ReadAt + ?Sized>(dev: &D) -> std::io::Result<Option<MdMember>> {
    let len = dev.size()?;
    let sectors = len / 512;
    // 1.1, 1.2, 1.0 (end: 8 KiB before the end, rounded down to 4 KiB).
    let mut v1 = vec![(0u64, "1.1"), (4096, "1.2")];
    if sectors >= 16 {
        v1.push((((sectors - 16) & !7) * 512, "1.0"));
    }
    for (off, metadata) in v1 {
        if off + 1024 > len {
            continue;
        }
        let mut sb = vec![0u8; 1024];
        dev.read_at(off, &mut sb)?;
        if le_u32(&sb, 0) != MAGIC || le_u32(&sb, 4) != 1 {
            continue;
        }
        // The superblock says where it is: a 1.2 found at 4 KiB of a partition that starts
        // with a 1.0 of another device stays honest.
        if le_u64(&sb, 144) * 512 != off {
            continue;
        }
        let data_offset = le_u64(&sb, 128) * 512;
        let data_size = le_u64(&sb, 136) * 512;
        let dev_number = le_u32(&sb, 160) as usize;
        let max_dev = le_u32(&sb, 220) as usize;
        let role = if dev_number < max_dev {
            let at = 256 + 2 * dev_number;
            sb.get(at..at + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .filter(|&r| r < 0xfffe)
                .map(u32::from)
        } else {
            None
        };
        let name = super::extfs::c_string(&sb[32..64]);
        let mut m = MdMember {
            array_uuid: format_array_uuid(&sb[16..32]),
            name,
            level: level_name(le_u32(&sb, 72) as i32),
            metadata: metadata.to_string(),
            raid_disks: le_u32(&sb, 92),
            role,
            filesystem: None,
        };
        let data_len = if data_size > 0 {
            data_size
        } else {
            len.saturating_sub(data_offset)
        };
        m.filesystem =
            inner_filesystem(dev, data_offset, data_len.min(len - data_offset.min(len)))?;
        return Ok(Some(m));
    }
    // 0.90: 64 KiB at the last 64 KiB boundary minus 64 KiB, words in host (little) order.
    if len >= 128 * 1024 {
        let off = (len & !0xffff) - 0x10000;
        let mut sb = vec![0u8; 4096];
        dev.read_at(off, &mut sb)?;
        if le_u32(&sb, 0) == MAGIC && le_u32(&sb, 4) == 0 {
            let w = |i: usize| le_u32(&sb, i * 4);
            // mdadm prints 0.90 UUIDs as four host-order words (`%08x`), unlike 1.x's bytes.
            let uuid = [5usize, 13, 14, 15]
                .iter()
                .map(|&i| format!("{:08x}", w(i)))
                .collect::<Vec<_>>()
                .join(":");
            let this_raid_disk = w(992 + 3);
            let m = MdMember {
                array_uuid: uuid,
                name: None,
                level: level_name(w(7) as i32),
                metadata: "0.90".to_string(),
                raid_disks: w(10),
                role: Some(this_raid_disk),
                filesystem: inner_filesystem(dev, 0, off)?,
            };
            return Ok(Some(m));
        }
    }
    Ok(None)
}

fn inner_filesystem<D: ReadAt + ?Sized>(
    dev: &D,
    offset: u64,
    len: u64,
) -> std::io::Result<Option<crate::archive::manifest::FilesystemIdentity>> {
    let w = Window {
        inner: dev,
        offset,
        len,
    };
    if let Some(fs) = super::extfs::probe(&w)? {
        return Ok(Some(fs));
    }
    super::vfat::probe(&w)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn hand_made_v1_2() {
        let mut b = vec![0u8; 1 << 20];
        let sb = &mut b[4096..5120];
        put32(sb, 0, MAGIC);
        put32(sb, 4, 1);
        sb[16..32].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        sb[32..38].copy_from_slice(b"host:0");
        put32(sb, 72, 1);
        put32(sb, 92, 2);
        put64(sb, 128, 2048);
        put64(sb, 144, 8);
        put32(sb, 160, 1);
        put32(sb, 220, 2);
        sb[258..260].copy_from_slice(&1u16.to_le_bytes());
        let m = probe(b.as_slice()).unwrap().unwrap();
        assert_eq!(m.array_uuid, "01020304:05060708:090a0b0c:0d0e0f10");
        assert_eq!(m.name.as_deref(), Some("host:0"));
        assert_eq!(m.level, "raid1");
        assert_eq!(m.metadata, "1.2");
        assert_eq!(m.raid_disks, 2);
        assert_eq!(m.role, Some(1));
        assert_eq!(m.filesystem, None);
        // A superblock that says it lives elsewhere is not this device's.
        put64(&mut b[4096..5120], 144, 0);
        assert!(probe(b.as_slice()).unwrap().is_none());
    }

    #[test]
    fn nothing_on_zeros() {
        assert!(probe(vec![0u8; 1 << 20].as_slice()).unwrap().is_none());
    }

    /// An ext4 made by mkfs.ext4 in the first 30 MiB of a 32 MiB member, with a 1.0
    /// superblock near the end (as mdadm places it) and then a 0.90 one: the filesystem is
    /// found through the data offset (0 for both), and the member is not taken for a plain
    /// ext4 by the caller that asks md first. (mdadm itself needs the md driver, which this
    /// machine's kernel lacks; its layout is what mdadm's super1.c and super0.c write.)
    #[test]
    fn end_superblocks_with_ext4_inside() {
        if !crate::testing::require_tool("mkfs.ext4") {
            return;
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(30 << 20).unwrap();
        let st = std::process::Command::new("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-L",
                "md-root",
                "-U",
                "0a0b0c0d-1111-2222-3333-444455556666",
            ])
            .arg(f.path())
            .status()
            .unwrap();
        assert!(st.success());
        let mut b = std::fs::read(f.path()).unwrap();
        b.resize(32 << 20, 0);
        let sectors = (b.len() / 512) as u64;
        let off = ((sectors - 16) & !7) * 512;
        {
            let sb = &mut b[off as usize..off as usize + 1024];
            put32(sb, 0, MAGIC);
            put32(sb, 4, 1);
            sb[16..32].copy_from_slice(&[0xab; 16]);
            put32(sb, 72, 1);
            put32(sb, 92, 2);
            put64(sb, 128, 0);
            put64(sb, 136, 30 << 11);
            put64(sb, 144, off / 512);
            put32(sb, 160, 0);
            put32(sb, 220, 2);
        }
        let m = probe(b.as_slice()).unwrap().unwrap();
        assert_eq!(m.metadata, "1.0");
        assert_eq!(m.array_uuid, "abababab:abababab:abababab:abababab");
        assert_eq!(m.role, Some(0));
        let fs = m.filesystem.unwrap();
        assert_eq!(fs.fstype, "ext4");
        assert_eq!(fs.label.as_deref(), Some("md-root"));

        b[off as usize..off as usize + 1024].fill(0);
        let off90 = ((b.len() as u64) & !0xffff) - 0x10000;
        {
            let sb = &mut b[off90 as usize..off90 as usize + 4096];
            put32(sb, 0, MAGIC);
            put32(sb, 4, 0);
            put32(sb, 5 * 4, 0x0403_0201);
            put32(sb, 7 * 4, 1);
            put32(sb, 10 * 4, 2);
            put32(sb, 13 * 4, 0x0807_0605);
            put32(sb, 14 * 4, 0x0c0b_0a09);
            put32(sb, 15 * 4, 0x100f_0e0d);
            put32(sb, (992 + 3) * 4, 1);
        }
        let m = probe(b.as_slice()).unwrap().unwrap();
        assert_eq!(m.metadata, "0.90");
        // As `mdadm --examine` prints a 0.90 UUID: four little-endian words in hex.
        assert_eq!(m.array_uuid, "04030201:08070605:0c0b0a09:100f0e0d");
        assert_eq!(
            (m.level.as_str(), m.raid_disks, m.role),
            ("raid1", 2, Some(1))
        );
        assert_eq!(
            m.filesystem.unwrap().uuid.as_deref(),
            Some("0a0b0c0d-1111-2222-3333-444455556666")
        );
    }
}
