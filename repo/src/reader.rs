//! Reassembles a generation's tar stream from the repository, as an `impl Read` that core's
//! verify loop and restore engine consume unchanged.
//!
//! A few threads fetch chunks ahead of the reader (a bounded window, so memory stays at a
//! few chunks), each checked before its bytes are returned: the AEAD tag, the length the
//! index records and the content against its key (crypto::decrypt_chunk). An error names the
//! chunk and its offset in the stream.

use crate::crypto::{self, FleetKey};
use crate::layout;
use crate::repository::{ChunkRef, Index, Repository};
use crate::RepoError;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Reader over a generation's chunks.
pub struct RepoReader {
    chunks: Vec<ChunkRef>,
    offsets: Vec<u64>,
    jobs: Option<Sender<(usize, ChunkRef)>>,
    results: Receiver<(usize, Result<Vec<u8>, RepoError>)>,
    ready: BTreeMap<usize, Result<Vec<u8>, RepoError>>,
    next_job: usize,
    next_out: usize,
    window: usize,
    cur: Vec<u8>,
    pos: usize,
    failed: bool,
}

impl RepoReader {
    /// Opens `index` for reading with `threads` fetch threads.
    pub fn new(repo: &Repository, fleet: &FleetKey, index: &Index, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jtx, jrx) = unbounded::<(usize, ChunkRef)>();
        let (rtx, rrx) = bounded(threads * 2);
        for _ in 0..threads {
            let (jrx, rtx) = (jrx.clone(), rtx.clone());
            let backend = repo.backend.clone();
            let fleet = fleet.clone();
            std::thread::spawn(move || {
                for (seq, c) in jrx {
                    let r = backend
                        .get(&layout::chunk_key(&c.id))
                        .map_err(|e| match e {
                            crate::backend::BackendError::NotFound { .. } => RepoError::Damaged(
                                format!("chunk {} is missing from the repository", c.id),
                            ),
                            e => e.into(),
                        })
                        .and_then(|obj| crypto::decrypt_chunk(&fleet, &c.key, &c.id, c.len, &obj));
                    if rtx.send((seq, r)).is_err() {
                        break;
                    }
                }
            });
        }
        let mut offsets = Vec::with_capacity(index.chunks.len());
        let mut off = 0;
        for c in &index.chunks {
            offsets.push(off);
            off += c.len;
        }
        RepoReader {
            chunks: index.chunks.clone(),
            offsets,
            jobs: Some(jtx),
            results: rrx,
            ready: BTreeMap::new(),
            next_job: 0,
            next_out: 0,
            window: threads * 2,
            cur: Vec::new(),
            pos: 0,
            failed: false,
        }
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.next_out >= self.chunks.len() {
            return Ok(false);
        }
        while self.next_job < self.chunks.len() && self.next_job < self.next_out + self.window {
            if let Some(j) = &self.jobs {
                let _ = j.send((self.next_job, self.chunks[self.next_job].clone()));
            }
            self.next_job += 1;
        }
        let seq = self.next_out;
        let r = loop {
            if let Some(r) = self.ready.remove(&seq) {
                break r;
            }
            match self.results.recv() {
                Ok((s, r)) => {
                    self.ready.insert(s, r);
                }
                Err(_) => {
                    break Err(RepoError::Stopped);
                }
            }
        };
        match r {
            Ok(b) => {
                self.cur = b;
                self.pos = 0;
                self.next_out += 1;
                Ok(true)
            }
            Err(e) => {
                self.failed = true;
                Err(io::Error::other(format!(
                    "at byte {} of the stream: {e}",
                    self.offsets[seq]
                )))
            }
        }
    }
}

impl Read for RepoReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier chunk could not be read"));
        }
        while self.pos >= self.cur.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for RepoReader {
    fn drop(&mut self) {
        // Workers end when the job queue closes; results they still send are dropped.
        self.jobs = None;
    }
}
