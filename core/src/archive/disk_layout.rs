//! The whole disks a backup came from, as recorded in the manifest (`source.disks`): enough to
//! recreate each partition table, every filesystem's identity and geometry, and the boot chain
//! on a blank disk. These are facts read at backup time; what a restore does with them is
//! decided by `crate::plan`.
//!
//! Absent in archives written before it existed (an empty list): a restore plan then falls back
//! to the single partition identities of [`super::manifest::SourceIdentity`] and cannot
//! recreate a whole disk.

use super::manifest::FilesystemIdentity;
use serde::{Deserialize, Serialize};

/// One disk: its partition table and what each partition held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLayout {
    /// Kernel name at backup time, e.g. "sda" (informational: names change between boots).
    pub kernel_name: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// WWN or EUI when the disk reports one.
    pub wwn: Option<String>,
    /// The `/dev/disk/by-id` names of the disk at backup time (informational).
    #[serde(default)]
    pub by_id: Vec<String>,
    pub size_bytes: u64,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// "gpt" or "dos".
    pub table_type: String,
    /// GPT disk GUID (lower case) or MBR disk signature as 8 hex digits.
    pub table_id: String,
    /// Every partition in the table, in partition-number order.
    #[serde(default)]
    pub partitions: Vec<PartitionLayout>,
    /// The boot chain that lives outside the filesystems.
    #[serde(default)]
    pub boot: BootChain,
}

/// One partition table entry and what it held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLayout {
    /// 1-based partition number (the kernel's `sda<N>`).
    pub number: u32,
    pub start_bytes: u64,
    pub size_bytes: u64,
    /// GPT type GUID (lower case) or MBR type byte as "0x83".
    pub type_id: String,
    /// GPT unique partition GUID (lower case) or MBR `<signature>-<nn>`.
    pub partuuid: String,
    /// GPT partition name (PARTLABEL).
    pub name: Option<String>,
    /// GPT attribute bits (legacy BIOS bootable = bit 2, ...); 0 on MBR (the active flag is
    /// bit 7 of `mbr_flags`).
    #[serde(default)]
    pub attributes: u64,
    /// MBR boot indicator byte (0x80 = active); 0 on GPT.
    #[serde(default)]
    pub mbr_flags: u8,
    /// What it held at backup time.
    pub content: PartitionContent,
    /// Where it was mounted on the backed-up system ("/", "/boot/efi", "/var/log", ...), from
    /// the mount table at backup time or the root's fstab.
    pub mountpoint: Option<String>,
}

/// What a partition held. Only filesystems that a dom0 backup carries (root, ESP) get their
/// files back; the others are recreated empty with their identity, or left alone, as the plan
/// says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartitionContent {
    /// ext2/3/4 or vfat, with the identity and geometry mkfs needs (for vfat: `fat_bits` and
    /// `cluster_size`).
    Filesystem(FilesystemIdentity),
    /// A Lifeboat store (an ext filesystem whose root holds the store's marker). Recreated
    /// empty with its identity; never a restore target.
    LifeboatStore(FilesystemIdentity),
    /// A XenServer backup partition (an ext filesystem with `.xen-backup-partition`).
    /// Recreated empty with its identity; never a restore target.
    XenServerBackup(FilesystemIdentity),
    /// Linux swap (recreated with `mkswap` and this UUID and label).
    Swap {
        uuid: Option<String>,
        label: Option<String>,
    },
    /// A member of an md RAID array.
    MdMember(MdMember),
    /// An LVM physical volume, such as XenServer's local SR: VM data is not part of a dom0
    /// backup, so it is recreated as an empty partition and never formatted.
    LvmPv { pv_uuid: Option<String> },
    /// A BIOS boot partition (GRUB's core.img): its bytes, zstd-compressed then base64.
    BiosBoot {
        /// base64 of the zstd-compressed partition bytes.
        data: String,
        /// BLAKE3 of the uncompressed bytes, hex.
        b3: String,
    },
    /// A signature Lifeboat recognises by name only (xfs, btrfs, LUKS, ...).
    Other { fstype: String },
    /// No known signature.
    #[default]
    Unknown,
}

/// An md RAID member's superblock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdMember {
    /// The array UUID, as mdadm prints it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`).
    pub array_uuid: String,
    /// The array name (`host:name`), when the superblock has one.
    pub name: Option<String>,
    /// "raid1", "raid0", ...
    pub level: String,
    /// "0.90", "1.0", "1.1" or "1.2".
    pub metadata: String,
    /// Number of member devices.
    pub raid_disks: u32,
    /// This member's role (slot) in the array.
    pub role: Option<u32>,
    /// The filesystem inside the array, when it is the root or another recorded one.
    pub filesystem: Option<FilesystemIdentity>,
}

/// The parts of the boot chain outside the filesystems.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootChain {
    /// The MBR boot code (the first 440 bytes of the disk), hex; None when all zero.
    pub mbr_boot_code: Option<String>,
    /// UEFI boot entries (`Boot####`) whose device path names a partition of this disk.
    #[serde(default)]
    pub uefi_entries: Vec<UefiBootEntry>,
}

/// One UEFI boot entry, as `efibootmgr -v` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UefiBootEntry {
    /// The `####` of `Boot####`.
    pub number: u16,
    pub description: String,
    /// PARTUUID of the partition the loader is on.
    pub partuuid: String,
    /// The loader's path on it, e.g. `\EFI\xenserver\grubx64.efi`.
    pub loader_path: String,
    /// Position in `BootOrder` (0 = first), None when not in it.
    pub boot_order_position: Option<u32>,
    /// The whole `EFI_LOAD_OPTION` (attributes, description, device path, optional data), hex,
    /// so that the entry is written back exactly.
    pub load_option: String,
}
