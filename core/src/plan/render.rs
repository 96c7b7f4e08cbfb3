//! A plan as lines for a person: what is restored, onto which disk, every step with what it
//! destroys, the checks, and the identity differences. The recovery image's menu shows these
//! before asking "yes"; `lifeboat plan` prints them.

use super::model::{Action, Plan, PARTIAL_LABEL};
use crate::archive::manifest::FilesystemIdentity;
use crate::progress::human_bytes;

fn fs_words(fs: &FilesystemIdentity) -> String {
    let mut s = if fs.fstype.is_empty() {
        "a filesystem".to_string()
    } else {
        fs.fstype.clone()
    };
    if fs.fat_bits > 0 {
        s.push_str(&format!(" (FAT{}", fs.fat_bits));
        if fs.cluster_size > 0 {
            s.push_str(&format!(", {}-byte clusters", fs.cluster_size));
        }
        s.push(')');
    }
    s.push_str(&format!(
        " label {} UUID {}",
        fs.label.as_deref().unwrap_or("(none)"),
        fs.uuid.as_deref().unwrap_or("(new)")
    ));
    s
}

/// What one action does, in words.
pub fn describe_action(a: &Action) -> String {
    match a {
        Action::CreateTable {
            table_type,
            table_id,
            mbr_boot_code,
            ..
        } => format!(
            "create a {table_type} partition table (id {table_id}){}",
            if *mbr_boot_code {
                " with the recorded MBR boot code"
            } else {
                ""
            }
        ),
        Action::CreatePartition {
            number,
            start_bytes,
            size_bytes,
            type_id,
            partuuid,
            name,
            ..
        } => format!(
            "create partition {number} at byte {start_bytes}, {} ({}), type {type_id}, PARTUUID {partuuid}",
            human_bytes(*size_bytes),
            name.as_deref().unwrap_or("no name")
        ),
        Action::MakeFilesystem {
            role,
            fs,
            temporary_identity: true,
        } => format!(
            "make the {role} filesystem: {} with label {PARTIAL_LABEL} and a temporary UUID until the end",
            fs.fstype
        ),
        Action::MakeFilesystem { role, fs, .. } => {
            format!("make the {role} filesystem: {}", fs_words(fs))
        }
        Action::MakeSwap { uuid, label } => format!(
            "make swap: label {} UUID {}",
            label.as_deref().unwrap_or("(none)"),
            uuid.as_deref().unwrap_or("(new)")
        ),
        Action::MakeEmptyFilesystem { role, fs } => {
            format!("make an empty {role} filesystem: {}", fs_words(fs))
        }
        Action::LeaveEmpty { reason } => format!("leave empty, never formatted: {reason}"),
        Action::WriteBiosBoot { b3, .. } => {
            format!("write the recorded BIOS boot partition (GRUB core.img, BLAKE3 {})", &b3[..b3.len().min(16)])
        }
        Action::RestoreRoot => "restore the backup into the root filesystem".into(),
        Action::RestoreEsp => "restore /boot/efi into the ESP".into(),
        Action::SetFinalIdentity { uuid, label } => format!(
            "set the recorded label {} and UUID {} on the root",
            label.as_deref().unwrap_or("(none)"),
            uuid.as_deref().unwrap_or("(kept)")
        ),
        Action::SetUefiBootEntry { entry } => format!(
            "write UEFI boot entry Boot{:04X} \"{}\" ({})",
            entry.number, entry.description, entry.loader_path
        ),
        Action::SetBootNext {
            number,
            description,
        } => format!("boot Boot{number:04X} \"{description}\" next (BootNext)"),
        Action::StartMdArray {
            array_uuid,
            legs,
            raid_disks,
            degraded,
        } => format!(
            "make the md array {array_uuid} writable (legs {}){}",
            legs.join(", "),
            if *degraded {
                format!(
                    ": DEGRADED, {} of its {raid_disks} legs found; the missing leg must be added back with mdadm --add after the restore",
                    legs.len()
                )
            } else {
                String::new()
            }
        ),
        Action::CreateMdArray {
            array_uuid,
            name,
            level,
            metadata,
            members,
        } => format!(
            "create the md {level} array {array_uuid} (metadata {metadata}, name {}) on {} by role, then sync the legs",
            name.as_deref().unwrap_or("(none)"),
            members.join(", ")
        ),
    }
}

/// The plan as screen lines.
pub fn render(p: &Plan) -> Vec<String> {
    let b = &p.backup;
    let mut out = vec![
        format!("Restore plan: {}", p.mode.describe()),
        format!(
            "  backup: {} {}of host {} taken {}{}, on {}",
            b.kind,
            b.generation
                .as_deref()
                .map(|g| format!("generation {g} "))
                .unwrap_or_default(),
            b.host,
            b.created,
            b.product_version
                .as_deref()
                .map(|v| format!(" (product {v})"))
                .unwrap_or_default(),
            b.device
        ),
    ];
    let d = &p.target_disk;
    out.push(format!(
        "  disk:   {} model {}, serial {}, {}{}",
        d.dev_path,
        d.model.as_deref().unwrap_or("unknown"),
        d.serial.as_deref().unwrap_or("unknown"),
        human_bytes(d.size_bytes),
        d.by_id
            .as_deref()
            .map(|i| format!(", {i}"))
            .unwrap_or_default()
    ));
    out.push(format!(
        "  root:   {} ends as {} (from {})",
        p.root_device,
        fs_words(&p.root_identity),
        p.identity_source
    ));
    if let Some(e) = &p.esp_device {
        out.push(format!("  ESP:    {e}"));
    }
    out.push("Steps:".into());
    for (i, s) in p.steps.iter().enumerate() {
        out.push(format!(
            "  {:>2}. {}: {}",
            i + 1,
            s.device,
            describe_action(&s.action)
        ));
        if let Some(d) = &s.destroys {
            out.push(format!("      ERASES what is on {} now: {d}", s.device));
        }
    }
    out.push("Checks:".into());
    for c in &p.checks {
        out.push(format!(
            "  [{}] {}: {}",
            if c.ok { "ok" } else { "!!" },
            c.name,
            c.detail
        ));
    }
    for n in &p.notes {
        out.push(format!("Note: {n}"));
    }
    if p.needs_consent {
        out.push("WARNING: this backup was taken on another machine or disk:".into());
        for m in &p.identity_mismatches {
            out.push(format!("  - {m}"));
        }
        out.push("Restoring it here needs explicit consent (lifeboat.allow-other-host, or \"yes\" at the prompt).".into());
    }
    out
}
