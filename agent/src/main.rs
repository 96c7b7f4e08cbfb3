//! `lifeboat`: the dom0 agent. Backs up the control domain into the backup partition, streams
//! backups in the manner of `xe host-backup` / `xe host-restore`, verifies and restores them,
//! and builds the recovery image.

mod args;
mod cli;
mod cmd;
mod config;
mod exit;
mod metrics;
mod remote;
mod rescue;
mod serve;
mod ui;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lifeboat: error: {err:#}");
            ExitCode::from(exit::of_error(&err))
        }
    }
}

/// The command line, or exit 2 with clap's usage message (xe-style words rewritten first;
/// checks across arguments, such as `--level` against `--compress`, done here too).
fn parse() -> cli::Cli {
    let mut command = cli::Cli::command();
    let words = match args::normalize(&command, std::env::args_os()) {
        Ok(w) => w,
        Err(e) => command
            .error(clap::error::ErrorKind::UnknownArgument, e)
            .exit(),
    };
    let cli = cli::Cli::try_parse_from(words).unwrap_or_else(|e| e.exit());
    if let Err(msg) = cli.validate() {
        command
            .error(clap::error::ErrorKind::ValueValidation, msg)
            .exit();
    }
    cli
}
