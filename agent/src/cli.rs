//! The command line. Every command accepts `--key value` and xe-style `key=value`.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use lifeboat_core::codec::Codec;
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

impl Command {
    /// The far host and ssh options when the command was given `host=H` (host-backup,
    /// host-restore, list and verify take it; no other command has the option).
    pub fn remote(&self) -> Option<&RemoteArgs> {
        let remote = match self {
            Command::HostBackup(a) => &a.remote,
            Command::HostRestore(a) => &a.remote,
            Command::List(a) => &a.remote,
            Command::Verify(a) => &a.remote,
            _ => return None,
        };
        remote.host.as_ref().map(|_| remote)
    }
}

impl Cli {
    /// Checks what clap cannot see alone (values that depend on each other). The message is
    /// for the user; the caller exits with status 2 as for any usage error.
    pub fn validate(&self) -> Result<(), String> {
        match &self.command {
            Command::Backup(a) => a.source.check_level(),
            Command::HostBackup(a) => a.source.check_level(),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Compress {
    Zstd,
    Gzip,
    Xz,
    None,
}

impl Compress {
    /// The codec this choice names.
    pub fn codec(self) -> Codec {
        match self {
            Compress::Zstd => Codec::Zstd,
            Compress::Gzip => Codec::Gzip,
            Compress::Xz => Codec::Xz,
            Compress::None => Codec::None,
        }
    }
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

impl SourceArgs {
    /// Checks `--level` against the codec chosen with `--compress` (the range is the codec's
    /// own, [`Codec::level_range`]), so a bad level is refused before anything runs.
    pub fn check_level(&self) -> Result<(), String> {
        let codec = self.compress.codec();
        let Some(level) = self.level else {
            return Ok(());
        };
        let (lo, hi) = codec.level_range();
        if codec == Codec::None {
            return Err(format!(
                "--level {level} was given with --compress none, which has no levels: \
                 drop --level or choose --compress zstd, gzip or xz"
            ));
        }
        if !(lo..=hi).contains(&level) {
            return Err(format!(
                "--level {level} is not a {codec} level: {codec} takes {lo} to {hi} (default {}; \
                 higher is smaller and slower)",
                codec.default_level()
            ));
        }
        Ok(())
    }
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
    Backup(BackupArgs),
    /// Stream one archive of the root to a file or stdout (`-`), like `xe host-backup`.
    HostBackup(HostBackupArgs),
    /// Stage a backup file into the backup partition as the generation to restore, like
    /// `xe host-restore`.
    HostRestore(HostRestoreArgs),
    /// Put a Lifeboat store (an ext4 filesystem) on the backup partition.
    InitStore(InitStoreArgs),
    /// List the generations in the backup partition.
    List(ListArgs),
    /// Check every checksum of a generation (all when none is named) or of a file.
    Verify(VerifyArgs),
    /// Extract a generation or a file beneath a directory, checking every checksum.
    Restore(RestoreArgs),
    /// Show what a restore would do, without writing anything: the disk, every step with what
    /// it destroys, the checks (exit 2 when the restore would be refused).
    Plan(PlanArgs),
    /// Build the recovery image (kernel + initramfs), and optionally a PXE tree or an ISO.
    Mkrescue(MkrescueArgs),
    /// Copy a generation to a store on another device (a USB disk) or to a file, verified.
    Copy(CopyArgs),
    /// Write the systemd units: a daily backup and a weekly verify, each a oneshot service
    /// and its timer (systemd 219 and later).
    InstallUnits(InstallUnitsArgs),
    /// The last good backup, the last runs and verification, for a person, a script
    /// (`--json`) or a monitoring system (`--check`: exit 0 OK, 1 WARNING, 2 CRITICAL,
    /// 3 UNKNOWN).
    Status(StatusArgs),
    /// Write the man pages (section 8) into a directory (for packages; hidden from --help).
    #[command(hide = true)]
    Man(ManArgs),
    /// Print a shell completion script (for packages; hidden from --help).
    #[command(hide = true)]
    Completions(CompletionsArgs),
    /// Manage the off-host repository: init, hosts, check, prune.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Copy committed generations of the backup partition that the repository lacks (or GEN).
    Push(PushArgs),
    /// Write a generation's pool database dump to a file, checked, for
    /// `xe pool-restore-database file-name=F`.
    PoolDatabase(PoolDatabaseArgs),
    /// Answer host-backup/host-restore/list/verify from other machines over TLS (mutual TLS
    /// with certificates of `lifeboat ca`, or tokens of `lifeboat token`): `transport=tls`.
    Serve(ServeArgs),
    /// The small certificate authority of `lifeboat serve`: init, issue.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The tokens `lifeboat serve` accepts (stored hashed): add, list, remove.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
pub struct PoolDatabaseArgs {
    /// Generation id, or `latest`.
    pub generation: String,
    /// The file to write (0600; an existing file is refused).
    #[arg(long, value_name = "F")]
    pub output: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Read the generation from a repository instead.
    #[command(flatten)]
    pub repo: RepoArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (default: `listen` of [serve] in lifeboat.toml, else
    /// 0.0.0.0:7443).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The configuration file (default $LIFEBOAT_CONFIG, else /etc/lifeboat/lifeboat.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What a credential of `lifeboat serve` may do.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Role {
    /// host-backup, list, verify; never host-restore.
    Backup,
    /// Also host-restore.
    Restore,
    /// Everything `lifeboat serve` answers.
    Admin,
    /// The server's own certificate (not a client role).
    Server,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Make a new CA (ca.pem, ca.key) in DIR.
    Init {
        dir: PathBuf,
        /// The CA's name.
        #[arg(long, default_value = "Lifeboat CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue a certificate (NAME.pem, NAME.key in DIR) signed by DIR's CA; the role is the
    /// certificate's OU. `--role server`: NAME is the server's host name or IP address.
    Issue {
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Start the validity this many days ago (tests make expired certificates with it).
        #[arg(long, default_value_t = 0, hide = true)]
        backdate_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for NAME with ROLE; it is printed once, only its BLAKE3 hash is kept.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The tokens file (default: `tokens` of [serve], else /etc/lifeboat/serve-tokens).
        #[arg(long, value_name = "FILE")]
        tokens_file: Option<PathBuf>,
    },
    /// The names and roles of the tokens (never the tokens).
    List {
        #[arg(long, value_name = "FILE")]
        tokens_file: Option<PathBuf>,
    },
    /// Remove NAME's token.
    Remove {
        name: String,
        #[arg(long, value_name = "FILE")]
        tokens_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct InstallUnitsArgs {
    /// Write beneath this directory instead of / (a chroot, an image being built).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Where the units go below the root.
    #[arg(long, default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
    /// The lifeboat program the services run (default: this program).
    #[arg(long, value_name = "PATH")]
    pub program: Option<PathBuf>,
    /// Print each unit and where it would go; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Machine-readable status on stdout.
    #[arg(long, conflicts_with = "check")]
    pub json: bool,
    /// One line for a monitoring plugin (Nagios, Icinga, Zabbix); exit 0 OK, 1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN.
    #[arg(long)]
    pub check: bool,
    /// With --check: WARNING when the last good backup is older than this (default:
    /// `warn_age` in lifeboat.toml, else 26h).
    #[arg(long, value_name = "AGE", requires = "check")]
    pub warn_age: Option<String>,
    /// With --check: CRITICAL past this age (default: `crit_age` in lifeboat.toml, else 50h).
    #[arg(long, value_name = "AGE", requires = "check")]
    pub crit_age: Option<String>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write lifeboat.8 and lifeboat-COMMAND.8 into.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where the off-host repository is and which keys open it (defaults from the
/// `[repository]` table of /etc/lifeboat/lifeboat.toml).
#[derive(Debug, Args, Clone, Default)]
pub struct RepoArgs {
    /// The repository: a directory, file:///DIR or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// The fleet key file (default: the config's, else /etc/lifeboat/repo-fleet.key).
    #[arg(long, value_name = "FILE")]
    pub fleet_key: Option<PathBuf>,
    /// An age identity file: this host's (default /etc/lifeboat/repo-host.key) or a recovery key.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Another host's generations (its id from `lifeboat repo hosts`; needs the recovery key).
    #[arg(long = "repo-host", value_name = "ID")]
    pub host: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository (prints a new recovery key once unless --recovery-recipient).
    Init(RepoInitArgs),
    /// Join an existing repository from another host of the fleet: checks the fleet key file
    /// (copied from the host that ran `repo init`) against it and makes this host's identity.
    Join(RepoListArgs),
    /// Every host in the repository: generations, the latest, its size.
    Hosts(RepoListArgs),
    /// Check every index and that every chunk it names exists (--read-data: decrypts them).
    Check(RepoCheckArgs),
    /// Forget generations beyond the keep rules (per host) and remove unreferenced chunks.
    Prune(RepoPruneArgs),
}

#[derive(Debug, Args)]
pub struct RepoInitArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// An offline recovery recipient (age1...); repeatable. Without one, a recovery key is
    /// made and printed once.
    #[arg(long = "recovery-recipient", value_name = "AGE1")]
    pub recovery_recipients: Vec<String>,
    /// Average chunk size in KiB (min a quarter, max four times).
    #[arg(long, default_value_t = 1024)]
    pub chunk_kib: u32,
    /// Prune's grace period in seconds (a marked chunk is deleted only this much later).
    #[arg(long, default_value_t = 86400)]
    pub grace: u64,
    /// S3 Object Lock: write every generation's objects with COMPLIANCE retention of this many
    /// days (nobody can delete or shorten it; the bucket must have Object Lock enabled).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub object_lock_days: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepoListArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepoCheckArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Also download and decrypt every chunk this identity can read.
    #[arg(long)]
    pub read_data: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepoPruneArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long, default_value_t = 0)]
    pub keep_last: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_daily: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Generation id or `latest` (default: every committed generation not yet pushed).
    pub generation: Option<String>,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub json: bool,
}

/// `host=H`: run the command on H over ssh (the administrator's OpenSSH access), the archive
/// streaming to or from this machine's file.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// Run the command on this host over ssh (`[user@]host`; ssh's config, keys and
    /// known_hosts apply); its `lifeboat` must have the same major.minor version.
    #[arg(long = "host", id = "remote_host", value_name = "H")]
    pub host: Option<String>,
    /// An ssh option, passed as `ssh -o OPT` (e.g. `Port=2222`, `IdentityFile=~/.ssh/dom0`);
    /// repeatable; only with host=.
    #[arg(long = "ssh-option", value_name = "OPT", requires = "remote_host")]
    pub ssh_options: Vec<String>,
    /// How to reach H: `ssh` (default) or `tls` (a `lifeboat serve` there, H[:PORT], port
    /// 7443 by default); only with host=.
    #[arg(long, value_enum, default_value = "ssh", requires = "remote_host")]
    pub transport: Transport,
    /// transport=tls: the CA certificate the server's certificate must chain to.
    #[arg(long, value_name = "FILE", requires = "remote_host")]
    pub ca: Option<PathBuf>,
    /// transport=tls: this client's certificate (mutual TLS), with key=.
    #[arg(long, value_name = "FILE", requires = "remote_host")]
    pub cert: Option<PathBuf>,
    /// transport=tls: the key of cert=.
    #[arg(long, value_name = "FILE", requires = "remote_host")]
    pub key: Option<PathBuf>,
    /// transport=tls: a file holding a token of `lifeboat token add` (instead of cert=).
    #[arg(long, value_name = "FILE", requires = "remote_host")]
    pub token_file: Option<PathBuf>,
}

/// The transports of `host=H`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Ssh,
    Tls,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Generations to keep (older ones are pruned after the new one is committed; default:
    /// `keep` in lifeboat.toml, else 2).
    #[arg(long)]
    pub keep: Option<usize>,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also push the new generation to this repository (after the local commit).
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Do not dump the pool database (by default, where `xe` is on PATH, `xe
    /// pool-dump-database` runs and its dump is kept as a member of the generation).
    #[arg(long)]
    pub no_pool_database: bool,
}

#[derive(Debug, Args)]
pub struct HostBackupArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Where to write the archive (`-` for stdout; a character device or FIFO is written
    /// directly; a directory or block device is refused).
    #[arg(long)]
    pub file_name: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HostRestoreArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The archive to stage (`-` for stdin).
    #[arg(long, required_unless_present = "repo")]
    pub file_name: Option<PathBuf>,
    /// With --repo: the repository's generation to stage (id or `latest`).
    #[arg(requires = "repo", conflicts_with = "file_name")]
    pub generation: Option<String>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Stage a generation of this repository instead of a file (verified while staged).
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Root whose /etc/xensource-inventory gives this host's product version.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Accept a backup from an older major product version.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InitStoreArgs {
    #[arg(long)]
    pub backup_device: PathBuf,
    /// Overwrite a partition that holds data or a XenServer backup.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// List a repository's generations instead.
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub json: bool,
}

/// What `verify` and `restore` read: a generation of the store or an archive file.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Generation id, or `latest`.
    pub generation: Option<String>,
    /// An archive file instead of a generation (`-` for stdin).
    #[arg(long)]
    pub file_name: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Read the generation from a repository instead.
    #[command(flatten)]
    pub repo: RepoArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Directory to restore into (typically the freshly made root filesystem); never `/`.
    #[arg(long)]
    pub target_dir: PathBuf,
    /// Restore into a directory that is not empty: archive members replace what is in their
    /// way, other files are kept.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Generation id, or `latest` (the newest backup of this host; the default).
    pub generation: Option<String>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// The partition to restore the root into: PARTUUID=, LABEL=, a by-id name or a kernel
    /// name (default: the partition the backup recorded).
    #[arg(long, conflicts_with = "target_disk")]
    pub target: Option<String>,
    /// A blank disk to recreate the whole recorded layout on: serial, WWN, by-id name or
    /// kernel name.
    #[arg(long)]
    pub target_disk: Option<String>,
    /// The plan (or the refusal) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("to").required(true).args(["to_device", "to_file", "repo"])))]
pub struct CopyArgs {
    /// Generation id, or `latest`.
    pub generation: String,
    /// The store to copy from (default: the backup partition, found as `backup` finds it).
    #[command(flatten)]
    pub device: DeviceArgs,
    /// A Lifeboat store on another device to copy into (made with `lifeboat init-store
    /// --backup-device DEV`; copy never formats).
    #[arg(long, value_name = "DEV")]
    pub to_device: Option<PathBuf>,
    /// An archive file to write: the stored archive byte for byte (what `host-backup
    /// file-name=F` writes; `host-restore file-name=F` stages it back).
    #[arg(long, value_name = "F")]
    pub to_file: Option<PathBuf>,
    /// `--repo URL`: push the generation into the repository (the same as `lifeboat push GEN`;
    /// the other way is `lifeboat host-restore --repo URL GEN`).
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
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
    pub compress: crate::rescue::image::Compressor,
    /// Compression level of the initramfs: zstd 1-19, xz 0-9 (default: the highest, the
    /// smallest image). zstd 19 of the generic image takes about 25 s on two idle cores;
    /// 12 about 2 s for 13 % more bytes.
    #[arg(long)]
    pub level: Option<u32>,
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
    /// Secure Boot media: the ISO and the PXE tree boot through Debian's signed shim and GRUB;
    /// the kernel and its modules must be signed (Debian's linux-image-*-amd64).
    #[arg(long)]
    pub secure_boot: bool,
    /// Directory with shimx64.efi mmx64.efi gcdx64.efi grubnetx64.efi (scripts/fetch-signed.sh);
    /// default $LIFEBOAT_SIGNED_DIR, else where Debian's shim-signed and
    /// grub-efi-amd64-signed install them.
    #[arg(long, value_name = "DIR", requires = "secure_boot")]
    pub signed_dir: Option<PathBuf>,
    /// A lifeboat.toml whose [repository] table (url, s3) the image restores from over the
    /// network: writes OUTPUT/repo.img, a second initrd with the repository's files.
    #[arg(long, value_name = "FILE")]
    pub repo_config: Option<PathBuf>,
    /// The AWS-style credentials file for the repository (goes into repo.img, never on the
    /// kernel command line).
    #[arg(long, value_name = "FILE", requires = "repo_config")]
    pub repo_credentials: Option<PathBuf>,
    /// The age identity that reads the host's generations (the host's own, or the recovery key):
    /// a plain key file, or one protected with a passphrase (`age -p`), which the image asks for.
    /// Without it the image carries no key: "Restore from network" looks for one on a USB stick.
    #[arg(long, value_name = "FILE", requires = "repo_config")]
    pub repo_identity: Option<PathBuf>,
    /// The fleet key file (without it, a recovery key given as --repo-identity unwraps the
    /// repository's copy).
    #[arg(long, value_name = "FILE", requires = "repo_config")]
    pub repo_fleet_key: Option<PathBuf>,
    /// A PEM file of CA certificates for an HTTPS endpoint with a private CA.
    #[arg(long, value_name = "FILE", requires = "repo_config")]
    pub repo_ca: Option<PathBuf>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn check(words: &[&str]) -> Result<(), String> {
        Cli::try_parse_from(words).unwrap().validate()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn copy_takes_exactly_one_target() {
        let parse = |w: &[&str]| Cli::try_parse_from(w).map(|c| c.command);
        assert!(parse(&["lifeboat", "copy", "latest"]).is_err());
        assert!(parse(&[
            "lifeboat",
            "copy",
            "latest",
            "--to-file",
            "f",
            "--to-device",
            "d"
        ])
        .is_err());
        match parse(&["lifeboat", "copy", "latest", "--to-device", "/dev/sdc"]).unwrap() {
            Command::Copy(a) => {
                assert_eq!(a.generation, "latest");
                assert_eq!(
                    a.to_device.as_deref(),
                    Some(std::path::Path::new("/dev/sdc"))
                );
                assert!(a.to_file.is_none() && a.device.backup_device.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn levels_are_checked_per_codec_when_parsed() {
        let hb = ["lifeboat", "host-backup", "--file-name", "x"];
        let with = |extra: &[&'static str]| [&hb[..], extra].concat();
        assert!(check(&with(&["--level", "19"])).is_ok());
        assert!(check(&with(&["--level", "22"])).is_ok());
        assert!(check(&with(&["--compress", "gzip", "--level", "9"])).is_ok());
        assert!(check(&with(&["--compress", "xz", "--level", "0"])).is_ok());
        let err = check(&with(&["--level", "99999"])).unwrap_err();
        assert!(err.contains("--level 99999 is not a zstd level"), "{err}");
        assert!(!err.contains("output"), "misleading hint: {err}");
        let err = check(&with(&["--compress", "gzip", "--level", "10"])).unwrap_err();
        assert!(err.contains("gzip takes 1 to 9"), "{err}");
        let err = check(&with(&["--compress", "xz", "--level=-1"])).unwrap_err();
        assert!(err.contains("xz takes 0 to 9"), "{err}");
        assert!(check(&with(&["--compress", "none", "--level", "3"])).is_err());
        let backup = ["lifeboat", "backup", "--level", "23"];
        assert!(check(&backup).is_err());
    }
}
