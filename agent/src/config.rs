//! `/etc/lifeboat/lifeboat.toml` (or `$LIFEBOAT_CONFIG`), and how the backup device is found.
//!
//! ```toml
//! # The backup partition: a path (by-id links welcome), PARTUUID=..., PARTLABEL=... or LABEL=...
//! backup_device = "/dev/disk/by-id/nvme-eui.0025388b91b23c10-part2"
//! keep = 2                      # generations a backup without --keep keeps
//! state_file = "/var/lib/lifeboat/state.json"
//! textfile_dir = "/var/lib/node_exporter/textfile_collector"
//! warn_age = "26h"              # lifeboat status --check
//! crit_age = "50h"
//!
//! # The off-host repository (`lifeboat repo init`, `push`, `backup --repo`, `--repo URL`).
//! [repository]
//! url = "/mnt/usb/lifeboat"                      # a directory, file:///DIR or s3://BUCKET/PREFIX
//! fleet_key_file = "/etc/lifeboat/repo-fleet.key" # the fleet secret, the same on every host
//! identity_file = "/etc/lifeboat/repo-host.key"   # this host's age identity (or a recovery key)
//! recovery_recipients = ["age1..."]              # for `repo init` (else it makes a key)
//! [repository.s3]                                # for s3:// URLs
//! endpoint = "https://rgw.example:7480"
//! path_style = true
//! ```
//! (dist/lifeboat.toml.example is the commented copy the packages install.)

use anyhow::{bail, Context};
use lifeboat_core::identity::{self, inventory};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default place of the configuration file.
pub const CONFIG_PATH: &str = "/etc/lifeboat/lifeboat.toml";

/// The configuration file's content.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The backup partition.
    pub backup_device: Option<String>,
    /// Generations `lifeboat backup` keeps when `--keep` is not given (the timer's runs).
    pub keep: Option<usize>,
    /// The state of the last backup and verify runs (default [`crate::metrics::STATE_PATH`]).
    pub state_file: Option<PathBuf>,
    /// Where `lifeboat.prom` goes for node_exporter's textfile collector (default
    /// [`crate::metrics::TEXTFILE_DIR`] when that directory exists).
    pub textfile_dir: Option<PathBuf>,
    /// `status --check` warns when the last good backup is older than this ("26h", "2d").
    pub warn_age: Option<String>,
    /// `status --check` is critical past this age.
    pub crit_age: Option<String>,
    /// The off-host repository.
    pub repository: Option<RepositoryConfig>,
    /// `lifeboat serve`.
    pub serve: Option<ServeConfig>,
}

/// The `[serve]` table (`lifeboat serve`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// ADDR:PORT (default 0.0.0.0:7443).
    pub listen: Option<String>,
    /// The server's certificate and key (`lifeboat ca issue DIR --name HOST --role server`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The CA whose certificates clients may present (mutual TLS); none: tokens only.
    pub client_ca: Option<PathBuf>,
    /// The tokens file (default /etc/lifeboat/serve-tokens).
    pub tokens: Option<PathBuf>,
    /// Requests served at once; more are refused as busy (default 4).
    pub max_concurrent: Option<usize>,
}

/// Default fleet key file.
pub const FLEET_KEY_FILE: &str = "/etc/lifeboat/repo-fleet.key";
/// Default host identity file.
pub const IDENTITY_FILE: &str = "/etc/lifeboat/repo-host.key";

/// The `[repository]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A directory, `file:///DIR` or `s3://BUCKET/PREFIX`.
    pub url: Option<String>,
    /// The fleet key file (default [`FLEET_KEY_FILE`]).
    pub fleet_key_file: Option<PathBuf>,
    /// This host's age identity file (default [`IDENTITY_FILE`]).
    pub identity_file: Option<PathBuf>,
    /// Recovery recipients (`age1...`) for `repo init`.
    #[serde(default)]
    pub recovery_recipients: Vec<String>,
    /// How to reach an S3-compatible store.
    #[serde(default)]
    pub s3: lifeboat_repo::backend::S3Settings,
}

/// Path of the configuration file: `$LIFEBOAT_CONFIG`, else [`CONFIG_PATH`].
pub fn config_path() -> PathBuf {
    std::env::var_os("LIFEBOAT_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CONFIG_PATH))
}

/// Reads the configuration; an absent file is an empty configuration.
pub fn load() -> anyhow::Result<Config> {
    let path = config_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// The backup device and where it was found (for messages).
#[derive(Debug, Clone)]
pub struct BackupDevice {
    /// The resolved device node.
    pub path: PathBuf,
    /// How it was named, e.g. "--backup-device /dev/sdb2" or "BACKUP_PARTITION of
    /// /etc/xensource-inventory".
    pub source: String,
}

fn resolve(spec: &str, source: String) -> anyhow::Result<BackupDevice> {
    let path = identity::resolve_device(spec)
        .with_context(|| format!("the backup device {spec} (from {source}) cannot be found"))?;
    Ok(BackupDevice { path, source })
}

/// Finds the backup partition: `--backup-device`, else the config file's `backup_device`,
/// else `BACKUP_PARTITION` of `<root>/etc/xensource-inventory`, else a partition whose GPT
/// name or filesystem label is `lifeboat`.
pub fn find_backup_device(cli: Option<&Path>, root: &Path) -> anyhow::Result<BackupDevice> {
    if let Some(dev) = cli {
        return resolve(
            &dev.to_string_lossy(),
            format!("--backup-device {}", dev.display()),
        );
    }
    let config = load()?;
    if let Some(dev) = config.backup_device.as_deref() {
        return resolve(dev, format!("backup_device in {}", config_path().display()));
    }
    if let Some(inv) = inventory::read_inventory(root).with_context(|| {
        format!(
            "cannot read {}",
            root.join(inventory::INVENTORY_PATH).display()
        )
    })? {
        if let Some(dev) = inv.get("BACKUP_PARTITION").filter(|d| !d.is_empty()) {
            return resolve(
                dev,
                format!(
                    "BACKUP_PARTITION of {}",
                    root.join(inventory::INVENTORY_PATH).display()
                ),
            );
        }
    }
    // By name: a GPT partition named `lifeboat`, else a filesystem labelled `lifeboat`.
    // Several candidates are refused: guessing could write into the wrong disk.
    for spec in ["PARTLABEL=lifeboat", "LABEL=lifeboat"] {
        let found = identity::blockdev::find_tagged(spec)?.unwrap_or_default();
        match found.as_slice() {
            [] => continue,
            [one] => {
                return Ok(BackupDevice {
                    path: one.clone(),
                    source: format!("the partition with {spec}"),
                })
            }
            many => bail!(
                "several partitions have {spec} ({}); choose one with --backup-device DEV or \
                 backup_device in {}",
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                config_path().display()
            ),
        }
    }
    bail!(
        "no backup device: pass --backup-device DEV, set backup_device in {}, or name a partition \
         `lifeboat` (sgdisk -c N:lifeboat) and run `lifeboat init-store --backup-device DEV`",
        config_path().display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_table_parses_with_its_s3_settings() {
        let c: Config = toml::from_str(
            r#"
backup_device = "LABEL=lifeboat"
[repository]
url = "s3://bucket/fleet"
identity_file = "/root/host.key"
recovery_recipients = ["age1xyz"]
[repository.s3]
endpoint = "http://127.0.0.1:7480"
path_style = true
"#,
        )
        .unwrap();
        let r = c.repository.unwrap();
        assert_eq!(r.url.as_deref(), Some("s3://bucket/fleet"));
        assert!(r.s3.path_style);
        assert_eq!(r.s3.endpoint.as_deref(), Some("http://127.0.0.1:7480"));
        assert!(r.fleet_key_file.is_none());
        assert!(toml::from_str::<Config>("[repository]\nurl = \"x\"\nsecret = \"y\"\n").is_err());
    }
}
