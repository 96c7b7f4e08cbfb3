//! One list of the block devices, disks and partitions flattened, each with what names it
//! (kernel name, PARTUUID, partition name and type, filesystem type, UUID and label, the disk's
//! serial and WWN), and one way to find a device by any of those names. The agent resolves
//! `--backup-device` and the inventory's `BACKUP_PARTITION` with it, the recovery image builds
//! its menu and finds `lifeboat.target=` and a backup's target partition with it: the same
//! answer on both sides.

use super::blockdev::{self, by_id_matches};
use super::table::read_partition_table;
use super::IdentityError;
use std::path::Path;

/// A filesystem signature: type ("ext2", "ext3", "ext4", "vfat", "iso9660", ...), UUID, label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsInfo {
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

/// A disk or a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockDev {
    /// Kernel name, e.g. "vda2".
    pub name: String,
    /// The whole disk's kernel name (itself for a disk).
    pub disk: String,
    pub partno: Option<u32>,
    pub size: u64,
    pub removable: bool,
    pub model: Option<String>,
    /// The disk's serial and WWN (for a partition: its disk's).
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub partuuid: Option<String>,
    /// The partition's name in a GPT (PARTLABEL).
    pub partlabel: Option<String>,
    pub type_guid: Option<String>,
    pub fs: Option<FsInfo>,
}

impl BlockDev {
    pub fn dev_path(&self) -> String {
        blockdev::dev_path(&self.name)
            .to_string_lossy()
            .into_owned()
    }
    pub fn is_partition(&self) -> bool {
        self.partno.is_some()
    }
    pub fn fstype(&self) -> &str {
        self.fs.as_ref().map(|f| f.fstype.as_str()).unwrap_or("")
    }
    pub fn label(&self) -> Option<&str> {
        self.fs.as_ref().and_then(|f| f.label.as_deref())
    }
    pub fn fs_uuid(&self) -> Option<&str> {
        self.fs.as_ref().and_then(|f| f.uuid.as_deref())
    }
}

/// The filesystem on a device, as core's probe reads it.
pub fn probe_fs(path: &Path) -> Option<FsInfo> {
    let id = super::fs::probe(path).ok()??;
    Some(FsInfo {
        fstype: id.fstype,
        uuid: id.uuid,
        label: id.label,
    })
}

/// Every disk whose kernel name `keep` accepts, each followed by its partitions (empty
/// partitions left out), with the partition table's and the filesystems' identities.
pub fn scan(keep: impl Fn(&str) -> bool) -> Result<Vec<BlockDev>, IdentityError> {
    let mut devs = Vec::new();
    for disk in blockdev::list_disks()?
        .into_iter()
        .filter(|d| keep(&d.name))
    {
        let table = read_partition_table(&disk.dev_path).ok().flatten();
        devs.push(BlockDev {
            name: disk.name.clone(),
            disk: disk.name.clone(),
            partno: None,
            size: disk.size_bytes,
            removable: disk.removable,
            model: disk.model.clone(),
            serial: disk.serial.clone(),
            wwn: disk.wwn.clone(),
            fs: probe_fs(&disk.dev_path),
            ..Default::default()
        });
        for part in disk.partitions.iter().filter(|p| p.size_bytes > 0) {
            let entry = table.as_ref().and_then(|t| t.entry(part.number));
            devs.push(BlockDev {
                name: part.name.clone(),
                disk: disk.name.clone(),
                partno: Some(part.number),
                size: part.size_bytes,
                removable: disk.removable,
                model: disk.model.clone(),
                serial: disk.serial.clone(),
                wwn: disk.wwn.clone(),
                partuuid: entry.map(|e| e.partuuid.clone()),
                partlabel: entry.and_then(|e| e.name.clone()),
                type_guid: entry.map(|e| e.type_id.clone()),
                fs: probe_fs(&part.dev_path),
            });
        }
    }
    Ok(devs)
}

/// True when `spec` is a tag (`PARTUUID=`, `PARTLABEL=`, `UUID=`, `LABEL=`) that [`find`]
/// understands.
pub fn is_tag(spec: &str) -> bool {
    spec.split_once('=')
        .is_some_and(|(k, _)| matches!(k, "PARTUUID" | "PARTLABEL" | "UUID" | "LABEL"))
}

/// The devices of `devs` that `spec` names, in list order: a kernel name (`vda2`), its node
/// (`/dev/vda2`), a tag (`PARTUUID=`, `PARTLABEL=`, `UUID=`, `LABEL=`; UUIDs in any case), or
/// a `/dev/disk/by-id/` name matched against the disks' serials and WWNs (with `-partN`).
pub fn find<'a>(devs: &'a [BlockDev], spec: &str) -> Vec<&'a BlockDev> {
    let eq_ci = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    if let Some((key, value)) = spec.split_once('=').filter(|_| is_tag(spec)) {
        let value = value.trim_matches('"');
        return devs
            .iter()
            .filter(|d| match key {
                "PARTUUID" => d.is_partition() && eq_ci(d.partuuid.as_deref(), value),
                "PARTLABEL" => d.is_partition() && d.partlabel.as_deref() == Some(value),
                "UUID" => eq_ci(d.fs_uuid(), value),
                _ => d.label() == Some(value),
            })
            .collect();
    }
    if let Some(id) = spec.strip_prefix("/dev/disk/by-id/") {
        let (base, part) = match id.rsplit_once("-part") {
            Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
                (b, n.parse::<u32>().ok())
            }
            _ => (id, None),
        };
        let disks: Vec<&BlockDev> = devs
            .iter()
            .filter(|d| {
                !d.is_partition() && by_id_matches(base, d.serial.as_deref(), d.wwn.as_deref())
            })
            .collect();
        // Two disks answering to one id: no guess.
        let [disk] = disks.as_slice() else {
            return Vec::new();
        };
        return devs
            .iter()
            .filter(|d| d.disk == disk.name && d.partno == part)
            .collect();
    }
    let name = spec.strip_prefix("/dev/").unwrap_or(spec).replace('/', "!");
    devs.iter().filter(|d| d.name == name).collect()
}
