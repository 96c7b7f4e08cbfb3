//! The safety rules every device a plan writes must pass, each a distinct refusal naming the
//! device: never the backup being restored, another Lifeboat store or XenServer backup, a
//! mounted filesystem, one leg of an md array, or the boot medium; never smaller than what it
//! must hold.

use super::error::PlanError;
use super::facts::{BackupFacts, DeviceFacts, Holds};
use super::model::Check;
use crate::archive::manifest::FilesystemIdentity;
use crate::progress::human_bytes;

/// mke2fs's default bytes per inode, for a partition whose recorded ratio is unknown.
const DEFAULT_INODE_RATIO: u64 = 16384;

fn one(d: &DeviceFacts, backup: &BackupFacts) -> Result<(), PlanError> {
    let device = d.dev.dev_path();
    if d.dev.name == backup.device {
        return Err(PlanError::HoldsThisBackup { device });
    }
    if let Some(h) = &d.holds {
        let what = match h {
            Holds::LifeboatStore => "a Lifeboat store",
            Holds::XenServerBackup => "a XenServer backup",
        };
        return Err(PlanError::HoldsOtherBackup {
            device,
            what: what.into(),
        });
    }
    if let Some(m) = d.mounts.first() {
        return Err(PlanError::Mounted {
            device,
            mountpoint: m.clone(),
        });
    }
    if let Some(a) = &d.md_array {
        return Err(PlanError::MdLeg {
            device,
            array: a.clone(),
        });
    }
    if d.boot_medium {
        return Err(PlanError::BootMedium { device });
    }
    Ok(())
}

/// Checks that `target` (a partition or a whole disk) may be written: the device itself, its
/// disk (for a partition) and every partition on it (for a disk).
pub fn check_writable(
    target: &DeviceFacts,
    all: &[DeviceFacts],
    backup: &BackupFacts,
) -> Result<Check, PlanError> {
    one(target, backup)?;
    let related = all.iter().filter(|d| {
        d.dev.name != target.dev.name
            && if target.dev.is_partition() {
                // Its disk: a whole-disk md leg, the boot medium, a mounted whole disk.
                !d.dev.is_partition() && d.dev.name == target.dev.disk
            } else {
                d.dev.disk == target.dev.name
            }
    });
    for d in related {
        one(d, backup)?;
    }
    Ok(Check {
        name: "safety".into(),
        ok: true,
        detail: format!(
            "{}: holds no backup, not mounted, no md array member, not the boot medium",
            target.dev.dev_path()
        ),
    })
}

/// The space a root (or ESP) needs: the recorded filesystem size, else the content with a
/// tenth more for metadata.
pub fn needed_bytes(fs: &FilesystemIdentity, content_bytes: u64) -> (u64, String) {
    if fs.size > 0 {
        (fs.size, format!("the recorded {} filesystem", fs.fstype))
    } else {
        (
            content_bytes + content_bytes / 10,
            "the backup's content with room for metadata".into(),
        )
    }
}

/// Inodes a partition of `size` bytes gets when mkfs recreates `fs` on it.
pub fn inodes_for(fs: &FilesystemIdentity, size: u64) -> u64 {
    if fs.inode_count > 0 && fs.size > 0 {
        ((fs.inode_count as u128 * size as u128) / fs.size as u128) as u64
    } else {
        size / DEFAULT_INODE_RATIO
    }
}

/// Size and inode checks of an ext root (or a vfat ESP: size only) on a partition.
pub fn check_fits(
    device: &str,
    size: u64,
    fs: &FilesystemIdentity,
    content_bytes: u64,
    entries: u64,
) -> Result<Vec<Check>, PlanError> {
    let (needed, what) = needed_bytes(fs, content_bytes);
    if size < needed {
        return Err(PlanError::TooSmall {
            device: device.into(),
            size,
            needed,
            what,
        });
    }
    let mut checks = vec![Check {
        name: "size".into(),
        ok: true,
        detail: format!(
            "{device}: {} holds {what} ({})",
            human_bytes(size),
            human_bytes(needed)
        ),
    }];
    if fs.fstype.starts_with("ext") {
        let in_use = if fs.inodes_used > 0 {
            fs.inodes_used
        } else {
            entries
        };
        let available = inodes_for(fs, size);
        if in_use > available {
            return Err(PlanError::TooFewInodes {
                device: device.into(),
                available,
                needed: in_use,
            });
        }
        checks.push(Check {
            name: "inodes".into(),
            ok: true,
            detail: format!("{device}: about {available} inodes for the {in_use} in use"),
        });
    }
    Ok(checks)
}
