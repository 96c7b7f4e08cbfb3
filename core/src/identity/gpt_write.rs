//! Writing a recorded GPT ([`DiskLayout`]) onto a blank disk (or image) of at least the
//! recorded size: protective MBR with the recorded boot code, primary header and entry
//! array, backup array and header at the end of the (possibly larger) disk, with the
//! recorded disk GUID, partition numbers, offsets, types, GUIDs, names and attributes.

use super::table::{crc32, ReadAt};
use super::IdentityError;
use crate::archive::disk_layout::DiskLayout;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Entries in the array written (as sgdisk and the UEFI spec's minimum: 16 KiB).
const MIN_ENTRIES: u32 = 128;
const ENTRY_SIZE: u32 = 128;

/// GPT's mixed-endian bytes of a GUID written as text; None when it is not a GUID.
pub fn parse_guid(text: &str) -> Option<[u8; 16]> {
    let hex_digits: String = text.chars().filter(|c| *c != '-').collect();
    if hex_digits.len() != 32 || text.len() != 36 {
        return None;
    }
    let raw = hex::decode(&hex_digits).ok()?;
    let mut g = [0u8; 16];
    // First three fields little-endian, the rest as written.
    for (dst, src) in [
        (0, 3),
        (1, 2),
        (2, 1),
        (3, 0),
        (4, 5),
        (5, 4),
        (6, 7),
        (7, 6),
    ] {
        g[dst] = raw[src];
    }
    g[8..16].copy_from_slice(&raw[8..16]);
    Some(g)
}

/// A byte range to write at an offset.
pub type Write = (u64, Vec<u8>);

fn bad(dev: &Path, msg: String) -> IdentityError {
    IdentityError::Layout {
        path: dev.to_path_buf(),
        msg,
    }
}

/// The sectors a GPT for `layout` on a disk of `disk_bytes` consists of (protective MBR,
/// primary header and array, backup array and header), or why it cannot be written. `dev`
/// names the disk in messages.
pub fn gpt_sectors(
    layout: &DiskLayout,
    disk_bytes: u64,
    dev: &Path,
) -> Result<Vec<Write>, IdentityError> {
    let ss = u64::from(layout.sector_size);
    if !matches!(ss, 512 | 4096) {
        return Err(bad(
            dev,
            format!("the recorded sector size {ss} is neither 512 nor 4096"),
        ));
    }
    let disk_guid = parse_guid(&layout.table_id).ok_or_else(|| {
        bad(
            dev,
            format!("the recorded disk GUID '{}' is not a GUID", layout.table_id),
        )
    })?;
    let max_number = layout
        .partitions
        .iter()
        .map(|p| p.number)
        .max()
        .unwrap_or(0);
    let entries = MIN_ENTRIES.max(max_number);
    let array_bytes = u64::from(entries) * u64::from(ENTRY_SIZE);
    let array_sectors = array_bytes.div_ceil(ss);
    let total = disk_bytes / ss;
    if total < 2 * array_sectors + 4 {
        return Err(bad(
            dev,
            format!("the disk is too small for a GPT ({disk_bytes} bytes)"),
        ));
    }
    let last_lba = total - 1;
    let first_usable = 2 + array_sectors;
    let backup_array_lba = last_lba - array_sectors;
    let last_usable = backup_array_lba - 1;

    let mut array = vec![0u8; array_bytes as usize];
    for p in &layout.partitions {
        let n = p.number;
        if n == 0 {
            return Err(bad(dev, "a recorded partition has number 0".to_string()));
        }
        if p.start_bytes % ss != 0 || p.size_bytes % ss != 0 || p.size_bytes == 0 {
            return Err(bad(
                dev,
                format!(
                    "partition {n} (start {}, size {}) is not whole {ss}-byte sectors",
                    p.start_bytes, p.size_bytes
                ),
            ));
        }
        let first = p.start_bytes / ss;
        let last = first + p.size_bytes / ss - 1;
        let needed = (last + 1 + array_sectors + 1) * ss;
        if first < first_usable || last > last_usable {
            return Err(bad(
                dev,
                format!(
                    "partition {n} ends at byte {}, beyond what a disk of {disk_bytes} bytes \
                     can hold (the recorded layout needs at least {} bytes; the recorded disk \
                     was {} bytes): use a disk at least as large as the recorded one",
                    (last + 1) * ss,
                    needed,
                    layout.size_bytes
                ),
            ));
        }
        let type_guid = parse_guid(&p.type_id).ok_or_else(|| {
            bad(
                dev,
                format!("partition {n}: type '{}' is not a GUID", p.type_id),
            )
        })?;
        let part_guid = parse_guid(&p.partuuid).ok_or_else(|| {
            bad(
                dev,
                format!("partition {n}: PARTUUID '{}' is not a GUID", p.partuuid),
            )
        })?;
        let e = &mut array[(n as usize - 1) * ENTRY_SIZE as usize..][..ENTRY_SIZE as usize];
        if e[0..16] != [0u8; 16] {
            return Err(bad(dev, format!("partition number {n} is recorded twice")));
        }
        e[0..16].copy_from_slice(&type_guid);
        e[16..32].copy_from_slice(&part_guid);
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
        let units: Vec<u16> = p.name.as_deref().unwrap_or("").encode_utf16().collect();
        if units.len() > 36 {
            return Err(bad(
                dev,
                format!("partition {n}: name longer than 36 UTF-16 units"),
            ));
        }
        for (i, u) in units.iter().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
    }
    let mut sorted: Vec<(u64, u64, u32)> = layout
        .partitions
        .iter()
        .map(|p| (p.start_bytes, p.start_bytes + p.size_bytes, p.number))
        .collect();
    sorted.sort();
    for w in sorted.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad(
                dev,
                format!("recorded partitions {} and {} overlap", w[0].2, w[1].2),
            ));
        }
    }
    let array_crc = crc32(&array);
    let header = |my_lba: u64, alt_lba: u64, entries_lba: u64| -> Vec<u8> {
        let mut h = vec![0u8; ss as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alt_lba.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&entries.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        h[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32(&h[0..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    let mut mbr = vec![0u8; ss as usize];
    if let Some(code) = &layout.boot.mbr_boot_code {
        let code = hex::decode(code)
            .ok()
            .filter(|c| c.len() <= 440)
            .ok_or_else(|| {
                bad(
                    dev,
                    "the recorded MBR boot code is not 440 bytes of hex".into(),
                )
            })?;
        mbr[..code.len()].copy_from_slice(&code);
    }
    // One protective entry covering the disk (up to 2 TiB of 512-byte sectors).
    let pe = &mut mbr[446..462];
    pe[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    pe[4] = 0xEE;
    pe[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    pe[8..12].copy_from_slice(&1u32.to_le_bytes());
    pe[12..16].copy_from_slice(&(last_lba.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    Ok(vec![
        (0, mbr),
        (ss, header(1, last_lba, 2)),
        (2 * ss, array.clone()),
        (backup_array_lba * ss, array),
        (last_lba * ss, header(last_lba, 1, backup_array_lba)),
    ])
}

/// Writes the recorded GPT of `layout` onto `dev` (a blank disk or image at least as large
/// as the last partition's end plus the backup table), then syncs it. The caller re-reads
/// the partitions (BLKRRPART) afterwards.
pub fn write_table(dev: &File, layout: &DiskLayout) -> Result<(), IdentityError> {
    write_table_named(dev, layout, Path::new("the target disk"))
}

/// [`write_table`] with the device's name for messages.
pub fn write_table_named(
    dev: &File,
    layout: &DiskLayout,
    name: &Path,
) -> Result<(), IdentityError> {
    let size = dev.size().map_err(|e| IdentityError::io(name, e))?;
    if let Some(ss) = logical_sector_size(dev) {
        if ss != layout.sector_size {
            return Err(bad(
                name,
                format!(
                    "the disk has {ss}-byte logical sectors, the recorded table {}-byte ones:                      its offsets would not fit; use a disk with {}-byte sectors",
                    layout.sector_size, layout.sector_size
                ),
            ));
        }
    }
    let writes = match layout.table_type.as_str() {
        "gpt" => gpt_sectors(layout, size, name)?,
        "dos" => super::mbr::mbr_sectors(layout, size, name)?,
        other => {
            return Err(bad(
                name,
                format!("the recorded partition table type '{other}' cannot be written"),
            ))
        }
    };
    for (off, bytes) in writes {
        dev.write_all_at(&bytes, off)
            .map_err(|e| IdentityError::io(name, e))?;
    }
    dev.sync_all().map_err(|e| IdentityError::io(name, e))
}

/// The logical sector size of a block device (its disk's, from sysfs); None for a file.
fn logical_sector_size(dev: &File) -> Option<u32> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = dev.metadata().ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let rdev = meta.rdev();
    let name = super::blockdev::name_of_devnum(
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    )?;
    let disk = super::blockdev::parent_disk(&name)
        .map(|(d, _)| d)
        .unwrap_or(name);
    super::blockdev::disk(&disk)
        .ok()
        .map(|d| d.logical_block_size)
}

/// Opens `path` for writing and writes the recorded table (see [`write_table`]).
pub fn write_table_to(path: &Path, layout: &DiskLayout) -> Result<(), IdentityError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| IdentityError::io(path, e))?;
    write_table_named(&f, layout, &PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::archive::disk_layout::PartitionLayout;
    use crate::identity::table::parse_partition_table;

    fn layout(ss: u32) -> DiskLayout {
        let mib = 1u64 << 20;
        DiskLayout {
            size_bytes: 32 * mib,
            sector_size: ss,
            table_type: "gpt".into(),
            table_id: "11111111-2222-3333-4444-555555555555".into(),
            partitions: vec![
                PartitionLayout {
                    number: 2,
                    start_bytes: mib,
                    size_bytes: 8 * mib,
                    type_id: crate::identity::gpt::types::ESP.into(),
                    partuuid: "c0ffee00-0000-4000-8000-000000000002".into(),
                    name: Some("EFI système".into()),
                    attributes: 1,
                    ..Default::default()
                },
                PartitionLayout {
                    number: 1,
                    start_bytes: 9 * mib,
                    size_bytes: 20 * mib,
                    type_id: crate::identity::gpt::types::LINUX_FS.into(),
                    partuuid: "c0ffee00-0000-4000-8000-000000000001".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn apply(writes: Vec<Write>, len: usize) -> Vec<u8> {
        let mut disk = vec![0u8; len];
        for (off, b) in writes {
            disk[off as usize..off as usize + b.len()].copy_from_slice(&b);
        }
        disk
    }

    #[test]
    fn round_trip_512_and_4096_byte_sectors() {
        for ss in [512u32, 4096] {
            let l = layout(ss);
            let disk = apply(gpt_sectors(&l, 40 << 20, Path::new("t")).unwrap(), 40 << 20);
            let t = parse_partition_table(disk.as_slice()).unwrap().unwrap();
            assert_eq!(t.sector_size, ss);
            assert_eq!(t.id, l.table_id);
            assert_eq!(t.partitions.len(), 2);
            let esp = t.entry(2).unwrap();
            assert_eq!(esp.name.as_deref(), Some("EFI système"));
            assert_eq!((esp.start_bytes, esp.size_bytes), (1 << 20, 8 << 20));
            assert_eq!(esp.partuuid, "c0ffee00-0000-4000-8000-000000000002");
            let attrs = crate::identity::gpt::read_attributes(disk.as_slice(), ss).unwrap();
            assert_eq!(attrs.get(&2), Some(&1));
            // The backup header alone gives the same table.
            let mut damaged = disk.clone();
            damaged[ss as usize..ss as usize + 8].fill(0);
            assert_eq!(
                parse_partition_table(damaged.as_slice()).unwrap().unwrap(),
                t
            );
        }
    }

    #[test]
    fn refusals() {
        let l = layout(512);
        let err = |l: &DiskLayout, size: u64| {
            gpt_sectors(l, size, Path::new("/dev/sdz"))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&l, 29 << 20).contains("partition 1"));
        let mut overlap = l.clone();
        overlap.partitions[1].start_bytes = 8 << 20;
        assert!(err(&overlap, 64 << 20).contains("overlap"));
        let mut bad_guid = l.clone();
        bad_guid.partitions[0].partuuid = "not-a-guid".into();
        assert!(err(&bad_guid, 64 << 20).contains("not a GUID"));
        assert!(parse_guid("c0ffee00-0000-4000-8000-00000000000").is_none());
    }
}
