//! Whole-image tests against the test kernel (scripts/fetch-kernel.sh build/kernel); skipped
//! when it is absent.

#![allow(clippy::unwrap_used)]

use super::*;
use std::io::Read;

fn test_kernel() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("LIFEBOAT_TEST_KERNEL").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../build/kernel"
        ))),
        Some(PathBuf::from("/work/main/build/kernel")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("vmlinuz").is_file() && p.join("modules").is_dir());
    lifeboat_core::testing::require(
        found.is_some(),
        "no test kernel (make kernel, or scripts/fetch-kernel.sh build/kernel)",
    )
    .then_some(found)
    .flatten()
}

fn options(kernel: &Path, init: &Path, output: &Path) -> RescueOptions {
    RescueOptions {
        kernel: kernel.join("vmlinuz"),
        modules: kernel.join("modules"),
        selection: Selection::Generic,
        init: init.to_path_buf(),
        lifeboat: None,
        extra_binaries: Vec::new(),
        shell: false,
        compression: Compression::Zstd { level: 19 },
        output: output.to_path_buf(),
        secure_boot: false,
        sysfs: PathBuf::from("/sys"),
    }
}

#[test]
fn generic_image_is_complete_and_reproducible() -> Result<()> {
    let Some(kernel) = test_kernel() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let init = dir.path().join("init");
    std::fs::write(&init, "#!/bin/sh\necho test init\n")?;
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let report = build(&options(&kernel, &init, &a))?;
    build(&options(&kernel, &init, &b))?;
    let image_a = std::fs::read(a.join("initrd.img"))?;
    assert_eq!(
        image_a,
        std::fs::read(b.join("initrd.img"))?,
        "two builds differ"
    );
    assert_eq!(report.compressed_size, image_a.len() as u64);
    assert!(
        report.compressed_size < 16 << 20,
        "{} bytes",
        report.compressed_size
    );
    assert_eq!(
        std::fs::read(a.join("vmlinuz"))?,
        std::fs::read(kernel.join("vmlinuz"))?
    );

    let mut cpio_bytes = Vec::new();
    zstd::stream::read::Decoder::new(&image_a[..])?.read_to_end(&mut cpio_bytes)?;
    assert_eq!(cpio_bytes.len() as u64, report.uncompressed_size);
    let entries = cpio::parse(&cpio_bytes)?;
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert!(entries
        .iter()
        .all(|e| e.mtime == 0 && e.uid == 0 && e.gid == 0));
    let get = |n: &str| entries.iter().find(|e| e.name == n);
    let console = get("dev/console").unwrap();
    assert_eq!(
        (console.mode & cpio::S_IFMT, console.rdev),
        (cpio::S_IFCHR, (5, 1))
    );
    assert_eq!(get("init").unwrap().data, b"#!/bin/sh\necho test init\n");
    for d in ["proc", "sys", "dev", "run", "tmp", "mnt", "etc"] {
        assert_eq!(get(d).unwrap().mode & cpio::S_IFMT, cpio::S_IFDIR, "{d}");
    }
    let ver = report.kernel_version.clone();
    let module = get(&format!(
        "lib/modules/{ver}/kernel/drivers/block/virtio_blk.ko"
    ))
    .unwrap();
    assert!(module.data.starts_with(b"\x7fELF"));
    let dep = String::from_utf8(
        get(&format!("lib/modules/{ver}/modules.dep"))
            .unwrap()
            .data
            .clone(),
    )?;
    assert!(
        dep.lines()
            .any(|l| l.starts_with("kernel/drivers/block/virtio_blk.ko: ")
                && l.contains("kernel/drivers/virtio/virtio.ko")
                && l.contains("kernel/drivers/virtio/virtio_ring.ko")),
        "{dep}"
    );
    // Every module modules.dep names is in the image.
    for path in dep.split_whitespace() {
        let path = path.trim_end_matches(':');
        assert!(
            get(&format!("lib/modules/{ver}/{path}")).is_some(),
            "{path}"
        );
    }
    let alias = String::from_utf8(
        get(&format!("lib/modules/{ver}/modules.alias"))
            .unwrap()
            .data
            .clone(),
    )?;
    assert!(alias
        .lines()
        .any(|l| l.starts_with("alias virtio:d00000002v") && l.ends_with(" virtio_blk")));
    assert!(get(&format!("lib/modules/{ver}/modules.builtin")).is_some());
    assert!(get(&format!("lib/modules/{ver}/modules.softdep")).is_some());
    if Path::new("/sbin/mke2fs").exists() {
        assert!(get("sbin/mke2fs").is_some());
        assert_eq!(get("sbin/mkfs.ext4").unwrap().data, b"mke2fs");
        assert!(get("lib64/ld-linux-x86-64.so.2").is_some());
        assert!(names.iter().any(|n| n.contains("libext2fs.so")));
        assert!(get("etc/mke2fs.conf").is_some());
    }
    let listing = std::fs::read_to_string(a.join("initrd.list"))?;
    assert!(listing.contains("/lib/modules/") && listing.contains("virtio_blk"));
    Ok(())
}

#[test]
fn host_only_finds_bound_drivers_and_modalias_matches() -> Result<()> {
    let Some(kernel) = test_kernel() else {
        return Ok(());
    };
    let mut tree = ModuleTree::open(&kernel.join("modules"))?;
    let sys = tempfile::tempdir()?;
    let dev = sys.path().join("bus/virtio/devices/virtio0");
    std::fs::create_dir_all(sys.path().join("module/virtio_blk"))?;
    std::fs::create_dir_all(dev.join("driver"))?;
    std::os::unix::fs::symlink("../../../../module/virtio_blk", dev.join("driver/module"))?;
    let pci = sys.path().join("devices/pci0000:00/0000:00:04.0");
    std::fs::create_dir_all(&pci)?;
    std::fs::write(
        pci.join("modalias"),
        "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n",
    )?;
    let found = modules::host_modules(&mut tree, sys.path())?;
    assert!(found.contains("virtio_blk"), "{found:?}");
    assert!(found.contains("virtio_pci"), "{found:?}");
    Ok(())
}

#[test]
fn reads_the_release_from_the_bzimage_header() -> Result<()> {
    let Some(kernel) = test_kernel() else {
        return Ok(());
    };
    let release = kernel_release(&kernel.join("vmlinuz"))?;
    let tree = ModuleTree::open(&kernel.join("modules"))?;
    assert_eq!(release.as_deref(), Some(tree.version()));
    let dir = tempfile::tempdir()?;
    let not_kernel = dir.path().join("x");
    std::fs::write(&not_kernel, b"hello")?;
    assert_eq!(kernel_release(&not_kernel)?, None);
    Ok(())
}
