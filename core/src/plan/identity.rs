//! The identity the restored root ends with. It always comes from the backup, never from the
//! partition being overwritten: the manifest's recorded filesystem for a Lifeboat generation;
//! for a XenServer backup tree or a plain `xe host-backup` generation (no recorded identity),
//! the backup's own `etc/fstab` (the `LABEL=` of `/`), `boot/grub/grub.cfg` (`root=LABEL=` or
//! `root=UUID=`) and `etc/xensource-inventory`, as XenServer's installer reads them.

use super::error::PlanError;
use super::facts::{BackupFacts, BackupKind, SystemFiles};
use crate::archive::manifest::FilesystemIdentity;
use crate::identity::inventory::parse_inventory;

/// The final identity of the root and a sentence saying where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootIdentity {
    pub fs: FilesystemIdentity,
    pub source: String,
}

/// The device `/` is mounted from in an fstab, and its type.
fn fstab_root(fstab: &str) -> Option<(String, Option<String>)> {
    fstab.lines().find_map(|l| {
        let l = l.trim();
        if l.starts_with('#') {
            return None;
        }
        let mut w = l.split_whitespace();
        let src = w.next()?;
        (w.next()? == "/").then(|| (src.to_string(), w.next().map(str::to_string)))
    })
}

/// The `root=` of the kernel lines of a grub.cfg (`linux`, `module`, `module2`, ...): the
/// first one that names a LABEL= or UUID=.
fn grub_root(grub_cfg: &str) -> Option<String> {
    grub_cfg.lines().find_map(|l| {
        let l = l.trim();
        if l.starts_with('#') {
            return None;
        }
        l.split_whitespace()
            .filter_map(|w| w.strip_prefix("root="))
            .find(|v| v.starts_with("LABEL=") || v.starts_with("UUID="))
            .map(str::to_string)
    })
}

/// Splits `LABEL=x` / `UUID=x` into (label, uuid).
fn split_spec(spec: &str) -> (Option<String>, Option<String>) {
    let v = |s: &str| Some(s.trim_matches('"').to_string()).filter(|s| !s.is_empty());
    if let Some(l) = spec.strip_prefix("LABEL=") {
        (v(l), None)
    } else if let Some(u) = spec.strip_prefix("UUID=") {
        (None, v(u).map(|u| u.to_ascii_lowercase()))
    } else {
        (None, None)
    }
}

/// The root's identity from a backup's own system files, as XenServer's installer decides it:
/// the `LABEL=` (or `UUID=`) of `/` in `etc/fstab`, cross-checked with `root=` in grub.cfg;
/// the filesystem type from the fstab (XenServer's ext3 when it says none). Refused, with the
/// reason, when the files are missing, disagree, or name the root by neither label nor UUID.
pub fn identity_from_system_files(
    fstab: Option<&str>,
    grub_cfg: Option<&str>,
    inventory: Option<&str>,
) -> Result<RootIdentity, PlanError> {
    let no = |reason: String| PlanError::NoIdentity { reason };
    let fstab = fstab.ok_or_else(|| no("the backup has no etc/fstab".into()))?;
    let (spec, fstype) =
        fstab_root(fstab).ok_or_else(|| no("the backup's etc/fstab has no line for /".into()))?;
    let (mut label, mut uuid) = split_spec(&spec);
    let mut from = vec![format!("etc/fstab ({spec} for /)")];
    if let Some(g) = grub_cfg.and_then(grub_root) {
        let (gl, gu) = split_spec(&g);
        match (&label, &gl) {
            (Some(a), Some(b)) if a != b => {
                return Err(no(format!(
                    "etc/fstab mounts / by LABEL={a} but grub.cfg boots root=LABEL={b}"
                )))
            }
            (None, Some(_)) => label = gl.clone(),
            _ => {}
        }
        match (&uuid, &gu) {
            (Some(a), Some(b)) if a != b => {
                return Err(no(format!(
                    "etc/fstab mounts / by UUID={a} but grub.cfg boots root=UUID={b}"
                )))
            }
            (None, Some(_)) => uuid = gu.clone(),
            _ => {}
        }
        from.push(format!("grub.cfg (root={g})"));
    }
    if label.is_none() && uuid.is_none() {
        return Err(no(format!(
            "etc/fstab mounts / by {spec}, not LABEL= or UUID=, and {}",
            if grub_cfg.is_some() {
                "grub.cfg boots no root=LABEL= or root=UUID="
            } else {
                "the backup has no boot/grub/grub.cfg"
            }
        )));
    }
    let inv = inventory.map(parse_inventory);
    let fstype = match fstype.filter(|t| t.starts_with("ext")) {
        Some(t) => t,
        // XenServer's installer makes the root ext3 (it is the fstab that says otherwise).
        None if inv.is_some() => "ext3".into(),
        None => "ext4".into(),
    };
    if let Some(inv) = &inv {
        let install = inv
            .get("INSTALLATION_UUID")
            .map(String::as_str)
            .unwrap_or("unknown");
        from.push(format!("etc/xensource-inventory (installation {install})"));
    }
    Ok(RootIdentity {
        fs: FilesystemIdentity {
            fstype,
            uuid,
            label,
            ..Default::default()
        },
        source: format!("the backup's {}", from.join(", ")),
    })
}

fn from_files(files: Option<&SystemFiles>, what: &str) -> Result<RootIdentity, PlanError> {
    let files = files.ok_or_else(|| PlanError::NoIdentity {
        reason: format!(
            "{what} records no identity and its etc/fstab, grub.cfg and inventory were not read"
        ),
    })?;
    identity_from_system_files(
        files.fstab.as_deref(),
        files.grub_cfg.as_deref(),
        files.inventory.as_deref(),
    )
}

/// The final identity of the root of `backup`.
pub fn root_identity(backup: &BackupFacts) -> Result<RootIdentity, PlanError> {
    match (backup.kind, &backup.manifest) {
        (BackupKind::Lifeboat, Some(m)) => {
            let fs = &m.source.filesystem;
            let has = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
            if fs.fstype.starts_with("ext") && (has(&fs.uuid) || has(&fs.label)) {
                return Ok(RootIdentity {
                    fs: fs.clone(),
                    source: format!(
                        "the manifest (the root filesystem recorded at backup time{})",
                        fs.device
                            .as_deref()
                            .map(|d| format!(", {d}"))
                            .unwrap_or_default()
                    ),
                });
            }
            // A backup of a directory that was not a filesystem of its own: the tree's files.
            from_files(backup.system_files.as_ref(), "the manifest").map_err(|e| match e {
                PlanError::NoIdentity { reason } => {
                    PlanError::NoIdentity {
                        reason: format!(
                        "the manifest records no ext filesystem for the root ({}), and {reason}",
                        if fs.fstype.is_empty() { "none" } else { &fs.fstype }
                    ),
                    }
                }
                e => e,
            })
        }
        (BackupKind::Lifeboat, None) | (BackupKind::PlainTar, _) => {
            from_files(backup.system_files.as_ref(), "this plain tar generation")
        }
        (BackupKind::XenServerTree, _) => from_files(
            backup.system_files.as_ref(),
            "this XenServer backup partition",
        ),
    }
}
