//! Identity of machines, disks, partitions and filesystems, and the XenServer inventory.
//!
//! Everything is read from sysfs and from the devices themselves (superblocks, partition
//! tables), never through udev or blkid, so the recovery image's PID 1 can use it as is.
//!
//! - [`inventory`]: `/etc/xensource-inventory` (`parse_inventory`, `read_inventory`,
//!   `product_major`).
//! - [`blockdev`]: disks and partitions from `/sys/block` (`list_disks`, `disk`, `locate`,
//!   `resolve_device` for paths, by-id links, `PARTUUID=`/`LABEL=`..., `name_of_dir` for the
//!   device of a mounted directory).
//! - [`devices`]: one flattened list of disks and partitions with every name they answer to
//!   (`scan`), and `find` by kernel name, node, `PARTUUID=`/`PARTLABEL=`/`UUID=`/`LABEL=` or
//!   by-id name: used by `resolve_device` and by the recovery image.
//! - [`table`] with [`gpt`] and [`mbr`]: partition tables read from the disk
//!   (`read_partition_table`).
//! - [`fs`] with [`extfs`] and [`vfat`]: `probe(dev) -> Option<FilesystemIdentity>`.
//! - [`machine`]: DMI identity, MACs of physical NICs, host name.
//! - [`clock`]: UTC time as RFC 3339 text and compact ids.
//! - [`swap`], [`md`], [`lvm`]: swap headers, md member superblocks, LVM PV labels.
//! - [`layout`]: the whole disks a backup records (`record_disks`, `table_layout`,
//!   `bios_boot_bytes`); [`gpt_write`] and [`mbr`] write a recorded table back
//!   (`gpt_write::write_table`); [`efivars`]: UEFI boot entries.
//! - [`manifest_for_root`]: the manifest of a backup of a root directory.

pub mod blockdev;
pub mod devices;
/// Kept here for the callers that knew it as `identity::clock`.
pub use crate::clock;
pub mod efivars;
pub mod extfs;
pub mod fs;
pub mod gpt;
pub mod gpt_write;
pub mod inventory;
pub mod layout;
pub mod lvm;
pub mod machine;
pub mod mbr;
pub mod md;
pub mod swap;
pub mod table;
pub mod vfat;

pub use blockdev::{list_disks, locate, resolve_device, Disk, Location, Partition};
pub use fs::probe;
pub use inventory::{parse_inventory, product_major, read_inventory, Inventory};
pub use table::{read_partition_table, PartitionTable, TableEntry, TableKind};

use crate::archive::manifest::{Manifest, SourceIdentity, FORMAT_VERSION};
use std::path::{Path, PathBuf};

/// Errors reading identities.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0} is not a block device")]
    NotBlockDevice(PathBuf),
    /// A recorded disk layout that cannot be written (or read back) on this device.
    #[error("{path}: {msg}")]
    Layout { path: PathBuf, msg: String },
}

impl IdentityError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        IdentityError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The manifest of a backup of `root`: format and tool version, creation time (now), host
/// name, inventory (`root/etc/xensource-inventory`), machine, and the source filesystem,
/// partition and disk of the device `root` is on (a loop device for a loop-mounted image),
/// plus the ESP when `root/boot/efi` is a separate mount. Best effort: what cannot be read
/// stays empty. The caller fills in excludes, includes, skipped mounts and codec.
pub fn manifest_for_root(root: &Path) -> Manifest {
    manifest_for_root_with(root, &[])
}

/// [`manifest_for_root`], also recording the whole disks of `extra_devices` (the backup
/// command passes the store's device) in `source.disks` with those of the root, ESP, logs
/// and swap ([`layout::record_disks`]).
pub fn manifest_for_root_with(root: &Path, extra_devices: &[PathBuf]) -> Manifest {
    let mut source = source_identity(root);
    source.disks = layout::record_disks(root, extra_devices);
    Manifest {
        format_version: FORMAT_VERSION,
        tool_version: format!("lifeboat {}", crate::VERSION),
        created: clock::now_rfc3339(),
        hostname: machine::hostname_of_root(root),
        inventory: read_inventory(root).ok().flatten().unwrap_or_default(),
        machine: machine::machine_identity(),
        source,
        ..Default::default()
    }
}

/// Identity of the filesystem, partition and disk `root` lives on, and of its ESP.
pub fn source_identity(root: &Path) -> SourceIdentity {
    let mut id = SourceIdentity::default();
    if let Some((fs, part, disk)) = identify_dir(root) {
        id.filesystem = fs;
        id.partition = part.unwrap_or_default();
        id.disk = disk;
    }
    let efi = root.join("boot/efi");
    if is_separate_mount(root, &efi) {
        if let Some((fs, part, _)) = identify_dir(&efi) {
            id.esp = Some(fs);
            id.esp_partition = part;
        }
    }
    id
}

type DirIdentity = (
    crate::archive::manifest::FilesystemIdentity,
    Option<crate::archive::manifest::PartitionIdentity>,
    crate::archive::manifest::DiskIdentity,
);

/// Filesystem, partition (None for a whole-disk filesystem) and disk of a directory.
pub fn identify_dir(dir: &Path) -> Option<DirIdentity> {
    let name = blockdev::name_of_dir(dir).ok().flatten()?;
    let loc = locate(&name).ok()?;
    let node = loc
        .partition
        .as_ref()
        .map(|p| p.dev_path.clone())
        .unwrap_or_else(|| loc.disk.dev_path.clone());
    let mut fs = probe(&node).ok().flatten().unwrap_or_default();
    fs.device = Some(node.display().to_string());
    let part = loc
        .partition
        .as_ref()
        .map(|p| blockdev::partition_identity(p, loc.table.as_ref()));
    let disk = blockdev::disk_identity(&loc.disk, loc.table.as_ref());
    Some((fs, part, disk))
}

/// True when `dir` exists and is on another filesystem than `root`.
pub fn is_separate_mount(root: &Path, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(root), std::fs::metadata(dir)) {
        (Ok(r), Ok(d)) => d.is_dir() && r.dev() != d.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
