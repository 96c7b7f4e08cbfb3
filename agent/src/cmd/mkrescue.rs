//! `lifeboat mkrescue`: builds the recovery image (kernel, initramfs, listing), and on request
//! a PXE tree and a hybrid ISO from it.

use crate::cli::MkrescueArgs;
use crate::rescue::{self, iso, pxe, secureboot, RescueOptions, Selection, REPO_IMG};
use anyhow::{bail, Context, Result};
use lifeboat_core::progress::human_bytes;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// What `mkrescue --repo-config` without `--repo-identity` makes.
const NO_IDENTITY: &str = "no --repo-identity: the recovery image carries no key and looks for one when \"Restore from network\" is chosen (a USB stick or another disk holding lifeboat/identity.txt, lifeboat-identity.txt or a *.txt/*.age age identity: the recovery key, or a host's)";

pub fn run(args: MkrescueArgs, quiet: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let compression = args.compress.at(args.level)?;
    let release = running_release()?;
    let kernel = match &args.kernel {
        Some(k) => k.clone(),
        None => PathBuf::from(format!("/boot/vmlinuz-{release}")),
    };
    if !kernel.is_file() {
        bail!(
            "the kernel {} does not exist: pass the recovery kernel with --kernel",
            kernel.display()
        );
    }
    let modules = match &args.modules {
        Some(m) => m.clone(),
        None => {
            // The kernel's own release when --kernel names another kernel than the running one.
            let of_kernel = rescue::kernel_release(&kernel)?.unwrap_or(release.clone());
            PathBuf::from(format!("/lib/modules/{of_kernel}"))
        }
    };
    if !modules.is_dir() {
        bail!(
            "the module tree {} does not exist: pass the kernel's /lib/modules/<version> with --modules",
            modules.display()
        );
    }
    // Found before the long build, so that a missing package fails at once.
    let secure = match args.secure_boot {
        true => Some(secureboot::SignedLoaders::locate(
            args.signed_dir.as_deref(),
        )?),
        false => None,
    };
    let init = match &args.init {
        Some(p) => p.clone(),
        None => default_init()?,
    };
    let opts = RescueOptions {
        kernel: kernel.clone(),
        modules,
        selection: if args.hostonly {
            Selection::HostOnly
        } else {
            Selection::Generic
        },
        init,
        lifeboat: std::env::current_exe().ok(),
        extra_binaries: args.add_binaries.clone(),
        shell: args.shell,
        compression,
        output: args.output.clone(),
        sysfs: PathBuf::from("/sys"),
        secure_boot: args.secure_boot,
    };
    let report = rescue::build(&opts)?;
    if !quiet {
        for note in &report.notes {
            eprintln!("lifeboat: note: {note}");
        }
        println!(
            "recovery image for kernel {}: {} modules ({}), {} firmware files ({} missing), {} entries",
            report.kernel_version,
            report.modules,
            human_bytes(report.module_bytes),
            report.firmware,
            report.firmware_missing,
            report.files
        );
        println!(
            "  {}: {} compressed, {} uncompressed",
            report.initrd.display(),
            human_bytes(report.compressed_size),
            human_bytes(report.uncompressed_size)
        );
        println!("  {}", report.vmlinuz.display());
        println!("  {} (what went in)", report.listing.display());
    }
    let repo_img = match &args.repo_config {
        Some(cfg) => {
            let out = args.output.join(REPO_IMG);
            write_repo_img(&args, cfg, &out)?;
            if !quiet {
                println!(
                    "  {} (the repository's files: a second initrd, root-only; every boot entry below loads it after initrd.img)",
                    out.display()
                );
            }
            Some(out)
        }
        None => None,
    };
    let initrds = rescue::boot_initrds(&report.initrd, repo_img.as_deref());
    if let Some(dir) = &args.pxe {
        let pxe_opts = pxe::PxeOptions {
            kernel: report.vmlinuz.clone(),
            initrds: initrds.clone(),
            append: args.append.clone(),
            hosts: args.pxe_hosts.clone(),
            unattended: args.unattended,
            secure: secure.clone(),
        };
        pxe::write_tree(&pxe_opts, dir)
            .with_context(|| format!("cannot write the PXE tree into {}", dir.display()))?;
        if !quiet {
            println!("  PXE tree: {}", dir.display());
        }
    }
    if let Some(file) = &args.iso {
        let iso_opts = iso::IsoOptions {
            kernel: report.vmlinuz.clone(),
            initrds: initrds.clone(),
            append: args.append.clone(),
            secure: secure.clone(),
        };
        iso::write_iso(&iso_opts, file)
            .with_context(|| format!("cannot write the ISO {}", file.display()))?;
        if !quiet {
            println!("  ISO: {}", file.display());
        }
    }
    if let (Some(s), false) = (&secure, quiet) {
        println!(
            "  Secure Boot: shim {}, GRUB {} / {}",
            s.shim.display(),
            s.grub_cd.display(),
            s.grub_net.display()
        );
    }
    if !quiet {
        println!("built in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `out`: an uncompressed newc cpio (the kernel unpacks it over the first initrd) with
/// the files lifeboat-init reads in /etc/lifeboat/repo (initramfs/src/net/repo.rs), mode 0600
/// inside and outside, written to a temporary name and renamed.
fn write_repo_img(args: &MkrescueArgs, cfg: &std::path::Path, out: &std::path::Path) -> Result<()> {
    use crate::rescue::cpio::NewcWriter;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = std::fs::read_to_string(cfg)
        .with_context(|| format!("cannot read the repository configuration {}", cfg.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not a TOML file", cfg.display()))?;
    let has_url = table
        .get("repository")
        .and_then(|r| r.get("url"))
        .and_then(|u| u.as_str())
        .is_some();
    if !has_url {
        bail!(
            "{} has no [repository] url: the image would not know where to restore from",
            cfg.display()
        );
    }
    match &args.repo_identity {
        None => eprintln!("lifeboat: note: {NO_IDENTITY}"),
        Some(identity) => {
            if let Some(log_n) = check_identity(identity)? {
                eprintln!(
                    "lifeboat: note: {} is protected by a passphrase (scrypt work factor 2^{log_n}): the recovery image asks for it on the console and needs {} of free memory to open it",
                    identity.display(),
                    human_bytes(lifeboat_repo::crypto::scrypt_memory(log_n))
                );
            }
        }
    }
    let dir = "etc/lifeboat/repo";
    let mut files: Vec<(&str, &std::path::Path)> = vec![("lifeboat.toml", cfg)];
    for (name, f) in [
        ("credentials", &args.repo_credentials),
        ("identity.txt", &args.repo_identity),
        ("fleet.key", &args.repo_fleet_key),
        ("ca.pem", &args.repo_ca),
    ] {
        if let Some(f) = f {
            files.push((name, f.as_path()));
        }
    }
    let tmp = out.with_extension("img.tmp");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = NewcWriter::new(std::io::BufWriter::new(f));
    let write = |w: &mut NewcWriter<std::io::BufWriter<std::fs::File>>| -> Result<()> {
        w.dir("etc", 0o755)?;
        w.dir("etc/lifeboat", 0o755)?;
        w.dir(dir, 0o700)?;
        for (name, src) in &files {
            let data =
                std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
            w.file(&format!("{dir}/{name}"), 0o600, &data)?;
        }
        Ok(())
    };
    write(&mut w).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut buf = w
        .finish()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    buf.flush()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
    Ok(())
}

/// The identity file goes into repo.img unchanged: a plain age identity, or one protected with
/// a passphrase (`age -p`, `rage -p`: then its scrypt work factor is returned). Anything else is
/// refused here rather than found out at a restore.
fn check_identity(path: &std::path::Path) -> Result<Option<u8>> {
    use lifeboat_repo::crypto::{Identity, IdentityFile};
    let data = std::fs::read(path)
        .with_context(|| format!("cannot read the repository identity {}", path.display()))?;
    match IdentityFile::classify(&data)
        .with_context(|| format!("--repo-identity {}", path.display()))?
    {
        IdentityFile::Passphrase { log_n } => Ok(Some(log_n)),
        IdentityFile::Plain => {
            Identity::from_text(&String::from_utf8_lossy(&data))
                .with_context(|| format!("--repo-identity {}", path.display()))?;
            Ok(None)
        }
    }
}

fn running_release() -> Result<String> {
    let uts = nix::sys::utsname::uname().context("uname failed")?;
    Ok(uts.release().to_string_lossy().into_owned())
}

/// lifeboat-init beside this program, else the static release build of this workspace.
fn default_init() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("lifeboat-init"));
            // target/<profile>/lifeboat -> target/x86_64-unknown-linux-musl/release/lifeboat-init
            if let Some(target) = dir.parent() {
                candidates.push(target.join("x86_64-unknown-linux-musl/release/lifeboat-init"));
            }
        }
    }
    candidates.push(PathBuf::from(
        "target/x86_64-unknown-linux-musl/release/lifeboat-init",
    ));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!(
            "lifeboat-init not found beside {} nor in target/x86_64-unknown-linux-musl/release: \
                 build it (make build) or pass --init PATH",
            std::env::current_exe().unwrap_or_default().display()
        )
    })
}
