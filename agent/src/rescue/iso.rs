//! The hybrid ISO: isolinux (BIOS), GRUB EFI image (UEFI), isohybrid for USB sticks.

use std::path::{Path, PathBuf};

/// What the ISO is built from.
#[derive(Debug, Clone)]
pub struct IsoOptions {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: Option<String>,
}

/// Writes the hybrid ISO to `file`.
pub fn write_iso(_opts: &IsoOptions, _file: &Path) -> anyhow::Result<()> {
    anyhow::bail!("the ISO is not built yet")
}
