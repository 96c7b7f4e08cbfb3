//! What a restore plan says: the backup, the disk it writes, every step in order with what it
//! destroys, the checks that passed, and the identity differences that need consent. Serialised
//! as the `--json` output of `lifeboat plan` and as the journal's record of a plan.

use crate::archive::disk_layout::UefiBootEntry;
use crate::archive::manifest::FilesystemIdentity;
use serde::{Deserialize, Serialize};

/// The label a root filesystem carries until the restore is complete (a host that finds its
/// root by label must not boot a half-restored one).
pub const PARTIAL_LABEL: &str = "lifeboat-partial";

/// How the plan restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// (a) The recorded disk (or a partition named by hand) is there: the root and the ESP are
    /// recreated in their partitions; the partition table is left as it is.
    RecordedDisk,
    /// (b) A blank disk: the whole recorded layout is recreated at the recorded offsets with
    /// the recorded identities, then the root and the ESP are restored.
    BlankDisk,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Mode::RecordedDisk => "restore the root (and ESP) into the existing partitions",
            Mode::BlankDisk => {
                "recreate the whole recorded disk layout on a blank disk, then restore"
            }
        }
    }
}

/// The backup being restored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRef {
    /// "lifeboat", "xenserver-tree" or "plain-tar".
    pub kind: String,
    /// The generation id (None for a XenServer backup partition).
    pub generation: Option<String>,
    pub host: String,
    /// When it was taken (RFC 3339).
    pub created: String,
    pub product_version: Option<String>,
    /// The partition that holds it, e.g. /dev/sdb2.
    pub device: String,
}

/// The disk the plan writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDisk {
    pub kernel_name: String,
    pub dev_path: String,
    /// A `/dev/disk/by-id/` name built from the serial or WWN, when the disk reports one.
    pub by_id: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub size_bytes: u64,
}

/// One step of a plan. `id` is stable for the same backup and layout (it names the action and
/// the partition number, never a kernel name), so a journal can record "step id done" and an
/// interrupted plan resumes at the first step not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    /// The device written, e.g. /dev/sdb or /dev/sdb2.
    pub device: String,
    /// What is on `device` now and is lost ("nothing": a blank disk; None: nothing destroyed).
    pub destroys: Option<String>,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Write a new, empty partition table with the recorded identity.
    CreateTable {
        table_type: String,
        table_id: String,
        sector_size: u32,
    },
    /// Create one partition at its recorded offset, with its recorded type, GUID and name.
    CreatePartition {
        number: u32,
        start_bytes: u64,
        size_bytes: u64,
        type_id: String,
        partuuid: String,
        name: Option<String>,
        attributes: u64,
        mbr_flags: u8,
    },
    /// mkfs with the recorded format. For the root: label `lifeboat-partial` and a random UUID
    /// until [`Action::SetFinalIdentity`]; `fs` is the recorded (final) identity.
    MakeFilesystem {
        role: String,
        fs: FilesystemIdentity,
        temporary_identity: bool,
    },
    /// mkswap with the recorded UUID and label.
    MakeSwap {
        uuid: Option<String>,
        label: Option<String>,
    },
    /// A filesystem that is not part of the backup (logs, a backup partition), recreated
    /// empty with its recorded identity.
    MakeEmptyFilesystem {
        role: String,
        fs: FilesystemIdentity,
    },
    /// A partition left empty, never formatted.
    LeaveEmpty { reason: String },
    /// Write the recorded BIOS boot partition bytes (GRUB's core.img).
    WriteBiosBoot { data: String, b3: String },
    /// Write the recorded MBR boot code (the first 440 bytes).
    WriteMbrBootCode { code: String },
    /// Extract the backup into the root filesystem.
    RestoreRoot,
    /// Restore `/boot/efi` into the ESP.
    RestoreEsp,
    /// Set the recorded label and UUID on the root, once every byte is written.
    SetFinalIdentity {
        uuid: Option<String>,
        label: Option<String>,
    },
    /// Write the recorded UEFI boot entry back (pointing at the recreated ESP).
    SetUefiBootEntry { entry: UefiBootEntry },
    /// Boot the restored disk next (`BootNext`), once.
    SetBootNext { number: u16, description: String },
    /// Mode (a), root on md RAID: make the array that discovery assembled read-only (so that
    /// nothing was written before the verdict) writable; the root is written THROUGH it
    /// (`device`, e.g. /dev/md0), never through one leg. `degraded`: fewer legs were found
    /// than the array records.
    StartMdArray {
        array_uuid: String,
        legs: Vec<String>,
        raid_disks: u32,
        degraded: bool,
    },
    /// Mode (b), root on md RAID: create the array on the recreated member partitions with the
    /// recorded metadata version, level, array UUID, name and member roles (`members[role]`,
    /// "missing" for a leg not recreated), then let md copy leg 0 onto the others (a full
    /// sync, not `--assume-clean`: blank disks are not zeroed, and legs that differ in blocks
    /// never written would show as mismatches in md's next check).
    CreateMdArray {
        array_uuid: String,
        name: Option<String>,
        level: String,
        metadata: String,
        members: Vec<String>,
    },
}

impl Action {
    /// The stable name of the action in step ids.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateTable { .. } => "create-table",
            Action::CreatePartition { .. } => "create-partition",
            Action::MakeFilesystem { .. } => "make-filesystem",
            Action::MakeSwap { .. } => "make-swap",
            Action::MakeEmptyFilesystem { .. } => "make-empty-filesystem",
            Action::LeaveEmpty { .. } => "leave-empty",
            Action::WriteBiosBoot { .. } => "write-bios-boot",
            Action::WriteMbrBootCode { .. } => "write-mbr-boot-code",
            Action::RestoreRoot => "restore-root",
            Action::RestoreEsp => "restore-esp",
            Action::SetFinalIdentity { .. } => "set-final-identity",
            Action::SetUefiBootEntry { .. } => "set-uefi-boot-entry",
            Action::SetBootNext { .. } => "set-boot-next",
            Action::StartMdArray { .. } => "start-md-array",
            Action::CreateMdArray { .. } => "create-md-array",
        }
    }
}

/// A check the plan made, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// "size", "inodes", "disk-size", "safety", "identity", ...
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// A restore plan, computed before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub mode: Mode,
    pub backup: BackupRef,
    pub target_disk: TargetDisk,
    /// The root partition written, e.g. /dev/sdb2 (in mode (b), the partition it will be).
    pub root_device: String,
    /// The ESP written, when the backup has one.
    pub esp_device: Option<String>,
    /// The identity the root ends with, and where it comes from.
    pub root_identity: FilesystemIdentity,
    pub identity_source: String,
    pub steps: Vec<Step>,
    pub checks: Vec<Check>,
    /// Differences between this machine (and disk) and the ones the backup was taken on.
    pub identity_mismatches: Vec<String>,
    /// True when `identity_mismatches` is not empty: the restore needs explicit consent.
    pub needs_consent: bool,
    /// Things a person should know that change nothing (e.g. the local SR left empty).
    pub notes: Vec<String>,
}

impl Plan {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The steps still to do after the ones a journal records as done, in order.
    pub fn remaining<'a>(&'a self, done: &[String]) -> impl Iterator<Item = &'a Step> + 'a {
        let done: Vec<String> = done.to_vec();
        self.steps.iter().filter(move |s| !done.contains(&s.id))
    }
}
