//! The repository a restore over the network reads: its URL (`lifeboat.repo=URL`, else the
//! `[repository]` table of the configuration `mkrescue --repo-config` put in the image) and
//! the key files `mkrescue --repo-*` put beside it in `/etc/lifeboat/repo/` (a second
//! initrd, repo.img: credentials never travel on the kernel command line). Its generations
//! are this host's: the host id of the identity in the image.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::store::GenerationMeta;
use lifeboat_repo::backend::{self, S3Settings};
use lifeboat_repo::repository::Index;
use lifeboat_repo::{Keys, Repository};
use std::path::{Path, PathBuf};

/// Where repo.img puts the repository's files in the image.
pub const DIR: &str = "/etc/lifeboat/repo";
pub const CONFIG: &str = "lifeboat.toml";
pub const CREDENTIALS: &str = "credentials";
pub const IDENTITY: &str = "identity.txt";
pub const FLEET_KEY: &str = "fleet.key";
pub const CA: &str = "ca.pem";

/// Chunk fetch threads.
pub const THREADS: usize = 4;

/// The repository's address and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub url: String,
    pub s3: S3Settings,
    pub identity: PathBuf,
    pub fleet_key: PathBuf,
}

/// Whether a restore from a repository is asked for.
pub fn wanted(cmdline_url: Option<&str>) -> bool {
    cmdline_url.is_some() || Path::new(DIR).join(CONFIG).exists()
}

/// The source from the image's files in `dir` and the command line's URL (which wins).
pub fn source(dir: &Path, cmdline_url: Option<&str>) -> Result<Source> {
    let cfg = dir.join(CONFIG);
    let (url, mut s3) = match std::fs::read_to_string(&cfg) {
        Ok(text) => parse_config(&text).with_context(|| format!("{}", cfg.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, S3Settings::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", cfg.display())),
    };
    let url = cmdline_url
        .map(str::to_string)
        .or(url)
        .ok_or_else(|| anyhow!("no repository URL: boot with lifeboat.repo=URL, or build the image with `mkrescue --repo-config` naming a [repository] url"))?;
    // The image's own files, not the paths of the host the configuration came from.
    s3.credentials_file = Some(dir.join(CREDENTIALS)).filter(|p| p.exists());
    s3.ca_file = Some(dir.join(CA)).filter(|p| p.exists());
    Ok(Source {
        url,
        s3,
        identity: dir.join(IDENTITY),
        fleet_key: dir.join(FLEET_KEY),
    })
}

/// The `[repository]` table: its URL and how to reach S3 (the key file paths of the host are
/// ignored: the image has its own).
pub fn parse_config(text: &str) -> Result<(Option<String>, S3Settings)> {
    let v: toml::Table = text.parse().context("not a TOML file")?;
    let Some(r) = v.get("repository").and_then(|r| r.as_table()) else {
        return Ok((None, S3Settings::default()));
    };
    let url = r.get("url").and_then(|u| u.as_str()).map(str::to_string);
    let s3 = match r.get("s3") {
        Some(t) => t
            .clone()
            .try_into()
            .context("the [repository.s3] table is not valid")?,
        None => S3Settings::default(),
    };
    Ok((url, s3))
}

/// An open repository with this host's keys.
pub struct Session {
    pub url: String,
    pub repo: Repository,
    pub keys: Keys,
    pub host_id: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, host {})", self.url, self.host_id)
    }
}

/// Opens the repository and checks the keys against it.
pub fn open(s: &Source) -> Result<Session> {
    let be = backend::open(&s.url, &s.s3)
        .with_context(|| format!("cannot reach the repository {}", s.url))?;
    let repo = Repository::open(be).with_context(|| format!("repository {}", s.url))?;
    let identity = super::identity::load(&s.identity)?;
    let fleet = repo.load_fleet(&s.fleet_key, &identity).with_context(|| {
        format!(
            "the image's keys do not open {} (identity {})",
            s.url,
            s.identity.display()
        )
    })?;
    let keys = Keys { fleet, identity };
    let host_id = keys.host_id();
    Ok(Session {
        url: s.url.clone(),
        repo,
        keys,
        host_id,
    })
}

/// One generation of this host in the repository.
#[derive(Debug)]
pub struct RemoteGeneration {
    pub id: String,
    pub index: Index,
    pub meta: GenerationMeta,
}

/// This host's generations, oldest first (the store's order of ids).
pub fn generations(s: &Session) -> Result<Vec<RemoteGeneration>> {
    let mut ids: Vec<String> = s
        .repo
        .indexes()
        .with_context(|| format!("cannot list {}", s.url))?
        .into_iter()
        .filter(|(h, _, _)| *h == s.host_id)
        .map(|(_, g, _)| g)
        .collect();
    ids.sort_by_key(|g| lifeboat_core::store::layout::id_sort_key(g));
    let mut out = Vec::new();
    for id in ids {
        let index = s
            .repo
            .read_index(&s.keys, &s.host_id, &id)
            .with_context(|| format!("cannot read generation {id} from {}", s.url))?
            .ok_or_else(|| {
                anyhow!(
                    "generation {id} in {} is not encrypted to the image's identity",
                    s.url
                )
            })?;
        let meta = index.secret.meta.clone();
        out.push(RemoteGeneration { id, index, meta });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_and_command_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(CONFIG),
            "[repository]\nurl = \"s3://lb/fleet\"\nidentity_file = \"/etc/lifeboat/x\"\n[repository.s3]\nendpoint = \"http://10.0.2.2:7480\"\npath_style = true\ncredentials_file = \"/root/.aws/credentials\"\n",
        )
        .unwrap();
        std::fs::write(d.path().join(CREDENTIALS), "[default]\n").unwrap();
        let s = source(d.path(), None).unwrap();
        assert_eq!(s.url, "s3://lb/fleet");
        assert_eq!(s.s3.endpoint.as_deref(), Some("http://10.0.2.2:7480"));
        assert!(s.s3.path_style);
        assert_eq!(s.s3.credentials_file, Some(d.path().join(CREDENTIALS)));
        assert_eq!(s.s3.ca_file, None);
        assert_eq!(s.identity, d.path().join(IDENTITY));
        let s = source(d.path(), Some("s3://other/p")).unwrap();
        assert_eq!(s.url, "s3://other/p");
        let empty = tempfile::tempdir().unwrap();
        assert!(source(empty.path(), None).is_err());
        assert_eq!(
            source(empty.path(), Some("/srv/repo")).unwrap().url,
            "/srv/repo"
        );
    }
}
