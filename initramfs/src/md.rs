//! md RAID in the recovery image: the arrays whose legs discovery finds are assembled
//! READ-ONLY (nothing is written before verify's verdict, and a read-only array writes no
//! superblock), so that the plan restores a root on RAID1 through the array (/dev/mdN) and
//! never through one leg; the plan's steps then make an assembled array writable
//! ([`start_array`]) or create the recorded array on recreated partitions ([`create_array`]).
//! The work is done by the image's `mdadm` (copied with its libraries by `lifeboat mkrescue`)
//! and the kernel's md-mod and raid1, loaded here when a leg is found.

use crate::console::{log_only, say};
use crate::kmod::ModuleDb;
use anyhow::{anyhow, bail, Context, Result};
use lifeboat_core::archive::disk_layout::MdMember;
use lifeboat_core::identity::devices::BlockDev;
use lifeboat_core::programs::find_program;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The md personalities the image loads (md-mod comes with them as their dependency).
const MODULES: &[&str] = &["raid1"];

fn mdadm() -> Result<PathBuf> {
    find_program("mdadm").ok_or_else(|| {
        anyhow!("mdadm is not in this recovery image: rebuild it with `lifeboat mkrescue` on a system with mdadm installed (apt-get install mdadm)")
    })
}

/// Loads md-mod and raid1 (once; already loaded is fine).
fn load_modules() {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut db = ModuleDb::open(&Path::new("/lib/modules").join(release));
    for m in MODULES {
        let newly = db.load(m);
        if !newly.is_empty() {
            say(&format!("md: loaded {}", newly.join(" ")));
        }
    }
    for (m, why) in &db.failed {
        // A kernel with md built in has no module to load.
        if !Path::new("/proc/mdstat").exists() {
            say(&format!("md: cannot load {m}: {why}"));
        }
    }
}

/// Runs mdadm; its output goes to the log, and its last lines into the error.
fn run_mdadm(args: &[String]) -> Result<String> {
    let prog = mdadm()?;
    say(&format!("Running mdadm {}", args.join(" ")));
    let out = Command::new(&prog)
        .args(args)
        .env("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
        .output()
        .with_context(|| format!("cannot run {}", prog.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    log_only(&text);
    if out.status.success() {
        Ok(text)
    } else {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        bail!(
            "mdadm {} failed (exit {}): {}",
            args.first().map(String::as_str).unwrap_or(""),
            out.status.code().unwrap_or(-1),
            lines[lines.len().saturating_sub(4)..].join(" / ")
        )
    }
}

/// The arrays (by array UUID) whose legs are among `devs`: each leg's path and superblock.
fn legs_by_array(devs: &[BlockDev]) -> BTreeMap<String, Vec<(String, MdMember)>> {
    let mut out: BTreeMap<String, Vec<(String, MdMember)>> = BTreeMap::new();
    for d in devs {
        let path = d.dev_path();
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        if let Ok(Some(m)) = lifeboat_core::identity::md::probe(&f) {
            out.entry(m.array_uuid.clone()).or_default().push((path, m));
        }
    }
    out
}

/// True when a device is already held by an assembled array (`holders/` in sysfs).
fn held(path: &str) -> bool {
    let name = path.trim_start_matches("/dev/");
    std::fs::read_dir(Path::new("/sys/class/block").join(name).join("holders"))
        .map(|mut rd| rd.next().is_some())
        .unwrap_or(false)
}

/// The first /dev/mdN the kernel does not have yet.
fn free_md() -> String {
    let n = (0u32..)
        .find(|n| !Path::new(&format!("/sys/block/md{n}")).exists())
        .unwrap_or(0);
    format!("/dev/md{n}")
}

/// Assembles, read-only, every array with legs among `devs` that is not assembled yet; says
/// which, from which legs, and when it is degraded. Returns true when an array was assembled
/// (the caller scans the devices again).
pub fn assemble_found(devs: &[BlockDev]) -> bool {
    let arrays = legs_by_array(devs);
    if arrays.is_empty() {
        return false;
    }
    load_modules();
    let mut any = false;
    for (uuid, legs) in arrays {
        let free: Vec<&(String, MdMember)> = legs.iter().filter(|(p, _)| !held(p)).collect();
        if free.len() < legs.len() {
            continue; // assembled already (an earlier discovery)
        }
        let first = &legs[0].1;
        let dev = free_md();
        let paths: Vec<String> = legs.iter().map(|(p, _)| p.clone()).collect();
        let mut args = vec![
            "--assemble".to_string(),
            dev.clone(),
            "--readonly".into(),
            "--run".into(),
            format!("--uuid={uuid}"),
        ];
        args.extend(paths.iter().cloned());
        match run_mdadm(&args) {
            Ok(_) => {
                any = true;
                let degraded = (paths.len() as u32) < first.raid_disks;
                say(&format!(
                    "md: array {uuid} ({}, metadata {}{}) assembled read-only as {dev} from {}{}",
                    first.level,
                    first.metadata,
                    first
                        .name
                        .as_deref()
                        .map(|n| format!(", name {n}"))
                        .unwrap_or_default(),
                    paths.join(", "),
                    if degraded {
                        format!(
                            ": DEGRADED, {} of its {} legs found",
                            paths.len(),
                            first.raid_disks
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            Err(e) => say(&format!(
                "md: cannot assemble the array {uuid} from {}: {e:#}",
                paths.join(", ")
            )),
        }
    }
    any
}

/// The plan's StartMdArray: the array discovery assembled read-only becomes writable.
pub fn start_array(dev: &str, legs: &[String], degraded: bool) -> Result<()> {
    if degraded {
        say(&format!(
            "  {dev} is DEGRADED (legs found: {}): the root is restored through it; add the missing leg back with mdadm --add once the host runs",
            legs.join(", ")
        ));
    }
    run_mdadm(&["--readwrite".into(), dev.into()])
        .with_context(|| format!("cannot make the md array {dev} writable"))?;
    Ok(())
}

/// The plan's CreateMdArray: the recorded array on the recreated partitions (`members` by
/// role, "missing" for an absent one), then waits for md to copy leg 0 onto the others, so
/// that the restored array is clean. Repeatable: an array this step made before on the same
/// device is stopped and created again.
pub fn create_array(
    dev: &str,
    array_uuid: &str,
    name: Option<&str>,
    level: &str,
    metadata: &str,
    members: &[String],
) -> Result<()> {
    load_modules();
    let sys = Path::new("/sys/block")
        .join(dev.trim_start_matches("/dev/"))
        .join("md/array_state");
    if std::fs::read_to_string(&sys).is_ok_and(|s| s.trim() != "clear") {
        run_mdadm(&["--stop".into(), dev.into()])
            .with_context(|| format!("{dev} is active and cannot be stopped to create it again"))?;
    }
    let mut args = vec![
        "--create".to_string(),
        dev.into(),
        "--run".into(),
        format!("--metadata={metadata}"),
        format!("--level={level}"),
        format!("--raid-devices={}", members.len()),
        format!("--uuid={array_uuid}"),
    ];
    if let Some(n) = name {
        args.push(format!("--name={n}"));
    }
    args.extend(members.iter().cloned());
    run_mdadm(&args).with_context(|| {
        format!(
            "cannot create the md array {array_uuid} on {}",
            members.join(", ")
        )
    })?;
    say(&format!(
        "  {dev}: waiting for md to copy the first leg onto the others (a full sync: blank disks are not zeroed, so --assume-clean would leave legs that differ) ..."
    ));
    // --wait exits 1 when there was nothing to wait for.
    let _ = run_mdadm(&["--wait".into(), dev.into()]);
    if let Ok(s) = std::fs::read_to_string("/proc/mdstat") {
        for l in s.lines().filter(|l| !l.trim().is_empty()) {
            say(&format!("  mdstat: {l}"));
        }
    }
    Ok(())
}
