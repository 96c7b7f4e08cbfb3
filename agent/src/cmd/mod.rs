//! One module per command; what they share is in [`common`].

use crate::cli::{Cli, Command};
use crate::{exit, metrics};
use std::process::ExitCode;
use std::time::Instant;

mod backup;
mod common;
mod copy;
pub(crate) mod host_backup;
mod host_restore;
mod init_store;
mod list;
mod man;
mod mkrescue;
mod plan;
mod pool_database;
mod repo;
mod restore;
mod status;
mod units;
mod verify;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    if let Some(remote) = cli.command.remote() {
        // `host=H`: the command runs on H over ssh, the archive streams to or from here.
        return match remote.transport {
            crate::cli::Transport::Ssh => crate::remote::run(&cli.command, remote, quiet),
            crate::cli::Transport::Tls => crate::serve::client::run(&cli.command, remote, quiet),
        };
    }
    match cli.command {
        Command::Backup(args) => {
            // Every run is recorded, whatever its outcome (lifeboat status, Prometheus).
            let started = Instant::now();
            let device = args.device.backup_device.clone();
            let mut facts = None;
            let result = backup::run(args, quiet, &mut facts);
            let (status, error) = outcome(&result);
            let device = device.map(|d| d.display().to_string());
            metrics::after_backup(started, status, device, facts, error);
            result
        }
        Command::HostBackup(args) => host_backup::run(args, quiet),
        Command::HostRestore(args) => host_restore::run(args, quiet),
        Command::InitStore(args) => init_store::run(args, quiet),
        Command::List(args) => list::run(args, quiet),
        Command::Verify(args) if args.archive.file_name.is_none() => {
            // A verification of the store is recorded (one of a file is not).
            let started = Instant::now();
            let device = args.archive.device.backup_device.clone();
            let what = match &args.archive.generation {
                Some(g) => format!("generation {g}"),
                None => "every generation".to_string(),
            };
            let result = verify::run(args, quiet);
            let (status, error) = outcome(&result);
            let detail = error.map_or(what.clone(), |e| format!("{what}: {e}"));
            let device = device.map(|d| d.display().to_string());
            metrics::after_verify(started, status, device, detail);
            result
        }
        Command::Verify(args) => verify::run(args, quiet),
        Command::Restore(args) => restore::run(args, quiet),
        Command::Mkrescue(args) => mkrescue::run(args, quiet),
        Command::Plan(args) => plan::run(args, quiet),
        Command::Copy(args) => copy::run(args, quiet),
        Command::InstallUnits(args) => units::run(args, quiet),
        Command::Status(args) => status::run(args, quiet),
        Command::Man(args) => man::run_man(args, quiet),
        Command::Completions(args) => man::run_completions(args),
        Command::Repo(cmd) => repo::run(cmd, quiet),
        Command::Push(args) => repo::push(args, quiet),
        Command::PoolDatabase(args) => pool_database::run(args, quiet),
        Command::Serve(args) => crate::serve::run(args),
        Command::Ca(cmd) => crate::serve::ca::run(cmd),
        Command::Token(cmd) => crate::serve::auth::run(cmd),
    }
}

/// The exit status a command's result stands for, and its error as one line.
fn outcome(result: &anyhow::Result<ExitCode>) -> (u8, Option<String>) {
    match result {
        Ok(code) => (exit::number(*code), None),
        Err(e) => (exit::of_error(e), Some(format!("{e:#}"))),
    }
}
