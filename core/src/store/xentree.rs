//! XenServer's own backup partitions: an unpacked root tree with `.xen-backup-partition` and
//! `etc/xensource-inventory` at the filesystem root, as `xe host-restore` leaves them and the
//! installer's "Restore from backup" reads them.

use super::layout::XEN_MARKER;
use super::BackupSummary;
use crate::identity::clock::UtcTime;
use crate::identity::inventory::{self, Inventory};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A XenServer backup tree.
#[derive(Debug, Clone)]
pub struct XenTreeBackup {
    /// The tree's root (the mounted backup partition).
    pub root: PathBuf,
    pub inventory: Inventory,
    pub product_version: Option<String>,
    pub host: Option<String>,
    /// RFC 3339 UTC mtime of the marker (when the backup was committed).
    pub created: Option<String>,
    /// Bytes in use on the filesystem.
    pub used_bytes: u64,
}

/// Detects a XenServer backup tree at `root`; None when the marker or inventory is missing.
pub fn detect(root: &Path) -> Option<XenTreeBackup> {
    let marker = std::fs::metadata(root.join(XEN_MARKER)).ok()?;
    let inv = inventory::read_inventory(root).ok().flatten()?;
    let host = std::fs::read_to_string(root.join("etc/hostname"))
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .filter(|s| !s.is_empty());
    Some(XenTreeBackup {
        root: root.to_path_buf(),
        product_version: inventory::product_version(&inv).map(String::from),
        inventory: inv,
        host,
        created: Some(UtcTime::from_unix(marker.mtime()).rfc3339()),
        used_bytes: super::space::space_of(root).map(|s| s.used).unwrap_or(0),
    })
}

impl XenTreeBackup {
    /// The row `lifeboat list` shows for it.
    pub fn summary(&self) -> BackupSummary {
        BackupSummary {
            kind: "xenserver-tree".into(),
            id: "xenserver".into(),
            created: self.created.clone().unwrap_or_default(),
            host: self.host.clone().unwrap_or_default(),
            product_version: self.product_version.clone(),
            size: self.used_bytes,
            files: None,
            codec: "tree".into(),
            state: "unchecked".into(),
            origin: "xe-host-restore".into(),
            pool_database: None,
        }
    }
}
