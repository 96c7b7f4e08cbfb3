//! What the last runs did, kept for `lifeboat status` and for Prometheus.
//!
//! After each `backup` and each `verify` of the store, the agent updates a small state file
//! (`state_file` in lifeboat.toml, default [`STATE_PATH`]) and, when a textfile directory is
//! configured (`textfile_dir`) or node_exporter's default one exists ([`TEXTFILE_DIR`]),
//! rewrites `lifeboat.prom` there: written under a temporary name beside it, then renamed,
//! so the collector never reads half a file. Samples carry no timestamps (the collector
//! refuses them); times are values in seconds since the epoch.
//!
//! A state or metrics file that cannot be written is a warning: the backup itself is done.

use crate::config::{self, Config};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Default state file.
pub const STATE_PATH: &str = "/var/lib/lifeboat/state.json";
/// node_exporter's usual `--collector.textfile.directory`: used when it exists.
pub const TEXTFILE_DIR: &str = "/var/lib/node_exporter/textfile_collector";
/// The textfile's name in that directory.
pub const TEXTFILE_NAME: &str = "lifeboat.prom";

/// The state file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The last `lifeboat backup`, whatever its outcome.
    pub last_backup_run: Option<Run>,
    /// The last backup that committed a generation (exit status 0 or 1).
    pub last_good_backup: Option<GoodBackup>,
    /// The last `lifeboat verify` of the store (not of a file).
    pub last_verify: Option<Run>,
}

/// One run of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// When it ended, seconds since the epoch.
    pub finished: i64,
    pub seconds: f64,
    pub exit_status: u8,
    /// The backup device, when it was found.
    #[serde(default)]
    pub device: Option<String>,
    /// What it read ("every generation" or a generation id) or its error, for a person.
    #[serde(default)]
    pub detail: String,
}

/// What a backup that committed a generation reports (filled in by `backup`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupFacts {
    pub generation: String,
    pub device: String,
    /// Bytes of the archive written (compressed).
    pub written_bytes: u64,
    /// Bytes of file content read.
    pub content_bytes: u64,
    pub files: u64,
    /// Generations in the store after pruning.
    pub generations_kept: u64,
    /// Bytes of every generation's archive in the store.
    pub stored_bytes: u64,
    /// "verified" or "inconsistent".
    pub state: String,
}

/// The last good backup: its facts and when it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoodBackup {
    pub finished: i64,
    pub seconds: f64,
    #[serde(flatten)]
    pub facts: BackupFacts,
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The state file named by the configuration.
pub fn state_path(cfg: &Config) -> PathBuf {
    cfg.state_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(STATE_PATH))
}

/// The textfile directory: the configured one, else node_exporter's default when it exists.
pub fn textfile_dir(cfg: &Config) -> Option<PathBuf> {
    match &cfg.textfile_dir {
        Some(d) => Some(d.clone()),
        None => Some(PathBuf::from(TEXTFILE_DIR)).filter(|d| d.is_dir()),
    }
}

/// Reads the state file; an absent one is an empty state.
pub fn load_state(path: &Path) -> Result<State> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "the state file {} is not valid; remove it (the next backup writes it anew)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
    }
}

/// Records a `backup` run that ended with `exit_status` (facts when a generation was
/// committed), then rewrites the textfile. Problems are warnings on stderr.
pub fn after_backup(
    started: Instant,
    exit_status: u8,
    device: Option<String>,
    facts: Option<BackupFacts>,
    error: Option<String>,
) {
    let seconds = started.elapsed().as_secs_f64();
    let finished = now();
    record(|state| {
        state.last_backup_run = Some(Run {
            finished,
            seconds,
            exit_status,
            device: device.or_else(|| facts.as_ref().map(|f| f.device.clone())),
            detail: match (&facts, &error) {
                (Some(f), _) => format!("generation {}", f.generation),
                (None, Some(e)) => e.clone(),
                (None, None) => String::new(),
            },
        });
        if let Some(facts) = facts {
            state.last_good_backup = Some(GoodBackup {
                finished,
                seconds,
                facts,
            });
        }
    });
}

/// Records a `verify` of the store that ended with `exit_status`.
pub fn after_verify(started: Instant, exit_status: u8, device: Option<String>, detail: String) {
    let seconds = started.elapsed().as_secs_f64();
    let finished = now();
    record(|state| {
        state.last_verify = Some(Run {
            finished,
            seconds,
            exit_status,
            device,
            detail,
        });
    });
}

fn record(update: impl FnOnce(&mut State)) {
    let cfg = match config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lifeboat: warning: this run is not recorded for `lifeboat status`: {e:#}");
            return;
        }
    };
    let path = state_path(&cfg);
    // A damaged state file is replaced: the runs to come must be recorded.
    let mut state = match load_state(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lifeboat: warning: {e:#}; starting it anew");
            State::default()
        }
    };
    update(&mut state);
    let written = serde_json::to_vec_pretty(&state)
        .context("cannot encode the state")
        .and_then(|json| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_beside_then_rename(&path, &json)
        });
    if let Err(e) = written {
        eprintln!(
            "lifeboat: warning: cannot write the state file: {e:#}; `lifeboat status` will not \
             show this run (set state_file in {})",
            config::config_path().display()
        );
    }
    if let Some(dir) = textfile_dir(&cfg) {
        let path = dir.join(TEXTFILE_NAME);
        if let Err(e) = write_beside_then_rename(&path, render(&state).as_bytes()) {
            eprintln!(
                "lifeboat: warning: cannot write the Prometheus textfile: {e:#}; check \
                 textfile_dir in {}",
                config::config_path().display()
            );
        }
    }
}

/// Writes `path` whole: into `path.PID.tmp` beside it (same directory, so same filesystem),
/// flushed, then renamed over `path`.
pub fn write_beside_then_rename(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// The textfile: one gauge per fact known, with HELP and TYPE lines, no timestamps.
pub fn render(state: &State) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    };
    if let Some(r) = &state.last_backup_run {
        gauge(
            "lifeboat_backup_last_run_timestamp_seconds",
            "When the last backup run ended (seconds since the epoch).",
            r.finished as f64,
        );
        gauge(
            "lifeboat_backup_last_run_duration_seconds",
            "How long the last backup run took.",
            r.seconds,
        );
        gauge(
            "lifeboat_backup_last_exit_status",
            "Exit status of the last backup run (0 ok, 1 complete but not consistent, 2 error, 11 store locked).",
            f64::from(r.exit_status),
        );
    }
    if let Some(g) = &state.last_good_backup {
        let f = &g.facts;
        gauge(
            "lifeboat_backup_last_success_timestamp_seconds",
            "When the last backup that committed a generation ended (seconds since the epoch).",
            g.finished as f64,
        );
        gauge(
            "lifeboat_backup_last_success_duration_seconds",
            "How long the last successful backup took.",
            g.seconds,
        );
        gauge(
            "lifeboat_backup_last_written_bytes",
            "Bytes of archive the last successful backup wrote (compressed).",
            f.written_bytes as f64,
        );
        gauge(
            "lifeboat_backup_last_content_bytes",
            "Bytes of file content the last successful backup read.",
            f.content_bytes as f64,
        );
        gauge(
            "lifeboat_backup_last_files",
            "Regular files in the last successful backup.",
            f.files as f64,
        );
        gauge(
            "lifeboat_backup_last_consistent",
            "1 when no file kept changing during the last successful backup, else 0.",
            if f.state == "inconsistent" { 0.0 } else { 1.0 },
        );
        gauge(
            "lifeboat_store_generations",
            "Generations kept in the backup partition after the last successful backup.",
            f.generations_kept as f64,
        );
        gauge(
            "lifeboat_store_bytes",
            "Bytes of every generation's archive in the backup partition after the last successful backup.",
            f.stored_bytes as f64,
        );
    }
    if let Some(v) = &state.last_verify {
        gauge(
            "lifeboat_verify_last_timestamp_seconds",
            "When the last verification of the store ended (seconds since the epoch).",
            v.finished as f64,
        );
        gauge(
            "lifeboat_verify_last_duration_seconds",
            "How long the last verification took.",
            v.seconds,
        );
        gauge(
            "lifeboat_verify_last_success",
            "1 when the last verification found every generation sound, else 0.",
            if v.exit_status == 0 { 1.0 } else { 0.0 },
        );
        gauge(
            "lifeboat_verify_last_exit_status",
            "Exit status of the last verification (0 sound, 1 damage found, 2 error, 11 store locked).",
            f64::from(v.exit_status),
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            last_backup_run: Some(Run {
                finished: 1_795_317_300,
                seconds: 12.5,
                exit_status: 0,
                device: Some("/dev/sdb2".into()),
                detail: "generation 20261122T031500Z".into(),
            }),
            last_good_backup: Some(GoodBackup {
                finished: 1_795_317_300,
                seconds: 12.5,
                facts: BackupFacts {
                    generation: "20261122T031500Z".into(),
                    device: "/dev/sdb2".into(),
                    written_bytes: 1000,
                    content_bytes: 5000,
                    files: 53,
                    generations_kept: 2,
                    stored_bytes: 2100,
                    state: "verified".into(),
                },
            }),
            last_verify: Some(Run {
                finished: 1_795_000_000,
                seconds: 3.0,
                exit_status: 1,
                device: None,
                detail: "every generation".into(),
            }),
        }
    }

    #[test]
    fn the_textfile_is_exposition_format_without_timestamps() {
        let text = render(&sample());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            // name value: exactly two fields, so no timestamp.
            let fields: Vec<_> = line.split(' ').collect();
            assert_eq!(fields.len(), 2, "{line}");
            assert!(fields[0].starts_with("lifeboat_"), "{line}");
            fields[1].parse::<f64>().unwrap();
        }
        assert!(text.contains("\nlifeboat_backup_last_success_timestamp_seconds 1795317300\n"));
        assert!(text.contains("\nlifeboat_verify_last_success 0\n"));
        assert!(text.contains("\nlifeboat_store_generations 2\n"));
        assert!(render(&State::default()).is_empty());
    }

    #[test]
    fn the_state_round_trips_and_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load_state(&path).unwrap(), State::default());
        write_beside_then_rename(&path, &serde_json::to_vec(&sample()).unwrap()).unwrap();
        assert_eq!(load_state(&path).unwrap(), sample());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left beside it");
        std::fs::write(&path, "{").unwrap();
        assert!(load_state(&path).is_err());
    }
}
