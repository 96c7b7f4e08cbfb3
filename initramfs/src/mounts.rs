//! Mounting and unmounting the filesystems discovery and restore work on.

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

pub fn mount_fs(dev: &str, dir: &Path, fstype: &str, read_only: bool) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    mount_with(
        dev,
        dir,
        fstype,
        read_only,
        mount_data(fstype, false).as_deref(),
    )
    .map_err(|e| format!("cannot mount {dev} ({fstype}) on {}: {e}", dir.display()))
}

/// Mounts a partition for discovery: read-only, and for ext without replaying its journal
/// (`noload`: nothing is written to a disk that is only looked at, and a root that needs
/// recovery stays as it is). Plain read-only only when the kernel refuses `noload`.
pub fn mount_probe(dev: &str, dir: &Path, fstype: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let r = match mount_data(fstype, true) {
        Some(data) => match mount_with(dev, dir, fstype, true, Some(&data)) {
            Err(nix::Error::EINVAL) => {
                mount_with(dev, dir, fstype, true, mount_data(fstype, false).as_deref())
            }
            r => r,
        },
        None => mount_with(dev, dir, fstype, true, None),
    };
    r.map_err(|e| {
        format!(
            "cannot mount {dev} ({fstype}) read-only on {}: {e}",
            dir.display()
        )
    })
}

/// Remounts a mounted filesystem read-write or read-only.
pub fn remount(dir: &Path, read_only: bool) -> Result<(), String> {
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, dir, None::<&str>, flags, None::<&str>).map_err(|e| {
        format!(
            "cannot remount {} {}: {e}",
            dir.display(),
            if read_only { "read-only" } else { "read-write" }
        )
    })
}

pub fn unmount(dir: &Path) -> Result<(), String> {
    umount2(dir, MntFlags::empty()).map_err(|e| format!("cannot unmount {}: {e}", dir.display()))
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
pub fn syncfs(dir: &Path) -> Result<(), String> {
    let f = std::fs::File::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))
        .map_err(|e| format!("syncfs {}: {e}", dir.display()))
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
