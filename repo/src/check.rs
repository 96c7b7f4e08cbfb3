//! Check: every index opens, every chunk it references exists, and with `read_data` every
//! chunk of the indexes this identity can open decrypts and matches its id. Damage is named
//! (which object, which generation) and the check goes on to the end.

use crate::crypto;
use crate::layout;
use crate::repository::{Keys, Repository};
use crate::RepoError;
use std::collections::{BTreeMap, HashSet};

/// What check found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    pub indexes: u64,
    /// Indexes whose secret part this identity cannot open (other hosts'): their chunks were
    /// checked for existence only.
    pub not_readable: u64,
    pub chunks: u64,
    pub chunks_read: u64,
    /// One line per damaged object.
    pub damaged: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Checks the repository.
pub fn check(repo: &Repository, keys: &Keys, read_data: bool) -> Result<CheckReport, RepoError> {
    repo.check_fleet(&keys.fleet)?;
    let mut report = CheckReport::default();
    let present: HashSet<String> = repo
        .backend
        .list(layout::CHUNKS)?
        .iter()
        .filter_map(|o| layout::chunk_id_of(&o.key).map(str::to_string))
        .collect();
    report.chunks = present.len() as u64;
    // chunk id -> (key, len, generation naming it) for the chunks whose keys we hold.
    let mut readable: BTreeMap<String, ([u8; 32], u64, String)> = BTreeMap::new();
    let mut missing_named = HashSet::new();
    for (h, g, _) in repo.indexes()? {
        report.indexes += 1;
        let name = format!("hosts/{h}/{g}");
        let refs = match repo.read_refs(&keys.fleet, &h, &g) {
            Ok(r) => r,
            Err(e) => {
                report.damaged.push(format!("index {name}: {e}"));
                continue;
            }
        };
        match repo.read_index(keys, &h, &g) {
            Ok(Some(idx)) => {
                for c in idx.chunks {
                    readable.entry(c.id).or_insert((c.key, c.len, name.clone()));
                }
            }
            Ok(None) => report.not_readable += 1,
            Err(e) => report.damaged.push(format!("index {name}: {e}")),
        }
        for id in refs.ids {
            if !present.contains(&id) && missing_named.insert((id.clone(), name.clone())) {
                report
                    .damaged
                    .push(format!("chunk {id} of generation {name} is missing"));
            }
        }
    }
    if read_data {
        for (id, (key, len, name)) in &readable {
            if !present.contains(id) {
                continue;
            }
            report.chunks_read += 1;
            let r = repo
                .backend
                .get(&layout::chunk_key(id))
                .map_err(RepoError::from)
                .and_then(|obj| crypto::decrypt_chunk(&keys.fleet, key, id, *len, &obj));
            if let Err(e) = r {
                report.damaged.push(format!("{e} (generation {name})"));
            }
        }
    }
    Ok(report)
}
