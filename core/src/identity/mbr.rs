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
