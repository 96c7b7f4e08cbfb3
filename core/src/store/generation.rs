//! Generations: one committed backup each, with its metadata.

use super::layout::META;
use crate::archive::manifest::Manifest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How far a generation was checked when it was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GenerationState {
    /// Every checksum and the trailer were verified by reading the archive back.
    Verified,
    /// Verified, but some files kept changing while they were read (complete, not consistent).
    Inconsistent,
    /// A plain tar (e.g. `xe host-backup` output): read fully as a valid tar, but it carries
    /// no checksums.
    Unchecked,
}

impl GenerationState {
    pub fn name(self) -> &'static str {
        match self {
            GenerationState::Verified => "verified",
            GenerationState::Inconsistent => "inconsistent",
            GenerationState::Unchecked => "unchecked",
        }
    }
}

/// Where a generation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `lifeboat backup` of the live root.
    Backup,
    /// `lifeboat host-restore` of an uploaded file.
    HostRestore,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Backup => "backup",
            Origin::HostRestore => "host-restore",
        }
    }
}

/// `generations/<id>/meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationMeta {
    pub id: String,
    /// RFC 3339 UTC time the backup was taken (the manifest's), else the commit time.
    pub created: String,
    /// RFC 3339 UTC time the generation was committed.
    pub committed: String,
    pub origin: Origin,
    pub host: String,
    pub product_version: Option<String>,
    /// Bytes of the archive file (compressed).
    pub size: u64,
    /// Regular files in the archive.
    pub files: u64,
    /// Entries of every kind.
    pub entries: u64,
    /// Logical bytes of file content.
    pub bytes: u64,
    /// "zstd", "gzip", "xz" or "none".
    pub codec: String,
    /// File name of the archive inside the generation directory.
    pub archive: String,
    pub state: GenerationState,
    /// Files that kept changing while they were read.
    #[serde(default)]
    pub changed_files: Vec<String>,
    /// The archive's manifest (None for a plain tar).
    pub manifest: Option<Manifest>,
}

/// A committed generation.
#[derive(Debug, Clone)]
pub struct Generation {
    pub id: String,
    /// `generations/<id>`.
    pub dir: PathBuf,
    pub meta: GenerationMeta,
}

impl Generation {
    /// Path of the archive file.
    pub fn archive_path(&self) -> PathBuf {
        self.dir.join(&self.meta.archive)
    }

    pub(crate) fn load(dir: &Path) -> Result<Self, super::StoreError> {
        let meta_path = dir.join(META);
        let raw = std::fs::read(&meta_path).map_err(|e| super::StoreError::io(&meta_path, e))?;
        let meta: GenerationMeta = serde_json::from_slice(&raw).map_err(|e| {
            super::StoreError::Invalid(format!("{} is not valid: {e}", meta_path.display()))
        })?;
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Generation {
            id,
            dir: dir.to_path_buf(),
            meta,
        })
    }
}
