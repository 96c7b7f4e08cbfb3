//! Block devices as this image sees them: disks and partitions from /sys/class/block, with the
//! GPT/MBR identity of each partition (PARTUUID, name, type) and the filesystem signature of
//! each (ext2/3/4, vfat, iso9660: type, UUID, label), all read by `lifeboat_core::identity`
//! (the image has no udev or blkid), flattened into the one list the menu and the restore use.

use lifeboat_core::identity::{self, blockdev, table};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsInfo {
    /// "ext2", "ext3", "ext4", "vfat", "iso9660"
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BlockDev {
    /// Kernel name, e.g. "vda2".
    pub name: String,
    /// The whole disk's kernel name (itself for a disk).
    pub disk: String,
    pub partno: Option<u32>,
    pub size: u64,
    pub removable: bool,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub partuuid: Option<String>,
    pub type_guid: Option<String>,
    pub fs: Option<FsInfo>,
}

impl BlockDev {
    pub fn dev_path(&self) -> String {
        format!("/dev/{}", self.name)
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

/// The filesystem on a device: core's probe (ext2/3/4 and vfat in full, iso9660 and others by
/// type), the same code that recorded the manifest at backup time.
pub fn probe_fs(path: &Path) -> Option<FsInfo> {
    let id = identity::fs::probe(path).ok()??;
    Some(FsInfo {
        fstype: id.fstype,
        uuid: id.uuid,
        label: id.label,
    })
}

/// Every disk and partition the kernel knows (loop, ram and zram devices left out), with the
/// identity core reads from sysfs and the partition tables.
pub fn scan() -> Vec<BlockDev> {
    let wanted = crate::coldplug::block_devices();
    let disks = blockdev::list_disks().unwrap_or_default();
    let mut devs = Vec::new();
    for disk in disks.into_iter().filter(|d| wanted.contains(&d.name)) {
        let table = table::read_partition_table(&disk.dev_path).ok().flatten();
        let whole = BlockDev {
            name: disk.name.clone(),
            disk: disk.name.clone(),
            partno: None,
            size: disk.size_bytes,
            removable: disk.removable,
            model: disk.model.clone(),
            serial: disk.serial.clone(),
            fs: probe_fs(&disk.dev_path),
            ..Default::default()
        };
        devs.push(whole);
        for part in &disk.partitions {
            if part.size_bytes == 0 {
                continue;
            }
            let entry = table.as_ref().and_then(|t| t.entry(part.number));
            devs.push(BlockDev {
                name: part.name.clone(),
                disk: disk.name.clone(),
                partno: Some(part.number),
                size: part.size_bytes,
                removable: disk.removable,
                model: disk.model.clone(),
                serial: disk.serial.clone(),
                partuuid: entry.map(|e| e.partuuid.clone()),
                type_guid: entry.map(|e| e.type_id.clone()),
                fs: probe_fs(&part.dev_path),
            });
        }
    }
    devs
}

/// Human form of a byte count (GiB with one decimal, or MiB).
pub fn human_size(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}
