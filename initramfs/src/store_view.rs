//! The recovery image's view of a Lifeboat store: its generations with their manifests, the
//! journal of restores, and reading (verifying, extracting) a generation's archive.
//! A thin layer over lifeboat_core::{store, archive, codec, restore}.

use lifeboat_core::archive::Manifest;
use lifeboat_core::progress::Progress;
use std::path::{Path, PathBuf};

pub struct Generation {
    pub id: String,
    pub archive: PathBuf,
    pub manifest: Manifest,
    /// Size of the archive file in bytes.
    pub size: u64,
}

pub struct StoreListing {
    pub generations: Vec<Generation>,
    /// The journal shows "restore-started" without a later "restore-done".
    pub interrupted: bool,
}

/// Lists the store mounted at `dir`; Ok(None) when `dir` holds no Lifeboat store.
pub fn list(_dir: &Path) -> Result<Option<StoreListing>, String> {
    Ok(None)
}

/// Appends an event ("restore-started", "restore-done", "restore-failed") to the journal.
pub fn journal(_dir: &Path, _event: &str, _generation: &str, _detail: &str) -> Result<(), String> {
    Ok(())
}

/// Reads the whole archive, checking every checksum and the trailer.
pub fn verify(_archive: &Path, _progress: &dyn Progress) -> Result<String, String> {
    Err("this build of lifeboat-init cannot read Lifeboat archives".into())
}

/// Extracts the archive beneath `target`.
pub fn extract(_archive: &Path, _target: &Path, _progress: &dyn Progress) -> Result<String, String> {
    Err("this build of lifeboat-init cannot read Lifeboat archives".into())
}
