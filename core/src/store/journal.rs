//! The store's journal: one JSON object per line, appended with O_APPEND and fsynced, so
//! that the recovery image can tell, after a power cut, whether a restore was started and
//! not finished. A torn line (cut by a crash or a full disk) is skipped when reading, and
//! the next append starts on a fresh line.

use super::StoreError;
use crate::identity::clock;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
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

/// Appends one record and fsyncs the journal. Every record starts on a line of its own: when
/// the journal does not end in a newline (a line torn by a power cut or a full disk), one is
/// written first, so the torn line can never swallow this record.
pub fn append(path: &Path, rec: &JournalRecord) -> Result<(), StoreError> {
    let encoded = serde_json::to_string(rec)
        .map_err(|e| StoreError::Invalid(format!("cannot encode a journal record: {e}")))?;
    let f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    let len = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
    let mut line = String::with_capacity(encoded.len() + 2);
    if len > 0 {
        let mut last = [0u8; 1];
        f.read_exact_at(&mut last, len - 1)
            .map_err(|e| StoreError::io(path, e))?;
        if last[0] != b'\n' {
            line.push('\n');
        }
    }
    line.push_str(&encoded);
    line.push('\n');
    (&f).write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| StoreError::io(path, e))
}

/// The journal as read: its well-formed records, oldest first, and a note for every line that
/// was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    pub records: Vec<JournalRecord>,
    /// "journal line N: ..." for each torn or unreadable line that was skipped.
    pub skipped: Vec<String>,
}

/// The start of every record (`time` is the first field written).
const RECORD_START: &str = "{\"time\":";

/// Reads every well-formed record, oldest first (a missing journal is empty). A torn line is
/// skipped and noted, never merged with the record after it: a journal written before appends
/// started records on a fresh line can hold a torn record glued to the front of the next one
/// on the same line; that next record is still read.
pub fn read(path: &Path) -> Result<Journal, StoreError> {
    let raw = match std::fs::read(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Journal::default()),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    Ok(parse(&String::from_utf8_lossy(&raw)))
}

/// Parses the journal's text (see [`read`]).
pub fn parse(text: &str) -> Journal {
    let mut out = Journal::default();
    for (n, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(r) = serde_json::from_str::<JournalRecord>(line) {
            out.records.push(r);
            continue;
        }
        // A torn record followed by a whole one on the same line: read the last record that
        // starts after the torn one.
        let glued = line
            .match_indices(RECORD_START)
            .filter(|(i, _)| *i > 0)
            .find_map(|(i, _)| serde_json::from_str::<JournalRecord>(&line[i..]).ok());
        let shown: String = line.chars().take(60).collect();
        out.skipped.push(format!(
            "journal line {}: a torn or unreadable record was skipped: {shown}",
            n + 1
        ));
        if let Some(r) = glued {
            out.records.push(r);
        }
    }
    out
}
/// The last restore-* record: `restore-started` as the last one means a restore was
/// interrupted and must be finished.
pub fn last_restore(records: &[JournalRecord]) -> Option<&JournalRecord> {
    records
        .iter()
        .rev()
        .find(|r| r.event.starts_with("restore-"))
}
