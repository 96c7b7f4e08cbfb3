//! The FAT12/16/32 boot sector (volume id and label), as ESPs use.

use super::table::{le_u16, le_u32, ReadAt};
use crate::archive::manifest::FilesystemIdentity;

/// Reads a FAT boot sector; None when it is not one.
pub fn probe<D: ReadAt + ?Sized>(dev: &D) -> std::io::Result<Option<FilesystemIdentity>> {
    if dev.size()? < 512 {
        return Ok(None);
    }
    let mut bs = [0u8; 512];
    dev.read_at(0, &mut bs)?;
    if le_u16(&bs, 510) != 0xAA55 {
        return Ok(None);
    }
    let bytes_per_sector = u32::from(le_u16(&bs, 11));
    let sectors_per_cluster = u32::from(bs[13]);
    let reserved = le_u16(&bs, 14);
    let fats = bs[16];
    let valid_geometry = matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved != 0
        && fats != 0;
    if !valid_geometry {
        return Ok(None);
    }
    let fat16_size = le_u16(&bs, 22);
    // FAT32 keeps its extended BPB at 0x40; FAT12/16 at 0x24.
    let (ext, type_off) = if fat16_size == 0 {
        (0x40, 0x52)
    } else {
        (0x24, 0x36)
    };
    let has_ebpb = bs[ext + 2] == 0x29 || bs[ext + 2] == 0x28;
    let fs_type = &bs[type_off..type_off + 8];
    if !has_ebpb && !fs_type.starts_with(b"FAT") {
        return Ok(None);
    }
    let total16 = u32::from(le_u16(&bs, 19));
    let total = if total16 != 0 {
        total16
    } else {
        le_u32(&bs, 32)
    };
    let fat_size = if fat16_size != 0 {
        u32::from(fat16_size)
    } else {
        le_u32(&bs, 36)
    };
    // A FAT32 BPB (no 16-bit FAT size) is FAT32 whatever its cluster count, as Linux and
    // blkid read it: mkfs.fat makes such volumes with `-F 32` on small partitions, and they
    // must come back as FAT32.
    let fat_bits = if fat16_size == 0 {
        32
    } else {
        fat_bits(
            total,
            u32::from(reserved),
            u32::from(fats),
            fat_size,
            u32::from(le_u16(&bs, 17)),
            bytes_per_sector,
            sectors_per_cluster,
        )
    };
    let (uuid, label) = if has_ebpb {
        let id = le_u32(&bs, ext + 3);
        let label = super::extfs::c_string(&bs[ext + 7..ext + 18]).filter(|l| l != "NO NAME");
        (Some(format!("{:04X}-{:04X}", id >> 16, id & 0xFFFF)), label)
    } else {
        (None, None)
    };
    Ok(Some(FilesystemIdentity {
        fstype: "vfat".to_string(),
        uuid,
        label,
        size: u64::from(total) * u64::from(bytes_per_sector),
        block_size: bytes_per_sector * sectors_per_cluster,
        inode_size: 0,
        features: Vec::new(),
        fat_bits,
        cluster_size: bytes_per_sector * sectors_per_cluster,
        ..Default::default()
    }))
}

/// The FAT type of a FAT12/16 BPB, decided by the count of data clusters as the FAT
/// specification says (fewer than 4085: FAT12, fewer than 65525: FAT16, else FAT32), not by
/// the type string.
fn fat_bits(
    total_sectors: u32,
    reserved: u32,
    fats: u32,
    fat_size: u32,
    root_entries: u32,
    bytes_per_sector: u32,
    sectors_per_cluster: u32,
) -> u8 {
    let root_dir_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
    let meta =
        u64::from(reserved) + u64::from(fats) * u64::from(fat_size) + u64::from(root_dir_sectors);
    let data = u64::from(total_sectors).saturating_sub(meta);
    let clusters = data / u64::from(sectors_per_cluster.max(1));
    if clusters < 4085 {
        12
    } else if clusters < 65525 {
        16
    } else {
        32
    }
}
