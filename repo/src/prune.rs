//! Prune: forget old generations per host, then remove unreferenced chunks in two phases,
//! safely while other hosts push.
//!
//! Phase one (mark): chunks no index references are listed in a new `prune/<t>.marks`
//! object; nothing is deleted. Phase two, on a later run at least `grace_seconds` after the
//! mark's time (the store's own Last-Modified of the marks object): the references are read
//! again from every index, and a marked chunk is deleted only if still unreferenced AND its
//! object is older than the mark. Then the marks object is deleted.
//!
//! Why a concurrent push is safe, without conditional writes or locks: a push reads the
//! marks before it lists `chunks/`, and uploads again every marked chunk it needs (a fresh
//! object is newer than the mark, so phase two keeps it). A chunk marked after the push read
//! the marks may be one it found present and skipped; but the push commits its index only if
//! it ran for less than the grace period, so its index exists before that mark ripens, and
//! phase two, which reads the indexes after deciding which marks are ripe, sees the
//! reference. Clock skew between hosts only matters against the grace period (a day by
//! default), not between objects: both times compared in phase two are the store's.

use crate::backend::BackendError;
use crate::crypto::FleetKey;
use crate::layout::{self, parse_index_key};
use crate::repository::Repository;
use crate::RepoError;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

/// Which generations to keep per host (restic's and Proxmox Backup Server's rules): the
/// newest `last`, and the newest of each of the last `daily` days, `weekly` weeks and
/// `monthly` months that have one. All zero keeps every generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

/// What a prune run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Indexes deleted ("hosts/<id>/<gen>").
    pub forgotten: Vec<String>,
    /// Chunks newly marked unreferenced.
    pub marked: u64,
    /// Chunks deleted (marked by an earlier run, still unreferenced).
    pub deleted: u64,
    /// Marked chunks kept because they were referenced again or uploaded after their mark.
    pub kept_again: u64,
    /// Objects prune would delete but Object Lock still retains: (what, retained until).
    /// They are left in place (a generation stays listed and restorable) and tried again by
    /// a later run.
    pub retained: Vec<(String, String)>,
}

/// Days since 1970-01-01 of a generation id (`YYYYMMDDTHHMMSSZ[-n]`).
fn day_of(id: &str) -> Option<i64> {
    let y: i64 = id.get(0..4)?.parse().ok()?;
    let m: i64 = id.get(4..6)?.parse().ok()?;
    let d: i64 = id.get(6..8)?.parse().ok()?;
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146097 + doe - 719468)
}

/// Seconds since 1970 (UTC) of a generation id (`YYYYMMDDTHHMMSSZ[-n]`), for ages.
pub fn unix_of_id(id: &str) -> Option<i64> {
    if id.get(8..9)? != "T" {
        return None;
    }
    let h: i64 = id.get(9..11)?.parse().ok()?;
    let mi: i64 = id.get(11..13)?.parse().ok()?;
    let s: i64 = id.get(13..15)?.parse().ok()?;
    Some(day_of(id)? * 86_400 + h * 3600 + mi * 60 + s)
}

/// The generations of one host to keep, from their ids (oldest first in, a set out).
pub fn select_keep(ids: &[String], keep: Keep) -> HashSet<String> {
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort_by_key(|i| lifeboat_core::store::layout::id_sort_key(i));
    sorted.reverse();
    if keep == Keep::default() {
        return ids.iter().cloned().collect();
    }
    let mut out: HashSet<String> = sorted
        .iter()
        .take(keep.last)
        .map(|s| s.to_string())
        .collect();
    let mut bucket = |n: usize, f: &dyn Fn(&str) -> Option<i64>| {
        let mut seen = Vec::new();
        for id in &sorted {
            if seen.len() >= n {
                break;
            }
            let Some(b) = f(id) else { continue };
            if !seen.contains(&b) {
                seen.push(b);
                out.insert(id.to_string());
            }
        }
    };
    bucket(keep.daily, &day_of);
    // Weeks from Monday: 1970-01-01 was a Thursday.
    bucket(keep.weekly, &|id| day_of(id).map(|d| (d + 3).div_euclid(7)));
    bucket(keep.monthly, &|id| id.get(0..6)?.parse().ok());
    out
}

/// Runs prune: forgets generations by `keep` (per host, every host), deletes ripe marked
/// chunks, marks newly unreferenced ones.
pub fn prune(
    repo: &Repository,
    fleet: &FleetKey,
    keep: Keep,
    now: SystemTime,
) -> Result<PruneReport, RepoError> {
    repo.check_fleet(fleet)?;
    let mut report = PruneReport::default();
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (h, g, _) in repo.indexes()? {
        by_host.entry(h).or_default().push(g);
    }
    for (h, gens) in &by_host {
        let kept = select_keep(gens, keep);
        for g in gens.iter().filter(|g| !kept.contains(*g)) {
            match repo.backend.delete(&layout::index_key(h, g)) {
                Ok(()) => {}
                Err(BackendError::Retained { until, .. }) => {
                    report.retained.push((format!("hosts/{h}/{g}"), until));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            // After the index: a generation never lacks its pool database.
            match repo.backend.delete(&layout::pool_database_key(h, g)) {
                Ok(()) => {}
                Err(BackendError::Retained { key, until }) => report.retained.push((key, until)),
                Err(e) => return Err(e.into()),
            }
            report.forgotten.push(format!("hosts/{h}/{g}"));
        }
    }
    // Which marks are ripe is decided BEFORE the references are read (see the module doc).
    let grace = Duration::from_secs(repo.config.grace_seconds);
    let marks: Vec<_> = repo
        .backend
        .list(layout::PRUNE)?
        .into_iter()
        .filter(|o| o.key.ends_with(".marks"))
        .collect();
    let referenced = referenced(repo, fleet)?;
    let chunks: BTreeMap<String, Option<SystemTime>> = repo
        .backend
        .list(layout::CHUNKS)?
        .into_iter()
        .filter_map(|o| layout::chunk_id_of(&o.key).map(|id| (id.to_string(), o.modified)))
        .collect();
    let mut still_marked = HashSet::new();
    let mut gone = HashSet::new();
    for m in &marks {
        let ids: Vec<String> = layout::unpack(&repo.backend.get(&m.key)?, &m.key)?;
        let Some(marked_at) = m.modified else {
            return Err(RepoError::Format(format!(
                "the store reports no time for {}",
                m.key
            )));
        };
        let ripe = marked_at + grace <= now;
        if !ripe {
            still_marked.extend(ids);
            continue;
        }
        for id in ids {
            match chunks.get(&id) {
                None => {}
                Some(Some(t)) if !referenced.contains(&id) && *t < marked_at => {
                    match repo.backend.delete(&layout::chunk_key(&id)) {
                        Ok(()) => {
                            report.deleted += 1;
                            gone.insert(id);
                        }
                        // Left unreferenced: this run's new mark names it again.
                        Err(BackendError::Retained { key, until }) => {
                            report.retained.push((key, until))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(_) => report.kept_again += 1,
            }
        }
        repo.backend.delete(&m.key)?;
    }
    let unreferenced: Vec<String> = chunks
        .keys()
        .filter(|id| {
            !referenced.contains(*id) && !still_marked.contains(*id) && !gone.contains(*id)
        })
        .cloned()
        .collect();
    if !unreferenced.is_empty() {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let key = format!(
            "{}{secs:012}-{:08x}.marks",
            layout::PRUNE,
            rand::random::<u32>()
        );
        repo.backend
            .put(&key, &layout::pack(&unreferenced)?, None)?;
        report.marked = unreferenced.len() as u64;
    }
    Ok(report)
}

/// Every chunk id any index references. An index that cannot be read stops prune: deleting
/// without knowing its references could delete a live generation's chunks.
pub fn referenced(repo: &Repository, fleet: &FleetKey) -> Result<HashSet<String>, RepoError> {
    let mut out = HashSet::new();
    for o in repo.backend.list(layout::HOSTS)? {
        let Some((h, g)) = parse_index_key(&o.key) else {
            continue;
        };
        let refs = repo.read_refs(fleet, h, g).map_err(|e| {
            RepoError::Damaged(format!("{e} (prune deletes nothing while an index cannot be read: run `lifeboat repo check`)"))
        })?;
        out.extend(refs.ids);
    }
    Ok(out)
}
