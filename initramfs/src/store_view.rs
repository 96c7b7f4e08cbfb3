//! The recovery image's view of a Lifeboat store: its generations with their manifests, the
//! journal of restores, and reading (verifying, extracting) a generation's archive.
//! A thin layer over lifeboat_core::{store, archive, codec, restore}.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::archive::manifest::Counts;
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::verify::{verify_reader_collecting, SmallFiles};
use lifeboat_core::archive::Manifest;
use lifeboat_core::codec::Codec;
use lifeboat_core::io::CountingReader;
use lifeboat_core::progress::Progress;
use lifeboat_core::restore::{Extractor, RestoreOptions, RestoreReport};
use lifeboat_core::store::{events, Generation as StoreGeneration, JournalRecord, Store};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Generation {
    pub id: String,
    pub archive: PathBuf,
    pub manifest: Manifest,
    /// The archive carries a Lifeboat manifest (false: a staged plain `xe host-backup` tar,
    /// whose `manifest` here holds only what meta.json says).
    pub recorded: bool,
    /// Size of the archive file in bytes.
    pub size: u64,
    /// Logical bytes of file content and entries, from meta.json.
    pub bytes: u64,
    pub entries: u64,
}

pub struct StoreListing {
    pub generations: Vec<Generation>,
    /// The journal shows "restore-started" without a later "restore-done".
    pub interrupted: bool,
}

/// Lists the store mounted at `dir`; Ok(None) when `dir` holds no Lifeboat store.
pub fn list(dir: &Path) -> Result<Option<StoreListing>> {
    if !Store::is_store(dir) {
        return Ok(None);
    }
    let store = Store::open_read_only(dir)
        .with_context(|| format!("cannot open the Lifeboat store at {}", dir.display()))?;
    let gens = store.generations().with_context(|| {
        format!(
            "cannot list the generations of the store at {}",
            dir.display()
        )
    })?;
    let generations = gens
        .into_iter()
        .map(|g| {
            let archive = g.archive_path();
            let meta = g.meta;
            let recorded = meta.manifest.is_some();
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
                recorded,
                size: meta.size,
                bytes: meta.bytes,
                entries: meta.entries,
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

/// Appends a record ("restore-started", "plan-recorded", "step-done", "restore-done", ...) to
/// the journal. The store must be mounted read-write.
pub fn journal(dir: &Path, rec: &JournalRecord) -> Result<()> {
    let store = Store::open(dir)
        .with_context(|| format!("cannot open the Lifeboat store at {}", dir.display()))?;
    store.append_journal(rec).with_context(|| {
        format!(
            "cannot append to the journal of the store at {}",
            dir.display()
        )
    })
}

/// The records of the journal of the store at `dir`.
pub fn journal_records(dir: &Path) -> Result<Vec<JournalRecord>> {
    let store = Store::open_read_only(dir)
        .with_context(|| format!("cannot open the Lifeboat store at {}", dir.display()))?;
    store
        .journal()
        .with_context(|| format!("cannot read the journal of the store at {}", dir.display()))
}

/// A generation with its archive open: the reader, its codec, and the compressed bytes read.
type Opened = (
    StoreGeneration,
    Codec,
    ArchiveReader<Box<dyn Read + Send>>,
    Arc<AtomicU64>,
);

/// Where a generation's archive is read from: a file of a store, or a repository's chunks.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    File(&'a Path),
    Repo {
        session: &'a crate::net::repo::Session,
        generation: &'a crate::net::repo::RemoteGeneration,
    },
}

impl Source<'_> {
    /// How errors name it.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Repo {
                session,
                generation,
            } => format!("generation {} in {}", generation.id, session.url),
        }
    }
}

/// Opens a generation's archive, checked against its meta.json up to the first entry
/// (lifeboat_core::store::Generation::open_verified_reader); the generation is returned for
/// the check after the last entry. A repository's generation is read the same way from its
/// chunks (fetched in parallel, each checked), against the meta.json its index carries.
fn open_counted(src: Source) -> Result<Opened> {
    let archive = match src {
        Source::File(a) => a,
        Source::Repo {
            session,
            generation,
        } => {
            let g = StoreGeneration {
                id: generation.id.clone(),
                dir: PathBuf::from(&session.url),
                meta: generation.meta.clone(),
            };
            let reader = lifeboat_repo::reader::RepoReader::new(
                &session.repo,
                &session.keys.fleet,
                &generation.index,
                crate::net::repo::THREADS,
            );
            let counted = CountingReader::new(reader);
            let count = counted.counter();
            let (codec, reader) = g
                .open_verified_stream(counted, Path::new(&src.name()))
                .with_context(|| format!("cannot open {}", src.name()))?;
            return Ok((g, codec, reader, count));
        }
    };
    let dir = archive
        .parent()
        .ok_or_else(|| anyhow!("{} is not in a generation directory", archive.display()))?;
    let g = StoreGeneration::load(dir)
        .with_context(|| format!("cannot read the generation {}", dir.display()))?;
    // The compressed bytes read from the archive file: progress against its size.
    let mut count = None;
    let (codec, reader) = g
        .open_verified_reader(|inner| {
            let counted = CountingReader::new(inner);
            count = Some(counted.counter());
            counted
        })
        .with_context(|| format!("cannot open {}", archive.display()))?;
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
/// The files named in `files` are kept as they are read (a plain generation's fstab and
/// grub.cfg, for the plan).
pub fn verify(src: Source, progress: &dyn Progress, files: &mut SmallFiles) -> Result<String> {
    let name = src.name();
    let (generation, codec, mut reader, count) = open_counted(src)?;
    let mut ticker = Ticker {
        count,
        seen: 0,
        progress,
    };
    let report = verify_reader_collecting(&mut reader, codec, &mut |_| ticker.tick(), files)
        .with_context(|| format!("{} does not verify", name))?;
    ticker.tick();
    generation
        .check_end(&(&report).into())
        .with_context(|| format!("{} does not match its meta.json", name))?;
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
pub fn extract(src: Source, target: &Path, progress: &dyn Progress) -> Result<String> {
    let name = src.name();
    let (generation, codec, mut reader, count) = open_counted(src)?;
    let mut ticker = Ticker {
        count,
        seen: 0,
        progress,
    };
    let mut opts = RestoreOptions::new(target);
    opts.preserve_owner = true;
    opts.sync = true;
    let mut ex = Extractor::new(&opts)
        .with_context(|| format!("cannot extract into {}", target.display()))?;
    let mut n = 0u64;
    loop {
        let next = reader
            .next_entry()
            .with_context(|| format!("cannot read {} after {n} entries", name))?;
        let Some(mut e) = next else { break };
        let entry = e.entry.clone();
        ex.apply(&entry, &mut e)
            .with_context(|| format!("cannot restore entry {} into {}", n + 1, target.display()))?;
        n += 1;
        if n.is_multiple_of(64) {
            ticker.tick();
        }
    }
    ticker.tick();
    generation
        .check_reader_end(codec, &reader)
        .with_context(|| format!("{} does not match its meta.json", name))?;
    // What the archive says it holds: its trailer (a Lifeboat archive), else what was read.
    let recorded = reader
        .trailer()
        .map(|t| t.counts.clone())
        .unwrap_or_else(|| reader.counts().clone());
    let r = ex
        .finish()
        .with_context(|| format!("cannot finish the restore into {}", target.display()))?;
    check_written(&recorded, &r)
        .with_context(|| format!("{} was not restored completely", target.display()))?;
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

/// What a restore wrote, kind by kind, against what the archive records: fewer entries of any
/// kind is a failure, with the numbers.
pub fn check_written(recorded: &Counts, written: &RestoreReport) -> Result<()> {
    let kinds = [
        ("files", recorded.files, written.files),
        ("directories", recorded.dirs, written.dirs),
        ("symlinks", recorded.symlinks, written.symlinks),
        ("hardlinks", recorded.hardlinks, written.hardlinks),
        ("devices", recorded.devices, written.devices),
        ("fifos", recorded.fifos, written.fifos),
    ];
    let total: u64 = kinds.iter().map(|k| k.2).sum();
    let short: Vec<String> = kinds
        .iter()
        .filter(|(_, want, got)| got < want)
        .map(|(name, want, got)| format!("{name} {got} of {want}"))
        .collect();
    if total < recorded.entries || !short.is_empty() {
        return Err(anyhow!(
            "the archive records {} entries, {} were written{}{}",
            recorded.entries,
            total,
            if short.is_empty() { "" } else { ": " },
            short.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn counts() -> Counts {
        Counts {
            entries: 10,
            files: 5,
            dirs: 2,
            symlinks: 1,
            hardlinks: 1,
            devices: 0,
            fifos: 1,
            ..Default::default()
        }
    }

    fn written() -> RestoreReport {
        RestoreReport {
            files: 5,
            dirs: 2,
            symlinks: 1,
            hardlinks: 1,
            fifos: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_restore_passes() {
        check_written(&counts(), &written()).unwrap();
    }

    #[test]
    fn fewer_entries_than_the_trailer_records_is_a_failure_with_the_numbers() {
        let mut w = written();
        w.files = 3;
        let e = check_written(&counts(), &w).unwrap_err().to_string();
        assert_eq!(
            e,
            "the archive records 10 entries, 8 were written: files 3 of 5"
        );
        // An archive that claims entries of no kind the restore counts (a restore that wrote
        // nothing at all from a trailer that records entries).
        let e = check_written(&counts(), &RestoreReport::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "the archive records 10 entries, 0 were written: files 0 of 5, directories 0 of 2"
            ),
            "{e}"
        );
    }
}
