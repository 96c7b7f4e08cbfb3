//! `lifeboat-init`: PID 1 of the recovery image.
//!
//! Mounts the pseudo filesystems, drives every console of the kernel command line, loads the
//! modules the hardware asks for (coldplug), finds disks, Lifeboat stores and XenServer backup
//! partitions, and restores a host's root from the "Restore from backup" menu or unattended
//! (`lifeboat.restore=...`). It never exits and never panics out: every failure is shown with
//! what to do next, and the menu, the shell and reboot stay available.

mod boot_time;
mod cmdline;
mod coldplug;
mod console;
mod copytree;
mod discover;
mod early;
mod execute;
mod kexec;
mod kmod;
mod localboot;
mod md;
mod menu;
mod mkfs;
mod mounts;
mod net;
mod power;
mod probe;
mod progress_line;
mod restore_flow;
mod store_view;
mod uevent;

use cmdline::{After, Options};
use console::say;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

/// "Firmware: UEFI, Secure boot enabled" (or disabled, or BIOS): the SecureBoot variable.
pub fn firmware_line() -> String {
    match execute::efivars_dir() {
        Ok(None) => "Firmware: BIOS (no UEFI)".to_string(),
        Ok(Some(dir)) => match lifeboat_core::identity::efivars::secure_boot(&dir) {
            Some(true) => "Firmware: UEFI, Secure boot enabled (the kernel is locked down: only signed modules load)".to_string(),
            Some(false) => "Firmware: UEFI, Secure boot disabled".to_string(),
            None => "Firmware: UEFI, Secure Boot state unknown (no SecureBoot variable)".to_string(),
        },
        Err(e) => format!("Firmware: UEFI, Secure Boot state unknown ({e:#})"),
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How long no new device may appear before the first look for backups: one poll of the
/// device events after the last module loaded, because the disks of the drivers coldplug loads
/// are there when loading them returns (`coldplug::late_disk_drivers` names those that are
/// not). The full quiet wait (`FULL_QUIET`) follows only when such a driver (or a USB or NVMe
/// bus) is there and the first look was not enough (`full_wait_needed`): a USB stick shows
/// its disk a second (usb-storage's `delay_use`) after its driver loaded.
const QUICK_QUIET: Duration = Duration::from_millis(100);
const FULL_QUIET: Duration = Duration::from_millis(1500);

/// What booting leaves for the rest: the options, the drivers' state for a second round of
/// coldplug, and the times so far.
struct Booted {
    opts: Options,
    /// When waiting for disks must end (`lifeboat.settle` after coldplug started).
    settle_until: Instant,
    db: kmod::ModuleDb,
    sock: Option<uevent::UeventSocket>,
    /// Kernel names that `lifeboat.target` names: waited for, not only for quiet.
    need: Vec<String>,
    /// Modules whose failure was already said (a second round says only new ones).
    failures_said: std::collections::BTreeSet<String>,
    times: boot_time::BootTimes,
}

/// Boot: pseudo filesystems, consoles, a first round of coldplug (until `QUICK_QUIET`).
fn boot() -> Booted {
    let mount_errors = early::mount_pseudo_filesystems();
    let kernel_secs = uptime();
    let raw_cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let opts = cmdline::parse(&raw_cmdline);
    if !raw_cmdline
        .split_whitespace()
        .any(|w| w.starts_with("loglevel=") || w == "debug")
    {
        // Kernel chatter (filesystem mounts) would break up the menu on the consoles.
        let _ = std::fs::write("/proc/sys/kernel/printk", "4 4 1 7");
    }
    let failed = console::init(&opts.consoles);
    console::set_log("/run/lifeboat/init.log");
    say(&format!("lifeboat-init {}", lifeboat_core::VERSION));
    say(&format!(
        "Kernel {}, consoles: {}",
        kernel_release(),
        console::names().join(", ")
    ));
    if std::process::id() == 1 {
        if let Err(e) = power::take_over_ctrl_alt_del() {
            say(&format!("Warning: {e:#}; Ctrl-Alt-Del reboots at once"));
        }
    }
    for e in mount_errors {
        say(&format!("Warning: {e}"));
    }
    for f in failed {
        say(&format!("Warning: cannot open console {f}"));
    }
    for u in &opts.unknown {
        say(&format!(
            "Warning: unknown or malformed kernel option {u} (ignored)"
        ));
    }

    let sock = match uevent::UeventSocket::open() {
        Ok(s) => Some(s),
        Err(e) => {
            say(&format!(
                "Warning: cannot listen for device events ({e}); polling /sys instead"
            ));
            None
        }
    };
    let moddir = PathBuf::from("/lib/modules").join(kernel_release());
    let db = kmod::ModuleDb::open(&moddir);
    if db.module_count() == 0 {
        say(&format!(
            "Warning: no modules.dep in {}: only the drivers built into the kernel are available. Rebuild the image with `lifeboat mkrescue` for this kernel.",
            moddir.display()
        ));
    }
    say("Loading drivers for the hardware and waiting for disks ...");
    let max = Duration::from_secs(opts.settle_max_secs.unwrap_or(20));
    // lifeboat.target names a device: wait for it (up to lifeboat.settle), not only for quiet.
    // (A tag or by-id name is found after discovery: `wait_for_backup`.)
    let need: Vec<String> = opts
        .target
        .iter()
        .filter(|t| !lifeboat_core::identity::devices::is_tag(t) && !t.starts_with("/dev/disk/"))
        .map(|t| t.trim_start_matches("/dev/").replace('/', "!"))
        .collect();
    let mut b = Booted {
        opts,
        settle_until: Instant::now() + max,
        db,
        sock,
        need,
        failures_said: Default::default(),
        times: boot_time::BootTimes {
            kernel_secs,
            kernel_log: boot_time::read_kernel_log(),
            ..Default::default()
        },
    };
    coldplug_round(&mut b, QUICK_QUIET);
    // After coldplug: efivarfs is a module in Debian's kernels.
    say(&firmware_line());
    b
}

/// One round of coldplug until no device or module has come for `quiet` (and the devices
/// `lifeboat.target` names are there), at most until `settle_until`; says what it found.
fn coldplug_round(b: &mut Booted, quiet: Duration) {
    let max = b.settle_until.saturating_duration_since(Instant::now());
    let s = coldplug::run(&mut b.db, b.sock.as_ref(), quiet, &b.need, max);
    b.times.coldplug += s.busy;
    b.times.settle += s.elapsed.saturating_sub(s.busy);
    let disks: Vec<&str> = s.block_devices.iter().map(String::as_str).collect();
    say(&format!(
        "{} after {:.1} s: {} modules loaded; block devices: {}",
        if s.settled {
            "Disks settled"
        } else {
            "Stopped waiting for disks"
        },
        s.elapsed.as_secs_f64(),
        s.loaded.len(),
        if disks.is_empty() {
            "none".to_string()
        } else {
            disks.join(" ")
        }
    ));
    if !s.loaded.is_empty() {
        say(&format!("Modules loaded: {}", s.loaded.join(" ")));
    }
    let mut failed: Vec<(&String, &String)> =
        b.db.failed
            .iter()
            .filter(|(m, _)| !b.failures_said.contains(*m))
            .collect();
    failed.sort();
    for (m, why) in failed {
        say(&format!("Module {m} failed to load: {why}"));
        b.failures_said.insert(m.clone());
    }
    if !s.settled {
        for n in b.need.iter().filter(|n| !s.block_devices.contains(*n)) {
            say(&format!(
                "Warning: lifeboat.target names {n}, which did not appear within lifeboat.settle={} s",
                b.opts.settle_max_secs.unwrap_or(20)
            ));
        }
    }
}

/// Whether the first look for backups, after the short quiet wait, found what this boot is
/// for, so that the full quiet wait is not needed: the menu has a backup of this machine whose
/// plan is ready (its disks are here, nothing needs consent). An unattended restore never has
/// enough (it waits the full time when a driver may show disks late): a newer backup on a
/// disk that comes late must not lose to an older one.
fn enough(d: &discover::Discovery, opts: &Options) -> bool {
    opts.restore.is_none()
        && d.backups
            .iter()
            .any(|b| matches!(&b.plan, Ok(p) if !p.needs_consent))
}

/// Whether the full quiet wait must follow the first look for backups: only when a disk
/// driver that may show disks after it loaded is there (`late`: USB, NVMe, SAS/RAID HBAs, ...;
/// the disks of every other driver were there when coldplug ended), and the first look was
/// not `enough`.
fn full_wait_needed(enough: bool, late: &[String]) -> bool {
    !enough && !late.is_empty()
}

/// The disk drivers loaded (or buses present) that may show disks late
/// (`coldplug::late_disk_drivers`, `coldplug::late_buses`).
fn late_disk_sources(b: &Booted) -> Vec<String> {
    let loaded =
        b.db.loaded
            .iter()
            .filter_map(|m| b.db.path_of(m).map(|p| (m.as_str(), p)));
    let mut late = coldplug::late_disk_drivers(loaded);
    late.extend(coldplug::late_buses(std::path::Path::new("/sys")));
    late
}

/// The first look for backups: after the short quiet wait, and again after the full one when
/// it is needed (`full_wait_needed`).
fn first_discovery(b: &mut Booted) -> discover::Discovery {
    say("Looking for backups ...");
    let t = Instant::now();
    let mut d = discover::discover(&b.opts);
    b.times.discovery += t.elapsed();
    let late = late_disk_sources(b);
    if !full_wait_needed(enough(&d, &b.opts), &late) {
        console::log_only(&format!(
            "boot: no full quiet wait ({})",
            if late.is_empty() {
                "every disk driver loaded found its disks while it loaded".to_string()
            } else {
                "this machine's backup is ready".to_string()
            }
        ));
    } else {
        console::log_only(&format!(
            "boot: waiting the full quiet time for more disks ({} may show disks late)",
            late.join(", ")
        ));
        coldplug_round(b, FULL_QUIET);
        let t = Instant::now();
        d = discover::discover(&b.opts);
        b.times.discovery += t.elapsed();
    }
    d
}

/// For an unattended restore: until `settle_until`, waits for the backup named by
/// `lifeboat.restore` and the disk it restores to (slow HBAs show their disks late), looking
/// again whenever a block device appears. Not at all when no driver that may show disks late
/// is there (`late` empty): every disk there will be is there already.
fn wait_for_backup(
    d: discover::Discovery,
    opts: &Options,
    which: &str,
    settle_until: Instant,
    late: &[String],
) -> discover::Discovery {
    let mut d = d;
    let mut blocks = coldplug::block_devices();
    let mut said = false;
    while Instant::now() < settle_until {
        let ready = menu::pick(&d, which).is_ok_and(|b| b.plan.is_ok());
        if ready {
            break;
        }
        // The rule of the full quiet wait: more disks can come only from a late driver.
        if !full_wait_needed(ready, late) {
            say(&format!(
                "lifeboat.restore={which}: the backup is not here or its plan cannot run, and every disk driver loaded found its disks while it loaded: not waiting for more disks (lifeboat.settle)."
            ));
            break;
        }
        if !said {
            said = true;
            say(&format!(
                "lifeboat.restore={which}: the backup or the disk it restores to is not here yet; waiting for more disks (lifeboat.settle) ..."
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
        let now = coldplug::block_devices();
        if now != blocks {
            blocks = now;
            d = discover::discover(opts);
        }
    }
    d
}

/// Runs the unattended restore named on the command line. Returns when the menu should follow.
fn unattended(d: &discover::Discovery, opts: &Options, which: &str) {
    let b = match menu::pick(d, which) {
        Ok(b) => b,
        Err(e) => {
            say(&format!("lifeboat.restore={which}: {e}. Showing the menu."));
            return;
        }
    };
    if let Some(request) = &opts.request {
        if already_done(b, &d.devices, request) {
            return;
        }
        if let Err(e) = b.journal_ready() {
            // Run-once is the journal's record of the request: without it, this entry (a
            // per-host PXE entry, say) would restore again at every boot, rolling the host back.
            say("");
            for l in request_refused(request, &b.place(), &e) {
                say(&l);
            }
            return;
        }
    }
    let confirm = if opts.yes {
        restore_flow::Confirm::Unattended
    } else {
        restore_flow::Confirm::Ask
    };
    match restore_flow::restore(b, d, opts, confirm) {
        Ok(msg) => {
            say(&msg);
            say("RESTORE COMPLETE");
            menu::after_restore(Some(opts.after.unwrap_or(After::Reboot)), 0);
        }
        Err(e) => {
            for l in restore_flow::failure_lines("RESTORE NOT DONE", &e) {
                say(&l);
            }
            say("The menu follows: choose the backup to try again, or the rescue shell to investigate.");
        }
    }
}

/// Why an unattended `lifeboat.request=` is not carried out from a backup whose restore
/// journal cannot be written (`why`: a repository that refuses the write), and what to do
/// instead.
fn request_refused(request: &str, place: &str, why: &anyhow::Error) -> [String; 4] {
    [
        format!("lifeboat.request={request}: NOT RESTORING UNATTENDED from {place}."),
        format!("The restore journal cannot be written: {why:#}."),
        "A request runs once because the restore journal records it as done; without it this boot entry would restore again at every boot and roll the host back each time.".into(),
        "Restore from the menu below (no journal: an interrupted restore starts again), or boot an entry without lifeboat.request= once and then remove it. Nothing was written.".into(),
    ]
}

/// An unattended request runs once: when the restore journal (a store's, a XenServer backup
/// partition's, or this machine's in the repository) records it as done, the local disk boots instead
/// (kexec of the restored root's default GRUB entry), or, when that is impossible, the machine
/// powers off with the reason; booting this image again would only come back here. Returns
/// true when the request was done (and the machine did not stop).
fn already_done(b: &discover::Backup, devs: &[probe::BlockDev], request: &str) -> bool {
    let rec = match b.journal_records() {
        Ok(r) => match lifeboat_core::store::journal::request_done(&r, request) {
            Some(rec) => rec.clone(),
            None => return false,
        },
        Err(e) => {
            say(&format!(
                "Warning: cannot tell whether lifeboat.request={request} was done already ({e:#}); restoring."
            ));
            return false;
        }
    };
    say("");
    say(&format!(
        "lifeboat.request={request} is done: {} recorded restore-done {} (of {}, onto {}). Not restoring again.",
        b.journal_place(),
        rec.time,
        rec.generation.as_deref().unwrap_or("?"),
        rec.target.as_deref().unwrap_or("?")
    ));
    say("Booting the local disk.");
    let e = match local_root(b, rec.target.as_deref(), devs) {
        Ok((root, esp)) => localboot::boot(root, esp),
        Err(e) => e,
    };
    for l in restore_flow::failure_lines("CANNOT BOOT THE LOCAL DISK", &e) {
        say(&l);
    }
    say(if std::path::Path::new("/sys/firmware/efi").exists() {
        "Powering off instead of restoring again (UEFI: boot the restored disk from the firmware's boot menu, or remove the per-host PXE entry / the recovery medium)."
    } else {
        "Powering off instead of restoring again (boot the restored disk from the BIOS boot menu, or remove the per-host PXE entry / the recovery medium)."
    });
    say(&power::reboot_now(true));
    true
}

/// The restored root (and ESP) to boot: where core's plan finds the backup's root now, else the
/// partition the journal says was restored.
fn local_root<'a>(
    b: &discover::Backup,
    recorded: Option<&str>,
    devs: &'a [probe::BlockDev],
) -> anyhow::Result<(&'a probe::BlockDev, Option<&'a probe::BlockDev>)> {
    let by_path = |p: &str| devs.iter().find(|d| d.dev_path() == p);
    let (root, esp) = match &b.plan {
        Ok(p) => (Some(p.root_device.clone()), p.esp_device.clone()),
        Err(_) => (recorded.map(str::to_string), None),
    };
    let root = root
        .as_deref()
        .and_then(by_path)
        .ok_or_else(|| anyhow::anyhow!("the restored root was not found on the disks"))?;
    Ok((root, esp.as_deref().and_then(by_path)))
}

fn run() {
    let mut b = boot();
    let opts = b.opts.clone();
    let mut first = Some(first_discovery(&mut b));
    loop {
        let is_first = first.is_some();
        let mut d = match first.take() {
            Some(d) => d,
            None => {
                say("Looking for backups ...");
                discover::discover(&opts)
            }
        };
        if is_first {
            if let Some(which) = &opts.restore {
                let t = Instant::now();
                let late = late_disk_sources(&b);
                d = wait_for_backup(d, &opts, which, b.settle_until, &late);
                b.times.waited += t.elapsed();
            }
        }
        for n in &d.notes {
            console::log_only(&format!("discovery: {n}"));
        }
        if !d.boot_disks.is_empty() {
            let bd: Vec<&str> = d.boot_disks.iter().map(String::as_str).collect();
            say(&format!(
                "Boot medium (never restored to): {}",
                bd.join(" ")
            ));
        }
        if let Some(bk) = d.backups.iter().find(|bk| bk.interrupted) {
            say("");
            say(&format!(
                "ATTENTION: a restore from the {} {} started and did not finish. The root partition is incomplete and must not be booted: restore it again.",
                match bk.kind {
                    discover::BackupKind::Lifeboat { .. } => "store on",
                    discover::BackupKind::XenTree { .. } => "XenServer backup partition on",
                    discover::BackupKind::Repo { .. } => "repository",
                },
                bk.place()
            ));
        }
        if is_first {
            say(&boot_time::line(uptime(), &b.times));
            if let Some(which) = opts.restore.clone() {
                unattended(&d, &opts, &which);
            }
        }
        menu::main_menu(&d, &opts);
    }
}

/// Last resort after an internal error: the operator can still reboot or get a shell.
fn fallback() {
    say("");
    say(
        "lifeboat-init met an internal error (see above). The disks were not changed by this error",
    );
    say("unless a restore was running, in which case restore again.");
    say(" 1) Start over   2) Rescue shell   3) Reboot   4) Power off");
    console::write("Choice: ");
    match console::read_line(None) {
        Some((l, c)) => match l.trim() {
            "2" => {
                let all = console::names();
                let name = all.get(c).cloned().unwrap_or_else(|| "console".into());
                if let Err(e) = power::run_shell(&name) {
                    say(&format!("{e:#}"));
                }
            }
            "3" => say(&power::reboot_now(false)),
            "4" => say(&power::reboot_now(true)),
            _ => {}
        },
        None => std::thread::sleep(Duration::from_secs(1)),
    }
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        console::say(&format!("lifeboat-init: internal error: {info}"));
    }));
    let mut booted = false;
    loop {
        let r = std::panic::catch_unwind(|| {
            if booted {
                // Start over from discovery after an internal error.
                let opts =
                    cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
                let d = discover::discover(&opts);
                menu::main_menu(&d, &opts);
            } else {
                run();
            }
        });
        booted = true;
        if r.is_err() {
            fallback();
        }
        if std::process::id() != 1 {
            // Not PID 1 (a developer running it by hand): do not loop forever.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_wait_is_only_for_drivers_that_show_disks_late() {
        let none: Vec<String> = Vec::new();
        let usb = vec!["usb_storage".to_string()];
        // A generic image on virtio or SATA disks: no full wait, even with no backup ready
        // (or before an unattended restore, for which `enough` is never true).
        assert!(!full_wait_needed(false, &none));
        assert!(!full_wait_needed(true, &none));
        // A USB stick may show its disk a second after usb-storage loaded.
        assert!(full_wait_needed(false, &usb));
        assert!(!full_wait_needed(true, &usb));
    }

    #[test]
    fn a_refused_request_says_why_and_what_to_do() {
        let why = anyhow::anyhow!("AccessDenied on PUT hosts/x/restores/y")
            .context("s3://b/p refused to write the restore journal hosts/x/restores/y");
        let l = request_refused("r-1", "s3://b/p", &why);
        assert_eq!(
            l[0],
            "lifeboat.request=r-1: NOT RESTORING UNATTENDED from s3://b/p."
        );
        assert!(
            l[1].contains("refused to write the restore journal") && l[1].contains("AccessDenied"),
            "{l:?}"
        );
        assert!(
            l[3].contains("no journal: an interrupted restore starts again")
                && l[3].ends_with("Nothing was written."),
            "{l:?}"
        );
    }
}
