//! The decision: from the backup, the devices found and the request, the one plan or the one
//! refusal. Pure: no I/O, so every rule is tested with hand-made device lists.

use super::error::PlanError;
use super::facts::{by_id_name, find_named, BackupFacts, BackupKind, DeviceFacts, TargetRequest};
use super::identity::{root_identity, RootIdentity};
use super::model::{Action, BackupRef, Check, Mode, Plan, Step, TargetDisk};
use super::safety::{check_fits, check_writable};
use crate::archive::disk_layout::{DiskLayout, MdMember, PartitionContent, PartitionLayout};
use crate::archive::manifest::{FilesystemIdentity, MachineIdentity};
use crate::identity::machine::meaningful;
use crate::progress::human_bytes;

/// GPT type of an EFI system partition.
pub const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

/// The restore plan for `backup` on this machine, or the refusal that explains itself.
pub fn plan(
    backup: &BackupFacts,
    devices: &[DeviceFacts],
    request: &TargetRequest,
    machine: &MachineIdentity,
) -> Result<Plan, PlanError> {
    let ident = root_identity(backup)?;
    match request {
        TargetRequest::Automatic => {
            let (root, by) = find_root(backup, &ident, devices, None)?;
            recorded_disk(
                backup,
                &ident,
                devices,
                root,
                machine,
                &format!("found by {by}"),
            )
        }
        TargetRequest::Partition(spec) => {
            let d = named(devices, spec, &request.spelt())?;
            let partitioned = devices
                .iter()
                .any(|p| p.dev.is_partition() && p.dev.disk == d.dev.name);
            if d.dev.is_partition() {
                recorded_disk(backup, &ident, devices, d, machine, "named by hand")
            } else if !partitioned {
                // The safety rules first: an md leg or a store is refused as what it is.
                check_writable(d, devices, backup)?;
                if d.dev.fs.is_some() {
                    // A whole-disk filesystem, such as an md array: restore through it.
                    recorded_disk(
                        backup,
                        &ident,
                        devices,
                        d,
                        machine,
                        "a whole device named by hand",
                    )
                } else {
                    Err(PlanError::NotAPartition {
                        device: d.dev.dev_path(),
                    })
                }
            } else {
                let (root, by) = find_root(backup, &ident, devices, Some(&d.dev.name))?;
                recorded_disk(
                    backup,
                    &ident,
                    devices,
                    root,
                    machine,
                    &format!("found by {by} on the disk named"),
                )
            }
        }
        TargetRequest::Disk(spec) => {
            // One disk, or several separated by commas (a root on md RAID: one blank disk
            // per recorded disk of the array, in the recorded order).
            let mut disks = Vec::new();
            for one in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let d = named(devices, one, &request.spelt())?;
                if d.dev.is_partition() {
                    return Err(PlanError::NotADisk {
                        device: d.dev.dev_path(),
                    });
                }
                disks.push(d);
            }
            blank_disk(backup, &ident, devices, &disks, machine)
        }
    }
}

/// The one device a name denotes: none and several are refused, several listed.
fn named<'a>(
    devices: &'a [DeviceFacts],
    spec: &str,
    spelt: &str,
) -> Result<&'a DeviceFacts, PlanError> {
    match find_named(devices, spec).as_slice() {
        [] => Err(PlanError::NoSuchDevice {
            request: spelt.into(),
        }),
        [one] => Ok(one),
        many => Err(PlanError::Ambiguous {
            request: spelt.into(),
            matches: many.iter().map(|d| describe_dev(d)).collect(),
        }),
    }
}

/// A device as a person recognises it: node, size, label, filesystem, disk serial.
pub fn describe_dev(d: &DeviceFacts) -> String {
    let b = &d.dev;
    let mut s = format!("{} ({}", b.dev_path(), human_bytes(b.size));
    if let Some(l) = b.label() {
        s.push_str(&format!(", label {l}"));
    }
    if !b.fstype().is_empty() {
        s.push_str(&format!(", {}", b.fstype()));
    }
    if let Some(p) = b.partuuid.as_deref() {
        s.push_str(&format!(", PARTUUID {p}"));
    }
    if let Some(sn) = b.serial.as_deref() {
        s.push_str(&format!(", disk serial {sn}"));
    }
    s.push(')');
    s
}

/// What is on a device now (what writing it destroys).
fn contents(d: &DeviceFacts) -> String {
    match &d.dev.fs {
        Some(fs) => {
            let mut s = fs.fstype.clone();
            if let Some(l) = fs.label.as_deref() {
                s.push_str(&format!(" labelled {l}"));
            }
            if let Some(u) = fs.uuid.as_deref() {
                s.push_str(&format!(" (UUID {u})"));
            }
            s
        }
        None => "no recognised filesystem".into(),
    }
}

fn eq_ci(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| !b.is_empty() && a.eq_ignore_ascii_case(b))
}

/// The recorded root partition among the partitions found (of `disk` only, when given): by
/// the recorded PARTUUID, else the filesystem's recorded UUID, else its label, else the
/// temporary label an interrupted restore left on the backup's own disk. Several matches are
/// refused and listed. Returns the partition and the rule that found it.
fn find_root<'a>(
    backup: &BackupFacts,
    ident: &RootIdentity,
    devices: &'a [DeviceFacts],
    disk: Option<&str>,
) -> Result<(&'a DeviceFacts, String), PlanError> {
    // Partitions, and assembled md arrays (a root on RAID1 is restored through the array);
    // never an md leg, which carries the array's filesystem identity too (metadata 1.0).
    let parts: Vec<&DeviceFacts> = devices
        .iter()
        .filter(|d| {
            (d.dev.is_partition() || is_md_array(d))
                && d.md_array.is_none()
                && disk.is_none_or_eq(&d.dev.disk)
        })
        .collect();
    let partuuid = backup
        .manifest
        .as_ref()
        .and_then(|m| m.source.partition.partuuid.clone())
        .filter(|p| !p.is_empty());
    let backup_disk = devices
        .iter()
        .find(|d| d.dev.name == backup.device)
        .map(|d| d.dev.disk.clone());
    type Rule<'r> = (String, Box<dyn Fn(&DeviceFacts) -> bool + 'r>);
    let mut rules: Vec<Rule> = Vec::new();
    if let Some(pu) = partuuid.clone() {
        rules.push((
            format!("PARTUUID={pu}"),
            Box::new(move |d| eq_ci(d.dev.partuuid.as_deref(), &pu)),
        ));
    }
    if let Some(u) = ident.fs.uuid.clone().filter(|u| !u.is_empty()) {
        rules.push((
            format!("UUID={u}"),
            Box::new(move |d| eq_ci(d.dev.fs_uuid(), &u)),
        ));
    }
    if let Some(l) = ident.fs.label.clone().filter(|l| !l.is_empty()) {
        rules.push((
            format!("LABEL={l}"),
            Box::new(move |d| d.dev.label() == Some(l.as_str())),
        ));
    }
    if let Some(bd) = backup_disk.clone() {
        rules.push((
            format!("LABEL={} on {bd}", super::model::PARTIAL_LABEL),
            Box::new(move |d| {
                d.dev.disk == bd && d.dev.label() == Some(super::model::PARTIAL_LABEL)
            }),
        ));
    }
    // A XenServer dom0 backup without a recorded partition (a backup partition, a staged `xe
    // host-backup`): XenServer's installer always makes the root partition 1 of the disk that
    // holds the backup partition, and its restore finds it there; so is a wiped root.
    let xenserver = backup.kind != BackupKind::Lifeboat
        && backup
            .system_files
            .as_ref()
            .is_some_and(|f| f.inventory.is_some());
    if let (true, Some(bd)) = (xenserver, backup_disk.clone()) {
        let holder = backup.device.clone();
        rules.push((
            format!("partition 1 of {bd} (XenServer's layout)"),
            Box::new(move |d| {
                d.dev.disk == bd
                    && d.dev.partno == Some(1)
                    && d.dev.name != holder
                    && d.dev
                        .fs
                        .as_ref()
                        .is_none_or(|f| f.fstype.starts_with("ext"))
            }),
        ));
    }
    for (spelt, rule) in &rules {
        let found: Vec<&DeviceFacts> = parts.iter().copied().filter(|d| rule(d)).collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok((one, spelt.clone())),
            many => {
                return Err(PlanError::Ambiguous {
                    request: format!("the recorded root ({spelt})"),
                    matches: many.iter().map(|d| describe_dev(d)).collect(),
                })
            }
        }
    }
    if let Some(md) = root_md(backup) {
        let legs = md_legs(devices, &md.array_uuid);
        if !legs.is_empty() {
            return Err(PlanError::MdNotAssembled {
                array: md.array_uuid.clone(),
                legs: legs.join(", "),
            });
        }
    }
    Err(PlanError::RootNotFound {
        recorded: if rules.is_empty() {
            "no PARTUUID, UUID or label recorded".into()
        } else {
            rules
                .iter()
                .map(|(s, _)| s.as_str())
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        },
        searched: match disk {
            Some(d) => format!("disk /dev/{d}"),
            None => "any disk".into(),
        },
    })
}

trait NoneOrEq {
    fn is_none_or_eq(&self, v: &str) -> bool;
}
impl NoneOrEq for Option<&str> {
    fn is_none_or_eq(&self, v: &str) -> bool {
        match self {
            None => true,
            Some(x) => *x == v,
        }
    }
}

fn disk_of<'a>(devices: &'a [DeviceFacts], name: &str) -> Option<&'a DeviceFacts> {
    devices
        .iter()
        .find(|d| !d.dev.is_partition() && d.dev.name == name)
}

fn target_disk(d: &DeviceFacts) -> TargetDisk {
    TargetDisk {
        kernel_name: d.dev.name.clone(),
        dev_path: d.dev.dev_path(),
        by_id: by_id_name(&d.dev),
        model: d.dev.model.clone(),
        serial: d.dev.serial.clone(),
        size_bytes: d.dev.size,
    }
}

fn backup_ref(backup: &BackupFacts) -> BackupRef {
    BackupRef {
        kind: backup.kind.name().into(),
        generation: backup.generation.clone(),
        host: backup.host.clone(),
        created: backup.created.clone(),
        product_version: backup.product_version.clone(),
        device: crate::identity::blockdev::dev_path(&backup.device)
            .to_string_lossy()
            .into_owned(),
    }
}

/// Differences between this machine and the backup's (product UUID, serial). A value the
/// backup does not record, or records as a firmware placeholder
/// ([`crate::identity::machine::meaningful`]), is not compared; one this machine lacks or
/// reports as a placeholder is "unknown", a difference.
fn machine_mismatches(backup: &BackupFacts, machine: &MachineIdentity) -> Vec<String> {
    let mut out = Vec::new();
    let Some(rec) = backup.manifest.as_ref().map(|m| meaningful(&m.machine)) else {
        return out;
    };
    let here = meaningful(machine);
    let pairs = [
        ("machine UUID", &rec.product_uuid, &here.product_uuid),
        ("machine serial", &rec.product_serial, &here.product_serial),
    ];
    for (what, want, have) in pairs {
        let Some(want) = want.as_deref() else {
            continue;
        };
        match have.as_deref() {
            Some(h) if h.eq_ignore_ascii_case(want) => {}
            h => out.push(format!(
                "{what}: backup {want}, this machine {}",
                h.unwrap_or("unknown")
            )),
        }
    }
    out
}

/// Differences between the recorded disk and the one written (mode (a)).
fn disk_mismatches(backup: &BackupFacts, disk: &DeviceFacts) -> Vec<String> {
    let mut out = Vec::new();
    let Some(rec) = backup.manifest.as_ref().map(|m| &m.source.disk) else {
        return out;
    };
    let name = disk.dev.dev_path();
    let pairs = [
        ("disk serial", &rec.serial, &disk.dev.serial),
        ("disk model", &rec.model, &disk.dev.model),
    ];
    for (what, want, have) in pairs {
        if let (Some(w), Some(h)) = (want.as_deref(), have.as_deref()) {
            if !w.trim().is_empty() && !w.trim().eq_ignore_ascii_case(h.trim()) {
                out.push(format!("{what}: backup {}, {name} {}", w.trim(), h.trim()));
            }
        }
    }
    if rec.size_bytes > 0 && rec.size_bytes != disk.dev.size {
        out.push(format!(
            "disk size: backup {} bytes, {name} {} bytes",
            rec.size_bytes, disk.dev.size
        ));
    }
    out
}

/// The recorded layout of the root's disk, when the backup recorded whole disks.
fn root_layout(backup: &BackupFacts) -> Option<(&DiskLayout, &PartitionLayout)> {
    let m = backup.manifest.as_ref()?;
    let pu = m.source.partition.partuuid.as_deref().unwrap_or("");
    m.source.disks.iter().find_map(|d| {
        d.partitions
            .iter()
            .find(|p| eq_ci(Some(p.partuuid.as_str()), pu))
            .or_else(|| {
                d.partitions
                    .iter()
                    .find(|p| p.mountpoint.as_deref() == Some("/"))
            })
            .map(|p| (d, p))
    })
}

/// The ESP's recorded filesystem, when the backup has one.
fn esp_fs(backup: &BackupFacts) -> Option<FilesystemIdentity> {
    backup.manifest.as_ref().and_then(|m| m.source.esp.clone())
}

/// The UEFI entry to boot next: the first in the recorded BootOrder.
fn boot_next(layout: &DiskLayout) -> Option<&crate::archive::disk_layout::UefiBootEntry> {
    layout
        .boot
        .uefi_entries
        .iter()
        .min_by_key(|e| e.boot_order_position.unwrap_or(u32::MAX))
}

fn step(id: String, device: String, destroys: Option<String>, action: Action) -> Step {
    Step {
        id,
        device,
        destroys,
        action,
    }
}

/// Mode (a): the root (and ESP) rewritten in their partitions, the table left alone.
fn recorded_disk(
    backup: &BackupFacts,
    ident: &RootIdentity,
    devices: &[DeviceFacts],
    root: &DeviceFacts,
    machine: &MachineIdentity,
    how: &str,
) -> Result<Plan, PlanError> {
    let mut checks = vec![check_writable(root, devices, backup)?];
    let root_dev = root.dev.dev_path();
    checks.extend(check_fits(
        &root_dev,
        root.dev.size,
        &ident.fs,
        backup.content_bytes,
        backup.entries,
    )?);
    let disk = disk_of(devices, &root.dev.disk)
        .cloned()
        .unwrap_or_else(|| {
            DeviceFacts::new(crate::identity::devices::BlockDev {
                name: root.dev.disk.clone(),
                disk: root.dev.disk.clone(),
                ..Default::default()
            })
        });
    // The ESP: the recorded one on the same disk, by PARTUUID, else the disk's ESP.
    let esp = esp_fs(backup).and_then(|fs| {
        let pu = backup
            .manifest
            .as_ref()
            .and_then(|m| m.source.esp_partition.as_ref())
            .and_then(|p| p.partuuid.clone())
            .unwrap_or_default();
        // For a root on md: the ESP on the disks of the array's legs.
        let leg_disks: Vec<String> = root_md(backup)
            .map(|md| md_leg_disks(devices, &md.array_uuid))
            .unwrap_or_default();
        let leg_disks = &leg_disks;
        let on_disk = || {
            devices.iter().filter(move |d| {
                d.dev.is_partition()
                    && (d.dev.disk == root.dev.disk || leg_disks.contains(&d.dev.disk))
            })
        };
        on_disk()
            .find(|d| eq_ci(d.dev.partuuid.as_deref(), &pu))
            .or_else(|| on_disk().find(|d| d.dev.type_guid.as_deref() == Some(ESP_TYPE)))
            .map(|d| (d, fs))
    });
    let mut notes = Vec::new();
    if esp_fs(backup).is_some() && esp.is_none() {
        notes.push(format!(
            "the backup has an ESP (/boot/efi) but {} has no ESP partition: its files go into the root filesystem",
            disk.dev.dev_path()
        ));
    }
    if let Some((e, fs)) = &esp {
        checks.push(check_writable(e, devices, backup)?);
        checks.extend(check_fits(&e.dev.dev_path(), e.dev.size, fs, 0, 0)?);
    }
    let mut steps = Vec::new();
    let fs_id = match root.dev.partno {
        Some(n) => format!("make-filesystem-p{n}"),
        None => format!("make-filesystem-{}", root.dev.name),
    };
    if is_md_array(root) {
        let (md_step, md_checks, md_notes) = start_md(backup, devices, root);
        steps.push(md_step);
        checks.extend(md_checks);
        notes.extend(md_notes);
    }
    steps.push(step(
        fs_id,
        root_dev.clone(),
        Some(contents(root)),
        Action::MakeFilesystem {
            role: "root".into(),
            fs: ident.fs.clone(),
            temporary_identity: true,
        },
    ));
    if let Some((e, fs)) = &esp {
        steps.push(step(
            format!("make-filesystem-p{}", e.dev.partno.unwrap_or(0)),
            e.dev.dev_path(),
            Some(contents(e)),
            Action::MakeFilesystem {
                role: "esp".into(),
                fs: fs.clone(),
                temporary_identity: false,
            },
        ));
    }
    steps.push(step(
        "restore-root".into(),
        root_dev.clone(),
        None,
        Action::RestoreRoot,
    ));
    if let Some((e, _)) = &esp {
        steps.push(step(
            "restore-esp".into(),
            e.dev.dev_path(),
            None,
            Action::RestoreEsp,
        ));
    }
    steps.push(step(
        "set-final-identity".into(),
        root_dev.clone(),
        None,
        Action::SetFinalIdentity {
            uuid: ident.fs.uuid.clone(),
            label: ident.fs.label.clone(),
        },
    ));
    if let Some(e) = root_layout(backup).and_then(|(l, _)| boot_next(l)) {
        steps.push(step(
            "set-boot-next".into(),
            "UEFI variables".into(),
            None,
            Action::SetBootNext {
                number: e.number,
                description: e.description.clone(),
            },
        ));
    }
    let mut mismatches = machine_mismatches(backup, machine);
    mismatches.extend(disk_mismatches(backup, &disk));
    checks.push(identity_check(&mismatches));
    Ok(Plan {
        mode: Mode::RecordedDisk,
        backup: backup_ref(backup),
        target_disk: target_disk(&disk),
        root_device: root_dev,
        esp_device: esp.as_ref().map(|(e, _)| e.dev.dev_path()),
        root_identity: ident.fs.clone(),
        identity_source: ident.source.clone(),
        steps,
        checks: {
            checks.insert(
                0,
                Check {
                    name: "target".into(),
                    ok: true,
                    detail: format!("root partition {} ({how})", describe_dev(root)),
                },
            );
            checks
        },
        needs_consent: !mismatches.is_empty(),
        identity_mismatches: mismatches,
        notes,
    })
}

/// An assembled md array (`md0`, `md127`): a whole device of its own, not a partition.
pub fn is_md_array(d: &DeviceFacts) -> bool {
    !d.dev.is_partition()
        && d.dev
            .name
            .strip_prefix("md")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The recorded md membership of the root: the root's recorded partition, when it was an md
/// member.
fn root_md(backup: &BackupFacts) -> Option<&MdMember> {
    match &root_layout(backup)?.1.content {
        PartitionContent::MdMember(m) if !m.array_uuid.is_empty() => Some(m),
        _ => None,
    }
}

/// The devices found whose md superblock names this array (`DeviceFacts::md_array` is
/// "UUID (metadata V)").
fn md_leg_facts<'a>(
    devices: &'a [DeviceFacts],
    array_uuid: &'a str,
) -> impl Iterator<Item = &'a DeviceFacts> + 'a {
    devices.iter().filter(move |d| {
        d.md_array
            .as_deref()
            .and_then(|a| a.split_whitespace().next())
            .is_some_and(|a| a.eq_ignore_ascii_case(array_uuid))
    })
}

/// The legs of this array found, as paths.
fn md_legs(devices: &[DeviceFacts], array_uuid: &str) -> Vec<String> {
    md_leg_facts(devices, array_uuid)
        .map(|d| d.dev.dev_path())
        .collect()
}

/// The disks holding the legs of this array.
fn md_leg_disks(devices: &[DeviceFacts], array_uuid: &str) -> Vec<String> {
    md_leg_facts(devices, array_uuid)
        .map(|d| d.dev.disk.clone())
        .collect()
}

/// Mode (a) with the root on an assembled md array: the step that makes it writable, the
/// check that says how many legs it has, and a note when it is degraded.
fn start_md(
    backup: &BackupFacts,
    devices: &[DeviceFacts],
    array: &DeviceFacts,
) -> (Step, Vec<Check>, Vec<String>) {
    let rec = root_md(backup);
    // A backup that did not record the array (taken from a copy of the root, or before
    // Lifeboat recorded md): the legs that show the array's own filesystem (metadata 1.0 and
    // 0.90 keep it at offset 0) name it.
    let uuid = rec.map(|m| m.array_uuid.clone()).unwrap_or_else(|| {
        devices
            .iter()
            .find(|d| {
                d.md_array.is_some()
                    && d.dev.fs_uuid().is_some()
                    && d.dev.fs_uuid() == array.dev.fs_uuid()
            })
            .and_then(|d| d.md_array.as_deref())
            .and_then(|a| a.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    });
    let legs = if uuid.is_empty() {
        Vec::new()
    } else {
        md_legs(devices, &uuid)
    };
    let raid_disks = rec.map(|m| m.raid_disks).unwrap_or(0);
    let degraded = raid_disks > 0 && (legs.len() as u32) < raid_disks;
    let dev = array.dev.dev_path();
    let mut notes = Vec::new();
    if degraded {
        notes.push(format!(
            "the md array {uuid} ({dev}) is DEGRADED: {} of its {raid_disks} legs were found ({}); the root is restored through it, and the missing leg must be added back (mdadm --add {dev} DEVICE) once the host runs",
            legs.len(),
            legs.join(", ")
        ));
    }
    let check =
        Check {
            name: "md".into(),
            ok: !degraded,
            detail: format!(
            "{dev}: md array {} with {} of {} legs ({}); written through the array, never one leg",
            if uuid.is_empty() { "(not recorded)" } else { uuid.as_str() },
            legs.len(),
            if raid_disks > 0 { raid_disks.to_string() } else { "?".into() },
            legs.join(", ")
        ),
        };
    (
        step(
            "start-md-array".into(),
            dev,
            None,
            Action::StartMdArray {
                array_uuid: uuid,
                legs,
                raid_disks,
                degraded,
            },
        ),
        vec![check],
        notes,
    )
}

fn identity_check(mismatches: &[String]) -> Check {
    Check {
        name: "identity".into(),
        ok: mismatches.is_empty(),
        detail: if mismatches.is_empty() {
            "this machine and disk match the backup's (or the backup records none)".into()
        } else {
            format!(
                "differs from the backup: {}; restoring needs explicit consent",
                mismatches.join("; ")
            )
        },
    }
}

/// The kernel name of partition `n` of `disk` (`sda3`, `nvme0n1p3`, `loop0p3`).
pub fn partition_name(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

/// Why a disk is not blank, for the refusal.
fn not_blank(d: &DeviceFacts, devices: &[DeviceFacts]) -> String {
    let parts: Vec<String> = devices
        .iter()
        .filter(|p| p.dev.is_partition() && p.dev.disk == d.dev.name)
        .map(describe_dev)
        .collect();
    if !parts.is_empty() {
        return format!("it has partitions: {}", parts.join(", "));
    }
    match &d.dev.fs {
        Some(fs) => format!("it holds a {} signature", fs.fstype),
        None => "it has a partition table or a signature".into(),
    }
}

/// Mode (b): the whole recorded layout recreated on a blank disk (for a root on md RAID, on
/// one blank disk per recorded disk of the array), then the restore.
fn blank_disk(
    backup: &BackupFacts,
    ident: &RootIdentity,
    devices: &[DeviceFacts],
    disks: &[&DeviceFacts],
    machine: &MachineIdentity,
) -> Result<Plan, PlanError> {
    let Some(&disk) = disks.first() else {
        return Err(PlanError::NoSuchDevice {
            request: "target disk (none named)".into(),
        });
    };
    let device = disk.dev.dev_path();
    let mut checks = Vec::new();
    for d in disks {
        checks.push(check_writable(d, devices, backup)?);
        if !d.blank {
            return Err(PlanError::DiskNotBlank {
                found: not_blank(d, devices),
                device: d.dev.dev_path(),
            });
        }
    }
    let has_disks = backup
        .manifest
        .as_ref()
        .is_some_and(|m| !m.source.disks.is_empty());
    if backup.kind != BackupKind::Lifeboat || !has_disks {
        return Err(PlanError::NoDiskLayout { device });
    }
    let (layout, root_part) = root_layout(backup).ok_or_else(|| PlanError::NoRootInLayout {
        detail: format!(
            "recorded root PARTUUID {}",
            backup
                .manifest
                .as_ref()
                .and_then(|m| m.source.partition.partuuid.as_deref())
                .unwrap_or("unknown")
        ),
    })?;
    // The recorded disks to recreate, each on the blank disk named in the same place: the
    // root's disk, or for a root on md every recorded disk holding one of its legs (in the
    // recorded order).
    let root_md = root_md(backup).cloned();
    let recorded: Vec<&DiskLayout> = match &root_md {
        Some(md) => backup
            .manifest
            .as_ref()
            .map(|m| {
                m.source
                    .disks
                    .iter()
                    .filter(|l| l.partitions.iter().any(|p| in_array(p, &md.array_uuid)))
                    .collect()
            })
            .unwrap_or_default(),
        None => vec![layout],
    };
    if recorded.len() != disks.len() {
        return Err(PlanError::MdDiskCount {
            needed: recorded.len(),
            named: disks.len(),
        });
    }
    let targets: Vec<(&DiskLayout, &DeviceFacts)> = recorded
        .iter()
        .copied()
        .zip(disks.iter().copied())
        .collect();
    for (l, d) in &targets {
        let dev = d.dev.dev_path();
        checks.push(Check {
            name: "blank".into(),
            ok: true,
            detail: format!("{dev} has no partition table and no signature"),
        });
        if d.dev.size < l.size_bytes {
            return Err(PlanError::DiskTooSmall {
                device: dev,
                size: d.dev.size,
                needed: l.size_bytes,
            });
        }
        checks.push(Check {
            name: "disk-size".into(),
            ok: true,
            detail: format!(
                "{dev}: {} for the recorded disk of {}",
                human_bytes(d.dev.size),
                human_bytes(l.size_bytes)
            ),
        });
    }
    // The root's own disk among the targets (for the partition path of a plain root).
    let root_disk = targets
        .iter()
        .find(|(l, _)| std::ptr::eq(*l, layout))
        .map(|(_, d)| *d)
        .unwrap_or(disk);
    let md_dev = root_md.as_ref().map(|_| free_md_path(devices));
    let root_dev = md_dev
        .clone()
        .unwrap_or_else(|| partition_path(&root_disk.dev.name, root_part.number));
    checks.extend(check_fits(
        &root_dev,
        root_part.size_bytes,
        &ident.fs,
        backup.content_bytes,
        backup.entries,
    )?);
    let esp_pu = backup
        .manifest
        .as_ref()
        .and_then(|m| m.source.esp_partition.as_ref())
        .and_then(|p| p.partuuid.clone())
        .unwrap_or_default();
    let esp_rec = esp_fs(backup);
    // Step ids: the first disk's as they always were, the others' with "-dN".
    let sfx = |i: usize| {
        if i == 0 {
            String::new()
        } else {
            format!("-d{}", i + 1)
        }
    };
    let mut steps = Vec::new();
    for (i, (l, d)) in targets.iter().enumerate() {
        let dev = d.dev.dev_path();
        steps.push(step(
            format!("create-table{}", sfx(i)),
            dev,
            Some("nothing (a blank disk)".into()),
            Action::CreateTable {
                table_type: l.table_type.clone(),
                table_id: l.table_id.clone(),
                sector_size: l.sector_size,
                mbr_boot_code: l.boot.mbr_boot_code.is_some(),
            },
        ));
        for p in &l.partitions {
            steps.push(step(
                format!("create-partition{}-p{}", sfx(i), p.number),
                partition_path(&d.dev.name, p.number),
                None,
                Action::CreatePartition {
                    number: p.number,
                    start_bytes: p.start_bytes,
                    size_bytes: p.size_bytes,
                    type_id: p.type_id.clone(),
                    partuuid: p.partuuid.clone(),
                    name: p.name.clone(),
                    attributes: p.attributes,
                    mbr_flags: p.mbr_flags,
                },
            ));
        }
    }
    let mut notes = Vec::new();
    if let (Some(md), Some(md_dev)) = (&root_md, &md_dev) {
        let mut members: Vec<String> = vec!["missing".into(); md.raid_disks as usize];
        for (l, d) in &targets {
            for p in l.partitions.iter() {
                if let PartitionContent::MdMember(m) = &p.content {
                    if m.array_uuid.eq_ignore_ascii_case(&md.array_uuid) {
                        let r = m.role.unwrap_or(members.len() as u32) as usize;
                        if members.len() <= r {
                            members.resize(r + 1, "missing".into());
                        }
                        members[r] = partition_path(&d.dev.name, p.number);
                    }
                }
            }
        }
        if members.iter().any(|m| m == "missing") {
            notes.push(format!(
                "the md array {} is created DEGRADED: the recorded layout has no partition for every role ({})",
                md.array_uuid,
                members.join(", ")
            ));
        }
        checks.push(Check {
            name: "md".into(),
            ok: true,
            detail: format!(
                "{md_dev}: md {} array {} recreated with metadata {} on {}",
                md.level,
                md.array_uuid,
                md.metadata,
                members.join(", ")
            ),
        });
        steps.push(step(
            "create-md-array".into(),
            md_dev.clone(),
            None,
            Action::CreateMdArray {
                array_uuid: md.array_uuid.clone(),
                name: md.name.clone(),
                level: md.level.clone(),
                metadata: md.metadata.clone(),
                members,
            },
        ));
        steps.push(step(
            "make-filesystem-md".into(),
            md_dev.clone(),
            None,
            Action::MakeFilesystem {
                role: "root".into(),
                fs: ident.fs.clone(),
                temporary_identity: true,
            },
        ));
    }
    let mut esp_device = None;
    for (i, (l, d)) in targets.iter().enumerate() {
        for p in &l.partitions {
            let dev = partition_path(&d.dev.name, p.number);
            let is_root = std::ptr::eq(p, root_part);
            // The root's legs: the array is made on them above.
            if root_md
                .as_ref()
                .is_some_and(|md| in_array(p, &md.array_uuid))
            {
                continue;
            }
            let is_esp = eq_ci(Some(p.partuuid.as_str()), &esp_pu)
                || (esp_pu.is_empty() && p.mountpoint.as_deref() == Some("/boot/efi"));
            if is_esp && !is_root && matches!(p.content, PartitionContent::Filesystem(_)) {
                esp_device.get_or_insert_with(|| dev.clone());
            }
            let action = partition_action(
                p,
                &dev,
                &device,
                is_root,
                is_esp,
                ident,
                esp_rec.as_ref(),
                &mut notes,
            )?;
            let name = action.name();
            steps.push(step(
                format!("{name}{}-p{}", sfx(i), p.number),
                dev,
                None,
                action,
            ));
        }
    }
    steps.push(step(
        "restore-root".into(),
        root_dev.clone(),
        None,
        Action::RestoreRoot,
    ));
    if let Some(e) = &esp_device {
        steps.push(step(
            "restore-esp".into(),
            e.clone(),
            None,
            Action::RestoreEsp,
        ));
    } else if esp_rec.is_some() {
        notes.push(format!(
            "the backup has an ESP (/boot/efi) but the recorded layout of {} has none: its files go into the root filesystem",
            device
        ));
    }
    steps.push(step(
        "set-final-identity".into(),
        root_dev.clone(),
        None,
        Action::SetFinalIdentity {
            uuid: ident.fs.uuid.clone(),
            label: ident.fs.label.clone(),
        },
    ));
    let mut entries: Vec<&crate::archive::disk_layout::UefiBootEntry> = Vec::new();
    for (l, _) in &targets {
        for e in &l.boot.uefi_entries {
            if !entries.iter().any(|x| x.number == e.number) {
                entries.push(e);
            }
        }
    }
    for e in &entries {
        steps.push(step(
            format!("set-uefi-boot-entry-{:04X}", e.number),
            "UEFI variables".into(),
            None,
            Action::SetUefiBootEntry {
                entry: (*e).clone(),
            },
        ));
    }
    if let Some(e) = boot_next(layout) {
        steps.push(step(
            "set-boot-next".into(),
            "UEFI variables".into(),
            None,
            Action::SetBootNext {
                number: e.number,
                description: e.description.clone(),
            },
        ));
    }
    let mismatches = machine_mismatches(backup, machine);
    checks.push(identity_check(&mismatches));
    Ok(Plan {
        mode: Mode::BlankDisk,
        backup: backup_ref(backup),
        target_disk: target_disk(disk),
        root_device: root_dev,
        esp_device,
        root_identity: ident.fs.clone(),
        identity_source: ident.source.clone(),
        steps,
        checks,
        needs_consent: !mismatches.is_empty(),
        identity_mismatches: mismatches,
        notes,
    })
}

/// True when the recorded partition is a leg of this md array.
fn in_array(p: &PartitionLayout, array_uuid: &str) -> bool {
    matches!(&p.content, PartitionContent::MdMember(m) if m.array_uuid.eq_ignore_ascii_case(array_uuid))
}

/// The first /dev/mdN no device found uses (a pure choice: the plan does no I/O).
fn free_md_path(devices: &[DeviceFacts]) -> String {
    let n = (0u32..)
        .find(|n| !devices.iter().any(|d| d.dev.name == format!("md{n}")))
        .unwrap_or(0);
    format!("/dev/md{n}")
}

/// What mode (b) does with one recorded partition (not a leg of the root's array).
#[allow(clippy::too_many_arguments)]
fn partition_action(
    p: &PartitionLayout,
    dev: &str,
    device: &str,
    is_root: bool,
    is_esp: bool,
    ident: &RootIdentity,
    esp_rec: Option<&FilesystemIdentity>,
    notes: &mut Vec<String>,
) -> Result<Action, PlanError> {
    let role = p
        .mountpoint
        .clone()
        .unwrap_or_else(|| format!("partition {}", p.number));
    Ok(match &p.content {
        _ if is_root => Action::MakeFilesystem {
            role: "root".into(),
            fs: ident.fs.clone(),
            temporary_identity: true,
        },
        PartitionContent::Filesystem(fs) if is_esp => Action::MakeFilesystem {
            role: "esp".into(),
            fs: esp_rec.cloned().unwrap_or_else(|| fs.clone()),
            temporary_identity: false,
        },
        PartitionContent::Filesystem(fs) => Action::MakeEmptyFilesystem {
            role,
            fs: fs.clone(),
        },
        PartitionContent::LifeboatStore(fs) => Action::MakeEmptyFilesystem {
            role: "Lifeboat store (empty)".into(),
            fs: fs.clone(),
        },
        PartitionContent::XenServerBackup(fs) => Action::MakeEmptyFilesystem {
            role: "XenServer backup partition (empty)".into(),
            fs: fs.clone(),
        },
        PartitionContent::Swap { uuid, label } => Action::MakeSwap {
            uuid: uuid.clone(),
            label: label.clone(),
        },
        PartitionContent::LvmPv { .. } => {
            notes.push(format!(
                "{dev} held an LVM physical volume (such as the local SR): VM data is not part of a dom0 backup; it is recreated as an empty partition, never formatted"
            ));
            Action::LeaveEmpty {
                reason:
                    "an LVM physical volume (the local SR?): VM data is not part of a dom0 backup"
                        .into(),
            }
        }
        PartitionContent::BiosBoot { data, b3 } => Action::WriteBiosBoot {
            data: data.clone(),
            b3: b3.clone(),
        },
        PartitionContent::MdMember(md) => {
            // Only the root's array is recreated; another array's content is not known.
            return Err(PlanError::Unsupported {
                device: device.into(),
                what: format!(
                    "the md RAID member {dev} (array {}, metadata {}), which does not hold the root",
                    md.array_uuid, md.metadata
                ),
            });
        }
        PartitionContent::Other { fstype } => Action::LeaveEmpty {
            reason: format!("held {fstype}, which Lifeboat does not recreate"),
        },
        PartitionContent::Unknown => Action::LeaveEmpty {
            reason: "held no recognised content".into(),
        },
    })
}

fn partition_path(disk: &str, n: u32) -> String {
    crate::identity::blockdev::dev_path(&partition_name(disk, n))
        .to_string_lossy()
        .into_owned()
}
