//! Mounting the backup partition: reuse the mount point when the administrator has the device
//! mounted, else mount it at a private directory of our own (`/run/lifeboat/store-PID-N`)
//! and unmount it when dropped.
//!
//! Every Lifeboat process has its own mount: when other Lifeboat processes have the device
//! mounted (concurrent list, verify, backup, or the requests of `lifeboat serve`), ours is a
//! bind mount of theirs (the same filesystem), so none of them can unmount the store from
//! under another. A read-write request beside read-only mounts makes the filesystem writable
//! through its own mount only (the others stay read-only mounts). A mount left by a run that
//! was killed is bound the same way and then detached.

use super::StoreError;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A mounted backup filesystem.
#[derive(Debug)]
pub struct Mounted {
    dir: PathBuf,
    device: PathBuf,
    /// We mounted it (and unmount it on drop).
    owned: bool,
    read_only: bool,
}

impl Mounted {
    /// The mount point (the root of the store).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn device(&self) -> &Path {
        &self.device
    }
    pub fn read_only(&self) -> bool {
        self.read_only
    }
    /// True when it was mounted by us (not an existing mount that was reused).
    pub fn owned(&self) -> bool {
        self.owned
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        nix::unistd::sync();
        if umount2(&self.dir, MntFlags::empty()).is_err() {
            // Still busy (a child holding a file): detach it so it goes away when released.
            let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A mount of a device, from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// The directory of the filesystem mounted there ("/" for the whole filesystem).
    pub fs_root: String,
    pub read_only: bool,
}

fn devnum(dev: &Path) -> Result<(u64, u64), StoreError> {
    let meta = std::fs::metadata(dev).map_err(|e| StoreError::io(dev, e))?;
    if !meta.file_type().is_block_device() {
        return Err(StoreError::Invalid(format!(
            "{} is not a block device",
            dev.display()
        )));
    }
    let rdev = meta.rdev();
    Ok((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
}

/// Every mount of a block device.
pub fn mounts_of(dev: &Path) -> Result<Vec<MountEntry>, StoreError> {
    let (major, minor) = devnum(dev)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| StoreError::io(Path::new("/proc/self/mountinfo"), e))?;
    Ok(crate::identity::layout::parse_mountinfo(&info)
        .into_iter()
        .filter(|m| u64::from(m.major) == major && u64::from(m.minor) == minor)
        .map(|m| MountEntry {
            mount_point: m.mount_point,
            fs_root: m.fs_root,
            read_only: m.read_only,
        })
        .collect())
}

/// Where a device's whole filesystem is mounted: (mount point, read-only).
pub fn find_mount(dev: &Path) -> Result<Option<(PathBuf, bool)>, StoreError> {
    Ok(mounts_of(dev)?
        .into_iter()
        .find(|m| m.fs_root == "/")
        .map(|m| (m.mount_point, m.read_only)))
}

/// Why a device must not be formatted now: mounted, active swap, or held by md/dm (LVM,
/// RAID, multipath). None when it is free.
pub fn in_use(dev: &Path) -> Result<Option<String>, StoreError> {
    if let Some(m) = mounts_of(dev)?.first() {
        return Ok(Some(format!(
            "it is mounted at {}",
            m.mount_point.display()
        )));
    }
    let (major, minor) = devnum(dev)?;
    if let Ok(swaps) = std::fs::read_to_string("/proc/swaps") {
        for line in swaps.lines().skip(1) {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            if devnum(Path::new(name)).ok() == Some((major, minor)) {
                return Ok(Some("it is in use as swap".into()));
            }
        }
    }
    let holders = Path::new("/sys/dev/block")
        .join(format!("{major}:{minor}"))
        .join("holders");
    let held: Vec<String> = std::fs::read_dir(holders)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !held.is_empty() {
        return Ok(Some(format!(
            "it is part of {} (RAID, LVM or multipath)",
            held.join(", ")
        )));
    }
    Ok(None)
}

fn private_base() -> PathBuf {
    if Path::new("/run").is_dir() {
        PathBuf::from("/run/lifeboat")
    } else {
        std::env::temp_dir().join("lifeboat")
    }
}

/// True for `<base>/store-<pid>-<n>` whose process is gone.
fn orphaned(dir: &Path) -> bool {
    if dir.parent() != Some(private_base().as_path()) {
        return false;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = name
        .strip_prefix("store-")
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

fn private_dir() -> Result<PathBuf, StoreError> {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = private_base();
    super::fsync::ensure_dir(&base).map_err(|e| StoreError::io(&base, e))?;
    let dir = base.join(format!(
        "store-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    super::fsync::ensure_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
    Ok(dir)
}

/// True for a private mount directory of some Lifeboat process (`<base>/store-...`).
fn is_private(dir: &Path) -> bool {
    dir.parent() == Some(private_base().as_path())
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("store-"))
}

/// How often a mount is tried again when other processes mount and unmount the device
/// meanwhile.
const ATTEMPTS: u32 = 50;

/// Mounts the backup device (ext2/3/4), or reuses the administrator's mount of it. A
/// read-write request on a device the administrator mounted read-only is refused.
pub fn mount_device(dev: &Path, read_only: bool) -> Result<Mounted, StoreError> {
    for _ in 0..ATTEMPTS {
        if let Some(m) = try_mount(dev, read_only)? {
            return Ok(m);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(StoreError::Mount {
        device: dev.to_path_buf(),
        reason: format!(
            "other processes kept mounting and unmounting it ({ATTEMPTS} attempts); try again"
        ),
    })
}

/// Our own bind mount of `other` (another Lifeboat process's private mount of `dev`); None
/// when that mount went away meanwhile (try again).
fn bind_private(
    dev: &Path,
    other: &MountEntry,
    read_only: bool,
) -> Result<Option<Mounted>, StoreError> {
    let dir = private_dir()?;
    let give_up = |dir: &Path, mounted: bool| {
        if mounted {
            let _ = umount2(dir, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(dir);
    };
    let flags = MsFlags::MS_NOATIME | MsFlags::MS_NODEV | MsFlags::MS_NOSUID;
    if mount(
        Some(&other.mount_point),
        &dir,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .is_err()
    {
        give_up(&dir, false);
        return Ok(None);
    }
    // The other process may have unmounted between our look and the bind: then we bound the
    // empty directory, not the store.
    let ours = mounts_of(dev)?
        .into_iter()
        .any(|m| m.mount_point == dir && m.fs_root == "/");
    if !ours {
        give_up(&dir, true);
        return Ok(None);
    }
    let result = if read_only {
        // This mount only: the others keep theirs.
        mount(
            None::<&str>,
            &dir,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags,
            None::<&str>,
        )
    } else if other.read_only {
        // The filesystem becomes writable, through this mount only (the bind copied the
        // other's read-only flag; a remount of the filesystem through ours clears it here).
        mount(
            None::<&str>,
            &dir,
            None::<&str>,
            MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )
    } else {
        Ok(())
    };
    if let Err(e) = result {
        give_up(&dir, true);
        return Err(StoreError::Mount {
            device: dev.to_path_buf(),
            reason: format!(
                "cannot make our mount of it {} beside another Lifeboat run's: {e}",
                if read_only { "read-only" } else { "writable" }
            ),
        });
    }
    Ok(Some(Mounted {
        dir,
        device: dev.to_path_buf(),
        owned: true,
        read_only,
    }))
}

fn try_mount(dev: &Path, read_only: bool) -> Result<Option<Mounted>, StoreError> {
    let whole: Vec<MountEntry> = mounts_of(dev)?
        .into_iter()
        .filter(|m| m.fs_root == "/")
        .collect();
    // The administrator's own mount is used as it is (and left mounted).
    if let Some(theirs) = whole.iter().find(|m| !is_private(&m.mount_point)) {
        if theirs.read_only && !read_only {
            let dir = theirs.mount_point.display();
            return Err(StoreError::Mount {
                device: dev.to_path_buf(),
                reason: format!(
                    "it is mounted read-only at {dir}; remount it read-write (mount -o remount,rw {dir}) or unmount it"
                ),
            });
        }
        return Ok(Some(Mounted {
            dir: theirs.mount_point.clone(),
            device: dev.to_path_buf(),
            owned: false,
            read_only: theirs.read_only,
        }));
    }
    // Another Lifeboat run's mount, live or left by a run that was killed: never used in
    // place (its owner, or another run that found the same orphan, may unmount it at any
    // moment, and whether its process is gone is known only after the look at the mount
    // table), but bound to a mount of our own, checked to be the store.
    if let Some(other) = whole.iter().find(|m| is_private(&m.mount_point)) {
        let bound = bind_private(dev, other, read_only)?;
        if bound.is_some() {
            // Mounts whose process is gone: nobody else will unmount them.
            for orphan in whole.iter().filter(|m| orphaned(&m.mount_point)) {
                let _ = umount2(&orphan.mount_point, MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir(&orphan.mount_point);
            }
        }
        return Ok(bound);
    }
    let fstype = match crate::identity::probe(dev) {
        Ok(Some(fs)) if fs.fstype.starts_with("ext") => fs.fstype,
        Ok(Some(fs)) => {
            return Err(StoreError::Mount {
                device: dev.to_path_buf(),
                reason: format!(
                    "it holds a {} filesystem, not ext2/3/4; a backup store is ext4 (see `lifeboat init-store`)",
                    fs.fstype
                ),
            })
        }
        Ok(None) => {
            return Err(StoreError::Mount {
                device: dev.to_path_buf(),
                reason: "it holds no filesystem; create a store with `lifeboat init-store --backup-device DEV`".into(),
            })
        }
        Err(e) => {
            return Err(StoreError::Mount {
                device: dev.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let dir = private_dir()?;
    let mut flags = MsFlags::MS_NOATIME | MsFlags::MS_NODEV | MsFlags::MS_NOSUID;
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    let mut result = mount(Some(dev), &dir, Some(fstype.as_str()), flags, None::<&str>);
    if result.is_err() && fstype != "ext4" {
        // ext2/ext3 are served by the ext4 driver on kernels built without the old ones.
        result = mount(Some(dev), &dir, Some("ext4"), flags, None::<&str>);
    }
    if let Err(e) = result {
        let _ = std::fs::remove_dir(&dir);
        if e == nix::errno::Errno::EBUSY {
            // Another process mounted it meanwhile (read-only against our read-write or the
            // other way round), and may have unmounted it again since: look again. Busy for
            // another reason (RAID, LVM, swap) is said as such.
            if mounts_of(dev)?.is_empty() {
                if let Some(why) = in_use(dev)? {
                    return Err(StoreError::Mount {
                        device: dev.to_path_buf(),
                        reason: format!("the kernel says it is busy: {why}"),
                    });
                }
            }
            return Ok(None);
        }
        return Err(StoreError::Mount {
            device: dev.to_path_buf(),
            reason: format!("mount as {fstype} failed: {e}"),
        });
    }
    Ok(Some(Mounted {
        dir,
        device: dev.to_path_buf(),
        owned: true,
        read_only,
    }))
}
