//! `lifeboat host-restore`: stages a backup file into the store as the generation to
//! restore, in the manner of `xe host-restore` but without its flaws: the upload is
//! decompressed and verified while it is written into `staging/`, and committed only when it
//! is whole and valid; the previous good generation is never touched before that.

use super::common::{drop_cache, is_no_space, open_for_writing};
use crate::cli::HostRestoreArgs;
use crate::config;
use crate::ui::Bar;
use anyhow::{bail, Context};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::{ArchiveError, Counts, EntryKind, Manifest, Trailer};
use lifeboat_core::codec;
use lifeboat_core::identity::{clock, inventory};
use lifeboat_core::io::{ProgressReader, TeeReader};
use lifeboat_core::progress::human_bytes;
use lifeboat_core::progress::Progress;
use lifeboat_core::store::{layout, GenerationMeta, GenerationState, Origin, Staging};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// XenServer's own message for this refusal (xapi's host-restore).
const LAYOUT_MESSAGE: &str = "Cannot restore backup created with a different partition layout";

pub fn run(args: HostRestoreArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let HostRestoreArgs {
        file_name,
        generation: repo_generation,
        device,
        repo,
        root,
        force,
        remote: _,
    } = args;
    // Open the input first: a wrong file name or generation must not touch the store at all.
    let mut pool_database = None;
    let (shown_input, input, input_len): (String, Box<dyn Read + Send>, Option<u64>) = if repo
        .repo
        .is_some()
    {
        let s = super::repo::open_stream(&repo, repo_generation.as_deref().unwrap_or("latest"))?;
        pool_database = s.pool_database;
        (
            format!("generation {} of {}", s.generation, s.url),
            s.reader,
            Some(s.stream_len),
        )
    } else {
        let Some(file_name) = file_name else {
            bail!("give the backup file to stage (file-name=F) or a repository generation (--repo URL GEN)");
        };
        if file_name == Path::new("-") {
            ("standard input".to_string(), Box::new(io::stdin()), None)
        } else {
            let shown = file_name.display().to_string();
            let f = File::open(&file_name)
                .with_context(|| format!("cannot open the backup file {shown}"))?;
            let len = f.metadata().ok().map(|m| m.len());
            (shown, Box::new(f), len)
        }
    };
    let host_inventory = inventory::read_inventory(&root).with_context(|| {
        format!(
            "cannot read {}",
            root.join(inventory::INVENTORY_PATH).display()
        )
    })?;
    let dev = config::find_backup_device(device.backup_device.as_deref(), &root)?;
    let w = open_for_writing(&dev, "host-restore", quiet)?;
    let previous = w.store.latest()?;
    let keep_msg = match &previous {
        Some(g) => format!("the store still holds generation {} intact", g.id),
        None => "the store is unchanged".to_string(),
    };

    // Space: the upload is stored as it is (compressed), so its size is what it needs.
    let space = w.store.space()?;
    let needed = lifeboat_core::store::space::estimate(
        input_len
            .map(|l| l.saturating_sub(l / 11))
            .or(previous.as_ref().map(|g| g.meta.size)),
        0,
        true,
    );
    if needed > space.available {
        bail!(
            "not enough space on the backup partition {}: the upload needs about {}, {} is free; \
             {keep_msg}. Remove old generations (see `lifeboat list`) or use a larger partition.",
            dev.path.display(),
            human_bytes(needed),
            human_bytes(space.available)
        );
    }

    let mut input = BufReader::with_capacity(1 << 20, input);
    let magic = input
        .fill_buf()
        .with_context(|| format!("cannot read {shown_input}"))?;
    if magic.is_empty() {
        bail!("{shown_input} is empty; {keep_msg}");
    }
    let codec = codec::detect(magic);
    let staging = w
        .store
        .begin(&w.lock, layout::ext_for_codec(codec.name()))?;
    let bar = Bar::new(quiet);
    bar.set_total(input_len);
    bar.set_message("verifying and staging");
    let staged = match stage(&staging, input, &bar) {
        Ok(s) => s,
        Err(e) => {
            bar.finish();
            staging.discard();
            if is_no_space(&e) {
                bail!(
                    "the backup partition {} filled up while staging {shown_input}; the partial copy \
                     was removed and {keep_msg}. Free space (see `lifeboat list`) or use a larger partition.",
                    dev.path.display()
                );
            }
            return Err(e.context(format!(
                "{shown_input} was refused: it is damaged or not a backup; the partial copy was \
                 removed and {keep_msg}"
            )));
        }
    };
    bar.finish();

    // The product version check, as xapi does it, but before anything is committed.
    let backup_inventory = staged
        .manifest
        .as_ref()
        .filter(|m| !m.inventory.is_empty())
        .map(|m| m.inventory.clone())
        .or_else(|| staged.inventory.as_deref().map(inventory::parse_inventory));
    let backup_version = backup_inventory
        .as_ref()
        .and_then(|i| inventory::product_version(i).map(String::from));
    let host_major = host_inventory.as_ref().and_then(inventory::product_major);
    let backup_major = backup_version.as_deref().and_then(inventory::major_of);
    if let (Some(h), Some(b)) = (host_major, backup_major) {
        if h >= 7 && b < 7 {
            if !force {
                bail!(
                    "{LAYOUT_MESSAGE}: the backup is of product version {} and this host runs {}; \
                     {keep_msg}. Add --force to stage it anyway.",
                    backup_version.as_deref().unwrap_or("?"),
                    host_inventory
                        .as_ref()
                        .and_then(inventory::product_version)
                        .unwrap_or("?")
                );
            }
            if !quiet {
                eprintln!(
                    "lifeboat: warning: --force: {LAYOUT_MESSAGE} (backup {b}.x, host {h}.x)"
                );
            }
        }
    }
    if !staged.is_lifeboat && !quiet {
        eprintln!(
            "lifeboat: warning: {shown_input} is a plain tar archive (such as `xe host-backup` writes): \
             it carries no checksums, so only its structure was checked"
        );
    }

    let host = staged
        .manifest
        .as_ref()
        .map(|m| m.hostname.clone())
        .filter(|h| !h.is_empty())
        .or(staged.hostname.clone())
        .unwrap_or_default();
    let changed = staged
        .trailer
        .as_ref()
        .map(|t| t.changed_files.clone())
        .unwrap_or_default();
    let state = if !staged.is_lifeboat {
        GenerationState::Unchecked
    } else if changed.is_empty() {
        GenerationState::Verified
    } else {
        GenerationState::Inconsistent
    };
    let now = clock::now_rfc3339();
    let meta = GenerationMeta {
        id: String::new(),
        created: staged
            .manifest
            .as_ref()
            .map(|m| m.created.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| now.clone()),
        committed: now,
        origin: Origin::HostRestore,
        host,
        product_version: backup_version,
        size: staged.size,
        files: staged.counts.files,
        entries: staged.counts.entries,
        bytes: staged.counts.bytes,
        codec: codec.name().to_string(),
        archive: String::new(),
        state,
        changed_files: changed,
        manifest: staged.manifest.clone(),
        entries_digest: staged.trailer.as_ref().map(|t| t.entries_digest.clone()),
        pool_database: None,
    };
    // A repository generation's pool database comes along, checked as it is written.
    let mut meta = meta;
    if let Some((data, rec)) = &pool_database {
        match staging.write_pool_database(data, rec) {
            Ok(r) => meta.pool_database = Some(r),
            Err(e) => {
                staging.discard();
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot stage the pool database; {keep_msg}")));
            }
        }
    }
    let generation = w.store.commit(&w.lock, staging, meta)?;
    if !quiet {
        println!(
            "Staged {shown_input} as generation {} on {} ({}, {} files, {}, {}).\n\
             Boot the recovery image and choose \"Restore from backup\" to restore it.",
            generation.id,
            dev.path.display(),
            human_bytes(generation.meta.size),
            generation.meta.files,
            codec,
            generation.meta.state.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What reading the upload found.
struct Staged {
    is_lifeboat: bool,
    manifest: Option<Manifest>,
    trailer: Option<Trailer>,
    counts: Counts,
    /// `etc/xensource-inventory` of a plain tar.
    inventory: Option<String>,
    hostname: Option<String>,
    /// Bytes of the staged archive file.
    size: u64,
}

/// The copy of the upload: into the staging file, counted and hashed, so the file can be
/// checked against what was read once it is on disk.
struct StagingSink<'a> {
    file: &'a File,
    count: &'a AtomicU64,
    hasher: &'a Mutex<blake3::Hasher>,
}

impl Write for StagingSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut f = self.file;
        let n = f.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copies the upload into the staging file while decompressing it and reading every entry
/// through the archive reader (which checks every checksum and the trailer of a Lifeboat
/// archive), then reads the rest of the stream (the compressed stream's own check), fsyncs,
/// and checks the file on disk against what was read.
fn stage(
    staging: &Staging,
    input: BufReader<Box<dyn Read + Send>>,
    progress: &dyn Progress,
) -> anyhow::Result<Staged> {
    let file = staging.create_archive()?;
    let count = AtomicU64::new(0);
    let hasher = Mutex::new(blake3::Hasher::new());
    let sink = StagingSink {
        file: &file,
        count: &count,
        hasher: &hasher,
    };
    let tee = TeeReader::new(ProgressReader::new(input, progress), sink);
    let (_, tar) = codec::decoder_inline(tee).context("cannot read the upload")?;
    let mut reader = ArchiveReader::new(tar);
    let mut inventory = None;
    let mut hostname = None;
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(mut e) = reader.next_entry()? {
        let path = normalized(&e.entry.path);
        let capture = matches!(e.entry.kind, EntryKind::File { .. })
            && e.entry.size <= 64 * 1024
            && (path == inventory::INVENTORY_PATH || path == "etc/hostname");
        if capture {
            let mut text = String::new();
            e.read_to_string(&mut text).map_err(archive_err)?;
            if path == "etc/hostname" {
                hostname = text.lines().next().map(|l| l.trim().to_string());
            } else {
                inventory = Some(text);
            }
        } else {
            while e.read(&mut buf).map_err(archive_err)? > 0 {}
        }
    }
    let is_lifeboat = reader.is_lifeboat();
    let manifest = reader.manifest().cloned();
    let trailer = reader.trailer().cloned();
    let counts = reader.counts().clone();
    if counts.entries == 0 {
        bail!("the archive holds no files");
    }
    // The rest: tar padding and the compressed stream's end (gzip CRC, zstd checksum, ...).
    let mut rest = reader.into_inner();
    io::copy(&mut rest, &mut io::sink()).context("the end of the compressed stream is damaged")?;
    drop(rest);
    file.sync_all()
        .with_context(|| format!("cannot write {}", staging.archive_path().display()))?;
    drop_cache(&file);
    let read_bytes = count.load(Ordering::Relaxed);
    let expected = hasher
        .lock()
        .map(|h| h.finalize())
        .map_err(|_| anyhow::anyhow!("internal error: hasher poisoned"))?;
    let on_disk = hash_file(staging.archive_path())?;
    if on_disk.0 != read_bytes || on_disk.1 != expected {
        bail!(
            "the staged copy {} differs from the upload ({} bytes read, {} on disk): a disk error?",
            staging.archive_path().display(),
            read_bytes,
            on_disk.0
        );
    }
    Ok(Staged {
        is_lifeboat,
        manifest,
        trailer,
        counts,
        inventory,
        hostname,
        size: read_bytes,
    })
}

fn archive_err(e: io::Error) -> anyhow::Error {
    // The reader reports a checksum mismatch as an io::Error wrapping the ArchiveError: keep
    // that typed, and a plain I/O error (e.g. the staging disk full) as it is.
    match ArchiveError::from(e) {
        ArchiveError::Io(io) => anyhow::Error::new(io),
        a => anyhow::Error::new(a),
    }
}

fn normalized(path: &[u8]) -> String {
    let s = String::from_utf8_lossy(path);
    s.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

fn hash_file(path: &Path) -> anyhow::Result<(u64, blake3::Hash)> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    let n = io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((n, h.finalize()))
}
