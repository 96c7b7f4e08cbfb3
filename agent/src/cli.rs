//! The command line. Every command accepts `--key value` and xe-style `key=value`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Back up and bring back a XenServer/XCP-ng control domain"
)]
pub struct Cli {
    /// Print nothing but errors (no progress).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Compress {
    Zstd,
    Gzip,
    Xz,
    None,
}

#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// The root to back up.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Compression codec.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compress: Compress,
    /// Compression level (codec default when absent).
    #[arg(long)]
    pub level: Option<i32>,
    /// Exclude paths matching PATTERN (relative to the root, `*` and `?` wildcards); repeatable.
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Do not apply the default xe host-backup excludes (tmp/*, var/crash/*, ...).
    #[arg(long)]
    pub no_default_excludes: bool,
    /// Also back up this mount point (another filesystem below the root); repeatable.
    #[arg(long = "include", value_name = "DIR")]
    pub includes: Vec<PathBuf>,
    /// Run this shell command before the backup (e.g. `xe pool-dump-database file-name=...`).
    #[arg(long)]
    pub pre_hook: Option<String>,
    /// Compression threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// The backup partition (found from /etc/lifeboat/lifeboat.toml, the XenServer inventory's
    /// BACKUP_PARTITION, or a partition named or labelled `lifeboat` when absent).
    #[arg(long)]
    pub backup_device: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new generation of the root into the backup partition.
    Backup {
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        device: DeviceArgs,
        /// Generations to keep (older ones are pruned after the new one is committed).
        #[arg(long, default_value_t = 2)]
        keep: usize,
        /// Machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Stream one archive of the root to a file or stdout (`-`), like `xe host-backup`.
    HostBackup {
        /// Where to write the archive (`-` for stdout).
        #[arg(long)]
        file_name: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        #[arg(long)]
        json: bool,
    },
    /// Stage a backup file into the backup partition as the generation to restore, like
    /// `xe host-restore`.
    HostRestore {
        /// The archive to stage (`-` for stdin).
        #[arg(long)]
        file_name: PathBuf,
        #[command(flatten)]
        device: DeviceArgs,
        /// Root whose /etc/xensource-inventory gives this host's product version.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Accept a backup from an older major product version.
        #[arg(long)]
        force: bool,
    },
    /// Put a Lifeboat store (an ext4 filesystem) on the backup partition.
    InitStore {
        #[arg(long)]
        backup_device: PathBuf,
        /// Overwrite a partition that holds data or a XenServer backup.
        #[arg(long)]
        force: bool,
    },
    /// List the generations in the backup partition.
    List {
        #[command(flatten)]
        device: DeviceArgs,
        #[arg(long)]
        json: bool,
    },
    /// Check every checksum of a generation (all when none is named) or of a file.
    Verify {
        /// Generation id, or `latest`.
        generation: Option<String>,
        #[arg(long)]
        file_name: Option<PathBuf>,
        #[command(flatten)]
        device: DeviceArgs,
        #[arg(long)]
        json: bool,
    },
    /// Extract a generation or a file beneath a directory, checking every checksum.
    Restore {
        /// Generation id, or `latest`.
        generation: Option<String>,
        #[arg(long)]
        file_name: Option<PathBuf>,
        /// Directory to restore into (typically the freshly made root filesystem).
        #[arg(long)]
        target_dir: PathBuf,
        #[command(flatten)]
        device: DeviceArgs,
        #[arg(long)]
        json: bool,
    },
    /// Build the recovery image (kernel + initramfs), and optionally a PXE tree or an ISO.
    Mkrescue(MkrescueArgs),
}

#[derive(Debug, Args)]
pub struct MkrescueArgs {
    /// Kernel image (default: /boot/vmlinuz-$(uname -r)).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Module tree (default: /lib/modules/<kernel version>).
    #[arg(long)]
    pub modules: Option<PathBuf>,
    /// Include the generic server driver set (default).
    #[arg(long, conflicts_with = "hostonly")]
    pub generic: bool,
    /// Include only the modules this host's devices use.
    #[arg(long)]
    pub hostonly: bool,
    /// Add a program (with its libraries) to the image; repeatable.
    #[arg(long = "add-binary", value_name = "PATH")]
    pub add_binaries: Vec<PathBuf>,
    /// Add a busybox rescue shell.
    #[arg(long)]
    pub shell: bool,
    /// Compression of the initramfs.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compress: InitrdCompress,
    /// The lifeboat-init binary to use as /init (default: next to this program).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Output directory for vmlinuz, initrd.img and the listing.
    #[arg(long)]
    pub output: PathBuf,
    /// Also write a PXE tree (pxelinux, GRUB netboot, iPXE) into this directory.
    #[arg(long)]
    pub pxe: Option<PathBuf>,
    /// Write a per-host PXE config for this MAC address.
    #[arg(long = "pxe-host", value_name = "MAC")]
    pub pxe_hosts: Vec<String>,
    /// The per-host config restores the latest backup without asking, then reboots.
    #[arg(long)]
    pub unattended: bool,
    /// Extra kernel command line for the boot entries.
    #[arg(long)]
    pub append: Option<String>,
    /// Also write a hybrid ISO (BIOS and UEFI, CD and USB).
    #[arg(long)]
    pub iso: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum InitrdCompress {
    Zstd,
    Xz,
    None,
}
