//! The hybrid ISO: isolinux (BIOS), GRUB EFI image (UEFI), isohybrid for USB sticks.
//!
//! ```text
//! /isolinux/isolinux.bin ldlinux.c32 menu.c32 libutil.c32 isolinux.cfg boot.cat   BIOS El Torito
//! /boot/grub/efi.img        FAT image with EFI/BOOT/BOOTX64.EFI                     UEFI El Torito
//! /boot/grub/grub.cfg       the UEFI menu
//! /EFI/BOOT/BOOTX64.EFI     the same GRUB image, for firmware that reads the ISO tree
//! /lifeboat/vmlinuz, /lifeboat/initrd.img, /lifeboat/id-<content id>
//! /lifeboat/repo.img        the repository's files (`mkrescue --repo-*`), a second initrd
//! ```
//! xorriso writes an isohybrid MBR (isolinux's isohdpfx.bin: BIOS boot from a USB stick) and a
//! GPT/MBR partition entry for efi.img (UEFI boot from a USB stick). The GRUB image finds the
//! ISO by the id file, whose name is unique to this kernel + initrd + command line, so another
//! Lifeboat stick or CD in the same machine is not picked by mistake.
//!
//! With `secure` (Secure Boot media, [`super::secureboot`]): `EFI/BOOT/BOOTX64.EFI` is Debian's
//! signed shim, `EFI/BOOT/grubx64.efi` Debian's signed `gcdx64.efi`, `EFI/BOOT/mmx64.efi`
//! MokManager, in efi.img and in the ISO tree. `gcdx64.efi`'s built-in prefix is /boot/grub on
//! the device it came from: efi.img gets a /boot/grub/grub.cfg with the search above, the ISO's
//! /boot/grub/grub.cfg is the menu.

use super::pxe::bootfiles::{self, Initrds, Menu, MenuDefault, GRUB_TEMPLATE, SYSLINUX_TEMPLATE};
use anyhow::Context;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the ISO is built from.
#[derive(Debug, Clone)]
pub struct IsoOptions {
    pub kernel: PathBuf,
    /// The initrds every entry loads, in order ([`super::boot_initrds`]).
    pub initrds: Vec<PathBuf>,
    pub append: Option<String>,
    /// Secure Boot: Debian's signed shim and GRUB instead of a GRUB image made here.
    pub secure: Option<super::secureboot::SignedLoaders>,
}

/// The ISO 9660 volume label.
pub const VOLUME_LABEL: &str = "LIFEBOAT";

const GRUB_EARLY_TEMPLATE: &str = include_str!("../../../pxe/grub-iso-early.cfg");

/// GRUB modules the ISO's EFI image adds to the common ones: the ISO on a CD (iso9660, El Torito) or on a USB
/// stick (isohybrid: part_msdos/part_gpt), found with `search --file`.
const GRUB_ISO_MODULES: &[&str] = &[
    "search",
    "search_fs_file",
    "search_label",
    "iso9660",
    "part_msdos",
    "part_gpt",
    "fat",
];

/// Writes the hybrid ISO to `file`.
pub fn write_iso(opts: &IsoOptions, file: &Path) -> anyhow::Result<()> {
    let xorriso = bootfiles::tool("xorriso", "xorriso")?;
    let mkfs_vfat = bootfiles::tool("mkfs.vfat", "dosfstools")?;
    let mmd = bootfiles::tool("mmd", "mtools")?;
    let mcopy = bootfiles::tool("mcopy", "mtools")?;
    let isohdpfx = bootfiles::ISOHDPFX_BIN.locate()?;
    let bios_files = [
        bootfiles::ISOLINUX_BIN.locate()?,
        bootfiles::LDLINUX.locate()?,
        bootfiles::MENU_C32.locate()?,
        bootfiles::LIBUTIL_C32.locate()?,
    ];
    // Resolved, because xorriso would graft a symlink as a symlink.
    let resolve = |f: &Path| {
        fs::canonicalize(f)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} does not exist: run `lifeboat mkrescue` first",
                    f.display()
                )
            })
    };
    let kernel = resolve(&opts.kernel)?;
    let initrds = opts
        .initrds
        .iter()
        .map(|i| resolve(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names = super::initrd_names(&opts.initrds)?;
    let on_iso = Initrds(names.0.iter().map(|n| format!("/lifeboat/{n}")).collect());

    let staging = Staging::new(file)?;
    let root = staging.path();
    for d in ["isolinux", "boot/grub", "EFI/BOOT", "lifeboat"] {
        fs::create_dir_all(root.join(d))
            .with_context(|| format!("cannot create {}", root.join(d).display()))?;
    }

    let append = bootfiles::kernel_cmdline(opts.append.as_deref());
    let mut content: Vec<&Path> = vec![&kernel];
    content.extend(initrds.iter().map(PathBuf::as_path));
    let id = bootfiles::content_id(&content, &append)?;
    let marker = format!("/lifeboat/id-{id}");
    write(
        &root.join(marker.trim_start_matches('/')),
        &format!("{id}\n"),
    )?;

    let menu = Menu {
        title: "Lifeboat recovery CD: restore this host from its backup".to_string(),
        append,
        timeout_secs: bootfiles::menu_timeout(MenuDefault::Restore),
        default: MenuDefault::Restore,
        // A CD or USB stick left in boots again after a reboot: the unattended entry powers
        // off, and restores once per request.
        unattended: bootfiles::Unattended {
            request: bootfiles::new_request_id()?,
            power_off: true,
        },
    };
    // BIOS: isolinux. LOCALBOOT -1 hands back to the BIOS, which tries the next boot device
    // (0x80 would boot the USB stick itself again when the ISO was written to one).
    for f in &bios_files {
        let name = f.file_name().unwrap_or_default();
        bootfiles::copy_file(f, &root.join("isolinux").join(name))?;
    }
    write(
        &root.join("isolinux/isolinux.cfg"),
        &menu.fill(
            SYSLINUX_TEMPLATE,
            "/lifeboat/vmlinuz",
            &on_iso,
            &[("LOCALBOOT", "-1")],
        )?,
    )?;

    // UEFI: GRUB with an embedded config that finds this ISO, then its grub.cfg.
    write(
        &root.join("boot/grub/grub.cfg"),
        &menu.fill(GRUB_TEMPLATE, "/lifeboat/vmlinuz", &on_iso, &[])?,
    )?;
    let early = staging.scratch("grub-early.cfg");
    write(
        &early,
        &bootfiles::fill_template(
            GRUB_EARLY_TEMPLATE,
            &[("GENERATED", bootfiles::GENERATED), ("MARKER", &marker)],
        )?,
    )?;
    // The files of EFI/BOOT (in efi.img and in the ISO tree), and what efi.img holds besides.
    let mut efi_files: Vec<(PathBuf, &str)> = Vec::new();
    let mut efi_extra: Vec<(PathBuf, &str)> = Vec::new();
    match &opts.secure {
        None => {
            let efi_binary = root.join("EFI/BOOT/BOOTX64.EFI");
            bootfiles::grub_mkimage(&efi_binary, "/boot/grub", Some(&early), GRUB_ISO_MODULES)?;
            efi_files.push((efi_binary, "BOOTX64.EFI"));
        }
        Some(signed) => {
            use super::secureboot::{GRUB_NAME, MOKMANAGER_NAME, SHIM_MEDIA_NAME};
            for (from, name) in [
                (&signed.shim, SHIM_MEDIA_NAME),
                (&signed.grub_cd, GRUB_NAME),
                (&signed.mokmanager, MOKMANAGER_NAME),
            ] {
                let to = root.join("EFI/BOOT").join(name);
                bootfiles::copy_file(from, &to)?;
                efi_files.push((to, name));
            }
            // gcdx64.efi reads /boot/grub/grub.cfg from efi.img: the search for this ISO.
            efi_extra.push((early.clone(), "boot/grub/grub.cfg"));
        }
    }

    // The EFI System Partition image: FAT, sized for the EFI files plus slack.
    let efi_img = root.join("boot/grub/efi.img");
    let mut efi_len = 0;
    for (f, _) in &efi_files {
        efi_len += fs::metadata(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .len();
    }
    let kib = (efi_len / 1024 + 1024).max(2048);
    bootfiles::run(
        Command::new(&mkfs_vfat)
            .arg("-C")
            .arg("-n")
            .arg("LIFEBOATEFI")
            .arg(&efi_img)
            .arg(kib.to_string()),
    )?;
    let mut dirs = vec!["::/EFI", "::/EFI/BOOT"];
    if !efi_extra.is_empty() {
        dirs.extend(["::/boot", "::/boot/grub"]);
    }
    bootfiles::run(Command::new(&mmd).arg("-i").arg(&efi_img).args(&dirs))?;
    let in_img = efi_files
        .iter()
        .map(|(f, name)| (f, format!("::/EFI/BOOT/{name}")))
        .chain(efi_extra.iter().map(|(f, at)| (f, format!("::/{at}"))));
    for (from, at) in in_img {
        bootfiles::run(
            Command::new(&mcopy)
                .arg("-i")
                .arg(&efi_img)
                .arg(from)
                .arg(at),
        )?;
    }

    // The ISO, written beside the target and renamed into place when complete.
    let partial = staging.scratch("lifeboat.iso");
    let graft = |at: &str, from: &Path| {
        let mut s = std::ffi::OsString::from(at);
        s.push("=");
        s.push(from);
        s
    };
    let mut cmd = Command::new(&xorriso);
    cmd.args(["-as", "mkisofs", "-quiet"])
        .args(["-iso-level", "3", "-full-iso9660-filenames"])
        .args(["-joliet", "-joliet-long", "-rational-rock"])
        .args(["-volid", VOLUME_LABEL])
        .args(["-appid", "Lifeboat recovery image"])
        .args(["-publisher", "lifeboat mkrescue"])
        // BIOS El Torito (isolinux) and the isohybrid MBR for USB sticks.
        .args(["-eltorito-boot", "isolinux/isolinux.bin"])
        .args(["-eltorito-catalog", "isolinux/boot.cat"])
        .args(["-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"])
        .arg("-isohybrid-mbr")
        .arg(&isohdpfx)
        // UEFI El Torito (the FAT image) and its partition entry for USB sticks.
        .args([
            "-eltorito-alt-boot",
            "-e",
            "boot/grub/efi.img",
            "-no-emul-boot",
        ])
        .arg("-isohybrid-gpt-basdat")
        .arg("-o")
        .arg(&partial)
        .arg("-graft-points")
        .arg(graft("/", &root))
        .arg(graft("/lifeboat/vmlinuz", &kernel));
    for (at, from) in on_iso.0.iter().zip(&initrds) {
        cmd.arg(graft(at, from));
    }
    bootfiles::run(&mut cmd)?;
    fs::rename(&partial, file)
        .with_context(|| format!("cannot move the ISO into place at {}", file.display()))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A scratch directory beside the output file (so the final rename stays on one filesystem),
/// removed when dropped.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new(file: &Path) -> anyhow::Result<Staging> {
        let parent = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "lifeboat.iso".into());
        let dir = parent.join(format!(".{name}.build-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(dir.join("tree")).with_context(|| {
            format!(
                "cannot create {} (is the directory writable?)",
                dir.display()
            )
        })?;
        Ok(Staging { dir })
    }

    /// The ISO's file tree.
    fn path(&self) -> PathBuf {
        self.dir.join("tree")
    }

    /// A file outside the tree.
    fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn iso_has_both_boot_records_and_the_menus() {
        let have = bootfiles::tool("xorriso", "xorriso").is_ok()
            && bootfiles::ISOLINUX_BIN.locate().is_ok()
            && bootfiles::grub_dir().is_ok()
            && bootfiles::tool("mcopy", "mtools").is_ok();
        if !lifeboat_core::testing::require(
            have,
            "xorriso, isolinux, grub-efi-amd64-bin or mtools not installed",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("k"), vec![1u8; 4096]).unwrap();
        fs::write(dir.path().join("i"), vec![2u8; 4096]).unwrap();
        let repo = dir.path().join(crate::rescue::REPO_IMG);
        fs::write(&repo, b"repository keys").unwrap();
        let o = IsoOptions {
            kernel: dir.path().join("k"),
            initrds: crate::rescue::boot_initrds(&dir.path().join("i"), Some(&repo)),
            append: None,
            secure: None,
        };
        let iso = dir.path().join("out.iso");
        write_iso(&o, &iso).unwrap();
        let bytes = fs::read(&iso).unwrap();
        // isohybrid MBR signature, and the ISO 9660 primary volume descriptor with our label.
        assert_eq!(&bytes[510..512], &[0x55, 0xaa]);
        assert_eq!(&bytes[0x8001..0x8006], b"CD001");
        assert_eq!(
            &bytes[0x8028..0x8028 + VOLUME_LABEL.len()],
            VOLUME_LABEL.as_bytes()
        );
        // Both menus (BIOS isolinux, UEFI GRUB) load repo.img after the image, and it is there.
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            text.matches("INITRD /lifeboat/initrd.img,/lifeboat/repo.img\n")
                .count(),
            2,
            "isolinux.cfg"
        );
        assert_eq!(
            text.matches("initrd /lifeboat/initrd.img /lifeboat/repo.img\n")
                .count(),
            2,
            "grub.cfg"
        );
        assert!(text.contains("repository keys"));
        // El Torito boot record volume descriptor.
        assert_eq!(&bytes[0x8801..0x8806], b"CD001");
        assert_eq!(bytes[0x8800], 0);
        // No scratch directory left behind.
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
