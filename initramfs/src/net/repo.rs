//! The repository a restore over the network reads: its URL (`lifeboat.repo=URL`, else the
//! `[repository]` table of the configuration `mkrescue --repo-config` put in the image) and
//! the key files `mkrescue --repo-*` put beside it in `/etc/lifeboat/repo/` (a second
//! initrd, repo.img: credentials never travel on the kernel command line). Its generations
//! are this host's: the host id of the identity in the image.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::store::{GenerationMeta, JournalRecord};
use lifeboat_repo::backend::{self, BackendError, S3Settings};
use lifeboat_repo::repository::Index;
use lifeboat_repo::{restores, Keys, RepoError, Repository};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    /// What names this machine in the repository's restore journal
    /// (`lifeboat_repo::restores::machine_key`: the DMI product UUID, else the product serial,
    /// else the MAC of the interface the repository is reached through); None: nothing does.
    pub machine: Option<String>,
    /// Set once a journal write was refused in this boot: why (no more writes are tried).
    journal_off: OnceLock<String>,
}

impl Session {
    /// Names this machine for the restore journal: DMI's product UUID or serial, else the
    /// MAC of `iface` (the interface the network came up on).
    pub fn with_machine(mut self, iface: Option<&str>) -> Self {
        let id = lifeboat_core::identity::machine::machine_identity();
        let mac = iface.and_then(|i| {
            std::fs::read_to_string(Path::new("/sys/class/net").join(i).join("address")).ok()
        });
        self.machine = restores::machine_key(
            id.product_uuid.as_deref(),
            id.product_serial.as_deref(),
            mac.as_deref(),
        );
        self
    }

    /// The object holding this machine's restore journal.
    fn journal_key(&self) -> Result<(&str, String)> {
        let m = self.machine.as_deref().ok_or_else(|| {
            anyhow!(
                "nothing names this machine (no DMI product UUID or serial number, no MAC address), so {} cannot keep its restore journal",
                self.url
            )
        })?;
        Ok((m, restores::key(&self.keys.fleet, &self.host_id, m)))
    }

    /// Where the journal is, for the console.
    pub fn journal_place(&self) -> String {
        match self.journal_key() {
            Ok((_, key)) => format!("the repository's restore journal {key}"),
            Err(_) => "no journal (nothing names this machine)".into(),
        }
    }

    /// This machine's restore journal in the repository, oldest first.
    pub fn journal_records(&self) -> Result<Vec<JournalRecord>> {
        let (m, key) = self.journal_key()?;
        restores::read(&self.repo, &self.keys.fleet, &self.host_id, m)
            .with_context(|| format!("cannot read the restore journal {key} from {}", self.url))
    }

    /// Appends `recs` to the journal (none: writes it back as it is, to learn whether the
    /// repository takes the journal's writes). A refused write says what to change.
    pub fn append_journal(&self, recs: &[JournalRecord]) -> Result<()> {
        if let Some(why) = self.journal_off.get() {
            return Err(anyhow!("{why}"));
        }
        let (m, key) = self.journal_key()?;
        match restores::append(&self.repo, &self.keys.fleet, &self.host_id, m, recs) {
            Ok(_) => Ok(()),
            Err(e @ RepoError::Backend(BackendError::Denied { .. })) => Err(anyhow!(e)).context(
                format!(
                    "{} refused to write the restore journal {key}: the image's credential may be read-only; give it write access to hosts/{}/restores/ for resume and run-once",
                    self.url, self.host_id
                ),
            ),
            Err(e) => Err(anyhow!(e))
                .context(format!("cannot write the restore journal {key} to {}", self.url)),
        }
    }

    /// Why the journal is not written in this boot, once a write failed.
    pub fn journal_off(&self) -> Option<&str> {
        self.journal_off.get().map(String::as_str)
    }

    /// No more journal writes in this boot, for `why`.
    pub fn stop_journal(&self, why: String) {
        let _ = self.journal_off.set(why);
    }
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
        machine: None,
        journal_off: OnceLock::new(),
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

    /// A session on a new directory repository, `read_only`: every write refused as S3 refuses
    /// a read-only credential's.
    fn session(dir: &Path, read_only: bool) -> Session {
        use lifeboat_repo::backend::local::LocalBackend;
        use lifeboat_repo::backend::Backend;
        use lifeboat_repo::chunking::ChunkerParams;
        use lifeboat_repo::testing::ReadOnly;
        let root = dir.join("repo");
        let fleet_file = dir.join("fleet.key");
        if !root.exists() {
            let init = Repository::init(
                Box::new(LocalBackend::create(&root).unwrap()),
                ChunkerParams::default(),
                vec![],
                None,
                60,
                None,
            )
            .unwrap();
            std::fs::write(&fleet_file, init.fleet.to_text()).unwrap();
        }
        let fleet = lifeboat_repo::crypto::FleetKey::from_text(
            &std::fs::read_to_string(&fleet_file).unwrap(),
        )
        .unwrap();
        let local = LocalBackend::open(&root).unwrap();
        let backend: Box<dyn Backend> = if read_only {
            Box::new(ReadOnly(local))
        } else {
            Box::new(local)
        };
        let keys = Keys {
            fleet,
            identity: lifeboat_repo::crypto::Identity::generate(),
        };
        Session {
            url: root.display().to_string(),
            repo: Repository::open(backend).unwrap(),
            host_id: "0123456789abcdef0123456789abcdef".into(),
            keys,
            machine: restores::machine_key(
                Some("7a0c51e2-9d3b-4c8e-b1f6-2e4d8a9c0b17"),
                None,
                None,
            ),
            journal_off: OnceLock::new(),
        }
    }

    #[test]
    fn the_journal_of_a_repository_restore_is_read_back_and_a_refused_write_is_named() {
        use lifeboat_core::store::events;
        let d = tempfile::tempdir().unwrap();
        let s = session(d.path(), false);
        assert!(s.journal_records().unwrap().is_empty());
        assert!(s.journal_place().starts_with(
            "the repository's restore journal hosts/0123456789abcdef0123456789abcdef/restores/"
        ));
        s.append_journal(&[]).unwrap();
        let rec = JournalRecord::new(events::RESTORE_STARTED)
            .generation("20261203T090000Z")
            .request("r-1");
        s.append_journal(std::slice::from_ref(&rec)).unwrap();
        assert_eq!(s.journal_records().unwrap(), vec![rec.clone()]);

        // A read-only credential: the records still read; the write says what to change.
        let ro = session(d.path(), true);
        assert_eq!(ro.journal_records().unwrap(), vec![rec]);
        let e = format!("{:#}", ro.append_journal(&[]).unwrap_err());
        assert!(
            e.contains("refused to write the restore journal hosts/")
                && e.contains("credential may be read-only")
                && e.contains("AccessDenied"),
            "{e}"
        );
        // Once stopped, nothing more is tried.
        ro.stop_journal(e.clone());
        assert_eq!(ro.journal_off(), Some(e.as_str()));
        assert_eq!(format!("{:#}", ro.append_journal(&[]).unwrap_err()), e);

        // Nothing names the machine: no journal, and why.
        let mut none = session(d.path(), false);
        none.machine = None;
        let e = format!("{:#}", none.journal_records().unwrap_err());
        assert!(e.contains("nothing names this machine"), "{e}");
    }
}
