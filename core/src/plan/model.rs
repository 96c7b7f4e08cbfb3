//! What a restore plan says: the backup, the disk it writes, every step in order with what it
//! destroys, the checks that passed, and the identity differences that need consent. Serialised
//! as the `--json` output of `lifeboat plan` and as the journal's record of a plan.

use crate::archive::disk_layout::UefiBootEntry;
use crate::archive::manifest::FilesystemIdentity;
use crate::store::journal::{PlanProgress, StepRef};
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
    /// Write a new, empty partition table with the recorded identity (and, in its first
    /// sector, the recorded MBR boot code: the table writers put it there).
    CreateTable {
        table_type: String,
        table_id: String,
        sector_size: u32,
        /// The recorded MBR boot code (the first 440 bytes) is written with the table.
        #[serde(default)]
        mbr_boot_code: bool,
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

/// The plan computed now is not the one an interrupted restore recorded in the store's journal:
/// the disks (or the backup's record of them) changed since, so its finished steps cannot be
/// trusted for this plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the interrupted restore of generation {generation} recorded a plan that differs from the one computed now: {difference}")]
pub struct PlanChanged {
    pub generation: String,
    pub difference: String,
}

impl Plan {
    /// The plan as printed for a person or a script (`lifeboat plan --json`, the image's
    /// `LIFEBOAT-PLAN` line): everything the plan says, but the recorded BIOS boot partition
    /// bytes (tens of KiB of base64 that nobody reads) replaced by their size; their BLAKE3
    /// stays, so two printed plans still differ when the bytes do.
    pub fn public_json(&self) -> serde_json::Value {
        let mut printed = self.clone();
        for step in &mut printed.steps {
            if let Action::WriteBiosBoot { data, .. } = &mut step.action {
                *data = format!("({} bytes of base64, not printed)", data.len());
            }
        }
        serde_json::to_value(&printed)
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}

impl Plan {
    /// The steps as a journal records them: ids and devices, in order.
    pub fn step_refs(&self) -> Vec<StepRef> {
        self.steps
            .iter()
            .map(|s| StepRef {
                id: s.id.clone(),
                device: s.device.clone(),
            })
            .collect()
    }

    /// Where a run of this plan resumes after the unfinished `recorded` one: the index of the
    /// first step not done. The recorded plan must be this one (same step ids on the same
    /// devices, in the same order), else nothing it says is done can be trusted.
    pub fn resume_at(&self, recorded: &PlanProgress) -> Result<usize, PlanChanged> {
        let now = self.step_refs();
        let changed = |difference: String| PlanChanged {
            generation: recorded
                .generation
                .clone()
                .unwrap_or_else(|| "(unknown)".into()),
            difference,
        };
        if let Some((i, (a, b))) = recorded
            .steps
            .iter()
            .zip(&now)
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            return Err(changed(format!("step {} was {a}, is now {b}", i + 1)));
        }
        if recorded.steps.len() != now.len() {
            return Err(changed(format!(
                "it had {} steps, the plan now has {}",
                recorded.steps.len(),
                now.len()
            )));
        }
        Ok(recorded.first_not_done())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan(steps: &[(&str, &str)]) -> Plan {
        Plan {
            mode: Mode::BlankDisk,
            backup: BackupRef::default(),
            target_disk: TargetDisk::default(),
            root_device: "/dev/vda1".into(),
            esp_device: None,
            root_identity: FilesystemIdentity::default(),
            identity_source: String::new(),
            steps: steps
                .iter()
                .map(|(id, dev)| Step {
                    id: (*id).into(),
                    device: (*dev).into(),
                    destroys: None,
                    action: Action::RestoreRoot,
                })
                .collect(),
            checks: Vec::new(),
            identity_mismatches: Vec::new(),
            needs_consent: false,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_plan_resumes_only_where_the_same_plan_stopped() {
        let p = plan(&[
            ("create-table", "/dev/vda"),
            ("make-filesystem-p1", "/dev/vda1"),
            ("restore-root", "/dev/vda1"),
        ]);
        let recorded = |steps: Vec<StepRef>, done: &[&str]| PlanProgress {
            generation: Some("g1".into()),
            target: Some("/dev/vda".into()),
            steps,
            done: done.iter().map(|d| d.to_string()).collect(),
        };
        assert_eq!(
            p.resume_at(&recorded(p.step_refs(), &["create-table"])),
            Ok(1)
        );
        assert_eq!(p.resume_at(&recorded(p.step_refs(), &[])), Ok(0));
        // Another device for the same step: the disks changed.
        let mut moved = p.step_refs();
        moved[1].device = "/dev/vdb1".into();
        let e = p
            .resume_at(&recorded(moved, &["create-table"]))
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "step 2 was make-filesystem-p1 on /dev/vdb1, is now make-filesystem-p1 on /dev/vda1"
            ),
            "{e}"
        );
        // A step more or less.
        let mut fewer = p.step_refs();
        fewer.pop();
        let e = p.resume_at(&recorded(fewer, &[])).unwrap_err();
        assert!(
            e.to_string().contains("it had 2 steps, the plan now has 3"),
            "{e}"
        );
    }
}
