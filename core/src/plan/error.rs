//! Why a plan is refused. Every refusal names the device or file, says what it found, and what
//! to do next; nothing has been written when one is returned.

/// A refused plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{request}: no such disk or partition here (list them with `lsblk -o NAME,SIZE,SERIAL,PARTUUID,LABEL`, or the Details screen of the recovery image)")]
    NoSuchDevice { request: String },

    #[error("{request} is ambiguous: it names {}; name exactly one (by PARTUUID=, by-id name or kernel name)", .matches.join(", "))]
    Ambiguous {
        request: String,
        matches: Vec<String>,
    },

    #[error("{device} holds the backup being restored; writing it would destroy the only copy. Name another partition")]
    HoldsThisBackup { device: String },

    #[error("{device} holds {what}; a restore never overwrites a backup. Name another partition, or remove that backup first if it is no longer wanted")]
    HoldsOtherBackup { device: String, what: String },

    #[error("{device} is mounted at {mountpoint}; a restore never writes a mounted filesystem. Unmount it first, or name another partition")]
    Mounted { device: String, mountpoint: String },

    #[error("{device} is one leg of the md array {array}; writing one leg leaves the array's legs disagreeing. Restore through the array (/dev/mdN), or stop it and wipe both legs first")]
    MdLeg { device: String, array: String },

    #[error("{device} is on the medium this system booted from; choose a disk of the machine")]
    BootMedium { device: String },

    #[error("{device} ({size} bytes) is smaller than {what} ({needed} bytes); name a partition of at least {needed} bytes")]
    TooSmall {
        device: String,
        size: u64,
        needed: u64,
        what: String,
    },

    #[error("{device} would hold about {available} inodes, fewer than the {needed} in use in the backup; name a larger partition")]
    TooFewInodes {
        device: String,
        available: u64,
        needed: u64,
    },

    #[error("{device} is a whole disk: name a partition with --target / lifeboat.target=, or a blank disk to recreate the whole layout on with --target-disk / lifeboat.disk=")]
    NotAPartition { device: String },

    #[error("{device} is a partition, not a disk: --target-disk / lifeboat.disk= names a whole blank disk (by serial, WWN, by-id or kernel name)")]
    NotADisk { device: String },

    #[error("{device} is not blank ({found}); the whole recorded layout is only recreated on a disk with no partition table and no signature. Name another disk, or wipe it first (wipefs -a) if its content is not wanted")]
    DiskNotBlank { device: String, found: String },

    #[error("{device} ({size} bytes) is smaller than the recorded disk ({needed} bytes); the recorded layout needs a disk at least as large")]
    DiskTooSmall {
        device: String,
        size: u64,
        needed: u64,
    },

    #[error("this backup did not record its disk layout (it was taken before Lifeboat recorded whole disks), so it cannot be recreated on {device}; partition the disk by hand and name the root partition with --target / lifeboat.target=")]
    NoDiskLayout { device: String },

    #[error("the recorded disk layout has no partition for the root ({detail}); name the root partition with --target / lifeboat.target=")]
    NoRootInLayout { detail: String },

    #[error("the root of this backup is on the md array {array}, but the array is not assembled here (legs found: {legs}); its data is only written through the array, never one leg. Check the console for mdadm's message, or assemble it from the rescue shell (mdadm --assemble --run)")]
    MdNotAssembled { array: String, legs: String },

    #[error("the backup's root needs {needed} recorded disk(s) recreated (a root on md RAID: one per disk holding a leg), and {named} blank disk(s) were named; name one blank disk per recorded disk, in the recorded order: lifeboat.disk=DISK1,DISK2 (--target-disk DISK1,DISK2)")]
    MdDiskCount { needed: usize, named: usize },

    #[error("recreating {what} on a blank disk is not supported yet ({device}); restore onto the existing partitions with --target / lifeboat.target=")]
    Unsupported { device: String, what: String },

    #[error("the root partition of this backup ({recorded}) was not found on {searched}; name it with --target / lifeboat.target=, or a blank disk with --target-disk / lifeboat.disk=")]
    RootNotFound { recorded: String, searched: String },

    #[error("the identity of the restored root cannot be decided: {reason}. XenServer finds its root by this label or UUID, so the restore is refused (as XenServer's installer refuses)")]
    NoIdentity { reason: String },

    #[error("{0}")]
    Latest(#[from] super::latest::LatestError),
}

impl PlanError {
    /// A stable name of the refusal, for `--json` and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            PlanError::NoSuchDevice { .. } => "no-such-device",
            PlanError::Ambiguous { .. } => "ambiguous",
            PlanError::HoldsThisBackup { .. } => "holds-this-backup",
            PlanError::HoldsOtherBackup { .. } => "holds-other-backup",
            PlanError::Mounted { .. } => "mounted",
            PlanError::MdLeg { .. } => "md-leg",
            PlanError::BootMedium { .. } => "boot-medium",
            PlanError::TooSmall { .. } => "too-small",
            PlanError::TooFewInodes { .. } => "too-few-inodes",
            PlanError::NotAPartition { .. } => "not-a-partition",
            PlanError::NotADisk { .. } => "not-a-disk",
            PlanError::DiskNotBlank { .. } => "disk-not-blank",
            PlanError::DiskTooSmall { .. } => "disk-too-small",
            PlanError::NoDiskLayout { .. } => "no-disk-layout",
            PlanError::NoRootInLayout { .. } => "no-root-in-layout",
            PlanError::Unsupported { .. } => "unsupported",
            PlanError::MdNotAssembled { .. } => "md-not-assembled",
            PlanError::MdDiskCount { .. } => "md-disk-count",
            PlanError::RootNotFound { .. } => "root-not-found",
            PlanError::NoIdentity { .. } => "no-identity",
            PlanError::Latest(_) => "no-latest",
        }
    }
}
