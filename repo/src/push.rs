//! Push: a committed local generation into the repository.
//!
//! The generation is read once, through the same checks as every consumer (codec, manifest
//! and meta.json at its start, core's verify loop over every entry, counts and trailer at its
//! end): a damaged local generation is never pushed. The decompressed tar stream is copied
//! (tee) to a chunker thread, which names each chunk and hands the ones the repository lacks
//! to a few upload threads. Memory stays bounded: a small queue of stream blocks, the
//! chunker's buffer (max chunk size) and at most two chunks per upload thread.
//!
//! Which chunks exist: one LIST of `chunks/` per push (a HEAD per chunk costs one request per
//! chunk, a LIST one per 1,000 keys). Chunks named in a prune mark are uploaded again (see
//! [`crate::prune`]). The index is written last, and only if the push took less than the
//! repository's grace period.

use crate::layout::{self, ChunkEntry, Refs, Secret};
use crate::repository::{Keys, Repository};
use crate::{crypto, RepoError};
use crossbeam_channel::{bounded, Receiver, Sender};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::verify::verify_reader;
use lifeboat_core::store::{Generation, GenerationMeta};
use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    pub generation: String,
    pub host_id: String,
    /// Bytes of the tar stream.
    pub stream_bytes: u64,
    pub chunks: u64,
    /// Chunks uploaded by this push.
    pub uploaded_chunks: u64,
    /// Bytes uploaded (encrypted, compressed chunks).
    pub uploaded_bytes: u64,
    /// Bytes of the index.
    pub index_bytes: u64,
    /// Chunks uploaded again because a prune run had marked them.
    pub reuploaded_marked: u64,
    /// Chunks already present whose Object Lock retention was extended (locked repositories).
    pub retention_extended: u64,
}

/// Push options.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Upload threads.
    pub threads: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { threads: 4 }
    }
}

/// Pushes a committed local generation, verifying it as it is read. `wrap` wraps the archive
/// file (a progress counter).
pub fn push_generation<W, F>(
    repo: &Repository,
    keys: &Keys,
    g: &Generation,
    opts: PushOptions,
    wrap: F,
) -> Result<PushReport, RepoError>
where
    W: Read + Send + 'static,
    F: FnOnce(std::fs::File) -> W,
{
    let store = |e| RepoError::Local(Box::new(e));
    let f = g.open_archive().map_err(store)?;
    let (codec, tar) = lifeboat_core::codec::decoder(wrap(f)).map_err(|e| {
        RepoError::Local(Box::new(lifeboat_core::store::StoreError::Archive {
            generation: g.id.clone(),
            source: e.into(),
        }))
    })?;
    g.check_codec(codec).map_err(store)?;
    let mut meta = g.meta.clone();
    let local_codec = std::mem::replace(&mut meta.codec, "none".into());
    // The pool database, checked against its record before it leaves the host.
    let pool = g.read_pool_database().map_err(store)?;
    push_with(
        repo,
        keys,
        &g.id,
        &mut meta,
        local_codec,
        pool,
        opts,
        |sink| {
            let archive = |source| {
                RepoError::Local(Box::new(lifeboat_core::store::StoreError::Archive {
                    generation: g.id.clone(),
                    source,
                }))
            };
            let mut reader = ArchiveReader::new(Tee { inner: tar, sink });
            let manifest = reader.read_manifest().map_err(archive)?.cloned();
            g.check_start(codec, reader.is_lifeboat(), manifest.as_ref())
                .map_err(store)?;
            let report = verify_reader(&mut reader, codec, &mut |_| {}).map_err(|e| {
                RepoError::Local(Box::new(io::Error::other(format!(
                    "generation {}: {e}",
                    g.id
                ))))
            })?;
            g.check_end(&(&report).into()).map_err(store)?;
            // The end-of-archive blocks and padding after the trailer belong to the stream too.
            let mut rest = reader.into_inner();
            io::copy(&mut rest, &mut io::sink()).map_err(RepoError::Read)?;
            Ok(())
        },
    )
}

/// Pushes a tar stream as generation `meta.id` (tests, and streams checked elsewhere).
pub fn push_stream<R: Read>(
    repo: &Repository,
    keys: &Keys,
    mut meta: GenerationMeta,
    mut stream: R,
    opts: PushOptions,
) -> Result<PushReport, RepoError> {
    let local_codec = std::mem::replace(&mut meta.codec, "none".into());
    let id = meta.id.clone();
    // A bare stream has no pool database member.
    meta.pool_database = None;
    push_with(
        repo,
        keys,
        &id,
        &mut meta,
        local_codec,
        None,
        opts,
        |sink| {
            let mut tee = Tee {
                inner: &mut stream,
                sink,
            };
            io::copy(&mut tee, &mut io::sink()).map_err(RepoError::Read)?;
            Ok(())
        },
    )
}

/// Copies what is read from `inner` into the chunker's queue.
struct Tee<'a, R> {
    inner: R,
    sink: &'a Sender<Vec<u8>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && self.sink.send(buf[..n].to_vec()).is_err() {
            return Err(io::Error::other(
                "the push stopped (see the error that follows)",
            ));
        }
        Ok(n)
    }
}

/// Reads the blocks the tee queued.
struct Blocks {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Chunk ids named by any prune mark now in the repository.
pub(crate) fn marked_ids(repo: &Repository) -> Result<HashSet<String>, RepoError> {
    let mut out = HashSet::new();
    for o in repo.backend.list(layout::PRUNE)? {
        if !o.key.ends_with(".marks") {
            continue;
        }
        let ids: Vec<String> = layout::unpack(&repo.backend.get(&o.key)?, &o.key)?;
        out.extend(ids);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn push_with(
    repo: &Repository,
    keys: &Keys,
    gen: &str,
    meta: &mut GenerationMeta,
    local_codec: String,
    pool_database: Option<Vec<u8>>,
    opts: PushOptions,
    feed: impl FnOnce(&Sender<Vec<u8>>) -> Result<(), RepoError>,
) -> Result<PushReport, RepoError> {
    let started = Instant::now();
    repo.check_fleet(&keys.fleet)?;
    let host_id = keys.host_id();
    // Marks first, then the listing: a chunk marked after this point was listed while a
    // prune may delete it, which the grace period covers (crate::prune).
    let marked = marked_ids(repo)?;
    let mut present: HashSet<String> = repo
        .backend
        .list(layout::CHUNKS)?
        .iter()
        .filter_map(|o| layout::chunk_id_of(&o.key).map(str::to_string))
        .collect();
    present.retain(|id| !marked.contains(id));
    let reuploaded_marked = AtomicU64::new(0);
    // One retention for every object of the generation, chunks at least as long as the index.
    let retention = repo.config.retention();
    let mut extended: HashSet<String> = HashSet::new();
    let retention_extended = AtomicU64::new(0);
    let threads = opts.threads.max(1);
    let params = repo.config.chunker;
    let failed = AtomicBool::new(false);
    let error: Mutex<Option<RepoError>> = Mutex::new(None);
    let uploaded_chunks = AtomicU64::new(0);
    let uploaded_bytes = AtomicU64::new(0);
    let fail = |e: RepoError| {
        failed.store(true, Ordering::SeqCst);
        if let Ok(mut slot) = error.lock() {
            slot.get_or_insert(e);
        }
    };
    let (btx, brx) = bounded::<Vec<u8>>(16);
    let mut entries: Vec<(String, ChunkEntry)> = Vec::new();
    let mut stream_len = 0u64;
    let fed = std::thread::scope(|s| {
        // Data to upload, or None: a present chunk whose retention to extend.
        let (wtx, wrx) = bounded::<(String, [u8; 32], Option<Vec<u8>>)>(threads);
        for _ in 0..threads {
            let wrx = wrx.clone();
            let (fail, failed) = (&fail, &failed);
            let (uploaded_chunks, uploaded_bytes) = (&uploaded_chunks, &uploaded_bytes);
            let retention_extended = &retention_extended;
            s.spawn(move || {
                for (id, key, data) in wrx {
                    if failed.load(Ordering::SeqCst) {
                        continue;
                    }
                    let Some(data) = data else {
                        let Some(r) = retention else { continue };
                        match repo.backend.extend_retention(&layout::chunk_key(&id), r) {
                            Ok(()) => {
                                retention_extended.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => fail(e.into()),
                        }
                        continue;
                    };
                    let put = crypto::encrypt_chunk(&key, &id, &data).and_then(|obj| {
                        repo.backend
                            .put(&layout::chunk_key(&id), &obj, retention)
                            .map_err(RepoError::from)
                            .map(|()| obj.len())
                    });
                    match put {
                        Ok(n) => {
                            uploaded_chunks.fetch_add(1, Ordering::Relaxed);
                            uploaded_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) => fail(e),
                    }
                }
            });
        }
        drop(wrx);
        let (entries, stream_len, present, marked, extended) = (
            &mut entries,
            &mut stream_len,
            &mut present,
            &marked,
            &mut extended,
        );
        let (fail, failed, reuploaded_marked) = (&fail, &failed, &reuploaded_marked);
        let chunker = s.spawn(move || {
            let mut input = Blocks {
                rx: brx,
                cur: Vec::new(),
                pos: 0,
            };
            let r = params.chunk(&mut input, &mut |data| {
                if failed.load(Ordering::SeqCst) {
                    return Err(RepoError::Stopped);
                }
                let key = keys.fleet.chunk_key(&data);
                let id = keys.fleet.chunk_id(&key);
                *stream_len += data.len() as u64;
                entries.push((
                    id.clone(),
                    ChunkEntry {
                        key: hex::encode(key),
                        len: data.len() as u64,
                    },
                ));
                if present.insert(id.clone()) {
                    if marked.contains(&id) {
                        reuploaded_marked.fetch_add(1, Ordering::Relaxed);
                    }
                    if retention.is_some() {
                        extended.insert(id.clone());
                    }
                    wtx.send((id, key, Some(data)))
                        .map_err(|_| RepoError::Stopped)?;
                } else if retention.is_some() && extended.insert(id.clone()) {
                    // Reused from an earlier generation: retained as long as this one.
                    wtx.send((id, key, None)).map_err(|_| RepoError::Stopped)?;
                }
                Ok(())
            });
            if let Err(e) = r {
                fail(e);
            }
        });
        let fed = feed(&btx);
        drop(btx);
        let _ = chunker.join();
        fed
    });
    if let Some(e) = error.into_inner().ok().flatten() {
        if !matches!(e, RepoError::Stopped) {
            return Err(e);
        }
    }
    fed?;
    if failed.load(Ordering::SeqCst) {
        return Err(RepoError::Stopped);
    }
    let grace = std::time::Duration::from_secs(repo.config.grace_seconds);
    if started.elapsed() >= grace {
        return Err(RepoError::Format(format!(
            "the push of generation {gen} took {} s, longer than the repository's prune grace period ({} s): chunks it found present may have been pruned meanwhile; push again",
            started.elapsed().as_secs(),
            repo.config.grace_seconds
        )));
    }
    meta.size = stream_len;
    let key = layout::index_key(&host_id, gen);
    let refs = Refs {
        generation: gen.to_string(),
        stream_len,
        ids: entries.iter().map(|(id, _)| id.clone()).collect(),
    };
    let secret = Secret {
        host: meta.host.clone(),
        generation: gen.to_string(),
        meta: meta.clone(),
        local_codec,
        pushed: lifeboat_core::clock::now_rfc3339(),
        chunks: entries.into_iter().map(|(_, c)| c).collect(),
    };
    let mut recipients = vec![keys.identity.recipient()];
    recipients.extend(repo.config.recovery_recipients.iter().cloned());
    let refs_sealed = keys.fleet.seal(&layout::pack(&refs)?, &key)?;
    let secret_age = crypto::age_encrypt(&recipients, &layout::pack(&secret)?)?;
    let index = layout::encode_index(&refs_sealed, &secret_age);
    // The pool database before the index (commit = the index exists).
    if let Some(data) = &pool_database {
        let sealed = crypto::age_encrypt(&recipients, data)?;
        repo.backend.put(
            &layout::pool_database_key(&host_id, gen),
            &sealed,
            retention,
        )?;
    }
    repo.backend.put(&key, &index, retention)?;
    Ok(PushReport {
        generation: gen.to_string(),
        host_id,
        stream_bytes: stream_len,
        chunks: refs.ids.len() as u64,
        uploaded_chunks: uploaded_chunks.load(Ordering::Relaxed),
        uploaded_bytes: uploaded_bytes.load(Ordering::Relaxed),
        index_bytes: index.len() as u64,
        reuploaded_marked: reuploaded_marked.load(Ordering::Relaxed),
        retention_extended: retention_extended.load(Ordering::Relaxed),
    })
}
