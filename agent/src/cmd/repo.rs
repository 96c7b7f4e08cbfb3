//! The off-host repository: `lifeboat repo init|hosts|check|prune`, `lifeboat push [GEN]`,
//! and what `backup`, `list`, `verify` and `restore` call for `--repo URL`. The format is
//! the lifeboat-repo crate's; this module finds the URL and keys, and prints.

use super::common::{open_store, Decoded, GenerationRefused};
use crate::cli::{PushArgs, RepoArgs, RepoCommand};
use crate::config::{self, FLEET_KEY_FILE, IDENTITY_FILE};
use crate::ui::Bar;
use anyhow::{bail, Context, Result};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::io::ProgressReader;
use lifeboat_core::progress::{human_bytes, Progress};
use lifeboat_core::store::{self, Generation};
use lifeboat_repo::chunking::ChunkerParams;
use lifeboat_repo::crypto::{FleetKey, Identity};
use lifeboat_repo::push::{PushOptions, PushReport};
use lifeboat_repo::reader::RepoReader;
use lifeboat_repo::{backend, check, layout, prune, Keys, Repository};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Fetch and upload threads.
const THREADS: usize = 4;

/// Where the repository is and its key files, from the options, else the config.
struct Settings {
    url: String,
    fleet_key: PathBuf,
    identity: PathBuf,
    recovery_recipients: Vec<String>,
    s3: backend::S3Settings,
}

/// The URL given or configured, if any (for `backup`: push only when one is).
pub(crate) fn configured(args: &RepoArgs) -> Result<bool> {
    Ok(args.repo.is_some() || config::load()?.repository.and_then(|r| r.url).is_some())
}

fn settings(args: &RepoArgs) -> Result<Settings> {
    let cfg = config::load()?.repository.unwrap_or_default();
    let Some(url) = args.repo.clone().or(cfg.url.clone()) else {
        bail!(
            "no repository: pass --repo URL or set url in the [repository] table of {}",
            config::config_path().display()
        );
    };
    Ok(Settings {
        url,
        fleet_key: args
            .fleet_key
            .clone()
            .or(cfg.fleet_key_file)
            .unwrap_or_else(|| FLEET_KEY_FILE.into()),
        identity: args
            .identity
            .clone()
            .or(cfg.identity_file)
            .unwrap_or_else(|| IDENTITY_FILE.into()),
        recovery_recipients: cfg.recovery_recipients,
        s3: cfg.s3,
    })
}

/// A repository opened with this host's keys (or the recovery key's).
pub(crate) struct Opened {
    pub repo: Repository,
    pub keys: Keys,
    pub url: String,
    /// The host whose generations are read (this host's unless `--repo-host`).
    pub host_id: String,
}

fn read_identity(path: &Path) -> Result<Identity> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the age identity {} (this host's is made by `lifeboat repo init`; give a recovery key with --identity FILE)",
            path.display()
        )
    })?;
    Identity::from_text(&text).with_context(|| format!("{}", path.display()))
}

/// Writes a new root-only key file (its directory made if needed).
fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    store::fsync::write_private(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// This host's identity at `path`, made when there is none yet (true when made).
fn host_identity(path: &Path) -> Result<(Identity, bool)> {
    if path.exists() {
        return Ok((read_identity(path)?, false));
    }
    let id = Identity::generate();
    write_new(
        path,
        &format!(
            "# lifeboat host identity ({})\n{}\n",
            id.recipient(),
            id.to_text()
        ),
    )?;
    Ok((id, true))
}

/// `repo join`: another host of the fleet starts using an existing repository. The fleet key
/// file must have been copied here (it is never fetched: only a recovery key unwraps the
/// repository's copy); it is checked against the repository before this host's identity is
/// made, so a wrong key leaves nothing behind.
fn join(args: &RepoArgs, json: bool, quiet: bool) -> Result<ExitCode> {
    let s = settings(args)?;
    let be = backend::open(&s.url, &s.s3)
        .with_context(|| format!("cannot open the repository {}", s.url))?;
    let repo = Repository::open(be).with_context(|| format!("repository {}", s.url))?;
    if !s.fleet_key.exists() {
        bail!(
            "no fleet key file {}: copy it (root-only, mode 600) from a host that uses {} (`repo init` wrote it there), then run `lifeboat repo join` again",
            s.fleet_key.display(),
            s.url
        );
    }
    let text = std::fs::read_to_string(&s.fleet_key)
        .with_context(|| format!("cannot read the fleet key file {}", s.fleet_key.display()))?;
    let fleet = FleetKey::from_text(&text)
        .with_context(|| format!("the fleet key file {}", s.fleet_key.display()))?;
    repo.check_fleet(&fleet).with_context(|| {
        format!(
            "cannot join {} with the fleet key file {}",
            s.url,
            s.fleet_key.display()
        )
    })?;
    let (host, made) = host_identity(&s.identity)?;
    let host_id = fleet.host_id(&host.recipient());
    if json {
        println!(
            "{}",
            serde_json::json!({
                "url": s.url,
                "fleet_key_file": s.fleet_key,
                "identity_file": s.identity,
                "identity_made": made,
                "host_id": host_id,
            })
        );
    } else if !quiet {
        println!(
            "Joined {}: the fleet key {} matches it; this host's identity {} ({}), host id {host_id}. `lifeboat backup --repo` or `lifeboat push` writes this host's generations there.",
            s.url,
            s.fleet_key.display(),
            s.identity.display(),
            if made { "made now" } else { "kept" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn open(args: &RepoArgs) -> Result<Opened> {
    let s = settings(args)?;
    let be = backend::open(&s.url, &s.s3)
        .with_context(|| format!("cannot open the repository {}", s.url))?;
    let repo = Repository::open(be).with_context(|| format!("repository {}", s.url))?;
    let identity = read_identity(&s.identity)?;
    // The fleet key file; without one, a recovery key unwraps the repository's copy.
    let fleet = repo
        .load_fleet(&s.fleet_key, &identity)
        .with_context(|| format!("identity {}", s.identity.display()))?;
    let keys = Keys { fleet, identity };
    let host_id = args.host.clone().unwrap_or_else(|| keys.host_id());
    Ok(Opened {
        repo,
        keys,
        url: s.url,
        host_id,
    })
}

pub fn run(cmd: RepoCommand, quiet: bool) -> Result<ExitCode> {
    match cmd {
        RepoCommand::Init(a) => init(a, quiet),
        RepoCommand::Join(a) => join(&a.repo, a.json, quiet),
        RepoCommand::Hosts(a) => hosts(&a.repo, a.json),
        RepoCommand::Check(a) => {
            let o = open(&a.repo)?;
            let r = check::check(&o.repo, &o.keys, a.read_data)
                .with_context(|| format!("cannot check {}", o.url))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for d in &r.damaged {
                    eprintln!("lifeboat: {}: DAMAGED: {d}", o.url);
                }
                if !quiet {
                    println!(
                        "{}: {} generations, {} chunks{}{}: {}",
                        o.url,
                        r.indexes,
                        r.chunks,
                        if a.read_data {
                            format!(", {} chunks read and decrypted", r.chunks_read)
                        } else {
                            String::new()
                        },
                        if r.not_readable > 0 {
                            format!(
                                " ({} generations of other hosts checked for their chunks' presence only)",
                                r.not_readable
                            )
                        } else {
                            String::new()
                        },
                        if r.ok() { "sound" } else { "DAMAGED" }
                    );
                }
            }
            Ok(if r.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        RepoCommand::Prune(a) => {
            let o = open(&a.repo)?;
            let keep = prune::Keep {
                last: a.keep_last,
                daily: a.keep_daily,
                weekly: a.keep_weekly,
                monthly: a.keep_monthly,
            };
            let r = prune::prune(&o.repo, &o.keys.fleet, keep, std::time::SystemTime::now())
                .with_context(|| format!("cannot prune {}", o.url))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if !quiet {
                for g in &r.forgotten {
                    println!("forgot {g}");
                }
                for (what, until) in &r.retained {
                    println!("{what}: cannot delete yet (retained until {until})");
                }
                println!(
                    "{}: {} chunks deleted, {} newly marked unreferenced (deleted by a run after {} s), {} marked chunks in use again",
                    o.url, r.deleted, r.marked, o.repo.config.grace_seconds, r.kept_again
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init(a: crate::cli::RepoInitArgs, quiet: bool) -> Result<ExitCode> {
    let s = settings(&a.repo)?;
    let recipients = if a.recovery_recipients.is_empty() {
        s.recovery_recipients.clone()
    } else {
        a.recovery_recipients.clone()
    };
    let avg = a.chunk_kib.saturating_mul(1024);
    let params = ChunkerParams {
        min: avg / 4,
        avg,
        max: avg.saturating_mul(4),
    };
    // A fleet key file already here (another repository of the same fleet) is kept.
    let fleet = match std::fs::read_to_string(&s.fleet_key) {
        Ok(t) => {
            Some(FleetKey::from_text(&t).with_context(|| format!("{}", s.fleet_key.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", s.fleet_key.display())),
    };
    let be = backend::create(&s.url, &s.s3)
        .with_context(|| format!("cannot create the repository {}", s.url))?;
    let made = Repository::init(
        be,
        params,
        recipients,
        fleet.clone(),
        a.grace,
        a.object_lock_days,
    )
    .with_context(|| format!("cannot create the repository {}", s.url))?;
    if fleet.is_none() {
        write_new(&s.fleet_key, &made.fleet.to_text())?;
    }
    let (host, _) = host_identity(&s.identity)?;
    let host_id = made.fleet.host_id(&host.recipient());
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "url": s.url,
                "fleet_key_file": s.fleet_key,
                "identity_file": s.identity,
                "host_id": host_id,
                "recovery_recipients": made.repo.config.recovery_recipients,
                "object_lock_days": made.repo.config.object_lock_days,
                "recovery_key": made.new_recovery.as_ref().map(|k| k.to_text()),
            })
        );
    } else {
        if let Some(k) = &made.new_recovery {
            println!("RECOVERY KEY (printed once: keep it offline, on paper or a USB stick; it reads every backup):");
            println!("# recipient: {}", k.recipient());
            println!("{}", k.to_text());
        }
        if !quiet {
            if let Some(d) = made.repo.config.object_lock_days {
                println!("Object Lock: every generation is retained for {d} days (COMPLIANCE).");
            }
            println!(
                "Repository created at {}; fleet key in {} (copy it to every host of the fleet, root-only), this host's identity in {} (host id {host_id}).",
                s.url,
                s.fleet_key.display(),
                s.identity.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn hosts(args: &RepoArgs, json: bool) -> Result<ExitCode> {
    let o = open(args)?;
    let mine = o.keys.host_id();
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let mut by_host: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (h, g, _) in o.repo.indexes()? {
        by_host.entry(h).or_default().push(g);
    }
    for (h, mut gens) in by_host {
        gens.sort_by_key(|g| store::layout::id_sort_key(g));
        let Some(latest) = gens.last().cloned() else {
            continue;
        };
        let refs = o.repo.read_refs(&o.keys.fleet, &h, &latest);
        let name = o
            .repo
            .read_index(&o.keys, &h, &latest)
            .ok()
            .flatten()
            .map(|i| i.secret.host);
        let age = lifeboat_repo::prune::unix_of_id(&latest)
            .map(|t| (lifeboat_core::clock::unix_now() - t).max(0));
        let status = o.repo.read_status(&o.keys.fleet, &h);
        let error = refs
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .or(status.as_ref().err().map(|e| e.to_string()));
        let status = status.ok().flatten();
        rows.push(serde_json::json!({
            "host_id": h,
            "this_host": h == mine,
            "name": name,
            "generations": gens.len(),
            "latest": latest,
            "latest_age_seconds": age,
            "latest_bytes": refs.as_ref().ok().map(|r| r.stream_len),
            "last_verified": status.as_ref().map(|s| s.time.clone()),
            "last_verify_ok": status.as_ref().map(|s| s.damaged.is_empty()),
            "last_verify_checked": status.as_ref().map(|s| s.checked.len()),
            "last_verify_damaged": status.as_ref().map(|s| s.damaged.clone()),
            "error": error,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<34} {:<16} {:>5} {:<20} {:>7} {:>10} LAST VERIFIED",
        "HOST ID", "NAME", "GENS", "LATEST", "AGE", "SIZE"
    );
    for r in &rows {
        let verified = match (r["last_verified"].as_str(), r["last_verify_ok"].as_bool()) {
            (Some(t), Some(true)) => format!("{t} ok"),
            (Some(t), _) => format!(
                "{t} DAMAGED: {}",
                r["last_verify_damaged"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            _ => "never".to_string(),
        };
        println!(
            "{:<34} {:<16} {:>5} {:<20} {:>7} {:>10} {verified}",
            format!(
                "{}{}",
                r["host_id"].as_str().unwrap_or("?"),
                if r["this_host"] == true { "*" } else { "" }
            ),
            r["name"].as_str().unwrap_or("-"),
            r["generations"],
            r["latest"].as_str().unwrap_or("-"),
            r["latest_age_seconds"]
                .as_i64()
                .map(lifeboat_core::clock::age_text)
                .unwrap_or_else(|| "?".into()),
            r["latest_bytes"]
                .as_u64()
                .map(human_bytes)
                .unwrap_or_else(|| "?".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// This host's (or `--repo-host`'s) generation ids in the repository, oldest first.
fn generation_ids(o: &Opened) -> Result<Vec<String>> {
    let mut ids: Vec<String> = o
        .repo
        .indexes()?
        .into_iter()
        .filter(|(h, _, _)| *h == o.host_id)
        .map(|(_, g, _)| g)
        .collect();
    ids.sort_by_key(|g| store::layout::id_sort_key(g));
    Ok(ids)
}

fn resolve(o: &Opened, gen: &str) -> Result<String> {
    let ids = generation_ids(o)?;
    let found = if gen == "latest" {
        ids.last().cloned()
    } else {
        ids.iter().find(|g| *g == gen).cloned()
    };
    found.with_context(|| {
        format!(
            "the repository {} holds no generation {gen} of host {} ({} there)",
            o.url,
            o.host_id,
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        )
    })
}

/// Opens a generation of the repository the way every consumer reads a generation: the tar
/// stream from [`RepoReader`], checked against the meta.json the index records at its start
/// (and by the caller at its end).
pub(crate) fn open_decoded(
    args: &RepoArgs,
    gen: &str,
    quiet: bool,
) -> Result<(Decoded, &'static Bar)> {
    let o = open(args)?;
    open_decoded_in(&o, gen, quiet)
}

/// A generation's index, read with this host's (or the recovery) identity.
fn read_index(o: &Opened, gen: &str) -> Result<lifeboat_repo::repository::Index> {
    o.repo
        .read_index(&o.keys, &o.host_id, gen)
        .with_context(|| format!("cannot read generation {gen} from {}", o.url))?
        .with_context(|| {
            format!(
                "generation {gen} of host {} in {} is not encrypted to this identity: give the recovery key with --identity FILE",
                o.host_id, o.url
            )
        })
}

fn open_decoded_in(o: &Opened, gen: &str, quiet: bool) -> Result<(Decoded, &'static Bar)> {
    let gen = resolve(o, gen)?;
    let idx = read_index(o, &gen)?;
    let g = Generation {
        id: gen.clone(),
        dir: PathBuf::from(format!("{}/{}", o.url, layout::index_key(&o.host_id, &gen))),
        meta: idx.secret.meta.clone(),
    };
    let bar = Bar::leaked(quiet, Some(idx.refs.stream_len));
    bar.set_message(&format!("generation {gen}"));
    let reader = RepoReader::new(&o.repo, &o.keys.fleet, &idx, THREADS);
    let counted: Box<dyn Read + Send> = Box::new(ProgressReader::new(reader, bar));
    let (codec, tar) = lifeboat_core::codec::decoder(counted)
        .with_context(|| format!("cannot read generation {gen} from {}", o.url))?;
    g.check_codec(codec).map_err(GenerationRefused)?;
    let mut reader = ArchiveReader::new(tar);
    let manifest = reader
        .read_manifest()
        .map_err(|source| {
            GenerationRefused(store::StoreError::Archive {
                generation: gen.clone(),
                source,
            })
        })?
        .cloned();
    g.check_start(codec, reader.is_lifeboat(), manifest.as_ref())
        .map_err(GenerationRefused)?;
    Ok((
        Decoded {
            codec,
            reader,
            name: format!("generation {gen} ({})", o.url),
            content_bytes: Some(g.meta.bytes),
            generation: Some(g),
            _mount: None,
        },
        bar,
    ))
}

/// A generation's pool database from the repository (None: it has none), checked against
/// the record in its index: (generation id, dump, where it came from).
pub(crate) fn pool_database(
    args: &RepoArgs,
    gen: &str,
) -> Result<(String, Option<Vec<u8>>, String)> {
    let o = open(args)?;
    let gen = resolve(&o, gen)?;
    let data = read_pool_database(&o, &gen)?;
    Ok((gen, data, o.url.clone()))
}

fn read_pool_database(o: &Opened, gen: &str) -> Result<Option<Vec<u8>>> {
    let idx = read_index(o, gen)?;
    o.repo
        .read_pool_database(&o.keys, &o.host_id, gen, &idx.secret.meta)
        .with_context(|| format!("the pool database of generation {gen} in {}", o.url))
}

/// A repository generation's tar stream for `host-restore --repo` (reassembled from its
/// chunks, every chunk checked as it is read) with what the index records.
pub(crate) struct RepoStream {
    pub generation: String,
    pub url: String,
    pub reader: Box<dyn Read + Send>,
    pub stream_len: u64,
    /// The pool database, checked against its record.
    pub pool_database: Option<(Vec<u8>, store::PoolDatabase)>,
}

pub(crate) fn open_stream(args: &RepoArgs, gen: &str) -> Result<RepoStream> {
    let o = open(args)?;
    let gen = resolve(&o, gen)?;
    let idx = read_index(&o, &gen)?;
    let pool = o
        .repo
        .read_pool_database(&o.keys, &o.host_id, &gen, &idx.secret.meta)
        .with_context(|| format!("the pool database of generation {gen} in {}", o.url))?;
    let pool_database = pool.zip(idx.secret.meta.pool_database.clone());
    let reader: Box<dyn Read + Send> =
        Box::new(RepoReader::new(&o.repo, &o.keys.fleet, &idx, THREADS));
    Ok(RepoStream {
        generation: gen,
        url: o.url.clone(),
        reader,
        stream_len: idx.refs.stream_len,
        pool_database,
    })
}

/// "3d", "5h", "12m", "40s".
/// Records what `verify --repo` found for the host whose generations it read (read by
/// `repo hosts` for every host).
pub(crate) fn record_verification(
    args: &RepoArgs,
    checked: Vec<String>,
    damaged: Vec<String>,
) -> Result<()> {
    let o = open(args)?;
    let status = lifeboat_repo::layout::VerifyStatus {
        time: lifeboat_core::clock::now_rfc3339(),
        checked,
        damaged,
    };
    o.repo
        .write_status(&o.keys.fleet, &o.host_id, &status)
        .with_context(|| format!("cannot record the verification in {}", o.url))
}

/// Checks a repository generation's pool database (for `verify --repo`); Ok when it has none.
pub(crate) fn check_pool_database(args: &RepoArgs, gen: &str) -> Result<()> {
    let o = open(args)?;
    let gen = resolve(&o, gen)?;
    read_pool_database(&o, &gen).map(|_| ())
}

/// Every generation `verify --repo` reads when none is named, opened one at a time.
pub(crate) fn all_generations(args: &RepoArgs) -> Result<Vec<String>> {
    let o = open(args)?;
    let ids = generation_ids(&o)?;
    if ids.is_empty() {
        bail!(
            "the repository {} holds no generation of host {}",
            o.url,
            o.host_id
        );
    }
    Ok(ids)
}

/// `lifeboat list --repo URL`.
pub(crate) fn list(args: &RepoArgs, json: bool) -> Result<ExitCode> {
    let o = open(args)?;
    let mut rows = Vec::new();
    for g in generation_ids(&o)? {
        let idx = o.repo.read_index(&o.keys, &o.host_id, &g)?;
        rows.push(match idx {
            Some(i) => serde_json::json!({
                "id": g, "host": i.secret.host, "created": i.secret.meta.created,
                "pushed": i.secret.pushed, "bytes": i.secret.meta.bytes,
                "stream_bytes": i.refs.stream_len, "files": i.secret.meta.files,
                "state": i.secret.meta.state.name(), "chunks": i.chunks.len(),
                "pool_database": i.secret.meta.pool_database.as_ref().map(|p| p.size),
            }),
            None => serde_json::json!({ "id": g }),
        });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "repository": o.url, "host_id": o.host_id, "backups": rows })
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("Repository {} (host {})", o.url, o.host_id);
    if rows.is_empty() {
        println!("No generations yet: run `lifeboat push`.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<20} {:<16} {:>10} {:>8} {:<12} {:>8}",
        "ID", "CREATED", "HOST", "SIZE", "FILES", "STATE", "POOL-DB"
    );
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<20} {:<20} {:<16} {:>10} {:>8} {:<12} {:>8}",
            s("id"),
            s("created"),
            s("host"),
            r["stream_bytes"]
                .as_u64()
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
            r["files"]
                .as_u64()
                .map(|f| f.to_string())
                .unwrap_or_default(),
            s("state"),
            r["pool_database"]
                .as_u64()
                .map(human_bytes)
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn push_one(o: &Opened, g: &Generation, quiet: bool) -> Result<PushReport> {
    let bar = Bar::leaked(quiet, Some(g.meta.size));
    bar.set_message(&format!("push {}", g.id));
    let r = lifeboat_repo::push::push_generation(
        &o.repo,
        &o.keys,
        g,
        PushOptions { threads: THREADS },
        |f| ProgressReader::new(f, bar),
    )
    .with_context(|| format!("cannot push generation {} to {}", g.id, o.url));
    bar.finish();
    r
}

/// Pushes one committed generation (for `backup`).
pub(crate) fn push_committed(args: &RepoArgs, g: &Generation, quiet: bool) -> Result<PushReport> {
    let o = open(args)?;
    push_one(&o, g, quiet)
}

/// `lifeboat push [GEN]`.
pub fn push(args: PushArgs, quiet: bool) -> Result<ExitCode> {
    let PushArgs {
        generation,
        device,
        repo,
        json,
    } = args;
    let o = open(&repo)?;
    let st = open_store(device.backup_device.as_deref())?;
    let gens: Vec<Generation> = match generation.as_deref() {
        Some(g) => vec![st.store.find(g)?],
        None => st.store.generations()?,
    };
    let mine = o.keys.host_id();
    let mut reports = Vec::new();
    for g in gens {
        if o.repo
            .backend
            .head(&layout::index_key(&mine, &g.id))
            .with_context(|| format!("cannot read {}", o.url))?
            .is_some()
        {
            if !quiet && !json {
                println!("generation {} is already in {}", g.id, o.url);
            }
            continue;
        }
        let r = push_one(&o, &g, quiet || json)?;
        if !quiet && !json {
            print_push(&r, &o.url);
        }
        reports.push(r);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "repository": o.url, "pushed": reports })
            )?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line for a push.
pub(crate) fn print_push(r: &PushReport, url: &str) {
    println!(
        "generation {} pushed to {}: {} stream, {} chunks, {} new ({} uploaded{})",
        r.generation,
        url,
        human_bytes(r.stream_bytes),
        r.chunks,
        r.uploaded_chunks,
        human_bytes(r.uploaded_bytes + r.index_bytes),
        if r.reuploaded_marked > 0 {
            format!(", {} again after a prune mark", r.reuploaded_marked)
        } else {
            String::new()
        }
    );
}
