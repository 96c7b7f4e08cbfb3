//! Which kernel modules go into the image: the generic server set, or the modules this host's
//! devices use; then their closure (dependencies, softdeps), their firmware, and the index files
//! lifeboat-init reads.

use super::image::Image;
use anyhow::{Context, Result};
use lifeboat_core::kmod::{index, normalize_name, Closure, ModuleTree};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Disk controllers, filesystems, RAID and keyboards a server's recovery image needs.
pub const GENERIC: &[&str] = &[
    // disk controllers
    "ahci",
    "ata_piix",
    "nvme",
    "sd_mod",
    "sr_mod",
    "virtio_blk",
    "virtio_scsi",
    "virtio_pci",
    "megaraid_sas",
    "mpt3sas",
    "hpsa",
    "smartpqi",
    "aacraid",
    "xen_blkfront",
    "usb_storage",
    "uas",
    "xhci_pci",
    "xhci_hcd",
    "ehci_pci",
    "ehci_hcd",
    // filesystems: lifeboat_core::kmod::RESCUE_FILESYSTEMS, added by the builder
    // software RAID, device-mapper
    "raid1",
    "dm_mod",
    // network cards, for a restore from the repository (the generic Debian kernel has them;
    // the cloud kernel only virtio_net)
    "virtio_net",
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "ixgbe",
    "i40e",
    "ice",
    "bnxt_en",
    "tg3",
    "bnx2",
    "bnx2x",
    "mlx4_en",
    "mlx5_core",
    "r8169",
    "xen_netfront",
    "vmxnet3",
    // keyboards
    "usbhid",
    "hid_generic",
];

/// Filesystems every image can read and write, host-only or not.
pub use lifeboat_core::kmod::RESCUE_FILESYSTEMS as FILESYSTEMS;

/// The storage stacks whose loaded users (holders) a host-only image keeps.
const STACKS: &[&str] = &[
    "dm_mod",
    "md_mod",
    "raid1",
    "raid456",
    "multipath",
    "dm_multipath",
];

/// The modules this host uses for its devices, by name (they may be missing from the target
/// kernel's tree; the closure reports those).
pub fn host_modules(tree: &mut ModuleTree, sys: &Path) -> Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    // Drivers bound to devices.
    if let Ok(buses) = std::fs::read_dir(sys.join("bus")) {
        for bus in buses.flatten() {
            let Ok(devices) = std::fs::read_dir(bus.path().join("devices")) else {
                continue;
            };
            for dev in devices.flatten() {
                if let Ok(link) = std::fs::read_link(dev.path().join("driver/module")) {
                    if let Some(name) = link.file_name() {
                        found.insert(normalize_name(&name.to_string_lossy()));
                    }
                }
            }
        }
    }
    // Users of the storage stacks (dm-mirror on dm-mod, raid1 on md-mod, ...).
    for stack in STACKS {
        if let Ok(holders) = std::fs::read_dir(sys.join("module").join(stack).join("holders")) {
            found.insert(stack.to_string());
            for h in holders.flatten() {
                found.insert(normalize_name(&h.file_name().to_string_lossy()));
            }
        }
    }
    // Every device's modalias, matched against the target tree's aliases.
    let mut aliases = BTreeSet::new();
    collect_modaliases(&sys.join("devices"), &mut aliases, 0);
    for alias in aliases {
        found.extend(tree.modules_for_alias(&alias)?);
    }
    Ok(found)
}

fn collect_modaliases(dir: &Path, out: &mut BTreeSet<String>, depth: usize) {
    if depth > 32 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_modaliases(&entry.path(), out, depth + 1);
        } else if kind.is_file() && entry.file_name() == "modalias" {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                let text = text.trim();
                if !text.is_empty() {
                    out.insert(text.to_string());
                }
            }
        }
    }
}

/// What went into the image from the module tree.
#[derive(Debug, Default)]
pub struct ModuleReport {
    pub closure: Closure,
    pub firmware: Vec<String>,
    pub firmware_missing: Vec<(String, String)>,
    /// Bytes of decompressed modules.
    pub module_bytes: u64,
    /// Modules without an appended signature (a kernel in Secure Boot lockdown refuses them).
    pub unsigned: Vec<String>,
}

/// Firmware directories, most specific first: the one beside the module tree
/// (`<root>/lib/firmware` for `<root>/lib/modules/<version>`), then this host's.
fn firmware_dirs(tree_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(canonical) = std::fs::canonicalize(tree_dir) {
        if let Some(lib) = canonical.parent().and_then(Path::parent) {
            dirs.push(lib.join("firmware"));
        }
    }
    dirs.push(PathBuf::from("/lib/firmware"));
    dirs.dedup();
    dirs
}

/// Adds the closure of `requests` to the image: modules (decompressed) under
/// /lib/modules/<version>/, firmware under /lib/firmware/, and the index files.
pub fn add_modules(
    image: &mut Image,
    tree: &mut ModuleTree,
    requests: &[String],
) -> Result<ModuleReport> {
    let closure = tree.closure(requests).with_context(|| {
        format!(
            "cannot resolve module dependencies in {}",
            tree.dir().display()
        )
    })?;
    let base = format!("lib/modules/{}", tree.version());
    image.dir(&base);
    let mut report = ModuleReport::default();
    let mut firmware = BTreeSet::new();
    for module in &closure.modules {
        let (Some(rel), Some(plain)) =
            (tree.relative_path(module), tree.plain_relative_path(module))
        else {
            continue;
        };
        let source = tree.dir().join(rel);
        let bytes = tree
            .read_module(module)
            .with_context(|| format!("cannot read the module {}", source.display()))?;
        report.module_bytes += bytes.len() as u64;
        // Decompressed, never stripped: the appended signature is still the last thing.
        if !super::secureboot::module_signed(&bytes) {
            report.unsigned.push(module.clone());
        }
        image.file_bytes(
            &format!("{base}/{}", plain.display()),
            0o644,
            bytes,
            &source.display().to_string(),
        );
        firmware.extend(
            tree.info(module)?
                .firmware
                .iter()
                .map(|f| (f.clone(), module.clone())),
        );
    }
    let dirs = firmware_dirs(tree.dir());
    for (name, module) in firmware {
        match find_firmware(&dirs, &name)? {
            Some((path, bytes)) => {
                image.file_bytes(
                    &format!("lib/firmware/{name}"),
                    0o644,
                    bytes,
                    &path.display().to_string(),
                );
                report.firmware.push(name);
            }
            None => report.firmware_missing.push((name, module)),
        }
    }
    let files = index::build(tree, &closure.modules)?;
    for (name, text) in [
        ("modules.dep", files.modules_dep),
        ("modules.alias", files.modules_alias),
        ("modules.softdep", files.modules_softdep),
        ("modules.builtin", files.modules_builtin),
    ] {
        image.file_bytes(
            &format!("{base}/{name}"),
            0o644,
            text.into_bytes(),
            "generated",
        );
    }
    let builtin_modinfo = tree.dir().join("modules.builtin.modinfo");
    if builtin_modinfo.is_file() {
        image.file_host(
            &format!("{base}/modules.builtin.modinfo"),
            &builtin_modinfo,
            0o644,
        )?;
    }
    report.closure = closure;
    Ok(report)
}

/// A firmware file, decompressed if it is stored as `.zst` or `.xz`.
fn find_firmware(dirs: &[PathBuf], name: &str) -> Result<Option<(PathBuf, Vec<u8>)>> {
    for dir in dirs {
        for suffix in ["", ".zst", ".xz"] {
            let path = dir.join(format!("{name}{suffix}"));
            if path.is_file() {
                let bytes = lifeboat_core::kmod::modinfo::read_decompressed(&path)
                    .with_context(|| format!("cannot read the firmware {}", path.display()))?;
                return Ok(Some((path, bytes)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rescue::image::Node;
    use lifeboat_core::kmod::modinfo::synthetic_module;

    /// Firmware named by a module comes from the tree's own lib/firmware, decompressed;
    /// firmware nowhere to be found is reported, not fatal.
    #[test]
    fn firmware_is_added_or_reported() {
        let root = tempfile::tempdir().unwrap();
        let tree_dir = root.path().join("lib/modules/1.0-test");
        std::fs::create_dir_all(tree_dir.join("kernel/drivers")).unwrap();
        std::fs::write(
            tree_dir.join("kernel/drivers/nic.ko"),
            synthetic_module(&[
                ("name", "nic"),
                ("firmware", "vendor/nic.bin"),
                ("firmware", "vendor/lifeboat-test-absent.bin"),
            ]),
        )
        .unwrap();
        let fw = root.path().join("lib/firmware/vendor");
        std::fs::create_dir_all(&fw).unwrap();
        std::fs::write(
            fw.join("nic.bin.zst"),
            zstd::encode_all(&b"FIRMWARE"[..], 3).unwrap(),
        )
        .unwrap();

        let mut tree = ModuleTree::open(&tree_dir).unwrap();
        let mut image = Image::new();
        let report = add_modules(&mut image, &mut tree, &["nic".to_string()]).unwrap();
        assert_eq!(report.firmware, ["vendor/nic.bin"]);
        assert_eq!(
            report.firmware_missing,
            [(
                "vendor/lifeboat-test-absent.bin".to_string(),
                "nic".to_string()
            )]
        );
        assert!(matches!(
            image.nodes().get("lib/firmware/vendor/nic.bin"),
            Some(Node::File { size: 8, .. })
        ));
        assert!(image.contains("lib/modules/1.0-test/kernel/drivers/nic.ko"));
        assert!(image.contains("lib/modules/1.0-test/modules.dep"));
    }
}
