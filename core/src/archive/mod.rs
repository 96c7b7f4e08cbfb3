//! The Lifeboat archive: a POSIX pax tar (readable by GNU tar and bsdtar) whose first entry is
//! a JSON manifest, whose every regular file carries its BLAKE3 checksum in its pax header, and
//! whose last entry is a trailer with counts and a digest over all headers.
//!
//! Contract used by the other modules:
//! - [`writer::ArchiveWriter`]: `new(out, &Manifest)` writes the manifest entry;
//!   `append(&Entry, &mut dyn Read)` writes one entry (for a regular file the reader yields its
//!   content, only the data segments for a sparse file; `entry.checksum` must be set);
//!   `finish(changed_files, sockets_skipped)` writes the trailer and the end-of-archive blocks and
//!   returns the inner writer and the trailer.
//! - [`reader::ArchiveReader`]: `new(tar_stream)`; `next_entry()` yields a [`reader::ReadEntry`]
//!   (`.entry` plus `Read` of the stored content) for every filesystem entry, consuming the
//!   manifest and trailer itself; `manifest()`, `trailer()`, `is_lifeboat()`. It verifies every
//!   checksum as content is read (a mismatch is an error naming the path, returned by the read
//!   that reaches the end of the content, or by the next `next_entry()` when the caller did not
//!   read it), and at the end checks the trailer (counts, digest) so truncation and tampering
//!   are errors. Plain tar archives (e.g. `xe host-backup`, GNU format, GNU sparse, long names)
//!   read too, with `is_lifeboat() == false` and no checksums.

pub mod digest;
pub mod entry;
pub mod header;
pub mod manifest;
pub mod pax;
pub mod reader;
pub mod sparse;
pub mod verify;
pub mod writer;

pub use entry::{Entry, EntryKind, FileFlags, Timestamp};
pub use manifest::{Counts, Manifest, Trailer};

/// Errors reading or writing an archive. Messages name the entry and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("I/O error in the archive stream: {0}")]
    Io(std::io::Error),
    #[error("the archive is damaged at entry '{path}': {reason}")]
    Corrupt { path: String, reason: String },
    #[error("checksum mismatch for '{path}': the archive's content for this file is damaged")]
    ChecksumMismatch { path: String },
    #[error("the archive is truncated: {0} (was the backup interrupted or the file cut short?)")]
    Truncated(String),
    #[error("unsupported archive: {0}")]
    Unsupported(String),
}

impl From<std::io::Error> for ArchiveError {
    /// Unwraps an `ArchiveError` that travelled through a `Read` as an `io::Error` (e.g. a
    /// checksum mismatch reported by [`reader::ReadEntry`]'s `read`), so callers get the
    /// specific error back.
    fn from(e: std::io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<ArchiveError>()) {
            if let Some(inner) = e.into_inner() {
                match inner.downcast::<ArchiveError>() {
                    Ok(a) => return *a,
                    Err(other) => return ArchiveError::Io(std::io::Error::other(other)),
                }
            }
            return ArchiveError::Io(std::io::Error::other("unknown archive error"));
        }
        ArchiveError::Io(e)
    }
}

#[cfg(test)]
mod tests;
