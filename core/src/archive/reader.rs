//! Reads Lifeboat archives and plain tar archives (ustar, pax, GNU).
//!
//! Hand-written rather than built on the `tar` crate because the reader must (1) understand
//! pax sparse format 1.0 (the map inside the data), 0.0/0.1 and old GNU 'S' headers, which the
//! crate does not expand, (2) bound every allocation a hostile header can ask for, (3) verify
//! BLAKE3 checksums (holes hashed as zeros) and the trailer's digest as the data streams by,
//! and (4) hand out content without per-entry allocations or extra copies (large reads go
//! straight from the decompressor into the caller's buffer), which restore speed depends on.

use std::io::{self, Read};

use super::acl;
use super::digest::{self, EntriesDigest};
use super::entry::{Entry, EntryKind, FileFlags, Timestamp};
use super::header::{self, BLOCK};
use super::manifest::{Counts, Manifest, Trailer, MANIFEST_PATH, TRAILER_PATH};
use super::pax;
use super::ArchiveError;

const BUF_SIZE: usize = 256 * 1024;
/// Largest pax extended header accepted (a 5000-byte path plus xattrs fits easily).
pub const MAX_PAX_HEADER: u64 = 1 << 20;
/// Largest GNU long name ('L'/'K') accepted.
pub const MAX_LONG_NAME: u64 = 1 << 20;
/// Largest sum of pax global headers kept.
const MAX_GLOBAL: usize = 1 << 20;
/// Most sparse segments accepted for one file.
pub const MAX_SPARSE_SEGMENTS: usize = 1 << 20;
/// Largest manifest or trailer accepted.
const MAX_META: u64 = 64 << 20;

static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];

/// Reads an uncompressed tar stream (wrap it in [`crate::codec::decoder`] first).
pub struct ArchiveReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Tar stream offset of `buf[pos]`.
    offset: u64,
    started: bool,
    dirty_first_padding: bool,
    done: bool,
    is_lifeboat: bool,
    manifest: Option<Manifest>,
    manifest_digest: Option<String>,
    trailer: Option<Trailer>,
    counts: Counts,
    digest: EntriesDigest,
    global: Vec<u8>,
    pax_buf: Vec<u8>,
    cur: Option<Current>,
    /// An entry prepared by `read_manifest()` and not yet handed out.
    pending: Option<Entry>,
    hasher: blake3::Hasher,
}

/// The entry whose content is being read.
struct Current {
    path: Vec<u8>,
    /// Stored bytes not yet consumed.
    left: u64,
    /// Padding after the stored bytes.
    pad: u64,
    expected: Option<[u8; 32]>,
    /// Sparse layout for hashing holes: segments, next segment, bytes left in the current
    /// one, logical position, logical size.
    sparse: Option<SparseCursor>,
    size: u64,
    /// None: not checked yet; Some(ok).
    checked: Option<bool>,
}

struct SparseCursor {
    map: Vec<(u64, u64)>,
    next: usize,
    in_seg: u64,
    logical: u64,
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
        self.reader.read_content(buf)
    }
}

/// Result of reading headers up to the next real member.
enum Member {
    End,
    Entry(Entry, Layout),
}

/// Where a member's stored content is.
struct Layout {
    /// Bytes of content after the header (and after a 1.0 sparse map).
    stored: u64,
    pad: u64,
    lifeboat: bool,
}

#[derive(Default)]
struct PaxAttrs {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Timestamp>,
    comment: Option<pax::LifeboatComment>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// GNU tar `--acls` text records (`SCHILY.acl.access`/`.default`): raw xattr name, text.
    acl_text: Vec<(&'static [u8], Vec<u8>)>,
    sparse_major: Option<u64>,
    sparse_name: Option<Vec<u8>>,
    sparse_size: Option<u64>,
    sparse_map: Vec<(u64, u64)>,
    sparse_offset: Option<u64>,
    sparse_seen: bool,
}

impl PaxAttrs {
    fn apply(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let num = |v: &[u8]| {
            pax::parse_decimal(v)
                .ok_or_else(|| format!("bad number in pax record {}", String::from_utf8_lossy(key)))
        };
        match key {
            b"path" => self.path = Some(value.to_vec()),
            b"linkpath" => self.linkpath = Some(value.to_vec()),
            b"size" => self.size = Some(num(value)?),
            b"uid" => self.uid = Some(num(value)?),
            b"gid" => self.gid = Some(num(value)?),
            b"mtime" => self.mtime = Some(pax::parse_time(value).ok_or("bad mtime in pax header")?),
            b"comment" => {
                if let Some(c) = pax::parse_lifeboat_comment(value)? {
                    self.comment = Some(c);
                }
            }
            b"GNU.sparse.major" => {
                self.sparse_major = Some(num(value)?);
                self.sparse_seen = true;
            }
            b"GNU.sparse.minor" => self.sparse_seen = true,
            b"GNU.sparse.name" => self.sparse_name = Some(value.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                self.sparse_size = Some(num(value)?);
                self.sparse_seen = true;
            }
            b"GNU.sparse.numblocks" => {
                if num(value)? as usize > MAX_SPARSE_SEGMENTS {
                    return Err("too many sparse segments".into());
                }
                self.sparse_seen = true;
            }
            b"GNU.sparse.offset" => {
                self.sparse_offset = Some(num(value)?);
                self.sparse_seen = true;
            }
            b"GNU.sparse.numbytes" => {
                let o = self
                    .sparse_offset
                    .take()
                    .ok_or("GNU.sparse.numbytes without offset")?;
                self.push_segment(o, num(value)?)?;
            }
            b"GNU.sparse.map" => {
                self.sparse_seen = true;
                let mut it = value.split(|&c| c == b',');
                while let Some(o) = it.next() {
                    if o.is_empty() {
                        break;
                    }
                    let l = it.next().ok_or("odd number of values in GNU.sparse.map")?;
                    self.push_segment(num(o)?, num(l)?)?;
                }
            }
            _ => {
                if let Some(xattr) = acl::xattr_for_pax_name(key) {
                    self.acl_text.retain(|(n, _)| *n != xattr);
                    self.acl_text.push((xattr, value.to_vec()));
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if self.xattrs.len() >= 65_536 {
                        return Err("too many extended attributes".into());
                    }
                    self.xattrs.push((name.to_vec(), value.to_vec()));
                }
            }
        }
        Ok(())
    }

    fn push_segment(&mut self, o: u64, l: u64) -> Result<(), String> {
        if self.sparse_map.len() >= MAX_SPARSE_SEGMENTS {
            return Err("too many sparse segments".into());
        }
        self.sparse_seen = true;
        self.sparse_map.push((o, l));
        Ok(())
    }
}

fn corrupt(path: &[u8], reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Corrupt {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// An absolute name or hard link target: refused rather than made relative as GNU tar does
/// (a restore must never be steered to a path the archive chose outside its target).
fn refused_absolute(path: &[u8], what: &str) -> ArchiveError {
    ArchiveError::Refused {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: format!(
            "{what}; Lifeboat does not restore absolute paths (archive members must be relative, e.g. './etc/hosts')"
        ),
    }
}

fn to_io(e: ArchiveError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> ArchiveReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            offset: 0,
            started: false,
            dirty_first_padding: false,
            done: false,
            is_lifeboat: false,
            manifest: None,
            manifest_digest: None,
            trailer: None,
            counts: Counts::default(),
            digest: EntriesDigest::new(),
            global: Vec::new(),
            pax_buf: Vec::new(),
            cur: None,
            pending: None,
            hasher: blake3::Hasher::new(),
        }
    }

    /// True once the archive's first entry was a Lifeboat manifest.
    pub fn is_lifeboat(&self) -> bool {
        self.is_lifeboat
    }

    /// The manifest, once the first entry has been read (see [`Self::read_manifest`]).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The trailer, once `next_entry()` has returned `None` on a Lifeboat archive.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// Counts of the entries read so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Bytes of tar stream consumed so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads ahead to the first filesystem entry so the manifest (if any) is known before
    /// anything is extracted. `Ok(None)` for a plain tar archive.
    pub fn read_manifest(&mut self) -> Result<Option<&Manifest>, ArchiveError> {
        if !self.started && self.pending.is_none() && !self.done {
            if let Some(e) = self.advance()? {
                self.pending = Some(e);
            }
        }
        Ok(self.manifest.as_ref())
    }

    /// The next filesystem entry, or `None` at the end of the archive (after checking the
    /// trailer of a Lifeboat archive).
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

    // ----- buffered input -----

    fn fill(&mut self) -> io::Result<usize> {
        loop {
            match self.inner.read(&mut self.buf[..]) {
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads some bytes (0 at end of stream).
    fn read_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            if out.len() >= BUF_SIZE / 4 {
                loop {
                    match self.inner.read(out) {
                        Ok(n) => {
                            self.offset += n as u64;
                            return Ok(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if self.fill()? == 0 {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.offset += n as u64;
        Ok(n)
    }

    fn truncated(&self, what: &str) -> ArchiveError {
        ArchiveError::Truncated(format!(
            "the stream ends inside {what} at tar offset {}",
            self.offset
        ))
    }

    fn read_exact_or(&mut self, out: &mut [u8], what: &str) -> Result<(), ArchiveError> {
        let mut got = 0;
        while got < out.len() {
            let n = self
                .read_some(&mut out[got..])
                .map_err(|e| self.io_err(e))?;
            if n == 0 {
                return Err(self.truncated(what));
            }
            got += n;
        }
        Ok(())
    }

    fn io_err(&self, e: io::Error) -> ArchiveError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated(format!(
                "the compressed stream ends early at tar offset {} ({e})",
                self.offset
            ))
        } else {
            ArchiveError::from(e)
        }
    }

    /// Reads one header block; `None` at a clean end of stream.
    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>, ArchiveError> {
        let mut b = [0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            let n = self.read_some(&mut b[got..]).map_err(|e| self.io_err(e))?;
            if n == 0 {
                if got == 0 {
                    return Ok(None);
                }
                return Err(self.truncated("a header"));
            }
            got += n;
        }
        Ok(Some(b))
    }

    fn skip(&mut self, mut n: u64, what: &str) -> Result<(), ArchiveError> {
        while n > 0 {
            if self.pos == self.end && self.fill().map_err(|e| self.io_err(e))? == 0 {
                return Err(self.truncated(what));
            }
            let k = ((self.end - self.pos) as u64).min(n) as usize;
            self.pos += k;
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    /// Skips padding; in a Lifeboat archive it must be zeros (the writer's), so that no byte
    /// of the archive can change unnoticed.
    fn skip_padding(&mut self, mut n: u64, path: &[u8]) -> Result<(), ArchiveError> {
        if !self.is_lifeboat && self.started {
            return self.skip(n, "padding");
        }
        while n > 0 {
            if self.pos == self.end && self.fill().map_err(|e| self.io_err(e))? == 0 {
                return Err(self.truncated("padding"));
            }
            let k = ((self.end - self.pos) as u64).min(n) as usize;
            if self.buf[self.pos..self.pos + k].iter().any(|&b| b != 0) {
                if !self.started {
                    // Before the first entry we do not know yet whether this is a Lifeboat
                    // archive: remember, and judge once we know.
                    self.dirty_first_padding = true;
                    self.pos += k;
                    self.offset += k as u64;
                    n -= k as u64;
                    continue;
                }
                return Err(corrupt(
                    path,
                    format!(
                        "non-zero bytes in the padding near tar offset {} (the archive was altered)",
                        self.offset
                    ),
                ));
            }
            self.pos += k;
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    fn read_small(&mut self, size: u64, max: u64, what: &str) -> Result<Vec<u8>, ArchiveError> {
        if size > max {
            return Err(corrupt(
                b"",
                format!("{what} of {size} bytes is larger than the {max} bytes allowed"),
            ));
        }
        let mut v = vec![0u8; size as usize];
        self.read_exact_or(&mut v, what)?;
        self.skip(header::padding(size), what)?;
        Ok(v)
    }

    /// Reads the rest of the stream so the decompressor checks its own trailer.
    fn drain(&mut self) -> Result<(), ArchiveError> {
        self.pos = self.end;
        while self.fill().map_err(|e| self.io_err(e))? > 0 {
            self.offset += self.end as u64;
            self.pos = self.end;
        }
        Ok(())
    }

    // ----- content -----

    fn read_content(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(cur) = self.cur.as_ref() else {
            return Ok(0);
        };
        if cur.left == 0 {
            self.check_current().map_err(to_io)?;
            return Ok(0);
        }
        let want = (out.len() as u64).min(cur.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.read_some(&mut out[..want])?;
        if n == 0 {
            return Err(to_io(self.truncated("file content")));
        }
        self.consume(&out[..n]);
        let done = self.cur.as_ref().is_some_and(|c| c.left == 0);
        if done {
            self.check_current().map_err(to_io)?;
        }
        Ok(n)
    }

    /// Accounts for `data` of the current entry's stored content.
    fn consume(&mut self, data: &[u8]) {
        consume(&mut self.cur, &mut self.hasher, data);
    }

    /// At the end of the current entry's content: compare the checksum (once).
    fn check_current(&mut self) -> Result<(), ArchiveError> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        match cur.checked {
            Some(true) => return Ok(()),
            Some(false) => {
                return Err(ArchiveError::ChecksumMismatch {
                    path: String::from_utf8_lossy(&cur.path).into_owned(),
                })
            }
            None => {}
        }
        let Some(expected) = cur.expected else {
            cur.checked = Some(true);
            return Ok(());
        };
        if let Some(sp) = cur.sparse.as_ref() {
            hash_zeros(&mut self.hasher, cur.size.saturating_sub(sp.logical));
        }
        let ok = *self.hasher.finalize().as_bytes() == expected;
        cur.checked = Some(ok);
        if ok {
            Ok(())
        } else {
            Err(ArchiveError::ChecksumMismatch {
                path: String::from_utf8_lossy(&cur.path).into_owned(),
            })
        }
    }

    /// Skips (and verifies) whatever the caller did not read of the current entry.
    fn finish_current(&mut self) -> Result<(), ArchiveError> {
        let Some(cur) = self.cur.as_ref() else {
            return Ok(());
        };
        let verifying = cur.expected.is_some();
        let mut left = cur.left;
        if verifying {
            // Hash straight out of the input buffer.
            while left > 0 {
                if self.pos == self.end && self.fill().map_err(|e| self.io_err(e))? == 0 {
                    return Err(self.truncated("file content"));
                }
                let k = ((self.end - self.pos) as u64).min(left) as usize;
                consume(
                    &mut self.cur,
                    &mut self.hasher,
                    &self.buf[self.pos..self.pos + k],
                );
                self.pos += k;
                self.offset += k as u64;
                left -= k as u64;
            }
        } else if left > 0 {
            self.skip(left, "file content")?;
            if let Some(c) = self.cur.as_mut() {
                c.left = 0;
            }
        }
        let r = self.check_current();
        let cur = self.cur.take();
        r?;
        match cur {
            Some(c) if c.pad > 0 => self.skip_padding(c.pad, &c.path),
            _ => Ok(()),
        }
    }

    // ----- members -----

    /// Moves to the next filesystem entry, handling the manifest and trailer.
    fn advance(&mut self) -> Result<Option<Entry>, ArchiveError> {
        self.finish_current()?;
        loop {
            if self.done {
                return Ok(None);
            }
            let (entry, layout) = match self.read_member()? {
                Member::End => {
                    self.done = true;
                    if self.offset == 0 {
                        return Err(ArchiveError::Truncated(
                            "the archive is empty (0 bytes)".into(),
                        ));
                    }
                    if self.is_lifeboat && self.trailer.is_none() {
                        return Err(ArchiveError::Truncated(format!(
                            "the archive ends after {} entries without its trailer",
                            self.counts.entries
                        )));
                    }
                    self.drain()?;
                    return Ok(None);
                }
                Member::Entry(e, l) => (e, l),
            };
            let first = !self.started;
            self.started = true;
            if first && (entry.path == MANIFEST_PATH.as_bytes() || layout.lifeboat) {
                if self.dirty_first_padding {
                    return Err(corrupt(
                        &entry.path,
                        "non-zero bytes in the padding of its header (the archive was altered)",
                    ));
                }
                self.read_manifest_entry(&entry, &layout)?;
                continue;
            }
            if self.is_lifeboat && entry.path == TRAILER_PATH.as_bytes() {
                self.read_trailer_entry(&entry, &layout)?;
                continue;
            }
            if self.trailer.is_some() {
                return Err(corrupt(
                    &entry.path,
                    "an entry follows the trailer (the archive was altered)",
                ));
            }
            if self.is_lifeboat && entry.is_file() && entry.checksum.is_none() {
                return Err(corrupt(&entry.path, "the header carries no checksum"));
            }
            let expected = if self.is_lifeboat && entry.is_file() {
                entry.checksum
            } else {
                None
            };
            let sparse = match (&entry.kind, expected) {
                (EntryKind::File { sparse: Some(map) }, Some(_)) => Some(SparseCursor {
                    map: map.clone(),
                    next: 0,
                    in_seg: 0,
                    logical: 0,
                }),
                _ => None,
            };
            if expected.is_some() {
                self.hasher.reset();
            }
            let stored = if entry.is_file() { layout.stored } else { 0 };
            self.cur = Some(Current {
                path: if expected.is_some() {
                    entry.path.clone()
                } else {
                    Vec::new()
                },
                left: stored,
                pad: (layout.stored - stored) + layout.pad,
                expected,
                sparse,
                size: entry.size,
                checked: None,
            });
            if self.is_lifeboat {
                self.digest.add(&entry);
            }
            digest::count(&mut self.counts, &entry);
            return Ok(Some(entry));
        }
    }

    fn read_meta_content(
        &mut self,
        entry: &Entry,
        layout: &Layout,
    ) -> Result<Vec<u8>, ArchiveError> {
        if !matches!(entry.kind, EntryKind::File { sparse: None }) {
            return Err(corrupt(
                &entry.path,
                "Lifeboat metadata is not a plain file",
            ));
        }
        if layout.stored > MAX_META {
            return Err(corrupt(
                &entry.path,
                "Lifeboat metadata is implausibly large",
            ));
        }
        let mut v = vec![0u8; layout.stored as usize];
        self.read_exact_or(&mut v, "Lifeboat metadata")?;
        self.skip_padding(layout.pad, &entry.path)?;
        let sum = entry
            .checksum
            .ok_or_else(|| corrupt(&entry.path, "the header carries no checksum"))?;
        if *blake3::hash(&v).as_bytes() != sum {
            return Err(ArchiveError::ChecksumMismatch {
                path: entry.display_path(),
            });
        }
        Ok(v)
    }

    fn read_manifest_entry(&mut self, entry: &Entry, layout: &Layout) -> Result<(), ArchiveError> {
        if entry.path != MANIFEST_PATH.as_bytes() {
            return Err(corrupt(
                &entry.path,
                "the first entry is marked as Lifeboat's but is not the manifest",
            ));
        }
        self.is_lifeboat = true;
        let bytes = self.read_meta_content(entry, layout)?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&entry.path, format!("the manifest is not valid: {e}")))?;
        if m.format_version > super::manifest::FORMAT_VERSION {
            return Err(ArchiveError::Unsupported(format!(
                "archive format version {} is newer than this Lifeboat ({}) understands; use a newer Lifeboat",
                m.format_version,
                super::manifest::FORMAT_VERSION
            )));
        }
        self.manifest_digest = Some(blake3::hash(&bytes).to_hex().to_string());
        self.manifest = Some(m);
        Ok(())
    }

    fn read_trailer_entry(&mut self, entry: &Entry, layout: &Layout) -> Result<(), ArchiveError> {
        let bytes = self.read_meta_content(entry, layout)?;
        let t: Trailer = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&entry.path, format!("the trailer is not valid: {e}")))?;
        let mut expect = t.counts.clone();
        expect.sockets_skipped = 0;
        if expect != self.counts {
            return Err(corrupt(
                &entry.path,
                format!(
                    "the archive holds {} entries ({} files, {} bytes) but the trailer records {} ({} files, {} bytes): entries are missing or were added",
                    self.counts.entries, self.counts.files, self.counts.bytes,
                    t.counts.entries, t.counts.files, t.counts.bytes
                ),
            ));
        }
        if t.entries_digest != self.digest.hex() {
            return Err(corrupt(
                &entry.path,
                "the headers' digest does not match the trailer: some entry's metadata was altered",
            ));
        }
        if Some(&t.manifest_digest) != self.manifest_digest.as_ref() {
            return Err(corrupt(
                &entry.path,
                "the manifest does not match the trailer",
            ));
        }
        self.counts.sockets_skipped = t.counts.sockets_skipped;
        self.trailer = Some(t);
        Ok(())
    }

    /// Reads headers (pax, GNU long names) up to the next real member and returns it with
    /// its content positioned at the stored data.
    fn read_member(&mut self) -> Result<Member, ArchiveError> {
        // Unknown member types are skipped; loop rather than recurse (bounded stack).
        loop {
            if let Some(m) = self.read_one_member()? {
                return Ok(m);
            }
        }
    }

    fn read_one_member(&mut self) -> Result<Option<Member>, ArchiveError> {
        let mut attrs = PaxAttrs::default();
        if !self.global.is_empty() {
            let g = std::mem::take(&mut self.global);
            let r = pax::parse_records(&g, |k, v| attrs.apply(k, v));
            self.global = g;
            r.map_err(|e| corrupt(b"", format!("bad pax global header: {e}")))?;
            // Globals that only make sense per file are ignored.
            attrs.path = None;
            attrs.linkpath = None;
            attrs.size = None;
            attrs.sparse_map.clear();
            attrs.sparse_seen = false;
            attrs.sparse_name = None;
        }
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut had_pax = false;
        // Bytes of extended headers (pax, long names) read for this member: bounded so a run
        // of headers cannot pile up memory.
        let mut ext_total = 0u64;
        let block = loop {
            let Some(block) = self.read_block()? else {
                if had_pax || long_name.is_some() || long_link.is_some() {
                    return Err(self.truncated("extended headers"));
                }
                return Ok(Some(Member::End));
            };
            if block.iter().all(|&b| b == 0) {
                if had_pax || long_name.is_some() || long_link.is_some() {
                    return Err(corrupt(b"", "extended header not followed by an entry"));
                }
                return Ok(Some(Member::End));
            }
            let raw_name = header::cstr(header::field(&block, header::NAME));
            if !header::checksum_ok(&block) {
                return Err(corrupt(
                    raw_name,
                    format!(
                        "header checksum mismatch at tar offset {}",
                        self.offset - BLOCK as u64
                    ),
                ));
            }
            let size = header::parse_u64(header::field(&block, header::SIZE))
                .map_err(|e| corrupt(raw_name, format!("bad size field: {e}")))?;
            if matches!(block[header::TYPEFLAG], b'x' | b'g' | b'L' | b'K') {
                ext_total = ext_total.saturating_add(size);
                if ext_total > 4 * MAX_PAX_HEADER {
                    return Err(corrupt(
                        raw_name,
                        format!(
                            "extended headers of {ext_total} bytes before one entry: exceeds the {} bytes allowed",
                            4 * MAX_PAX_HEADER
                        ),
                    ));
                }
            }
            match block[header::TYPEFLAG] {
                b'x' => {
                    let mut data = std::mem::take(&mut self.pax_buf);
                    data.clear();
                    if size > MAX_PAX_HEADER {
                        return Err(corrupt(
                            raw_name,
                            format!("pax header of {size} bytes exceeds the {MAX_PAX_HEADER} bytes allowed"),
                        ));
                    }
                    data.resize(size as usize, 0);
                    self.read_exact_or(&mut data, "a pax header")?;
                    self.skip_padding(header::padding(size), raw_name)?;
                    let r = pax::parse_records(&data, |k, v| attrs.apply(k, v));
                    self.pax_buf = data;
                    r.map_err(|e| corrupt(raw_name, format!("bad pax header: {e}")))?;
                    had_pax = true;
                }
                b'g' => {
                    let data = self.read_small(size, MAX_PAX_HEADER, "a pax global header")?;
                    pax::parse_records(&data, |_, _| Ok(()))
                        .map_err(|e| corrupt(raw_name, format!("bad pax global header: {e}")))?;
                    if self.global.len() + data.len() > MAX_GLOBAL {
                        return Err(corrupt(raw_name, "too many pax global headers"));
                    }
                    self.global.extend_from_slice(&data);
                    let _ = pax::parse_records(&data, |k, v| attrs.apply(k, v));
                    attrs.path = None;
                    attrs.linkpath = None;
                    attrs.size = None;
                    attrs.sparse_map.clear();
                    attrs.sparse_seen = false;
                    attrs.sparse_name = None;
                }
                b'L' => {
                    let mut v = self.read_small(size, MAX_LONG_NAME, "a GNU long name")?;
                    v.truncate(header::cstr(&v).len());
                    long_name = Some(v);
                }
                b'K' => {
                    let mut v = self.read_small(size, MAX_LONG_NAME, "a GNU long link")?;
                    v.truncate(header::cstr(&v).len());
                    long_link = Some(v);
                }
                b'V' => {
                    // Volume label: not a file.
                    self.skip(size + header::padding(size), "a volume label")?;
                    attrs = PaxAttrs::default();
                    long_name = None;
                    long_link = None;
                    had_pax = false;
                }
                b'M' => {
                    return Err(ArchiveError::Unsupported(
                        "multi-volume GNU tar archives are not supported".into(),
                    ))
                }
                _ => break block,
            }
        };
        self.build_entry(&block, attrs, long_name, long_link)
    }

    fn build_entry(
        &mut self,
        block: &[u8; BLOCK],
        mut attrs: PaxAttrs,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Option<Member>, ArchiveError> {
        let magic = header::field(block, header::MAGIC);
        let is_ustar = &magic[..6] == b"ustar\0";
        let raw_path: Vec<u8> = if let Some(p) = attrs.sparse_name.take() {
            p
        } else if let Some(p) = attrs.path.take() {
            p
        } else if let Some(p) = long_name {
            p
        } else {
            let name = header::cstr(header::field(block, header::NAME));
            let prefix = header::cstr(header::field(block, header::PREFIX));
            if is_ustar && !prefix.is_empty() {
                let mut p = prefix.to_vec();
                p.push(b'/');
                p.extend_from_slice(name);
                p
            } else {
                name.to_vec()
            }
        };
        if raw_path.starts_with(b"/") {
            return Err(refused_absolute(&raw_path, "its name is absolute"));
        }
        let ends_with_slash = raw_path.ends_with(b"/");
        let path = digest::normalize(&raw_path).to_vec();
        let num = |f: (usize, usize), what: &str| {
            header::parse_u64(header::field(block, f))
                .map_err(|e| corrupt(&path, format!("bad {what} field: {e}")))
        };
        let mode = num(header::MODE, "mode")? as u32 & 0o7777;
        let uid = match attrs.uid {
            Some(v) => v,
            None => num(header::UID, "uid")?,
        };
        let gid = match attrs.gid {
            Some(v) => v,
            None => num(header::GID, "gid")?,
        };
        let size = match attrs.size {
            Some(v) => v,
            None => num(header::SIZE, "size")?,
        };
        let mtime = match attrs.mtime {
            Some(t) => t,
            None => Timestamp {
                secs: header::parse_i64(header::field(block, header::MTIME))
                    .map_err(|e| corrupt(&path, format!("bad mtime field: {e}")))?,
                nanos: 0,
            },
        };
        let link = || -> Vec<u8> {
            if let Some(l) = attrs.linkpath.clone() {
                l
            } else if let Some(l) = long_link.clone() {
                l
            } else {
                header::cstr(header::field(block, header::LINKNAME)).to_vec()
            }
        };
        let pad = header::padding(size);
        let mut stored = size;
        let mut logical = 0u64;
        let typeflag = block[header::TYPEFLAG];
        let kind = match typeflag {
            b'0' | 0 | b'7' if ends_with_slash && typeflag != b'7' => EntryKind::Dir,
            b'0' | 0 | b'7' => {
                if attrs.sparse_seen {
                    let realsize = attrs
                        .sparse_size
                        .ok_or_else(|| corrupt(&path, "sparse file without its real size"))?;
                    let map = if attrs.sparse_major == Some(1) {
                        let (map, used) = self.read_sparse_v1(&path, size)?;
                        stored = size - used;
                        map
                    } else {
                        std::mem::take(&mut attrs.sparse_map)
                    };
                    let map = check_sparse(&path, map, realsize, stored)?;
                    logical = realsize;
                    EntryKind::File { sparse: Some(map) }
                } else {
                    logical = size;
                    EntryKind::File { sparse: None }
                }
            }
            b'S' => {
                let realsize = header::parse_u64(header::field(block, header::GNU_REALSIZE))
                    .map_err(|e| corrupt(&path, format!("bad sparse real size: {e}")))?;
                let map = self.read_old_gnu_sparse(&path, block)?;
                let map = check_sparse(&path, map, realsize, stored)?;
                logical = realsize;
                EntryKind::File { sparse: Some(map) }
            }
            b'1' => {
                let target = link();
                if target.starts_with(b"/") {
                    return Err(refused_absolute(
                        &raw_path,
                        &format!(
                            "its hard link target '{}' is absolute",
                            String::from_utf8_lossy(&target)
                        ),
                    ));
                }
                EntryKind::HardLink {
                    target: digest::normalize(&target).to_vec(),
                }
            }
            b'2' => EntryKind::Symlink { target: link() },
            b'3' | b'4' => {
                let major = num(header::DEVMAJOR, "device major")?;
                let minor = num(header::DEVMINOR, "device minor")?;
                let (major, minor) = (
                    u32::try_from(major).map_err(|_| corrupt(&path, "device major too large"))?,
                    u32::try_from(minor).map_err(|_| corrupt(&path, "device minor too large"))?,
                );
                if typeflag == b'3' {
                    EntryKind::CharDevice { major, minor }
                } else {
                    EntryKind::BlockDevice { major, minor }
                }
            }
            b'5' | b'D' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            _ => {
                // Unknown member types (e.g. old 'N' rename records) are skipped.
                self.skip(size + pad, "an unknown member")?;
                return Ok(None);
            }
        };
        let (checksum, flags, lifeboat) = match attrs.comment {
            Some(c) => (c.checksum, c.flags, true),
            None => (None, FileFlags::default(), false),
        };
        // GNU tar `--acls` archives carry ACLs only as text: convert them to the raw xattrs
        // Lifeboat restores. In Lifeboat archives the raw xattrs are authoritative (and
        // covered by the digest): the derived text records are ignored.
        if !self.is_lifeboat && !lifeboat {
            for (xattr, text) in std::mem::take(&mut attrs.acl_text) {
                if attrs.xattrs.iter().any(|(n, _)| n == xattr) {
                    continue;
                }
                if let Some(raw) = acl::text_to_xattr(&text, acl::resolve_local) {
                    attrs.xattrs.push((xattr.to_vec(), raw));
                    attrs.xattrs.sort_by(|a, b| a.0.cmp(&b.0));
                }
            }
        }
        let is_file = matches!(kind, EntryKind::File { .. });
        let entry = Entry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: if is_file { logical } else { 0 },
            xattrs: attrs.xattrs,
            flags,
            checksum: if is_file { checksum } else { None },
        };
        Ok(Some(Member::Entry(
            entry,
            Layout {
                stored,
                pad,
                lifeboat,
            },
        )))
    }

    /// Reads the sparse 1.0 map at the start of the data; returns it and the bytes it used.
    fn read_sparse_v1(
        &mut self,
        path: &[u8],
        size: u64,
    ) -> Result<(Vec<(u64, u64)>, u64), ArchiveError> {
        let mut used = 0u64;
        let mut block = [0u8; BLOCK];
        let mut pos = BLOCK; // position in `block`; BLOCK = need a new one
        let mut next_number = |this: &mut Self, used: &mut u64| -> Result<u64, ArchiveError> {
            let mut v: u64 = 0;
            let mut digits = 0;
            loop {
                if pos == BLOCK {
                    if *used + BLOCK as u64 > size {
                        return Err(corrupt(path, "sparse map runs past the file data"));
                    }
                    this.read_exact_or(&mut block, "a sparse map")?;
                    *used += BLOCK as u64;
                    pos = 0;
                }
                let c = block[pos];
                pos += 1;
                match c {
                    b'0'..=b'9' if digits < 19 => {
                        v = v * 10 + (c - b'0') as u64;
                        digits += 1;
                    }
                    b'\n' if digits > 0 => return Ok(v),
                    _ => return Err(corrupt(path, "malformed sparse map")),
                }
            }
        };
        let count = next_number(self, &mut used)?;
        if count as usize > MAX_SPARSE_SEGMENTS {
            return Err(corrupt(
                path,
                format!("sparse map of {count} segments is too large"),
            ));
        }
        let mut map = Vec::with_capacity((count as usize).min(1024));
        for _ in 0..count {
            let o = next_number(self, &mut used)?;
            let l = next_number(self, &mut used)?;
            map.push((o, l));
        }
        if self.is_lifeboat && block[pos.min(BLOCK)..].iter().any(|&b| b != 0) {
            return Err(corrupt(path, "non-zero bytes after the sparse map"));
        }
        Ok((map, used))
    }

    /// Reads the old GNU sparse map: four slots in the header, then extension blocks.
    fn read_old_gnu_sparse(
        &mut self,
        path: &[u8],
        block: &[u8; BLOCK],
    ) -> Result<Vec<(u64, u64)>, ArchiveError> {
        let mut map = Vec::new();
        let parse_slots =
            |map: &mut Vec<(u64, u64)>, area: &[u8], n: usize| -> Result<(), ArchiveError> {
                for i in 0..n {
                    let slot = &area[i * 24..i * 24 + 24];
                    if slot[0] == 0 {
                        break;
                    }
                    let o = header::parse_u64(&slot[..12])
                        .map_err(|e| corrupt(path, format!("bad sparse map: {e}")))?;
                    let l = header::parse_u64(&slot[12..])
                        .map_err(|e| corrupt(path, format!("bad sparse map: {e}")))?;
                    if map.len() >= MAX_SPARSE_SEGMENTS {
                        return Err(corrupt(path, "too many sparse segments"));
                    }
                    map.push((o, l));
                }
                Ok(())
            };
        parse_slots(
            &mut map,
            &block[header::GNU_SPARSE..header::GNU_SPARSE + 96],
            4,
        )?;
        let mut extended = block[header::GNU_ISEXTENDED] != 0;
        while extended {
            let mut ext = [0u8; BLOCK];
            self.read_exact_or(&mut ext, "a sparse header")?;
            parse_slots(&mut map, &ext[..504], 21)?;
            extended = ext[504] != 0;
        }
        Ok(map)
    }
}

/// Validates a sparse map against the real size and the stored bytes; drops empty segments.
fn check_sparse(
    path: &[u8],
    map: Vec<(u64, u64)>,
    realsize: u64,
    stored: u64,
) -> Result<Vec<(u64, u64)>, ArchiveError> {
    let mut end = 0u64;
    let mut total = 0u64;
    let mut out = Vec::with_capacity(map.len());
    for (o, l) in map {
        let e = o
            .checked_add(l)
            .ok_or_else(|| corrupt(path, "sparse segment overflows"))?;
        if e > realsize {
            return Err(corrupt(path, "sparse segment beyond the end of the file"));
        }
        if l == 0 {
            continue;
        }
        if o < end {
            return Err(corrupt(path, "sparse segments overlap or are out of order"));
        }
        end = e;
        total += l;
        out.push((o, l));
    }
    if total != stored {
        return Err(corrupt(
            path,
            format!("sparse map describes {total} bytes but {stored} are stored"),
        ));
    }
    Ok(out)
}

/// Accounts for `data` of the current entry's stored content: hashes it (holes of a sparse
/// file as zeros) when the entry is verified.
fn consume(cur: &mut Option<Current>, h: &mut blake3::Hasher, mut data: &[u8]) {
    let Some(cur) = cur.as_mut() else {
        return;
    };
    cur.left -= data.len() as u64;
    if cur.expected.is_none() {
        return;
    }
    match cur.sparse.as_mut() {
        None => {
            h.update(data);
        }
        Some(sp) => {
            while !data.is_empty() {
                if sp.in_seg == 0 {
                    let Some(&(o, l)) = sp.map.get(sp.next) else {
                        break;
                    };
                    sp.next += 1;
                    hash_zeros(h, o - sp.logical);
                    sp.logical = o;
                    sp.in_seg = l;
                    continue;
                }
                let k = (sp.in_seg.min(data.len() as u64)) as usize;
                h.update(&data[..k]);
                sp.in_seg -= k as u64;
                sp.logical += k as u64;
                data = &data[k..];
            }
        }
    }
}

fn hash_zeros(h: &mut blake3::Hasher, mut n: u64) {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        h.update(&ZEROS[..k]);
        n -= k as u64;
    }
}
