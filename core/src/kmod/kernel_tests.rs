//! Tests against a real kernel's module tree (Debian's cloud kernel fetched by
//! scripts/fetch-kernel.sh into build/kernel); skipped when it is absent.

#![allow(clippy::unwrap_used)]

use super::*;
use std::path::PathBuf;

fn test_tree() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("LIFEBOAT_TEST_MODULES").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../build/kernel/modules"
        ))),
        Some(PathBuf::from("/work/main/build/kernel/modules")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("kernel").is_dir());
    crate::testing::require(
        found.is_some(),
        "no kernel module tree (make kernel, or scripts/fetch-kernel.sh build/kernel)",
    )
    .then_some(found)
    .flatten()
}

#[test]
fn reads_modinfo_of_a_real_module() -> Result<(), KmodError> {
    let Some(dir) = test_tree() else {
        return Ok(());
    };
    let mut tree = ModuleTree::open(&dir)?;
    assert!(
        tree.version().starts_with(char::is_numeric),
        "{}",
        tree.version()
    );
    let info = tree.info("virtio_blk")?.clone();
    assert_eq!(info.name, "virtio_blk");
    let mut deps = info.depends.clone();
    deps.sort();
    assert_eq!(deps, ["virtio", "virtio_ring"]);
    assert!(
        info.aliases
            .iter()
            .any(|a| a.starts_with("virtio:d00000002v")),
        "{:?}",
        info.aliases
    );
    assert_eq!(info.kernel_release(), Some(tree.version()));
    Ok(())
}

#[test]
fn closure_of_disk_and_filesystem_modules() -> Result<(), KmodError> {
    let Some(dir) = test_tree() else {
        return Ok(());
    };
    let mut tree = ModuleTree::open(&dir)?;
    let closure = tree.closure(&[
        "virtio_blk",
        "ext4",
        "vfat",
        "dm-mod",
        "raid1",
        "ahci-not-here",
    ])?;
    let has = |m: &str| closure.modules.iter().any(|x| x == m);
    // This kernel builds ext4 in, and so its dependencies too.
    let builtin_or_module = |m: &str| has(m) || tree.is_builtin(m);
    for m in [
        "virtio_blk",
        "virtio",
        "virtio_ring",
        "vfat",
        "fat",
        "dm_mod",
        "raid1",
        "md_mod",
    ] {
        assert!(has(m), "{m} missing from {:?}", closure.modules);
    }
    for m in ["ext4", "jbd2", "mbcache", "crc16"] {
        assert!(
            builtin_or_module(m),
            "{m} neither loaded nor built in: {closure:?}"
        );
    }
    assert!(closure.missing.contains("ahci_not_here"));
    assert!(closure.broken.is_empty(), "{:?}", closure.broken);
    // Load order: every module after its dependencies.
    let pos = |m: &str| closure.modules.iter().position(|x| x == m);
    assert!(pos("virtio_ring") < pos("virtio_blk"));
    assert!(pos("virtio") < pos("virtio_blk"));
    assert!(pos("fat") < pos("vfat"));
    assert!(pos("md_mod") < pos("raid1"));
    Ok(())
}

/// Our modules.dep, from `.modinfo` alone, says what depmod says (when depmod is installed).
#[test]
fn modules_dep_agrees_with_depmod() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = test_tree() else {
        return Ok(());
    };
    if !crate::testing::require_tool("depmod") {
        return Ok(());
    }
    let depmod = crate::testing::find_tool("depmod").ok_or("depmod vanished")?;
    let mut tree = ModuleTree::open(&dir)?;
    let version = tree.version().to_string();
    let base = tempfile::tempdir()?;
    let copy = base.path().join("lib/modules").join(&version);
    std::fs::create_dir_all(&copy)?;
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir.display()))
        .arg(&copy)
        .status()?;
    assert!(status.success());
    let status = std::process::Command::new(depmod)
        .arg("-b")
        .arg(base.path())
        .arg(&version)
        .status()?;
    assert!(status.success());
    let theirs = std::fs::read_to_string(copy.join("modules.dep"))?;
    let wanted = [
        "virtio_blk",
        "virtio_scsi",
        "dm_mirror",
        "raid1",
        "vfat",
        "btrfs",
        "xen_blkfront",
    ];
    let closure = tree.closure(&wanted)?;
    let ours = index::build(&mut tree, &closure.modules)?;
    for line in ours.modules_dep.lines() {
        let (module, _) = line.split_once(':').unwrap();
        let their_line = theirs
            .lines()
            .find(|l| l.split_once(':').map(|(m, _)| m) == Some(module))
            .unwrap_or_else(|| panic_free_missing(module));
        let parse = |l: &str| -> Vec<String> {
            l.split_once(':')
                .unwrap()
                .1
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        let (mut a, mut b) = (parse(line), parse(their_line));
        // Same dependencies ...
        let (sa, sb) = (
            {
                let mut s = a.clone();
                s.sort();
                s
            },
            {
                let mut s = b.clone();
                s.sort();
                s
            },
        );
        assert_eq!(sa, sb, "{module}");
        // ... and, in both, no module listed after one of its own dependencies' dependents
        // would require: a module comes before the modules it needs.
        for list in [&mut a, &mut b] {
            for (i, m) in list.iter().enumerate() {
                let name = modinfo::module_name_of(std::path::Path::new(m)).unwrap();
                for d in tree.dependency_list(&name)? {
                    let dp = tree
                        .plain_relative_path(&d)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    let j = list.iter().position(|x| *x == dp).unwrap();
                    assert!(j > i, "{module}: {m} listed after its dependency {dp}");
                }
            }
        }
    }
    Ok(())
}

fn panic_free_missing(module: &str) -> &'static str {
    eprintln!("depmod has no line for {module}");
    "x: missing-from-depmod"
}

/// CentOS-era trees ship `.ko.xz`; others `.ko.zst` or `.ko.gz`: all read the same.
#[test]
fn compressed_modules_resolve_and_decompress() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let Some(dir) = test_tree() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let tree_dir = tmp.path().join("6.1.0-test");
    let sub = tree_dir.join("kernel/drivers/virtio");
    std::fs::create_dir_all(&sub)?;
    let original = |name: &str| std::fs::read(dir.join(format!("kernel/drivers/{name}.ko")));
    let blk = original("block/virtio_blk")?;
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&blk)?;
    std::fs::write(sub.join("virtio_blk.ko.xz"), xz.finish()?)?;
    std::fs::write(
        sub.join("virtio.ko.zst"),
        zstd::encode_all(&original("virtio/virtio")?[..], 3)?,
    )?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&original("virtio/virtio_ring")?)?;
    std::fs::write(sub.join("virtio_ring.ko.gz"), gz.finish()?)?;

    let mut tree = ModuleTree::open(&tree_dir)?;
    assert_eq!(tree.version(), "6.1.0-test");
    let closure = tree.closure(&["virtio_blk"])?;
    assert_eq!(closure.modules.len(), 3, "{closure:?}");
    assert_eq!(
        closure.modules.last().map(String::as_str),
        Some("virtio_blk")
    );
    assert_eq!(tree.read_module("virtio_blk")?, blk);
    assert_eq!(
        tree.plain_relative_path("virtio_ring"),
        Some(PathBuf::from("kernel/drivers/virtio/virtio_ring.ko"))
    );
    let files = index::build(&mut tree, &closure.modules)?;
    assert!(files
        .modules_dep
        .contains("kernel/drivers/virtio/virtio_blk.ko: kernel/drivers/virtio/"));
    Ok(())
}
