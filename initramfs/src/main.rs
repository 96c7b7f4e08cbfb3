//! `lifeboat-init`: PID 1 of the recovery image.
//!
//! Mounts the pseudo filesystems, drives every console of the kernel command line, loads the
//! modules the hardware asks for (coldplug), finds disks, Lifeboat stores and XenServer backup
//! partitions, and restores a host's root from the "Restore from backup" menu or unattended
//! (`lifeboat.restore=...`). It never exits and never panics out: every failure is shown with
//! what to do next, and the menu, the shell and reboot stay available.

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

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Boot: pseudo filesystems, consoles, coldplug. Returns the options of the command line and
/// when waiting for disks must end (`lifeboat.settle` after coldplug started).
fn boot() -> (Options, Instant) {
    let mount_errors = early::mount_pseudo_filesystems();
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
    let mut db = kmod::ModuleDb::open(&moddir);
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
    let s = coldplug::run(
        &mut db,
        sock.as_ref(),
        Duration::from_millis(1500),
        &need,
        max,
    );
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
    let mut failed: Vec<(&String, &String)> = db.failed.iter().collect();
    failed.sort();
    for (m, why) in failed {
        say(&format!("Module {m} failed to load: {why}"));
    }
    for n in need.iter().filter(|n| !s.block_devices.contains(*n)) {
        say(&format!(
            "Warning: lifeboat.target names {n}, which did not appear within lifeboat.settle={} s",
            max.as_secs()
        ));
    }
    (opts, Instant::now() + max.saturating_sub(s.elapsed))
}

/// For an unattended restore: until `settle_until`, waits for the backup named by
/// `lifeboat.restore` and the disk it restores to (slow HBAs show their disks late), looking
/// again whenever a block device appears.
fn wait_for_backup(
    d: discover::Discovery,
    opts: &Options,
    which: &str,
    settle_until: Instant,
) -> discover::Discovery {
    let mut d = d;
    let mut blocks = coldplug::block_devices();
    let mut said = false;
    while Instant::now() < settle_until {
        if menu::pick(&d, which).is_ok_and(|b| b.plan.is_ok()) {
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

/// An unattended request runs once: when the store's journal records it as done, the local
/// disk boots instead (kexec of the restored root's default GRUB entry), or, when that is
/// impossible, the machine powers off with the reason; booting this image again would only
/// come back here. Returns true when the request was done (and the machine did not stop).
fn already_done(b: &discover::Backup, devs: &[probe::BlockDev], request: &str) -> bool {
    let discover::BackupKind::Lifeboat { .. } = &b.kind else {
        return false;
    };
    let rec = match store_view::request_done_in(&b.mount, request) {
        Ok(Some(rec)) => rec,
        Ok(None) => return false,
        Err(e) => {
            say(&format!(
                "Warning: cannot tell whether lifeboat.request={request} was done already ({e:#}); restoring."
            ));
            return false;
        }
    };
    say("");
    say(&format!(
        "lifeboat.request={request} is done: the store on {} recorded restore-done {} (generation {}, onto {}). Not restoring again.",
        b.device.dev_path(),
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
    let (opts, settle_until) = boot();
    let mut first = true;
    loop {
        say("Looking for backups ...");
        let mut d = discover::discover(&opts);
        if first {
            if let Some(which) = &opts.restore {
                d = wait_for_backup(d, &opts, which, settle_until);
            }
        }
        for n in &d.notes {
            console::log_only(&format!("discovery: {n}"));
        }
        if !d.boot_disks.is_empty() {
            let b: Vec<&str> = d.boot_disks.iter().map(String::as_str).collect();
            say(&format!("Boot medium (never restored to): {}", b.join(" ")));
        }
        if let Some(b) = d.backups.iter().find(|b| b.interrupted) {
            say("");
            say(&format!(
                "ATTENTION: a restore from the store on {} started and did not finish. The root partition is incomplete and must not be booted: restore it again.",
                b.device.dev_path()
            ));
        }
        if first {
            first = false;
            say(&format!(
                "Menu ready {:.1} s after the kernel started.",
                uptime()
            ));
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
