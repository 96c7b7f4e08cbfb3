//! What a plan is computed from: the backup (its manifest, or the system files of a XenServer
//! tree or plain `xe host-backup` generation), the devices found with what discovery knows of
//! them, and what the user asked for. Plain data: the recovery image and the agent fill it in,
//! [`super::plan`] only reads it.

use crate::archive::manifest::Manifest;
use crate::identity::devices::{self, BlockDev};
use serde::{Deserialize, Serialize};

/// What kind of backup is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// A Lifeboat generation (with a manifest).
    Lifeboat,
    /// A generation staged from a plain tar (`xe host-backup`): no manifest.
    PlainTar,
    /// An unpacked XenServer backup partition.
    XenServerTree,
}

impl BackupKind {
    pub fn name(self) -> &'static str {
        match self {
            BackupKind::Lifeboat => "lifeboat",
            BackupKind::PlainTar => "plain-tar",
            BackupKind::XenServerTree => "xenserver-tree",
        }
    }
}

/// The backup's own `etc/fstab`, `boot/grub/grub.cfg` and `etc/xensource-inventory` (None:
/// the backup has no such file). For backups without a recorded identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemFiles {
    pub fstab: Option<String>,
    pub grub_cfg: Option<String>,
    pub inventory: Option<String>,
}

impl SystemFiles {
    /// The files of a backup, each read by `read` (an archive path, no leading `./`): grub.cfg
    /// from `boot/grub`, else from the ESP where XenServer's UEFI installs keep it.
    pub fn read(read: impl Fn(&str) -> Option<String>) -> Self {
        SystemFiles {
            fstab: read(FSTAB),
            grub_cfg: read(GRUB_CFG).or_else(|| read(GRUB_CFG_EFI)),
            inventory: read(INVENTORY),
        }
    }

    /// The archive paths [`SystemFiles::read`] asks for (to collect them while verifying).
    pub const PATHS: [&'static str; 4] = [FSTAB, GRUB_CFG, GRUB_CFG_EFI, INVENTORY];
}

/// The paths of [`SystemFiles`] inside a backup (archive paths, no leading `./`).
pub const FSTAB: &str = "etc/fstab";
pub const GRUB_CFG: &str = "boot/grub/grub.cfg";
/// Where XenServer's UEFI installs keep grub.cfg.
pub const GRUB_CFG_EFI: &str = "boot/efi/EFI/xenserver/grub.cfg";
pub const INVENTORY: &str = "etc/xensource-inventory";

/// The backup being restored.
#[derive(Debug, Clone)]
pub struct BackupFacts {
    pub kind: BackupKind,
    /// The generation id (None for a XenServer tree).
    pub generation: Option<String>,
    pub host: String,
    /// When it was taken (RFC 3339).
    pub created: String,
    pub product_version: Option<String>,
    /// Kernel name of the partition that holds it (never written).
    pub device: String,
    /// The manifest (Lifeboat generations).
    pub manifest: Option<Manifest>,
    /// The backup's system files, read when it records no identity (see
    /// [`super::identity_from_system_files`]).
    pub system_files: Option<SystemFiles>,
    /// Logical bytes of file content, and entries (files, directories, ...): what a target
    /// must hold at least, when the manifest records no filesystem size and inode count.
    pub content_bytes: u64,
    pub entries: u64,
}

/// What a device holds that a restore must never overwrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holds {
    LifeboatStore,
    XenServerBackup,
}

/// One disk or partition, with what discovery knows about it.
#[derive(Debug, Clone, Default)]
pub struct DeviceFacts {
    pub dev: BlockDev,
    /// Where it is mounted now (empty: not mounted). Active swap counts as "[swap]".
    pub mounts: Vec<String>,
    /// A Lifeboat store or XenServer backup on it.
    pub holds: Option<Holds>,
    /// The array UUID when it is a member (leg) of an md array.
    pub md_array: Option<String>,
    /// It is (on) the medium this system booted from (the recovery image's CD or USB stick).
    pub boot_medium: bool,
    /// A disk with no partition table and no signature (never true for a partition).
    pub blank: bool,
}

impl DeviceFacts {
    /// Facts with nothing known beyond the device itself.
    pub fn new(dev: BlockDev) -> Self {
        DeviceFacts {
            dev,
            ..Default::default()
        }
    }
    pub fn name(&self) -> &str {
        &self.dev.name
    }
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TargetRequest {
    /// Find the recorded root partition (mode (a)).
    #[default]
    Automatic,
    /// `lifeboat.target=` / `--target`: a partition by any name [`devices::find`] takes
    /// (PARTUUID=, LABEL=, by-id, kernel name), or a serial (the disk to search).
    Partition(String),
    /// `lifeboat.disk=` / `--target-disk`: a blank disk by serial, WWN, by-id or kernel name
    /// (mode (b)).
    Disk(String),
}

impl TargetRequest {
    /// How the user spelt it, for messages.
    pub fn spelt(&self) -> String {
        match self {
            TargetRequest::Automatic => "automatic".into(),
            TargetRequest::Partition(s) => format!("target {s}"),
            TargetRequest::Disk(s) => format!("target disk {s}"),
        }
    }
}

/// The devices a name denotes: what [`devices::find`] finds, else disks whose serial or WWN
/// equals it (a bare serial such as `S3Z8NB0K123456` or `0x5000c500a1b2c3d4`).
pub fn find_named<'a>(devs: &'a [DeviceFacts], spec: &str) -> Vec<&'a DeviceFacts> {
    let list: Vec<BlockDev> = devs.iter().map(|d| d.dev.clone()).collect();
    let found: Vec<String> = devices::find(&list, spec)
        .into_iter()
        .map(|d| d.name.clone())
        .collect();
    if !found.is_empty() {
        return devs
            .iter()
            .filter(|d| found.contains(&d.dev.name))
            .collect();
    }
    let eq = |a: Option<&str>| {
        a.is_some_and(|a| {
            let a = a.trim();
            a.eq_ignore_ascii_case(spec)
                || a.strip_prefix("0x")
                    .is_some_and(|r| r.eq_ignore_ascii_case(spec))
                || spec
                    .strip_prefix("0x")
                    .is_some_and(|r| r.eq_ignore_ascii_case(a))
        })
    };
    devs.iter()
        .filter(|d| {
            !d.dev.is_partition() && (eq(d.dev.serial.as_deref()) || eq(d.dev.wwn.as_deref()))
        })
        .collect()
}

/// The disks holding the medium a system booted from, as the recovery image sees them: iso9660
/// media (a CD, or a hybrid ISO on a USB stick).
pub fn boot_disks(devs: &[BlockDev]) -> Vec<String> {
    let mut out: Vec<String> = devs
        .iter()
        .filter(|d| d.fstype() == "iso9660" || d.name.starts_with("sr"))
        .map(|d| d.disk.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Facts for every device of a scan, as far as the list itself tells: the boot medium
/// ([`boot_disks`]) and the disks that look blank ([`looks_blank`]). The caller adds mounts,
/// stores and XenServer backups, md membership ([`super::md::probe_md`]), and clears `blank`
/// for a disk that has a partition table after all.
pub fn from_scan(devs: &[BlockDev]) -> Vec<DeviceFacts> {
    let boot = boot_disks(devs);
    devs.iter()
        .map(|d| DeviceFacts {
            boot_medium: boot.contains(&d.disk),
            blank: !d.is_partition() && looks_blank(devs, &d.name),
            ..DeviceFacts::new(d.clone())
        })
        .collect()
}

/// [`from_scan`], then what reading each device adds (the one way the recovery image and
/// `lifeboat plan` start their facts): md membership from the device's own superblock
/// ([`super::md::probe_md`]; a member is never blank), and a disk that carries a partition
/// table, even one listing no partition, is not blank. The caller adds mounts, stores and
/// XenServer backups.
pub fn from_devices(devs: &[BlockDev]) -> Vec<DeviceFacts> {
    let mut facts = from_scan(devs);
    for f in &mut facts {
        let path = std::path::PathBuf::from(f.dev.dev_path());
        f.md_array = super::md::probe_md(&path);
        if f.blank {
            f.blank = f.md_array.is_none()
                && matches!(crate::identity::read_partition_table(&path), Ok(None));
        }
    }
    facts
}

/// True for a disk of `devs` with no partitions in the list and no signature on it. (The
/// caller also checks that it has no partition table at all, which an empty GPT would not
/// show here.)
pub fn looks_blank(devs: &[BlockDev], disk: &str) -> bool {
    devs.iter()
        .any(|d| d.name == disk && !d.is_partition() && d.fs.is_none())
        && !devs.iter().any(|d| d.disk == disk && d.is_partition())
}

/// A `/dev/disk/by-id/` name for a disk, built as udev builds the WWN one (`wwn-0x...`) or
/// from the model and serial; None when the disk reports neither.
pub fn by_id_name(d: &BlockDev) -> Option<String> {
    if let Some(w) = d.wwn.as_deref().filter(|w| !w.trim().is_empty()) {
        let w = w.trim();
        let w = w.strip_prefix("naa.").unwrap_or(w);
        let w = if w.starts_with("0x") || w.contains('.') {
            w.to_string()
        } else {
            format!("0x{w}")
        };
        return Some(format!("/dev/disk/by-id/wwn-{w}"));
    }
    let serial = d.serial.as_deref()?.trim().replace(' ', "_");
    if serial.is_empty() {
        return None;
    }
    let model = d
        .model
        .as_deref()
        .map(|m| m.trim().replace(' ', "_"))
        .filter(|m| !m.is_empty());
    Some(match model {
        Some(m) => format!("/dev/disk/by-id/{m}_{serial}"),
        None => format!("/dev/disk/by-id/{serial}"),
    })
}
