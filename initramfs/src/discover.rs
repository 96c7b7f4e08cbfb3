//! Discovery: every disk and partition, the boot medium (never a target), Lifeboat stores and
//! XenServer backup partitions (`.xen-backup-partition` + `etc/xensource-inventory`), and for
//! each backup the partition it would overwrite.

use crate::cmdline::Options;
use crate::console::log_only;
use crate::mounts;
use crate::probe::{self, BlockDev};
use crate::store_view;
use lifeboat_core::archive::Manifest;
use lifeboat_core::identity::devices;
use lifeboat_core::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// GPT type of an EFI system partition.
pub const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

#[derive(Debug, Clone)]
pub enum BackupKind {
    /// A generation of a Lifeboat store.
    Lifeboat {
        generation: String,
        archive: PathBuf,
        manifest: Box<Manifest>,
    },
    /// An unpacked XenServer backup partition (what `xe host-restore` leaves).
    XenTree { inventory: BTreeMap<String, String> },
}

/// The partitions a restore overwrites.
#[derive(Debug, Clone)]
pub struct Target {
    pub root: BlockDev,
    pub esp: Option<BlockDev>,
    /// How the root was found ("PARTUUID ...", "label ...", "lifeboat.target").
    pub how: String,
}

#[derive(Debug, Clone)]
pub struct Backup {
    pub kind: BackupKind,
    /// The partition that holds the backup.
    pub device: BlockDev,
    /// Where it is mounted (read-only).
    pub mount: PathBuf,
    pub host: String,
    pub time: String,
    pub product_version: String,
    pub size: u64,
    pub target: Result<Target, String>,
    /// The store's journal shows a restore that started and never finished.
    pub interrupted: bool,
}

impl Backup {
    pub fn generation(&self) -> Option<&str> {
        match &self.kind {
            BackupKind::Lifeboat { generation, .. } => Some(generation),
            BackupKind::XenTree { .. } => None,
        }
    }
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            BackupKind::Lifeboat { .. } => "Lifeboat",
            BackupKind::XenTree { .. } => "XenServer backup partition",
        }
    }
}

pub struct Discovery {
    pub devices: Vec<BlockDev>,
    /// Disks holding the medium this image booted from.
    pub boot_disks: BTreeSet<String>,
    pub backups: Vec<Backup>,
    pub notes: Vec<String>,
}

/// The label the root of a XenServer tree is mounted by: `LABEL=...` for `/` in its fstab.
pub fn fstab_root_label(fstab: &str) -> Option<String> {
    fstab.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let src = w.next()?;
        (w.next()? == "/" && !src.starts_with('#'))
            .then(|| src.strip_prefix("LABEL=").map(str::to_string))
            .flatten()
    })
}

/// Parses a shell-style KEY='value' file (the XenServer inventory).
pub fn parse_inventory(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            (!k.is_empty() && !k.starts_with('#')).then(|| (k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn used_bytes(dir: &Path) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| (s.blocks() - s.blocks_free()) * s.fragment_size())
        .unwrap_or(0)
}

fn mtime_string(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| lifeboat_core::clock::UtcTime::from_unix(m.mtime()).rfc3339())
        .unwrap_or_else(|_| "unknown time".into())
}

/// Finds the disks this image was booted from: iso9660 media (CD or a hybrid ISO on USB).
fn boot_disks(devs: &[BlockDev]) -> BTreeSet<String> {
    devs.iter()
        .filter(|d| d.fstype() == "iso9660" || d.name.starts_with("sr"))
        .map(|d| d.disk.clone())
        .collect()
}

/// Resolves `lifeboat.target=DEV` (a partition, or a disk to search): a kernel name, a node,
/// `PARTUUID=`/`LABEL=`/..., or a by-id name, as the agent resolves devices. Refused when the
/// name fits several devices.
fn named_device<'a>(devs: &'a [BlockDev], name: &str) -> Option<&'a BlockDev> {
    match devices::find(devs, name).as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The partition a Lifeboat generation would overwrite.
fn lifeboat_target(
    m: &Manifest,
    backup_dev: &BlockDev,
    devs: &[BlockDev],
    boot: &BTreeSet<String>,
    opts: &Options,
) -> Result<Target, String> {
    let mut search_disk = backup_dev.disk.clone();
    if let Some(t) = &opts.target {
        let d = named_device(devs, t).ok_or_else(|| {
            format!("lifeboat.target={t}: no such disk or partition here (check the name with the rescue shell or the Details screen)")
        })?;
        if boot.contains(&d.disk) {
            return Err(format!(
                "lifeboat.target={t} is on the medium this image booted from; refusing"
            ));
        }
        if d.is_partition() {
            return Ok(Target {
                root: d.clone(),
                esp: esp_for(m, &d.disk, devs),
                how: "lifeboat.target".into(),
            });
        }
        search_disk = d.disk.clone();
    }
    let on_disk: Vec<&BlockDev> = devs
        .iter()
        .filter(|d| d.disk == search_disk && d.is_partition() && d.name != backup_dev.name)
        .collect();
    let src = &m.source;
    let by_partuuid = src.partition.partuuid.as_deref().and_then(|pu| {
        on_disk.iter().find(|d| {
            d.partuuid
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(pu))
        })
    });
    let found = match by_partuuid {
        Some(d) => Some((
            *d,
            format!("PARTUUID {}", d.partuuid.as_deref().unwrap_or("")),
        )),
        None => src
            .filesystem
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
            .and_then(|l| {
                on_disk
                    .iter()
                    .find(|d| d.label() == Some(l))
                    .map(|d| (*d, format!("label {l}")))
            }),
    };
    let (root, how) = found.ok_or_else(|| {
        format!(
            "the root partition of this backup (PARTUUID {}, label {}) is not on disk {search_disk}; \
             name it with lifeboat.target=DEV",
            src.partition.partuuid.as_deref().unwrap_or("unknown"),
            src.filesystem.label.as_deref().unwrap_or("none"),
        )
    })?;
    if boot.contains(&root.disk) {
        return Err(format!(
            "{} is on the boot medium; refusing",
            root.dev_path()
        ));
    }
    Ok(Target {
        root: root.clone(),
        esp: esp_for(m, &root.disk, devs),
        how,
    })
}

/// The ESP recorded in the manifest, on `disk` (PARTUUID, then the ESP type with its label).
fn esp_for(m: &Manifest, disk: &str, devs: &[BlockDev]) -> Option<BlockDev> {
    let fs = m.source.esp.as_ref()?;
    let on_disk = devs.iter().filter(|d| d.disk == disk && d.is_partition());
    let pu = m
        .source
        .esp_partition
        .as_ref()
        .and_then(|p| p.partuuid.clone());
    let mut cands: Vec<&BlockDev> = on_disk.collect();
    if let Some(pu) = pu {
        if let Some(d) = cands
            .iter()
            .find(|d| d.partuuid.as_deref() == Some(pu.as_str()))
        {
            return Some((*d).clone());
        }
    }
    cands.retain(|d| d.type_guid.as_deref() == Some(ESP_TYPE) || d.fstype() == "vfat");
    cands
        .iter()
        .find(|d| fs.label.is_some() && d.label() == fs.label.as_deref())
        .or_else(|| cands.first())
        .map(|d| (*d).clone())
}

/// The partition a XenServer backup partition restores to: the `root-*` labelled partition on
/// the backup's disk (the installer's rule), else one an interrupted restore left labelled
/// `lifeboat-partial`, or `lifeboat.target`.
fn xen_target(
    backup_dev: &BlockDev,
    devs: &[BlockDev],
    boot: &BTreeSet<String>,
    opts: &Options,
    has_efi: bool,
) -> Result<Target, String> {
    let esp_on = |disk: &str| {
        if !has_efi {
            return None;
        }
        devs.iter()
            .find(|d| {
                d.disk == disk && d.is_partition() && d.type_guid.as_deref() == Some(ESP_TYPE)
            })
            .cloned()
    };
    if let Some(t) = &opts.target {
        let d = named_device(devs, t)
            .ok_or_else(|| format!("lifeboat.target={t}: no such partition here"))?;
        if boot.contains(&d.disk) || !d.is_partition() {
            return Err(format!(
                "lifeboat.target={t} must be a partition that is not on the boot medium"
            ));
        }
        return Ok(Target {
            root: d.clone(),
            esp: esp_on(&d.disk),
            how: "lifeboat.target".into(),
        });
    }
    let on_disk = |want: &dyn Fn(&str) -> bool| {
        devs.iter().find(|d| {
            d.disk == backup_dev.disk
                && d.is_partition()
                && d.name != backup_dev.name
                && d.label().is_some_and(want)
        })
    };
    // A restore cut short leaves the root labelled lifeboat-partial: it is still the target.
    let root = on_disk(&|l| l.starts_with("root-"))
        .or_else(|| on_disk(&|l| l == crate::mkfs::PARTIAL_LABEL))
        .ok_or_else(|| {
            format!(
                "no partition labelled root-* on disk {}; name the target with lifeboat.target=DEV",
                backup_dev.disk
            )
        })?;
    Ok(Target {
        root: root.clone(),
        esp: esp_on(&root.disk),
        how: format!("label {}", root.label().unwrap_or("")),
    })
}

pub fn discover(opts: &Options) -> Discovery {
    let devs = probe::scan();
    let boot = boot_disks(&devs);
    let mut backups = Vec::new();
    let mut notes = Vec::new();
    let has_parts: BTreeSet<String> = devs
        .iter()
        .filter(|d| d.is_partition())
        .map(|d| d.disk.clone())
        .collect();
    for d in &devs {
        if !d.fstype().starts_with("ext") || boot.contains(&d.disk) {
            continue;
        }
        if !d.is_partition() && has_parts.contains(&d.name) {
            continue;
        }
        let dir = mounts::mount_dir(&d.name);
        let already = mounts::mounted_at(&d.dev_path()).into_iter().next();
        let dir = match already {
            Some(existing) => existing,
            None => {
                if let Err(e) = mounts::mount_probe(&d.dev_path(), &dir, d.fstype()) {
                    notes.push(format!("{e:#}"));
                    continue;
                }
                // A Lifeboat store is ours (the restore writes its journal): it is mounted
                // with its ext journal loaded, so that a journal record written just before a
                // power cut is read, not an older state.
                if Store::is_store(&dir) {
                    let again = mounts::unmount(&dir)
                        .and_then(|()| mounts::mount_fs(&d.dev_path(), &dir, d.fstype(), true));
                    if let Err(e) = again {
                        notes.push(format!("{e:#}"));
                        continue;
                    }
                }
                dir
            }
        };
        let mut keep = false;
        if dir.join(".xen-backup-partition").exists()
            && dir.join("etc/xensource-inventory").exists()
        {
            let inv = parse_inventory(
                &std::fs::read_to_string(dir.join("etc/xensource-inventory")).unwrap_or_default(),
            );
            let version = match (inv.get("PRODUCT_VERSION"), inv.get("BUILD_NUMBER")) {
                (Some(v), Some(b)) => format!("{v} (build {b})"),
                (Some(v), None) => v.clone(),
                _ => inv
                    .get("PLATFORM_VERSION")
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
            };
            let host = std::fs::read_to_string(dir.join("etc/hostname"))
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .or_else(|| inv.get("INSTALLATION_UUID").cloned())
                .unwrap_or_else(|| "unknown host".into());
            let has_efi = dir.join("boot/efi/EFI").is_dir();
            backups.push(Backup {
                kind: BackupKind::XenTree { inventory: inv },
                device: d.clone(),
                mount: dir.clone(),
                host,
                time: mtime_string(&dir.join(".xen-backup-partition")),
                product_version: version,
                size: used_bytes(&dir),
                target: xen_target(d, &devs, &boot, opts, has_efi),
                interrupted: false,
            });
            keep = true;
        } else {
            match store_view::list(&dir) {
                Ok(Some(store)) => {
                    keep = true;
                    for g in store.generations {
                        let m = g.manifest;
                        let version = m
                            .inventory
                            .get("PRODUCT_VERSION")
                            .cloned()
                            .unwrap_or_else(|| "-".into());
                        backups.push(Backup {
                            target: lifeboat_target(&m, d, &devs, &boot, opts),
                            kind: BackupKind::Lifeboat {
                                generation: g.id,
                                archive: g.archive,
                                manifest: Box::new(m.clone()),
                            },
                            device: d.clone(),
                            mount: dir.clone(),
                            host: m.hostname.clone(),
                            time: m.created.clone(),
                            product_version: version,
                            size: g.size,
                            interrupted: store.interrupted,
                        });
                    }
                }
                Ok(None) => {}
                Err(e) => notes.push(format!("{}: {e:#}", d.dev_path())),
            }
        }
        if !keep {
            log_only(&format!("discovery: {} holds no backup", d.dev_path()));
            let _ = mounts::unmount(&dir);
        }
    }
    // Newest first (RFC 3339 times sort as text).
    backups.sort_by(|a, b| b.time.cmp(&a.time));
    Discovery {
        devices: devs,
        boot_disks: boot,
        backups,
        notes,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_label_of_a_xenserver_tree() {
        let fstab = "# comment\nLABEL=logs-abc /var/log ext4 defaults 0 2\nLABEL=root-abc / ext3 errors=remount-ro 0 1\n";
        assert_eq!(super::fstab_root_label(fstab).as_deref(), Some("root-abc"));
        assert_eq!(
            super::fstab_root_label("UUID=1234 / ext4 defaults 0 1\n"),
            None
        );
    }
}
