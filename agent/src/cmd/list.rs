//! `lifeboat list`: the generations in the backup partition (and a XenServer backup tree).

use super::common::mount_read_only;
use crate::cli::ListArgs;
use anyhow::{bail, Context};
use lifeboat_core::progress::human_bytes;
use lifeboat_core::store::{self, BackupSummary, Store};
use std::process::ExitCode;

#[derive(serde::Serialize)]
struct Listing<'a> {
    device: String,
    total_bytes: u64,
    free_bytes: u64,
    backups: &'a [BackupSummary],
    /// The last restore-* journal record, when there is one.
    last_restore: Option<store::JournalRecord>,
}

pub fn run(args: ListArgs, _quiet: bool) -> anyhow::Result<ExitCode> {
    let ListArgs {
        device,
        json,
        repo,
        remote: _,
    } = args;
    if repo.repo.is_some() {
        return super::repo::list(&repo, json);
    }
    let (dev, mounted) = mount_read_only(device.backup_device.as_deref())?;
    let root = mounted.dir();
    let rows = store::list_backups(root)
        .with_context(|| format!("cannot read the backups on {}", dev.path.display()))?;
    if rows.is_empty() && !Store::is_store(root) {
        bail!(
            "{} (from {}) holds neither a Lifeboat store nor a XenServer backup; \
             create a store with `lifeboat init-store --backup-device {}`",
            dev.path.display(),
            dev.source,
            dev.path.display()
        );
    }
    let space = store::space::space_of(root)?;
    let last_restore = if Store::is_store(root) {
        Store::open_read_only(root)?.last_restore()?
    } else {
        None
    };
    if json {
        let listing = Listing {
            device: dev.path.display().to_string(),
            total_bytes: space.total,
            free_bytes: space.available,
            backups: &rows,
            last_restore,
        };
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Backup partition {} ({} free of {})",
        dev.path.display(),
        human_bytes(space.available),
        human_bytes(space.total)
    );
    if rows.is_empty() {
        println!("No generations yet: run `lifeboat backup`.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<20} {:<16} {:<8} {:>10} {:>8} {:<5} {:<12} {:<13} {:>8}",
        "ID", "CREATED", "HOST", "VERSION", "SIZE", "FILES", "CODEC", "STATE", "ORIGIN", "POOL-DB"
    );
    for r in &rows {
        println!(
            "{:<20} {:<20} {:<16} {:<8} {:>10} {:>8} {:<5} {:<12} {:<13} {:>8}",
            r.id,
            r.created,
            r.host,
            r.product_version.as_deref().unwrap_or("-"),
            human_bytes(r.size),
            r.files.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            r.codec,
            r.state,
            r.origin,
            r.pool_database
                .map(human_bytes)
                .unwrap_or_else(|| "-".into())
        );
    }
    if let Some(rec) = last_restore {
        if rec.event == store::events::RESTORE_STARTED {
            println!(
                "Note: a restore of {} to {} started at {} and did not finish; boot the recovery image to finish it.",
                rec.generation.as_deref().unwrap_or("?"),
                rec.target.as_deref().unwrap_or("?"),
                rec.time
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
