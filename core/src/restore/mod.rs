//! Extracts an archive beneath a target directory, writing nothing outside it.
//!
//! - [`beneath`]: archive paths are checked and resolved from the target's dirfd, component by
//!   component, never through a symbolic link (`..`, absolute paths, symlink and hardlink
//!   escapes are refused with an error naming the entry);
//! - [`apply`]: creates files (sparse ones with their holes), directories, symbolic links, hard
//!   links, device nodes and fifos, replacing what is in the way;
//! - [`metadata`]: owner, mode, xattrs, mtime and ext flags, in the order that keeps them all;
//!   directories get theirs after their contents, deepest first;
//! - [`validate`]: the checks every entry passes before anything is written for it, shared
//!   with [`crate::archive::verify`] so that verify refuses whatever the restore would refuse.
//!
//! Decompression runs on its own thread ([`crate::codec::decoder`]), reading and checking the
//! archive on a second, creating and writing files on a third ([`pipe`]); writes are of up to
//! 1 MiB and there is no per-file fsync (one `syncfs` at the end).
//!
//! Use [`Extractor`] directly (`apply(entry, content)` per entry, then `finish()`), or
//! [`extract`] on an [`ArchiveReader`](crate::archive::reader::ArchiveReader).

mod apply;
pub mod beneath;
mod finish;
pub mod metadata;
mod pipe;
use crate::sys;
pub mod validate;

use crate::archive::{Entry, FileFlags, Timestamp};
use beneath::DirCache;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use validate::{Invalid, InvalidKind, Validator};

/// What to restore where.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The directory everything is written beneath (typically the new root filesystem).
    pub target: PathBuf,
    /// Set the archive's numeric owners (default: when running as root, as tar does).
    pub preserve_owner: bool,
    /// `syncfs` the target once at the end (default true; there is no per-file fsync).
    pub sync: bool,
    /// Content bytes the archive holds, when known (manifest counts), for messages.
    pub expected_bytes: Option<u64>,
    /// Start the writeback of each big file as soon as it is written (without waiting).
    pub early_writeback: bool,
}

impl RestoreOptions {
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
            preserve_owner: sys::is_root(),
            sync: true,
            expected_bytes: None,
            early_writeback: true,
        }
    }
}

/// Why a restore stopped. Every message names the entry or the target and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot open the target directory {target}: {source}")]
    TargetDir {
        target: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing the archive entry '{path}': {reason}. Nothing was written outside the target; the archive is damaged or hostile")]
    Unsafe { path: String, reason: String },
    #[error("refusing the archive entry '{path}': {reason} (a damaged or hostile archive)")]
    Bomb { path: String, reason: String },
    #[error("cannot {op} '{path}' in the target {target}: {source}")]
    Write {
        op: &'static str,
        path: String,
        target: PathBuf,
        source: std::io::Error,
    },
    #[error("the target {target} is full: {written} bytes written{}; free space on it (or restore onto a larger filesystem) and run the restore again", of_total(*.total))]
    TargetFull {
        target: PathBuf,
        written: u64,
        /// Content bytes of the archive, when known.
        total: Option<u64>,
    },
    #[error("the archive is damaged while restoring '{path}': {source}")]
    Content {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("{source} (the damage is in or after the archive entry '{after}')")]
    ArchiveAt {
        after: String,
        source: crate::archive::ArchiveError,
    },
}

fn of_total(total: Option<u64>) -> String {
    total.map(|t| format!(" of {t}")).unwrap_or_default()
}

/// Metadata problems that do not stop a restore (e.g. owners on vfat), kept in bounded memory.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Warnings {
    pub count: u64,
    /// The first [`Warnings::KEPT`] messages.
    pub messages: Vec<String>,
}

impl Warnings {
    pub const KEPT: usize = 100;
    pub fn push(&mut self, msg: String) {
        self.count += 1;
        if self.messages.len() < Self::KEPT {
            self.messages.push(msg);
        }
    }
}

/// What a restore did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub fifos: u64,
    /// Logical bytes of file content written (holes excluded).
    pub bytes: u64,
    /// Directories made because the archive lacked an entry for a parent.
    pub created_parents: u64,
    pub warnings: Warnings,
}

/// A directory's mode, owner, times, xattrs and flags, waiting for its contents (compact: no
/// path, it is keyed by its node in the validator's tree).
struct DeferredDir {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: Timestamp,
    flags: FileFlags,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl DeferredDir {
    fn of(entry: &Entry) -> Self {
        Self {
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
            flags: entry.flags,
            xattrs: entry.xattrs.clone(),
        }
    }

    fn meta(&self) -> metadata::Meta<'_> {
        metadata::Meta {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            xattrs: &self.xattrs,
        }
    }
}

/// Restores entries one at a time beneath the target.
pub struct Extractor {
    opts: RestoreOptions,
    dirs: DirCache,
    /// A second cache for hard link targets (they live elsewhere in the tree).
    link_dirs: DirCache,
    buf: Vec<u8>,
    /// The checks every entry passes first, and the tree of what the archive made.
    validator: Validator,
    /// Directory metadata set at the end, by node of the validator's tree.
    deferred_dirs: HashMap<u32, DeferredDir>,
    /// Immutable / append-only flags of regular files, set at the end, by node: a later entry
    /// at the same path replaces the object and its pending flags.
    deferred_flags: HashMap<u32, FileFlags>,
    report: RestoreReport,
}

/// Copy buffer size: big writes, few system calls.
const BUF_SIZE: usize = 1 << 20;

impl Extractor {
    pub fn new(opts: &RestoreOptions) -> Result<Self, RestoreError> {
        let target_err = |source| RestoreError::TargetDir {
            target: opts.target.clone(),
            source,
        };
        let root = sys::open_dir_path(&opts.target).map_err(target_err)?;
        let root2 = root.try_clone().map_err(target_err)?;
        Ok(Self {
            opts: opts.clone(),
            dirs: DirCache::new(root),
            link_dirs: DirCache::new(root2),
            buf: vec![0; BUF_SIZE],
            validator: Validator::new(),
            deferred_dirs: HashMap::new(),
            deferred_flags: HashMap::new(),
            report: RestoreReport::default(),
        })
    }

    pub fn target(&self) -> &Path {
        &self.opts.target
    }

    /// The report so far.
    pub fn report(&self) -> &RestoreReport {
        &self.report
    }

    /// Applies the deferred flags and directory metadata (every directory after its
    /// contents), syncs the target.
    pub fn finish(mut self) -> Result<RestoreReport, RestoreError> {
        self.apply_deferred()?;
        if self.opts.sync {
            let root = self.dirs.root_fd();
            sys::syncfs(root).map_err(|e| self.write_err("sync", ".", e))?;
        }
        self.report.created_parents = self.dirs.created_parents;
        Ok(self.report)
    }

    fn write_err(&self, op: &'static str, path: &str, e: std::io::Error) -> RestoreError {
        if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) {
            return RestoreError::TargetFull {
                target: self.opts.target.clone(),
                written: self.report.bytes,
                total: self.opts.expected_bytes,
            };
        }
        RestoreError::Write {
            op,
            path: path.to_string(),
            target: self.opts.target.clone(),
            source: e,
        }
    }
}

/// Restores every entry of `reader` beneath `opts.target`, then applies the deferred
/// directory metadata and syncs. A checksum mismatch or any damage stops it with an error
/// naming the entry.
///
/// Two threads ([`pipe`]): this one reads the archive and checks every checksum, a second one
/// creates and writes the files, so that neither waits for the other's work.
pub fn extract<R: std::io::Read + Send>(
    reader: &mut crate::archive::reader::ArchiveReader<R>,
    opts: &RestoreOptions,
    progress: &dyn crate::progress::Progress,
) -> Result<RestoreReport, RestoreError> {
    let mut ex = Extractor::new(opts)?;
    let ((tx, rx), (spent_tx, spent_rx)) = pipe::channels();
    let written = std::thread::scope(|s| {
        let writer = s.spawn(move || pipe::write_side(&mut ex, rx, spent_tx).map(|()| ex));
        pipe::read_side(reader, tx, spent_rx, progress);
        writer.join()
    });
    let ex =
        match written {
            Ok(r) => r?,
            Err(_) => return Err(RestoreError::Write {
                op: "write",
                path: String::new(),
                target: opts.target.clone(),
                source: std::io::Error::other(
                    "the writing thread stopped unexpectedly (a bug in lifeboat; please report it)",
                ),
            }),
        };
    progress.set_message("setting directory metadata and syncing");
    ex.finish()
}

/// Says where in the archive an error that names no entry (a decompression error, a
/// truncation) happened: after the last entry read (the same rule as
/// [`crate::archive::verify::VerifyError`]).
fn locate(e: crate::archive::ArchiveError, last: Option<&[u8]>) -> RestoreError {
    match last {
        Some(path) if !crate::archive::verify::names_an_entry(&e) => RestoreError::ArchiveAt {
            after: String::from_utf8_lossy(path).into_owned(),
            source: e,
        },
        _ => RestoreError::Archive(e),
    }
}

impl From<Invalid> for RestoreError {
    fn from(e: Invalid) -> Self {
        match e.kind {
            InvalidKind::Unsafe => RestoreError::Unsafe {
                path: e.path,
                reason: e.reason,
            },
            InvalidKind::Bomb => RestoreError::Bomb {
                path: e.path,
                reason: e.reason,
            },
        }
    }
}

/// Bytes of stored content an entry accounts for (for progress).
pub fn entry_bytes(entry: &Entry) -> u64 {
    match &entry.kind {
        crate::archive::EntryKind::File { sparse: Some(segs) } => segs.iter().map(|s| s.1).sum(),
        crate::archive::EntryKind::File { sparse: None } => entry.size,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
