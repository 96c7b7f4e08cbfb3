//! XenServer's own backup partitions: an unpacked root tree with `.xen-backup-partition` and
//! `etc/xensource-inventory` at the filesystem root, as `xe host-restore` leaves them and the
//! installer's "Restore from backup" reads them.

use super::journal::{self, JournalRecord};
use super::layout::XEN_MARKER;
use super::{BackupSummary, StoreError};
use crate::identity::clock::UtcTime;
use crate::identity::inventory::{self, Inventory};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The restore journal of a XenServer backup partition, which Lifeboat never reformats: a file
/// in the partition's own `lost+found` (made by mkfs, not part of the tree a restore copies),
/// in the format of the store's journal ([`journal`]).
pub const JOURNAL: &str = "lost+found/lifeboat-journal";

/// The journal of the XenServer backup partition mounted at `root`.
pub fn journal_path(root: &Path) -> PathBuf {
    root.join(JOURNAL)
}

/// The id a restore of the XenServer backup tree committed at `created` (the marker's mtime,
/// RFC 3339) is journalled under, in place of a generation id: a newer backup in the same
/// partition is another id, so its restore never resumes the plan of an older one.
pub fn journal_id(created: &str) -> String {
    format!("xenserver-tree@{created}")
}

/// Appends `rec` to the journal of the XenServer backup partition mounted (read-write) at
/// `root`; `lost+found` is made (mode 0700, as mkfs makes it) when the partition has none.
pub fn append_journal(root: &Path, rec: &JournalRecord) -> Result<(), StoreError> {
    let dir = root.join("lost+found");
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| StoreError::io(&dir, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io(&dir, e)),
    }
    journal::append(&journal_path(root), rec)
}

/// The records of the journal of the XenServer backup partition mounted at `root` (none when
/// no restore from it was ever journalled).
pub fn read_journal(root: &Path) -> Result<Vec<JournalRecord>, StoreError> {
    Ok(journal::read(&journal_path(root))?.records)
}

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
    /// The id its restores are journalled under ([`journal_id`]).
    pub fn journal_id(&self) -> String {
        journal_id(self.created.as_deref().unwrap_or("unknown-time"))
    }

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::events;

    #[test]
    fn a_xenserver_partition_keeps_its_restore_journal_in_lost_and_found() {
        let root =
            std::env::temp_dir().join(format!("lifeboat-xentree-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        assert!(read_journal(&root).unwrap().is_empty());
        let id = journal_id("2026-12-03T06:00:00Z");
        assert_eq!(id, "xenserver-tree@2026-12-03T06:00:00Z");
        let started = JournalRecord::new(events::RESTORE_STARTED).generation(&id);
        append_journal(&root, &started).unwrap();
        // lost+found is made as mkfs makes it, and the tree's copy skips it.
        let md = std::fs::metadata(root.join("lost+found")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o700);
        let recs = read_journal(&root).unwrap();
        assert_eq!(recs, vec![started]);
        assert_eq!(
            journal::last_restore(&recs).map(|r| r.event.as_str()),
            Some(events::RESTORE_STARTED)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
