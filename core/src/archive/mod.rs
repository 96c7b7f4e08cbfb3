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
//! - [`checksum`]: the per-file checksum ([`checksum::ContentHasher`], which a backup source
//!   feeds to fill `entry.checksum`) and [`checksum::MAX_LOGICAL_SIZE`], the largest file size
//!   the reader (so verify and restore) accepts.
//! - [`reader::ArchiveReader`]: `new(tar_stream)`; `next_entry()` yields a [`reader::ReadEntry`]
//!   (`.entry` plus `Read` of the stored content) for every filesystem entry, consuming the
//!   manifest and trailer itself; `manifest()`, `trailer()`, `is_lifeboat()`. It verifies every
//!   checksum as content is read (a mismatch is an error naming the path, returned by the read
//!   that reaches the end of the content, or by the next `next_entry()` when the caller did not
//!   read it), and at the end checks the trailer (counts, digest) so truncation and tampering
//!   are errors. Plain tar archives (e.g. `xe host-backup`, GNU format, GNU sparse, long names)
//!   read too, with `is_lifeboat() == false` and no checksums. Any archive must end with the
//!   two end-of-archive blocks and hold at least one entry ([`ArchiveError::Empty`]); only zero
//!   padding up to one record may follow ([`ArchiveError::TrailingData`]).
//! - [`verify::verify_stream`]: decompress and check a whole archive, returning a report or the
//!   first damaged path.
//!
//! # Format (version 1.1)
//!
//! A POSIX.1-2001 pax archive, 512-byte blocks, compressed as a whole by [`crate::codec`]. The
//! manifest's `format_version` is 1 and its `format_minor` 1; archives without `format_minor`
//! (1.0, written before) read too: they differ only in what a sparse file's `b3` covers.
//!
//! 1. `./.lifeboat/manifest.json`: regular file, mode 0600, uid/gid 0, the [`Manifest`] as
//!    pretty JSON, with a pax `comment` carrying its BLAKE3.
//! 2. One member per filesystem object, in the order the writer was given them:
//!    - ustar header (magic `ustar\0`, version `00`), name `./` + path (`./` for the root,
//!      directories end in `/`), numeric uid/gid (uname/gname empty), mode & 0o7777, device
//!      major/minor in their fields. Numbers that do not fit the octal fields are written in
//!      GNU base-256 *and* as pax records (`size`, `uid`, `gid`, `mtime`).
//!    - a pax extended header (typeflag `x`, name `././@PaxHeader`) preceding it when needed,
//!      with records in this order: `hdrcharset=BINARY` (only when a `path`/`linkpath`/
//!      `GNU.sparse.name` record is not UTF-8), `GNU.sparse.*` (sparse files), `path` (name
//!      longer than 100 bytes; raw bytes), `linkpath` (link target longer than 100 bytes),
//!      `size`, `uid`, `gid` (only when too large for ustar), `mtime` (whenever the time has
//!      nanoseconds or is negative: `secs.nnnnnnnnn`, the real signed value, e.g. secs=-2,
//!      nanos=500000000 is `-1.500000000`), `comment` (below), then
//!      `SCHILY.xattr.<name>=<raw value>` for every xattr in the entry's order, then for a
//!      `system.posix_acl_access` / `system.posix_acl_default` xattr holding a well-formed
//!      ACL, `SCHILY.acl.access` / `SCHILY.acl.default` with the same ACL in GNU tar's text
//!      form (see [`acl`]: `tag:qualifier:perms` entries each ending in `\n`, numeric ids,
//!      e.g. `user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::r--\n`), so that
//!      `tar --acls` restores the ACLs. These text records are derived: Lifeboat's reader
//!      ignores them in Lifeboat archives (the raw xattr is authoritative, and only it is
//!      covered by the entries digest). In plain tar archives (GNU tar `--acls` output) the
//!      reader converts them into the raw xattrs when the archive has no raw ACL xattr for
//!      the entry (names are resolved on the local host, as GNU tar does; an ACL that cannot
//!      be converted is dropped).
//!    - `comment=lifeboat[ b3=<64 lower-case hex>][ fl=<flags>]`: `b3` is the file's checksum
//!      (see [`checksum`]: BLAKE3 of the content; for a sparse file, of its size, stored map
//!      and data, not of its holes; in 1.0 archives of the logical content with holes as
//!      zeros), present for every regular file; `fl`
//!      lists `i` (immutable) and/or `a` (append-only), present only when set (on any kind).
//!      Readers ignore unknown `key=value` tokens; a comment not starting with the token
//!      `lifeboat` is not ours. (GNU tar and bsdtar ignore `comment` silently.)
//!    - Hard links (typeflag `1`) name their target as `./` + target path; symlinks (`2`) keep
//!      their raw target.
//!    - Sparse files use GNU pax sparse format 1.0: records `GNU.sparse.major=1`,
//!      `GNU.sparse.minor=0`, `GNU.sparse.name=./<path>`, `GNU.sparse.realsize=<size>`; the
//!      ustar name is `./GNUSparseFile.0/<basename>`, typeflag `0`; the data starts with the
//!      map in decimal lines (`count`, then `offset`, `length` per segment) padded with NULs
//!      to 512 bytes, followed by the segments' bytes back to back. Every segment but the last
//!      is a multiple of 512 bytes (see [`sparse`]); when the file ends in a hole a final
//!      `(size, 0)` segment is added.
//! 3. `./.lifeboat/trailer.json`: like the manifest, the [`Trailer`] as JSON: `counts` of the
//!    entries of step 2, `entries_digest` (see [`digest`]), `manifest_digest` (BLAKE3 hex of the
//!    manifest file's bytes), finish time, changed files.
//! 4. Two zero blocks. A reader requires them (a stream cut between two members is
//!    truncated) and accepts after them only zeros, up to one 10240-byte record, then the end
//!    of the stream.
//!
//! What the checks cover: the trailer's `entries_digest` covers every entry's header fields
//! as the reader returns them (path, type, mode, owner, times, size, sparse map, link target,
//! device numbers, xattrs, flags, checksum) and, with `counts`, their number and order; each
//! file's `b3` covers its content; the manifest's `b3` and the trailer's `manifest_digest`
//! cover the manifest; the reader requires the padding to be zeros. Not covered: the derived
//! `SCHILY.acl.*` text records (ignored in Lifeboat archives), ustar fields that a pax record
//! overrides, the names and times of the pax headers themselves, and the trailer's own
//! `finished` and `changed_files` (protected only by the trailer's `b3`). Nothing is signed:
//! the checks detect damage, truncation and splicing, not a forger who recomputes them.
//!
//! Every reader refuses ([`ArchiveError::Refused`]) a member whose name or hard link target is
//! absolute (starts with `/`), in Lifeboat and plain tar archives alike, instead of making it
//! relative as GNU tar does: such a member is hostile or foreign. Names starting with `./`
//! (e.g. `xe host-backup`'s `./etc/...`) are relative and read normally.
//!
//! A reader treats an archive as Lifeboat's when its first member is
//! `.lifeboat/manifest.json` or carries a Lifeboat comment; from then on a file without `b3`,
//! a checksum mismatch, a missing trailer, members after the trailer, or counts/digests that
//! disagree with the trailer are errors.

pub mod acl;
pub mod checksum;
pub mod digest;
pub mod disk_layout;
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
    /// An archive without a single entry (e.g. its first block zeroed): never a backup.
    #[error("the archive is empty: {0}. It is not a usable backup (damaged at its start, or not a backup at all)")]
    Empty(String),
    /// Bytes other than zero padding after the end-of-archive blocks.
    #[error("trailing data after the end of the archive: {0}. The file was altered or two archives were joined")]
    TrailingData(String),
    /// The stream starts with no known compression magic and no valid tar header.
    #[error("not a Lifeboat or tar archive: {0}")]
    NotAnArchive(String),
    #[error("unsupported archive: {0}")]
    Unsupported(String),
    /// A member the reader will not hand out because restoring it could write outside the
    /// target (an absolute name or hard link target); nothing is written for it.
    #[error("refusing the archive entry '{path}': {reason}. Nothing was written for it; the archive is damaged or hostile")]
    Refused { path: String, reason: String },
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
