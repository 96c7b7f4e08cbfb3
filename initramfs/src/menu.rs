//! The "Restore from backup" menu: numbered choices, usable on a dumb serial console and VGA.

use crate::cmdline::{After, Options};
use crate::console::{flush_input, names, read_line, say};
use crate::discover::{Backup, BackupKind, Discovery};
use crate::execute;
use crate::power;
use crate::restore_flow::{self, describe_dev, describe_disk, Confirm};
use anyhow::anyhow;
use lifeboat_core::identity::machine;
use lifeboat_core::plan::latest::{is_this_host, ThisHostMatch};
use lifeboat_core::plan::{Dated, LatestError, ThisHost};
use lifeboat_core::progress::human_bytes;

fn ruler() {
    say("==========================================================================");
}

fn show_backup_line(i: usize, b: &Backup, d: &Discovery) {
    let gen = b
        .generation()
        .map(|g| format!(", generation {g}"))
        .unwrap_or_default();
    say(&format!(
        " {}) {} | {} | product {} | {}{}",
        i + 1,
        b.host,
        b.time,
        b.product_version,
        human_bytes(b.size),
        gen
    ));
    say(&format!("      {} on {}", b.kind_name(), b.place()));
    match &b.plan {
        Ok(p) => {
            say(&format!("      will overwrite {}", execute::summary(p)));
            say(&format!(
                "      on {}",
                describe_disk(&d.devices, &p.target_disk.kernel_name)
            ));
        }
        Err(e) => say(&format!("      cannot be restored as is: {e}")),
    }
    if b.interrupted {
        say(
            "      !! a restore from this backup started and did not finish: the root is incomplete",
        );
    }
}

/// Reads a numbered choice in 1..=max; None on anything else.
fn choose(max: usize) -> Option<(usize, usize)> {
    crate::console::write("Choice: ");
    let (line, console) = read_line(None)?;
    let n: usize = line.trim().parse().ok()?;
    (1..=max).contains(&n).then_some((n, console))
}

fn details(b: &Backup, d: &Discovery) {
    ruler();
    say(&format!(
        "Details of the {} backup on {}",
        b.kind_name(),
        b.place()
    ));
    say(&format!(
        "  host: {}   taken: {}   size: {}",
        b.host,
        b.time,
        human_bytes(b.size)
    ));
    match &b.kind {
        BackupKind::Lifeboat { manifest, .. } | BackupKind::Repo { manifest, .. } => {
            match &b.kind {
                BackupKind::Lifeboat {
                    generation,
                    archive,
                    ..
                } => say(&format!(
                    "  generation: {generation}   archive: {}",
                    archive.display()
                )),
                BackupKind::Repo {
                    generation,
                    session,
                    ..
                } => say(&format!(
                    "  generation: {generation}   repository: {} (host id {})",
                    session.url, session.host_id
                )),
                BackupKind::XenTree { .. } => {}
            }
            say(&format!(
                "  tool version: {}   codec: {}",
                manifest.tool_version, manifest.codec
            ));
            let m = &manifest.machine;
            say(&format!(
                "  machine: {} {} uuid {} serial {}",
                m.sys_vendor.as_deref().unwrap_or("-"),
                m.product_name.as_deref().unwrap_or("-"),
                m.product_uuid.as_deref().unwrap_or("-"),
                m.product_serial.as_deref().unwrap_or("-")
            ));
            let s = &manifest.source;
            say(&format!(
                "  root: {} uuid {} label {} partuuid {}",
                s.filesystem.fstype,
                s.filesystem.uuid.as_deref().unwrap_or("-"),
                s.filesystem.label.as_deref().unwrap_or("-"),
                s.partition.partuuid.as_deref().unwrap_or("-")
            ));
            say(&format!(
                "  disk: model {} serial {} size {}",
                s.disk.model.as_deref().unwrap_or("-"),
                s.disk.serial.as_deref().unwrap_or("-"),
                human_bytes(s.disk.size_bytes)
            ));
            if let Some(e) = &s.esp {
                say(&format!(
                    "  ESP: vfat id {} label {}",
                    e.uuid.as_deref().unwrap_or("-"),
                    e.label.as_deref().unwrap_or("-")
                ));
            }
            for (k, v) in &manifest.inventory {
                say(&format!("  {k}={v}"));
            }
        }
        BackupKind::XenTree { inventory } => {
            for (k, v) in inventory {
                say(&format!("  {k}={v}"));
            }
        }
    }
    match &b.plan {
        Ok(p) => {
            say(&format!(
                "  {}",
                describe_disk(&d.devices, &p.target_disk.kernel_name)
            ));
            for l in lifeboat_core::plan::render(p) {
                say(&format!("  {l}"));
            }
        }
        Err(e) => say(&format!("  refused: {e}")),
    }
    ruler();
}

/// What to do after a successful restore.
pub fn after_restore(after: Option<After>, console: usize) {
    let choice = match after {
        Some(a) => a,
        None => {
            say("Restore finished. 1) Reboot  2) Power off  3) Back to the menu  4) Rescue shell");
            match choose(4) {
                Some((1, _)) => After::Reboot,
                Some((2, _)) => After::Poweroff,
                Some((4, _)) => After::Shell,
                _ => After::Menu,
            }
        }
    };
    match choice {
        After::Reboot => say(&power::reboot_now(false)),
        After::Poweroff => say(&power::reboot_now(true)),
        After::Shell => shell(console),
        After::Menu => {}
    }
}

fn shell(console: usize) {
    let all = names();
    let name = all
        .get(console)
        .or_else(|| all.last())
        .cloned()
        .unwrap_or_else(|| "console".into());
    if let Err(e) = power::run_shell(&name) {
        say(&format!("Rescue shell: {e:#}"));
    }
}

fn backup_menu(b: &Backup, d: &Discovery, opts: &Options) {
    loop {
        say("");
        say(&format!(
            "Backup of {} taken {} ({})",
            b.host,
            b.time,
            b.kind_name()
        ));
        say(" 1) Restore");
        say(" 2) Verify only");
        say(" 3) Details");
        say(" 4) Back");
        let Some((n, console)) = choose(4) else {
            continue;
        };
        match n {
            1 => match restore_flow::restore(b, d, opts, Confirm::Ask) {
                Ok(msg) => {
                    say(&msg);
                    after_restore(opts.after, console);
                    return;
                }
                Err(e) => {
                    for l in restore_flow::failure_lines("RESTORE NOT DONE", &e) {
                        say(&l);
                    }
                }
            },
            2 => match restore_flow::verify(
                b,
                &mut lifeboat_core::archive::verify::SmallFiles::new(&[]),
            ) {
                Ok(s) => say(&format!("Verify OK: {s}")),
                Err(e) => {
                    for l in restore_flow::failure_lines("VERIFY FAILED", &e) {
                        say(&l);
                    }
                }
            },
            3 => details(b, d),
            _ => return,
        }
    }
}

/// What the image lacks for "Restore from network" when no repository is configured.
pub const NO_REPOSITORY: &str = "No repository is configured in this image. Build the boot media with `lifeboat mkrescue --repo-config lifeboat.toml --repo-identity FILE [--repo-credentials FILE] [--repo-fleet-key FILE] [--repo-ca FILE] --pxe DIR | --iso FILE`: every boot entry then loads repo.img with the repository's address and keys. Or boot with lifeboat.repo=URL.";

/// "Restore from network": brings the network up (again, if it failed), opens the repository
/// with the image's identity, or a key file found on a USB stick or another disk when the
/// image has none or on request (asking for the identity's passphrase when it has one), lists
/// this machine's generations (and other hosts' on request) and hands the one chosen to the
/// same menu and restore as a backup found on a disk.
fn restore_from_network(d: &Discovery, opts: &Options) {
    use crate::net::{self, repo};
    say("");
    ruler();
    say("  Restore from network");
    ruler();
    if !repo::wanted(opts.repo.as_deref()) {
        say(NO_REPOSITORY);
        return;
    }
    let src = match repo::source(std::path::Path::new(repo::DIR), opts.repo.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("REPOSITORY NOT READ: {e:#}"));
            return;
        }
    };
    let image_key = src.identity.exists();
    if !image_key {
        say(&format!(
            "This image carries no repository identity ({} is missing).",
            src.identity.display()
        ));
    }
    let mut key_file = !image_key;
    loop {
        let key = if key_file {
            match choose_key_file() {
                Some(k) => Some(k),
                None => return,
            }
        } else {
            None
        };
        let iface = match net::ensure_up(opts.ip.as_deref(), true) {
            Ok(c) => c.iface,
            Err(_) => {
                say("Check the cable and the DHCP server (or boot with lifeboat.ip=ADDR/PREFIX:GATEWAY:DNS), then choose \"Restore from network\" again.");
                return;
            }
        };
        let session = match &key {
            Some(k) => crate::net::identity::open(&k.place(), &k.data)
                .and_then(|id| repo::open_with(&src, id, &k.place())),
            None => repo::open(&src),
        };
        drop(key);
        let mut notes = Vec::new();
        let found = session.and_then(|s| {
            crate::discover::session_generations(
                std::sync::Arc::new(s.with_machine(Some(&iface))),
                &mut notes,
            )
        });
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                say(&format!("REPOSITORY NOT READ: {e:#}"));
                return;
            }
        };
        for n in &notes {
            say(&format!("note: {n}"));
        }
        let backups = d.planned(found, opts);
        if backups.is_empty() {
            say(&format!(
                "The repository {} has no generation that this identity can restore.",
                src.url
            ));
        }
        match network_menu(&backups, &src.url, d, opts) {
            Next::Back => return,
            Next::KeyFile => key_file = true,
        }
    }
}

/// What the operator chose in the listing of a repository.
enum Next {
    Back,
    /// Look for a key file on a USB stick and list again with it.
    KeyFile,
}

/// Looks for age identities on the filesystems of USB sticks, the boot medium and other disks
/// and lets the operator choose one; None when there is none or the operator goes back.
fn choose_key_file() -> Option<crate::net::keyfile::KeyFile> {
    use crate::net::keyfile;
    say("Looking for a key file (lifeboat/identity.txt, lifeboat-identity.txt, or a *.txt or *.age file holding an age identity) on USB sticks, the boot medium and other disks, mounted read-only ...");
    let mut found = keyfile::search(|m| crate::console::log_only(&format!("key file search: {m}")));
    match found.len() {
        0 => {
            say("No key file was found. Insert a USB stick holding the repository's recovery key (or a host's identity) as lifeboat/identity.txt, wait a few seconds, then choose \"Restore from network\" again.");
            None
        }
        1 => {
            let k = found.pop()?;
            say(&format!("Key file: {} ({})", k.place(), k.describe_kind()));
            Some(k)
        }
        n => loop {
            say("Key files found:");
            for (i, k) in found.iter().enumerate() {
                say(&format!(
                    " {}) {} ({})",
                    i + 1,
                    k.place(),
                    k.describe_kind()
                ));
            }
            say(&format!(" {}) Back", n + 1));
            say(&format!("Choose a key file (1-{n}) or Back:"));
            flush_input();
            let Some((c, _)) = choose(n + 1) else {
                say("Please type one of the numbers above and press Enter.");
                continue;
            };
            if c > n {
                return None;
            }
            let k = found.swap_remove(c - 1);
            say(&format!("Key file: {} ({})", k.place(), k.describe_kind()));
            return Some(k);
        },
    }
}

/// The generations of a repository: this machine's first, "Other hosts' generations" on
/// request, and a key file from a USB stick instead of the identity used.
fn network_menu(backups: &[Backup], url: &str, d: &Discovery, opts: &Options) -> Next {
    let this = this_machine();
    let fleet = crate::discover::fleet(backups, &this);
    loop {
        say("");
        say(&format!(
            "This machine's generations in {url} ({}):",
            describe_machine(&this)
        ));
        if fleet.this.is_empty() {
            say("   none: no generation recorded this machine (DMI UUID, serial number or MAC address)");
        }
        for (i, (b, why)) in fleet.this.iter().enumerate() {
            show_backup_line(i, b, d);
            say(&format!("      {}", whose(b, why.as_ref())));
        }
        let mut n = fleet.this.len();
        let others = (!fleet.others.is_empty()).then(|| {
            n += 1;
            say(&format!(
                " {n}) Other hosts' generations ({} host{})",
                fleet.others.len(),
                if fleet.others.len() == 1 { "" } else { "s" }
            ));
            n
        });
        let key_file = n + 1;
        say(&format!(" {key_file}) Use a key file from a USB stick"));
        let back = n + 2;
        say(&format!(" {back}) Back"));
        if fleet.this.is_empty() {
            say("Choose an action:");
        } else {
            say(&format!(
                "Choose a generation (1-{}) or an action:",
                fleet.this.len()
            ));
        }
        flush_input();
        let Some((c, _)) = choose(back) else {
            say("Please type one of the numbers above and press Enter.");
            continue;
        };
        if let Some((b, _)) = fleet.this.get(c - 1) {
            backup_menu(b, d, opts);
        } else if Some(c) == others {
            other_hosts(&fleet.others, url, d, opts);
        } else if c == key_file {
            return Next::KeyFile;
        } else {
            return Next::Back;
        }
    }
}

/// The running machine as core's "this host" rule sees it in the image: its DMI identity and
/// NICs (the image's host name names no installed host).
fn this_machine() -> ThisHost {
    ThisHost {
        machine: machine::machine_identity(),
        hostname: String::new(),
    }
}

/// "DMI UUID 7a0c..., serial ..." for the console.
fn describe_machine(this: &ThisHost) -> String {
    let m = &this.machine;
    let mut parts = Vec::new();
    if let Some(u) = &m.product_uuid {
        parts.push(format!("DMI UUID {u}"));
    }
    if let Some(s) = &m.product_serial {
        parts.push(format!("serial {s}"));
    }
    if parts.is_empty() {
        parts.push("no DMI UUID or serial number".into());
    }
    parts.join(", ")
}

/// Whose a repository generation is and why it counts as this machine's ("host 'xs1' (id
/// ...): DMI UUID matches").
fn whose(b: &Backup, why: Option<&ThisHostMatch>) -> String {
    let id = b.repo_host().map(|(h, _)| h).unwrap_or("-");
    let why = match why {
        Some(w) => w.to_string(),
        None => match &b.plan {
            Ok(p) if !p.identity_mismatches.is_empty() => format!(
                "recorded on another machine ({}): restoring asks first",
                p.identity_mismatches.join("; ")
            ),
            _ => "the image identity's host; its recorded machine cannot be compared with this one"
                .to_string(),
        },
    };
    format!("host '{}' (id {id}): {why}", b.host)
}

/// "Other hosts' generations": the hosts, then the chosen host's generations. Restoring one
/// goes through the plan's consent for another machine's backup.
fn other_hosts(
    others: &[crate::discover::OtherHost<
        Result<lifeboat_core::plan::Plan, lifeboat_core::plan::PlanError>,
    >],
    url: &str,
    d: &Discovery,
    opts: &Options,
) {
    loop {
        say("");
        say(&format!(
            "Other hosts in {url} (not taken on this machine):"
        ));
        let now = lifeboat_core::clock::unix_now();
        for (i, h) in others.iter().enumerate() {
            let latest = h
                .generations
                .first()
                .and_then(|b| b.generation())
                .unwrap_or("-");
            let age = lifeboat_repo::prune::unix_of_id(latest)
                .map(|t| format!("{} ago", lifeboat_core::clock::age_text((now - t).max(0))))
                .unwrap_or_else(|| "age unknown".into());
            say(&format!(
                " {}) {} (id {}) | latest generation {latest}, {age} | {} generation{}",
                i + 1,
                h.name(),
                h.host_id,
                h.generations.len(),
                if h.generations.len() == 1 { "" } else { "s" }
            ));
        }
        let back = others.len() + 1;
        say(&format!(" {back}) Back"));
        say(&format!("Choose a host (1-{}) or Back:", others.len()));
        flush_input();
        let Some((c, _)) = choose(back) else {
            say("Please type one of the numbers above and press Enter.");
            continue;
        };
        let Some(h) = others.get(c - 1) else {
            return;
        };
        loop {
            say("");
            say(&format!(
                "Generations of host '{}' (id {}) in {url} (another machine: restoring one asks first):",
                h.name(),
                h.host_id
            ));
            for (i, b) in h.generations.iter().enumerate() {
                show_backup_line(i, b, d);
            }
            let back = h.generations.len() + 1;
            say(&format!(" {back}) Back"));
            say(&format!(
                "Choose a generation (1-{}) or Back:",
                h.generations.len()
            ));
            flush_input();
            let Some((c, _)) = choose(back) else {
                say("Please type one of the numbers above and press Enter.");
                continue;
            };
            match h.generations.get(c - 1) {
                Some(b) => backup_menu(b, d, opts),
                None => break,
            }
        }
    }
}

/// The main menu; returns when the operator asks to rescan the disks.
pub fn main_menu(d: &Discovery, opts: &Options) {
    loop {
        say("");
        ruler();
        say("  Restore from backup");
        ruler();
        if d.backups.is_empty() {
            say(" No backups were found. Disks and partitions seen:");
            for dev in &d.devices {
                say(&format!("   {}", describe_dev(dev)));
            }
            for n in &d.notes {
                say(&format!("   note: {n}"));
            }
        }
        for (i, b) in d.backups.iter().enumerate() {
            show_backup_line(i, b, d);
        }
        let n = d.backups.len();
        let has_shell = power::shell_path().is_some();
        say("");
        let mut actions: Vec<(&str, u8)> = vec![("Restore from network", b'n')];
        if has_shell {
            actions.push(("Rescue shell", b's'));
        }
        actions.push(("Rescan disks", b'd'));
        actions.push(("Reboot", b'r'));
        actions.push(("Power off", b'p'));
        for (k, (label, _)) in actions.iter().enumerate() {
            say(&format!(" {}) {label}", n + k + 1));
        }
        if n > 0 {
            say(&format!("Choose a backup (1-{n}) or an action:"));
        }
        flush_input();
        let Some((c, console)) = choose(n + actions.len()) else {
            say("Please type one of the numbers above and press Enter.");
            continue;
        };
        if c <= n {
            if let Some(b) = d.backups.get(c - 1) {
                backup_menu(b, d, opts);
            }
            continue;
        }
        match actions.get(c - n - 1).map(|a| a.1) {
            Some(b'n') => restore_from_network(d, opts),
            Some(b's') => shell(console),
            Some(b'd') => return,
            Some(b'r') => say(&power::reboot_now(false)),
            Some(b'p') => say(&power::reboot_now(true)),
            _ => {}
        }
    }
}

/// True when the backup and this machine both report a product UUID, or both a serial, that
/// is not a firmware placeholder (`lifeboat_core::identity::machine::meaningful`): then core's
/// rule decides whose backup it is. Otherwise (firmware without DMI identity or with
/// placeholders only, a staged `xe host-backup` that records none) the image cannot tell, and
/// a store on a fixed disk of this machine counts as this machine's.
fn comparable(b: &Backup, this: &ThisHost) -> bool {
    let here = machine::meaningful(&this.machine);
    b.machine().map(machine::meaningful).is_some_and(|m| {
        (m.product_uuid.is_some() && here.product_uuid.is_some())
            || (m.product_serial.is_some() && here.product_serial.is_some())
    })
}

/// Picks the backup `lifeboat.restore=` names: a generation id, `xen` (the XenServer backup
/// partition), or `latest`: core's one rule (`lifeboat_core::plan::latest`), the newest backup
/// of this machine by the time it was taken (where neither side has a DMI identity to compare:
/// see [`comparable`]). Other machines' backups are restored only when named by id. With no Lifeboat generation at all,
/// `latest` is the XenServer backup partition.
pub fn pick<'a>(d: &'a Discovery, which: &str) -> anyhow::Result<&'a Backup> {
    pick_for(d, which, &this_machine())
}

/// [`pick`] for the machine `this`.
pub fn pick_for<'a>(d: &'a Discovery, which: &str, this: &ThisHost) -> anyhow::Result<&'a Backup> {
    match which {
        "latest" | "" => {
            let lifeboat: Vec<&Backup> = d
                .backups
                .iter()
                .filter(|b| {
                    matches!(
                        b.kind,
                        BackupKind::Lifeboat { .. } | BackupKind::Repo { .. }
                    )
                })
                .collect();
            if lifeboat.is_empty() {
                return d.backups.first().ok_or_else(|| anyhow!(LatestError::None));
            }
            lifeboat
                .iter()
                .filter(|b| {
                    is_this_host(**b, this)
                        // Another host's generation (a recovery key lists every host's):
                        // only when its recorded machine is this one, never a guess.
                        || (!comparable(b, this)
                            && !b.device.removable
                            && b.repo_host().is_none_or(|(_, own)| own))
                })
                .fold(None::<&Backup>, |best, b| match best {
                    Some(x) if b.time <= x.time => Some(x),
                    _ => Some(*b),
                })
                .ok_or_else(|| {
                    anyhow!(LatestError::OtherHostsOnly {
                        this: format!(
                            "machine UUID {}",
                            machine::meaningful_value(this.machine.product_uuid.as_deref())
                                .unwrap_or("unknown")
                        ),
                        others: lifeboat.iter().map(|b| b.label()).collect(),
                    })
                })
        }
        "xen" | "xenserver" => d
            .backups
            .iter()
            .find(|b| matches!(b.kind, BackupKind::XenTree { .. }))
            .ok_or_else(|| anyhow!("no XenServer backup partition was found")),
        g => d
            .backups
            .iter()
            .find(|b| b.generation() == Some(g))
            .ok_or_else(|| anyhow!("no generation {g} was found on the disks")),
    }
}
