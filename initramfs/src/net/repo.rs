//! The repository a restore over the network reads: its URL (`lifeboat.repo=URL`, else the
//! `[repository]` table of the configuration `mkrescue --repo-config` put in the image) and
//! the key files `mkrescue --repo-*` put beside it in `/etc/lifeboat/repo/` (a second
//! initrd, repo.img: credentials never travel on the kernel command line). Its generations
//! are those the identity opens: one host's with a host's identity, every host's with the
//! repository's recovery key (the menu tells this machine's from the others by what each
//! backup recorded of its machine).

use anyhow::{anyhow, bail, Context, Result};
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

    /// The object holding the journal of the restores of `host_id`'s generations onto this
    /// machine (the host of the generation restored, not the identity's: a recovery key
    /// restores any host's).
    fn journal_key(&self, host_id: &str) -> Result<(&str, String)> {
        let m = self.machine.as_deref().ok_or_else(|| {
            anyhow!(
                "nothing names this machine (no DMI product UUID or serial number, no MAC address), so {} cannot keep its restore journal",
                self.url
            )
        })?;
        Ok((m, restores::key(&self.keys.fleet, host_id, m)))
    }

    /// Where the journal is, for the console.
    pub fn journal_place(&self, host_id: &str) -> String {
        match self.journal_key(host_id) {
            Ok((_, key)) => format!("the repository's restore journal {key}"),
            Err(_) => "no journal (nothing names this machine)".into(),
        }
    }

    /// This machine's restore journal of `host_id`'s generations, oldest first.
    pub fn journal_records(&self, host_id: &str) -> Result<Vec<JournalRecord>> {
        let (m, key) = self.journal_key(host_id)?;
        restores::read(&self.repo, &self.keys.fleet, host_id, m)
            .with_context(|| format!("cannot read the restore journal {key} from {}", self.url))
    }

    /// Appends `recs` to the journal (none: writes it back as it is, to learn whether the
    /// repository takes the journal's writes). A refused write says what to change.
    pub fn append_journal(&self, host_id: &str, recs: &[JournalRecord]) -> Result<()> {
        if let Some(why) = self.journal_off.get() {
            return Err(anyhow!("{why}"));
        }
        let (m, key) = self.journal_key(host_id)?;
        match restores::append(&self.repo, &self.keys.fleet, host_id, m, recs) {
            Ok(_) => Ok(()),
            Err(e @ RepoError::Backend(BackendError::Denied { .. })) => Err(anyhow!(e)).context(
                format!(
                    "{} refused to write the restore journal {key}: the image's credential may be read-only; give it write access to hosts/{}/restores/ for resume and run-once",
                    self.url, host_id
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

/// Opens the repository with the image's identity and checks the keys against it.
pub fn open(s: &Source) -> Result<Session> {
    let identity = super::identity::load(&s.identity)?;
    open_with(s, identity, &s.identity.display().to_string())
}

/// Opens the repository with `identity` (named `name` in messages: the image's file, or a key
/// file found on a USB stick); without the image's fleet key file, the identity must be a
/// recovery key (the repository's copy of the fleet key is encrypted to it).
pub fn open_with(
    s: &Source,
    identity: lifeboat_repo::crypto::Identity,
    name: &str,
) -> Result<Session> {
    let be = backend::open(&s.url, &s.s3)
        .with_context(|| format!("cannot reach the repository {}", s.url))?;
    let repo = Repository::open(be).with_context(|| format!("repository {}", s.url))?;
    let fleet = repo
        .load_fleet(&s.fleet_key, &identity)
        .with_context(|| format!("the keys do not open {} (identity {name})", s.url))?;
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

/// One generation in the repository that the identity opens.
#[derive(Debug)]
pub struct RemoteGeneration {
    pub id: String,
    /// The host id it is stored under (`hosts/<host id>/`).
    pub host_id: String,
    pub index: Index,
    pub meta: GenerationMeta,
}

/// The generations the session's identity opens, each host's oldest first (the store's order
/// of ids), hosts in the repository's order. A host identity opens its own host's (its
/// generation that does not open is an error); a recovery key opens every host's (a host whose
/// newest index does not open to it is left out, with a note).
pub fn generations(s: &Session, notes: &mut Vec<String>) -> Result<Vec<RemoteGeneration>> {
    let mut hosts: Vec<(String, Vec<String>)> = Vec::new();
    for (h, g, _) in s
        .repo
        .indexes()
        .with_context(|| format!("cannot list {}", s.url))?
    {
        match hosts.iter_mut().find(|(x, _)| *x == h) {
            Some((_, ids)) => ids.push(g),
            None => hosts.push((h, vec![g])),
        }
    }
    let own = hosts.iter().any(|(h, _)| *h == s.host_id);
    let mut out = Vec::new();
    for (host, mut ids) in hosts {
        // A host identity: its own host only (the others' indexes are not encrypted to it).
        if own && host != s.host_id {
            continue;
        }
        ids.sort_by_key(|g| std::cmp::Reverse(lifeboat_core::store::layout::id_sort_key(g)));
        let mut mine = Vec::new();
        for id in ids {
            let read = s.repo.read_index(&s.keys, &host, &id).with_context(|| {
                format!("cannot read generation {id} of host {host} from {}", s.url)
            })?;
            match read {
                Some(index) => {
                    let meta = index.secret.meta.clone();
                    mine.push(RemoteGeneration {
                        id,
                        host_id: host.clone(),
                        index,
                        meta,
                    });
                }
                None if own => bail!(
                    "generation {id} in {} is not encrypted to the image's identity",
                    s.url
                ),
                None => {
                    notes.push(format!(
                        "{}: host {host}'s generation {id} is not encrypted to this identity: not listed",
                        s.url
                    ));
                    if mine.is_empty() {
                        break;
                    }
                }
            }
        }
        mine.reverse();
        out.extend(mine);
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

    const HOST: &str = "0123456789abcdef0123456789abcdef";

    /// A session on a new directory repository, `read_only`: every write refused as S3 refuses
    /// a read-only credential's.
    fn session(dir: &Path, read_only: bool) -> Session {
        use lifeboat_repo::backend::local::LocalBackend;
        use lifeboat_repo::backend::Backend;
        use lifeboat_repo::testing::ReadOnly;
        let root = dir.join("repo");
        let fleet_file = dir.join("fleet.key");
        if !root.exists() {
            let init = lifeboat_repo::testing::init_local(&root).unwrap();
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
            host_id: HOST.into(),
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
        assert!(s.journal_records(HOST).unwrap().is_empty());
        assert!(s.journal_place(HOST).starts_with(
            "the repository's restore journal hosts/0123456789abcdef0123456789abcdef/restores/"
        ));
        s.append_journal(HOST, &[]).unwrap();
        let rec = JournalRecord::new(events::RESTORE_STARTED)
            .generation("20261203T090000Z")
            .request("r-1");
        s.append_journal(HOST, std::slice::from_ref(&rec)).unwrap();
        assert_eq!(s.journal_records(HOST).unwrap(), vec![rec.clone()]);

        // A read-only credential: the records still read; the write says what to change.
        let ro = session(d.path(), true);
        assert_eq!(ro.journal_records(HOST).unwrap(), vec![rec]);
        let e = format!("{:#}", ro.append_journal(HOST, &[]).unwrap_err());
        assert!(
            e.contains("refused to write the restore journal hosts/")
                && e.contains("credential may be read-only")
                && e.contains("AccessDenied"),
            "{e}"
        );
        // Once stopped, nothing more is tried.
        ro.stop_journal(e.clone());
        assert_eq!(ro.journal_off(), Some(e.as_str()));
        assert_eq!(
            format!("{:#}", ro.append_journal(HOST, &[]).unwrap_err()),
            e
        );

        // Nothing names the machine: no journal, and why.
        let mut none = session(d.path(), false);
        none.machine = None;
        let e = format!("{:#}", none.journal_records(HOST).unwrap_err());
        assert!(e.contains("nothing names this machine"), "{e}");
    }

    const UUID_A: &str = "7a0c51e2-9d3b-4c8e-b1f6-2e4d8a9c0b17";
    const UUID_B: &str = "11111111-2222-3333-4444-555555555555";

    /// A directory repository with two hosts (xs-a taken on machine UUID_A, two generations;
    /// xs-b on UUID_B, one), its recovery key and the two host identities.
    struct Fleet {
        _dir: tempfile::TempDir,
        root: PathBuf,
        fleet: lifeboat_repo::crypto::FleetKey,
        recovery: lifeboat_repo::crypto::Identity,
        a: lifeboat_repo::crypto::Identity,
    }

    fn two_hosts() -> Fleet {
        use lifeboat_core::archive::Manifest;
        use lifeboat_repo::crypto::Identity;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let init = lifeboat_repo::testing::init_local(&root).unwrap();
        let (a, b) = (Identity::generate(), Identity::generate());
        let push = |id: &Identity, gen: &str, host: &str, uuid: &str| {
            let mut m = Manifest {
                hostname: host.into(),
                created: format!("{}-{}-{}T10:00:00Z", &gen[..4], &gen[4..6], &gen[6..8]),
                ..Default::default()
            };
            m.machine.product_uuid = Some(uuid.into());
            let meta = GenerationMeta {
                created: m.created.clone(),
                committed: m.created.clone(),
                bytes: 5,
                codec: "none".into(),
                archive: "archive.tar".into(),
                manifest: Some(m),
                ..lifeboat_repo::testing::meta(gen, host)
            };
            let keys = Keys {
                fleet: init.fleet.clone(),
                identity: Identity(id.0.clone()),
            };
            lifeboat_repo::push::push_stream(
                &init.repo,
                &keys,
                meta,
                &b"hello"[..],
                Default::default(),
            )
            .unwrap();
        };
        push(&a, "20261201T100000Z", "xs-a", UUID_A);
        push(&a, "20261202T100000Z", "xs-a", UUID_A);
        push(&b, "20261203T100000Z", "xs-b", UUID_B);
        Fleet {
            root,
            fleet: init.fleet,
            recovery: init.new_recovery.unwrap(),
            a,
            _dir: dir,
        }
    }

    fn open_with(f: &Fleet, id: &lifeboat_repo::crypto::Identity) -> Session {
        use lifeboat_repo::backend::local::LocalBackend;
        let keys = Keys {
            fleet: f.fleet.clone(),
            identity: lifeboat_repo::crypto::Identity(id.0.clone()),
        };
        Session {
            url: f.root.display().to_string(),
            repo: Repository::open(Box::new(LocalBackend::open(&f.root).unwrap())).unwrap(),
            host_id: keys.host_id(),
            keys,
            machine: restores::machine_key(Some(UUID_A), None, None),
            journal_off: OnceLock::new(),
        }
    }

    fn this(uuid: &str) -> lifeboat_core::plan::ThisHost {
        let mut t = lifeboat_core::plan::ThisHost::default();
        t.machine.product_uuid = Some(uuid.into());
        t
    }

    #[test]
    fn a_recovery_key_lists_every_host_and_this_machine_is_told_by_what_each_backup_recorded() {
        use crate::discover::{fleet, session_generations, Discovery};
        use lifeboat_core::plan::latest::ThisHostMatch;
        let f = two_hosts();
        let host_a = f.fleet.host_id(&f.a.recipient());

        // A host identity: its host's generations only, as before.
        let own = open_with(&f, &f.a);
        let gens = generations(&own, &mut Vec::new()).unwrap();
        let ids: Vec<&str> = gens.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["20261201T100000Z", "20261202T100000Z"]);

        // The recovery key: both hosts' (each host's oldest first).
        let rec = std::sync::Arc::new(open_with(&f, &f.recovery));
        let mut notes = Vec::new();
        let gens = generations(&rec, &mut notes).unwrap();
        assert_eq!(gens.len(), 3, "{notes:?}");
        assert_eq!(gens.iter().filter(|g| g.host_id == host_a).count(), 2);

        // This machine (UUID A): xs-a's generations, newest first, because the DMI UUID
        // matches; xs-b under the other hosts.
        let mut found = session_generations(rec.clone(), &mut notes).unwrap();
        found.sort_by(|x, y| y.time.cmp(&x.time));
        let fl = fleet(&found, &this(UUID_A));
        let mine: Vec<_> = fl
            .this
            .iter()
            .map(|(b, why)| (b.generation().unwrap(), why.clone()))
            .collect();
        assert_eq!(
            mine,
            [
                ("20261202T100000Z", Some(ThisHostMatch::ProductUuid)),
                ("20261201T100000Z", Some(ThisHostMatch::ProductUuid)),
            ]
        );
        assert_eq!(fl.others.len(), 1);
        assert_eq!(fl.others[0].name(), "xs-b");
        assert_ne!(fl.others[0].host_id, host_a);
        assert_eq!(fl.others[0].generations.len(), 1);
        assert_eq!(ThisHostMatch::ProductUuid.to_string(), "DMI UUID matches");

        // The journal of a restore of xs-b's generation is xs-b's, not the identity's.
        let b_gen = fl.others[0].generations[0];
        let rec_host = rec.host_id.clone();
        let r = JournalRecord::new(lifeboat_core::store::events::RESTORE_STARTED)
            .generation("20261203T100000Z");
        b_gen.append_journal(&r).unwrap();
        assert!(b_gen
            .journal_place()
            .contains(&format!("hosts/{}/restores/", fl.others[0].host_id)));
        assert_eq!(rec.journal_records(&fl.others[0].host_id).unwrap(), vec![r]);
        assert!(rec.journal_records(&rec_host).unwrap().is_empty());
        assert!(rec.journal_records(&host_a).unwrap().is_empty());

        // Unattended `latest`: only a generation matched to this machine; none: refused,
        // never a guess (xs-b is newer but another machine's).
        let d = |found: Vec<crate::discover::Backup<()>>| {
            let d = Discovery {
                devices: vec![],
                facts: vec![],
                boot_disks: Default::default(),
                backups: vec![],
                notes: vec![],
            };
            let backups = d.planned(found, &Default::default());
            Discovery { backups, ..d }
        };
        let all = d(session_generations(rec.clone(), &mut notes).unwrap());
        let b = crate::menu::pick_for(&all, "latest", &this(UUID_A)).unwrap();
        assert_eq!(b.generation(), Some("20261202T100000Z"));
        let b = crate::menu::pick_for(&all, "latest", &this(UUID_B)).unwrap();
        assert_eq!(b.generation(), Some("20261203T100000Z"));
        let e = crate::menu::pick_for(
            &all,
            "latest",
            &this("99999999-0000-0000-0000-000000000000"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no backup here was taken on this host"), "{e}");
        // Nothing to compare (no DMI identity here): a recovery key's listing is not guessed.
        let e = crate::menu::pick_for(&all, "latest", &Default::default()).unwrap_err();
        assert!(e.to_string().contains("only when chosen by hand"), "{e}");
        // A host identity: its host's generations count as this machine's as before.
        let own =
            d(session_generations(std::sync::Arc::new(open_with(&f, &f.a)), &mut notes).unwrap());
        let b = crate::menu::pick_for(&own, "latest", &Default::default()).unwrap();
        assert_eq!(b.generation(), Some("20261202T100000Z"));
    }
}
