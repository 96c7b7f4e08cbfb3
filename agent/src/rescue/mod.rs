//! The recovery image builder: module selection, ELF dependencies, cpio; the PXE tree and
//! the ISO (`pxe`, `iso`).
//!
//! Layout of the image (what lifeboat-init can rely on):
//! - `/init` (lifeboat-init), `/bin/lifeboat`;
//! - `/dev/console`, `/dev/null`; empty `/proc /sys /dev /run /tmp /mnt /root`;
//! - `/lib/modules/<version>/…/*.ko` (decompressed) with `modules.dep` (depmod's format: the
//!   dependencies of a module come before the modules they need, so load them from the last
//!   to the first, then the module), `modules.alias`, `modules.softdep`, `modules.builtin`,
//!   `modules.builtin.modinfo`;
//! - `/lib/firmware/…` as the modules' `firmware=` name them;
//! - `/sbin/mke2fs` (+ `mkfs.ext2/3/4` links), `/sbin/mkfs.fat` (+ `mkfs.vfat`), `/sbin/tune2fs`
//!   (+ `e2label`), `/sbin/e2fsck` (+ `fsck.ext4`), `mdadm`, with their libraries and interpreter at the host's paths, `/etc/mke2fs.conf`;
//! - with `--shell`: `/bin/busybox` and its applets as links in `/bin` (`/bin/sh`, ...);
//! - `/etc/lifeboat-rescue`: KEY=value facts about the build (KERNEL, MODULES, SHELL, ...).

pub mod cpio;
pub mod elf;
pub mod image;
pub mod iso;
pub mod modules;
pub mod pxe;
pub mod secureboot;

use anyhow::{bail, Context, Result};
use image::{Compression, Image};
use lifeboat_core::kmod::ModuleTree;
use lifeboat_core::programs::{find_any, find_program};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Which modules go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Generic,
    HostOnly,
}

/// Everything a build needs, with defaults already applied.
#[derive(Debug, Clone)]
pub struct RescueOptions {
    pub kernel: PathBuf,
    pub modules: PathBuf,
    pub selection: Selection,
    pub init: PathBuf,
    /// Copied to /bin/lifeboat.
    pub lifeboat: Option<PathBuf>,
    pub extra_binaries: Vec<PathBuf>,
    pub shell: bool,
    pub compression: Compression,
    pub output: PathBuf,
    /// Where host-only mode reads devices (normally /sys).
    pub sysfs: PathBuf,
    /// For Secure Boot media: the kernel must carry a signature and every module its appended
    /// signature, else the build fails.
    pub secure_boot: bool,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct RescueReport {
    pub kernel_version: String,
    pub vmlinuz: PathBuf,
    pub initrd: PathBuf,
    pub listing: PathBuf,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub modules: usize,
    pub module_bytes: u64,
    pub firmware: usize,
    pub firmware_missing: usize,
    pub files: usize,
    /// Things the user should know (skipped modules, missing programs).
    pub notes: Vec<String>,
}

/// Helper programs the restore runs: (names to look for, links to make beside it).
const HELPERS: &[(&[&str], &[&str])] = &[
    (&["mke2fs"], &["mkfs.ext2", "mkfs.ext3", "mkfs.ext4"]),
    (&["mkfs.fat", "mkfs.vfat"], &["mkfs.vfat"]),
    (&["tune2fs"], &["e2label"]),
    (&["e2fsck"], &["fsck.ext4"]),
];
/// md RAID: the image assembles a root's array (read-only until the restore) and recreates
/// it on blank disks with mdadm; without it a RAID1 root can still be restored by hand.
const MD_HELPER: &str = "mdadm";
const CONFIG_FILES: &[&str] = &["/etc/mke2fs.conf"];

/// Builds the image into `opts.output`.
pub fn build(opts: &RescueOptions) -> Result<RescueReport> {
    let mut notes = Vec::new();
    let mut tree = ModuleTree::open(&opts.modules)
        .with_context(|| format!("cannot read the module tree {}", opts.modules.display()))?;
    let version = tree.version().to_string();
    if let Some(kernel_version) = kernel_release(&opts.kernel)? {
        if kernel_version != version {
            notes.push(format!(
                "the kernel {} is {kernel_version} but the modules in {} are for {version}: \
                 they will not load; pass the matching --modules",
                opts.kernel.display(),
                opts.modules.display()
            ));
        }
    }

    if opts.secure_boot {
        secureboot::require_authenticode(&opts.kernel)?;
    }

    let mut image = Image::new();
    for d in ["proc", "sys", "dev", "run", "mnt", "etc", "bin", "sbin"] {
        image.dir(d);
    }
    image.dir_mode("tmp", 0o1777);
    image.dir_mode("root", 0o700);
    image.char_dev("dev/console", 0o600, 5, 1);
    image.char_dev("dev/null", 0o666, 1, 3);

    // PID 1 and the agent.
    let search = elf::LibSearch::system();
    image
        .file_host("init", &opts.init, 0o755)
        .with_context(|| format!("cannot use {} as /init", opts.init.display()))?;
    add_libraries(&mut image, &opts.init, &search, &mut notes)?;
    if let Some(lifeboat) = &opts.lifeboat {
        image.file_host("bin/lifeboat", lifeboat, 0o755)?;
        add_libraries(&mut image, lifeboat, &search, &mut notes)?;
    }

    // Modules.
    let mut requests: Vec<String> = match opts.selection {
        Selection::Generic => modules::GENERIC
            .iter()
            .chain(modules::FILESYSTEMS)
            .map(|s| s.to_string())
            .collect(),
        Selection::HostOnly => {
            let mut set: BTreeSet<String> = modules::host_modules(&mut tree, &opts.sysfs)?;
            set.extend(modules::FILESYSTEMS.iter().map(|s| s.to_string()));
            set.into_iter().collect()
        }
    };
    requests.dedup();
    let report = modules::add_modules(&mut image, &mut tree, &requests)?;
    let closure = &report.closure;
    if opts.secure_boot && !report.unsigned.is_empty() {
        bail!(
            "--secure-boot: these modules of {} carry no signature, and the kernel in Secure Boot \
             lockdown would refuse them: {} (use the module tree of Debian's signed kernel)",
            opts.modules.display(),
            report.unsigned.join(" ")
        );
    }
    if !closure.missing.is_empty() {
        let list: Vec<&str> = closure.missing.iter().map(String::as_str).collect();
        notes.push(format!("not in this kernel, skipped: {}", list.join(" ")));
    }
    for (module, dep) in &closure.broken {
        notes.push(format!(
            "{module} needs {dep}, which is neither a module nor built in: the module tree is incomplete"
        ));
    }

    // Helper programs.
    for (names, links) in HELPERS {
        let Some(path) = find_any(names) else {
            notes.push(format!(
                "{} not found on this machine: the restore cannot create that filesystem \
                 (install e2fsprogs / dosfstools, then build again)",
                names.join(" or ")
            ));
            continue;
        };
        add_program(&mut image, &path, &search, &mut notes)?;
        let dir = image::image_key(path.parent().unwrap_or(Path::new("/sbin")));
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for link in *links {
            let at = format!("{dir}/{link}");
            if !image.contains(&at) && *link != file {
                image.symlink(&at, &file, "link");
            }
        }
    }
    match find_program(MD_HELPER) {
        Some(path) => add_program(&mut image, &path, &search, &mut notes)?,
        None => notes.push(format!(
            "{MD_HELPER} not found on this machine: the image cannot assemble or recreate md RAID arrays (install mdadm, then build again)"
        )),
    }
    for conf in CONFIG_FILES {
        if Path::new(conf).is_file() {
            image.file_host(conf, Path::new(conf), 0o644)?;
        }
    }
    for extra in &opts.extra_binaries {
        // A bare name ("sgdisk") is looked up in the system directories.
        let bare = extra.components().count() == 1 && !extra.exists();
        let path = match bare {
            true => find_program(&extra.to_string_lossy()),
            false => Some(extra.clone()).filter(|p| p.exists()),
        };
        let Some(path) = path else {
            bail!(
                "{}: no such program (given with --add-binary); give its path",
                extra.display()
            );
        };
        let path = match path.is_absolute() {
            true => path,
            false => std::env::current_dir()?.join(path),
        };
        add_program(&mut image, &path, &search, &mut notes)?;
    }
    if opts.shell {
        add_busybox(&mut image, &search, &mut notes)?;
    }

    let mut facts = String::new();
    let _ = writeln!(facts, "LIFEBOAT_VERSION={}", lifeboat_core::VERSION);
    let _ = writeln!(facts, "KERNEL={version}");
    let _ = writeln!(
        facts,
        "SELECTION={}",
        if opts.selection == Selection::Generic {
            "generic"
        } else {
            "hostonly"
        }
    );
    let _ = writeln!(facts, "MODULES={}", closure.modules.len());
    let _ = writeln!(facts, "SHELL={}", if opts.shell { "/bin/sh" } else { "" });
    let _ = writeln!(facts, "SECURE_BOOT={}", u8::from(opts.secure_boot));
    image.file_bytes(
        "etc/lifeboat-rescue",
        0o644,
        facts.into_bytes(),
        "generated",
    );

    // Write.
    std::fs::create_dir_all(&opts.output).with_context(|| {
        format!(
            "cannot create the output directory {}",
            opts.output.display()
        )
    })?;
    let cpio = image.write_cpio(Vec::new())?;
    let compressed = image::compress(&cpio, opts.compression)?;
    let initrd = opts.output.join("initrd.img");
    let vmlinuz = opts.output.join("vmlinuz");
    let listing_path = opts.output.join("initrd.list");
    write_atomic(&initrd, &compressed)?;
    let kernel_bytes = std::fs::read(&opts.kernel)
        .with_context(|| format!("cannot read the kernel {}", opts.kernel.display()))?;
    write_atomic(&vmlinuz, &kernel_bytes)?;

    let mut listing = String::new();
    let _ = writeln!(
        listing,
        "# lifeboat mkrescue {}: kernel {version}",
        lifeboat_core::VERSION
    );
    let _ = writeln!(
        listing,
        "# initrd.img: {} bytes compressed ({:?}), {} bytes of cpio, {} modules",
        compressed.len(),
        opts.compression,
        cpio.len(),
        closure.modules.len()
    );
    let _ = writeln!(listing, "# modules (load order):");
    for m in &closure.modules {
        let _ = writeln!(listing, "#   {m}");
    }
    let builtin: Vec<&str> = closure.builtin.iter().map(String::as_str).collect();
    let _ = writeln!(listing, "# built into the kernel: {}", builtin.join(" "));
    let missing: Vec<&str> = closure.missing.iter().map(String::as_str).collect();
    let _ = writeln!(listing, "# not in this kernel: {}", missing.join(" "));
    for (fw, module) in &report.firmware_missing {
        let _ = writeln!(listing, "# firmware missing: {fw} (for {module})");
    }
    for note in &notes {
        let _ = writeln!(listing, "# note: {note}");
    }
    let _ = writeln!(listing, "# type mode size path\tsource");
    listing.push_str(&image.listing());
    write_atomic(&listing_path, listing.as_bytes())?;

    Ok(RescueReport {
        kernel_version: version,
        vmlinuz,
        initrd,
        listing: listing_path,
        compressed_size: compressed.len() as u64,
        uncompressed_size: cpio.len() as u64,
        modules: closure.modules.len(),
        module_bytes: report.module_bytes,
        firmware: report.firmware.len(),
        firmware_missing: report.firmware_missing.len(),
        files: image.nodes().len(),
        notes,
    })
}

/// A program at its own path, with its libraries and interpreter.
fn add_program(
    image: &mut Image,
    path: &Path,
    search: &elf::LibSearch,
    notes: &mut Vec<String>,
) -> Result<()> {
    image.add_host_path(path)?;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    add_libraries(image, &real, search, notes)
}

fn add_libraries(
    image: &mut Image,
    program: &Path,
    search: &elf::LibSearch,
    notes: &mut Vec<String>,
) -> Result<()> {
    let deps = elf::dependencies(program, search)?;
    if let Some(interp) = &deps.interpreter {
        image.add_host_path(interp)?;
    }
    for lib in &deps.libraries {
        image.add_host_path(lib)?;
    }
    if !deps.missing.is_empty() {
        notes.push(format!(
            "{} needs {}, not found on this machine: it will not run in the image",
            program.display(),
            deps.missing.join(" ")
        ));
    }
    Ok(())
}

/// busybox (static, from busybox-static) and a link in /bin for each applet, where the image
/// has nothing else under that name.
fn add_busybox(image: &mut Image, search: &elf::LibSearch, notes: &mut Vec<String>) -> Result<()> {
    let Some(busybox) = find_program("busybox") else {
        bail!("--shell needs busybox, which is not on this machine: install busybox-static");
    };
    add_program(image, &busybox, search, notes)?;
    image.file_host("bin/busybox", &std::fs::canonicalize(&busybox)?, 0o755)?;
    let listed = std::process::Command::new(&busybox).arg("--list").output();
    let applets: Vec<String> = match listed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && !l.contains('/'))
            .collect(),
        _ => [
            "sh", "ls", "cat", "mount", "umount", "dmesg", "ps", "vi", "less", "ip", "cp", "mv",
            "rm", "mkdir", "ln",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    for applet in applets {
        let taken = ["bin", "sbin", "usr/bin", "usr/sbin"]
            .iter()
            .any(|d| image.contains(&format!("{d}/{applet}")));
        if !taken && applet != "busybox" {
            image.symlink(&format!("bin/{applet}"), "busybox", "busybox applet");
        }
    }
    Ok(())
}

/// The second initrd with the repository's configuration and keys (`mkrescue --repo-*`).
pub const REPO_IMG: &str = "repo.img";

/// The one list of initrds that every boot entry of the PXE tree, the ISO and the USB image
/// loads, in order: the recovery image, then `repo.img` when the build has one (the kernel
/// unpacks it over the first, putting the repository's files in /etc/lifeboat/repo).
pub fn boot_initrds(initrd: &Path, repo_img: Option<&Path>) -> Vec<PathBuf> {
    std::iter::once(initrd.to_path_buf())
        .chain(repo_img.map(Path::to_path_buf))
        .collect()
}

/// The names the initrds of [`boot_initrds`] get on a medium: the first is always
/// `initrd.img`, the others keep their file names (repo.img); two alike are refused.
pub fn initrd_names(initrds: &[PathBuf]) -> Result<pxe::bootfiles::Initrds> {
    let mut names: Vec<String> = Vec::new();
    for (i, f) in initrds.iter().enumerate() {
        let name = if i == 0 {
            pxe::INITRD_NAME.to_string()
        } else {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| anyhow::anyhow!("{} is not a file name", f.display()))?
        };
        if names.contains(&name) {
            bail!(
                "two initrds would be called {name} on the boot medium ({}): rename one",
                f.display()
            );
        }
        names.push(name);
    }
    if names.is_empty() {
        bail!("no initrd for the boot medium");
    }
    Ok(pxe::bootfiles::Initrds(names))
}

/// Writes a file through a temporary beside it and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The release string in an x86 bzImage header (e.g. "6.1.0-56-cloud-amd64"), if the file is
/// one: the setup header at 0x202 says "HdrS", the u16 at 0x20E points (minus 0x200) to it.
pub fn kernel_release(kernel: &Path) -> Result<Option<String>> {
    let bytes = std::fs::read(kernel)
        .with_context(|| format!("cannot read the kernel {}", kernel.display()))?;
    if bytes.get(0x202..0x206) != Some(b"HdrS") {
        return Ok(None);
    }
    let Some(ptr) = bytes
        .get(0x20E..0x210)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    else {
        return Ok(None);
    };
    let start = ptr + 0x200;
    let Some(rest) = bytes.get(start..start.saturating_add(256).min(bytes.len())) else {
        return Ok(None);
    };
    let text: String = rest
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    Ok((!text.is_empty()).then_some(text))
}

#[cfg(test)]
mod build_tests;
