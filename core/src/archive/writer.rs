//! Writes the Lifeboat pax archive (the format is described in [`super`]).
//!
//! The writer keeps one large output buffer and reads file content straight into it, so a
//! regular file costs no allocation and one copy; pax records are built in a reused scratch
//! buffer.

use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::acl;
use super::digest::{self, EntriesDigest};
use super::entry::{Entry, EntryKind, FileFlags, Timestamp};
use super::header::{self, BLOCK};
use super::manifest::{
    Counts, Manifest, Trailer, FORMAT_MINOR, FORMAT_VERSION, MANIFEST_PATH, TRAILER_PATH,
};
use super::pax;
use super::sparse;
use super::ArchiveError;

const BUF_SIZE: usize = 512 * 1024;
/// Name of the pax extended header members (the name is not used by pax readers).
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// Writes an archive into `W` (usually a compression [`crate::codec::Encoder`]).
pub struct ArchiveWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    len: usize,
    written: u64,
    pax: Vec<u8>,
    name: Vec<u8>,
    scratch: Vec<u8>,
    value: Vec<u8>,
    digest: EntriesDigest,
    counts: Counts,
    manifest_digest: String,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive: writes the manifest as its first entry.
    pub fn new(out: W, manifest: &Manifest) -> Result<Self, ArchiveError> {
        Self::start(out, manifest, FORMAT_MINOR)
    }

    /// An archive claiming an older minor version (tests of the reader's compatibility; the
    /// caller provides checksums with that version's meaning).
    #[cfg(test)]
    pub(crate) fn with_format_minor(
        out: W,
        manifest: &Manifest,
        format_minor: u32,
    ) -> Result<Self, ArchiveError> {
        Self::start(out, manifest, format_minor)
    }

    fn start(out: W, manifest: &Manifest, format_minor: u32) -> Result<Self, ArchiveError> {
        let mut w = Self {
            out,
            buf: vec![0u8; BUF_SIZE],
            len: 0,
            written: 0,
            pax: Vec::with_capacity(4096),
            name: Vec::with_capacity(256),
            scratch: Vec::with_capacity(256),
            value: Vec::with_capacity(256),
            digest: EntriesDigest::new(),
            counts: Counts::default(),
            manifest_digest: String::new(),
        };
        let mut manifest = manifest.clone();
        manifest.format_version = FORMAT_VERSION;
        manifest.format_minor = format_minor;
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ArchiveError::Unsupported(format!("cannot encode the manifest: {e}")))?;
        let sum = blake3::hash(&json);
        w.manifest_digest = sum.to_hex().to_string();
        w.write_meta(MANIFEST_PATH, &json, *sum.as_bytes())?;
        Ok(w)
    }

    /// Counts of the entries written so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Bytes of tar stream produced so far (before compression).
    pub fn bytes_written(&self) -> u64 {
        self.written + self.len as u64
    }

    /// Appends one entry. For a regular file `content` yields its content (for a sparse file
    /// only the data segments, in order) and `entry.checksum` must be set; for other kinds
    /// `content` is not read. When `content` ends early the entry is completed with zeros (the
    /// archive stays readable) and an error is returned: the caller should treat the backup
    /// as failed or re-read the file into a new archive.
    pub fn append(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), ArchiveError> {
        let path = digest::normalize(&entry.path);
        if path == MANIFEST_PATH.as_bytes() || path == TRAILER_PATH.as_bytes() {
            return Err(ArchiveError::Unsupported(format!(
                "'{}' is reserved for Lifeboat's own metadata",
                entry.display_path()
            )));
        }
        // Member name: "./" + path, directories with a trailing slash, the root is "./".
        self.name.clear();
        self.name.extend_from_slice(b"./");
        if path != b"." {
            self.name.extend_from_slice(path);
            if matches!(entry.kind, EntryKind::Dir) {
                self.name.push(b'/');
            }
        }
        self.pax.clear();
        let mut block = [0u8; BLOCK];
        let mut typeflag = b'0';
        let mut device: Option<(u32, u32)> = None;
        let mut data_size = 0u64; // bytes following the header (before padding)
        let mut stored = 0u64; // bytes to copy from `content`
        self.scratch.clear(); // sparse map text, for a sparse file
        let mut sparse_name = false;
        let mut linkname: Option<&[u8]> = None;
        let mut hardlink_target = Vec::new();
        let mut normalized: Option<Entry> = None;
        let mut plan: Option<Vec<sparse::Fill>> = None;
        match &entry.kind {
            EntryKind::File { sparse } => {
                entry.checksum.as_ref().ok_or_else(|| {
                    ArchiveError::Unsupported(format!(
                        "internal error: no checksum for '{}'",
                        entry.display_path()
                    ))
                })?;
                match sparse {
                    None => {
                        stored = entry.size;
                        data_size = entry.size;
                    }
                    Some(map) => {
                        let (aligned, fill) = sparse::align(map, entry.size).map_err(|reason| {
                            ArchiveError::Corrupt {
                                path: entry.display_path(),
                                reason,
                            }
                        })?;
                        stored = sparse_map_text(&mut self.scratch, &aligned, entry.size);
                        let map_len = self.scratch.len() as u64;
                        let padded = map_len + header::padding(map_len);
                        self.scratch.resize(padded as usize, 0);
                        data_size = padded + stored;
                        if aligned != *map {
                            let mut e = entry.clone();
                            e.kind = EntryKind::File {
                                sparse: Some(aligned),
                            };
                            normalized = Some(e);
                        }
                        plan = Some(fill);
                        sparse_name = true;
                        pax::push_record(&mut self.pax, b"GNU.sparse.major", b"1");
                        pax::push_record(&mut self.pax, b"GNU.sparse.minor", b"0");
                        pax::push_record(&mut self.pax, b"GNU.sparse.name", &self.name);
                        let mut v = Vec::with_capacity(20);
                        pax::push_decimal(&mut v, entry.size);
                        pax::push_record(&mut self.pax, b"GNU.sparse.realsize", &v);
                    }
                }
            }
            EntryKind::Dir => typeflag = b'5',
            EntryKind::Symlink { target } => {
                typeflag = b'2';
                linkname = Some(target);
            }
            EntryKind::HardLink { target } => {
                typeflag = b'1';
                hardlink_target.extend_from_slice(b"./");
                hardlink_target.extend_from_slice(digest::normalize(target));
                linkname = Some(&hardlink_target);
            }
            EntryKind::CharDevice { major, minor } => {
                typeflag = b'3';
                device = Some((*major, *minor));
            }
            EntryKind::BlockDevice { major, minor } => {
                typeflag = b'4';
                device = Some((*major, *minor));
            }
            EntryKind::Fifo => typeflag = b'6',
        }

        // Name field (and pax path when it does not fit).
        let name_field: &[u8] = if sparse_name {
            // GNU's convention for sparse 1.0: a placeholder name, the real one in the pax header.
            let base = match self.name.iter().rposition(|&c| c == b'/') {
                Some(p) if p + 1 < self.name.len() => &self.name[p + 1..],
                _ => b"file",
            };
            let mut n = b"./GNUSparseFile.0/".to_vec();
            n.extend_from_slice(&base[..base.len().min(100 - n.len())]);
            block[..n.len()].copy_from_slice(&n);
            &[]
        } else {
            &self.name
        };
        let non_utf8 = std::str::from_utf8(&self.name).is_err()
            || linkname.is_some_and(|l| std::str::from_utf8(l).is_err());
        let long_name = name_field.len() > 100;
        let long_link = linkname.is_some_and(|l| l.len() > 100);
        if non_utf8 && (long_name || long_link || sparse_name) {
            // Keep raw bytes: tell pax readers the names are not UTF-8.
            let mut with_charset = Vec::with_capacity(self.pax.len() + 32);
            pax::push_record(&mut with_charset, b"hdrcharset", b"BINARY");
            with_charset.extend_from_slice(&self.pax);
            self.pax = with_charset;
        }
        if long_name {
            pax::push_record(&mut self.pax, b"path", name_field);
            block[..100].copy_from_slice(&name_field[..100]);
        } else if !sparse_name {
            block[..name_field.len()].copy_from_slice(name_field);
        }
        if let Some(l) = linkname {
            if long_link {
                pax::push_record(&mut self.pax, b"linkpath", l);
                block[header::LINKNAME.0..header::LINKNAME.0 + 100].copy_from_slice(&l[..100]);
            } else {
                block[header::LINKNAME.0..header::LINKNAME.0 + l.len()].copy_from_slice(l);
            }
        }
        let mut num = [0u8; 24];
        if !header::fits_octal(data_size, header::SIZE.1) {
            pax::push_record(&mut self.pax, b"size", dec(&mut num, data_size));
        }
        if !header::fits_octal(entry.uid, header::UID.1) {
            pax::push_record(&mut self.pax, b"uid", dec(&mut num, entry.uid));
        }
        if !header::fits_octal(entry.gid, header::GID.1) {
            pax::push_record(&mut self.pax, b"gid", dec(&mut num, entry.gid));
        }
        let t = entry.mtime;
        if t.nanos != 0 || t.secs < 0 || !header::fits_octal(t.secs as u64, header::MTIME.1) {
            self.value.clear();
            pax::push_time(&mut self.value, t);
            pax::push_record(&mut self.pax, b"mtime", &self.value);
        }
        let checksum = match entry.kind {
            EntryKind::File { .. } => entry.checksum.as_ref(),
            _ => None,
        };
        if checksum.is_some() || !entry.flags.is_empty() {
            self.value.clear();
            pax::push_lifeboat_comment(&mut self.value, checksum, entry.flags);
            pax::push_record(&mut self.pax, b"comment", &self.value);
        }
        for (k, v) in &entry.xattrs {
            if k.is_empty() || k.contains(&b'=') || k.contains(&0) {
                return Err(ArchiveError::Unsupported(format!(
                    "extended attribute name '{}' of '{}' cannot be stored in a pax header",
                    String::from_utf8_lossy(k),
                    entry.display_path()
                )));
            }
            self.value.clear();
            self.value.extend_from_slice(b"SCHILY.xattr.");
            self.value.extend_from_slice(k);
            pax::push_record(&mut self.pax, &self.value, v);
        }
        // GNU tar's --acls restores ACLs only from its text records: derive them from the raw
        // ACL xattrs (which stay authoritative for Lifeboat's reader and the entries digest).
        for (k, v) in &entry.xattrs {
            if let (Some(key), Some(text)) = (acl::pax_name_for_xattr(k), acl::xattr_to_text(v)) {
                pax::push_record(&mut self.pax, key, &text);
            }
        }

        // Remaining ustar fields.
        fill_header(
            &mut block,
            typeflag,
            entry.mode & 0o7777,
            entry.uid,
            entry.gid,
            data_size,
            entry.mtime.secs,
        );
        if let Some((major, minor)) = device {
            header::put_u64(&mut block, header::DEVMAJOR, major as u64);
            header::put_u64(&mut block, header::DEVMINOR, minor as u64);
        }
        header::set_checksum(&mut block);

        if !self.pax.is_empty() {
            let pax = std::mem::take(&mut self.pax);
            let r = self.write_pax_header(&pax, entry.mtime.secs);
            self.pax = pax;
            r?;
        }
        self.put(&block)?;
        if !self.scratch.is_empty() {
            let map = std::mem::take(&mut self.scratch);
            let r = self.put(&map);
            self.scratch = map;
            r?;
        }
        let short = match &plan {
            None => self.copy_content(content, stored)?,
            Some(plan) => {
                let mut short = 0;
                for step in plan {
                    match *step {
                        sparse::Fill::Data(n) => short += self.copy_content(content, n)?,
                        sparse::Fill::Zeros(n) => self.put_zeros_u64(n)?,
                    }
                }
                short
            }
        };
        self.put_zeros(header::padding(data_size) as usize)?;

        let stored_entry = normalized.as_ref().unwrap_or(entry);
        self.digest.add(stored_entry);
        digest::count(&mut self.counts, stored_entry);
        if short > 0 {
            return Err(ArchiveError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "'{}' became {short} bytes shorter while it was read; its archived copy is \
                     incomplete (run the backup again)",
                    entry.display_path()
                ),
            )));
        }
        Ok(())
    }

    /// Writes the trailer and the end-of-archive blocks, flushes, and returns the inner
    /// writer (not finished: call the encoder's `finish()`) and the trailer.
    pub fn finish(
        mut self,
        changed_files: Vec<String>,
        sockets_skipped: u64,
    ) -> Result<(W, Trailer), ArchiveError> {
        self.counts.sockets_skipped = sockets_skipped;
        let trailer = Trailer {
            format_version: FORMAT_VERSION,
            counts: self.counts.clone(),
            entries_digest: self.digest.hex(),
            manifest_digest: self.manifest_digest.clone(),
            finished: rfc3339_utc(SystemTime::now()),
            changed_files,
        };
        let json = serde_json::to_vec_pretty(&trailer)
            .map_err(|e| ArchiveError::Unsupported(format!("cannot encode the trailer: {e}")))?;
        let sum = blake3::hash(&json);
        self.write_meta(TRAILER_PATH, &json, *sum.as_bytes())?;
        self.put_zeros(2 * BLOCK)?;
        self.flush_buf()?;
        self.out.flush()?;
        Ok((self.out, trailer))
    }

    /// The manifest or trailer: a 0600 regular file owned by root, with its checksum.
    fn write_meta(&mut self, path: &str, json: &[u8], sum: [u8; 32]) -> Result<(), ArchiveError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut name = b"./".to_vec();
        name.extend_from_slice(path.as_bytes());
        let mut pax = Vec::with_capacity(128);
        let mut v = Vec::with_capacity(100);
        pax::push_lifeboat_comment(&mut v, Some(&sum), FileFlags::default());
        pax::push_record(&mut pax, b"comment", &v);
        self.write_pax_header(&pax, now)?;
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(&name);
        fill_header(&mut block, b'0', 0o600, 0, 0, json.len() as u64, now);
        header::set_checksum(&mut block);
        self.put(&block)?;
        self.put(json)?;
        self.put_zeros(header::padding(json.len() as u64) as usize)?;
        Ok(())
    }

    fn write_pax_header(&mut self, pax: &[u8], mtime: i64) -> Result<(), ArchiveError> {
        let mut block = [0u8; BLOCK];
        block[..PAX_NAME.len()].copy_from_slice(PAX_NAME);
        fill_header(
            &mut block,
            b'x',
            0o644,
            0,
            0,
            pax.len() as u64,
            mtime.max(0),
        );
        header::set_checksum(&mut block);
        self.put(&block)?;
        self.put(pax)?;
        self.put_zeros(header::padding(pax.len() as u64) as usize)?;
        Ok(())
    }

    /// Copies exactly `n` bytes of content into the buffer; returns how many were missing
    /// (replaced by zeros) when the content ended early.
    fn copy_content(&mut self, content: &mut dyn Read, mut n: u64) -> Result<u64, ArchiveError> {
        while n > 0 {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let room = (self.buf.len() - self.len).min(n.min(usize::MAX as u64) as usize);
            match content.read(&mut self.buf[self.len..self.len + room]) {
                Ok(0) => {
                    self.put_zeros_u64(n)?;
                    return Ok(n);
                }
                Ok(k) => {
                    self.len += k;
                    n -= k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ArchiveError::Io(e)),
            }
        }
        Ok(0)
    }

    fn put(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let k = (self.buf.len() - self.len).min(data.len());
            self.buf[self.len..self.len + k].copy_from_slice(&data[..k]);
            self.len += k;
            data = &data[k..];
        }
        Ok(())
    }

    fn put_zeros(&mut self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let k = (self.buf.len() - self.len).min(n);
            self.buf[self.len..self.len + k].fill(0);
            self.len += k;
            n -= k;
        }
        Ok(())
    }

    fn put_zeros_u64(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let z = n.min(BUF_SIZE as u64) as usize;
            self.put_zeros(z)?;
            n -= z as u64;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.len > 0 {
            self.out.write_all(&self.buf[..self.len])?;
            self.written += self.len as u64;
            self.len = 0;
        }
        Ok(())
    }
}

/// The one ustar header builder: fills every field but the name, link name, device numbers
/// (set to 0 here; a device entry overwrites them) and the checksum.
fn fill_header(
    block: &mut [u8; BLOCK],
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
) {
    header::put_u64(block, header::MODE, mode as u64);
    header::put_u64(block, header::UID, uid);
    header::put_u64(block, header::GID, gid);
    header::put_u64(block, header::SIZE, size);
    header::put_i64(block, header::MTIME, mtime);
    block[header::TYPEFLAG] = typeflag;
    block[header::MAGIC.0..header::MAGIC.0 + 8].copy_from_slice(header::USTAR_MAGIC);
    header::put_u64(block, header::DEVMAJOR, 0);
    header::put_u64(block, header::DEVMINOR, 0);
}

fn dec(buf: &mut [u8; 24], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Writes the sparse map of format 1.0 (`count\n` then `offset\nlength\n` per segment) for an
/// aligned map and returns the number of data bytes. When the file ends in a hole a final
/// `(size, 0)` segment is added so every extractor sets the full size (GNU tar does the same).
fn sparse_map_text(out: &mut Vec<u8>, map: &[(u64, u64)], size: u64) -> u64 {
    let end = map.last().map_or(0, |&(o, l)| o + l);
    let stored = map.iter().map(|&(_, l)| l).sum();
    let terminator = end < size || map.is_empty();
    pax::push_decimal(out, map.len() as u64 + terminator as u64);
    out.push(b'\n');
    for &(o, l) in map {
        pax::push_decimal(out, o);
        out.push(b'\n');
        pax::push_decimal(out, l);
        out.push(b'\n');
    }
    if terminator {
        pax::push_decimal(out, size);
        out.extend_from_slice(b"\n0\n");
    }
    stored
}

/// RFC 3339 UTC time with second precision, e.g. `2026-11-22T03:04:05Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    crate::clock::UtcTime::from_unix(secs).rfc3339()
}

/// The timestamp of a `SystemTime` (for callers building entries).
pub fn timestamp(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        },
        Err(e) => {
            let d = e.duration();
            if d.subsec_nanos() == 0 {
                Timestamp {
                    secs: -(d.as_secs() as i64),
                    nanos: 0,
                }
            } else {
                Timestamp {
                    secs: -(d.as_secs() as i64) - 1,
                    nanos: 1_000_000_000 - d.subsec_nanos(),
                }
            }
        }
    }
}
