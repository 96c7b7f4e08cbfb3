//! GUID Partition Table: header at LBA 1 (backup at the last LBA), entry array elsewhere.

use super::table::{crc32, le_u32, le_u64, PartitionTable, ReadAt, TableEntry, TableKind};

const SIGNATURE: &[u8; 8] = b"EFI PART";

/// Formats a GUID stored in GPT's mixed-endian layout as the usual lower-case text
/// (`c12a7328-f81f-11d2-ba4b-00a0c93ec93b` for the ESP type).
pub fn format_guid(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15]
    )
}

/// Well-known GPT partition type GUIDs.
pub mod types {
    pub const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
    pub const BIOS_BOOT: &str = "21686148-6449-6e6f-744e-656564454649";
    pub const LINUX_FS: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
    pub const LINUX_SWAP: &str = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";
    pub const LINUX_LVM: &str = "e6d6d379-f507-44c2-a23c-238f2a3df928";
    pub const LINUX_RAID: &str = "a19d880f-05fc-4d3b-a006-743f0f84911e";
    pub const MS_BASIC_DATA: &str = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";
}

fn guid_at(b: &[u8], off: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    if let Some(s) = b.get(off..off + 16) {
        g.copy_from_slice(s);
    }
    g
}

/// The attribute bits of every used entry of a GPT (partition number -> attributes), read
/// with the given sector size; empty when there is no valid GPT.
pub fn read_attributes<D: ReadAt + ?Sized>(
    disk: &D,
    sector: u32,
) -> std::io::Result<std::collections::BTreeMap<u32, u64>> {
    let mut out = std::collections::BTreeMap::new();
    if let Some((h, array)) = read_array(disk, sector)? {
        for (i, e) in array.chunks(h.entry_size as usize).enumerate() {
            if guid_at(e, 0) != [0u8; 16] {
                out.insert(i as u32 + 1, le_u64(e, 48));
            }
        }
    }
    Ok(out)
}

fn read_array<D: ReadAt + ?Sized>(
    disk: &D,
    sector: u32,
) -> std::io::Result<Option<(Header, Vec<u8>)>> {
    let len = disk.size()?;
    let sector64 = u64::from(sector);
    if len < sector64 * 3 {
        return Ok(None);
    }
    let primary = read_header(disk, sector64, sector)?;
    let header = match primary {
        Some(h) => Some(h),
        None => read_header(disk, (len / sector64 - 1) * sector64, sector)?,
    };
    let Some(h) = header else {
        return Ok(None);
    };
    let array_bytes = u64::from(h.entry_count) * u64::from(h.entry_size);
    if h.entry_size < 128 || array_bytes > 4 * 1024 * 1024 {
        return Ok(None);
    }
    let mut array = vec![0u8; array_bytes as usize];
    disk.read_at(h.entries_lba * sector64, &mut array)?;
    if crc32(&array) != h.entries_crc {
        return Ok(None);
    }
    Ok(Some((h, array)))
}

/// Reads a GPT with the given logical sector size; `Ok(None)` when there is no valid one.
pub fn parse<D: ReadAt + ?Sized>(disk: &D, sector: u32) -> std::io::Result<Option<PartitionTable>> {
    let sector64 = u64::from(sector);
    let Some((h, array)) = read_array(disk, sector)? else {
        return Ok(None);
    };
    let mut partitions = Vec::new();
    for (i, e) in array.chunks(h.entry_size as usize).enumerate() {
        let type_guid = guid_at(e, 0);
        if type_guid == [0u8; 16] {
            continue;
        }
        let first = le_u64(e, 32);
        let last = le_u64(e, 40);
        let name_units: Vec<u16> = e
            .get(56..128)
            .unwrap_or(&[])
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&name_units);
        partitions.push(TableEntry {
            number: i as u32 + 1,
            start_bytes: first * sector64,
            size_bytes: last.saturating_sub(first).saturating_add(1) * sector64,
            partuuid: format_guid(&guid_at(e, 16)),
            type_id: format_guid(&type_guid),
            name: (!name.is_empty()).then_some(name),
        });
    }
    Ok(Some(PartitionTable {
        kind: TableKind::Gpt,
        id: format_guid(&h.disk_guid),
        sector_size: sector,
        partitions,
    }))
}

struct Header {
    disk_guid: [u8; 16],
    entries_lba: u64,
    entry_count: u32,
    entry_size: u32,
    entries_crc: u32,
}

fn read_header<D: ReadAt + ?Sized>(
    disk: &D,
    offset: u64,
    sector: u32,
) -> std::io::Result<Option<Header>> {
    let mut buf = vec![0u8; sector as usize];
    disk.read_at(offset, &mut buf)?;
    if &buf[0..8] != SIGNATURE {
        return Ok(None);
    }
    let size = le_u32(&buf, 12) as usize;
    if !(92..=buf.len()).contains(&size) {
        return Ok(None);
    }
    let stored_crc = le_u32(&buf, 16);
    let mut hdr = buf[..size].to_vec();
    hdr[16..20].fill(0);
    if crc32(&hdr) != stored_crc {
        return Ok(None);
    }
    Ok(Some(Header {
        disk_guid: guid_at(&buf, 56),
        entries_lba: le_u64(&buf, 72),
        entry_count: le_u32(&buf, 80),
        entry_size: le_u32(&buf, 84),
        entries_crc: le_u32(&buf, 88),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_is_mixed_endian() {
        // The ESP type GUID as it is stored on disk.
        let raw = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        assert_eq!(format_guid(&raw), types::ESP);
    }
}
