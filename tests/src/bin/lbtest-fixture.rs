//! `lbtest-fixture DIR [--big-mib N] [--sparse-mib N] [--no-flags] [--no-long-path]`: builds every case of the
//! archive format in DIR (see lifeboat_tests::fixture for which need root and ext4) and prints
//! what was made and what was skipped.

use anyhow::{bail, Context, Result};
use lifeboat_tests::fixture::{build, FixtureOptions};
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut opts = FixtureOptions::default();
    let mut dir = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--big-mib") => opts.big_file_bytes = num(args.next())? << 20,
            Some("--sparse-mib") => opts.sparse_bytes = num(args.next())? << 20,
            Some("--no-flags") => opts.flags = false,
            Some("--no-long-path") => opts.long_path = false,
            Some("-h") | Some("--help") => {
                println!("usage: lbtest-fixture DIR [--big-mib N] [--sparse-mib N] [--no-flags] [--no-long-path]");
                return Ok(());
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => bail!("unexpected argument {a:?}"),
        }
    }
    let Some(dir) = dir else {
        bail!("usage: lbtest-fixture DIR [--big-mib N] [--sparse-mib N] [--no-flags] [--no-long-path]")
    };
    let report =
        build(&dir, &opts).with_context(|| format!("building the fixture in {}", dir.display()))?;
    for m in &report.made {
        println!("made: {m}");
    }
    for s in &report.skipped {
        println!("skipped: {s}");
    }
    Ok(())
}

fn num(a: Option<std::ffi::OsString>) -> Result<u64> {
    a.and_then(|s| s.to_str().and_then(|s| s.parse().ok()))
        .context("expected a number")
}
