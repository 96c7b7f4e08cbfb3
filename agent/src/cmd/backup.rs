//! `lifeboat backup`: a new generation of the root in the backup partition.
//!
//! Steps: find the device, mount it, lock the store, remove debris of interrupted runs, check
//! the space, write the archive into `staging/`, fsync, read it back from disk through the
//! archive reader (every checksum, the trailer), commit by rename, prune beyond `--keep`.

use super::common::{
    drop_cache, dump_pool_database, find_xe, is_no_space, open_for_writing, run_pre_hook,
    source_options,
};
use crate::cli::BackupArgs;
use crate::config;
use crate::metrics;
use crate::ui::Bar;
use anyhow::bail;
use lifeboat_core::archive::verify::verify_stream;
use lifeboat_core::archive::ArchiveError;
use lifeboat_core::codec::Codec;
use lifeboat_core::identity;
use lifeboat_core::progress::human_bytes;
use lifeboat_core::progress::Progress;
use lifeboat_core::source;
use lifeboat_core::store::{self, layout, GenerationMeta, GenerationState, Origin};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Serialize)]
struct Summary {
    generation: String,
    device: String,
    archive: String,
    size: u64,
    files: u64,
    entries: u64,
    bytes: u64,
    codec: String,
    state: String,
    seconds: f64,
    pruned: Vec<String>,
    removed_leftovers: Vec<String>,
    skipped_mounts: Vec<String>,
    changed_files: Vec<String>,
    sockets_skipped: u64,
    warnings: Vec<String>,
    free_bytes: u64,
    /// Bytes of the pool database dump kept with the generation (None: none was taken).
    pool_database: Option<u64>,
    /// The push to the repository, when one is given or configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pushed: Option<lifeboat_repo::push::PushReport>,
}

/// `facts` is filled in once a generation is committed (for `lifeboat status` and the
/// Prometheus textfile, [`crate::metrics`]).
pub fn run(
    args: BackupArgs,
    quiet: bool,
    facts: &mut Option<metrics::BackupFacts>,
) -> anyhow::Result<ExitCode> {
    let BackupArgs {
        source: args,
        device,
        keep,
        json,
        repo,
        no_pool_database,
    } = args;
    let push_to_repo = super::repo::configured(&repo)?;
    let started = Instant::now();
    let keep = match keep {
        Some(k) => k,
        None => config::load()?.keep.unwrap_or(2),
    };
    let mut opts = source_options(&args)?;
    let root = opts.root.clone();
    let dev = config::find_backup_device(device.backup_device.as_deref(), &root)?;
    let w = open_for_writing(&dev, "backup", quiet)?;
    let root_dev = identity::blockdev::name_of_dir(&root).ok().flatten();
    let backup_dev = identity::blockdev::name_of_device(&dev.path).ok();
    if root_dev.is_some() && root_dev == backup_dev {
        bail!(
            "the backup device {} holds the root {} itself; choose another partition",
            dev.path.display(),
            root.display()
        );
    }

    if let Some(hook) = &args.pre_hook {
        run_pre_hook(hook)?;
    }

    let codec = opts.codec;
    let mut manifest = identity::manifest_for_root_with(&root, std::slice::from_ref(&dev.path));
    manifest.codec = codec.name().to_string();

    // Space, before anything is written.
    let previous = w.store.latest()?;
    let keep_msg = match &previous {
        Some(g) => format!("the last good generation {} is intact", g.id),
        None => "nothing was written".to_string(),
    };
    let space = w.store.space()?;
    // What will be read: the tree under --root with the excludes, not its whole filesystem.
    let source_used = source::estimate_bytes(&opts).unwrap_or(0);
    let needed = store::space::estimate(
        previous.as_ref().map(|g| g.meta.size),
        source_used,
        codec != Codec::None,
    );
    if needed > space.available {
        bail!(
            "not enough space on the backup partition {}: the new generation needs about {} ({}), \
             {} is free; {keep_msg}. {}",
            dev.path.display(),
            human_bytes(needed),
            match &previous {
                Some(g) => format!("estimated from generation {}", g.id),
                None => format!(
                    "estimated from the {} to back up under {}",
                    human_bytes(source_used),
                    root.display()
                ),
            },
            human_bytes(space.available),
            if previous.is_some() {
                "Remove old generations (`lifeboat list` shows them) or use a larger backup partition."
            } else {
                "Exclude large data (--exclude), compress (--compress zstd), or use a larger backup partition."
            }
        );
    }

    // A large file rewritten between its checksum pass and its copy leaves a copy that
    // cannot verify; the whole backup is taken again once before giving up on it.
    const ATTEMPTS: u32 = 2;
    let mut attempt = 1;
    let (staging, size, report, verified) = loop {
        let staging = w
            .store
            .begin(&w.lock, layout::ext_for_codec(codec.name()))?;
        // Copies of files that keep changing go to the store, never to the root.
        opts.spool_dir = Some(staging.dir().to_path_buf());
        let bar = Bar::new(quiet || json);
        let written = (|| -> anyhow::Result<_> {
            let file = staging.create_archive()?;
            let out = BufWriter::with_capacity(1 << 20, file);
            let (mut out, report) = source::write_backup(&opts, manifest.clone(), out, &bar)?;
            out.flush()?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop_cache(&file);
            Ok((file.metadata()?.len(), report))
        })();
        bar.finish();
        let (size, report) = match written {
            Ok(r) => r,
            Err(e) => {
                staging.discard();
                if is_no_space(&e) {
                    bail!(
                        "the backup partition {} is full: the new generation did not fit and was removed; \
                         {keep_msg}. Remove old generations (`lifeboat list` shows them) or use a larger \
                         backup partition.",
                        dev.path.display()
                    );
                }
                return Err(e.context(format!("the backup failed; {keep_msg}")));
            }
        };

        // Read it back from the disk: every header, checksum and the trailer.
        let verified = File::open(staging.archive_path())
            .map_err(ArchiveError::Io)
            .and_then(|f| verify_stream(f).map_err(ArchiveError::from));
        let verified = match verified {
            Ok(v) => v,
            Err(ArchiveError::ChecksumMismatch { path })
                if report
                    .changed_files
                    .iter()
                    .any(|c| c.trim_start_matches('/') == path.trim_start_matches('/')) =>
            {
                staging.discard();
                if attempt < ATTEMPTS {
                    attempt += 1;
                    if !quiet {
                        eprintln!(
                            "lifeboat: /{path} was rewritten while it was copied, so its copy cannot be \
                             verified; backing up again (attempt {attempt} of {ATTEMPTS})"
                        );
                    }
                    continue;
                }
                bail!(
                    "/{path} kept being rewritten while it was copied, so its copy in the archive cannot \
                     be verified; the new generation was removed and {keep_msg}. Stop what writes it \
                     during the backup, or leave it out with --exclude '{path}'."
                );
            }
            Err(e) => {
                staging.discard();
                return Err(anyhow::Error::new(e).context(format!(
                    "the new generation failed verification after it was written to {}; it was removed and {keep_msg}",
                    dev.path.display()
                )));
            }
        };
        let same = verified
            .trailer
            .as_ref()
            .map(|t| (&t.entries_digest, &t.counts))
            == Some((&report.trailer.entries_digest, &report.trailer.counts));
        if !same {
            staging.discard();
            bail!(
                "the new generation read back from {} differs from what was written; it was removed and {keep_msg}",
                dev.path.display()
            );
        }
        break (staging, size, report, verified);
    };

    // The pool database: its own member of the generation, beside the archive.
    let xe = if no_pool_database { None } else { find_xe() };
    let pool_database = match &xe {
        Some(xe) => {
            let dumped = dump_pool_database(xe, &staging.pool_database_path())
                .and_then(|()| Ok(staging.seal_pool_database()?));
            match dumped {
                Ok(p) => Some(p),
                Err(e) => {
                    staging.discard();
                    return Err(e.context(format!("the pool database was not dumped; {keep_msg}")));
                }
            }
        }
        None => None,
    };

    let manifest = verified.manifest.clone();
    let counts = &report.trailer.counts;
    let meta = GenerationMeta {
        id: String::new(),
        created: manifest
            .as_ref()
            .map(|m| m.created.clone())
            .unwrap_or_default(),
        committed: String::new(),
        origin: Origin::Backup,
        host: manifest
            .as_ref()
            .map(|m| m.hostname.clone())
            .unwrap_or_default(),
        product_version: manifest
            .as_ref()
            .and_then(|m| identity::inventory::product_version(&m.inventory).map(String::from)),
        size,
        files: counts.files,
        entries: counts.entries,
        bytes: counts.bytes,
        codec: codec.name().to_string(),
        archive: String::new(),
        state: if report.changed_files.is_empty() {
            GenerationState::Verified
        } else {
            GenerationState::Inconsistent
        },
        changed_files: report.changed_files.clone(),
        manifest,
        entries_digest: Some(report.trailer.entries_digest.clone()),
        pool_database,
    };
    let generation = w.store.commit(&w.lock, staging, meta)?;
    let pruned = w.store.prune(&w.lock, keep, &generation.id)?;
    let free = w.store.space().map(|s| s.available).unwrap_or(0);
    let kept = w.store.generations()?;
    *facts = Some(metrics::BackupFacts {
        generation: generation.id.clone(),
        device: dev.path.display().to_string(),
        written_bytes: size,
        content_bytes: counts.bytes,
        files: counts.files,
        generations_kept: kept.len() as u64,
        stored_bytes: kept.iter().map(|g| g.meta.size).sum(),
        state: generation.meta.state.name().to_string(),
    });

    let summary = Summary {
        generation: generation.id.clone(),
        device: dev.path.display().to_string(),
        archive: format!("generations/{}/{}", generation.id, generation.meta.archive),
        size,
        files: counts.files,
        entries: counts.entries,
        bytes: counts.bytes,
        codec: codec.name().to_string(),
        state: generation.meta.state.name().to_string(),
        seconds: started.elapsed().as_secs_f64(),
        pruned,
        removed_leftovers: w.removed_leftovers.clone(),
        skipped_mounts: report.skipped_mounts.clone(),
        changed_files: report.changed_files.clone(),
        sockets_skipped: report.sockets_skipped,
        warnings: report.warnings.clone(),
        free_bytes: free,
        pool_database: generation.meta.pool_database.as_ref().map(|p| p.size),
        pushed: None,
    };
    // The local commit stands whatever happens next; the push reads it back, verified,
    // while the store is still mounted.
    let mut summary = summary;
    let pushed = if push_to_repo {
        match super::repo::push_committed(&repo, &generation, quiet || json) {
            Ok(r) => Some(r),
            Err(e) => {
                return Err(e.context(format!(
                    "generation {} is committed on {}, but the push to the repository failed: run `lifeboat push` again later",
                    generation.id,
                    dev.path.display()
                )))
            }
        }
    } else {
        None
    };
    summary.pushed = pushed;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !quiet {
        print_summary(&summary);
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn print_summary(s: &Summary) {
    println!(
        "Generation {} committed on {}: {} files, {} of data in {} ({}), verified, {:.1} s.",
        s.generation,
        s.device,
        s.files,
        human_bytes(s.bytes),
        human_bytes(s.size),
        s.codec,
        s.seconds
    );
    if let Some(n) = s.pool_database {
        println!(
            "  pool database: {} (xe pool-dump-database)",
            human_bytes(n)
        );
    }
    for m in &s.skipped_mounts {
        println!("  not included (another filesystem): /{m}");
    }
    if !s.pruned.is_empty() {
        println!("  pruned: {}", s.pruned.join(", "));
    }
    if s.sockets_skipped > 0 {
        println!("  sockets skipped: {}", s.sockets_skipped);
    }
    for w in &s.warnings {
        println!("  warning: {w}");
    }
    if !s.changed_files.is_empty() {
        println!(
            "  {} file(s) kept changing while they were read; the backup is complete but not consistent:",
            s.changed_files.len()
        );
        for f in s.changed_files.iter().take(20) {
            println!("    /{f}");
        }
    }
    println!(
        "  {} free on the backup partition.",
        human_bytes(s.free_bytes)
    );
    if let Some(r) = &s.pushed {
        super::repo::print_push(r, "the repository");
    }
}
