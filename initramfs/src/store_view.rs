//! The recovery image's view of a Lifeboat store: its generations with their manifests, the
//! journal of restores, and reading (verifying, extracting) a generation's archive.
//! A thin layer over lifeboat_core::{store, archive, codec, restore}.

use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::verify::verify_reader;
use lifeboat_core::archive::Manifest;
use lifeboat_core::codec::Codec;
use lifeboat_core::io::CountingReader;
use lifeboat_core::progress::Progress;
use lifeboat_core::restore::{Extractor, RestoreOptions};
use lifeboat_core::store::{events, Generation as StoreGeneration, JournalRecord, Store};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Generation {
    pub id: String,
    pub archive: PathBuf,
    pub manifest: Manifest,
    /// Size of the archive file in bytes.
    pub size: u64,
}

pub struct StoreListing {
    pub generations: Vec<Generation>,
    /// The journal shows "restore-started" without a later "restore-done".
    pub interrupted: bool,
}

/// Lists the store mounted at `dir`; Ok(None) when `dir` holds no Lifeboat store.
pub fn list(dir: &Path) -> Result<Option<StoreListing>, String> {
    if !Store::is_store(dir) {
        return Ok(None);
    }
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let gens = store.generations().map_err(|e| e.to_string())?;
    let generations = gens
        .into_iter()
        .map(|g| {
            let archive = g.archive_path();
            let meta = g.meta;
            let manifest = meta.manifest.clone().unwrap_or_else(|| Manifest {
                hostname: meta.host.clone(),
                created: meta.created.clone(),
                codec: meta.codec.clone(),
                ..Default::default()
            });
            let mut manifest = manifest;
            if manifest.hostname.is_empty() {
                manifest.hostname = meta.host.clone();
            }
            if let Some(v) = &meta.product_version {
                manifest
                    .inventory
                    .entry("PRODUCT_VERSION".into())
                    .or_insert_with(|| v.clone());
            }
            Generation {
                id: g.id,
                archive,
                manifest,
                size: meta.size,
            }
        })
        .collect();
    let interrupted =
        matches!(store.last_restore(), Ok(Some(r)) if r.event == events::RESTORE_STARTED);
    Ok(Some(StoreListing {
        generations,
        interrupted,
    }))
}

/// Appends an event ("restore-started", "restore-done", "restore-failed") to the journal.
/// The store must be mounted read-write.
pub fn journal(dir: &Path, event: &str, generation: &str, target: &str) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    store
        .append_journal(
            &JournalRecord::new(event)
                .generation(generation)
                .target(target),
        )
        .map_err(|e| e.to_string())
}

/// A generation with its archive open: the reader, its codec, and the compressed bytes read.
type Opened = (
    StoreGeneration,
    Codec,
    ArchiveReader<Box<dyn Read + Send>>,
    Arc<AtomicU64>,
);

/// Opens a generation's archive, checked against its meta.json up to the first entry
/// (lifeboat_core::store::Generation::open_verified_reader); the generation is returned for
/// the check after the last entry.
fn open_counted(archive: &Path) -> Result<Opened, String> {
    let dir = archive
        .parent()
        .ok_or_else(|| format!("{} is not in a generation directory", archive.display()))?;
    let g = StoreGeneration::load(dir).map_err(|e| e.to_string())?;
    // The compressed bytes read from the archive file: progress against its size.
    let mut count = None;
    let (codec, reader) = g
        .open_verified_reader(|inner| {
            let counted = CountingReader::new(inner);
            count = Some(counted.counter());
            counted
        })
        .map_err(|e| e.to_string())?;
    let count = count.unwrap_or_default();
    Ok((g, codec, reader, count))
}

/// Forwards the byte counter to the progress display.
struct Ticker<'a> {
    count: Arc<AtomicU64>,
    seen: u64,
    progress: &'a dyn Progress,
}

impl Ticker<'_> {
    fn tick(&mut self) {
        let now = self.count.load(Ordering::Relaxed);
        if now > self.seen {
            self.progress.advance(now - self.seen);
            self.seen = now;
        }
    }
}

/// Reads the whole archive with core's one verify loop (every checksum, the trailer, every
/// entry against the restore's own rules), and the whole against the generation's meta.json.
pub fn verify(archive: &Path, progress: &dyn Progress) -> Result<String, String> {
    let (generation, codec, mut reader, count) = open_counted(archive)?;
    let mut ticker = Ticker {
        count,
        seen: 0,
        progress,
    };
    let report = verify_reader(&mut reader, codec, &mut |_| ticker.tick())
        .map_err(|e| format!("{}: {e}", archive.display()))?;
    ticker.tick();
    generation
        .check_end(&(&report).into())
        .map_err(|e| e.to_string())?;
    let c = report.counts;
    if report.is_lifeboat {
        Ok(format!(
            "{} entries, {} files, {} bytes of content, every checksum and the trailer match",
            c.entries, c.files, c.bytes
        ))
    } else {
        Ok(format!(
            "plain tar archive (no checksums): {} entries read without error",
            c.entries
        ))
    }
}

/// Extracts the archive beneath `target` (checking every checksum again while it reads).
pub fn extract(archive: &Path, target: &Path, progress: &dyn Progress) -> Result<String, String> {
    let (generation, codec, mut reader, count) = open_counted(archive)?;
    let mut ticker = Ticker {
        count,
        seen: 0,
        progress,
    };
    let mut opts = RestoreOptions::new(target);
    opts.preserve_owner = true;
    opts.sync = true;
    let mut ex = Extractor::new(&opts).map_err(|e| e.to_string())?;
    let mut n = 0u64;
    loop {
        let next = reader.next_entry().map_err(|e| e.to_string())?;
        let Some(mut e) = next else { break };
        let entry = e.entry.clone();
        ex.apply(&entry, &mut e).map_err(|e| e.to_string())?;
        n += 1;
        if n.is_multiple_of(64) {
            ticker.tick();
        }
    }
    ticker.tick();
    generation
        .check_reader_end(codec, &reader)
        .map_err(|e| e.to_string())?;
    let r = ex.finish().map_err(|e| e.to_string())?;
    let mut s = format!(
        "{} files, {} directories, {} symlinks, {} hardlinks, {} devices, {} fifos, {} bytes",
        r.files, r.dirs, r.symlinks, r.hardlinks, r.devices, r.fifos, r.bytes
    );
    if r.warnings.count > 0 {
        s.push_str(&format!(
            "; {} warnings, first: {}",
            r.warnings.count,
            r.warnings.messages.first().cloned().unwrap_or_default()
        ));
    }
    Ok(s)
}
