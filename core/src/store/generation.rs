//! Generations: one committed backup each, with its metadata.

use super::layout::META;
use super::StoreError;
use crate::archive::manifest::{Counts, Manifest, Trailer};
use crate::archive::reader::ArchiveReader;
use crate::archive::verify::VerifyReport;
use crate::codec::{self, Codec};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
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
    /// The trailer's `entries_digest` (Lifeboat archives; absent in older meta.json files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_digest: Option<String>,
    /// The pool database dump (`xe pool-dump-database`) kept beside the archive, when the
    /// backup took one (absent in older meta.json files and on hosts without `xe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_database: Option<PoolDatabase>,
}

/// The pool database member of a generation: `generations/<id>/pool-database`, 0600. Every
/// reader checks its size and BLAKE3 against this record ([`Generation::read_pool_database`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDatabase {
    /// File name inside the generation directory ([`super::layout::POOL_DATABASE`]).
    pub file: String,
    /// Bytes of the dump.
    pub size: u64,
    /// BLAKE3 of the dump, hex.
    pub blake3: String,
}

impl PoolDatabase {
    /// The record of a dump's bytes.
    pub fn of(data: &[u8]) -> Self {
        PoolDatabase {
            file: super::layout::POOL_DATABASE.to_string(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
        }
    }

    /// Why `data` is not the dump this records, if it is not.
    pub fn mismatch(&self, data: &[u8]) -> Option<String> {
        if data.len() as u64 != self.size {
            return Some(format!(
                "the pool database holds {} bytes, meta.json records {}",
                data.len(),
                self.size
            ));
        }
        let hash = blake3::hash(data).to_hex().to_string();
        (hash != self.blake3).then(|| {
            format!(
                "the pool database's BLAKE3 is {hash}, meta.json records {} (its content changed)",
                self.blake3
            )
        })
    }
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

    /// Opens the archive file, checking first what can be checked without reading it: it is a
    /// regular file of the size meta.json records.
    pub fn open_archive(&self) -> Result<File, StoreError> {
        let path = self.archive_path();
        let f = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        let len = f.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        if len != self.meta.size {
            return Err(self.mismatch(format!(
                "meta.json records an archive of {} bytes, {} holds {len} bytes",
                self.meta.size,
                path.display()
            )));
        }
        Ok(f)
    }

    /// Opens the archive for reading through `wrap` (e.g. a progress counter) and reads up to
    /// its first entry, checked against meta.json (see [`Self::check_start`]). Read every
    /// entry, then call [`Self::check_reader_end`] before calling the generation sound or the
    /// restore done. Every consumer (verify, restore, the recovery image) reads a generation
    /// this way.
    pub fn open_verified_reader<W, F>(
        &self,
        wrap: F,
    ) -> Result<(Codec, ArchiveReader<Box<dyn Read + Send>>), StoreError>
    where
        W: Read + Send + 'static,
        F: FnOnce(File) -> W,
    {
        let f = self.open_archive()?;
        self.open_verified_stream(wrap(f), &self.archive_path())
    }

    /// [`Self::open_verified_reader`] over the archive's bytes from elsewhere (a repository's
    /// chunks, reassembled): `path` names the source in errors.
    pub fn open_verified_stream<R: Read + Send + 'static>(
        &self,
        src: R,
        path: &Path,
    ) -> Result<(Codec, ArchiveReader<Box<dyn Read + Send>>), StoreError> {
        // The decoder refuses a stream that is no archive at all, compressed or not (its
        // start erased, say): damage at rest. Reading the file can fail too.
        let (codec, tar) =
            codec::decoder(src).map_err(|e| match crate::archive::ArchiveError::from(e) {
                crate::archive::ArchiveError::Io(io) => StoreError::io(path, io),
                source => StoreError::Archive {
                    generation: self.id.clone(),
                    source,
                },
            })?;
        self.check_codec(codec)?;
        let mut reader = ArchiveReader::new(tar);
        let manifest = reader
            .read_manifest()
            .map_err(|source| StoreError::Archive {
                generation: self.id.clone(),
                source,
            })?
            .cloned();
        self.check_start(codec, reader.is_lifeboat(), manifest.as_ref())?;
        Ok((codec, reader))
    }

    /// The codec found in the archive's magic is the one meta.json records.
    pub fn check_codec(&self, codec: Codec) -> Result<(), StoreError> {
        if codec.name() != self.meta.codec {
            return Err(self.mismatch(format!(
                "meta.json records a {} archive, the file reads as {}{}",
                self.meta.codec,
                codec.name(),
                if codec == Codec::None {
                    " (its compression header is gone)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    /// Before the first entry is used: the codec, the kind of archive (a generation recorded
    /// as a Lifeboat archive reads with its manifest first) and the manifest itself equal
    /// what meta.json records.
    pub fn check_start(
        &self,
        codec: Codec,
        is_lifeboat: bool,
        manifest: Option<&Manifest>,
    ) -> Result<(), StoreError> {
        self.check_codec(codec)?;
        let recorded_lifeboat = self.meta.state != GenerationState::Unchecked;
        if recorded_lifeboat && !is_lifeboat {
            return Err(self.mismatch(
                "meta.json records a Lifeboat archive, but the archive does not start with its manifest".into(),
            ));
        }
        if !recorded_lifeboat && is_lifeboat {
            return Err(self.mismatch(
                "meta.json records a plain tar archive, but the archive reads as a Lifeboat archive".into(),
            ));
        }
        if let (Some(recorded), Some(read)) = (&self.meta.manifest, manifest) {
            // Which backup this is: its time, host, format, tool, inventory, excludes and
            // codec. The machine and source identity are left out: the QEMU tests rewrite
            // them in meta.json to stand for the guest (tests/qemu/lib.sh lb_store_backup).
            let which = |m: &Manifest| {
                (
                    m.format_version,
                    m.tool_version.clone(),
                    m.created.clone(),
                    m.hostname.clone(),
                    m.inventory.clone(),
                    m.excludes.clone(),
                    m.includes.clone(),
                    m.codec.clone(),
                )
            };
            if which(recorded) != which(read) {
                return Err(self.mismatch(format!(
                    "the archive's manifest (host '{}', created {}) is not the one meta.json records (host '{}', created {})",
                    read.hostname, read.created, recorded.hostname, recorded.created
                )));
            }
        }
        Ok(())
    }

    /// After the last entry: everything [`Self::check_start`] checks, plus (Lifeboat) the
    /// trailer was read last and its digest is the recorded one, and the counts equal
    /// meta.json's. An archive with no entries is never a sound generation.
    pub fn check_end(&self, read: &ReadSummary<'_>) -> Result<(), StoreError> {
        self.check_start(read.codec, read.is_lifeboat, read.manifest)?;
        if read.is_lifeboat {
            let Some(trailer) = read.trailer else {
                return Err(
                    self.mismatch("the archive ended without its trailer (it is cut short)".into())
                );
            };
            if let Some(d) = &self.meta.entries_digest {
                if *d != trailer.entries_digest {
                    return Err(self.mismatch(format!(
                        "the trailer's entries digest {} is not the recorded {d}",
                        trailer.entries_digest
                    )));
                }
            }
        }
        let c = read.counts;
        let m = &self.meta;
        if c.entries == 0 {
            return Err(self.mismatch(format!(
                "the archive holds no entries, meta.json records {}",
                m.entries
            )));
        }
        if (c.entries, c.files, c.bytes) != (m.entries, m.files, m.bytes) {
            return Err(self.mismatch(format!(
                "read {} entries, {} files, {} bytes; meta.json records {} entries, {} files, {} bytes",
                c.entries, c.files, c.bytes, m.entries, m.files, m.bytes
            )));
        }
        Ok(())
    }

    /// [`Self::check_end`] for a reader that has returned its last entry.
    pub fn check_reader_end<R: Read>(
        &self,
        codec: Codec,
        reader: &ArchiveReader<R>,
    ) -> Result<(), StoreError> {
        self.check_end(&ReadSummary {
            codec,
            is_lifeboat: reader.is_lifeboat(),
            manifest: reader.manifest(),
            trailer: reader.trailer(),
            counts: reader.counts(),
        })
    }

    /// The pool database dump of this generation, checked against its record (size and
    /// BLAKE3); None when the generation has none.
    pub fn read_pool_database(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(rec) = &self.meta.pool_database else {
            return Ok(None);
        };
        let path = self.dir.join(&rec.file);
        let data = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        if let Some(why) = rec.mismatch(&data) {
            return Err(self.mismatch(format!("{why}: {} is damaged", path.display())));
        }
        Ok(Some(data))
    }

    fn mismatch(&self, what: String) -> StoreError {
        StoreError::Mismatch {
            generation: self.id.clone(),
            what,
        }
    }

    /// The generation in `dir` (`generations/<id>`), from its meta.json.
    pub fn load(dir: &Path) -> Result<Self, super::StoreError> {
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

/// What reading a generation's archive to its end found, to compare with its meta.json.
#[derive(Debug, Clone, Copy)]
pub struct ReadSummary<'a> {
    pub codec: Codec,
    pub is_lifeboat: bool,
    pub manifest: Option<&'a Manifest>,
    pub trailer: Option<&'a Trailer>,
    pub counts: &'a Counts,
}

impl<'a> From<&'a VerifyReport> for ReadSummary<'a> {
    fn from(r: &'a VerifyReport) -> Self {
        ReadSummary {
            codec: r.codec,
            is_lifeboat: r.is_lifeboat,
            manifest: r.manifest.as_ref(),
            trailer: r.trailer.as_ref(),
            counts: &r.counts,
        }
    }
}
