//! Discovery: every disk and partition, the boot medium (never a target), Lifeboat stores and
//! XenServer backup partitions (`.xen-backup-partition` + `etc/xensource-inventory`), and for
//! each backup core's restore plan on this machine (`lifeboat_core::plan`: which disk and
//! partitions it writes, with the safety rules) or the refusal that explains itself.

use crate::cmdline::Options;
use crate::console::log_only;
use crate::mounts;
use crate::probe::{self, BlockDev};
use crate::store_view;
use anyhow::{Context, Result};
use lifeboat_core::archive::Manifest;
use lifeboat_core::identity::{machine, read_partition_table};
use lifeboat_core::plan::latest::{match_reason, ThisHostMatch};
use lifeboat_core::plan::ThisHost;
use lifeboat_core::plan::{
    self, BackupFacts, Dated, DeviceFacts, Holds, Plan, PlanError, SystemFiles, TargetRequest,
};
use lifeboat_core::store::journal::last_restore;
use lifeboat_core::store::{events, xentree, JournalRecord, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum BackupKind {
    /// A generation of a Lifeboat store.
    Lifeboat {
        generation: String,
        archive: PathBuf,
        manifest: Box<Manifest>,
    },
    /// A generation of this host in the repository (`lifeboat.repo=`, or the image's
    /// repository configuration), read over the network.
    Repo {
        generation: String,
        session: std::sync::Arc<crate::net::repo::Session>,
        remote: std::sync::Arc<crate::net::repo::RemoteGeneration>,
        manifest: Box<Manifest>,
    },
    /// An unpacked XenServer backup partition (what `xe host-restore` leaves).
    XenTree { inventory: BTreeMap<String, String> },
}

/// A backup found, with `plan` its restore plan on this machine (`P = ()` while discovery is
/// still looking at the devices: the plan needs all of them).
#[derive(Debug, Clone)]
pub struct Backup<P = Result<Plan, PlanError>> {
    pub kind: BackupKind,
    /// The partition that holds the backup.
    pub device: BlockDev,
    /// Where it is mounted (read-only).
    pub mount: PathBuf,
    pub host: String,
    pub time: String,
    pub product_version: String,
    pub size: u64,
    /// What core's plan is computed from (for a plain `xe host-backup` generation its system
    /// files are read when it is verified, and the plan computed again).
    pub facts: BackupFacts,
    /// Core's restore plan for it on this machine, or the refusal that explains itself.
    pub plan: P,
    /// The journal of the partition holding the backup (a store's, or a XenServer backup
    /// partition's `lost+found/lifeboat-journal`), or this machine's restore journal in the
    /// repository, shows a restore that started and never finished.
    pub interrupted: bool,
}

impl Backup<()> {
    /// The backup with its plan, once every device has been looked at.
    fn planned(self, plan: Result<Plan, PlanError>) -> Backup {
        Backup {
            kind: self.kind,
            device: self.device,
            mount: self.mount,
            host: self.host,
            time: self.time,
            product_version: self.product_version,
            size: self.size,
            facts: self.facts,
            plan,
            interrupted: self.interrupted,
        }
    }
}

impl<P> Backup<P> {
    /// Whether the journal of its restores can be written now (resume after a cut, an
    /// unattended request that runs once): for a repository its journal object is written back
    /// as it is (a read-only credential is refused here, before anything is restored). The
    /// journal of a partition is written when the restore starts.
    pub fn journal_ready(&self) -> Result<()> {
        match &self.kind {
            BackupKind::Repo {
                session, remote, ..
            } => session.append_journal(&remote.host_id, &[]),
            BackupKind::Lifeboat { .. } | BackupKind::XenTree { .. } => Ok(()),
        }
    }

    /// The id the restores of this backup are journalled under: the generation (of a Lifeboat
    /// store or the repository), `xenserver-tree@<time of its marker>` for a XenServer backup
    /// partition.
    pub fn journal_id(&self) -> String {
        match &self.kind {
            BackupKind::Lifeboat { generation, .. } | BackupKind::Repo { generation, .. } => {
                generation.clone()
            }
            BackupKind::XenTree { .. } => xentree::journal_id(&self.time),
        }
    }

    /// Where that journal is, for the console ("the store's journal on /dev/vdb1").
    pub fn journal_place(&self) -> String {
        match &self.kind {
            BackupKind::Lifeboat { .. } => {
                format!("the store's journal on {}", self.device.dev_path())
            }
            BackupKind::XenTree { .. } => format!(
                "the backup partition's journal ({} on {})",
                xentree::JOURNAL,
                self.device.dev_path()
            ),
            BackupKind::Repo {
                session, remote, ..
            } => session.journal_place(&remote.host_id),
        }
    }

    /// The records of the restore journal of the partition holding this backup, or of this
    /// machine's restores of this host in the repository.
    pub fn journal_records(&self) -> Result<Vec<JournalRecord>> {
        match &self.kind {
            BackupKind::Repo {
                session, remote, ..
            } => session.journal_records(&remote.host_id),
            BackupKind::Lifeboat { .. } => store_view::journal_records(&self.mount),
            BackupKind::XenTree { .. } => xentree::read_journal(&self.mount).with_context(|| {
                format!(
                    "cannot read the restore journal {} of the XenServer backup partition {}",
                    xentree::JOURNAL,
                    self.device.dev_path()
                )
            }),
        }
    }

    /// Appends `rec` to that journal (the partition must be mounted read-write).
    pub fn append_journal(&self, rec: &JournalRecord) -> Result<()> {
        match &self.kind {
            BackupKind::Repo {
                session, remote, ..
            } => session.append_journal(&remote.host_id, std::slice::from_ref(rec)),
            BackupKind::Lifeboat { .. } => store_view::journal(&self.mount, rec),
            BackupKind::XenTree { .. } => {
                xentree::append_journal(&self.mount, rec).with_context(|| {
                    format!(
                        "cannot append to the restore journal {} of the XenServer backup partition {}",
                        xentree::JOURNAL,
                        self.device.dev_path()
                    )
                })
            }
        }
    }
}

impl<P> Backup<P> {
    /// Where the backup is: its partition, or the repository's URL.
    pub fn place(&self) -> String {
        match &self.kind {
            BackupKind::Repo { session, .. } => session.url.clone(),
            _ => self.device.dev_path(),
        }
    }
    pub fn generation(&self) -> Option<&str> {
        match &self.kind {
            BackupKind::Lifeboat { generation, .. } | BackupKind::Repo { generation, .. } => {
                Some(generation)
            }
            BackupKind::XenTree { .. } => None,
        }
    }
    pub fn kind_name(&self) -> &'static str {
        match (&self.kind, self.facts.kind) {
            (BackupKind::XenTree { .. }, _) => "XenServer backup partition",
            (BackupKind::Repo { .. }, _) => "Lifeboat repository",
            (_, plan::BackupKind::PlainTar) => "Lifeboat (staged xe host-backup)",
            _ => "Lifeboat",
        }
    }
}

impl<P> Dated for Backup<P> {
    fn created(&self) -> &str {
        &self.time
    }
    fn host(&self) -> &str {
        &self.host
    }
    fn machine(&self) -> Option<&lifeboat_core::archive::manifest::MachineIdentity> {
        self.facts.manifest.as_ref().map(|m| &m.machine)
    }
    fn label(&self) -> String {
        if let BackupKind::Repo {
            generation,
            session,
            ..
        } = &self.kind
        {
            return format!(
                "generation {generation} of host '{}' taken {} in {}",
                self.host, self.time, session.url
            );
        }
        match self.generation() {
            Some(g) => format!(
                "generation {g} of host '{}' taken {} on {}",
                self.host,
                self.time,
                self.device.dev_path()
            ),
            None => format!(
                "the XenServer backup partition {} of host '{}'",
                self.device.dev_path(),
                self.host
            ),
        }
    }
}

pub struct Discovery {
    pub devices: Vec<BlockDev>,
    /// Every device with what discovery learnt of it (the plan's input).
    pub facts: Vec<DeviceFacts>,
    /// Disks holding the medium this image booted from.
    pub boot_disks: BTreeSet<String>,
    pub backups: Vec<Backup>,
    pub notes: Vec<String>,
}

/// Parses a shell-style KEY='value' file (the XenServer inventory).
pub fn parse_inventory(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            (!k.is_empty() && !k.starts_with('#')).then(|| (k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn used_bytes(dir: &Path) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| (s.blocks() - s.blocks_free()) * s.fragment_size())
        .unwrap_or(0)
}

fn mtime_string(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| lifeboat_core::clock::UtcTime::from_unix(m.mtime()).rfc3339())
        .unwrap_or_else(|_| "unknown time".into())
}

/// A XenServer backup partition is mounted at `dir`: its marker and inventory at the top.
fn is_xen_tree(dir: &Path) -> bool {
    dir.join(".xen-backup-partition").exists() && dir.join("etc/xensource-inventory").exists()
}

/// What the kernel command line asks a restore to write: `lifeboat.disk=` (a blank disk for
/// the whole recorded layout), `lifeboat.target=` (a partition, or a disk to search), or the
/// partition the backup recorded.
pub fn request(opts: &Options) -> TargetRequest {
    match (&opts.disk, &opts.target) {
        (Some(d), _) => TargetRequest::Disk(d.clone()),
        (None, Some(t)) => TargetRequest::Partition(t.clone()),
        (None, None) => TargetRequest::Automatic,
    }
}

/// Computes (again) the plan of `b` with what discovery found. After an interrupted restore
/// (`interrupted`: the store's journal has a restore-started with no restore-done), a disk
/// whose partition table carries the disk GUID the backup recorded was being recreated by
/// that restore: it counts as blank again, so the whole-disk plan runs again from its start
/// (every step can be repeated).
pub fn plan_for(
    b: &BackupFacts,
    d: &[DeviceFacts],
    opts: &Options,
    interrupted: bool,
) -> Result<Plan, PlanError> {
    let recorded: Vec<&str> = b
        .manifest
        .as_ref()
        .map(|m| m.source.disks.iter().map(|l| l.table_id.as_str()).collect())
        .unwrap_or_default();
    let mut facts = d.to_vec();
    if interrupted && !recorded.is_empty() {
        for f in facts
            .iter_mut()
            .filter(|f| !f.dev.is_partition() && !f.blank)
        {
            let ours = matches!(
                read_partition_table(Path::new(&f.dev.dev_path())),
                Ok(Some(t)) if recorded.iter().any(|r| r.eq_ignore_ascii_case(&t.id))
            );
            let holds_something = d
                .iter()
                .any(|p| p.dev.disk == f.dev.name && (p.holds.is_some() || !p.mounts.is_empty()));
            if ours && !holds_something && f.md_array.is_none() && !f.boot_medium {
                f.blank = true;
            }
        }
        let holders: BTreeMap<String, String> = facts
            .iter()
            .filter(|f| f.md_array.is_some())
            .filter_map(|f| md_holder(&f.dev.name).map(|h| (f.dev.name.clone(), h)))
            .collect();
        facts = forget_own_arrays(facts, &holders);
    }
    plan::plan(b, &facts, &request(opts), &machine::machine_identity())
}

/// The md array (`md0`) that holds a leg now, from sysfs (`holders/`).
fn md_holder(leg: &str) -> Option<String> {
    std::fs::read_dir(Path::new("/sys/class/block").join(leg).join("holders"))
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("md"))
}

/// After an interrupted whole-disk restore, the md arrays it created on the disks it
/// recreated (now counted blank again) are its own work, not a RAID to protect: an array
/// whose every leg is on such a disk is forgotten, its legs no longer count as legs and the
/// array's device (which discovery assembled read-only) as a device, so that the plan is
/// computed again as it was first (the same /dev/mdN) and resumes. `holders`: leg -> the
/// assembled array holding it. An array with a leg elsewhere stays, and so does the refusal.
fn forget_own_arrays(
    mut facts: Vec<DeviceFacts>,
    holders: &BTreeMap<String, String>,
) -> Vec<DeviceFacts> {
    let recreated: BTreeSet<String> = facts
        .iter()
        .filter(|f| !f.dev.is_partition() && f.blank)
        .map(|f| f.dev.name.clone())
        .collect();
    let arrays: BTreeSet<String> = facts.iter().filter_map(|f| f.md_array.clone()).collect();
    for array in arrays {
        let legs: Vec<&DeviceFacts> = facts
            .iter()
            .filter(|f| f.md_array.as_deref() == Some(array.as_str()))
            .collect();
        if !legs.iter().all(|l| recreated.contains(&l.dev.disk)) {
            continue;
        }
        let leg_names: BTreeSet<String> = legs.iter().map(|l| l.dev.name.clone()).collect();
        let devices: BTreeSet<String> = leg_names
            .iter()
            .filter_map(|l| holders.get(l).cloned())
            .collect();
        facts.retain(|f| !devices.contains(&f.dev.name));
        for f in facts.iter_mut().filter(|f| leg_names.contains(&f.dev.name)) {
            f.md_array = None;
        }
    }
    facts
}

/// Facts for every device: core's [`plan::facts::from_devices`] (the boot medium, blank disks,
/// md legs from their superblocks), with the devices found holding a Lifeboat store or a
/// XenServer backup. Nothing of the machine is mounted in this image except the backups
/// discovery keeps mounted, so `mounts` stays empty: those are refused as what they hold.
fn device_facts(devs: &[BlockDev], holds: &BTreeMap<String, Holds>) -> Vec<DeviceFacts> {
    let mut facts = plan::facts::from_devices(devs);
    for f in &mut facts {
        f.holds = holds.get(&f.dev.name).cloned();
    }
    facts
}

pub fn discover(opts: &Options) -> Discovery {
    let mut devs = probe::scan();
    // md arrays (a root on RAID1) are assembled read-only first, so that they are found and
    // written through, never one leg; a leg is never mounted by discovery.
    if crate::md::assemble_found(&devs) {
        devs = probe::scan();
    }
    let legs: BTreeSet<String> = devs
        .iter()
        .filter(|d| plan::md::probe_md(Path::new(&d.dev_path())).is_some())
        .map(|d| d.name.clone())
        .collect();
    let boot: BTreeSet<String> = plan::facts::boot_disks(&devs).into_iter().collect();
    let mut backups = Vec::new();
    let mut holds: BTreeMap<String, Holds> = BTreeMap::new();
    let mut notes = Vec::new();
    let has_parts: BTreeSet<String> = devs
        .iter()
        .filter(|d| d.is_partition())
        .map(|d| d.disk.clone())
        .collect();
    for d in &devs {
        if !d.fstype().starts_with("ext") || boot.contains(&d.disk) || legs.contains(&d.name) {
            continue;
        }
        if !d.is_partition() && has_parts.contains(&d.name) {
            continue;
        }
        let dir = mounts::mount_dir(&d.name);
        let already = mounts::mounted_at(&d.dev_path()).into_iter().next();
        let dir = match already {
            Some(existing) => existing,
            None => {
                if let Err(e) = mounts::mount_probe(&d.dev_path(), &dir, d.fstype()) {
                    notes.push(format!("{e:#}"));
                    continue;
                }
                // A Lifeboat store or a XenServer backup partition holds the journal of the
                // restores from it (the restore writes it): it is mounted
                // with its ext journal loaded, so that a journal record written just before a
                // power cut is read, not an older state.
                if Store::is_store(&dir) || is_xen_tree(&dir) {
                    let again = mounts::unmount(&dir)
                        .and_then(|()| mounts::mount_fs(&d.dev_path(), &dir, d.fstype(), true));
                    if let Err(e) = again {
                        notes.push(format!("{e:#}"));
                        continue;
                    }
                }
                dir
            }
        };
        let mut keep = false;
        if is_xen_tree(&dir) {
            holds.insert(d.name.clone(), Holds::XenServerBackup);
            let inv = parse_inventory(
                &std::fs::read_to_string(dir.join("etc/xensource-inventory")).unwrap_or_default(),
            );
            let version = match (inv.get("PRODUCT_VERSION"), inv.get("BUILD_NUMBER")) {
                (Some(v), Some(b)) => format!("{v} (build {b})"),
                (Some(v), None) => v.clone(),
                _ => inv
                    .get("PLATFORM_VERSION")
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
            };
            let host = std::fs::read_to_string(dir.join("etc/hostname"))
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .or_else(|| inv.get("INSTALLATION_UUID").cloned())
                .unwrap_or_else(|| "unknown host".into());
            let time = mtime_string(&dir.join(".xen-backup-partition"));
            let size = used_bytes(&dir);
            let read = |p: &str| std::fs::read_to_string(dir.join(p)).ok();
            let facts = BackupFacts {
                kind: plan::BackupKind::XenServerTree,
                generation: None,
                host: host.clone(),
                created: time.clone(),
                product_version: Some(version.clone()),
                device: d.name.clone(),
                manifest: None,
                system_files: Some(SystemFiles::read(read)),
                content_bytes: size,
                entries: 0,
            };
            let mut b = Backup {
                kind: BackupKind::XenTree { inventory: inv },
                device: d.clone(),
                mount: dir.clone(),
                host,
                time,
                product_version: version,
                size,
                facts,
                plan: (),
                interrupted: false,
            };
            b.interrupted = match b.journal_records() {
                Ok(r) => last_restore(&r).is_some_and(|r| r.event == events::RESTORE_STARTED),
                Err(e) => {
                    notes.push(format!("{e:#}"));
                    false
                }
            };
            backups.push(b);
            keep = true;
        } else {
            match store_view::list(&dir) {
                Ok(Some(store)) => {
                    keep = true;
                    holds.insert(d.name.clone(), Holds::LifeboatStore);
                    for g in store.generations {
                        let m = g.manifest;
                        let version = m
                            .inventory
                            .get("PRODUCT_VERSION")
                            .cloned()
                            .unwrap_or_else(|| "-".into());
                        let facts = BackupFacts {
                            kind: if g.recorded {
                                plan::BackupKind::Lifeboat
                            } else {
                                plan::BackupKind::PlainTar
                            },
                            generation: Some(g.id.clone()),
                            host: m.hostname.clone(),
                            created: m.created.clone(),
                            product_version: m.inventory.get("PRODUCT_VERSION").cloned(),
                            device: d.name.clone(),
                            manifest: g.recorded.then(|| m.clone()),
                            system_files: None,
                            content_bytes: g.bytes,
                            entries: g.entries,
                        };
                        backups.push(Backup {
                            kind: BackupKind::Lifeboat {
                                generation: g.id,
                                archive: g.archive,
                                manifest: Box::new(m.clone()),
                            },
                            device: d.clone(),
                            mount: dir.clone(),
                            host: m.hostname.clone(),
                            time: m.created.clone(),
                            product_version: version,
                            size: g.size,
                            facts,
                            plan: (),
                            interrupted: store.interrupted,
                        });
                    }
                }
                Ok(None) => {}
                Err(e) => notes.push(format!("{}: {e:#}", d.dev_path())),
            }
        }
        if !keep {
            log_only(&format!("discovery: {} holds no backup", d.dev_path()));
            let _ = mounts::unmount(&dir);
        }
    }
    if crate::net::repo::wanted(opts.repo.as_deref()) {
        backups.extend(repo_backups(opts, &mut notes));
    }
    let mut d = Discovery {
        facts: device_facts(&devs, &holds),
        devices: devs,
        boot_disks: boot,
        backups: Vec::new(),
        notes,
    };
    d.backups = d.planned(backups, opts);
    d
}

/// This host's generations in the repository, after bringing the network up (once). What
/// fails is said on the consoles and discovery goes on with the disks. A passphrase-protected
/// identity not opened yet is left to the menu's "Restore from network" (discovery never asks).
fn repo_backups(opts: &Options, notes: &mut Vec<String>) -> Vec<Backup<()>> {
    use crate::console::say_once;
    use crate::net::{self, identity, repo};
    let src = match repo::source(Path::new(repo::DIR), opts.repo.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            let m = format!("REPOSITORY NOT READ: {e:#}");
            say_once(&m);
            notes.push(m);
            return Vec::new();
        }
    };
    if !src.identity.exists() {
        let m = format!(
            "Repository {}: this image carries no identity; choose \"Restore from network\" to use a key file from a USB stick (the recovery key, or a host's identity)",
            src.url
        );
        say_once(&m);
        notes.push(m);
        return Vec::new();
    }
    if identity::needs_passphrase(&src.identity) {
        let m = format!(
            "Repository {}: its identity is protected by a passphrase; choose \"Restore from network\" to type it and see this host's generations",
            src.url
        );
        say_once(&m);
        notes.push(m);
        return Vec::new();
    }
    let iface = match net::ensure_up(opts.ip.as_deref(), false) {
        Ok(c) => c.iface,
        Err(_) => return Vec::new(),
    };
    match repo_generations(&src, Some(&iface), notes) {
        Ok(b) => b,
        Err(e) => {
            let m = format!("REPOSITORY NOT READ: {e:#}");
            say_once(&m);
            notes.push(m);
            Vec::new()
        }
    }
}

/// Opens the repository of `src` (asking for the identity's passphrase when it has one) and
/// gives the generations its identity opens as backups (not planned yet:
/// [`Discovery::planned`]): its host's with a host identity, every host's with the recovery key.
pub fn repo_generations(
    src: &crate::net::repo::Source,
    iface: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<Backup<()>>> {
    let session = std::sync::Arc::new(crate::net::repo::open(src)?.with_machine(iface));
    session_generations(session, notes)
}

/// The generations `session`'s identity opens, as backups.
pub fn session_generations(
    session: std::sync::Arc<crate::net::repo::Session>,
    notes: &mut Vec<String>,
) -> Result<Vec<Backup<()>>> {
    use crate::console::say_once;
    use crate::net::repo;
    let gens = repo::generations(&session, notes)?;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut hosts: Vec<&str> = Vec::new();
    for g in &gens {
        if !hosts.contains(&g.host_id.as_str()) {
            hosts.push(&g.host_id);
        }
    }
    if hosts.iter().any(|h| *h != session.host_id) {
        say_once(&format!(
            "Repository {}: {} generation{} of {} host{} (the identity is not a host's: a recovery key)",
            session.url,
            gens.len(),
            plural(gens.len()),
            hosts.len(),
            plural(hosts.len())
        ));
    } else {
        say_once(&format!(
            "Repository {}: {} generation{} of this host (id {})",
            session.url,
            gens.len(),
            plural(gens.len()),
            session.host_id
        ));
    }
    // A restore of a host onto this machine that started and did not finish (the repository's
    // restore journal of that host), whichever generation it was of.
    let mut interrupted: Vec<(String, bool)> = Vec::new();
    for h in hosts {
        let i = match session.journal_records(h) {
            Ok(r) => last_restore(&r).is_some_and(|r| r.event == events::RESTORE_STARTED),
            Err(e) => {
                let m = format!("Warning: {e:#}: an interrupted restore cannot be resumed");
                say_once(&m);
                notes.push(m);
                false
            }
        };
        interrupted.push((h.to_string(), i));
    }
    Ok(gens
        .into_iter()
        .filter_map(|g| {
            let Some(m) = g.meta.manifest.clone() else {
                notes.push(format!(
                    "{}: generation {} is a plain tar without a manifest: not restorable from the repository by this image",
                    session.url, g.id
                ));
                return None;
            };
            let interrupted = interrupted
                .iter()
                .any(|(h, i)| *i && *h == g.host_id);
            let facts = BackupFacts {
                kind: plan::BackupKind::Lifeboat,
                generation: Some(g.id.clone()),
                host: m.hostname.clone(),
                created: m.created.clone(),
                product_version: m.inventory.get("PRODUCT_VERSION").cloned(),
                device: String::new(),
                manifest: Some(m.clone()),
                system_files: None,
                content_bytes: g.meta.bytes,
                entries: g.meta.entries,
            };
            Some(Backup {
                device: BlockDev::default(),
                mount: PathBuf::new(),
                host: m.hostname.clone(),
                time: m.created.clone(),
                product_version: facts.product_version.clone().unwrap_or_else(|| "-".into()),
                size: g.index.refs.stream_len,
                facts,
                plan: (),
                interrupted,
                kind: BackupKind::Repo {
                    generation: g.id.clone(),
                    session: session.clone(),
                    remote: std::sync::Arc::new(g),
                    manifest: Box::new(m),
                },
            })
        })
        .collect())
}

/// The repository generations of a listing, as "Restore from network" shows them: this
/// machine's first, then the other hosts'.
#[derive(Debug)]
pub struct Fleet<'a, P> {
    /// This machine's generations (newest first, as given), each with why it is this
    /// machine's: core's rule on what the backup recorded of its machine
    /// (`lifeboat_core::plan::latest::match_reason`), or None for a generation of the image
    /// identity's own host whose recorded machine does not match (a host identity lists its
    /// host's generations as before; the restore plan asks for consent).
    pub this: Vec<(&'a Backup<P>, Option<ThisHostMatch>)>,
    /// Every other host (repository order), its generations newest first.
    pub others: Vec<OtherHost<'a, P>>,
}

/// A host whose generations were not taken on this machine.
#[derive(Debug)]
pub struct OtherHost<'a, P> {
    pub host_id: String,
    pub generations: Vec<&'a Backup<P>>,
}

impl<P> OtherHost<'_, P> {
    /// The host name its newest generation recorded.
    pub fn name(&self) -> &str {
        self.generations.first().map_or("-", |b| b.host.as_str())
    }
}

impl<P> Backup<P> {
    /// For a repository generation: the host id it is stored under, and whether that is the
    /// host of the identity the repository was opened with.
    pub fn repo_host(&self) -> Option<(&str, bool)> {
        match &self.kind {
            BackupKind::Repo {
                session, remote, ..
            } => Some((remote.host_id.as_str(), remote.host_id == session.host_id)),
            _ => None,
        }
    }
}

/// Splits repository generations (newest first) into this machine's and the other hosts'.
pub fn fleet<'a, P>(backups: &'a [Backup<P>], this: &ThisHost) -> Fleet<'a, P> {
    let mut out = Fleet {
        this: Vec::new(),
        others: Vec::new(),
    };
    for b in backups {
        let Some((host, own)) = b.repo_host() else {
            continue;
        };
        let why = match_reason(b, this);
        if why.is_some() || own {
            out.this.push((b, why));
            continue;
        }
        match out.others.iter_mut().find(|o| o.host_id == host) {
            Some(o) => o.generations.push(b),
            None => out.others.push(OtherHost {
                host_id: host.to_string(),
                generations: vec![b],
            }),
        }
    }
    out
}

impl Discovery {
    /// `found` with their restore plans on the devices discovery saw, newest first (RFC 3339
    /// times sort as text).
    pub fn planned(&self, found: Vec<Backup<()>>, opts: &Options) -> Vec<Backup> {
        let mut out: Vec<Backup> = found
            .into_iter()
            .map(|b| {
                let plan = plan_for(&b.facts, &self.facts, opts, b.interrupted);
                b.planned(plan)
            })
            .collect();
        out.sort_by(|a, b| b.time.cmp(&a.time));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, disk: &str, partno: Option<u32>) -> DeviceFacts {
        DeviceFacts::new(BlockDev {
            name: name.into(),
            disk: disk.into(),
            partno,
            size: 1 << 30,
            ..Default::default()
        })
    }

    fn leg(name: &str, disk: &str, array: &str) -> DeviceFacts {
        let mut f = dev(name, disk, Some(1));
        f.md_array = Some(array.into());
        f
    }

    #[test]
    fn an_array_made_by_the_interrupted_restore_on_its_own_disks_is_forgotten() {
        let mut a = dev("vda", "vda", None);
        a.blank = true;
        let mut b = dev("vdb", "vdb", None);
        b.blank = true;
        let facts = vec![
            a,
            leg("vda1", "vda", "U1"),
            b,
            leg("vdb1", "vdb", "U1"),
            dev("md0", "md0", None),
            dev("vdc", "vdc", None),
        ];
        let holders: BTreeMap<String, String> = [("vda1", "md0"), ("vdb1", "md0")]
            .into_iter()
            .map(|(l, h)| (l.to_string(), h.to_string()))
            .collect();
        let out = forget_own_arrays(facts, &holders);
        assert!(out.iter().all(|f| f.md_array.is_none()));
        assert!(!out.iter().any(|f| f.dev.name == "md0"));
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn an_array_with_a_leg_on_another_disk_stays() {
        let mut a = dev("vda", "vda", None);
        a.blank = true;
        let facts = vec![
            a,
            leg("vda1", "vda", "U1"),
            dev("vdb", "vdb", None),
            leg("vdb1", "vdb", "U1"),
            dev("md0", "md0", None),
        ];
        let holders: BTreeMap<String, String> = [("vda1", "md0"), ("vdb1", "md0")]
            .into_iter()
            .map(|(l, h)| (l.to_string(), h.to_string()))
            .collect();
        let out = forget_own_arrays(facts, &holders);
        assert_eq!(
            out.iter()
                .filter(|f| f.md_array.as_deref() == Some("U1"))
                .count(),
            2
        );
        assert!(out.iter().any(|f| f.dev.name == "md0"));
    }
}
