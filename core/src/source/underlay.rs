//! The directories hidden under mount points.
//!
//! A mount point that the backup skips (such as `/var/log` on XenServer) is archived as an
//! empty directory; its metadata must be that of the directory in the root filesystem, not of
//! the root of the filesystem mounted over it, or the restored root differs from the original.
//! A non-recursive bind mount of the root shows the root filesystem alone, mount points
//! included as their plain directories. It is detached as soon as it is opened: the open
//! descriptor keeps it reachable for this process only, nothing stays mounted, and the walk
//! can never come across it.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// An open view of the root filesystem without what is mounted on it.
pub struct Underlay {
    fd: OwnedFd,
}

impl Underlay {
    /// The view of `root`'s filesystem, or None when it cannot be made (not root, no mount
    /// namespace rights, or `root` is not the top of a mount): the walk then keeps the mounted
    /// filesystems' metadata for mount points, as GNU tar does.
    pub fn open(root: &Path) -> Option<Self> {
        let dir = tempdir_for_mount()?;
        let result = (|| {
            mount(
                Some(root),
                dir.as_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ok()?;
            // Keep the bind out of other mount namespaces while it exists.
            let _ = mount(
                None::<&str>,
                dir.as_path(),
                None::<&str>,
                MsFlags::MS_PRIVATE,
                None::<&str>,
            );
            let fd = std::fs::File::open(&dir).map(OwnedFd::from);
            let _ = umount2(dir.as_path(), MntFlags::MNT_DETACH);
            fd.ok()
        })();
        let _ = std::fs::remove_dir(&dir);
        result.map(|fd| Self { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A fresh empty directory for the bind mount, outside any tree a backup walks by default.
fn tempdir_for_mount() -> Option<std::path::PathBuf> {
    let base = ["/run", "/tmp"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())?;
    for i in 0..100u32 {
        let p = base.join(format!("lifeboat-underlay.{}.{i}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Some(p);
        }
    }
    None
}
