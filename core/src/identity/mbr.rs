//! MBR (DOS) partition tables: four primary entries, logical partitions in a chain of
//! extended boot records.

use super::table::{le_u16, le_u32, PartitionTable, ReadAt, TableEntry, TableKind};

const SECTOR: u64 = 512;

fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0f | 0x85)
}

/// Reads an MBR; `Ok(None)` when there is no boot signature, or it is a GPT protective MBR
/// whose GPT could not be read.
pub fn parse<D: ReadAt + ?Sized>(disk: &D) -> std::io::Result<Option<PartitionTable>> {
    if disk.size()? < SECTOR {
        return Ok(None);
    }
    let mut mbr = [0u8; 512];
    disk.read_at(0, &mut mbr)?;
    if le_u16(&mbr, 510) != 0xAA55 {
        return Ok(None);
    }
    let entries: Vec<(u8, u8, u64, u64)> = (0..4)
        .map(|i| {
            let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
            (
                e[0],
                e[4],
                u64::from(le_u32(e, 8)),
                u64::from(le_u32(e, 12)),
            )
        })
        .collect();
    // A boot sector of a filesystem (FAT, NTFS) also ends in 55AA: require sane entries.
    if entries
        .iter()
        .any(|&(status, ..)| status != 0 && status != 0x80)
        || entries.iter().any(|&(_, t, ..)| t == 0xEE)
        || entries.iter().all(|&(_, t, ..)| t == 0)
    {
        return Ok(None);
    }
    let sig = format!("{:08x}", le_u32(&mbr, 440));
    let mut partitions = Vec::new();
    let mut extended = None;
    for (i, &(_, t, start, size)) in entries.iter().enumerate() {
        if t == 0 || size == 0 {
            continue;
        }
        let number = i as u32 + 1;
        if is_extended(t) && extended.is_none() {
            extended = Some(start);
        }
        partitions.push(entry(&sig, number, t, start, size));
    }
    if let Some(ext_start) = extended {
        let mut ebr_lba = ext_start;
        let mut number = 5;
        // Bounded walk: a loop in the chain must not hang the recovery image.
        for _ in 0..128 {
            let mut ebr = [0u8; 512];
            if disk.read_at(ebr_lba * SECTOR, &mut ebr).is_err() || le_u16(&ebr, 510) != 0xAA55 {
                break;
            }
            let e1 = &ebr[446..462];
            let e2 = &ebr[462..478];
            if e1[4] != 0 && le_u32(e1, 12) != 0 {
                let start = ebr_lba + u64::from(le_u32(e1, 8));
                partitions.push(entry(&sig, number, e1[4], start, u64::from(le_u32(e1, 12))));
                number += 1;
            }
            if e2[4] == 0 || le_u32(e2, 8) == 0 {
                break;
            }
            ebr_lba = ext_start + u64::from(le_u32(e2, 8));
        }
    }
    Ok(Some(PartitionTable {
        kind: TableKind::Dos,
        id: sig,
        sector_size: SECTOR as u32,
        partitions,
    }))
}

/// The boot indicator byte (0x80 = active) of each primary partition of an MBR, by number.
pub fn boot_flags<D: ReadAt + ?Sized>(
    disk: &D,
) -> std::io::Result<std::collections::BTreeMap<u32, u8>> {
    let mut out = std::collections::BTreeMap::new();
    if disk.size()? < SECTOR {
        return Ok(out);
    }
    let mut mbr = [0u8; 512];
    disk.read_at(0, &mut mbr)?;
    for i in 0..4usize {
        let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
        if e[4] != 0 {
            out.insert(i as u32 + 1, e[0]);
        }
    }
    Ok(out)
}

fn entry(sig: &str, number: u32, t: u8, start: u64, size: u64) -> TableEntry {
    TableEntry {
        number,
        start_bytes: start * SECTOR,
        size_bytes: size * SECTOR,
        partuuid: format!("{sig}-{number:02x}"),
        type_id: format!("0x{t:x}"),
        name: None,
    }
}

/// CHS address of an LBA as fdisk writes it (255 heads, 63 sectors; beyond 1023 cylinders
/// the maximum, which every modern reader ignores in favour of the LBA fields).
fn chs(lba: u64) -> [u8; 3] {
    let cyl = lba / (255 * 63);
    if cyl > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / 63) % 255;
    let sector = lba % 63 + 1;
    [
        head as u8,
        (sector as u8) | (((cyl >> 8) as u8) << 6),
        cyl as u8,
    ]
}

fn put_entry(e: &mut [u8], flags: u8, t: u8, start: u64, size: u64) {
    e[0] = flags;
    e[1..4].copy_from_slice(&chs(start));
    e[4] = t;
    e[5..8].copy_from_slice(&chs(start + size - 1));
    e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(size as u32).to_le_bytes());
}

/// The sectors of an MBR (DOS) table for `layout` on a disk of `disk_bytes`: the MBR with
/// the recorded boot code, disk signature, primary entries and boot flags, and one extended
/// boot record per logical partition (5 and up), each in the free sector before it (the first
/// at the start of the extended partition, as fdisk and sfdisk place them).
pub fn mbr_sectors(
    layout: &crate::archive::disk_layout::DiskLayout,
    disk_bytes: u64,
    dev: &std::path::Path,
) -> Result<Vec<super::gpt_write::Write>, super::IdentityError> {
    let bad = |msg: String| super::IdentityError::Layout {
        path: dev.to_path_buf(),
        msg,
    };
    let sig = u32::from_str_radix(&layout.table_id, 16).map_err(|_| {
        bad(format!(
            "the recorded disk signature '{}' is not 8 hex digits",
            layout.table_id
        ))
    })?;
    let mut parts = Vec::new();
    for p in &layout.partitions {
        let t = p
            .type_id
            .strip_prefix("0x")
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                bad(format!(
                    "partition {}: type '{}' is not an MBR type byte",
                    p.number, p.type_id
                ))
            })?;
        if p.start_bytes % SECTOR != 0 || p.size_bytes % SECTOR != 0 || p.size_bytes == 0 {
            return Err(bad(format!(
                "partition {} is not whole 512-byte sectors",
                p.number
            )));
        }
        let (start, size) = (p.start_bytes / SECTOR, p.size_bytes / SECTOR);
        if start + size > u64::from(u32::MAX) {
            return Err(bad(format!(
                "partition {} lies beyond 2 TiB, out of an MBR's reach",
                p.number
            )));
        }
        if !is_extended(t) && (start + size) * SECTOR > disk_bytes {
            return Err(bad(format!(
                "partition {} ends at byte {}, beyond the end of the disk ({disk_bytes} bytes; the \
                 recorded disk was {} bytes): use a disk at least as large as the recorded one",
                p.number,
                (start + size) * SECTOR,
                layout.size_bytes
            )));
        }
        parts.push((p.number, p.mbr_flags, t, start, size));
    }
    let mut mbr = vec![0u8; SECTOR as usize];
    if let Some(code) = &layout.boot.mbr_boot_code {
        let code = hex::decode(code)
            .ok()
            .filter(|c| c.len() <= 440)
            .ok_or_else(|| bad("the recorded MBR boot code is not 440 bytes of hex".into()))?;
        mbr[..code.len()].copy_from_slice(&code);
    }
    mbr[440..444].copy_from_slice(&sig.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let mut out = Vec::new();
    let mut extended = None;
    for &(n, flags, t, start, size) in parts.iter().filter(|p| p.0 <= 4) {
        let off = 446 + (n as usize - 1) * 16;
        put_entry(&mut mbr[off..off + 16], flags, t, start, size);
        if is_extended(t) {
            extended = Some((start, size));
        }
    }
    out.push((0, mbr));
    let mut logical: Vec<_> = parts.iter().filter(|p| p.0 >= 5).collect();
    logical.sort_by_key(|p| p.0);
    if !logical.is_empty() {
        let (ext_start, ext_size) = extended
            .ok_or_else(|| bad("logical partitions are recorded without an extended one".into()))?;
        let mut ebrs: Vec<u64> = Vec::new();
        let mut prev_end = ext_start;
        for (i, p) in logical.iter().enumerate() {
            let ebr = if i == 0 { ext_start } else { prev_end };
            if ebr >= p.3 || p.3 + p.4 > ext_start + ext_size {
                return Err(bad(format!(
                    "logical partition {} does not leave room for its extended boot record",
                    p.0
                )));
            }
            ebrs.push(ebr);
            prev_end = p.3 + p.4;
        }
        for (i, p) in logical.iter().enumerate() {
            let mut s = vec![0u8; SECTOR as usize];
            put_entry(&mut s[446..462], p.1, p.2, p.3 - ebrs[i], p.4);
            if let (Some(next), Some(np)) = (ebrs.get(i + 1), logical.get(i + 1)) {
                put_entry(
                    &mut s[462..478],
                    0,
                    0x05,
                    next - ext_start,
                    np.3 + np.4 - next,
                );
            }
            s[510] = 0x55;
            s[511] = 0xAA;
            out.push((ebrs[i] * SECTOR, s));
        }
    }
    Ok(out)
}
