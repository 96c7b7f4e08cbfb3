//! Walks a live root and writes it as an archive. (Owned by the backup-source work.)
//!
//! Contract: `SourceOptions` (root, excludes, includes, one filesystem, /boot/efi),
//! `default_excludes()`, and `write_backup(&SourceOptions, Manifest, out: W, &dyn Progress) ->
//! Result<(W, BackupReport), SourceError>`; the report names skipped mount points, files that
//! kept changing, sockets skipped, and carries the trailer.
