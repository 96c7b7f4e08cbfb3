//! `lifeboat restore (GEN | latest | file-name=F) --target-dir DIR`: extracts an archive beneath
//! DIR with the restore engine (checksums checked as it goes, nothing written outside DIR).

use crate::cli::Command;
use crate::config;
use crate::ui::Bar;
use anyhow::{bail, Context, Result};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::codec;
use lifeboat_core::io::ProgressReader;
use lifeboat_core::progress::Progress;
use lifeboat_core::restore::{extract, RestoreError, RestoreOptions};
use lifeboat_core::store::{self, Store};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

/// An archive to read: the stream, its size when known (for progress), and the store's mount
/// when it comes from a generation (kept mounted while it is read).
pub(super) struct Input {
    pub stream: Box<dyn Read + Send>,
    pub size: Option<u64>,
    pub name: String,
    /// Logical content bytes, when the store recorded them.
    pub content_bytes: Option<u64>,
    /// The generation read, checked against its meta.json at the start and the end.
    pub generation: Option<store::Generation>,
    pub _mount: Option<store::Mounted>,
}

/// Opens `file_name` (`-` = stdin).
pub(super) fn open_file(file_name: &Path) -> Result<Input> {
    if file_name == Path::new("-") {
        return Ok(Input {
            stream: Box::new(std::io::stdin()),
            size: None,
            name: "stdin".into(),
            content_bytes: None,
            generation: None,
            _mount: None,
        });
    }
    let f = std::fs::File::open(file_name)
        .with_context(|| format!("cannot open the archive {}", file_name.display()))?;
    let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok(Input {
        stream: Box::new(f),
        size,
        name: file_name.display().to_string(),
        content_bytes: None,
        generation: None,
        _mount: None,
    })
}

/// The backup store on the backup partition, mounted read-only.
pub(super) fn open_store(device: Option<&Path>) -> Result<(Store, store::Mounted, String)> {
    let dev = config::find_backup_device(device, Path::new("/"))?;
    let mounted = store::mount_device(&dev.path, true)?;
    if !Store::is_store(mounted.dir()) {
        bail!(
            "{} (from {}) holds no Lifeboat store; give file-name=F to use an archive file",
            dev.path.display(),
            dev.source
        );
    }
    let st = Store::open_read_only(mounted.dir())?;
    Ok((st, mounted, dev.path.display().to_string()))
}

/// Opens the archive of a committed generation (`latest` or an id).
pub(super) fn open_generation(store: &Store, device: &str, id: &str) -> Result<Input> {
    let g = store.find(id)?;
    let f = g
        .open_archive()
        .with_context(|| format!("cannot open the archive of generation {} on {device}", g.id))?;
    Ok(Input {
        stream: Box::new(f),
        size: Some(g.meta.size),
        name: format!("generation {} ({device})", g.id),
        content_bytes: Some(g.meta.bytes),
        generation: Some(g),
        _mount: None,
    })
}

/// The archive a command names: a generation of the store, or a file.
pub(super) fn select(
    generation: Option<&str>,
    file_name: Option<&Path>,
    device: Option<&Path>,
) -> Result<Input> {
    match (generation, file_name) {
        (None, Some(f)) => open_file(f),
        (Some(_), Some(_)) => bail!("give either a generation or file-name=F, not both"),
        (Some(g), None) => {
            let (st, mounted, dev) = open_store(device)?;
            let mut input = open_generation(&st, &dev, g)?;
            input._mount = Some(mounted);
            Ok(input)
        }
        (None, None) => {
            bail!("say what to restore: a generation id, 'latest', or file-name=F (- for stdin)")
        }
    }
}

/// A progress bar that lives as long as the process (the decompression thread needs a
/// `'static` reader to report through).
pub(super) fn bar(quiet: bool, total: Option<u64>) -> &'static Bar {
    let bar: &'static Bar = Box::leak(Box::new(Bar::new(quiet)));
    bar.set_total(total);
    bar
}

pub fn run(cmd: Command, quiet: bool) -> Result<ExitCode> {
    let Command::Restore {
        generation,
        file_name,
        target_dir,
        device,
        json,
    } = cmd
    else {
        bail!("internal error: not a restore command");
    };
    let input = select(
        generation.as_deref(),
        file_name.as_deref(),
        device.backup_device.as_deref(),
    )?;
    if !target_dir.is_dir() {
        bail!(
            "the target {} is not a directory: make and mount the filesystem to restore into first",
            target_dir.display()
        );
    }
    let bar = bar(quiet || json, input.size);
    let counted = ProgressReader::new(input.stream, bar);
    let (codec, tar) =
        codec::decoder(counted).with_context(|| format!("cannot read {}", input.name))?;
    let mut reader = ArchiveReader::new(tar);
    let manifest = reader
        .read_manifest()
        .with_context(|| format!("cannot read {}", input.name))?
        .cloned();
    let is_lifeboat = reader.is_lifeboat();
    if let Some(g) = &input.generation {
        g.check_start(codec, is_lifeboat, manifest.as_ref())?;
    }
    if !is_lifeboat && !json {
        eprintln!(
            "lifeboat: warning: {} is a plain tar archive: it carries no checksums, so its content cannot be verified",
            input.name
        );
    }
    let mut opts = RestoreOptions::new(&target_dir);
    opts.expected_bytes = input.content_bytes;
    let result = extract(&mut reader, &opts, bar);
    bar.finish();
    if let (Ok(_), Some(g)) = (&result, &input.generation) {
        if let Err(e) = g.check_reader_end(codec, &reader) {
            if json {
                let out = serde_json::json!({
                    "ok": false, "archive": input.name, "target": target_dir, "error": e.to_string(),
                    "damaged": true,
                });
                println!("{out}");
            } else {
                eprintln!("lifeboat: error: {e}");
                eprintln!(
                    "lifeboat: the restore into {} is incomplete: restore from another backup",
                    target_dir.display()
                );
            }
            return Ok(ExitCode::from(2));
        }
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let damaged = matches!(
                e,
                RestoreError::Archive(_)
                    | RestoreError::ArchiveAt { .. }
                    | RestoreError::Content { .. }
            );
            if json {
                let out = serde_json::json!({
                    "ok": false, "archive": input.name, "target": target_dir, "error": e.to_string(),
                    "damaged": damaged,
                });
                println!("{out}");
            } else {
                eprintln!("lifeboat: error: {e}");
                if damaged {
                    eprintln!(
                        "lifeboat: the restore into {} is incomplete: restore from another backup",
                        target_dir.display()
                    );
                }
            }
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        let out = serde_json::json!({
            "ok": true,
            "archive": input.name,
            "codec": codec.name(),
            "verified": is_lifeboat,
            "host": manifest.as_ref().map(|m| m.hostname.clone()),
            "target": target_dir,
            "report": report,
        });
        println!("{out}");
    } else {
        for w in &report.warnings.messages {
            eprintln!("lifeboat: warning: {w}");
        }
        if report.warnings.count > report.warnings.messages.len() as u64 {
            eprintln!(
                "lifeboat: warning: ... and {} more",
                report.warnings.count - report.warnings.messages.len() as u64
            );
        }
        if !quiet {
            println!(
                "restored {} files ({} bytes), {} directories, {} symlinks, {} hard links, {} devices, {} fifos into {}{}",
                report.files,
                report.bytes,
                report.dirs,
                report.symlinks,
                report.hardlinks,
                report.devices,
                report.fifos,
                target_dir.display(),
                if is_lifeboat { ", every checksum verified" } else { " (plain tar: not verified)" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
