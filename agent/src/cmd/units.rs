//! `lifeboat install-units [--root DIR] [--dry-run]`: writes the systemd units of
//! dist/systemd/ (the files the packages install, embedded here: one source) into
//! /etc/systemd/system, with the services running this program.

use crate::cli::InstallUnitsArgs;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The program the unit files name; replaced by the path of the lifeboat to run.
pub const PACKAGED_PROGRAM: &str = "/usr/sbin/lifeboat";

/// Every unit, by file name.
pub const UNITS: [(&str, &str); 5] = [
    (
        "lifeboat-backup.service",
        include_str!("../../../dist/systemd/lifeboat-backup.service"),
    ),
    (
        "lifeboat-backup.timer",
        include_str!("../../../dist/systemd/lifeboat-backup.timer"),
    ),
    (
        "lifeboat-verify.service",
        include_str!("../../../dist/systemd/lifeboat-verify.service"),
    ),
    (
        "lifeboat-verify.timer",
        include_str!("../../../dist/systemd/lifeboat-verify.timer"),
    ),
    (
        "lifeboat-serve.service",
        include_str!("../../../dist/systemd/lifeboat-serve.service"),
    ),
];

/// The unit's text with `program` in place of the packaged path in its `ExecStart=`.
pub fn render(text: &str, program: &Path) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                l.replace(
                    &format!(" {PACKAGED_PROGRAM} "),
                    &format!(" {} ", program.display()),
                )
                .replace(
                    &format!("ExecStart={PACKAGED_PROGRAM} "),
                    &format!("ExecStart={} ", program.display()),
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

pub fn run(args: InstallUnitsArgs, quiet: bool) -> Result<ExitCode> {
    let InstallUnitsArgs {
        root,
        unit_dir,
        program,
        dry_run,
    } = args;
    let program = match program {
        Some(p) => p,
        None => std::env::current_exe()
            .context("cannot tell where this program is; give --program PATH")?,
    };
    if !program.is_absolute() {
        anyhow::bail!(
            "--program {} is not an absolute path: systemd runs ExecStart= from no particular \
             directory",
            program.display()
        );
    }
    if program.to_string_lossy().contains(char::is_whitespace) {
        anyhow::bail!(
            "the program path {} holds white space, which ExecStart= would split; install \
             lifeboat elsewhere or give --program PATH",
            program.display()
        );
    }
    let dir = beneath(&root, &unit_dir);
    if !dry_run {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the unit directory {}", dir.display()))?;
    }
    for (name, text) in UNITS {
        let path = dir.join(name);
        let text = render(text, &program);
        if dry_run {
            println!("# {}\n{text}", path.display());
            continue;
        }
        let same = std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str());
        if !same {
            crate::metrics::write_beside_then_rename(&path, text.as_bytes())?;
        }
        if !quiet {
            println!(
                "{} {}",
                if same { "unchanged" } else { "wrote" },
                path.display()
            );
        }
    }
    if !quiet && !dry_run {
        println!(
            "Next: systemctl daemon-reload && systemctl enable --now lifeboat-backup.timer \
             lifeboat-verify.timer{}",
            if root == Path::new("/") {
                String::new()
            } else {
                format!(" (in the system under {})", root.display())
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `dir` taken below `root` (an absolute `dir` is relative to the root).
fn beneath(root: &Path, dir: &Path) -> PathBuf {
    root.join(dir.strip_prefix("/").unwrap_or(dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_services_run_the_given_program_and_nothing_else_changes() {
        for (name, text) in UNITS {
            let out = render(text, Path::new("/opt/lb/lifeboat"));
            if name.ends_with(".service") {
                assert!(text.contains(&format!("{PACKAGED_PROGRAM} ")), "{name}");
                assert!(out.contains("/opt/lb/lifeboat "), "{name}: {out}");
                assert!(!out.contains(PACKAGED_PROGRAM), "{name}");
            }
            assert_eq!(render(text, Path::new(PACKAGED_PROGRAM)), text, "{name}");
        }
    }

    #[test]
    fn the_unit_directory_is_beneath_the_root() {
        assert_eq!(
            beneath(Path::new("/tmp/r"), Path::new("/etc/systemd/system")),
            Path::new("/tmp/r/etc/systemd/system")
        );
        assert_eq!(
            beneath(Path::new("/"), Path::new("/etc/systemd/system")),
            Path::new("/etc/systemd/system")
        );
    }
}
