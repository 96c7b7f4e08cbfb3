//! Reads Lifeboat archives and plain tar archives (ustar, pax, GNU).
//!
//! Hand-written rather than built on the `tar` crate because the reader must (1) understand
//! pax sparse format 1.0 (the map inside the data), 0.0/0.1 and old GNU 'S' headers, which the
//! crate does not expand, (2) bound every allocation and every step a hostile header can ask
//! for, (3) verify BLAKE3 checksums and the trailer's digest as the data streams by, and
//! (4) hand out content without per-entry allocations or extra copies (large reads go straight
//! from the decompressor into the caller's buffer), which restore speed depends on.
//!
//! By concern: [`input`] (the one buffer over the stream), [`member`] (headers and the entry
//! they describe, with [`pax_attrs`] for pax records and [`sparse_maps`] for sparse maps),
//! [`content`] (checksums of the content) and [`protocol`] (manifest first, trailer last,
//! counts and digest, the end of the archive).

mod content;
mod input;
mod member;
mod pax_attrs;
mod protocol;
mod sparse_maps;
#[cfg(test)]
mod tests;

use std::io::{self, Read};

use super::entry::Entry;
use super::manifest::{Counts, Manifest, Trailer, MANIFEST_PATH, TRAILER_PATH};
use super::ArchiveError;
use content::Content;
use input::BlockInput;
use member::{Member, MemberParser, Padding};
use protocol::Protocol;

pub use super::sparse::MAX_SPARSE_SEGMENTS;
pub use input::RECORD;
pub use member::{MAX_GLOBAL, MAX_LONG_NAME, MAX_PAX_HEADER};
pub use pax_attrs::MAX_XATTRS;

/// Reads an uncompressed tar stream (wrap it in [`crate::codec::decoder`] first).
pub struct ArchiveReader<R> {
    input: BlockInput<R>,
    members: MemberParser,
    padding: Padding,
    protocol: Protocol,
    /// The entry whose content is being read.
    cur: Option<Content>,
    /// An entry prepared by `read_manifest()` and not yet handed out.
    pending: Option<Entry>,
    done: bool,
}

/// One entry handed out by [`ArchiveReader::next_entry`]: its metadata and a reader of its
/// stored content (for a sparse file only the data segments, in order).
pub struct ReadEntry<'a, R> {
    pub entry: Entry,
    reader: &'a mut ArchiveReader<R>,
}

impl<R: Read> ReadEntry<'_, R> {
    /// Bytes of stored content not read yet (for a sparse file: of its data segments).
    pub fn remaining(&self) -> u64 {
        self.reader.cur.as_ref().map_or(0, |c| c.left)
    }
}

impl<R: Read> Read for ReadEntry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_content(buf).map_err(to_io)
    }
}

pub(super) fn corrupt(path: &[u8], reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Corrupt {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

pub(super) fn refused(path: &[u8], reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

fn to_io(e: ArchiveError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> ArchiveReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            input: BlockInput::new(inner),
            members: MemberParser::default(),
            padding: Padding {
                strict: false,
                started: false,
                dirty_first: false,
            },
            protocol: Protocol::new(),
            cur: None,
            pending: None,
            done: false,
        }
    }

    /// True once the archive's first entry was a Lifeboat manifest.
    pub fn is_lifeboat(&self) -> bool {
        self.protocol.is_lifeboat
    }

    /// The manifest, once the first entry has been read (see [`Self::read_manifest`]).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.protocol.manifest.as_ref()
    }

    /// The trailer, once `next_entry()` has returned `None` on a Lifeboat archive.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.protocol.trailer.as_ref()
    }

    /// Counts of the entries read so far.
    pub fn counts(&self) -> &Counts {
        &self.protocol.counts
    }

    /// Bytes of tar stream consumed so far.
    pub fn position(&self) -> u64 {
        self.input.offset()
    }

    pub fn into_inner(self) -> R {
        self.input.into_inner()
    }

    /// Reads ahead to the first filesystem entry so the manifest (if any) is known before
    /// anything is extracted. `Ok(None)` for a plain tar archive.
    pub fn read_manifest(&mut self) -> Result<Option<&Manifest>, ArchiveError> {
        if !self.padding.started && self.pending.is_none() && !self.done {
            if let Some(e) = self.advance()? {
                self.pending = Some(e);
            }
        }
        Ok(self.protocol.manifest.as_ref())
    }

    /// The next filesystem entry, or `None` at the end of the archive (after checking the
    /// trailer of a Lifeboat archive and that nothing but padding follows the end).
    pub fn next_entry(&mut self) -> Result<Option<ReadEntry<'_, R>>, ArchiveError> {
        let entry = match self.pending.take() {
            Some(e) => e,
            None => match self.advance()? {
                Some(e) => e,
                None => return Ok(None),
            },
        };
        Ok(Some(ReadEntry {
            entry,
            reader: self,
        }))
    }

    fn read_content(&mut self, out: &mut [u8]) -> Result<usize, ArchiveError> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(0);
        };
        let want = (out.len() as u64).min(cur.left) as usize;
        if cur.left == 0 || want == 0 {
            if cur.left == 0 {
                cur.verdict()?;
            }
            return Ok(0);
        }
        let n = self.input.read_into(&mut out[..want])?;
        if n == 0 {
            return Err(self.input.truncated("file content"));
        }
        cur.consume(&out[..n]);
        if cur.left == 0 {
            cur.verdict()?;
        }
        Ok(n)
    }

    /// Skips (and checks) whatever the caller did not read of the current entry.
    fn finish_current(&mut self) -> Result<(), ArchiveError> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        if cur.is_checked() {
            // Hash straight out of the input buffer.
            while cur.left > 0 {
                let data = self.input.advance(cur.left)?;
                if data.is_empty() {
                    return Err(self.input.truncated("file content"));
                }
                cur.consume(data);
            }
        } else if cur.left > 0 {
            self.input.skip(cur.left, "file content")?;
            cur.left = 0;
        }
        let verdict = cur.verdict();
        let pad = cur.pad;
        let path = std::mem::take(&mut cur.path);
        self.cur = None;
        verdict?;
        if pad > 0 {
            self.padding.skip(&mut self.input, pad, &path)?;
        }
        Ok(())
    }

    /// Moves to the next filesystem entry, handling the manifest, the trailer and the end.
    fn advance(&mut self) -> Result<Option<Entry>, ArchiveError> {
        self.finish_current()?;
        loop {
            if self.done {
                return Ok(None);
            }
            let (entry, layout) = match self.members.next(&mut self.input, &mut self.padding)? {
                Member::Eof => {
                    self.done = true;
                    let at = self.input.offset();
                    if at == 0 {
                        return Err(ArchiveError::Empty("it is 0 bytes long".into()));
                    }
                    return Err(ArchiveError::Truncated(format!(
                        "the stream ends at tar offset {at} without the end-of-archive blocks (the archive was cut short, possibly between two entries)"
                    )));
                }
                Member::End => {
                    self.done = true;
                    self.protocol.check_end()?;
                    self.input.expect_end()?;
                    return Ok(None);
                }
                Member::Entry(e, l) => (e, l),
            };
            let first = !self.padding.started;
            self.padding.started = true;
            if first && (entry.path == MANIFEST_PATH.as_bytes() || layout.lifeboat) {
                if self.padding.dirty_first {
                    return Err(corrupt(
                        &entry.path,
                        "non-zero bytes in the padding of its header (the archive was altered)",
                    ));
                }
                self.protocol
                    .read_manifest(&mut self.input, &mut self.padding, &entry, &layout)?;
                continue;
            }
            let lifeboat = self.protocol.is_lifeboat;
            if lifeboat && entry.path == TRAILER_PATH.as_bytes() {
                self.protocol
                    .read_trailer(&mut self.input, &mut self.padding, &entry, &layout)?;
                continue;
            }
            if self.protocol.trailer.is_some() {
                return Err(corrupt(
                    &entry.path,
                    "an entry follows the trailer (the archive was altered)",
                ));
            }
            if !lifeboat && layout.lifeboat {
                return Err(corrupt(
                    &entry.path,
                    "it is marked as a Lifeboat entry but the archive does not start with a Lifeboat manifest (its beginning was damaged)",
                ));
            }
            if lifeboat && entry.is_file() && entry.checksum.is_none() {
                return Err(corrupt(&entry.path, "the header carries no checksum"));
            }
            let expected = if lifeboat && entry.is_file() {
                entry.checksum
            } else {
                None
            };
            let stored = if entry.is_file() { layout.stored } else { 0 };
            self.cur = Some(Content::new(
                &entry,
                stored,
                (layout.stored - stored) + layout.pad,
                expected,
                &mut self.protocol.sums,
            )?);
            self.protocol.admit(&entry);
            return Ok(Some(entry));
        }
    }
}
