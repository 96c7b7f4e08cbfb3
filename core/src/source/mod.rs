//! Walks a live root and writes it as an archive.
//!
//! - [`walk`]: the directory-descriptor walker (one filesystem, excludes, every piece of
//!   metadata, hardlinks, sockets counted);
//! - [`content`]: reading a file consistently with its checksum (retries, spool);
//! - [`exclude`], [`xattr`], [`flags`], [`sparse`]: one concern each;
//! - [`estimate`]: how much a backup will read (space check, progress);
//! - [`pipeline`]: walker thread -> bounded channel -> archive writer -> encoder threads.
//!
//! Public API: [`SourceOptions`], [`default_excludes`], [`write_backup`] and [`BackupReport`].

mod backup;
pub mod content;
pub mod estimate;
pub mod exclude;
pub mod flags;
mod mounts;
pub mod pipeline;
pub mod sparse;
mod underlay;
pub mod walk;

pub use backup::write_backup;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The excludes `xe host-backup` applies, plus the contents of the pseudo filesystems.
/// The directories themselves are kept (so the restored root has /tmp, /proc, ...).
pub fn default_excludes() -> Vec<String> {
    [
        "tmp/*",
        "tmp/.*",
        "var/crash/*",
        "var/log/audit*",
        "var/xsconfig/*",
        // uuid-named files in var/xapi (xapi's per-VM/per-task state)
        "var/xapi/????????-????-????-????-????????????",
        "proc/*",
        "sys/*",
        "dev/*",
        "run/*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The root to walk.
    pub root: PathBuf,
    /// Exclude patterns (see [`exclude`]); [`default_excludes`] plus the user's by default.
    pub excludes: Vec<String>,
    /// Other mount points below the root to include (paths relative to the root, or absolute
    /// paths below it). `boot/efi` is included when `include_boot_efi` is set.
    pub includes: Vec<PathBuf>,
    /// Include `boot/efi` when it is a mount point (as `xe host-backup` does).
    pub include_boot_efi: bool,
    pub codec: crate::codec::Codec,
    pub level: Option<i32>,
    /// Compression threads (0: every core).
    pub threads: usize,
    /// Where copies of large files that keep changing while they are read are spooled: the
    /// store's staging directory when writing a generation, or a directory the user names.
    /// Never on a filesystem being backed up ([`SourceOptions::check_spool`] refuses it).
    /// None (the default): no spool; such a file is streamed once more and reported if it
    /// changed again (never copied to the temp dir, which on dom0 is the root itself).
    pub spool_dir: Option<PathBuf>,
    /// Files with at most this much data are read into memory in one go.
    pub small_file_limit: u64,
}

impl SourceOptions {
    /// The xe host-backup defaults for `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            excludes: default_excludes(),
            includes: Vec::new(),
            include_boot_efi: true,
            codec: crate::codec::Codec::Zstd,
            level: None,
            threads: 0,
            spool_dir: None,
            small_file_limit: content::SMALL_FILE_LIMIT,
        }
    }

    /// Included mount points as relative paths (`boot/efi` first when enabled).
    pub fn include_paths(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        if self.include_boot_efi {
            out.push(b"boot/efi".to_vec());
        }
        for inc in &self.includes {
            let rel = inc.strip_prefix(&self.root).unwrap_or(inc);
            let mut b = rel.as_os_str().as_bytes();
            while let Some(r) = b.strip_prefix(b"/") {
                b = r;
            }
            while let Some(r) = b.strip_suffix(b"/") {
                b = r;
            }
            if !b.is_empty() && !out.iter().any(|o| o == b) {
                out.push(b.to_vec());
            }
        }
        out
    }

    /// Refuses a spool directory on a filesystem being backed up (the root's, or an included
    /// mount's): copies of changing files must not grow the source while it is read.
    pub fn check_spool(&self) -> Result<(), SourceError> {
        use std::os::unix::fs::MetadataExt;
        let Some(dir) = &self.spool_dir else {
            return Ok(());
        };
        let spool = std::fs::metadata(dir).map_err(|source| SourceError::Spool {
            dir: dir.clone(),
            source,
        })?;
        if !spool.is_dir() {
            return Err(SourceError::Spool {
                dir: dir.clone(),
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        let mut sources = vec![self.root.clone()];
        for inc in self.include_paths() {
            sources.push(self.root.join(std::ffi::OsStr::from_bytes(&inc)));
        }
        for src in sources {
            if let Ok(m) = std::fs::metadata(&src) {
                if m.dev() == spool.dev() {
                    return Err(SourceError::SpoolOnSource {
                        dir: dir.clone(),
                        on: src,
                    });
                }
            }
        }
        Ok(())
    }

    /// The walker settings these options stand for.
    pub fn walk_config(&self) -> walk::WalkConfig {
        walk::WalkConfig {
            root: self.root.clone(),
            excludes: exclude::Excludes::new(&self.excludes),
            includes: self.include_paths(),
            spool_dir: self.spool_dir.clone(),
            small_file_limit: self.small_file_limit,
        }
    }
}

/// Errors that stop a backup. Messages say which path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the root '{}': {source} (is it a directory you can read?)", path.display())]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the archive failed: {0} (is the output full, read-only or gone?)")]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("writing the backup stream failed: {0} (is the output full, read-only or gone?)")]
    Output(std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
    /// The spool directory for copies of changing files is on a filesystem being backed up.
    #[error("the spool directory {} is on a filesystem being backed up ({}); spool copies of changing files elsewhere (the backup store's staging directory, or another filesystem)", dir.display(), on.display())]
    SpoolOnSource { dir: PathBuf, on: PathBuf },
    #[error("cannot use the spool directory {}: {source}", dir.display())]
    Spool {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl SourceError {
    /// True when writing the backup failed because its output is full.
    pub fn is_no_space(&self) -> bool {
        let enospc = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENOSPC);
        match self {
            SourceError::Output(e) | SourceError::Spool { source: e, .. } => enospc(e),
            SourceError::Archive(crate::archive::ArchiveError::Io(e)) => enospc(e),
            _ => false,
        }
    }
}

/// The outcome of a backup.
#[derive(Debug, Clone, Default)]
pub struct BackupReport {
    pub trailer: crate::archive::Trailer,
    /// Mount points below the root archived as empty directories (e.g. `var/log`).
    pub skipped_mounts: Vec<String>,
    /// Files that kept changing while read (the backup is complete but not consistent).
    pub changed_files: Vec<String>,
    pub sockets_skipped: u64,
    /// Problems that did not stop the backup (unreadable files, missing xattrs, ...).
    pub warnings: Vec<String>,
}

impl BackupReport {
    /// Exit status in the manner of GNU tar: 0 complete and consistent, 1 complete but some
    /// files changed while read or could not be read.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.changed_files.is_empty() || !self.warnings.is_empty())
    }
}

/// Mount points below `root` that a walk with `opts` would skip, from /proc/self/mountinfo
/// (used to fill the manifest before the walk; the walk's own list goes in the report).
pub fn predicted_skipped_mounts(opts: &SourceOptions) -> Vec<String> {
    mounts::skipped_below(
        &opts.root,
        &exclude::Excludes::new(&opts.excludes),
        &opts.include_paths(),
    )
}

#[cfg(test)]
mod tests;

/// Fills what the backup source knows into a manifest: format and tool version, start time
/// and hostname (when empty), excludes, includes, predicted skipped mounts and codec.
pub fn complete_manifest(opts: &SourceOptions, m: &mut crate::archive::Manifest) {
    m.format_version = crate::archive::manifest::FORMAT_VERSION;
    if m.tool_version.is_empty() {
        m.tool_version = format!("lifeboat {}", crate::VERSION);
    }
    if m.created.is_empty() {
        m.created = crate::archive::writer::rfc3339_utc(std::time::SystemTime::now());
    }
    if m.hostname.is_empty() {
        m.hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    m.excludes = opts.excludes.clone();
    m.includes = opts
        .include_paths()
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    m.skipped_mounts = predicted_skipped_mounts(opts);
    m.codec = opts.codec.name().to_string();
}

/// Estimated bytes a backup with `opts` reads: the progress total and the base of the space
/// check (see [`estimate::source_bytes`]: the filesystem's used bytes when the root is its top,
/// else the tree under the root, excludes applied).
pub fn estimate_bytes(opts: &SourceOptions) -> Option<u64> {
    estimate::source_bytes(opts)
}
