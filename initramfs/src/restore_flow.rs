//! The restore: verify first (nothing destructive before), check the machine and the disk
//! against the backup's identity, journal the start, recreate the root filesystem (and the
//! ESP) with their original identity, extract (or copy a XenServer tree), sync, journal the
//! end.

use crate::cmdline::Options;
use crate::console::{flush_input, read_line, say};
use crate::copytree;
use crate::discover::{self, Backup, BackupKind, Target};
use crate::mkfs;
use crate::mounts;
use crate::probe::BlockDev;
use crate::progress_line::LineProgress;
use crate::store_view;
use anyhow::{anyhow, Context, Result};
use lifeboat_core::archive::manifest::FilesystemIdentity;
use lifeboat_core::archive::Manifest;
use lifeboat_core::progress::human_bytes;
use lifeboat_core::progress::Progress;
use std::path::PathBuf;

pub fn describe_dev(d: &BlockDev) -> String {
    let mut s = format!("{} ({}", d.dev_path(), human_bytes(d.size));
    if let Some(l) = d.label() {
        s.push_str(&format!(", label {l}"));
    }
    if !d.fstype().is_empty() {
        s.push_str(&format!(", {}", d.fstype()));
    }
    s.push(')');
    s
}

pub fn describe_disk(devs: &[BlockDev], disk: &str) -> String {
    match devs.iter().find(|d| d.name == disk) {
        Some(d) => format!(
            "disk /dev/{disk}: model {}, serial {}, {}{}",
            d.model.as_deref().unwrap_or("unknown"),
            d.serial.as_deref().unwrap_or("unknown"),
            human_bytes(d.size),
            if d.removable { ", removable" } else { "" }
        ),
        None => format!("disk /dev/{disk}"),
    }
}

fn read_dmi(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/dmi/id/{name}"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Differences between this machine/disk and the ones the backup was taken on.
pub fn identity_mismatches(m: &Manifest, devs: &[BlockDev], target: &Target) -> Vec<String> {
    let mut out = Vec::new();
    let eq = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    if let Some(want) = m.machine.product_uuid.as_deref().filter(|s| !s.is_empty()) {
        match read_dmi("product_uuid") {
            Some(have) if eq(&have, want) => {}
            have => out.push(format!(
                "machine UUID: backup {want}, this machine {}",
                have.as_deref().unwrap_or("unknown")
            )),
        }
    }
    if let Some(want) = m
        .machine
        .product_serial
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        match read_dmi("product_serial") {
            Some(have) if eq(&have, want) => {}
            have => out.push(format!(
                "machine serial: backup {want}, this machine {}",
                have.as_deref().unwrap_or("unknown")
            )),
        }
    }
    let disk = devs.iter().find(|d| d.name == target.root.disk);
    let rec = &m.source.disk;
    if let Some(disk) = disk {
        if let (Some(want), Some(have)) = (rec.serial.as_deref(), disk.serial.as_deref()) {
            if !want.is_empty() && !eq(want, have) {
                out.push(format!(
                    "disk serial: backup {want}, /dev/{} {have}",
                    disk.name
                ));
            }
        }
        if let (Some(want), Some(have)) = (rec.model.as_deref(), disk.model.as_deref()) {
            if !want.is_empty() && !eq(want, have) {
                out.push(format!(
                    "disk model: backup {want}, /dev/{} {have}",
                    disk.name
                ));
            }
        }
        if rec.size_bytes > 0 && rec.size_bytes != disk.size {
            out.push(format!(
                "disk size: backup {} bytes, /dev/{} {} bytes",
                rec.size_bytes, disk.name, disk.size
            ));
        }
    }
    out
}

/// The screen lines of a failed restore or verify: what was not done and what to do, then
/// every cause down to the first (the device, the program, the kernel's error).
pub fn failure_lines(title: &str, e: &anyhow::Error) -> Vec<String> {
    let mut out = vec![format!("{title}: {e}")];
    out.extend(e.chain().skip(1).map(|c| format!("  because: {c}")));
    out
}

/// Asks for an explicit "yes" on any console. `false` on anything else.
pub fn ask_yes(question: &str) -> bool {
    flush_input();
    say(question);
    say("Type yes and press Enter to continue, anything else to go back:");
    matches!(read_line(None), Some((l, _)) if l.eq_ignore_ascii_case("yes"))
}

/// How confirmations are obtained.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Ask on the consoles.
    Ask,
    /// `lifeboat.yes`: the restore itself is confirmed; an identity mismatch still needs
    /// `lifeboat.allow-other-host`.
    Unattended,
}

/// Reads the whole backup and checks it. Nothing is written anywhere.
pub fn verify(b: &Backup) -> Result<String> {
    match &b.kind {
        BackupKind::Lifeboat { archive, .. } => {
            say(&format!(
                "Verifying {} (every checksum, the trailer) ...",
                archive.display()
            ));
            let p = LineProgress::new("verify");
            p.set_total(Some(b.size));
            let r = store_view::verify(archive, &p);
            p.finish();
            r
        }
        BackupKind::XenTree { inventory } => {
            for f in ["etc/xensource-inventory", "etc/fstab"] {
                if !b.mount.join(f).exists() {
                    return Err(anyhow!(
                        "{} has no {f}: it is not a complete XenServer backup",
                        b.device.dev_path()
                    ));
                }
            }
            Ok(format!(
                "XenServer backup partition {} with product {} (installation {}); XenServer trees carry no checksums",
                b.device.dev_path(),
                b.product_version,
                inventory.get("INSTALLATION_UUID").map(String::as_str).unwrap_or("unknown")
            ))
        }
    }
}

fn journal(b: &Backup, event: &str, detail: &str, request: Option<&str>) {
    let BackupKind::Lifeboat { generation, .. } = &b.kind else {
        return;
    };
    let r = mounts::remount(&b.mount, false)
        .and_then(|()| store_view::journal(&b.mount, event, generation, detail, request));
    let _ = mounts::syncfs(&b.mount);
    let _ = mounts::remount(&b.mount, true);
    if let Err(e) = r {
        say(&format!(
            "Warning: could not write \"{event}\" to the store's journal on {}: {e:#}",
            b.device.dev_path()
        ));
    }
}

fn unmount_all_of(dev: &str) -> Result<()> {
    for dir in mounts::mounted_at(dev) {
        mounts::unmount(&dir)
            .with_context(|| format!("{dev} is in use and cannot be unmounted"))?;
    }
    Ok(())
}

struct Mounted {
    dirs: Vec<PathBuf>,
}

impl Mounted {
    fn release(&mut self) -> Result<()> {
        while let Some(d) = self.dirs.pop() {
            let _ = mounts::syncfs(&d);
            mounts::unmount(&d)?;
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// The whole restore of `b`. Returns a summary on success; every error says what was touched.
pub fn restore(b: &Backup, devs: &[BlockDev], opts: &Options, confirm: Confirm) -> Result<String> {
    let target = b.target.clone().map_err(anyhow::Error::msg)?;
    let root = &target.root;
    say("");
    say(&format!(
        "Restore {} backup of {} taken {}",
        b.kind_name(),
        b.host,
        b.time
    ));
    say(&format!("  from {}", describe_dev(&b.device)));
    say(&format!(
        "  onto {} (found by {})",
        describe_dev(root),
        target.how
    ));
    say(&format!("  on   {}", describe_disk(devs, &root.disk)));
    if let Some(e) = &target.esp {
        say(&format!("  ESP  {}", describe_dev(e)));
    }

    // 1. Verify: nothing destructive before this succeeds.
    let summary = verify(b).with_context(|| {
        format!(
            "the backup failed verification. Nothing was written to {}. Choose another generation, or run `lifeboat verify` on the host to find the damage",
            root.dev_path()
        )
    })?;
    say(&format!("Verified: {summary}"));

    // 2. Identity.
    if let BackupKind::Lifeboat { manifest, .. } = &b.kind {
        let diffs = identity_mismatches(manifest, devs, &target);
        if !diffs.is_empty() {
            say("");
            say("WARNING: this backup was taken on another machine or disk:");
            for d in &diffs {
                say(&format!("  - {d}"));
            }
            say("Restoring a host's root onto another machine clones its identity: two hosts with the");
            say("same installation and control-domain UUIDs in one pool corrupt the pool database, and the");
            say("wrong disk may be overwritten. Restore onto other hardware only to replace the original.");
            if opts.allow_other_host {
                say("lifeboat.allow-other-host is set: continuing.");
            } else if confirm == Confirm::Unattended {
                return Err(anyhow!(
                    "refused: identity mismatch and no lifeboat.allow-other-host on the kernel command line. Nothing was written to {}.",
                    root.dev_path()
                ));
            } else if !ask_yes("Restore onto this machine anyway?") {
                return Err(anyhow!(
                    "cancelled: nothing was written to {}",
                    root.dev_path()
                ));
            }
        }
    }

    // 3. Confirmation.
    if confirm == Confirm::Ask
        && !ask_yes(&format!(
            "Everything on {} will be ERASED and replaced by this backup.",
            describe_dev(root)
        ))
    {
        return Err(anyhow!(
            "cancelled: nothing was written to {}",
            root.dev_path()
        ));
    }

    // The programs the restore runs, found before anything is written.
    let tools =
        mkfs::ext_tools().with_context(|| format!("nothing was written to {}", root.dev_path()))?;

    // 4. Journal the start (the next boot of this image finishes an interrupted restore).
    // From here to "restore-done", Ctrl-Alt-Del is ignored.
    let _busy = crate::power::Busy::start();
    journal(
        b,
        "restore-started",
        &root.dev_path(),
        opts.request.as_deref(),
    );

    // 5. Recreate the root filesystem.
    unmount_all_of(&root.dev_path())?;
    let fs_id: FilesystemIdentity = match &b.kind {
        BackupKind::Lifeboat { manifest, .. } => manifest.source.filesystem.clone(),
        BackupKind::XenTree { .. } => FilesystemIdentity {
            fstype: if b.device.fstype() == "ext4" {
                "ext4".into()
            } else {
                "ext3".into()
            },
            // After an interrupted restore the partition carries the temporary identity:
            // the label comes from the tree's fstab then, and the UUID stays a new one.
            uuid: root
                .fs_uuid()
                .filter(|_| root.label() != Some(mkfs::PARTIAL_LABEL))
                .map(str::to_string),
            label: match root.label() {
                Some(l) if l == mkfs::PARTIAL_LABEL => discover::fstab_root_label(
                    &std::fs::read_to_string(b.mount.join("etc/fstab")).unwrap_or_default(),
                ),
                l => l.map(str::to_string),
            },
            ..Default::default()
        },
    };
    // Label and UUID stay temporary until the end: a host that boots by either must not boot
    // a half-restored root.
    say(&format!(
        "Creating {} on {} (label {} and a temporary UUID until the restore is complete) ...",
        fs_id.fstype,
        root.dev_path(),
        mkfs::PARTIAL_LABEL
    ));
    mkfs::make_ext(&tools, &mkfs::partial_identity(&fs_id), &root.dev_path()).with_context(|| {
        format!(
            "cannot create the root filesystem: {} may now be unusable; the backup is intact: try again from the menu",
            root.dev_path()
        )
    })?;
    crate::power::handle_ctrl_alt_del();
    let target_dir = PathBuf::from("/run/lifeboat/target");
    let mut mounted = Mounted { dirs: Vec::new() };
    mounts::mount_fs(&root.dev_path(), &target_dir, &fs_id.fstype, false)?;
    mounted.dirs.push(target_dir.clone());

    // 6. The ESP, when the backup has one.
    let esp_fs: Option<FilesystemIdentity> = match &b.kind {
        BackupKind::Lifeboat { manifest, .. } => manifest.source.esp.clone(),
        BackupKind::XenTree { .. } => target.esp.as_ref().map(|e| FilesystemIdentity {
            fstype: "vfat".into(),
            uuid: e.fs_uuid().map(str::to_string),
            label: e.label().map(str::to_string),
            ..Default::default()
        }),
    };
    match (&esp_fs, &target.esp) {
        (Some(fs), Some(esp)) => {
            unmount_all_of(&esp.dev_path())?;
            say(&format!("Creating vfat on {} (ESP) ...", esp.dev_path()));
            mkfs::make_vfat(fs, &esp.dev_path())?;
            let dir = target_dir.join("boot/efi");
            mounts::mount_fs(&esp.dev_path(), &dir, "vfat", false)?;
            mounted.dirs.push(dir);
        }
        (Some(_), None) => say("Warning: the backup has an ESP (/boot/efi) but no ESP partition was found on the target disk; its files go into the root filesystem."),
        _ => {}
    }

    // 7. Extract or copy.
    let report = match &b.kind {
        BackupKind::Lifeboat { archive, .. } => {
            say("Extracting ...");
            let p = LineProgress::new("extract");
            p.set_total(Some(b.size));
            let r = store_view::extract(archive, &target_dir, &p);
            p.finish();
            r
        }
        BackupKind::XenTree { .. } => {
            say("Copying the XenServer backup tree ...");
            let p = LineProgress::new("copy");
            p.set_total(Some(b.size));
            let r = copytree::copy_tree(&b.mount, &target_dir, &p).map(|s| s.summary());
            p.finish();
            r
        }
    };
    let report = report.with_context(|| {
        format!(
            "the restore stopped: {} holds an INCOMPLETE root (label {}): do not boot it. Restore again from the menu",
            root.dev_path(),
            mkfs::PARTIAL_LABEL
        )
    })?;

    // 8. Sync and unmount.
    say("Syncing ...");
    mounted
        .release()
        .context("the restored root may not be fully written; restore again")?;
    power_sync();

    // 9. The recorded identity, now that every byte is on the disk; then the journal.
    say(&format!(
        "Setting the recorded label ({}) and UUID ({}) on {} ...",
        fs_id.label.as_deref().unwrap_or("none"),
        fs_id.uuid.as_deref().unwrap_or("a new one"),
        root.dev_path()
    ));
    mkfs::set_final_identity(&tools, &fs_id, &root.dev_path()).with_context(|| {
        format!(
            "{} holds the complete root under the temporary label {}: restore again, or set the label and UUID with tune2fs from the rescue shell",
            root.dev_path(),
            mkfs::PARTIAL_LABEL
        )
    })?;
    power_sync();
    say("Recording restore-done in the store's journal ...");
    journal(b, "restore-done", &root.dev_path(), opts.request.as_deref());
    Ok(format!(
        "Restored {} onto {}: {report}",
        b.host,
        root.dev_path()
    ))
}

fn power_sync() {
    crate::power::sync_all();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_chain_reaches_the_screen() {
        let e = mounts::unmount(std::path::Path::new("/nonexistent/lifeboat-test"))
            .context("the restored root may not be fully written; restore again")
            .unwrap_err();
        let lines = failure_lines("RESTORE NOT DONE", &e);
        assert_eq!(
            lines[0],
            "RESTORE NOT DONE: the restored root may not be fully written; restore again"
        );
        assert_eq!(
            lines[1],
            "  because: cannot unmount /nonexistent/lifeboat-test"
        );
        assert!(lines[2].starts_with("  because: ENOENT"), "{lines:?}");
    }
}
