//! `lifeboat status [--json] [--check [--warn-age AGE --crit-age AGE]]`: the last good backup
//! (from the store: the newest generation `backup` made, its meta.json), the last backup run
//! and verification (from the state file, [`crate::metrics`]).
//!
//! `--check` prints one line as monitoring plugins do (`LIFEBOAT OK - text | perfdata`) and
//! exits 0 OK, 1 WARNING (the last good backup is older than the warning age, or the last
//! backup run failed), 2 CRITICAL (older than the critical age, no backup at all, or the last
//! verification found damage), 3 UNKNOWN (the store or the state cannot be read).

use super::common::open_store;
use crate::cli::StatusArgs;
use crate::config;
use crate::metrics::{self, State};
use anyhow::{bail, Context, Result};
use lifeboat_core::progress::human_bytes;
use lifeboat_core::store::Origin;
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_WARN: &str = "26h";
const DEFAULT_CRIT: &str = "50h";

/// Plugin exit statuses.
const OK: u8 = 0;
const WARNING: u8 = 1;
const CRITICAL: u8 = 2;
const UNKNOWN: u8 = 3;

/// The newest generation `lifeboat backup` committed.
#[derive(Debug, Serialize)]
struct LastGood {
    generation: String,
    created: String,
    /// Seconds since it was taken.
    age_seconds: i64,
    state: String,
    size: u64,
    bytes: u64,
    files: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    device: String,
    generations: usize,
    stored_bytes: u64,
    last_good_backup: Option<LastGood>,
    state_file: String,
    #[serde(flatten)]
    state: State,
}

fn gather(args: &StatusArgs) -> Result<Report> {
    let cfg = config::load()?;
    let state_path = metrics::state_path(&cfg);
    let state = metrics::load_state(&state_path)?;
    let store = open_store(args.device.backup_device.as_deref())?;
    let gens = store.store.generations()?;
    let now = metrics::now();
    let last_good = match gens.iter().rev().find(|g| g.meta.origin == Origin::Backup) {
        Some(g) => {
            let taken = humantime::parse_rfc3339(&g.meta.created)
                .with_context(|| {
                    format!(
                        "generation {} records its time as '{}', not an RFC 3339 UTC time",
                        g.id, g.meta.created
                    )
                })?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Some(LastGood {
                generation: g.id.clone(),
                created: g.meta.created.clone(),
                age_seconds: now - taken,
                state: g.meta.state.name().to_string(),
                size: g.meta.size,
                bytes: g.meta.bytes,
                files: g.meta.files,
            })
        }
        None => None,
    };
    Ok(Report {
        device: store.device.clone(),
        generations: gens.len(),
        stored_bytes: gens.iter().map(|g| g.meta.size).sum(),
        last_good_backup: last_good,
        state_file: state_path.display().to_string(),
        state,
    })
}

pub fn run(args: StatusArgs, _quiet: bool) -> Result<ExitCode> {
    if args.check {
        let (code, line) = match check(&args) {
            Ok(r) => r,
            Err(e) => (UNKNOWN, format!("LIFEBOAT UNKNOWN - {e:#}")),
        };
        println!("{line}");
        return Ok(ExitCode::from(code));
    }
    let report = gather(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn age(secs: i64) -> String {
    let secs = secs.max(0) as u64;
    // Minutes are enough for a person.
    humantime::format_duration(Duration::from_secs(secs - secs % 60)).to_string()
}

fn when(t: i64) -> String {
    let now = metrics::now();
    format!(
        "{} ({} ago)",
        lifeboat_core::clock::UtcTime::from_unix(t).rfc3339(),
        age(now - t)
    )
}

fn print(r: &Report) {
    println!(
        "Backup partition {}: {} generation(s), {}",
        r.device,
        r.generations,
        human_bytes(r.stored_bytes)
    );
    match &r.last_good_backup {
        Some(g) => println!(
            "Last good backup:  {} taken {}, {} ago: {}, {} files, {} in {}",
            g.generation,
            g.created,
            age(g.age_seconds),
            g.state,
            g.files,
            human_bytes(g.bytes),
            human_bytes(g.size)
        ),
        None => println!("Last good backup:  none: run `lifeboat backup`"),
    }
    match &r.state.last_backup_run {
        Some(run) => println!(
            "Last backup run:   {}, {:.0} s, exit status {}{}",
            when(run.finished),
            run.seconds,
            run.exit_status,
            if run.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", run.detail)
            }
        ),
        None => println!("Last backup run:   none recorded in {}", r.state_file),
    }
    match &r.state.last_verify {
        Some(v) => println!(
            "Last verification: {}, {}: {}",
            when(v.finished),
            if v.exit_status == 0 {
                "sound"
            } else {
                "FAILED"
            },
            v.detail
        ),
        None => println!("Last verification: none recorded in {}", r.state_file),
    }
}

fn parse_age(text: &str, what: &str) -> Result<i64> {
    let d = humantime::parse_duration(text).with_context(|| {
        format!("{what} '{text}' is not an age: write it as 26h, 2d, 90min or 3600s")
    })?;
    Ok(d.as_secs() as i64)
}

/// The verdict and the plugin's line.
fn check(args: &StatusArgs) -> Result<(u8, String)> {
    let cfg = config::load()?;
    let warn_text = args
        .warn_age
        .clone()
        .or(cfg.warn_age)
        .unwrap_or_else(|| DEFAULT_WARN.into());
    let crit_text = args
        .crit_age
        .clone()
        .or(cfg.crit_age)
        .unwrap_or_else(|| DEFAULT_CRIT.into());
    let warn = parse_age(&warn_text, "--warn-age")?;
    let crit = parse_age(&crit_text, "--crit-age")?;
    if crit < warn {
        bail!("--crit-age {crit_text} is shorter than --warn-age {warn_text}");
    }
    let r = gather(args)?;
    Ok(verdict(&r, warn, crit))
}

fn verdict(r: &Report, warn: i64, crit: i64) -> (u8, String) {
    let mut code = OK;
    let mut problems = Vec::new();
    let mut raise = |to: u8, why: String| {
        code = code.max(to);
        problems.push(why);
    };
    let summary = match &r.last_good_backup {
        None => {
            raise(CRITICAL, format!("no backup in {}", r.device));
            String::new()
        }
        Some(g) => {
            if g.age_seconds > crit {
                raise(
                    CRITICAL,
                    format!("the last good backup is {} old", age(g.age_seconds)),
                );
            } else if g.age_seconds > warn {
                raise(
                    WARNING,
                    format!("the last good backup is {} old", age(g.age_seconds)),
                );
            }
            format!(
                "last good backup {} ({} ago, {}, {} files, {})",
                g.generation,
                age(g.age_seconds),
                g.state,
                g.files,
                human_bytes(g.size)
            )
        }
    };
    if let Some(v) = &r.state.last_verify {
        if v.exit_status != 0 {
            raise(
                CRITICAL,
                format!(
                    "the verification of {} failed (exit status {}): {}",
                    lifeboat_core::clock::UtcTime::from_unix(v.finished).rfc3339(),
                    v.exit_status,
                    v.detail
                ),
            );
        }
    }
    if let Some(run) = &r.state.last_backup_run {
        if run.exit_status != 0 {
            raise(
                WARNING,
                format!(
                    "the last backup run ({}) exited {}: {}",
                    lifeboat_core::clock::UtcTime::from_unix(run.finished).rfc3339(),
                    run.exit_status,
                    run.detail
                ),
            );
        }
    }
    let word = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][usize::from(code)];
    let text = std::iter::once(summary)
        .chain(problems)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace('|', "/");
    let age_perf = r
        .last_good_backup
        .as_ref()
        .map(|g| format!("age={}s;{warn};{crit};0 ", g.age_seconds))
        .unwrap_or_default();
    (
        code,
        format!(
            "LIFEBOAT {word} - {text} | {age_perf}generations={};;;0 stored={}B;;;0",
            r.generations, r.stored_bytes
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics::Run;

    fn report(age: Option<i64>, verify: Option<u8>, last_run: Option<u8>) -> Report {
        let run = |exit_status| Run {
            finished: 1_795_317_300,
            seconds: 1.0,
            exit_status,
            device: None,
            detail: "every generation".into(),
        };
        Report {
            device: "/dev/sdb2".into(),
            generations: age.map_or(0, |_| 2),
            stored_bytes: 2048,
            last_good_backup: age.map(|a| LastGood {
                generation: "20261122T031500Z".into(),
                created: "2026-11-22T03:15:00Z".into(),
                age_seconds: a,
                state: "verified".into(),
                size: 1024,
                bytes: 4096,
                files: 53,
            }),
            state_file: "/var/lib/lifeboat/state.json".into(),
            state: State {
                last_backup_run: last_run.map(run),
                last_good_backup: None,
                last_verify: verify.map(run),
            },
        }
    }

    #[test]
    fn verdicts_follow_the_ages_and_the_verification() {
        let (w, c) = (26 * 3600, 50 * 3600);
        let code = |r: Report| verdict(&r, w, c).0;
        assert_eq!(code(report(Some(3600), Some(0), Some(0))), OK);
        assert_eq!(code(report(Some(3600), None, None)), OK);
        assert_eq!(code(report(Some(27 * 3600), Some(0), Some(0))), WARNING);
        assert_eq!(code(report(Some(51 * 3600), Some(0), Some(0))), CRITICAL);
        assert_eq!(code(report(None, None, None)), CRITICAL);
        assert_eq!(code(report(Some(3600), Some(1), Some(0))), CRITICAL);
        assert_eq!(code(report(Some(3600), Some(0), Some(11))), WARNING);
        let (_, line) = verdict(&report(Some(3600), Some(0), Some(0)), w, c);
        assert!(
            line.starts_with("LIFEBOAT OK - last good backup 20261122T031500Z (1h ago"),
            "{line}"
        );
        assert!(
            line.ends_with("| age=3600s;93600;180000;0 generations=2;;;0 stored=2048B;;;0"),
            "{line}"
        );
        assert_eq!(line.matches('|').count(), 1, "{line}");
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn ages_parse_as_people_write_them() {
        assert_eq!(parse_age("26h", "x").unwrap(), 93_600);
        assert_eq!(parse_age("2d", "x").unwrap(), 172_800);
        assert_eq!(parse_age("90min", "x").unwrap(), 5400);
        assert!(parse_age("soon", "x").is_err());
    }
}
