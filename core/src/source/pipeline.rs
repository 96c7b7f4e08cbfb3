//! The backup pipeline: the walker (reading and hashing) on its own thread feeds the archive
//! writer over a bounded channel; compression threads live inside the encoder. Memory is
//! bounded by a byte budget for the file contents in flight plus the channel's length.

use super::content::StreamReader;
use super::walk::{Content, Emit, Item, WalkConfig, WalkNotes, Walker};
use super::SourceError;
use crate::archive::{ArchiveError, Entry};
use crate::progress::Progress;
use std::io::{self, Read};
use std::sync::{Condvar, Mutex};

/// Bytes of file content that may wait in memory between the walker and the writer.
pub const MEMORY_BUDGET: u64 = 16 << 20;
/// Bytes of emptied read buffers kept for reuse (musl's allocator maps and zeroes fresh
/// pages for every large allocation; recycling saves that work for every file).
pub const POOL_BYTES: u64 = 4 << 20;
/// Entries that may wait in the channel.
pub const CHANNEL_LEN: usize = 4096;

/// Where entries go: the archive writer (or a collector in tests).
pub trait EntrySink {
    fn append(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), ArchiveError>;
}

/// A counting semaphore of bytes. `close` wakes everyone (the writer failed).
struct Budget {
    state: Mutex<(u64, bool)>,
    cv: Condvar,
    cap: u64,
}

impl Budget {
    fn new(cap: u64) -> Self {
        Self {
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
            cap,
        }
    }
    fn acquire(&self, n: u64) {
        let n = n.min(self.cap);
        let Ok(mut g) = self.state.lock() else { return };
        while !g.1 && g.0 > 0 && g.0 + n > self.cap {
            g = match self.cv.wait(g) {
                Ok(g) => g,
                Err(_) => return,
            };
        }
        g.0 += n;
    }
    fn release(&self, n: u64) {
        if let Ok(mut g) = self.state.lock() {
            g.0 = g.0.saturating_sub(n.min(self.cap));
        }
        self.cv.notify_all();
    }
    fn close(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.1 = true;
        }
        self.cv.notify_all();
    }
}

/// Emptied buffers travelling back from the writer to the walker.
struct Pool {
    tx: crossbeam_channel::Sender<Vec<u8>>,
    rx: crossbeam_channel::Receiver<Vec<u8>>,
    bytes: std::sync::atomic::AtomicU64,
}

impl Pool {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(256);
        Self {
            tx,
            rx,
            bytes: std::sync::atomic::AtomicU64::new(0),
        }
    }
    fn take(&self) -> Vec<u8> {
        use std::sync::atomic::Ordering;
        match self.rx.try_recv() {
            Ok(v) => {
                self.bytes.fetch_sub(v.capacity() as u64, Ordering::Relaxed);
                v
            }
            Err(_) => Vec::new(),
        }
    }
    fn give(&self, mut v: Vec<u8>) {
        use std::sync::atomic::Ordering;
        let cap = v.capacity() as u64;
        if cap == 0 || self.bytes.load(Ordering::Relaxed) + cap > POOL_BYTES {
            return;
        }
        v.clear();
        if self.tx.try_send(v).is_ok() {
            self.bytes.fetch_add(cap, Ordering::Relaxed);
        }
    }
}

struct ChannelEmit<'a> {
    tx: crossbeam_channel::Sender<Item>,
    budget: &'a Budget,
    pool: &'a Pool,
}

impl Emit for ChannelEmit<'_> {
    fn emit(&mut self, item: Item) -> io::Result<()> {
        self.tx
            .send(item)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the archive writer stopped"))
    }
    fn reserve(&mut self, bytes: u64) {
        self.budget.acquire(bytes);
    }
    fn buffer(&mut self) -> Vec<u8> {
        self.pool.take()
    }
}

/// Releases the budget (and wakes the walker) when the writer leaves, however it leaves.
struct CloseOnDrop<'a>(&'a Budget);
impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Walks `cfg.root` and appends every entry to `sink`. Returns what the walk noticed.
pub fn run<S: EntrySink>(
    cfg: &WalkConfig,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<WalkNotes, SourceError> {
    let budget = Budget::new(MEMORY_BUDGET);
    let pool = Pool::new();
    let (tx, rx) = crossbeam_channel::bounded::<Item>(CHANNEL_LEN);
    std::thread::scope(|s| {
        let walker = std::thread::Builder::new()
            .name("lifeboat-walk".into())
            .spawn_scoped(s, || {
                let mut w = Walker::new(cfg);
                let mut emit = ChannelEmit {
                    tx,
                    budget: &budget,
                    pool: &pool,
                };
                let r = w.run(&mut emit);
                (r, w.notes)
            })
            .map_err(SourceError::Output)?;
        let written = {
            let _close = CloseOnDrop(&budget);
            write_all(&rx, sink, progress, &budget, &pool)
        };
        drop(rx);
        let (walked, mut notes) = walker
            .join()
            .map_err(|_| SourceError::Internal("the walker thread died".into()))?;
        // A writer error explains a walker "writer stopped" error: report the writer's.
        let late = written?;
        walked?;
        for (path, msg) in late {
            notes.changed_files.push(path);
            notes.warnings.push(msg);
        }
        Ok(notes)
    })
}

/// The writer side. Returns the files found changed in the second pass.
fn write_all<S: EntrySink>(
    rx: &crossbeam_channel::Receiver<Item>,
    sink: &mut S,
    progress: &dyn Progress,
    budget: &Budget,
    pool: &Pool,
) -> Result<Vec<(String, String)>, SourceError> {
    let mut late = Vec::new();
    let arch = |e: ArchiveError| SourceError::Archive(e);
    for item in rx.iter() {
        let Item {
            entry,
            content,
            held,
        } = item;
        let data = match &entry.kind {
            crate::archive::EntryKind::File { sparse: Some(m) } => super::sparse::data_len(m),
            crate::archive::EntryKind::File { sparse: None } => entry.size,
            _ => 0,
        };
        match content {
            Content::None => sink.append(&entry, &mut io::empty()).map_err(arch)?,
            Content::Memory(v) => {
                sink.append(&entry, &mut &v[..]).map_err(arch)?;
                pool.give(v);
            }
            Content::Spool(mut f) => sink.append(&entry, &mut f).map_err(arch)?,
            Content::Stream {
                file,
                layout,
                checksum,
            } => {
                progress.set_message(&entry.display_path());
                let mut r = StreamReader::new(&file, &layout);
                sink.append(&entry, &mut r).map_err(arch)?;
                let (sum, short) = r.verdict();
                // Only the content counts: a changed stat with the same bytes is consistent.
                if sum != checksum || short {
                    let p = entry.display_path();
                    late.push((
                        p.clone(),
                        format!(
                            "{p}: changed between its checksum and its copy into the archive; \
                             its copy in this archive will fail verification: stop what \
                             writes it and back up again"
                        ),
                    ));
                }
            }
        }
        progress.advance(data);
        budget.release(held);
    }
    Ok(late)
}
