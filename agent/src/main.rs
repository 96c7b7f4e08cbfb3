//! `lifeboat`: the dom0 agent. Backs up the control domain into the backup partition, streams
//! backups in the manner of `xe host-backup` / `xe host-restore`, verifies and restores them,
//! and builds the recovery image.

mod args;
mod cli;
mod cmd;
mod config;
mod ui;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(args::normalize(std::env::args_os()));
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lifeboat: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
