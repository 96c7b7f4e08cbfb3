//! `lifeboat pool-database GEN --output F [--repo URL]`: a generation's pool database dump
//! (taken by `backup` with `xe pool-dump-database`), checked against its record (size and
//! BLAKE3 in meta.json, or in the repository's index), written to F for
//! `xe pool-restore-database file-name=F`.

use super::common::open_store;
use crate::cli::PoolDatabaseArgs;
use anyhow::{bail, Context, Result};
use lifeboat_core::progress::human_bytes;
use lifeboat_core::store::fsync;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: PoolDatabaseArgs, quiet: bool) -> Result<ExitCode> {
    let PoolDatabaseArgs {
        generation,
        output,
        device,
        repo,
    } = args;
    if output.exists() {
        bail!(
            "{} exists; give a new file name to --output (nothing was written)",
            output.display()
        );
    }
    let (id, data, from) = if repo.repo.is_some() {
        super::repo::pool_database(&repo, &generation)?
    } else {
        let st = open_store(device.backup_device.as_deref())?;
        let g = st.store.find(&generation)?;
        let data = g
            .read_pool_database()
            .with_context(|| format!("generation {} on {}", g.id, st.device))?;
        (g.id, data, st.device.clone())
    };
    let Some(data) = data else {
        bail!(
            "generation {id} on {from} has no pool database (it was taken where `xe` was not on \
             PATH, or with --no-pool-database); nothing was written"
        );
    };
    write_new(&output, &data)?;
    if !quiet {
        println!(
            "Pool database of generation {id} ({}, checked) written to {}.\n\
             Restore it on the pool master with: xe pool-restore-database file-name={}",
            human_bytes(data.len() as u64),
            output.display(),
            output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a new file (0600), fsynced; a partial file is removed.
fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    let written = fsync::create_private(path).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()
    });
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(path);
        }
        return Err(e)
            .with_context(|| format!("cannot write the pool database to {}", path.display()));
    }
    Ok(())
}
