//! The ext2/3/4 superblock, read directly (1024 bytes at offset 1024).

use super::table::{le_u16, le_u32, ReadAt};
use crate::archive::manifest::FilesystemIdentity;

const SB_OFFSET: u64 = 1024;
const MAGIC: u16 = 0xEF53;

// Feature bits and the names `mke2fs -O` takes (lib/e2p/feature.c's names).
const COMPAT: &[(u32, &str)] = &[
    (0x0001, "dir_prealloc"),
    (0x0002, "imagic_inodes"),
    (0x0004, "has_journal"),
    (0x0008, "ext_attr"),
    (0x0010, "resize_inode"),
    (0x0020, "dir_index"),
    (0x0040, "lazy_bg"),
    (0x0200, "sparse_super2"),
    (0x0400, "fast_commit"),
    (0x0800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
const RO_COMPAT: &[(u32, &str)] = &[
    (0x0001, "sparse_super"),
    (0x0002, "large_file"),
    (0x0008, "huge_file"),
    (0x0010, "uninit_bg"),
    (0x0020, "dir_nlink"),
    (0x0040, "extra_isize"),
    (0x0100, "quota"),
    (0x0200, "bigalloc"),
    (0x0400, "metadata_csum"),
    (0x0800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
];
const INCOMPAT: &[(u32, &str)] = &[
    (0x0001, "compression"),
    (0x0002, "filetype"),
    (0x0008, "journal_dev"),
    (0x0010, "meta_bg"),
    (0x0040, "extent"),
    (0x0080, "64bit"),
    (0x0100, "mmp"),
    (0x0200, "flex_bg"),
    (0x0400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
// State bits, not features (needs_recovery 0x4 incompat, orphan_present 0x10000 ro_compat):
// they are left out because mke2fs does not take them.

// What ext3 knows; anything beyond makes the filesystem ext4 (as blkid decides).
const EXT3_INCOMPAT: u32 = 0x0002 | 0x0004 | 0x0010;
const EXT3_RO_COMPAT: u32 = 0x0001 | 0x0002 | 0x0004;
const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
const INCOMPAT_64BIT: u32 = 0x0080;

/// Reads an ext2/3/4 superblock; None when the magic is absent or it is an external journal.
pub fn probe<D: ReadAt + ?Sized>(dev: &D) -> std::io::Result<Option<FilesystemIdentity>> {
    if dev.size()? < SB_OFFSET + 1024 {
        return Ok(None);
    }
    let mut sb = [0u8; 1024];
    dev.read_at(SB_OFFSET, &mut sb)?;
    if le_u16(&sb, 56) != MAGIC {
        return Ok(None);
    }
    let compat = le_u32(&sb, 92);
    let incompat = le_u32(&sb, 96);
    let ro_compat = le_u32(&sb, 100);
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return Ok(None);
    }
    let log_block = le_u32(&sb, 24);
    if log_block > 6 {
        return Ok(None);
    }
    let block_size = 1024u32 << log_block;
    let mut blocks = u64::from(le_u32(&sb, 4));
    if incompat & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(le_u32(&sb, 0x150)) << 32;
    }
    let rev = le_u32(&sb, 76);
    let inode_size = if rev == 0 {
        128
    } else {
        u32::from(le_u16(&sb, 88))
    };
    let mut features = Vec::new();
    for (set, names) in [
        (compat, COMPAT),
        (ro_compat, RO_COMPAT),
        (incompat, INCOMPAT),
    ] {
        for &(bit, name) in names {
            if set & bit != 0 {
                features.push(name.to_string());
            }
        }
    }
    let fstype = if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        "ext4"
    } else if compat & 0x0004 != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&sb[104..120]);
    let label = c_string(&sb[120..136]);
    let inode_count = u64::from(le_u32(&sb, 0));
    let free_inodes = u64::from(le_u32(&sb, 16));
    Ok(Some(FilesystemIdentity {
        fstype: fstype.to_string(),
        uuid: (uuid != [0u8; 16]).then(|| format_uuid(&uuid)),
        label,
        size: blocks * u64::from(block_size),
        block_size,
        inode_size,
        features,
        inode_count,
        inodes_used: inode_count.saturating_sub(free_inodes),
        ..Default::default()
    }))
}

/// A big-endian (RFC 4122 byte order) UUID as lower-case text.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A NUL-padded string field, None when empty.
pub(crate) fn c_string(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}
