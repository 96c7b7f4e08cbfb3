//! The store's journal: one JSON object per line, appended with O_APPEND and fsynced, so
//! that the recovery image can tell, after a power cut, whether a restore was started and
//! not finished. A torn last line (cut by a crash) is ignored when reading.

use super::StoreError;
use crate::identity::clock;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Event names.
pub mod events {
    pub const BACKUP_COMMITTED: &str = "backup-committed";
    pub const HOST_RESTORE_COMMITTED: &str = "host-restore-committed";
    pub const PRUNED: &str = "pruned";
    pub const STAGING_REMOVED: &str = "staging-removed";
    pub const RESTORE_STARTED: &str = "restore-started";
    pub const RESTORE_DONE: &str = "restore-done";
    pub const RESTORE_FAILED: &str = "restore-failed";
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// RFC 3339 UTC.
    pub time: String,
    /// One of [`events`].
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// The device restored to (restore-*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Free text: a reason, an error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl JournalRecord {
    /// A record of `event` now, by this process on this host.
    pub fn new(event: &str) -> Self {
        JournalRecord {
            time: clock::now_rfc3339(),
            event: event.to_string(),
            generation: None,
            target: None,
            host: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
            pid: Some(std::process::id()),
            detail: None,
        }
    }
    pub fn generation(mut self, id: &str) -> Self {
        self.generation = Some(id.to_string());
        self
    }
    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_string());
        self
    }
    pub fn detail(mut self, detail: &str) -> Self {
        self.detail = Some(detail.to_string());
        self
    }
}

/// Appends one record and fsyncs the journal.
pub fn append(path: &Path, rec: &JournalRecord) -> Result<(), StoreError> {
    let mut line = serde_json::to_string(rec)
        .map_err(|e| StoreError::Invalid(format!("cannot encode a journal record: {e}")))?;
    line.push('\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| StoreError::io(path, e))
}

/// Reads every well-formed record, oldest first (a missing journal is empty).
pub fn read(path: &Path) -> Result<Vec<JournalRecord>, StoreError> {
    let raw = match std::fs::read(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    Ok(String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The last restore-* record: `restore-started` as the last one means a restore was
/// interrupted and must be finished.
pub fn last_restore(records: &[JournalRecord]) -> Option<&JournalRecord> {
    records
        .iter()
        .rev()
        .find(|r| r.event.starts_with("restore-"))
}
