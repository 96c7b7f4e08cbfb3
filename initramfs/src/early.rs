//! The pseudo filesystems PID 1 needs before anything else.

use nix::mount::{mount, MsFlags};
use std::fs;

/// Mounts proc, sysfs, devtmpfs, /run and /tmp. Returns a description of each failure
/// (already mounted counts as success: the kernel may have mounted devtmpfs itself).
pub fn mount_pseudo_filesystems() -> Vec<String> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table: [(&str, &str, &str, MsFlags, Option<&str>); 5] = [
        ("proc", "/proc", "proc", nosuid, None),
        ("sysfs", "/sys", "sysfs", nosuid, None),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        ),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        (
            "tmpfs",
            "/tmp",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
    ];
    let mut errors = Vec::new();
    for (src, target, fstype, flags, data) in table {
        let _ = fs::create_dir_all(target);
        if let Err(e) = mount(Some(src), target, Some(fstype), flags, data) {
            if e != nix::errno::Errno::EBUSY {
                errors.push(format!("mount {fstype} on {target}: {e}"));
            }
        }
    }
    let _ = fs::create_dir_all("/dev/pts");
    let _ = mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("gid=5,mode=620,ptmxmode=666"),
    );
    // Programs we run (mke2fs, the rescue shell) expect these.
    let _ = fs::create_dir_all("/run/lifeboat");
    let _ = std::os::unix::fs::symlink("/proc/self/fd", "/dev/fd");
    let _ = std::os::unix::fs::symlink("/proc/mounts", "/etc/mtab");
    errors
}
