//! Recreates filesystems with the identity recorded at backup time, by running the image's
//! mke2fs and mkfs.vfat (copied into the image with their libraries by `lifeboat mkrescue`).

use crate::console::{log_only, say};
use anyhow::{anyhow, Context, Result};
use lifeboat_core::archive::manifest::FilesystemIdentity;
use lifeboat_core::programs::find_any;
use std::path::{Path, PathBuf};
use std::process::Command;

/// ext features that describe a filesystem's state, not its format: mke2fs cannot set them.
const STATE_FEATURES: &[&str] = &[
    "needs_recovery",
    "journal_dev",
    "orphan_present",
    "snapshot_bitmap",
];

/// Runs `program`; returns its exit code and the last lines it printed (stdout and stderr:
/// e2fsprogs explain refusals on stdout).
fn run_status(program: &Path, args: &[String]) -> Result<(i32, String)> {
    let program_name = program.display();
    say(&format!("Running {program_name} {}", args.join(" ")));
    let out = Command::new(program)
        .args(args)
        .env("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .output()
        .with_context(|| format!("cannot run {program_name}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    log_only(&stdout);
    log_only(&stderr);
    let lines: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last = lines[lines.len().saturating_sub(4)..].join(" / ");
    // Killed by a signal: no code.
    Ok((out.status.code().unwrap_or(-1), last))
}

fn run(program: &Path, args: &[String]) -> Result<()> {
    match run_status(program, args)? {
        (0, _) => Ok(()),
        (code, last) => Err(anyhow!(
            "{} failed (exit {code}): {last}",
            program.display()
        )),
    }
}

/// The mke2fs arguments that recreate `fs` on `dev` (type, UUID, label, exact feature set,
/// block size, inode size).
pub fn mke2fs_args(fs: &FilesystemIdentity, dev: &str) -> Vec<String> {
    let fstype = if fs.fstype.starts_with("ext") {
        fs.fstype.as_str()
    } else {
        "ext4"
    };
    let mut a: Vec<String> = vec!["-F".into(), "-q".into(), "-t".into(), fstype.into()];
    if let Some(u) = fs.uuid.as_deref().filter(|u| !u.is_empty()) {
        a.extend(["-U".into(), u.into()]);
    }
    if let Some(l) = fs.label.as_deref().filter(|l| !l.is_empty()) {
        a.extend(["-L".into(), l.into()]);
    }
    let feats: Vec<&str> = fs
        .features
        .iter()
        .map(String::as_str)
        .filter(|f| !STATE_FEATURES.contains(f))
        .collect();
    if !feats.is_empty() {
        a.extend(["-O".into(), format!("none,{}", feats.join(","))]);
    }
    if fs.block_size > 0 {
        a.extend(["-b".into(), fs.block_size.to_string()]);
    }
    if fs.inode_size > 0 {
        a.extend(["-I".into(), fs.inode_size.to_string()]);
    }
    a.push(dev.into());
    a
}

pub fn make_ext(tools: &ExtTools, fs: &FilesystemIdentity, dev: &str) -> Result<()> {
    run(&tools.mke2fs, &mke2fs_args(fs, dev))
}

/// Label a root filesystem carries while it is being filled (core's plan names it). With a
/// random UUID beside it, a host that finds its root by label (XenServer's grub.cfg and fstab)
/// or by UUID cannot boot a half-restored root: the recorded identity is set only once
/// everything is written and synced.
pub use lifeboat_core::plan::model::PARTIAL_LABEL;

/// The identity mke2fs creates while a restore runs: the recorded format (features, block and
/// inode size) with a random UUID (mke2fs picks one) and the label `lifeboat-partial`.
pub fn partial_identity(fs: &FilesystemIdentity) -> FilesystemIdentity {
    FilesystemIdentity {
        uuid: None,
        label: Some(PARTIAL_LABEL.into()),
        ..fs.clone()
    }
}

/// The programs a restore of an ext root runs, found before anything is written.
pub struct ExtTools {
    pub mke2fs: PathBuf,
    pub tune2fs: PathBuf,
    pub e2fsck: PathBuf,
}

pub fn ext_tools() -> Result<ExtTools> {
    let mke2fs = find_any(&["mke2fs", "mkfs.ext4"]).with_context(|| {
        "mke2fs is not in this image; rebuild it with `lifeboat mkrescue` (which adds mke2fs)"
    })?;
    let tune2fs = find_any(&["tune2fs"]).with_context(|| {
        "tune2fs is not in this image (it sets the root's label and UUID at the end of a restore); rebuild it with `lifeboat mkrescue`"
    })?;
    let e2fsck = find_any(&["e2fsck", "fsck.ext4"]).with_context(|| {
        "e2fsck is not in this image (it checks the restored root before its UUID is set); rebuild it with `lifeboat mkrescue`"
    })?;
    Ok(ExtTools {
        mke2fs,
        tune2fs,
        e2fsck,
    })
}

/// The tune2fs arguments that give the unmounted filesystem on `dev` its recorded UUID and
/// label (no label: the label is cleared). tune2fs rewrites the metadata checksums of a
/// `metadata_csum` filesystem when its UUID changes.
pub fn final_identity_args(fs: &FilesystemIdentity, dev: &str) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if let Some(u) = fs.uuid.as_deref().filter(|u| !u.is_empty()) {
        a.extend(["-U".into(), u.into()]);
    }
    a.extend([
        "-L".into(),
        fs.label.clone().unwrap_or_default(),
        dev.into(),
    ]);
    a
}

/// Checks the unmounted restored root (`e2fsck -f -p`), then sets its recorded UUID and label.
/// tune2fs changes the UUID of a `metadata_csum` filesystem only after a full check newer
/// than its last mount.
pub fn set_final_identity(tools: &ExtTools, fs: &FilesystemIdentity, dev: &str) -> Result<()> {
    let args: Vec<String> = vec!["-f".into(), "-p".into(), dev.into()];
    match run_status(&tools.e2fsck, &args)? {
        (0, _) => {}
        (1, _) => say(&format!("e2fsck corrected errors on {dev} (see the log)")),
        (code, err) => {
            return Err(anyhow!(
                "e2fsck found errors it could not correct on the restored root {dev} (exit {code}): {err}"
            ))
        }
    }
    run(&tools.tune2fs, &final_identity_args(fs, dev))
}

/// mkfs.vfat with the original volume id (the UUID "ABCD-1234"), label, FAT type and cluster
/// size (FAT32 stays FAT32), on a device with `sector_size`-byte logical sectors.
pub fn vfat_args(fs: &FilesystemIdentity, dev: &str, sector_size: u32) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if matches!(fs.fat_bits, 12 | 16 | 32) {
        a.extend(["-F".into(), fs.fat_bits.to_string()]);
    }
    if fs.cluster_size > 0 && sector_size > 0 && fs.cluster_size.is_multiple_of(sector_size) {
        let per_cluster = fs.cluster_size / sector_size;
        if per_cluster.is_power_of_two() && per_cluster <= 128 {
            a.extend([
                "-S".into(),
                sector_size.to_string(),
                "-s".into(),
                per_cluster.to_string(),
            ]);
        }
    }
    if let Some(u) = fs.uuid.as_deref() {
        let id: String = u.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        if id.len() == 8 {
            a.extend(["-i".into(), id]);
        }
    }
    if let Some(l) = fs.label.as_deref().filter(|l| !l.is_empty()) {
        a.extend(["-n".into(), l.into()]);
    }
    a.push(dev.into());
    a
}

/// The logical sector size of a block device (its disk's), 512 when it cannot be read.
fn logical_sector_size(dev: &str) -> u32 {
    use lifeboat_core::identity::blockdev;
    blockdev::name_of_device(Path::new(dev))
        .ok()
        .map(|n| blockdev::parent_disk(&n).map(|(d, _)| d).unwrap_or(n))
        .and_then(|d| blockdev::disk(&d).ok())
        .map(|d| d.logical_block_size)
        .filter(|s| *s >= 512)
        .unwrap_or(512)
}

/// mkfs.vfat with the recorded identity and geometry ([`vfat_args`]).
pub fn make_vfat(fs: &FilesystemIdentity, dev: &str) -> Result<()> {
    let prog = find_any(&["mkfs.vfat", "mkfs.fat", "mkdosfs"])
        .context("mkfs.vfat is not in this image; rebuild it with `lifeboat mkrescue`")?;
    run(&prog, &vfat_args(fs, dev, logical_sector_size(dev)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vfat_keeps_its_fat_type_and_cluster_size() {
        let fs = FilesystemIdentity {
            fstype: "vfat".into(),
            uuid: Some("ABCD-1234".into()),
            label: Some("ESP".into()),
            fat_bits: 32,
            cluster_size: 4096,
            ..Default::default()
        };
        assert_eq!(
            vfat_args(&fs, "/dev/vda1", 512).join(" "),
            "-F 32 -S 512 -s 8 -i ABCD1234 -n ESP /dev/vda1"
        );
        assert_eq!(
            vfat_args(&fs, "/dev/vda1", 4096).join(" "),
            "-F 32 -S 4096 -s 1 -i ABCD1234 -n ESP /dev/vda1"
        );
        // Not recorded (older backups): mkfs.vfat decides, as before.
        let old = FilesystemIdentity {
            fat_bits: 0,
            cluster_size: 0,
            label: None,
            ..fs
        };
        assert_eq!(
            vfat_args(&old, "/dev/vda1", 512).join(" "),
            "-i ABCD1234 /dev/vda1"
        );
    }

    #[test]
    fn recreates_the_recorded_identity() {
        let fs = FilesystemIdentity {
            fstype: "ext4".into(),
            uuid: Some("0a1b2c3d-0000-4000-8000-000000000001".into()),
            label: Some("root-test".into()),
            block_size: 4096,
            inode_size: 256,
            features: vec![
                "has_journal".into(),
                "extent".into(),
                "needs_recovery".into(),
            ],
            ..Default::default()
        };
        let a = mke2fs_args(&fs, "/dev/vda1").join(" ");
        assert_eq!(
            a,
            "-F -q -t ext4 -U 0a1b2c3d-0000-4000-8000-000000000001 -L root-test -O none,has_journal,extent -b 4096 -I 256 /dev/vda1"
        );
    }

    #[test]
    fn mkfs_gives_a_temporary_identity_and_the_end_the_recorded_one() {
        let fs = FilesystemIdentity {
            fstype: "ext4".into(),
            uuid: Some("0a1b2c3d-0000-4000-8000-000000000001".into()),
            label: Some("root-test".into()),
            features: vec!["has_journal".into(), "metadata_csum".into()],
            ..Default::default()
        };
        let a = mke2fs_args(&partial_identity(&fs), "/dev/vda1").join(" ");
        assert_eq!(
            a,
            "-F -q -t ext4 -L lifeboat-partial -O none,has_journal,metadata_csum /dev/vda1"
        );
        assert_eq!(
            final_identity_args(&fs, "/dev/vda1").join(" "),
            "-U 0a1b2c3d-0000-4000-8000-000000000001 -L root-test /dev/vda1"
        );
        let unlabelled = FilesystemIdentity { label: None, ..fs };
        assert_eq!(
            final_identity_args(&unlabelled, "/dev/vda1"),
            [
                "-U",
                "0a1b2c3d-0000-4000-8000-000000000001",
                "-L",
                "",
                "/dev/vda1"
            ]
        );
    }
}
