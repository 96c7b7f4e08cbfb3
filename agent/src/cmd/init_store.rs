//! `lifeboat init-store`: puts a Lifeboat store (ext4, label `lifeboat`) on the backup
//! partition, refusing anything that would destroy data unless `--force`.

use crate::cli::InitStoreArgs;
use anyhow::{bail, Context};
use lifeboat_core::identity::{self, read_partition_table};
use lifeboat_core::progress::human_bytes;
use lifeboat_core::store::{self, Store};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: InitStoreArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let InitStoreArgs {
        backup_device,
        force,
    } = args;
    let spec = backup_device.to_string_lossy().into_owned();
    let dev = identity::resolve_device(&spec)
        .with_context(|| format!("cannot find the backup device {spec}"))?;
    let shown = if dev == backup_device {
        dev.display().to_string()
    } else {
        format!("{spec} ({})", dev.display())
    };
    if let Some(why) = store::mount::in_use(&dev)? {
        bail!("refusing to format {shown}: {why}. Stop using it first (umount, swapoff, ...), then run init-store again.");
    }
    // A whole disk (a USB disk used whole): none of its partitions may be in use either,
    // --force or not.
    let partitions = partitions_of(&dev);
    for part in &partitions {
        if let Some(why) = store::mount::in_use(part)? {
            bail!(
                "refusing to format {shown}: it is a whole disk and its partition {} is in use ({why}). \
                 Is this the right disk (`lsblk -f`)? Stop using it first, or name a free partition.",
                part.display()
            );
        }
    }
    if let Some(reason) = what_it_holds(&dev)? {
        if !force {
            bail!(
                "refusing to format {shown}: {reason}.\n\
                 Check that this is the right partition (`lsblk -f`, `lifeboat list --backup-device {spec}`). \
                 To erase it and create a Lifeboat store anyway, run again with --force."
            );
        }
        if !quiet {
            eprintln!("lifeboat: warning: --force: erasing {shown}, which {reason}");
        }
    }
    let status = std::process::Command::new("mkfs.ext4")
        .args(["-F", "-q", "-L", "lifeboat", "-m", "0"])
        .arg(&dev)
        .status()
        .context("cannot run mkfs.ext4 (is e2fsprogs installed?)")?;
    if !status.success() {
        bail!("mkfs.ext4 failed on {shown} ({status}); nothing else was changed");
    }
    // mkfs wiped the old partition table of a whole disk; the kernel still shows its
    // partitions until it reads the table again.
    if !partitions.is_empty() {
        if let Err(e) = reread_partitions(&dev) {
            if !quiet {
                eprintln!(
                    "lifeboat: warning: the kernel still lists the old partitions of {shown} \
                     ({e}); they are gone from the disk: unplug and plug it in, or run \
                     `blockdev --rereadpt {}`",
                    dev.display()
                );
            }
        }
    }
    let mounted = store::mount_device(&dev, false)?;
    let st = Store::create(mounted.dir())
        .with_context(|| format!("cannot create the store layout on {shown}"))?;
    let space = st.space()?;
    drop(st);
    drop(mounted);
    if !quiet {
        println!(
            "Created a Lifeboat store on {shown}: ext4, label 'lifeboat', {} free.\n\
             Next: lifeboat backup --backup-device {spec}",
            human_bytes(space.available)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The partition nodes the kernel lists for a whole disk (none for a partition).
fn partitions_of(dev: &Path) -> Vec<std::path::PathBuf> {
    let Ok(name) = identity::blockdev::name_of_device(dev) else {
        return Vec::new();
    };
    if identity::blockdev::parent_disk(&name).is_some() {
        return Vec::new();
    }
    identity::blockdev::disk(&name)
        .map(|d| d.partitions.into_iter().map(|p| p.dev_path).collect())
        .unwrap_or_default()
}

/// Asks the kernel to read a disk's partition table again (core's BLKRRPART).
fn reread_partitions(dev: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(dev).with_context(|| format!("cannot open {}", dev.display()))?;
    lifeboat_core::sys::reread_partitions(std::os::fd::AsFd::as_fd(&f)).with_context(|| {
        format!(
            "the kernel did not re-read the partition table of {}",
            dev.display()
        )
    })
}

/// What the device holds that formatting would destroy, in words; None when it is blank.
fn what_it_holds(dev: &Path) -> anyhow::Result<Option<String>> {
    if let Ok(Some(table)) = read_partition_table(dev) {
        if !table.partitions.is_empty() {
            return Ok(Some(format!(
                "it is a whole disk with a {} partition table ({} partitions); name one of its partitions",
                table.kind.name(),
                table.partitions.len()
            )));
        }
    }
    let Some(fs) = identity::probe(dev)? else {
        return Ok(None);
    };
    let label = fs
        .label
        .as_ref()
        .map(|l| format!(" labelled '{l}'"))
        .unwrap_or_default();
    if !fs.fstype.starts_with("ext") {
        return Ok(Some(format!("it holds a {} filesystem{label}", fs.fstype)));
    }
    let mounted = match store::mount_device(dev, true) {
        Ok(m) => m,
        Err(_) => {
            return Ok(Some(format!(
                "it holds an {} filesystem{label} (which could not be mounted to look inside)",
                fs.fstype
            )))
        }
    };
    let root = mounted.dir();
    if let Some(x) = store::xentree::detect(root) {
        return Ok(Some(format!(
            "it holds a XenServer backup (.xen-backup-partition) of product version {}, taken {}; \
             `lifeboat list` shows it and the recovery image can restore it",
            x.product_version.as_deref().unwrap_or("unknown"),
            x.created.as_deref().unwrap_or("at an unknown time")
        )));
    }
    if Store::is_store(root) {
        let n = Store::open_read_only(root)
            .and_then(|s| s.generations())
            .map(|g| g.len())
            .unwrap_or(0);
        return Ok(Some(format!(
            "it already holds a Lifeboat store with {n} generation(s); nothing needs to be done"
        )));
    }
    let mut names: Vec<String> = std::fs::read_dir(root)
        .with_context(|| format!("cannot read {}", root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lost+found")
        .collect();
    names.sort();
    if names.is_empty() {
        return Ok(Some(format!(
            "it holds an empty {} filesystem{label}",
            fs.fstype
        )));
    }
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    Ok(Some(format!(
        "it holds an {} filesystem{label} with data ({} entries at its top: {}{})",
        fs.fstype,
        names.len(),
        shown.join(", "),
        if names.len() > 5 { ", ..." } else { "" }
    )))
}
