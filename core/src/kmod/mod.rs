//! Kernel module metadata for the recovery image: dependencies (modules.dep or the modules'
//! own `.modinfo`), softdeps, firmware, decompression (`modinfo`, `tree`, `index`, for the image
//! builder), and alias matching for coldplug (`alias`, for the recovery image's PID 1).

pub mod alias;
pub mod index;
pub mod modinfo;
pub mod tree;

pub use modinfo::ModInfo;
pub use tree::{Closure, Lookup, ModuleTree};

use std::path::PathBuf;

/// What can go wrong while reading a module tree.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a readable ELF module: {0}")]
    Elf(String),
    #[error("the module has no .modinfo section")]
    NoModinfo,
    #[error("{}: {source}", path.display())]
    Module {
        path: PathBuf,
        #[source]
        source: Box<KmodError>,
    },
    #[error(
        "{}: no kernel modules found there (expected a /lib/modules/<version> tree with *.ko files); \
         pass the module tree of the kernel with --modules",
        .0.display()
    )]
    EmptyTree(PathBuf),
}

/// Module names treat `-` and `_` alike (the kernel does); we use `_`.
pub fn normalize_name(name: &str) -> String {
    name.trim().replace('-', "_")
}

#[cfg(test)]
mod kernel_tests;

/// Filesystem modules every recovery image carries and its PID 1 loads whatever the hardware:
/// ext2/3/4 (with the crc32c its checksums use), the ESP's vfat with its code pages, ISO 9660
/// for the boot medium, efivarfs for the firmware's boot entries.
pub const RESCUE_FILESYSTEMS: &[&str] = &[
    "crc32c_generic",
    "ext4",
    "vfat",
    "nls_cp437",
    "nls_ascii", // vfat's default iocharset in Debian kernels (FAT_DEFAULT_IOCHARSET)
    "nls_iso8859_1",
    "nls_utf8",
    "isofs",
    "efivarfs",
];
