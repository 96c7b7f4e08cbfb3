//! The two threads of [`super::extract`]: one reads the archive (headers, content, every
//! checksum: the decompression has a thread of its own behind it), the other creates the files
//! and writes them. They meet in a bounded channel of batches of [`Piece`]s (one hand-over
//! per batch, not per small file): an entry with its first chunk of content (a small file's
//! whole content), then the further chunks of a large one, at most [`CHUNK`] each, so the
//! writer writes in large pieces; at most [`IN_FLIGHT`] batches (each about [`CHUNK`] bytes at
//! most) are held between the two.
//!
//! A chunk marked `last` was read to the end of its entry's content, so its checksum was
//! checked before the writer sees the mark (a mismatch reaches the writer as the error of the
//! read instead, exactly as a direct read would give it).

use super::{entry_bytes, locate, Extractor, RestoreError};
use crate::archive::reader::ArchiveReader;
use crate::archive::{Entry, EntryKind};
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

/// The largest chunk of content sent at once (and written with one call).
pub const CHUNK: usize = 1 << 20;
/// Batches waiting between the threads (each of at most [`BATCH`] pieces or about
/// [`CHUNK`] bytes, a little more with its last piece).
const IN_FLIGHT: usize = 8;

pub enum Piece {
    /// The next entry, with the start of its content.
    Entry {
        entry: Box<Entry>,
        data: Vec<u8>,
        last: bool,
    },
    /// More content of the current entry.
    Data { data: Vec<u8>, last: bool },
    /// Reading the current entry's content failed (a checksum mismatch, damage).
    ReadFailed(io::Error),
    /// Reading the archive failed between entries.
    Stop(RestoreError),
}

/// Pieces go in batches (one hand-over per batch, not per small file): a batch is sent when
/// it holds this many pieces or [`CHUNK`] bytes.
const BATCH: usize = 64;

/// The heap bytes an entry carries beside its content: its path and its xattrs.
fn metadata_bytes(entry: &Entry) -> usize {
    entry.path.len()
        + entry
            .xattrs
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
}

/// The reader's end of the channel: pieces are gathered into batches.
struct Outbox {
    tx: SyncSender<Vec<Piece>>,
    batch: Vec<Piece>,
    bytes: usize,
}

impl Outbox {
    /// Queues a piece; false when the writer has gone.
    fn send(&mut self, piece: Piece) -> bool {
        // An entry's path and xattrs count too: a batch of directories with large xattrs
        // holds as much memory as one of file content (a hostile archive's 64 entries of
        // 0.9 MiB xattrs, 8 batches in flight, took 137 MiB).
        self.bytes += match &piece {
            Piece::Entry { entry, data, .. } => data.len() + metadata_bytes(entry),
            Piece::Data { data, .. } => data.len(),
            _ => 0,
        };
        self.batch.push(piece);
        if self.batch.len() >= BATCH || self.bytes >= CHUNK {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        self.bytes = 0;
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.send(batch).is_ok()
    }
}

/// The reading side: sends every entry and its content, then returns (dropping the sender
/// tells the writer the archive ended). Returns early when the writer has gone.
pub fn read_side<R: Read>(
    reader: &mut ArchiveReader<R>,
    tx: SyncSender<Vec<Piece>>,
    spent: Receiver<Vec<u8>>,
    progress: &dyn crate::progress::Progress,
) {
    let mut out = Outbox {
        tx,
        batch: Vec::with_capacity(BATCH),
        bytes: 0,
    };
    send_all(reader, &mut out, &spent, progress);
    out.flush();
}

fn send_all<R: Read>(
    reader: &mut ArchiveReader<R>,
    tx: &mut Outbox,
    spent: &Receiver<Vec<u8>>,
    progress: &dyn crate::progress::Progress,
) {
    // The raw path of the last entry read (made printable only for an error).
    let mut last_path: Option<Vec<u8>> = None;
    loop {
        let mut item = match reader.next_entry() {
            Ok(Some(item)) => item,
            Ok(None) => return,
            Err(e) => {
                tx.send(Piece::Stop(locate(e, last_path.as_deref())));
                return;
            }
        };
        let entry = Box::new(item.entry.clone());
        let l = last_path.get_or_insert_with(Vec::new);
        l.clear();
        l.extend_from_slice(&entry.path);
        if entry.size >= 1 << 20 {
            progress.set_message(&entry.display_path());
        }
        if !matches!(entry.kind, EntryKind::File { .. }) {
            // Nothing to write: the reader skips (and checks) whatever the entry holds.
            let piece = Piece::Entry {
                entry,
                data: Vec::new(),
                last: true,
            };
            if !tx.send(piece) {
                return;
            }
            continue;
        }
        // A small file's buffer is one byte larger than its content, so that the read which
        // ends it (and checks the checksum) happens here, with no second piece.
        let want = usize::try_from(entry_bytes(&entry))
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(CHUNK);
        let mut first = Some(entry);
        loop {
            let mut data = match spent.try_recv() {
                Ok(mut v) if want == CHUNK => {
                    v.resize(CHUNK, 0);
                    v
                }
                _ => vec![0u8; want],
            };
            let (n, last) = match fill(&mut item, &mut data) {
                Ok(r) => r,
                Err(e) => {
                    if let Some(entry) = first.take() {
                        // The writer needs the entry to name it in the error.
                        tx.send(Piece::Entry {
                            entry,
                            data: Vec::new(),
                            last: false,
                        });
                    }
                    tx.send(Piece::ReadFailed(e));
                    return;
                }
            };
            data.truncate(n);
            let piece = match first.take() {
                Some(entry) => Piece::Entry { entry, data, last },
                None => Piece::Data { data, last },
            };
            if !tx.send(piece) {
                return;
            }
            if last {
                break;
            }
        }
    }
}

/// Reads into `buf` until it is full or the content ends; returns the bytes read and whether
/// the content ended (a read returned 0).
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => return Ok((n, true)),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((n, false))
}

/// The writing side: applies every entry the reader sends, then finishes the restore.
pub fn write_side(
    ex: &mut Extractor,
    rx: Receiver<Vec<Piece>>,
    spent: Sender<Vec<u8>>,
) -> Result<(), RestoreError> {
    let mut last_path: Option<Vec<u8>> = None;
    let mut inbox = Inbox {
        rx,
        queue: std::collections::VecDeque::new(),
    };
    while let Some(piece) = inbox.next() {
        let (entry, data, last) = match piece {
            Piece::Entry { entry, data, last } => (entry, data, last),
            Piece::Stop(e) => return Err(e),
            Piece::Data { .. } | Piece::ReadFailed(_) => {
                return Err(internal(last_path.as_deref()));
            }
        };
        let l = last_path.get_or_insert_with(Vec::new);
        l.clear();
        l.extend_from_slice(&entry.path);
        let mut content = Chunks {
            inbox: &mut inbox,
            spent: &spent,
            data,
            pos: 0,
            last,
        };
        ex.apply(&entry, &mut content).map_err(|e| match e {
            RestoreError::Archive(a) => locate(a, last_path.as_deref()),
            other => other,
        })?;
        // Whatever the writer did not read (an entry that is not a file) is the reader's to
        // skip; pieces of it cannot follow, as only files are sent in pieces.
    }
    Ok(())
}

fn internal(after: Option<&[u8]>) -> RestoreError {
    RestoreError::Content {
        path: after
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        source: io::Error::other(
            "the archive reading thread sent content out of order (a bug in lifeboat; please report it)",
        ),
    }
}

/// The writer's end of the channel: the pieces of the batches, in order.
struct Inbox {
    rx: Receiver<Vec<Piece>>,
    queue: std::collections::VecDeque<Piece>,
}

impl Inbox {
    /// The next piece; None when the reader has finished (or gone).
    fn next(&mut self) -> Option<Piece> {
        if self.queue.is_empty() {
            self.queue.extend(self.rx.recv().ok()?);
        }
        self.queue.pop_front()
    }
}

/// One entry's content on the writer's side, as the reader sends it.
struct Chunks<'a> {
    inbox: &'a mut Inbox,
    spent: &'a Sender<Vec<u8>>,
    data: Vec<u8>,
    pos: usize,
    last: bool,
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.data.len() {
                let n = out.len().min(self.data.len() - self.pos);
                out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.last {
                return Ok(0);
            }
            let next = self.inbox.next().ok_or_else(|| {
                io::Error::other("the archive reading thread stopped in the middle of an entry")
            })?;
            match next {
                Piece::Data { data, last } => {
                    let old = std::mem::replace(&mut self.data, data);
                    if old.capacity() >= CHUNK {
                        // Back to the reader for a later chunk; gone if it has stopped.
                        let _ = self.spent.send(old);
                    }
                    self.pos = 0;
                    self.last = last;
                }
                Piece::ReadFailed(e) => return Err(e),
                Piece::Stop(_) | Piece::Entry { .. } => {
                    return Err(io::Error::other(
                        "the archive reading thread sent content out of order (a bug in lifeboat; please report it)",
                    ))
                }
            }
        }
    }
}

/// The channels between the two sides: the pieces, and the spent chunks going back.
pub type Channels = (
    (SyncSender<Vec<Piece>>, Receiver<Vec<Piece>>),
    (Sender<Vec<u8>>, Receiver<Vec<u8>>),
);

/// The channels between the two sides.
pub fn channels() -> Channels {
    (mpsc::sync_channel(IN_FLIGHT), mpsc::channel())
}
