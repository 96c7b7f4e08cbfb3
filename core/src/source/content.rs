//! Reading a regular file's content consistently with its checksum.
//!
//! The archive needs the file's checksum ([`crate::archive::checksum`]) in the header, that is
//! before the content. So:
//! - a small file (up to [`SMALL_FILE_LIMIT`] bytes of data) is read into memory, hashed, and
//!   its stat compared before and after; on a change it is read again (up to [`TRIES`] times);
//! - a larger file is hashed in a first pass (same stat check and retries) and streamed in a
//!   second pass by the writer, hashed again ([`StreamReader`]); the writer compares both;
//! - a small file that grows while it is read (its size is checked again on every try) is
//!   never read whole into more memory than was reserved for it: it takes the large-file path;
//! - a larger file that keeps changing during the first pass is copied once into an unnamed
//!   temporary file (O_TMPFILE, spool) while hashed, and the copy is archived, so the archive
//!   holds one consistent version of it, and the file is reported as changed. The spool
//!   directory is never on a filesystem being backed up (see `SourceOptions::spool_dir`);
//!   without one, the file is streamed once more and the writer reports it if it changed.
//!
//! [`read_content`] chooses between the paths.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::archive::checksum::ContentHasher;

/// Files with at most this much data are read into memory (tuned with `make bench`).
pub const SMALL_FILE_LIMIT: u64 = 8 << 20;
/// How many times a changing file is read before it is archived as "changed".
pub const TRIES: usize = 3;
/// Read buffer for large files.
pub const CHUNK: usize = 1 << 20;

/// What identifies a version of a file's content (`blocks` only serves to spot holes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Snapshot {
    pub fn of(file: &File) -> io::Result<Self> {
        let m = file.metadata()?;
        Ok(Self {
            ino: m.ino(),
            size: m.size(),
            blocks: m.blocks(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    pub fn from_stat(st: &libc::stat) -> Self {
        Self {
            ino: st.st_ino,
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// Whether both describe the same version of the content.
    pub fn same_version(&self, other: &Snapshot) -> bool {
        self.ino == other.ino
            && self.size == other.size
            && self.mtime == other.mtime
            && self.ctime == other.ctime
    }
}

/// The layout of a file's data: the whole file, or the data segments of a sparse file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub size: u64,
    pub sparse: Option<Vec<(u64, u64)>>,
}

impl Layout {
    pub fn data_len(&self) -> u64 {
        match &self.sparse {
            Some(m) => super::sparse::data_len(m),
            None => self.size,
        }
    }
    /// The hasher of the archive's per-file checksum for this layout.
    pub fn hasher(&self) -> io::Result<ContentHasher> {
        ContentHasher::new(self.size, self.sparse.as_deref())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
    fn segments(&self) -> Vec<(u64, u64)> {
        match &self.sparse {
            Some(m) => m.clone(),
            None => vec![(0, self.size)],
        }
    }
}

/// Reads the data of `layout` from `file`, hashing the logical content into `h` and passing
/// the data bytes to `sink`. A file that got shorter is padded with zeros, so the bytes
/// produced always match the layout. Returns whether it was short.
pub fn read_layout(
    file: &File,
    layout: &Layout,
    h: &mut ContentHasher,
    buf: &mut [u8],
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<bool> {
    let mut short = false;
    let mut pos = 0u64;
    for (off, len) in layout.segments() {
        h.hole(off.saturating_sub(pos));
        let end = off + len;
        let mut at = off;
        while at < end {
            let want = ((end - at) as usize).min(buf.len());
            let n = if short {
                0
            } else {
                read_at_retry(file, &mut buf[..want], at)?
            };
            if n == 0 {
                short = true;
                buf[..want].fill(0);
                h.data(&buf[..want]);
                sink(&buf[..want])?;
                at += want as u64;
                continue;
            }
            h.data(&buf[..n]);
            sink(&buf[..n])?;
            at += n as u64;
        }
        pos = end;
    }
    h.hole(layout.size.saturating_sub(pos));
    Ok(short)
}

fn read_at_retry(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A small file read into memory.
pub struct SmallRead {
    pub data: Vec<u8>,
    pub checksum: [u8; 32],
    pub layout: Layout,
    pub snapshot: Snapshot,
    /// It kept changing: this is the last version read.
    pub changed: bool,
}

/// The outcome of [`read_small`].
pub enum Small {
    Read(SmallRead),
    /// The file grew past `max_data` while it was read: read it as a large file, from this
    /// stat on.
    Grew(Snapshot),
}

/// Reads a small file whole into `data` (a recycled buffer), retrying while its stat changes
/// under us. `first` is the stat taken when the file was opened; `layout_of` computes the
/// layout (size, holes) for each try. Never holds more than `max_data` bytes of data: a try
/// whose layout has more returns [`Small::Grew`].
pub fn read_small(
    file: &File,
    first: Snapshot,
    mut data: Vec<u8>,
    max_data: u64,
    mut layout_of: impl FnMut(&File, &Snapshot) -> io::Result<Layout>,
) -> io::Result<Small> {
    let mut before = first;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let layout = layout_of(file, &before)?;
        if layout.data_len() > max_data {
            return Ok(Small::Grew(before));
        }
        data.clear();
        data.resize(layout.data_len() as usize, 0);
        let mut h = layout.hasher()?;
        let short = read_into(file, &layout, &mut h, &mut data)?;
        let after = Snapshot::of(file)?;
        let stable = after.same_version(&before) && !short;
        if stable || attempt >= TRIES {
            return Ok(Small::Read(SmallRead {
                data,
                checksum: h.finalize(),
                layout,
                snapshot: before,
                changed: !stable,
            }));
        }
        before = after;
    }
}

/// Reads the data of `layout` straight into `data` (already sized to the data length and
/// zeroed), hashing the logical content. Returns whether the file ended early (the rest stays
/// zeros).
fn read_into(
    file: &File,
    layout: &Layout,
    h: &mut ContentHasher,
    data: &mut [u8],
) -> io::Result<bool> {
    let mut short = false;
    let (mut pos, mut di) = (0u64, 0usize);
    for (off, len) in layout.segments() {
        h.hole(off.saturating_sub(pos));
        let dst = &mut data[di..di + len as usize];
        let mut got = 0;
        while got < dst.len() && !short {
            let n = read_at_retry(file, &mut dst[got..], off + got as u64)?;
            if n == 0 {
                short = true;
            }
            got += n;
        }
        h.data(dst);
        di += len as usize;
        pos = off + len;
    }
    h.hole(layout.size.saturating_sub(pos));
    Ok(short)
}

/// A large file after its first (hashing) pass.
pub enum LargeRead {
    /// Stable during the first pass: stream it in the second pass and compare.
    Stream {
        checksum: [u8; 32],
        layout: Layout,
        snapshot: Snapshot,
    },
    /// Kept changing: one version copied into an unnamed temporary file (data bytes only).
    Spooled {
        spool: File,
        checksum: [u8; 32],
        layout: Layout,
        snapshot: Snapshot,
    },
}

/// First pass over a large file. A file that keeps changing is copied into `spool_dir`;
/// without one, the last try is streamed (the writer reports the file if it changes again).
pub fn read_large(
    file: &File,
    first: Snapshot,
    mut layout_of: impl FnMut(&File, &Snapshot) -> io::Result<Layout>,
    spool_dir: Option<&std::path::Path>,
) -> io::Result<LargeRead> {
    let mut buf = vec![0u8; CHUNK];
    let mut before = first;
    for attempt in 1..=TRIES {
        let layout = layout_of(file, &before)?;
        let mut h = layout.hasher()?;
        let short = read_layout(file, &layout, &mut h, &mut buf, &mut |_| Ok(()))?;
        let after = Snapshot::of(file)?;
        if (after.same_version(&before) && !short) || (attempt == TRIES && spool_dir.is_none()) {
            return Ok(LargeRead::Stream {
                checksum: h.finalize(),
                layout,
                snapshot: before,
            });
        }
        before = after;
    }
    let Some(spool_dir) = spool_dir else {
        return Err(io::Error::other("internal error: no spool directory"));
    };
    // Keeps changing: take one copy of it.
    let layout = layout_of(file, &before)?;
    let mut spool = spool_file(spool_dir)?;
    let mut h = layout.hasher()?;
    {
        let mut w = io::BufWriter::with_capacity(CHUNK, &mut spool);
        read_layout(file, &layout, &mut h, &mut buf, &mut |b| w.write_all(b))?;
        w.flush()?;
    }
    spool.rewind()?;
    Ok(LargeRead::Spooled {
        spool,
        checksum: h.finalize(),
        layout,
        snapshot: before,
    })
}

/// A file's content as read for the archive.
pub enum ContentRead {
    /// Read into memory.
    Small(SmallRead),
    /// Large, or a small file that grew while it was read.
    Large(LargeRead),
}

/// Reads a regular file for the archive: into memory when its data (`first_len`, from the
/// stat taken when it was opened) is at most `small_limit`, at most `first_len` bytes of it
/// (what the caller reserved), re-checked on every try; else, or when it grows past that, by
/// the large-file path (hash pass, then streamed or spooled into `spool_dir`). `buffer`
/// gives the memory to read a small file into.
pub fn read_content(
    file: &File,
    first: Snapshot,
    first_len: u64,
    small_limit: u64,
    buffer: impl FnOnce() -> Vec<u8>,
    spool_dir: Option<&std::path::Path>,
    mut layout_of: impl FnMut(&File, &Snapshot) -> io::Result<Layout>,
) -> io::Result<ContentRead> {
    let mut start = first;
    if first_len <= small_limit {
        match read_small(file, first, buffer(), first_len, &mut layout_of)? {
            Small::Read(r) => return Ok(ContentRead::Small(r)),
            Small::Grew(now) => start = now,
        }
    }
    read_large(file, start, layout_of, spool_dir).map(ContentRead::Large)
}

/// An unnamed temporary file in `dir` (never visible, gone when closed). Where the filesystem
/// has no O_TMPFILE, a named file is created and unlinked at once.
fn spool_file(dir: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir);
    match unnamed {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) => {}
        r => return r,
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".lifeboat-spool-{}-{n}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

/// The second pass over a large file: yields its data bytes (as laid out), hashing the logical
/// content; [`StreamReader::verdict`] says whether it matched the first pass.
pub struct StreamReader<'a> {
    file: &'a File,
    segments: Vec<(u64, u64)>,
    size: u64,
    seg: usize,
    at: u64,
    hashed_to: u64,
    short: bool,
    hasher: ContentHasher,
}

impl<'a> StreamReader<'a> {
    pub fn new(file: &'a File, layout: &Layout) -> Self {
        Self {
            file,
            segments: layout.segments(),
            size: layout.size,
            seg: 0,
            at: layout.segments().first().map(|s| s.0).unwrap_or(0),
            hashed_to: 0,
            short: false,
            // An invalid map was refused by the first pass; should one get here, its
            // checksum differs from the first pass and the file is reported as changed.
            hasher: layout
                .hasher()
                .unwrap_or_else(|_| ContentHasher::new_plain()),
        }
    }

    /// After everything was read: the checksum of what was produced, and whether the file
    /// ended early.
    pub fn verdict(mut self) -> ([u8; 32], bool) {
        let rest = self.size.saturating_sub(self.hashed_to);
        self.hasher.hole(rest);
        (self.hasher.finalize(), self.short)
    }
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(&(off, len)) = self.segments.get(self.seg) else {
                return Ok(0);
            };
            let end = off + len;
            if self.at >= end {
                self.seg += 1;
                if let Some(&(next, _)) = self.segments.get(self.seg) {
                    self.at = next;
                }
                continue;
            }
            if self.hashed_to < self.at {
                self.hasher.hole(self.at - self.hashed_to);
                self.hashed_to = self.at;
            }
            let want = ((end - self.at) as usize).min(buf.len());
            if want == 0 {
                return Ok(0);
            }
            let n = if self.short {
                0
            } else {
                read_at_retry(self.file, &mut buf[..want], self.at)?
            };
            let n = if n == 0 {
                self.short = true;
                buf[..want].fill(0);
                want
            } else {
                n
            };
            self.hasher.data(&buf[..n]);
            self.at += n as u64;
            self.hashed_to = self.at;
            return Ok(n);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn small(r: Small) -> io::Result<SmallRead> {
        match r {
            Small::Read(r) => Ok(r),
            Small::Grew(_) => Err(io::Error::other("expected a small read")),
        }
    }

    fn whole(_: &File, s: &Snapshot) -> io::Result<Layout> {
        Ok(Layout {
            size: s.size,
            sparse: None,
        })
    }

    #[test]
    fn small_file_checksum_is_blake3_of_content() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello lifeboat")?;
        let f = File::open(&p)?;
        let r = small(read_small(
            &f,
            Snapshot::of(&f)?,
            Vec::new(),
            1 << 20,
            whole,
        )?)?;
        assert_eq!(r.data, b"hello lifeboat");
        assert_eq!(r.checksum, *blake3::hash(b"hello lifeboat").as_bytes());
        assert!(!r.changed);
        Ok(())
    }

    #[test]
    fn stream_reader_matches_first_pass_and_sparse_hash_counts_holes() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&p)?;
        f.write_all_at(b"abc", 4096)?;
        f.set_len(3 * 4096)?;
        let layout = Layout {
            size: 3 * 4096,
            sparse: Some(vec![(4096, 3)]),
        };
        let mut r = StreamReader::new(&f, &layout);
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        assert_eq!(out, b"abc");
        let (sum, short) = r.verdict();
        let mut logical = vec![0u8; 3 * 4096];
        logical[4096..4099].copy_from_slice(b"abc");
        let want = crate::archive::checksum::of_content(&logical, Some(&[(4096, 3)]))
            .map_err(io::Error::other)?;
        assert_eq!(sum, want);
        assert!(!short);
        Ok(())
    }

    #[test]
    fn a_file_rewritten_during_the_read_is_read_again() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f");
        std::fs::write(&p, b"version 1")?;
        let f = File::open(&p)?;
        let mut calls = 0;
        // The layout callback runs at the start of every try: rewrite the file during the
        // first try only (different size, so the stat changes for sure).
        let r = small(read_small(
            &f,
            Snapshot::of(&f)?,
            Vec::new(),
            1 << 20,
            |file, s| {
                calls += 1;
                if calls == 1 {
                    std::fs::write(&p, b"version 2, longer")?;
                }
                whole(file, s)
            },
        )?)?;
        assert_eq!(calls, 2);
        assert!(!r.changed);
        assert_eq!(r.data, b"version 2, longer");
        assert_eq!(r.checksum, *blake3::hash(b"version 2, longer").as_bytes());
        Ok(())
    }

    #[test]
    fn a_file_that_keeps_changing_is_flagged_and_consistent() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("f");
        std::fs::write(&p, b"v0")?;
        let f = File::open(&p)?;
        let mut n = 0;
        let r = small(read_small(
            &f,
            Snapshot::of(&f)?,
            Vec::new(),
            1 << 20,
            |file, s| {
                n += 1;
                std::fs::write(&p, format!("version {n} {}", "x".repeat(n)))?;
                whole(file, s)
            },
        )?)?;
        assert!(r.changed);
        assert_eq!(r.checksum, *blake3::hash(&r.data).as_bytes());
        // Large path: spooled copy, consistent with its checksum.
        let mut n = 0;
        let r = read_large(
            &f,
            Snapshot::of(&f)?,
            |file, s| {
                n += 1;
                std::fs::write(&p, format!("large {n} {}", "y".repeat(n)))?;
                whole(file, s)
            },
            Some(dir.path()),
        )?;
        match r {
            LargeRead::Spooled {
                mut spool,
                checksum,
                layout,
                ..
            } => {
                let mut data = Vec::new();
                spool.read_to_end(&mut data)?;
                assert_eq!(data.len() as u64, layout.size);
                assert_eq!(checksum, *blake3::hash(&data).as_bytes());
            }
            LargeRead::Stream { .. } => return Err(io::Error::other("expected a spooled copy")),
        }
        Ok(())
    }
}
