//! `lifeboat restore (GEN | latest | file-name=F) --target-dir DIR`: extracts an archive beneath
//! DIR with the restore engine (checksums checked as it goes, nothing written outside DIR).
//! DIR is never `/`, and must be empty (`lost+found` aside) unless `--force`.

use super::common::{decode, select};
use crate::cli::{ArchiveArgs, RestoreArgs};
use crate::ui::Bar;
use anyhow::{bail, Context, Result};
use lifeboat_core::progress::Progress;
use lifeboat_core::restore::{extract, RestoreError, RestoreOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: RestoreArgs, quiet: bool) -> Result<ExitCode> {
    let RestoreArgs {
        archive:
            ArchiveArgs {
                generation,
                file_name,
                device,
                repo,
            },
        target_dir,
        force,
        json,
    } = args;
    // A generation is opened against its meta.json (codec, kind, manifest) before anything
    // is written, and checked against it again after its last entry; one of a repository
    // too (the meta.json its index records).
    let (mut input, bar) = if repo.repo.is_some() {
        let Some(gen) = generation.as_deref().filter(|_| file_name.is_none()) else {
            bail!("with --repo, say which generation to restore: an id or 'latest'");
        };
        check_target(&target_dir, force)?;
        super::repo::open_decoded(&repo, gen, quiet || json)?
    } else {
        let input = select(
            generation.as_deref(),
            file_name.as_deref(),
            device.backup_device.as_deref(),
        )?;
        check_target(&target_dir, force)?;
        let bar = Bar::leaked(quiet || json, input.size);
        (decode(input, bar)?, bar)
    };
    let codec = input.codec;
    let reader = &mut input.reader;
    let manifest = reader
        .read_manifest()
        .with_context(|| format!("cannot read {}", input.name))?
        .cloned();
    let is_lifeboat = reader.is_lifeboat();
    if !is_lifeboat && !json {
        eprintln!(
            "lifeboat: warning: {} is a plain tar archive: it carries no checksums, so its content cannot be verified",
            input.name
        );
    }
    let mut opts = RestoreOptions::new(&target_dir);
    opts.expected_bytes = input.content_bytes;
    let result = extract(reader, &opts, bar);
    bar.finish();
    let failed = |error: &dyn std::fmt::Display, damaged: bool| {
        report_failure(json, &input.name, &target_dir, error, damaged)
    };
    if let (Ok(_), Some(g)) = (&result, &input.generation) {
        if let Err(e) = g.check_reader_end(codec, reader) {
            return Ok(failed(&e, true));
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
            return Ok(failed(&e, damaged));
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

/// Says that the restore failed (as JSON with `--json`) and, when the archive is damaged,
/// that the target holds an incomplete restore. The exit status is 2.
fn report_failure(
    json: bool,
    archive: &str,
    target: &Path,
    error: &dyn std::fmt::Display,
    damaged: bool,
) -> ExitCode {
    if json {
        let out = serde_json::json!({
            "ok": false, "archive": archive, "target": target, "error": error.to_string(),
            "damaged": damaged,
        });
        println!("{out}");
    } else {
        eprintln!("lifeboat: error: {error}");
        if damaged {
            eprintln!(
                "lifeboat: the restore into {} is incomplete: restore from another backup",
                target.display()
            );
        }
    }
    ExitCode::from(2)
}

/// Refuses a target that is `/` (the running system, by any path) or not a directory, and
/// one that is not empty (`lost+found` aside) unless `force`.
fn check_target(target: &Path, force: bool) -> Result<()> {
    let shown = target.display();
    let meta = match std::fs::metadata(target) {
        Ok(m) if m.is_dir() => m,
        _ => bail!(
            "the target {shown} is not a directory: make and mount the filesystem to restore \
             into first"
        ),
    };
    let root = std::fs::metadata("/").context("cannot look at /")?;
    if (meta.dev(), meta.ino()) == (root.dev(), root.ino()) {
        bail!(
            "refusing to restore into {shown}: it is / of the running system. Make and mount the \
             filesystem to restore into (e.g. on /mnt/newroot) and give that directory"
        );
    }
    if force {
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(target)
        .with_context(|| format!("cannot read the target {shown}"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read the target {shown}"))?;
    names.retain(|n| n != "lost+found");
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let sample: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    bail!(
        "refusing to restore into {shown}: it is not empty (it holds {}{}). Restore into an \
         empty, freshly made filesystem, or add --force to restore over what is there (files \
         of the archive replace those in their way; the others are kept)",
        sample.join(", "),
        match names.len() - sample.len() {
            0 => String::new(),
            more => format!(" and {more} more"),
        }
    )
}
