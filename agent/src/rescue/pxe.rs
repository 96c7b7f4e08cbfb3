//! The PXE tree: pxelinux (BIOS), GRUB netboot (UEFI), iPXE script, per-host configs.
//!
//! The menus are the templates in `pxe/` (embedded at build time) filled with the file names and
//! the kernel command line. The tree is relocatable: every boot loader finds the kernel and initrd
//! relative to the directory it was loaded from, so the tree can sit at the root of a TFTP/HTTP
//! server or in any subdirectory of it.
//!
//! ```text
//! DIR/pxelinux.0 ldlinux.c32 menu.c32 libutil.c32   BIOS (Debian's pxelinux, syslinux-common)
//! DIR/pxelinux.cfg/default, pxelinux.cfg/01-<mac>    its menus
//! DIR/bootx64.efi                                    UEFI: GRUB network image (grub-mkimage)
//! DIR/grub.cfg, grub.cfg-01-<mac>                    its menus (GRUB looks these names up itself)
//! DIR/boot.ipxe, boot-01-<mac>.ipxe                  iPXE (HTTP boot)
//! DIR/vmlinuz, DIR/initrd.img                        the recovery image
//! DIR/repo.img                                       the repository's files (`--repo-*`)
//! DIR/README.md                                      how to serve the tree
//! ```
//! With `secure` (Secure Boot, [`super::secureboot`]): `bootx64.efi` is Debian's signed shim,
//! `grubx64.efi` Debian's signed `grubnetx64.efi`, `mmx64.efi` beside them, and
//! `grub/grub.cfg` (from `pxe/grub-signed-net.cfg`) sends that GRUB, whose prefix is fixed at
//! /grub on the TFTP server, to the menus above: such a tree must be the TFTP root (or its
//! `grub/` directory copied there).

pub(crate) mod bootfiles;

use anyhow::Context;
use bootfiles::{Initrds, Menu, MenuDefault, GRUB_TEMPLATE, SYSLINUX_TEMPLATE};
use std::fs;
use std::path::{Path, PathBuf};

/// What the PXE tree is built from.
#[derive(Debug, Clone)]
pub struct PxeOptions {
    /// The recovery kernel and the initrds every entry loads, in order
    /// ([`super::boot_initrds`]: the recovery image, then repo.img when there is one).
    pub kernel: PathBuf,
    pub initrds: Vec<PathBuf>,
    /// Extra kernel command line for every entry.
    pub append: Option<String>,
    /// MAC addresses that get a per-host config.
    pub hosts: Vec<String>,
    /// Per-host configs restore the latest backup without asking, then reboot.
    pub unattended: bool,
    /// Secure Boot: Debian's signed shim and network GRUB instead of a GRUB image made here.
    pub secure: Option<super::secureboot::SignedLoaders>,
}

/// The file names inside the tree.
pub const KERNEL_NAME: &str = "vmlinuz";
pub const INITRD_NAME: &str = "initrd.img";
pub const GRUB_NET_IMAGE: &str = "bootx64.efi";
pub const IPXE_SCRIPT: &str = "boot.ipxe";

const IPXE_TEMPLATE: &str = include_str!("../../../pxe/boot.ipxe");
const GRUB_SIGNED_NET_TEMPLATE: &str = include_str!("../../../pxe/grub-signed-net.cfg");
/// Where Debian's signed network GRUB reads its first config (its built-in prefix is /grub).
pub const GRUB_SIGNED_NET_CONFIG: &str = "grub/grub.cfg";
const README: &str = include_str!("../../../pxe/README.md");

/// GRUB modules the network image adds to the common ones (no module directory is served).
const GRUB_NET_MODULES: &[&str] = &["net", "efinet", "tftp", "http"];

/// Writes the PXE tree into `dir`.
pub fn write_tree(opts: &PxeOptions, dir: &Path) -> anyhow::Result<()> {
    let hosts = opts
        .hosts
        .iter()
        .map(|m| bootfiles::normalize_mac(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if opts.unattended && hosts.is_empty() {
        anyhow::bail!(
            "--unattended applies only to per-host configs (a default menu that restores without \
             asking would wipe every machine that boots from the network): name the host with \
             --pxe-host MAC"
        );
    }
    fs::create_dir_all(dir.join("pxelinux.cfg"))
        .with_context(|| format!("cannot create the PXE tree {}", dir.display()))?;

    // The recovery image, and the repository's files when asked for (a repo.img of an
    // earlier run is removed otherwise: no menu loads it, and it holds keys).
    bootfiles::copy_file(&opts.kernel, &dir.join(KERNEL_NAME))?;
    let initrds = super::initrd_names(&opts.initrds)?;
    for (from, name) in opts.initrds.iter().zip(&initrds.0) {
        bootfiles::copy_file(from, &dir.join(name))?;
    }
    let stale = dir.join(super::REPO_IMG);
    if !initrds.0.iter().any(|n| n == super::REPO_IMG) && stale.exists() {
        fs::remove_file(&stale)
            .with_context(|| format!("cannot remove the stale {}", stale.display()))?;
    }

    // BIOS: pxelinux and its modules.
    for f in [
        &bootfiles::PXELINUX,
        &bootfiles::LDLINUX,
        &bootfiles::MENU_C32,
        &bootfiles::LIBUTIL_C32,
    ] {
        bootfiles::copy_file(&f.locate()?, &dir.join(f.name))?;
    }
    // UEFI: a GRUB network image with an empty prefix, so that GRUB takes the directory it
    // was loaded from (e.g. `(tftp,10.0.0.1)/lifeboat`) as $prefix and reads grub.cfg there.
    match &opts.secure {
        None => bootfiles::grub_mkimage(&dir.join(GRUB_NET_IMAGE), "", None, GRUB_NET_MODULES)?,
        Some(signed) => {
            use super::secureboot::{GRUB_NAME, MOKMANAGER_NAME};
            bootfiles::copy_file(&signed.shim, &dir.join(GRUB_NET_IMAGE))?;
            bootfiles::copy_file(&signed.grub_net, &dir.join(GRUB_NAME))?;
            bootfiles::copy_file(&signed.mokmanager, &dir.join(MOKMANAGER_NAME))?;
            let config = dir.join(GRUB_SIGNED_NET_CONFIG);
            if let Some(parent) = config.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write(&config, &signed_net_stub(&hosts)?)?;
        }
    }

    // One request for every unattended entry of this tree: it restores once, and a later boot
    // through the same entry starts the local disk.
    let request = bootfiles::new_request_id()?;
    let interactive = menu(opts, MenuDefault::Restore, &request, &initrds);
    let per_host = menu(
        opts,
        if opts.unattended {
            MenuDefault::Unattended
        } else {
            MenuDefault::Restore
        },
        &request,
        &initrds,
    );

    write(
        &dir.join("pxelinux.cfg/default"),
        &syslinux_cfg(&interactive)?,
    )?;
    write(&dir.join("grub.cfg"), &grub_cfg(&interactive)?)?;
    write(&dir.join(IPXE_SCRIPT), &ipxe_script(&interactive, true)?)?;
    for mac in &hosts {
        // pxelinux tries pxelinux.cfg/01-<mac> before `default`; Debian's GRUB tries
        // $prefix/grub.cfg-01-<mac> before $prefix/grub.cfg; boot.ipxe chains boot-01-<mac>.ipxe.
        write(
            &dir.join(format!("pxelinux.cfg/01-{mac}")),
            &syslinux_cfg(&per_host)?,
        )?;
        write(
            &dir.join(format!("grub.cfg-01-{mac}")),
            &grub_cfg(&per_host)?,
        )?;
        write(
            &dir.join(format!("boot-01-{mac}.ipxe")),
            &ipxe_script(&per_host, false)?,
        )?;
    }
    remove_stale_host_configs(dir, &hosts)?;
    write(&dir.join("README.md"), README)?;
    Ok(())
}

/// Removes the per-host files that an earlier run wrote for MACs not named this time, so that a
/// machine is never restored unattended by a config the administrator no longer asked for.
/// Files without our header (written by hand) are left alone.
fn remove_stale_host_configs(dir: &Path, hosts: &[String]) -> anyhow::Result<()> {
    let candidates = [
        (dir.join("pxelinux.cfg"), "01-", ""),
        (dir.to_path_buf(), "grub.cfg-01-", ""),
        (dir.to_path_buf(), "boot-01-", ".ipxe"),
    ];
    for (d, prefix, suffix) in candidates {
        let entries = fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot read {}", d.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(mac) = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
            else {
                continue;
            };
            if hosts.iter().any(|h| h == mac) {
                continue;
            }
            let ours = fs::read_to_string(e.path())
                .map(|t| t.contains(bootfiles::GENERATED))
                .unwrap_or(false);
            if ours {
                fs::remove_file(e.path()).with_context(|| {
                    format!(
                        "cannot remove the stale per-host config {}",
                        e.path().display()
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// A menu of this tree and the initrds its entries load (names relative to the tree).
struct TreeMenu {
    menu: Menu,
    initrds: Initrds,
}

fn menu(opts: &PxeOptions, default: MenuDefault, request: &str, initrds: &Initrds) -> TreeMenu {
    let menu = Menu {
        title: "Lifeboat network boot: restore this host from its backup".to_string(),
        append: bootfiles::kernel_cmdline(opts.append.as_deref()),
        timeout_secs: bootfiles::menu_timeout(default),
        default,
        unattended: bootfiles::Unattended {
            request: request.to_string(),
            power_off: false,
        },
    };
    TreeMenu {
        menu,
        initrds: initrds.clone(),
    }
}

/// The /grub/grub.cfg of a Secure Boot tree: per-host menus by MAC, then the default menu.
fn signed_net_stub(hosts: &[String]) -> anyhow::Result<String> {
    let mut lines = String::new();
    for mac in hosts {
        // GRUB names the MAC with colons ($net_default_mac); the files use hyphens.
        let colons = mac.replace('-', ":");
        lines.push_str(&format!(
            "if [ \"$net_default_mac\" = \"{colons}\" ]; then\n  configfile $prefix/grub.cfg-01-{mac}\nfi\n"
        ));
    }
    bootfiles::fill_template(
        GRUB_SIGNED_NET_TEMPLATE,
        &[
            ("GENERATED", bootfiles::GENERATED),
            ("HOSTS", lines.trim_end()),
        ],
    )
}

fn syslinux_cfg(m: &TreeMenu) -> anyhow::Result<String> {
    // pxelinux resolves relative names against the directory pxelinux.0 came from.
    m.menu.fill(
        SYSLINUX_TEMPLATE,
        KERNEL_NAME,
        &m.initrds,
        &[("LOCALBOOT", "0")],
    )
}

fn grub_cfg(m: &TreeMenu) -> anyhow::Result<String> {
    let initrds = Initrds(m.initrds.0.iter().map(|i| format!("$prefix/{i}")).collect());
    m.menu.fill(
        GRUB_TEMPLATE,
        &format!("$prefix/{KERNEL_NAME}"),
        &initrds,
        &[],
    )
}

fn ipxe_script(m: &TreeMenu, main: bool) -> anyhow::Result<String> {
    let chain = if main {
        "# A per-host script (written by `lifeboat mkrescue --pxe-host MAC`) wins over this menu.\n\
         chain --autofree boot-01-${netX/mac:hexhyp}.ipxe ||"
    } else {
        "# Per-host script."
    };
    m.menu.fill(
        IPXE_TEMPLATE,
        KERNEL_NAME,
        &m.initrds,
        &[("HOSTCHAIN", chain)],
    )
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(dir: &Path, hosts: &[&str], unattended: bool) -> PxeOptions {
        fs::write(dir.join("k"), b"kernel").unwrap();
        fs::write(dir.join("i"), b"initrd").unwrap();
        PxeOptions {
            kernel: dir.join("k"),
            initrds: vec![dir.join("i")],
            append: Some("lifeboat.debug".into()),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            unattended,
            secure: None,
        }
    }

    /// False (the calling test returns, said on stderr) where the loaders are missing; under
    /// CI=true a panic instead.
    #[track_caller]
    fn have_boot_files() -> bool {
        lifeboat_core::testing::require(
            bootfiles::PXELINUX.locate().is_ok() && bootfiles::grub_dir().is_ok(),
            "pxelinux or grub-efi-amd64-bin not installed",
        )
    }

    #[test]
    fn tree_has_every_loader_and_per_host_configs() {
        if !have_boot_files() {
            return;
        }
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let o = opts(src.path(), &["52:54:00:AB:cd:01"], true);
        write_tree(&o, out.path()).unwrap();
        for f in [
            "pxelinux.0",
            "ldlinux.c32",
            "menu.c32",
            "libutil.c32",
            "bootx64.efi",
            "grub.cfg",
            "boot.ipxe",
            "vmlinuz",
            "initrd.img",
            "pxelinux.cfg/default",
            "pxelinux.cfg/01-52-54-00-ab-cd-01",
            "grub.cfg-01-52-54-00-ab-cd-01",
            "boot-01-52-54-00-ab-cd-01.ipxe",
            "README.md",
        ] {
            assert!(out.path().join(f).is_file(), "{f} missing");
        }
        let default = fs::read_to_string(out.path().join("pxelinux.cfg/default")).unwrap();
        assert!(default.contains("DEFAULT restore"));
        assert!(default.contains("SERIAL 0 115200"));
        assert!(default.contains("MENU LABEL Restore from backup\n"));
        assert!(default.contains("MENU LABEL Restore from backup (unattended)"));
        assert!(default.contains("LOCALBOOT 0"));
        assert!(default.contains("console=ttyS0,115200 console=tty0 lifeboat.debug"));
        let host =
            fs::read_to_string(out.path().join("pxelinux.cfg/01-52-54-00-ab-cd-01")).unwrap();
        assert!(host.contains("DEFAULT unattended"));
        assert!(host.contains("lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot"));
        // One request for every unattended entry of the tree: the same id in every loader.
        let request = host
            .split_whitespace()
            .find_map(|w| w.strip_prefix("lifeboat.request="))
            .unwrap()
            .to_string();
        let grub = fs::read_to_string(out.path().join("grub.cfg-01-52-54-00-ab-cd-01")).unwrap();
        assert!(grub.contains(&format!("lifeboat.request={request}\n")));
        let host_ipxe =
            fs::read_to_string(out.path().join("boot-01-52-54-00-ab-cd-01.ipxe")).unwrap();
        assert!(host_ipxe.contains(&format!("lifeboat.request={request}\n")));
        assert!(grub.contains("set default=unattended"));
        assert!(grub.contains("terminal_output serial console"));
        assert!(grub.contains("if serial --unit=0 --speed=115200; then"));
        let ipxe = fs::read_to_string(out.path().join("boot.ipxe")).unwrap();
        assert!(ipxe.starts_with("#!ipxe\n"));
        assert!(ipxe.contains("kernel vmlinuz initrd=initrd.img console="));
        assert!(ipxe.contains("chain --autofree boot-01-${netX/mac:hexhyp}.ipxe ||"));
    }

    #[test]
    fn every_entry_loads_repo_img_after_the_image_and_a_stale_one_goes() {
        if !have_boot_files() {
            return;
        }
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut o = opts(src.path(), &["52:54:00:AB:cd:01"], true);
        let repo = src.path().join(crate::rescue::REPO_IMG);
        fs::write(&repo, b"keys").unwrap();
        o.initrds = crate::rescue::boot_initrds(&src.path().join("i"), Some(&repo));
        write_tree(&o, out.path()).unwrap();
        let read = |f: &str| fs::read_to_string(out.path().join(f)).unwrap();
        assert_eq!(read("repo.img"), "keys");
        assert_eq!(read("initrd.img"), "initrd");
        // Both entries that boot the image (restore, unattended) load it, in each loader's syntax.
        let pxelinux = ["pxelinux.cfg/default", "pxelinux.cfg/01-52-54-00-ab-cd-01"];
        let grub = ["grub.cfg", "grub.cfg-01-52-54-00-ab-cd-01"];
        let ipxe = ["boot.ipxe", "boot-01-52-54-00-ab-cd-01.ipxe"];
        let wanted: [(&[&str], &str); 4] = [
            (&pxelinux, "INITRD initrd.img,repo.img\n"),
            (&grub, "initrd $prefix/initrd.img $prefix/repo.img\n"),
            (
                &ipxe,
                "kernel vmlinuz initrd=initrd.img initrd=repo.img console=",
            ),
            (&ipxe, "\ninitrd initrd.img\ninitrd repo.img\nboot "),
        ];
        for (files, line) in wanted {
            for f in files {
                let cfg = read(f);
                assert_eq!(cfg.matches(line).count(), 2, "{f}: {line:?} in {cfg}");
            }
        }
        // Built again without the repository: no entry loads it, and the keys are not served.
        write_tree(&opts(src.path(), &["52:54:00:AB:cd:01"], true), out.path()).unwrap();
        assert!(!out.path().join("repo.img").exists());
        for f in [
            "pxelinux.cfg/default",
            "grub.cfg",
            "boot.ipxe",
            "boot-01-52-54-00-ab-cd-01.ipxe",
        ] {
            assert!(!read(f).contains("repo.img"), "{f}");
        }
        assert!(read("pxelinux.cfg/default").contains("INITRD initrd.img\n"));
    }

    #[test]
    fn stale_per_host_configs_are_removed_hand_written_ones_kept() {
        if !have_boot_files() {
            return;
        }
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        write_tree(&opts(src.path(), &["52:54:00:00:00:01"], true), out.path()).unwrap();
        let by_hand = out.path().join("pxelinux.cfg/01-52-54-00-00-00-09");
        fs::write(&by_hand, "DEFAULT local\n").unwrap();
        write_tree(&opts(src.path(), &["52:54:00:00:00:02"], true), out.path()).unwrap();
        let p = out.path();
        assert!(!p.join("pxelinux.cfg/01-52-54-00-00-00-01").exists());
        assert!(!p.join("grub.cfg-01-52-54-00-00-00-01").exists());
        assert!(!p.join("boot-01-52-54-00-00-00-01.ipxe").exists());
        assert!(p.join("pxelinux.cfg/01-52-54-00-00-00-02").exists());
        assert!(by_hand.exists());
    }

    #[test]
    fn secure_tree_uses_the_signed_loaders_byte_for_byte() {
        if !have_boot_files() {
            return;
        }
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let p = src.path().join(name);
            fs::write(&p, format!("signed {name}")).unwrap();
            p
        };
        let mut o = opts(src.path(), &["52:54:00:AB:cd:01"], true);
        o.secure = Some(super::super::secureboot::SignedLoaders {
            shim: file("shimx64.efi"),
            mokmanager: file("mmx64.efi"),
            grub_cd: file("gcdx64.efi"),
            grub_net: file("grubnetx64.efi"),
        });
        write_tree(&o, out.path()).unwrap();
        let read = |f: &str| fs::read_to_string(out.path().join(f)).unwrap();
        assert_eq!(read("bootx64.efi"), "signed shimx64.efi");
        assert_eq!(read("grubx64.efi"), "signed grubnetx64.efi");
        assert_eq!(read("mmx64.efi"), "signed mmx64.efi");
        let stub = read(GRUB_SIGNED_NET_CONFIG);
        assert!(stub.contains("set prefix=$cmdpath"), "{stub}");
        assert!(stub.contains(
            "if [ \"$net_default_mac\" = \"52:54:00:ab:cd:01\" ]; then\n  configfile $prefix/grub.cfg-01-52-54-00-ab-cd-01\nfi"
        ), "{stub}");
        assert!(stub.trim_end().ends_with("configfile $prefix/grub.cfg"));
        assert!(read("grub.cfg").contains("linux $prefix/vmlinuz"));
    }

    #[test]
    fn unattended_default_menu_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = write_tree(&opts(src.path(), &[], true), out.path()).unwrap_err();
        assert!(err.to_string().contains("--pxe-host"));
    }

    #[test]
    fn bad_mac_is_refused_before_writing() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = write_tree(&opts(src.path(), &["52:54:00"], true), out.path()).unwrap_err();
        assert!(err.to_string().contains("52:54:00"));
        assert!(!out.path().join("pxelinux.cfg").exists());
    }

    /// Builds the boot media from the environment (a driver for tests/qemu until `lifeboat
    /// mkrescue` is available): LIFEBOAT_MEDIA_KERNEL, LIFEBOAT_MEDIA_INITRD, and
    /// LIFEBOAT_MEDIA_PXE (a directory) and/or LIFEBOAT_MEDIA_ISO (a file);
    /// LIFEBOAT_MEDIA_HOST (a MAC) with LIFEBOAT_MEDIA_UNATTENDED=1, LIFEBOAT_MEDIA_APPEND.
    #[test]
    #[ignore = "driver for tests/qemu, needs LIFEBOAT_MEDIA_* variables"]
    fn build_media_from_env() {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let kernel = PathBuf::from(var("LIFEBOAT_MEDIA_KERNEL").unwrap());
        let initrd = PathBuf::from(var("LIFEBOAT_MEDIA_INITRD").unwrap());
        let append = var("LIFEBOAT_MEDIA_APPEND");
        if let Some(dir) = var("LIFEBOAT_MEDIA_PXE") {
            let o = PxeOptions {
                kernel: kernel.clone(),
                initrds: vec![initrd.clone()],
                append: append.clone(),
                hosts: var("LIFEBOAT_MEDIA_HOST").into_iter().collect(),
                unattended: var("LIFEBOAT_MEDIA_UNATTENDED").is_some(),
                secure: None,
            };
            write_tree(&o, Path::new(&dir)).unwrap();
        }
        if let Some(file) = var("LIFEBOAT_MEDIA_ISO") {
            let o = super::super::iso::IsoOptions {
                kernel,
                initrds: vec![initrd],
                append,
                secure: None,
            };
            super::super::iso::write_iso(&o, Path::new(&file)).unwrap();
        }
    }
}
