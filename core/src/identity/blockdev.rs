//! Disks and partitions from sysfs (`/sys/block`, `/sys/class/block`, `/sys/dev/block`) and
//! the device nodes in `/dev`, without udev (the recovery image has none).

use super::devices;
use super::table::{read_partition_table, PartitionTable};
use super::IdentityError;
use crate::archive::manifest::{DiskIdentity, PartitionIdentity};
use serde::Serialize;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

const SYS_BLOCK: &str = "/sys/block";
const SYS_CLASS_BLOCK: &str = "/sys/class/block";
const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// A whole disk (or a loop, md, dm device) as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// Kernel name, e.g. "sda", "nvme0n1", "loop3".
    pub name: String,
    /// Device node, e.g. /dev/sda.
    pub dev_path: PathBuf,
    pub major: u32,
    pub minor: u32,
    pub size_bytes: u64,
    pub logical_block_size: u32,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// WWN / EUI / NAA id when the disk reports one.
    pub wwn: Option<String>,
    pub removable: bool,
    pub read_only: bool,
    /// Devices stacked on this one (md, dm), from `holders/`.
    pub holders: Vec<String>,
    pub partitions: Vec<Partition>,
}

/// A partition of a [`Disk`], as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub name: String,
    pub dev_path: PathBuf,
    pub major: u32,
    pub minor: u32,
    /// 1-based number on its disk.
    pub number: u32,
    pub start_bytes: u64,
    pub size_bytes: u64,
    pub read_only: bool,
    pub holders: Vec<String>,
}

fn read_attr(path: &Path) -> Option<String> {
    let raw = fs::read(path).ok()?;
    let s = String::from_utf8_lossy(&raw)
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn read_u64(path: &Path) -> Option<u64> {
    read_attr(path)?.parse().ok()
}

fn read_devnum(dir: &Path) -> (u32, u32) {
    read_attr(&dir.join("dev"))
        .and_then(|s| {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((0, 0))
}

fn list_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The device node of a kernel block device name (`cciss!c0d0` -> `/dev/cciss/c0d0`).
pub fn dev_path(name: &str) -> PathBuf {
    PathBuf::from("/dev").join(name.replace('!', "/"))
}

/// Serial number: `device/serial` (NVMe, some SCSI), `serial` (virtio), the SCSI VPD page
/// 0x80, in that order.
fn read_serial(sys: &Path) -> Option<String> {
    if let Some(s) =
        read_attr(&sys.join("device/serial")).or_else(|| read_attr(&sys.join("serial")))
    {
        return Some(s);
    }
    let vpd = fs::read(sys.join("device/vpd_pg80")).ok()?;
    let len = usize::from(*vpd.get(3)?);
    let body = vpd.get(4..4 + len.min(vpd.len().saturating_sub(4)))?;
    let s = String::from_utf8_lossy(body).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn read_wwn(sys: &Path) -> Option<String> {
    read_attr(&sys.join("wwid"))
        .or_else(|| read_attr(&sys.join("device/wwid")))
        .or_else(|| read_attr(&sys.join("device/wwn")))
}

/// Reads one whole disk by kernel name.
pub fn disk(name: &str) -> Result<Disk, IdentityError> {
    let sys = Path::new(SYS_BLOCK).join(name);
    if !sys.exists() {
        return Err(IdentityError::NotFound(format!(
            "no block device '{name}' in {SYS_BLOCK}"
        )));
    }
    let (major, minor) = read_devnum(&sys);
    let mut partitions = Vec::new();
    for child in list_names(&sys) {
        let pdir = sys.join(&child);
        let Some(number) = read_u64(&pdir.join("partition")) else {
            continue;
        };
        let (pmaj, pmin) = read_devnum(&pdir);
        partitions.push(Partition {
            dev_path: dev_path(&child),
            major: pmaj,
            minor: pmin,
            number: number as u32,
            start_bytes: read_u64(&pdir.join("start")).unwrap_or(0) * 512,
            size_bytes: read_u64(&pdir.join("size")).unwrap_or(0) * 512,
            read_only: read_u64(&pdir.join("ro")) == Some(1),
            holders: list_names(&pdir.join("holders")),
            name: child,
        });
    }
    partitions.sort_by_key(|p| p.number);
    Ok(Disk {
        dev_path: dev_path(name),
        major,
        minor,
        size_bytes: read_u64(&sys.join("size")).unwrap_or(0) * 512,
        logical_block_size: read_u64(&sys.join("queue/logical_block_size")).unwrap_or(512) as u32,
        vendor: read_attr(&sys.join("device/vendor")),
        model: read_attr(&sys.join("device/model")),
        serial: read_serial(&sys),
        wwn: read_wwn(&sys),
        removable: read_u64(&sys.join("removable")) == Some(1),
        read_only: read_u64(&sys.join("ro")) == Some(1),
        holders: list_names(&sys.join("holders")),
        partitions,
        name: name.to_string(),
    })
}

/// Every disk with a non-zero size (RAM disks and empty loop devices are left out).
pub fn list_disks() -> Result<Vec<Disk>, IdentityError> {
    let mut out = Vec::new();
    for name in list_names(Path::new(SYS_BLOCK)) {
        if name.starts_with("ram") || name.starts_with("zram") {
            continue;
        }
        let d = disk(&name)?;
        if d.size_bytes > 0 {
            out.push(d);
        }
    }
    Ok(out)
}

/// Kernel name of the block device with this device number (`/sys/dev/block/MAJ:MIN`).
pub fn name_of_devnum(major: u32, minor: u32) -> Option<String> {
    let link = fs::read_link(Path::new(SYS_DEV_BLOCK).join(format!("{major}:{minor}"))).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Kernel name of a block device node or a link to one (e.g. /dev/disk/by-id/...).
pub fn name_of_device(dev: &Path) -> Result<String, IdentityError> {
    let meta = fs::metadata(dev).map_err(|e| IdentityError::io(dev, e))?;
    if !meta.file_type().is_block_device() {
        return Err(IdentityError::NotBlockDevice(dev.to_path_buf()));
    }
    let rdev = meta.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    name_of_devnum(major, minor).ok_or_else(|| {
        IdentityError::NotFound(format!(
            "{} ({major}:{minor}) is not known to the kernel's {SYS_DEV_BLOCK}",
            dev.display()
        ))
    })
}

/// Kernel name of the block device holding the filesystem a directory is on, or None when
/// that filesystem has no block device (tmpfs, overlay, NFS).
pub fn name_of_dir(dir: &Path) -> Result<Option<String>, IdentityError> {
    let meta = fs::metadata(dir).map_err(|e| IdentityError::io(dir, e))?;
    let dev = meta.dev();
    let (major, minor) = (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    );
    if major == 0 {
        return Ok(None);
    }
    Ok(name_of_devnum(major, minor))
}

/// For a partition's kernel name, its disk's name and its number; None for a whole disk.
pub fn parent_disk(name: &str) -> Option<(String, u32)> {
    let sys = Path::new(SYS_CLASS_BLOCK).join(name);
    let number = read_u64(&sys.join("partition"))? as u32;
    let real = fs::canonicalize(&sys).ok()?;
    let parent = real.parent()?.file_name()?.to_string_lossy().into_owned();
    Some((parent, number))
}

/// Resolves how an administrator or a config names a device: a path (symlinks such as
/// /dev/disk/by-id/... followed), `PARTUUID=`, `PARTLABEL=`, `UUID=` or `LABEL=`.
/// Without udev (the recovery image), a /dev/disk/by-id/ link that does not exist is matched
/// against the disks' serials and WWNs, with its `-partN` suffix.
pub fn resolve_device(spec: &str) -> Result<PathBuf, IdentityError> {
    let path = Path::new(spec);
    if !devices::is_tag(spec) && path.exists() {
        return fs::canonicalize(path).map_err(|e| IdentityError::io(path, e));
    }
    let devs = devices::scan(|_| true)?;
    match devices::find(&devs, spec).first() {
        Some(d) => Ok(dev_path(&d.name)),
        None if devices::is_tag(spec) => {
            Err(IdentityError::NotFound(format!("no device has {spec}")))
        }
        None => Err(IdentityError::NotFound(format!(
            "{spec} does not exist (is the disk attached and its driver loaded?)"
        ))),
    }
}

/// True when a by-id name (without `-partN`) names a disk with this serial or WWN: udev
/// builds those names as `<bus>-<vendor>_<model>_<serial>`, `wwn-0x<naa>`, `scsi-3<naa>`,
/// `nvme-eui.<eui>`, so the identifier is the name's tail.
pub fn by_id_matches(base: &str, serial: Option<&str>, wwn: Option<&str>) -> bool {
    let mut keys: Vec<String> = Vec::new();
    if let Some(s) = serial {
        keys.push(s.trim().replace(' ', "_"));
    }
    if let Some(w) = wwn {
        let w = w.trim();
        keys.push(w.to_string());
        for prefix in ["naa.", "eui.", "t10.", "0x"] {
            if let Some(rest) = w.strip_prefix(prefix) {
                keys.push(rest.to_string());
            }
        }
    }
    keys.iter()
        .any(|k| k.len() >= 4 && base.to_ascii_lowercase().ends_with(&k.to_ascii_lowercase()))
}

/// Every device with a tag such as `PARTUUID=...`, `PARTLABEL=...`, `UUID=...` or
/// `LABEL=...`, in disk order; None when `spec` is not such a tag.
pub fn find_tagged(spec: &str) -> Result<Option<Vec<PathBuf>>, IdentityError> {
    if !devices::is_tag(spec) {
        return Ok(None);
    }
    let devs = devices::scan(|_| true)?;
    Ok(Some(
        devices::find(&devs, spec)
            .into_iter()
            .map(|d| dev_path(&d.name))
            .collect(),
    ))
}

/// The identity a manifest records for a disk.
pub fn disk_identity(d: &Disk, table: Option<&PartitionTable>) -> DiskIdentity {
    DiskIdentity {
        model: d.model.clone(),
        serial: d.serial.clone(),
        wwn: d.wwn.clone(),
        size_bytes: d.size_bytes,
        table_id: table.map(|t| t.id.clone()),
        table_type: table.map(|t| t.kind.name().to_string()),
        kernel_name: Some(d.name.clone()),
    }
}

/// The identity a manifest records for a partition (sysfs geometry, table names and ids).
pub fn partition_identity(p: &Partition, table: Option<&PartitionTable>) -> PartitionIdentity {
    let entry = table.and_then(|t| t.entry(p.number));
    PartitionIdentity {
        partuuid: entry.map(|e| e.partuuid.clone()),
        name: entry.and_then(|e| e.name.clone()),
        type_guid: entry.map(|e| e.type_id.clone()),
        number: Some(p.number),
        start_bytes: p.start_bytes,
        size_bytes: p.size_bytes,
    }
}

/// Where a block device sits: its disk (with table) and, for a partition, the partition.
#[derive(Debug, Clone)]
pub struct Location {
    pub disk: Disk,
    pub table: Option<PartitionTable>,
    pub partition: Option<Partition>,
}

/// Finds the disk, partition table and partition of a block device by kernel name.
pub fn locate(name: &str) -> Result<Location, IdentityError> {
    let (disk_name, number) = match parent_disk(name) {
        Some((d, n)) => (d, Some(n)),
        None => (name.to_string(), None),
    };
    let d = disk(&disk_name)?;
    let table = read_partition_table(&d.dev_path).ok().flatten();
    let partition = number.and_then(|n| d.partitions.iter().find(|p| p.number == n).cloned());
    Ok(Location {
        disk: d,
        table,
        partition,
    })
}
