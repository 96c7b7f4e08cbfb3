//! Which filesystem (or other content) a device holds, from its signatures.

use super::table::ReadAt;
use super::{extfs, vfat, IdentityError};
use crate::archive::manifest::FilesystemIdentity;
use std::fs::File;
use std::path::Path;

/// Signatures of content we do not parse but must not overwrite blindly:
/// (offset, magic, name).
const SIGNATURES: &[(u64, &[u8], &str)] = &[
    (0, b"XFSB", "xfs"),
    (0x10040, b"_BHRfS_M", "btrfs"),
    (0, b"LUKS\xba\xbe", "crypto_LUKS"),
    (0x218, b"LVM2 001", "LVM2_member"),
    (0x1018, b"LVM2 001", "LVM2_member"),
    (0x1000, b"\xfc\x4e\x2b\xa9", "linux_raid_member"),
    (4086, b"SWAPSPACE2", "swap"),
    (4086, b"SWAP-SPACE", "swap"),
    (3, b"NTFS    ", "ntfs"),
    (0, b"hsqs", "squashfs"),
    (0x8001, b"CD001", "iso9660"),
    (0x10000, b"ReIsEr", "reiserfs"),
    (0x20, b"\xd2\x40\x0f\x00", "zfs_member"),
];

/// Identifies the filesystem on a device (or image file): ext2/3/4 and vfat in full, other
/// known signatures (xfs, btrfs, swap, LVM, md, LUKS, ...) by type name only.
/// `Ok(None)`: no known signature.
pub fn probe(dev: &Path) -> Result<Option<FilesystemIdentity>, IdentityError> {
    let file = File::open(dev).map_err(|e| IdentityError::io(dev, e))?;
    let mut id = probe_reader(&file).map_err(|e| IdentityError::io(dev, e))?;
    if let Some(id) = id.as_mut() {
        id.device = Some(dev.display().to_string());
    }
    Ok(id)
}

/// [`probe`] on any random-access source.
pub fn probe_reader<D: ReadAt + ?Sized>(dev: &D) -> std::io::Result<Option<FilesystemIdentity>> {
    if let Some(id) = extfs::probe(dev)? {
        return Ok(Some(id));
    }
    if let Some(id) = vfat::probe(dev)? {
        return Ok(Some(id));
    }
    let len = dev.size()?;
    for &(off, magic, name) in SIGNATURES {
        if off + magic.len() as u64 > len {
            continue;
        }
        let mut buf = vec![0u8; magic.len()];
        dev.read_at(off, &mut buf)?;
        if buf == magic {
            return Ok(Some(FilesystemIdentity {
                fstype: name.to_string(),
                ..Default::default()
            }));
        }
    }
    Ok(None)
}
