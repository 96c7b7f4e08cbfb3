//! The manifest every Lifeboat archive carries as its first entry, and the trailer it carries
//! as its last. Both are JSON, so an administrator can read them with `tar -xO`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Path of the manifest entry inside the archive.
pub const MANIFEST_PATH: &str = ".lifeboat/manifest.json";
/// Path of the trailer entry inside the archive (the last entry).
pub const TRAILER_PATH: &str = ".lifeboat/trailer.json";
/// Version of the archive format described by this module.
pub const FORMAT_VERSION: u32 = 1;
/// Minor version written: 1 = sparse files' checksums cover their map and data, not their
/// holes (see `archive::checksum`). Archives without it (minor 0) still read.
pub const FORMAT_MINOR: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Absent (0) in archives written before format 1.1. The writer sets both versions.
    #[serde(default)]
    pub format_minor: u32,
    pub tool_version: String,
    /// RFC 3339 UTC time the backup started.
    pub created: String,
    pub hostname: String,
    /// Fields of /etc/xensource-inventory, when the host has one.
    #[serde(default)]
    pub inventory: BTreeMap<String, String>,
    #[serde(default)]
    pub machine: MachineIdentity,
    #[serde(default)]
    pub source: SourceIdentity,
    /// Exclude patterns in force (relative to the root).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Extra mount points included (`--include`), relative to the root.
    #[serde(default)]
    pub includes: Vec<String>,
    /// Mount points skipped because they are other filesystems (e.g. `var/log`).
    #[serde(default)]
    pub skipped_mounts: Vec<String>,
    /// Name of the compression codec of the stream this manifest was written into.
    #[serde(default)]
    pub codec: String,
}

/// The machine the backup was taken on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineIdentity {
    /// /sys/class/dmi/id/product_uuid
    pub product_uuid: Option<String>,
    /// /sys/class/dmi/id/product_serial
    pub product_serial: Option<String>,
    pub product_name: Option<String>,
    pub sys_vendor: Option<String>,
    /// MAC addresses of physical network interfaces, lower case, sorted.
    #[serde(default)]
    pub macs: Vec<String>,
}

/// The filesystem, partition and disk the root was backed up from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    #[serde(default)]
    pub filesystem: FilesystemIdentity,
    #[serde(default)]
    pub partition: PartitionIdentity,
    #[serde(default)]
    pub disk: DiskIdentity,
    /// The ESP (`/boot/efi`) when it is a separate filesystem.
    pub esp: Option<FilesystemIdentity>,
    pub esp_partition: Option<PartitionIdentity>,
    /// The whole disks of the root and of the ESP, logs, swap and backup partitions (each disk
    /// once): partition tables, contents, boot chain. Empty in archives written before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<super::disk_layout::DiskLayout>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemIdentity {
    /// "ext2", "ext3", "ext4", "vfat", ...
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// Size of the filesystem in bytes.
    pub size: u64,
    /// Block size in bytes.
    #[serde(default)]
    pub block_size: u32,
    /// Inode size in bytes (ext only).
    #[serde(default)]
    pub inode_size: u32,
    /// Feature names as mke2fs -O takes them (ext only), e.g. "has_journal", "extent".
    #[serde(default)]
    pub features: Vec<String>,
    /// Number of inodes (ext only; 0 when not recorded).
    #[serde(default)]
    pub inode_count: u64,
    /// Inodes in use at backup time (ext only; 0 when not recorded): a new filesystem needs at
    /// least this many.
    #[serde(default)]
    pub inodes_used: u64,
    /// 12, 16 or 32 (vfat only; 0 when not recorded): FAT32 stays FAT32.
    #[serde(default)]
    pub fat_bits: u8,
    /// Cluster size in bytes (vfat only; 0 when not recorded).
    #[serde(default)]
    pub cluster_size: u32,
    /// The device node it was read from at backup time, e.g. /dev/sda1 (informational).
    pub device: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionIdentity {
    /// GPT partition GUID (lower case) or MBR "<disk-id>-<nn>".
    pub partuuid: Option<String>,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT type GUID (lower case) or MBR type as "0x83".
    pub type_guid: Option<String>,
    /// 1-based partition number on its disk.
    pub number: Option<u32>,
    pub start_bytes: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskIdentity {
    pub model: Option<String>,
    pub serial: Option<String>,
    /// WWN or EUI when the disk reports one.
    pub wwn: Option<String>,
    pub size_bytes: u64,
    /// GPT disk GUID or MBR disk signature.
    pub table_id: Option<String>,
    /// "gpt" or "dos".
    pub table_type: Option<String>,
    /// Kernel name at backup time, e.g. "sda" (informational).
    pub kernel_name: Option<String>,
}

/// Written as the archive's last entry: what the writer saw, so a reader detects truncation,
/// missing entries and reordered or altered headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trailer {
    pub format_version: u32,
    pub counts: Counts,
    /// BLAKE3 chained over every entry's canonical header record (see archive::digest).
    pub entries_digest: String,
    /// BLAKE3 of the manifest entry's bytes.
    pub manifest_digest: String,
    /// RFC 3339 UTC time the backup finished.
    pub finished: String,
    /// Paths (lossy UTF-8) of files that kept changing while they were read.
    #[serde(default)]
    pub changed_files: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub fifos: u64,
    /// Sockets found and skipped (tar cannot carry them).
    pub sockets_skipped: u64,
    /// Logical bytes of regular file content.
    pub bytes: u64,
}
