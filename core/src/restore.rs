//! Extracts an archive beneath a target directory. (Owned by the restore-engine work.)
//!
//! Contract: `RestoreOptions` (target dir, ...), `extract(&mut ArchiveReader<R>, &RestoreOptions,
//! &dyn Progress) -> Result<RestoreReport, RestoreError>`.
