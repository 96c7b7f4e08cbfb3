//! The backup store in the backup partition: generations, staging, atomic commit, lock,
//! journal, pruning. The layout is described in [`layout`].
//!
//! Crash safety: a generation is written into `staging/<id>/`, fsynced (files and
//! directories) and verified by the caller, then committed by one `rename` into
//! `generations/` followed by an fsync of both directories. A power cut or kill -9 at any
//! moment leaves every committed generation intact; debris in `staging/` is removed by the
//! next writer ([`Store::remove_leftovers`]). Pruning renames a generation back into
//! `staging/` before deleting it, so a half-deleted generation is never listed.
//!
//! Typical writer:
//! ```ignore
//! let mounted = store::mount::mount_device(dev, false)?;
//! let store = Store::open(mounted.dir())?;
//! let lock = store.lock("backup")?;
//! store.remove_leftovers(&lock)?;
//! let staging = store.begin(&lock, "zst")?;
//! let file = staging.create_archive()?;          // write and fsync it
//! // ... verify by reading staging.archive_path() back ...
//! let generation = store.commit(&lock, staging, meta)?;
//! store.prune(&lock, keep, &generation.id)?;
//! ```
//! Reader (verify, restore, recovery image): `Store::open_read_only(dir)?.generations()?`
//! (or `find(id)`), then [`Generation::open_verified_reader`]: the archive is opened and
//! checked against meta.json (size, codec, Lifeboat or plain tar, manifest) before its first
//! entry is used; after the last entry, [`Generation::check_reader_end`] (or
//! [`Generation::check_end`] with a [`ReadSummary`]) checks the trailer digest and the counts.
//! Until it returns Ok the generation is not sound. `append_journal` / `last_restore` for the
//! restore's record. A generation is copied to another store or to a file, verified, by
//! [`copy`].

pub mod copy;
pub mod fsync;
pub mod generation;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod mount;
pub mod space;
pub mod xentree;

pub use copy::{Copied, CopyError};
pub use generation::{
    Generation, GenerationMeta, GenerationState, Origin, PoolDatabase, ReadSummary,
};
pub use journal::{events, Journal, JournalRecord};
pub use layout::Marker;
pub use lock::StoreLock;
pub use mount::{mount_device, Mounted};
pub use space::Space;
pub use xentree::XenTreeBackup;

use crate::identity::clock::{self, UtcTime};
use layout::{GENERATIONS, JOURNAL, LOCK, MARKER, META, STAGING, STORE_FORMAT};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Errors of the store. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} holds no Lifeboat store (no {MARKER}); create one with `lifeboat init-store --backup-device DEV`")]
    NotAStore(PathBuf),
    #[error("the backup store is in use by {holder}; wait for it to finish, or stop it")]
    Busy { holder: String },
    #[error("{0}")]
    NotFound(String),
    #[error("the store at {0} is open read-only")]
    ReadOnly(PathBuf),
    #[error("cannot mount the backup device {device}: {reason}")]
    Mount { device: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// A committed generation does not read as what its meta.json records: the archive in the
    /// store is damaged (or was replaced).
    #[error("generation {generation} is damaged: {what}. Do not restore it; `lifeboat verify` checks the other generations, restore a sound one")]
    Mismatch { generation: String, what: String },
    /// The archive of a generation could not be read.
    #[error("generation {generation} is damaged: {source}. Do not restore it; `lifeboat verify` checks the other generations, restore a sound one")]
    Archive {
        generation: String,
        source: crate::archive::ArchiveError,
    },
    /// The backup partition is (or would be) full.
    #[error("no space left on the backup partition at {}: {}{} free. Remove old generations (`lifeboat list` shows them) or use a larger backup partition", path.display(), needed_text(*needed), crate::progress::human_bytes(*available))]
    NoSpace {
        path: PathBuf,
        /// Bytes needed (an estimate, 0 when unknown).
        needed: u64,
        /// Bytes free when it was found.
        available: u64,
    },
}

impl StoreError {
    /// An I/O error on `path`; "no space left on device" becomes [`StoreError::NoSpace`].
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return StoreError::NoSpace {
                path: path.to_path_buf(),
                needed: 0,
                available: space::space_of_raw(path).map(|s| s.available).unwrap_or(0),
            };
        }
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the store ran out of space.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::NoSpace { .. })
    }
}

fn needed_text(needed: u64) -> String {
    if needed == 0 {
        String::new()
    } else {
        format!("about {} needed, ", crate::progress::human_bytes(needed))
    }
}

/// One row of `lifeboat list`: a Lifeboat generation or a XenServer backup tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupSummary {
    /// "lifeboat" or "xenserver-tree".
    pub kind: String,
    pub id: String,
    pub created: String,
    pub host: String,
    pub product_version: Option<String>,
    /// Bytes on disk.
    pub size: u64,
    pub files: Option<u64>,
    pub codec: String,
    pub state: String,
    /// "backup", "host-restore", "xe-host-restore".
    pub origin: String,
    /// Bytes of the pool database dump kept with it (None: no dump).
    pub pool_database: Option<u64>,
}

impl Generation {
    /// The row `lifeboat list` shows for it.
    pub fn summary(&self) -> BackupSummary {
        BackupSummary {
            kind: "lifeboat".into(),
            id: self.id.clone(),
            created: self.meta.created.clone(),
            host: self.meta.host.clone(),
            product_version: self.meta.product_version.clone(),
            size: self.meta.size,
            files: Some(self.meta.files),
            codec: self.meta.codec.clone(),
            state: self.meta.state.name().into(),
            origin: self.meta.origin.name().into(),
            pool_database: self.meta.pool_database.as_ref().map(|p| p.size),
        }
    }
}

/// A Lifeboat store rooted at a directory (the mounted backup partition).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    writable: bool,
}

/// A generation being written in `staging/<id>/`. Dropped without [`Store::commit`], its
/// directory is removed.
#[derive(Debug)]
pub struct Staging {
    id: String,
    dir: PathBuf,
    archive: PathBuf,
    done: bool,
}

impl Staging {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Where the archive goes.
    pub fn archive_path(&self) -> &Path {
        &self.archive
    }
    /// File name of the archive.
    pub fn archive_name(&self) -> String {
        self.archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    /// Creates the archive file (0600). The caller writes it and calls `sync_all`.
    pub fn create_archive(&self) -> Result<std::fs::File, StoreError> {
        fsync::create_private(&self.archive).map_err(|e| StoreError::io(&self.archive, e))
    }
    /// Where the pool database dump goes (`xe pool-dump-database file-name=` this).
    pub fn pool_database_path(&self) -> PathBuf {
        self.dir.join(layout::POOL_DATABASE)
    }
    /// Seals the pool database dump at [`Self::pool_database_path`] (written by `xe` or by
    /// [`Self::write_pool_database`]): mode 0600, fsynced, read back and recorded (size and
    /// BLAKE3 of what is on the disk) for meta.json.
    pub fn seal_pool_database(&self) -> Result<PoolDatabase, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.pool_database_path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::io(&path, e))?;
        fsync::fsync_file(&path).map_err(|e| StoreError::io(&path, e))?;
        let data = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        if data.is_empty() {
            return Err(StoreError::Invalid(format!(
                "the pool database dump {} is empty",
                path.display()
            )));
        }
        Ok(PoolDatabase::of(&data))
    }
    /// Writes a pool database dump (a copy of another generation's), sealed as by
    /// [`Self::seal_pool_database`]; it must read back as `expected`.
    pub fn write_pool_database(
        &self,
        data: &[u8],
        expected: &PoolDatabase,
    ) -> Result<PoolDatabase, StoreError> {
        let path = self.pool_database_path();
        fsync::write_private(&path, data).map_err(|e| StoreError::io(&path, e))?;
        let sealed = self.seal_pool_database()?;
        if sealed.size != expected.size || sealed.blake3 != expected.blake3 {
            return Err(StoreError::Invalid(format!(
                "the pool database written to {} reads back as another ({} bytes, BLAKE3 {})",
                path.display(),
                sealed.size,
                sealed.blake3
            )));
        }
        Ok(sealed)
    }
    /// Removes the staging directory now (also done on drop).
    pub fn discard(mut self) {
        self.remove();
    }
    fn remove(&mut self) {
        if !self.done {
            self.done = true;
            let _ = std::fs::remove_dir_all(&self.dir);
            if let Some(parent) = self.dir.parent() {
                let _ = fsync::fsync_dir(parent);
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.remove();
    }
}

impl Store {
    /// True when `root` holds a store marker.
    pub fn is_store(root: &Path) -> bool {
        root.join(MARKER).is_file()
    }

    /// Creates the layout on a filesystem root (normally a freshly made one), fsynced.
    /// An existing store is opened instead.
    pub fn create(root: &Path) -> Result<Store, StoreError> {
        if Self::is_store(root) {
            return Self::open(root);
        }
        for d in [GENERATIONS, STAGING] {
            let p = root.join(d);
            fsync::ensure_dir(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        let marker = Marker {
            format: STORE_FORMAT,
            created: clock::now_rfc3339(),
            tool_version: crate::VERSION.to_string(),
        };
        let text = serde_json::to_vec_pretty(&marker)
            .map_err(|e| StoreError::Invalid(format!("cannot encode the marker: {e}")))?;
        // The marker goes last: a store exists once its directories do.
        let tmp = root.join(format!("{MARKER}.tmp"));
        fsync::write_private(&tmp, &text).map_err(|e| StoreError::io(&tmp, e))?;
        let marker_path = root.join(MARKER);
        std::fs::rename(&tmp, &marker_path).map_err(|e| StoreError::io(&marker_path, e))?;
        fsync::fsync_dir(root).map_err(|e| StoreError::io(root, e))?;
        Self::open(root)
    }

    /// Opens a store for writing.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let mut s = Self::open_read_only(root)?;
        for d in [GENERATIONS, STAGING] {
            let p = root.join(d);
            fsync::ensure_dir(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        s.writable = true;
        Ok(s)
    }

    /// Opens a store for reading only (list, verify, restore from a read-only mount).
    pub fn open_read_only(root: &Path) -> Result<Store, StoreError> {
        let marker_path = root.join(MARKER);
        let raw = match std::fs::read(&marker_path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotAStore(root.to_path_buf()))
            }
            Err(e) => return Err(StoreError::io(&marker_path, e)),
        };
        let marker: Marker = serde_json::from_slice(&raw).map_err(|e| {
            StoreError::Invalid(format!("{} is damaged: {e}", marker_path.display()))
        })?;
        if marker.format > STORE_FORMAT {
            return Err(StoreError::Invalid(format!(
                "the store at {} has format {}, newer than this lifeboat ({}) understands; use a newer lifeboat",
                root.display(),
                marker.format,
                STORE_FORMAT
            )));
        }
        Ok(Store {
            root: root.to_path_buf(),
            writable: false,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The marker's content.
    pub fn marker(&self) -> Result<Marker, StoreError> {
        let p = self.root.join(MARKER);
        let raw = std::fs::read(&p).map_err(|e| StoreError::io(&p, e))?;
        serde_json::from_slice(&raw)
            .map_err(|e| StoreError::Invalid(format!("{} is damaged: {e}", p.display())))
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.writable {
            Ok(())
        } else {
            Err(StoreError::ReadOnly(self.root.clone()))
        }
    }

    /// Committed generations, oldest first. A generation whose meta.json cannot be read is
    /// skipped (it cannot be restored safely anyway).
    pub fn generations(&self) -> Result<Vec<Generation>, StoreError> {
        let dir = self.root.join(GENERATIONS);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| StoreError::io(&dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !layout::is_id(&name) {
                continue;
            }
            if let Ok(g) = Generation::load(&e.path()) {
                out.push(g);
            }
        }
        out.sort_by_key(|g| layout::id_sort_key(&g.id));
        Ok(out)
    }

    /// The generation committed last (by id: the order of commits). Not what a user means by
    /// "latest": that is [`Store::latest_of`].
    pub fn latest(&self) -> Result<Option<Generation>, StoreError> {
        Ok(self.generations()?.pop())
    }

    /// "latest" by the one rule ([`crate::plan::select_latest`]): the newest generation of
    /// `this` host by the time it was taken; other hosts' generations only by id.
    pub fn latest_of(&self, this: &crate::plan::ThisHost) -> Result<Generation, StoreError> {
        let gens = self.generations()?;
        crate::plan::select_latest(&gens, this)
            .cloned()
            .map_err(|e| {
                StoreError::NotFound(match e {
                    crate::plan::LatestError::None => format!(
                        "no generation 'latest': the store at {} holds none",
                        self.root.display()
                    ),
                    e => format!(
                        "no generation 'latest' in the store at {}: {e}; name one by its id",
                        self.root.display()
                    ),
                })
            })
    }

    /// A generation by id, or `latest` (of the running host, see [`Store::latest_of`]).
    pub fn find(&self, id: &str) -> Result<Generation, StoreError> {
        if id == "latest" {
            return self.latest_of(&crate::plan::ThisHost::running());
        }
        let gens = self.generations()?;
        let found = gens.iter().find(|g| g.id == id).cloned();
        found.ok_or_else(|| {
            let known: Vec<&str> = gens.iter().map(|g| g.id.as_str()).collect();
            StoreError::NotFound(if known.is_empty() {
                format!(
                    "no generation '{id}': the store at {} holds none",
                    self.root.display()
                )
            } else {
                format!(
                    "no generation '{id}' in the store at {} (it has: {})",
                    self.root.display(),
                    known.join(", ")
                )
            })
        })
    }

    /// Takes the writer lock (without waiting).
    pub fn lock(&self, command: &str) -> Result<StoreLock, StoreError> {
        self.check_writable()?;
        lock::acquire(&self.root.join(LOCK), command)
    }

    /// Removes what interrupted runs left in `staging/`; returns the names removed (a
    /// journal record is written for each).
    pub fn remove_leftovers(&self, _lock: &StoreLock) -> Result<Vec<String>, StoreError> {
        self.check_writable()?;
        let dir = self.root.join(STAGING);
        let mut removed = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        for e in rd {
            let e = e.map_err(|e| StoreError::io(&dir, e))?;
            let path = e.path();
            let res = if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            res.map_err(|err| StoreError::io(&path, err))?;
            removed.push(e.file_name().to_string_lossy().into_owned());
        }
        if !removed.is_empty() {
            fsync::fsync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
            for name in &removed {
                let _ =
                    self.append_journal(&JournalRecord::new(events::STAGING_REMOVED).detail(name));
            }
        }
        // A marker rename interrupted by a crash during init.
        let _ = std::fs::remove_file(self.root.join(format!("{MARKER}.tmp")));
        Ok(removed)
    }

    /// A fresh id for now, unique among generations and staging, and never sorting before
    /// an existing generation (a clock set back must not make the new one look older).
    fn new_id(&self) -> String {
        let mut base = UtcTime::now().compact();
        if let Ok(Some(last)) = self.latest() {
            let last_base = layout::id_sort_key(&last.id).0;
            if last_base > base {
                base = last_base;
            }
        }
        let taken = |id: &str| {
            self.root.join(GENERATIONS).join(id).exists()
                || self.root.join(STAGING).join(id).exists()
        };
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|n| format!("{base}-{n:02}"))
            .find(|id| !taken(id))
            .unwrap_or(base)
    }

    /// Starts a new generation in `staging/<id>/`, its archive named `backup.tar.<ext>`.
    pub fn begin(&self, _lock: &StoreLock, ext: &str) -> Result<Staging, StoreError> {
        self.check_writable()?;
        let id = self.new_id();
        let dir = self.root.join(STAGING).join(&id);
        fsync::ensure_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let staging_dir = self.root.join(STAGING);
        fsync::fsync_dir(&staging_dir).map_err(|e| StoreError::io(&staging_dir, e))?;
        Ok(Staging {
            archive: dir.join(layout::archive_name(ext)),
            id,
            dir,
            done: false,
        })
    }

    /// Commits a staged generation: writes meta.json, fsyncs the archive, meta and
    /// directory, renames it into `generations/`, fsyncs both parents, and journals it.
    /// The caller has verified the archive. `meta.id` and `meta.archive` are set here.
    pub fn commit(
        &self,
        lock: &StoreLock,
        staging: Staging,
        meta: GenerationMeta,
    ) -> Result<Generation, StoreError> {
        let event = match meta.origin {
            Origin::Backup => events::BACKUP_COMMITTED,
            Origin::HostRestore => events::HOST_RESTORE_COMMITTED,
        };
        self.commit_recorded(lock, staging, meta, JournalRecord::new(event))
    }

    /// [`Self::commit`] with the journal record to write (its generation set here), e.g.
    /// [`copy::COPIED`] for a generation copied from another store.
    pub fn commit_recorded(
        &self,
        _lock: &StoreLock,
        mut staging: Staging,
        mut meta: GenerationMeta,
        record: JournalRecord,
    ) -> Result<Generation, StoreError> {
        self.check_writable()?;
        meta.id = staging.id.clone();
        meta.archive = staging.archive_name();
        meta.committed = clock::now_rfc3339();
        let meta_path = staging.dir.join(META);
        let text = serde_json::to_vec_pretty(&meta)
            .map_err(|e| StoreError::Invalid(format!("cannot encode meta.json: {e}")))?;
        fsync::write_private(&meta_path, &text).map_err(|e| StoreError::io(&meta_path, e))?;
        fsync::fsync_file(&staging.archive).map_err(|e| StoreError::io(&staging.archive, e))?;
        fsync::fsync_dir(&staging.dir).map_err(|e| StoreError::io(&staging.dir, e))?;
        let gens = self.root.join(GENERATIONS);
        let dest = gens.join(&staging.id);
        std::fs::rename(&staging.dir, &dest).map_err(|e| StoreError::io(&dest, e))?;
        staging.done = true;
        fsync::fsync_dir(&gens).map_err(|e| StoreError::io(&gens, e))?;
        let st = self.root.join(STAGING);
        fsync::fsync_dir(&st).map_err(|e| StoreError::io(&st, e))?;
        self.append_journal(&record.generation(&meta.id))?;
        Ok(Generation {
            id: meta.id.clone(),
            dir: dest,
            meta,
        })
    }

    /// Removes old generations: keeps the newest `keep` (at least 1), `protect` (the one just
    /// committed) and, wherever it is, the newest verified and consistent one (state
    /// `verified`), so a streak of inconsistent or unchecked generations never prunes the last
    /// good one. Returns the ids removed, oldest first.
    pub fn prune(
        &self,
        _lock: &StoreLock,
        keep: usize,
        protect: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.check_writable()?;
        let keep = keep.max(1);
        let gens = self.generations()?;
        let newest_good = gens
            .iter()
            .rev()
            .find(|g| g.meta.state == GenerationState::Verified)
            .map(|g| g.id.clone());
        let excess = gens.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for g in gens.iter().take(excess) {
            if g.id == protect || newest_good.as_deref() == Some(g.id.as_str()) {
                continue;
            }
            // Out of generations/ in one rename, then deleted at leisure.
            let trash = self.root.join(STAGING).join(format!("pruned-{}", g.id));
            std::fs::rename(&g.dir, &trash).map_err(|e| StoreError::io(&g.dir, e))?;
            let gdir = self.root.join(GENERATIONS);
            fsync::fsync_dir(&gdir).map_err(|e| StoreError::io(&gdir, e))?;
            std::fs::remove_dir_all(&trash).map_err(|e| StoreError::io(&trash, e))?;
            self.append_journal(&JournalRecord::new(events::PRUNED).generation(&g.id))?;
            removed.push(g.id.clone());
        }
        let st = self.root.join(STAGING);
        fsync::fsync_dir(&st).map_err(|e| StoreError::io(&st, e))?;
        Ok(removed)
    }

    /// Appends a record to the journal (fsynced).
    pub fn append_journal(&self, rec: &JournalRecord) -> Result<(), StoreError> {
        self.check_writable()?;
        journal::append(&self.root.join(JOURNAL), rec)
    }

    /// Every journal record, oldest first.
    pub fn journal(&self) -> Result<Vec<JournalRecord>, StoreError> {
        Ok(self.journal_with_notes()?.records)
    }

    /// The journal's records with a note for every torn line skipped (to show as warnings).
    pub fn journal_with_notes(&self) -> Result<Journal, StoreError> {
        journal::read(&self.root.join(JOURNAL))
    }

    /// The last restore-* record (restore-started as the last: an unfinished restore).
    pub fn last_restore(&self) -> Result<Option<JournalRecord>, StoreError> {
        Ok(journal::last_restore(&self.journal()?).cloned())
    }

    /// Space of the store's filesystem.
    pub fn space(&self) -> Result<Space, StoreError> {
        space::space_of(&self.root)
    }

    /// A XenServer backup tree at the same root, if any.
    pub fn xen_tree(&self) -> Option<XenTreeBackup> {
        xentree::detect(&self.root)
    }
}

/// Everything restorable under a mounted backup partition: the store's generations (when
/// it is a store) and a XenServer tree (when it is one).
pub fn list_backups(root: &Path) -> Result<Vec<BackupSummary>, StoreError> {
    let mut out = Vec::new();
    if Store::is_store(root) {
        let store = Store::open_read_only(root)?;
        out.extend(store.generations()?.iter().map(Generation::summary));
    }
    if let Some(x) = xentree::detect(root) {
        out.push(x.summary());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
