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
    /// The steps of the restore plan about to run (ids and devices), written right after
    /// `restore-started` by a run that starts from the first step. Not `restore-*`: the last
    /// `restore-*` record still says whether a restore is unfinished.
    pub const PLAN_RECORDED: &str = "plan-recorded";
    /// One step of the recorded plan is complete (`step`).
    pub const STEP_DONE: &str = "step-done";
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
    /// The request an unattended restore ran for (`lifeboat.request=ID`, made by `lifeboat
    /// mkrescue`): a restore-done with it means that request is done. Absent in older lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// plan-recorded: the plan's steps in order. Absent in older lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRef>,
    /// step-done: the id of the step done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// One step of a recorded plan: its stable id and the device it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    pub id: String,
    pub device: String,
}

impl std::fmt::Display for StepRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.id, self.device)
    }
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
            request: None,
            steps: Vec::new(),
            step: None,
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
    pub fn request(mut self, request: &str) -> Self {
        self.request = Some(request.to_string());
        self
    }
    pub fn steps(mut self, steps: Vec<StepRef>) -> Self {
        self.steps = steps;
        self
    }
    pub fn step(mut self, id: &str) -> Self {
        self.step = Some(id.to_string());
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

/// The restore-done record of the unattended request `request`, if that request was done (the
/// oldest such record: when it ran first).
pub fn request_done<'a>(records: &'a [JournalRecord], request: &str) -> Option<&'a JournalRecord> {
    records
        .iter()
        .find(|r| r.event == events::RESTORE_DONE && r.request.as_deref() == Some(request))
}

/// The last restore-* record: `restore-started` as the last one means a restore was
/// interrupted and must be finished.
pub fn last_restore(records: &[JournalRecord]) -> Option<&JournalRecord> {
    records
        .iter()
        .rev()
        .find(|r| r.event.starts_with("restore-"))
}

/// A plan that was recorded and not finished: its steps, and the ids of those done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProgress {
    pub generation: Option<String>,
    pub target: Option<String>,
    pub steps: Vec<StepRef>,
    pub done: Vec<String>,
}

impl PlanProgress {
    /// The index of the first recorded step not done (`steps.len()` when all are).
    pub fn first_not_done(&self) -> usize {
        self.steps
            .iter()
            .position(|s| !self.done.contains(&s.id))
            .unwrap_or(self.steps.len())
    }
}

/// The last recorded plan, when no `restore-done` came after it: the restore it belongs to was
/// interrupted (or failed), and the steps recorded done after it need not run again.
pub fn unfinished_plan(records: &[JournalRecord]) -> Option<PlanProgress> {
    let at = records
        .iter()
        .rposition(|r| r.event == events::PLAN_RECORDED)?;
    let after = &records[at + 1..];
    if after.iter().any(|r| r.event == events::RESTORE_DONE) {
        return None;
    }
    let plan = &records[at];
    Some(PlanProgress {
        generation: plan.generation.clone(),
        target: plan.target.clone(),
        steps: plan.steps.clone(),
        done: after
            .iter()
            .filter(|r| r.event == events::STEP_DONE)
            .filter_map(|r| r.step.clone())
            .collect(),
    })
}

/// How many restores a restore journal keeps whole ([`bounded`]).
pub const KEEP_RESTORES: usize = 10;

/// The records a restore journal keeps, oldest first: those of its last `keep` restores
/// whole, and of older restores only the `restore-done` records naming an unattended request
/// (run-once reads them: a request done long ago must never run again). A restore begins with
/// the `restore-started` written just before its `plan-recorded` and runs up to the next
/// restore's beginning: its resumptions, failures, steps and `restore-done` are never cut
/// apart, and the last restore, finished or not, is always kept (`keep` counts at least 1).
/// Records before the first `plan-recorded` (written before plans were recorded) count as
/// older restores once there are more than `keep` recorded plans. A journal with `keep`
/// restores or fewer is returned as it is.
pub fn bounded(mut records: Vec<JournalRecord>, keep: usize) -> Vec<JournalRecord> {
    let keep = keep.max(1);
    let mut starts = Vec::new();
    let mut from = 0;
    for (i, r) in records.iter().enumerate() {
        if r.event == events::PLAN_RECORDED {
            let start = records[from..i]
                .iter()
                .rposition(|r| r.event == events::RESTORE_STARTED)
                .map_or(i, |p| from + p);
            starts.push(start);
            from = i + 1;
        }
    }
    let Some(&cut) = starts
        .len()
        .checked_sub(keep)
        .filter(|&n| n > 0)
        .and_then(|n| starts.get(n))
    else {
        return records;
    };
    let kept = records.split_off(cut);
    records
        .into_iter()
        .filter(|r| r.event == events::RESTORE_DONE && r.request.is_some())
        .chain(kept)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_request_of_an_unattended_restore_is_kept_and_old_lines_stay_readable() {
        let done = JournalRecord::new(events::RESTORE_DONE)
            .generation("g1")
            .target("/dev/vda1")
            .request("r-0123");
        let line = serde_json::to_string(&done).unwrap();
        assert!(line.starts_with(RECORD_START), "{line}");
        assert!(line.contains("\"request\":\"r-0123\""), "{line}");
        // A line written before the field existed, then the new one.
        let old = "{\"time\":\"2026-11-22T04:00:00Z\",\"event\":\"restore-done\",\"generation\":\"g0\",\"target\":\"/dev/vda1\"}";
        let j = parse(&format!("{old}\n{line}\n"));
        assert!(j.skipped.is_empty(), "{:?}", j.skipped);
        assert_eq!(j.records.len(), 2);
        assert_eq!(j.records[0].request, None);
        assert_eq!(
            request_done(&j.records, "r-0123").map(|r| r.generation.as_deref()),
            Some(Some("g1"))
        );
        assert!(request_done(&j.records, "r-other").is_none());
        // Only a finished restore counts.
        let started = JournalRecord::new(events::RESTORE_STARTED).request("r-9");
        assert!(request_done(&[started], "r-9").is_none());
    }

    #[test]
    fn an_unfinished_plan_is_found_with_its_steps_done() {
        let steps = vec![
            StepRef {
                id: "create-table".into(),
                device: "/dev/vdb".into(),
            },
            StepRef {
                id: "make-filesystem-p2".into(),
                device: "/dev/vdb2".into(),
            },
            StepRef {
                id: "restore-root".into(),
                device: "/dev/vdb2".into(),
            },
        ];
        let started = JournalRecord::new(events::RESTORE_STARTED).generation("g1");
        let plan = JournalRecord::new(events::PLAN_RECORDED)
            .generation("g1")
            .target("/dev/vdb")
            .steps(steps.clone());
        let done = |id: &str| JournalRecord::new(events::STEP_DONE).step(id);
        let mut recs = vec![started.clone(), plan, done("create-table")];
        // A line of the new kind reads back as written; the last restore-* is still "started".
        let line = serde_json::to_string(&recs[1]).unwrap();
        assert_eq!(parse(&line).records[0], recs[1]);
        assert_eq!(last_restore(&recs).unwrap().event, events::RESTORE_STARTED);
        let p = unfinished_plan(&recs).unwrap();
        assert_eq!(p.steps, steps);
        assert_eq!(p.first_not_done(), 1);
        assert_eq!(p.generation.as_deref(), Some("g1"));
        // A resumed run appends restore-started again and goes on.
        recs.push(started);
        recs.push(done("make-filesystem-p2"));
        assert_eq!(unfinished_plan(&recs).unwrap().first_not_done(), 2);
        recs.push(done("restore-root"));
        assert_eq!(unfinished_plan(&recs).unwrap().first_not_done(), 3);
        recs.push(JournalRecord::new(events::RESTORE_DONE));
        assert!(unfinished_plan(&recs).is_none());
        assert!(unfinished_plan(&[]).is_none());
    }

    /// The records of restore `n` of generation `g`: started, plan, two steps (a resumption
    /// between them when `resumed`), then done (with `request`) unless `unfinished`.
    fn one_restore(
        n: usize,
        request: Option<&str>,
        resumed: bool,
        unfinished: bool,
    ) -> Vec<JournalRecord> {
        let g = format!("g{n}");
        let step = |id: &str| StepRef {
            id: id.into(),
            device: "/dev/vda1".into(),
        };
        let mut v = vec![
            JournalRecord::new(events::RESTORE_STARTED).generation(&g),
            JournalRecord::new(events::PLAN_RECORDED)
                .generation(&g)
                .steps(vec![step("make-filesystem"), step("restore-root")]),
            JournalRecord::new(events::STEP_DONE).step("make-filesystem"),
        ];
        if resumed {
            v.push(JournalRecord::new(events::RESTORE_FAILED).generation(&g));
            v.push(JournalRecord::new(events::RESTORE_STARTED).generation(&g));
        }
        if !unfinished {
            v.push(JournalRecord::new(events::STEP_DONE).step("restore-root"));
            let done = JournalRecord::new(events::RESTORE_DONE).generation(&g);
            v.push(match request {
                Some(r) => done.request(r),
                None => done,
            });
        }
        v
    }

    #[test]
    fn a_journal_keeps_whole_restores_the_unfinished_one_and_every_request_done() {
        let mut all = Vec::new();
        let mut grown = Vec::new();
        for n in 0..100 {
            let request = (n % 10 == 3).then(|| format!("r-{n}"));
            let recs = one_restore(n, request.as_deref(), n % 7 == 0, n == 99);
            all.extend(recs.iter().cloned());
            grown.extend(recs);
            // What an append does: add, then keep what the rule keeps.
            grown = bounded(grown, KEEP_RESTORES);
            assert!(
                grown.len() <= 7 * KEEP_RESTORES + 10,
                "{n}: {}",
                grown.len()
            );
        }
        assert_eq!(grown, bounded(all.clone(), KEEP_RESTORES));
        // The last ten restores whole: the first kept plan's restore-started comes right
        // before it; before that only the done requests remain, oldest first.
        let first_plan = grown
            .iter()
            .position(|r| r.event == events::PLAN_RECORDED)
            .unwrap();
        assert_eq!(grown[first_plan].generation.as_deref(), Some("g90"));
        assert_eq!(grown[first_plan - 1].event, events::RESTORE_STARTED);
        let kept_tail: Vec<JournalRecord> = (90..100)
            .flat_map(|n| {
                let request = (n % 10 == 3).then(|| format!("r-{n}"));
                one_restore(n, request.as_deref(), n % 7 == 0, n == 99)
            })
            .collect();
        assert_eq!(grown.len() - (first_plan - 1), kept_tail.len());
        assert!(grown[..first_plan - 1]
            .iter()
            .all(|r| r.event == events::RESTORE_DONE && r.request.is_some()));
        // Run-once: every request ever done is still done.
        for n in (3..100).step_by(10) {
            assert!(request_done(&grown, &format!("r-{n}")).is_some(), "r-{n}");
        }
        // Resume: the unfinished restore reads as before.
        assert_eq!(unfinished_plan(&grown), unfinished_plan(&all));
        let p = unfinished_plan(&grown).unwrap();
        assert_eq!(
            (p.generation.as_deref(), p.first_not_done()),
            (Some("g99"), 1)
        );
        assert_eq!(last_restore(&grown), last_restore(&all));
        // Ten restores or fewer: nothing is dropped.
        let few: Vec<JournalRecord> = (0..KEEP_RESTORES)
            .flat_map(|n| one_restore(n, None, true, false))
            .collect();
        assert_eq!(bounded(few.clone(), KEEP_RESTORES), few);
    }
}
