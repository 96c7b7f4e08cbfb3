//! `lifeboat copy GEN|latest (--to-device DEV | --to-file F)`: one committed generation copied
//! out of the backup partition into a store on another device (a USB disk, another backup
//! partition) or into an archive file, verified before it counts (core's
//! `store::copy`). The source store is mounted read-only; the target store is locked and
//! cleaned of debris like any writer's. A target that holds the generation already is left
//! alone (exit 0, `"already": true`).

use super::common::{open_for_writing, open_store};
use crate::cli::CopyArgs;
use crate::config::BackupDevice;
use crate::ui::Bar;
use anyhow::{bail, Context};
use lifeboat_core::identity;
use lifeboat_core::progress::{human_bytes, Progress};
use lifeboat_core::store::copy::{self, Copied, CopyError};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Serialize)]
struct Summary {
    generation: String,
    host: String,
    source: String,
    /// "device" or "file".
    target_kind: &'static str,
    target: String,
    /// The generation's id in the target store.
    target_id: String,
    /// The archive written (in the target store: relative to its root).
    archive: String,
    size: u64,
    blake3: String,
    already: bool,
    verified: bool,
    seconds: f64,
}

pub fn run(args: CopyArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let CopyArgs {
        generation,
        device,
        to_device,
        to_file,
        repo,
        json,
    } = args;
    if repo.repo.is_some() {
        if to_device.is_some() || to_file.is_some() {
            bail!("give one target: --repo URL, --to-device DEV or --to-file F");
        }
        return super::repo::push(
            crate::cli::PushArgs {
                generation: Some(generation),
                device,
                repo,
                json,
            },
            quiet,
        );
    }
    let started = Instant::now();
    let src = open_store(device.backup_device.as_deref())?;
    let g = src.store.find(&generation)?;
    let bar = Bar::new(quiet || json);
    let (kind, target, done, archive) = match (to_device, to_file) {
        (Some(spec), None) => {
            let shown = spec.display().to_string();
            let path = identity::resolve_device(&spec.to_string_lossy())
                .with_context(|| format!("cannot find the target device {shown}"))?;
            if same_device(&path, src.mounted.device()) {
                bail!(
                    "the target {shown} is the backup device generation {} is copied from ({}); \
                     copy to a store on another device, or to a file with --to-file",
                    g.id,
                    src.device
                );
            }
            let table = identity::read_partition_table(&path).ok().flatten();
            if let Some(t) = table.filter(|t| !t.partitions.is_empty()) {
                bail!(
                    "the target {shown} is a whole disk with a {} partition table ({} \
                     partitions): name the partition that holds the store (`lsblk -f`), or \
                     make one with `lifeboat init-store --backup-device PARTITION`",
                    t.kind.name(),
                    t.partitions.len()
                );
            }
            if identity::probe(&path).ok().flatten().is_none() {
                bail!(
                    "the target {shown} holds no filesystem, so no Lifeboat store: copy never \
                     formats. Create a store on it first with `lifeboat init-store \
                     --backup-device {shown}` (it erases the device), then copy again"
                );
            }
            let dev = BackupDevice {
                path,
                source: format!("--to-device {shown}"),
            };
            let w = open_for_writing(&dev, "copy", quiet || json)?;
            let done = copy::to_store(&src.store, &g, &w.store, &w.lock, &bar);
            bar.finish();
            let done = explain(done, &g.id, &src.device, &dev.path.display().to_string())?;
            let archive = done
                .path
                .strip_prefix(w.store.root())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| done.path.display().to_string());
            ("device", dev.path.display().to_string(), done, archive)
        }
        (None, Some(file)) => {
            if file == Path::new("-") {
                bail!(
                    "--to-file - is not a file: a copy is verified on disk before it is renamed \
                     into place; to stream an archive, use `lifeboat host-backup file-name=-`"
                );
            }
            let done = copy::to_file(&g, src.store.root(), &file, &bar);
            bar.finish();
            let done = explain(done, &g.id, &src.device, &file.display().to_string())?;
            let archive = done.path.display().to_string();
            ("file", file.display().to_string(), done, archive)
        }
        _ => bail!("say where to copy to: --to-device DEV or --to-file F (one of them)"),
    };
    let summary = Summary {
        generation: g.id.clone(),
        host: g.meta.host.clone(),
        source: src.device.clone(),
        target_kind: kind,
        target,
        target_id: done.target_id.clone(),
        archive,
        size: done.size,
        blake3: done.blake3.clone(),
        already: done.already,
        verified: !done.already,
        seconds: started.elapsed().as_secs_f64(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !quiet {
        print_summary(&summary, &done);
    }
    Ok(ExitCode::SUCCESS)
}

/// The copy's result, its errors told with the devices' names (core knows only the mount
/// points).
fn explain(
    done: Result<Copied, CopyError>,
    id: &str,
    source: &str,
    target: &str,
) -> anyhow::Result<Copied> {
    match done {
        Ok(d) => Ok(d),
        Err(CopyError::SourceDamaged { what, .. }) => bail!(
            "generation {id} on {source} is damaged: {what}. It was not copied and nothing was \
             left on {target}. `lifeboat verify --backup-device {source}` checks every \
             generation there; copy a sound one"
        ),
        Err(CopyError::NoSpace {
            needed, available, ..
        }) => bail!(
            "no space for a copy of generation {id} on {target}: {} needed, {} free; nothing \
             was left there. Free space on it (`lifeboat list` shows the generations of a \
             store) or use a larger disk",
            human_bytes(needed),
            human_bytes(available)
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot copy generation {id} from {source} to {target}"
        ))),
    }
}

/// True when two device nodes are the same block device.
fn same_device(a: &Path, b: &Path) -> bool {
    match (
        identity::blockdev::name_of_device(a),
        identity::blockdev::name_of_device(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn print_summary(s: &Summary, done: &Copied) {
    if done.already {
        println!(
            "Generation {} of {} is already on {} (as {}); nothing was copied.",
            s.generation,
            if s.host.is_empty() { "?" } else { &s.host },
            s.target,
            if s.target_kind == "file" {
                s.target.as_str()
            } else {
                s.target_id.as_str()
            }
        );
        return;
    }
    let as_id = if s.target_kind == "device" && s.target_id != s.generation {
        format!(" as generation {} (its id was taken there)", s.target_id)
    } else {
        String::new()
    };
    println!(
        "Copied generation {} of {} ({}) from {} to {}{as_id}, verified: read back from the disk, \
         every checksum and the trailer checked, BLAKE3 {}; {:.1} s.",
        s.generation,
        if s.host.is_empty() { "?" } else { &s.host },
        human_bytes(s.size),
        s.source,
        s.target,
        s.blake3,
        s.seconds
    );
    if s.target_kind == "file" {
        println!(
            "  `lifeboat verify file-name={}` checks it; `lifeboat host-restore file-name={}` stages it into a store.",
            s.target, s.target
        );
    } else {
        println!(
            "  `lifeboat list --backup-device {}` shows it; the recovery image finds it on that disk.",
            s.target
        );
    }
}
