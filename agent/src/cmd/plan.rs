//! `lifeboat plan [GEN|latest] [--target DEV | --target-disk DEV] [--json]`: a dry run of a
//! restore on a running system. Reads the store and the generation's manifest, scans the
//! devices with core's `devices::scan`, learns what each holds (mounts, Lifeboat stores and
//! XenServer backups, md membership, blank disks), and prints core's plan or its refusal.
//! Nothing is written. Exit 0: a plan; 2: refused (or the backup cannot be read).

use super::common::mount_read_only;
use crate::cli::PlanArgs;
use anyhow::{bail, Context, Result};
use lifeboat_core::archive::verify::{verify_tar_collecting, SmallFiles};
use lifeboat_core::codec;
use lifeboat_core::identity::{self, devices, machine};
use lifeboat_core::plan::facts;
use lifeboat_core::plan::{
    self, BackupFacts, BackupKind, DeviceFacts, Holds, SystemFiles, TargetRequest,
};
use lifeboat_core::store::{self, xentree, Store};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(args: PlanArgs, _quiet: bool) -> Result<ExitCode> {
    let request = match (&args.target, &args.target_disk) {
        (Some(_), Some(_)) => {
            bail!("give either --target (a partition) or --target-disk (a blank disk), not both")
        }
        (Some(t), None) => TargetRequest::Partition(node_name(t)),
        (None, Some(d)) => TargetRequest::Disk(node_name(d)),
        (None, None) => TargetRequest::Automatic,
    };
    let (dev, mounted) = mount_read_only(args.device.backup_device.as_deref())?;
    let backup_name = identity::blockdev::name_of_device(&dev.path)
        .with_context(|| format!("cannot identify the backup device {}", dev.path.display()))?;
    let backup = backup_facts(mounted.dir(), &backup_name, args.generation.as_deref())
        .with_context(|| format!("cannot read the backup on {}", dev.path.display()))?;
    let devs = device_facts(&backup_name, mounted.dir(), &backup, &request)?;
    let result = plan::plan(&backup, &devs, &request, &machine::machine_identity());
    drop(mounted);
    match result {
        Ok(p) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "ok": true, "plan": p.public_json() })
                    )?
                );
            } else {
                for l in plan::render(&p) {
                    println!("{l}");
                }
                println!("(a dry run: nothing was written)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "ok": false, "refused": e.kind(), "error": e.to_string(),
                    }))?
                );
            }
            eprintln!("lifeboat: refused: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// A device link that exists here (`/dev/disk/by-partuuid/...`, `/dev/disk/by-id/...`) is
/// followed to its node, as udev made it; every other name is left to core's matching.
fn node_name(spec: &str) -> String {
    let path = Path::new(spec);
    if !devices::is_tag(spec) && spec.starts_with("/dev/") && path.is_symlink() {
        if let Ok(real) = std::fs::canonicalize(path) {
            return real.display().to_string();
        }
    }
    spec.to_string()
}

/// The backup: a generation of the store on `root` (`gen`, default `latest` by the one rule),
/// or the XenServer backup tree there.
fn backup_facts(root: &Path, device: &str, gen: Option<&str>) -> Result<BackupFacts> {
    if Store::is_store(root) {
        let st = Store::open_read_only(root)?;
        let g = st.find(gen.unwrap_or("latest"))?;
        let m = g.meta.manifest.clone();
        let kind = if m.is_some() {
            BackupKind::Lifeboat
        } else {
            BackupKind::PlainTar
        };
        let mut b = BackupFacts {
            kind,
            generation: Some(g.id.clone()),
            host: g.meta.host.clone(),
            created: g.meta.created.clone(),
            product_version: g.meta.product_version.clone(),
            device: device.into(),
            manifest: m,
            system_files: None,
            content_bytes: g.meta.bytes,
            entries: g.meta.entries,
        };
        // No recorded identity: the backup's own fstab, grub.cfg and inventory decide it,
        // read (and the archive verified) in one pass.
        if plan::root_identity(&b).is_err() {
            let f = g.open_archive()?;
            let (c, tar) = codec::decoder(f)
                .with_context(|| format!("cannot read the archive of generation {}", g.id))?;
            let mut files = SmallFiles::new(&SystemFiles::PATHS);
            verify_tar_collecting(tar, c, &mut files)
                .with_context(|| format!("generation {} failed verification", g.id))?;
            b.system_files = Some(SystemFiles::read(|p| files.text(p)));
        }
        return Ok(b);
    }
    if gen.is_some_and(|g| g != "latest" && g != "xenserver") {
        bail!(
            "{} holds a XenServer backup partition, not generations",
            root.display()
        );
    }
    let Some(x) = xentree::detect(root) else {
        bail!("it holds neither a Lifeboat store nor a XenServer backup");
    };
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
    Ok(BackupFacts {
        kind: BackupKind::XenServerTree,
        generation: None,
        host: x.host.clone().unwrap_or_default(),
        created: x.created.clone().unwrap_or_default(),
        product_version: x.product_version.clone(),
        device: device.into(),
        manifest: None,
        system_files: Some(SystemFiles::read(read)),
        content_bytes: x.used_bytes,
        entries: 0,
    })
}

/// Every disk and partition with what can be seen of it: mounts and swap, a store or a
/// XenServer backup on it (unmounted ext filesystems are looked into read-only, without
/// journal replay), md membership, the boot medium, blank disks.
fn device_facts(
    backup_name: &str,
    backup_dir: &Path,
    backup: &BackupFacts,
    request: &TargetRequest,
) -> Result<Vec<DeviceFacts>> {
    let devs = devices::scan(|_| true).context("cannot list the disks")?;
    let candidates = candidates(&devs, backup, request);
    let mut out = facts::from_devices(&devs);
    for f in &mut out {
        let d = f.dev.clone();
        let path = PathBuf::from(d.dev_path());
        let mounts = store::mount::mounts_of(&path).unwrap_or_default();
        f.mounts = mounts
            .iter()
            .map(|m| m.mount_point.display().to_string())
            .collect();
        if f.mounts.is_empty() {
            if let Ok(Some(why)) = store::mount::in_use(&path) {
                if why.contains("swap") {
                    f.mounts.push("[swap]".into());
                }
            }
        }
        // An assembled array's leg also shows as a holder in sysfs.
        f.md_array = f.md_array.take().or_else(|| md_holder(&d.name));
        f.holds = if d.name == backup_name {
            holds_at(backup_dir)
        } else if let Some(m) = mounts.iter().find(|m| m.fs_root == "/") {
            holds_at(&m.mount_point)
        } else if d.fstype().starts_with("ext") && candidates.contains(&d.name) {
            peek(&path, d.fstype())
        } else {
            None
        };
        if f.md_array.is_some() {
            f.blank = false;
        }
    }
    Ok(out)
}

/// The devices the plan may choose to write (only those are looked into: mounting every
/// filesystem of the machine would disturb what others are doing with them): the device
/// named and the partitions of the disk named, or the partitions that carry the backup's
/// recorded PARTUUID, UUID or label.
fn candidates(
    devs: &[devices::BlockDev],
    backup: &BackupFacts,
    request: &TargetRequest,
) -> Vec<String> {
    let named = |spec: &str| -> Vec<String> {
        let list: Vec<DeviceFacts> = devs.iter().cloned().map(DeviceFacts::new).collect();
        let found: Vec<String> = facts::find_named(&list, spec)
            .into_iter()
            .map(|d| d.dev.name.clone())
            .collect();
        devs.iter()
            .filter(|d| found.contains(&d.name) || found.contains(&d.disk))
            .map(|d| d.name.clone())
            .collect()
    };
    match request {
        TargetRequest::Partition(s) | TargetRequest::Disk(s) => named(s),
        TargetRequest::Automatic => {
            let pu = backup
                .manifest
                .as_ref()
                .and_then(|m| m.source.partition.partuuid.clone());
            let id = plan::root_identity(backup).ok().map(|i| i.fs);
            devs.iter()
                .filter(|d| {
                    let eq = |a: Option<&str>, b: Option<&str>| {
                        matches!((a, b), (Some(a), Some(b)) if !b.is_empty() && a.eq_ignore_ascii_case(b))
                    };
                    eq(d.partuuid.as_deref(), pu.as_deref())
                        || id.as_ref().is_some_and(|i| {
                            eq(d.fs_uuid(), i.uuid.as_deref()) || eq(d.label(), i.label.as_deref())
                        })
                })
                .map(|d| d.name.clone())
                .collect()
        }
    }
}

/// The md array a device is assembled into (sysfs `holders/md*`).
fn md_holder(name: &str) -> Option<String> {
    let dir = Path::new("/sys/class/block").join(name).join("holders");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("md"))
        .map(|n| format!("/dev/{n}"))
}

fn holds_at(dir: &Path) -> Option<Holds> {
    if Store::is_store(dir) {
        Some(Holds::LifeboatStore)
    } else if xentree::detect(dir).is_some() {
        Some(Holds::XenServerBackup)
    } else {
        None
    }
}

/// Mounts an unmounted ext filesystem read-only without replaying its journal (nothing is
/// written to it), looks for a store or a XenServer backup, and unmounts it.
fn peek(dev: &Path, fstype: &str) -> Option<Holds> {
    let dir = std::env::temp_dir().join(format!("lifeboat-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let flags = MsFlags::MS_RDONLY
        | MsFlags::MS_NOATIME
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NOEXEC;
    let mounted = ["ext4", fstype]
        .iter()
        .any(|t| mount(Some(dev), &dir, Some(*t), flags, Some("noload")).is_ok());
    let holds = if mounted {
        let h = holds_at(&dir);
        if umount2(&dir, MntFlags::empty()).is_err() {
            let _ = umount2(&dir, MntFlags::MNT_DETACH);
        }
        h
    } else {
        None
    };
    let _ = std::fs::remove_dir(&dir);
    holds
}
