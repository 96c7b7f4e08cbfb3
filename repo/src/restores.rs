//! The restore journal of a restore from the repository: the recovery image appends the same
//! records it writes beside a local backup (`lifeboat_core::store::journal`: restore-started,
//! plan-recorded, step-done, restore-done with the unattended request) to one object per host
//! and target machine, [`crate::layout::restore_journal_key`]. With it a restore cut by a power
//! failure resumes at the first step not done, and a per-host unattended entry
//! (`lifeboat.request=`) runs once.
//!
//! The object is the records as JSON, compressed, sealed with the fleet key and bound to its
//! name (like `hosts/<id>/status`): the object store sees neither generation ids, device
//! names, request ids nor the machine's identity (its name is a keyed hash of it). An append
//! reads the whole object, adds the records and writes it whole again, keeping what core's one
//! rule keeps ([`lifeboat_core::store::journal::bounded`]): the records of the last
//! [`KEEP_RESTORES`] restores whole (an unfinished one always among them), and of older
//! restores only each unattended request's `restore-done` (run-once). So the object stays
//! small: some ten restores' records and one record per request ever done. Nothing depends
//! on conditional writes: one machine restores one host's generation at a time, and the last
//! write wins. Prune and check neither read nor delete it.

use crate::backend::BackendError;
use crate::crypto::FleetKey;
use crate::layout;
use crate::{RepoError, Repository};
use lifeboat_core::store::journal::{bounded, KEEP_RESTORES};
use lifeboat_core::store::JournalRecord;
use serde::{Deserialize, Serialize};

/// The journal's format version.
const FORMAT: u32 = 1;

/// The object's contents before sealing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    format: u32,
    records: Vec<JournalRecord>,
}

/// What names the target machine of a restore, in this order: the DMI (SMBIOS) product UUID,
/// else the product serial number, else the MAC address of the interface the image reached the
/// repository through. Each with its kind (`uuid:`, `serial:`, `mac:`), lower case except the
/// serial; firmware placeholders ("Not Specified", an all-zero UUID, ...: core's one list,
/// `lifeboat_core::identity::machine::is_placeholder`) are skipped. None
/// when nothing names the machine (then no journal can be kept).
pub fn machine_key(
    product_uuid: Option<&str>,
    product_serial: Option<&str>,
    mac: Option<&str>,
) -> Option<String> {
    let real = lifeboat_core::identity::machine::meaningful_value;
    if let Some(u) = real(product_uuid) {
        return Some(format!("uuid:{}", u.to_ascii_lowercase()));
    }
    if let Some(s) = real(product_serial) {
        return Some(format!("serial:{s}"));
    }
    real(mac).map(|m| format!("mac:{}", m.to_ascii_lowercase()))
}

/// The object key of the journal of `host_id`'s restores onto the machine `machine_key`.
pub fn key(fleet: &FleetKey, host_id: &str, machine_key: &str) -> String {
    layout::restore_journal_key(host_id, &fleet.machine_id(machine_key))
}

/// What to do about a damaged journal object.
fn damaged(key: &str, e: RepoError) -> RepoError {
    match e {
        RepoError::Damaged(why) => RepoError::Damaged(format!(
            "the restore journal {key} is damaged ({why}): remove that object from the repository to start a new journal (the record of unfinished and done restores of this machine is lost with it)"
        )),
        e => e,
    }
}

/// The journal's records, oldest first (none when the object does not exist yet).
pub fn read(
    repo: &Repository,
    fleet: &FleetKey,
    host_id: &str,
    machine_key: &str,
) -> Result<Vec<JournalRecord>, RepoError> {
    let key = key(fleet, host_id, machine_key);
    let sealed = match repo.backend.get(&key) {
        Ok(d) => d,
        Err(BackendError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let stored: Stored = fleet
        .open(&sealed, &key)
        .and_then(|plain| layout::unpack(&plain, &key))
        .map_err(|e| damaged(&key, e))?;
    if stored.format != FORMAT {
        return Err(RepoError::Format(format!(
            "the restore journal {key} is of format {}, this version reads {FORMAT}: use a newer recovery image",
            stored.format
        )));
    }
    Ok(stored.records)
}

/// Appends `records` (read, add, keep what [`bounded`] keeps, write the whole object) and
/// returns how many the journal holds now. With no records it writes the journal back as it is: whether the repository
/// takes the journal's writes is known before a restore relies on it.
pub fn append(
    repo: &Repository,
    fleet: &FleetKey,
    host_id: &str,
    machine_key: &str,
    records: &[JournalRecord],
) -> Result<usize, RepoError> {
    let mut all = read(repo, fleet, host_id, machine_key)?;
    all.extend_from_slice(records);
    let key = key(fleet, host_id, machine_key);
    let stored = Stored {
        format: FORMAT,
        records: bounded(all, KEEP_RESTORES),
    };
    let sealed = fleet.seal(&layout::pack(&stored)?, &key)?;
    repo.backend.put(&key, &sealed, None)?;
    Ok(stored.records.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_named_by_its_uuid_else_its_serial_else_the_mac() {
        let mac = Some("52:54:00:12:34:56");
        assert_eq!(
            machine_key(
                Some("7A0C51E2-9D3B-4C8E-B1F6-2E4D8A9C0B17"),
                Some("S1"),
                mac
            )
            .as_deref(),
            Some("uuid:7a0c51e2-9d3b-4c8e-b1f6-2e4d8a9c0b17")
        );
        assert_eq!(
            machine_key(
                Some("00000000-0000-0000-0000-000000000000"),
                Some("LB-1"),
                mac
            )
            .as_deref(),
            Some("serial:LB-1")
        );
        assert_eq!(
            machine_key(
                Some("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"),
                Some("To Be Filled By O.E.M."),
                Some("52:54:00:AB:CD:EF")
            )
            .as_deref(),
            Some("mac:52:54:00:ab:cd:ef")
        );
        assert_eq!(machine_key(None, Some(" "), None), None);
    }
}
