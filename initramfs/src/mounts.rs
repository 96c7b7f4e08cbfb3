//! Mounting and unmounting the filesystems discovery and restore work on.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// Where discovery mounts candidate partitions: /run/lifeboat/mnt/<name>.
pub fn mount_dir(name: &str) -> PathBuf {
    Path::new("/run/lifeboat/mnt").join(name)
}

/// The kernel driver that mounts a filesystem type (ext4 handles ext2 and ext3).
pub fn kernel_fstype(fstype: &str) -> &str {
    match fstype {
        "ext2" | "ext3" | "ext4" => "ext4",
        other => other,
    }
}

/// The mount options of an ext filesystem: an error found while reading it remounts it
/// read-only instead of following its own `errors=panic` (which would panic the image).
const EXT_ERRORS: &str = "errors=remount-ro";

fn mount_data(fstype: &str, probe: bool) -> Option<String> {
    if !fstype.starts_with("ext") {
        return None;
    }
    Some(if probe {
        format!("noload,{EXT_ERRORS}")
    } else {
        EXT_ERRORS.to_string()
    })
}

fn mount_with(
    dev: &str,
    dir: &Path,
    fstype: &str,
    read_only: bool,
    data: Option<&str>,
) -> Result<(), nix::Error> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(Some(dev), dir, Some(kernel_fstype(fstype)), flags, data)
}

pub fn mount_fs(dev: &str, dir: &Path, fstype: &str, read_only: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    mount_with(
        dev,
        dir,
        fstype,
        read_only,
        mount_data(fstype, false).as_deref(),
    )
    .with_context(|| format!("cannot mount {dev} ({fstype}) on {}", dir.display()))
}

/// Mounts a partition for discovery: read-only, and for ext without replaying its journal
/// (`noload`: nothing is written to a disk that is only looked at, and a root that needs
/// recovery stays as it is). Plain read-only only when the kernel refuses `noload`.
pub fn mount_probe(dev: &str, dir: &Path, fstype: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let r = match mount_data(fstype, true) {
        Some(data) => match mount_with(dev, dir, fstype, true, Some(&data)) {
            Err(nix::Error::EINVAL) => {
                mount_with(dev, dir, fstype, true, mount_data(fstype, false).as_deref())
            }
            r => r,
        },
        None => mount_with(dev, dir, fstype, true, None),
    };
    r.with_context(|| {
        format!(
            "cannot mount {dev} ({fstype}) read-only on {}",
            dir.display()
        )
    })
}

/// Remounts a mounted filesystem read-write or read-only.
pub fn remount(dir: &Path, read_only: bool) -> Result<()> {
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, dir, None::<&str>, flags, None::<&str>).with_context(|| {
        format!(
            "cannot remount {} {}",
            dir.display(),
            if read_only { "read-only" } else { "read-write" }
        )
    })
}

pub fn unmount(dir: &Path) -> Result<()> {
    umount2(dir, MntFlags::empty()).with_context(|| format!("cannot unmount {}", dir.display()))
}

/// Mount points (from /proc/mounts) whose source is `dev`.
pub fn mounted_at(dev: &str) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let src = w.next()?;
            let dir = w.next()?;
            (src == dev).then(|| PathBuf::from(dir.replace("\\040", " ")))
        })
        .collect()
}

/// syncfs(2) on the filesystem holding `dir`.
pub fn syncfs(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))
        .with_context(|| format!("syncfs {}", dir.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ext_is_looked_at_without_journal_replay_and_never_panics() {
        assert_eq!(
            mount_data("ext3", true).as_deref(),
            Some("noload,errors=remount-ro")
        );
        assert_eq!(
            mount_data("ext4", false).as_deref(),
            Some("errors=remount-ro")
        );
        assert_eq!(mount_data("vfat", true), None);
    }
}
