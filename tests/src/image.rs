//! Loop-mounted filesystem images for root tests: made in a temporary directory, unmounted and
//! removed when dropped.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Image {
    pub file: PathBuf,
    pub mnt: PathBuf,
    mounted: bool,
    _dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Image {
    /// An image of `mib` MiB formatted with `mkfs.<fstype>` (ext4 by default in tests), mounted.
    pub fn new(fstype: &str, mib: u64) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("lbtest-img").tempdir()?;
        let file = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt)?;
        let f = std::fs::File::create(&file)?;
        f.set_len(mib << 20)?;
        drop(f);
        let mut mkfs = Command::new(format!("mkfs.{fstype}"));
        if fstype.starts_with("ext") {
            mkfs.arg("-q").arg("-F");
        }
        run(mkfs.arg(&file))?;
        run(Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(&file)
            .arg(&mnt))?;
        Ok(Self {
            file,
            mnt,
            mounted: true,
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            run(Command::new("umount").arg(&self.mnt))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
        }
    }
}

/// True when the tests may use root-only facilities (loop mounts); prints why not otherwise
/// (and fails the test under CI: lifeboat_core::testing).
pub fn have_root(test: &str) -> bool {
    lifeboat_core::testing::require(
        crate::sys::is_root(),
        &format!("{test} needs root for loop mounts"),
    )
}
